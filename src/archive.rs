//! Record and replay: an opt-in archive of every raw upstream answer, and `statusmon replay`,
//! which runs the channels' own parsers and the resolver over it again and prints the timeline.
//!
//! Recording wraps each channel in a [`RecordingChannel`] whose fetcher keeps every exchange on a
//! [`Tape`]; after each probe the exchanges and the outcome go, as one JSON line, to a writer
//! thread (so a slow disk never holds up a probe). Layout of the folder:
//!
//! - `<channel>/<YYYY-MM-DD>.jsonl` — one [`ProbeRecord`] per probe, in the order they ended;
//! - `bodies/<sha256>` — bodies over [`INLINE_BODY`] bytes, written once however often they
//!   repeat (a Graph tenant's issues answer is the same most minutes).
//!
//! Replaying builds the same channels with tapes in replay mode, feeds each recorded probe's
//! exchanges back in order of time, on a paused tokio clock advanced to each probe's time and
//! with the channels' wall clock ([`statusmon_channels::clock`]) frozen at it, so rate-limit
//! holds, token caches and "quiet for 6 h" judge the archive's time, not today's.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use statusmon_channels::tape::{Body, Exchange, ExchangeOutcome, Tape, TapeMode};
use statusmon_channels::{BoxFuture, Channel, ChannelKind, Observation, ProbeError};

use crate::config::{ChannelSettings, Config};
use crate::engine::{self, Engine};
use crate::status::{self, StatusDocument};
use crate::web::ChangeEvent;

/// Bodies up to this size stay inside the probe's line; larger ones go to `bodies/`.
pub const INLINE_BODY: usize = 2048;

/// The folder of bodies kept apart.
const BODIES: &str = "bodies";

/// What went wrong reading or writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of a probe file is not a probe record.
    #[error("{path}:{line}: not a probe record: {message}")]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// The folder holds no probe at all.
    #[error("{0}: no probe records (expected <channel>/<date>.jsonl files)")]
    Empty(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One probe as the archive keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The channel id.
    pub channel: String,
    /// Its kind.
    pub kind: ChannelKind,
    /// When the probe started.
    pub started_at: DateTime<Utc>,
    /// When it ended (or was abandoned).
    pub finished_at: DateTime<Utc>,
    /// What the probe concluded then.
    pub outcome: RecordedOutcome,
    /// Every exchange it made, bodies possibly kept apart.
    pub exchanges: Vec<Exchange>,
}

/// What a recorded probe concluded, to compare a replay with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RecordedOutcome {
    /// An observation, known by its digest.
    Observed {
        /// The observation's digest.
        digest: String,
    },
    /// A classified error.
    Failed {
        /// The error.
        error: ProbeError,
    },
    /// The schedule gave up on the probe at its deadline.
    Abandoned,
}

impl RecordedOutcome {
    fn of(outcome: &Result<Observation, ProbeError>) -> Self {
        match outcome {
            Ok(observation) => RecordedOutcome::Observed {
                digest: observation.digest.clone(),
            },
            Err(error) => RecordedOutcome::Failed {
                error: error.clone(),
            },
        }
    }

    /// Whether a replayed outcome agrees: the same digest, or the same error class.
    fn agrees_with(&self, outcome: &Result<Observation, ProbeError>) -> bool {
        match (self, outcome) {
            (RecordedOutcome::Observed { digest }, Ok(observation)) => {
                *digest == observation.digest
            }
            (RecordedOutcome::Failed { error }, Err(replayed)) => error.class() == replayed.class(),
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            RecordedOutcome::Observed { digest } => {
                format!("an observation ({})", digest.get(..12).unwrap_or(digest))
            }
            RecordedOutcome::Failed { error } => format!("{}: {error}", error.class()),
            RecordedOutcome::Abandoned => "abandoned at its deadline".to_string(),
        }
    }
}

enum WriterMessage {
    Record(Box<ProbeRecord>),
    Close,
}

/// The recording side: a writer thread and the handles channels send their probes to.
#[derive(Debug)]
pub struct Archive {
    dir: PathBuf,
    sender: mpsc::Sender<WriterMessage>,
    writer: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for WriterMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterMessage")
    }
}

