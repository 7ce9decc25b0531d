//! The e-mail receiver: a small SMTP server (RFC 5321 subset) that logs each accepted message as
//! an `email` delivery in the receivers' log, next to the HTTP receivers' deliveries.
//!
//! It listens on its own TCP port (SMTP is not HTTP) and speaks plain SMTP only: the simulator
//! offers **no STARTTLS and no implicit TLS**, so an e-mail sink is pointed at it with
//! `tls = "none"` (for lettre, `AsyncSmtpTransport::builder_dangerous(host).port(port)`). It
//! advertises `AUTH PLAIN LOGIN` and accepts any credentials, recording only the mechanism used,
//! never a user name or password, so a sink's authentication path runs without a secret ending up
//! in a test log.
//!
//! Commands: EHLO/HELO, AUTH, MAIL FROM, RCPT TO, DATA (dot-unstuffing, ends at
//! `<CRLF>.<CRLF>`), RSET, NOOP, VRFY, HELP, QUIT; anything else is 500. Limits, so a misbehaving
//! client cannot hold the simulator: [`SMTP_MAX_MESSAGE`] per message (552 beyond, after reading
//! to the end of the data), 4 KiB per command line, 1000 commands per connection,
//! [`SMTP_IDLE_TIMEOUT`] between lines, 10 minutes per connection, 64 connections at once.
//!
//! While the `email` receiver is switched down, a new connection is greeted with 421 and closed,
//! and DATA is answered 451 (both logged as refused deliveries), which a sender should treat as
//! transient and retry.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::SimState;
use super::receivers::{EmailEnvelope, IDEMPOTENCY_HEADER, NewDelivery};
use super::social::shown;

/// The largest message accepted, in bytes after dot-unstuffing (advertised as `SIZE`).
pub const SMTP_MAX_MESSAGE: usize = 1024 * 1024;

/// How long the server waits for the client's next line before answering 421 and closing.
pub const SMTP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The receiver name of e-mail deliveries (and of its down switch).
const RECEIVER: &str = "email";

/// The longest command line, CRLF included (RFC 5321 asks for 512; AUTH responses run longer).
const MAX_COMMAND_LINE: usize = 4096;

/// The longest message line kept (RFC 5321 allows 1000); a longer one makes the message too big.
const MAX_DATA_LINE: usize = 64 * 1024;

/// How much oversize data is read and thrown away, hoping for the end of the data, before the
/// connection is closed instead.
const MAX_DISCARD: usize = 16 * 1024 * 1024;

/// Commands (and AUTH exchange lines) per connection.
const MAX_COMMANDS: usize = 1000;

/// Recipients per message.
const MAX_RECIPIENTS: usize = 100;

/// Connections served at once; more are told 421 and closed.
const MAX_CONNECTIONS: usize = 64;

/// The longest a connection may last.
const SESSION_LIMIT: Duration = Duration::from_secs(600);

/// How long one reply may take to write before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The name the server greets with.
const HOSTNAME: &str = "smtp.statusmon-simulator.test";

/// A running SMTP receiver. It stops on [`SmtpHandle::shutdown`], when dropped, or when the
/// simulator whose state it records into shuts down.
#[derive(Debug)]
pub struct SmtpHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl SmtpHandle {
    /// Binds `listen` (port 0 picks a free port) and serves SMTP on the current tokio runtime,
    /// logging into `state` (usually through [`super::SimHandle::start_smtp`]). Returns as soon
    /// as the socket is bound.
    pub async fn start(listen: SocketAddr, state: SimState) -> io::Result<SmtpHandle> {
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen for SMTP on {listen}: {e}"))
        })?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let sim = state.clone();
        let server = tokio::spawn(serve(listener, state, async move {
            tokio::select! {
                _ = stopped.wait_for(|stopped| *stopped) => {}
                () = sim.stopped() => {}
            }
        }));
        tracing::debug!(%addr, "simulator SMTP receiver listening");
        Ok(SmtpHandle {
            addr,
            stop,
            server: Some(server),
        })
    }

    /// The address actually bound: what an e-mail sink's `host`/`port` point at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, cuts open sessions off and waits for the server.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "SMTP receiver ended with an error"),
                Err(error) => tracing::warn!(%error, "SMTP receiver task failed"),
            }
        }
    }
}

