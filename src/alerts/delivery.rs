//! Delivery: from the outbox to people, in order, at least once, never dropped.
//!
//! The [`Dispatcher`] reads the outbox (the store wrote each event in the transaction of the
//! round that caused it), decides which routes an event goes to, and hands it to one worker per
//! route. A route worker takes its events one at a time, in outbox order: it holds an event back
//! when a silence or maintenance window covers it (a receipt says so), or tries the route's sinks
//! in order, each with `backon` retries, the first that accepts winning. When every sink fails,
//! it writes a `failed` receipt and tries the same event again after a growing pause, so a
//! receiver that is down for five minutes gets everything afterwards, in order; a route never
//! skips ahead. A route's final receipt is written before the dispatcher hears of it, and a row is
//! marked delivered when every route it went to is done, so a kill -9 anywhere re-sends at most
//! what was in flight (sinks get the event's idempotency key to drop a repeat).
//!
//! What is open is rebuilt at start-up by replaying the kept outbox ([`AlertBook`]): reminders,
//! resolutions and Alertmanager's re-posts all need to know which alerts fire and which routes
//! were told.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use super::routes::{MaintenanceWindow, Route, Silence};
use super::sinks::{Sink, SinkError};
use super::{AlertEvent, Purpose, Severity};
use crate::config::AlertsConfig;
use crate::metrics::Metrics;
use crate::store::{
    Acknowledgement, DeliveryOutcome, DeliveryWrite, OutboxRow, Receipt, ReceiptRow, Store,
};

/// How often the dispatcher looks at the outbox without being told of new rows (a round whose
/// write failed and succeeded later, an event queued by another process).
const OUTBOX_POLL: Duration = Duration::from_secs(30);
/// How often reminders are looked at (and old resolutions forgotten).
const REMINDER_CHECK: Duration = Duration::from_secs(30);
/// The longest a sink's `Retry-After` is honoured between attempts; beyond it, the next sink.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long the book remembers a resolution (Alertmanager sinks re-post it within their own,
/// shorter, `resolved_for`).
const KEEP_RESOLVED: Duration = Duration::from_secs(24 * 3600);
/// How many of the newest receipts are kept in memory for the dashboard.
const RECENT_RECEIPTS: usize = 50;
/// How often a route's final receipt is tried before the worker moves on without it (the row
/// is then re-sent after a restart: at least once).
const RECEIPT_WRITES: u32 = 5;

/// One alert between firing and resolving, as the book knows it.
#[derive(Debug, Clone, Serialize)]
pub struct OpenAlert {
    /// Its latest firing event (a transition, not a reminder).
    pub latest: AlertEvent,
    /// When it started firing.
    pub since: DateTime<Utc>,
    /// When people were last told: its latest transition or reminder.
    pub last_told: DateTime<Utc>,
    /// Routes it was sent to in this episode: they hear how it ends.
    pub routes: BTreeSet<String>,
    /// The acknowledgement of this episode, if any.
    pub acknowledged: Option<Acknowledgement>,
}

/// A resolution kept for a while: Alertmanager is told of it again until `resolved_for` ends.
#[derive(Debug, Clone)]
struct Resolved {
    event: AlertEvent,
    routes: BTreeSet<String>,
}

/// Which alerts are open and which routes heard of them. Pure; the dispatcher keeps one.
#[derive(Debug, Default)]
pub struct AlertBook {
    open: BTreeMap<String, OpenAlert>,
    resolved: BTreeMap<String, Resolved>,
}

