//! What we show in Slack beyond plain text: the request modal (and the
//! rules its submission is checked by), the "granted" message's End and
//! Extend buttons, and App Home. Pure: built from what the caller looked up.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::control::{END_ACTION, EXTEND_ACTION, HoldRef, MODAL_CALLBACK_ID, OPEN_ACTION};
use crate::domain::{AccessDuration, AccountId, PermissionSetArn, clip};

pub const ACCOUNT: &str = "account";
pub const PERMISSION_SET: &str = "permission_set";
pub const DURATION: &str = "duration";
pub const REASON: &str = "reason";
pub const INCIDENT: &str = "incident";

/// The longest reason we keep (it goes into the ledger, e-mail subjects
/// and Slack): enough for a sentence or three.
pub const MAX_REASON: usize = 500;
pub const MAX_INCIDENT: usize = 500;

/// What the modal offers: the allow lists (`None`: any, typed in), with
/// names where we know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choices {
    pub accounts: Option<Vec<(AccountId, Option<String>)>>,
    pub permission_sets: Option<Vec<(PermissionSetArn, String)>>,
    pub durations: Vec<AccessDuration>,
    pub default_duration: AccessDuration,
}

/// The durations offered: the usual steps up to the longest, and the
/// longest and the default themselves.
pub fn duration_steps(default: AccessDuration, max: AccessDuration) -> Vec<AccessDuration> {
    let mut steps: Vec<AccessDuration> = [15u64, 30, 60, 90, 120, 180, 240, 360, 480, 720]
        .into_iter()
        .filter_map(|m| AccessDuration::from_minutes(m).ok())
        .filter(|d| *d <= max)
        .chain([default, max])
        .collect();
    steps.sort();
    steps.dedup();
    steps
}

/// What a command's text or a button says before the modal opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefill {
    pub account: Option<AccountId>,
    pub permission_set: Option<PermissionSetArn>,
    pub duration: Option<AccessDuration>,
    pub reason: Option<String>,
}

/// `30m`, `2h`, `1h30m`, `90` (minutes).
pub fn parse_duration(word: &str) -> Option<AccessDuration> {
    let word = word.trim().to_ascii_lowercase();
    let minutes = if let Ok(m) = word.parse::<u64>() {
        m
    } else {
        let (hours, rest) = match word.split_once('h') {
            Some((h, rest)) => (h.parse::<u64>().ok()?, rest),
            None => (0, word.as_str()),
        };
        let minutes = match rest.strip_suffix('m').or(rest.strip_suffix("min")) {
            Some(m) => m.parse::<u64>().ok()?,
            None if rest.is_empty() => 0,
            None => return None,
        };
        hours.checked_mul(60)?.checked_add(minutes)?
    };
    AccessDuration::from_minutes(minutes).ok()
}

/// Reads `/break-glass 123456789012 BreakGlassAdmin 30m reason text`: each
/// word is taken when it fits (an account we offer, a permission set by
/// name, id or ARN, a duration); the rest is the reason. Nothing here
/// grants anything: the modal shows it, and the submission is checked.
pub fn parse_prefill(text: &str, choices: &Choices) -> Prefill {
    let mut prefill = Prefill::default();
    let mut words = text.split_whitespace().peekable();
    let mut reason = Vec::new();
    while let Some(word) = words.next() {
        if prefill.account.is_none()
            && let Ok(account) = word.parse::<AccountId>()
        {
            prefill.account = Some(account);
            continue;
        }
        if prefill.permission_set.is_none()
            && let Some(set) = find_permission_set(word, choices)
        {
            prefill.permission_set = Some(set);
            continue;
        }
        if prefill.duration.is_none()
            && let Some(d) = parse_duration(word)
        {
            prefill.duration = Some(d);
            continue;
        }
        reason.push(word);
        reason.extend(words.by_ref());
    }
    if !reason.is_empty() {
        prefill.reason = Some(truncate(&reason.join(" "), MAX_REASON));
    }
    prefill
}

