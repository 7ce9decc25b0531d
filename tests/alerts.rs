//! Alert events from resolution transitions (issue 7): what fires, what resolves the same alert,
//! and what stays quiet. Documents come from a real engine, so the resolver's hysteresis and
//! visibility rules are the ones alerts see in `run`.

use chrono::{DateTime, TimeDelta};
use statusmon::alerts::events::between;
use statusmon::alerts::{AlertEvent, EventKind, Severity};
use statusmon::engine::Engine;
use statusmon::status::StatusDocument;
use statusmon_channels::{
    Health, IncidentClassification, IncidentObservation, Observation, ProbeError,
};

use crate::resolver::{observation, t0};

type Utc = chrono::Utc;

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// A target "Contoso" on a primary `p` and, when `with_secondary`, a secondary `s`: public-site
/// channels every 2 minutes, so an answer is fresh for 6.
fn engine(with_secondary: bool) -> Engine {
    let mut text =
        String::from("[[channels]]\nid = \"p\"\nkind = \"m365_status_site\"\ninterval = \"2m\"\n");
    let channels = if with_secondary {
        text.push_str("[[channels]]\nid = \"s\"\nkind = \"m365_status_site\"\ninterval = \"2m\"\n");
        "[\"p\", \"s\"]"
    } else {
        "[\"p\"]"
    };
    text.push_str(&format!(
        "[[targets]]\nid = \"t\"\nname = \"Contoso\"\nchannels = {channels}\n"
    ));
    let config =
        statusmon::config::parse(&text, std::path::Path::new("t.toml"), std::iter::empty())
            .expect("valid");
    Engine::new(std::sync::Arc::new(config), &reqwest::Client::new())
}

/// An engine resolving round after round as `run` does, with the events of each round.
struct Watch {
    engine: Engine,
    shown: Option<StatusDocument>,
}

impl Watch {
    fn new(with_secondary: bool) -> Self {
        Watch {
            engine: engine(with_secondary),
            shown: None,
        }
    }

    fn answer(&mut self, channel: &str, at: DateTime<Utc>, services: &[(&str, Health)]) {
        self.engine
            .record(channel, Ok(observation(channel, at, services)), at);
    }

    fn answer_with(&mut self, observation: Observation) {
        let at = observation.observed_at;
        let channel = observation.channel.clone();
        self.engine.record(&channel, Ok(observation), at);
    }

    fn fail(&mut self, channel: &str, at: DateTime<Utc>) {
        let error = ProbeError::Http {
            what: "GET /api/feed/mac".into(),
            status: 503,
            hint: None,
            retry_after: None,
        };
        self.engine.record(channel, Err(error), at);
    }

    fn round(&mut self, at: DateTime<Utc>) -> Vec<AlertEvent> {
        let targets = self.engine.resolve_reusing(at, self.shown.as_ref());
        let document = self.engine.document(targets, at);
        let events = between(self.shown.as_ref(), &document);
        // The store relies on it: a round with alerts has changes, which rewrite the baseline a
        // restart diffs against.
        if let Some(before) = &self.shown {
            assert!(
                events.is_empty() || !statusmon::status::changes(before, &document).is_empty(),
                "alerts without a change: {events:#?}"
            );
        }
        self.shown = Some(document);
        events
    }
}

fn kinds(events: &[AlertEvent]) -> Vec<(EventKind, &str, bool)> {
    events
        .iter()
        .map(|e| (e.kind, e.alert.as_str(), e.firing))
        .collect()
}

const OK: Health = Health::Operational;

#[test]
fn a_healthy_start_says_nothing_and_an_unmoved_picture_never_repeats() {
    let mut watch = Watch::new(true);
    for minute in [0, 1, 2] {
        let at = t0() + minutes(minute);
        watch.answer("p", at, &[("Exchange", OK), ("Teams", OK)]);
        watch.answer("s", at, &[("Exchange", OK), ("Teams", OK)]);
        assert_eq!(watch.round(at), Vec::new(), "minute {minute}");
    }
}

