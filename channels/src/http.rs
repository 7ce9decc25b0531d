//! The one way channels talk HTTP: every request time-limited, every body size-capped, every
//! status classified and every success gated on its content type before a parser sees it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

use crate::error::{ProbeError, humanize};
use crate::tape::{self, Body, Exchange, ExchangeOutcome, RecordedAnswer, Tape, TapeMode};

/// The limits every request of a channel runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole request, from connect to the last body byte.
    pub timeout: Duration,
    /// The largest body we read; a larger one is drift, not data.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            max_body: 1024 * 1024,
        }
    }
}

/// Checks a configured base address (`base_url`, `authority`, `graph_url`): an absolute http(s)
/// URL with a host and no query or fragment, since paths are appended to it. `key` names the
/// setting in the message.
pub fn base_url(key: &str, value: &str) -> Result<reqwest::Url, ProbeError> {
    let url = reqwest::Url::parse(value.trim()).map_err(|e| ProbeError::Config {
        message: format!("{key} {value:?} is not a URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(ProbeError::Config {
            message: format!(
                "{key} {value:?} must be an http(s) URL with a host and no query or fragment"
            ),
        });
    }
    Ok(url)
}

/// What kind of document a caller expects; anything else is drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `application/json` or `application/*+json`.
    Json,
    /// RSS, Atom or plain XML.
    Xml,
}

impl Expect {
    fn name(self) -> &'static str {
        match self {
            Expect::Json => "JSON",
            Expect::Xml => "XML",
        }
    }

    fn accepts(self, media_type: &str) -> bool {
        match self {
            Expect::Json => media_type == "application/json" || media_type.ends_with("+json"),
            Expect::Xml => {
                matches!(media_type, "application/xml" | "text/xml") || media_type.ends_with("+xml")
            }
        }
    }

    fn accept_header(self) -> &'static str {
        match self {
            Expect::Json => "application/json",
            Expect::Xml => {
                "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8"
            }
        }
    }
}

/// An HTTP client with a channel's limits, and optionally a [`Tape`] that records every exchange
/// or answers from recorded ones.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    limits: Limits,
    tape: Option<Arc<Tape>>,
}

/// What [`Fetcher::exchange`] brings back: an answer's head, and its body when it was read.
struct Answer {
    status: u16,
    headers: HeaderMap,
    /// Where a redirect chain ended (redacted), when not at the URL asked.
    redirected: Option<String>,
    body: Option<Vec<u8>>,
}

impl Fetcher {
    /// Wraps a shared client (one connection pool for all channels) with one channel's limits.
    pub fn new(client: reqwest::Client, limits: Limits) -> Self {
        Fetcher {
            client,
            limits,
            tape: None,
        }
    }

    /// The same fetcher, recording every exchange on `tape` or answering from it (its mode).
    pub fn with_tape(mut self, tape: Arc<Tape>) -> Self {
        self.tape = Some(tape);
        self
    }

    /// GETs `url` and returns its body (at most [`Limits::max_body`] bytes, never empty) if, and
    /// only if, it is a success of the expected kind. `what` names the request in messages (e.g.
    /// `GET /api/feed/mac`).
    pub async fn get(&self, url: &str, what: &str, expect: Expect) -> Result<Vec<u8>, ProbeError> {
        self.get_with_headers(url, what, expect, HeaderMap::new())
            .await
    }

