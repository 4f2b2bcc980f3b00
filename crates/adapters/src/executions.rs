//! [`Executions`] on AWS Step Functions: this deployment's state machine.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus as SfnStatus;
use break_glass_core::ports::{ExecutionStatus, Executions, PortError, PortErrorKind, StartOutcome};

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

    async fn send_task_success(&self, token: &str, output: &str) -> Result<bool, PortError> {
        let result = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // The task has moved on (timed out, woken already, its execution
            // ended) or the token is not one of its tokens any more.
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_task_timed_out() || e.is_task_does_not_exist() || e.is_invalid_token()
                }) =>
            {
                Ok(false)
            }
            Err(err) => Err(classify(SERVICE, "SendTaskSuccess", err)),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_are_derived_from_the_state_machine() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let sfn = StepFunctions::from_sdk(
            &sdk,
            "arn:aws:states:us-east-1:123456789012:stateMachine:break-glass",
        );
        assert_eq!(
            sfn.execution_arn("bg-x-g2"),
            "arn:aws:states:us-east-1:123456789012:execution:break-glass:bg-x-g2"
        );
    }
}
