//! The policy's rules at run time, over the ports: where they are read from
//! (and how long a read is trusted), and who the requester is in Identity
//! Center, with their groups, so `rules::RuleSet::evaluate` can decide.
//!
//! access-requested decides first, inside Slack's 3 seconds, trusting what
//! it read in the last minute; grant-access decides again just before it
//! creates anything, reading group membership afresh, so whoever left the
//! group between click and grant gets nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::clock::Clock;
use crate::config::{ConfigError, Env, optional};
use crate::domain::{AccessDuration, InstanceArn, PermissionSetArn, SlackUserId};
use crate::ports::{Directory, DirectoryUser, IdentityCenter, PolicySource, PortError};
use crate::retry::{Backoff, with_retries};
use crate::rules::{
    Allowed, Group, PolicyError, Requester, RuleLimits, RuleRefusal, RuleSet, Wanted, is_group_id,
};

/// How long a policy read from its parameter is used before it is read
/// again: a change reaches every warm function within a minute.
pub const POLICY_CACHE: Duration = Duration::from_secs(60);

/// How long access-requested trusts who a Slack user is and which groups
/// they are in. grant-access never caches membership.
pub const MEMBERSHIP_CACHE: Duration = Duration::from_secs(60);

/// Where a function finds the policy's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySetting {
    /// `POLICY_PARAMETER_NAME`: an SSM parameter holding the document
    /// (deployed), read at cold start and again after [`POLICY_CACHE`].
    Parameter(String),
    /// `BREAK_GLASS_POLICY`: the document itself (local runs, tests),
    /// checked when the configuration is read.
    Inline(Arc<RuleSet>),
}

impl PolicySetting {
    /// The parameter wins, as a secret's ARN wins over its plain value: a
    /// deployed function never falls back to a document left in its
    /// environment. Neither set: no rules (the allow lists decide).
    pub fn from_env(env: &dyn Env, limits: RuleLimits<'_>) -> Result<Option<Self>, ConfigError> {
        if let Some(name) = optional(env, "POLICY_PARAMETER_NAME") {
            let shaped = name.len() <= 2048
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-/:".contains(c));
            if !shaped {
                return Err(ConfigError::Invalid {
                    var: "POLICY_PARAMETER_NAME",
                    reason: "expected an SSM parameter name (letters, digits, _ . - /) or ARN".into(),
                });
            }
            return Ok(Some(Self::Parameter(name)));
        }
        optional(env, "BREAK_GLASS_POLICY")
            .map(|text| {
                RuleSet::parse(&text, limits)
                    .map(|rules| Self::Inline(Arc::new(rules)))
                    .map_err(|e| ConfigError::Invalid {
                        var: "BREAK_GLASS_POLICY",
                        reason: e.to_string(),
                    })
            })
            .transpose()
    }
}

/// Why the rules cannot be consulted. Either way nothing is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyUnavailable {
    #[error("the break-glass policy could not be read: {0}")]
    Unreadable(PortError),
    #[error("the break-glass policy is invalid: {0}")]
    Invalid(PolicyError),
}

/// The rules a function decides by, read once and kept for
/// [`POLICY_CACHE`] when they come from a parameter.
#[derive(Debug)]
pub struct PolicyRules {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// No rules configured: the allow lists decide, exactly as before rules.
    None,
    Fixed(Arc<RuleSet>),
    Stored {
        source: Box<dyn PolicySource>,
        instance: InstanceArn,
        max_duration: AccessDuration,
        cached: Mutex<Option<(DateTime<Utc>, Arc<RuleSet>)>>,
    },
}

/// For functions and tests with no rules configured.
pub static NO_RULES: PolicyRules = PolicyRules::none();

impl PolicyRules {
    pub const fn none() -> Self {
        Self { kind: Kind::None }
    }

    pub fn fixed(rules: Arc<RuleSet>) -> Self {
        Self {
            kind: Kind::Fixed(rules),
        }
    }

    /// Rules read from `source` and checked against `instance` and
    /// `max_duration` each time they are read.
    pub fn stored(
        source: Box<dyn PolicySource>,
        instance: InstanceArn,
        max_duration: AccessDuration,
    ) -> Self {
        Self {
            kind: Kind::Stored {
                source,
                instance,
                max_duration,
                cached: Mutex::new(None),
            },
        }
    }