impl Drop for SmtpHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Serves SMTP on `listener`, logging into `state`'s receivers, until `shutdown` resolves; open
/// sessions are then cut off. For callers that bind their own listener; [`SmtpHandle::start`]
/// is the usual way in.
pub async fn serve(
    listener: TcpListener,
    state: SimState,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        let state = state.clone();
                        sessions.spawn(async move {
                            let _permit = permit;
                            match tokio::time::timeout(SESSION_LIMIT, session(stream, state)).await {
                                Ok(Ok(())) => {}
                                Ok(Err(error)) => tracing::debug!(%peer, %error, "SMTP session failed"),
                                Err(_) => tracing::debug!(%peer, "SMTP session cut off at its time limit"),
                            }
                        });
                    }
                    Err(_) => {
                        // Best effort and never waiting: the connection is closed either way.
                        let _ = stream.try_write(b"421 4.7.0 too many connections, try again later\r\n");
                    }
                },
                Err(error) => {
                    // E.g. out of file descriptors: keep serving once some are back.
                    tracing::debug!(%error, "SMTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    sessions.shutdown().await;
    Ok(())
}

/// One line read from the client.
enum Read {
    /// A whole line, LF included, in the connection's line buffer.
    Line,
    /// A line longer than allowed; it was read to its end and thrown away.
    TooLong,
    /// The client closed the connection.
    Eof,
    /// The client said nothing for [`SMTP_IDLE_TIMEOUT`].
    Idle,
}

/// How a DATA section ended.
enum Data {
    Message(Vec<u8>),
    TooBig,
    Closed,
    Idle,
}

/// The state of one SMTP session.
#[derive(Default)]
struct Session {
    greeted: bool,
    auth: Option<&'static str>,
    from: Option<String>,
    to: Vec<String>,
    commands: usize,
}

impl Session {
    fn reset_transaction(&mut self) {
        self.from = None;
        self.to.clear();
    }

    /// The transaction's envelope, ending the transaction.
    fn take_envelope(&mut self) -> EmailEnvelope {
        EmailEnvelope {
            from: self.from.take().unwrap_or_default(),
            to: std::mem::take(&mut self.to),
            auth: self.auth.map(str::to_string),
            subject: None,
        }
    }
}

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    line: Vec<u8>,
}

