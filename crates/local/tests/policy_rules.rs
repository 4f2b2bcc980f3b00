//! The policy's rules through the real access-requested and grant-access
//! handlers, against Identity Center, Identity Store (users, groups,
//! memberships) and Step Functions on moto, and Slack on its stand-in: the
//! issue's example policy with three people, each click allowed or refused
//! as the rules say; someone removed from the group between click and grant
//! gets nothing; membership that cannot be read refuses.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use access_requested::{Config, Deps, RuleDeps};
use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::executions::StepFunctions;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::ErrorType;
use break_glass_core::clock::ManualClock;
use break_glass_core::contract::Execution;
use break_glass_core::ports::{Directory, DirectoryUser, LookupAttribute, PortError};
use break_glass_core::requester::{LookupCache, PolicyRules};
use break_glass_core::slack::SigningSecret;
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::slack::SlackStandIn;
use break_glass_testkit::{interaction_body, moto, slack_headers};
use serde_json::{Value, json};

const SECRET: &str = "rules-signing-secret";
const TOKEN: &str = "xoxb-rules";
const NOW: i64 = 1_800_000_000;
const RULE_ACCOUNT: &str = "111111111111";
const OTHER_ACCOUNT: &str = "222222222222";

/// The issue's example, verbatim.
const EXAMPLE: &str = r#"{"rules": [{"name": "oncall-admin", "accounts": ["111111111111"], "permission_sets": ["BreakGlassAdmin"], "groups": ["oncall"], "users": ["lead@example.com"], "max_duration_minutes": 120, "require_reason": true, "notify_channel": "C0SECURITY"}]}"#;

/// Slack user, Identity Store user name, e-mail.
const ALICE: (&str, &str, &str) = ("U0ALICE", "alice", "alice@example.com");
const LEAD: (&str, &str, &str) = ("U0LEAD", "lead", "lead@example.com");
const EVE: (&str, &str, &str) = ("U0EVE", "eve", "eve@example.com");

struct World {
    sdk: aws_config::SdkConfig,
    fx: moto::IdentityCenterFixture,
    state_machine_arn: String,
    slack: SlackStandIn,
    slack_api: SlackWebApi,
    executions: StepFunctions,
    directory: IdentityStore,
    sso: SsoAdmin,
    /// Alice's membership of `oncall`, to take away.
    alice_in_oncall: String,
    ledger: InMemoryLedger,
    clock: ManualClock,
}

impl World {
    /// Alice is in `oncall`, Eve in `developers`, the lead in no group but
    /// named in the rule by e-mail.
    async fn new() -> Self {
        let sdk = moto::sdk().await;
        let fx = moto::identity_center(&sdk, "BreakGlassAdmin", "PT1H").await;
        let store = fx.identity_store_id.clone();
        let slack = SlackStandIn::start(TOKEN).await;
        let mut ids = HashMap::new();
        for (slack_id, name, email) in [ALICE, LEAD, EVE] {
            slack.add_user(slack_id, Some(email));
            ids.insert(name, moto::create_user(&sdk, &store, name, email).await);
        }
        let oncall = moto::create_group(&sdk, &store, "oncall").await;
        let developers = moto::create_group(&sdk, &store, "developers").await;
        let alice_in_oncall = moto::add_to_group(&sdk, &store, &oncall, &ids["alice"]).await;
        moto::add_to_group(&sdk, &store, &developers, &ids["eve"]).await;
        let state_machine_arn = moto::state_machine(&sdk, &moto::unique("rules")).await;
        Self {
            executions: StepFunctions::from_sdk(&sdk, &state_machine_arn),
            directory: IdentityStore::from_sdk(&sdk, &store),
            sso: SsoAdmin::from_sdk(&sdk, fx.instance_arn.parse().unwrap()),
            slack_api: SlackWebApi::new(slack.api_url(), Some(BotToken::new(TOKEN)))
                .with_hooks_url(slack.hooks_url()),
            state_machine_arn,
            sdk,
            fx,
            slack,
            alice_in_oncall,
            ledger: InMemoryLedger::default(),
            clock: ManualClock::at_unix(NOW),
        }
    }

