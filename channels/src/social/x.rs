//! The `x` channel: an account's posts on X (API v2), by default @MSFT365Status, the only
//! official social status account Microsoft names.
//!
//! Reading X costs money (pay per post returned, credits bought up front), so the channel is
//! built to ask as little as possible:
//!
//! - the account's numeric id is looked up once (`GET /2/users/by/username/{name}`) and cached;
//! - the timeline (`GET /2/users/{id}/tweets`) is asked only for what is new: `since_id` is the
//!   newest post id of the last successful probe (ids compared as numbers), and the first probe
//!   asks only for posts within [`SocialSettings::history`] (`start_time`), since older ones
//!   would be pruned at once;
//! - `x-rate-limit-remaining: 0` with a future `x-rate-limit-reset` (or a rate-limit 429) holds
//!   that endpoint: probes before the reset fail as `throttled` without sending anything.
//!
//! Replies are not excluded: @MSFT365Status posts follow-ups as replies to its first post, and
//! [`thread`](super::thread) groups them by `conversation_id` so a follow-up without an incident
//! id still belongs to its incident. The posts are remembered in a [`PostLog`] across probes and
//! turned into an observation by [`observation`].
//!
//! X's errors are told apart by their problem `type`/`title`, not by status alone: a 429 is
//! either a rate limit (wait for the reset) or `UsageCapExceeded` (monthly cap: class
//! `credits`), and a 402 `CreditsDepleted` means no credits are left. The bearer token goes only
//! into the `Authorization` header, never into a message, a log line or `Debug`.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use super::common::{
    self, Hold, RateLimit, config_error, detail, endpoint, fault, page_what, rate_limit,
};
use super::observe::{PostLog, SocialSettings};
use super::thread::Post;
use crate::error::{ProbeError, humanize};
use crate::http::{Expect, Fetcher, base_url, classify_status, gate, retry_after};
use crate::model::{ChannelKind, Fault, Observation};
use crate::text::shorten;
use crate::{BoxFuture, Channel};

#[cfg(test)]
#[path = "x_probe_tests.rs"]
mod probe_tests;
#[cfg(test)]
#[path = "x_tests.rs"]
mod tests;

/// X API v2's root.
pub const DEFAULT_BASE_URL: &str = "https://api.x.com";
/// Microsoft 365's status account, the one Microsoft's docs point to.
pub const DEFAULT_USERNAME: &str = "MSFT365Status";
/// Posts per timeline page: X's maximum, so a probe needs as few requests as possible (billing
/// is per post returned, not per request).
pub const DEFAULT_MAX_RESULTS: u8 = 100;
/// Timeline pages one probe may follow through `next_token`.
pub const DEFAULT_MAX_PAGES: u32 = 5;
/// The post fields asked for: the time, and how a post hangs in its thread.
pub const TWEET_FIELDS: &str = "created_at,conversation_id,referenced_tweets,in_reply_to_user_id";

/// X ignores `start_time` before this (the docs' floor for timeline queries).
const EARLIEST_START: i64 = 1_289_001_601; // 2010-11-06T00:00:01Z

/// Settings of one X channel.
#[derive(Debug, Clone)]
pub struct XConfig {
    /// The API root, default [`DEFAULT_BASE_URL`] (a simulator or a proxy in tests).
    pub base_url: String,
    /// The account to read, without `@`, default [`DEFAULT_USERNAME`].
    pub username: String,
    /// An app-only bearer token from the X developer console (the app must be attached to a
    /// Project). `Debug` shows it redacted.
    pub bearer_token: SecretString,
    /// Posts per page, 5 to 100 (X's range), default [`DEFAULT_MAX_RESULTS`].
    pub max_results: u8,
    /// Pages one probe may follow, at least 1, default [`DEFAULT_MAX_PAGES`].
    pub max_pages: u32,
    /// How posts become an observation (history, quiet time, how many posts are kept).
    pub social: SocialSettings,
}

