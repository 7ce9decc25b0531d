//! The dashboard at `GET /`: one server-rendered page a person can read during an outage, on a
//! laptop or a phone, with or without JavaScript.
//!
//! Rendering is pure (a document, the timeline and the clock in; HTML out), so every sentence is
//! unit-tested. The page is built with maud, which escapes every spliced string: upstream text
//! (titles, summaries, status words, error messages) is already plain text when it reaches the
//! document, and escaping it here is what keeps a hostile post from becoming markup.
//!
//! The incident timeline needs history the document does not keep (the document holds each
//! incident's latest state only), so [`Timeline`] remembers every channel's posts as rounds are
//! published, bounded and deduplicated.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;
use sha2::{Digest, Sha256};
use statusmon_channels::{Health, SharedText};

use crate::alerts::delivery::OpenAlert;
use crate::alerts::routes::Silence;
use crate::resolver::{
    ChannelState, IncidentResolution, IncidentUpdate, TargetResolution, Visibility,
};
use crate::status::{ChannelReport, StatusDocument, ago, confidence_str, visibility_str};
use crate::store::ReceiptRow;

/// How many timeline entries are kept per target: enough for a long outage told by several
/// channels, small enough that a chatty upstream cannot grow memory without bound.
pub const TIMELINE_LIMIT: usize = 200;

/// How often the page reloads itself when JavaScript is off, in seconds.
pub const NO_SCRIPT_REFRESH_SECS: u32 = 10;

/// The path of the fragment the live script fetches: the page's `<main>` content alone.
pub const FRAGMENT_PATH: &str = "/dashboard/targets";

/// The page's stylesheet. Inline, because the page must work when the internet is down; no fixed
/// widths, and tables turn into labelled blocks on narrow screens.
const STYLE: &str = r#"
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; padding: 0.75rem; max-width: 72rem; }
header { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: baseline; justify-content: space-between; }
h1 { font-size: 1.3rem; margin: 0.2rem 0; }
h2 { font-size: 1.2rem; margin: 1.2rem 0 0.4rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.3rem; }
#live { font-size: 0.9rem; color: var(--muted); margin: 0; }
#live.up::before { content: "● "; color: var(--ok); }
#live.down::before { content: "○ "; color: var(--bad); }
.generated { color: var(--muted); font-size: 0.9rem; margin: 0.2rem 0; }
.target { border-top: 2px solid var(--line); margin-top: 1rem; }
.banner { border-left: 0.4rem solid var(--muted); padding: 0.5rem 0.75rem; margin: 0.4rem 0; font-weight: 600; overflow-wrap: anywhere; }
.banner.ok { border-color: var(--ok); }
.banner.warn { border-color: var(--warn); }
.banner.bad { border-color: var(--bad); }
.facts { margin: 0.3rem 0; }
.facts span { display: inline-block; margin-right: 1rem; }
.note { color: var(--muted); font-size: 0.9rem; margin: 0.2rem 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
.word { font-weight: 600; }
.operational, .fresh { color: var(--ok); }
.advisory, .maintenance, .stale { color: var(--warn); }
.incident, .failing { color: var(--bad); }
.unknown, .disabled { color: var(--muted); }
ul.notes { margin: 0.2rem 0 0; padding-left: 1.1rem; font-size: 0.9rem; color: var(--muted); }
ol.timeline { list-style: none; padding: 0; margin: 0; }
ol.timeline li { border-left: 2px solid var(--line); padding: 0.2rem 0 0.5rem 0.7rem; }
ol.timeline .head { font-size: 0.9rem; color: var(--muted); }
ol.timeline p { margin: 0.15rem 0 0; overflow-wrap: anywhere; white-space: pre-line; }
@media (max-width: 40rem) {
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border-bottom: 1px solid var(--line); padding: 0.3rem 0; }
  td { border: 0; padding: 0.1rem 0; }
  td::before { content: attr(data-label) ": "; color: var(--muted); }
}
"#;

