//! Record and replay: `run` with `[archive] path` keeps every raw answer, and `statusmon replay`
//! re-runs the parsers and the resolver over them and tells the same story.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use statusmon::archive::{self, Archive, ArchiveError, RecordedOutcome};
use statusmon::cli;
use statusmon::engine::{self, Engine};
use statusmon::simulator::{self, GraphScenario, Scenario, SocialScenario, SocialSim};
use statusmon::web::WebState;
use tokio::sync::broadcast::error::TryRecvError;

use crate::support::bin;

/// The archive recorded for these tests (see its README) and the config it was recorded with.
fn fixture() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/archive");
    (root.join("outage"), root.join("config.toml"))
}

fn fixture_config() -> statusmon::config::Config {
    let (_, config) = fixture();
    statusmon::config::load(&config).expect("the fixture config is valid")
}

/// A copy of the fixture archive to spoil.
fn fixture_copy() -> tempfile::TempDir {
    let (outage, _) = fixture();
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&outage, dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every file under `dir`, concatenated (to look for secrets).
fn all_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            text.push_str(&all_text(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).expect("read"),
            ));
        }
    }
    text
}

#[test]
fn replaying_the_recorded_outage_tells_its_timeline() {
    let (outage, config) = fixture();
    let output = std::process::Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("replay")
        .arg(&outage)
        .output()
        .expect("statusmon runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("replaying 27 probe(s) of 3 channel(s)"),
        "{stderr}"
    );
    // What a person reviewing the outage reads, in the order it happened.
    let story = [
        "first picture",
        "incident MO1290417",
        "channel contoso-graph: fresh → failing (http:",
        "visibility full → degraded; verdict operational → incident; now rests on m365-public",
        "MO1290417: recovering → resolved",
        "channel contoso-graph: failing → fresh",
        "visibility degraded → full",
        "last picture",
        "27 probe(s) replayed; 15 change(s); every outcome as recorded",
    ];
    let mut from = 0;
    for line in story {
        let at = stdout[from..]
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} missing after byte {from}:\n{stdout}"));
        from += at + line.len();
    }
    // Each change carries the time it happened then, not now.
    assert!(
        stdout.contains("2026-11-25T23:51:39Z  channel contoso-graph: fresh → failing"),
        "{stdout}"
    );
}

