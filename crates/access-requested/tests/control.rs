//! The slash command, the modal, End and Extend and the Events API through
//! the real handler: every new shape refused unsigned (401) or malformed
//! (400) with nothing changed, `REQUIRE_REASON` sending the button through
//! the modal, a submission's bad fields shown on the fields, and End and
//! Extend deciding by the ledger (the requester or an administrator only,
//! idempotent, the hold woken by its token).

#![allow(clippy::unwrap_used)]

use access_requested::{Config, ControlDeps, Deps, handle};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::clock::ManualClock;
use break_glass_core::contract::AssignmentSource;
use break_glass_core::ledger::{HoldControl, Holder, ItemState, LastChange, LedgerItem, LedgerKey, Origin};
use break_glass_core::ports::Ledger;
use break_glass_core::slack::SigningSecret;
use break_glass_core::slack::control::{END_ACTION, EXTEND_ACTION, HoldRef};
use break_glass_testkit::executions::InMemoryExecutions;
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::names::NamesOnly;
use break_glass_testkit::slack::SlackStandIn;
use break_glass_testkit::{interaction_body, slack_headers};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const SECRET: &str = "control-signing-secret";
const TOKEN: &str = "xoxb-control";
const NOW: i64 = 1_800_000_000;
const ACCOUNT: &str = "123456789012";
const PERMISSION_SET: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
const REQUESTER: &str = "U0ALICE";
const ADMIN: &str = "U0ADMIN";
const STRANGER: &str = "U0MALLORY";
const EXECUTION: &str = "bg-U0ALICE-123456789012-abc-g1";

struct World {
    config: Config,
    slack: SlackStandIn,
    slack_api: SlackWebApi,
    executions: InMemoryExecutions,
    ledger: InMemoryLedger,
    clock: ManualClock,
}

fn t(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(NOW + offset, 0).unwrap()
}

fn key() -> LedgerKey {
    LedgerKey {
        user_id: "u-alice".into(),
        account_id: ACCOUNT.parse().unwrap(),
        permission_set_arn: PERMISSION_SET.parse().unwrap(),
    }
}

fn hold_ref(until: DateTime<Utc>) -> HoldRef {
    HoldRef {
        execution: EXECUTION.into(),
        user: "u-alice".into(),
        account: ACCOUNT.parse().unwrap(),
        permission_set: PERMISSION_SET.parse().unwrap(),
        until,
    }
}

impl World {
    async fn new(extra: &[(&'static str, &'static str)]) -> Self {
        let slack = SlackStandIn::start(TOKEN).await;
        let api: &'static str = Box::leak(slack.api_url().into_boxed_str());
        let mut env = vec![
            (
                "STATE_MACHINE_ARN",
                "arn:aws:states:eu-west-1:123456789012:stateMachine:break-glass",
            ),
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-12345"),
            ("ALLOWED_ACCOUNT_IDS", ACCOUNT),
            ("ALLOWED_PERMISSION_SET_ARNS", PERMISSION_SET),
            ("SLACK_SIGNING_SECRET", SECRET),
            ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
            ("GRANT_LEDGER_TABLE", "ledger"),
            ("SLACK_BOT_TOKEN", TOKEN),
            ("SLACK_API_URL", api),
            ("ADMIN_SLACK_USER_IDS", ADMIN),
            ("MAX_DURATION_MINUTES", "120"),
        ];
        env.extend_from_slice(extra);
        let map: std::collections::HashMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::from_env(&move |k: &str| map.get(k).cloned()).unwrap();
        Self {
            slack_api: SlackWebApi::new(slack.api_url(), Some(BotToken::new(TOKEN)))
                .with_hooks_url(slack.hooks_url()),
            slack,
            config,
            executions: InMemoryExecutions::default(),
            ledger: InMemoryLedger::default(),
            clock: ManualClock::at_unix(NOW),
        }
    }

