//! The Graph channel as users see it, end to end against the built-in simulator: verdicts and
//! error classes per scenario, failover to the public site with its explanation, secrets kept out
//! of every output, shared channels probed once for many tenants, and the request budget held.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use statusmon::config::{self, Config};
use statusmon::engine::{self, Engine};
use statusmon::resolver::{ChannelState, Visibility};
use statusmon::simulator::{GraphLimits, GraphScenario, SIM_CLIENT_SECRET, Scenario};
use statusmon_channels::{ErrorClass, Health};

use crate::support::{bin, status_document};

const TENANT: &str = "contoso.onmicrosoft.com";

/// The Graph channel keys most tests use.
const GRAPH_KEYS: &str = "interval = \"1m\"\ntimeout = \"2s\"";

/// A config with one Graph channel per tenant (primary) and the shared public site, all at the
/// simulator; `graph_keys` are added to every Graph channel; the secret comes from the
/// environment, as in production.
fn graph_config_text(base: &str, tenants: &[&str], graph_keys: &str) -> String {
    let mut text = format!(
        "[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\nbase_url = \"{base}\"\n\
         interval = \"1m\"\ntimeout = \"2s\"\n"
    );
    for (i, tenant) in tenants.iter().enumerate() {
        text.push_str(&format!(
            "[[channels]]\nid = \"t{i}-graph\"\nkind = \"graph\"\ntenant_id = \"{tenant}\"\n\
             client_id = \"statusmon-test\"\nauthority = \"{base}\"\ngraph_url = \"{base}\"\n\
             {graph_keys}\n"
        ));
    }
    for i in 0..tenants.len() {
        text.push_str(&format!(
            "[[targets]]\nid = \"t{i}\"\nname = \"Tenant {i}\"\nchannels = [\"t{i}-graph\", \"m365-public\"]\n"
        ));
    }
    text
}

fn secret_env(tenants: usize, secret: &str) -> Vec<(String, String)> {
    (0..tenants)
        .map(|i| {
            (
                format!("STATUSMON_CHANNEL__T{i}_GRAPH__CLIENT_SECRET"),
                secret.to_string(),
            )
        })
        .collect()
}

/// [`graph_config_text`] parsed, with `secret` (if any) for every tenant from the environment.
fn graph_config_for(
    base: &str,
    tenants: &[&str],
    graph_keys: &str,
    secret: Option<&str>,
) -> Config {
    let env = secret
        .map(|s| secret_env(tenants.len(), s))
        .unwrap_or_default();
    config::parse(
        &graph_config_text(base, tenants, graph_keys),
        Path::new("graph.toml"),
        env,
    )
    .expect("valid config")
}

fn graph_config(base: &str, secret: &str) -> Config {
    graph_config_for(base, &[TENANT], GRAPH_KEYS, Some(secret))
}

#[tokio::test]
async fn healthy_graph_decides_its_services_with_high_confidence() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_scenario(GraphScenario::Incident);
    let document = status_document(graph_config(&sim.base_url(), SIM_CLIENT_SECRET)).await;
    let target = &document.targets[0];
    assert_eq!(target.visibility, Visibility::Full);
    assert_eq!(target.source.as_deref(), Some("t0-graph"));
    assert_eq!(target.verdict, Health::Incident);
    assert_eq!(document.exit_code(), 2);
    let teams = target
        .services
        .iter()
        .find(|s| s.id == "microsoftteams")
        .expect("Teams listed");
    assert_eq!(
        (teams.verdict, teams.source.as_deref()),
        (Health::Incident, Some("t0-graph"))
    );
    assert_eq!(teams.confidence, statusmon::resolver::Confidence::High);
    let incident = target
        .incidents
        .iter()
        .find(|i| teams.incidents.contains(&i.id))
        .expect("the Teams incident is listed");
    assert!(incident.id.starts_with("TM"), "{}", incident.id);
    assert!(!incident.title.is_empty());
    assert_eq!(incident.sources, vec!["t0-graph"]);
    // The site still decides what Graph does not cover, with medium confidence.
    let mac = target
        .services
        .iter()
        .find(|s| s.id == "mac")
        .expect("admin center");
    assert_eq!(mac.source.as_deref(), Some("m365-public"));
    assert_eq!(mac.confidence, statusmon::resolver::Confidence::Medium);
}

