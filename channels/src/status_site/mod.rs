//! The `m365_status_site` channel: Microsoft's public backup status site, `status.cloud.microsoft`.
//!
//! The site is a single-page app whose HTML holds no data, so this channel never reads the page.
//! It reads the same unauthenticated endpoints the app does:
//!
//! - `/api/feed/mac`: RSS 2.0 whose single item carries a custom `<status>` element;
//! - `/api/posts/{mac,ppac,azure}`: one JSON post object each;
//! - `/api/posts/m365Consumer`: a JSON array with one post per consumer workload.
//!
//! `mac` (is the Microsoft 365 admin center and its Service health reachable?) is the reason this
//! channel exists, so it is read twice, from the feed and from the post, and must be confirmed by
//! both before it is called operational. A non-operational word from either is believed on its
//! own: it is never a false green. Any other endpoint's failure leaves its own services `unknown`
//! and is reported as a fault, while the rest of the observation stands.
//!
//! Status words arrive as display text (`Service restored`) or enum keys (`ServiceRestored`); both
//! are accepted with case and whitespace folded. Any other word is drift, never a guess. The
//! timestamp that says how fresh the data is, is `InternalDateTime`; `LastUpdatedTime` is the
//! server's request clock, and `0001-01-01` means unset.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ProbeError, humanize};
use crate::http::{Expect, Fetcher, json_kind};
use crate::model::{
    ChannelKind, Fault, Health, IncidentClassification, IncidentObservation, Observation,
    ServiceObservation, SharedText, incident_ids,
};
use crate::text::{html_to_text, shorten};
use crate::{BoxFuture, Channel};

/// The post endpoints the site serves (`/api/posts/{leaf}`); it answers 400 to any other leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostLeaf {
    /// Microsoft 365 admin center.
    Mac,
    /// Power Platform admin center.
    Ppac,
    /// Azure, as summarized on this site.
    Azure,
    /// Consumer workloads (Outlook.com, OneDrive, Teams Free, …).
    M365Consumer,
}

impl PostLeaf {
    /// Every leaf, in the order the site's app asks for them.
    pub const ALL: [PostLeaf; 4] = [
        PostLeaf::Mac,
        PostLeaf::Ppac,
        PostLeaf::Azure,
        PostLeaf::M365Consumer,
    ];

    /// The path leaf as the site spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PostLeaf::Mac => "mac",
            PostLeaf::Ppac => "ppac",
            PostLeaf::Azure => "azure",
            PostLeaf::M365Consumer => "m365Consumer",
        }
    }

    /// Parses a configured leaf (exact spelling, as in the URL).
    pub fn parse(leaf: &str) -> Option<PostLeaf> {
        PostLeaf::ALL.into_iter().find(|l| l.as_str() == leaf)
    }

    /// The service this leaf reports on (for the consumer leaf, the placeholder used while the
    /// workload list itself is unavailable).
    fn service(self) -> (&'static str, &'static str) {
        match self {
            PostLeaf::Mac => (ADMIN_CENTER, "Microsoft 365 admin center"),
            PostLeaf::Ppac => ("ppac", "Power Platform admin center"),
            PostLeaf::Azure => ("azure", "Azure (status site summary)"),
            PostLeaf::M365Consumer => ("m365Consumer", "Microsoft 365 consumer services"),
        }
    }
}

impl fmt::Display for PostLeaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service id of the Microsoft 365 admin center, the admin plane every target reports.
pub const ADMIN_CENTER: &str = "mac";

/// Settings of one status-site channel.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSiteConfig {
    /// Scheme and host (and optional path prefix), e.g. `https://status.cloud.microsoft`.
    pub base_url: String,
    /// Which `/api/posts/{leaf}` endpoints to read; `mac` is always read.
    pub posts: Vec<PostLeaf>,
    /// When set, an admin-center post whose `InternalDateTime` is older than this is drift (a
    /// frozen endpoint repeating "Available" is as misleading as silence). Off by default because
    /// Microsoft documents no refresh cadence.
    pub max_source_age: Option<Duration>,
}

/// A configured status-site channel.
#[derive(Debug)]
pub struct StatusSite {
    id: String,
    base: String,
    posts: Vec<PostLeaf>,
    max_source_age: Option<Duration>,
    fetcher: Fetcher,
}

