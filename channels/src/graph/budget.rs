//! The local request budget: the channel refuses to send a Graph request that could push the
//! tenant over Microsoft's service-communications limit, so it never earns a 429 on its own.
//!
//! Microsoft counts, per app and per tenant, 240 requests per 60 s and 800 per hour. A GCRA
//! limiter with a burst equal to the quota does not respect such a window: it lets the full burst
//! through and then keeps refilling, so one window can see the burst plus the refill. The quotas
//! here are chosen so that no window of either length can see more than the budget; see
//! [`window_quota`] for the derivation.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::Budget;
use crate::error::{ProbeError, humanize};

/// Microsoft's short window.
pub const MINUTE: Duration = Duration::from_secs(60);
/// Microsoft's long window.
pub const HOUR: Duration = Duration::from_secs(3600);

/// The GCRA quota that lets at most `limit` requests through in **any** window of length
/// `window` (closed at both ends, so it holds for however the upstream aligns its windows).
///
/// Derivation: a GCRA limiter with burst `b` and replenish period `p` (one cell per `p`) admits,
/// in any interval of length `W`, at most `b + ⌊W / p⌋` requests: the whole burst at the start of
/// the interval and then one per `p`. Requiring `b + W / p ≤ limit` gives `p ≥ W / (limit − b)`.
/// We take half of the budget as burst, `b = ⌊limit / 2⌋` (at least 1), so a probe with a few
/// pages never waits, and `p = ⌈W / (limit − b)⌉` (rounded up to the nanosecond, which only makes
/// it stricter). With the defaults:
///
/// - 240 per 60 s: `b = 120`, `p = 60 s / 120 = 500 ms`; at most 120 + 120 = 240 per minute;
/// - 800 per hour: `b = 400`, `p = 3600 s / 400 = 9 s`; at most 400 + 400 = 800 per hour.
///
/// The sustained rate is then half the budget (400/h), far more than a probe a minute needs
/// (two requests plus paging). For a limit of 1 there is no room for a refill inside the window,
/// so the period is the window plus a millisecond.
pub fn window_quota(limit: NonZeroU32, window: Duration) -> Quota {
    let limit = limit.get();
    let burst = (limit / 2).max(1);
    let refills = limit - burst;
    let period = if refills == 0 {
        window + Duration::from_millis(1)
    } else {
        let nanos = window.as_nanos().div_ceil(u128::from(refills));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    };
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    // `period` is never zero here (the window is positive), so `with_period` cannot refuse it;
    // the fallback is only for the type.
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(burst)
}

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Both windows of one tenant's budget, on clock `C` (the real clock in the channel, a fake one
/// in tests, so the check is deterministic).
pub struct RequestBudget<C: Clock = DefaultClock> {
    budget: Budget,
    minute: Limiter<C>,
    hour: Limiter<C>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for RequestBudget<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBudget")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl RequestBudget<DefaultClock> {
    /// A budget on the real clock.
    pub fn new(budget: Budget) -> Self {
        Self::with_clock(budget, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RequestBudget<C> {
    /// A budget on the given clock.
    pub fn with_clock(budget: Budget, clock: C) -> Self {
        RequestBudget {
            minute: RateLimiter::direct_with_clock(
                window_quota(budget.per_minute, MINUTE),
                clock.clone(),
            ),
            hour: RateLimiter::direct_with_clock(
                window_quota(budget.per_hour, HOUR),
                clock.clone(),
            ),
            budget,
            clock,
        }
    }

    /// Takes one request from the budget, or says (as [`ProbeError::Throttled`], nothing sent)
    /// when the next one is allowed.
    ///
    /// The minute window is checked first: when it refuses, the hour's scarcer cells are not
    /// spent. When the minute admits and the hour refuses, one minute cell is lost, which only
    /// makes the limiter stricter.
    pub fn take(&self) -> Result<(), ProbeError> {
        if let Err(not_until) = self.minute.check() {
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(spent(format!("{}/min", self.budget.per_minute), wait));
        }
        if let Err(not_until) = self.hour.check() {
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(spent(format!("{}/h", self.budget.per_hour), wait));
        }
        Ok(())
    }
}

fn spent(which: String, wait: Duration) -> ProbeError {
    // Round up so "in 0ms" is never said while a wait remains.
    let shown = if wait.subsec_nanos() > 0 && wait.as_secs() > 0 {
        Duration::from_secs(wait.as_secs() + 1)
    } else {
        wait
    };
    ProbeError::Throttled {
        message: format!(
            "local request budget of {which} spent; next request allowed in {} (nothing was \
             sent, so Microsoft's limit is not reached)",
            humanize(shown)
        ),
        retry_after: Some(wait),
    }
}
