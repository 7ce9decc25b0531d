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

/// What the simulated Microsoft Graph service-health API and its token endpoint do for one
/// tenant. Graph has its own scenario per tenant (with a default for every tenant), separate from
/// the public site's [`Scenario`], so "the site is degraded while Graph fails for tenant A" is two
/// independent settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphScenario {
    /// Every service `serviceOperational`; a few resolved issues in the history.
    Healthy,
    /// Exchange Online in `serviceDegradation` with an open advisory (`EX…`).
    Advisory,
    /// Microsoft Teams in `serviceInterruption` with an open incident (`TM…`) and several posts.
    Incident,
    /// What follows `Incident`: Microsoft Teams `serviceOperational` again and the same issue
    /// (`TM…`) resolved (`serviceRestored`) with a final post.
    IncidentRestored,
    /// The `advisory` data with enum values in PascalCase, as Microsoft's doc examples print them.
    PascalCase,
    /// Graph calls answer 429 `TooManyRequests` with a fractional `Retry-After` (`2.128`).
    Throttled,
    /// The token endpoint rejects every credential (`invalid_client`, AADSTS7000215).
    AuthBadSecret,
    /// The token endpoint says the app is not consented in the tenant (AADSTS700016).
    AuthConsentMissing,
    /// The token endpoint does not know the tenant (AADSTS90002).
    AuthUnknownTenant,
    /// Graph calls answer 503 `serviceNotAvailable`.
    Failing,
    /// Graph calls answer, healthy, only after a delay longer than a typical 10 s timeout.
    Slow,
    /// Graph calls answer 200 `text/html` with a sign-in page.
    DriftHtml,
    /// A status value outside Graph's enum (`serviceDegradedMaybe`).
    DriftUnknownEnum,
    /// Collections answer 200 JSON without `value`.
    DriftMissingValue,
}

impl GraphScenario {
    /// Every Graph scenario, in the order they are listed to users.
    pub const ALL: &[GraphScenario] = &[
        GraphScenario::Healthy,
        GraphScenario::Advisory,
        GraphScenario::Incident,
        GraphScenario::IncidentRestored,
        GraphScenario::PascalCase,
        GraphScenario::Throttled,
        GraphScenario::AuthBadSecret,
        GraphScenario::AuthConsentMissing,
        GraphScenario::AuthUnknownTenant,
        GraphScenario::Failing,
        GraphScenario::Slow,
        GraphScenario::DriftHtml,
        GraphScenario::DriftUnknownEnum,
        GraphScenario::DriftMissingValue,
    ];