impl StatusSite {
    /// Builds the channel, refusing a base URL that is not absolute http(s) (see
    /// [`crate::http::base_url`]).
    pub fn new(
        id: impl Into<String>,
        config: StatusSiteConfig,
        fetcher: Fetcher,
    ) -> Result<Self, ProbeError> {
        crate::http::base_url("base_url", &config.base_url)?;
        let mut posts = vec![PostLeaf::Mac];
        for leaf in config.posts {
            if !posts.contains(&leaf) {
                posts.push(leaf);
            }
        }
        Ok(StatusSite {
            id: id.into(),
            base: config.base_url.trim_end_matches('/').to_string(),
            posts,
            max_source_age: config.max_source_age,
            fetcher,
        })
    }

    async fn fetch(&self, path: String, expect: Expect) -> Result<Vec<u8>, ProbeError> {
        let url = format!("{}{path}", self.base);
        let what = format!("GET {path}");
        self.fetcher.get(&url, &what, expect).await
    }
}

impl Channel for StatusSite {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::M365StatusSite
    }

    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>> {
        Box::pin(async move {
            let feed = self.fetch("/api/feed/mac".to_string(), Expect::Xml);
            let posts = futures_util::future::join_all(self.posts.iter().map(|&leaf| async move {
                (
                    leaf,
                    self.fetch(format!("/api/posts/{leaf}"), Expect::Json).await,
                )
            }));
            let (feed_mac, posts) = tokio::join!(feed, posts);
            let responses = SiteResponses { feed_mac, posts };
            assemble(
                &self.id,
                &responses,
                crate::clock::now(),
                self.max_source_age,
            )
        })
    }
}

/// The raw answers of one probe, as they came back from the HTTP layer (gated, not parsed).
#[derive(Debug, Clone)]
pub struct SiteResponses {
    /// `/api/feed/mac`.
    pub feed_mac: Result<Vec<u8>, ProbeError>,
    /// `/api/posts/{leaf}` for each configured leaf.
    pub posts: Vec<(PostLeaf, Result<Vec<u8>, ProbeError>)>,
}

/// Turns one probe's answers into an observation. Pure: all the channel's judgement lives here,
/// so every hostile case can be tested from bytes.
///
/// Fails as a whole when the admin center cannot be determined; any other broken part becomes a
/// [`Fault`] and leaves its services `unknown`.
pub fn assemble(
    channel: &str,
    responses: &SiteResponses,
    now: DateTime<Utc>,
    max_source_age: Option<Duration>,
) -> Result<Observation, ProbeError> {
    let mut observation = Observation {
        channel: channel.to_string(),
        observed_at: now,
        source_time: None,
        services: Vec::new(),
        incidents: Vec::new(),
        faults: Vec::new(),
        digest: digest(responses),
    };

    let mac_post = responses
        .posts
        .iter()
        .find(|(leaf, _)| *leaf == PostLeaf::Mac)
        .map(|(_, body)| {
            body.clone()
                .and_then(|b| parse_post(&b, "GET /api/posts/mac"))
        })
        .unwrap_or_else(|| Err(ProbeError::drift("GET /api/posts/mac", "not requested")));
    let feed = responses
        .feed_mac
        .clone()
        .and_then(|b| parse_feed(&b, "GET /api/feed/mac"));
    let mac = admin_center(feed, mac_post, now, max_source_age)?;
    observation.source_time = mac.source_time;
    observation.faults.extend(mac.faults);
    observation.incidents.extend(mac.incident);
    observation.services.push(mac.service);

    for (leaf, body) in &responses.posts {
        let what = format!("GET /api/posts/{leaf}");
        match leaf {
            PostLeaf::Mac => {}
            PostLeaf::Ppac | PostLeaf::Azure => {
                match body.clone().and_then(|b| parse_post(&b, &what)) {
                    Ok(post) => match single_service(*leaf, &post, &what, now) {
                        Ok((service, incident)) => {
                            observation.services.push(service);
                            observation.incidents.extend(incident);
                        }
                        Err(error) => fault(&mut observation, *leaf, error),
                    },
                    Err(error) => fault(&mut observation, *leaf, error),
                }
            }
            PostLeaf::M365Consumer => match body.clone().and_then(|b| parse_consumer(&b, &what)) {
                Ok(entries) => consumer(&mut observation, &entries, &what, now),
                Err(error) => fault(&mut observation, *leaf, error),
            },
        }
    }
    Ok(observation)
}

