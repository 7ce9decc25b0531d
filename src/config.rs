//! Configuration: `config.toml`, overridden by `STATUSMON_*` environment variables, validated
//! into typed settings. Every error names where the value came from (the file or the variable),
//! the key and what is wrong, because the person reading it is fixing a monitor, often in a hurry.
//!
//! Environment overrides:
//! - `STATUSMON_<SECTION>__<KEY>` for top-level tables, e.g. `STATUSMON_SERVER__LISTEN`;
//! - `STATUSMON_CHANNEL__<ID>__<KEY>` for one channel, where `<ID>` is the channel id in capitals
//!   with every other character as `_` (`m365-public` → `M365_PUBLIC`), e.g.
//!   `STATUSMON_CHANNEL__M365_PUBLIC__BASE_URL`. Secrets are set the same way, or with a
//!   `<key>_file` path in the file.
//! - `STATUSMON_SINK__<ID>__<KEY>` for one alert sink, the same way (its URL or token, say).
//!
//! Values are read as TOML when they parse as TOML (`false`, `30`, `["a"]`), else as strings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use statusmon_channels::ChannelKind;
use statusmon_channels::graph::{self, Budget, Credential};
use statusmon_channels::http::Limits;
use statusmon_channels::social::bluesky::BlueskyConfig;
use statusmon_channels::social::feed::FeedConfig;
use statusmon_channels::social::mastodon::MastodonConfig;
use statusmon_channels::status_site::{PostLeaf, StatusSiteConfig};

use crate::resolver::{Policy, TargetSpec};

mod alerts;
mod social;

pub use alerts::{AlertSettings, AlertsConfig, DEFAULT_SINK_TIMEOUT, PAGERDUTY_URL};
pub use social::XSettings;

/// The prefix of every environment override.
pub const ENV_PREFIX: &str = "STATUSMON_";
/// Variables with the prefix that are not config overrides.
const ENV_RESERVED: &[&str] = &["STATUSMON_CONFIG", "STATUSMON_LOG"];

/// The default public-site address.
pub const DEFAULT_STATUS_SITE: &str = "https://status.cloud.microsoft";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub source: PathBuf,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[resolver]`.
    pub policy: Policy,
    /// `[scheduler]`.
    pub scheduler: SchedulerConfig,
    /// `[archive]`: where raw upstream answers are recorded, when they are.
    pub archive: Option<PathBuf>,
    /// `[archive] retention`: how many days of raw answers the archive keeps.
    pub archive_retention: Duration,
    /// `[[channels]]`, in file order.
    pub channels: Vec<Arc<ChannelConfig>>,
    /// `[[targets]]`, in file order.
    pub targets: Vec<TargetSpec>,
    /// `[alerts]`, `[[sinks]]`, `[[routes]]`, `[[maintenance]]`.
    pub alerts: AlertsConfig,
    /// Things worth saying that do not stop the config from working.
    pub warnings: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The embedded database file (relative paths are taken from the working directory).
    pub path: PathBuf,
    /// How long observation history and resolution transitions are kept. Channel state, the
    /// resolver's memory and the last published document are kept whatever their age: they are
    /// what a restart restores.
    pub retention: Duration,
}

/// `[scheduler]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// At most this many probes a second start against one host (burst as large), however many
    /// channels point at it: a thousand feeds on one server, or the shared hosts of every tenant,
    /// must not arrive as one thundering herd.
    pub probes_per_host: NonZeroU32,
}

/// The default of `[scheduler] probes_per_host`: far above what one host sees from a normal
/// config (1,000 tenants at 60 s is 17 a second on Graph), low enough to spread a herd.
pub const DEFAULT_PROBES_PER_HOST: u32 = 100;

