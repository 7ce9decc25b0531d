//! The resolver with social channels (design §3 rules 3, 5 and 9): posts warn, decide only while
//! the primary is down, are always `low` confidence and never make anything operational.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use statusmon::resolver::{
    ChannelRecord, ChannelState, Confidence, Policy, TargetMemory, TargetResolution, TargetSpec,
    Visibility, resolve_target,
};
use statusmon_channels::{ChannelKind, Health, ProbeError};

use crate::resolver::{observation, t0};

const SERVICES: [&str; 4] = ["Exchange", "microsoftteams", "SharePoint", "OSDPPlatform"];

fn record(id: &str, kind: ChannelKind) -> ChannelRecord {
    ChannelRecord::new(id, kind, Duration::from_secs(180))
}

fn answered(
    id: &str,
    kind: ChannelKind,
    at: DateTime<Utc>,
    services: &[(&str, Health)],
) -> ChannelRecord {
    let mut r = record(id, kind);
    r.record(Ok(observation(id, at, services)), at);
    r
}

fn failing(mut r: ChannelRecord, at: DateTime<Utc>) -> ChannelRecord {
    r.record(
        Err(ProbeError::Http {
            what: "GET /v1.0/admin/serviceAnnouncement/healthOverviews".into(),
            status: 503,
            hint: None,
            retry_after: None,
        }),
        at,
    );
    r
}

fn spec() -> TargetSpec {
    TargetSpec {
        id: "contoso".into(),
        name: "Contoso".into(),
        channels: vec!["graph".into(), "site".into(), "x".into()],
    }
}

fn table(records: Vec<ChannelRecord>) -> BTreeMap<String, ChannelRecord> {
    records.into_iter().map(|r| (r.id.clone(), r)).collect()
}

fn resolve(
    records: &BTreeMap<String, ChannelRecord>,
    memory: &TargetMemory,
    now: DateTime<Utc>,
) -> (TargetResolution, TargetMemory) {
    resolve_target(&spec(), records, memory, &Policy::default(), now)
}

fn service<'a>(r: &'a TargetResolution, id: &str) -> &'a statusmon::resolver::ServiceResolution {
    r.services
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("service {id} missing from {r:#?}"))
}

#[test]
fn while_the_primary_is_fresh_social_posts_only_annotate() {
    let now = t0();
    let records = table(vec![
        answered(
            "graph",
            ChannelKind::Graph,
            now,
            &[
                ("Exchange", Health::Operational),
                ("microsoftteams", Health::Operational),
            ],
        ),
        answered(
            "x",
            ChannelKind::X,
            now,
            &[
                ("Exchange", Health::Incident),
                ("OSDPPlatform", Health::Incident),
            ],
        ),
    ]);
    let (r, _) = resolve(&records, &TargetMemory::default(), now);
    assert_eq!(r.visibility, Visibility::Full);
    assert_eq!(r.verdict, Health::Operational, "{r:#?}");
    let exchange = service(&r, "Exchange");
    assert_eq!(exchange.verdict, Health::Operational);
    assert_eq!(exchange.source.as_deref(), Some("graph"));
    assert!(
        exchange
            .annotations
            .iter()
            .any(|a| a.starts_with("unconfirmed report on x: incident")),
        "{:?}",
        exchange.annotations
    );
    assert!(
        !r.services.iter().any(|s| s.id == "OSDPPlatform"),
        "a service only a social channel mentions gets no line of its own while the primary is fresh"
    );
}

