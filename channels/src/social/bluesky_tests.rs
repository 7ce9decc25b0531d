//! Tests of the Bluesky channel: the parser from the recorded getAuthorFeed answer
//! (`channels/tests/fixtures/social/bluesky/`, see the README there), reposts, pins, other
//! authors and hostile bodies, then whole probes against a loopback server that pages with a
//! cursor the way the AppView does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use super::*;
use crate::error::ErrorClass;
use crate::social::test_support::{
    assert_copies_match_shared, assert_error, check_pages, check_refused_settings, fixture,
};
use crate::test_server::{Reply, Seen, Server, fetcher, json, reply, serve};

const DRIL: &str = "dril.bsky.social";
const DRIL_DID: &str = "did:plc:6wpkkitfdkgthatfvspcfmjo";
const ACTOR: &str = "status.example.com";
const ACTOR_DID: &str = "did:plc:statusexample";
const WHAT: &str = "GET /feed";

fn uri(did: &str, rkey: &str) -> String {
    format!("at://{did}/app.bsky.feed.post/{rkey}")
}

/// A feed item as the AppView serialises it.
fn item(author: (&str, &str), rkey: &str, minutes_ago: i64, text: &str) -> serde_json::Value {
    let created = crate::social::test_support::minutes_ago(minutes_ago);
    serde_json::json!({
        "post": {
            "uri": uri(author.1, rkey),
            "cid": "bafy",
            "author": {"did": author.1, "handle": author.0, "displayName": "x"},
            "record": {"$type": "app.bsky.feed.post", "createdAt": created, "text": text},
            "indexedAt": created,
        }
    })
}

fn page(items: &[serde_json::Value], cursor: Option<&str>) -> Vec<u8> {
    let mut page = serde_json::json!({ "feed": items });
    if let Some(c) = cursor {
        page["cursor"] = serde_json::json!(c);
    }
    serde_json::to_vec(&page).expect("serializable")
}

/// A config edit: name, the edit, words the refusal must say.
type ConfigCase = (&'static str, fn(&mut BlueskyConfig), &'static str);

#[test]
fn the_shared_fixtures_were_copied_verbatim() {
    assert_copies_match_shared(&[
        (
            "bluesky/bluesky-getAuthorFeed.fixture.json",
            "bluesky-getAuthorFeed.fixture.json",
        ),
        (
            "bluesky/bluesky-error-400-invalid-request.recorded.json",
            "bluesky-error-400-invalid-request.recorded.json",
        ),
        (
            "bluesky/bluesky-error-400-profile-not-found.json",
            "bluesky-error-400-profile-not-found.json",
        ),
    ]);
}

#[test]
fn the_recorded_feed_becomes_posts_with_the_reply_linked() {
    let body = fixture("bluesky/bluesky-getAuthorFeed.fixture.json");
    for actor in [DRIL, "DRIL.bsky.social", DRIL_DID] {
        let page = parse_author_feed(&body, WHAT, actor).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(page.posts.len(), 5, "{actor}");
        assert_eq!(page.cursor.as_deref(), Some("2025-02-21T18:38:52.746Z"));
        assert_eq!(
            (
                page.items,
                page.reposts_and_pins,
                page.others,
                page.skipped.count
            ),
            (5, 0, 0, 0)
        );
        let first = &page.posts[0];
        assert_eq!(first.id, uri(DRIL_DID, "3lix6ufungs22"));
        assert_eq!(
            first
                .created_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            "2025-02-24T20:30:07.343Z"
        );
        assert!(
            first
                .text
                .starts_with("ai wrote my son a very impressive resume")
        );
        let reply = &page.posts[3];
        assert_eq!(reply.id, uri(DRIL_DID, "3liphfrnb7c2n"));
        let root = uri(DRIL_DID, "3liphb4l7m22n");
        assert_eq!(reply.reply_to.as_deref(), Some(root.as_str()));
        assert_eq!(reply.root.as_deref(), Some(root.as_str()));
        assert!(
            page.posts
                .iter()
                .filter(|p| p.id != reply.id)
                .all(|p| p.reply_to.is_none())
        );
    }
    // Read for another actor, every post is someone else's.
    let page = parse_author_feed(&body, WHAT, ACTOR).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((page.posts.len(), page.others), (0, 5));
}

