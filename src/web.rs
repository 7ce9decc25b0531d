//! The daemon's HTTP API (design §5): the latest status document and its parts as JSON, the
//! changes as Server-Sent Events, and the probes a supervisor asks (`/healthz`, `/readyz`).
//!
//! The web side never resolves anything itself: the `watch` loop publishes every document it
//! resolves and every change it prints into a [`WebState`], and handlers only read the latest
//! one. So a slow or hostile client can never delay a probe or a resolution, and every answer is
//! one consistent snapshot.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, HeaderValue, REFERRER_POLICY,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, stream};
use serde::Serialize;
use serde_json::json;
use statusmon_channels::ErrorClass;
use tokio::sync::{broadcast, watch};

mod alerts;

pub use alerts::AlertingApi;

use crate::dashboard::{self, Timeline, TimelineEntry};
use crate::metrics::{self, Metrics};
use crate::resolver::{ChannelState, IncidentResolution};
use crate::status::{Change, ChannelReport, StatusDocument};

/// How many change events a slow SSE client may fall behind before it is resynchronised with a
/// fresh `status` event instead (a round rarely has more than a few dozen changes).
const EVENT_BUFFER: usize = 256;

/// How old the latest document may be before `/readyz` says the resolution loop has stalled.
/// The loop resolves every second, so this only trips when the watcher itself is stuck.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// What the HTTP API serves, shared between the `watch` loop (which publishes) and the
/// handlers (which read). Cloning is cheap: every clone is a handle to the same state.
#[derive(Debug, Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    document: watch::Sender<Option<Arc<Published>>>,
    events: broadcast::Sender<ChangeEvent>,
    timeline: Mutex<Timeline>,
    timeline_events: broadcast::Sender<TimelineEntry>,
    closing: watch::Sender<bool>,
    metrics: Metrics,
    alerting: OnceLock<AlertingApi>,
}

/// One published document with its most asked answers, built from parts each serialized at
/// most once (on the first request that needs it): every target's JSON object, the channels and
/// the time. A target the engine kept from the last round keeps its serialized object too, so a
/// round that changed one target of a thousand costs one target's serialization, and a
/// thousand clients reading it cost none. Answers are those parts sent one after the other;
/// only the whole document is also put together once, while it is asked for.
#[derive(Debug)]
struct Published {
    document: Arc<StatusDocument>,
    /// `{"generated_at":"…"`: how every answer begins.
    opening: OnceLock<Serialized>,
    /// The whole document, put together from the parts on its first request.
    status: OnceLock<Serialized>,
    /// Each target's JSON object, by its index in the document; shared with the next round's
    /// `Published` while the target is the same resolution.
    targets: Vec<Arc<OnceLock<Serialized>>>,
    /// The `channels` array.
    channels: OnceLock<Serialized>,
    /// Target id → index, built on the first per-target request.
    index: OnceLock<HashMap<String, usize>>,
}

/// A JSON body, or why it could not be made.
type Serialized = Result<Bytes, String>;

