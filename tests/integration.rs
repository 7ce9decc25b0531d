//! statusmon's integration tests: one binary (the ripgrep layout), one module per area.
//! Tests talk only to 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod support;

mod alerts;
mod alerts_delivery;
mod archive;
mod bench;
mod browser;
mod classify;
mod cli;
mod config;
mod dashboard;
mod graph;
mod hostile;
mod metrics;
mod resolver;
mod resolver_social;
mod schedule;
mod simulator;
mod simulator_graph;
mod simulator_receivers;
mod simulator_social;
mod sinks;
mod social;
mod store;
mod web;