impl Conn {
    async fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        tokio::time::timeout(WRITE_TIMEOUT, self.writer.write_all(&bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client not reading"))?
    }

    async fn read(&mut self, cap: usize) -> io::Result<Read> {
        match tokio::time::timeout(
            SMTP_IDLE_TIMEOUT,
            read_line(&mut self.reader, &mut self.line, cap),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Ok(Read::Idle),
        }
    }

    /// The next command line, without its line end; None when the session is over (the client
    /// left, went idle, or sent too long a line, each answered as due).
    async fn command(&mut self, session: &mut Session) -> io::Result<Option<String>> {
        session.commands += 1;
        if session.commands > MAX_COMMANDS {
            self.reply("421 4.7.0 too many commands, closing").await?;
            return Ok(None);
        }
        match self.read(MAX_COMMAND_LINE).await? {
            Read::Line => Ok(Some(
                String::from_utf8_lossy(trim_line_end(&self.line)).into_owned(),
            )),
            Read::TooLong => {
                self.reply("500 5.5.2 line too long, closing").await?;
                Ok(None)
            }
            Read::Eof => Ok(None),
            Read::Idle => {
                self.reply("421 4.4.2 idle timeout, closing").await?;
                Ok(None)
            }
        }
    }

    /// The message after `354`, dot-unstuffed, up to the `.` line.
    async fn data(&mut self) -> io::Result<Data> {
        let mut message = Vec::new();
        let mut too_big = false;
        let mut discarded = 0usize;
        loop {
            match self.read(MAX_DATA_LINE).await? {
                Read::Eof => return Ok(Data::Closed),
                Read::Idle => return Ok(Data::Idle),
                Read::TooLong => {
                    too_big = true;
                    discarded += MAX_DATA_LINE;
                }
                Read::Line => {
                    if self.line == b".\r\n" || self.line == b".\n" {
                        break;
                    }
                    let content = self.line.strip_prefix(b".").unwrap_or(&self.line);
                    if too_big || message.len() + content.len() > SMTP_MAX_MESSAGE {
                        too_big = true;
                        discarded += content.len();
                        message = Vec::new();
                    } else {
                        message.extend_from_slice(content);
                    }
                }
            }
            if discarded > MAX_DISCARD {
                return Ok(Data::Closed);
            }
        }
        Ok(if too_big {
            Data::TooBig
        } else {
            Data::Message(message)
        })
    }
}

/// Reads one line of at most `cap` bytes into `line`; a longer line is read to its end (or to
/// [`MAX_DISCARD`]) and thrown away.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Read> {
    line.clear();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX);
    let n = (&mut *reader).take(limit).read_until(b'\n', line).await?;
    if n == 0 {
        return Ok(Read::Eof);
    }
    if line.last() == Some(&b'\n') {
        return Ok(Read::Line);
    }
    if n < cap {
        // The client closed the connection in the middle of a line.
        return Ok(Read::Eof);
    }
    line.clear();
    let mut discarded = n;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Read::Eof);
        }
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            reader.consume(end + 1);
            return Ok(Read::TooLong);
        }
        let len = chunk.len();
        reader.consume(len);
        discarded += len;
        if discarded > MAX_DISCARD {
            return Ok(Read::Eof);
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits a command line into its upper-cased verb and its argument.
fn verb(line: &str) -> (String, &str) {
    match line.split_once(' ') {
        Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
        None => (line.trim().to_ascii_uppercase(), ""),
    }
}

/// Parses `FROM:<path> params` (or `TO:…`): the path inside the angle brackets and the
/// parameters after it.
fn path_arg<'a>(arg: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg.get(keyword.len()..)?.trim_start();
    let rest = rest.strip_prefix('<')?;
    let (path, params) = rest.split_once('>')?;
    Some((path.to_string(), params.trim()))
}

/// Whether `text` is a base64 SASL response (`=` is the empty one, RFC 4954).
fn decode_sasl(text: &str) -> Option<Vec<u8>> {
    if text == "=" {
        return Some(Vec::new());
    }
    BASE64.decode(text.trim()).ok()
}

async fn session(stream: TcpStream, state: SimState) -> io::Result<()> {
    let (reader, writer) = stream.into_split();
    let mut conn = Conn {
        reader: BufReader::new(reader),
        writer,
        line: Vec::new(),
    };
    if state.hooks().is_down(RECEIVER) {
        record(&state, 421, true, b"", None);
        return conn
            .reply("421 4.3.2 receiver down (simulator), try again later")
            .await;
    }
    conn.reply(&format!(
        "220 {HOSTNAME} ESMTP statusmon simulator (plain SMTP, no STARTTLS)"
    ))
    .await?;
    let mut session = Session::default();
    while let Some(line) = conn.command(&mut session).await? {
        let (verb, arg) = verb(&line);
        match verb.as_str() {
            "EHLO" | "HELO" if arg.is_empty() => {
                conn.reply("501 5.5.4 a domain or address literal is required")
                    .await?;
            }
            "EHLO" => {
                session.greeted = true;
                session.reset_transaction();
                conn.reply(&format!(
                    "250-{HOSTNAME} greets {}\r\n250-SIZE {SMTP_MAX_MESSAGE}\r\n250-8BITMIME\r\n\
                     250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES",
                    shown(arg)
                ))
                .await?;
            }
            "HELO" => {
                session.greeted = true;
                session.reset_transaction();
                conn.reply(&format!("250 {HOSTNAME}")).await?;
            }
            "AUTH" => {
                if !auth(&mut conn, &mut session, arg).await? {
                    return Ok(());
                }
            }
            "MAIL" => mail(&mut conn, &mut session, arg).await?,
            "RCPT" => rcpt(&mut conn, &mut session, arg).await?,
            "DATA" => {
                if !data(&mut conn, &mut session, &state).await? {
                    return Ok(());
                }
            }
            "RSET" => {
                session.reset_transaction();
                conn.reply("250 2.0.0 OK").await?;
            }
            "NOOP" => conn.reply("250 2.0.0 OK").await?,
            "VRFY" => {
                conn.reply("252 2.1.5 cannot VRFY user, but will accept message")
                    .await?;
            }
            "HELP" => {
                conn.reply("214 2.0.0 EHLO HELO AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")
                    .await?;
            }
            "STARTTLS" => {
                conn.reply("502 5.5.1 STARTTLS not offered: the simulator speaks plain SMTP")
                    .await?;
            }
            "QUIT" => {
                conn.reply("221 2.0.0 bye").await?;
                return Ok(());
            }
            _ => conn.reply("500 5.5.2 command not recognized").await?,
        }
    }
    Ok(())
}

