//! The resolver's rules (design §3), one test per rule, and properties over random histories.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use statusmon::resolver::{
    ChannelRecord, ChannelState, Confidence, Policy, TargetMemory, TargetResolution, TargetSpec,
    Visibility, resolve_target,
};
use statusmon_channels::{
    ChannelKind, Health, IncidentClassification, IncidentObservation, Observation, ProbeError,
    ServiceObservation,
};

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn secs(n: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(n)
}

/// What a channel said at `at`: each service with its health word as status text.
pub(crate) fn observation(
    channel: &str,
    at: DateTime<Utc>,
    services: &[(&str, Health)],
) -> Observation {
    Observation {
        channel: channel.into(),
        observed_at: at,
        source_time: None,
        services: services
            .iter()
            .map(|(id, health)| ServiceObservation {
                id: (*id).into(),
                name: format!("{id} service"),
                health: *health,
                status_text: health.as_str().into(),
                as_of: Some(at),
                message: None,
                incidents: Vec::new(),
            })
            .collect(),
        incidents: Vec::new(),
        faults: Vec::new(),
        digest: format!("{channel}-{at}"),
    }
}

fn channel(id: &str) -> ChannelRecord {
    ChannelRecord::new(id, ChannelKind::M365StatusSite, Duration::from_secs(180))
}

fn answered(id: &str, at: DateTime<Utc>, services: &[(&str, Health)]) -> ChannelRecord {
    let mut record = channel(id);
    record.record(Ok(observation(id, at, services)), at);
    record
}

fn failed(mut record: ChannelRecord, at: DateTime<Utc>) -> ChannelRecord {
    record.record(
        Err(ProbeError::Http {
            what: "GET /api/feed/mac".into(),
            status: 503,
            hint: None,
            retry_after: None,
        }),
        at,
    );
    record
}

fn target(channels: &[&str]) -> TargetSpec {
    TargetSpec {
        id: "t".into(),
        name: "T".into(),
        channels: channels.iter().map(|c| (*c).to_string()).collect(),
    }
}

fn table(records: Vec<ChannelRecord>) -> BTreeMap<String, ChannelRecord> {
    records.into_iter().map(|r| (r.id.clone(), r)).collect()
}

fn resolve_once(
    spec: &TargetSpec,
    records: Vec<ChannelRecord>,
    now: DateTime<Utc>,
) -> TargetResolution {
    resolve_target(
        spec,
        &table(records),
        &TargetMemory::default(),
        &Policy::default(),
        now,
    )
    .0
}

fn service<'a>(r: &'a TargetResolution, id: &str) -> &'a statusmon::resolver::ServiceResolution {
    r.services
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("service {id} missing from {r:#?}"))
}

#[test]
fn rule1_a_channel_counts_only_while_fresh() {
    let spec = target(&["a"]);
    let record = answered("a", t0(), &[("mac", Health::Operational)]);
    assert_eq!(record.state(t0() + secs(180)), ChannelState::Fresh);
    assert_eq!(record.state(t0() + secs(181)), ChannelState::Stale);
    let r = resolve_once(&spec, vec![record], t0() + secs(181));
    assert_eq!(r.visibility, Visibility::Blind);
    assert_eq!(service(&r, "mac").verdict, Health::Unknown);
}

#[test]
fn rule2_and_9_the_highest_fresh_channel_decides_and_lower_ones_annotate() {
    let spec = target(&["a", "b"]);
    let r = resolve_once(
        &spec,
        vec![
            answered("a", t0(), &[("mac", Health::Operational)]),
            answered("b", t0(), &[("mac", Health::Incident)]),
        ],
        t0(),
    );
    let mac = service(&r, "mac");
    assert_eq!(mac.verdict, Health::Operational);
    assert_eq!(mac.source.as_deref(), Some("a"));
    assert_eq!(mac.confidence, Confidence::High);
    assert!(
        mac.annotations
            .iter()
            .any(|a| a.contains("unconfirmed report on b: incident")),
        "{:?}",
        mac.annotations
    );
    assert_eq!(mac.evidence.len(), 2);
}

