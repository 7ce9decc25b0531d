//! The `mastodon` channel: one account's public posts on one Mastodon server, read without a
//! token through the public REST API.
//!
//! A probe is: the account id (`GET /api/v1/accounts/lookup?acct=…`, once, then cached), then
//! `GET /api/v1/accounts/{id}/statuses?limit=N&exclude_reblogs=true`. The first probe reads the
//! newest page only; every later one asks with `min_id=<newest id seen>`, which returns the
//! statuses *immediately* newer than it (oldest first in chunks, unlike `since_id`, which skips
//! to the newest and leaves a gap), and follows the `Link` header's `rel="prev"` — Mastodon's
//! "newer" direction — up to `max_pages`. More than `limit × max_pages` new statuses between two
//! probes are not lost: the next probe continues from the newest one this probe saw.
//!
//! Replies stay in (an incident's follow-ups are self-replies); reblogs are left out, by the
//! server and again here. `content` is sanitized HTML and is reduced to text.
//!
//! The server's rate limit (300 requests per 5 minutes per IP by default) is respected from its
//! own counters: when `X-RateLimit-Remaining` reaches 0, no request is sent until
//! `X-RateLimit-Reset` (an ISO-8601 time), and a 429 holds the channel the same way.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::common::{
    self, ErrorEnvelope, Hold, Skipped, check_paging, config_error, endpoint, fault, json_kind,
    keep_newest, link_target, page_what, parse_json, post_text, read_item, same_origin,
};
use super::observe::{PostLog, SocialSettings};
use super::thread::Post;
use crate::error::ProbeError;
use crate::http::{Fetcher, RawResponse, base_url};
use crate::model::{ChannelKind, Fault, Observation};
use crate::{BoxFuture, Channel};

/// The page size asked by default: Mastodon's maximum, so a probe needs as few requests as
/// possible.
pub const DEFAULT_LIMIT: u8 = 40;
/// The largest `limit` Mastodon accepts for account statuses.
pub const MAX_LIMIT: u8 = 40;
/// How many pages of newer statuses one probe follows by default.
pub const DEFAULT_MAX_PAGES: u32 = 5;

/// Settings of one Mastodon channel.
#[derive(Debug, Clone, PartialEq)]
pub struct MastodonConfig {
    /// The server the account lives on (or any server that serves it), e.g.
    /// `https://mastodon.social`. Required: ids are local to each server.
    pub base_url: String,
    /// The account as `acct`: `user` (local to `base_url`) or `user@domain`; a leading `@` is
    /// accepted.
    pub account: String,
    /// Statuses per page, 1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub limit: u8,
    /// Pages of newer statuses one probe follows, at least 1, default [`DEFAULT_MAX_PAGES`].
    pub max_pages: u32,
    /// How posts become an observation.
    pub social: SocialSettings,
}

impl MastodonConfig {
    /// A config with the default page size, page count and social settings, so callers only
    /// name what has no default.
    pub fn new(base_url: impl Into<String>, account: impl Into<String>) -> Self {
        MastodonConfig {
            base_url: base_url.into(),
            account: account.into(),
            limit: DEFAULT_LIMIT,
            max_pages: DEFAULT_MAX_PAGES,
            social: SocialSettings::default(),
        }
    }
}

/// A configured Mastodon channel.
#[derive(Debug)]
pub struct Mastodon {
    id: String,
    base: reqwest::Url,
    host: String,
    account: String,
    limit: u8,
    max_pages: u32,
    social: SocialSettings,
    fetcher: Fetcher,
    hold: Hold,
    state: Mutex<State>,
}

/// What the channel remembers between probes.
#[derive(Debug, Default)]
struct State {
    /// The account's id on this server, once looked up.
    account_id: Option<String>,
    /// The highest status id seen, the `min_id` of the next probe.
    newest: Option<String>,
    log: PostLog,
}

