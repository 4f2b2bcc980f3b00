//! The new routes under attack: signed slash commands, Events API bodies
//! and modal submissions, mutated field by field and byte by byte, through
//! the real handler. Whatever arrives: no panic, an answer of 200, 400 or
//! 401, nothing started from a command or an event, and every execution a
//! submission starts is inside policy as judged from its own input (our
//! workspace, an allowed account and permission set, a duration offered, a
//! reason).
//!
//! `BREAK_GLASS_FUZZ_CASES` sets the number of runs (default 3000).

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use access_requested::{Config, ControlDeps, Deps, handle};
use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use break_glass_core::clock::ManualClock;
use break_glass_core::contract::Execution;
use break_glass_core::domain::SlackUserId;
use break_glass_core::ports::{ExecutionStatus, Executions, PortError, Slack, SlackProfile, StartOutcome};
use break_glass_core::slack::SigningSecret;
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::names::NamesOnly;
use break_glass_testkit::{interaction_body, slack_headers};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

const SECRET: &str = "fuzz-control-secret";
const NOW: i64 = 1_800_000_000;
const ACCOUNT: &str = "123456789012";
const ARN: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

#[derive(Debug, Default)]
struct Recorder {
    started: Mutex<Vec<String>>,
}

#[async_trait]
impl Executions for Recorder {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError> {
        let mut started = self.started.lock().unwrap();
        if started.iter().any(|i| i.contains(name)) {
            return Ok(StartOutcome::AlreadyExists);
        }
        started.push(input.to_string());
        Ok(StartOutcome::Started {
            execution_arn: name.to_string(),
        })
    }
    async fn status(&self, _: &str) -> Result<Option<ExecutionStatus>, PortError> {
        Ok(Some(ExecutionStatus::Running))
    }
}

/// Slack that accepts everything and remembers nothing.
#[derive(Debug)]
struct QuietSlack;

#[async_trait]
impl Slack for QuietSlack {
    async fn user_profile(&self, _: &SlackUserId) -> Result<SlackProfile, PortError> {
        Ok(SlackProfile::default())
    }
    async fn post_message(&self, _: &str, _: Option<&str>, _: &str) -> Result<(), PortError> {
        Ok(())
    }
    async fn respond_ephemeral(&self, url: &str, _: &str) -> Result<(), PortError> {
        assert!(
            url.starts_with("https://hooks.slack.com/"),
            "answered elsewhere: {url}"
        );
        Ok(())
    }
    async fn start_thread(&self, _: &str, _: &str, _: &Value) -> Result<String, PortError> {
        Ok("1800000009.000100".into())
    }
    async fn open_view(&self, _: &str, _: &Value) -> Result<(), PortError> {
        Ok(())
    }
    async fn publish_home(&self, _: &SlackUserId, _: &Value) -> Result<(), PortError> {
        Ok(())
    }
}

fn config() -> Config {
    let env: std::collections::HashMap<&str, &str> = [
        (
            "STATE_MACHINE_ARN",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:break-glass",
        ),
        ("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-12345"),
        ("ALLOWED_ACCOUNT_IDS", ACCOUNT),
        ("ALLOWED_PERMISSION_SET_ARNS", ARN),
        ("SLACK_SIGNING_SECRET", SECRET),
        ("ALLOWED_SLACK_TEAM_IDS", "T0001"),
        ("GRANT_LEDGER_TABLE", "ledger"),
        ("SLACK_BOT_TOKEN", "xoxb-fuzz"),
        ("MAX_DURATION_MINUTES", "120"),
    ]
    .into_iter()
    .collect();
    Config::from_env(&move |k: &str| env.get(k).map(|v| v.to_string())).unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Command,
    Event,
    Submission,
}

