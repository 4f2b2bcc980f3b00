use std::collections::{BTreeMap, BTreeSet};

use break_glass_core::access::{IdentityLookup, IdentityRules};
use break_glass_core::config::{self, ConfigError, Env, SecretSource, SlackSettings};
use break_glass_core::domain::{
    AccessDuration, AccountId, InstanceArn, PermissionSetArn, SlackAppId, SlackChannelId, SlackUserId,
};
use break_glass_core::policy::{Policy, SlackWorkspaces};
use break_glass_core::requester::PolicySetting;
use break_glass_core::rules::RuleLimits;

/// access-requested's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub state_machine_arn: String,
    pub policy: Policy,
    pub signing_secret: SecretSource,
    /// Set when the policy's rules decide who may break into what.
    pub rules: Option<RulesConfig>,
    /// Identity Center's home region for the rules' lookups (`SSO_REGION`);
    /// `None`: the function's own region.
    pub sso_region: Option<String>,
    /// The slash command, the modal, End and Extend, App Home: set when
    /// `GRANT_LEDGER_TABLE` is (Terraform always sets it). Without it those
    /// are refused and the Break Glass button works as before.
    pub control: Option<ControlConfig>,
}

/// What controlling access from Slack needs.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// `GRANT_LEDGER_TABLE`: where holds are ended and extended.
    pub ledger_table: String,
    /// The bot token: `views.open`, `views.publish`, `chat.postMessage`.
    pub slack: SlackSettings,
    /// `ADMIN_SLACK_USER_IDS`: may end or extend anybody's grant.
    pub admins: BTreeSet<SlackUserId>,
    /// `EXTEND_MINUTES` (default 60): how much later one Extend moves the end.
    pub extend: AccessDuration,
    /// `REQUIRE_REASON` (default false): the Break Glass button opens the
    /// modal instead of starting at once.
    pub require_reason: bool,
    /// `BREAK_GLASS_CHANNEL`: where a request from App Home (or from a
    /// conversation we cannot post in) tells its story.
    pub channel: Option<SlackChannelId>,
    /// `ACCOUNT_NAMES` (`123456789012=Production,…`): how the modal and App
    /// Home name accounts.
    pub account_names: BTreeMap<AccountId, String>,
}

impl ControlConfig {
    fn from_env(env: &dyn Env, max_duration: AccessDuration) -> Result<Option<Self>, ConfigError> {
        let Some(ledger_table) = config::optional(env, "GRANT_LEDGER_TABLE") else {
            return Ok(None);
        };
        let extend_minutes = config::parsed::<u64>(env, "EXTEND_MINUTES")?.unwrap_or(60);
        let extend = AccessDuration::from_minutes(extend_minutes)
            .ok()
            .filter(|e| *e <= max_duration)
            .ok_or_else(|| ConfigError::Invalid {
                var: "EXTEND_MINUTES",
                reason: format!("1 to MAX_DURATION_MINUTES ({max_duration}) minutes"),
            })?;
        let mut account_names = BTreeMap::new();
        if let Some(raw) = env.get("ACCOUNT_NAMES") {
            for pair in raw.split(',') {
                let invalid = |reason: String| ConfigError::Invalid {
                    var: "ACCOUNT_NAMES",
                    reason,
                };
                let (id, name) = pair
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("{:?} is not account=name", pair.trim())))?;
                let id: AccountId = id.trim().parse().map_err(|e| invalid(format!("{e}")))?;
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 64 {
                    return Err(invalid(format!(
                        "the name of {} must be 1 to 64 characters",
                        id.as_str()
                    )));
                }
                account_names.insert(id, name.to_string());
            }
        }
        let channel = env
            .get("BREAK_GLASS_CHANNEL")
            .map(|raw| {
                raw.trim()
                    .parse::<SlackChannelId>()
                    .map_err(|e| ConfigError::Invalid {
                        var: "BREAK_GLASS_CHANNEL",
                        reason: e.to_string(),
                    })
            })
            .transpose()?;
        Ok(Some(Self {
            ledger_table,
            slack: SlackSettings::from_env(env)?,
            // Unset: nobody but the requester. Set but empty is refused.
            admins: config::allow_list(env, "ADMIN_SLACK_USER_IDS")?.unwrap_or_default(),
            extend,
            require_reason: config::parsed::<bool>(env, "REQUIRE_REASON")?.unwrap_or(false),
            channel,
            account_names,
        }))
    }
}

/// What deciding by rules needs beyond the rules: finding the clicker in
/// the Identity Store from their Slack profile (`users.info`, with the bot
/// token).
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// `POLICY_PARAMETER_NAME` or `BREAK_GLASS_POLICY`.
    pub setting: PolicySetting,
    pub identity_store_id: String,
    pub lookup: IdentityLookup,
    pub slack: SlackSettings,
}

