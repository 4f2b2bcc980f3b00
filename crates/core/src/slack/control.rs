//! The Slack shapes beyond the Break Glass button: the End and Extend
//! buttons, App Home's "Break glass" button, the modal's `view_submission`,
//! the `/break-glass` slash command and the Events API. Read as strictly
//! as clicks (see [`super::payload`]): every id of Slack's shape, every
//! value we put in a button read back with no unknown field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::payload::{
    BreakGlassClick, Interaction, Object, PayloadError, PayloadShape, form_decode, id, object, required,
    response_url, strict_json, string, trigger_id, workspace,
};
use crate::domain::{
    AccountId, PermissionSetArn, SlackAppId, SlackChannelId, SlackEnterpriseId, SlackTeamId, SlackUserId,
    clip,
};
use crate::policy::WorkspaceIds;

pub const END_ACTION: &str = "break_glass_end";
pub const EXTEND_ACTION: &str = "break_glass_extend";
/// App Home's "Break glass" button.
pub const OPEN_ACTION: &str = "break_glass_open";
/// The modal's `callback_id`.
pub const MODAL_CALLBACK_ID: &str = "break_glass_request";

/// Who is asking, as the payload says: every workspace id it carries must
/// be ours, like a click's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub team_id: SlackTeamId,
    pub workspace: WorkspaceIds,
    pub api_app_id: Option<SlackAppId>,
    pub user_id: SlackUserId,
    pub user_name: String,
}

/// Which hold a button acts on: what we put in its value. Only a pointer:
/// who may act is decided by the ledger, not by the button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRef {
    pub execution: String,
    /// The Identity Center user id (the ledger's key).
    pub user: String,
    pub account: AccountId,
    pub permission_set: PermissionSetArn,
    /// The end the button showed: Extend extends from it, so a double click
    /// extends once.
    #[serde(with = "crate::contract::timestamp")]
    pub until: DateTime<Utc>,
}

