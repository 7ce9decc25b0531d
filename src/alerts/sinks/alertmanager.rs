//! Prometheus Alertmanager, `POST /api/v2/alerts`, to every configured instance (an HA pair is
//! sent to both members, not through a balancer; they gossip and deduplicate).
//!
//! An Alertmanager alert *is* its label set, so the labels are the alert's identity and nothing
//! else: `alertname`, `statusmon_alert`, `target`, `service`/`incident` when the event has them,
//! `source`. The severity is not a label: it can change while the alert fires, and a changed label
//! set would be a second alert beside the first. Severity, summary and detail go in annotations,
//! which every push replaces.
//!
//! A firing alert is posted with `endsAt` = now + 3 × `resend_every`, so if statusmon stops
//! posting (crashed, cut off) it resolves by itself rather than firing forever; the delivery
//! worker calls [`super::Sink::refresh`] every `resend_every` to keep it alive. A resolved
//! alert is posted with `endsAt` = its resolution time, and re-posted for `resolved_for` because
//! Alertmanager keeps alerts only in memory.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::{Notice, Sent, SinkError, SinkKind, check_base_url, json_headers, post, to_json};
use crate::alerts::AlertEvent;
use crate::alerts::templates::truncate_chars;

const KIND: SinkKind = SinkKind::Alertmanager;

/// The `alertname` of every alert statusmon posts.
pub const ALERTNAME: &str = "Microsoft365Status";

/// What an annotation may hold, in characters.
const ANNOTATION_CHARS: usize = 8 * 1024;

/// The identity labels of an event's alert: the same for every event of the alert's life.
pub fn labels(event: &AlertEvent) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert("alertname".into(), json!(ALERTNAME));
    labels.insert("statusmon_alert".into(), json!(event.alert));
    labels.insert("target".into(), json!(event.target));
    if let Some(service) = &event.service {
        labels.insert("service".into(), json!(service));
    }
    if let Some(incident) = &event.incident {
        labels.insert("incident".into(), json!(incident));
    }
    labels.insert("source".into(), json!("statusmon"));
    labels
}

/// A configured set of Alertmanagers.
pub(super) struct Alertmanager {
    http: reqwest::Client,
    /// Each instance's `/api/v2/alerts`.
    endpoints: Vec<String>,
    resend_every: Duration,
    resolved_for: Duration,
    /// What every post carries: the content type and, with a bearer token, `Authorization`
    /// (marked sensitive).
    headers: HeaderMap,
}

impl Alertmanager {
    /// How often it is posted the current state.
    pub(super) fn resend_every(&self) -> Duration {
        self.resend_every
    }

