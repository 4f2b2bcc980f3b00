//! The audit role's credentials in a warm process: a report that runs after
//! the assumed credentials expired must sign with renewed ones, not with
//! credentials cached for the life of the container. The SDK's clock is the
//! test's; the stand-in issues credentials that expire an hour after the
//! (signed) request time and records which key signed each lookup.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudtrail::config::Credentials;
use aws_smithy_async::time::{SharedTimeSource, TimeSource};
use break_glass_adapters::audit::CloudTrailLookup;
use break_glass_core::ports::{AuditQuery, AuditTrail, PortErrorKind};
use break_glass_testkit::cloudtrail::CloudTrailStandIn;

#[derive(Debug, Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TimeSource for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

fn query() -> AuditQuery {
    AuditQuery {
        account: "210987654321".parse().unwrap(),
        region: "eu-west-1".into(),
        user_name: "alice@example.com".into(),
        start: "2026-11-30T09:00:00Z".parse().unwrap(),
        end: "2026-11-30T10:00:00Z".parse().unwrap(),
    }
}

async fn sdk(endpoint: &str, clock: &TestClock) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIAFUNCTION", "function", None, None, "test"))
        .time_source(SharedTimeSource::new(clock.clone()))
        .load()
        .await
}

fn keys(trail: &CloudTrailStandIn) -> Vec<String> {
    trail.calls().into_iter().map(|c| c.access_key).collect()
}

#[tokio::test]
async fn a_warm_report_after_the_audit_roles_credentials_expired_signs_with_new_ones() {
    let trail = CloudTrailStandIn::start().await;
    let clock = TestClock(Arc::new(Mutex::new(SystemTime::now())));
    let lookup = CloudTrailLookup::new(&sdk(trail.url(), &clock).await, Some("break-glass-audit".into()));

    lookup.lookup_page(&query(), None).await.unwrap();
    lookup.lookup_page(&query(), None).await.unwrap();
    assert_eq!(
        trail.roles_assumed(),
        vec!["arn:aws:iam::210987654321:role/break-glass-audit".to_string()],
        "assumed once, in the target account, while the credentials are good"
    );
    assert_eq!(keys(&trail), vec!["ASIASTANDIN1", "ASIASTANDIN1"]);

    // The container stays warm past the credentials' hour.
    clock.advance(Duration::from_secs(61 * 60));
    lookup.lookup_page(&query(), None).await.unwrap();
    assert_eq!(trail.roles_assumed().len(), 2, "the role is assumed again");
    assert_eq!(
        keys(&trail).last().map(String::as_str),
        Some("ASIASTANDIN2"),
        "the lookup after expiry is signed with the renewed credentials"
    );
}

#[tokio::test]
async fn without_an_audit_role_the_functions_own_credentials_sign() {
    let trail = CloudTrailStandIn::start().await;
    let clock = TestClock(Arc::new(Mutex::new(SystemTime::now())));
    let lookup = CloudTrailLookup::new(&sdk(trail.url(), &clock).await, None);
    lookup.lookup_page(&query(), None).await.unwrap();
    assert!(trail.roles_assumed().is_empty());
    assert_eq!(keys(&trail), vec!["AKIAFUNCTION"]);
}

#[tokio::test]
async fn an_unreachable_sts_is_named_at_assume_role_not_as_a_refusal() {
    // Nothing listens here: STS cannot be reached at all.
    let clock = TestClock(Arc::new(Mutex::new(SystemTime::now())));
    let lookup = CloudTrailLookup::new(
        &sdk("http://127.0.0.1:9", &clock).await,
        Some("break-glass-audit".into()),
    );
    let err = lookup.lookup_page(&query(), None).await.unwrap_err();
    assert_eq!(err.operation, "AssumeRole", "{err}");
    assert_ne!(err.kind, PortErrorKind::AccessDenied, "{err}");
}
