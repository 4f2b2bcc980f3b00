use break_glass_core::access::IdentityLookup;
use break_glass_core::config::{self, ConfigError, Env, SlackSettings};
use break_glass_core::domain::InstanceArn;

/// grant-access's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub instance: InstanceArn,
    pub identity_store_id: String,
    pub state_machine_arn: String,
    pub lookup: IdentityLookup,
    pub slack: SlackSettings,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            instance: config::required_parsed(env, "SSO_INSTANCE_ARN")?,
            identity_store_id: config::required(env, "IDENTITY_STORE_ID")?,
            state_machine_arn: config::required(env, "STATE_MACHINE_ARN")?,
            lookup: config::parsed(env, "IDENTITY_LOOKUP")?.unwrap_or(IdentityLookup::Email),
            slack: SlackSettings::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use break_glass_core::config::map_env;

    #[test]
    fn variables_are_named_when_missing_or_wrong() {
        let err = Config::from_env(&map_env([(
            "SSO_INSTANCE_ARN",
            "arn:aws:sso:::instance/ssoins-1",
        )]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "environment variable IDENTITY_STORE_ID is required but not set"
        );
        let env = map_env([
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("IDENTITY_STORE_ID", "d-1"),
            ("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:1:stateMachine:x"),
            ("IDENTITY_LOOKUP", "upn"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ]);
        assert!(
            Config::from_env(&env)
                .unwrap_err()
                .to_string()
                .contains("IDENTITY_LOOKUP")
        );
        let env = map_env([
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("IDENTITY_STORE_ID", "d-1"),
            ("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:1:stateMachine:x"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_API_URL", "http://evil.example/api"),
        ]);
        assert!(
            Config::from_env(&env)
                .unwrap_err()
                .to_string()
                .contains("SLACK_API_URL")
        );
    }
}
