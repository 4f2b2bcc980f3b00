//! The policy's rules read from an SSM parameter on moto, as both functions
//! read them at cold start.

#![allow(clippy::unwrap_used)]

use break_glass_adapters::policy::SsmParameter;
use break_glass_core::clock::ManualClock;
use break_glass_core::ports::PolicySource;
use break_glass_core::requester::{PolicyRules, PolicyUnavailable};
use break_glass_core::retry::Backoff;
use break_glass_testkit::moto;

const POLICY: &str = r#"{"rules": [{"name": "oncall-admin", "accounts": ["111111111111"], "permission_sets": ["BreakGlassAdmin"], "groups": ["oncall"], "max_duration_minutes": 120}]}"#;

#[tokio::test]
async fn rules_are_read_from_a_secure_string_and_a_missing_one_stops_the_function() {
    let sdk = moto::sdk().await;
    let name = format!("/{}/policy", moto::unique("bg"));
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&name)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(POLICY)
        .send()
        .await
        .unwrap();
    let parameter = SsmParameter::from_sdk(&sdk, &name);
    assert_eq!(parameter.read_policy().await.unwrap(), POLICY, "decrypted");

    let clock = ManualClock::at_unix(1_800_000_000);
    let instance = "arn:aws:sso:::instance/ssoins-1".parse().unwrap();
    let max = break_glass_core::domain::AccessDuration::MAX;
    let rules = PolicyRules::stored(Box::new(parameter), instance, max);
    let read = rules.current(&clock, Backoff::API).await.unwrap().unwrap();
    assert_eq!(read.rules()[0].name, "oncall-admin");

    let missing = PolicyRules::stored(
        Box::new(SsmParameter::from_sdk(&sdk, "/nobody/wrote/this")),
        "arn:aws:sso:::instance/ssoins-1".parse().unwrap(),
        max,
    );
    assert!(matches!(
        missing.current(&clock, Backoff::API).await,
        Err(PolicyUnavailable::Unreadable(_))
    ));
}
