//! The generic webhook: the event as JSON, signed the Standard Webhooks way so a receiver can
//! tell it came from us and drop replays and duplicates.
//!
//! `webhook-id` is the event's idempotency key, the same on every retry of the event, so a
//! receiver that stores ids drops a retry whose first attempt did arrive (a lost answer, a
//! restart between send and receipt). `webhook-timestamp` is the attempt's own time, and the
//! signature covers `{id}.{timestamp}.{body}` over the exact bytes sent.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{Endpoint, Notice, Sent, SinkError, SinkKind, json_headers, to_json};

/// What a receiver finds in the payload's `type`.
pub const EVENT_TYPE: &str = "statusmon.alert";

const KIND: SinkKind = SinkKind::Webhook;

/// The Standard Webhooks signature header value, `v1,<base64 HMAC-SHA256>`, of
/// `"{id}.{timestamp}.{body}"`. The key is the base64-decoded part after `whsec_` when the secret
/// has that prefix (how Standard Webhooks shows secrets), otherwise the secret's own bytes (a
/// secret given as plain text, as GitHub-style receivers use). A `whsec_` secret whose rest is not
/// base64 is refused when the sink is built; should one reach here, its raw bytes are the key.
pub fn sign(secret: &SecretString, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = signing_key(secret.expose_secret());
    // HMAC takes keys of any length, so this cannot fail; no panic either way.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
        return "v1,".to_string();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn signing_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD
            .decode(encoded)
            .unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

/// A configured webhook.
pub(super) struct Webhook {
    endpoint: Endpoint,
    secret: Option<SecretString>,
}

impl Webhook {
    pub(super) fn build(
        http: reqwest::Client,
        url: SecretString,
        secret: Option<SecretString>,
    ) -> Result<Self, String> {
        let endpoint = Endpoint::new(http, url)?;
        if let Some(secret) = &secret {
            let text = secret.expose_secret();
            if text.is_empty() {
                return Err("secret is empty".to_string());
            }
            if let Some(encoded) = text.strip_prefix("whsec_")
                && STANDARD.decode(encoded).is_err()
            {
                return Err("secret starts with whsec_ but the rest is not base64".to_string());
            }
        }
        Ok(Webhook { endpoint, secret })
    }

    pub(super) async fn send(&self, notice: &Notice<'_>) -> Result<Sent, SinkError> {
        let event = notice.event;
        let body = to_json(
            KIND,
            &serde_json::json!({
                "type": EVENT_TYPE,
                "event": event,
                "title": notice.title,
                "text": notice.body,
            }),
        )?;
        let id = HeaderValue::from_bytes(event.idempotency_key.as_bytes()).map_err(|_| {
            SinkError::Permanent {
                message: "webhook: the event's idempotency key is not a valid header value"
                    .to_string(),
            }
        })?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut headers = json_headers();
        headers.insert("webhook-id", id);
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        if let Some(secret) = &self.secret {
            let signature = sign(secret, &event.idempotency_key, timestamp, &body);
            // Base64 and "v1," only: always a valid header value.
            if let Ok(value) = HeaderValue::from_str(&signature) {
                headers.insert("webhook-signature", value);
            }
        }
        let answer = self.endpoint.post(KIND, headers, body).await?;
        if answer.is_success() {
            return Ok(Sent {
                detail: format!("webhook: HTTP {}", answer.status),
            });
        }
        if answer.status == 410 {
            // Standard Webhooks: the receiver has unsubscribed; disable the endpoint.
            return Err(SinkError::Permanent {
                message: format!(
                    "{}; the receiver unsubscribed (410 Gone)",
                    answer.describe(KIND)
                ),
            });
        }
        Err(answer.error(KIND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference vector (alert-sinks.md §5.4, [W-2]).
    #[test]
    fn standard_webhooks_vector() {
        let secret = SecretString::from("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        assert_eq!(
            sign(
                &secret,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn plain_secret_is_its_bytes() {
        let plain = SecretString::from("not-prefixed");
        let raw = {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"not-prefixed").expect("key");
            mac.update(b"id.1.{}");
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        };
        assert_eq!(sign(&plain, "id", 1, b"{}"), raw);
    }
}
