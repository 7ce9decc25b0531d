//! Tests of the Mastodon channel: the parsers from recorded answers
//! (`channels/tests/fixtures/social/mastodon/`, see the README there) and hostile bodies, then
//! whole probes against a loopback server that pages the way Mastodon does (`min_id`, `Link`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta, Utc};

use super::*;
use crate::error::ErrorClass;
use crate::model::Health;
use crate::social::test_support::{
    assert_copies_match_shared, assert_error, at, check_pages, check_refused_settings, fixture,
};
use crate::test_server::{Reply, Seen, Server, fetcher, json, reply, serve};

const ACCOUNT_ID: &str = "117020565966271181";
const STATUSES: &str = "/api/v1/accounts/117020565966271181/statuses";
const LOOKUP: &str = "/api/v1/accounts/lookup";
const WHAT: &str = "GET /statuses";

/// A status as Mastodon serialises it (only the fields the channel reads, plus a few it ignores).
fn status(id: u64, minutes_ago: i64, reply_to: Option<u64>, html: &str) -> serde_json::Value {
    let created = crate::social::test_support::minutes_ago(minutes_ago);
    serde_json::json!({
        "id": id.to_string(),
        "created_at": created,
        "in_reply_to_id": reply_to.map(|r| r.to_string()),
        "in_reply_to_account_id": reply_to.map(|_| ACCOUNT_ID),
        "visibility": "public",
        "spoiler_text": "",
        "content": html,
        "reblog": null,
        "account": {"id": ACCOUNT_ID, "acct": "msft365status"},
    })
}

fn page_of(values: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(values).expect("serializable")
}

/// The recorded answer to the account lookup.
fn account_found() -> Reply {
    json(
        "200 OK",
        fixture("mastodon/mastodon-accounts-lookup.recorded.json"),
    )
}

// ---------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------

/// A config edit: name, the edit, words the refusal must say.
type ConfigCase = (&'static str, fn(&mut MastodonConfig), &'static str);

#[test]
fn the_shared_fixtures_were_copied_verbatim() {
    assert_copies_match_shared(&[
        (
            "mastodon/mastodon-account-statuses.recorded.json",
            "mastodon-account-statuses.recorded.json",
        ),
        (
            "mastodon/mastodon-account-statuses.recorded.headers.txt",
            "mastodon-account-statuses.recorded.headers.txt",
        ),
        (
            "mastodon/mastodon-accounts-lookup.recorded.json",
            "mastodon-accounts-lookup.recorded.json",
        ),
        (
            "mastodon/mastodon-accounts-lookup-404.recorded.json",
            "mastodon-accounts-lookup-404.recorded.json",
        ),
        (
            "mastodon/mastodon-status-entity.docs-example.json",
            "mastodon-status-entity.docs-example.json",
        ),
    ]);
}

#[test]
fn recorded_statuses_become_posts_with_html_stripped() {
    let page = parse_statuses(
        &fixture("mastodon/mastodon-account-statuses.recorded.json"),
        WHAT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, &str)> = page
        .posts
        .iter()
        .map(|p| (p.id.as_str(), &*p.text))
        .collect();
    assert_eq!(
        got,
        vec![
            ("117020580518794573", "Toot number 9!"),
            ("117020580511453871", "Toot number 8!"),
            ("117020580503743669", "Toot number 7!"),
            ("117020580496489811", "Toot number 6!"),
            ("117020580489281910", "Toot number 5!"),
        ]
    );
    assert_eq!(page.posts[0].created_at, at("2026-08-01T13:52:34.108Z"));
    assert!(
        page.posts
            .iter()
            .all(|p| p.reply_to.is_none() && p.root.is_none())
    );
    assert_eq!(page.newest.as_deref(), Some("117020580518794573"));
    assert_eq!((page.items, page.reblogs, page.skipped.count), (5, 0, 0));

    // The docs' Status entity: entities decoded, link spans joined, no markup left.
    let entity: serde_json::Value = serde_json::from_slice(&fixture(
        "mastodon/mastodon-status-entity.docs-example.json",
    ))
    .expect("the docs example is JSON");
    let page = parse_statuses(&page_of(&[entity]), WHAT).unwrap_or_else(|e| panic!("{e}"));
    let text = &page.posts[0].text;
    assert!(
        text.starts_with("\"I lost my inheritance with one wrong digit on my sort code\""),
        "{text}"
    );
    assert!(
        text.contains("https://www.theguardian.com/money/2019/dec/07/"),
        "{text}"
    );
    assert!(!text.contains('<') && !text.contains("&quot;"), "{text}");
}