/// Records a failed leaf: its service is listed as `unknown` so it never vanishes into green.
fn fault(observation: &mut Observation, leaf: PostLeaf, error: ProbeError) {
    let (id, name) = leaf.service();
    observation.services.push(unknown_service(id, name, &error));
    observation.faults.push(Fault {
        services: vec![id.to_string()],
        error,
    });
}

fn unknown_service(id: &str, name: &str, error: &ProbeError) -> ServiceObservation {
    ServiceObservation {
        id: id.to_string(),
        name: name.to_string(),
        health: Health::Unknown,
        status_text: String::new(),
        as_of: None,
        message: Some(format!("no usable answer: {error}")),
        incidents: Vec::new(),
    }
}

struct AdminCenter {
    service: ServiceObservation,
    incident: Option<IncidentObservation>,
    source_time: Option<DateTime<Utc>>,
    faults: Vec<Fault>,
}

/// Decides the admin center from the feed and the post.
///
/// Operational needs both views to answer and agree; a non-operational word from either view is
/// believed alone (and the other view's failure is kept as a fault). Everything else fails the
/// probe with the first view's error, so the channel shows as failing with its class.
fn admin_center(
    feed: Result<FeedItem, ProbeError>,
    post: Result<Post, ProbeError>,
    now: DateTime<Utc>,
    max_source_age: Option<Duration>,
) -> Result<AdminCenter, ProbeError> {
    let (id, name) = PostLeaf::Mac.service();
    let feed = feed.and_then(|item| {
        let health = site_health(&item.status, "GET /api/feed/mac")?;
        Ok((health, item))
    });
    let post = post.and_then(|post| {
        let health = site_health(post.status.as_deref().unwrap_or(""), "GET /api/posts/mac")?;
        Ok((health, post))
    });
    let post_time = post.as_ref().ok().and_then(|(_, p)| p.internal_time());
    let feed_time = feed.as_ref().ok().and_then(|(_, f)| f.pub_date);
    let source_time = post_time.or(feed_time);

    let mut faults = Vec::new();
    let (health, status_text, message, title, authored) = match (feed, post) {
        (Ok((fh, item)), Ok((ph, post))) => {
            let (health, word) = if ph.alarm_rank() >= fh.alarm_rank() {
                (ph, display_word(post.status.as_deref().unwrap_or_default()))
            } else {
                (fh, display_word(&item.status))
            };
            let mut message = post.message_text().or(item.description.clone());
            if fh != ph {
                let note = format!(
                    "the feed says {:?} and the post says {:?}; showing the worse",
                    display_word(&item.status),
                    display_word(post.status.as_deref().unwrap_or(""))
                );
                message = Some(match message {
                    Some(m) => format!("{note}. {m}"),
                    None => note,
                });
            }
            (
                health,
                word,
                message,
                post.title_text(),
                post.authored_time(),
            )
        }
        (Ok((fh, item)), Err(error)) if fh != Health::Operational => {
            faults.push(mac_fault(error));
            (
                fh,
                display_word(&item.status),
                item.description.clone(),
                None,
                None,
            )
        }
        (Err(error), Ok((ph, post))) if ph != Health::Operational => {
            faults.push(mac_fault(error));
            let word = display_word(post.status.as_deref().unwrap_or_default());
            (
                ph,
                word,
                post.message_text(),
                post.title_text(),
                post.authored_time(),
            )
        }
        (Err(feed_error), Err(post_error)) => {
            return Err(combine(feed_error, &post_error));
        }
        (Ok(_), Err(error)) => {
            // One view says Available, the other gave nothing usable: not enough for green.
            return Err(
                error.with_note("the feed alone says Available, which is not enough for green")
            );
        }
        (Err(error), Ok(_)) => {
            return Err(
                error.with_note("the post alone says Available, which is not enough for green")
            );
        }
    };

    if let (Some(max), Health::Operational) = (max_source_age, health) {
        let stamp = post_time
            .map(|t| (t, "InternalDateTime of GET /api/posts/mac"))
            .or(feed_time.map(|t| (t, "pubDate of GET /api/feed/mac")));
        check_source_age(stamp, now, max)?;
    }

    let text_for_ids = format!(
        "{} {}",
        title.as_deref().unwrap_or(""),
        message.as_deref().unwrap_or("")
    );
    let ids = incident_ids(&text_for_ids);
    let incident = (health != Health::Operational || title.is_some()).then(|| {
        incident_from(
            ids.first().cloned(),
            title
                .clone()
                .unwrap_or_else(|| format!("{name}: {status_text}")),
            id,
            health,
            &status_text,
            authored,
            source_time,
            message.clone(),
        )
    });
    Ok(AdminCenter {
        service: ServiceObservation {
            id: id.to_string(),
            name: name.to_string(),
            health,
            status_text,
            as_of: source_time.or(Some(now)),
            message,
            incidents: ids,
        },
        incident,
        source_time,
        faults,
    })
}

