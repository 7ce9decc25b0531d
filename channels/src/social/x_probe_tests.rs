//! End-to-end tests of the X channel: whole probes against a small HTTP/1.1 server on loopback
//! (never the internet) that answers the user lookup with the recorded user (id 783214) and the
//! timeline as each test says: `since_id` and paging, the rate-limit hold, credits and auth
//! refusals, hostile answers, threads across probes, and the bearer token never leaking.

use super::tests::{JSON, TIMELINE, TOKEN, fixture};
use super::*;

use std::sync::{Arc, Mutex};

use crate::error::ErrorClass;
use crate::model::Health;
use crate::social::test_support::at;
use crate::test_server::{
    self, Reply, Seen, Server, capture_logs, everything_shown, fetcher, reply,
};

const CHANNEL: &str = "msft365status-x";
const LOOKUP: &str = "/2/users/by/username/Twitter";
const TIMELINE_PATH: &str = "/2/users/783214/tweets";

// ---------------------------------------------------------------------------------------------
// End to end, on a loopback HTTP/1.1 server
// ---------------------------------------------------------------------------------------------

fn ok(body: impl Into<Vec<u8>>) -> Reply {
    reply("200 OK", JSON, body)
}

/// What the tests count on the X server.
trait XRequests {
    /// How many user lookups were asked.
    fn lookups(&self) -> usize;
    /// The timeline requests, in order.
    fn timelines(&self) -> Vec<Seen>;
}

impl XRequests for Server {
    fn lookups(&self) -> usize {
        self.count(LOOKUP)
    }
    fn timelines(&self) -> Vec<Seen> {
        self.to(TIMELINE_PATH)
    }
}

