//! Grant then revoke, with the real handlers, the real SDK against moto
//! (sso-admin, identitystore, and DynamoDB for the grant ledger) and Slack
//! over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::access::IdentityLookup;
use break_glass_core::clock::{Clock, ManualClock};
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_core::contract::{AccessRequest, Execution, Requester, SlackThread};
use break_glass_core::domain::AccessDuration;
use break_glass_core::ledger::{Claim, GrantPlan, ItemState, LedgerItem, LedgerKey, Origin, plan_grant};
use break_glass_core::ports::{Ledger, Written};
use break_glass_testkit::moto::{self, IdentityCenterFixture};
use break_glass_testkit::slack::SlackStandIn;
use serde_json::Value;

const ACCOUNT: &str = "123456789012";
const TOKEN: &str = "xoxb-lifecycle";

struct World {
    sdk: aws_config::SdkConfig,
    fx: IdentityCenterFixture,
    slack: SlackStandIn,
    slack_api: SlackWebApi,
    sso: SsoAdmin,
    directory: IdentityStore,
    ledger: DynamoLedger,
    clock: ManualClock,
    grant_config: grant_access::Config,
    revoke_config: revoke_access::Config,
}

impl World {
    async fn new() -> Self {
        Self::with_lookup(IdentityLookup::Email).await
    }

    async fn with_lookup(lookup: IdentityLookup) -> Self {
        let sdk = moto::sdk().await;
        let fx = moto::identity_center(&sdk, "BreakGlassAdmin", "PT2H").await;
        let slack = SlackStandIn::start(TOKEN).await;
        let settings = SlackSettings {
            bot_token: SecretSource::Plain(TOKEN.into()),
            api_url: slack.api_url(),
        };
        let instance = fx.instance_arn.parse().unwrap();
        let table = moto::unique("ledger");
        moto::create_ledger_table(&sdk, &table).await.unwrap();
        Self {
            sso: SsoAdmin::from_sdk(&sdk, fx.instance_arn.parse().unwrap()),
            directory: IdentityStore::from_sdk(&sdk, &fx.identity_store_id),
            ledger: DynamoLedger::from_sdk(&sdk, &table),
            slack_api: SlackWebApi::new(slack.api_url(), Some(BotToken::new(TOKEN))),
            grant_config: grant_access::Config {
                instance: fx.instance_arn.parse().unwrap(),
                sso_region: None,
                identity_store_id: fx.identity_store_id.clone(),
                ledger_table: table.clone(),
                lookup,
                workspaces: break_glass_testkit::fixtures::workspaces().clone(),
                slack: settings.clone(),
                policy: None,
            },
            revoke_config: revoke_access::Config {
                instance,
                sso_region: None,
                ledger_table: table,
                slack: Some(settings),
                cloudtrail_delay: Duration::from_secs(15 * 60),
                end_sessions: revoke_access::EndSessions::NotConfigured,
            },
            clock: ManualClock::new("2026-11-30T09:00:00Z".parse().unwrap()),
            sdk,
            fx,
            slack,
        }
    }

    /// A Slack user with an e-mail, and the matching Identity Center user.
    async fn person(&self, slack_id: &str, name: &str) -> String {
        let email = format!("{name}@example.com");
        self.slack.add_user(slack_id, Some(&email));
        moto::create_user(&self.sdk, &self.fx.identity_store_id, &email, &email).await
    }

    fn request(&self, slack_id: &str, message_ts: &str, minutes: u64) -> Execution {
        let request = AccessRequest {
            requester: Requester {
                slack_user_id: slack_id.parse().unwrap(),
                slack_user_name: slack_id.to_lowercase(),
                slack_team_id: "T0001".into(),
            },
            slack: SlackThread {
                channel_id: "C0INCIDENT".into(),
                message_ts: message_ts.into(),
                thread_ts: message_ts.into(),
                response_url: self.slack.response_url("1"),
            },
            account_id: ACCOUNT.parse().unwrap(),
            permission_set_arn: self.fx.permission_set_arn.parse().unwrap(),
            duration_seconds: AccessDuration::from_minutes(minutes).unwrap(),
            requested_at: self.clock.now(),
            reason: None,
            incident: None,
        };
        Execution::new(request.execution_name(1), request)
    }