impl XConfig {
    /// The defaults (@MSFT365Status on api.x.com) with the one setting that has none: the token.
    pub fn new(bearer_token: SecretString) -> Self {
        XConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            username: DEFAULT_USERNAME.to_string(),
            bearer_token,
            max_results: DEFAULT_MAX_RESULTS,
            max_pages: DEFAULT_MAX_PAGES,
            social: SocialSettings::default(),
        }
    }
}

/// The two endpoints, each with its own rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Lookup,
    Timeline,
}

/// When each endpoint may be asked again (an `x-rate-limit-reset` we were given).
#[derive(Debug)]
struct Holds {
    lookup: Hold,
    timeline: Hold,
}

impl Holds {
    fn new() -> Self {
        Holds {
            lookup: Hold::new("X"),
            timeline: Hold::new("X"),
        }
    }

    fn of(&self, endpoint: Endpoint) -> &Hold {
        match endpoint {
            Endpoint::Lookup => &self.lookup,
            Endpoint::Timeline => &self.timeline,
        }
    }
}

/// What the channel remembers between probes.
#[derive(Debug, Default)]
struct State {
    /// The account's numeric id, once looked up.
    user_id: Option<String>,
    /// The newest post id seen by a successful probe: the next probe's `since_id`.
    since_id: Option<u64>,
    /// The posts seen so far.
    log: PostLog,
}

/// A configured X channel.
pub struct X {
    id: String,
    base: reqwest::Url,
    api_root: String,
    username: String,
    bearer_token: SecretString,
    max_results: u8,
    max_pages: u32,
    social: SocialSettings,
    fetcher: Fetcher,
    /// Held across a probe, so concurrent probes do not race on `since_id` or the lookup.
    state: tokio::sync::Mutex<State>,
    holds: Holds,
}

impl fmt::Debug for X {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X")
            .field("id", &self.id)
            .field("api_root", &self.api_root)
            .field("username", &self.username)
            .field("bearer_token", &"[REDACTED]")
            .field("max_results", &self.max_results)
            .field("max_pages", &self.max_pages)
            .field("social", &self.social)
            .finish_non_exhaustive()
    }
}

