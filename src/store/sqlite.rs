//! The embedded SQLite [`Store`](super::Store) (rusqlite, bundled).
//!
//! One dedicated thread owns the `Connection` and takes commands over a channel, in order; the
//! async side holds [`SqliteStore`], a cheap cloneable handle. So no query ever blocks a tokio
//! worker, and writes are serialised without locks.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    Acknowledgement, DeliveryOutcome, DeliveryWrite, HistoryRow, OutboxRow, Receipt, ReceiptRow,
    Round, Snapshot, Store, StoreError, StoredChannel, StoredIncident, TransitionRow, from_millis,
    to_millis,
};
use crate::alerts::AlertEvent;
use crate::alerts::routes::Silence;
use crate::resolver::TargetMemory;
use crate::status::StatusDocument;

/// The schema, one step per version: step `i` takes `user_version` from `i` to `i + 1`, each in
/// its own transaction. Append new steps; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: channel state, history, transitions, incidents, resolver memory, last document.
    r"
    CREATE TABLE channel_state (
        channel       TEXT PRIMARY KEY,
        observation   TEXT,             -- JSON of the last successful Observation
        last_success  INTEGER,          -- unix ms
        failing_since INTEGER,          -- unix ms
        error_class   TEXT,
        error_message TEXT,
        error         TEXT,             -- JSON of the ProbeError, for a faithful restore
        updated_at    INTEGER NOT NULL
    );
    CREATE TABLE observations (
        id            INTEGER PRIMARY KEY,
        channel       TEXT NOT NULL,
        at            INTEGER NOT NULL,
        digest        TEXT,
        error_class   TEXT,
        error_message TEXT,
        observation   TEXT
    );
    CREATE INDEX observations_by_channel ON observations (channel, id);
    CREATE INDEX observations_by_time ON observations (at);
    CREATE TABLE transitions (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        target  TEXT,
        channel TEXT,
        text    TEXT NOT NULL
    );
    CREATE INDEX transitions_by_time ON transitions (at);
    CREATE TABLE incidents (
        target         TEXT NOT NULL,
        id             TEXT NOT NULL,
        title          TEXT NOT NULL,
        service        TEXT,
        classification TEXT NOT NULL,
        status         TEXT NOT NULL,
        resolved       INTEGER NOT NULL,
        listed         INTEGER NOT NULL,
        sources        TEXT NOT NULL,   -- JSON array of channel ids
        started_at     INTEGER,
        updated_at     INTEGER,         -- the source's latest update
        first_seen     INTEGER NOT NULL,
        last_updated   INTEGER NOT NULL,
        resolved_at    INTEGER,
        PRIMARY KEY (target, id)
    );
    CREATE TABLE target_memory (
        target     TEXT PRIMARY KEY,
        memory     TEXT NOT NULL,       -- JSON of TargetMemory
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE published (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        document     TEXT NOT NULL,     -- JSON of the last published StatusDocument
        generated_at INTEGER NOT NULL
    );
    ",
    // 2: the alert outbox, written in the round's transaction (issue 7): one row per alert
    // event, in the order the rounds saw them, kept until delivered.
    r"
    CREATE TABLE alert_outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        event           TEXT NOT NULL,  -- JSON of the AlertEvent
        created_at      INTEGER NOT NULL,
        delivered_at    INTEGER
    );
    CREATE INDEX alert_outbox_undelivered ON alert_outbox (id) WHERE delivered_at IS NULL;
    ",
    // 3: delivery (issue 7): each route's receipt per outbox row, silences and
    // acknowledgements made through the API.
    r"
    CREATE TABLE alert_receipts (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        outbox_id INTEGER NOT NULL,
        route     TEXT NOT NULL,
        sink      TEXT,
        outcome   TEXT NOT NULL,     -- delivered | failed | silenced | maintenance | acknowledged
        attempts  INTEGER NOT NULL,
        detail    TEXT NOT NULL,
        at        INTEGER NOT NULL
    );
    CREATE INDEX alert_receipts_by_outbox ON alert_receipts (outbox_id);
    CREATE TABLE silences (
        id      TEXT PRIMARY KEY,
        silence TEXT NOT NULL,       -- JSON of the Silence
        ends_at INTEGER NOT NULL
    );
    CREATE TABLE acknowledgements (
        alert   TEXT PRIMARY KEY,
        at      INTEGER NOT NULL,
        comment TEXT NOT NULL
    );
    ",
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a statement waits for another connection's lock (a backup tool, say) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the writer prunes by retention (and with the first round it records).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Commands queued to the writer thread.
const QUEUE: usize = 64;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Load(Reply<Snapshot>),
    Record(Box<Round>, Reply<()>),
    History(Option<String>, Reply<Vec<HistoryRow>>),
    Transitions(Reply<Vec<TransitionRow>>),
    Incidents(Reply<Vec<StoredIncident>>),
    /// Rows after an id; only the undelivered ones when `true`.
    Outbox(i64, bool, Reply<Vec<OutboxRow>>),
    Enqueue(Vec<AlertEvent>, DateTime<Utc>, Reply<()>),
    Deliveries(Vec<DeliveryWrite>, Reply<()>),
    Receipts(u32, Reply<Vec<ReceiptRow>>),
    Silences(Reply<Vec<Silence>>),
    SaveSilence(Box<Silence>, Reply<()>),
    Acknowledgements(Reply<Vec<Acknowledgement>>),
    Acknowledge(Acknowledgement, Reply<()>),
    Prune(DateTime<Utc>, Reply<u64>),
    Close(Reply<()>),
}

