//! From posts to an observation: the part every social channel (X, Mastodon, Bluesky, feeds)
//! shares once it has fetched and parsed its posts.
//!
//! A social channel remembers the posts it has seen in a [`PostLog`] (X and Mastodon fetch only
//! what is new since the last probe, so one probe's page is not the whole story), groups them
//! into threads, merges threads that name the same incident id, and reports:
//!
//! - one [`IncidentObservation`] per incident id of each recent thread (one without an id when
//!   the thread names none), with the thread's [`Stage`] as its status;
//! - for each thread that is still open (investigating, identified, recovering) a statement about
//!   each service it concerns: `incident` while investigating or identified, `advisory` while
//!   recovering. Resolved, informational and quiet threads say nothing about services — a social
//!   channel never says a service is operational, and a quiet thread's outcome is unknown.
//!
//! Which services a thread concerns is read from its incident ids' prefixes and the product
//! names it mentions ([`SERVICES`]); a thread that names none concerns the Microsoft 365 suite.
//! Prefixes are a hint, not a fact (Microsoft publishes no prefix table and `MO226574` was an
//! Exchange issue), which is one more reason these statements are low confidence.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use super::classify::Stage;
use super::thread::{Post, Thread, group, stage_at};
use crate::model::{
    Health, IncidentClassification, IncidentObservation, Observation, ServiceObservation,
    SharedText,
};
use crate::text::shorten;

/// How a social channel turns its posts into an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocialSettings {
    /// Threads whose last post is older than this are left out of observations.
    pub history: Duration,
    /// An open thread with no post for this long is `unknown` (design §4), never `resolved`.
    pub quiet_after: Duration,
    /// The most posts a channel remembers; the oldest go first.
    pub max_posts: usize,
    /// The source has no reply links (RSS/Atom), so a post that names no incident id, posted
    /// while an incident is open, is read as that incident's follow-up (the way a person reads a
    /// status feed) instead of as an incident of its own.
    pub unlinked_follow_ups: bool,
}

impl Default for SocialSettings {
    fn default() -> Self {
        SocialSettings {
            history: Duration::from_secs(3 * 24 * 3600),
            quiet_after: Duration::from_secs(6 * 3600),
            max_posts: 500,
            unlinked_follow_ups: false,
        }
    }
}

/// The posts a channel has seen, each id once, pruned to its [`SocialSettings`]; oldest first.
///
/// A sorted `Vec`, not a map: a channel keeps a few posts to a few hundred, and a thousand
/// channels each holding a map's 11-slot leaf for three posts cost a megabyte for nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostLog {
    posts: Vec<Post>,
}

impl PostLog {
    /// Adds or replaces posts (an edited post arrives again under the same id).
    pub fn merge(&mut self, posts: impl IntoIterator<Item = Post>) {
        for post in posts {
            match self.posts.iter_mut().find(|p| p.id == post.id) {
                Some(known) => *known = post,
                None => self.posts.push(post),
            }
        }
        self.posts
            .sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    }

    /// Forgets the given posts (earlier versions of edited posts, which X gives new ids).
    pub fn forget(&mut self, ids: &[String]) {
        self.posts.retain(|p| !ids.contains(&p.id));
    }

    /// Forgets posts older than `history` and all but the newest `max_posts`.
    pub fn prune(&mut self, now: DateTime<Utc>, settings: &SocialSettings) {
        let oldest = TimeDelta::from_std(settings.history)
            .ok()
            .and_then(|history| now.checked_sub_signed(history));
        if let Some(oldest) = oldest {
            self.posts.retain(|p| p.created_at >= oldest);
        }
        let excess = self.posts.len().saturating_sub(settings.max_posts);
        self.posts.drain(..excess);
        self.posts.shrink_to_fit();
    }

    /// The posts, oldest first.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.clone()
    }

    /// How many posts are remembered.
    pub fn len(&self) -> usize {
        self.posts.len()
    }

    /// Whether no post is remembered.
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty()
    }
}