impl AlertBook {
    /// The routes `event` goes to: those whose filters pass it and, for a resolution or a
    /// reminder, every route that heard the alert fire in this episode (a route for critical
    /// alerts hears them end, though an ending is only `info`).
    pub fn routes_for(&self, routes: &[Route], event: &AlertEvent) -> BTreeSet<String> {
        let open = self.open.get(&event.alert);
        let told = || open.map(|o| o.routes.clone()).unwrap_or_default();
        if event.purpose == Purpose::Reminder {
            return told();
        }
        let judged = match open {
            Some(open) if !event.firing => open.latest.severity.max(event.severity),
            _ => event.severity,
        };
        let mut chosen: BTreeSet<String> = routes
            .iter()
            .filter(|r| r.filter.matches(event, judged))
            .map(|r| r.id.clone())
            .collect();
        if !event.firing {
            chosen.extend(told());
        }
        chosen
    }

    /// Takes note of an event sent to `routes`.
    pub fn note(&mut self, event: &AlertEvent, routes: &BTreeSet<String>) {
        if event.purpose == Purpose::Drill {
            return;
        }
        if event.firing {
            let alert = self
                .open
                .entry(event.alert.clone())
                .or_insert_with(|| OpenAlert {
                    latest: event.clone(),
                    since: event.at,
                    last_told: event.at,
                    routes: BTreeSet::new(),
                    acknowledged: None,
                });
            if event.purpose == Purpose::Transition {
                alert.latest = event.clone();
            }
            alert.last_told = alert.last_told.max(event.at);
            alert.routes.extend(routes.iter().cloned());
            self.resolved.remove(&event.alert);
        } else {
            let mut heard = routes.clone();
            if let Some(open) = self.open.remove(&event.alert) {
                heard.extend(open.routes);
            }
            self.resolved.insert(
                event.alert.clone(),
                Resolved {
                    event: event.clone(),
                    routes: heard,
                },
            );
        }
    }

    /// Records an acknowledgement; `false` when the alert is not open (nothing to acknowledge).
    pub fn acknowledge(&mut self, ack: Acknowledgement) -> bool {
        match self.open.get_mut(&ack.alert) {
            // An acknowledgement from an earlier episode does not cover this one.
            Some(open) if ack.at >= open.since => {
                open.acknowledged = Some(ack);
                true
            }
            _ => false,
        }
    }

    /// The open alerts, by key.
    pub fn open(&self) -> impl Iterator<Item = &OpenAlert> {
        self.open.values()
    }

    /// Reminders due at `now`: alerts firing at warning or louder, unacknowledged, not told
    /// for `every`.
    pub fn reminders_due(&self, now: DateTime<Utc>, every: Duration) -> Vec<AlertEvent> {
        let Ok(every) = chrono::Duration::from_std(every) else {
            return Vec::new();
        };
        self.open
            .values()
            .filter(|o| {
                o.acknowledged.is_none()
                    && o.latest.severity >= Severity::Warning
                    && now - o.last_told >= every
            })
            .map(|o| reminder(&o.latest, now))
            .collect()
    }

    /// What an Alertmanager behind `routes` should hear again: the firing alerts sent to those
    /// routes, and the resolutions the book still keeps (the sink posts those within its
    /// `resolved_for`).
    pub fn alertmanager_state(
        &self,
        routes: &BTreeSet<String>,
    ) -> (Vec<AlertEvent>, Vec<AlertEvent>) {
        let reaches = |heard: &BTreeSet<String>| heard.iter().any(|r| routes.contains(r));
        let firing = self
            .open
            .values()
            .filter(|o| reaches(&o.routes))
            .map(|o| o.latest.clone())
            .collect();
        let resolved = self
            .resolved
            .values()
            .filter(|r| reaches(&r.routes))
            .map(|r| r.event.clone())
            .collect();
        (firing, resolved)
    }

    /// Forgets resolutions older than `keep`.
    fn forget_resolved(&mut self, now: DateTime<Utc>, keep: Duration) {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        self.resolved.retain(|_, r| now - r.event.at <= keep);
    }
}

