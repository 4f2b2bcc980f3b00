//! The part of the Step Functions API the functions use (StartExecution,
//! DescribeExecution, and StopExecution for people), in its AWS JSON 1.0
//! protocol, served by break-glass-local over the local state machine.
//! With `AWS_ENDPOINT_URL_SFN` pointing here, the real Lambda binaries talk
//! to the local runner exactly as they talk to Step Functions in AWS.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use break_glass_core::ports::{Executions, StartOutcome};
use serde_json::{Value, json};

use crate::runner::{ExecutionView, LocalStateMachine};

pub const STATE_MACHINE_ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:break-glass-local";

fn execution_arn(name: &str) -> String {
    format!(
        "{}:{name}",
        STATE_MACHINE_ARN.replacen(":stateMachine:", ":execution:", 1)
    )
}

fn error(kind: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.0")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    ([("content-type", "application/x-amz-json-1.0")], body.to_string()).into_response()
}

fn epoch(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn summary(v: &ExecutionView) -> Value {
    json!({
        "executionArn": execution_arn(&v.name),
        "stateMachineArn": STATE_MACHINE_ARN,
        "name": v.name,
        "status": v.status,
        "startDate": epoch(v.started_at),
    })
}

fn name_of(request: &Value) -> String {
    request["executionArn"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .unwrap_or_default()
        .to_string()
}

pub async fn serve(
    State(machine): State<Arc<LocalStateMachine>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error("SerializationException", "body is not JSON");
    };
    match target.strip_prefix("AWSStepFunctions.").unwrap_or_default() {
        "StartExecution" => {
            let name = request["name"].as_str().unwrap_or_default();
            let input = request["input"].as_str().unwrap_or("{}");
            match machine.start(name, input).await {
                Ok(StartOutcome::Started { .. }) => {
                    ok(json!({"executionArn": execution_arn(name), "startDate": epoch(chrono::Utc::now())}))
                }
                Ok(StartOutcome::AlreadyExists) => error(
                    "ExecutionAlreadyExists",
                    &format!("Execution Already Exists: '{}'", execution_arn(name)),
                ),
                Err(e) => error("InvalidExecutionInput", &e.to_string()),
            }
        }
        "DescribeExecution" => match machine.execution(&name_of(&request)) {
            Some(v) => {
                let mut out = summary(&v);
                out["input"] = json!(v.input.to_string());
                if let Some(output) = &v.output {
                    out["output"] = json!(output.to_string());
                }
                ok(out)
            }
            None => error("ExecutionDoesNotExist", "Execution Does Not Exist"),
        },
        "StopExecution" => match machine.stop(&name_of(&request)) {
            Some(v) => ok(json!({"stopDate": epoch(
                v.history.last().map(|h| h.timestamp).unwrap_or_else(chrono::Utc::now)
            )})),
            None => error("ExecutionDoesNotExist", "Execution Does Not Exist"),
        },
        "SendTaskSuccess" => {
            let token = request["taskToken"].as_str().unwrap_or_default();
            let output = request["output"].as_str().unwrap_or("{}");
            match machine.send_task_success(token, output).await {
                Ok(true) => ok(json!({})),
                Ok(false) => error("TaskTimedOut", "Task Timed Out"),
                Err(e) => error("InvalidOutput", &e.to_string()),
            }
        }
        other => error(
            "UnknownOperationException",
            &format!("{other} is not served locally"),
        ),
    }
}
