//! Mastodon's public REST API for the one local account it knows, `@MSFT365Status` (see the
//! design folder's `reference/social.md` §3 and the recorded `mastodon-*` fixtures).
//!
//! - `GET /api/v1/accounts/lookup?acct=MSFT365Status` (also `@MSFT365Status` and
//!   `MSFT365Status@<this host>`): the Account; anything else is 404 `{"error":"Record not found"}`.
//! - `GET /api/v1/accounts/{id}`: the Account (404 for another id).
//! - `GET /api/v1/accounts/{id}/statuses`: Status[] newest first. `limit` (default 20, clamped to
//!   1..=40), `max_id` (older than), `since_id` (the newest statuses newer than it), `min_id` (the
//!   statuses immediately newer than it, still served newest first), `exclude_reblogs`,
//!   `exclude_replies` (which, as on Mastodon, keeps the account's replies to itself, so every
//!   thread post stays), `only_media` / `pinned` / `tagged` (nothing matches). `content` is
//!   sanitized HTML (`<p>…</p>`, links as Mastodon writes them); follow-ups carry
//!   `in_reply_to_id`; one reblog of another account's post sits in the timeline. A `Link`
//!   header gives `rel="next"` (`max_id`, only when the page is full) and `rel="prev"`
//!   (`min_id`), as Mastodon does.
//!
//! Every answer carries `X-RateLimit-Limit/Remaining/Reset` (300 per 5 minutes, the reset an
//! ISO-8601 time); over the limit, or in the `rate-limited` scenario, 429
//! `{"error":"Too many requests"}`.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::{
    Budget, Limited, OTHER_TEXT, Piece, REPOST_AGE, SEQ_OTHER, SEQ_REBLOG, SIM_MASTODON_ACCOUNT_ID,
    SIM_MASTODON_ACCT, Snapshot, base_url, html_escape, iso_ms, millis, param, pieces, query_pairs,
    seed, shown,
};
use crate::simulator::{SimState, SocialScenario};

const JSON: &str = "application/json; charset=utf-8";
const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
/// How far ahead `rate-limited` puts `X-RateLimit-Reset`.
const THROTTLED_RESET: TimeDelta = TimeDelta::seconds(5);

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 40;

/// The other (remote) account whose post the simulated account reblogged.
const OTHER_ACCOUNT_ID: &str = "109302111444875312";
const OTHER_HOST: &str = "social.example";

/// The request parameters that Mastodon keeps in its `Link` URLs.
const LINK_PARAMS: &[&str] = &[
    "limit",
    "only_media",
    "exclude_replies",
    "exclude_reblogs",
    "pinned",
    "tagged",
];

pub(super) fn routes() -> Router<SimState> {
    Router::new()
        .route("/api/v1/accounts/lookup", get(lookup))
        .route("/api/v1/accounts/{id}", get(account))
        .route("/api/v1/accounts/{id}/statuses", get(statuses))
        .route("/api/v1/{*rest}", any(not_found_route))
}

// ---------------------------------------------------------------------------------------------
// Answers.

fn respond(status: StatusCode, body: &Value, budget: &Budget, extra: Option<String>) -> Response {
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, JSON),
            (header::CACHE_CONTROL, "private, no-store"),
            (header::VARY, "Authorization, Origin"),
        ],
        body.to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (LIMIT, budget.limit.to_string()),
        (REMAINING, budget.remaining.to_string()),
        (
            RESET,
            budget.reset.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if let Some(link) = extra
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        headers.insert(header::LINK, value);
    }
    response
}

fn not_found(budget: &Budget) -> Response {
    respond(
        StatusCode::NOT_FOUND,
        &json!({"error": "Record not found"}),
        budget,
        None,
    )
}

fn bad_request(message: String, budget: &Budget) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        &json!({"error": message}),
        budget,
        None,
    )
}

/// Counts the request and lets it through, or answers 429.
fn gate(state: &SimState) -> Result<Budget, Box<Response>> {
    let social = state.social();
    let mut budget = social.take(Limited::Mastodon);
    if social.scenario() == SocialScenario::RateLimited {
        budget.remaining = 0;
        budget.reset = Utc::now() + THROTTLED_RESET;
    } else if !budget.exceeded {
        return Ok(budget);
    }
    Err(Box::new(respond(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"error": "Too many requests"}),
        &budget,
        None,
    )))
}

