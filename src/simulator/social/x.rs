//! X API v2, `api.x.com/2`, for the one account it knows, @MSFT365Status (see the design
//! folder's `reference/social.md` §1 and the recorded `x-v2-*` fixtures).
//!
//! - `GET /2/users/by/username/{username}`: `{"data":{"id","name","username"}}` for
//!   `MSFT365Status` (any case); any other well-formed username is 200 with only `errors[]`
//!   (`resource-not-found`), as X answers.
//! - `GET /2/users/{id}/tweets`: newest first; `max_results` (5..=100, default 10),
//!   `since_id` / `until_id` (exclusive), `start_time` / `end_time`, `pagination_token`
//!   (`meta.next_token` is served while more posts remain), `exclude=replies,retweets`,
//!   `tweet.fields` (or `post.fields`), `expansions` (`author_id`, `in_reply_to_user_id`,
//!   `referenced_tweets.id`). `meta{newest_id, oldest_id, result_count, next_token?}`; no match
//!   is exactly `{"meta":{"result_count":0}}`. Unknown query parameters, out-of-range values and
//!   unknown field names are 400 `invalid-request`, like X.
//!
//! Both need `Authorization: Bearer <SIM_X_BEARER_TOKEN>` (else the real 401 problem). Every
//! answer carries `x-rate-limit-limit/remaining/reset` (epoch seconds) of its endpoint's
//! 15-minute window (300 user lookups, 1500 timeline reads); over the limit is 429. The social
//! scenario's X errors (401, 402, 403, 429 usage cap, 429 rate limit) come after authentication.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::{
    Budget, Limited, Piece, Post, SIM_X_BEARER_TOKEN, SIM_X_USER_ID, SIM_X_USERNAME, Snapshot,
    iso_ms, millis, param, pieces, pseudo_chars, query_pairs, seed, shown,
};
use crate::simulator::{SimState, SocialScenario};

/// X's snowflake epoch (2010-11-04T01:42:54.657Z), in Unix milliseconds.
const X_EPOCH_MS: u64 = 1_288_834_974_657;
/// What every pagination token starts with (the rest is the last id served, base 36).
const TOKEN_PREFIX: &str = "7140dibdnow9c7btw";
/// How far ahead `rate-limited` puts `x-rate-limit-reset`.
const THROTTLED_RESET: TimeDelta = TimeDelta::seconds(5);

const JSON: &str = "application/json; charset=utf-8";
const PROBLEM_JSON: &str = "application/problem+json";
const LIMIT: HeaderName = HeaderName::from_static("x-rate-limit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-rate-limit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-rate-limit-reset");

/// Every `tweet.fields` value X knows (fields this simulator does not fill are accepted and left
/// out, as X leaves out fields a post does not have).
const TWEET_FIELDS: &[&str] = &[
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "media_metadata",
    "non_public_metrics",
    "note_tweet",
    "organic_metrics",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "scopes",
    "source",
    "suggested_source_links",
    "text",
    "withheld",
];

const EXPANSIONS: &[&str] = &[
    "article.cover_media",
    "article.media_entities",
    "attachments.media_keys",
    "attachments.media_source_tweet",
    "attachments.poll_ids",
    "author_id",
    "edit_history_tweet_ids",
    "entities.mentions.username",
    "entities.note.mentions.username",
    "geo.place_id",
    "in_reply_to_user_id",
    "referenced_tweets.id",
    "referenced_tweets.id.author_id",
];

const TIMELINE_PARAMS: &[&str] = &[
    "end_time",
    "exclude",
    "expansions",
    "max_results",
    "media.fields",
    "pagination_token",
    "place.fields",
    "poll.fields",
    "post.fields",
    "since_id",
    "start_time",
    "tweet.fields",
    "until_id",
    "user.fields",
];

pub(super) fn routes() -> Router<SimState> {
    Router::new()
        .route("/2/users/by/username/{username}", get(user_by_username))
        .route("/2/users/{id}/tweets", get(user_tweets))
        .route("/2", any(not_found))
        .route("/2/{*rest}", any(not_found))
}

// ---------------------------------------------------------------------------------------------
// The gate: budget, token, scenario.

