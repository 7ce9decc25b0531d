//! The dashboard: the banner's words for each state of the primary channel, escaping of hostile
//! upstream text, the incident timeline (merged across channels, deduplicated, bounded), and the
//! routes as a browser gets them (HTML, CSP, the fragment, the no-script refresh).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use statusmon::dashboard::{self, Timeline, Tone, banner};
use statusmon::resolver::{
    AdminPlane, ChannelRecord, ChannelState, Confidence, IncidentResolution, IncidentUpdate,
    Policy, PrimaryReport, ServiceResolution, TargetMemory, TargetResolution, TargetSpec,
    Visibility, resolve_target,
};
use statusmon::status::{ChannelReport, ErrorReport, StatusDocument};
use statusmon::web::{self, WebState};
use statusmon_channels::{
    ChannelKind, ErrorClass, Health, IncidentClassification, IncidentObservation, Observation,
};
use tower::ServiceExt;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, h, m, s)
        .single()
        .expect("valid time")
}

fn now() -> DateTime<Utc> {
    at(12, 10, 0)
}

fn channel(id: &str, kind: &str, state: ChannelState) -> ChannelReport {
    ChannelReport {
        id: id.into(),
        kind: kind.into(),
        state,
        last_success: Some(at(12, 0, 0)),
        error: None,
        faults: Vec::new(),
        interval: "1m".into(),
        max_age: "3m".into(),
        disabled_reason: None,
    }
}

fn failing(mut report: ChannelReport, message: &str) -> ChannelReport {
    report.state = ChannelState::Failing;
    report.error = Some(ErrorReport {
        class: ErrorClass::Http,
        message: message.into(),
        transient: true,
    });
    report
}

fn service(name: &str, verdict: Health, source: Option<&str>) -> ServiceResolution {
    ServiceResolution {
        id: name.into(),
        name: name.into(),
        verdict,
        source: source.map(str::to_string),
        confidence: Confidence::High,
        as_of: Some(at(12, 7, 0)),
        incidents: Vec::new(),
        status_text: None,
        message: None,
        last_known: None,
        annotations: Vec::new(),
        evidence: Vec::new(),
    }
}

/// Target "contoso" over contoso-graph (primary), m365-public and msft365status-x.
fn target(
    primary: ChannelState,
    visibility: Visibility,
    source: Option<&str>,
    verdict: Health,
) -> TargetResolution {
    TargetResolution {
        id: "contoso".into(),
        name: "Contoso".into(),
        verdict,
        visibility,
        source: source.map(str::to_string),
        confidence: match visibility {
            Visibility::Full => Confidence::High,
            Visibility::Degraded => Confidence::Medium,
            Visibility::Blind => Confidence::Low,
        },
        services: vec![service("Exchange Online", verdict, source)],
        incidents: Vec::new(),
        admin_plane: AdminPlane {
            verdict: Health::Operational,
            source: Some("m365-public".into()),
            explanation: None,
        },
        primary: PrimaryReport {
            channel: "contoso-graph".into(),
            state: primary,
            since: (primary != ChannelState::Fresh).then(|| at(12, 3, 0)),
            error_class: (primary == ChannelState::Failing).then_some(ErrorClass::Http),
            explanation: None,
        },
        channels: vec![
            "contoso-graph".into(),
            "m365-public".into(),
            "msft365status-x".into(),
        ],
    }
}

fn channels(graph: ChannelReport) -> Vec<ChannelReport> {
    vec![
        graph,
        channel("m365-public", "m365_status_site", ChannelState::Fresh),
        channel("msft365status-x", "x", ChannelState::Fresh),
    ]
}

fn document(target: TargetResolution, channels: Vec<ChannelReport>) -> StatusDocument {
    StatusDocument {
        generated_at: now(),
        targets: vec![Arc::new(target)],
        channels: channels.into_iter().map(Arc::new).collect(),
    }
}

#[test]
fn banner_says_all_is_well_when_the_primary_is_fresh_and_everything_is_operational() {
    let target = target(
        ChannelState::Fresh,
        Visibility::Full,
        Some("contoso-graph"),
        Health::Operational,
    );
    let all = channels(channel("contoso-graph", "graph", ChannelState::Fresh));
    let banner = banner(&target, &all, now());
    assert_eq!(banner.tone, Tone::Ok);
    assert_eq!(
        banner.text,
        "All is well: every service is operational according to the primary channel, \
         Graph (contoso-graph) (full visibility, high confidence)."
    );
}

