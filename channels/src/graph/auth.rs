//! App-only sign-in for Graph: the OAuth 2.0 client-credentials grant against the Microsoft
//! identity platform, with a client secret or a certificate (a PS256-signed JWT assertion).
//!
//! Hand-rolled rather than taken from an OAuth crate: the whole flow is one form POST, and doing
//! it here keeps it on the channel's [`Fetcher`] (same time limit, size cap and classification)
//! and keeps every secret behind [`SecretString`], out of logs, messages and `Debug`.
//!
//! Tokens are cached and renewed ahead of expiry from the `expires_in` Microsoft sends (lifetimes
//! are random between 60 and 90 minutes, so 3600 is never assumed). Renewal is single-flight: the
//! cache sits behind an async mutex that is held across the token request, so concurrent probes
//! wait for one request instead of each sending their own.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::error::{ProbeError, humanize};
use crate::http::{Expect, Fetcher, classify_status, gate};
use crate::text::shorten;

/// `client_assertion_type` of a certificate (JWT bearer) credential.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest token lifetime we believe. Entra ID issues 60–90 minutes; a day is already absurd
/// and more likely a unit mix-up or a broken proxy than a real lifetime.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How long a client assertion is valid: Microsoft accepts at most 10 minutes after `nbf`.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// How far `nbf` lies in the past, to tolerate a little clock skew with the identity platform.
const ASSERTION_SKEW: Duration = Duration::from_secs(60);

/// How to prove the app's identity, ready to use (the key parsed and checked at build time).
pub(crate) enum Signer {
    /// `client_secret`.
    Secret(SecretString),
    /// A certificate: the key that signs assertions and the certificate's SHA-256 thumbprint.
    Certificate {
        /// The RSA private key.
        key: EncodingKey,
        /// base64url(SHA-256(certificate DER)), the `x5t#S256` header.
        x5t_s256: String,
    },
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Secret(_) => f.write_str("Secret([REDACTED])"),
            Signer::Certificate { x5t_s256, .. } => f
                .debug_struct("Certificate")
                .field("x5t_s256", x5t_s256)
                .field("key", &"[REDACTED]")
                .finish(),
        }
    }
}

impl Signer {
    /// Loads a certificate credential: the first `CERTIFICATE` block of `certificate_pem` and an
    /// RSA private key (PKCS#1 or PKCS#8 PEM). Signs and verifies a test assertion, so a key that
    /// does not belong to the certificate fails here, at startup, and not at every probe.
    ///
    /// Errors name the problem, never the key's content.
    pub(crate) fn certificate(
        certificate_pem: &str,
        private_key_pem: &SecretString,
    ) -> Result<Signer, ProbeError> {
        let config = |message: String| ProbeError::Config {
            message: format!("graph certificate credential: {message}"),
        };
        let blocks = pem::parse_many(certificate_pem.as_bytes()).map_err(|e| {
            config(format!(
                "certificate_pem is not PEM ({e}); expected a \"-----BEGIN CERTIFICATE-----\" block"
            ))
        })?;
        let certificate = blocks
            .iter()
            .find(|block| block.tag() == "CERTIFICATE")
            .ok_or_else(|| {
                let tags: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
                config(format!(
                    "certificate_pem holds no CERTIFICATE block (found {tags:?}); a private key \
                     belongs in private_key_pem"
                ))
            })?;
        let x5t_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(certificate.contents()));
        let key_text = private_key_pem.expose_secret();
        if !key_text.contains("PRIVATE KEY-----") {
            return Err(config(
                "private_key_pem is not a PEM private key (expected \"-----BEGIN PRIVATE \
                 KEY-----\" or \"-----BEGIN RSA PRIVATE KEY-----\"; an encrypted key must be \
                 decrypted first)"
                    .to_string(),
            ));
        }
        let key = EncodingKey::from_rsa_pem(key_text.as_bytes()).map_err(|_| {
            config(
                "private_key_pem could not be read as an unencrypted RSA private key (PKCS#1 or \
                 PKCS#8 PEM); Graph certificate credentials must be RSA"
                    .to_string(),
            )
        })?;
        let signer = Signer::Certificate { key, x5t_s256 };
        // Prove the pair now: sign with the key, verify with the certificate's public key.
        let probe = signer
            .assertion("https://statusmon.invalid/token", "statusmon-self-test")
            .map_err(|_| {
                config(
                    "private_key_pem is not a usable RSA key (signing a test assertion failed)"
                        .to_string(),
                )
            })?;
        let public = DecodingKey::from_rsa_pem(certificate_pem.as_bytes())
            .map_err(|_| config("the certificate does not hold an RSA public key".to_string()))?;
        let mut validation = Validation::new(Algorithm::PS256);
        validation.set_audience(&["https://statusmon.invalid/token"]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        jsonwebtoken::decode::<serde_json::Value>(probe.expose_secret(), &public, &validation)
            .map_err(|_| {
                config(
                    "private_key_pem does not belong to the certificate in certificate_pem (a \
                     test assertion signed with the key does not verify with the certificate)"
                        .to_string(),
                )
            })?;
        Ok(signer)
    }

