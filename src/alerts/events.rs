//! Alert events from resolution transitions (design §3; issue 7): a service's verdict, a target's
//! visibility (its primary channel lost and regained), the admin plane, and incidents new,
//! updated and resolved.
//!
//! Events come from the resolved picture, never from a channel's own flaps: the resolver's
//! hysteresis has already held back a verdict that moved for one probe, and a channel that fails
//! while a lower one covers for it is one visibility event, not a stream of channel errors.
//! Not seeing is news of its own, told once: when the primary is lost or the target goes blind,
//! the services only it covered turn `unknown` and its incidents drop out of the picture, and
//! fifty "unknown" alerts (or an incident announced over because nobody can see it) would bury
//! the one that matters. So a service whose verdict is `unknown` is judged by its last known
//! verdict, and an incident that vanished counts as over only when a channel that reported it is
//! still fresh and no longer lists it.
//!
//! Two documents are all it reads, so an incident that drops out while unseen and comes back
//! fires as new again (under the same alert key, which PagerDuty and Alertmanager merge), and one
//! that ends while unseen and never comes back is not resolved here: the outbox's record of open
//! alerts is meant to close both.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use statusmon_channels::status_site::ADMIN_CENTER;
use statusmon_channels::{Health, IncidentClassification};

use crate::resolver::{
    ChannelState, IncidentResolution, ServiceResolution, TargetResolution, Visibility,
};
use crate::status::{ChannelReport, StatusDocument, same_or_find, visibility_str};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A service's verdict.
    ServiceVerdict,
    /// The target's visibility: its primary channel lost or regained, or no fresh channel left.
    Visibility,
    /// The admin plane (the admin center and its API), as the resolver judges it.
    AdminPlane,
    /// An incident first seen open.
    IncidentNew,
    /// An open incident whose status, classification or latest text moved, or one reopened.
    IncidentUpdated,
    /// An incident that was open and is now resolved, or that a channel which reported it, still
    /// fresh, no longer lists.
    IncidentResolved,
}

impl EventKind {
    /// The name routes and messages use.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ServiceVerdict => "service_verdict",
            EventKind::Visibility => "visibility",
            EventKind::AdminPlane => "admin_plane",
            EventKind::IncidentNew => "incident_new",
            EventKind::IncidentUpdated => "incident_updated",
            EventKind::IncidentResolved => "incident_resolved",
        }
    }
}

/// How loud an event is: routes match on it, each sink maps it to its own levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something got better or ended.
    Info,
    /// Degraded, partly seen, or not known.
    Warning,
    /// An incident, or nothing left to see through.
    Critical,
}

impl Severity {
    /// The name routes, templates and payloads use (serde's).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert event: an alert firing, changing, or resolving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The alert it belongs to, the same for its whole life (fired, updated, resolved):
    /// `{target}/service/{id}`, `{target}/visibility`, `{target}/admin-plane`,
    /// `{target}/incident/{id}`. PagerDuty's dedup key; Alertmanager's identity.
    pub alert: String,
    /// This event's own key: the alert, the kind and the time of the document that showed the
    /// change. The same transition always gets the same key, so a receiver that gets an event
    /// twice (a retry after a lost answer, a restart between send and receipt) can drop it.
    pub idempotency_key: String,
    /// What changed.
    pub kind: EventKind,
    /// The target's id.
    pub target: String,
    /// The service concerned, when one is.
    pub service: Option<String>,
    /// The incident concerned, for incident events.
    pub incident: Option<String>,
    /// How loud.
    pub severity: Severity,
    /// Whether the alert is firing after this event; `false` resolves it.
    pub firing: bool,
    /// One line for a person.
    pub summary: String,
    /// What it rests on: source, confidence, the primary's trouble, the incident's latest text.
    pub detail: String,
    /// When the change was seen (the document's time).
    pub at: DateTime<Utc>,
    /// Why it is sent: a transition, a reminder that the alert still fires, or a drill.
    #[serde(default)]
    pub purpose: Purpose,
}

/// Why an event is sent. Messages say so: a reminder is not news, a drill needs no action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A transition of the resolved picture.
    #[default]
    Transition,
    /// The alert still fires and nobody acknowledged it.
    Reminder,
    /// A test through a real route (`statusmon drill`).
    Drill,
}

impl Purpose {
    /// The name templates and payloads use (serde's).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Transition => "transition",
            Purpose::Reminder => "reminder",
            Purpose::Drill => "drill",
        }
    }
}