#[test]
fn banner_with_a_fresh_primary_and_an_incident_names_the_verdict() {
    let target = target(
        ChannelState::Fresh,
        Visibility::Full,
        Some("contoso-graph"),
        Health::Incident,
    );
    let all = channels(channel("contoso-graph", "graph", ChannelState::Fresh));
    let banner = banner(&target, &all, now());
    assert_eq!(banner.tone, Tone::Bad);
    assert!(
        banner.text.contains("Graph (contoso-graph), is up") && banner.text.contains("INCIDENT"),
        "{}",
        banner.text
    );
}

#[test]
fn banner_says_the_primary_is_down_since_when_why_and_what_the_status_rests_on() {
    let target = target(
        ChannelState::Failing,
        Visibility::Degraded,
        Some("m365-public"),
        Health::Unknown,
    );
    let all = channels(failing(
        channel("contoso-graph", "graph", ChannelState::Failing),
        "GET /v1.0/admin/serviceAnnouncement/healthOverviews: HTTP 503",
    ));
    let banner = banner(&target, &all, now());
    assert_eq!(banner.tone, Tone::Warn);
    assert_eq!(
        banner.text,
        "The primary channel, Graph (contoso-graph), is down: failing since 12:03:00 UTC \
         (7m ago) (http: GET /v1.0/admin/serviceAnnouncement/healthOverviews: HTTP 503) — \
         status now rests on the public status site (m365-public) (medium confidence)."
    );
}

#[test]
fn banner_says_a_stale_primary_is_down_with_its_last_good_answer() {
    let target = target(
        ChannelState::Stale,
        Visibility::Degraded,
        Some("m365-public"),
        Health::Unknown,
    );
    let all = channels(channel("contoso-graph", "graph", ChannelState::Stale));
    let text = banner(&target, &all, now()).text;
    assert!(
        text.starts_with(
            "The primary channel, Graph (contoso-graph), is down: stale, no good answer since \
             12:00:00 UTC (10m ago)"
        ),
        "{text}"
    );
    assert!(text.contains("now rests on the public status site (m365-public)"));
}

#[test]
fn banner_says_blind_when_no_channel_is_fresh() {
    let target = target(
        ChannelState::Failing,
        Visibility::Blind,
        None,
        Health::Unknown,
    );
    let mut all = channels(failing(
        channel("contoso-graph", "graph", ChannelState::Failing),
        "HTTP 503",
    ));
    for c in &mut all[1..] {
        c.state = ChannelState::Stale;
    }
    let banner = banner(&target, &all, now());
    assert_eq!(banner.tone, Tone::Bad);
    assert!(
        banner.text.starts_with(
            "The primary channel, Graph (contoso-graph), is down: failing since 12:03:00 UTC"
        ),
        "{}",
        banner.text
    );
    assert!(
        banner
            .text
            .contains("no other channel is fresh: statusmon is blind for this target"),
        "{}",
        banner.text
    );
}

#[test]
fn the_page_shows_banner_visibility_services_channels_and_their_errors() {
    let target = target(
        ChannelState::Failing,
        Visibility::Degraded,
        Some("m365-public"),
        Health::Unknown,
    );
    let all = channels(failing(
        channel("contoso-graph", "graph", ChannelState::Failing),
        "HTTP 503 from Graph",
    ));
    let page = dashboard::render_page(
        Some(&document(target, all)),
        &Timeline::default(),
        None,
        now(),
    )
    .into_string();
    for expected in [
        "is down: failing since 12:03:00 UTC",
        "Visibility: <strong>degraded</strong>",
        "Verdict: <strong>unknown</strong>",
        "<td data-label=\"Service\">Exchange Online</td>",
        "<td data-label=\"As of\">3m ago</td>",
        "contoso-graph (primary)",
        "<td data-label=\"State\" class=\"word failing\">failing</td>",
        "<strong>http</strong>: HTTP 503 from Graph",
        "No incident reported by any channel yet.",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    ] {
        assert!(page.contains(expected), "missing {expected:?} in\n{page}");
    }
}

