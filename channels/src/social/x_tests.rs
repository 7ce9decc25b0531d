//! Tests of the X channel's pure parts: X's error bodies (the public fixtures in
//! `channels/tests/fixtures/social/x/`, see the README there) through the error reader, the
//! timeline and user parsers from bytes, the rate-limit headers and the settings check. Whole
//! probes on loopback are in `x_probe_tests.rs`.
//!
//! The shared fixture folder (`../shared/fixtures/social/`) is read when it exists: its X files
//! must still be the bytes we copied, and the error table runs over them too. When it is absent
//! that part is skipped with a note; the in-repo copies cover the same cases.

use super::*;

use std::path::Path;

use crate::error::ErrorClass;
use crate::http::Limits;
use crate::social::test_support::{SHARED, at, check_refused_settings, fixture_in};
use crate::test_server::fetcher_with;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/social/x/");
const CHANNEL: &str = "msft365status-x";
pub(super) const TOKEN: &str = "AAAAtest-bearer-Zq81xKv";
pub(super) const JSON: &str = "application/json; charset=utf-8";
pub(super) const TIMELINE: &str = "GET /2/users/783214/tweets";

pub(super) fn fixture(name: &str) -> Vec<u8> {
    fixture_in(FIXTURES, name)
}

fn now() -> DateTime<Utc> {
    at("2026-11-25T12:00:00Z")
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, HeaderValue::from_str(v).expect("a header value"));
    }
    map
}

