//! A small HTTP/1.1 server on loopback for the social channels' end-to-end tests: one handler
//! decides each answer from the request and the requests before it, and every request is kept
//! so tests can count and inspect what was sent. Never the internet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::{Fetcher, Limits};

/// The directory of this crate's social fixtures.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/social/");
/// The shared fixtures these were copied from, when present.
pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/social/");

/// Reads `tests/fixtures/social/{name}`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}"))
        .unwrap_or_else(|e| panic!("cannot read fixture {name}: {e}"))
}

/// Checks that the local copies equal the shared files, printing a note and passing when the
/// shared directory is absent (a checkout without it).
pub fn assert_copies_match_shared(copies: &[(&str, &str)]) {
    if !std::path::Path::new(SHARED).is_dir() {
        println!("note: {SHARED} is absent; skipping the comparison with the shared fixtures");
        return;
    }
    for (local, shared) in copies {
        let theirs = std::fs::read(format!("{SHARED}{shared}"))
            .unwrap_or_else(|e| panic!("cannot read shared fixture {shared}: {e}"));
        assert_eq!(
            fixture(local),
            theirs,
            "{local} differs from shared {shared}"
        );
    }
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request target: path and query.
    pub target: String,
}

impl Seen {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// What the server answers.
pub struct Reply {
    /// Status line tail, e.g. `200 OK`.
    pub status: &'static str,
    /// Headers besides `content-length` and `connection`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// An answer with a content type.
pub fn reply(status: &'static str, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        headers: vec![("content-type", content_type.to_string())],
        body: body.into(),
        delay: Duration::ZERO,
    }
}

/// A JSON answer.
pub fn json(status: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    reply(status, "application/json; charset=utf-8", body)
}

/// Decides each answer from the request and the requests before it.
pub type Handler = Arc<dyn Fn(&Seen, &[Seen]) -> Reply + Send + Sync>;

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().expect("log").clone()
    }

    /// How many requests went to `path` (query ignored).
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path() == path).count()
    }
}

async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&buf[..at]).to_string());
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Starts a server on a free loopback port.
pub async fn serve(handler: impl Fn(&Seen, &[Seen]) -> Reply + Send + Sync + 'static) -> Server {
    use tokio::io::AsyncWriteExt;
    let handler: Handler = Arc::new(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("cannot bind a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let server_log = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let log = server_log.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut stream).await else {
                    return;
                };
                let seen = Seen {
                    target: head.split_whitespace().nth(1).unwrap_or("").to_string(),
                };
                let before = {
                    let mut log = log.lock().expect("log");
                    let before = log.clone();
                    log.push(seen.clone());
                    before
                };
                let reply = handler(&seen, &before);
                tokio::time::sleep(reply.delay).await;
                let mut out = format!("HTTP/1.1 {}\r\n", reply.status);
                for (k, v) in &reply.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str(&format!(
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    reply.body.len()
                ));
                let _ = stream.write_all(out.as_bytes()).await;
                let _ = stream.write_all(&reply.body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Server { base, log }
}

/// A fetcher with short limits, for loopback.
pub fn fetcher(max_body: usize) -> Fetcher {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    Fetcher::new(
        client,
        Limits {
            timeout: Duration::from_secs(5),
            max_body,
        },
    )
}