#[test]
fn hostile_upstream_text_is_shown_as_text_never_as_markup() {
    let mut target = target(
        ChannelState::Fresh,
        Visibility::Full,
        Some("contoso-graph"),
        Health::Incident,
    );
    target.services[0].name = "<b onmouseover=alert(3)>Exchange</b>".into();
    target.incidents.push(IncidentResolution {
        id: "EX123456".into(),
        title: "<script>alert(1)</script>".into(),
        service: Some("Exchange".into()),
        classification: IncidentClassification::Incident,
        status: "<i>investigating</i>".into(),
        resolved: false,
        started_at: Some(at(12, 0, 0)),
        updated_at: Some(at(12, 5, 0)),
        sources: vec!["contoso-graph".into()],
        summary: Some("<img src=x onerror=alert(2)> \"quoted\" & more".into()),
        updates: Vec::new(),
    });
    let all = channels(failing(
        channel("contoso-graph", "graph", ChannelState::Fresh),
        "</td><script>alert(4)</script>",
    ));
    let document = document(target, all);
    let mut timeline = Timeline::default();
    timeline.record(&document, None);
    let page = dashboard::render_page(Some(&document), &timeline, None, now()).into_string();

    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the page's own script: {page}"
    );
    for raw in ["<img", "<b ", "<i>", "</td><script>"] {
        assert!(!page.contains(raw), "{raw:?} reached the page as markup");
    }
    for escaped in [
        "&lt;img src=x onerror=alert(2)&gt; &quot;quoted&quot; &amp; more",
        "&lt;b onmouseover=alert(3)&gt;Exchange&lt;/b&gt;",
        "&lt;i&gt;investigating&lt;/i&gt;",
        "&lt;/td&gt;&lt;script&gt;alert(4)&lt;/script&gt;",
    ] {
        assert!(page.contains(escaped), "missing {escaped:?} in\n{page}");
    }
}

/// The real resolver over two channels that report the same incident with their own words.
fn resolved_round(
    site_text: &str,
    x_text: &str,
    x_time: DateTime<Utc>,
    round: DateTime<Utc>,
) -> TargetResolution {
    let incident = |text: &str, updated: DateTime<Utc>| IncidentObservation {
        id: Some("MO123456".into()),
        title: "Users can't sign in".into(),
        service: None,
        classification: IncidentClassification::Incident,
        status: "investigating".into(),
        resolved: false,
        started_at: Some(at(12, 0, 0)),
        updated_at: Some(updated),
        summary: Some(text.into()),
    };
    let record = |id: &str, kind: ChannelKind, text: &str, updated: DateTime<Utc>| {
        let mut record = ChannelRecord::new(id, kind, Duration::from_secs(180));
        record.record(
            Ok(Observation {
                channel: id.into(),
                observed_at: round,
                source_time: None,
                services: Vec::new(),
                incidents: vec![incident(text, updated)],
                faults: Vec::new(),
                digest: format!("{id}-{text}"),
            }),
            round,
        );
        (id.to_string(), record)
    };
    let records: BTreeMap<String, ChannelRecord> = [
        record(
            "m365-public",
            ChannelKind::M365StatusSite,
            site_text,
            at(12, 1, 0),
        ),
        record("msft365status-x", ChannelKind::X, x_text, x_time),
    ]
    .into_iter()
    .collect();
    let spec = TargetSpec {
        id: "contoso".into(),
        name: "Contoso".into(),
        channels: vec!["m365-public".into(), "msft365status-x".into()],
    };
    resolve_target(
        &spec,
        &records,
        &TargetMemory::default(),
        &Policy::default(),
        round,
    )
    .0
}

fn round_document(target: TargetResolution, generated_at: DateTime<Utc>) -> StatusDocument {
    StatusDocument {
        generated_at,
        targets: vec![Arc::new(target)],
        channels: Vec::new(),
    }
}

#[test]
fn the_resolver_keeps_each_channels_own_words_on_a_shared_incident() {
    let target = resolved_round("site says", "x says", at(12, 2, 0), at(12, 2, 30));
    let incident = &target.incidents[0];
    assert_eq!(incident.sources, ["m365-public", "msft365status-x"]);
    assert_eq!(incident.summary.as_deref(), Some("site says"));
    assert_eq!(
        incident.updates,
        [
            IncidentUpdate {
                channel: "m365-public".into(),
                at: Some(at(12, 1, 0)),
                status: "investigating".into(),
                text: Some("site says".into()),
            },
            IncidentUpdate {
                channel: "msft365status-x".into(),
                at: Some(at(12, 2, 0)),
                status: "investigating".into(),
                text: Some("x says".into()),
            },
        ]
    );
}

