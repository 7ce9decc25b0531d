//! Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"): a
//! `message` with one Adaptive Card (1.4): the title, the body, and a fact set.
//!
//! Teams refuses messages over 28 KB, and refuses them *after* the 202 (the flow run fails, the
//! caller is never told), so the card is kept to [`MAX_PAYLOAD_BYTES`] by cutting the body text:
//! the message counted is larger than the JSON we send, and third parties have seen a 24 KB
//! request refused. A 202 only means the flow run was queued.

use secrecy::SecretString;
use serde_json::{Value, json};

use super::{Endpoint, Notice, Sent, SinkError, SinkKind};
use crate::alerts::Purpose;
use crate::alerts::templates::truncate_chars;

const KIND: SinkKind = SinkKind::Teams;

/// The most we send, in bytes of JSON: well under Teams' 28 KB (28,672 bytes) of message
/// properties, which count more than the request's size.
pub const MAX_PAYLOAD_BYTES: usize = 20 * 1024;
/// What a title or a fact's value may hold, in characters.
const LINE_CHARS: usize = 400;

/// A configured Teams Workflows webhook.
pub(super) struct Teams(Endpoint);

impl Teams {
    pub(super) fn build(http: reqwest::Client, url: SecretString) -> Result<Self, String> {
        Endpoint::new(http, url).map(Teams)
    }

    pub(super) async fn send(&self, notice: &Notice<'_>) -> Result<Sent, SinkError> {
        let answer = self.0.post_json(KIND, &payload(notice)).await?;
        if !answer.is_success() {
            return Err(answer.error(KIND));
        }
        // A legacy connector URL answers 200 with the failure in the body.
        if answer.body.contains("delivery failed") {
            let message = format!("{}: not delivered", answer.describe(KIND));
            return Err(if answer.body.contains("429") {
                SinkError::Transient {
                    message,
                    retry_after: answer.retry_after,
                }
            } else {
                SinkError::Permanent { message }
            });
        }
        Ok(Sent {
            detail: format!("teams: HTTP {}", answer.status),
        })
    }
}

/// The message Teams is sent for `notice`, at most [`MAX_PAYLOAD_BYTES`] of JSON.
pub fn payload(notice: &Notice<'_>) -> Value {
    let mut body_text = notice.body.clone();
    let mut message = card(notice, &body_text);
    // Each round cuts the overflow and a little more (every character is at least one byte of
    // JSON; the `…` added is three), so one round normally suffices; the bound is a guard.
    for _ in 0..8 {
        let size = serde_json::to_vec(&message).map_or(0, |bytes| bytes.len());
        if size <= MAX_PAYLOAD_BYTES {
            break;
        }
        let keep = body_text
            .chars()
            .count()
            .saturating_sub(size - MAX_PAYLOAD_BYTES + 4);
        body_text = truncate_chars(&body_text, keep);
        message = card(notice, &body_text);
    }
    message
}

fn card(notice: &Notice<'_>, body_text: &str) -> Value {
    let event = notice.event;
    let color = match (event.purpose, event.firing, event.severity) {
        (Purpose::Drill, _, _) => "Accent",
        (_, false, _) => "Good",
        (_, true, crate::alerts::Severity::Critical) => "Attention",
        (_, true, crate::alerts::Severity::Warning) => "Warning",
        (_, true, crate::alerts::Severity::Info) => "Default",
    };
    let fact = |title: &str, value: &str| json!({"title": title, "value": truncate_chars(value, LINE_CHARS)});
    let mut facts = vec![fact("Target", &event.target)];
    if let Some(service) = &event.service {
        facts.push(fact("Service", service));
    }
    if let Some(incident) = &event.incident {
        facts.push(fact("Incident", incident));
    }
    facts.push(fact("Severity", event.severity.as_str()));
    facts.push(fact(
        "Status",
        if event.firing { "firing" } else { "resolved" },
    ));
    facts.push(fact(
        "Time",
        &event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": truncate_chars(&notice.title, LINE_CHARS),
        "weight": "Bolder",
        "size": "Medium",
        "wrap": true,
        "color": color,
    })];
    if !body_text.trim().is_empty() {
        body.push(json!({"type": "TextBlock", "text": body_text, "wrap": true}));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "msteams": {"width": "Full"},
            },
        }],
    })
}