fn find_permission_set(word: &str, choices: &Choices) -> Option<PermissionSetArn> {
    if let Ok(arn) = word.parse::<PermissionSetArn>() {
        return Some(arn);
    }
    choices.permission_sets.as_ref()?.iter().find_map(|(arn, name)| {
        (name.eq_ignore_ascii_case(word) || arn.permission_set_id() == word).then(|| arn.clone())
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// What the modal carries to its submission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Where the command was typed (its thread will carry the story).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

fn option(label: &str, value: &str) -> Value {
    // Slack: option text at most 75 characters.
    json!({"text": plain(&truncate(label, 75)), "value": value})
}

fn account_label(id: &AccountId, name: &Option<String>) -> String {
    match name {
        Some(name) => format!("{name} ({})", id.as_str()),
        None => id.as_str().to_string(),
    }
}

fn input(block_id: &str, label: &str, element: Value, optional: bool) -> Value {
    json!({
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "optional": optional,
        "element": element,
    })
}

fn select(action: &str, placeholder: &str, options: Vec<Value>, initial: Option<Value>) -> Value {
    let mut element = json!({
        "type": "static_select",
        "action_id": action,
        "placeholder": plain(placeholder),
        "options": options,
    });
    if let Some(initial) = initial {
        element["initial_option"] = initial;
    }
    element
}

fn text_input(action: &str, initial: Option<&str>, multiline: bool, max: usize) -> Value {
    let mut element = json!({
        "type": "plain_text_input",
        "action_id": action,
        "multiline": multiline,
        "max_length": max,
    });
    if let Some(initial) = initial {
        element["initial_value"] = json!(initial);
    }
    element
}

/// The request modal (`views.open`).
pub fn modal(choices: &Choices, prefill: &Prefill, metadata: &Metadata) -> Value {
    let account = match &choices.accounts {
        Some(accounts) => {
            let options: Vec<Value> = accounts
                .iter()
                .take(100)
                .map(|(id, name)| option(&account_label(id, name), id.as_str()))
                .collect();
            let initial = prefill.account.as_ref().and_then(|a| {
                accounts
                    .iter()
                    .find(|(id, _)| id == a)
                    .map(|(id, name)| option(&account_label(id, name), id.as_str()))
            });
            select("account_input", "Choose an account", options, initial)
        }
        None => text_input(
            "account_input",
            prefill.account.as_ref().map(AccountId::as_str),
            false,
            12,
        ),
    };
    let permission_set = match &choices.permission_sets {
        Some(sets) => {
            let options: Vec<Value> = sets
                .iter()
                .take(100)
                .map(|(arn, name)| option(name, arn.as_str()))
                .collect();
            let initial = prefill.permission_set.as_ref().and_then(|p| {
                sets.iter()
                    .find(|(arn, _)| arn == p)
                    .map(|(arn, name)| option(name, arn.as_str()))
            });
            select(
                "permission_set_input",
                "Choose a permission set",
                options,
                initial,
            )
        }
        None => text_input(
            "permission_set_input",
            prefill.permission_set.as_ref().map(PermissionSetArn::as_str),
            false,
            200,
        ),
    };
    let durations: Vec<Value> = choices
        .durations
        .iter()
        .map(|d| option(&d.to_string(), &d.minutes().to_string()))
        .collect();
    let chosen = prefill
        .duration
        .filter(|d| choices.durations.contains(d))
        .unwrap_or(choices.default_duration);
    let duration = select(
        "duration_input",
        "How long",
        durations,
        Some(option(&chosen.to_string(), &chosen.minutes().to_string())),
    );
    let mut incident = json!({"type": "url_text_input", "action_id": "incident_input"});
    incident["placeholder"] = plain("https://…");
    json!({
        "type": "modal",
        "callback_id": MODAL_CALLBACK_ID,
        "title": plain("Break glass"),
        "submit": plain("Break glass"),
        "close": plain("Cancel"),
        "private_metadata": serde_json::to_string(metadata).unwrap_or_default(),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Time-boxed access with no approver: everything you do is reported to the security team and posted in the thread."}},
            input(ACCOUNT, "Account", account, false),
            input(PERMISSION_SET, "Permission set", permission_set, false),
            input(DURATION, "For", duration, false),
            input(REASON, "Why", text_input("reason_input", prefill.reason.as_deref(), true, MAX_REASON), false),
            input(INCIDENT, "Incident link", incident, true),
        ],
    })
}

/// A submission that passed the modal's own checks (policy is next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModalRequest {
    pub account: AccountId,
    pub permission_set: PermissionSetArn,
    pub duration: AccessDuration,
    pub reason: String,
    pub incident: Option<String>,
}

/// Checks every field of a submission against what the modal offers:
/// errors by block id, in the words Slack shows under the field.
pub fn validate(
    values: &BTreeMap<String, String>,
    choices: &Choices,
) -> Result<ModalRequest, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let value = |block: &str| values.get(block).map(|v| v.trim()).filter(|v| !v.is_empty());
    let account = match value(ACCOUNT).map(str::parse::<AccountId>) {
        None => {
            errors.insert(ACCOUNT.into(), "Choose an account.".into());
            None
        }
        Some(Err(_)) => {
            errors.insert(ACCOUNT.into(), "An AWS account id is 12 digits.".into());
            None
        }
        Some(Ok(a))
            if choices
                .accounts
                .as_ref()
                .is_some_and(|l| !l.iter().any(|(id, _)| *id == a)) =>
        {
            errors.insert(
                ACCOUNT.into(),
                "Break glass is not allowed into this account.".into(),
            );
            None
        }
        Some(Ok(a)) => Some(a),
    };
    let permission_set = match value(PERMISSION_SET) {
        None => {
            errors.insert(PERMISSION_SET.into(), "Choose a permission set.".into());
            None
        }
        Some(raw) => match raw.parse::<PermissionSetArn>() {
            Ok(arn)
                if choices
                    .permission_sets
                    .as_ref()
                    .is_some_and(|l| !l.iter().any(|(a, _)| *a == arn)) =>
            {
                errors.insert(
                    PERMISSION_SET.into(),
                    "Break glass does not offer this permission set.".into(),
                );
                None
            }
            Ok(arn) => Some(arn),
            Err(_) => {
                errors.insert(
                    PERMISSION_SET.into(),
                    "Not a permission set ARN (arn:aws:sso:::permissionSet/…).".into(),
                );
                None
            }
        },
    };
    let duration = match value(DURATION)
        .and_then(|m| m.parse::<u64>().ok())
        .map(AccessDuration::from_minutes)
    {
        Some(Ok(d)) if choices.durations.contains(&d) => Some(d),
        _ => {
            errors.insert(DURATION.into(), "Choose one of the durations offered.".into());
            None
        }
    };
    let reason = match value(REASON) {
        None => {
            errors.insert(
                REASON.into(),
                "Say why: it goes to the security team and the thread.".into(),
            );
            None
        }
        Some(r) if r.chars().count() > MAX_REASON => {
            errors.insert(REASON.into(), format!("At most {MAX_REASON} characters."));
            None
        }
        Some(r) if r.chars().any(|c| c.is_control() && c != '\n') => {
            errors.insert(REASON.into(), "Plain text, please.".into());
            None
        }
        Some(r) => Some(r.to_string()),
    };
    let incident = match value(INCIDENT) {
        None => None,
        Some(link) if is_link(link) => Some(link.to_string()),
        Some(_) => {
            errors.insert(
                INCIDENT.into(),
                format!("An https:// link of at most {MAX_INCIDENT} characters."),
            );
            None
        }
    };
    match (account, permission_set, duration, reason) {
        (Some(account), Some(permission_set), Some(duration), Some(reason)) if errors.is_empty() => {
            Ok(ModalRequest {
                account,
                permission_set,
                duration,
                reason,
                incident,
            })
        }
        _ => Err(errors),
    }
}