#[test]
fn an_incident_that_leaves_the_picture_is_said_once_not_dropped_in_silence() {
    let with = resolved_round("site says", "x says", at(12, 2, 0), at(12, 2, 30));
    let id = with.incidents[0].id.clone();
    let mut without = with.clone();
    without.incidents.clear();
    let before = round_document(with, at(12, 2, 30));
    let after = round_document(without, at(12, 3, 30));
    let said: Vec<String> = statusmon::status::changes(&before, &after)
        .into_iter()
        .map(|c| c.text)
        .filter(|t| t.contains(&id))
        .collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("no longer reported"), "{}", said[0]);
    assert!(said[0].contains("m365-public"), "{}", said[0]);
    assert!(statusmon::status::changes(&after, &after).is_empty());
}

#[test]
fn the_timeline_passes_over_a_kept_target_but_not_one_resolved_again() {
    let mut timeline = Timeline::default();
    let mut other = resolved_round("site says", "x posted first", at(12, 2, 0), at(12, 2, 30));
    other.id = "fabrikam".into();
    let kept = Arc::new(resolved_round(
        "site says",
        "x posted first",
        at(12, 2, 0),
        at(12, 2, 30),
    ));
    let first = StatusDocument {
        generated_at: at(12, 2, 30),
        targets: vec![Arc::clone(&kept), Arc::new(other)],
        channels: Vec::new(),
    };
    assert_eq!(timeline.record(&first, None).len(), 4);

    // The engine keeps contoso (the same resolution) and resolves fabrikam again after X posted.
    let mut again = resolved_round("site says", "x posted again", at(12, 4, 0), at(12, 4, 30));
    again.id = "fabrikam".into();
    let second = StatusDocument {
        generated_at: at(12, 4, 30),
        targets: vec![kept, Arc::new(again)],
        channels: Vec::new(),
    };
    let added = timeline.record(&second, Some(&first));
    let added: Vec<(&str, Option<&str>)> = added
        .iter()
        .map(|e| (e.target.as_str(), e.text.as_deref()))
        .collect();
    assert_eq!(added, [("fabrikam", Some("x posted again"))]);
    assert_eq!(timeline.entries("contoso").len(), 2);
    assert_eq!(timeline.entries("fabrikam").len(), 3);
}

#[test]
fn the_timeline_merges_both_channels_newest_first_and_adds_only_what_is_new() {
    let mut timeline = Timeline::default();
    let first = round_document(
        resolved_round("site says", "x posted first", at(12, 2, 0), at(12, 2, 30)),
        at(12, 2, 30),
    );
    let added = timeline.record(&first, None);
    assert_eq!(added.len(), 2, "{added:#?}");

    // The same round again (the loop publishes every second): nothing new.
    assert!(timeline.record(&first, None).is_empty());
    let again = round_document(
        resolved_round("site says", "x posted first", at(12, 2, 0), at(12, 3, 30)),
        at(12, 3, 30),
    );
    assert!(timeline.record(&again, None).is_empty());

    // X posts again; the site says the same.
    let second = round_document(
        resolved_round("site says", "x posted again", at(12, 4, 0), at(12, 4, 30)),
        at(12, 4, 30),
    );
    let added = timeline.record(&second, None);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].channel, "msft365status-x");
    assert_eq!(added[0].text.as_deref(), Some("x posted again"));

    let seen: Vec<(&str, &str)> = timeline
        .entries("contoso")
        .iter()
        .map(|e| (e.channel.as_str(), e.text.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        seen,
        [
            ("msft365status-x", "x posted again"),
            ("msft365status-x", "x posted first"),
            ("m365-public", "site says"),
        ]
    );

    let page =
        dashboard::render_targets(Some(&second), &timeline, None, at(12, 5, 0)).into_string();
    let x_again = page.find("x posted again").expect("newest entry shown");
    let site = page.find("site says").expect("oldest entry shown");
    assert!(x_again < site, "newest first");
    assert!(page.contains("2026-11-25 12:04:00 UTC"));
}

#[test]
fn the_timeline_is_bounded_and_does_not_readd_what_it_dropped() {
    let mut timeline = Timeline::new(2);
    let mut documents = Vec::new();
    for minute in 1..=4 {
        let round = at(12, minute, 30);
        let doc = round_document(
            resolved_round(
                "site says",
                &format!("post {minute}"),
                at(12, minute, 0),
                round,
            ),
            round,
        );
        timeline.record(&doc, None);
        documents.push(doc);
    }
    let texts: Vec<String> = timeline
        .entries("contoso")
        .iter()
        .filter_map(|e| e.text.as_deref().map(str::to_string))
        .collect();
    assert_eq!(texts, ["post 4", "post 3"]);
    // The site's update (12:01) was dropped by the bound though still reported: not re-added.
    assert!(timeline.record(&documents[3], None).is_empty());
    assert_eq!(timeline.entries("contoso").len(), 2);
}

