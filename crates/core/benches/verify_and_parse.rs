//! Verify + parse of a realistic interaction (the seed message's click), the
//! work access-requested does on every request before calling AWS.

use break_glass_core::slack::{SigningSecret, parse_interaction, verify_request};
use chrono::DateTime;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn realistic_body() -> Vec<u8> {
    let payload = serde_json::json!({
        "type": "interactive_message",
        "actions": [{"name": "break_glass", "type": "button", "value": "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"}],
        "callback_id": "deployment_123456789012_abc",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "C12345", "name": "deploys"},
        "user": {"id": "U0001", "name": "alice"},
        "action_ts": "1700000001.000200",
        "message_ts": "1700000000.000100",
        "attachment_id": "1",
        "token": "legacy-verification-token",
        "is_app_unfurl": false,
        "original_message": {"type": "message", "subtype": "bot_message", "ts": "1700000000.000100",
            "text": "", "bot_id": "B1", "username": "Live Laugh Ship", "icons": {"emoji": ":sparkles:"},
            "attachments": [{"callback_id": "deployment_123456789012_abc", "fallback": "Deployment ABC is being rolled back.",
                "text": "Deployment *ABC* is being rolled back.", "id": 1, "color": "fc6f03",
                "actions": [
                    {"id": "1", "name": "retry", "text": "Retry", "type": "button", "value": "retry", "style": ""},
                    {"id": "2", "name": "break_glass", "text": "Break Glass Prod", "type": "button",
                     "value": "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345", "style": "danger",
                     "confirm": {"text": "Are you sure?", "title": "Are you sure?", "ok_text": "Yes", "dismiss_text": "No"}}
                ]}]},
        "response_url": "https://hooks.slack.com/actions/T0001/1234567890/abcdefghijklmnopqrstuvwx",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0"
    });
    form_body(&payload.to_string())
}

fn form_body(json: &str) -> Vec<u8> {
    let mut out = b"payload=".to_vec();
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let body = realistic_body();
    let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
    let ts = 1_800_000_000i64;
    let sig = secret.sign(ts, &body);
    let ts_header = ts.to_string();
    let now = DateTime::from_timestamp(ts, 0).unwrap_or_default();
    c.bench_function(&format!("verify+parse seed click ({} bytes)", body.len()), |b| {
        b.iter(|| {
            verify_request(
                &secret,
                Some(ts_header.as_bytes()),
                Some(sig.as_bytes()),
                black_box(&body),
                now,
            )
            .map(|()| parse_interaction(black_box(&body)))
        })
    });
    c.bench_function("verify only", |b| {
        b.iter(|| {
            verify_request(
                &secret,
                Some(ts_header.as_bytes()),
                Some(sig.as_bytes()),
                black_box(&body),
                now,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
