//! Bluesky's public AppView (`public.api.bsky.app/xrpc`) for the one account it knows,
//! `msft365status.bsky.social` (see the design folder's `reference/social.md` §3 and the
//! `bluesky-*` fixtures).
//!
//! - `GET /xrpc/app.bsky.actor.getProfile?actor=<handle|did>`: the profile, with `pinnedPost`.
//! - `GET /xrpc/app.bsky.feed.getAuthorFeed?actor=&limit=&cursor=&filter=&includePins=`:
//!   `{cursor?, feed:[{post, reply?, reason?}]}` newest first. `limit` 1..=100 (default 50);
//!   `cursor` pages backwards (it is the last item's time, as the AppView's is) and is present
//!   only while older items remain; `filter` is `posts_with_replies` (default),
//!   `posts_no_replies` (no replies, even to oneself), `posts_and_author_threads`,
//!   `posts_with_media` or `posts_with_video` (nothing matches). One `#reasonRepost` item of
//!   another account's post sits in the feed, and the first page starts with the account's
//!   pinned post as a `#reasonPin` item unless `includePins=false` (the pinned post also
//!   appears at its own place, as on Bluesky). Replies carry `record.reply{root,parent}` and
//!   the item's `reply{root,parent}` post views.
//!
//! Errors are XRPC's `{"error","message"}`: 400 `InvalidRequest` for a bad parameter or an
//! unknown actor (`Profile not found`), 501 `MethodNotImplemented` for another method, and in
//! the `rate-limited` scenario 429 `RateLimitExceeded` with `ratelimit-*` headers (the reset in
//! epoch seconds, a few seconds ahead).

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::{
    OTHER_TEXT, PIN_AGE, PINNED_TEXT, Piece, REPOST_AGE, SEQ_OTHER, SEQ_PIN, SEQ_REBLOG,
    SIM_BLUESKY_DID, SIM_BLUESKY_HANDLE, Snapshot, iso_ms, millis, param, pieces, pseudo_chars,
    query_pairs, seed, shown,
};
use crate::simulator::{SimState, SocialScenario};

const JSON: &str = "application/json; charset=utf-8";
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;
const FILTERS: &[&str] = &[
    "posts_with_replies",
    "posts_no_replies",
    "posts_with_media",
    "posts_and_author_threads",
    "posts_with_video",
];
/// The account whose post the simulated account reposted.
const OTHER_DID: &str = "did:plc:m365tips4x7qk2hwvad3fzcq";
const OTHER_HANDLE: &str = "m365-tips.bsky.social";
/// The rate limit `rate-limited` announces (the PDS's documented 3000 per 5 minutes).
const THROTTLED_LIMIT: u64 = 3000;
const THROTTLED_RESET: TimeDelta = TimeDelta::seconds(5);

pub(super) fn routes() -> Router<SimState> {
    Router::new()
        .route("/xrpc/app.bsky.actor.getProfile", get(get_profile))
        .route("/xrpc/app.bsky.feed.getAuthorFeed", get(get_author_feed))
        .route("/xrpc/{*rest}", any(not_implemented))
}

// ---------------------------------------------------------------------------------------------
// Answers.

fn respond(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

fn xrpc_error(status: StatusCode, error: &str, message: &str) -> Response {
    respond(status, &json!({"error": error, "message": message}))
}

fn invalid(message: String) -> Response {
    xrpc_error(StatusCode::BAD_REQUEST, "InvalidRequest", &message)
}

/// The `rate-limited` scenario's refusal; None otherwise.
fn throttled(state: &SimState) -> Option<Response> {
    if state.social().scenario() != SocialScenario::RateLimited {
        return None;
    }
    let mut response = xrpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimitExceeded",
        "Rate Limit Exceeded",
    );
    let reset = (Utc::now() + THROTTLED_RESET).timestamp();
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", THROTTLED_LIMIT.to_string()),
        ("ratelimit-remaining", "0".to_string()),
        ("ratelimit-reset", reset.to_string()),
        ("ratelimit-policy", format!("{THROTTLED_LIMIT};w=300")),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    Some(response)
}

async fn not_implemented(State(state): State<SimState>) -> Response {
    throttled(&state).unwrap_or_else(|| {
        xrpc_error(
            StatusCode::NOT_IMPLEMENTED,
            "MethodNotImplemented",
            "Method Not Implemented",
        )
    })
}