/// A handle to the SQLite store; clones share the one writer thread.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Load(_) => "Load",
            Command::Record(..) => "Record",
            Command::History(..) => "History",
            Command::Transitions(_) => "Transitions",
            Command::Incidents(_) => "Incidents",
            Command::Outbox(..) => "Outbox",
            Command::Enqueue(..) => "Enqueue",
            Command::Deliveries(..) => "Deliveries",
            Command::Receipts(..) => "Receipts",
            Command::Silences(_) => "Silences",
            Command::SaveSilence(..) => "SaveSilence",
            Command::Acknowledgements(_) => "Acknowledgements",
            Command::Acknowledge(..) => "Acknowledge",
            Command::Prune(..) => "Prune",
            Command::Close(_) => "Close",
        })
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, migrates it, and starts its writer
    /// thread. History older than `retention` is pruned now and hourly.
    pub async fn open(path: &Path, retention: Duration) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let (ready, opened) = oneshot::channel();
        let (commands, queue) = mpsc::channel(QUEUE);
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("statusmon-store".into())
            .spawn(move || match open_connection(&thread_path) {
                Ok(connection) => {
                    let _ = ready.send(Ok(()));
                    Writer::new(connection, retention).run(queue);
                }
                Err(error) => {
                    let _ = ready.send(Err(error));
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                source: Box::new(e),
            })?;
        opened.await.map_err(|_| StoreError::Closed)??;
        Ok(SqliteStore { path, commands })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> BoxFuture<'_, Result<Snapshot, StoreError>> {
        self.ask(Command::Load).boxed()
    }

    fn record(&self, round: Round) -> BoxFuture<'_, Result<(), StoreError>> {
        self.ask(move |reply| Command::Record(Box::new(round), reply))
            .boxed()
    }

    fn history(
        &self,
        channel: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<HistoryRow>, StoreError>> {
        self.ask(move |reply| Command::History(channel, reply))
            .boxed()
    }

    fn transitions(&self) -> BoxFuture<'_, Result<Vec<TransitionRow>, StoreError>> {
        self.ask(Command::Transitions).boxed()
    }

    fn incidents(&self) -> BoxFuture<'_, Result<Vec<StoredIncident>, StoreError>> {
        self.ask(Command::Incidents).boxed()
    }

    fn outbox_after(&self, after: i64) -> BoxFuture<'_, Result<Vec<OutboxRow>, StoreError>> {
        self.ask(move |reply| Command::Outbox(after, true, reply))
            .boxed()
    }

    fn alert_log(&self) -> BoxFuture<'_, Result<Vec<OutboxRow>, StoreError>> {
        self.ask(|reply| Command::Outbox(0, false, reply)).boxed()
    }

    fn enqueue(
        &self,
        events: Vec<AlertEvent>,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.ask(move |reply| Command::Enqueue(events, at, reply))
            .boxed()
    }

    fn write_deliveries(
        &self,
        writes: Vec<DeliveryWrite>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.ask(move |reply| Command::Deliveries(writes, reply))
            .boxed()
    }

    fn receipts(&self, limit: u32) -> BoxFuture<'_, Result<Vec<ReceiptRow>, StoreError>> {
        self.ask(move |reply| Command::Receipts(limit, reply))
            .boxed()
    }

    fn silences(&self) -> BoxFuture<'_, Result<Vec<Silence>, StoreError>> {
        self.ask(Command::Silences).boxed()
    }

    fn save_silence(&self, silence: Silence) -> BoxFuture<'_, Result<(), StoreError>> {
        self.ask(move |reply| Command::SaveSilence(Box::new(silence), reply))
            .boxed()
    }

    fn acknowledgements(&self) -> BoxFuture<'_, Result<Vec<Acknowledgement>, StoreError>> {
        self.ask(Command::Acknowledgements).boxed()
    }

    fn acknowledge(&self, ack: Acknowledgement) -> BoxFuture<'_, Result<(), StoreError>> {
        self.ask(move |reply| Command::Acknowledge(ack, reply))
            .boxed()
    }

    fn prune(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.ask(move |reply| Command::Prune(now, reply)).boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            match self.ask(Command::Close).await {
                // Closed already (by another handle): nothing is left to flush.
                Err(StoreError::Closed) => Ok(()),
                other => other,
            }
        }
        .boxed()
    }
}

