//! Grant then revoke, with the real handlers, the real SDK against moto
//! (sso-admin, identitystore, stepfunctions) and Slack over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::executions::StepFunctions;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::access::IdentityLookup;
use break_glass_core::clock::{Clock, ManualClock};
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_core::contract::{AccessRequest, Execution, Requester, SlackThread};
use break_glass_core::domain::AccessDuration;
use break_glass_core::ports::Executions;
use break_glass_testkit::executions::InMemoryExecutions;
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
        Self {
            sso: SsoAdmin::from_sdk(&sdk, fx.instance_arn.parse().unwrap()),
            directory: IdentityStore::from_sdk(&sdk, &fx.identity_store_id),
            slack_api: SlackWebApi::new(slack.api_url(), Some(BotToken::new(TOKEN))),
            grant_config: grant_access::Config {
                instance: fx.instance_arn.parse().unwrap(),
                identity_store_id: fx.identity_store_id.clone(),
                state_machine_arn: "unused".into(),
                lookup,
                slack: settings.clone(),
            },
            revoke_config: revoke_access::Config {
                instance,
                state_machine_arn: "unused".into(),
                slack: settings,
                cloudtrail_delay: Duration::from_secs(15 * 60),
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
        };
        Execution::new(request.execution_name(1), request)
    }

    async fn grant(
        &self,
        execution: &Execution,
        executions: &dyn Executions,
    ) -> Result<Value, grant_access::GrantError> {
        let deps = grant_access::Deps {
            config: &self.grant_config,
            identity_center: &self.sso,
            directory: &self.directory,
            executions,
            slack: &self.slack_api,
            clock: &self.clock,
        };
        grant_access::handle(serde_json::to_value(execution).unwrap(), &deps).await
    }

    async fn revoke(
        &self,
        granted: &Value,
        executions: &dyn Executions,
    ) -> Result<Value, revoke_access::RevokeError> {
        let deps = revoke_access::Deps {
            config: &self.revoke_config,
            identity_center: &self.sso,
            executions,
            slack: &self.slack_api,
            clock: &self.clock,
        };
        revoke_access::handle(granted.clone(), &deps).await
    }

    async fn assigned(&self) -> Vec<String> {
        moto::assigned_users(&self.sdk, &self.fx, ACCOUNT).await
    }

    async fn no_executions(&self) -> StepFunctions {
        let arn = moto::state_machine(&self.sdk, &moto::unique("lifecycle")).await;
        StepFunctions::from_sdk(&self.sdk, arn)
    }

    fn thread(&self) -> Vec<String> {
        self.slack.posts().into_iter().map(|p| p.text).collect()
    }
}

#[tokio::test]
async fn grant_then_revoke_leaves_nothing_and_tells_the_thread() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let executions = world.no_executions().await;
    let execution = world.request("U0001", "1700000000.000100", 60);

    let granted = world.grant(&execution, &executions).await.unwrap();
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
    let revoked = world.revoke(&granted, &executions).await.unwrap();
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
    let executions = world.no_executions().await;

    let granted = world
        .grant(&world.request("U0001", "1.1", 60), &executions)
        .await
        .unwrap();
    assert_eq!(granted["grant"]["pre_existing"], true);
    assert_eq!(granted["grant"]["assignment"], "pre_existing");
    assert_eq!(
        world.assigned().await,
        vec![user.clone()],
        "nothing created twice"
    );

    let revoked = world.revoke(&granted, &executions).await.unwrap();
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
    let executions = InMemoryExecutions::default();

    // A: 60 minutes from 09:00. B: clicked at 09:30 on another message, 60 minutes.
    let a = world.request("U0001", "1.1", 60);
    executions.started(&a);
    let a_granted = world.grant(&a, &executions).await.unwrap();
    executions.granted(&a_granted);
    assert_eq!(a_granted["grant"]["assignment"], "created");

    world.clock.set("2026-11-30T09:30:00Z".parse().unwrap());
    let b = world.request("U0001", "2.2", 60);
    executions.started(&b);
    let b_granted = world.grant(&b, &executions).await.unwrap();
    executions.granted(&b_granted);
    assert_eq!(b_granted["grant"]["assignment"], "shared_with_running_execution");
    assert_eq!(b_granted["grant"]["pre_existing"], false);
    assert_eq!(world.assigned().await, vec![user.clone()]);

    // A's time is up while B still runs: access stays.
    world.clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    let a_revoked = world.revoke(&a_granted, &executions).await.unwrap();
    executions.ended(&a.execution_name);
    assert_eq!(a_revoked["revoke"]["outcome"]["action"], "left_for_later_grant");
    assert_eq!(
        a_revoked["revoke"]["outcome"]["execution_name"],
        b.execution_name.as_str()
    );
    assert_eq!(world.assigned().await, vec![user]);

    // B's revoke removes it.
    world.clock.set("2026-11-30T10:30:00Z".parse().unwrap());
    let b_revoked = world.revoke(&b_granted, &executions).await.unwrap();
    assert_eq!(b_revoked["revoke"]["outcome"]["action"], "deleted");
    assert!(world.assigned().await.is_empty());
}