#[test]
fn rule3_silence_and_unknown_words_are_never_green() {
    let spec = target(&["a"]);
    // The channel answered, but said nothing usable about "ppac", and nothing at all about "x".
    let r = resolve_once(
        &spec,
        vec![answered(
            "a",
            t0(),
            &[("mac", Health::Operational), ("ppac", Health::Unknown)],
        )],
        t0(),
    );
    assert_eq!(service(&r, "ppac").verdict, Health::Unknown);
    assert_eq!(
        r.verdict,
        Health::Unknown,
        "unknown outranks operational in the roll-up"
    );
    // An answer with no services at all is not a green target either.
    let r = resolve_once(&spec, vec![answered("a", t0(), &[])], t0());
    assert_eq!(r.verdict, Health::Unknown);
}

#[test]
fn rule4_and_5_failover_degrades_visibility_and_confidence() {
    let spec = target(&["primary", "backup"]);
    let primary = failed(
        answered("primary", t0(), &[("mac", Health::Operational)]),
        t0() + secs(60),
    );
    let backup = answered("backup", t0() + secs(60), &[("mac", Health::Advisory)]);
    let r = resolve_once(&spec, vec![primary, backup], t0() + secs(61));
    assert_eq!(r.visibility, Visibility::Degraded);
    assert_eq!(r.source.as_deref(), Some("backup"));
    assert_eq!(r.confidence, Confidence::Medium);
    let mac = service(&r, "mac");
    assert_eq!(
        (mac.verdict, mac.source.as_deref()),
        (Health::Advisory, Some("backup"))
    );
    assert_eq!(mac.confidence, Confidence::Medium);
}

#[test]
fn rule4_blind_shows_the_last_known_verdict_with_its_source() {
    let spec = target(&["a"]);
    let policy = Policy::default();
    let healthy = table(vec![answered("a", t0(), &[("mac", Health::Advisory)])]);
    let (_, memory) = resolve_target(&spec, &healthy, &TargetMemory::default(), &policy, t0());
    let broken = table(vec![failed(
        answered("a", t0(), &[("mac", Health::Advisory)]),
        t0() + secs(60),
    )]);
    let (r, _) = resolve_target(&spec, &broken, &memory, &policy, t0() + secs(60));
    assert_eq!(r.visibility, Visibility::Blind);
    assert_eq!(r.verdict, Health::Unknown);
    assert_eq!(r.confidence, Confidence::Low);
    let mac = service(&r, "mac");
    assert_eq!(mac.verdict, Health::Unknown);
    assert_eq!(mac.source, None);
    let known = mac.last_known.as_ref().expect("last known shown");
    assert_eq!(
        (known.verdict, known.source.as_deref()),
        (Health::Advisory, Some("a"))
    );
    assert_eq!(known.as_of, Some(t0()));
}

#[test]
fn rule6_the_primarys_failure_is_reported_with_whose_side_it_is_on() {
    let spec = target(&["primary", "site"]);
    let primary = failed(channel("primary"), t0());
    let site_ok = answered("site", t0(), &[("mac", Health::Operational)]);
    let r = resolve_once(&spec, vec![primary.clone(), site_ok], t0() + secs(5));
    assert_eq!(r.primary.state, ChannelState::Failing);
    assert_eq!(r.primary.since, Some(t0()));
    let text = r.primary.explanation.clone().unwrap_or_default();
    assert!(
        text.contains("primary unavailable since 2026-11-25T12:00:00Z"),
        "{text}"
    );
    assert!(text.contains("HTTP 503"), "{text}");
    assert!(text.contains("likely on our side"), "{text}");
    let side = r.admin_plane.explanation.clone().unwrap_or_default();
    assert!(
        side.contains("likely on our side"),
        "admin plane explains too: {side}"
    );

    let site_degraded = answered("site", t0(), &[("mac", Health::Advisory)]);
    let r = resolve_once(&spec, vec![primary, site_degraded], t0() + secs(5));
    let text = r.primary.explanation.unwrap_or_default();
    assert!(text.contains("Microsoft's admin plane"), "{text}");
}

