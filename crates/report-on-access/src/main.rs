//! Wiring only: configuration and clients once per cold start, then the runtime.

use break_glass_adapters::alerts::Sns;
use break_glass_adapters::audit::CloudTrailLookup;
use break_glass_adapters::audit_logs::LogsInsightsQueries;
use break_glass_adapters::mailer::Ses;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_adapters::{function_sdk_config, own_account, secrets};
use break_glass_core::clock::SystemClock;
use break_glass_core::config::ProcessEnv;
use lambda_runtime::{LambdaEvent, service_fn};
use report_on_access::{Config, Deps, ReportSource, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    break_glass_adapters::init_logging();
    let mut config = Config::from_env(&ProcessEnv)?;
    let sdk = function_sdk_config();
    config.own_account = own_account(&sdk).await;
    let token = BotToken::new(secrets::resolve_with(&sdk, &config.slack.bot_token).await?);
    let trail = CloudTrailLookup::new(&sdk, config.audit_role_name.clone());
    let insights = match &config.source {
        ReportSource::LogsInsights(group) => Some(LogsInsightsQueries::new(
            &sdk,
            group.clone(),
            config.audit_role_name.clone(),
        )),
        ReportSource::LookupEvents => None,
    };
    let mailer = Ses::from_sdk(&sdk);
    let slack = SlackWebApi::new(&config.slack.api_url, Some(token));
    let sns = config
        .alert_topic_arn
        .as_ref()
        .map(|arn| Sns::from_sdk(&sdk, arn));
    let deps = Deps {
        config: &config,
        trail: &trail,
        insights: insights.as_ref().map(|i| i as _),
        mailer: &mailer,
        slack: &slack,
        alerts: sns.as_ref().map(|s| s as _),
        clock: &SystemClock,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(event.payload, deps).await
    }))
    .await
}
