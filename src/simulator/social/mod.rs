//! The social upstreams of @MSFT365Status: X API v2 (`x`), Mastodon (`mastodon`), Bluesky
//! (`bluesky`) and an Atom feed (`feed`), all playing one [`SocialScenario`] on one timeline.
//!
//! The account's timeline is the same on every network: its history (an old, resolved `EX…`
//! thread from days ago, stamped relative to when the simulator started, so it never changes)
//! and the scenario's thread, revealed post by post: post k (0-based) becomes visible at
//! `start + k × step` and is stamped with that time. `POST /_sim/social/advance` reveals the next
//! post at once (stamped now; the posts after it follow at `step` intervals from there), and
//! switching the social scenario restarts the timeline. Every network renders the same posts in
//! its own shapes and ids (snowflake-like ids that grow with time); the networks add their own
//! extras: one reblog on Mastodon, one repost and one pinned post on Bluesky.
//!
//! These paths are counted like every upstream request but never see the site's transport
//! faults; the error scenarios are each network's own (X's 401/402/403/429, Mastodon's and
//! Bluesky's 429).

mod bluesky;
mod feed;
mod mastodon;
mod x;

use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::{SimState, SocialScenario, lock};

/// The bearer token the simulated X API accepts (any other token, or none, gets the real 401).
pub const SIM_X_BEARER_TOKEN: &str = "sim-x-bearer";
/// The X username of the simulated account (looked up case-insensitively).
pub const SIM_X_USERNAME: &str = "MSFT365Status";
/// The X user id of the simulated account.
pub const SIM_X_USER_ID: &str = "1143650338541068288";
/// The Mastodon `acct` of the simulated account (`GET /api/v1/accounts/lookup?acct=…`).
pub const SIM_MASTODON_ACCT: &str = "MSFT365Status";
/// The Mastodon account id of the simulated account.
pub const SIM_MASTODON_ACCOUNT_ID: &str = "109318716235342597";
/// The Bluesky handle of the simulated account.
pub const SIM_BLUESKY_HANDLE: &str = "msft365status.bsky.social";
/// The Bluesky DID of the simulated account (accepted as `actor` too).
pub const SIM_BLUESKY_DID: &str = "did:plc:m365stat7k2yq4wz3vxr5ubn";
/// The path of the simulated Atom feed of the account's posts.
pub const SIM_FEED_PATH: &str = "/feeds/msft365status.atom";
/// The incident id of the `incident` scenario's thread (and of the error scenarios').
pub const SIM_INCIDENT_ID: &str = "MO1290417";
/// The incident id named only by the root post of the `incident-no-ids` thread.
pub const SIM_NO_IDS_INCIDENT_ID: &str = "TM1290562";
/// The incident id of the old, resolved thread in the account's history.
pub const SIM_HISTORY_INCIDENT_ID: &str = "EX1261834";
/// The time between two posts of a scenario's thread unless told otherwise.
pub const DEFAULT_SOCIAL_STEP: Duration = Duration::from_secs(30);
/// The shortest step accepted (so every post has its own millisecond).
pub const MIN_SOCIAL_STEP: Duration = Duration::from_millis(10);

/// Path prefixes of the social upstreams.
pub(crate) const X_PREFIX: &str = "/2/";
pub(crate) const MASTODON_PREFIX: &str = "/api/v1/";
pub(crate) const BLUESKY_PREFIX: &str = "/xrpc/";
pub(crate) const FEED_PREFIX: &str = "/feeds/";

/// How the social upstreams start: which scenario, and the time between two posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocialSim {
    /// The scenario to play.
    pub scenario: SocialScenario,
    /// The time between two posts of the scenario's thread (at least [`MIN_SOCIAL_STEP`]).
    pub step: Duration,
}

impl Default for SocialSim {
    /// `quiet`, one post every [`DEFAULT_SOCIAL_STEP`].
    fn default() -> Self {
        SocialSim {
            scenario: SocialScenario::Quiet,
            step: DEFAULT_SOCIAL_STEP,
        }
    }
}

impl SocialSim {
    /// `scenario` at the default step.
    pub fn new(scenario: SocialScenario) -> Self {
        SocialSim {
            scenario,
            step: DEFAULT_SOCIAL_STEP,
        }
    }

    /// The same, with `step` between posts.
    pub fn with_step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }
}

/// Upstream requests received so far by each social network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct SocialRequests {
    /// Under `/2/` (X API v2).
    pub x: u64,
    /// Under `/api/v1/` (Mastodon).
    pub mastodon: u64,
    /// Under `/xrpc/` (Bluesky).
    pub bluesky: u64,
    /// Under `/feeds/` (the Atom feed).
    pub feed: u64,
}