    /// [`Fetcher::get`] with extra request headers (an `Authorization` bearer token, a `Prefer`),
    /// under the same time limit, size cap, status classification and content-type gate.
    ///
    /// Header values never appear in an error: messages name only `what` and the redacted URL.
    pub async fn get_with_headers(
        &self,
        url: &str,
        what: &str,
        expect: Expect,
        headers: HeaderMap,
    ) -> Result<Vec<u8>, ProbeError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, expect.accept_header())
            .headers(headers);
        // An error status is classified from the head alone: its body is not worth reading.
        let answer = self
            .exchange(request, "GET", url, what, |status, headers| {
                classify_status(status, headers, what, crate::clock::now()).is_none()
            })
            .await?;
        if let Some(error) =
            classify_status(answer.status, &answer.headers, what, crate::clock::now())
        {
            return Err(error);
        }
        let body = answer.body.unwrap_or_default();
        gate(what, expect, media_type(&answer.headers).as_deref(), &body).map_err(|error| {
            match &answer.redirected {
                Some(to) => error.with_note(&format!("after a redirect to {to}")),
                None => error,
            }
        })?;
        Ok(body)
    }

    /// POSTs an `application/x-www-form-urlencoded` body and returns the answer whatever its
    /// status, because an OAuth endpoint explains a refusal in the body of a 400. The body is
    /// size-capped and the whole exchange time-limited like [`Fetcher::get`]; only a request that
    /// got no complete answer is an error here. The caller classifies the status (with
    /// [`classify_status`]) and gates the body (with [`gate`]).
    ///
    /// The form (which may carry a client secret or a signed assertion) never appears in an
    /// error, a log line or a tape.
    pub async fn post_form(
        &self,
        url: &str,
        what: &str,
        expect: Expect,
        form: &[(&str, &str)],
    ) -> Result<RawResponse, ProbeError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, expect.accept_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.raw(request, "POST", url, what).await
    }

    /// GETs `url` and returns the answer whatever its status, for APIs whose headers and error
    /// bodies carry meaning: a `Link` to the next page, rate-limit counters on a success, an
    /// error envelope (`{"error": …}`) that says why a 400 or a 404 happened. Size cap and time
    /// limit are those of [`Fetcher::get`]; the caller classifies the status (with
    /// [`classify_status`]) and gates the body (with [`gate`]).
    pub async fn get_raw(
        &self,
        url: &str,
        what: &str,
        expect: Expect,
        headers: HeaderMap,
    ) -> Result<RawResponse, ProbeError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, expect.accept_header())
            .headers(headers);
        self.raw(request, "GET", url, what).await
    }

    async fn raw(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        url: &str,
        what: &str,
    ) -> Result<RawResponse, ProbeError> {
        let answer = self
            .exchange(request, method, url, what, |_, _| true)
            .await?;
        let media_type = media_type(&answer.headers);
        Ok(RawResponse {
            status: answer.status,
            headers: answer.headers,
            media_type,
            body: answer.body.unwrap_or_default(),
        })
    }

    /// Sends one request under the time limit and the size cap (the body is read only when
    /// `read_body` says so, from the status and headers) — or, replaying, answers it from the
    /// tape. Recording, the exchange goes on the tape whatever came of it.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        url: &str,
        what: &str,
        read_body: impl Fn(u16, &HeaderMap) -> bool,
    ) -> Result<Answer, ProbeError> {
        if let Some(tape) = &self.tape
            && tape.mode() == TapeMode::Replay
        {
            return replayed(tape, method, url, what);
        }
        let limit = self.limits.timeout;
        let sent = async {
            let response = request
                .timeout(limit)
                .send()
                .await
                .map_err(|e| transport_error(&e, what, limit))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            // Where a redirect chain ended, for messages: a sign-in page is recognizable by its URL.
            let redirected = (response.url().as_str() != url).then(|| redact(response.url()));
            let body = if read_body(status, &headers) {
                Some(self.read_capped(response, what).await?)
            } else {
                None
            };
            Ok(Answer {
                status,
                headers,
                redirected,
                body,
            })
        };
        // A slow drip of bytes is a timeout too: the limit covers the whole exchange.
        let result = match tokio::time::timeout(limit, sent).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ProbeError::Timeout {
                what: what.to_string(),
                after: limit,
            }),
        };
        if let Some(tape) = &self.tape {
            tape.push(recorded(method, url, &result));
        }
        result
    }

    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, ProbeError> {
        if let Some(len) = response.content_length()
            && len > self.limits.max_body as u64
        {
            return Err(oversized(what, self.limits.max_body));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&e, what, self.limits.timeout))?
        {
            if body.len() + chunk.len() > self.limits.max_body {
                return Err(oversized(what, self.limits.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The tape's form of one exchange's outcome.
fn recorded(method: &str, url: &str, result: &Result<Answer, ProbeError>) -> Exchange {
    let outcome = match result {
        Ok(answer) => ExchangeOutcome::Answer(RecordedAnswer {
            status: answer.status,
            headers: answer
                .headers
                .iter()
                .filter(|(name, _)| *name != reqwest::header::SET_COOKIE)
                .map(|(name, value)| {
                    (
                        name.as_str().to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: Body::new(answer.body.clone().unwrap_or_default()),
            final_url: answer.redirected.clone(),
        }),
        Err(error) => ExchangeOutcome::Failed(error.clone()),
    };
    Exchange {
        method: method.to_string(),
        url: url.to_string(),
        outcome,
    }
}

/// Answers a request from the tape; a request the recording never made is drift (the channel
/// or its config changed since), said plainly — except a sign-in, which gets a stand-in token.
fn replayed(tape: &Tape, method: &str, url: &str, what: &str) -> Result<Answer, ProbeError> {
    let outcome = match tape.answer(method, url) {
        None if method == "POST" => Some(ExchangeOutcome::Answer(tape::sign_in_stand_in())),
        outcome => outcome,
    };
    match outcome {
        Some(ExchangeOutcome::Answer(answer)) => {
            let mut headers = HeaderMap::new();
            for (name, value) in &answer.headers {
                if let (Ok(name), Ok(value)) = (
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                    reqwest::header::HeaderValue::from_str(value),
                ) {
                    headers.append(name, value);
                }
            }
            Ok(Answer {
                status: answer.status,
                headers,
                redirected: answer.final_url,
                body: Some(answer.body.bytes()),
            })
        }
        Some(ExchangeOutcome::Failed(error)) => Err(error),
        None => Err(ProbeError::drift(
            what,
            format!(
                "the archive holds no answer for {method} {}",
                reqwest::Url::parse(url)
                    .map(|u| redact(&u))
                    .unwrap_or_else(|_| "that URL".to_string())
            ),
        )),
    }
}

/// A complete answer of any status, as [`Fetcher::post_form`] and [`Fetcher::get_raw`] return it:
/// not yet classified or gated, but already size-capped.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers (for `Retry-After`).
    pub headers: HeaderMap,
    /// The media type, lowercased and without parameters, when the answer named one.
    pub media_type: Option<String>,
    /// The body, at most [`Limits::max_body`] bytes (possibly empty).
    pub body: Vec<u8>,
}

/// A URL as we show it: scheme, host, port and path only, so no query-string token or
/// credential of a sign-in redirect ends up in a message.
pub(crate) fn redact(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?"));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

fn oversized(what: &str, cap: usize) -> ProbeError {
    ProbeError::drift(
        what,
        format!("response larger than the {cap}-byte cap (max_body); refusing to parse it"),
    )
}

/// The media type of a response, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}

/// The content-type gate: a success answer reaches a parser only if it says it is the expected
/// kind of document, is not empty, and does not look like an HTML page in disguise.
pub fn gate(
    what: &str,
    expect: Expect,
    media_type: Option<&str>,
    body: &[u8],
) -> Result<(), ProbeError> {
    let Some(media_type) = media_type else {
        return Err(ProbeError::drift(
            what,
            format!("answer has no Content-Type; expected {}", expect.name()),
        ));
    };
    if !expect.accepts(media_type) {
        let why = if media_type == "text/html" {
            " (an HTML page: an app shell, an error page or a sign-in page)"
        } else {
            ""
        };
        return Err(ProbeError::drift(
            what,
            format!("expected {}, got {media_type}{why}", expect.name()),
        ));
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    let head = text.trim_start_matches('\u{feff}').trim_start();
    if head.is_empty() {
        return Err(ProbeError::drift(what, "empty body"));
    }
    let lower = head.to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        return Err(ProbeError::drift(
            what,
            format!("labelled {media_type} but the body is an HTML page"),
        ));
    }
    Ok(())
}

/// Classifies a non-success status; `None` for a success.
pub fn classify_status(
    status: u16,
    headers: &HeaderMap,
    what: &str,
    now: DateTime<Utc>,
) -> Option<ProbeError> {
    let retry_after = retry_after(headers, now);
    match status {
        200..=299 => None,
        429 => Some(ProbeError::Throttled {
            message: match retry_after {
                Some(wait) => format!("{what}: HTTP 429, asked to wait {}", humanize(wait)),
                None => format!("{what}: HTTP 429 (no Retry-After)"),
            },
            retry_after,
        }),
        401 | 403 => Some(ProbeError::Auth {
            message: format!("{what}: HTTP {status}: the endpoint refused us or asked for sign-in"),
        }),
        _ => Some(ProbeError::Http {
            what: what.to_string(),
            status,
            hint: status_hint(status).map(str::to_string),
            retry_after,
        }),
    }
}

fn status_hint(status: u16) -> Option<&'static str> {
    match status {
        300..=399 => Some("a redirect that was not followed"),
        400 => Some("the endpoint rejected the request; its path or parameters may have changed"),
        404 | 410 => Some("the endpoint is gone or moved"),
        500..=599 => Some("server error upstream"),
        _ => None,
    }
}

/// The wait an answer's `Retry-After` header asks for, read by [`parse_retry_after`].
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
}

/// Parses `Retry-After`: seconds (fractions occur, e.g. Graph's `1.5`) or an HTTP date. Values
/// that are negative, absurd (over a day) or unparseable are ignored rather than obeyed.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    const MAX: f64 = 86_400.0;
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && (0.0..=MAX).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    (wait.as_secs_f64() <= MAX).then_some(wait)
}

fn transport_error(error: &reqwest::Error, what: &str, limit: Duration) -> ProbeError {
    if error.is_timeout() {
        return ProbeError::Timeout {
            what: what.to_string(),
            after: limit,
        };
    }
    let cause = root_cause(error);
    let host = error
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the host")
        .to_string();
    let lower = cause.to_ascii_lowercase();
    let message = if error.is_redirect() {
        format!("{what}: too many redirects ({cause})")
    } else if lower.contains("lookup address") || lower.contains("dns") {
        format!("{what}: cannot resolve {host} (no network or DNS, or a wrong host name): {cause}")
    } else if lower.contains("connection refused") {
        format!("{what}: {host} refused the connection (nothing listens there?)")
    } else if lower.contains("certificate") || lower.contains("tls") {
        format!("{what}: TLS with {host} failed: {cause}")
    } else if error.is_connect() {
        format!("{what}: cannot connect to {host}: {cause}")
    } else if error.is_body() || error.is_decode() {
        format!("{what}: the answer broke off: {cause}")
    } else {
        format!("{what}: {cause}")
    };
    ProbeError::Network { message }
}

/// The innermost error message, which is the one that says what actually happened
/// ("Connection refused", "failed to lookup address").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    let mut text = current.to_string();
    if text.len() > 300 {
        text.truncate(text.floor_char_boundary(300));
    }
    text
}

/// What kind of JSON value this is, for "expected an array, got …" drift messages.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn retry_after_accepts_fractions_and_dates_and_ignores_nonsense() {
        assert_eq!(
            parse_retry_after("1.5", now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(" 30 ", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 12:01:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("-3", now()), None);
        assert_eq!(parse_retry_after("NaN", now()), None);
        assert_eq!(parse_retry_after("9999999", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn statuses_are_classified() {
        let mut headers = HeaderMap::new();
        assert!(classify_status(204, &headers, "GET /", now()).is_none());
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        let throttled = classify_status(429, &headers, "GET /", now());
        assert_eq!(
            throttled.as_ref().and_then(ProbeError::retry_after),
            Some(Duration::from_secs(2))
        );
        let class = |s| classify_status(s, &HeaderMap::new(), "GET /", now()).map(|e| e.class());
        assert_eq!(class(401), Some(crate::ErrorClass::Auth));
        assert_eq!(class(403), Some(crate::ErrorClass::Auth));
        assert_eq!(class(503), Some(crate::ErrorClass::Http));
        assert_eq!(class(302), Some(crate::ErrorClass::Http));
    }

    #[test]
    fn the_gate_refuses_html_empty_and_unlabelled_answers() {
        let class = |t: Option<&str>, body: &str| {
            gate("GET /", Expect::Json, t, body.as_bytes()).map_err(|e| e.class())
        };
        assert!(class(Some("application/json"), "{}").is_ok());
        assert!(class(Some("application/problem+json"), "{}").is_ok());
        assert_eq!(
            class(Some("text/html"), "<div/>"),
            Err(crate::ErrorClass::Drift)
        );
        assert_eq!(class(None, "{}"), Err(crate::ErrorClass::Drift));
        assert_eq!(
            class(Some("application/json"), " \n"),
            Err(crate::ErrorClass::Drift)
        );
        assert_eq!(
            class(Some("application/json"), "<!DOCTYPE html><html></html>"),
            Err(crate::ErrorClass::Drift)
        );
        assert!(gate("GET /", Expect::Xml, Some("application/rss+xml"), b"<rss/>").is_ok());
        assert!(gate("GET /", Expect::Xml, Some("application/json"), b"{}").is_err());
    }
}