    /// The environment both functions read, with `policy` as
    /// `BREAK_GLASS_POLICY` and no account or permission set lists.
    fn env(&self, policy: &str) -> HashMap<String, String> {
        [
            ("STATE_MACHINE_ARN", self.state_machine_arn.as_str()),
            ("SSO_INSTANCE_ARN", &self.fx.instance_arn),
            ("IDENTITY_STORE_ID", &self.fx.identity_store_id),
            ("GRANT_LEDGER_TABLE", "unused"),
            ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
            ("SLACK_SIGNING_SECRET", SECRET),
            ("SLACK_BOT_TOKEN", TOKEN),
            ("SLACK_API_URL", &self.slack.api_url()),
            ("BREAK_GLASS_POLICY", policy),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn access_config(&self, policy: &str) -> Config {
        let env = self.env(policy);
        Config::from_env(&move |k: &str| env.get(k).cloned()).unwrap()
    }

    fn grant_config(&self, policy: &str) -> grant_access::Config {
        let env = self.env(policy);
        grant_access::Config::from_env(&move |k: &str| env.get(k).cloned()).unwrap()
    }

    /// `who` clicks for `account`, asking for `minutes` (or the default);
    /// returns what Slack shows them.
    async fn click(
        &self,
        config: &Config,
        directory: &dyn Directory,
        who: (&str, &str, &str),
        account: &str,
        minutes: Option<u64>,
    ) -> String {
        let policy = PolicyRules::from_setting(
            config.rules.as_ref().map(|r| &r.setting),
            &config.policy.instance,
            config.policy.max_duration,
            |_| unreachable!("inline policy"),
        );
        let cache = LookupCache::default();
        let deps = Deps {
            config,
            secret: &SigningSecret::new(SECRET),
            executions: &self.executions,
            slack: &self.slack_api,
            clock: &self.clock,
            rules: Some(RuleDeps {
                policy: &policy,
                directory,
                identity_center: &self.sso,
                cache: &cache,
            }),
            control: None,
        };
        self.click_with(&deps, who, account, minutes).await
    }

    async fn click_with(
        &self,
        deps: &Deps<'_>,
        who: (&str, &str, &str),
        account: &str,
        minutes: Option<u64>,
    ) -> String {
        let mut value = json!({"account_id": account, "permission_set_arn": self.fx.permission_set_arn});
        if let Some(m) = minutes {
            value["duration_minutes"] = json!(m);
        }
        // Each click on a message of its own: a second click on the same
        // message would be a repeat.
        static MESSAGE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100);
        let ts = format!(
            "1800000000.{:06}",
            MESSAGE.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let payload = json!({
            "type": "block_actions",
            "user": {"id": who.0, "username": who.1, "team_id": "T0001"},
            "team": {"id": "T0001", "domain": "example"},
            "container": {"type": "message", "message_ts": ts, "channel_id": "C0INCIDENT", "is_ephemeral": false},
            "channel": {"id": "C0INCIDENT", "name": "incidents"},
            "message": {"type": "message", "ts": ts},
            "response_url": self.slack.response_url("1"),
            "trigger_id": "4.5.6", "api_app_id": "A1", "state": {"values": {}},
            "actions": [{"type": "button", "action_id": "break_glass", "block_id": "bg", "value": value.to_string(), "action_ts": "1800000001.000300"}]
        });
        let body = interaction_body(&payload);
        let headers = slack_headers(SECRET, NOW, body.as_bytes());
        let event: ApiGatewayV2httpRequest = serde_json::from_value(json!({
            "version": "2.0", "routeKey": "POST /slack/interactions", "rawPath": "/slack/interactions",
            "headers": headers.into_iter().collect::<HashMap<_, _>>(),
            "requestContext": {"http": {"method": "POST", "path": "/slack/interactions"}},
            "body": body, "isBase64Encoded": false
        }))
        .unwrap();
        let response: ApiGatewayV2httpResponse = access_requested::handle(event, deps).await;
        assert_eq!(response.status_code, 200);
        let Some(Body::Text(text)) = &response.body else {
            panic!("no body")
        };
        // An empty 200: answered some other way (the modal opened).
        match serde_json::from_str::<Value>(text) {
            Ok(v) => v["text"].as_str().unwrap().to_string(),
            Err(_) => text.clone(),
        }
    }

    /// The execution the click by `who` for `account` started.
    async fn execution(&self, who: (&str, &str, &str), account: &str) -> Execution {
        moto::executions(&self.sdk, &self.state_machine_arn)
            .await
            .into_iter()
            .map(|(_, _, input)| serde_json::from_str::<Execution>(&input).unwrap())
            .find(|e| {
                e.request.requester.slack_user_id.as_str() == who.0
                    && e.request.account_id.as_str() == account
            })
            .unwrap_or_else(|| panic!("no execution for {who:?} in {account}"))
    }

    async fn grant(
        &self,
        policy: &str,
        directory: &dyn Directory,
        execution: &Execution,
    ) -> Result<Value, grant_access::GrantError> {
        let config = self.grant_config(policy);
        let rules = PolicyRules::from_setting(
            config.policy.as_ref(),
            &config.instance,
            config.rule_limits().max_duration,
            |_| unreachable!("inline policy"),
        );
        let deps = grant_access::Deps {
            config: &config,
            identity_center: &self.sso,
            directory,
            ledger: &self.ledger,
            slack: &self.slack_api,
            clock: &self.clock,
            rules: &rules,
        };
        grant_access::handle(serde_json::to_value(execution).unwrap(), &deps).await
    }

    async fn assigned(&self, account: &str) -> usize {
        moto::assigned_users(&self.sdk, &self.fx, account).await.len()
    }
}

/// The example with `require_reason` off, so button clicks can use it.
fn without_reason() -> String {
    EXAMPLE.replace("\"require_reason\": true", "\"require_reason\": false")
}

#[tokio::test]
async fn the_example_policy_decides_each_click_as_its_rule_says() {
    let w = World::new().await;
    let policy = without_reason();
    let config = w.access_config(&policy);
    assert!(config.policy.accounts.is_none(), "no account list needed");
    let refused = |why: &str| format!(":no_entry: Break glass refused: {why}. Nothing was granted.");
    let started = |what: &str| {
        format!(
            ":rotating_light: Breaking glass: {RULE_ACCOUNT} as {what}. Updates follow in this message's thread."
        )
    };
    let set = w.fx.permission_set_arn.rsplit('/').next().unwrap().to_string();
    for (who, account, minutes, expected) in [
        // On call: the default hour, up to the rule's two hours.
        (ALICE, RULE_ACCOUNT, None, started(&format!("{set}, for 1 hour"))),
        (
            ALICE,
            RULE_ACCOUNT,
            Some(120),
            started(&format!("{set}, for 2 hours")),
        ),
        (
            ALICE,
            RULE_ACCOUNT,
            Some(121),
            refused(
                "2 hours 1 minute is longer than the 2 hours the break-glass rules allow for BreakGlassAdmin in 111111111111 (rule oncall-admin)",
            ),
        ),
        (
            ALICE,
            OTHER_ACCOUNT,
            None,
            refused("no break-glass rule covers BreakGlassAdmin in 222222222222"),
        ),
        // Named by e-mail.
        (
            LEAD,
            RULE_ACCOUNT,
            Some(30),
            started(&format!("{set}, for 30 minutes")),
        ),
        // In a group the rule does not name.
        (
            EVE,
            RULE_ACCOUNT,
            None,
            refused(
                "BreakGlassAdmin in 111111111111 is for the oncall group or people named in the rule (rule oncall-admin)",
            ),
        ),
    ] {
        let answer = w.click(&config, &w.directory, who, account, minutes).await;
        assert_eq!(answer, expected, "{who:?} {account} {minutes:?}");
    }
    let names: Vec<String> = moto::executions(&w.sdk, &w.state_machine_arn)
        .await
        .into_iter()
        .map(|(name, ..)| name)
        .collect();
    assert_eq!(names.len(), 3, "one execution per allowed click: {names:?}");

    // grant-access agrees, and announces in the rule's channel.
    let execution = w.execution(LEAD, RULE_ACCOUNT).await;
    w.grant(&policy, &w.directory, &execution).await.unwrap();
    assert_eq!(w.assigned(RULE_ACCOUNT).await, 1);
    // The rule allows two hours: no Extend may take the grant past them.
    let holder = w.ledger.items()[0].holders[0].clone();
    assert_eq!(
        holder.latest_end,
        Some(execution.request.requested_at + chrono::Duration::minutes(120))
    );
    let posts = w.slack.posts();
    let security: Vec<_> = posts.iter().filter(|p| p.channel == "C0SECURITY").collect();
    assert_eq!(security.len(), 1, "{posts:?}");
    assert!(
        security[0]
            .text
            .starts_with(":unlock: <@U0LEAD> has BreakGlassAdmin in 111111111111 until"),
        "{}",
        security[0].text
    );
    assert!(security[0].text.ends_with("(break-glass rule oncall-admin)"));
}

/// With the modal wired, a button a rule would allow only with a reason
/// opens the modal instead of refusing; the modal's reason satisfies the
/// rule, and the reason reaches the execution.
#[tokio::test]
async fn a_rule_that_requires_a_reason_asks_for_it_in_the_modal() {
    let w = World::new().await;
    let config = w.access_config(EXAMPLE);
    let policy = PolicyRules::from_setting(
        config.rules.as_ref().map(|r| &r.setting),
        &config.policy.instance,
        config.policy.max_duration,
        |_| unreachable!("inline policy"),
    );
    let cache = LookupCache::default();
    let ledger = InMemoryLedger::default();
    let deps = Deps {
        config: &config,
        secret: &SigningSecret::new(SECRET),
        executions: &w.executions,
        slack: &w.slack_api,
        clock: &w.clock,
        rules: Some(RuleDeps {
            policy: &policy,
            directory: &w.directory,
            identity_center: &w.sso,
            cache: &cache,
        }),
        control: config.control.as_ref().map(|c| access_requested::ControlDeps {
            config: c,
            ledger: &ledger,
            identity_center: &w.sso,
        }),
    };
    let answer = w.click_with(&deps, ALICE, RULE_ACCOUNT, None).await;
    assert_eq!(answer, "", "no refusal: the modal opens");
    let opened = w.slack.opened_views();
    assert_eq!(opened.len(), 1);
    assert!(moto::executions(&w.sdk, &w.state_machine_arn).await.is_empty());
    // Submitted with a reason: the rule allows it.
    let submission = json!({
        "type": "view_submission",
        "team": {"id": "T0001"}, "user": {"id": ALICE.0, "username": ALICE.1, "team_id": "T0001"},
        "api_app_id": "A1",
        "view": {"id": "VRULES01", "type": "modal", "callback_id": "break_glass_request",
                 "private_metadata": opened[0]["view"]["private_metadata"].clone(),
                 "state": {"values": {
                     "account": {"account_input": {"type": "plain_text_input", "value": RULE_ACCOUNT}},
                     "permission_set": {"permission_set_input": {"type": "plain_text_input", "value": w.fx.permission_set_arn}},
                     "duration": {"duration_input": {"type": "static_select", "selected_option": {"value": "60"}}},
                     "reason": {"reason_input": {"type": "plain_text_input", "value": "payments are failing"}}
                 }}}
    });
    let body = interaction_body(&submission);
    let headers = slack_headers(SECRET, NOW, body.as_bytes());
    let event: ApiGatewayV2httpRequest = serde_json::from_value(json!({
        "version": "2.0", "routeKey": "POST /slack/interactions", "rawPath": "/slack/interactions",
        "headers": headers.into_iter().collect::<HashMap<_, _>>(),
        "requestContext": {"http": {"method": "POST", "path": "/slack/interactions"}},
        "body": body, "isBase64Encoded": false
    }))
    .unwrap();
    let response = access_requested::handle(event, &deps).await;
    let text = match &response.body {
        Some(Body::Text(t)) => t.clone(),
        _ => String::new(),
    };
    assert_eq!((response.status_code, text.as_str()), (200, ""));
    let execution = w.execution(ALICE, RULE_ACCOUNT).await;
    assert_eq!(execution.request.reason.as_deref(), Some("payments are failing"));
    assert_eq!(execution.request.slack.channel_id, "C0INCIDENT");
}

#[tokio::test]
async fn a_rule_that_requires_a_reason_refuses_every_button_click() {
    let w = World::new().await;
    let config = w.access_config(EXAMPLE);
    for who in [ALICE, LEAD] {
        let answer = w.click(&config, &w.directory, who, RULE_ACCOUNT, None).await;
        assert_eq!(
            answer,
            ":no_entry: Break glass refused: BreakGlassAdmin in 111111111111 requires a reason (rule oncall-admin), and a button click carries none, so a click cannot break this glass. Nothing was granted.",
            "{who:?}"
        );
    }
    let answer = w.click(&config, &w.directory, EVE, RULE_ACCOUNT, None).await;
    assert!(answer.contains("is for the oncall group"), "{answer}");
    assert!(moto::executions(&w.sdk, &w.state_machine_arn).await.is_empty());
}

#[tokio::test]
async fn leaving_the_group_between_click_and_grant_gets_nothing() {
    let w = World::new().await;
    let policy = without_reason();
    let config = w.access_config(&policy);
    let answer = w.click(&config, &w.directory, ALICE, RULE_ACCOUNT, None).await;
    assert!(answer.starts_with(":rotating_light: Breaking glass"), "{answer}");
    let execution = w.execution(ALICE, RULE_ACCOUNT).await;

    moto::remove_from_group(&w.sdk, &w.fx.identity_store_id, &w.alice_in_oncall).await;
    let err = w.grant(&policy, &w.directory, &execution).await.unwrap_err();
    assert_eq!(err.error_type(), "RequesterNotAllowed", "{err}");
    assert_eq!(
        err.to_string(),
        "BreakGlassAdmin in 111111111111 is for the oncall group or people named in the rule (rule oncall-admin)"
    );
    assert_eq!(w.assigned(RULE_ACCOUNT).await, 0, "nothing was granted");
    let thread = w.slack.posts();
    assert!(
        thread
            .iter()
            .any(|p| p.text.starts_with("<@U0ALICE> :no_entry: Break glass refused: BreakGlassAdmin in 111111111111 is for the oncall group")),
        "{thread:?}"
    );
}

/// The real directory for users, with groups that cannot be read (the
/// port's default answer).
#[derive(Debug)]
struct GroupsUnreadable(IdentityStore);

#[async_trait]
impl Directory for GroupsUnreadable {
    async fn find_user(
        &self,
        attribute: LookupAttribute,
        value: &str,
    ) -> Result<Option<DirectoryUser>, PortError> {
        self.0.find_user(attribute, value).await
    }
}

#[tokio::test]
async fn membership_that_cannot_be_read_refuses() {
    let w = World::new().await;
    let policy = without_reason();
    let config = w.access_config(&policy);
    let unreadable = GroupsUnreadable(w.directory.clone());
    let answer = w.click(&config, &unreadable, ALICE, RULE_ACCOUNT, None).await;
    assert!(
        answer.starts_with(
            ":no_entry: Break glass refused: the break-glass rules could not be checked, because Identity Center could not be read"
        ),
        "{answer}"
    );
    assert!(moto::executions(&w.sdk, &w.state_machine_arn).await.is_empty());

    // Allowed at the click, unreadable at the grant: nothing is created.
    w.click(&config, &w.directory, ALICE, RULE_ACCOUNT, None).await;
    let execution = w.execution(ALICE, RULE_ACCOUNT).await;
    let err = w.grant(&policy, &unreadable, &execution).await.unwrap_err();
    assert_eq!(err.error_type(), "AwsCallFailed", "{err}");
    assert_eq!(w.assigned(RULE_ACCOUNT).await, 0);
}

#[tokio::test]
async fn without_rules_nothing_is_looked_up() {
    // The allow lists alone, as before rules: any full member, no group
    // lookups (a directory that cannot serve groups is never asked).
    let w = World::new().await;
    let mut env = w.env("");
    env.remove("BREAK_GLASS_POLICY");
    env.insert("ALLOWED_ACCOUNT_IDS".into(), RULE_ACCOUNT.into());
    env.insert(
        "ALLOWED_PERMISSION_SET_ARNS".into(),
        w.fx.permission_set_arn.clone(),
    );
    let lookup = {
        let env = env.clone();
        move |k: &str| env.get(k).cloned()
    };
    let config = Config::from_env(&lookup).unwrap();
    assert!(config.rules.is_none());
    let deps = Deps {
        config: &config,
        secret: &SigningSecret::new(SECRET),
        executions: &w.executions,
        slack: &w.slack_api,
        clock: &w.clock,
        rules: None,
        control: None,
    };
    let grant_config = grant_access::Config::from_env(&lookup).unwrap();
    assert!(grant_config.policy.is_none());
    // Eve, in no group any rule names, breaks glass through the lists.
    let answer = w.click_with(&deps, EVE, RULE_ACCOUNT, None).await;
    assert!(answer.starts_with(":rotating_light: Breaking glass"), "{answer}");
    let execution = w.execution(EVE, RULE_ACCOUNT).await;
    let unreadable = GroupsUnreadable(w.directory.clone());
    let rules = Arc::new(PolicyRules::none());
    let deps = grant_access::Deps {
        config: &grant_config,
        identity_center: &w.sso,
        directory: &unreadable,
        ledger: &InMemoryLedger::default(),
        slack: &w.slack_api,
        clock: &w.clock,
        rules: &rules,
    };
    grant_access::handle(serde_json::to_value(&execution).unwrap(), &deps)
        .await
        .unwrap();
    assert_eq!(w.assigned(RULE_ACCOUNT).await, 1);
}
