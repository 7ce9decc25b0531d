//! The `feed` channel: any RSS or Atom feed of posts (a bridge of a social account, a status
//! blog), read with one GET of the whole feed URL and parsed with `feed-rs`.
//!
//! Each entry becomes a post: its id, its title and summary (or content) as text, and its
//! publication time (else its update time). Feeds have no reply links, so entries join into
//! incidents through the incident ids they name, and an entry naming none that arrives while an
//! incident is open is read as its follow-up (see
//! [`incident_threads`](super::observe::incident_threads)).
//!
//! A feed shows only its newest entries, so each answer is merged into what the channel
//! remembers rather than replacing it: an entry that scrolls off a busy feed is not retracted,
//! and an incident's first post (the one naming its id) must outlive the follow-ups that push it
//! out. Entries are forgotten by the usual history and size limits; an edited entry replaces
//! the old one under the same id.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use super::common::{self, Hold, Skipped, plain_text, post_text};
use super::observe::{PostLog, SocialSettings};
use super::thread::Post;
use crate::error::ProbeError;
use crate::http::{Expect, Fetcher, RawResponse, redact};
use crate::model::{ChannelKind, Observation};
use crate::text::shorten;
use crate::{BoxFuture, Channel};

/// Settings of one feed channel.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// The whole feed URL, query included (many feeds are addressed by query string).
    pub url: String,
    /// How posts become an observation.
    pub social: SocialSettings,
}

impl FeedConfig {
    /// A config for `url` with the default social settings.
    pub fn new(url: impl Into<String>) -> Self {
        FeedConfig {
            url: url.into(),
            social: SocialSettings::default(),
        }
    }
}

/// A configured feed channel.
#[derive(Debug)]
pub struct Feed {
    id: String,
    url: reqwest::Url,
    what: String,
    social: SocialSettings,
    fetcher: Fetcher,
    hold: Hold,
    log: Mutex<PostLog>,
}

impl Feed {
    /// Builds the channel, refusing a URL that is not absolute http(s) with a host.
    pub fn new(
        id: impl Into<String>,
        config: FeedConfig,
        fetcher: Fetcher,
    ) -> Result<Self, ProbeError> {
        let url = reqwest::Url::parse(config.url.trim()).map_err(|e| ProbeError::Config {
            message: format!("feed: url {:?} is not a URL: {e}", config.url),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ProbeError::Config {
                message: format!(
                    "feed: url {:?} must be an http(s) URL with a host",
                    config.url
                ),
            });
        }
        let shown = redact(&url);
        Ok(Feed {
            id: id.into(),
            what: format!("GET {shown}"),
            hold: Hold::new(shown),
            url,
            social: SocialSettings {
                unlinked_follow_ups: true,
                ..config.social
            },
            fetcher,
            log: Mutex::new(PostLog::default()),
        })
    }

    async fn run(&self) -> Result<Observation, ProbeError> {
        let what = self.what.as_str();
        let raw = common::get(
            &self.fetcher,
            &self.hold,
            self.url.as_str(),
            what,
            Expect::Xml,
        )
        .await?;
        let raw = checked(raw, what)?;
        let parsed = parse_feed(&raw.body, what)?;
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let faults = parsed.skipped.fault("entries").into_iter().collect();
        Ok(common::remember(
            &self.id,
            &mut log,
            parsed.posts,
            &self.social,
            faults,
        ))
    }
}

/// The feed's answer classified, with an HTML page named as such: the usual mistake is a site's
/// address where its feed's belongs.
fn checked(raw: RawResponse, what: &str) -> Result<RawResponse, ProbeError> {
    if (200..300).contains(&raw.status)
        && (raw.media_type.as_deref() == Some("text/html") || looks_like_html(&raw.body))
    {
        return Err(html_page(what));
    }
    common::checked(
        raw,
        what,
        Expect::Xml,
        |_, envelope, error| match envelope {
            Some(envelope) => error.with_note(&format!("server said: {}", envelope.said())),
            None => error,
        },
    )
}

