//! The report end to end: CloudTrail through the real SDK against stand-ins
//! speaking `LookupEvents` and Logs Insights, SES on moto read back as the
//! raw MIME message it is, Slack over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use break_glass_adapters::audit::CloudTrailLookup;
use break_glass_adapters::audit_logs::LogsInsightsQueries;
use break_glass_adapters::mailer::Ses;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::audit::{self, LOOKUP_INTERVAL, LogGroup, Session};
use break_glass_core::clock::{Clock, ManualClock, SystemClock};
use break_glass_core::config::{SecretSource, SlackSettings};
use break_glass_core::contract::{AssignmentSource, Execution, Grant, Revoke, RevokeOutcome};
use break_glass_core::retry::Deadline;
use break_glass_testkit::cloudtrail::{CloudTrailStandIn, realistic_event, session_event};
use break_glass_testkit::logs_insights::LogsInsightsStandIn;
use break_glass_testkit::mail::{SentMail, sent_raw};
use break_glass_testkit::slack::{Post, SlackStandIn};
use break_glass_testkit::{fixtures, moto};
use chrono::{DateTime, Utc};
use report_on_access::{Config, Deps, READ_BUDGET, ReportSource};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const USER: &str = "alice@example.com";
const STATE_MACHINE: &str = "arn:aws:states:eu-west-1:111111111111:stateMachine:break-glass-access";

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
        slack_unreachable: None,
        sessions_ended: false,
        sessions_not_ended: None,
    });
    e
}