#[test]
fn losing_the_primary_fires_one_visibility_alert_and_regaining_it_resolves_that_alert() {
    let mut watch = Watch::new(true);
    // Teams is covered by the primary only: without it, Teams is unknown, which the visibility
    // alert already says (judged by its last known verdict, Teams did not change).
    watch.answer("p", t0(), &[("Exchange", OK), ("Teams", OK)]);
    watch.answer("s", t0(), &[("Exchange", OK)]);
    watch.round(t0());

    let lost_at = t0() + minutes(1);
    watch.fail("p", lost_at);
    watch.answer("s", lost_at, &[("Exchange", OK)]);
    let lost = watch.round(lost_at);
    let teams_unknown = watch.shown.as_ref().map(|d| {
        d.targets[0]
            .services
            .iter()
            .any(|s| s.id == "Teams" && s.verdict == Health::Unknown)
    });
    assert_eq!(
        teams_unknown,
        Some(true),
        "without the primary, Teams is unknown"
    );
    assert_eq!(
        kinds(&lost),
        [(EventKind::Visibility, "t/visibility", true)]
    );
    let event = &lost[0];
    assert_eq!(event.severity, Severity::Warning);
    assert!(
        event
            .summary
            .starts_with("Contoso: primary channel p lost; status now rests on s"),
        "{}",
        event.summary
    );
    assert!(
        event.detail.contains("503"),
        "the primary's trouble: {}",
        event.detail
    );

    // Still lost a minute later: nothing new to say.
    let later = lost_at + minutes(1);
    watch.fail("p", later);
    watch.answer("s", later, &[("Exchange", OK)]);
    assert_eq!(watch.round(later), Vec::new());

    let back_at = later + minutes(1);
    watch.answer("p", back_at, &[("Exchange", OK), ("Teams", OK)]);
    let back = watch.round(back_at);
    assert_eq!(
        kinds(&back),
        [(EventKind::Visibility, "t/visibility", false)]
    );
    assert_eq!(back[0].severity, Severity::Info);
    assert_ne!(back[0].idempotency_key, event.idempotency_key);
}

#[test]
fn a_blind_target_is_one_critical_alert_not_one_per_service() {
    let mut watch = Watch::new(false);
    let services = [("Exchange", OK), ("Teams", OK), ("SharePoint", OK)];
    watch.answer("p", t0(), &services);
    watch.round(t0());

    // Seven minutes without an answer: past the 6-minute max age, nothing is fresh.
    let blind = watch.round(t0() + minutes(7));
    assert_eq!(
        kinds(&blind),
        [(EventKind::Visibility, "t/visibility", true)]
    );
    assert_eq!(blind[0].severity, Severity::Critical);
    assert!(
        blind[0].summary.contains("cannot be seen"),
        "{}",
        blind[0].summary
    );

    // The primary is back and says Exchange is down: visibility resolves, Exchange fires; the
    // services that are as they were before the blind spell say nothing.
    let back_at = t0() + minutes(8);
    watch.answer(
        "p",
        back_at,
        &[
            ("Exchange", Health::Incident),
            ("Teams", OK),
            ("SharePoint", OK),
        ],
    );
    let back = watch.round(back_at);
    assert_eq!(
        kinds(&back),
        [
            (EventKind::Visibility, "t/visibility", false),
            (EventKind::ServiceVerdict, "t/service/Exchange", true),
        ]
    );
    assert_eq!(back[1].severity, Severity::Critical);
}

#[test]
fn a_service_verdict_fires_once_and_its_recovery_resolves_the_same_alert() {
    let mut watch = Watch::new(false);
    let mut all = Vec::new();
    let history = [OK, Health::Incident, Health::Incident, OK, OK, OK];
    for (minute, health) in history.into_iter().enumerate() {
        let at = t0() + minutes(minute as i64);
        watch.answer("p", at, &[("Exchange", health)]);
        all.extend(watch.round(at));
    }
    assert_eq!(
        kinds(&all),
        [
            (EventKind::ServiceVerdict, "t/service/Exchange", true),
            (EventKind::ServiceVerdict, "t/service/Exchange", false),
        ]
    );
    assert_eq!(
        all[0].summary,
        "Contoso: Exchange service incident (was operational)"
    );
    assert_eq!(all[0].service.as_deref(), Some("Exchange"));
    assert!(
        all[0].detail.contains("from p, high confidence"),
        "{}",
        all[0].detail
    );
    // The resolver holds a recovery for two good answers in a row (its hysteresis).
    assert_eq!(all[1].at, t0() + minutes(4));
    assert_eq!(
        all[1].summary,
        "Contoso: Exchange service operational (was incident)"
    );
}

fn with_incident(at: DateTime<Utc>, status: &str, summary: &str, resolved: bool) -> Observation {
    let mut o = observation("p", at, &[("Exchange", Health::Incident)]);
    o.incidents.push(IncidentObservation {
        id: Some("EX571516".into()),
        title: "Users can't send mail".into(),
        service: Some("Exchange".into()),
        classification: IncidentClassification::Incident,
        status: status.into(),
        resolved,
        started_at: Some(t0()),
        updated_at: Some(at),
        summary: Some(summary.into()),
    });
    o
}

