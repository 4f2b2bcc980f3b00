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
pub mod policy;
pub mod secrets;
pub mod slack;

/// Loads the SDK configuration once per cold start: region, credentials and
/// endpoint overrides from the standard environment and profile chain.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Structured logs for a function, once per cold start. The level comes from
/// Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`) or
/// `RUST_LOG` as a plain level, default INFO; `AWS_LAMBDA_LOG_FORMAT=JSON`
/// gives JSON lines. A level, not a filter expression: the filter parser
/// links a regex engine into every function for nothing we use.
pub fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|raw| raw.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .without_time();
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
