//! The whole access-requested decision under attack: a signed, valid click
//! (legacy attachments or Block Kit) is mutated field by field and byte by
//! byte, signed again (or not), and handed to the real handler. Whatever
//! arrives, the handler answers without panicking, nothing outside policy
//! starts an execution, and nothing is posted anywhere but Slack's hooks.
//!
//! "Outside policy" is judged independently of the parser: by a lenient
//! reading of the same body (serde_json, form_urlencoded) and by what the
//! generator knows it did (a duplicated key or field means nothing starts).
//!
//! `BREAK_GLASS_FUZZ_CASES` sets the number of runs (default 5000, a few
//! seconds); see the README for a long run.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use access_requested::{Config, Deps, handle};
use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use break_glass_core::clock::ManualClock;
use break_glass_core::contract::Execution;
use break_glass_core::domain::SlackUserId;
use break_glass_core::ports::{
    ExecutionStatus, Executions, PortError, PortErrorKind, Slack, SlackProfile, StartOutcome,
};
use break_glass_core::slack::SigningSecret;
use break_glass_testkit::seed_click;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

const SECRET: &str = "fuzz-signing-secret";
const NOW: i64 = 1_800_000_000;
const HOOK: &str = "https://hooks.slack.com/actions/T0001/1/Zp4hQ2";
const HOOKS_PREFIX: &str = "https://hooks.slack.com/";
const ARN: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
const TEAMS: [&str; 2] = ["T0001", "T0002"];
const ORGS: [&str; 1] = ["E0OURS"];
const USERS: [&str; 2] = ["U0001", "U0002"];
const APP: &str = "A0BREAKGLASS";

// ------------------------------------------------------------------ fakes

#[derive(Debug, Default)]
struct Recorder {
    started: Mutex<Vec<(String, String)>>,
    responses: Mutex<Vec<String>>,
}

#[async_trait]
impl Executions for Recorder {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError> {
        let mut started = self.started.lock().unwrap();
        if started.iter().any(|(n, _)| n == name) {
            return Ok(StartOutcome::AlreadyExists);
        }
        started.push((name.to_string(), input.to_string()));
        Ok(StartOutcome::Started {
            execution_arn: format!("arn:aws:states:us-east-1:123456789012:execution:fuzz:{name}"),
        })
    }
    async fn status(&self, name: &str) -> Result<Option<ExecutionStatus>, PortError> {
        let started = self.started.lock().unwrap();
        Ok(started
            .iter()
            .any(|(n, _)| n == name)
            .then_some(ExecutionStatus::Running))
    }
}

#[async_trait]
impl Slack for Recorder {
    async fn user_profile(&self, _: &SlackUserId) -> Result<SlackProfile, PortError> {
        Err(PortError::new(
            PortErrorKind::Other,
            "slack",
            "users.info",
            "not in this test",
        ))
    }
    async fn post_message(&self, _: &str, _: Option<&str>, _: &str) -> Result<(), PortError> {
        Ok(())
    }
    async fn respond_ephemeral(&self, response_url: &str, _: &str) -> Result<(), PortError> {
        self.responses.lock().unwrap().push(response_url.to_string());
        Ok(())
    }
}

// -------------------------------------------------------------- the config

/// The deployment under test: our two teams and one organisation, and,
/// depending on the case, an app id and a user allow list.
#[derive(Debug, Clone, Copy)]
struct Settings {
    app: bool,
    users: bool,
}

fn config(settings: Settings) -> Config {
    let mut env = vec![
        (
            "STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:fuzz".to_string(),
        ),
        ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-12345".into()),
        ("ALLOWED_ACCOUNT_IDS", "123456789012".into()),
        ("ALLOWED_PERMISSION_SET_ARNS", ARN.into()),
        ("SLACK_SIGNING_SECRET", SECRET.into()),
        ("ALLOWED_SLACK_TEAM_IDS", TEAMS.join(",")),
        ("ALLOWED_SLACK_ENTERPRISE_IDS", ORGS.join(",")),
        ("MAX_DURATION_MINUTES", "240".into()),
    ];
    if settings.app {
        env.push(("SLACK_APP_ID", APP.into()));
    }
    if settings.users {
        env.push(("ALLOWED_SLACK_USER_IDS", USERS.join(",")));
    }
    let map: std::collections::HashMap<String, String> =
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Config::from_env(&move |k: &str| map.get(k).cloned()).unwrap()
}

