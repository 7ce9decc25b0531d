//! The social kinds' keys: `x`, `mastodon`, `bluesky` and `feed`.
//!
//! They share how posts become incidents (`history`, `quiet_after`) and each has its own few keys.
//! An `x` channel without a bearer token is not an error: X charges for reads, so the default
//! config names the channel and runs it as `disabled`, saying what to set.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use statusmon_channels::social::SocialSettings;
use statusmon_channels::social::bluesky::{self, BlueskyConfig};
use statusmon_channels::social::feed::FeedConfig;
use statusmon_channels::social::mastodon::MastodonConfig;
use statusmon_channels::social::x;

use super::{check_url, duration, env_id, read_secret_file};

/// An `x` channel's settings. The token is optional here, like Graph's credentials: without it
/// the channel is `disabled` with a message saying what to set.
#[derive(Debug, Clone)]
pub struct XSettings {
    /// The API host (the simulator overrides it).
    pub base_url: String,
    /// The account, without `@`.
    pub username: String,
    /// The app-only bearer token, or what to set to get one.
    pub bearer_token: Result<SecretString, String>,
    /// Posts per page (5–100).
    pub max_results: u8,
    /// Pages followed per probe.
    pub max_pages: u32,
    /// How posts become incidents.
    pub social: SocialSettings,
}

/// Keys every social kind takes.
const SOCIAL_KEYS: &[&str] = &["history", "quiet_after"];
/// `kind = "x"` keys, after the social ones.
const X_KEYS: &[&str] = &[
    "base_url",
    "username",
    "bearer_token",
    "bearer_token_file",
    "max_results",
    "max_pages",
];
/// `kind = "mastodon"` keys, after the social ones.
const MASTODON_KEYS: &[&str] = &["base_url", "account", "limit", "max_pages"];
/// `kind = "bluesky"` keys, after the social ones.
const BLUESKY_KEYS: &[&str] = &["base_url", "actor", "limit", "max_pages"];
/// `kind = "feed"` keys, after the social ones.
const FEED_KEYS: &[&str] = &["url"];

/// The keys a social kind takes besides the common ones; `None` for other kinds.
pub(super) fn keys(kind: statusmon_channels::ChannelKind) -> Option<Vec<&'static str>> {
    use statusmon_channels::ChannelKind;
    let own = match kind {
        ChannelKind::X => X_KEYS,
        ChannelKind::Mastodon => MASTODON_KEYS,
        ChannelKind::Bluesky => BLUESKY_KEYS,
        ChannelKind::Feed => FEED_KEYS,
        ChannelKind::M365StatusSite | ChannelKind::Graph => return None,
    };
    Some([SOCIAL_KEYS, own].concat())
}

#[derive(Debug, Deserialize)]
struct RawSocial {
    #[serde(default, deserialize_with = "duration")]
    history: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    quiet_after: Option<Duration>,
    max_pages: Option<u32>,
    base_url: Option<String>,
    username: Option<String>,
    bearer_token: Option<SecretString>,
    bearer_token_file: Option<PathBuf>,
    max_results: Option<u8>,
    account: Option<String>,
    actor: Option<String>,
    limit: Option<u8>,
    url: Option<String>,
}

/// A validated social channel of one of the four kinds.
pub(super) enum Social {
    X(XSettings),
    Mastodon(MastodonConfig),
    Bluesky(BlueskyConfig),
    Feed(FeedConfig),
}

