//! Who may break into what: the policy's rules, by Identity Center group or
//! e-mail. Pure: parsing, validation and evaluation, no I/O. Where the rules
//! come from and who the requester is are `requester.rs`'s business.
//!
//! A request (requester, account, permission set, duration, reason) is
//! allowed when at least one rule covers it. Which rules exist and in what
//! order never changes *whether* a request is allowed, nor for how long:
//! only which rule's name is recorded for it (the first in order).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::domain::{AccessDuration, AccountId, InstanceArn, PermissionSetArn, SlackChannelId, clip};

/// Stands for every account.
pub const ANY_ACCOUNT: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccountPattern {
    Any,
    Only(AccountId),
}

impl AccountPattern {
    fn matches(&self, account: &AccountId) -> bool {
        match self {
            Self::Any => true,
            Self::Only(a) => a == account,
        }
    }
}

/// A permission set named in a rule: by ARN, or by its name in the
/// configured Identity Center instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PermissionSetRef {
    Arn(PermissionSetArn),
    Name(String),
}

impl PermissionSetRef {
    fn matches(&self, arn: &PermissionSetArn, name: Option<&str>) -> bool {
        match self {
            Self::Arn(a) => a == arn,
            Self::Name(n) => name == Some(n.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub accounts: BTreeSet<AccountPattern>,
    pub permission_sets: BTreeSet<PermissionSetRef>,
    /// Identity Center groups, by display name or by group id.
    pub groups: BTreeSet<String>,
    /// E-mail addresses, lower-cased.
    pub users: BTreeSet<String>,
    pub max_duration: AccessDuration,
    /// Only a request that says why may use this rule.
    pub require_reason: bool,
    /// Where grants under this rule are announced as well as the thread.
    pub notify_channel: Option<SlackChannelId>,
}

/// The policy's rules, in the order they were written. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// What the rules are checked against when they are read.
#[derive(Debug, Clone, Copy)]
pub struct RuleLimits<'a> {
    /// Permission sets named by ARN must belong to it.
    pub instance: &'a InstanceArn,
    /// No rule may allow longer (`MAX_DURATION_MINUTES` where it is read).
    pub max_duration: AccessDuration,
}

/// Why a policy document was refused. Names the rule (by position and
/// name) and the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("the policy is not valid JSON: {0}")]
    Json(String),
    #[error("the policy must be an object with exactly one field, \"rules\" (a list): {0}")]
    Shape(String),
    #[error(
        "the policy lists no rules, so nobody could break glass; to use the allow lists instead, leave the policy unset"
    )]
    NoRules,
    #[error("rule {rule}: {reason}")]
    Rule { rule: String, reason: String },
}

/// One rule as written; every field is checked before it becomes a [`Rule`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    accounts: Vec<String>,
    permission_sets: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    max_duration_minutes: u64,
    #[serde(default)]
    require_reason: bool,
    #[serde(default)]
    notify_channel: Option<String>,
}

/// An Identity Store group id (`GroupId`): a UUID, optionally after ten hex
/// digits and a dash. A rule's group of this shape is taken as an id and
/// never looked up by display name.
pub fn is_group_id(s: &str) -> bool {
    let uuid = match s.split_once('-') {
        Some((prefix, rest)) if prefix.len() == 10 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if rest.len() == 36 { rest } else { s }
        }
        _ => s,
    };
    let parts: Vec<&str> = uuid.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Identity Center's permission set names: 1 to 32 of `[\w+=,.@-]`.
fn is_permission_set_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn is_rule_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && s.len() <= 254
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

