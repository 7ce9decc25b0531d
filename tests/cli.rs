//! The binary, as users and scripts call it: exit codes, messages and the JSON document.

use std::process::Command;

use crate::support::{Reply, bin, healthy_site, mock};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs the built binary with `args` and `--config path`.
async fn statusmon(args: &[&str], config: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("run statusmon")
}

fn site_toml(base_url: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\
         [[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\nbase_url = \"{base_url}\"\n\
         interval = \"1m\"\ntimeout = \"2s\"\n[[targets]]\nid = \"t1\"\nname = \"T\"\nchannels = [\"m365-public\"]\n"
    )
}

#[test]
fn check_config_on_a_broken_config_exits_nonzero_and_names_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        &dir,
        "broken.toml",
        &site_toml("http://127.0.0.1:1").replace("interval", "intervl"),
    );
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
    assert!(stderr.contains("channels[0].intervl"), "{stderr}");
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let out = Command::new(bin())
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"),
        ])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn a_missing_config_file_is_said_plainly() {
    let out = Command::new(bin())
        .args(["status", "--config", "/nonexistent/statusmon.toml"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(3),
        "status exits UNKNOWN when it cannot check"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/statusmon.toml") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn status_json_follows_the_document_contract_and_exit_codes() {
    let upstream = mock(healthy_site()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "ok.toml", &site_toml(&upstream.base_url));
    let out = statusmon(&["status", "--json"], &path).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(
        doc["generated_at"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );
    let target = &doc["targets"][0];
    for key in [
        "id",
        "name",
        "verdict",
        "visibility",
        "confidence",
        "services",
        "incidents",
        "admin_plane",
    ] {
        assert!(!target[key].is_null(), "target lacks {key}: {target}");
    }
    assert_eq!(target["verdict"], "operational");
    assert_eq!(target["visibility"], "full");
    assert_eq!(target["confidence"], "high");
    assert_eq!(target["admin_plane"]["verdict"], "operational");
    let service = &target["services"][0];
    for key in [
        "id",
        "name",
        "verdict",
        "source",
        "confidence",
        "as_of",
        "incidents",
    ] {
        assert!(service.get(key).is_some(), "service lacks {key}: {service}");
    }
    let channel = &doc["channels"][0];
    assert_eq!(channel["id"], "m365-public");
    assert_eq!(channel["kind"], "m365_status_site");
    assert_eq!(channel["state"], "fresh");
    assert!(channel["error"].is_null());

    // The same target through an SPA shell: exit 3, classed drift, not a panic.
    let shell = mock(vec![(
        "/",
        Reply::html(
            200,
            "<!DOCTYPE html><html><body><div id=\"root\"></div></body></html>",
        ),
    )])
    .await;
    let path = write(&dir, "shell.toml", &site_toml(&shell.base_url));
    let out = statusmon(&["status", "--json"], &path).await;
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["channels"][0]["error"]["class"], "drift");
    assert_eq!(doc["targets"][0]["visibility"], "blind");
    assert_eq!(doc["targets"][0]["verdict"], "unknown");
}

#[tokio::test]
async fn probe_prints_the_observation_or_the_classified_error() {
    let upstream = mock(healthy_site()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "ok.toml", &site_toml(&upstream.base_url));
    let out = statusmon(&["probe", "m365-public"], &path).await;
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Microsoft 365 admin center") && stdout.contains("operational"),
        "{stdout}"
    );

    drop(upstream);
    let out = statusmon(&["probe", "m365-public", "--json"], &path).await;
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["class"], "network");

    let out = statusmon(&["probe", "nope"], &path).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no channel \"nope\""));
}

/// Starts `statusmon run`, collects stdout until `until` appears (or the time runs out), then
/// sends SIGTERM and returns (everything printed, exit code).
async fn run_until(config: &std::path::Path, until: &str) -> (String, Option<i32>) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(bin())
        .args(["run", "--config"])
        .arg(config)
        // The store's default path is relative: keep it in the test's directory.
        .current_dir(config.parent().expect("the config is in a directory"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn statusmon run");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(until) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "never saw {until:?}; got:\n{seen}");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "statusmon run exited by itself:\n{seen}"
    );
    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
        .await
        .expect("stops within 5s of SIGTERM")
        .expect("wait");
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push_str(&line);
        seen.push('\n');
    }
    (seen, status.code())
}

#[tokio::test]
async fn run_prints_the_picture_then_changes_and_stops_cleanly_on_sigterm() {
    let sim = statusmon::simulator::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        statusmon::simulator::Scenario::Healthy,
    )
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = site_toml(&sim.base_url()).replace(
        "interval = \"1m\"\ntimeout = \"2s\"",
        "interval = \"300ms\"\ntimeout = \"250ms\"",
    );
    let path = write(&dir, "run.toml", &toml);
    let switcher = async {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        sim.set_scenario(statusmon::simulator::Scenario::AdminDegraded);
    };
    let ((out, code), ()) = tokio::join!(run_until(&path, "operational → advisory"), switcher);
    assert!(out.contains("first round complete"), "{out}");
    assert!(out.contains("T (t1): OPERATIONAL"), "{out}");
    assert!(
        out.contains("Microsoft 365 admin center: operational → advisory"),
        "{out}"
    );
    assert!(out.contains("stopping"), "{out}");
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn run_with_every_channel_disabled_keeps_running_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml =
        site_toml("http://127.0.0.1:9").replace("[[targets]]", "enabled = false\n[[targets]]");
    let path = write(&dir, "off.toml", &toml);
    let (out, code) = run_until(&path, "CHANNEL").await;
    assert!(out.contains("UNKNOWN  visibility blind"), "{out}");
    assert!(out.contains("disabled"), "{out}");
    assert_eq!(code, Some(0), "it ran until told to stop:\n{out}");
}

#[tokio::test]
async fn the_demo_plays_the_whole_outage() {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(bin())
            .args(["demo", "--speed", "5"])
            .output(),
    )
    .await
    .expect("demo finishes")
    .expect("run demo");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("open http://127.0.0.1:") && first.ends_with("/ to watch the dashboard"),
        "the demo opens on the dashboard's address: {first:?}"
    );
    for needle in [
        "first round complete",
        "Exchange Online: operational → advisory",
        "visibility full → degraded",
        "the admin portal API (contoso-graph) unavailable",
        "likely on our side",
        "Microsoft's admin plane is having trouble",
        // X posts arrive while Graph is down, at low confidence, and end resolved.
        "incident MO1290417",
        "from msft365status-x, low confidence",
        "recovering → resolved",
        // With the site hanging too, the picture rests on the posts alone (not blind).
        "now rests on msft365status-x",
        "visibility degraded → full",
        "demo over (admin center now operational)",
    ] {
        assert!(
            text.contains(needle),
            "demo output lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_demo_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::support::bin())
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo starts");
    // Read the first line (`statusmon demo | head -1`), then go away.
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("the demo prints");
    assert!(first.contains("dashboard"), "{first}");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the demo went on writing to a closed pipe for 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("stderr");
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
