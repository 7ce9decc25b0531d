//! The social channels end to end, as users see them in the status document: every X error body
//! we have on record maps to the right channel state and message; with only a social channel
//! fresh nothing is operational and everything is low confidence; every social kind reads the
//! simulator's incident thread into one incident.

use std::path::{Path, PathBuf};
use std::time::Duration;

use statusmon::config::{self, Config};
use statusmon::resolver::{ChannelState, Confidence, Visibility};
use statusmon::simulator::{
    self, GraphScenario, SIM_BLUESKY_HANDLE, SIM_CLIENT_SECRET, SIM_FEED_PATH, SIM_INCIDENT_ID,
    SIM_MASTODON_ACCT, SIM_NO_IDS_INCIDENT_ID, SIM_X_BEARER_TOKEN, Scenario, SimHandle,
    SocialScenario, SocialSim,
};
use statusmon::status::{ChannelReport, StatusDocument};
use statusmon_channels::{ErrorClass, Health};

use crate::support::{Reply, mock, status_document};

fn parse(text: &str, env: &[(&str, &str)]) -> Config {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config::parse(text, Path::new("test.toml"), env).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn x_config(base_url: &str, token: Option<&str>) -> Config {
    let text = format!(
        "[[channels]]\nid = \"msft365status-x\"\nkind = \"x\"\nbase_url = \"{base_url}\"\n\
         interval = \"1m\"\ntimeout = \"2s\"\n\
         [[targets]]\nid = \"t\"\nchannels = [\"msft365status-x\"]\n"
    );
    let env: Vec<(&str, &str)> = token
        .map(|t| ("STATUSMON_CHANNEL__MSFT365STATUS_X__BEARER_TOKEN", t))
        .into_iter()
        .collect();
    parse(&text, &env)
}

fn channel<'a>(document: &'a StatusDocument, id: &str) -> &'a ChannelReport {
    document
        .channels
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("channel {id} missing"))
}

/// The X error bodies: in-repo copies, checked against the shared recordings when present.
fn x_fixture(name: &str) -> Vec<u8> {
    let in_repo: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("channels/tests/fixtures/social/x")
        .join(name);
    let body = std::fs::read(&in_repo).unwrap_or_else(|e| panic!("{}: {e}", in_repo.display()));
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/social")
        .join(name);
    match std::fs::read(&shared) {
        Ok(recorded) => assert_eq!(
            body, recorded,
            "{name}: in-repo copy differs from the shared one"
        ),
        Err(_) => eprintln!(
            "note: {} is absent; using the in-repo copy",
            shared.display()
        ),
    }
    body
}

