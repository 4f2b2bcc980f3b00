//! Helpers every function's `Config::from_env` is built from: read a
//! variable, parse it, and on failure name the variable and what was wrong.
//! They take a lookup function instead of reading the process environment,
//! so tests pass a map.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::str::FromStr;

use thiserror::Error;

use crate::policy::SlackWorkspaces;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error("set one of {0} or {1}")]
    OneOf(&'static str, &'static str),
}

/// Where configuration comes from: `|name| std::env::var(name).ok()` in a
/// Lambda, a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// An empty value counts as unset: Terraform and shells produce them easily.
pub fn optional(env: &dyn Env, var: &'static str) -> Option<String> {
    env.get(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub fn required(env: &dyn Env, var: &'static str) -> Result<String, ConfigError> {
    optional(env, var).ok_or(ConfigError::Missing(var))
}

pub fn parsed<T>(env: &dyn Env, var: &'static str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    optional(env, var)
        .map(|v| {
            v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            })
        })
        .transpose()
}

pub fn required_parsed<T>(env: &dyn Env, var: &'static str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    parsed(env, var)?.ok_or(ConfigError::Missing(var))
}

/// A comma-separated list; blanks between commas are ignored.
pub fn list<T>(env: &dyn Env, var: &'static str) -> Result<Option<BTreeSet<T>>, ConfigError>
where
    T: FromStr + Ord,
    T::Err: Display,
{
    let Some(raw) = optional(env, var) else {
        return Ok(None);
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            })
        })
        .collect::<Result<BTreeSet<T>, _>>()
        .map(Some)
}

pub fn required_list<T>(env: &dyn Env, var: &'static str) -> Result<BTreeSet<T>, ConfigError>
where
    T: FromStr + Ord,
    T::Err: Display,
{
    match list(env, var)? {
        Some(items) if !items.is_empty() => Ok(items),
        _ => Err(ConfigError::Missing(var)),
    }
}

/// An allow list: comma-separated, blanks between commas ignored. Unset is
/// `None`, for the caller to give its meaning; set but listing nothing
/// (`""`, `","`, Terraform's `join(",", [])`) is refused, unlike other
/// variables, because an allow list emptied by a typo must stop the
/// function, never widen who may break glass.
pub fn allow_list<T>(env: &dyn Env, var: &'static str) -> Result<Option<BTreeSet<T>>, ConfigError>
where
    T: FromStr + Ord,
    T::Err: Display,
{
    let Some(raw) = env.get(var) else {
        return Ok(None);
    };
    let items = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            })
        })
        .collect::<Result<BTreeSet<T>, _>>()?;
    if items.is_empty() {
        return Err(ConfigError::Invalid {
            var,
            reason: "it is set but lists nothing; an empty allow list is a mistake, not a policy".into(),
        });
    }
    Ok(Some(items))
}

/// An allow list that must be set (see [`allow_list`]).
pub fn required_allow_list<T>(env: &dyn Env, var: &'static str) -> Result<BTreeSet<T>, ConfigError>
where
    T: FromStr + Ord,
    T::Err: Display,
{
    allow_list(env, var)?.ok_or(ConfigError::Missing(var))
}

impl SlackWorkspaces {
    /// `ALLOWED_SLACK_TEAM_IDS` (required) and, for Enterprise Grid,
    /// `ALLOWED_SLACK_ENTERPRISE_IDS`: read the same way by every function
    /// that decides who is ours.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            teams: required_allow_list(env, "ALLOWED_SLACK_TEAM_IDS")?,
            enterprises: allow_list(env, "ALLOWED_SLACK_ENTERPRISE_IDS")?.unwrap_or_default(),
        })
    }
}

