//! Alert delivery: the outbox drained through routes to the simulator's receivers, in order,
//! with fallback, holds (silences, maintenance, acknowledgements), reminders and restarts.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveTime, TimeZone, Utc, Weekday};
use statusmon::alerts::delivery::{AlertBook, Alerting, Dispatcher, Plan};
use statusmon::alerts::routes::{EventFilter, Route, Schedule, Silence};
use statusmon::alerts::{AlertEvent, EventKind, Purpose, Severity};
use statusmon::config::{self, AlertsConfig};
use statusmon::simulator::{SIM_WEBHOOK_SECRET, Scenario, SignatureCheck, SimHandle};
use statusmon::store::{Acknowledgement, DeliveryOutcome, SqliteStore, Store};
use tokio::sync::watch;

use crate::support::simulator;

/// The alerting part of a config whose one target is `contoso`.
fn alerts_config(extra: &str) -> AlertsConfig {
    let text = format!(
        r#"
[[channels]]
id = "m365-public"
kind = "m365_status_site"

[[targets]]
id = "contoso"
channels = ["m365-public"]

{extra}
"#
    );
    config::parse(&text, Path::new("alerts.toml"), Vec::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .alerts
}

/// A webhook sink on the simulator's receiver `name`, signed with its secret, plus `routes`.
fn webhook_sinks(sim: &SimHandle, names: &[&str], routes: &str) -> AlertsConfig {
    let mut text =
        String::from("[alerts]\nattempts = 1\nretry_max_delay = \"1s\"\nremind_every = \"0s\"\n");
    for name in names {
        text.push_str(&format!(
            "[[sinks]]\nid = \"{name}\"\nkind = \"webhook\"\nurl = \"{}/hooks/webhook/{name}\"\n\
             secret = \"{SIM_WEBHOOK_SECRET}\"\ntimeout = \"2s\"\n",
            sim.base_url()
        ));
    }
    text.push_str(routes);
    alerts_config(&text)
}

fn event(alert: &str, kind: EventKind, firing: bool, severity: Severity, n: u32) -> AlertEvent {
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, n).unwrap();
    AlertEvent {
        alert: format!("contoso/{alert}"),
        idempotency_key: format!("contoso/{alert}#{}@{n}", kind.as_str()),
        kind,
        target: "contoso".into(),
        service: Some("Exchange".into()),
        incident: None,
        severity,
        firing,
        summary: format!("Contoso: event {n}"),
        detail: String::new(),
        at,
        purpose: Purpose::Transition,
    }
}

/// An incident's life: new, two updates, resolved.
fn incident_life(id: &str, from: u32) -> Vec<AlertEvent> {
    let alert = format!("incident/{id}");
    vec![
        event(
            &alert,
            EventKind::IncidentNew,
            true,
            Severity::Critical,
            from,
        ),
        event(
            &alert,
            EventKind::IncidentUpdated,
            true,
            Severity::Critical,
            from + 1,
        ),
        event(
            &alert,
            EventKind::IncidentUpdated,
            true,
            Severity::Critical,
            from + 2,
        ),
        event(
            &alert,
            EventKind::IncidentResolved,
            false,
            Severity::Info,
            from + 3,
        ),
    ]
}

struct Delivery {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    alerting: Alerting,
    store: Arc<dyn Store>,
    /// The store's folder, when this delivery made it.
    _dir: Option<tempfile::TempDir>,
}

impl Delivery {
    /// Delivery over a new store in a temporary folder.
    async fn fresh(config: &AlertsConfig) -> Delivery {
        let dir = tempfile::tempdir().unwrap();
        let mut delivery = Delivery::start(open_store(&dir).await, config).await;
        delivery._dir = Some(dir);
        delivery
    }

    /// Stops delivery and closes its store.
    async fn finish(self) {
        let _dir = self._dir;
        self.stop.send_replace(true);
        self.task.await.unwrap();
        self.store.close().await.unwrap();
    }

    async fn start(store: Arc<dyn Store>, config: &AlertsConfig) -> Delivery {
        let plan = Plan::build(config, &statusmon::engine::http_client().unwrap()).unwrap();
        let (dispatcher, alerting) = Dispatcher::start(plan, Arc::clone(&store)).await.unwrap();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(dispatcher.run(stopped));
        Delivery {
            stop,
            task,
            alerting,
            store,
            _dir: None,
        }
    }

    async fn enqueue(&self, events: Vec<AlertEvent>) {
        self.store.enqueue(events, Utc::now()).await.unwrap();
        self.alerting.wake();
    }

