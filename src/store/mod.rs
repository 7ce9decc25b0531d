//! The store: what `statusmon run` keeps on disk so a restart neither forgets an ongoing incident
//! nor announces it again, plus the history a post-incident review reads.
//!
//! [`Store`] is the contract (SQLite today in [`sqlite`], PostgreSQL later); its types carry plain
//! values and unix-millisecond times, nothing backend-specific. [`Recorder`] sits on the `watch`
//! loop's side: it compares each round with what it last wrote and hands the store only what
//! changed, so a loop that resolves every second does not write every second.

pub mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use statusmon_channels::{Observation, ProbeError};

use crate::alerts::AlertEvent;
use crate::alerts::routes::Silence;
use crate::resolver::{ChannelRecord, IncidentResolution, TargetMemory};
use crate::status::{self, Change, StatusDocument};

pub use sqlite::SqliteStore;

/// Why the store could not do what was asked. Backend errors are boxed so the trait does not
/// name a driver.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or read at start-up (missing directory, permissions, not
    /// a database, corrupt).
    #[error("cannot open the store {}: {source}", path.display())]
    Open {
        /// The configured path.
        path: PathBuf,
        /// What the database said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database was written by a newer statusmon, whose schema this one does not know.
    #[error(
        "the store {} has schema version {found}, but this statusmon knows versions up to \
         {known}: run a newer statusmon, or point [store] path at another file",
        path.display()
    )]
    TooNew {
        /// The configured path.
        path: PathBuf,
        /// The database's `user_version`.
        found: i64,
        /// The newest version this build can migrate to.
        known: i64,
    },
    /// A schema migration failed (it was rolled back).
    #[error("cannot migrate the store {} to schema version {version}: {source}", path.display())]
    Migrate {
        /// The configured path.
        path: PathBuf,
        /// The version being applied.
        version: i64,
        /// What the database said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A read or write failed at run time.
    #[error("store {what} failed: {source}")]
    Backend {
        /// What was being done.
        what: &'static str,
        /// What the database said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A value could not be turned into JSON.
    #[error("cannot encode {what} for the store: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The store has been closed (or its writer thread ended), so nothing more can be done.
    #[error("the store is closed")]
    Closed,
    /// A write did not finish in time; it may still be committed later.
    #[error("the store did not answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

/// One channel's last-known state: what restores a [`ChannelRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChannel {
    /// Channel id.
    pub id: String,
    /// The last successful observation (its `observed_at` is the last success).
    pub observation: Option<Observation>,
    /// When the current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
    /// The latest probe's error, if it failed.
    pub error: Option<ProbeError>,
}

impl StoredChannel {
    /// The storable state of a channel record.
    pub fn from_record(record: &ChannelRecord) -> Self {
        StoredChannel {
            id: record.id.clone(),
            observation: record.observation.as_deref().cloned(),
            failing_since: record.failing_since,
            error: record.error.clone(),
        }
    }
}

/// Everything a restart restores.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Per channel, its last-known state.
    pub channels: Vec<StoredChannel>,
    /// Per target id, the resolver's memory (hysteresis, last-known verdicts).
    pub memory: BTreeMap<String, TargetMemory>,
    /// The last published document: the baseline the first round after a restart is diffed
    /// against.
    pub document: Option<StatusDocument>,
    /// Rows that could not be read back (e.g. written by an older format) and were skipped.
    pub skipped: Vec<String>,
}

impl Snapshot {
    /// Whether there is nothing to restore (a new database).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.memory.is_empty() && self.document.is_none()
    }
}

/// An incident as the store keeps it, upserted whenever the published picture of it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentUpdate {
    /// The target it was resolved for.
    pub target: String,
    /// The incident, merged across the target's channels.
    pub incident: IncidentResolution,
    /// Whether the latest document still lists it (an incident drops out of the document when
    /// its channels stop reporting it or stop being fresh).
    pub listed: bool,
}

/// What one resolved round changed: written in one transaction.
#[derive(Debug, Clone)]
pub struct Round {
    /// When the round was resolved.
    pub at: DateTime<Utc>,
    /// Channels whose state changed since the last write.
    pub channels: Vec<StoredChannel>,
    /// Targets whose resolver memory changed.
    pub memory: Vec<(String, TargetMemory)>,
    /// The document, when it says something new.
    pub document: Option<Arc<StatusDocument>>,
    /// Incidents that appeared, changed or dropped out.
    pub incidents: Vec<IncidentUpdate>,
    /// The resolution transitions announced this round (with when each was seen).
    pub changes: Vec<(DateTime<Utc>, Change)>,
    /// The alert events of this round (and of earlier rounds whose write failed), for the
    /// outbox: written with the state change that caused them, or not at all.
    pub alerts: Vec<AlertEvent>,
}