/// An SDK configuration for a stand-in, without the SDK's own retries, so
/// the report's pacing and retrying are what is tested.
async fn sdk_for(url: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(url)
        .credentials_provider(moto::credentials())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

fn config(sender: &str, slack: &SlackStandIn, regions: &[&str]) -> Config {
    Config {
        source: ReportSource::LookupEvents,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        state_machine_arn: Some(STATE_MACHINE.into()),
        read_budget: READ_BUDGET,
        lookup_interval: LOOKUP_INTERVAL,
        insights_rows: audit::insights::ROW_CAP,
        audit_role_name: None,
        own_account: None,
        sender: sender.to_string(),
        recipients: vec!["security@example.com".into()],
        cc_requester: true,
        slack: SlackSettings {
            bot_token: SecretSource::Plain("xoxb-rep".into()),
            api_url: slack.api_url(),
        },
        alert_slack_channel: None,
        alert_topic_arn: None,
    }
}

struct Run {
    output: Result<Value, report_on_access::ReportError>,
    emails: Vec<SentMail>,
    thread: Vec<Post>,
    wall: Duration,
}

/// Runs the handler against `trail`, with `adjust` changing the config.
async fn run_with(
    trail: &CloudTrailStandIn,
    break_email: bool,
    clock: &dyn Clock,
    regions: &[&str],
    adjust: impl FnOnce(&mut Config),
) -> Run {
    let sdk = moto::sdk().await;
    let sender = format!("{}@example.com", moto::unique("break-glass"));
    if !break_email {
        moto::verify_sender(&sdk, &sender).await;
    }
    let slack = SlackStandIn::start("xoxb-rep").await;
    slack.add_user("U0001", Some(USER));
    let mut config = config(&sender, &slack, regions);
    adjust(&mut config);
    let lookup = CloudTrailLookup::new(&sdk_for(trail.url(), "eu-west-1").await, None);
    let mailer = Ses::from_sdk(&sdk);
    let slack_api = SlackWebApi::new(slack.api_url(), Some(BotToken::new("xoxb-rep")));
    let deps = Deps {
        config: &config,
        trail: &lookup,
        insights: None,
        mailer: &mailer,
        slack: &slack_api,
        alerts: None,
        clock,
    };
    let started = Instant::now();
    let output =
        report_on_access::handle(serde_json::to_value(revoked_execution(&slack)).unwrap(), &deps).await;
    let wall = started.elapsed();
    let emails = sent_raw(&moto::endpoint())
        .await
        .into_iter()
        .filter(|m| m.source == sender)
        .collect();
    Run {
        output,
        emails,
        thread: slack.posts(),
        wall,
    }
}

async fn run(trail: &CloudTrailStandIn, break_email: bool) -> (Run, ManualClock) {
    let clock = ManualClock::new(t("2026-11-30T11:20:00Z"));
    let run = run_with(trail, break_email, &clock, &["eu-west-1"], |_| {}).await;
    (run, clock)
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
    dangerous["requestParameters"] = json!({"userName": "deploy-bot"});
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
    for (id, at, set, user) in [
        (
            "ev-bob",
            "2026-11-30T09:10:00Z",
            "BreakGlassAdmin",
            "bob@example.com",
        ),
        ("ev-readonly-set", "2026-11-30T09:10:00Z", "ReadOnly", USER),
        ("ev-before", "2026-11-30T08:00:00Z", "BreakGlassAdmin", USER),
        ("ev-after", "2026-11-30T11:10:00Z", "BreakGlassAdmin", USER),
    ] {
        trail.add(session_event(
            id,
            t(at),
            ACCOUNT,
            set,
            user,
            "iam.amazonaws.com",
            "DeleteRole",
            false,
        ));
    }
    trail
}

#[tokio::test]
async fn the_report_reads_every_page_keeps_only_the_session_and_reaches_both_channels() {
    let trail = busy_trail().await;
    trail.throttle_requests(&[2]);
    let (run, clock) = run(&trail, false).await;
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
    assert!(report.get("problems").is_none(), "{report}");

    // The window is read in ascending 15-minute slices, each paged to its
    // end with the same parameters; one throttled call was retried.
    let requests = trail.requests();
    let slices: Vec<(Value, Value)> = requests
        .iter()
        .map(|r| (r["StartTime"].clone(), r["EndTime"].clone()))
        .collect();
    assert_eq!(
        slices.first().unwrap().0,
        json!(t("2026-11-30T08:55:00Z").timestamp())
    );
    assert_eq!(
        slices.last().unwrap().1,
        json!(t("2026-11-30T11:00:05Z").timestamp())
    );
    let mut distinct = slices.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 9, "2 h 5 min in 15-minute slices");
    for r in &requests {
        assert_eq!(r["LookupAttributes"][0]["AttributeValue"], USER);
        if let Some(token) = r["NextToken"].as_str() {
            assert!(!token.is_empty());
        }
    }
    // Paced at CloudTrail's 2 requests per second (one pause between calls),
    // and backed off once when throttled.
    let sleeps = clock.sleeps();
    // No pause before the first call, nor after the backoff (it lasted
    // longer than the pace).
    assert_eq!(
        sleeps
            .iter()
            .filter(|s| **s == Duration::from_millis(500))
            .count(),
        requests.len() - 3,
        "{sleeps:?}"
    );
    assert!(
        sleeps
            .iter()
            .any(|s| *s > Duration::from_millis(500) && *s <= Duration::from_secs(1))
    );

    assert_eq!(run.emails.len(), 1);
    let email = &run.emails[0];
    assert_eq!(
        email.subject(),
        "Break glass report: alice@example.com as BreakGlassAdmin in 123456789012: 3 high-risk actions, 1 denied · 33 changes, 123 events"
    );
    let html = email.part("text/html").unwrap().text();
    assert!(html.contains("IAM change"), "{html}");
    assert!(html.contains("CloudTrail tampering"));
    assert!(html.contains("AccessDenied"));
    assert!(
        html.contains("deploy-bot"),
        "the resource is named from the request"
    );
    assert!(
        !html.contains("<img src=x"),
        "attacker-controlled fields must arrive escaped"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("best-effort"));
    assert!(!html.contains("bob@example.com"));
    assert!(html.contains("/states/home?region=eu-west-1#/v2/executions/details/arn%3Aaws%3Astates"));
    let text = email.part("text/plain").unwrap().text();
    assert!(text.contains("[IAM change]"));
    let csv = email.part("filename=\"break-glass-events-").unwrap().text();
    assert_eq!(csv.lines().count(), 1 + 123);
    assert!(csv.contains("'<img src=x onerror=alert(1)>") || csv.contains("<img src=x onerror=alert(1)>"));

    assert_eq!(run.thread.len(), 1);
    let post = &run.thread[0];
    assert_eq!(
        post.text,
        ":clipboard: Activity report for alice@example.com in 123456789012: 3 high-risk actions, 1 denied · 33 changes, 123 events."
    );
    let blocks = post.blocks.as_ref().unwrap().to_string();
    assert!(
        blocks.contains("*3 high-risk actions, 1 denied · 33 changes, 123 events*"),
        "{blocks}"
    );
    assert!(blocks.contains("The full report was e-mailed."));
    assert!(!blocks.contains("<img"));
}