/// An AWS region name such as `eu-west-1` or `us-gov-west-1`, when set.
/// Checked for shape only: a typo fails at cold start naming the variable,
/// not at the first call with an unreachable endpoint.
pub fn region(env: &dyn Env, var: &'static str) -> Result<Option<String>, ConfigError> {
    let Some(value) = optional(env, var) else {
        return Ok(None);
    };
    let parts: Vec<&str> = value.split('-').collect();
    // Two or more lower-case words, then a number: eu-west-1, us-gov-west-1.
    let shaped = match parts.split_last() {
        Some((number, words)) => {
            words.len() >= 2
                && words
                    .iter()
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
                && number.parse::<u8>().is_ok()
        }
        None => false,
    };
    if !shaped {
        return Err(ConfigError::Invalid {
            var,
            reason: "expected an AWS region name such as eu-west-1".into(),
        });
    }
    Ok(Some(value))
}

/// A secret given either by Secrets Manager ARN (deployed) or in plain text
/// (local runs, tests). Its `Debug` never shows a plain value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    SecretsManager { arn: String },
    Plain(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SecretsManager { arn } => f.debug_struct("SecretsManager").field("arn", arn).finish(),
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
        }
    }
}

/// The ARN variable wins: a deployed function should never fall back to a
/// plain value someone left in its environment.
pub fn secret(
    env: &dyn Env,
    arn_var: &'static str,
    plain_var: &'static str,
) -> Result<SecretSource, ConfigError> {
    if let Some(arn) = optional(env, arn_var) {
        if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
            return Err(ConfigError::Invalid {
                var: arn_var,
                reason: "expected a Secrets Manager secret ARN".into(),
            });
        }
        return Ok(SecretSource::SecretsManager { arn });
    }
    optional(env, plain_var)
        .map(SecretSource::Plain)
        .ok_or(ConfigError::OneOf(arn_var, plain_var))
}

/// How the functions that post to Slack reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackSettings {
    pub bot_token: SecretSource,
    /// `https://slack.com/api` unless pointed at a stand-in.
    pub api_url: String,
}

impl SlackSettings {
    pub const DEFAULT_API_URL: &'static str = "https://slack.com/api";

    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let api_url = optional(env, "SLACK_API_URL").unwrap_or_else(|| Self::DEFAULT_API_URL.to_string());
        if !(api_url.starts_with("https://")
            || api_url.starts_with("http://127.0.0.1")
            || api_url.starts_with("http://localhost"))
        {
            return Err(ConfigError::Invalid {
                var: "SLACK_API_URL",
                reason: "must be https (plain http only for a local stand-in)".into(),
            });
        }
        Ok(Self {
            bot_token: secret(env, "SLACK_BOT_TOKEN_ARN", "SLACK_BOT_TOKEN")?,
            api_url,
        })
    }
}

