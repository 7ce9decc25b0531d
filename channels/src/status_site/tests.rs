//! Tests of the status-site parsers and of [`assemble`], run from bytes with an explicit clock.
//!
//! Fixtures are ours, in `channels/tests/fixtures/status-site/` (see the README there). The real
//! recorded payloads in `../shared/fixtures/status-site/` are read when that folder exists and
//! skipped (with a line saying so) when it does not; the in-repo fixtures cover the same cases.
//!
//! Bodies reach the parsers the way the fetcher hands them over: through the content-type gate
//! ([`crate::http::gate`]) or as the error [`crate::http::classify_status`] makes of a non-success
//! status. Hostile cases are tables run through one checker ([`check`]), which also enforces the
//! channel-wide rules on every answer: nothing is operational without an explicit positive word,
//! nothing is unknown without a fault that says why, and one broken part does not spill over.
//!
//! The tests at the end are regressions: each case was once wrong.

use super::*;

use std::path::Path;

use reqwest::header::HeaderMap;

use crate::error::ErrorClass;
use crate::http::{Expect, classify_status, gate};
use crate::text::MAX_TEXT;

const CHANNEL: &str = "m365-public";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/status-site/");
const SHARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/status-site/"
);

const FEED: &str = "GET /api/feed/mac";
const RSS: &str = "application/rss+xml";
const JSON: &str = "application/json";
const HTML: &str = "text/html";

const OP: Health = Health::Operational;
const ADV: Health = Health::Advisory;
const INC: Health = Health::Incident;
const UNK: Health = Health::Unknown;

const DRIFT: ErrorClass = ErrorClass::Drift;
const HTTP: ErrorClass = ErrorClass::Http;

// ---------------------------------------------------------------------------------------------
// Fixtures, clock and the fake HTTP layer
// ---------------------------------------------------------------------------------------------

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad test time {rfc3339:?}: {e}"))
        .with_timezone(&Utc)
}

/// The clock every in-repo fixture is written against.
fn now() -> DateTime<Utc> {
    at("2026-11-25T12:00:00Z")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read in-repo fixture {path}: {e}"))
}

fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name))
        .unwrap_or_else(|e| panic!("in-repo fixture {name} is not UTF-8: {e}"))
}

/// Whether the real recorded payloads of `../shared` are there; says once that `test` is
/// skipped when they are not (a clone without `../shared`).
fn shared_present(test: &str) -> bool {
    let present = Path::new(SHARED).is_dir();
    if !present {
        eprintln!("{test}: skipped: {SHARED} is absent; the in-repo fixtures cover the same cases");
    }
    present
}

/// A real recorded payload from `../shared` (call [`shared_present`] first).
fn shared(name: &str) -> Vec<u8> {
    let path = format!("{SHARED}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read shared fixture {path}: {e}"))
}

/// `text` with the first `from` replaced; the fixture must contain `from`, so a fixture edit
/// cannot silently turn a hostile case into a healthy one.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the fixture no longer contains {from:?}"
    );
    text.replacen(from, to, 1)
}

fn feed_text() -> String {
    fixture_text("feed-mac-available.rss.xml")
}

fn mac_text() -> String {
    fixture_text("posts-mac-available.json")
}

/// The healthy feed with its `<status>` element replaced by `element`.
fn feed_with_status(element: &str) -> String {
    edit(&feed_text(), "<status>Available</status>", element)
}

/// The healthy feed saying `word`.
fn feed_saying(word: &str) -> String {
    feed_with_status(&format!("<status>{word}</status>"))
}

