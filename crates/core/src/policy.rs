//! Who may break which glass, for how long. Checked before anything starts.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::ErrorType;
use crate::access::IdentityError;
use crate::domain::{
    AccessDuration, AccountId, InstanceArn, PermissionSetArn, SlackAppId, SlackEnterpriseId, SlackTeamId,
    SlackUserId,
};
use crate::ports::SlackProfile;
use crate::requester::{PolicyUnavailable, RulesRefusal};
use crate::slack::BreakGlassClick;

/// The Slack workspaces (and Enterprise Grid organisations) that are ours.
/// Slack lets members of other workspaces click our buttons (Slack Connect
/// channels), so "anyone in the workspace" has to be checked, not assumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackWorkspaces {
    /// Never empty: configuration refuses an empty list.
    pub teams: BTreeSet<SlackTeamId>,
    /// Empty: no Enterprise Grid organisation is ours, so any click or
    /// profile that names one is refused.
    pub enterprises: BTreeSet<SlackEnterpriseId>,
}

/// Every workspace id something carries: a click (`team.id`,
/// `user.team_id`, `enterprise.id`, `team.enterprise_id`) or a profile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkspaceIds {
    pub teams: Vec<SlackTeamId>,
    pub enterprises: Vec<SlackEnterpriseId>,
}

/// Why a workspace id is not ours.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ForeignWorkspace {
    #[error("no Slack workspace is named")]
    Unnamed,
    #[error("Slack workspace {0} is not ours")]
    Team(SlackTeamId),
    #[error("Slack organisation {0} is not ours")]
    Enterprise(SlackEnterpriseId),
}

impl SlackWorkspaces {
    /// Ours only when every id is allowed, and there is at least one: an
    /// id we cannot see is not one we can trust.
    pub fn admit(&self, ids: &WorkspaceIds) -> Result<(), ForeignWorkspace> {
        if ids.teams.is_empty() && ids.enterprises.is_empty() {
            return Err(ForeignWorkspace::Unnamed);
        }
        if let Some(team) = ids.teams.iter().find(|t| !self.teams.contains(t)) {
            return Err(ForeignWorkspace::Team(team.clone()));
        }
        if let Some(org) = ids.enterprises.iter().find(|e| !self.enterprises.contains(e)) {
            return Err(ForeignWorkspace::Enterprise(org.clone()));
        }
        Ok(())
    }
}

/// Why a Slack account may not break glass, whatever it clicked. The text
/// is shown to the clicker, in the thread.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProfileRefusal {
    #[error("your Slack account is deactivated")]
    Deleted,
    #[error("bots and apps may not break glass")]
    Bot,
    #[error("you are not a member of our Slack workspace (you reach it through a shared channel)")]
    Stranger,
    #[error("guests of our Slack workspace may not break glass")]
    Guest,
    #[error("your Slack account belongs to no workspace we could check")]
    NoWorkspace,
    #[error("your Slack account is not ours: {0}")]
    Foreign(ForeignWorkspace),
}