impl Archive {
    /// Opens (creating) the folder and starts the writer thread, which also forgets what is
    /// older than `retention` (see [`prune`]): at start and then hourly. Fails at start-up,
    /// naming the folder, rather than losing every record later.
    pub fn open(dir: &Path, retention: Duration) -> Result<Archive, ArchiveError> {
        std::fs::create_dir_all(dir.join(BODIES)).map_err(io(dir))?;
        let (sender, receiver) = mpsc::channel::<WriterMessage>();
        let root = dir.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                let mut pruned_at: Option<std::time::Instant> = None;
                loop {
                    if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                        match prune(&root, retention, Utc::now()) {
                            Ok(0) => {}
                            Ok(removed) => {
                                tracing::info!(removed, "archive: removed files past retention");
                            }
                            Err(error) => tracing::warn!(%error, "could not prune the archive"),
                        }
                        pruned_at = Some(std::time::Instant::now());
                    }
                    match receiver.recv_timeout(PRUNE_EVERY) {
                        Ok(WriterMessage::Record(record)) => {
                            if let Err(error) = write_record(&root, *record) {
                                tracing::warn!(%error, "could not archive a probe");
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Ok(WriterMessage::Close) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                            break;
                        }
                    }
                }
            })
            .map_err(io(dir))?;
        Ok(Archive {
            dir: dir.to_path_buf(),
            sender,
            writer,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Builds a channel whose every exchange is archived, probe by probe.
    pub fn recording_channel(
        &self,
        config: &crate::config::ChannelConfig,
        client: &reqwest::Client,
    ) -> Result<Arc<dyn Channel>, ProbeError> {
        let tape = Arc::new(Tape::new(TapeMode::Record));
        let inner = engine::build_channel(config, client, Some(Arc::clone(&tape)))?;
        Ok(Arc::new(RecordingChannel {
            inner,
            tape,
            sender: self.sender.clone(),
        }))
    }

    /// Writes what is queued and stops the writer (a graceful shutdown; probes that end later
    /// are not archived).
    pub fn close(self) {
        let _ = self.sender.send(WriterMessage::Close);
        if self.writer.join().is_err() {
            tracing::warn!("the archive writer stopped with a panic");
        }
    }
}

/// A channel that archives each of its probes.
#[derive(Debug)]
pub struct RecordingChannel {
    inner: Arc<dyn Channel>,
    tape: Arc<Tape>,
    sender: mpsc::Sender<WriterMessage>,
}

/// A probe on its way to the archive; dropped unfinished (the schedule's deadline), it is
/// archived as abandoned with the exchanges made so far.
struct PendingRecord<'a> {
    channel: &'a RecordingChannel,
    started_at: DateTime<Utc>,
    outcome: Option<RecordedOutcome>,
}

impl Drop for PendingRecord<'_> {
    fn drop(&mut self) {
        let record = ProbeRecord {
            channel: self.channel.inner.id().to_string(),
            kind: self.channel.inner.kind(),
            started_at: self.started_at,
            finished_at: Utc::now(),
            outcome: self.outcome.take().unwrap_or(RecordedOutcome::Abandoned),
            exchanges: self.channel.tape.take_all(),
        };
        // The writer is gone only after `Archive::close`, when nothing more is kept.
        let _ = self
            .channel
            .sender
            .send(WriterMessage::Record(Box::new(record)));
    }
}

impl Channel for RecordingChannel {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn kind(&self) -> ChannelKind {
        self.inner.kind()
    }

    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>> {
        Box::pin(async move {
            let mut pending = PendingRecord {
                channel: self,
                started_at: Utc::now(),
                outcome: None,
            };
            let outcome = self.inner.probe().await;
            pending.outcome = Some(RecordedOutcome::of(&outcome));
            drop(pending);
            outcome
        })
    }
}

