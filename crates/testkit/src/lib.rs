//! Test and demo support: stand-ins that speak the real wire protocols, and
//! helpers that set up the moto server. Nothing here ships in a Lambda.
//!
//! Every stand-in binds 127.0.0.1 on a free port and lives as long as the
//! tokio runtime that started it, so a failing test cannot leave one behind.

#![allow(clippy::unwrap_used)]

pub mod cloudtrail;
pub mod executions;
pub mod fixtures;
pub mod ledger;
pub mod logs_insights;
pub mod mail;
pub mod moto;
pub mod names;
pub mod refusing;
pub mod runtime_api;
pub mod slack;
pub mod sso_mocks;

/// Serves `app` on `addr` (`127.0.0.1:0` for a free port) for as long as the
/// current tokio runtime lives; returns the bound address. A stand-in that
/// cannot bind is a broken test environment, so that panics with the reason.
pub async fn serve_local(addr: &str, app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("stand-in cannot listen on {addr}: {e}"));
    let bound = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("stand-in has no local address: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    bound
}

/// Signs a Slack request body the way Slack does, for `now`: the headers to
/// send with it.
pub fn slack_headers(secret: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let secret = break_glass_core::slack::SigningSecret::new(secret);
    vec![
        ("x-slack-request-timestamp".to_string(), timestamp.to_string()),
        ("x-slack-signature".to_string(), secret.sign(timestamp, body)),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ]
}

/// A form body with one `payload` field, as Slack posts interactions.
pub fn interaction_body(payload: &serde_json::Value) -> String {
    let encoded: String = payload
        .to_string()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("payload={encoded}")
}

/// The click Slack sends for the "Break Glass Prod" button of the seed
/// README's example message (legacy attachments).
pub fn seed_click(user_id: &str, message_ts: &str, response_url: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "interactive_message",
        "actions": [{"name": "break_glass", "type": "button", "value": "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"}],
        "callback_id": "deployment_123456789012_abc",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "C12345", "name": "deploys"},
        "user": {"id": user_id, "name": "alice"},
        "action_ts": "1700000001.000200",
        "message_ts": message_ts,
        "attachment_id": "1",
        "token": "legacy-verification-token",
        "is_app_unfurl": false,
        "original_message": {"type": "message", "subtype": "bot_message", "ts": message_ts, "text": "",
            "attachments": [{"callback_id": "deployment_123456789012_abc", "text": "Deployment *ABC* is being rolled back.", "id": 1}]},
        "response_url": response_url,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0"
    })
}
