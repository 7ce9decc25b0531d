//! Microsoft Graph's service-communications API, `graph.microsoft.com/v1.0/admin/serviceAnnouncement`,
//! per tenant.
//!
//! Serves, in Graph's shapes (see the design folder's `reference/graph-api.md` §1–5):
//! - `GET /v1.0/admin/serviceAnnouncement/healthOverviews`: serviceHealth `{service, status, id}`;
//! - `GET /v1.0/admin/serviceAnnouncement/issues`: serviceHealthIssue with posts;
//! - `GET /v1.0/admin/serviceAnnouncement/messages`: a few Message center posts;
//! - any other `/v1.0/...` path: 400 `BadRequest` (after authentication).
//!
//! Every call needs `Authorization: Bearer <token from this simulator's token endpoint>`; the
//! tenant is the token's. Collections are paged: `Prefer: odata.maxpagesize=N` (default 100,
//! at most 1000; answered with `Preference-Applied`), `@odata.nextLink` is a full URL on the
//! request's own `Host` with a `$skiptoken` (other query options are kept in it and otherwise
//! ignored; `$skip=N` is accepted too). Enum values are camelCase as the live API sends them;
//! the `pascal-case` scenario sends them as Microsoft's doc examples print them. Timestamps are
//! relative to the clock, ids are stable per tenant.
//!
//! Order of checks: token (401), budget (429, counted as over budget), then the tenant's
//! [`GraphScenario`] (`throttled`, `failing`, `slow`, `drift-*`), then the data.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::SimState;
use super::scenario::GraphScenario;
use super::tenants::{Admission, TokenProblem};
use super::token::{b64url_decode, b64url_encode, guid, parse_form};

/// Where every Graph path starts.
pub(crate) const PREFIX: &str = "/v1.0";

/// The `Retry-After` the `throttled` scenario sends (fractional, like Graph's doc sample).
pub(crate) const THROTTLED_RETRY_AFTER: &str = "2.128";
/// What `drift-unknown-enum` writes where a serviceHealthStatus belongs.
pub(crate) const UNKNOWN_STATUS: &str = "serviceDegradedMaybe";

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");
const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .route(
            "/v1.0/admin/serviceAnnouncement/healthOverviews",
            get(health_overviews),
        )
        .route("/v1.0/admin/serviceAnnouncement/issues", get(issues))
        .route("/v1.0/admin/serviceAnnouncement/messages", get(messages))
        .route("/v1.0", axum::routing::any(unknown))
        .route("/v1.0/{*rest}", axum::routing::any(unknown))
}

/// Whether `path` belongs to Graph (and so to the per-tenant Graph scenarios, not the site's).
pub(crate) fn is_graph_path(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

// ---------------------------------------------------------------------------------------------
// The gate: token, budget, scenario.

/// An authenticated, admitted Graph call: whose it is and what it should see.
struct Call {
    tenant: String,
    scenario: GraphScenario,
}

async fn gate(state: &SimState, headers: &HeaderMap, budgeted: bool) -> Result<Call, Response> {
    let graph = state.graph();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Err(unauthenticated(headers, "Access token is empty."));
    };
    let tenant = match graph.verify_token(token) {
        Ok(tenant) => tenant,
        Err(TokenProblem::Invalid) => {
            return Err(unauthenticated(
                headers,
                "Access token validation failure. Invalid audience.",
            ));
        }
        Err(TokenProblem::Expired) => {
            return Err(unauthenticated(
                headers,
                "Lifetime validation failed, the token is expired.",
            ));
        }
    };
    if budgeted && let Admission::OverBudget(wait) = graph.admit(&tenant) {
        tracing::debug!(%tenant, ?wait, "simulated Graph budget exceeded");
        return Err(too_many_requests(
            headers,
            &format!("{:.3}", wait.as_secs_f64()),
        ));
    }
    let scenario = graph.scenario_for(&tenant);
    match scenario {
        GraphScenario::Throttled => Err(too_many_requests(headers, THROTTLED_RETRY_AFTER)),
        GraphScenario::Failing => Err(graph_error(
            headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "Service unavailable",
            None,
        )),
        GraphScenario::DriftHtml => Err(sign_in_page()),
        GraphScenario::Slow => {
            let delay = graph.slow_delay();
            tokio::select! {
                () = tokio::time::sleep(delay) => Ok(Call { tenant, scenario }),
                () = state.stopped() => Err(graph_error(
                    headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "serviceNotAvailable",
                    "The simulator is shutting down.",
                    None,
                )),
            }
        }
        _ => Ok(Call { tenant, scenario }),
    }
}