async fn not_found_route(State(state): State<SimState>) -> Response {
    match gate(&state) {
        Ok(budget) => not_found(&budget),
        Err(refused) => *refused,
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts.

/// A date from a Mastodon snowflake id (milliseconds in the high bits), at midnight as Mastodon
/// stores account creation.
fn id_date(id: &str) -> DateTime<Utc> {
    let ms = id.parse::<u64>().map(|id| id >> 16).unwrap_or(0);
    let at = DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default();
    at.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|midnight| midnight.and_utc())
        .unwrap_or(at)
}

/// An Account entity as Mastodon serialises it; the fields that differ between the simulated
/// account and the one whose post it reblogs are arguments.
struct AccountFields<'a> {
    id: &'a str,
    username: &'a str,
    acct: String,
    display_name: &'a str,
    note: &'a str,
    base: String,
    followers: u64,
    following: u64,
    statuses: usize,
    last_status_at: DateTime<Utc>,
}

fn account_json(a: AccountFields<'_>) -> Value {
    let base = a.base;
    let username = a.username;
    json!({
        "id": a.id,
        "username": username,
        "acct": a.acct,
        "display_name": a.display_name,
        "locked": false,
        "bot": false,
        "discoverable": true,
        "indexable": true,
        "group": false,
        "created_at": iso_ms(id_date(a.id)),
        "note": a.note,
        "url": format!("{base}/@{username}"),
        "uri": format!("{base}/users/{username}"),
        "avatar": format!("{base}/avatars/original/missing.png"),
        "avatar_static": format!("{base}/avatars/original/missing.png"),
        "header": format!("{base}/headers/original/missing.png"),
        "header_static": format!("{base}/headers/original/missing.png"),
        "followers_count": a.followers,
        "following_count": a.following,
        "statuses_count": a.statuses,
        "last_status_at": a.last_status_at.format("%Y-%m-%d").to_string(),
        "hide_collections": false,
        "noindex": false,
        "emojis": [],
        "roles": [],
        "fields": [],
    })
}

fn own_account(base: &str, snapshot: &Snapshot) -> Value {
    account_json(AccountFields {
        id: SIM_MASTODON_ACCOUNT_ID,
        username: SIM_MASTODON_ACCT,
        acct: SIM_MASTODON_ACCT.to_string(),
        display_name: "Microsoft 365 Status",
        note: "<p>Updates about Microsoft 365 service incidents. For the latest on your \
               organization, see Service health in the Microsoft 365 admin center.</p>",
        base: base.to_string(),
        followers: 18_342,
        following: 2,
        statuses: snapshot.posts.len() + 1,
        last_status_at: snapshot
            .posts
            .last()
            .map(|p| p.at)
            .unwrap_or(snapshot.created),
    })
}

fn other_account() -> Value {
    account_json(AccountFields {
        id: OTHER_ACCOUNT_ID,
        username: "M365Tips",
        acct: format!("M365Tips@{OTHER_HOST}"),
        display_name: "Microsoft 365 Tips",
        note: "<p>Tips and news for getting more out of Microsoft 365.</p>",
        base: format!("https://{OTHER_HOST}"),
        followers: 5_120,
        following: 88,
        statuses: 1_204,
        last_status_at: Utc::now(),
    })
}

/// Whether `acct` names the simulated account: `user`, `@user` or `user@<this host>`.
fn is_own_acct(acct: &str, host: &str) -> bool {
    let acct = acct.trim().trim_start_matches('@');
    let (user, domain) = match acct.split_once('@') {
        Some((user, domain)) => (user, Some(domain)),
        None => (acct, None),
    };
    let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
    user.eq_ignore_ascii_case(SIM_MASTODON_ACCT)
        && domain.is_none_or(|d| d.eq_ignore_ascii_case(host) || d.eq_ignore_ascii_case(host_only))
}

