//! The doctor's view of the policy's rules: one line per rule saying what it
//! resolves to (groups to their ids, users to Identity Store users,
//! permission sets to ARNs, `*` to the allowed accounts), and a problem
//! line for whatever a rule names that cannot be found or lies outside the
//! allow lists, which Terraform uses as the functions' IAM scope.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::{Finding, bounded};
use crate::config::{self, ConfigError, Env};
use crate::domain::{AccessDuration, AccountId, InstanceArn, PermissionSetArn};
use crate::ports::{Directory, LookupAttribute, PortError};
use crate::requester::{PolicyRules, PolicySetting};
use crate::retry::Backoff;
use crate::rules::{AccountPattern, PermissionSetRef, Rule, RuleLimits, is_group_id};

/// Where the rules are and where their names are looked up, read like the
/// functions read them (`POLICY_PARAMETER_NAME` or `BREAK_GLASS_POLICY`,
/// `IDENTITY_STORE_ID`), or from the module's outputs
/// (`policy_parameter_name`, `identity_store_id`).
#[derive(Debug, Clone)]
pub struct PolicySettings {
    /// `None`: no rules; the allow lists decide.
    pub policy: Option<PolicySetting>,
    pub identity_store_id: Option<String>,
}

impl PolicySettings {
    pub fn from_env(env: &dyn Env, instance: &InstanceArn) -> Result<Self, ConfigError> {
        let limits = RuleLimits {
            instance,
            max_duration: AccessDuration::MAX,
        };
        Ok(Self {
            policy: PolicySetting::from_env(env, limits)?,
            identity_store_id: config::optional(env, "IDENTITY_STORE_ID"),
        })
    }