fn unauthenticated(headers: &HeaderMap, message: &str) -> Response {
    let mut response = graph_error(
        headers,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
        None,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        ),
    );
    response
}

fn too_many_requests(headers: &HeaderMap, retry_after: &str) -> Response {
    let mut response = graph_error(
        headers,
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Please retry again later.",
        Some(("429", "Please retry after")),
    );
    if let Ok(value) = HeaderValue::from_str(retry_after) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[derive(Serialize)]
struct GraphErrorBody<'a> {
    error: GraphError<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphError<'a> {
    code: &'a str,
    message: &'a str,
    inner_error: InnerError<'a>,
}

#[derive(Serialize)]
struct InnerError<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(rename = "request-id")]
    request_id: &'a str,
    #[serde(rename = "client-request-id")]
    client_request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
}

/// Graph's error JSON, `{"error":{"code","message","innerError":{…}}}`; `inner` adds the
/// innerError `code`/`status` and `message` a 429 carries.
fn graph_error(
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    message: &str,
    inner: Option<(&str, &str)>,
) -> Response {
    let ids = RequestIds::new(headers);
    let body = GraphErrorBody {
        error: GraphError {
            code,
            message,
            inner_error: InnerError {
                code: inner.map(|(code, _)| code),
                date: Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                message: inner.map(|(_, message)| message),
                request_id: &ids.request,
                client_request_id: &ids.client,
                status: inner.map(|(code, _)| code),
            },
        },
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (status, [(header::CONTENT_TYPE, ODATA_JSON)], text).into_response();
    ids.stamp(&mut response);
    response
}

/// The request id Graph stamps on every answer, and the client's own (echoed, or the same).
struct RequestIds {
    request: String,
    client: String,
}

impl RequestIds {
    fn new(headers: &HeaderMap) -> Self {
        let request = guid();
        let client = headers
            .get(&CLIENT_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| request.clone(), str::to_string);
        RequestIds { request, client }
    }

    fn stamp(&self, response: &mut Response) {
        for (name, value) in [
            (REQUEST_ID, &self.request),
            (CLIENT_REQUEST_ID, &self.client),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
}

/// What `drift-html` answers: the sign-in page a proxy or a misrouted call ends up on.
fn sign_in_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        SIGN_IN_PAGE,
    )
        .into_response()
}

const SIGN_IN_PAGE: &str = r#"<!DOCTYPE html>
<html dir="ltr" class="" lang="en">
<head>
    <title>Sign in to your account</title>
    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
    <meta http-equiv="X-UA-Compatible" content="IE=edge">
    <meta name="viewport" content="width=device-width, initial-scale=1.0, maximum-scale=2.0, user-scalable=yes">
    <meta name="robots" content="none">
    <noscript><meta http-equiv="Refresh" content="0; URL=https://login.microsoftonline.com/jsdisabled"></noscript>
    <link rel="shortcut icon" href="https://aadcdn.msftauth.net/shared/1.0/content/images/favicon_a_eupayfgghqiai7k9sol6lg2.ico">
</head>
<body data-bind="defineGlobals: ko.observable(), bodyCssClass">
    <div id="lightbox"><div role="main"><div class="row title">Sign in</div>
    <form name="f1" method="post" action="https://login.microsoftonline.com/common/login">
        <input type="email" name="loginfmt" placeholder="Email, phone, or Skype">
        <input type="submit" value="Next">
    </form></div></div>
</body>
</html>
"#;

async fn unknown(State(state): State<SimState>, request: Request) -> Response {
    let headers = request.headers();
    if let Err(response) = gate(&state, headers, false).await {
        return response;
    }
    let segment: String = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    graph_error(
        headers,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Collections and paging.

#[derive(Serialize)]
struct Collection<'a, T> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a [T]>,
}

/// The `Prefer: odata.maxpagesize=N` the client asked for, clamped to 1..=1000.
fn max_page_size(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| {
            let (name, value) = pref.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("odata.maxpagesize")
                .then(|| value.trim().trim_matches('"').parse::<usize>().ok())
                .flatten()
        })
        .find(|&n| n > 0)
        .map(|n| n.min(MAX_PAGE))
}

/// One page of `items` as a Graph collection, with a nextLink to the rest.
fn collection<T: Serialize>(
    request: &Request,
    call: &Call,
    entity_set: &str,
    items: &[T],
) -> Response {
    let headers = request.headers();
    let query = request.uri().query().unwrap_or_default();
    let params = parse_form(query.as_bytes());
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let preferred = max_page_size(headers);

    let (offset, token_size) = match (param("$skiptoken"), param("$skip")) {
        (Some(token), _) => match decode_skiptoken(token) {
            Some((offset, size)) => (offset, Some(size)),
            None => {
                return graph_error(
                    headers,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Invalid $skiptoken value.",
                    None,
                );
            }
        },
        (None, Some(skip)) => match skip.parse::<usize>() {
            Ok(skip) => (skip, None),
            Err(_) => {
                return graph_error(
                    headers,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Invalid value for $skip: '{}'.", skip.escape_debug()),
                    None,
                );
            }
        },
        (None, None) => (0, None),
    };
    let size = preferred.or(token_size).unwrap_or(DEFAULT_PAGE);
    let start = offset.min(items.len());
    let end = start.saturating_add(size).min(items.len());

    let host = host(headers);
    let path = request.uri().path();
    let next_link = (end < items.len()).then(|| {
        // Keep the client's other query options, raw, and replace only the paging ones.
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let key = parse_form(pair.as_bytes())
                    .into_iter()
                    .next()
                    .map(|(k, _)| k)
                    .unwrap_or_default();
                !pair.is_empty() && key != "$skiptoken" && key != "$skip"
            })
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        format!(
            "http://{host}{path}?{query}$skiptoken={}",
            encode_skiptoken(end, size)
        )
    });
    let body = Collection {
        context: format!("http://{host}/v1.0/$metadata#admin/serviceAnnouncement/{entity_set}"),
        next_link,
        value: (call.scenario != GraphScenario::DriftMissingValue).then_some(&items[start..end]),
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, ODATA_JSON)], text).into_response();
    RequestIds::new(headers).stamp(&mut response);
    if let Some(size) = preferred
        && let Ok(value) = HeaderValue::from_str(&format!("odata.maxpagesize={size}"))
    {
        response.headers_mut().insert(PREFERENCE_APPLIED, value);
    }
    response
}

