//! The status document (`status --json`, `GET /api/v1/status`), its table rendering, the
//! Nagios exit code, and the list of changes between two resolutions that `run` prints.
//!
//! Field names here are a contract (design §5, `status-document.schema.json`): add fields
//! freely, rename none.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use statusmon_channels::{ErrorClass, Health, ProbeError};

use crate::engine::LiveChannel;
use crate::resolver::{ChannelRecord, ChannelState, TargetResolution, Visibility};

/// The status document. It also deserializes, because the store keeps the last published one
/// as the baseline a restarted daemon diffs its first round against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusDocument {
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// One resolution per target.
    pub targets: Vec<Arc<TargetResolution>>,
    /// Every channel's own health. A channel whose record and state did not move since the last
    /// document is the same `Arc` (see [`crate::engine::Engine::document`]).
    pub channels: Vec<Arc<ChannelReport>>,
}

/// One channel's own health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    /// Channel id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// State.
    pub state: ChannelState,
    /// When it last answered well.
    pub last_success: Option<DateTime<Utc>>,
    /// The error to show: the latest probe's, or a partial answer's first fault.
    pub error: Option<ErrorReport>,
    /// Every part of the last answer that failed while the rest answered.
    pub faults: Vec<FaultReport>,
    /// The probe interval.
    pub interval: String,
    /// The max age of a good answer.
    pub max_age: String,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<String>,
}

impl ChannelReport {
    /// A channel's health at `now`, from its record.
    pub fn new(live: &LiveChannel, record: &ChannelRecord, now: DateTime<Utc>) -> Self {
        let state = record.state(now);
        let error = match state {
            ChannelState::Disabled => match &record.disabled {
                Some(reason) => Some(ErrorReport {
                    class: ErrorClass::Config,
                    message: reason.clone(),
                    transient: false,
                }),
                None => record.error.as_ref().map(ErrorReport::from),
            },
            _ => record.shown_error().map(ErrorReport::from),
        };
        let faults = match (&record.error, &record.observation) {
            (None, Some(observation)) => observation
                .faults
                .iter()
                .map(|f| FaultReport {
                    services: f.services.clone(),
                    error: ErrorReport::from(&f.error),
                })
                .collect(),
            _ => Vec::new(),
        };
        ChannelReport {
            id: live.config.id.clone(),
            kind: live.config.kind().as_str().to_string(),
            state,
            last_success: record.last_success(),
            error,
            faults,
            interval: humantime::format_duration(live.config.interval).to_string(),
            max_age: humantime::format_duration(live.config.max_age).to_string(),
            disabled_reason: record.disabled_reason().map(str::to_string),
        }
    }
}

/// An error as shown to users.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorReport {
    /// Contract class.
    pub class: ErrorClass,
    /// One sentence.
    pub message: String,
    /// Whether retrying soon could help.
    pub transient: bool,
}

impl From<&ProbeError> for ErrorReport {
    fn from(error: &ProbeError) -> Self {
        ErrorReport {
            class: error.class(),
            message: error.to_string(),
            transient: error.is_transient(),
        }
    }
}

/// A failed part of a partial answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    /// The services it concerns.
    pub services: Vec<String>,
    /// The error.
    #[serde(flatten)]
    pub error: ErrorReport,
}

