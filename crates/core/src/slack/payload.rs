//! Slack interactivity payloads: the form field `payload` holding JSON, in
//! either the legacy `interactive_message` shape (the seed's attachments) or
//! Block Kit's `block_actions`.
//!
//! Read exactly as Slack sends them and no more loosely: one `payload` field
//! under its plain name, JSON without duplicate keys, objects where Slack
//! sends objects, ids of Slack's shapes, one button, and a `response_url` on
//! Slack's own host. A signed body must mean one thing to every reader, and
//! nothing a click carries may send us somewhere else.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::ErrorType;
use crate::domain::{
    AccessDuration, AccountId, DomainError, PermissionSetArn, SlackAppId, SlackChannelId, SlackTeamId,
    SlackUserId, clip,
};
use crate::policy::WorkspaceIds;

/// The one action this product answers to, in either shape.
pub const BREAK_GLASS_ACTION: &str = "break_glass";

/// Where every `response_url` Slack hands out lives. We post to nothing else:
/// the URL comes from the request body, so anything looser would let a
/// signed-but-crafted payload point our answers anywhere.
pub const RESPONSE_URL_PREFIX: &str = "https://hooks.slack.com/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    BreakGlass(Box<BreakGlassClick>),
    /// End access now or Extend, in a thread or on App Home.
    Control(Box<super::control::ControlClick>),
    /// App Home's "Break glass" button: open the modal.
    OpenModal(Box<super::control::Opener>),
    /// The modal, submitted.
    Submission(Box<super::control::Submission>),
    /// Another button on the same message (the seed's "Retry"), or a payload
    /// type we have nothing to do with: acknowledged, nothing else.
    Ignored {
        reason: String,
    },
}

/// A click on a Break Glass button, with everything later steps need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassClick {
    /// The workspace the request is recorded under: `team.id`, else
    /// `user.team_id`.
    pub team_id: SlackTeamId,
    /// Every workspace and organisation id the payload carries: all of them
    /// must be ours.
    pub workspace: WorkspaceIds,
    /// The Slack app the click came through, when the payload says.
    pub api_app_id: Option<SlackAppId>,
    pub user_id: SlackUserId,
    pub user_name: String,
    pub channel_id: SlackChannelId,
    /// The clicked message: identifies the incident, and the thread we post in.
    pub message_ts: String,
    /// The thread the clicked message lives in, when it is itself a reply.
    pub thread_ts: Option<String>,
    pub action_ts: String,
    /// Always under [`RESPONSE_URL_PREFIX`].
    pub response_url: String,
    pub account_id: AccountId,
    pub permission_set_arn: PermissionSetArn,
    /// Only a Block Kit button with a JSON value can ask for a duration.
    pub duration: Option<AccessDuration>,
    pub shape: PayloadShape,
    /// Opens a modal for 3 s (Block Kit clicks carry one).
    pub trigger_id: Option<String>,
    /// Why, and the incident link: only the modal asks.
    pub reason: Option<String>,
    pub incident: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadShape {
    InteractiveMessage,
    BlockActions,
    /// A request made in the modal (`view_submission`).
    Modal,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    #[error("body is not a form with a payload field")]
    NoPayloadField,
    #[error("body has more than one payload field")]
    DuplicatePayloadField,
    #[error("body spells a field name payload in percent-encoding")]
    EncodedFieldName,
    #[error("body is not valid form encoding")]
    BadFormEncoding,
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    #[error("payload's {field} is not {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("payload has no usable {0}")]
    MissingField(&'static str),
    #[error("a break_glass click carries exactly one action, this one carries {0}")]
    ActionCount(usize),
    #[error("break_glass must be a button, not a {0:?}")]
    NotAButton(String),
    #[error("response_url is not a Slack response URL under {RESPONSE_URL_PREFIX}")]
    ForeignResponseUrl,
    #[error("{field} is not a Slack message timestamp: {value:?}")]
    BadTimestamp { field: &'static str, value: String },
    #[error("no 12-digit account id between underscores in {field} {value:?}")]
    NoAccountId { field: &'static str, value: String },
    #[error("more than one 12-digit account id in {field} {value:?}")]
    AmbiguousAccountId { field: &'static str, value: String },
    #[error("the button value names account {value} but its block_id names {block}")]
    AccountMismatch { value: AccountId, block: AccountId },
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
    let payload = payload_field(body)?;
    let value = strict_json(&payload).map_err(|e| PayloadError::NotJson(json_reason(&e)))?;
    let Value::Object(p) = value else {
        return Err(PayloadError::WrongType {
            field: "payload",
            expected: "an object",
        });
    };
    let kind = string(&p, "type", "type")?.ok_or(PayloadError::MissingField("type"))?;
    match kind {
        "interactive_message" => parse_legacy(&p),
        "block_actions" => match super::control::parse_block_action(&p)? {
            Some(interaction) => Ok(interaction),
            None => parse_blocks(&p),
        },
        "view_submission" => super::control::parse_submission(&p),
        other => Ok(Interaction::Ignored {
            reason: format!("payload type {:?} is not a button click", clip(other)),
        }),
    }
}

// ------------------------------------------------------------------ the form

/// The value of the one field named `payload`, as sent. Names are compared
/// before decoding: `pay%6Coad` decodes to `payload`, and a reader that
/// decodes names would take a different field than one that does not.
pub(crate) fn payload_field(body: &[u8]) -> Result<String, PayloadError> {
    let mut payload = None;
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if name == b"payload" {
            if payload.is_some() {
                return Err(PayloadError::DuplicatePayloadField);
            }
            payload = Some(form_decode(value)?);
        } else if form_decode(name)? == "payload" {
            return Err(PayloadError::EncodedFieldName);
        }
    }
    payload.ok_or(PayloadError::NoPayloadField)
}

/// `application/x-www-form-urlencoded` decoding that refuses what Slack
/// never sends (a broken `%` escape, bytes that are not UTF-8) instead of
/// guessing.
pub(crate) fn form_decode(raw: &[u8]) -> Result<String, PayloadError> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    raw.get(i + 1).and_then(|&h| hex(h)),
                    raw.get(i + 2).and_then(|&l| hex(l)),
                ) else {
                    return Err(PayloadError::BadFormEncoding);
                };
                // Two hex digits: always below 256.
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| PayloadError::BadFormEncoding)
}

