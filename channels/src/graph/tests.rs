//! Tests of the Graph channel: the pure parsers and [`assemble`] from our fixtures
//! (`channels/tests/fixtures/graph/`, see the README there), hostile answers routed the way the
//! fetcher hands them over ([`gate`] and [`classify_status`]), the budget on a fake clock, the
//! token answer reader, and end-to-end probes against a small HTTP/1.1 server on loopback.

use super::auth::{Signer, read_token_answer, refresh_after};
use super::budget::{HOUR, MINUTE, RequestBudget, window_quota};
use super::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use governor::clock::FakeRelativeClock;
use reqwest::header::RETRY_AFTER;

use crate::error::ErrorClass;
use crate::http::{Limits, classify_status, gate};
use crate::model::{Health, IncidentClassification, ServiceObservation};
use crate::test_server::{
    Handler, Reply, Seen, Server, capture_logs, everything_shown, fetcher, fetcher_with, reply,
    serve,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graph/");
const CHANNEL: &str = "contoso-graph";
const OVERVIEWS: &str = "GET /v1.0/admin/serviceAnnouncement/healthOverviews";
const ISSUES: &str = "GET /v1.0/admin/serviceAnnouncement/issues";
const JSON: &str = "application/json";

const OP: Health = Health::Operational;
const ADV: Health = Health::Advisory;
const INC: Health = Health::Incident;
const UNK: Health = Health::Unknown;

const DRIFT: ErrorClass = ErrorClass::Drift;

/// A hostile envelope: name, the answer, the class and words the error must say.
type EnvelopeCase = (
    &'static str,
    Result<Vec<u8>, ProbeError>,
    ErrorClass,
    &'static [&'static str],
);
/// A token answer: name, status, content type, body, class, words said, words never said.
type TokenCase = (
    &'static str,
    u16,
    Option<&'static str>,
    Vec<u8>,
    ErrorClass,
    &'static [&'static str],
    &'static [&'static str],
);
/// A loopback override: answers some requests, leaves the rest to the healthy server.
type Special = Box<dyn Fn(&Seen, &[Seen]) -> Option<Reply> + Send + Sync>;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}"))
        .unwrap_or_else(|e| panic!("cannot read fixture {name}: {e}"))
}

fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap_or_else(|e| panic!("fixture {name} is not UTF-8: {e}"))
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad test time {rfc3339:?}: {e}"))
        .with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    at("2026-11-25T12:00:00Z")
}

/// An answer as the fetcher would hand it over: a body that passed the gate, or an error.
fn answer(what: &str, content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, ProbeError> {
    gate(what, Expect::Json, content_type, body).map(|()| body.to_vec())
}

fn status_answer(what: &str, code: u16, retry_after: Option<&str>) -> Result<Vec<u8>, ProbeError> {
    let mut headers = HeaderMap::new();
    if let Some(r) = retry_after {
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(r).expect("a valid header value"),
        );
    }
    Err(classify_status(code, &headers, what, now()).expect("a non-success status"))
}

/// Runs pages through the parsers and [`assemble`], the way `Graph::run` does.
fn observe(
    overviews: &[Result<Vec<u8>, ProbeError>],
    issues: &[Result<Vec<u8>, ProbeError>],
) -> Result<Observation, ProbeError> {
    let mut services = Vec::new();
    let mut raw: Vec<(&str, &[u8])> = Vec::new();
    for page in overviews {
        let body = page.clone()?;
        services.extend(parse_overviews(&body, OVERVIEWS)?.items);
    }
    let issues: Result<Vec<IssueEntry>, ProbeError> =
        issues.iter().try_fold(Vec::new(), |mut all, page| {
            let body = page.clone()?;
            all.extend(parse_issues_page(&body, ISSUES)?.items);
            Ok(all)
        });
    for page in overviews.iter().flatten() {
        raw.push(("healthOverviews", page));
    }
    let collected = Collected {
        overviews: services,
        issues,
        digest: digest(raw),
    };
    assemble(CHANNEL, collected, now())
}

fn ok_json(name: &str) -> Result<Vec<u8>, ProbeError> {
    answer("GET x", Some(JSON), &fixture(name))
}

fn fixture_observation(overviews: &str) -> Observation {
    observe(
        &[ok_json(overviews)],
        &[ok_json("issues-page1.json"), ok_json("issues-page2.json")],
    )
    .unwrap_or_else(|e| panic!("the fixtures failed: {e}"))
}

fn service<'a>(o: &'a Observation, id: &str) -> &'a ServiceObservation {
    o.services
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no service {id} in {:?}", o.services))
}

fn healths(o: &Observation) -> Vec<(String, Health)> {
    o.services
        .iter()
        .map(|s| (s.id.clone(), s.health))
        .collect()
}

