//! Sinks: where alert events are delivered. One module per kind, each turning a [`Notice`] into
//! its vendor's request and the vendor's answer into [`Sent`] or a classified [`SinkError`].
//!
//! A sink knows HTTP (or SMTP) and its vendor's format, never the outbox, routes or retries: the
//! delivery worker decides what to send, when to try again and which sink comes next. Every
//! sink's address and credential is a secret (a Slack, Teams or webhook URL is itself the
//! credential), so nothing here puts a URL, token or password into an error, a log line or a
//! receipt.

pub mod alertmanager;
pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod webhook;

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use statusmon_channels::http::retry_after;

use super::AlertEvent;
use super::templates::Templates;

/// The kinds of sink, as `kind = "…"` names them in `[[sinks]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SinkKind {
    /// A generic JSON webhook, signed (Standard Webhooks, HMAC-SHA256) when it has a secret.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams Workflows webhook ("When a Teams webhook request is received"), sent an
    /// Adaptive Card.
    Teams,
    /// PagerDuty Events API v2.
    PagerDuty,
    /// Prometheus Alertmanager's `/api/v2/alerts`.
    Alertmanager,
    /// E-mail over SMTP.
    Email,
}

impl SinkKind {
    /// Every kind, in the order messages list them.
    pub fn all() -> &'static [SinkKind] {
        &[
            SinkKind::Webhook,
            SinkKind::Slack,
            SinkKind::Teams,
            SinkKind::PagerDuty,
            SinkKind::Alertmanager,
            SinkKind::Email,
        ]
    }

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Teams => "teams",
            SinkKind::PagerDuty => "pagerduty",
            SinkKind::Alertmanager => "alertmanager",
            SinkKind::Email => "email",
        }
    }
}

/// One `[[sinks]]` entry, validated.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Its id, which routes list and receipts name.
    pub id: String,
    /// How long one attempt may take, connection to answer.
    pub timeout: Duration,
    /// A template for the title, replacing the kind's default.
    pub title_template: Option<String>,
    /// A template for the body text, replacing the kind's default.
    pub body_template: Option<String>,
    /// What kind and where.
    pub settings: SinkSettings,
}

/// A sink's kind and the settings only it has.
#[derive(Debug, Clone)]
pub enum SinkSettings {
    /// `kind = "webhook"`.
    Webhook {
        /// Where to POST (secret: some receivers put their credential in it).
        url: SecretString,
        /// The signing secret, `whsec_<base64>` or raw text; unsigned when absent.
        secret: Option<SecretString>,
    },
    /// `kind = "slack"`.
    Slack {
        /// The incoming webhook URL (the URL is the credential).
        url: SecretString,
    },
    /// `kind = "teams"`.
    Teams {
        /// The Workflows trigger URL (its `sig=` parameter is the credential).
        url: SecretString,
    },
    /// `kind = "pagerduty"`.
    PagerDuty {
        /// The Events API v2 enqueue URL; `https://events.pagerduty.com/v2/enqueue` unless set.
        url: String,
        /// The integration's routing key.
        routing_key: SecretString,
    },
    /// `kind = "alertmanager"`.
    Alertmanager {
        /// Each Alertmanager's base URL: an HA pair is sent to both, not through a balancer.
        urls: Vec<String>,
        /// How often firing alerts are posted again, so Alertmanager does not time them out.
        resend_every: Duration,
        /// How long a resolved alert keeps being posted (Alertmanager forgets on restart).
        resolved_for: Duration,
        /// A bearer token for an Alertmanager behind an authenticating proxy.
        bearer_token: Option<SecretString>,
    },
    /// `kind = "email"`.
    Email(EmailSettings),
}