/// The live-update script: on every server event, fetch the fragment and swap it in; say whether
/// the stream is connected. Every ten seconds it also refreshes, so ages keep counting.
const SCRIPT: &str = r#"
(function () {
  var region = document.getElementById("targets");
  var live = document.getElementById("live");
  var busy = false, again = false;
  function say(text, state) { live.textContent = text; live.className = state; }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch("dashboard/targets", { cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) { region.innerHTML = html; })
      .catch(function () { say("reconnecting…", "down"); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var events = new EventSource("api/v1/events");
  events.onopen = function () { say("live", "up"); refresh(); };
  events.onerror = function () { say("reconnecting…", "down"); };
  ["status", "change", "timeline"].forEach(function (name) { events.addEventListener(name, refresh); });
  setInterval(refresh, 10000);
})();
"#;

fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_source(SCRIPT),
        sha256_source(STYLE)
    )
});

/// The `Content-Security-Policy` of the dashboard: nothing but this server, the page's own
/// inline style and script (by hash), so even text that escaped escaping could not run.
pub fn content_security_policy() -> &'static str {
    &CONTENT_SECURITY_POLICY
}

/// One entry of a target's incident timeline: what one channel said about one incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// The target whose timeline it belongs to.
    pub target: String,
    /// When the channel says it was said (or, if it gives no time, when we first saw it).
    pub at: DateTime<Utc>,
    /// The channel that said it.
    pub channel: String,
    /// The incident id.
    pub incident: String,
    /// The incident's title (the winning channel's).
    pub title: SharedText,
    /// The channel's own status word.
    pub status: String,
    /// The channel's text, as plain text.
    pub text: Option<SharedText>,
}

/// What makes an entry the same entry on the next round: same incident, channel and words,
/// kept as a 64-bit hash of them rather than a third copy of the words (a thousand targets'
/// timelines are held for as long as the daemon runs; a collision would only hide one update
/// from the timeline, never from the status).
type EntryKey = u64;

fn entry_key(incident: &IncidentResolution, update: &IncidentUpdate) -> EntryKey {
    let mut hasher = DefaultHasher::new();
    (
        &incident.id,
        &update.channel,
        &update.at,
        &update.status,
        &update.text,
    )
        .hash(&mut hasher);
    hasher.finish()
}

#[derive(Debug, Default)]
struct TargetTimeline {
    /// Newest first, each with the key it was recognised by.
    entries: Vec<(EntryKey, TimelineEntry)>,
    /// Keys of the entries kept plus those reported in the latest round, so an update evicted
    /// by the bound but still reported is not added again as if it were new.
    seen: HashSet<EntryKey>,
}

/// Every target's incident timeline: one entry per (incident, channel, update) ever published,
/// newest first, at most [`TIMELINE_LIMIT`] per target. Fed one document per round.
#[derive(Debug)]
pub struct Timeline {
    limit: usize,
    targets: BTreeMap<String, TargetTimeline>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new(TIMELINE_LIMIT)
    }
}

impl Timeline {
    /// An empty timeline keeping at most `limit` entries per target.
    pub fn new(limit: usize) -> Self {
        Timeline {
            limit,
            targets: BTreeMap::new(),
        }
    }

