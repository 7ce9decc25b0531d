//! Alerts: what changed in the resolved picture, said once per change, to people and pipelines
//! that may not be able to rely on Microsoft 365 to hear it.
//!
//! [`events::between`] is the pure core: two consecutive status documents in, alert events out,
//! each with the key of the alert it fires or resolves and an idempotency key of its own. The
//! outbox, routes and sinks build on it.

pub mod delivery;
pub mod events;
pub mod routes;
pub mod sinks;
pub mod templates;

pub use events::{AlertEvent, EventKind, Purpose, Severity};