/// Services a social post can be tied to: (incident-id prefix, words in the text, service id,
/// display name). Ids are Graph's `serviceHealth` ids, so a social statement lands on the same
/// line as Graph's. The last entry is the fallback for a thread that names no service.
pub const SERVICES: &[(&str, &[&str], &str, &str)] = &[
    (
        "EX",
        &["exchange online", "outlook on the web", "outlook desktop"],
        "Exchange",
        "Exchange Online",
    ),
    (
        "TM",
        &["microsoft teams", "teams"],
        "microsoftteams",
        "Microsoft Teams",
    ),
    ("SP", &["sharepoint"], "SharePoint", "SharePoint Online"),
    (
        "OD",
        &["onedrive"],
        "OneDriveForBusiness",
        "OneDrive for Business",
    ),
    ("MO", &[], "OSDPPlatform", "Microsoft 365 suite"),
];

/// The services a thread concerns, as (id, name), in [`SERVICES`] order: those its incident ids'
/// prefixes name, and those its posts mention by product name; the Microsoft 365 suite when
/// neither says.
pub fn thread_services(thread: &Thread) -> Vec<(&'static str, &'static str)> {
    let text: String = thread
        .posts
        .iter()
        .map(|p| p.text.to_lowercase())
        .collect::<Vec<_>>()
        .join(" \n ");
    let mentions = |word: &str| {
        text.match_indices(word).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + word.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    };
    let found: Vec<(&str, &str)> = SERVICES
        .iter()
        .filter(|(prefix, words, _, _)| {
            thread.incident_ids.iter().any(|id| id.starts_with(prefix))
                || words.iter().any(|w| mentions(w))
        })
        .map(|(_, _, id, name)| (*id, *name))
        .collect();
    if found.is_empty() {
        let (_, _, id, name) = SERVICES[SERVICES.len() - 1];
        vec![(id, name)]
    } else {
        found
    }
}

/// The health an open stage stands for; `None` for stages that say nothing about services.
pub fn stage_health(stage: Stage) -> Option<Health> {
    match stage {
        Stage::Investigating | Stage::Identified => Some(Health::Incident),
        Stage::Recovering => Some(Health::Advisory),
        Stage::Resolved | Stage::Informational | Stage::Unknown => None,
    }
}

/// Groups posts into threads and joins threads that name a common incident id (a new root post
/// about an incident already under way continues it; feeds have no reply links at all). With
/// [`SocialSettings::unlinked_follow_ups`], a thread that names no id and starts while the latest
/// incident thread is open (not resolved or informational, and not quiet for
/// [`SocialSettings::quiet_after`]) joins that thread.
pub fn incident_threads(posts: &[Post], settings: &SocialSettings) -> Vec<Thread> {
    let quiet = TimeDelta::from_std(settings.quiet_after).unwrap_or(TimeDelta::MAX);
    let mut joined: Vec<Thread> = Vec::new();
    for thread in group(posts) {
        let same_incident = joined.iter().position(|t| {
            t.incident_ids
                .iter()
                .any(|id| thread.incident_ids.contains(id))
        });
        let continued = || {
            let started = thread.posts.first()?.created_at;
            let (at, latest) = joined
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.incident_ids.is_empty())
                .max_by_key(|(_, t)| t.last_post_at())?;
            let last = latest.last_post_at()?;
            let open = !matches!(
                latest.latest_stage(),
                Some(Stage::Resolved | Stage::Informational)
            );
            (open && started >= last && started.signed_duration_since(last) <= quiet).then_some(at)
        };
        let target = match same_incident {
            Some(at) => Some(at),
            None if settings.unlinked_follow_ups && thread.incident_ids.is_empty() => continued(),
            None => None,
        };
        match target.and_then(|at| joined.get_mut(at)) {
            Some(earlier) => {
                earlier.posts.extend(thread.posts);
                earlier.posts.sort_by_key(|p| p.created_at);
                for id in thread.incident_ids {
                    if !earlier.incident_ids.contains(&id) {
                        earlier.incident_ids.push(id);
                    }
                }
            }
            None => joined.push(thread),
        }
    }
    joined
}

