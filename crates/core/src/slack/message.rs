//! The words and JSON we answer Slack with.

use serde_json::{Value, json};

/// An HTTP response body that shows `text` to the clicker only. For legacy
/// attachments Slack would otherwise *replace* the clicked message with our
/// answer; `replace_original: false` keeps the incident message intact.
pub fn ephemeral(text: &str) -> Value {
    json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": text,
    })
}