fn mac_fault(error: ProbeError) -> Fault {
    Fault {
        services: vec![ADMIN_CENTER.to_string()],
        error,
    }
}

/// Both views of the admin center failed: one error, of the feed's class, that says both.
fn combine(feed_error: ProbeError, post_error: &ProbeError) -> ProbeError {
    if feed_error == *post_error {
        return feed_error;
    }
    match (&feed_error, post_error) {
        (ProbeError::Drift { detail: feed, .. }, ProbeError::Drift { detail: post, .. }) => {
            ProbeError::Drift {
                what: "GET /api/feed/mac and GET /api/posts/mac".to_string(),
                detail: if feed == post {
                    feed.clone()
                } else {
                    format!("feed: {feed}; post: {post}")
                },
            }
        }
        (ProbeError::Timeout { after, .. }, ProbeError::Timeout { after: same, .. })
            if after == same =>
        {
            ProbeError::Timeout {
                what: "GET /api/feed/mac and GET /api/posts/mac".to_string(),
                after: *after,
            }
        }
        _ => feed_error.with_note(&format!("and {post_error}")),
    }
}

/// Checks the admin center's freshness stamp against `max_source_age`. Only a green verdict is
/// checked: bad news stays visible even when it is old.
fn check_source_age(
    stamp: Option<(DateTime<Utc>, &'static str)>,
    now: DateTime<Utc>,
    max: Duration,
) -> Result<(), ProbeError> {
    const SKEW: Duration = Duration::from_secs(3600);
    let Some((at, from)) = stamp else {
        return Err(ProbeError::drift(
            "GET /api/posts/mac and GET /api/feed/mac",
            format!(
                "max_source_age is {} but neither InternalDateTime nor pubDate gives a usable \
                 time: cannot tell how fresh the admin-center status is",
                humanize(max)
            ),
        ));
    };
    if (at - now).to_std().is_ok_and(|ahead| ahead > SKEW) {
        return Err(ProbeError::drift(
            from,
            format!("the freshness stamp {} is in the future", at.to_rfc3339()),
        ));
    }
    let age = (now - at).to_std().unwrap_or(Duration::ZERO);
    if age > max {
        return Err(ProbeError::drift(
            from,
            format!(
                "the admin-center status was last refreshed {} ago ({}), beyond max_source_age \
                 {}: the endpoint may be frozen",
                humanize(Duration::from_secs(age.as_secs())),
                at.to_rfc3339(),
                humanize(max)
            ),
        ));
    }
    Ok(())
}

/// A status word as we keep it for display: trimmed and at most 100 characters.
fn display_word(word: &str) -> String {
    shorten(word.trim(), 100)
}

#[allow(clippy::too_many_arguments)]
fn incident_from(
    id: Option<String>,
    title: String,
    service: &str,
    health: Health,
    status: &str,
    started_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    summary: Option<String>,
) -> IncidentObservation {
    IncidentObservation {
        id,
        title: title.into(),
        service: Some(service.to_string()),
        classification: match health {
            Health::Incident => IncidentClassification::Incident,
            Health::Advisory => IncidentClassification::Advisory,
            _ => IncidentClassification::Unknown,
        },
        status: status.to_string(),
        resolved: health == Health::Operational,
        started_at,
        updated_at,
        summary: summary.map(SharedText::from),
    }
}

/// A `ppac` or `azure` post.
fn single_service(
    leaf: PostLeaf,
    post: &Post,
    what: &str,
    now: DateTime<Utc>,
) -> Result<(ServiceObservation, Option<IncidentObservation>), ProbeError> {
    let (id, name) = leaf.service();
    service_from_post(id, name, post, what, now)
}

fn service_from_post(
    id: &str,
    name: &str,
    post: &Post,
    what: &str,
    now: DateTime<Utc>,
) -> Result<(ServiceObservation, Option<IncidentObservation>), ProbeError> {
    let Some(raw_word) = post.status.as_deref() else {
        return Err(ProbeError::drift(what, "no Status field"));
    };
    let health = site_health(raw_word, what)?;
    let word = display_word(raw_word);
    let title = post.title_text();
    let message = post.message_text();
    let ids = incident_ids(&format!(
        "{} {}",
        title.as_deref().unwrap_or(""),
        message.as_deref().unwrap_or("")
    ));
    let as_of = post.internal_time().or(Some(now));
    let incident = (health != Health::Operational || title.is_some()).then(|| {
        incident_from(
            ids.first().cloned(),
            title.clone().unwrap_or_else(|| format!("{name}: {word}")),
            id,
            health,
            &word,
            post.authored_time(),
            post.internal_time().or(post.updated_time()),
            message.clone(),
        )
    });
    Ok((
        ServiceObservation {
            id: id.to_string(),
            name: name.to_string(),
            health,
            status_text: word,
            as_of,
            message,
            incidents: ids,
        },
        incident,
    ))
}

/// The consumer workloads. Each entry stands alone: a broken entry is a fault for that workload.
/// A workload listed twice with different words is unknown: we will not pick the friendlier one.
fn consumer(
    observation: &mut Observation,
    entries: &[ConsumerEntry],
    what: &str,
    now: DateTime<Utc>,
) {
    let first_consumer = observation.services.len();
    for (index, entry) in entries.iter().enumerate() {
        let (placeholder, placeholder_name) = PostLeaf::M365Consumer.service();
        let workload = match entry {
            Ok(post) => post.service_workload_name.as_deref(),
            Err((workload, _)) => workload.as_deref(),
        }
        .map(str::trim)
        .filter(|s| !s.is_empty());
        let (id, name, statement) = match (workload, entry) {
            (None, _) => {
                let error = match entry {
                    Err((_, error)) => error.clone(),
                    Ok(_) => ProbeError::drift(
                        what,
                        format!(
                            "entry {index} has no ServiceWorkloadName; cannot tell which service it is"
                        ),
                    ),
                };
                (placeholder, placeholder_name, Err(error))
            }
            (Some(id), Err((_, error))) => (id, id, Err(error.clone())),
            (Some(id), Ok(post)) => {
                let name = post
                    .service_display_name
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(id);
                let what = format!("{what}, workload {id}");
                (id, name, service_from_post(id, name, post, &what, now))
            }
        };
        let existing = observation.services[first_consumer..]
            .iter()
            .position(|s| s.id == id)
            .map(|p| p + first_consumer);
        let collides = observation.services[..first_consumer]
            .iter()
            .any(|s| s.id == id);
        match (statement, existing) {
            (Ok((service, _)), Some(at)) => {
                let before = &observation.services[at];
                if before.health != Health::Unknown && before.status_text != service.status_text {
                    let error = ProbeError::drift(
                        what,
                        format!(
                            "workload {id} is listed more than once, as {:?} and {:?}",
                            before.status_text, service.status_text
                        ),
                    );
                    observation.services[at] = unknown_service(id, name, &error);
                    observation.faults.push(Fault {
                        services: vec![id.to_string()],
                        error,
                    });
                }
            }
            (Ok(_), None) if collides => {
                let error = ProbeError::drift(
                    what,
                    format!("workload {id:?} collides with a service of another endpoint; ignored"),
                );
                observation.faults.push(Fault {
                    services: vec![id.to_string()],
                    error,
                });
            }
            (Ok((service, incident)), None) => {
                observation.services.push(service);
                observation.incidents.extend(incident);
            }
            (Err(_), Some(_)) if id == placeholder => {
                // Several unnamed entries: the placeholder already says the list is broken.
            }
            (Err(error), existing) => {
                let unknown = unknown_service(id, name, &error);
                match existing {
                    Some(at) => observation.services[at] = unknown,
                    None if collides => {}
                    None => observation.services.push(unknown),
                }
                observation.faults.push(Fault {
                    services: vec![id.to_string()],
                    error,
                });
            }
        }
    }
}

/// Maps a status word to health. Accepts the site's display strings and enum keys, and the
/// Service health status names Microsoft documents for tenant issues, with case, whitespace,
/// hyphens and underscores folded. Anything else, including the site's own "Unknown", is drift:
/// it is not a statement we can act on.
pub fn site_health(word: &str, what: &str) -> Result<Health, ProbeError> {
    let folded: String = word
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    let health = match folded.as_str() {
        "available"
        | "operational"
        | "serviceoperational"
        | "servicerestored"
        | "falsepositive"
        | "postincidentreportpublished"
        | "postincidentreviewpublished" => Health::Operational,
        "servicedegradation"
        | "investigating"
        | "restoringservice"
        | "verifyingservice"
        | "extendedrecovery"
        | "investigationsuspended" => Health::Advisory,
        "serviceinterruption" => Health::Incident,
        "" => return Err(ProbeError::drift(what, "the status is empty")),
        "unknown" => {
            return Err(ProbeError::drift(
                what,
                "the site itself reports status \"Unknown\": no statement to act on",
            ));
        }
        _ => {
            let shown: String = word.chars().take(80).collect();
            return Err(ProbeError::drift(
                what,
                format!("unknown status word {shown:?}; not treating it as any health"),
            ));
        }
    };
    Ok(health)
}

/// One post of `/api/posts/{leaf}`. Unknown fields are ignored; every field may be null.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Post {
    /// The post's GUID (equals the feed item's `guid`); null on some leaves.
    pub id: Option<String>,
    /// When the post was written.
    pub authored_date_time: Option<String>,
    /// The real upstream refresh stamp.
    pub internal_date_time: Option<String>,
    /// The server's request clock on `mac`; a per-entry update time on consumer entries.
    pub last_updated_time: Option<String>,
    /// Often empty.
    pub title: Option<String>,
    /// Vendor HTML.
    pub message: Option<String>,
    /// The status display string.
    pub status: Option<String>,
    /// Consumer entries only.
    pub service_display_name: Option<String>,
    /// Consumer entries only: the stable workload id.
    pub service_workload_name: Option<String>,
}