impl X {
    /// Builds the channel, checking the settings so a typo fails at startup with a message that
    /// names the setting (and never the token).
    pub fn new(id: String, config: XConfig, fetcher: Fetcher) -> Result<X, ProbeError> {
        let base = base_url("base_url", &config.base_url)?;
        let username = config.username.trim();
        if username.is_empty()
            || username.len() > 15
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(config_error(
                "x",
                format!(
                    "username {:?} must be an X handle without @ (1 to 15 letters, digits or _)",
                    config.username
                ),
            ));
        }
        if !(5..=100).contains(&config.max_results) {
            return Err(config_error(
                "x",
                format!(
                    "max_results {} must be between 5 and 100",
                    config.max_results
                ),
            ));
        }
        if config.max_pages == 0 {
            return Err(config_error("x", "max_pages must be at least 1"));
        }
        let token = config.bearer_token.expose_secret().trim();
        if token.is_empty() {
            return Err(config_error("x", "bearer_token is empty"));
        }
        if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(config_error(
                "x",
                "bearer_token holds characters that cannot be sent in a header",
            ));
        }
        Ok(X {
            id,
            api_root: base.as_str().trim_end_matches('/').to_string(),
            base,
            username: username.to_string(),
            bearer_token: SecretString::from(token),
            max_results: config.max_results,
            max_pages: config.max_pages,
            social: config.social,
            fetcher,
            state: tokio::sync::Mutex::new(State::default()),
            holds: Holds::new(),
        })
    }

    /// The account this channel reads.
    pub fn username(&self) -> &str {
        &self.username
    }

    async fn run(&self) -> Result<Observation, ProbeError> {
        let mut state = self.state.lock().await;
        let user_id = match &state.user_id {
            Some(id) => id.clone(),
            None => {
                let id = self.lookup().await?;
                tracing::info!(
                    channel = %self.id,
                    username = %self.username,
                    user_id = %id,
                    "x: account resolved"
                );
                state.user_id = Some(id.clone());
                id
            }
        };
        let fetched = match self
            .timeline(&user_id, state.since_id, crate::clock::now())
            .await
        {
            Ok(fetched) => fetched,
            Err(error) => {
                // A timeline that says the account is gone: look it up afresh next time.
                if matches!(error, ProbeError::Config { .. }) {
                    state.user_id = None;
                }
                return Err(error);
            }
        };
        state.since_id = state.since_id.max(fetched.newest);
        state.log.forget(&fetched.superseded);
        Ok(common::remember(
            &self.id,
            &mut state.log,
            fetched.posts,
            &self.social,
            fetched.faults,
        ))
    }

    /// Resolves the username to the account's numeric id.
    async fn lookup(&self) -> Result<String, ProbeError> {
        let url = endpoint(
            &self.base,
            &["2", "users", "by", "username", &self.username],
            &[],
        )?;
        let what = format!("GET /2/users/by/username/{}", self.username);
        let body = self.request(Endpoint::Lookup, &url, &what).await?;
        parse_user(&body, &what, &self.username, self.token())
    }

    /// Reads the timeline since `since_id`, page by page.
    async fn timeline(
        &self,
        user_id: &str,
        since_id: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Fetched, ProbeError> {
        let path = format!("/2/users/{user_id}/tweets");
        let mut fetched = Fetched::default();
        let mut seen_tokens: HashSet<String> = HashSet::new();
        let mut pagination: Option<String> = None;
        let mut raw_posts = 0usize;
        let mut skipped: Vec<String> = Vec::new();
        for page in 1..=self.max_pages {
            let what = page_what(&path, page);
            let url = self.timeline_url(user_id, since_id, now, pagination.as_deref())?;
            let body = self.request(Endpoint::Timeline, &url, &what).await?;
            let parsed = parse_timeline(&body, &what, self.token())?;
            raw_posts += parsed.raw_count;
            skipped.extend(parsed.skipped);
            for id in parsed.newest_id.into_iter().chain(parsed.ids) {
                fetched.newest = fetched.newest.max(Some(id));
            }
            fetched.posts.extend(parsed.posts);
            fetched.superseded.extend(parsed.superseded);
            if !parsed.partial_errors.is_empty() {
                fetched.faults.push(fault(partial_errors_error(
                    &what,
                    &parsed.partial_errors,
                    self.token(),
                )));
            }
            let Some(next) = parsed.next_token else {
                pagination = None;
                break;
            };
            if !seen_tokens.insert(next.clone()) {
                return Err(ProbeError::drift(
                    what,
                    "meta.next_token repeats a page already fetched (a paging loop)",
                ));
            }
            pagination = Some(next);
        }
        // Pages left unread: expected on a first probe (it asks only for recent history anyway);
        // after that, new posts older than the pages read are missed.
        if pagination.is_some() && since_id.is_some() {
            fetched.faults.push(fault(ProbeError::Config {
                message: format!(
                    "GET {path}: more than {} pages of new posts since the last probe; the \
                     older ones were not read (raise max_pages or probe more often)",
                    self.max_pages
                ),
            }));
        }
        if !skipped.is_empty() {
            let first = &skipped[0];
            if fetched.posts.is_empty() {
                let mut detail = format!("none of the {raw_posts} posts is usable: {first}");
                if first.contains("created_at") {
                    detail.push_str(
                        " (X may no longer honour tweet.fields; the 2026 spec renamed it \
                         post.fields)",
                    );
                }
                return Err(ProbeError::drift(format!("GET {path}"), detail));
            }
            fetched.faults.push(fault(ProbeError::drift(
                format!("GET {path}"),
                format!("{} of {raw_posts} posts skipped: {first}", skipped.len()),
            )));
        }
        Ok(fetched)
    }

    fn timeline_url(
        &self,
        user_id: &str,
        since_id: Option<u64>,
        now: DateTime<Utc>,
        pagination: Option<&str>,
    ) -> Result<reqwest::Url, ProbeError> {
        let max_results = self.max_results.to_string();
        // The first probe asks only for the history window; later ones for what is new.
        let (key, from) = match since_id {
            Some(since) => ("since_id", Some(since.to_string())),
            None => ("start_time", first_start_time(now, &self.social)),
        };
        let mut query = vec![
            ("max_results", max_results.as_str()),
            ("tweet.fields", TWEET_FIELDS),
        ];
        query.extend(from.as_deref().map(|from| (key, from)));
        query.extend(pagination.map(|token| ("pagination_token", token)));
        endpoint(&self.base, &["2", "users", user_id, "tweets"], &query)
    }

    fn token(&self) -> &str {
        self.bearer_token.expose_secret()
    }

    /// One GET: the rate-limit hold first, then the request, then the limits it reports, then
    /// the status and the content-type gate. Returns a success body.
    async fn request(
        &self,
        endpoint: Endpoint,
        url: &reqwest::Url,
        what: &str,
    ) -> Result<Vec<u8>, ProbeError> {
        self.check_hold(endpoint, what, Instant::now())?;
        let mut headers = HeaderMap::new();
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {}", self.token())).map_err(|_| {
                config_error(
                    "x",
                    "bearer_token holds characters that cannot be sent in a header",
                )
            })?;
        bearer.set_sensitive(true);
        headers.insert(AUTHORIZATION, bearer);
        let raw = self
            .fetcher
            .get_raw(url.as_str(), what, Expect::Json, headers)
            .await?;
        let now = crate::clock::now();
        let hold = self.holds.of(endpoint);
        if let Some(wait) = spent_limit(&raw.headers, now) {
            hold.hold_for(wait, "rate limit spent");
        }
        if !(200..=299).contains(&raw.status) {
            let error = read_error(raw.status, &raw.headers, &raw.body, what, now, self.token());
            if let ProbeError::Throttled {
                retry_after: Some(wait),
                ..
            } = &error
            {
                hold.hold_for(*wait, "rate limit reached");
            }
            return Err(error);
        }
        gate(what, Expect::Json, raw.media_type.as_deref(), &raw.body)?;
        Ok(raw.body)
    }

    /// Refuses to send while a rate-limit window of `endpoint` is spent (as seen at `now`).
    fn check_hold(&self, endpoint: Endpoint, what: &str, now: Instant) -> Result<(), ProbeError> {
        match self.holds.of(endpoint).held_at(now) {
            Some((wait, _)) => Err(ProbeError::Throttled {
                message: format!(
                    "{what}: X rate limit spent; no request until it resets in {}",
                    humanize(wait.max(Duration::from_secs(1)))
                ),
                retry_after: Some(wait),
            }),
            None => Ok(()),
        }
    }
}

