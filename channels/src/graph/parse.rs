//! Reading Graph's service-health answers: pure functions over bytes, no I/O, so every hostile
//! answer is testable and the parsers can be benchmarked.
//!
//! Graph is read leniently where Microsoft is inconsistent and strictly where a mistake could
//! paint a service green:
//!
//! - unknown fields are ignored (Graph adds fields such as `highImpact` without notice);
//! - enum words are matched case-insensitively (`ServiceOperational` in Microsoft's own examples,
//!   `serviceOperational` from the live API), and a word we do not know is kept verbatim as
//!   [`Status::Unknown`] and makes its service `unknown` with a drift fault, never a guess;
//! - the envelope is strict: a `value` array must be there, `@odata.nextLink` must be a string;
//! - one broken entry breaks only itself (a fault naming it), never the page.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ProbeError;
use crate::model::{
    Fault, Health, IncidentClassification, IncidentObservation, Observation, ServiceObservation,
    SharedText,
};
use crate::text::{html_to_text, shorten};

/// How long a resolved issue is still reported (marked resolved), so its end is seen.
pub const RECENTLY_RESOLVED: chrono::Duration = chrono::Duration::hours(24);

/// `serviceHealthStatus` as Graph sends it (CSDL v1.0, members 0–17).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    /// `serviceOperational`
    ServiceOperational,
    /// `investigating`
    Investigating,
    /// `restoringService`
    RestoringService,
    /// `verifyingService`
    VerifyingService,
    /// `serviceRestored`
    ServiceRestored,
    /// `postIncidentReviewPublished`
    PostIncidentReviewPublished,
    /// `serviceDegradation`
    ServiceDegradation,
    /// `serviceInterruption`
    ServiceInterruption,
    /// `extendedRecovery`
    ExtendedRecovery,
    /// `falsePositive`
    FalsePositive,
    /// `investigationSuspended`
    InvestigationSuspended,
    /// `resolved`
    Resolved,
    /// `mitigatedExternal`
    MitigatedExternal,
    /// `mitigated`
    Mitigated,
    /// `resolvedExternal`
    ResolvedExternal,
    /// `confirmed`
    Confirmed,
    /// `reported`
    Reported,
    /// Any other word, verbatim (including Microsoft's `unknownFutureValue` placeholder).
    Unknown(String),
}

impl Status {
    /// Every known member with its CSDL spelling.
    pub const KNOWN: [(Status, &'static str); 17] = [
        (Status::ServiceOperational, "serviceOperational"),
        (Status::Investigating, "investigating"),
        (Status::RestoringService, "restoringService"),
        (Status::VerifyingService, "verifyingService"),
        (Status::ServiceRestored, "serviceRestored"),
        (
            Status::PostIncidentReviewPublished,
            "postIncidentReviewPublished",
        ),
        (Status::ServiceDegradation, "serviceDegradation"),
        (Status::ServiceInterruption, "serviceInterruption"),
        (Status::ExtendedRecovery, "extendedRecovery"),
        (Status::FalsePositive, "falsePositive"),
        (Status::InvestigationSuspended, "investigationSuspended"),
        (Status::Resolved, "resolved"),
        (Status::MitigatedExternal, "mitigatedExternal"),
        (Status::Mitigated, "mitigated"),
        (Status::ResolvedExternal, "resolvedExternal"),
        (Status::Confirmed, "confirmed"),
        (Status::Reported, "reported"),
    ];

    /// Reads a word, ignoring ASCII case and surrounding whitespace.
    pub fn parse(word: &str) -> Status {
        let word = word.trim();
        Status::KNOWN
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(word))
            .map(|(status, _)| status.clone())
            .unwrap_or_else(|| Status::Unknown(word.to_string()))
    }

    /// Whether the word says the issue is over (used only when `isResolved` is missing).
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            Status::ServiceRestored
                | Status::PostIncidentReviewPublished
                | Status::FalsePositive
                | Status::Resolved
                | Status::ResolvedExternal
        )
    }
}

