//! The store: the SQLite store itself in a temp dir (migrations, reopen, a newer schema, a
//! corrupt file, retention, atomic rounds, history only on change), the `[store]` config keys,
//! and the real check end to end: `statusmon run` killed with SIGKILL and restarted on the same
//! database neither loses an ongoing incident nor announces it twice.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use statusmon::alerts::EventKind;
use statusmon::alerts::events::between;
use statusmon::config;
use statusmon::engine::{self, Engine};
use statusmon::status::{self, Change, StatusDocument};
use statusmon::store::sqlite::SCHEMA_VERSION;
use statusmon::store::{Recorder, Snapshot, SqliteStore, Store, StoreError};
use statusmon_channels::{
    Health, IncidentClassification, IncidentObservation, Observation, ProbeError,
    ServiceObservation,
};

use crate::support::site_config;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn observation(at: DateTime<Utc>, digest: &str, incident: Option<&str>) -> Observation {
    Observation {
        channel: "m365-public".into(),
        observed_at: at,
        source_time: Some(at),
        services: vec![ServiceObservation {
            id: "mac".into(),
            name: "Microsoft 365 admin center".into(),
            health: if incident.is_some() {
                Health::Incident
            } else {
                Health::Operational
            },
            status_text: "Available".into(),
            as_of: Some(at),
            message: None,
            incidents: incident.iter().map(|s| s.to_string()).collect(),
        }],
        incidents: incident
            .iter()
            .map(|id| IncidentObservation {
                id: Some(id.to_string()),
                title: "Admins can't open the admin center".into(),
                service: Some("mac".into()),
                classification: IncidentClassification::Incident,
                status: "investigating".into(),
                resolved: false,
                started_at: Some(at),
                updated_at: Some(at),
                summary: None,
            })
            .collect(),
        faults: Vec::new(),
        digest: digest.into(),
    }
}

/// An engine over one public-site channel (never probed here: outcomes are recorded by hand).
fn site_engine() -> Engine {
    let client = engine::http_client().expect("http client");
    Engine::new(Arc::new(site_config("http://127.0.0.1:9", "")), &client)
}

/// Records `outcome` at `at`, resolves, and writes the round through a recorder.
async fn round(
    engine: &mut Engine,
    recorder: &mut Recorder,
    shown: &mut Option<Arc<StatusDocument>>,
    outcome: Result<Observation, ProbeError>,
    at: DateTime<Utc>,
) -> Vec<Change> {
    engine.record("m365-public", outcome, at);
    let targets = engine.resolve(at);
    let document = Arc::new(engine.document(targets, at));
    let changes = shown
        .as_ref()
        .map(|before| status::changes(before, &document))
        .unwrap_or_default();
    let alerts = between(shown.as_deref(), &document);
    let notice = recorder
        .record(
            engine.records(),
            engine.memory(),
            &document,
            &changes,
            &alerts,
        )
        .await;
    assert_eq!(notice, None, "the write succeeded");
    *shown = Some(document);
    changes
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, 30 * DAY)
        .await
        .expect("store opens")
}

#[tokio::test]
async fn a_new_store_is_migrated_from_empty_and_has_nothing_to_restore() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = open(&path).await;
    let snapshot = store.load().await.unwrap();
    assert!(snapshot.is_empty());
    store.close().await.unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Opening again applies nothing twice.
    let store = open(&path).await;
    assert!(store.load().await.unwrap().is_empty());
}

