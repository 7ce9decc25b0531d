//! Per-tenant state of the simulated Microsoft Graph upstream: which [`GraphScenario`] each
//! tenant plays, how long its tokens live, the tokens themselves, and the request budget.
//!
//! Budget accounting mirrors Graph's service-communications limit (per app per tenant, 240
//! requests / 60 s and 800 / 3600 s): every Graph API request with a valid token is stamped in
//! its tenant's sliding window; a request that makes either window exceed its limit is answered
//! 429 and counted as `over_budget`. Rejected requests still count in the windows, as on real
//! Graph ("usage keeps accruing"), so `max_in_60s` / `max_in_3600s` are the most requests the
//! client actually sent in any window. Token requests are counted separately and never against
//! the budget.
//!
//! Memory is bounded: stamps older than an hour are dropped, each tenant keeps at most
//! [`MAX_STAMPS`] stamps (far above any limit, so decisions stay right; only `max_in_3600s`
//! saturates there), and at most [`MAX_TENANTS`] tenants are tracked — requests from further
//! tenants are served but only counted in `untracked_requests`. Tokens are not stored at all: a
//! token carries its tenant and expiry and a keyed hash that only this simulator can produce.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::lock;
use super::scenario::GraphScenario;
use super::token::{b64url_decode, b64url_encode};

/// The client secret the simulated token endpoint accepts (any `client_id`, any tenant).
pub const SIM_CLIENT_SECRET: &str = "sim-secret";

/// The access-token lifetime (`expires_in`) when none is configured: Entra's usual 3599 s.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// How long the `slow` Graph scenario holds each answer unless configured otherwise: longer
/// than a typical 10 s client timeout.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(15);

/// At most this many tenants are tracked (stats, scenario overrides, token lifetimes).
pub const MAX_TENANTS: usize = 10_000;

/// At most this many request stamps are kept per tenant.
pub const MAX_STAMPS: usize = 100_000;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Graph's per-tenant request limits for `/admin/serviceAnnouncement/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GraphLimits {
    /// Requests allowed in any 60 s window (Graph: 240). At least 1.
    pub per_60s: u32,
    /// Requests allowed in any 3600 s window (Graph: 800). At least 1.
    pub per_3600s: u32,
}

impl Default for GraphLimits {
    fn default() -> Self {
        GraphLimits {
            per_60s: 240,
            per_3600s: 800,
        }
    }
}

/// What the simulator has seen from one tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GraphTenantStats {
    /// Graph API requests with a valid token (including those answered 429).
    pub requests: u64,
    /// Of those, the ones beyond the budget (answered 429 by the budget, not by a scenario).
    pub over_budget: u64,
    /// The most requests in any 60 s window so far.
    pub max_in_60s: u64,
    /// The most requests in any 3600 s window so far.
    pub max_in_3600s: u64,
    /// Requests in the last 60 s.
    pub in_last_60s: u64,
    /// Requests in the last 3600 s.
    pub in_last_3600s: u64,
    /// Requests to the token endpoint for this tenant (never against the budget).
    pub token_requests: u64,
    /// Tokens issued for this tenant.
    pub tokens_issued: u64,
}

/// Whether a Graph request is within its tenant's budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Admission {
    Within,
    /// Over budget: the client should wait this long before the next request would fit.
    OverBudget(Duration),
}

/// Why a bearer token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    /// Not one of ours (or tampered with).
    Invalid,
    /// Ours, but past its expiry.
    Expired,
}

#[derive(Debug, Default)]
struct Tenant {
    stats: GraphTenantStats,
    stamps: VecDeque<Instant>,
    scenario: Option<GraphScenario>,
    token_lifetime: Option<Duration>,
}

impl Tenant {
    fn prune(&mut self, now: Instant) {
        while let Some(&oldest) = self.stamps.front() {
            if now.saturating_duration_since(oldest) >= HOUR {
                self.stamps.pop_front();
            } else {
                break;
            }
        }
    }

    fn in_last(&self, window: Duration, now: Instant) -> usize {
        self.stamps
            .iter()
            .rev()
            .take_while(|&&at| now.saturating_duration_since(at) < window)
            .count()
    }
}

#[derive(Debug)]
struct Settings {
    default_scenario: GraphScenario,
    token_lifetime: Duration,
    limits: GraphLimits,
    slow_delay: Duration,
    tenants: HashMap<String, Tenant>,
    untracked_requests: u64,
}