impl Channel for X {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::X
    }

    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>> {
        Box::pin(self.run())
    }
}

/// What one probe's timeline pages gave.
#[derive(Debug, Default)]
struct Fetched {
    posts: Vec<Post>,
    /// Ids of earlier versions of edited posts (X gives an edit a new id).
    superseded: Vec<String>,
    /// The newest id seen (meta or posts), even of posts that were skipped.
    newest: Option<u64>,
    faults: Vec<Fault>,
}

/// `start_time` of a first probe: the start of the history window, so the first probe pays only
/// for posts that would be kept. `None` when the window reaches back past X's floor.
fn first_start_time(now: DateTime<Utc>, social: &SocialSettings) -> Option<String> {
    let start = now.checked_sub_signed(TimeDelta::from_std(social.history).ok()?)?;
    (start.timestamp() >= EARLIEST_START).then(|| start.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The `x-rate-limit-*` counters of an answer. X's reset is a whole Unix second and its waits
/// are counted from the current whole second, so a wait reads as the round number X set.
fn limits(headers: &HeaderMap, now: DateTime<Utc>) -> RateLimit {
    rate_limit(headers, now.trunc_subsecs(0))
}

/// How long to wait when an answer says its window is spent (`x-rate-limit-remaining: 0` and a
/// future `x-rate-limit-reset`).
fn spent_limit(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    limits(headers, now).spent()
}

// ---------------------------------------------------------------------------------------------
// X's problem JSON and error statuses
// ---------------------------------------------------------------------------------------------

/// One X problem (v2 `{type, title, detail, reason}`) or v1.1-style error (`{code, message}`),
/// read leniently: every field may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Problem {
    /// The `type` URI's last part after `/problems/` (`credits`, `usage-capped`), or the whole
    /// `type` (`about:blank`). The host varies (api.twitter.com, api.x.com), so only this is
    /// compared.
    kind: String,
    title: String,
    detail: String,
    reason: String,
    /// A v1.1-style numeric code (88 = rate limit).
    code: Option<i64>,
}

impl Problem {
    fn from_value(value: &Value) -> Problem {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let kind = text("type");
        let kind = match kind.rsplit_once("/problems/") {
            Some((_, suffix)) => suffix.trim_end_matches('/').to_string(),
            None => kind,
        };
        let detail = match text("detail") {
            d if d.is_empty() => text("message"),
            d => d,
        };
        Problem {
            kind,
            title: text("title"),
            detail,
            reason: text("reason"),
            code: value.get("code").and_then(Value::as_i64),
        }
    }

    fn is_empty(&self) -> bool {
        self.kind.is_empty()
            && self.title.is_empty()
            && self.detail.is_empty()
            && self.code.is_none()
    }

    /// "title: detail", as short as the two allow.
    fn summary(&self, token: &str) -> String {
        let text = match (self.title.as_str(), self.detail.as_str()) {
            ("", "") => self.kind.clone(),
            (t, "") => t.to_string(),
            ("", d) => d.to_string(),
            (t, d) if d.eq_ignore_ascii_case(t) => t.to_string(),
            (t, d) => format!("{t}: {d}"),
        };
        detail(&text, &[token])
    }

    fn is_credits(&self) -> bool {
        self.kind == "credits" || self.title == "CreditsDepleted"
    }

    fn is_usage_cap(&self) -> bool {
        self.kind == "usage-capped" || self.title == "UsageCapExceeded"
    }

    fn is_rate_limit(&self) -> bool {
        self.kind == "rate-limit-exceeded"
            || self.code == Some(88)
            || self.title.eq_ignore_ascii_case("Too Many Requests")
            || self.title == "RateLimitExceeded"
    }
}

/// The problems of an answer: the top-level problem when it has one, else the `errors[]`.
fn problems(value: &Value) -> Vec<Problem> {
    let top = Problem::from_value(value);
    if !top.is_empty() {
        return vec![top];
    }
    value
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().map(Problem::from_value).collect())
        .unwrap_or_default()
}