impl SinkSettings {
    /// Its kind.
    pub fn kind(&self) -> SinkKind {
        match self {
            SinkSettings::Webhook { .. } => SinkKind::Webhook,
            SinkSettings::Slack { .. } => SinkKind::Slack,
            SinkSettings::Teams { .. } => SinkKind::Teams,
            SinkSettings::PagerDuty { .. } => SinkKind::PagerDuty,
            SinkSettings::Alertmanager { .. } => SinkKind::Alertmanager,
            SinkSettings::Email(_) => SinkKind::Email,
        }
    }
}

/// `kind = "email"` settings.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The SMTP server: one that does not depend on Microsoft 365, or the mail will not leave.
    pub host: String,
    /// Its port; 587 for STARTTLS, 465 for implicit TLS, 25 unless set otherwise for none.
    pub port: u16,
    /// How the connection is secured.
    pub tls: SmtpTls,
    /// The SMTP user, when the server wants one.
    pub username: Option<String>,
    /// The SMTP password.
    pub password: Option<SecretString>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587): the default.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine or the simulator.
    None,
}

/// What a sink is asked to deliver: the event and the words for people, rendered from the
/// sink's templates.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// The event.
    pub event: &'a AlertEvent,
    /// One line: the message's title, subject or summary.
    pub title: String,
    /// The body text.
    pub body: String,
}

/// A sink's receipt of a delivery, for people: what the vendor answered ("HTTP 202", "250 OK").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The vendor's answer, with no secret in it.
    pub detail: String,
}

/// Why a delivery failed. The message names the sink's kind and what went wrong, never its URL,
/// token or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again: a timeout, a network error, 429 or 5xx, an SMTP 4yz reply.
    #[error("{message}")]
    Transient {
        /// What happened.
        message: String,
        /// How long the vendor asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Trying again will not help: 400, 401, 403, 404, 410, an SMTP 5yz reply, a message the
    /// vendor refuses.
    #[error("{message}")]
    Permanent {
        /// What happened.
        message: String,
    },
}

/// A sink ready to deliver: its kind's transport, built once from a [`SinkSpec`] (URLs checked,
/// templates compiled, the SMTP transport set up), and its templates.
///
/// Its `Debug` shows only the id and kind: everything else may be a secret.
pub struct Sink {
    id: String,
    kind: SinkKind,
    timeout: Duration,
    templates: Templates,
    transport: Transport,
    redactor: Redactor,
}

