//! reconcile-access against the real SDK and moto (sso-admin, identitystore,
//! DynamoDB for the grant ledger), Slack over HTTP, an in-memory state
//! machine whose executions' status the test decides, and a manual clock.
//!
//!   scripts/with-moto cargo test -p reconcile-access

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
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
use break_glass_core::ledger::{ItemState, Lease, LedgerItem, LedgerKey};
use break_glass_core::ports::{Alerts, IdentityCenter, Ledger, PortError, Written};
use break_glass_testkit::executions::InMemoryExecutions;
use break_glass_testkit::moto::{self, IdentityCenterFixture};
use break_glass_testkit::refusing::RefusingDeletes;
use break_glass_testkit::slack::SlackStandIn;
use reconcile_access::{Config, Deps, handle};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const TOKEN: &str = "xoxb-reconcile";
const ALERTS: &str = "C0ALERTS";
const SM: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:break-glass-access";

/// SNS, as the alerts it was asked to publish.
#[derive(Debug, Clone, Default)]
struct RecordedAlerts(Arc<Mutex<Vec<(String, String)>>>);

#[async_trait::async_trait]
impl Alerts for RecordedAlerts {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError> {
        self.0.lock().unwrap().push((subject.into(), message.into()));
        Ok(())
    }
}

impl RecordedAlerts {
    fn subjects(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(s, _)| s.clone()).collect()
    }
}

/// Identity Center that is unreachable for deletions.
struct World {
    sdk: aws_config::SdkConfig,
    fx: IdentityCenterFixture,
    slack: SlackStandIn,
    slack_api: SlackWebApi,
    sso: SsoAdmin,
    directory: IdentityStore,
    ledger: DynamoLedger,
    executions: InMemoryExecutions,
    alerts: RecordedAlerts,
    clock: ManualClock,
    grant_config: grant_access::Config,
    config: Config,
}

impl World {
    async fn new() -> Self {
        let sdk = moto::sdk().await;
        let fx = moto::identity_center(&sdk, "BreakGlassAdmin", "PT2H").await;
        let slack = SlackStandIn::start(TOKEN).await;
        let settings = SlackSettings {
            bot_token: SecretSource::Plain(TOKEN.into()),
            api_url: slack.api_url(),
        };
        let table = moto::unique("ledger");
        moto::create_ledger_table(&sdk, &table).await.unwrap();
        Self {
            sso: SsoAdmin::from_sdk(&sdk, fx.instance_arn.parse().unwrap()),
            directory: IdentityStore::from_sdk(&sdk, &fx.identity_store_id),
            ledger: DynamoLedger::from_sdk(&sdk, &table),
            slack_api: SlackWebApi::new(slack.api_url(), Some(BotToken::new(TOKEN))),
            executions: InMemoryExecutions::default(),
            alerts: RecordedAlerts::default(),
            grant_config: grant_access::Config {
                instance: fx.instance_arn.parse().unwrap(),
                sso_region: None,
                identity_store_id: fx.identity_store_id.clone(),
                ledger_table: table.clone(),
                lookup: IdentityLookup::Email,
                workspaces: break_glass_testkit::fixtures::workspaces().clone(),
                slack: settings.clone(),
                policy: None,
            },
            config: Config {
                instance: fx.instance_arn.parse().unwrap(),
                sso_region: None,
                ledger_table: table,
                state_machine_arn: SM.into(),
                accounts: [ACCOUNT.parse().unwrap()].into(),
                permission_sets: [fx.permission_set_arn.parse().unwrap()].into(),
                slack: settings,
                alert_slack_channel: Some(ALERTS.into()),
                alert_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:alerts".into()),
                min_age: Duration::from_secs(15 * 60),
                session_policy: None,
            },
            clock: ManualClock::new("2026-11-30T09:00:00Z".parse().unwrap()),
            sdk,
            fx,
            slack,
        }
    }

    async fn person(&self, slack_id: &str, name: &str) -> String {
        let email = format!("{name}@example.com");
        self.slack.add_user(slack_id, Some(&email));
        moto::create_user(&self.sdk, &self.fx.identity_store_id, &email, &email).await
    }