impl RuleSet {
    /// Reads and checks a policy document:
    /// `{"rules": [{"name": …, "accounts": […], "permission_sets": […],
    /// "groups": […], "users": […], "max_duration_minutes": …,
    /// "require_reason": …, "notify_channel": …}]}`. Unknown fields,
    /// duplicate keys and anything that could widen access by accident are
    /// refused, naming the rule and the field.
    pub fn parse(text: &str, limits: RuleLimits<'_>) -> Result<Self, PolicyError> {
        let value = crate::slack::payload::strict_json(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        let Value::Object(mut top) = value else {
            return Err(PolicyError::Shape("it is not an object".into()));
        };
        if let Some(other) = top.keys().find(|k| *k != "rules") {
            return Err(PolicyError::Shape(format!("unknown field {:?}", clip(other))));
        }
        let Some(Value::Array(raw)) = top.remove("rules") else {
            return Err(PolicyError::Shape("\"rules\" is missing or not a list".into()));
        };
        if raw.is_empty() {
            return Err(PolicyError::NoRules);
        }
        let mut rules = Vec::with_capacity(raw.len());
        let mut names = BTreeSet::new();
        for (i, value) in raw.into_iter().enumerate() {
            let label = match value.get("name").and_then(Value::as_str) {
                Some(name) => format!("#{} {:?}", i + 1, clip(name)),
                None => format!("#{}", i + 1),
            };
            let fail = |reason: String| PolicyError::Rule {
                rule: label.clone(),
                reason,
            };
            let raw: RawRule = serde_json::from_value(value).map_err(|e| fail(e.to_string()))?;
            let rule = Rule::check(raw, limits).map_err(fail)?;
            if !names.insert(rule.name.clone()) {
                return Err(fail("field `name`: another rule has the same name".into()));
            }
            rules.push(rule);
        }
        Ok(Self { rules })
    }

    /// Rules built in code (tests, properties); `None` when empty.
    pub fn new(rules: Vec<Rule>) -> Option<Self> {
        (!rules.is_empty()).then_some(Self { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every group any rule names, as written.
    pub fn groups(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .flat_map(|r| r.groups.iter().map(String::as_str))
            .collect()
    }

    /// Whether any rule names a permission set by name, so the requested
    /// permission set's name must be known to decide.
    pub fn names_permission_sets(&self) -> bool {
        self.rules
            .iter()
            .flat_map(|r| &r.permission_sets)
            .any(|p| matches!(p, PermissionSetRef::Name(_)))
    }
}

impl Rule {
    fn check(raw: RawRule, limits: RuleLimits<'_>) -> Result<Self, String> {
        if !is_rule_name(&raw.name) {
            return Err(format!(
                "field `name`: {:?} must be 1 to 64 letters, digits, '_', '.' or '-'",
                clip(&raw.name)
            ));
        }
        if raw.accounts.is_empty() {
            return Err("field `accounts`: lists nothing (use \"*\" for every account)".into());
        }
        let accounts = raw
            .accounts
            .iter()
            .map(|a| {
                if a == ANY_ACCOUNT {
                    Ok(AccountPattern::Any)
                } else {
                    a.parse()
                        .map(AccountPattern::Only)
                        .map_err(|e| format!("field `accounts`: {e} (or \"*\")"))
                }
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if raw.permission_sets.is_empty() {
            return Err("field `permission_sets`: lists nothing".into());
        }
        let permission_sets = raw
            .permission_sets
            .iter()
            .map(|p| {
                if p.starts_with("arn:") {
                    let arn: PermissionSetArn = p.parse().map_err(|e| format!("field `permission_sets`: {e}"))?;
                    if !arn.belongs_to(limits.instance) {
                        return Err(format!(
                            "field `permission_sets`: {arn} is not in the configured instance {}",
                            limits.instance.instance_id()
                        ));
                    }
                    Ok(PermissionSetRef::Arn(arn))
                } else if is_permission_set_name(p) {
                    Ok(PermissionSetRef::Name(p.clone()))
                } else {
                    Err(format!(
                        "field `permission_sets`: {:?} is neither a permission set ARN nor a permission set name",
                        clip(p)
                    ))
                }
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let groups = raw
            .groups
            .iter()
            .map(|g| {
                let g = g.trim();
                if g.is_empty() || g.len() > 1024 {
                    Err("field `groups`: a group must be named by its display name or its id".to_string())
                } else {
                    Ok(g.to_string())
                }
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let users = raw
            .users
            .iter()
            .map(|u| {
                let u = u.trim().to_lowercase();
                if is_email(&u) {
                    Ok(u)
                } else {
                    Err(format!("field `users`: {:?} is not an e-mail address", clip(&u)))
                }
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if groups.is_empty() && users.is_empty() {
            return Err(
                "fields `groups` and `users` are both empty: a rule must say who may use it (it would otherwise allow nobody, or be mistaken for everybody)"
                    .into(),
            );
        }
        let max_duration = AccessDuration::from_minutes(raw.max_duration_minutes)
            .map_err(|e| format!("field `max_duration_minutes`: {e}"))?;
        if max_duration > limits.max_duration {
            return Err(format!(
                "field `max_duration_minutes`: {max_duration} is longer than MAX_DURATION_MINUTES ({})",
                limits.max_duration
            ));
        }
        let notify_channel = raw
            .notify_channel
            .map(|c| c.parse().map_err(|e| format!("field `notify_channel`: {e}")))
            .transpose()?;
        Ok(Self {
            name: raw.name,
            accounts,
            permission_sets,
            groups,
            users,
            max_duration,
            require_reason: raw.require_reason,
            notify_channel,
        })
    }

    fn covers_target(&self, wanted: &Wanted<'_>) -> bool {
        self.accounts.iter().any(|a| a.matches(wanted.account))
            && self
                .permission_sets
                .iter()
                .any(|p| p.matches(wanted.permission_set, wanted.permission_set_name))
    }

    fn names(&self, who: &Requester<'_>) -> bool {
        let by_email = who
            .email
            .is_some_and(|e| self.users.contains(&e.trim().to_lowercase()));
        by_email
            || who.groups.iter().any(|g| {
                self.groups.contains(&g.id)
                    || g.display_name.as_ref().is_some_and(|n| self.groups.contains(n))
            })
    }
}

/// An Identity Center group the requester is a member of. `display_name` is
/// known when a rule named the group by it (and it was looked up).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    pub id: String,
    pub display_name: Option<String>,
}

/// Who asks: their e-mail (the one that found their Identity Center user)
/// and the groups they are in.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub email: Option<&'a str>,
    pub groups: &'a [Group],
}

/// What is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub account: &'a AccountId,
    pub permission_set: &'a PermissionSetArn,
    /// The permission set's name, when known (needed for rules that name it).
    pub permission_set_name: Option<&'a str>,
    /// `None`: the default (a button click names no duration).
    pub duration: Option<AccessDuration>,
    /// Why, when the request says (button clicks do not).
    pub reason: Option<&'a str>,
}

impl Wanted<'_> {
    fn what(&self) -> String {
        let set = self
            .permission_set_name
            .unwrap_or_else(|| self.permission_set.permission_set_id());
        format!("{set} in {}", self.account)
    }
}

/// A request the rules allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub duration: AccessDuration,
    /// The longest any rule that covers the request allows: how far an
    /// Extend may take the grant (from when it was asked for).
    pub longest: AccessDuration,
    /// The first rule (in order) that allows it.
    pub rule: String,
    /// Every allowing rule's `notify_channel`, each once, sorted.
    pub notify_channels: Vec<SlackChannelId>,
}

/// Why the rules refuse a request. The text is shown to the requester: it
/// names what would have allowed it, if anything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleRefusal {
    #[error("no break-glass rule covers {what}")]
    NoRule { what: String },
    #[error("{what} is for {who} ({})", rule_list(.rules))]
    NotForYou {
        what: String,
        who: Audience,
        rules: Vec<String>,
    },
    #[error(
        "{what} requires a reason ({}), and a button click carries none, so a click cannot break this glass",
        rule_list(.rules)
    )]
    ReasonRequired { what: String, rules: Vec<String> },
    #[error("{requested} is longer than the {longest} the break-glass rules allow for {what} ({})", rule_list(.rules))]
    TooLong {
        what: String,
        requested: AccessDuration,
        longest: AccessDuration,
        rules: Vec<String>,
    },
}

fn rule_list(rules: &[String]) -> String {
    match rules {
        [one] => format!("rule {one}"),
        many => format!("rules {}", many.join(", ")),
    }
}

/// Who the rules covering a request are for, as the refusal says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub groups: Vec<String>,
    /// Some rule also names people by e-mail (they are not listed).
    pub named_people: bool,
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = match self.groups.as_slice() {
            [] => None,
            [one] => Some(format!("the {one} group")),
            [init @ .., last] => Some(format!("the {} or {last} groups", init.join(", "))),
        };
        match (groups, self.named_people) {
            (Some(g), true) => write!(f, "{g} or people named in the rule"),
            (Some(g), false) => f.write_str(&g),
            (None, _) => f.write_str("people named in the rule"),
        }
    }
}

impl RuleSet {
    /// Decides a request. A request without a duration gets the default,
    /// shortened to the longest the covering rules allow.
    pub fn evaluate(
        &self,
        who: &Requester<'_>,
        wanted: &Wanted<'_>,
        default_duration: AccessDuration,
    ) -> Result<Allowed, RuleRefusal> {
        let what = wanted.what();
        let names = |rules: &[&Rule]| -> Vec<String> {
            let set: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
            set.into_iter().map(str::to_string).collect()
        };
        let target: Vec<&Rule> = self.rules.iter().filter(|r| r.covers_target(wanted)).collect();
        if target.is_empty() {
            return Err(RuleRefusal::NoRule { what });
        }
        let mine: Vec<&Rule> = target.iter().copied().filter(|r| r.names(who)).collect();
        if mine.is_empty() {
            let groups: BTreeSet<&str> = target
                .iter()
                .flat_map(|r| r.groups.iter().map(String::as_str))
                .collect();
            return Err(RuleRefusal::NotForYou {
                what,
                who: Audience {
                    groups: groups.into_iter().map(str::to_string).collect(),
                    named_people: target.iter().any(|r| !r.users.is_empty()),
                },
                rules: names(&target),
            });
        }
        let has_reason = wanted.reason.is_some_and(|r| !r.trim().is_empty());
        let usable: Vec<&Rule> = mine
            .iter()
            .copied()
            .filter(|r| !r.require_reason || has_reason)
            .collect();
        if usable.is_empty() {
            return Err(RuleRefusal::ReasonRequired {
                what,
                rules: names(&mine),
            });
        }
        let longest = usable
            .iter()
            .map(|r| r.max_duration)
            .max()
            .unwrap_or(default_duration);
        let duration = wanted.duration.unwrap_or(default_duration.min(longest));
        if duration > longest {
            return Err(RuleRefusal::TooLong {
                what,
                requested: duration,
                longest,
                rules: names(&usable),
            });
        }
        let allowing: Vec<&Rule> = usable
            .iter()
            .copied()
            .filter(|r| r.max_duration >= duration)
            .collect();
        let channels: BTreeMap<&str, &SlackChannelId> = allowing
            .iter()
            .filter_map(|r| r.notify_channel.as_ref().map(|c| (c.as_str(), c)))
            .collect();
        Ok(Allowed {
            duration,
            longest,
            rule: allowing.first().map(|r| r.name.clone()).unwrap_or_default(),
            notify_channels: channels.into_values().cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"rules": [{"name": "oncall-admin", "accounts": ["111111111111"], "permission_sets": ["BreakGlassAdmin"], "groups": ["oncall"], "users": ["lead@example.com"], "max_duration_minutes": 120, "require_reason": true, "notify_channel": "C0SECURITY"}]}"#;

    fn instance() -> InstanceArn {
        "arn:aws:sso:::instance/ssoins-12345".parse().unwrap()
    }

    fn minutes(m: u64) -> AccessDuration {
        AccessDuration::from_minutes(m).unwrap()
    }

    fn parse(text: &str) -> Result<RuleSet, PolicyError> {
        RuleSet::parse(
            text,
            RuleLimits {
                instance: &instance(),
                max_duration: minutes(240),
            },
        )
    }

    fn policy(rules: &str) -> RuleSet {
        parse(&format!(r#"{{"rules": [{rules}]}}"#)).unwrap()
    }

    fn refused(rules: &str) -> String {
        parse(&format!(r#"{{"rules": [{rules}]}}"#))
            .unwrap_err()
            .to_string()
    }

    fn group(id: &str, name: Option<&str>) -> Group {
        Group {
            id: id.into(),
            display_name: name.map(str::to_string),
        }
    }

    fn account(a: &str) -> AccountId {
        a.parse().unwrap()
    }

    fn set(id: &str) -> PermissionSetArn {
        format!("arn:aws:sso:::permissionSet/ssoins-12345/{id}")
            .parse()
            .unwrap()
    }

    #[test]
    fn the_issue_example_reads_as_written() {
        let rules = parse(EXAMPLE).unwrap();
        let rule = &rules.rules()[0];
        assert_eq!(rule.name, "oncall-admin");
        assert_eq!(
            rule.accounts,
            [AccountPattern::Only(account("111111111111"))].into()
        );
        assert_eq!(
            rule.permission_sets,
            [PermissionSetRef::Name("BreakGlassAdmin".into())].into()
        );
        assert_eq!(rule.groups, ["oncall".to_string()].into());
        assert_eq!(rule.users, ["lead@example.com".to_string()].into());
        assert_eq!(rule.max_duration, minutes(120));
        assert!(rule.require_reason);
        assert_eq!(rule.notify_channel.as_ref().unwrap().as_str(), "C0SECURITY");
        assert!(rules.names_permission_sets());
    }

    #[test]
    fn mistakes_are_refused_naming_the_rule_and_the_field() {
        let ok = r#""name": "r", "accounts": ["111111111111"], "permission_sets": ["Admin"], "groups": ["g"], "max_duration_minutes": 60"#;
        assert!(parse(&format!(r#"{{"rules": [{{{ok}}}]}}"#)).is_ok());
        for (rule, words) in [
            (
                r#""name": "r", "accounts": ["111111111111"], "permission_sets": ["Admin"], "grops": ["g"], "max_duration_minutes": 60"#,
                "unknown field `grops`",
            ),
            (
                r#""name": "r", "accounts": ["111111111111"], "permission_sets": ["Admin"], "max_duration_minutes": 60"#,
                "fields `groups` and `users` are both empty",
            ),
            (
                r#""name": "r", "accounts": ["111111111111"], "permission_sets": ["Admin"], "groups": [], "users": [], "max_duration_minutes": 60"#,
                "fields `groups` and `users` are both empty",
            ),
            (
                r#""name": "r", "accounts": [], "permission_sets": ["Admin"], "groups": ["g"], "max_duration_minutes": 60"#,
                "field `accounts`: lists nothing",
            ),
            (
                r#""name": "r", "accounts": ["1111"], "permission_sets": ["Admin"], "groups": ["g"], "max_duration_minutes": 60"#,
                "field `accounts`: account id must be exactly 12 digits",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": [], "groups": ["g"], "max_duration_minutes": 60"#,
                "field `permission_sets`: lists nothing",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["arn:aws:sso:::permissionSet/ssoins-other/ps-1"], "groups": ["g"], "max_duration_minutes": 60"#,
                "is not in the configured instance ssoins-12345",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["g"], "max_duration_minutes": 0"#,
                "field `max_duration_minutes`: duration must be between 1 and 720 minutes, got 0",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["g"], "max_duration_minutes": -5"#,
                "invalid value: integer `-5`",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["g"], "max_duration_minutes": 300"#,
                "field `max_duration_minutes`: 5 hours is longer than MAX_DURATION_MINUTES (4 hours)",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["Admin"], "users": ["not-an-address"], "max_duration_minutes": 60"#,
                "field `users`",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["g"], "max_duration_minutes": 60, "notify_channel": "security""#,
                "field `notify_channel`",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["g"], "groups": ["h"], "max_duration_minutes": 60"#,
                "duplicate key",
            ),
            (
                r#""name": "r", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["g"]"#,
                "missing field `max_duration_minutes`",
            ),
        ] {
            let err = refused(&format!("{{{rule}}}"));
            assert!(err.contains(words), "{rule}\n  said: {err}\n  expected: {words}");
            if !err.contains("duplicate key") {
                assert!(err.starts_with("rule #1 \"r\": "), "{err}");
            }
        }
        let err = refused(&format!("{{{ok}}}, {{{ok}}}"));
        assert_eq!(err, "rule #2 \"r\": field `name`: another rule has the same name");
        assert_eq!(parse(r#"{"rules": []}"#), Err(PolicyError::NoRules));
        assert!(matches!(
            parse(r#"{"rules": [], "extra": 1}"#),
            Err(PolicyError::Shape(_))
        ));
        assert!(matches!(parse(r#"[]"#), Err(PolicyError::Shape(_))));
        assert!(matches!(parse(r#"{"rules": "#), Err(PolicyError::Json(_))));
    }

    fn wanted<'a>(account: &'a AccountId, set: &'a PermissionSetArn, name: Option<&'a str>) -> Wanted<'a> {
        Wanted {
            account,
            permission_set: set,
            permission_set_name: name,
            duration: None,
            reason: None,
        }
    }

    #[test]
    fn refusals_say_who_the_access_is_for() {
        let rules = policy(
            r#"{"name": "oncall-admin", "accounts": ["123456789012"], "permission_sets": ["BreakGlassAdmin"], "groups": ["oncall"], "max_duration_minutes": 120}"#,
        );
        let (a, s) = (account("123456789012"), set("ps-1"));
        let nobody = Requester {
            email: Some("eve@example.com"),
            groups: &[group("g-dev", Some("developers"))],
        };
        let err = rules
            .evaluate(&nobody, &wanted(&a, &s, Some("BreakGlassAdmin")), minutes(60))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "BreakGlassAdmin in 123456789012 is for the oncall group (rule oncall-admin)"
        );
        let err = rules
            .evaluate(&nobody, &wanted(&a, &s, Some("ReadOnly")), minutes(60))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no break-glass rule covers ReadOnly in 123456789012"
        );
        let other = account("999999999999");
        let err = rules
            .evaluate(&nobody, &wanted(&other, &s, None), minutes(60))
            .unwrap_err();
        assert_eq!(err.to_string(), "no break-glass rule covers ps-1 in 999999999999");
    }

    #[test]
    fn a_rule_that_requires_a_reason_does_not_cover_a_button_click() {
        let rules = parse(EXAMPLE).unwrap();
        let (a, s) = (account("111111111111"), set("ps-1"));
        let lead = Requester {
            email: Some("Lead@Example.com"),
            groups: &[],
        };
        let click = wanted(&a, &s, Some("BreakGlassAdmin"));
        assert_eq!(
            rules
                .evaluate(&lead, &click, minutes(60))
                .unwrap_err()
                .to_string(),
            "BreakGlassAdmin in 111111111111 requires a reason (rule oncall-admin), and a button click carries none, so a click cannot break this glass"
        );
        let with_reason = Wanted {
            reason: Some("INC-42"),
            ..click
        };
        let allowed = rules.evaluate(&lead, &with_reason, minutes(60)).unwrap();
        assert_eq!(allowed.duration, minutes(60));
        assert_eq!(allowed.rule, "oncall-admin");
        assert_eq!(allowed.notify_channels[0].as_str(), "C0SECURITY");
        let blank = Wanted {
            reason: Some("  "),
            ..click
        };
        assert!(matches!(
            rules.evaluate(&lead, &blank, minutes(60)),
            Err(RuleRefusal::ReasonRequired { .. })
        ));
    }

    #[test]
    fn durations_default_to_what_the_rules_allow_and_never_beyond() {
        let rules = policy(
            r#"{"name": "short", "accounts": ["*"], "permission_sets": ["Admin"], "groups": ["sre"], "max_duration_minutes": 30, "notify_channel": "C0A"},
               {"name": "long", "accounts": ["123456789012"], "permission_sets": ["Admin"], "groups": ["oncall"], "max_duration_minutes": 120, "notify_channel": "C0B"}"#,
        );
        let (a, s) = (account("123456789012"), set("ps-1"));
        let both = [group("1", Some("sre")), group("2", Some("oncall"))];
        let sre = [group("1", Some("sre"))];
        let ask = |groups: &[Group], duration: Option<u64>| {
            let w = Wanted {
                duration: duration.map(minutes),
                ..wanted(&a, &s, Some("Admin"))
            };
            rules.evaluate(&Requester { email: None, groups }, &w, minutes(60))
        };
        // The default, shortened to the rule's longest.
        assert_eq!(ask(&sre, None).unwrap().duration, minutes(30));
        assert_eq!(ask(&both, None).unwrap().duration, minutes(60));
        let long = ask(&both, Some(90)).unwrap();
        assert_eq!(long.rule, "long");
        assert_eq!(
            long.notify_channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            ["C0B"]
        );
        let short = ask(&both, Some(30)).unwrap();
        assert_eq!(short.rule, "short");
        assert_eq!(short.notify_channels.len(), 2);
        assert_eq!(
            ask(&sre, Some(31)).unwrap_err().to_string(),
            "31 minutes is longer than the 30 minutes the break-glass rules allow for Admin in 123456789012 (rule short)"
        );
    }

    #[test]
    fn groups_match_by_display_name_or_id_and_users_by_email() {
        let rules = policy(
            r#"{"name": "by-name", "accounts": ["*"], "permission_sets": ["arn:aws:sso:::permissionSet/ssoins-12345/ps-1"], "groups": ["oncall"], "max_duration_minutes": 60},
               {"name": "by-id", "accounts": ["*"], "permission_sets": ["arn:aws:sso:::permissionSet/ssoins-12345/ps-2"], "groups": ["9067aaa7c8-1f2d3e4b-1111-2222-3333-444455556666"], "users": ["Bob@Example.com"], "max_duration_minutes": 60}"#,
        );
        let a = account("123456789012");
        let (one, two) = (set("ps-1"), set("ps-2"));
        let id = "9067aaa7c8-1f2d3e4b-1111-2222-3333-444455556666";
        let ok = |groups: &[Group], email: Option<&str>, s: &PermissionSetArn| {
            rules
                .evaluate(&Requester { email, groups }, &wanted(&a, s, None), minutes(60))
                .is_ok()
        };
        assert!(ok(&[group("x", Some("oncall"))], None, &one));
        assert!(
            !ok(&[group("oncall-id", None)], None, &one),
            "a name is not an id"
        );
        assert!(ok(&[group(id, None)], None, &two));
        assert!(ok(&[group(id, Some("whatever"))], None, &two));
        assert!(!ok(&[group("x", Some(id))], None, &one));
        assert!(ok(&[], Some("bob@example.com"), &two));
        assert!(!ok(&[], Some("bob@example.com"), &one));
        assert!(!ok(&[], None, &two));
        assert!(is_group_id(id));
        assert!(is_group_id("1f2d3e4b-1111-2222-3333-444455556666"));
        assert!(!is_group_id("oncall"));
        assert!(!is_group_id("1f2d3e4b-1111-2222-3333-44445555666"));
    }

    #[test]
    fn audiences_read_naturally() {
        let a = |groups: &[&str], named_people| {
            Audience {
                groups: groups.iter().map(|g| g.to_string()).collect(),
                named_people,
            }
            .to_string()
        };
        assert_eq!(a(&["oncall"], false), "the oncall group");
        assert_eq!(
            a(&["dba", "oncall", "sre"], false),
            "the dba, oncall or sre groups"
        );
        assert_eq!(
            a(&["oncall"], true),
            "the oncall group or people named in the rule"
        );
        assert_eq!(a(&[], true), "people named in the rule");
    }
}
