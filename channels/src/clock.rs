//! The wall clock channels read, which a replay can stop.
//!
//! Channels stamp observations and judge ages ("no post for over 6h", `Retry-After` dates) by
//! the wall clock. Replaying an archive must judge them by the time the answers were recorded,
//! not by today, or a week-old thread would look expired and every date-based wait would be
//! wrong. So channels read [`now`], which is the real clock unless the current task runs inside
//! [`frozen_at`].

use std::future::Future;

use chrono::{DateTime, Utc};

tokio::task_local! {
    static FROZEN: DateTime<Utc>;
}

/// The current time: the frozen time inside [`frozen_at`], the real clock otherwise.
pub fn now() -> DateTime<Utc> {
    FROZEN.try_with(|at| *at).unwrap_or_else(|_| Utc::now())
}

/// Runs `future` with [`now`] fixed at `at` (for replays; one probe is short enough that a
/// fixed instant stands for all of it).
pub async fn frozen_at<F: Future>(at: DateTime<Utc>, future: F) -> F::Output {
    FROZEN.scope(at, future).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn now_is_the_real_clock_outside_and_the_frozen_time_inside() {
        let at = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(frozen_at(at, async { now() }).await, at);
        assert!(now() > at, "outside, the real clock");
    }
}