    /// A grant through grant-access, its execution running.
    async fn grant(&self, slack_id: &str, message_ts: &str, minutes: u64) -> Execution {
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
        let execution = Execution::new(request.execution_name(1), request);
        self.executions.started(&execution);
        let deps = grant_access::Deps {
            config: &self.grant_config,
            identity_center: &self.sso,
            directory: &self.directory,
            ledger: &self.ledger,
            slack: &self.slack_api,
            clock: &self.clock,
            rules: &break_glass_core::requester::NO_RULES,
        };
        grant_access::handle(serde_json::to_value(&execution).unwrap(), &deps)
            .await
            .unwrap();
        execution
    }

    fn deps_with<'a>(&'a self, identity_center: &'a dyn IdentityCenter) -> Deps<'a> {
        Deps {
            config: &self.config,
            ledger: &self.ledger,
            identity_center,
            executions: &self.executions,
            slack: &self.slack_api,
            alerts: Some(&self.alerts),
            clock: &self.clock,
            session_policy: None,
        }
    }

    async fn reconcile(&self, event: Value) -> Value {
        handle(event, &self.deps_with(&self.sso)).await.unwrap()
    }

    async fn assigned(&self) -> Vec<String> {
        moto::assigned_users(&self.sdk, &self.fx, ACCOUNT).await
    }

    fn key(&self, user: &str) -> LedgerKey {
        LedgerKey {
            user_id: user.into(),
            account_id: ACCOUNT.parse().unwrap(),
            permission_set_arn: self.fx.permission_set_arn.parse().unwrap(),
        }
    }

    async fn item(&self, user: &str) -> LedgerItem {
        self.ledger.get(&self.key(user)).await.unwrap().unwrap()
    }

    /// Posts to the alert channel (not in a thread).
    fn alert_posts(&self) -> Vec<String> {
        self.slack
            .posts()
            .into_iter()
            .filter(|p| p.channel == ALERTS && p.thread_ts.is_none())
            .map(|p| p.text)
            .collect()
    }

    /// Posts in a request's thread.
    fn thread(&self, ts: &str) -> Vec<String> {
        self.slack
            .posts()
            .into_iter()
            .filter(|p| p.channel == "C0INCIDENT" && p.thread_ts.as_deref() == Some(ts))
            .map(|p| p.text)
            .collect()
    }
}

fn sweep(id: &str) -> Value {
    json!({"source": "aws.scheduler", "id": id})
}

fn ended(id: &str, execution_name: &str, status: &str) -> Value {
    json!({
        "id": id,
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"name": execution_name, "status": status, "stateMachineArn": SM},
    })
}

#[tokio::test]
async fn a_grant_whose_execution_was_aborted_is_removed_with_an_alert() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let a = world.grant("U0001", "1.1", 60).await;
    assert_eq!(world.assigned().await, vec![user.clone()]);

    // Stopped by hand at 09:20, during the hold: no revoke ran.
    world.clock.set("2026-11-30T09:30:00Z".parse().unwrap());
    world.executions.ended(&a.execution_name);
    let summary = world.reconcile(sweep("run-1")).await;
    assert_eq!(summary["trigger"], "sweep");
    assert_eq!(summary["finished"], 1, "{summary}");
    assert_eq!(summary["errors"], json!([]), "{summary}");
    assert!(world.assigned().await.is_empty(), "the assignment is gone");
    let item = world.item(&user).await;
    assert_eq!(item.state, ItemState::Closed);
    assert!(item.holders.is_empty());

    let alerts = world.alert_posts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains("reconcile-access removed a break-glass assignment")
            && alerts[0].contains(&a.execution_name),
        "{}",
        alerts[0]
    );
    let thread = world.thread("1.1");
    assert!(
        thread.last().unwrap().contains("reconcile-access removed"),
        "the requester's thread hears it too: {thread:?}"
    );
    assert_eq!(world.alerts.subjects(), ["break glass: leftover access removed"]);

    // Nothing left to do.
    let again = world.reconcile(sweep("run-2")).await;
    assert_eq!(again["looked_at"], 0, "{again}");
    assert_eq!(world.alert_posts().len(), 1);
}

