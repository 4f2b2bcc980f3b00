//! The report e-mail as a reader sees it: rendered by headless Chromium
//! (Debian's package, installed by `scripts/lib.sh`'s `ensure_chromium`),
//! checked for its header, timeline and sections in the DOM the browser
//! built, with every attacker-controlled field arriving as text, never as
//! markup. A screenshot is kept for people to look at:
//! `target/tmp/email-report/report.png` (under `CARGO_TARGET_DIR` when set).
//!
//! Without Chromium the test says so and passes, unless
//! `BREAK_GLASS_REQUIRE_BROWSER=1` (scripts/test sets it): then it fails.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use break_glass_core::audit::{self, AuditEvent, Coverage, ReportContext, Summary, Unread};
use chrono::{DateTime, Utc};
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs Chromium headless on `page` with `args`, in a fresh profile, with
/// everything that would reach for the network switched off (the closed
/// network here otherwise makes it hang); killed after a minute.
fn run_chromium(browser: &Path, page: &Path, args: &[String]) -> String {
    let profile = std::env::temp_dir().join(format!("bg-chromium-{}-{}", std::process::id(), args.len()));
    let _ = std::fs::remove_dir_all(&profile);
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().unwrap()
}

/// A session with something in every section, and hostile text in every
/// field a caller controls.
fn report() -> (ReportContext, Summary) {
    let base = t("2026-11-30T09:02:00Z");
    let mut events = Vec::new();
    for i in 0..90i64 {
        let (source, name, read_only) = match i % 6 {
            0 => ("ec2.amazonaws.com", "RebootInstances", false),
            1 => ("ecs.amazonaws.com", "UpdateService", false),
            _ => ("ec2.amazonaws.com", "DescribeInstances", true),
        };
        let raw = json!({
            "eventID": format!("e-{i}"), "eventTime": (base + chrono::Duration::seconds(i * 50)).to_rfc3339(),
            "eventSource": source, "eventName": name, "awsRegion": "eu-west-1", "readOnly": read_only,
            "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.22.0",
            "requestParameters": {"instanceId": format!("i-0{i:07x}"), "cluster": "prod", "service": "web"},
            "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BreakGlassAdmin_0a1b2c3d4e5f6a7b/alice@example.com"}
        });
        events.push(AuditEvent::from_cloudtrail_json(&raw.to_string()).unwrap());
    }
    let hostile = |id: &str, at: &str, source: &str, name: &str, extra: serde_json::Value| {
        let mut raw = json!({
            "eventID": id, "eventTime": at, "eventSource": source, "eventName": name, "awsRegion": "eu-west-1",
            "readOnly": false, "sourceIPAddress": "203.0.113.66",
            "userAgent": "<img src=x onerror=alert(1)>",
            "requestParameters": {"roleName": "<script>alert('role')</script>", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}
        });
        for (k, v) in extra.as_object().unwrap() {
            raw[k] = v.clone();
        }
        AuditEvent::from_cloudtrail_json(&raw.to_string()).unwrap()
    };
    events.push(hostile(
        "h-1",
        "2026-11-30T09:31:00Z",
        "iam.amazonaws.com",
        "AttachRolePolicy",
        json!({}),
    ));
    events.push(hostile(
        "h-2",
        "2026-11-30T09:33:00Z",
        "cloudtrail.amazonaws.com",
        "StopLogging",
        json!({"errorCode": "AccessDenied", "errorMessage": "<b>not authorized</b>", "requestParameters": {"name": "org-trail"}}),
    ));
    let summary = Summary::build(events);
    let ctx = ReportContext {
        user_name: "alice@example.com".into(),
        slack_user: "U0001\"><script>alert(2)</script>".into(),
        account: "123456789012".into(),
        permission_set: "BreakGlassAdmin".into(),
        reason: Some("Checkout is down <script>alert(3)</script>".into()),
        incident: Some("https://incidents.example.com/INC-42".into()),
        ended_early_by: Some("U0001".into()),
        granted_at: t("2026-11-30T09:00:05Z"),
        revoked_at: t("2026-11-30T10:00:05Z"),
        sessions_valid_until: t("2026-11-30T11:00:05Z"),
        sessions_ended: false,
        window_start: t("2026-11-30T08:55:05Z"),
        window_end: t("2026-11-30T11:00:05Z"),
        source: "CloudTrail LookupEvents in eu-west-1, us-east-1".into(),
        coverage: vec![Coverage {
            scope: "us-east-1".into(),
            events: 0,
            complete_to: t("2026-11-30T10:40:00Z"),
            window_end: t("2026-11-30T11:00:05Z"),
            unread: Some(Unread::About(120)),
            failure: None,
            unreadable: 0,
            requests: 40,
            left_out: 0,
        }],
        problems: vec![],
        execution_name: "bg-t0001-u0001-123456789012-g1".into(),
        execution_url: audit::render::execution_console_url(
            "arn:aws:states:eu-west-1:111111111111:stateMachine:break-glass-access",
            "bg-t0001-u0001-123456789012-g1",
        ),
    };
    (ctx, summary)
}