/// The social routes of every network.
pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .merge(x::routes())
        .merge(mastodon::routes())
        .merge(bluesky::routes())
        .merge(feed::routes())
}

/// Whether `path` belongs to a social upstream (and so is exempt from the site's faults).
pub(crate) fn is_social_path(path: &str) -> bool {
    path == "/2"
        || [X_PREFIX, MASTODON_PREFIX, BLUESKY_PREFIX, FEED_PREFIX]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// Requests so far per social network.
pub(crate) fn requests(state: &SimState) -> SocialRequests {
    SocialRequests {
        x: state.requests_to(X_PREFIX),
        mastodon: state.requests_to(MASTODON_PREFIX),
        bluesky: state.requests_to(BLUESKY_PREFIX),
        feed: state.requests_to(FEED_PREFIX),
    }
}

// ---------------------------------------------------------------------------------------------
// The posts.

/// One post of a scenario's thread, as written; `{eta}` is replaced by a full hour two to three
/// hours after the post (`HH:MM UTC`).
type PostText = &'static str;

/// The account's history: an old Exchange incident, resolved; each post with its minutes after
/// the first, which was posted `HISTORY_AGE` before the simulator started.
const HISTORY: &[(i64, PostText)] = &[
    (
        0,
        "We're investigating an issue where some users may experience delays sending and \
         receiving email in Exchange Online. Further details can be found under EX1261834 in \
         the admin center.",
    ),
    (
        35,
        "We’ve determined that a recent configuration update is causing mail flow delays and \
         we’re reverting it to mitigate impact. Updates are available in the admin center \
         under EX1261834.",
    ),
    (
        95,
        "The revert has completed and queued messages are being delivered. We're monitoring \
         the service to confirm recovery. EX1261834",
    ),
    (
        150,
        "We’ve confirmed that impact has been remediated and mail flow has returned to normal. \
         EX1261834",
    ),
];

/// How long before the simulator's start the history thread began.
const HISTORY_AGE: TimeDelta = TimeDelta::days(4);

const INCIDENT: &[PostText] = &[
    "We're investigating an issue affecting access to multiple Microsoft 365 services, \
     including Outlook on the web and Microsoft Teams. More info can be found in the admin \
     center under MO1290417.",
    "We're reviewing service telemetry and recent changes to isolate the source of the sign-in \
     failures. Further updates will be provided in the admin center under MO1290417.",
    "We’ve identified a recent change to authentication infrastructure that is causing \
     requests to fail, and we’re rolling the change back to mitigate impact. MO1290417",
    "The rollback is progressing and we expect that the issue will be resolved by {eta} as the \
     fix saturates the affected environment. Details are available at \
     https://status.cloud.microsoft and in the admin center under MO1290417.",
    "We’re now seeing signs of recovery as the rollback completes, and most users can access \
     affected services again. We’re monitoring telemetry for residual impact. MO1290417",
    "We’ve confirmed that impact has been remediated following the rollback. A post-incident \
     report will be published in the admin center under MO1290417.",
];

const INCIDENT_NO_IDS: &[PostText] = &[
    "We're investigating an issue where users may be unable to join meetings or send chat \
     messages in Microsoft Teams. More info can be found in the admin center under TM1290562.",
    "We've received additional reports of users being unable to load chats and channels, and \
     we're reviewing telemetry to determine the next troubleshooting steps.",
    "We’ve isolated the problem to a networking configuration issue in one region and are \
     redirecting traffic to healthy infrastructure to relieve impact.",
    "Availability is improving as traffic moves to healthy infrastructure. We’ll continue to \
     monitor until impact has been resolved for all users. Please visit \
     https://status.cloud.microsoft for additional information.",
];

/// The thread a scenario reveals (empty for `quiet`).
pub(crate) fn thread(scenario: SocialScenario) -> &'static [PostText] {
    match scenario {
        SocialScenario::Quiet => &[],
        SocialScenario::IncidentNoIds => INCIDENT_NO_IDS,
        SocialScenario::Incident
        | SocialScenario::CreditsDepleted
        | SocialScenario::UsageCapped
        | SocialScenario::RateLimited
        | SocialScenario::Unauthorized
        | SocialScenario::ClientForbidden => INCIDENT,
    }
}

/// Sequence numbers of the networks' extra items (low bits of their ids).
pub(crate) const SEQ_REBLOG: u64 = 900;
pub(crate) const SEQ_PIN: u64 = 901;
pub(crate) const SEQ_OTHER: u64 = 902;