/// The request's `Host`, if it is a plausible `host[:port]`; else loopback.
pub(crate) fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("127.0.0.1")
        .to_string()
}

fn encode_skiptoken(offset: usize, size: usize) -> String {
    b64url_encode(format!("sim:{offset}:{size}").as_bytes())
}

fn decode_skiptoken(token: &str) -> Option<(usize, usize)> {
    let text = String::from_utf8(b64url_decode(token)?).ok()?;
    let mut parts = text.strip_prefix("sim:")?.split(':');
    let offset = parts.next()?.parse().ok()?;
    let size: usize = parts.next()?.parse().ok()?;
    (parts.next().is_none() && (1..=MAX_PAGE).contains(&size)).then_some((offset, size))
}

async fn health_overviews(State(state): State<SimState>, request: Request) -> Response {
    match gate(&state, request.headers(), true).await {
        Ok(call) => {
            let data = TenantData::new(&call, Utc::now());
            collection(&request, &call, "healthOverviews", &data.overviews())
        }
        Err(response) => response,
    }
}

async fn issues(State(state): State<SimState>, request: Request) -> Response {
    match gate(&state, request.headers(), true).await {
        Ok(call) => {
            let data = TenantData::new(&call, Utc::now());
            collection(&request, &call, "issues", &data.issues())
        }
        Err(response) => response,
    }
}

async fn messages(State(state): State<SimState>, request: Request) -> Response {
    match gate(&state, request.headers(), true).await {
        Ok(call) => {
            let data = TenantData::new(&call, Utc::now());
            collection(&request, &call, "messages", &data.messages())
        }
        Err(response) => response,
    }
}

// ---------------------------------------------------------------------------------------------
// The data.