#[tokio::test]
async fn camel_and_pascal_case_give_the_same_verdicts() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_scenario(GraphScenario::Advisory);
    let camel = status_document(graph_config(&sim.base_url(), SIM_CLIENT_SECRET)).await;
    sim.set_graph_scenario(GraphScenario::PascalCase);
    let pascal = status_document(graph_config(&sim.base_url(), SIM_CLIENT_SECRET)).await;
    let verdicts = |d: &statusmon::status::StatusDocument| -> Vec<(String, Health)> {
        d.targets[0]
            .services
            .iter()
            .map(|s| (s.id.clone(), s.verdict))
            .collect()
    };
    assert_eq!(verdicts(&camel), verdicts(&pascal));
    assert!(verdicts(&camel).contains(&("Exchange".to_string(), Health::Advisory)));
}

/// Each failing Graph scenario, with the public site healthy: never operational, the right class,
/// visibility degraded and the site as the fallback.
#[tokio::test]
async fn every_graph_failure_falls_back_to_the_site_with_a_classified_error() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_slow_delay(Duration::from_secs(5));
    let cases = [
        (
            GraphScenario::Throttled,
            ErrorClass::Throttled,
            ChannelState::Failing,
        ),
        (
            GraphScenario::AuthBadSecret,
            ErrorClass::Auth,
            ChannelState::Failing,
        ),
        (
            GraphScenario::AuthConsentMissing,
            ErrorClass::Auth,
            ChannelState::Failing,
        ),
        (
            GraphScenario::AuthUnknownTenant,
            ErrorClass::Auth,
            ChannelState::Failing,
        ),
        (
            GraphScenario::Failing,
            ErrorClass::Http,
            ChannelState::Failing,
        ),
        (
            GraphScenario::Slow,
            ErrorClass::Timeout,
            ChannelState::Failing,
        ),
        (
            GraphScenario::DriftHtml,
            ErrorClass::Drift,
            ChannelState::Failing,
        ),
        (
            GraphScenario::DriftMissingValue,
            ErrorClass::Drift,
            ChannelState::Failing,
        ),
        (
            GraphScenario::DriftUnknownEnum,
            ErrorClass::Drift,
            ChannelState::Fresh,
        ),
    ];
    let mut failures = Vec::new();
    for (scenario, class, state) in cases {
        sim.set_graph_scenario(scenario);
        let document = status_document(graph_config(&sim.base_url(), SIM_CLIENT_SECRET)).await;
        let target = &document.targets[0];
        let graph = document
            .channels
            .iter()
            .find(|c| c.id == "t0-graph")
            .expect("graph channel");
        let mut problems = Vec::new();
        if graph.error.as_ref().map(|e| e.class) != Some(class) {
            problems.push(format!("class {:?}", graph.error.as_ref().map(|e| e.class)));
        }
        if graph.state != state {
            problems.push(format!("state {:?}", graph.state));
        }
        if target.verdict == Health::Operational || document.exit_code() == 0 {
            problems.push(format!(
                "verdict {} exit {}",
                target.verdict,
                document.exit_code()
            ));
        }
        if state == ChannelState::Failing {
            if target.visibility != Visibility::Degraded
                || target.source.as_deref() != Some("m365-public")
            {
                problems.push(format!(
                    "visibility {:?} from {:?}",
                    target.visibility, target.source
                ));
            }
            let side = target.admin_plane.explanation.clone().unwrap_or_default();
            if !side.contains("likely on our side") {
                problems.push(format!("admin-plane explanation {side:?}"));
            }
        } else if !target.services.iter().any(|s| s.verdict == Health::Unknown) {
            problems.push("an unknown enum did not make its service unknown".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{scenario}: {}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn graph_down_and_admin_center_degraded_blames_microsoft_and_all_down_is_blind() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_scenario(GraphScenario::Failing);
    sim.set_scenario(Scenario::AdminDegraded);
    let document = status_document(graph_config(&sim.base_url(), SIM_CLIENT_SECRET)).await;
    let target = &document.targets[0];
    assert_eq!(target.visibility, Visibility::Degraded);
    let side = target.admin_plane.explanation.clone().unwrap_or_default();
    assert!(side.contains("Microsoft's admin plane"), "{side}");
    let primary = target.primary.explanation.clone().unwrap_or_default();
    assert!(
        primary.contains("the admin portal API (t0-graph) unavailable since"),
        "{primary}"
    );
    assert!(primary.contains("HTTP 503"), "{primary}");

    sim.set_scenario(Scenario::Failing);
    let document = status_document(graph_config(&sim.base_url(), SIM_CLIENT_SECRET)).await;
    assert_eq!(document.targets[0].visibility, Visibility::Blind);
    assert_eq!(document.targets[0].verdict, Health::Unknown);
    assert_eq!(document.exit_code(), 3);
}

#[tokio::test]
async fn a_graph_channel_without_credentials_is_disabled_and_says_what_to_set() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let config = graph_config_for(&sim.base_url(), &[TENANT], GRAPH_KEYS, None);
    let document = status_document(config).await;
    let graph = document
        .channels
        .iter()
        .find(|c| c.id == "t0-graph")
        .expect("listed");
    assert_eq!(graph.state, ChannelState::Disabled);
    let message = graph
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("STATUSMON_CHANNEL__T0_GRAPH__CLIENT_SECRET"),
        "{message}"
    );
    assert_eq!(document.targets[0].visibility, Visibility::Degraded);
    assert_eq!(
        sim.graph_stats(TENANT).token_requests,
        0,
        "a disabled channel sends nothing"
    );
}