    /// A signed client assertion for `audience` (the token URL), or `None` for a secret.
    ///
    /// Claims: `aud` = token URL, `iss` = `sub` = client id, a random `jti`, `nbf` a minute ago
    /// (skew), `iat` now, `exp` 9 minutes from now (Microsoft allows at most 10 after `nbf`).
    pub(crate) fn assertion(
        &self,
        audience: &str,
        client_id: &str,
    ) -> Result<SecretString, ProbeError> {
        let Signer::Certificate { key, x5t_s256 } = self else {
            return Err(ProbeError::Config {
                message: "graph: a client-secret credential has no assertion".to_string(),
            });
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: random_uuid()?,
            nbf: (now.saturating_sub(ASSERTION_SKEW)).as_secs(),
            iat: now.as_secs(),
            exp: (now + ASSERTION_LIFETIME).as_secs(),
        };
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".to_string());
        header.x5t_s256 = Some(x5t_s256.clone());
        jsonwebtoken::encode(&header, &claims, key)
            .map(SecretString::from)
            .map_err(|e| ProbeError::Config {
                message: format!(
                    "graph certificate credential: cannot sign the client assertion ({:?})",
                    e.kind()
                ),
            })
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// A random (version 4) UUID, the `jti` Microsoft asks for.
fn random_uuid() -> Result<String, ProbeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ProbeError::Config {
        message: format!("graph: no randomness for the client assertion's jti ({e})"),
    })?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// A token as the identity platform granted it.
pub(crate) struct TokenGrant {
    /// The bearer token.
    pub access_token: SecretString,
    /// Its lifetime, as `expires_in` said.
    pub expires_in: Duration,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// When to renew a token of lifetime `life`: at 80 % of its life or 5 minutes before it ends,
/// whichever is sooner. A token shorter than 5 minutes is renewed at 80 %.
pub fn refresh_after(life: Duration) -> Duration {
    let at_80 = life.mul_f64(0.8);
    match life.checked_sub(Duration::from_secs(300)) {
        Some(before_end) if !before_end.is_zero() => at_80.min(before_end),
        _ => at_80,
    }
}

/// Reads the token endpoint's answer. Pure, so every refusal Microsoft can send is testable
/// from bytes.
///
/// - 2xx: must pass the JSON gate and carry a non-empty `access_token`, a `token_type` of
///   `Bearer` (when present) and an `expires_in` between 1 s and [`MAX_TOKEN_LIFETIME`]
///   (number or numeric string); anything else is drift.
/// - 429 and 5xx: classified as usual (throttled, http), with `Retry-After`.
/// - Other statuses with the OAuth error JSON: class `auth`, showing the `AADSTS…` code and the
///   first line of `error_description` (the rest is trace and correlation ids), plus a hint for
///   the codes an operator meets most. `redact` lists strings (the secret) that must never be
///   echoed even if the endpoint quoted them.
/// - Other statuses with HTML, text or JSON of another shape: drift (a proxy, a captive portal,
///   a wrong `authority`); an empty 401/403 is auth.
pub(crate) fn read_token_answer(
    status: u16,
    headers: &HeaderMap,
    media_type: Option<&str>,
    body: &[u8],
    what: &str,
    redact: &[&str],
) -> Result<TokenGrant, ProbeError> {
    let clean = |text: &str| {
        let mut text = text.to_string();
        for secret in redact.iter().filter(|s| s.len() >= 4) {
            text = text.replace(secret, "[REDACTED]");
        }
        text
    };
    if status == 429 || status >= 500 {
        return Err(classify_status(status, headers, what, crate::clock::now())
            .unwrap_or_else(|| ProbeError::drift(what, format!("HTTP {status}"))));
    }
    if (200..300).contains(&status) {
        gate(what, Expect::Json, media_type, body)?;
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ProbeError::drift(what, format!("token answer is not valid JSON: {e}")))?;
        return grant_from(&value, what);
    }
    let json = media_type.is_some_and(|m| m == "application/json" || m.ends_with("+json"));
    let parsed = json
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten();
    if let Some(error) = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.as_str())
    {
        let value = parsed.as_ref().unwrap_or(&serde_json::Value::Null);
        let description = value
            .get("error_description")
            .and_then(|d| d.as_str())
            .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(|d| shorten(&clean(d), 300));
        let code = value
            .get("error_codes")
            .and_then(|c| c.as_array())
            .and_then(|c| c.first())
            .and_then(|c| c.as_u64());
        let mut said = match (&description, code) {
            (Some(d), _) if d.starts_with("AADSTS") => d.clone(),
            (Some(d), Some(code)) => format!("AADSTS{code}: {d}"),
            (Some(d), None) => d.clone(),
            (None, Some(code)) => format!("AADSTS{code}"),
            (None, None) => "no error_description".to_string(),
        };
        said.push_str(&format!(" ({}, HTTP {status})", shorten(&clean(error), 60)));
        let code = code.or_else(|| {
            description.as_deref().and_then(|d| {
                d.strip_prefix("AADSTS")?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
        });
        let hint = code.and_then(aadsts_hint);
        return Err(ProbeError::Auth {
            message: match hint {
                Some(hint) => format!("{what}: sign-in refused: {said}; {hint}"),
                None => format!("{what}: sign-in refused: {said}"),
            },
        });
    }
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(error) = classify_status(status, headers, what, crate::clock::now())
    {
        return Err(error);
    }
    let shown = media_type.unwrap_or("no Content-Type");
    Err(ProbeError::drift(
        what,
        format!(
            "HTTP {status} with {shown} instead of the identity platform's OAuth error JSON (a \
             proxy, a captive portal or a wrong authority URL?)"
        ),
    ))
}

fn grant_from(value: &serde_json::Value, what: &str) -> Result<TokenGrant, ProbeError> {
    let Some(object) = value.as_object() else {
        return Err(ProbeError::drift(what, "token answer is not a JSON object"));
    };
    let token = object
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ProbeError::drift(
                what,
                "token answer has no access_token (HTTP 2xx without one)",
            )
        })?;
    if let Some(kind) = object.get("token_type")
        && !kind
            .as_str()
            .is_some_and(|k| k.eq_ignore_ascii_case("bearer"))
    {
        return Err(ProbeError::drift(
            what,
            format!(
                "token_type is {}, not Bearer",
                shorten(&kind.to_string(), 40)
            ),
        ));
    }
    let expires_in = match object.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(secs) = expires_in else {
        return Err(ProbeError::drift(
            what,
            "token answer has no numeric expires_in, so we cannot tell when to renew it (a \
             lifetime is never assumed)",
        ));
    };
    if !secs.is_finite() || secs < 1.0 || secs > MAX_TOKEN_LIFETIME.as_secs_f64() {
        return Err(ProbeError::drift(
            what,
            format!(
                "token answer says expires_in {secs}, not a lifetime we trust (1 s to {})",
                humanize(MAX_TOKEN_LIFETIME)
            ),
        ));
    }
    Ok(TokenGrant {
        access_token: SecretString::from(token.to_string()),
        expires_in: Duration::from_secs_f64(secs),
    })
}