impl StatusDocument {
    /// Whether two documents say the same thing, whenever they were made: the store writes a
    /// document only when this is false, since the loop resolves every second.
    pub fn same_picture(&self, other: &StatusDocument) -> bool {
        self.targets.len() == other.targets.len()
            && self
                .targets
                .iter()
                .zip(&other.targets)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == b)
            && self.channels.len() == other.channels.len()
            && self
                .channels
                .iter()
                .zip(&other.channels)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == b)
    }

    /// The Nagios-style exit code: 2 if any target has an incident, else 3 if any is unknown or
    /// blind, else 1 for advisory or maintenance, else 0. No targets is 3: nothing was checked.
    pub fn exit_code(&self) -> u8 {
        // The resolver already makes a blind target unknown; the codes follow its alarm order.
        let worst = self
            .targets
            .iter()
            .map(|t| t.verdict)
            .max_by_key(|h| h.alarm_rank())
            .unwrap_or(Health::Unknown);
        match worst {
            Health::Incident => 2,
            Health::Unknown => 3,
            Health::Advisory | Health::Maintenance => 1,
            Health::Operational => 0,
        }
    }

    /// The human view: per target a headline, the services, then the channels.
    pub fn render_table(&self) -> String {
        let now = self.generated_at;
        let mut out = String::new();
        for target in &self.targets {
            let _ = writeln!(
                out,
                "{} ({}): {}  visibility {}  source {} ({} confidence)",
                target.name,
                target.id,
                target.verdict.as_str().to_uppercase(),
                visibility_str(target.visibility),
                target.source.as_deref().unwrap_or("no fresh source"),
                confidence_str(target.confidence),
            );
            if let Some(explanation) = &target.primary.explanation {
                let _ = writeln!(out, "  ! {explanation}");
            }
            let _ = writeln!(
                out,
                "  admin center: {}{}",
                target.admin_plane.verdict,
                target
                    .admin_plane
                    .source
                    .as_deref()
                    .map(|s| format!(" (from {s})"))
                    .unwrap_or_default()
            );
            let mut rows = vec![[
                "SERVICE".to_string(),
                "VERDICT".to_string(),
                "SOURCE".to_string(),
                "CONFIDENCE".to_string(),
                "AS OF".to_string(),
            ]];
            for s in &target.services {
                rows.push([
                    s.name.clone(),
                    s.verdict.to_string(),
                    s.source.clone().unwrap_or_else(|| "-".into()),
                    confidence_str(s.confidence).to_string(),
                    s.as_of.map(|t| ago(t, now)).unwrap_or_else(|| "-".into()),
                ]);
            }
            if target.services.is_empty() {
                let _ = writeln!(out, "  no service known yet: no channel has answered");
            } else {
                push_table(&mut out, &rows, "  ");
            }
            for s in &target.services {
                for note in &s.annotations {
                    let _ = writeln!(out, "  · {}: {note}", s.name);
                }
                if let Some(known) = &s.last_known {
                    let _ = writeln!(
                        out,
                        "  · {}: last known {} from {}{}",
                        s.name,
                        known.verdict,
                        known.source.as_deref().unwrap_or("?"),
                        known
                            .as_of
                            .map(|t| format!(", {}", ago(t, now)))
                            .unwrap_or_default()
                    );
                }
            }
            for incident in &target.incidents {
                let _ = writeln!(
                    out,
                    "  incident {}: {} [{}] ({})",
                    incident.id,
                    incident.title,
                    incident.status,
                    incident.sources.join(", ")
                );
            }
            out.push('\n');
        }
        let mut rows = vec![[
            "CHANNEL".to_string(),
            "KIND".to_string(),
            "STATE".to_string(),
            "LAST SUCCESS".to_string(),
            "ERROR".to_string(),
        ]];
        for c in &self.channels {
            rows.push([
                c.id.clone(),
                c.kind.clone(),
                c.state.as_str().to_string(),
                c.last_success
                    .map(|t| ago(t, now))
                    .unwrap_or_else(|| "never".into()),
                c.error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.class, e.message))
                    .unwrap_or_default(),
            ]);
        }
        push_table(&mut out, &rows, "");
        out
    }
}

fn push_table<const N: usize>(out: &mut String, rows: &[[String; N]], indent: &str) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = indent.to_string();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The contract name of a visibility.
pub fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Full => "full",
        Visibility::Degraded => "degraded",
        Visibility::Blind => "blind",
    }
}

/// The contract name of a confidence.
pub fn confidence_str(c: crate::resolver::Confidence) -> &'static str {
    match c {
        crate::resolver::Confidence::High => "high",
        crate::resolver::Confidence::Medium => "medium",
        crate::resolver::Confidence::Low => "low",
    }
}

/// "3m ago", "just now", for a timestamp relative to `now`.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    match (now - at).to_std() {
        Ok(d) if d < Duration::from_secs(1) => "just now".into(),
        Ok(d) => format!(
            "{} ago",
            statusmon_channels::error::humanize(Duration::from_secs(d.as_secs()))
        ),
        Err(_) => at.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