/// Opens, configures and migrates the database; every error names the path.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut connection = Connection::open(path).map_err(open_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    // WAL: readers never block the writer and a commit is one append. Reading the mode back is
    // also the first real read of the file, so "not a database" surfaces here, at start-up.
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "the store could not switch to WAL");
    }
    // NORMAL in WAL mode syncs at checkpoints, not at every commit: a committed round survives a
    // crash or kill -9 of the process (it is in the WAL, which the OS holds), and only a power
    // loss can lose the last few rounds, which the next probes redo anyway.
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    // The store is written a round at a time and read only at start-up, so SQLite's default
    // page cache (2 MiB, held for the daemon's life) buys nothing: a round larger than the cache
    // writes some of its pages to the WAL before its commit instead of at it.
    connection
        .pragma_update(None, "cache_size", PAGE_CACHE_KIB)
        .map_err(open_error)?;
    migrate(&mut connection, path)?;
    Ok(connection)
}

/// SQLite's page cache, as its `cache_size` pragma takes it: negative is KiB.
const PAGE_CACHE_KIB: i64 = -256;

/// Runs one of a round's statements, prepared once per connection and then taken from
/// rusqlite's cache (a round writes the same few statements for every changed channel).
fn execute_cached(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    connection.prepare_cached(sql)?.execute(params)
}

/// Applies every migration the database lacks, each in its own transaction.
fn migrate(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let failed = |source: rusqlite::Error| StoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source: Box::new(source),
        };
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        transaction.execute_batch(step).map_err(failed)?;
        transaction
            .pragma_update(None, "user_version", version)
            .map_err(failed)?;
        transaction.commit().map_err(failed)?;
    }
    Ok(())
}

/// The writer thread's state.
struct Writer {
    connection: Connection,
    retention: Duration,
    /// Per channel, the (digest, error class) of its latest history row, so an identical answer
    /// is not written again.
    last_history: HashMap<String, (Option<String>, Option<String>)>,
    last_prune: Option<std::time::Instant>,
}

fn backend(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Backend {
        what,
        source: Box::new(source),
    }
}

fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

impl Writer {
    fn new(connection: Connection, retention: Duration) -> Self {
        Writer {
            connection,
            retention,
            last_history: HashMap::new(),
            last_prune: None,
        }
    }

