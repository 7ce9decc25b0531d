//! statusmon: keeps Microsoft 365 status visible when the channel you rely on is down.

pub mod alerts;
pub mod archive;
pub mod bench;
pub mod classify_cmd;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod engine;
pub mod metrics;
pub mod resolver;
pub mod signal;
pub mod simulator;
pub mod status;
pub mod store;
pub mod web;