/// One change between two resolutions worth telling a person about: the sentence `run` prints,
/// and what it is about, so the API can filter without reading the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The target it concerns, if it is about a target.
    pub target: Option<String>,
    /// The channel it concerns, if it is about a channel's own health.
    pub channel: Option<String>,
    /// The sentence.
    pub text: String,
}

impl Change {
    fn target(id: &str, text: String) -> Self {
        Change {
            target: Some(id.to_string()),
            channel: None,
            text,
        }
    }

    fn channel(id: &str, text: String) -> Self {
        Change {
            target: None,
            channel: Some(id.to_string()),
            text,
        }
    }
}

/// The item of `items` that `is_it`, looked up first at `index`: two documents of one engine
/// list channels, targets and services in the same order, so the search (quadratic over a
/// thousand targets every second) is only the fallback.
pub(crate) fn same_or_find<T>(items: &[T], index: usize, is_it: impl Fn(&T) -> bool) -> Option<&T> {
    match items.get(index) {
        Some(item) if is_it(item) => Some(item),
        _ => items.iter().find(|item| is_it(item)),
    }
}

/// The changes from `before` to `after` (channel states, target visibility and verdict, the
/// primary's own trouble, service verdicts and sources, incidents), in a stable order. Services
/// that changed the same way are said in one line, so a blind target is one line, not fifty.
pub fn changes(before: &StatusDocument, after: &StatusDocument) -> Vec<Change> {
    let mut out = Vec::new();
    for (i, channel) in after.channels.iter().enumerate() {
        let old = same_or_find(&before.channels, i, |c| c.id == channel.id);
        let old_state = old.map(|c| c.state);
        let old_class = old.and_then(|c| c.error.as_ref().map(|e| e.class));
        let class = channel.error.as_ref().map(|e| e.class);
        if old_state == Some(channel.state) && old_class == class {
            continue;
        }
        let error = channel
            .error
            .as_ref()
            .map(|e| format!(" ({}: {})", e.class, e.message))
            .unwrap_or_default();
        let line = match old_state {
            Some(state) if state == channel.state => {
                format!("channel {}: still {}{error}", channel.id, state.as_str())
            }
            _ => format!(
                "channel {}: {} → {}{error}",
                channel.id,
                old_state.map(ChannelState::as_str).unwrap_or("new"),
                channel.state.as_str()
            ),
        };
        out.push(Change::channel(&channel.id, line));
    }
    for (i, target) in after.targets.iter().enumerate() {
        let old = same_or_find(&before.targets, i, |t| t.id == target.id);
        // A target the engine kept from the last round is the same resolution: nothing moved.
        if old.is_some_and(|old| Arc::ptr_eq(old, target)) {
            continue;
        }
        target_changes(old.map(|t| &**t), target, &mut out);
    }
    out
}