// ------------------------------------------------------------------ the JSON

/// JSON as serde_json reads it, except that no object may name a key twice:
/// serde_json keeps the last, other readers the first, and a signed payload
/// must mean one thing. (serde_json's own nesting limit still applies.)
pub(crate) fn strict_json(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictValue.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {:?}", clip(&key))));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A serde_json error without the text it choked on beyond a few dozen
/// characters: syntax errors by position, data errors clipped.
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => clip(&e.to_string()),
        category => format!("{category:?} error at line {} column {}", e.line(), e.column()),
    }
}

pub(crate) type Object = Map<String, Value>;

/// `trigger_id`, when sent: Slack's `<digits>.<digits>.<hex>`.
pub(crate) fn trigger_id(p: &Object) -> Result<Option<String>, PayloadError> {
    match string(p, "trigger_id", "trigger_id")? {
        None | Some("") => Ok(None),
        Some(t) if t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') => {
            Ok(Some(t.to_string()))
        }
        Some(_) => Err(PayloadError::WrongType {
            field: "trigger_id",
            expected: "a Slack trigger id",
        }),
    }
}

/// `parent[key]` when it is an object; absent and `null` are both "not sent".
pub(crate) fn object<'a>(
    parent: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a Object>, PayloadError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(PayloadError::WrongType {
            field,
            expected: "an object",
        }),
    }
}