    /// Adds every update in `document` not seen before and returns the new entries (oldest
    /// first), for the live event stream. A target that is the very resolution it was in
    /// `previous` (the document recorded before) has nothing new and is not looked at.
    pub fn record(
        &mut self,
        document: &StatusDocument,
        previous: Option<&StatusDocument>,
    ) -> Vec<TimelineEntry> {
        let mut added = Vec::new();
        for (i, target) in document.targets.iter().enumerate() {
            let unchanged = previous
                .and_then(|p| p.targets.get(i))
                .is_some_and(|kept| Arc::ptr_eq(kept, target));
            if unchanged && self.targets.contains_key(&target.id) {
                continue;
            }
            let timeline = self.targets.entry(target.id.clone()).or_default();
            let mut current: HashSet<EntryKey> = HashSet::new();
            for incident in &target.incidents {
                for update in updates_of(incident) {
                    let key = entry_key(incident, &update);
                    // Recorded as current even when already seen, so it stays seen while reported.
                    let is_new = current.insert(key) && !timeline.seen.contains(&key);
                    if !is_new {
                        continue;
                    }
                    let entry = TimelineEntry {
                        target: target.id.clone(),
                        at: update.at.unwrap_or(document.generated_at),
                        channel: update.channel,
                        incident: incident.id.clone(),
                        title: incident.title.clone(),
                        status: update.status,
                        text: update.text,
                    };
                    added.push(entry.clone());
                    // Newest first; an entry as old as others goes before them, as it arrived later.
                    let at = timeline.entries.partition_point(|(_, e)| e.at > entry.at);
                    timeline.entries.insert(at, (key, entry));
                }
            }
            timeline.entries.truncate(self.limit);
            timeline.entries.shrink_to_fit();
            let mut seen: HashSet<EntryKey> = timeline.entries.iter().map(|(k, _)| *k).collect();
            seen.extend(current);
            timeline.seen = seen;
        }
        added.sort_by_key(|e| e.at);
        added
    }

    /// A target's entries, newest first.
    pub fn entries(&self, target: &str) -> Vec<&TimelineEntry> {
        self.targets
            .get(target)
            .map(|t| t.entries.iter().map(|(_, e)| e).collect())
            .unwrap_or_default()
    }
}

/// Each channel's own word on an incident; a document without them (older producers) yields the
/// winner's word under its first source.
fn updates_of(incident: &IncidentResolution) -> Vec<IncidentUpdate> {
    if !incident.updates.is_empty() {
        return incident.updates.clone();
    }
    incident
        .sources
        .first()
        .map(|channel| IncidentUpdate {
            channel: channel.clone(),
            at: incident.updated_at,
            status: incident.status.clone(),
            text: incident.summary.clone(),
        })
        .into_iter()
        .collect()
}

/// How a banner should look: words carry the meaning, the tone only colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Full visibility and nothing wrong.
    Ok,
    /// Something to watch: news about services, or reduced visibility.
    Warn,
    /// An incident, or nothing left to see with.
    Bad,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Ok => "ok",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
        }
    }
}

/// A target's headline sentence: is the primary channel up, and what does the picture rest on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// Its colour.
    pub tone: Tone,
    /// The sentence.
    pub text: String,
}

