//! What the HTTP social channels (X, Mastodon, Bluesky, feeds) share once they talk to a server:
//! the local rate-limit hold, reading rate-limit counters and error envelopes, `Link` paging,
//! building endpoint URLs, comparing post ids, reading page items, echoing upstream words and
//! turning half-usable pages into faults and a probe's posts into an observation.
//!
//! These are written once here so the channels agree on what a hold, a cursor or a skipped post
//! means; the channel modules keep only their API's shapes and its error vocabulary.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::observe::{PostLog, SocialSettings, observation};
use super::thread::Post;
use crate::error::{ProbeError, humanize};
use crate::http::{Expect, Fetcher, RawResponse, classify_status, gate};
use crate::model::{Fault, Observation};
use crate::text::{MAX_TEXT, html_to_text, shorten};

/// The longest wait we accept from a rate-limit header; anything longer is nonsense (a clock
/// far off, a misread header) and obeying it would silence the channel for days.
pub const MAX_HOLD: Duration = Duration::from_secs(24 * 3600);

/// A local "no request before" mark, so a channel that was told to slow down (a 429, or a
/// rate-limit counter at zero) stops asking until the upstream's window resets, instead of
/// earning more 429s that may get the address blocked.
#[derive(Debug)]
pub struct Hold {
    upstream: String,
    until: Mutex<Option<(Instant, String)>>,
}

impl Hold {
    /// A hold with no wait running; `upstream` names the server in messages.
    pub fn new(upstream: impl Into<String>) -> Self {
        Hold {
            upstream: upstream.into(),
            until: Mutex::new(None),
        }
    }

    /// Refuses, as `Throttled` and without sending anything, while a wait is running.
    pub fn check(&self) -> Result<(), ProbeError> {
        match self.held_until() {
            Some((wait, why)) => Err(ProbeError::Throttled {
                message: format!(
                    "{} asked us to slow down ({why}); no request for another {}",
                    self.upstream,
                    humanize(wait.max(Duration::from_millis(1)))
                ),
                retry_after: Some(wait),
            }),
            None => Ok(()),
        }
    }

    /// How long the running wait still lasts and why, if one is running.
    pub fn held_until(&self) -> Option<(Duration, String)> {
        self.held_at(Instant::now())
    }

    /// [`Hold::held_until`] as seen at `now`; a wait that has ended by then is forgotten (so a
    /// test can step past a reset without sleeping through it).
    pub fn held_at(&self, now: Instant) -> Option<(Duration, String)> {
        let mut guard = self.until.lock().unwrap_or_else(|p| p.into_inner());
        match &*guard {
            Some((until, why)) if now < *until => Some((*until - now, why.clone())),
            Some(_) => {
                *guard = None;
                None
            }
            None => None,
        }
    }

    /// Starts (or lengthens, never shortens) a wait of `wait` from now; waits over
    /// [`MAX_HOLD`] are capped to it.
    pub fn hold_for(&self, wait: Duration, why: impl Into<String>) {
        let until = Instant::now() + wait.min(MAX_HOLD);
        let mut guard = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|(current, _)| *current < until) {
            *guard = Some((until, why.into()));
        }
    }
}

/// The rate-limit counters an answer carried (`X-RateLimit-*` on Mastodon, `x-rate-limit-*` on
/// X, `RateLimit-*` on atproto servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Requests left in the window.
    pub remaining: Option<u64>,
    /// How long until the window resets, when it resets in the future.
    pub reset_in: Option<Duration>,
}

impl RateLimit {
    /// The wait until the reset when the window is spent (remaining 0): no request before it
    /// could succeed.
    pub fn spent(&self) -> Option<Duration> {
        match (self.remaining, self.reset_in) {
            (Some(0), Some(wait)) => Some(wait),
            _ => None,
        }
    }
}