fn target_changes(
    old: Option<&TargetResolution>,
    target: &TargetResolution,
    out: &mut Vec<Change>,
) {
    let mut headline = Vec::new();
    if old.map(|t| t.visibility) != Some(target.visibility) {
        headline.push(format!(
            "visibility {} → {}",
            old.map(|t| visibility_str(t.visibility)).unwrap_or("new"),
            visibility_str(target.visibility)
        ));
    }
    if old.map(|t| t.verdict) != Some(target.verdict) {
        headline.push(format!(
            "verdict {} → {}",
            old.map(|t| t.verdict.as_str()).unwrap_or("new"),
            target.verdict
        ));
    }
    if old.map(|t| &t.source) != Some(&target.source) {
        headline.push(format!(
            "now rests on {}",
            target
                .source
                .as_deref()
                .unwrap_or("nothing (no fresh channel)")
        ));
    }
    if !headline.is_empty() {
        out.push(Change::target(
            &target.id,
            format!("target {}: {}", target.id, headline.join("; ")),
        ));
    }
    if let Some(explanation) = &target.primary.explanation
        && old.map(|t| t.primary.state) != Some(target.primary.state)
    {
        out.push(Change::target(
            &target.id,
            format!("target {}: {explanation}", target.id),
        ));
    } else if let Some(side) = &target.admin_plane.explanation
        && old.map(|t| &t.admin_plane.explanation) != Some(&target.admin_plane.explanation)
    {
        out.push(Change::target(
            &target.id,
            format!("target {}: {side}", target.id),
        ));
    }

    // Services that changed the same way (from, to, detail), in first-seen order.
    let mut groups: Vec<(ChangeKey, Vec<&str>)> = Vec::new();
    for (i, service) in target.services.iter().enumerate() {
        let previous = old.and_then(|t| same_or_find(&t.services, i, |s| s.id == service.id));
        if previous.map(|s| (s.verdict, &s.source)) == Some((service.verdict, &service.source)) {
            continue;
        }
        let from = previous
            .map(|s| s.verdict.as_str())
            .unwrap_or("new")
            .to_string();
        let key = (from, service.verdict, service_detail(service));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(&service.name),
            None => groups.push((key, vec![&service.name])),
        }
    }
    for ((from, to, detail), names) in groups {
        let who = match names.as_slice() {
            [one] => (*one).to_string(),
            many => {
                let shown: Vec<&str> = many.iter().take(4).copied().collect();
                let rest = many.len() - shown.len();
                let more = if rest > 0 {
                    format!(" and {rest} more")
                } else {
                    String::new()
                };
                format!("{} services ({}{more})", many.len(), shown.join(", "))
            }
        };
        out.push(Change::target(
            &target.id,
            format!("target {} · {who}: {from} → {to} ({detail})", target.id),
        ));
    }

    for incident in &target.incidents {
        let previous = old.and_then(|t| t.incidents.iter().find(|i| i.id == incident.id));
        match previous {
            None => out.push(Change::target(
                &target.id,
                format!(
                    "target {} · incident {}: {} [{}] (reported by {})",
                    target.id,
                    incident.id,
                    incident.title,
                    incident.status,
                    incident.sources.join(", ")
                ),
            )),
            Some(p) if p.status != incident.status || p.summary != incident.summary => {
                let status = if p.status == incident.status {
                    format!("still {}", incident.status)
                } else {
                    format!("{} → {}", p.status, incident.status)
                };
                // A new post (or a new latest update) is worth reading in full during an outage.
                let said = incident
                    .summary
                    .as_deref()
                    .filter(|_| p.summary != incident.summary)
                    .map(|s| format!(": “{}”", statusmon_channels::text::shorten(s, 280)))
                    .unwrap_or_default();
                out.push(Change::target(
                    &target.id,
                    format!(
                        "target {} · incident {}: {status}{said} ({})",
                        target.id,
                        incident.id,
                        incident.sources.join(", ")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    // An incident can also leave the picture without a last word (a feed's window moved on, its
    // only channel stopped answering): said once, so it does not vanish in silence.
    for gone in old.iter().flat_map(|t| &t.incidents) {
        if target.incidents.iter().any(|i| i.id == gone.id) {
            continue;
        }
        let last = if gone.resolved {
            format!("was {}", gone.status)
        } else {
            format!("last {}, never said resolved", gone.status)
        };
        out.push(Change::target(
            &target.id,
            format!(
                "target {} · incident {}: no longer reported ({last}; was reported by {})",
                target.id,
                gone.id,
                gone.sources.join(", ")
            ),
        ));
    }
}

/// How a service changed: from, to, and where the new verdict comes from.
type ChangeKey = (String, Health, String);

fn service_detail(service: &crate::resolver::ServiceResolution) -> String {
    match (&service.source, &service.last_known) {
        (Some(source), _) => format!(
            "from {source}, {} confidence{}",
            confidence_str(service.confidence),
            service
                .status_text
                .as_deref()
                .map(|t| format!(", says {t:?}"))
                .unwrap_or_default()
        ),
        (None, Some(known)) => format!(
            "no fresh source; last known {} from {}",
            known.verdict,
            known.source.as_deref().unwrap_or("?")
        ),
        (None, None) => "no fresh source".to_string(),
    }
}
