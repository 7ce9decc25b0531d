//! The Microsoft identity platform's token endpoint, client-credentials flow only:
//! `POST /{tenant}/oauth2/v2.0/token`, form-encoded, as `login.microsoftonline.com` serves it.
//!
//! Accepted credentials (any `client_id`, any well-formed tenant id):
//! - `client_secret` (in the body, or as HTTP Basic `client_id:secret`) equal to
//!   [`SIM_CLIENT_SECRET`];
//! - or `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` with a
//!   `client_assertion` JWT: three base64url parts, a header with `alg` `PS256`, an `aud` claim
//!   ending in `/{tenant}/oauth2/v2.0/token`, `iss`/`sub` (when present) equal to `client_id`,
//!   `exp` (when present) in the future. The signature is not verified.
//!
//! `scope` must be one resource's `/.default`. The tenant's [`GraphScenario`] can make the
//! endpoint reject credentials (`auth-bad-secret`), the app (`auth-consent-missing`) or the
//! tenant (`auth-unknown-tenant`). Errors have Entra's shape: `error`, `error_description`
//! (`AADSTS…: …` then trace id, correlation id and timestamp), `error_codes`, `timestamp`,
//! `trace_id`, `correlation_id`, `error_uri`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::Utc;
use serde::Serialize;

use super::SimState;
use super::scenario::GraphScenario;
use super::tenants::{SIM_CLIENT_SECRET, valid_tenant};

/// The only `client_assertion_type` the endpoint knows.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const TOKEN_SUFFIX: &str = "/oauth2/v2.0/token";

pub(crate) fn routes() -> Router<SimState> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token).get(not_post))
}

/// Whether `path` is a token-endpoint path (`/{tenant}/oauth2/v2.0/token`).
pub(crate) fn is_token_path(path: &str) -> bool {
    path.strip_suffix(TOKEN_SUFFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}

/// An Entra error answer.
struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

impl EntraError {
    fn new(status: StatusCode, error: &'static str, code: u32, description: String) -> Self {
        EntraError {
            status,
            error,
            code,
            description,
        }
    }

    fn missing(parameter: &str) -> Self {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    fn unknown_tenant(tenant: &str) -> Self {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are \
                 signing into the correct cloud. Check with your subscription administrator, this \
                 may happen if there are no active subscriptions for the tenant.",
                shown(tenant)
            ),
        )
    }

    fn malformed_assertion(detail: &str) -> Self {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            format!("JWT token is invalid or malformed: {detail}."),
        )
    }

    fn bad_assertion(code: u32, description: String) -> Self {
        EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: String,
    correlation_id: String,
    error_uri: String,
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let now = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let trace_id = guid();
        let correlation_id = guid();
        let body = ErrorBody {
            error: self.error,
            error_description: format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {now}",
                self.code, self.description
            ),
            error_codes: [self.code],
            timestamp: now,
            trace_id,
            correlation_id,
            error_uri: format!("https://login.microsoftonline.com/error?code={}", self.code),
        };
        json_answer(self.status, &body)
    }
}

#[derive(Serialize)]
struct TokenBody {
    token_type: &'static str,
    expires_in: u64,
    ext_expires_in: u64,
    access_token: String,
}

fn json_answer<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store, no-cache"),
            (header::PRAGMA, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn not_post() -> Response {
    EntraError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900561,
        "The endpoint only accepts POST, OPTIONS requests. Received a GET request.".to_string(),
    )
    .into_response()
}

async fn token(
    State(state): State<SimState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match grant(&state, &tenant, &headers, &body) {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(tenant = %shown(&tenant), code = error.code, "simulated token request refused");
            error.into_response()
        }
    }
}