impl HoldRef {
    pub fn value(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAction {
    End,
    Extend,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlClick {
    pub who: Who,
    pub action: ControlAction,
    pub hold: HoldRef,
    /// Present for a button in a message; App Home's have none.
    pub response_url: Option<String>,
    /// Where the button was: a message's channel and thread, or App Home.
    pub channel_id: Option<SlackChannelId>,
}

/// App Home's "Break glass" button: open the modal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opener {
    pub who: Who,
    pub trigger_id: String,
}

/// The modal, submitted: each input block's value, by block id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub who: Who,
    /// The modal's id: names the request, so submitting twice starts once.
    pub view_id: String,
    pub values: BTreeMap<String, String>,
    /// What we stored in the modal when we opened it.
    pub private_metadata: String,
}

fn who(p: &Object) -> Result<Who, PayloadError> {
    let user = object(p, "user", "user")?.ok_or(PayloadError::MissingField("user"))?;
    let (team_id, workspace) = workspace(p, user)?;
    let user_name = match string(user, "username", "user.username")? {
        Some(name) => name,
        None => string(user, "name", "user.name")?.unwrap_or_default(),
    };
    Ok(Who {
        team_id,
        workspace,
        api_app_id: id(p, "api_app_id", "api_app_id")?,
        user_id: required(string(user, "id", "user.id")?, "user.id")?.parse()?,
        user_name: clip(user_name),
    })
}

/// A `block_actions` payload whose action is one of ours other than
/// `break_glass` (`None`: leave it to the click parser).
pub(crate) fn parse_block_action(p: &Object) -> Result<Option<Interaction>, PayloadError> {
    let Some(Value::Array(actions)) = p.get("actions") else {
        return Ok(None);
    };
    let ids: Vec<Option<&str>> = actions
        .iter()
        .map(|a| {
            a.as_object()
                .and_then(|a| a.get("action_id"))
                .and_then(Value::as_str)
        })
        .collect();
    let ours = [END_ACTION, EXTEND_ACTION, OPEN_ACTION];
    if !ids.iter().any(|i| i.is_some_and(|i| ours.contains(&i))) {
        return Ok(None);
    }
    let [Value::Object(action)] = actions.as_slice() else {
        return Err(PayloadError::ActionCount(actions.len()));
    };
    match string(action, "type", "actions[0].type")? {
        Some("button") => {}
        other => return Err(PayloadError::NotAButton(clip(other.unwrap_or_default()))),
    }
    let who = who(p)?;
    let action_id = required(
        string(action, "action_id", "actions[0].action_id")?,
        "actions[0].action_id",
    )?;
    if action_id == OPEN_ACTION {
        let trigger_id = trigger_id(p)?.ok_or(PayloadError::MissingField("trigger_id"))?;
        return Ok(Some(Interaction::OpenModal(Box::new(Opener { who, trigger_id }))));
    }
    let raw = required(string(action, "value", "actions[0].value")?, "actions[0].value")?;
    let value = strict_json(raw).map_err(|e| PayloadError::BadButtonValue(clip(&e.to_string())))?;
    let hold: HoldRef =
        serde_json::from_value(value).map_err(|e| PayloadError::BadButtonValue(clip(&e.to_string())))?;
    let response_url = match p.get("response_url") {
        None | Some(Value::Null) => None,
        Some(_) => Some(response_url(p)?),
    };
    let channel_id = match object(p, "channel", "channel")? {
        Some(channel) => id(channel, "id", "channel.id")?,
        None => None,
    };
    Ok(Some(Interaction::Control(Box::new(ControlClick {
        who,
        action: if action_id == END_ACTION {
            ControlAction::End
        } else {
            ControlAction::Extend
        },
        hold,
        response_url,
        channel_id,
    }))))
}

/// A `view_submission`: ours when its `callback_id` is the modal's.
pub(crate) fn parse_submission(p: &Object) -> Result<Interaction, PayloadError> {
    let view = object(p, "view", "view")?.ok_or(PayloadError::MissingField("view"))?;
    if string(view, "callback_id", "view.callback_id")? != Some(MODAL_CALLBACK_ID) {
        return Ok(Interaction::Ignored {
            reason: "a view that is not the break-glass modal".into(),
        });
    }
    let who = who(p)?;
    let view_id = required(string(view, "id", "view.id")?, "view.id")?;
    if view_id.len() > 32
        || !view_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(PayloadError::WrongType {
            field: "view.id",
            expected: "a Slack view id",
        });
    }
    let state = object(view, "state", "view.state")?.ok_or(PayloadError::MissingField("view.state"))?;
    let blocks = object(state, "values", "view.state.values")?
        .ok_or(PayloadError::MissingField("view.state.values"))?;
    let mut values = BTreeMap::new();
    for (block_id, actions) in blocks {
        let Value::Object(actions) = actions else {
            return Err(PayloadError::WrongType {
                field: "view.state.values[]",
                expected: "an object",
            });
        };
        for input in actions.values() {
            let Value::Object(input) = input else {
                return Err(PayloadError::WrongType {
                    field: "view.state.values[][]",
                    expected: "an object",
                });
            };
            let value = match object(input, "selected_option", "selected_option")? {
                Some(option) => string(option, "value", "selected_option.value")?,
                None => string(input, "value", "value")?,
            };
            if let Some(value) = value {
                values.insert(clip(block_id), value.to_string());
            }
        }
    }
    Ok(Interaction::Submission(Box::new(Submission {
        who,
        view_id: view_id.to_string(),
        values,
        private_metadata: string(view, "private_metadata", "view.private_metadata")?
            .unwrap_or_default()
            .to_string(),
    })))
}

/// Who sent a body that names its workspace at the top level (`team_id`,
/// `enterprise_id`, `api_app_id`: slash commands and Events API callbacks).
fn flat_who(p: &Object, user_id: SlackUserId, user_name: String) -> Result<Who, PayloadError> {
    let team_id: SlackTeamId = required(string(p, "team_id", "team_id")?, "team_id")?.parse()?;
    let enterprise: Option<SlackEnterpriseId> = id(p, "enterprise_id", "enterprise_id")?;
    Ok(Who {
        team_id: team_id.clone(),
        workspace: WorkspaceIds {
            teams: vec![team_id],
            enterprises: enterprise.into_iter().collect(),
        },
        api_app_id: id(p, "api_app_id", "api_app_id")?,
        user_id,
        user_name,
    })
}

// ------------------------------------------------------------ slash command

/// `/break-glass`, as Slack posts it (a form, not a JSON payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub who: Who,
    pub command: String,
    pub text: String,
    pub channel_id: Option<SlackChannelId>,
    pub trigger_id: String,
    pub response_url: String,
}

