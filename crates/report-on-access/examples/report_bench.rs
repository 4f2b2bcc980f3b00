//! The report's measurements, printed for scripts/bench (never asserted).
//!
//! `report_bench summarise [n]`: parses, filters to the session and sums up
//! `n` (100,000) CloudTrail records of real size (1.5 to 2 KB, shaped like
//! the records in AWS's documentation), one core; then renders the CSV and
//! the HTML. Prints events/s and the peak resident memory of the process
//! (reset after the input pool is built, so it measures the report).
//!
//! `report_bench regions [per_region] [scale]`: reads 3 regions of
//! `per_region` (20,000) events each through the real SDK and `LookupEvents`
//! adapter from the CloudTrail stand-in, which throttles any region called
//! faster than its rate; in parallel, then one region after another.
//! `scale` (1 = CloudTrail's real 2 calls/s) speeds up the stand-in's rate
//! and the report's pacing alike, so the comparison holds in less time.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use break_glass_adapters::audit::CloudTrailLookup;
use break_glass_core::audit::{self, AuditEvent, Budget, LOOKUP_INTERVAL, Session, Summary};
use break_glass_core::clock::{Clock, SystemClock};
use break_glass_core::retry::Deadline;
use break_glass_testkit::cloudtrail::{CloudTrailStandIn, realistic_event};
use chrono::{DateTime, Utc};

const ACCOUNT: &str = "123456789012";
const USER: &str = "alice@example.com";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn summarise(n: u64) {
    // A pool of distinct records cycled through: the input is not the
    // report's memory (in a Lambda, pages of 50 arrive and are dropped).
    let base = t("2026-11-30T09:00:00Z");
    let pool: Vec<String> = (0..2_000u64)
        .map(|i| {
            realistic_event(
                i,
                base + chrono::Duration::milliseconds((i * 1_800) as i64),
                ACCOUNT,
                "eu-west-1",
                USER,
            )
            .to_string()
        })
        .collect();
    let average = pool.iter().map(String::len).sum::<usize>() / pool.len();
    let (smallest, largest) = (
        pool.iter().map(String::len).min().unwrap_or(0),
        pool.iter().map(String::len).max().unwrap_or(0),
    );
    let before = status_kib("VmRSS:");
    // Resets VmHWM to the current RSS (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let started = Instant::now();
    let mut summary = Summary::default();
    let mut page = Vec::with_capacity(50);
    for i in 0..n {
        let raw = &pool[(i % pool.len() as u64) as usize];
        if let Ok(mut e) = AuditEvent::from_cloudtrail_json(raw)
            && e.in_session_of("BreakGlassAdmin", USER)
        {
            e.event_time += chrono::Duration::milliseconds((i / 2_000 * 3_600_000) as i64);
            page.push(e);
        }
        if page.len() == 50 {
            summary.extend(page.drain(..));
        }
    }
    summary.extend(page.drain(..));
    summary.finish();
    let summarised = started.elapsed();
    let after_summary = status_kib("VmHWM:");

    let started = Instant::now();
    let csv = audit::render_csv(&summary);
    let ctx = audit::ReportContext {
        user_name: USER.into(),
        slack_user: "U1".into(),
        account: ACCOUNT.into(),
        permission_set: "BreakGlassAdmin".into(),
        reason: None,
        incident: None,
        ended_early_by: None,
        granted_at: base,
        revoked_at: base + chrono::Duration::hours(1),
        sessions_valid_until: base + chrono::Duration::hours(2),
        sessions_ended: false,
        window_start: base,
        window_end: base + chrono::Duration::hours(2),
        source: "bench".into(),
        coverage: vec![],
        problems: vec![],
        execution_name: "bench".into(),
        execution_url: None,
    };
    let html = audit::render_html(&ctx, &summary);
    let rendered = started.elapsed();
    let csv_len = csv.len();
    drop(csv);
    let started = Instant::now();
    let (attachment, note) = report_on_access::csv_attachment(&summary, "bench");
    let attached = started.elapsed();
    let peak = status_kib("VmHWM:");
    let counts = summary.counts();
    println!(
        "summarise: {} events of {average} bytes on average ({smallest} to {largest}): parsed, filtered and summed up in {:.0} ms = {:.0}k events/s on one core",
        counts.total,
        summarised.as_secs_f64() * 1000.0,
        counts.total as f64 / summarised.as_secs_f64() / 1000.0
    );
    println!(
        "summarise: {} writes, {} high risk, {} denied; peak memory {:.1} MB while summarising ({:.1} MB before it)",
        counts.writes,
        counts.high_risk,
        counts.denied,
        after_summary as f64 / 1024.0,
        before as f64 / 1024.0
    );
    println!(
        "summarise: CSV of every event ({:.1} MB) and HTML ({:.0} KB) in {:.0} ms; peak memory with them and the attachment {:.1} MB",
        csv_len as f64 / 1e6,
        html.len() as f64 / 1e3,
        rendered.as_secs_f64() * 1000.0,
        peak as f64 / 1024.0
    );
    println!(
        "summarise: the e-mail's attachment: {} ({}, {:.1} MB) in {:.0} ms{}",
        attachment.filename,
        attachment.content_type,
        attachment.data.len() as f64 / 1e6,
        attached.as_secs_f64() * 1000.0,
        note.map(|n| format!("; {n}")).unwrap_or_default()
    );
}