/// What each kind keeps between deliveries.
enum Transport {
    Webhook(webhook::Webhook),
    Slack(slack::Slack),
    Teams(teams::Teams),
    PagerDuty(pagerduty::PagerDuty),
    Alertmanager(alertmanager::Alertmanager),
    Email(email::Email),
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Builds a sink from its validated spec, sharing `http` (one connection pool for all
    /// sinks). Fails with a message naming the sink and what is wrong (a template that does not
    /// compile, a URL that does not parse, an address lettre refuses), never a secret.
    pub fn build(spec: SinkSpec, http: reqwest::Client) -> Result<Sink, String> {
        let kind = spec.settings.kind();
        let name = format!("sink {} ({})", spec.id, kind.as_str());
        if spec.timeout.is_zero() {
            return Err(format!("{name}: timeout must be more than zero"));
        }
        let templates = Templates::new(
            kind,
            spec.title_template.as_deref(),
            spec.body_template.as_deref(),
        )
        .map_err(|e| format!("{name}: {e}"))?;
        let mut redactor = Redactor::default();
        let transport = match spec.settings {
            SinkSettings::Webhook { url, secret } => {
                redactor.url(&url);
                if let Some(secret) = &secret {
                    redactor.secret(secret);
                }
                webhook::Webhook::build(http, url, secret).map(Transport::Webhook)
            }
            SinkSettings::Slack { url } => {
                redactor.url(&url);
                slack::Slack::build(http, url).map(Transport::Slack)
            }
            SinkSettings::Teams { url } => {
                redactor.url(&url);
                teams::Teams::build(http, url).map(Transport::Teams)
            }
            SinkSettings::PagerDuty { url, routing_key } => {
                redactor.secret(&routing_key);
                pagerduty::PagerDuty::build(http, url, routing_key).map(Transport::PagerDuty)
            }
            SinkSettings::Alertmanager {
                urls,
                resend_every,
                resolved_for,
                bearer_token,
            } => {
                if let Some(token) = &bearer_token {
                    redactor.secret(token);
                }
                alertmanager::Alertmanager::build(
                    http,
                    urls,
                    resend_every,
                    resolved_for,
                    bearer_token,
                )
                .map(Transport::Alertmanager)
            }
            SinkSettings::Email(settings) => {
                if let Some(password) = &settings.password {
                    redactor.secret(password);
                }
                email::Email::build(settings, spec.timeout).map(Transport::Email)
            }
        }
        .map_err(|e| format!("{name}: {e}"))?;
        Ok(Sink {
            id: spec.id,
            kind,
            timeout: spec.timeout,
            templates,
            transport,
            redactor,
        })
    }

    /// Its id, as routes and receipts name it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its kind.
    pub fn kind(&self) -> SinkKind {
        self.kind
    }

    /// The title and body this sink would send for `event`, from its templates (a failing user
    /// template falls back to the default, so there is always something to send).
    pub fn notice<'a>(&self, event: &'a AlertEvent) -> Notice<'a> {
        let (title, body) = self.templates.render(event);
        Notice { event, title, body }
    }

    /// One delivery attempt of `event`, limited by the spec's timeout. No retries: the delivery
    /// worker decides whether and when to try again, from the error's class and `retry_after`.
    /// Neither the receipt nor the error holds the sink's URL, token or password.
    pub async fn send(&self, event: &AlertEvent) -> Result<Sent, SinkError> {
        let notice = self.notice(event);
        let attempt = async {
            match &self.transport {
                Transport::Webhook(sink) => sink.send(&notice).await,
                Transport::Slack(sink) => sink.send(&notice).await,
                Transport::Teams(sink) => sink.send(&notice).await,
                Transport::PagerDuty(sink) => sink.send(&notice).await,
                Transport::Alertmanager(sink) => sink.send(&notice).await,
                Transport::Email(sink) => sink.send(&notice).await,
            }
        };
        self.finish(attempt).await
    }

    /// Alertmanager only: how often [`Sink::refresh`] is due (`resend_every`).
    pub fn resend_every(&self) -> Option<Duration> {
        match &self.transport {
            Transport::Alertmanager(sink) => Some(sink.resend_every()),
            _ => None,
        }
    }

    /// Alertmanager only: posts the current state again, which is both how Alertmanager is kept
    /// from timing out a firing alert and how it hears of a resolution after a restart. Firing
    /// alerts get `endsAt` = now + 3 × `resend_every`; resolved ones keep `endsAt` = their
    /// resolution time and are left out once older than `resolved_for`. `Ok(None)` when there is
    /// nothing to post, and for every other kind (they have no state to refresh).
    pub async fn refresh(
        &self,
        firing: &[AlertEvent],
        resolved: &[AlertEvent],
    ) -> Result<Option<Sent>, SinkError> {
        let Transport::Alertmanager(sink) = &self.transport else {
            return Ok(None);
        };
        let Some(alerts) = sink.refresh_alerts(firing, resolved, |e| self.notice(e)) else {
            return Ok(None);
        };
        self.finish(sink.post(alerts)).await.map(Some)
    }

    /// Applies the time limit and takes any secret out of the outcome's words.
    async fn finish(
        &self,
        attempt: impl Future<Output = Result<Sent, SinkError>>,
    ) -> Result<Sent, SinkError> {
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SinkError::Transient {
                message: format!(
                    "{}: no answer within {}",
                    self.kind.as_str(),
                    humantime::format_duration(self.timeout)
                ),
                retry_after: None,
            }),
        };
        match outcome {
            Ok(sent) => Ok(Sent {
                detail: self.redactor.apply(&sent.detail),
            }),
            Err(SinkError::Transient {
                message,
                retry_after,
            }) => Err(SinkError::Transient {
                message: self.redactor.apply(&message),
                retry_after,
            }),
            Err(SinkError::Permanent { message }) => Err(SinkError::Permanent {
                message: self.redactor.apply(&message),
            }),
        }
    }
}