fn html_page(what: &str) -> ProbeError {
    ProbeError::drift(
        what,
        "an HTML page, not a feed; url must be the feed's own address (a site's page names it in \
         <link rel=\"alternate\">)",
    )
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

impl Channel for Feed {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Feed
    }

    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>> {
        Box::pin(self.run())
    }
}

/// A parsed feed, as the channel uses it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedFeed {
    /// The usable entries as posts, in feed order.
    pub posts: Vec<Post>,
    /// How many entries the feed held.
    pub entries: usize,
    /// Entries without a date (or an id), left out.
    pub skipped: Skipped,
}

/// Parses an RSS (0.9x, 1.0, 2.0) or Atom document into posts. An entry without a published or
/// updated date is skipped and counted (a post with no time cannot be placed in a thread); a
/// feed whose entries all lack one is drift. A feed without entries is a quiet feed, not an
/// error.
///
/// feed-rs runs under [`catch_unwind`]: 3.0.0 slices an author string at a byte offset next to an
/// e-mail address (`parse_person_name_email`), which panics when that neighbour is a multi-byte
/// character (`<author>Name—user@example.com</author>`), and a feed is text anyone can write.
/// The panic becomes drift; the panic hook still prints it once to stderr.
pub fn parse_feed(body: &[u8], what: &str) -> Result<ParsedFeed, ProbeError> {
    if looks_like_html(body) {
        return Err(html_page(what));
    }
    let feed = match catch_unwind(AssertUnwindSafe(|| feed_rs::parser::parse(body))) {
        Ok(Ok(feed)) => feed,
        Ok(Err(e)) => {
            return Err(ProbeError::drift(
                what,
                format!(
                    "not a readable RSS or Atom feed: {}",
                    shorten(&e.to_string(), 300)
                ),
            ));
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            return Err(ProbeError::drift(
                what,
                format!(
                    "the feed parser failed on this feed ({}); treating it as unreadable",
                    shorten(&why, 200)
                ),
            ));
        }
    };
    let mut parsed = ParsedFeed {
        entries: feed.entries.len(),
        ..ParsedFeed::default()
    };
    for entry in feed.entries {
        let id = entry.id.trim().to_string();
        if id.is_empty() {
            parsed
                .skipped
                .add(ProbeError::drift(what, "an entry has no id"));
            continue;
        }
        let Some(created_at) = entry.published.or(entry.updated) else {
            parsed.skipped.add(ProbeError::drift(
                what,
                format!(
                    "entry {:?} has neither a published nor an updated date",
                    shorten(&id, 80)
                ),
            ));
            continue;
        };
        let title = entry.title.as_ref().map(text_of).unwrap_or_default();
        let body = entry
            .summary
            .as_ref()
            .map(text_of)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                entry.content.as_ref().and_then(|c| {
                    let html = c.content_type.to_string().contains("html");
                    c.body.as_deref().map(|b| plain_or_html(b, html))
                })
            })
            .unwrap_or_default();
        parsed.posts.push(Post {
            id,
            text: join(&title, &body).into(),
            created_at,
            reply_to: None,
            root: None,
        });
    }
    if parsed.entries > 0 && parsed.posts.is_empty() {
        return Err(parsed.skipped.none_usable(what, parsed.entries, "entries"));
    }
    Ok(parsed)
}

fn text_of(text: &feed_rs::model::Text) -> String {
    plain_or_html(
        &text.content,
        text.content_type.to_string().contains("html"),
    )
}

fn plain_or_html(text: &str, html: bool) -> String {
    if html {
        post_text(text)
    } else {
        plain_text(text)
    }
}

/// Title and body as one text. Bridges often repeat the post as both (the title cut short with
/// `…`), so a body that already starts with the title stands alone.
fn join(title: &str, body: &str) -> String {
    let stem = title.trim_end_matches(['…', '.', ' ']);
    if title.is_empty() || (!stem.is_empty() && body.starts_with(stem)) {
        body.to_string()
    } else if body.is_empty() {
        title.to_string()
    } else {
        format!("{title} {body}")
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