/// Real time from a fixed moment, so the session's window is in the past.
#[derive(Debug)]
struct RealTimeFrom(DateTime<Utc>, Instant);

#[async_trait::async_trait]
impl Clock for RealTimeFrom {
    fn now(&self) -> DateTime<Utc> {
        self.0 + chrono::Duration::from_std(self.1.elapsed()).unwrap()
    }
    async fn sleep(&self, duration: Duration) {
        SystemClock.sleep(duration).await;
    }
}

async fn regions(per_region: u64, scale: f64) {
    const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "eu-central-1"];
    let trail = CloudTrailStandIn::start().await;
    trail.limit_rate(2.0 * scale);
    let base = t("2026-11-30T09:00:30Z");
    for (r, region) in REGIONS.iter().enumerate() {
        for i in 0..per_region {
            let at = base + chrono::Duration::milliseconds((i * 3_540_000 / per_region) as i64);
            trail.add_in(
                region,
                realistic_event(r as u64 * 10_000_000 + i, at, ACCOUNT, region, USER),
            );
        }
    }
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(trail.url())
        .credentials_provider(break_glass_testkit::moto::credentials())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let lookup = CloudTrailLookup::new(&sdk, None);
    let session = Session {
        account: ACCOUNT.parse().unwrap(),
        permission_set_name: "BreakGlassAdmin".into(),
        user_name: USER.into(),
        start: t("2026-11-30T09:00:00Z"),
        end: t("2026-11-30T10:00:00Z"),
    };
    let regions: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
    let mut walls = Vec::new();
    for (label, concurrency) in [("parallel", 3), ("sequential", 1)] {
        let clock = RealTimeFrom(t("2026-11-30T11:20:00Z"), Instant::now());
        let budget = Budget {
            deadline: Deadline::after(&clock, Duration::from_secs(3_600)),
            pace: LOOKUP_INTERVAL.div_f64(scale),
            concurrency,
            rows_per_query: audit::insights::ROW_CAP,
        };
        let calls_before = trail.calls().len();
        let summary = Mutex::new(Summary::default());
        let started = Instant::now();
        let coverage = audit::read_lookup_events(&lookup, &clock, &session, &regions, budget, &summary).await;
        let wall = started.elapsed();
        let calls = &trail.calls()[calls_before..];
        let throttled = calls.iter().filter(|c| c.throttled).count();
        let events: u64 = coverage.iter().map(|c| c.events).sum();
        println!(
            "regions: {label}: {events} events from 3 regions in {:.1} s ({} calls, {throttled} throttled, complete: {}); at CloudTrail's real 2 calls/s that is {:.0} s",
            wall.as_secs_f64(),
            calls.len(),
            coverage.iter().all(|c| c.complete()),
            wall.as_secs_f64() * scale
        );
        walls.push(wall.as_secs_f64());
    }
    println!(
        "regions: parallel took {:.2} of the sequential time (stand-in and pacing {scale}x CloudTrail's rate)",
        walls[0] / walls[1]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("summarise") => summarise(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000)),
        Some("regions") => {
            let per_region = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20_000);
            let scale = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1.0);
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(regions(per_region, scale));
        }
        _ => eprintln!("usage: report_bench summarise [events] | regions [events per region] [time scale]"),
    }
}
