//! Summarising CloudTrail events: parse the `CloudTrailEvent` JSON and build
//! the report summary, on 100k synthetic events of one session.

use break_glass_core::audit::{AuditEvent, Summary};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn synthetic(n: usize) -> Vec<String> {
    let names = [
        ("ec2.amazonaws.com", "DescribeInstances", true),
        ("s3.amazonaws.com", "ListBuckets", true),
        ("ec2.amazonaws.com", "RebootInstances", false),
        ("iam.amazonaws.com", "CreateAccessKey", false),
        ("logs.amazonaws.com", "GetLogEvents", true),
        ("kms.amazonaws.com", "Decrypt", true),
        ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", false),
        ("dynamodb.amazonaws.com", "GetItem", true),
    ];
    (0..n)
        .map(|i| {
            let (source, name, ro) = names[i % names.len()];
            format!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BreakGlassAdmin_0a1b2c3d4e5f6a7b/alice@example.com","sessionContext":{{"sessionIssuer":{{"type":"Role","userName":"AWSReservedSSO_BreakGlassAdmin_0a1b2c3d4e5f6a7b"}}}}}},"eventTime":"2026-11-30T09:{:02}:{:02}Z","eventSource":"{source}","eventName":"{name}","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.10","userAgent":"aws-cli/2.22.0","requestParameters":{{"instanceId":"i-{i:08x}"}},"eventID":"ev-{i}","readOnly":{ro},"eventType":"AwsApiCall"}}"#,
                (i / 60) % 60,
                i % 60
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let n = 100_000;
    let raw = synthetic(n);
    let parsed: Vec<AuditEvent> = raw
        .iter()
        .filter_map(|r| AuditEvent::from_cloudtrail_json(r).ok())
        .collect();
    let mut group = c.benchmark_group("summarise");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("summary only", n), &parsed, |b, events| {
        b.iter(|| Summary::build(black_box(events.clone())))
    });
    group.bench_with_input(BenchmarkId::new("parse + filter + summary", n), &raw, |b, raw| {
        b.iter(|| {
            Summary::build(
                raw.iter()
                    .filter_map(|r| AuditEvent::from_cloudtrail_json(r).ok())
                    .filter(|e| e.in_session_of("BreakGlassAdmin", "alice@example.com")),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
