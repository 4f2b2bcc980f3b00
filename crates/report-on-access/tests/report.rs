//! The report end to end: CloudTrail through the real SDK against a
//! stand-in speaking LookupEvents, SES on moto read back, Slack over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use break_glass_adapters::audit::CloudTrailLookup;
use break_glass_adapters::mailer::Ses;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::clock::ManualClock;
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_core::contract::{AssignmentSource, Execution, Grant, Revoke, RevokeOutcome};
use break_glass_testkit::cloudtrail::{CloudTrailStandIn, session_event};
use break_glass_testkit::slack::SlackStandIn;
use break_glass_testkit::{fixtures, moto};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const USER: &str = "alice@example.com";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn revoked_execution(slack: &SlackStandIn) -> Execution {
    let mut request = fixtures::request(
        "U0001",
        "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
        &slack.response_url("1"),
        t("2026-11-30T09:00:00Z"),
    );
    request.slack.channel_id = "C0INCIDENT".into();
    let mut e = fixtures::execution(request);
    e.grant = Some(Grant {
        user_id: "u-1".into(),
        user_name: USER.into(),
        permission_set_name: "BreakGlassAdmin".into(),
        session_duration_seconds: 3600,
        granted_at: t("2026-11-30T09:00:05Z"),
        expires_at: t("2026-11-30T10:00:05Z"),
        pre_existing: false,
        assignment: AssignmentSource::Created,
    });
    e.revoke = Some(Revoke {
        revoked_at: t("2026-11-30T10:00:05Z"),
        outcome: RevokeOutcome::Deleted,
        verified: true,
        sessions_valid_until: t("2026-11-30T11:00:05Z"),
        report_at: t("2026-11-30T11:15:05Z"),
    });
    e
}

struct Run {
    output: Result<Value, report_on_access::ReportError>,
    emails: Vec<Value>,
    thread: Vec<String>,
    trail: CloudTrailStandIn,
    sleeps: Vec<Duration>,
}

async fn run(trail: CloudTrailStandIn, break_email: bool) -> Run {
    let sdk = moto::sdk().await;
    let sender = format!("{}@example.com", moto::unique("break-glass"));
    if !break_email {
        moto::verify_sender(&sdk, &sender).await;
    }
    let before: Vec<Value> = moto::sent_emails(&moto::endpoint()).await;
    let slack = SlackStandIn::start("xoxb-rep").await;
    slack.add_user("U0001", Some(USER));
    let cloudtrail_sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(trail.url())
        .credentials_provider(moto::credentials())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let config = report_on_access::Config {
        regions: vec!["eu-west-1".into()],
        audit_role_name: None,
        sender: sender.clone(),
        recipients: vec!["security@example.com".into()],
        cc_requester: true,
        slack: SlackSettings {
            bot_token: SecretSource::Plain("xoxb-rep".into()),
            api_url: slack.api_url(),
        },
        alert_slack_channel: None,
        alert_topic_arn: None,
    };
    let lookup = CloudTrailLookup::new(&cloudtrail_sdk, None);
    let mailer = Ses::from_sdk(&sdk);
    let slack_api = SlackWebApi::new(slack.api_url(), Some(BotToken::new("xoxb-rep")));
    let clock = ManualClock::new(t("2026-11-30T11:20:00Z"));
    let deps = report_on_access::Deps {
        config: &config,
        trail: &lookup,
        mailer: &mailer,
        slack: &slack_api,
        alerts: None,
        clock: &clock,
    };
    let output =
        report_on_access::handle(serde_json::to_value(revoked_execution(&slack)).unwrap(), &deps).await;
    let emails = moto::sent_emails(&moto::endpoint())
        .await
        .into_iter()
        .filter(|m| !before.contains(m) && m["source"] == sender.as_str())
        .collect();
    Run {
        output,
        emails,
        thread: slack.posts().into_iter().map(|p| p.text).collect(),
        trail,
        sleeps: clock.sleeps(),
    }
}

/// 120 reads and writes of Alice's session, some dangerous, plus what must
/// be left out: other users, another permission set, outside the window.
async fn busy_trail() -> CloudTrailStandIn {
    let trail = CloudTrailStandIn::start().await;
    let base = t("2026-11-30T09:01:00Z");
    for i in 0..120 {
        let at = base + chrono::Duration::seconds(i * 20);
        let (source, name, ro) = match i % 4 {
            0 => ("ec2.amazonaws.com", "DescribeInstances", true),
            1 => ("s3.amazonaws.com", "ListBuckets", true),
            2 => ("ec2.amazonaws.com", "RebootInstances", false),
            _ => ("logs.amazonaws.com", "GetLogEvents", true),
        };
        trail.add(session_event(
            &format!("ev-{i}"),
            at,
            ACCOUNT,
            "BreakGlassAdmin",
            USER,
            source,
            name,
            ro,
        ));
    }
    let mut dangerous = session_event(
        "ev-iam",
        t("2026-11-30T09:30:00Z"),
        ACCOUNT,
        "BreakGlassAdmin",
        USER,
        "iam.amazonaws.com",
        "CreateAccessKey",
        false,
    );
    dangerous["userAgent"] = json!("<img src=x onerror=alert(1)>");
    trail.add(dangerous);
    let mut denied = session_event(
        "ev-denied",
        t("2026-11-30T09:31:00Z"),
        ACCOUNT,
        "BreakGlassAdmin",
        USER,
        "cloudtrail.amazonaws.com",
        "StopLogging",
        false,
    );
    denied["errorCode"] = json!("AccessDenied");
    denied["errorMessage"] = json!("User is not authorized to perform: cloudtrail:StopLogging");
    trail.add(denied);
    // After the revoke but while the session was still valid: included.
    trail.add(session_event(
        "ev-late",
        t("2026-11-30T10:30:00Z"),
        ACCOUNT,
        "BreakGlassAdmin",
        USER,
        "ec2.amazonaws.com",
        "TerminateInstances",
        false,
    ));
    // Left out.
    trail.add(session_event(
        "ev-bob",
        t("2026-11-30T09:10:00Z"),
        ACCOUNT,
        "BreakGlassAdmin",
        "bob@example.com",
        "iam.amazonaws.com",
        "DeleteRole",
        false,
    ));
    trail.add(session_event(
        "ev-readonly-set",
        t("2026-11-30T09:10:00Z"),
        ACCOUNT,
        "ReadOnly",
        USER,
        "iam.amazonaws.com",
        "DeleteRole",
        false,
    ));
    trail.add(session_event(
        "ev-before",
        t("2026-11-30T08:00:00Z"),
        ACCOUNT,
        "BreakGlassAdmin",
        USER,
        "iam.amazonaws.com",
        "DeleteRole",
        false,
    ));
    trail.add(session_event(
        "ev-after",
        t("2026-11-30T11:10:00Z"),
        ACCOUNT,
        "BreakGlassAdmin",
        USER,
        "iam.amazonaws.com",
        "DeleteRole",
        false,
    ));
    trail
}