/// Parses a slash command body: each field Slack sends at most once, under
/// its plain name (as for `payload`), and Slack's shapes.
pub fn parse_command(body: &[u8]) -> Result<Command, PayloadError> {
    const FIELDS: &[&str] = &[
        "team_id",
        "enterprise_id",
        "channel_id",
        "user_id",
        "user_name",
        "command",
        "text",
        "trigger_id",
        "response_url",
        "api_app_id",
    ];
    let mut p = Object::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let plain = std::str::from_utf8(name).unwrap_or_default();
        if FIELDS.contains(&plain) {
            if p.contains_key(plain) {
                return Err(PayloadError::DuplicatePayloadField);
            }
            p.insert(plain.to_string(), Value::String(form_decode(value)?));
        } else if FIELDS.contains(&form_decode(name)?.as_str()) {
            return Err(PayloadError::EncodedFieldName);
        }
    }
    let user_id: SlackUserId = required(string(&p, "user_id", "user_id")?, "user_id")?.parse()?;
    let user_name = clip(string(&p, "user_name", "user_name")?.unwrap_or_default());
    let who = flat_who(&p, user_id, user_name)?;
    let command = required(string(&p, "command", "command")?, "command")?.to_string();
    let trigger_id = trigger_id(&p)?.ok_or(PayloadError::MissingField("trigger_id"))?;
    // Commands answer on …/commands/…, under the same host as every other.
    let response_url = response_url(&p)?;
    let text = string(&p, "text", "text")?.unwrap_or_default();
    if text.len() > 4000 {
        return Err(PayloadError::WrongType {
            field: "text",
            expected: "at most 4000 bytes",
        });
    }
    Ok(Command {
        who,
        command,
        text: text.to_string(),
        // Commands from a DM or a private conversation still carry an id;
        // whether we may post there is Slack's answer.
        channel_id: id(&p, "channel_id", "channel_id")?,
        trigger_id,
        response_url,
    })
}

// ----------------------------------------------------------------- events

/// An Events API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Slack checking the request URL: answer the challenge.
    UrlVerification { challenge: String },
    /// Somebody opened our App Home.
    HomeOpened { who: Who },
    /// Anything else: acknowledged, nothing done.
    Ignored(String),
}

/// Parses an Events API body (JSON, no duplicate keys).
pub fn parse_event(body: &[u8]) -> Result<Event, PayloadError> {
    let text = std::str::from_utf8(body).map_err(|_| PayloadError::NotJson("not UTF-8".into()))?;
    let value = strict_json(text).map_err(|e| PayloadError::NotJson(clip(&e.to_string())))?;
    let Value::Object(p) = value else {
        return Err(PayloadError::WrongType {
            field: "body",
            expected: "an object",
        });
    };
    match string(&p, "type", "type")? {
        Some("url_verification") => {
            let challenge = required(string(&p, "challenge", "challenge")?, "challenge")?;
            if challenge.len() > 256 || !challenge.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(PayloadError::WrongType {
                    field: "challenge",
                    expected: "a Slack challenge",
                });
            }
            Ok(Event::UrlVerification {
                challenge: challenge.to_string(),
            })
        }
        Some("event_callback") => {
            let event = object(&p, "event", "event")?.ok_or(PayloadError::MissingField("event"))?;
            match string(event, "type", "event.type")? {
                Some("app_home_opened") => {}
                other => {
                    return Ok(Event::Ignored(format!(
                        "event {:?} is not app_home_opened",
                        clip(other.unwrap_or_default())
                    )));
                }
            }
            if string(event, "tab", "event.tab")?.is_some_and(|t| t != "home") {
                return Ok(Event::Ignored("the messages tab".into()));
            }
            let user_id: SlackUserId =
                required(string(event, "user", "event.user")?, "event.user")?.parse()?;
            Ok(Event::HomeOpened {
                who: flat_who(&p, user_id, String::new())?,
            })
        }
        other => Ok(Event::Ignored(format!(
            "event type {:?}",
            clip(other.unwrap_or_default())
        ))),
    }
}