/// Builds an [`Env`] from pairs, for tests.
pub fn map_env<const N: usize>(pairs: [(&str, &str); N]) -> impl Env + use<N> {
    let map: std::collections::HashMap<String, String> = pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_checked_for_shape() {
        for ok in ["eu-west-1", "us-east-1", "us-gov-west-1", "ap-southeast-4"] {
            assert_eq!(
                region(&map_env([("SSO_REGION", ok)]), "SSO_REGION").unwrap(),
                Some(ok.to_string())
            );
        }
        assert_eq!(region(&map_env([]), "SSO_REGION").unwrap(), None);
        for bad in [
            "eu-west",
            "EU-WEST-1",
            "eu west 1",
            "eu--1",
            "https://sso.eu-west-1.amazonaws.com",
        ] {
            let err = region(&map_env([("SSO_REGION", bad)]), "SSO_REGION")
                .unwrap_err()
                .to_string();
            assert!(err.contains("SSO_REGION"), "{bad}: {err}");
        }
    }
    use crate::domain::AccountId;

    #[test]
    fn errors_name_the_variable() {
        let env = map_env([("IDS", "123456789012, nope"), ("EMPTY", "  ")]);
        assert_eq!(
            required(&env, "NOT_SET").unwrap_err().to_string(),
            "environment variable NOT_SET is required but not set"
        );
        assert_eq!(
            required(&env, "EMPTY").unwrap_err(),
            ConfigError::Missing("EMPTY")
        );
        let err = required_list::<AccountId>(&env, "IDS").unwrap_err().to_string();
        assert!(err.starts_with("environment variable IDS is invalid"), "{err}");
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn lists_ignore_blanks_and_need_one_item() {
        let env = map_env([("IDS", " 123456789012,,210987654321 ,"), ("NONE", ",")]);
        assert_eq!(required_list::<AccountId>(&env, "IDS").unwrap().len(), 2);
        assert_eq!(
            required_list::<AccountId>(&env, "NONE").unwrap_err(),
            ConfigError::Missing("NONE")
        );
    }

    #[test]
    fn allow_lists_set_but_empty_stop_the_function() {
        for empty in ["", " ", ",", " , ,"] {
            let env = map_env([("LIST", empty)]);
            let err = allow_list::<AccountId>(&env, "LIST").unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: "LIST", .. }),
                "{empty:?}"
            );
            assert!(err.to_string().contains("LIST"), "{err}");
            assert!(required_allow_list::<AccountId>(&env, "LIST").is_err());
        }
        let env = map_env([("LIST", "123456789012,")]);
        assert_eq!(
            allow_list::<AccountId>(&env, "LIST").unwrap().map(|l| l.len()),
            Some(1)
        );
        let env = map_env([]);
        assert_eq!(allow_list::<AccountId>(&env, "LIST").unwrap(), None);
        assert_eq!(
            required_allow_list::<AccountId>(&env, "LIST").unwrap_err(),
            ConfigError::Missing("LIST")
        );
    }

    #[test]
    fn workspaces_need_a_team_and_refuse_empty_lists() {
        let env = map_env([("ALLOWED_SLACK_TEAM_IDS", "T0001, T0002")]);
        let w = SlackWorkspaces::from_env(&env).unwrap();
        assert_eq!(w.teams.len(), 2);
        assert!(w.enterprises.is_empty());
        assert_eq!(
            SlackWorkspaces::from_env(&map_env([])).unwrap_err(),
            ConfigError::Missing("ALLOWED_SLACK_TEAM_IDS")
        );
        for (var, value) in [
            ("ALLOWED_SLACK_TEAM_IDS", ","),
            ("ALLOWED_SLACK_TEAM_IDS", "U0001"),
            ("ALLOWED_SLACK_ENTERPRISE_IDS", ""),
            ("ALLOWED_SLACK_ENTERPRISE_IDS", "T0001"),
        ] {
            let env = map_env([("ALLOWED_SLACK_TEAM_IDS", "T0001"), (var, value)]);
            let err = SlackWorkspaces::from_env(&env).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={value:?}: {err}");
        }
        let env = map_env([
            ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
            ("ALLOWED_SLACK_ENTERPRISE_IDS", "E0001"),
        ]);
        assert_eq!(SlackWorkspaces::from_env(&env).unwrap().enterprises.len(), 1);
    }

    #[test]
    fn secrets_prefer_the_arn_and_never_print_plain_values() {
        let env = map_env([
            ("S_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x"),
            ("S", "shh"),
        ]);
        assert!(matches!(
            secret(&env, "S_ARN", "S"),
            Ok(SecretSource::SecretsManager { .. })
        ));
        let env = map_env([("S", "shh")]);
        let s = secret(&env, "S_ARN", "S").unwrap();
        assert!(!format!("{s:?}").contains("shh"));
        let env = map_env([]);
        assert_eq!(
            secret(&env, "S_ARN", "S").unwrap_err(),
            ConfigError::OneOf("S_ARN", "S")
        );
        let env = map_env([("S_ARN", "plain-text")]);
        assert!(matches!(
            secret(&env, "S_ARN", "S"),
            Err(ConfigError::Invalid { var: "S_ARN", .. })
        ));
    }
}
