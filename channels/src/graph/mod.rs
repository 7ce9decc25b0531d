//! The `graph` channel: Microsoft Graph service health (`admin/serviceAnnouncement`) of one
//! tenant, read with an app-only token. It is the primary channel: the tenant's own view of the
//! services it subscribes to, with Microsoft's issue ids, classifications and posts.
//!
//! One probe is: a token (cached, see [`auth`]), then `healthOverviews` and `issues`, each
//! followed through `@odata.nextLink` to its end. Parsing and judgement are pure functions over
//! bytes ([`parse_overviews`], [`parse_issues_page`], [`assemble`]); this module only does the
//! I/O and the rules that protect the tenant's request budget:
//!
//! - after a 429 (or a 503 with `Retry-After`) no request goes to Graph until the wait is over;
//! - a local budget ([`budget`]) keeps the channel under Microsoft's 240/min and 800/h limit, so
//!   it never earns a 429 on its own;
//! - a `nextLink` to any host other than `graph_url` is refused (our bearer token goes only to
//!   Graph), as are page loops and more than [`MAX_PAGES`] pages.
//!
//! `authority` and `graph_url` are used everywhere (token URL, scope, API root, the nextLink
//! check), so a national cloud or the simulator is a matter of configuration.

pub mod auth;
pub mod budget;
mod parse;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

pub use parse::{
    Collected, IssueEntry, Page, RECENTLY_RESOLVED, ServiceHealthEntry, Status, assemble, digest,
    overview_health, parse_issues_page, parse_overviews,
};

use crate::error::{ProbeError, humanize};
use crate::http::{Expect, Fetcher, base_url};
use crate::model::{ChannelKind, Observation};
use crate::{BoxFuture, Channel};
use auth::{Signer, TokenSource};
use budget::RequestBudget;

/// The worldwide identity platform.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The worldwide Graph root.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// The most pages one collection may take; more is drift (Graph pages issues by up to 1000).
pub const MAX_PAGES: usize = 50;
/// The page size asked for issues (`Prefer: odata.maxpagesize`), Graph's maximum, so a probe
/// needs as few requests of the hourly budget as possible. Issues with posts are large: give
/// this channel's [`Fetcher`] a `max_body` of several MiB.
pub const ISSUES_PAGE_SIZE: u32 = 1000;

const OVERVIEWS_PATH: &str = "/admin/serviceAnnouncement/healthOverviews";
const ISSUES_PATH: &str = "/admin/serviceAnnouncement/issues";

/// Settings of one Graph channel (one tenant).
#[derive(Debug)]
pub struct GraphConfig {
    /// The tenant: a GUID or a domain, e.g. `contoso.onmicrosoft.com`.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// How the app proves its identity.
    pub credential: Credential,
    /// The identity platform, default [`DEFAULT_AUTHORITY`]; the token URL is
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority: String,
    /// The Graph root, default [`DEFAULT_GRAPH_URL`]; the API root is `{graph_url}/v1.0` and the
    /// scope `{graph_url}/.default`.
    pub graph_url: String,
    /// The local request budget.
    pub budget: Budget,
}

/// An app credential. `Debug` never shows the secret or the key.
#[derive(Clone)]
pub enum Credential {
    /// A client secret (its value, not its id).
    Secret(SecretString),
    /// A certificate uploaded to the app registration, and its RSA private key (unencrypted
    /// PKCS#1 or PKCS#8 PEM).
    Certificate {
        /// The certificate, PEM (the first `CERTIFICATE` block is used).
        certificate_pem: String,
        /// The private key, PEM.
        private_key_pem: SecretString,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret([REDACTED])"),
            Credential::Certificate {
                certificate_pem, ..
            } => f
                .debug_struct("Certificate")
                .field(
                    "certificate_pem",
                    &format_args!("<{} bytes>", certificate_pem.len()),
                )
                .field("private_key_pem", &format_args!("[REDACTED]"))
                .finish(),
        }
    }
}

/// The local request budget per tenant, in Microsoft's two windows. The defaults are Microsoft's
/// own limit for service communications (240 per 60 s and 800 per hour per app per tenant);
/// lower them when several apps or tools share one app registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests in any 60-second window.
    pub per_minute: NonZeroU32,
    /// Requests in any hour.
    pub per_hour: NonZeroU32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_minute: NonZeroU32::new(240).unwrap_or(NonZeroU32::MIN),
            per_hour: NonZeroU32::new(800).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// A configured Graph channel.
#[derive(Debug)]
pub struct Graph {
    id: String,
    tenant_id: String,
    api_root: String,
    graph_origin: reqwest::Url,
    auth: TokenSource,
    budget: RequestBudget,
    /// No request to Graph before this instant (a `Retry-After` we were given).
    not_before: Mutex<Option<Instant>>,
    fetcher: Fetcher,
}

