//! Wiring only: configuration and clients once per cold start, then the runtime.

use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::session_policy::IamSessionPolicy;
use break_glass_adapters::{function_sdk_config, in_region, slack_or_unreachable};
use break_glass_core::clock::SystemClock;
use break_glass_core::config::ProcessEnv;
use break_glass_core::ports::SessionPolicy;
use lambda_runtime::{LambdaEvent, service_fn};
use revoke_access::{Config, Deps, EndSessions, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    break_glass_adapters::init_logging();
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = function_sdk_config();
    // Without Slack the revoke still runs; its output says the thread was not told.
    let slack = slack_or_unreachable(&sdk, config.slack.as_ref()).await;
    let identity_center = SsoAdmin::from_sdk(
        &in_region(&sdk, config.sso_region.as_deref()),
        config.instance.clone(),
    );
    let ledger = DynamoLedger::from_sdk(&sdk, &config.ledger_table);
    let session_policy = match &config.end_sessions {
        EndSessions::On {
            audit_role,
            policy_name,
        } => Some(IamSessionPolicy::new(&sdk, audit_role, policy_name)),
        _ => None,
    };
    let deps = Deps {
        session_policy: session_policy.as_ref().map(|p| p as &dyn SessionPolicy),
        config: &config,
        identity_center: &identity_center,
        ledger: &ledger,
        slack: &slack,
        clock: &SystemClock,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(event.payload, deps).await
    }))
    .await
}
