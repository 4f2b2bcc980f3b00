use std::collections::BTreeSet;
use std::time::Duration;

use break_glass_core::config::{self, ConfigError, Env, SlackSettings};
use break_glass_core::domain::{AccountId, InstanceArn, PermissionSetArn};

/// reconcile-access's configuration, read once at cold start: revoke-access's
/// settings, plus what the drift report and the alerts need.
#[derive(Debug, Clone)]
pub struct Config {
    pub instance: InstanceArn,
    /// Identity Center's home region for sso-admin and identitystore
    /// (`SSO_REGION`); `None`: the function's own region.
    pub sso_region: Option<String>,
    pub ledger_table: String,
    pub state_machine_arn: String,
    pub accounts: BTreeSet<AccountId>,
    pub permission_sets: BTreeSet<PermissionSetArn>,
    pub slack: SlackSettings,
    pub alert_slack_channel: Option<String>,
    pub alert_topic_arn: Option<String>,
    /// `DescribeExecution` is eventually consistent: "ended" is trusted for
    /// holders that joined at least this long ago (or named by the event).
    pub min_age: Duration,
    /// The audit role and the session revocation policy: sweeps drop the
    /// Denies whose sessions have expired from every allowed account's
    /// policy. `None`: sessions are not ended, nothing to clean.
    pub session_policy: Option<SessionPolicySettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicySettings {
    pub audit_role: String,
    pub policy_name: String,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let min_age_minutes = config::parsed::<u64>(env, "RECONCILE_MIN_AGE_MINUTES")?.unwrap_or(15);
        if !(1..=24 * 60).contains(&min_age_minutes) {
            return Err(ConfigError::Invalid {
                var: "RECONCILE_MIN_AGE_MINUTES",
                reason: "between 1 and 1440 minutes".into(),
            });
        }
        let session_policy =
            config::optional(env, "AUDIT_ROLE_NAME").map(|audit_role| SessionPolicySettings {
                audit_role,
                policy_name: config::optional(env, "SESSION_REVOCATION_POLICY_NAME")
                    .unwrap_or_else(|| break_glass_core::sessions::DEFAULT_POLICY_NAME.to_string()),
            });
        Ok(Self {
            session_policy,
            instance: config::required_parsed(env, "SSO_INSTANCE_ARN")?,
            sso_region: config::region(env, "SSO_REGION")?,
            ledger_table: config::required(env, "GRANT_LEDGER_TABLE")?,
            state_machine_arn: config::required(env, "STATE_MACHINE_ARN")?,
            accounts: config::required_allow_list(env, "ALLOWED_ACCOUNT_IDS")?,
            permission_sets: config::required_allow_list(env, "ALLOWED_PERMISSION_SET_ARNS")?,
            slack: SlackSettings::from_env(env)?,
            alert_slack_channel: config::optional(env, "ALERT_SLACK_CHANNEL"),
            alert_topic_arn: config::optional(env, "ALERT_TOPIC_ARN"),
            min_age: Duration::from_secs(min_age_minutes * 60),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use break_glass_core::config::map_env;

    #[test]
    fn the_minimum_age_defaults_to_15_minutes_and_bad_values_are_named() {
        let base = [
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("GRANT_LEDGER_TABLE", "ledger"),
            ("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:1:stateMachine:x"),
            ("ALLOWED_ACCOUNT_IDS", "123456789012"),
            (
                "ALLOWED_PERMISSION_SET_ARNS",
                "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
            ),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ];
        assert_eq!(
            Config::from_env(&map_env(base)).unwrap().min_age,
            Duration::from_secs(900)
        );
        let [a, b, c, d, e, f] = base;
        let err =
            Config::from_env(&map_env([a, b, c, d, e, f, ("RECONCILE_MIN_AGE_MINUTES", "0")])).unwrap_err();
        assert!(err.to_string().contains("RECONCILE_MIN_AGE_MINUTES"), "{err}");
        let err = Config::from_env(&map_env([a, b, c, d, f])).unwrap_err();
        assert!(err.to_string().contains("ALLOWED_PERMISSION_SET_ARNS"), "{err}");
    }
}