/// The banner of `target`, given every channel's report (for the primary's kind and error), as
/// a document holds them (`Arc`s) or plain.
pub fn banner<R: Borrow<ChannelReport>>(
    target: &TargetResolution,
    channels: &[R],
    now: DateTime<Utc>,
) -> Banner {
    let find = |id: &str| channels.iter().map(Borrow::borrow).find(|c| c.id == id);
    let primary_id = &target.primary.channel;
    let primary_report = find(primary_id);
    let primary = channel_label(primary_id, primary_report);
    let verdict = target.verdict;
    if target.primary.state == ChannelState::Fresh {
        let (tone, text) = match verdict {
            Health::Operational => (
                Tone::Ok,
                format!(
                    "All is well: every service is operational according to the primary channel, \
                     {primary} (full visibility, {} confidence).",
                    confidence_str(target.confidence)
                ),
            ),
            other => (
                if other == Health::Incident {
                    Tone::Bad
                } else {
                    Tone::Warn
                },
                format!(
                    "The primary channel, {primary}, is up (full visibility): the target is {} \
                     — see the services and incidents below.",
                    other.as_str().to_uppercase()
                ),
            ),
        };
        return Banner { tone, text };
    }

    let down = match target.primary.state {
        ChannelState::Failing => {
            let since = target
                .primary
                .since
                .map(|t| format!(" since {}", clock(t, now)))
                .unwrap_or_default();
            let error = primary_report
                .and_then(|c| c.error.as_ref())
                .map(|e| {
                    format!(
                        " ({}: {})",
                        e.class,
                        statusmon_channels::text::shorten(&e.message, 160)
                    )
                })
                .or_else(|| target.primary.error_class.map(|c| format!(" ({c})")))
                .unwrap_or_default();
            format!("The primary channel, {primary}, is down: failing{since}{error}")
        }
        ChannelState::Stale => {
            let last = primary_report
                .and_then(|c| c.last_success)
                .map(|t| format!("no good answer since {}", clock(t, now)))
                .unwrap_or_else(|| "no good answer yet".to_string());
            format!("The primary channel, {primary}, is down: stale, {last}")
        }
        ChannelState::Disabled => {
            let reason = primary_report
                .and_then(|c| c.disabled_reason.as_deref())
                .map(|r| format!(" ({})", statusmon_channels::text::shorten(r, 160)))
                .unwrap_or_default();
            format!("The primary channel, {primary}, is off: disabled{reason}")
        }
        ChannelState::Fresh => String::new(),
    };
    match (target.visibility, &target.source) {
        (Visibility::Blind, _) | (_, None) => Banner {
            tone: Tone::Bad,
            text: format!(
                "{down} — and no other channel is fresh: statusmon is blind for this target. \
                 Verdicts are unknown; last known verdicts are shown."
            ),
        },
        (_, Some(source)) => {
            let report = find(source);
            Banner {
                tone: if verdict == Health::Incident {
                    Tone::Bad
                } else {
                    Tone::Warn
                },
                text: format!(
                    "{down} — status now rests on {} ({} confidence).",
                    channel_label(source, report),
                    confidence_str(target.confidence)
                ),
            }
        }
    }
}

/// "Graph (contoso-graph)": what a person calls the channel, then its configured id.
fn channel_label(id: &str, report: Option<&ChannelReport>) -> String {
    let kind = report.map(|c| c.kind.as_str()).unwrap_or_default();
    let name = match kind {
        "graph" => "Graph",
        "m365_status_site" => "the public status site",
        "x" => "X",
        "mastodon" => "Mastodon",
        "bluesky" => "Bluesky",
        "feed" => "the feed",
        _ => return id.to_string(),
    };
    format!("{name} ({id})")
}

/// "12:03:05 UTC (2m ago)".
fn clock(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", at.format("%H:%M:%S UTC"), ago(at, now))
}

fn age_or(at: Option<DateTime<Utc>>, now: DateTime<Utc>, none: &str) -> String {
    at.map(|t| ago(t, now)).unwrap_or_else(|| none.to_string())
}

/// The whole page. `document` is `None` before the first round; the page then says so and
/// updates itself like any other time.
pub fn render_page(
    document: Option<&StatusDocument>,
    timeline: &Timeline,
    alerts: Option<&AlertsPanel>,
    now: DateTime<Utc>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page_title(document)) }
                noscript {
                    meta http-equiv="refresh" content=(NO_SCRIPT_REFRESH_SECS);
                }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "statusmon" }
                    p #live role="status" {
                        "updates by reloading every " (NO_SCRIPT_REFRESH_SECS) " seconds"
                    }
                }
                main #targets aria-live="polite" {
                    (render_targets(document, timeline, alerts, now))
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

fn page_title(document: Option<&StatusDocument>) -> String {
    match document.map(|d| d.targets.as_slice()) {
        Some([one]) => format!("{}: {} — statusmon", one.name, one.verdict.as_str()),
        _ => "statusmon".to_string(),
    }
}