impl Graph {
    /// Builds the channel: checks the URLs (absolute http(s)), the tenant and client ids, and
    /// loads the credential, so a bad certificate or key fails here, at startup, with a message
    /// that names the problem and never the key.
    ///
    /// The fetcher's `max_body` applies to each page; pages of [`ISSUES_PAGE_SIZE`] issues with
    /// their posts can run to several MiB.
    pub fn new(
        id: impl Into<String>,
        config: GraphConfig,
        fetcher: Fetcher,
    ) -> Result<Self, ProbeError> {
        let config_error = |message: String| ProbeError::Config {
            message: format!("graph: {message}"),
        };
        let authority = base_url("authority", &config.authority)?;
        let graph = base_url("graph_url", &config.graph_url)?;
        let tenant = config.tenant_id.trim();
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(config_error(format!(
                "tenant_id {:?} must be a tenant GUID or domain (e.g. contoso.onmicrosoft.com)",
                config.tenant_id
            )));
        }
        let client_id = config.client_id.trim();
        if client_id.is_empty() || client_id.chars().any(char::is_whitespace) {
            return Err(config_error(format!(
                "client_id {:?} must be the app registration's application (client) id",
                config.client_id
            )));
        }
        let signer = match &config.credential {
            Credential::Secret(secret) => {
                if secret.expose_secret().trim().is_empty() {
                    return Err(config_error("the client secret is empty".to_string()));
                }
                Signer::Secret(secret.clone())
            }
            Credential::Certificate {
                certificate_pem,
                private_key_pem,
            } => Signer::certificate(certificate_pem, private_key_pem)?,
        };
        let graph_root = graph.as_str().trim_end_matches('/').to_string();
        let token_url = format!(
            "{}/{tenant}/oauth2/v2.0/token",
            authority.as_str().trim_end_matches('/')
        );
        let scope = format!("{graph_root}/.default");
        Ok(Graph {
            id: id.into(),
            tenant_id: tenant.to_string(),
            api_root: format!("{graph_root}/v1.0"),
            graph_origin: graph,
            auth: TokenSource::new(token_url, scope, client_id.to_string(), signer),
            budget: RequestBudget::new(config.budget),
            not_before: Mutex::new(None),
            fetcher,
        })
    }

    /// The tenant this channel reads.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    async fn run(&self) -> Result<Observation, ProbeError> {
        self.gate()?;
        let bearer = self.auth.bearer(&self.fetcher).await?;
        let token = &bearer.token;
        let overviews = match self
            .collect(OVERVIEWS_PATH, token, None, parse_overviews)
            .await
        {
            Ok(pages) => pages,
            Err(error) => return Err(self.after_failure(error, bearer.generation).await),
        };
        let issues = match self
            .collect(
                ISSUES_PATH,
                token,
                Some(ISSUES_PAGE_SIZE),
                parse_issues_page,
            )
            .await
        {
            Ok(pages) => Ok(pages),
            Err(error) => Err(self.after_failure(error, bearer.generation).await),
        };
        let raw = overviews
            .1
            .iter()
            .map(|b| ("healthOverviews", b.as_slice()));
        let digest = match &issues {
            Ok((_, pages)) => digest(raw.chain(pages.iter().map(|b| ("issues", b.as_slice())))),
            Err(error) => {
                let said = error.to_string();
                digest(raw.chain([("issues-error", said.as_bytes())]))
            }
        };
        let collected = Collected {
            overviews: overviews.0,
            issues: issues.map(|(items, _)| items),
            digest,
        };
        assemble(&self.id, collected, crate::clock::now())
    }

    /// Refuses to send anything while a `Retry-After` wait is running.
    fn gate(&self) -> Result<(), ProbeError> {
        let guard = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match *guard {
            Some(until) if now < until => {
                let wait = until - now;
                Err(ProbeError::Throttled {
                    message: format!(
                        "Graph asked us to wait (Retry-After); waiting as asked: no request to \
                         Graph for another {}",
                        humanize(wait.max(Duration::from_millis(1)))
                    ),
                    retry_after: Some(wait),
                })
            }
            _ => Ok(()),
        }
    }

    /// Remembers a `Retry-After` (a 429, or a 503 that said when to come back).
    fn hold_off(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut guard = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none_or(|current| current < until) {
            *guard = Some(until);
        }
    }

    /// What a refused token means for the channel's state, and the error as shown.
    async fn after_failure(&self, error: ProbeError, generation: u64) -> ProbeError {
        match &error {
            ProbeError::Auth { message } => {
                self.auth.invalidate(generation).await;
                tracing::warn!(channel = %self.id, %error, "graph: token refused; dropped from the cache");
                if message.contains("HTTP 403") {
                    error.with_note(
                        "the app may lack the ServiceHealth.Read.All application permission or \
                         its admin consent; the cached token was dropped so the next probe signs \
                         in again and picks up a new grant",
                    )
                } else {
                    error.with_note(
                        "Graph refused the access token; the cached token was dropped and the \
                         next probe signs in again",
                    )
                }
            }
            _ => error,
        }
    }

    /// GETs a collection page by page: the first URL, then every `@odata.nextLink` (whole URL),
    /// each after the gate and the budget. Returns the items and the raw pages.
    async fn collect<T>(
        &self,
        path: &str,
        token: &SecretString,
        page_size: Option<u32>,
        parse: fn(&[u8], &str) -> Result<Page<T>, ProbeError>,
    ) -> Result<(Vec<T>, Vec<Vec<u8>>), ProbeError> {
        let mut url = format!("{}{path}", self.api_root);
        let mut seen: HashSet<String> = HashSet::new();
        let mut items = Vec::new();
        let mut pages = Vec::new();
        loop {
            let n = pages.len() + 1;
            let what = if n == 1 {
                format!("GET /v1.0{path}")
            } else {
                format!("GET /v1.0{path} (page {n})")
            };
            seen.insert(url.clone());
            let body = self.request(&url, &what, token, page_size).await?;
            let page = parse(&body, &what)?;
            items.extend(page.items);
            pages.push(body);
            match next_page(
                page.next_link.as_deref(),
                &self.graph_origin,
                &seen,
                pages.len(),
                &what,
            )? {
                Some(next) => url = next,
                None => return Ok((items, pages)),
            }
        }
    }

    async fn request(
        &self,
        url: &str,
        what: &str,
        token: &SecretString,
        page_size: Option<u32>,
    ) -> Result<Vec<u8>, ProbeError> {
        self.gate()?;
        self.budget.take()?;
        let mut headers = HeaderMap::new();
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                ProbeError::drift(
                    "token endpoint",
                    "the access token holds characters that cannot be sent in a header",
                )
            })?;
        bearer.set_sensitive(true);
        headers.insert(AUTHORIZATION, bearer);
        if let Some(size) = page_size
            && let Ok(prefer) = HeaderValue::from_str(&format!("odata.maxpagesize={size}"))
        {
            headers.insert("prefer", prefer);
        }
        let error = match self
            .fetcher
            .get_with_headers(url, what, Expect::Json, headers)
            .await
        {
            Ok(body) => return Ok(body),
            Err(error) => error,
        };
        // Graph's own "slow down" (not our local budget, which never reaches this point).
        Err(match &error {
            ProbeError::Throttled {
                retry_after: Some(wait),
                ..
            } => {
                let wait = *wait;
                self.hold_off(wait);
                error.with_note(&format!(
                    "no request goes to Graph for {} as asked",
                    humanize(wait)
                ))
            }
            ProbeError::Http {
                status: 503,
                retry_after: Some(wait),
                ..
            } => {
                let wait = *wait;
                self.hold_off(wait);
                error.with_note(&format!(
                    "Retry-After {}: no request goes to Graph until then",
                    humanize(wait)
                ))
            }
            _ => error,
        })
    }
}