/// The alert events from `before` to `after`, two documents of one engine (`before` is `None`
/// for the first resolution ever, when a target that is bad from the start fires and one that is
/// fine says nothing). In document order, per target: visibility, admin plane, services,
/// incidents.
pub fn between(before: Option<&StatusDocument>, after: &StatusDocument) -> Vec<AlertEvent> {
    let mut out = Vec::new();
    for (i, target) in after.targets.iter().enumerate() {
        let old = before.and_then(|d| same_or_find(&d.targets, i, |t| t.id == target.id));
        // The engine keeps an unmoved target as the same resolution.
        if old.is_some_and(|old| Arc::ptr_eq(old, target)) {
            continue;
        }
        let old = old.map(|t| &**t);
        let mut events = Events {
            target,
            at: after.generated_at,
            out: &mut out,
        };
        events.visibility(old);
        events.admin_plane(old);
        events.services(old);
        events.incidents(old, &after.channels);
    }
    out
}

/// The events of one target, written into `out`.
struct Events<'a> {
    target: &'a TargetResolution,
    at: DateTime<Utc>,
    out: &'a mut Vec<AlertEvent>,
}

impl Events<'_> {
    fn push(&mut self, event: Draft) {
        let alert = format!("{}/{}", self.target.id, event.subject);
        let idempotency_key = format!(
            "{alert}#{}@{}",
            event.kind.as_str(),
            self.at.to_rfc3339_opts(SecondsFormat::Millis, true)
        );
        self.out.push(AlertEvent {
            alert,
            idempotency_key,
            kind: event.kind,
            target: self.target.id.clone(),
            service: event.service,
            incident: event.incident,
            severity: event.severity,
            firing: event.firing,
            summary: format!("{}: {}", self.target.name, event.summary),
            detail: event.detail,
            at: self.at,
            purpose: Purpose::Transition,
        });
    }

    /// A first sight counts as coming from `full`: a target that starts degraded or blind fires.
    fn visibility(&mut self, old: Option<&TargetResolution>) {
        let target = self.target;
        let was = old.map_or(Visibility::Full, |t| t.visibility);
        if was == target.visibility {
            return;
        }
        let primary = &target.primary;
        let trouble = primary.explanation.clone().unwrap_or_else(|| {
            format!(
                "primary channel {} is {}",
                primary.channel,
                primary.state.as_str()
            )
        });
        let (severity, firing, summary, detail) = match target.visibility {
            Visibility::Full => (
                Severity::Info,
                false,
                format!("primary channel {} answers again", primary.channel),
                format!("visibility {} → full", visibility_str(was)),
            ),
            Visibility::Degraded => (
                Severity::Warning,
                true,
                format!(
                    "primary channel {} lost; status now rests on {}",
                    primary.channel,
                    target.source.as_deref().unwrap_or("a lower channel")
                ),
                trouble,
            ),
            Visibility::Blind => (
                Severity::Critical,
                true,
                "no fresh channel: the status cannot be seen".to_string(),
                trouble,
            ),
        };
        self.push(Draft {
            subject: "visibility".to_string(),
            kind: EventKind::Visibility,
            service: None,
            incident: None,
            severity,
            firing,
            summary,
            detail,
        });
    }

    /// The admin center's own verdict (judged as a service is, and said once: here, not also
    /// as a service event), with the resolver's reading of the primary's trouble beside it. A
    /// target whose channels say nothing of the admin center has no admin-plane alerts.
    fn admin_plane(&mut self, old: Option<&TargetResolution>) {
        let target = self.target;
        let Some(service) = admin_center(target) else {
            return;
        };
        let Some(now) = judged(service) else {
            return;
        };
        let was = old
            .and_then(|t| judged(admin_center(t)?))
            .unwrap_or(Health::Operational);
        if was == now {
            return;
        }
        let (severity, firing) = verdict_level(now);
        let mut detail = source_line(service);
        if let Some(explanation) = &target.admin_plane.explanation {
            detail = format!("{explanation}; {detail}");
        }
        self.push(Draft {
            subject: "admin-plane".to_string(),
            kind: EventKind::AdminPlane,
            service: Some(service.id.clone()),
            incident: None,
            severity,
            firing,
            summary: format!("admin center {} (was {})", now.as_str(), was.as_str()),
            detail,
        });
    }

    fn services(&mut self, old: Option<&TargetResolution>) {
        let target = self.target;
        for (i, service) in target.services.iter().enumerate() {
            if service.id == ADMIN_CENTER {
                continue;
            }
            let Some(now) = judged(service) else {
                continue;
            };
            let was = old
                .and_then(|t| judged(same_or_find(&t.services, i, |s| s.id == service.id)?))
                .unwrap_or(Health::Operational);
            if was == now {
                continue;
            }
            let (severity, firing) = verdict_level(now);
            let mut detail = source_line(service);
            if let Some(message) = &service.message {
                detail = format!("{message}; {detail}");
            }
            self.push(Draft {
                subject: format!("service/{}", service.id),
                kind: EventKind::ServiceVerdict,
                service: Some(service.id.clone()),
                incident: None,
                severity,
                firing,
                summary: format!("{} {} (was {})", service.name, now.as_str(), was.as_str()),
                detail,
            });
        }
    }

    fn incidents(&mut self, old: Option<&TargetResolution>, channels: &[Arc<ChannelReport>]) {
        let target = self.target;
        let still_seen = |incident: &IncidentResolution| {
            incident.sources.iter().any(|source| {
                channels
                    .iter()
                    .any(|c| c.id == *source && c.state == ChannelState::Fresh)
            })
        };
        let listed_before: &[IncidentResolution] = old.map_or(&[], |t| &t.incidents);
        for incident in &target.incidents {
            let previous = listed_before.iter().find(|i| i.id == incident.id);
            let kind = match previous {
                None if incident.resolved => continue,
                None => EventKind::IncidentNew,
                Some(p) if !p.resolved && incident.resolved => EventKind::IncidentResolved,
                Some(p) if p.resolved && incident.resolved => continue,
                Some(p) if p.resolved => EventKind::IncidentUpdated,
                Some(p) if moved(p, incident) => EventKind::IncidentUpdated,
                Some(_) => continue,
            };
            self.incident(incident, kind, None);
        }
        for gone in listed_before
            .iter()
            .filter(|i| !i.resolved && !target.incidents.iter().any(|n| n.id == i.id))
            .filter(|i| still_seen(i))
        {
            self.incident(
                gone,
                EventKind::IncidentResolved,
                Some("no longer listed by the channels that reported it"),
            );
        }
    }

    fn incident(&mut self, incident: &IncidentResolution, kind: EventKind, why: Option<&str>) {
        let firing = kind != EventKind::IncidentResolved;
        let severity = match (firing, incident.classification) {
            (false, _) => Severity::Info,
            (true, IncidentClassification::Incident) => Severity::Critical,
            (true, IncidentClassification::Advisory | IncidentClassification::Unknown) => {
                Severity::Warning
            }
        };
        let what = match kind {
            EventKind::IncidentNew => "new",
            EventKind::IncidentResolved => "resolved",
            _ => "updated",
        };
        let mut detail = format!(
            "status {}; from {}",
            incident.status,
            if incident.sources.is_empty() {
                "no channel".to_string()
            } else {
                incident.sources.join(", ")
            }
        );
        if let Some(summary) = &incident.summary {
            detail = format!("{summary}; {detail}");
        }
        if let Some(why) = why {
            detail = format!("{why}; {detail}");
        }
        self.push(Draft {
            subject: format!("incident/{}", incident.id),
            kind,
            service: incident.service.clone(),
            incident: Some(incident.id.clone()),
            severity,
            firing,
            summary: format!("incident {} {what}: {}", incident.id, incident.title),
            detail,
        });
    }
}