/// The invariants every observation must keep: nothing unknown without a fault naming it, and
/// nothing operational without an explicit operational-group word.
fn check_invariants(o: &Observation) {
    for s in &o.services {
        if s.health == UNK {
            assert!(
                o.faults.iter().any(|f| f.services.contains(&s.id)),
                "{} is unknown without a fault: {:?}",
                s.id,
                o.faults
            );
        }
        if s.health == OP {
            assert_eq!(
                overview_health(&Status::parse(&s.status_text)),
                Some(OP),
                "{} is operational on the word {:?}",
                s.id,
                s.status_text
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures, the status table, paging and incidents
// ---------------------------------------------------------------------------------------------

#[test]
fn fixtures_in_both_casings_give_the_same_verdicts() {
    let want = vec![
        ("Exchange".to_string(), INC),
        ("SharePoint".to_string(), OP),
        ("microsoftteams".to_string(), ADV),
        ("OSDPPlatform".to_string(), OP),
        ("Forms".to_string(), INC),
    ];
    for name in ["overviews-camel.json", "overviews-pascal.json"] {
        let o = fixture_observation(name);
        assert_eq!(healths(&o), want, "{name}");
        assert!(o.faults.is_empty(), "{name}: {:?}", o.faults);
        check_invariants(&o);
        assert_eq!(service(&o, "Exchange").name, "Exchange Online");
    }
    let camel = fixture_observation("overviews-camel.json");
    assert_eq!(
        service(&camel, "Exchange").status_text,
        "serviceDegradation"
    );
    let pascal = fixture_observation("overviews-pascal.json");
    assert_eq!(
        service(&pascal, "Exchange").status_text,
        "ServiceDegradation"
    );
    assert_eq!(camel.incidents, pascal.incidents);
    assert_ne!(
        camel.digest, pascal.digest,
        "a different answer has another digest"
    );
    assert_eq!(
        camel.digest,
        fixture_observation("overviews-camel.json").digest,
        "the same answer has the same digest"
    );
}

#[test]
fn incidents_carry_ids_titles_services_posts_and_resolution() {
    let o = fixture_observation("overviews-camel.json");
    let ids: Vec<&str> = o.incidents.iter().filter_map(|i| i.id.as_deref()).collect();
    // SP900404 was resolved three weeks ago: left out.
    assert_eq!(ids, vec!["EX900101", "TM900202", "MO900303", "FM900505"]);
    let ex = &o.incidents[0];
    assert_eq!(&*ex.title, "Users can't send email from Outlook on the web");
    assert_eq!(ex.service.as_deref(), Some("Exchange"));
    assert_eq!(ex.classification, IncidentClassification::Incident);
    assert_eq!(ex.status, "serviceDegradation");
    assert!(!ex.resolved);
    assert_eq!(ex.started_at, Some(at("2026-11-25T09:12:00Z")));
    assert_eq!(ex.updated_at, Some(at("2026-11-25T11:40:31.39Z")));
    let summary = ex.summary.as_deref().expect("EX900101 has a summary");
    assert!(summary.contains("We're applying a fix."), "{summary}");
    assert!(summary.contains("Next update by 14:00 UTC."), "{summary}");
    assert!(
        !summary.contains("first post"),
        "the newest post wins: {summary}"
    );
    assert!(
        !summary.contains("alert") && !summary.contains('<'),
        "{summary}"
    );

    let tm = &o.incidents[1];
    assert_eq!(tm.classification, IncidentClassification::Advisory);
    assert_eq!(tm.service.as_deref(), Some("microsoftteams"));
    assert_eq!(tm.summary.as_deref(), Some("Chat messages may be delayed."));

    let mo = &o.incidents[2];
    assert!(mo.resolved, "a recently resolved issue is marked resolved");
    assert_eq!(mo.service.as_deref(), Some("OSDPPlatform"));
    assert_eq!(mo.status, "ServiceRestored");

    let fm = &o.incidents[3];
    assert_eq!(
        fm.summary.as_deref(),
        Some("Users can't open or submit forms.")
    );

    assert_eq!(service(&o, "Exchange").incidents, vec!["EX900101"]);
    assert_eq!(service(&o, "microsoftteams").incidents, vec!["TM900202"]);
    assert!(service(&o, "OSDPPlatform").incidents.is_empty());
    assert!(service(&o, "SharePoint").incidents.is_empty());
    let msg = service(&o, "Exchange").message.as_deref().unwrap_or("");
    assert!(msg.contains("EX900101: Users can't send email"), "{msg}");
    assert_eq!(o.source_time, Some(at("2026-11-25T11:40:31.39Z")));
}

/// The whole mapping table, both casings, and the incident escalation of the advisory group.
#[test]
fn every_service_health_status_maps_by_the_table() {
    let table: [(&str, Option<Health>); 19] = [
        ("serviceOperational", Some(OP)),
        ("investigating", Some(ADV)),
        ("restoringService", Some(ADV)),
        ("verifyingService", Some(ADV)),
        ("serviceRestored", Some(OP)),
        ("postIncidentReviewPublished", Some(OP)),
        ("serviceDegradation", Some(ADV)),
        ("serviceInterruption", Some(INC)),
        ("extendedRecovery", Some(ADV)),
        ("falsePositive", Some(OP)),
        ("investigationSuspended", Some(ADV)),
        ("resolved", Some(OP)),
        ("mitigatedExternal", Some(ADV)),
        ("mitigated", Some(ADV)),
        ("resolvedExternal", Some(OP)),
        ("confirmed", Some(ADV)),
        ("reported", Some(ADV)),
        ("unknownFutureValue", None),
        ("serviceMeltdown", None),
    ];
    assert_eq!(
        Status::KNOWN.len(),
        17,
        "every known member is in the table"
    );
    for (word, want) in table {
        let pascal = format!("{}{}", word[..1].to_uppercase(), &word[1..]);
        for spelled in [
            word.to_string(),
            pascal,
            word.to_uppercase(),
            format!(" {word} "),
        ] {
            assert_eq!(
                overview_health(&Status::parse(&spelled)),
                want,
                "{spelled:?}"
            );
        }
        // Through assemble: one service with this word, with and without an open incident.
        let body = format!(
            r#"{{"value":[{{"id":"Exchange","service":"Exchange Online","status":"{word}"}}]}}"#
        );
        let issue = r#"{"value":[{"id":"EX1","title":"t","service":"Exchange Online",
            "classification":"incident","isResolved":false,"status":"investigating"}]}"#;
        let o =
            observe(&[ok_body(&body)], &[ok_body(issue)]).unwrap_or_else(|e| panic!("{word}: {e}"));
        check_invariants(&o);
        let got = service(&o, "Exchange").health;
        let escalated = match want {
            Some(ADV) => INC,
            Some(h) => h,
            None => UNK,
        };
        assert_eq!(got, escalated, "{word} with an open incident");
        if want.is_none() {
            assert_eq!(o.faults.len(), 1, "{word}: {:?}", o.faults);
            assert_eq!(o.faults[0].error.class(), DRIFT);
            assert!(o.faults[0].error.to_string().contains(word));
        }
        let o = observe(&[ok_body(&body)], &[ok_body(r#"{"value":[]}"#)])
            .unwrap_or_else(|e| panic!("{word}: {e}"));
        assert_eq!(
            service(&o, "Exchange").health,
            want.unwrap_or(UNK),
            "{word}"
        );
    }
}

fn ok_body(body: &str) -> Result<Vec<u8>, ProbeError> {
    answer("GET x", Some(JSON), body.as_bytes())
}

#[test]
fn paging_is_followed_by_whole_url_and_guarded() {
    let graph = reqwest::Url::parse("https://graph.microsoft.com").expect("url");
    let page = parse_issues_page(&fixture("issues-page1.json"), ISSUES).expect("page 1");
    let link = page.next_link.clone().expect("page 1 has a nextLink");
    let mut seen = HashSet::new();
    seen.insert("https://graph.microsoft.com/v1.0/admin/serviceAnnouncement/issues".to_string());
    assert_eq!(
        next_page(Some(&link), &graph, &seen, 1, ISSUES),
        Ok(Some(link.clone())),
        "the whole URL, $skiptoken and all"
    );
    let last = parse_issues_page(&fixture("issues-page2.json"), ISSUES).expect("page 2");
    assert_eq!(last.next_link, None);
    assert_eq!(next_page(None, &graph, &seen, 2, ISSUES), Ok(None));
    // Both pages together are what the fixture observation is made of.
    assert_eq!(page.items.len() + last.items.len(), 5);
}

#[test]
fn unknown_fields_are_ignored() {
    let body = r#"{"@odata.context":"x","@odata.count":1,"futureTopLevel":[1],
        "value":[{"id":"Exchange","service":"Exchange Online","status":"serviceOperational",
        "highImpact":null,"newThing":{"a":[true]}}]}"#;
    let o = observe(&[ok_body(body)], &[ok_body(r#"{"value":[],"extra":1}"#)])
        .expect("extra fields are fine");
    assert_eq!(healths(&o), vec![("Exchange".to_string(), OP)]);
    assert!(o.faults.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Hostile answers
// ---------------------------------------------------------------------------------------------

fn overviews_with(entries: &str) -> Result<Vec<u8>, ProbeError> {
    ok_body(&format!(r#"{{"value":[{entries}]}}"#))
}

const SP_OK: &str =
    r#"{"id":"SharePoint","service":"SharePoint Online","status":"serviceOperational"}"#;

fn no_issues() -> Vec<Result<Vec<u8>, ProbeError>> {
    vec![ok_body(r#"{"value":[]}"#)]
}

/// Asserts a whole-probe failure of `class` whose message says all of `says`.
fn assert_fails(
    name: &str,
    result: Result<Observation, ProbeError>,
    class: ErrorClass,
    says: &[&str],
) {
    match result {
        Ok(o) => panic!("{name}: answered {:?}", healths(&o)),
        Err(e) => {
            assert_eq!(e.class(), class, "{name}: {e}");
            for word in says {
                assert!(
                    e.to_string().contains(word),
                    "{name}: {e:?} does not say {word:?}"
                );
            }
        }
    }
}

#[test]
fn hostile_envelopes_fail_the_probe_with_their_class() {
    let html = fixture("signin-page.html");
    let cases: Vec<EnvelopeCase> = vec![
        (
            "HTML sign-in page with 200",
            answer(OVERVIEWS, Some("text/html"), &html),
            DRIFT,
            &["text/html", "sign-in"],
        ),
        (
            "HTML sign-in page labelled JSON",
            answer(OVERVIEWS, Some(JSON), &html),
            DRIFT,
            &["HTML page"],
        ),
        (
            "200 with JSON lacking value",
            ok_body(r#"{"@odata.context":"x"}"#),
            DRIFT,
            &["no \"value\""],
        ),
        (
            "200 with a Graph error object",
            ok_body(r#"{"error":{"code":"InvalidAuthenticationToken","message":"m"}}"#),
            DRIFT,
            &["InvalidAuthenticationToken"],
        ),
        (
            "value not an array",
            ok_body(r#"{"value":{"id":"Exchange"}}"#),
            DRIFT,
            &["not an array"],
        ),
        ("value null", ok_body(r#"{"value":null}"#), DRIFT, &["null"]),
        (
            "a bare array",
            ok_body(r#"[{"id":"Exchange"}]"#),
            DRIFT,
            &["an array"],
        ),
        (
            "empty value array",
            ok_body(r#"{"value":[]}"#),
            DRIFT,
            &["empty"],
        ),
        (
            "empty body",
            answer(OVERVIEWS, Some(JSON), b""),
            DRIFT,
            &["empty body"],
        ),
        (
            "whitespace body",
            answer(OVERVIEWS, Some(JSON), b" \r\n"),
            DRIFT,
            &["empty body"],
        ),
        (
            "truncated JSON",
            ok_body(r#"{"value":[{"id":"Exchange","stat"#),
            DRIFT,
            &["not valid JSON"],
        ),
        (
            "nextLink not a string",
            ok_body(r#"{"value":[],"@odata.nextLink":5}"#),
            DRIFT,
            &["nextLink"],
        ),
        (
            "no Content-Type",
            answer(OVERVIEWS, None, b"{}"),
            DRIFT,
            &["no Content-Type"],
        ),
        (
            "HTTP 401",
            status_answer(OVERVIEWS, 401, None),
            ErrorClass::Auth,
            &["HTTP 401"],
        ),
        (
            "HTTP 403",
            status_answer(OVERVIEWS, 403, None),
            ErrorClass::Auth,
            &["HTTP 403"],
        ),
        (
            "HTTP 429 with 2.128",
            status_answer(OVERVIEWS, 429, Some("2.128")),
            ErrorClass::Throttled,
            &["HTTP 429", "2s"],
        ),
        (
            "HTTP 503",
            status_answer(OVERVIEWS, 503, None),
            ErrorClass::Http,
            &["HTTP 503"],
        ),
        (
            "HTTP 404",
            status_answer(OVERVIEWS, 404, None),
            ErrorClass::Http,
            &["gone or moved"],
        ),
    ];
    for (name, overviews, class, says) in cases {
        assert_fails(name, observe(&[overviews], &no_issues()), class, says);
    }
    let throttled = status_answer(OVERVIEWS, 429, Some("2.128")).expect_err("429");
    assert_eq!(throttled.retry_after(), Some(Duration::from_millis(2128)));
}

#[test]
fn a_json_body_cut_at_any_byte_is_drift_never_green() {
    let body = fixture("overviews-camel.json");
    let end = body
        .iter()
        .rposition(|b| *b == b'}')
        .expect("a closing brace");
    for cut in 1..end {
        match observe(&[answer(OVERVIEWS, Some(JSON), &body[..cut])], &no_issues()) {
            Err(e) => assert_eq!(e.class(), DRIFT, "cut at {cut}: {e}"),
            Ok(o) => panic!("cut at {cut} answered {:?}", healths(&o)),
        }
    }
}

#[test]
fn a_broken_entry_is_unknown_with_a_drift_fault_and_the_rest_stands() {
    struct Case {
        name: &'static str,
        entry: &'static str,
        want: Vec<(&'static str, Health)>,
        fault_for: Vec<&'static str>,
        says: &'static str,
    }
    let cases = vec![
        Case {
            name: "unknown enum value",
            entry: r#"{"id":"Exchange","service":"Exchange Online","status":"serviceMeltdown"}"#,
            want: vec![("Exchange", UNK), ("SharePoint", OP)],
            fault_for: vec!["Exchange"],
            says: "serviceMeltdown",
        },
        Case {
            name: "unknownFutureValue",
            entry: r#"{"id":"Exchange","service":"Exchange Online","status":"unknownFutureValue"}"#,
            want: vec![("Exchange", UNK), ("SharePoint", OP)],
            fault_for: vec!["Exchange"],
            says: "unknownFutureValue",
        },
        Case {
            name: "status missing",
            entry: r#"{"id":"Exchange","service":"Exchange Online"}"#,
            want: vec![("Exchange", UNK), ("SharePoint", OP)],
            fault_for: vec!["Exchange"],
            says: "no status",
        },
        Case {
            name: "status a number",
            entry: r#"{"id":"Exchange","service":"Exchange Online","status":0}"#,
            want: vec![("Exchange", UNK), ("SharePoint", OP)],
            fault_for: vec!["Exchange"],
            says: "\"0\"",
        },
        Case {
            name: "service without id",
            entry: r#"{"service":"Exchange Online","status":"serviceOperational"}"#,
            want: vec![("Exchange Online", UNK), ("SharePoint", OP)],
            fault_for: vec!["Exchange Online"],
            says: "has no id",
        },
        Case {
            name: "entry with neither id nor name",
            entry: r#"{"status":"serviceOperational"}"#,
            want: vec![("SharePoint", OP)],
            fault_for: vec![],
            says: "neither id nor service name",
        },
        Case {
            name: "entry not an object",
            entry: r#""Exchange""#,
            want: vec![("SharePoint", OP)],
            fault_for: vec![],
            says: "neither id nor service name",
        },
        Case {
            name: "id a number",
            entry: r#"{"id":7,"service":"Exchange Online","status":"serviceOperational"}"#,
            want: vec![("Exchange Online", UNK), ("SharePoint", OP)],
            fault_for: vec!["Exchange Online"],
            says: "has no id",
        },
    ];
    for case in cases {
        let o = observe(
            &[overviews_with(&format!("{},{SP_OK}", case.entry))],
            &no_issues(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got: Vec<(&str, Health)> = o
            .services
            .iter()
            .map(|s| (s.id.as_str(), s.health))
            .collect();
        assert_eq!(got, case.want, "{}", case.name);
        check_invariants(&o);
        assert_eq!(o.faults.len(), 1, "{}: {:?}", case.name, o.faults);
        assert_eq!(o.faults[0].error.class(), DRIFT, "{}", case.name);
        assert_eq!(o.faults[0].services, case.fault_for, "{}", case.name);
        let said = o.faults[0].error.to_string();
        assert!(said.contains(case.says), "{}: {said}", case.name);
    }
}

#[test]
fn failing_issues_leave_only_the_services_that_need_them_unknown() {
    let html = fixture("signin-page.html");
    for (name, issues) in [
        ("HTML issues page", answer(ISSUES, Some("text/html"), &html)),
        ("issues 503", status_answer(ISSUES, 503, None)),
        ("issues without value", ok_body(r#"{"items":[]}"#)),
    ] {
        let o = observe(&[ok_json("overviews-camel.json")], &[issues])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_invariants(&o);
        assert_eq!(
            healths(&o),
            vec![
                ("Exchange".to_string(), UNK),
                ("SharePoint".to_string(), OP),
                ("microsoftteams".to_string(), UNK),
                ("OSDPPlatform".to_string(), OP),
                ("Forms".to_string(), INC),
            ],
            "{name}"
        );
        assert_eq!(o.faults.len(), 1, "{name}");
        assert_eq!(
            o.faults[0].services,
            vec!["Exchange", "microsoftteams"],
            "{name}"
        );
        assert!(o.incidents.is_empty());
        let msg = service(&o, "Exchange").message.as_deref().unwrap_or("");
        assert!(
            msg.contains("serviceDegradation") && msg.contains("issues could not be read"),
            "{msg}"
        );
    }
    // An issue without an id is its own fault; the service keeps its verdict from the rest.
    let o = observe(
        &[ok_json("overviews-camel.json")],
        &[ok_body(r#"{"value":[{"title":"no id","service":"Exchange Online","classification":"incident","isResolved":false}]}"#)],
    )
    .expect("an issue without id");
    assert_eq!(service(&o, "Exchange").health, ADV);
    assert_eq!(o.faults.len(), 1);
    assert_eq!(o.faults[0].services, vec!["Exchange"]);
    assert_eq!(o.faults[0].error.class(), DRIFT);
}

#[test]
fn next_links_off_graph_in_a_loop_or_too_many_are_drift() {
    let graph = reqwest::Url::parse("https://graph.microsoft.com").expect("url");
    let seen: HashSet<String> = [
        "https://graph.microsoft.com/v1.0/admin/serviceAnnouncement/issues?$skiptoken=a"
            .to_string(),
    ]
    .into_iter()
    .collect();
    let cases: [(&str, &str, usize, &str); 6] = [
        (
            "foreign host",
            "https://graph.evil.example/v1.0/admin/serviceAnnouncement/issues?$skip=100",
            1,
            "graph.evil.example",
        ),
        (
            "http downgrade",
            "http://graph.microsoft.com/v1.0/admin/serviceAnnouncement/issues?$skip=100",
            1,
            "refusing to send the token",
        ),
        (
            "other port",
            "https://graph.microsoft.com:8443/v1.0/x",
            1,
            "refusing",
        ),
        (
            "relative link",
            "/v1.0/admin/serviceAnnouncement/issues?$skip=100",
            1,
            "not an absolute URL",
        ),
        (
            "loop",
            "https://graph.microsoft.com/v1.0/admin/serviceAnnouncement/issues?$skiptoken=a",
            2,
            "paging loop",
        ),
        (
            "too many pages",
            "https://graph.microsoft.com/v1.0/admin/serviceAnnouncement/issues?$skiptoken=z",
            MAX_PAGES,
            "more than 50 pages",
        ),
    ];
    for (name, link, pages, says) in cases {
        match next_page(Some(link), &graph, &seen, pages, ISSUES) {
            Err(e) => {
                assert_eq!(e.class(), DRIFT, "{name}");
                assert!(e.to_string().contains(says), "{name}: {e}");
                assert!(
                    !e.to_string().contains("skiptoken"),
                    "{name}: the query is not shown: {e}"
                );
            }
            Ok(next) => panic!("{name}: followed to {next:?}"),
        }
    }
    // A national cloud's own links are fine.
    let us = reqwest::Url::parse("https://graph.microsoft.us").expect("url");
    assert!(
        next_page(
            Some("https://graph.microsoft.us/v1.0/a?$skip=1"),
            &us,
            &seen,
            1,
            ISSUES
        )
        .is_ok()
    );
    assert!(
        next_page(
            Some("https://graph.microsoft.com/v1.0/a?$skip=1"),
            &us,
            &seen,
            1,
            ISSUES
        )
        .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// The token endpoint's answers
// ---------------------------------------------------------------------------------------------

const TOKEN: &str = "POST https://login.microsoftonline.com/contoso/oauth2/v2.0/token";

fn token_answer(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Duration, ProbeError> {
    let mut headers = HeaderMap::new();
    if status == 429 {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
    }
    read_token_answer(
        status,
        &headers,
        content_type,
        body,
        TOKEN,
        &["s3cr3t-VALUE-xyz"],
    )
    .map(|g| g.expires_in)
}

#[test]
fn token_answers_are_read_strictly() {
    assert_eq!(
        token_answer(200, Some(JSON), &fixture("token-ok.json")),
        Ok(Duration::from_secs(3599))
    );
    assert_eq!(
        token_answer(
            200,
            Some(JSON),
            br#"{"token_type":"bearer","expires_in":"3599","access_token":"a"}"#
        ),
        Ok(Duration::from_secs(3599)),
        "a numeric string (the v1 endpoint's habit) is accepted"
    );
    let errors: Vec<TokenCase> = vec![
        ("bad secret", 401, Some(JSON), fixture("token-error-7000215.json"), ErrorClass::Auth,
            &["AADSTS7000215: Invalid client secret provided.", "invalid_client", "Secret ID"], &["Trace ID", "Correlation"]),
        ("consent missing", 400, Some(JSON), fixture("token-error-65001.json"), ErrorClass::Auth,
            &["AADSTS65001", "admin consent"], &["Trace ID"]),
        ("app not found", 400, Some(JSON), fixture("token-error-700016.json"), ErrorClass::Auth,
            &["AADSTS700016", "check client_id and tenant_id"], &["Trace ID"]),
        ("error echoes the secret", 401, Some(JSON),
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: bad secret s3cr3t-VALUE-xyz"}"#.to_vec(),
            ErrorClass::Auth, &["[REDACTED]"], &["s3cr3t-VALUE-xyz"]),
        ("code only in error_codes", 400, Some(JSON),
            br#"{"error":"invalid_request","error_description":"Something.","error_codes":[90002]}"#.to_vec(),
            ErrorClass::Auth, &["AADSTS90002: Something.", "tenant was not found"], &[]),
        ("HTML with 200", 200, Some("text/html"), fixture("signin-page.html"), DRIFT, &["text/html"], &[]),
        ("HTML with 400", 400, Some("text/html"), fixture("signin-page.html"), DRIFT, &["HTTP 400", "text/html"], &[]),
        ("JSON of another shape with 400", 400, Some(JSON), br#"{"message":"no"}"#.to_vec(), DRIFT, &["OAuth error JSON"], &[]),
        ("no access_token", 200, Some(JSON), br#"{"token_type":"Bearer","expires_in":3599}"#.to_vec(), DRIFT, &["no access_token"], &[]),
        ("empty access_token", 200, Some(JSON), br#"{"token_type":"Bearer","expires_in":3599,"access_token":" "}"#.to_vec(), DRIFT, &["no access_token"], &[]),
        ("expires_in missing", 200, Some(JSON), br#"{"token_type":"Bearer","access_token":"a"}"#.to_vec(), DRIFT, &["no numeric expires_in"], &[]),
        ("expires_in zero", 200, Some(JSON), br#"{"token_type":"Bearer","expires_in":0,"access_token":"a"}"#.to_vec(), DRIFT, &["expires_in 0"], &[]),
        ("expires_in negative", 200, Some(JSON), br#"{"token_type":"Bearer","expires_in":-60,"access_token":"a"}"#.to_vec(), DRIFT, &["expires_in -60"], &[]),
        ("expires_in absurd", 200, Some(JSON), br#"{"token_type":"Bearer","expires_in":999999999,"access_token":"a"}"#.to_vec(), DRIFT, &["not a lifetime we trust"], &[]),
        ("expires_in text", 200, Some(JSON), br#"{"token_type":"Bearer","expires_in":"soon","access_token":"a"}"#.to_vec(), DRIFT, &["no numeric expires_in"], &[]),
        ("not a bearer token", 200, Some(JSON), br#"{"token_type":"pop","expires_in":3599,"access_token":"a"}"#.to_vec(), DRIFT, &["not Bearer"], &[]),
        ("truncated token JSON", 200, Some(JSON), br#"{"token_type":"Bearer","expi"#.to_vec(), DRIFT, &["not valid JSON"], &[]),
        ("empty 200", 200, Some(JSON), Vec::new(), DRIFT, &["empty body"], &[]),
        ("429", 429, Some(JSON), b"{}".to_vec(), ErrorClass::Throttled, &["HTTP 429"], &[]),
        ("503", 503, Some("text/html"), b"<html></html>".to_vec(), ErrorClass::Http, &["HTTP 503"], &[]),
        ("empty 401", 401, None, Vec::new(), ErrorClass::Auth, &["HTTP 401"], &[]),
    ];
    for (name, status, content_type, body, class, says, never) in errors {
        let e = token_answer(status, content_type, &body).expect_err(name);
        assert_eq!(e.class(), class, "{name}: {e}");
        let text = e.to_string();
        for w in says {
            assert!(text.contains(w), "{name}: {text:?} does not say {w:?}");
        }
        for w in never {
            assert!(!text.contains(w), "{name}: {text:?} says {w:?}");
        }
    }
    let throttled = token_answer(429, Some(JSON), b"{}").expect_err("429");
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
}

#[test]
fn tokens_are_renewed_ahead_of_expiry() {
    assert_eq!(
        refresh_after(Duration::from_secs(3599)),
        Duration::from_secs_f64(3599.0 * 0.8)
    );
    assert_eq!(
        refresh_after(Duration::from_secs(5400)),
        Duration::from_secs(4320)
    );
    // Where 5 minutes before the end is sooner than 80 %.
    assert_eq!(
        refresh_after(Duration::from_secs(1000)),
        Duration::from_secs(700)
    );
    assert_eq!(
        refresh_after(Duration::from_secs(60)),
        Duration::from_secs(48)
    );
    assert_eq!(
        refresh_after(Duration::from_secs(300)),
        Duration::from_secs(240)
    );
}

// ---------------------------------------------------------------------------------------------
// The budget, on a fake clock
// ---------------------------------------------------------------------------------------------

/// The largest number of instants inside any closed window of length `window`.
fn busiest_window(times: &[Duration], window: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// Attempts every `step` for `total` on a fake clock; the instants that were admitted.
fn admitted(budget: Budget, step: Duration, total: Duration) -> Vec<Duration> {
    let clock = FakeRelativeClock::default();
    let limiter = RequestBudget::with_clock(budget, clock.clone());
    let mut t = Duration::ZERO;
    let mut out = Vec::new();
    while t <= total {
        if limiter.take().is_ok() {
            out.push(t);
        }
        clock.advance(step);
        t += step;
    }
    out
}

#[test]
fn the_budget_never_lets_a_window_see_more_than_the_limit() {
    let default = Budget::default();
    // Ten minutes of attempts every 100 ms.
    let times = admitted(
        default,
        Duration::from_millis(100),
        Duration::from_secs(600),
    );
    assert!(
        busiest_window(&times, MINUTE) <= 240,
        "{}",
        busiest_window(&times, MINUTE)
    );
    assert!(busiest_window(&times, HOUR) <= 800);
    // The burst is usable at once: a probe never waits at the start.
    assert_eq!(
        times[..120].last(),
        Some(&Duration::from_millis(11_900)),
        "120 at 10/s"
    );
    // Three hours of attempts every 250 ms: the hourly window is the binding one.
    let times = admitted(
        default,
        Duration::from_millis(250),
        Duration::from_secs(3 * 3600),
    );
    assert_eq!(
        busiest_window(&times, HOUR),
        800,
        "the budget is also usable in full"
    );
    assert!(busiest_window(&times, MINUTE) <= 240);
    // Small and odd budgets keep the same promise.
    for (per_minute, per_hour) in [(1, 1), (2, 3), (3, 50), (7, 13), (240, 800), (1000, 5000)] {
        let budget = Budget {
            per_minute: NonZeroU32::new(per_minute).expect("nonzero"),
            per_hour: NonZeroU32::new(per_hour).expect("nonzero"),
        };
        let times = admitted(
            budget,
            Duration::from_millis(500),
            Duration::from_secs(2 * 3600),
        );
        assert!(
            busiest_window(&times, MINUTE) <= per_minute as usize,
            "{per_minute}/{per_hour}"
        );
        assert!(
            busiest_window(&times, HOUR) <= per_hour as usize,
            "{per_minute}/{per_hour}"
        );
        assert!(!times.is_empty());
    }
    // The derivation: burst + window/period ≤ limit.
    let q = window_quota(NonZeroU32::new(800).expect("nonzero"), HOUR);
    assert_eq!(q.burst_size().get(), 400);
    assert_eq!(q.replenish_interval(), Duration::from_secs(9));
}

#[test]
fn a_spent_budget_says_which_and_when() {
    let clock = FakeRelativeClock::default();
    let budget = RequestBudget::with_clock(Budget::default(), clock.clone());
    for _ in 0..120 {
        budget.take().expect("the minute burst");
    }
    let e = budget.take().expect_err("the minute burst is spent");
    assert_eq!(e.class(), ErrorClass::Throttled);
    assert!(
        e.to_string()
            .starts_with("local request budget of 240/min spent; next request allowed in"),
        "{e}"
    );
    assert_eq!(e.retry_after(), Some(Duration::from_millis(500)));
    // Keep asking every 500 ms: the hour's budget runs out after its burst of 400 plus refills.
    let mut taken = 120;
    let hourly = loop {
        clock.advance(Duration::from_millis(500));
        match budget.take() {
            Ok(()) => taken += 1,
            Err(e) if e.to_string().contains("/h ") => break e,
            Err(_) => {}
        }
        assert!(taken <= 800, "more than the hourly budget was let through");
    };
    assert!(
        hourly
            .to_string()
            .starts_with("local request budget of 800/h spent; next request allowed in"),
        "{hourly}"
    );
    assert!(
        hourly
            .retry_after()
            .is_some_and(|w| w <= Duration::from_secs(9))
    );
    assert!((400..=800).contains(&taken), "{taken}");
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

const SECRET: &str = "s3cr3t-VALUE-xyz";
const X5T_S256: &str = "HvYkY4NHgKp1huoYFmZf5DXIA9L1HDKXAdc0CxfuEdc";

fn cert() -> String {
    fixture_text("test-only-cert.pem")
}

fn key() -> SecretString {
    SecretString::from(fixture_text("test-only-key.pem"))
}

/// A line from the middle of the private key: what must never be printed.
fn key_line() -> String {
    fixture_text("test-only-key.pem")
        .lines()
        .nth(5)
        .expect("the key has lines")
        .to_string()
}

fn b64_json(part: &str) -> serde_json::Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// Decodes and verifies a client assertion against the test certificate.
fn check_assertion(jwt: &str, token_url: &str, client_id: &str) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS compact token");
    let header = b64_json(parts[0]);
    assert_eq!(header["alg"], "PS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(
        header["x5t#S256"], X5T_S256,
        "SHA-256 of the certificate DER, base64url"
    );
    let public = jsonwebtoken::DecodingKey::from_rsa_pem(cert().as_bytes()).expect("cert key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[client_id]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, &public, &validation)
        .expect("the assertion verifies with the certificate")
        .claims;
    assert_eq!(claims["aud"], token_url);
    assert_eq!(claims["iss"], client_id);
    assert_eq!(claims["sub"], client_id);
    let (nbf, iat, exp) = (
        claims["nbf"].as_u64().expect("nbf"),
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    let unix_now = Utc::now().timestamp() as u64;
    assert!(nbf <= iat && iat <= unix_now + 1 && exp > unix_now);
    assert!(exp - nbf <= 600, "exp at most 10 minutes after nbf");
    let jti = claims["jti"].as_str().expect("jti").to_string();
    assert_eq!(jti.len(), 36);
    assert_eq!(jti.matches('-').count(), 4);
    jti
}

#[test]
fn a_certificate_signs_ps256_assertions_with_its_thumbprint() {
    let signer = Signer::certificate(&cert(), &key()).expect("the test pair loads");
    let url = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
    let a = signer.assertion(url, "app-1").expect("signed");
    let b = signer.assertion(url, "app-1").expect("signed");
    let (ja, jb) = (
        check_assertion(a.expose_secret(), url, "app-1"),
        check_assertion(b.expose_secret(), url, "app-1"),
    );
    assert_ne!(ja, jb, "jti is unique");
    let debug = format!("{signer:?}");
    assert!(
        !debug.contains(&key_line()) && debug.contains("REDACTED"),
        "{debug}"
    );
}

#[test]
fn bad_credentials_are_config_errors_that_never_show_the_key() {
    let other = SecretString::from(fixture_text("test-only-other-key.pem"));
    let key_text = fixture_text("test-only-key.pem");
    let cases: Vec<(&str, String, SecretString, &str)> = vec![
        (
            "key does not match",
            cert(),
            other,
            "does not belong to the certificate",
        ),
        (
            "no PEM at all",
            "hello".to_string(),
            key(),
            "no CERTIFICATE block",
        ),
        (
            "key in the certificate slot",
            key_text.clone(),
            key(),
            "no CERTIFICATE block",
        ),
        (
            "certificate in the key slot",
            cert(),
            SecretString::from(cert()),
            "not a PEM private key",
        ),
        (
            "garbled key",
            cert(),
            SecretString::from(key_text.replace(&key_line(), "AAAA")),
            "private_key_pem",
        ),
    ];
    for (name, certificate_pem, private_key_pem, says) in cases {
        let config = GraphConfig {
            credential: Credential::Certificate {
                certificate_pem,
                private_key_pem,
            },
            ..config_for("http://127.0.0.1:9")
        };
        let e = Graph::new(CHANNEL, config, fetcher_with(Limits::default())).expect_err(name);
        assert_eq!(e.class(), ErrorClass::Config, "{name}: {e}");
        let text = format!("{e} {e:?}");
        assert!(text.contains(says), "{name}: {text}");
        assert!(!text.contains(&key_line()), "{name}: the key is shown");
    }
    for (name, edit, says) in [
        (
            "empty secret",
            (|c: &mut GraphConfig| c.credential = Credential::Secret(SecretString::from(" ")))
                as fn(&mut GraphConfig),
            "secret is empty",
        ),
        (
            "ftp graph_url",
            |c| c.graph_url = "ftp://graph.microsoft.com".into(),
            "graph_url",
        ),
        (
            "authority not a URL",
            |c| c.authority = "login.microsoftonline.com".into(),
            "authority",
        ),
        (
            "tenant with a slash",
            |c| c.tenant_id = "contoso/../x".into(),
            "tenant_id",
        ),
        (
            "empty client id",
            |c| c.client_id = String::new(),
            "client_id",
        ),
    ] {
        let mut config = config_for("http://127.0.0.1:9");
        edit(&mut config);
        let e = Graph::new(CHANNEL, config, fetcher_with(Limits::default())).expect_err(name);
        assert_eq!(e.class(), ErrorClass::Config, "{name}");
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// End to end, on a loopback HTTP/1.1 server
// ---------------------------------------------------------------------------------------------

/// How the tests tell the server's two endpoints apart.
trait Endpoints {
    /// A request to the token endpoint.
    fn is_token(&self) -> bool;
    /// A request to Graph itself.
    fn is_graph(&self) -> bool;
}

impl Endpoints for Seen {
    fn is_token(&self) -> bool {
        self.target.ends_with("/oauth2/v2.0/token")
    }
    fn is_graph(&self) -> bool {
        self.target.starts_with("/v1.0/")
    }
}

/// What the tests count on the server.
trait Requests {
    /// How many token requests were sent.
    fn tokens(&self) -> usize;
    /// How many Graph requests were sent.
    fn graph(&self) -> usize;
}

impl Requests for Server {
    fn tokens(&self) -> usize {
        self.seen().iter().filter(|s| s.is_token()).count()
    }
    fn graph(&self) -> usize {
        self.seen().iter().filter(|s| s.is_graph()).count()
    }
}

fn config_for(base: &str) -> GraphConfig {
    GraphConfig {
        tenant_id: "contoso.onmicrosoft.com".to_string(),
        client_id: "11111111-2222-3333-4444-555555555555".to_string(),
        credential: Credential::Secret(SecretString::from(SECRET)),
        authority: base.to_string(),
        graph_url: base.to_string(),
        budget: Budget::default(),
    }
}

fn channel(server: &Server, edit: impl FnOnce(&mut GraphConfig)) -> Graph {
    let mut config = config_for(&server.base);
    edit(&mut config);
    Graph::new(CHANNEL, config, fetcher(64 * 1024))
        .unwrap_or_else(|e| panic!("channel refused: {e}"))
}

/// A healthy Graph and token endpoint: tokens `tok-1`, `tok-2`, … valid `expires_in` seconds.
fn healthy(base_holder: Arc<Mutex<String>>, expires_in: u64, token_delay: Duration) -> Handler {
    Arc::new(move |seen: &Seen, before: &[Seen]| {
        let base = base_holder.lock().expect("base").clone();
        if seen.is_token() {
            let n = before.iter().filter(|s| s.is_token()).count() + 1;
            let mut r = reply(
                "200 OK",
                "application/json; charset=utf-8",
                format!(
                    r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"tok-{n}"}}"#
                ),
            );
            r.delay = token_delay;
            return r;
        }
        if seen
            .target
            .starts_with("/v1.0/admin/serviceAnnouncement/healthOverviews")
        {
            return reply("200 OK", JSON, fixture("overviews-camel.json"));
        }
        if seen
            .target
            .starts_with("/v1.0/admin/serviceAnnouncement/issues?$skiptoken=")
        {
            return reply("200 OK", JSON, fixture("issues-page2.json"));
        }
        if seen.target == "/v1.0/admin/serviceAnnouncement/issues" {
            let page =
                fixture_text("issues-page1.json").replace("https://graph.microsoft.com", &base);
            return reply("200 OK", JSON, page);
        }
        reply("404 Not Found", "text/plain", "no such path")
    })
}

/// A server whose handler is `healthy` unless `special` answers first.
async fn server_with(
    expires_in: u64,
    token_delay: Duration,
    special: impl Fn(&Seen, &[Seen]) -> Option<Reply> + Send + Sync + 'static,
) -> Server {
    let base = Arc::new(Mutex::new(String::new()));
    let fallback = healthy(base.clone(), expires_in, token_delay);
    let server = serve(move |seen: &Seen, before: &[Seen]| {
        special(seen, before).unwrap_or_else(|| fallback(seen, before))
    })
    .await;
    *base.lock().expect("base") = server.base.clone();
    server
}

async fn healthy_server() -> Server {
    server_with(3599, Duration::ZERO, |_, _| None).await
}

/// The fixtures' incidents are dated around [`now`]: a probe judging them (a resolved one is
/// listed for 24 hours) runs at that time, not today.
async fn probe_at_fixture_time(graph: &Graph) -> Result<Observation, ProbeError> {
    crate::clock::frozen_at(now(), graph.probe()).await
}

fn assert_fixture_verdicts(o: &Observation) {
    assert_eq!(service(o, "Exchange").health, INC);
    assert_eq!(service(o, "SharePoint").health, OP);
    assert_eq!(o.incidents.len(), 4, "both issue pages were read");
}

#[tokio::test]
async fn one_token_serves_many_probes_and_paging_is_followed() {
    let server = healthy_server().await;
    let graph = channel(&server, |_| {});
    assert_eq!(graph.kind(), ChannelKind::Graph);
    for _ in 0..3 {
        let o = probe_at_fixture_time(&graph)
            .await
            .unwrap_or_else(|e| panic!("probe failed: {e}"));
        assert_fixture_verdicts(&o);
    }
    assert_eq!(server.tokens(), 1, "the token is reused");
    assert_eq!(
        server.graph(),
        9,
        "overviews + two issue pages, three times"
    );
    let seen = server.seen();
    let token = seen.iter().find(|s| s.is_token()).expect("a token request");
    assert_eq!(token.method, "POST");
    assert_eq!(token.target, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
    assert_eq!(
        token.form("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(token.form("client_secret").as_deref(), Some(SECRET));
    assert_eq!(
        token.form("scope"),
        Some(format!("{}/.default", server.base))
    );
    assert_eq!(
        token.form("client_id").as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    for s in seen.iter().filter(|s| s.is_graph()) {
        assert!(
            s.head
                .to_ascii_lowercase()
                .contains("authorization: bearer tok-1"),
            "{}",
            s.head
        );
        assert_eq!(s.method, "GET");
    }
    let issues = seen
        .iter()
        .find(|s| s.target == "/v1.0/admin/serviceAnnouncement/issues")
        .expect("issues");
    assert!(
        issues
            .head
            .to_ascii_lowercase()
            .contains("prefer: odata.maxpagesize=1000")
    );
    assert!(
        seen.iter()
            .any(|s| s.target.ends_with("$skiptoken=statusmon-fixture-page-2"))
    );
}

#[tokio::test]
async fn a_token_is_renewed_ahead_of_its_expiry() {
    let server = server_with(1, Duration::ZERO, |_, _| None).await;
    let graph = channel(&server, |_| {});
    graph.probe().await.expect("first probe");
    graph.probe().await.expect("second probe, same token");
    assert_eq!(server.tokens(), 1);
    // 80 % of a 1-second life has passed: renewed before it expires.
    tokio::time::sleep(Duration::from_millis(850)).await;
    graph.probe().await.expect("third probe");
    assert_eq!(server.tokens(), 2);
    let last = server
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.is_graph())
        .expect("graph request");
    assert!(last.head.to_ascii_lowercase().contains("bearer tok-2"));
}

#[tokio::test]
async fn concurrent_probes_share_one_token_request() {
    let server = server_with(3599, Duration::from_millis(300), |_, _| None).await;
    let graph = channel(&server, |_| {});
    let probes = (0..8).map(|_| probe_at_fixture_time(&graph));
    for result in futures_util::future::join_all(probes).await {
        assert_fixture_verdicts(&result.unwrap_or_else(|e| panic!("probe failed: {e}")));
    }
    assert_eq!(server.tokens(), 1, "single-flight");
}

#[tokio::test]
async fn a_401_from_graph_drops_the_cached_token() {
    let refused = Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    let server = server_with(3599, Duration::ZERO, move |seen, _| {
        (seen.is_graph() && count.fetch_add(1, Ordering::SeqCst) == 0).then(|| {
            reply("401 Unauthorized", JSON, r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired or is not yet valid."}}"#)
        })
    })
    .await;
    let graph = channel(&server, |_| {});
    let e = graph.probe().await.expect_err("401");
    assert_eq!(e.class(), ErrorClass::Auth);
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(e.to_string().contains("cached token was dropped"), "{e}");
    graph
        .probe()
        .await
        .unwrap_or_else(|e| panic!("after re-authentication: {e}"));
    assert_eq!(server.tokens(), 2, "signed in again");
    let last = server
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.is_graph())
        .expect("graph request");
    assert!(last.head.to_ascii_lowercase().contains("bearer tok-2"));
}

#[tokio::test]
async fn a_403_says_permission_and_drops_the_token() {
    let server = server_with(3599, Duration::ZERO, |seen, before| {
        (seen.is_graph() && !before.iter().any(Seen::is_graph))
            .then(|| reply("403 Forbidden", JSON, r#"{"error":{"code":"Forbidden"}}"#))
    })
    .await;
    let graph = channel(&server, |_| {});
    let e = graph.probe().await.expect_err("403");
    assert_eq!(e.class(), ErrorClass::Auth);
    assert!(e.to_string().contains("ServiceHealth.Read.All"), "{e}");
    graph.probe().await.expect("after a new grant");
    assert_eq!(server.tokens(), 2);
}

#[tokio::test]
async fn retry_after_holds_every_request_until_the_wait_is_over() {
    for (status, class) in [
        ("429 Too Many Requests", ErrorClass::Throttled),
        ("503 Service Unavailable", ErrorClass::Http),
    ] {
        let server = server_with(3599, Duration::ZERO, move |seen, before| {
            (seen.is_graph() && !before.iter().any(Seen::is_graph)).then(|| {
                let mut r = reply(status, JSON, fixture("throttled-429.json"));
                r.headers.push(("retry-after", "0.6".to_string()));
                r
            })
        })
        .await;
        let graph = channel(&server, |_| {});
        let e = graph.probe().await.expect_err(status);
        assert_eq!(e.class(), class, "{status}: {e}");
        assert_eq!(
            e.retry_after(),
            Some(Duration::from_millis(600)),
            "fractional seconds"
        );
        let sent = server.graph();
        let e = graph.probe().await.expect_err("still waiting");
        assert_eq!(e.class(), ErrorClass::Throttled);
        assert!(e.to_string().contains("waiting as asked"), "{e}");
        assert!(
            e.retry_after()
                .is_some_and(|w| w > Duration::ZERO && w <= Duration::from_millis(600))
        );
        assert_eq!(
            server.graph(),
            sent,
            "{status}: nothing was sent during the wait"
        );
        tokio::time::sleep(Duration::from_millis(650)).await;
        graph
            .probe()
            .await
            .unwrap_or_else(|e| panic!("{status}: after the wait: {e}"));
    }
}

#[tokio::test]
async fn a_spent_budget_refuses_without_sending() {
    let server = healthy_server().await;
    // 6/min: a burst of 3, one more every 20 s; a probe takes 3 requests.
    let graph = channel(&server, |c| {
        c.budget.per_minute = NonZeroU32::new(6).expect("nonzero")
    });
    graph.probe().await.expect("the first probe fits");
    let sent = server.graph();
    let e = graph.probe().await.expect_err("the budget is spent");
    assert_eq!(e.class(), ErrorClass::Throttled);
    assert!(
        e.to_string()
            .starts_with("local request budget of 6/min spent; next request allowed in"),
        "{e}"
    );
    assert!(
        e.retry_after()
            .is_some_and(|w| w > Duration::from_secs(15) && w <= Duration::from_secs(20))
    );
    assert_eq!(server.graph(), sent, "nothing was sent");
    // The local refusal is not a Retry-After: nothing else is held.
    assert!(graph.gate().is_ok());
}

#[tokio::test]
async fn slow_oversized_and_html_answers_through_http() {
    let cases: Vec<(&str, Special, ErrorClass, &[&str])> = vec![
        (
            "slow Graph",
            Box::new(|seen: &Seen, _: &[Seen]| {
                seen.is_graph().then(|| {
                    let mut r = reply("200 OK", JSON, fixture("overviews-camel.json"));
                    r.delay = Duration::from_secs(3);
                    r
                })
            }),
            ErrorClass::Timeout,
            &["healthOverviews", "no complete answer within 300ms"],
        ),
        (
            "slow token endpoint",
            Box::new(|seen: &Seen, _: &[Seen]| {
                seen.is_token().then(|| {
                    let mut r = reply("200 OK", JSON, fixture("token-ok.json"));
                    r.delay = Duration::from_secs(3);
                    r
                })
            }),
            ErrorClass::Timeout,
            &["oauth2/v2.0/token"],
        ),
        (
            "oversized overviews",
            Box::new(|seen: &Seen, _: &[Seen]| {
                seen.is_graph().then(|| {
                    let pad = " ".repeat(20_000);
                    reply("200 OK", JSON, format!(r#"{{"value":[]{pad}}}"#))
                })
            }),
            DRIFT,
            &["8192-byte cap"],
        ),
        (
            "sign-in page with 200",
            Box::new(|seen: &Seen, _: &[Seen]| {
                seen.is_graph().then(|| {
                    reply(
                        "200 OK",
                        "text/html; charset=utf-8",
                        fixture("signin-page.html"),
                    )
                })
            }),
            DRIFT,
            &["text/html"],
        ),
        (
            "token endpoint answers HTML",
            Box::new(|seen: &Seen, _: &[Seen]| {
                seen.is_token()
                    .then(|| reply("200 OK", "text/html", fixture("signin-page.html")))
            }),
            DRIFT,
            &["oauth2/v2.0/token", "text/html"],
        ),
        (
            "bad secret",
            Box::new(|seen: &Seen, _: &[Seen]| {
                seen.is_token().then(|| {
                    reply(
                        "401 Unauthorized",
                        JSON,
                        fixture("token-error-7000215.json"),
                    )
                })
            }),
            ErrorClass::Auth,
            &["AADSTS7000215: Invalid client secret provided."],
        ),
        (
            "token endpoint 503",
            Box::new(|seen: &Seen, _: &[Seen]| {
                seen.is_token()
                    .then(|| reply("503 Service Unavailable", "text/html", "<html>down</html>"))
            }),
            ErrorClass::Http,
            &["HTTP 503"],
        ),
    ];
    for (name, special, class, says) in cases {
        let server = server_with(3599, Duration::ZERO, special).await;
        let mut config = config_for(&server.base);
        config.budget = Budget::default();
        let limits = Limits {
            timeout: Duration::from_millis(300),
            max_body: 8192,
        };
        let graph = Graph::new(CHANNEL, config, fetcher_with(limits)).expect("channel");
        let e = graph.probe().await.expect_err(name);
        assert_eq!(e.class(), class, "{name}: {e}");
        for w in says {
            assert!(e.to_string().contains(w), "{name}: {e}");
        }
    }
}

#[tokio::test]
async fn the_certificate_flow_sends_a_verifiable_assertion_and_no_secret() {
    let server = healthy_server().await;
    let graph = channel(&server, |c| {
        c.credential = Credential::Certificate {
            certificate_pem: cert(),
            private_key_pem: key(),
        };
    });
    assert_fixture_verdicts(
        &probe_at_fixture_time(&graph)
            .await
            .expect("certificate probe"),
    );
    let token = server
        .seen()
        .into_iter()
        .find(Seen::is_token)
        .expect("a token request");
    assert_eq!(token.form("client_secret"), None);
    assert_eq!(
        token.form("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    let jwt = token.form("client_assertion").expect("an assertion");
    let token_url = format!("{}/contoso.onmicrosoft.com/oauth2/v2.0/token", server.base);
    check_assertion(&jwt, &token_url, "11111111-2222-3333-4444-555555555555");
}

// ---------------------------------------------------------------------------------------------
// Secrets never leak
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn secrets_keys_assertions_and_tokens_appear_nowhere() {
    let captured = capture_logs();

    const ACCESS: &str = "AT-statusmon-access-token-Q9";
    let mut shown: Vec<String> = Vec::new();
    // The token endpoint: refuses first (echoing the secret), then grants; Graph refuses once.
    let server = server_with(3599, Duration::ZERO, |seen, before| {
        let tokens = before.iter().filter(|s| s.is_token()).count();
        if seen.is_token() {
            return Some(if tokens == 0 {
                reply("401 Unauthorized", JSON, format!(
                    r#"{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: {SECRET}\r\nTrace ID: x","error_codes":[7000215]}}"#
                ))
            } else {
                reply("200 OK", JSON, format!(r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{ACCESS}"}}"#))
            });
        }
        let graph_seen = before.iter().filter(|s| s.is_graph()).count();
        (graph_seen == 0).then(|| reply("401 Unauthorized", JSON, r#"{"error":{"code":"InvalidAuthenticationToken"}}"#))
    })
    .await;
    let secret_graph = channel(&server, |_| {});
    shown.push(format!("{secret_graph:?}"));
    for _ in 0..4 {
        shown.push(everything_shown(&secret_graph.probe().await));
    }
    assert!(
        shown.iter().any(|s| s.contains("AADSTS7000215")),
        "the refusal was seen: {shown:?}"
    );
    assert!(shown.iter().any(|s| s.contains("HTTP 401")), "{shown:?}");
    assert!(
        shown.iter().any(|s| s.contains("EX900101")),
        "a probe succeeded: {shown:?}"
    );

    // The certificate flow, with a failing and a succeeding probe.
    let cert_server = server_with(3599, Duration::ZERO, |seen, before| {
        (seen.is_token() && !before.iter().any(Seen::is_token))
            .then(|| reply("400 Bad Request", JSON, fixture("token-error-65001.json")))
    })
    .await;
    let config = GraphConfig {
        credential: Credential::Certificate {
            certificate_pem: cert(),
            private_key_pem: key(),
        },
        ..config_for(&cert_server.base)
    };
    shown.push(format!("{config:?}"));
    let cert_graph = Graph::new(CHANNEL, config, fetcher_with(Limits::default())).expect("channel");
    shown.push(format!("{cert_graph:?}"));
    for _ in 0..2 {
        match cert_graph.probe().await {
            Ok(o) => shown.push(format!("{o:?}")),
            Err(e) => shown.push(format!("{e} {e:?}")),
        }
    }
    shown.push(format!("{:?}", config_for("http://x")));
    shown.push(format!(
        "{:?}",
        Credential::Secret(SecretString::from(SECRET))
    ));
    let assertions: Vec<String> = cert_server
        .seen()
        .iter()
        .filter_map(|s| s.form("client_assertion"))
        .collect();
    assert_eq!(assertions.len(), 2);

    let logs = captured.text();
    assert!(
        logs.contains("graph: signed in"),
        "the capture works: {logs}"
    );
    shown.push(logs);
    let everything = shown.join("\n");
    let mut forbidden = vec![
        SECRET.to_string(),
        ACCESS.to_string(),
        key_line(),
        "tok-2".to_string(),
    ];
    forbidden.extend(assertions.iter().cloned());
    // A JWT's signature part alone would be a leak too.
    forbidden.extend(
        assertions
            .iter()
            .filter_map(|a| a.rsplit('.').next().map(str::to_string)),
    );
    for secret in forbidden {
        assert!(!everything.contains(&secret), "leaked {secret:?}");
    }
}
