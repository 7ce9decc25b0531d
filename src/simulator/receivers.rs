//! Receivers for every alert sink, so tests and `statusmon drill` can deliver alerts to the
//! simulator and then check what arrived, in which order, how often, and whether a signature was
//! right.
//!
//! Each receiver answers the way its vendor does (alert-sinks reference, §1–§5), on the vendor's
//! path under `/hooks/`:
//!
//! - `POST /hooks/webhook/{name}`: a Standard Webhooks receiver. It checks `webhook-signature`
//!   against [`SIM_WEBHOOK_SECRET`] (HMAC-SHA256 over `"{webhook-id}.{webhook-timestamp}.{body}"`,
//!   any one of a space-separated list of `v1,<base64>` may match, the timestamp within ±5 min of
//!   the simulator's clock) and records the outcome, but answers 200 whatever it is, so a test
//!   sees a bad signature in the log instead of in a retry loop;
//! - `POST /hooks/slack/{name}`: 200 `ok`; 400 `invalid_payload` (not JSON) or `no_text`;
//! - `POST /hooks/teams/{name}`: a Workflows trigger: 202 for an Adaptive Card message, 400
//!   otherwise, 413 above [`TEAMS_MAX_BYTES`];
//! - `POST /hooks/pagerduty/v2/enqueue`: Events API v2, with PagerDuty's open-alert bookkeeping
//!   (a trigger opens an alert, which is a page, unless one is open for its `dedup_key`);
//! - `POST /hooks/alertmanager/api/v2/alerts`: alerts by label set, with `startsAt`/`endsAt`
//!   defaulted as Alertmanager does and a count of posts per label set;
//! - e-mail arrives over SMTP (`smtp`), into the same log.
//!
//! Every request, whatever its answer, is one [`HookDelivery`] in one log, in arrival order, so
//! "everything arrived afterwards, in order, once per key" is a question about that log. The log
//! keeps at most [`MAX_HOOK_DELIVERIES`] entries and 64 MiB of bodies (oldest dropped first), and
//! each body is capped at [`MAX_HOOK_BODY`], so a flood cannot grow memory without bound.
//!
//! A receiver can be switched down (`webhook/ops`, `slack/x`, `teams/x`, `pagerduty`,
//! `alertmanager`, `email`): it then answers 503 with `Retry-After: 1` (SMTP: 421 at greeting,
//! 451 at DATA), and the refused request is still logged, flagged `refused`.
//!
//! The receivers are not upstreams: they are never counted as upstream requests and never see
//! the site scenario's transport faults.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::social::{param, query_pairs};
use super::{SimState, lock};

/// The secret the webhook receiver verifies signatures with, in the `whsec_<base64>` form
/// Standard Webhooks shows to users: point a webhook sink's secret at this value and its
/// deliveries are logged with `signature: "valid"`.
pub const SIM_WEBHOOK_SECRET: &str = "whsec_YNWr6s+9FMGDhUpddAVtnPxBdXwZJ+bWb+YGf8tsme8=";

/// How many deliveries the log keeps; older ones are dropped first (and counted as evicted).
pub const MAX_HOOK_DELIVERIES: usize = 10_000;

/// The largest request body a receiver reads; a larger one is answered 413 (PagerDuty's own
/// limit is 512 KB, so no real sink payload comes near this).
pub const MAX_HOOK_BODY: usize = 1024 * 1024;

/// The largest Teams message accepted: Teams refuses messages over 28 KB.
pub const TEAMS_MAX_BYTES: usize = 28 * 1024;

/// How far a webhook timestamp may be from the simulator's clock and still verify (the Standard
/// Webhooks reference library's tolerance): a sender that re-sends an old attempt's timestamp
/// shows up as `invalid`.
const WEBHOOK_TOLERANCE_SECS: i64 = 5 * 60;

/// The bodies the log keeps at most, in bytes, on top of the entry cap.
const MAX_LOG_BYTES: usize = 64 * 1024 * 1024;

/// Receivers that can be switched down at once (names come from requests, so bounded).
const MAX_DOWN: usize = 256;

/// Open PagerDuty alerts tracked at once; beyond that a trigger for a new key gets 429.
const MAX_OPEN_PAGERDUTY: usize = 10_000;

/// Dedup keys whose pages are counted one by one; beyond that only the total counts.
const MAX_PAGE_KEYS: usize = 10_000;

/// Alertmanager label sets tracked at once; beyond that new label sets are refused (500).
const MAX_ALERTMANAGER_ALERTS: usize = 10_000;

/// Alertmanager's default `resolve_timeout`: an alert posted without `endsAt` ends this long
/// after its last post.
const ALERTMANAGER_RESOLVE_TIMEOUT_SECS: i64 = 5 * 60;

/// The longest receiver name (`{name}` in `/hooks/webhook/{name}`).
const MAX_NAME_LEN: usize = 64;

/// Request headers worth keeping in the log: the signing headers and idempotency keys a sink
/// sends, and what identifies it.
const RECORDED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-statusmon-idempotency-key",
    "idempotency-key",
    "content-type",
    "user-agent",
];

