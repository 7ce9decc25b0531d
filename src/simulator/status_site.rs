//! Microsoft's public backup status site, `status.cloud.microsoft`.
//!
//! Serves what the real site serves, in the same shapes (see the channel
//! `statusmon_channels::status_site`):
//!
//! - `/api/feed/{mac,ppac}`: RSS 2.0 with one item and a custom `<status>` element, dates with a
//!   literal ` Z` zone, the message as escaped HTML in `<description>`;
//! - `/api/posts/{mac,ppac,azure}`: one JSON post object; `/api/posts/m365Consumer`: an array of
//!   consumer workloads; keys in PascalCase, in the site's order, .NET timestamps (up to 7
//!   fractional digits, `0001-01-01T00:00:00+00:00` for "unset");
//! - any other leaf: 400; `/api/posts` and every other path: 200 with the single-page app's HTML
//!   shell (the site is a React app with a catch-all route).
//!
//! Every payload is generated per request from the scenario and the clock; nothing is a recording.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use super::{Scenario, SimState};

/// The routes this upstream owns. Everything else falls through to [`app_shell`], which the
/// simulator installs as its catch-all.
pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .route("/api/feed/{leaf}", get(feed))
        .route("/api/posts/{leaf}", get(post))
        .route("/api/posts", get(app_shell))
}

/// The single-page app's HTML shell: what the site answers for its page and for any path its API
/// does not own. It carries no status data at all.
pub(crate) async fn app_shell() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'self'"),
        ],
        APP_SHELL,
    )
        .into_response()
}

const APP_SHELL: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8" />
    <meta http-equiv="X-UA-Compatible" content="IE=edge" />
    <meta name="viewport" content="width=device-width, initial-scale=1, shrink-to-fit=no" />
    <meta name="description" content="Microsoft 365 service status" />
    <meta name="theme-color" content="#0078d4" />
    <title>Microsoft 365 Service Status</title>
    <link rel="icon" type="image/x-icon" href="/favicon.ico" />
    <link rel="stylesheet" href="/dist/app.3b8e41d0c9a7f25e6d14.css" />
    <script type="text/javascript">
        window.azureStatusPageUrl = "https://azure.status.microsoft";
        window.azureRSSFeedLink = "https://rssfeed.azure.status.microsoft/en-us/status/feed/";
        window.adminPortalUrl = "https://portal.office.com";
        window.ppacPortalUrl = "https://admin.powerplatform.microsoft.com";
    </script>
</head>
<body>
    <noscript>You need to enable JavaScript to view Microsoft 365 service status.</noscript>
    <div id="root"></div>
    <script type="text/javascript" src="/dist/vendor.9c04e7b2a15d38f6e0a2.js"></script>
    <script type="text/javascript" src="/dist/app.3b8e41d0c9a7f25e6d14.js"></script>
</body>
</html>
"##;

const RSS: &str = "application/rss+xml; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
/// The site's own refresh stamp, echoed as a header on data answers.
const X_INTERNAL_DATE_TIME: HeaderName = HeaderName::from_static("x_internaldatetime");
/// The `<link>` the site writes into its feeds.
const SITE_LINK: &str = "https://status.cloud.microsoft/";
/// What `drift-unknown-status` writes where a status word belongs.
const UNKNOWN_WORD: &str = "Partially available";

/// The two admin portals that have both a feed and a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Portal {
    /// Microsoft 365 admin center.
    Mac,
    /// Power Platform admin center.
    Ppac,
}

impl Portal {
    fn parse(leaf: &str) -> Option<Portal> {
        match leaf {
            "mac" => Some(Portal::Mac),
            "ppac" => Some(Portal::Ppac),
            _ => None,
        }
    }

    fn channel_title(self) -> &'static str {
        match self {
            Portal::Mac => "Microsoft Admin Center Status",
            Portal::Ppac => "Power Platform Admin Center Status",
        }
    }

    fn item_title(self) -> &'static str {
        match self {
            Portal::Mac => "Microsoft Admin Center",
            Portal::Ppac => "Power Platform Admin Center",
        }
    }
}

