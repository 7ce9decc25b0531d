//! The observation model: what a channel said, parsed and normalized, before any resolution.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ProbeError;

/// Normalized service health, in the design's vocabulary.
///
/// `Unknown` is not a level of health: it means we cannot say, and it is never shown as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// An explicit positive statement that the service works.
    Operational,
    /// Planned work.
    Maintenance,
    /// Degraded for some users.
    Advisory,
    /// Interrupted: the service or a major function is unavailable.
    Incident,
    /// No trustworthy statement.
    Unknown,
}

impl Health {
    /// The contract's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Operational => "operational",
            Health::Maintenance => "maintenance",
            Health::Advisory => "advisory",
            Health::Incident => "incident",
            Health::Unknown => "unknown",
        }
    }

    /// Severity among the known levels (`operational` = 0 … `incident` = 3); `None` for unknown,
    /// which is not comparable with a known level.
    pub fn severity(self) -> Option<u8> {
        match self {
            Health::Operational => Some(0),
            Health::Maintenance => Some(1),
            Health::Advisory => Some(2),
            Health::Incident => Some(3),
            Health::Unknown => None,
        }
    }

    /// How alarming a verdict is when several are rolled up into one: an incident outranks not
    /// knowing, and not knowing outranks any milder known level (so it is never hidden behind
    /// green or an advisory).
    pub fn alarm_rank(self) -> u8 {
        match self {
            Health::Operational => 0,
            Health::Maintenance => 1,
            Health::Advisory => 2,
            Health::Unknown => 3,
            Health::Incident => 4,
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The channel kinds this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Microsoft's public backup status site (`status.cloud.microsoft`).
    M365StatusSite,
    /// Microsoft Graph service health (`admin/serviceAnnouncement`) of one tenant: the primary.
    Graph,
    /// An account's posts on X (API v2), e.g. @MSFT365Status.
    X,
    /// An account's public posts on a Mastodon server.
    Mastodon,
    /// An account's public posts on Bluesky.
    Bluesky,
    /// Any RSS or Atom feed of posts or incidents.
    Feed,
}

impl ChannelKind {
    /// The config and contract name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::M365StatusSite => "m365_status_site",
            ChannelKind::Graph => "graph",
            ChannelKind::X => "x",
            ChannelKind::Mastodon => "mastodon",
            ChannelKind::Bluesky => "bluesky",
            ChannelKind::Feed => "feed",
        }
    }

    /// Every kind this build knows, for error messages.
    pub fn all() -> &'static [ChannelKind] {
        &[
            ChannelKind::M365StatusSite,
            ChannelKind::Graph,
            ChannelKind::X,
            ChannelKind::Mastodon,
            ChannelKind::Bluesky,
            ChannelKind::Feed,
        ]
    }

    /// How much a statement from this kind of channel is worth, before its position in a target.
    pub fn authority(self) -> SourceAuthority {
        match self {
            ChannelKind::M365StatusSite | ChannelKind::Graph => SourceAuthority::Official,
            ChannelKind::X | ChannelKind::Mastodon | ChannelKind::Bluesky | ChannelKind::Feed => {
                SourceAuthority::Social
            }
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who stands behind a channel's statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceAuthority {
    /// Microsoft's own published status (Graph, the public site): can confirm a service is fine.
    Official,
    /// Free-text posts: can warn, never confirm that anything is operational.
    Social,
}

/// What one probe of one channel said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The channel that was probed.
    pub channel: String,
    /// When the answer arrived.
    pub observed_at: DateTime<Utc>,
    /// The source's own data timestamp, when it has one (not the request clock).
    pub source_time: Option<DateTime<Utc>>,
    /// Per-service statements. A service a channel did not mention is absent, never operational.
    pub services: Vec<ServiceObservation>,
    /// Incidents the channel reported.
    pub incidents: Vec<IncidentObservation>,
    /// Parts of the probe that failed while the rest answered. Their services are `unknown`.
    pub faults: Vec<Fault>,
    /// SHA-256 of the raw payloads, to tell "same answer again" from "new answer".
    pub digest: String,
}

/// One channel's statement about one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceObservation {
    /// Stable service id (`mac`, `Exchange`, `Outlook.com`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Normalized health.
    pub health: Health,
    /// The upstream's own status word, verbatim, for display and audit.
    pub status_text: String,
    /// When the source says this was last true, if it says.
    pub as_of: Option<DateTime<Utc>>,
    /// The upstream message as plain text (vendor HTML stripped), for display only.
    pub message: Option<String>,
    /// Microsoft incident ids this statement refers to.
    pub incidents: Vec<String>,
}

/// Microsoft's classification of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentClassification {
    /// Service or major function unavailable.
    Incident,
    /// Limited impact.
    Advisory,
    /// Not stated.
    Unknown,
}

/// Text an incident carries unchanged from an observation into resolutions and timelines: shared
/// rather than copied, so a thousand targets do not each hold five copies of the same sentences.
pub type SharedText = std::sync::Arc<str>;

/// One incident as one channel reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentObservation {
    /// Microsoft's id (`EX571516`) when the channel gave one.
    pub id: Option<String>,
    /// Title as plain text.
    pub title: SharedText,
    /// The affected service id, when known.
    pub service: Option<String>,
    /// Microsoft's classification.
    pub classification: IncidentClassification,
    /// The upstream status word, verbatim.
    pub status: String,
    /// Whether the source says the incident is over.
    pub resolved: bool,
    /// Start, when stated.
    pub started_at: Option<DateTime<Utc>>,
    /// Last update, when stated.
    pub updated_at: Option<DateTime<Utc>>,
    /// The latest text as plain text.
    pub summary: Option<SharedText>,
}

/// A part of a probe that failed while the rest answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The services this part would have reported on.
    pub services: Vec<String>,
    /// What went wrong.
    pub error: ProbeError,
}

/// Finds Microsoft incident ids (two capital letters and six to eight digits, e.g. `EX571516`,
/// `MO1268822`) in free text, in order of appearance, without duplicates.
pub fn incident_ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if starts_word && bytes[i].is_ascii_uppercase() && bytes[i + 1].is_ascii_uppercase() {
            let digits = bytes[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = i + 2 + digits;
            let ends_word = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
            if (6..=8).contains(&digits) && ends_word {
                let id = &text[i..end];
                if !found.iter().any(|f| f == id) {
                    found.push(id.to_string());
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_follow_microsofts_pattern() {
        assert_eq!(
            incident_ids("EX571516 and MO1268822; see TM402718, again EX571516."),
            vec!["EX571516", "MO1268822", "TM402718"]
        );
        assert!(incident_ids("XEX571516 EX12345 EX123456789 ex571516").is_empty());
        assert_eq!(incident_ids("(EX571516)"), vec!["EX571516"]);
        assert!(incident_ids("É EX").is_empty());
    }

    #[test]
    fn unknown_outranks_mild_levels_but_not_an_incident() {
        assert!(Health::Unknown.alarm_rank() > Health::Advisory.alarm_rank());
        assert!(Health::Incident.alarm_rank() > Health::Unknown.alarm_rank());
        assert_eq!(Health::Unknown.severity(), None);
    }
}