/// The longest header value kept in the log.
const MAX_HEADER_VALUE: usize = 1024;

/// The e-mail header carrying a delivery's idempotency key (sinks other than the signed webhook
/// may send it as an HTTP header too).
pub(crate) const IDEMPOTENCY_HEADER: &str = "x-statusmon-idempotency-key";

// ---------------------------------------------------------------------------------------------
// The public record types.

/// One request to one receiver, as the simulator saw and answered it: what tests assert
/// delivery, order, duplicates and signatures on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDelivery {
    /// Arrival order, from 1; never reused, not even after a reset.
    pub seq: u64,
    /// `webhook/{name}`, `slack/{name}`, `teams/{name}`, `pagerduty`, `alertmanager` or `email`.
    pub receiver: String,
    /// When it arrived (the simulator's clock).
    pub at: DateTime<Utc>,
    /// The HTTP status answered (for e-mail, the SMTP reply code).
    pub status: u16,
    /// Whether the receiver was switched down and refused it (503, or SMTP 421/451).
    pub refused: bool,
    /// The sender's idempotency key: the `webhook-id` header for webhooks, the
    /// `X-Statusmon-Idempotency-Key` header (message header for e-mail, HTTP header otherwise).
    pub idempotency_key: Option<String>,
    /// The signature check, for the webhook receiver only (None when the request was refused
    /// before it was checked: receiver down, or body too large).
    pub signature: Option<SignatureCheck>,
    /// The recognised request headers (signing headers, idempotency keys, content type, user
    /// agent), lower-case names; empty for e-mail.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body: parsed JSON when it is JSON, else its text (for e-mail, the message as received
    /// after dot-unstuffing; empty when it was refused or too large).
    pub body: Value,
    /// The SMTP envelope, for e-mail only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailEnvelope>,
}

/// The SMTP envelope of an e-mail delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailEnvelope {
    /// The `MAIL FROM` path (empty for the null sender `<>`).
    pub from: String,
    /// The `RCPT TO` paths, in order.
    pub to: Vec<String>,
    /// The SASL mechanism the client authenticated with (`PLAIN`, `LOGIN`), if it did. Only the
    /// fact is kept: credentials are accepted whatever they are and never stored.
    pub auth: Option<String>,
    /// The message's `Subject` header as sent (possibly RFC 2047 encoded).
    pub subject: Option<String>,
}

/// What the webhook receiver made of a delivery's `webhook-signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureCheck {
    /// A `v1` signature matched and the timestamp was within tolerance.
    Valid,
    /// A signature was sent but none matched, `webhook-id` or `webhook-timestamp` was missing,
    /// or the timestamp was not Unix seconds within ±5 minutes.
    Invalid,
    /// No `webhook-signature` header.
    Absent,
}

/// The PagerDuty receiver's view: what is open, and how often it paged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerDutyState {
    /// Open (triggered or acknowledged) alerts, oldest first.
    pub open: Vec<PagerDutyAlert>,
    /// Alerts opened so far: each is a page.
    pub pages: u64,
    /// Pages per `dedup_key` (across routing keys).
    pub pages_by_dedup_key: BTreeMap<String, u64>,
    /// Alerts resolved so far.
    pub resolved: u64,
    /// Events accepted (202) so far.
    pub events: u64,
    /// Accepted `acknowledge`/`resolve` events that matched no open alert, which PagerDuty drops.
    pub dropped: u64,
}

/// One open PagerDuty alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerDutyAlert {
    /// The integration key it arrived on; later events match only on the same key.
    pub routing_key: String,
    /// Its dedup key (generated when the opening trigger had none).
    pub dedup_key: String,
    /// `payload.summary` of the opening trigger.
    pub summary: String,
    /// `payload.source` of the opening trigger.
    pub source: String,
    /// `payload.severity` of the opening trigger.
    pub severity: String,
    /// Whether an `acknowledge` arrived.
    pub acknowledged: bool,
    /// Trigger events applied to it, the opening one included.
    pub triggers: u64,
    /// When the opening trigger arrived.
    pub opened_at: DateTime<Utc>,
}

/// The Alertmanager receiver's view: one alert per label set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertmanagerState {
    /// Every label set seen (since the last reset), sorted by label set.
    pub alerts: Vec<AlertmanagerAlert>,
}

/// One Alertmanager alert (one label set), as last posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerAlert {
    /// The identity.
    pub labels: BTreeMap<String, String>,
    /// The annotations of the latest post.
    pub annotations: BTreeMap<String, String>,
    /// As posted, else the start of the still-firing alert, else the time of the post.
    pub starts_at: DateTime<Utc>,
    /// As posted, else the latest post's time plus the 5 minute `resolve_timeout`.
    pub ends_at: DateTime<Utc>,
    /// `generatorURL` of the latest post.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: Option<String>,
    /// `firing` while `endsAt` is in the future, else `resolved` (as of the read).
    pub status: String,
    /// How many posts carried this label set.
    pub posts: u64,
}

// ---------------------------------------------------------------------------------------------
// Shared state.