/// When the Mastodon reblog and the Bluesky repost happened, before the simulator started.
pub(crate) const REPOST_AGE: TimeDelta = TimeDelta::days(2);
/// How old the Bluesky pinned (introduction) post is.
pub(crate) const PIN_AGE: TimeDelta = TimeDelta::days(200);

/// The Bluesky account's pinned introduction post.
pub(crate) const PINNED_TEXT: &str = "Follow this account for updates on major Microsoft 365 \
     service events. Details for your organization are always in Service health in the \
     Microsoft 365 admin center.";
/// The other account's post that Mastodon reblogs and Bluesky reposts.
pub(crate) const OTHER_TEXT: &str = "A look at what's new in Microsoft Teams this month, from \
     meeting recaps to faster chat search: https://learn.microsoft.com/microsoftteams/";

/// One post of the account, ready to render.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    /// Unique per post of the account, increasing with time: the low bits of its ids.
    pub seq: u64,
    /// When it was posted (millisecond precision).
    pub at: DateTime<Utc>,
    /// Its text, `{eta}` filled in.
    pub text: String,
    /// The index (in [`Snapshot::posts`]) of the post it replies to.
    pub parent: Option<usize>,
    /// The index of its thread's root (itself for a root).
    pub root: usize,
}

/// The account as a request sees it.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// When the simulator's social clock started (the history's anchor).
    pub created: DateTime<Utc>,
    /// Every visible post, oldest first.
    pub posts: Vec<Post>,
}

// ---------------------------------------------------------------------------------------------
// The timeline.

#[derive(Debug)]
struct Timeline {
    scenario: SocialScenario,
    step: TimeDelta,
    started: DateTime<Utc>,
    /// When each revealed post of the thread was posted, in thread order.
    revealed: Vec<DateTime<Utc>>,
}

impl Timeline {
    fn new(social: SocialSim, now: DateTime<Utc>) -> Self {
        Timeline {
            scenario: social.scenario,
            step: step_delta(social.step),
            started: now,
            revealed: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        thread(self.scenario).len()
    }

    /// Whether some post of the thread is still hidden.
    fn unfinished(&self) -> bool {
        self.revealed.len() < self.len()
    }

    /// When the next post is due (None once all are revealed).
    fn next_due(&self) -> Option<DateTime<Utc>> {
        if !self.unfinished() {
            return None;
        }
        match self.revealed.last() {
            None => Some(self.started),
            Some(last) => last.checked_add_signed(self.step),
        }
    }

    /// Reveals every post due by `now`, each stamped with its due time.
    fn catch_up(&mut self, now: DateTime<Utc>) {
        while let Some(due) = self.next_due() {
            if due > now {
                break;
            }
            self.revealed.push(due);
        }
    }
}

/// The longest step kept; longer ones are shortened to it (the next post is a year away either
/// way, and the clock arithmetic stays far from chrono's limits).
const MAX_STEP: TimeDelta = TimeDelta::days(366);

/// A step as whole milliseconds, from [`MIN_SOCIAL_STEP`] to a year.
fn step_delta(step: Duration) -> TimeDelta {
    let step = step.max(MIN_SOCIAL_STEP);
    i64::try_from(step.as_millis())
        .ok()
        .and_then(TimeDelta::try_milliseconds)
        .map_or(MAX_STEP, |step| step.min(MAX_STEP))
}

/// The current time at millisecond precision (every stamp is, so ids and text agree).
fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or(now)
}

/// How far the thread has got.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    /// The revealed posts of the thread, in order: when, and what they say.
    pub posts: Vec<(DateTime<Utc>, String)>,
    /// When the next post is due (None once all are visible).
    pub next: Option<DateTime<Utc>>,
}

/// A request-window budget (X's 15-minute windows, Mastodon's 5-minute ones).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    limit: u64,
    length: TimeDelta,
    started: Option<DateTime<Utc>>,
    used: u64,
}

/// What one request's accounting says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// The window's request limit.
    pub limit: u64,
    /// Requests left in the window after this one.
    pub remaining: u64,
    /// When the window resets.
    pub reset: DateTime<Utc>,
    /// Whether this request went over the limit.
    pub exceeded: bool,
}

impl Window {
    const fn new(limit: u64, length: TimeDelta) -> Self {
        Window {
            limit,
            length,
            started: None,
            used: 0,
        }
    }

    /// Counts one request at `now`.
    fn take(&mut self, now: DateTime<Utc>) -> Budget {
        let started = match self.started {
            Some(started) if now < started + self.length => started,
            _ => {
                self.started = Some(now);
                self.used = 0;
                now
            }
        };
        self.used = self.used.saturating_add(1);
        Budget {
            limit: self.limit,
            remaining: self.limit.saturating_sub(self.used),
            reset: started + self.length,
            exceeded: self.used > self.limit,
        }
    }
}

