//! A signed Slack click through the real handler, against Step Functions on
//! the moto server and Slack's response_url on a local stand-in.

#![allow(clippy::unwrap_used)]

use access_requested::{Config, Deps, handle};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use break_glass_adapters::executions::StepFunctions;
use break_glass_adapters::slack::SlackWebApi;
use break_glass_core::clock::{Clock, ManualClock};
use break_glass_core::config::map_env;
use break_glass_core::contract::Execution;
use break_glass_core::slack::SigningSecret;
use break_glass_testkit::slack::SlackStandIn;
use break_glass_testkit::{interaction_body, moto, seed_click, slack_headers};
use serde_json::{Value, json};

const SECRET: &str = "e2e-signing-secret";
const NOW: i64 = 1_800_000_000;

struct World {
    sdk: aws_config::SdkConfig,
    state_machine_arn: String,
    config: Config,
    secret: SigningSecret,
    executions: StepFunctions,
    slack: SlackStandIn,
    slack_api: SlackWebApi,
    clock: ManualClock,
}

impl World {
    async fn new() -> Self {
        Self::with_env(&[]).await
    }

    async fn with_users(users: Option<&'static str>) -> Self {
        match users {
            Some(users) => Self::with_env(&[("ALLOWED_SLACK_USER_IDS", users)]).await,
            None => Self::new().await,
        }
    }

    /// Our workspace is the seed's `T0001`; `extra` adds or overrides.
    async fn with_env(extra: &[(&'static str, &'static str)]) -> Self {
        let sdk = moto::sdk().await;
        let state_machine_arn = moto::state_machine(&sdk, &moto::unique("clicks")).await;
        let sm: &'static str = Box::leak(state_machine_arn.clone().into_boxed_str());
        let mut env = vec![
            ("STATE_MACHINE_ARN", sm),
            ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-12345"),
            ("ALLOWED_ACCOUNT_IDS", "123456789012"),
            (
                "ALLOWED_PERMISSION_SET_ARNS",
                "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
            ),
            ("SLACK_SIGNING_SECRET", SECRET),
            ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
        ];
        env.extend_from_slice(extra);
        let map: std::collections::HashMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::from_env(&move |k: &str| map.get(k).cloned()).unwrap();
        let slack = SlackStandIn::start("xoxb-test").await;
        Self {
            executions: StepFunctions::from_sdk(&sdk, &state_machine_arn),
            slack_api: SlackWebApi::new(slack.api_url(), None).with_hooks_url(slack.hooks_url()),
            sdk,
            state_machine_arn,
            config,
            secret: SigningSecret::new(SECRET),
            slack,
            clock: ManualClock::at_unix(NOW),
        }
    }

    async fn click(&self, event: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let deps = Deps {
            config: &self.config,
            secret: &self.secret,
            executions: &self.executions,
            slack: &self.slack_api,
            clock: &self.clock,
            rules: None,
            control: None,
        };
        handle(event, &deps).await
    }

    async fn executions(&self) -> Vec<(String, String, String)> {
        moto::executions(&self.sdk, &self.state_machine_arn).await
    }
}

/// An API Gateway HTTP API (payload 2.0) event, as Lambda receives it.
fn event(headers: &[(String, String)], body: &str, base64: bool) -> ApiGatewayV2httpRequest {
    let header_map: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_string()
    };
    serde_json::from_value(json!({
        "version": "2.0",
        "routeKey": "POST /slack/interactions",
        "rawPath": "/slack/interactions",
        "rawQueryString": "",
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": "POST", "path": "/slack/interactions", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)"},
            "requestId": "req-1", "routeKey": "POST /slack/interactions", "stage": "$default",
            "time": "30/Nov/2026:00:00:00 +0000", "timeEpoch": 1800000000000u64
        },
        "body": body,
        "isBase64Encoded": base64
    }))
    .unwrap()
}

fn signed(payload: &Value, timestamp: i64) -> (Vec<(String, String)>, String) {
    let body = interaction_body(payload);
    (slack_headers(SECRET, timestamp, body.as_bytes()), body)
}