impl Published {
    fn new(document: Arc<StatusDocument>, previous: Option<&Published>) -> Self {
        let targets = document
            .targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                previous
                    .and_then(|p| Some((p.document.targets.get(i)?, p.targets.get(i)?)))
                    .filter(|(kept, _)| Arc::ptr_eq(kept, target))
                    .map_or_else(|| Arc::new(OnceLock::new()), |(_, cell)| Arc::clone(cell))
            })
            .collect();
        Published {
            document,
            opening: OnceLock::new(),
            status: OnceLock::new(),
            targets,
            channels: OnceLock::new(),
            index: OnceLock::new(),
        }
    }

    fn opening(&self) -> Serialized {
        self.opening
            .get_or_init(|| {
                let time = serde_json::to_string(&self.document.generated_at)
                    .map_err(|e| e.to_string())?;
                Ok(Bytes::from(format!("{{\"generated_at\":{time}")))
            })
            .clone()
    }

    /// Target `i`'s JSON object.
    fn target(&self, i: usize) -> Serialized {
        let (Some(target), Some(cell)) = (self.document.targets.get(i), self.targets.get(i)) else {
            return Err(format!("no target {i}"));
        };
        cell.get_or_init(|| serialize(&**target)).clone()
    }

    /// `{"generated_at":…,"targets":[…]` and, with `channels`, `,"channels":[…]`, then `}`.
    fn document_parts(&self, channels: bool) -> Result<Vec<Bytes>, String> {
        let mut parts = Vec::with_capacity(2 * self.targets.len() + 4);
        parts.push(self.opening()?);
        parts.push(Bytes::from_static(b",\"targets\":["));
        for i in 0..self.targets.len() {
            if i > 0 {
                parts.push(Bytes::from_static(b","));
            }
            parts.push(self.target(i)?);
        }
        if channels {
            parts.push(Bytes::from_static(b"],\"channels\":"));
            let channels = self
                .channels
                .get_or_init(|| serialize(&self.document.channels))
                .clone();
            parts.push(channels?);
            parts.push(Bytes::from_static(b"}"));
        } else {
            parts.push(Bytes::from_static(b"]}"));
        }
        Ok(parts)
    }

    /// `GET /api/v1/status`: the parts put together once per document, on its first request, so
    /// each answer is one buffer (gathering a 10 MiB document into frames for every answer cost
    /// half as much CPU again, see BENCHMARKS.md). Only this answer holds a copy, and only while
    /// its round is current.
    fn status_json(&self) -> Result<Response, ApiError> {
        let whole = self
            .status
            .get_or_init(|| Ok(Bytes::from(self.document_parts(true)?.concat())))
            .clone()
            .map_err(ApiError::Internal)?;
        Ok(json_response(Parts::new(vec![whole])))
    }

    /// `GET /api/v1/targets`: the document without its channels, sent as its parts.
    fn targets_json(&self) -> Result<Response, ApiError> {
        let parts = self.document_parts(false).map_err(ApiError::Internal)?;
        Ok(json_response(Parts::new(parts)))
    }

    /// The answer for target `id` (its object with the document's time first), or `None` if
    /// the document has no such target.
    fn target_json(&self, id: &str) -> Option<Result<Response, ApiError>> {
        let index = self.index.get_or_init(|| {
            self.document
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect()
        });
        let i = *index.get(id)?;
        let answer = (|| {
            let object = self.target(i).map_err(ApiError::Internal)?;
            // `{"id":…}` becomes `{"generated_at":…,"id":…}`.
            let fields = match object.first() {
                Some(b'{') if object.len() > 2 => object.slice(1..),
                _ => return Err(ApiError::Internal("a target is not a JSON object".into())),
            };
            let opening = self.opening().map_err(ApiError::Internal)?;
            Ok(json_response(Parts::new(vec![
                opening,
                Bytes::from_static(b","),
                fields,
            ])))
        })();
        Some(answer)
    }
}

fn serialize(value: &impl Serialize) -> Serialized {
    let mut bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    // Kept for a whole round: not the doubling growth's spare capacity too.
    bytes.shrink_to_fit();
    Ok(Bytes::from(bytes))
}

/// A response body sent as the parts it was assembled from, with its exact length. Small parts
/// (a target is a few KiB) go out gathered into frames of about [`FRAME_SIZE`], so a whole
/// document is a few dozen writes, not thousands.
#[derive(Debug)]
struct Parts {
    parts: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

/// About how much of a [`Parts`] body goes into one frame.
const FRAME_SIZE: usize = 64 * 1024;

impl Parts {
    fn new(parts: Vec<Bytes>) -> Self {
        let remaining = parts.iter().map(|p| p.len() as u64).sum();
        Parts {
            parts: parts.into_iter().filter(|p| !p.is_empty()).collect(),
            remaining,
        }
    }