/// Which budget a request draws on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limited {
    /// `GET /2/users/by/username/:username`.
    XUserLookup,
    /// `GET /2/users/:id/tweets`.
    XTimeline,
    /// Any Mastodon API call.
    Mastodon,
}

/// The social upstreams' shared state: the timeline and the networks' request budgets.
#[derive(Debug)]
pub(crate) struct SocialState {
    created: DateTime<Utc>,
    timeline: Mutex<Timeline>,
    x_users: Mutex<Window>,
    x_timeline: Mutex<Window>,
    mastodon: Mutex<Window>,
}

impl SocialState {
    pub(crate) fn new(social: SocialSim) -> Self {
        let now = now_ms();
        SocialState {
            created: now,
            timeline: Mutex::new(Timeline::new(social, now)),
            // The limits X documents (user lookup) and X's recorded headers show (timeline).
            x_users: Mutex::new(Window::new(300, TimeDelta::minutes(15))),
            x_timeline: Mutex::new(Window::new(1500, TimeDelta::minutes(15))),
            mastodon: Mutex::new(Window::new(300, TimeDelta::minutes(5))),
        }
    }

    /// The scenario being played.
    pub(crate) fn scenario(&self) -> SocialScenario {
        lock(&self.timeline).scenario
    }

    /// The time between two posts.
    pub(crate) fn step(&self) -> Duration {
        lock(&self.timeline)
            .step
            .to_std()
            .unwrap_or(DEFAULT_SOCIAL_STEP)
    }

    /// When the current timeline started.
    pub(crate) fn started(&self) -> DateTime<Utc> {
        lock(&self.timeline).started
    }

    /// Restarts the timeline with `social`; returns the previous scenario.
    pub(crate) fn restart(&self, social: SocialSim) -> SocialScenario {
        let mut timeline = lock(&self.timeline);
        let previous = timeline.scenario;
        *timeline = Timeline::new(social, now_ms().max(self.created));
        previous
    }

    /// Reveals the next post of the thread now; returns its index, or None when every post is
    /// already visible.
    pub(crate) fn advance(&self) -> Option<usize> {
        let now = now_ms();
        let mut timeline = lock(&self.timeline);
        timeline.catch_up(now);
        if !timeline.unfinished() {
            return None;
        }
        // A strictly later stamp than the previous post, so every post has its own time.
        let at = match timeline.revealed.last() {
            Some(last) if *last >= now => *last + TimeDelta::milliseconds(1),
            _ => now,
        };
        timeline.revealed.push(at);
        Some(timeline.revealed.len() - 1)
    }

    /// The revealed posts of the thread and when the next one is due.
    pub(crate) fn progress(&self) -> Progress {
        let mut timeline = lock(&self.timeline);
        timeline.catch_up(now_ms());
        let texts = thread(timeline.scenario);
        let posts = timeline
            .revealed
            .iter()
            .zip(texts)
            .map(|(at, text)| (*at, fill(text, *at)))
            .collect();
        Progress {
            posts,
            next: timeline.next_due(),
        }
    }

    /// The account as of now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let (scenario, revealed) = {
            let mut timeline = lock(&self.timeline);
            timeline.catch_up(now_ms());
            (timeline.scenario, timeline.revealed.clone())
        };
        let mut posts: Vec<Post> = Vec::new();
        let history_start = self.created - HISTORY_AGE;
        for (i, (minutes, text)) in HISTORY.iter().enumerate() {
            let at = history_start + TimeDelta::minutes(*minutes);
            posts.push(Post {
                seq: posts.len() as u64,
                at,
                text: fill(text, at),
                parent: i.checked_sub(1),
                root: 0,
            });
        }
        let root = posts.len();
        for (k, (at, text)) in revealed.iter().zip(thread(scenario)).enumerate() {
            let index = posts.len();
            posts.push(Post {
                seq: index as u64,
                at: *at,
                text: fill(text, *at),
                parent: (k > 0).then(|| index - 1),
                root,
            });
        }
        Snapshot {
            created: self.created,
            posts,
        }
    }

    /// Counts one request against `which` budget.
    pub(crate) fn take(&self, which: Limited) -> Budget {
        let window = match which {
            Limited::XUserLookup => &self.x_users,
            Limited::XTimeline => &self.x_timeline,
            Limited::Mastodon => &self.mastodon,
        };
        lock(window).take(Utc::now())
    }
}

