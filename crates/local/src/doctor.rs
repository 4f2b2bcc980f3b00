//! `break-glass-local doctor`: checks a deployment without granting
//! anything (`break_glass_core::doctor`), through the AWS SDK and Slack's
//! Web API (`break_glass_adapters::doctor`).

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use break_glass_adapters::doctor::AwsDeployment;
use break_glass_core::config::Env;
use break_glass_core::doctor::{self, Finding, Settings};

/// The definition this build ships: what the deployed one must match.
pub const SHIPPED_DEFINITION: &str = include_str!("../../../statemachine/break-glass.asl.json");

/// Where the settings come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `terraform output -json`'s text.
    Outputs(String),
    /// The functions' variables.
    Environment,
}

pub fn settings(source: &Source, env: &dyn Env) -> Result<Settings, String> {
    match source {
        Source::Outputs(json) => Settings::from_outputs(json, env).map_err(|e| e.to_string()),
        Source::Environment => Settings::from_env(env).map_err(|e| e.to_string()),
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The template the deployed definition is compared with.
    pub definition: String,
    /// How long each call may take.
    pub limit: Duration,
    /// A CloudTrail stand-in (tests); `None`: the SDK's endpoint.
    pub cloudtrail_endpoint: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            definition: SHIPPED_DEFINITION.into(),
            limit: doctor::CALL_TIMEOUT,
            cloudtrail_endpoint: None,
        }
    }
}

/// Every check, with `sdk`'s credentials, in the deployment's region (the
/// settings' when they name one).
pub async fn run(settings: &Settings, sdk: &SdkConfig, options: &Options) -> Vec<Finding> {
    let sdk = match &settings.region {
        Some(region) => sdk.to_builder().region(Region::new(region.clone())).build(),
        None => sdk.clone(),
    };
    let mut deployment = AwsDeployment::new(&sdk, settings.sso_region.as_deref(), &settings.slack.api_url);
    if let Some(url) = &options.cloudtrail_endpoint {
        deployment = deployment.with_cloudtrail_endpoint(url);
    }
    doctor::examine(settings, &deployment, &options.definition, options.limit).await
}