    /// The next frame: a large part as it is, or small ones copied together (less than twice
    /// [`FRAME_SIZE`]).
    fn next_frame(&mut self) -> Option<Bytes> {
        let first = self.parts.pop_front()?;
        if first.len() >= FRAME_SIZE || self.parts.front().is_none() {
            return Some(first);
        }
        let mut frame = Vec::with_capacity(2 * FRAME_SIZE);
        frame.extend_from_slice(&first);
        while frame.len() < FRAME_SIZE
            && let Some(next) = self.parts.front()
            && next.len() < FRAME_SIZE
        {
            frame.extend_from_slice(next);
            self.parts.pop_front();
        }
        Some(Bytes::from(frame))
    }
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let frame = self.next_frame();
        if let Some(frame) = &frame {
            self.remaining -= frame.len() as u64;
        }
        std::task::Poll::Ready(frame.map(|f| Ok(http_body::Frame::data(f))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

fn json_response(body: Parts) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        axum::body::Body::new(body),
    )
        .into_response()
}

/// One change line as an SSE client receives it: the same sentence `run` prints, with the
/// target or channel it concerns so clients can filter without parsing text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeEvent {
    /// The target the change is about, if it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The channel the change is about, if it is about a channel's own health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The sentence, as printed by `run`.
    pub text: String,
    /// When the round that saw it was resolved.
    pub at: DateTime<Utc>,
}

impl ChangeEvent {
    /// The event for one change of a round resolved at `at`.
    pub fn new(change: &Change, at: DateTime<Utc>) -> Self {
        ChangeEvent {
            target: change.target.clone(),
            channel: change.channel.clone(),
            text: change.text.clone(),
            at,
        }
    }
}

impl Default for WebState {
    fn default() -> Self {
        Self::new()
    }
}

impl WebState {
    /// Empty: every data endpoint answers 503 until the first round is published.
    pub fn new() -> Self {
        let (document, _) = watch::channel(None);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (timeline_events, _) = broadcast::channel(EVENT_BUFFER);
        let (closing, _) = watch::channel(false);
        WebState {
            inner: Arc::new(Inner {
                document,
                events,
                timeline: Mutex::new(Timeline::default()),
                timeline_events,
                closing,
                metrics: Metrics::new(),
                alerting: OnceLock::new(),
            }),
        }
    }

    /// Serves the alerting endpoints from this delivery (once; later calls are ignored).
    pub fn attach_alerting(&self, api: AlertingApi) {
        let _ = self.inner.alerting.set(api);
    }

    /// The alerting endpoints' state, once attached.
    pub fn alerting(&self) -> Option<&AlertingApi> {
        self.inner.alerting.get()
    }

    /// Publishes one resolved round: the document and the timeline first, so a client reacting
    /// to an event already reads what it announces, then one event per change and per new
    /// timeline entry.
    pub fn publish(&self, document: Arc<StatusDocument>, changes: &[Change]) {
        let at = document.generated_at;
        let previous = self.inner.document.borrow().clone();
        let added = self
            .lock_timeline()
            .record(&document, previous.as_ref().map(|p| &*p.document));
        let published = Published::new(document, previous.as_deref());
        drop(previous);
        self.inner.document.send_replace(Some(Arc::new(published)));
        for change in changes {
            // No subscriber is not an error: nobody is listening right now.
            let _ = self.inner.events.send(ChangeEvent::new(change, at));
        }
        for entry in added {
            let _ = self.inner.timeline_events.send(entry);
        }
    }

    /// The incident timeline built from every published round. A panic while it was held
    /// cannot leave it half-updated in a way that matters for display, so poison is ignored.
    fn lock_timeline(&self) -> std::sync::MutexGuard<'_, Timeline> {
        self.inner
            .timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of every new incident-timeline entry published from now on.
    pub fn subscribe_timeline(&self) -> broadcast::Receiver<TimelineEntry> {
        self.inner.timeline_events.subscribe()
    }

    /// The latest published document, if a round has been resolved.
    pub fn document(&self) -> Option<Arc<StatusDocument>> {
        self.inner
            .document
            .borrow()
            .as_ref()
            .map(|p| Arc::clone(&p.document))
    }

    fn published(&self) -> Result<Arc<Published>, ApiError> {
        self.inner
            .document
            .borrow()
            .clone()
            .ok_or(ApiError::NoRound)
    }