/// `text` with `{eta}` replaced by the full hour two to three hours after `at`.
fn fill(text: &str, at: DateTime<Utc>) -> String {
    if !text.contains("{eta}") {
        return text.to_string();
    }
    let later = at + TimeDelta::hours(3);
    let eta = later.duration_trunc(TimeDelta::hours(1)).unwrap_or(later);
    text.replace("{eta}", &eta.format("%H:%M UTC").to_string())
}

// ---------------------------------------------------------------------------------------------
// Shared helpers: ids, time formats, links, queries.

/// Milliseconds since the Unix epoch (0 before it).
fn millis(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis()).unwrap_or(0)
}

/// The request's query, decoded, in order.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// The first value of `name` in `pairs`.
pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// `http://<the request's Host>`.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    format!("http://{}", super::graph::host(headers))
}

/// A value quoted for an error message: control characters dropped, at most 80 characters.
pub(crate) fn shown(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// RFC 3339 with milliseconds and `Z` (`2026-08-01T13:52:34.108Z`).
pub(crate) fn iso_ms(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A deterministic 64-bit mix (splitmix64), for ids and hashes that must not change between
/// requests.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` characters from `alphabet`, derived from `seed`.
pub(crate) fn pseudo_chars(seed: u64, alphabet: &[u8], len: usize) -> String {
    let mut state = seed;
    (0..len)
        .map(|i| {
            state = mix(state ^ i as u64);
            let pick = usize::try_from(state % alphabet.len() as u64).unwrap_or(0);
            char::from(alphabet[pick])
        })
        .collect()
}

/// A seed from a post's time and sequence and a salt naming what it is for.
pub(crate) fn seed(at: DateTime<Utc>, seq: u64, salt: u64) -> u64 {
    mix(millis(at) ^ mix(seq ^ mix(salt)))
}

/// One piece of a post's text: plain, or a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// Splits `text` into plain text and `http(s)://` links (a link ends at whitespace; trailing
/// punctuation stays text).
pub(crate) fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let (before, from) = rest.split_at(start);
        let end = from.find(char::is_whitespace).unwrap_or(from.len());
        let link = from[..end].trim_end_matches(['.', ',', ')', ';', ':', '!', '?']);
        if !before.is_empty() {
            out.push(Piece::Text(before));
        }
        out.push(Piece::Link(link));
        rest = &from[link.len()..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Escapes text for HTML (Mastodon's sanitized content, the feed's `type="html"` content).
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_links_and_keep_trailing_punctuation() {
        assert_eq!(
            pieces("see https://a.example/x. Then"),
            vec![
                Piece::Text("see "),
                Piece::Link("https://a.example/x"),
                Piece::Text(". Then"),
            ]
        );
        assert_eq!(pieces("no links"), vec![Piece::Text("no links")]);
    }

    #[test]
    fn a_timeline_reveals_on_schedule_and_on_advance() {
        let start = now_ms();
        let mut timeline = Timeline::new(
            SocialSim::new(SocialScenario::Incident).with_step(Duration::from_secs(30)),
            start,
        );
        timeline.catch_up(start);
        assert_eq!(timeline.revealed, vec![start]);
        timeline.catch_up(start + TimeDelta::seconds(61));
        assert_eq!(timeline.revealed.len(), 3);
        assert_eq!(timeline.revealed[2], start + TimeDelta::seconds(60));
        timeline.catch_up(start + TimeDelta::days(1));
        assert_eq!(timeline.revealed.len(), INCIDENT.len());
        assert_eq!(timeline.next_due(), None);
    }

    #[test]
    fn an_absurd_step_is_a_year() {
        assert_eq!(step_delta(Duration::MAX), MAX_STEP);
        assert_eq!(step_delta(Duration::ZERO), TimeDelta::milliseconds(10));
        let mut timeline = Timeline::new(
            SocialSim::new(SocialScenario::Incident).with_step(Duration::MAX),
            now_ms(),
        );
        timeline.catch_up(now_ms());
        assert_eq!(timeline.revealed.len(), 1);
    }

    #[test]
    fn the_eta_is_a_full_hour_in_the_future() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T14:25:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(fill("by {eta}.", at), "by 17:00 UTC.");
    }

    #[test]
    fn windows_count_down_and_reset() {
        let mut window = Window::new(2, TimeDelta::minutes(15));
        let now = now_ms();
        let first = window.take(now);
        assert_eq!((first.remaining, first.exceeded), (1, false));
        assert_eq!(first.reset, now + TimeDelta::minutes(15));
        assert!(!window.take(now).exceeded);
        assert!(window.take(now).exceeded);
        let later = window.take(now + TimeDelta::minutes(16));
        assert_eq!((later.remaining, later.exceeded), (1, false));
    }
}