impl Mastodon {
    /// Builds the channel, refusing a base URL that is not absolute http(s), an `account` that
    /// is not an acct and a `limit` or `max_pages` out of range, so a typo fails at startup.
    pub fn new(
        id: impl Into<String>,
        config: MastodonConfig,
        fetcher: Fetcher,
    ) -> Result<Self, ProbeError> {
        let base = base_url("base_url", &config.base_url)?;
        let account = config.account.trim().trim_start_matches('@');
        let valid_acct = !account.is_empty()
            && account.matches('@').count() <= 1
            && !account.starts_with('@')
            && !account.ends_with('@')
            && !account
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#'));
        if !valid_acct {
            return Err(config_error(
                "mastodon",
                format!(
                    "account {:?} must be an acct: \"user\" or \"user@domain\"",
                    config.account
                ),
            ));
        }
        check_paging("mastodon", config.limit, MAX_LIMIT, config.max_pages)?;
        let host = crate::http::redact(&base);
        Ok(Mastodon {
            id: id.into(),
            hold: Hold::new(host.clone()),
            host,
            base,
            account: account.to_string(),
            limit: config.limit,
            max_pages: config.max_pages,
            social: config.social,
            fetcher,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(&self) -> Result<Observation, ProbeError> {
        self.hold.check()?;
        let account_id = self.account_id().await?;
        let since = self.state().newest.clone();
        let limit = self.limit.to_string();
        let mut query = vec![("limit", limit.as_str()), ("exclude_reblogs", "true")];
        if let Some(newest) = &since {
            query.push(("min_id", newest));
        }
        let statuses_path = format!("/api/v1/accounts/{account_id}/statuses");
        let mut url = endpoint(
            &self.base,
            &["api", "v1", "accounts", &account_id, "statuses"],
            &query,
        )?;
        let mut asked: HashSet<String> = HashSet::new();
        let mut posts = Vec::new();
        let mut newest = since.clone();
        let mut skipped = Skipped::default();
        let mut faults: Vec<Fault> = Vec::new();
        for page in 1..=self.max_pages {
            let what = page_what(&statuses_path, page);
            asked.insert(url.to_string());
            let raw = match self.statuses(&url, &what).await {
                Ok(raw) => raw,
                Err(error) if page == 1 => return Err(error),
                Err(error) => {
                    // The pages read so far are contiguous from `min_id`: keep them; the next
                    // probe continues after the newest of them.
                    faults.push(fault(error.with_note("the earlier pages were kept")));
                    break;
                }
            };
            let parsed = parse_statuses(&raw.body, &what)?;
            if let Some(id) = &parsed.newest {
                keep_newest(&mut newest, id);
            }
            let full = parsed.items >= usize::from(self.limit);
            posts.extend(parsed.posts);
            skipped.extend(parsed.skipped);
            // The first probe reads the newest page only; a short page is the newest there is.
            if since.is_none() || !full {
                break;
            }
            let Some(next) = link_target(&raw.headers, "prev", &url) else {
                break;
            };
            if !same_origin(&next, &self.base) {
                faults.push(fault(ProbeError::drift(
                    &what,
                    format!(
                        "the Link rel=\"prev\" points to {}, not to {}; not followed",
                        crate::http::redact(&next),
                        self.host
                    ),
                )));
                break;
            }
            if asked.contains(next.as_str()) {
                faults.push(fault(ProbeError::drift(
                    &what,
                    "the Link rel=\"prev\" repeats a page already read (a paging loop)",
                )));
                break;
            }
            if page == self.max_pages {
                tracing::info!(
                    channel = %self.id,
                    "mastodon: more new statuses than {} pages of {}; the next probe continues",
                    self.max_pages,
                    self.limit
                );
            }
            url = next;
        }
        let mut state = self.state();
        state.newest = newest;
        faults.extend(skipped.fault("statuses"));
        Ok(common::remember(
            &self.id,
            &mut state.log,
            posts,
            &self.social,
            faults,
        ))
    }

    /// The account's id, looked up once and then remembered.
    async fn account_id(&self) -> Result<String, ProbeError> {
        if let Some(id) = self.state().account_id.clone() {
            return Ok(id);
        }
        let what = "GET /api/v1/accounts/lookup";
        let url = endpoint(
            &self.base,
            &["api", "v1", "accounts", "lookup"],
            &[("acct", &self.account)],
        )?;
        let raw = common::get_json(
            &self.fetcher,
            &self.hold,
            &url,
            what,
            |status, envelope, error| self.explain(status, envelope, error),
        )
        .await?;
        let id = parse_account(&raw.body, what)?;
        self.state().account_id = Some(id.clone());
        Ok(id)
    }

    async fn statuses(&self, url: &reqwest::Url, what: &str) -> Result<RawResponse, ProbeError> {
        common::get_json(
            &self.fetcher,
            &self.hold,
            url,
            what,
            |status, envelope, error| {
                if matches!(status, 404 | 410) {
                    // The account may have moved or been recreated: look it up again next time.
                    self.state().account_id = None;
                }
                self.explain(status, envelope, error)
            },
        )
        .await
    }

    /// What a refusal means for this channel, in the server's own words where it gave some.
    fn explain(
        &self,
        status: u16,
        envelope: Option<ErrorEnvelope>,
        error: ProbeError,
    ) -> ProbeError {
        let said = envelope.map(|e| e.said());
        let quoted = said
            .as_deref()
            .map(|s| format!(" (server said: {s})"))
            .unwrap_or_default();
        match status {
            404 | 410 => ProbeError::Config {
                message: format!(
                    "mastodon: no such account {:?} on {}{quoted}; check account and base_url \
                     (a remote account needs \"user@domain\")",
                    self.account, self.host
                ),
            },
            401 | 403 => ProbeError::Auth {
                message: format!(
                    "{error}{quoted}; {} does not allow reading its API without signing in \
                     (DISALLOW_UNAUTHENTICATED_API_ACCESS or a limited server), and statusmon \
                     reads Mastodon without a token: use a server that serves this account \
                     publicly",
                    self.host
                ),
            },
            _ => match said {
                Some(said) => error.with_note(&format!("server said: {said}")),
                None => error,
            },
        }
    }
}

impl Channel for Mastodon {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Mastodon
    }

    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>> {
        Box::pin(self.run())
    }
}

/// Reads the account id from a `lookup` answer (an `Account`; only its `id` matters).
pub fn parse_account(body: &[u8], what: &str) -> Result<String, ProbeError> {
    let value = parse_json(body, what)?;
    if !value.is_object() {
        return Err(ProbeError::drift(
            what,
            format!("expected an Account object, got {}", json_kind(&value)),
        ));
    }
    match value.get("id") {
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Some(other) => Err(ProbeError::drift(
            what,
            format!("the account id is {}, not a string", json_kind(other)),
        )),
        None => Err(ProbeError::drift(what, "the account has no id")),
    }
}

/// One page of account statuses, as the channel uses it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusPage {
    /// The usable statuses, as posts, in page order (newest first).
    pub posts: Vec<Post>,
    /// The highest id on the page, reblogs and unusable items included: where the next `min_id`
    /// starts, since the server has shown us everything up to it.
    pub newest: Option<String>,
    /// How many items the page held.
    pub items: usize,
    /// How many were reblogs, left out.
    pub reblogs: usize,
    /// Items that could not be read.
    pub skipped: Skipped,
}

/// The fields of a `Status` this channel reads; everything else is ignored.
#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    created_at: String,
    #[serde(default)]
    in_reply_to_id: Option<String>,
    #[serde(default)]
    reblog: Option<serde_json::Value>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    spoiler_text: Option<String>,
}