/// Decides where paging goes next. `None` when there is no `nextLink`; drift for a link that is
/// not a URL, leaves `graph_url`'s scheme, host and port (our bearer token goes to Graph only),
/// repeats a page already fetched, or would exceed [`MAX_PAGES`].
pub fn next_page(
    next_link: Option<&str>,
    graph_origin: &reqwest::Url,
    seen: &HashSet<String>,
    pages_so_far: usize,
    what: &str,
) -> Result<Option<String>, ProbeError> {
    let Some(link) = next_link.map(str::trim).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(link).map_err(|e| {
        ProbeError::drift(
            what,
            format!("@odata.nextLink is not an absolute URL ({e})"),
        )
    })?;
    if url.scheme() != graph_origin.scheme()
        || url.host_str() != graph_origin.host_str()
        || url.port_or_known_default() != graph_origin.port_or_known_default()
    {
        return Err(ProbeError::drift(
            what,
            format!(
                "@odata.nextLink points to {}, not to graph_url {}; refusing to send the token \
                 there",
                crate::http::redact(&url),
                crate::http::redact(graph_origin)
            ),
        ));
    }
    if seen.contains(link) {
        return Err(ProbeError::drift(
            what,
            "@odata.nextLink repeats a page already fetched (a paging loop)",
        ));
    }
    if pages_so_far >= MAX_PAGES {
        return Err(ProbeError::drift(
            what,
            format!("more than {MAX_PAGES} pages; stopping (a paging loop or a runaway list)"),
        ));
    }
    Ok(Some(link.to_string()))
}

impl Channel for Graph {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Graph
    }

    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>> {
        Box::pin(self.run())
    }
}
