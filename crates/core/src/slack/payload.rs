//! Slack interactivity payloads: the form field `payload` holding JSON, in
//! either the legacy `interactive_message` shape (the seed's attachments) or
//! Block Kit's `block_actions`.

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::ErrorType;
use crate::domain::{AccessDuration, AccountId, DomainError, PermissionSetArn, SlackUserId, clip};

/// The one action this product answers to, in either shape.
pub const BREAK_GLASS_ACTION: &str = "break_glass";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    BreakGlass(Box<BreakGlassClick>),
    /// Another button on the same message (the seed's "Retry"), or a payload
    /// type we have nothing to do with: acknowledged, nothing else.
    Ignored {
        reason: String,
    },
}

/// A click on a Break Glass button, with everything later steps need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassClick {
    pub team_id: String,
    pub user_id: SlackUserId,
    pub user_name: String,
    pub channel_id: String,
    /// The clicked message: identifies the incident, and the thread we post in.
    pub message_ts: String,
    /// The thread the clicked message lives in, when it is itself a reply.
    pub thread_ts: Option<String>,
    pub action_ts: String,
    pub response_url: String,
    pub account_id: AccountId,
    pub permission_set_arn: PermissionSetArn,
    /// Only a Block Kit button with a JSON value can ask for a duration.
    pub duration: Option<AccessDuration>,
    pub shape: PayloadShape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadShape {
    InteractiveMessage,
    BlockActions,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    #[error("body is not a form with a payload field")]
    NoPayloadField,
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    #[error("payload has no usable {0}")]
    MissingField(&'static str),
    #[error("no 12-digit account id between underscores in {field} {value:?}")]
    NoAccountId { field: &'static str, value: String },
    #[error("more than one 12-digit account id in {field} {value:?}")]
    AmbiguousAccountId { field: &'static str, value: String },
    #[error("button value is not valid JSON: {0}")]
    BadButtonValue(String),
    #[error(transparent)]
    Invalid(#[from] DomainError),
}

impl ErrorType for PayloadError {
    fn error_type(&self) -> &'static str {
        "MalformedPayload"
    }
}

/// Parses a `application/x-www-form-urlencoded` interactivity body.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, PayloadError> {
    let payload = form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or(PayloadError::NoPayloadField)?;
    let value: Value = serde_json::from_str(&payload).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or(PayloadError::MissingField("type"))?;
    match kind {
        "interactive_message" => parse_legacy(value),
        "block_actions" => parse_blocks(value),
        other => Ok(Interaction::Ignored {
            reason: format!("payload type {:?} is not a button click", clip(other)),
        }),
    }
}

#[derive(Deserialize)]
struct Team {
    id: String,
}

#[derive(Deserialize)]
struct Channel {
    id: String,
}

#[derive(Deserialize)]
struct LegacyUser {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct LegacyAction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct LegacyPayload {
    callback_id: Option<String>,
    #[serde(default)]
    actions: Vec<LegacyAction>,
    user: Option<LegacyUser>,
    team: Option<Team>,
    channel: Option<Channel>,
    action_ts: Option<String>,
    message_ts: Option<String>,
    response_url: Option<String>,
    #[serde(default)]
    original_message: Option<MessageRef>,
}

#[derive(Deserialize)]
struct MessageRef {
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    thread_ts: Option<String>,
}

fn decode<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, PayloadError> {
    serde_json::from_value(value).map_err(|e| PayloadError::NotJson(e.to_string()))
}

fn required(value: Option<String>, field: &'static str) -> Result<String, PayloadError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(PayloadError::MissingField(field))
}

fn parse_legacy(value: Value) -> Result<Interaction, PayloadError> {
    let p: LegacyPayload = decode(value)?;
    let action = p.actions.first().ok_or(PayloadError::MissingField("actions"))?;
    let name = action.name.as_deref().unwrap_or_default();
    if name != BREAK_GLASS_ACTION {
        return Ok(Interaction::Ignored {
            reason: format!("action {:?} is not {BREAK_GLASS_ACTION}", clip(name)),
        });
    }
    let callback_id = required(p.callback_id, "callback_id")?;
    let account_id = account_in("callback_id", &callback_id)?;
    let arn: PermissionSetArn = required(action.value.clone(), "actions[0].value")?.parse()?;
    let user = p.user.ok_or(PayloadError::MissingField("user"))?;
    let thread_ts = p
        .original_message
        .and_then(|m| m.thread_ts.filter(|t| Some(t) != m.ts.as_ref()));
    Ok(Interaction::BreakGlass(Box::new(BreakGlassClick {
        team_id: required(p.team.map(|t| t.id), "team.id")?,
        user_id: user.id.parse()?,
        user_name: user.name.unwrap_or_default(),
        channel_id: required(p.channel.map(|c| c.id), "channel.id")?,
        message_ts: required(p.message_ts, "message_ts")?,
        thread_ts,
        action_ts: required(p.action_ts, "action_ts")?,
        response_url: required(p.response_url, "response_url")?,
        account_id,
        permission_set_arn: arn,
        duration: None,
        shape: PayloadShape::InteractiveMessage,
    })))
}

#[derive(Deserialize)]
struct BlockUser {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct BlockAction {
    #[serde(default)]
    action_id: Option<String>,
    #[serde(default)]
    block_id: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action_ts: Option<String>,
}

#[derive(Deserialize)]
struct Container {
    #[serde(default)]
    message_ts: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    thread_ts: Option<String>,
}

#[derive(Deserialize)]
struct BlockPayload {
    #[serde(default)]
    actions: Vec<BlockAction>,
    user: Option<BlockUser>,
    team: Option<Team>,
    channel: Option<Channel>,
    container: Option<Container>,
    message: Option<MessageRef>,
    response_url: Option<String>,
}

/// A button value carrying everything: `{"account_id", "permission_set_arn", "duration_minutes"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ButtonValue {
    account_id: String,
    permission_set_arn: String,
    #[serde(default)]
    duration_minutes: Option<u64>,
}

fn parse_blocks(value: Value) -> Result<Interaction, PayloadError> {
    let p: BlockPayload = decode(value)?;
    let action = p.actions.first().ok_or(PayloadError::MissingField("actions"))?;
    let action_id = action.action_id.as_deref().unwrap_or_default();
    if action_id != BREAK_GLASS_ACTION {
        return Ok(Interaction::Ignored {
            reason: format!("action {:?} is not {BREAK_GLASS_ACTION}", clip(action_id)),
        });
    }
    let raw_value = required(action.value.clone(), "actions[0].value")?;
    let (account_id, arn, duration) = if raw_value.trim_start().starts_with('{') {
        let v: ButtonValue =
            serde_json::from_str(&raw_value).map_err(|e| PayloadError::BadButtonValue(e.to_string()))?;
        let duration = v.duration_minutes.map(AccessDuration::from_minutes).transpose()?;
        (v.account_id.parse()?, v.permission_set_arn.parse()?, duration)
    } else {
        let block_id = required(action.block_id.clone(), "actions[0].block_id")?;
        (account_in("block_id", &block_id)?, raw_value.parse()?, None)
    };
    let user = p.user.ok_or(PayloadError::MissingField("user"))?;
    let container = p.container;
    let message = p.message;
    let message_ts = container
        .as_ref()
        .and_then(|c| c.message_ts.clone())
        .or_else(|| message.as_ref().and_then(|m| m.ts.clone()));
    let thread_ts = container
        .as_ref()
        .and_then(|c| c.thread_ts.clone())
        .or_else(|| message.as_ref().and_then(|m| m.thread_ts.clone()))
        .filter(|t| Some(t) != message_ts.as_ref());
    let channel_id = p
        .channel
        .map(|c| c.id)
        .or_else(|| container.and_then(|c| c.channel_id));
    let team_id = p.team.map(|t| t.id).or(user.team_id);
    Ok(Interaction::BreakGlass(Box::new(BreakGlassClick {
        team_id: required(team_id, "team.id")?,
        user_id: user.id.parse()?,
        user_name: user.username.or(user.name).unwrap_or_default(),
        channel_id: required(channel_id, "channel.id")?,
        message_ts: required(message_ts, "container.message_ts")?,
        thread_ts,
        action_ts: required(action.action_ts.clone(), "actions[0].action_ts")?,
        response_url: required(p.response_url, "response_url")?,
        account_id,
        permission_set_arn: arn,
        duration,
        shape: PayloadShape::BlockActions,
    })))
}

/// The account id in `<prefix>_<12 digits>_<suffix>`: the one segment that is
/// exactly twelve digits. Two different ones would be a guess, so refuse.
fn account_in(field: &'static str, value: &str) -> Result<AccountId, PayloadError> {
    let mut found: Option<AccountId> = None;
    for segment in value.split('_') {
        if let Ok(id) = segment.parse::<AccountId>() {
            match &found {
                Some(existing) if existing != &id => {
                    return Err(PayloadError::AmbiguousAccountId {
                        field,
                        value: clip(value),
                    });
                }
                _ => found = Some(id),
            }
        }
    }
    found.ok_or_else(|| PayloadError::NoAccountId {
        field,
        value: clip(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn form(payload: &Value) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    /// What Slack posts when someone clicks "Break Glass Prod" on the seed
    /// README's example message.
    fn seed_click(action: &str, value: &str) -> Value {
        json!({
            "type": "interactive_message",
            "actions": [{"name": action, "type": "button", "value": value}],
            "callback_id": "deployment_123456789012_abc",
            "team": {"id": "T0001", "domain": "example"},
            "channel": {"id": "C12345", "name": "deploys"},
            "user": {"id": "U0001", "name": "alice"},
            "action_ts": "1700000001.000200",
            "message_ts": "1700000000.000100",
            "attachment_id": "1",
            "token": "legacy-verification-token",
            "is_app_unfurl": false,
            "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
            "trigger_id": "1.2.3",
            "original_message": {"type": "message", "ts": "1700000000.000100", "text": ""}
        })
    }

    #[test]
    fn the_seed_message_click_is_a_break_glass_request() {
        let body = form(&seed_click(
            "break_glass",
            "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
        ));
        let Interaction::BreakGlass(click) = parse_interaction(&body).unwrap() else {
            panic!("expected a break glass click")
        };
        assert_eq!(click.account_id.as_str(), "123456789012");
        assert_eq!(
            click.permission_set_arn.as_str(),
            "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"
        );
        assert_eq!(click.user_id.as_str(), "U0001");
        assert_eq!(click.user_name, "alice");
        assert_eq!(click.channel_id, "C12345");
        assert_eq!(click.message_ts, "1700000000.000100");
        assert_eq!(click.thread_ts, None);
        assert_eq!(click.team_id, "T0001");
        assert_eq!(click.duration, None);
    }

    #[test]
    fn the_seed_retry_button_is_ignored() {
        let body = form(&seed_click("retry", "retry"));
        assert!(matches!(
            parse_interaction(&body),
            Ok(Interaction::Ignored { .. })
        ));
    }

    fn block_click(block_id: &str, value: &str, action_id: &str) -> Value {
        json!({
            "type": "block_actions",
            "user": {"id": "U0002", "username": "bob", "team_id": "T0001"},
            "api_app_id": "A1",
            "team": {"id": "T0001", "domain": "example"},
            "container": {"type": "message", "message_ts": "1700000100.000100", "channel_id": "C777", "is_ephemeral": false, "thread_ts": "1700000000.000001"},
            "channel": {"id": "C777", "name": "incidents"},
            "message": {"type": "message", "ts": "1700000100.000100", "thread_ts": "1700000000.000001"},
            "response_url": "https://hooks.slack.com/actions/T0001/2/def",
            "trigger_id": "4.5.6",
            "state": {"values": {}},
            "actions": [{
                "type": "button", "action_id": action_id, "block_id": block_id,
                "text": {"type": "plain_text", "text": "Break glass"},
                "value": value, "action_ts": "1700000101.000300"
            }]
        })
    }

    #[test]
    fn block_kit_reads_the_account_from_the_block_id() {
        let body = form(&block_click(
            "incident_210987654321_db",
            "arn:aws:sso:::permissionSet/ssoins-12345/ps-abc",
            "break_glass",
        ));
        let Interaction::BreakGlass(click) = parse_interaction(&body).unwrap() else {
            panic!()
        };
        assert_eq!(click.account_id.as_str(), "210987654321");
        assert_eq!(click.permission_set_arn.permission_set_id(), "ps-abc");
        assert_eq!(click.message_ts, "1700000100.000100");
        assert_eq!(click.thread_ts.as_deref(), Some("1700000000.000001"));
        assert_eq!(click.user_name, "bob");
        assert_eq!(click.shape, PayloadShape::BlockActions);
    }

    #[test]
    fn block_kit_json_value_carries_account_set_and_duration() {
        let value = json!({
            "account_id": "000000000042",
            "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-12345/ps-xyz",
            "duration_minutes": 30
        })
        .to_string();
        let body = form(&block_click("anything", &value, "break_glass"));
        let Interaction::BreakGlass(click) = parse_interaction(&body).unwrap() else {
            panic!()
        };
        assert_eq!(click.account_id.as_str(), "000000000042");
        assert_eq!(click.duration.map(|d| d.minutes()), Some(30));
    }

    #[test]
    fn other_block_actions_are_ignored() {
        let body = form(&block_click("x_123456789012_y", "retry", "retry"));
        assert!(matches!(
            parse_interaction(&body),
            Ok(Interaction::Ignored { .. })
        ));
    }

    #[test]
    fn garbage_gets_a_clear_reason() {
        let arn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "payload field"),
            (b"payload".to_vec(), "not valid JSON"),
            (b"text=hello".to_vec(), "payload field"),
            (b"payload=%7Bnot+json".to_vec(), "not valid JSON"),
            (b"payload=%5B1%2C2%5D".to_vec(), "no usable type"),
            (form(&json!({"type": 7})), "no usable type"),
            (form(&json!({"type": "interactive_message", "actions": []})), "actions"),
            (form(&seed_click("break_glass", "not-an-arn")), "permission set ARN"),
            (form(&seed_click("break_glass", "")), "actions[0].value"),
            (
                form(&{
                    let mut v = seed_click("break_glass", arn);
                    v["callback_id"] = json!("deployment_abc");
                    v
                }),
                "no 12-digit account id",
            ),
            (
                form(&{
                    let mut v = seed_click("break_glass", arn);
                    v["callback_id"] = json!("x_123456789012_210987654321");
                    v
                }),
                "more than one",
            ),
            (
                form(&{
                    let mut v = seed_click("break_glass", arn);
                    v["user"] = json!({"id": "U 1; drop"});
                    v
                }),
                "Slack user id",
            ),
            (
                form(&{
                    let mut v = seed_click("break_glass", arn);
                    v.as_object_mut().unwrap().remove("response_url");
                    v
                }),
                "response_url",
            ),
            (form(&block_click("b", "{\"account_id\": 1}", "break_glass")), "button value"),
            (
                form(&block_click(
                    "b",
                    &json!({"account_id": "123456789012", "permission_set_arn": arn, "duration_minutes": 100000}).to_string(),
                    "break_glass",
                )),
                "duration",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_interaction(&body).expect_err(expected).to_string();
            assert!(
                err.contains(expected) || err.to_lowercase().contains(expected),
                "{expected:?} not in {err:?}"
            );
        }
    }

    #[test]
    fn other_payload_types_are_ignored() {
        let body = form(&json!({"type": "view_submission"}));
        assert!(matches!(
            parse_interaction(&body),
            Ok(Interaction::Ignored { .. })
        ));
    }
}