/// `parent[key]` when it is a string; absent and `null` are both "not sent".
pub(crate) fn string<'a>(
    parent: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a str>, PayloadError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(PayloadError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// An optional Slack id: absent, `null` and `""` all mean "not sent"; any
/// other value must have the id's shape.
pub(crate) fn id<T>(parent: &Object, key: &str, field: &'static str) -> Result<Option<T>, PayloadError>
where
    T: std::str::FromStr<Err = DomainError>,
{
    match string(parent, key, field)? {
        None | Some("") => Ok(None),
        Some(raw) => Ok(Some(raw.parse()?)),
    }
}

pub(crate) fn required<'a>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, PayloadError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(PayloadError::MissingField(field))
}

/// Slack message timestamps: seconds, a dot, a sequence number.
pub(crate) fn timestamp(value: &str, field: &'static str) -> Result<String, PayloadError> {
    let digits = |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    match value.split_once('.') {
        Some((secs, seq)) if digits(secs, 12) && digits(seq, 9) => Ok(value.to_string()),
        _ => Err(PayloadError::BadTimestamp {
            field,
            value: clip(value),
        }),
    }
}

pub(crate) fn response_url(p: &Object) -> Result<String, PayloadError> {
    let raw = required(string(p, "response_url", "response_url")?, "response_url")?;
    // Slack's URLs are a plain path under its host; no query, fragment,
    // user info or odd characters, so no URL parser can read another host.
    let path_ok = |path: &str| {
        !path.is_empty()
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~%".contains(&b))
    };
    match raw.strip_prefix(RESPONSE_URL_PREFIX) {
        Some(path) if raw.len() <= 512 && path_ok(path) => Ok(raw.to_string()),
        _ => Err(PayloadError::ForeignResponseUrl),
    }
}

/// The clicked action, when it is ours: `Ok(Err(reason))` for any other
/// button. Slack sends exactly one action per click, and ours is a button;
/// anything else under our name is not a click we know how to read.
fn break_glass_action<'a>(
    p: &'a Object,
    name_key: &str,
    name_field: &'static str,
) -> Result<Result<&'a Object, String>, PayloadError> {
    let actions = match p.get("actions") {
        Some(Value::Array(actions)) if !actions.is_empty() => actions,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err(PayloadError::MissingField("actions"));
        }
        Some(_) => {
            return Err(PayloadError::WrongType {
                field: "actions",
                expected: "an array",
            });
        }
    };
    let mut objects = Vec::with_capacity(actions.len());
    for action in actions {
        match action {
            Value::Object(o) => objects.push(o),
            _ => {
                return Err(PayloadError::WrongType {
                    field: "actions[]",
                    expected: "an object",
                });
            }
        }
    }
    let ours = objects
        .iter()
        .map(|a| string(a, name_key, name_field))
        .collect::<Result<Vec<_>, _>>()?;
    if !ours.contains(&Some(BREAK_GLASS_ACTION)) {
        let name = ours.first().copied().flatten().unwrap_or_default();
        return Ok(Err(format!(
            "action {:?} is not {BREAK_GLASS_ACTION}",
            clip(name)
        )));
    }
    let [action] = objects.as_slice() else {
        return Err(PayloadError::ActionCount(objects.len()));
    };
    match string(action, "type", "actions[0].type")? {
        Some("button") => Ok(Ok(action)),
        other => Err(PayloadError::NotAButton(clip(other.unwrap_or_default()))),
    }
}

/// Every workspace id the payload carries, and the one the request is
/// recorded under (`team.id`, else `user.team_id`).
pub(crate) fn workspace(p: &Object, user: &Object) -> Result<(SlackTeamId, WorkspaceIds), PayloadError> {
    let team = object(p, "team", "team")?;
    let team_id: Option<SlackTeamId> = team.map(|t| id(t, "id", "team.id")).transpose()?.flatten();
    let user_team: Option<SlackTeamId> = id(user, "team_id", "user.team_id")?;
    let mut enterprises = Vec::new();
    if let Some(enterprise) = object(p, "enterprise", "enterprise")? {
        enterprises.extend(id(enterprise, "id", "enterprise.id")?);
    }
    if let Some(team) = team {
        enterprises.extend(id(team, "enterprise_id", "team.enterprise_id")?);
    }
    enterprises.extend(id(user, "enterprise_id", "user.enterprise_id")?);
    enterprises.sort_unstable();
    enterprises.dedup();
    let recorded = team_id
        .clone()
        .or_else(|| user_team.clone())
        .ok_or(PayloadError::MissingField("team.id"))?;
    let mut teams: Vec<SlackTeamId> = team_id.into_iter().chain(user_team).collect();
    teams.sort_unstable();
    teams.dedup();
    Ok((recorded, WorkspaceIds { teams, enterprises }))
}

