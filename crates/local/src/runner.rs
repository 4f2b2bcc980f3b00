//! The local state machine: runs the ASL definition with the real handlers
//! in-process, and is the [`Executions`] port access-requested starts
//! executions through (and grant/revoke read holders from), exactly as the
//! Lambdas use Step Functions.

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use break_glass_core::clock::Clock;
use break_glass_core::contract::{Execution, Grant};
use break_glass_core::ports::{
    Alerts, AuditTrail, Directory, ExecutionStatus, Executions, IdentityCenter, Mailer, PortError,
    PortErrorKind, RunningExecution, Slack, StartOutcome,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::asl::{self, Definition, Ending, HistoryEvent, Invoker, TaskError};

/// The template variables the Terraform module substitutes, and the local
/// resource each one names.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("grant_access_arn", "local:grant-access"),
    ("revoke_access_arn", "local:revoke-access"),
    ("report_on_access_arn", "local:report-on-access"),
];

/// What `templatefile()` does for our definition: `${name}` → value.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

/// Everything the three step functions need, shared by every execution.
#[derive(Debug, Clone)]
pub struct Functions {
    pub grant: grant_access::Config,
    pub revoke: revoke_access::Config,
    pub report: report_on_access::Config,
    pub identity_center: Arc<dyn IdentityCenter>,
    /// What revoke-access talks to; the same as `identity_center` except in
    /// failure drills.
    pub revoke_identity_center: Arc<dyn IdentityCenter>,
    pub directory: Arc<dyn Directory>,
    pub slack: Arc<dyn Slack>,
    pub trail: Arc<dyn AuditTrail>,
    pub mailer: Arc<dyn Mailer>,
    pub alerts: Option<Arc<dyn Alerts>>,
    pub clock: Arc<dyn Clock>,
}

/// Runs a task resource: in-process ([`Functions`]) or as a real Lambda
/// binary ([`crate::binaries::LambdaBinaries`]).
#[async_trait]
pub trait Tasks: Send + Sync + std::fmt::Debug {
    /// `executions` is the state machine itself, for holders.
    async fn run(
        &self,
        resource: &str,
        input: Value,
        executions: &dyn Executions,
    ) -> Result<Value, TaskError>;
}

struct Bound<'a> {
    tasks: &'a dyn Tasks,
    executions: &'a dyn Executions,
}

#[async_trait]
impl Invoker for Bound<'_> {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.tasks.run(resource, input, self.executions).await
    }
}

fn task_error<E: break_glass_core::ErrorType + std::fmt::Display>(e: E) -> TaskError {
    // What a Lambda error becomes in Step Functions: Error = errorType,
    // Cause = the JSON of the error.
    TaskError::new(
        e.error_type(),
        json!({"errorType": e.error_type(), "errorMessage": e.to_string()}).to_string(),
    )
}

#[async_trait]
impl Tasks for Functions {
    async fn run(
        &self,
        resource: &str,
        input: Value,
        executions: &dyn Executions,
    ) -> Result<Value, TaskError> {
        let f = self;
        match resource {
            "local:grant-access" => {
                let deps = grant_access::Deps {
                    config: &f.grant,
                    identity_center: f.identity_center.as_ref(),
                    directory: f.directory.as_ref(),
                    executions,
                    slack: f.slack.as_ref(),
                    clock: f.clock.as_ref(),
                };
                grant_access::handle(input, &deps).await.map_err(task_error)
            }
            "local:revoke-access" => {
                let deps = revoke_access::Deps {
                    config: &f.revoke,
                    identity_center: f.revoke_identity_center.as_ref(),
                    executions,
                    slack: f.slack.as_ref(),
                    clock: f.clock.as_ref(),
                };
                revoke_access::handle(input, &deps).await.map_err(task_error)
            }
            "local:report-on-access" => {
                let deps = report_on_access::Deps {
                    config: &f.report,
                    trail: f.trail.as_ref(),
                    mailer: f.mailer.as_ref(),
                    slack: f.slack.as_ref(),
                    alerts: f.alerts.as_deref(),
                    clock: f.clock.as_ref(),
                };
                report_on_access::handle(input, &deps).await.map_err(task_error)
            }
            other => Err(TaskError::new(
                "States.Runtime",
                format!("unknown resource {other}"),
            )),
        }
    }
}

/// One execution as people and tests see it (`GET /executions`).
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionView {
    pub name: String,
    pub status: String,
    pub current_state: Option<String>,
    pub started_at: DateTime<Utc>,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<TaskError>,
    pub history: Vec<HistoryEvent>,
}