impl Who {
    /// A click-shaped request for the policy checks every request passes
    /// (workspace, app, user list), naming `account` and `permission_set`.
    pub fn as_click(
        &self,
        account_id: AccountId,
        permission_set_arn: PermissionSetArn,
        channel_id: SlackChannelId,
        message_ts: String,
    ) -> BreakGlassClick {
        BreakGlassClick {
            team_id: self.team_id.clone(),
            workspace: self.workspace.clone(),
            api_app_id: self.api_app_id.clone(),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            channel_id,
            message_ts: message_ts.clone(),
            thread_ts: None,
            action_ts: message_ts,
            response_url: String::new(),
            account_id,
            permission_set_arn,
            duration: None,
            shape: PayloadShape::Modal,
            trigger_id: None,
            reason: None,
            incident: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::parse_interaction;
    use serde_json::json;

    fn form(payload: &Value) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    fn hold() -> HoldRef {
        HoldRef {
            execution: "bg-U1-123456789012-abc-g1".into(),
            user: "9067-user".into(),
            account: "123456789012".parse().unwrap(),
            permission_set: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".parse().unwrap(),
            until: DateTime::from_timestamp(1_800_003_600, 0).unwrap(),
        }
    }

    /// Slack's documented block_actions example, with our button in it.
    fn block_action(action_id: &str, value: &str) -> Value {
        json!({
            "type": "block_actions",
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": "U0001", "username": "alice", "name": "alice", "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "9s8d9as89d8as9d8as989",
            "container": {"type": "message", "message_ts": "1800000001.000100", "channel_id": "C0001", "is_ephemeral": false, "thread_ts": "1800000000.000100"},
            "trigger_id": "12466734323.1395872398.3ad0ba1d3e9e1e2d3f7d1cbb2d3f7e1e",
            "channel": {"id": "C0001", "name": "incidents"},
            "message": {"type": "message", "ts": "1800000001.000100", "text": "granted"},
            "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
            "actions": [{"action_id": action_id, "block_id": "hold", "text": {"type": "plain_text", "text": "End access now"}, "value": value, "type": "button", "action_ts": "1800000002.000100"}]
        })
    }

    #[test]
    fn end_and_extend_buttons_carry_the_hold_they_act_on() {
        for (action, expected) in [
            (END_ACTION, ControlAction::End),
            (EXTEND_ACTION, ControlAction::Extend),
        ] {
            let Interaction::Control(click) =
                parse_interaction(&form(&block_action(action, &hold().value()))).unwrap()
            else {
                panic!("expected a control click");
            };
            assert_eq!(click.action, expected);
            assert_eq!(click.hold, hold());
            assert_eq!(click.who.user_id.as_str(), "U0001");
            assert_eq!(click.channel_id.unwrap().as_str(), "C0001");
            assert!(click.response_url.is_some());
        }
    }

    #[test]
    fn a_control_button_with_a_value_we_did_not_write_is_malformed() {
        for value in [
            "not json".to_string(),
            json!({"execution": "x"}).to_string(),
            {
                let mut v = serde_json::to_value(hold()).unwrap();
                v["extra"] = json!(1);
                v.to_string()
            },
            r#"{"execution":"a","execution":"b"}"#.to_string(),
        ] {
            assert!(
                matches!(
                    parse_interaction(&form(&block_action(END_ACTION, &value))),
                    Err(PayloadError::BadButtonValue(_))
                ),
                "{value}"
            );
        }
        let mut foreign = block_action(END_ACTION, &hold().value());
        foreign["response_url"] = json!("https://evil.example/x");
        assert_eq!(
            parse_interaction(&form(&foreign)),
            Err(PayloadError::ForeignResponseUrl)
        );
    }

    #[test]
    fn app_homes_button_opens_the_modal_with_its_trigger() {
        let mut p = block_action(OPEN_ACTION, "open");
        p["container"] = json!({"type": "view", "view_id": "V0001"});
        p.as_object_mut().unwrap().remove("response_url");
        let Interaction::OpenModal(opener) = parse_interaction(&form(&p)).unwrap() else {
            panic!("expected the modal to open");
        };
        assert_eq!(
            opener.trigger_id,
            "12466734323.1395872398.3ad0ba1d3e9e1e2d3f7d1cbb2d3f7e1e"
        );
    }

    /// Slack's documented view_submission example, shaped as our modal.
    pub(crate) fn submission(values: Value) -> Value {
        json!({
            "type": "view_submission",
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": "U0001", "username": "alice", "name": "alice", "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "W3VDvuzi2nRLsiaDOsmJranO",
            "trigger_id": "12345.98765.abcd2358fdea",
            "view": {
                "id": "VNHU13V36",
                "type": "modal",
                "title": {"type": "plain_text", "text": "Break glass"},
                "submit": {"type": "plain_text", "text": "Break glass"},
                "blocks": [],
                "private_metadata": "{\"channel\":\"C0001\"}",
                "callback_id": MODAL_CALLBACK_ID,
                "state": {"values": values},
                "hash": "156663117.cd33ad1f",
                "team_id": "T0001",
                "app_id": "A0001"
            },
            "response_urls": []
        })
    }

    #[test]
    fn a_submission_reads_every_input_by_its_block() {
        let p = submission(json!({
            "account": {"account_input": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "Production"}, "value": "123456789012"}}},
            "reason": {"reason_input": {"type": "plain_text_input", "value": "db on fire"}},
            "incident": {"incident_input": {"type": "url_text_input", "value": null}}
        }));
        let Interaction::Submission(s) = parse_interaction(&form(&p)).unwrap() else {
            panic!("expected a submission");
        };
        assert_eq!(s.view_id, "VNHU13V36");
        assert_eq!(s.values["account"], "123456789012");
        assert_eq!(s.values["reason"], "db on fire");
        assert!(!s.values.contains_key("incident"));
        assert_eq!(s.private_metadata, r#"{"channel":"C0001"}"#);
        let mut other = p.clone();
        other["view"]["callback_id"] = json!("someone_elses");
        assert!(matches!(
            parse_interaction(&form(&other)).unwrap(),
            Interaction::Ignored { .. }
        ));
    }