async fn feed(State(state): State<SimState>, Path(leaf): Path<String>) -> Response {
    let scenario = state.scenario();
    if scenario == Scenario::DriftHtmlShell {
        return app_shell().await;
    }
    let Some(portal) = Portal::parse(&leaf) else {
        return unsupported(&leaf);
    };
    if scenario == Scenario::DriftEmptyBody {
        return data(RSS, String::new(), None);
    }
    let now = Utc::now();
    let post = portal_post(portal, scenario, now);
    let stamp = post.internal_date_time;
    data(RSS, rss(portal, &post, now), stamp)
}

async fn post(State(state): State<SimState>, Path(leaf): Path<String>) -> Response {
    let scenario = state.scenario();
    if scenario == Scenario::DriftHtmlShell {
        return app_shell().await;
    }
    let now = Utc::now();
    let (body, stamp) = match leaf.as_str() {
        "mac" | "ppac" => {
            let portal = if leaf == "mac" {
                Portal::Mac
            } else {
                Portal::Ppac
            };
            let post = portal_post(portal, scenario, now);
            (serde_json::to_string(&post), post.internal_date_time)
        }
        "azure" => (serde_json::to_string(&azure_post(scenario, now)), None),
        "m365Consumer" => (serde_json::to_string(&consumer_posts(scenario, now)), None),
        _ => return unsupported(&leaf),
    };
    if scenario == Scenario::DriftEmptyBody {
        return data(JSON, String::new(), stamp);
    }
    match body {
        Ok(body) => data(JSON, body, stamp),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("simulator could not build the post: {error}\n"),
        )
            .into_response(),
    }
}

/// A 200 data answer with the site's content type and refresh-stamp header.
fn data(content_type: &'static str, body: String, stamp: Option<DateTime<Utc>>) -> Response {
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(stamp) = stamp
        && let Ok(value) = HeaderValue::from_str(&dotnet_time(Some(stamp)))
    {
        response.headers_mut().insert(X_INTERNAL_DATE_TIME, value);
    }
    response
}

/// The site's answer to a leaf it does not serve.
fn unsupported(leaf: &str) -> Response {
    let shown: String = leaf.chars().filter(|c| !c.is_control()).take(64).collect();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{shown} is not a supported service for EBS"),
    )
        .into_response()
}

/// One post as the site serializes it: PascalCase keys in the site's order; the consumer-only
/// keys only on consumer entries; `Status` left out entirely by `drift-missing-element`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SitePost {
    #[serde(skip_serializing_if = "Option::is_none")]
    service_display_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_workload_name: Option<&'static str>,
    id: Option<&'static str>,
    #[serde(serialize_with = "ser_time")]
    authored_date_time: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ser_time")]
    internal_date_time: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ser_time")]
    last_updated_time: Option<DateTime<Utc>>,
    title: Option<String>,
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

fn ser_time<S: serde::Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&dotnet_time(*at))
}

/// A timestamp as the site writes it (.NET `DateTimeOffset`): seconds, then the fraction in
/// 100 ns ticks (7 digits) when there is one, then `+00:00`; `None` is the `0001-01-01` sentinel.
pub(crate) fn dotnet_time(at: Option<DateTime<Utc>>) -> String {
    let Some(at) = at else {
        return "0001-01-01T00:00:00+00:00".to_string();
    };
    let ticks = (at.timestamp_subsec_nanos() / 100).min(9_999_999);
    let seconds = at.format("%Y-%m-%dT%H:%M:%S");
    if ticks == 0 {
        format!("{seconds}+00:00")
    } else {
        format!("{seconds}.{ticks:07}+00:00")
    }
}

/// An RSS date as the site writes it, with a literal `Z` for the zone.
pub(crate) fn rss_time(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S Z").to_string()
}

/// Escapes text for an XML text node.
pub(crate) fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Rounds down to whole `minutes` (the site refreshes on a ~10 minute cadence).
fn floor(at: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    at.duration_trunc(Duration::minutes(minutes)).unwrap_or(at)
}

/// The status word a scenario writes where the site would write `normal`.
fn word(scenario: Scenario, normal: &str) -> Option<String> {
    match scenario {
        Scenario::DriftUnknownStatus => Some(UNKNOWN_WORD.to_string()),
        Scenario::DriftMissingElement => None,
        _ => Some(normal.to_string()),
    }
}