/// Checks `actor`: Ok for the simulated account, else the message of the AppView's 400.
fn check_actor(pairs: &[(String, String)]) -> Result<(), String> {
    let Some(actor) = param(pairs, "actor") else {
        return Err("Error: Params must have the property \"actor\"".to_string());
    };
    let actor = actor.trim().trim_start_matches('@');
    let plausible = actor.starts_with("did:")
        || (actor.contains('.')
            && actor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')));
    if !plausible {
        return Err(format!(
            "Error: actor must be a valid did or a handle (got {:?})",
            shown(actor)
        ));
    }
    if actor == SIM_BLUESKY_DID || actor.eq_ignore_ascii_case(SIM_BLUESKY_HANDLE) {
        Ok(())
    } else {
        Err("Profile not found".to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Records and views.

/// A TID (record key): microseconds and a clock id, base32-sortable, 13 characters.
fn tid(at: DateTime<Utc>, seq: u64) -> String {
    const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
    let micros = millis(at).saturating_mul(1000);
    let value = ((micros << 10) | (seq & 0x3ff)) & 0x7fff_ffff_ffff_ffff;
    (0..13)
        .map(|i| {
            let shift = 60 - 5 * i;
            let digit = usize::try_from((value >> shift) & 31).unwrap_or(0);
            char::from(ALPHABET[digit])
        })
        .collect()
}

/// A CID-looking string (`bafyrei…`), stable for a record.
fn cid(at: DateTime<Utc>, seq: u64, salt: u64) -> String {
    format!(
        "bafyrei{}",
        pseudo_chars(seed(at, seq, salt), b"abcdefghijklmnopqrstuvwxyz234567", 52)
    )
}

/// Who wrote a post.
#[derive(Debug, Clone, Copy)]
enum Author {
    Own,
    Other,
}

impl Author {
    fn did(self) -> &'static str {
        match self {
            Author::Own => SIM_BLUESKY_DID,
            Author::Other => OTHER_DID,
        }
    }

    fn view(self) -> Value {
        let (handle, name, created) = match self {
            Author::Own => (
                SIM_BLUESKY_HANDLE,
                "Microsoft 365 Status",
                "2023-11-14T17:02:41.118Z",
            ),
            Author::Other => (
                OTHER_HANDLE,
                "Microsoft 365 Tips",
                "2024-02-06T09:15:03.500Z",
            ),
        };
        json!({
            "did": self.did(),
            "handle": handle,
            "displayName": name,
            "avatar": format!("https://cdn.bsky.app/img/avatar/plain/{}/bafkreiavatar@jpeg", self.did()),
            "associated": {"chat": {"allowIncoming": "none"}},
            "labels": [],
            "createdAt": created,
        })
    }
}

/// One post, ready to render as a post view.
#[derive(Debug, Clone)]
struct BskyPost {
    author: Author,
    at: DateTime<Utc>,
    seq: u64,
    text: String,
    /// (root, parent) references, for replies.
    reply: Option<(Ref, Ref)>,
}

#[derive(Debug, Clone)]
struct Ref {
    uri: String,
    cid: String,
}

impl BskyPost {
    fn uri(&self) -> String {
        format!(
            "at://{}/app.bsky.feed.post/{}",
            self.author.did(),
            tid(self.at, self.seq)
        )
    }

    fn cid(&self) -> String {
        cid(self.at, self.seq, 0xb5c)
    }

    fn reference(&self) -> Ref {
        Ref {
            uri: self.uri(),
            cid: self.cid(),
        }
    }

    /// `app.bsky.feed.defs#postView`.
    fn view(&self) -> Value {
        let mut record = Map::new();
        record.insert("$type".into(), json!("app.bsky.feed.post"));
        record.insert("createdAt".into(), json!(iso_ms(self.at)));
        record.insert("langs".into(), json!(["en"]));
        record.insert("text".into(), json!(self.text));
        let facets = link_facets(&self.text);
        if !facets.is_empty() {
            record.insert("facets".into(), json!(facets));
        }
        if let Some((root, parent)) = &self.reply {
            record.insert(
                "reply".into(),
                json!({
                    "root": {"cid": root.cid, "uri": root.uri},
                    "parent": {"cid": parent.cid, "uri": parent.uri},
                }),
            );
        }
        let s = seed(self.at, self.seq, 0x51b);
        json!({
            "uri": self.uri(),
            "cid": self.cid(),
            "author": self.author.view(),
            "record": Value::Object(record),
            "replyCount": s % 40,
            "repostCount": 10 + (s >> 8) % 200,
            "likeCount": 30 + (s >> 16) % 900,
            "quoteCount": (s >> 24) % 12,
            "indexedAt": iso_ms(self.at),
            "labels": [],
        })
    }

    /// The view with its `$type`, as the AppView writes it inside `reply`.
    fn typed_view(&self) -> Value {
        let mut view = self.view();
        view["$type"] = json!("app.bsky.feed.defs#postView");
        view
    }
}

/// `app.bsky.richtext.facet#link` facets for the links in `text` (UTF-8 byte offsets).
fn link_facets(text: &str) -> Vec<Value> {
    let mut offset = 0;
    let mut facets = Vec::new();
    for piece in pieces(text) {
        match piece {
            Piece::Text(plain) => offset += plain.len(),
            Piece::Link(link) => {
                facets.push(json!({
                    "index": {"byteStart": offset, "byteEnd": offset + link.len()},
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": link}],
                }));
                offset += link.len();
            }
        }
    }
    facets
}

/// What a feed item is.
#[derive(Debug, Clone)]
enum Item {
    /// The account's own post, with its thread's root and parent when it is a reply.
    Own {
        post: BskyPost,
        thread: Option<Box<(BskyPost, BskyPost)>>,
    },
    /// Another account's post, reposted by the account at `at`.
    Repost { post: BskyPost, at: DateTime<Utc> },
}

impl Item {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Item::Own { post, .. } => post.at,
            Item::Repost { at, .. } => *at,
        }
    }

    fn is_reply(&self) -> bool {
        matches!(
            self,
            Item::Own {
                thread: Some(_),
                ..
            }
        )
    }

    fn render(&self) -> Value {
        match self {
            Item::Own { post, thread } => {
                let mut item = json!({"post": post.view()});
                if let Some(thread) = thread {
                    let (root, parent) = &**thread;
                    item["reply"] =
                        json!({"root": root.typed_view(), "parent": parent.typed_view()});
                }
                item
            }
            Item::Repost { post, at } => json!({
                "post": post.view(),
                "reason": {
                    "$type": "app.bsky.feed.defs#reasonRepost",
                    "by": Author::Own.view(),
                    "uri": format!("at://{SIM_BLUESKY_DID}/app.bsky.feed.repost/{}", tid(*at, SEQ_REBLOG)),
                    "cid": cid(*at, SEQ_REBLOG, 0x4e9),
                    "indexedAt": iso_ms(*at),
                },
            }),
        }
    }
}

/// The account's pinned introduction post.
fn pinned(snapshot: &Snapshot) -> BskyPost {
    BskyPost {
        author: Author::Own,
        at: snapshot.created - PIN_AGE,
        seq: SEQ_PIN,
        text: PINNED_TEXT.to_string(),
        reply: None,
    }
}

/// Every item of the account's feed, newest first.
fn items(snapshot: &Snapshot) -> Vec<Item> {
    let own: Vec<BskyPost> = snapshot
        .posts
        .iter()
        .map(|post| BskyPost {
            author: Author::Own,
            at: post.at,
            seq: post.seq,
            text: post.text.clone(),
            reply: None,
        })
        .collect();
    let mut items: Vec<Item> = snapshot
        .posts
        .iter()
        .enumerate()
        .map(|(i, post)| {
            let mut this = own[i].clone();
            let thread = post.parent.map(|parent| {
                let root = own[post.root.min(i)].clone();
                let parent = own[parent.min(i)].clone();
                this.reply = Some((root.reference(), parent.reference()));
                Box::new((root, parent))
            });
            Item::Own { post: this, thread }
        })
        .collect();
    items.push(Item::Own {
        post: pinned(snapshot),
        thread: None,
    });
    let repost_at = snapshot.created - REPOST_AGE;
    items.push(Item::Repost {
        post: BskyPost {
            author: Author::Other,
            at: repost_at - TimeDelta::hours(3),
            seq: SEQ_OTHER,
            text: OTHER_TEXT.to_string(),
            reply: None,
        },
        at: repost_at,
    });
    items.sort_by_key(|item| std::cmp::Reverse(item.at()));
    items
}

// ---------------------------------------------------------------------------------------------
// Handlers.

async fn get_profile(State(state): State<SimState>, RawQuery(query): RawQuery) -> Response {
    if let Some(refused) = throttled(&state) {
        return refused;
    }
    let pairs = query_pairs(query.as_deref());
    if let Err(message) = check_actor(&pairs) {
        return invalid(message);
    }
    let snapshot = state.social().snapshot();
    let pin = pinned(&snapshot);
    let mut profile = Author::Own.view();
    if let Some(object) = profile.as_object_mut() {
        object.insert(
            "associated".into(),
            json!({"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": false,
                   "chat": {"allowIncoming": "none"}}),
        );
        object.insert(
            "description".into(),
            json!(
                "Updates about Microsoft 365 service incidents.\nFor your organization's \
                 status, see Service health in the Microsoft 365 admin center."
            ),
        );
        object.insert("indexedAt".into(), json!(iso_ms(snapshot.created)));
        object.insert("followersCount".into(), json!(24_906));
        object.insert("followsCount".into(), json!(1));
        object.insert("postsCount".into(), json!(snapshot.posts.len() + 1));
        object.insert(
            "pinnedPost".into(),
            json!({"cid": pin.cid(), "uri": pin.uri()}),
        );
    }
    respond(StatusCode::OK, &profile)
}

async fn get_author_feed(State(state): State<SimState>, RawQuery(query): RawQuery) -> Response {
    if let Some(refused) = throttled(&state) {
        return refused;
    }
    let pairs = query_pairs(query.as_deref());
    if let Err(message) = check_actor(&pairs) {
        return invalid(message);
    }
    let limit = match param(&pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(value) => match value.parse::<i64>() {
            Ok(n) if n < 1 => return invalid("Error: limit can not be less than 1".to_string()),
            Ok(n) if n > MAX_LIMIT as i64 => {
                return invalid(format!("Error: limit can not be greater than {MAX_LIMIT}"));
            }
            Ok(n) => usize::try_from(n).unwrap_or(DEFAULT_LIMIT),
            Err(_) => return invalid("Error: limit must be an integer".to_string()),
        },
    };
    let filter = match param(&pairs, "filter") {
        None => "posts_with_replies",
        Some(value) if FILTERS.contains(&value) => value,
        Some(_) => {
            return invalid(format!(
                "Error: filter must be one of ({})",
                FILTERS.join("|")
            ));
        }
    };
    let include_pins = match param(&pairs, "includePins") {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => return invalid("Error: includePins must be a boolean".to_string()),
    };
    let before = match param(&pairs, "cursor") {
        None | Some("") => None,
        Some(cursor) => match DateTime::parse_from_rfc3339(cursor) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => return invalid("Malformed cursor".to_string()),
        },
    };
    let snapshot = state.social().snapshot();
    let mut all = items(&snapshot);
    match filter {
        "posts_no_replies" => all.retain(|item| !item.is_reply()),
        "posts_with_media" | "posts_with_video" => all.clear(),
        _ => {}
    }
    if let Some(before) = before {
        all.retain(|item| item.at() < before);
    }
    let more = all.len() > limit;
    all.truncate(limit);
    let mut feed: Vec<Value> = Vec::with_capacity(all.len() + 1);
    if include_pins
        && before.is_none()
        && !matches!(filter, "posts_with_media" | "posts_with_video")
    {
        feed.push(json!({
            "post": pinned(&snapshot).view(),
            "reason": {"$type": "app.bsky.feed.defs#reasonPin"},
        }));
    }
    feed.extend(all.iter().map(Item::render));
    let mut body = json!({"feed": feed});
    if more && let Some(last) = all.last() {
        body["cursor"] = json!(iso_ms(last.at()));
    }
    respond(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tids_are_13_sortable_characters() {
        let early = DateTime::from_timestamp_millis(1_700_000_000_000).expect("valid");
        let later = early + TimeDelta::milliseconds(1);
        let a = tid(early, 5);
        let b = tid(later, 1);
        assert_eq!(a.len(), 13);
        assert!(a < b, "{a} < {b}");
        assert!(a.starts_with('3'), "{a}");
    }

    #[test]
    fn facets_count_utf8_bytes() {
        let facets = link_facets("We’re at https://a.example now");
        assert_eq!(facets[0]["index"]["byteStart"], "We’re at ".len());
        assert_eq!(
            facets[0]["index"]["byteEnd"],
            "We’re at https://a.example".len()
        );
    }
}