#[test]
fn the_json_replay_has_both_pictures_every_change_and_no_differences() {
    let (outage, config) = fixture();
    let output = std::process::Command::new(bin())
        .arg("--config")
        .arg(&config)
        .args(["replay", "--json"])
        .arg(&outage)
        .output()
        .expect("statusmon runs");
    assert_eq!(output.status.code(), Some(0));
    let replay: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(replay["probes"], 27);
    assert_eq!(replay["differences"], serde_json::json!([]));
    assert_eq!(replay["first"]["targets"][0]["visibility"], "full");
    assert_eq!(replay["last"]["targets"][0]["visibility"], "full");
    let changes = replay["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 15);
    assert!(
        changes.iter().any(|c| c["target"] == "contoso"
            && c["text"].as_str().is_some_and(|t| t.contains("degraded"))),
        "{changes:?}"
    );
}

#[test]
fn the_archive_holds_no_secret_and_sign_in_tokens_are_redacted() {
    let (outage, _) = fixture();
    let text = all_text(&outage);
    assert!(
        !text.contains(simulator::SIM_CLIENT_SECRET),
        "client secret"
    );
    assert!(
        !text.contains(simulator::SIM_X_BEARER_TOKEN),
        "bearer token"
    );
    assert!(
        text.contains(r#"\"access_token\":\"redacted\""#),
        "token answer kept, redacted"
    );
    assert!(
        !text.to_ascii_lowercase().contains("authorization"),
        "no request header"
    );
}

#[tokio::test]
async fn a_replayed_probe_whose_answer_no_longer_parses_the_same_is_reported() {
    let dir = fixture_copy();
    // The site's first admin-center feed answer turns into an HTML page: the parser now says
    // drift where it said operational.
    let file = dir.path().join("m365-public/2026-11-25.jsonl");
    let text = std::fs::read_to_string(&file).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut record: serde_json::Value = serde_json::from_str(&lines[0]).expect("a record");
    let exchanges = record["exchanges"].as_array_mut().expect("exchanges");
    let feed = exchanges
        .iter_mut()
        .find(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/api/feed/mac"))
        })
        .expect("the probe read the feed");
    feed["outcome"]["answer"]["headers"] = serde_json::json!([["content-type", "text/html"]]);
    feed["outcome"]["answer"]["body"] =
        serde_json::json!({"text": "<html><body>Sign in</body></html>"});
    lines[0] = record.to_string();
    std::fs::write(&file, lines.join("\n")).expect("write");

    let records = archive::read(dir.path()).expect("readable");
    let replay = tokio::task::spawn_blocking(move || archive::replay(fixture_config(), records))
        .await
        .expect("joined")
        .expect("replayed");
    assert_eq!(replay.differences.len(), 1, "{:?}", replay.differences);
    assert!(
        replay.differences[0].starts_with("m365-public at 2026-11-25T23:51:3")
            && replay.differences[0].contains("replayed drift"),
        "{:?}",
        replay.differences
    );
}

#[test]
fn a_broken_archive_is_refused_naming_the_file_and_line() {
    // A line that is not a record.
    let dir = fixture_copy();
    let file = dir.path().join("msft365status-x/2026-11-25.jsonl");
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str("{not json\n");
    std::fs::write(&file, text).expect("write");
    let error = archive::read(dir.path()).expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(error, ArchiveError::BadRecord { line: 8, .. }),
        "{message}"
    );
    assert!(message.contains("2026-11-25.jsonl:8"), "{message}");

    // A body reference that tries to leave the bodies folder.
    let dir = fixture_copy();
    let file = dir.path().join("contoso-graph/2026-11-25.jsonl");
    let text = std::fs::read_to_string(&file).expect("read");
    let digest = text
        .split("\"sha256\":\"")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .expect("the fixture keeps a body apart");
    std::fs::write(&file, text.replace(digest, "../../../../etc/passwd")).expect("write");
    let message = archive::read(dir.path()).expect_err("refused").to_string();
    assert!(message.contains("is not a SHA-256 digest"), "{message}");

    // Nothing to replay.
    let empty = tempfile::tempdir().expect("temp dir");
    let message = archive::read(empty.path())
        .expect_err("refused")
        .to_string();
    assert!(message.contains("no probe records"), "{message}");

    // Through the binary: exit 1 and the reason.
    let output = std::process::Command::new(bin())
        .args(["replay"])
        .arg(empty.path())
        .arg("--config")
        .arg(fixture().1)
        .output()
        .expect("statusmon runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no probe records"));
}

#[tokio::test]
async fn a_replay_from_a_later_day_without_the_sign_in_still_replays_graph() {
    // Drop the sign-in the archive holds, as when only a later day's files are replayed.
    let mut records = archive::read(&fixture().0).expect("readable");
    for record in &mut records {
        record.exchanges.retain(|e| e.method != "POST");
    }
    let replay = tokio::task::spawn_blocking(move || archive::replay(fixture_config(), records))
        .await
        .expect("joined")
        .expect("replayed");
    assert!(replay.differences.is_empty(), "{:?}", replay.differences);
    assert_eq!(replay.changes.len(), 15);
}

#[tokio::test]
async fn an_abandoned_probe_replays_as_a_timeout_and_unknown_channels_are_named() {
    let mut records = archive::read(&fixture().0).expect("readable");
    // The site's last probe never finished (the schedule's deadline), and a channel the
    // config does not know shows up.
    let last_site = records
        .iter()
        .rposition(|r| r.channel == "m365-public")
        .expect("site records");
    records[last_site].outcome = RecordedOutcome::Abandoned;
    records[last_site].exchanges.clear();
    let mut stranger = records[0].clone();
    stranger.channel = "not-configured".to_string();
    records.push(stranger);

    let replay = tokio::task::spawn_blocking(move || archive::replay(fixture_config(), records))
        .await
        .expect("joined")
        .expect("replayed");
    assert_eq!(replay.unknown_channels, vec!["not-configured".to_string()]);
    let last = replay.last.expect("a last picture");
    let site = last
        .channels
        .iter()
        .find(|c| c.id == "m365-public")
        .expect("site channel");
    let error = site
        .error
        .as_ref()
        .expect("the abandoned probe is an error");
    assert_eq!(error.class.as_str(), "timeout", "{}", error.message);
    assert!(replay.differences.is_empty(), "{:?}", replay.differences);
}