/// The receivers' shared state: the delivery log, which receivers are down, and PagerDuty's and
/// Alertmanager's bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct HookState {
    inner: Mutex<Hooks>,
}

#[derive(Debug, Default)]
struct Hooks {
    last_seq: u64,
    log: VecDeque<(HookDelivery, usize)>,
    log_bytes: usize,
    evicted: u64,
    down: BTreeSet<String>,
    pagerduty: PagerDuty,
    alertmanager: BTreeMap<BTreeMap<String, String>, AlertmanagerEntry>,
}

#[derive(Debug, Default)]
struct PagerDuty {
    /// Open alerts by (routing key, dedup key).
    open: HashMap<(String, String), PagerDutyAlert>,
    pages: u64,
    pages_by_key: BTreeMap<String, u64>,
    resolved: u64,
    events: u64,
    dropped: u64,
}

#[derive(Debug)]
struct AlertmanagerEntry {
    annotations: BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    generator_url: Option<String>,
    posts: u64,
}

/// A delivery about to be logged (the log gives it its `seq` and time).
pub(crate) struct NewDelivery {
    pub(crate) receiver: String,
    pub(crate) status: u16,
    pub(crate) refused: bool,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) signature: Option<SignatureCheck>,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Value,
    /// The body's size as received, for the log's byte budget.
    pub(crate) size: usize,
    pub(crate) email: Option<EmailEnvelope>,
}

impl HookState {
    /// Appends `delivery` to the log, dropping the oldest entries beyond the caps; returns its
    /// `seq`.
    pub(crate) fn record(&self, delivery: NewDelivery) -> u64 {
        let size = delivery.size
            + delivery
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + 256;
        let mut hooks = lock(&self.inner);
        hooks.last_seq += 1;
        let seq = hooks.last_seq;
        hooks.log.push_back((
            HookDelivery {
                seq,
                receiver: delivery.receiver,
                at: Utc::now(),
                status: delivery.status,
                refused: delivery.refused,
                idempotency_key: delivery.idempotency_key,
                signature: delivery.signature,
                headers: delivery.headers,
                body: delivery.body,
                email: delivery.email,
            },
            size,
        ));
        hooks.log_bytes += size;
        while hooks.log.len() > MAX_HOOK_DELIVERIES
            || (hooks.log_bytes > MAX_LOG_BYTES && hooks.log.len() > 1)
        {
            let Some((_, dropped)) = hooks.log.pop_front() else {
                break;
            };
            hooks.log_bytes -= dropped;
            hooks.evicted += 1;
        }
        seq
    }

    /// The log, oldest first.
    pub(crate) fn deliveries(&self) -> Vec<HookDelivery> {
        self.deliveries_after(0, None)
    }

    /// The deliveries after `seq` `after` (to `receiver` only, if given), oldest first; only
    /// those are copied out of the log.
    pub(crate) fn deliveries_after(&self, after: u64, receiver: Option<&str>) -> Vec<HookDelivery> {
        lock(&self.inner)
            .log
            .iter()
            .map(|(d, _)| d)
            .filter(|d| d.seq > after && receiver.is_none_or(|r| d.receiver == r))
            .cloned()
            .collect()
    }

    /// Deliveries dropped from the log so far to keep it within its caps.
    pub(crate) fn evicted(&self) -> u64 {
        lock(&self.inner).evicted
    }

    /// Whether `receiver` is switched down.
    pub(crate) fn is_down(&self, receiver: &str) -> bool {
        lock(&self.inner).down.contains(receiver)
    }

    /// The receivers switched down, sorted.
    pub(crate) fn down(&self) -> Vec<String> {
        lock(&self.inner).down.iter().cloned().collect()
    }

    /// Switches `receiver` down or up. Returns its previous state, or None (changing nothing)
    /// for a name no receiver answers to, or when too many receivers are down already.
    pub(crate) fn set_down(&self, receiver: &str, down: bool) -> Option<bool> {
        if !valid_receiver(receiver) {
            return None;
        }
        let mut hooks = lock(&self.inner);
        let was = hooks.down.contains(receiver);
        if down && !was {
            if hooks.down.len() >= MAX_DOWN {
                return None;
            }
            hooks.down.insert(receiver.to_string());
        } else if !down {
            hooks.down.remove(receiver);
        }
        Some(was)
    }

    /// Forgets every delivery, down switch and PagerDuty/Alertmanager alert (`seq` keeps
    /// counting, so deliveries from before and after a reset never share a number).
    pub(crate) fn reset(&self) {
        let mut hooks = lock(&self.inner);
        let last_seq = hooks.last_seq;
        *hooks = Hooks {
            last_seq,
            ..Hooks::default()
        };
    }

    /// PagerDuty's state now.
    pub(crate) fn pagerduty(&self) -> PagerDutyState {
        let hooks = lock(&self.inner);
        let pd = &hooks.pagerduty;
        let mut open: Vec<PagerDutyAlert> = pd.open.values().cloned().collect();
        open.sort_by(|a, b| {
            (a.opened_at, &a.routing_key, &a.dedup_key).cmp(&(
                b.opened_at,
                &b.routing_key,
                &b.dedup_key,
            ))
        });
        PagerDutyState {
            open,
            pages: pd.pages,
            pages_by_dedup_key: pd.pages_by_key.clone(),
            resolved: pd.resolved,
            events: pd.events,
            dropped: pd.dropped,
        }
    }

