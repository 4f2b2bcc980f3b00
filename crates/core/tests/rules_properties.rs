//! Properties of the policy's rules: whatever the rules and the request,
//! order never decides whether (or for how long) a request is allowed, `*`
//! covers every account, the duration is the longest the covering rules
//! allow, and a group named by its id means what it means by its name.

#![allow(clippy::unwrap_used)]

use break_glass_core::domain::{AccessDuration, AccountId, PermissionSetArn, SlackChannelId};
use break_glass_core::rules::{
    AccountPattern, Allowed, Group, PermissionSetRef, Requester, Rule, RuleRefusal, RuleSet, Wanted,
};
use proptest::prelude::*;

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
/// (ARN, name) of the instance's permission sets.
const SETS: [(&str, &str); 3] = [
    ("arn:aws:sso:::permissionSet/ssoins-1/ps-admin", "Admin"),
    ("arn:aws:sso:::permissionSet/ssoins-1/ps-ops", "Ops"),
    ("arn:aws:sso:::permissionSet/ssoins-1/ps-read", "ReadOnly"),
];
/// (id, display name) of the directory's groups.
const GROUPS: [(&str, &str); 3] = [
    ("11111111-1111-1111-1111-111111111111", "oncall"),
    ("22222222-2222-2222-2222-222222222222", "sre"),
    ("33333333-3333-3333-3333-333333333333", "dba"),
];
const USERS: [&str; 2] = ["alice@example.com", "bob@example.com"];
const CHANNELS: [&str; 2] = ["C0SEC", "C0OPS"];

fn minutes(m: u32) -> AccessDuration {
    AccessDuration::from_minutes(u64::from(m)).unwrap()
}

fn account_pattern() -> impl Strategy<Value = AccountPattern> {
    prop_oneof![
        1 => Just(AccountPattern::Any),
        3 => (0..ACCOUNTS.len()).prop_map(|i| AccountPattern::Only(ACCOUNTS[i].parse().unwrap())),
    ]
}

fn set_ref() -> impl Strategy<Value = PermissionSetRef> {
    (0..SETS.len(), any::<bool>()).prop_map(|(i, by_name)| {
        if by_name {
            PermissionSetRef::Name(SETS[i].1.into())
        } else {
            PermissionSetRef::Arn(SETS[i].0.parse().unwrap())
        }
    })
}

/// A group as a rule names it: by display name or by id.
fn group_ref() -> impl Strategy<Value = String> {
    (0..GROUPS.len(), any::<bool>()).prop_map(|(i, by_id)| {
        if by_id {
            GROUPS[i].0.into()
        } else {
            GROUPS[i].1.into()
        }
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::collection::btree_set(account_pattern(), 1..3),
        prop::collection::btree_set(set_ref(), 1..3),
        prop::collection::btree_set(group_ref(), 0..3),
        prop::collection::btree_set(prop::sample::select(USERS.to_vec()), 0..2),
        prop::sample::select(vec![15u32, 30, 60, 120, 240]),
        prop::bool::weighted(0.25),
        prop::option::of(prop::sample::select(CHANNELS.to_vec())),
    )
        .prop_filter("a rule names someone", |(_, _, g, u, ..)| {
            !g.is_empty() || !u.is_empty()
        })
        .prop_map(
            |(accounts, permission_sets, groups, users, max, require_reason, channel)| Rule {
                name: String::new(),
                accounts,
                permission_sets,
                groups,
                users: users.into_iter().map(str::to_string).collect(),
                max_duration: minutes(max),
                require_reason,
                notify_channel: channel.map(|c| c.parse::<SlackChannelId>().unwrap()),
            },
        )
}

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec(rule(), 1..6).prop_map(|mut rules| {
        for (i, r) in rules.iter_mut().enumerate() {
            r.name = format!("r{i}");
        }
        rules
    })
}

/// A requester: some of the groups (each known by id, and by display name
/// when the lookup found it) and maybe an e-mail.
#[derive(Debug, Clone)]
struct Who {
    email: Option<String>,
    groups: Vec<Group>,
}

fn who() -> impl Strategy<Value = Who> {
    (
        prop::option::of(prop::sample::select(USERS.to_vec())),
        prop::collection::btree_set(0..GROUPS.len(), 0..3),
    )
        .prop_map(|(email, groups)| Who {
            email: email.map(str::to_string),
            groups: groups
                .into_iter()
                .map(|i| Group {
                    id: GROUPS[i].0.into(),
                    display_name: Some(GROUPS[i].1.into()),
                })
                .collect(),
        })
}

