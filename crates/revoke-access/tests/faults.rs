//! Revokes that Identity Center makes hard, through aws-smithy-mocks on the
//! real sso-admin client: every one ends verified or as a named error the
//! state machine retries and then alerts on.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_ssoadmin::Client;
use aws_sdk_ssoadmin::operation::delete_account_assignment::{
    DeleteAccountAssignmentError, DeleteAccountAssignmentOutput,
};
use aws_sdk_ssoadmin::operation::describe_account_assignment_deletion_status::DescribeAccountAssignmentDeletionStatusOutput;
use aws_sdk_ssoadmin::operation::list_account_assignments::ListAccountAssignmentsOutput;
use aws_sdk_ssoadmin::types::StatusValues::{self, Failed, InProgress, Succeeded};
use aws_sdk_ssoadmin::types::error::ConflictException;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::ErrorType;
use break_glass_core::clock::ManualClock;
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_core::contract::{AssignmentSource, Execution, Grant};
use break_glass_core::ledger::{Claim, GrantPlan, LedgerKey, plan_grant, plan_granted};
use break_glass_core::ports::{Ledger, Written};
use break_glass_testkit::fixtures;
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::slack::SlackStandIn;
use break_glass_testkit::sso_mocks::{status, user_assignments};
use serde_json::Value;

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-12345";
const SET: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

fn granted() -> Execution {
    let request = fixtures::request(
        "U0001",
        SET,
        "http://127.0.0.1:9/actions/x",
        "2026-11-30T09:00:00Z".parse().unwrap(),
    );
    let mut execution = fixtures::execution(request);
    execution.grant = Some(Grant {
        user_id: "user-1".into(),
        user_name: "alice@example.com".into(),
        permission_set_name: "BreakGlassAdmin".into(),
        session_duration_seconds: 3600,
        granted_at: "2026-11-30T09:00:00Z".parse().unwrap(),
        expires_at: "2026-11-30T10:00:00Z".parse().unwrap(),
        pre_existing: false,
        assignment: AssignmentSource::Created,
    });
    execution
}

/// The ledger as the grant of [`granted`] left it: held by that execution
/// alone, created by break glass.
async fn ledger_after_the_grant(execution: &Execution) -> InMemoryLedger {
    let ledger = InMemoryLedger::default();
    let grant = execution.grant.as_ref().unwrap();
    let claim = Claim {
        key: LedgerKey {
            user_id: grant.user_id.clone(),
            account_id: execution.request.account_id.clone(),
            permission_set_arn: execution.request.permission_set_arn.clone(),
        },
        execution_name: execution.execution_name.clone(),
        slack_user_id: execution.request.requester.slack_user_id.as_str().to_string(),
        user_name: grant.user_name.clone(),
        expires_at: grant.expires_at,
        reason: None,
        thread: None,
        incident: None,
        requested_at: None,
        latest_end: None,
    };
    let GrantPlan::Write { item, expected, .. } = plan_grant(None, Some(false), &claim, grant.granted_at)
    else {
        panic!("a first grant writes");
    };
    assert_eq!(ledger.put(&item, expected).await.unwrap(), Written::Done);
    let held = plan_granted(&item, &execution.execution_name, grant.granted_at).unwrap();
    assert_eq!(
        ledger.put(&held, Some(item.version)).await.unwrap(),
        Written::Done
    );
    ledger
}

async fn revoke_with(rules: &[&Rule]) -> (Result<Value, revoke_access::RevokeError>, Vec<String>) {
    revoke_with_token(rules, Some("xoxb-r")).await
}

/// `token: None` is a deployment whose bot token is not configured.
async fn revoke_with_token(
    rules: &[&Rule],
    token: Option<&str>,
) -> (Result<Value, revoke_access::RevokeError>, Vec<String>) {
    let slack = SlackStandIn::start("xoxb-r").await;
    let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, rules.iter().copied(), |c| c
        .retry_config(aws_sdk_ssoadmin::config::retry::RetryConfig::disabled()));
    let sso = SsoAdmin::new(client, INSTANCE.parse().unwrap());
    let slack_api = SlackWebApi::new(slack.api_url(), token.map(BotToken::new));
    let clock = ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap());
    let config = revoke_access::Config {
        instance: INSTANCE.parse().unwrap(),
        sso_region: None,
        ledger_table: "unused".into(),
        slack: token.map(|token| SlackSettings {
            bot_token: SecretSource::Plain(token.into()),
            api_url: slack.api_url(),
        }),
        cloudtrail_delay: Duration::from_secs(900),
        end_sessions: revoke_access::EndSessions::NotConfigured,
    };
    let ledger = ledger_after_the_grant(&granted()).await;
    let deps = revoke_access::Deps {
        config: &config,
        identity_center: &sso,
        ledger: &ledger,
        slack: &slack_api,
        clock: &clock,
        session_policy: None,
    };
    let result = revoke_access::handle(serde_json::to_value(granted()).unwrap(), &deps).await;
    (result, slack.posts().into_iter().map(|p| p.text).collect())
}

