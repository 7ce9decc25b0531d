//! A small HTTP/1.1 server on loopback for the channels' end-to-end tests (Graph, X, Mastodon,
//! Bluesky, feeds): one handler decides each answer from the request and the requests before it,
//! and every request is kept, head and body, so tests can count and inspect what was sent. Never
//! the internet. Also the log capture the secret-leak tests read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ProbeError;
use crate::http::{Fetcher, Limits};
use crate::model::Observation;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// The request line and headers, as sent (to check what went into a header).
    pub head: String,
    /// The body, as text.
    pub body: String,
}

impl Seen {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        decoded(self.target.split_once('?')?.1, key)
    }

    /// A field of a form-encoded body, decoded.
    pub fn form(&self, key: &str) -> Option<String> {
        decoded(&self.body, key)
    }
}

fn decoded(form: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
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

    /// The requests that went to `path` (query ignored), in order.
    pub fn to(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path() == path)
            .collect()
    }

    /// How many requests went to `path` (query ignored).
    pub fn count(&self, path: &str) -> usize {
        self.to(path).len()
    }
}

/// Reads one request: its head (up to the blank line) and a body of `content-length` bytes.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// Starts a server on a free loopback port.
pub async fn serve(handler: impl Fn(&Seen, &[Seen]) -> Reply + Send + Sync + 'static) -> Server {
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
                let Some((head, body)) = read_request(&mut stream).await else {
                    return;
                };
                let mut words = head.split_whitespace();
                let seen = Seen {
                    method: words.next().unwrap_or("").to_string(),
                    target: words.next().unwrap_or("").to_string(),
                    head: head.clone(),
                    body: String::from_utf8_lossy(&body).to_string(),
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

/// A fetcher with `limits` and no proxy, for loopback.
pub fn fetcher_with(limits: Limits) -> Fetcher {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    Fetcher::new(client, limits)
}

/// A fetcher with a 5 s limit and a `max_body` cap, for loopback.
pub fn fetcher(max_body: usize) -> Fetcher {
    fetcher_with(Limits {
        timeout: Duration::from_secs(5),
        max_body,
    })
}

/// Everything logged on this thread while it lives, so a test can say what was never printed.
pub struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    /// The log lines so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().expect("capture")).to_string()
    }
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line, at every level, until the returned [`Logs`] is dropped.
///
/// tracing caches each call site's interest process-wide, decided by the first thread to reach
/// it; a concurrent test with no subscriber would cache "never" and silence the site for the
/// capture too. A global default that wants every level (and writes nowhere) keeps every cached
/// interest open, so the thread-local capture below sees what it should.
pub fn capture_logs() -> Logs {
    static OPEN_INTEREST: std::sync::Once = std::sync::Once::new();
    OPEN_INTEREST.call_once(|| {
        let everything = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::sink)
            .finish();
        // Another test binary's global default would do as well.
        let _ = tracing::subscriber::set_global_default(everything);
    });
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    Logs {
        buffer: sink.0,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}

/// Everything a probe's result shows (`Display`, `Debug`, JSON), for the tests that say what must
/// never appear in any of them.
pub fn everything_shown(result: &Result<Observation, ProbeError>) -> String {
    match result {
        Ok(o) => format!("{o:?} {}", serde_json::to_string(o).expect("json")),
        Err(e) => format!("{e} {e:?} {}", serde_json::to_string(e).expect("json")),
    }
}