/// Appends one record, moving large bodies to `bodies/`.
fn write_record(root: &Path, mut record: ProbeRecord) -> Result<(), ArchiveError> {
    for exchange in &mut record.exchanges {
        if let ExchangeOutcome::Answer(answer) = &mut exchange.outcome {
            let bytes = answer.body.bytes();
            if bytes.len() > INLINE_BODY {
                let digest = format!("{:x}", Sha256::digest(&bytes));
                let path = root.join(BODIES).join(&digest);
                if path.exists() {
                    // Marked as used now, so pruning keeps it while a kept day refers to it.
                    std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|file| file.set_modified(std::time::SystemTime::now()))
                        .map_err(io(&path))?;
                } else {
                    // Written whole under a temporary name first, so a crash never leaves a
                    // truncated body under its digest.
                    let partial = root.join(BODIES).join(format!("{digest}.partial"));
                    std::fs::write(&partial, &bytes).map_err(io(&partial))?;
                    std::fs::rename(&partial, &path).map_err(io(&path))?;
                }
                answer.body = Body::Sha256(digest);
            }
        }
    }
    let folder = root.join(&record.channel);
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    let path = folder.join(format!("{}.jsonl", record.finished_at.format("%Y-%m-%d")));
    let mut line = serde_json::to_vec(&record).map_err(|e| ArchiveError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    file.write_all(&line).map_err(io(&path))
}

/// How often the writer looks for files past the archive's retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Removes what is older than `retention` at `now`: each channel's day files of days that ended
/// before the cutoff, and the bodies no record has used since the start of the oldest day kept
/// (a body's modification time is when a record last used it). Returns how many files went.
pub fn prune(root: &Path, retention: Duration, now: DateTime<Utc>) -> Result<usize, ArchiveError> {
    let cutoff = chrono::TimeDelta::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let oldest_kept = cutoff.date_naive();
    let kept_since = std::time::SystemTime::from(
        oldest_kept
            .and_hms_opt(0, 0, 0)
            .map_or(cutoff, |start| start.and_utc()),
    );
    let mut removed = 0;
    for entry in std::fs::read_dir(root).map_err(io(root))? {
        let entry = entry.map_err(io(root))?;
        let folder = entry.path();
        if !folder.is_dir() {
            continue;
        }
        let bodies = entry.file_name() == BODIES;
        for file in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let file = file.map_err(io(&folder))?;
            let path = file.path();
            let expired = if bodies {
                file.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified < kept_since)
            } else {
                path.extension().is_some_and(|e| e == "jsonl")
                    && path
                        .file_stem()
                        .and_then(|stem| stem.to_str())
                        .and_then(|stem| chrono::NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok())
                        .is_some_and(|day| day < oldest_kept)
            };
            if expired {
                std::fs::remove_file(&path).map_err(io(&path))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Reads every probe record of an archive, bodies resolved, in order of time.
pub fn read(dir: &Path) -> Result<Vec<ProbeRecord>, ArchiveError> {
    let mut records = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir() && path.file_name().is_some_and(|n| n != BODIES))
        .collect();
    folders.sort();
    for folder in folders {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(io(&folder))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        for path in files {
            let file = std::fs::File::open(&path).map_err(io(&path))?;
            for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(io(&path))?;
                if line.trim().is_empty() {
                    continue;
                }
                let bad = |message: String| ArchiveError::BadRecord {
                    path: path.clone(),
                    line: index + 1,
                    message,
                };
                let mut record: ProbeRecord =
                    serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
                for exchange in &mut record.exchanges {
                    if let ExchangeOutcome::Answer(answer) = &mut exchange.outcome
                        && let Body::Sha256(digest) = &answer.body
                    {
                        answer.body = Body::new(read_body(dir, digest).map_err(bad)?);
                    }
                }
                records.push(record);
            }
        }
    }
    if records.is_empty() {
        return Err(ArchiveError::Empty(dir.to_path_buf()));
    }
    records.sort_by_key(|r| (r.finished_at, r.started_at));
    Ok(records)
}

/// A body kept apart; the digest must be one (64 hex digits), never a path.
fn read_body(dir: &Path, digest: &str) -> Result<Vec<u8>, String> {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{digest:?} is not a SHA-256 digest"));
    }
    let path = dir.join(BODIES).join(digest);
    std::fs::read(&path).map_err(|e| format!("body {}: {e}", path.display()))
}

