//! Prints how long after Identity Center reports SUCCEEDED the Slack
//! "granted" message arrives, and how many Identity Center calls a grant and
//! a revoke make. Identity Center is aws-smithy-mocks (one IN_PROGRESS, then
//! SUCCEEDED), Slack is the HTTP stand-in; no AWS account, no moto.
//!
//!   cargo bench -p grant-access --bench grant_latency

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ssoadmin::Client;
use aws_sdk_ssoadmin::operation::create_account_assignment::CreateAccountAssignmentOutput;
use aws_sdk_ssoadmin::operation::delete_account_assignment::DeleteAccountAssignmentOutput;
use aws_sdk_ssoadmin::operation::describe_account_assignment_creation_status::DescribeAccountAssignmentCreationStatusOutput;
use aws_sdk_ssoadmin::operation::describe_permission_set::DescribePermissionSetOutput;
use aws_sdk_ssoadmin::operation::list_account_assignments::ListAccountAssignmentsOutput;
use aws_sdk_ssoadmin::types::StatusValues;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::access::IdentityLookup;
use break_glass_core::clock::SystemClock;
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_core::contract::Execution;
use break_glass_core::ports::{Directory, DirectoryUser, LookupAttribute, PortError};
use break_glass_testkit::fixtures;
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::slack::SlackStandIn;
use break_glass_testkit::sso_mocks::{permission_set, status, user_assignments};

const SET: &str = "arn:aws:sso:::permissionSet/ssoins-1/ps-1";
static SUCCEEDED_AT: Mutex<Option<Instant>> = Mutex::new(None);

#[derive(Debug)]
struct OneUser;

#[async_trait]
impl Directory for OneUser {
    async fn find_user(&self, _: LookupAttribute, _: &str) -> Result<Option<DirectoryUser>, PortError> {
        Ok(Some(DirectoryUser {
            user_id: "u-1".into(),
            user_name: "alice@example.com".into(),
            display_name: None,
        }))
    }
}

fn execution(slack: &SlackStandIn) -> Execution {
    fixtures::execution(fixtures::request(
        "U1",
        SET,
        &slack.response_url("1"),
        chrono::Utc::now(),
    ))
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let slack = SlackStandIn::start("xoxb-b").await;
        slack.add_user("U1", Some("alice@example.com"));
        let slack_api = SlackWebApi::new(slack.api_url(), Some(BotToken::new("xoxb-b")));
        let settings = SlackSettings { bot_token: SecretSource::Plain("xoxb-b".into()), api_url: slack.api_url() };
        let mut latencies = Vec::new();
        let mut grant_calls = 0;
        let mut revoke_calls = 0;
        let runs = 50;
        for _ in 0..runs {
            let describe = mock!(Client::describe_permission_set).then_output(|| {
                DescribePermissionSetOutput::builder().permission_set(permission_set(SET, "Admin", "PT1H")).build()
            });
            let list = mock!(Client::list_account_assignments)
                .then_output(|| ListAccountAssignmentsOutput::builder().build());
            let create = mock!(Client::create_account_assignment).then_output(|| {
                CreateAccountAssignmentOutput::builder()
                    .account_assignment_creation_status(status(StatusValues::InProgress, "r", None))
                    .build()
            });
            let poll = mock!(Client::describe_account_assignment_creation_status).then_compute_output(|_| {
                *SUCCEEDED_AT.lock().unwrap() = Some(Instant::now());
                DescribeAccountAssignmentCreationStatusOutput::builder()
                    .account_assignment_creation_status(status(StatusValues::Succeeded, "r", None))
                    .build()
            });
            let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, [&describe, &list, &create, &poll]);
            let sso = SsoAdmin::new(client, "arn:aws:sso:::instance/ssoins-1".parse().unwrap());
            let ledger = InMemoryLedger::default();
            let config = grant_access::Config {
                instance: "arn:aws:sso:::instance/ssoins-1".parse().unwrap(),
                sso_region: None,
                identity_store_id: "d-1".into(),
                ledger_table: "local".into(),
                lookup: IdentityLookup::Email,
                workspaces: fixtures::workspaces().clone(),
                slack: settings.clone(),
                policy: None,
            };
            let deps = grant_access::Deps {
                config: &config,
                identity_center: &sso,
                directory: &OneUser,
                ledger: &ledger,
                slack: &slack_api,
                clock: &SystemClock,
                rules: &break_glass_core::requester::NO_RULES,
            };
            let before = slack.posts().len();
            let granted = grant_access::handle(serde_json::to_value(execution(&slack)).unwrap(), &deps).await.unwrap();
            let post = slack.posts()[before].clone();
            let succeeded = SUCCEEDED_AT.lock().unwrap().unwrap();
            latencies.push(post.received_at.duration_since(succeeded));
            grant_calls = describe.num_calls() + list.num_calls() + create.num_calls() + poll.num_calls();

            let delete = mock!(Client::delete_account_assignment).then_output(|| {
                DeleteAccountAssignmentOutput::builder()
                    .account_assignment_deletion_status(status(StatusValues::Succeeded, "d", None))
                    .build()
            });
            let after = mock!(Client::list_account_assignments).then_output(|| {
                ListAccountAssignmentsOutput::builder().set_account_assignments(Some(user_assignments("123456789012", SET, &[]))).build()
            });
            let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, [&delete, &after]);
            let sso = SsoAdmin::new(client, "arn:aws:sso:::instance/ssoins-1".parse().unwrap());
            let revoke_config = revoke_access::Config {
                instance: "arn:aws:sso:::instance/ssoins-1".parse().unwrap(),
                sso_region: None,
                ledger_table: "local".into(),
                slack: Some(settings.clone()),
                cloudtrail_delay: Duration::from_secs(900),
                end_sessions: revoke_access::EndSessions::NotConfigured,
            };
            let deps = revoke_access::Deps {
                config: &revoke_config,
                identity_center: &sso,
                ledger: &ledger,
                slack: &slack_api,
                clock: &SystemClock,
                session_policy: None,
            };
            revoke_access::handle(granted, &deps).await.unwrap();
            revoke_calls = delete.num_calls() + after.num_calls();
        }
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "SUCCEEDED observed -> Slack 'granted' received, over {runs} grants: median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            ms(latencies[runs / 2]),
            ms(latencies[runs * 95 / 100]),
            ms(latencies[runs - 1])
        );
        println!("Identity Center calls per grant (create, one IN_PROGRESS answer, then SUCCEEDED): {grant_calls}");
        println!("Identity Center calls per revoke (delete SUCCEEDED at once, then verify): {revoke_calls}");
    });
}