#[tokio::test]
async fn a_failed_email_does_not_stop_the_slack_summary() {
    let (run, _) = run(&busy_trail().await, true).await;
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
    assert!(
        !run.thread[0]
            .blocks
            .as_ref()
            .unwrap()
            .to_string()
            .contains("e-mailed")
    );
}

#[tokio::test]
async fn an_unreachable_cloudtrail_is_reported_as_incomplete_not_hidden() {
    let trail = CloudTrailStandIn::start().await;
    trail.throttle_requests(&(1..=20).collect::<Vec<_>>());
    let (run, _) = run(&trail, false).await;
    let out = run.output.unwrap();
    assert_eq!(out["report"]["total_events"], 0);
    let problems = out["report"]["problems"].to_string();
    assert!(
        problems.contains("complete to 2026-11-30 08:55:00 UTC in eu-west-1"),
        "{problems}"
    );
    assert!(problems.contains("ThrottlingException"), "{problems}");
    let html = run.emails[0].part("text/html").unwrap().text();
    assert!(html.contains("Incomplete"));
    assert!(html.contains("No activity recorded (incomplete)"));
    assert!(
        run.thread[0]
            .blocks
            .as_ref()
            .unwrap()
            .to_string()
            .contains("Incomplete")
    );
}

/// Real time, started at a fixed moment: pauses really wait, which is
/// what a rate-limited stand-in needs.
#[derive(Debug)]
struct RealTimeFrom {
    base: DateTime<Utc>,
    started: Instant,
}

impl RealTimeFrom {
    fn new(base: DateTime<Utc>) -> Self {
        Self {
            base,
            started: Instant::now(),
        }
    }
}

#[async_trait::async_trait]
impl Clock for RealTimeFrom {
    fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(self.started.elapsed()).unwrap()
    }
    async fn sleep(&self, duration: Duration) {
        SystemClock.sleep(duration).await;
    }
}

const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "eu-central-1"];

/// `per_region` session events in each region, spread over the hour of
/// the grant, plus another user's.
fn three_region_trail(trail: &CloudTrailStandIn, per_region: u64) {
    let base = t("2026-11-30T09:00:30Z");
    for (r, region) in REGIONS.iter().enumerate() {
        for i in 0..per_region {
            let at = base + chrono::Duration::milliseconds((i * 3_590_000 / per_region) as i64);
            let id = r as u64 * 1_000_000 + i;
            trail.add_in(region, realistic_event(id, at, ACCOUNT, region, USER));
        }
        trail.add_in(
            region,
            realistic_event(9_999_999, base, ACCOUNT, region, "bob@example.com"),
        );
    }
}

/// The volume test, at CloudTrail's real limit: 3 regions of 6,000
/// events each (120 pages a region, a minute at 2 calls per second),
/// against a stand-in that throttles any region called faster. Read in
/// parallel, it finishes complete, in about the time of one region.
#[tokio::test]
async fn three_busy_regions_are_read_in_parallel_at_the_limit_and_finish_complete() {
    let trail = CloudTrailStandIn::start().await;
    trail.limit_rate(2.0);
    three_region_trail(&trail, 6_000);
    let clock = RealTimeFrom::new(t("2026-11-30T11:20:00Z"));
    let run = run_with(&trail, false, &clock, &REGIONS, |_| {}).await;
    let out = run.output.unwrap();
    assert_eq!(out["report"]["total_events"], 18_000, "{}", out["report"]);
    assert!(out["report"].get("problems").is_none(), "{}", out["report"]);

    let calls = trail.calls();
    for region in REGIONS {
        let mine: Vec<_> = calls.iter().filter(|c| c.region == region).collect();
        assert!(mine.len() >= 120, "{region}: {} calls", mine.len());
        let throttled = mine.iter().filter(|c| c.throttled).count();
        assert!(
            throttled <= 3,
            "{region}: {throttled} calls throttled: pacing should stay under the limit"
        );
    }
    // In parallel: every region was being read while every other was.
    let span = |region: &str| {
        let mine: Vec<Instant> = calls
            .iter()
            .filter(|c| c.region == region)
            .map(|c| c.at)
            .collect();
        (*mine.iter().min().unwrap(), *mine.iter().max().unwrap())
    };
    let spans: Vec<_> = REGIONS.iter().map(|r| span(r)).collect();
    let latest_start = spans.iter().map(|s| s.0).max().unwrap();
    let earliest_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(latest_start < earliest_end, "regions were read one after another");
    let html = run.emails[0].part("text/html").unwrap().text();
    assert!(html.contains("18,000"));
    let csv = run.emails[0].part("text/csv").unwrap().text();
    assert_eq!(csv.lines().count(), 1 + 18_000);
    eprintln!(
        "3 regions x 6,000 events at 2 calls/s per region: {:.1} s",
        run.wall.as_secs_f64()
    );
}