#[tokio::test]
async fn reopening_restores_channels_memory_document_and_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keep.db");
    let store = open(&path).await;
    let mut engine = site_engine();
    let mut recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let mut shown = None;
    let t0 = Utc::now() - TimeDelta::seconds(5);
    round(
        &mut engine,
        &mut recorder,
        &mut shown,
        Ok(observation(t0, "d1", Some("MO123456"))),
        t0,
    )
    .await;
    recorder.close().await;

    let store = open(&path).await;
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.channels.len(), 1);
    assert_eq!(
        snapshot.channels[0].observation,
        Some(observation(t0, "d1", Some("MO123456")))
    );
    assert_eq!(snapshot.memory.get("t1"), engine.memory().get("t1"));
    let document = snapshot.document.as_ref().expect("the last document");
    assert!(document.same_picture(shown.as_ref().unwrap()));
    assert_eq!(statusmon::store::ongoing_incidents(document), 1);
    let incidents = store.incidents().await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].id, "MO123456");
    assert_eq!(incidents[0].target, "t1");
    assert_eq!(incidents[0].sources, ["m365-public"]);
    assert!(incidents[0].listed && !incidents[0].resolved);
    // The round's alert events were written with it: the admin center down, the incident new.
    let outbox = store.outbox().await.unwrap();
    let queued: Vec<(EventKind, &str)> = outbox
        .iter()
        .map(|row| (row.event.kind, row.event.alert.as_str()))
        .collect();
    assert_eq!(
        queued,
        [
            (EventKind::AdminPlane, "t1/admin-plane"),
            (EventKind::IncidentNew, "t1/incident/MO123456"),
        ]
    );
    assert!(
        outbox[0].id < outbox[1].id,
        "delivered in the order they happened"
    );

    // A fresh engine given the snapshot shows the same picture (the channel is still fresh).
    let mut restored = engine_restored(&snapshot);
    let now = Utc::now();
    let targets = restored.resolve(now);
    let again = restored.document(targets, now);
    assert!(status::changes(document, &again).is_empty());
}

fn engine_restored(snapshot: &Snapshot) -> Engine {
    let mut engine = site_engine();
    assert_eq!(engine.restore(snapshot), 1);
    engine
}

#[tokio::test]
async fn an_old_observation_is_restored_as_stale_never_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("old.db")).await;
    let mut engine = site_engine();
    let mut recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let long_ago = Utc::now() - TimeDelta::hours(2);
    round(
        &mut engine,
        &mut recorder,
        &mut None,
        Ok(observation(long_ago, "d1", None)),
        long_ago,
    )
    .await;
    let snapshot = store.load().await.unwrap();
    let mut restored = engine_restored(&snapshot);
    let now = Utc::now();
    let document = restored.document(restored.peek(now), now);
    assert_eq!(document.channels[0].state.as_str(), "stale");
}

#[tokio::test]
async fn restore_ignores_channels_and_targets_the_config_no_longer_has() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("moved.db")).await;
    let mut engine = site_engine();
    let mut recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let now = Utc::now();
    round(
        &mut engine,
        &mut recorder,
        &mut None,
        Ok(observation(now, "d1", None)),
        now,
    )
    .await;
    let mut snapshot = store.load().await.unwrap();
    for channel in &mut snapshot.channels {
        channel.id = "gone-channel".into();
    }
    snapshot.memory = [("gone-target".to_string(), Default::default())].into();
    let mut fresh = site_engine();
    assert_eq!(fresh.restore(&snapshot), 0);
    assert!(fresh.memory().is_empty());
}

#[tokio::test]
async fn a_store_from_a_newer_statusmon_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    open(&path).await.close().await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let error = SqliteStore::open(&path, DAY).await.expect_err("too new");
    assert!(matches!(error, StoreError::TooNew { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{message}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let error = SqliteStore::open(&path, DAY).await.expect_err("corrupt");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot open the store {}", path.display())),
        "{message}"
    );
}

#[tokio::test]
async fn history_keeps_a_row_only_when_the_answer_or_error_class_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("history.db")).await;
    let mut engine = site_engine();
    let mut recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let mut shown = None;
    let t = Utc::now() - TimeDelta::seconds(60);
    let at = |s: i64| t + TimeDelta::seconds(s);
    let network = || ProbeError::Network {
        message: "connection refused".into(),
    };
    for (s, outcome) in [
        (0, Ok(observation(at(0), "d1", None))),
        (1, Ok(observation(at(1), "d1", None))),
        (2, Ok(observation(at(2), "d2", None))),
        (3, Err(network())),
        (4, Err(network())),
        (5, Ok(observation(at(5), "d2", None))),
    ] {
        round(&mut engine, &mut recorder, &mut shown, outcome, at(s)).await;
    }
    let rows = store.history(Some("m365-public".into())).await.unwrap();
    let keys: Vec<(Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|r| (r.digest.as_deref(), r.error_class.as_deref()))
        .collect();
    assert_eq!(
        keys,
        [
            (Some("d1"), None),
            (Some("d2"), None),
            (None, Some("network")),
            (Some("d2"), None)
        ]
    );
    assert_eq!(rows[2].error_message.as_deref(), Some("connection refused"));
    // The channel's state row follows every outcome, identical or not.
    let snapshot = store.load().await.unwrap();
    assert_eq!(
        snapshot.channels[0]
            .observation
            .as_ref()
            .map(|o| o.observed_at),
        Some(at(5))
    );
    // Every announced change is a transition.
    let transitions = store.transitions().await.unwrap();
    assert!(
        transitions
            .iter()
            .any(|t| t.channel.as_deref() == Some("m365-public") && t.text.contains("failing")),
        "{transitions:?}"
    );
}