    /// Alertmanager's state now (an alert's status is judged against the current time).
    pub(crate) fn alertmanager(&self) -> AlertmanagerState {
        let now = Utc::now();
        let hooks = lock(&self.inner);
        AlertmanagerState {
            alerts: hooks
                .alertmanager
                .iter()
                .map(|(labels, entry)| AlertmanagerAlert {
                    labels: labels.clone(),
                    annotations: entry.annotations.clone(),
                    starts_at: entry.starts_at,
                    ends_at: entry.ends_at,
                    generator_url: entry.generator_url.clone(),
                    status: if entry.ends_at > now {
                        "firing"
                    } else {
                        "resolved"
                    }
                    .to_string(),
                    posts: entry.posts,
                })
                .collect(),
        }
    }
}

/// Whether `name` can name a receiver instance (`{name}` in `/hooks/slack/{name}`).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether some receiver answers to `receiver` (`webhook/ops`, `pagerduty`, `email`, …).
pub(crate) fn valid_receiver(receiver: &str) -> bool {
    match receiver.split_once('/') {
        Some((kind, name)) => matches!(kind, "webhook" | "slack" | "teams") && valid_name(name),
        None => matches!(receiver, "pagerduty" | "alertmanager" | "email"),
    }
}

/// The receiver patterns, for error messages.
const RECEIVER_PATTERNS: &[&str] = &[
    "webhook/{name}",
    "slack/{name}",
    "teams/{name}",
    "pagerduty",
    "alertmanager",
    "email",
];

// ---------------------------------------------------------------------------------------------
// Routes.

/// The prefix of every receiver path.
const PREFIX: &str = "/hooks";

/// Whether `path` is a receiver path (not an upstream request: neither counted nor faulted).
pub(crate) fn is_hook_path(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The receivers and their control endpoints under `/_sim/hooks`.
pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .route("/hooks/webhook/{name}", post(webhook))
        .route("/hooks/slack/{name}", post(slack))
        .route("/hooks/teams/{name}", post(teams))
        .route("/hooks/pagerduty/v2/enqueue", post(pagerduty))
        .route("/hooks/alertmanager/api/v2/alerts", post(alertmanager))
        .route("/_sim/hooks", get(control_status))
        .route("/_sim/hooks/pagerduty", get(control_pagerduty))
        .route("/_sim/hooks/alertmanager", get(control_alertmanager))
        .route("/_sim/hooks/reset", post(control_reset))
        .route("/_sim/hooks/{*switch}", post(control_switch))
}

/// A request read far enough to log it.
struct Incoming {
    receiver: String,
    headers: BTreeMap<String, String>,
    idempotency_key: Option<String>,
    bytes: Bytes,
    /// The body parsed as JSON, once, for the receiver's logic and for the log.
    json: Result<Value, serde_json::Error>,
}

impl Incoming {
    /// The body's JSON, if it is JSON.
    fn json(&self) -> Option<&Value> {
        self.json.as_ref().ok()
    }

    fn log(
        self,
        state: &SimState,
        status: StatusCode,
        refused: bool,
        signature: Option<SignatureCheck>,
    ) {
        state.hooks().record(NewDelivery {
            // As logged: its JSON, else its text.
            body: self.json.unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&self.bytes).into_owned())
            }),
            size: self.bytes.len(),
            receiver: self.receiver,
            status: status.as_u16(),
            refused,
            idempotency_key: self.idempotency_key,
            signature,
            headers: self.headers,
            email: None,
        });
    }
}

/// What a receiver's own logic decided.
struct Answer {
    response: Response,
    signature: Option<SignatureCheck>,
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer {
            response,
            signature: None,
        }
    }
}

/// The part every receiver shares: refuses a `receiver` name no receiver answers to (404),
/// takes the idempotency key from the `key_header` request header, reads the body (413 beyond
/// [`MAX_HOOK_BODY`]), refuses while the receiver is down, lets `handle` answer, and logs the
/// request with the answer.
async fn receive(
    state: &SimState,
    receiver: String,
    key_header: &str,
    headers: &HeaderMap,
    body: Body,
    handle: impl FnOnce(&SimState, &Incoming) -> Answer,
) -> Response {
    if !valid_receiver(&receiver) {
        return no_such_receiver();
    }
    let (bytes, too_large) = match axum::body::to_bytes(body, MAX_HOOK_BODY).await {
        Ok(bytes) => (bytes, false),
        Err(error) => {
            tracing::debug!(%receiver, %error, "hook body not read");
            (Bytes::new(), true)
        }
    };
    let headers = recorded_headers(headers);
    let incoming = Incoming {
        receiver,
        idempotency_key: headers.get(key_header).cloned(),
        headers,
        json: serde_json::from_slice(&bytes),
        bytes,
    };
    if too_large {
        let response = text_response(StatusCode::PAYLOAD_TOO_LARGE, "request entity too large");
        incoming.log(state, response.status(), false, None);
        return response;
    }
    if state.hooks().is_down(&incoming.receiver) {
        let response = (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::RETRY_AFTER, "1"),
            ],
            "receiver down (simulator)\n",
        )
            .into_response();
        incoming.log(state, response.status(), true, None);
        return response;
    }
    let Answer {
        response,
        signature,
    } = handle(state, &incoming);
    incoming.log(state, response.status(), false, signature);
    response
}