    /// The metrics `/metrics` renders; the `watch` loop records probes and documents into them.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A receiver of every change published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.events.subscribe()
    }

    /// Tells the server and every open event stream to finish, so a graceful shutdown is not
    /// held open forever by SSE clients.
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Completes once [`WebState::close`] has been called (at once if it already was).
    pub async fn closed(&self) {
        let mut closing = self.inner.closing.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = closing.wait_for(|closed| *closed).await;
    }

    fn require_document(&self) -> Result<Arc<StatusDocument>, ApiError> {
        self.document().ok_or(ApiError::NoRound)
    }
}

/// A target whose primary channel is not fresh, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrimaryTrouble {
    /// The target.
    pub target: String,
    /// Its primary channel.
    pub primary: String,
    /// The primary's state.
    pub state: ChannelState,
    /// Since when it has been in trouble, if known.
    pub since: Option<DateTime<Utc>>,
    /// The error class, if it is failing.
    pub error_class: Option<ErrorClass>,
    /// The resolver's explanation, for people.
    pub explanation: Option<String>,
}

/// Every way an API request can fail; each becomes `{"error": "..."}` with its status code, so
/// clients handle one error shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing resolved yet: the first round is still being probed.
    #[error("no round resolved yet")]
    NoRound,
    /// `/api/v1/targets/{id}` with an id that is not configured.
    #[error("no target {id:?} (targets: {known})")]
    UnknownTarget {
        /// The id asked for.
        id: String,
        /// The configured ids, comma-separated.
        known: String,
    },
    /// A path parameter that could not be read.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No endpoint at this path.
    #[error("no endpoint {path}")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// An answer could not be serialized (a bug of ours, not the client's).
    #[error("internal error: {0}")]
    Internal(String),
    /// The endpoint exists but not for this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path.
        path: String,
    },
    /// Some target's primary channel is not fresh.
    #[error("primary channel not fresh for {}", describe(.0))]
    NotReady(Vec<PrimaryTrouble>),
    /// Alerting is not running (no store, or `status` rather than `run`).
    #[error("alerting is not running in this process")]
    AlertingOff,
    /// A write endpoint without the right bearer token.
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    /// A write endpoint while no token is configured.
    #[error(
        "write endpoints are off: set [alerts] api_token_file (or STATUSMON_ALERTS__API_TOKEN)"
    )]
    WritesDisabled,
    /// A thing the request names does not exist (an alert, a silence).
    #[error("{0}")]
    Missing(String),
    /// The resolution loop has not published for too long.
    #[error("the resolution loop last published {age_secs}s ago (limit {limit_secs}s)")]
    Stalled {
        /// Age of the latest document.
        age_secs: i64,
        /// The limit.
        limit_secs: u64,
    },
}

fn describe(troubles: &[PrimaryTrouble]) -> String {
    troubles
        .iter()
        .map(|t| {
            format!(
                "target {} ({} is {})",
                t.target,
                t.primary,
                t.state.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl ApiError {
    /// The status code it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoRound | ApiError::NotReady(_) | ApiError::Stalled { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::UnknownTarget { .. } | ApiError::NotFound { .. } | ApiError::Missing(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::AlertingOff => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::WritesDisabled => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            ApiError::NotReady(troubles) => json!({
                "status": "not ready",
                "error": self.to_string(),
                "not_ready": troubles,
            }),
            ApiError::Stalled { .. } | ApiError::NoRound => json!({
                "status": "not ready",
                "error": self.to_string(),
            }),
            _ => json!({ "error": self.to_string() }),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The API's routes over `state`, with JSON 404 and 405 answers and `cache-control: no-store`
/// everywhere (a status answer is stale the moment a cache keeps it).
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/{id}", get(target))
        .route("/api/v1/channels", get(channels))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/events", get(events))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(dashboard_page))
        .route(dashboard::FRAGMENT_PATH, get(dashboard_fragment))
        .merge(alerts::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        path: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

async fn status(State(state): State<WebState>) -> Result<Response, ApiError> {
    state.published()?.status_json()
}

/// `GET /api/v1/targets`: the document without the channels.
async fn targets(State(state): State<WebState>) -> Result<Response, ApiError> {
    state.published()?.targets_json()
}

/// `GET /api/v1/targets/{id}`: one target as in the document, with the document's time.
async fn target(
    State(state): State<WebState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let published = state.published()?;
    if let Some(answer) = published.target_json(&id) {
        return answer;
    }
    let known: Vec<&str> = published
        .document
        .targets
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    Err(ApiError::UnknownTarget {
        id,
        known: if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        },
    })
}

/// `GET /api/v1/channels`.
#[derive(Serialize)]
struct ChannelsView<'a> {
    generated_at: DateTime<Utc>,
    channels: &'a [Arc<ChannelReport>],
}

async fn channels(State(state): State<WebState>) -> Result<Response, ApiError> {
    let document = state.require_document()?;
    Ok(Json(ChannelsView {
        generated_at: document.generated_at,
        channels: &document.channels,
    })
    .into_response())
}

/// One incident of `GET /api/v1/incidents`, with the target that sees it (the same incident can
/// appear once per target watching it).
#[derive(Serialize)]
struct IncidentView<'a> {
    target: &'a str,
    #[serde(flatten)]
    incident: &'a IncidentResolution,
}

#[derive(Serialize)]
struct IncidentsView<'a> {
    generated_at: DateTime<Utc>,
    incidents: Vec<IncidentView<'a>>,
}