/// What the common `AADSTS` codes mean for the operator.
fn aadsts_hint(code: u64) -> Option<&'static str> {
    Some(match code {
        7000215 => "the client secret is wrong: use the secret's Value, not its Secret ID",
        7000222 => "the client secret has expired: create a new one",
        65001 => "admin consent is missing: grant ServiceHealth.Read.All (application) consent",
        700016 => {
            "the app was not found in this tenant: check client_id and tenant_id, or consent a \
             multi-tenant app into the tenant"
        }
        90002 | 900023 => "the tenant was not found: check tenant_id and authority",
        700027 | 700024 => {
            "the certificate assertion was refused: is this certificate uploaded to the app \
             registration, and is the clock right?"
        }
        7000112 | 7000212 => "the app is disabled in this tenant",
        70011 => "the scope was refused: check graph_url",
        _ => return None,
    })
}

/// A token in the cache, with when to renew it and until when it is still good.
struct Cached {
    token: SecretString,
    refresh_at: Instant,
    expires_at: Instant,
    generation: u64,
}

/// A bearer token handed to a probe, with the cache generation it came from (so a 401 drops
/// this token and not a newer one).
pub(crate) struct Bearer {
    /// The token.
    pub token: SecretString,
    /// Which fetch produced it.
    pub generation: u64,
}

