//! The schedule's retries: transient failures are retried inside the slot and every attempt is
//! reported as it ends; failures a retry cannot fix are not retried.

use std::sync::Arc;
use std::time::Duration;

use statusmon::engine::{self, Engine, ProbeReport};
use statusmon::simulator::{Scenario, SimHandle};
use statusmon_channels::ErrorClass;
use tokio::sync::mpsc;

use crate::support::simulator;

/// The reports of one site channel on `sim` probed every 4 s, for `window`; after the first
/// report the site switches to `then`, if given.
async fn reports_within(
    sim: &SimHandle,
    window: Duration,
    then: Option<Scenario>,
) -> Vec<ProbeReport> {
    let base_url = sim.base_url();
    let text = format!(
        "[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\nbase_url = \"{base_url}\"\n\
         interval = \"4s\"\ntimeout = \"1s\"\n[[targets]]\nid = \"t1\"\nchannels = [\"m365-public\"]\n"
    );
    let config =
        statusmon::config::parse(&text, std::path::Path::new("t.toml"), std::iter::empty())
            .expect("valid");
    let client = engine::http_client().expect("client");
    let engine = Engine::new(Arc::new(config), &client);
    let (sender, mut receiver) = mpsc::channel(16);
    let hosts = engine::HostLimits::new(engine.config().scheduler.probes_per_host);
    let tasks = engine::spawn_schedule(engine.channels(), sender, &hosts);
    let mut reports = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    let mut then = then;
    while let Ok(Some(report)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
        reports.push(report);
        if let Some(scenario) = then.take() {
            sim.set_scenario(scenario);
        }
    }
    for task in tasks {
        task.abort();
    }
    reports
}

fn classes(reports: &[ProbeReport]) -> Vec<Option<ErrorClass>> {
    reports
        .iter()
        .map(|r| r.outcome.as_ref().err().map(|e| e.class()))
        .collect()
}

#[tokio::test]
async fn a_transient_failure_is_retried_twice_within_the_slot_each_attempt_reported() {
    let sim = simulator(Scenario::Failing).await;
    let reports = reports_within(&sim, Duration::from_secs(3), None).await;
    assert_eq!(
        classes(&reports),
        [Some(ErrorClass::Http); 3],
        "the first attempt and two retries, nothing more before the next tick"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_retry_that_succeeds_brings_the_channel_back_at_once() {
    let sim = simulator(Scenario::Failing).await;
    let reports = reports_within(&sim, Duration::from_secs(3), Some(Scenario::Healthy)).await;
    assert_eq!(
        classes(&reports),
        [Some(ErrorClass::Http), None],
        "failure shown at once, then the retry's answer"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn drift_is_not_retried() {
    let sim = simulator(Scenario::DriftHtmlShell).await;
    let reports = reports_within(&sim, Duration::from_secs(3), None).await;
    assert_eq!(classes(&reports), [Some(ErrorClass::Drift)]);
    sim.shutdown().await;
}

/// When each of `count` site channels on one simulator first answered, seconds after the first,
/// with `[scheduler] probes_per_host` as given.
async fn first_answers(sim: &SimHandle, count: usize, per_host: Option<u32>) -> Vec<f64> {
    let base_url = sim.base_url();
    let mut text = per_host
        .map(|n| format!("[scheduler]\nprobes_per_host = {n}\n"))
        .unwrap_or_default();
    let ids: Vec<String> = (0..count).map(|i| format!("\"site-{i}\"")).collect();
    for i in 0..count {
        text.push_str(&format!(
            "[[channels]]\nid = \"site-{i}\"\nkind = \"m365_status_site\"\n\
             base_url = \"{base_url}\"\ninterval = \"30s\"\n"
        ));
    }
    text.push_str(&format!(
        "[[targets]]\nid = \"t1\"\nchannels = [{}]\n",
        ids.join(", ")
    ));
    let config =
        statusmon::config::parse(&text, std::path::Path::new("t.toml"), std::iter::empty())
            .expect("valid");
    let client = engine::http_client().expect("client");
    let engine = Engine::new(Arc::new(config), &client);
    let hosts = engine::HostLimits::new(engine.config().scheduler.probes_per_host);
    let (sender, mut receiver) = mpsc::channel(16);
    let tasks = engine::spawn_schedule(engine.channels(), sender, &hosts);
    let mut at = Vec::new();
    while at.len() < count {
        let report = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .expect("every channel answers within 10s")
            .expect("the schedule runs");
        at.push(report.at);
    }
    for task in tasks {
        task.abort();
    }
    let first = at.iter().min().copied().expect("answers");
    at.iter().map(|t| (*t - first).as_seconds_f64()).collect()
}

#[tokio::test]
async fn probes_against_one_host_start_no_faster_than_the_per_host_limit() {
    let sim = simulator(Scenario::Healthy).await;
    // Four channels on one host, one start a second: the fourth answers about 3 s after the first.
    let limited = first_answers(&sim, 4, Some(1)).await;
    let spread = limited.iter().copied().fold(0.0, f64::max);
    assert!(
        spread >= 2.5,
        "limited to 1/s, the first answers came {limited:?}s apart"
    );
    // With the default limit (100/s) the same four start together.
    let free = first_answers(&sim, 4, None).await;
    let spread = free.iter().copied().fold(0.0, f64::max);
    assert!(
        spread < 1.5,
        "unlimited, the first answers came {free:?}s apart"
    );
}