/// An event before the target's part is filled in.
struct Draft {
    subject: String,
    kind: EventKind,
    service: Option<String>,
    incident: Option<String>,
    severity: Severity,
    firing: bool,
    summary: String,
    detail: String,
}

/// The verdict alerts judge a service by: its own, or while that is `unknown` its last known
/// one (`None` when nothing was ever known: nothing to say until something is seen).
fn judged(service: &ServiceResolution) -> Option<Health> {
    match service.verdict {
        Health::Unknown => service.last_known.as_ref().map(|known| known.verdict),
        known => Some(known),
    }
}

/// The admin center among the target's services, if any channel speaks of it.
fn admin_center(target: &TargetResolution) -> Option<&ServiceResolution> {
    target.services.iter().find(|s| s.id == ADMIN_CENTER)
}

/// How loud a verdict is, and whether it fires (`operational` resolves).
fn verdict_level(verdict: Health) -> (Severity, bool) {
    match verdict {
        Health::Operational => (Severity::Info, false),
        Health::Incident => (Severity::Critical, true),
        Health::Maintenance | Health::Advisory | Health::Unknown => (Severity::Warning, true),
    }
}

fn source_line(service: &ServiceResolution) -> String {
    format!(
        "from {}, {} confidence",
        service.source.as_deref().unwrap_or("no fresh channel"),
        crate::status::confidence_str(service.confidence)
    )
}

/// Whether an open incident changed in a way worth telling: its status, classification or
/// latest text.
fn moved(before: &IncidentResolution, after: &IncidentResolution) -> bool {
    before.status != after.status
        || before.classification != after.classification
        || before.summary != after.summary
}