/// The headers of a recorded `.headers.txt` (the request and status lines skipped).
fn recorded_headers(name: &str) -> HeaderMap {
    let text = String::from_utf8(fixture(name)).expect("UTF-8");
    let mut map = HeaderMap::new();
    for line in text.lines().skip(2) {
        if let Some((k, v)) = line.split_once(':') {
            let name = reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).expect("name");
            map.append(name, HeaderValue::from_str(v.trim()).expect("value"));
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

/// An error fixture: file, status, headers sent with it, class, words the message must say,
/// and the wait it must carry.
type ErrorCase = (
    &'static str,
    u16,
    Vec<(&'static str, String)>,
    ErrorClass,
    &'static [&'static str],
    Option<Duration>,
);

fn error_cases() -> Vec<ErrorCase> {
    let reset = (now().timestamp() + 300).to_string();
    vec![
        (
            "x-v2-error-401-unauthorized.json",
            401,
            vec![],
            ErrorClass::Auth,
            &["HTTP 401", "bearer token refused", TIMELINE],
            None,
        ),
        (
            "x-v2-error-402-credits-depleted.json",
            402,
            vec![],
            ErrorClass::Credits,
            &[
                "CreditsDepleted",
                "no credits",
                "polling stops until credits are added",
            ],
            None,
        ),
        (
            "x-v2-error-403-client-forbidden.json",
            403,
            vec![],
            ErrorClass::Auth,
            &["client-not-enrolled", "attached to a Project"],
            None,
        ),
        (
            "x-v2-error-429-too-many-requests.json",
            429,
            vec![
                ("x-rate-limit-remaining", "0".to_string()),
                ("x-rate-limit-reset", reset.clone()),
            ],
            ErrorClass::Throttled,
            &["HTTP 429", "rate limit reached", "resets in 5m"],
            Some(Duration::from_secs(300)),
        ),
        (
            "x-v2-error-429-rate-limit.docs-example.json",
            429,
            vec![("retry-after", "42".to_string())],
            ErrorClass::Throttled,
            &["rate limit reached", "resets in 42s"],
            Some(Duration::from_secs(42)),
        ),
        (
            "x-v2-error-429-usage-capped.json",
            429,
            vec![("x-rate-limit-reset", reset)],
            ErrorClass::Credits,
            &[
                "UsageCapExceeded",
                "Monthly product cap",
                "retrying will not help",
            ],
            None,
        ),
        (
            "x-v2-error-400-invalid-request.docs-example.json",
            400,
            vec![],
            ErrorClass::Http,
            &[
                "HTTP 400",
                "Invalid Request: The 'query' parameter is required.",
            ],
            None,
        ),
    ]
}

fn check_error_table(dir: &str) {
    for (name, status, sent, class, says, wait) in error_cases() {
        let e = read_error(
            status,
            &headers(&sent),
            &fixture_in(dir, name),
            TIMELINE,
            now(),
            TOKEN,
        );
        assert_eq!(e.class(), class, "{name}: {e}");
        for word in says {
            assert!(e.to_string().contains(word), "{name}: {e:?} lacks {word:?}");
        }
        assert_eq!(e.retry_after(), wait, "{name}");
        assert!(
            e.to_string().len() < 300,
            "{name}: keep it short: {e} ({} bytes)",
            e.to_string().len()
        );
    }
    // The partial-error example: its errors[] next to data of ours, as X sends it on a timeline.
    let mut body: Value = serde_json::from_slice(&fixture_in(
        dir,
        "x-v2-200-partial-errors.docs-example.json",
    ))
    .expect("JSON");
    body["data"][0]["created_at"] = Value::from("2026-11-25T11:00:00.000Z");
    body["meta"] = serde_json::json!({"result_count": 1, "newest_id": "123"});
    let page = parse_timeline(&serde_json::to_vec(&body).expect("JSON"), TIMELINE, TOKEN)
        .expect("a timeline with partial errors");
    assert_eq!(page.posts.len(), 1, "the data is kept");
    assert_eq!(&*page.posts[0].text, "Hello");
    let e = partial_errors_error(TIMELINE, &page.partial_errors, TOKEN);
    assert_eq!(e.class(), ErrorClass::Drift);
    assert!(
        e.to_string()
            .contains("1 partial error(s) next to the data: Not Found Error: Could not find tweet with id: [456]."),
        "{e}"
    );
}

#[test]
fn every_x_error_body_maps_to_its_class_and_message() {
    check_error_table(FIXTURES);
}

#[test]
fn the_shared_fixtures_are_our_copies_and_map_the_same() {
    if !Path::new(SHARED).is_dir() {
        println!("skipped: {SHARED} not found; the in-repo copies cover the same cases");
        return;
    }
    let ours: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("fixture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("x-v2-"))
        .collect();
    assert_eq!(ours.len(), 14, "{ours:?}");
    for name in &ours {
        assert_eq!(fixture(name), fixture_in(SHARED, name), "{name} differs");
    }
    let shared_x = std::fs::read_dir(SHARED)
        .expect("shared dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("x-v2-"))
        .count();
    assert_eq!(shared_x, ours.len(), "a new shared X fixture to copy");
    check_error_table(SHARED);
}

#[test]
fn the_type_host_does_not_matter_and_status_alone_still_classifies() {
    let body = |host: &str, kind: &str| {
        format!(r#"{{"type":"https://{host}/2/problems/{kind}","title":"t","detail":"d"}}"#)
    };
    for host in ["api.twitter.com", "api.x.com"] {
        let e = read_error(
            429,
            &HeaderMap::new(),
            body(host, "usage-capped").as_bytes(),
            "w",
            now(),
            TOKEN,
        );
        assert_eq!(e.class(), ErrorClass::Credits, "{host}");
        let e = read_error(
            403,
            &HeaderMap::new(),
            body(host, "credits").as_bytes(),
            "w",
            now(),
            TOKEN,
        );
        assert_eq!(
            e.class(),
            ErrorClass::Credits,
            "{host}: type wins over status"
        );
        let e = read_error(
            429,
            &HeaderMap::new(),
            body(host, "rate-limit-exceeded").as_bytes(),
            "w",
            now(),
            TOKEN,
        );
        assert_eq!(e.class(), ErrorClass::Throttled, "{host}");
        assert_eq!(e.retry_after(), None);
        assert!(e.to_string().contains("no reset time given"), "{e}");
    }
    let cases: &[(u16, &[u8], ErrorClass)] = &[
        (401, b"", ErrorClass::Auth),
        (402, b"<html>payment</html>", ErrorClass::Credits),
        (
            403,
            br#"{"title":"Forbidden","detail":"nope"}"#,
            ErrorClass::Auth,
        ),
        (404, b"not json", ErrorClass::Http),
        (503, br#"{"title":"Service Unavailable"}"#, ErrorClass::Http),
    ];
    for (status, body, class) in cases {
        let e = read_error(*status, &HeaderMap::new(), body, "w", now(), TOKEN);
        assert_eq!(e.class(), *class, "{status}: {e}");
    }
    // A reset in the past or absurdly far is not obeyed.
    for reset in [now().timestamp() - 5, now().timestamp() + 10 * 86_400] {
        let sent = headers(&[("x-rate-limit-reset", reset.to_string())]);
        let e = read_error(429, &sent, b"{}", "w", now(), TOKEN);
        assert_eq!(e.retry_after(), None, "reset {reset}");
    }
}

// ---------------------------------------------------------------------------------------------
// Success bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn the_recorded_user_and_timeline_parse() {
    let id = parse_user(
        &fixture("x-v2-users-by-username.recorded.json"),
        "GET /2/users/by/username/Twitter",
        "Twitter",
        TOKEN,
    )
    .expect("the recorded user");
    assert_eq!(id, "783214");

    // Recorded with default fields: ids, texts and meta, but no created_at.
    let page = parse_timeline(
        &fixture("x-v2-users-id-tweets.recorded.json"),
        TIMELINE,
        TOKEN,
    )
    .expect("the recorded page");
    assert_eq!(page.raw_count, 2);
    assert_eq!(page.newest_id, Some(1_577_730_467_436_138_524));
    assert_eq!(
        page.next_token.as_deref(),
        Some("7140dibdnow9c7btw4232poeq0wapgnwgwqwvuwn3peex")
    );
    assert_eq!(
        page.ids,
        vec![1_577_730_467_436_138_524, 1_565_318_587_736_285_184]
    );
    assert!(page.posts.is_empty());
    assert_eq!(page.skipped.len(), 2);
    assert!(
        page.skipped[0].contains("has no created_at"),
        "{:?}",
        page.skipped
    );

    // The docs example with the fields we ask for gives whole posts.
    let page = parse_timeline(
        &fixture("x-v2-users-id-tweets.docs-example-fields.json"),
        TIMELINE,
        TOKEN,
    )
    .expect("the docs example");
    assert_eq!(page.posts.len(), 2);
    assert!(page.skipped.is_empty());
    let first = &page.posts[0];
    assert_eq!(first.id, "1338971066773905408");
    assert_eq!(first.created_at, at("2020-12-15T22:15:53Z"));
    assert_eq!(first.root.as_deref(), Some("1338971066773905408"));
    assert_eq!(first.reply_to, None);
    assert!(
        first.text.contains("recent search & filtered stream"),
        "entities unescaped"
    );
    assert_eq!(page.newest_id, Some(1_338_971_066_773_905_408));
}

#[test]
fn the_empty_timeline_is_a_fine_answer() {
    let page = parse_timeline(&fixture("x-v2-users-id-tweets-empty.json"), TIMELINE, TOKEN)
        .expect("an empty page");
    assert!(page.posts.is_empty() && page.skipped.is_empty() && page.ids.is_empty());
    assert_eq!((page.newest_id, page.next_token), (None, None));
}

#[test]
fn replies_carry_their_parent_and_conversation() {
    let body = br#"{"data":[{"id":"1862000000000000200","text":"We&#39;ve &lt;identified&gt; it","created_at":"2026-11-25T11:00:00.000Z","conversation_id":"1862000000000000100","in_reply_to_user_id":"1","referenced_tweets":[{"type":"quoted","id":"5"},{"type":"replied_to","id":"1862000000000000150"}]}],"meta":{"result_count":1,"newest_id":"1862000000000000200"}}"#;
    let page = parse_timeline(body, TIMELINE, TOKEN).expect("a reply");
    let post = &page.posts[0];
    assert_eq!(post.reply_to.as_deref(), Some("1862000000000000150"));
    assert_eq!(post.root.as_deref(), Some("1862000000000000100"));
    assert_eq!(
        &*post.text, "We&#39;ve <identified> it",
        "only what X escapes"
    );
}

#[test]
fn errors_only_answers_and_bad_envelopes() {
    let not_found = br#"{"errors":[{"value":"nobody_here_x","detail":"Could not find user with username: [nobody_here_x].","title":"Not Found Error","resource_type":"user","parameter":"username","resource_id":"nobody_here_x","type":"https://api.twitter.com/2/problems/resource-not-found"}]}"#;
    let e = parse_user(
        not_found,
        "GET /2/users/by/username/nobody_here_x",
        "nobody_here_x",
        TOKEN,
    )
    .expect_err("no such user");
    assert_eq!(e.class(), ErrorClass::Config);
    assert!(e.to_string().contains("no X account @nobody_here_x"), "{e}");
    let e = parse_timeline(not_found, TIMELINE, TOKEN).expect_err("timeline of nobody");
    assert_eq!(e.class(), ErrorClass::Config, "{e}");
    let e = parse_timeline(
        br#"{"errors":[{"title":"Authorization Error","type":"https://api.x.com/2/problems/not-authorized-for-resource"}]}"#,
        TIMELINE,
        TOKEN,
    )
    .expect_err("protected");
    assert_eq!(e.class(), ErrorClass::Auth, "{e}");

    let drift: &[(&str, &[u8])] = &[
        (
            "user id not numeric",
            br#"{"data":{"id":"abc","username":"x"}}"#,
        ),
        ("user without data or errors", b"{}"),
        ("user data of another type", br#"{"data":[1]}"#),
        ("no meta", br#"{"data":[]}"#),
        ("data not an array", br#"{"data":{"id":"1"},"meta":{}}"#),
        (
            "meta of wrong types",
            br#"{"meta":{"result_count":"zero"}}"#,
        ),
        ("newest_id not numeric", br#"{"meta":{"newest_id":"12a"}}"#),
        ("count without data", br#"{"meta":{"result_count":3}}"#),
        ("unknown errors only", br#"{"errors":[{"title":"Weird"}]}"#),
        ("an array", b"[]"),
        ("HTML", b"<html><body>Something went wrong</body></html>"),
    ];
    for (name, body) in drift {
        let e = if name.starts_with("user") {
            parse_user(body, "GET /2/users/by/username/x", "x", TOKEN).map(|_| ())
        } else {
            parse_timeline(body, TIMELINE, TOKEN).map(|_| ())
        }
        .expect_err(name);
        assert_eq!(e.class(), ErrorClass::Drift, "{name}: {e}");
    }
}

#[test]
fn a_body_cut_at_any_byte_is_an_error_never_a_panic() {
    for name in [
        "x-v2-users-id-tweets.docs-example-fields.json",
        "x-v2-users-id-tweets.recorded.json",
        "x-v2-users-by-username.recorded.json",
    ] {
        let body = fixture(name);
        let whole = String::from_utf8_lossy(&body).trim_end().len();
        for cut in 0..whole {
            let part = &body[..cut];
            assert!(
                parse_timeline(part, TIMELINE, TOKEN).is_err(),
                "{name} cut at {cut}"
            );
            assert!(
                parse_user(part, "w", "x", TOKEN).is_err(),
                "{name} cut at {cut}"
            );
        }
    }
}

#[test]
fn spent_limits_come_from_the_recorded_headers() {
    let recorded = recorded_headers("x-v2-users-id-tweets.recorded.headers.txt");
    let then = at("2022-10-07T22:43:18Z");
    assert_eq!(spent_limit(&recorded, then), None, "1498 left: no hold");
    let mut spent = recorded.clone();
    spent.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    assert_eq!(spent_limit(&spent, then), Some(Duration::from_secs(630)));
    assert_eq!(
        spent_limit(&spent, at("2022-10-07T23:00:00Z")),
        None,
        "reset passed"
    );
    let lookup = recorded_headers("x-v2-users-by-username.recorded.headers.txt");
    assert_eq!(spent_limit(&lookup, at("2021-04-13T03:53:58Z")), None);
}

#[test]
fn x_waits_count_whole_seconds_from_the_current_second() {
    let mut spent = recorded_headers("x-v2-users-id-tweets.recorded.headers.txt");
    spent.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    let later = at("2022-10-07T22:43:18.900Z");
    assert_eq!(spent_limit(&spent, later), Some(Duration::from_secs(630)));
    let e = read_error(429, &spent, b"{}", TIMELINE, later, TOKEN);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(630)));
    assert!(e.to_string().contains("resets in 10m 30s"), "{e}");
}

/// A bad setting: name, the edit that makes it, and the setting the message names.
type SettingCase = (&'static str, Box<dyn Fn(&mut XConfig)>, &'static str);

#[test]
fn settings_are_checked_at_startup() {
    let cases: Vec<SettingCase> = vec![
        (
            "@ in name",
            Box::new(|c| c.username = "@MSFT365Status".into()),
            "username",
        ),
        (
            "long name",
            Box::new(|c| c.username = "a".repeat(16)),
            "username",
        ),
        (
            "empty name",
            Box::new(|c| c.username = String::new()),
            "username",
        ),
        (
            "dash",
            Box::new(|c| c.username = "msft-365".into()),
            "username",
        ),
        (
            "path",
            Box::new(|c| c.username = "a/../b".into()),
            "username",
        ),
        ("few", Box::new(|c| c.max_results = 4), "max_results"),
        ("many", Box::new(|c| c.max_results = 101), "max_results"),
        ("no pages", Box::new(|c| c.max_pages = 0), "max_pages"),
        (
            "no token",
            Box::new(|c| c.bearer_token = SecretString::from(" ")),
            "bearer_token",
        ),
        (
            "bad token",
            Box::new(|c| c.bearer_token = SecretString::from("a\nb")),
            "bearer_token",
        ),
        (
            "no URL",
            Box::new(|c| c.base_url = "api.x.com".into()),
            "base_url",
        ),
        (
            "query",
            Box::new(|c| c.base_url = "https://api.x.com/?a=1".into()),
            "base_url",
        ),
    ];
    check_refused_settings(
        cases,
        || XConfig::new(SecretString::from(TOKEN)),
        |config| X::new(CHANNEL.into(), config, fetcher_with(Limits::default())),
    );
    let x = X::new(
        CHANNEL.into(),
        XConfig::new(SecretString::from(TOKEN)),
        fetcher_with(Limits::default()),
    )
    .expect("the defaults");
    assert_eq!(
        (x.id(), x.kind(), x.username()),
        (CHANNEL, ChannelKind::X, DEFAULT_USERNAME)
    );
    assert_eq!(x.api_root, DEFAULT_BASE_URL);
}