/// Whether a Slack account (`users.info`) is a full member of one of our
/// workspaces: not deactivated, not a bot, not a guest of either kind, not
/// a stranger from another organisation, and homed in an allowed workspace.
pub fn check_profile(profile: &SlackProfile, workspaces: &SlackWorkspaces) -> Result<(), ProfileRefusal> {
    if profile.deleted {
        return Err(ProfileRefusal::Deleted);
    }
    if profile.is_bot {
        return Err(ProfileRefusal::Bot);
    }
    if profile.is_stranger {
        return Err(ProfileRefusal::Stranger);
    }
    if profile.is_restricted || profile.is_ultra_restricted {
        return Err(ProfileRefusal::Guest);
    }
    // A profile must name its team; an unreadable id is nobody we know.
    let team = profile
        .team_id
        .as_deref()
        .ok_or(ProfileRefusal::NoWorkspace)?
        .parse::<SlackTeamId>()
        .map_err(|_| ProfileRefusal::NoWorkspace)?;
    let enterprises = match profile.enterprise_id.as_deref() {
        None => Vec::new(),
        Some(raw) => vec![raw.parse().map_err(|_| ProfileRefusal::NoWorkspace)?],
    };
    workspaces
        .admit(&WorkspaceIds {
            teams: vec![team],
            enterprises,
        })
        .map_err(ProfileRefusal::Foreign)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub instance: InstanceArn,
    /// Without rules, required: the accounts that may be broken into. With
    /// rules, optional: when set, a fence around what the rules allow.
    pub accounts: Option<BTreeSet<AccountId>>,
    /// As `accounts`, for permission sets.
    pub permission_sets: Option<BTreeSet<PermissionSetArn>>,
    pub workspaces: SlackWorkspaces,
    /// When set, clicks must come through this Slack app (`api_app_id`).
    pub app: Option<SlackAppId>,
    /// `None`: any full member of our workspaces may click (grant-access
    /// turns guests away).
    pub users: Option<BTreeSet<SlackUserId>>,
    pub default_duration: AccessDuration,
    pub max_duration: AccessDuration,
}

/// Why a click was refused. The text is shown to the clicker as-is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyViolation {
    #[error("this click did not come from our Slack: {0}")]
    ForeignWorkspace(ForeignWorkspace),
    #[error("this click did not come through the break-glass Slack app")]
    WrongApp,
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
    /// The policy's rules do not allow it, or could not be checked.
    #[error("{0}")]
    Rules(RulesRefusal),
    /// Who clicked could not be found, or may not break glass at all.
    #[error("{0}")]
    Requester(IdentityError),
    #[error("{0}")]
    PolicyUnavailable(PolicyUnavailable),
    #[error("who you are could not be checked in time; try again in a moment")]
    CheckTimedOut,
    /// `REQUIRE_REASON`, and this click cannot open the form that asks.
    #[error("break glass needs a reason here, and this button cannot ask for one: use /break-glass")]
    ReasonRequired,
}

impl ErrorType for PolicyViolation {
    fn error_type(&self) -> &'static str {
        "PolicyViolation"
    }
}

impl Policy {
    /// Whether a request comes from our workspaces through our app: what
    /// every request must pass before anything else, whoever sends it.
    pub fn admit_from(
        &self,
        workspace: &WorkspaceIds,
        app: Option<&crate::domain::SlackAppId>,
    ) -> Result<(), PolicyViolation> {
        self.workspaces
            .admit(workspace)
            .map_err(PolicyViolation::ForeignWorkspace)?;
        if let Some(ours) = &self.app
            && app != Some(ours)
        {
            return Err(PolicyViolation::WrongApp);
        }
        Ok(())
    }

    /// [`Self::admit_from`], and the user list when one is set: who may
    /// open the modal or run the command.
    pub fn admit_person(
        &self,
        workspace: &WorkspaceIds,
        app: Option<&crate::domain::SlackAppId>,
        user: &crate::domain::SlackUserId,
    ) -> Result<(), PolicyViolation> {
        self.admit_from(workspace, app)?;
        if let Some(users) = &self.users
            && !users.contains(user)
        {
            return Err(PolicyViolation::UserNotAllowed(user.clone()));
        }
        Ok(())
    }

    /// Decides a click by the allow lists alone (no rules); on success, the
    /// duration to grant.
    pub fn authorise(&self, click: &BreakGlassClick) -> Result<AccessDuration, PolicyViolation> {
        self.admit(click)?;
        let duration = click.duration.unwrap_or(self.default_duration);
        if duration > self.max_duration {
            return Err(PolicyViolation::DurationTooLong {
                requested: duration,
                max: self.max_duration,
            });
        }
        Ok(duration)
    }

