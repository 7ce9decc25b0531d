//! Prometheus/OpenMetrics metrics for `GET /metrics`: probe durations and errors, and the
//! resolved picture (channel states, service, target verdicts and visibility) as one-hot gauges.
//!
//! The registry is explicit and lives in the app state (no global recorder), so tests and several
//! daemons in one process never share counters. Labels are only ids from the config and the
//! contract's enum names, never free text, so the number of series stays bounded.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use statusmon_channels::{ErrorClass, Health};

use crate::engine::ProbeReport;
use crate::resolver::{ChannelState, Visibility};
use crate::status::StatusDocument;

/// The content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Probe duration buckets, in seconds: a healthy probe takes tens of milliseconds, a slow Graph
/// round several seconds, and the whole-probe deadline is at most the interval (minutes).
const PROBE_BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Schedule-lag buckets, in seconds: on an idle runtime a probe starts within a millisecond of
/// its slot; tens of milliseconds mean the runtime is busy; seconds mean probes are late.
pub const LAG_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const CHANNEL_STATES: [ChannelState; 4] = [
    ChannelState::Fresh,
    ChannelState::Stale,
    ChannelState::Failing,
    ChannelState::Disabled,
];

const ERROR_CLASSES: [ErrorClass; 8] = [
    ErrorClass::Auth,
    ErrorClass::Throttled,
    ErrorClass::Network,
    ErrorClass::Timeout,
    ErrorClass::Http,
    ErrorClass::Drift,
    ErrorClass::Credits,
    ErrorClass::Config,
];

const VERDICTS: [Health; 5] = [
    Health::Operational,
    Health::Maintenance,
    Health::Advisory,
    Health::Incident,
    Health::Unknown,
];

const VISIBILITIES: [Visibility; 3] = [Visibility::Full, Visibility::Degraded, Visibility::Blind];

fn visibility_name(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Full => "full",
        Visibility::Degraded => "degraded",
        Visibility::Blind => "blind",
    }
}

/// The daemon's metrics: written by the `watch` loop, rendered by `GET /metrics`. Cloning is
/// cheap: every clone is a handle to the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    schedule_lag: Histogram,
    collected: Arc<Collected>,
    /// Delivery receipts by route, sink and outcome (bounded by the config's routes and sinks).
    deliveries: Family<[(&'static str, String); 3], Counter>,
}

/// What `/metrics` shows per channel and per target, kept as plain numbers and the latest
/// document and encoded on each scrape rather than kept as series. A thousand tenants of 24
/// services are 120,000 one-hot series, which as a `Family` held about 20 MiB (see
/// BENCHMARKS.md) and had to be diffed against every document; a thousand channels' eight error
/// counters and their histograms were another 2 MiB of label strings. Series of what left the
/// document leave with it (the probe counters stay: counters only go up).
#[derive(Debug, Default)]
struct Collected {
    /// The latest document: channel states, service and target verdicts, visibility.
    latest: RwLock<Option<Arc<StatusDocument>>>,
    /// Per channel id, what its probes came to.
    probes: Mutex<BTreeMap<String, ChannelProbes>>,
}

/// One channel's probes: errors by class (in [`ERROR_CLASSES`] order) and durations by outcome.
#[derive(Debug)]
struct ChannelProbes {
    kind: String,
    errors: [u64; ERROR_CLASSES.len()],
    ok: Durations,
    failed: Durations,
}

impl ChannelProbes {
    fn new(kind: &str) -> Self {
        ChannelProbes {
            kind: kind.to_string(),
            errors: [0; ERROR_CLASSES.len()],
            ok: Durations::default(),
            failed: Durations::default(),
        }
    }
}

/// A histogram of probe durations over [`PROBE_BUCKETS`] (the last count is `+Inf`).
#[derive(Debug, Default)]
struct Durations {
    counts: [u64; PROBE_BUCKETS.len() + 1],
    count: u64,
    sum: f64,
}

impl Durations {
    fn observe(&mut self, seconds: f64) {
        let bucket = PROBE_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(PROBE_BUCKETS.len());
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum += seconds;
    }

    /// The buckets as the encoder takes them: upper bound and count (not cumulative).
    fn buckets(&self) -> [(f64, u64); PROBE_BUCKETS.len() + 1] {
        let mut out = [(f64::INFINITY, 0); PROBE_BUCKETS.len() + 1];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = (
                PROBE_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY),
                self.counts[i],
            );
        }
        out
    }
}