#[tokio::test]
async fn a_report_out_of_time_says_exactly_what_it_covered() {
    let trail = CloudTrailStandIn::start().await;
    three_region_trail(&trail, 2_000);
    let clock = ManualClock::new(t("2026-11-30T11:20:00Z"));
    // 8 seconds of reading on a manual clock that the three regions' pauses
    // all advance: about 50 calls, where reading everything takes 150.
    let run = run_with(&trail, false, &clock, &REGIONS, |c| {
        c.read_budget = Duration::from_secs(8)
    })
    .await;
    let out = run.output.unwrap();
    let report = &out["report"];
    let problems: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(problems.len(), 3, "one statement per region: {problems:?}");
    for (p, region) in problems.iter().zip(REGIONS) {
        assert!(p.starts_with("complete to 2026-11-30 "), "{p}");
        assert!(p.contains(&format!(" in {region}; about ")), "{p}");
        assert!(p.ends_with("events not read (the report ran out of time)"), "{p}");
    }
    let total = report["total_events"].as_u64().unwrap();
    assert!(total > 0 && total < 6_000, "{total}");
    let html = run.emails[0].part("text/html").unwrap().text();
    assert!(html.contains("(incomplete)"));
    assert!(html.contains(&problems[0].replace('\'', "&#39;")));
    let blocks = run.thread[0].blocks.as_ref().unwrap().to_string();
    assert!(blocks.contains("Incomplete") && blocks.contains("events not read"));
}

