//! The alerting keys: `[alerts]`, `[[sinks]]`, `[[routes]]` and `[[maintenance]]`.
//!
//! A sink's address is often its credential (a Slack, Teams or webhook URL), so every such value
//! can come from a `<key>_file` path or `STATUSMON_SINK__<ID>__<KEY>` instead of the file, and a
//! secret written inline gets a warning. Messages name keys and files, never values.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use secrecy::SecretString;
use serde::Deserialize;

use super::{check_id, check_url, duration, env_id, read_secret_file};
use crate::alerts::routes::{EventFilter, MaintenanceWindow, Route, Schedule};
use crate::alerts::sinks::{EmailSettings, SinkKind, SinkSettings, SinkSpec, SmtpTls};
use crate::alerts::{EventKind, Severity, templates};

/// Every alerting setting, validated.
#[derive(Debug, Clone, Default)]
pub struct AlertsConfig {
    /// `[alerts]`.
    pub settings: AlertSettings,
    /// `[[sinks]]`, in file order.
    pub sinks: Vec<SinkSpec>,
    /// `[[routes]]`, in file order.
    pub routes: Vec<Route>,
    /// `[[maintenance]]`, in file order.
    pub maintenance: Vec<MaintenanceWindow>,
}

/// `[alerts]`: how hard delivery tries, reminders, and the API token for silences and
/// acknowledgements.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Attempts per sink before the route falls back to its next sink.
    pub attempts: u32,
    /// The longest wait between rounds of a route whose every sink failed (it retries until one
    /// delivers: an alert is never dropped).
    pub retry_max_delay: Duration,
    /// How often a firing, unacknowledged alert is sent again; `None` for never.
    pub remind_every: Option<Duration>,
    /// The bearer token the write endpoints want; without one they are refused.
    pub api_token: Option<SecretString>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            attempts: 3,
            retry_max_delay: Duration::from_secs(60),
            remind_every: Some(Duration::from_secs(4 * 3600)),
            api_token: None,
        }
    }
}

/// A sink's default time limit per attempt.
pub const DEFAULT_SINK_TIMEOUT: Duration = Duration::from_secs(10);
/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    attempts: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    retry_max_delay: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    remind_every: Option<Duration>,
    api_token: Option<SecretString>,
    api_token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    id: String,
    kind: String,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    title_template: Option<String>,
    body_template: Option<String>,
    url: Option<SecretString>,
    url_file: Option<PathBuf>,
    urls: Option<Vec<String>>,
    secret: Option<SecretString>,
    secret_file: Option<PathBuf>,
    routing_key: Option<SecretString>,
    routing_key_file: Option<PathBuf>,
    bearer_token: Option<SecretString>,
    bearer_token_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    resend_every: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    resolved_for: Option<Duration>,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<SecretString>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    to: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    id: String,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    min_severity: Option<Severity>,
    sinks: Vec<String>,
}

/// The filter keys routes and maintenance windows share.
struct RawFilter {
    targets: Vec<String>,
    services: Vec<String>,
    kinds: Vec<String>,
    min_severity: Option<Severity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    id: String,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    min_severity: Option<Severity>,
    start: Option<String>,
    end: Option<String>,
    every: Option<String>,
    at: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    length: Option<Duration>,
}

/// The raw alerting tables, as `RawConfig` holds them.
#[derive(Debug, Default)]
pub(super) struct RawAlerting {
    pub alerts: RawAlerts,
    pub sinks: Vec<toml::Table>,
    pub routes: Vec<RawRoute>,
    pub maintenance: Vec<RawMaintenance>,
}

/// A problem: the key and what is wrong.
type Problem = (String, String);

