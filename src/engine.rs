//! The engine: configured channels, their records, and the resolver's memory, driven either one
//! round at a time (`status`, `probe`) or on a schedule (`run`, `demo`).
//!
//! This is the only place that turns config into live channels and probe results into channel
//! records; the resolver stays pure and the channels stay ignorant of each other.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use statusmon_channels::graph::{Graph, GraphConfig};
use statusmon_channels::http::Fetcher;
use statusmon_channels::social::bluesky::Bluesky;
use statusmon_channels::social::feed::Feed;
use statusmon_channels::social::mastodon::Mastodon;
use statusmon_channels::social::x::{X, XConfig};
use statusmon_channels::status_site::StatusSite;
use statusmon_channels::tape::Tape;
use statusmon_channels::{Channel, ChannelKind, Observation, ProbeError};
use tokio::sync::mpsc;

use crate::config::{ChannelConfig, ChannelSettings, Config};
use crate::resolver::{self, ChannelRecord, ChannelState, TargetMemory, TargetResolution};
use crate::status::{ChannelReport, StatusDocument};
use crate::store::Snapshot;

/// The `User-Agent` of every upstream request, so operators upstream can tell who is asking.
pub const USER_AGENT: &str = concat!("statusmon/", env!("CARGO_PKG_VERSION"));

/// One configured channel, ready to probe (or disabled, with the reason).
#[derive(Debug, Clone)]
pub struct LiveChannel {
    /// Its config (the same `Arc` as in [`Config::channels`]).
    pub config: Arc<ChannelConfig>,
    /// The built channel; `None` when disabled.
    pub channel: Option<Arc<dyn Channel>>,
}

/// How many idle connections the pool keeps per upstream host. Channels on one interval start
/// together, so a thousand Graph tenants open a thousand connections to one host at once; kept
/// idle between rounds they held tens of megabytes (see BENCHMARKS.md). Probes to one host start
/// at most `probes_per_host` a second and spread over the interval, so a few at a time are in
/// flight: sixteen idle still let most probes reuse a warm connection, and each kept connection
/// holds its buffers (about 16 KiB on loopback; more with TLS).
pub const IDLE_CONNECTIONS_PER_HOST: usize = 16;

/// Builds the shared HTTP client: one connection pool for every channel (at most
/// [`IDLE_CONNECTIONS_PER_HOST`] idle per host), a few redirects at most (a redirect chain to a
/// sign-in page ends at the content-type gate), and our user agent.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST)
        .redirect(reqwest::redirect::Policy::limited(5))
        .connect_timeout(Duration::from_secs(10))
        .build()
}

/// Builds one channel from its config; with a tape, every exchange is recorded on it or
/// answered from it (record and replay, [`crate::archive`]).
pub fn build_channel(
    config: &ChannelConfig,
    client: &reqwest::Client,
    tape: Option<Arc<Tape>>,
) -> Result<Arc<dyn Channel>, ProbeError> {
    let fetcher = Fetcher::new(client.clone(), config.limits);
    let fetcher = match tape {
        Some(tape) => fetcher.with_tape(tape),
        None => fetcher,
    };
    match &config.kind {
        ChannelSettings::M365StatusSite(settings) => Ok(Arc::new(StatusSite::new(
            config.id.clone(),
            settings.clone(),
            fetcher,
        )?)),
        ChannelSettings::Graph(settings) => {
            let missing = |message: String| ProbeError::Config { message };
            let credential = settings.credential.clone().map_err(missing)?;
            let client_id = settings
                .client_id
                .clone()
                .ok_or_else(|| missing("no client_id".to_string()))?;
            let graph = GraphConfig {
                tenant_id: settings.tenant_id.clone(),
                client_id,
                credential,
                authority: settings.authority.clone(),
                graph_url: settings.graph_url.clone(),
                budget: settings.budget,
            };
            Ok(Arc::new(Graph::new(config.id.clone(), graph, fetcher)?))
        }
        ChannelSettings::X(settings) => {
            let bearer_token = settings
                .bearer_token
                .clone()
                .map_err(|message| ProbeError::Config { message })?;
            let x = XConfig {
                base_url: settings.base_url.clone(),
                username: settings.username.clone(),
                bearer_token,
                max_results: settings.max_results,
                max_pages: settings.max_pages,
                social: settings.social,
            };
            Ok(Arc::new(X::new(config.id.clone(), x, fetcher)?))
        }
        ChannelSettings::Mastodon(settings) => Ok(Arc::new(Mastodon::new(
            config.id.clone(),
            settings.clone(),
            fetcher,
        )?)),
        ChannelSettings::Bluesky(settings) => Ok(Arc::new(Bluesky::new(
            config.id.clone(),
            settings.clone(),
            fetcher,
        )?)),
        ChannelSettings::Feed(settings) => Ok(Arc::new(Feed::new(
            config.id.clone(),
            settings.clone(),
            fetcher,
        )?)),
    }
}