#[tokio::test]
async fn retention_prunes_old_history_but_not_channel_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("prune.db"), Duration::from_secs(3600))
        .await
        .unwrap();
    let mut engine = site_engine();
    let mut recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let mut shown = None;
    let old = Utc::now() - TimeDelta::hours(3);
    round(
        &mut engine,
        &mut recorder,
        &mut shown,
        Ok(observation(old, "old", None)),
        old,
    )
    .await;
    round(
        &mut engine,
        &mut recorder,
        &mut shown,
        Err(ProbeError::Network {
            message: "down".into(),
        }),
        old + TimeDelta::seconds(1),
    )
    .await;
    assert_eq!(store.history(None).await.unwrap().len(), 2);
    assert!(!store.transitions().await.unwrap().is_empty());

    let pruned = store.prune(Utc::now()).await.unwrap();
    assert!(pruned >= 3, "pruned {pruned}");
    assert!(store.history(None).await.unwrap().is_empty());
    assert!(store.transitions().await.unwrap().is_empty());
    let snapshot = store.load().await.unwrap();
    let channel = &snapshot.channels[0];
    assert_eq!(
        channel.observation.as_ref().map(|o| o.digest.as_str()),
        Some("old"),
        "the last-known state outlives the retention"
    );
    assert!(channel.error.is_some());
    assert!(snapshot.document.is_some() && !snapshot.memory.is_empty());
}

#[tokio::test]
async fn a_round_is_written_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atomic.db");
    let store = open(&path).await;
    // Make the last statement of a round fail: a transition saying "boom" is refused.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON transitions WHEN NEW.text LIKE '%boom%'
             BEGIN SELECT RAISE(ABORT, 'refused by test'); END;",
        )
        .unwrap();
    let mut engine = site_engine();
    let now = Utc::now();
    engine.record(
        "m365-public",
        Ok(observation(now, "d1", Some("MO123456"))),
        now,
    );
    let targets = engine.resolve(now);
    let document = Arc::new(engine.document(targets, now));
    let alerts = between(None, &document);
    assert_eq!(alerts.len(), 2, "the admin center down, the incident new");
    let boom = Change {
        target: Some("t1".into()),
        channel: None,
        text: "boom".into(),
    };
    let mut recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let notice = recorder
        .record(
            engine.records(),
            engine.memory(),
            &document,
            std::slice::from_ref(&boom),
            &alerts,
        )
        .await
        .expect("a failing store is reported once");
    assert!(notice.contains("cannot write"), "{notice}");
    let snapshot = store.load().await.unwrap();
    assert!(
        snapshot.is_empty(),
        "nothing of the failed round was kept: {snapshot:?}"
    );
    assert!(store.history(None).await.unwrap().is_empty());
    assert!(store.incidents().await.unwrap().is_empty());
    assert!(
        store.outbox().await.unwrap().is_empty(),
        "no alert without its round"
    );

    // Once the store accepts writes again, the next round writes everything, the kept
    // transition and alerts included (the next round has no alerts of its own).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TRIGGER refuse")
        .unwrap();
    let notice = recorder
        .record(engine.records(), engine.memory(), &document, &[], &[])
        .await;
    assert!(notice.is_some_and(|n| n.contains("writing again")));
    let queued: Vec<_> = store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.event)
        .collect();
    assert_eq!(queued, alerts);
    // Handed the same events again (a retried round), the outbox keeps each once.
    recorder
        .record(engine.records(), engine.memory(), &document, &[], &alerts)
        .await;
    assert_eq!(store.outbox().await.unwrap().len(), 2);
    assert!(!store.load().await.unwrap().is_empty());
    let texts: Vec<String> = store
        .transitions()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.text)
        .collect();
    assert_eq!(texts, ["boom"]);
}