/// Validates the alerting tables against the declared targets. Problems and warnings go into
/// the given lists; what is valid is kept.
pub(super) fn validate(
    raw: RawAlerting,
    targets: &BTreeSet<String>,
    from_env: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> AlertsConfig {
    let settings = settings(raw.alerts, from_env, problems, warnings);
    let mut sinks = Vec::new();
    let mut sink_ids = BTreeSet::new();
    for (index, table) in raw.sinks.into_iter().enumerate() {
        // A sink with a bad key is still declared: its routes should not also fail.
        if let Some(declared) = table.get("id").and_then(|v| v.as_str())
            && !sink_ids.insert(declared.to_string())
        {
            problems.push((
                format!("sinks[{index}].id"),
                format!("duplicate sink id {declared:?}; ids must be unique"),
            ));
            continue;
        }
        match sink(index, table, from_env, warnings) {
            Ok(spec) => sinks.push(spec),
            Err(problem) => problems.push(problem),
        }
    }

    let mut routes = Vec::new();
    let mut route_ids = BTreeSet::new();
    for (index, raw_route) in raw.routes.into_iter().enumerate() {
        let at = format!("routes[{index}]");
        if let Err(problem) = check_id(&raw_route.id) {
            problems.push((format!("{at}.id"), problem));
        }
        if !route_ids.insert(raw_route.id.clone()) {
            problems.push((
                format!("{at}.id"),
                format!("duplicate route id {:?}; ids must be unique", raw_route.id),
            ));
        }
        if raw_route.sinks.is_empty() {
            problems.push((
                format!("{at}.sinks"),
                "empty: list the sinks in order, the fallback after the first".into(),
            ));
        }
        let mut listed = BTreeSet::new();
        for (i, sink_id) in raw_route.sinks.iter().enumerate() {
            if !sink_ids.contains(sink_id) {
                problems.push((
                    format!("{at}.sinks[{i}]"),
                    format!(
                        "sink {sink_id:?} is not declared in [[sinks]] (declared: {})",
                        listing(&sink_ids)
                    ),
                ));
            }
            if !listed.insert(sink_id) {
                problems.push((
                    format!("{at}.sinks[{i}]"),
                    format!("sink {sink_id:?} is listed twice"),
                ));
            }
        }
        let raw_filter = RawFilter {
            targets: raw_route.targets,
            services: raw_route.services,
            kinds: raw_route.kinds,
            min_severity: raw_route.min_severity,
        };
        let filter = filter(&at, raw_filter, targets, problems);
        routes.push(Route {
            id: raw_route.id,
            filter,
            sinks: raw_route.sinks,
        });
    }
    let routed: BTreeSet<&String> = routes.iter().flat_map(|r| &r.sinks).collect();
    for spec in &sinks {
        if !routed.contains(&spec.id) {
            warnings.push(format!(
                "sink {:?} is in no route; it gets only `statusmon drill`s that name it",
                spec.id
            ));
        }
    }
    if routes.is_empty() && !sinks.is_empty() {
        warnings.push("[[sinks]] without [[routes]]: no alert will be sent".into());
    }

    let mut maintenance = Vec::new();
    for (index, mut raw_window) in raw.maintenance.into_iter().enumerate() {
        let at = format!("maintenance[{index}]");
        if let Err(problem) = check_id(&raw_window.id) {
            problems.push((format!("{at}.id"), problem));
        }
        let raw_filter = RawFilter {
            targets: std::mem::take(&mut raw_window.targets),
            services: std::mem::take(&mut raw_window.services),
            kinds: std::mem::take(&mut raw_window.kinds),
            min_severity: raw_window.min_severity.take(),
        };
        let id = raw_window.id.clone();
        let filter = filter(&at, raw_filter, targets, problems);
        match schedule(&at, raw_window) {
            Ok(schedule) => maintenance.push(MaintenanceWindow {
                id,
                filter,
                schedule,
            }),
            Err(problem) => problems.push(problem),
        }
    }
    AlertsConfig {
        settings,
        sinks,
        routes,
        maintenance,
    }
}

fn listing(ids: &BTreeSet<String>) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn settings(
    raw: RawAlerts,
    from_env: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> AlertSettings {
    let defaults = AlertSettings::default();
    let attempts = raw.attempts.unwrap_or(defaults.attempts);
    if !(1..=10).contains(&attempts) {
        problems.push((
            "alerts.attempts".into(),
            format!("{attempts} is out of range: attempts per sink go from 1 to 10"),
        ));
    }
    let retry_max_delay = raw.retry_max_delay.unwrap_or(defaults.retry_max_delay);
    if retry_max_delay < Duration::from_secs(1) {
        problems.push((
            "alerts.retry_max_delay".into(),
            "must be at least \"1s\"".into(),
        ));
    }
    let remind_every = match raw.remind_every {
        None => defaults.remind_every,
        Some(d) if d.is_zero() => None,
        Some(d) if d < Duration::from_secs(60) => {
            problems.push((
                "alerts.remind_every".into(),
                "must be at least \"1m\" (or \"0s\" for no reminders)".into(),
            ));
            None
        }
        Some(d) => Some(d),
    };
    let api_token = secret(
        Secret {
            at: "alerts",
            key: "api_token",
            env: "STATUSMON_ALERTS__API_TOKEN",
            from_env: from_env.contains("alerts.api_token"),
        },
        raw.api_token,
        raw.api_token_file,
        problems,
        warnings,
    );
    AlertSettings {
        attempts,
        retry_max_delay,
        remind_every,
        api_token,
    }
}

/// Where a secret is configured, for messages.
struct Secret<'a> {
    /// The table, e.g. `sinks[0]`.
    at: &'a str,
    /// The key, e.g. `routing_key`.
    key: &'a str,
    /// The environment variable that can set it.
    env: &'a str,
    /// Whether that variable did (then it is not an inline secret).
    from_env: bool,
}

/// A secret from the environment, inline text (with a warning) or a `_file`, not both.
fn secret(
    Secret {
        at,
        key,
        env: env_hint,
        from_env,
    }: Secret<'_>,
    inline: Option<SecretString>,
    file: Option<PathBuf>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<SecretString> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            problems.push((
                format!("{at}.{key}_file"),
                format!("set either {key}_file or {key}, not both"),
            ));
            None
        }
        (Some(value), None) => {
            if from_env {
                return Some(value);
            }
            warnings.push(format!(
                "{at}: {key} is written in the file; prefer {key}_file or {env_hint}"
            ));
            Some(value)
        }
        (None, Some(path)) => match read_secret_file(&format!("{key}_file"), &path) {
            Ok(value) => Some(value),
            Err(problem) => {
                problems.push((format!("{at}.{key}_file"), problem));
                None
            }
        },
        (None, None) => None,
    }
}