/// The default `[store] retention`: a month of history covers a post-incident review.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The default `[archive] retention`: raw answers are larger than history, and a fortnight
/// covers a post-incident review while the memory of it is fresh.
pub const DEFAULT_ARCHIVE_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// One `[[channels]]` entry.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Unique id.
    pub id: String,
    /// `false` makes the channel `disabled`.
    pub enabled: bool,
    /// Time between probes.
    pub interval: Duration,
    /// How old the last good answer may be and still count; 3 × interval by default.
    pub max_age: Duration,
    /// Request time and body-size limits.
    pub limits: Limits,
    /// The kind and its settings.
    pub kind: ChannelSettings,
}

/// Kind-specific settings.
#[derive(Debug, Clone)]
pub enum ChannelSettings {
    /// `kind = "m365_status_site"`.
    M365StatusSite(StatusSiteConfig),
    /// `kind = "graph"`.
    Graph(GraphSettings),
    /// `kind = "x"`.
    X(XSettings),
    /// `kind = "mastodon"`.
    Mastodon(MastodonConfig),
    /// `kind = "bluesky"`.
    Bluesky(BlueskyConfig),
    /// `kind = "feed"`.
    Feed(FeedConfig),
}

impl ChannelSettings {
    /// The kind.
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelSettings::M365StatusSite(_) => ChannelKind::M365StatusSite,
            ChannelSettings::Graph(_) => ChannelKind::Graph,
            ChannelSettings::X(_) => ChannelKind::X,
            ChannelSettings::Mastodon(_) => ChannelKind::Mastodon,
            ChannelSettings::Bluesky(_) => ChannelKind::Bluesky,
            ChannelSettings::Feed(_) => ChannelKind::Feed,
        }
    }
}

/// A Graph channel's settings. Credentials are optional here: a channel without them runs as
/// `disabled`, with a message saying what to set, so the same config works before the app
/// registration exists.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// The tenant (GUID or domain).
    pub tenant_id: String,
    /// The app registration's id, once set.
    pub client_id: Option<String>,
    /// The credential, or what to set to get one.
    pub credential: Result<Credential, String>,
    /// The sign-in host (national clouds and the simulator override it).
    pub authority: String,
    /// The Graph host.
    pub graph_url: String,
    /// The per-tenant request budget.
    pub budget: Budget,
}

impl ChannelConfig {
    /// The channel kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind.kind()
    }

    /// The host its probes go to (Graph's API host, not the sign-in host, which is asked once an
    /// hour at most), for the per-host rate limit.
    pub fn host(&self) -> Option<String> {
        let url = match &self.kind {
            ChannelSettings::M365StatusSite(s) => &s.base_url,
            ChannelSettings::Graph(s) => &s.graph_url,
            ChannelSettings::X(s) => &s.base_url,
            ChannelSettings::Mastodon(s) => &s.base_url,
            ChannelSettings::Bluesky(s) => &s.base_url,
            ChannelSettings::Feed(s) => &s.url,
        };
        let url = reqwest::Url::parse(url).ok()?;
        let host = url.host_str()?;
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    }
}

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the value came from.
    pub origin: Origin,
    /// The key, e.g. `channels[0] (m365-public).interval`; `None` for whole-file problems.
    pub key: Option<String>,
    /// What is wrong and, where we can tell, what to do.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File(path) => write!(f, "{}", path.display())?,
            Origin::Env(var) => write!(f, "environment variable {var}")?,
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    resolver: RawResolver,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    archive: RawArchive,
    #[serde(default)]
    channels: Vec<toml::Table>,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    alerts: alerts::RawAlerts,
    #[serde(default)]
    sinks: Vec<toml::Table>,
    #[serde(default)]
    routes: Vec<alerts::RawRoute>,
    #[serde(default)]
    maintenance: Vec<alerts::RawMaintenance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    retention: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolver {
    fail_threshold: Option<u32>,
    recover_threshold: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchive {
    path: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    retention: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    probes_per_host: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    id: String,
    name: Option<String>,
    channels: Vec<String>,
}

/// Secrets that may be written inline (with a warning) instead of in a file or the environment.
const INLINE_SECRET_KEYS: &[&str] = &["client_secret", "bearer_token"];

/// Keys every channel kind takes.
const COMMON_KEYS: &[&str] = &[
    "id", "kind", "enabled", "interval", "max_age", "timeout", "max_body",
];

#[derive(Debug, Deserialize)]
struct RawCommon {
    id: String,
    kind: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default, deserialize_with = "duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    max_age: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    max_body: Option<u64>,
}

fn yes() -> bool {
    true
}

/// A humantime duration ("30s", "2m", "1h 30m"), with humantime's own explanation on error.
fn duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration ({e}); write it like \"30s\", \"2m\" or \"1h 30m\""
        ))
    })
}

