//! `break-glass-local doctor`: checks a deployment without granting
//! anything (`break_glass_core::doctor`), through the AWS SDK and Slack's
//! Web API (`break_glass_adapters::doctor`).

use std::time::Duration;

use aws_config::SdkConfig;
use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::doctor::AwsDeployment;
use break_glass_adapters::in_region;
use break_glass_adapters::policy::SsmParameter;
use break_glass_core::clock::SystemClock;
use break_glass_core::config::Env;
use break_glass_core::doctor::policy::{KnownPermissionSets, PolicySettings, examine_rules};
use break_glass_core::doctor::{self, Finding, Settings};
use break_glass_core::domain::AccessDuration;
use break_glass_core::ports::{Deployment, Directory};
use break_glass_core::requester::PolicyRules;

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
/// Where the policy's rules are, from the same source as [`settings`].
pub fn policy_settings(
    source: &Source,
    env: &dyn Env,
    settings: &Settings,
) -> Result<PolicySettings, String> {
    match source {
        Source::Outputs(json) => PolicySettings::from_outputs(json, &settings.instance),
        Source::Environment => PolicySettings::from_env(env, &settings.instance),
    }
    .map_err(|e| e.to_string())
}

/// One line per policy rule, with what it resolves to, and a line per
/// problem (what a rule names that cannot be found, or lies outside the
/// allow lists). Read as the functions read the rules.
pub async fn run_policy(
    settings: &Settings,
    policy: &PolicySettings,
    sdk: &SdkConfig,
    options: &Options,
) -> Vec<Finding> {
    let sdk = in_region(sdk, settings.region.as_deref());
    let sso_sdk = in_region(&sdk, settings.sso_region.as_deref());
    let rules = PolicyRules::from_setting(
        policy.policy.as_ref(),
        &settings.instance,
        AccessDuration::MAX,
        |name| Box::new(SsmParameter::from_sdk(&sdk, name)),
    );
    let directory = policy
        .identity_store_id
        .as_ref()
        .map(|id| IdentityStore::from_sdk(&sso_sdk, id));
    // The allowed permission sets by name, for rules that name one by name.
    let deployment = AwsDeployment::new(&sdk, settings.sso_region.as_deref(), &settings.slack.api_url);
    let mut known = KnownPermissionSets::new();
    for arn in &settings.permission_sets {
        if let Ok(Ok(info)) =
            tokio::time::timeout(options.limit, deployment.permission_set(&settings.instance, arn)).await
        {
            known.insert(info.name, arn.clone());
        }
    }
    examine_rules(
        &rules,
        directory.as_ref().map(|d| d as &dyn Directory),
        &settings.accounts,
        &known,
        &SystemClock,
        options.limit,
    )
    .await
}

pub async fn run(settings: &Settings, sdk: &SdkConfig, options: &Options) -> Vec<Finding> {
    let sdk = in_region(sdk, settings.region.as_deref());
    let mut deployment = AwsDeployment::new(&sdk, settings.sso_region.as_deref(), &settings.slack.api_url);
    if let Some(url) = &options.cloudtrail_endpoint {
        deployment = deployment.with_cloudtrail_endpoint(url);
    }
    doctor::examine(settings, &deployment, &options.definition, options.limit).await
}
