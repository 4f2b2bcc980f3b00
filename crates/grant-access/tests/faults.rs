//! What moto cannot do, through aws-smithy-mocks on the real sso-admin
//! client: provisioning that takes time, fails, conflicts, throttles or
//! never finishes. Slack and the Identity Store stay real (stand-in, moto).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_ssoadmin::Client;
use aws_sdk_ssoadmin::operation::create_account_assignment::{
    CreateAccountAssignmentError, CreateAccountAssignmentOutput,
};
use aws_sdk_ssoadmin::operation::delete_account_assignment::DeleteAccountAssignmentOutput;
use aws_sdk_ssoadmin::operation::describe_account_assignment_creation_status::DescribeAccountAssignmentCreationStatusOutput;
use aws_sdk_ssoadmin::operation::describe_account_assignment_deletion_status::DescribeAccountAssignmentDeletionStatusOutput;
use aws_sdk_ssoadmin::operation::describe_permission_set::DescribePermissionSetOutput;
use aws_sdk_ssoadmin::operation::list_account_assignments::ListAccountAssignmentsOutput;
use aws_sdk_ssoadmin::types::StatusValues::{Failed, InProgress, Succeeded};
use aws_sdk_ssoadmin::types::error::{ConflictException, ThrottlingException};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::ErrorType;
use break_glass_core::access::IdentityLookup;
use break_glass_core::clock::ManualClock;
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::slack::SlackStandIn;
use break_glass_testkit::sso_mocks::{permission_set, status};
use break_glass_testkit::{fixtures, moto};
use serde_json::Value;

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-12345";
const SET: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

struct Outcome {
    result: Result<Value, grant_access::GrantError>,
    sleeps: Vec<Duration>,
    thread: Vec<String>,
}

/// Runs one grant with the given sso-admin rules (list: empty, describe:
/// BreakGlassAdmin/PT1H unless the rules say otherwise).
async fn grant_with(rules: &[&Rule]) -> Outcome {
    let sdk = moto::sdk().await;
    let store = moto::unique("d").replace('-', "");
    moto::create_user(&sdk, &store, "alice@example.com", "alice@example.com").await;
    let slack = SlackStandIn::start("xoxb-f").await;
    slack.add_user("U0001", Some("alice@example.com"));

    let describe = mock!(Client::describe_permission_set).then_output(|| {
        DescribePermissionSetOutput::builder()
            .permission_set(permission_set(SET, "BreakGlassAdmin", "PT1H"))
            .build()
    });
    let list = mock!(Client::list_account_assignments)
        .then_output(|| ListAccountAssignmentsOutput::builder().build());
    let mut all: Vec<&Rule> = rules.to_vec();
    all.push(&describe);
    all.push(&list);
    let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, all, |c| c
        .retry_config(aws_sdk_ssoadmin::config::retry::RetryConfig::disabled()));

    let sso = SsoAdmin::new(client, INSTANCE.parse().unwrap());
    let directory = IdentityStore::from_sdk(&sdk, &store);
    let slack_api = SlackWebApi::new(slack.api_url(), Some(BotToken::new("xoxb-f")));
    let clock = ManualClock::new("2026-11-30T09:00:00Z".parse().unwrap());
    let ledger = InMemoryLedger::default();
    let config = grant_access::Config {
        instance: INSTANCE.parse().unwrap(),
        sso_region: None,
        identity_store_id: store,
        ledger_table: "unused".into(),
        lookup: IdentityLookup::Email,
        workspaces: fixtures::workspaces().clone(),
        slack: SlackSettings {
            bot_token: SecretSource::Plain("xoxb-f".into()),
            api_url: slack.api_url(),
        },
        policy: None,
    };
    let mut request = fixtures::request(
        "U0001",
        SET,
        &slack.response_url("1"),
        "2026-11-30T09:00:00Z".parse().unwrap(),
    );
    request.requester.slack_user_name = "alice".into();
    let execution = fixtures::execution(request);
    let deps = grant_access::Deps {
        config: &config,
        identity_center: &sso,
        directory: &directory,
        ledger: &ledger,
        slack: &slack_api,
        clock: &clock,
        rules: &break_glass_core::requester::NO_RULES,
    };
    let result = grant_access::handle(serde_json::to_value(&execution).unwrap(), &deps).await;
    Outcome {
        result,
        sleeps: clock.sleeps(),
        thread: slack.posts().into_iter().map(|p| p.text).collect(),
    }
}

fn code(code: &str) -> aws_sdk_ssoadmin::error::ErrorMetadata {
    aws_sdk_ssoadmin::error::ErrorMetadata::builder()
        .code(code)
        .message("mocked")
        .build()
}

fn create_answers(value: aws_sdk_ssoadmin::types::StatusValues) -> Rule {
    mock!(Client::create_account_assignment).then_output(move || {
        CreateAccountAssignmentOutput::builder()
            .account_assignment_creation_status(status(value.clone(), "req-1", None))
            .build()
    })
}

fn creation_status(
    value: aws_sdk_ssoadmin::types::StatusValues,
    reason: Option<&'static str>,
) -> DescribeAccountAssignmentCreationStatusOutput {
    DescribeAccountAssignmentCreationStatusOutput::builder()
        .account_assignment_creation_status(status(value, "req-1", reason))
        .build()
}

