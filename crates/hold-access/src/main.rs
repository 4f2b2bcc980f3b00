//! Wiring only: configuration and clients once per cold start, then the runtime.

use break_glass_adapters::function_sdk_config;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_core::clock::SystemClock;
use break_glass_core::config::ProcessEnv;
use hold_access::{Config, Deps, handle};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    break_glass_adapters::init_logging();
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = function_sdk_config();
    let ledger = DynamoLedger::from_sdk(&sdk, &config.ledger_table);
    let deps = Deps {
        ledger: &ledger,
        clock: &SystemClock,
        time_scale: config.time_scale,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(event.payload, deps).await
    }))
    .await
}