impl Post {
    fn internal_time(&self) -> Option<DateTime<Utc>> {
        self.internal_date_time.as_deref().and_then(parse_time)
    }
    fn authored_time(&self) -> Option<DateTime<Utc>> {
        self.authored_date_time.as_deref().and_then(parse_time)
    }
    fn updated_time(&self) -> Option<DateTime<Utc>> {
        self.last_updated_time.as_deref().and_then(parse_time)
    }
    fn title_text(&self) -> Option<String> {
        self.title
            .as_deref()
            .map(html_to_text)
            .filter(|t| !t.is_empty())
    }
    fn message_text(&self) -> Option<String> {
        self.message
            .as_deref()
            .map(html_to_text)
            .filter(|t| !t.is_empty())
    }
}

/// Parses one post object and insists it carries a status.
pub fn parse_post(body: &[u8], what: &str) -> Result<Post, ProbeError> {
    let value: serde_json::Value = serde_json::from_slice(strip_bom(body))
        .map_err(|e| ProbeError::drift(what, format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ProbeError::drift(
            what,
            format!("expected a JSON object, got {}", json_kind(&value)),
        ));
    }
    let post: Post = serde_json::from_value(value)
        .map_err(|e| ProbeError::drift(what, format!("unexpected post shape: {e}")))?;
    if post.status.is_none() {
        return Err(ProbeError::drift(what, "the post has no Status field"));
    }
    Ok(post)
}

