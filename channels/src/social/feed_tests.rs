//! Tests of the feed channel: the RSS 2.0 and Atom spec samples
//! (`channels/tests/fixtures/social/feed/`, see the README there), entries without dates,
//! hostile documents (including the input that makes feed-rs panic), and whole probes against a
//! loopback server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration as Delta, Utc};

use super::*;
use crate::error::ErrorClass;
use crate::social::test_support::{assert_copies_match_shared, assert_error, at, fixture};
use crate::test_server::{Seen, fetcher, reply, serve};

const WHAT: &str = "GET /feed";
const RSS: &str = "application/rss+xml";

/// An RSS 2.0 document with `(guid, title, description, pubDate)` items.
fn rss(items: &[(&str, &str, &str, Option<DateTime<Utc>>)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title, description, date)| {
            let date = date.map(|d| format!("<pubDate>{}</pubDate>", d.to_rfc2822())).unwrap_or_default();
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><description>{description}</description>{date}</item>"
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://x/</link><description>d</description>{items}</channel></rss>"#
    )
}

/// A feed document: name, the document, the texts (or words of the drift), entries skipped.
type EntryCase = (
    &'static str,
    String,
    Result<Vec<&'static str>, &'static str>,
    usize,
);

#[test]
fn the_shared_fixtures_were_copied_verbatim() {
    assert_copies_match_shared(&[
        ("feed/rss-2.0-spec-sample.xml", "rss-2.0-spec-sample.xml"),
        ("feed/atom-rfc4287-sample.xml", "atom-rfc4287-sample.xml"),
    ]);
}

#[test]
fn the_rss_2_0_spec_sample_parses_with_html_stripped() {
    let parsed = parse_feed(&fixture("feed/rss-2.0-spec-sample.xml"), WHAT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.entries, 2);
    assert_eq!(parsed.skipped.count, 0);
    let got: Vec<(&str, &str, DateTime<Utc>)> = parsed
        .posts
        .iter()
        .map(|p| (p.id.as_str(), &*p.text, p.created_at))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "http://scriptingnews.userland.com/backissues/2002/09/29#When:12:59:01PM",
                "Joshua Allen: Who loves namespaces?",
                at("2002-09-29T19:59:01Z"),
            ),
            (
                "http://scriptingnews.userland.com/backissues/2002/09/29#When:6:52:02PM",
                "Don Park: \"It is too easy for engineer to anticipate too much and XML Namespace is a frequent host of over-anticipation.\"",
                at("2002-09-30T01:52:02Z"),
            ),
        ]
    );
    assert!(
        parsed
            .posts
            .iter()
            .all(|p| p.reply_to.is_none() && p.root.is_none())
    );
}

#[test]
fn the_atom_rfc_4287_sample_parses_by_its_updated_date() {
    let parsed = parse_feed(&fixture("feed/atom-rfc4287-sample.xml"), WHAT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.posts.len(), 1);
    let post = &parsed.posts[0];
    assert_eq!(post.id, "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a");
    assert_eq!(&*post.text, "Atom-Powered Robots Run Amok Some text.");
    assert_eq!(
        post.created_at,
        at("2003-12-13T18:30:02Z"),
        "no published: updated stands in"
    );
}