#[tokio::test]
async fn no_secret_appears_in_any_output_or_log_line() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let secret = "s3cr3t-VALUE-do-not-print";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.toml");
    std::fs::write(
        &path,
        graph_config_text(&sim.base_url(), &[TENANT], GRAPH_KEYS),
    )
    .expect("write");
    let mut seen = String::new();
    for scenario in [
        GraphScenario::AuthBadSecret,
        GraphScenario::Healthy,
        GraphScenario::Failing,
    ] {
        sim.set_graph_scenario(scenario);
        for args in [
            &["status", "--json"][..],
            &["status"][..],
            &["probe", "t0-graph", "--json"][..],
            &["probe", "t0-graph"][..],
            &["check-config"][..],
        ] {
            let out = tokio::process::Command::new(bin())
                .args(args)
                .arg("--config")
                .arg(&path)
                .env("STATUSMON_CHANNEL__T0_GRAPH__CLIENT_SECRET", secret)
                .env("STATUSMON_LOG", "trace")
                .output()
                .await
                .expect("run statusmon");
            seen.push_str(&String::from_utf8_lossy(&out.stdout));
            seen.push_str(&String::from_utf8_lossy(&out.stderr));
        }
    }
    assert!(
        seen.contains("AADSTS7000215"),
        "the bad-secret run was seen:\n{seen}"
    );
    assert!(
        seen.contains("probe answered") || seen.contains("probe failed"),
        "logs were captured"
    );
    assert!(
        !seen.contains(secret),
        "the secret leaked into output or logs"
    );
    assert!(
        !seen.contains("sim."),
        "an access token leaked into output or logs"
    );
}

