//! Test support: a programmable upstream on 127.0.0.1 and helpers that run statusmon's real
//! pipeline (config → engine → resolver → status document) against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use statusmon::config::{self, Config};
use statusmon::engine::{self, Engine};
use statusmon::status::StatusDocument;

/// One canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            content_type: Some(content_type.to_string()),
            body: body.into(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }
    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        Reply::new(200, "application/json; charset=utf-8", body)
    }
    pub fn rss(body: impl Into<Vec<u8>>) -> Self {
        Reply::new(200, "application/rss+xml; charset=utf-8", body)
    }
    pub fn html(status: u16, body: &str) -> Self {
        Reply::new(status, "text/html", body)
    }
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    pub fn without_content_type(mut self) -> Self {
        self.content_type = None;
        self
    }
}

/// A running mock upstream: the longest matching path prefix answers; no match is a JSON 404.
pub struct Mock {
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn mock(routes: Vec<(&str, Reply)>) -> Mock {
    let routes: Arc<Vec<(String, Reply)>> = Arc::new(
        routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect(),
    );
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let routes = routes.clone();
        async move {
            let path = request.uri().path().to_string();
            let reply = routes
                .iter()
                .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| Reply::new(404, "application/json", "{\"error\":\"no route\"}"));
            tokio::time::sleep(reply.delay).await;
            let mut response = Response::builder()
                .status(StatusCode::from_u16(reply.status).expect("valid status in test"));
            if let Some(ct) = &reply.content_type {
                response = response.header("content-type", ct);
            }
            for (name, value) in &reply.headers {
                response = response.header(name, value);
            }
            response
                .body(Body::from(reply.body))
                .expect("valid test response")
        }
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Mock {
        base_url: format!("http://{addr}"),
        task,
    }
}

/// The in-repo fixtures of the status-site channel.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("channels/tests/fixtures/status-site")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The shared recorded fixtures beside the checkout, if present (CI has them; a fresh clone may
/// not, and then the tests that use them say so and skip).
pub fn shared_fixture_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/status-site");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (fresh clone without ../shared)",
            dir.display()
        );
        None
    }
}

/// Routes serving a healthy public site from the in-repo fixtures.
pub fn healthy_site() -> Vec<(&'static str, Reply)> {
    vec![
        (
            "/api/feed/mac",
            Reply::rss(fixture("feed-mac-available.rss.xml")),
        ),
        (
            "/api/posts/mac",
            Reply::json(fixture("posts-mac-available.json")),
        ),
        (
            "/api/posts/ppac",
            Reply::json(fixture("posts-ppac-available.json")),
        ),
        (
            "/api/posts/azure",
            Reply::json(fixture("posts-azure-available.json")),
        ),
        (
            "/api/posts/m365Consumer",
            Reply::json(fixture("posts-m365Consumer.json")),
        ),
    ]
}

/// Replaces (or adds) the route for `prefix`.
pub fn with(
    mut routes: Vec<(&'static str, Reply)>,
    prefix: &'static str,
    reply: Reply,
) -> Vec<(&'static str, Reply)> {
    routes.retain(|(p, _)| *p != prefix);
    routes.push((prefix, reply));
    routes
}

/// A one-target config on one public-site channel at `base_url`, with extra channel keys.
pub fn site_config(base_url: &str, extra: &str) -> Config {
    let text = format!(
        "[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\nbase_url = \"{base_url}\"\n\
         interval = \"1m\"\ntimeout = \"2s\"\n{extra}\n\
         [[targets]]\nid = \"t1\"\nname = \"Test target\"\nchannels = [\"m365-public\"]\n"
    );
    config::parse(&text, Path::new("test.toml"), std::iter::empty()).expect("test config is valid")
}

/// What `statusmon status --json` computes, in-process.
pub async fn status_document(config: Config) -> StatusDocument {
    let client = engine::http_client().expect("http client");
    let mut engine = Engine::new(Arc::new(config), &client);
    engine.probe_all().await;
    let now = chrono::Utc::now();
    let targets = engine.resolve(now);
    engine.document(targets, now)
}

/// The built-in simulator on an ephemeral loopback port, playing `scenario` on the site and
/// `healthy` on Graph.
pub async fn simulator(
    scenario: statusmon::simulator::Scenario,
) -> statusmon::simulator::SimHandle {
    statusmon::simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), scenario)
        .await
        .expect("the simulator binds an ephemeral loopback port")
}

/// A plain HTTP client for talking to test upstreams directly.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

/// The statusmon binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_statusmon")
}
