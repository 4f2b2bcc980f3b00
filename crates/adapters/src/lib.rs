//! The one real implementation of each of core's ports.
//!
//! Every AWS call goes through the AWS SDK for Rust, configured from the
//! standard chain (so `AWS_ENDPOINT_URL` points it at the moto server), and
//! every error is classified once, in [`error::classify`], into core's
//! [`PortErrorKind`](break_glass_core::ports::PortErrorKind). Slack is spoken
//! over HTTP with `reqwest`.

pub mod alerts;
pub mod audit;
pub mod audit_logs;
pub mod directory;
pub mod error;
pub mod executions;
pub mod identity_center;
pub mod ledger;
pub mod mailer;
pub mod secrets;
pub mod slack;

/// Loads the SDK configuration once per cold start: region, credentials and
/// endpoint overrides from the standard environment and profile chain.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
