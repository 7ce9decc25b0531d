//! Hostile upstream answers for the public-site channel, end to end: mock upstream → channel →
//! resolver → status document. Every case must give a non-operational verdict, exit code 3 and
//! the right error class (design §3 rule 3, §6 "Truth").

use std::time::Duration;

use statusmon::resolver::{ChannelState, Visibility};
use statusmon_channels::{ErrorClass, Health};

use crate::support::{Reply, fixture, healthy_site, mock, site_config, status_document, with};

const SHELL: &str = "<!DOCTYPE html><html><head><title>Microsoft 365 Status</title></head>\
                     <body><div id=\"root\"></div></body></html>";

struct Case {
    name: &'static str,
    routes: Vec<(&'static str, Reply)>,
    extra_config: &'static str,
    class: ErrorClass,
    /// `Failing` when the admin center itself cannot be determined; `Fresh` when only another
    /// part of the site broke (the rest still counts, the broken part is unknown).
    state: ChannelState,
}

fn cases() -> Vec<Case> {
    use ChannelState::{Failing, Fresh};
    let feed = "/api/feed/mac";
    let mac = "/api/posts/mac";
    let case = |name, routes, class, state| Case {
        name,
        routes,
        extra_config: "",
        class,
        state,
    };
    vec![
        case(
            "SPA shell on every path (200 text/html)",
            vec![("/", Reply::html(200, SHELL))],
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "HTML body labelled application/json",
            with(
                with(healthy_site(), mac, Reply::json(SHELL)),
                feed,
                Reply::rss(SHELL),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "empty bodies",
            vec![
                ("/api/feed", Reply::rss("")),
                ("/api/posts", Reply::json("")),
            ],
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "unknown status word",
            with_status_word("Partially available"),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "the site's own word Unknown",
            with_status_word("Unknown"),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "missing <status> element, post fine",
            with(
                healthy_site(),
                feed,
                Reply::rss(
                    "<rss version=\"2.0\"><channel><title>x</title><item><title>Microsoft Admin Center</title><description>Available</description></item></channel></rss>",
                ),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "feed with no items",
            with(
                healthy_site(),
                feed,
                Reply::rss(fixture("feed-mac-no-items.rss.xml")),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "post without Status",
            with(
                healthy_site(),
                mac,
                Reply::json("{\"Id\":\"x\",\"Title\":\"\",\"Message\":\"Available\"}"),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "truncated JSON",
            with(
                healthy_site(),
                mac,
                Reply::json("{\"Id\":\"x\",\"Status\":\"Avail"),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "truncated XML",
            with(
                healthy_site(),
                feed,
                Reply::rss("<rss version=\"2.0\"><channel><item><status>Available</sta"),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "array where an object belongs",
            with(
                healthy_site(),
                mac,
                Reply::json(fixture("posts-m365Consumer.json")),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "no Content-Type",
            with(
                healthy_site(),
                mac,
                Reply::json(fixture("posts-mac-available.json")).without_content_type(),
            ),
            ErrorClass::Drift,
            Failing,
        ),
        Case {
            name: "oversized body",
            routes: with(
                healthy_site(),
                feed,
                Reply::rss(format!("<rss>{}</rss>", " ".repeat(8192))),
            ),
            extra_config: "max_body = 4096",
            class: ErrorClass::Drift,
            state: Failing,
        },
        case(
            "redirect to a sign-in page",
            vec![
                ("/api", Reply::html(302, "").header("location", "/login")),
                (
                    "/login",
                    Reply::html(200, "<html><body><form>Sign in</form></body></html>"),
                ),
            ],
            ErrorClass::Drift,
            Failing,
        ),
        case(
            "HTTP 503 everywhere",
            vec![("/", Reply::html(503, "<h1>Service Unavailable</h1>"))],
            ErrorClass::Http,
            Failing,
        ),
        case(
            "HTTP 500 on the feed while the post says Available",
            with(healthy_site(), feed, Reply::html(500, "oops")),
            ErrorClass::Http,
            Failing,
        ),
        case(
            "HTTP 404",
            vec![(
                "/",
                Reply::json("{\"error\":\"not found\"}").with_status(404),
            )],
            ErrorClass::Http,
            Failing,
        ),
        case(
            "HTTP 429 with Retry-After",
            vec![(
                "/",
                Reply::json("{}")
                    .with_status(429)
                    .header("retry-after", "30"),
            )],
            ErrorClass::Throttled,
            Failing,
        ),
        case(
            "HTTP 401",
            vec![("/", Reply::html(401, "Unauthorized"))],
            ErrorClass::Auth,
            Failing,
        ),
        case(
            "HTTP 403",
            vec![("/", Reply::html(403, "Forbidden"))],
            ErrorClass::Auth,
            Failing,
        ),
        Case {
            name: "hangs past the timeout",
            routes: vec![("/", Reply::json("{}").delayed(Duration::from_secs(5)))],
            extra_config: "",
            class: ErrorClass::Timeout,
            state: Failing,
        },
        case(
            "ppac drifts while the admin center is fine",
            with(
                healthy_site(),
                "/api/posts/ppac",
                Reply::json("{\"Status\":\"Mostly fine\"}"),
            ),
            ErrorClass::Drift,
            Fresh,
        ),
        case(
            "empty consumer list",
            with(healthy_site(), "/api/posts/m365Consumer", Reply::json("[]")),
            ErrorClass::Drift,
            Fresh,
        ),
        case(
            "azure answers 502",
            with(
                healthy_site(),
                "/api/posts/azure",
                Reply::html(502, "Bad gateway"),
            ),
            ErrorClass::Http,
            Fresh,
        ),
    ]
}

/// A healthy site whose admin-center feed and post both say `word` instead of "Available".
fn with_status_word(word: &str) -> Vec<(&'static str, Reply)> {
    let feed = String::from_utf8_lossy(&fixture("feed-mac-available.rss.xml"))
        .replace(">Available<", &format!(">{word}<"));
    let post = String::from_utf8_lossy(&fixture("posts-mac-available.json"))
        .replace("\"Available\"", &format!("\"{word}\""));
    assert!(
        feed.contains(word) && post.contains(word),
        "fixtures no longer say Available"
    );
    with(
        with(healthy_site(), "/api/feed/mac", Reply::rss(feed)),
        "/api/posts/mac",
        Reply::json(post),
    )
}

#[tokio::test]
async fn every_hostile_answer_is_unknown_with_a_classified_error_and_exit_3() {
    let cases = cases();
    assert!(
        cases.len() >= 12,
        "the issue asks for at least 12 hostile inputs"
    );
    let mut failures = Vec::new();
    for case in cases {
        let upstream = mock(case.routes).await;
        let document = status_document(site_config(&upstream.base_url, case.extra_config)).await;
        let target = &document.targets[0];
        let channel = &document.channels[0];
        let class = channel.error.as_ref().map(|e| e.class);
        let mut problems = Vec::new();
        if target.verdict == Health::Operational {
            problems.push("target verdict is operational".to_string());
        }
        if document.exit_code() != 3 {
            problems.push(format!("exit code {} (want 3)", document.exit_code()));
        }
        if class != Some(case.class) {
            problems.push(format!("error class {class:?} (want {:?})", case.class));
        }
        if channel.state != case.state {
            problems.push(format!(
                "channel state {:?} (want {:?})",
                channel.state, case.state
            ));
        }
        if channel
            .error
            .as_ref()
            .is_some_and(|e| e.message.trim().is_empty())
        {
            problems.push("empty error message".to_string());
        }
        if case.state == ChannelState::Failing {
            if target.visibility != Visibility::Blind {
                problems.push(format!("visibility {:?} (want blind)", target.visibility));
            }
            if target.admin_plane.verdict != Health::Unknown {
                problems.push(format!(
                    "admin plane {} (want unknown)",
                    target.admin_plane.verdict
                ));
            }
        } else {
            let unknown = target
                .services
                .iter()
                .filter(|s| s.verdict == Health::Unknown)
                .count();
            if unknown == 0 {
                problems.push("no service is unknown although a part of the site broke".into());
            }
            if target.admin_plane.verdict != Health::Operational {
                problems.push(
                    "the admin center should still be known from its healthy endpoints".into(),
                );
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "hostile cases that failed:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_redirect_to_a_sign_in_page_says_where_it_landed_without_its_query() {
    let upstream = mock(vec![
        (
            "/api",
            Reply::html(302, "").header("location", "/login?token=s3cr3t"),
        ),
        (
            "/login",
            Reply::html(200, "<html><body><form>Sign in</form></body></html>"),
        ),
    ])
    .await;
    let document = status_document(site_config(&upstream.base_url, "")).await;
    let error = document.channels[0]
        .error
        .as_ref()
        .expect("an error is shown");
    assert_eq!(error.class, ErrorClass::Drift);
    assert!(
        error
            .message
            .contains("after a redirect to http://127.0.0.1:"),
        "{}",
        error.message
    );
    assert!(error.message.contains("/login"), "{}", error.message);
    assert!(
        !error.message.contains("s3cr3t"),
        "query strings are not shown: {}",
        error.message
    );
}

#[tokio::test]
async fn unreachable_site_is_a_network_error_said_plainly() {
    // Bind and drop a listener, so nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let document = status_document(site_config(&format!("http://127.0.0.1:{port}"), "")).await;
    let error = document.channels[0]
        .error
        .as_ref()
        .expect("an error is shown");
    assert_eq!(error.class, ErrorClass::Network);
    assert!(
        error.message.contains("refused the connection"),
        "{}",
        error.message
    );
    assert_eq!(document.targets[0].visibility, Visibility::Blind);
    assert_eq!(document.exit_code(), 3);
    let table = document.render_table();
    assert!(
        table.contains("blind") && table.contains("network"),
        "{table}"
    );
}

#[tokio::test]
async fn healthy_fixtures_resolve_operational_with_provenance() {
    let upstream = mock(healthy_site()).await;
    let document = status_document(site_config(&upstream.base_url, "")).await;
    let target = &document.targets[0];
    assert_eq!(document.channels[0].state, ChannelState::Fresh);
    assert!(
        document.channels[0].error.is_none(),
        "{:?}",
        document.channels[0].error
    );
    assert_eq!(target.verdict, Health::Operational);
    assert_eq!(target.visibility, Visibility::Full);
    assert_eq!(target.admin_plane.verdict, Health::Operational);
    assert_eq!(target.admin_plane.source.as_deref(), Some("m365-public"));
    assert_eq!(document.exit_code(), 0);
    for service in &target.services {
        assert_eq!(
            service.source.as_deref(),
            Some("m365-public"),
            "{}",
            service.id
        );
        assert!(service.as_of.is_some(), "{} has no as_of", service.id);
    }
    assert!(target.services.iter().any(|s| s.id == "ppac"));
    assert!(target.services.iter().any(|s| s.id == "azure"));
    assert!(target.services.len() >= 5, "consumer workloads are listed");
}

#[tokio::test]
async fn degraded_admin_center_is_an_advisory_with_exit_1() {
    let routes = with(
        with(
            healthy_site(),
            "/api/feed/mac",
            Reply::rss(fixture("feed-mac-degraded.rss.xml")),
        ),
        "/api/posts/mac",
        Reply::json(fixture("posts-mac-degraded.json")),
    );
    let upstream = mock(routes).await;
    let document = status_document(site_config(&upstream.base_url, "")).await;
    let target = &document.targets[0];
    assert_eq!(target.admin_plane.verdict, Health::Advisory);
    assert_eq!(target.verdict, Health::Advisory);
    assert_eq!(document.exit_code(), 1);
    assert!(
        !target.incidents.is_empty(),
        "the degradation is listed as an incident"
    );
}

#[tokio::test]
async fn a_degradation_is_believed_even_when_the_other_view_fails() {
    let routes = with(
        with(healthy_site(), "/api/feed/mac", Reply::html(503, "down")),
        "/api/posts/mac",
        Reply::json(fixture("posts-mac-degraded.json")),
    );
    let upstream = mock(routes).await;
    let document = status_document(site_config(&upstream.base_url, "")).await;
    assert_eq!(document.targets[0].admin_plane.verdict, Health::Advisory);
    assert_eq!(document.channels[0].state, ChannelState::Fresh);
    assert_eq!(
        document.channels[0].error.as_ref().map(|e| e.class),
        Some(ErrorClass::Http)
    );
}

#[tokio::test]
async fn recorded_payloads_from_shared_fixtures_resolve_operational() {
    let Some(dir) = crate::support::shared_fixture_dir() else {
        return;
    };
    let read = |name: &str| std::fs::read(dir.join(name)).expect("shared fixture");
    let upstream = mock(vec![
        (
            "/api/feed/mac",
            Reply::rss(read("m365-api-feed-mac.rss.xml")),
        ),
        (
            "/api/posts/mac",
            Reply::json(read("m365-api-posts-mac.json")),
        ),
        (
            "/api/posts/ppac",
            Reply::json(read("m365-api-posts-mac-2026-09-18.quoted.json")),
        ),
        (
            "/api/posts/azure",
            Reply::json(read("m365-api-posts-azure.json")),
        ),
        (
            "/api/posts/m365Consumer",
            Reply::json(read("m365-api-posts-m365Consumer.json")),
        ),
    ])
    .await;
    let document = status_document(site_config(&upstream.base_url, "")).await;
    let target = &document.targets[0];
    assert_eq!(document.channels[0].state, ChannelState::Fresh);
    assert_eq!(target.admin_plane.verdict, Health::Operational);
    assert_eq!(target.verdict, Health::Operational);
    assert_eq!(
        target
            .services
            .iter()
            .filter(|s| s.source.is_some())
            .count(),
        13
    );
    let mac = target
        .services
        .iter()
        .find(|s| s.id == "mac")
        .expect("mac listed");
    assert_eq!(
        mac.as_of.map(|t| t.to_rfc3339()),
        Some("2026-08-01T00:32:32+00:00".to_string()),
        "as_of is InternalDateTime, not the request clock"
    );
}