/// The keys each kind takes besides [`SINK_KEYS`].
fn kind_keys(kind: SinkKind) -> &'static [&'static str] {
    match kind {
        SinkKind::Webhook => &["url", "url_file", "secret", "secret_file"],
        SinkKind::Slack | SinkKind::Teams => &["url", "url_file"],
        SinkKind::PagerDuty => &["url", "routing_key", "routing_key_file"],
        SinkKind::Alertmanager => &[
            "url",
            "urls",
            "bearer_token",
            "bearer_token_file",
            "resend_every",
            "resolved_for",
        ],
        SinkKind::Email => &[
            "host",
            "port",
            "tls",
            "username",
            "password",
            "password_file",
            "from",
            "to",
        ],
    }
}

/// The keys every sink takes.
const SINK_KEYS: &[&str] = &["id", "kind", "timeout", "title_template", "body_template"];

fn sink(
    index: usize,
    table: toml::Table,
    from_env: &BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> Result<SinkSpec, Problem> {
    let at = format!("sinks[{index}]");
    let key = |k: &str| format!("{at}.{k}");
    let set: Vec<String> = table.keys().cloned().collect();
    let raw: RawSink =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let at_key = if path == "." { at.clone() } else { key(&path) };
            (at_key, e.into_inner().message().to_string())
        })?;
    check_id(&raw.id).map_err(|p| (key("id"), p))?;
    let kind = SinkKind::all()
        .iter()
        .copied()
        .find(|k| k.as_str() == raw.kind)
        .ok_or_else(|| {
            let known: Vec<&str> = SinkKind::all().iter().map(|k| k.as_str()).collect();
            (
                key("kind"),
                format!(
                    "unknown sink kind {:?}; this build supports: {}",
                    raw.kind,
                    known.join(", ")
                ),
            )
        })?;
    let allowed = kind_keys(kind);
    if let Some(extra) = set
        .iter()
        .find(|k| !SINK_KEYS.contains(&k.as_str()) && !allowed.contains(&k.as_str()))
    {
        return Err((
            key(extra),
            format!(
                "not a key of a {} sink; its keys are {}, {}",
                kind.as_str(),
                SINK_KEYS.join(", "),
                allowed.join(", ")
            ),
        ));
    }
    templates::check(raw.title_template.as_deref(), raw.body_template.as_deref())
        .map_err(|p| (key("title_template"), p))?;
    let timeout = raw.timeout.unwrap_or(DEFAULT_SINK_TIMEOUT);
    if timeout.is_zero() || timeout > Duration::from_secs(120) {
        return Err((key("timeout"), "must be between \"1ms\" and \"2m\"".into()));
    }
    let env = |k: &str| format!("STATUSMON_SINK__{}__{}", env_id(&raw.id), k.to_uppercase());
    let mut problems = Vec::new();
    let mut clear_text = None;
    let mut take_secret = |name: &str, inline: Option<SecretString>, file: Option<PathBuf>| {
        let place = Secret {
            at: &at,
            key: name,
            env: &env(name),
            from_env: from_env.contains(&format!("{at}.{name}")),
        };
        secret(place, inline, file, &mut problems, warnings)
    };
    let settings = match kind {
        SinkKind::Webhook | SinkKind::Slack | SinkKind::Teams => {
            // A webhook's URL is in the design's example inline; Slack's and Teams' URLs carry
            // their credential, so inline ones are warned about.
            let url = match (kind, raw.url, raw.url_file) {
                (SinkKind::Webhook, Some(url), None) => Some(url),
                (_, inline, file) => take_secret("url", inline, file),
            };
            let Some(url) = url else {
                return Err(first_or(problems, || {
                    (
                        key("url"),
                        format!("missing: set url_file, url or {}", env("url")),
                    )
                }));
            };
            check_secret_url(&key("url"), &url)?;
            match kind {
                SinkKind::Webhook => SinkSettings::Webhook {
                    url,
                    secret: take_secret("secret", raw.secret, raw.secret_file),
                },
                SinkKind::Slack => SinkSettings::Slack { url },
                _ => SinkSettings::Teams { url },
            }
        }
        SinkKind::PagerDuty => {
            let url = match raw.url {
                Some(url) => {
                    let url = secrecy::ExposeSecret::expose_secret(&url).to_string();
                    check_url(&key("url"), &url).map_err(|p| (key("url"), p))?;
                    url
                }
                None => PAGERDUTY_URL.to_string(),
            };
            let Some(routing_key) =
                take_secret("routing_key", raw.routing_key, raw.routing_key_file)
            else {
                return Err(first_or(problems, || {
                    (
                        key("routing_key"),
                        format!(
                            "missing: set routing_key_file or {} (the Events API v2 \
                             integration key)",
                            env("routing_key")
                        ),
                    )
                }));
            };
            SinkSettings::PagerDuty { url, routing_key }
        }
        SinkKind::Alertmanager => {
            let mut urls = raw.urls.unwrap_or_default();
            if let Some(url) = raw.url {
                urls.insert(0, secrecy::ExposeSecret::expose_secret(&url).to_string());
            }
            if urls.is_empty() {
                return Err((
                    key("urls"),
                    "missing: list each Alertmanager's base URL (every instance of an HA pair)"
                        .into(),
                ));
            }
            for (i, url) in urls.iter().enumerate() {
                check_url(&format!("{at}.urls[{i}]"), url)
                    .map_err(|p| (format!("{at}.urls[{i}]"), p))?;
            }
            let resend_every = raw.resend_every.unwrap_or(Duration::from_secs(60));
            if resend_every < Duration::from_secs(1) {
                return Err((key("resend_every"), "must be at least \"1s\"".into()));
            }
            let resolved_for = raw.resolved_for.unwrap_or(Duration::from_secs(300));
            if resolved_for > Duration::from_secs(24 * 3600) {
                return Err((key("resolved_for"), "must be at most \"24h\"".into()));
            }
            SinkSettings::Alertmanager {
                urls,
                resend_every,
                resolved_for,
                bearer_token: take_secret("bearer_token", raw.bearer_token, raw.bearer_token_file),
            }
        }
        SinkKind::Email => {
            let host = raw.host.filter(|h| !h.trim().is_empty()).ok_or_else(|| {
                (
                    key("host"),
                    "missing: the SMTP server (one that does not depend on Microsoft 365)".into(),
                )
            })?;
            let tls = match raw.tls.as_deref().unwrap_or("starttls") {
                "starttls" => SmtpTls::StartTls,
                "tls" => SmtpTls::Tls,
                "none" => SmtpTls::None,
                other => {
                    return Err((
                        key("tls"),
                        format!("{other:?} is not one of \"starttls\", \"tls\", \"none\""),
                    ));
                }
            };
            if tls == SmtpTls::None && !is_loopback(&host) {
                clear_text = Some(format!(
                    "{at}: tls = \"none\" sends mail (and any password) in the clear to {host}"
                ));
            }
            let port = raw.port.unwrap_or(match tls {
                SmtpTls::StartTls => 587,
                SmtpTls::Tls => 465,
                SmtpTls::None => 25,
            });
            let from = raw
                .from
                .filter(|f| f.contains('@'))
                .ok_or_else(|| (key("from"), "missing or not an address".into()))?;
            let to = raw.to.unwrap_or_default();
            if to.is_empty() || to.iter().any(|t| !t.contains('@')) {
                return Err((key("to"), "list one or more recipient addresses".into()));
            }
            let password = take_secret("password", raw.password, raw.password_file);
            if password.is_some() && raw.username.is_none() {
                return Err((key("username"), "a password needs a username".into()));
            }
            SinkSettings::Email(EmailSettings {
                host,
                port,
                tls,
                username: raw.username,
                password,
                from,
                to,
            })
        }
    };
    if let Some(problem) = problems.into_iter().next() {
        return Err(problem);
    }
    warnings.extend(clear_text);
    Ok(SinkSpec {
        id: raw.id,
        timeout,
        title_template: raw.title_template,
        body_template: raw.body_template,
        settings,
    })
}