/// A reminder of `latest`: the same alert, said again, with a key of its own.
pub fn reminder(latest: &AlertEvent, now: DateTime<Utc>) -> AlertEvent {
    AlertEvent {
        idempotency_key: format!(
            "{}#reminder@{}",
            latest.alert,
            now.to_rfc3339_opts(SecondsFormat::Millis, true)
        ),
        at: now,
        purpose: Purpose::Reminder,
        ..latest.clone()
    }
}

/// The test alert `statusmon drill` sends through `route`: clearly marked, asking for nothing,
/// with a key of its own so no receiver takes it for a real alert.
pub fn drill_event(route: &Route, target: &str, now: DateTime<Utc>) -> AlertEvent {
    let stamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    AlertEvent {
        alert: format!("{target}/drill/{}", route.id),
        idempotency_key: format!("{target}/drill/{}#drill@{stamp}", route.id),
        kind: super::EventKind::ServiceVerdict,
        target: target.to_string(),
        service: None,
        incident: None,
        severity: Severity::Warning,
        firing: true,
        summary: format!(
            "DRILL: test alert through route {}; no action needed",
            route.id
        ),
        detail: format!(
            "Sent by `statusmon drill {}` at {stamp} to check that alerts reach you. Nothing \
             is wrong with Microsoft 365 because of this message.",
            route.id
        ),
        at: now,
        purpose: Purpose::Drill,
    }
}

/// What one round of a route did with an event.
#[derive(Debug)]
pub struct RouteAttempt {
    /// Every attempt, in order: the sink and what it answered. Only the last can be a success.
    pub tries: Vec<(String, Result<String, SinkError>)>,
}

impl RouteAttempt {
    /// The sink that accepted it, with its answer.
    pub fn delivered(&self) -> Option<(&str, &str)> {
        match self.tries.last() {
            Some((sink, Ok(answer))) => Some((sink, answer)),
            _ => None,
        }
    }