fn grant(
    state: &SimState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, EntraError> {
    if !valid_tenant(tenant) {
        return Err(EntraError::unknown_tenant(tenant));
    }
    let graph = state.graph();
    graph.count_token_request(tenant);
    let scenario = graph.scenario_for(tenant);
    if scenario == GraphScenario::AuthUnknownTenant {
        return Err(EntraError::unknown_tenant(tenant));
    }

    let form = parse_form(body);
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let basic = basic_credentials(headers);

    let grant_type = field("grant_type").ok_or_else(|| EntraError::missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!(
                "The app requested an unsupported grant type '{}'.",
                shown(grant_type)
            ),
        ));
    }
    let client_id = field("client_id")
        .or(basic.as_ref().map(|(id, _)| id.as_str()))
        .ok_or_else(|| EntraError::missing("client_id"))?;
    let scope = field("scope").ok_or_else(|| EntraError::missing("scope"))?;
    let resource = scope.strip_suffix("/.default");
    if resource.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {} is not valid. Client credential flows must have \
                 a scope value with /.default suffixed to the resource identifier (application ID \
                 URI).",
                shown(scope)
            ),
        ));
    }
    if scenario == GraphScenario::AuthConsentMissing {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can \
                 happen if the application has not been installed by the administrator of the \
                 tenant or consented to by any user in the tenant. You may have sent your \
                 authentication request to the wrong tenant.",
                shown(client_id),
                shown(tenant)
            ),
        ));
    }

    let bad_credentials = scenario == GraphScenario::AuthBadSecret;
    if let Some(assertion_type) = field("client_assertion_type") {
        if assertion_type != JWT_BEARER {
            return Err(EntraError::malformed_assertion(&format!(
                "unsupported client_assertion_type '{}'",
                shown(assertion_type)
            )));
        }
        let assertion =
            field("client_assertion").ok_or_else(|| EntraError::missing("client_assertion"))?;
        check_assertion(assertion, tenant, client_id)?;
        if bad_credentials {
            return Err(EntraError::bad_assertion(
                700027,
                "Client assertion failed signature validation.".to_string(),
            ));
        }
    } else {
        let secret = field("client_secret")
            .or(basic.as_ref().map(|(_, secret)| secret.as_str()))
            .ok_or_else(|| {
                EntraError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' \
                     or 'client_secret'."
                        .to_string(),
                )
            })?;
        if bad_credentials || secret != SIM_CLIENT_SECRET {
            return Err(EntraError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request \
                     is the client secret value, not the client secret ID, for a secret added to \
                     app '{}'.",
                    shown(client_id)
                ),
            ));
        }
    }

    let (access_token, expires_in) = graph.issue_token(tenant);
    Ok(json_answer(
        StatusCode::OK,
        &TokenBody {
            token_type: "Bearer",
            expires_in,
            ext_expires_in: expires_in,
            access_token,
        },
    ))
}

/// Checks a client assertion's form (not its signature): see the module docs.
fn check_assertion(assertion: &str, tenant: &str, client_id: &str) -> Result<(), EntraError> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(EntraError::malformed_assertion(
            "a JWT has three dot-separated parts",
        ));
    };
    let decode = |part: &str, what: &str| -> Result<serde_json::Value, EntraError> {
        b64url_decode(part)
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| {
                EntraError::malformed_assertion(&format!("the {what} is not base64url JSON"))
            })
    };
    let header = decode(header, "header")?;
    let claims = decode(claims, "payload")?;
    if signature.is_empty() || b64url_decode(signature).is_none() {
        return Err(EntraError::malformed_assertion(
            "the signature is not base64url",
        ));
    }
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "PS256" {
        return Err(EntraError::bad_assertion(
            5002738,
            format!(
                "Invalid JWT token. '{}' is not a supported signature algorithm. Supported \
                 signing algorithms are: 'PS256'",
                shown(alg)
            ),
        ));
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    let expected = format!("/{tenant}{TOKEN_SUFFIX}");
    if !aud.ends_with(&expected) {
        return Err(EntraError::bad_assertion(
            700212,
            format!(
                "The audience claim '{}' of the client assertion is not this token endpoint \
                 (expected a value ending in '{}').",
                shown(aud),
                shown(&expected)
            ),
        ));
    }
    for claim in ["iss", "sub"] {
        if let Some(value) = claims[claim].as_str()
            && value != client_id
        {
            return Err(EntraError::bad_assertion(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter."
                    .to_string(),
            ));
        }
    }
    if let Some(exp) = claims["exp"].as_i64()
        && exp <= Utc::now().timestamp()
    {
        return Err(EntraError::bad_assertion(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, expiry \
                 time of assertion {exp}.",
                Utc::now().timestamp()
            ),
        ));
    }
    Ok(())
}

/// `client_id:secret` from an HTTP Basic `Authorization` header (RFC 6749 §2.3.1: both parts
/// form-urlencoded before joining).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// A value for a message: control characters removed, at most 200 characters.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// A random GUID, lowercase, hyphenated.
pub(crate) fn guid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Parses `application/x-www-form-urlencoded` (also a URL query): `+` is a space, `%XX` a byte.
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// One form-urlencoded value (`+` is a space, `%XX` a byte), as in HTTP Basic client credentials.
fn form_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Padding is written by nobody we simulate and accepted either way.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
/// Base64url, as in JWTs and the simulator's own tokens.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
/// Standard base64, as in HTTP Basic.
const BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);

/// Base64url without padding.
pub(crate) fn b64url_encode(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

/// Decodes base64url, padded or not; `None` on anything else.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    BASE64URL.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for text in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "contoso.onmicrosoft.com",
        ] {
            let encoded = b64url_encode(text.as_bytes());
            assert!(!encoded.contains('='));
            assert_eq!(b64url_decode(&encoded).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(b64url_decode("Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        assert_eq!(b64url_decode("a.b"), None);
    }

    #[test]
    fn forms_decode_plus_and_percent() {
        let form = parse_form(b"scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&a=b+c&d=%zz&e");
        assert_eq!(
            form,
            vec![
                (
                    "scope".to_string(),
                    "https://graph.microsoft.com/.default".to_string()
                ),
                ("a".to_string(), "b c".to_string()),
                ("d".to_string(), "%zz".to_string()),
                ("e".to_string(), String::new()),
            ]
        );
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
    }
}