// ------------------------------------------------------------- the seeds

fn legacy_seed() -> Value {
    seed_click("U0001", "1700000000.000100", HOOK)
}

fn block_seed() -> Value {
    let value = json!({"account_id": "123456789012", "permission_set_arn": ARN, "duration_minutes": 30});
    json!({
        "type": "block_actions",
        "user": {"id": "U0002", "username": "bob", "name": "bob", "team_id": "T0001"},
        "api_app_id": APP,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1700000100.000100", "channel_id": "C777", "is_ephemeral": false},
        "trigger_id": "4.5.6",
        "team": {"id": "T0001", "domain": "example"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": "C777", "name": "incidents"},
        "message": {"type": "message", "ts": "1700000100.000100"},
        "state": {"values": {}},
        "response_url": HOOK,
        "actions": [{"type": "button", "action_id": "break_glass", "block_id": "incident_123456789012_db",
                     "text": {"type": "plain_text", "text": "Break glass"},
                     "value": value.to_string(), "action_ts": "1700000101.000300"}]
    })
}

// ---------------------------------------------------------- the mutations

/// A value written at a path (`None`: the key removed).
type Choice = Option<Value>;

fn button(value: Value) -> Choice {
    Some(Value::String(value.to_string()))
}

/// Paths Slack fills in, and what else could be there: ours, foreign,
/// misshapen, the wrong JSON type, absent.
fn field_mutations() -> Vec<(&'static [&'static str], Vec<Choice>)> {
    let s = |v: &str| Some(json!(v));
    vec![
        (
            &["team", "id"],
            vec![
                s("T0001"),
                s("T0002"),
                s("T0PARTNER"),
                s("t0001"),
                s(""),
                Some(json!(7)),
                Some(Value::Null),
                None,
            ],
        ),
        (
            &["team"],
            vec![
                Some(json!(["T0001"])),
                s("T0001"),
                Some(Value::Null),
                None,
                Some(json!({"id": "T0002"})),
            ],
        ),
        (
            &["user", "team_id"],
            vec![
                s("T0001"),
                s("T0002"),
                s("T0PARTNER"),
                s("E0OURS"),
                Some(Value::Null),
                None,
            ],
        ),
        (
            &["enterprise"],
            vec![
                Some(json!({"id": "E0OURS", "name": "Us"})),
                Some(json!({"id": "E0THEIRS", "name": "Them"})),
                Some(json!({"id": ""})),
                Some(Value::Null),
                s("E0OURS"),
                Some(json!([{"id": "E0OURS"}])),
            ],
        ),
        (
            &["team", "enterprise_id"],
            vec![s("E0OURS"), s("E0THEIRS"), s(""), Some(Value::Null)],
        ),
        (&["user", "enterprise_id"], vec![s("E0OURS"), s("E0THEIRS")]),
        (
            &["user", "id"],
            vec![
                s("U0001"),
                s("U0002"),
                s("U0BAD"),
                s("W0001"),
                s("u0001"),
                s(""),
                Some(json!(5)),
                None,
            ],
        ),
        (
            &["user"],
            vec![
                Some(json!(["U0001", "alice"])),
                s("U0001"),
                Some(Value::Null),
                Some(json!({"id": "U0001"})),
            ],
        ),
        (
            &["api_app_id"],
            vec![
                s(APP),
                s("A0OTHER"),
                s(""),
                Some(Value::Null),
                Some(json!(7)),
                None,
            ],
        ),
        (
            &["actions", "0", "type"],
            vec![s("button"), s("static_select"), s("overflow"), s(""), None],
        ),
        (
            &["actions", "0", "name"],
            vec![s("break_glass"), s("retry"), s("BREAK_GLASS")],
        ),
        (
            &["actions", "0", "action_id"],
            vec![s("break_glass"), s("retry"), s("break_glass ")],
        ),
        (
            &["actions"],
            vec![
                Some(json!([])),
                Some(json!({})),
                s("break_glass"),
                Some(json!([[]])),
            ],
        ),
        (
            &["callback_id"],
            vec![
                s("deployment_123456789012_abc"),
                s("deployment_999999999999_abc"),
                s("x_123456789012_210987654321"),
                s("deployment_abc"),
                Some(json!(123456789012u64)),
            ],
        ),
        (
            &["actions", "0", "block_id"],
            vec![
                s("incident_123456789012_db"),
                s("incident_999999999999_db"),
                s("x_123456789012_210987654321"),
                s("bg"),
                s(""),
                None,
            ],
        ),
        (
            &["actions", "0", "value"],
            vec![
                s(ARN),
                s("arn:aws:sso:::permissionSet/ssoins-12345/ps-admin"),
                s("arn:aws:sso:::permissionSet/ssoins-other/ps-12345"),
                s("retry"),
                button(json!({"account_id": "123456789012", "permission_set_arn": ARN})),
                button(
                    json!({"account_id": "123456789012", "permission_set_arn": ARN, "duration_minutes": 240}),
                ),
                button(
                    json!({"account_id": "123456789012", "permission_set_arn": ARN, "duration_minutes": 241}),
                ),
                button(
                    json!({"account_id": "123456789012", "permission_set_arn": ARN, "duration_minutes": 100000}),
                ),
                button(json!({"account_id": "999999999999", "permission_set_arn": ARN})),
                button(json!({"account_id": "123456789012", "permission_set_arn": ARN, "admin": true})),
                button(json!({"account_id": 123456789012u64, "permission_set_arn": ARN})),
                Some(json!(7)),
            ],
        ),
        (
            &["response_url"],
            vec![
                s(HOOK),
                s("http://hooks.slack.com/actions/T0001/1/x"),
                s("https://evil.example/actions/T0001/1/x"),
                s("https://hooks.slack.com.evil.example/x"),
                s("https://hooks.slack.com@evil.example/x"),
                s("https://hooks.slack.com/actions?next=https://evil.example"),
                s("http://127.0.0.1:9/actions/T0001/1/x"),
                s(""),
                Some(json!(5)),
                None,
            ],
        ),
        (
            &["message_ts"],
            vec![
                s("1700000000.000100"),
                s("1.1"),
                s("yesterday"),
                s(""),
                Some(json!(1.5)),
                None,
            ],
        ),
        (
            &["container", "message_ts"],
            vec![s("1700000100.000100"), s("1.1"), s("x"), None],
        ),
        (&["container", "channel_id"], vec![s("C777"), s("U777"), None]),
        (
            &["channel", "id"],
            vec![s("C12345"), s("G1"), s("D1"), s("U1"), s("c1"), s(""), None],
        ),
        (&["channel"], vec![Some(json!(["C1"])), Some(Value::Null), None]),
        (
            &["original_message"],
            vec![
                Some(json!([])),
                Some(json!({"ts": "1.1", "thread_ts": "1.0"})),
                Some(Value::Null),
            ],
        ),
        (
            &["type"],
            vec![
                s("interactive_message"),
                s("block_actions"),
                s("view_submission"),
                Some(json!(1)),
                None,
            ],
        ),
        (&["action_ts"], vec![s("1.2"), s("nope")]),
        (&["actions", "0", "action_ts"], vec![s("1.2"), s("nope"), None]),
    ]
}

