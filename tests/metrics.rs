//! `GET /metrics`: the OpenMetrics exposition after real rounds of the `watch` loop against the
//! simulator (probes recorded, documents observed), as `statusmon run` serves it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use statusmon::cli;
use statusmon::engine::{self, Engine};
use statusmon::simulator::GraphScenario;
use statusmon::status::StatusDocument;
use statusmon::web::{self, WebState};
use statusmon_channels::Health;
use tower::ServiceExt;

use crate::web::{graph_config, graph_sim};

/// Runs the real `watch` loop over `config` until it publishes a new document into `web`, then
/// stops it: one round with every probe recorded and the document observed.
async fn watched_round(base_url: &str, web: &WebState) -> StatusDocument {
    let client = engine::http_client().expect("http client");
    let engine = Engine::new(Arc::new(graph_config(base_url)), &client);
    let before = web.document().map(|d| d.generated_at);
    let published = async {
        while web.document().map(|d| d.generated_at) == before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), cli::watch(engine, published, web))
        .await
        .expect("the watch loop publishes a round within 30s");
    let document = web.document().expect("a published document");
    (*document).clone()
}

/// `GET /metrics` through the router: status, content type and body.
async fn scrape(web: &WebState) -> (StatusCode, String, String) {
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .expect("request");
    let response = web::router(web.clone())
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
    (status, content_type, body)
}

/// The value of the sample named exactly `series` (name and labels), if exported.
fn sample(body: &str, series: &str) -> Option<String> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

