//! The `bluesky` channel: one actor's posts on Bluesky, read without a token from the public
//! AppView (`app.bsky.feed.getAuthorFeed`).
//!
//! The API has no `since_id`: its `cursor` pages backwards only. So every probe reads from the
//! newest post down and stops at the first post it already knows, at a post older than the
//! channel's history (nothing older would be reported), at the end of the feed, or after
//! `max_pages`. The filter `posts_and_author_threads` keeps the actor's own threads (an
//! incident's follow-ups are self-replies) and leaves out replies to others; reposts and pinned
//! items are skipped (a pin is an old post at the top and would end the walk too early), as is
//! anything written by someone else.
//!
//! A later page that fails fails the whole probe: reading backwards, a partial window would mark
//! the newest posts as known and leave the gap below them unread for good. (More than
//! `limit × max_pages` posts between two probes leave such a gap too; it is logged.)

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::common::{
    self, ErrorEnvelope, Hold, Skipped, check_paging, config_error, endpoint, json_kind, page_what,
    parse_json, plain_text, read_item,
};
use super::observe::{PostLog, SocialSettings};
use super::thread::Post;
use crate::error::ProbeError;
use crate::http::{Fetcher, base_url};
use crate::model::{ChannelKind, Observation};
use crate::{BoxFuture, Channel};

/// Bluesky's public, cached AppView: no sign-in, generous rate limits. (It can lag the live
/// network a little.)
pub const DEFAULT_BASE_URL: &str = "https://public.api.bsky.app";
/// The page size asked by default (the API's own default).
pub const DEFAULT_LIMIT: u8 = 50;
/// The largest `limit` getAuthorFeed accepts.
pub const MAX_LIMIT: u8 = 100;
/// How many pages one probe reads at most by default.
pub const DEFAULT_MAX_PAGES: u32 = 5;
/// How many post uris the channel remembers to recognize where the last probe stopped; far more
/// than a probe reads, so deleted posts cannot hide the boundary.
const KNOWN_CAP: usize = 2000;

const PATH: &str = "/xrpc/app.bsky.feed.getAuthorFeed";

/// Settings of one Bluesky channel.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueskyConfig {
    /// The AppView, default [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// The actor: a handle (`name.bsky.social`, a leading `@` is accepted) or a DID.
    pub actor: String,
    /// Posts per page, 1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub limit: u8,
    /// Pages one probe reads at most, at least 1, default [`DEFAULT_MAX_PAGES`].
    pub max_pages: u32,
    /// How posts become an observation.
    pub social: SocialSettings,
}

impl BlueskyConfig {
    /// A config for `actor` with every default, so callers only name what has none.
    pub fn new(actor: impl Into<String>) -> Self {
        BlueskyConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            actor: actor.into(),
            limit: DEFAULT_LIMIT,
            max_pages: DEFAULT_MAX_PAGES,
            social: SocialSettings::default(),
        }
    }
}

/// A configured Bluesky channel.
#[derive(Debug)]
pub struct Bluesky {
    id: String,
    base: reqwest::Url,
    actor: String,
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
    /// Uris of posts read before, with their times (to keep the newest when trimming).
    known: HashMap<String, DateTime<Utc>>,
    log: PostLog,
}