impl SinkError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Transient { .. })
    }

    /// The message, without the class.
    pub fn message(&self) -> &str {
        match self {
            SinkError::Transient { message, .. } | SinkError::Permanent { message } => message,
        }
    }
}

/// Secrets (or the parts of them that could be echoed back, such as a webhook URL's path) that
/// are replaced in every outcome's text: the last guard, should a vendor or library repeat them.
#[derive(Default)]
struct Redactor {
    fragments: Vec<SecretString>,
}

impl Redactor {
    /// Shortest fragment worth replacing: shorter ones would mangle ordinary words.
    const MIN: usize = 6;
    /// Shortest URL part taken for a token on its own: Slack's and Teams' are 24 and more.
    const TOKEN: usize = 12;

    fn secret(&mut self, secret: &SecretString) {
        self.add(secret.expose_secret());
    }

    /// A URL whose path and query carry its credential.
    fn url(&mut self, url: &SecretString) {
        let text = url.expose_secret();
        self.add(text);
        if let Ok(parsed) = reqwest::Url::parse(text) {
            self.add(parsed.path());
            // A token is one long path segment (Slack's last one) or a query value (`sig=`).
            for segment in parsed.path().split('/') {
                if segment.len() >= Self::TOKEN {
                    self.add(segment);
                }
            }
            if let Some(query) = parsed.query() {
                self.add(query);
            }
            for (_, value) in parsed.query_pairs() {
                if value.len() >= Self::TOKEN {
                    self.add(&value);
                }
            }
        }
    }

    fn add(&mut self, fragment: &str) {
        if fragment.len() >= Self::MIN {
            self.fragments
                .push(SecretString::from(fragment.to_string()));
        }
    }

    fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for fragment in &self.fragments {
            let fragment = fragment.expose_secret();
            if out.contains(fragment) {
                out = out.replace(fragment, "[redacted]");
            }
        }
        out
    }
}

/// The most of a vendor's answer that is read: enough for any error code or message, and no
/// more, so a misbehaving endpoint cannot make us buffer megabytes.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A vendor's HTTP answer, its body read up to [`MAX_ANSWER_BYTES`].
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status code.
    pub status: u16,
    /// The body (lossy UTF-8, capped).
    pub body: String,
    /// `Retry-After`, when given and readable.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first line or so of the body, tidied for a message: control characters gone,
    /// whitespace collapsed, at most 200 characters.
    pub fn snippet(&self) -> String {
        snippet(&self.body)
    }

    /// `"{kind}: HTTP {status}"`, with the body's snippet in brackets when it has one.
    pub fn describe(&self, kind: SinkKind) -> String {
        let snippet = self.snippet();
        if snippet.is_empty() {
            format!("{}: HTTP {}", kind.as_str(), self.status)
        } else {
            format!("{}: HTTP {} ({snippet})", kind.as_str(), self.status)
        }
    }

    /// The usual classification of a failed answer: 408, 429 and 5xx are worth another try
    /// (with the vendor's `Retry-After`); any other status (4xx, a redirect not followed) will
    /// fail the same way again.
    pub fn error(&self, kind: SinkKind) -> SinkError {
        let message = self.describe(kind);
        if self.status == 408 || self.status == 429 || self.status >= 500 {
            SinkError::Transient {
                message,
                retry_after: self.retry_after,
            }
        } else {
            SinkError::Permanent { message }
        }
    }
}