async fn lookup(
    State(state): State<SimState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let budget = match gate(&state) {
        Ok(budget) => budget,
        Err(refused) => return *refused,
    };
    let pairs = query_pairs(query.as_deref());
    let host = crate::simulator::graph::host(&headers);
    match param(&pairs, "acct") {
        Some(acct) if is_own_acct(acct, &host) => {
            let snapshot = state.social().snapshot();
            respond(
                StatusCode::OK,
                &own_account(&base_url(&headers), &snapshot),
                &budget,
                None,
            )
        }
        _ => not_found(&budget),
    }
}

async fn account(
    State(state): State<SimState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let budget = match gate(&state) {
        Ok(budget) => budget,
        Err(refused) => return *refused,
    };
    if id != SIM_MASTODON_ACCOUNT_ID {
        return not_found(&budget);
    }
    let snapshot = state.social().snapshot();
    respond(
        StatusCode::OK,
        &own_account(&base_url(&headers), &snapshot),
        &budget,
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Statuses.

/// A Mastodon id from a time and a sequence number (milliseconds in the high bits).
fn mastodon_id(at: DateTime<Utc>, seq: u64) -> u64 {
    (millis(at) << 16) | (seq & 0xffff)
}

/// Sanitized HTML as Mastodon stores it: one paragraph, links with hidden scheme.
fn content_html(text: &str) -> String {
    let mut html = String::from("<p>");
    for piece in pieces(text) {
        match piece {
            Piece::Text(plain) => html.push_str(&html_escape(plain)),
            Piece::Link(link) => {
                let (scheme, rest) = link
                    .find("://")
                    .map_or(("", link), |i| link.split_at(i + 3));
                let (shown_part, hidden, class) = if rest.chars().count() > 30 {
                    let cut = rest.char_indices().nth(30).map_or(rest.len(), |(i, _)| i);
                    (&rest[..cut], &rest[cut..], "ellipsis")
                } else {
                    (rest, "", "")
                };
                html.push_str(&format!(
                    "<a href=\"{}\" target=\"_blank\" rel=\"nofollow noopener\" translate=\"no\">\
                     <span class=\"invisible\">{}</span><span class=\"{class}\">{}</span>\
                     <span class=\"invisible\">{}</span></a>",
                    html_escape(link),
                    html_escape(scheme),
                    html_escape(shown_part),
                    html_escape(hidden),
                ));
            }
        }
    }
    html.push_str("</p>");
    html
}

/// One entry of the account's timeline.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// The account's own post (index into the snapshot).
    Own(usize),
    /// The reblog of the other account's post.
    Reblog,
}

struct Timeline<'a> {
    snapshot: &'a Snapshot,
    base: String,
    account: Value,
}