    /// Alice holds the assignment until `until`; the hold stored `token`.
    async fn holding(&self, until: DateTime<Utc>, token: Option<&str>) {
        let item = LedgerItem {
            key: key(),
            version: 3,
            origin: Origin::BreakGlass,
            state: ItemState::Held,
            operator: None,
            holders: vec![Holder {
                execution_name: EXECUTION.into(),
                slack_user_id: REQUESTER.into(),
                joined_at: t(-60),
                expires_at: until,
                source: AssignmentSource::Created,
                reason: Some("db on fire".into()),
                thread: Some(("C0INCIDENTS".into(), "1800000000.000100".into())),
                incident: None,
                requested_at: Some(t(-60)),
                latest_end: None,
                control: HoldControl {
                    token: token.map(str::to_string),
                    ..HoldControl::default()
                },
            }],
            user_name: "alice".into(),
            created_at: t(-60),
            updated_at: t(-60),
            closed_at: None,
            last_change: LastChange {
                by: EXECUTION.into(),
                what: "granted".into(),
                at: t(-60),
            },
            reconcile_attempts: 0,
        };
        self.ledger.put(&item, None).await.unwrap();
    }

    async fn send(&self, path: &str, body: &str, signed: bool) -> ApiGatewayV2httpResponse {
        let mut headers = serde_json::Map::new();
        if signed {
            for (k, v) in slack_headers(SECRET, NOW, body.as_bytes()) {
                headers.insert(k, json!(v));
            }
        }
        let event: ApiGatewayV2httpRequest = serde_json::from_value(json!({
            "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path, "rawQueryString": "",
            "headers": headers,
            "requestContext": {"accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
                "domainPrefix": "abc", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "Slackbot"},
                "requestId": "r", "routeKey": format!("POST {path}"), "stage": "$default", "time": "30/Nov/2026:00:00:00 +0000", "timeEpoch": 1800000000000u64},
            "body": body, "isBase64Encoded": false
        }))
        .unwrap();
        let deps = Deps {
            config: &self.config,
            secret: &SigningSecret::new(SECRET),
            executions: &self.executions,
            slack: &self.slack_api,
            clock: &self.clock,
            rules: None,
            control: self.config.control.as_ref().map(|c| ControlDeps {
                config: c,
                ledger: &self.ledger,
                identity_center: &NamesOnly,
            }),
        };
        handle(event, &deps).await
    }

    async fn press(&self, who: &str, action: &str, until: DateTime<Utc>) -> String {
        let payload = json!({
            "type": "block_actions",
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": who, "username": "someone", "team_id": "T0001"},
            "api_app_id": "A0001",
            "trigger_id": "12466734323.1395872398.3ad0ba1d3e9e1e2d3f7d1cbb2d3f7e1e",
            "container": {"type": "message", "message_ts": "1800000001.000100", "channel_id": "C0INCIDENTS"},
            "channel": {"id": "C0INCIDENTS", "name": "incidents"},
            "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
            "actions": [{"action_id": action, "block_id": "hold", "value": hold_ref(until).value(), "type": "button", "action_ts": "1800000002.000100"}]
        });
        let answer = self
            .send("/slack/interactions", &interaction_body(&payload), true)
            .await;
        assert_eq!(answer.status_code, 200);
        text(&answer)
    }

    fn holder(&self) -> Holder {
        self.ledger.item(&key()).unwrap().holders[0].clone()
    }
}

