//! Prometheus/OpenMetrics metrics for `GET /metrics`: probe durations and errors, and the
//! resolved picture (channel states, service, target verdicts and visibility) as one-hot gauges.
//!
//! The registry is explicit and lives in the app state (no global recorder), so tests and several
//! daemons in one process never share counters. Labels are only ids from the config and the
//! contract's enum names, never free text, so the number of series stays bounded.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    target: String,
    service: String,
    verdict: String,
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
    channel_state: Family<ChannelStateLabels, Gauge>,
    service_verdict: Family<ServiceLabels, Gauge>,
    target_verdict: Family<TargetLabels, Gauge>,
    target_visibility: Family<VisibilityLabels, Gauge>,
    /// What the one-hot gauges export now, so what vanishes from a document can be removed
    /// (a `Family` cannot list its label sets).
    exported: Mutex<Exported>,
}

#[derive(Default)]
struct Exported {
    channels: BTreeSet<(String, String)>,
    services: BTreeSet<(String, String)>,
    targets: BTreeSet<String>,
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
                channel_state,
                service_verdict,
                target_verdict,
                target_visibility,
                exported: Mutex::new(Exported::default()),
            }),
        }
    }

    /// Counts one probe from the schedule: its duration, and its error class if it failed.
    pub fn record_probe(&self, report: &ProbeReport) {
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

    /// Sets the one-hot gauges from a resolved document (and each channel's error counters to 0
    /// where unset), and drops the series of channels,
    /// targets and services it no longer has, so a vanished service does not linger as stale 1s.
    pub fn observe_document(&self, document: &StatusDocument) {
        let inner = &*self.inner;
        let mut now = Exported::default();
        for channel in &document.channels {
            for state in CHANNEL_STATES {
                inner
                    .channel_state
                    .get_or_create(&ChannelStateLabels {
                        channel: channel.id.clone(),
                        kind: channel.kind.clone(),
                        state: state.as_str().to_string(),
                    })
                    .set(i64::from(state == channel.state));
            }
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
            now.channels
                .insert((channel.id.clone(), channel.kind.clone()));
        }
        for target in &document.targets {
            for verdict in VERDICTS {
                inner
                    .target_verdict
                    .get_or_create(&TargetLabels {
                        target: target.id.clone(),
                        verdict: verdict.as_str().to_string(),
                    })
                    .set(i64::from(verdict == target.verdict));
            }
            for visibility in VISIBILITIES {
                inner
                    .target_visibility
                    .get_or_create(&VisibilityLabels {
                        target: target.id.clone(),
                        visibility: visibility_name(visibility).to_string(),
                    })
                    .set(i64::from(visibility == target.visibility));
            }
            now.targets.insert(target.id.clone());
            for service in &target.services {
                for verdict in VERDICTS {
                    inner
                        .service_verdict
                        .get_or_create(&ServiceLabels {
                            target: target.id.clone(),
                            service: service.id.clone(),
                            verdict: verdict.as_str().to_string(),
                        })
                        .set(i64::from(verdict == service.verdict));
                }
                now.services.insert((target.id.clone(), service.id.clone()));
            }
        }
        let mut exported = inner
            .exported
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (channel, kind) in exported.channels.difference(&now.channels) {
            for state in CHANNEL_STATES {
                inner.channel_state.remove(&ChannelStateLabels {
                    channel: channel.clone(),
                    kind: kind.clone(),
                    state: state.as_str().to_string(),
                });
            }
        }
        for target in exported.targets.difference(&now.targets) {
            for verdict in VERDICTS {
                inner.target_verdict.remove(&TargetLabels {
                    target: target.clone(),
                    verdict: verdict.as_str().to_string(),
                });
            }
            for visibility in VISIBILITIES {
                inner.target_visibility.remove(&VisibilityLabels {
                    target: target.clone(),
                    visibility: visibility_name(visibility).to_string(),
                });
            }
        }
        for (target, service) in exported.services.difference(&now.services) {
            for verdict in VERDICTS {
                inner.service_verdict.remove(&ServiceLabels {
                    target: target.clone(),
                    service: service.clone(),
                    verdict: verdict.as_str().to_string(),
                });
            }
        }
        *exported = now;
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