/// What a social channel's posts say at `now`: the service statements and incidents of
/// [the module docs](self), from the threads whose last post is within `settings.history`.
pub fn observe(
    posts: &[Post],
    now: DateTime<Utc>,
    settings: &SocialSettings,
) -> (Vec<ServiceObservation>, Vec<IncidentObservation>) {
    let history = TimeDelta::from_std(settings.history).unwrap_or(TimeDelta::MAX);
    let mut services: Vec<ServiceObservation> = Vec::new();
    let mut incidents = Vec::new();
    for thread in incident_threads(posts, settings) {
        let (Some(first), Some(last)) = (thread.posts.first(), thread.posts.last()) else {
            continue;
        };
        if now.signed_duration_since(last.created_at) > history {
            continue;
        }
        let latest = thread.latest_stage();
        let stage = stage_at(latest, Some(last.created_at), now, settings.quiet_after);
        let status = match stage {
            Stage::Unknown if latest.is_some() => format!(
                "unknown: no post for over {}",
                crate::error::humanize(settings.quiet_after)
            ),
            Stage::Unknown => "unknown: no post says what is happening".to_string(),
            other => other.as_str().to_string(),
        };
        let shortened = shorten(&first.text, 140);
        let title = if shortened == *first.text {
            SharedText::clone(&first.text)
        } else {
            SharedText::from(shortened)
        };
        let summary = SharedText::clone(&last.text);
        let thread_services = thread_services(&thread);
        let ids: Vec<Option<String>> = if thread.incident_ids.is_empty() {
            vec![None]
        } else {
            thread.incident_ids.iter().cloned().map(Some).collect()
        };
        for id in ids {
            let service = match id.as_deref().and_then(service_by_prefix) {
                Some(service) => Some(service.to_string()),
                None if thread_services.len() == 1 => Some(thread_services[0].0.to_string()),
                None => None,
            };
            incidents.push(IncidentObservation {
                id,
                title: SharedText::clone(&title),
                service,
                classification: IncidentClassification::Unknown,
                status: status.clone(),
                resolved: stage == Stage::Resolved,
                started_at: Some(first.created_at),
                updated_at: Some(last.created_at),
                summary: Some(SharedText::clone(&summary)),
            });
        }
        let Some(health) = stage_health(stage) else {
            continue;
        };
        for (id, name) in thread_services {
            let statement = ServiceObservation {
                id: id.to_string(),
                name: name.to_string(),
                health,
                status_text: stage.as_str().to_string(),
                as_of: Some(last.created_at),
                message: Some(summary.to_string()),
                incidents: thread.incident_ids.clone(),
            };
            match services.iter_mut().find(|s| s.id == id) {
                Some(existing) => {
                    for incident in &thread.incident_ids {
                        if !existing.incidents.contains(incident) {
                            existing.incidents.push(incident.clone());
                        }
                    }
                    let worse = health.alarm_rank() > existing.health.alarm_rank();
                    let newer = health == existing.health && statement.as_of > existing.as_of;
                    if worse || newer {
                        let incidents = std::mem::take(&mut existing.incidents);
                        *existing = ServiceObservation {
                            incidents,
                            ..statement
                        };
                    }
                }
                None => services.push(statement),
            }
        }
    }
    // Kept until the channel's next probe: no room for statements never coming.
    services.shrink_to_fit();
    incidents.shrink_to_fit();
    (services, incidents)
}

fn service_by_prefix(id: &str) -> Option<&'static str> {
    SERVICES
        .iter()
        .find(|(prefix, ..)| id.starts_with(prefix))
        .map(|(_, _, service, _)| *service)
}

/// A digest of what the posts say (ids, times and texts), so an unchanged timeline gives the same
/// digest whichever page it came from.
pub fn digest(posts: &[Post]) -> String {
    let mut hasher = Sha256::new();
    for post in posts {
        for part in [
            post.id.as_str(),
            &post.created_at.to_rfc3339(),
            post.reply_to.as_deref().unwrap_or(""),
            post.root.as_deref().unwrap_or(""),
            &*post.text,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
    }
    format!("{:x}", hasher.finalize())
}

/// The observation a social channel reports after a probe at `observed_at`: what
/// [`observe`] makes of every post it remembers, stamped with the newest post's time.
pub fn observation(
    channel: &str,
    log: &PostLog,
    observed_at: DateTime<Utc>,
    settings: &SocialSettings,
) -> Observation {
    let posts = log.posts.as_slice();
    let (services, incidents) = observe(posts, observed_at, settings);
    Observation {
        channel: channel.to_string(),
        observed_at,
        source_time: posts.iter().map(|p| p.created_at).max(),
        services,
        incidents,
        faults: Vec::new(),
        digest: digest(posts),
    }
}