#[test]
fn entries_take_title_and_summary_and_undated_ones_are_skipped() {
    let t = at("2026-11-25T10:00:00Z");
    let cases: Vec<EntryCase> = vec![
        (
            "title and HTML description",
            rss(&[(
                "a",
                "Exchange Online",
                "&lt;p&gt;Users can&amp;#39;t &lt;b&gt;send&lt;/b&gt; mail&lt;/p&gt;",
                Some(t),
            )]),
            Ok(vec!["Exchange Online Users can't send mail"]),
            0,
        ),
        (
            "a bridge repeating the post as the title",
            rss(&[(
                "b",
                "We're investigating an issue…",
                "We're investigating an issue with Teams. See TM402718.",
                Some(t),
            )]),
            Ok(vec![
                "We're investigating an issue with Teams. See TM402718.",
            ]),
            0,
        ),
        (
            "no title",
            rss(&[("c", "", "only a body", Some(t))]),
            Ok(vec!["only a body"]),
            0,
        ),
        (
            "one undated among dated",
            rss(&[("d1", "dated", "x", Some(t)), ("d2", "undated", "y", None)]),
            Ok(vec!["dated x"]),
            1,
        ),
        (
            "all undated",
            rss(&[("e1", "a", "x", None), ("e2", "b", "y", None)]),
            Err("none of the 2 entries was usable"),
            0,
        ),
        ("no entries", rss(&[]), Ok(vec![]), 0),
    ];
    for (name, body, want, skipped) in cases {
        match (parse_feed(body.as_bytes(), WHAT), want) {
            (Ok(parsed), Ok(texts)) => {
                let got: Vec<&str> = parsed.posts.iter().map(|p| &*p.text).collect();
                assert_eq!(got, texts, "{name}");
                assert_eq!(parsed.skipped.count, skipped, "{name}");
                if skipped > 0 {
                    let fault = parsed.skipped.fault("entries").expect("a fault");
                    assert!(fault.services.is_empty());
                    assert!(
                        fault
                            .error
                            .to_string()
                            .contains("neither a published nor an updated date"),
                        "{name}: {fault:?}"
                    );
                }
            }
            (Err(e), Err(says)) => {
                assert_eq!(e.class(), ErrorClass::Drift, "{name}: {e}");
                assert!(e.to_string().contains(says), "{name}: {e}");
                assert!(e.to_string().contains("neither a published"), "{name}: {e}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

/// feed-rs 3.0.0 slices an author string one byte before or after an e-mail address
/// (`parse_person_name_email`), so a multi-byte character there panics inside the parser.
const PANICKING_AUTHOR: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><guid>1</guid><pubDate>Mon, 30 Sep 2002 01:52:02 GMT</pubDate><author>Ops—ops@example.com</author></item></channel></rss>"#;

#[test]
fn the_feed_rs_author_panic_is_real_and_contained() {
    let raw = std::panic::catch_unwind(|| feed_rs::parser::parse(PANICKING_AUTHOR.as_bytes()));
    assert!(
        raw.is_err(),
        "feed-rs no longer panics on this input: the catch_unwind in parse_feed may be dropped"
    );
    let e = parse_feed(PANICKING_AUTHOR.as_bytes(), WHAT).expect_err("contained");
    assert_eq!(e.class(), ErrorClass::Drift);
    assert!(e.to_string().contains("the feed parser failed"), "{e}");
}

#[test]
fn hostile_documents_are_drift_and_never_panic() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("an HTML page", b"<!DOCTYPE html><html><head><title>Blog</title></head></html>".to_vec(), "an HTML page, not a feed"),
        ("HTML without doctype", b"\xef\xbb\xbf  <html><body>hi</body></html>".to_vec(), "an HTML page, not a feed"),
        ("truncated", br#"<?xml version="1.0"?><rss version="2.0"><channel><item><title>x"#.to_vec(), "not a readable RSS or Atom feed"),
        ("empty", Vec::new(), "not a readable RSS or Atom feed"),
        ("plain text", b"service is fine".to_vec(), "not a readable RSS or Atom feed"),
        ("other XML", b"<?xml version=\"1.0\"?><svg/>".to_vec(), "not a readable RSS or Atom feed"),
        ("not UTF-8", b"<rss version=\"2.0\"><channel><item>\xff\xfe</item></channel></rss>".to_vec(), ""),
        ("nesting bomb", format!("<rss version=\"2.0\"><channel>{}", "<a>".repeat(300_000)).into_bytes(), ""),
        ("entity expansion", br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss version="2.0"><channel><item><title>&b;</title></item></channel></rss>"#.to_vec(), ""),
    ];
    for (name, body, says) in cases {
        // Either a quiet empty feed or drift; never a panic, never anything else.
        match parse_feed(&body, WHAT) {
            Ok(parsed) => assert!(
                says.is_empty() && parsed.posts.is_empty(),
                "{name}: {parsed:?}"
            ),
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::Drift, "{name}: {e}");
                assert!(e.to_string().contains(says), "{name}: {e}");
            }
        }
    }
}

#[test]
fn deeply_nested_entry_html_is_read_in_bounded_time() {
    let t = Utc::now();
    let deep = format!(
        "&lt;p&gt;Teams is degraded&lt;/p&gt;{}",
        "&lt;div&gt;".repeat(60_000)
    );
    let body = rss(&[("a", "", &deep, Some(t)), ("b", "", &deep, Some(t))]);
    let started = std::time::Instant::now();
    let parsed = parse_feed(body.as_bytes(), WHAT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&*parsed.posts[0].text, "Teams is degraded");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn config_is_checked_at_startup() {
    for (url, says) in [
        ("", "not a URL"),
        ("feed.xml", "not a URL"),
        ("file:///etc/passwd", "http(s)"),
        ("ftp://x/feed", "http(s)"),
    ] {
        let e = Feed::new("f", FeedConfig::new(url), fetcher(1024)).expect_err(url);
        assert_eq!(e.class(), ErrorClass::Config, "{url}");
        assert!(e.to_string().contains(says), "{url}: {e}");
    }
    let f = Feed::new(
        "f",
        FeedConfig::new("https://example.org/feed?format=rss&token=abc"),
        fetcher(1024),
    )
    .expect("a query is fine");
    assert_eq!(
        f.what, "GET https://example.org/feed",
        "the query stays out of messages"
    );
    assert_eq!(f.kind(), ChannelKind::Feed);
}

#[tokio::test]
async fn probes_merge_entries_and_classify_answers_by_content_type() {
    let now = Utc::now();
    let probes = Arc::new(AtomicUsize::new(0));
    let counter = probes.clone();
    let server = serve(move |seen: &Seen, _: &[Seen]| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        match (seen.path(), n) {
            ("/atom", _) => reply("200 OK", "application/atom+xml", fixture("feed/atom-rfc4287-sample.xml")),
            ("/html", _) => reply("200 OK", "text/html; charset=utf-8", "<!doctype html><html></html>"),
            ("/xml-html", _) => reply("200 OK", "application/xml", "<!DOCTYPE html><html></html>"),
            ("/json", _) => reply("200 OK", "application/json", "{}"),
            ("/gone", _) => reply("404 Not Found", "text/html", "<html>no</html>"),
            ("/busy", _) => reply("429 Too Many Requests", "text/plain", "slow down").with("retry-after", "30"),
            // The rss feed: the root post first, then only the follow-up (the root scrolled off).
            (_, 0) => reply(
                "200 OK",
                RSS,
                rss(&[("root", "Exchange Online", "We're investigating an issue where users can't access Exchange Online mailboxes. See EX1234567.", Some(now - Delta::minutes(30)))]),
            ),
            _ => reply(
                "200 OK",
                "text/xml",
                rss(&[("follow-up", "Update", "We've identified a configuration change as the cause of EX1234567 and are reverting it.", Some(now - Delta::minutes(5)))]),
            ),
        }
    })
    .await;
    let feed = |path: &str| {
        Feed::new(
            "feed-test",
            FeedConfig::new(format!("{}{path}", server.base)),
            fetcher(64 * 1024),
        )
        .expect("channel")
    };

    let f = feed("/rss");
    f.probe().await.unwrap_or_else(|e| panic!("{e}"));
    let o = f.probe().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        f.log.lock().expect("log").len(),
        2,
        "an entry that scrolled off is kept"
    );
    assert_eq!(o.incidents.len(), 1, "{:?}", o.incidents);
    assert_eq!(o.incidents[0].id.as_deref(), Some("EX1234567"));
    assert_eq!(o.services.len(), 1);
    assert_eq!(
        (o.services[0].id.as_str(), o.services[0].health),
        ("Exchange", crate::model::Health::Incident)
    );

    let o = feed("/atom")
        .probe()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.incidents.is_empty(),
        "a 2003 entry is outside the history"
    );
    assert_eq!(o.source_time, None, "and pruned");

    for (path, class, says) in [
        ("/html", ErrorClass::Drift, "an HTML page, not a feed"),
        ("/xml-html", ErrorClass::Drift, "an HTML page, not a feed"),
        (
            "/json",
            ErrorClass::Drift,
            "expected XML, got application/json",
        ),
        ("/gone", ErrorClass::Http, "HTTP 404"),
        ("/busy", ErrorClass::Throttled, "asked to wait 30s"),
    ] {
        let f = feed(path);
        let e = f.probe().await.expect_err(path);
        assert_error(path, &e, class, &[says]);
    }
    let busy = feed("/busy");
    let _ = busy.probe().await;
    let sent = probes.load(Ordering::SeqCst);
    let e = busy.probe().await.expect_err("held");
    assert_eq!(e.class(), ErrorClass::Throttled);
    assert_eq!(
        probes.load(Ordering::SeqCst),
        sent,
        "held after a 429 without a request"
    );
}
