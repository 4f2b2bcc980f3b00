//! Peak memory while summarising 100k CloudTrail events of one session, as
//! report-on-access does: parse each `CloudTrailEvent`, keep the session's,
//! build the summary. Run by scripts/bench.

#![allow(clippy::print_stdout)]

use break_glass_core::audit::{AuditEvent, Summary};

fn main() {
    let n = 100_000;
    let start = std::time::Instant::now();
    let events = (0..n).filter_map(|i| {
        let (source, name, ro) = [
            ("ec2.amazonaws.com", "DescribeInstances", true),
            ("s3.amazonaws.com", "ListBuckets", true),
            ("ec2.amazonaws.com", "RebootInstances", false),
            ("iam.amazonaws.com", "CreateAccessKey", false),
        ][i % 4];
        let raw = format!(
            r#"{{"userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BreakGlassAdmin_0a1b2c3d4e5f6a7b/alice@example.com","sessionContext":{{"sessionIssuer":{{"userName":"AWSReservedSSO_BreakGlassAdmin_0a1b2c3d4e5f6a7b"}}}}}},"eventTime":"2026-11-30T09:{:02}:{:02}Z","eventSource":"{source}","eventName":"{name}","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.10","userAgent":"aws-cli/2.22.0","requestParameters":{{"instanceId":"i-{i:08x}"}},"eventID":"ev-{i}","readOnly":{ro},"eventType":"AwsApiCall"}}"#,
            (i / 60) % 60,
            i % 60
        );
        AuditEvent::from_cloudtrail_json(&raw)
            .ok()
            .filter(|e| e.in_session_of("BreakGlassAdmin", "alice@example.com"))
    });
    let summary = Summary::build(events);
    let elapsed = start.elapsed();
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .unwrap_or_default();
    println!(
        "{} events ({} writes, {} high risk) parsed and summarised in {:.0} ms ({:.0}k events/s); {}",
        summary.total,
        summary.writes.len(),
        summary.high_risk.len(),
        elapsed.as_secs_f64() * 1000.0,
        summary.total as f64 / elapsed.as_secs_f64() / 1000.0,
        peak_kib.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}