    async fn grant(&self, execution: &Execution) -> Result<Value, grant_access::GrantError> {
        let deps = grant_access::Deps {
            config: &self.grant_config,
            identity_center: &self.sso,
            directory: &self.directory,
            ledger: &self.ledger,
            slack: &self.slack_api,
            clock: &self.clock,
            rules: &break_glass_core::requester::NO_RULES,
        };
        grant_access::handle(serde_json::to_value(execution).unwrap(), &deps).await
    }

    async fn revoke(&self, granted: &Value) -> Result<Value, revoke_access::RevokeError> {
        let deps = revoke_access::Deps {
            config: &self.revoke_config,
            identity_center: &self.sso,
            ledger: &self.ledger,
            slack: &self.slack_api,
            clock: &self.clock,
            session_policy: None,
        };
        revoke_access::handle(granted.clone(), &deps).await
    }

    async fn assigned(&self) -> Vec<String> {
        moto::assigned_users(&self.sdk, &self.fx, ACCOUNT).await
    }

    /// The ledger item of `user`'s assignment, read as grant and revoke do.
    async fn item(&self, user: &str) -> Option<LedgerItem> {
        self.ledger.get(&self.key(user)).await.unwrap()
    }

    fn key(&self, user: &str) -> LedgerKey {
        LedgerKey {
            user_id: user.into(),
            account_id: ACCOUNT.parse().unwrap(),
            permission_set_arn: self.fx.permission_set_arn.parse().unwrap(),
        }
    }

    fn thread(&self) -> Vec<String> {
        self.slack.posts().into_iter().map(|p| p.text).collect()
    }
}

#[tokio::test]
async fn grant_then_revoke_leaves_nothing_and_tells_the_thread() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let execution = world.request("U0001", "1700000000.000100", 60);

    let granted = world.grant(&execution).await.unwrap();
    assert_eq!(world.assigned().await, vec![user.clone()]);
    assert_eq!(granted["grant"]["user_id"], user.as_str());
    assert_eq!(granted["grant"]["user_name"], "alice@example.com");
    assert_eq!(granted["grant"]["permission_set_name"], "BreakGlassAdmin");
    assert_eq!(granted["grant"]["session_duration_seconds"], 7200);
    assert_eq!(granted["grant"]["granted_at"], "2026-11-30T09:00:00Z");
    assert_eq!(granted["grant"]["expires_at"], "2026-11-30T10:00:00Z");
    assert_eq!(granted["grant"]["pre_existing"], false);
    assert_eq!(
        granted["request"],
        serde_json::to_value(&execution).unwrap()["request"],
        "input flows through"
    );

    world.clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    let revoked = world.revoke(&granted).await.unwrap();
    assert!(world.assigned().await.is_empty());
    assert_eq!(revoked["revoke"]["outcome"]["action"], "deleted");
    assert_eq!(revoked["revoke"]["verified"], true);
    assert_eq!(revoked["revoke"]["sessions_valid_until"], "2026-11-30T12:00:00Z");
    assert_eq!(revoked["revoke"]["report_at"], "2026-11-30T12:15:00Z");
    assert_eq!(revoked["grant"], granted["grant"]);

    let posts = world.slack.posts();
    assert_eq!(posts.len(), 2);
    assert!(
        posts
            .iter()
            .all(|p| p.channel == "C0INCIDENT" && p.thread_ts.as_deref() == Some("1700000000.000100"))
    );
    assert_eq!(
        posts[0].text,
        ":unlock: <@U0001> has BreakGlassAdmin in 123456789012 until 10:00 UTC."
    );
    assert!(
        posts[1]
            .text
            .starts_with(":lock: Access removed: <@U0001> no longer has BreakGlassAdmin in 123456789012."),
        "{}",
        posts[1].text
    );
    assert!(
        posts[1].text.contains("valid until 12:00 UTC"),
        "{}",
        posts[1].text
    );
}

#[tokio::test]
async fn access_the_user_already_had_survives_the_revoke() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    moto::assign(&world.sdk, &world.fx, ACCOUNT, &user).await;

    let granted = world.grant(&world.request("U0001", "1.1", 60)).await.unwrap();
    assert_eq!(granted["grant"]["pre_existing"], true);
    assert_eq!(granted["grant"]["assignment"], "pre_existing");
    assert_eq!(
        world.assigned().await,
        vec![user.clone()],
        "nothing created twice"
    );

    let revoked = world.revoke(&granted).await.unwrap();
    assert_eq!(revoked["revoke"]["outcome"]["action"], "left_pre_existing");
    assert_eq!(revoked["revoke"]["verified"], true);
    assert_eq!(world.assigned().await, vec![user]);
    assert!(
        world.thread()[0].contains("They already had this access"),
        "{:?}",
        world.thread()
    );
    assert!(
        world.thread()[1].contains("it was left in place"),
        "{:?}",
        world.thread()
    );
}