/// The one table from Graph's `serviceHealthStatus` to our [`Health`], for a service's overview.
/// `None` means we do not know the word: the service is `unknown` with a drift fault.
///
/// | serviceHealthStatus | Health |
/// |---|---|
/// | serviceOperational | operational |
/// | serviceRestored, postIncidentReviewPublished, falsePositive, resolved, resolvedExternal | operational (the issue is over; Microsoft says so explicitly) |
/// | investigating, serviceDegradation, restoringService, verifyingService, extendedRecovery, investigationSuspended, mitigated, mitigatedExternal, confirmed, reported | advisory, **or incident** when the service has an open issue classified `incident` (see [`assemble`]) |
/// | serviceInterruption | incident |
/// | unknownFutureValue, anything else, missing | unknown + drift fault |
///
/// Why the advisory group is not simply advisory: Graph's overview word says what Microsoft is
/// doing (investigating, restoring), not how bad it is; the issue's `classification` says how bad
/// (`incident` = "the service or a major function is unavailable").
pub fn overview_health(status: &Status) -> Option<Health> {
    Some(match status {
        Status::ServiceOperational
        | Status::ServiceRestored
        | Status::PostIncidentReviewPublished
        | Status::FalsePositive
        | Status::Resolved
        | Status::ResolvedExternal => Health::Operational,
        Status::Investigating
        | Status::ServiceDegradation
        | Status::RestoringService
        | Status::VerifyingService
        | Status::ExtendedRecovery
        | Status::InvestigationSuspended
        | Status::Mitigated
        | Status::MitigatedExternal
        | Status::Confirmed
        | Status::Reported => Health::Advisory,
        Status::ServiceInterruption => Health::Incident,
        Status::Unknown(_) => return None,
    })
}

/// One page of a Graph collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The entries of `value`.
    pub items: Vec<T>,
    /// `@odata.nextLink`, the whole URL of the next page, when there is one.
    pub next_link: Option<String>,
}

/// One `serviceHealth` entry of `healthOverviews`, as read: every field optional, so a broken
/// entry is reported as such instead of breaking the page.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceHealthEntry {
    /// `id`, e.g. `Exchange`.
    pub id: Option<String>,
    /// `service`, the display name, e.g. `Exchange Online`.
    pub name: Option<String>,
    /// `status`; `None` when missing.
    pub status: Option<Status>,
    /// The status word as sent (for display); empty when missing.
    pub status_text: String,
}

/// One `serviceHealthIssue`, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueEntry {
    /// `id`, e.g. `EX226574`.
    pub id: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `service`, a display name (`Exchange Online`), not the overview's id.
    pub service: Option<String>,
    /// `status`.
    pub status: Option<Status>,
    /// The status word as sent.
    pub status_text: String,
    /// `classification`.
    pub classification: IncidentClassification,
    /// `isResolved`, when present.
    pub is_resolved: Option<bool>,
    /// `startDateTime`.
    pub started_at: Option<DateTime<Utc>>,
    /// `endDateTime`.
    pub ended_at: Option<DateTime<Utc>>,
    /// `lastModifiedDateTime`.
    pub last_modified: Option<DateTime<Utc>>,
    /// The newest post's text (HTML stripped), or `impactDescription` when there is no post.
    pub latest_post: Option<String>,
}

impl IssueEntry {
    /// Whether the issue is over: `isResolved`, or when it is missing, the status word.
    pub fn resolved(&self) -> bool {
        self.is_resolved
            .unwrap_or_else(|| self.status.as_ref().is_some_and(Status::is_closed))
    }
}

/// Reads one page of `GET /admin/serviceAnnouncement/healthOverviews`.
pub fn parse_overviews(body: &[u8], what: &str) -> Result<Page<ServiceHealthEntry>, ProbeError> {
    let (values, next_link) = envelope(body, what)?;
    let items = values
        .iter()
        .map(|value| {
            let object = value.as_object();
            let (status, status_text) = status_of(object, "status");
            ServiceHealthEntry {
                id: object.and_then(|o| text(o, "id")),
                name: object.and_then(|o| text(o, "service")),
                status,
                status_text,
            }
        })
        .collect();
    Ok(Page { items, next_link })
}