async fn get(state: &WebState, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = web::router(state.clone())
        .oneshot(
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

/// The text between `open` and the next `close`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).expect("open tag") + open.len();
    let end = text[start..].find(close).expect("close tag") + start;
    &text[start..end]
}

fn csp_hash(source: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(source.as_bytes()))
    )
}

#[tokio::test]
async fn the_page_answers_html_before_the_first_round_under_a_strict_csp() {
    let state = WebState::new();
    let (status, headers, page) = get(&state, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"text/html; charset=utf-8"[..])
    );
    assert_eq!(
        headers.get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    assert!(page.contains("Waiting for the first round"), "{page}");
    assert!(
        page.contains(r#"<noscript><meta http-equiv="refresh" content="10"></noscript>"#),
        "the page refreshes itself without JavaScript"
    );

    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("a CSP header");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(directives.contains(&"connect-src 'self'"), "{csp}");
    // The inline script and style run only because their exact hashes are allowed.
    let script = between(&page, "<script>", "</script>");
    let style = between(&page, "<style>", "</style>");
    assert!(
        directives.contains(&format!("script-src {}", csp_hash(script)).as_str()),
        "{csp}"
    );
    assert!(
        directives.contains(&format!("style-src {}", csp_hash(style)).as_str()),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    // Nothing is loaded from anywhere else: the page works with the internet down.
    for external in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(external), "{external:?} in the page");
    }
}

#[tokio::test]
async fn the_fragment_route_serves_the_live_part_alone() {
    let target = target(
        ChannelState::Failing,
        Visibility::Degraded,
        Some("m365-public"),
        Health::Unknown,
    );
    let all = channels(failing(
        channel("contoso-graph", "graph", ChannelState::Failing),
        "HTTP 503",
    ));
    let state = WebState::new();
    let (_, _, waiting) = get(&state, "/dashboard/targets").await;
    assert!(waiting.contains("Waiting for the first round"), "{waiting}");

    state.publish(Arc::new(document(target, all)), &[]);
    let (status, headers, fragment) = get(&state, "/dashboard/targets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"text/html; charset=utf-8"[..])
    );
    assert!(fragment.contains("is down: failing since"), "{fragment}");
    assert!(!fragment.contains("<html") && !fragment.contains("<script"));

    let (_, _, page) = get(&state, "/").await;
    // Ages are rendered against the clock, so compare with digits masked.
    let mask = |text: &str| text.replace(|c: char| c.is_ascii_digit(), "0");
    assert!(
        mask(&page).contains(&mask(&format!(
            "<main id=\"targets\" aria-live=\"polite\">{fragment}</main>"
        ))),
        "the page embeds the same fragment the script swaps in"
    );
}

#[tokio::test]
async fn new_timeline_entries_are_announced_on_the_event_stream() {
    let state = WebState::new();
    let response = web::router(state.clone())
        .oneshot(
            Request::builder()
                .uri("/api/v1/events")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let mut body = response.into_body().into_data_stream();
    let round = at(12, 2, 30);
    state.publish(
        Arc::new(round_document(
            resolved_round("site says", "x says", at(12, 2, 0), round),
            round,
        )),
        &[],
    );
    // The site's entry comes first, so once the X entry is in, both are. (The `status` event
    // carries the same words, but not a timeline entry's `"channel":…,"incident":` pair.)
    let mut seen = Vec::new();
    let x_entry = "\"channel\":\"msft365status-x\",\"incident\":";
    let text = crate::web::read_until(&mut body, &mut seen, x_entry).await;
    let timeline = crate::web::events_named(&text, "timeline");
    assert_eq!(timeline.len(), 2, "{text}");
    assert_eq!(timeline[0]["channel"], "m365-public", "{text}");
    assert_eq!(timeline[0]["text"], "site says", "{text}");
    assert_eq!(timeline[1]["channel"], "msft365status-x", "{text}");
    assert_eq!(timeline[1]["text"], "x says", "{text}");
    state.close();
}
