//! [`Executions`] on AWS Step Functions: this deployment's state machine.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus as SfnStatus;
use break_glass_core::contract::{Execution, Grant};
use break_glass_core::ports::{
    ExecutionStatus, Executions, PortError, PortErrorKind, RunningExecution, StartOutcome,
};

use crate::error::classify;

const SERVICE: &str = "states";

#[derive(Debug, Clone)]
pub struct StepFunctions {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctions {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, state_machine_arn: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), state_machine_arn)
    }

    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// `arn:…:stateMachine:<sm>` → `arn:…:execution:<sm>:<name>`.
    pub fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

impl StepFunctions {
    /// The grant section an execution's grant step produced, newest first
    /// through its history; `None` while it has not produced one.
    async fn granted(&self, execution_arn: &str) -> Result<Option<Grant>, PortError> {
        let mut pages = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .include_execution_data(true)
            .into_paginator()
            .items()
            .send();
        while let Some(event) = pages.next().await {
            let event = event.map_err(|e| classify(SERVICE, "GetExecutionHistory", e))?;
            let output = event
                .task_succeeded_event_details
                .and_then(|d| d.output)
                .or_else(|| event.state_exited_event_details.and_then(|d| d.output))
                .or_else(|| {
                    event
                        .lambda_function_succeeded_event_details
                        .and_then(|d| d.output)
                });
            let grant = output
                .and_then(|o| serde_json::from_str(&o).ok())
                .and_then(|v| Execution::from_value(v).ok())
                .and_then(|e| e.grant);
            if grant.is_some() {
                return Ok(grant);
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl Executions for StepFunctions {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await;
        match result {
            Ok(out) => Ok(StartOutcome::Started {
                execution_arn: out.execution_arn,
            }),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_execution_already_exists()) =>
            {
                Ok(StartOutcome::AlreadyExists)
            }
            Err(err) => Err(classify(SERVICE, "StartExecution", err)),
        }
    }

    async fn status(&self, name: &str) -> Result<Option<ExecutionStatus>, PortError> {
        let result = self
            .client
            .describe_execution()
            .execution_arn(self.execution_arn(name))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(match out.status {
                SfnStatus::Running | SfnStatus::PendingRedrive => ExecutionStatus::Running,
                other => ExecutionStatus::Ended(other.as_str().to_string()),
            })),
            Err(err) => {
                let err = classify(SERVICE, "DescribeExecution", err);
                if err.kind == PortErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn running(&self) -> Result<Vec<RunningExecution>, PortError> {
        let mut pages = self
            .client
            .list_executions()
            .state_machine_arn(&self.state_machine_arn)
            .status_filter(SfnStatus::Running)
            .into_paginator()
            .items()
            .send();
        let mut running = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| classify(SERVICE, "ListExecutions", e))?;
            let described = self
                .client
                .describe_execution()
                .execution_arn(&item.execution_arn)
                .send()
                .await;
            match described {
                Ok(out) if out.status == SfnStatus::Running => running.push(RunningExecution {
                    grant: self.granted(&item.execution_arn).await?,
                    name: item.name,
                    input: out.input.unwrap_or_default(),
                }),
                // Ended between the two calls: no longer a holder.
                Ok(_) => {}
                Err(err) => {
                    let err = classify(SERVICE, "DescribeExecution", err);
                    if err.kind != PortErrorKind::NotFound {
                        return Err(err);
                    }
                }
            }
        }
        Ok(running)
    }
}