#[tokio::test]
async fn shared_channels_are_probed_once_for_many_tenants() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let tenants = [
        "contoso.onmicrosoft.com",
        "fabrikam.onmicrosoft.com",
        "tailspin.onmicrosoft.com",
    ];
    let config = graph_config_for(
        &sim.base_url(),
        &tenants,
        GRAPH_KEYS,
        Some(SIM_CLIENT_SECRET),
    );
    sim.set_tenant_scenario("fabrikam.onmicrosoft.com", GraphScenario::Failing);
    let document = status_document(config).await;
    assert_eq!(
        sim.requests_to("/api/feed/mac"),
        1,
        "the public site is probed once, not per tenant"
    );
    for tenant in tenants {
        assert_eq!(
            sim.graph_stats(tenant).token_requests,
            1,
            "{tenant} signs in once"
        );
    }
    let visibility: Vec<Visibility> = document.targets.iter().map(|t| t.visibility).collect();
    assert_eq!(
        visibility,
        vec![Visibility::Full, Visibility::Degraded, Visibility::Full]
    );
}

#[tokio::test]
async fn a_fast_schedule_never_exceeds_the_per_tenant_budget() {
    // The issue's check runs ten minutes at 1 s intervals against 240/min and 800/h; this is the
    // same shape scaled down: 5 s at 100 ms intervals against 20/min and 30/h. The channel's
    // limiter allows a burst of half the budget, then refills slowly enough that no window of 60 s
    // or 3600 s can exceed the budget, so 10 requests go out and the rest are refused locally.
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_limits(GraphLimits {
        per_60s: 20,
        per_3600s: 30,
    });
    let config = graph_config_for(
        &sim.base_url(),
        &[TENANT],
        "interval = \"100ms\"\ntimeout = \"100ms\"\nbudget_per_minute = 20\nbudget_per_hour = 30",
        Some(SIM_CLIENT_SECRET),
    );
    assert_eq!(config.channels[1].interval, Duration::from_millis(100));
    let client = engine::http_client().expect("client");
    let engine = Engine::new(Arc::new(config), &client);
    let _ = statusmon::cli::watch(
        engine,
        tokio::time::sleep(Duration::from_secs(5)),
        &statusmon::web::WebState::new(),
    )
    .await;
    let stats = sim.graph_stats(TENANT);
    assert!(stats.requests >= 10, "the channel did try: {stats:?}");
    assert_eq!(
        stats.over_budget, 0,
        "requests beyond the budget: {stats:?}"
    );
    assert!(
        stats.max_in_60s <= 10 && stats.max_in_3600s <= 16,
        "{stats:?}"
    );
}

/// The recorded documentation payloads beside the checkout, if present (CI has them; a fresh
/// clone may not, and then this says so and skips; the in-repo fixtures cover the same shapes).
fn shared_graph_fixture(name: &str) -> Option<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/graph")
        .join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            eprintln!(
                "skipped: {} is absent (fresh clone without ../shared)",
                path.display()
            );
            None
        }
    }
}

