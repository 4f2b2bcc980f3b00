//! Wiring only: configuration and clients once per cold start, then the runtime.

use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::policy::SsmParameter;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_adapters::{function_sdk_config, in_region, secrets};
use break_glass_core::clock::SystemClock;
use break_glass_core::config::ProcessEnv;
use break_glass_core::requester::PolicyRules;
use break_glass_core::retry::Backoff;
use grant_access::{Config, Deps, handle};
use lambda_runtime::{LambdaEvent, service_fn};
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
    let directory = IdentityStore::from_sdk(&sso_sdk, &config.identity_store_id);
    let ledger = DynamoLedger::from_sdk(&sdk, &config.ledger_table);
    let slack = SlackWebApi::new(&config.slack.api_url, Some(token));
    let rules = PolicyRules::from_setting(
        config.policy.as_ref(),
        &config.instance,
        config.rule_limits().max_duration,
        |name| Box::new(SsmParameter::from_sdk(&sdk, name)),
    );
    // Read now: a policy that cannot be read or is invalid stops the
    // function at cold start, naming the rule and the field.
    rules.current(&SystemClock, Backoff::API).await?;
    let deps = Deps {
        config: &config,
        identity_center: &identity_center,
        directory: &directory,
        ledger: &ledger,
        slack: &slack,
        clock: &SystemClock,
        rules: &rules,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(event.payload, deps).await
    }))
    .await
}