/// Reads one page of `GET /admin/serviceAnnouncement/issues`.
pub fn parse_issues_page(body: &[u8], what: &str) -> Result<Page<IssueEntry>, ProbeError> {
    let (values, next_link) = envelope(body, what)?;
    let items = values
        .iter()
        .map(|value| {
            let object = value.as_object();
            let (status, status_text) = status_of(object, "status");
            let field = |name: &str| object.and_then(|o| text(o, name));
            let time = |name: &str| object.and_then(|o| timestamp(o, name));
            IssueEntry {
                id: field("id"),
                title: field("title"),
                service: field("service"),
                status,
                status_text,
                classification: match field("classification") {
                    Some(c) if c.eq_ignore_ascii_case("incident") => {
                        IncidentClassification::Incident
                    }
                    Some(c) if c.eq_ignore_ascii_case("advisory") => {
                        IncidentClassification::Advisory
                    }
                    _ => IncidentClassification::Unknown,
                },
                is_resolved: object
                    .and_then(|o| o.get("isResolved"))
                    .and_then(Value::as_bool),
                started_at: time("startDateTime"),
                ended_at: time("endDateTime"),
                last_modified: time("lastModifiedDateTime"),
                latest_post: object
                    .and_then(latest_post)
                    .or_else(|| field("impactDescription").map(|d| html_to_text(&d)))
                    .filter(|t| !t.is_empty()),
            }
        })
        .collect();
    Ok(Page { items, next_link })
}

