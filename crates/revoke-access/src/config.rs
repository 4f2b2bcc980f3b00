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
    /// Whether and how the sessions opened during the grant are ended.
    pub end_sessions: EndSessions,
}

/// Ending the sessions opened during a grant (`break_glass_core::sessions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndSessions {
    /// `AUDIT_ROLE_NAME` names the role to assume in the target account, and
    /// `SESSION_REVOCATION_POLICY_NAME` (default
    /// `break-glass-session-revocations`) the policy written through it.
    On { audit_role: String, policy_name: String },
    /// `END_SESSIONS_ON_REVOKE=false`: switched off on purpose.
    SwitchedOff,
    /// No audit role: nothing to write the Deny through.
    NotConfigured,
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
        let audit_role = config::optional(env, "AUDIT_ROLE_NAME");
        let policy_name = config::optional(env, "SESSION_REVOCATION_POLICY_NAME")
            .unwrap_or_else(|| break_glass_core::sessions::DEFAULT_POLICY_NAME.to_string());
        if !is_iam_name(&policy_name) {
            return Err(ConfigError::Invalid {
                var: "SESSION_REVOCATION_POLICY_NAME",
                reason: "an IAM policy name: 1 to 128 of A-Z a-z 0-9 + = , . @ _ -".into(),
            });
        }
        let wanted = config::parsed::<bool>(env, "END_SESSIONS_ON_REVOKE")?;
        let end_sessions = match (wanted, audit_role) {
            (Some(false), _) => EndSessions::SwitchedOff,
            (Some(true), None) => {
                return Err(ConfigError::Invalid {
                    var: "END_SESSIONS_ON_REVOKE",
                    reason: "true needs AUDIT_ROLE_NAME, the role the Deny is written through".into(),
                });
            }
            (_, Some(audit_role)) => EndSessions::On {
                audit_role,
                policy_name,
            },
            (None, None) => EndSessions::NotConfigured,
        };
        Ok(Self {
            end_sessions,
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

fn is_iam_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
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

    #[test]
    fn ending_sessions_is_on_with_an_audit_role_unless_switched_off() {
        let base = [
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"),
            ("GRANT_LEDGER_TABLE", "ledger"),
        ];
        let [a, b] = base;
        assert_eq!(
            Config::from_env(&map_env(base)).unwrap().end_sessions,
            EndSessions::NotConfigured
        );
        assert_eq!(
            Config::from_env(&map_env([a, b, ("AUDIT_ROLE_NAME", "break-glass-audit")]))
                .unwrap()
                .end_sessions,
            EndSessions::On {
                audit_role: "break-glass-audit".into(),
                policy_name: "break-glass-session-revocations".into()
            }
        );
        let off = [
            a,
            b,
            ("AUDIT_ROLE_NAME", "audit"),
            ("END_SESSIONS_ON_REVOKE", "false"),
        ];
        assert_eq!(
            Config::from_env(&map_env(off)).unwrap().end_sessions,
            EndSessions::SwitchedOff
        );
        let named = [
            a,
            b,
            ("AUDIT_ROLE_NAME", "audit"),
            ("SESSION_REVOCATION_POLICY_NAME", "mine"),
        ];
        assert!(matches!(
            Config::from_env(&map_env(named)).unwrap().end_sessions,
            EndSessions::On { policy_name, .. } if policy_name == "mine"
        ));
        for (var, bad) in [
            ("END_SESSIONS_ON_REVOKE", "yes"),
            ("SESSION_REVOCATION_POLICY_NAME", "no spaces"),
            ("END_SESSIONS_ON_REVOKE", "true"),
        ] {
            let err = Config::from_env(&map_env([a, b, (var, bad)])).unwrap_err();
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