#[test]
fn the_email_renders_in_a_browser_with_every_section_and_nothing_injected() {
    let Some(browser) = chromium() else {
        let required = std::env::var("BREAK_GLASS_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "BREAK_GLASS_REQUIRE_BROWSER=1 but Chromium is not installed (scripts/lib.sh ensure_chromium installs it)"
        );
        eprintln!(
            "SKIPPED the_email_renders_in_a_browser: no /usr/bin/chromium (apt-get install chromium, or run scripts/test)"
        );
        return;
    };
    let (ctx, summary) = report();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("email-report");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, audit::render_html(&ctx, &summary)).unwrap();

    let dom = run_chromium(&browser, &page, &["--dump-dom".to_string()]);
    for id in [
        "header",
        "verdict",
        "incomplete",
        "timeline",
        "high-risk",
        "changes",
        "denied",
        "sign-ins",
        "counts",
        "footer",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "section {id} missing from the rendered page"
        );
    }
    assert!(
        dom.contains("2 high-risk actions, 1 denied · 32 changes, 92 events (incomplete)"),
        "{dom}"
    );
    assert!(
        dom.contains("Checkout is down"),
        "the reason, when known, is shown"
    );
    assert!(dom.contains("complete to 2026-11-30 10:40:00 UTC in us-east-1; about 120 events not read"));
    // The timeline has bars: cells coloured for high risk, changes and reads.
    let timeline = &dom[dom.find("id=\"timeline\"").unwrap()..dom.find("id=\"high-risk\"").unwrap()];
    for colour in ["#b91c1c", "#2563eb", "#9ca3af"] {
        assert!(
            timeline.contains(&format!("bgcolor=\"{colour}\"")),
            "no {colour} bar in the timeline"
        );
    }
    // Empty sections say so.
    let sign_ins = &dom[dom.find("id=\"sign-ins\"").unwrap()..dom.find("id=\"counts\"").unwrap()];
    assert!(sign_ins.contains(">none<"));
    // The browser built no element from any field: they are all text.
    assert!(!dom.contains("<script"), "a script element was injected");
    assert!(!dom.contains("<img"), "an image element was injected");
    assert_eq!(
        dom.matches("onerror=").count(),
        dom.matches("&lt;img src=x onerror=").count(),
        "an event handler attribute was injected"
    );
    assert!(!dom.contains("<b>not authorized</b>"));
    assert!(dom.contains("&lt;script&gt;alert('role')&lt;/script&gt;"));
    // Resources are named from the request, events link to the console.
    assert!(dom.contains("i-0000000"));
    assert!(
        dom.contains(
            "https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/h-1"
        )
    );

    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &browser,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=800,2600".to_string(),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "the screenshot looks empty ({} bytes)",
        png.len()
    );
    eprintln!("screenshot of the report e-mail: {}", shot.display());
}
