//! statusmon's upstream channels.
//!
//! A channel is one configured source of Microsoft 365 status (the public status site, Graph, a
//! social feed). This crate knows how to ask each source once and how to turn its answer into an
//! [`Observation`] or a classified [`ProbeError`]. It deliberately knows nothing of storage, the
//! resolver, schedules, retries or the web: those belong to the `statusmon` daemon, which treats
//! every channel through the [`Channel`] trait.
//!
//! Every upstream response is untrusted: [`http::Fetcher`] caps its size and time, gates its
//! content type and classifies every failure, and the parsers are pure functions over bytes.

pub mod clock;
pub mod error;
pub mod graph;
pub mod http;
pub mod model;
pub mod social;
pub mod status_site;
pub mod tape;
pub mod text;

#[cfg(test)]
mod test_server;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use error::{ErrorClass, ProbeError};
pub use model::{
    ChannelKind, Fault, Health, IncidentClassification, IncidentObservation, Observation,
    ServiceObservation, SharedText, SourceAuthority,
};

/// A boxed future, so channels of different kinds can live behind one `dyn Channel`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One source of Microsoft 365 status.
///
/// A probe is a single attempt: it makes no retries (the scheduler owns retry policy, so every
/// attempt is visible in telemetry) and knows nothing of other channels (the resolver owns
/// priority and fallback).
pub trait Channel: Send + Sync + fmt::Debug {
    /// The configured channel id, e.g. `m365-public`.
    fn id(&self) -> &str;
    /// The kind, used for labels and for the resolver's trust rules.
    fn kind(&self) -> ChannelKind;
    /// Asks the source once.
    fn probe(&self) -> BoxFuture<'_, Result<Observation, ProbeError>>;
}
