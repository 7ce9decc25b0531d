//! Raw HTTP exchanges kept for later: what the archive records and what a replay answers from.
//!
//! A [`Tape`] sits inside a channel's [`Fetcher`](crate::http::Fetcher). Recording, every
//! exchange the fetcher makes is appended as it ends (the answer's status, headers and capped
//! body, or the failure); the daemon takes them off after each probe and writes them to the
//! archive. Replaying, the fetcher sends nothing: each request is answered by the recorded
//! exchange with the same method and URL, so the channel's own gates and parsers run again on
//! exactly the bytes it saw.
//!
//! Nothing secret is kept: request headers and bodies (bearer tokens, client secrets, signed
//! assertions) are never recorded, `Set-Cookie` is dropped, and the tokens in a sign-in answer
//! are replaced by [`REDACTED`].

use std::sync::Mutex;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::ProbeError;

/// What stands in for a token in a recorded sign-in answer.
pub const REDACTED: &str = "redacted";

/// The JSON fields of an OAuth answer that carry credentials.
const TOKEN_FIELDS: &[&str] = &["access_token", "refresh_token", "id_token"];

/// Whether the fetcher records what it does or answers from what was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapeMode {
    /// Send requests and keep every exchange.
    Record,
    /// Send nothing; answer from the tape.
    Replay,
}

/// One request and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// `GET` or `POST`.
    pub method: String,
    /// The URL as requested, query included (our URLs carry cursors, never secrets).
    pub url: String,
    /// What came back.
    pub outcome: ExchangeOutcome,
}

/// An answer, or why there was none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeOutcome {
    /// A complete answer of any status.
    Answer(RecordedAnswer),
    /// No complete answer (network, timeout, an oversized body), as the fetcher classified it.
    Failed(ProbeError),
}

/// A recorded answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers, in order (`Set-Cookie` dropped).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
    /// Where a redirect chain ended, when it did not end at the URL asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
}

/// A body: text when it is UTF-8 (most are, and the archive stays readable), base64 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// UTF-8 text.
    Text(String),
    /// Anything else.
    Base64(String),
    /// Kept apart by whoever stores the tape (the archive's `bodies/` folder), under the
    /// lowercase hex SHA-256 of its bytes; it must be resolved before a replay.
    Sha256(String),
}

impl Body {
    /// Keeps `bytes` in the form that reads best.
    pub fn new(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(error) => {
                Body::Base64(base64::engine::general_purpose::STANDARD.encode(error.into_bytes()))
            }
        }
    }

    /// The bytes; a base64 body that does not decode (a hand-edited archive) is empty.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Text(text) => text.as_bytes().to_vec(),
            Body::Base64(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default(),
            Body::Sha256(_) => Vec::new(),
        }
    }
}

/// What a replay answers a sign-in (the only POST a channel makes) the archive does not hold,
/// as when a replay starts from a later day's file than the one with the token request: a token
/// answer like every recorded one, whose token is [`REDACTED`] anyway.
pub fn sign_in_stand_in() -> RecordedAnswer {
    RecordedAnswer {
        status: 200,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: Body::Text(format!(
            r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{REDACTED}"}}"#
        )),
        final_url: None,
    }
}

/// The exchanges of one channel: appended to while recording, answered from while replaying.
#[derive(Debug)]
pub struct Tape {
    mode: TapeMode,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Tape {
    /// An empty tape.
    pub fn new(mode: TapeMode) -> Self {
        Tape {
            mode,
            exchanges: Mutex::new(Vec::new()),
        }
    }

    /// Recording or replaying.
    pub fn mode(&self) -> TapeMode {
        self.mode
    }

    /// Adds one exchange, with the tokens of a sign-in answer redacted.
    pub fn push(&self, mut exchange: Exchange) {
        if exchange.method == "POST"
            && let ExchangeOutcome::Answer(answer) = &mut exchange.outcome
        {
            redact_tokens(&mut answer.body);
        }
        self.lock().push(exchange);
    }

    /// Takes every exchange off the tape (the daemon, after a probe; a replay, before loading
    /// the next probe's).
    pub fn take_all(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.lock())
    }