#[tokio::test]
async fn granted_is_only_said_once_in_progress_turns_succeeded() {
    let create = create_answers(InProgress);
    let polls = mock!(Client::describe_account_assignment_creation_status)
        .sequence()
        .output(|| creation_status(InProgress, None))
        .times(2)
        .output(|| creation_status(Succeeded, None))
        .build();
    let outcome = grant_with(&[&create, &polls]).await;
    let granted = outcome.result.unwrap();
    assert_eq!(granted["grant"]["assignment"], "created");
    assert_eq!(polls.num_calls(), 3);
    assert_eq!(create.num_calls(), 1);
    // The first look comes quickly, then backs off.
    assert_eq!(
        outcome.sleeps,
        vec![Duration::from_millis(250), Duration::from_millis(500)]
    );
    assert_eq!(
        outcome.thread,
        vec![":unlock: <@U0001> has BreakGlassAdmin in 123456789012 until 10:00 UTC."]
    );
}

#[tokio::test]
async fn a_failed_creation_is_a_named_error_carrying_the_reason() {
    let create = create_answers(InProgress);
    let polls = mock!(Client::describe_account_assignment_creation_status).then_output(|| {
        creation_status(
            Failed,
            Some("Received a 404 status error: the account is suspended"),
        )
    });
    // Nothing was created, but the hold is given back the one way there is:
    // delete (nothing there) and verify.
    let delete = mock!(Client::delete_account_assignment).then_output(|| {
        DeleteAccountAssignmentOutput::builder()
            .account_assignment_deletion_status(status(Succeeded, "del-1", None))
            .build()
    });
    let outcome = grant_with(&[&create, &polls, &delete]).await;
    let err = outcome.result.unwrap_err();
    assert_eq!(err.error_type(), "AssignmentFailed");
    assert!(err.to_string().contains("the account is suspended"), "{err}");
    assert_eq!(
        outcome.thread,
        vec![
            "<@U0001> :x: Break glass failed: Identity Center could not create the assignment: Received a 404 status error: the account is suspended."
        ]
    );
}

#[tokio::test]
async fn conflicts_and_throttling_are_retried_with_jittered_backoff() {
    let create = mock!(Client::create_account_assignment)
        .sequence()
        // As the SDK parses them off the wire: the code is in the metadata.
        .error(|| {
            CreateAccountAssignmentError::ConflictException(
                ConflictException::builder()
                    .message("in flight")
                    .meta(code("ConflictException"))
                    .build(),
            )
        })
        .error(|| {
            CreateAccountAssignmentError::ThrottlingException(
                ThrottlingException::builder()
                    .message("slow down")
                    .meta(code("ThrottlingException"))
                    .build(),
            )
        })
        .output(|| {
            CreateAccountAssignmentOutput::builder()
                .account_assignment_creation_status(status(Succeeded, "req-1", None))
                .build()
        })
        .build();
    let outcome = grant_with(&[&create]).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result.err());
    assert_eq!(create.num_calls(), 3);
    assert_eq!(outcome.sleeps.len(), 2);
    assert!(
        outcome.sleeps[0] >= Duration::from_millis(100) && outcome.sleeps[0] <= Duration::from_millis(200)
    );
    assert!(
        outcome.sleeps[1] >= Duration::from_millis(200) && outcome.sleeps[1] <= Duration::from_millis(400)
    );
}

#[tokio::test]
async fn a_creation_stuck_in_progress_is_rolled_back_and_verified_gone() {
    let create = create_answers(InProgress);
    let polls = mock!(Client::describe_account_assignment_creation_status)
        .then_output(|| creation_status(InProgress, None));
    let delete = mock!(Client::delete_account_assignment).then_output(|| {
        DeleteAccountAssignmentOutput::builder()
            .account_assignment_deletion_status(status(Succeeded, "del-1", None))
            .build()
    });
    let outcome = grant_with(&[&create, &polls, &delete]).await;
    let err = outcome.result.unwrap_err();
    assert_eq!(err.error_type(), "GrantRolledBack");
    assert_eq!(delete.num_calls(), 1);
    // Polling the create, waiting for it to settle and removing it all fit
    // the grant's plan, inside the Lambda's timeout.
    let waited: Duration = outcome.sleeps.iter().sum();
    assert!(waited <= grant_access::ROLLBACK_BY, "bounded: {waited:?}");
    assert!(
        outcome.thread[0].contains("this grant gave it back (removed and verified gone"),
        "{:?}",
        outcome.thread
    );
}

#[tokio::test]
async fn a_stuck_creation_whose_cleanup_cannot_be_verified_is_loud() {
    let create = create_answers(InProgress);
    let polls = mock!(Client::describe_account_assignment_creation_status)
        .then_output(|| creation_status(InProgress, None));
    let delete = mock!(Client::delete_account_assignment).then_output(|| {
        DeleteAccountAssignmentOutput::builder()
            .account_assignment_deletion_status(status(InProgress, "del-1", None))
            .build()
    });
    let deletion = mock!(Client::describe_account_assignment_deletion_status).then_output(|| {
        DescribeAccountAssignmentDeletionStatusOutput::builder()
            .account_assignment_deletion_status(status(InProgress, "del-1", None))
            .build()
    });
    let outcome = grant_with(&[&create, &polls, &delete, &deletion]).await;
    let err = outcome.result.unwrap_err();
    assert_eq!(err.error_type(), "GrantCleanupUnverified");
    assert!(
        outcome.thread[0].starts_with("<@U0001> :rotating_light:"),
        "{:?}",
        outcome.thread
    );
}