#[derive(Debug)]
pub struct LocalStateMachine {
    definition: Definition,
    tasks: Arc<dyn Tasks>,
    clock: Arc<dyn Clock>,
    time_scale: f64,
    records: Mutex<Vec<ExecutionView>>,
    me: Weak<LocalStateMachine>,
}

impl LocalStateMachine {
    pub fn new(
        definition: Definition,
        tasks: Arc<dyn Tasks>,
        clock: Arc<dyn Clock>,
        time_scale: f64,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            definition,
            tasks,
            clock,
            time_scale,
            records: Mutex::new(Vec::new()),
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ExecutionView>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn executions(&self) -> Vec<ExecutionView> {
        self.lock().clone()
    }

    pub fn execution(&self, name: &str) -> Option<ExecutionView> {
        self.lock().iter().find(|e| e.name == name).cloned()
    }

    fn record(&self, name: &str, event: HistoryEvent) {
        let mut records = self.lock();
        let Some(r) = records.iter_mut().find(|r| r.name == name) else {
            return;
        };
        match event.kind {
            "StateEntered" => r.current_state = Some(event.state.clone()),
            "ExecutionSucceeded" => {
                r.status = "SUCCEEDED".into();
                r.output = Some(event.detail.clone());
                r.current_state = None;
            }
            "ExecutionFailed" => {
                r.status = "FAILED".into();
                r.error = serde_json::from_value::<Value>(event.detail.clone())
                    .ok()
                    .map(|d| {
                        TaskError::new(
                            d["error"].as_str().unwrap_or_default(),
                            d["cause"].as_str().unwrap_or_default(),
                        )
                    });
                r.current_state = None;
            }
            _ => {}
        }
        r.history.push(event);
    }

    /// The grant section the execution's grant step produced, as Step
    /// Functions' history would show it.
    fn grant_of(record: &ExecutionView) -> Option<Grant> {
        record
            .history
            .iter()
            .rev()
            .filter(|e| e.kind == "TaskSucceeded")
            .find_map(|e| Execution::from_value(e.detail.clone()).ok().and_then(|x| x.grant))
    }
}

#[async_trait]
impl Executions for LocalStateMachine {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError> {
        let parsed: Value = serde_json::from_str(input)
            .map_err(|e| PortError::new(PortErrorKind::Invalid, "local", "StartExecution", e.to_string()))?;
        {
            let mut records = self.lock();
            if records.iter().any(|r| r.name == name) {
                return Ok(StartOutcome::AlreadyExists);
            }
            records.push(ExecutionView {
                name: name.to_string(),
                status: "RUNNING".into(),
                current_state: None,
                started_at: self.clock.now(),
                input: parsed.clone(),
                output: None,
                error: None,
                history: Vec::new(),
            });
        }
        let Some(me) = self.me.upgrade() else {
            return Err(PortError::new(
                PortErrorKind::Other,
                "local",
                "StartExecution",
                "state machine is shutting down",
            ));
        };
        let execution_name = name.to_string();
        tokio::spawn(async move {
            let context = json!({
                "Execution": {"Name": execution_name, "Id": format!("local:execution:break-glass:{execution_name}"), "Input": parsed, "StartTime": me.clock.now().to_rfc3339()},
                "StateMachine": {"Name": "break-glass", "Id": "local:stateMachine:break-glass"}
            });
            let bound = Bound {
                tasks: me.tasks.as_ref(),
                executions: me.as_ref(),
            };
            let recorder = |event: HistoryEvent| me.record(&execution_name, event);
            let ending = asl::execute(
                &me.definition,
                parsed.clone(),
                &context,
                &bound,
                me.clock.as_ref(),
                me.time_scale,
                &recorder,
            )
            .await;
            if let Ending::Failed(err) = &ending {
                tracing::warn!(execution = %execution_name, error = %err.error, "execution failed");
            }
        });
        Ok(StartOutcome::Started {
            execution_arn: format!("local:execution:break-glass:{name}"),
        })
    }

    async fn status(&self, name: &str) -> Result<Option<ExecutionStatus>, PortError> {
        Ok(self.execution(name).map(|r| {
            if r.status == "RUNNING" {
                ExecutionStatus::Running
            } else {
                ExecutionStatus::Ended(r.status)
            }
        }))
    }

    async fn running(&self) -> Result<Vec<RunningExecution>, PortError> {
        Ok(self
            .lock()
            .iter()
            .filter(|r| r.status == "RUNNING")
            .map(|r| RunningExecution {
                name: r.name.clone(),
                input: r.input.to_string(),
                grant: Self::grant_of(r),
            })
            .collect())
    }
}
