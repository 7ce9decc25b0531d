//! The resolver: design §3 as one pure function.
//!
//! Input: the targets' channel lists, what each channel last said and how it is doing, the
//! previous resolution's memory, the policy and the clock. Output: one verdict per service per
//! target that says what it is, where it came from, how fresh it is and how sure we are, and the
//! memory for next time. No I/O, no clock reads, no randomness: everything is an argument, so
//! every rule is tested directly and by property.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use statusmon_channels::{
    ChannelKind, ErrorClass, Health, IncidentClassification, Observation, ProbeError, SharedText,
    SourceAuthority, status_site::ADMIN_CENTER,
};

/// How a channel is doing, separate from what it says about services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    /// Answered with a known shape within its max age.
    Fresh,
    /// Its last good answer is older than its max age (or it never answered yet).
    Stale,
    /// Its latest probe failed.
    Failing,
    /// Not configured to run (switched off, no credentials, no credits).
    Disabled,
}

impl ChannelState {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Fresh => "fresh",
            ChannelState::Stale => "stale",
            ChannelState::Failing => "failing",
            ChannelState::Disabled => "disabled",
        }
    }
}

/// Everything the resolver needs to know about one channel.
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    /// Configured id.
    pub id: String,
    /// Kind, for trust rules.
    pub kind: ChannelKind,
    /// How old the last good answer may be and still count (design: 3 × interval by default).
    pub max_age: Duration,
    /// Why the channel does not run, if it does not.
    pub disabled: Option<String>,
    /// The last successful observation (its `observed_at` is the channel's last success).
    pub observation: Option<Arc<Observation>>,
    /// The latest probe's error; `None` when the latest probe succeeded.
    pub error: Option<ProbeError>,
    /// When the current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
    /// How many probe outcomes [`ChannelRecord::record`] has taken: a cheap token of change, so
    /// what was made from the record (a resolution, a report) can be kept while it stands.
    pub recorded: u64,
}

impl ChannelRecord {
    /// A channel that has not been probed yet.
    pub fn new(id: impl Into<String>, kind: ChannelKind, max_age: Duration) -> Self {
        ChannelRecord {
            id: id.into(),
            kind,
            max_age,
            disabled: None,
            observation: None,
            error: None,
            failing_since: None,
            recorded: 0,
        }
    }

    /// Records a probe's outcome.
    pub fn record(&mut self, outcome: Result<Observation, ProbeError>, at: DateTime<Utc>) {
        self.recorded += 1;
        match outcome {
            Ok(observation) => {
                self.observation = Some(Arc::new(observation));
                self.error = None;
                self.failing_since = None;
            }
            Err(error) => {
                self.error = Some(error);
                self.failing_since.get_or_insert(at);
            }
        }
    }

    /// The state at `now`: disabled (by config, or because a paid API has no credits left),
    /// else failing if the latest probe failed, else stale if the last good answer is older
    /// than max age (or there is none), else fresh.
    pub fn state(&self, now: DateTime<Utc>) -> ChannelState {
        if self.disabled_reason().is_some() {
            return ChannelState::Disabled;
        }
        if self.error.is_some() {
            return ChannelState::Failing;
        }
        match self.last_success() {
            Some(at) if age(at, now) <= self.max_age => ChannelState::Fresh,
            _ => ChannelState::Stale,
        }
    }

    /// Why the channel does not run: the config's reason, or the upstream's "no credits" (X's
    /// 402 CreditsDepleted and monthly usage cap), which only a person can fix.
    pub fn disabled_reason(&self) -> Option<&str> {
        self.disabled.as_deref().or(match &self.error {
            Some(ProbeError::Credits { message }) => Some(message.as_str()),
            _ => None,
        })
    }

    /// When the channel last answered well.
    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.observation.as_ref().map(|o| o.observed_at)
    }

    /// The error to show: the latest probe's, else the first fault of a partial answer.
    pub fn shown_error(&self) -> Option<&ProbeError> {
        self.error.as_ref().or_else(|| {
            self.observation
                .as_ref()
                .and_then(|o| o.faults.first())
                .map(|f| &f.error)
        })
    }
}

fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - at).to_std().unwrap_or(Duration::ZERO)
}

/// The hysteresis policy (design §3 rule 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Consecutive worse observations before a verdict gets worse.
    pub fail_threshold: u32,
    /// Consecutive better observations before a verdict gets better.
    pub recover_threshold: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fail_threshold: 1,
            recover_threshold: 2,
        }
    }
}

/// A target as configured: its channels in priority order, first = primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Configured id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Channel ids, primary first.
    pub channels: Vec<String>,
}

/// How sure we are of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// From social posts or a stale last-known value.
    Low,
    /// From an official secondary channel.
    Medium,
    /// From the target's primary channel.
    High,
}

/// How much of a target we can still see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// The primary channel is fresh.
    Full,
    /// Only lower channels are fresh.
    Degraded,
    /// No channel is fresh.
    Blind,
}

/// A verdict we held before, shown while we cannot see.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
pub struct LastKnown {
    /// The verdict then.
    pub verdict: Health,
    /// Which channel gave it.
    pub source: Option<String>,
    /// When it was last true according to that channel.
    pub as_of: Option<DateTime<Utc>>,
}

/// What one channel says about one service, for the evidence list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The channel.
    pub channel: String,
    /// The channel's state.
    pub state: ChannelState,
    /// What it last said (even when no longer fresh).
    pub health: Health,
    /// Its own status word.
    pub status_text: String,
    /// As of when.
    pub as_of: Option<DateTime<Utc>>,
}

/// The resolution of one service in one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceResolution {
    /// Service id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The verdict.
    pub verdict: Health,
    /// The channel that decided it; `None` when nothing could.
    pub source: Option<String>,
    /// How sure we are.
    pub confidence: Confidence,
    /// When the deciding statement was last true.
    pub as_of: Option<DateTime<Utc>>,
    /// Incident ids that concern this service.
    pub incidents: Vec<String>,
    /// The deciding channel's own status word.
    pub status_text: Option<String>,
    /// The deciding channel's message, as plain text.
    pub message: Option<String>,
    /// The last known verdict, while the current one is unknown.
    pub last_known: Option<LastKnown>,
    /// Visible notes: unconfirmed reports from lower channels, held changes.
    pub annotations: Vec<String>,
    /// What every channel of the target says about this service.
    pub evidence: Vec<Evidence>,
}

/// An incident, merged across channels by its Microsoft id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentResolution {
    /// Microsoft's id, or a stable key of ours when the source gave none.
    pub id: String,
    /// Title, from the highest-priority channel that reports it.
    pub title: SharedText,
    /// Affected service.
    pub service: Option<String>,
    /// Microsoft's classification.
    pub classification: IncidentClassification,
    /// Status word, from the highest-priority channel that reports it.
    pub status: String,
    /// Whether that channel says it is over.
    pub resolved: bool,
    /// Earliest start any channel gave.
    pub started_at: Option<DateTime<Utc>>,
    /// Latest update any channel gave.
    pub updated_at: Option<DateTime<Utc>>,
    /// Every channel that reports it, in priority order.
    pub sources: Vec<String>,
    /// Latest text, as plain text.
    pub summary: Option<SharedText>,
    /// What each reporting channel itself last said about it (the fields above keep only the
    /// winner's words), so a timeline can show every channel's post.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<IncidentUpdate>,
}

/// One channel's own latest word on an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    /// The channel that said it.
    pub channel: String,
    /// When it says it was last updated, if it says.
    pub at: Option<DateTime<Utc>>,
    /// Its own status word.
    pub status: String,
    /// Its latest text, as plain text.
    pub text: Option<SharedText>,
}

/// The Microsoft 365 admin center as seen from this target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminPlane {
    /// Its verdict.
    pub verdict: Health,
    /// The deciding channel.
    pub source: Option<String>,
    /// While the primary channel is down: whose side the outage is likely on, judged from the
    /// admin center's own status (design §3 rule 6).
    pub explanation: Option<String>,
}