/// One entry of the consumer array: a post, or why it is unusable (with the workload it names,
/// when it names one).
pub type ConsumerEntry = Result<Post, (Option<String>, ProbeError)>;

/// Parses the consumer array. The array itself must be there and non-empty (the site always lists
/// its workloads); each entry then stands alone, so one malformed entry is a fault for its own
/// workload and not for the rest.
pub fn parse_consumer(body: &[u8], what: &str) -> Result<Vec<ConsumerEntry>, ProbeError> {
    let value: serde_json::Value = serde_json::from_slice(strip_bom(body))
        .map_err(|e| ProbeError::drift(what, format!("not valid JSON: {e}")))?;
    let serde_json::Value::Array(items) = value else {
        return Err(ProbeError::drift(
            what,
            format!(
                "expected a JSON array of workloads, got {}",
                json_kind(&value)
            ),
        ));
    };
    if items.is_empty() {
        return Err(ProbeError::drift(what, "the workload list is empty"));
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let workload = item
                .get("ServiceWorkloadName")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            if !item.is_object() {
                let error = ProbeError::drift(
                    what,
                    format!("entry {i} is {}, not an object", json_kind(&item)),
                );
                return Err((workload, error));
            }
            serde_json::from_value::<Post>(item)
                .map_err(|e| (workload, ProbeError::drift(what, format!("entry {i}: {e}"))))
        })
        .collect())
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(body)
}