    /// The receipt's words: the accepting sink's answer, or every sink's last error.
    pub fn detail(&self) -> String {
        if let Some((_, answer)) = self.delivered() {
            let failed: BTreeSet<&str> = self
                .tries
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(s, _)| s.as_str())
                .collect();
            if failed.is_empty() {
                return answer.to_string();
            }
            let names: Vec<&str> = failed.into_iter().collect();
            return format!("{answer} (after {} failed)", names.join(", "));
        }
        let mut last: Vec<(String, String)> = Vec::new();
        for (sink, result) in &self.tries {
            if let Err(e) = result {
                last.retain(|(s, _)| s != sink);
                last.push((sink.clone(), e.to_string()));
            }
        }
        last.iter()
            .map(|(s, e)| format!("{s}: {e}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Tries `sinks` in order, each up to `attempts` times with exponential backoff (transient
/// errors only, `Retry-After` honoured up to 30 s), until one accepts. One round: the caller
/// decides what happens when none does.
pub async fn send_through(sinks: &[Arc<Sink>], event: &AlertEvent, attempts: u32) -> RouteAttempt {
    let mut tries = Vec::new();
    for sink in sinks {
        let mut pauses = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(8))
            .with_max_times(attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        loop {
            match sink.send(event).await {
                Ok(sent) => {
                    tries.push((sink.id().to_string(), Ok(sent.detail)));
                    return RouteAttempt { tries };
                }
                Err(error) => {
                    let retry_after = match &error {
                        SinkError::Transient { retry_after, .. } => Some(*retry_after),
                        SinkError::Permanent { .. } => None,
                    };
                    tracing::warn!(sink = sink.id(), alert = %event.alert, %error, "alert delivery attempt failed");
                    tries.push((sink.id().to_string(), Err(error)));
                    let Some(retry_after) = retry_after else {
                        break;
                    };
                    let Some(pause) = pauses.next() else {
                        break;
                    };
                    let pause = match retry_after {
                        Some(asked) if asked > MAX_RETRY_AFTER => break,
                        Some(asked) => asked.max(pause),
                        None => pause,
                    };
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    RouteAttempt { tries }
}

/// Everything delivery needs, built from the config: sinks by id, routes, windows.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Routes in file order.
    pub routes: Vec<Route>,
    /// Sinks by id.
    pub sinks: HashMap<String, Arc<Sink>>,
    /// Maintenance windows.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Attempts per sink.
    pub attempts: u32,
    /// The longest pause between a route's rounds.
    pub retry_max_delay: Duration,
    /// Reminders, when on.
    pub remind_every: Option<Duration>,
}

impl Plan {
    /// Builds every sink; the error names the sink and what is wrong (never a secret).
    pub fn build(config: &AlertsConfig, http: &reqwest::Client) -> Result<Plan, String> {
        let mut sinks = HashMap::new();
        for spec in &config.sinks {
            // The error names the sink already.
            let sink = Sink::build(spec.clone(), http.clone())?;
            sinks.insert(spec.id.clone(), Arc::new(sink));
        }
        Ok(Plan {
            routes: config.routes.clone(),
            sinks,
            maintenance: config.maintenance.clone(),
            attempts: config.settings.attempts,
            retry_max_delay: config.settings.retry_max_delay,
            remind_every: config.settings.remind_every,
        })
    }

    /// A route's sinks, in order.
    pub fn sinks_of(&self, route: &Route) -> Vec<Arc<Sink>> {
        route
            .sinks
            .iter()
            .filter_map(|id| self.sinks.get(id).cloned())
            .collect()
    }
}

/// The handle the API and the run loop hold: tell it of new rows, read and change its state.
#[derive(Debug, Clone)]
pub struct Alerting {
    store: Arc<dyn Store>,
    book: Arc<Mutex<AlertBook>>,
    /// Every kept silence, as the API changes them; read by every route worker.
    silences: Arc<RwLock<Vec<Silence>>>,
    /// The newest receipts, newest first: the dashboard reads them on every refresh, which must
    /// not queue behind the store's writer (a large round can keep it busy for a while).
    recent: Arc<Mutex<VecDeque<ReceiptRow>>>,
    wake: Arc<Notify>,
}

/// Why an API change to alerting was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// No open alert has that key.
    #[error("no open alert {0:?}")]
    NotOpen(String),
    /// No silence has that id.
    #[error("no silence {0:?}")]
    NoSilence(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Alerting {
    fn book(&self) -> MutexGuard<'_, AlertBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Says new rows are in the outbox.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The notifier the recorder signals after writing alerts.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Whether a silence (at `now`) or a maintenance window (when the event happened) holds a
    /// firing event back, and which.
    fn held_back(
        &self,
        event: &AlertEvent,
        maintenance: &[MaintenanceWindow],
        now: DateTime<Utc>,
    ) -> Option<(DeliveryOutcome, String)> {
        let silences = self.silences.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(silence) = silences.iter().find(|s| s.covers(event, now)) {
            return Some((
                DeliveryOutcome::Silenced,
                format!(
                    "silence {} until {}",
                    silence.id,
                    silence.ends_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            ));
        }
        maintenance
            .iter()
            .find(|w| w.covers(event, event.at))
            .map(|w| {
                (
                    DeliveryOutcome::Maintenance,
                    format!("maintenance window {}", w.id),
                )
            })
    }

    /// The open alerts.
    pub fn open_alerts(&self) -> Vec<OpenAlert> {
        self.book().open().cloned().collect()
    }

    /// The kept silences.
    pub fn silences(&self) -> Vec<Silence> {
        self.silences
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The newest receipts kept in memory (at most 50), newest first.
    pub fn recent_receipts(&self, limit: usize) -> Vec<ReceiptRow> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().take(limit).cloned().collect()
    }

    fn remember_receipt(&self, row: ReceiptRow) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.push_front(row);
        recent.truncate(RECENT_RECEIPTS);
    }

    /// The newest receipts from the store.
    pub async fn receipts(&self, limit: u32) -> Result<Vec<ReceiptRow>, crate::store::StoreError> {
        self.store.receipts(limit).await
    }

    /// Adds a silence (written first, then obeyed).
    pub async fn silence(&self, silence: Silence) -> Result<Silence, AlertingError> {
        self.store.save_silence(silence.clone()).await?;
        let mut silences = self
            .silences
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        silences.retain(|s| s.id != silence.id);
        silences.insert(0, silence.clone());
        Ok(silence)
    }

    /// Ends a silence now.
    pub async fn expire(&self, id: &str, now: DateTime<Utc>) -> Result<Silence, AlertingError> {
        let Some(mut silence) = self.silences().into_iter().find(|s| s.id == id) else {
            return Err(AlertingError::NoSilence(id.to_string()));
        };
        silence.ends_at = silence.ends_at.min(now);
        self.silence(silence).await
    }

    /// Acknowledges an open alert: its reminders stop until it resolves.
    pub async fn acknowledge(&self, ack: Acknowledgement) -> Result<OpenAlert, AlertingError> {
        if !self.book().open.contains_key(&ack.alert) {
            return Err(AlertingError::NotOpen(ack.alert));
        }
        self.store.acknowledge(ack.clone()).await?;
        let mut book = self.book();
        book.acknowledge(ack.clone());
        book.open
            .get(&ack.alert)
            .cloned()
            .ok_or(AlertingError::NotOpen(ack.alert))
    }
}

/// A job for a route worker.
#[derive(Debug, Clone)]
struct Job {
    row: i64,
    event: Arc<AlertEvent>,
}

/// Runs delivery until `stop` turns true: replays the outbox, then dispatches new rows, sends
/// reminders and keeps Alertmanagers up to date.
#[derive(Debug)]
pub struct Dispatcher {
    plan: Arc<Plan>,
    alerting: Alerting,
    metrics: Option<Metrics>,
}

impl Dispatcher {
    /// Loads what is open from the store (the outbox, silences, acknowledgements).
    pub async fn start(
        plan: Plan,
        store: Arc<dyn Store>,
    ) -> Result<(Dispatcher, Alerting), crate::store::StoreError> {
        let silences = store.silences().await?;
        let recent = store.receipts(RECENT_RECEIPTS as u32).await?;
        let alerting = Alerting {
            store,
            book: Arc::default(),
            silences: Arc::new(RwLock::new(silences)),
            recent: Arc::new(Mutex::new(recent.into())),
            wake: Arc::new(Notify::new()),
        };
        Ok((
            Dispatcher {
                plan: Arc::new(plan),
                alerting: alerting.clone(),
                metrics: None,
            },
            alerting,
        ))
    }

    /// Counts every receipt in `metrics` (`statusmon_alert_deliveries_total`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Delivers until `stop` says so. Store failures are logged and retried; nothing here ends
    /// the daemon.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let store = Arc::clone(&self.alerting.store);
        let log = loop {
            match store.alert_log().await {
                Ok(log) => break log,
                Err(error) => {
                    tracing::error!(%error, "cannot read the alert outbox; trying again in 5s");
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        };
        let acks = store.acknowledgements().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read acknowledgements; reminders may repeat");
            Vec::new()
        });

        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<i64>();
        let mut workers: HashMap<String, mpsc::UnboundedSender<Job>> = HashMap::new();
        let mut tasks = JoinSet::new();
        // Which alerts each route held back when they fired, from the receipts kept.
        let mut held: HashMap<String, HashSet<String>> = HashMap::new();
        let mut last_row = 0;
        let mut pending: Vec<OutboxRow> = Vec::new();
        {
            let mut book = self.alerting.book();
            for row in log {
                last_row = last_row.max(row.id);
                for (route, outcome) in &row.done_routes {
                    remember_hold(held.entry(route.clone()).or_default(), &row.event, *outcome);
                }
                if row.delivered_at.is_none() {
                    pending.push(row);
                    continue;
                }
                let routes: BTreeSet<String> =
                    row.done_routes.iter().map(|(r, _)| r.clone()).collect();
                book.note(&row.event, &routes);
            }
            for ack in acks {
                book.acknowledge(ack);
            }
        }
        for route in &self.plan.routes {
            let (tx, rx) = mpsc::unbounded_channel();
            workers.insert(route.id.clone(), tx);
            let worker = RouteWorker {
                route: route.clone(),
                sinks: self.plan.sinks_of(route),
                plan: Arc::clone(&self.plan),
                alerting: self.alerting.clone(),
                held: held.remove(&route.id).unwrap_or_default(),
                done: done_tx.clone(),
                metrics: self.metrics.clone(),
            };
            tasks.spawn(worker.run(rx, stop.clone()));
        }
        for feed in alertmanagers(&self.plan) {
            tasks.spawn(refresh_alertmanager(
                feed,
                self.alerting.clone(),
                stop.clone(),
            ));
        }

        let mut remaining: HashMap<i64, usize> = HashMap::new();
        for row in pending {
            self.dispatch(row, &workers, &mut remaining).await;
        }
        let mut reminders = tokio::time::interval(REMINDER_CHECK);
        reminders.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval(OUTBOX_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                Some(row) = done_rx.recv() => {
                    if let Some(left) = remaining.get_mut(&row) {
                        *left = left.saturating_sub(1);
                        if *left == 0 {
                            remaining.remove(&row);
                            self.finish(row).await;
                        }
                    }
                }
                () = self.alerting.wake.notified() => {
                    last_row = self.dispatch_new(last_row, &workers, &mut remaining).await;
                }
                _ = poll.tick() => {
                    last_row = self.dispatch_new(last_row, &workers, &mut remaining).await;
                }
                _ = reminders.tick() => {
                    self.remind().await;
                }
            }
        }
        tasks.abort_all();
    }

    /// Dispatches rows after `last_row`; returns the new last.
    async fn dispatch_new(
        &self,
        last_row: i64,
        workers: &HashMap<String, mpsc::UnboundedSender<Job>>,
        remaining: &mut HashMap<i64, usize>,
    ) -> i64 {
        let rows = match self.alerting.store.outbox_after(last_row).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "cannot read the alert outbox; trying again shortly");
                return last_row;
            }
        };
        let mut last = last_row;
        for row in rows {
            last = last.max(row.id);
            self.dispatch(row, workers, remaining).await;
        }
        last
    }

    async fn dispatch(
        &self,
        row: OutboxRow,
        workers: &HashMap<String, mpsc::UnboundedSender<Job>>,
        remaining: &mut HashMap<i64, usize>,
    ) {
        let routes = {
            let mut book = self.alerting.book();
            let routes = book.routes_for(&self.plan.routes, &row.event);
            book.note(&row.event, &routes);
            routes
        };
        let done: BTreeSet<&String> = row.done_routes.iter().map(|(r, _)| r).collect();
        // A route told of an alert before a restart may be gone from the config since.
        let to_do: Vec<&String> = routes
            .iter()
            .filter(|r| !done.contains(r) && workers.contains_key(*r))
            .collect();
        if to_do.is_empty() {
            self.finish(row.id).await;
            return;
        }
        remaining.insert(row.id, to_do.len());
        let event = Arc::new(row.event);
        for route in to_do {
            if let Some(worker) = workers.get(route) {
                let _ = worker.send(Job {
                    row: row.id,
                    event: Arc::clone(&event),
                });
            }
        }
    }

    async fn finish(&self, row: i64) {
        let write = vec![DeliveryWrite::Done {
            outbox_id: row,
            at: Utc::now(),
        }];
        if let Err(error) = self.alerting.store.write_deliveries(write).await {
            // Its routes are done and have written their receipts: a restart sends it nowhere.
            tracing::warn!(%error, row, "cannot mark an alert delivered");
        }
    }

    /// Queues the reminders that are due, and forgets day-old resolutions (whether reminders are
    /// on or not: the book must not grow with every alert ever resolved).
    async fn remind(&self) {
        let now = Utc::now();
        let due = {
            let mut book = self.alerting.book();
            book.forget_resolved(now, KEEP_RESOLVED);
            match self.plan.remind_every {
                Some(every) => book.reminders_due(now, every),
                None => Vec::new(),
            }
        };
        if due.is_empty() {
            return;
        }
        match self.alerting.store.enqueue(due, now).await {
            Ok(()) => self.alerting.wake(),
            Err(error) => tracing::warn!(%error, "cannot queue reminders; trying again later"),
        }
    }
}

/// Notes in a route's memory whether it held back an alert's firing, so its ending is held
/// back too (nobody was told it started).
fn remember_hold(held: &mut HashSet<String>, event: &AlertEvent, outcome: DeliveryOutcome) {
    if event.purpose != Purpose::Transition {
        return;
    }
    match (event.firing, outcome) {
        (true, DeliveryOutcome::Silenced | DeliveryOutcome::Maintenance) => {
            held.insert(event.alert.clone());
        }
        (true, DeliveryOutcome::Delivered) | (false, _) => {
            held.remove(&event.alert);
        }
        _ => {}
    }
}

/// An Alertmanager sink, the routes that use it and how often it is brought up to date.
struct AlertmanagerFeed {
    sink: Arc<Sink>,
    routes: BTreeSet<String>,
    every: Duration,
    plan: Arc<Plan>,
}

/// Each Alertmanager sink with the routes that use it.
fn alertmanagers(plan: &Arc<Plan>) -> Vec<AlertmanagerFeed> {
    let mut out = Vec::new();
    for sink in plan.sinks.values() {
        let Some(every) = sink.resend_every() else {
            continue;
        };
        let routes: BTreeSet<String> = plan
            .routes
            .iter()
            .filter(|r| r.sinks.iter().any(|s| s == sink.id()))
            .map(|r| r.id.clone())
            .collect();
        if !routes.is_empty() {
            out.push(AlertmanagerFeed {
                sink: Arc::clone(sink),
                routes,
                every,
                plan: Arc::clone(plan),
            });
        }
    }
    out
}

/// Re-posts the open (and recently resolved) alerts to an Alertmanager every `resend_every`:
/// it times out alerts nobody re-sends and forgets everything when it restarts.
async fn refresh_alertmanager(
    AlertmanagerFeed {
        sink,
        routes,
        every,
        plan,
    }: AlertmanagerFeed,
    alerting: Alerting,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        let (mut firing, resolved) = alerting.book().alertmanager_state(&routes);
        // What a silence or a maintenance window holds back is not re-posted either.
        firing.retain(|event| alerting.held_back(event, &plan.maintenance, now).is_none());
        if firing.is_empty() && resolved.is_empty() {
            continue;
        }
        if let Err(error) = sink.refresh(&firing, &resolved).await {
            tracing::warn!(sink = sink.id(), %error, "re-posting alerts to Alertmanager failed");
        }
    }
}

/// One route's delivery, one event at a time in outbox order.
struct RouteWorker {
    route: Route,
    sinks: Vec<Arc<Sink>>,
    plan: Arc<Plan>,
    alerting: Alerting,
    /// Alerts whose firing this route held back (silence, maintenance).
    held: HashSet<String>,
    /// Told the outbox row of every event this route is done with.
    done: mpsc::UnboundedSender<i64>,
    metrics: Option<Metrics>,
}

impl RouteWorker {
    async fn run(
        mut self,
        mut jobs: mpsc::UnboundedReceiver<Job>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let job = tokio::select! {
                _ = stop.changed() => return,
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let deliver = self.deliver(&job);
            tokio::select! {
                _ = stop.changed() => return,
                () = deliver => {}
            }
        }
    }