#[test]
fn with_the_primary_down_a_post_decides_what_no_official_channel_covers_at_low_confidence() {
    let before = t0();
    let now = before + chrono::TimeDelta::seconds(60);
    // Round 1: Graph answers; round 2: Graph fails, the site covers only the admin center, X
    // reports an Exchange incident.
    let round1 = table(vec![answered(
        "graph",
        ChannelKind::Graph,
        before,
        &[
            ("Exchange", Health::Operational),
            ("microsoftteams", Health::Operational),
        ],
    )]);
    let (_, memory) = resolve(&round1, &TargetMemory::default(), before);
    let round2 = table(vec![
        failing(
            answered(
                "graph",
                ChannelKind::Graph,
                before,
                &[("Exchange", Health::Operational)],
            ),
            now,
        ),
        answered(
            "site",
            ChannelKind::M365StatusSite,
            now,
            &[("mac", Health::Advisory)],
        ),
        answered(
            "x",
            ChannelKind::X,
            now,
            &[("Exchange", Health::Incident), ("mac", Health::Incident)],
        ),
    ]);
    let (r, _) = resolve(&round2, &memory, now);
    assert_eq!(r.visibility, Visibility::Degraded);
    let exchange = service(&r, "Exchange");
    assert_eq!(exchange.verdict, Health::Incident);
    assert_eq!(exchange.source.as_deref(), Some("x"));
    assert_eq!(exchange.confidence, Confidence::Low);
    // The official site still outranks the post where it speaks.
    let mac = service(&r, "mac");
    assert_eq!(mac.source.as_deref(), Some("site"));
    assert_eq!(mac.verdict, Health::Advisory);
    assert!(
        mac.annotations
            .iter()
            .any(|a| a.contains("unconfirmed report on x")),
        "{:?}",
        mac.annotations
    );
    let teams = service(&r, "microsoftteams");
    assert_eq!(teams.verdict, Health::Unknown);
    assert_eq!(r.verdict, Health::Incident);
}

#[test]
fn out_of_credits_is_disabled_with_the_reason() {
    let now = t0();
    let mut x = answered("x", ChannelKind::X, now, &[("Exchange", Health::Incident)]);
    x.record(
        Err(ProbeError::Credits {
            message: "X says the account has no credits left (402 CreditsDepleted)".into(),
        }),
        now,
    );
    assert_eq!(x.state(now), ChannelState::Disabled);
    assert!(
        x.disabled_reason()
            .is_some_and(|m| m.contains("402 CreditsDepleted"))
    );
    // A later good answer (credits bought) brings it back.
    x.record(Ok(observation("x", now, &[])), now);
    assert_eq!(x.state(now), ChannelState::Fresh);
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

fn statements() -> impl Strategy<Value = Vec<Option<Health>>> {
    prop::collection::vec(prop::option::of(health()), SERVICES.len())
}

fn pairs(statements: &[Option<Health>]) -> Vec<(&'static str, Health)> {
    SERVICES
        .iter()
        .zip(statements)
        .filter_map(|(s, h)| h.map(|h| (*s, h)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Whatever the official channels said before and whatever the social channel says now (even
    /// a malformed "operational" no real social channel emits), with only the social channel
    /// fresh nothing is operational and every verdict is low confidence.
    #[test]
    fn with_only_social_fresh_nothing_is_operational_and_everything_is_low(
        earlier in prop::collection::vec((statements(), statements()), 0..4),
        social in statements(),
        primary_failing in any::<bool>(),
        fail_threshold in 1u32..4,
        recover_threshold in 1u32..4,
    ) {
        let policy = Policy { fail_threshold, recover_threshold };
        let mut memory = TargetMemory::default();
        let mut now = t0();
        for (graph, site) in &earlier {
            let records = table(vec![
                answered("graph", ChannelKind::Graph, now, &pairs(graph)),
                answered("site", ChannelKind::M365StatusSite, now, &pairs(site)),
            ]);
            memory = resolve_target(&spec(), &records, &memory, &policy, now).1;
            now += chrono::TimeDelta::seconds(60);
        }
        let later = now + chrono::TimeDelta::seconds(3600);
        let graph = answered("graph", ChannelKind::Graph, now, &[("Exchange", Health::Operational)]);
        let graph = if primary_failing { failing(graph, later) } else { graph };
        let records = table(vec![
            graph,
            answered("site", ChannelKind::M365StatusSite, now, &[("mac", Health::Operational)]),
            answered("x", ChannelKind::X, later, &pairs(&social)),
        ]);
        let (r, _) = resolve_target(&spec(), &records, &memory, &policy, later);
        prop_assert_eq!(r.visibility, Visibility::Degraded);
        prop_assert_eq!(r.confidence, Confidence::Low);
        prop_assert_ne!(r.verdict, Health::Operational);
        for s in &r.services {
            prop_assert_ne!(s.verdict, Health::Operational, "{} operational from {:?}", &s.id, &s.source);
            prop_assert_eq!(s.confidence, Confidence::Low, "{} is not low", &s.id);
            if s.verdict != Health::Unknown {
                prop_assert_eq!(s.source.as_deref(), Some("x"));
            }
        }
    }
}