/// The same events read through Logs Insights (1,000 rows a query here, so
/// the report must split its windows) and through `LookupEvents` give the
/// same summary: the same totals and the same events, in the same order.
#[tokio::test]
async fn logs_insights_splits_full_windows_and_agrees_with_lookup_events() {
    let group = "aws-cloudtrail-logs-o-example";
    let trail = CloudTrailStandIn::start().await;
    let engine = LogsInsightsStandIn::start(group).await;
    engine.limit_running(2);
    engine.polls_to_complete(2);
    let base = t("2026-11-30T09:00:30Z");
    for (r, region) in REGIONS.iter().enumerate() {
        for i in 0..1_200u64 {
            let at = base + chrono::Duration::seconds((i * 3 + r as u64) as i64);
            let event = realistic_event(r as u64 * 1_000_000 + i, at, ACCOUNT, region, USER);
            trail.add_in(region, event.clone());
            engine.add(event);
        }
        // Left out by both: another user, another account.
        let other_user = realistic_event(8_000_000 + r as u64, base, ACCOUNT, region, "bob@example.com");
        trail.add_in(region, other_user.clone());
        engine.add(other_user);
        engine.add(realistic_event(
            9_000_000 + r as u64,
            base,
            "210987654321",
            region,
            USER,
        ));
    }
    let session = Session {
        account: ACCOUNT.parse().unwrap(),
        permission_set_name: "BreakGlassAdmin".into(),
        user_name: USER.into(),
        start: t("2026-11-30T08:55:00Z"),
        end: t("2026-11-30T11:00:05Z"),
    };
    let slack = SlackStandIn::start("xoxb-rep").await;
    let by_lookup_config = config("x@example.com", &slack, &REGIONS);
    let mut by_insights_config = by_lookup_config.clone();
    by_insights_config.source = ReportSource::LogsInsights(LogGroup::parse(group).unwrap());
    by_insights_config.insights_rows = 1_000;
    let lookup = CloudTrailLookup::new(&sdk_for(trail.url(), "eu-west-1").await, None);
    let insights = LogsInsightsQueries::new(
        &sdk_for(engine.url(), "eu-west-1").await,
        LogGroup::parse(group).unwrap(),
        None,
    );
    let mailer = Ses::from_sdk(&moto::sdk_at("http://127.0.0.1:9").await);
    let slack_api = SlackWebApi::new(slack.api_url(), None);
    let clock = ManualClock::new(t("2026-11-30T11:20:00Z"));
    let deps = Deps {
        config: &by_lookup_config,
        trail: &lookup,
        insights: Some(&insights),
        mailer: &mailer,
        slack: &slack_api,
        alerts: None,
        clock: &clock,
    };
    let (by_lookup, lookup_coverage, _) =
        report_on_access::read(&deps, &session, Deadline::after(&clock, READ_BUDGET)).await;
    let deps = Deps {
        config: &by_insights_config,
        ..deps
    };
    let (by_insights, insights_coverage, source) =
        report_on_access::read(&deps, &session, Deadline::after(&clock, READ_BUDGET)).await;

    assert!(
        lookup_coverage.iter().all(|c| c.complete()),
        "{lookup_coverage:?}"
    );
    assert!(
        insights_coverage[0].complete(),
        "{insights_coverage:?} {:#?}",
        engine.started()
    );
    assert!(source.contains(group));
    assert_eq!(by_lookup.counts().total, 3_600);
    assert!(by_insights.counted_by_engine());
    assert_eq!(
        by_insights.counts(),
        by_lookup.counts(),
        "the engine's counts agree with the events'"
    );
    assert_eq!(by_insights.listed_counts(), by_lookup.counts());
    assert_eq!(
        audit::render_csv(&by_insights),
        audit::render_csv(&by_lookup),
        "the same events, in the same order"
    );

    // Counted, planned by minute, and every window over the cap split.
    let started = engine.started();
    assert!(
        started[0].contains("stats count(*) as n by eventSource, eventName, readOnly, errorCode, eventType")
    );
    assert!(started[1].contains("stats count(*) as n by bin(1m) as minute"));
    assert!(
        started
            .iter()
            .all(|q| q.contains("userIdentity.accountId = \"123456789012\""))
    );
    let listings = started
        .iter()
        .filter(|q| q.starts_with("fields @timestamp, @message"))
        .count();
    assert!(
        listings >= 5,
        "3,600 events at 1,000 rows a query: {listings} listings"
    );
    let (most, _refused) = engine.concurrency();
    assert!(most <= 2, "{most} queries at once");
    assert!(engine.stopped().is_empty());
}

#[tokio::test]
async fn logs_insights_out_of_time_stops_its_queries_and_counts_what_is_missing() {
    let group = "org-trail";
    let engine = LogsInsightsStandIn::start(group).await;
    engine.polls_to_complete(1_000);
    let base = t("2026-11-30T09:00:30Z");
    for i in 0..50 {
        engine.add(realistic_event(
            i,
            base + chrono::Duration::seconds(i as i64),
            ACCOUNT,
            "eu-west-1",
            USER,
        ));
    }
    let session = Session {
        account: ACCOUNT.parse().unwrap(),
        permission_set_name: "BreakGlassAdmin".into(),
        user_name: USER.into(),
        start: t("2026-11-30T08:55:00Z"),
        end: t("2026-11-30T11:00:05Z"),
    };
    let insights = LogsInsightsQueries::new(
        &sdk_for(engine.url(), "eu-west-1").await,
        LogGroup::parse(group).unwrap(),
        None,
    );
    let clock = ManualClock::new(t("2026-11-30T11:20:00Z"));
    let summary = std::sync::Mutex::new(audit::Summary::default());
    let budget = audit::Budget {
        deadline: Deadline::after(&clock, Duration::from_secs(30)),
        pace: LOOKUP_INTERVAL,
        concurrency: 2,
        rows_per_query: audit::insights::ROW_CAP,
    };
    let c = audit::read_logs_insights(
        &insights,
        &clock,
        &session,
        &LogGroup::parse(group).unwrap(),
        budget,
        &summary,
    )
    .await;
    assert!(!c.complete());
    assert_eq!(c.complete_to, session.start);
    assert_eq!(c.unread, Some(audit::Unread::Unknown));
    assert_eq!(engine.stopped().len(), 2, "both counting queries were stopped");
}

