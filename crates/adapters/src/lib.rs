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
pub mod doctor;
pub mod error;
pub mod executions;
pub mod identity_center;
pub mod ledger;
pub mod mailer;
pub mod policy;
pub mod secrets;
pub mod session_policy;
pub mod slack;

/// Loads the SDK configuration the way people's tools do: region,
/// credentials and endpoint overrides from the standard environment and
/// profile chain (SSO, profiles, instance metadata...), and [`http_client`]
/// for every client made from it. For break-glass-local and `doctor`; the
/// Lambda functions use [`function_sdk_config`].
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

/// [`sdk_config`] for the Lambda functions, built from the environment
/// alone, which is where Lambda puts everything they need (and where
/// break-glass-local puts it for the binaries): credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
/// `AWS_REGION`, and endpoint overrides (`AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_<SERVICE>`). Not through aws-config's loader: that
/// links the profile, SSO, web identity, ECS and instance-metadata
/// providers into every function whether asked or not (about 0.4 MiB each).
/// Retries are the SDK's standard three attempts; connecting times out after
/// 3.1 s, as the loader's defaults do.
pub fn function_sdk_config() -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region};
    use aws_smithy_types::retry::RetryConfig;
    use aws_smithy_types::timeout::TimeoutConfig;
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()
        .filter(|r| !r.is_empty())
        .map(Region::new);
    let mut builder = aws_config::SdkConfig::builder();
    builder.set_region(region);
    builder
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .identity_cache(aws_config::identity::IdentityCache::lazy().build())
        .http_client(http_client())
        .sleep_impl(
            aws_smithy_async::rt::sleep::default_async_sleep().unwrap_or_else(|| {
                aws_smithy_async::rt::sleep::SharedAsyncSleep::new(
                    aws_smithy_async::rt::sleep::TokioSleep::new(),
                )
            }),
        )
        .time_source(aws_smithy_async::time::SharedTimeSource::default())
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_millis(3100))
                .build(),
        )
        .service_config(EnvEndpoints)
        .build()
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`: the SDK's
/// environment endpoint overrides, read as its loader reads them.
#[derive(Debug)]
struct EnvEndpoints;

impl aws_types::service_config::LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let service: String = key
            .service_id()
            .chars()
            .map(|c| {
                if c == ' ' || c == '-' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        let specific = format!("{}_{service}", key.env());
        [specific.as_str(), key.env()]
            .into_iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
    }
}

/// The SDK's HTTPS client on hyper 1 and rustls with ring: the one TLS stack
/// the functions link (reqwest uses the same, see [`slack`]).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// rustls's process-wide crypto provider, which reqwest reads: ring, once.
pub(crate) fn ensure_crypto_provider() {
    // Err means one is installed already (ours, or a test's): fine either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The shared configuration with another region: Identity Center lives in
/// one home region (`SSO_REGION`), which need not be the function's.
/// Credentials, retries and endpoint overrides stay as they are.
pub fn in_region(sdk: &aws_config::SdkConfig, region: Option<&str>) -> aws_config::SdkConfig {
    match region {
        None => sdk.clone(),
        Some(region) => sdk
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build(),
    }
}

/// The Slack Web API for a function that must work without Slack
/// (revoke-access): a bot token that is not configured or cannot be read
/// is logged (never its value) and leaves a client whose posts fail the way
/// an unreachable Slack does, instead of stopping the function at cold
/// start, which would stop the revoke with it.
pub async fn slack_or_unreachable(
    sdk: &aws_config::SdkConfig,
    settings: Option<&break_glass_core::config::SlackSettings>,
) -> slack::SlackWebApi {
    let Some(settings) = settings else {
        tracing::warn!("no Slack bot token is configured: this function works, but cannot post to Slack");
        return slack::SlackWebApi::new(break_glass_core::config::SlackSettings::DEFAULT_API_URL, None);
    };
    match secrets::resolve_with(sdk, &settings.bot_token).await {
        Ok(token) if !token.is_empty() => {
            slack::SlackWebApi::new(&settings.api_url, Some(slack::BotToken::new(token)))
        }
        Ok(_) => {
            tracing::warn!("the Slack bot token is empty: this function works, but cannot post to Slack");
            slack::SlackWebApi::new(&settings.api_url, None)
        }
        Err(error) => {
            tracing::warn!(%error, "the Slack bot token could not be read: this function works, but cannot post to Slack");
            slack::SlackWebApi::new(&settings.api_url, None)
        }
    }
}

/// The account the function's own credentials belong to (STS
/// `GetCallerIdentity`, which needs no permission), or `None` when STS
/// cannot say: only wording depends on it.
pub async fn own_account(sdk: &aws_config::SdkConfig) -> Option<break_glass_core::domain::AccountId> {
    match aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await {
        Ok(identity) => identity.account.and_then(|a| a.parse().ok()),
        Err(error) => {
            tracing::warn!(error = %error::classify("sts", "GetCallerIdentity", error), "own account unknown");
            None
        }
    }
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