fn body_text(response: &ApiGatewayV2httpResponse) -> String {
    match &response.body {
        Some(Body::Text(t)) => t.clone(),
        Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn ephemeral(response: &ApiGatewayV2httpResponse) -> String {
    let v: Value = serde_json::from_str(&body_text(response)).unwrap();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    assert_eq!(
        v["replace_original"], false,
        "the incident message must survive: {v}"
    );
    v["text"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_seed_message_click_starts_one_execution_with_the_contract_as_input() {
    let world = World::new().await;
    let (headers, body) = signed(
        &seed_click(
            "U0001",
            "1700000000.000100",
            "https://hooks.slack.com/actions/T/1/x",
        ),
        NOW,
    );
    let response = world.click(event(&headers, &body, true)).await;

    assert_eq!(response.status_code, 200);
    assert_eq!(
        ephemeral(&response),
        ":rotating_light: Breaking glass: 123456789012 as ps-12345, for 1 hour. Updates follow in this message's thread."
    );
    let executions = world.executions().await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, status, input) = &executions[0];
    assert_eq!(status, "RUNNING");
    assert!(name.starts_with("bg-U0001-123456789012-"), "{name}");
    let input: Value = serde_json::from_str(input).unwrap();
    let exec = Execution::from_value(input.clone()).unwrap();
    assert_eq!(exec.request.account_id.as_str(), "123456789012");
    assert_eq!(
        exec.request.permission_set_arn.as_str(),
        "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"
    );
    assert_eq!(exec.request.duration_seconds.seconds(), 3600);
    assert_eq!(exec.request.slack.channel_id, "C12345");
    assert_eq!(exec.request.slack.thread_ts, "1700000000.000100");
    assert_eq!(input["request"]["requested_at"], "2027-01-15T08:00:00Z");
    // Legacy attachments read the HTTP answer; nothing goes to response_url.
    assert!(world.slack.responses().is_empty());
}

#[tokio::test]
async fn a_double_click_starts_nothing_new_until_the_grant_has_ended() {
    let world = World::new().await;
    let click = seed_click(
        "U0001",
        "1700000000.000100",
        "https://hooks.slack.com/actions/T/1/x",
    );
    let (headers, body) = signed(&click, NOW);
    assert_eq!(world.click(event(&headers, &body, false)).await.status_code, 200);

    world.clock.advance(std::time::Duration::from_secs(2));
    let (headers, body) = signed(&click, world.clock.now().timestamp());
    let again = world.click(event(&headers, &body, false)).await;
    assert!(
        ephemeral(&again).contains("already in progress"),
        "{}",
        body_text(&again)
    );
    assert_eq!(world.executions().await.len(), 1);

    // The grant ends; the same button now starts a fresh one.
    let first = world.executions().await.remove(0).0;
    moto::stop_execution(&world.sdk, &world.state_machine_arn, &first).await;
    world.clock.advance(std::time::Duration::from_secs(60));
    let (headers, body) = signed(&click, world.clock.now().timestamp());
    let later = world.click(event(&headers, &body, false)).await;
    assert!(
        ephemeral(&later).starts_with(":rotating_light: Breaking glass"),
        "{}",
        body_text(&later)
    );
    let executions = world.executions().await;
    assert_eq!(executions.len(), 2, "{executions:?}");
    assert!(
        executions
            .iter()
            .any(|(n, s, _)| n.ends_with("-g2") && s == "RUNNING"),
        "{executions:?}"
    );
}

#[tokio::test]
async fn forged_stale_and_unsigned_clicks_are_refused_with_401_and_start_nothing() {
    let world = World::new().await;
    let click = seed_click(
        "U0001",
        "1700000000.000100",
        "https://hooks.slack.com/actions/T/1/x",
    );
    let body = interaction_body(&click);

    let forged = slack_headers("not-the-secret", NOW, body.as_bytes());
    let stale = slack_headers(SECRET, NOW - 301, body.as_bytes());
    let unsigned = vec![(
        "content-type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    )];
    let (mut tampered_headers, _) = signed(&click, NOW);
    let tampered_body = body.replace("U0001", "U0666");
    tampered_headers.push(("x-other".into(), "1".into()));

    let captured = Captured::default();
    let _guard = capture_logs(&captured);
    for (headers, body, reason) in [
        (forged, body.clone(), "signature does not match"),
        (stale, body.clone(), "301 s old"),
        (unsigned, body.clone(), "missing header x-slack-request-timestamp"),
        (tampered_headers, tampered_body, "signature does not match"),
    ] {
        let response = world.click(event(&headers, &body, false)).await;
        assert_eq!(response.status_code, 401, "{reason}");
        // Opaque to whoever sent it: not which check failed, not our clock.
        assert_eq!(body_text(&response), "invalid request signature", "{reason}");
        assert!(captured.text().contains(reason), "{reason} is logged");
    }
    assert!(world.executions().await.is_empty());
}

#[tokio::test]
async fn header_names_in_any_case_verify() {
    let world = World::new().await;
    let (headers, body) = signed(
        &seed_click("U0001", "1.1", "https://hooks.slack.com/actions/T/1/x"),
        NOW,
    );
    let shouty: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| {
            (
                k.split('-')
                    .map(|w| w[..1].to_uppercase() + &w[1..])
                    .collect::<Vec<_>>()
                    .join("-"),
                v,
            )
        })
        .collect();
    assert!(shouty.iter().any(|(k, _)| k == "X-Slack-Signature"));
    assert_eq!(world.click(event(&shouty, &body, false)).await.status_code, 200);
    assert_eq!(world.executions().await.len(), 1);
}

#[tokio::test]
async fn out_of_policy_clicks_are_told_why_and_start_nothing() {
    let world = World::with_users(Some("U0001")).await;
    let mut wrong_account = seed_click("U0001", "1.1", "https://hooks.slack.com/actions/T/1/x");
    wrong_account["callback_id"] = json!("deployment_999999999999_abc");
    let stranger = seed_click("U0BAD", "1.1", "https://hooks.slack.com/actions/T/1/x");
    let mut wrong_set = seed_click("U0001", "1.1", "https://hooks.slack.com/actions/T/1/x");
    wrong_set["actions"][0]["value"] = json!("arn:aws:sso:::permissionSet/ssoins-12345/ps-admin");

    for (click, reason) in [
        (
            wrong_account,
            "account 999999999999 is not on the break-glass allow list",
        ),
        (stranger, "you (U0BAD) are not on the break-glass allow list"),
        (
            wrong_set,
            "permission set arn:aws:sso:::permissionSet/ssoins-12345/ps-admin is not on the break-glass allow list",
        ),
    ] {
        let (headers, body) = signed(&click, NOW);
        let response = world.click(event(&headers, &body, false)).await;
        assert_eq!(response.status_code, 200);
        assert_eq!(
            ephemeral(&response),
            format!(":no_entry: Break glass refused: {reason}. Nothing was granted.")
        );
    }
    assert!(world.executions().await.is_empty());
}

#[tokio::test]
async fn malformed_payloads_get_400_with_a_reason_and_the_retry_button_is_ignored() {
    let world = World::new().await;
    let mut no_callback = seed_click("U0001", "1.1", "https://hooks.slack.com/actions/T/1/x");
    no_callback["callback_id"] = json!("deployment_abc");
    let (headers, body) = signed(&no_callback, NOW);
    let response = world.click(event(&headers, &body, false)).await;
    assert_eq!(response.status_code, 400);
    assert!(
        body_text(&response).contains("no 12-digit account id"),
        "{}",
        body_text(&response)
    );

    let garbage = "payload=%7B%7B%7B";
    let response = world
        .click(event(
            &slack_headers(SECRET, NOW, garbage.as_bytes()),
            garbage,
            false,
        ))
        .await;
    assert_eq!(response.status_code, 400);

    let mut retry = seed_click("U0001", "1.1", "https://hooks.slack.com/actions/T/1/x");
    retry["actions"] = json!([{"name": "retry", "type": "button", "value": "retry"}]);
    let (headers, body) = signed(&retry, NOW);
    let response = world.click(event(&headers, &body, false)).await;
    assert_eq!(response.status_code, 200);
    assert_eq!(body_text(&response), "");

    let not_base64 = world.click(event(&headers, "%%%not base64", false)).await;
    assert_eq!(
        not_base64.status_code, 401,
        "unencoded garbage fails the signature"
    );
    let mut encoded = event(&headers, &body, false);
    encoded.is_base64_encoded = true;
    encoded.body = Some("***".into());
    let response = world.click(encoded).await;
    assert_eq!(response.status_code, 400);
    assert!(body_text(&response).contains("base64"));
    assert!(world.executions().await.is_empty());
}

#[tokio::test]
async fn block_kit_clicks_are_answered_through_response_url() {
    let world = World::new().await;
    let value = json!({
        "account_id": "123456789012",
        "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
        "duration_minutes": 30
    });
    let click = json!({
        "type": "block_actions",
        "user": {"id": "U0002", "username": "bob", "team_id": "T0001"},
        "team": {"id": "T0001", "domain": "example"},
        "container": {"type": "message", "message_ts": "1700000100.000100", "channel_id": "C777", "is_ephemeral": false},
        "channel": {"id": "C777", "name": "incidents"},
        "message": {"type": "message", "ts": "1700000100.000100"},
        "response_url": world.slack.response_url("1"),
        "trigger_id": "4.5.6", "api_app_id": "A1", "state": {"values": {}},
        "actions": [{"type": "button", "action_id": "break_glass", "block_id": "bg", "value": value.to_string(), "action_ts": "1700000101.000300"}]
    });
    let (headers, body) = signed(&click, NOW);
    let response = world.click(event(&headers, &body, true)).await;
    assert_eq!(response.status_code, 200);
    let responses = world.slack.responses();
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_eq!(
        responses[0]["text"],
        ":rotating_light: Breaking glass: 123456789012 as ps-12345, for 30 minutes. Updates follow in this message's thread."
    );
    assert_eq!(responses[0]["replace_original"], false);
    let executions = world.executions().await;
    assert_eq!(executions.len(), 1);
    let input: Value = serde_json::from_str(&executions[0].2).unwrap();
    assert_eq!(input["request"]["duration_seconds"], 1800);
}

#[tokio::test]
async fn an_unreachable_step_functions_tells_the_clicker_nothing_was_granted() {
    let world = World::new().await;
    // A port nothing listens on: a real connection failure, not a mock.
    let dead = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(moto::credentials())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let executions = StepFunctions::from_sdk(&dead, &world.state_machine_arn);
    let deps = Deps {
        config: &world.config,
        secret: &world.secret,
        executions: &executions,
        slack: &world.slack_api,
        clock: &world.clock,
        rules: None,
        control: None,
    };
    let (headers, body) = signed(
        &seed_click("U0001", "1.1", "https://hooks.slack.com/actions/T/1/x"),
        NOW,
    );
    let response = handle(event(&headers, &body, false), &deps).await;
    assert_eq!(response.status_code, 200);
    assert!(ephemeral(&response).contains("could not be started"));
    assert!(ephemeral(&response).contains("Nothing was granted"));
}

#[test]
fn config_names_the_first_missing_variable() {
    let err = Config::from_env(&map_env([(
        "STATE_MACHINE_ARN",
        "arn:aws:states:us-east-1:1:stateMachine:x",
    )]))
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "environment variable SSO_INSTANCE_ARN is required but not set"
    );
}

/// Collects everything the handler logs, at every level.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Sends this thread's logs (JSON, every level) to `captured` while the
/// guard lives.
fn capture_logs(captured: &Captured) -> tracing::subscriber::DefaultGuard {
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // Another test's thread may have cached a callsite's interest as
    // "never" (it had no subscriber) while this one was registering: ask
    // every callsite again, now that this thread has one.
    tracing::callsite::rebuild_interest_cache();
    guard
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_signatures_bodies_and_response_urls_never_reach_the_logs() {
    let world = World::new().await;
    let captured = Captured::default();
    let _guard = capture_logs(&captured);

    let response_url = "https://hooks.slack.com/actions/T0001/5550001/SeCrEtToKeN";
    let click = seed_click("U0001", "1.1", response_url);
    let (headers, body) = signed(&click, NOW);
    let signature = headers
        .iter()
        .find(|(k, _)| k == "x-slack-signature")
        .unwrap()
        .1
        .clone();
    world.click(event(&headers, &body, true)).await;
    let forged = slack_headers("wrong", NOW, body.as_bytes());
    let forged_signature = forged
        .iter()
        .find(|(k, _)| k == "x-slack-signature")
        .unwrap()
        .1
        .clone();
    world.click(event(&forged, &body, false)).await;
    let mut outsider = click.clone();
    outsider["callback_id"] = json!("deployment_999999999999_abc");
    let (headers, body2) = signed(&outsider, NOW);
    world.click(event(&headers, &body2, false)).await;

    let logs = captured.text();
    assert!(
        logs.contains("break glass started"),
        "the handler did log: {logs}"
    );
    assert!(logs.contains("refused by policy"));
    for secret in [
        SECRET,
        signature.as_str(),
        forged_signature.as_str(),
        "SeCrEtToKeN",
        "hooks.slack.com",
        "payload=",
        "legacy-verification-token",
    ] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs:\n{logs}");
    }
}

/// A Block Kit click on a JSON-valued button, in workspace `T0001`.
fn block_click(response_url: &str) -> Value {
    let value = json!({
        "account_id": "123456789012",
        "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
    });
    json!({
        "type": "block_actions",
        "user": {"id": "U0002", "username": "bob", "team_id": "T0001"},
        "team": {"id": "T0001", "domain": "example"},
        "enterprise": null,
        "is_enterprise_install": false,
        "container": {"type": "message", "message_ts": "1700000100.000100", "channel_id": "C777", "is_ephemeral": false},
        "channel": {"id": "C777", "name": "incidents"},
        "message": {"type": "message", "ts": "1700000100.000100"},
        "response_url": response_url,
        "trigger_id": "4.5.6", "api_app_id": "A0BREAKGLASS", "state": {"values": {}},
        "actions": [{"type": "button", "action_id": "break_glass", "block_id": "bg", "value": value.to_string(), "action_ts": "1700000101.000300"}]
    })
}

#[tokio::test]
async fn clicks_from_other_workspaces_and_organisations_are_refused_and_start_nothing() {
    let world = World::with_env(&[
        ("ALLOWED_SLACK_ENTERPRISE_IDS", "E0OURS"),
        ("ALLOWED_SLACK_TEAM_IDS", "T0001,T0002"),
    ])
    .await;
    let url = world.slack.response_url("1");
    let mut other_team = seed_click("U0001", "1.1", &url);
    other_team["team"] = json!({"id": "T0PARTNER", "domain": "partner"});
    // Slack Connect: the channel (and team.id) is ours, the clicker is not.
    let mut connect = block_click(&url);
    connect["user"]["team_id"] = json!("T0PARTNER");
    let mut other_org = block_click(&url);
    other_org["enterprise"] = json!({"id": "E0THEIRS", "name": "Partner Inc"});
    let mut other_org_on_team = seed_click("U0001", "1.1", &url);
    other_org_on_team["team"]["enterprise_id"] = json!("E0THEIRS");
    let mut our_org = block_click(&url);
    our_org["enterprise"] = json!({"id": "E0OURS", "name": "Us"});
    our_org["team"]["enterprise_id"] = json!("E0OURS");

    for (click, reason) in [
        (other_team, "Slack workspace T0PARTNER is not ours"),
        (connect, "Slack workspace T0PARTNER is not ours"),
        (other_org, "Slack organisation E0THEIRS is not ours"),
        (other_org_on_team, "Slack organisation E0THEIRS is not ours"),
    ] {
        let (headers, body) = signed(&click, NOW);
        let response = world.click(event(&headers, &body, false)).await;
        assert_eq!(response.status_code, 200, "{reason}");
        assert_eq!(
            ephemeral(&response),
            format!(
                ":no_entry: Break glass refused: this click did not come from our Slack: {reason}. Nothing was granted."
            )
        );
    }
    assert!(world.executions().await.is_empty());
    // Block Kit clickers were told through response_url (theirs is Slack's).
    let told: Vec<String> = world
        .slack
        .responses()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told.iter().all(|t| t.contains("did not come from our Slack")));

    // Our organisation, our team: started.
    let (headers, body) = signed(&our_org, NOW);
    let response = world.click(event(&headers, &body, false)).await;
    assert_eq!(response.status_code, 200);
    assert_eq!(world.executions().await.len(), 1);
}

#[tokio::test]
async fn the_app_is_checked_when_slack_app_id_is_set() {
    let world = World::with_env(&[("SLACK_APP_ID", "A0BREAKGLASS")]).await;
    let url = world.slack.response_url("1");
    let mut other_app = block_click(&url);
    other_app["api_app_id"] = json!("A0OTHER");
    let (headers, body) = signed(&other_app, NOW);
    let response = world.click(event(&headers, &body, false)).await;
    assert_eq!(
        ephemeral(&response),
        ":no_entry: Break glass refused: this click did not come through the break-glass Slack app. Nothing was granted."
    );
    // Legacy attachments carry no api_app_id: with SLACK_APP_ID set, refused.
    let (headers, body) = signed(&seed_click("U0001", "1.1", &url), NOW);
    let response = world.click(event(&headers, &body, false)).await;
    assert!(ephemeral(&response).contains("break-glass Slack app"));
    assert!(world.executions().await.is_empty());

    let (headers, body) = signed(&block_click(&url), NOW);
    world.click(event(&headers, &body, false)).await;
    assert_eq!(world.executions().await.len(), 1);
}

#[tokio::test]
async fn what_slack_would_never_send_is_a_400_that_echoes_little_and_posts_nowhere() {
    let world = World::new().await;
    let captured = Captured::default();
    let _guard = capture_logs(&captured);
    let seed = seed_click("U0001", "1.1", "https://hooks.slack.com/actions/T0001/1/x");
    let seed_body = interaction_body(&seed);

    let foreign_url = block_click(&format!("{}/actions/T0001/1/Zp4hQ2", world.slack.hooks_url()));
    let long = "Z".repeat(2000);
    let mut long_callback = seed.clone();
    long_callback["callback_id"] = json!(format!("deployment_{long}"));
    let mut array_user = seed.clone();
    array_user["user"] = json!(["U0001", "alice"]);

    let bodies = [
        (format!("{seed_body}&{seed_body}"), "more than one payload field"),
        (format!("pay%6Coad=%7B%7D&{seed_body}"), "percent-encoding"),
        (interaction_body(&foreign_url), "not a Slack response URL"),
        (interaction_body(&long_callback), "no 12-digit account id"),
        (interaction_body(&array_user), "user is not an object"),
        (
            seed_body.replacen("%22type%22", "%22type%22%3A%22x%22%2C%22type%22", 1),
            "duplicate key",
        ),
    ];
    for (body, reason) in bodies {
        let headers = slack_headers(SECRET, NOW, body.as_bytes());
        let response = world.click(event(&headers, &body, false)).await;
        assert_eq!(response.status_code, 400, "{reason}");
        let text = body_text(&response);
        assert!(text.contains(reason), "{reason}: {text}");
        assert!(text.len() < 160, "{reason}: {} characters", text.len());
    }
    let logs = captured.text();
    assert!(!logs.contains(&long[..60]), "long values are clipped in the log");
    assert!(
        !logs.contains(&world.slack.hooks_url()),
        "the refused URL is not logged"
    );
    assert!(world.executions().await.is_empty());
    assert!(
        world.slack.responses().is_empty(),
        "nothing posted to the stand-in's own URL"
    );
}

#[test]
fn an_allow_list_set_but_empty_stops_the_function_naming_it() {
    let base = [
        ("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:1:stateMachine:x"),
        ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-12345"),
        ("ALLOWED_ACCOUNT_IDS", "123456789012"),
        (
            "ALLOWED_PERMISSION_SET_ARNS",
            "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
        ),
        ("SLACK_SIGNING_SECRET", SECRET),
        ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
    ];
    let config = |extra: (&str, &str)| {
        let mut map: std::collections::HashMap<String, String> =
            base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert(extra.0.into(), extra.1.into());
        Config::from_env(&move |k: &str| map.get(k).cloned())
    };
    for (var, value) in [
        ("ALLOWED_SLACK_USER_IDS", ","),
        ("ALLOWED_SLACK_USER_IDS", ""),
        ("ALLOWED_SLACK_TEAM_IDS", ""),
        ("ALLOWED_ACCOUNT_IDS", " , "),
    ] {
        let err = config((var, value)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "environment variable {var} is invalid: it is set but lists nothing; an empty allow list is a mistake, not a policy"
            )
        );
    }
    let mut without_teams: Vec<(&str, &str)> = base.to_vec();
    without_teams.retain(|(k, _)| *k != "ALLOWED_SLACK_TEAM_IDS");
    let map: std::collections::HashMap<String, String> = without_teams
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        Config::from_env(&move |k: &str| map.get(k).cloned())
            .unwrap_err()
            .to_string(),
        "environment variable ALLOWED_SLACK_TEAM_IDS is required but not set"
    );
}