impl Config {
    /// How the clicker is found and who is turned away before any rule is
    /// read: the same as grant-access.
    pub fn identity(&self) -> Option<IdentityRules<'_>> {
        self.rules.as_ref().map(|r| IdentityRules {
            lookup: r.lookup,
            workspaces: &self.policy.workspaces,
        })
    }

    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let state_machine_arn = config::required(env, "STATE_MACHINE_ARN")?;
        if !state_machine_arn.contains(":stateMachine:") {
            return Err(ConfigError::Invalid {
                var: "STATE_MACHINE_ARN",
                reason: "expected a state machine ARN (arn:aws:states:…:stateMachine:…)".into(),
            });
        }
        let instance: InstanceArn = config::required_parsed(env, "SSO_INSTANCE_ARN")?;
        let minutes = |var: &'static str, default: u64| -> Result<AccessDuration, ConfigError> {
            let value = config::parsed::<u64>(env, var)?.unwrap_or(default);
            AccessDuration::from_minutes(value).map_err(|e| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            })
        };
        let default_duration = minutes("DEFAULT_DURATION_MINUTES", 60)?;
        let max_duration = minutes("MAX_DURATION_MINUTES", 240)?;
        if default_duration > max_duration {
            return Err(ConfigError::Invalid {
                var: "DEFAULT_DURATION_MINUTES",
                reason: format!("{default_duration} is longer than MAX_DURATION_MINUTES ({max_duration})"),
            });
        }
        let setting = PolicySetting::from_env(
            env,
            RuleLimits {
                instance: &instance,
                max_duration,
            },
        )?;
        // With rules, the account and permission set lists are optional: set,
        // they fence what the rules may allow (Terraform keeps them as the
        // IAM scope of the assignments); without rules they are the policy.
        let (accounts, permission_sets) = if setting.is_some() {
            (
                config::allow_list(env, "ALLOWED_ACCOUNT_IDS")?,
                config::allow_list::<PermissionSetArn>(env, "ALLOWED_PERMISSION_SET_ARNS")?,
            )
        } else {
            (
                Some(config::required_allow_list(env, "ALLOWED_ACCOUNT_IDS")?),
                Some(config::required_allow_list::<PermissionSetArn>(
                    env,
                    "ALLOWED_PERMISSION_SET_ARNS",
                )?),
            )
        };
        if let Some(foreign) = permission_sets
            .iter()
            .flatten()
            .find(|ps| !ps.belongs_to(&instance))
        {
            return Err(ConfigError::Invalid {
                var: "ALLOWED_PERMISSION_SET_ARNS",
                reason: format!(
                    "{foreign} is not in SSO_INSTANCE_ARN's instance {}",
                    instance.instance_id()
                ),
            });
        }
        let workspaces = SlackWorkspaces::from_env(env)?;
        // Unset: any full member of our workspaces. Set but empty is refused
        // by allow_list: a typo must not open break glass to everyone.
        let users = config::allow_list(env, "ALLOWED_SLACK_USER_IDS")?;
        // Optional, but when set it is checked, so set-but-blank is an error
        // rather than a quietly disabled check.
        let app = env
            .get("SLACK_APP_ID")
            .map(|raw| {
                raw.trim()
                    .parse::<SlackAppId>()
                    .map_err(|e| ConfigError::Invalid {
                        var: "SLACK_APP_ID",
                        reason: e.to_string(),
                    })
            })
            .transpose()?;
        let rules = setting
            .map(|setting| -> Result<RulesConfig, ConfigError> {
                Ok(RulesConfig {
                    setting,
                    identity_store_id: config::required(env, "IDENTITY_STORE_ID")?,
                    lookup: config::parsed(env, "IDENTITY_LOOKUP")?.unwrap_or(IdentityLookup::Email),
                    slack: SlackSettings::from_env(env)?,
                })
            })
            .transpose()?;
        let control = ControlConfig::from_env(env, max_duration)?;
        Ok(Self {
            state_machine_arn,
            control,
            rules,
            sso_region: config::region(env, "SSO_REGION")?,
            policy: Policy {
                instance,
                accounts,
                permission_sets,
                workspaces,
                app,
                users,
                default_duration,
                max_duration,
            },
            signing_secret: config::secret(env, "SLACK_SIGNING_SECRET_ARN", "SLACK_SIGNING_SECRET")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use break_glass_core::config::map_env;

    const BASE: [(&str, &str); 6] = [
        (
            "STATE_MACHINE_ARN",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:break-glass",
        ),
        ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-12345"),
        ("ALLOWED_ACCOUNT_IDS", "123456789012,210987654321"),
        (
            "ALLOWED_PERMISSION_SET_ARNS",
            "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
        ),
        ("SLACK_SIGNING_SECRET", "s3cr3t"),
        ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
    ];

    fn with(extra: &[(&'static str, &'static str)], without: &str) -> Result<Config, ConfigError> {
        let mut pairs: Vec<(&str, &str)> = BASE.iter().copied().filter(|(k, _)| *k != without).collect();
        pairs.extend_from_slice(extra);
        let map: std::collections::HashMap<String, String> =
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Config::from_env(&move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn a_complete_environment_gives_defaults_of_one_and_four_hours() {
        let config = Config::from_env(&map_env(BASE)).unwrap();
        assert_eq!(config.policy.default_duration.minutes(), 60);
        assert_eq!(config.policy.max_duration.minutes(), 240);
        assert_eq!(config.policy.accounts.map(|a| a.len()), Some(2));
        assert_eq!(config.policy.users, None);
        assert_eq!(config.policy.app, None);
        assert_eq!(config.policy.workspaces.teams.len(), 1);
        assert!(config.policy.workspaces.enterprises.is_empty());
    }

    #[test]
    fn every_allow_list_set_but_empty_stops_the_function() {
        for var in [
            "ALLOWED_ACCOUNT_IDS",
            "ALLOWED_PERMISSION_SET_ARNS",
            "ALLOWED_SLACK_USER_IDS",
            "ALLOWED_SLACK_TEAM_IDS",
            "ALLOWED_SLACK_ENTERPRISE_IDS",
        ] {
            // "" is what Terraform's join(",", []) gives; "," a typo.
            for empty in ["", ",", " , "] {
                let err = with(&[(var, empty)], var).unwrap_err().to_string();
                assert!(
                    err.starts_with(&format!("environment variable {var} is invalid")),
                    "{var}={empty:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn optional_slack_settings_are_read_strictly() {
        let config = with(
            &[
                ("ALLOWED_SLACK_ENTERPRISE_IDS", "E0001"),
                ("ALLOWED_SLACK_USER_IDS", "U0001,W0002"),
                ("SLACK_APP_ID", "A0BREAKGLASS"),
            ],
            "",
        )
        .unwrap();
        assert_eq!(config.policy.workspaces.enterprises.len(), 1);
        assert_eq!(config.policy.users.map(|u| u.len()), Some(2));
        assert_eq!(
            config.policy.app.map(|a| a.to_string()).as_deref(),
            Some("A0BREAKGLASS")
        );
        for (var, value) in [
            ("SLACK_APP_ID", ""),
            ("SLACK_APP_ID", "B0BOT"),
            ("ALLOWED_SLACK_TEAM_IDS", "E0001"),
            ("ALLOWED_SLACK_ENTERPRISE_IDS", "T0001"),
            ("ALLOWED_SLACK_USER_IDS", "T0001"),
        ] {
            let err = with(&[(var, value)], var).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={value:?}: {err}");
        }
    }

    #[test]
    fn every_missing_variable_is_named() {
        for (var, _) in BASE {
            let err = with(&[], var).unwrap_err().to_string();
            let expected = if var == "SLACK_SIGNING_SECRET" {
                "SLACK_SIGNING_SECRET_ARN or SLACK_SIGNING_SECRET"
            } else {
                var
            };
            assert!(err.contains(expected), "{var}: {err}");
        }
    }

    #[test]
    fn control_from_slack_is_configured_strictly() {
        let config = with(&[], "").unwrap();
        assert!(config.control.is_none(), "no ledger, no End or Extend");
        let control = with(
            &[
                ("GRANT_LEDGER_TABLE", "ledger"),
                ("SLACK_BOT_TOKEN", "xoxb-1"),
                ("ADMIN_SLACK_USER_IDS", "U0007"),
                ("REQUIRE_REASON", "true"),
                ("BREAK_GLASS_CHANNEL", "C0001"),
                ("ACCOUNT_NAMES", "123456789012=Production, 210987654321 = Staging"),
            ],
            "",
        )
        .unwrap()
        .control
        .unwrap();
        assert_eq!(control.extend.minutes(), 60);
        assert!(control.require_reason);
        assert_eq!(control.admins.len(), 1);
        assert_eq!(control.account_names.len(), 2);
        for (var, value) in [
            ("EXTEND_MINUTES", "0"),
            ("EXTEND_MINUTES", "241"),
            ("ADMIN_SLACK_USER_IDS", ""),
            ("REQUIRE_REASON", "yes please"),
            ("BREAK_GLASS_CHANNEL", "general"),
            ("ACCOUNT_NAMES", "Production"),
            ("ACCOUNT_NAMES", "12345=Production"),
        ] {
            let err = with(
                &[
                    ("GRANT_LEDGER_TABLE", "ledger"),
                    ("SLACK_BOT_TOKEN", "xoxb-1"),
                    (var, value),
                ],
                "",
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(var), "{var}={value:?}: {err}");
        }
        let err = with(&[("GRANT_LEDGER_TABLE", "ledger")], "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SLACK_BOT_TOKEN"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        for (extra, var) in [
            (("DEFAULT_DURATION_MINUTES", "300"), "DEFAULT_DURATION_MINUTES"),
            (("MAX_DURATION_MINUTES", "10000"), "MAX_DURATION_MINUTES"),
            (("MAX_DURATION_MINUTES", "four"), "MAX_DURATION_MINUTES"),
            (
                ("ALLOWED_SLACK_USER_IDS", "U1,not valid"),
                "ALLOWED_SLACK_USER_IDS",
            ),
        ] {
            let err = with(&[extra], "").unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
        let err = with(
            &[(
                "ALLOWED_PERMISSION_SET_ARNS",
                "arn:aws:sso:::permissionSet/ssoins-other/ps-1",
            )],
            "ALLOWED_PERMISSION_SET_ARNS",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ALLOWED_PERMISSION_SET_ARNS"), "{err}");
    }
}