/// Writes `choice` at `path`, where the path exists far enough to say.
fn apply(value: &mut Value, path: &[&str], choice: &Choice) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut target = value;
    for key in parents {
        target = match target {
            Value::Object(o) => match o.get_mut(*key) {
                Some(next) => next,
                None => return,
            },
            Value::Array(a) => match key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(next) => next,
                None => return,
            },
            _ => return,
        };
    }
    if let Value::Object(o) = target {
        match choice {
            Some(v) => {
                o.insert(last.to_string(), v.clone());
            }
            None => {
                o.remove(*last);
            }
        }
    }
}

/// What is done to the encoded body.
#[derive(Debug, Clone)]
enum BodyMutation {
    None,
    /// The same payload field twice.
    DuplicatePayload,
    /// A second payload under a percent-encoded name, before or after ours,
    /// carrying a click by a stranger.
    EncodedName {
        before: bool,
    },
    /// A second top-level key, first or last, in the JSON text.
    InjectedKey {
        key: &'static str,
        before: bool,
    },
    /// A byte changed before signing: garbage, but signed.
    FlipThenSign {
        index: prop::sample::Index,
        xor: u8,
    },
    /// A byte changed after signing: must fail the signature.
    SignThenFlip {
        index: prop::sample::Index,
        xor: u8,
    },
    /// Signed for another moment (stale or from the future).
    Skewed {
        seconds: i64,
    },
}