/// What a channel's report, and each resolution of its targets, is made from: how many outcomes
/// its record has taken, and its state (which also moves with age alone).
type ChannelInput = (u64, ChannelState);

fn channel_input(record: &ChannelRecord, now: DateTime<Utc>) -> ChannelInput {
    (record.recorded, record.state(now))
}

/// The configured channels, their latest records, and the resolver's memory.
#[derive(Debug)]
pub struct Engine {
    config: Arc<Config>,
    channels: Vec<LiveChannel>,
    records: BTreeMap<String, ChannelRecord>,
    memory: BTreeMap<String, TargetMemory>,
    /// What each target (by position in the config) was last resolved from, so a target none of
    /// whose channels moved need not be resolved again; `None` until it is resolved.
    inputs: Vec<Option<Vec<ChannelInput>>>,
    /// Each channel's last report (by position in `channels`) and what it was made from, so a
    /// document repeats an unmoved channel's report instead of building it again every round.
    reports: Vec<Option<(ChannelInput, Arc<ChannelReport>)>>,
}

impl Engine {
    /// Builds every channel used by a target. A channel that cannot be built (or is switched off)
    /// is kept as `disabled` with the reason, so it shows up rather than vanishing.
    pub fn new(config: Arc<Config>, client: &reqwest::Client) -> Self {
        Self::with_builder(config, |channel| build_channel(channel, client, None))
    }