#[tokio::test]
async fn metrics_are_openmetrics_with_every_family_after_a_real_round() {
    let sim = graph_sim(GraphScenario::Healthy).await;
    let web = WebState::new();
    let document = watched_round(&sim.base_url(), &web).await;
    let (status, content_type, body) = scrape(&web).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    for family in [
        "# TYPE statusmon_probe_duration_seconds histogram",
        "# TYPE statusmon_probe_errors counter",
        "# TYPE statusmon_channel_state gauge",
        "# TYPE statusmon_service_verdict gauge",
        "# TYPE statusmon_target_verdict gauge",
        "# TYPE statusmon_target_visibility gauge",
    ] {
        assert!(body.contains(family), "{family} missing:\n{body}");
    }
    for channel in ["contoso-graph", "m365-public"] {
        let kind = if channel == "contoso-graph" {
            "graph"
        } else {
            "m365_status_site"
        };
        let count = sample(
            &body,
            &format!(
                "statusmon_probe_duration_seconds_count{{channel=\"{channel}\",kind=\"{kind}\",outcome=\"ok\"}}"
            ),
        );
        assert_eq!(count.as_deref(), Some("1"), "{channel}:\n{body}");
        assert_eq!(
            sample(
                &body,
                &format!("statusmon_channel_state{{channel=\"{channel}\",kind=\"{kind}\",state=\"fresh\"}}")
            )
            .as_deref(),
            Some("1"),
            "{body}"
        );
        assert_eq!(
            sample(
                &body,
                &format!("statusmon_channel_state{{channel=\"{channel}\",kind=\"{kind}\",state=\"failing\"}}")
            )
            .as_deref(),
            Some("0"),
            "{body}"
        );
    }
    let target = &document.targets[0];
    let verdict = |v: Health| {
        sample(
            &body,
            &format!(
                "statusmon_target_verdict{{target=\"contoso\",verdict=\"{}\"}}",
                v.as_str()
            ),
        )
    };
    assert_eq!(verdict(target.verdict).as_deref(), Some("1"), "{body}");
    assert_eq!(
        sample(
            &body,
            "statusmon_target_visibility{target=\"contoso\",visibility=\"full\"}"
        )
        .as_deref(),
        Some("1"),
        "{body}"
    );
    assert!(!target.services.is_empty());
    for service in &target.services {
        let series = format!(
            "statusmon_service_verdict{{target=\"contoso\",service=\"{}\",verdict=\"{}\"}}",
            service.id,
            service.verdict.as_str()
        );
        assert_eq!(sample(&body, &series).as_deref(), Some("1"), "{series}");
    }
    assert_eq!(
        sample(
            &body,
            "statusmon_probe_errors_total{channel=\"contoso-graph\",class=\"http\"}"
        )
        .as_deref(),
        Some("0"),
        "no probe failed, every class starts at 0:\n{body}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_channel_shows_its_state_and_error_class() {
    let sim = graph_sim(GraphScenario::Failing).await;
    let web = WebState::new();
    let document = watched_round(&sim.base_url(), &web).await;
    let (_, _, body) = scrape(&web).await;
    let graph = document
        .channels
        .iter()
        .find(|c| c.id == "contoso-graph")
        .expect("the graph channel");
    let class = graph.error.as_ref().expect("graph is failing").class;
    assert_eq!(
        sample(
            &body,
            "statusmon_channel_state{channel=\"contoso-graph\",kind=\"graph\",state=\"failing\"}"
        )
        .as_deref(),
        Some("1"),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "statusmon_channel_state{channel=\"contoso-graph\",kind=\"graph\",state=\"fresh\"}"
        )
        .as_deref(),
        Some("0"),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            &format!(
                "statusmon_probe_errors_total{{channel=\"contoso-graph\",class=\"{}\"}}",
                class.as_str()
            )
        )
        .as_deref(),
        Some("1"),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "statusmon_probe_duration_seconds_count{channel=\"contoso-graph\",kind=\"graph\",outcome=\"error\"}"
        )
        .as_deref(),
        Some("1"),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "statusmon_target_visibility{target=\"contoso\",visibility=\"degraded\"}"
        )
        .as_deref(),
        Some("1"),
        "{body}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_service_verdict_gauge_flips_with_the_graph_scenario() {
    let sim = graph_sim(GraphScenario::Healthy).await;
    let web = WebState::new();
    watched_round(&sim.base_url(), &web).await;
    sim.set_graph_scenario(GraphScenario::Advisory);
    let document = watched_round(&sim.base_url(), &web).await;
    let flipped = document.targets[0]
        .services
        .iter()
        .find(|s| s.verdict == Health::Advisory)
        .expect("the advisory scenario degrades a service");
    let (_, _, body) = scrape(&web).await;
    let series = |verdict: &str| {
        format!(
            "statusmon_service_verdict{{target=\"contoso\",service=\"{}\",verdict=\"{verdict}\"}}",
            flipped.id
        )
    };
    assert_eq!(
        sample(&body, &series("advisory")).as_deref(),
        Some("1"),
        "{body}"
    );
    assert_eq!(
        sample(&body, &series("operational")).as_deref(),
        Some("0"),
        "{body}"
    );
    // Two rounds, each probing both channels once.
    assert_eq!(
        sample(
            &body,
            "statusmon_probe_duration_seconds_count{channel=\"contoso-graph\",kind=\"graph\",outcome=\"ok\"}"
        )
        .as_deref(),
        Some("2"),
        "{body}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_vanished_service_is_no_longer_exported() {
    let sim = graph_sim(GraphScenario::Healthy).await;
    let web = WebState::new();
    let mut document = watched_round(&sim.base_url(), &web).await;
    let gone = document.targets[0]
        .services
        .first()
        .expect("the healthy scenario has services")
        .id
        .clone();
    let label = format!("service=\"{gone}\"");
    let (_, _, before) = scrape(&web).await;
    assert_eq!(
        before.lines().filter(|l| l.contains(&label)).count(),
        5,
        "one series per verdict:\n{before}"
    );
    Arc::make_mut(&mut document.targets[0])
        .services
        .retain(|s| s.id != gone);
    web.metrics().observe_document(Arc::new(document.clone()));
    let (_, _, after) = scrape(&web).await;
    assert!(
        !after.lines().any(|l| l.contains(&label)),
        "{gone} still exported:\n{after}"
    );
    let kept = &document.targets[0].services[0];
    assert!(
        after.contains(&format!("service=\"{}\"", kept.id)),
        "{after}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn run_exports_how_late_each_scheduled_probe_started() {
    let sim = graph_sim(GraphScenario::Healthy).await;
    let web = WebState::new();
    watched_round(&sim.base_url(), &web).await;
    let (_, _, body) = scrape(&web).await;
    assert!(
        body.contains("# TYPE statusmon_schedule_lag_seconds histogram"),
        "{body}"
    );
    let lag = statusmon::bench::PromHistogram::parse(&body, statusmon::bench::LAG_METRIC)
        .expect("the lag histogram has samples");
    assert_eq!(lag.count, 2, "one first attempt per channel:\n{body}");
    assert_eq!(
        lag.buckets.last().map(|(le, n)| (le.is_infinite(), *n)),
        Some((true, 2)),
        "{body}"
    );
    sim.shutdown().await;
}