/// The recognised request headers ([`RECORDED_HEADERS`]), lower-case names, values capped.
fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    RECORDED_HEADERS
        .iter()
        .filter_map(|name| header_text(headers, name).map(|value| (name.to_string(), value)))
        .collect()
}

/// A header's value as text (lossy, capped), if present.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    Some(text.chars().take(MAX_HEADER_VALUE).collect())
}

fn text_response(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn no_such_receiver() -> Response {
    receivers_not_found("no such receiver: a name is 1 to 64 letters, digits, '-', '_' or '.'")
}

/// 404 `{"error", "receivers"}`, listing the receiver patterns.
fn receivers_not_found(error: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": error, "receivers": RECEIVER_PATTERNS})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Generic signed webhook (Standard Webhooks).

async fn webhook(
    State(state): State<SimState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(
        &state,
        format!("webhook/{name}"),
        "webhook-id",
        &headers,
        body,
        |_, incoming| {
            let header = |name: &str| incoming.headers.get(name).map(String::as_str);
            Answer {
                response: StatusCode::OK.into_response(),
                signature: Some(verify_signature(
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                    &incoming.bytes,
                    Utc::now(),
                )),
            }
        },
    )
    .await
}

/// Checks a Standard Webhooks signature against [`SIM_WEBHOOK_SECRET`], written from the spec
/// (not shared with the sink, so the two check each other).
fn verify_signature(
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> SignatureCheck {
    let Some(signatures) = signatures else {
        return SignatureCheck::Absent;
    };
    let (Some(id), Some(timestamp)) = (id, timestamp) else {
        return SignatureCheck::Invalid;
    };
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|ts| now.timestamp().abs_diff(ts) <= WEBHOOK_TOLERANCE_SECS.unsigned_abs());
    if !fresh {
        return SignatureCheck::Invalid;
    }
    let Some(key) = SIM_WEBHOOK_SECRET
        .strip_prefix("whsec_")
        .and_then(|encoded| BASE64.decode(encoded).ok())
    else {
        return SignatureCheck::Invalid;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return SignatureCheck::Invalid;
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matched = signatures
        .split(' ')
        .filter_map(|candidate| candidate.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, encoded)| BASE64.decode(encoded).ok())
        // `verify_slice` compares in constant time.
        .any(|sent| mac.clone().verify_slice(&sent).is_ok());
    if matched {
        SignatureCheck::Valid
    } else {
        SignatureCheck::Invalid
    }
}

// ---------------------------------------------------------------------------------------------
// Slack and Teams: no state beyond the log.

async fn slack(
    State(state): State<SimState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(
        &state,
        format!("slack/{name}"),
        IDEMPOTENCY_HEADER,
        &headers,
        body,
        |_, incoming| {
            let Some(message) = incoming.json().filter(|message| message.is_object()) else {
                return text_response(StatusCode::BAD_REQUEST, "invalid_payload").into();
            };
            match message.get("text").and_then(Value::as_str) {
                Some(text) if !text.trim().is_empty() => text_response(StatusCode::OK, "ok").into(),
                _ => text_response(StatusCode::BAD_REQUEST, "no_text").into(),
            }
        },
    )
    .await
}

async fn teams(
    State(state): State<SimState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&state, format!("teams/{name}"), IDEMPOTENCY_HEADER, &headers, body, |_, incoming| {
        if incoming.bytes.len() > TEAMS_MAX_BYTES {
            return teams_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "MessageSizeExceeded",
                format!(
                    "Request Entity too large: {} bytes, whereas max allowed size is {TEAMS_MAX_BYTES} bytes",
                    incoming.bytes.len()
                ),
            )
            .into();
        }
        match teams_problem(incoming.json()) {
            None => StatusCode::ACCEPTED.into_response().into(),
            Some(problem) => {
                teams_error(StatusCode::BAD_REQUEST, "InvalidRequestContent", problem).into()
            }
        }
    })
    .await
}

/// What is wrong with a Teams Workflows message, if anything.
fn teams_problem(message: Option<&Value>) -> Option<String> {
    let Some(message) = message else {
        return Some("the request content is not valid JSON".into());
    };
    if message.get("type").and_then(Value::as_str) != Some("message") {
        return Some("'type' must be \"message\"".into());
    }
    let attachments = match message.get("attachments").and_then(Value::as_array) {
        Some(attachments) if !attachments.is_empty() => attachments,
        _ => return Some("'attachments' must be a non-empty array".into()),
    };
    for (i, attachment) in attachments.iter().enumerate() {
        if attachment.get("contentType").and_then(Value::as_str)
            != Some("application/vnd.microsoft.card.adaptive")
        {
            return Some(format!(
                "attachments[{i}].contentType must be \"application/vnd.microsoft.card.adaptive\""
            ));
        }
        if !attachment.get("content").is_some_and(Value::is_object) {
            return Some(format!(
                "attachments[{i}].content must be an Adaptive Card object"
            ));
        }
    }
    None
}