fn delete_answers(value: StatusValues) -> Rule {
    mock!(Client::delete_account_assignment).then_output(move || {
        DeleteAccountAssignmentOutput::builder()
            .account_assignment_deletion_status(status(value.clone(), "del-1", None))
            .build()
    })
}

fn deletion(value: StatusValues, reason: Option<&'static str>) -> Rule {
    mock!(Client::describe_account_assignment_deletion_status).then_output(move || {
        DescribeAccountAssignmentDeletionStatusOutput::builder()
            .account_assignment_deletion_status(status(value.clone(), "del-1", reason))
            .build()
    })
}

fn listing(users: &'static [&'static str]) -> Rule {
    mock!(Client::list_account_assignments).then_output(move || {
        ListAccountAssignmentsOutput::builder()
            .set_account_assignments(Some(user_assignments("123456789012", SET, users)))
            .build()
    })
}

#[tokio::test]
async fn without_a_slack_token_the_revoke_still_runs_and_says_the_thread_was_not_told() {
    let delete = delete_answers(Succeeded);
    let poll = deletion(Succeeded, None);
    let list = listing(&[]);
    let (result, thread) = revoke_with_token(&[&delete, &poll, &list], None).await;
    let revoked = result.unwrap();
    assert_eq!(revoked["revoke"]["outcome"]["action"], "deleted");
    assert_eq!(revoked["revoke"]["verified"], true);
    assert!(thread.is_empty(), "{thread:?}");
    let why = revoked["revoke"]["slack_unreachable"].as_str().unwrap();
    assert!(why.contains("thread was not told"), "{why}");

    // With Slack, nothing is said about it.
    let (result, thread) = revoke_with(&[&delete, &poll, &list]).await;
    assert!(result.unwrap()["revoke"].get("slack_unreachable").is_none());
    assert_eq!(thread.len(), 1);
}

#[tokio::test]
async fn a_deletion_that_takes_time_is_polled_to_the_end_and_verified() {
    let delete = delete_answers(InProgress);
    let polls = mock!(Client::describe_account_assignment_deletion_status)
        .sequence()
        .output(|| {
            DescribeAccountAssignmentDeletionStatusOutput::builder()
                .account_assignment_deletion_status(status(InProgress, "del-1", None))
                .build()
        })
        .output(|| {
            DescribeAccountAssignmentDeletionStatusOutput::builder()
                .account_assignment_deletion_status(status(Succeeded, "del-1", None))
                .build()
        })
        .build();
    let list = listing(&[]);
    let (result, thread) = revoke_with(&[&delete, &polls, &list]).await;
    let revoked = result.unwrap();
    assert_eq!(revoked["revoke"]["outcome"]["action"], "deleted");
    assert_eq!(revoked["revoke"]["verified"], true);
    assert_eq!(polls.num_calls(), 2);
    assert_eq!(list.num_calls(), 1, "verified once with ListAccountAssignments");
    assert!(thread[0].starts_with(":lock: Access removed"), "{thread:?}");
}

#[tokio::test]
async fn a_failed_or_stuck_deletion_is_revoke_unverified_and_says_nothing_false() {
    for (answer, reason) in [(Failed, Some("internal failure")), (InProgress, None)] {
        let delete = delete_answers(InProgress);
        let polls = deletion(answer, reason);
        let list = listing(&["user-1"]);
        let (result, thread) = revoke_with(&[&delete, &polls, &list]).await;
        let err = result.unwrap_err();
        assert_eq!(err.error_type(), "RevokeUnverified");
        assert!(
            thread.is_empty(),
            "no 'access removed' for a revoke that did not happen: {thread:?}"
        );
    }
}

#[tokio::test]
async fn a_succeeded_deletion_that_still_lists_the_user_is_not_believed() {
    let delete = delete_answers(Succeeded);
    let list = listing(&["user-1"]);
    let (result, _) = revoke_with(&[&delete, &list]).await;
    assert_eq!(result.unwrap_err().error_type(), "RevokeUnverified");
}

#[tokio::test]
async fn a_conflicting_deletion_is_retried() {
    let delete = mock!(Client::delete_account_assignment)
        .sequence()
        .error(|| {
            DeleteAccountAssignmentError::ConflictException(
                ConflictException::builder()
                    .message("a create is in flight")
                    .meta(
                        aws_sdk_ssoadmin::error::ErrorMetadata::builder()
                            .code("ConflictException")
                            .build(),
                    )
                    .build(),
            )
        })
        .output(|| {
            DeleteAccountAssignmentOutput::builder()
                .account_assignment_deletion_status(status(Succeeded, "del-1", None))
                .build()
        })
        .build();
    let list = listing(&[]);
    let (result, _) = revoke_with(&[&delete, &list]).await;
    assert_eq!(result.unwrap()["revoke"]["outcome"]["action"], "deleted");
    assert_eq!(delete.num_calls(), 2);
}