fn first_or(problems: Vec<Problem>, otherwise: impl FnOnce() -> Problem) -> Problem {
    problems.into_iter().next().unwrap_or_else(otherwise)
}

/// Checks a URL that is itself a secret: the message says what is wrong, never the URL.
fn check_secret_url(key: &str, url: &SecretString) -> Result<(), Problem> {
    let text = secrecy::ExposeSecret::expose_secret(url);
    let parsed =
        reqwest::Url::parse(text).map_err(|e| (key.to_string(), format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err((key.to_string(), "must be an http:// or https:// URL".into()));
    }
    if parsed.scheme() == "http" && !parsed.host_str().is_some_and(is_loopback) {
        return Err((
            key.to_string(),
            "must be https:// (http:// only for 127.0.0.1 or localhost)".into(),
        ));
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn filter(
    at: &str,
    raw: RawFilter,
    targets: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> EventFilter {
    for (i, target) in raw.targets.iter().enumerate() {
        if !targets.contains(target) {
            problems.push((
                format!("{at}.targets[{i}]"),
                format!(
                    "target {target:?} is not declared in [[targets]] (declared: {})",
                    listing(targets)
                ),
            ));
        }
    }
    let mut kinds = Vec::new();
    for (i, name) in raw.kinds.iter().enumerate() {
        match event_kind(name) {
            Some(found) => kinds.extend(found),
            None => problems.push((
                format!("{at}.kinds[{i}]"),
                format!(
                    "{name:?} is not an event kind; use service_verdict, visibility, \
                     admin_plane, incident_new, incident_updated, incident_resolved, or \
                     incident (all three)"
                ),
            )),
        }
    }
    EventFilter {
        targets: raw.targets,
        services: raw.services,
        kinds,
        min_severity: raw.min_severity,
    }
}

fn event_kind(name: &str) -> Option<Vec<EventKind>> {
    let all = [
        EventKind::ServiceVerdict,
        EventKind::Visibility,
        EventKind::AdminPlane,
        EventKind::IncidentNew,
        EventKind::IncidentUpdated,
        EventKind::IncidentResolved,
    ];
    if name == "incident" {
        return Some(vec![
            EventKind::IncidentNew,
            EventKind::IncidentUpdated,
            EventKind::IncidentResolved,
        ]);
    }
    all.into_iter()
        .find(|k| k.as_str() == name)
        .map(|k| vec![k])
}

fn schedule(at: &str, raw: RawMaintenance) -> Result<Schedule, Problem> {
    let time = |key: &str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                (
                    format!("{at}.{key}"),
                    format!(
                        "{text:?} is not an RFC 3339 time ({e}), e.g. \"2026-12-05T22:00:00Z\""
                    ),
                )
            })
    };
    match (raw.start, raw.end, raw.every) {
        (Some(start), Some(end), None) => {
            let (start, end) = (time("start", &start)?, time("end", &end)?);
            if end <= start {
                return Err((format!("{at}.end"), "must be after start".into()));
            }
            if raw.at.is_some() || raw.length.is_some() {
                return Err((
                    format!("{at}.at"),
                    "a one-off window (start, end) takes no `at` or `length`".into(),
                ));
            }
            Ok(Schedule::Once { start, end })
        }
        (None, None, Some(every)) => {
            let weekday = match every.as_str() {
                "day" => None,
                other => Some(other.parse::<Weekday>().map_err(|_| {
                    (
                        format!("{at}.every"),
                        format!(
                            "{other:?}: use \"day\" or a weekday (\"monday\" … \"sunday\", or \
                             \"mon\" … \"sun\")"
                        ),
                    )
                })?),
            };
            let opens = raw.at.as_deref().ok_or_else(|| {
                (
                    format!("{at}.at"),
                    "missing: the UTC time the window opens, e.g. \"02:00\"".into(),
                )
            })?;
            let opens = NaiveTime::parse_from_str(opens, "%H:%M").map_err(|_| {
                (
                    format!("{at}.at"),
                    format!("{opens:?} is not a time of day like \"02:00\" (UTC)"),
                )
            })?;
            let length = raw.length.ok_or_else(|| {
                (
                    format!("{at}.length"),
                    "missing: how long the window stays open, e.g. \"2h\"".into(),
                )
            })?;
            let limit = if weekday.is_some() { 7 * 24 } else { 24 };
            if length.is_zero() || length > Duration::from_secs(limit * 3600) {
                return Err((
                    format!("{at}.length"),
                    format!("must be more than zero and at most {limit}h"),
                ));
            }
            let length = chrono::Duration::from_std(length)
                .map_err(|_| (format!("{at}.length"), "too long".into()))?;
            Ok(Schedule::Recurring {
                weekday,
                at: opens,
                length,
            })
        }
        _ => Err((
            format!("{at}.start"),
            "a window is either one-off (start and end, RFC 3339) or recurring (every = \"day\" \
             or a weekday, at = \"HH:MM\" UTC, length)"
                .into(),
        )),
    }
}
