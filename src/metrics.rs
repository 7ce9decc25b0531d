//! Prometheus/OpenMetrics metrics for `GET /metrics`: probe durations and errors, and the
//! resolved picture (channel states, service, target verdicts and visibility) as one-hot gauges.
//!
//! The registry is explicit and lives in the app state (no global recorder), so tests and several
//! daemons in one process never share counters. Labels are only ids from the config and the
//! contract's enum names, never free text, so the number of series stays bounded.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelStateLabels {
    channel: String,
    kind: String,
    state: String,
}

/// The labels of `statusmon_service_verdict`, by far the largest family (five series per service
/// per target): the ids are shared by the five series as `Arc<str>` and the verdict is a static
/// name, so a thousand tenants' series do not each own three strings.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct ServiceLabels {
    target: Arc<str>,
    service: Arc<str>,
    verdict: &'static str,
}

impl EncodeLabelSet for ServiceLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("target", &*self.target).encode(encoder.encode_label())?;
        ("service", &*self.service).encode(encoder.encode_label())?;
        ("verdict", self.verdict).encode(encoder.encode_label())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
    verdict: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VisibilityLabels {
    target: String,
    visibility: String,
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
    channel_state: Family<ChannelStateLabels, Gauge>,
    service_verdict: Family<ServiceLabels, Gauge>,
    target_verdict: Family<TargetLabels, Gauge>,
    target_visibility: Family<VisibilityLabels, Gauge>,
    /// What the one-hot gauges export now, so what vanishes from a document can be removed
    /// (a `Family` cannot list its label sets).
    exported: Mutex<Exported>,
}

/// The values the one-hot gauges were last set to, so a document only touches what changed.
#[derive(Default)]
struct Exported {
    /// channel id → (kind, state).
    channels: HashMap<String, (String, ChannelState)>,
    /// target id → what its gauges show.
    targets: HashMap<String, ExportedTarget>,
}

/// What one target's gauges show (`None` until first set).
struct ExportedTarget {
    /// The target id, shared with its service series' labels.
    id: Arc<str>,
    verdict: Option<Health>,
    visibility: Option<Visibility>,
    /// service id (shared with its series' labels) → verdict.
    services: HashMap<Arc<str>, Health>,
}

impl Inner {
    fn set_channel_state(&self, channel: &str, kind: &str, current: ChannelState) {
        for state in CHANNEL_STATES {
            self.channel_state
                .get_or_create(&ChannelStateLabels {
                    channel: channel.to_string(),
                    kind: kind.to_string(),
                    state: state.as_str().to_string(),
                })
                .set(i64::from(state == current));
        }
    }

    fn remove_channel(&self, channel: &str, kind: &str) {
        for state in CHANNEL_STATES {
            self.channel_state.remove(&ChannelStateLabels {
                channel: channel.to_string(),
                kind: kind.to_string(),
                state: state.as_str().to_string(),
            });
        }
    }

    fn remove_service(&self, target: &Arc<str>, service: &Arc<str>) {
        for verdict in VERDICTS {
            self.service_verdict.remove(&ServiceLabels {
                target: Arc::clone(target),
                service: Arc::clone(service),
                verdict: verdict.as_str(),
            });
        }
    }