#[test]
fn reposts_pins_and_other_authors_are_left_out() {
    let me = (ACTOR, ACTOR_DID);
    let mut repost = item(("someone.else", "did:plc:else"), "r1", 1, "their post");
    repost["reason"] =
        serde_json::json!({"$type": "app.bsky.feed.defs#reasonRepost", "by": {"did": ACTOR_DID}});
    let mut self_repost = item(me, "old", 900, "my old post, reposted");
    self_repost["reason"] = serde_json::json!({"$type": "app.bsky.feed.defs#reasonRepost"});
    let mut pin = item(me, "pinned", 9000, "pinned welcome post");
    pin["reason"] = serde_json::json!({"$type": "app.bsky.feed.defs#reasonPin"});
    let mut no_created = item(me, "p2", 5, "indexedAt stands in");
    no_created["post"]["record"]["createdAt"] = serde_json::Value::Null;
    let body = page(
        &[
            pin,
            repost,
            self_repost,
            item(("other.example", "did:plc:other"), "x", 2, "not mine"),
            item(me, "p1", 3, "mine"),
            no_created,
        ],
        None,
    );
    let page = parse_author_feed(&body, WHAT, ACTOR).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = page.posts.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, [uri(ACTOR_DID, "p1"), uri(ACTOR_DID, "p2")]);
    assert_eq!((page.reposts_and_pins, page.others), (3, 1));
    assert_eq!(page.cursor, None);
}

