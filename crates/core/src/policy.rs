//! Who may break which glass, for how long. Checked before anything starts.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::ErrorType;
use crate::domain::{AccessDuration, AccountId, InstanceArn, PermissionSetArn, SlackUserId};
use crate::slack::BreakGlassClick;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub instance: InstanceArn,
    pub accounts: BTreeSet<AccountId>,
    pub permission_sets: BTreeSet<PermissionSetArn>,
    /// `None`: any member of the Slack workspace may click.
    pub users: Option<BTreeSet<SlackUserId>>,
    pub default_duration: AccessDuration,
    pub max_duration: AccessDuration,
}

/// Why a click was refused. The text is shown to the clicker as-is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyViolation {
    #[error("permission set {arn} belongs to Identity Center instance {found}, not {expected}")]
    WrongInstance {
        arn: PermissionSetArn,
        found: String,
        expected: String,
    },
    #[error("account {0} is not on the break-glass allow list")]
    AccountNotAllowed(AccountId),
    #[error("permission set {0} is not on the break-glass allow list")]
    PermissionSetNotAllowed(PermissionSetArn),
    #[error("you ({0}) are not on the break-glass allow list")]
    UserNotAllowed(SlackUserId),
    #[error("{requested} is longer than the maximum of {max}")]
    DurationTooLong {
        requested: AccessDuration,
        max: AccessDuration,
    },
}

impl ErrorType for PolicyViolation {
    fn error_type(&self) -> &'static str {
        "PolicyViolation"
    }
}

impl Policy {
    /// Decides a click; on success, the duration to grant.
    pub fn authorise(&self, click: &BreakGlassClick) -> Result<AccessDuration, PolicyViolation> {
        if let Some(users) = &self.users
            && !users.contains(&click.user_id)
        {
            return Err(PolicyViolation::UserNotAllowed(click.user_id.clone()));
        }
        let arn = &click.permission_set_arn;
        if !arn.belongs_to(&self.instance) {
            return Err(PolicyViolation::WrongInstance {
                arn: arn.clone(),
                found: arn.instance_id().to_string(),
                expected: self.instance.instance_id().to_string(),
            });
        }
        if !self.accounts.contains(&click.account_id) {
            return Err(PolicyViolation::AccountNotAllowed(click.account_id.clone()));
        }
        if !self.permission_sets.contains(arn) {
            return Err(PolicyViolation::PermissionSetNotAllowed(arn.clone()));
        }
        let duration = click.duration.unwrap_or(self.default_duration);
        if duration > self.max_duration {
            return Err(PolicyViolation::DurationTooLong {
                requested: duration,
                max: self.max_duration,
            });
        }
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::payload::PayloadShape;

    fn policy() -> Policy {
        Policy {
            instance: "arn:aws:sso:::instance/ssoins-12345".parse().unwrap(),
            accounts: ["123456789012".parse().unwrap()].into(),
            permission_sets: ["arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"
                .parse()
                .unwrap()]
            .into(),
            users: None,
            default_duration: AccessDuration::from_minutes(60).unwrap(),
            max_duration: AccessDuration::from_minutes(240).unwrap(),
        }
    }

    fn click() -> BreakGlassClick {
        BreakGlassClick {
            team_id: "T1".into(),
            user_id: "U1".parse().unwrap(),
            user_name: "alice".into(),
            channel_id: "C1".into(),
            message_ts: "1.1".into(),
            thread_ts: None,
            action_ts: "1.2".into(),
            response_url: "https://hooks.slack.com/x".into(),
            account_id: "123456789012".parse().unwrap(),
            permission_set_arn: "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"
                .parse()
                .unwrap(),
            duration: None,
            shape: PayloadShape::InteractiveMessage,
        }
    }

    #[test]
    fn an_allowed_click_gets_the_default_duration() {
        assert_eq!(policy().authorise(&click()).unwrap().minutes(), 60);
        let mut c = click();
        c.duration = Some(AccessDuration::from_minutes(240).unwrap());
        assert_eq!(policy().authorise(&c).unwrap().minutes(), 240);
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        let mut c = click();
        c.account_id = "999999999999".parse().unwrap();
        assert_eq!(
            policy().authorise(&c).unwrap_err().to_string(),
            "account 999999999999 is not on the break-glass allow list"
        );

        let mut c = click();
        c.permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-admin"
            .parse()
            .unwrap();
        assert!(matches!(
            policy().authorise(&c),
            Err(PolicyViolation::PermissionSetNotAllowed(_))
        ));

        let mut c = click();
        c.permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-other/ps-12345"
            .parse()
            .unwrap();
        assert!(matches!(
            policy().authorise(&c),
            Err(PolicyViolation::WrongInstance { .. })
        ));

        let mut c = click();
        c.duration = Some(AccessDuration::from_minutes(241).unwrap());
        assert_eq!(
            policy().authorise(&c).unwrap_err().to_string(),
            "4 hours 1 minute is longer than the maximum of 4 hours"
        );

        let mut p = policy();
        p.users = Some(["U2".parse().unwrap()].into());
        assert!(matches!(
            p.authorise(&click()),
            Err(PolicyViolation::UserNotAllowed(_))
        ));
        p.users = Some(["U1".parse().unwrap()].into());
        assert!(p.authorise(&click()).is_ok());
    }
}
