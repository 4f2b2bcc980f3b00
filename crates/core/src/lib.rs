//! The pure heart of break-glass-access.
//!
//! Nothing in here talks to the network or reads the environment: it owns the
//! domain types, the rules (Slack request verification, payload parsing,
//! policy), the execution contract every function consumes and produces, and
//! the ports (traits) that the adapters in `break-glass-adapters` implement.
//! Everything here is deterministic given a [`clock::Clock`], which is what
//! lets the tests pin time and never sleep.

pub mod access;
pub mod audit;
pub mod clock;
pub mod config;
pub mod contract;
pub mod doctor;
pub mod domain;
pub mod ledger;
pub mod policy;
pub mod ports;
pub mod requester;
pub mod retry;
pub mod rules;
pub mod sessions;
pub mod slack;

/// A stable, machine-readable name for an error: what a Lambda reports as
/// `errorType` and what the state machine's `Retry`/`Catch` match on.
///
/// The names are part of the public contract (see ARCHITECTURE.md); renaming
/// one silently breaks a deployed state machine's error handling.
pub trait ErrorType {
    fn error_type(&self) -> &'static str;
}