#[tokio::test]
async fn overlapping_grants_end_with_the_later_ones_revoke() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;

    // A: 60 minutes from 09:00. B: clicked at 09:30 on another message, 60 minutes.
    let a = world.request("U0001", "1.1", 60);
    let a_granted = world.grant(&a).await.unwrap();
    assert_eq!(a_granted["grant"]["assignment"], "created");

    world.clock.set("2026-11-30T09:30:00Z".parse().unwrap());
    let b = world.request("U0001", "2.2", 60);
    let b_granted = world.grant(&b).await.unwrap();
    assert_eq!(b_granted["grant"]["assignment"], "shared_with_running_execution");
    assert_eq!(b_granted["grant"]["pre_existing"], false);
    assert_eq!(world.assigned().await, vec![user.clone()]);

    // A's time is up while B still runs: access stays.
    world.clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    let a_revoked = world.revoke(&a_granted).await.unwrap();
    assert_eq!(a_revoked["revoke"]["outcome"]["action"], "left_for_later_grant");
    assert_eq!(
        a_revoked["revoke"]["outcome"]["execution_name"],
        b.execution_name.as_str()
    );
    assert_eq!(world.assigned().await, vec![user.clone()]);
    let item = world.item(&user).await.unwrap();
    assert_eq!(item.state, ItemState::Held);
    let holders: Vec<&str> = item.holders.iter().map(|h| h.execution_name.as_str()).collect();
    assert_eq!(holders, [b.execution_name.as_str()], "A left, B holds");

    // B's revoke removes it.
    world.clock.set("2026-11-30T10:30:00Z".parse().unwrap());
    let b_revoked = world.revoke(&b_granted).await.unwrap();
    assert_eq!(b_revoked["revoke"]["outcome"]["action"], "deleted");
    assert!(world.assigned().await.is_empty());
    assert_eq!(world.item(&user).await.unwrap().state, ItemState::Closed);
}

#[tokio::test]
async fn a_grant_waits_for_another_execution_that_is_still_granting() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    // Another execution has created the assignment but not finished its
    // step: the ledger shows it `granting` under A's lease.
    let a = world.request("U0001", "1.1", 60);
    let claim = Claim {
        key: world.key(&user),
        execution_name: a.execution_name.clone(),
        slack_user_id: "U0001".into(),
        user_name: "alice@example.com".into(),
        expires_at: world.clock.now() + chrono::Duration::minutes(60),
        reason: None,
        thread: None,
        incident: None,
        requested_at: None,
        latest_end: None,
    };
    let GrantPlan::Write { item, expected, .. } = plan_grant(None, Some(false), &claim, world.clock.now())
    else {
        panic!("a first grant writes");
    };
    assert_eq!(item.state, ItemState::Granting);
    assert_eq!(world.ledger.put(&item, expected).await.unwrap(), Written::Done);
    moto::assign(&world.sdk, &world.fx, ACCOUNT, &user).await;

    let b = world.request("U0001", "2.2", 60);
    let err = world.grant(&b).await.unwrap_err();
    assert_eq!(
        break_glass_core::ErrorType::error_type(&err),
        "GrantInProgressElsewhere"
    );
    assert!(world.slack.posts().is_empty(), "a retryable wait is not news");
}

#[tokio::test]
async fn standing_access_is_never_removed_even_through_overlapping_grants() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    moto::assign(&world.sdk, &world.fx, ACCOUNT, &user).await;

    let a = world.request("U0001", "1.1", 60);
    let a_granted = world.grant(&a).await.unwrap();
    let b = world.request("U0001", "2.2", 30);
    let b_granted = world.grant(&b).await.unwrap();
    assert_eq!(b_granted["grant"]["pre_existing"], true, "inherits A's knowledge");

    world.clock.advance(Duration::from_secs(3600));
    world.revoke(&a_granted).await.unwrap();
    world.revoke(&b_granted).await.unwrap();
    assert_eq!(world.assigned().await, vec![user]);
}