const MAC_ID: &str = "4e7b1c92-05da-4f63-9a8e-2d61c7f03b58";
const MAC_INCIDENT_ID: &str = "b39f6d20-7ac4-4c1e-8d57-e0a1f49c6b73";
const PPAC_ID: &str = "9d2c5a71-3e8f-46b0-a4c9-71f8e2b05d16";
const INCIDENT: &str = "MO947213";

const MAC_MESSAGE: &str = "<div>We update this page when a service issue keeps tenant administrators \
from reaching Service health in the Microsoft 365 admin center. For widespread, active incidents \
you can also follow&nbsp;<a target=\"_blank\" href=\"https://x.com/MSFT365Status\">\
https://x.com/MSFT365Status</a>&nbsp;for more information.</div>";

const PPAC_MESSAGE: &str = "<div>We update this page when a service issue keeps administrators \
from reaching the Power Platform admin center. For the status of Power Platform services, \
sign in to the&nbsp;<a target=\"_blank\" href=\"https://admin.powerplatform.microsoft.com\">\
Power Platform admin center</a>.</div>";

const MAC_DEGRADED_TITLE: &str =
    "Admins may be unable to reach Service health in the Microsoft 365 admin center";

/// The `mac` or `ppac` post (the feed item is built from the same post).
fn portal_post(portal: Portal, scenario: Scenario, now: DateTime<Utc>) -> SitePost {
    let internal = floor(now, 10);
    let degraded = portal == Portal::Mac && scenario == Scenario::AdminDegraded;
    let (id, authored, title, message, status) = match (portal, degraded) {
        (Portal::Mac, true) => {
            let started = floor(now - Duration::minutes(47), 1);
            let next_update = floor(now + Duration::minutes(90), 30);
            let message = format!(
                "<div><p><b>Title:</b> {MAC_DEGRADED_TITLE}</p>\
                 <p><b>User impact:</b> Admins may be unable to reach Service health or the \
                 Message center in the Microsoft 365 admin center, or pages may load without \
                 data.</p>\
                 <p><b>Current status:</b> We're investigating elevated failure rates in the \
                 infrastructure that serves Service health and are rerouting traffic to \
                 healthy capacity. We'll provide an update by {} UTC.</p>\
                 <p><b>Incident ID:</b> {INCIDENT}</p>\
                 <p>You can also follow&nbsp;<a target=\"_blank\" \
                 href=\"https://x.com/MSFT365Status\">@MSFT365Status</a>&nbsp;for updates.</p></div>",
                next_update.format("%A, %B %-d, %Y, at %-I:%M %p"),
            );
            (
                MAC_INCIDENT_ID,
                started,
                MAC_DEGRADED_TITLE.to_string(),
                message,
                "Service degradation".to_string(),
            )
        }
        (Portal::Mac, false) => (
            MAC_ID,
            floor(now - Duration::days(8) - Duration::hours(3), 1) + Duration::seconds(41),
            String::new(),
            MAC_MESSAGE.to_string(),
            "Available".to_string(),
        ),
        (Portal::Ppac, _) => (
            PPAC_ID,
            floor(now - Duration::days(15) - Duration::hours(6), 1) + Duration::seconds(17),
            String::new(),
            PPAC_MESSAGE.to_string(),
            "Available".to_string(),
        ),
    };
    SitePost {
        service_display_name: None,
        service_workload_name: None,
        id: Some(id),
        authored_date_time: Some(authored),
        internal_date_time: Some(internal),
        last_updated_time: Some(now),
        title: Some(title),
        message: Some(message),
        status: word(scenario, &status),
    }
}

/// The feed: one item carrying the post's id, message and status.
fn rss(portal: Portal, post: &SitePost, now: DateTime<Utc>) -> String {
    let pub_date = post.internal_date_time.unwrap_or(now);
    let status = post
        .status
        .as_deref()
        .map(|s| format!("      <status>{}</status>\n", xml_text(s)))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <rss xmlns:a10=\"http://www.w3.org/2005/Atom\" version=\"2.0\">\n\
         \x20 <channel>\n\
         \x20   <title>{channel}</title>\n\
         \x20   <link>{SITE_LINK}</link>\n\
         \x20   <description>{channel}</description>\n\
         \x20   <lastBuildDate>{built}</lastBuildDate>\n\
         \x20   <item>\n\
         \x20     <guid isPermaLink=\"false\">{guid}</guid>\n\
         \x20     <link>{SITE_LINK}</link>\n\
         \x20     <title>{title}</title>\n\
         \x20     <description>{description}</description>\n\
         \x20     <pubDate>{pub_date}</pubDate>\n\
         {status}\
         \x20   </item>\n\
         \x20 </channel>\n\
         </rss>",
        channel = xml_text(portal.channel_title()),
        built = rss_time(now),
        guid = xml_text(post.id.unwrap_or_default()),
        title = xml_text(portal.item_title()),
        description = xml_text(post.message.as_deref().unwrap_or_default()),
        pub_date = rss_time(pub_date),
    )
}

