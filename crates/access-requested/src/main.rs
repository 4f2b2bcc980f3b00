//! Wiring only: configuration and clients once per cold start, then the runtime.

use access_requested::{Config, ControlDeps, Deps, RuleDeps, handle};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::executions::StepFunctions;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::policy::SsmParameter;
use break_glass_adapters::slack::{BotToken, DEFAULT_API_URL, SlackWebApi};
use break_glass_adapters::{function_sdk_config, in_region, secrets};
use break_glass_core::clock::SystemClock;
use break_glass_core::config::ProcessEnv;
use break_glass_core::requester::{LookupCache, PolicyRules};
use break_glass_core::retry::Backoff;
use break_glass_core::slack::SigningSecret;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    break_glass_adapters::init_logging();
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = function_sdk_config();
    let secret = SigningSecret::new(secrets::resolve_with(&sdk, &config.signing_secret).await?);
    if secret.is_empty() {
        return Err("the Slack signing secret is empty".into());
    }
    let executions = StepFunctions::from_sdk(&sdk, &config.state_machine_arn);
    // The bot token reads profiles (rules) and opens modals, posts and
    // publishes App Home (control); without either, response_url suffices.
    let bot = config
        .control
        .as_ref()
        .map(|c| &c.slack)
        .or(config.rules.as_ref().map(|r| &r.slack));
    let slack = match bot {
        None => SlackWebApi::new(DEFAULT_API_URL, None),
        Some(settings) => {
            let token = BotToken::new(secrets::resolve_with(&sdk, &settings.bot_token).await?);
            SlackWebApi::new(&settings.api_url, Some(token))
        }
    };
    let policy = PolicyRules::from_setting(
        config.rules.as_ref().map(|r| &r.setting),
        &config.policy.instance,
        config.policy.max_duration,
        |name| Box::new(SsmParameter::from_sdk(&sdk, name)),
    );
    // Read now: a policy that cannot be read or is invalid stops the
    // function at cold start, naming the rule and the field.
    policy.current(&SystemClock, Backoff::API).await?;
    let store_id = config
        .rules
        .as_ref()
        .map(|r| r.identity_store_id.as_str())
        .unwrap_or_default();
    // Identity Center answers only in its home region.
    let sso_sdk = in_region(&sdk, config.sso_region.as_deref());
    let directory = IdentityStore::from_sdk(&sso_sdk, store_id);
    let identity_center = SsoAdmin::from_sdk(&sso_sdk, config.policy.instance.clone());
    let cache = LookupCache::default();
    let ledger = config
        .control
        .as_ref()
        .map(|c| DynamoLedger::from_sdk(&sdk, &c.ledger_table));
    let deps = Deps {
        config: &config,
        secret: &secret,
        executions: &executions,
        slack: &slack,
        clock: &SystemClock,
        rules: config.rules.as_ref().map(|_| RuleDeps {
            policy: &policy,
            directory: &directory,
            identity_center: &identity_center,
            cache: &cache,
        }),
        control: config
            .control
            .as_ref()
            .zip(ledger.as_ref())
            .map(|(c, ledger)| ControlDeps {
                config: c,
                ledger,
                identity_center: &identity_center,
            }),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, std::convert::Infallible>(handle(event.payload, deps).await)
        },
    ))
    .await
}