/// What a replay found.
#[derive(Debug, Default, Serialize)]
pub struct Replay {
    /// Probes replayed.
    pub probes: usize,
    /// The first and last probe's end.
    pub span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The picture once every archived channel had answered once.
    pub first: Option<StatusDocument>,
    /// Every change after that, in order.
    pub changes: Vec<ChangeEvent>,
    /// The picture after the last probe.
    pub last: Option<StatusDocument>,
    /// Probes whose replayed outcome differs from the recorded one (a parser or resolver
    /// changed since, or the archive was edited), as sentences.
    pub differences: Vec<String>,
    /// Archived channels the config does not declare (skipped).
    pub unknown_channels: Vec<String>,
}

impl Replay {
    /// The timeline as `replay` prints it: the first picture, each change with its time, the
    /// last picture, then what differed from the recording.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let stamp = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for id in &self.unknown_channels {
            out.push_str(&format!(
                "note: channel {id} is in the archive but not in the config; skipped\n"
            ));
        }
        match &self.first {
            Some(first) => {
                out.push_str(&format!(
                    "{}  first picture (every archived channel has answered):\n",
                    stamp(first.generated_at)
                ));
                out.push_str(&indent(&first.render_table()));
            }
            None => out.push_str("no picture: some archived channel never answered\n"),
        }
        for change in &self.changes {
            out.push_str(&format!("{}  {}\n", stamp(change.at), change.text));
        }
        if let Some(last) = &self.last
            && !self.changes.is_empty()
        {
            out.push_str(&format!("{}  last picture:\n", stamp(last.generated_at)));
            out.push_str(&indent(&last.render_table()));
        }
        out.push_str(&format!(
            "{} probe(s) replayed; {} change(s); ",
            self.probes,
            self.changes.len()
        ));
        if self.differences.is_empty() {
            out.push_str("every outcome as recorded\n");
        } else {
            out.push_str(&format!(
                "{} outcome(s) differ from the recording:\n",
                self.differences.len()
            ));
            for difference in &self.differences {
                out.push_str(&format!("  {difference}\n"));
            }
        }
        out
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Replays `records` through channels built from `config`, on a paused clock, on a thread of
/// its own (the paused clock needs a current-thread runtime).
pub fn replay(config: Config, records: Vec<ProbeRecord>) -> std::io::Result<Replay> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || runtime.block_on(replay_paused(config, records)))
            .join()
            .map_err(|_| std::io::Error::other("the replay stopped with a panic"))
    })
}