fn teams_error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// PagerDuty Events API v2.

async fn pagerduty(State(state): State<SimState>, headers: HeaderMap, body: Body) -> Response {
    receive(
        &state,
        "pagerduty".into(),
        IDEMPOTENCY_HEADER,
        &headers,
        body,
        |state, incoming| match pagerduty_event(incoming.json.as_ref()) {
            Ok(event) => state.hooks().apply_pagerduty(event).into(),
            Err(errors) => (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": errors,
                })),
            )
                .into_response()
                .into(),
        },
    )
    .await
}

/// A valid PagerDuty event.
struct PagerDutyEvent {
    routing_key: String,
    action: PagerDutyAction,
    dedup_key: Option<String>,
}

enum PagerDutyAction {
    Trigger {
        summary: String,
        source: String,
        severity: String,
    },
    Acknowledge,
    Resolve,
}

/// Validates an event as PagerDuty does; the errors are PagerDuty-style messages.
fn pagerduty_event(
    event: Result<&Value, &serde_json::Error>,
) -> Result<PagerDutyEvent, Vec<String>> {
    let event = event.map_err(|e| vec![format!("Invalid JSON: {e}")])?;
    let Some(event) = event.as_object() else {
        return Err(vec!["Event object must be a JSON object".into()]);
    };
    let mut errors = Vec::new();
    let routing_key = match event.get("routing_key").and_then(Value::as_str) {
        Some(key) if key.chars().count() == 32 => Some(key.to_string()),
        Some(key) if !key.is_empty() => {
            errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".into());
            None
        }
        _ => {
            errors.push("'routing_key' is missing or blank".into());
            None
        }
    };
    let dedup_key = match event.get("dedup_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) if !key.is_empty() && key.chars().count() <= 255 => {
            Some(key.clone())
        }
        Some(_) => {
            errors.push("'dedup_key' must be a non-empty string of at most 255 characters".into());
            None
        }
    };
    let action = match event.get("event_action").and_then(Value::as_str) {
        Some("trigger") => trigger_payload(event.get("payload"), &mut errors),
        Some("acknowledge") => Some(PagerDutyAction::Acknowledge),
        Some("resolve") => Some(PagerDutyAction::Resolve),
        _ => {
            errors.push(
                "'event_action' is invalid (must be one of trigger, acknowledge, resolve)".into(),
            );
            None
        }
    };
    if matches!(
        action,
        Some(PagerDutyAction::Acknowledge | PagerDutyAction::Resolve)
    ) && matches!(event.get("dedup_key"), None | Some(Value::Null))
    {
        errors.push("'dedup_key' is required for acknowledge and resolve events".into());
    }
    match (routing_key, action) {
        (Some(routing_key), Some(action)) if errors.is_empty() => Ok(PagerDutyEvent {
            routing_key,
            action,
            dedup_key,
        }),
        _ => Err(errors),
    }
}

fn trigger_payload(payload: Option<&Value>, errors: &mut Vec<String>) -> Option<PagerDutyAction> {
    let Some(payload) = payload.and_then(Value::as_object) else {
        errors.push("'payload' is missing or not an object".into());
        return None;
    };
    let field =
        |name: &str, errors: &mut Vec<String>| match payload.get(name).and_then(Value::as_str) {
            Some(value) if !value.trim().is_empty() => Some(value.to_string()),
            _ => {
                errors.push(format!("'payload.{name}' is missing or blank"));
                None
            }
        };
    let summary = field("summary", errors);
    let source = field("source", errors);
    let severity = field("severity", errors);
    if summary.as_ref().is_some_and(|s| s.chars().count() > 1024) {
        errors.push("'payload.summary' is longer than 1024 characters".into());
    }
    if let Some(severity) = &severity
        && !matches!(severity.as_str(), "critical" | "error" | "warning" | "info")
    {
        errors.push(
            "'payload.severity' is invalid (must be one of critical, error, warning, info)".into(),
        );
    }
    Some(PagerDutyAction::Trigger {
        summary: summary?,
        source: source?,
        severity: severity?,
    })
}

