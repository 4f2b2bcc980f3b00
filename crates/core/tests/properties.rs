//! Whatever arrives at the endpoint, the verifier and the parser answer with
//! a value or an error, never a panic; and a signature covers every byte.

#![allow(clippy::unwrap_used)]

use break_glass_core::slack::{SigningSecret, parse_interaction, verify_request};
use chrono::DateTime;
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_requests_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        ts in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
        sig in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        now in any::<i64>(),
    ) {
        let secret = SigningSecret::new("s");
        let now = DateTime::from_timestamp(now.clamp(-8_000_000_000_000, 8_000_000_000_000), 0).unwrap();
        let _ = verify_request(&secret, ts.as_deref(), sig.as_deref(), &body, now);
        let _ = parse_interaction(&body);
    }

    #[test]
    fn arbitrary_json_payloads_never_panic(json in arbitrary_json()) {
        let body = format!("payload={}", urlencode(&json.to_string()));
        let _ = parse_interaction(body.as_bytes());
    }

    #[test]
    fn any_change_to_a_signed_body_is_refused(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let secret = SigningSecret::new("signing-secret");
        let sig = secret.sign(NOW, &body);
        let now = DateTime::from_timestamp(NOW, 0).unwrap();
        let ts = NOW.to_string();
        prop_assert!(verify_request(&secret, Some(ts.as_bytes()), Some(sig.as_bytes()), &body, now).is_ok());
        let mut changed = body.clone();
        let i = index.index(changed.len());
        changed[i] ^= flip;
        prop_assert!(verify_request(&secret, Some(ts.as_bytes()), Some(sig.as_bytes()), &changed, now).is_err());
        let mut longer = body.clone();
        longer.push(b'&');
        prop_assert!(verify_request(&secret, Some(ts.as_bytes()), Some(sig.as_bytes()), &longer, now).is_err());
    }

    #[test]
    fn any_other_timestamp_is_refused(body in proptest::collection::vec(any::<u8>(), 0..128), delta in -300i64..=300) {
        prop_assume!(delta != 0);
        let secret = SigningSecret::new("signing-secret");
        let sig = secret.sign(NOW, &body);
        let other = (NOW + delta).to_string();
        // Inside the replay window, so only the signature can refuse it.
        let now = DateTime::from_timestamp(NOW, 0).unwrap();
        prop_assert!(verify_request(&secret, Some(other.as_bytes()), Some(sig.as_bytes()), &body, now).is_err());
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("interactive_message".to_string()),
            Just("block_actions".to_string()),
            Just("break_glass".to_string()),
            Just("deployment_123456789012_abc".to_string()),
            Just("arn:aws:sso:::permissionSet/ssoins-1/ps-1".to_string()),
            ".{0,20}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("actions".to_string()),
                    Just("name".to_string()),
                    Just("value".to_string()),
                    Just("callback_id".to_string()),
                    Just("action_id".to_string()),
                    Just("block_id".to_string()),
                    Just("user".to_string()),
                    Just("id".to_string()),
                    Just("team".to_string()),
                    Just("channel".to_string()),
                    Just("message_ts".to_string()),
                    Just("response_url".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