/// An https link with a host and no spaces, angle brackets or pipes (they
/// would break out of Slack's `<url|text>` markup).
fn is_link(link: &str) -> bool {
    link.len() <= MAX_INCIDENT
        && link
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !link
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>|".contains(c))
}

/// Slack's answer to a submission with errors: shown under each field.
pub fn errors_response(errors: &BTreeMap<String, String>) -> Value {
    json!({"response_action": "errors", "errors": errors})
}

/// Text safe inside Slack mrkdwn: `&`, `<`, `>` escaped as Slack asks.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The reason and incident, as a line for messages.
pub fn why_line(reason: Option<&str>, incident: Option<&str>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(reason) = reason {
        parts.push(format!("*Why:* {}", escape(&clip(reason))));
    }
    if let Some(incident) = incident {
        parts.push(format!("*Incident:* <{incident}>"));
    }
    (!parts.is_empty()).then(|| parts.join("  "))
}

fn button(text: &str, action: &str, value: &str, style: Option<&str>) -> Value {
    let mut b = json!({"type": "button", "text": plain(text), "action_id": action, "value": value});
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

/// The End access now and Extend buttons for `hold` (`extend`: how much
/// one press adds, when the caller knows).
pub fn control_buttons(hold: &HoldRef, extend: impl Into<Option<AccessDuration>>) -> Value {
    let label = match extend.into() {
        Some(extend) => format!("Extend {extend}"),
        None => "Extend".to_string(),
    };
    json!({
        "type": "actions",
        "block_id": "hold",
        "elements": [
            button("End access now", END_ACTION, &hold.value(), Some("danger")),
            button(&label, EXTEND_ACTION, &hold.value(), None),
        ]
    })
}

/// The "granted" reply: its text, and the buttons under it.
pub fn granted_blocks(text: &str, hold: &HoldRef, extend: impl Into<Option<AccessDuration>>) -> Value {
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        control_buttons(hold, extend),
    ])
}