fn body_mutation() -> impl Strategy<Value = BodyMutation> {
    prop_oneof![
        6 => Just(BodyMutation::None),
        1 => Just(BodyMutation::DuplicatePayload),
        1 => any::<bool>().prop_map(|before| BodyMutation::EncodedName { before }),
        2 => (prop::sample::select(vec!["team", "user", "enterprise", "response_url", "api_app_id"]), any::<bool>())
            .prop_map(|(key, before)| BodyMutation::InjectedKey { key, before }),
        1 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(index, xor)| BodyMutation::FlipThenSign { index, xor }),
        1 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(index, xor)| BodyMutation::SignThenFlip { index, xor }),
        1 => prop_oneof![Just(-301i64), Just(301), -5000i64..5000].prop_map(|seconds| BodyMutation::Skewed { seconds }),
    ]
}

fn injected_value(key: &str) -> Value {
    match key {
        "team" => json!({"id": "T0PARTNER"}),
        "user" => json!({"id": "U0BAD", "team_id": "T0PARTNER"}),
        "enterprise" => json!({"id": "E0THEIRS"}),
        "response_url" => json!("https://evil.example/x"),
        _ => json!("A0OTHER"),
    }
}

#[derive(Debug, Clone)]
struct Case {
    settings: Settings,
    block_kit: bool,
    fields: Vec<(prop::sample::Index, prop::sample::Index)>,
    body: BodyMutation,
    base64: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..5),
        body_mutation(),
        any::<bool>(),
    )
        .prop_map(|(app, users, block_kit, fields, body, base64)| Case {
            settings: Settings { app, users },
            block_kit,
            fields,
            body,
            base64,
        })
}

// -------------------------------------------------------------- the oracle