    fn remove_target(&self, target: &str, seen: &ExportedTarget) {
        for verdict in VERDICTS {
            self.target_verdict.remove(&TargetLabels {
                target: target.to_string(),
                verdict: verdict.as_str().to_string(),
            });
        }
        for visibility in VISIBILITIES {
            self.target_visibility.remove(&VisibilityLabels {
                target: target.to_string(),
                visibility: visibility_name(visibility).to_string(),
            });
        }
        for service in seen.services.keys() {
            self.remove_service(&seen.id, service);
        }
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
        let channel_state = Family::<ChannelStateLabels, Gauge>::default();
        registry.register(
            "channel_state",
            "1 for each channel's current state, 0 for the others",
            channel_state.clone(),
        );
        let service_verdict = Family::<ServiceLabels, Gauge>::default();
        registry.register(
            "service_verdict",
            "1 for each service's current verdict per target, 0 for the others",
            service_verdict.clone(),
        );
        let target_verdict = Family::<TargetLabels, Gauge>::default();
        registry.register(
            "target_verdict",
            "1 for each target's current overall verdict, 0 for the others",
            target_verdict.clone(),
        );
        let target_visibility = Family::<VisibilityLabels, Gauge>::default();
        registry.register(
            "target_visibility",
            "1 for how much of each target we can see now, 0 for the others",
            target_visibility.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                probe_duration,
                probe_errors,
                schedule_lag,
                channel_state,
                service_verdict,
                target_verdict,
                target_visibility,
                exported: Mutex::new(Exported::default()),
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

    /// Sets the one-hot gauges from a resolved document (and each new channel's error counters
    /// to 0), and drops the series of channels, targets and services it no longer has, so a
    /// vanished service does not linger as stale 1s.
    ///
    /// Only what differs from the previous document is touched: `watch` observes a document every
    /// second and after probes, and with a thousand targets rewriting every gauge each time cost
    /// more than resolving them.
    pub fn observe_document(&self, document: &StatusDocument) {
        let inner = &*self.inner;
        let mut exported = inner
            .exported
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for channel in &document.channels {
            match exported.channels.get_mut(&channel.id) {
                Some((kind, state)) if *kind == channel.kind => {
                    if *state != channel.state {
                        inner.set_channel_state(&channel.id, kind, channel.state);
                        *state = channel.state;
                    }
                }
                before => {
                    if let Some((kind, _)) = before {
                        inner.remove_channel(&channel.id, kind);
                    }
                    inner.set_channel_state(&channel.id, &channel.kind, channel.state);
                    // Every class starts at 0, so `increase()` sees a channel's first error.
                    for class in ERROR_CLASSES {
                        inner
                            .probe_errors
                            .get_or_create(&ErrorLabels {
                                channel: channel.id.clone(),
                                class: class.as_str().to_string(),
                            })
                            .inc_by(0);
                    }
                    exported
                        .channels
                        .insert(channel.id.clone(), (channel.kind.clone(), channel.state));
                }
            }
        }
        if exported.channels.len() != document.channels.len() {
            let kept: HashSet<&str> = document.channels.iter().map(|c| c.id.as_str()).collect();
            exported.channels.retain(|id, (kind, _)| {
                let keep = kept.contains(id.as_str());
                if !keep {
                    inner.remove_channel(id, kind);
                }
                keep
            });
        }
        for target in &document.targets {
            let seen = exported
                .targets
                .entry(target.id.clone())
                .or_insert_with(|| ExportedTarget {
                    id: Arc::from(target.id.as_str()),
                    verdict: None,
                    visibility: None,
                    services: HashMap::new(),
                });
            if seen.verdict != Some(target.verdict) {
                for verdict in VERDICTS {
                    inner
                        .target_verdict
                        .get_or_create(&TargetLabels {
                            target: target.id.clone(),
                            verdict: verdict.as_str().to_string(),
                        })
                        .set(i64::from(verdict == target.verdict));
                }
                seen.verdict = Some(target.verdict);
            }
            if seen.visibility != Some(target.visibility) {
                for visibility in VISIBILITIES {
                    inner
                        .target_visibility
                        .get_or_create(&VisibilityLabels {
                            target: target.id.clone(),
                            visibility: visibility_name(visibility).to_string(),
                        })
                        .set(i64::from(visibility == target.visibility));
                }
                seen.visibility = Some(target.visibility);
            }
            for service in &target.services {
                let key = match seen.services.get_key_value(service.id.as_str()) {
                    Some((_, verdict)) if *verdict == service.verdict => continue,
                    Some((key, _)) => Arc::clone(key),
                    None => Arc::from(service.id.as_str()),
                };
                for verdict in VERDICTS {
                    inner
                        .service_verdict
                        .get_or_create(&ServiceLabels {
                            target: Arc::clone(&seen.id),
                            service: Arc::clone(&key),
                            verdict: verdict.as_str(),
                        })
                        .set(i64::from(verdict == service.verdict));
                }
                seen.services.insert(key, service.verdict);
            }
            if seen.services.len() != target.services.len() {
                let kept: HashSet<&str> = target.services.iter().map(|s| s.id.as_str()).collect();
                let id = Arc::clone(&seen.id);
                seen.services.retain(|service, _| {
                    let keep = kept.contains(&**service);
                    if !keep {
                        inner.remove_service(&id, service);
                    }
                    keep
                });
            }
        }
        if exported.targets.len() != document.targets.len() {
            let kept: HashSet<&str> = document.targets.iter().map(|t| t.id.as_str()).collect();
            exported.targets.retain(|target, seen| {
                let keep = kept.contains(target.as_str());
                if !keep {
                    inner.remove_target(target, seen);
                }
                keep
            });
        }
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