/// `AUTH PLAIN|LOGIN [initial-response]`. Any well-formed credentials succeed; only the
/// mechanism is kept. Returns false when the session is over.
async fn auth(conn: &mut Conn, session: &mut Session, arg: &str) -> io::Result<bool> {
    if !session.greeted {
        conn.reply("503 5.5.1 EHLO first").await?;
        return Ok(true);
    }
    if session.auth.is_some() {
        conn.reply("503 5.5.1 already authenticated").await?;
        return Ok(true);
    }
    if session.from.is_some() {
        conn.reply("503 5.5.1 AUTH not permitted during a mail transaction")
            .await?;
        return Ok(true);
    }
    let (mechanism, initial) = match arg.split_once(' ') {
        Some((mechanism, initial)) => (mechanism.to_ascii_uppercase(), Some(initial.trim())),
        None => (arg.to_ascii_uppercase(), None),
    };
    let (name, prompts): (&'static str, &[&str]) = match mechanism.as_str() {
        "PLAIN" => ("PLAIN", &["334 "]),
        // "Username:" and "Password:", base64.
        "LOGIN" => ("LOGIN", &["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"]),
        _ => {
            conn.reply("504 5.5.4 unrecognized authentication type (PLAIN or LOGIN)")
                .await?;
            return Ok(true);
        }
    };
    let mut responses: Vec<Vec<u8>> = Vec::new();
    let mut initial = initial.map(str::to_string);
    for prompt in prompts {
        let response = match initial.take() {
            Some(response) => response,
            None => {
                conn.reply(prompt).await?;
                match conn.command(session).await? {
                    Some(line) => line,
                    None => return Ok(false),
                }
            }
        };
        if response.trim() == "*" {
            conn.reply("501 5.0.0 authentication cancelled").await?;
            return Ok(true);
        }
        match decode_sasl(&response) {
            Some(decoded) => responses.push(decoded),
            None => {
                conn.reply("501 5.5.2 cannot decode the response (base64 expected)")
                    .await?;
                return Ok(true);
            }
        }
    }
    let well_formed = match name {
        // authzid NUL authcid NUL passwd, with a user name.
        "PLAIN" => responses.first().is_some_and(|plain| {
            let parts: Vec<&[u8]> = plain.split(|&b| b == 0).collect();
            parts.len() == 3 && parts.get(1).is_some_and(|user| !user.is_empty())
        }),
        _ => responses.first().is_some_and(|user| !user.is_empty()),
    };
    // The decoded credentials go no further than this function.
    drop(responses);
    if !well_formed {
        conn.reply("535 5.7.8 authentication credentials malformed")
            .await?;
        return Ok(true);
    }
    session.auth = Some(name);
    conn.reply("235 2.7.0 authentication successful").await?;
    Ok(true)
}

async fn mail(conn: &mut Conn, session: &mut Session, arg: &str) -> io::Result<()> {
    if !session.greeted {
        return conn.reply("503 5.5.1 EHLO first").await;
    }
    if session.from.is_some() {
        return conn.reply("503 5.5.1 nested MAIL command").await;
    }
    let Some((from, params)) = path_arg(arg, "FROM:") else {
        return conn.reply("501 5.5.4 syntax: MAIL FROM:<address>").await;
    };
    let declared = params.split_whitespace().find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.eq_ignore_ascii_case("SIZE")
            .then(|| value.parse::<u64>().ok())
            .flatten()
    });
    if declared.is_some_and(|size| size > SMTP_MAX_MESSAGE as u64) {
        return conn
            .reply("552 5.3.4 message size exceeds fixed maximum message size")
            .await;
    }
    session.from = Some(from);
    conn.reply("250 2.1.0 OK").await
}

