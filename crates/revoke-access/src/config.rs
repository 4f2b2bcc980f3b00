use std::time::Duration;

use break_glass_core::config::{self, ConfigError, Env, SlackSettings};
use break_glass_core::domain::InstanceArn;

/// revoke-access's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub instance: InstanceArn,
    /// Identity Center's home region for sso-admin and identitystore
    /// (`SSO_REGION`); `None`: the function's own region.
    pub sso_region: Option<String>,
    /// The grant ledger's DynamoDB table (`GRANT_LEDGER_TABLE`).
    pub ledger_table: String,
    /// `None` when no bot token is configured: revoke-access must start and
    /// revoke without Slack (it says so in its output), never refuse to.
    pub slack: Option<SlackSettings>,
    /// How long after the last session could have ended the report waits for
    /// CloudTrail to deliver (about 5 min on average, 15 min or more happens).
    pub cloudtrail_delay: Duration,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let delay_minutes = config::parsed::<u64>(env, "CLOUDTRAIL_DELAY_MINUTES")?.unwrap_or(15);
        if delay_minutes > 24 * 60 {
            return Err(ConfigError::Invalid {
                var: "CLOUDTRAIL_DELAY_MINUTES",
                reason: "at most 1440 (a day)".into(),
            });
        }
        Ok(Self {
            instance: config::required_parsed(env, "SSO_INSTANCE_ARN")?,
            sso_region: config::region(env, "SSO_REGION")?,
            ledger_table: config::required(env, "GRANT_LEDGER_TABLE")?,
            slack: match SlackSettings::from_env(env) {
                Ok(slack) => Some(slack),
                // Only a token that is absent altogether is tolerated; a
                // malformed setting is still a deployment error to name.
                Err(ConfigError::OneOf(..)) => None,
                Err(other) => return Err(other),
            },
            cloudtrail_delay: Duration::from_secs(delay_minutes * 60),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bot_token_does_not_stop_revoke_access_but_a_malformed_setting_does() {
        let env = config::map_env([
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("GRANT_LEDGER_TABLE", "ledger"),
        ]);
        assert_eq!(Config::from_env(&env).unwrap().slack, None);
        let env = config::map_env([
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("GRANT_LEDGER_TABLE", "ledger"),
            ("SLACK_BOT_TOKEN_ARN", "not-an-arn"),
        ]);
        let err = Config::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("SLACK_BOT_TOKEN_ARN"), "{err}");
    }
    use break_glass_core::config::map_env;

    #[test]
    fn the_cloudtrail_delay_defaults_to_15_minutes_and_is_bounded() {
        let base = [
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("GRANT_LEDGER_TABLE", "break-glass-ledger"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ];
        assert_eq!(
            Config::from_env(&map_env(base)).unwrap().cloudtrail_delay,
            Duration::from_secs(900)
        );
        let [a, b, c] = base;
        let err = Config::from_env(&map_env([a, b, c, ("CLOUDTRAIL_DELAY_MINUTES", "soon")])).unwrap_err();
        assert!(err.to_string().contains("CLOUDTRAIL_DELAY_MINUTES"));
        let err = Config::from_env(&map_env([a, c])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable GRANT_LEDGER_TABLE is required but not set"
        );
    }
}