#[tokio::test]
async fn an_unchanged_round_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("quiet.db")).await;
    let mut engine = site_engine();
    let now = Utc::now();
    engine.record("m365-public", Ok(observation(now, "d1", None)), now);
    let recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let targets = engine.resolve(now);
    let first = Arc::new(engine.document(targets, now));
    assert!(
        !recorder
            .round(engine.records(), engine.memory(), &first, &[], &[])
            .is_empty()
    );
    // Restored from what was written, a second resolution a second later has nothing new.
    let mut recorder = recorder;
    recorder
        .record(engine.records(), engine.memory(), &first, &[], &[])
        .await;
    let later = now + TimeDelta::seconds(1);
    let targets = engine.resolve(later);
    let second = Arc::new(engine.document(targets, later));
    assert!(
        recorder
            .round(engine.records(), engine.memory(), &second, &[], &[])
            .is_empty()
    );
}

#[test]
fn store_retention_is_a_duration_with_a_default_and_a_floor() {
    let parse = |store: &str| {
        let text = format!(
            "[store]\n{store}\n[[channels]]\nid = \"c\"\nkind = \"m365_status_site\"\n\
             [[targets]]\nid = \"t\"\nchannels = [\"c\"]\n"
        );
        config::parse(&text, Path::new("store.toml"), std::iter::empty())
    };
    let default = parse("path = \"x.db\"").unwrap();
    assert_eq!(default.store.retention, 30 * DAY);
    assert_eq!(default.store.path, Path::new("x.db"));
    assert_eq!(
        parse("retention = \"12h\"").unwrap().store.retention,
        Duration::from_secs(12 * 3600)
    );
    for (value, needle) in [("\"soon\"", "is not a duration"), ("\"10s\"", "too short")] {
        let error = parse(&format!("retention = {value}"))
            .expect_err("invalid retention")
            .to_string();
        assert!(
            error.contains("store.retention") && error.contains(needle),
            "{error}"
        );
    }
    let shipped = config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"))
        .expect("the shipped config parses");
    assert_eq!(shipped.store.retention, 30 * DAY);
}

// ---------------------------------------------------------------------------------------------
// End to end: kill -9 and restart.

mod restart {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use rand::Rng;
    use serde_json::Value;
    use statusmon::simulator::{self, GraphScenario};
    use tokio::io::{AsyncBufReadExt, BufReader};

    use crate::support::{Reply, bin, mock, plain_client};
    use crate::web::graph_sim;

    const SECRET_VAR: &str = "STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET";

    /// Graph (primary, probed every second) and a public-site channel whose upstream never
    /// answers: it is always failing, and it holds every first round back for its 1 s timeout,
    /// so what the API serves before that is the restored state and nothing else.
    fn toml(graph: &str, site: &str, db: &Path) -> String {
        format!(
            r#"[server]
listen = "127.0.0.1:0"

[store]
path = "{db}"

[[channels]]
id = "contoso-graph"
kind = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "statusmon-test"
authority = "{graph}"
graph_url = "{graph}"
interval = "1s"
timeout = "900ms"
# Long enough that a restart under a loaded test machine still finds the restored answer fresh.
max_age = "60s"
budget_per_hour = 100000

[[channels]]
id = "m365-public"
kind = "m365_status_site"
base_url = "{site}"
interval = "1s"
timeout = "1s"

[[targets]]
id = "contoso"
name = "Contoso"
channels = ["contoso-graph", "m365-public"]

[alerts]
attempts = 1
retry_max_delay = "1s"

# The simulator's webhook receiver: down while the daemon is killed between transitions and
# their delivery, up for the later runs.
[[sinks]]
id = "ops"
kind = "webhook"
url = "{graph}/hooks/webhook/ops"

[[routes]]
id = "all"
sinks = ["ops"]
"#,
            db = db.display()
        )
    }

