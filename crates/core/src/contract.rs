//! The execution contract: the JSON that flows through the state machine.
//!
//! access-requested writes `request`; grant-access returns its input plus
//! `grant`; revoke-access adds `revoke`; report-on-access adds `report`.
//! Every step returns its whole input plus its own section, so any step can
//! be re-run from the execution history. `version` is bumped on any change an
//! older function could misread; a function refuses a version it doesn't know.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ErrorType;
use crate::domain::{AccessDuration, AccountId, PermissionSetArn, SlackUserId};
use crate::slack::BreakGlassClick;

pub const CONTRACT_VERSION: u32 = 1;

/// RFC 3339, UTC, whole seconds, `Z`: the form Step Functions' `Wait`
/// `TimestampPath` accepts.
pub mod timestamp {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Truncates to whole seconds, so what we compute equals what we serialise.
pub fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub version: u32,
    /// This execution's own name: how a step tells itself apart from other
    /// executions holding the same access.
    pub execution_name: String,
    pub request: AccessRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
    /// The hold step's latest look (hold-access's `CheckHold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Revoke>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub requester: Requester,
    pub slack: SlackThread,
    pub account_id: AccountId,
    pub permission_set_arn: PermissionSetArn,
    /// Seconds, a whole number of minutes.
    pub duration_seconds: AccessDuration,
    #[serde(with = "timestamp")]
    pub requested_at: DateTime<Utc>,
    /// Why, in the requester's words (the modal asks; a button click says
    /// nothing unless `REQUIRE_REASON` sends it through the modal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A link to the incident, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub slack_user_id: SlackUserId,
    pub slack_user_name: String,
    pub slack_team_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackThread {
    pub channel_id: String,
    /// The clicked message; for a request made in the modal, the modal's
    /// view id. Either way it names the request, so a repeat starts nothing.
    pub message_ts: String,
    /// Where updates go: the clicked message's thread.
    pub thread_ts: String,
    /// Valid for 30 minutes after the click; later posts use the bot token.
    /// Empty for a request made in the modal (Slack gives it none).
    #[serde(default)]
    pub response_url: String,
}

/// What grant-access did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub user_id: String,
    /// Identity Center `UserName`: the role session name CloudTrail records.
    pub user_name: String,
    pub permission_set_name: String,
    /// The permission set's `SessionDuration`: how long a session opened
    /// during the grant outlives the revoke.
    pub session_duration_seconds: u64,
    #[serde(with = "timestamp")]
    pub granted_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub expires_at: DateTime<Utc>,
    /// The user held this assignment before and independently of any
    /// break-glass execution: the revoke must leave it alone.
    pub pre_existing: bool,
    /// How the assignment came to be held for this execution.
    pub assignment: AssignmentSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentSource {
    /// We created it.
    Created,
    /// Standing access, not ours.
    PreExisting,
    /// Another running break-glass execution created it; the last holder's
    /// revoke removes it.
    SharedWithRunningExecution,
}

/// Where the hold stands, as `CheckHold` last read it from the ledger: the
/// state machine holds for `seconds` (the callback task's timeout) unless
/// `over`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub over: bool,
    /// Whole seconds left; 0 once over.
    pub seconds: u64,
    /// When the hold ends (later than `grant.expires_at` after an Extend).
    #[serde(with = "timestamp")]
    pub until: DateTime<Utc>,
    /// Who pressed End access now, when somebody did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_early_by: Option<String>,
    /// When the hold began (CheckHold's first look).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_timestamp")]
    pub started_at: Option<DateTime<Utc>>,
}