/// POSTs `body` to `url` with `headers` through the shared client and reads the answer (capped).
/// Network failures are transient and named without the URL (`reqwest::Error::without_url`).
/// The attempt's time limit is applied by the caller ([`Sink::send`]) around the whole call.
pub(crate) async fn post(
    http: &reqwest::Client,
    kind: SinkKind,
    url: &str,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
) -> Result<Answer, SinkError> {
    let response = http
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| request_error(kind, e))?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers(), chrono::Utc::now());
    let body = read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| request_error(kind, e))?;
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

/// [`post`]s `value` as JSON.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    kind: SinkKind,
    url: &str,
    value: &impl serde::Serialize,
) -> Result<Answer, SinkError> {
    post(http, kind, url, json_headers(), to_json(kind, value)?).await
}

/// Reads at most `cap` bytes of a response body, dropping the rest unread.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<String, reqwest::Error> {
    let mut bytes = Vec::new();
    while bytes.len() < cap {
        match response.chunk().await? {
            Some(chunk) => {
                let room = cap - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A reqwest failure as a sink error, without its URL: a request that could not even be built
/// is permanent, anything on the way (connect, TLS, timeout, a body cut short) transient.
fn request_error(kind: SinkKind, error: reqwest::Error) -> SinkError {
    let error = error.without_url();
    let message = format!("{}: {}", kind.as_str(), error_chain(&error));
    if error.is_builder() {
        SinkError::Permanent { message }
    } else {
        SinkError::Transient {
            message,
            retry_after: None,
        }
    }
}

/// An error and its sources, `": "`-separated, skipping a source already said by its parent.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = inner.source();
    }
    out
}

/// `text` tidied for one line of a message (see [`Answer::snippet`]).
pub(crate) fn snippet(text: &str) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    crate::alerts::templates::truncate_chars(&words.join(" "), 200)
}

/// The `"application/json"` content type, the headers every JSON sink starts from.
pub(crate) fn json_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    headers
}

/// Serializes a payload; failure (which serde_json only reports for maps with non-string keys
/// and failing `Serialize` impls, neither of which we have) is permanent.
pub(crate) fn to_json(kind: SinkKind, value: &impl serde::Serialize) -> Result<Vec<u8>, SinkError> {
    serde_json::to_vec(value).map_err(|e| SinkError::Permanent {
        message: format!("{}: could not encode the payload: {e}", kind.as_str()),
    })
}

/// A URL that is itself a credential (Slack's, Teams', a webhook's) and the shared client that
/// posts to it.
pub(crate) struct Endpoint {
    http: reqwest::Client,
    url: SecretString,
}

impl Endpoint {
    /// Checks that the URL parses and is http(s); the error says what is wrong with it without
    /// repeating it (configuration validation has already held it to https, or http on loopback).
    pub fn new(http: reqwest::Client, url: SecretString) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url.expose_secret())
            .map_err(|e| format!("url is not a valid URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("url must be an http or https URL".to_string());
        }
        Ok(Endpoint { http, url })
    }

    /// [`post`]s `body` with `headers`.
    pub async fn post(
        &self,
        kind: SinkKind,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, SinkError> {
        post(&self.http, kind, self.url.expose_secret(), headers, body).await
    }

    /// [`post_json`]s `value`.
    pub async fn post_json(
        &self,
        kind: SinkKind,
        value: &impl serde::Serialize,
    ) -> Result<Answer, SinkError> {
        post_json(&self.http, kind, self.url.expose_secret(), value).await
    }
}

/// Checks a base URL (PagerDuty's, an Alertmanager's) by the rules configuration validation
/// applies ([`statusmon_channels::http::base_url`]), without its message, which repeats the URL.
pub(crate) fn check_base_url(what: &str, url: &str) -> Result<(), String> {
    statusmon_channels::http::base_url(what, url)
        .map(|_| ())
        .map_err(|_| format!("{what} must be an http(s) URL with a host and no query or fragment"))
}
