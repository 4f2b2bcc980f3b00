//! Wiring only: configuration and clients once per cold start, then the runtime.

use access_requested::{Config, Deps, handle};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use break_glass_adapters::executions::StepFunctions;
use break_glass_adapters::slack::{DEFAULT_API_URL, SlackWebApi};
use break_glass_adapters::{sdk_config, secrets};
use break_glass_core::clock::SystemClock;
use break_glass_core::config::ProcessEnv;
use break_glass_core::slack::SigningSecret;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    break_glass_adapters::init_logging();
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = sdk_config().await;
    let secret = SigningSecret::new(secrets::resolve_with(&sdk, &config.signing_secret).await?);
    if secret.is_empty() {
        return Err("the Slack signing secret is empty".into());
    }
    let executions = StepFunctions::from_sdk(&sdk, &config.state_machine_arn);
    let slack = SlackWebApi::new(DEFAULT_API_URL, None);
    let deps = Deps {
        config: &config,
        secret: &secret,
        executions: &executions,
        slack: &slack,
        clock: &SystemClock,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, std::convert::Infallible>(handle(event.payload, deps).await)
        },
    ))
    .await
}