    pub fn from_outputs(json: &str, instance: &InstanceArn) -> Result<Self, ConfigError> {
        let root: serde_json::Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
        let outputs = super::module_outputs(root);
        let value = |name: &str| {
            outputs
                .get(name)
                .map(|e| e.get("value").unwrap_or(e))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let vars: BTreeMap<&str, String> = [
            ("POLICY_PARAMETER_NAME", value("policy_parameter_name")),
            ("IDENTITY_STORE_ID", value("identity_store_id")),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        Self::from_env(&|name: &str| vars.get(name).cloned(), instance)
    }
}

/// The permission sets the doctor knows by name: the allowed ones, as
/// `DescribePermissionSet` named them.
pub type KnownPermissionSets = BTreeMap<String, PermissionSetArn>;

/// One finding per rule (or one saying there are none), then one per
/// problem. `policy` is read as the functions read it.
pub async fn examine_rules(
    policy: &PolicyRules,
    directory: Option<&dyn Directory>,
    accounts: &BTreeSet<AccountId>,
    permission_sets: &KnownPermissionSets,
    clock: &dyn crate::clock::Clock,
    limit: Duration,
) -> Vec<Finding> {
    let rules = match tokio::time::timeout(limit, policy.current(clock, Backoff::API)).await {
        Err(_) => {
            return vec![Finding::problem(format!(
                "the policy's rules could not be read within {} s",
                limit.as_secs()
            ))];
        }
        Ok(Err(e)) => return vec![Finding::problem(format!("the policy's rules: {e}"))],
        Ok(Ok(None)) => {
            return vec![Finding::ok(
                "no policy rules: the allow lists decide who may break glass",
            )];
        }
        Ok(Ok(Some(rules))) => rules,
    };
    let mut findings = Vec::new();
    for rule in rules.rules() {
        findings.extend(examine_rule(rule, directory, accounts, permission_sets, limit).await);
    }
    findings
}

async fn examine_rule(
    rule: &Rule,
    directory: Option<&dyn Directory>,
    accounts: &BTreeSet<AccountId>,
    permission_sets: &KnownPermissionSets,
    limit: Duration,
) -> Vec<Finding> {
    let name = &rule.name;
    let mut problems = Vec::new();

    let mut in_accounts = Vec::new();
    for pattern in &rule.accounts {
        match pattern {
            AccountPattern::Any => {
                in_accounts.push(format!(
                    "* (= {})",
                    accounts
                        .iter()
                        .map(AccountId::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            AccountPattern::Only(account) => {
                in_accounts.push(account.to_string());
                if !accounts.contains(account) {
                    problems.push(format!(
                        "rule {name} names account {account}, which is not in allowed_account_ids: \
                         add it there (the functions may only assign in those accounts)"
                    ));
                }
            }
        }
    }

    let mut sets = Vec::new();
    for set in &rule.permission_sets {
        match set {
            PermissionSetRef::Name(set_name) => match permission_sets.get(set_name) {
                Some(arn) => sets.push(format!("{set_name} ({arn})")),
                None => {
                    sets.push(set_name.clone());
                    problems.push(format!(
                        "rule {name} names permission set {set_name}, which is none of the allowed permission sets: \
                         add its ARN to allowed_permission_set_arns, or fix the name"
                    ));
                }
            },
            PermissionSetRef::Arn(arn) => {
                sets.push(arn.to_string());
                if !permission_sets.values().any(|a| a == arn) {
                    problems.push(format!(
                        "rule {name} names permission set {arn}, which is not in allowed_permission_set_arns: add it there"
                    ));
                }
            }
        }
    }

    let mut who = Vec::new();
    for group in &rule.groups {
        if is_group_id(group) {
            who.push(format!("group id {group}"));
            continue;
        }
        let Some(directory) = directory else {
            who.push(format!("group {group}"));
            problems.push(format!(
                "rule {name}'s group {group} cannot be looked up: IDENTITY_STORE_ID (output identity_store_id) is not set"
            ));
            continue;
        };
        match bounded::<_, PortError>(limit, "identitystore", "GetGroupId", directory.find_group(group)).await
        {
            Ok(Some(id)) => who.push(format!("group {group} ({id})")),
            Ok(None) => {
                who.push(format!("group {group}"));
                problems.push(format!(
                    "rule {name}'s group {group} is not in the Identity Store: nobody can use the rule through it; \
                     fix the display name or sync the group"
                ));
            }
            Err(e) => problems.push(format!(
                "rule {name}'s group {group} could not be looked up ({e})"
            )),
        }
    }
    for user in &rule.users {
        let Some(directory) = directory else {
            who.push(user.clone());
            continue;
        };
        match bounded::<_, PortError>(
            limit,
            "identitystore",
            "GetUserId",
            directory.find_user(LookupAttribute::Email, user),
        )
        .await
        {
            Ok(Some(found)) => who.push(format!("{user} ({})", found.user_name)),
            Ok(None) => {
                who.push(user.clone());
                problems.push(format!(
                    "rule {name}'s user {user} is not in the Identity Store: nobody can use the rule as them; fix the address"
                ));
            }
            Err(e) => problems.push(format!("rule {name}'s user {user} could not be looked up ({e})")),
        }
    }

    let mut line = format!(
        "rule {name}: {} in {} for {}; up to {}",
        sets.join(", "),
        in_accounts.join(", "),
        who.join(", "),
        rule.max_duration
    );
    if rule.require_reason {
        line.push_str(", reason required");
    }
    if let Some(channel) = &rule.notify_channel {
        line.push_str(&format!(", announced in {channel}"));
    }
    let mut findings = vec![Finding::ok(line)];
    findings.extend(problems.into_iter().map(Finding::problem));
    findings
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::clock::ManualClock;
    use crate::ports::DirectoryUser;
    use crate::rules::RuleSet;

    const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-1111111111111111";
    const SET: &str = "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-1111111111111111";

    #[derive(Debug)]
    struct Store;

    #[async_trait]
    impl Directory for Store {
        async fn find_user(
            &self,
            _attribute: LookupAttribute,
            value: &str,
        ) -> Result<Option<DirectoryUser>, PortError> {
            Ok((value == "lead@example.com").then(|| DirectoryUser {
                user_id: "u-1".into(),
                user_name: "lead".into(),
                display_name: None,
            }))
        }
        async fn find_group(&self, display_name: &str) -> Result<Option<String>, PortError> {
            Ok((display_name == "oncall").then(|| "g-oncall".to_string()))
        }
    }

    fn rules(json: &str) -> PolicyRules {
        let instance: InstanceArn = INSTANCE.parse().unwrap();
        let limits = RuleLimits {
            instance: &instance,
            max_duration: AccessDuration::MAX,
        };
        PolicyRules::fixed(Arc::new(RuleSet::parse(json, limits).unwrap()))
    }

    async fn lines(policy: &PolicyRules) -> Vec<String> {
        let accounts: BTreeSet<AccountId> = ["111111111111".parse().unwrap()].into();
        let sets: KnownPermissionSets = [("BreakGlassAdmin".to_string(), SET.parse().unwrap())].into();
        let clock = ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap());
        examine_rules(
            policy,
            Some(&Store),
            &accounts,
            &sets,
            &clock,
            Duration::from_secs(5),
        )
        .await
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[tokio::test]
    async fn each_rule_is_listed_with_what_it_resolves_to() {
        let policy = rules(
            r#"{"rules": [{"name": "oncall-admin", "accounts": ["111111111111"], "permission_sets": ["BreakGlassAdmin"], "groups": ["oncall"], "users": ["lead@example.com"], "max_duration_minutes": 120, "require_reason": true, "notify_channel": "C0SECURITY"}]}"#,
        );
        assert_eq!(
            lines(&policy).await,
            [format!(
                "ok      rule oncall-admin: BreakGlassAdmin ({SET}) in 111111111111 for group oncall (g-oncall), \
                 lead@example.com (lead); up to 2 hours, reason required, announced in C0SECURITY"
            )]
        );
    }

    #[tokio::test]
    async fn what_a_rule_names_but_cannot_be_found_or_is_outside_the_lists_is_a_problem() {
        let policy = rules(
            r#"{"rules": [{"name": "wide", "accounts": ["*", "222222222222"], "permission_sets": ["ReadOnly"], "groups": ["on-call"], "users": ["nobody@example.com"], "max_duration_minutes": 30}]}"#,
        );
        let lines = lines(&policy).await;
        assert!(lines[0].starts_with("ok      rule wide: ReadOnly in * (= 111111111111), 222222222222 for group on-call, nobody@example.com; up to 30 minutes"), "{lines:#?}");
        let problems: Vec<&String> = lines.iter().filter(|l| l.starts_with("PROBLEM")).collect();
        assert_eq!(problems.len(), 4, "{lines:#?}");
        assert!(problems[0].contains("account 222222222222, which is not in allowed_account_ids"));
        assert!(
            problems[1].contains("permission set ReadOnly, which is none of the allowed permission sets")
        );
        assert!(problems[2].contains("group on-call is not in the Identity Store"));
        assert!(problems[3].contains("user nobody@example.com is not in the Identity Store"));
    }

    #[tokio::test]
    async fn without_rules_the_allow_lists_decide() {
        assert_eq!(
            lines(&PolicyRules::none()).await,
            ["ok      no policy rules: the allow lists decide who may break glass"]
        );
    }

    #[test]
    fn the_settings_come_from_the_environment_or_the_outputs() {
        let instance: InstanceArn = INSTANCE.parse().unwrap();
        let env = config::map_env([
            ("POLICY_PARAMETER_NAME", "/bg/policy"),
            ("IDENTITY_STORE_ID", "d-1"),
        ]);
        let s = PolicySettings::from_env(&env, &instance).unwrap();
        assert!(matches!(s.policy, Some(PolicySetting::Parameter(ref n)) if n == "/bg/policy"));
        assert_eq!(s.identity_store_id.as_deref(), Some("d-1"));
        let outputs = r#"{"state_machine_arn": {"value": "x"}, "policy_parameter_name": {"value": "/bg/policy"}, "identity_store_id": {"value": "d-1"}}"#;
        let s = PolicySettings::from_outputs(outputs, &instance).unwrap();
        assert!(matches!(s.policy, Some(PolicySetting::Parameter(ref n)) if n == "/bg/policy"));
        let none = PolicySettings::from_outputs(
            r#"{"state_machine_arn": {"value": "x"}, "policy_parameter_name": {"value": null}}"#,
            &instance,
        )
        .unwrap();
        assert!(none.policy.is_none());
    }
}