/// The healthy mac post with its `"Status":"Available"` member replaced by `member`.
fn mac_with_status(member: &str) -> String {
    edit(&mac_text(), r#""Status":"Available""#, member)
}

/// The healthy mac post saying `word`.
fn mac_saying(word: &str) -> String {
    mac_with_status(&format!(r#""Status":{}"#, json_string(word)))
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// One consumer entry in the site's shape; `status` is raw JSON (`"\"Operational\""`, `null`).
fn consumer_entry(workload: Option<&str>, status: Option<&str>) -> String {
    let mut members = vec![
        r#""ServiceDisplayName":"Some workload""#.to_string(),
        r#""Id":null"#.to_string(),
        r#""AuthoredDateTime":"0001-01-01T00:00:00+00:00""#.to_string(),
        r#""InternalDateTime":"0001-01-01T00:00:00+00:00""#.to_string(),
        r#""LastUpdatedTime":"2026-11-25T11:52:00.7310099+00:00""#.to_string(),
        r#""Title":"""#.to_string(),
        r#""Message":"""#.to_string(),
    ];
    if let Some(w) = workload {
        members.insert(1, format!(r#""ServiceWorkloadName":{}"#, json_string(w)));
    }
    if let Some(s) = status {
        members.push(format!(r#""Status":{s}"#));
    }
    format!("{{{}}}", members.join(","))
}

fn consumer_array(entries: &[String]) -> String {
    format!("[{}]", entries.join(","))
}

fn post_what(leaf: PostLeaf) -> String {
    format!("GET /api/posts/{leaf}")
}

/// What the HTTP layer hands over for one endpoint.
type Answer = Result<Vec<u8>, ProbeError>;

/// A 200 answer as the fetcher hands it over: through the content-type gate.
fn served(
    what: &str,
    expect: Expect,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> Answer {
    let body = body.into();
    gate(what, expect, content_type, &body).map(|()| body)
}

/// A non-success status as the fetcher classifies it.
fn status(what: &str, code: u16) -> Answer {
    Err(classify_status(code, &HeaderMap::new(), what, now())
        .unwrap_or_else(|| panic!("{code} is a success, not an error")))
}

/// One probe's worth of answers, healthy unless a test says otherwise.
#[derive(Debug, Clone)]
struct Site {
    feed: Answer,
    posts: Vec<(PostLeaf, Answer)>,
    max_age: Option<Duration>,
    now: DateTime<Utc>,
}

impl Site {
    /// Every endpoint answers with the healthy in-repo fixtures.
    fn healthy() -> Site {
        let post = |leaf: PostLeaf, name: &str| {
            (
                leaf,
                served(&post_what(leaf), Expect::Json, Some(JSON), fixture(name)),
            )
        };
        Site {
            feed: served(
                FEED,
                Expect::Xml,
                Some(RSS),
                fixture("feed-mac-available.rss.xml"),
            ),
            posts: vec![
                post(PostLeaf::Mac, "posts-mac-available.json"),
                post(PostLeaf::Ppac, "posts-ppac-available.json"),
                post(PostLeaf::Azure, "posts-azure-available.json"),
                post(PostLeaf::M365Consumer, "posts-m365Consumer.json"),
            ],
            max_age: None,
            now: now(),
        }
    }

    /// The feed answers 200 with this content type and body.
    fn feed_as(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Site {
        self.feed = served(FEED, Expect::Xml, content_type, body);
        self
    }

    /// The feed answers 200 `application/rss+xml` with this body.
    fn feed(self, body: impl Into<Vec<u8>>) -> Site {
        self.feed_as(Some(RSS), body)
    }

    fn feed_error(mut self, error: ProbeError) -> Site {
        self.feed = Err(error);
        self
    }

    fn feed_status(mut self, code: u16) -> Site {
        self.feed = status(FEED, code);
        self
    }

    fn answer(mut self, leaf: PostLeaf, answer: Answer) -> Site {
        match self.posts.iter_mut().find(|(l, _)| *l == leaf) {
            Some(slot) => slot.1 = answer,
            None => self.posts.push((leaf, answer)),
        }
        self
    }

    /// `/api/posts/{leaf}` answers 200 with this content type and body.
    fn post_as(self, leaf: PostLeaf, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Site {
        let answer = served(&post_what(leaf), Expect::Json, content_type, body);
        self.answer(leaf, answer)
    }

    /// `/api/posts/{leaf}` answers 200 `application/json` with this body.
    fn post(self, leaf: PostLeaf, body: impl Into<Vec<u8>>) -> Site {
        self.post_as(leaf, Some(JSON), body)
    }

    fn mac(self, body: impl Into<Vec<u8>>) -> Site {
        self.post(PostLeaf::Mac, body)
    }

    fn post_status(self, leaf: PostLeaf, code: u16) -> Site {
        let answer = status(&post_what(leaf), code);
        self.answer(leaf, answer)
    }

    fn only_mac(mut self) -> Site {
        self.posts.retain(|(l, _)| *l == PostLeaf::Mac);
        self
    }

    fn max_age(mut self, max: Duration) -> Site {
        self.max_age = Some(max);
        self
    }

    fn at(mut self, now: DateTime<Utc>) -> Site {
        self.now = now;
        self
    }

    fn run(&self) -> Result<Observation, ProbeError> {
        let responses = SiteResponses {
            feed_mac: self.feed.clone(),
            posts: self.posts.clone(),
        };
        assemble(CHANNEL, &responses, self.now, self.max_age)
    }
}

// ---------------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------------

/// A fault we expect: which service it is about, its class, and words its message must contain
/// (case-insensitive).
#[derive(Debug)]
struct WantFault {
    service: &'static str,
    class: ErrorClass,
    says: &'static [&'static str],
}

fn fault_of(service: &'static str, class: ErrorClass, says: &'static [&'static str]) -> WantFault {
    WantFault {
        service,
        class,
        says,
    }
}

/// What a user would see.
#[derive(Debug)]
enum Want {
    /// The whole probe fails: the channel shows as failing with this class, and the message
    /// contains these words (case-insensitive).
    Fails(ErrorClass, &'static [&'static str]),
    /// The probe answers: these services with these healths (every service not listed must be
    /// operational, so a broken part cannot spill over), and exactly these faults.
    Sees(Vec<(&'static str, Health)>, Vec<WantFault>),
}

fn fails(class: ErrorClass, says: &'static [&'static str]) -> Want {
    Want::Fails(class, says)
}

fn sees(health: &[(&'static str, Health)], faults: Vec<WantFault>) -> Want {
    Want::Sees(health.to_vec(), faults)
}

/// A case of a table.
struct Case {
    name: &'static str,
    site: Site,
    want: Want,
}

fn case(name: &'static str, site: Site, want: Want) -> Case {
    Case { name, site, want }
}

fn missing_words(message: &str, says: &[&str]) -> Vec<String> {
    let lower = message.to_lowercase();
    says.iter()
        .filter(|w| !lower.contains(&w.to_lowercase()))
        .map(|w| (*w).to_string())
        .collect()
}

/// Rules every answered probe must keep, whatever the input.
fn invariants(site: &Site, o: &Observation) -> Vec<String> {
    let mut problems = Vec::new();
    if o.channel != CHANNEL || o.observed_at != site.now {
        problems.push(format!(
            "channel/observed_at are {:?}/{}, not {CHANNEL:?}/{}",
            o.channel, o.observed_at, site.now
        ));
    }
    if o.digest.len() != 64 || !o.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        problems.push(format!("digest {:?} is not a SHA-256 hex string", o.digest));
    }
    let macs = o.services.iter().filter(|s| s.id == ADMIN_CENTER).count();
    if macs != 1 {
        problems.push(format!("the admin center is listed {macs} times, not once"));
    }
    for s in &o.services {
        if s.health == Health::Operational
            && site_health(&s.status_text, "test") != Ok(Health::Operational)
        {
            problems.push(format!(
                "{} is operational without an explicit positive word (status_text {:?})",
                s.id, s.status_text
            ));
        }
        if s.health == Health::Unknown && !o.faults.iter().any(|f| f.services.contains(&s.id)) {
            problems.push(format!("{} is unknown and no fault says why", s.id));
        }
    }
    for f in &o.faults {
        let message = f.error.to_string();
        if !message.contains("/api/") {
            problems.push(format!(
                "fault message {message:?} does not name the endpoint"
            ));
        }
    }
    problems
}

/// Runs one case; returns what is wrong with it, if anything.
fn check(case: &Case) -> Result<(), String> {
    let result = case.site.run();
    let mut problems = Vec::new();
    match (&case.want, &result) {
        (Want::Fails(class, says), Err(error)) => {
            if error.class() != *class {
                problems.push(format!("class {} (want {class})", error.class()));
            }
            let message = error.to_string();
            let missing = missing_words(&message, says);
            if !missing.is_empty() {
                problems.push(format!("message {message:?} lacks {missing:?}"));
            }
            if !message.contains("/api/") {
                problems.push(format!("message {message:?} does not name the endpoint"));
            }
        }
        (Want::Fails(class, _), Ok(o)) => {
            let shown: Vec<String> = o
                .services
                .iter()
                .map(|s| format!("{}={}", s.id, s.health))
                .collect();
            problems.push(format!(
                "answered {shown:?} instead of failing with class {class}"
            ));
        }
        (Want::Sees(..), Err(error)) => {
            problems.push(format!(
                "failed ({}: {error}) instead of answering",
                error.class()
            ));
        }
        (Want::Sees(health, faults), Ok(o)) => {
            problems.extend(invariants(&case.site, o));
            for (id, want) in health {
                let found: Vec<&ServiceObservation> =
                    o.services.iter().filter(|s| s.id == *id).collect();
                match found.as_slice() {
                    [s] if s.health == *want => {}
                    [s] => problems.push(format!(
                        "{id} is {} (want {want}); message {:?}",
                        s.health, s.message
                    )),
                    other => {
                        problems.push(format!("{id} is listed {} times, not once", other.len()))
                    }
                }
            }
            for s in &o.services {
                if !health.iter().any(|(id, _)| *id == s.id) && s.health != Health::Operational {
                    problems.push(format!(
                        "unlisted {} is {} (a broken part spilled over)",
                        s.id, s.health
                    ));
                }
            }
            let mut unmatched: Vec<&Fault> = o.faults.iter().collect();
            for want in faults {
                let position = unmatched.iter().position(|f| {
                    f.services.iter().any(|s| s == want.service)
                        && f.error.class() == want.class
                        && missing_words(&f.error.to_string(), want.says).is_empty()
                });
                match position {
                    Some(i) => {
                        unmatched.remove(i);
                    }
                    None => problems.push(format!(
                        "no {} fault on {} saying {:?}",
                        want.class, want.service, want.says
                    )),
                }
            }
            for f in unmatched {
                problems.push(format!(
                    "unexpected fault on {:?}: {}: {}",
                    f.services,
                    f.error.class(),
                    f.error
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "case {:?}:\n    {}",
            case.name,
            problems.join("\n    ")
        ))
    }
}

/// Runs every case and reports every failing one at once.
fn run_table(cases: Vec<Case>) {
    assert!(!cases.is_empty(), "an empty table tests nothing");
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn service<'a>(o: &'a Observation, id: &str) -> &'a ServiceObservation {
    let found: Vec<&ServiceObservation> = o.services.iter().filter(|s| s.id == id).collect();
    match found.as_slice() {
        [s] => s,
        other => panic!("{id} is listed {} times in {:#?}", other.len(), o.services),
    }
}

fn answered(site: &Site) -> Observation {
    match site.run() {
        Ok(o) => o,
        Err(e) => panic!(
            "the probe failed ({}: {e}) where it should have answered",
            e.class()
        ),
    }
}

fn failed(site: &Site) -> ProbeError {
    match site.run() {
        Ok(o) => panic!(
            "the probe answered where it should have failed: {:#?}",
            o.services
        ),
        Err(e) => e,
    }
}

const HEALTHY_CONSUMER: [&str; 5] = [
    "TeamsforLife",
    "M365Consumer",
    "Outlook.com",
    "OneDriveConsumer",
    "YourPhone",
];

// ---------------------------------------------------------------------------------------------
// Healthy and degraded fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn healthy_fixtures_make_every_service_operational_from_explicit_words() {
    let site = Site::healthy();
    let o = answered(&site);
    assert_eq!(invariants(&site, &o), Vec::<String>::new());
    assert!(o.faults.is_empty(), "faults: {:?}", o.faults);

    let mut ids: Vec<&str> = o.services.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec!["mac", "ppac", "azure"];
    want.extend(HEALTHY_CONSUMER);
    want.sort_unstable();
    assert_eq!(ids, want);
    assert!(
        o.services.iter().all(|s| s.health == OP),
        "{:#?}",
        o.services
    );

    let mac = service(&o, "mac");
    assert_eq!(mac.name, "Microsoft 365 admin center");
    assert_eq!(mac.status_text, "Available");
    // InternalDateTime decides freshness, not LastUpdatedTime (the request clock) nor pubDate.
    assert_eq!(o.source_time, Some(at("2026-11-25T11:52:07Z")));
    assert_eq!(mac.as_of, Some(at("2026-11-25T11:52:07Z")));
    assert_eq!(
        mac.message.as_deref(),
        Some(
            "statusmon fixture: this page changes only when a service problem keeps tenant \
             administrators out of Service health in the admin center. For wider incidents see \
             https://example.invalid/msft365status as well."
        ),
        "the vendor HTML must become plain text"
    );
    assert!(mac.incidents.is_empty());
    assert_eq!(service(&o, "ppac").as_of, Some(at("2026-11-25T11:51:58Z")));
    assert_eq!(service(&o, "OneDriveConsumer").name, "OneDrive");
}

#[test]
fn a_restored_consumer_entry_is_operational_and_its_incident_resolved() {
    let o = answered(&Site::healthy());
    let teams = service(&o, "TeamsforLife");
    assert_eq!(
        (teams.health, teams.status_text.as_str()),
        (OP, "Service restored")
    );
    assert_eq!(teams.name, "Microsoft Teams Free");
    assert_eq!(o.incidents.len(), 1, "{:#?}", o.incidents);
    let incident = &o.incidents[0];
    assert_eq!(
        &*incident.title,
        "Some users couldn't join meetings in Microsoft Teams Free"
    );
    assert_eq!(incident.service.as_deref(), Some("TeamsforLife"));
    assert!(incident.resolved);
    assert_eq!(incident.status, "Service restored");
    assert_eq!(incident.id, None);
    assert_eq!(
        incident.started_at, None,
        "AuthoredDateTime is the 0001 sentinel"
    );
    assert_eq!(incident.updated_at, Some(at("2026-11-24T22:03:17.412Z")));
    let summary = incident.summary.as_deref().unwrap_or_default();
    assert!(
        summary.starts_with("User impact: Users may have been unable to join"),
        "{summary:?}"
    );
    assert!(
        summary.contains("Final status:") && summary.contains("End time:"),
        "{summary:?}"
    );
    assert!(
        !summary.contains('\r') && !summary.contains('\n'),
        "{summary:?}"
    );
}

#[test]
fn a_degraded_admin_center_is_an_advisory_with_its_incident() {
    let site = Site::healthy()
        .feed(fixture("feed-mac-degraded.rss.xml"))
        .mac(fixture("posts-mac-degraded.json"));
    let o = answered(&site);
    assert_eq!(invariants(&site, &o), Vec::<String>::new());
    assert!(o.faults.is_empty(), "faults: {:?}", o.faults);
    let mac = service(&o, "mac");
    assert_eq!(mac.health, ADV);
    // Both views agree (display text in the feed, enum key in the post): no disagreement note.
    assert_eq!(mac.status_text, "ServiceDegradation");
    assert_eq!(mac.incidents, vec!["MO1290417"]);
    let message = mac.message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with("statusmon fixture: some administrators"),
        "{message:?}"
    );
    assert!(!message.contains("the feed says"), "{message:?}");
    for other in ["ppac", "azure", "Outlook.com"] {
        assert_eq!(service(&o, other).health, OP, "{other}");
    }
    let incident = o
        .incidents
        .iter()
        .find(|i| i.service.as_deref() == Some("mac"))
        .unwrap_or_else(|| panic!("no admin-center incident in {:#?}", o.incidents));
    assert_eq!(incident.id.as_deref(), Some("MO1290417"));
    assert_eq!(&*incident.title, "Some admins can't open Service health");
    assert_eq!(incident.classification, IncidentClassification::Advisory);
    assert!(!incident.resolved);
    assert_eq!(incident.started_at, Some(at("2026-11-25T11:38:45Z")));
    assert_eq!(incident.updated_at, Some(at("2026-11-25T11:52:07Z")));
}

#[test]
fn an_admin_center_message_keeps_words_and_drops_markup_and_scripts() {
    let post = edit(
        &mac_with_status(r#""Status":"Service degradation""#),
        r#""Title":"""#,
        r#""Title":"<img src=x onerror=alert(1)>Sign-in <b>slow</b>""#,
    );
    let post = edit(
        &post,
        r#""Message":"<div>statusmon fixture:"#,
        r#""Message":"<script>alert('x')</script><style>p{}</style><div>statusmon fixture:"#,
    );
    let o = answered(&Site::healthy().mac(post));
    let mac = service(&o, "mac");
    assert_eq!(mac.health, ADV);
    let message = mac.message.as_deref().unwrap_or_default();
    assert!(
        message
            .starts_with("the feed says \"Available\" and the post says \"Service degradation\""),
        "{message:?}"
    );
    for bad in ["<", "alert", "script", "p{}", "href"] {
        assert!(!message.contains(bad), "{bad:?} survived in {message:?}");
    }
    let incident = o
        .incidents
        .iter()
        .find(|i| i.service.as_deref() == Some("mac"));
    assert_eq!(incident.map(|i| &*i.title), Some("Sign-in slow"));
}

// ---------------------------------------------------------------------------------------------
// Hostile feed bodies
// ---------------------------------------------------------------------------------------------

fn shell() -> Vec<u8> {
    fixture("html-spa-shell.html")
}

const XHTML_SIGN_IN: &str = r#"<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">
<body><p>Sign in to continue. Available</p></body></html>"#;
const ATOM: &str = r#"<feed xmlns="http://www.w3.org/2005/Atom">
<entry><status>Available</status></entry></feed>"#;
const RSS_NO_CHANNEL: &str =
    r#"<?xml version="1.0"?><rss version="2.0"><item><status>Available</status></item></rss>"#;

#[test]
fn hostile_feed_bodies_never_make_the_admin_center_green() {
    const F: &str = "/api/feed/mac";
    let s = Site::healthy;
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(feed_text().encode_utf16().flat_map(u16::to_le_bytes));
    // "café" with the é as one Latin-1 byte, which is not UTF-8.
    let latin1: Vec<u8> = edit(&feed_text(), "as well.", "as well. caf\u{1}")
        .bytes()
        .map(|b| if b == 1 { 0xE9 } else { b })
        .collect();
    let cut = |marker: &str| {
        let text = feed_text();
        let end = text
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} not in the feed"))
            + marker.len();
        text[..end].to_string()
    };
    let bom_shell = [b"\xEF\xBB\xBF\r\n\n".as_slice(), &shell()].concat();
    let timeout = ProbeError::Timeout {
        what: FEED.into(),
        after: Duration::from_secs(10),
    };
    let refused = ProbeError::Network {
        message: format!("{FEED}: cannot connect: Connection refused"),
    };
    let not_xml = &[F, "not well-formed XML"];
    let empty = &[F, "empty"];
    run_table(vec![
        case(
            "SPA shell served as text/html",
            s().feed_as(Some(HTML), shell()),
            fails(DRIFT, &[F, "text/html", "HTML page"]),
        ),
        case(
            "SPA shell labelled application/rss+xml",
            s().feed(shell()),
            fails(DRIFT, &[F, "body is an HTML page"]),
        ),
        case(
            "SPA shell labelled text/xml after a BOM and blank lines",
            s().feed_as(Some("text/xml"), bom_shell),
            fails(DRIFT, &[F, "HTML page"]),
        ),
        case(
            "XHTML sign-in page labelled application/xml",
            s().feed_as(Some("application/xml"), XHTML_SIGN_IN),
            fails(DRIFT, &[F, "not an RSS feed", "<html>"]),
        ),
        case(
            "Atom feed where RSS was expected",
            s().feed(ATOM),
            fails(DRIFT, &[F, "not an RSS feed", "<feed>"]),
        ),
        case(
            "JSON labelled application/json where RSS was expected",
            s().feed_as(Some(JSON), mac_text()),
            fails(DRIFT, &[F, "expected XML", "application/json"]),
        ),
        case(
            "no Content-Type",
            s().feed_as(None, feed_text()),
            fails(DRIFT, &[F, "Content-Type"]),
        ),
        case("empty body", s().feed(""), fails(DRIFT, &[F, "empty body"])),
        case(
            "whitespace-only body",
            s().feed(" \r\n\t \n"),
            fails(DRIFT, &[F, "empty body"]),
        ),
        case(
            "truncated inside <status>",
            s().feed(cut("<status>Avail")),
            fails(DRIFT, not_xml),
        ),
        case(
            "truncated right after </status>",
            s().feed(cut("</status>")),
            fails(DRIFT, not_xml),
        ),
        case(
            "only an XML declaration",
            s().feed(r#"<?xml version="1.0" encoding="utf-8"?>"#),
            fails(DRIFT, not_xml),
        ),
        case(
            "<rss> without <channel>",
            s().feed(RSS_NO_CHANNEL),
            fails(DRIFT, &[F, "without <channel>"]),
        ),
        case(
            "a channel with no <item>",
            s().feed(fixture("feed-mac-no-items.rss.xml")),
            fails(DRIFT, &[F, "no items"]),
        ),
        case(
            "an item without <status>",
            s().feed(feed_with_status("")),
            fails(DRIFT, &[F, "no <status> element"]),
        ),
        case(
            "<status></status>",
            s().feed(feed_saying("")),
            fails(DRIFT, empty),
        ),
        case(
            "<status/>",
            s().feed(feed_with_status("<status/>")),
            fails(DRIFT, empty),
        ),
        case(
            "<status> of whitespace",
            s().feed(feed_saying(" \n\t ")),
            fails(DRIFT, empty),
        ),
        case(
            "<status> holding markup, not text",
            s().feed(feed_saying("<b>Available</b>")),
            fails(DRIFT, empty),
        ),
        case(
            "unknown word containing 'available'",
            s().feed(feed_saying("Partially available")),
            fails(DRIFT, &[F, "unknown status word", "Partially available"]),
        ),
        case(
            "'Not available'",
            s().feed(feed_saying("Not available")),
            fails(DRIFT, &[F, "Not available"]),
        ),
        case(
            "the site's own word Unknown",
            s().feed(feed_saying("Unknown")),
            fails(DRIFT, &[F, "\"Unknown\""]),
        ),
        case(
            "Available only in prose, a bad <status>",
            s().feed(fixture("feed-mac-prose-available.rss.xml")),
            fails(DRIFT, &[F, "Pending review"]),
        ),
        case(
            "a DTD with external and nested entities",
            s().feed(fixture("feed-mac-dtd-entities.rss.xml")),
            fails(DRIFT, &[F, "DTD"]),
        ),
        case(
            "non-UTF-8 byte (Latin-1)",
            s().feed(latin1),
            fails(DRIFT, &[F, "not UTF-8"]),
        ),
        case(
            "UTF-16 with its BOM",
            s().feed(utf16),
            fails(DRIFT, &[F, "not UTF-8"]),
        ),
        case(
            "HTTP 503",
            s().feed_status(503),
            fails(HTTP, &[F, "HTTP 503"]),
        ),
        case(
            "HTTP 302 not followed",
            s().feed_status(302),
            fails(HTTP, &[F, "302", "redirect"]),
        ),
        case(
            "HTTP 401",
            s().feed_status(401),
            fails(ErrorClass::Auth, &[F, "401"]),
        ),
        case(
            "HTTP 429",
            s().feed_status(429),
            fails(ErrorClass::Throttled, &[F, "429"]),
        ),
        case(
            "timeout",
            s().feed_error(timeout),
            fails(ErrorClass::Timeout, &[F, "10s"]),
        ),
        case(
            "connection refused",
            s().feed_error(refused),
            fails(ErrorClass::Network, &[F, "Connection refused"]),
        ),
    ]);
}

#[test]
fn a_bom_before_the_xml_is_accepted() {
    let site = Site::healthy().feed([b"\xEF\xBB\xBF".as_slice(), feed_text().as_bytes()].concat());
    let o = answered(&site);
    assert_eq!(service(&o, "mac").health, OP);
    assert!(o.faults.is_empty(), "{:?}", o.faults);
}

#[test]
fn entities_are_refused_and_never_expanded() {
    let body = fixture("feed-mac-dtd-entities.rss.xml");
    let error = match parse_feed(&body, FEED) {
        Ok(item) => panic!("a feed with a DTD was accepted: {item:?}"),
        Err(e) => e,
    };
    assert_eq!(error.class(), DRIFT);
    let message = error.to_string();
    assert!(message.len() < 300, "message grew: {} bytes", message.len());
    assert!(
        !message.contains("lol"),
        "an entity was expanded: {message:?}"
    );
    // Even the harmless internal entity must not turn the status into "Available".
    let small = edit(
        &feed_with_status("<status>&ok;</status>"),
        "<rss ",
        "<!DOCTYPE rss [<!ENTITY ok \"Available\">]>\n<rss ",
    );
    assert_eq!(
        parse_feed(small.as_bytes(), FEED).map_err(|e| e.class()),
        Err(DRIFT)
    );
}

#[test]
fn deeply_nested_bodies_do_not_crash() {
    let depth = 100_000;
    let nested = format!("{}{}", "<x>".repeat(depth), "</x>".repeat(depth));
    let feed = edit(&feed_text(), "<status>", &format!("{nested}<status>"));
    let o = answered(&Site::healthy().feed(feed));
    assert_eq!(
        service(&o, "mac").health,
        OP,
        "a valid feed with a deep extension element"
    );

    let post = edit(
        &mac_text(),
        r#""Status":"#,
        &format!(
            r#""Deep":{}{},"Status":"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    );
    let error = failed(&Site::healthy().mac(post));
    assert_eq!(error.class(), DRIFT);
    assert!(error.to_string().contains("/api/posts/mac"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Hostile mac post bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn hostile_mac_post_bodies_never_make_the_admin_center_green() {
    use PostLeaf::Mac;
    let s = Site::healthy;
    let truncated = {
        let text = mac_text();
        text[..text.len() - 1].to_string()
    };
    let mut non_utf8 = mac_text().into_bytes();
    let pos = non_utf8
        .windows(9)
        .position(|w| w == b"statusmon")
        .unwrap_or_else(|| panic!("marker missing"));
    non_utf8[pos] = 0xFF;
    run_table(vec![
        case(
            "SPA shell served as text/html",
            s().post_as(Mac, Some(HTML), shell()),
            fails(DRIFT, &["/api/posts/mac", "text/html", "HTML page"]),
        ),
        case(
            "SPA shell labelled application/json",
            s().mac(shell()),
            fails(DRIFT, &["/api/posts/mac", "body is an HTML page"]),
        ),
        case(
            "an HTML fragment labelled application/json",
            s().mac(r#"<div id="root"></div>"#),
            fails(DRIFT, &["/api/posts/mac", "not valid JSON"]),
        ),
        case(
            "RSS labelled application/json",
            s().mac(feed_text()),
            fails(DRIFT, &["/api/posts/mac", "not valid JSON"]),
        ),
        case(
            "text/plain",
            s().post_as(Mac, Some("text/plain"), mac_text()),
            fails(DRIFT, &["/api/posts/mac", "expected JSON", "text/plain"]),
        ),
        case(
            "empty body",
            s().mac(""),
            fails(DRIFT, &["/api/posts/mac", "empty body"]),
        ),
        case(
            "whitespace-only body",
            s().mac("\n  \t\r\n"),
            fails(DRIFT, &["/api/posts/mac", "empty body"]),
        ),
        case(
            "truncated JSON",
            s().mac(truncated),
            fails(DRIFT, &["/api/posts/mac", "not valid JSON"]),
        ),
        case(
            "an array where an object was expected",
            s().mac(format!("[{}]", mac_text())),
            fails(
                DRIFT,
                &["/api/posts/mac", "expected a JSON object", "an array"],
            ),
        ),
        case(
            "null",
            s().mac("null"),
            fails(DRIFT, &["/api/posts/mac", "null"]),
        ),
        case(
            "a bare string",
            s().mac(r#""Available""#),
            fails(DRIFT, &["/api/posts/mac", "a string"]),
        ),
        case(
            "Status missing",
            s().mac(mac_with_status(r#""State":"Available""#)),
            fails(DRIFT, &["/api/posts/mac", "Status"]),
        ),
        case(
            "Status null",
            s().mac(mac_with_status(r#""Status":null"#)),
            fails(DRIFT, &["/api/posts/mac", "Status"]),
        ),
        case(
            "Status a number",
            s().mac(mac_with_status(r#""Status":1"#)),
            fails(DRIFT, &["/api/posts/mac", "integer"]),
        ),
        case(
            "Status a boolean",
            s().mac(mac_with_status(r#""Status":true"#)),
            fails(DRIFT, &["/api/posts/mac", "boolean"]),
        ),
        case(
            "Status an object",
            s().mac(mac_with_status(r#""Status":{"Value":"Available"}"#)),
            fails(DRIFT, &["/api/posts/mac", "map"]),
        ),
        case(
            "Status empty",
            s().mac(mac_saying("")),
            fails(DRIFT, &["/api/posts/mac", "empty"]),
        ),
        case(
            "the site's own word Unknown",
            s().mac(mac_saying("Unknown")),
            fails(DRIFT, &["/api/posts/mac", "\"Unknown\""]),
        ),
        case(
            "unknown word",
            s().mac(mac_saying("Partially available")),
            fails(
                DRIFT,
                &[
                    "/api/posts/mac",
                    "unknown status word",
                    "Partially available",
                ],
            ),
        ),
        case(
            "keys in the wrong case",
            s().mac(
                r#"{"id":"x","internalDateTime":"2026-11-25T11:52:07+00:00","status":"Available"}"#,
            ),
            fails(DRIFT, &["/api/posts/mac", "no Status"]),
        ),
        case(
            "the retired portal's all-good shape",
            s().mac(r#"{"Title":"All good","SubTitle":"Everything is up.","IsAllUp":true}"#),
            fails(DRIFT, &["/api/posts/mac", "no Status"]),
        ),
        case(
            "an error object served with 200",
            s().mac(r#"{"Message":"No resource matches the request."}"#),
            fails(DRIFT, &["/api/posts/mac", "no Status"]),
        ),
        case(
            "non-UTF-8 byte inside a string",
            s().mac(non_utf8),
            fails(DRIFT, &["/api/posts/mac", "not valid JSON"]),
        ),
        case(
            "HTTP 503",
            s().post_status(Mac, 503),
            fails(HTTP, &["/api/posts/mac", "HTTP 503", "server error"]),
        ),
        case(
            "HTTP 400 (the path drifted)",
            s().post_status(Mac, 400),
            fails(HTTP, &["/api/posts/mac", "400", "path"]),
        ),
        case(
            "HTTP 404",
            s().post_status(Mac, 404),
            fails(HTTP, &["/api/posts/mac", "404", "gone"]),
        ),
        case(
            "HTTP 403",
            s().post_status(Mac, 403),
            fails(ErrorClass::Auth, &["/api/posts/mac", "403"]),
        ),
        case(
            "not requested at all",
            {
                let mut site = s();
                site.posts.retain(|(l, _)| *l != Mac);
                site
            },
            fails(DRIFT, &["/api/posts/mac", "not requested"]),
        ),
    ]);
}

#[test]
fn a_bom_before_a_json_post_is_never_green_by_accident() {
    // RFC 8259 lets a parser either ignore a BOM or refuse it. Either is fine here, as long as an
    // acceptance reads the real status and a refusal is drift naming the endpoint.
    let body = [
        b"\xEF\xBB\xBF".as_slice(),
        mac_saying("Service degradation").as_bytes(),
    ]
    .concat();
    match Site::healthy().mac(body).run() {
        Ok(o) => assert_eq!(service(&o, "mac").health, ADV),
        Err(e) => {
            assert_eq!(e.class(), DRIFT, "{e}");
            assert!(e.to_string().contains("/api/posts/mac"), "{e}");
        }
    }
}

#[test]
fn an_oversized_field_is_cut_and_an_oversized_word_is_not_echoed() {
    // The body-size cap itself lives in `Fetcher::get` (streaming); it is not reachable from a
    // pure function. What the parsers must do with a large body under the cap is stay bounded.
    let big = "<p>words words words</p>".repeat(10_000);
    let post = edit(
        &mac_text(),
        r#""Message":"<div>"#,
        &format!(r#""Message":"{big}<div>"#),
    );
    assert!(post.len() > 200_000);
    let o = answered(&Site::healthy().mac(post));
    let message = service(&o, "mac").message.clone().unwrap_or_default();
    assert!(
        message.len() <= MAX_TEXT + '…'.len_utf8(),
        "message is {} bytes",
        message.len()
    );

    let word = "Q".repeat(300_000);
    let error = failed(&Site::healthy().mac(mac_saying(&word)));
    assert_eq!(error.class(), DRIFT);
    assert!(
        error.to_string().len() < 400,
        "the message echoes {} bytes",
        error.to_string().len()
    );
}

// ---------------------------------------------------------------------------------------------
// The admin-center rule: green needs both views; bad news is believed alone
// ---------------------------------------------------------------------------------------------

#[test]
fn the_admin_center_needs_both_views_for_green_and_believes_bad_news_alone() {
    use PostLeaf::Mac;
    let s = Site::healthy;
    let degraded_feed = || fixture("feed-mac-degraded.rss.xml");
    let degraded_post = || fixture("posts-mac-degraded.json");
    run_table(vec![
        case(
            "feed Available, post HTTP 503",
            s().post_status(Mac, 503),
            fails(HTTP, &["/api/posts/mac", "HTTP 503"]),
        ),
        case(
            "feed HTTP 503, post Available",
            s().feed_status(503),
            fails(HTTP, &["/api/feed/mac", "HTTP 503"]),
        ),
        case(
            "feed Available, post SPA shell",
            s().post_as(Mac, Some(HTML), shell()),
            fails(DRIFT, &["/api/posts/mac"]),
        ),
        case(
            "both views broken",
            s().feed_as(Some(HTML), shell()).mac(""),
            fails(DRIFT, &["/api/feed/mac", "/api/posts/mac"]),
        ),
        case(
            "feed HTTP 503, post Service degradation",
            s().feed_status(503).mac(degraded_post()),
            sees(
                &[("mac", ADV)],
                vec![fault_of("mac", HTTP, &["/api/feed/mac", "HTTP 503"])],
            ),
        ),
        case(
            "feed Service degradation, post HTTP 503",
            s().feed(degraded_feed()).post_status(Mac, 503),
            sees(
                &[("mac", ADV)],
                vec![fault_of("mac", HTTP, &["/api/posts/mac", "HTTP 503"])],
            ),
        ),
        case(
            "feed SPA shell, post Service interruption",
            s().feed_as(Some(HTML), shell())
                .mac(mac_saying("Service interruption")),
            sees(
                &[("mac", INC)],
                vec![fault_of("mac", DRIFT, &["/api/feed/mac", "text/html"])],
            ),
        ),
        case(
            "feed Service interruption, post Unknown",
            s().feed(feed_saying("Service interruption"))
                .mac(mac_saying("Unknown")),
            sees(
                &[("mac", INC)],
                vec![fault_of("mac", DRIFT, &["/api/posts/mac", "Unknown"])],
            ),
        ),
        case(
            "feed Investigating, post truncated",
            s().feed(feed_saying("Investigating"))
                .mac("{\"Status\":\"Avail"),
            sees(
                &[("mac", ADV)],
                vec![fault_of("mac", DRIFT, &["/api/posts/mac", "JSON"])],
            ),
        ),
        case(
            "disagree: feed Available, post ServiceDegradation",
            s().mac(degraded_post()),
            sees(&[("mac", ADV)], vec![]),
        ),
        case(
            "disagree: feed Service degradation, post Available",
            s().feed(degraded_feed()),
            sees(&[("mac", ADV)], vec![]),
        ),
        case(
            "disagree: feed Service interruption, post Service degradation",
            s().feed(feed_saying("Service interruption"))
                .mac(degraded_post()),
            sees(&[("mac", INC)], vec![]),
        ),
        case(
            "disagree: feed Available, post Restoring service",
            s().mac(mac_saying("Restoring service")),
            sees(&[("mac", ADV)], vec![]),
        ),
        case(
            "feed Available, post Service restored",
            s().mac(mac_saying("Service restored")),
            sees(&[("mac", OP)], vec![]),
        ),
        case(
            "feed Service restored, post ServiceRestored",
            s().feed(feed_saying("Service restored"))
                .mac(mac_saying("ServiceRestored")),
            sees(&[("mac", OP)], vec![]),
        ),
        case(
            "feed serviceOperational, post Operational",
            s().feed(feed_saying("serviceOperational"))
                .mac(mac_saying("Operational")),
            sees(&[("mac", OP)], vec![]),
        ),
        case(
            "feed '  service   DEGRADATION ', post Available",
            s().feed(feed_saying("  service   DEGRADATION ")),
            sees(&[("mac", ADV)], vec![]),
        ),
        case(
            "post 'SERVICE_INTERRUPTION', feed Available",
            s().mac(mac_saying("SERVICE_INTERRUPTION")),
            sees(&[("mac", INC)], vec![]),
        ),
        case(
            "only the mac post configured",
            s().only_mac(),
            sees(&[("mac", OP)], vec![]),
        ),
    ]);
}

#[test]
fn a_disagreement_is_said_in_the_message_and_the_worse_word_is_shown() {
    let o = answered(&Site::healthy().mac(fixture("posts-mac-degraded.json")));
    let mac = service(&o, "mac");
    assert_eq!(
        (mac.health, mac.status_text.as_str()),
        (ADV, "ServiceDegradation")
    );
    let message = mac.message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with(
            "the feed says \"Available\" and the post says \"ServiceDegradation\"; \
             showing the worse."
        ),
        "{message:?}"
    );
    let o = answered(&Site::healthy().feed(fixture("feed-mac-degraded.rss.xml")));
    let mac = service(&o, "mac");
    assert_eq!(
        (mac.health, mac.status_text.as_str()),
        (ADV, "Service degradation")
    );
    assert!(
        mac.message
            .as_deref()
            .unwrap_or_default()
            .contains("the feed says \"Service degradation\"")
    );
}

#[test]
fn a_lone_bad_view_keeps_its_own_message_and_time() {
    let o = answered(
        &Site::healthy()
            .feed(fixture("feed-mac-degraded.rss.xml"))
            .post_status(PostLeaf::Mac, 503),
    );
    let mac = service(&o, "mac");
    assert_eq!(mac.status_text, "Service degradation");
    assert!(
        mac.message
            .as_deref()
            .unwrap_or_default()
            .contains("reviewing telemetry under MO1290417"),
        "{:?}",
        mac.message
    );
    assert_eq!(mac.incidents, vec!["MO1290417"]);
    // The post is gone, so the feed's pubDate is the only source time.
    assert_eq!(o.source_time, Some(at("2026-11-25T11:41:00Z")));
}

// ---------------------------------------------------------------------------------------------
// Other leaves fail alone
// ---------------------------------------------------------------------------------------------

#[test]
fn a_broken_leaf_leaves_its_own_services_unknown_and_nothing_else() {
    use PostLeaf::{Azure, M365Consumer, Ppac};
    let s = Site::healthy;
    let consumer = |entries: &[String]| consumer_array(entries);
    let good = |w: &str| consumer_entry(Some(w), Some(r#""Operational""#));
    run_table(vec![
        case(
            "ppac HTTP 503",
            s().post_status(Ppac, 503),
            sees(
                &[("mac", OP), ("ppac", UNK)],
                vec![fault_of("ppac", HTTP, &["/api/posts/ppac", "HTTP 503"])],
            ),
        ),
        case(
            "ppac SPA shell as text/html",
            s().post_as(Ppac, Some(HTML), shell()),
            sees(
                &[("ppac", UNK)],
                vec![fault_of("ppac", DRIFT, &["/api/posts/ppac", "text/html"])],
            ),
        ),
        case(
            "ppac says Unknown",
            s().post(Ppac, mac_saying("Unknown")),
            sees(
                &[("ppac", UNK)],
                vec![fault_of("ppac", DRIFT, &["/api/posts/ppac", "Unknown"])],
            ),
        ),
        case(
            "ppac Status null",
            s().post(Ppac, mac_with_status(r#""Status":null"#)),
            sees(
                &[("ppac", UNK)],
                vec![fault_of("ppac", DRIFT, &["/api/posts/ppac", "Status"])],
            ),
        ),
        case(
            "ppac Service degradation",
            s().post(Ppac, mac_saying("Service degradation")),
            sees(&[("ppac", ADV)], vec![]),
        ),
        case(
            "azure an array",
            s().post(
                Azure,
                format!("[{}]", fixture_text("posts-azure-available.json")),
            ),
            sees(
                &[("azure", UNK)],
                vec![fault_of("azure", DRIFT, &["/api/posts/azure", "an array"])],
            ),
        ),
        case(
            "azure empty body",
            s().post(Azure, ""),
            sees(
                &[("azure", UNK)],
                vec![fault_of(
                    "azure",
                    DRIFT,
                    &["/api/posts/azure", "empty body"],
                )],
            ),
        ),
        case(
            "azure HTTP 429",
            s().post_status(Azure, 429),
            sees(
                &[("azure", UNK)],
                vec![fault_of(
                    "azure",
                    ErrorClass::Throttled,
                    &["/api/posts/azure", "429"],
                )],
            ),
        ),
        case(
            "consumer an object",
            s().post(M365Consumer, mac_text()),
            sees(
                &[("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    DRIFT,
                    &["/api/posts/m365Consumer", "JSON array", "an object"],
                )],
            ),
        ),
        case(
            "consumer an empty array",
            s().post(M365Consumer, "[]"),
            sees(
                &[("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    DRIFT,
                    &["/api/posts/m365Consumer", "empty"],
                )],
            ),
        ),
        case(
            "consumer SPA shell labelled application/json",
            s().post(M365Consumer, shell()),
            sees(
                &[("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    DRIFT,
                    &["/api/posts/m365Consumer", "HTML page"],
                )],
            ),
        ),
        case(
            "consumer truncated",
            s().post(M365Consumer, {
                let t = fixture_text("posts-m365Consumer.json");
                t[..t.len() / 2].to_string()
            }),
            sees(
                &[("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    DRIFT,
                    &["/api/posts/m365Consumer", "not valid JSON"],
                )],
            ),
        ),
        case(
            "consumer HTTP 503",
            s().post_status(M365Consumer, 503),
            sees(
                &[("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    HTTP,
                    &["/api/posts/m365Consumer", "503"],
                )],
            ),
        ),
        case(
            "consumer entries mixed: nameless, unknown word, odd-case degradation",
            s().post(M365Consumer, fixture("posts-m365Consumer-mixed.json")),
            sees(
                &[
                    ("mac", OP),
                    ("Outlook.com", OP),
                    ("m365Consumer", UNK),
                    ("OneDriveConsumer", UNK),
                    ("YourPhone", ADV),
                    ("M365Consumer", OP),
                ],
                vec![
                    fault_of(
                        "m365Consumer",
                        DRIFT,
                        &["/api/posts/m365Consumer", "ServiceWorkloadName"],
                    ),
                    fault_of(
                        "OneDriveConsumer",
                        DRIFT,
                        &["/api/posts/m365Consumer", "Partially available"],
                    ),
                ],
            ),
        ),
        case(
            "consumer entry with Status null",
            s().post(
                M365Consumer,
                consumer(&[
                    good("Outlook.com"),
                    consumer_entry(Some("YourPhone"), Some("null")),
                ]),
            ),
            sees(
                &[("Outlook.com", OP), ("YourPhone", UNK)],
                vec![fault_of("YourPhone", DRIFT, &["/api/posts/m365Consumer"])],
            ),
        ),
        case(
            "consumer entry without Status",
            s().post(
                M365Consumer,
                consumer(&[consumer_entry(Some("YourPhone"), None), good("Outlook.com")]),
            ),
            sees(
                &[("Outlook.com", OP), ("YourPhone", UNK)],
                vec![fault_of("YourPhone", DRIFT, &["/api/posts/m365Consumer"])],
            ),
        ),
        case(
            "consumer entry with the site's word Unknown",
            s().post(
                M365Consumer,
                consumer(&[
                    good("Outlook.com"),
                    consumer_entry(Some("YourPhone"), Some(r#""Unknown""#)),
                ]),
            ),
            sees(
                &[("Outlook.com", OP), ("YourPhone", UNK)],
                vec![fault_of(
                    "YourPhone",
                    DRIFT,
                    &["/api/posts/m365Consumer", "Unknown"],
                )],
            ),
        ),
        case(
            "consumer entry with a blank ServiceWorkloadName",
            s().post(M365Consumer, consumer(&[good("Outlook.com"), good("   ")])),
            sees(
                &[("Outlook.com", OP), ("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    DRIFT,
                    &["entry 1", "ServiceWorkloadName"],
                )],
            ),
        ),
        case(
            "consumer array holding a null",
            s().post(M365Consumer, "[null]"),
            sees(
                &[("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    DRIFT,
                    &["/api/posts/m365Consumer", "entry 0", "null"],
                )],
            ),
        ),
        case(
            "consumer array of bare words",
            s().post(M365Consumer, r#"["Operational","Operational"]"#),
            sees(
                &[("m365Consumer", UNK)],
                vec![fault_of(
                    "m365Consumer",
                    DRIFT,
                    &["/api/posts/m365Consumer", "a string"],
                )],
            ),
        ),
        case(
            "every other leaf failing at once",
            s().post_status(Ppac, 503)
                .post(Azure, "")
                .post(M365Consumer, "{}"),
            sees(
                &[
                    ("mac", OP),
                    ("ppac", UNK),
                    ("azure", UNK),
                    ("m365Consumer", UNK),
                ],
                vec![
                    fault_of("ppac", HTTP, &["/api/posts/ppac"]),
                    fault_of("azure", DRIFT, &["/api/posts/azure"]),
                    fault_of("m365Consumer", DRIFT, &["/api/posts/m365Consumer"]),
                ],
            ),
        ),
    ]);
}

#[test]
fn a_failing_leaf_is_named_in_its_unknown_service() {
    let o = answered(&Site::healthy().post_status(PostLeaf::Ppac, 503));
    let ppac = service(&o, "ppac");
    assert_eq!(ppac.name, "Power Platform admin center");
    assert_eq!(ppac.as_of, None, "an unknown service claims no time");
    let message = ppac.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("/api/posts/ppac") && message.contains("503"),
        "{message:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Truncation at every byte
// ---------------------------------------------------------------------------------------------

/// Every strict prefix of `body` up to its last closing character.
fn prefixes(body: &[u8], closing: u8) -> impl Iterator<Item = &[u8]> {
    let end = body
        .iter()
        .rposition(|&b| b == closing)
        .unwrap_or_else(|| panic!("no closing {:?}", closing as char));
    (0..=end).map(move |n| &body[..n])
}

#[test]
fn a_feed_cut_at_any_byte_is_drift_never_green() {
    let body = fixture("feed-mac-available.rss.xml");
    let mut cases = 0;
    for prefix in prefixes(&body, b'>') {
        cases += 1;
        match Site::healthy().feed(prefix).run() {
            Err(e) if e.class() == DRIFT && e.to_string().contains("/api/feed/mac") => {}
            other => panic!(
                "feed cut at {} bytes gave {:?}",
                prefix.len(),
                other.map(|o| o.services.iter().map(|s| s.health).collect::<Vec<_>>())
            ),
        }
    }
    assert!(cases > 900, "only {cases} prefixes");
}

#[test]
fn a_mac_post_cut_at_any_byte_is_drift_never_green() {
    let body = fixture("posts-mac-available.json");
    for prefix in prefixes(&body, b'}') {
        match Site::healthy().mac(prefix).run() {
            Err(e) if e.class() == DRIFT && e.to_string().contains("/api/posts/mac") => {}
            other => panic!(
                "post cut at {} bytes gave {:?}",
                prefix.len(),
                other.map(|o| o.services.iter().map(|s| s.health).collect::<Vec<_>>())
            ),
        }
    }
}

#[test]
fn a_consumer_list_cut_at_any_byte_fails_alone() {
    let body = fixture("posts-m365Consumer.json");
    // Parsing only the consumer leaf keeps this fast; `assemble` is checked on a sample below.
    for prefix in prefixes(&body, b']') {
        let what = "GET /api/posts/m365Consumer";
        let result = gate(what, Expect::Json, Some(JSON), prefix)
            .and_then(|()| parse_consumer(prefix, what));
        match result {
            Err(e) if e.class() == DRIFT && e.to_string().contains(what) => {}
            other => panic!("consumer list cut at {} bytes gave {other:?}", prefix.len()),
        }
    }
    let site = Site::healthy().post(PostLeaf::M365Consumer, &body[..body.len() - 1]);
    let want = sees(
        &[("mac", OP), ("m365Consumer", UNK)],
        vec![fault_of(
            "m365Consumer",
            DRIFT,
            &["/api/posts/m365Consumer"],
        )],
    );
    if let Err(problem) = check(&case("consumer list without its last byte", site, want)) {
        panic!("{problem}");
    }
}

// ---------------------------------------------------------------------------------------------
// Freshness and timestamps
// ---------------------------------------------------------------------------------------------

#[test]
fn the_sentinel_is_no_time_and_no_error() {
    assert_eq!(parse_time("0001-01-01T00:00:00+00:00"), None);
    let post = edit(
        &mac_text(),
        "2026-11-25T11:52:07+00:00",
        "0001-01-01T00:00:00+00:00",
    );
    let feed = edit(
        &feed_text(),
        "<pubDate>Wed, 25 Nov 2026 11:50:00 Z</pubDate>",
        "",
    );

    let o = answered(&Site::healthy().mac(post.clone()).feed(feed));
    assert_eq!(o.source_time, None);
    assert!(o.faults.is_empty(), "{:?}", o.faults);
    let mac = service(&o, "mac");
    assert_eq!((mac.health, mac.as_of), (OP, Some(now())));

    // With the feed's pubDate present, it is the source time the post could not give.
    let o = answered(&Site::healthy().mac(post));
    assert_eq!(o.source_time, Some(at("2026-11-25T11:50:00Z")));

    // Azure's post always carries the sentinel.
    let o = answered(&Site::healthy());
    let azure = service(&o, "azure");
    assert_eq!((azure.health, azure.as_of), (OP, Some(now())));
}

#[test]
fn an_admin_center_post_older_than_max_source_age_is_drift() {
    let three_hours_old = edit(
        &mac_text(),
        "2026-11-25T11:52:07+00:00",
        "2026-11-25T09:00:00+00:00",
    );
    let hour = Duration::from_secs(3600);
    let error = failed(&Site::healthy().mac(three_hours_old.clone()).max_age(hour));
    assert_eq!(error.class(), DRIFT);
    let message = error.to_string();
    for word in [
        "/api/posts/mac",
        "3h",
        "max_source_age 1h",
        "2026-11-25T09:00:00",
    ] {
        assert!(message.contains(word), "{message:?} lacks {word:?}");
    }
    // Within the limit, or without one, the same post is green.
    assert_eq!(
        service(
            &answered(&Site::healthy().mac(three_hours_old.clone())),
            "mac"
        )
        .health,
        OP
    );
    let o = answered(
        &Site::healthy()
            .mac(three_hours_old.clone())
            .max_age(4 * hour),
    );
    assert_eq!(service(&o, "mac").health, OP);
    // Bad news is never hidden because it is old.
    let old_bad = edit(
        &three_hours_old,
        r#""Status":"Available""#,
        r#""Status":"Service degradation""#,
    );
    let o = answered(&Site::healthy().mac(old_bad).max_age(hour));
    assert_eq!(service(&o, "mac").health, ADV);
    // The healthy fixture's InternalDateTime is 7m 53s old.
    let o = answered(&Site::healthy().max_age(Duration::from_secs(600)));
    assert_eq!(service(&o, "mac").health, OP);
    let error = failed(&Site::healthy().max_age(Duration::from_secs(300)));
    assert_eq!(error.class(), DRIFT);
}

#[test]
fn timestamps_with_seven_fractional_digits_parse_exactly() {
    let t = parse_time("2026-11-25T11:58:30.1234567+00:00");
    assert_eq!(t.map(|t| t.timestamp_subsec_nanos()), Some(123_456_700));
    assert_eq!(t, Some(at("2026-11-25T11:58:30.1234567Z")));
    assert_eq!(
        parse_time("2026-11-24T22:03:17.412+00:00"),
        Some(at("2026-11-24T22:03:17.412Z"))
    );
    assert_eq!(
        parse_time(" 2026-11-25T13:52:07+02:00 "),
        Some(at("2026-11-25T11:52:07Z"))
    );
    assert_eq!(
        parse_time("2026-11-25T11:52:07"),
        None,
        "no offset: not guessed"
    );
    assert_eq!(parse_time(""), None);
    assert_eq!(parse_time("yesterday"), None);
    assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
}

#[test]
fn rss_dates_with_a_literal_z_zone_parse() {
    assert_eq!(
        parse_rss_date("Sat, 01 Aug 2026 00:05:00 Z"),
        Some(at("2026-08-01T00:05:00Z"))
    );
    assert_eq!(
        parse_rss_date("Wed, 25 Nov 2026 11:50:00 Z"),
        Some(at("2026-11-25T11:50:00Z"))
    );
    assert_eq!(
        parse_rss_date(" Wed, 25 Nov 2026 11:50:00 GMT "),
        Some(at("2026-11-25T11:50:00Z"))
    );
    assert_eq!(
        parse_rss_date("Wed, 25 Nov 2026 13:50:00 +0200"),
        Some(at("2026-11-25T11:50:00Z"))
    );
    assert_eq!(parse_rss_date("2026-11-25T11:50:00Z"), None);
    assert_eq!(parse_rss_date(""), None);
    // An unreadable pubDate costs the time, not the feed.
    let feed = edit(&feed_text(), "Wed, 25 Nov 2026 11:50:00 Z", "sometime");
    let item = parse_feed(feed.as_bytes(), FEED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((item.status.as_str(), item.pub_date), ("Available", None));
}

// ---------------------------------------------------------------------------------------------
// Status words
// ---------------------------------------------------------------------------------------------

#[test]
fn status_words_map_in_both_forms_and_anything_else_is_drift() {
    let known: &[(&str, Health)] = &[
        ("Available", OP),
        ("Operational", OP),
        ("Service restored", OP),
        ("ServiceRestored", OP),
        ("serviceOperational", OP),
        ("  AVAILABLE\n", OP),
        ("False positive", OP),
        ("Post-incident report published", OP),
        ("Service degradation", ADV),
        ("ServiceDegradation", ADV),
        ("  service   DEGRADATION ", ADV),
        ("service_degradation", ADV),
        ("Service\u{a0}degradation", ADV),
        ("Investigating", ADV),
        ("Restoring service", ADV),
        ("Extended recovery", ADV),
        ("Investigation suspended", ADV),
        ("Service interruption", INC),
        ("ServiceInterruption", INC),
    ];
    let mut problems = Vec::new();
    for (word, want) in known {
        match site_health(word, "GET /w") {
            Ok(h) if h == *want => {}
            other => problems.push(format!("{word:?} gave {other:?}, want {want}")),
        }
    }
    let drift: &[(&str, &str)] = &[
        ("", "empty"),
        ("   ", "empty"),
        ("Unknown", "\"Unknown\""),
        (" unknown ", "\"Unknown\""),
        ("Not available", "Not available"),
        ("Unavailable", "Unavailable"),
        ("Available.", "Available."),
        ("Partially available", "Partially available"),
        ("Degraded", "Degraded"),
        ("Down", "Down"),
        ("OK", "OK"),
        ("Green", "Green"),
        ("true", "true"),
        ("Available\u{200b}", "Available"),
        ("Ａｖａｉｌａｂｌｅ", "Ａｖａｉｌａｂｌｅ"),
        ("Everything is up and running.", "Everything is up"),
    ];
    for (word, says) in drift {
        match site_health(word, "GET /w") {
            Err(e)
                if e.class() == DRIFT
                    && e.to_string().starts_with("GET /w: ")
                    && e.to_string().contains(says) => {}
            other => problems.push(format!(
                "{word:?} gave {other:?}, want drift saying {says:?}"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Digest
// ---------------------------------------------------------------------------------------------

#[test]
fn the_digest_tells_a_new_answer_from_the_same_one() {
    let digest_of = |site: &Site| answered(site).digest;
    let a = digest_of(&Site::healthy());
    assert_eq!(
        a,
        digest_of(&Site::healthy().at(at("2026-11-25T12:01:00Z"))),
        "the clock is not payload"
    );
    let changed = edit(
        &fixture_text("posts-m365Consumer.json"),
        "Phone Link",
        "Phone link",
    );
    assert_ne!(
        a,
        digest_of(&Site::healthy().post(PostLeaf::M365Consumer, changed))
    );
    assert_ne!(
        a,
        digest_of(&Site::healthy().post_status(PostLeaf::Azure, 503))
    );
}

// ---------------------------------------------------------------------------------------------
// Real recorded payloads (../shared), when present
// ---------------------------------------------------------------------------------------------

fn shared_site(feed: Vec<u8>, mac: Vec<u8>, azure: Vec<u8>, consumer: Vec<u8>) -> Site {
    Site::healthy()
        .feed(feed)
        .mac(mac)
        .post(PostLeaf::Azure, azure)
        .post(PostLeaf::M365Consumer, consumer)
        .answer(PostLeaf::Ppac, status("GET /api/posts/ppac", 404))
        .at(at("2026-08-01T00:40:00Z"))
}

#[test]
fn real_recorded_payloads_read_as_operational() {
    if !shared_present("real_recorded_payloads_read_as_operational") {
        return;
    }
    let feed = shared("m365-api-feed-mac.rss.xml");
    let mac = shared("m365-api-posts-mac.json");
    let azure = shared("m365-api-posts-azure.json");
    let consumer = shared("m365-api-posts-m365Consumer.json");
    let site = shared_site(feed, mac, azure, consumer);
    let o = answered(&site);
    assert_eq!(invariants(&site, &o), Vec::<String>::new());
    assert_eq!(service(&o, "mac").health, OP);
    assert_eq!(service(&o, "mac").status_text, "Available");
    assert_eq!(service(&o, "azure").health, OP);
    assert_eq!(o.source_time, Some(at("2026-08-01T00:32:32Z")));
    let workloads: Vec<&ServiceObservation> = o
        .services
        .iter()
        .filter(|s| !["mac", "ppac", "azure"].contains(&s.id.as_str()))
        .collect();
    assert_eq!(workloads.len(), 10, "{workloads:#?}");
    assert!(
        workloads
            .iter()
            .all(|s| s.health == OP && s.status_text == "Operational")
    );
    // The only fault is the ppac answer we made up (no ppac recording exists).
    assert_eq!(o.faults.len(), 1, "{:?}", o.faults);
    assert_eq!(o.faults[0].services, vec!["ppac"]);
}

#[test]
fn real_recorded_feed_and_quoted_post_parse() {
    if !shared_present("real_recorded_feed_and_quoted_post_parse") {
        return;
    }
    let feed = shared("m365-api-feed-mac.rss.xml");
    let quoted = shared("m365-api-posts-mac-2026-09-18.quoted.json");
    let item = parse_feed(&feed, FEED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(item.status, "Available");
    assert_eq!(
        item.guid.as_deref(),
        Some("f2886e27-5509-43ef-8059-30ac1f642c8a")
    );
    assert_eq!(item.pub_date, Some(at("2026-08-01T00:05:00Z")));
    assert!(
        item.description
            .as_deref()
            .unwrap_or_default()
            .starts_with("This site is updated")
    );

    let post = parse_post(&quoted, "GET /api/posts/mac").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(post.status.as_deref(), Some("Available"));
    assert_eq!(post.internal_time(), Some(at("2026-09-18T21:22:55Z")));
    assert_eq!(post.updated_time(), Some(at("2026-09-18T21:24:00.490309Z")));
}

#[test]
fn real_recorded_payloads_of_other_shapes_are_drift() {
    if !shared_present("real_recorded_payloads_of_other_shapes_are_drift") {
        return;
    }
    let portal = shared("m365-legacy-portal-servicestatus-index.json");
    let azure_feed = shared("azure-status-feed-empty.rss.xml");
    let mac = shared("m365-api-posts-mac.json");
    // The retired portal said "We're all good!"; as a mac post it has no Status.
    let error = failed(&Site::healthy().mac(portal));
    assert_eq!(error.class(), DRIFT);
    assert!(error.to_string().contains("no Status"), "{error}");
    // Azure's healthy feed is a channel with no items: as the mac feed, that is not a statement.
    let error = failed(&Site::healthy().feed(azure_feed));
    assert_eq!(error.class(), DRIFT);
    assert!(error.to_string().contains("no items"), "{error}");
    // The mac post object where the consumer array was expected.
    let o = answered(&Site::healthy().post(PostLeaf::M365Consumer, mac));
    assert_eq!(service(&o, "m365Consumer").health, UNK);
}

// ---------------------------------------------------------------------------------------------
// Through real HTTP on loopback: the body-size cap lives in `Fetcher::get`, not in a pure function
// ---------------------------------------------------------------------------------------------

/// What the loopback server answers, by request path.
type Routes = Vec<(&'static str, Vec<u8>)>;

/// A raw HTTP/1.1 response that closes the connection.
fn http_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// The same, chunked, so no length is announced and the cap must stop the stream itself.
fn chunked_response(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\
         connection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(1000) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Serves fixed responses by path on a loopback port (404 for anything else) from a background
/// thread that lives as long as the test process; returns the base URL.
fn serve(routes: Routes) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("cannot bind a loopback port for the test");
    let addr = listener
        .local_addr()
        .expect("the loopback listener has no address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&head);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let response = routes
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| http_response("404 Not Found", "text/plain", b"no such path"));
            // The client may hang up early (that is what a cap does); that is not an error here.
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{addr}")
}

async fn probe_loopback(routes: Routes) -> Result<Observation, ProbeError> {
    let base_url = serve(routes);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("cannot build an HTTP client");
    let limits = crate::http::Limits {
        timeout: Duration::from_secs(10),
        max_body: 4096,
    };
    let config = StatusSiteConfig {
        base_url,
        posts: vec![PostLeaf::Mac],
        max_source_age: None,
    };
    let site = StatusSite::new(CHANNEL, config, crate::http::Fetcher::new(client, limits))
        .unwrap_or_else(|e| panic!("the loopback channel is refused: {e}"));
    site.probe().await
}

fn oversized_feed() -> Vec<u8> {
    let padding = "statusmon fixture padding. ".repeat(1000);
    edit(&feed_text(), "as well.", &format!("as well. {padding}")).into_bytes()
}

#[tokio::test]
async fn through_http_a_healthy_site_is_green_and_hostile_answers_are_not() {
    let rss = "application/rss+xml; charset=utf-8";
    let json = "application/json; charset=utf-8";
    let feed = || http_response("200 OK", rss, feed_text().as_bytes());
    let mac = || http_response("200 OK", json, mac_text().as_bytes());

    let o = probe_loopback(vec![("/api/feed/mac", feed()), ("/api/posts/mac", mac())])
        .await
        .unwrap_or_else(|e| panic!("the healthy site failed through HTTP: {e}"));
    assert_eq!(service(&o, "mac").health, OP);
    assert_eq!(o.services.len(), 1);

    let cases: Vec<(&str, Routes, ErrorClass, &[&str])> = vec![
        (
            "oversized feed with a Content-Length",
            vec![
                (
                    "/api/feed/mac",
                    http_response("200 OK", rss, &oversized_feed()),
                ),
                ("/api/posts/mac", mac()),
            ],
            DRIFT,
            &["GET /api/feed/mac", "4096-byte cap"],
        ),
        (
            "oversized feed, chunked",
            vec![
                ("/api/feed/mac", chunked_response(rss, &oversized_feed())),
                ("/api/posts/mac", mac()),
            ],
            DRIFT,
            &["GET /api/feed/mac", "4096-byte cap"],
        ),
        (
            "SPA shell in place of the post",
            vec![
                ("/api/feed/mac", feed()),
                (
                    "/api/posts/mac",
                    http_response("200 OK", "text/html", &shell()),
                ),
            ],
            DRIFT,
            &["GET /api/posts/mac", "text/html"],
        ),
        (
            "post HTTP 503",
            vec![
                ("/api/feed/mac", feed()),
                (
                    "/api/posts/mac",
                    http_response("503 Service Unavailable", json, b"{}"),
                ),
            ],
            HTTP,
            &["GET /api/posts/mac", "HTTP 503"],
        ),
        (
            "feed missing (404)",
            vec![("/api/posts/mac", mac())],
            HTTP,
            &["GET /api/feed/mac", "HTTP 404"],
        ),
    ];
    let mut problems = Vec::new();
    for (name, routes, class, says) in cases {
        match probe_loopback(routes).await {
            Err(e) if e.class() == class && missing_words(&e.to_string(), says).is_empty() => {}
            Err(e) => problems.push(format!(
                "{name}: {}: {e} (want {class} saying {says:?})",
                e.class()
            )),
            Ok(o) => problems.push(format!("{name}: answered {:?}", service(&o, "mac").health)),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Regressions: each of these was once wrong (false greens, lost faults, muddled messages).
// ---------------------------------------------------------------------------------------------

#[test]
fn a_foreign_namespace_status_element_must_not_decide() {
    // The site's `<status>` has no namespace. An element of another namespace that happens to be
    // called `status` (here in the Atom namespace the feed already declares) is not it; the real
    // `<status>` says an unknown word, so the admin center must not be green.
    let feed = feed_with_status(
        "<a10:status>Available</a10:status>\n      <status>Pending review</status>",
    );
    let site = Site::healthy().feed(feed);
    if let Err(problem) = check(&case(
        "a10:status Available before status Pending review",
        site,
        fails(DRIFT, &["/api/feed/mac", "Pending review"]),
    )) {
        panic!("{problem}");
    }
}

#[test]
fn two_status_elements_in_one_item_must_not_hide_the_worse() {
    // One item with two `<status>` elements is not the shape the site serves; the first one
    // alone must not make the admin center green while the second says it is interrupted.
    let feed = feed_with_status("<status>Available</status><status>Service interruption</status>");
    let result = Site::healthy().feed(feed).run();
    let mac = result.as_ref().ok().map(|o| service(o, "mac").health);
    assert_ne!(
        mac,
        Some(OP),
        "two conflicting <status> elements read as green: {result:?}"
    );
}

#[test]
fn a_duplicate_consumer_workload_must_not_hide_the_worse_entry() {
    // The second entry for the same workload is dropped silently, so its degradation is lost.
    let body = consumer_array(&[
        consumer_entry(Some("Outlook.com"), Some(r#""Operational""#)),
        consumer_entry(Some("Outlook.com"), Some(r#""Service degradation""#)),
    ]);
    let o = answered(&Site::healthy().post(PostLeaf::M365Consumer, body));
    let outlook = service(&o, "Outlook.com");
    assert_ne!(
        outlook.health, OP,
        "Outlook.com is green although one of its two entries says Service degradation"
    );
}

#[test]
fn a_consumer_entry_of_the_wrong_type_fails_only_its_workload() {
    // `consumer` promises "a broken entry is a fault for that workload", but a mistyped field
    // fails the whole list in `parse_consumer`, and every workload turns unknown.
    let body = consumer_array(&[
        consumer_entry(Some("Outlook.com"), Some(r#""Operational""#)),
        consumer_entry(Some("YourPhone"), Some("42")),
        consumer_entry(Some("OneDriveConsumer"), Some(r#""Operational""#)),
    ]);
    let site = Site::healthy().post(PostLeaf::M365Consumer, body);
    let want = sees(
        &[
            ("Outlook.com", OP),
            ("YourPhone", UNK),
            ("OneDriveConsumer", OP),
        ],
        vec![fault_of("YourPhone", DRIFT, &["/api/posts/m365Consumer"])],
    );
    if let Err(problem) = check(&case("consumer entry with Status 42", site, want)) {
        panic!("{problem}");
    }
}

#[test]
fn both_views_failing_names_each_endpoint_once() {
    let error = failed(&Site::healthy().feed("").mac("[]"));
    let message = error.to_string();
    assert_eq!(error.class(), DRIFT);
    assert_eq!(
        message.matches("GET /api/feed/mac").count(),
        1,
        "the feed endpoint is named more than once: {message:?}"
    );
    assert!(message.contains("GET /api/posts/mac"), "{message:?}");
}

#[test]
fn both_views_failing_says_both_whatever_the_feeds_class() {
    // `combine` promises "keep the feed's class, say both", but an HTTP (or timeout) feed error
    // is returned alone and the post's failure disappears from the message.
    let error = failed(&Site::healthy().feed_status(503).mac(""));
    assert_eq!(error.class(), HTTP);
    let message = error.to_string();
    assert!(
        message.contains("/api/feed/mac") && message.contains("503"),
        "{message:?}"
    );
    assert!(
        message.contains("/api/posts/mac"),
        "the post's failure is not said: {message:?}"
    );
}

#[test]
fn max_source_age_without_any_source_time_is_not_green() {
    // With max_source_age set, a post whose InternalDateTime is unset (the sentinel) or unreadable,
    // and a feed without pubDate, leave nothing to measure: a frozen endpoint repeating
    // "Available" would stay green for ever. It should be drift ("cannot tell how fresh").
    let feed = edit(
        &feed_text(),
        "<pubDate>Wed, 25 Nov 2026 11:50:00 Z</pubDate>",
        "",
    );
    for stamp in ["0001-01-01T00:00:00+00:00", "25/11/2026 11:52"] {
        let post = edit(&mac_text(), "2026-11-25T11:52:07+00:00", stamp);
        let site = Site::healthy()
            .feed(feed.clone())
            .mac(post)
            .max_age(Duration::from_secs(3600));
        match site.run() {
            Err(e) => assert_eq!(e.class(), DRIFT, "{e}"),
            Ok(o) => panic!(
                "InternalDateTime {stamp:?}, no pubDate, max_source_age 1h: \
                 mac is {} with no fault ({:?})",
                service(&o, "mac").health,
                o.faults
            ),
        }
    }
}

#[test]
fn a_stale_feed_date_is_not_blamed_on_internal_date_time() {
    // When the post has no InternalDateTime the age comes from the feed's pubDate, but the
    // message says "InternalDateTime" and names only /api/posts/mac.
    let post = edit(
        &mac_text(),
        "2026-11-25T11:52:07+00:00",
        "0001-01-01T00:00:00+00:00",
    );
    let feed = edit(
        &feed_text(),
        "Wed, 25 Nov 2026 11:50:00 Z",
        "Wed, 25 Nov 2026 06:00:00 Z",
    );
    let error = failed(
        &Site::healthy()
            .mac(post)
            .feed(feed)
            .max_age(Duration::from_secs(3600)),
    );
    assert_eq!(error.class(), DRIFT);
    let message = error.to_string();
    assert!(
        message.contains("/api/feed/mac")
            && message.contains("pubDate")
            && !message.contains("InternalDateTime"),
        "the age came from the feed's pubDate, but the message says {message:?}"
    );
}