#[derive(Debug, Clone)]
struct Ask {
    account: AccountId,
    set: PermissionSetArn,
    set_name: &'static str,
    duration: Option<AccessDuration>,
    reason: Option<&'static str>,
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        0..ACCOUNTS.len(),
        0..SETS.len(),
        prop::option::of(prop::sample::select(vec![10u32, 30, 60, 90, 120, 240])),
        prop::option::of(Just("INC-1")),
    )
        .prop_map(|(a, s, duration, reason)| Ask {
            account: ACCOUNTS[a].parse().unwrap(),
            set: SETS[s].0.parse().unwrap(),
            set_name: SETS[s].1,
            duration: duration.map(minutes),
            reason,
        })
}

const DEFAULT: u32 = 60;

fn decide(rules: &[Rule], who: &Who, ask: &Ask) -> Result<Allowed, RuleRefusal> {
    RuleSet::new(rules.to_vec()).unwrap().evaluate(
        &Requester {
            email: who.email.as_deref(),
            groups: &who.groups,
        },
        &Wanted {
            account: &ask.account,
            permission_set: &ask.set,
            permission_set_name: Some(ask.set_name),
            duration: ask.duration,
            reason: ask.reason,
        },
        minutes(DEFAULT),
    )
}

/// The rules that cover the request for this requester, written out again
/// from the definition, independently of `evaluate`.
fn covering<'a>(rules: &'a [Rule], who: &Who, ask: &Ask) -> Vec<&'a Rule> {
    rules
        .iter()
        .filter(|r| {
            r.accounts
                .iter()
                .any(|a| *a == AccountPattern::Any || *a == AccountPattern::Only(ask.account.clone()))
        })
        .filter(|r| {
            r.permission_sets.iter().any(|p| match p {
                PermissionSetRef::Arn(a) => *a == ask.set,
                PermissionSetRef::Name(n) => n == ask.set_name,
            })
        })
        .filter(|r| {
            who.email.as_ref().is_some_and(|e| r.users.contains(e))
                || who.groups.iter().any(|g| {
                    r.groups.contains(&g.id) || g.display_name.as_ref().is_some_and(|n| r.groups.contains(n))
                })
        })
        .filter(|r| !r.require_reason || ask.reason.is_some())
        .collect()
}