#[tokio::test]
async fn every_x_error_body_maps_to_a_channel_state_and_a_message_saying_why() {
    // (fixture, HTTP status, state, class, words the message must carry)
    let cases: &[(&str, u16, ChannelState, ErrorClass, &[&str])] = &[
        (
            "x-v2-error-401-unauthorized.json",
            401,
            ChannelState::Failing,
            ErrorClass::Auth,
            &["bearer token refused"],
        ),
        (
            "x-v2-error-402-credits-depleted.json",
            402,
            ChannelState::Disabled,
            ErrorClass::Credits,
            &["CreditsDepleted", "no credits", "until credits are added"],
        ),
        (
            "x-v2-error-403-client-forbidden.json",
            403,
            ChannelState::Failing,
            ErrorClass::Auth,
            &["client-not-enrolled", "Project"],
        ),
        (
            "x-v2-error-429-too-many-requests.json",
            429,
            ChannelState::Failing,
            ErrorClass::Throttled,
            &["rate limit", "resets in"],
        ),
        (
            "x-v2-error-429-rate-limit.docs-example.json",
            429,
            ChannelState::Failing,
            ErrorClass::Throttled,
            &["rate limit"],
        ),
        (
            "x-v2-error-429-usage-capped.json",
            429,
            ChannelState::Disabled,
            ErrorClass::Credits,
            &["UsageCapExceeded", "retrying will not help"],
        ),
        (
            "x-v2-error-400-invalid-request.docs-example.json",
            400,
            ChannelState::Failing,
            ErrorClass::Http,
            &["HTTP 400"],
        ),
    ];
    let reset = (chrono::Utc::now().timestamp() + 120).to_string();
    for (name, status, state, class, words) in cases {
        let upstream = mock(vec![
            (
                "/2/users/by/username/",
                Reply::json(x_fixture("x-v2-users-by-username.recorded.json")),
            ),
            (
                "/2/users/",
                Reply::new(*status, "application/problem+json", x_fixture(name))
                    .header("x-rate-limit-remaining", "0")
                    .header("x-rate-limit-reset", &reset),
            ),
        ])
        .await;
        let document =
            status_document(x_config(&upstream.base_url, Some(SIM_X_BEARER_TOKEN))).await;
        let x = channel(&document, "msft365status-x");
        assert_eq!(x.state, *state, "{name}: {x:?}");
        let error = x
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(error.class, *class, "{name}: {}", error.message);
        for word in *words {
            assert!(
                error.message.contains(word),
                "{name}: {:?} lacks {word:?}",
                error.message
            );
        }
        assert!(
            !error.message.contains(SIM_X_BEARER_TOKEN),
            "{name}: token in message"
        );
        if *state == ChannelState::Disabled {
            assert_eq!(x.disabled_reason.as_deref(), Some(error.message.as_str()));
        }
        let target = &document.targets[0];
        assert_eq!(target.visibility, Visibility::Blind, "{name}");
        assert_eq!(target.verdict, Health::Unknown, "{name}");
    }
}

#[tokio::test]
async fn a_200_with_errors_beside_its_data_keeps_the_data_and_shows_the_errors() {
    let upstream = mock(vec![
        (
            "/2/users/by/username/",
            Reply::json(x_fixture("x-v2-users-by-username.recorded.json")),
        ),
        (
            "/2/users/",
            Reply::json(
                r#"{"data":[{"id":"1861234567890123456","text":"We're investigating an issue affecting Microsoft Teams. TM1234567","created_at":"2026-11-25T10:00:00.000Z","conversation_id":"1861234567890123456"}],
                    "errors":[{"resource_id":"456","resource_type":"tweet","title":"Not Found Error","detail":"Could not find tweet with id: [456].","type":"https://api.x.com/2/problems/resource-not-found"}],
                    "meta":{"result_count":1,"newest_id":"1861234567890123456","oldest_id":"1861234567890123456"}}"#,
            ),
        ),
    ])
    .await;
    let document = status_document(x_config(&upstream.base_url, Some(SIM_X_BEARER_TOKEN))).await;
    let x = channel(&document, "msft365status-x");
    assert_eq!(x.state, ChannelState::Fresh, "{x:?}");
    assert!(
        x.faults
            .iter()
            .any(|f| f.error.message.contains("Could not find tweet")),
        "{:?}",
        x.faults
    );
    assert!(
        document.targets[0]
            .incidents
            .iter()
            .any(|i| i.id == "TM1234567")
    );
}

#[tokio::test]
async fn without_a_token_the_x_channel_is_disabled_and_says_what_to_set() {
    let document = status_document(x_config("http://127.0.0.1:9", None)).await;
    let x = channel(&document, "msft365status-x");
    assert_eq!(x.state, ChannelState::Disabled);
    let message = &x.error.as_ref().expect("an error saying why").message;
    assert!(
        message.contains("STATUSMON_CHANNEL__MSFT365STATUS_X__BEARER_TOKEN"),
        "{message}"
    );
    assert_eq!(document.targets[0].visibility, Visibility::Blind);
}

async fn social_sim(scenario: SocialScenario, graph: GraphScenario) -> SimHandle {
    simulator::start_with_social(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Scenario::Healthy,
        graph,
        SocialSim::new(scenario).with_step(Duration::from_secs(3600)),
    )
    .await
    .expect("the simulator binds an ephemeral loopback port")
}