    /// Why `event` is held back on this route now, if it is.
    fn hold(&self, event: &AlertEvent, now: DateTime<Utc>) -> Option<(DeliveryOutcome, String)> {
        if event.purpose == Purpose::Drill {
            return None;
        }
        if !event.firing {
            // An ending is told where its start was told.
            return self.held.contains(&event.alert).then(|| {
                (
                    DeliveryOutcome::Silenced,
                    "its firing was held back, so its ending is too".to_string(),
                )
            });
        }
        if let Some(held) = self.alerting.held_back(event, &self.plan.maintenance, now) {
            return Some(held);
        }
        if event.purpose == Purpose::Reminder {
            let book = self.alerting.book();
            match book.open.get(&event.alert) {
                Some(open) if open.acknowledged.is_some() => {
                    return Some((DeliveryOutcome::Acknowledged, "acknowledged".into()));
                }
                None => {
                    return Some((
                        DeliveryOutcome::Acknowledged,
                        "resolved before the reminder went".into(),
                    ));
                }
                _ => {}
            }
        }
        None
    }

    async fn deliver(&mut self, job: &Job) {
        let event = &*job.event;
        let mut pauses = ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(self.plan.retry_max_delay)
            .without_max_times()
            .with_jitter()
            .build();
        let receipt = loop {
            let now = Utc::now();
            if let Some((outcome, detail)) = self.hold(event, now) {
                break self.receipt(job, None, outcome, 0, detail);
            }
            let attempt = send_through(&self.sinks, event, self.plan.attempts).await;
            let tries = attempt.tries.len() as u32;
            let detail = attempt.detail();
            if let Some((sink, _)) = attempt.delivered() {
                let sink = sink.to_string();
                break self.receipt(job, Some(sink), DeliveryOutcome::Delivered, tries, detail);
            }
            let last = attempt.tries.last().map(|(s, _)| s.clone());
            let failed = self.receipt(job, last, DeliveryOutcome::Failed, tries, detail);
            tracing::error!(
                route = %self.route.id,
                alert = %event.alert,
                "every sink of the route failed; the alert waits and is tried again"
            );
            self.write(failed, event).await;
            // backon's jitter adds up to the delay again; the configured maximum is a promise.
            let pause = pauses
                .next()
                .unwrap_or(self.plan.retry_max_delay)
                .min(self.plan.retry_max_delay);
            tokio::time::sleep(pause).await;
        };
        remember_hold(&mut self.held, event, receipt.outcome);
        self.write(receipt, event).await;
        let _ = self.done.send(job.row);
    }