    /// One `statusmon run`, its stdout collected line by line.
    struct Daemon {
        child: tokio::process::Child,
        base: String,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl Daemon {
        async fn start(config: &Path) -> Daemon {
            let mut child = tokio::process::Command::new(bin())
                .args(["run", "--config"])
                .arg(config)
                .current_dir(config.parent().unwrap())
                .env(SECRET_VAR, simulator::SIM_CLIENT_SECRET)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn statusmon run");
            let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
            let lines = Arc::new(Mutex::new(Vec::new()));
            let base = tokio::time::timeout(Duration::from_secs(15), async {
                while let Ok(Some(line)) = stdout.next_line().await {
                    lines.lock().unwrap().push(line.clone());
                    if let Some(rest) = line.strip_prefix("serving the HTTP API on ") {
                        return rest.split(' ').next().map(str::to_string);
                    }
                }
                None
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no API address; got {:?}", lines.lock().unwrap()));
            let sink = Arc::clone(&lines);
            tokio::spawn(async move {
                while let Ok(Some(line)) = stdout.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            });
            Daemon { child, base, lines }
        }

        fn output(&self) -> Vec<String> {
            self.lines.lock().unwrap().clone()
        }

        async fn wait_for_line(&self, what: impl Fn(&str) -> bool) -> String {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Some(line) = self.output().into_iter().find(|l| what(l)) {
                    return line;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the line never came; output:\n{}", self.output().join("\n"));
        }

        async fn get(&self, path: &str) -> (u16, Value) {
            let response = plain_client()
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("the API answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }

        /// SIGKILL: no flush, no goodbye.
        async fn kill9(mut self) -> Vec<String> {
            self.child.start_kill().expect("kill -9");
            self.child.wait().await.expect("reaped");
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.output()
        }
    }

    /// The idempotency keys the simulator's webhook receiver accepted.
    fn delivered_keys(sim: &simulator::SimHandle) -> Vec<String> {
        sim.hook_deliveries_to("webhook/ops")
            .into_iter()
            .filter(|d| !d.refused)
            .filter_map(|d| d.idempotency_key)
            .collect()
    }

    fn incident<'a>(document: &'a Value, id: &str) -> Option<&'a Value> {
        document["targets"][0]["incidents"]
            .as_array()?
            .iter()
            .find(|i| i["id"] == id)
    }

    /// How often the incident was announced as new: as a row of a fresh start's first table,
    /// or as a change line.
    fn announced_new(lines: &[String], id: &str) -> usize {
        let row = format!("incident {id}: ");
        lines
            .iter()
            .filter(|l| {
                l.trim_start().starts_with(&row) || (l.contains(&row) && l.contains("(reported by"))
            })
            .count()
    }

    fn announced_status_change(lines: &[String], id: &str) -> usize {
        lines
            .iter()
            .filter(|l| l.contains(&format!("incident {id}: ")) && l.contains(" → "))
            .count()
    }

    /// Starts a daemon and checks what it serves before its first round: 200 at once, the
    /// restored incident in it, no round completed yet.
    async fn restart_and_check_restored(config: &Path, id: &str) -> (Daemon, Value) {
        let daemon = Daemon::start(config).await;
        let (status, document) = daemon.get("/api/v1/status").await;
        let output = daemon.output();
        assert_eq!(status, 200, "answers at once after a restart: {document}");
        assert!(
            !output.iter().any(|l| l.contains("first round complete")),
            "checked before the first round:\n{}",
            output.join("\n")
        );
        assert!(
            output
                .iter()
                .any(|l| l.contains("restored last-known state from")),
            "{}",
            output.join("\n")
        );
        assert!(
            incident(&document, id).is_some(),
            "incident {id} restored: {document}"
        );
        (daemon, document)
    }

    #[tokio::test]
    async fn kill_9_and_restart_neither_loses_nor_reannounces_an_incident() {
        let sim = graph_sim(GraphScenario::Incident).await;
        let hanging = mock(vec![(
            "/",
            Reply::json("{}").delayed(Duration::from_secs(600)),
        )])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let config: PathBuf = dir.path().join("run.toml");
        let db = dir.path().join("state.db");
        std::fs::write(&config, toml(&sim.base_url(), &hanging.base_url, &db)).unwrap();
        let mut everything: Vec<String> = Vec::new();
        sim.set_hook_down("webhook/ops", true);

        // Run 1: the incident is announced once and listed.
        let daemon = Daemon::start(&config).await;
        let line = daemon
            .wait_for_line(|l| l.trim_start().starts_with("incident TM"))
            .await;
        let id = line
            .trim_start()
            .strip_prefix("incident ")
            .and_then(|rest| rest.split(':').next())
            .unwrap()
            .to_string();
        let (_, incidents) = daemon.get("/api/v1/incidents").await;
        assert!(incidents.to_string().contains(&id), "{incidents}");
        everything.extend(daemon.kill9().await);

        // Run 2: restored at once, and the first round (diffed against the stored picture)
        // announces nothing about the incident, on stdout or as an event.
        let (daemon, restored) = restart_and_check_restored(&config, &id).await;
        assert_eq!(incident(&restored, &id).unwrap()["resolved"], false);
        assert_eq!(restored["channels"][0]["state"], "fresh");
        let mut events = plain_client()
            .get(format!("{}/api/v1/events", daemon.base))
            .send()
            .await
            .expect("events");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let reader = tokio::spawn(async move {
            while let Ok(Some(chunk)) = events.chunk().await {
                sink.lock().unwrap().extend_from_slice(&chunk);
            }
        });
        daemon
            .wait_for_line(|l| l.contains("first round complete"))
            .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        reader.abort();
        let sse = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        assert!(sse.contains("event: status"), "{sse}");
        let change_events: Vec<&str> = sse
            .split("\n\n")
            .filter(|block| block.contains("event: change"))
            .collect();
        // Neither announced as new nor as a change of status. (Its text may legitimately move:
        // the simulator's "Next update by" time is now + 30 min, to the minute, so a restart
        // across a minute boundary sees a "still serviceInterruption: …" update.)
        assert!(
            !change_events
                .iter()
                .any(|e| e.contains(&id) && (e.contains("(reported by") || e.contains(" → "))),
            "{id} announced again after the restart: {change_events:?}"
        );
        let output = daemon.kill9().await;
        assert_eq!(announced_new(&output, &id), 0, "{}", output.join("\n"));
        everything.extend(output);

        // While it is down, Microsoft closes the incident. Run 3 says so exactly once.
        sim.set_graph_scenario(GraphScenario::IncidentRestored);
        let (daemon, _) = restart_and_check_restored(&config, &id).await;
        daemon
            .wait_for_line(|l| l.contains(&format!("incident {id}: ")) && l.contains(" → "))
            .await;
        everything.extend(daemon.kill9().await);

        // Kill -9 at random moments: the incident (now resolved) is always there at once, and
        // nothing about it is announced again.
        for round in 0..5 {
            if round == 2 {
                // From here on kills can land while deliveries are in flight.
                sim.set_hook_down("webhook/ops", false);
            }
            let (daemon, restored) = restart_and_check_restored(&config, &id).await;
            assert_eq!(incident(&restored, &id).unwrap()["resolved"], true);
            let pause = rand::rng().random_range(0..2500);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            everything.extend(daemon.kill9().await);
        }

        // A last run, stopped gracefully once the incident's end has been delivered.
        let mut daemon = Daemon::start(&config).await;
        daemon
            .wait_for_line(|l| l.contains("first round complete"))
            .await;
        let resolved_key = format!("contoso/incident/{id}#incident_resolved@");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !delivered_keys(&sim)
            .iter()
            .any(|k| k.starts_with(&resolved_key))
        {
            assert!(Instant::now() < deadline, "{:#?}", sim.hook_deliveries());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let pid = daemon.child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = tokio::time::timeout(Duration::from_secs(8), daemon.child.wait())
            .await
            .expect("stops after SIGTERM")
            .unwrap();
        assert_eq!(status.code(), Some(0));
        tokio::time::sleep(Duration::from_millis(50)).await;
        everything.extend(daemon.output());

        let all = everything.join("\n");
        assert_eq!(announced_new(&everything, &id), 1, "{all}");
        assert_eq!(announced_status_change(&everything, &id), 1, "{all}");
        assert!(
            everything
                .iter()
                .any(|l| l.contains(&format!("incident {id}: serviceInterruption → "))),
            "{all}"
        );
        // The outbox, written with each round, holds the incident's alert once as new and once
        // as resolved, across eight restarts and seven kills.
        let store = statusmon::store::SqliteStore::open(&db, 30 * super::DAY)
            .await
            .expect("store opens");
        use statusmon::store::Store as _;
        let outbox = store.alert_log().await.unwrap();
        // And every alert reached the receiver, though it was down for the first runs and the
        // daemon was killed with deliveries pending and in flight.
        let received = delivered_keys(&sim);
        let lost: Vec<&String> = outbox
            .iter()
            .map(|row| &row.event.idempotency_key)
            .filter(|key| !received.contains(key))
            .collect();
        assert!(lost.is_empty(), "lost {lost:?}; received {received:?}");
        let of_incident = |kind: statusmon::alerts::EventKind| {
            outbox
                .iter()
                .filter(|row| row.event.incident.as_deref() == Some(id.as_str()))
                .filter(|row| row.event.kind == kind)
                .count()
        };
        let queued: Vec<String> = outbox.iter().map(|r| r.event.summary.clone()).collect();
        assert_eq!(
            of_incident(statusmon::alerts::EventKind::IncidentNew),
            1,
            "{queued:#?}"
        );
        assert_eq!(
            of_incident(statusmon::alerts::EventKind::IncidentResolved),
            1,
            "{queued:#?}"
        );
        store.close().await.unwrap();
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn history_prints_what_run_announced_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let store = open(&path).await;
    let mut engine = site_engine();
    let mut recorder = Recorder::new(Arc::new(store.clone()), &Snapshot::default());
    let mut shown = None;
    let t0 = Utc::now() - TimeDelta::seconds(60);
    round(
        &mut engine,
        &mut recorder,
        &mut shown,
        Ok(observation(t0, "d1", None)),
        t0,
    )
    .await;
    let t1 = t0 + TimeDelta::seconds(30);
    let changes = round(
        &mut engine,
        &mut recorder,
        &mut shown,
        Ok(observation(t1, "d2", Some("MO123456"))),
        t1,
    )
    .await;
    assert!(
        changes.iter().any(|c| c.text.contains("MO123456")),
        "{changes:#?}"
    );
    recorder.close().await;

    let config = dir.path().join("statusmon.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\n\
             [[targets]]\nid = \"t1\"\nname = \"Test\"\nchannels = [\"m365-public\"]\n",
            path.display().to_string()
        ),
    )
    .unwrap();
    let history = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::bin())
            .arg("--config")
            .arg(&config)
            .arg("history")
            .args(args)
            .output()
            .expect("statusmon runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, text, _) = history(&[]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("incident MO123456")),
        "{text}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("20")),
        "each line starts with its time: {text}"
    );
    for text in changes.iter().map(|c| &c.text) {
        assert!(
            lines.iter().any(|l| l.ends_with(text.as_str())),
            "{text} missing:\n{lines:#?}"
        );
    }

    let (code, json, _) = history(&["--incidents", "--json", "--target", "t1"]);
    assert_eq!(code, Some(0));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect();
    assert_eq!(rows.len(), 1, "{json}");
    assert_eq!(rows[0]["id"], "MO123456");
    assert_eq!(rows[0]["listed"], true);

    // The channel's own history: one row per changed answer (two digests here).
    let (code, text, _) = history(&["--channel", "m365-public"]);
    assert_eq!(code, Some(0));
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter()
            .all(|l| l.contains("channel m365-public: answered (digest ")),
        "{text}"
    );
    let (code, _, error) = history(&["--channel", "nope"]);
    assert_eq!(code, Some(1));
    assert!(
        error.contains("nope") && error.contains("m365-public"),
        "{error}"
    );

    // Nothing within the last second; an unknown target is said plainly.
    let (code, text, _) = history(&["--since", "1s"]);
    assert_eq!((code, text.as_str()), (Some(0), ""));
    let (code, _, error) = history(&["--target", "fabrikam"]);
    assert_eq!(code, Some(1));
    assert!(
        error.contains("fabrikam") && error.contains("t1"),
        "{error}"
    );
}