    /// The canonical kebab-case name (what [`fmt::Display`] prints).
    pub fn name(&self) -> &'static str {
        match self {
            GraphScenario::Healthy => "healthy",
            GraphScenario::Advisory => "advisory",
            GraphScenario::Incident => "incident",
            GraphScenario::IncidentRestored => "incident-restored",
            GraphScenario::PascalCase => "pascal-case",
            GraphScenario::Throttled => "throttled",
            GraphScenario::AuthBadSecret => "auth-bad-secret",
            GraphScenario::AuthConsentMissing => "auth-consent-missing",
            GraphScenario::AuthUnknownTenant => "auth-unknown-tenant",
            GraphScenario::Failing => "failing",
            GraphScenario::Slow => "slow",
            GraphScenario::DriftHtml => "drift-html",
            GraphScenario::DriftUnknownEnum => "drift-unknown-enum",
            GraphScenario::DriftMissingValue => "drift-missing-value",
        }
    }

    /// One line saying what the scenario does, for listings.
    pub fn description(&self) -> &'static str {
        match self {
            GraphScenario::Healthy => "every service serviceOperational; a few resolved issues",
            GraphScenario::Advisory => {
                "Exchange Online in serviceDegradation with an open advisory (EX…)"
            }
            GraphScenario::Incident => {
                "Microsoft Teams in serviceInterruption with an open incident (TM…) and several posts"
            }
            GraphScenario::IncidentRestored => {
                "after incident: Microsoft Teams operational again, its issue (TM…) resolved as serviceRestored"
            }
            GraphScenario::PascalCase => {
                "the advisory data with PascalCase enum values, as Microsoft's doc examples print them"
            }
            GraphScenario::Throttled => {
                "Graph calls answer 429 TooManyRequests with Retry-After: 2.128"
            }
            GraphScenario::AuthBadSecret => {
                "the token endpoint rejects every credential: 401 invalid_client (AADSTS7000215)"
            }
            GraphScenario::AuthConsentMissing => {
                "the token endpoint says the app is not consented in the tenant: 400 unauthorized_client (AADSTS700016)"
            }
            GraphScenario::AuthUnknownTenant => {
                "the token endpoint does not know the tenant: 400 invalid_request (AADSTS90002)"
            }
            GraphScenario::Failing => "Graph calls answer 503 serviceNotAvailable",
            GraphScenario::Slow => {
                "Graph calls answer (healthy) only after a delay longer than a 10 s timeout"
            }
            GraphScenario::DriftHtml => "Graph calls answer 200 text/html with a sign-in page",
            GraphScenario::DriftUnknownEnum => {
                "a status outside Graph's enum (\"serviceDegradedMaybe\")"
            }
            GraphScenario::DriftMissingValue => "collections answer 200 JSON without \"value\"",
        }
    }

    /// The canonical names of every Graph scenario, comma-separated, for messages.
    pub fn names() -> String {
        GraphScenario::ALL
            .iter()
            .map(GraphScenario::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for GraphScenario {
    /// The canonical name; honours width and alignment, for aligned listings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A Graph scenario name that is not one of [`GraphScenario::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown graph scenario {name:?}; valid graph scenarios: {}",
    GraphScenario::names()
)]
pub struct UnknownGraphScenario {
    /// The name as given (shortened if very long).
    pub name: String,
}

impl FromStr for GraphScenario {
    type Err = UnknownGraphScenario;

    /// Parses a canonical name; case, surrounding whitespace and `_` for `-` are forgiven.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        GraphScenario::ALL
            .iter()
            .copied()
            .find(|scenario| scenario.name() == wanted)
            .ok_or_else(|| UnknownGraphScenario {
                name: s.chars().take(80).collect(),
            })
    }
}

/// What the simulated social upstreams (X API v2, Mastodon, Bluesky and an Atom feed of
/// @MSFT365Status) play. Independent of the site's [`Scenario`] and Graph's [`GraphScenario`].
///
/// A scenario is a thread of posts revealed one by one on a timeline (see the simulator's
/// module docs), on top of the account's history (an old, resolved thread from days ago), plus,
/// for the error scenarios, how X (and for `rate-limited` every social API) refuses us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocialScenario {
    /// Only the account's history: an old, resolved thread from days ago.
    Quiet,
    /// An incident thread (`MO…`) revealed post by post, from "investigating" through an ETA
    /// post ("we expect … will be resolved by …") to "impact has been remediated".
    Incident,
    /// An incident thread whose root names the id (`TM…`) and whose follow-ups do not; it ends
    /// open, recovering, with no remediation post.
    IncidentNoIds,
    /// X answers 402 `CreditsDepleted`; Mastodon, Bluesky and the feed play `incident`.
    CreditsDepleted,
    /// X answers 429 `UsageCapExceeded`; the others play `incident`.
    UsageCapped,
    /// X, Mastodon and Bluesky answer 429 with their rate-limit headers; the feed plays
    /// `incident`.
    RateLimited,
    /// X answers 401 `Unauthorized` to every bearer token; the others play `incident`.
    Unauthorized,
    /// X answers 403 `client-not-enrolled`; the others play `incident`.
    ClientForbidden,
}