impl HookState {
    /// Applies a valid event to PagerDuty's open alerts and answers it.
    fn apply_pagerduty(&self, event: PagerDutyEvent) -> Response {
        let PagerDutyEvent {
            routing_key,
            action,
            dedup_key,
        } = event;
        let mut hooks = lock(&self.inner);
        let pd = &mut hooks.pagerduty;
        // Only a trigger may come without a key (validated); it always opens a new alert, under
        // a key PagerDuty makes up.
        let dedup_key = dedup_key.unwrap_or_else(|| super::token::guid().replace('-', ""));
        let slot = (routing_key, dedup_key);
        match action {
            PagerDutyAction::Trigger {
                summary,
                source,
                severity,
            } => {
                if let Some(open) = pd.open.get_mut(&slot) {
                    open.triggers += 1;
                } else {
                    if pd.open.len() >= MAX_OPEN_PAGERDUTY {
                        return (
                            StatusCode::TOO_MANY_REQUESTS,
                            Json(json!({
                                "status": "throttle event",
                                "message": "the simulator tracks no more open alerts; resolve some or reset",
                            })),
                        )
                            .into_response();
                    }
                    pd.pages += 1;
                    if let Some(n) = pd.pages_by_key.get_mut(&slot.1) {
                        *n += 1;
                    } else if pd.pages_by_key.len() < MAX_PAGE_KEYS {
                        pd.pages_by_key.insert(slot.1.clone(), 1);
                    }
                    pd.open.insert(
                        slot.clone(),
                        PagerDutyAlert {
                            routing_key: slot.0.clone(),
                            dedup_key: slot.1.clone(),
                            summary,
                            source,
                            severity,
                            acknowledged: false,
                            triggers: 1,
                            opened_at: Utc::now(),
                        },
                    );
                }
            }
            PagerDutyAction::Acknowledge => match pd.open.get_mut(&slot) {
                Some(open) => open.acknowledged = true,
                None => pd.dropped += 1,
            },
            PagerDutyAction::Resolve => match pd.open.remove(&slot) {
                Some(_) => pd.resolved += 1,
                None => pd.dropped += 1,
            },
        }
        pd.events += 1;
        (
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "success",
                "message": "Event processed",
                "dedup_key": slot.1,
            })),
        )
            .into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// Alertmanager API v2.

async fn alertmanager(State(state): State<SimState>, headers: HeaderMap, body: Body) -> Response {
    receive(
        &state,
        "alertmanager".into(),
        IDEMPOTENCY_HEADER,
        &headers,
        body,
        |state, incoming| {
            let Some(Value::Array(alerts)) = incoming.json() else {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    "body must be a JSON array of postable alerts",
                )
                .into();
            };
            let now = Utc::now();
            let mut problems = Vec::new();
            let mut valid = Vec::new();
            for (i, alert) in alerts.iter().enumerate() {
                match postable_alert(alert, now) {
                    Ok(alert) => valid.push(alert),
                    Err(problem) => problems.push(format!("alert {i}: {problem}")),
                }
            }
            // Best effort, as Alertmanager: the valid alerts of a batch are stored even when others
            // are refused.
            if let Err(problem) = state.hooks().apply_alertmanager(valid, now) {
                problems.push(problem);
                return (StatusCode::INTERNAL_SERVER_ERROR, problems.join("\n"))
                    .into_response()
                    .into();
            }
            if problems.is_empty() {
                StatusCode::OK.into_response().into()
            } else {
                (StatusCode::BAD_REQUEST, problems.join("\n"))
                    .into_response()
                    .into()
            }
        },
    )
    .await
}

/// A valid posted alert, defaults applied.
struct PostedAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: DateTime<Utc>,
    generator_url: Option<String>,
}

fn postable_alert(alert: &Value, now: DateTime<Utc>) -> Result<PostedAlert, String> {
    let Some(alert) = alert.as_object() else {
        return Err("not an object".into());
    };
    let labels = string_map(alert.get("labels"), "labels")?;
    if labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    if let Some(name) = labels.keys().find(|name| name.is_empty()) {
        return Err(format!("invalid label name {name:?}"));
    }
    let annotations = match alert.get("annotations") {
        None | Some(Value::Null) => BTreeMap::new(),
        some => string_map(some, "annotations")?,
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        match alert.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| format!("{name} is not an RFC 3339 time: {e}")),
            Some(_) => Err(format!("{name} must be a string")),
        }
    };
    let starts_at = time("startsAt")?;
    let ends_at = time("endsAt")?;
    if let (Some(start), Some(end)) = (starts_at, ends_at)
        && end < start
    {
        return Err("start time must be before end time".into());
    }
    let generator_url = match alert.get("generatorURL") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(url.clone()),
        Some(_) => return Err("generatorURL must be a string".into()),
    };
    Ok(PostedAlert {
        labels,
        annotations,
        // Only endsAt given: the alert starts when it ends.
        starts_at: starts_at.or(ends_at),
        ends_at: ends_at.unwrap_or(now + TimeDelta::seconds(ALERTMANAGER_RESOLVE_TIMEOUT_SECS)),
        generator_url,
    })
}

fn string_map(value: Option<&Value>, what: &str) -> Result<BTreeMap<String, String>, String> {
    let Some(map) = value.and_then(Value::as_object) else {
        return Err(format!("{what} missing or not an object"));
    };
    map.iter()
        .map(|(name, value)| match value {
            Value::String(text) => Ok((name.clone(), text.clone())),
            _ => Err(format!("{what}.{name} must be a string")),
        })
        .collect()
}

