//! Simulator tests for Microsoft Graph service health and its token endpoint, per tenant: plain
//! HTTP calls (no Graph channel), so each test pins down what the simulator puts on the wire.

use crate::support::plain_client;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use statusmon::simulator::{
    self, GraphLimits, GraphScenario, SIM_CLIENT_SECRET, Scenario, SimHandle,
};

const ISSUES: &str = "/v1.0/admin/serviceAnnouncement/issues";
const OVERVIEWS: &str = "/v1.0/admin/serviceAnnouncement/healthOverviews";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A client assertion with the given header and claims and a dummy signature.
fn assertion(header: serde_json::Value, claims: serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(b"not-really-a-signature")
    )
}

fn good_claims(sim: &SimHandle, tenant: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "aud": format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()),
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "jti": "2b6f3c7e-0f4e-4c7d-9a51-3f2d9d0e8b11",
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    })
}

fn ps256() -> serde_json::Value {
    serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": "q2xv1aJkIbA1lpZ0rqs0nN2rDqk"})
}

async fn post_token(sim: &SimHandle, tenant: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    plain_client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the token endpoint answers")
}

fn secret_form(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", CLIENT_ID.to_string()),
        ("scope", GRAPH_SCOPE.to_string()),
        ("client_secret", secret.to_string()),
        ("grant_type", "client_credentials".to_string()),
    ]
}

async fn request_token(sim: &SimHandle, tenant: &str, secret: &str) -> reqwest::Response {
    let form = secret_form(secret);
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_token(sim, tenant, &fields).await
}

async fn token(sim: &SimHandle, tenant: &str) -> String {
    let response = request_token(sim, tenant, SIM_CLIENT_SECRET).await;
    assert_eq!(response.status(), 200, "token for {tenant}");
    let body = json(&response.text().await.expect("a body"));
    body["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

async fn graph_get(sim: &SimHandle, path: &str, token: &str) -> reqwest::Response {
    graph_get_url(&format!("{}{path}", sim.base_url()), token, None).await
}

async fn graph_get_url(url: &str, token: &str, page_size: Option<usize>) -> reqwest::Response {
    let mut request = plain_client().get(url).bearer_auth(token);
    if let Some(size) = page_size {
        request = request.header("Prefer", format!("odata.maxpagesize={size}"));
    }
    request.send().await.expect("Graph answers")
}

async fn graph_json(sim: &SimHandle, path: &str, token: &str) -> serde_json::Value {
    let response = graph_get(sim, path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    assert!(
        header(&response, "content-type").starts_with("application/json"),
        "{path}"
    );
    json(&response.text().await.expect("a body"))
}

fn values(body: &serde_json::Value) -> &Vec<serde_json::Value> {
    body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("a value array: {body}"))
}

fn overview<'a>(body: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    values(body)
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("service {id} missing from {body}"))
}