impl SocialScenario {
    /// Every social scenario, in the order they are listed to users.
    pub const ALL: &[SocialScenario] = &[
        SocialScenario::Quiet,
        SocialScenario::Incident,
        SocialScenario::IncidentNoIds,
        SocialScenario::CreditsDepleted,
        SocialScenario::UsageCapped,
        SocialScenario::RateLimited,
        SocialScenario::Unauthorized,
        SocialScenario::ClientForbidden,
    ];

    /// The canonical kebab-case name (what [`fmt::Display`] prints).
    pub fn name(&self) -> &'static str {
        match self {
            SocialScenario::Quiet => "quiet",
            SocialScenario::Incident => "incident",
            SocialScenario::IncidentNoIds => "incident-no-ids",
            SocialScenario::CreditsDepleted => "credits-depleted",
            SocialScenario::UsageCapped => "usage-capped",
            SocialScenario::RateLimited => "rate-limited",
            SocialScenario::Unauthorized => "unauthorized",
            SocialScenario::ClientForbidden => "client-forbidden",
        }
    }

    /// Other names that parse to this scenario.
    pub fn aliases(&self) -> &'static [&'static str] {
        match self {
            SocialScenario::Quiet => &["healthy"],
            SocialScenario::IncidentNoIds => &["no-ids"],
            SocialScenario::CreditsDepleted => &["credits"],
            SocialScenario::UsageCapped => &["usage-cap-exceeded"],
            SocialScenario::RateLimited => &["throttled"],
            SocialScenario::ClientForbidden => &["forbidden"],
            SocialScenario::Incident | SocialScenario::Unauthorized => &[],
        }
    }

    /// One line saying what the scenario does, for listings.
    pub fn description(&self) -> &'static str {
        match self {
            SocialScenario::Quiet => "only an old, resolved thread from days ago (alias: healthy)",
            SocialScenario::Incident => {
                "an MO… incident thread revealed post by post: investigating, identified, an ETA \
                 (\"we expect … will be resolved by\"), signs of recovery, remediated"
            }
            SocialScenario::IncidentNoIds => {
                "a TM… thread whose follow-ups carry no id; ends open, recovering (alias: no-ids)"
            }
            SocialScenario::CreditsDepleted => {
                "X answers 402 CreditsDepleted; Mastodon, Bluesky and the feed play incident"
            }
            SocialScenario::UsageCapped => {
                "X answers 429 UsageCapExceeded (monthly cap); the others play incident"
            }
            SocialScenario::RateLimited => {
                "X, Mastodon and Bluesky answer 429 with their rate-limit headers (reset in a few \
                 seconds); the feed plays incident (alias: throttled)"
            }
            SocialScenario::Unauthorized => {
                "X answers 401 Unauthorized to every bearer token; the others play incident"
            }
            SocialScenario::ClientForbidden => {
                "X answers 403 client-not-enrolled; the others play incident (alias: forbidden)"
            }
        }
    }

    /// How many posts this scenario's thread reveals, one per step (the history is not counted).
    pub fn thread_len(&self) -> usize {
        super::social::thread(*self).len()
    }

    /// The canonical names of every social scenario, comma-separated, for messages.
    pub fn names() -> String {
        SocialScenario::ALL
            .iter()
            .map(SocialScenario::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for SocialScenario {
    /// The canonical name; honours width and alignment, for aligned listings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A social scenario name that is not one of [`SocialScenario::ALL`] (nor an alias).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown social scenario {name:?}; valid social scenarios: {}",
    SocialScenario::names()
)]
pub struct UnknownSocialScenario {
    /// The name as given (shortened if very long).
    pub name: String,
}

impl FromStr for SocialScenario {
    type Err = UnknownSocialScenario;

    /// Parses a canonical name or an alias; case, surrounding whitespace and `_` for `-` are
    /// forgiven.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        SocialScenario::ALL
            .iter()
            .copied()
            .find(|scenario| scenario.name() == wanted || scenario.aliases().contains(&&*wanted))
            .ok_or_else(|| UnknownSocialScenario {
                name: s.chars().take(80).collect(),
            })
    }
}