/// The Azure summary post: no id, no title, an unset refresh stamp.
fn azure_post(scenario: Scenario, now: DateTime<Utc>) -> SitePost {
    SitePost {
        service_display_name: None,
        service_workload_name: None,
        id: None,
        authored_date_time: Some(now),
        internal_date_time: None,
        last_updated_time: Some(now),
        title: None,
        message: Some(
            "No Azure issues are currently detected. Follow the link below for more details."
                .to_string(),
        ),
        status: word(scenario, "Available"),
    }
}

/// The consumer workloads the site lists: (display name, workload id).
const CONSUMER_WORKLOADS: &[(&str, &str)] = &[
    ("Microsoft 365 (Consumer)", "M365Consumer"),
    ("Microsoft Copilot", "CopilotConsumer"),
    ("Microsoft Lists", "ConsumerList"),
    ("Microsoft Teams Free", "TeamsforLife"),
    ("Microsoft To-Do", "microsofttodo"),
    ("Microsoft Whiteboard", "Whiteboard"),
    ("Office for the web (Consumer)", "OfficeOnlineConsumer"),
    ("OneDrive", "OneDriveConsumer"),
    ("Outlook.com", "Outlook.com"),
    ("Phone Link", "YourPhone"),
];

/// The workload that carries a just-restored incident in `admin-degraded`.
const RESTORED_WORKLOAD: &str = "Outlook.com";

fn consumer_posts(scenario: Scenario, now: DateTime<Utc>) -> Vec<SitePost> {
    CONSUMER_WORKLOADS
        .iter()
        .zip(0i64..)
        .map(|(&(display, workload), index)| {
            // Each entry is stamped a few ticks after the previous one, as the site does.
            let stamp = now + Duration::nanoseconds(900 * index);
            let mut post = SitePost {
                service_display_name: Some(display),
                service_workload_name: Some(workload),
                id: None,
                authored_date_time: None,
                internal_date_time: None,
                last_updated_time: Some(stamp),
                title: Some(String::new()),
                message: Some(String::new()),
                status: word(scenario, "Operational"),
            };
            if scenario == Scenario::AdminDegraded && workload == RESTORED_WORKLOAD {
                restored_incident(&mut post, now);
            }
            post
        })
        .collect()
}

/// Turns a consumer entry into one whose incident has just ended, in the site's style.
fn restored_incident(post: &mut SitePost, now: DateTime<Utc>) {
    let start = floor(now - Duration::hours(5), 5);
    let end = floor(now - Duration::minutes(80), 5);
    let when = |at: DateTime<Utc>| at.format("%A, %B %-d, %Y, at %-I:%M %p UTC").to_string();
    post.authored_date_time = Some(start);
    post.internal_date_time = Some(end);
    post.last_updated_time = Some(end + Duration::minutes(4) + Duration::nanoseconds(3_719_400));
    post.title = Some("Some users couldn't send or receive email in Outlook.com".to_string());
    post.message = Some(format!(
        "<p><b>User impact:</b> Users may have been unable to send or receive email in \
         Outlook.com.</p><p><b>More info:</b> Affected users may have seen messages stuck in \
         their Outbox, or errors when opening their inbox on the web and in the mobile \
         apps.</p><p><b>Final status:</b> We've rolled back a recent configuration change and \
         confirmed through monitoring that mail flow has recovered for all affected \
         users.</p><p><b>Start time:</b> {}</p><p><b>End time:</b> {}</p>",
        when(start),
        when(end),
    ));
    post.status = Some("Service restored".to_string());
}
