//! Which events go where, and which are held back: routes, maintenance windows and silences.
//! Pure: the delivery worker asks, these answer from the event and the time.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use super::{AlertEvent, EventKind, Severity};

/// One `[[routes]]` entry: filters and an ordered list of sinks, the first that delivers wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Its id, which receipts and `statusmon drill` name.
    pub id: String,
    /// The filters; an event must pass each that is set.
    pub filter: EventFilter,
    /// Sink ids in order: when one fails after its retries, the next gets the event.
    pub sinks: Vec<String>,
}

/// What a route, a silence or a maintenance window applies to. An empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Target ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Service ids (the service an event concerns; events about no service pass only when the
    /// list is empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Event kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<EventKind>,
    /// The quietest severity that passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
}

impl EventFilter {
    /// Whether `event` passes, judged at `severity` (a resolution is judged by how loud the
    /// alert was when it fired, so a route for critical alerts also hears them end).
    pub fn matches(&self, event: &AlertEvent, severity: Severity) -> bool {
        (self.targets.is_empty() || self.targets.contains(&event.target))
            && (self.services.is_empty()
                || event
                    .service
                    .as_ref()
                    .is_some_and(|s| self.services.contains(s)))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
            && self.min_severity.is_none_or(|min| severity >= min)
    }

    /// Whether it matches everything.
    pub fn is_everything(&self) -> bool {
        self.targets.is_empty()
            && self.services.is_empty()
            && self.kinds.is_empty()
            && self.min_severity.is_none()
    }
}

/// A planned quiet time (`[[maintenance]]`): alerts that fire inside it are recorded and not
/// sent. Probing and resolution go on; only the telling stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// Its id, which receipts name.
    pub id: String,
    /// What it covers.
    pub filter: EventFilter,
    /// When.
    pub schedule: Schedule,
}

/// When a maintenance window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Once, from `start` to `end`.
    Once {
        /// Opens.
        start: DateTime<Utc>,
        /// Closes.
        end: DateTime<Utc>,
    },
    /// Every day, or every week on one day, from `at` (UTC) for `length`.
    Recurring {
        /// The weekday, or `None` for every day.
        weekday: Option<Weekday>,
        /// The time of day it opens, in UTC.
        at: NaiveTime,
        /// How long it stays open (under a day for daily windows, a week for weekly ones).
        length: ChronoDuration,
    },
}

impl Schedule {
    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        match *self {
            Schedule::Once { start, end } => start <= now && now < end,
            Schedule::Recurring {
                weekday,
                at,
                length,
            } => {
                // The latest opening at or before `now`: today's or an earlier day's. A window
                // can reach past midnight (or past the week's end), so look back far enough.
                let days_back = if weekday.is_some() { 7 } else { 1 };
                (0..=days_back).any(|back| {
                    let day = now.date_naive() - ChronoDuration::days(back);
                    if weekday.is_some_and(|w| day.weekday() != w) {
                        return false;
                    }
                    let opens = day.and_time(at).and_utc();
                    opens <= now && now < opens + length
                })
            }
        }
    }
}

impl MaintenanceWindow {
    /// Whether the window holds `event` back at `now`.
    pub fn covers(&self, event: &AlertEvent, now: DateTime<Utc>) -> bool {
        self.schedule.is_open(now) && self.filter.matches(event, event.severity)
    }
}

/// A silence made through the API: matching alerts are recorded and not sent until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// What it covers.
    #[serde(flatten)]
    pub filter: EventFilter,
    /// One alert key, when it silences only that alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Why (free text from whoever made it).
    pub comment: String,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Ends (or ended, when expired early).
    pub ends_at: DateTime<Utc>,
}

impl Silence {
    /// Whether it is in force at `now` (made, not yet ended).
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.created_at <= now && now < self.ends_at
    }

    /// Whether it holds `event` back at `now`.
    pub fn covers(&self, event: &AlertEvent, now: DateTime<Utc>) -> bool {
        self.in_force(now)
            && self.alert.as_ref().is_none_or(|a| *a == event.alert)
            && self.filter.matches(event, event.severity)
    }
}
