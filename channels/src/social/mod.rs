//! Social feeds (@MSFT365Status on X, Mastodon, Bluesky, RSS): free-text posts turned into
//! incident stages.
//!
//! This module holds the part every social channel shares and that needs no network: the
//! [`classify`] of one post into a lifecycle stage and incident ids, and the [`thread`] grouping
//! that gives follow-ups their incident and expires quiet open incidents to `unknown`. The
//! channels that fetch posts build on it.
//!
//! A social post is a low-confidence signal (design §3): nothing here ever says a service is
//! operational, and a silent feed proves nothing.

pub mod classify;
pub mod observe;
pub mod thread;

pub use classify::{Classification, FixtureLabel, RULES, Stage, classify};
pub use observe::{PostLog, SocialSettings, observation};
pub use thread::{Post, Thread, group, thread_state};

#[cfg(test)]
mod tests;