impl Bluesky {
    /// Builds the channel, refusing a base URL that is not absolute http(s), an empty or
    /// malformed actor and a `limit` or `max_pages` out of range.
    pub fn new(
        id: impl Into<String>,
        config: BlueskyConfig,
        fetcher: Fetcher,
    ) -> Result<Self, ProbeError> {
        let base = base_url("base_url", &config.base_url)?;
        let actor = config.actor.trim().trim_start_matches('@');
        if actor.is_empty()
            || actor
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'))
        {
            return Err(config_error(
                "bluesky",
                format!(
                    "actor {:?} must be a handle (name.bsky.social) or a DID (did:plc:…)",
                    config.actor
                ),
            ));
        }
        check_paging("bluesky", config.limit, MAX_LIMIT, config.max_pages)?;
        Ok(Bluesky {
            id: id.into(),
            hold: Hold::new(crate::http::redact(&base)),
            base,
            actor: actor.to_string(),
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
        let known: HashSet<String> = self.state().known.keys().cloned().collect();
        let started = crate::clock::now();
        let oldest_wanted = TimeDelta::from_std(self.social.history)
            .ok()
            .and_then(|h| started.checked_sub_signed(h));
        let limit = self.limit.to_string();
        let mut cursor: Option<String> = None;
        let mut cursors: HashSet<String> = HashSet::new();
        let mut posts: Vec<Post> = Vec::new();
        let mut skipped = Skipped::default();
        let mut reached_known = false;
        for page in 1..=self.max_pages {
            let what = page_what(PATH, page);
            let mut query = vec![
                ("actor", self.actor.as_str()),
                ("limit", limit.as_str()),
                ("filter", "posts_and_author_threads"),
                ("includePins", "false"),
            ];
            if let Some(c) = &cursor {
                query.push(("cursor", c));
            }
            let url = endpoint(&self.base, &["xrpc", "app.bsky.feed.getAuthorFeed"], &query)?;
            let raw = common::get_json(
                &self.fetcher,
                &self.hold,
                &url,
                &what,
                |status, envelope, error| self.explain(status, envelope, error),
            )
            .await?;
            let parsed = parse_author_feed(&raw.body, &what, &self.actor)?;
            skipped.extend(parsed.skipped);
            let mut oldest: Option<DateTime<Utc>> = None;
            for post in parsed.posts {
                if known.contains(&post.id) {
                    reached_known = true;
                    break;
                }
                oldest = Some(oldest.map_or(post.created_at, |o| o.min(post.created_at)));
                posts.push(post);
            }
            let past_history = matches!((oldest, oldest_wanted), (Some(o), Some(w)) if o < w);
            if reached_known || past_history || parsed.items == 0 {
                break;
            }
            match parsed.cursor {
                Some(next) if !cursors.contains(&next) => {
                    cursors.insert(next.clone());
                    cursor = Some(next);
                }
                Some(_) => {
                    tracing::warn!(channel = %self.id, "bluesky: the cursor repeats; stopping");
                    break;
                }
                None => break,
            }
            if page == self.max_pages && !known.is_empty() {
                tracing::info!(
                    channel = %self.id,
                    "bluesky: more new posts than {} pages of {}; older new posts are not read",
                    self.max_pages,
                    self.limit
                );
            }
        }
        let mut state = self.state();
        for post in &posts {
            state.known.insert(post.id.clone(), post.created_at);
        }
        if state.known.len() > KNOWN_CAP {
            let mut by_time: Vec<(DateTime<Utc>, String)> =
                state.known.iter().map(|(u, t)| (*t, u.clone())).collect();
            by_time.sort();
            let excess = by_time.len() - KNOWN_CAP;
            for (_, uri) in by_time.into_iter().take(excess) {
                state.known.remove(&uri);
            }
        }
        let faults = skipped.fault("feed items").into_iter().collect();
        Ok(common::remember(
            &self.id,
            &mut state.log,
            posts,
            &self.social,
            faults,
        ))
    }

    /// What an XRPC error means for this channel: an actor that does not exist or is blocked is
    /// a configuration problem; the rest keep their HTTP class, with the server's words.
    fn explain(
        &self,
        status: u16,
        envelope: Option<ErrorEnvelope>,
        error: ProbeError,
    ) -> ProbeError {
        let Some(envelope) = envelope else {
            return match status {
                401 | 403 => error.with_note(
                    "the public AppView needs no sign-in; base_url may point at a server that does",
                ),
                _ => error,
            };
        };
        let said = envelope.said();
        let message = envelope
            .message
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let about_actor = message.contains("not found")
            || message.contains("could not find")
            || message.contains("actor");
        match (status, envelope.error.as_str()) {
            (_, "BlockedActor" | "BlockedByActor") => ProbeError::Config {
                message: format!(
                    "bluesky: the feed of {:?} cannot be read ({said}): a block between the actor \
                     and the reader",
                    self.actor
                ),
            },
            (400, "InvalidRequest") if about_actor => ProbeError::Config {
                message: format!(
                    "bluesky: actor {:?} was not found ({said}); check the handle or DID",
                    self.actor
                ),
            },
            (401 | 403, _) => error.with_note(&format!(
                "server said: {said}; the public AppView needs no sign-in, so base_url may point \
                 at a server that does"
            )),
            _ => error.with_note(&format!("server said: {said}")),
        }
    }
}

impl Channel for Bluesky {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Bluesky
    }

    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>> {
        Box::pin(self.run())
    }
}

/// One page of getAuthorFeed, as the channel uses it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthorFeedPage {
    /// The actor's own posts, in feed order (newest first).
    pub posts: Vec<Post>,
    /// Where the next (older) page starts, if there is one.
    pub cursor: Option<String>,
    /// How many items the page held.
    pub items: usize,
    /// Reposts and pins, left out.
    pub reposts_and_pins: usize,
    /// Posts by other authors, left out.
    pub others: usize,
    /// Items that could not be read.
    pub skipped: Skipped,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    cursor: Option<String>,
    feed: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Item {
    post: PostView,
    #[serde(default)]
    reason: Option<Reason>,
}

#[derive(Debug, Deserialize)]
struct Reason {
    #[serde(rename = "$type", default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostView {
    uri: String,
    #[serde(default)]
    author: Option<Author>,
    #[serde(default)]
    record: Option<Record>,
    #[serde(default)]
    indexed_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Author {
    #[serde(default)]
    did: Option<String>,
    #[serde(default)]
    handle: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    reply: Option<ReplyRef>,
}

#[derive(Debug, Deserialize)]
struct ReplyRef {
    #[serde(default)]
    root: Option<StrongRef>,
    #[serde(default)]
    parent: Option<StrongRef>,
}

#[derive(Debug, Deserialize)]
struct StrongRef {
    #[serde(default)]
    uri: Option<String>,
}

/// What one feed item is to the channel.
enum ItemKind {
    Own(Post),
    RepostOrPin,
    Other,
}

/// Parses a getAuthorFeed answer (`{cursor?, feed: [{post, reply?, reason?}]}`) for `actor` (a
/// handle or a DID). Reposts, pins and other authors' posts are counted and left out; an item
/// that cannot be read is skipped and counted; a page with items of which none is usable is
/// drift.
pub fn parse_author_feed(
    body: &[u8],
    what: &str,
    actor: &str,
) -> Result<AuthorFeedPage, ProbeError> {
    let value = parse_json(body, what)?;
    if !value.is_object() {
        return Err(ProbeError::drift(
            what,
            format!("expected an object with a feed, got {}", json_kind(&value)),
        ));
    }
    let page: Page = serde_json::from_value(value)
        .map_err(|e| ProbeError::drift(what, format!("unexpected getAuthorFeed shape: {e}")))?;
    let mut out = AuthorFeedPage {
        items: page.feed.len(),
        cursor: page.cursor.filter(|c| !c.trim().is_empty()),
        ..AuthorFeedPage::default()
    };
    for (index, item) in page.feed.into_iter().enumerate() {
        match feed_item(item, index, what, actor) {
            Ok(ItemKind::Own(post)) => out.posts.push(post),
            Ok(ItemKind::RepostOrPin) => out.reposts_and_pins += 1,
            Ok(ItemKind::Other) => out.others += 1,
            Err(error) => out.skipped.add(error),
        }
    }
    if out.items > 0 && out.skipped.count == out.items {
        return Err(out.skipped.none_usable(what, out.items, "feed items"));
    }
    Ok(out)
}

fn feed_item(
    item: serde_json::Value,
    index: usize,
    what: &str,
    actor: &str,
) -> Result<ItemKind, ProbeError> {
    let item: Item = read_item(item, index, what, "feed item")?;
    if item.reason.as_ref().is_some_and(|r| {
        r.kind
            .as_deref()
            .is_some_and(|k| k.ends_with("#reasonRepost") || k.ends_with("#reasonPin"))
    }) {
        return Ok(ItemKind::RepostOrPin);
    }
    let post = item.post;
    let uri = post.uri.trim();
    if uri.is_empty() {
        return Err(ProbeError::drift(
            what,
            format!("feed item {index} has an empty uri"),
        ));
    }
    let Some(author) = &post.author else {
        return Err(ProbeError::drift(what, format!("post {uri} has no author")));
    };
    if !is_actor(author, actor) {
        return Ok(ItemKind::Other);
    }
    let record = post.record.as_ref();
    let time = record
        .and_then(|r| r.created_at.as_deref())
        .and_then(parse_time)
        .or_else(|| post.indexed_at.as_deref().and_then(parse_time))
        .ok_or_else(|| {
            ProbeError::drift(
                what,
                format!("post {uri} has neither a readable createdAt nor indexedAt"),
            )
        })?;
    let text = record
        .and_then(|r| r.text.as_deref())
        .map(plain_text)
        .unwrap_or_default();
    let reply = record.and_then(|r| r.reply.as_ref());
    let reply_uri = |r: Option<&StrongRef>| {
        r.and_then(|s| s.uri.as_deref())
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
    };
    Ok(ItemKind::Own(Post {
        id: uri.to_string(),
        text: text.into(),
        created_at: time,
        reply_to: reply_uri(reply.and_then(|r| r.parent.as_ref())),
        root: reply_uri(reply.and_then(|r| r.root.as_ref())),
    }))
}

/// Whether the author is the configured actor: by DID when the actor is one, else by handle
/// (handles are case-insensitive).
fn is_actor(author: &Author, actor: &str) -> bool {
    if actor.starts_with("did:") {
        author.did.as_deref() == Some(actor)
    } else {
        author
            .handle
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(actor))
    }
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
#[path = "bluesky_tests.rs"]
mod tests;