/// Everything about a decision that must not depend on the rules' order.
fn essence(d: &Result<Allowed, RuleRefusal>) -> Result<(AccessDuration, Vec<SlackChannelId>), RuleRefusal> {
    d.as_ref()
        .map(|a| (a.duration, a.notify_channels.clone()))
        .map_err(Clone::clone)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn order_never_decides_whether_or_for_how_long(
        rules in rules(), who in who(), ask in ask(), shuffle in any::<prop::sample::Index>(),
    ) {
        let before = decide(&rules, &who, &ask);
        let mut reordered = rules.clone();
        reordered.reverse();
        let k = shuffle.index(reordered.len());
        reordered.rotate_left(k);
        prop_assert_eq!(essence(&before), essence(&decide(&reordered, &who, &ask)));
    }

    #[test]
    fn allowed_exactly_when_a_rule_covers_it_for_long_enough(rules in rules(), who in who(), ask in ask()) {
        let covering = covering(&rules, &who, &ask);
        let longest = covering.iter().map(|r| r.max_duration).max();
        let decision = decide(&rules, &who, &ask);
        match (longest, ask.duration) {
            (None, _) => prop_assert!(decision.is_err()),
            (Some(longest), None) => {
                let allowed = decision.unwrap();
                prop_assert_eq!(allowed.duration, longest.min(minutes(DEFAULT)));
            }
            (Some(longest), Some(d)) if d <= longest => {
                let allowed = decision.unwrap();
                prop_assert_eq!(allowed.duration, d);
                // The named rule is the first allowing one, in order.
                let first = rules.iter().find(|r| covering.contains(r) && r.max_duration >= d).unwrap();
                prop_assert_eq!(&allowed.rule, &first.name);
            }
            (Some(longest), Some(_)) => {
                let is_too_long = matches!(decision, Err(RuleRefusal::TooLong { longest: l, .. }) if l == longest);
                prop_assert!(is_too_long);
            }
        }
    }

    #[test]
    fn the_longest_allowed_is_allowed_and_a_minute_more_is_not(rules in rules(), who in who(), ask in ask()) {
        if let Some(longest) = covering(&rules, &who, &ask).iter().map(|r| r.max_duration).max() {
            let exactly = Ask { duration: Some(longest), ..ask.clone() };
            prop_assert_eq!(decide(&rules, &who, &exactly).unwrap().duration, longest);
            if longest.minutes() < AccessDuration::MAX_MINUTES {
                let over = Ask { duration: Some(minutes(longest.minutes() + 1)), ..ask };
                prop_assert!(decide(&rules, &who, &over).is_err());
            }
        }
    }

    #[test]
    fn a_wildcard_covers_every_account_and_only_ever_widens(
        rules in rules(), who in who(), ask in ask(), which in any::<prop::sample::Index>(),
    ) {
        let before = decide(&rules, &who, &ask);
        let mut wider = rules.clone();
        let i = which.index(wider.len());
        wider[i].accounts.insert(AccountPattern::Any);
        let after = decide(&wider, &who, &ask);
        if let Ok(b) = &before {
            let a = after.as_ref().unwrap();
            prop_assert!(a.duration >= b.duration);
        }
        // With the wildcard, that rule decides as if the account were its own.
        let mut own = wider.clone();
        own[i].accounts = [AccountPattern::Only(ask.account.clone())].into();
        prop_assert_eq!(essence(&after), essence(&decide(&own, &who, &ask)));
        for other in ACCOUNTS {
            let elsewhere = Ask { account: other.parse().unwrap(), ..ask.clone() };
            let mut single = vec![wider[i].clone()];
            single[0].accounts = [AccountPattern::Any].into();
            let there = decide(&single, &who, &elsewhere).map(|a| a.duration).ok();
            let here = decide(&single, &who, &ask).map(|a| a.duration).ok();
            prop_assert_eq!(there, here, "a wildcard rule covers every account alike");
        }
    }

    #[test]
    fn a_group_named_by_id_means_the_same_as_by_its_display_name(rules in rules(), who in who(), ask in ask()) {
        let by_id: Vec<Rule> = rules
            .iter()
            .cloned()
            .map(|mut r| {
                r.groups = r.groups.iter().map(|g| {
                    GROUPS.iter().find(|(_, name)| name == g).map_or(g.clone(), |(id, _)| id.to_string())
                }).collect();
                r
            })
            .collect();
        let by_name: Vec<Rule> = rules
            .iter()
            .cloned()
            .map(|mut r| {
                r.groups = r.groups.iter().map(|g| {
                    GROUPS.iter().find(|(id, _)| id == g).map_or(g.clone(), |(_, name)| name.to_string())
                }).collect();
                r
            })
            .collect();
        let decided = decide(&by_id, &who, &ask).map(|a| (a.duration, a.notify_channels, a.rule));
        prop_assert_eq!(
            decided.is_ok(),
            decide(&by_name, &who, &ask).is_ok()
        );
        prop_assert_eq!(decided.ok(), decide(&by_name, &who, &ask).ok().map(|a| (a.duration, a.notify_channels, a.rule)));
        // Known only by id (the lookup by display name found nothing), a
        // requester still matches every rule that names the group by id.
        let ids_only = Who {
            email: who.email.clone(),
            groups: who.groups.iter().map(|g| Group { id: g.id.clone(), display_name: None }).collect(),
        };
        prop_assert_eq!(
            essence(&decide(&by_id, &ids_only, &ask)),
            essence(&decide(&by_id, &who, &ask))
        );
    }

    #[test]
    fn another_rule_never_takes_access_away(rules in rules(), extra in rule(), who in who(), ask in ask()) {
        let before = decide(&rules, &who, &ask);
        let mut more = rules.clone();
        let mut extra = extra;
        extra.name = "extra".into();
        more.push(extra);
        if before.is_ok() {
            prop_assert!(decide(&more, &who, &ask).is_ok());
        }
    }

    #[test]
    fn nobody_is_allowed_without_a_rule_naming_them(rules in rules(), ask in ask()) {
        let nobody = Who { email: Some("mallory@example.com".into()), groups: vec![Group { id: "44444444-4444-4444-4444-444444444444".into(), display_name: Some("interns".into()) }] };
        prop_assert!(decide(&rules, &nobody, &ask).is_err());
    }
}
