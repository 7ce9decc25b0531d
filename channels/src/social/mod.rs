//! Social feeds (@MSFT365Status on X, Mastodon, Bluesky, RSS): free-text posts turned into
//! incident stages.
//!
//! This module holds the part every social channel shares and that needs no network: the
//! [`classify`] of one post into a lifecycle stage and incident ids, and the [`thread`] grouping
//! that gives follow-ups their incident and expires quiet open incidents to `unknown`. The
//! channels that fetch posts build on it: [`x`] (an account's timeline on X), [`mastodon`],
//! [`bluesky`] and [`feed`] (RSS/Atom), with what they share over HTTP (rate-limit hold, `Link`
//! paging, error envelopes) in [`common`]. [`observe`] turns the posts a channel remembers into
//! its observation.
//!
//! A social post is a low-confidence signal (design §3): nothing here ever says a service is
//! operational, and a silent feed proves nothing.

pub mod bluesky;
pub mod classify;
pub mod common;
pub mod feed;
pub mod mastodon;
pub mod observe;
pub mod thread;
pub mod x;

pub use classify::{Classification, FixtureLabel, RULES, Stage, classify};
pub use observe::{PostLog, SocialSettings, observation};
pub use thread::{Post, Thread, group, thread_state};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