/// Classifies a non-success answer of X by its problem body first and its status second.
fn read_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
    token: &str,
) -> ProbeError {
    let problem = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| problems(&v).into_iter().next())
        .unwrap_or_default();
    let summary = problem.summary(token);
    if problem.is_credits() || status == 402 {
        return ProbeError::Credits {
            message: format!(
                "{what}: HTTP {status} CreditsDepleted: the X account has no credits; polling \
                 stops until credits are added in the X developer console"
            ),
        };
    }
    if problem.is_usage_cap() {
        let detail = if problem.detail.is_empty() {
            "usage cap exceeded".to_string()
        } else {
            detail(&problem.detail, &[token])
        };
        return ProbeError::Credits {
            message: format!(
                "{what}: HTTP {status} UsageCapExceeded ({detail}): the X usage cap is reached; \
                 retrying will not help until the cap resets or is raised"
            ),
        };
    }
    if status == 429 || problem.is_rate_limit() {
        let retry_after = limits(headers, now)
            .reset_in
            .or_else(|| retry_after(headers, now));
        let when = match retry_after {
            Some(wait) => format!("resets in {}", humanize(wait.max(Duration::from_secs(1)))),
            None => "no reset time given".to_string(),
        };
        return ProbeError::Throttled {
            message: format!("{what}: HTTP {status}: X rate limit reached; {when}"),
            retry_after,
        };
    }
    if status == 401 {
        return ProbeError::Auth {
            message: format!(
                "{what}: HTTP 401: bearer token refused (check bearer_token: an app-only token \
                 from the X developer console)"
            ),
        };
    }
    if problem.reason == "client-not-enrolled" || problem.kind == "client-forbidden" {
        return ProbeError::Auth {
            message: format!(
                "{what}: HTTP {status} {}: the X app must be attached to a Project in the \
                 developer console to use API v2",
                if problem.reason.is_empty() {
                    "client-forbidden"
                } else {
                    problem.reason.as_str()
                }
            ),
        };
    }
    if status == 403 {
        return ProbeError::Auth {
            message: format!("{what}: HTTP 403: X refused the request ({summary})"),
        };
    }
    if status == 400 || problem.kind == "invalid-request" {
        return ProbeError::Http {
            what: what.to_string(),
            status,
            hint: Some(format!("X rejected the request: {summary}")),
            retry_after: None,
        };
    }
    let error = classify_status(status, headers, what, now).unwrap_or_else(|| ProbeError::Http {
        what: what.to_string(),
        status,
        hint: None,
        retry_after: None,
    });
    if problem.is_empty() {
        error
    } else {
        error.with_note(&summary)
    }
}