/// The primary channel's own health (design §3 rule 6): an event distinct from any service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrimaryReport {
    /// The primary channel.
    pub channel: String,
    /// Its state.
    pub state: ChannelState,
    /// Since when it has been in trouble, if it is.
    pub since: Option<DateTime<Utc>>,
    /// Its error class, if failing.
    pub error_class: Option<ErrorClass>,
    /// One sentence for people: what is wrong and whose side it is likely on.
    pub explanation: Option<String>,
}

/// The resolution of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResolution {
    /// Target id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The most alarming service verdict (an incident outranks unknown; unknown outranks milder),
    /// and never better than unknown while the primary channel is not fresh.
    pub verdict: Health,
    /// How much we can see.
    pub visibility: Visibility,
    /// The channel the picture now rests on.
    pub source: Option<String>,
    /// How sure we are of the picture.
    pub confidence: Confidence,
    /// Per-service verdicts.
    pub services: Vec<ServiceResolution>,
    /// Incidents reported by fresh channels.
    pub incidents: Vec<IncidentResolution>,
    /// The admin center.
    pub admin_plane: AdminPlane,
    /// The primary channel's own state.
    pub primary: PrimaryReport,
    /// The target's channels in priority order, primary first, so a view can list them.
    #[serde(default)]
    pub channels: Vec<String>,
}

/// What the resolver remembers between rounds, per target: the shown verdicts and their pending
/// changes (hysteresis) and the last known verdicts (for blind periods).
#[derive(Debug, Clone, Default, PartialEq, Hash, Serialize, Deserialize)]
pub struct TargetMemory {
    /// Per service id.
    pub services: BTreeMap<String, ServiceMemory>,
}

/// One service's memory.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
pub struct ServiceMemory {
    /// Display name, so a service that vanished from every channel is still shown by name.
    pub name: String,
    /// The verdict shown last round.
    pub shown: Health,
    /// The last known (non-unknown) verdict.
    pub last_known: Option<LastKnown>,
    /// A change waiting for enough consecutive observations.
    pub pending: Option<Pending>,
}

/// A verdict change waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
pub struct Pending {
    /// The candidate verdict.
    pub verdict: Health,
    /// How many consecutive observations backed a change in this direction.
    pub count: u32,
    /// The evidence time of the last counted observation, so one observation counts once however
    /// often we resolve.
    pub evidence_at: Option<DateTime<Utc>>,
}

/// A statement that could decide a service.
struct Candidate<'a> {
    channel: &'a ChannelRecord,
    position: usize,
    statement: &'a statusmon_channels::ServiceObservation,
    observed_at: DateTime<Utc>,
}

