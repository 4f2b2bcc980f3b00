//! The local state machine: runs the ASL definition with the real handlers
//! in-process, and is the [`Executions`] port access-requested starts
//! executions through, exactly as the Lambda uses Step Functions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use break_glass_core::clock::Clock;
use break_glass_core::ports::{
    Alerts, AuditTrail, Directory, ExecutionStatus, Executions, IdentityCenter, Ledger, Mailer, PortError,
    PortErrorKind, SessionPolicy, Slack, StartOutcome,
};
use break_glass_core::requester::PolicyRules;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::AbortHandle;

use crate::asl::{self, Definition, Ending, HistoryEvent, Invoker, TaskError};

/// The template variables the Terraform module substitutes, and the local
/// resource each one names.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("grant_access_arn", "local:grant-access"),
    ("revoke_access_arn", "local:revoke-access"),
    ("report_on_access_arn", "local:report-on-access"),
    // In AWS a function of its own (`<name>-notify`, with its own reserved
    // concurrency, so alerts never queue behind 15-minute reports) running
    // the report-on-access binary; here the same handler.
    ("notify_arn", "local:report-on-access"),
    ("hold_access_arn", "local:hold-access"),
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
    pub hold: hold_access::Config,
    pub report: report_on_access::Config,
    pub identity_center: Arc<dyn IdentityCenter>,
    /// What revoke-access talks to; the same as `identity_center` except in
    /// failure drills.
    pub revoke_identity_center: Arc<dyn IdentityCenter>,
    pub directory: Arc<dyn Directory>,
    /// The grant ledger grant-access and revoke-access share.
    pub ledger: Arc<dyn Ledger>,
    pub slack: Arc<dyn Slack>,
    pub trail: Arc<dyn AuditTrail>,
    pub mailer: Arc<dyn Mailer>,
    pub alerts: Option<Arc<dyn Alerts>>,
    pub clock: Arc<dyn Clock>,
    /// The policy's rules grant-access checks again ([`grant_rules`]).
    pub grant_rules: Arc<PolicyRules>,
    /// The session revocation policy revoke-access ends sessions in, when
    /// its configuration says to (`AUDIT_ROLE_NAME`).
    pub session_policy: Option<Arc<dyn SessionPolicy>>,
}

/// grant-access's rules as its `main.rs` builds them: from
/// `BREAK_GLASS_POLICY`, or read from the SSM parameter through `sdk`.
pub fn grant_rules(config: &grant_access::Config, sdk: &aws_config::SdkConfig) -> Arc<PolicyRules> {
    Arc::new(PolicyRules::from_setting(
        config.policy.as_ref(),
        &config.instance,
        config.rule_limits().max_duration,
        |name| Box::new(break_glass_adapters::policy::SsmParameter::from_sdk(sdk, name)),
    ))
}

/// Runs a task resource: in-process ([`Functions`]) or as a real Lambda
/// binary ([`crate::binaries::LambdaBinaries`]).
#[async_trait]
pub trait Tasks: Send + Sync + std::fmt::Debug {
    async fn run(&self, resource: &str, input: Value) -> Result<Value, TaskError>;
}

struct Bound<'a> {
    tasks: &'a dyn Tasks,
    callbacks: &'a asl::Callbacks,
}