/// Validates a social channel's keys (already checked to belong to its kind).
pub(super) fn settings(
    id: &str,
    kind: statusmon_channels::ChannelKind,
    table: toml::Table,
    at: &dyn Fn(&str) -> String,
) -> Result<Social, (String, String)> {
    use statusmon_channels::ChannelKind;

    let raw: RawSocial =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            (
                at(&e.path().to_string()),
                e.into_inner().message().to_string(),
            )
        })?;
    let defaults = SocialSettings::default();
    let quiet_after = raw.quiet_after.unwrap_or(defaults.quiet_after);
    if quiet_after < Duration::from_secs(60) {
        return Err((at("quiet_after"), "must be at least 1m".into()));
    }
    let history = raw.history.unwrap_or(defaults.history);
    if history > Duration::from_secs(90 * 24 * 3600) {
        return Err((at("history"), "must be at most 90 days".into()));
    }
    if history < quiet_after {
        return Err((
            at("history"),
            format!(
                "{} is shorter than quiet_after ({}): open threads would vanish before they \
                 could go quiet",
                humantime::format_duration(history),
                humantime::format_duration(quiet_after)
            ),
        ));
    }
    let social = SocialSettings {
        history,
        quiet_after,
        ..defaults
    };
    let max_pages = match raw.max_pages {
        None => 5,
        Some(n @ 1..=50) => n,
        Some(n) => return Err((at("max_pages"), format!("{n} is outside 1..=50"))),
    };
    let in_range = |key: &str, value: Option<u8>, range: std::ops::RangeInclusive<u8>, default| {
        let value = value.unwrap_or(default);
        if range.contains(&value) {
            Ok(value)
        } else {
            Err((
                at(key),
                format!("{value} is outside {}..={}", range.start(), range.end()),
            ))
        }
    };
    let required = |key: &str, value: Option<String>, example: &str| match value {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err((
            at(key),
            format!("a {kind} channel needs {key}, e.g. {key} = {example:?}"),
        )),
    };
    let url = |key: &str, value: String| {
        check_url(key, &value).map_err(|p| (at(key), p))?;
        Ok::<_, (String, String)>(value)
    };
    Ok(match kind {
        ChannelKind::X => {
            let env_name = format!("STATUSMON_CHANNEL__{}__BEARER_TOKEN", env_id(id));
            let bearer_token = match (raw.bearer_token, &raw.bearer_token_file) {
                (Some(_), Some(_)) => {
                    return Err((
                        at("bearer_token_file"),
                        format!(
                            "set either bearer_token_file or bearer_token ({env_name}), not both"
                        ),
                    ));
                }
                (Some(token), None) => Ok(token),
                (None, Some(path)) => Ok(read_secret_file("bearer_token_file", path)
                    .map_err(|p| (at("bearer_token_file"), p))?),
                (None, None) => Err(format!(
                    "no bearer token: reading X costs credits, so this channel is opt-in; set \
                     bearer_token_file or {env_name} to an app-only token from console.x.com"
                )),
            };
            Social::X(XSettings {
                base_url: url(
                    "base_url",
                    raw.base_url.unwrap_or_else(|| x::DEFAULT_BASE_URL.into()),
                )?,
                username: raw
                    .username
                    .map(|u| u.trim().trim_start_matches('@').to_string())
                    .unwrap_or_else(|| x::DEFAULT_USERNAME.into()),
                bearer_token,
                max_results: in_range("max_results", raw.max_results, 5..=100, 100)?,
                max_pages,
                social,
            })
        }
        ChannelKind::Mastodon => Social::Mastodon(MastodonConfig {
            base_url: url(
                "base_url",
                required("base_url", raw.base_url, "https://mastodon.social")?,
            )?,
            account: required("account", raw.account, "user@example.social")?
                .trim_start_matches('@')
                .to_string(),
            limit: in_range("limit", raw.limit, 1..=40, 40)?,
            max_pages,
            social,
        }),
        ChannelKind::Bluesky => Social::Bluesky(BlueskyConfig {
            base_url: url(
                "base_url",
                raw.base_url
                    .unwrap_or_else(|| bluesky::DEFAULT_BASE_URL.into()),
            )?,
            actor: required("actor", raw.actor, "example.bsky.social")?
                .trim_start_matches('@')
                .to_string(),
            limit: in_range("limit", raw.limit, 1..=100, 50)?,
            max_pages,
            social,
        }),
        ChannelKind::Feed => {
            let feed_url = required("url", raw.url, "https://example.com/history.atom")?;
            match reqwest::Url::parse(&feed_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => {
                    return Err((
                        at("url"),
                        format!("{feed_url:?} is not an http(s) URL with a host"),
                    ));
                }
            }
            Social::Feed(FeedConfig {
                url: feed_url,
                social,
            })
        }
        ChannelKind::M365StatusSite | ChannelKind::Graph => {
            return Err((at("kind"), format!("{kind} is not a social kind")));
        }
    })
}
