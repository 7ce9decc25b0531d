//! Simulator tests: the real status-site channel probes the simulator on loopback, and each
//! scenario must produce the outcome a user would see.

use crate::support::plain_client;
use std::time::{Duration, Instant};

use statusmon::simulator::{self, Scenario, SimHandle};
use statusmon_channels::http::{Fetcher, Limits};
use statusmon_channels::status_site::{PostLeaf, StatusSite, StatusSiteConfig};
use statusmon_channels::{Channel, ErrorClass, Health, Observation, ProbeError};

fn channel(sim: &SimHandle, timeout: Duration) -> StatusSite {
    let fetcher = Fetcher::new(
        plain_client(),
        Limits {
            timeout,
            max_body: 1024 * 1024,
        },
    );
    let config = StatusSiteConfig {
        base_url: sim.base_url(),
        posts: PostLeaf::ALL.to_vec(),
        max_source_age: None,
    };
    StatusSite::new("m365-public", config, fetcher).expect("the simulator's base_url is valid")
}

async fn probe(sim: &SimHandle) -> Result<Observation, ProbeError> {
    channel(sim, Duration::from_secs(5)).probe().await
}

fn service<'a>(
    observation: &'a Observation,
    id: &str,
) -> &'a statusmon_channels::ServiceObservation {
    observation
        .services
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("service {id} missing from {:?}", observation.services))
}