#[test]
fn rule7_incidents_merge_across_channels_by_id() {
    let spec = target(&["a", "b"]);
    let incident = |title: &str, started: DateTime<Utc>| IncidentObservation {
        id: Some("EX571516".into()),
        title: title.into(),
        service: Some("Exchange".into()),
        classification: IncidentClassification::Incident,
        status: "Investigating".into(),
        resolved: false,
        started_at: Some(started),
        updated_at: Some(started),
        summary: None,
    };
    let mut a = observation("a", t0(), &[("Exchange", Health::Incident)]);
    a.incidents.push(incident("Mail delays (from a)", t0()));
    let mut b = observation("b", t0(), &[("Exchange", Health::Incident)]);
    b.incidents
        .push(incident("Mail delays (from b)", t0() - secs(600)));
    let mut ra = channel("a");
    ra.record(Ok(a), t0());
    let mut rb = channel("b");
    rb.record(Ok(b), t0());
    let r = resolve_once(&spec, vec![ra, rb], t0());
    assert_eq!(r.incidents.len(), 1);
    let merged = &r.incidents[0];
    assert_eq!(
        &*merged.title, "Mail delays (from a)",
        "the higher channel's title wins"
    );
    assert_eq!(merged.sources, vec!["a", "b"]);
    assert_eq!(merged.started_at, Some(t0() - secs(600)), "earliest start");
    assert_eq!(service(&r, "Exchange").incidents, vec!["EX571516"]);
}

#[test]
fn rule8_recovery_waits_for_two_observations_and_each_counts_once() {
    let spec = target(&["a"]);
    let policy = Policy::default();
    let round = |memory: &TargetMemory, at: DateTime<Utc>, health: Health| {
        let records = table(vec![answered("a", at, &[("mac", health)])]);
        resolve_target(&spec, &records, memory, &policy, at)
    };
    let (r, m) = round(&TargetMemory::default(), t0(), Health::Incident);
    assert_eq!(service(&r, "mac").verdict, Health::Incident);
    let (r, m1) = round(&m, t0() + secs(60), Health::Operational);
    assert_eq!(
        service(&r, "mac").verdict,
        Health::Incident,
        "one good answer is not enough"
    );
    assert!(
        service(&r, "mac")
            .annotations
            .iter()
            .any(|a| a.contains("hysteresis"))
    );
    // Resolving again on the same observation does not count twice.
    let same = table(vec![answered(
        "a",
        t0() + secs(60),
        &[("mac", Health::Operational)],
    )]);
    let (r, m2) = resolve_target(&spec, &same, &m1, &policy, t0() + secs(70));
    assert_eq!(service(&r, "mac").verdict, Health::Incident);
    let (r, _) = round(&m2, t0() + secs(120), Health::Operational);
    assert_eq!(service(&r, "mac").verdict, Health::Operational);
    // Getting worse is immediate with the default fail_threshold of 1.
    let (r, _) = round(&m, t0() + secs(60), Health::Incident);
    assert_eq!(service(&r, "mac").verdict, Health::Incident);
}

#[test]
fn without_the_primary_a_target_is_never_operational_but_an_incident_still_shows() {
    let spec = target(&["primary", "backup"]);
    let down = failed(channel("primary"), t0());
    let r = resolve_once(
        &spec,
        vec![
            down.clone(),
            answered("backup", t0(), &[("mac", Health::Operational)]),
        ],
        t0(),
    );
    assert_eq!(r.visibility, Visibility::Degraded);
    assert_eq!(
        service(&r, "mac").verdict,
        Health::Operational,
        "the fallback's own word stands"
    );
    assert_eq!(
        r.verdict,
        Health::Unknown,
        "what only the primary covers is unseen"
    );
    let r = resolve_once(
        &spec,
        vec![down, answered("backup", t0(), &[("mac", Health::Incident)])],
        t0(),
    );
    assert_eq!(r.verdict, Health::Incident);
}