/// The OData collection envelope: a JSON object with a `value` array and an optional string
/// `@odata.nextLink`. Anything else is drift, with what it was instead.
fn envelope(body: &[u8], what: &str) -> Result<(Vec<Value>, Option<String>), ProbeError> {
    let head = String::from_utf8_lossy(&body[..body.len().min(64)]);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if head.is_empty() {
        return Err(ProbeError::drift(what, "empty body"));
    }
    if head.starts_with('<') {
        return Err(ProbeError::drift(
            what,
            "the body is markup (an HTML page, e.g. a sign-in or error page), not JSON",
        ));
    }
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ProbeError::drift(what, format!("not valid JSON ({e})")))?;
    let Value::Object(mut object) = value else {
        return Err(ProbeError::drift(
            what,
            format!(
                "expected a JSON object with a \"value\" array, got {}",
                kind(&value)
            ),
        ));
    };
    let next_link = match object.remove("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(link)) => Some(link),
        Some(other) => {
            return Err(ProbeError::drift(
                what,
                format!("@odata.nextLink is {}, not a URL string", kind(&other)),
            ));
        }
    };
    match object.remove("value") {
        Some(Value::Array(values)) => Ok((values, next_link)),
        Some(other) => Err(ProbeError::drift(
            what,
            format!("\"value\" is {}, not an array", kind(&other)),
        )),
        None => {
            let error = object
                .get("error")
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .map(|code| format!(" (it carries an error: {})", shorten(code, 80)))
                .unwrap_or_default();
            let mut keys: Vec<&str> = object.keys().map(String::as_str).take(8).collect();
            keys.sort_unstable();
            Err(ProbeError::drift(
                what,
                format!("no \"value\" array in the answer; keys {keys:?}{error}"),
            ))
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A non-empty string field, trimmed.
fn text(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn timestamp(object: &Map<String, Value>, name: &str) -> Option<DateTime<Utc>> {
    object
        .get(name)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The status word of an entry: `None` when missing; a non-string value is an unknown word.
fn status_of(object: Option<&Map<String, Value>>, name: &str) -> (Option<Status>, String) {
    match object.and_then(|o| o.get(name)) {
        None | Some(Value::Null) => (None, String::new()),
        Some(Value::String(word)) => (Some(Status::parse(word)), shorten(word.trim(), 100)),
        Some(other) => {
            let shown = shorten(&other.to_string(), 100);
            (Some(Status::Unknown(shown.clone())), shown)
        }
    }
}

/// The newest post's description as text (by `createdDateTime`; the last one when undated).
fn latest_post(object: &Map<String, Value>) -> Option<String> {
    let posts = object.get("posts")?.as_array()?;
    let newest = posts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let p = p.as_object()?;
            let content = p.get("description")?.get("content")?.as_str()?;
            Some((timestamp(p, "createdDateTime"), i, content))
        })
        .max_by_key(|(at, i, _)| (*at, *i))?;
    Some(html_to_text(newest.2))
}

/// What one probe collected, parsed page by page (the raw pages only feed the digest).
#[derive(Debug, Clone)]
pub struct Collected {
    /// Every `healthOverviews` entry of every page.
    pub overviews: Vec<ServiceHealthEntry>,
    /// Every issue of every page, or why the issues could not be read.
    pub issues: Result<Vec<IssueEntry>, ProbeError>,
    /// SHA-256 over the raw pages (see [`digest`]).
    pub digest: String,
}

/// SHA-256 (hex) over every raw page in order, each prefixed by its name, so the same answer
/// gives the same digest and any change gives another.
pub fn digest<'a>(pages: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut hasher = Sha256::new();
    for (name, body) in pages {
        hasher.update(name.as_bytes());
        hasher.update((body.len() as u64).to_be_bytes());
        hasher.update(body);
    }
    format!("{:x}", hasher.finalize())
}

/// Turns one probe's parsed answers into an observation. Pure: all of the channel's judgement
/// lives here.
///
/// - Health comes from each overview's `status` through [`overview_health`]. An advisory-group
///   word becomes `incident` when the service has an unresolved issue classified `incident`.
/// - An entry without `id` or with a status word we do not know is a drift [`Fault`]; its service
///   (when it can be named) is `unknown`. The other services stand.
/// - When the issues could not be read, services whose overview word is in the advisory group
///   are `unknown` (advisory or incident cannot be told without the issues) with one fault
///   naming them; `serviceOperational` and `serviceInterruption` need no issue and stand.
/// - Incidents: every unresolved issue, plus issues resolved within [`RECENTLY_RESOLVED`]
///   (marked resolved). An issue's `service` (a display name) is mapped to the overview's id.
/// - `source_time` is the newest `lastModifiedDateTime` among the issues (overviews carry no
///   time). A service's `as_of` is `None`: Graph does not say when an overview was last true.
///
/// Fails as a whole (drift) only when `healthOverviews` listed no service at all: a tenant always
/// has subscribed services, so an empty list is never read as "all is well".
pub fn assemble(
    channel: &str,
    collected: Collected,
    now: DateTime<Utc>,
) -> Result<Observation, ProbeError> {
    const OVERVIEWS: &str = "GET /v1.0/admin/serviceAnnouncement/healthOverviews";
    const ISSUES: &str = "GET /v1.0/admin/serviceAnnouncement/issues";
    if collected.overviews.is_empty() {
        return Err(ProbeError::drift(
            OVERVIEWS,
            "the list of services is empty (a tenant always has subscribed services); nothing is \
             called operational on an empty answer",
        ));
    }
    let mut observation = Observation {
        channel: channel.to_string(),
        observed_at: now,
        source_time: None,
        services: Vec::new(),
        incidents: Vec::new(),
        faults: Vec::new(),
        digest: collected.digest,
    };

    // Display name (and id) → overview id, to place issues.
    let mut by_name: HashMap<String, String> = HashMap::new();
    for entry in &collected.overviews {
        if let Some(id) = &entry.id {
            by_name.insert(id.to_lowercase(), id.clone());
            if let Some(name) = &entry.name {
                by_name.insert(name.to_lowercase(), id.clone());
            }
        }
    }
    let service_of = |issue: &IssueEntry| {
        issue
            .service
            .as_ref()
            .and_then(|s| by_name.get(&s.to_lowercase()).cloned())
    };

    let (issues, issues_error) = match collected.issues {
        Ok(issues) => (issues, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    // Open issues by service id: (id, title, classification).
    let mut open: HashMap<String, Vec<&IssueEntry>> = HashMap::new();
    for issue in &issues {
        observation.source_time = observation.source_time.max(issue.last_modified);
        let service = service_of(issue);
        let Some(issue_id) = &issue.id else {
            observation.faults.push(Fault {
                services: service.into_iter().collect(),
                error: ProbeError::drift(
                    ISSUES,
                    format!(
                        "an issue has no id (title {:?}); it is left out",
                        shorten(issue.title.as_deref().unwrap_or(""), 80)
                    ),
                ),
            });
            continue;
        };
        let resolved = issue.resolved();
        if let (false, Some(service)) = (resolved, &service) {
            open.entry(service.clone()).or_default().push(issue);
        }
        let recent = issue
            .ended_at
            .or(issue.last_modified)
            .is_some_and(|t| now - t <= RECENTLY_RESOLVED);
        if !resolved || recent {
            observation.incidents.push(IncidentObservation {
                id: Some(issue_id.clone()),
                title: issue
                    .title
                    .as_deref()
                    .map(html_to_text)
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| issue_id.clone())
                    .into(),
                service,
                classification: issue.classification,
                status: issue.status_text.clone(),
                resolved,
                started_at: issue.started_at,
                updated_at: issue.last_modified,
                summary: issue.latest_post.as_deref().map(SharedText::from),
            });
        }
    }

    let mut blind_without_issues: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for entry in &collected.overviews {
        let Some(id) = &entry.id else {
            let named = entry.name.clone();
            let error = ProbeError::drift(
                OVERVIEWS,
                match &named {
                    Some(name) => format!("the entry for {name:?} has no id; shown as unknown"),
                    None => "an entry has neither id nor service name; left out".to_string(),
                },
            );
            if let Some(name) = &named {
                observation
                    .services
                    .push(unknown_service(name, name, &entry.status_text, &error));
            }
            observation.faults.push(Fault {
                services: named.into_iter().collect(),
                error,
            });
            continue;
        };
        if seen.contains(id) {
            continue;
        }
        seen.push(id.clone());
        let name = entry.name.clone().unwrap_or_else(|| id.clone());
        let health = entry.status.as_ref().and_then(overview_health);
        let Some(mut health) = health else {
            let error = ProbeError::drift(
                OVERVIEWS,
                match &entry.status {
                    None => format!("service {id}: no status; shown as unknown"),
                    Some(_) => format!(
                        "service {id}: status {:?} is not a serviceHealthStatus we know; shown \
                         as unknown, never guessed",
                        entry.status_text
                    ),
                },
            );
            observation
                .services
                .push(unknown_service(id, &name, &entry.status_text, &error));
            observation.faults.push(Fault {
                services: vec![id.clone()],
                error,
            });
            continue;
        };
        let open_here = open.get(id).map(Vec::as_slice).unwrap_or_default();
        if health == Health::Advisory
            && open_here
                .iter()
                .any(|i| i.classification == IncidentClassification::Incident)
        {
            health = Health::Incident;
        }
        let mut message = (!open_here.is_empty()).then(|| {
            let titles: Vec<String> = open_here
                .iter()
                .map(|i| {
                    format!(
                        "{}: {}",
                        i.id.as_deref().unwrap_or("?"),
                        html_to_text(i.title.as_deref().unwrap_or(""))
                    )
                })
                .collect();
            shorten(&titles.join("; "), 1000)
        });
        if let (Some(error), Health::Advisory) = (&issues_error, health) {
            blind_without_issues.push(id.clone());
            health = Health::Unknown;
            message = Some(format!(
                "Microsoft says {:?}, but the issues could not be read, so advisory cannot be \
                 told from incident: {error}",
                entry.status_text
            ));
        }
        observation.services.push(ServiceObservation {
            id: id.clone(),
            name,
            health,
            status_text: entry.status_text.clone(),
            as_of: None,
            message,
            incidents: open_here.iter().filter_map(|i| i.id.clone()).collect(),
        });
    }
    if let Some(error) = issues_error {
        observation.faults.push(Fault {
            services: blind_without_issues,
            error,
        });
    }
    Ok(observation)
}

fn unknown_service(id: &str, name: &str, word: &str, error: &ProbeError) -> ServiceObservation {
    ServiceObservation {
        id: id.to_string(),
        name: name.to_string(),
        health: Health::Unknown,
        status_text: word.to_string(),
        as_of: None,
        message: Some(format!("no usable answer: {error}")),
        incidents: Vec::new(),
    }
}