impl Round {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
            && self.memory.is_empty()
            && self.document.is_none()
            && self.incidents.is_empty()
            && self.changes.is_empty()
            && self.alerts.is_empty()
    }
}

/// One row of observation history: a probe outcome that differed (digest or error class) from
/// the channel's previous row.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// Channel id.
    pub channel: String,
    /// When it was observed (or, for a failure, when the round recorded it).
    pub at: DateTime<Utc>,
    /// The payload digest of a successful probe.
    pub digest: Option<String>,
    /// The error class of a failed probe.
    pub error_class: Option<String>,
    /// The error message of a failed probe.
    pub error_message: Option<String>,
    /// The observation, as JSON, of a successful probe.
    pub observation: Option<String>,
}

/// One announced resolution change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRow {
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// The target it concerns, if any.
    pub target: Option<String>,
    /// The channel it concerns, if any.
    pub channel: Option<String>,
    /// The sentence `run` printed.
    pub text: String,
}

/// One incident row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIncident {
    /// Target id.
    pub target: String,
    /// Incident id (Microsoft's, or our stable key).
    pub id: String,
    /// Title.
    pub title: String,
    /// Affected service.
    pub service: Option<String>,
    /// Classification (`incident`, `advisory`, `unknown`).
    pub classification: String,
    /// The upstream status word.
    pub status: String,
    /// Whether its source says it is over.
    pub resolved: bool,
    /// Whether the latest document lists it.
    pub listed: bool,
    /// The channels that reported it, in priority order.
    pub sources: Vec<String>,
    /// When we first saw it.
    pub first_seen: DateTime<Utc>,
    /// When its row last changed.
    pub last_updated: DateTime<Utc>,
    /// When we first saw it reported resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// An alert event in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Its place in the outbox: events are delivered in this order.
    pub id: i64,
    /// The event.
    pub event: AlertEvent,
    /// When the round that caused it was written.
    pub created_at: DateTime<Utc>,
    /// When every route it matched was done with it; `None` while it waits.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The routes already done with it and how (delivered, silenced, held by maintenance), so a
    /// restart sends it only where it has not gone.
    pub done_routes: Vec<(String, DeliveryOutcome)>,
}

/// What became of an event on one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// A sink accepted it.
    Delivered,
    /// Every sink failed this round; the route tries again.
    Failed,
    /// A silence held it back.
    Silenced,
    /// A maintenance window held it back.
    Maintenance,
    /// An acknowledgement held a reminder back.
    Acknowledged,
}

impl DeliveryOutcome {
    /// Whether the route is done with the event.
    pub fn is_final(self) -> bool {
        self != DeliveryOutcome::Failed
    }

    /// The name receipts use.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Silenced => "silenced",
            DeliveryOutcome::Maintenance => "maintenance",
            DeliveryOutcome::Acknowledged => "acknowledged",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            DeliveryOutcome::Delivered,
            DeliveryOutcome::Failed,
            DeliveryOutcome::Silenced,
            DeliveryOutcome::Maintenance,
            DeliveryOutcome::Acknowledged,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// A delivery receipt: what one route did with one event, shown in the API and the dashboard.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Receipt {
    /// The outbox row.
    pub outbox_id: i64,
    /// The route.
    pub route: String,
    /// The sink that delivered it, or the last one tried; `None` when it was held back.
    pub sink: Option<String>,
    /// What became of it.
    pub outcome: DeliveryOutcome,
    /// Attempts made this round, over every sink tried.
    pub attempts: u32,
    /// The sink's answer, the error, or what held it back (never a secret).
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A receipt with the event it is about, for people.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReceiptRow {
    /// The receipt.
    #[serde(flatten)]
    pub receipt: Receipt,
    /// The alert.
    pub alert: String,
    /// The event's idempotency key.
    pub idempotency_key: String,
    /// The event's one line.
    pub summary: String,
}

/// A write of the delivery worker.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryWrite {
    /// A route's receipt.
    Receipt(Receipt),
    /// Every route is done with an outbox row.
    Done {
        /// The row.
        outbox_id: i64,
        /// When.
        at: DateTime<Utc>,
    },
}