    pub(super) fn build(
        http: reqwest::Client,
        urls: Vec<String>,
        resend_every: Duration,
        resolved_for: Duration,
        bearer_token: Option<SecretString>,
    ) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("urls is empty: at least one Alertmanager is needed".to_string());
        }
        let mut endpoints = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            check_base_url(&format!("urls[{i}]"), url)?;
            endpoints.push(format!("{}/api/v2/alerts", url.trim_end_matches('/')));
        }
        if resend_every.is_zero() {
            return Err("resend_every must be more than zero".to_string());
        }
        let mut headers = json_headers();
        if let Some(token) = &bearer_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| "bearer_token holds characters a header cannot carry".to_string())?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(Alertmanager {
            http,
            endpoints,
            resend_every,
            resolved_for,
            headers,
        })
    }

    pub(super) async fn send(&self, notice: &Notice<'_>) -> Result<Sent, SinkError> {
        let alert = self.alert(notice, notice.event.firing, chrono::Utc::now());
        self.post(vec![alert]).await
    }

    /// The alerts a refresh posts, or `None` when there are none: every firing one, and the
    /// resolved ones still within `resolved_for` of their resolution. `notice` renders an
    /// event's words, and is called only for the events posted.
    pub(super) fn refresh_alerts<'e>(
        &self,
        firing: &'e [AlertEvent],
        resolved: &'e [AlertEvent],
        notice: impl Fn(&'e AlertEvent) -> Notice<'e>,
    ) -> Option<Vec<Value>> {
        let now = chrono::Utc::now();
        let keep_since = chrono::Duration::from_std(self.resolved_for)
            .ok()
            .and_then(|d| now.checked_sub_signed(d));
        let alerts: Vec<Value> = firing
            .iter()
            .map(|e| self.alert(&notice(e), true, now))
            .chain(
                resolved
                    .iter()
                    .filter(|e| keep_since.is_none_or(|since| e.at >= since))
                    .map(|e| self.alert(&notice(e), false, now)),
            )
            .collect();
        (!alerts.is_empty()).then_some(alerts)
    }

    /// The alert for a notice, firing or resolved.
    fn alert(
        &self,
        notice: &Notice<'_>,
        firing: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Value {
        let event = notice.event;
        let rfc3339 = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let ends_at = if firing {
            self.resend_every
                .checked_mul(3)
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(now)
        } else {
            event.at
        };
        json!({
            "labels": labels(event),
            "annotations": {
                "summary": truncate_chars(&notice.title, ANNOTATION_CHARS),
                "description": truncate_chars(&notice.body, ANNOTATION_CHARS),
                "detail": truncate_chars(&event.detail, ANNOTATION_CHARS),
                "severity": event.severity.as_str(),
                "kind": event.kind.as_str(),
                "purpose": event.purpose.as_str(),
                "idempotency_key": truncate_chars(&event.idempotency_key, ANNOTATION_CHARS),
            },
            "startsAt": rfc3339(event.at),
            "endsAt": rfc3339(ends_at),
        })
    }

    /// Posts `alerts` to every instance at once; a success if at least one took them.
    pub(super) async fn post(&self, alerts: Vec<Value>) -> Result<Sent, SinkError> {
        let count = alerts.len();
        let body = to_json(KIND, &Value::Array(alerts))?;
        let outcomes = join_all(self.endpoints.iter().map(|endpoint| {
            let headers = self.headers.clone();
            let body = body.clone();
            async move {
                let answer = post(&self.http, KIND, endpoint, headers, body).await?;
                if answer.is_success() {
                    Ok(answer.status)
                } else {
                    Err(answer.error(KIND))
                }
            }
        }))
        .await;
        let total = outcomes.len();
        let accepted = outcomes.iter().filter(|o| o.is_ok()).count();
        let alerts = if count == 1 { "alert" } else { "alerts" };
        if accepted > 0 {
            let mut detail =
                format!("alertmanager: {count} {alerts} accepted by {accepted} of {total}");
            let failures = failures(&outcomes);
            if !failures.is_empty() {
                detail.push_str(&format!(" ({failures})"));
            }
            return Ok(Sent { detail });
        }
        let message = format!(
            "alertmanager: no instance accepted ({})",
            failures(&outcomes)
        );
        // Worth another try if any instance might take it next time.
        let transient: Vec<Option<Duration>> = outcomes
            .iter()
            .filter_map(|o| match o {
                Err(SinkError::Transient { retry_after, .. }) => Some(*retry_after),
                _ => None,
            })
            .collect();
        if transient.is_empty() {
            Err(SinkError::Permanent { message })
        } else {
            Err(SinkError::Transient {
                message,
                // The soonest any instance asked to hear from us again.
                retry_after: transient.iter().flatten().min().copied(),
            })
        }
    }
}

/// The failed instances' reasons, each named by its place in `urls` (never its URL).
fn failures(outcomes: &[Result<u16, SinkError>]) -> String {
    outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            o.as_ref().err().map(|e| {
                let message = e.message();
                let message = message.strip_prefix("alertmanager: ").unwrap_or(message);
                format!("urls[{i}]: {message}")
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}