/// What a lenient reader of the body would need to see for the click to be
/// inside policy. Anything the handler starts must pass this.
fn inside_policy(body: &[u8], settings: Settings, started: &Execution) -> Result<(), String> {
    let payloads: Vec<String> = form_urlencoded::parse(body)
        .filter(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .collect();
    let [payload] = payloads.as_slice() else {
        return Err(format!("{} payload fields", payloads.len()));
    };
    let p: Value = serde_json::from_str(payload).map_err(|e| format!("not JSON: {e}"))?;
    let text = |path: &[&str]| -> Option<String> {
        let mut v = &p;
        for key in path {
            v = match v {
                Value::Object(o) => o.get(*key)?,
                Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
    };
    let teams: Vec<String> = [text(&["team", "id"]), text(&["user", "team_id"])]
        .into_iter()
        .flatten()
        .collect();
    if teams.is_empty() {
        return Err("no team".into());
    }
    if let Some(t) = teams.iter().find(|t| !TEAMS.contains(&t.as_str())) {
        return Err(format!("foreign team {t}"));
    }
    for org in [
        text(&["enterprise", "id"]),
        text(&["team", "enterprise_id"]),
        text(&["user", "enterprise_id"]),
    ]
    .into_iter()
    .flatten()
    {
        if !ORGS.contains(&org.as_str()) {
            return Err(format!("foreign organisation {org}"));
        }
    }
    if settings.app && text(&["api_app_id"]).as_deref() != Some(APP) {
        return Err("another app".into());
    }
    let user = text(&["user", "id"]).ok_or("no user")?;
    if settings.users && !USERS.contains(&user.as_str()) {
        return Err(format!("user {user} not allowed"));
    }
    let url = text(&["response_url"]).ok_or("no response_url")?;
    if !url.starts_with(HOOKS_PREFIX) {
        return Err(format!("response_url {url}"));
    }
    let actions = p["actions"].as_array().ok_or("no actions")?;
    if actions.len() != 1 || actions[0]["type"] != "button" {
        return Err("not exactly one button".into());
    }
    let name_key = if p["type"] == "block_actions" {
        "action_id"
    } else {
        "name"
    };
    if actions[0][name_key] != "break_glass" {
        return Err("not our button".into());
    }
    let r = &started.request;
    if r.account_id.as_str() != "123456789012" || r.permission_set_arn.as_str() != ARN {
        return Err(format!("started {} / {}", r.account_id, r.permission_set_arn));
    }
    if r.duration_seconds.minutes() > 240 {
        return Err(format!("started for {}", r.duration_seconds));
    }
    if r.requester.slack_user_id.as_str() != user || r.slack.response_url != url {
        return Err("started for someone or somewhere else".into());
    }
    if !teams.contains(&r.requester.slack_team_id) {
        return Err(format!("recorded under team {}", r.requester.slack_team_id));
    }
    Ok(())
}

// ---------------------------------------------------------------- the run

struct Built {
    body: Vec<u8>,
    timestamp: i64,
    signature: String,
    /// The generator made the body ambiguous (a field or key twice, a name
    /// in disguise) or unsigned: nothing may start whatever it says.
    must_refuse: bool,
}

fn build(case: &Case, table: &[(&'static [&'static str], Vec<Choice>)]) -> Built {
    let mut click = if case.block_kit {
        block_seed()
    } else {
        legacy_seed()
    };
    for (row, choice) in &case.fields {
        let (path, choices) = &table[row.index(table.len())];
        apply(&mut click, path, &choices[choice.index(choices.len())]);
    }
    let secret = SigningSecret::new(SECRET);
    let mut must_refuse = false;
    let mut timestamp = NOW;
    let mut json_text = click.to_string();
    if let BodyMutation::InjectedKey { key, before } = &case.body {
        let had = click.get(*key).is_some();
        let extra = format!("{}:{}", json!(key), injected_value(key));
        if let Some(rest) = json_text.strip_prefix('{') {
            let sep = if rest.starts_with('}') { "" } else { "," };
            json_text = if *before {
                format!("{{{extra}{sep}{rest}")
            } else {
                let inner = &rest[..rest.len().saturating_sub(1)];
                format!("{{{inner}{sep}{extra}}}")
            };
            // Twice the same key is ambiguous; a new key is judged on what
            // it says, like any other field.
            must_refuse |= had;
        }
    }
    let form = |text: &str| {
        format!(
            "payload={}",
            form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
        )
    };
    let mut body = form(&json_text).into_bytes();
    match &case.body {
        BodyMutation::DuplicatePayload => {
            let again = body.clone();
            body.push(b'&');
            body.extend_from_slice(&again);
            must_refuse = true;
        }
        BodyMutation::EncodedName { before } => {
            let mut stranger = click.clone();
            apply(&mut stranger, &["user", "id"], &Some(json!("U0BAD")));
            let sneaky = form(&stranger.to_string()).replacen("payload=", "pay%6Coad=", 1);
            body = if *before {
                format!("{sneaky}&{}", String::from_utf8_lossy(&body)).into_bytes()
            } else {
                format!("{}&{sneaky}", String::from_utf8_lossy(&body)).into_bytes()
            };
            must_refuse = true;
        }
        BodyMutation::FlipThenSign { index, xor } => {
            let i = index.index(body.len());
            body[i] ^= xor;
        }
        BodyMutation::Skewed { seconds } => {
            timestamp = NOW + seconds;
            must_refuse |= seconds.abs() > 300;
        }
        _ => {}
    }
    let signature = secret.sign(timestamp, &body);
    if let BodyMutation::SignThenFlip { index, xor } = &case.body {
        let i = index.index(body.len());
        body[i] ^= xor;
        must_refuse = true;
    }
    Built {
        body,
        timestamp,
        signature,
        must_refuse,
    }
}

fn event(built: &Built, base64: bool) -> ApiGatewayV2httpRequest {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-slack-request-timestamp", built.timestamp.to_string()),
        ("x-slack-signature", built.signature.clone()),
        ("content-type", "application/x-www-form-urlencoded".to_string()),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    let mut event = ApiGatewayV2httpRequest::default();
    event.headers = headers;
    event.is_base64_encoded = base64 || std::str::from_utf8(&built.body).is_err();
    event.body = Some(if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.encode(&built.body)
    } else {
        String::from_utf8(built.body.clone()).unwrap()
    });
    event
}

fn cases() -> u32 {
    std::env::var("BREAK_GLASS_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000)
}

#[test]
fn nothing_outside_policy_starts_and_nothing_panics() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let table = field_mutations();
    let configs = [false, true]
        .into_iter()
        .flat_map(|app| [false, true].map(|users| ((app, users), config(Settings { app, users }))))
        .collect::<Vec<_>>();
    let secret = SigningSecret::new(SECRET);
    let clock = ManualClock::at_unix(NOW);
    let started_at = std::time::Instant::now();
    let outcomes = Mutex::new(BTreeSet::new());
    let started_total = AtomicU32::new(0);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let result = runner.run(&case(), |case| {
        let built = build(&case, &table);
        let Settings { app, users } = case.settings;
        let config = &configs.iter().find(|(k, _)| *k == (app, users)).unwrap().1;
        let recorder = Recorder::default();
        let deps = Deps {
            config,
            secret: &secret,
            executions: &recorder,
            slack: &recorder,
            clock: &clock,
            rules: None,
            control: None,
        };
        let response = runtime.block_on(handle(event(&built, case.base64), &deps));
        prop_assert!(
            [200, 400, 401].contains(&response.status_code),
            "HTTP {}",
            response.status_code
        );
        outcomes.lock().unwrap().insert(response.status_code);
        let started = recorder.started.lock().unwrap().clone();
        prop_assert!(started.len() <= 1, "one click, at most one execution");
        for url in recorder.responses.lock().unwrap().iter() {
            prop_assert!(url.starts_with(HOOKS_PREFIX), "posted to {url}");
        }
        if let Some((_, input)) = started.first() {
            prop_assert!(!built.must_refuse, "started from an ambiguous or unsigned body");
            let execution = Execution::from_value(serde_json::from_str(input).unwrap()).unwrap();
            if let Err(why) = inside_policy(&built.body, case.settings, &execution) {
                return Err(TestCaseError::fail(format!("started outside policy: {why}")));
            }
            started_total.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let elapsed = started_at.elapsed();
    println!(
        "fuzz: {} cases in {:.2} s, {} started, answers {:?}",
        cases(),
        elapsed.as_secs_f64(),
        started_total.load(Ordering::Relaxed),
        outcomes.lock().unwrap()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must still reach the far side: some clicks start.
    let started_total = started_total.load(Ordering::Relaxed);
    assert!(
        cases() < 200 || started_total > cases() / 50,
        "only {started_total} of {} cases started anything: the seeds no longer pass",
        cases()
    );
}