async fn incidents(State(state): State<WebState>) -> Result<Response, ApiError> {
    let document = state.require_document()?;
    let incidents = document
        .targets
        .iter()
        .flat_map(|t| {
            t.incidents.iter().map(|incident| IncidentView {
                target: &t.id,
                incident,
            })
        })
        .collect();
    Ok(Json(IncidentsView {
        generated_at: document.generated_at,
        incidents,
    })
    .into_response())
}

/// `GET /`: the dashboard, answering 200 before the first round too (it says it is waiting and
/// updates itself), under a Content-Security-Policy that allows only its own inline code.
async fn dashboard_page(State(state): State<WebState>) -> Response {
    let document = state.document();
    let alerts = alerts::panel(&state);
    let markup = {
        let timeline = state.lock_timeline();
        dashboard::render_page(document.as_deref(), &timeline, alerts.as_ref(), Utc::now())
    };
    html_response(markup.into_string())
}

/// `GET /dashboard/targets`: the dashboard's live part, which the page's script swaps in.
async fn dashboard_fragment(State(state): State<WebState>) -> Response {
    let document = state.document();
    let alerts = alerts::panel(&state);
    let markup = {
        let timeline = state.lock_timeline();
        dashboard::render_targets(document.as_deref(), &timeline, alerts.as_ref(), Utc::now())
    };
    html_response(markup.into_string())
}

fn html_response(body: String) -> Response {
    let headers: [(HeaderName, HeaderValue); 4] = [
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(dashboard::content_security_policy())
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
        ),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    (headers, body).into_response()
}

/// `GET /metrics`: the Prometheus/OpenMetrics text exposition.
async fn metrics(State(state): State<WebState>) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        state.metrics().render(),
    )
        .into_response()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while a round has been resolved recently and every target's primary channel is fresh:
/// the watcher can see what it is meant to watch.
async fn readyz(State(state): State<WebState>) -> Result<Json<serde_json::Value>, ApiError> {
    let document = state.require_document()?;
    readiness(&document, Utc::now())?;
    let primaries: Vec<_> = document
        .targets
        .iter()
        .map(|t| json!({ "target": t.id, "primary": t.primary.channel, "state": t.primary.state }))
        .collect();
    Ok(Json(json!({
        "status": "ready",
        "generated_at": document.generated_at,
        "targets": primaries,
    })))
}