#[tokio::test]
async fn running_grants_and_standing_access_are_left_in_place() {
    let world = World::new().await;
    let alice = world.person("U0001", "alice").await;
    let bob = world.person("U0002", "bob").await;
    let _running = world.grant("U0001", "1.1", 60).await;
    // Bob had the access already; his break glass ended.
    moto::assign(&world.sdk, &world.fx, ACCOUNT, &bob).await;
    let bobs = world.grant("U0002", "2.2", 60).await;
    assert_eq!(world.item(&bob).await.state, ItemState::Held);
    world.executions.ended(&bobs.execution_name);

    world.clock.set("2026-11-30T09:30:00Z".parse().unwrap());
    let summary = world.reconcile(sweep("run-1")).await;
    assert_eq!(summary["looked_at"], 2, "{summary}");
    assert_eq!(summary["left"], 1, "{summary}");
    assert_eq!(summary["closed"], 1, "{summary}");
    assert_eq!(summary["finished"], 0, "{summary}");
    assert_eq!(summary["drift"], json!([]), "{summary}");
    let mut assigned = world.assigned().await;
    assigned.sort();
    let mut both = vec![alice.clone(), bob.clone()];
    both.sort();
    assert_eq!(assigned, both, "nothing removed");
    assert_eq!(world.item(&alice).await.state, ItemState::Held);
    assert_eq!(world.item(&bob).await.state, ItemState::Closed);
    assert!(world.alert_posts().is_empty(), "{:?}", world.alert_posts());
    assert!(world.alerts.subjects().is_empty());
}

#[tokio::test]
async fn a_revoke_left_unfinished_is_finished_once_identity_center_answers() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let a = world.grant("U0001", "1.1", 60).await;

    // A's revoke took the item to `revoking`, then died (or exhausted its
    // retries) before the deletion was verified.
    world.clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    let held = world.item(&user).await;
    let mut revoking = held.clone();
    revoking.version += 1;
    revoking.state = ItemState::Revoking;
    revoking.holders.clear();
    revoking.operator = Some(Lease {
        execution_name: a.execution_name.clone(),
        until: world.clock.now() + chrono::Duration::minutes(7),
    });
    assert_eq!(
        world.ledger.put(&revoking, Some(held.version)).await.unwrap(),
        Written::Done
    );
    world.executions.ended(&a.execution_name);

    // Under A's lease: nobody touches it.
    let summary = world.reconcile(sweep("run-1")).await;
    assert_eq!(summary["left"], 1, "{summary}");
    assert_eq!(world.assigned().await, vec![user.clone()]);

    // The lease expired; Identity Center refuses the deletion: it stays.
    world.clock.set("2026-11-30T10:10:00Z".parse().unwrap());
    let down = RefusingDeletes(std::sync::Arc::new(world.sso.clone()));
    let summary = handle(sweep("run-2"), &world.deps_with(&down)).await.unwrap();
    assert_eq!(summary["finished"], 0, "{summary}");
    assert_eq!(summary["errors"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(world.assigned().await, vec![user.clone()]);
    let item = world.item(&user).await;
    assert_eq!(item.state, ItemState::Revoking);
    assert_eq!(item.reconcile_attempts, 1);
    assert!(world.alert_posts().is_empty(), "one failure is not news yet");

    // The next run fails too: two in a row is a person's problem.
    world.clock.set("2026-11-30T10:20:00Z".parse().unwrap());
    let summary = handle(sweep("run-3"), &world.deps_with(&down)).await.unwrap();
    assert_eq!(summary["finished"], 0, "{summary}");
    assert_eq!(world.item(&user).await.reconcile_attempts, 2);
    let alerts = world.alert_posts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("could not remove"), "{}", alerts[0]);
    assert!(alerts[0].contains("2 runs in a row"), "{}", alerts[0]);
    assert_eq!(world.alerts.subjects().len(), 1);
    assert_eq!(world.assigned().await, vec![user.clone()]);

    // Identity Center answers; the run's own lease has expired.
    world.clock.set("2026-11-30T10:30:00Z".parse().unwrap());
    let summary = world.reconcile(sweep("run-4")).await;
    assert_eq!(summary["finished"], 1, "{summary}");
    assert!(world.assigned().await.is_empty());
    assert_eq!(world.item(&user).await.state, ItemState::Closed);
    let alerts = world.alert_posts();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts[1].contains("a revoke left unfinished"), "{}", alerts[1]);
    assert_eq!(
        world.item(&user).await.reconcile_attempts,
        0,
        "closing starts the count again"
    );
}