/// Asserts an Entra error answer: status, `error`, and the AADSTS code in both places.
async fn assert_entra_error(response: reqwest::Response, status: u16, error: &str, code: u64) {
    assert_eq!(response.status(), status, "{error} {code}");
    assert!(header(&response, "content-type").starts_with("application/json"));
    let body = json(&response.text().await.expect("a body"));
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().expect("a description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(description.contains("Trace ID: "), "{description}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    for key in ["timestamp", "trace_id", "correlation_id"] {
        assert!(
            body[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {body}"
        );
    }
    assert_eq!(body["trace_id"].as_str().map(str::len), Some(36), "{body}");
}

async fn assert_graph_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status(), status, "{code}");
    assert!(header(&response, "content-type").starts_with("application/json"));
    let body = json(&response.text().await.expect("a body"));
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn is_issue_id(id: &str, prefix: &str) -> bool {
    id.len() == 8 && id.starts_with(prefix) && id[2..].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn token_endpoint_issues_tokens_for_a_secret_basic_auth_or_an_assertion() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let tenant = "contoso.onmicrosoft.com";
    let response = request_token(&sim, tenant, SIM_CLIENT_SECRET).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("application/json"));
    assert!(header(&response, "cache-control").contains("no-store"));
    let body = json(&response.text().await.expect("a body"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let first = body["access_token"].as_str().expect("a token").to_string();
    assert!(!first.is_empty());
    assert_ne!(first, token(&sim, tenant).await, "every token is new");

    // The secret as HTTP Basic credentials (RFC 6749 §2.3.1).
    let basic = plain_client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()))
        .basic_auth(CLIENT_ID, Some(SIM_CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
        .send()
        .await
        .expect("the token endpoint answers");
    assert_eq!(basic.status(), 200);

    // A certificate: a PS256 client assertion for this tenant's token endpoint.
    let guid_tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let jwt = assertion(ps256(), good_claims(&sim, guid_tenant));
    let response = post_token(
        &sim,
        guid_tenant,
        &[
            ("client_id", CLIENT_ID),
            ("scope", GRAPH_SCOPE),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let token = json(&response.text().await.expect("a body"))["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let body = graph_json(&sim, OVERVIEWS, &token).await;
    assert!(!values(&body).is_empty());

    // Token requests are counted per tenant, never against the Graph budget.
    let stats = sim.graph_stats(tenant);
    assert_eq!((stats.token_requests, stats.tokens_issued), (3, 3));
    assert_eq!(stats.requests, 0);
    assert_eq!(sim.graph_stats(guid_tenant).requests, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_lifetime_is_configurable_per_tenant() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    assert!(sim.set_tenant_token_lifetime("short", Duration::from_secs(120)));
    let short = json(
        &request_token(&sim, "short", SIM_CLIENT_SECRET)
            .await
            .text()
            .await
            .expect("a body"),
    );
    assert_eq!(short["expires_in"], 120);
    sim.set_token_lifetime(Duration::from_secs(4000));
    let other = json(
        &request_token(&sim, "other", SIM_CLIENT_SECRET)
            .await
            .text()
            .await
            .expect("a body"),
    );
    assert_eq!(other["expires_in"], 4000);
    assert!(!sim.set_tenant_token_lifetime("not a tenant", Duration::from_secs(1)));
    sim.shutdown().await;
}

#[tokio::test]
async fn token_errors_have_entras_shape_and_status() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let t = "fabrikam.com";

    let wrong = request_token(&sim, t, "not-the-secret").await;
    assert_entra_error(wrong, 401, "invalid_client", 7000215).await;

    // One field changed or left out at a time, from a form that would succeed.
    let good = [
        ("client_id", CLIENT_ID),
        ("scope", GRAPH_SCOPE),
        ("client_secret", SIM_CLIENT_SECRET),
        ("grant_type", "client_credentials"),
    ];
    let form_cases: [(&str, Option<&str>, u16, &str, u64); 4] = [
        ("grant_type", None, 400, "invalid_request", 900144),
        (
            "grant_type",
            Some("password"),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            "scope",
            Some("https://graph.microsoft.com/ServiceHealth.Read.All"),
            400,
            "invalid_scope",
            1002012,
        ),
        ("client_secret", None, 401, "invalid_client", 7000218),
    ];
    for (field, value, status, error, code) in form_cases {
        let fields: Vec<(&str, &str)> = good
            .iter()
            .filter_map(|&(k, v)| {
                if k == field {
                    value.map(|value| (k, value))
                } else {
                    Some((k, v))
                }
            })
            .collect();
        let response = post_token(&sim, t, &fields).await;
        assert_entra_error(response, status, error, code).await;
    }

    let unknown_tenant = request_token(&sim, "no%20such%20tenant", SIM_CLIENT_SECRET).await;
    assert_entra_error(unknown_tenant, 400, "invalid_request", 90002).await;

    let get = plain_client()
        .get(format!("{}/{t}/oauth2/v2.0/token", sim.base_url()))
        .send()
        .await
        .expect("the token endpoint answers");
    assert_entra_error(get, 400, "invalid_request", 900561).await;

    // Client assertions: form, algorithm, audience, issuer, expiry.
    let with_assertion = |jwt: String| {
        let sim = &sim;
        async move {
            post_token(
                sim,
                t,
                &[
                    ("client_id", CLIENT_ID),
                    ("scope", GRAPH_SCOPE),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &jwt),
                    ("grant_type", "client_credentials"),
                ],
            )
            .await
        }
    };
    let mut wrong_issuer = good_claims(&sim, t);
    wrong_issuer["iss"] = serde_json::json!("someone-else");
    let mut expired = good_claims(&sim, t);
    expired["exp"] = serde_json::json!(chrono::Utc::now().timestamp() - 60);
    let assertion_cases = [
        (
            "eyJhbGciOiJQUzI1NiJ9.e30".to_string(),
            400,
            "invalid_request",
            50027,
        ),
        (
            "bm90IGpzb24.e30.c2ln".to_string(),
            400,
            "invalid_request",
            50027,
        ),
        (
            assertion(
                serde_json::json!({"alg": "RS256", "typ": "JWT"}),
                good_claims(&sim, t),
            ),
            401,
            "invalid_client",
            5002738,
        ),
        (
            assertion(ps256(), good_claims(&sim, "contoso.com")),
            401,
            "invalid_client",
            700212,
        ),
        (
            assertion(ps256(), wrong_issuer),
            401,
            "invalid_client",
            700021,
        ),
        (assertion(ps256(), expired), 401, "invalid_client", 700024),
    ];
    for (jwt, status, error, code) in assertion_cases {
        assert_entra_error(with_assertion(jwt).await, status, error, code).await;
    }

    assert_eq!(sim.graph_stats(t).tokens_issued, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn auth_scenarios_break_the_token_endpoint_for_their_tenant() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    assert!(sim.set_tenant_scenario("rotated", GraphScenario::AuthBadSecret));
    assert!(sim.set_tenant_scenario("unconsented", GraphScenario::AuthConsentMissing));
    assert!(sim.set_tenant_scenario("gone", GraphScenario::AuthUnknownTenant));

    let rotated = request_token(&sim, "rotated", SIM_CLIENT_SECRET).await;
    assert_entra_error(rotated, 401, "invalid_client", 7000215).await;
    let jwt = assertion(ps256(), good_claims(&sim, "rotated"));
    let rotated_cert = post_token(
        &sim,
        "rotated",
        &[
            ("client_id", CLIENT_ID),
            ("scope", GRAPH_SCOPE),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_entra_error(rotated_cert, 401, "invalid_client", 700027).await;

    let unconsented = request_token(&sim, "unconsented", SIM_CLIENT_SECRET).await;
    assert_eq!(unconsented.status(), 400);
    let body = json(&unconsented.text().await.expect("a body"));
    assert_eq!(body["error"], "unauthorized_client");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.starts_with("AADSTS700016: "), "{description}");
    assert!(description.contains(CLIENT_ID) && description.contains("unconsented"));

    let gone = request_token(&sim, "gone", SIM_CLIENT_SECRET).await;
    assert_entra_error(gone, 400, "invalid_request", 90002).await;

    // Other tenants are unaffected.
    token(&sim, "fine").await;
    assert_eq!(sim.graph_stats("rotated").token_requests, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_needs_a_valid_unexpired_token_from_this_simulator() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let missing = plain_client()
        .get(format!("{}{OVERVIEWS}", sim.base_url()))
        .send()
        .await
        .expect("Graph answers");
    assert!(
        header(&missing, "www-authenticate").starts_with("Bearer"),
        "{:?}",
        missing.headers()
    );
    let message = assert_graph_error(missing, 401, "InvalidAuthenticationToken").await;
    assert!(message.contains("empty"), "{message}");

    for bad in [
        "eyJ0eXAiOiJKV1QifQ.e30.c2ln",
        "sim.dGVuYW50.99999999999999.1.0123456789abcdef",
    ] {
        let response = graph_get(&sim, ISSUES, bad).await;
        assert_graph_error(response, 401, "InvalidAuthenticationToken").await;
    }

    // A real token with its tenant swapped is not accepted.
    let good = token(&sim, "tenant-a").await;
    let mut parts: Vec<&str> = good.split('.').collect();
    let other = b64url(b"tenant-b");
    parts[1] = &other;
    let forged = parts.join(".");
    assert_graph_error(
        graph_get(&sim, ISSUES, &forged).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert_eq!(graph_get(&sim, ISSUES, &good).await.status(), 200);

    // An expired token.
    assert!(sim.set_tenant_token_lifetime("brief", Duration::ZERO));
    let expired = token(&sim, "brief").await;
    let message = assert_graph_error(
        graph_get(&sim, OVERVIEWS, &expired).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert!(message.contains("expired"), "{message}");

    // Refused calls are not charged to any tenant's budget.
    assert_eq!(sim.graph_stats("tenant-a").requests, 1);
    assert_eq!(sim.graph_stats("tenant-b").requests, 0);
    assert_eq!(sim.graph_stats("brief").requests, 0);

    // Paths Graph does not serve: 400 after authentication, 401 before.
    let unknown = graph_get(&sim, "/v1.0/admin/serviceAnnouncement/nothing", &good).await;
    let message = assert_graph_error(unknown, 400, "BadRequest").await;
    assert!(message.contains("nothing"), "{message}");
    let unknown = plain_client()
        .get(format!("{}/v1.0/me", sim.base_url()))
        .send()
        .await
        .expect("Graph answers");
    assert_eq!(unknown.status(), 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn healthy_graph_has_graphs_shapes() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let token = token(&sim, "contoso.com").await;

    let response = graph_get(&sim, OVERVIEWS, &token).await;
    assert_eq!(response.status(), 200);
    assert!(!header(&response, "request-id").is_empty());
    let body = json(&response.text().await.expect("a body"));
    assert!(
        body["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("$metadata#admin/serviceAnnouncement/healthOverviews")),
        "{body}"
    );
    assert!(body.get("@odata.nextLink").is_none(), "one page: {body}");
    let services = values(&body);
    assert!(services.len() >= 10, "{body}");
    assert!(
        services
            .iter()
            .all(|s| s["status"] == "serviceOperational" && s["service"].is_string()),
        "{body}"
    );
    for (id, name) in [
        ("Exchange", "Exchange Online"),
        ("SharePoint", "SharePoint Online"),
        ("microsoftteams", "Microsoft Teams"),
        ("OSDPPlatform", "Microsoft 365 suite"),
        ("OrgLiveID", "Identity Service"),
        ("Forms", "Microsoft Forms"),
    ] {
        assert_eq!(overview(&body, id)["service"], name);
    }

    let body = graph_json(&sim, ISSUES, &token).await;
    let issues = values(&body);
    assert!(issues.len() >= 3, "{body}");
    let mut ids = HashSet::new();
    for issue in issues {
        let id = issue["id"].as_str().expect("an id");
        assert!(ids.insert(id.to_string()), "ids are unique: {id}");
        assert!(
            id.len() == 8 && id[..2].bytes().all(|b| b.is_ascii_uppercase()),
            "{id}"
        );
        assert_eq!(issue["isResolved"], true, "{issue}");
        assert!(
            ["advisory", "incident"].contains(&issue["classification"].as_str().unwrap_or("")),
            "{issue}"
        );
        assert_eq!(issue["origin"], "microsoft");
        for key in ["startDateTime", "endDateTime", "lastModifiedDateTime"] {
            let at = issue[key].as_str().expect("a timestamp");
            assert!(at.ends_with('Z'), "{at}");
            let at = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
            assert!(at <= chrono::Utc::now(), "{key} in the past");
        }
        for key in [
            "title",
            "impactDescription",
            "service",
            "feature",
            "featureGroup",
        ] {
            assert!(issue[key].is_string(), "{key}: {issue}");
        }
        let posts = issue["posts"].as_array().expect("posts");
        assert!(!posts.is_empty());
        for post in posts {
            assert_eq!(post["postType"], "regular");
            assert_eq!(post["description"]["contentType"], "html");
            assert!(post["description"]["content"].is_string());
        }
    }
    assert!(
        issues.iter().any(|i| i["status"] == "serviceRestored"),
        "{body}"
    );

    // Ids are stable per tenant, and differ between tenants.
    let again = graph_json(&sim, ISSUES, &token).await;
    assert_eq!(again["value"][0]["id"], body["value"][0]["id"]);
    let other = graph_json(&sim, ISSUES, &self::token(&sim, "fabrikam.com").await).await;
    assert_ne!(other["value"][0]["id"], body["value"][0]["id"]);

    let messages = graph_json(&sim, "/v1.0/admin/serviceAnnouncement/messages", &token).await;
    assert!(values(&messages).iter().all(
        |m| m["id"].as_str().is_some_and(|id| id.starts_with("MC")) && m["viewPoint"].is_null()
    ));
    sim.shutdown().await;
}

/// Follows `@odata.nextLink` from `path` with `Prefer: odata.maxpagesize=size`; returns every
/// item and the number of pages.
async fn collect_pages(
    sim: &SimHandle,
    path: &str,
    token: &str,
    size: usize,
) -> (Vec<serde_json::Value>, usize) {
    let mut url = format!("{}{path}", sim.base_url());
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let response = graph_get_url(&url, token, Some(size)).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            header(&response, "preference-applied"),
            format!("odata.maxpagesize={}", size.min(1000))
        );
        let body = json(&response.text().await.expect("a body"));
        let page = values(&body);
        assert!(page.len() <= size, "{body}");
        items.extend(page.iter().cloned());
        pages += 1;
        assert!(pages < 100, "paging ends");
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}{path}?", sim.base_url())),
                    "the next link is a full URL on the simulator: {next}"
                );
                assert!(next.contains("$skiptoken="), "{next}");
                url = next.to_string();
            }
            None => return (items, pages),
        }
    }
}

#[tokio::test]
async fn paging_follows_maxpagesize_and_next_links_on_the_simulators_host() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_scenario(GraphScenario::Incident);
    let token = token(&sim, "contoso.com").await;

    for path in [OVERVIEWS, ISSUES] {
        let all = values(&graph_json(&sim, path, &token).await).clone();
        assert!(all.len() >= 5, "{path}");
        for size in [1, 2, 3, all.len(), 5000] {
            let (items, pages) = collect_pages(&sim, path, &token, size).await;
            assert_eq!(items, all, "{path} with pages of {size}");
            assert_eq!(pages, all.len().div_ceil(size.min(1000)), "{path} {size}");
        }
    }

    // Other query options survive into the next link; a forged skiptoken is refused.
    let response = graph_get_url(
        &format!("{}{ISSUES}?$filter=isResolved%20eq%20false", sim.base_url()),
        &token,
        Some(1),
    )
    .await;
    let body = json(&response.text().await.expect("a body"));
    let next = body["@odata.nextLink"].as_str().expect("a next link");
    assert!(next.contains("$filter=isResolved%20eq%20false&"), "{next}");
    let forged = graph_get(&sim, &format!("{ISSUES}?$skiptoken=bogus"), &token).await;
    assert_graph_error(forged, 400, "BadRequest").await;

    // A next link keeps its page size even without the Prefer header.
    let first = json(
        &graph_get_url(&format!("{}{OVERVIEWS}", sim.base_url()), &token, Some(4))
            .await
            .text()
            .await
            .expect("a body"),
    );
    let next = first["@odata.nextLink"].as_str().expect("a next link");
    let second = json(
        &graph_get_url(next, &token, None)
            .await
            .text()
            .await
            .expect("a body"),
    );
    assert_eq!(values(&second).len(), 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn advisory_incident_and_pascal_case_scenarios() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let token = token(&sim, "contoso.com").await;

    sim.set_graph_scenario(GraphScenario::Advisory);
    let body = graph_json(&sim, OVERVIEWS, &token).await;
    assert_eq!(overview(&body, "Exchange")["status"], "serviceDegradation");
    let others = values(&body).iter().filter(|s| s["id"] != "Exchange");
    assert!(others.clone().all(|s| s["status"] == "serviceOperational"));
    let issues = graph_json(&sim, ISSUES, &token).await;
    let open: Vec<_> = values(&issues)
        .iter()
        .filter(|i| i["isResolved"] == false)
        .collect();
    assert_eq!(open.len(), 1, "{issues}");
    let advisory = open[0];
    assert!(
        is_issue_id(advisory["id"].as_str().unwrap_or(""), "EX"),
        "{advisory}"
    );
    assert_eq!(advisory["classification"], "advisory");
    assert_eq!(advisory["status"], "serviceDegradation");
    assert_eq!(advisory["service"], "Exchange Online");
    assert!(advisory["endDateTime"].is_null());

    sim.set_graph_scenario(GraphScenario::Incident);
    let body = graph_json(&sim, OVERVIEWS, &token).await;
    assert_eq!(
        overview(&body, "microsoftteams")["status"],
        "serviceInterruption"
    );
    assert_eq!(overview(&body, "Exchange")["status"], "serviceOperational");
    let issues = graph_json(&sim, ISSUES, &token).await;
    let incident = values(&issues)
        .iter()
        .find(|i| i["isResolved"] == false)
        .expect("an open incident");
    assert!(
        is_issue_id(incident["id"].as_str().unwrap_or(""), "TM"),
        "{incident}"
    );
    assert_eq!(incident["classification"], "incident");
    assert_eq!(incident["status"], "serviceInterruption");
    assert_eq!(incident["service"], "Microsoft Teams");
    let posts = incident["posts"].as_array().expect("posts");
    assert!(posts.len() >= 3, "{incident}");
    let created: Vec<&str> = posts
        .iter()
        .map(|p| p["createdDateTime"].as_str().expect("a time"))
        .collect();
    let mut sorted = created.clone();
    sorted.sort();
    assert_eq!(created, sorted, "posts in order");

    sim.set_graph_scenario(GraphScenario::PascalCase);
    let body = graph_json(&sim, OVERVIEWS, &token).await;
    assert_eq!(overview(&body, "Exchange")["status"], "ServiceDegradation");
    assert_eq!(overview(&body, "Forms")["status"], "ServiceOperational");
    let issues = graph_json(&sim, ISSUES, &token).await;
    let first = &values(&issues)[0];
    assert_eq!(first["classification"], "Advisory");
    assert_eq!(first["origin"], "Microsoft");
    assert_eq!(first["posts"][0]["postType"], "Regular");
    assert_eq!(first["posts"][0]["description"]["contentType"], "Html");
    sim.shutdown().await;
}

#[tokio::test]
async fn failure_and_drift_scenarios_on_graph() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let token = token(&sim, "contoso.com").await;

    sim.set_graph_scenario(GraphScenario::Throttled);
    let response = graph_get(&sim, ISSUES, &token).await;
    assert_eq!(header(&response, "retry-after"), "2.128");
    assert_graph_error(response, 429, "TooManyRequests").await;
    assert_eq!(
        sim.graph_stats("contoso.com").over_budget,
        0,
        "a throttling scenario is not a budget breach"
    );

    sim.set_graph_scenario(GraphScenario::Failing);
    assert_graph_error(
        graph_get(&sim, OVERVIEWS, &token).await,
        503,
        "serviceNotAvailable",
    )
    .await;

    sim.set_graph_scenario(GraphScenario::DriftHtml);
    let response = graph_get(&sim, OVERVIEWS, &token).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/html"));
    assert!(
        response
            .text()
            .await
            .expect("a body")
            .contains("Sign in to your account")
    );

    sim.set_graph_scenario(GraphScenario::DriftUnknownEnum);
    let body = graph_json(&sim, OVERVIEWS, &token).await;
    assert_eq!(
        overview(&body, "SharePoint")["status"],
        "serviceDegradedMaybe"
    );
    let issues = graph_json(&sim, ISSUES, &token).await;
    assert!(
        values(&issues)
            .iter()
            .any(|i| i["status"] == "serviceDegradedMaybe")
    );

    sim.set_graph_scenario(GraphScenario::DriftMissingValue);
    for path in [OVERVIEWS, ISSUES] {
        let body = graph_json(&sim, path, &token).await;
        assert!(body.get("value").is_none(), "{body}");
        assert!(body["@odata.context"].is_string(), "{body}");
    }

    // The auth scenarios leave Graph itself alone: a token issued before still works.
    sim.set_graph_scenario(GraphScenario::AuthBadSecret);
    assert_eq!(graph_get(&sim, OVERVIEWS, &token).await.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_graph_blocks_neither_other_requests_nor_shutdown() {
    let started = Instant::now();
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_slow_delay(Duration::from_secs(30));
    assert!(sim.set_tenant_scenario("sluggish", GraphScenario::Slow));
    let slow_token = token(&sim, "sluggish").await;
    let fast_token = token(&sim, "brisk").await;

    let url = format!("{}{OVERVIEWS}", sim.base_url());
    let held = tokio::spawn({
        let url = url.clone();
        let token = slow_token.clone();
        async move { plain_client().get(url).bearer_auth(token).send().await }
    });
    let timed_out = plain_client()
        .get(&url)
        .bearer_auth(&slow_token)
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .expect_err("a slow answer outlasts a short timeout");
    assert!(timed_out.is_timeout(), "{timed_out}");

    // Meanwhile other tenants, the site and the control endpoints answer at once.
    let quick = Instant::now();
    assert_eq!(graph_get(&sim, OVERVIEWS, &fast_token).await.status(), 200);
    let site = plain_client()
        .get(format!("{}/api/posts/mac", sim.base_url()))
        .send()
        .await
        .expect("the site answers");
    assert_eq!(site.status(), 200);
    let control = plain_client()
        .get(format!("{}/_sim", sim.base_url()))
        .send()
        .await
        .expect("control answers");
    assert_eq!(control.status(), 200);
    assert!(
        quick.elapsed() < Duration::from_secs(2),
        "{:?}",
        quick.elapsed()
    );

    tokio::time::timeout(Duration::from_secs(3), sim.shutdown())
        .await
        .expect("held Graph requests do not keep the simulator alive");
    let _ = tokio::time::timeout(Duration::from_secs(2), held)
        .await
        .expect("the held request ends with the simulator");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // With a short delay, slow still answers, with healthy data.
    let sim = crate::support::simulator(Scenario::Healthy).await;
    sim.set_graph_slow_delay(Duration::from_millis(300));
    sim.set_graph_scenario(GraphScenario::Slow);
    let token = token(&sim, "sluggish").await;
    let asked = Instant::now();
    let body = graph_json(&sim, OVERVIEWS, &token).await;
    assert!(asked.elapsed() >= Duration::from_millis(300));
    assert_eq!(overview(&body, "Exchange")["status"], "serviceOperational");
    sim.shutdown().await;
}

#[tokio::test]
async fn tenant_scenarios_override_the_default_for_one_tenant_only() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    let base = sim.base_url();
    let a = token(&sim, "tenant-a").await;
    let b = token(&sim, "tenant-b").await;

    let switched = plain_client()
        .put(format!(
            "{base}/_sim/graph/tenants/tenant-a/scenario/failing"
        ))
        .send()
        .await
        .expect("control answers");
    assert_eq!(switched.status(), 200);
    let body = json(&switched.text().await.expect("a body"));
    assert_eq!(body["scenario"], "failing");
    assert_eq!(body["previous"], "healthy");
    assert_eq!(sim.tenant_scenario("tenant-a"), GraphScenario::Failing);
    assert_eq!(graph_get(&sim, OVERVIEWS, &a).await.status(), 503);
    assert_eq!(graph_get(&sim, OVERVIEWS, &b).await.status(), 200);

    // Switching the default moves tenant B but not tenant A.
    let switched = plain_client()
        .post(format!("{base}/_sim/graph/scenario/incident"))
        .send()
        .await
        .expect("control answers");
    assert_eq!(switched.status(), 200);
    assert_eq!(sim.graph_scenario(), GraphScenario::Incident);
    let body = graph_json(&sim, OVERVIEWS, &b).await;
    assert_eq!(
        overview(&body, "microsoftteams")["status"],
        "serviceInterruption"
    );
    assert_eq!(graph_get(&sim, OVERVIEWS, &a).await.status(), 503);

    // The site plays its own scenario: a combined site + Graph outage.
    sim.set_scenario(Scenario::AdminDegraded);
    let post = plain_client()
        .get(format!("{base}/api/posts/mac"))
        .send()
        .await
        .expect("the site answers")
        .text()
        .await
        .expect("a body");
    assert!(post.contains("Service degradation"), "{post}");
    assert_eq!(graph_get(&sim, OVERVIEWS, &a).await.status(), 503);
    // And a failing site does not fail Graph or the token endpoint.
    sim.set_scenario(Scenario::FailingHang);
    assert_eq!(graph_get(&sim, OVERVIEWS, &b).await.status(), 200);
    token(&sim, "tenant-c").await;
    sim.set_scenario(Scenario::Healthy);

    let state = json(
        &plain_client()
            .get(format!("{base}/_sim"))
            .send()
            .await
            .expect("control answers")
            .text()
            .await
            .expect("a body"),
    );
    assert_eq!(state["graph"]["scenario"], "incident");
    assert_eq!(state["graph"]["tenant_scenarios"]["tenant-a"], "failing");
    assert!(state["graph"]["tenant_scenarios"].get("tenant-b").is_none());
    assert_eq!(state["graph"]["client_secret"], SIM_CLIENT_SECRET);
    assert_eq!(
        state["graph"]["scenarios"].as_array().map(Vec::len),
        Some(GraphScenario::ALL.len())
    );

    // Back to the default.
    let reset = plain_client()
        .delete(format!("{base}/_sim/graph/tenants/tenant-a/scenario"))
        .send()
        .await
        .expect("control answers");
    assert_eq!(reset.status(), 200);
    assert_eq!(
        json(&reset.text().await.expect("a body"))["scenario"],
        "incident"
    );
    assert_eq!(graph_get(&sim, OVERVIEWS, &a).await.status(), 200);

    // Unknown names and tenant ids are refused.
    let unknown = plain_client()
        .put(format!("{base}/_sim/graph/scenario/on-fire"))
        .send()
        .await
        .expect("control answers");
    assert_eq!(unknown.status(), 404);
    let body = json(&unknown.text().await.expect("a body"));
    assert!(
        body["scenarios"]
            .as_array()
            .is_some_and(|s| s.iter().any(|n| n == "drift-missing-value")),
        "{body}"
    );
    let bad_tenant = plain_client()
        .put(format!("{base}/_sim/graph/tenants/a%20b/scenario/failing"))
        .send()
        .await
        .expect("control answers");
    assert_eq!(bad_tenant.status(), 400);
    assert_eq!(
        sim.graph_scenario(),
        GraphScenario::Incident,
        "nothing changed"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_budget_is_per_tenant_and_counts_requests_beyond_it() {
    let sim = crate::support::simulator(Scenario::Healthy).await;
    assert_eq!(
        sim.graph_limits(),
        GraphLimits {
            per_60s: 240,
            per_3600s: 800
        }
    );
    let a = token(&sim, "tenant-a").await;
    let b = token(&sim, "tenant-b").await;

    let http = plain_client();
    let url = format!("{}{OVERVIEWS}", sim.base_url());
    let mut statuses = Vec::new();
    let mut retry_afters = Vec::new();
    for _ in 0..250 {
        let response = http
            .get(&url)
            .bearer_auth(&a)
            .send()
            .await
            .expect("Graph answers");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_afters.push(header(&response, "retry-after"));
            let body = json(&response.text().await.expect("a body"));
            assert_eq!(body["error"]["code"], "TooManyRequests");
        }
    }
    assert!(statuses[..240].iter().all(|&s| s == 200), "{statuses:?}");
    assert!(statuses[240..].iter().all(|&s| s == 429), "{statuses:?}");
    for retry_after in &retry_afters {
        let seconds: f64 = retry_after
            .parse()
            .unwrap_or_else(|_| panic!("seconds: {retry_after:?}"));
        assert!(seconds > 0.0 && seconds <= 60.0, "{retry_after}");
        assert!(retry_after.contains('.'), "fractional: {retry_after}");
    }

    let stats = sim.graph_stats("tenant-a");
    assert_eq!(stats.requests, 250);
    assert_eq!(stats.over_budget, 10);
    assert_eq!(stats.max_in_60s, 250);
    assert_eq!(stats.max_in_3600s, 250);
    assert_eq!(stats.in_last_60s, 250);
    assert_eq!(
        stats.token_requests, 1,
        "tokens are not charged to the budget"
    );

    // Another tenant has its own budget.
    assert_eq!(graph_get(&sim, ISSUES, &b).await.status(), 200);
    let other = sim.graph_stats("tenant-b");
    assert_eq!(
        (other.requests, other.over_budget, other.max_in_60s),
        (1, 0, 1)
    );

    // The same numbers in the control state.
    let state = json(
        &plain_client()
            .get(format!("{}/_sim", sim.base_url()))
            .send()
            .await
            .expect("control answers")
            .text()
            .await
            .expect("a body"),
    );
    let tenant = &state["graph"]["tenants"]["tenant-a"];
    assert_eq!(tenant["requests"], 250);
    assert_eq!(tenant["over_budget"], 10);
    assert_eq!(tenant["max_in_60s"], 250);
    assert_eq!(tenant["max_in_3600s"], 250);
    assert_eq!(state["graph"]["limits"]["per_60s"], 240);
    let one = json(
        &plain_client()
            .get(format!("{}/_sim/graph/tenants/tenant-b", sim.base_url()))
            .send()
            .await
            .expect("control answers")
            .text()
            .await
            .expect("a body"),
    );
    assert_eq!(one["stats"]["requests"], 1);

    // The hourly limit, configurable: beyond it, wait up to an hour.
    sim.set_graph_limits(GraphLimits {
        per_60s: 1000,
        per_3600s: 3,
    });
    let c = token(&sim, "tenant-c").await;
    for _ in 0..3 {
        assert_eq!(graph_get(&sim, ISSUES, &c).await.status(), 200);
    }
    let response = graph_get(&sim, ISSUES, &c).await;
    assert_eq!(response.status(), 429);
    let seconds: f64 = header(&response, "retry-after").parse().expect("seconds");
    assert!(seconds > 3500.0 && seconds <= 3600.0, "{seconds}");
    assert_eq!(sim.graph_stats("tenant-c").over_budget, 1);
    sim.shutdown().await;
}

#[test]
fn graph_scenario_names_parse_and_print_canonically() {
    for scenario in GraphScenario::ALL {
        assert_eq!(scenario.to_string().parse::<GraphScenario>(), Ok(*scenario));
        assert!(!scenario.description().is_empty());
        assert!(!scenario.description().contains('\n'));
    }
    assert_eq!(
        " Drift_Missing_Value ".parse::<GraphScenario>(),
        Ok(GraphScenario::DriftMissingValue)
    );
    for name in [
        "healthy",
        "advisory",
        "incident",
        "throttled",
        "auth-bad-secret",
        "auth-consent-missing",
        "failing",
        "slow",
        "drift-html",
        "drift-unknown-enum",
        "drift-missing-value",
    ] {
        assert!(name.parse::<GraphScenario>().is_ok(), "{name}");
    }
    let error = "nope".parse::<GraphScenario>().expect_err("unknown");
    assert!(error.to_string().contains("drift-unknown-enum"), "{error}");
}

#[tokio::test]
async fn start_with_graph_sets_every_tenants_initial_scenario() {
    let sim =
        simulator::start_with_graph(loopback(), Scenario::AdminDegraded, GraphScenario::Advisory)
            .await
            .expect("the simulator binds");
    assert_eq!(sim.scenario(), Scenario::AdminDegraded);
    assert_eq!(sim.graph_scenario(), GraphScenario::Advisory);
    let token = token(&sim, "contoso.com").await;
    let body = graph_json(&sim, OVERVIEWS, &token).await;
    assert_eq!(overview(&body, "Exchange")["status"], "serviceDegradation");
    sim.shutdown().await;
}