/// The live part of the page (what [`FRAGMENT_PATH`] serves): every target's banner, services,
/// channels and incident timeline.
pub fn render_targets(
    document: Option<&StatusDocument>,
    timeline: &Timeline,
    alerts: Option<&AlertsPanel>,
    now: DateTime<Utc>,
) -> Markup {
    let Some(document) = document else {
        return html! {
            p.banner.warn #waiting {
                "Waiting for the first round: every channel is being asked for the first time. \
                 This page updates by itself."
            }
        };
    };
    html! {
        p.generated {
            "As of " (clock(document.generated_at, now))
        }
        @if document.targets.is_empty() {
            p.banner.warn { "No target is configured: add a [[targets]] table to the config." }
        }
        @for target in &document.targets {
            (render_target(target, document, &timeline.entries(&target.id), now))
        }
        @if let Some(alerts) = alerts {
            (render_alerts(alerts, now))
        }
    }
}

/// What the dashboard shows of alerting: open alerts, active silences, the newest receipts.
#[derive(Debug, Clone, Default)]
pub struct AlertsPanel {
    /// The open alerts.
    pub open: Vec<OpenAlert>,
    /// The silences in force.
    pub silences: Vec<Silence>,
    /// The newest delivery receipts, newest first.
    pub receipts: Vec<ReceiptRow>,
}

