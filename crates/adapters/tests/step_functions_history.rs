//! moto answers GetExecutionHistory with a canned history, so how the
//! adapter reads a running execution's grant section from real histories is
//! checked here with aws-smithy-mocks.

#![allow(clippy::unwrap_used)]

use aws_sdk_sfn::Client;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
use aws_sdk_sfn::types::{
    ExecutionListItem, ExecutionStatus, HistoryEvent, HistoryEventType, StateExitedEventDetails,
    TaskSucceededEventDetails,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use break_glass_adapters::executions::StepFunctions;
use break_glass_core::ports::Executions;
use serde_json::json;

const SM: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:break-glass";

fn contract(name: &str, with_grant: bool) -> String {
    let mut doc = json!({
        "version": 1,
        "execution_name": name,
        "request": {
            "requester": {"slack_user_id": "U1", "slack_user_name": "a", "slack_team_id": "T1"},
            "slack": {"channel_id": "C1", "message_ts": "1.1", "thread_ts": "1.1", "response_url": "https://hooks.slack.com/actions/x"},
            "account_id": "123456789012",
            "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
            "duration_seconds": 3600,
            "requested_at": "2026-11-30T09:00:00Z"
        }
    });
    if with_grant {
        doc["grant"] = json!({
            "user_id": "u-1", "user_name": "a@example.com", "permission_set_name": "Admin",
            "session_duration_seconds": 3600, "granted_at": "2026-11-30T09:00:05Z",
            "expires_at": "2026-11-30T10:00:05Z", "pre_existing": true, "assignment": "pre_existing"
        });
    }
    doc.to_string()
}

fn item(name: &str) -> ExecutionListItem {
    ExecutionListItem::builder()
        .execution_arn(format!(
            "arn:aws:states:us-east-1:123456789012:execution:break-glass:{name}"
        ))
        .state_machine_arn(SM)
        .name(name)
        .status(ExecutionStatus::Running)
        .start_date(aws_smithy_types::DateTime::from_secs(0))
        .build()
        .unwrap()
}

fn event(id: i64, kind: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
    HistoryEvent::builder()
        .id(id)
        .r#type(kind)
        .timestamp(aws_smithy_types::DateTime::from_secs(id))
}

#[tokio::test]
async fn running_executions_carry_their_grant_once_the_grant_step_finished() {
    let list = mock!(Client::list_executions).then_output(|| {
        ListExecutionsOutput::builder()
            .executions(item("bg-a-g1"))
            .executions(item("bg-b-g1"))
            .build()
            .unwrap()
    });
    let describe = mock!(Client::describe_execution).then_compute_output(|input| {
        let name = input
            .execution_arn()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_string();
        DescribeExecutionOutput::builder()
            .execution_arn(input.execution_arn().unwrap())
            .state_machine_arn(SM)
            .status(ExecutionStatus::Running)
            .start_date(aws_smithy_types::DateTime::from_secs(0))
            .input(contract(&name, false))
            .build()
            .unwrap()
    });
    let history = mock!(Client::get_execution_history).then_compute_output(|input| {
        let name = input
            .execution_arn()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_string();
        let mut events = vec![
            // Newest first: a Wait in progress after the grant task.
            event(5, HistoryEventType::WaitStateEntered).build().unwrap(),
        ];
        if name == "bg-a-g1" {
            events.push(
                event(4, HistoryEventType::TaskStateExited)
                    .state_exited_event_details(
                        StateExitedEventDetails::builder()
                            .name("Grant")
                            .output(contract(&name, true))
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            );
            events.push(
                event(3, HistoryEventType::TaskSucceeded)
                    .task_succeeded_event_details(
                        TaskSucceededEventDetails::builder()
                            .resource_type("lambda")
                            .resource("invoke")
                            .output(contract(&name, true))
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            );
        }
        GetExecutionHistoryOutput::builder()
            .set_events(Some(events))
            .build()
            .unwrap()
    });
    let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&list, &describe, &history]);
    let running = StepFunctions::new(client, SM).running().await.unwrap();
    assert_eq!(running.len(), 2);
    let a = running.iter().find(|r| r.name == "bg-a-g1").unwrap();
    let b = running.iter().find(|r| r.name == "bg-b-g1").unwrap();
    assert!(a.grant.as_ref().unwrap().pre_existing);
    assert_eq!(b.grant, None, "still granting");
    assert!(b.input.contains("\"execution_name\":\"bg-b-g1\""));
}

#[test]
fn execution_arns_are_derived_from_the_state_machine() {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let sfn = StepFunctions::from_sdk(&sdk, SM);
    assert_eq!(
        sfn.execution_arn("bg-x-g2"),
        "arn:aws:states:us-east-1:123456789012:execution:break-glass:bg-x-g2"
    );
}
