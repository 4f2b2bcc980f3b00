//! Everything Slack-shaped that needs no network: request signatures,
//! interactivity payloads, and the messages we answer with.

pub mod control;
pub mod message;
pub mod payload;
pub mod signature;
pub mod views;

pub use payload::{BreakGlassClick, Interaction, PayloadError, parse_interaction};
pub use signature::{SignatureError, SigningSecret, verify_request};
