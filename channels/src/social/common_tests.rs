//! Tests of what the HTTP social channels share: `Link` parsing (against the recorded Mastodon
//! headers), rate-limit counters and resets, id order, endpoint building, error envelopes, the
//! hold and skipped-item faults.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use super::*;
use crate::social::test_support::{at, fixture};

/// The recorded Mastodon response headers (`name: value` lines after the status line).
fn recorded_headers() -> HeaderMap {
    let text = String::from_utf8(fixture(
        "mastodon/mastodon-account-statuses.recorded.headers.txt",
    ))
    .expect("UTF-8");
    let mut headers = HeaderMap::new();
    for line in text.lines().skip(2) {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    headers
}

#[test]
fn link_relations_are_found_in_recorded_and_odd_headers() {
    let headers = recorded_headers();
    let asked = reqwest::Url::parse(
        "http://localhost:3000/api/v1/accounts/117020565966271181/statuses?limit=5",
    )
    .expect("URL");
    let prev = link_target(&headers, "prev", &asked).expect("a prev link");
    assert_eq!(
        prev.as_str(),
        "http://localhost:3000/api/v1/accounts/117020565966271181/statuses?limit=5&min_id=117020580518794573"
    );
    let next = link_target(&headers, "next", &asked).expect("a next link");
    assert!(next.as_str().ends_with("max_id=117020580489281910"));
    assert_eq!(link_target(&headers, "last", &asked), None);

    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        (
            r#"<https://a/x?min_id=1>; rel="prev""#,
            "prev",
            Some("https://a/x?min_id=1"),
        ),
        (r#"<https://a/x?max_id=1>; rel="next""#, "prev", None),
        (
            r#"<https://a/1>; rel=next, <https://a/2>; rel=prev"#,
            "prev",
            Some("https://a/2"),
        ),
        (r#"<https://a/1>;rel="PREV""#, "prev", Some("https://a/1")),
        (
            r#"<https://a/1>; title="a, b"; rel="prev next""#,
            "next",
            Some("https://a/1"),
        ),
        (
            r#"<https://a/x?a=1,2>; rel="prev""#,
            "prev",
            Some("https://a/x?a=1,2"),
        ),
        (r#"<https://a/1>; rel="preview""#, "prev", None),
        ("<https://a/1; rel=\"prev\"", "prev", None),
        ("garbage", "prev", None),
        ("", "prev", None),
    ];
    for (value, rel, want) in cases {
        assert_eq!(link_rel(value, rel).as_deref(), want, "{value:?} rel={rel}");
    }
    // A relative target resolves against the URL that was asked.
    let mut relative = HeaderMap::new();
    relative.insert(
        reqwest::header::LINK,
        HeaderValue::from_static("</api/v1/x?min_id=9>; rel=\"prev\""),
    );
    assert_eq!(
        link_target(&relative, "prev", &asked)
            .map(|u| u.to_string())
            .as_deref(),
        Some("http://localhost:3000/api/v1/x?min_id=9")
    );
}

#[test]
fn rate_limit_counters_and_resets_are_read_in_every_form() {
    let recorded = recorded_headers();
    let before_reset = at("2026-08-01T13:54:00Z");
    assert_eq!(
        rate_limit(&recorded, before_reset),
        RateLimit {
            remaining: Some(299),
            reset_in: Some(Duration::from_micros(60_212_100)),
        },
        "the recorded ISO-8601 reset, with microseconds"
    );
    assert_eq!(
        rate_limit(&recorded, at("2026-08-01T14:00:00Z")).reset_in,
        None,
        "a past reset"
    );
    assert_eq!(
        rate_limit(&HeaderMap::new(), before_reset),
        RateLimit::default()
    );

    let now = at("2026-11-25T12:00:00Z");
    let cases: Vec<(&str, Option<Duration>)> = vec![
        ("2026-11-25T12:01:00Z", Some(Duration::from_secs(60))),
        ("2026-11-25T13:00:00+01:00", None),
        ("1795608060", Some(Duration::from_secs(60))),
        ("30", Some(Duration::from_secs(30))),
        ("0", None),
        ("-5", None),
        ("2026-11-27T12:00:00Z", None),
        ("tomorrow", None),
        ("", None),
    ];
    for (value, want) in cases {
        assert_eq!(reset_wait(value, now), want, "{value:?}");
    }
    let mut atproto = HeaderMap::new();
    atproto.insert("ratelimit-remaining", HeaderValue::from_static("0"));
    atproto.insert("ratelimit-reset", HeaderValue::from_static("1795608060"));
    assert_eq!(
        rate_limit(&atproto, now),
        RateLimit {
            remaining: Some(0),
            reset_in: Some(Duration::from_secs(60))
        }
    );
}

#[test]
fn ids_compare_as_numbers_when_both_are_numbers() {
    use std::cmp::Ordering::*;
    let cases = [
        ("100", "99", Greater),
        ("117020580518794573", "117020580511453871", Greater),
        (
            "99999999999999999999999999",
            "100000000000000000000000000",
            Less,
        ),
        ("007", "7", Equal),
        ("7", "7", Equal),
        ("abc", "abd", Less),
        ("10", "9a", Less),
        ("", "1", Less),
    ];
    for (a, b, want) in cases {
        assert_eq!(cmp_ids(a, b), want, "{a} vs {b}");
    }
}

#[test]
fn endpoints_encode_each_segment_and_the_query() {
    let base = reqwest::Url::parse("https://social.example/prefix/").expect("URL");
    let url = endpoint(
        &base,
        &["api", "v1", "accounts", "1/../../admin", "statuses"],
        &[("acct", "a@b.example"), ("x", "&=")],
    )
    .expect("an endpoint");
    assert_eq!(
        url.as_str(),
        "https://social.example/prefix/api/v1/accounts/1%2F..%2F..%2Fadmin/statuses?acct=a%40b.example&x=%26%3D"
    );
}

#[test]
fn error_envelopes_are_read_when_they_are_there() {
    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (
            fixture("mastodon/mastodon-accounts-lookup-404.recorded.json"),
            Some("Record not found"),
        ),
        (
            fixture("bluesky/bluesky-error-400-profile-not-found.json"),
            Some("InvalidRequest: Profile not found"),
        ),
        (
            br#"{"error":"invalid_token","error_description":"The access token is invalid"}"#
                .to_vec(),
            Some("invalid_token: The access token is invalid"),
        ),
        (br#"{"error":5}"#.to_vec(), None),
        (br#"{"message":"no error key"}"#.to_vec(), None),
        (b"<html>".to_vec(), None),
        (Vec::new(), None),
    ];
    for (body, want) in cases {
        assert_eq!(
            ErrorEnvelope::parse(&body).map(|e| e.said()).as_deref(),
            want,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(10_000));
    assert!(ErrorEnvelope::parse(long.as_bytes()).is_some_and(|e| e.error.chars().count() <= 201));
}

#[tokio::test]
async fn a_hold_refuses_until_it_ends_and_never_shortens() {
    let hold = Hold::new("social.example");
    assert!(hold.check().is_ok());
    hold.hold_for(Duration::from_millis(300), "HTTP 429");
    hold.hold_for(Duration::from_millis(10), "a shorter wait");
    let e = hold.check().expect_err("held");
    assert_eq!(e.class(), crate::error::ErrorClass::Throttled);
    assert!(
        e.to_string()
            .starts_with("social.example asked us to slow down (HTTP 429)"),
        "{e}"
    );
    assert!(
        e.retry_after()
            .is_some_and(|w| w > Duration::from_millis(200))
    );
    hold.hold_for(Duration::from_secs(10 * 24 * 3600), "absurd");
    assert!(hold.held_until().is_some_and(|(w, _)| w <= MAX_HOLD));
    let short = Hold::new("x");
    short.hold_for(Duration::from_millis(50), "brief");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(short.check().is_ok(), "the hold ends by itself");
}

#[test]
fn skipped_items_become_one_fault_naming_no_service() {
    let mut skipped = Skipped::default();
    assert_eq!(skipped.fault("statuses"), None);
    skipped.add(ProbeError::drift("GET /s", "status 3: missing field `id`"));
    let fault = skipped.fault("statuses").expect("a fault");
    assert!(fault.services.is_empty());
    assert_eq!(
        fault.error.to_string(),
        "GET /s: 1 of the statuses was unusable and skipped: status 3: missing field `id`"
    );
    let mut more = Skipped::default();
    more.add(ProbeError::drift("GET /s", "later"));
    skipped.extend(more);
    assert_eq!(
        skipped
            .fault("statuses")
            .map(|f| f.error.to_string())
            .as_deref(),
        Some(
            "GET /s: 2 of the statuses were unusable and skipped; the first: status 3: missing field `id`"
        )
    );
}

#[test]
fn post_text_reads_a_bounded_prefix_on_a_char_boundary() {
    let html = format!("<p>{}</p>", "é".repeat(MAX_POST_HTML));
    let text = post_text(&html);
    assert!(text.len() <= MAX_POST_HTML, "{}", text.len());
    assert!(text.starts_with('é'));
}

#[test]
fn x_rate_limit_headers_are_read_and_a_spent_window_says_how_long() {
    let now = at("2026-11-25T12:00:00Z");
    let mut x = HeaderMap::new();
    x.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    x.insert("x-rate-limit-reset", HeaderValue::from_static("1795608060"));
    let limit = rate_limit(&x, now);
    assert_eq!(limit.remaining, Some(0));
    assert_eq!(limit.spent(), Some(Duration::from_secs(60)));
    x.insert("x-rate-limit-remaining", HeaderValue::from_static("3"));
    assert_eq!(rate_limit(&x, now).spent(), None, "requests left");
    x.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    x.insert("x-rate-limit-reset", HeaderValue::from_static("1795607940"));
    assert_eq!(rate_limit(&x, now).spent(), None, "a past reset");
}

#[tokio::test]
async fn a_hold_seen_after_its_end_is_forgotten() {
    let hold = Hold::new("social.example");
    hold.hold_for(Duration::from_secs(60), "HTTP 429");
    assert!(hold.held_at(Instant::now()).is_some());
    assert_eq!(hold.held_at(Instant::now() + Duration::from_secs(61)), None);
    assert!(hold.check().is_ok(), "the ended wait is gone");
}

#[test]
fn upstream_words_are_trimmed_shortened_and_never_carry_a_secret() {
    assert_eq!(detail("  Not Found  ", &[]), "Not Found");
    assert_eq!(
        detail("bad token AAAAsecret1 here", &["AAAAsecret1"]),
        "bad token [REDACTED] here"
    );
    assert_eq!(detail("a b c", &["b"]), "a b c", "too short to redact");
    assert!(detail(&"x".repeat(1000), &[]).chars().count() <= MAX_DETAIL + 1);
}