/// The Graph upstream's shared state; one per simulator.
#[derive(Debug)]
pub(crate) struct GraphState {
    settings: Mutex<Settings>,
    key: RandomState,
    serial: AtomicU64,
}

/// Whether `tenant` looks like a tenant id: a GUID or a domain-like name (letters, digits, `.`,
/// `-`, `_`; at most 253 characters). Anything else is an unknown tenant (AADSTS90002).
pub(crate) fn valid_tenant(tenant: &str) -> bool {
    (1..=253).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

impl GraphState {
    pub(crate) fn new(default_scenario: GraphScenario) -> Self {
        GraphState {
            settings: Mutex::new(Settings {
                default_scenario,
                token_lifetime: DEFAULT_TOKEN_LIFETIME,
                limits: GraphLimits::default(),
                slow_delay: DEFAULT_SLOW_DELAY,
                tenants: HashMap::new(),
                untracked_requests: 0,
            }),
            key: RandomState::new(),
            serial: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the tenant's record, creating it if there is room. `None` when the tenant is
    /// not tracked (too many tenants already).
    fn with_tenant<R>(&self, tenant: &str, f: impl FnOnce(&mut Tenant) -> R) -> Option<R> {
        let mut settings = lock(&self.settings);
        if let Some(record) = settings.tenants.get_mut(tenant) {
            return Some(f(record));
        }
        if settings.tenants.len() >= MAX_TENANTS {
            settings.untracked_requests += 1;
            return None;
        }
        let record = settings.tenants.entry(tenant.to_string()).or_default();
        Some(f(record))
    }

    pub(crate) fn default_scenario(&self) -> GraphScenario {
        lock(&self.settings).default_scenario
    }

    pub(crate) fn set_default_scenario(&self, scenario: GraphScenario) -> GraphScenario {
        std::mem::replace(&mut lock(&self.settings).default_scenario, scenario)
    }

    /// The scenario `tenant` plays: its own, or the default.
    pub(crate) fn scenario_for(&self, tenant: &str) -> GraphScenario {
        let settings = lock(&self.settings);
        settings
            .tenants
            .get(tenant)
            .and_then(|t| t.scenario)
            .unwrap_or(settings.default_scenario)
    }

    /// Gives `tenant` its own scenario (`None`: back to the default). Returns whether it was
    /// recorded (false for an invalid tenant id or when too many tenants are tracked).
    pub(crate) fn set_tenant_scenario(
        &self,
        tenant: &str,
        scenario: Option<GraphScenario>,
    ) -> bool {
        valid_tenant(tenant)
            && self
                .with_tenant(tenant, |t| t.scenario = scenario)
                .is_some()
    }

    /// Tenants with their own scenario, sorted.
    pub(crate) fn tenant_scenarios(&self) -> BTreeMap<String, GraphScenario> {
        lock(&self.settings)
            .tenants
            .iter()
            .filter_map(|(name, t)| t.scenario.map(|s| (name.clone(), s)))
            .collect()
    }

    pub(crate) fn limits(&self) -> GraphLimits {
        lock(&self.settings).limits
    }

    pub(crate) fn set_limits(&self, limits: GraphLimits) {
        lock(&self.settings).limits = GraphLimits {
            per_60s: limits.per_60s.max(1),
            per_3600s: limits.per_3600s.max(1),
        };
    }

    pub(crate) fn slow_delay(&self) -> Duration {
        lock(&self.settings).slow_delay
    }

    pub(crate) fn set_slow_delay(&self, delay: Duration) {
        lock(&self.settings).slow_delay = delay;
    }

    pub(crate) fn token_lifetime(&self) -> Duration {
        lock(&self.settings).token_lifetime
    }

    pub(crate) fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.settings).token_lifetime = lifetime;
    }

    pub(crate) fn set_tenant_token_lifetime(&self, tenant: &str, lifetime: Duration) -> bool {
        valid_tenant(tenant)
            && self
                .with_tenant(tenant, |t| t.token_lifetime = Some(lifetime))
                .is_some()
    }

    /// Counts a token request for `tenant`.
    pub(crate) fn count_token_request(&self, tenant: &str) {
        self.with_tenant(tenant, |t| t.stats.token_requests += 1);
    }

    /// Issues a token for `tenant`: `(access_token, expires_in seconds)`.
    pub(crate) fn issue_token(&self, tenant: &str) -> (String, u64) {
        let lifetime = self
            .with_tenant(tenant, |t| {
                t.stats.tokens_issued += 1;
                t.token_lifetime
            })
            .flatten()
            .unwrap_or_else(|| self.token_lifetime());
        let expires_ms = unix_ms() + lifetime.as_millis();
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        let encoded = b64url_encode(tenant.as_bytes());
        let mac = self.key.hash_one((encoded.as_str(), expires_ms, serial));
        (
            format!("sim.{encoded}.{expires_ms}.{serial}.{mac:016x}"),
            lifetime.as_secs(),
        )
    }

    /// The tenant a token was issued for, if it is one of ours and not expired.
    pub(crate) fn verify_token(&self, token: &str) -> Result<String, TokenProblem> {
        let mut parts = token.split('.');
        let (Some("sim"), Some(encoded), Some(expires), Some(serial), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenProblem::Invalid);
        };
        let (Ok(expires_ms), Ok(serial), Ok(mac)) = (
            expires.parse::<u128>(),
            serial.parse::<u64>(),
            u64::from_str_radix(mac, 16),
        ) else {
            return Err(TokenProblem::Invalid);
        };
        if self.key.hash_one((encoded, expires_ms, serial)) != mac {
            return Err(TokenProblem::Invalid);
        }
        let tenant = b64url_decode(encoded)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(TokenProblem::Invalid)?;
        if unix_ms() >= expires_ms {
            return Err(TokenProblem::Expired);
        }
        Ok(tenant)
    }

    /// Stamps one Graph API request for `tenant` and says whether it fits the budget.
    pub(crate) fn admit(&self, tenant: &str) -> Admission {
        let now = Instant::now();
        let limits = self.limits();
        self.with_tenant(tenant, |t| {
            t.prune(now);
            t.stamps.push_back(now);
            if t.stamps.len() > MAX_STAMPS {
                t.stamps.pop_front();
            }
            t.stats.requests += 1;
            let in_minute = t.in_last(MINUTE, now);
            let in_hour = t.stamps.len();
            t.stats.max_in_60s = t.stats.max_in_60s.max(in_minute as u64);
            t.stats.max_in_3600s = t.stats.max_in_3600s.max(in_hour as u64);
            // For the next request to fit a window of `n` stamps with limit `l`, the oldest
            // `n - l + 1` must have left it: wait until stamp `n - l` (oldest first) expires.
            let wait = |n: usize, limit: u32, window: Duration| -> Option<Duration> {
                let limit = limit as usize;
                (n > limit).then(|| {
                    let first = t.stamps.len() - n;
                    let stamp = t.stamps[first + n - limit];
                    (stamp + window).saturating_duration_since(now)
                })
            };
            let minute_wait = wait(in_minute, limits.per_60s, MINUTE);
            let hour_wait = wait(in_hour, limits.per_3600s, HOUR);
            match minute_wait.max(hour_wait) {
                Some(wait) => {
                    t.stats.over_budget += 1;
                    Admission::OverBudget(wait.max(Duration::from_millis(1)))
                }
                None => Admission::Within,
            }
        })
        .unwrap_or(Admission::Within)
    }

    /// What the simulator has seen from `tenant` (zeros for a tenant never seen).
    pub(crate) fn stats(&self, tenant: &str) -> GraphTenantStats {
        let now = Instant::now();
        let settings = lock(&self.settings);
        settings
            .tenants
            .get(tenant)
            .map(|t| snapshot(t, now))
            .unwrap_or_default()
    }

    /// Every tracked tenant's stats, sorted by tenant.
    pub(crate) fn all_stats(&self) -> BTreeMap<String, GraphTenantStats> {
        let now = Instant::now();
        lock(&self.settings)
            .tenants
            .iter()
            .map(|(name, t)| (name.clone(), snapshot(t, now)))
            .collect()
    }

    /// Requests from tenants beyond [`MAX_TENANTS`], served but not tracked.
    pub(crate) fn untracked_requests(&self) -> u64 {
        lock(&self.settings).untracked_requests
    }
}

fn snapshot(tenant: &Tenant, now: Instant) -> GraphTenantStats {
    GraphTenantStats {
        in_last_60s: tenant.in_last(MINUTE, now) as u64,
        in_last_3600s: tenant.in_last(HOUR, now) as u64,
        ..tenant.stats
    }
}