    /// Serves commands in order until closed or every handle is gone.
    /// Pruning waits for the first recorded round: a command that opens the store only to read
    /// it (`history` while `run` runs) deletes nothing.
    fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        while let Some(command) = queue.blocking_recv() {
            match command {
                Command::Load(reply) => {
                    let _ = reply.send(self.load());
                }
                Command::Record(round, reply) => {
                    let outcome = self.record(&round);
                    let _ = reply.send(outcome);
                    self.prune_if_due(round.at);
                }
                Command::History(channel, reply) => {
                    let _ = reply.send(self.history(channel.as_deref()));
                }
                Command::Transitions(reply) => {
                    let _ = reply.send(self.transitions());
                }
                Command::Incidents(reply) => {
                    let _ = reply.send(self.incidents());
                }
                Command::Outbox(after, pending_only, reply) => {
                    let _ = reply.send(self.outbox(after, pending_only));
                }
                Command::Enqueue(events, at, reply) => {
                    let _ = reply.send(self.enqueue(&events, at));
                }
                Command::Deliveries(writes, reply) => {
                    let _ = reply.send(self.write_deliveries(&writes));
                }
                Command::Receipts(limit, reply) => {
                    let _ = reply.send(self.receipts(limit));
                }
                Command::Silences(reply) => {
                    let _ = reply.send(self.silences());
                }
                Command::SaveSilence(silence, reply) => {
                    let _ = reply.send(self.save_silence(&silence));
                }
                Command::Acknowledgements(reply) => {
                    let _ = reply.send(self.acknowledgements());
                }
                Command::Acknowledge(ack, reply) => {
                    let _ = reply.send(self.acknowledge(&ack));
                }
                Command::Prune(now, reply) => {
                    let _ = reply.send(self.prune(now));
                }
                Command::Close(reply) => {
                    let outcome = self.close();
                    let _ = reply.send(outcome);
                    return;
                }
            }
        }
    }

    fn close(self) -> Result<(), StoreError> {
        // Fold the WAL back into the database so the file stands alone when we are not running.
        let _ = self
            .connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        self.connection
            .close()
            .map_err(|(_, source)| backend("close")(source))
    }

    fn prune_if_due(&mut self, now: DateTime<Utc>) {
        if self.last_prune.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.last_prune = Some(std::time::Instant::now());
        match self.prune(now) {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "pruned store history past its retention"),
            Err(error) => tracing::warn!(%error, "pruning the store failed"),
        }
    }

    fn prune(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let retention =
            chrono::TimeDelta::from_std(self.retention).unwrap_or(chrono::TimeDelta::MAX);
        let cutoff = now
            .checked_sub_signed(retention)
            .map(to_millis)
            .unwrap_or(i64::MIN);
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("prune"))?;
        let mut rows = 0;
        for sql in [
            "DELETE FROM observations WHERE at < ?1",
            "DELETE FROM transitions WHERE at < ?1",
            "DELETE FROM incidents WHERE listed = 0 AND last_updated < ?1",
            "DELETE FROM alert_receipts WHERE at < ?1",
            "DELETE FROM silences WHERE ends_at < ?1",
            // Delivered events age out, except each alert's latest: it says whether the alert
            // is open, which reminders and resolutions need however old it is.
            "DELETE FROM alert_outbox WHERE delivered_at IS NOT NULL AND created_at < ?1
                 AND id NOT IN (SELECT MAX(id) FROM alert_outbox
                                GROUP BY json_extract(event, '$.alert'))",
        ] {
            rows += transaction
                .execute(sql, params![cutoff])
                .map_err(backend("prune"))? as u64;
        }
        transaction.commit().map_err(backend("prune"))?;
        // A pruned channel's next outcome starts its history afresh.
        self.last_history.clear();
        Ok(rows)
    }

    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let read = backend("load");
        let mut snapshot = Snapshot::default();
        let mut statement = self
            .connection
            .prepare("SELECT channel, observation, failing_since, error FROM channel_state ORDER BY channel")
            .map_err(&read)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(&read)?;
        for row in rows {
            let (id, observation, failing_since, error) = row.map_err(&read)?;
            let observation = match observation.map(|j| serde_json::from_str(&j)).transpose() {
                Ok(observation) => observation,
                Err(e) => {
                    snapshot
                        .skipped
                        .push(format!("channel {id}: its last observation ({e})"));
                    continue;
                }
            };
            let error = match error.map(|j| serde_json::from_str(&j)).transpose() {
                Ok(error) => error,
                Err(e) => {
                    snapshot
                        .skipped
                        .push(format!("channel {id}: its last error ({e})"));
                    continue;
                }
            };
            snapshot.channels.push(StoredChannel {
                id,
                observation,
                failing_since: failing_since.and_then(from_millis),
                error,
            });
        }
        drop(statement);

        let mut statement = self
            .connection
            .prepare("SELECT target, memory FROM target_memory ORDER BY target")
            .map_err(&read)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(&read)?;
        for row in rows {
            let (target, json) = row.map_err(&read)?;
            match serde_json::from_str::<TargetMemory>(&json) {
                Ok(memory) => {
                    snapshot.memory.insert(target, memory);
                }
                Err(e) => snapshot
                    .skipped
                    .push(format!("target {target}: its resolver memory ({e})")),
            }
        }
        drop(statement);

        let document: Option<String> = self
            .connection
            .query_row("SELECT document FROM published WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(&read)?;
        if let Some(json) = document {
            match serde_json::from_str::<StatusDocument>(&json) {
                Ok(document) => snapshot.document = Some(document),
                Err(e) => snapshot
                    .skipped
                    .push(format!("the last published document ({e})")),
            }
        }
        Ok(snapshot)
    }

    fn record(&mut self, round: &Round) -> Result<(), StoreError> {
        let write = backend("write");
        let at = to_millis(round.at);
        // Encode first: nothing is written unless all of it can be.
        let mut channels = Vec::with_capacity(round.channels.len());
        for channel in &round.channels {
            let observation = channel
                .observation
                .as_ref()
                .map(|o| encode("an observation", o))
                .transpose()?;
            let error = channel
                .error
                .as_ref()
                .map(|e| encode("a probe error", e))
                .transpose()?;
            channels.push((channel, observation, error));
        }
        let memory = round
            .memory
            .iter()
            .map(|(target, m)| Ok((target, encode("resolver memory", m)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let document = round
            .document
            .as_ref()
            .map(|d| encode("the status document", &**d))
            .transpose()?;
        let incidents = round
            .incidents
            .iter()
            .map(|u| Ok((u, encode("incident sources", &u.incident.sources)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let alerts = round
            .alerts
            .iter()
            .map(|event| Ok((event, encode("an alert event", event)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;

        let mut history_keys = BTreeMap::new();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&write)?;
        for (channel, observation, error) in &channels {
            let class = channel.error.as_ref().map(|e| e.class().to_string());
            let message = channel.error.as_ref().map(|e| e.to_string());
            execute_cached(
                &transaction,
                "INSERT INTO channel_state (channel, observation, last_success, failing_since,
                         error_class, error_message, error, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (channel) DO UPDATE SET observation = excluded.observation,
                         last_success = excluded.last_success,
                         failing_since = excluded.failing_since,
                         error_class = excluded.error_class,
                         error_message = excluded.error_message, error = excluded.error,
                         updated_at = excluded.updated_at",
                params![
                    channel.id,
                    observation,
                    channel
                        .observation
                        .as_ref()
                        .map(|o| to_millis(o.observed_at)),
                    channel.failing_since.map(to_millis),
                    class,
                    message,
                    error,
                    at
                ],
            )
            .map_err(&write)?;
            // History: the latest outcome, when its digest or error class differs from the
            // channel's previous row.
            let key = match &channel.error {
                Some(_) => (None, class.clone()),
                None => (channel.observation.as_ref().map(|o| o.digest.clone()), None),
            };
            if key == (None, None) {
                continue;
            }
            let previous = match self.last_history.get(&channel.id) {
                Some(previous) => Some(previous.clone()),
                None => transaction
                    .prepare_cached(
                        "SELECT digest, error_class FROM observations WHERE channel = ?1
                         ORDER BY id DESC LIMIT 1",
                    )
                    .and_then(|mut statement| {
                        statement
                            .query_row(params![channel.id], |row| Ok((row.get(0)?, row.get(1)?)))
                    })
                    .optional()
                    .map_err(&write)?,
            };
            if previous.as_ref() == Some(&key) {
                history_keys.insert(channel.id.clone(), key);
                continue;
            }
            let (row_at, row_observation) = match &channel.error {
                Some(_) => (at, None),
                None => (
                    channel
                        .observation
                        .as_ref()
                        .map(|o| to_millis(o.observed_at))
                        .unwrap_or(at),
                    observation.as_ref(),
                ),
            };
            execute_cached(
                &transaction,
                "INSERT INTO observations (channel, at, digest, error_class, error_message,
                         observation)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![channel.id, row_at, key.0, key.1, message, row_observation],
            )
            .map_err(&write)?;
            history_keys.insert(channel.id.clone(), key);
        }
        for (target, json) in &memory {
            execute_cached(
                &transaction,
                "INSERT INTO target_memory (target, memory, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (target) DO UPDATE SET memory = excluded.memory,
                         updated_at = excluded.updated_at",
                params![target, json, at],
            )
            .map_err(&write)?;
        }
        if let (Some(json), Some(document)) = (&document, &round.document) {
            execute_cached(
                &transaction,
                "INSERT INTO published (id, document, generated_at) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET document = excluded.document,
                         generated_at = excluded.generated_at",
                params![json, to_millis(document.generated_at)],
            )
            .map_err(&write)?;
        }
        for (update, sources) in &incidents {
            let incident = &update.incident;
            let classification = serde_json::to_value(incident.classification)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".to_string());
            execute_cached(
                &transaction,
                "INSERT INTO incidents (target, id, title, service, classification, status,
                         resolved, listed, sources, started_at, updated_at, first_seen,
                         last_updated, resolved_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12,
                         CASE WHEN ?7 THEN ?12 END)
                     ON CONFLICT (target, id) DO UPDATE SET title = excluded.title,
                         service = excluded.service, classification = excluded.classification,
                         status = excluded.status, resolved = excluded.resolved,
                         listed = excluded.listed, sources = excluded.sources,
                         started_at = excluded.started_at, updated_at = excluded.updated_at,
                         last_updated = excluded.last_updated,
                         resolved_at = CASE WHEN excluded.resolved
                             THEN coalesce(incidents.resolved_at, excluded.last_updated) END",
                params![
                    update.target,
                    incident.id,
                    incident.title,
                    incident.service,
                    classification,
                    incident.status,
                    incident.resolved,
                    update.listed,
                    sources,
                    incident.started_at.map(to_millis),
                    incident.updated_at.map(to_millis),
                    at
                ],
            )
            .map_err(&write)?;
        }
        for (seen, change) in &round.changes {
            execute_cached(
                &transaction,
                "INSERT INTO transitions (at, target, channel, text) VALUES (?1, ?2, ?3, ?4)",
                params![to_millis(*seen), change.target, change.channel, change.text],
            )
            .map_err(&write)?;
        }
        for (event, json) in &alerts {
            execute_cached(
                &transaction,
                "INSERT INTO alert_outbox (idempotency_key, event, created_at)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                params![event.idempotency_key, json, at],
            )
            .map_err(&write)?;
        }
        transaction.commit().map_err(&write)?;
        // Only now, with the rows committed, is the history cache true.
        self.last_history.extend(history_keys);
        Ok(())
    }

    fn history(&self, channel: Option<&str>) -> Result<Vec<HistoryRow>, StoreError> {
        let read = backend("history read");
        let mut statement = self
            .connection
            .prepare(
                "SELECT channel, at, digest, error_class, error_message, observation
                 FROM observations WHERE ?1 IS NULL OR channel = ?1 ORDER BY id",
            )
            .map_err(&read)?;
        let rows = statement
            .query_map(params![channel], |row| {
                Ok(HistoryRow {
                    channel: row.get(0)?,
                    at: from_millis(row.get(1)?).unwrap_or_default(),
                    digest: row.get(2)?,
                    error_class: row.get(3)?,
                    error_message: row.get(4)?,
                    observation: row.get(5)?,
                })
            })
            .map_err(&read)?;
        rows.collect::<Result<_, _>>().map_err(&read)
    }

    fn outbox(&self, after: i64, pending_only: bool) -> Result<Vec<OutboxRow>, StoreError> {
        let read = backend("outbox read");
        let mut statement = self
            .connection
            .prepare(
                "SELECT o.id, o.event, o.created_at, o.delivered_at,
                        (SELECT group_concat(route || char(30) || outcome, char(31))
                         FROM alert_receipts r
                         WHERE r.outbox_id = o.id AND r.outcome <> 'failed')
                 FROM alert_outbox o WHERE o.id > ?2 AND (NOT ?1 OR o.delivered_at IS NULL)
                 ORDER BY o.id",
            )
            .map_err(&read)?;
        let rows = statement
            .query_map(params![pending_only, after], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(&read)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, event, created_at, delivered_at, done) = row.map_err(&read)?;
            // A row this build cannot read is still an alert: it stays in the table, and the
            // error names it rather than dropping it.
            let event = serde_json::from_str(&event).map_err(|e| StoreError::Backend {
                what: "outbox read",
                source: format!("alert_outbox row {id}: {e}").into(),
            })?;
            let mut done_routes: Vec<(String, DeliveryOutcome)> = done
                .iter()
                .flat_map(|d| d.split('\u{1f}'))
                .filter_map(|pair| {
                    let (route, outcome) = pair.split_once('\u{1e}')?;
                    Some((route.to_string(), DeliveryOutcome::parse(outcome)?))
                })
                .collect();
            done_routes.sort_by(|a, b| a.0.cmp(&b.0));
            done_routes.dedup_by(|a, b| a.0 == b.0);
            out.push(OutboxRow {
                id,
                event,
                created_at: from_millis(created_at).unwrap_or_default(),
                delivered_at: delivered_at.and_then(from_millis),
                done_routes,
            });
        }
        Ok(out)
    }

    fn enqueue(&mut self, events: &[AlertEvent], at: DateTime<Utc>) -> Result<(), StoreError> {
        let write = backend("enqueue");
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&write)?;
        for event in events {
            let json = encode("alert event", event)?;
            execute_cached(
                &transaction,
                "INSERT INTO alert_outbox (idempotency_key, event, created_at)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                params![event.idempotency_key, json, to_millis(at)],
            )
            .map_err(&write)?;
        }
        transaction.commit().map_err(&write)
    }

    fn write_deliveries(&mut self, writes: &[DeliveryWrite]) -> Result<(), StoreError> {
        let write = backend("delivery write");
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&write)?;
        for item in writes {
            match item {
                DeliveryWrite::Receipt(r) => execute_cached(
                    &transaction,
                    "INSERT INTO alert_receipts
                         (outbox_id, route, sink, outcome, attempts, detail, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        r.outbox_id,
                        r.route,
                        r.sink,
                        r.outcome.as_str(),
                        r.attempts,
                        r.detail,
                        to_millis(r.at)
                    ],
                ),
                DeliveryWrite::Done { outbox_id, at } => execute_cached(
                    &transaction,
                    "UPDATE alert_outbox SET delivered_at = ?2
                         WHERE id = ?1 AND delivered_at IS NULL",
                    params![outbox_id, to_millis(*at)],
                ),
            }
            .map_err(&write)?;
        }
        transaction.commit().map_err(&write)
    }

    fn receipts(&self, limit: u32) -> Result<Vec<ReceiptRow>, StoreError> {
        let read = backend("receipts read");
        let mut statement = self
            .connection
            .prepare(
                "SELECT r.outbox_id, r.route, r.sink, r.outcome, r.attempts, r.detail, r.at,
                        o.event
                 FROM alert_receipts r JOIN alert_outbox o ON o.id = r.outbox_id
                 ORDER BY r.id DESC LIMIT ?1",
            )
            .map_err(&read)?;
        let rows = statement
            .query_map(params![limit], |row| {
                Ok((
                    Receipt {
                        outbox_id: row.get(0)?,
                        route: row.get(1)?,
                        sink: row.get(2)?,
                        outcome: DeliveryOutcome::parse(&row.get::<_, String>(3)?)
                            .unwrap_or(DeliveryOutcome::Failed),
                        attempts: row.get(4)?,
                        detail: row.get(5)?,
                        at: from_millis(row.get(6)?).unwrap_or_default(),
                    },
                    row.get::<_, String>(7)?,
                ))
            })
            .map_err(&read)?;
        let mut out = Vec::new();
        for row in rows {
            let (receipt, event) = row.map_err(&read)?;
            let event: AlertEvent = match serde_json::from_str(&event) {
                Ok(event) => event,
                // Shown without its event rather than hidden.
                Err(_) => {
                    out.push(ReceiptRow {
                        receipt,
                        alert: String::new(),
                        idempotency_key: String::new(),
                        summary: "(an event this build cannot read)".into(),
                    });
                    continue;
                }
            };
            out.push(ReceiptRow {
                receipt,
                alert: event.alert,
                idempotency_key: event.idempotency_key,
                summary: event.summary,
            });
        }
        Ok(out)
    }

    fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let read = backend("silences read");
        let mut statement = self
            .connection
            .prepare("SELECT silence FROM silences ORDER BY ends_at DESC")
            .map_err(&read)?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(&read)?;
        let mut out = Vec::new();
        for row in rows {
            let json = row.map_err(&read)?;
            // A silence this build cannot read silences nothing; say so rather than fail all.
            match serde_json::from_str(&json) {
                Ok(silence) => out.push(silence),
                Err(error) => tracing::warn!(%error, "skipped a stored silence"),
            }
        }
        Ok(out)
    }

    fn save_silence(&mut self, silence: &Silence) -> Result<(), StoreError> {
        let json = encode("silence", silence)?;
        self.connection
            .execute(
                "INSERT INTO silences (id, silence, ends_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET silence = ?2, ends_at = ?3",
                params![silence.id, json, to_millis(silence.ends_at)],
            )
            .map(|_| ())
            .map_err(backend("silence write"))
    }

    fn acknowledgements(&self) -> Result<Vec<Acknowledgement>, StoreError> {
        let read = backend("acknowledgements read");
        let mut statement = self
            .connection
            .prepare("SELECT alert, at, comment FROM acknowledgements ORDER BY at")
            .map_err(&read)?;
        let rows = statement
            .query_map([], |row| {
                Ok(Acknowledgement {
                    alert: row.get(0)?,
                    at: from_millis(row.get(1)?).unwrap_or_default(),
                    comment: row.get(2)?,
                })
            })
            .map_err(&read)?;
        rows.collect::<Result<_, _>>().map_err(&read)
    }

    fn acknowledge(&mut self, ack: &Acknowledgement) -> Result<(), StoreError> {
        self.connection
            .execute(
                "INSERT INTO acknowledgements (alert, at, comment) VALUES (?1, ?2, ?3)
                 ON CONFLICT (alert) DO UPDATE SET at = ?2, comment = ?3",
                params![ack.alert, to_millis(ack.at), ack.comment],
            )
            .map(|_| ())
            .map_err(backend("acknowledgement write"))
    }

    fn transitions(&self) -> Result<Vec<TransitionRow>, StoreError> {
        let read = backend("transitions read");
        let mut statement = self
            .connection
            .prepare("SELECT at, target, channel, text FROM transitions ORDER BY id")
            .map_err(&read)?;
        let rows = statement
            .query_map([], |row| {
                Ok(TransitionRow {
                    at: from_millis(row.get(0)?).unwrap_or_default(),
                    target: row.get(1)?,
                    channel: row.get(2)?,
                    text: row.get(3)?,
                })
            })
            .map_err(&read)?;
        rows.collect::<Result<_, _>>().map_err(&read)
    }

    fn incidents(&self) -> Result<Vec<StoredIncident>, StoreError> {
        let read = backend("incidents read");
        let mut statement = self
            .connection
            .prepare(
                "SELECT target, id, title, service, classification, status, resolved, listed,
                     sources, first_seen, last_updated, resolved_at
                 FROM incidents ORDER BY target, first_seen, id",
            )
            .map_err(&read)?;
        let rows = statement
            .query_map([], |row| {
                let sources: String = row.get(8)?;
                Ok(StoredIncident {
                    target: row.get(0)?,
                    id: row.get(1)?,
                    title: row.get(2)?,
                    service: row.get(3)?,
                    classification: row.get(4)?,
                    status: row.get(5)?,
                    resolved: row.get(6)?,
                    listed: row.get(7)?,
                    sources: serde_json::from_str(&sources).unwrap_or_default(),
                    first_seen: from_millis(row.get(9)?).unwrap_or_default(),
                    last_updated: from_millis(row.get(10)?).unwrap_or_default(),
                    resolved_at: row.get::<_, Option<i64>>(11)?.and_then(from_millis),
                })
            })
            .map_err(&read)?;
        rows.collect::<Result<_, _>>().map_err(&read)
    }
}