/// At Logs Insights' real cap: a minute holding 12,000 events cannot be
/// listed in one query; the window is split until each half fits.
#[tokio::test]
async fn a_window_over_10000_events_is_split_at_the_real_cap() {
    let group = "org-trail";
    let engine = LogsInsightsStandIn::start(group).await;
    let minute = t("2026-11-30T09:30:00Z");
    for i in 0..12_000u64 {
        let at = minute + chrono::Duration::milliseconds((i * 5) as i64);
        engine.add(realistic_event(i, at, ACCOUNT, "eu-west-1", USER));
    }
    engine.add(realistic_event(
        20_000,
        t("2026-11-30T09:05:00Z"),
        ACCOUNT,
        "eu-west-1",
        USER,
    ));
    let session = Session {
        account: ACCOUNT.parse().unwrap(),
        permission_set_name: "BreakGlassAdmin".into(),
        user_name: USER.into(),
        start: t("2026-11-30T08:55:00Z"),
        end: t("2026-11-30T11:00:05Z"),
    };
    let insights = LogsInsightsQueries::new(
        &sdk_for(engine.url(), "eu-west-1").await,
        LogGroup::parse(group).unwrap(),
        None,
    );
    let clock = ManualClock::new(t("2026-11-30T11:20:00Z"));
    let summary = std::sync::Mutex::new(audit::Summary::default());
    let budget = audit::Budget {
        deadline: Deadline::after(&clock, READ_BUDGET),
        pace: LOOKUP_INTERVAL,
        concurrency: 2,
        rows_per_query: audit::insights::ROW_CAP,
    };
    let c = audit::read_logs_insights(
        &insights,
        &clock,
        &session,
        &LogGroup::parse(group).unwrap(),
        budget,
        &summary,
    )
    .await;
    assert!(c.complete(), "{c:?}");
    let mut summary = summary.into_inner().unwrap();
    summary.finish();
    assert_eq!(summary.listed(), 12_001);
    assert_eq!(summary.counts().total, 12_001);
    let listings: Vec<String> = engine
        .started()
        .into_iter()
        .filter(|q| q.starts_with("fields "))
        .collect();
    // Planned: before the busy minute, the minute itself (full), then its
    // two halves, then after it.
    assert_eq!(listings.len(), 5, "{listings:#?}");
}

#[tokio::test]
async fn without_an_audit_role_the_report_names_the_account_it_really_searched() {
    let trail = CloudTrailStandIn::start().await;
    let slack = SlackStandIn::start("xoxb-rep").await;
    let lookup = CloudTrailLookup::new(&sdk_for(trail.url(), "eu-west-1").await, None);
    let mailer = Ses::from_sdk(&moto::sdk_at("http://127.0.0.1:9").await);
    let slack_api = SlackWebApi::new(slack.api_url(), None);
    let clock = ManualClock::new(t("2026-11-30T11:20:00Z"));
    let session = Session {
        account: ACCOUNT.parse().unwrap(),
        permission_set_name: "BreakGlassAdmin".into(),
        user_name: USER.into(),
        start: t("2026-11-30T08:55:00Z"),
        end: t("2026-11-30T11:00:05Z"),
    };
    let mut config = config("x@example.com", &slack, &["eu-west-1"]);
    let mut source_with = |own: Option<&str>, role: Option<&str>| {
        config.own_account = own.map(|a| a.parse().unwrap());
        config.audit_role_name = role.map(str::to_string);
        config.clone()
    };
    let mut sources = Vec::new();
    for config in [
        source_with(Some("999999999999"), None),
        source_with(Some(ACCOUNT), None),
        source_with(None, None),
    ] {
        let deps = Deps {
            config: &config,
            trail: &lookup,
            insights: None,
            mailer: &mailer,
            slack: &slack_api,
            alerts: None,
            clock: &clock,
        };
        let (_, _, source) =
            report_on_access::read(&deps, &session, Deadline::after(&clock, READ_BUDGET)).await;
        sources.push(source);
    }
    assert!(
        sources[0].contains("account 999999999999, this function's own: not account 123456789012")
            && sources[0].contains("AUDIT_ROLE_NAME"),
        "{}",
        sources[0]
    );
    assert_eq!(
        sources[1],
        "CloudTrail LookupEvents in eu-west-1 of account 123456789012"
    );
    assert_eq!(sources[2], sources[1], "an unknown own account claims nothing");
}