impl Timeline<'_> {
    fn reblog_at(&self) -> DateTime<Utc> {
        self.snapshot.created - REPOST_AGE
    }

    fn original_at(&self) -> DateTime<Utc> {
        self.reblog_at() - TimeDelta::hours(3)
    }

    fn id(&self, entry: Entry) -> u64 {
        match entry {
            Entry::Own(i) => {
                let post = &self.snapshot.posts[i];
                mastodon_id(post.at, post.seq)
            }
            Entry::Reblog => mastodon_id(self.reblog_at(), SEQ_REBLOG),
        }
    }

    fn render(&self, entry: Entry) -> Value {
        let id = self.id(entry);
        match entry {
            Entry::Own(i) => {
                let post = &self.snapshot.posts[i];
                let parent = post
                    .parent
                    .and_then(|p| self.snapshot.posts.get(p))
                    .map(|p| mastodon_id(p.at, p.seq).to_string());
                let replies = usize::from(
                    self.snapshot
                        .posts
                        .iter()
                        .any(|other| other.parent == Some(i)),
                );
                let s = seed(post.at, post.seq, 0x3a5);
                json!({
                    "id": id.to_string(),
                    "created_at": iso_ms(post.at),
                    "in_reply_to_id": parent,
                    "in_reply_to_account_id": parent.as_ref().map(|_| SIM_MASTODON_ACCOUNT_ID),
                    "sensitive": false,
                    "spoiler_text": "",
                    "visibility": "public",
                    "language": "en",
                    "uri": format!("{}/users/{SIM_MASTODON_ACCT}/statuses/{id}", self.base),
                    "url": format!("{}/@{SIM_MASTODON_ACCT}/{id}", self.base),
                    "replies_count": replies,
                    "reblogs_count": 10 + s % 90,
                    "favourites_count": 20 + (s >> 8) % 200,
                    "quotes_count": 0,
                    "edited_at": null,
                    "content": content_html(&post.text),
                    "reblog": null,
                    "account": self.account,
                    "media_attachments": [],
                    "mentions": [],
                    "tags": [],
                    "emojis": [],
                    "card": null,
                    "poll": null,
                })
            }
            Entry::Reblog => {
                let original_id = mastodon_id(self.original_at(), SEQ_OTHER);
                let other = format!("https://{OTHER_HOST}");
                let original = json!({
                    "id": original_id.to_string(),
                    "created_at": iso_ms(self.original_at()),
                    "in_reply_to_id": null,
                    "in_reply_to_account_id": null,
                    "sensitive": false,
                    "spoiler_text": "",
                    "visibility": "public",
                    "language": "en",
                    "uri": format!("{other}/users/M365Tips/statuses/{original_id}"),
                    "url": format!("{other}/@M365Tips/{original_id}"),
                    "replies_count": 3,
                    "reblogs_count": 41,
                    "favourites_count": 97,
                    "quotes_count": 0,
                    "edited_at": null,
                    "content": content_html(OTHER_TEXT),
                    "reblog": null,
                    "account": other_account(),
                    "media_attachments": [],
                    "mentions": [],
                    "tags": [],
                    "emojis": [],
                    "card": null,
                    "poll": null,
                });
                let activity = format!(
                    "{}/users/{SIM_MASTODON_ACCT}/statuses/{id}/activity",
                    self.base
                );
                json!({
                    "id": id.to_string(),
                    "created_at": iso_ms(self.reblog_at()),
                    "in_reply_to_id": null,
                    "in_reply_to_account_id": null,
                    "sensitive": false,
                    "spoiler_text": "",
                    "visibility": "public",
                    "language": null,
                    "uri": activity,
                    "url": activity,
                    "replies_count": 0,
                    "reblogs_count": 0,
                    "favourites_count": 0,
                    "quotes_count": 0,
                    "edited_at": null,
                    "content": "",
                    "reblog": original,
                    "account": self.account,
                    "media_attachments": [],
                    "mentions": [],
                    "tags": [],
                    "emojis": [],
                    "card": null,
                    "poll": null,
                })
            }
        }
    }
}

/// Rails' boolean cast, as Mastodon reads `exclude_replies=…`: absent or empty is false, and
/// so are `0`, `f`, `false`, `off` (any case); anything else is true.
fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        !v.is_empty()
            && !["0", "f", "false", "off"]
                .iter()
                .any(|no| v.eq_ignore_ascii_case(no))
    })
}

