//! Measures the access-requested binary's cold start: from process start to
//! its first answered Slack click (through a Lambda Runtime API stand-in,
//! with Step Functions served locally), and its peak resident memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use break_glass_core::clock::{Clock, SystemClock};
use break_glass_testkit::runtime_api::RuntimeApi;
use break_glass_testkit::{interaction_body, seed_click, slack_headers};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::asl::{Definition, TaskError};
use crate::runner::{LocalStateMachine, Tasks};
use crate::server::{Answerer, Endpoint, router};

#[derive(Debug)]
struct NoTasks;

#[async_trait]
impl Tasks for NoTasks {
    async fn run(&self, resource: &str, _: Value) -> Result<Value, TaskError> {
        Err(TaskError::new(
            "States.Runtime",
            format!("{resource} is not run while measuring"),
        ))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    pub ready: Duration,
    pub answered: Duration,
    pub peak_rss_kib: u64,
}

const SECRET: &str = "cold-start-secret";

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// One cold start of `binary` (the release access-requested).
pub async fn measure(binary: &std::path::Path) -> Result<Measurement, String> {
    let definition = Definition::parse(
        r#"{"StartAt":"Hold","States":{"Hold":{"Type":"Wait","Seconds":3600,"End":true}}}"#,
    )
    .map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let machine = LocalStateMachine::new(definition, Arc::new(NoTasks), clock.clone(), 1.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    // Only its Step Functions API is used; the Slack answerer is never called.
    let answerer = Answerer::InProcess {
        config: Arc::new(
            access_requested::Config::from_env(&|k: &str| env_value(k, &url)).map_err(|e| e.to_string())?,
        ),
        secret: Arc::new(break_glass_core::slack::SigningSecret::new(SECRET)),
        slack: Arc::new(break_glass_adapters::slack::SlackWebApi::new(
            "http://127.0.0.1:9",
            None,
        )),
        clock: clock.clone(),
        rules: None,
        control: None,
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(Endpoint { machine, answerer })).await;
    });

    let api = RuntimeApi::start("access-requested").await;
    let body = interaction_body(&seed_click(
        "U0COLD",
        "1764460800.000100",
        "https://hooks.slack.com/actions/T/1/x",
    ));
    let headers: serde_json::Map<String, Value> =
        slack_headers(SECRET, clock.now().timestamp(), body.as_bytes())
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
    let event = json!({
        "version": "2.0", "routeKey": "POST /slack/interactions", "rawPath": "/slack/interactions",
        "headers": headers, "body": body, "isBase64Encoded": false,
        "requestContext": {"http": {"method": "POST", "path": "/slack/interactions", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Slackbot"},
                           "requestId": "cold", "routeKey": "POST /slack/interactions", "stage": "$default", "accountId": "123456789012", "apiId": "local"}
    });

    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(api.lambda_environment("access-requested"))
        .envs(
            [
                "STATE_MACHINE_ARN",
                "SSO_INSTANCE_ARN",
                "ALLOWED_ACCOUNT_IDS",
                "ALLOWED_PERMISSION_SET_ARNS",
                "ALLOWED_SLACK_TEAM_IDS",
                "SLACK_SIGNING_SECRET",
            ]
            .map(|k| (k, env_value(k, &url).unwrap_or_default())),
        )
        .envs([
            ("AWS_ENDPOINT_URL_SFN", url.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let answer = api.invoke(event, Duration::from_secs(10)).await;
    let answered = started.elapsed();
    let pid = child.id().unwrap_or_default();
    let peak = peak_rss_kib(pid);
    let _ = child.kill().await;
    let answer = answer.map_err(|e| format!("{}: {}", e.error_type, e.error_message))?;
    if answer["statusCode"] != 200
        || !answer["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Breaking glass")
    {
        return Err(format!("unexpected answer: {answer}"));
    }
    let ready = api.first_poll().map(|t| t - started).unwrap_or_default();
    Ok(Measurement {
        ready,
        answered,
        peak_rss_kib: peak,
    })
}

fn env_value(k: &str, _url: &str) -> Option<String> {
    Some(
        match k {
            "STATE_MACHINE_ARN" => crate::sfn_api::STATE_MACHINE_ARN,
            "SSO_INSTANCE_ARN" => "arn:aws:sso:::instance/ssoins-12345",
            "ALLOWED_ACCOUNT_IDS" => "123456789012",
            "ALLOWED_PERMISSION_SET_ARNS" => "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
            // The seed click's workspace.
            "ALLOWED_SLACK_TEAM_IDS" => "T0001",
            "SLACK_SIGNING_SECRET" => SECRET,
            _ => return None,
        }
        .to_string(),
    )
}
