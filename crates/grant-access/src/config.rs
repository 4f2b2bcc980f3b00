use break_glass_core::access::{IdentityLookup, IdentityRules};
use break_glass_core::config::{self, ConfigError, Env, SlackSettings};
use break_glass_core::domain::{AccessDuration, InstanceArn};
use break_glass_core::policy::SlackWorkspaces;
use break_glass_core::requester::PolicySetting;
use break_glass_core::rules::RuleLimits;

/// grant-access's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub instance: InstanceArn,
    /// Identity Center's home region for sso-admin and identitystore
    /// (`SSO_REGION`); `None`: the function's own region.
    pub sso_region: Option<String>,
    pub identity_store_id: String,
    /// The grant ledger's DynamoDB table (`GRANT_LEDGER_TABLE`).
    pub ledger_table: String,
    /// How the clicker is found in the Identity Store (`IDENTITY_LOOKUP`).
    pub lookup: IdentityLookup,
    /// Which Slack workspaces the clicker must be a full member of
    /// (`ALLOWED_SLACK_TEAM_IDS`, `ALLOWED_SLACK_ENTERPRISE_IDS`).
    pub workspaces: SlackWorkspaces,
    pub slack: SlackSettings,
    /// The policy's rules (`POLICY_PARAMETER_NAME` or `BREAK_GLASS_POLICY`),
    /// checked again just before granting; `None`: access-requested's allow
    /// lists decided, and nothing is checked here.
    pub policy: Option<PolicySetting>,
}

impl Config {
    /// Who may be granted: the rules `resolve_identity` applies.
    pub fn identity(&self) -> IdentityRules<'_> {
        IdentityRules {
            lookup: self.lookup,
            workspaces: &self.workspaces,
        }
    }

    /// What rules are checked against here: access-requested holds them to
    /// `MAX_DURATION_MINUTES`, which this function does not read, so only
    /// Identity Center's own longest session bounds them.
    pub fn rule_limits(&self) -> RuleLimits<'_> {
        RuleLimits {
            instance: &self.instance,
            max_duration: AccessDuration::MAX,
        }
    }

    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let instance: InstanceArn = config::required_parsed(env, "SSO_INSTANCE_ARN")?;
        let policy = PolicySetting::from_env(
            env,
            RuleLimits {
                instance: &instance,
                max_duration: AccessDuration::MAX,
            },
        )?;
        Ok(Self {
            policy,
            instance,
            sso_region: config::region(env, "SSO_REGION")?,
            identity_store_id: config::required(env, "IDENTITY_STORE_ID")?,
            ledger_table: config::required(env, "GRANT_LEDGER_TABLE")?,
            lookup: config::parsed(env, "IDENTITY_LOOKUP")?.unwrap_or(IdentityLookup::Email),
            workspaces: SlackWorkspaces::from_env(env)?,
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
        let err = Config::from_env(&map_env([
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("IDENTITY_STORE_ID", "d-1"),
        ]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "environment variable GRANT_LEDGER_TABLE is required but not set"
        );
        let env = map_env([
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("IDENTITY_STORE_ID", "d-1"),
            ("GRANT_LEDGER_TABLE", "break-glass-ledger"),
            ("IDENTITY_LOOKUP", "upn"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
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
            ("GRANT_LEDGER_TABLE", "break-glass-ledger"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_API_URL", "http://evil.example/api"),
            ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
        ]);
        assert!(
            Config::from_env(&env)
                .unwrap_err()
                .to_string()
                .contains("SLACK_API_URL")
        );
    }

    /// What every other variable is set to here: only the workspaces vary.
    fn with_workspaces(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: std::collections::HashMap<String, String> = [
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("IDENTITY_STORE_ID", "d-1"),
            ("GRANT_LEDGER_TABLE", "break-glass-ledger"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        map.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::from_env(&move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn the_workspaces_are_required_and_never_empty() {
        assert_eq!(
            with_workspaces(&[]).unwrap_err().to_string(),
            "environment variable ALLOWED_SLACK_TEAM_IDS is required but not set"
        );
        for (var, value) in [
            ("ALLOWED_SLACK_TEAM_IDS", ","),
            ("ALLOWED_SLACK_TEAM_IDS", ""),
            ("ALLOWED_SLACK_ENTERPRISE_IDS", ""),
            ("ALLOWED_SLACK_ENTERPRISE_IDS", "T0001"),
        ] {
            let mut pairs = vec![("ALLOWED_SLACK_TEAM_IDS", "T0001")];
            pairs.push((var, value));
            let err = with_workspaces(&pairs).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("environment variable {var} is invalid")),
                "{var}={value:?}: {err}"
            );
        }
        let config = with_workspaces(&[
            ("ALLOWED_SLACK_TEAM_IDS", "T0001,T0002"),
            ("ALLOWED_SLACK_ENTERPRISE_IDS", "E0001"),
        ])
        .unwrap();
        assert_eq!(config.lookup, IdentityLookup::Email);
        assert_eq!(config.workspaces.teams.len(), 2);
        assert_eq!(config.workspaces.enterprises.len(), 1);
    }
}