fn command_pairs() -> Vec<(String, String)> {
    [
        ("team_id", "T0001"),
        ("channel_id", "C0INCIDENTS"),
        ("user_id", "U0001"),
        ("user_name", "alice"),
        ("command", "/break-glass"),
        ("text", "123456789012 BreakGlassAdmin 30m db down"),
        ("api_app_id", "A0001"),
        ("response_url", "https://hooks.slack.com/commands/T0001/1/abc"),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn event_seed() -> Value {
    json!({"type": "event_callback", "team_id": "T0001", "api_app_id": "A0001",
           "event": {"type": "app_home_opened", "user": "U0001", "tab": "home", "channel": "D0001"}})
}

fn submission_seed() -> Value {
    json!({
        "type": "view_submission",
        "team": {"id": "T0001"},
        "user": {"id": "U0001", "username": "alice", "team_id": "T0001"},
        "api_app_id": "A0001",
        "view": {"id": "VFUZZ0001", "type": "modal", "callback_id": "break_glass_request",
                 "private_metadata": "{\"channel\":\"C0INCIDENTS\"}",
                 "state": {"values": {
                     "account": {"account_input": {"type": "static_select", "selected_option": {"value": ACCOUNT}}},
                     "permission_set": {"permission_set_input": {"type": "static_select", "selected_option": {"value": ARN}}},
                     "duration": {"duration_input": {"type": "static_select", "selected_option": {"value": "30"}}},
                     "reason": {"reason_input": {"type": "plain_text_input", "value": "db down"}},
                     "incident": {"incident_input": {"type": "url_text_input", "value": "https://inc.example/1"}}
                 }}}
    })
}

/// Values a mutated field may take: Slack's shapes, others' ids, wrong
/// types, empty, huge, control characters, markup.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("T0002")),
        Just(json!("E0OTHER")),
        Just(json!("U0002")),
        Just(json!("999999999999")),
        Just(json!("arn:aws:sso:::permissionSet/ssoins-99999/ps-1")),
        Just(json!("240")),
        Just(json!("0")),
        Just(json!("")),
        Just(json!(null)),
        Just(json!(42)),
        Just(json!(["a"])),
        Just(json!({"id": "T0002"})),
        Just(json!("https://evil.example/x")),
        Just(json!("<script>|x>")),
        Just(json!("a\u{0}b")),
        Just(Value::String("x".repeat(5000))),
        "[ -~]{0,40}".prop_map(Value::String),
    ]
}

/// Every path to a string or object inside `v`.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(o) = v {
        for (k, child) in o {
            at.push(k.clone());
            out.push(at.clone());
            paths(child, at, out);
            at.pop();
        }
    }
}

fn set(v: &mut Value, path: &[String], to: Value) {
    let mut cur = v;
    for (i, k) in path.iter().enumerate() {
        let Value::Object(o) = cur else { return };
        if i + 1 == path.len() {
            o.insert(k.clone(), to);
            return;
        }
        match o.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    route: Route,
    /// (which path, by index modulo the paths there are; what it becomes)
    fields: Vec<(usize, Value)>,
    /// Drop a field instead (index modulo).
    drop: Option<usize>,
    /// Flip one byte of the body after building (index modulo, xor).
    flip: Option<(usize, u8)>,
    /// Sign it (most cases), or not.
    signed: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(Route::Command), Just(Route::Event), Just(Route::Submission)],
        prop::collection::vec((any::<usize>(), replacement()), 0..4),
        prop::option::of(any::<usize>()),
        prop::option::weighted(0.2, (any::<usize>(), 1u8..=255)),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(route, fields, drop, flip, signed)| Case {
            route,
            fields,
            drop,
            flip,
            signed,
        })
}