#[test]
fn rollup_an_incident_outranks_unknown_which_outranks_an_advisory() {
    let spec = target(&["a"]);
    let r = resolve_once(
        &spec,
        vec![answered(
            "a",
            t0(),
            &[("x", Health::Advisory), ("y", Health::Unknown)],
        )],
        t0(),
    );
    assert_eq!(r.verdict, Health::Unknown);
    let r = resolve_once(
        &spec,
        vec![answered(
            "a",
            t0(),
            &[("x", Health::Incident), ("y", Health::Unknown)],
        )],
        t0(),
    );
    assert_eq!(r.verdict, Health::Incident);
}

// ---- properties over random multi-round histories ----

const SERVICES: [&str; 4] = ["mac", "ppac", "Exchange", "Teams"];
const CHANNELS: [&str; 3] = ["c0", "c1", "c2"];

#[derive(Debug, Clone)]
enum Condition {
    Answered(Vec<Option<Health>>),
    Failing,
    Stale,
    Disabled,
    NeverProbed,
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        Just(Health::Operational),
        Just(Health::Maintenance),
        Just(Health::Advisory),
        Just(Health::Incident),
        Just(Health::Unknown),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => prop::collection::vec(prop::option::of(health()), SERVICES.len()).prop_map(Condition::Answered),
        1 => Just(Condition::Failing),
        1 => Just(Condition::Stale),
        1 => Just(Condition::Disabled),
        1 => Just(Condition::NeverProbed),
    ]
}

fn build(
    round: usize,
    conditions: &[Condition],
) -> (DateTime<Utc>, BTreeMap<String, ChannelRecord>) {
    let now = t0() + secs(60 * round as i64);
    let records = CHANNELS
        .iter()
        .zip(conditions)
        .map(|(id, condition)| {
            let said = |c: &Vec<Option<Health>>| -> Vec<(&str, Health)> {
                SERVICES
                    .iter()
                    .zip(c)
                    .filter_map(|(s, h)| h.map(|h| (*s, h)))
                    .collect()
            };
            match condition {
                Condition::Answered(c) => answered(id, now, &said(c)),
                Condition::Failing => failed(
                    answered(id, now - secs(30), &[("mac", Health::Operational)]),
                    now,
                ),
                Condition::Stale => answered(id, now - secs(3600), &[("mac", Health::Operational)]),
                Condition::Disabled => {
                    let mut r = channel(id);
                    r.disabled = Some("switched off".into());
                    r
                }
                Condition::NeverProbed => channel(id),
            }
        })
        .map(|r| (r.id.clone(), r))
        .collect();
    (now, records)
}

fn history() -> impl Strategy<Value = (Vec<Vec<Condition>>, u32, u32, usize)> {
    (
        prop::collection::vec(prop::collection::vec(condition(), CHANNELS.len()), 1..6),
        1u32..4,
        1u32..4,
        1usize..=CHANNELS.len(),
    )
}

/// The statement a fresh channel makes about a service, if a usable one.
fn fresh_statement(record: &ChannelRecord, now: DateTime<Utc>, service: &str) -> Option<Health> {
    if record.state(now) != ChannelState::Fresh {
        return None;
    }
    record
        .observation
        .as_ref()?
        .services
        .iter()
        .find(|s| s.id == service)
        .map(|s| s.health)
        .filter(|h| *h != Health::Unknown)
}

/// One round of a replayed history, as the properties see it.
struct Round<'a> {
    spec: &'a TargetSpec,
    policy: &'a Policy,
    now: DateTime<Utc>,
    records: &'a BTreeMap<String, ChannelRecord>,
    /// The memory the round started from.
    memory: &'a TargetMemory,
    resolution: &'a TargetResolution,
}