/// Parses a page of `GET /api/v1/accounts/:id/statuses`: a JSON array of `Status`. An item
/// that cannot be read is skipped and counted; a page with items of which none is usable is
/// drift.
pub fn parse_statuses(body: &[u8], what: &str) -> Result<StatusPage, ProbeError> {
    let value = parse_json(body, what)?;
    let serde_json::Value::Array(items) = value else {
        return Err(ProbeError::drift(
            what,
            format!("expected an array of statuses, got {}", json_kind(&value)),
        ));
    };
    let mut page = StatusPage {
        items: items.len(),
        ..StatusPage::default()
    };
    for (index, item) in items.into_iter().enumerate() {
        if let Some(id) = item.get("id").and_then(|v| v.as_str()) {
            keep_newest(&mut page.newest, id);
        }
        match status_post(item, index, what) {
            Ok(Some(post)) => page.posts.push(post),
            Ok(None) => page.reblogs += 1,
            Err(error) => page.skipped.add(error),
        }
    }
    if page.items > 0 && page.posts.is_empty() && page.reblogs == 0 {
        return Err(page.skipped.none_usable(what, page.items, "statuses"));
    }
    Ok(page)
}

/// One status as a post; `None` for a reblog.
fn status_post(
    item: serde_json::Value,
    index: usize,
    what: &str,
) -> Result<Option<Post>, ProbeError> {
    let status: Status = read_item(item, index, what, "status")?;
    if status.reblog.as_ref().is_some_and(|r| !r.is_null()) {
        return Ok(None);
    }
    let id = status.id.trim();
    if id.is_empty() {
        return Err(ProbeError::drift(
            what,
            format!("status {index} has an empty id"),
        ));
    }
    let created_at = DateTime::parse_from_rfc3339(status.created_at.trim())
        .map_err(|e| {
            ProbeError::drift(
                what,
                format!(
                    "status {id}: created_at {:?} is not a time: {e}",
                    status.created_at
                ),
            )
        })?
        .with_timezone(&Utc);
    let content = post_text(status.content.as_deref().unwrap_or(""));
    let warning = post_text(status.spoiler_text.as_deref().unwrap_or(""));
    let text = match (warning.is_empty(), content.is_empty()) {
        (true, _) => content,
        (false, true) => warning,
        (false, false) => format!("{warning} {content}"),
    };
    Ok(Some(Post {
        id: id.to_string(),
        text: text.into(),
        created_at,
        reply_to: status
            .in_reply_to_id
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty()),
        root: None,
    }))
}

#[cfg(test)]
#[path = "mastodon_tests.rs"]
mod tests;