/// A success answer that carries only `errors[]`: the error it stands for.
fn errors_only(problems: &[Problem], what: &str, account: &str, token: &str) -> ProbeError {
    let first = problems.first().cloned().unwrap_or_default();
    let summary = first.summary(token);
    if first.kind == "resource-not-found" || first.detail.contains("suspended") {
        return ProbeError::Config {
            message: format!("{what}: no X account {account} ({summary})"),
        };
    }
    if first.kind == "not-authorized-for-resource" {
        return ProbeError::Auth {
            message: format!("{what}: X will not show {account}'s posts ({summary})"),
        };
    }
    ProbeError::drift(what, format!("only errors, no data: {summary}"))
}

fn partial_errors_error(what: &str, problems: &[Problem], token: &str) -> ProbeError {
    let first = problems.first().cloned().unwrap_or_default();
    ProbeError::drift(
        what,
        format!(
            "X reported {} partial error(s) next to the data: {}",
            problems.len(),
            first.summary(token)
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Success bodies
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct UserAnswer {
    data: Option<UserData>,
    #[serde(default)]
    errors: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct UserData {
    id: String,
}

/// Reads `GET /2/users/by/username/{name}`: the account's numeric id.
fn parse_user(body: &[u8], what: &str, username: &str, token: &str) -> Result<String, ProbeError> {
    let answer: UserAnswer = serde_json::from_slice(body)
        .map_err(|e| ProbeError::drift(what, format!("not the user object X sends ({e})")))?;
    let account = format!("@{username}");
    let Some(data) = answer.data else {
        let problems: Vec<Problem> = answer.errors.iter().map(Problem::from_value).collect();
        if problems.is_empty() {
            return Err(ProbeError::drift(what, "neither data nor errors"));
        }
        return Err(errors_only(&problems, what, &account, token));
    };
    match data.id.trim().parse::<u64>() {
        Ok(id) => Ok(id.to_string()),
        Err(_) => Err(ProbeError::drift(
            what,
            format!("user id {:?} is not numeric", shorten(&data.id, 40)),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct TimelineAnswer {
    data: Option<Vec<Value>>,
    #[serde(default)]
    errors: Vec<Value>,
    meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(default)]
    result_count: Option<u64>,
    #[serde(default)]
    newest_id: Option<String>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawPost {
    id: String,
    text: String,
    created_at: Option<String>,
    conversation_id: Option<String>,
    #[serde(default)]
    referenced_tweets: Vec<Reference>,
    /// Every version's id, oldest first, this one last.
    #[serde(default)]
    edit_history_tweet_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// One timeline page, read.
#[derive(Debug, Default)]
struct TimelinePage {
    /// The usable posts.
    posts: Vec<Post>,
    /// How many posts the page held, usable or not.
    raw_count: usize,
    /// Why each unusable post was skipped.
    skipped: Vec<String>,
    /// The numeric ids of every post on the page whose id parsed, usable or not.
    ids: Vec<u64>,
    newest_id: Option<u64>,
    next_token: Option<String>,
    partial_errors: Vec<Problem>,
    /// Ids of earlier versions of the page's edited posts.
    superseded: Vec<String>,
}

/// Reads one `GET /2/users/{id}/tweets` page. The envelope must be X's (`meta` present, `data`
/// an array when present); a post that lacks a usable id, text or time is skipped with a reason
/// rather than failing the page.
fn parse_timeline(body: &[u8], what: &str, token: &str) -> Result<TimelinePage, ProbeError> {
    let answer: TimelineAnswer = serde_json::from_slice(body)
        .map_err(|e| ProbeError::drift(what, format!("not the timeline object X sends ({e})")))?;
    let problems: Vec<Problem> = answer.errors.iter().map(Problem::from_value).collect();
    if answer.data.is_none() && !problems.is_empty() {
        return Err(errors_only(&problems, what, "with this id", token));
    }
    let Some(meta) = answer.meta else {
        return Err(ProbeError::drift(what, "no meta object"));
    };
    let number = |field: &str, value: &str| {
        value.trim().parse::<u64>().map_err(|_| {
            ProbeError::drift(
                what,
                format!("meta.{field} {:?} is not numeric", shorten(value, 40)),
            )
        })
    };
    let newest_id = meta
        .newest_id
        .as_deref()
        .map(|v| number("newest_id", v))
        .transpose()?;
    let data = answer.data.unwrap_or_default();
    if data.is_empty() && meta.result_count.is_some_and(|n| n > 0) {
        return Err(ProbeError::drift(
            what,
            "meta.result_count says posts, but there is no data",
        ));
    }
    let mut page = TimelinePage {
        raw_count: data.len(),
        newest_id,
        next_token: meta.next_token.filter(|t| !t.trim().is_empty()),
        partial_errors: problems,
        ..TimelinePage::default()
    };
    for item in data {
        match read_post(item) {
            Ok((post, earlier)) => {
                if let Ok(id) = post.id.parse() {
                    page.ids.push(id);
                }
                page.posts.push(post);
                page.superseded.extend(earlier);
            }
            Err((id, why)) => {
                page.ids.extend(id);
                page.skipped.push(why);
            }
        }
    }
    Ok(page)
}

/// One post of the timeline as a [`Post`], or why it is unusable (with its id if that parsed).
fn read_post(item: Value) -> Result<(Post, Vec<String>), (Option<u64>, String)> {
    let raw: RawPost = serde_json::from_value(item)
        .map_err(|e| (None, format!("a post of an unexpected shape ({e})")))?;
    let id: u64 = raw.id.trim().parse().map_err(|_| {
        (
            None,
            format!("post id {:?} is not numeric", shorten(&raw.id, 40)),
        )
    })?;
    let created_at = raw
        .created_at
        .as_deref()
        .ok_or_else(|| (Some(id), format!("post {id} has no created_at")))?;
    let created_at = DateTime::parse_from_rfc3339(created_at)
        .map_err(|_| {
            (
                Some(id),
                format!(
                    "post {id}: created_at {:?} is not a time",
                    shorten(created_at, 40)
                ),
            )
        })?
        .with_timezone(&Utc);
    let reference = |field: &str, value: &str| {
        value
            .trim()
            .parse::<u64>()
            .map(|n| n.to_string())
            .map_err(|_| (Some(id), format!("post {id}: {field} is not numeric")))
    };
    let root = raw
        .conversation_id
        .as_deref()
        .map(|c| reference("conversation_id", c))
        .transpose()?;
    let reply_to = raw
        .referenced_tweets
        .iter()
        .find(|r| r.kind == "replied_to")
        .map(|r| reference("referenced_tweets id", &r.id))
        .transpose()?;
    let id = id.to_string();
    let earlier: Vec<String> = raw
        .edit_history_tweet_ids
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| *e != id)
        .collect();
    let post = Post {
        id,
        text: unescape(&raw.text).into(),
        created_at,
        reply_to,
        root,
    };
    Ok((post, earlier))
}

/// X escapes `&`, `<` and `>` in post text (`&amp;`); the rest is plain text.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