    /// Every check that does not need to know who the clicker is in
    /// Identity Center: our workspace and app, the allow lists that are set,
    /// the instance, and the longest duration anyone may have. The rules
    /// decide the rest.
    pub fn admit(&self, click: &BreakGlassClick) -> Result<(), PolicyViolation> {
        self.admit_from(&click.workspace, click.api_app_id.as_ref())?;
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
        if let Some(accounts) = &self.accounts
            && !accounts.contains(&click.account_id)
        {
            return Err(PolicyViolation::AccountNotAllowed(click.account_id.clone()));
        }
        if let Some(sets) = &self.permission_sets
            && !sets.contains(arn)
        {
            return Err(PolicyViolation::PermissionSetNotAllowed(arn.clone()));
        }
        if let Some(requested) = click.duration
            && requested > self.max_duration
        {
            return Err(PolicyViolation::DurationTooLong {
                requested,
                max: self.max_duration,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::payload::PayloadShape;

    fn policy() -> Policy {
        Policy {
            instance: "arn:aws:sso:::instance/ssoins-12345".parse().unwrap(),
            accounts: Some(["123456789012".parse().unwrap()].into()),
            permission_sets: Some(
                ["arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"
                    .parse()
                    .unwrap()]
                .into(),
            ),
            workspaces: workspaces(),
            app: None,
            users: None,
            default_duration: AccessDuration::from_minutes(60).unwrap(),
            max_duration: AccessDuration::from_minutes(240).unwrap(),
        }
    }

    fn workspaces() -> SlackWorkspaces {
        SlackWorkspaces {
            teams: ["T1".parse().unwrap(), "T2".parse().unwrap()].into(),
            enterprises: ["E1".parse().unwrap()].into(),
        }
    }

    fn ids(teams: &[&str], enterprises: &[&str]) -> WorkspaceIds {
        WorkspaceIds {
            teams: teams.iter().map(|t| t.parse().unwrap()).collect(),
            enterprises: enterprises.iter().map(|e| e.parse().unwrap()).collect(),
        }
    }

    fn click() -> BreakGlassClick {
        BreakGlassClick {
            team_id: "T1".parse().unwrap(),
            workspace: ids(&["T1"], &[]),
            api_app_id: Some("A1".parse().unwrap()),
            user_id: "U1".parse().unwrap(),
            user_name: "alice".into(),
            channel_id: "C1".parse().unwrap(),
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
            trigger_id: None,
            reason: None,
            incident: None,
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

    #[test]
    fn with_rules_the_lists_are_an_optional_fence() {
        // Rules decide who and what; lists left unset fence nothing, lists
        // set still refuse what they do not name.
        let mut p = policy();
        p.accounts = None;
        p.permission_sets = None;
        let mut c = click();
        c.account_id = "999999999999".parse().unwrap();
        assert_eq!(p.admit(&c), Ok(()));
        p.accounts = policy().accounts;
        assert!(matches!(p.admit(&c), Err(PolicyViolation::AccountNotAllowed(_))));
        // The longest anyone may have still holds for an explicit duration.
        let mut c = click();
        c.duration = Some(AccessDuration::from_minutes(241).unwrap());
        assert!(matches!(
            p.admit(&c),
            Err(PolicyViolation::DurationTooLong { .. })
        ));
    }

    #[test]
    fn a_click_is_ours_only_when_every_workspace_id_it_carries_is() {
        let refused = |teams: &[&str], orgs: &[&str]| {
            let mut c = click();
            c.workspace = ids(teams, orgs);
            policy().authorise(&c).err().map(|e| e.to_string())
        };
        assert_eq!(refused(&["T1"], &[]), None);
        assert_eq!(refused(&["T1", "T2"], &["E1"]), None);
        // Another team, or our team clicked by a member of another one
        // (Slack Connect: team.id is ours, user.team_id is theirs).
        assert_eq!(
            refused(&["T9"], &[]).as_deref(),
            Some("this click did not come from our Slack: Slack workspace T9 is not ours")
        );
        assert_eq!(
            refused(&["T1", "T9"], &[]).as_deref(),
            Some("this click did not come from our Slack: Slack workspace T9 is not ours")
        );
        // An Enterprise Grid organisation that is not ours, even in our team.
        assert_eq!(
            refused(&["T1"], &["E9"]).as_deref(),
            Some("this click did not come from our Slack: Slack organisation E9 is not ours")
        );
        assert_eq!(
            refused(&[], &[]).as_deref(),
            Some("this click did not come from our Slack: no Slack workspace is named")
        );
        // Outside Grid, no organisation is ours: any that shows up is foreign.
        let mut p = policy();
        p.workspaces.enterprises.clear();
        let mut c = click();
        c.workspace = ids(&["T1"], &["E1"]);
        assert!(matches!(
            p.authorise(&c),
            Err(PolicyViolation::ForeignWorkspace(ForeignWorkspace::Enterprise(_)))
        ));
    }

    #[test]
    fn the_app_is_checked_when_configured() {
        let mut p = policy();
        p.app = Some("A1".parse().unwrap());
        assert!(p.authorise(&click()).is_ok());
        let mut c = click();
        c.api_app_id = Some("A2".parse().unwrap());
        assert_eq!(p.authorise(&c), Err(PolicyViolation::WrongApp));
        c.api_app_id = None;
        assert_eq!(p.authorise(&c), Err(PolicyViolation::WrongApp));
        // Unset: not checked.
        assert!(policy().authorise(&c).is_ok());
    }

    #[test]
    fn the_workspace_is_checked_before_anything_else() {
        let mut p = policy();
        p.users = Some(["U2".parse().unwrap()].into());
        let mut c = click();
        c.workspace = ids(&["T9"], &[]);
        c.account_id = "999999999999".parse().unwrap();
        assert!(matches!(
            p.authorise(&c),
            Err(PolicyViolation::ForeignWorkspace(_))
        ));
    }

    fn member() -> SlackProfile {
        SlackProfile {
            email: Some("alice@example.com".into()),
            team_id: Some("T1".into()),
            ..SlackProfile::default()
        }
    }

    #[test]
    fn full_members_of_our_workspaces_pass_the_profile_check() {
        assert_eq!(check_profile(&member(), &workspaces()), Ok(()));
        let mut grid = member();
        grid.enterprise_id = Some("E1".into());
        assert_eq!(check_profile(&grid, &workspaces()), Ok(()));
    }

    #[test]
    fn guests_strangers_bots_and_the_deactivated_are_refused() {
        let w = workspaces();
        let with = |f: fn(&mut SlackProfile)| {
            let mut p = member();
            f(&mut p);
            check_profile(&p, &w)
        };
        assert_eq!(with(|p| p.is_restricted = true), Err(ProfileRefusal::Guest));
        assert_eq!(with(|p| p.is_ultra_restricted = true), Err(ProfileRefusal::Guest));
        assert_eq!(with(|p| p.is_stranger = true), Err(ProfileRefusal::Stranger));
        assert_eq!(with(|p| p.is_bot = true), Err(ProfileRefusal::Bot));
        assert_eq!(with(|p| p.deleted = true), Err(ProfileRefusal::Deleted));
        assert_eq!(with(|p| p.team_id = None), Err(ProfileRefusal::NoWorkspace));
        assert_eq!(
            with(|p| p.team_id = Some("t1; drop".into())),
            Err(ProfileRefusal::NoWorkspace)
        );
        assert_eq!(
            with(|p| p.team_id = Some("T9".into())),
            Err(ProfileRefusal::Foreign(ForeignWorkspace::Team(
                "T9".parse().unwrap()
            )))
        );
        assert_eq!(
            with(|p| p.enterprise_id = Some("E9".into())),
            Err(ProfileRefusal::Foreign(ForeignWorkspace::Enterprise(
                "E9".parse().unwrap()
            )))
        );
        assert_eq!(
            with(|p| p.is_restricted = true).unwrap_err().to_string(),
            "guests of our Slack workspace may not break glass"
        );
    }
}