/// The alerting section: what fires, what is held back, and where each alert went.
fn render_alerts(panel: &AlertsPanel, now: DateTime<Utc>) -> Markup {
    html! {
        section.alerts #alerts {
            h2 { "Alerts" }
            @if panel.open.is_empty() {
                p.note data-role="open-alerts" { "No alert is firing." }
            } @else {
                table data-role="open-alerts" {
                    thead { tr { th { "Alert" } th { "Severity" } th { "Since" } th { "Told" } th { "Acknowledged" } } }
                    tbody {
                        @for open in &panel.open {
                            tr {
                                td { (open.latest.summary) }
                                td { (open.latest.severity.as_str()) }
                                td { (ago(open.since, now)) }
                                td { (open.routes.iter().map(String::as_str).collect::<Vec<_>>().join(", ")) }
                                td {
                                    @match &open.acknowledged {
                                        Some(ack) => { (ack.comment) " (" (ago(ack.at, now)) ")" }
                                        None => { "no" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @for silence in &panel.silences {
                p.note data-role="silence" {
                    "Silenced until " (clock(silence.ends_at, now)) ": " (silence.comment)
                    @if let Some(alert) = &silence.alert { " (" (alert) ")" }
                }
            }
            h3 { "Deliveries" }
            @if panel.receipts.is_empty() {
                p.note data-role="deliveries" { "Nothing sent yet." }
            } @else {
                table data-role="deliveries" {
                    thead { tr { th { "When" } th { "Alert" } th { "Route" } th { "Sink" } th { "Outcome" } th { "Answer" } } }
                    tbody {
                        @for row in &panel.receipts {
                            tr {
                                td { (ago(row.receipt.at, now)) }
                                td { (row.summary) }
                                td { (row.receipt.route) }
                                td { (row.receipt.sink.as_deref().unwrap_or("-")) }
                                td class=(format!("outcome {}", row.receipt.outcome.as_str())) { (row.receipt.outcome.as_str()) }
                                td { (row.receipt.detail) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn render_target(
    target: &TargetResolution,
    document: &StatusDocument,
    timeline: &[&TimelineEntry],
    now: DateTime<Utc>,
) -> Markup {
    let banner = banner(target, &document.channels, now);
    let channels: Vec<&ChannelReport> = if target.channels.is_empty() {
        document.channels.iter().map(|c| &**c).collect()
    } else {
        target
            .channels
            .iter()
            .filter_map(|id| document.channels.iter().find(|c| c.id == *id))
            .map(|c| &**c)
            .collect()
    };
    html! {
        section.target id=(format!("target-{}", target.id)) {
            h2 {
                (target.name) " "
                span class=(format!("word {}", target.verdict.as_str())) {
                    (target.verdict.as_str().to_uppercase())
                }
            }
            p class=(format!("banner {}", banner.tone.class())) data-role="banner" {
                (banner.text)
            }
            p.facts {
                span data-role="visibility" {
                    "Visibility: " strong { (visibility_str(target.visibility)) }
                }
                span data-role="verdict" {
                    "Verdict: " strong { (target.verdict.as_str()) }
                }
                span data-role="source" {
                    "Rests on: "
                    strong { (target.source.as_deref().unwrap_or("no fresh channel")) }
                    " (" (confidence_str(target.confidence)) " confidence)"
                }
                span data-role="admin-center" {
                    "Admin center: " strong { (target.admin_plane.verdict.as_str()) }
                    @if let Some(source) = &target.admin_plane.source {
                        " (from " (source) ")"
                    }
                }
            }
            @if let Some(explanation) = &target.primary.explanation {
                p.note { (explanation) }
            } @else if let Some(side) = &target.admin_plane.explanation {
                p.note { (side) }
            }
            h3 { "Services" }
            @if target.services.is_empty() {
                p.note { "No service known yet: no channel has answered." }
            } @else {
                div.scroll {
                    table data-role="services" {
                        thead { tr {
                            th { "Service" } th { "Verdict" } th { "Source" }
                            th { "Confidence" } th { "As of" } th { "Incidents" }
                        } }
                        tbody {
                            @for s in &target.services {
                                tr {
                                    td data-label="Service" {
                                        (s.name)
                                        @if !s.annotations.is_empty() || s.last_known.is_some() {
                                            ul.notes {
                                                @for note in &s.annotations { li { (note) } }
                                                @if let Some(known) = &s.last_known {
                                                    li {
                                                        "last known " (known.verdict.as_str())
                                                        " from " (known.source.as_deref().unwrap_or("?"))
                                                        @if let Some(at) = known.as_of { ", " (ago(at, now)) }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    td data-label="Verdict" class=(format!("word {}", s.verdict.as_str())) {
                                        (s.verdict.as_str())
                                    }
                                    td data-label="Source" { (s.source.as_deref().unwrap_or("none fresh")) }
                                    td data-label="Confidence" { (confidence_str(s.confidence)) }
                                    td data-label="As of" { (age_or(s.as_of, now, "-")) }
                                    td data-label="Incidents" {
                                        @if s.incidents.is_empty() { "-" } @else { (s.incidents.join(", ")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Channels" }
            div.scroll {
                table data-role="channels" {
                    thead { tr {
                        th { "Channel" } th { "Kind" } th { "State" } th { "Last success" } th { "Last error" }
                    } }
                    tbody {
                        @for c in &channels {
                            tr {
                                td data-label="Channel" {
                                    (c.id)
                                    @if c.id == target.primary.channel { " (primary)" }
                                }
                                td data-label="Kind" { (c.kind) }
                                td data-label="State" class=(format!("word {}", c.state.as_str())) {
                                    (c.state.as_str())
                                }
                                td data-label="Last success" { (age_or(c.last_success, now, "never")) }
                                td data-label="Last error" {
                                    @if let Some(e) = &c.error {
                                        strong { (e.class) } ": " (e.message)
                                    } @else { "-" }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Incident timeline" }
            @if timeline.is_empty() {
                p.note { "No incident reported by any channel yet." }
            } @else {
                ol.timeline data-role="timeline" {
                    @for entry in timeline {
                        li {
                            div.head {
                                time datetime=(entry.at.to_rfc3339()) { (entry.at.format("%Y-%m-%d %H:%M:%S UTC")) }
                                " · " strong { (entry.channel) }
                                " · " (entry.incident)
                                " · " (entry.status)
                            }
                            @if let Some(text) = &entry.text {
                                p { (text) }
                            } @else {
                                p { (entry.title) }
                            }
                        }
                    }
                }
            }
        }
    }
}
