//! `resolve_identity` turns away whoever is not a full member of our Slack
//! workspaces before it looks anyone up in the Identity Store, over fakes:
//! no network, no clock but a manual one.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use async_trait::async_trait;
use break_glass_core::access::{IdentityError, IdentityLookup, IdentityRules, resolve_identity};
use break_glass_core::clock::ManualClock;
use break_glass_core::domain::SlackUserId;
use break_glass_core::policy::{ForeignWorkspace, ProfileRefusal, SlackWorkspaces};
use break_glass_core::ports::{
    Directory, DirectoryUser, LookupAttribute, PortError, PortErrorKind, Slack, SlackProfile,
};

#[derive(Debug)]
struct OneProfile(Result<SlackProfile, PortErrorKind>);

#[async_trait]
impl Slack for OneProfile {
    async fn user_profile(&self, _: &SlackUserId) -> Result<SlackProfile, PortError> {
        self.0
            .clone()
            .map_err(|kind| PortError::new(kind, "slack", "users.info", "fake"))
    }
    async fn post_message(&self, _: &str, _: Option<&str>, _: &str) -> Result<(), PortError> {
        Ok(())
    }
    async fn respond_ephemeral(&self, _: &str, _: &str) -> Result<(), PortError> {
        Ok(())
    }
}

/// Knows alice@example.com; remembers every lookup.
#[derive(Debug, Default)]
struct Store(Mutex<Vec<String>>);

#[async_trait]
impl Directory for Store {
    async fn find_user(&self, _: LookupAttribute, value: &str) -> Result<Option<DirectoryUser>, PortError> {
        self.0.lock().unwrap().push(value.to_string());
        Ok((value == "alice@example.com").then(|| DirectoryUser {
            user_id: "u-alice".into(),
            user_name: "alice@example.com".into(),
            display_name: None,
        }))
    }
}

fn workspaces() -> SlackWorkspaces {
    SlackWorkspaces {
        teams: ["T0001".parse().unwrap()].into(),
        enterprises: ["E0001".parse().unwrap()].into(),
    }
}

fn member() -> SlackProfile {
    SlackProfile {
        email: Some("alice@example.com".into()),
        team_id: Some("T0001".into()),
        ..SlackProfile::default()
    }
}

async fn resolve(
    profile: Result<SlackProfile, PortErrorKind>,
    store: &Store,
) -> Result<DirectoryUser, IdentityError> {
    let workspaces = workspaces();
    let rules = IdentityRules {
        lookup: IdentityLookup::Email,
        workspaces: &workspaces,
    };
    resolve_identity(
        &OneProfile(profile),
        store,
        rules,
        &"U0001".parse().unwrap(),
        &ManualClock::at_unix(1_800_000_000),
    )
    .await
}

#[tokio::test]
async fn a_full_member_is_found_by_e_mail() {
    let store = Store::default();
    assert_eq!(resolve(Ok(member()), &store).await.unwrap().user_id, "u-alice");
    let mut grid = member();
    grid.enterprise_id = Some("E0001".into());
    assert!(resolve(Ok(grid), &store).await.is_ok());
}

#[tokio::test]
async fn guests_strangers_bots_the_deactivated_and_other_workspaces_are_refused_before_any_lookup() {
    type Case = (fn(&mut SlackProfile), ProfileRefusal);
    let cases: [Case; 8] = [
        (|p| p.is_restricted = true, ProfileRefusal::Guest),
        (|p| p.is_ultra_restricted = true, ProfileRefusal::Guest),
        (|p| p.is_stranger = true, ProfileRefusal::Stranger),
        (|p| p.is_bot = true, ProfileRefusal::Bot),
        (|p| p.deleted = true, ProfileRefusal::Deleted),
        (|p| p.team_id = None, ProfileRefusal::NoWorkspace),
        (
            |p| p.team_id = Some("T0PARTNER".into()),
            ProfileRefusal::Foreign(ForeignWorkspace::Team("T0PARTNER".parse().unwrap())),
        ),
        (
            |p| p.enterprise_id = Some("E0PARTNER".into()),
            ProfileRefusal::Foreign(ForeignWorkspace::Enterprise("E0PARTNER".parse().unwrap())),
        ),
    ];
    for (change, refusal) in cases {
        let store = Store::default();
        let mut profile = member();
        change(&mut profile);
        assert_eq!(
            resolve(Ok(profile), &store).await.unwrap_err(),
            IdentityError::NotAllowed(refusal.clone()),
            "{refusal}"
        );
        assert!(
            store.0.lock().unwrap().is_empty(),
            "{refusal}: nobody was looked up"
        );
    }
}

#[tokio::test]
async fn the_other_identity_errors_are_unchanged() {
    let store = Store::default();
    let mut no_email = member();
    no_email.email = None;
    assert_eq!(
        resolve(Ok(no_email), &store).await.unwrap_err(),
        IdentityError::NoEmail
    );
    let mut stranger_email = member();
    stranger_email.email = Some("bob@example.com".into());
    assert_eq!(
        resolve(Ok(stranger_email), &store).await.unwrap_err(),
        IdentityError::NoMatch("bob@example.com".into())
    );
    assert_eq!(
        resolve(Err(PortErrorKind::NotFound), &store).await.unwrap_err(),
        IdentityError::NoEmail
    );
    assert!(matches!(
        resolve(Err(PortErrorKind::AccessDenied), &store).await,
        Err(IdentityError::Unavailable(_))
    ));
}