/// Counts the request against `which` window and lets it through, or answers with X's refusal.
fn gate(state: &SimState, headers: &HeaderMap, which: Limited) -> Result<Budget, Box<Response>> {
    let social = state.social();
    let mut budget = social.take(which);
    let scenario = social.scenario();
    if scenario == SocialScenario::RateLimited {
        budget.remaining = 0;
        budget.reset = Utc::now() + THROTTLED_RESET;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if token != Some(SIM_X_BEARER_TOKEN) || scenario == SocialScenario::Unauthorized {
        return Err(Box::new(unauthorized(&budget)));
    }
    let refusal = match scenario {
        SocialScenario::CreditsDepleted => problem(
            StatusCode::PAYMENT_REQUIRED,
            json!({
                "type": "https://api.twitter.com/2/problems/credits",
                "title": "CreditsDepleted",
                "detail": "Your enrolled account does not have any credits to fulfill this request.",
            }),
            &budget,
        ),
        SocialScenario::UsageCapped => problem(
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "account_id": "1790466228514021376",
                "product_name": "standard-basic",
                "title": "UsageCapExceeded",
                "period": "Monthly",
                "scope": "Product",
                "detail": "Usage cap exceeded: Monthly product cap",
                "type": "https://api.twitter.com/2/problems/usage-capped",
            }),
            &budget,
        ),
        SocialScenario::ClientForbidden => problem(
            StatusCode::FORBIDDEN,
            json!({
                "client_id": "30110429",
                "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a project via the developer portal.",
                "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
                "title": "Client Forbidden",
                "required_enrollment": "Appropriate Level of API Access",
                "reason": "client-not-enrolled",
                "type": "https://api.twitter.com/2/problems/client-forbidden",
            }),
            &budget,
        ),
        SocialScenario::RateLimited => too_many_requests(&budget),
        _ if budget.exceeded => too_many_requests(&budget),
        _ => return Ok(budget),
    };
    Err(Box::new(refusal))
}

fn unauthorized(budget: &Budget) -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
        budget,
    )
}

fn too_many_requests(budget: &Budget) -> Response {
    problem(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"title": "Too Many Requests", "type": "about:blank", "status": 429, "detail": "Too Many Requests"}),
        budget,
    )
}

fn problem(status: StatusCode, body: Value, budget: &Budget) -> Response {
    respond(status, PROBLEM_JSON, &body, Some(budget))
}