#[async_trait]
impl Invoker for Bound<'_> {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.tasks.run(resource, input).await
    }
    fn callbacks(&self) -> Option<&asl::Callbacks> {
        Some(self.callbacks)
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
    async fn run(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let f = self;
        match resource {
            "local:grant-access" => {
                let deps = grant_access::Deps {
                    config: &f.grant,
                    identity_center: f.identity_center.as_ref(),
                    directory: f.directory.as_ref(),
                    ledger: f.ledger.as_ref(),
                    slack: f.slack.as_ref(),
                    clock: f.clock.as_ref(),
                    rules: f.grant_rules.as_ref(),
                };
                grant_access::handle(input, &deps).await.map_err(task_error)
            }
            "local:revoke-access" => {
                let deps = revoke_access::Deps {
                    config: &f.revoke,
                    identity_center: f.revoke_identity_center.as_ref(),
                    ledger: f.ledger.as_ref(),
                    slack: f.slack.as_ref(),
                    clock: f.clock.as_ref(),
                    session_policy: f.session_policy.as_deref(),
                };
                revoke_access::handle(input, &deps).await.map_err(task_error)
            }
            "local:hold-access" => {
                let deps = hold_access::Deps {
                    ledger: f.ledger.as_ref(),
                    clock: f.clock.as_ref(),
                    time_scale: f.hold.time_scale,
                };
                hold_access::handle(input, &deps).await.map_err(task_error)
            }
            "local:report-on-access" => {
                let deps = report_on_access::Deps {
                    config: &f.report,
                    trail: f.trail.as_ref(),
                    insights: None,
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

/// An execution that ended without finishing (what EventBridge's "Step
/// Functions Execution Status Change" tells of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub name: String,
    /// `ABORTED` or `FAILED`.
    pub status: String,
}

#[derive(Debug, Default)]
struct Records {
    executions: Vec<ExecutionView>,
    /// The tasks of running executions, so that they can be stopped.
    running: HashMap<String, AbortHandle>,
    /// Who hears of executions ending ABORTED or FAILED.
    listeners: Vec<UnboundedSender<Ended>>,
}

#[derive(Debug)]
pub struct LocalStateMachine {
    definition: Definition,
    tasks: Arc<dyn Tasks>,
    clock: Arc<dyn Clock>,
    time_scale: f64,
    records: Mutex<Records>,
    /// The callback tasks waiting for `SendTaskSuccess`.
    callbacks: asl::Callbacks,
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
            records: Mutex::new(Records::default()),
            callbacks: asl::Callbacks::default(),
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The scale local time runs at (600 = ten hours in a minute).
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    pub fn executions(&self) -> Vec<ExecutionView> {
        self.lock().executions.clone()
    }

    pub fn execution(&self, name: &str) -> Option<ExecutionView> {
        self.lock().executions.iter().find(|e| e.name == name).cloned()
    }

    /// Hears of every execution that ends ABORTED or FAILED from now on.
    pub fn subscribe(&self) -> UnboundedReceiver<Ended> {
        let (tx, rx) = unbounded_channel();
        self.lock().listeners.push(tx);
        rx
    }

    /// What `StopExecution` does: a running execution is aborted where it
    /// stands (no further states, no Catch) and its task dropped. `None` for
    /// an unknown execution; one that has ended already is left as it is.
    pub fn stop(&self, name: &str) -> Option<ExecutionView> {
        let mut records = self.lock();
        let records = &mut *records;
        let r = records.executions.iter_mut().find(|r| r.name == name)?;
        if r.status != "RUNNING" {
            return Some(r.clone());
        }
        if let Some(task) = records.running.remove(name) {
            task.abort();
        }
        r.status = "ABORTED".into();
        r.history.push(HistoryEvent {
            timestamp: self.clock.now(),
            kind: "ExecutionAborted",
            state: r.current_state.take().unwrap_or_default(),
            detail: json!({"error": "States.Aborted", "cause": "stopped by hand"}),
        });
        let view = r.clone();
        tell(&mut records.listeners, name, "ABORTED");
        Some(view)
    }

    fn record(&self, name: &str, event: HistoryEvent) {
        let mut records = self.lock();
        let records = &mut *records;
        let Some(r) = records.executions.iter_mut().find(|r| r.name == name) else {
            return;
        };
        if r.status != "RUNNING" {
            // Stopped: whatever the dropped task was doing is not history.
            return;
        }
        let failed = event.kind == "ExecutionFailed";
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
        if failed {
            tell(&mut records.listeners, name, "FAILED");
        }
    }
}

fn tell(listeners: &mut Vec<UnboundedSender<Ended>>, name: &str, status: &str) {
    listeners.retain(|l| {
        l.send(Ended {
            name: name.to_string(),
            status: status.to_string(),
        })
        .is_ok()
    });
}

#[async_trait]
impl Executions for LocalStateMachine {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError> {
        let parsed: Value = serde_json::from_str(input)
            .map_err(|e| PortError::new(PortErrorKind::Invalid, "local", "StartExecution", e.to_string()))?;
        let Some(me) = self.me.upgrade() else {
            return Err(PortError::new(
                PortErrorKind::Other,
                "local",
                "StartExecution",
                "state machine is shutting down",
            ));
        };
        // Recorded and spawned under one lock, so a stop always finds the task.
        let mut records = self.lock();
        if records.executions.iter().any(|r| r.name == name) {
            return Ok(StartOutcome::AlreadyExists);
        }
        records.executions.push(ExecutionView {
            name: name.to_string(),
            status: "RUNNING".into(),
            current_state: None,
            started_at: self.clock.now(),
            input: parsed.clone(),
            output: None,
            error: None,
            history: Vec::new(),
        });
        let execution_name = name.to_string();
        let task = tokio::spawn(async move {
            let context = json!({
                "Execution": {"Name": execution_name, "Id": format!("local:execution:break-glass:{execution_name}"), "Input": parsed, "StartTime": me.clock.now().to_rfc3339()},
                "StateMachine": {"Name": "break-glass", "Id": "local:stateMachine:break-glass"}
            });
            let bound = Bound {
                tasks: me.tasks.as_ref(),
                callbacks: &me.callbacks,
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
            me.lock().running.remove(&execution_name);
        });
        records.running.insert(name.to_string(), task.abort_handle());
        drop(records);
        Ok(StartOutcome::Started {
            execution_arn: format!("local:execution:break-glass:{name}"),
        })
    }

    async fn send_task_success(&self, token: &str, output: &str) -> Result<bool, PortError> {
        let output: Value = serde_json::from_str(output)
            .map_err(|e| PortError::new(PortErrorKind::Invalid, "local", "SendTaskSuccess", e.to_string()))?;
        Ok(self.callbacks.send_success(token, output).is_ok())
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
}