/// `kind = "graph"` keys.
const GRAPH_KEYS: &[&str] = &[
    "tenant_id",
    "client_id",
    "client_secret",
    "client_secret_file",
    "certificate_file",
    "private_key_file",
    "authority",
    "graph_url",
    "budget_per_minute",
    "budget_per_hour",
];

#[derive(Debug, Deserialize)]
struct RawGraph {
    tenant_id: String,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    client_secret_file: Option<PathBuf>,
    certificate_file: Option<PathBuf>,
    private_key_file: Option<PathBuf>,
    authority: Option<String>,
    graph_url: Option<String>,
    budget_per_minute: Option<u32>,
    budget_per_hour: Option<u32>,
}

/// `kind = "m365_status_site"` keys.
const STATUS_SITE_KEYS: &[&str] = &["base_url", "posts", "max_source_age"];

#[derive(Debug, Deserialize)]
struct RawStatusSite {
    base_url: Option<String>,
    posts: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration")]
    max_source_age: Option<Duration>,
}

/// Reads, overrides and validates a config file, with overrides from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let problem = if e.kind() == std::io::ErrorKind::NotFound {
            "file not found (pass --config PATH or set STATUSMON_CONFIG)".to_string()
        } else {
            format!("cannot read: {e}")
        };
        ConfigErrors(vec![ConfigError {
            origin: Origin::File(path.to_path_buf()),
            key: None,
            problem,
        }])
    })?;
    parse(&text, path, std::env::vars())
}