    /// Waits until the outbox is empty.
    async fn drained(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = self.store.outbox().await.unwrap();
            if left.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still undelivered: {:?}",
                left.iter()
                    .map(|r| &r.event.idempotency_key)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops delivery and hands back its store (for a restart over it).
    async fn stop(self) -> Arc<dyn Store> {
        self.stop.send_replace(true);
        self.task.await.unwrap();
        self.store
    }
}

async fn open_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open(&dir.path().join("alerts.db"), Duration::from_secs(86_400))
            .await
            .unwrap(),
    )
}

/// The idempotency keys a receiver accepted, in arrival order.
fn accepted(sim: &SimHandle, receiver: &str) -> Vec<String> {
    sim.hook_deliveries_to(receiver)
        .into_iter()
        .filter(|d| !d.refused)
        .filter_map(|d| d.idempotency_key)
        .collect()
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_alert_afterwards_in_order_once_each() {
    let sim = simulator(Scenario::Healthy).await;
    let config = webhook_sinks(
        &sim,
        &["ops"],
        "[[routes]]\nid = \"all\"\nsinks = [\"ops\"]\n",
    );
    sim.set_hook_down("webhook/ops", true);
    let delivery = Delivery::fresh(&config).await;
    let mut events = incident_life("EX1", 0);
    events.extend(incident_life("EX2", 10));
    let keys: Vec<String> = events.iter().map(|e| e.idempotency_key.clone()).collect();
    delivery.enqueue(events[..3].to_vec()).await;
    // The receiver stays down through several rounds while more of the incident happens.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    delivery.enqueue(events[3..].to_vec()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(accepted(&sim, "webhook/ops").is_empty());
    let refused = sim.hook_deliveries_to("webhook/ops");
    assert!(refused.len() >= 2, "retried while down: {}", refused.len());
    let receipts = delivery.alerting.receipts(100).await.unwrap();
    assert!(
        receipts
            .iter()
            .any(|r| r.receipt.outcome == DeliveryOutcome::Failed
                && r.receipt.detail.contains("503")),
        "{receipts:#?}"
    );

    sim.set_hook_down("webhook/ops", false);
    delivery.drained(Duration::from_secs(15)).await;
    assert_eq!(accepted(&sim, "webhook/ops"), keys, "in order, each once");
    let signatures: Vec<Option<SignatureCheck>> = sim
        .hook_deliveries_to("webhook/ops")
        .into_iter()
        .filter(|d| !d.refused)
        .map(|d| d.signature)
        .collect();
    assert!(
        signatures.iter().all(|s| *s == Some(SignatureCheck::Valid)),
        "{signatures:?}"
    );
    delivery.finish().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn when_the_first_sink_fails_the_fallback_gets_the_alert_and_the_receipt_says_so() {
    let sim = simulator(Scenario::Healthy).await;
    let config = webhook_sinks(
        &sim,
        &["teams-like", "fallback"],
        "[[routes]]\nid = \"pager\"\nsinks = [\"teams-like\", \"fallback\"]\n",
    );
    sim.set_hook_down("webhook/teams-like", true);
    let delivery = Delivery::fresh(&config).await;
    let first = incident_life("EX3", 0);
    delivery.enqueue(first[..1].to_vec()).await;
    delivery.drained(Duration::from_secs(10)).await;
    assert_eq!(
        accepted(&sim, "webhook/fallback"),
        vec![first[0].idempotency_key.clone()]
    );
    assert!(accepted(&sim, "webhook/teams-like").is_empty());
    let receipts = delivery.alerting.receipts(10).await.unwrap();
    let receipt = &receipts[0].receipt;
    assert_eq!(receipt.outcome, DeliveryOutcome::Delivered);
    assert_eq!(receipt.sink.as_deref(), Some("fallback"));
    assert!(receipt.detail.contains("teams-like"), "{}", receipt.detail);

    // Each event starts from the first sink again: once it is back, it gets the next one.
    sim.set_hook_down("webhook/teams-like", false);
    delivery.enqueue(first[1..2].to_vec()).await;
    delivery.drained(Duration::from_secs(10)).await;
    assert_eq!(
        accepted(&sim, "webhook/teams-like"),
        vec![first[1].idempotency_key.clone()]
    );
    delivery.finish().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn routes_filter_by_severity_but_a_route_that_heard_an_alert_fire_hears_it_end() {
    let sim = simulator(Scenario::Healthy).await;
    let config = webhook_sinks(
        &sim,
        &["pager", "chat"],
        "[[routes]]\nid = \"critical\"\nmin_severity = \"critical\"\nsinks = [\"pager\"]\n\
         [[routes]]\nid = \"incidents\"\nkinds = [\"incident\"]\nsinks = [\"chat\"]\n",
    );
    let delivery = Delivery::fresh(&config).await;
    let warning = event(
        "service/Exchange",
        EventKind::ServiceVerdict,
        true,
        Severity::Warning,
        1,
    );
    let life = incident_life("EX4", 2);
    let mut all = vec![warning.clone()];
    all.extend(life.clone());
    delivery.enqueue(all).await;
    delivery.drained(Duration::from_secs(10)).await;
    let keys = |events: &[AlertEvent]| -> Vec<String> {
        events.iter().map(|e| e.idempotency_key.clone()).collect()
    };
    // The pager hears the critical incident and how it ends (an `info` event), not the warning.
    assert_eq!(accepted(&sim, "webhook/pager"), keys(&life));
    // The incident route hears incidents only.
    assert_eq!(accepted(&sim, "webhook/chat"), keys(&life));
    delivery.finish().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_restart_sends_a_row_only_where_it_has_not_gone() {
    let sim = simulator(Scenario::Healthy).await;
    let config = webhook_sinks(
        &sim,
        &["a", "b"],
        "[[routes]]\nid = \"a\"\nsinks = [\"a\"]\n[[routes]]\nid = \"b\"\nsinks = [\"b\"]\n",
    );
    sim.set_hook_down("webhook/b", true);
    let dir = tempfile::tempdir().unwrap();
    let delivery = Delivery::start(open_store(&dir).await, &config).await;
    let events = incident_life("EX5", 0);
    delivery.enqueue(events.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while accepted(&sim, "webhook/a").len() < events.len() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stopped while route b still waits: every row is still in the outbox.
    let store = delivery.stop().await;
    assert_eq!(store.outbox().await.unwrap().len(), events.len());
    sim.set_hook_down("webhook/b", false);
    let delivery = Delivery::start(store, &config).await;
    delivery.drained(Duration::from_secs(10)).await;
    let keys: Vec<String> = events.iter().map(|e| e.idempotency_key.clone()).collect();
    assert_eq!(
        accepted(&sim, "webhook/a"),
        keys,
        "a is not sent them again"
    );
    assert_eq!(accepted(&sim, "webhook/b"), keys);
    delivery.finish().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_silence_holds_an_alert_back_and_its_ending_too_while_other_alerts_go() {
    let sim = simulator(Scenario::Healthy).await;
    let config = webhook_sinks(
        &sim,
        &["ops"],
        "[[routes]]\nid = \"all\"\nsinks = [\"ops\"]\n",
    );
    let delivery = Delivery::fresh(&config).await;
    let now = Utc::now();
    delivery
        .alerting
        .silence(Silence {
            id: "s1".into(),
            filter: EventFilter::default(),
            alert: Some("contoso/incident/EX6".into()),
            comment: "known, vendor ticket 42".into(),
            created_at: now,
            ends_at: now + chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    let silenced = incident_life("EX6", 0);
    let other = incident_life("EX7", 10);
    let mut all = silenced.clone();
    all.extend(other.clone());
    delivery.enqueue(all).await;
    delivery.drained(Duration::from_secs(10)).await;
    let keys: Vec<String> = other.iter().map(|e| e.idempotency_key.clone()).collect();
    assert_eq!(accepted(&sim, "webhook/ops"), keys);
    let receipts = delivery.alerting.receipts(100).await.unwrap();
    let held: Vec<_> = receipts
        .iter()
        .filter(|r| r.alert == "contoso/incident/EX6")
        .collect();
    assert_eq!(held.len(), silenced.len(), "{receipts:#?}");
    assert!(
        held.iter()
            .all(|r| r.receipt.outcome == DeliveryOutcome::Silenced),
        "{held:#?}"
    );
    delivery.finish().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_acknowledged_alert_gets_no_reminder_and_a_resolved_one_none_at_all() {
    let firing = event(
        "service/Exchange",
        EventKind::ServiceVerdict,
        true,
        Severity::Critical,
        0,
    );
    let mut book = AlertBook::default();
    let routes: BTreeSet<String> = ["pager".to_string()].into();
    book.note(&firing, &routes);
    let every = Duration::from_secs(3600);
    assert!(book.reminders_due(firing.at, every).is_empty());
    let later = firing.at + chrono::Duration::hours(2);
    let due = book.reminders_due(later, every);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].purpose, Purpose::Reminder);
    assert_eq!(due[0].alert, firing.alert);
    assert_ne!(due[0].idempotency_key, firing.idempotency_key);
    // A reminder goes where the alert went, whatever the filters say.
    let quiet = Route {
        id: "pager".into(),
        filter: EventFilter {
            kinds: vec![EventKind::IncidentNew],
            ..EventFilter::default()
        },
        sinks: vec!["x".into()],
    };
    assert_eq!(book.routes_for(&[quiet], &due[0]), routes);
    // Told: the next is due an interval later.
    book.note(&due[0], &routes);
    assert!(book.reminders_due(later, every).is_empty());

    // An acknowledgement from before this episode does not count; one from during it does.
    let stale = Acknowledgement {
        alert: firing.alert.clone(),
        at: firing.at - chrono::Duration::minutes(5),
        comment: "old".into(),
    };
    assert!(!book.acknowledge(stale));
    let ack = Acknowledgement {
        alert: firing.alert.clone(),
        at: later,
        comment: "on it — Ana".into(),
    };
    assert!(book.acknowledge(ack));
    assert!(
        book.reminders_due(later + chrono::Duration::hours(5), every)
            .is_empty()
    );

    let mut resolved = firing.clone();
    resolved.firing = false;
    resolved.idempotency_key = "end".into();
    book.note(&resolved, &BTreeSet::new());
    assert_eq!(book.open().count(), 0);
    assert!(
        book.reminders_due(later + chrono::Duration::hours(9), every)
            .is_empty()
    );
}

#[test]
fn maintenance_windows_open_and_close_on_time_including_across_midnight_and_the_week() {
    let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
    // 2026-11-28 is a Saturday.
    let weekly = Schedule::Recurring {
        weekday: Some(Weekday::Sat),
        at: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
        length: chrono::Duration::hours(3),
    };
    assert!(!weekly.is_open(at(28, 22, 59)));
    assert!(weekly.is_open(at(28, 23, 0)));
    assert!(weekly.is_open(at(29, 1, 59)), "past midnight into Sunday");
    assert!(!weekly.is_open(at(29, 2, 0)));
    assert!(!weekly.is_open(at(27, 23, 30)), "Friday");
    let daily = Schedule::Recurring {
        weekday: None,
        at: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
        length: chrono::Duration::minutes(30),
    };
    assert!(daily.is_open(at(3, 2, 10)));
    assert!(!daily.is_open(at(3, 2, 30)));
    let once = Schedule::Once {
        start: at(5, 22, 0),
        end: at(6, 1, 0),
    };
    assert!(once.is_open(at(6, 0, 30)));
    assert!(!once.is_open(at(6, 1, 0)));
}

#[tokio::test]
async fn an_alert_that_fires_in_a_maintenance_window_is_held_and_says_which() {
    let sim = simulator(Scenario::Healthy).await;
    let config = webhook_sinks(
        &sim,
        &["ops"],
        "[[routes]]\nid = \"all\"\nsinks = [\"ops\"]\n\
         [[maintenance]]\nid = \"patch-night\"\ntargets = [\"contoso\"]\n\
         start = \"2026-11-26T08:00:00Z\"\nend = \"2026-11-26T10:00:00Z\"\n",
    );
    let delivery = Delivery::fresh(&config).await;
    let inside = incident_life("EX8", 0); // 09:00:00 to 09:00:03, in the window
    let mut outside = event(
        "service/Teams",
        EventKind::ServiceVerdict,
        true,
        Severity::Warning,
        0,
    );
    outside.at = Utc.with_ymd_and_hms(2026, 11, 26, 10, 30, 0).unwrap();
    outside.idempotency_key = "outside".into();
    let mut all = inside.clone();
    all.push(outside.clone());
    delivery.enqueue(all).await;
    delivery.drained(Duration::from_secs(10)).await;
    assert_eq!(accepted(&sim, "webhook/ops"), vec!["outside".to_string()]);
    let receipts = delivery.alerting.receipts(100).await.unwrap();
    let held: Vec<_> = receipts
        .iter()
        .filter(|r| r.receipt.outcome == DeliveryOutcome::Maintenance)
        .collect();
    assert_eq!(held.len(), 3, "the firing events; {receipts:#?}");
    assert!(held[0].receipt.detail.contains("patch-night"));
    delivery.finish().await;
    sim.shutdown().await;
}

#[test]
fn alerting_config_errors_name_the_key_and_never_the_secret() {
    let bad = |extra: &str| {
        let text = format!(
            "[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\n\
             [[targets]]\nid = \"contoso\"\nchannels = [\"m365-public\"]\n{extra}"
        );
        config::parse(&text, Path::new("c.toml"), Vec::new())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let unknown_sink = bad("[[routes]]\nid = \"r\"\nsinks = [\"nope\"]\n");
    assert!(
        unknown_sink.contains("routes[0].sinks[0]") && unknown_sink.contains("\"nope\""),
        "{unknown_sink}"
    );
    let insecure = bad("[[sinks]]\nid = \"s\"\nkind = \"slack\"\n\
         url = \"http://hooks.example.net/services/T000/B000/XXSECRETXX\"\n");
    assert!(insecure.contains("sinks[0].url"), "{insecure}");
    assert!(insecure.contains("https://"), "{insecure}");
    assert!(!insecure.contains("XXSECRETXX"), "{insecure}");
    let kind = bad("[[sinks]]\nid = \"s\"\nkind = \"pager\"\n");
    assert!(kind.contains("pagerduty"), "{kind}");
    let window =
        bad("[[maintenance]]\nid = \"m\"\nevery = \"someday\"\nat = \"02:00\"\nlength = \"1h\"\n");
    assert!(window.contains("maintenance[0].every"), "{window}");
    let target = bad(
        "[[sinks]]\nid = \"s\"\nkind = \"webhook\"\nurl = \"https://x.test/h\"\n[[routes]]\nid = \"r\"\ntargets = [\"fabrikam\"]\nsinks = [\"s\"]\n",
    );
    assert!(target.contains("routes[0].targets[0]"), "{target}");
    let typo = bad("[[sinks]]\nid = \"s\"\nkind = \"webhook\"\nurlz = \"https://x.test/h\"\n");
    assert!(typo.contains("sinks[0]") && typo.contains("urlz"), "{typo}");
    let foreign = bad(
        "[[sinks]]\nid = \"s\"\nkind = \"webhook\"\nurl = \"https://x.test/h\"\n\
         routing_key = \"k\"\n",
    );
    assert!(
        foreign.contains("sinks[0].routing_key") && foreign.contains("not a key of a webhook sink"),
        "{foreign}"
    );
    let severity = bad(
        "[[sinks]]\nid = \"s\"\nkind = \"webhook\"\nurl = \"https://x.test/h\"\n[[routes]]\nid = \"r\"\nmin_severity = \"loud\"\nsinks = [\"s\"]\n",
    );
    assert!(severity.contains("routes[0].min_severity"), "{severity}");
}

#[test]
fn a_sink_secret_can_come_from_the_environment() {
    let text = "[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\n\
                [[targets]]\nid = \"contoso\"\nchannels = [\"m365-public\"]\n\
                [[sinks]]\nid = \"on-call\"\nkind = \"pagerduty\"\n\
                [[routes]]\nid = \"r\"\nsinks = [\"on-call\"]\n";
    let missing = config::parse(text, Path::new("c.toml"), Vec::new())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        missing.contains("STATUSMON_SINK__ON_CALL__ROUTING_KEY"),
        "{missing}"
    );
    let env = vec![(
        "STATUSMON_SINK__ON_CALL__ROUTING_KEY".to_string(),
        "0123456789abcdef0123456789abcdef".to_string(),
    )];
    let config = config::parse(text, Path::new("c.toml"), env).unwrap();
    assert_eq!(config.alerts.sinks.len(), 1);
    assert!(
        !config
            .warnings
            .iter()
            .any(|w| w.contains("routing_key is written")),
        "an environment secret is not an inline one: {:?}",
        config.warnings
    );
    assert!(!format!("{config:?}").contains("0123456789abcdef"));
}

/// Secrets planted in every place a sink takes one; none may come out anywhere.
const SLACK_TOKEN: &str = "T0SECRETSLACK/B0SECRETSLACK/slackSECRETtoken123";
const ROUTING_KEY: &str = "0123456789abcdefSECRETROUTINGKEY";
const API_TOKEN: &str = "apiSECRETbearer-token-4242";

/// `statusmon run` (or another command) with its stdout and stderr collected.
struct Run {
    child: tokio::process::Child,
    output: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Run {
    fn start(args: &[&str], config: &Path) -> Run {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(crate::support::bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .current_dir(config.parent().unwrap())
            // Every log line, third-party ones too: debug logs must not leak either.
            .env("STATUSMON_LOG", "debug")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn statusmon");
        let output = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stderr),
        ] {
            let sink = Arc::clone(&output);
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Run { child, output }
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    async fn base(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.output.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("serving the HTTP API on ")
                    .and_then(|rest| rest.split(' ').next())
                    .map(str::to_string)
            });
            if let Some(base) = found {
                return base;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no API address: {}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn secret_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{content}\n")).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn no_secret_shows_in_logs_api_or_dashboard_and_a_drill_goes_through_a_real_route() {
    let sim = simulator(Scenario::Healthy).await;
    let smtp = sim
        .start_smtp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let slack_url = format!("{base}/hooks/slack/{SLACK_TOKEN}");
    let config = dir.path().join("config.toml");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"

[store]
path = "{db}"

[alerts]
attempts = 1
retry_max_delay = "1s"
api_token_file = "{api}"

[[channels]]
id = "m365-public"
kind = "m365_status_site"
base_url = "{base}"
interval = "1s"
timeout = "900ms"

[[targets]]
id = "contoso"
channels = ["m365-public"]

[[sinks]]
id = "chat"
kind = "slack"
url_file = "{slack}"

[[sinks]]
id = "ops"
kind = "webhook"
url = "{base}/hooks/webhook/ops"
secret_file = "{whsec}"

[[sinks]]
id = "on-call"
kind = "pagerduty"
url = "{base}/hooks/pagerduty/v2/enqueue"
routing_key_file = "{routing}"

[[sinks]]
id = "mail"
kind = "email"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
username = "statusmon"
password_file = "{password}"
from = "statusmon@example.net"
to = ["noc@example.net"]

[[routes]]
id = "chat-else-webhook"
sinks = ["chat", "ops"]

[[routes]]
id = "pager"
sinks = ["on-call", "mail"]
"#,
        db = dir.path().join("state.db").display(),
        api = secret_file(dir.path(), "api", API_TOKEN),
        slack = secret_file(dir.path(), "slack", &slack_url),
        whsec = secret_file(dir.path(), "whsec", SIM_WEBHOOK_SECRET),
        routing = secret_file(dir.path(), "routing", ROUTING_KEY),
        password = secret_file(dir.path(), "password", "smtpSECRETpassword"),
        smtp_port = smtp.addr().port(),
    );
    std::fs::write(&config, text).unwrap();
    let secrets = [
        SLACK_TOKEN,
        "slackSECRETtoken123",
        ROUTING_KEY,
        API_TOKEN,
        "smtpSECRETpassword",
        SIM_WEBHOOK_SECRET.trim_start_matches("whsec_"),
    ];
    let assert_clean = |place: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{place} shows a secret:\n{text}");
        }
    };

    // Slack is down: the first route falls back to the webhook, and Slack's errors are logged.
    sim.set_hook_down(&format!("slack/{SLACK_TOKEN}"), true);
    let daemon = Run::start(&["run"], &config);
    let api = daemon.base().await;
    let client = crate::support::plain_client();
    // The first round, then the admin center degrades: an admin-plane alert.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sim.set_scenario(Scenario::AdminDegraded);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while accepted(&sim, "webhook/ops").is_empty() || sim.pagerduty_state().pages == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert arrived: {}",
            daemon.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pagerduty = sim.pagerduty_state();
    assert!(
        pagerduty
            .open
            .iter()
            .any(|a| a.dedup_key == "contoso/admin-plane" && a.routing_key == ROUTING_KEY),
        "the admin-plane alert reached PagerDuty with its key: {pagerduty:?}"
    );

    // Silences want the token.
    let silence = serde_json::json!({"targets": ["contoso"], "duration": "1h", "comment": "test"});
    let refused = client
        .post(format!("{api}/api/v1/silences"))
        .header("content-type", "application/json")
        .body(silence.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let wrong = client
        .post(format!("{api}/api/v1/silences"))
        .bearer_auth("not-the-token")
        .header("content-type", "application/json")
        .body(silence.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let made = client
        .post(format!("{api}/api/v1/silences"))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body(silence.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);

    let mut shown = String::new();
    for path in [
        "/api/v1/deliveries",
        "/api/v1/alerts",
        "/api/v1/silences",
        "/api/v1/status",
        "/metrics",
        "/",
        "/dashboard/targets",
    ] {
        let body = client
            .get(format!("{api}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_clean(path, &body);
        if path == "/" {
            // The dashboard shows the receipts: route, sink, outcome.
            assert!(body.contains(r#"data-role="deliveries""#), "{body}");
            assert!(body.contains("chat-else-webhook"), "{body}");
            assert!(body.contains("outcome delivered"), "{body}");
        }
        shown.push_str(&body);
    }
    // The receipts say where each alert went: the fallback, after Slack's failure.
    assert!(shown.contains("chat-else-webhook"), "{shown}");
    assert!(shown.contains("(after chat failed)"), "{shown}");
    assert!(shown.contains("delivered"), "{shown}");
    assert!(
        shown.contains(
            r#"statusmon_alert_deliveries_total{route="chat-else-webhook",sink="ops",outcome="delivered"}"#
        ),
        "{shown}"
    );

    // A drill through the pager route, from the command line, while the daemon runs.
    let mut drill = Run::start(&["drill", "pager"], &config);
    let status = tokio::time::timeout(Duration::from_secs(30), drill.child.wait())
        .await
        .expect("the drill ends")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status.code(), Some(0), "{}", drill.text());
    assert!(
        drill.text().contains("delivered by on-call"),
        "{}",
        drill.text()
    );
    assert_clean("drill output", &drill.text());
    let drills: Vec<_> = sim
        .hook_deliveries_to("pagerduty")
        .into_iter()
        .filter(|d| d.body.to_string().contains("DRILL"))
        .collect();
    assert_eq!(drills.len(), 1, "one marked test alert");

    // A drill of every sink on the route sends the e-mail too; check-config says nothing secret.
    let mut every = Run::start(&["drill", "pager", "--every-sink"], &config);
    let status = tokio::time::timeout(Duration::from_secs(30), every.child.wait())
        .await
        .expect("the drill ends")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status.code(), Some(0), "{}", every.text());
    let mail: Vec<_> = sim.hook_deliveries_to("email");
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].body.to_string().contains("DRILL"), "{:?}", mail[0]);
    assert_clean("recorded e-mail", &serde_json::to_string(&mail).unwrap());
    let mut check = Run::start(&["check-config"], &config);
    check.child.wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_clean("check-config", &check.text());

    assert_clean("run's logs", &daemon.text());
    assert!(
        daemon
            .text()
            .contains(r#"alert delivery attempt failed sink="chat""#),
        "the failing sink is named in the logs: {}",
        daemon.text()
    );
    drop(daemon);
    smtp.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn alertmanager_gets_firing_alerts_again_while_they_fire_and_the_resolution_after() {
    let sim = simulator(Scenario::Healthy).await;
    let config = alerts_config(&format!(
        "[alerts]\nattempts = 1\nretry_max_delay = \"1s\"\n\
         [[sinks]]\nid = \"am\"\nkind = \"alertmanager\"\nurls = [\"{base}/hooks/alertmanager\"]\n\
         resend_every = \"1s\"\nresolved_for = \"3s\"\n\
         [[routes]]\nid = \"prom\"\nsinks = [\"am\"]\n",
        base = sim.base_url()
    ));
    let delivery = Delivery::fresh(&config).await;
    // Stamped now: a resolution is re-posted for `resolved_for` after it happened.
    let mut life = incident_life("EX9", 0);
    for event in &mut life {
        event.at = Utc::now();
    }
    delivery.enqueue(life[..2].to_vec()).await;
    delivery.drained(Duration::from_secs(10)).await;
    let posts = |sim: &SimHandle| {
        sim.alertmanager_state().alerts.into_iter().find(|a| {
            a.labels.get("statusmon_alert").map(String::as_str) == Some("contoso/incident/EX9")
        })
    };
    let first = posts(&sim).expect("posted");
    assert_eq!(first.status, "firing");
    // Two events, then re-posted every second while it fires.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let again = posts(&sim).unwrap();
    assert!(again.posts >= first.posts + 2, "{first:?} then {again:?}");
    assert_eq!(again.status, "firing");
    assert!(again.ends_at > Utc::now(), "endsAt stays ahead: {again:?}");

    life[3].at = Utc::now();
    delivery.enqueue(life[3..].to_vec()).await;
    delivery.drained(Duration::from_secs(10)).await;
    let ended = posts(&sim).unwrap();
    assert_eq!(ended.status, "resolved", "{ended:?}");
    // Still told it is over for a while (Alertmanager forgets on restart), then left alone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let told = posts(&sim).unwrap();
    assert!(told.posts > ended.posts, "{ended:?} then {told:?}");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let quiet = posts(&sim).unwrap().posts;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(posts(&sim).unwrap().posts, quiet, "no longer re-posted");
    delivery.finish().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn check_config_lists_the_routes_and_builds_the_sinks_as_run_would() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let write = |from: &str| {
        std::fs::write(
            &config,
            format!(
                "[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\n\
                 [[targets]]\nid = \"contoso\"\nchannels = [\"m365-public\"]\n\
                 [[sinks]]\nid = \"mail\"\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = 2525\n\
                 tls = \"none\"\nfrom = \"{from}\"\nto = [\"noc@example.net\"]\n\
                 [[sinks]]\nid = \"ops\"\nkind = \"webhook\"\nurl = \"https://hooks.example.net/x\"\n\
                 [[routes]]\nid = \"on-call\"\nsinks = [\"ops\", \"mail\"]\n"
            ),
        )
        .unwrap();
    };
    write("statusmon@example.net");
    let mut good = Run::start(&["check-config"], &config);
    assert_eq!(good.child.wait().await.unwrap().code(), Some(0));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        good.text().contains("route on-call: ops else mail"),
        "{}",
        good.text()
    );
    // An address only the mail library refuses is caught before `run`.
    write("statusmon at example.net@");
    let mut bad = Run::start(&["check-config"], &config);
    assert_eq!(bad.child.wait().await.unwrap().code(), Some(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(bad.text().contains("sink mail"), "{}", bad.text());
}

/// One request to the API router over `state`: the status and the JSON answer.
async fn call(
    state: &statusmon::web::WebState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = statusmon::web::router(state.clone())
        .oneshot(
            request
                .body(axum::body::Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_write_endpoints_want_the_token_and_a_sensible_request() {
    let delivery = Delivery::fresh(&alerts_config("")).await;
    let state = statusmon::web::WebState::new();
    let (status, _) = call(&state, "GET", "/api/v1/alerts", None, "").await;
    assert_eq!(status, 503, "not attached: alerting is not running");
    state.attach_alerting(statusmon::web::AlertingApi {
        alerting: delivery.alerting.clone(),
        token: Some(secrecy::SecretString::from("right")),
    });
    let good = r#"{"targets":["contoso"],"duration":"2h","comment":"planned work — Ana"}"#;
    let (status, body) = call(&state, "POST", "/api/v1/silences", None, good).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = call(&state, "POST", "/api/v1/silences", Some("wrong"), good).await;
    assert_eq!(status, 401);
    for (bad, says) in [
        (
            r#"{"targetz":["contoso"],"duration":"2h","comment":"x"}"#,
            "targetz",
        ),
        (
            r#"{"targets":["contoso"],"duration":"2h","comment":" "}"#,
            "comment",
        ),
        (
            r#"{"duration":"2h","comment":"everything"}"#,
            "at least one",
        ),
        (
            r#"{"targets":["contoso"],"duration":"90d","comment":"x"}"#,
            "30 days",
        ),
        (r#"{"targets":["contoso"],"comment":"x"}"#, "duration"),
        (
            r#"{"kinds":["incident_nouveau"],"duration":"1h","comment":"x"}"#,
            "incident_nouveau",
        ),
    ] {
        let (status, body) = call(&state, "POST", "/api/v1/silences", Some("right"), bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(says),
            "{bad}: {body}"
        );
    }
    let (status, made) = call(&state, "POST", "/api/v1/silences", Some("right"), good).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let (_, listed) = call(&state, "GET", "/api/v1/alerts", None, "").await;
    assert_eq!(listed["silences"][0]["id"], id.as_str(), "{listed}");
    let (status, _) = call(&state, "DELETE", "/api/v1/silences/nope", Some("right"), "").await;
    assert_eq!(status, 404);
    let (status, ended) = call(
        &state,
        "DELETE",
        &format!("/api/v1/silences/{id}"),
        Some("right"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    let (_, listed) = call(&state, "GET", "/api/v1/alerts", None, "").await;
    assert_eq!(listed["silences"], serde_json::json!([]), "ended: {listed}");
    // Nothing is open, so there is nothing to acknowledge.
    let ack = r#"{"alert":"contoso/service/Exchange","comment":"on it"}"#;
    let (status, body) = call(
        &state,
        "POST",
        "/api/v1/acknowledgements",
        Some("right"),
        ack,
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Without a configured token, writes are refused outright.
    let closed = statusmon::web::WebState::new();
    closed.attach_alerting(statusmon::web::AlertingApi {
        alerting: delivery.alerting.clone(),
        token: None,
    });
    let (status, body) = call(&closed, "POST", "/api/v1/silences", Some("right"), good).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("api_token_file"),
        "{body}"
    );
    delivery.finish().await;
}
