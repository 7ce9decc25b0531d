//! PagerDuty Events API v2: `trigger` while an alert fires, `resolve` when it ends, both under
//! one `dedup_key` (the event's alert key), so an incident's new, updated and resolved events
//! land on one PagerDuty alert instead of paging three times.
//!
//! PagerDuty answers 202 when it took the event. A 400 is an event it will never take (never
//! retried); 429, 5xx and network errors are worth another try. Drills trigger a PagerDuty alert
//! of their own (`statusmon-drill/…`, severity info), so a test never touches a real alert.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Notice, Sent, SinkError, SinkKind, check_base_url, post_json};
use crate::alerts::templates::truncate_chars;
use crate::alerts::{Purpose, Severity};

const KIND: SinkKind = SinkKind::PagerDuty;

/// PagerDuty's limit on `dedup_key`.
pub const MAX_DEDUP_KEY: usize = 255;
/// PagerDuty's limit on `payload.summary`, in characters.
pub const MAX_SUMMARY: usize = 1024;
/// PagerDuty's limit on an event (512 KB; Alertmanager reads it as 512,000 bytes).
const MAX_EVENT_BYTES: usize = 512_000;
/// What the body text may take of `custom_details`, in characters.
const MAX_BODY_CHARS: usize = 16 * 1024;

/// The `dedup_key` of an event: its alert key (the drill's own key for drills), or that key's
/// SHA-256 in hex when it is longer than PagerDuty's 255 characters.
pub fn dedup_key(event: &crate::alerts::AlertEvent) -> String {
    let key = if event.purpose == Purpose::Drill {
        format!("statusmon-drill/{}", event.idempotency_key)
    } else {
        event.alert.clone()
    };
    if key.len() <= MAX_DEDUP_KEY {
        return key;
    }
    let hex: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if event.purpose == Purpose::Drill {
        format!("statusmon-drill/{hex}")
    } else {
        hex
    }
}

/// A configured PagerDuty integration.
pub(super) struct PagerDuty {
    http: reqwest::Client,
    url: String,
    routing_key: SecretString,
}

impl PagerDuty {
    pub(super) fn build(
        http: reqwest::Client,
        url: String,
        routing_key: SecretString,
    ) -> Result<Self, String> {
        check_base_url("url", &url)?;
        if routing_key.expose_secret().trim().is_empty() {
            return Err("routing_key is empty".to_string());
        }
        Ok(PagerDuty {
            http,
            url,
            routing_key,
        })
    }

    pub(super) async fn send(&self, notice: &Notice<'_>) -> Result<Sent, SinkError> {
        let answer = post_json(
            &self.http,
            KIND,
            &self.url,
            &payload(notice, self.routing_key.expose_secret()),
        )
        .await?;
        if answer.is_success() {
            let action = if triggers(notice.event) {
                "trigger"
            } else {
                "resolve"
            };
            return Ok(Sent {
                detail: format!("pagerduty: HTTP {} ({action})", answer.status),
            });
        }
        // Say PagerDuty's own words (`message` and `errors`) rather than the raw JSON.
        let said = serde_json::from_str::<Value>(&answer.body)
            .ok()
            .map(|v| {
                let mut words = vec![v["message"].as_str().unwrap_or_default().to_string()];
                if let Some(errors) = v["errors"].as_array() {
                    words.extend(errors.iter().filter_map(|e| e.as_str()).map(str::to_string));
                }
                words.retain(|w| !w.is_empty());
                words.join("; ")
            })
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| answer.snippet());
        let message = if said.is_empty() {
            format!("pagerduty: HTTP {}", answer.status)
        } else {
            format!(
                "pagerduty: HTTP {} ({})",
                answer.status,
                super::snippet(&said)
            )
        };
        Err(match answer.error(KIND) {
            SinkError::Transient { retry_after, .. } => SinkError::Transient {
                message,
                retry_after,
            },
            SinkError::Permanent { .. } => SinkError::Permanent { message },
        })
    }
}

/// Whether `event` is sent as a `trigger` (firing, or a drill) rather than a `resolve`.
fn triggers(event: &crate::alerts::AlertEvent) -> bool {
    event.firing || event.purpose == Purpose::Drill
}

/// The Events API v2 body for `notice`: a trigger while firing (and for drills), a resolve when
/// not.
pub fn payload(notice: &Notice<'_>, routing_key: &str) -> Value {
    let event = notice.event;
    let dedup_key = dedup_key(event);
    let drill = event.purpose == Purpose::Drill;
    if !triggers(event) {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let severity = match (drill, event.severity) {
        (true, _) | (false, Severity::Info) => "info",
        (false, Severity::Warning) => "warning",
        (false, Severity::Critical) => "critical",
    };
    let trigger = |details: Value| {
        let mut payload = json!({
            "summary": truncate_chars(&notice.title, MAX_SUMMARY),
            "source": "statusmon",
            "severity": severity,
            "timestamp": event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "group": event.target,
            "class": event.kind.as_str(),
            "custom_details": details,
        });
        if let Some(service) = &event.service {
            payload["component"] = json!(service);
        }
        json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": payload,
            "client": "statusmon",
        })
    };
    let full = trigger(json!({
        "body": truncate_chars(&notice.body, MAX_BODY_CHARS),
        "event": event,
    }));
    let size = serde_json::to_vec(&full).map_or(usize::MAX, |b| b.len());
    if size <= MAX_EVENT_BYTES {
        return full;
    }
    // As Alertmanager does: an event too big for PagerDuty loses its details, not its page.
    trigger(json!({
        "note": "details left out: the event was over PagerDuty's 512 KB limit",
        "alert": truncate_chars(&event.alert, 1024),
        "idempotency_key": truncate_chars(&event.idempotency_key, 1024),
    }))
}