    /// [`Engine::new`] with each enabled channel built by `build` (recording or replaying
    /// channels); an error makes the channel `disabled` with the error as the reason.
    pub fn with_builder(
        config: Arc<Config>,
        mut build: impl FnMut(&ChannelConfig) -> Result<Arc<dyn Channel>, ProbeError>,
    ) -> Self {
        let used = resolver::used_channels(&config.targets);
        let mut channels = Vec::new();
        let mut records = BTreeMap::new();
        for channel_config in config.channels.iter().filter(|c| used.contains(&c.id)) {
            let mut record = ChannelRecord::new(
                channel_config.id.clone(),
                channel_config.kind(),
                channel_config.max_age,
            );
            let channel = if !channel_config.enabled {
                record.disabled = Some("enabled = false in the config".to_string());
                None
            } else {
                match build(channel_config) {
                    Ok(channel) => Some(channel),
                    Err(error) => {
                        record.disabled = Some(error.to_string());
                        None
                    }
                }
            };
            records.insert(channel_config.id.clone(), record);
            channels.push(LiveChannel {
                config: channel_config.clone(),
                channel,
            });
        }
        Engine {
            config,
            channels,
            records,
            memory: BTreeMap::new(),
            inputs: Vec::new(),
            reports: Vec::new(),
        }
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The channels, in config order.
    pub fn channels(&self) -> &[LiveChannel] {
        &self.channels
    }

    /// The channel records.
    pub fn records(&self) -> &BTreeMap<String, ChannelRecord> {
        &self.records
    }

    /// The resolver's memory, per target id.
    pub fn memory(&self) -> &BTreeMap<String, TargetMemory> {
        &self.memory
    }

    /// Puts a stored last-known state back: each configured channel's last observation, error
    /// and failing-since time, and each configured target's resolver memory. Ids the config no
    /// longer has are ignored. States then follow from ages as usual, so an old observation is
    /// `stale`, never `fresh`. Returns how many channels were restored.
    pub fn restore(&mut self, snapshot: &Snapshot) -> usize {
        let mut restored = 0;
        for stored in &snapshot.channels {
            let Some(record) = self.records.get_mut(&stored.id) else {
                continue;
            };
            record.observation = stored.observation.clone().map(Arc::new);
            record.error = stored.error.clone();
            record.failing_since = stored.failing_since;
            restored += 1;
        }
        self.inputs.clear();
        self.reports.clear();
        for target in &self.config.targets {
            if let Some(memory) = snapshot.memory.get(&target.id) {
                self.memory.insert(target.id.clone(), memory.clone());
            }
        }
        restored
    }

    /// Resolves every target at `now` without carrying the memory forward: the picture as it
    /// stands, for showing the restored state before any probe has answered.
    pub fn peek(&self, now: DateTime<Utc>) -> Vec<Arc<TargetResolution>> {
        self.config
            .targets
            .iter()
            .map(|target| {
                let memory = self.memory.get(&target.id).cloned().unwrap_or_default();
                let (resolution, _) = resolver::resolve_target(
                    target,
                    &self.records,
                    &memory,
                    &self.config.policy,
                    now,
                );
                Arc::new(resolution)
            })
            .collect()
    }

    /// Records one probe outcome.
    pub fn record(
        &mut self,
        id: &str,
        outcome: Result<Observation, ProbeError>,
        at: DateTime<Utc>,
    ) {
        if let Some(record) = self.records.get_mut(id) {
            record.record(outcome, at);
        }
    }

    /// Probes every enabled channel once, concurrently, and records the outcomes.
    pub async fn probe_all(&mut self) {
        let probes = self.channels.iter().filter_map(|live| {
            let channel = live.channel.clone()?;
            let limit = probe_deadline(&live.config);
            Some(async move {
                let outcome = probe_once(channel.as_ref(), limit).await;
                (channel.id().to_string(), outcome, Utc::now())
            })
        });
        let outcomes = futures_util::future::join_all(probes).await;
        for (id, outcome, at) in outcomes {
            self.record(&id, outcome, at);
        }
    }

    /// Resolves every target at `now`, carrying the hysteresis memory forward.
    pub fn resolve(&mut self, now: DateTime<Utc>) -> Vec<Arc<TargetResolution>> {
        self.resolve_reusing(now, None)
    }

    /// [`Engine::resolve`], keeping from `previous` (the document of this engine's last
    /// resolution) every target none of whose channels recorded an outcome or changed state
    /// since: the resolver depends on the clock only through channel states, so resolving such a
    /// target again would give the same picture. With a thousand tenants, an answer then costs
    /// one target's resolution, not a thousand.
    pub fn resolve_reusing(
        &mut self,
        now: DateTime<Utc>,
        previous: Option<&StatusDocument>,
    ) -> Vec<Arc<TargetResolution>> {
        let records = &self.records;
        let input = |id: &String| Some(channel_input(records.get(id)?, now));
        self.inputs.resize(self.config.targets.len(), None);
        let mut out = Vec::with_capacity(self.config.targets.len());
        for ((index, target), known) in self.config.targets.iter().enumerate().zip(&mut self.inputs)
        {
            let kept = previous
                .and_then(|document| document.targets.get(index))
                .filter(|kept| kept.id == target.id);
            // Compared in place: most targets are kept, and a list per target per round would
            // be a thousand allocations a second for nothing.
            let unmoved = known.as_ref().is_some_and(|known| {
                known
                    .iter()
                    .copied()
                    .eq(target.channels.iter().filter_map(&input))
            });
            if let Some(kept) = kept
                && unmoved
            {
                out.push(Arc::clone(kept));
                continue;
            }
            let inputs: Vec<ChannelInput> = target.channels.iter().filter_map(&input).collect();
            let memory = self.memory.remove(&target.id).unwrap_or_default();
            let (resolution, memory) =
                resolver::resolve_target(target, &self.records, &memory, &self.config.policy, now);
            self.memory.insert(target.id.clone(), memory);
            *known = Some(inputs);
            out.push(Arc::new(resolution));
        }
        out
    }

    /// The status document for a set of resolutions. A channel whose record and state have not
    /// moved since the last document keeps its report (the same `Arc`).
    pub fn document(
        &mut self,
        targets: Vec<Arc<TargetResolution>>,
        now: DateTime<Utc>,
    ) -> StatusDocument {
        self.reports.resize(self.channels.len(), None);
        let mut channels = Vec::with_capacity(self.channels.len());
        for (live, kept) in self.channels.iter().zip(&mut self.reports) {
            let id = &live.config.id;
            let Some(record) = self.records.get(id) else {
                continue;
            };
            let input = channel_input(record, now);
            let report = match kept {
                Some((made_from, report)) if *made_from == input => Arc::clone(report),
                _ => {
                    let report = Arc::new(ChannelReport::new(live, record, now));
                    *kept = Some((input, Arc::clone(&report)));
                    report
                }
            };
            channels.push(report);
        }
        StatusDocument {
            generated_at: now,
            targets,
            channels,
        }
    }
}

/// The whole-probe limit. Every request of a probe is already bounded by `timeout`, but a probe
/// may make several in sequence (a Graph token, the overviews, then each page of issues), so the
/// probe as a whole is bounded by the schedule instead: it must end before the next one is due.
/// (Config keeps `timeout` at most the interval; the extra half second covers `timeout ==
/// interval`.)
pub fn probe_deadline(config: &ChannelConfig) -> Duration {
    config
        .interval
        .max(config.limits.timeout + Duration::from_millis(500))
}

/// Runs one probe under a deadline, so no channel can hold up a round, and reports it as a
/// tracing event (`STATUSMON_LOG=statusmon=debug` shows every probe).
pub async fn probe_once(channel: &dyn Channel, limit: Duration) -> Result<Observation, ProbeError> {
    let started = std::time::Instant::now();
    let outcome = match tokio::time::timeout(limit, channel.probe()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ProbeError::Timeout {
            what: format!("probe of {}", channel.id()),
            after: limit,
        }),
    };
    let elapsed_ms = started.elapsed().as_millis();
    match &outcome {
        Ok(observation) => tracing::debug!(
            channel = channel.id(),
            kind = %channel.kind(),
            elapsed_ms,
            services = observation.services.len(),
            faults = observation.faults.len(),
            digest = observation.digest.get(..12).unwrap_or(""),
            "probe answered"
        ),
        Err(error) => tracing::info!(
            channel = channel.id(),
            kind = %channel.kind(),
            elapsed_ms,
            class = %error.class(),
            transient = error.is_transient(),
            %error,
            "probe failed"
        ),
    }
    outcome
}