/// Resolves one target. Pure: same arguments, same answer.
pub fn resolve_target(
    spec: &TargetSpec,
    channels: &BTreeMap<String, ChannelRecord>,
    memory: &TargetMemory,
    policy: &Policy,
    now: DateTime<Utc>,
) -> (TargetResolution, TargetMemory) {
    let records: Vec<(usize, &ChannelRecord, ChannelState)> = spec
        .channels
        .iter()
        .enumerate()
        .filter_map(|(i, id)| channels.get(id).map(|r| (i, r, r.state(now))))
        .collect();
    let fresh: Vec<(usize, &ChannelRecord)> = records
        .iter()
        .filter(|(_, _, s)| *s == ChannelState::Fresh)
        .map(|(i, r, _)| (*i, *r))
        .collect();
    let primary_fresh = fresh.first().is_some_and(|(i, _)| *i == 0);
    let visibility = match (primary_fresh, fresh.is_empty()) {
        (true, _) => Visibility::Full,
        (false, false) => Visibility::Degraded,
        (false, true) => Visibility::Blind,
    };

    // Every service any channel of the target mentions (even stale ones, so they stay listed),
    // then those only memory still knows; in first-mention order.
    // While an official primary is fresh, social channels only annotate (rule 9), so services
    // that only they mention get no line of their own.
    let is_social = |channel: &str| {
        channels
            .get(channel)
            .is_some_and(|r| r.kind.authority() == SourceAuthority::Social)
    };
    let official_primary_fresh = official_primary_fresh(&fresh);
    let mut service_ids: Vec<(String, String)> = Vec::new();
    for (_, record, _) in &records {
        if official_primary_fresh && is_social(&record.id) {
            continue;
        }
        if let Some(observation) = &record.observation {
            for s in &observation.services {
                if !service_ids.iter().any(|(id, _)| *id == s.id) {
                    service_ids.push((s.id.clone(), s.name.clone()));
                }
            }
        }
    }
    for (id, m) in &memory.services {
        let known_from_social = m
            .last_known
            .as_ref()
            .and_then(|k| k.source.as_deref())
            .is_some_and(is_social);
        if official_primary_fresh && known_from_social {
            continue;
        }
        if !service_ids.iter().any(|(known, _)| known == id) {
            service_ids.push((id.clone(), m.name.clone()));
        }
    }

    let incidents = merge_incidents(&fresh);
    let mut next_memory = TargetMemory::default();
    let mut services = Vec::with_capacity(service_ids.len());
    for (id, name) in service_ids {
        let (resolution, service_memory) = resolve_service(
            &id,
            &name,
            &records,
            &fresh,
            memory.services.get(&id),
            &incidents,
            policy,
        );
        next_memory.services.insert(id, service_memory);
        services.push(resolution);
    }

    // Without the primary, whatever only it covers is unseen: the target can be no better than
    // unknown (a fallback's incident still outranks that), however green the rest looks.
    let floor = match visibility {
        Visibility::Full => Health::Operational,
        Visibility::Degraded | Visibility::Blind => Health::Unknown,
    };
    let verdict = if services.is_empty() {
        Health::Unknown
    } else {
        services
            .iter()
            .map(|s| s.verdict)
            .chain([floor])
            .max_by_key(|h| h.alarm_rank())
            .unwrap_or(Health::Unknown)
    };
    let top = fresh.first().map(|(i, r)| (*i, *r));
    let source = top.map(|(_, r)| r.id.clone());
    let confidence = match top {
        Some((position, record)) => confidence_of(position, record.kind),
        None => Confidence::Low,
    };
    let mut admin_plane = services
        .iter()
        .find(|s| s.id == ADMIN_CENTER)
        .map(|s| AdminPlane {
            verdict: s.verdict,
            source: s.source.clone(),
            explanation: None,
        })
        .unwrap_or(AdminPlane {
            verdict: Health::Unknown,
            source: None,
            explanation: None,
        });
    let (primary, side) = primary_report(spec, channels, &admin_plane, now);
    admin_plane.explanation = side;
    (
        TargetResolution {
            id: spec.id.clone(),
            name: spec.name.clone(),
            verdict,
            visibility,
            source,
            confidence,
            services,
            incidents,
            admin_plane,
            primary,
            channels: spec.channels.clone(),
        },
        next_memory,
    )
}

fn confidence_of(position: usize, kind: ChannelKind) -> Confidence {
    match (position, kind.authority()) {
        (_, SourceAuthority::Social) => Confidence::Low,
        (0, SourceAuthority::Official) => Confidence::High,
        (_, SourceAuthority::Official) => Confidence::Medium,
    }
}

/// Whether the target's primary channel is fresh and of official authority: then social posts
/// only annotate. (A target may list a social channel first, e.g. one that watches only X.)
fn official_primary_fresh(fresh: &[(usize, &ChannelRecord)]) -> bool {
    fresh.first().is_some_and(|(position, record)| {
        *position == 0 && record.kind.authority() == SourceAuthority::Official
    })
}