fn body(case: &Case) -> Vec<u8> {
    let mut bytes = match case.route {
        Route::Command => {
            let mut pairs = command_pairs();
            for (i, to) in &case.fields {
                let n = *i % pairs.len();
                pairs[n].1 = match to {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
            }
            if let Some(d) = case.drop {
                let n = d % pairs.len();
                pairs.remove(n);
            }
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                s.append_pair(k, v);
            }
            s.finish().into_bytes()
        }
        Route::Event | Route::Submission => {
            let mut v = if matches!(case.route, Route::Event) {
                event_seed()
            } else {
                submission_seed()
            };
            let mut all = Vec::new();
            paths(&v, &mut Vec::new(), &mut all);
            for (i, to) in &case.fields {
                let p = all[*i % all.len()].clone();
                set(&mut v, &p, to.clone());
            }
            if let Some(d) = case.drop {
                let p = all[d % all.len()].clone();
                set(&mut v, &p, Value::Null);
            }
            if matches!(case.route, Route::Event) {
                v.to_string().into_bytes()
            } else {
                interaction_body(&v).into_bytes()
            }
        }
    };
    if let Some((i, x)) = case.flip
        && !bytes.is_empty()
    {
        let n = i % bytes.len();
        bytes[n] ^= x;
    }
    bytes
}

/// Inside policy, judged from the execution's own input.
fn inside_policy(started: &str) -> Result<(), String> {
    let e: Execution = serde_json::from_str(started).map_err(|e| e.to_string())?;
    let r = &e.request;
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what}: {started}"))
        }
    };
    check(r.requester.slack_team_id == "T0001", "foreign workspace")?;
    check(r.account_id.as_str() == ACCOUNT, "account")?;
    check(r.permission_set_arn.as_str() == ARN, "permission set")?;
    check(r.duration_seconds.minutes() <= 120, "duration")?;
    check(
        r.reason.as_deref().is_some_and(|r| !r.trim().is_empty()),
        "reason",
    )?;
    check(
        r.incident
            .as_deref()
            .is_none_or(|i| i.starts_with("https://") && !i.contains(['<', '>', '|'])),
        "incident",
    )?;
    Ok(())
}

#[test]
fn mutated_commands_events_and_submissions_start_nothing_outside_policy() {
    let cases: u32 = std::env::var("BREAK_GLASS_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = config();
    let secret = SigningSecret::new(SECRET);
    let clock = ManualClock::at_unix(NOW);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let started_total = std::cell::Cell::new(0usize);
    runner
        .run(&case(), |case| {
            let recorder = Recorder::default();
            let ledger = InMemoryLedger::default();
            let deps = Deps {
                config: &config,
                secret: &secret,
                executions: &recorder,
                slack: &QuietSlack,
                clock: &clock,
                rules: None,
                control: config.control.as_ref().map(|c| ControlDeps {
                    config: c,
                    ledger: &ledger,
                    identity_center: &NamesOnly,
                }),
            };
            let body = body(&case);
            let path = match case.route {
                Route::Command => "/slack/commands",
                Route::Event => "/slack/events",
                Route::Submission => "/slack/interactions",
            };
            let headers: serde_json::Map<String, Value> = if case.signed {
                slack_headers(SECRET, NOW, &body)
                    .into_iter()
                    .map(|(k, v)| (k, json!(v)))
                    .collect()
            } else {
                serde_json::Map::new()
            };
            let event: ApiGatewayV2httpRequest = serde_json::from_value(json!({
                "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path, "rawQueryString": "",
                "headers": headers,
                "requestContext": {"http": {"method": "POST", "path": path}},
                "body": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &body),
                "isBase64Encoded": true
            }))
            .unwrap();
            let answer = runtime.block_on(handle(event, &deps));
            prop_assert!(
                [200, 400, 401].contains(&answer.status_code),
                "HTTP {}",
                answer.status_code
            );
            if !case.signed {
                prop_assert_eq!(answer.status_code, 401);
            }
            let started = recorder.started.lock().unwrap().clone();
            if !matches!(case.route, Route::Submission) {
                prop_assert!(started.is_empty(), "a {:?} started {:?}", case.route, started);
            }
            for s in &started {
                prop_assert!(inside_policy(s).is_ok(), "{}", inside_policy(s).unwrap_err());
            }
            started_total.set(started_total.get() + started.len());
            Ok(())
        })
        .unwrap();
    // The generator must reach the interesting part: valid submissions start.
    let started_total = started_total.get();
    assert!(
        started_total > 0,
        "no case started anything: the seeds never got through"
    );
    println!("{cases} cases, {started_total} executions started, all inside policy");
}