/// A server answering the user lookup with the recorded user (id 783214) and the timeline with
/// `timeline`, given how many timeline requests came before.
async fn serve(timeline: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Server {
    test_server::serve(move |seen: &Seen, before: &[Seen]| match seen.path() {
        LOOKUP => ok(fixture("x-v2-users-by-username.recorded.json")),
        TIMELINE_PATH => {
            let n = before.iter().filter(|s| s.path() == TIMELINE_PATH).count();
            timeline(seen, n)
        }
        _ => reply("404 Not Found", "text/plain", "no such path"),
    })
    .await
}

fn channel(server: &Server, edit: impl FnOnce(&mut XConfig)) -> X {
    let mut config = XConfig {
        base_url: server.base.clone(),
        username: "Twitter".to_string(),
        ..XConfig::new(SecretString::from(TOKEN))
    };
    edit(&mut config);
    X::new(CHANNEL.into(), config, fetcher(64 * 1024)).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// A timeline body of `(id, minutes ago, text, conversation root, replied-to)` posts.
fn timeline(posts: &[(u64, i64, &str, u64, Option<u64>)], next: Option<&str>) -> Vec<u8> {
    let data: Vec<Value> = posts
        .iter()
        .map(|(id, ago, text, root, parent)| {
            let mut post = serde_json::json!({
                "id": id.to_string(),
                "text": text,
                "created_at": crate::social::test_support::minutes_ago(*ago),
                "conversation_id": root.to_string(),
                "edit_history_tweet_ids": [id.to_string()],
            });
            if let Some(parent) = parent {
                post["referenced_tweets"] =
                    serde_json::json!([{"type": "replied_to", "id": parent.to_string()}]);
            }
            post
        })
        .collect();
    let mut body = serde_json::json!({"meta": {"result_count": data.len()}});
    if let Some(first) = data.first() {
        body["meta"]["newest_id"] = first["id"].clone();
    }
    if !data.is_empty() {
        body["data"] = Value::Array(data);
    }
    if let Some(next) = next {
        body["meta"]["next_token"] = Value::from(next);
    }
    serde_json::to_vec(&body).expect("JSON")
}

#[tokio::test]
async fn since_id_advances_and_the_username_is_looked_up_once() {
    let server = serve(|_, n| match n {
        0 => ok(fixture("x-v2-users-id-tweets.docs-example-fields.json")),
        // 1: its page 2; 2: the second probe.
        1 | 2 => ok(fixture("x-v2-users-id-tweets-empty.json")),
        3 => ok(timeline(
            &[(
                1_338_971_066_773_905_409,
                5,
                "Hello",
                1_338_971_066_773_905_409,
                None,
            )],
            None,
        )),
        _ => ok(fixture("x-v2-users-id-tweets-empty.json")),
    })
    .await;
    let x = channel(&server, |_| {});
    for n in 0..4 {
        let o = x.probe().await.unwrap_or_else(|e| panic!("probe {n}: {e}"));
        assert!(o.faults.is_empty(), "{:?}", o.faults);
        assert!(o.services.iter().all(|s| s.health != Health::Operational));
    }
    assert_eq!(server.lookups(), 1, "the id is cached");
    let sent = server.timelines();
    assert_eq!(sent.len(), 5);
    let first = &sent[0];
    assert_eq!(first.query("since_id"), None);
    assert_eq!(first.query("max_results").as_deref(), Some("100"));
    assert_eq!(first.query("tweet.fields").as_deref(), Some(TWEET_FIELDS));
    assert_eq!(first.query("exclude"), None, "replies are wanted");
    let start = first
        .query("start_time")
        .expect("the first probe asks only for history");
    let start = at(&start);
    let expect = Utc::now() - TimeDelta::days(3);
    assert!((start - expect).num_seconds().abs() < 60, "{start}");
    assert!(
        first.head.to_ascii_lowercase().contains(&format!(
            "authorization: bearer {}",
            TOKEN.to_ascii_lowercase()
        )),
        "{}",
        first.head
    );
    // The docs example has a next_token: page 2 repeats the query with the token.
    assert_eq!(
        sent[1].query("pagination_token").as_deref(),
        Some("7140dibdnow9c7btw3w29n4v1mtag9kegr0gr7y26pnw3")
    );
    assert_eq!(sent[1].query("since_id"), None);
    assert_eq!(sent[1].query("start_time"), first.query("start_time"));
    let since: Vec<Option<String>> = sent[2..].iter().map(|s| s.query("since_id")).collect();
    assert_eq!(
        since,
        vec![
            Some("1338971066773905408".to_string()),
            Some("1338971066773905408".to_string()),
            Some("1338971066773905409".to_string()),
        ],
        "newest seen; an empty answer keeps it"
    );
    assert!(sent[2..].iter().all(|s| s.query("start_time").is_none()));
}

#[tokio::test]
async fn ids_are_compared_as_numbers() {
    let server = serve(|_, n| {
        if n == 0 {
            // No meta.newest_id: the newest is the largest id, 1000, not "999".
            ok(br#"{"data":[{"id":"999","text":"a","created_at":"2026-01-01T00:00:00Z"},{"id":"1000","text":"b","created_at":"2026-01-01T00:00:00Z"}],"meta":{"result_count":2}}"#.to_vec())
        } else {
            ok(fixture("x-v2-users-id-tweets-empty.json"))
        }
    })
    .await;
    let x = channel(&server, |_| {});
    x.probe().await.expect("first");
    x.probe().await.expect("second");
    assert_eq!(
        server.timelines()[1].query("since_id").as_deref(),
        Some("1000")
    );
}

#[tokio::test]
async fn next_token_is_followed_up_to_max_pages() {
    let server = serve(|seen, n| {
        let token = seen.query("pagination_token");
        match (n, token.as_deref()) {
            (0, None) => ok(timeline(
                &[(30, 1, "c", 30, None), (29, 2, "b", 29, None)],
                Some("tokA"),
            )),
            (1, Some("tokA")) => ok(timeline(&[(28, 3, "a", 28, None)], None)),
            // The second probe: pages without end.
            (2..=4, _) => ok(timeline(
                &[(40 - n as u64, 1, "new", 40, None)],
                Some(&format!("tok{n}")),
            )),
            // The third probe: a token that repeats.
            _ => ok(timeline(&[(50, 1, "newer", 50, None)], Some("same"))),
        }
    })
    .await;
    let x = channel(&server, |c| c.max_pages = 3);
    let o = x.probe().await.expect("two pages");
    assert!(o.faults.is_empty(), "{:?}", o.faults);
    let sent = server.timelines();
    assert_eq!(sent[1].query("pagination_token").as_deref(), Some("tokA"));
    assert_eq!(sent[1].query("since_id"), None);
    assert_eq!(x.state.lock().await.log.len(), 3);

    let o = x.probe().await.expect("three pages, more left");
    let sent = server.timelines();
    assert_eq!(sent.len(), 5);
    assert!(
        sent[2..]
            .iter()
            .all(|s| s.query("since_id").as_deref() == Some("30"))
    );
    assert_eq!(o.faults.len(), 1, "{:?}", o.faults);
    assert_eq!(o.faults[0].error.class(), ErrorClass::Config);
    assert!(o.faults[0].services.is_empty());
    assert!(
        o.faults[0].error.to_string().contains("more than 3 pages"),
        "{:?}",
        o.faults
    );
    assert_eq!(x.state.lock().await.since_id, Some(38));

    let e = x.probe().await.expect_err("a paging loop");
    assert_eq!(e.class(), ErrorClass::Drift);
    assert!(e.to_string().contains("paging loop"), "{e}");
    assert_eq!(
        x.state.lock().await.since_id,
        Some(38),
        "a failed probe keeps since_id"
    );
}

#[tokio::test]
async fn a_spent_rate_limit_holds_the_endpoint_without_sending() {
    let reset = || (Utc::now().timestamp() + 120).to_string();
    let server = serve(move |_, n| {
        let mut r = ok(fixture("x-v2-users-id-tweets-empty.json"));
        if n == 0 {
            r.headers.push(("x-rate-limit-remaining", "0".to_string()));
            r.headers.push(("x-rate-limit-reset", reset()));
        }
        r
    })
    .await;
    let x = channel(&server, |_| {});
    x.probe().await.expect("the answer itself is fine");
    let e = x.probe().await.expect_err("held");
    assert_eq!(e.class(), ErrorClass::Throttled);
    assert!(
        e.to_string()
            .contains("X rate limit spent; no request until it resets in"),
        "{e}"
    );
    assert!(
        e.retry_after()
            .is_some_and(|w| w > Duration::from_secs(100) && w <= Duration::from_secs(120))
    );
    assert_eq!(server.timelines().len(), 1, "nothing sent while held");
    // After the reset the endpoint is free again.
    x.check_hold(
        Endpoint::Timeline,
        "w",
        Instant::now() + Duration::from_secs(121),
    )
    .expect("after the reset");
    x.probe().await.expect("after the reset");
    assert_eq!(server.timelines().len(), 2);
    // The lookup has its own window: a spent timeline does not hold it.
    assert!(x.check_hold(Endpoint::Lookup, "w", Instant::now()).is_ok());
}

#[tokio::test]
async fn a_429_holds_until_the_reset_and_one_without_a_reset_does_not() {
    let server = serve(|_, n| match n {
        0 => {
            let mut r = reply(
                "429 Too Many Requests",
                "application/problem+json",
                fixture("x-v2-error-429-too-many-requests.json"),
            );
            r.headers.push(("x-rate-limit-remaining", "0".to_string()));
            r.headers.push((
                "x-rate-limit-reset",
                (Utc::now().timestamp() + 60).to_string(),
            ));
            r
        }
        _ => reply(
            "429 Too Many Requests",
            JSON,
            fixture("x-v2-error-429-rate-limit.docs-example.json"),
        ),
    })
    .await;
    let x = channel(&server, |_| {});
    let e = x.probe().await.expect_err("429");
    assert_eq!(e.class(), ErrorClass::Throttled);
    assert!(
        e.retry_after()
            .is_some_and(|w| w > Duration::from_secs(50) && w <= Duration::from_secs(60)),
        "{e:?}"
    );
    let e = x.probe().await.expect_err("held");
    assert!(e.to_string().contains("no request until"), "{e}");
    assert_eq!(server.timelines().len(), 1);
    x.check_hold(
        Endpoint::Timeline,
        "w",
        Instant::now() + Duration::from_secs(61),
    )
    .expect("reset");
    let e = x.probe().await.expect_err("429 again, no reset given");
    assert_eq!((e.class(), e.retry_after()), (ErrorClass::Throttled, None));
    x.probe().await.expect_err("not held: asks again");
    assert_eq!(server.timelines().len(), 3);
}

#[tokio::test]
async fn credits_and_auth_failures_through_http() {
    let cases: &[(&str, &str, ErrorClass, &str)] = &[
        (
            "402 Payment Required",
            "x-v2-error-402-credits-depleted.json",
            ErrorClass::Credits,
            "no credits",
        ),
        (
            "429 Too Many Requests",
            "x-v2-error-429-usage-capped.json",
            ErrorClass::Credits,
            "usage cap",
        ),
        (
            "401 Unauthorized",
            "x-v2-error-401-unauthorized.json",
            ErrorClass::Auth,
            "bearer token refused",
        ),
        (
            "403 Forbidden",
            "x-v2-error-403-client-forbidden.json",
            ErrorClass::Auth,
            "Project",
        ),
    ];
    for (status, file, class, says) in cases {
        let server =
            serve(move |_, _| reply(status, "application/problem+json", fixture(file))).await;
        let x = channel(&server, |_| {});
        let e = x.probe().await.expect_err(file);
        assert_eq!(e.class(), *class, "{file}: {e}");
        assert!(
            e.to_string().contains(says) && e.to_string().contains(TIMELINE),
            "{file}: {e}"
        );
        assert!(!e.is_transient(), "{file}");
        x.probe().await.expect_err("no hold: asks again");
        assert_eq!(server.timelines().len(), 2, "{file}");
    }
}

#[tokio::test]
async fn partial_errors_keep_the_data_with_a_fault() {
    let server = serve(|_, _| {
        let mut body: Value =
            serde_json::from_slice(&timeline(&[(7, 1, "Hello", 7, None)], None)).expect("JSON");
        let example: Value =
            serde_json::from_slice(&fixture("x-v2-200-partial-errors.docs-example.json"))
                .expect("JSON");
        body["errors"] = example["errors"].clone();
        ok(serde_json::to_vec(&body).expect("JSON"))
    })
    .await;
    let x = channel(&server, |_| {});
    let o = x.probe().await.expect("partial");
    assert_eq!(x.state.lock().await.log.len(), 1, "the data is kept");
    assert_eq!(o.faults.len(), 1);
    assert!(o.faults[0].services.is_empty());
    assert!(
        o.faults[0]
            .error
            .to_string()
            .contains("Could not find tweet with id: [456]"),
        "{:?}",
        o.faults
    );
}

#[tokio::test]
async fn a_vanished_account_is_config_and_is_looked_up_again() {
    let server = serve(|_, n| match n {
        0 => ok(br#"{"errors":[{"detail":"Could not find user with id: [783214].","title":"Not Found Error","resource_type":"user","type":"https://api.twitter.com/2/problems/resource-not-found"}]}"#.to_vec()),
        _ => ok(fixture("x-v2-users-id-tweets-empty.json")),
    })
    .await;
    let x = channel(&server, |_| {});
    let e = x.probe().await.expect_err("gone");
    assert_eq!(e.class(), ErrorClass::Config, "{e}");
    x.probe().await.expect("found again");
    assert_eq!(server.lookups(), 2);
}

#[tokio::test]
async fn hostile_answers_are_drift() {
    let big = {
        let filler = "x".repeat(100 * 1024);
        format!(
            r#"{{"data":[{{"id":"1","text":"{filler}","created_at":"2026-01-01T00:00:00Z"}}],"meta":{{}}}}"#
        )
    };
    let cases: Vec<(&str, Reply, &str)> = vec![
        ("HTML 200", reply("200 OK", "text/html", "<!doctype html><html>Something went wrong</html>"), "HTML"),
        ("HTML labelled JSON", ok("<!DOCTYPE html><html></html>"), "HTML page"),
        ("no content type", Reply { status: "200 OK", headers: vec![], body: b"{}".to_vec(), delay: Duration::ZERO }, "Content-Type"),
        ("truncated JSON", ok(&fixture("x-v2-users-id-tweets.docs-example-fields.json")[..300]), "not the timeline object"),
        ("ids not numeric", ok(br#"{"data":[{"id":"abc","text":"t","created_at":"2026-01-01T00:00:00Z"}],"meta":{"result_count":1}}"#.to_vec()), "not numeric"),
        ("recorded without created_at", ok(fixture("x-v2-users-id-tweets.recorded.json")), "tweet.fields"),
        ("a bad time", ok(br#"{"data":[{"id":"5","text":"t","created_at":"yesterday"}],"meta":{}}"#.to_vec()), "is not a time"),
        ("a post of another shape", ok(br#"{"data":[{"id":5,"text":"t"}],"meta":{}}"#.to_vec()), "unexpected shape"),
        ("missing meta", ok(br#"{"data":[]}"#.to_vec()), "no meta"),
        ("wrong types", ok(br#"{"data":"none","meta":{}}"#.to_vec()), "not the timeline object"),
        ("huge body", ok(big), "cap"),
        ("empty body", ok(Vec::new()), "empty body"),
    ];
    let cases = Arc::new(Mutex::new(
        cases
            .into_iter()
            .map(|(n, r, s)| (n, Some(r), s))
            .collect::<Vec<_>>(),
    ));
    let count = cases.lock().expect("cases").len();
    for i in 0..count {
        let (name, says) = {
            let c = cases.lock().expect("cases");
            (c[i].0, c[i].2)
        };
        let shared = cases.clone();
        let server = serve(move |_, _| {
            shared.lock().expect("cases")[i]
                .1
                .take()
                .unwrap_or_else(|| ok(fixture("x-v2-users-id-tweets-empty.json")))
        })
        .await;
        let x = channel(&server, |_| {});
        let e = x.probe().await.expect_err(name);
        assert_eq!(e.class(), ErrorClass::Drift, "{name}: {e}");
        assert!(e.to_string().contains(says), "{name}: {e}");
        assert!(e.to_string().contains(TIMELINE), "{name}: {e}");
        assert_eq!(x.state.lock().await.since_id, None, "{name}: nothing kept");
    }
}

#[tokio::test]
async fn one_bad_post_is_a_fault_and_the_rest_stands() {
    let server = serve(|_, _| {
        let mut body: Value =
            serde_json::from_slice(&timeline(&[(9, 1, "good", 9, None)], None)).expect("JSON");
        if let Some(data) = body["data"].as_array_mut() {
            data.push(serde_json::json!({"id": "8", "text": "no time"}));
        }
        ok(serde_json::to_vec(&body).expect("JSON"))
    })
    .await;
    let x = channel(&server, |_| {});
    let o = x.probe().await.expect("one good post");
    assert_eq!(o.faults.len(), 1);
    assert_eq!(o.faults[0].error.class(), ErrorClass::Drift);
    assert!(
        o.faults[0]
            .error
            .to_string()
            .contains("1 of 2 posts skipped: post 8 has no created_at"),
        "{:?}",
        o.faults
    );
    assert_eq!(x.state.lock().await.log.len(), 1);
}

#[tokio::test]
async fn a_follow_up_without_an_id_joins_its_root_incident() {
    const ROOT: u64 = 1_862_000_000_000_000_100;
    const NEXT: u64 = 1_862_000_000_000_000_200;
    let first = "We're investigating an issue with accessing Outlook on the web. Further details can be found under EX571516 in the admin center.";
    let follow = "We’ve identified a potential networking issue and are reviewing telemetry to determine the next troubleshooting steps.";
    let server = serve(move |_, n| match n {
        0 => ok(timeline(&[(ROOT, 40, first, ROOT, None)], None)),
        _ => ok(timeline(&[(NEXT, 10, follow, ROOT, Some(ROOT))], None)),
    })
    .await;
    let x = channel(&server, |_| {});
    x.probe().await.expect("the root");
    let o = x.probe().await.expect("the follow-up");
    assert_eq!(
        server.timelines()[1].query("since_id"),
        Some(ROOT.to_string())
    );
    assert_eq!(o.incidents.len(), 1, "{:?}", o.incidents);
    let incident = &o.incidents[0];
    assert_eq!(incident.id.as_deref(), Some("EX571516"));
    assert_eq!(incident.summary.as_deref(), Some(follow));
    assert_eq!(incident.service.as_deref(), Some("Exchange"));
    assert!(!incident.resolved);
    let exchange = o
        .services
        .iter()
        .find(|s| s.id == "Exchange")
        .expect("Exchange");
    assert_eq!(exchange.incidents, vec!["EX571516".to_string()]);
    assert_eq!(o.channel, CHANNEL);
}

#[tokio::test]
async fn an_edited_post_replaces_its_earlier_version() {
    // X gives an edit a new id and lists every version's id in `edit_history_tweet_ids`.
    const ORIGINAL: u64 = 1_862_000_000_000_000_300;
    const EDITED: u64 = 1_862_000_000_000_000_400;
    let server = serve(move |_, n| match n {
        0 => ok(timeline(
            &[(
                ORIGINAL,
                30,
                "We're investigating an issue with Outlook on the web under EX571561.",
                ORIGINAL,
                None,
            )],
            None,
        )),
        _ => {
            let mut body: Value = serde_json::from_slice(&timeline(
                &[(
                    EDITED,
                    25,
                    "We're investigating an issue with Outlook on the web under EX571516.",
                    EDITED,
                    None,
                )],
                None,
            ))
            .expect("JSON");
            body["data"][0]["edit_history_tweet_ids"] =
                serde_json::json!([ORIGINAL.to_string(), EDITED.to_string()]);
            ok(serde_json::to_vec(&body).expect("JSON"))
        }
    })
    .await;
    let x = channel(&server, |_| {});
    x.probe().await.expect("the original");
    let o = x.probe().await.expect("the edit");
    let ids: Vec<Option<&str>> = o.incidents.iter().map(|i| i.id.as_deref()).collect();
    assert_eq!(
        ids,
        [Some("EX571516")],
        "the typo'd id is gone with its version"
    );
}

// ---------------------------------------------------------------------------------------------
// The token never leaks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_bearer_token_appears_nowhere() {
    let captured = capture_logs();

    // Upstream bodies that quote the token back, among the usual answers.
    let server = serve(|_, n| match n {
        0 => reply("401 Unauthorized", JSON, format!(r#"{{"title":"Unauthorized","type":"about:blank","status":401,"detail":"bad token {TOKEN}"}}"#)),
        1 => reply("403 Forbidden", JSON, format!(r#"{{"title":"Forbidden","detail":"token {TOKEN} is not allowed"}}"#)),
        2 => reply("400 Bad Request", JSON, format!(r#"{{"title":"Invalid Request","detail":"{TOKEN}","type":"https://api.x.com/2/problems/invalid-request"}}"#)),
        3 => ok(format!(r#"{{"errors":[{{"title":"Weird","detail":"{TOKEN}"}}]}}"#)),
        4 => ok(format!(r#"{{"data":[{{"id":"1","text":"t","created_at":"2026-01-01T00:00:00Z"}}],"errors":[{{"title":"Partial","detail":"{TOKEN}"}}],"meta":{{}}}}"#)),
        _ => ok(timeline(&[(2, 1, "We're investigating an issue with Teams.", 2, None)], None)),
    })
    .await;
    let x = channel(&server, |_| {});
    let mut shown = vec![
        format!("{x:?}"),
        format!("{:?}", XConfig::new(SecretString::from(TOKEN))),
    ];
    for _ in 0..6 {
        shown.push(everything_shown(&x.probe().await));
    }
    // Another test's thread may have registered our log callsite while this scoped subscriber
    // was being set up, caching "never" for it (a race of scoped dispatchers). It is registered
    // now, so recomputing interest is exact: a fresh channel's first probe is logged for sure.
    tracing::callsite::rebuild_interest_cache();
    let again = channel(&server, |_| {});
    again.probe().await.expect("a probe that succeeds");
    shown.push(format!("{again:?}"));
    let logs = captured.text();
    assert!(
        logs.contains("x: account resolved"),
        "the capture works: {logs}"
    );
    shown.push(logs);
    let everything = shown.join("\n");
    assert!(
        everything.contains("HTTP 401") && everything.contains("[REDACTED]"),
        "{everything}"
    );
    assert!(
        everything.contains("investigating"),
        "a probe succeeded: {everything}"
    );
    assert!(!everything.contains(TOKEN), "leaked: {everything}");
    assert!(
        server
            .timelines()
            .iter()
            .all(|s| s.head.contains(&format!("Bearer {TOKEN}"))),
        "the token was sent, in the header only"
    );
    assert!(server.seen().iter().all(|s| !s.target.contains(TOKEN)));
}