/// How often the `watch` loop (and a replay) resolves at most when reports keep arriving: a thousand channels on one
/// interval answer within a few seconds of each other, and resolving after each of them would
/// redo every target a thousand times per round. The failover bar (one probe timeout + 1 s)
/// leaves room for this short delay.
pub const RESOLVE_COALESCE: Duration = Duration::from_millis(200);

/// A slot that starts this much later than planned moves the channel's schedule to when it
/// really started.
const HOST_SHIFT: Duration = Duration::from_millis(50);

/// How long a channel whose paid API has no credits left waits before asking again.
pub const CREDITS_RECHECK: Duration = Duration::from_secs(3600);

/// A probe outcome from the schedule.
#[derive(Debug)]
pub struct ProbeReport {
    /// Channel id.
    pub channel: String,
    /// The channel's kind, so metrics can be broken down by kind without the config.
    pub kind: ChannelKind,
    /// What happened.
    pub outcome: Result<Observation, ProbeError>,
    /// How long the probe took (deadline included), for the duration histogram.
    pub elapsed: Duration,
    /// When it finished.
    pub at: DateTime<Utc>,
    /// How late the scheduled attempt started against its planned slot (the intentional jitter
    /// excluded), for the schedule-lag histogram; `None` for retries and one-off probes.
    pub schedule_lag: Option<Duration>,
}

/// Runs one probe as [`probe_once`] does and reports it with its kind and duration: what the
/// schedule sends the `watch` loop.
pub async fn probe_report(channel: &dyn Channel, limit: Duration) -> ProbeReport {
    let started = std::time::Instant::now();
    let outcome = probe_once(channel, limit).await;
    ProbeReport {
        channel: channel.id().to_string(),
        kind: channel.kind(),
        outcome,
        elapsed: started.elapsed(),
        at: Utc::now(),
        schedule_lag: None,
    }
}

/// How transient failures are retried inside one scheduled slot: exponential from a twentieth
/// of the interval (50 ms to 2 s), at most a quarter of the interval apart, twice at most, with
/// jitter so channels that failed together do not retry together.
pub fn retry_policy(interval: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay((interval / 20).clamp(Duration::from_millis(50), Duration::from_secs(2)))
        .with_max_delay((interval / 4).max(Duration::from_millis(50)))
        .with_max_times(2)
        .with_jitter()
}

/// How fast probes may start against one host, shared by every channel of the schedule
/// (`[scheduler] probes_per_host`): many channels on one host (a thousand feeds on one server,
/// every tenant on Graph) start no faster than this, so a restart or a common interval does not
/// land on one server as a single burst. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HostLimits {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl HostLimits {
    /// At most `per_second` probe starts a second per host, in bursts of as many.
    pub fn new(per_second: NonZeroU32) -> Self {
        HostLimits {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_second(per_second))),
        }
    }

    /// Waits until a probe may start against `host`; at once when no host is known.
    pub async fn wait_turn(&self, host: Option<&str>) {
        let Some(host) = host else {
            return;
        };
        let host = host.to_string();
        // Slept on Tokio's timer: governor's own waiting future starts a timer thread of its
        // own, and every wait then crosses threads twice.
        while let Err(not_until) = self.limiter.check_key(&host) {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            tokio::time::sleep(wait).await;
        }
    }
}