#[tokio::test]
async fn the_report_reads_every_page_keeps_only_the_session_and_reaches_both_channels() {
    let trail = busy_trail().await;
    trail.throttle_requests(&[2]);
    let run = run(trail, false).await;
    let out = run.output.unwrap();
    let report = &out["report"];
    // 120 + CreateAccessKey + StopLogging + TerminateInstances; not bob's,
    // not another permission set's, not outside the window.
    assert_eq!(report["total_events"], 123);
    assert_eq!(report["write_events"], 30 + 3);
    assert_eq!(report["failed_events"], 1);
    assert_eq!(report["high_risk_events"], 3, "{report}");
    assert_eq!(report["window_start"], "2026-11-30T08:55:00Z");
    assert_eq!(report["window_end"], "2026-11-30T11:00:05Z");
    assert_eq!(report["slack_posted"], true);
    assert_eq!(report["emailed_to"], json!(["security@example.com", USER]));

    // 124 matching by user and window over 50-event pages: 3 pages, plus the throttled retry.
    let requests = run.trail.requests();
    assert_eq!(requests.len(), 4);
    for r in &requests[1..] {
        assert_eq!(r["LookupAttributes"], requests[0]["LookupAttributes"]);
        assert_eq!(r["StartTime"], requests[0]["StartTime"]);
        assert_eq!(r["EndTime"], requests[0]["EndTime"]);
    }
    assert_eq!(requests[0]["LookupAttributes"][0]["AttributeValue"], USER);
    // Paced at CloudTrail's 2 requests per second, and backed off once.
    assert_eq!(
        run.sleeps
            .iter()
            .filter(|s| **s == Duration::from_millis(500))
            .count(),
        2
    );
    assert!(
        run.sleeps
            .iter()
            .any(|s| *s >= Duration::from_millis(500) && *s <= Duration::from_secs(1))
    );

    assert_eq!(run.emails.len(), 1, "{:?}", run.emails);
    let email = &run.emails[0];
    assert_eq!(
        email["subject"],
        "Break glass report: alice@example.com as BreakGlassAdmin in 123456789012: 33 write events, 3 high risk"
    );
    let body = email["body"].as_str().unwrap();
    assert!(body.contains("IAM change"), "{body}");
    assert!(body.contains("CloudTrail tampering"));
    assert!(body.contains("AccessDenied"));
    assert!(
        !body.contains("<img src=x"),
        "attacker-controlled fields must arrive escaped"
    );
    assert!(body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(body.contains("best-effort"));
    assert!(!body.contains("bob@example.com"));

    assert_eq!(run.thread.len(), 1);
    assert!(run.thread[0].starts_with(":clipboard: Activity report for alice@example.com in 123456789012: 123 events, 33 writes, 1 failed, 3 high risk."), "{}", run.thread[0]);
    assert!(run.thread[0].contains("The full report was e-mailed."));
}

#[tokio::test]
async fn a_failed_email_does_not_stop_the_slack_summary() {
    let run = run(busy_trail().await, true).await;
    let out = run.output.unwrap();
    assert_eq!(out["report"]["slack_posted"], true);
    assert_eq!(out["report"]["emailed_to"], json!([]));
    assert!(
        out["report"]["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("e-mail:"),
        "{}",
        out["report"]
    );
    assert!(run.emails.is_empty());
    assert!(!run.thread[0].contains("e-mailed"));
}

#[tokio::test]
async fn an_unreachable_cloudtrail_is_reported_as_incomplete_not_hidden() {
    let trail = CloudTrailStandIn::start().await;
    trail.throttle_requests(&(1..=20).collect::<Vec<_>>());
    let run = run(trail, false).await;
    let out = run.output.unwrap();
    assert_eq!(out["report"]["total_events"], 0);
    let problems = out["report"]["problems"].to_string();
    assert!(problems.contains("eu-west-1"), "{problems}");
    assert!(run.emails[0]["body"].as_str().unwrap().contains("Incomplete"));
    assert!(run.thread[0].contains("Incomplete"));
}