#[test]
fn an_incident_fires_when_first_seen_updates_when_it_moves_and_resolves_once() {
    let mut watch = Watch::new(false);
    let steps = [
        ("investigating", "We're looking into it.", false),
        ("investigating", "We're looking into it.", false),
        ("serviceDegradation", "A fix is rolling out.", false),
        ("serviceRestored", "Mail flows again.", true),
        ("serviceRestored", "Mail flows again.", true),
    ];
    let mut seen = Vec::new();
    for (minute, (status, summary, resolved)) in steps.into_iter().enumerate() {
        let at = t0() + minutes(minute as i64);
        watch.answer_with(with_incident(at, status, summary, resolved));
        let incident_events: Vec<AlertEvent> = watch
            .round(at)
            .into_iter()
            .filter(|e| e.incident.is_some())
            .collect();
        seen.push(incident_events);
    }
    let shape: Vec<Vec<(EventKind, bool, Severity)>> = seen
        .iter()
        .map(|events| {
            events
                .iter()
                .map(|e| (e.kind, e.firing, e.severity))
                .collect()
        })
        .collect();
    assert_eq!(
        shape,
        [
            vec![(EventKind::IncidentNew, true, Severity::Critical)],
            vec![],
            vec![(EventKind::IncidentUpdated, true, Severity::Critical)],
            vec![(EventKind::IncidentResolved, false, Severity::Info)],
            vec![],
        ]
    );
    let first = &seen[0][0];
    assert_eq!(first.alert, "t/incident/EX571516");
    assert_eq!(
        first.summary,
        "Contoso: incident EX571516 new: Users can't send mail"
    );
    assert!(
        first
            .detail
            .starts_with("We're looking into it.; status investigating"),
        "{}",
        first.detail
    );
    assert_eq!(
        seen[3][0].alert, first.alert,
        "the resolve closes the alert it fired"
    );
}

#[test]
fn an_open_incident_that_no_channel_lists_any_more_is_resolved() {
    let mut watch = Watch::new(false);
    watch.answer_with(with_incident(t0(), "investigating", "Looking.", false));
    watch.round(t0());
    let at = t0() + minutes(1);
    watch.answer("p", at, &[("Exchange", Health::Incident)]);
    let events = watch.round(at);
    let gone: Vec<&AlertEvent> = events.iter().filter(|e| e.incident.is_some()).collect();
    assert_eq!(gone.len(), 1, "{events:#?}");
    assert_eq!(gone[0].kind, EventKind::IncidentResolved);
    assert!(
        gone[0]
            .detail
            .starts_with("no longer listed by the channels that reported it"),
        "{}",
        gone[0].detail
    );
}

#[test]
fn a_target_bad_from_the_first_round_fires() {
    let mut watch = Watch::new(false);
    watch.answer("p", t0(), &[("Exchange", Health::Advisory), ("Teams", OK)]);
    let first = watch.round(t0());
    assert_eq!(
        kinds(&first),
        [(EventKind::ServiceVerdict, "t/service/Exchange", true)]
    );
    assert_eq!(first[0].severity, Severity::Warning);
}

#[test]
fn a_transition_always_gets_the_same_idempotency_key_and_each_event_its_own() {
    let mut watch = Watch::new(true);
    watch.answer("p", t0(), &[("Exchange", OK)]);
    watch.answer("s", t0(), &[("Exchange", OK)]);
    watch.round(t0());
    let before = watch.shown.clone();
    let at = t0() + minutes(1);
    watch.fail("p", at);
    watch.answer("s", at, &[("Exchange", Health::Incident)]);
    let events = watch.round(at);
    let after = watch.shown.clone().expect("a document");
    assert_eq!(
        between(before.as_ref(), &after),
        events,
        "pure: same documents, same events"
    );
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_ne!(events[0].idempotency_key, events[1].idempotency_key);
    assert_eq!(
        events[0].idempotency_key,
        "t/visibility#visibility@2026-11-25T12:01:00.000Z"
    );
}

#[test]
fn the_admin_center_is_one_admin_plane_alert_not_also_a_service_alert() {
    let mut watch = Watch::new(false);
    watch.answer("p", t0(), &[("mac", OK), ("Exchange", OK)]);
    assert_eq!(watch.round(t0()), Vec::new());
    let at = t0() + minutes(1);
    watch.answer("p", at, &[("mac", Health::Advisory), ("Exchange", OK)]);
    let events = watch.round(at);
    assert_eq!(
        kinds(&events),
        [(EventKind::AdminPlane, "t/admin-plane", true)]
    );
    assert_eq!(events[0].severity, Severity::Warning);
    assert_eq!(
        events[0].summary,
        "Contoso: admin center advisory (was operational)"
    );
}

#[test]
fn an_open_incident_is_not_announced_over_because_nobody_can_see_it() {
    let mut watch = Watch::new(false);
    watch.answer_with(with_incident(t0(), "investigating", "Looking.", false));
    let first = watch.round(t0());
    assert!(
        first.iter().any(|e| e.kind == EventKind::IncidentNew),
        "{first:#?}"
    );
    // Past the max age the target is blind and the incident drops out of the picture.
    let blind = watch.round(t0() + minutes(7));
    let listed = watch.shown.as_ref().map(|d| d.targets[0].incidents.len());
    assert_eq!(
        listed,
        Some(0),
        "the resolver lists incidents of fresh channels only"
    );
    assert_eq!(
        kinds(&blind),
        [(EventKind::Visibility, "t/visibility", true)]
    );
}