#[tokio::test]
async fn a_grant_waits_for_another_execution_that_is_still_granting() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let executions = InMemoryExecutions::default();
    // Another execution has created the assignment but not finished its step.
    let a = world.request("U0001", "1.1", 60);
    executions.started(&a);
    moto::assign(&world.sdk, &world.fx, ACCOUNT, &user).await;

    let b = world.request("U0001", "2.2", 60);
    executions.started(&b);
    let err = world.grant(&b, &executions).await.unwrap_err();
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
    let executions = InMemoryExecutions::default();

    let a = world.request("U0001", "1.1", 60);
    executions.started(&a);
    let a_granted = world.grant(&a, &executions).await.unwrap();
    executions.granted(&a_granted);
    let b = world.request("U0001", "2.2", 30);
    executions.started(&b);
    let b_granted = world.grant(&b, &executions).await.unwrap();
    assert_eq!(b_granted["grant"]["pre_existing"], true, "inherits A's knowledge");

    world.clock.advance(Duration::from_secs(3600));
    executions.ended(&a.execution_name);
    world.revoke(&a_granted, &executions).await.unwrap();
    world.revoke(&b_granted, &executions).await.unwrap();
    assert_eq!(world.assigned().await, vec![user]);
}

#[tokio::test]
async fn an_unknown_user_gets_nothing_and_is_told_why() {
    let world = World::new().await;
    let executions = world.no_executions().await;
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
        let err = world
            .grant(&world.request(user, "1.1", 60), &executions)
            .await
            .unwrap_err();
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
    let executions = world.no_executions().await;
    let err = world
        .grant(&world.request("U0001", "1.1", 60), &executions)
        .await
        .unwrap_err();
    assert_eq!(break_glass_core::ErrorType::error_type(&err), "IdentityNotFound");

    let bob = world.person("U0002", "bob").await;
    world
        .grant(&world.request("U0002", "1.1", 60), &executions)
        .await
        .unwrap();
    assert_eq!(world.assigned().await, vec![bob]);
}

#[tokio::test]
async fn revoking_twice_is_fine() {
    let world = World::new().await;
    world.person("U0001", "alice").await;
    let executions = world.no_executions().await;
    let granted = world
        .grant(&world.request("U0001", "1.1", 60), &executions)
        .await
        .unwrap();
    world.revoke(&granted, &executions).await.unwrap();
    let again = world.revoke(&granted, &executions).await.unwrap();
    assert_eq!(again["revoke"]["outcome"]["action"], "already_gone");
    assert_eq!(again["revoke"]["verified"], true);
    assert!(world.assigned().await.is_empty());
}

#[tokio::test]
async fn slack_being_down_never_fails_a_grant_or_a_revoke() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let executions = world.no_executions().await;
    world.slack.fail_posts_with(Some("channel_not_found"));
    let granted = world
        .grant(&world.request("U0001", "1.1", 60), &executions)
        .await
        .unwrap();
    assert_eq!(world.assigned().await, vec![user]);
    world.revoke(&granted, &executions).await.unwrap();
    assert!(world.assigned().await.is_empty());
    assert!(world.slack.posts().is_empty());
}

#[tokio::test]
async fn step_functions_on_moto_lists_no_holders_for_a_lone_execution() {
    // The real adapter against moto: our own running execution is not a holder.
    let world = World::new().await;
    world.person("U0001", "alice").await;
    let sm = moto::state_machine(&world.sdk, &moto::unique("self")).await;
    let executions = StepFunctions::from_sdk(&world.sdk, &sm);
    let execution = world.request("U0001", "1.1", 60);
    executions
        .start(
            &execution.execution_name,
            &serde_json::to_string(&execution).unwrap(),
        )
        .await
        .unwrap();
    let granted = world.grant(&execution, &executions).await.unwrap();
    assert_eq!(granted["grant"]["assignment"], "created");
    let revoked = world.revoke(&granted, &executions).await.unwrap();
    assert_eq!(revoked["revoke"]["outcome"]["action"], "deleted");
}