fn body(r: &ApiGatewayV2httpResponse) -> String {
    match &r.body {
        Some(Body::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

fn text(r: &ApiGatewayV2httpResponse) -> String {
    serde_json::from_str::<Value>(&body(r))
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn command(text: &str) -> String {
    form(&[
        ("team_id", "T0001"),
        ("channel_id", "C0INCIDENTS"),
        ("user_id", REQUESTER),
        ("user_name", "alice"),
        ("command", "/break-glass"),
        ("text", text),
        ("api_app_id", "A0001"),
        ("response_url", "https://hooks.slack.com/commands/T0001/1/abc"),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ])
}

fn submission(values: Value) -> Value {
    json!({
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "example"},
        "user": {"id": REQUESTER, "username": "alice", "team_id": "T0001"},
        "api_app_id": "A0001",
        "view": {"id": "VCONTROL1", "type": "modal", "callback_id": "break_glass_request",
                 "private_metadata": "{\"channel\":\"C0INCIDENTS\"}", "state": {"values": values}}
    })
}

#[tokio::test]
async fn unsigned_or_malformed_commands_submissions_and_events_change_nothing() {
    let w = World::new(&[]).await;
    let good_submission = interaction_body(&submission(json!({})));
    let event = json!({"type": "url_verification", "challenge": "abc", "token": "x"}).to_string();
    for (path, body) in [
        ("/slack/commands", command("123456789012")),
        ("/slack/interactions", good_submission.clone()),
        ("/slack/events", event.clone()),
    ] {
        let answer = w.send(path, &body, false).await;
        assert_eq!(answer.status_code, 401, "{path} unsigned");
        assert_eq!(body_of_401(&answer), "invalid request signature");
    }
    for (path, body) in [
        // No trigger: nothing can be opened.
        (
            "/slack/commands",
            form(&[
                ("team_id", "T0001"),
                ("user_id", REQUESTER),
                ("command", "/break-glass"),
            ]),
        ),
        ("/slack/commands", format!("{}&user_id=U0OTHER", command(""))),
        (
            "/slack/interactions",
            interaction_body(
                &json!({"type": "view_submission", "view": {"callback_id": "break_glass_request"}}),
            ),
        ),
        ("/slack/events", "not json".to_string()),
        (
            "/slack/events",
            r#"{"type":"url_verification","challenge":"a","challenge":"b"}"#.to_string(),
        ),
    ] {
        let answer = w.send(path, &body, true).await;
        assert_eq!(answer.status_code, 400, "{path} {body}: {}", body_of_401(&answer));
    }
    assert!(w.slack.opened_views().is_empty());
    assert!(w.slack.posts().is_empty());
    assert!(w.executions.names().is_empty());
    // Signed and whole: the challenge is answered.
    let answer = w.send("/slack/events", &event, true).await;
    assert_eq!(answer.status_code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body(&answer)).unwrap()["challenge"],
        "abc"
    );
}

fn body_of_401(r: &ApiGatewayV2httpResponse) -> String {
    body(r)
}

#[tokio::test]
async fn a_foreign_workspace_cannot_open_the_modal() {
    let w = World::new(&[]).await;
    let foreign = command("").replace("team_id=T0001", "team_id=T0OTHER");
    let answer = w.send("/slack/commands", &foreign, true).await;
    assert_eq!(answer.status_code, 200);
    assert!(text(&answer).contains("refused"), "{}", text(&answer));
    assert!(w.slack.opened_views().is_empty());
}

#[tokio::test]
async fn with_require_reason_the_button_opens_the_modal_and_starts_nothing() {
    let w = World::new(&[("REQUIRE_REASON", "true")]).await;
    let click = json!({
        "type": "block_actions",
        "team": {"id": "T0001"}, "user": {"id": REQUESTER, "username": "alice", "team_id": "T0001"},
        "api_app_id": "A0001", "trigger_id": "12466734323.1395872398.3ad0ba1d3e9e1e2d3f7d1cbb2d3f7e1e",
        "container": {"type": "message", "message_ts": "1800000001.000100", "channel_id": "C0INCIDENTS"},
        "channel": {"id": "C0INCIDENTS"}, "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
        "actions": [{"action_id": "break_glass", "block_id": "deploy_123456789012", "type": "button",
                     "value": PERMISSION_SET, "action_ts": "1800000002.000100"}]
    });
    let answer = w
        .send("/slack/interactions", &interaction_body(&click), true)
        .await;
    assert_eq!(answer.status_code, 200);
    assert!(
        w.executions.names().is_empty(),
        "nothing starts before the reason"
    );
    let opened = w.slack.opened_views();
    assert_eq!(opened.len(), 1);
    let view = &opened[0]["view"];
    assert_eq!(view["blocks"][1]["element"]["initial_option"]["value"], ACCOUNT);
    assert_eq!(
        view["blocks"][2]["element"]["initial_option"]["text"]["text"],
        "BreakGlassAdmin"
    );
    assert_eq!(view["private_metadata"], r#"{"channel":"C0INCIDENTS"}"#);
}

#[tokio::test]
async fn a_submission_with_bad_fields_is_answered_on_the_fields_and_starts_nothing() {
    let w = World::new(&[]).await;
    let values = json!({
        "account": {"account_input": {"type": "static_select", "selected_option": {"value": "999999999999"}}},
        "permission_set": {"permission_set_input": {"type": "static_select", "selected_option": {"value": PERMISSION_SET}}},
        "duration": {"duration_input": {"type": "static_select", "selected_option": {"value": "240"}}},
        "reason": {"reason_input": {"type": "plain_text_input", "value": " "}}
    });
    let answer = w
        .send(
            "/slack/interactions",
            &interaction_body(&submission(values)),
            true,
        )
        .await;
    assert_eq!(answer.status_code, 200);
    let errors: Value = serde_json::from_str(&body(&answer)).unwrap();
    assert_eq!(errors["response_action"], "errors");
    let fields: Vec<&str> = errors["errors"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["account", "duration", "reason"]);
    assert!(w.executions.names().is_empty());
    assert!(w.slack.posts().is_empty());

    // Whole and allowed: the story starts in the channel, then the execution.
    let values = json!({
        "account": {"account_input": {"type": "static_select", "selected_option": {"value": ACCOUNT}}},
        "permission_set": {"permission_set_input": {"type": "static_select", "selected_option": {"value": PERMISSION_SET}}},
        "duration": {"duration_input": {"type": "static_select", "selected_option": {"value": "30"}}},
        "reason": {"reason_input": {"type": "plain_text_input", "value": "db on fire"}}
    });
    let answer = w
        .send(
            "/slack/interactions",
            &interaction_body(&submission(values.clone())),
            true,
        )
        .await;
    assert_eq!((answer.status_code, body(&answer)), (200, String::new()));
    assert_eq!(w.executions.names().len(), 1);
    let posts = w.slack.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].channel, "C0INCIDENTS");
    assert!(posts[0].text.contains("for 30 minutes"), "{}", posts[0].text);
    // Submitted twice (the same modal): nothing new starts.
    let again = w
        .send(
            "/slack/interactions",
            &interaction_body(&submission(values)),
            true,
        )
        .await;
    assert_eq!(again.status_code, 200);
    assert_eq!(w.executions.names().len(), 1);
}

#[tokio::test]
async fn end_is_for_the_requester_or_an_admin_once_and_wakes_the_hold() {
    let w = World::new(&[]).await;
    let until = t(3600);
    w.holding(until, Some("token-1")).await;
    let said = w.press(STRANGER, END_ACTION, until).await;
    assert!(said.contains("only the person who broke glass"), "{said}");
    assert_eq!(
        w.ledger.item(&key()).unwrap().version,
        3,
        "a refusal writes nothing"
    );
    assert!(w.executions.woken().is_empty());

    let said = w.press(REQUESTER, END_ACTION, until).await;
    assert!(said.starts_with("Ending access now"), "{said}");
    assert_eq!(w.executions.woken(), ["token-1"]);
    assert_eq!(w.holder().control.ended_early.unwrap().by, REQUESTER);
    assert!(w.slack.posts().iter().any(
        |p| p.thread_ts.as_deref() == Some("1800000000.000100") && p.text.contains("ended access early")
    ));
    // A double click: nothing more.
    let said = w.press(REQUESTER, END_ACTION, until).await;
    assert!(said.contains("already ending"), "{said}");
    assert_eq!(w.executions.woken().len(), 1);
}

#[tokio::test]
async fn extend_moves_the_end_once_by_the_setting_and_never_past_the_cap() {
    let w = World::new(&[("EXTEND_MINUTES", "30")]).await;
    // Asked at -60 s for an hour; the cap is two hours after the ask.
    let until = t(3540);
    w.holding(until, None).await;
    let said = w.press(ADMIN, EXTEND_ACTION, until).await;
    assert!(said.starts_with("Extended"), "an administrator may: {said}");
    assert_eq!(w.holder().expires_at, t(3540 + 1800));
    let said = w.press(REQUESTER, EXTEND_ACTION, until).await;
    assert!(said.starts_with("Already extended"), "{said}");
    assert_eq!(w.holder().expires_at, t(3540 + 1800));
    let said = w.press(REQUESTER, EXTEND_ACTION, t(5340)).await;
    assert!(said.starts_with("Extended"), "to the cap exactly: {said}");
    assert_eq!(w.holder().expires_at, t(7140));
    let said = w.press(REQUESTER, EXTEND_ACTION, t(7140)).await;
    assert!(
        said.contains("past the longest break glass allows"),
        "refused, not clamped: {said}"
    );
    assert_eq!(w.holder().expires_at, t(7140));
    let thread_buttons: Vec<Value> = w.slack.posts().into_iter().filter_map(|p| p.blocks).collect();
    assert_eq!(
        thread_buttons.len(),
        2,
        "each extension posts the new end with its buttons"
    );
    let said = w.press(STRANGER, EXTEND_ACTION, t(7140)).await;
    assert!(said.contains("only the person"), "{said}");
}

#[tokio::test]
async fn nothing_is_controlled_once_the_hold_is_over() {
    let w = World::new(&[]).await;
    let until = t(3600);
    w.holding(until, Some("token-1")).await;
    let mut item = w.ledger.item(&key()).unwrap();
    let expected = item.version;
    item.version += 1;
    item.holders[0].control.over = true;
    w.ledger.put(&item, Some(expected)).await.unwrap();
    for action in [END_ACTION, EXTEND_ACTION] {
        let said = w.press(REQUESTER, action, until).await;
        assert!(said.contains("past its hold"), "{said}");
    }
    assert!(w.executions.woken().is_empty());
}

#[tokio::test]
async fn app_home_lists_the_users_running_grants() {
    let w = World::new(&[]).await;
    w.holding(t(3600), None).await;
    let opened = json!({"type": "event_callback", "team_id": "T0001", "api_app_id": "A0001",
        "event": {"type": "app_home_opened", "user": REQUESTER, "tab": "home", "channel": "D0001"}});
    let answer = w.send("/slack/events", &opened.to_string(), true).await;
    assert_eq!(answer.status_code, 200);
    let published = w.slack.published_views();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["user_id"], REQUESTER);
    let view = published[0]["view"].to_string();
    assert!(
        view.contains("BreakGlassAdmin") && view.contains(END_ACTION) && view.contains("db on fire"),
        "{view}"
    );
    // Somebody else's home shows none of it.
    let mut other = opened.clone();
    other["event"]["user"] = json!(STRANGER);
    w.send("/slack/events", &other.to_string(), true).await;
    let view = w.slack.published_views()[1]["view"].to_string();
    assert!(view.contains("no break-glass access"), "{view}");
}

#[tokio::test]
async fn with_require_reason_the_seeds_button_asks_too_and_a_button_that_cannot_ask_is_refused() {
    let w = World::new(&[("REQUIRE_REASON", "true")]).await;
    let seed = break_glass_testkit::seed_click(
        REQUESTER,
        "1800000000.000100",
        "https://hooks.slack.com/actions/T0001/1/abc",
    );
    let answer = w
        .send("/slack/interactions", &interaction_body(&seed), true)
        .await;
    assert_eq!(answer.status_code, 200);
    assert_eq!(
        w.slack.opened_views().len(),
        1,
        "the legacy button's trigger opens the form"
    );
    let mut without_trigger = seed.clone();
    without_trigger.as_object_mut().unwrap().remove("trigger_id");
    let answer = w
        .send("/slack/interactions", &interaction_body(&without_trigger), true)
        .await;
    assert!(text(&answer).contains("needs a reason"), "{}", text(&answer));
    assert_eq!(w.slack.opened_views().len(), 1);
    assert!(
        w.executions.names().is_empty(),
        "nothing starts without the reason"
    );
}