/// The services every simulated tenant subscribes to: (id, display name).
pub(crate) const SERVICES: &[(&str, &str)] = &[
    ("Exchange", "Exchange Online"),
    ("OrgLiveID", "Identity Service"),
    ("OSDPPlatform", "Microsoft 365 suite"),
    ("SharePoint", "SharePoint Online"),
    ("OneDriveForBusiness", "OneDrive for Business"),
    ("microsoftteams", "Microsoft Teams"),
    ("Forms", "Microsoft Forms"),
    ("Intune", "Microsoft Intune"),
    ("PowerBIcom", "Power BI"),
    ("Planner", "Planner"),
    ("OfficeOnline", "Office for the web"),
];

#[derive(Serialize)]
struct HealthOverview {
    service: &'static str,
    status: String,
    id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Issue {
    start_date_time: String,
    end_date_time: Option<String>,
    last_modified_date_time: String,
    title: String,
    id: String,
    impact_description: String,
    classification: String,
    origin: String,
    status: String,
    service: &'static str,
    feature: &'static str,
    feature_group: &'static str,
    is_resolved: bool,
    high_impact: Option<bool>,
    details: Vec<KeyValue>,
    posts: Vec<Post>,
}

#[derive(Serialize)]
struct KeyValue {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Post {
    created_date_time: String,
    post_type: String,
    description: ItemBody,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemBody {
    content_type: String,
    content: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    start_date_time: String,
    end_date_time: Option<String>,
    last_modified_date_time: String,
    title: &'static str,
    id: String,
    category: String,
    severity: String,
    tags: Vec<&'static str>,
    is_major_change: bool,
    action_required_by_date_time: Option<String>,
    services: Vec<&'static str>,
    has_attachments: bool,
    details: Vec<KeyValue>,
    body: ItemBody,
    view_point: Option<()>,
}

/// What a scenario shows in the data (the transport-level scenarios show healthy data when they
/// let a request through at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Situation {
    Healthy,
    Advisory,
    Incident,
    Restored,
    UnknownEnum,
}

/// One tenant's data at one moment.
struct TenantData {
    situation: Situation,
    pascal: bool,
    /// A six-digit number stable per tenant, the base of its issue ids.
    base: u32,
    /// `now`, to the minute (so pages fetched in a row agree).
    now: DateTime<Utc>,
}

impl TenantData {
    fn new(call: &Call, now: DateTime<Utc>) -> Self {
        let situation = match call.scenario {
            GraphScenario::Advisory | GraphScenario::PascalCase => Situation::Advisory,
            GraphScenario::Incident => Situation::Incident,
            GraphScenario::IncidentRestored => Situation::Restored,
            GraphScenario::DriftUnknownEnum => Situation::UnknownEnum,
            _ => Situation::Healthy,
        };
        // FNV-1a: stable across runs, unlike std's hasher.
        let hash = call.tenant.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        TenantData {
            situation,
            pascal: call.scenario == GraphScenario::PascalCase,
            base: 100_000 + hash % 800_000,
            now: now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now),
        }
    }

    /// An enum value in the casing this scenario uses.
    fn word(&self, camel: &str) -> String {
        if !self.pascal {
            return camel.to_string();
        }
        let mut chars = camel.chars();
        chars
            .next()
            .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    }

    fn ago(&self, minutes: i64, millis: i64) -> DateTime<Utc> {
        self.now - TimeDelta::minutes(minutes) + TimeDelta::milliseconds(millis)
    }

    fn id(&self, prefix: &str, offset: u32) -> String {
        format!("{prefix}{}", self.base + offset)
    }

    /// The service that is not operational, with its status.
    fn affected(&self) -> Option<(&'static str, &'static str)> {
        match self.situation {
            Situation::Healthy | Situation::Restored => None,
            Situation::Advisory => Some(("Exchange", "serviceDegradation")),
            Situation::Incident => Some(("microsoftteams", "serviceInterruption")),
            Situation::UnknownEnum => Some(("SharePoint", UNKNOWN_STATUS)),
        }
    }

    fn overviews(&self) -> Vec<HealthOverview> {
        let affected = self.affected();
        SERVICES
            .iter()
            .map(|&(id, service)| {
                let status = match affected {
                    Some((which, status)) if which == id => status,
                    _ => "serviceOperational",
                };
                HealthOverview {
                    service,
                    status: self.word(status),
                    id,
                }
            })
            .collect()
    }

