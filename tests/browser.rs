//! The dashboard in a real headless Chromium (driven over WebDriver by chromedriver): the demo's
//! failover as a person watching the page would see it, without reloading.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs). Without them the test says it is skipped, unless
//! `REQUIRE_BROWSER_TEST=1`, which CI sets so the test can never be skipped silently there.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::bin;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser is there; panics if it is required and is not.
fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("REQUIRE_BROWSER_TEST").as_deref() != Ok("1"),
            "REQUIRE_BROWSER_TEST=1 but {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipped: {CHROMIUM} or {CHROMEDRIVER} is missing (install Debian's chromium and \
             chromium-driver; set REQUIRE_BROWSER_TEST=1 to make this a failure)"
        );
    }
    present
}

/// chromedriver on a free loopback port, and a WebDriver session of headless Chromium with a
/// profile of its own.
async fn start_browser(profile: &Path) -> (Child, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-proxy-server", "--window-size=412,915",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (driver, client),
            // chromedriver takes a moment to listen.
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("no WebDriver session from chromedriver at {url}: {error}"),
        }
    }
}

/// `statusmon demo` on an ephemeral port: the process, the dashboard URL it prints first, and
/// everything it prints (kept for failure messages; reading also keeps the pipe from filling).
async fn start_demo(speed: u32) -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let mut demo = Command::new(bin())
        .args([
            "demo",
            "--speed",
            &speed.to_string(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("statusmon demo starts");
    let mut lines = BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the demo prints at once")
        .expect("stdout readable")
        .expect("a first line");
    let url = first
        .strip_prefix("open ")
        .and_then(|rest| rest.strip_suffix(" to watch the dashboard"))
        .unwrap_or_else(|| panic!("the first line names the dashboard: {first:?}"))
        .to_string();
    let output = Arc::new(Mutex::new(vec![first]));
    let sink = Arc::clone(&output);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().expect("not poisoned").push(line);
        }
    });
    (demo, url, output)
}

/// The visible text of the first element matching `css`, or "" while there is none.
async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits (bounded) until the visible text of `css` satisfies `check`; returns it.
async fn wait_for_text(
    client: &Client,
    css: &str,
    limit: Duration,
    demo: &Mutex<Vec<String>>,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let seen = text(client, css).await;
        if check(&seen) {
            return seen;
        }
        if Instant::now() > deadline {
            let page = text(client, "body").await;
            let printed = demo.lock().expect("not poisoned").join("\n");
            panic!(
                "{css}: not as expected within {limit:?}; last seen {seen:?}\n\
                 --- page ---\n{page}\n--- demo output ---\n{printed}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_person_watching_the_dashboard_sees_the_failover_without_reloading() {
    if !browser_available() {
        return;
    }
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let (_driver, client) = start_browser(profile.path()).await;
    // The session is closed (and Chromium with it) whether the checks pass or panic.
    let outcome = tokio::spawn(watch_the_failover(client.clone())).await;
    let _ = client.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn watch_the_failover(client: Client) {
    // Speed 1: Graph fails 11 s in, @MSFT365Status posts from 16 s, the site hangs at 23 s.
    let (_demo, url, output) = start_demo(1).await;

    client.goto(&url).await.expect("the dashboard opens");
    // Opened before the failover: waiting for the first round, or the primary still up.
    let before = text(&client, "#targets").await;
    assert!(!before.contains("is down"), "opened too late: {before}");
    client
        .execute("window.statusmonOpenedOnce = true; return true;", vec![])
        .await
        .expect("script runs");

    let banner = wait_for_text(
        &client,
        "#target-contoso [data-role=banner]",
        Duration::from_secs(30),
        &output,
        |t| t.contains("is down"),
    )
    .await;
    assert!(
        banner.starts_with("The primary channel, Graph (contoso-graph), is down: failing since"),
        "{banner}"
    );
    assert!(banner.contains("HTTP 503"), "{banner}");
    assert!(
        banner.contains("status now rests on the public status site (m365-public)"),
        "{banner}"
    );
    let visibility = text(&client, "#target-contoso [data-role=visibility]").await;
    assert_eq!(visibility, "Visibility: degraded");
    let channels = text(&client, "#target-contoso [data-role=channels]").await;
    assert!(
        channels.contains("contoso-graph (primary)") && channels.contains("failing"),
        "{channels}"
    );

    let timeline = wait_for_text(
        &client,
        "#target-contoso [data-role=timeline]",
        Duration::from_secs(20),
        &output,
        |t| t.contains("msft365status-x"),
    )
    .await;
    assert!(
        timeline.contains("investigating an issue affecting access"),
        "the post's own words: {timeline}"
    );
    assert_eq!(text(&client, "#live").await, "live");

    let same_page = client
        .execute("return window.statusmonOpenedOnce === true;", vec![])
        .await
        .expect("script runs");
    assert_eq!(same_page, json!(true), "the page was reloaded");
}