#[test]
fn reblogs_are_skipped_replies_linked_and_ids_compared_as_numbers() {
    let mut reblog = status(100, 1, None, "");
    reblog["reblog"] = status(7, 60, None, "<p>someone else</p>");
    let mut warned = status(98, 3, None, "<p>Details inside</p>");
    warned["spoiler_text"] = serde_json::json!("Exchange Online");
    let body = page_of(&[
        reblog,
        status(99, 2, Some(98), "<p>We&#39;ve identified the cause.</p>"),
        warned,
    ]);
    let page = parse_statuses(&body, WHAT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.reblogs, 1);
    assert_eq!(page.posts.len(), 2);
    assert_eq!(page.posts[0].reply_to.as_deref(), Some("98"));
    assert_eq!(&*page.posts[0].text, "We've identified the cause.");
    assert_eq!(&*page.posts[1].text, "Exchange Online Details inside");
    assert_eq!(
        page.newest.as_deref(),
        Some("100"),
        "100 > 99 as numbers, though \"100\" < \"99\" as strings; reblogs move the cursor too"
    );
}

#[test]
fn hostile_bodies_are_drift_and_never_panic() {
    let good = status(5, 1, None, "<p>fine</p>");
    let cases: Vec<(&str, Vec<u8>, Result<usize, &str>)> = vec![
        ("empty array", b"[]".to_vec(), Ok(0)),
        (
            "HTML page",
            b"<!DOCTYPE html><html></html>".to_vec(),
            Err("not valid JSON"),
        ),
        (
            "truncated",
            b"[{\"id\":\"1\",\"created_at\":\"20".to_vec(),
            Err("not valid JSON"),
        ),
        ("empty body", Vec::new(), Err("not valid JSON")),
        (
            "an object",
            br#"{"error":"x"}"#.to_vec(),
            Err("expected an array of statuses, got an object"),
        ),
        ("null", b"null".to_vec(), Err("got null")),
        (
            "numbers",
            b"[1,2]".to_vec(),
            Err("none of the 2 statuses was usable"),
        ),
        (
            "id as number",
            br#"[{"id":5,"created_at":"2026-01-01T00:00:00Z"}]"#.to_vec(),
            Err("status 0"),
        ),
        (
            "no created_at",
            br#"[{"id":"5"}]"#.to_vec(),
            Err("created_at"),
        ),
        (
            "bad time",
            br#"[{"id":"5","created_at":"yesterday"}]"#.to_vec(),
            Err("is not a time"),
        ),
        (
            "content as object",
            br#"[{"id":"5","created_at":"2026-01-01T00:00:00Z","content":{}}]"#.to_vec(),
            Err("status 0"),
        ),
        (
            "one bad among good",
            page_of(&[serde_json::json!("junk"), good.clone()]),
            Ok(1),
        ),
        (
            "deeply nested",
            format!("[{}]", "[".repeat(100_000)).into_bytes(),
            Err("not valid JSON"),
        ),
    ];
    check_pages(cases, |body| {
        parse_statuses(body, WHAT).map(|p| (p.posts.len(), p.skipped.count, p.items))
    });
    let accounts: Vec<(&str, &[u8], Result<&str, &str>)> = vec![
        ("recorded", b"", Ok(ACCOUNT_ID)),
        (
            "id as number",
            br#"{"id":5}"#,
            Err("a number, not a string"),
        ),
        ("no id", br#"{"acct":"x"}"#, Err("has no id")),
        ("array", b"[]", Err("got an array")),
        ("truncated", br#"{"id":"#, Err("not valid JSON")),
    ];
    for (name, body, want) in accounts {
        let body = if name == "recorded" {
            fixture("mastodon/mastodon-accounts-lookup.recorded.json")
        } else {
            body.to_vec()
        };
        match (parse_account(&body, "GET /lookup"), want) {
            (Ok(id), Ok(want)) => assert_eq!(id, want, "{name}"),
            (Err(e), Err(says)) => {
                assert_eq!(e.class(), ErrorClass::Drift, "{name}");
                assert!(e.to_string().contains(says), "{name}: {e}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn deeply_nested_html_is_read_in_bounded_time() {
    let deep = format!("<p>Exchange Online is down</p>{}", "<div>".repeat(150_000));
    let body = page_of(&[status(1, 1, None, &deep), status(2, 1, None, &deep)]);
    let started = std::time::Instant::now();
    let page = parse_statuses(&body, WHAT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&*page.posts[0].text, "Exchange Online is down");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: the HTML read per post must stay bounded",
        started.elapsed()
    );
}

#[test]
fn config_is_checked_at_startup() {
    let cases: Vec<ConfigCase> = vec![
        ("no base_url", |c| c.base_url = String::new(), "base_url"),
        (
            "ftp",
            |c| c.base_url = "ftp://example.org".into(),
            "http(s)",
        ),
        (
            "empty account",
            |c| c.account = " @ ".into(),
            "must be an acct",
        ),
        ("two @", |c| c.account = "a@b@c".into(), "must be an acct"),
        ("space", |c| c.account = "a b".into(), "must be an acct"),
        ("path", |c| c.account = "a/../b".into(), "must be an acct"),
        ("limit 0", |c| c.limit = 0, "limit 0 is out of range 1..=40"),
        ("limit 41", |c| c.limit = 41, "out of range"),
        ("max_pages 0", |c| c.max_pages = 0, "max_pages"),
    ];
    check_refused_settings(
        cases,
        || MastodonConfig::new("https://mastodon.example", "msft"),
        |config| Mastodon::new("m", config, fetcher(1024)),
    );
    let config = MastodonConfig::new("https://mastodon.example/", "@msft@example.org");
    assert_eq!(
        (config.limit, config.max_pages),
        (DEFAULT_LIMIT, DEFAULT_MAX_PAGES)
    );
    let m = Mastodon::new("m", config, fetcher(1024)).expect("a valid config");
    assert_eq!(m.account, "msft@example.org");
    assert_eq!(m.kind(), ChannelKind::Mastodon);
}

// ---------------------------------------------------------------------------------------------
// Whole probes
// ---------------------------------------------------------------------------------------------

/// A Mastodon server for one account whose statuses are ids 1..=published (newest last), each
/// posted one minute after the previous. It answers `min_id` with the statuses immediately newer
/// (at most `limit`, newest first) and sends `Link` rel="next"/"prev" the way Mastodon does.
fn timeline(
    base: Arc<std::sync::Mutex<String>>,
    published: Arc<AtomicU64>,
) -> impl Fn(&Seen, &[Seen]) -> Reply {
    move |seen: &Seen, _: &[Seen]| {
        if seen.path() == LOOKUP {
            return account_found();
        }
        if seen.path() != STATUSES {
            return json("404 Not Found", r#"{"error":"Record not found"}"#);
        }
        let last = published.load(Ordering::SeqCst);
        let limit: u64 = seen
            .query("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(20);
        let ids: Vec<u64> = match seen.query("min_id").and_then(|m| m.parse::<u64>().ok()) {
            Some(min) => {
                let mut ids: Vec<u64> = (min + 1..=last).take(limit as usize).collect();
                ids.reverse();
                ids
            }
            None => (1..=last).rev().take(limit as usize).collect(),
        };
        let statuses: Vec<serde_json::Value> = ids
            .iter()
            .map(|&id| status(id, 60 - id as i64, None, &format!("<p>Post {id}</p>")))
            .collect();
        let mut r = json("200 OK", page_of(&statuses))
            .with("x-ratelimit-limit", "300")
            .with("x-ratelimit-remaining", "299")
            .with("x-ratelimit-reset", "2026-08-01T13:55:00.212100Z");
        if let (Some(newest), Some(oldest)) = (ids.first(), ids.last()) {
            let base = base.lock().expect("base").clone();
            let url = format!("{base}{STATUSES}?limit={limit}&exclude_reblogs=true");
            r = r.with(
                "link",
                format!(
                    "<{url}&max_id={oldest}>; rel=\"next\", <{url}&min_id={newest}>; rel=\"prev\""
                ),
            );
        }
        r
    }
}

async fn timeline_server(published: Arc<AtomicU64>) -> Server {
    let base = Arc::new(std::sync::Mutex::new(String::new()));
    let server = serve(timeline(base.clone(), published)).await;
    *base.lock().expect("base") = server.base.clone();
    server
}

fn channel(server: &Server, edit: impl FnOnce(&mut MastodonConfig)) -> Mastodon {
    let mut config = MastodonConfig::new(&server.base, "mastodonpy_test");
    edit(&mut config);
    Mastodon::new("mastodon-test", config, fetcher(64 * 1024)).unwrap_or_else(|e| panic!("{e}"))
}

fn statuses_requests(server: &Server) -> Vec<Seen> {
    server.to(STATUSES)
}

fn remembered(m: &Mastodon) -> Vec<String> {
    m.state().log.posts().into_iter().map(|p| p.id).collect()
}

#[tokio::test]
async fn one_lookup_then_min_id_and_prev_links_fetch_only_newer_statuses() {
    let published = Arc::new(AtomicU64::new(3));
    let server = timeline_server(published.clone()).await;
    let m = channel(&server, |c| c.limit = 2);

    m.probe()
        .await
        .unwrap_or_else(|e| panic!("first probe: {e}"));
    let first = statuses_requests(&server);
    assert_eq!(first.len(), 1, "the first probe reads the newest page only");
    assert_eq!(first[0].query("min_id"), None);
    assert_eq!(first[0].query("limit").as_deref(), Some("2"));
    assert_eq!(first[0].query("exclude_reblogs").as_deref(), Some("true"));
    assert_eq!(remembered(&m), ["2", "3"]);

    published.store(8, Ordering::SeqCst);
    m.probe()
        .await
        .unwrap_or_else(|e| panic!("second probe: {e}"));
    let second: Vec<Option<String>> = statuses_requests(&server)[1..]
        .iter()
        .map(|s| s.query("min_id"))
        .collect();
    assert_eq!(
        second,
        [Some("3".into()), Some("5".into()), Some("7".into())],
        "min_id of the newest seen, then each Link rel=\"prev\"; a short page ends it"
    );
    assert_eq!(remembered(&m), ["2", "3", "4", "5", "6", "7", "8"]);

    m.probe()
        .await
        .unwrap_or_else(|e| panic!("third probe: {e}"));
    let third = statuses_requests(&server);
    assert_eq!(third.len(), 5, "nothing new: one request");
    assert_eq!(third[4].query("min_id").as_deref(), Some("8"));
    assert_eq!(server.count(LOOKUP), 1, "the account id is looked up once");
}

#[tokio::test]
async fn max_pages_bounds_a_probe_and_the_next_probe_continues() {
    let published = Arc::new(AtomicU64::new(1));
    let server = timeline_server(published.clone()).await;
    let m = channel(&server, |c| {
        c.limit = 2;
        c.max_pages = 2;
    });
    m.probe().await.unwrap_or_else(|e| panic!("{e}"));
    published.store(9, Ordering::SeqCst);
    m.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(statuses_requests(&server).len(), 3, "two pages, no more");
    assert_eq!(remembered(&m), ["1", "2", "3", "4", "5"]);
    m.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        remembered(&m),
        ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
}

#[tokio::test]
async fn a_link_to_another_host_is_not_followed() {
    let server = serve(|seen: &Seen, before: &[Seen]| {
        if seen.path() == LOOKUP {
            return account_found();
        }
        let n = before.iter().filter(|s| s.path() == STATUSES).count() as u64;
        let ids = if n == 0 { vec![1] } else { vec![3, 2] };
        let statuses: Vec<_> = ids
            .iter()
            .map(|&i| status(i, 5, None, "<p>x</p>"))
            .collect();
        json("200 OK", page_of(&statuses)).with(
            "link",
            "<https://elsewhere.example/api/v1/accounts/1/statuses?min_id=3>; rel=\"prev\"",
        )
    })
    .await;
    let m = channel(&server, |c| c.limit = 2);
    m.probe().await.unwrap_or_else(|e| panic!("{e}"));
    let o = m.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(statuses_requests(&server).len(), 2);
    assert_eq!(o.faults.len(), 1, "{:?}", o.faults);
    assert!(
        o.faults[0].error.to_string().contains("not followed"),
        "{:?}",
        o.faults
    );
    assert_eq!(remembered(&m), ["1", "2", "3"], "the page read is kept");
}

#[tokio::test]
async fn refusals_are_classified_with_the_servers_words() {
    type Case = (
        &'static str,
        Box<dyn Fn(&Seen) -> Option<Reply> + Send + Sync>,
        ErrorClass,
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "unknown account",
            Box::new(|s: &Seen| {
                (s.path() == LOOKUP).then(|| {
                    json(
                        "404 Not Found",
                        fixture("mastodon/mastodon-accounts-lookup-404.recorded.json"),
                    )
                })
            }),
            ErrorClass::Config,
            &["no such account \"mastodonpy_test\"", "Record not found"],
        ),
        (
            "authorized-only server",
            Box::new(|s: &Seen| {
                (s.path() == LOOKUP).then(|| {
                    json(
                        "401 Unauthorized",
                        r#"{"error":"This API requires an authenticated user"}"#,
                    )
                })
            }),
            ErrorClass::Auth,
            &[
                "HTTP 401",
                "requires an authenticated user",
                "without signing in",
            ],
        ),
        (
            "forbidden statuses",
            Box::new(|s: &Seen| (s.path() == STATUSES).then(|| json("403 Forbidden", "{}"))),
            ErrorClass::Auth,
            &["HTTP 403", "without signing in"],
        ),
        (
            "server error",
            Box::new(|s: &Seen| {
                (s.path() == STATUSES).then(|| {
                    json(
                        "500 Internal Server Error",
                        r#"{"error":"We're sorry, but something went wrong"}"#,
                    )
                })
            }),
            ErrorClass::Http,
            &["HTTP 500", "something went wrong"],
        ),
        (
            "HTML with 200",
            Box::new(|s: &Seen| {
                (s.path() == LOOKUP).then(|| {
                    reply(
                        "200 OK",
                        "text/html",
                        "<!DOCTYPE html><html>Maintenance</html>",
                    )
                })
            }),
            ErrorClass::Drift,
            &["text/html"],
        ),
        (
            "truncated JSON",
            Box::new(|s: &Seen| (s.path() == STATUSES).then(|| json("200 OK", r#"[{"id":"1","#))),
            ErrorClass::Drift,
            &["not valid JSON"],
        ),
        (
            "wrong types",
            Box::new(|s: &Seen| {
                (s.path() == STATUSES).then(|| json("200 OK", r#"{"statuses":[]}"#))
            }),
            ErrorClass::Drift,
            &["expected an array"],
        ),
        (
            "empty body",
            Box::new(|s: &Seen| (s.path() == STATUSES).then(|| json("200 OK", ""))),
            ErrorClass::Drift,
            &["empty body"],
        ),
        (
            "oversized",
            Box::new(|s: &Seen| {
                (s.path() == STATUSES).then(|| json("200 OK", format!("[{}]", " ".repeat(70_000))))
            }),
            ErrorClass::Drift,
            &["65536-byte cap"],
        ),
    ];
    for (name, special, class, says) in cases {
        let server = serve(move |seen: &Seen, _: &[Seen]| {
            special(seen).unwrap_or_else(|| {
                if seen.path() == LOOKUP {
                    account_found()
                } else {
                    json("200 OK", "[]")
                }
            })
        })
        .await;
        let e = channel(&server, |_| {}).probe().await.expect_err(name);
        assert_error(name, &e, class, says);
    }
}

#[tokio::test]
async fn a_404_on_statuses_forgets_the_account_id() {
    let server = serve(|seen: &Seen, before: &[Seen]| {
        if seen.path() == LOOKUP {
            return account_found();
        }
        if before.iter().any(|s| s.path() == STATUSES) {
            json("200 OK", "[]")
        } else {
            json("404 Not Found", r#"{"error":"Record not found"}"#)
        }
    })
    .await;
    let m = channel(&server, |_| {});
    let e = m.probe().await.expect_err("the account is gone");
    assert_eq!(e.class(), ErrorClass::Config);
    m.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.count(LOOKUP), 2, "looked up again after the 404");
}

fn reset_in(wait: Duration) -> String {
    (Utc::now() + TimeDelta::from_std(wait).expect("small"))
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn a_spent_rate_limit_holds_probes_locally_until_the_reset() {
    let server = serve(|seen: &Seen, _: &[Seen]| {
        if seen.path() == LOOKUP {
            return account_found().with("x-ratelimit-remaining", "12");
        }
        json("200 OK", page_of(&[status(1, 5, None, "<p>x</p>")]))
            .with("x-ratelimit-limit", "300")
            .with("x-ratelimit-remaining", "0")
            .with("x-ratelimit-reset", reset_in(Duration::from_millis(800)))
    })
    .await;
    let m = channel(&server, |_| {});
    m.probe()
        .await
        .unwrap_or_else(|e| panic!("the probe that spends the window: {e}"));
    let sent = server.seen().len();
    let e = m.probe().await.expect_err("held");
    assert_eq!(e.class(), ErrorClass::Throttled);
    assert!(e.to_string().contains("remaining 0"), "{e}");
    assert!(
        e.retry_after()
            .is_some_and(|w| w > Duration::ZERO && w <= Duration::from_millis(800)),
        "{e:?}"
    );
    assert_eq!(
        server.seen().len(),
        sent,
        "nothing was sent during the hold"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    m.probe()
        .await
        .unwrap_or_else(|e| panic!("after the reset: {e}"));
    assert_eq!(server.seen().len(), sent + 1);
}

#[tokio::test]
async fn a_429_is_throttled_with_the_reset_as_its_wait_and_holds() {
    for with_retry_after in [false, true] {
        let server = serve(move |seen: &Seen, _: &[Seen]| {
            if seen.path() == LOOKUP {
                return account_found();
            }
            let r = json("429 Too Many Requests", r#"{"error":"Too many requests"}"#)
                .with("x-ratelimit-remaining", "0")
                .with("x-ratelimit-reset", reset_in(Duration::from_secs(30)));
            if with_retry_after {
                r.with("retry-after", "20")
            } else {
                r
            }
        })
        .await;
        let m = channel(&server, |_| {});
        let e = m.probe().await.expect_err("429");
        assert_eq!(e.class(), ErrorClass::Throttled, "{e}");
        let wait = e.retry_after().unwrap_or_default();
        if with_retry_after {
            assert_eq!(wait, Duration::from_secs(20), "Retry-After wins");
        } else {
            assert!(
                wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
                "{wait:?}"
            );
        }
        let sent = server.seen().len();
        let e = m.probe().await.expect_err("held");
        assert_eq!(e.class(), ErrorClass::Throttled);
        assert_eq!(server.seen().len(), sent, "held without a request");
    }
}

#[tokio::test]
async fn a_root_post_with_an_id_and_an_idless_reply_make_one_incident() {
    let server = serve(|seen: &Seen, _: &[Seen]| {
        if seen.path() == LOOKUP {
            return account_found();
        }
        json(
            "200 OK",
            page_of(&[
                status(
                    201,
                    10,
                    Some(200),
                    "<p>We’ve identified a recent configuration change as the cause and are reverting it.</p>",
                ),
                status(
                    200,
                    30,
                    None,
                    "<p>We&#39;re investigating an issue where users may be unable to access \
                     <span class=\"h-card\"><a href=\"https://x\">Exchange Online</a></span> mailboxes. \
                     More info in the admin center under EX1234567.</p>",
                ),
            ]),
        )
    })
    .await;
    let m = channel(&server, |_| {});
    let o = m.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.channel, "mastodon-test");
    assert_eq!(o.incidents.len(), 1, "{:?}", o.incidents);
    let incident = &o.incidents[0];
    assert_eq!(incident.id.as_deref(), Some("EX1234567"));
    assert_eq!(incident.service.as_deref(), Some("Exchange"));
    assert!(!incident.resolved);
    assert!(
        incident
            .summary
            .as_deref()
            .is_some_and(|s| s.contains("reverting")),
        "the latest post is the summary: {incident:?}"
    );
    assert_eq!(o.services.len(), 1, "{:?}", o.services);
    let exchange = &o.services[0];
    assert_eq!(
        (exchange.id.as_str(), exchange.health),
        ("Exchange", Health::Incident)
    );
    assert_eq!(exchange.incidents, ["EX1234567"]);
    assert!(o.faults.is_empty(), "{:?}", o.faults);
}
