//! Ending the sessions opened during a grant, against moto: grant and
//! revoke with the real handlers, the session revocation policy written
//! through the audit role with the real IAM adapter, and read back here.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_iam::Client as Iam;
use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::session_policy::IamSessionPolicy;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::access::IdentityLookup;
use break_glass_core::clock::{Clock, ManualClock};
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_core::contract::{AccessRequest, Execution, Requester, SlackThread};
use break_glass_core::domain::AccessDuration;
use break_glass_core::sessions::{PolicyDocument, SessionDeny};
use break_glass_testkit::moto::{self, IdentityCenterFixture};
use break_glass_testkit::slack::SlackStandIn;
use revoke_access::EndSessions;
use serde_json::Value;

const ACCOUNT: &str = "123456789012";
const TOKEN: &str = "xoxb-sessions";
const ROLE: &str = "break-glass-audit";
const INITIAL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoSessionsRevoked","Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"1970-01-01T00:00:00Z"}}}]}"#;

struct World {
    sdk: aws_config::SdkConfig,
    fx: IdentityCenterFixture,
    slack: SlackStandIn,
    slack_api: SlackWebApi,
    sso: SsoAdmin,
    directory: IdentityStore,
    ledger: DynamoLedger,
    policy: IamSessionPolicy,
    policy_name: String,
    clock: ManualClock,
    grant_config: grant_access::Config,
    revoke_config: revoke_access::Config,
}