impl HookState {
    /// Stores `alerts` by label set. Fails, storing only those that fit, when too many label
    /// sets are tracked.
    fn apply_alertmanager(
        &self,
        alerts: Vec<PostedAlert>,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let mut hooks = lock(&self.inner);
        let store = &mut hooks.alertmanager;
        let mut full = false;
        for alert in alerts {
            if let Some(entry) = store.get_mut(&alert.labels) {
                // A still-firing alert keeps its start, as Alertmanager merges overlapping alerts.
                let firing = entry.ends_at > now;
                entry.starts_at = match alert.starts_at {
                    Some(start) if firing => start.min(entry.starts_at),
                    Some(start) => start,
                    None if firing => entry.starts_at,
                    None => now,
                };
                entry.ends_at = alert.ends_at;
                entry.annotations = alert.annotations;
                entry.generator_url = alert.generator_url;
                entry.posts += 1;
            } else if store.len() < MAX_ALERTMANAGER_ALERTS {
                store.insert(
                    alert.labels,
                    AlertmanagerEntry {
                        annotations: alert.annotations,
                        starts_at: alert.starts_at.unwrap_or(now),
                        ends_at: alert.ends_at,
                        generator_url: alert.generator_url,
                        posts: 1,
                    },
                );
            } else {
                full = true;
            }
        }
        if full {
            Err(format!(
                "the simulator tracks at most {MAX_ALERTMANAGER_ALERTS} label sets; reset it"
            ))
        } else {
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Control endpoints under /_sim/hooks.

/// `GET /_sim/hooks[?receiver=webhook/ops][&after=SEQ]`.
async fn control_status(State(state): State<SimState>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let receiver = param(&pairs, "receiver");
    let after = match param(&pairs, "after").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(after)) => after,
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "after must be a delivery seq (a whole number)"})),
            )
                .into_response();
        }
    };
    let hooks = state.hooks();
    Json(json!({
        "deliveries": hooks.deliveries_after(after, receiver),
        "down": hooks.down(),
        "evicted": hooks.evicted(),
        "webhook_secret": SIM_WEBHOOK_SECRET,
    }))
    .into_response()
}

async fn control_pagerduty(State(state): State<SimState>) -> Json<PagerDutyState> {
    Json(state.hooks().pagerduty())
}

async fn control_alertmanager(State(state): State<SimState>) -> Json<AlertmanagerState> {
    Json(state.hooks().alertmanager())
}

async fn control_reset(State(state): State<SimState>) -> Json<Value> {
    state.hooks().reset();
    tracing::info!("simulator hook receivers reset");
    Json(json!({"reset": true}))
}

/// `POST /_sim/hooks/{receiver}/down` and `…/up`.
async fn control_switch(State(state): State<SimState>, Path(switch): Path<String>) -> Response {
    let switch = switch.trim_start_matches('/');
    let parsed = if let Some(receiver) = switch.strip_suffix("/down") {
        Some((receiver, true))
    } else {
        switch.strip_suffix("/up").map(|receiver| (receiver, false))
    };
    let Some((receiver, down)) = parsed else {
        return receivers_not_found(
            "expected /_sim/hooks/{receiver}/down or /_sim/hooks/{receiver}/up",
        );
    };
    match state.hooks().set_down(receiver, down) {
        Some(previous) => {
            tracing::info!(%receiver, down, "simulator hook receiver switched");
            Json(json!({"receiver": receiver, "down": down, "previous_down": previous}))
                .into_response()
        }
        None => no_such_receiver(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(id: &str, ts: &str, body: &[u8]) -> String {
        let key = BASE64
            .decode(SIM_WEBHOOK_SECRET.trim_start_matches("whsec_"))
            .expect("the secret is base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signature_checks() {
        let now = Utc::now();
        let ts = now.timestamp().to_string();
        let good = sign("msg_1", &ts, b"{}");
        let check = |sig: Option<&str>, ts: &str, body: &[u8]| {
            verify_signature(Some("msg_1"), Some(ts), sig, body, now)
        };
        assert_eq!(check(Some(&good), &ts, b"{}"), SignatureCheck::Valid);
        assert_eq!(
            check(Some(&format!("v1,AAAA {good}")), &ts, b"{}"),
            SignatureCheck::Valid
        );
        assert_eq!(check(Some(&good), &ts, b"{ }"), SignatureCheck::Invalid);
        assert_eq!(check(None, &ts, b"{}"), SignatureCheck::Absent);
        let old = (now.timestamp() - 301).to_string();
        let stale = sign("msg_1", &old, b"{}");
        assert_eq!(check(Some(&stale), &old, b"{}"), SignatureCheck::Invalid);
        assert_eq!(check(Some("v1,!!!"), &ts, b"{}"), SignatureCheck::Invalid);
    }

    #[test]
    fn receiver_names() {
        for ok in [
            "webhook/ops",
            "slack/x",
            "teams/a.b-c_d",
            "pagerduty",
            "alertmanager",
            "email",
        ] {
            assert!(valid_receiver(ok), "{ok}");
        }
        for bad in [
            "webhook",
            "webhook/",
            "sms/x",
            "slack/a/b",
            "pagerduty/x",
            "",
        ] {
            assert!(!valid_receiver(bad), "{bad}");
        }
    }
}