/// An acknowledgement: someone is on it, so reminders stop until the alert resolves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Acknowledgement {
    /// The alert key.
    pub alert: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who and why (free text).
    pub comment: String,
}

/// The persistence the daemon needs, independent of the database behind it. Every method is
/// async so a network database fits; implementations must write a [`Round`] atomically.
pub trait Store: Send + Sync + fmt::Debug {
    /// Where the data lives, for messages ("statusmon.db").
    fn location(&self) -> String;
    /// Reads what a restart restores.
    fn load(&self) -> BoxFuture<'_, Result<Snapshot, StoreError>>;
    /// Writes one round, all or nothing.
    fn record(&self, round: Round) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Observation history, oldest first; of one channel or of all.
    fn history(
        &self,
        channel: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<HistoryRow>, StoreError>>;
    /// Announced transitions, oldest first.
    fn transitions(&self) -> BoxFuture<'_, Result<Vec<TransitionRow>, StoreError>>;
    /// Every kept incident, by target then first seen.
    fn incidents(&self) -> BoxFuture<'_, Result<Vec<StoredIncident>, StoreError>>;
    /// The alert events not yet delivered, oldest first.
    fn outbox(&self) -> BoxFuture<'_, Result<Vec<OutboxRow>, StoreError>> {
        self.outbox_after(0)
    }
    /// The alert events not yet delivered whose row comes after `after`, oldest first: what the
    /// delivery worker has not seen yet (the rows it is still sending are not read again).
    fn outbox_after(&self, after: i64) -> BoxFuture<'_, Result<Vec<OutboxRow>, StoreError>>;
    /// Every kept alert event, delivered or not, oldest first: what the delivery worker replays
    /// at start-up to know which alerts are open.
    fn alert_log(&self) -> BoxFuture<'_, Result<Vec<OutboxRow>, StoreError>>;
    /// Adds events outside a round (reminders); an idempotency key already there is skipped.
    fn enqueue(
        &self,
        events: Vec<AlertEvent>,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Writes receipts and marks rows done, in one transaction.
    fn write_deliveries(&self, writes: Vec<DeliveryWrite>)
    -> BoxFuture<'_, Result<(), StoreError>>;
    /// The newest receipts, newest first.
    fn receipts(&self, limit: u32) -> BoxFuture<'_, Result<Vec<ReceiptRow>, StoreError>>;
    /// Every kept silence, newest first.
    fn silences(&self) -> BoxFuture<'_, Result<Vec<Silence>, StoreError>>;
    /// Saves a silence (a new one, or one expired early under its id).
    fn save_silence(&self, silence: Silence) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Every kept acknowledgement.
    fn acknowledgements(&self) -> BoxFuture<'_, Result<Vec<Acknowledgement>, StoreError>>;
    /// Saves an acknowledgement, replacing the alert's earlier one.
    fn acknowledge(&self, ack: Acknowledgement) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Deletes history, transitions, no-longer-listed incidents, receipts, ended silences and
    /// delivered alert events older than the retention before `now` (each alert's latest event
    /// stays, so an open alert is still known); returns how many rows went. Channel state,
    /// memory and undelivered alerts are never pruned (an undelivered alert must not age out).
    fn prune(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Finishes every write already asked for and closes the database.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// How long the loop waits for one round to be written before it carries on without it: a
/// stuck disk must not stop probing.
pub const WRITE_LIMIT: Duration = Duration::from_secs(10);

/// How often the stored document is rewritten when no round announced a change.
pub const BASELINE_REFRESH: Duration = Duration::from_secs(300);

/// At most this many unwritten transitions are kept for the next attempt while writes fail.
const PENDING_LIMIT: usize = 10_000;

/// The `watch` loop's side of the store: remembers what it last wrote and sends only the
/// difference, keeps transitions of failed writes for the next round, and reports a failing
/// store once (and its recovery), never stopping the loop.
#[derive(Debug)]
pub struct Recorder {
    store: Arc<dyn Store>,
    channels: BTreeMap<String, ChannelMark>,
    /// A hash of each target's memory as written: enough to tell it moved, without a second
    /// copy of every target's memory.
    memory: HashMap<String, u64>,
    /// The document of the last round that brought the store up to date: a target still the same
    /// resolution (`Arc`) since was not resolved again, so its memory cannot have moved.
    current: Option<Arc<StatusDocument>>,
    document: Option<Arc<StatusDocument>>,
    pending: Vec<(DateTime<Utc>, Change)>,
    /// Alert events of rounds whose write failed, for the next one. Never trimmed: an alert is
    /// not dropped to save memory (a few hundred bytes each, one per transition).
    pending_alerts: Vec<AlertEvent>,
    failing: bool,
    /// Told when a write put alert events into the outbox (the delivery worker waits on it).
    alerts_written: Option<Arc<tokio::sync::Notify>>,
}

fn memory_hash(memory: &TargetMemory) -> u64 {
    let mut hasher = DefaultHasher::new();
    memory.hash(&mut hasher);
    hasher.finish()
}

impl Recorder {
    /// A recorder that starts from what was restored, so an unchanged restart writes nothing.
    pub fn new(store: Arc<dyn Store>, restored: &Snapshot) -> Self {
        Recorder {
            store,
            channels: restored
                .channels
                .iter()
                .map(|c| (c.id.clone(), ChannelMark::of_stored(c)))
                .collect(),
            memory: restored
                .memory
                .iter()
                .map(|(id, memory)| (id.clone(), memory_hash(memory)))
                .collect(),
            current: None,
            document: restored.document.clone().map(Arc::new),
            pending: Vec::new(),
            pending_alerts: Vec::new(),
            failing: false,
            alerts_written: None,
        }
    }

    /// Signals `notify` after every write that put alert events into the outbox.
    pub fn signal_alerts(mut self, notify: Arc<tokio::sync::Notify>) -> Self {
        self.alerts_written = Some(notify);
        self
    }

    /// The store it writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Builds the round that brings the store up to date with this resolution, with its alert
    /// events for the outbox.
    pub fn round(
        &self,
        records: &BTreeMap<String, ChannelRecord>,
        memory: &BTreeMap<String, TargetMemory>,
        document: &Arc<StatusDocument>,
        changes: &[Change],
        alerts: &[AlertEvent],
    ) -> Round {
        let channels = records
            .values()
            .filter(|record| {
                !self
                    .channels
                    .get(&record.id)
                    .is_some_and(|mark| mark.matches(record))
            })
            .map(StoredChannel::from_record)
            .collect();
        let memory = document
            .targets
            .iter()
            .enumerate()
            .filter(|(i, target)| {
                let before = self.current.as_ref().and_then(|c| c.targets.get(*i));
                !before.is_some_and(|before| Arc::ptr_eq(before, target))
            })
            .filter_map(|(_, target)| {
                let m = memory.get(&target.id)?;
                let hash = memory_hash(m);
                (self.memory.get(&target.id) != Some(&hash)).then(|| (target.id.clone(), m.clone()))
            })
            .collect();
        // The stored document is the baseline a restart diffs against, so it must be current in
        // everything `status::changes` reports: it is rewritten with every round that has
        // changes, and otherwise only every BASELINE_REFRESH (its ages and `as_of` stamps move
        // every probe; writing ten megabytes of JSON for that was most of a large daemon's work).
        // A round with alert events has changes too (every transition an alert tells is one
        // `status::changes` says), so the baseline a restart diffs against moves with the alerts
        // it caused, and the restart does not queue them twice (the kill -9 test checks).
        let new_document = match &self.document {
            Some(written)
                if changes.is_empty()
                    && self.pending.is_empty()
                    && (document.generated_at - written.generated_at)
                        .to_std()
                        .is_ok_and(|age| age < BASELINE_REFRESH) =>
            {
                None
            }
            Some(written) if written.same_picture(document) => None,
            _ => Some(Arc::clone(document)),
        };
        let incidents = match &new_document {
            Some(new) => incident_updates(self.document.as_deref(), new),
            None => Vec::new(),
        };
        let mut all_changes = self.pending.clone();
        all_changes.extend(
            changes
                .iter()
                .map(|change| (document.generated_at, change.clone())),
        );
        let mut all_alerts = self.pending_alerts.clone();
        all_alerts.extend_from_slice(alerts);
        Round {
            at: document.generated_at,
            channels,
            memory,
            document: new_document,
            incidents,
            changes: all_changes,
            alerts: all_alerts,
        }
    }

    /// Writes what changed this round and its alert events (into the outbox, in the same
    /// transaction), waiting (at most [`WRITE_LIMIT`]) for the commit, so a change is in the
    /// store before it is announced. Returns a line worth printing when the store starts or
    /// stops failing.
    pub async fn record(
        &mut self,
        records: &BTreeMap<String, ChannelRecord>,
        memory: &BTreeMap<String, TargetMemory>,
        document: &Arc<StatusDocument>,
        changes: &[Change],
        alerts: &[AlertEvent],
    ) -> Option<String> {
        let round = self.round(records, memory, document, changes, alerts);
        if round.is_empty() {
            self.current = Some(Arc::clone(document));
            return None;
        }
        let written = round.clone();
        let outcome = match tokio::time::timeout(WRITE_LIMIT, self.store.record(round)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Timeout(WRITE_LIMIT)),
        };
        match outcome {
            Ok(()) => {
                for channel in &written.channels {
                    self.channels
                        .insert(channel.id.clone(), ChannelMark::of_stored(channel));
                }
                self.memory.extend(
                    written
                        .memory
                        .iter()
                        .map(|(id, memory)| (id.clone(), memory_hash(memory))),
                );
                self.current = Some(Arc::clone(document));
                if let Some(document) = written.document {
                    self.document = Some(document);
                }
                self.pending.clear();
                self.pending_alerts.clear();
                if let Some(notify) = &self.alerts_written
                    && !written.alerts.is_empty()
                {
                    notify.notify_one();
                }
                if std::mem::take(&mut self.failing) {
                    tracing::info!(store = %self.store.location(), "store writes work again");
                    return Some(format!("store {}: writing again", self.store.location()));
                }
                None
            }
            Err(error) => {
                tracing::warn!(store = %self.store.location(), %error, "store write failed");
                self.pending = written.changes;
                self.pending_alerts = written.alerts;
                let excess = self.pending.len().saturating_sub(PENDING_LIMIT);
                self.pending.drain(..excess);
                if self.failing {
                    return None;
                }
                self.failing = true;
                Some(format!(
                    "store {}: cannot write ({error}); probing goes on, the next round retries",
                    self.store.location()
                ))
            }
        }
    }

    /// Waits for every write to be committed and closes the store.
    pub async fn close(self) {
        if let Err(error) = self.store.close().await {
            tracing::warn!(store = %self.store.location(), %error, "closing the store failed");
        }
    }
}

/// Whether a record still matches what was written (compared without serializing: the last
/// success time stands for the observation, since a new observation always has a new time).
/// What the recorder remembers of a channel it wrote: enough to tell whether its record moved
/// since, without a second copy of every observation (at a thousand tenants those copies were
/// megabytes).
#[derive(Debug, Clone, PartialEq)]
struct ChannelMark {
    last_success: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    error: Option<ProbeError>,
}

impl ChannelMark {
    fn of_stored(channel: &StoredChannel) -> Self {
        ChannelMark {
            last_success: channel.observation.as_ref().map(|o| o.observed_at),
            failing_since: channel.failing_since,
            error: channel.error.clone(),
        }
    }

    /// Whether `record` is still what was written (asked for every channel every round, so it
    /// compares in place rather than building a mark).
    fn matches(&self, record: &ChannelRecord) -> bool {
        self.last_success == record.last_success()
            && self.failing_since == record.failing_since
            && self.error == record.error
    }
}

/// The incidents that appeared, changed or dropped out between two documents.
fn incident_updates(
    before: Option<&StatusDocument>,
    after: &StatusDocument,
) -> Vec<IncidentUpdate> {
    let mut updates = Vec::new();
    for (i, target) in after.targets.iter().enumerate() {
        let old = before.and_then(|d| status::same_or_find(&d.targets, i, |t| t.id == target.id));
        if old.is_some_and(|old| Arc::ptr_eq(old, target)) {
            continue;
        }
        for incident in &target.incidents {
            let previous = old.and_then(|t| t.incidents.iter().find(|i| i.id == incident.id));
            if previous != Some(incident) {
                updates.push(IncidentUpdate {
                    target: target.id.clone(),
                    incident: incident.clone(),
                    listed: true,
                });
            }
        }
        for gone in old
            .iter()
            .flat_map(|t| &t.incidents)
            .filter(|i| !target.incidents.iter().any(|n| n.id == i.id))
        {
            updates.push(IncidentUpdate {
                target: target.id.clone(),
                incident: gone.clone(),
                listed: false,
            });
        }
    }
    updates
}

/// Counts the ongoing (listed, not resolved) incidents of a document, for the restore line.
pub fn ongoing_incidents(document: &StatusDocument) -> usize {
    document
        .targets
        .iter()
        .flat_map(|t| &t.incidents)
        .filter(|i| !i.resolved)
        .count()
}

/// Unix milliseconds: how times are stored (portable to any SQL database).
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Back from unix milliseconds; out-of-range values (a damaged row) become `None`.
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}
