//! Only full members of our Slack workspaces break glass: grant-access reads
//! the clicker's account (`users.info`, on the Slack stand-in) and turns
//! away guests, Slack Connect strangers, bots, deactivated accounts and
//! members of other workspaces, with `RequesterNotAllowed` and a word in the
//! thread, before Identity Center or the Identity Store hear of them.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::ErrorType;
use break_glass_core::clock::{Clock, ManualClock};
use break_glass_core::domain::{AccountId, PermissionSetArn};
use break_glass_core::ports::{
    Directory, DirectoryUser, IdentityCenter, LookupAttribute, PermissionSetInfo, PortError, PortErrorKind,
    Provisioning,
};
use break_glass_testkit::fixtures;
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::slack::{Account, SlackStandIn};

const SET: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
const TOKEN: &str = "xoxb-requester";

/// Counts every call and refuses it: nothing should get this far.
#[derive(Debug, Default)]
struct Untouched(AtomicUsize);

impl Untouched {
    fn refuse(&self) -> PortError {
        self.0.fetch_add(1, Ordering::SeqCst);
        PortError::new(
            PortErrorKind::AccessDenied,
            "test",
            "untouched",
            "must not be called",
        )
    }
}

#[async_trait]
impl IdentityCenter for Untouched {
    async fn assigned_users(&self, _: &AccountId, _: &PermissionSetArn) -> Result<Vec<String>, PortError> {
        Err(self.refuse())
    }
    async fn create_assignment(
        &self,
        _: &AccountId,
        _: &PermissionSetArn,
        _: &str,
    ) -> Result<Provisioning, PortError> {
        Err(self.refuse())
    }
    async fn creation_status(&self, _: &str) -> Result<Provisioning, PortError> {
        Err(self.refuse())
    }
    async fn delete_assignment(
        &self,
        _: &AccountId,
        _: &PermissionSetArn,
        _: &str,
    ) -> Result<Provisioning, PortError> {
        Err(self.refuse())
    }
    async fn deletion_status(&self, _: &str) -> Result<Provisioning, PortError> {
        Err(self.refuse())
    }
    async fn permission_set(&self, _: &PermissionSetArn) -> Result<PermissionSetInfo, PortError> {
        Err(self.refuse())
    }
}

#[async_trait]
impl Directory for Untouched {
    async fn find_user(&self, _: LookupAttribute, _: &str) -> Result<Option<DirectoryUser>, PortError> {
        Err(self.refuse())
    }
}

fn config(slack: &SlackStandIn) -> grant_access::Config {
    let env: std::collections::HashMap<String, String> = [
        (
            "SSO_INSTANCE_ARN",
            "arn:aws:sso:::instance/ssoins-12345".to_string(),
        ),
        ("IDENTITY_STORE_ID", "d-1234567890".into()),
        ("GRANT_LEDGER_TABLE", "unused".into()),
        ("SLACK_BOT_TOKEN", TOKEN.into()),
        ("SLACK_API_URL", slack.api_url()),
        ("ALLOWED_SLACK_TEAM_IDS", "T0001".into()),
        ("ALLOWED_SLACK_ENTERPRISE_IDS", "E0001".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    grant_access::Config::from_env(&move |k: &str| env.get(k).cloned()).unwrap()
}

#[tokio::test]
async fn anyone_but_a_full_member_of_our_workspaces_is_refused_and_told() {
    let slack = SlackStandIn::start(TOKEN).await;
    let config = config(&slack);
    let slack_api = SlackWebApi::new(slack.api_url(), Some(BotToken::new(TOKEN)));
    let member = || Account::member(Some("someone@example.com"));
    let accounts = [
        (
            "U0GUEST",
            Account {
                is_restricted: true,
                ..member()
            },
            "guests of our Slack workspace may not break glass",
        ),
        (
            "U0SINGLE",
            Account {
                is_ultra_restricted: true,
                ..member()
            },
            "guests of our Slack workspace may not break glass",
        ),
        (
            "U0STRANGER",
            Account {
                is_stranger: true,
                team_id: "T0PARTNER".into(),
                ..member()
            },
            "you are not a member of our Slack workspace (you reach it through a shared channel)",
        ),
        (
            "U0BOT",
            Account {
                is_bot: true,
                ..member()
            },
            "bots and apps may not break glass",
        ),
        (
            "U0GONE",
            Account {
                deleted: true,
                ..member()
            },
            "your Slack account is deactivated",
        ),
        (
            "U0PARTNER",
            Account {
                team_id: "T0PARTNER".into(),
                ..member()
            },
            "your Slack account is not ours: Slack workspace T0PARTNER is not ours",
        ),
        (
            "W0OTHERORG",
            Account {
                enterprise_id: Some("E0PARTNER".into()),
                ..member()
            },
            "your Slack account is not ours: Slack organisation E0PARTNER is not ours",
        ),
    ];
    for (id, account, why) in accounts {
        slack.add_account(id, account);
        let untouched = Untouched::default();
        let ledger = InMemoryLedger::default();
        let clock = ManualClock::new("2026-11-30T09:00:00Z".parse().unwrap());
        let deps = grant_access::Deps {
            config: &config,
            identity_center: &untouched,
            directory: &untouched,
            ledger: &ledger,
            slack: &slack_api,
            clock: &clock,
            rules: &break_glass_core::requester::NO_RULES,
        };
        let execution =
            fixtures::execution(fixtures::request(id, SET, &slack.response_url("1"), clock.now()));
        let err = grant_access::handle(serde_json::to_value(&execution).unwrap(), &deps)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "RequesterNotAllowed", "{id}: {err}");
        assert_eq!(
            lambda_runtime::Diagnostic::from(err).error_type,
            "RequesterNotAllowed"
        );
        assert_eq!(
            untouched.0.load(Ordering::SeqCst),
            0,
            "{id}: nothing else was asked"
        );
        let said = slack.posts().last().unwrap().text.clone();
        assert_eq!(
            said,
            format!("<@{id}> :no_entry: Break glass refused: {why}. Nothing was granted."),
        );
    }
}
