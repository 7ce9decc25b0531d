//! The scenarios the simulator can play, by name.

use std::fmt;
use std::str::FromStr;

/// What the simulated upstreams do. One enum for every upstream: a scenario names a situation
/// (an outage, a format change, an upstream refusing us), and each upstream module decides what
/// that situation looks like on its own endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Everything is Available/Operational, with fresh timestamps.
    Healthy,
    /// The Microsoft 365 admin center is degraded; a consumer incident has just been restored.
    AdminDegraded,
    /// Every `/api/...` path answers 200 `text/html` with the single-page app's shell.
    DriftHtmlShell,
    /// Data endpoints answer 200 with the right content type and an empty body.
    DriftEmptyBody,
    /// Status words outside the site's vocabulary.
    DriftUnknownStatus,
    /// Feed items without `<status>`, posts without `Status`.
    DriftMissingElement,
    /// Every upstream path answers 503 with an HTML error page.
    Failing,
    /// Requests are accepted and never answered.
    FailingHang,
    /// Every upstream path answers 429 with `Retry-After: 30`.
    Throttled,
}

/// How a scenario breaks the transport, before any upstream module sees the request. Shared by
/// every upstream; `None` from [`Scenario::transport_fault`] means the upstream answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportFault {
    /// 503 with a small HTML error page.
    ServerError,
    /// Hold the request until the simulator shuts down.
    Hang,
    /// 429 with `Retry-After`.
    Throttle,
}

impl Scenario {
    /// Every scenario, in the order they are listed to users.
    pub const ALL: &[Scenario] = &[
        Scenario::Healthy,
        Scenario::AdminDegraded,
        Scenario::DriftHtmlShell,
        Scenario::DriftEmptyBody,
        Scenario::DriftUnknownStatus,
        Scenario::DriftMissingElement,
        Scenario::Failing,
        Scenario::FailingHang,
        Scenario::Throttled,
    ];

    /// The canonical kebab-case name (what [`fmt::Display`] prints).
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::AdminDegraded => "admin-degraded",
            Scenario::DriftHtmlShell => "drift-html-shell",
            Scenario::DriftEmptyBody => "drift-empty-body",
            Scenario::DriftUnknownStatus => "drift-unknown-status",
            Scenario::DriftMissingElement => "drift-missing-element",
            Scenario::Failing => "failing",
            Scenario::FailingHang => "failing-hang",
            Scenario::Throttled => "throttled",
        }
    }

    /// Other names that parse to this scenario.
    pub fn aliases(&self) -> &'static [&'static str] {
        match self {
            Scenario::DriftHtmlShell => &["drift"],
            Scenario::Failing => &["failing-5xx"],
            _ => &[],
        }
    }

    /// One line saying what the scenario does, for listings.
    pub fn description(&self) -> &'static str {
        match self {
            Scenario::Healthy => "everything Available/Operational, with fresh timestamps",
            Scenario::AdminDegraded => {
                "admin center in \"Service degradation\"; an Outlook.com incident just restored"
            }
            Scenario::DriftHtmlShell => {
                "every /api path answers 200 text/html with the app shell (alias: drift)"
            }
            Scenario::DriftEmptyBody => {
                "data endpoints answer 200 with the right content type and an empty body"
            }
            Scenario::DriftUnknownStatus => {
                "status words outside the site's vocabulary (\"Partially available\")"
            }
            Scenario::DriftMissingElement => "feed items without <status>, posts without Status",
            Scenario::Failing => {
                "every upstream path answers 503 with an HTML error page (alias: failing-5xx)"
            }
            Scenario::FailingHang => {
                "requests are accepted and never answered, until the simulator stops"
            }
            Scenario::Throttled => "every upstream path answers 429 with Retry-After: 30",
        }
    }

    /// The transport-level failure this scenario imposes on every upstream path, if any.
    pub(crate) fn transport_fault(&self) -> Option<TransportFault> {
        match self {
            Scenario::Failing => Some(TransportFault::ServerError),
            Scenario::FailingHang => Some(TransportFault::Hang),
            Scenario::Throttled => Some(TransportFault::Throttle),
            Scenario::Healthy
            | Scenario::AdminDegraded
            | Scenario::DriftHtmlShell
            | Scenario::DriftEmptyBody
            | Scenario::DriftUnknownStatus
            | Scenario::DriftMissingElement => None,
        }
    }

    /// The canonical names of every scenario, comma-separated, for messages.
    pub fn names() -> String {
        Scenario::ALL
            .iter()
            .map(Scenario::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Scenario {
    /// The canonical name; honours width and alignment, for aligned listings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A scenario name that is not one of [`Scenario::ALL`] (nor an alias).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {name:?}; valid scenarios: {}", Scenario::names())]
pub struct UnknownScenario {
    /// The name as given (shortened if very long).
    pub name: String,
}

impl FromStr for Scenario {
    type Err = UnknownScenario;

    /// Parses a canonical name or an alias; case, surrounding whitespace and `_` for `-` are
    /// forgiven.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Scenario::ALL
            .iter()
            .copied()
            .find(|scenario| scenario.name() == wanted || scenario.aliases().contains(&&*wanted))
            .ok_or_else(|| UnknownScenario {
                name: s.chars().take(80).collect(),
            })
    }
}