/// The un-namespaced child elements called `name`: RSS 2.0's own elements (and the site's
/// `<status>`) have no namespace, so an `a10:status` or any other namespace's element is not them.
fn children<'a, 'input: 'a>(
    node: roxmltree::Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'input>> + 'a {
    node.children().filter(move |n| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace().is_none()
    })
}

fn child<'a, 'input: 'a>(
    node: roxmltree::Node<'a, 'input>,
    name: &'a str,
) -> Option<roxmltree::Node<'a, 'input>> {
    children(node, name).next()
}

/// The first item of `/api/feed/mac` (feeds list the newest first; the site serves one).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// The item's `guid` (the post `Id`).
    pub guid: Option<String>,
    /// The text of the custom `<status>` element.
    pub status: String,
    /// The description as plain text.
    pub description: Option<String>,
    /// `pubDate`.
    pub pub_date: Option<DateTime<Utc>>,
}

/// Parses the RSS feed. Only the `<status>` element of the first item decides anything; the word
/// "Available" in prose elsewhere means nothing.
pub fn parse_feed(body: &[u8], what: &str) -> Result<FeedItem, ProbeError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ProbeError::drift(what, format!("not UTF-8: {e}")))?;
    let text = text.trim_start_matches('\u{feff}');
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| ProbeError::drift(what, format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "rss" {
        return Err(ProbeError::drift(
            what,
            format!(
                "not an RSS feed (root element <{}>)",
                root.tag_name().name()
            ),
        ));
    }
    let channel =
        child(root, "channel").ok_or_else(|| ProbeError::drift(what, "<rss> without <channel>"))?;
    let item = child(channel, "item").ok_or_else(|| {
        ProbeError::drift(
            what,
            "the feed has no items; its structure may have changed",
        )
    })?;
    let statuses: Vec<_> = children(item, "status").collect();
    let status = match statuses.as_slice() {
        [] => return Err(ProbeError::drift(what, "the item has no <status> element")),
        [one] => *one,
        more => {
            return Err(ProbeError::drift(
                what,
                format!(
                    "the item has {} <status> elements; expected one",
                    more.len()
                ),
            ));
        }
    };
    let text_of = |name: &str| {
        child(item, name)
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    Ok(FeedItem {
        guid: text_of("guid"),
        status: status.text().unwrap_or("").trim().to_string(),
        description: text_of("description")
            .map(|d| html_to_text(&d))
            .filter(|d| !d.is_empty()),
        pub_date: text_of("pubDate").as_deref().and_then(parse_rss_date),
    })
}

/// Parses an ISO-8601 timestamp with offset (up to 7 fractional digits occur); the `0001-01-01`
/// sentinel and anything unparseable are `None`.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(value.trim())
        .ok()?
        .with_timezone(&Utc);
    (at.timestamp() > 0).then_some(at)
}

/// Parses an RSS date; the site writes the zone as a literal `Z` (`Sat, 01 Aug 2026 00:05:00 Z`).
pub fn parse_rss_date(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    let normalized = match value.strip_suffix(" Z") {
        Some(head) => format!("{head} +0000"),
        None => value.to_string(),
    };
    DateTime::parse_from_rfc2822(&normalized)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn digest(responses: &SiteResponses) -> String {
    let mut hasher = Sha256::new();
    let mut part = |name: &str, body: &Result<Vec<u8>, ProbeError>| {
        hasher.update(name.as_bytes());
        match body {
            Ok(bytes) => hasher.update(bytes),
            Err(error) => hasher.update(error.to_string().as_bytes()),
        }
    };
    part("feed/mac", &responses.feed_mac);
    for (leaf, body) in &responses.posts {
        part(leaf.as_str(), body);
    }
    format!("{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests;
