//! Slack incoming webhooks: a `text` (what notifications and screen readers use) and Block Kit
//! blocks (title, body, a context line of facts).
//!
//! Everything we send is escaped (`&`, `<`, `>`): the summary and detail carry vendor text, and
//! Slack reads `<!channel>`, `<@U123>` and `<url|label>` in it as mentions and links, so an
//! incident titled `<!channel>` would otherwise page a whole channel. Texts are cut to Slack's
//! limits (3,000 characters per section, 40,000 for `text`) rather than rejected.
//!
//! Slack answers plain-text codes: `200 ok` is the only success; 400/403/404/410 (`no_service`,
//! `channel_not_found`, `channel_is_archived`, …) will not get better; 429 comes with
//! `Retry-After`; 5xx is worth another try.

use secrecy::SecretString;
use serde_json::{Value, json};

use super::{Endpoint, Notice, Sent, SinkError, SinkKind};

const KIND: SinkKind = SinkKind::Slack;

/// Slack's limit on a section block's text.
const SECTION_CHARS: usize = 3000;
/// What we allow the fallback `text` (Slack's limit is 40,000; notifications show far less).
const TEXT_CHARS: usize = 4000;
/// What we allow the title line.
const TITLE_CHARS: usize = 500;

/// A configured Slack incoming webhook.
pub(super) struct Slack(Endpoint);

impl Slack {
    pub(super) fn build(http: reqwest::Client, url: SecretString) -> Result<Self, String> {
        Endpoint::new(http, url).map(Slack)
    }

    pub(super) async fn send(&self, notice: &Notice<'_>) -> Result<Sent, SinkError> {
        let answer = self.0.post_json(KIND, &payload(notice)).await?;
        match answer.status {
            200 if answer.body.trim() == "ok" => Ok(Sent {
                detail: "slack: HTTP 200 ok".to_string(),
            }),
            // A 200 that is not `ok` is an answer we do not understand: it may have posted, so
            // trying again could post twice.
            200 => Err(SinkError::Permanent {
                message: format!("{}: not the expected ok", answer.describe(KIND)),
            }),
            // 400/403/404/410 permanent, 408/429/5xx transient, as for any vendor.
            _ => Err(answer.error(KIND)),
        }
    }
}

/// The message Slack is sent for `notice`.
pub fn payload(notice: &Notice<'_>) -> Value {
    let event = notice.event;
    let title = escape(&notice.title, TITLE_CHARS);
    let body = escape(&notice.body, SECTION_CHARS);
    let mut facts = vec![format!("target {}", event.target)];
    if let Some(service) = &event.service {
        facts.push(format!("service {service}"));
    }
    if let Some(incident) = &event.incident {
        facts.push(format!("incident {incident}"));
    }
    facts.push(format!("severity {}", event.severity.as_str()));
    facts.push(if event.firing { "firing" } else { "resolved" }.to_string());
    facts.push(event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let facts = escape(&facts.join(" · "), SECTION_CHARS);

    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{title}*")},
    })];
    if !body.trim().is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": body},
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": facts}],
    }));
    let text = if body.trim().is_empty() {
        title
    } else {
        escape(&format!("{}\n{}", notice.title, notice.body), TEXT_CHARS)
    };
    json!({"text": text, "blocks": blocks})
}

/// `text` with Slack's control characters escaped (`&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`)
/// and at most `max` characters long after escaping, cut between entities with `…` at the end.
pub fn escape(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut count = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let len = if piece.is_empty() { 1 } else { piece.len() };
        // Keep room for the ellipsis when more follows.
        let room = if chars.peek().is_some() {
            max.saturating_sub(1)
        } else {
            max
        };
        if count + len > room {
            if max > 0 {
                out.push('…');
            }
            return out;
        }
        if piece.is_empty() {
            out.push(c);
        } else {
            out.push_str(piece);
        }
        count += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts_between_entities() {
        assert_eq!(escape("<!channel> & co", 100), "&lt;!channel&gt; &amp; co");
        assert_eq!(escape("abc", 3), "abc");
        assert_eq!(escape("abcd", 3), "ab…");
        // "&amp;" would end past the limit: cut before it, never inside it.
        assert_eq!(escape("ab&cd", 5), "ab…");
    }
}