/// Whether a statement may decide a service: it must say something known; a social channel may
/// never make anything operational (design §3 rule 3) and decides nothing while the target's
/// official primary channel is fresh (rule 9: it annotates instead).
fn can_decide(kind: ChannelKind, health: Health, official_primary_fresh: bool) -> bool {
    let social = kind.authority() == SourceAuthority::Social;
    match health {
        Health::Unknown => false,
        _ if social && official_primary_fresh => false,
        Health::Operational => !social,
        _ => true,
    }
}

fn statement<'a>(
    record: &'a ChannelRecord,
    id: &str,
) -> Option<&'a statusmon_channels::ServiceObservation> {
    record
        .observation
        .as_ref()
        .and_then(|o| o.services.iter().find(|s| s.id == id))
}

fn resolve_service<'a>(
    id: &str,
    name: &str,
    records: &[(usize, &'a ChannelRecord, ChannelState)],
    fresh: &[(usize, &'a ChannelRecord)],
    memory: Option<&ServiceMemory>,
    incidents: &[IncidentResolution],
    policy: &Policy,
) -> (ServiceResolution, ServiceMemory) {
    let official_primary_fresh = official_primary_fresh(fresh);
    let statement_of = |record: &'a ChannelRecord| statement(record, id);
    let evidence: Vec<Evidence> = records
        .iter()
        .filter_map(|(_, record, state)| {
            statement_of(record).map(|s| Evidence {
                channel: record.id.clone(),
                state: *state,
                health: s.health,
                status_text: s.status_text.clone(),
                as_of: s.as_of,
            })
        })
        .collect();

    // Rule 2: the highest-priority fresh channel with a usable statement decides.
    let decider = fresh.iter().find_map(|(position, record)| {
        let statement = statement_of(record)?;
        let observed_at = record.observation.as_ref()?.observed_at;
        can_decide(record.kind, statement.health, official_primary_fresh).then_some(Candidate {
            channel: record,
            position: *position,
            statement,
            observed_at,
        })
    });

    let mut annotations = Vec::new();
    // Rule 9: lower channels (and social ones that may not decide) annotate, visibly, and never
    // override.
    let decided = decider.as_ref().map(|d| (d.position, d.statement.health));
    for (position, record) in fresh {
        if decided.is_some_and(|(at, _)| *position <= at) {
            continue;
        }
        if let Some(s) = statement_of(record)
            && s.health != Health::Unknown
            && decided.is_none_or(|(_, health)| s.health != health)
        {
            let word = if s.status_text.is_empty() {
                String::new()
            } else {
                format!(" ({:?})", s.status_text)
            };
            annotations.push(format!(
                "unconfirmed report on {}: {}{word}",
                record.id, s.health
            ));
        }
    }

    let previous = memory.map(|m| m.shown);
    let (candidate, evidence_at) = match &decider {
        Some(c) => (c.statement.health, Some(c.observed_at)),
        None => (Health::Unknown, None),
    };
    let (mut shown, mut pending) = hysteresis(
        previous,
        memory.and_then(|m| m.pending.clone()),
        candidate,
        evidence_at,
        policy,
    );
    // A held verdict is shown under the decider's name, so it must be one the decider could make:
    // a social channel never holds "operational" (with `fail_threshold` > 1 it otherwise would,
    // while its own posts say worse).
    if let Some(c) = &decider
        && !can_decide(c.channel.kind, shown, official_primary_fresh)
    {
        (shown, pending) = (candidate, None);
    }
    if shown != candidate {
        annotations.push(format!(
            "holding {shown} until more observations confirm {candidate} (hysteresis)"
        ));
    }

    let mut last_known = memory.and_then(|m| m.last_known.clone());
    let resolution = match &decider {
        Some(c) => {
            if shown != Health::Unknown {
                last_known = Some(LastKnown {
                    verdict: shown,
                    source: Some(c.channel.id.clone()),
                    as_of: c.statement.as_of.or(Some(c.observed_at)),
                });
            }
            let mut ids: Vec<String> = c.statement.incidents.clone();
            for incident in incidents {
                if incident.service.as_deref() == Some(id) && !ids.contains(&incident.id) {
                    ids.push(incident.id.clone());
                }
            }
            ServiceResolution {
                id: id.to_string(),
                name: c.statement.name.clone(),
                verdict: shown,
                source: Some(c.channel.id.clone()),
                confidence: confidence_of(c.position, c.channel.kind),
                as_of: c.statement.as_of.or(Some(c.observed_at)),
                incidents: ids,
                status_text: Some(c.statement.status_text.clone()).filter(|t| !t.is_empty()),
                message: c.statement.message.clone(),
                last_known: None,
                annotations,
                evidence,
            }
        }
        None => {
            let why = if fresh.is_empty() {
                "no channel of this target is fresh".to_string()
            } else {
                "no fresh channel makes a usable statement about this service".to_string()
            };
            annotations.insert(0, why);
            ServiceResolution {
                id: id.to_string(),
                name: name.to_string(),
                verdict: Health::Unknown,
                source: None,
                confidence: Confidence::Low,
                as_of: None,
                incidents: Vec::new(),
                status_text: None,
                message: None,
                last_known: last_known.clone(),
                annotations,
                evidence,
            }
        }
    };
    let memory = ServiceMemory {
        name: resolution.name.clone(),
        shown: resolution.verdict,
        last_known,
        pending,
    };
    (resolution, memory)
}

/// Rule 8. Changes between known verdicts wait for `fail_threshold` consecutive worse or
/// `recover_threshold` consecutive better observations. Becoming unknown is never delayed (holding
/// a verdict we can no longer support would be green by silence), and leaving unknown takes the
/// first usable statement.
fn hysteresis(
    previous: Option<Health>,
    pending: Option<Pending>,
    candidate: Health,
    evidence_at: Option<DateTime<Utc>>,
    policy: &Policy,
) -> (Health, Option<Pending>) {
    let Some(previous) = previous else {
        return (candidate, None);
    };
    let (Some(before), Some(after)) = (previous.severity(), candidate.severity()) else {
        return (candidate, None);
    };
    if before == after {
        return (candidate, None);
    }
    let worse = after > before;
    let threshold = if worse {
        policy.fail_threshold
    } else {
        policy.recover_threshold
    }
    .max(1);
    let same_direction = |p: &Pending| {
        p.verdict
            .severity()
            .is_some_and(|s| (s > before) == worse && s != before)
    };
    let count = match pending {
        Some(p) if same_direction(&p) => {
            let new_evidence = match (p.evidence_at, evidence_at) {
                (Some(old), Some(new)) => new > old,
                _ => true,
            };
            if new_evidence { p.count + 1 } else { p.count }
        }
        _ => 1,
    };
    if count >= threshold {
        (candidate, None)
    } else {
        (
            previous,
            Some(Pending {
                verdict: candidate,
                count,
                evidence_at,
            }),
        )
    }
}

/// Rule 7: incidents keyed by Microsoft id and merged across fresh channels, in priority order so
/// the highest channel's title and status win.
fn merge_incidents(fresh: &[(usize, &ChannelRecord)]) -> Vec<IncidentResolution> {
    let mut merged: Vec<IncidentResolution> = Vec::new();
    for (_, record) in fresh {
        let Some(observation) = &record.observation else {
            continue;
        };
        for incident in &observation.incidents {
            let key = incident.id.clone().unwrap_or_else(|| {
                synthetic_incident_id(incident.service.as_deref(), &incident.title)
            });
            let update = IncidentUpdate {
                channel: record.id.clone(),
                at: incident.updated_at,
                status: incident.status.clone(),
                text: incident.summary.clone(),
            };
            if let Some(existing) = merged.iter_mut().find(|m| m.id == key) {
                if !existing.sources.contains(&record.id) {
                    existing.sources.push(record.id.clone());
                }
                // One update per channel: its first report of the incident, like the winner's.
                if !existing.updates.iter().any(|u| u.channel == record.id) {
                    existing.updates.push(update);
                }
                existing.started_at = earliest(existing.started_at, incident.started_at);
                existing.updated_at = existing.updated_at.max(incident.updated_at);
                if existing.service.is_none() {
                    existing.service = incident.service.clone();
                }
                continue;
            }
            merged.push(IncidentResolution {
                id: key,
                title: incident.title.clone(),
                service: incident.service.clone(),
                classification: incident.classification,
                status: incident.status.clone(),
                resolved: incident.resolved,
                started_at: incident.started_at,
                updated_at: incident.updated_at,
                sources: vec![record.id.clone()],
                summary: incident.summary.clone(),
                updates: vec![update],
            });
        }
    }
    // Kept for as long as the target's picture stands: no room for incidents never coming.
    merged.shrink_to_fit();
    merged
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A stable key for an incident whose source gave no Microsoft id: the service and a hash of the
/// title (FNV-1a, so it is the same on every run and every machine).
pub fn synthetic_incident_id(service: Option<&str>, title: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in title.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{}-{:08x}", service.unwrap_or("incident"), hash >> 32)
}

/// Rule 6: the primary channel's trouble as its own event, and whose side it is likely on (the
/// second value, also shown on the admin plane).
fn primary_report(
    spec: &TargetSpec,
    channels: &BTreeMap<String, ChannelRecord>,
    admin_plane: &AdminPlane,
    now: DateTime<Utc>,
) -> (PrimaryReport, Option<String>) {
    let Some(primary) = spec.channels.first().and_then(|id| channels.get(id)) else {
        let report = PrimaryReport {
            channel: spec.channels.first().cloned().unwrap_or_default(),
            state: ChannelState::Disabled,
            since: None,
            error_class: None,
            explanation: Some("the primary channel is not configured".to_string()),
        };
        return (report, None);
    };
    let state = primary.state(now);
    let since = match state {
        ChannelState::Fresh => None,
        ChannelState::Failing => primary.failing_since,
        ChannelState::Stale | ChannelState::Disabled => primary.last_success(),
    };
    let name = match primary.kind {
        ChannelKind::Graph => format!("the admin portal API ({})", primary.id),
        _ => primary.id.clone(),
    };
    let what = match state {
        ChannelState::Fresh => None,
        ChannelState::Failing => Some(format!(
            "{name} unavailable{}: {}",
            since
                .map(|t| format!(
                    " since {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ))
                .unwrap_or_default(),
            primary
                .error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        )),
        ChannelState::Stale => Some(match primary.last_success() {
            Some(at) => format!(
                "{name} has had no good answer for {}",
                statusmon_channels::error::humanize(Duration::from_secs(age(at, now).as_secs()))
            ),
            None => format!("{name} has not answered yet"),
        }),
        ChannelState::Disabled => Some(format!(
            "{name} is disabled: {}",
            primary.disabled_reason().unwrap_or("switched off")
        )),
    };
    let side = match (&what, admin_plane.source.as_deref()) {
        (Some(_), Some(source)) if source != primary.id => match admin_plane.verdict {
            Health::Operational => Some(format!(
                "{source} reports the Microsoft 365 admin center available, so the cause is \
                 likely on our side (credentials, consent, network)"
            )),
            Health::Advisory | Health::Incident | Health::Maintenance => Some(format!(
                "{source} reports the Microsoft 365 admin center {}: Microsoft's admin plane is \
                 having trouble",
                admin_plane.verdict
            )),
            Health::Unknown => None,
        },
        _ => None,
    };
    let explanation = match (what, &side) {
        (Some(w), Some(s)) => Some(format!("{w}. {s}.")),
        (Some(w), None) => Some(w),
        (None, _) => None,
    };
    let report = PrimaryReport {
        channel: primary.id.clone(),
        state,
        since,
        error_class: primary.error.as_ref().map(ProbeError::class),
        explanation,
    };
    (report, side)
}

/// All channel ids the given targets use, each once.
pub fn used_channels(targets: &[TargetSpec]) -> BTreeSet<String> {
    targets
        .iter()
        .flat_map(|t| t.channels.iter().cloned())
        .collect()
}