    /// Loads the exchanges of one recorded probe, replacing what was left.
    pub fn load(&self, exchanges: Vec<Exchange>) {
        *self.lock() = exchanges;
    }

    /// Takes the first exchange recorded for `method` and `url`. Requests of one probe may run
    /// concurrently, so order between different URLs does not matter; repeats of one URL are
    /// answered in recorded order.
    pub fn answer(&self, method: &str, url: &str) -> Option<ExchangeOutcome> {
        let mut exchanges = self.lock();
        let index = exchanges
            .iter()
            .position(|e| e.method == method && e.url == url)?;
        Some(exchanges.remove(index).outcome)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Exchange>> {
        // A panic while holding this lock cannot leave the list half-changed (every operation is
        // one push, take or remove), so a poisoned lock is still usable.
        self.exchanges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Replaces the credentials in an OAuth JSON answer. A body that is not JSON is kept as it is:
/// it holds no token we could have used.
fn redact_tokens(body: &mut Body) {
    let Body::Text(text) = body else { return };
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(text) else {
        return;
    };
    let mut changed = false;
    for field in TOKEN_FIELDS {
        if let Some(value) = object.get_mut(*field) {
            *value = serde_json::Value::String(REDACTED.to_string());
            changed = true;
        }
    }
    if changed && let Ok(redacted) = serde_json::to_string(&object) {
        *text = redacted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> ExchangeOutcome {
        ExchangeOutcome::Answer(RecordedAnswer {
            status,
            headers: vec![],
            body: Body::Text(body.to_string()),
            final_url: None,
        })
    }

    #[test]
    fn sign_in_tokens_are_redacted_and_other_answers_kept() {
        let tape = Tape::new(TapeMode::Record);
        tape.push(Exchange {
            method: "POST".into(),
            url: "https://login.example/token".into(),
            outcome: answer(200, r#"{"access_token":"eyJsecret","expires_in":3599}"#),
        });
        tape.push(Exchange {
            method: "GET".into(),
            url: "https://graph.example/v1.0/x".into(),
            outcome: answer(200, r#"{"access_token":"not a sign-in answer"}"#),
        });
        let kept = serde_json::to_string(&tape.take_all()).unwrap_or_default();
        assert!(!kept.contains("eyJsecret"), "{kept}");
        assert!(kept.contains("\"expires_in\\\":3599"), "{kept}");
        assert!(
            kept.contains("not a sign-in answer"),
            "GETs are kept: {kept}"
        );
        assert!(tape.take_all().is_empty(), "taken off");
    }

    #[test]
    fn answers_match_method_and_url_in_recorded_order_whatever_the_request_order() {
        let tape = Tape::new(TapeMode::Replay);
        tape.load(vec![
            Exchange {
                method: "GET".into(),
                url: "/a".into(),
                outcome: answer(200, "a1"),
            },
            Exchange {
                method: "GET".into(),
                url: "/b".into(),
                outcome: answer(200, "b"),
            },
            Exchange {
                method: "GET".into(),
                url: "/a".into(),
                outcome: answer(503, "a2"),
            },
        ]);
        assert_eq!(tape.answer("GET", "/b"), Some(answer(200, "b")));
        assert_eq!(tape.answer("POST", "/a"), None, "the method must match");
        assert_eq!(tape.answer("GET", "/a"), Some(answer(200, "a1")));
        assert_eq!(tape.answer("GET", "/a"), Some(answer(503, "a2")));
        assert_eq!(tape.answer("GET", "/a"), None);
    }

    #[test]
    fn bodies_keep_their_bytes_as_text_or_base64() {
        for bytes in [b"{\"ok\":true}".to_vec(), vec![0xff, 0x00, 0x9f]] {
            let body = Body::new(bytes.clone());
            let json = serde_json::to_string(&body).unwrap_or_default();
            let back: Body = serde_json::from_str(&json).unwrap_or(Body::Text(String::new()));
            assert_eq!(back.bytes(), bytes, "{json}");
        }
    }
}