#[tokio::test]
async fn an_unknown_user_gets_nothing_and_is_told_why() {
    let world = World::new().await;
    world.slack.add_user("U0NOMAIL", None);
    world.slack.add_user("U0STRANGER", Some("stranger@example.com"));

    for (user, why) in [
        (
            "U0NOMAIL",
            "your Slack profile has no e-mail address, so no Identity Center user can be matched",
        ),
        (
            "U0STRANGER",
            "no Identity Center user matches stranger@example.com",
        ),
        (
            "U0GHOST",
            "your Slack profile has no e-mail address, so no Identity Center user can be matched",
        ),
    ] {
        let err = world.grant(&world.request(user, "1.1", 60)).await.unwrap_err();
        assert_eq!(break_glass_core::ErrorType::error_type(&err), "IdentityNotFound");
        let last = world.thread().pop().unwrap();
        assert_eq!(
            last,
            format!("<@{user}> :x: Break glass failed: {why}. Nothing was granted.")
        );
    }
    assert!(world.assigned().await.is_empty());
}

#[tokio::test]
async fn username_lookup_matches_the_user_name_only() {
    let world = World::with_lookup(IdentityLookup::UserName).await;
    world.slack.add_user("U0001", Some("alice@example.com"));
    // userName differs from the e-mail: email lookup would find her, username must not.
    moto::create_user(
        &world.sdk,
        &world.fx.identity_store_id,
        "alice",
        "alice@example.com",
    )
    .await;
    let err = world.grant(&world.request("U0001", "1.1", 60)).await.unwrap_err();
    assert_eq!(break_glass_core::ErrorType::error_type(&err), "IdentityNotFound");

    let bob = world.person("U0002", "bob").await;
    world.grant(&world.request("U0002", "1.1", 60)).await.unwrap();
    assert_eq!(world.assigned().await, vec![bob]);
}

#[tokio::test]
async fn revoking_twice_is_fine() {
    let world = World::new().await;
    world.person("U0001", "alice").await;
    let granted = world.grant(&world.request("U0001", "1.1", 60)).await.unwrap();
    world.revoke(&granted).await.unwrap();
    let again = world.revoke(&granted).await.unwrap();
    assert_eq!(again["revoke"]["outcome"]["action"], "already_gone");
    assert_eq!(again["revoke"]["verified"], true);
    assert!(world.assigned().await.is_empty());
}

#[tokio::test]
async fn slack_being_down_never_fails_a_grant_or_a_revoke() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    world.slack.fail_posts_with(Some("channel_not_found"));
    let granted = world.grant(&world.request("U0001", "1.1", 60)).await.unwrap();
    assert_eq!(world.assigned().await, vec![user]);
    world.revoke(&granted).await.unwrap();
    assert!(world.assigned().await.is_empty());
    assert!(world.slack.posts().is_empty());
}

#[tokio::test]
async fn the_ledger_records_the_hold_and_closes_it_after_a_verified_removal() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let execution = world.request("U0001", "1.1", 60);
    assert_eq!(world.item(&user).await, None);

    let granted = world.grant(&execution).await.unwrap();
    let held = world.item(&user).await.unwrap();
    assert_eq!(held.state, ItemState::Held);
    assert_eq!(held.origin, Origin::BreakGlass);
    assert_eq!(held.operator, None);
    assert_eq!(held.user_name, "alice@example.com");
    let holders: Vec<&str> = held.holders.iter().map(|h| h.execution_name.as_str()).collect();
    assert_eq!(holders, [execution.execution_name.as_str()]);
    assert_eq!(
        held.holders[0].expires_at,
        "2026-11-30T10:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(
        world.ledger.open_items().await.unwrap(),
        vec![held.clone()],
        "an open hold is what the reconciler sees"
    );

    world.clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    world.revoke(&granted).await.unwrap();
    let closed = world.item(&user).await.unwrap();
    assert_eq!(closed.state, ItemState::Closed);
    assert!(closed.holders.is_empty());
    assert!(closed.version > held.version);
    let ten: chrono::DateTime<chrono::Utc> = "2026-11-30T10:00:00Z".parse().unwrap();
    assert!(
        closed.closed_at.is_some_and(|t| t >= ten),
        "{:?}",
        closed.closed_at
    );
    assert!(world.ledger.open_items().await.unwrap().is_empty());
}