/// One scheduled probe with retries of transient failures (network, timeout, 5xx, 429), each
/// attempt reported as it ends: the first failure shows at once (failover never waits for
/// retries) and a retry that succeeds brings the channel back early. A wait the upstream asked
/// for (`Retry-After`, X's reset) replaces the backoff's; retries stop when the next would start
/// after half the interval. The caller has waited the first attempt's turn at the host (the
/// schedule, which measures `schedule_lag` with that wait included; it goes with the first
/// attempt's report); each retry waits its own. Returns whether the last attempt found the API
/// out of credits, or `None` when nobody listens any more.
pub async fn probe_with_retries(
    channel: &dyn Channel,
    limit: Duration,
    interval: Duration,
    reports: &mpsc::Sender<ProbeReport>,
    hosts: (&HostLimits, Option<&str>),
    mut schedule_lag: Option<Duration>,
) -> Option<bool> {
    let started = std::time::Instant::now();
    let mut backoff = retry_policy(interval).build();
    let mut retry = false;
    loop {
        if retry {
            hosts.0.wait_turn(hosts.1).await;
        }
        retry = true;
        let mut report = probe_report(channel, limit).await;
        report.schedule_lag = schedule_lag.take();
        let out_of_credits = matches!(report.outcome, Err(ProbeError::Credits { .. }));
        let asked = match &report.outcome {
            Err(error) if error.is_transient() => Some(error.retry_after()),
            _ => None,
        };
        reports.send(report).await.ok()?;
        let (Some(asked), Some(next)) = (asked, backoff.next()) else {
            return Some(out_of_credits);
        };
        let wait = asked.unwrap_or(next);
        if started.elapsed() + wait > interval / 2 {
            return Some(out_of_credits);
        }
        tracing::info!(
            channel = channel.id(),
            wait_ms = wait.as_millis(),
            "retrying after a transient failure"
        );
        tokio::time::sleep(wait).await;
    }
}

/// Starts one task per enabled channel that probes on its interval and sends each outcome.
///
/// The first probe runs at once (a person starting a monitor wants the picture now); later ones
/// on the interval with up to 5% jitter, so many channels do not fire in lockstep. A slow probe
/// delays its own next tick rather than piling ticks up. Transient failures are retried within
/// the slot ([`probe_with_retries`]). A channel out of credits (X) is asked again only every
/// [`CREDITS_RECHECK`]. Probes against one host start no faster than `hosts` allows. Each
/// slot's start is measured against its plan (tick plus the jitter drawn), so a runtime too busy
/// to start probes on time, or a host limit too tight, shows in
/// `statusmon_schedule_lag_seconds`.
pub fn spawn_schedule(
    channels: &[LiveChannel],
    reports: mpsc::Sender<ProbeReport>,
    hosts: &HostLimits,
) -> Vec<tokio::task::JoinHandle<()>> {
    channels
        .iter()
        .filter_map(|live| {
            let channel = live.channel.clone()?;
            let interval = live.config.interval;
            let limit = probe_deadline(&live.config);
            let reports = reports.clone();
            let hosts = hosts.clone();
            let host = live.config.host();
            Some(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut first = true;
                loop {
                    let slot = ticker.tick().await;
                    let mut planned = slot;
                    if !first {
                        let spread = interval.mul_f64(0.05);
                        let jitter = rand::rng().random_range(Duration::ZERO..=spread);
                        planned = slot + jitter;
                        tokio::time::sleep_until(planned).await;
                    }
                    first = false;
                    // Boxed, like the probe below: a thousand idle tasks then each hold only
                    // their timer, not room for a probe's whole state between probes.
                    Box::pin(hosts.wait_turn(host.as_deref())).await;
                    let started = tokio::time::Instant::now();
                    let lag = started.saturating_duration_since(planned);
                    if lag > HOST_SHIFT {
                        // Held back (by the host's limit, or a busy runtime): keep the new
                        // offset, so channels that started together spread out for good
                        // instead of bunching up again on every tick.
                        ticker.reset_at(started + interval);
                    }
                    let Some(out_of_credits) = Box::pin(probe_with_retries(
                        channel.as_ref(),
                        limit,
                        interval,
                        &reports,
                        (&hosts, host.as_deref()),
                        Some(lag),
                    ))
                    .await
                    else {
                        break;
                    };
                    if out_of_credits {
                        // Asking again costs nothing but changes nothing until someone buys
                        // credits: look again now and then, not every interval.
                        tokio::time::sleep(CREDITS_RECHECK.max(interval)).await;
                        ticker.reset();
                    }
                }
            }))
        })
        .collect()
}