async fn get(sim: &SimHandle, path: &str) -> reqwest::Response {
    plain_client()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .expect("the simulator answers")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn healthy_reads_operational_with_consumer_workloads_and_azure() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let observation = probe(&sim).await.expect("healthy probes cleanly");

    assert!(
        observation.faults.is_empty(),
        "faults: {:?}",
        observation.faults
    );
    let mac = service(&observation, "mac");
    assert_eq!(mac.health, Health::Operational);
    assert_eq!(mac.status_text, "Available");
    assert_eq!(service(&observation, "ppac").health, Health::Operational);
    assert_eq!(service(&observation, "azure").health, Health::Operational);
    for workload in [
        "Outlook.com",
        "OneDriveConsumer",
        "TeamsforLife",
        "CopilotConsumer",
    ] {
        let s = service(&observation, workload);
        assert_eq!(s.health, Health::Operational, "{workload}");
        assert_eq!(s.status_text, "Operational");
    }
    assert!(
        observation.services.len() >= 13,
        "{:?}",
        observation.services
    );
    assert!(
        observation.incidents.is_empty(),
        "{:?}",
        observation.incidents
    );

    // The source time is the site's refresh stamp: recent, and on a 10-minute boundary.
    let source = observation.source_time.expect("InternalDateTime is set");
    let age = chrono::Utc::now() - source;
    assert!(
        age >= chrono::Duration::zero() && age <= chrono::Duration::minutes(10),
        "{age}"
    );
    assert_eq!(source.timestamp() % 600, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_degraded_is_an_advisory_with_an_incident() {
    let sim = crate::support::simulator(Scenario::AdminDegraded).await;
    let observation = probe(&sim).await.expect("a degraded site still answers");

    let mac = service(&observation, "mac");
    assert_eq!(mac.health, Health::Advisory);
    assert_eq!(mac.status_text, "Service degradation");
    assert!(
        mac.message
            .as_deref()
            .unwrap_or("")
            .contains("Service health"),
        "{:?}",
        mac.message
    );
    let incident = observation
        .incidents
        .iter()
        .find(|i| i.service.as_deref() == Some("mac"))
        .expect("the admin-center incident is reported");
    assert!(!incident.resolved);
    assert!(
        incident.title.contains("Service health"),
        "{}",
        incident.title
    );
    assert!(incident.id.is_some(), "the message carries an incident id");

    assert_eq!(service(&observation, "ppac").health, Health::Operational);
    assert_eq!(service(&observation, "azure").health, Health::Operational);
    let outlook = service(&observation, "Outlook.com");
    assert_eq!(outlook.health, Health::Operational);
    assert_eq!(outlook.status_text, "Service restored");
    let restored = observation
        .incidents
        .iter()
        .find(|i| i.service.as_deref() == Some("Outlook.com"))
        .expect("the restored consumer incident is reported");
    assert!(restored.resolved);
    let summary = restored.summary.as_deref().unwrap_or("");
    for part in ["User impact:", "Final status:", "Start time:", "End time:"] {
        assert!(summary.contains(part), "{part} missing from {summary}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn every_drift_scenario_is_drift_never_green() {
    for name in [
        "drift",
        "drift-html-shell",
        "drift-empty-body",
        "drift-unknown-status",
        "drift-missing-element",
    ] {
        let scenario: Scenario = name.parse().expect("a known scenario");
        let sim = crate::support::simulator(scenario).await;
        let error = probe(&sim).await.expect_err(name);
        assert_eq!(error.class(), ErrorClass::Drift, "{name}: {error}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn drift_scenarios_keep_the_sites_content_types() {
    let sim = crate::support::simulator(Scenario::DriftHtmlShell).await;
    for path in ["/api/feed/mac", "/api/posts/mac", "/api/posts/bogus"] {
        let response = get(&sim, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(content_type(&response).starts_with("text/html"), "{path}");
        let body = response.text().await.expect("a body");
        assert!(body.contains(r#"<div id="root"></div>"#), "{path}");
    }

    sim.set_scenario(Scenario::DriftEmptyBody);
    let feed = get(&sim, "/api/feed/mac").await;
    assert_eq!(content_type(&feed), "application/rss+xml; charset=utf-8");
    assert!(feed.text().await.expect("a body").is_empty());
    let post = get(&sim, "/api/posts/m365Consumer").await;
    assert_eq!(content_type(&post), "application/json; charset=utf-8");
    assert!(post.text().await.expect("a body").is_empty());

    sim.set_scenario(Scenario::DriftUnknownStatus);
    let feed = get(&sim, "/api/feed/mac")
        .await
        .text()
        .await
        .expect("a body");
    assert!(
        feed.contains("<status>Partially available</status>"),
        "{feed}"
    );
    let post = get(&sim, "/api/posts/mac")
        .await
        .text()
        .await
        .expect("a body");
    assert!(post.contains(r#""Status":"Partially available""#), "{post}");

    sim.set_scenario(Scenario::DriftMissingElement);
    let feed = get(&sim, "/api/feed/mac")
        .await
        .text()
        .await
        .expect("a body");
    assert!(
        feed.contains("<item>") && !feed.contains("<status>"),
        "{feed}"
    );
    let post = get(&sim, "/api/posts/mac")
        .await
        .text()
        .await
        .expect("a body");
    assert!(
        post.contains(r#""Message":"#) && !post.contains(r#""Status":"#),
        "{post}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn failing_is_an_http_error() {
    for name in ["failing", "failing-5xx"] {
        let sim = crate::support::simulator(name.parse().expect("a known scenario")).await;
        let error = probe(&sim).await.expect_err(name);
        assert_eq!(error.class(), ErrorClass::Http, "{name}: {error}");
        assert!(
            matches!(error, ProbeError::Http { status: 503, .. }),
            "{error:?}"
        );
        let page = get(&sim, "/").await;
        assert_eq!(page.status(), 503);
        assert!(content_type(&page).starts_with("text/html"));
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn failing_hang_times_out_and_does_not_block_shutdown() {
    let started = Instant::now();
    let sim = crate::support::simulator(Scenario::FailingHang).await;
    let error = channel(&sim, Duration::from_secs(1))
        .probe()
        .await
        .expect_err("a hung site gives no answer");
    assert_eq!(error.class(), ErrorClass::Timeout, "{error}");

    // Requests are held, not refused: the control endpoints still answer meanwhile.
    let state = get(&sim, "/_sim").await;
    assert_eq!(state.status(), 200);
    assert_eq!(
        sim.requests(),
        5,
        "one feed and four posts reached the simulator"
    );

    tokio::time::timeout(Duration::from_secs(3), sim.shutdown())
        .await
        .expect("held requests do not keep the simulator alive");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn throttled_asks_to_wait_30_seconds() {
    let sim = crate::support::simulator(Scenario::Throttled).await;
    let error = probe(&sim).await.expect_err("throttled");
    assert_eq!(error.class(), ErrorClass::Throttled, "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_switches_at_runtime_through_the_control_endpoint() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    assert_eq!(
        service(&probe(&sim).await.expect("healthy"), "mac").health,
        Health::Operational
    );

    let switched = plain_client()
        .put(format!("{}/_sim/scenario/admin-degraded", sim.base_url()))
        .send()
        .await
        .expect("the control endpoint answers");
    assert_eq!(switched.status(), 200);
    let body: serde_json::Value = switched.text().await.map(|t| json(&t)).expect("JSON");
    assert_eq!(body["scenario"], "admin-degraded");
    assert_eq!(body["previous"], "healthy");
    assert_eq!(sim.scenario(), Scenario::AdminDegraded);
    assert_eq!(
        service(&probe(&sim).await.expect("degraded"), "mac").health,
        Health::Advisory
    );

    // POST works too, and aliases are accepted and reported by their canonical name.
    let switched = plain_client()
        .post(format!("{}/_sim/scenario/drift", sim.base_url()))
        .send()
        .await
        .expect("the control endpoint answers");
    assert_eq!(switched.status(), 200);
    let body: serde_json::Value = switched.text().await.map(|t| json(&t)).expect("JSON");
    assert_eq!(body["scenario"], "drift-html-shell");
    let error = probe(&sim).await.expect_err("drift");
    assert_eq!(error.class(), ErrorClass::Drift);

    let state: serde_json::Value = get(&sim, "/_sim")
        .await
        .text()
        .await
        .map(|t| json(&t))
        .expect("JSON");
    assert_eq!(state["scenario"], "drift-html-shell");
    let listed = state["scenarios"].as_array().expect("a list of scenarios");
    assert_eq!(listed.len(), Scenario::ALL.len());
    assert!(
        listed
            .iter()
            .all(|s| s["name"].is_string() && s["description"].is_string())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unknown_scenario_is_a_404_listing_the_valid_ones() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let response = plain_client()
        .put(format!("{}/_sim/scenario/on-fire", sim.base_url()))
        .send()
        .await
        .expect("the control endpoint answers");
    assert_eq!(response.status(), 404);
    assert!(content_type(&response).starts_with("application/json"));
    let body: serde_json::Value = response.text().await.map(|t| json(&t)).expect("JSON");
    assert!(
        body["error"].as_str().unwrap_or("").contains("on-fire"),
        "{body}"
    );
    let names = body["scenarios"].as_array().expect("valid names listed");
    assert!(names.iter().any(|n| n == "admin-degraded"), "{body}");
    assert_eq!(sim.scenario(), Scenario::Healthy, "nothing changed");
    sim.shutdown().await;
}

#[tokio::test]
async fn requests_are_counted_per_path_but_control_calls_are_not() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    assert_eq!(sim.requests(), 0);
    probe(&sim).await.expect("healthy");
    probe(&sim).await.expect("healthy");
    let _ = get(&sim, "/_sim").await;
    assert_eq!(sim.requests(), 10);
    assert_eq!(sim.requests_to("/api/feed/mac"), 2);
    assert_eq!(sim.requests_to("/api/posts"), 8);
    assert_eq!(sim.requests_to("/api/posts/m365Consumer"), 2);
    assert_eq!(sim.requests_to("/_sim"), 0);

    let state: serde_json::Value = get(&sim, "/_sim")
        .await
        .text()
        .await
        .map(|t| json(&t))
        .expect("JSON");
    assert_eq!(state["requests"], 10);
    sim.shutdown().await;
}

#[tokio::test]
async fn paths_behave_like_the_real_site() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    for path in [
        "/api/posts/bogus",
        "/api/feed/azure",
        "/api/feed/m365Consumer",
    ] {
        assert_eq!(get(&sim, path).await.status(), 400, "{path}");
    }
    for path in ["/api/posts", "/", "/some/page"] {
        let response = get(&sim, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(content_type(&response).starts_with("text/html"), "{path}");
        let body = response.text().await.expect("a body");
        assert!(body.contains(r#"<div id="root"></div>"#), "{path}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn payloads_have_the_sites_shapes() {
    let sim = crate::support::simulator(Scenario::Healthy).await;

    let feed = get(&sim, "/api/feed/mac").await;
    assert_eq!(content_type(&feed), "application/rss+xml; charset=utf-8");
    let feed = feed.text().await.expect("a body");
    assert!(feed.starts_with(r#"<?xml version="1.0" encoding="utf-8"?>"#));
    assert!(feed.contains("<status>Available</status>"));
    assert!(
        feed.contains("&lt;div&gt;"),
        "the description is escaped HTML: {feed}"
    );
    let pub_date = feed
        .split("<pubDate>")
        .nth(1)
        .and_then(|rest| rest.split("</pubDate>").next())
        .expect("a pubDate");
    assert!(pub_date.ends_with(" Z"), "{pub_date}");
    assert!(
        statusmon_channels::status_site::parse_rss_date(pub_date).is_some(),
        "{pub_date}"
    );

    let post = get(&sim, "/api/posts/mac").await;
    assert_eq!(content_type(&post), "application/json; charset=utf-8");
    let post = post.text().await.expect("a body");
    assert!(
        post.starts_with(r#"{"Id":""#),
        "keys in the site's order: {post}"
    );
    let value: serde_json::Value = serde_json::from_str(&post).expect("JSON");
    let keys: Vec<&str> = [
        "Id",
        "AuthoredDateTime",
        "InternalDateTime",
        "LastUpdatedTime",
        "Title",
        "Message",
        "Status",
    ]
    .into_iter()
    .filter(|k| value.get(k).is_some())
    .collect();
    assert_eq!(keys.len(), 7, "{post}");
    let updated = value["LastUpdatedTime"].as_str().expect("a string");
    let fraction = updated
        .split('.')
        .nth(1)
        .and_then(|f| f.strip_suffix("+00:00"))
        .expect("a fraction and an offset");
    assert_eq!(fraction.len(), 7, "{updated}");
    assert!(
        feed.contains(value["Id"].as_str().expect("an id")),
        "guid = Id"
    );

    let azure: serde_json::Value = get(&sim, "/api/posts/azure")
        .await
        .text()
        .await
        .map(|t| json(&t))
        .expect("JSON");
    assert!(azure["Id"].is_null() && azure["Title"].is_null());
    assert_eq!(azure["InternalDateTime"], "0001-01-01T00:00:00+00:00");

    let consumer: serde_json::Value = get(&sim, "/api/posts/m365Consumer")
        .await
        .text()
        .await
        .map(|t| json(&t))
        .expect("JSON");
    let entries = consumer.as_array().expect("an array");
    assert_eq!(entries.len(), 10);
    assert!(entries.iter().all(|e| e["ServiceWorkloadName"].is_string()
        && e["Id"].is_null()
        && e["Status"] == "Operational"));
    sim.shutdown().await;
}

#[test]
fn scenario_names_parse_and_print_canonically() {
    for scenario in Scenario::ALL {
        assert_eq!(scenario.to_string().parse::<Scenario>(), Ok(*scenario));
        assert!(!scenario.description().is_empty());
        assert!(!scenario.description().contains('\n'));
    }
    assert_eq!("drift".parse::<Scenario>(), Ok(Scenario::DriftHtmlShell));
    assert_eq!("failing-5xx".parse::<Scenario>(), Ok(Scenario::Failing));
    assert_eq!(Scenario::DriftHtmlShell.to_string(), "drift-html-shell");
    assert_eq!(format!("{:<10}|", Scenario::Healthy), "healthy   |");
    assert_eq!(
        " Admin_Degraded ".parse::<Scenario>(),
        Ok(Scenario::AdminDegraded)
    );
    let error = "nope".parse::<Scenario>().expect_err("unknown");
    assert!(error.to_string().contains("failing-hang"), "{error}");
}

#[tokio::test]
async fn a_bind_error_names_the_address() {
    let first = crate::support::simulator(Scenario::Healthy).await;
    let taken = first.addr();
    let error = simulator::start(taken, Scenario::Healthy)
        .await
        .expect_err("the port is taken");
    assert!(error.to_string().contains(&taken.to_string()), "{error}");
    let error = simulator::serve_until_ctrl_c(
        taken,
        Scenario::Healthy,
        simulator::GraphScenario::Healthy,
        simulator::SocialSim::default(),
        None,
    )
    .await
    .expect_err("the port is taken");
    assert!(
        format!("{error:#}").contains(&taken.to_string()),
        "{error:#}"
    );
    first.shutdown().await;
}