    fn post(&self, at: DateTime<Utc>, post_type: &str, content: String) -> Post {
        Post {
            created_date_time: graph_time(at),
            post_type: self.word(post_type),
            description: ItemBody {
                content_type: self.word("html"),
                content,
            },
        }
    }

    fn notify_in_app(&self) -> Vec<KeyValue> {
        vec![KeyValue {
            name: "NotifyInApp",
            value: "True".to_string(),
        }]
    }

    /// Open issues first (most recently modified first), then the resolved history.
    fn issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        match self.situation {
            Situation::Healthy => {}
            Situation::Advisory => issues.push(self.open_advisory()),
            Situation::Incident => issues.push(self.open_incident()),
            Situation::Restored => issues.push(self.restored_incident()),
            Situation::UnknownEnum => issues.push(self.open_unknown()),
        }
        issues.extend(self.history());
        issues
    }

    fn open_advisory(&self) -> Issue {
        let title = "Some users may experience delays when receiving email from external senders";
        let impact = "Users may experience delays of up to 30 minutes when receiving email from external senders.";
        let start = self.ago(95, 0);
        let next = self.now + TimeDelta::hours(2);
        Issue {
            start_date_time: graph_time(start),
            end_date_time: None,
            last_modified_date_time: graph_time(self.ago(12, 417)),
            title: title.to_string(),
            id: self.id("EX", 0),
            impact_description: impact.to_string(),
            classification: self.word("advisory"),
            origin: self.word("microsoft"),
            status: self.word("serviceDegradation"),
            service: "Exchange Online",
            feature: "Mailflow - delayed delivery from Internet",
            feature_group: "E-Mail timely delivery",
            is_resolved: false,
            high_impact: None,
            details: self.notify_in_app(),
            posts: vec![
                self.post(
                    self.ago(88, 970),
                    "regular",
                    format!(
                        "Title: {title}\n\nUser impact: {impact}\n\nCurrent status: We're \
                         investigating a potential issue with inbound mail flow and checking for \
                         impact to your organization. We'll provide an update within 60 minutes."
                    ),
                ),
                self.post(
                    self.ago(12, 417),
                    "regular",
                    format!(
                        "Title: {title}\n\nUser impact: {impact}\n\nMore info: Internal mail flow \
                         is unaffected.\n\nCurrent status: We've identified a recent change to \
                         message-routing infrastructure that is causing the delays and are \
                         reverting it.\n\nScope of impact: Some users sending or receiving \
                         external email may be affected.\n\nNext update by: {}",
                        when(next)
                    ),
                ),
            ],
        }
    }

    fn open_incident(&self) -> Issue {
        let title = "Users can't join Microsoft Teams meetings or send chat messages";
        let impact =
            "Users can't join meetings or send and receive chat messages in Microsoft Teams.";
        let start = self.ago(41, 0);
        let next = self.now + TimeDelta::minutes(30);
        let content = |status: &str| format!("Title: {title}\n\nUser impact: {impact}\n\n{status}");
        Issue {
            start_date_time: graph_time(start),
            end_date_time: None,
            last_modified_date_time: graph_time(self.ago(3, 233)),
            title: title.to_string(),
            id: self.id("TM", 1),
            impact_description: impact.to_string(),
            classification: self.word("incident"),
            origin: self.word("microsoft"),
            status: self.word("serviceInterruption"),
            service: "Microsoft Teams",
            feature: "Teams Components",
            feature_group: "Teams Components",
            is_resolved: false,
            high_impact: Some(true),
            details: self.notify_in_app(),
            posts: vec![
                self.post(
                    self.ago(38, 120),
                    "quick",
                    content(
                        "Current status: We're investigating reports that users can't join \
                         Teams meetings. We'll provide an update within 30 minutes.",
                    ),
                ),
                self.post(
                    self.ago(21, 580),
                    "regular",
                    content(
                        "Current status: Telemetry shows elevated failures in the service that \
                         routes chat and meeting traffic in several regions. We're redirecting \
                         traffic to alternate infrastructure.",
                    ),
                ),
                self.post(
                    self.ago(3, 233),
                    "regular",
                    content(&format!(
                        "Current status: Redirecting traffic has improved availability in some \
                         regions; we're continuing to redirect the remaining traffic.\n\nScope of \
                         impact: Any user attempting to join a meeting or send a chat message \
                         may be affected.\n\nNext update by: {}",
                        when(next)
                    )),
                ),
            ],
        }
    }