/// The token source of one channel: where and how to sign in, and the cache.
pub(crate) struct TokenSource {
    token_url: String,
    what: String,
    scope: String,
    client_id: String,
    signer: Signer,
    cache: tokio::sync::Mutex<(Option<Cached>, u64)>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub(crate) fn new(token_url: String, scope: String, client_id: String, signer: Signer) -> Self {
        let what = match reqwest::Url::parse(&token_url) {
            Ok(url) => format!("POST {}", crate::http::redact(&url)),
            Err(_) => "POST token endpoint".to_string(),
        };
        TokenSource {
            token_url,
            what,
            scope,
            client_id,
            signer,
            cache: tokio::sync::Mutex::new((None, 0)),
        }
    }

    /// A valid token: the cached one until its renewal time, otherwise a new one (one request,
    /// however many probes ask at once). If renewal fails while the cached token is still within
    /// its lifetime, the cached one is used and the failure logged.
    pub(crate) async fn bearer(&self, fetcher: &Fetcher) -> Result<Bearer, ProbeError> {
        let mut guard = self.cache.lock().await;
        let now = Instant::now();
        if let Some(cached) = guard.0.as_ref()
            && now < cached.refresh_at
        {
            return Ok(Bearer {
                token: cached.token.clone(),
                generation: cached.generation,
            });
        }
        match self.fetch(fetcher).await {
            Ok(grant) => {
                let generation = guard.1 + 1;
                guard.1 = generation;
                let now = Instant::now();
                tracing::debug!(
                    token_url = %self.what,
                    lifetime_s = grant.expires_in.as_secs(),
                    "graph: signed in; token cached"
                );
                guard.0 = Some(Cached {
                    token: grant.access_token.clone(),
                    refresh_at: now + refresh_after(grant.expires_in),
                    expires_at: now + grant.expires_in,
                    generation,
                });
                Ok(Bearer {
                    token: grant.access_token,
                    generation,
                })
            }
            Err(error) => match guard.0.as_ref() {
                Some(cached) if Instant::now() < cached.expires_at => {
                    tracing::warn!(%error, "graph: token renewal failed; the current token is still valid and is used");
                    Ok(Bearer {
                        token: cached.token.clone(),
                        generation: cached.generation,
                    })
                }
                _ => {
                    guard.0 = None;
                    Err(error)
                }
            },
        }
    }

    /// Drops the cached token if it is still the one of `generation` (Graph refused it).
    pub(crate) async fn invalidate(&self, generation: u64) -> bool {
        let mut guard = self.cache.lock().await;
        if guard.0.as_ref().is_some_and(|c| c.generation == generation) {
            guard.0 = None;
            return true;
        }
        false
    }

    async fn fetch(&self, fetcher: &Fetcher) -> Result<TokenGrant, ProbeError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("scope", &self.scope),
            ("grant_type", "client_credentials"),
        ];
        let assertion;
        let mut redact: Vec<&str> = Vec::new();
        match &self.signer {
            Signer::Secret(secret) => {
                form.push(("client_secret", secret.expose_secret()));
                redact.push(secret.expose_secret());
            }
            Signer::Certificate { .. } => {
                assertion = self.signer.assertion(&self.token_url, &self.client_id)?;
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", assertion.expose_secret()));
                redact.push(assertion.expose_secret());
            }
        }
        let answer = fetcher
            .post_form(&self.token_url, &self.what, Expect::Json, &form)
            .await?;
        read_token_answer(
            answer.status,
            &answer.headers,
            answer.media_type.as_deref(),
            &answer.body,
            &self.what,
            &redact,
        )
    }
}