#[test]
fn hostile_bodies_are_drift_and_never_panic() {
    let good = item((ACTOR, ACTOR_DID), "ok", 1, "fine");
    let cases: Vec<(&str, Vec<u8>, Result<usize, &str>)> = vec![
        ("empty feed", br#"{"feed":[]}"#.to_vec(), Ok(0)),
        ("HTML", b"<html><body>502</body></html>".to_vec(), Err("not valid JSON")),
        ("truncated", br#"{"feed":[{"post":{"uri":"#.to_vec(), Err("not valid JSON")),
        ("empty body", Vec::new(), Err("not valid JSON")),
        ("array", b"[]".to_vec(), Err("got an array")),
        ("no feed", br#"{"cursor":"x"}"#.to_vec(), Err("missing field `feed`")),
        ("feed is a string", br#"{"feed":"posts"}"#.to_vec(), Err("unexpected getAuthorFeed shape")),
        ("items are numbers", br#"{"feed":[1,2,3]}"#.to_vec(), Err("none of the 3 feed items was usable")),
        ("no post", br#"{"feed":[{}]}"#.to_vec(), Err("missing field `post`")),
        ("uri as number", br#"{"feed":[{"post":{"uri":5}}]}"#.to_vec(), Err("feed item 0")),
        ("no author", br#"{"feed":[{"post":{"uri":"at://x/y/z"}}]}"#.to_vec(), Err("has no author")),
        (
            "no time at all",
            format!(r#"{{"feed":[{{"post":{{"uri":"at://x/y/z","author":{{"handle":"{ACTOR}"}},"record":{{"text":"t"}}}}}}]}}"#).into_bytes(),
            Err("neither a readable createdAt nor indexedAt"),
        ),
        (
            "text as object",
            format!(r#"{{"feed":[{{"post":{{"uri":"at://x/y/z","author":{{"handle":"{ACTOR}"}},"record":{{"text":{{}}}}}}}}]}}"#).into_bytes(),
            Err("feed item 0"),
        ),
        ("cursor as number", br#"{"feed":[],"cursor":7}"#.to_vec(), Err("unexpected getAuthorFeed shape")),
        ("one bad among good", page(&[serde_json::json!(null), good], Some("c")), Ok(1)),
    ];
    check_pages(cases, |body| {
        parse_author_feed(body, WHAT, ACTOR).map(|p| (p.posts.len(), p.skipped.count, p.items))
    });
}

#[test]
fn config_is_checked_at_startup() {
    let cases: Vec<ConfigCase> = vec![
        ("no actor", |c| c.actor = " ".into(), "actor"),
        (
            "an acct",
            |c| c.actor = "user@example.com".into(),
            "must be a handle",
        ),
        (
            "a URL",
            |c| c.actor = "https://bsky.app/profile/x".into(),
            "must be a handle",
        ),
        (
            "limit 0",
            |c| c.limit = 0,
            "limit 0 is out of range 1..=100",
        ),
        ("limit 101", |c| c.limit = 101, "out of range"),
        ("max_pages 0", |c| c.max_pages = 0, "max_pages"),
        (
            "bad base",
            |c| c.base_url = "public.api.bsky.app".into(),
            "base_url",
        ),
    ];
    check_refused_settings(
        cases,
        || BlueskyConfig::new(ACTOR),
        |config| Bluesky::new("b", config, fetcher(1024)),
    );
    let config = BlueskyConfig::new("@status.example.com");
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(
        (config.limit, config.max_pages),
        (DEFAULT_LIMIT, DEFAULT_MAX_PAGES)
    );
    let b = Bluesky::new("b", config, fetcher(1024)).expect("valid");
    assert_eq!(b.actor, ACTOR);
    assert_eq!(b.kind(), ChannelKind::Bluesky);
}

// ---------------------------------------------------------------------------------------------
// Whole probes
// ---------------------------------------------------------------------------------------------

/// An AppView for one actor whose posts are p1..=p{published}, one minute apart, newest
/// `published` minutes after an hour ago. Pages newest first; the cursor is the rkey number of
/// the last post of the page.
fn author_feed(
    published: Arc<AtomicU64>,
    every_page: impl Fn(Reply) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Seen, &[Seen]) -> Reply {
    move |seen: &Seen, _: &[Seen]| {
        if seen.path() != PATH {
            return json("404 Not Found", r#"{"error":"MethodNotImplemented"}"#);
        }
        let last = published.load(Ordering::SeqCst);
        let limit: u64 = seen
            .query("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(50);
        let below = seen
            .query("cursor")
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(last + 1);
        let ids: Vec<u64> = (1..below).rev().take(limit as usize).collect();
        let mut items: Vec<serde_json::Value> = ids
            .iter()
            .map(|&n| {
                item(
                    (ACTOR, ACTOR_DID),
                    &format!("p{n}"),
                    60 - n as i64,
                    &format!("post {n}"),
                )
            })
            .collect();
        if seen.query("cursor").is_none() {
            let mut pin = item((ACTOR, ACTOR_DID), "p0", 600, "pinned");
            pin["reason"] = serde_json::json!({"$type": "app.bsky.feed.defs#reasonPin"});
            items.insert(0, pin);
        }
        let cursor = ids.last().filter(|&&n| n > 1).map(|n| n.to_string());
        every_page(json("200 OK", page(&items, cursor.as_deref())))
    }
}

fn channel(server: &Server, edit: impl FnOnce(&mut BlueskyConfig)) -> Bluesky {
    let mut config = BlueskyConfig::new(ACTOR);
    config.base_url = server.base.clone();
    edit(&mut config);
    Bluesky::new("bluesky-test", config, fetcher(64 * 1024)).unwrap_or_else(|e| panic!("{e}"))
}

fn remembered(b: &Bluesky) -> Vec<String> {
    b.state()
        .log
        .posts()
        .into_iter()
        .map(|p| p.id.rsplit('/').next().unwrap_or("").to_string())
        .collect()
}

fn cursors(server: &Server) -> Vec<Option<String>> {
    server.seen().iter().map(|s| s.query("cursor")).collect()
}

#[tokio::test]
async fn pages_back_with_the_cursor_and_stops_at_a_known_post() {
    let published = Arc::new(AtomicU64::new(5));
    let server = serve(author_feed(published.clone(), |r| r)).await;
    let b = channel(&server, |c| c.limit = 2);

    b.probe()
        .await
        .unwrap_or_else(|e| panic!("first probe: {e}"));
    let first = server.seen();
    assert_eq!(first[0].query("actor").as_deref(), Some(ACTOR));
    assert_eq!(
        first[0].query("filter").as_deref(),
        Some("posts_and_author_threads")
    );
    assert_eq!(first[0].query("includePins").as_deref(), Some("false"));
    assert_eq!(first[0].query("limit").as_deref(), Some("2"));
    assert_eq!(
        cursors(&server),
        [None, Some("4".into()), Some("2".into())],
        "to the end of the feed"
    );
    assert_eq!(
        remembered(&b),
        ["p1", "p2", "p3", "p4", "p5"],
        "the pin is left out"
    );

    published.store(8, Ordering::SeqCst);
    b.probe()
        .await
        .unwrap_or_else(|e| panic!("second probe: {e}"));
    assert_eq!(
        cursors(&server)[3..],
        [None, Some("7".into())],
        "p8 p7, then p6 p5: p5 is known, so no third page"
    );
    assert_eq!(remembered(&b).len(), 8);

    b.probe()
        .await
        .unwrap_or_else(|e| panic!("third probe: {e}"));
    assert_eq!(
        server.seen().len(),
        6,
        "nothing new: the first page ends it"
    );
}

#[tokio::test]
async fn paging_stops_at_max_pages_and_at_the_history_window() {
    let published = Arc::new(AtomicU64::new(40));
    let server = serve(author_feed(published.clone(), |r| r)).await;
    let b = channel(&server, |c| {
        c.limit = 3;
        c.max_pages = 4;
    });
    b.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.seen().len(), 4, "max_pages");
    assert_eq!(remembered(&b).len(), 12);

    let server = serve(author_feed(published, |r| r)).await;
    let b = channel(&server, |c| {
        c.limit = 3;
        c.max_pages = 50;
        // Post n is 60 - n minutes old: 24.5 minutes of history is p36..p40, and the second page
        // (p37 p36 p35) already reaches past it.
        c.social.history = Duration::from_secs(24 * 60 + 30);
    });
    b.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        server.seen().len(),
        2,
        "the second page reaches past the history"
    );
    assert_eq!(
        remembered(&b),
        ["p36", "p37", "p38", "p39", "p40"],
        "p35 is pruned"
    );
}

#[tokio::test]
async fn a_failed_later_page_fails_the_probe_and_keeps_nothing() {
    let healthy = author_feed(Arc::new(AtomicU64::new(6)), |r| r);
    let server = serve(move |seen: &Seen, before: &[Seen]| {
        if seen.query("cursor").is_some() && before.len() == 1 {
            return json(
                "502 Bad Gateway",
                r#"{"error":"UpstreamFailure","message":"upstream timed out"}"#,
            );
        }
        healthy(seen, before)
    })
    .await;
    let b = channel(&server, |c| c.limit = 2);
    let e = b.probe().await.expect_err("page 2 failed");
    assert_eq!(e.class(), ErrorClass::Http, "{e}");
    assert!(e.to_string().contains("upstream timed out"), "{e}");
    assert!(
        remembered(&b).is_empty(),
        "a partial backwards window is not kept"
    );
    b.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        remembered(&b).len(),
        6,
        "the next probe reads the whole window"
    );
}

#[tokio::test]
async fn xrpc_errors_are_classified_with_the_servers_words() {
    let cases: Vec<(&str, Reply, ErrorClass, &[&str])> = vec![
        (
            "profile not found",
            json(
                "400 Bad Request",
                fixture("bluesky/bluesky-error-400-profile-not-found.json"),
            ),
            ErrorClass::Config,
            &[
                "actor \"status.example.com\" was not found",
                "InvalidRequest: Profile not found",
            ],
        ),
        (
            "recorded invalid request",
            json(
                "400 Bad Request",
                fixture("bluesky/bluesky-error-400-invalid-request.recorded.json"),
            ),
            ErrorClass::Config,
            &["Could not find user info"],
        ),
        (
            "blocked",
            json(
                "400 Bad Request",
                r#"{"error":"BlockedActor","message":"Requester has blocked actor"}"#,
            ),
            ErrorClass::Config,
            &["BlockedActor", "cannot be read"],
        ),
        (
            "another 400",
            json(
                "400 Bad Request",
                r#"{"error":"InvalidRequest","message":"limit must be <= 100"}"#,
            ),
            ErrorClass::Http,
            &["HTTP 400", "limit must be <= 100"],
        ),
        (
            "429",
            json(
                "429 Too Many Requests",
                r#"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#,
            )
            .with("ratelimit-remaining", "0")
            .with("ratelimit-reset", (Utc::now().timestamp() + 60).to_string()),
            ErrorClass::Throttled,
            &["HTTP 429", "asked to wait"],
        ),
        (
            "401",
            json(
                "401 Unauthorized",
                r#"{"error":"AuthMissing","message":"Authentication Required"}"#,
            ),
            ErrorClass::Auth,
            &["Authentication Required", "needs no sign-in"],
        ),
        (
            "500 without envelope",
            reply("500 Internal Server Error", "text/plain", "oops"),
            ErrorClass::Http,
            &["HTTP 500"],
        ),
        (
            "HTML with 200",
            reply("200 OK", "text/html", "<!doctype html><html></html>"),
            ErrorClass::Drift,
            &["text/html"],
        ),
        (
            "empty body",
            json("200 OK", ""),
            ErrorClass::Drift,
            &["empty body"],
        ),
    ];
    for (name, answer, class, says) in cases {
        let answer = Arc::new(std::sync::Mutex::new(Some(answer)));
        let server = serve(move |_: &Seen, _: &[Seen]| {
            answer
                .lock()
                .expect("answer")
                .take()
                .unwrap_or_else(|| json("200 OK", r#"{"feed":[]}"#))
        })
        .await;
        let e = channel(&server, |_| {}).probe().await.expect_err(name);
        assert_error(name, &e, class, says);
    }
}

#[tokio::test]
async fn a_spent_atproto_rate_limit_holds_probes_locally() {
    let published = Arc::new(AtomicU64::new(2));
    let server = serve(author_feed(published, |r| {
        r.with("ratelimit-limit", "3000")
            .with("ratelimit-remaining", "0")
            .with(
                "ratelimit-reset",
                (Utc::now().timestamp() + 120).to_string(),
            )
    }))
    .await;
    let b = channel(&server, |_| {});
    b.probe().await.unwrap_or_else(|e| panic!("{e}"));
    let e = b.probe().await.expect_err("held");
    assert_eq!(e.class(), ErrorClass::Throttled);
    assert!(
        e.retry_after()
            .is_some_and(|w| w > Duration::from_secs(100)),
        "{e:?}"
    );
    assert_eq!(server.seen().len(), 1, "held without a request");
}

#[tokio::test]
async fn a_thread_of_root_and_reply_makes_one_incident() {
    let server = serve(|_: &Seen, _: &[Seen]| {
        let me = (ACTOR, ACTOR_DID);
        let mut reply = item(me, "r", 5, "We’ve identified the cause and are deploying a fix.");
        reply["post"]["record"]["reply"] = serde_json::json!({
            "root": {"uri": uri(ACTOR_DID, "root"), "cid": "c"},
            "parent": {"uri": uri(ACTOR_DID, "root"), "cid": "c"},
        });
        let root = item(me, "root", 20, "We're investigating an issue affecting Microsoft Teams users. See TM402718 in the admin center.");
        json("200 OK", page(&[reply, root], None))
    })
    .await;
    let o = channel(&server, |_| {})
        .probe()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.incidents.len(), 1, "{:?}", o.incidents);
    assert_eq!(o.incidents[0].id.as_deref(), Some("TM402718"));
    assert_eq!(o.services.len(), 1);
    assert_eq!(o.services[0].id, "microsoftteams");
    assert_eq!(o.services[0].health, crate::model::Health::Incident);
}