    /// The open incident once Microsoft closes it: same id, resolved, with a final post.
    fn restored_incident(&self) -> Issue {
        let mut issue = self.open_incident();
        let end = self.ago(1, 0);
        issue.end_date_time = Some(graph_time(end));
        issue.last_modified_date_time = graph_time(end);
        issue.status = self.word("serviceRestored");
        issue.is_resolved = true;
        issue.posts.push(self.post(
            end,
            "regular",
            format!(
                "Title: {}\n\nUser impact: Users couldn't join meetings or send and receive \
                 chat messages in Microsoft Teams.\n\nFinal status: We've confirmed that \
                 redirecting the remaining traffic resolved the issue.\n\nEnd time: {}",
                issue.title,
                when(end)
            ),
        ));
        issue
    }

    fn open_unknown(&self) -> Issue {
        let title = "Some users may be unable to sync document libraries";
        let impact =
            "Users may be unable to sync document libraries with the OneDrive sync client.";
        Issue {
            start_date_time: graph_time(self.ago(64, 0)),
            end_date_time: None,
            last_modified_date_time: graph_time(self.ago(9, 51)),
            title: title.to_string(),
            id: self.id("SP", 2),
            impact_description: impact.to_string(),
            classification: self.word("advisory"),
            origin: self.word("microsoft"),
            status: UNKNOWN_STATUS.to_string(),
            service: "SharePoint Online",
            feature: "SharePoint Features",
            feature_group: "SharePoint Features",
            is_resolved: false,
            high_impact: None,
            details: Vec::new(),
            posts: vec![self.post(
                self.ago(9, 51),
                "regular",
                format!(
                    "Title: {title}\n\nUser impact: {impact}\n\nCurrent status: We're reviewing \
                     service telemetry to understand the cause."
                ),
            )],
        }
    }

    /// Resolved issues from the last few weeks.
    fn history(&self) -> Vec<Issue> {
        // (prefix, offset, service, feature group, feature, classification, status, title,
        //  impact, started days ago, lasted hours)
        #[allow(clippy::type_complexity)]
        let past: &[(
            &str,
            u32,
            &str,
            &str,
            &str,
            &str,
            &str,
            &str,
            &str,
            i64,
            i64,
        )] = &[
            (
                "EX",
                11,
                "Exchange Online",
                "E-Mail and calendar access",
                "Outlook on the web",
                "incident",
                "serviceRestored",
                "Users couldn't access shared mailboxes in Outlook on the web",
                "Users were unable to open shared mailboxes in Outlook on the web.",
                2,
                5,
            ),
            (
                "SP",
                23,
                "SharePoint Online",
                "SharePoint Features",
                "Search",
                "advisory",
                "serviceRestored",
                "Search results in SharePoint Online may have been incomplete",
                "Users may have seen incomplete search results for recently modified content.",
                4,
                9,
            ),
            (
                "TM",
                37,
                "Microsoft Teams",
                "Teams Components",
                "Meetings",
                "incident",
                "postIncidentReviewPublished",
                "Users were unable to start or join Microsoft Teams meetings",
                "Users were unable to start or join meetings in Microsoft Teams.",
                9,
                3,
            ),
            (
                "FM",
                41,
                "Microsoft Forms",
                "Service",
                "Forms",
                "advisory",
                "falsePositive",
                "Users may have been unable to submit responses to forms",
                "Our investigation showed the reported issue was not caused by the service.",
                12,
                2,
            ),
            (
                "MO",
                53,
                "Microsoft 365 suite",
                "Portal",
                "Microsoft 365 admin center",
                "incident",
                "serviceRestored",
                "Admins couldn't access some pages in the Microsoft 365 admin center",
                "Admins were unable to load Service health and Message center pages.",
                20,
                4,
            ),
        ];
        past.iter()
            .map(
                |&(
                    prefix,
                    offset,
                    service,
                    feature_group,
                    feature,
                    classification,
                    status,
                    title,
                    impact,
                    days,
                    hours,
                )| {
                    let start = self.ago(days * 24 * 60 + 17, 0);
                    let end = start + TimeDelta::hours(hours);
                    let modified = end + TimeDelta::minutes(35) + TimeDelta::milliseconds(767);
                    Issue {
                        start_date_time: graph_time(start),
                        end_date_time: Some(graph_time(end)),
                        last_modified_date_time: graph_time(modified),
                        title: title.to_string(),
                        id: self.id(prefix, offset),
                        impact_description: impact.to_string(),
                        classification: self.word(classification),
                        origin: self.word("microsoft"),
                        status: self.word(status),
                        service,
                        feature,
                        feature_group,
                        is_resolved: true,
                        high_impact: None,
                        details: Vec::new(),
                        posts: vec![
                            self.post(
                                start + TimeDelta::minutes(7) + TimeDelta::milliseconds(380),
                                "regular",
                                format!(
                                    "Title: {title}\n\nUser impact: {impact}\n\nCurrent status: \
                                     We're investigating a potential issue and checking for \
                                     impact to your organization."
                                ),
                            ),
                            self.post(
                                modified,
                                "regular",
                                format!(
                                    "Title: {title}\n\nUser impact: {impact}\n\nFinal status: \
                                     We've confirmed that the issue is resolved.\n\nStart time: \
                                     {}\n\nEnd time: {}",
                                    when(start),
                                    when(end)
                                ),
                            ),
                        ],
                    }
                },
            )
            .collect()
    }

