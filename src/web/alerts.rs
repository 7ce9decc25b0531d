//! The alerting endpoints: open alerts, delivery receipts, silences and acknowledgements.
//!
//! Reads are open like the rest of the API; writes want `Authorization: Bearer <token>` with the
//! token of `[alerts] api_token_file`, and are refused outright when none is set. A silence or an
//! acknowledgement changes only what is sent: probing and resolution never pause.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ApiError, WebState};
use crate::alerts::delivery::{Alerting, AlertingError};
use crate::alerts::routes::{EventFilter, Silence};
use crate::alerts::{EventKind, Severity};
use crate::dashboard::AlertsPanel;
use crate::store::Acknowledgement;

/// What the alerting endpoints need, attached once delivery runs.
#[derive(Debug, Clone)]
pub struct AlertingApi {
    /// The running delivery.
    pub alerting: Alerting,
    /// The write endpoints' token; `None` refuses every write.
    pub token: Option<SecretString>,
}

/// The most receipts one answer holds.
const MAX_RECEIPTS: u32 = 1000;
/// The longest silence the API makes: a forgotten silence must not hide alerts for ever.
const MAX_SILENCE: chrono::Duration = chrono::Duration::days(30);

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/alerts", get(open_alerts))
        .route("/api/v1/deliveries", get(deliveries))
        .route("/api/v1/silences", get(silences).post(add_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence))
        .route("/api/v1/acknowledgements", post(acknowledge))
}

/// How many receipts the dashboard shows.
const DASHBOARD_RECEIPTS: usize = 15;

/// The dashboard's alerting section, when alerting runs (from memory: no store read per
/// refresh).
pub(super) fn panel(state: &WebState) -> Option<AlertsPanel> {
    let api = state.alerting()?;
    let now = Utc::now();
    Some(AlertsPanel {
        open: api.alerting.open_alerts(),
        silences: api
            .alerting
            .silences()
            .into_iter()
            .filter(|s| s.in_force(now))
            .collect(),
        receipts: api.alerting.recent_receipts(DASHBOARD_RECEIPTS),
    })
}

fn api(state: &WebState) -> Result<&AlertingApi, ApiError> {
    state.alerting().ok_or(ApiError::AlertingOff)
}

/// Checks the bearer token in constant time (digests of equal length, compared whole).
fn authorize(api: &AlertingApi, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &api.token else {
        return Err(ApiError::WritesDisabled);
    };
    let offered = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    let given = Sha256::digest(offered.trim().as_bytes());
    let differ = expected
        .iter()
        .zip(given.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if differ == 0 {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

impl From<AlertingError> for ApiError {
    fn from(error: AlertingError) -> Self {
        match error {
            AlertingError::NotOpen(_) | AlertingError::NoSilence(_) => {
                ApiError::Missing(error.to_string())
            }
            AlertingError::Store(e) => ApiError::Internal(e.to_string()),
        }
    }
}

/// `GET /api/v1/alerts`: the open alerts (with their acknowledgements) and active silences.
async fn open_alerts(State(state): State<WebState>) -> Result<Response, ApiError> {
    let api = api(&state)?;
    let now = Utc::now();
    let silences: Vec<Silence> = api
        .alerting
        .silences()
        .into_iter()
        .filter(|s| s.in_force(now))
        .collect();
    Ok(Json(json!({ "open": api.alerting.open_alerts(), "silences": silences })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit {
    limit: Option<u32>,
}

/// `GET /api/v1/deliveries[?limit=N]`: the newest delivery receipts, newest first.
async fn deliveries(
    State(state): State<WebState>,
    query: Result<Query<Limit>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(limit) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = limit.limit.unwrap_or(100).clamp(1, MAX_RECEIPTS);
    let receipts = api(&state)?
        .alerting
        .receipts(limit)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({ "deliveries": receipts })).into_response())
}

/// `GET /api/v1/silences`: every kept silence, ended ones too.
async fn silences(State(state): State<WebState>) -> Result<Response, ApiError> {
    let silences = api(&state)?.alerting.silences();
    Ok(Json(json!({ "silences": silences })).into_response())
}

/// A silence as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    kinds: Vec<EventKind>,
    min_severity: Option<Severity>,
    /// One alert key, to silence only it.
    alert: Option<String>,
    /// How long, as a humantime duration ("2h").
    duration: Option<String>,
    /// Or until when.
    ends_at: Option<DateTime<Utc>>,
    /// Why, and who: required, since a silence hides alerts from everyone.
    comment: String,
}

/// `POST /api/v1/silences`.
async fn add_silence(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Result<Json<SilenceRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let api = api(&state)?;
    authorize(api, &headers)?;
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = Utc::now();
    let ends_at = match (&request.duration, request.ends_at) {
        (Some(text), None) => {
            let length = humantime::parse_duration(text)
                .map_err(|e| ApiError::BadRequest(format!("duration {text:?}: {e}")))?;
            chrono::Duration::from_std(length)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| ApiError::BadRequest(format!("duration {text:?} is too long")))?
        }
        (None, Some(at)) => at,
        _ => {
            return Err(ApiError::BadRequest(
                "give either duration (e.g. \"2h\") or ends_at (RFC 3339)".into(),
            ));
        }
    };
    if ends_at <= now {
        return Err(ApiError::BadRequest(
            "the silence would already be over".into(),
        ));
    }
    if ends_at - now > MAX_SILENCE {
        return Err(ApiError::BadRequest(
            "a silence lasts at most 30 days".into(),
        ));
    }
    if request.comment.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "comment is required: say who silences what and why".into(),
        ));
    }
    let filter = EventFilter {
        targets: request.targets,
        services: request.services,
        kinds: request.kinds,
        min_severity: request.min_severity,
    };
    if filter.is_everything() && request.alert.is_none() {
        return Err(ApiError::BadRequest(
            "a silence needs at least one of alert, targets, services, kinds, min_severity".into(),
        ));
    }
    let silence = Silence {
        id: uuid::Uuid::new_v4().to_string(),
        filter,
        alert: request.alert,
        comment: request.comment,
        created_at: now,
        ends_at,
    };
    let silence = api.alerting.silence(silence).await?;
    tracing::info!(silence = %silence.id, until = %silence.ends_at, "silence added");
    Ok((StatusCode::CREATED, Json(silence)).into_response())
}

/// `DELETE /api/v1/silences/{id}`: ends a silence now.
async fn expire_silence(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let api = api(&state)?;
    authorize(api, &headers)?;
    let Path(id) = id.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let silence = api.alerting.expire(&id, Utc::now()).await?;
    tracing::info!(silence = %silence.id, "silence ended");
    Ok(Json(silence).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    alert: String,
    comment: String,
}

/// `POST /api/v1/acknowledgements`: someone is on it; reminders stop until it resolves.
async fn acknowledge(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Result<Json<AckRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let api = api(&state)?;
    authorize(api, &headers)?;
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if request.comment.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "comment is required: say who is on it".into(),
        ));
    }
    let open = api
        .alerting
        .acknowledge(Acknowledgement {
            alert: request.alert,
            at: Utc::now(),
            comment: request.comment,
        })
        .await?;
    tracing::info!(alert = %open.latest.alert, "alert acknowledged");
    Ok(Json(open).into_response())
}