/// Resolves a random history round by round, carrying memory, and checks every round.
fn replay(
    (rounds, fail, recover, width): (Vec<Vec<Condition>>, u32, u32, usize),
    check: impl Fn(&Round<'_>) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let spec = target(&CHANNELS[..width]);
    let policy = Policy {
        fail_threshold: fail,
        recover_threshold: recover,
    };
    let mut memory = TargetMemory::default();
    for (i, conditions) in rounds.iter().enumerate() {
        let (now, records) = build(i, conditions);
        let (resolution, next) = resolve_target(&spec, &records, &memory, &policy, now);
        check(&Round {
            spec: &spec,
            policy: &policy,
            now,
            records: &records,
            memory: &memory,
            resolution: &resolution,
        })?;
        memory = next;
    }
    Ok(())
}

fn any_fresh_statement(round: &Round<'_>, service: &str) -> bool {
    round
        .spec
        .channels
        .iter()
        .filter_map(|c| round.records.get(c))
        .any(|rec| fresh_statement(rec, round.now, service).is_some())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn silence_never_yields_operational(history in history()) {
        replay(history, |round| {
            for s in &round.resolution.services {
                if !any_fresh_statement(round, &s.id) {
                    prop_assert_ne!(s.verdict, Health::Operational, "service {} green by silence", s.id);
                    prop_assert_eq!(s.verdict, Health::Unknown);
                }
                if s.verdict == Health::Operational && round.policy.fail_threshold == 1 {
                    let decider = s.source.as_ref().and_then(|c| round.records.get(c));
                    prop_assert_eq!(
                        decider.and_then(|rec| fresh_statement(rec, round.now, &s.id)),
                        Some(Health::Operational)
                    );
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn no_fresh_channel_means_blind_unknown_with_last_known_shown(history in history()) {
        replay(history, |round| {
            let r = round.resolution;
            let any_fresh = round.spec.channels.iter()
                .filter_map(|c| round.records.get(c))
                .any(|rec| rec.state(round.now) == ChannelState::Fresh);
            if any_fresh {
                return Ok(());
            }
            prop_assert_eq!(r.visibility, Visibility::Blind);
            prop_assert_eq!(r.verdict, Health::Unknown);
            prop_assert_eq!(r.source.clone(), None);
            for s in &r.services {
                prop_assert_eq!(s.verdict, Health::Unknown);
                let remembered = round.memory.services.get(&s.id).and_then(|m| m.last_known.clone());
                prop_assert_eq!(&s.last_known, &remembered, "last known of {} not shown", s.id);
            }
            for id in round.memory.services.keys() {
                prop_assert!(r.services.iter().any(|s| &s.id == id), "{} vanished while blind", id);
            }
            Ok(())
        })?;
    }

    #[test]
    fn a_fresh_higher_channel_is_never_overridden(history in history()) {
        replay(history, |round| {
            for s in &round.resolution.services {
                let expected = round.spec.channels.iter().find(|c| {
                    round.records.get(*c).is_some_and(|rec| fresh_statement(rec, round.now, &s.id).is_some())
                });
                prop_assert_eq!(s.source.as_ref(), expected, "wrong source for {}", s.id);
                if let Some(position) = expected.and_then(|e| round.spec.channels.iter().position(|c| c == e)) {
                    let want = if position == 0 { Confidence::High } else { Confidence::Medium };
                    prop_assert_eq!(s.confidence, want);
                }
            }
            Ok(())
        })?;
    }
}

#[test]
fn the_exit_code_follows_the_worst_target_an_incident_before_unknown() {
    use statusmon::status::StatusDocument;
    let spec = target(&["a"]);
    let with = |health| resolve_once(&spec, vec![answered("a", t0(), &[("x", health)])], t0());
    let blind = resolve_once(&spec, vec![failed(channel("a"), t0())], t0());
    let code = |targets: Vec<TargetResolution>| {
        let targets = targets.into_iter().map(std::sync::Arc::new).collect();
        let document = StatusDocument {
            generated_at: t0(),
            targets,
            channels: Vec::new(),
        };
        document.exit_code()
    };
    assert_eq!(code(vec![blind.clone(), with(Health::Incident)]), 2);
    assert_eq!(code(vec![with(Health::Advisory), blind]), 3);
    assert_eq!(
        code(vec![with(Health::Operational), with(Health::Maintenance)]),
        1
    );
    assert_eq!(code(vec![with(Health::Operational)]), 0);
    assert_eq!(code(Vec::new()), 3, "nothing checked is unknown");
}

/// Two targets on a site channel each, for the engine's reuse of unchanged resolutions.
fn two_target_engine() -> statusmon::engine::Engine {
    let text = "[[channels]]\nid = \"a\"\nkind = \"m365_status_site\"\ninterval = \"2m\"\n\
                [[channels]]\nid = \"b\"\nkind = \"m365_status_site\"\ninterval = \"2m\"\n\
                [[targets]]\nid = \"t1\"\nchannels = [\"a\"]\n\
                [[targets]]\nid = \"t2\"\nchannels = [\"b\"]\n";
    let config = statusmon::config::parse(text, std::path::Path::new("t.toml"), std::iter::empty())
        .expect("valid");
    let client = reqwest::Client::new();
    statusmon::engine::Engine::new(std::sync::Arc::new(config), &client)
}

#[test]
fn an_engine_reusing_unchanged_targets_resolves_as_a_full_resolution_would() {
    let mut reusing = two_target_engine();
    let mut full = two_target_engine();
    let history: [(i64, &str, Health); 3] = [
        (0, "a", Health::Operational),
        (0, "b", Health::Operational),
        (60, "a", Health::Incident),
    ];
    let mut previous: Option<statusmon::status::StatusDocument> = None;
    let mut check = |reusing: &mut statusmon::engine::Engine,
                     full: &mut statusmon::engine::Engine,
                     at: DateTime<Utc>| {
        let kept = reusing.resolve_reusing(at, previous.as_ref());
        let fresh = full.resolve(at);
        assert_eq!(kept, fresh, "at {at}");
        previous = Some(reusing.document(kept, at));
        fresh
    };
    for (offset, channel, health) in history {
        let at = t0() + secs(offset);
        for engine in [&mut reusing, &mut full] {
            engine.record(
                channel,
                Ok(observation(channel, at, &[("Exchange", health)])),
                at,
            );
        }
        check(&mut reusing, &mut full, at);
    }
    // t1 changed with its channel, t2 was kept; nothing was recorded since, but at 10 minutes
    // b (max age 6m) has gone stale: t2 must be resolved again, not kept.
    let later = check(&mut reusing, &mut full, t0() + secs(600));
    let t2 = later.iter().find(|t| t.id == "t2").expect("t2");
    assert_eq!(t2.visibility, Visibility::Blind, "{t2:?}");
    assert_eq!(t2.verdict, Health::Unknown);
}

#[test]
fn a_document_repeats_an_unmoved_channels_report_and_remakes_a_moved_one() {
    use std::sync::Arc;
    let mut engine = two_target_engine();
    let report = |document: &statusmon::status::StatusDocument, id: &str| {
        let found = document.channels.iter().find(|c| c.id == id);
        Arc::clone(found.expect("a report per channel"))
    };
    for channel in ["a", "b"] {
        let answer = observation(channel, t0(), &[("Exchange", Health::Operational)]);
        engine.record(channel, Ok(answer), t0());
    }
    let targets = engine.resolve(t0());
    let first = engine.document(targets, t0());

    let later = t0() + secs(60);
    let answer = observation("a", later, &[("Exchange", Health::Operational)]);
    engine.record("a", Ok(answer), later);
    let targets = engine.resolve(later);
    let second = engine.document(targets, later);
    assert!(
        Arc::ptr_eq(&report(&first, "b"), &report(&second, "b")),
        "b neither answered nor changed state: its report is repeated"
    );
    assert!(!Arc::ptr_eq(&report(&first, "a"), &report(&second, "a")));
    assert_eq!(report(&second, "a").last_success, Some(later));

    // Nothing recorded since, but at 10 minutes b (max age 6m) is stale: a new report says so.
    let stale_at = t0() + secs(600);
    let targets = engine.resolve(stale_at);
    let third = engine.document(targets, stale_at);
    assert_eq!(report(&third, "b").state, ChannelState::Stale);
    assert_eq!(report(&second, "b").state, ChannelState::Fresh);
}