/// [`timestamp`] for an optional field (`None` is left out or `null`).
pub mod optional_timestamp {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&timestamp::format(t)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        raw.map(|raw| {
            DateTime::parse_from_rfc3339(&raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// What revoke-access did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    #[serde(with = "timestamp")]
    pub revoked_at: DateTime<Utc>,
    pub outcome: RevokeOutcome,
    /// `ListAccountAssignments` confirmed the state we claim.
    pub verified: bool,
    /// Sessions opened before the revoke stay valid until then: the
    /// permission set's session duration after the revoke, or the moment
    /// they were ended (`sessions_ended`).
    #[serde(with = "timestamp")]
    pub sessions_valid_until: DateTime<Utc>,
    /// An explicit Deny on the user's credentials issued before the revoke
    /// was verified in the target account's session-revocation policy
    /// (`crate::sessions`): the sessions opened during the grant are over.
    #[serde(default)]
    pub sessions_ended: bool,
    /// Why they were not ended, when the assignment was removed but its
    /// sessions were not (switched off, not configured, or the write failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_not_ended: Option<String>,
    /// When CloudTrail should have caught up; the state machine waits for it.
    #[serde(with = "timestamp")]
    pub report_at: DateTime<Utc>,
    /// Why the thread was not told, when it was not (Slack unreachable, no
    /// bot token). The revoke stands either way; the report still runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_unreachable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum RevokeOutcome {
    Deleted,
    /// Somebody (an earlier attempt, an administrator) removed it already.
    AlreadyGone,
    LeftPreExisting,
    LeftForLaterGrant {
        execution_name: String,
    },
}

/// What report-on-access found and where it sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Report {
    pub total_events: u64,
    pub write_events: u64,
    pub failed_events: u64,
    pub high_risk_events: u64,
    #[serde(with = "timestamp")]
    pub window_start: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub window_end: DateTime<Utc>,
    pub regions: Vec<String>,
    pub emailed_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_message_id: Option<String>,
    pub slack_posted: bool,
    /// What could not be looked up or delivered, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractError {
    #[error("execution input is not the break-glass contract: {0}")]
    Malformed(String),
    #[error("execution contract version {found} is not supported (this build reads {CONTRACT_VERSION})")]
    UnsupportedVersion { found: u32 },
    #[error("execution input has no {0} section: the previous step did not run")]
    MissingSection(&'static str),
}

impl ErrorType for ContractError {
    fn error_type(&self) -> &'static str {
        "InvalidExecutionInput"
    }
}

impl Execution {
    pub fn new(execution_name: impl Into<String>, request: AccessRequest) -> Self {
        Self {
            version: CONTRACT_VERSION,
            execution_name: execution_name.into(),
            request,
            grant: None,
            hold: None,
            revoke: None,
            report: None,
        }
    }

    /// Reads and checks an execution document from any JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ContractError> {
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        match version {
            Some(v) if v == u64::from(CONTRACT_VERSION) => {}
            Some(v) => {
                return Err(ContractError::UnsupportedVersion {
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                });
            }
            None => return Err(ContractError::Malformed("no version".into())),
        }
        serde_json::from_value(value).map_err(|e| ContractError::Malformed(e.to_string()))
    }

    pub fn grant(&self) -> Result<&Grant, ContractError> {
        self.grant.as_ref().ok_or(ContractError::MissingSection("grant"))
    }

    pub fn revoke(&self) -> Result<&Revoke, ContractError> {
        self.revoke
            .as_ref()
            .ok_or(ContractError::MissingSection("revoke"))
    }
}

impl AccessRequest {
    pub fn from_click(click: &BreakGlassClick, duration: AccessDuration, now: DateTime<Utc>) -> Self {
        Self {
            requester: Requester {
                slack_user_id: click.user_id.clone(),
                slack_user_name: click.user_name.clone(),
                slack_team_id: click.team_id.to_string(),
            },
            slack: SlackThread {
                channel_id: click.channel_id.to_string(),
                message_ts: click.message_ts.clone(),
                thread_ts: click
                    .thread_ts
                    .clone()
                    .unwrap_or_else(|| click.message_ts.clone()),
                response_url: click.response_url.clone(),
            },
            account_id: click.account_id.clone(),
            permission_set_arn: click.permission_set_arn.clone(),
            duration_seconds: duration,
            requested_at: whole_seconds(now),
            reason: click.reason.clone(),
            incident: click.incident.clone(),
        }
    }

    /// The execution name for this request's `generation`-th grant.
    ///
    /// Derived from who clicked what on which message, so a double click (or a
    /// second click by the same person on the same message) maps to the same
    /// name and starts nothing new while that grant runs. Generation 1 is the
    /// first grant; once it has ended, the next click on the same message takes
    /// the next generation. Fits Step Functions' 80-character, restricted
    /// alphabet.
    ///
    /// Each field is hashed behind its length, so the hashed bytes split
    /// back into fields one way only: two different clicks cannot run
    /// together into the same bytes (as `"C1␀" + "2"` and `"C1" + "␀2"`
    /// could with a NUL separator alone) and so never share a name.
    pub fn execution_name(&self, generation: u32) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.requester.slack_team_id.as_str(),
            self.requester.slack_user_id.as_str(),
            self.account_id.as_str(),
            self.permission_set_arn.as_str(),
            self.slack.channel_id.as_str(),
            self.slack.message_ts.as_str(),
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hex::encode(&hash.finalize()[..10]);
        format!(
            "bg-{}-{}-{}-g{}",
            self.requester.slack_user_id.as_str(),
            self.account_id.as_str(),
            digest,
            generation
        )
    }
}