/// Parses config text with the given environment. Pure apart from reading `*_file` secrets.
pub fn parse(
    text: &str,
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let file = Origin::File(path.to_path_buf());
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            origin: file.clone(),
            key: None,
            problem: format!("not valid TOML: {}", e.to_string().trim()),
        }])
    })?;
    let overridden = apply_env(&mut table, env)?;
    let origin_of = |key: &str| {
        overridden
            .iter()
            .find(|(k, _)| key == k.as_str() || key.starts_with(&format!("{k}.")))
            .map(|(_, var)| Origin::Env(var.clone()))
            .unwrap_or_else(|| file.clone())
    };

    let raw: RawConfig =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            ConfigErrors(vec![ConfigError {
                origin: origin_of(&key),
                key: Some(key),
                problem: e.into_inner().message().to_string(),
            }])
        })?;

    let mut errors = Vec::new();
    let mut error = |key: String, problem: String| {
        errors.push(ConfigError {
            origin: origin_of(&key),
            key: Some(key),
            problem,
        });
    };

    let listen = raw
        .server
        .listen
        .as_deref()
        .unwrap_or("127.0.0.1:8080")
        .parse::<SocketAddr>()
        .unwrap_or_else(|e| {
            error(
                "server.listen".into(),
                format!("{e}: expected an address and port such as 127.0.0.1:8080"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
    let retention = raw.store.retention.unwrap_or(DEFAULT_RETENTION);
    if retention < Duration::from_secs(60) {
        error(
            "store.retention".into(),
            format!(
                "{} is too short: history would vanish between rounds; use at least \"1m\" \
                 (the default is \"30d\")",
                humantime::format_duration(retention)
            ),
        );
    }
    let archive_retention = raw.archive.retention.unwrap_or(DEFAULT_ARCHIVE_RETENTION);
    if archive_retention < Duration::from_secs(24 * 3600) {
        error(
            "archive.retention".into(),
            format!(
                "{} is too short: the archive keeps whole days; use at least \"1d\" (the \
                 default is \"14d\")",
                humantime::format_duration(archive_retention)
            ),
        );
    }
    let policy = Policy {
        fail_threshold: raw.resolver.fail_threshold.unwrap_or(1),
        recover_threshold: raw.resolver.recover_threshold.unwrap_or(2),
    };
    for (key, value) in [
        ("resolver.fail_threshold", policy.fail_threshold),
        ("resolver.recover_threshold", policy.recover_threshold),
    ] {
        if value == 0 {
            error(key.into(), "must be at least 1".into());
        }
    }
    let probes_per_host = raw
        .scheduler
        .probes_per_host
        .unwrap_or(DEFAULT_PROBES_PER_HOST);
    let probes_per_host = NonZeroU32::new(probes_per_host).unwrap_or_else(|| {
        error(
            "scheduler.probes_per_host".into(),
            "must be at least 1 (probes a second per host)".into(),
        );
        NonZeroU32::MIN
    });
    let scheduler = SchedulerConfig { probes_per_host };

    let mut channels = Vec::new();
    let mut seen = BTreeSet::new();
    // Channels whose client_secret is written in the file rather than set from the environment.
    let inline_secrets: BTreeMap<usize, &str> = raw
        .channels
        .iter()
        .enumerate()
        .filter_map(|(i, table)| {
            INLINE_SECRET_KEYS
                .iter()
                .copied()
                .find(|secret| {
                    table.contains_key(*secret)
                        && !overridden
                            .iter()
                            .any(|(key, _)| *key == format!("channels[{i}].{secret}"))
                })
                .map(|secret| (i, secret))
        })
        .collect();
    for (index, table) in raw.channels.into_iter().enumerate() {
        // A channel with a bad key is still declared: its targets should not also fail.
        let declared_id = table.get("id").and_then(|v| v.as_str()).map(str::to_string);
        match channel(index, table) {
            Ok(channel) => {
                if !seen.insert(channel.id.clone()) {
                    error(
                        format!("channels[{index}].id"),
                        format!("duplicate channel id {:?}; ids must be unique", channel.id),
                    );
                }
                channels.push(Arc::new(channel));
            }
            Err((key, problem)) => {
                if let Some(id) = declared_id {
                    seen.insert(id);
                }
                error(key, problem);
            }
        }
    }

    let mut targets = Vec::new();
    let mut target_ids = BTreeSet::new();
    for (index, raw_target) in raw.targets.into_iter().enumerate() {
        let at = format!("targets[{index}]");
        if let Err(problem) = check_id(&raw_target.id) {
            error(format!("{at}.id"), problem);
        }
        if !target_ids.insert(raw_target.id.clone()) {
            error(
                format!("{at}.id"),
                format!(
                    "duplicate target id {:?}; ids must be unique",
                    raw_target.id
                ),
            );
        }
        if raw_target.channels.is_empty() {
            error(
                format!("{at}.channels"),
                "empty: list the target's channels, primary first".into(),
            );
        }
        let mut listed = BTreeSet::new();
        for (i, channel_id) in raw_target.channels.iter().enumerate() {
            if !seen.contains(channel_id) {
                let known: Vec<&str> = seen.iter().map(String::as_str).collect();
                error(
                    format!("{at}.channels[{i}]"),
                    format!(
                        "channel {channel_id:?} is not declared in [[channels]] (declared: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
            if !listed.insert(channel_id) {
                error(
                    format!("{at}.channels[{i}]"),
                    format!("channel {channel_id:?} is listed twice"),
                );
            }
        }
        targets.push(TargetSpec {
            name: raw_target.name.unwrap_or_else(|| raw_target.id.clone()),
            id: raw_target.id,
            channels: raw_target.channels,
        });
    }
    if targets.is_empty() {
        error(
            "targets".into(),
            "no [[targets]]: add one listing its channels, primary first".into(),
        );
    }
    let mut alert_problems = Vec::new();
    let mut alert_warnings = Vec::new();
    let alerts = alerts::validate(
        alerts::RawAlerting {
            alerts: raw.alerts,
            sinks: raw.sinks,
            routes: raw.routes,
            maintenance: raw.maintenance,
        },
        &target_ids,
        &overridden.iter().map(|(key, _)| key.clone()).collect(),
        &mut alert_problems,
        &mut alert_warnings,
    );
    for (key, problem) in alert_problems {
        error(key, problem);
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let used: BTreeSet<&String> = targets.iter().flat_map(|t| &t.channels).collect();
    let mut warnings: Vec<String> = channels
        .iter()
        .filter(|c| !used.contains(&c.id))
        .map(|c| {
            format!(
                "channel {:?} is not used by any target; it will not be probed",
                c.id
            )
        })
        .collect();
    for (index, channel) in channels.iter().enumerate() {
        if let Some(secret) = inline_secrets.get(&index) {
            warnings.push(format!(
                "channel {:?}: {secret} is written in the file; prefer {secret}_file or \
                 STATUSMON_CHANNEL__{}__{}",
                channel.id,
                env_id(&channel.id),
                secret.to_uppercase()
            ));
        }
        let ChannelSettings::Graph(settings) = &channel.kind else {
            continue;
        };
        // Each probe makes at least two Graph requests (service overviews and issues).
        let per_hour = 2.0 * 3600.0 / channel.interval.as_secs_f64();
        if per_hour > f64::from(settings.budget.per_hour.get()) {
            warnings.push(format!(
                "channel {:?}: every {} needs at least {per_hour:.0} requests an hour, beyond its \
                 budget of {}/h; some probes will be refused locally (throttled). An interval of \
                 {}s or more fits.",
                channel.id,
                humantime::format_duration(channel.interval),
                settings.budget.per_hour,
                (7200 / settings.budget.per_hour.get()).max(1) + 1
            ));
        }
    }
    warnings.extend(alert_warnings);
    Ok(Config {
        source: path.to_path_buf(),
        server: ServerConfig { listen },
        store: StoreConfig {
            path: raw
                .store
                .path
                .unwrap_or_else(|| PathBuf::from("statusmon.db")),
            retention,
        },
        policy,
        scheduler,
        archive: raw.archive.path.filter(|p| !p.as_os_str().is_empty()),
        archive_retention,
        channels,
        targets,
        alerts,
        warnings,
    })
}

/// Validates one `[[channels]]` table; the error is (key, problem).
fn channel(index: usize, mut table: toml::Table) -> Result<ChannelConfig, (String, String)> {
    let id_hint = table
        .get("id")
        .and_then(|v| v.as_str())
        .map(|id| format!("channels[{index}] ({id})"))
        .unwrap_or_else(|| format!("channels[{index}]"));
    let at = |key: &str| format!("channels[{index}].{key}");

    let mut rest = toml::Table::new();
    for key in table.keys().cloned().collect::<Vec<_>>() {
        if !COMMON_KEYS.contains(&key.as_str())
            && let Some(value) = table.remove(&key)
        {
            rest.insert(key, value);
        }
    }
    let common: RawCommon =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                id_hint.clone()
            } else {
                at(&key)
            };
            (key, e.into_inner().message().to_string())
        })?;
    check_id(&common.id).map_err(|p| (at("id"), p))?;

    let kind = ChannelKind::all()
        .iter()
        .copied()
        .find(|k| k.as_str() == common.kind)
        .ok_or_else(|| {
            let known: Vec<&str> = ChannelKind::all().iter().map(|k| k.as_str()).collect();
            (
                at("kind"),
                format!(
                    "unknown channel kind {:?}; this build supports: {}",
                    common.kind,
                    known.join(", ")
                ),
            )
        })?;
    let kind_keys = match kind {
        ChannelKind::M365StatusSite => STATUS_SITE_KEYS.to_vec(),
        ChannelKind::Graph => GRAPH_KEYS.to_vec(),
        social => social::keys(social).unwrap_or_default(),
    };
    if let Some(key) = rest.keys().find(|k| !kind_keys.contains(&k.as_str())) {
        let mut known: Vec<&str> = COMMON_KEYS.to_vec();
        known.extend(&kind_keys);
        return Err((
            at(key),
            format!(
                "unknown key for a channel of kind {kind}; known keys: {}",
                known.join(", ")
            ),
        ));
    }

    let interval = common.interval.unwrap_or(match kind {
        ChannelKind::M365StatusSite => Duration::from_secs(120),
        ChannelKind::Graph => Duration::from_secs(60),
        ChannelKind::X | ChannelKind::Mastodon | ChannelKind::Bluesky => Duration::from_secs(120),
        ChannelKind::Feed => Duration::from_secs(300),
    });
    if interval < Duration::from_millis(100) {
        return Err((at("interval"), "must be at least 100ms".into()));
    }
    let max_age = common.max_age.unwrap_or(interval * 3);
    if max_age < interval {
        return Err((
            at("max_age"),
            format!(
                "{} is shorter than interval {}: the channel would go stale between probes",
                humantime::format_duration(max_age),
                humantime::format_duration(interval)
            ),
        ));
    }
    let default_limits = Limits::default();
    let timeout = common
        .timeout
        .unwrap_or(default_limits.timeout.min(interval));
    if timeout.is_zero() || timeout > interval {
        return Err((
            at("timeout"),
            format!(
                "must be more than zero and at most the interval ({})",
                humantime::format_duration(interval)
            ),
        ));
    }
    let max_body = match common.max_body {
        // A Graph issues page holds up to 1000 issues with their posts.
        None if kind == ChannelKind::Graph => 8 * 1024 * 1024,
        None => default_limits.max_body,
        Some(n) if (1024..=64 * 1024 * 1024).contains(&n) => n as usize,
        Some(n) => {
            return Err((
                at("max_body"),
                format!("{n} bytes is outside 1024..=67108864"),
            ));
        }
    };

    let settings = match kind {
        ChannelKind::M365StatusSite => {
            let raw: RawStatusSite = serde_path_to_error::deserialize(toml::Value::Table(rest))
                .map_err(|e| {
                    (
                        at(&e.path().to_string()),
                        e.into_inner().message().to_string(),
                    )
                })?;
            let base_url = raw
                .base_url
                .unwrap_or_else(|| DEFAULT_STATUS_SITE.to_string());
            check_url("base_url", &base_url).map_err(|p| (at("base_url"), p))?;
            let mut posts = Vec::new();
            for (i, leaf) in raw
                .posts
                .unwrap_or_else(|| {
                    PostLeaf::ALL
                        .iter()
                        .map(|l| l.as_str().to_string())
                        .collect()
                })
                .iter()
                .enumerate()
            {
                let parsed = PostLeaf::parse(leaf).ok_or_else(|| {
                    let known: Vec<&str> = PostLeaf::ALL.iter().map(|l| l.as_str()).collect();
                    (
                        format!("channels[{index}].posts[{i}]"),
                        format!(
                            "unknown post {leaf:?}; the site serves: {}",
                            known.join(", ")
                        ),
                    )
                })?;
                posts.push(parsed);
            }
            ChannelSettings::M365StatusSite(StatusSiteConfig {
                base_url,
                posts,
                max_source_age: raw.max_source_age,
            })
        }
        ChannelKind::Graph => {
            let raw: RawGraph = serde_path_to_error::deserialize(toml::Value::Table(rest))
                .map_err(|e| {
                    (
                        at(&e.path().to_string()),
                        e.into_inner().message().to_string(),
                    )
                })?;
            ChannelSettings::Graph(graph_settings(&common.id, raw, &at)?)
        }
        ChannelKind::X | ChannelKind::Mastodon | ChannelKind::Bluesky | ChannelKind::Feed => {
            match social::settings(&common.id, kind, rest, &at)? {
                social::Social::X(settings) => ChannelSettings::X(settings),
                social::Social::Mastodon(settings) => ChannelSettings::Mastodon(settings),
                social::Social::Bluesky(settings) => ChannelSettings::Bluesky(settings),
                social::Social::Feed(settings) => ChannelSettings::Feed(settings),
            }
        }
    };
    Ok(ChannelConfig {
        id: common.id,
        enabled: common.enabled,
        interval,
        max_age,
        limits: Limits { timeout, max_body },
        kind: settings,
    })
}

/// Validates a Graph channel's keys and reads its credential files. Missing credentials are not
/// an error (the channel runs as `disabled` and says what to set); unreadable or contradictory
/// ones are.
fn graph_settings(
    id: &str,
    raw: RawGraph,
    at: &dyn Fn(&str) -> String,
) -> Result<GraphSettings, (String, String)> {
    if raw.tenant_id.trim().is_empty() {
        return Err((at("tenant_id"), "must not be empty".into()));
    }
    let authority = raw
        .authority
        .unwrap_or_else(|| graph::DEFAULT_AUTHORITY.to_string());
    check_url("authority", &authority).map_err(|p| (at("authority"), p))?;
    let graph_url = raw
        .graph_url
        .unwrap_or_else(|| graph::DEFAULT_GRAPH_URL.to_string());
    check_url("graph_url", &graph_url).map_err(|p| (at("graph_url"), p))?;
    let defaults = Budget::default();
    let positive = |key: &str, value: Option<u32>, default: std::num::NonZeroU32| match value {
        None => Ok(default),
        Some(n) => {
            std::num::NonZeroU32::new(n).ok_or_else(|| (at(key), "must be at least 1".into()))
        }
    };
    let budget = Budget {
        per_minute: positive(
            "budget_per_minute",
            raw.budget_per_minute,
            defaults.per_minute,
        )?,
        per_hour: positive("budget_per_hour", raw.budget_per_hour, defaults.per_hour)?,
    };

    let env_name = format!("STATUSMON_CHANNEL__{}__CLIENT_SECRET", env_id(id));
    let secret = match (raw.client_secret, &raw.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err((
                at("client_secret_file"),
                format!("set either client_secret_file or client_secret ({env_name}), not both"),
            ));
        }
        (Some(secret), None) => Some(secret),
        (None, Some(path)) => Some(
            read_secret_file("client_secret_file", path)
                .map_err(|p| (at("client_secret_file"), p))?,
        ),
        (None, None) => None,
    };
    let certificate = match (&raw.certificate_file, &raw.private_key_file) {
        (Some(cert), Some(key)) => {
            let certificate_pem = std::fs::read_to_string(cert).map_err(|e| {
                (
                    at("certificate_file"),
                    format!("cannot read {}: {e}", cert.display()),
                )
            })?;
            let private_key_pem = read_secret_file("private_key_file", key)
                .map_err(|p| (at("private_key_file"), p))?;
            Some(Credential::Certificate {
                certificate_pem,
                private_key_pem,
            })
        }
        (Some(_), None) => {
            return Err((
                at("private_key_file"),
                "certificate_file is set but private_key_file is not; set both".into(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                at("certificate_file"),
                "private_key_file is set but certificate_file is not; set both".into(),
            ));
        }
        (None, None) => None,
    };
    let credential = match (secret, certificate, &raw.client_id) {
        (Some(_), Some(_), _) => {
            return Err((
                at("certificate_file"),
                "both a client secret and a certificate are set; choose one".into(),
            ));
        }
        (_, _, None) => Err(
            "no client_id: set client_id to the app registration's Application (client) ID".into(),
        ),
        (Some(secret), None, Some(_)) => Ok(Credential::Secret(secret)),
        (None, Some(certificate), Some(_)) => Ok(certificate),
        (None, None, Some(_)) => Err(format!(
            "no credentials: set client_secret_file, or {env_name}, or certificate_file and \
             private_key_file"
        )),
    };
    Ok(GraphSettings {
        tenant_id: raw.tenant_id,
        client_id: raw.client_id,
        credential,
        authority,
        graph_url,
        budget,
    })
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "{id:?} may only use letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

fn check_url(key: &str, url: &str) -> Result<(), String> {
    statusmon_channels::http::base_url(key, url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The id as it appears in environment variable names: capitals, every other character `_`.
pub fn env_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Applies `STATUSMON_*` overrides to the parsed table. Returns the keys it set (as config key
/// paths, e.g. `channels[0].base_url`) with the variable that set each.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigErrors> {
    let mut set = Vec::new();
    let mut errors = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_RESERVED.contains(&k.as_str()))
        .collect();
    vars.sort();
    for (var, raw_value) in vars {
        let rest = &var[ENV_PREFIX.len()..];
        let parts: Vec<&str> = rest.split("__").collect();
        let value = env_value(&raw_value);
        let bad = |problem: String| ConfigError {
            origin: Origin::Env(var.clone()),
            key: None,
            problem,
        };
        match parts.as_slice() {
            [entry @ ("CHANNEL" | "SINK"), id, key] if !id.is_empty() && !key.is_empty() => {
                let array = if *entry == "CHANNEL" {
                    "channels"
                } else {
                    "sinks"
                };
                let channels = table.get_mut(array).and_then(|c| c.as_array_mut());
                let found = channels.and_then(|channels| {
                    channels.iter_mut().enumerate().find_map(|(i, c)| {
                        let c = c.as_table_mut()?;
                        let matches = c.get("id").and_then(|v| v.as_str()).map(env_id)
                            == Some(id.to_string());
                        matches.then_some((i, c))
                    })
                });
                match found {
                    Some((i, channel)) => {
                        let key = key.to_ascii_lowercase();
                        set.push((format!("{array}[{i}].{key}"), var.clone()));
                        channel.insert(key, value);
                    }
                    None => errors.push(bad(format!(
                        "no {} whose id matches {id} (ids are matched in capitals with \
                         other characters as '_')",
                        &array[..array.len() - 1]
                    ))),
                }
            }
            [section, key] if !section.is_empty() && !key.is_empty() => {
                let section = section.to_ascii_lowercase();
                let key = key.to_ascii_lowercase();
                let entry = table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry.as_table_mut() {
                    Some(t) => {
                        set.push((format!("{section}.{key}"), var.clone()));
                        t.insert(key, value);
                    }
                    None => errors.push(bad(format!("{section} is not a table"))),
                }
            }
            _ => errors.push(bad(
                "not a config override; use STATUSMON_<SECTION>__<KEY>, \
                 STATUSMON_CHANNEL__<ID>__<KEY> or STATUSMON_SINK__<ID>__<KEY>"
                    .into(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<BTreeMap<String, toml::Value>>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut m| m.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Reads a secret from a `*_file` path: the file's content without its trailing newline. The
/// error names the key and the path, never the content.
pub fn read_secret_file(key: &str, path: &Path) -> Result<SecretString, String> {
    let content = std::fs::read_to_string(path)
        .map_err(|e| format!("{key}: cannot read secret file {}: {e}", path.display()))?;
    let secret = content.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(format!("{key}: secret file {} is empty", path.display()));
    }
    Ok(SecretString::from(secret.to_string()))
}