/// Reads the rate-limit headers: `X-RateLimit-Remaining`/`-Reset`, else X's
/// `x-rate-limit-remaining`/`-reset`, else `RateLimit-Remaining`/`-Reset`. Unreadable values are
/// ignored rather than obeyed.
pub fn rate_limit(headers: &HeaderMap, now: DateTime<Utc>) -> RateLimit {
    let header = |name: &str| {
        ["x-ratelimit-", "x-rate-limit-", "ratelimit-"]
            .iter()
            .find_map(|prefix| headers.get(format!("{prefix}{name}")))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    RateLimit {
        remaining: header("remaining").and_then(|v| v.parse().ok()),
        reset_in: header("reset").and_then(|v| reset_wait(v, now)),
    }
}

/// When a rate-limit window resets, as a wait from `now`: an ISO-8601 time (Mastodon:
/// `2026-08-01T13:55:00.212100Z`), Unix epoch seconds (atproto, X) or, for small numbers,
/// seconds from now (the IETF `RateLimit` draft). `None` for a reset in the past, a wait over
/// [`MAX_HOLD`] or anything unreadable.
pub fn reset_wait(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(n) = value.parse::<u64>() {
        if n > 1_000_000_000 {
            let at = DateTime::<Utc>::from_timestamp(i64::try_from(n).ok()?, 0)?;
            (at - now).to_std().ok()?
        } else {
            Duration::from_secs(n)
        }
    } else {
        let at = DateTime::parse_from_rfc3339(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().ok()?
    };
    (!wait.is_zero() && wait <= MAX_HOLD).then_some(wait)
}

/// The most HTML of one post that is turned into text. The HTML parser's cost grows with the
/// square of the nesting depth (4,000 nested `<div>`s take most of a second), and a post or feed
/// entry is markup anyone can write; 8 KiB is more than a post's words need (the text is cut at
/// [`MAX_TEXT`](crate::text::MAX_TEXT) bytes anyway) and keeps the worst case to milliseconds.
pub const MAX_POST_HTML: usize = 8 * 1024;

/// A post's HTML as plain text, reading at most [`MAX_POST_HTML`] bytes of it.
pub fn post_text(html: &str) -> String {
    html_to_text(&html[..html.floor_char_boundary(MAX_POST_HTML)])
}

/// One GET under a [`Hold`]: refused locally while the hold runs; otherwise sent, and its
/// rate-limit counters recorded (a window spent to zero holds further requests until it
/// resets). A 429 becomes `Throttled` (waiting `Retry-After`, else until the counters' reset)
/// and starts a hold. Any other status comes back as it is, for [`checked`].
pub async fn get(
    fetcher: &Fetcher,
    hold: &Hold,
    url: &str,
    what: &str,
    expect: Expect,
) -> Result<RawResponse, ProbeError> {
    hold.check()?;
    let raw = fetcher.get_raw(url, what, expect, HeaderMap::new()).await?;
    let now = crate::clock::now();
    let limit = rate_limit(&raw.headers, now);
    if raw.status == 429 {
        let error = classify_status(429, &raw.headers, what, now).unwrap_or_else(|| {
            ProbeError::Throttled {
                message: format!("{what}: HTTP 429"),
                retry_after: None,
            }
        });
        return Err(match error.retry_after().or(limit.reset_in) {
            Some(wait) => {
                hold.hold_for(wait, format!("HTTP 429 on {what}"));
                ProbeError::Throttled {
                    message: format!(
                        "{what}: HTTP 429, asked to wait {}; no request until then",
                        humanize(wait)
                    ),
                    retry_after: Some(wait),
                }
            }
            None => error,
        });
    }
    if let Some(wait) = limit.spent() {
        hold.hold_for(wait, "rate-limit window spent: remaining 0");
    }
    Ok(raw)
}

/// An API's JSON error body: `{"error": "...", "message": "..."}` (XRPC) or
/// `{"error": "..."}` (Mastodon), so a refusal can say the upstream's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEnvelope {
    /// The error name or sentence (`InvalidRequest`, `Record not found`).
    pub error: String,
    /// The longer explanation, when there is one (`message` or `error_description`).
    pub message: Option<String>,
}

impl ErrorEnvelope {
    /// Reads an error body; `None` when it is not a JSON object with a string `error`. Strings
    /// are shortened, since they end up in our own messages.
    pub fn parse(body: &[u8]) -> Option<ErrorEnvelope> {
        let value: serde_json::Value = serde_json::from_slice(strip_bom(body)).ok()?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| detail(s, &[]))
        };
        Some(ErrorEnvelope {
            error: text("error")?,
            message: text("message").or_else(|| text("error_description")),
        })
    }

    /// The envelope as one phrase, e.g. `InvalidRequest: Profile not found`.
    pub fn said(&self) -> String {
        match &self.message {
            Some(message) => format!("{}: {message}", self.error),
            None => self.error.clone(),
        }
    }
}

/// How much of an upstream's own words (an error title, a detail) we echo in a message.
pub const MAX_DETAIL: usize = 200;