    /// Slack's documented slash command body.
    pub(crate) fn command_body(text: &str) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("token", "gIkuvaNzQIHg97ATvDxqgjtO")
            .append_pair("team_id", "T0001")
            .append_pair("team_domain", "example")
            .append_pair("channel_id", "C0001")
            .append_pair("channel_name", "incidents")
            .append_pair("user_id", "U0001")
            .append_pair("user_name", "alice")
            .append_pair("command", "/break-glass")
            .append_pair("text", text)
            .append_pair("api_app_id", "A0001")
            .append_pair("is_enterprise_install", "false")
            .append_pair("response_url", "https://hooks.slack.com/commands/T0001/1/abc")
            .append_pair("trigger_id", "13345224609.738474920.8088930838d88f008e0")
            .finish()
            .into_bytes()
    }

    #[test]
    fn a_slash_command_is_read_with_its_trigger_and_text() {
        let c = parse_command(&command_body("123456789012 Admin 30m db on fire")).unwrap();
        assert_eq!(c.command, "/break-glass");
        assert_eq!(c.text, "123456789012 Admin 30m db on fire");
        assert_eq!(c.trigger_id, "13345224609.738474920.8088930838d88f008e0");
        assert_eq!(c.who.user_id.as_str(), "U0001");
        assert_eq!(c.channel_id.unwrap().as_str(), "C0001");
    }

    #[test]
    fn a_slash_command_says_each_thing_once_and_from_slack() {
        let mut twice = command_body("x");
        twice.extend_from_slice(b"&user_id=U0002");
        assert_eq!(parse_command(&twice), Err(PayloadError::DuplicatePayloadField));
        let mut encoded = command_body("x");
        encoded.extend_from_slice(b"&user%5Fid=U0002");
        assert_eq!(parse_command(&encoded), Err(PayloadError::EncodedFieldName));
        let foreign = String::from_utf8(command_body("x"))
            .unwrap()
            .replace("hooks.slack.com", "evil.example");
        assert_eq!(
            parse_command(foreign.as_bytes()),
            Err(PayloadError::ForeignResponseUrl)
        );
        assert!(parse_command(b"team_id=T0001").is_err());
    }

    #[test]
    fn events_answer_the_challenge_and_see_home_opened() {
        // Slack's documented url_verification and app_home_opened bodies.
        let challenge = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"});
        assert_eq!(
            parse_event(challenge.to_string().as_bytes()).unwrap(),
            Event::UrlVerification {
                challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into()
            }
        );
        let opened = json!({
            "token": "XXYYZZ", "team_id": "T0001", "api_app_id": "A0001",
            "event": {"type": "app_home_opened", "user": "U0001", "channel": "D0001", "event_ts": "1515449522000016", "tab": "home"},
            "type": "event_callback", "event_id": "Ev0PV52K25", "event_time": 1515449522
        });
        let Event::HomeOpened { who } = parse_event(opened.to_string().as_bytes()).unwrap() else {
            panic!("expected home opened");
        };
        assert_eq!(who.user_id.as_str(), "U0001");
        let mut messages = opened.clone();
        messages["event"]["tab"] = json!("messages");
        assert!(matches!(
            parse_event(messages.to_string().as_bytes()).unwrap(),
            Event::Ignored(_)
        ));
        assert!(parse_event(br#"{"type":"url_verification","type":"x"}"#).is_err());
        assert!(parse_event(b"not json").is_err());
    }
}