/// The live `watch` loop over `config` while `script` plays on the simulator; returns the change
/// sentences it published and its last picture.
async fn live_changes(
    engine: Engine,
    script: impl std::future::Future<Output = ()>,
) -> (Vec<String>, statusmon::status::StatusDocument) {
    let web = WebState::new();
    let mut events = web.subscribe();
    let last = tokio::time::timeout(Duration::from_secs(60), cli::watch(engine, script, &web))
        .await
        .expect("the script ends within 60s");
    let mut changes = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => changes.push(event.text),
            Err(TryRecvError::Lagged(_)) => continue,
            Err(_) => break,
        }
    }
    (changes, last)
}

/// The lines of a story that do not depend on which answers one resolution happened to see
/// together: every channel's transitions and every incident's, in order.
fn spine(changes: &[String]) -> Vec<&str> {
    changes
        .iter()
        .map(String::as_str)
        .filter(|c| c.starts_with("channel ") || c.contains(" · incident "))
        .collect()
}

#[tokio::test]
async fn a_recorded_run_replays_to_the_same_changes_it_announced_live() {
    let sim = simulator::start_with_social(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Scenario::Healthy,
        GraphScenario::Healthy,
        SocialSim {
            scenario: SocialScenario::Incident,
            step: Duration::from_millis(1500),
        },
    )
    .await
    .expect("simulator");
    let base = sim.base_url();
    let text = format!(
        r#"
[[channels]]
id = "contoso-graph"
kind = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "x"
authority = "{base}"
graph_url = "{base}"
interval = "1s"
timeout = "800ms"
budget_per_minute = 200
budget_per_hour = 10000
[[channels]]
id = "m365-public"
kind = "m365_status_site"
base_url = "{base}"
interval = "1s"
timeout = "800ms"
[[channels]]
id = "msft365status-x"
kind = "x"
username = "{user}"
base_url = "{base}"
interval = "1s"
timeout = "800ms"
[[targets]]
id = "contoso"
channels = ["contoso-graph", "m365-public", "msft365status-x"]
"#,
        user = simulator::SIM_X_USERNAME
    );
    let env = [
        (
            "STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET".to_string(),
            simulator::SIM_CLIENT_SECRET.to_string(),
        ),
        (
            "STATUSMON_CHANNEL__MSFT365STATUS_X__BEARER_TOKEN".to_string(),
            simulator::SIM_X_BEARER_TOKEN.to_string(),
        ),
    ];
    let config = statusmon::config::parse(&text, Path::new("t.toml"), env).expect("valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = Archive::open(dir.path(), statusmon::config::DEFAULT_ARCHIVE_RETENTION)
        .expect("archive opens");
    let client = engine::http_client().expect("client");
    let engine = Engine::with_builder(Arc::new(config.clone()), |channel| {
        archive.recording_channel(channel, &client)
    });
    let script = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        sim.set_graph_scenario(GraphScenario::Failing);
        tokio::time::sleep(Duration::from_secs(4)).await;
        sim.set_graph_scenario(GraphScenario::Healthy);
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    let (live, live_last) = live_changes(engine, script).await;
    archive.close();
    assert!(
        live.iter().any(|c| c.contains("fresh → failing")),
        "the script made Graph fail: {live:?}"
    );

    let text = all_text(dir.path());
    assert!(
        !text.contains(simulator::SIM_CLIENT_SECRET),
        "client secret archived"
    );
    assert!(
        !text.contains(simulator::SIM_X_BEARER_TOKEN),
        "bearer token archived"
    );

    let records = archive::read(dir.path()).expect("readable");
    // Replayed without credentials: the archive holds the sign-in answers.
    let config = statusmon::config::parse(&text_without_secrets(&config), Path::new("t.toml"), [])
        .expect("valid");
    let replay = tokio::task::spawn_blocking(move || archive::replay(config, records))
        .await
        .expect("joined")
        .expect("replayed");
    assert!(replay.differences.is_empty(), "{:?}", replay.differences);
    // The same story: each channel's and each incident's transitions in the same order, and the
    // same last picture. (Which answers one resolution saw together depends on when they
    // arrived around the 200 ms coalescing edge, so the lines about services may group
    // differently.)
    let replayed: Vec<String> = replay.changes.iter().map(|c| c.text.clone()).collect();
    assert!(spine(&live).len() >= 6, "a story worth telling: {live:?}");
    assert_eq!(
        spine(&replayed),
        spine(&live),
        "replay tells the live story"
    );
    let last = replay.last.expect("a last picture");
    let picture = |d: &statusmon::status::StatusDocument| {
        d.targets
            .iter()
            .map(|t| (t.verdict, t.visibility, t.source.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(picture(&last), picture(&live_last));
}

/// The same channels and targets, written back without any credential.
fn text_without_secrets(config: &statusmon::config::Config) -> String {
    let mut text = String::new();
    for channel in &config.channels {
        let (kind, settings) = match &channel.kind {
            statusmon::config::ChannelSettings::Graph(g) => (
                "graph",
                format!(
                    "tenant_id = \"{}\"\nclient_id = \"x\"\nauthority = \"{}\"\ngraph_url = \"{}\"\n",
                    g.tenant_id, g.authority, g.graph_url
                ),
            ),
            statusmon::config::ChannelSettings::M365StatusSite(s) => (
                "m365_status_site",
                format!("base_url = \"{}\"\n", s.base_url),
            ),
            statusmon::config::ChannelSettings::X(x) => (
                "x",
                format!(
                    "username = \"{}\"\nbase_url = \"{}\"\n",
                    x.username, x.base_url
                ),
            ),
            _ => continue,
        };
        text.push_str(&format!(
            "[[channels]]\nid = \"{}\"\nkind = \"{kind}\"\ninterval = \"1s\"\ntimeout = \"800ms\"\n{settings}",
            channel.id
        ));
    }
    text.push_str(
        "[[targets]]\nid = \"contoso\"\nchannels = [\"contoso-graph\", \"m365-public\", \"msft365status-x\"]\n",
    );
    text
}

#[test]
fn pruning_forgets_days_past_retention_and_the_bodies_only_they_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let day = |d: &str| format!("{d}.jsonl");
    let channel = root.join("contoso-graph");
    std::fs::create_dir_all(&channel).expect("channel folder");
    std::fs::create_dir_all(root.join("bodies")).expect("bodies folder");
    for d in ["2026-11-01", "2026-11-10", "2026-11-11", "2026-11-25"] {
        std::fs::write(channel.join(day(d)), "{}\n").expect("day file");
    }
    std::fs::write(channel.join("notes.txt"), "kept: not a day file").expect("other file");
    // Bodies last used on the 9th, the 10th and the 11th.
    let used = |name: &str, on: &str| {
        let path = root.join("bodies").join(name);
        std::fs::write(&path, "body").expect("body");
        let at = chrono::DateTime::parse_from_rfc3339(&format!("{on}T12:00:00Z")).expect("time");
        let at = std::time::SystemTime::from(at.with_timezone(&chrono::Utc));
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(at))
            .expect("mtime");
    };
    used("a", "2026-11-09");
    used("b", "2026-11-10");
    used("c", "2026-11-11");
    // 14 days before the 25th, 09:00: the 11th is the oldest day kept.
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let removed = archive::prune(root, Duration::from_secs(14 * 24 * 3600), now).expect("prunes");
    let left = |folder: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .expect("folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        left(&channel),
        [
            day("2026-11-11"),
            day("2026-11-25"),
            "notes.txt".to_string()
        ]
    );
    assert_eq!(left(&root.join("bodies")), ["c"]);
    assert_eq!(removed, 4);
    // Again: nothing more to do.
    assert_eq!(
        archive::prune(root, Duration::from_secs(14 * 24 * 3600), now).expect("prunes"),
        0
    );
}