async fn rcpt(conn: &mut Conn, session: &mut Session, arg: &str) -> io::Result<()> {
    if session.from.is_none() {
        return conn.reply("503 5.5.1 MAIL first").await;
    }
    let Some((to, _)) = path_arg(arg, "TO:").filter(|(to, _)| !to.is_empty()) else {
        return conn.reply("501 5.5.4 syntax: RCPT TO:<address>").await;
    };
    if session.to.len() >= MAX_RECIPIENTS {
        return conn.reply("452 4.5.3 too many recipients").await;
    }
    session.to.push(to);
    conn.reply("250 2.1.5 OK").await
}

/// The answer to DATA while the `email` receiver is down: transient, so the sender retries.
const DOWN_AT_DATA: &str = "451 4.3.0 receiver down (simulator), try again later";

/// `DATA`: the message, logged when accepted. Returns false when the session is over.
async fn data(conn: &mut Conn, session: &mut Session, state: &SimState) -> io::Result<bool> {
    if session.from.is_none() || session.to.is_empty() {
        conn.reply("503 5.5.1 no valid recipients").await?;
        return Ok(true);
    }
    if state.hooks().is_down(RECEIVER) {
        record(state, 451, true, b"", Some(session.take_envelope()));
        conn.reply(DOWN_AT_DATA).await?;
        return Ok(true);
    }
    conn.reply("354 start mail input; end with <CRLF>.<CRLF>")
        .await?;
    let envelope = session.take_envelope();
    match conn.data().await? {
        Data::Message(message) => {
            if state.hooks().is_down(RECEIVER) {
                record(state, 451, true, &message, Some(envelope));
                conn.reply(DOWN_AT_DATA).await?;
            } else {
                let seq = record(state, 250, false, &message, Some(envelope));
                conn.reply(&format!("250 2.0.0 OK: queued as {seq}"))
                    .await?;
            }
            Ok(true)
        }
        Data::TooBig => {
            record(state, 552, false, b"", Some(envelope));
            conn.reply("552 5.3.4 message size exceeds fixed maximum message size")
                .await?;
            Ok(true)
        }
        Data::Closed => Ok(false),
        Data::Idle => {
            conn.reply("421 4.4.2 idle timeout, closing").await?;
            Ok(false)
        }
    }
}

/// Logs one e-mail delivery; returns its `seq`.
fn record(
    state: &SimState,
    status: u16,
    refused: bool,
    message: &[u8],
    envelope: Option<EmailEnvelope>,
) -> u64 {
    let text = String::from_utf8_lossy(message).into_owned();
    let envelope = envelope.map(|envelope| EmailEnvelope {
        subject: header_field(&text, "subject"),
        ..envelope
    });
    state.hooks().record(NewDelivery {
        receiver: RECEIVER.to_string(),
        status,
        refused,
        idempotency_key: header_field(&text, IDEMPOTENCY_HEADER),
        signature: None,
        headers: BTreeMap::new(),
        size: message.len(),
        body: Value::String(text),
        email: envelope,
    })
}

/// The value of the message header `name` (case-insensitive, unfolded), if present.
fn header_field(message: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in message.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            // The end of the header section.
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(value) = found.as_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((field, value)) = line.split_once(':')
            && field.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.trim().to_string());
        }
    }
    found.map(|value| value.chars().take(1024).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_unfold_and_stop_at_the_body() {
        let message =
            "Subject: a\r\n long one\r\nX-Statusmon-Idempotency-Key: k1\r\n\r\nSubject: no\r\n";
        assert_eq!(
            header_field(message, "subject").as_deref(),
            Some("a long one")
        );
        assert_eq!(
            header_field(message, IDEMPOTENCY_HEADER).as_deref(),
            Some("k1")
        );
        assert_eq!(header_field("\r\nSubject: body\r\n", "subject"), None);
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            path_arg("FROM:<a@b> SIZE=10", "FROM:"),
            Some(("a@b".to_string(), "SIZE=10"))
        );
        assert_eq!(path_arg("from: <>", "FROM:"), Some((String::new(), "")));
        assert_eq!(path_arg("TO:a@b", "TO:"), None);
        assert_eq!(path_arg("é", "FROM:"), None);
    }
}