/// One running grant on App Home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeGrant {
    pub hold: HoldRef,
    pub account_label: String,
    pub permission_set_label: String,
    pub reason: Option<String>,
}

/// App Home (`views.publish`): the user's running grants with their
/// buttons, and a button that opens the modal.
pub fn home(grants: &[HomeGrant], extend: AccessDuration, now: DateTime<Utc>) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": plain("Break glass")}),
        json!({"type": "actions", "block_id": "open", "elements": [button("Break glass", OPEN_ACTION, "open", Some("primary"))]}),
        json!({"type": "divider"}),
    ];
    if grants.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": "You have no break-glass access right now."}}));
    }
    // Slack allows 100 blocks in a view: 3 above, 2 per grant.
    for g in grants.iter().take(45) {
        let mut text = format!(
            "*{}* in *{}* until {}",
            escape(&g.permission_set_label),
            escape(&g.account_label),
            crate::access::utc_time(g.hold.until, now)
        );
        if let Some(line) = why_line(g.reason.as_deref(), None) {
            text.push('\n');
            text.push_str(&line);
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
        blocks.push(control_buttons(&g.hold, extend));
    }
    json!({"type": "home", "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u64) -> AccessDuration {
        AccessDuration::from_minutes(m).unwrap()
    }

    fn arn(id: &str) -> PermissionSetArn {
        format!("arn:aws:sso:::permissionSet/ssoins-1/{id}")
            .parse()
            .unwrap()
    }

    fn choices() -> Choices {
        Choices {
            accounts: Some(vec![
                ("123456789012".parse().unwrap(), Some("Production".into())),
                ("210987654321".parse().unwrap(), None),
            ]),
            permission_sets: Some(vec![
                (arn("ps-admin"), "BreakGlassAdmin".into()),
                (arn("ps-ro"), "ReadOnly".into()),
            ]),
            durations: duration_steps(d(60), d(240)),
            default_duration: d(60),
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_step_up_to_the_longest_and_read_like_people_say_them() {
        let steps = duration_steps(d(45), d(240));
        let labels: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            labels,
            [
                "15 minutes",
                "30 minutes",
                "45 minutes",
                "1 hour",
                "1 hour 30 minutes",
                "2 hours",
                "3 hours",
                "4 hours"
            ]
        );
        assert_eq!(duration_steps(d(20), d(20)), vec![d(15), d(20)]);
    }

    #[test]
    fn the_command_text_prefills_what_it_can_and_the_rest_is_the_reason() {
        let p = parse_prefill("123456789012 BreakGlassAdmin 30m db is on fire", &choices());
        assert_eq!(p.account, Some("123456789012".parse().unwrap()));
        assert_eq!(p.permission_set, Some(arn("ps-admin")));
        assert_eq!(p.duration, Some(d(30)));
        assert_eq!(p.reason.as_deref(), Some("db is on fire"));
        assert_eq!(parse_prefill("", &choices()), Prefill::default());
        let only = parse_prefill("readonly 2h", &choices());
        assert_eq!(
            (only.permission_set, only.duration),
            (Some(arn("ps-ro")), Some(d(120)))
        );
        assert_eq!(parse_duration("1h30m"), Some(d(90)));
        assert_eq!(parse_duration("90"), Some(d(90)));
        assert_eq!(parse_duration("13h"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn the_modal_offers_the_allow_lists_by_name_and_prefills() {
        let prefill = parse_prefill("123456789012 BreakGlassAdmin 2h why", &choices());
        let view = modal(
            &choices(),
            &prefill,
            &Metadata {
                channel: Some("C0001".into()),
            },
        );
        assert_eq!(view["type"], "modal");
        assert_eq!(view["callback_id"], MODAL_CALLBACK_ID);
        let blocks = view["blocks"].as_array().unwrap();
        let block = |id: &str| blocks.iter().find(|b| b["block_id"] == id).unwrap().clone();
        let account = block(ACCOUNT);
        assert_eq!(
            account["element"]["options"][0]["text"]["text"],
            "Production (123456789012)"
        );
        assert_eq!(account["element"]["initial_option"]["value"], "123456789012");
        let sets = block(PERMISSION_SET);
        assert_eq!(sets["element"]["options"][1]["text"]["text"], "ReadOnly");
        assert_eq!(
            sets["element"]["initial_option"]["value"],
            arn("ps-admin").as_str()
        );
        assert_eq!(
            block(DURATION)["element"]["initial_option"]["text"]["text"],
            "2 hours"
        );
        assert_eq!(block(REASON)["element"]["initial_value"], "why");
        assert_eq!(block(REASON)["optional"], false);
        assert_eq!(block(INCIDENT)["optional"], true);
        assert_eq!(view["private_metadata"], r#"{"channel":"C0001"}"#);
        // Without allow lists, the account is typed in.
        let mut open = choices();
        open.accounts = None;
        let view = modal(&open, &Prefill::default(), &Metadata::default());
        assert_eq!(view["blocks"][1]["element"]["type"], "plain_text_input");
    }

    #[test]
    fn a_valid_submission_is_read_whole() {
        let ok = validate(
            &values(&[
                (ACCOUNT, "123456789012"),
                (PERMISSION_SET, arn("ps-ro").as_str()),
                (DURATION, "30"),
                (REASON, "  db on fire "),
                (INCIDENT, "https://incidents.example.com/INC-42"),
            ]),
            &choices(),
        )
        .unwrap();
        assert_eq!(ok.duration, d(30));
        assert_eq!(ok.reason, "db on fire");
        assert_eq!(
            ok.incident.as_deref(),
            Some("https://incidents.example.com/INC-42")
        );
    }

    #[test]
    fn every_bad_field_gets_its_own_error() {
        let errors = validate(
            &values(&[
                (ACCOUNT, "999999999999"),
                (PERMISSION_SET, arn("ps-other").as_str()),
                (DURATION, "241"),
                (REASON, "   "),
                (INCIDENT, "javascript:alert(1)"),
            ]),
            &choices(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(fields, [ACCOUNT, DURATION, INCIDENT, PERMISSION_SET, REASON]);
        assert!(errors[REASON].contains("why"));
        let response = errors_response(&errors);
        assert_eq!(response["response_action"], "errors");
        assert_eq!(
            response["errors"][ACCOUNT],
            "Break glass is not allowed into this account."
        );
        // Missing fields, a too-long reason, links that would break markup.
        let errors = validate(
            &values(&[(REASON, &"x".repeat(501)), (INCIDENT, "https://a|b")]),
            &choices(),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            validate(&values(&[(INCIDENT, "http://plain.example")]), &choices())
                .unwrap_err()
                .contains_key(INCIDENT)
        );
    }

    #[test]
    fn granted_message_and_home_carry_the_holds_buttons() {
        let hold = HoldRef {
            execution: "bg-x-g1".into(),
            user: "u-1".into(),
            account: "123456789012".parse().unwrap(),
            permission_set: arn("ps-admin"),
            until: DateTime::from_timestamp(1_800_003_600, 0).unwrap(),
        };
        let blocks = granted_blocks("granted", &hold, d(60));
        let buttons = blocks[1]["elements"].as_array().unwrap();
        assert_eq!(buttons[0]["action_id"], END_ACTION);
        assert_eq!(buttons[1]["action_id"], EXTEND_ACTION);
        assert_eq!(buttons[1]["text"]["text"], "Extend 1 hour");
        let value: HoldRef = serde_json::from_str(buttons[0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(value, hold);
        assert!(buttons[0]["value"].as_str().unwrap().len() <= 2000);
        let home_view = home(
            &[HomeGrant {
                hold: hold.clone(),
                account_label: "Production (123456789012)".into(),
                permission_set_label: "BreakGlassAdmin".into(),
                reason: Some("<script> & co".into()),
            }],
            d(60),
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        );
        assert_eq!(home_view["type"], "home");
        let text = home_view["blocks"][3]["text"]["text"].as_str().unwrap();
        assert!(text.contains("&lt;script&gt; &amp; co"), "{text}");
        assert_eq!(home_view["blocks"][4]["elements"][0]["action_id"], END_ACTION);
        assert_eq!(home_view["blocks"][1]["elements"][0]["action_id"], OPEN_ACTION);
        let empty = home(&[], d(60), DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        assert!(
            empty["blocks"][3]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("no break-glass access")
        );
    }
}