/// Upstream words as we echo them: trimmed and cut to [`MAX_DETAIL`], with any of `secrets` the
/// upstream quoted back cut out first (a secret under 4 characters would match too much).
pub fn detail(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[REDACTED]");
    }
    shorten(text.trim(), MAX_DETAIL)
}

/// Classifies a [`get`] answer: a non-success goes through `explain` (the channel's reading of
/// its status and error envelope) and becomes the error; a success must pass the content-type
/// [`gate`].
pub fn checked(
    raw: RawResponse,
    what: &str,
    expect: Expect,
    explain: impl FnOnce(u16, Option<ErrorEnvelope>, ProbeError) -> ProbeError,
) -> Result<RawResponse, ProbeError> {
    if let Some(error) = classify_status(raw.status, &raw.headers, what, crate::clock::now()) {
        return Err(explain(raw.status, ErrorEnvelope::parse(&raw.body), error));
    }
    gate(what, expect, raw.media_type.as_deref(), &raw.body)?;
    Ok(raw)
}

/// A JSON API request: [`get`] under the hold, then [`checked`] with the channel's `explain`.
pub async fn get_json(
    fetcher: &Fetcher,
    hold: &Hold,
    url: &reqwest::Url,
    what: &str,
    explain: impl FnOnce(u16, Option<ErrorEnvelope>, ProbeError) -> ProbeError,
) -> Result<RawResponse, ProbeError> {
    let raw = get(fetcher, hold, url.as_str(), what, Expect::Json).await?;
    checked(raw, what, Expect::Json, explain)
}

/// Names page `page` of a paged request in messages: `GET /path`, then `GET /path (page 2)`.
pub fn page_what(path: &str, page: u32) -> String {
    match page {
        1 => format!("GET {path}"),
        n => format!("GET {path} (page {n})"),
    }
}

/// The target of the first `Link` header entry with relation `rel` (RFC 8288), resolved against
/// `base` (the URL that was asked). `None` when there is none or it is not a URL.
pub fn link_target(headers: &HeaderMap, rel: &str, base: &reqwest::Url) -> Option<reqwest::Url> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|value| link_rel(value, rel))
        .and_then(|target| base.join(&target).ok())
}

/// The URI of the first link with relation `rel` in one `Link` header value, e.g.
/// `<…?max_id=1>; rel="next", <…?min_id=2>; rel="prev"`. Relations compare case-insensitively
/// and a `rel` may list several, space-separated.
pub fn link_rel(value: &str, rel: &str) -> Option<String> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = after[..close].trim();
        let params_and_more = &after[close + 1..];
        let params_end = params_and_more.find('<').unwrap_or(params_and_more.len());
        let params = &params_and_more[..params_end];
        let has_rel = params.split(';').any(|param| {
            let Some((key, val)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && val
                    .trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
        });
        if has_rel {
            return Some(target.to_string());
        }
        rest = &params_and_more[params_end..];
    }
    None
}

/// Whether `url` is on the same scheme, host and port as `origin`: paging links are followed
/// only to the server we were configured to ask.
pub fn same_origin(url: &reqwest::Url, origin: &reqwest::Url) -> bool {
    url.scheme() == origin.scheme()
        && url.host_str() == origin.host_str()
        && url.port_or_known_default() == origin.port_or_known_default()
}

/// Orders two post ids: numerically when both are decimal numbers (of any length; Mastodon ids
/// are snowflakes in strings), else as strings, since ids are "not guaranteed to be a number".
pub fn cmp_ids(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if numeric(a) && numeric(b) {
        let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

/// Raises `newest` to `id` when `id` is newer by [`cmp_ids`].
pub fn keep_newest(newest: &mut Option<String>, id: &str) {
    if newest
        .as_deref()
        .is_none_or(|n| cmp_ids(id, n) == Ordering::Greater)
    {
        *newest = Some(id.to_string());
    }
}

/// `base` with path `segments` appended (each percent-encoded as one segment, so an account id
/// cannot add path parts) and `query` set.
pub fn endpoint(
    base: &reqwest::Url,
    segments: &[&str],
    query: &[(&str, &str)],
) -> Result<reqwest::Url, ProbeError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| ProbeError::Config {
            message: format!("base_url {base} cannot take a path"),
        })?
        .pop_if_empty()
        .extend(segments);
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// A JSON body as a value, or drift naming what was wrong with it.
pub fn parse_json(body: &[u8], what: &str) -> Result<serde_json::Value, ProbeError> {
    serde_json::from_slice(strip_bom(body))
        .map_err(|e| ProbeError::drift(what, format!("not valid JSON: {e}")))
}

/// The body without a UTF-8 byte-order mark, which some servers prepend.
pub fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(body)
}