    fn messages(&self) -> Vec<Message> {
        let published = self.ago(6 * 24 * 60 + 300, 843);
        vec![
            Message {
                start_date_time: graph_time(published),
                end_date_time: Some(graph_time(published + TimeDelta::days(60))),
                last_modified_date_time: graph_time(published),
                title: "(Updated) Microsoft Teams: New meeting recap experience",
                id: format!("MC{}", self.base + 7),
                category: self.word("planForChange"),
                severity: self.word("normal"),
                tags: vec!["Updated message", "User impact"],
                is_major_change: false,
                action_required_by_date_time: None,
                services: vec!["Microsoft Teams"],
                has_attachments: false,
                details: Vec::new(),
                body: ItemBody {
                    content_type: self.word("html"),
                    content: "<p>We're rolling out a new meeting recap experience in Microsoft \
                              Teams.</p>"
                        .to_string(),
                },
                view_point: None,
            },
            Message {
                start_date_time: graph_time(self.ago(15 * 24 * 60, 0)),
                end_date_time: Some(graph_time(self.ago(15 * 24 * 60, 0) + TimeDelta::days(90))),
                last_modified_date_time: graph_time(self.ago(15 * 24 * 60 - 45, 2)),
                title: "Exchange Online: Retirement of a legacy authentication protocol",
                id: format!("MC{}", self.base + 19),
                category: self.word("planForChange"),
                severity: self.word("high"),
                tags: vec!["Admin impact", "Retirement"],
                is_major_change: true,
                action_required_by_date_time: Some(graph_time(
                    self.ago(15 * 24 * 60, 0) + TimeDelta::days(75),
                )),
                services: vec!["Exchange Online"],
                has_attachments: false,
                details: vec![KeyValue {
                    name: "ExternalLink",
                    value: "https://learn.microsoft.com/exchange/".to_string(),
                }],
                body: ItemBody {
                    content_type: self.word("html"),
                    content: "<p>We're retiring a legacy authentication protocol in Exchange \
                              Online. Move clients to modern authentication before the \
                              retirement date.</p>"
                        .to_string(),
                },
                view_point: None,
            },
        ]
    }
}

/// A Graph timestamp: UTC with `Z`, the fraction trimmed of trailing zeros (`.767Z`, `.2Z`, none).
fn graph_time(at: DateTime<Utc>) -> String {
    let millis = at.timestamp_subsec_millis();
    let seconds = at.format("%Y-%m-%dT%H:%M:%S");
    if millis == 0 {
        format!("{seconds}Z")
    } else {
        let fraction = format!("{millis:03}");
        format!("{seconds}.{}Z", fraction.trim_end_matches('0'))
    }
}

/// A time as posts write it: "Tuesday, June 3, 2025, at 4:00 PM UTC".
fn when(at: DateTime<Utc>) -> String {
    at.format("%A, %B %-d, %Y, at %-I:%M %p UTC").to_string()
}
