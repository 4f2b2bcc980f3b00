//! Wiring only: configuration and clients once per cold start, then the runtime.

use break_glass_adapters::alerts::Sns;
use break_glass_adapters::executions::StepFunctions;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::session_policy::IamSessionPolicy;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_adapters::{function_sdk_config, in_region, secrets};
use break_glass_core::clock::SystemClock;
use break_glass_core::config::ProcessEnv;
use break_glass_core::ports::{Alerts, SessionPolicy};
use lambda_runtime::{LambdaEvent, service_fn};
use reconcile_access::{Config, Deps, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    break_glass_adapters::init_logging();
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = function_sdk_config();
    // Identity Center answers only in its home region.
    let sso_sdk = in_region(&sdk, config.sso_region.as_deref());
    let token = BotToken::new(secrets::resolve_with(&sdk, &config.slack.bot_token).await?);
    let identity_center = SsoAdmin::from_sdk(&sso_sdk, config.instance.clone());
    let ledger = DynamoLedger::from_sdk(&sdk, &config.ledger_table);
    let executions = StepFunctions::from_sdk(&sdk, &config.state_machine_arn);
    let slack = SlackWebApi::new(&config.slack.api_url, Some(token));
    let sns = config
        .alert_topic_arn
        .as_ref()
        .map(|arn| Sns::from_sdk(&sdk, arn));
    let session_policy = config
        .session_policy
        .as_ref()
        .map(|p| IamSessionPolicy::new(&sdk, &p.audit_role, &p.policy_name));
    let deps = Deps {
        session_policy: session_policy.as_ref().map(|p| p as &dyn SessionPolicy),
        config: &config,
        ledger: &ledger,
        identity_center: &identity_center,
        executions: &executions,
        slack: &slack,
        alerts: sns.as_ref().map(|s| s as &dyn Alerts),
        clock: &SystemClock,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(event.payload, deps).await
    }))
    .await
}