pub use crate::http::json_kind;

/// Reads item `index` of a page as `T`; `noun` names it in messages (`status 3 is a number, not
/// an object`).
pub fn read_item<T: DeserializeOwned>(
    item: serde_json::Value,
    index: usize,
    what: &str,
    noun: &str,
) -> Result<T, ProbeError> {
    if !item.is_object() {
        return Err(ProbeError::drift(
            what,
            format!("{noun} {index} is {}, not an object", json_kind(&item)),
        ));
    }
    serde_json::from_value(item)
        .map_err(|e| ProbeError::drift(what, format!("{noun} {index}: {e}")))
}

/// Plain post text on one line, cut at [`MAX_TEXT`] bytes.
pub fn plain_text(text: &str) -> String {
    shorten(
        &text.split_whitespace().collect::<Vec<_>>().join(" "),
        MAX_TEXT,
    )
}

/// A channel setting that cannot work, named with the channel kind (`mastodon: limit 0 …`).
pub fn config_error(channel: &str, message: impl fmt::Display) -> ProbeError {
    ProbeError::Config {
        message: format!("{channel}: {message}"),
    }
}

/// Checks a page size against the API's `1..=max_limit` and that at least one page is read.
pub fn check_paging(
    channel: &str,
    limit: u8,
    max_limit: u8,
    max_pages: u32,
) -> Result<(), ProbeError> {
    if !(1..=max_limit).contains(&limit) {
        return Err(config_error(
            channel,
            format!("limit {limit} is out of range 1..={max_limit}"),
        ));
    }
    if max_pages == 0 {
        return Err(config_error(channel, "max_pages must be at least 1"));
    }
    Ok(())
}

/// A fault of a whole feed: it names no service, since the posts behind it might have concerned
/// any.
pub fn fault(error: ProbeError) -> Fault {
    Fault {
        services: Vec::new(),
        error,
    }
}

/// Posts of a page that could not be used (a missing id, a wrong type, no date), counted so the
/// rest of the page still counts and the loss is reported as a [`Fault`] rather than hidden.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skipped {
    /// How many items were skipped.
    pub count: usize,
    /// Why the first one was.
    pub first: Option<ProbeError>,
}

impl Skipped {
    /// Counts one unusable item.
    pub fn add(&mut self, error: ProbeError) {
        self.count += 1;
        self.first.get_or_insert(error);
    }

    /// Adds another page's count.
    pub fn extend(&mut self, other: Skipped) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }

    /// The fault to report, if anything was skipped; `items` is the plural noun (`statuses`).
    pub fn fault(&self, items: &str) -> Option<Fault> {
        let (what, why) = match self.first.as_ref()? {
            ProbeError::Drift { what, detail } => (what.clone(), detail.clone()),
            other => ("parsing".to_string(), other.to_string()),
        };
        let detail = match self.count {
            1 => format!("1 of the {items} was unusable and skipped: {why}"),
            n => format!("{n} of the {items} were unusable and skipped; the first: {why}"),
        };
        Some(fault(ProbeError::drift(what, detail)))
    }

    /// The error of a page whose `items` items were all unusable: the first reason, noted. A
    /// page like that is drift, not a quiet feed.
    pub fn none_usable(self, what: &str, items: usize, plural: &str) -> ProbeError {
        let note = format!("none of the {items} {plural} was usable");
        match self.first {
            Some(first) => first.with_note(&note),
            None => ProbeError::drift(what, note),
        }
    }
}

/// Ends a probe: merges its posts into what the channel remembers, forgets what is too old,
/// and says what the rest means (see [`observation`]), with the probe's partial failures as
/// faults.
pub fn remember(
    channel: &str,
    log: &mut PostLog,
    posts: Vec<Post>,
    settings: &SocialSettings,
    faults: Vec<Fault>,
) -> Observation {
    let now = crate::clock::now();
    log.merge(posts);
    log.prune(now, settings);
    let mut o = observation(channel, log, now, settings);
    o.faults.extend(faults);
    o
}

#[cfg(test)]
#[path = "common_tests.rs"]
mod tests;