/// Reveals the rest of the scenario's thread now.
fn reveal_all(sim: &SimHandle, scenario: SocialScenario) {
    for _ in 1..scenario.thread_len() {
        sim.advance_social();
    }
}

/// Graph (primary) and X, both on the simulator.
fn graph_and_x(base_url: &str) -> Config {
    let text = format!(
        "[[channels]]\nid = \"contoso-graph\"\nkind = \"graph\"\ntenant_id = \"contoso.onmicrosoft.com\"\n\
         client_id = \"test\"\nauthority = \"{base_url}\"\ngraph_url = \"{base_url}\"\ntimeout = \"2s\"\n\
         [[channels]]\nid = \"msft365status-x\"\nkind = \"x\"\nbase_url = \"{base_url}\"\ntimeout = \"2s\"\n\
         [[targets]]\nid = \"contoso\"\nchannels = [\"contoso-graph\", \"msft365status-x\"]\n"
    );
    parse(
        &text,
        &[
            (
                "STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET",
                SIM_CLIENT_SECRET,
            ),
            (
                "STATUSMON_CHANNEL__MSFT365STATUS_X__BEARER_TOKEN",
                SIM_X_BEARER_TOKEN,
            ),
        ],
    )
}

#[tokio::test]
async fn with_only_x_fresh_posts_warn_at_low_confidence_and_nothing_is_operational() {
    let sim = social_sim(SocialScenario::Incident, GraphScenario::Failing).await;
    // Up to the ETA post ("we expect … will be resolved by …"): still open.
    for _ in 0..3 {
        sim.advance_social();
    }
    let document = status_document(graph_and_x(&sim.base_url())).await;
    let target = &document.targets[0];
    assert_eq!(target.visibility, Visibility::Degraded);
    assert_eq!(target.source.as_deref(), Some("msft365status-x"));
    assert_eq!(target.confidence, Confidence::Low);
    assert_eq!(target.verdict, Health::Incident, "{target:#?}");
    assert!(!target.services.is_empty());
    for service in &target.services {
        assert_ne!(service.verdict, Health::Operational, "{}", service.id);
        assert_eq!(service.confidence, Confidence::Low, "{}", service.id);
    }
    let incident = target
        .incidents
        .iter()
        .find(|i| i.id == SIM_INCIDENT_ID)
        .expect("the thread's incident");
    assert!(
        !incident.resolved,
        "an ETA is not a resolution: {incident:?}"
    );
    assert_eq!(incident.sources, ["msft365status-x"]);

    // The thread ends with "impact has been remediated": resolved, and still nothing operational.
    reveal_all(&sim, SocialScenario::Incident);
    let document = status_document(graph_and_x(&sim.base_url())).await;
    let target = &document.targets[0];
    let incident = target
        .incidents
        .iter()
        .find(|i| i.id == SIM_INCIDENT_ID)
        .expect("the thread's incident");
    assert!(incident.resolved, "{incident:?}");
    assert!(
        target
            .services
            .iter()
            .all(|s| s.verdict != Health::Operational && s.confidence == Confidence::Low)
    );
    assert_ne!(target.verdict, Health::Operational);
    sim.shutdown().await;
}

#[tokio::test]
async fn with_graph_fresh_posts_only_annotate_and_their_incident_is_listed() {
    let sim = social_sim(SocialScenario::Incident, GraphScenario::Healthy).await;
    let document = status_document(graph_and_x(&sim.base_url())).await;
    let target = &document.targets[0];
    assert_eq!(target.visibility, Visibility::Full);
    assert_eq!(target.verdict, Health::Operational, "{target:#?}");
    let suite = target
        .services
        .iter()
        .find(|s| s.id == "OSDPPlatform")
        .expect("Graph lists the Microsoft 365 suite");
    assert_eq!(suite.source.as_deref(), Some("contoso-graph"));
    assert!(
        suite
            .annotations
            .iter()
            .any(|a| a.starts_with("unconfirmed report on msft365status-x: incident")),
        "{:?}",
        suite.annotations
    );
    assert!(target.incidents.iter().any(|i| i.id == SIM_INCIDENT_ID));
    sim.shutdown().await;
}