fn parse_legacy(p: &Object) -> Result<Interaction, PayloadError> {
    let action = match break_glass_action(p, "name", "actions[0].name")? {
        Ok(action) => action,
        Err(reason) => return Ok(Interaction::Ignored { reason }),
    };
    let callback_id = required(string(p, "callback_id", "callback_id")?, "callback_id")?;
    let account_id = account_in("callback_id", callback_id)?;
    let arn: PermissionSetArn =
        required(string(action, "value", "actions[0].value")?, "actions[0].value")?.parse()?;
    let user = object(p, "user", "user")?.ok_or(PayloadError::MissingField("user"))?;
    let (team_id, workspace) = workspace(p, user)?;
    let channel = object(p, "channel", "channel")?;
    let channel_id = channel.map(|c| id(c, "id", "channel.id")).transpose()?.flatten();
    let message_ts = timestamp(
        required(string(p, "message_ts", "message_ts")?, "message_ts")?,
        "message_ts",
    )?;
    let thread_ts = match object(p, "original_message", "original_message")? {
        Some(original) => {
            let ts = string(original, "ts", "original_message.ts")?;
            match string(original, "thread_ts", "original_message.thread_ts")? {
                Some(thread) if Some(thread) != ts => Some(timestamp(thread, "original_message.thread_ts")?),
                _ => None,
            }
        }
        None => None,
    };
    Ok(Interaction::BreakGlass(Box::new(BreakGlassClick {
        team_id,
        workspace,
        api_app_id: id(p, "api_app_id", "api_app_id")?,
        user_id: required(string(user, "id", "user.id")?, "user.id")?.parse()?,
        user_name: string(user, "name", "user.name")?.unwrap_or_default().to_string(),
        channel_id: channel_id.ok_or(PayloadError::MissingField("channel.id"))?,
        message_ts,
        thread_ts,
        action_ts: timestamp(
            required(string(p, "action_ts", "action_ts")?, "action_ts")?,
            "action_ts",
        )?,
        response_url: response_url(p)?,
        account_id,
        permission_set_arn: arn,
        duration: None,
        shape: PayloadShape::InteractiveMessage,
        // Legacy attachments' clicks carry one too (and open modals alike).
        trigger_id: trigger_id(p)?,
        reason: None,
        incident: None,
    })))
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

fn button_value(raw: &str) -> Result<ButtonValue, PayloadError> {
    let value = strict_json(raw).map_err(|e| PayloadError::BadButtonValue(json_reason(&e)))?;
    serde_json::from_value(value).map_err(|e| PayloadError::BadButtonValue(json_reason(&e)))
}

fn parse_blocks(p: &Object) -> Result<Interaction, PayloadError> {
    let action = match break_glass_action(p, "action_id", "actions[0].action_id")? {
        Ok(action) => action,
        Err(reason) => return Ok(Interaction::Ignored { reason }),
    };
    let raw_value = required(string(action, "value", "actions[0].value")?, "actions[0].value")?;
    let block_id = string(action, "block_id", "actions[0].block_id")?.filter(|b| !b.is_empty());
    let (account_id, arn, duration) = if raw_value.trim_start().starts_with('{') {
        let v = button_value(raw_value)?;
        let duration = v.duration_minutes.map(AccessDuration::from_minutes).transpose()?;
        let account: AccountId = v.account_id.parse()?;
        // When the block_id names an account too, it must be the same one:
        // two places saying different things is a message built wrong (or
        // forged), and picking either would be a guess.
        if let Some(block_id) = block_id {
            match account_in("block_id", block_id) {
                Ok(block) if block != account => {
                    return Err(PayloadError::AccountMismatch {
                        value: account,
                        block,
                    });
                }
                Err(ambiguous @ PayloadError::AmbiguousAccountId { .. }) => return Err(ambiguous),
                _ => {}
            }
        }
        (account, v.permission_set_arn.parse()?, duration)
    } else {
        let block_id = required(block_id, "actions[0].block_id")?;
        (account_in("block_id", block_id)?, raw_value.parse()?, None)
    };
    let user = object(p, "user", "user")?.ok_or(PayloadError::MissingField("user"))?;
    let (team_id, workspace) = workspace(p, user)?;
    let container = object(p, "container", "container")?;
    let message = object(p, "message", "message")?;
    let message_ts = match container
        .map(|c| string(c, "message_ts", "container.message_ts"))
        .transpose()?
        .flatten()
    {
        Some(ts) => Some(ts),
        None => message
            .map(|m| string(m, "ts", "message.ts"))
            .transpose()?
            .flatten(),
    };
    let message_ts = timestamp(
        required(message_ts, "container.message_ts")?,
        "container.message_ts",
    )?;
    let thread_ts = match container
        .map(|c| string(c, "thread_ts", "container.thread_ts"))
        .transpose()?
        .flatten()
    {
        Some(ts) => Some(ts),
        None => message
            .map(|m| string(m, "thread_ts", "message.thread_ts"))
            .transpose()?
            .flatten(),
    };
    let thread_ts = thread_ts
        .filter(|t| *t != message_ts)
        .map(|t| timestamp(t, "container.thread_ts"))
        .transpose()?;
    let channel_id = match object(p, "channel", "channel")? {
        Some(channel) => id(channel, "id", "channel.id")?,
        None => None,
    };
    let channel_id = match channel_id {
        Some(channel) => Some(channel),
        None => container
            .map(|c| id(c, "channel_id", "container.channel_id"))
            .transpose()?
            .flatten(),
    };
    let user_name = match string(user, "username", "user.username")? {
        Some(name) => name,
        None => string(user, "name", "user.name")?.unwrap_or_default(),
    };
    Ok(Interaction::BreakGlass(Box::new(BreakGlassClick {
        team_id,
        workspace,
        api_app_id: id(p, "api_app_id", "api_app_id")?,
        user_id: required(string(user, "id", "user.id")?, "user.id")?.parse()?,
        user_name: user_name.to_string(),
        channel_id: channel_id.ok_or(PayloadError::MissingField("channel.id"))?,
        message_ts,
        thread_ts,
        action_ts: timestamp(
            required(
                string(action, "action_ts", "actions[0].action_ts")?,
                "actions[0].action_ts",
            )?,
            "actions[0].action_ts",
        )?,
        response_url: response_url(p)?,
        account_id,
        permission_set_arn: arn,
        duration,
        shape: PayloadShape::BlockActions,
        trigger_id: trigger_id(p)?,
        reason: None,
        incident: None,
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
        assert_eq!(click.channel_id.as_str(), "C12345");
        assert_eq!(click.message_ts, "1700000000.000100");
        assert_eq!(click.thread_ts, None);
        assert_eq!(click.team_id.as_str(), "T0001");
        assert_eq!(click.workspace.teams, vec!["T0001".parse().unwrap()]);
        assert!(click.workspace.enterprises.is_empty());
        assert_eq!(click.api_app_id, None);
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
            (b"payload=%5B1%2C2%5D".to_vec(), "payload is not an object"),
            (form(&json!({"type": 7})), "type is not a string"),
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
        let body = form(&json!({"type": "shortcut"}));
        assert!(matches!(
            parse_interaction(&body),
            Ok(Interaction::Ignored { .. })
        ));
    }

    fn err(body: &[u8]) -> String {
        parse_interaction(body).expect_err("refused").to_string()
    }

    fn seed_form() -> Vec<u8> {
        form(&seed_click(
            "break_glass",
            "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
        ))
    }

    #[test]
    fn exactly_one_payload_field_under_its_plain_name() {
        let body = seed_form();
        let mut twice = body.clone();
        twice.extend_from_slice(b"&");
        twice.extend_from_slice(&body);
        assert_eq!(err(&twice), "body has more than one payload field");

        // An earlier, percent-encoded "payload" must not be read as the payload
        // by us and skipped by someone else (or the other way round).
        for name in ["pay%6Coad", "%70ayload", "payloa%64", "PAY%4cOAD"] {
            let mut sneaky = format!("{name}=%7B%7D&").into_bytes();
            sneaky.extend_from_slice(&body);
            if name == "PAY%4cOAD" {
                // Another field altogether ("PAYLOAD" is not "payload"): ignored.
                assert!(parse_interaction(&sneaky).is_ok(), "{name}");
            } else {
                assert_eq!(
                    err(&sneaky),
                    "body spells a field name payload in percent-encoding",
                    "{name}"
                );
            }
        }

        let mut other_fields = b"token=x&".to_vec();
        other_fields.extend_from_slice(&body);
        other_fields.extend_from_slice(b"&&trigger_id=1");
        assert!(parse_interaction(&other_fields).is_ok());

        for broken in [
            &b"payload=%7"[..],
            b"payload=%zz",
            b"payload=%FF",
            b"x%=1&payload=%7B%7D",
        ] {
            assert_eq!(err(broken), "body is not valid form encoding", "{broken:?}");
        }
    }

    #[test]
    fn duplicate_json_keys_are_refused_at_any_depth() {
        let seed = seed_click("break_glass", "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345").to_string();
        for (from, to) in [
            (
                r#""type":"interactive_message""#,
                r#""type":"interactive_message","type":"interactive_message""#,
            ),
            (r#""id":"U0001""#, r#""id":"U0001","id":"U0666""#),
            (
                r#""callback_id":"deployment_123456789012_abc""#,
                r#""callback_id":"deployment_123456789012_abc","callback_id":"deployment_999999999999_abc""#,
            ),
        ] {
            assert!(seed.contains(from), "{from}");
            let json = seed.replacen(from, to, 1);
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &json)
                .finish();
            let e = err(body.as_bytes());
            assert!(e.contains("duplicate key"), "{e}");
        }
        let value = r#"{"account_id":"123456789012","account_id":"999999999999","permission_set_arn":"arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"}"#;
        let e = err(&form(&block_click("b", value, "break_glass")));
        assert!(
            e.starts_with("button value is not valid JSON: duplicate key"),
            "{e}"
        );
    }

    #[test]
    fn objects_must_be_objects() {
        let arn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
        for (field, value, expected) in [
            (
                "user",
                json!(["U0001", "alice"]),
                "payload's user is not an object",
            ),
            ("team", json!(["T0001"]), "payload's team is not an object"),
            ("channel", json!("C12345"), "payload's channel is not an object"),
            (
                "enterprise",
                json!(["E0001"]),
                "payload's enterprise is not an object",
            ),
            (
                "original_message",
                json!([]),
                "payload's original_message is not an object",
            ),
            (
                "actions",
                json!({"name": "break_glass"}),
                "payload's actions is not an array",
            ),
            (
                "actions",
                json!([["break_glass"]]),
                "payload's actions[] is not an object",
            ),
            (
                "message_ts",
                json!(1700000000.0001),
                "payload's message_ts is not a string",
            ),
            (
                "callback_id",
                json!(["deployment_123456789012_abc"]),
                "payload's callback_id is not a string",
            ),
        ] {
            let mut click = seed_click("break_glass", arn);
            click[field] = value;
            assert_eq!(err(&form(&click)), expected, "{field}");
        }
        let mut click = block_click("incident_123456789012_x", arn, "break_glass");
        click["container"] = json!([]);
        assert_eq!(err(&form(&click)), "payload's container is not an object");
        // `null` is how Slack says "none" (`"enterprise": null` outside Grid).
        let mut click = seed_click("break_glass", arn);
        click["enterprise"] = Value::Null;
        assert!(parse_interaction(&form(&click)).is_ok());
    }

    #[test]
    fn break_glass_is_one_button() {
        let arn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
        let mut select = block_click("incident_123456789012_x", arn, "break_glass");
        select["actions"][0]["type"] = json!("static_select");
        assert_eq!(
            err(&form(&select)),
            "break_glass must be a button, not a \"static_select\""
        );
        let mut untyped = seed_click("break_glass", arn);
        untyped["actions"][0].as_object_mut().unwrap().remove("type");
        assert_eq!(err(&form(&untyped)), "break_glass must be a button, not a \"\"");
        let mut two = seed_click("break_glass", arn);
        two["actions"] = json!([
            {"name": "retry", "type": "button", "value": "retry"},
            {"name": "break_glass", "type": "button", "value": arn}
        ]);
        assert_eq!(
            err(&form(&two)),
            "a break_glass click carries exactly one action, this one carries 2"
        );
    }

    #[test]
    fn response_urls_are_slacks_or_nothing() {
        let arn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
        for url in [
            "http://hooks.slack.com/actions/T0001/1/abc",
            "https://hooks.slack.com.evil.example/actions/T0001/1/abc",
            "https://evil.example/actions/T0001/1/abc",
            "https://hooks.slack.com@evil.example/x",
            "https://hooks.slack.com/",
            "https://hooks.slack.com/actions?next=https://evil.example",
            "https://hooks.slack.com/actions/T0001/1/abc#x",
            "https://hooks.slack.com/\\\\evil.example/x",
            "https://hooks.slack.com/ actions",
            "HTTPS://HOOKS.SLACK.COM/actions/T0001/1/abc",
        ] {
            let mut click = seed_click("break_glass", arn);
            click["response_url"] = json!(url);
            let e = err(&form(&click));
            assert_eq!(
                e,
                "response_url is not a Slack response URL under https://hooks.slack.com/"
            );
            assert!(!e.contains("evil"), "the URL is not echoed: {e}");
        }
        let mut long = seed_click("break_glass", arn);
        long["response_url"] = json!(format!("https://hooks.slack.com/{}", "a".repeat(600)));
        assert!(parse_interaction(&form(&long)).is_err());
    }

    #[test]
    fn a_json_value_and_its_block_id_agree_on_the_account() {
        let value = |account: &str| {
            json!({"account_id": account, "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"})
                .to_string()
        };
        assert_eq!(
            err(&form(&block_click(
                "incident_999999999999_db",
                &value("123456789012"),
                "break_glass"
            ))),
            "the button value names account 123456789012 but its block_id names 999999999999"
        );
        assert!(
            err(&form(&block_click(
                "x_123456789012_210987654321",
                &value("123456789012"),
                "break_glass"
            )))
            .contains("more than one")
        );
        for agreeing in ["incident_123456789012_db", "no-account-here", ""] {
            let Interaction::BreakGlass(click) = parse_interaction(&form(&block_click(
                agreeing,
                &value("123456789012"),
                "break_glass",
            )))
            .unwrap() else {
                panic!("{agreeing}")
            };
            assert_eq!(click.account_id.as_str(), "123456789012");
        }
    }

    #[test]
    fn ids_must_have_slacks_shapes() {
        let arn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
        for (path, value, expected) in [
            (&["user", "id"][..], "T0001", "Slack user id"),
            (&["user", "id"], "u0001", "Slack user id"),
            (&["team", "id"], "U0001", "Slack team id"),
            (&["team", "id"], "T 1", "Slack team id"),
            (&["channel", "id"], "U12345", "Slack channel id"),
            (&["user", "team_id"], "E0001", "Slack team id"),
            (&["team", "enterprise_id"], "T0001", "Slack enterprise id"),
            (&["api_app_id"], "B0001", "Slack app id"),
            (&["message_ts"], "yesterday", "not a Slack message timestamp"),
            (&["action_ts"], "1.", "not a Slack message timestamp"),
        ] {
            let mut click = seed_click("break_glass", arn);
            let target = path.iter().fold(&mut click, |v, k| &mut v[*k]);
            *target = json!(value);
            let e = err(&form(&click));
            assert!(e.contains(expected), "{path:?}={value}: {e}");
        }
        for ok in ["C12345", "G0PRIVATE", "D0DIRECT"] {
            let mut click = seed_click("break_glass", arn);
            click["channel"]["id"] = json!(ok);
            assert!(parse_interaction(&form(&click)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn every_workspace_id_the_payload_carries_is_collected() {
        let arn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
        let mut click = block_click("incident_123456789012_x", arn, "break_glass");
        click["user"]["team_id"] = json!("T0PARTNER");
        click["team"]["enterprise_id"] = json!("E0ORG");
        click["enterprise"] = json!({"id": "E0OTHER", "name": "Other"});
        let Interaction::BreakGlass(c) = parse_interaction(&form(&click)).unwrap() else {
            panic!()
        };
        assert_eq!(c.team_id.as_str(), "T0001", "recorded under team.id");
        let teams: Vec<&str> = c.workspace.teams.iter().map(|t| t.as_str()).collect();
        assert_eq!(teams, ["T0001", "T0PARTNER"]);
        let orgs: Vec<&str> = c.workspace.enterprises.iter().map(|e| e.as_str()).collect();
        assert_eq!(orgs, ["E0ORG", "E0OTHER"]);
        assert_eq!(
            c.api_app_id.map(|a| a.as_str().to_string()).as_deref(),
            Some("A1")
        );

        // No team anywhere: nothing to check it against.
        let mut click = block_click("incident_123456789012_x", arn, "break_glass");
        click.as_object_mut().unwrap().remove("team");
        click["user"].as_object_mut().unwrap().remove("team_id");
        assert_eq!(err(&form(&click)), "payload has no usable team.id");
    }

    #[test]
    fn refusals_echo_at_most_a_few_dozen_characters() {
        let long = "X".repeat(5000);
        let mut click = seed_click("break_glass", "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345");
        click["callback_id"] = json!(long);
        assert!(err(&form(&click)).len() < 120);
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &format!("{{\"{long}\": 1, \"{long}\": 2}}"))
            .finish();
        assert!(err(body.as_bytes()).len() < 120);
        let body = form(&block_click(
            "b",
            &format!("{{\"account_id\": \"{long}\"}}"),
            "break_glass",
        ));
        assert!(err(&body).len() < 120, "{}", err(&body));
    }
}