impl Collected {
    fn probes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ChannelProbes>> {
        self.probes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn encode_probes(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let probes = self.probes();
        let mut family = encoder.encode_descriptor(
            "probe_duration",
            "How long each probe took, deadline included",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (channel, stats) in probes.iter() {
            for (outcome, durations) in [("ok", &stats.ok), ("error", &stats.failed)] {
                if durations.count == 0 {
                    continue;
                }
                let labels = [
                    ("channel", channel.as_str()),
                    ("kind", stats.kind.as_str()),
                    ("outcome", outcome),
                ];
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        durations.sum,
                        durations.count,
                        &durations.buckets(),
                        None,
                    )?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "probe_errors",
            "Failed probes by error class (the contract's class names)",
            None,
            MetricType::Counter,
        )?;
        for (channel, stats) in probes.iter() {
            for (class, count) in ERROR_CLASSES.iter().zip(stats.errors) {
                let labels = [("channel", channel.as_str()), ("class", class.as_str())];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn latest(&self) -> Option<Arc<StatusDocument>> {
        self.latest
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Starts a family of gauges.
fn gauges<'e>(
    encoder: &'e mut DescriptorEncoder,
    name: &'e str,
    help: &str,
) -> Result<MetricEncoder<'e>, fmt::Error> {
    encoder.encode_descriptor(name, help, None, MetricType::Gauge)
}

/// One series of a one-hot family: `1` if it is the subject's current value, else `0`.
fn one_hot(
    family: &mut MetricEncoder,
    labels: &impl EncodeLabelSet,
    current: bool,
) -> Result<(), fmt::Error> {
    ConstGauge::new(i64::from(current)).encode(family.encode_family(labels)?)
}

impl Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        self.encode_probes(&mut encoder)?;
        let Some(document) = self.latest() else {
            return Ok(());
        };
        let mut family = gauges(
            &mut encoder,
            "channel_state",
            "1 for each channel's current state, 0 for the others",
        )?;
        for channel in &document.channels {
            for state in CHANNEL_STATES {
                let labels = [
                    ("channel", channel.id.as_str()),
                    ("kind", channel.kind.as_str()),
                    ("state", state.as_str()),
                ];
                one_hot(&mut family, &labels, state == channel.state)?;
            }
        }
        let mut family = gauges(
            &mut encoder,
            "service_verdict",
            "1 for each service's current verdict per target, 0 for the others",
        )?;
        for target in &document.targets {
            for service in &target.services {
                for verdict in VERDICTS {
                    let labels = [
                        ("target", target.id.as_str()),
                        ("service", service.id.as_str()),
                        ("verdict", verdict.as_str()),
                    ];
                    one_hot(&mut family, &labels, verdict == service.verdict)?;
                }
            }
        }
        let mut family = gauges(
            &mut encoder,
            "target_verdict",
            "1 for each target's current overall verdict, 0 for the others",
        )?;
        for target in &document.targets {
            for verdict in VERDICTS {
                let labels = [
                    ("target", target.id.as_str()),
                    ("verdict", verdict.as_str()),
                ];
                one_hot(&mut family, &labels, verdict == target.verdict)?;
            }
        }
        let mut family = gauges(
            &mut encoder,
            "target_visibility",
            "1 for how much of each target we can see now, 0 for the others",
        )?;
        for target in &document.targets {
            for visibility in VISIBILITIES {
                let labels = [
                    ("target", target.id.as_str()),
                    ("visibility", visibility_name(visibility)),
                ];
                one_hot(&mut family, &labels, visibility == target.visibility)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family under the `statusmon_` prefix, empty until the first probe.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("statusmon");
        let schedule_lag = Histogram::new(LAG_BUCKETS);
        registry.register_with_unit(
            "schedule_lag",
            "How late each scheduled probe started against its planned slot (jitter excluded)",
            Unit::Seconds,
            schedule_lag.clone(),
        );
        let collected = Arc::new(Collected::default());
        registry.register_collector(Box::new(Arc::clone(&collected)));
        let deliveries = Family::default();
        registry.register(
            "alert_deliveries",
            "Alert delivery receipts by route, sink (\"-\" when held back) and outcome",
            deliveries.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                schedule_lag,
                collected,
                deliveries,
            }),
        }
    }

    /// Counts one probe from the schedule: its duration, its start's lag behind the plan, and
    /// its error class if it failed.
    pub fn record_probe(&self, report: &ProbeReport) {
        if let Some(lag) = report.schedule_lag {
            self.inner.schedule_lag.observe(lag.as_secs_f64());
        }
        let mut probes = self.inner.collected.probes();
        if !probes.contains_key(&report.channel) {
            probes.insert(
                report.channel.clone(),
                ChannelProbes::new(report.kind.as_str()),
            );
        }
        let Some(stats) = probes.get_mut(&report.channel) else {
            return;
        };
        let seconds = report.elapsed.as_secs_f64();
        match &report.outcome {
            Ok(_) => stats.ok.observe(seconds),
            Err(error) => {
                stats.failed.observe(seconds);
                let class = error.class();
                if let Some(i) = ERROR_CLASSES.iter().position(|c| *c == class) {
                    stats.errors[i] += 1;
                }
            }
        }
    }

    /// Makes `document` the one the one-hot gauges show from the next scrape on (they are read
    /// from it then, so this costs nothing per series), and starts each new channel's error
    /// counters at 0, so `increase()` sees a channel's first error.
    pub fn observe_document(&self, document: Arc<StatusDocument>) {
        let collected = &*self.inner.collected;
        {
            let mut probes = collected.probes();
            for channel in &document.channels {
                if !probes.contains_key(&channel.id) {
                    probes.insert(channel.id.clone(), ChannelProbes::new(&channel.kind));
                }
            }
        }
        *collected
            .latest
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(document);
    }

    /// Counts one delivery receipt.
    pub fn record_delivery(&self, route: &str, sink: Option<&str>, outcome: &str) {
        self.inner
            .deliveries
            .get_or_create(&[
                ("route", route.to_string()),
                ("sink", sink.unwrap_or("-").to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    /// The registry in the OpenMetrics text format (ending in `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) = encode(&mut out, &self.inner.registry) {
            // Writing into a String cannot fail; a label that cannot be encoded is our bug.
            tracing::warn!(%error, "encoding the metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use statusmon_channels::{ChannelKind, ProbeError};

    /// The lines of `text` about metric `name` (its samples, not its help).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(name)).collect()
    }

    #[test]
    fn probe_durations_are_exported_as_the_library_histogram_exports_them() {
        let seconds = [0.0, 0.05, 0.07, 0.3, 2.0, 2.5, 299.0, 301.0, 1e9];
        let metrics = Metrics::new();
        for s in seconds {
            metrics.record_probe(&ProbeReport {
                channel: "c".to_string(),
                kind: ChannelKind::Feed,
                outcome: Err(ProbeError::Timeout {
                    what: "probe of c".to_string(),
                    after: Duration::from_secs(1),
                }),
                elapsed: Duration::from_secs_f64(s),
                at: chrono::Utc::now(),
                schedule_lag: None,
            });
        }
        let ours = metrics.render();

        let mut registry = Registry::with_prefix("statusmon");
        let library = prometheus_client::metrics::family::Family::<
            [(&'static str, &'static str); 3],
            Histogram,
            fn() -> Histogram,
        >::new_with_constructor(|| Histogram::new(PROBE_BUCKETS));
        registry.register_with_unit("probe_duration", "", Unit::Seconds, library.clone());
        let series =
            library.get_or_create(&[("channel", "c"), ("kind", "feed"), ("outcome", "error")]);
        for s in seconds {
            series.observe(Duration::from_secs_f64(s).as_secs_f64());
        }
        let mut theirs = String::new();
        encode(&mut theirs, &registry).expect("encodes");

        let name = "statusmon_probe_duration_seconds_";
        assert_eq!(samples(&ours, name), samples(&theirs, name), "{ours}");
        assert!(ours.contains("statusmon_probe_errors_total{channel=\"c\",class=\"timeout\"} 9"));
        assert!(ours.contains("statusmon_probe_errors_total{channel=\"c\",class=\"auth\"} 0"));
    }
}