    /// From a function's setting; `source` makes the reader of a parameter.
    pub fn from_setting(
        setting: Option<&PolicySetting>,
        instance: &InstanceArn,
        max_duration: AccessDuration,
        source: impl FnOnce(&str) -> Box<dyn PolicySource>,
    ) -> Self {
        match setting {
            None => Self::none(),
            Some(PolicySetting::Inline(rules)) => Self::fixed(rules.clone()),
            Some(PolicySetting::Parameter(name)) => {
                Self::stored(source(name), instance.clone(), max_duration)
            }
        }
    }

    /// Whether rules decide (`false`: the allow lists do).
    pub fn configured(&self) -> bool {
        !matches!(self.kind, Kind::None)
    }

    /// The rules in force: `Ok(None)` when none are configured. A policy
    /// that cannot be read, or reads as invalid, is an error and never an
    /// older copy: removing someone from the rules takes effect within
    /// [`POLICY_CACHE`], or nothing is allowed at all.
    pub async fn current(
        &self,
        clock: &dyn Clock,
        backoff: Backoff,
    ) -> Result<Option<Arc<RuleSet>>, PolicyUnavailable> {
        let (source, instance, max_duration, cached) = match &self.kind {
            Kind::None => return Ok(None),
            Kind::Fixed(rules) => return Ok(Some(rules.clone())),
            Kind::Stored {
                source,
                instance,
                max_duration,
                cached,
            } => (source, instance, *max_duration, cached),
        };
        let now = clock.now();
        let fresh = chrono::Duration::from_std(POLICY_CACHE).unwrap_or_default();
        if let Some((read_at, rules)) = lock(cached).as_ref()
            && now >= *read_at
            && now - *read_at < fresh
        {
            return Ok(Some(rules.clone()));
        }
        let text = with_retries(clock, backoff, || source.read_policy())
            .await
            .map_err(PolicyUnavailable::Unreadable)?;
        let rules = RuleSet::parse(
            &text,
            RuleLimits {
                instance,
                max_duration,
            },
        )
        .map(Arc::new)
        .map_err(PolicyUnavailable::Invalid);
        match rules {
            Ok(rules) => {
                *lock(cached) = Some((now, rules.clone()));
                Ok(Some(rules))
            }
            Err(e) => {
                *lock(cached) = None;
                Err(e)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A requester as Identity Center knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: DirectoryUser,
    /// The e-mail that found them (their Slack profile's).
    pub email: String,
    /// The groups they are a direct member of, by id.
    pub group_ids: BTreeSet<String>,
}

/// Every group the user is in (`ListGroupMembershipsForMember`, all pages).
pub async fn member_groups(
    directory: &dyn Directory,
    clock: &dyn Clock,
    backoff: Backoff,
    user_id: &str,
) -> Result<BTreeSet<String>, PortError> {
    with_retries(clock, backoff, || directory.group_ids_of(user_id))
        .await
        .map(|ids| ids.into_iter().collect())
}

/// What access-requested remembers for [`MEMBERSHIP_CACHE`] in a warm
/// function: who Slack users are (and their groups), which group id has
/// each display name a rule uses, and permission set names. Only answers
/// are kept, never failures.
#[derive(Debug, Default)]
pub struct LookupCache {
    members: Remembered<SlackUserId, Member>,
    /// Display name → group id (`None`: no such group).
    groups: Remembered<String, Option<String>>,
    permission_sets: Remembered<PermissionSetArn, String>,
}

/// Answers and when they were read.
type Remembered<K, V> = Mutex<HashMap<K, (DateTime<Utc>, V)>>;

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    map: &Remembered<K, V>,
    key: &K,
    now: DateTime<Utc>,
) -> Option<V> {
    // A stale entry is left to be overwritten by the next answer: one per
    // Slack user, group name and permission set, so the map stays small.
    let ttl = chrono::Duration::from_std(MEMBERSHIP_CACHE).unwrap_or_default();
    match lock(map).get(key) {
        Some((at, value)) if now >= *at && now - *at < ttl => Some(value.clone()),
        _ => None,
    }
}

impl LookupCache {
    pub fn member(&self, user: &SlackUserId, now: DateTime<Utc>) -> Option<Member> {
        fresh(&self.members, user, now)
    }

    pub fn remember_member(&self, user: &SlackUserId, member: &Member, now: DateTime<Utc>) {
        lock(&self.members).insert(user.clone(), (now, member.clone()));
    }

    pub fn permission_set_name(&self, arn: &PermissionSetArn, now: DateTime<Utc>) -> Option<String> {
        fresh(&self.permission_sets, arn, now)
    }

    pub fn remember_permission_set_name(&self, arn: &PermissionSetArn, name: &str, now: DateTime<Utc>) {
        lock(&self.permission_sets).insert(arn.clone(), (now, name.to_string()));
    }
}

/// The requester's groups as the rules see them: each with the display
/// name a rule calls it by, where a rule does (found with `GetGroupId`, so
/// a user in many groups costs one call per group the rules name, not one
/// per group they are in). Groups a rule names by id match on the id and
/// are not looked up.
pub async fn groups_seen_by(
    rules: &RuleSet,
    group_ids: &BTreeSet<String>,
    directory: &dyn Directory,
    clock: &dyn Clock,
    backoff: Backoff,
    cache: Option<&LookupCache>,
) -> Result<Vec<Group>, PortError> {
    let mut groups: Vec<Group> = group_ids
        .iter()
        .map(|id| Group {
            id: id.clone(),
            display_name: None,
        })
        .collect();
    for name in rules.groups() {
        if group_ids.contains(name) || is_group_id(name) {
            continue;
        }
        let now = clock.now();
        let id = match cache.and_then(|c| fresh(&c.groups, &name.to_string(), now)) {
            Some(id) => id,
            None => {
                let id = with_retries(clock, backoff, || directory.find_group(name)).await?;
                if let Some(c) = cache {
                    lock(&c.groups).insert(name.to_string(), (now, id.clone()));
                }
                id
            }
        };
        if let Some(group) = id.and_then(|id| groups.iter_mut().find(|g| g.id == id)) {
            group.display_name = Some(name.to_string());
        }
    }
    Ok(groups)
}

/// Why a request could not be allowed by the rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RulesRefusal {
    /// The rules say no.
    #[error("{0}")]
    Refused(RuleRefusal),
    /// Group membership (or the permission set's name) could not be read:
    /// nothing can be decided, so nothing is allowed.
    #[error("the break-glass rules could not be checked, because Identity Center could not be read ({0})")]
    Unreadable(PortError),
}

/// Decides a request for a member by the rules, looking up only what the
/// rules need: group display names, and the permission set's name when a
/// rule names one by name (`permission_set_name` saves the call when the
/// caller knows it).
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    rules: &RuleSet,
    member: &Member,
    wanted: Wanted<'_>,
    default_duration: AccessDuration,
    directory: &dyn Directory,
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    backoff: Backoff,
    cache: Option<&LookupCache>,
) -> Result<Allowed, RulesRefusal> {
    let groups = groups_seen_by(rules, &member.group_ids, directory, clock, backoff, cache)
        .await
        .map_err(RulesRefusal::Unreadable)?;
    let mut name = wanted.permission_set_name.map(str::to_string);
    if name.is_none() && rules.names_permission_sets() {
        let arn = wanted.permission_set;
        let now = clock.now();
        name = match cache.and_then(|c| c.permission_set_name(arn, now)) {
            Some(n) => Some(n),
            None => {
                let info = with_retries(clock, backoff, || identity_center.permission_set(arn))
                    .await
                    .map_err(RulesRefusal::Unreadable)?;
                if let Some(c) = cache {
                    c.remember_permission_set_name(arn, &info.name, now);
                }
                Some(info.name)
            }
        };
    }
    let wanted = Wanted {
        permission_set_name: name.as_deref(),
        ..wanted
    };
    rules
        .evaluate(
            &Requester {
                email: Some(&member.email),
                groups: &groups,
            },
            &wanted,
            default_duration,
        )
        .map_err(RulesRefusal::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::map_env;
    use crate::ports::PortErrorKind;
    use async_trait::async_trait;

    const ONE: &str = r#"{"rules": [{"name": "one", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["oncall"], "max_duration_minutes": 60}]}"#;
    const TWO: &str = r#"{"rules": [{"name": "two", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["sre"], "max_duration_minutes": 60}]}"#;

    /// A parameter whose value the test changes, counting reads.
    #[derive(Debug)]
    struct Parameter {
        value: Mutex<Result<String, PortError>>,
        reads: Mutex<u32>,
    }

    impl Default for Parameter {
        fn default() -> Self {
            Self {
                value: Mutex::new(Ok(String::new())),
                reads: Mutex::new(0),
            }
        }
    }

    impl Parameter {
        fn set(&self, value: Result<&str, PortErrorKind>) {
            *lock(&self.value) = value
                .map(str::to_string)
                .map_err(|kind| PortError::new(kind, "ssm", "GetParameter", "no"));
        }
    }

    #[async_trait]
    impl PolicySource for Arc<Parameter> {
        async fn read_policy(&self) -> Result<String, PortError> {
            *lock(&self.reads) += 1;
            lock(&self.value).clone()
        }
    }

    fn instance() -> InstanceArn {
        "arn:aws:sso:::instance/ssoins-1".parse().unwrap()
    }

    fn max() -> AccessDuration {
        AccessDuration::from_minutes(240).unwrap()
    }

    fn name_of(rules: &RuleSet) -> &str {
        &rules.rules()[0].name
    }

    #[tokio::test]
    async fn a_stored_policy_is_read_again_after_a_minute_and_never_served_stale() {
        let parameter = Arc::new(Parameter::default());
        parameter.set(Ok(ONE));
        let rules = PolicyRules::stored(Box::new(parameter.clone()), instance(), max());
        let clock = ManualClock::at_unix(1_800_000_000);
        let current = || async { rules.current(&clock, Backoff::API).await };
        assert_eq!(name_of(&current().await.unwrap().unwrap()), "one");
        parameter.set(Ok(TWO));
        clock.advance(Duration::from_secs(59));
        assert_eq!(name_of(&current().await.unwrap().unwrap()), "one", "cached");
        assert_eq!(*lock(&parameter.reads), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(name_of(&current().await.unwrap().unwrap()), "two", "read again");
        // Unreadable or invalid: nothing is allowed, not yesterday's rules.
        clock.advance(Duration::from_secs(60));
        parameter.set(Err(PortErrorKind::AccessDenied));
        assert!(matches!(current().await, Err(PolicyUnavailable::Unreadable(_))));
        parameter.set(Ok(r#"{"rules": []}"#));
        assert_eq!(
            current().await,
            Err(PolicyUnavailable::Invalid(PolicyError::NoRules))
        );
        parameter.set(Ok(ONE));
        assert_eq!(name_of(&current().await.unwrap().unwrap()), "one");
    }

    #[tokio::test]
    async fn no_setting_means_no_rules() {
        let clock = ManualClock::at_unix(1_800_000_000);
        assert_eq!(NO_RULES.current(&clock, Backoff::API).await, Ok(None));
        assert!(!NO_RULES.configured());
    }

    #[test]
    fn the_parameter_wins_and_an_inline_policy_is_checked_at_once() {
        let i = instance();
        let limits = RuleLimits {
            instance: &i,
            max_duration: max(),
        };
        assert_eq!(PolicySetting::from_env(&map_env([]), limits), Ok(None));
        assert_eq!(
            PolicySetting::from_env(
                &map_env([
                    ("POLICY_PARAMETER_NAME", "/break-glass/policy"),
                    ("BREAK_GLASS_POLICY", "not even json")
                ]),
                limits
            ),
            Ok(Some(PolicySetting::Parameter("/break-glass/policy".into())))
        );
        let Ok(Some(PolicySetting::Inline(rules))) =
            PolicySetting::from_env(&map_env([("BREAK_GLASS_POLICY", ONE)]), limits)
        else {
            panic!("inline policy not read")
        };
        assert_eq!(name_of(&rules), "one");
        let err = PolicySetting::from_env(
            &map_env([(
                "BREAK_GLASS_POLICY",
                &ONE.replace("\"max_duration_minutes\": 60", "\"max_duration_minutes\": 600"),
            )]),
            limits,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "environment variable BREAK_GLASS_POLICY is invalid: rule #1 \"one\": field `max_duration_minutes`: 10 hours is longer than MAX_DURATION_MINUTES (4 hours)"
        );
        assert!(
            PolicySetting::from_env(&map_env([("POLICY_PARAMETER_NAME", "a b")]), limits)
                .unwrap_err()
                .to_string()
                .contains("POLICY_PARAMETER_NAME")
        );
    }
}