impl World {
    /// The audit role and a session policy of its own in moto's account, as
    /// modules/target-account creates them; `end_sessions` as configured.
    async fn new(end_sessions: fn(String) -> EndSessions) -> Self {
        let sdk = moto::sdk().await;
        let fx = moto::identity_center(&sdk, "BreakGlassAdmin", "PT2H").await;
        let slack = SlackStandIn::start(TOKEN).await;
        let settings = SlackSettings {
            bot_token: SecretSource::Plain(TOKEN.into()),
            api_url: slack.api_url(),
        };
        let table = moto::unique("ledger");
        moto::create_ledger_table(&sdk, &table).await.unwrap();
        let iam = Iam::new(&sdk);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
        // The role may exist from another test: moto's IAM is shared.
        let _ = iam
            .create_role()
            .role_name(ROLE)
            .assume_role_policy_document(trust)
            .send()
            .await;
        let policy_name = moto::unique("session-revocations");
        iam.create_policy()
            .policy_name(&policy_name)
            .policy_document(INITIAL)
            .send()
            .await
            .unwrap();
        Self {
            sso: SsoAdmin::from_sdk(&sdk, fx.instance_arn.parse().unwrap()),
            directory: IdentityStore::from_sdk(&sdk, &fx.identity_store_id),
            ledger: DynamoLedger::from_sdk(&sdk, &table),
            slack_api: SlackWebApi::new(slack.api_url(), Some(BotToken::new(TOKEN))),
            policy: IamSessionPolicy::new(&sdk, ROLE, &policy_name),
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
            revoke_config: revoke_access::Config {
                instance: fx.instance_arn.parse().unwrap(),
                sso_region: None,
                ledger_table: table,
                slack: Some(settings),
                cloudtrail_delay: Duration::from_secs(15 * 60),
                end_sessions: end_sessions(policy_name.clone()),
            },
            policy_name,
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

    async fn grant(&self, execution: &Execution) -> Value {
        let deps = grant_access::Deps {
            config: &self.grant_config,
            identity_center: &self.sso,
            directory: &self.directory,
            ledger: &self.ledger,
            slack: &self.slack_api,
            clock: &self.clock,
            rules: &break_glass_core::requester::NO_RULES,
        };
        grant_access::handle(serde_json::to_value(execution).unwrap(), &deps)
            .await
            .unwrap()
    }

    async fn revoke(&self, granted: &Value) -> Value {
        let deps = revoke_access::Deps {
            config: &self.revoke_config,
            identity_center: &self.sso,
            ledger: &self.ledger,
            slack: &self.slack_api,
            clock: &self.clock,
            session_policy: match self.revoke_config.end_sessions {
                EndSessions::On { .. } => Some(&self.policy),
                _ => None,
            },
        };
        revoke_access::handle(granted.clone(), &deps).await.unwrap()
    }

    /// A whole break glass for a new person at the clock's time: granted,
    /// then revoked `minutes` later.
    async fn break_glass(&self, slack_id: &str, name: &str, minutes: u64) -> (String, Value) {
        let user = self.person(slack_id, name).await;
        let granted = self
            .grant(&self.request(slack_id, &format!("{slack_id}.1"), minutes))
            .await;
        self.clock.advance(Duration::from_secs(minutes * 60));
        (user, self.revoke(&granted).await)
    }

    fn arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:policy/{}", self.policy_name)
    }

    /// The policy's default version, read as an administrator would.
    async fn policy_document(&self) -> PolicyDocument {
        let iam = Iam::new(&self.sdk);
        let policy = iam.get_policy().policy_arn(self.arn()).send().await.unwrap();
        let default = policy.policy.unwrap().default_version_id.unwrap();
        let version = iam
            .get_policy_version()
            .policy_arn(self.arn())
            .version_id(default)
            .send()
            .await
            .unwrap();
        let raw = version.policy_version.unwrap().document.unwrap();
        let text = if raw.starts_with('{') {
            raw
        } else {
            // URL-encoded, as IAM sends it.
            form_decode(&raw)
        };
        PolicyDocument::parse(&text).unwrap()
    }

    async fn versions(&self) -> usize {
        Iam::new(&self.sdk)
            .list_policy_versions()
            .policy_arn(self.arn())
            .send()
            .await
            .unwrap()
            .versions
            .unwrap_or_default()
            .len()
    }

    fn last_post(&self) -> String {
        self.slack.posts().last().unwrap().text.clone()
    }
}

fn form_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn on(policy_name: String) -> EndSessions {
    EndSessions::On {
        audit_role: ROLE.into(),
        policy_name,
    }
}

#[tokio::test]
async fn the_revoke_ends_the_sessions_and_the_thread_says_so() {
    let world = World::new(on).await;
    let (user, revoked) = world.break_glass("U0001", "alice", 60).await;
    let revoke = &revoked["revoke"];
    assert_eq!(revoke["outcome"]["action"], "deleted");
    assert_eq!(revoke["sessions_ended"], true, "{revoke}");
    assert!(revoke.get("sessions_not_ended").is_none(), "{revoke}");
    // The report no longer waits out the two-hour session length.
    assert_eq!(revoke["sessions_valid_until"], "2026-11-30T10:00:01Z");
    assert_eq!(revoke["report_at"], "2026-11-30T10:15:01Z");

    let doc = world.policy_document().await;
    assert_eq!(
        doc.denies(),
        &[SessionDeny {
            user_id: user.clone(),
            issued_before: "2026-11-30T10:00:01Z".parse().unwrap(),
            until: "2026-11-30T12:00:00Z".parse().unwrap(),
        }]
    );
    let post = world.last_post();
    assert!(post.starts_with(":lock: Access removed: <@U0001>"), "{post}");
    assert!(
        post.contains("sessions opened during the grant were ended at 10:00 UTC"),
        "{post}"
    );
}

#[tokio::test]
async fn each_user_gets_their_own_deny_and_only_expired_ones_go() {
    let world = World::new(on).await;
    let (alice, _) = world.break_glass("U0001", "alice", 60).await; // revoked 10:00, sessions until 12:00
    let (bob, revoked) = world.break_glass("U0002", "bob", 60).await; // revoked 11:00, until 13:00
    assert_eq!(revoked["revoke"]["sessions_ended"], true);
    let users: Vec<_> = world
        .policy_document()
        .await
        .denies()
        .iter()
        .map(|d| d.user_id.clone())
        .collect();
    assert_eq!(users, vec![alice.clone(), bob.clone()]);

    // carol is revoked at 12:30: alice's sessions have all expired, bob's not.
    world.clock.advance(Duration::from_secs(30 * 60));
    let (carol, revoked) = world.break_glass("U0003", "carol", 60).await;
    assert_eq!(revoked["revoke"]["sessions_ended"], true);
    let users: Vec<_> = world
        .policy_document()
        .await
        .denies()
        .iter()
        .map(|d| d.user_id.clone())
        .collect();
    assert_eq!(
        users,
        vec![bob, carol],
        "alice's expired Deny is gone, bob's stays"
    );
}

#[tokio::test]
async fn iam_keeps_five_versions_and_break_glass_makes_room() {
    let world = World::new(on).await;
    for (i, name) in ["a", "b", "c", "d", "e", "f", "g"].iter().enumerate() {
        let (_, revoked) = world.break_glass(&format!("U000{i}"), name, 15).await;
        assert_eq!(
            revoked["revoke"]["sessions_ended"], true,
            "{name}: {}",
            revoked["revoke"]
        );
        assert!(world.versions().await <= 5);
    }
    assert_eq!(world.versions().await, 5);
    assert_eq!(world.policy_document().await.denies().len(), 7);
}

#[tokio::test]
async fn switched_off_means_not_ended_on_purpose() {
    let world = World::new(|_| EndSessions::SwitchedOff).await;
    let (_, revoked) = world.break_glass("U0001", "alice", 60).await;
    let revoke = &revoked["revoke"];
    assert_eq!(revoke["sessions_ended"], false);
    assert_eq!(revoke["sessions_valid_until"], "2026-11-30T12:00:00Z");
    assert_eq!(revoke["report_at"], "2026-11-30T12:15:00Z");
    assert!(
        world.policy_document().await.denies().is_empty(),
        "nothing written"
    );
    let post = world.last_post();
    assert!(post.contains("valid until 12:00 UTC"), "{post}");
    assert!(post.contains("not ended, on purpose"), "{post}");
}

#[tokio::test]
async fn a_failure_to_end_sessions_never_fails_the_revoke() {
    // The audit role cannot find the policy (it was never created there).
    let world = World::new(|_| EndSessions::On {
        audit_role: ROLE.into(),
        policy_name: "no-such-policy".into(),
    })
    .await;
    let revoke_policy = IamSessionPolicy::new(&world.sdk, ROLE, "no-such-policy");
    let user = world.person("U0001", "alice").await;
    let granted = world.grant(&world.request("U0001", "1.1", 60)).await;
    world.clock.advance(Duration::from_secs(3600));
    let deps = revoke_access::Deps {
        config: &world.revoke_config,
        identity_center: &world.sso,
        ledger: &world.ledger,
        slack: &world.slack_api,
        clock: &world.clock,
        session_policy: Some(&revoke_policy),
    };
    let revoked = revoke_access::handle(granted, &deps).await.unwrap();
    let revoke = &revoked["revoke"];
    assert_eq!(revoke["outcome"]["action"], "deleted", "the revoke stands");
    assert!(
        moto::assigned_users(&world.sdk, &world.fx, ACCOUNT)
            .await
            .is_empty()
    );
    assert!(
        !moto::assigned_users(&world.sdk, &world.fx, ACCOUNT)
            .await
            .contains(&user)
    );
    assert_eq!(revoke["sessions_ended"], false);
    assert!(
        revoke["sessions_not_ended"]
            .as_str()
            .unwrap()
            .contains("GetPolicy"),
        "{revoke}"
    );
    assert_eq!(
        revoke["report_at"], "2026-11-30T12:15:00Z",
        "the report waits the sessions out"
    );
    let post = world.last_post();
    assert!(post.contains("valid until 12:00 UTC"), "{post}");
    assert!(post.contains("could not be ended"), "{post}");
}

#[tokio::test]
async fn the_sweep_drops_only_the_denies_whose_sessions_have_expired() {
    let world = World::new(on).await;
    let (_, _) = world.break_glass("U0001", "alice", 60).await; // revoked 10:00, until 12:00
    let (bob, _) = world.break_glass("U0002", "bob", 60).await; // revoked 11:00, until 13:00
    let account = ACCOUNT.parse().unwrap();
    let sweep = |at: &str| {
        world.clock.set(at.parse().unwrap());
        break_glass_core::sessions::clean_up(
            &world.policy,
            &world.ledger,
            &world.clock,
            &account,
            "reconcile-access:1",
        )
    };
    assert_eq!(
        sweep("2026-11-30T11:59:59Z").await,
        Ok(false),
        "nothing expired yet"
    );
    assert_eq!(world.policy_document().await.denies().len(), 2);
    assert_eq!(sweep("2026-11-30T12:00:00Z").await, Ok(true));
    let left: Vec<_> = world
        .policy_document()
        .await
        .denies()
        .iter()
        .map(|d| d.user_id.clone())
        .collect();
    assert_eq!(left, vec![bob], "alice's Deny went, bob's is still in force");
    assert_eq!(sweep("2026-11-30T13:00:00Z").await, Ok(true));
    assert!(world.policy_document().await.denies().is_empty());
    assert_eq!(
        sweep("2026-11-30T14:00:00Z").await,
        Ok(false),
        "nothing left to drop"
    );
}
