//! Prometheus/OpenMetrics metrics for `GET /metrics`: probe durations and errors, and the
//! resolved picture (channel states, service, target verdicts and visibility) as one-hot gauges.
//!
//! The registry is explicit and lives in the app state (no global recorder), so tests and several
//! daemons in one process never share counters. Labels are only ids from the config and the
//! contract's enum names, never free text, so the number of series stays bounded.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    channel: String,
    kind: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    channel: String,
    class: String,
}

fn probe_histogram() -> Histogram {
    Histogram::new(PROBE_BUCKETS)
}

/// The daemon's metrics: written by the `watch` loop, rendered by `GET /metrics`. Cloning is
/// cheap: every clone is a handle to the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    probe_duration: Family<ProbeLabels, Histogram, fn() -> Histogram>,
    probe_errors: Family<ErrorLabels, Counter>,
    schedule_lag: Histogram,
    /// Channels whose error counters have been started at 0.
    counted: Mutex<HashSet<String>>,
    /// The latest document, which the one-hot gauges are read from at scrape time.
    picture: Arc<Picture>,
}

/// The one-hot gauges (channel states, service and target verdicts, visibility), encoded from
/// the latest document on each scrape rather than kept as series: a thousand tenants of 24
/// services are 120,000 series, which as a `Family` held about 20 MiB (see BENCHMARKS.md) and
/// had to be diffed against every document. Series of what left the document leave with it.
#[derive(Debug, Default)]
struct Picture {
    latest: RwLock<Option<Arc<StatusDocument>>>,
}

impl Picture {
    fn latest(&self) -> Option<Arc<StatusDocument>> {
        self.latest
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One series of a one-hot family: `1` if it is the subject's current value, else `0`.
fn one_hot(
    family: &mut MetricEncoder,
    labels: &impl EncodeLabelSet,
    current: bool,
) -> Result<(), fmt::Error> {
    ConstGauge::new(i64::from(current)).encode(family.encode_family(labels)?)
}

impl Collector for Picture {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(document) = self.latest() else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "channel_state",
            "1 for each channel's current state, 0 for the others",
            None,
            MetricType::Gauge,
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
        let mut family = encoder.encode_descriptor(
            "service_verdict",
            "1 for each service's current verdict per target, 0 for the others",
            None,
            MetricType::Gauge,
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
        let mut family = encoder.encode_descriptor(
            "target_verdict",
            "1 for each target's current overall verdict, 0 for the others",
            None,
            MetricType::Gauge,
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
        let mut family = encoder.encode_descriptor(
            "target_visibility",
            "1 for how much of each target we can see now, 0 for the others",
            None,
            MetricType::Gauge,
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
        let probe_duration =
            Family::<ProbeLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                probe_histogram as fn() -> Histogram,
            );
        registry.register_with_unit(
            "probe_duration",
            "How long each probe took, deadline included",
            Unit::Seconds,
            probe_duration.clone(),
        );
        let probe_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "probe_errors",
            "Failed probes by error class (the contract's class names)",
            probe_errors.clone(),
        );
        let schedule_lag = Histogram::new(LAG_BUCKETS);
        registry.register_with_unit(
            "schedule_lag",
            "How late each scheduled probe started against its planned slot (jitter excluded)",
            Unit::Seconds,
            schedule_lag.clone(),
        );
        let picture = Arc::new(Picture::default());
        registry.register_collector(Box::new(Arc::clone(&picture)));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                probe_duration,
                probe_errors,
                schedule_lag,
                counted: Mutex::new(HashSet::new()),
                picture,
            }),
        }
    }

    /// Counts one probe from the schedule: its duration, its start's lag behind the plan, and
    /// its error class if it failed.
    pub fn record_probe(&self, report: &ProbeReport) {
        if let Some(lag) = report.schedule_lag {
            self.inner.schedule_lag.observe(lag.as_secs_f64());
        }
        let outcome = if report.outcome.is_ok() {
            "ok"
        } else {
            "error"
        };
        self.inner
            .probe_duration
            .get_or_create(&ProbeLabels {
                channel: report.channel.clone(),
                kind: report.kind.as_str().to_string(),
                outcome: outcome.to_string(),
            })
            .observe(report.elapsed.as_secs_f64());
        if let Err(error) = &report.outcome {
            self.inner
                .probe_errors
                .get_or_create(&ErrorLabels {
                    channel: report.channel.clone(),
                    class: error.class().as_str().to_string(),
                })
                .inc();
        }
    }

    /// Makes `document` the one the one-hot gauges show from the next scrape on (they are read
    /// from it then, so this costs nothing per series), and starts each new channel's error
    /// counters at 0, so `increase()` sees a channel's first error.
    pub fn observe_document(&self, document: Arc<StatusDocument>) {
        let inner = &*self.inner;
        {
            let mut counted = inner.counted.lock().unwrap_or_else(PoisonError::into_inner);
            for channel in &document.channels {
                if counted.contains(&channel.id) {
                    continue;
                }
                for class in ERROR_CLASSES {
                    inner
                        .probe_errors
                        .get_or_create(&ErrorLabels {
                            channel: channel.id.clone(),
                            class: class.as_str().to_string(),
                        })
                        .inc_by(0);
                }
                counted.insert(channel.id.clone());
            }
        }
        *inner
            .picture
            .latest
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(document);
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