    fn receipt(
        &self,
        job: &Job,
        sink: Option<String>,
        outcome: DeliveryOutcome,
        attempts: u32,
        detail: String,
    ) -> Receipt {
        Receipt {
            outbox_id: job.row,
            route: self.route.id.clone(),
            sink,
            outcome,
            attempts,
            detail,
            at: Utc::now(),
        }
    }

    /// Counts, remembers and stores a receipt of `event`.
    async fn write(&self, receipt: Receipt, event: &AlertEvent) {
        if let Some(metrics) = &self.metrics {
            metrics.record_delivery(
                &receipt.route,
                receipt.sink.as_deref(),
                receipt.outcome.as_str(),
            );
        }
        self.alerting.remember_receipt(ReceiptRow {
            receipt: receipt.clone(),
            alert: event.alert.clone(),
            idempotency_key: event.idempotency_key.clone(),
            summary: event.summary.clone(),
        });
        for attempt in 1..=RECEIPT_WRITES {
            match self
                .alerting
                .store
                .write_deliveries(vec![DeliveryWrite::Receipt(receipt.clone())])
                .await
            {
                Ok(()) => return,
                Err(error) if attempt == RECEIPT_WRITES => {
                    tracing::warn!(%error, route = %self.route.id, "cannot write a delivery receipt");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await,
            }
        }
    }
}