#[tokio::test]
async fn credits_depleted_on_the_simulator_disables_the_channel_with_the_reason() {
    let sim = social_sim(SocialScenario::CreditsDepleted, GraphScenario::Healthy).await;
    let document = status_document(graph_and_x(&sim.base_url())).await;
    let x = channel(&document, "msft365status-x");
    assert_eq!(x.state, ChannelState::Disabled);
    let error = x.error.as_ref().expect("why");
    assert_eq!(error.class, ErrorClass::Credits);
    assert!(error.message.contains("no credits"), "{}", error.message);
    // Graph is unaffected: the target is fully visible.
    assert_eq!(document.targets[0].visibility, Visibility::Full);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_social_kind_reads_the_same_thread_and_follow_ups_inherit_the_roots_id() {
    let sim = social_sim(SocialScenario::IncidentNoIds, GraphScenario::Healthy).await;
    reveal_all(&sim, SocialScenario::IncidentNoIds);
    let base = sim.base_url();
    let text = format!(
        "[[channels]]\nid = \"x\"\nkind = \"x\"\nbase_url = \"{base}\"\ntimeout = \"2s\"\n\
         [[channels]]\nid = \"masto\"\nkind = \"mastodon\"\nbase_url = \"{base}\"\naccount = \"{SIM_MASTODON_ACCT}\"\ntimeout = \"2s\"\n\
         [[channels]]\nid = \"bsky\"\nkind = \"bluesky\"\nbase_url = \"{base}\"\nactor = \"{SIM_BLUESKY_HANDLE}\"\ntimeout = \"2s\"\n\
         [[channels]]\nid = \"atom\"\nkind = \"feed\"\nurl = \"{base}{SIM_FEED_PATH}\"\ntimeout = \"2s\"\n\
         [[targets]]\nid = \"x\"\nchannels = [\"x\"]\n\
         [[targets]]\nid = \"masto\"\nchannels = [\"masto\"]\n\
         [[targets]]\nid = \"bsky\"\nchannels = [\"bsky\"]\n\
         [[targets]]\nid = \"atom\"\nchannels = [\"atom\"]\n"
    );
    let config = parse(
        &text,
        &[("STATUSMON_CHANNEL__X__BEARER_TOKEN", SIM_X_BEARER_TOKEN)],
    );
    let document = status_document(config).await;
    for c in &document.channels {
        assert_eq!(c.state, ChannelState::Fresh, "{c:?}");
    }
    for target in &document.targets {
        let thread: Vec<_> = target
            .incidents
            .iter()
            .filter(|i| i.id == SIM_NO_IDS_INCIDENT_ID)
            .collect();
        assert_eq!(thread.len(), 1, "{}: {:#?}", target.id, target.incidents);
        let incident = thread[0];
        // The thread ends open ("until impact has been resolved"): never resolved.
        assert!(!incident.resolved, "{}: {incident:?}", target.id);
        assert_ne!(incident.status, "resolved");
        // Its latest post carries no id, yet it is the incident's summary.
        let summary = incident.summary.as_deref().unwrap_or("");
        assert!(
            !summary.contains(SIM_NO_IDS_INCIDENT_ID),
            "{}: {summary}",
            target.id
        );
        let teams = target
            .services
            .iter()
            .find(|s| s.id == "microsoftteams")
            .unwrap_or_else(|| panic!("{}: no Teams statement: {:#?}", target.id, target.services));
        assert_ne!(teams.verdict, Health::Operational);
        assert_eq!(teams.confidence, Confidence::Low);
        assert!(
            teams
                .incidents
                .contains(&SIM_NO_IDS_INCIDENT_ID.to_string())
        );
    }
    sim.shutdown().await;
}