/// A JSON answer with X's headers (and the window's, when counted).
fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: &Value,
    budget: Option<&Budget>,
) -> Response {
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache, no-store, max-age=0"),
        ],
        body.to_string(),
    )
        .into_response();
    if let Some(budget) = budget {
        let headers = response.headers_mut();
        for (name, value) in [
            (LIMIT, budget.limit.to_string()),
            (REMAINING, budget.remaining.to_string()),
            (RESET, budget.reset.timestamp().to_string()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// One bad query parameter: its name, its value and what is wrong, as X words it.
struct Invalid {
    name: String,
    value: String,
    message: String,
}

impl Invalid {
    fn new(name: &str, value: &str, message: String) -> Self {
        Invalid {
            name: name.to_string(),
            value: value.to_string(),
            message,
        }
    }

    fn respond(&self, budget: &Budget) -> Response {
        invalid(&self.name, &self.value, self.message.clone(), budget)
    }
}

/// X's 400 `invalid-request` problem for one bad query parameter.
fn invalid(name: &str, value: &str, message: String, budget: &Budget) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        json!({
            "errors": [{"parameters": {name: [shown(value)]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        }),
        budget,
    )
}

async fn not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        PROBLEM_JSON,
        &json!({"title": "Not Found Error", "type": "about:blank", "status": 404, "detail": "Not Found"}),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Users.

fn valid_username(name: &str) -> bool {
    (1..=15).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn user_object() -> Value {
    json!({"id": SIM_X_USER_ID, "name": "Microsoft 365 Status", "username": SIM_X_USERNAME})
}

/// When the account was created, read from its snowflake id.
fn account_created() -> DateTime<Utc> {
    let ms = SIM_X_USER_ID
        .parse::<u64>()
        .map(|id| (id >> 22) + X_EPOCH_MS)
        .unwrap_or(X_EPOCH_MS);
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
}

async fn user_by_username(
    State(state): State<SimState>,
    Path(username): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let budget = match gate(&state, &headers, Limited::XUserLookup) {
        Ok(budget) => budget,
        Err(refused) => return *refused,
    };
    if !valid_username(&username) {
        return invalid(
            "username",
            &username,
            format!(
                "The `username` query parameter value [{}] does not match ^[A-Za-z0-9_]{{1,15}}$",
                shown(&username)
            ),
            &budget,
        );
    }
    if !username.eq_ignore_ascii_case(SIM_X_USERNAME) {
        return respond(
            StatusCode::OK,
            JSON,
            &json!({"errors": [{
                "value": username,
                "detail": format!("Could not find user with username: [{username}]."),
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "username",
                "resource_id": username,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }]}),
            Some(&budget),
        );
    }
    let pairs = query_pairs(query.as_deref());
    let mut user = user_object();
    if let (Some(fields), Some(object)) = (param(&pairs, "user.fields"), user.as_object_mut()) {
        for field in fields.split(',').map(str::trim) {
            let value = match field {
                "created_at" => json!(iso_seconds(account_created())),
                "description" => json!(
                    "Official updates about Microsoft 365 service incidents. For the latest, \
                     visit the Service health page in the Microsoft 365 admin center."
                ),
                "protected" | "verified" => json!(false),
                "verified_type" => json!("business"),
                "url" => json!("https://t.co/m365status"),
                "public_metrics" => json!({
                    "followers_count": 1_284_412,
                    "following_count": 3,
                    "tweet_count": 4_018,
                    "listed_count": 2_911,
                    "like_count": 12,
                }),
                _ => continue,
            };
            object.insert(field.to_string(), value);
        }
    }
    respond(StatusCode::OK, JSON, &json!({"data": user}), Some(&budget))
}

// ---------------------------------------------------------------------------------------------
// The timeline.

/// A post's X id: a snowflake from its time, with its sequence number in the low bits.
pub(super) fn x_id(post: &Post) -> u64 {
    (millis(post.at).saturating_sub(X_EPOCH_MS) << 22) | (post.seq & 0x3f_ffff)
}

/// X's `created_at`: whole seconds, `.000Z`.
fn iso_seconds(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

/// A post's text as X serves it (links as `t.co` links, `&<>` escaped) and its URL entities.
fn x_text(post: &Post) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut urls = Vec::new();
    for (i, piece) in pieces(&post.text).into_iter().enumerate() {
        match piece {
            Piece::Text(plain) => {
                text.push_str(
                    &plain
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;"),
                );
            }
            Piece::Link(link) => {
                let code = pseudo_chars(
                    seed(post.at, post.seq, 0x7c0 + i as u64),
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                    10,
                );
                let short = format!("https://t.co/{code}");
                let start = text.chars().count();
                text.push_str(&short);
                let bare = link
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let display = if bare.chars().count() > 26 {
                    format!("{}…", bare.chars().take(25).collect::<String>())
                } else {
                    bare.to_string()
                };
                urls.push(json!({
                    "start": start,
                    "end": text.chars().count(),
                    "url": short,
                    "expanded_url": link,
                    "display_url": display,
                }));
            }
        }
    }
    (text, urls)
}

/// What the request asked for, validated.
struct TimelineQuery {
    max_results: usize,
    since_id: Option<u64>,
    until_id: Option<u64>,
    start_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    before: Option<u64>,
    exclude_replies: bool,
    fields: Vec<String>,
    expansions: Vec<String>,
}

fn parse_id(name: &str, value: &str) -> Result<u64, Invalid> {
    if (1..=19).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_digit())
        && let Ok(id) = value.parse()
    {
        return Ok(id);
    }
    Err(Invalid::new(
        name,
        value,
        format!(
            "The `{name}` query parameter value [{}] does not match ^[0-9]{{1,19}}$",
            shown(value)
        ),
    ))
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, Invalid> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            Invalid::new(
                name,
                value,
                format!(
                    "The `{name}` query parameter value [{}] is not a valid RFC 3339 timestamp",
                    shown(value)
                ),
            )
        })
}

/// Splits a comma list and checks every item against `known`.
fn parse_list(name: &str, value: &str, known: &[&str]) -> Result<Vec<String>, Invalid> {
    let mut items = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !known.contains(&item) {
            return Err(Invalid::new(
                name,
                item,
                format!(
                    "The `{name}` query parameter value [{}] is not one of [{}]",
                    shown(item),
                    known.join(",")
                ),
            ));
        }
        items.push(item.to_string());
    }
    Ok(items)
}

fn encode_token(id: u64) -> String {
    let mut digits = Vec::new();
    let mut n = id;
    loop {
        let d = u32::try_from(n % 36).unwrap_or(0);
        digits.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    format!("{TOKEN_PREFIX}{}", digits.into_iter().collect::<String>())
}

fn decode_token(token: &str) -> Option<u64> {
    let digits = token.strip_prefix(TOKEN_PREFIX)?;
    if digits.is_empty() || digits.len() > 13 {
        return None;
    }
    u64::from_str_radix(digits, 36).ok()
}

fn parse_timeline_query(pairs: &[(String, String)]) -> Result<TimelineQuery, Invalid> {
    if let Some((name, value)) = pairs
        .iter()
        .find(|(name, _)| !TIMELINE_PARAMS.contains(&name.as_str()))
    {
        return Err(Invalid::new(
            name,
            value,
            format!(
                "The query parameter [{}] is not one of [id,{}]",
                shown(name),
                TIMELINE_PARAMS.join(",")
            ),
        ));
    }
    let max_results = match param(pairs, "max_results") {
        None => 10,
        Some(value) => match value.parse::<usize>() {
            Ok(n) if (5..=100).contains(&n) => n,
            _ => {
                return Err(Invalid::new(
                    "max_results",
                    value,
                    format!(
                        "The `max_results` query parameter value [{}] is not between 5 and 100",
                        shown(value)
                    ),
                ));
            }
        },
    };
    let since_id = param(pairs, "since_id")
        .map(|v| parse_id("since_id", v))
        .transpose()?;
    let until_id = param(pairs, "until_id")
        .map(|v| parse_id("until_id", v))
        .transpose()?;
    if let (Some(since), Some(until)) = (since_id, until_id)
        && since >= until
    {
        return Err(Invalid::new(
            "since_id",
            &since.to_string(),
            format!(
                "The `since_id` query parameter value [{since}] must be less than the `until_id` query parameter value [{until}]"
            ),
        ));
    }
    let start_time = param(pairs, "start_time")
        .map(|v| parse_time("start_time", v))
        .transpose()?;
    let end_time = param(pairs, "end_time")
        .map(|v| parse_time("end_time", v))
        .transpose()?;
    let before = match param(pairs, "pagination_token") {
        None => None,
        Some(token) => Some(decode_token(token).ok_or_else(|| {
            Invalid::new(
                "pagination_token",
                token,
                format!(
                    "The `pagination_token` query parameter value [{}] is not valid",
                    shown(token)
                ),
            )
        })?),
    };
    let exclude = param(pairs, "exclude")
        .map(|v| parse_list("exclude", v, &["replies", "retweets"]))
        .transpose()?
        .unwrap_or_default();
    let mut fields = Vec::new();
    for name in ["tweet.fields", "post.fields"] {
        if let Some(value) = param(pairs, name) {
            fields.extend(parse_list(name, value, TWEET_FIELDS)?);
        }
    }
    let expansions = param(pairs, "expansions")
        .map(|v| parse_list("expansions", v, EXPANSIONS))
        .transpose()?
        .unwrap_or_default();
    Ok(TimelineQuery {
        max_results,
        since_id,
        until_id,
        // As X documents: the ids take precedence over the times.
        start_time: start_time.filter(|_| since_id.is_none()),
        end_time: end_time.filter(|_| until_id.is_none()),
        before,
        exclude_replies: exclude.iter().any(|e| e == "replies"),
        fields,
        expansions,
    })
}

/// One post in X's shape, with the asked-for fields.
fn tweet(snapshot: &Snapshot, index: usize, fields: &[String]) -> Value {
    let post = &snapshot.posts[index];
    let id = x_id(post).to_string();
    let (text, urls) = x_text(post);
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("text".into(), json!(text));
    object.insert("edit_history_tweet_ids".into(), json!([id]));
    let parent = post.parent.and_then(|p| snapshot.posts.get(p));
    for field in fields {
        let value = match field.as_str() {
            "created_at" => json!(iso_seconds(post.at)),
            "author_id" => json!(SIM_X_USER_ID),
            "conversation_id" => {
                json!(x_id(&snapshot.posts[post.root.min(index)]).to_string())
            }
            "in_reply_to_user_id" if parent.is_some() => json!(SIM_X_USER_ID),
            "referenced_tweets" => match parent {
                Some(parent) => json!([{"type": "replied_to", "id": x_id(parent).to_string()}]),
                None => continue,
            },
            "lang" => json!("en"),
            "possibly_sensitive" => json!(false),
            "reply_settings" => json!("everyone"),
            "edit_controls" => json!({
                "edits_remaining": 5,
                "is_edit_eligible": true,
                "editable_until": iso_ms(post.at + TimeDelta::hours(1)),
            }),
            "entities" if !urls.is_empty() => json!({"urls": urls}),
            "public_metrics" => {
                let s = seed(post.at, post.seq, 0x9e7);
                json!({
                    "retweet_count": 40 + s % 400,
                    "reply_count": 20 + (s >> 9) % 300,
                    "like_count": 100 + (s >> 18) % 900,
                    "quote_count": 5 + (s >> 27) % 60,
                    "bookmark_count": (s >> 33) % 30,
                    "impression_count": 50_000 + (s >> 40) % 400_000,
                })
            }
            _ => continue,
        };
        object.insert(field.clone(), value);
    }
    Value::Object(object)
}

async fn user_tweets(
    State(state): State<SimState>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let budget = match gate(&state, &headers, Limited::XTimeline) {
        Ok(budget) => budget,
        Err(refused) => return *refused,
    };
    let id = match parse_id("id", &user_id) {
        Ok(id) => id,
        Err(bad) => return bad.respond(&budget),
    };
    let pairs = query_pairs(query.as_deref());
    let query = match parse_timeline_query(&pairs) {
        Ok(query) => query,
        Err(bad) => return bad.respond(&budget),
    };
    if id.to_string() != SIM_X_USER_ID {
        return respond(
            StatusCode::OK,
            JSON,
            &json!({"errors": [{
                "value": user_id,
                "detail": format!("Could not find user with id: [{user_id}]."),
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "id",
                "resource_id": user_id,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }]}),
            Some(&budget),
        );
    }
    let snapshot = state.social().snapshot();
    let mut matching: Vec<usize> = (0..snapshot.posts.len())
        .filter(|&i| {
            let post = &snapshot.posts[i];
            let id = x_id(post);
            query.since_id.is_none_or(|since| id > since)
                && query.until_id.is_none_or(|until| id < until)
                && query.before.is_none_or(|before| id < before)
                && query.start_time.is_none_or(|start| post.at >= start)
                && query.end_time.is_none_or(|end| post.at <= end)
                && !(query.exclude_replies && post.parent.is_some())
        })
        .collect();
    matching.sort_by_key(|&i| std::cmp::Reverse(x_id(&snapshot.posts[i])));
    if matching.is_empty() {
        return respond(
            StatusCode::OK,
            JSON,
            &json!({"meta": {"result_count": 0}}),
            Some(&budget),
        );
    }
    let more = matching.len() > query.max_results;
    matching.truncate(query.max_results);
    let data: Vec<Value> = matching
        .iter()
        .map(|&i| tweet(&snapshot, i, &query.fields))
        .collect();
    let newest = x_id(&snapshot.posts[matching[0]]);
    let oldest = x_id(&snapshot.posts[matching[matching.len() - 1]]);
    let mut meta = json!({
        "result_count": data.len(),
        "newest_id": newest.to_string(),
        "oldest_id": oldest.to_string(),
    });
    if more {
        meta["next_token"] = json!(encode_token(oldest));
    }
    let mut body = json!({"data": data, "meta": meta});
    let mut includes = Map::new();
    if query
        .expansions
        .iter()
        .any(|e| e == "author_id" || e == "in_reply_to_user_id")
    {
        includes.insert("users".into(), json!([user_object()]));
    }
    if query
        .expansions
        .iter()
        .any(|e| e.starts_with("referenced_tweets.id"))
    {
        let mut parents: Vec<usize> = matching
            .iter()
            .filter_map(|&i| snapshot.posts[i].parent)
            .collect();
        parents.sort_unstable();
        parents.dedup();
        if !parents.is_empty() {
            let tweets: Vec<Value> = parents
                .into_iter()
                .map(|p| tweet(&snapshot, p, &query.fields))
                .collect();
            includes.insert("tweets".into(), json!(tweets));
        }
    }
    if !includes.is_empty() {
        body["includes"] = Value::Object(includes);
    }
    respond(StatusCode::OK, JSON, &body, Some(&budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_tokens_round_trip() {
        for id in [0, 1, 35, 36, 1_577_730_467_436_138_524, u64::MAX] {
            assert_eq!(decode_token(&encode_token(id)), Some(id));
        }
        assert_eq!(decode_token("nope"), None);
        assert_eq!(decode_token(TOKEN_PREFIX), None);
    }

    #[test]
    fn the_account_is_from_2019() {
        assert_eq!(account_created().format("%Y").to_string(), "2019");
    }
}
