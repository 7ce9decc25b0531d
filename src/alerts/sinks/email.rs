//! E-mail over SMTP with lettre: a plain-text message, the title as its subject, to a relay that
//! must not depend on Microsoft 365 (or the mail about Microsoft 365 being down will not leave).
//!
//! The transport is built once, with the sink. An SMTP 4yz reply is worth another try, a 5yz
//! reply is not; a connection that fails, times out or cannot be secured is transient (the relay
//! may be back soon). The idempotency key travels in `X-Statusmon-Idempotency-Key`, so a mail
//! rule or a person can tell a retry's duplicate from a new alert. The password never appears
//! in a message: lettre's errors carry reply codes and texts, and the sink removes it from them
//! besides.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{EmailSettings, Notice, Sent, SinkError, SmtpTls, error_chain};

/// The header that carries the event's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "X-Statusmon-Idempotency-Key";

/// A configured SMTP relay and the addresses to use.
pub(super) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Email {
    pub(super) fn build(settings: EmailSettings, timeout: Duration) -> Result<Self, String> {
        if settings.host.trim().is_empty() {
            return Err("host is empty".to_string());
        }
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("from is not a valid address ({e})"))?;
        if settings.to.is_empty() {
            return Err("to is empty: at least one recipient is needed".to_string());
        }
        let to = settings
            .to
            .iter()
            .enumerate()
            .map(|(i, address)| {
                address
                    .parse::<Mailbox>()
                    .map_err(|e| format!("to[{i}] is not a valid address ({e})"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let builder = match settings.tls {
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(|e| format!("cannot set up STARTTLS for host: {e}"))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|e| format!("cannot set up TLS for host: {e}"))?,
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
        };
        let mut builder = builder.port(settings.port).timeout(Some(timeout));
        if let Some(username) = settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username, password));
        }
        Ok(Email {
            transport: builder.build(),
            from,
            to,
        })
    }

    pub(super) async fn send(&self, notice: &Notice<'_>) -> Result<Sent, SinkError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(notice.title.clone())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(IDEMPOTENCY_HEADER),
                notice.event.idempotency_key.clone(),
            ))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(notice.body.clone())
            .map_err(|e| SinkError::Permanent {
                message: format!("email: cannot build the message: {e}"),
            })?;
        match self.transport.send(message).await {
            Ok(response) => Ok(Sent {
                detail: format!(
                    "email: {} {}",
                    response.code(),
                    super::snippet(response.first_line().unwrap_or_default())
                )
                .trim_end()
                .to_string(),
            }),
            Err(e) => Err(classify(&e)),
        }
    }
}

/// A lettre error as a sink error: 4yz transient, 5yz permanent, and anything else (refused,
/// timed out, TLS, a connection lost) transient.
fn classify(error: &lettre::transport::smtp::Error) -> SinkError {
    let message = format!("email: {}", super::snippet(&error_chain(error)));
    if error.is_permanent() {
        SinkError::Permanent { message }
    } else {
        SinkError::Transient {
            message,
            retry_after: None,
        }
    }
}