/// The readiness rule, on a document seen at `now`.
pub fn readiness(document: &StatusDocument, now: DateTime<Utc>) -> Result<(), ApiError> {
    let age = now - document.generated_at;
    if age.to_std().is_ok_and(|age| age > STALL_LIMIT) {
        return Err(ApiError::Stalled {
            age_secs: age.num_seconds(),
            limit_secs: STALL_LIMIT.as_secs(),
        });
    }
    let troubles: Vec<PrimaryTrouble> = document
        .targets
        .iter()
        .filter(|t| t.primary.state != ChannelState::Fresh)
        .map(|t| PrimaryTrouble {
            target: t.id.clone(),
            primary: t.primary.channel.clone(),
            state: t.primary.state,
            since: t.primary.since,
            error_class: t.primary.error_class,
            explanation: t.primary.explanation.clone(),
        })
        .collect();
    if troubles.is_empty() {
        Ok(())
    } else {
        Err(ApiError::NotReady(troubles))
    }
}

fn status_event(document: &StatusDocument) -> Event {
    Event::default()
        .event("status")
        .json_data(document)
        .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()))
}

fn change_event(change: &ChangeEvent) -> Event {
    Event::default()
        .event("change")
        .json_data(change)
        .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()))
}

fn timeline_event(entry: &TimelineEntry) -> Event {
    Event::default()
        .event("timeline")
        .json_data(entry)
        .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()))
}

/// `GET /api/v1/events`: the current document as `event: status` (waiting for the first round
/// if there is none yet), then one `event: change` per change line and one `event: timeline` per
/// new incident-timeline entry (any channel's new post). A client that falls behind on changes
/// gets a fresh `status` event instead of the changes it missed (missed timeline entries are
/// in the dashboard). Ends when the server closes.
async fn events(
    State(state): State<WebState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before reading the document, so no change between the two is lost.
    let changes = state.subscribe();
    let timeline = state.subscribe_timeline();
    let mut documents = state.inner.document.subscribe();
    let first = stream::once(async move {
        let document = match documents.wait_for(Option::is_some).await {
            Ok(published) => published.as_ref().map(|p| Arc::clone(&p.document)),
            Err(_) => None,
        };
        match document {
            Some(document) => status_event(&document),
            None => Event::default().comment("closing"),
        }
    });
    let rest = stream::unfold(
        (changes, state.clone()),
        |(mut changes, state)| async move {
            let event = match changes.recv().await {
                Ok(change) => change_event(&change),
                Err(broadcast::error::RecvError::Lagged(_)) => match state.document() {
                    Some(document) => status_event(&document),
                    None => Event::default().comment("lagged"),
                },
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((event, (changes, state)))
        },
    );
    let entries = stream::unfold(timeline, |mut timeline| async move {
        let event = match timeline.recv().await {
            Ok(entry) => timeline_event(&entry),
            Err(broadcast::error::RecvError::Lagged(_)) => Event::default().comment("lagged"),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((event, timeline))
    });
    let closed = {
        let state = state.clone();
        async move { state.closed().await }
    };
    let events = first
        .chain(stream::select(rest, entries))
        .map(Ok::<_, Infallible>)
        .take_until(Box::pin(closed));
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_go_out_whole_and_in_order_small_ones_gathered_into_frames() {
        let big = |byte: u8, len: usize| Bytes::from(vec![byte; len]);
        let parts = vec![
            big(b'a', 3),
            big(b'b', 5),
            big(b'c', FRAME_SIZE + 7),
            Bytes::new(),
            big(b'd', 10),
        ];
        let expected: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
        let mut body = Parts::new(parts);
        assert_eq!(
            http_body::Body::size_hint(&body).exact(),
            Some(expected.len() as u64)
        );
        let mut frames = Vec::new();
        while let Some(frame) = body.next_frame() {
            frames.push(frame);
        }
        assert_eq!(frames.concat(), expected);
        // The two small parts travel together; the large one goes as it is.
        let sizes: Vec<usize> = frames.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [8, FRAME_SIZE + 7, 10]);
        let many: Vec<Bytes> = (0..1000).map(|_| big(b'x', 1000)).collect();
        let mut body = Parts::new(many);
        let mut count = 0;
        while let Some(frame) = body.next_frame() {
            assert!(frame.len() < 2 * FRAME_SIZE, "{}", frame.len());
            count += 1;
        }
        assert!(count <= 16, "{count} frames for 1,000,000 bytes");
    }
}