/// A status id parameter; Err is the message of a 400.
fn parse_status_id(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, String> {
    match param(pairs, name) {
        None | Some("") => Ok(None),
        Some(value) => value
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{name} must be a status id, not {:?}", shown(value))),
    }
}

async fn statuses(
    State(state): State<SimState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let budget = match gate(&state) {
        Ok(budget) => budget,
        Err(refused) => return *refused,
    };
    if id != SIM_MASTODON_ACCOUNT_ID {
        return not_found(&budget);
    }
    let pairs = query_pairs(query.as_deref());
    let limit = match param(&pairs, "limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(value) => match value.parse::<usize>() {
            Ok(n) => n.clamp(1, MAX_LIMIT),
            Err(_) => {
                return bad_request(
                    format!("limit must be a number, not {:?}", shown(value)),
                    &budget,
                );
            }
        },
    };
    let (max_id, since_id, min_id) = match (
        parse_status_id(&pairs, "max_id"),
        parse_status_id(&pairs, "since_id"),
        parse_status_id(&pairs, "min_id"),
    ) {
        (Ok(max), Ok(since), Ok(min)) => (max, since, min),
        (Err(message), _, _) | (_, Err(message), _) | (_, _, Err(message)) => {
            return bad_request(message, &budget);
        }
    };
    let snapshot = state.social().snapshot();
    let base = base_url(&headers);
    let timeline = Timeline {
        account: own_account(&base, &snapshot),
        snapshot: &snapshot,
        base,
    };
    let nothing = truthy(param(&pairs, "only_media"))
        || truthy(param(&pairs, "pinned"))
        || param(&pairs, "tagged").is_some_and(|t| !t.is_empty());
    let mut entries: Vec<Entry> = (0..snapshot.posts.len()).map(Entry::Own).collect();
    if !truthy(param(&pairs, "exclude_reblogs")) {
        entries.push(Entry::Reblog);
    }
    // `exclude_replies` keeps replies to oneself, and every reply here is one.
    if nothing {
        entries.clear();
    }
    entries.retain(|&entry| {
        let id = timeline.id(entry);
        max_id.is_none_or(|max| id < max)
            && since_id.is_none_or(|since| id > since)
            && min_id.is_none_or(|min| id > min)
    });
    entries.sort_by_key(|&entry| std::cmp::Reverse(timeline.id(entry)));
    let page: Vec<Entry> = if min_id.is_some() {
        // The statuses immediately newer than min_id, served newest first.
        let skip = entries.len().saturating_sub(limit);
        entries[skip..].to_vec()
    } else {
        entries.into_iter().take(limit).collect()
    };
    let body: Vec<Value> = page.iter().map(|&entry| timeline.render(entry)).collect();
    let link = match (page.first(), page.last()) {
        (Some(&newest), Some(&oldest)) => {
            let url = |cursor: &str, id: u64| {
                let mut query = form_urlencoded::Serializer::new(String::new());
                for name in LINK_PARAMS {
                    if let Some(value) = param(&pairs, name) {
                        query.append_pair(name, value);
                    }
                }
                query.append_pair(cursor, &id.to_string());
                format!(
                    "<{}/api/v1/accounts/{SIM_MASTODON_ACCOUNT_ID}/statuses?{}>",
                    timeline.base,
                    query.finish()
                )
            };
            let prev = format!("{}; rel=\"prev\"", url("min_id", timeline.id(newest)));
            Some(if page.len() == limit {
                format!(
                    "{}; rel=\"next\", {prev}",
                    url("max_id", timeline.id(oldest))
                )
            } else {
                prev
            })
        }
        _ => None,
    };
    respond(StatusCode::OK, &json!(body), &budget, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_one_paragraph_with_mastodon_links() {
        let html = content_html("It's fixed: see https://status.cloud.microsoft.");
        assert!(
            html.starts_with("<p>It&#39;s fixed: see <a href=\"https://status.cloud.microsoft\"")
        );
        assert!(html.contains("<span class=\"invisible\">https://</span><span class=\"\">status.cloud.microsoft</span>"));
        assert!(html.ends_with("</a>.</p>"));
        let long = content_html("https://learn.microsoft.com/microsoftteams/whats-new");
        assert!(long.contains("<span class=\"ellipsis\">learn.microsoft.com/microsoftt</span><span class=\"invisible\">eams/whats-new</span>"), "{long}");
    }

    #[test]
    fn own_acct_forms() {
        assert!(is_own_acct("MSFT365Status", "127.0.0.1:8900"));
        assert!(is_own_acct("@msft365status", "127.0.0.1:8900"));
        assert!(is_own_acct("MSFT365Status@127.0.0.1", "127.0.0.1:8900"));
        assert!(is_own_acct(
            "MSFT365Status@127.0.0.1:8900",
            "127.0.0.1:8900"
        ));
        assert!(!is_own_acct(
            "MSFT365Status@mastodon.social",
            "127.0.0.1:8900"
        ));
        assert!(!is_own_acct("someone", "127.0.0.1:8900"));
    }

    #[test]
    fn rails_booleans() {
        assert!(truthy(Some("true")) && truthy(Some("1")) && truthy(Some("yes")));
        assert!(!truthy(None) && !truthy(Some("")) && !truthy(Some("False")) && !truthy(Some("0")));
    }
}