#[test]
fn recorded_graph_payloads_give_verdicts_incident_ids_and_titles_in_both_casings() {
    use statusmon_channels::graph::{Collected, assemble, parse_issues_page, parse_overviews};
    let (Some(overviews), Some(issues), Some(cli_list), Some(cli_issue)) = (
        shared_graph_fixture("healthOverviews.json"),
        shared_graph_fixture("issues.json"),
        shared_graph_fixture("cli-m365-health-list.json"),
        shared_graph_fixture("cli-m365-healthissue-get.json"),
    ) else {
        return;
    };
    // PascalCase, as Microsoft's docs print it.
    let overviews = parse_overviews(&overviews, "GET healthOverviews").expect("parses");
    assert_eq!(overviews.items.len(), 3);
    let issues = parse_issues_page(&issues, "GET issues").expect("parses");
    assert!(
        issues
            .next_link
            .as_deref()
            .is_some_and(|l| l.contains("$skip=100"))
    );
    let now = chrono::DateTime::parse_from_rfc3339("2020-11-14T20:00:00Z")
        .expect("valid")
        .with_timezone(&chrono::Utc);
    let observation = assemble(
        "recorded",
        Collected {
            overviews: overviews.items,
            issues: Ok(issues.items),
            digest: String::new(),
        },
        now,
    )
    .expect("an observation");
    let health = |id: &str| {
        observation
            .services
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.health)
    };
    assert_eq!(health("Exchange"), Some(Health::Operational));
    assert_eq!(
        health("OrgLiveID"),
        Some(Health::Operational),
        "ServiceRestored is operational"
    );
    assert_eq!(health("OSDPPlatform"), Some(Health::Operational));
    let incident = observation
        .incidents
        .iter()
        .find(|i| i.id.as_deref() == Some("EX226792"))
        .expect("the recently resolved incident is listed");
    assert_eq!(
        &*incident.title,
        "Limited number of users unable to send or receive email through the Exchange Online service"
    );
    assert!(incident.resolved);
    assert_eq!(
        incident.service.as_deref(),
        Some("Exchange"),
        "display name mapped to the id"
    );

    // camelCase, as the live API answers (the CLI prints the `value` array without its envelope).
    let enveloped = format!("{{\"value\": {}}}", String::from_utf8_lossy(&cli_list));
    let overviews = parse_overviews(enveloped.as_bytes(), "GET healthOverviews").expect("parses");
    let issue = format!("{{\"value\": [{}]}}", String::from_utf8_lossy(&cli_issue));
    let issues = parse_issues_page(issue.as_bytes(), "GET issues").expect("parses");
    let observation = assemble(
        "recorded",
        Collected {
            overviews: overviews.items,
            issues: Ok(issues.items),
            digest: String::new(),
        },
        now,
    )
    .expect("an observation");
    let exchange = observation
        .services
        .iter()
        .find(|s| s.id == "Exchange")
        .expect("Exchange");
    assert_eq!(
        exchange.health,
        Health::Advisory,
        "serviceDegradation is an advisory"
    );
    assert_eq!(exchange.status_text, "serviceDegradation");
}

#[tokio::test]
async fn the_recorded_token_error_is_an_auth_error_with_its_aadsts_code() {
    use crate::support::{Reply, mock};
    let Some(body) = shared_graph_fixture("token-error.json") else {
        return;
    };
    let upstream = mock(vec![("/", Reply::json(body).with_status(400))]).await;
    let config = graph_config_for(
        &upstream.base_url,
        &[TENANT],
        GRAPH_KEYS,
        Some("not-the-secret"),
    );
    let document = status_document(config).await;
    let graph = document
        .channels
        .iter()
        .find(|c| c.id == "t0-graph")
        .expect("listed");
    let error = graph.error.as_ref().expect("an error");
    assert_eq!(error.class, ErrorClass::Auth);
    assert!(error.message.contains("AADSTS70011"), "{}", error.message);
    assert!(!error.message.contains("not-the-secret"));
}

#[tokio::test]
async fn a_slow_but_answering_graph_is_not_cut_off_as_a_whole() {
    // Every Graph request takes 900 ms, within the 1 s request limit; the probe makes two in a
    // row (plus the token), so it takes longer than one request limit and must still count.
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_slow_delay(Duration::from_millis(900));
    sim.set_graph_scenario(GraphScenario::Slow);
    let config = graph_config_for(
        &sim.base_url(),
        &[TENANT],
        "interval = \"1m\"\ntimeout = \"1s\"",
        Some(SIM_CLIENT_SECRET),
    );
    let started = std::time::Instant::now();
    let document = status_document(config).await;
    let graph = document
        .channels
        .iter()
        .find(|c| c.id == "t0-graph")
        .expect("listed");
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "the probe really was slow"
    );
    assert_eq!(graph.state, ChannelState::Fresh, "{:?}", graph.error);
    assert_eq!(document.targets[0].visibility, Visibility::Full);
}