#[tokio::test]
async fn two_reconcilers_at_once_do_the_work_once() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let a = world.grant("U0001", "1.1", 60).await;
    world.clock.set("2026-11-30T09:30:00Z".parse().unwrap());
    world.executions.ended(&a.execution_name);

    let deps = world.deps_with(&world.sso);
    let (one, two) = tokio::join!(
        handle(sweep("run-1"), &deps),
        handle(ended("evt-1", &a.execution_name, "ABORTED"), &deps)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    let finished = one["finished"].as_u64().unwrap() + two["finished"].as_u64().unwrap();
    assert_eq!(finished, 1, "{one} {two}");
    assert!(world.assigned().await.is_empty());
    assert_eq!(world.item(&user).await.state, ItemState::Closed);
    assert_eq!(world.alert_posts().len(), 1, "{:?}", world.alert_posts());
    assert_eq!(world.alerts.subjects().len(), 1);
}

#[tokio::test]
async fn drift_is_reported_once_a_day_and_never_removed() {
    let world = World::new().await;
    let carol = world.person("U0003", "carol").await;
    moto::assign(&world.sdk, &world.fx, ACCOUNT, &carol).await;

    let summary = world.reconcile(sweep("run-1")).await;
    let drift = summary["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{summary}");
    assert!(drift[0].as_str().unwrap().contains(&carol), "{summary}");
    let alerts = world.alert_posts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains(&carol), "{}", alerts[0]);
    assert_eq!(
        world.alerts.subjects(),
        ["break glass: assignments outside break glass"]
    );

    world.clock.advance(Duration::from_secs(3600));
    let summary = world.reconcile(sweep("run-2")).await;
    assert_eq!(summary["drift"], json!([]), "not again within a day: {summary}");
    assert_eq!(world.alert_posts().len(), 1);

    world.clock.advance(Duration::from_secs(24 * 3600));
    let summary = world.reconcile(sweep("run-3")).await;
    assert_eq!(
        summary["drift"].as_array().unwrap().len(),
        1,
        "a day later: {summary}"
    );
    assert_eq!(
        world.assigned().await,
        vec![carol],
        "drift is reported, never removed"
    );
}

#[tokio::test]
async fn a_recent_holder_waits_for_the_minimum_age_unless_the_event_names_it() {
    let world = World::new().await;
    let user = world.person("U0001", "alice").await;
    let a = world.grant("U0001", "1.1", 60).await;

    world.clock.set("2026-11-30T09:05:00Z".parse().unwrap());
    world.executions.ended(&a.execution_name);
    let summary = world.reconcile(sweep("run-1")).await;
    assert_eq!(summary["left"], 1, "joined 5 minutes ago: {summary}");
    assert_eq!(world.assigned().await, vec![user.clone()]);

    // Another execution ending does not name it.
    let summary = world
        .reconcile(ended("evt-0", "some-other-execution", "FAILED"))
        .await;
    assert_eq!(summary["left"], 1, "{summary}");
    assert_eq!(world.assigned().await, vec![user.clone()]);

    let summary = world
        .reconcile(ended("evt-1", &a.execution_name, "ABORTED"))
        .await;
    assert_eq!(summary["trigger"], format!("{} ended ABORTED", a.execution_name));
    assert_eq!(summary["finished"], 1, "{summary}");
    assert!(world.assigned().await.is_empty());
    assert_eq!(world.item(&user).await.state, ItemState::Closed);
}