/// Splits an execution name made by [`AccessRequest::execution_name`] back
/// into (base, generation), to recognise our own executions.
pub fn parse_execution_name(name: &str) -> Option<(&str, u32)> {
    let (base, generation) = name.rsplit_once("-g")?;
    if !base.starts_with("bg-") {
        return None;
    }
    Some((base, generation.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample_request() -> AccessRequest {
        AccessRequest {
            requester: Requester {
                slack_user_id: "U0001".parse().unwrap(),
                slack_user_name: "alice".into(),
                slack_team_id: "T0001".into(),
            },
            slack: SlackThread {
                channel_id: "C1".into(),
                message_ts: "1700000000.000100".into(),
                thread_ts: "1700000000.000100".into(),
                response_url: "https://hooks.slack.com/actions/x".into(),
            },
            account_id: "123456789012".parse().unwrap(),
            permission_set_arn: "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"
                .parse()
                .unwrap(),
            duration_seconds: AccessDuration::from_minutes(60).unwrap(),
            requested_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            reason: None,
            incident: None,
        }
    }

    #[test]
    fn the_request_contract_is_stable_json() {
        let doc = serde_json::to_value(Execution::new("bg-x-g1", sample_request())).unwrap();
        assert_eq!(
            doc,
            json!({
                "version": 1,
                "execution_name": "bg-x-g1",
                "request": {
                    "requester": {"slack_user_id": "U0001", "slack_user_name": "alice", "slack_team_id": "T0001"},
                    "slack": {"channel_id": "C1", "message_ts": "1700000000.000100", "thread_ts": "1700000000.000100",
                              "response_url": "https://hooks.slack.com/actions/x"},
                    "account_id": "123456789012",
                    "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345",
                    "duration_seconds": 3600,
                    "requested_at": "2023-11-14T22:13:20Z"
                }
            })
        );
        assert_eq!(
            Execution::from_value(doc).unwrap(),
            Execution::new("bg-x-g1", sample_request())
        );
    }

    #[test]
    fn unknown_versions_and_missing_sections_are_named() {
        let mut doc = serde_json::to_value(Execution::new("bg-x-g1", sample_request())).unwrap();
        doc["version"] = json!(2);
        assert_eq!(
            Execution::from_value(doc).unwrap_err(),
            ContractError::UnsupportedVersion { found: 2 }
        );
        let exec = Execution::new("bg-x-g1", sample_request());
        assert_eq!(exec.grant().unwrap_err(), ContractError::MissingSection("grant"));
        assert!(Execution::from_value(json!({"version": 1})).is_err());
    }

    #[test]
    fn execution_names_are_stable_valid_and_distinct() {
        let req = sample_request();
        let name = req.execution_name(1);
        assert_eq!(name, req.execution_name(1));
        assert_ne!(name, req.execution_name(2));
        assert!(name.len() <= 80);
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{name}"
        );
        assert_eq!(parse_execution_name(&name).map(|(_, g)| g), Some(1));

        let mut other_message = req.clone();
        other_message.slack.message_ts = "1700000099.000100".into();
        assert_ne!(other_message.execution_name(1), name);
        let mut other_user = req.clone();
        other_user.requester.slack_user_id = "U0002".parse().unwrap();
        assert_ne!(other_user.execution_name(1), name);
        let mut later = req.clone();
        later.requested_at += chrono::Duration::seconds(5);
        assert_eq!(
            later.execution_name(1),
            name,
            "a double click maps to the same name"
        );
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        // With a NUL separator alone these two hashed the same bytes:
        // "C1␀" ␀ "2" ␀ and "C1" ␀ "␀2" ␀.
        let mut a = sample_request();
        a.slack.channel_id = "C1\0".into();
        a.slack.message_ts = "2".into();
        let mut b = sample_request();
        b.slack.channel_id = "C1".into();
        b.slack.message_ts = "\u{0}2".into();
        assert_ne!(a.execution_name(1), b.execution_name(1));
        // Moving characters from one field to the next changes the name.
        let mut c = sample_request();
        c.slack.channel_id = "C1170".into();
        c.slack.message_ts = "0000000.000100".into();
        let mut d = sample_request();
        d.slack.channel_id = "C11700".into();
        d.slack.message_ts = "000000.000100".into();
        assert_ne!(c.execution_name(1), d.execution_name(1));
    }
}
