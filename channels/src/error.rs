//! The classified probe error: every way a probe can fail maps to one class that users see in the
//! status document and that the scheduler uses to decide whether a retry can help.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The error classes of the status-document contract (`channels[].error.class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// Credentials refused, or an endpoint asked for sign-in.
    Auth,
    /// The source asked us to slow down (HTTP 429).
    Throttled,
    /// No HTTP answer: DNS, connection, TLS, reset.
    Network,
    /// No complete answer within the time limit.
    Timeout,
    /// An HTTP status that is not success and not one of the classes above.
    Http,
    /// A success answer of the wrong shape: HTML where data was expected, an empty body, a missing
    /// element, an unknown status word, an oversized body. The upstream changed under us.
    Drift,
    /// The paid API has no credits left.
    Credits,
    /// The channel cannot run as configured.
    Config,
}

impl ErrorClass {
    /// The contract's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Auth => "auth",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Http => "http",
            ErrorClass::Drift => "drift",
            ErrorClass::Credits => "credits",
            ErrorClass::Config => "config",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe (or one part of it) gave no usable answer.
///
/// Messages are written for the operator reading the dashboard during an outage: they say what
/// was asked, what came back and, where we can tell, what it probably means. They never carry
/// credentials.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProbeError {
    /// Credentials were refused or the endpoint demanded sign-in.
    #[error("{message}")]
    Auth {
        /// What happened, with the upstream's own code where it gave one.
        message: String,
    },
    /// HTTP 429 or an equivalent "slow down".
    #[error("{message}")]
    Throttled {
        /// What was throttled.
        message: String,
        /// How long the upstream asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The request never got an HTTP answer.
    #[error("{message}")]
    Network {
        /// What failed (DNS, connect, TLS, reset), and where.
        message: String,
    },
    /// The answer did not complete within the limit.
    #[error("{what}: no complete answer within {}", humanize(*after))]
    Timeout {
        /// What was asked.
        what: String,
        /// The limit that ran out.
        after: Duration,
    },
    /// A non-success HTTP status.
    #[error("{what}: HTTP {status}{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Http {
        /// What was asked.
        what: String,
        /// The status code.
        status: u16,
        /// What the status probably means here.
        hint: Option<String>,
        /// A `Retry-After` the upstream sent with it.
        retry_after: Option<Duration>,
    },
    /// A success answer of an unexpected shape.
    #[error("{what}: {detail}")]
    Drift {
        /// What was asked.
        what: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The paid API is out of credits.
    #[error("{message}")]
    Credits {
        /// What the upstream said.
        message: String,
    },
    /// The channel cannot run as configured.
    #[error("{message}")]
    Config {
        /// What to set or fix.
        message: String,
    },
}

impl ProbeError {
    /// The contract class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProbeError::Auth { .. } => ErrorClass::Auth,
            ProbeError::Throttled { .. } => ErrorClass::Throttled,
            ProbeError::Network { .. } => ErrorClass::Network,
            ProbeError::Timeout { .. } => ErrorClass::Timeout,
            ProbeError::Http { .. } => ErrorClass::Http,
            ProbeError::Drift { .. } => ErrorClass::Drift,
            ProbeError::Credits { .. } => ErrorClass::Credits,
            ProbeError::Config { .. } => ErrorClass::Config,
        }
    }

    /// Whether asking again soon could succeed. Drift, auth, credits and config errors need a
    /// person (or an upstream fix); retrying them only adds load.
    pub fn is_transient(&self) -> bool {
        match self {
            ProbeError::Network { .. } | ProbeError::Timeout { .. } => true,
            ProbeError::Throttled { .. } => true,
            ProbeError::Http { status, .. } => *status >= 500 || *status == 408,
            ProbeError::Auth { .. }
            | ProbeError::Drift { .. }
            | ProbeError::Credits { .. }
            | ProbeError::Config { .. } => false,
        }
    }

    /// The wait the upstream asked for, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProbeError::Throttled { retry_after, .. } | ProbeError::Http { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The same error, same class, with a note added to what it says (for example what another
    /// part of the probe said).
    pub fn with_note(self, note: &str) -> Self {
        let add = |text: String| format!("{text}; {note}");
        match self {
            ProbeError::Auth { message } => ProbeError::Auth {
                message: add(message),
            },
            ProbeError::Throttled {
                message,
                retry_after,
            } => ProbeError::Throttled {
                message: add(message),
                retry_after,
            },
            ProbeError::Network { message } => ProbeError::Network {
                message: add(message),
            },
            // The limit comes last when shown, so the note goes beside what was asked.
            ProbeError::Timeout { what, after } => ProbeError::Timeout {
                what: format!("{what} ({note})"),
                after,
            },
            ProbeError::Http {
                what,
                status,
                hint,
                retry_after,
            } => ProbeError::Http {
                what,
                status,
                hint: Some(match hint {
                    Some(hint) => add(hint),
                    None => note.to_string(),
                }),
                retry_after,
            },
            ProbeError::Drift { what, detail } => ProbeError::Drift {
                what,
                detail: add(detail),
            },
            ProbeError::Credits { message } => ProbeError::Credits {
                message: add(message),
            },
            ProbeError::Config { message } => ProbeError::Config {
                message: add(message),
            },
        }
    }

    /// A drift error: the shorthand parsers use for "answered, but not in the expected shape".
    pub fn drift(what: impl Into<String>, detail: impl Into<String>) -> Self {
        ProbeError::Drift {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Formats a duration the way people write it ("10s", "1m 30s", "250ms").
pub fn humanize(d: Duration) -> String {
    if d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    humanize_secs(d.as_secs())
}

fn humanize_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = Vec::new();
    if h > 0 {
        out.push(format!("{h}h"));
    }
    if m > 0 {
        out.push(format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push(format!("{s}s"));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classes_are_the_ones_a_retry_can_fix() {
        let http = |status| ProbeError::Http {
            what: "x".into(),
            status,
            hint: None,
            retry_after: None,
        };
        assert!(http(503).is_transient());
        assert!(http(408).is_transient());
        assert!(!http(404).is_transient());
        assert!(!ProbeError::drift("x", "y").is_transient());
        assert!(
            ProbeError::Timeout {
                what: "x".into(),
                after: Duration::from_secs(1)
            }
            .is_transient()
        );
    }

    #[test]
    fn messages_read_as_sentences() {
        let e = ProbeError::Timeout {
            what: "GET /api/feed/mac".into(),
            after: Duration::from_secs(90),
        };
        assert_eq!(
            e.to_string(),
            "GET /api/feed/mac: no complete answer within 1m 30s"
        );
        let e = ProbeError::Http {
            what: "GET /x".into(),
            status: 503,
            hint: Some("server error".into()),
            retry_after: None,
        };
        assert_eq!(e.to_string(), "GET /x: HTTP 503 (server error)");
        assert_eq!(e.class().as_str(), "http");
        let noted = e.with_note("and the other view said nothing");
        assert_eq!(
            noted.to_string(),
            "GET /x: HTTP 503 (server error; and the other view said nothing)"
        );
        assert_eq!(noted.class().as_str(), "http");
        let timeout = ProbeError::Timeout {
            what: "GET /a".into(),
            after: Duration::from_secs(2),
        }
        .with_note("and GET /b: empty body");
        assert_eq!(
            timeout.to_string(),
            "GET /a (and GET /b: empty body): no complete answer within 2s"
        );
    }
}