async fn replay_paused(config: Config, records: Vec<ProbeRecord>) -> Replay {
    let archived: BTreeSet<String> = records.iter().map(|r| r.channel.clone()).collect();
    let config = for_replay(config);
    let declared: BTreeSet<String> = config.channels.iter().map(|c| c.id.clone()).collect();
    let mut tapes: BTreeMap<String, Arc<Tape>> = BTreeMap::new();
    let client = reqwest::Client::new();
    let mut engine = Engine::with_builder(Arc::new(config), |channel| {
        if !archived.contains(&channel.id) {
            return Err(ProbeError::Config {
                message: "not in the archive".to_string(),
            });
        }
        let tape = Arc::new(Tape::new(TapeMode::Replay));
        tapes.insert(channel.id.clone(), Arc::clone(&tape));
        engine::build_channel(channel, &client, Some(tape))
    });
    let channels: BTreeMap<String, Arc<dyn Channel>> = engine
        .channels()
        .iter()
        .filter_map(|live| Some((live.config.id.clone(), live.channel.clone()?)))
        .collect();
    let mut replay = Replay {
        unknown_channels: archived.difference(&declared).cloned().collect(),
        ..Replay::default()
    };
    let mut waiting: BTreeSet<String> = channels.keys().cloned().collect();
    let mut clock: Option<DateTime<Utc>> = None;
    let mut shown: Option<StatusDocument> = None;
    let coalesce = chrono::Duration::from_std(engine::RESOLVE_COALESCE).unwrap_or_default();
    let mut last_resolution: Option<DateTime<Utc>> = None;
    let mut due: Option<DateTime<Utc>> = None;
    for record in records {
        let (Some(channel), Some(tape)) =
            (channels.get(&record.channel), tapes.get(&record.channel))
        else {
            continue;
        };
        // Let the channels' own waits (rate-limit holds, token lifetimes) pass as they did.
        if let Some(before) = clock
            && let Ok(gap) = (record.started_at - before).to_std()
        {
            tokio::time::advance(gap).await;
        }
        clock = Some(clock.map_or(record.started_at, |c| c.max(record.started_at)));
        let outcome = match &record.outcome {
            RecordedOutcome::Abandoned => Err(ProbeError::Timeout {
                what: format!("probe of {}", record.channel),
                after: (record.finished_at - record.started_at)
                    .to_std()
                    .unwrap_or(Duration::ZERO),
            }),
            recorded => {
                tape.load(record.exchanges);
                let outcome =
                    statusmon_channels::clock::frozen_at(record.finished_at, channel.probe()).await;
                if !recorded.agrees_with(&outcome) {
                    replay.differences.push(format!(
                        "{} at {}: recorded {}, replayed {}",
                        record.channel,
                        record.finished_at.to_rfc3339(),
                        recorded.describe(),
                        RecordedOutcome::of(&outcome).describe()
                    ));
                }
                outcome
            }
        };
        replay.probes += 1;
        replay.span = Some(match replay.span {
            Some((first, _)) => (first, record.finished_at),
            None => (record.finished_at, record.finished_at),
        });
        // Resolve as the `watch` loop did: answers that came in within RESOLVE_COALESCE of the
        // last resolution wait for the next one together.
        if let Some(at) = due.filter(|due| record.finished_at >= *due) {
            resolve_into(&mut engine, at, &mut shown, &mut replay);
            last_resolution = Some(at);
            due = None;
        }
        engine.record(&record.channel, outcome, record.finished_at);
        waiting.remove(&record.channel);
        if !waiting.is_empty() || due.is_some() {
            continue;
        }
        let at = record.finished_at;
        match last_resolution {
            Some(last) if at < last + coalesce => due = Some(last + coalesce),
            _ => {
                resolve_into(&mut engine, at, &mut shown, &mut replay);
                last_resolution = Some(at);
            }
        }
    }
    if let Some(at) = due {
        resolve_into(&mut engine, at, &mut shown, &mut replay);
    }
    replay.last = shown;
    replay
}

/// Resolves every target at `at` and adds the picture to the replay: the first one whole, later
/// ones as their changes.
fn resolve_into(
    engine: &mut Engine,
    at: DateTime<Utc>,
    shown: &mut Option<StatusDocument>,
    replay: &mut Replay,
) {
    let targets = engine.resolve(at);
    let document = engine.document(targets, at);
    match shown {
        None => replay.first = Some(document.clone()),
        Some(before) => replay.changes.extend(
            status::changes(before, &document)
                .iter()
                .map(|change| ChangeEvent::new(change, at)),
        ),
    }
    *shown = Some(document);
}

/// The config a replay builds its channels from: credentials are never needed (sign-in
/// answers come from the archive, with their tokens redacted) and the local Graph budget must
/// not refuse probes replayed in a moment that were spread over hours.
fn for_replay(mut config: Config) -> Config {
    for channel in &mut config.channels {
        let channel = Arc::make_mut(channel);
        channel.enabled = true;
        match &mut channel.kind {
            ChannelSettings::Graph(graph) => {
                if graph.client_id.is_none() {
                    graph.client_id = Some("replay".to_string());
                }
                if graph.credential.is_err() {
                    graph.credential = Ok(statusmon_channels::graph::Credential::Secret(
                        "replay".to_string().into(),
                    ));
                }
                graph.budget.per_minute = std::num::NonZeroU32::MAX;
                graph.budget.per_hour = std::num::NonZeroU32::MAX;
            }
            ChannelSettings::X(x) if x.bearer_token.is_err() => {
                x.bearer_token = Ok("replay".to_string().into());
            }
            _ => {}
        }
    }
    config
}
