//! Ending the sessions opened during a grant.
//!
//! Deleting an assignment stops new sign-ins, but credentials already issued
//! for the permission set's role stay valid for its session duration (up to
//! 12 h). AWS's documented cure is an explicit Deny for the Identity Center
//! user (`identitystore:userId`) on credentials issued before a time
//! (`aws:TokenIssueTime`). It lives in a customer managed policy of the
//! target account (`break-glass-session-revocations`, created by
//! `infrastructure/modules/target-account`) that the allowed permission sets
//! reference by name, so writing it needs no Identity Center re-provisioning.
//!
//! This module is the pure part: reading that policy's document, adding a
//! user's Deny, dropping Denies whose sessions have all expired, IAM's size
//! and version limits, and the per-account lease rule that serialises the
//! read-modify-write (IAM has no conditional writes). [`end_sessions`] runs
//! it over the ports.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::clock::Clock;
use crate::domain::AccountId;
use crate::ports::{Ledger, PortError, SessionPolicy};
use crate::retry::{Backoff, Deadline, with_retries};

/// The policy's name in every target account, unless
/// `SESSION_REVOCATION_POLICY_NAME` says otherwise.
pub const DEFAULT_POLICY_NAME: &str = "break-glass-session-revocations";

/// Our statements' Sids: this prefix, the moment the Deny may go
/// (`YYYYMMDDhhmmss`, UTC), `User`, then the user id's letters and digits.
/// Sids allow `[A-Za-z0-9]` only, so the expiry is spelled in digits.
pub const SID_PREFIX: &str = "BreakGlassUntil";

/// The statement the policy holds when no Deny is in force: it matches no
/// credentials (none were issued before 1970), because IAM refuses a policy
/// without statements. Terraform creates the policy with exactly this.
pub const PLACEHOLDER_SID: &str = "NoSessionsRevoked";

/// IAM's limit on a managed policy document, whitespace not counted.
pub const MAX_DOCUMENT_CHARS: usize = 6_144;

/// IAM keeps at most this many versions of a managed policy.
pub const MAX_VERSIONS: usize = 5;

/// How long one revoke may hold an account's policy lease: longer than the
/// whole session step ([`BUDGET`]), so an expired lease proves its holder
/// stopped writing.
pub const LEASE: Duration = Duration::from_secs(90);

/// The session step's time budget, after the verified removal: whatever
/// happens, the revoke answers within this much more.
pub const BUDGET: Duration = Duration::from_secs(45);

const KEY_USER: &str = "identitystore:userId";
const KEY_ISSUED: &str = "aws:TokenIssueTime";

/// One user's Deny: credentials issued before `issued_before` are refused
/// until `until`, when every session they could have opened has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDeny {
    pub user_id: String,
    pub issued_before: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl SessionDeny {
    /// The Sid the statement is found by: prefix, expiry, user.
    pub fn sid(&self) -> String {
        let user: String = self.user_id.chars().filter(char::is_ascii_alphanumeric).collect();
        format!("{SID_PREFIX}{}User{user}", self.until.format("%Y%m%d%H%M%S"))
    }

    fn statement(&self) -> Value {
        json!({
            "Sid": self.sid(),
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": { KEY_USER: self.user_id },
                "DateLessThan": { KEY_ISSUED: self.issued_before.format("%Y-%m-%dT%H:%M:%SZ").to_string() },
            },
        })
    }

    /// Reads one of our statements back; `None` for anything else (which is
    /// then kept as it is, never dropped).
    fn from_statement(statement: &Value) -> Option<Self> {
        let sid = statement.get("Sid")?.as_str()?;
        let rest = sid.strip_prefix(SID_PREFIX)?;
        let until = NaiveDateTime::parse_from_str(rest.get(..14)?, "%Y%m%d%H%M%S")
            .ok()?
            .and_utc();
        if !rest[14..].starts_with("User") || statement.get("Effect")?.as_str()? != "Deny" {
            return None;
        }
        let condition = statement.get("Condition")?.as_object()?;
        let user_id = lookup(condition.get("StringEquals")?, KEY_USER)?.to_string();
        let issued_before = lookup(condition.get("DateLessThan")?, KEY_ISSUED)?
            .parse::<DateTime<Utc>>()
            .ok()?;
        Some(Self {
            user_id,
            issued_before,
            until,
        })
    }
}

/// A condition key's value: keys are case-insensitive in IAM.
fn lookup<'a>(operator: &'a Value, key: &str) -> Option<&'a str> {
    let (_, value) = operator
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))?;
    match value {
        Value::String(s) => Some(s),
        Value::Array(values) if values.len() == 1 => values[0].as_str(),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DocumentError {
    #[error("the session policy is not a JSON policy document: {0}")]
    NotJson(String),
    #[error("the session policy has no Statement list")]
    NoStatements,
}

/// The session policy's document, split into our Denies and everything
/// else (kept verbatim, in order).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    version: Value,
    others: Vec<Value>,
    denies: Vec<SessionDeny>,
}

impl PolicyDocument {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let value: Value = serde_json::from_str(text).map_err(|e| DocumentError::NotJson(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| DocumentError::NotJson("not an object".into()))?;
        let statements = match object.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(single @ Value::Object(_)) => vec![single.clone()],
            _ => return Err(DocumentError::NoStatements),
        };
        let mut doc = Self {
            version: object
                .get("Version")
                .cloned()
                .unwrap_or_else(|| json!("2012-10-17")),
            others: Vec::new(),
            denies: Vec::new(),
        };
        for statement in statements {
            match SessionDeny::from_statement(&statement) {
                Some(deny) => doc.denies.push(deny),
                None if statement.get("Sid").and_then(Value::as_str) == Some(PLACEHOLDER_SID) => {}
                None => doc.others.push(statement),
            }
        }
        Ok(doc)
    }

    /// The document IAM is given: compact JSON; the placeholder when nothing
    /// else is left, since a policy needs a statement.
    pub fn to_json(&self) -> String {
        let mut statements = self.others.clone();
        let mut denies = self.denies.clone();
        denies.sort_by(|a, b| (a.until, &a.user_id).cmp(&(b.until, &b.user_id)));
        statements.extend(denies.iter().map(SessionDeny::statement));
        if statements.is_empty() {
            statements.push(placeholder());
        }
        let mut doc = Map::new();
        doc.insert("Version".into(), self.version.clone());
        doc.insert("Statement".into(), Value::Array(statements));
        Value::Object(doc).to_string()
    }

    pub fn denies(&self) -> &[SessionDeny] {
        &self.denies
    }

    /// Drops every Deny whose sessions have all expired; how many went.
    pub fn drop_expired(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.denies.len();
        self.denies.retain(|d| d.until > now);
        before - self.denies.len()
    }

    /// Adds `deny`, merged with the user's Deny already there (the later
    /// issue time covers the earlier one; the later expiry outlasts both).
    pub fn add(&mut self, deny: &SessionDeny) {
        match self.denies.iter_mut().find(|d| d.user_id == deny.user_id) {
            Some(d) => {
                d.issued_before = d.issued_before.max(deny.issued_before);
                d.until = d.until.max(deny.until);
            }
            None => self.denies.push(deny.clone()),
        }
    }

    /// Whether the document refuses `user_id`'s credentials issued before
    /// `revoked_at`: what "sessions ended" means.
    pub fn ends_sessions_of(&self, user_id: &str, revoked_at: DateTime<Utc>) -> bool {
        self.denies
            .iter()
            .any(|d| d.user_id == user_id && d.issued_before >= revoked_at)
    }
}

fn placeholder() -> Value {
    json!({
        "Sid": PLACEHOLDER_SID,
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": { "DateLessThan": { KEY_ISSUED: "1970-01-01T00:00:00Z" } },
    })
}

/// The document's size as IAM counts it: whitespace is not counted.
pub fn size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// What to write to end a user's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The new document, when it differs from the current one.
    pub write: Option<String>,
    /// The new document holds the Deny.
    pub adds_deny: bool,
    /// Expired Denies dropped on the way.
    pub dropped_expired: usize,
}

/// Drops expired Denies, then adds `deny` if the result fits IAM's limit.
/// An unexpired Deny is never dropped to make room: then the Deny is not
/// added (`adds_deny` false) and only the cleanup, if any, is written.
pub fn plan_end_sessions(
    current: &str,
    deny: &SessionDeny,
    now: DateTime<Utc>,
) -> Result<Planned, DocumentError> {
    let mut doc = PolicyDocument::parse(current)?;
    let dropped_expired = doc.drop_expired(now);
    let cleaned = doc.to_json();
    let mut with_deny = doc.clone();
    with_deny.add(deny);
    let candidate = with_deny.to_json();
    let (document, adds_deny) = if size(&candidate) <= MAX_DOCUMENT_CHARS {
        (candidate, true)
    } else {
        (cleaned, false)
    };
    let unchanged = PolicyDocument::parse(current).map(|d| d.to_json()).ok() == Some(document.clone())
        && size(current) <= MAX_DOCUMENT_CHARS;
    Ok(Planned {
        write: (!unchanged).then_some(document),
        adds_deny,
        dropped_expired,
    })
}

/// The document without its expired Denies, when any expired.
pub fn plan_cleanup(current: &str, now: DateTime<Utc>) -> Result<Option<String>, DocumentError> {
    let mut doc = PolicyDocument::parse(current)?;
    Ok((doc.drop_expired(now) > 0).then(|| doc.to_json()))
}

/// Whether the document holds a Deny that has expired by `now`.
pub fn has_expired(current: &str, now: DateTime<Utc>) -> bool {
    PolicyDocument::parse(current).is_ok_and(|d| d.denies.iter().any(|x| x.until <= now))
}

/// One stored version of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub id: String,
    pub is_default: bool,
    pub created: DateTime<Utc>,
}

/// The version to delete before creating one: IAM keeps at most five, so
/// when five exist the oldest that is not the default goes.
pub fn version_to_delete(versions: &[PolicyVersion]) -> Option<&str> {
    if versions.len() < MAX_VERSIONS {
        return None;
    }
    versions
        .iter()
        .filter(|v| !v.is_default)
        .min_by(|a, b| (a.created, version_number(&a.id)).cmp(&(b.created, version_number(&b.id))))
        .map(|v| v.id.as_str())
}

/// `v12` → 12, so equal creation times still order by age.
fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap_or(0)
}

/// The session policy as read: its default version's document and every
/// version's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyState {
    pub document: String,
    pub versions: Vec<PolicyVersion>,
}

/// A per-account lease in the grant ledger's table, held while one revoke
/// reads, changes and writes the account's session policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// Whether `me` may take the lease: nobody holds it, its holder's time ran
/// out (it stopped writing: [`LEASE`] outlasts [`BUDGET`]), or it is ours
/// already (a re-run). The DynamoDB adapter's condition expression says the
/// same; the in-memory ledgers call this.
pub fn lease_free(held: Option<&Lease>, me: &str, now: DateTime<Utc>) -> bool {
    held.is_none_or(|l| l.until <= now || l.owner == me)
}

/// The lease's name for an account's session policy.
pub fn lease_name(account: &AccountId) -> String {
    format!("session-policy|{}", account.as_str())
}

/// How ending sessions went: said in the thread and the revoke's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsEnded {
    /// The Deny is in the policy's default version, read back.
    Ended,
    /// Not ended; why, for the thread and the output.
    NotEnded(String),
}

/// Adds `deny` to `account`'s session policy under the account's lease and
/// reads it back from the default version. Never fails: every problem is
/// the reason sessions were not ended. Bounded by `deadline` between calls;
/// the caller bounds the whole (`BUDGET`).
pub async fn end_sessions(
    policy: &dyn SessionPolicy,
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    account: &AccountId,
    deny: &SessionDeny,
    owner: &str,
    deadline: Deadline,
) -> SessionsEnded {
    let lease = lease_name(account);
    let mut held = false;
    while !deadline.passed(clock) {
        let now = clock.now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        match ledger.take_lease(&lease, owner, now, until).await {
            Ok(true) => {
                held = true;
                break;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "session policy lease"),
        }
        clock.sleep(Duration::from_secs(1)).await;
    }
    if !held {
        return SessionsEnded::NotEnded("another revoke in this account kept the session policy busy".into());
    }
    let outcome = write_and_verify(policy, clock, account, deny, deadline).await;
    if let Err(e) = ledger.end_lease(&lease, owner).await {
        // It expires on its own after LEASE.
        tracing::warn!(error = %e, "session policy lease not released");
    }
    match outcome {
        Ok(true) => SessionsEnded::Ended,
        Ok(false) => SessionsEnded::NotEnded("the Deny could not be read back from the policy".into()),
        Err(why) => SessionsEnded::NotEnded(why),
    }
}

fn backoff(deadline: Deadline, clock: &dyn Clock) -> Backoff {
    Backoff::API.within(deadline.remaining(clock))
}

async fn write_and_verify(
    policy: &dyn SessionPolicy,
    clock: &dyn Clock,
    account: &AccountId,
    deny: &SessionDeny,
    deadline: Deadline,
) -> Result<bool, String> {
    let said = |e: PortError| e.to_string();
    let state = with_retries(clock, backoff(deadline, clock), || policy.read(account))
        .await
        .map_err(said)?;
    let planned = plan_end_sessions(&state.document, deny, clock.now()).map_err(|e| e.to_string())?;
    if let Some(document) = &planned.write {
        if let Some(oldest) = version_to_delete(&state.versions) {
            with_retries(clock, backoff(deadline, clock), || {
                policy.delete_version(account, oldest)
            })
            .await
            .map_err(said)?;
        }
        if deadline.passed(clock) {
            return Err("ran out of time before writing the session policy".into());
        }
        // Not retried: a lost answer may have landed; the read below says.
        if let Err(e) = policy.write_default(account, document).await {
            tracing::warn!(error = %e, "session policy write");
        }
    }
    if !planned.adds_deny {
        return Err(format!(
            "the session policy is full ({MAX_DOCUMENT_CHARS} characters) of Denies still in force"
        ));
    }
    let after = with_retries(clock, backoff(deadline, clock), || policy.read(account))
        .await
        .map_err(said)?;
    Ok(PolicyDocument::parse(&after.document)
        .is_ok_and(|d| d.ends_sessions_of(&deny.user_id, deny.issued_before)))
}

/// Drops the expired Denies from `account`'s session policy, under its
/// lease; `Ok(true)` when something was dropped. What reconcile-access runs
/// over the allowed accounts, so stale statements go even when no later
/// revoke writes to the account.
pub async fn clean_up(
    policy: &dyn SessionPolicy,
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    account: &AccountId,
    owner: &str,
) -> Result<bool, String> {
    let state = policy.read(account).await.map_err(|e| e.to_string())?;
    if !has_expired(&state.document, clock.now()) {
        return Ok(false);
    }
    let lease = lease_name(account);
    let now = clock.now();
    let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    if !ledger
        .take_lease(&lease, owner, now, until)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(false);
    }
    let result = async {
        let state = policy.read(account).await.map_err(|e| e.to_string())?;
        let Some(document) = plan_cleanup(&state.document, clock.now()).map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        if let Some(oldest) = version_to_delete(&state.versions) {
            policy
                .delete_version(account, oldest)
                .await
                .map_err(|e| e.to_string())?;
        }
        policy
            .write_default(account, &document)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
    .await;
    let _ = ledger.end_lease(&lease, owner).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn initial() -> String {
        json!({"Version": "2012-10-17", "Statement": [placeholder()]}).to_string()
    }

    fn deny(user: &str, at: &str, until: &str) -> SessionDeny {
        SessionDeny {
            user_id: user.into(),
            issued_before: t(at),
            until: t(until),
        }
    }

    #[test]
    fn the_sid_carries_the_expiry_and_only_letters_and_digits() {
        let d = deny(
            "9067c4f8-1234-abcd",
            "2026-11-30T10:00:00Z",
            "2026-11-30T11:00:00Z",
        );
        assert_eq!(d.sid(), "BreakGlassUntil20261130110000User9067c4f81234abcd");
        assert!(d.sid().chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn a_deny_replaces_the_placeholder_and_reads_back() {
        let d = deny("u-1", "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z");
        let planned = plan_end_sessions(&initial(), &d, t("2026-11-30T10:00:00Z")).unwrap();
        assert!(planned.adds_deny);
        let written = planned.write.unwrap();
        assert!(!written.contains(PLACEHOLDER_SID));
        let doc = PolicyDocument::parse(&written).unwrap();
        assert_eq!(doc.denies(), std::slice::from_ref(&d));
        assert!(doc.ends_sessions_of("u-1", t("2026-11-30T10:00:00Z")));
        assert!(!doc.ends_sessions_of("u-1", t("2026-11-30T10:00:01Z")));
        assert!(!doc.ends_sessions_of("u-2", t("2026-11-30T10:00:00Z")));
        let v: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            v["Statement"][0]["Condition"]["StringEquals"]["identitystore:userId"],
            "u-1"
        );
        assert_eq!(
            v["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-11-30T10:00:00Z"
        );
    }

    #[test]
    fn a_second_user_gets_their_own_and_the_same_user_is_merged() {
        let now = t("2026-11-30T10:00:00Z");
        let a = deny("u-1", "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z");
        let b = deny("u-2", "2026-11-30T10:05:00Z", "2026-11-30T18:05:00Z");
        let one = plan_end_sessions(&initial(), &a, now).unwrap().write.unwrap();
        let two = plan_end_sessions(&one, &b, now).unwrap().write.unwrap();
        assert_eq!(PolicyDocument::parse(&two).unwrap().denies().len(), 2);
        let again = deny("u-1", "2026-11-30T10:30:00Z", "2026-11-30T10:45:00Z");
        let three = plan_end_sessions(&two, &again, now).unwrap().write.unwrap();
        let doc = PolicyDocument::parse(&three).unwrap();
        assert_eq!(doc.denies().len(), 2);
        let merged = doc.denies().iter().find(|d| d.user_id == "u-1").unwrap();
        assert_eq!(merged.issued_before, t("2026-11-30T10:30:00Z"));
        assert_eq!(merged.until, t("2026-11-30T11:00:00Z"));
        // Writing what is already there changes nothing.
        assert_eq!(plan_end_sessions(&three, &again, now).unwrap().write, None);
    }

    #[test]
    fn expired_denies_go_first_and_the_placeholder_comes_back() {
        let a = deny("u-1", "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z");
        let one = plan_end_sessions(&initial(), &a, t("2026-11-30T10:00:00Z"))
            .unwrap()
            .write
            .unwrap();
        assert_eq!(plan_cleanup(&one, t("2026-11-30T10:59:59Z")).unwrap(), None);
        assert!(has_expired(&one, t("2026-11-30T11:00:00Z")));
        let cleaned = plan_cleanup(&one, t("2026-11-30T11:00:00Z")).unwrap().unwrap();
        assert!(cleaned.contains(PLACEHOLDER_SID));
        assert!(PolicyDocument::parse(&cleaned).unwrap().denies().is_empty());
        let b = deny("u-2", "2026-11-30T12:00:00Z", "2026-11-30T13:00:00Z");
        let planned = plan_end_sessions(&one, &b, t("2026-11-30T12:00:00Z")).unwrap();
        assert_eq!(planned.dropped_expired, 1);
        let doc = PolicyDocument::parse(&planned.write.unwrap()).unwrap();
        assert_eq!(doc.denies(), &[b]);
    }

    #[test]
    fn statements_we_did_not_write_are_kept() {
        let theirs = json!({"Sid": "Theirs", "Effect": "Deny", "Action": "s3:*", "Resource": "*"});
        let current = json!({"Version": "2012-10-17", "Statement": theirs}).to_string();
        let d = deny("u-1", "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z");
        let written = plan_end_sessions(&current, &d, t("2026-11-30T10:00:00Z"))
            .unwrap()
            .write
            .unwrap();
        let cleaned = plan_cleanup(&written, t("2026-12-01T00:00:00Z"))
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&cleaned).unwrap();
        assert_eq!(v["Statement"], json!([theirs]));
    }

    #[test]
    fn a_full_policy_never_loses_an_unexpired_deny() {
        let now = t("2026-11-30T10:00:00Z");
        let mut current = initial();
        let mut added = 0;
        for i in 0..200 {
            let d = deny(
                &format!("user-{i:04}-abcdefgh"),
                "2026-11-30T10:00:00Z",
                "2026-11-30T20:00:00Z",
            );
            let planned = plan_end_sessions(&current, &d, now).unwrap();
            if !planned.adds_deny {
                assert_eq!(planned.write, None, "nothing expired, nothing to write");
                break;
            }
            current = planned.write.unwrap();
            added += 1;
            assert!(size(&current) <= MAX_DOCUMENT_CHARS);
        }
        assert!(added > 10 && added < 200, "{added}");
        // Once the earlier Denies expire, there is room again.
        let later = t("2026-11-30T20:00:00Z");
        let d = deny("late", "2026-11-30T20:00:00Z", "2026-11-30T21:00:00Z");
        let planned = plan_end_sessions(&current, &d, later).unwrap();
        assert!(planned.adds_deny);
        assert_eq!(planned.dropped_expired, added);
    }

    #[test]
    fn the_oldest_non_default_version_goes_only_when_five_exist() {
        let v = |id: &str, default: bool, at: &str| PolicyVersion {
            id: id.into(),
            is_default: default,
            created: t(at),
        };
        let four = vec![
            v("v1", false, "2026-11-30T10:00:00Z"),
            v("v2", false, "2026-11-30T10:01:00Z"),
            v("v3", false, "2026-11-30T10:02:00Z"),
            v("v4", true, "2026-11-30T10:03:00Z"),
        ];
        assert_eq!(version_to_delete(&four), None);
        let mut five = four.clone();
        five.push(v("v5", false, "2026-11-30T10:03:00Z"));
        assert_eq!(version_to_delete(&five), Some("v1"));
        five[0].is_default = true;
        five[3].is_default = false;
        assert_eq!(version_to_delete(&five), Some("v2"));
    }

    #[test]
    fn the_lease_is_free_when_absent_expired_or_ours() {
        let now = t("2026-11-30T10:00:00Z");
        let held = Lease {
            owner: "exec-a".into(),
            until: t("2026-11-30T10:01:00Z"),
        };
        assert!(lease_free(None, "exec-b", now));
        assert!(!lease_free(Some(&held), "exec-b", now));
        assert!(lease_free(Some(&held), "exec-a", now));
        assert!(lease_free(Some(&held), "exec-b", t("2026-11-30T10:01:00Z")));
        assert!(LEASE > BUDGET);
    }

    #[test]
    fn what_is_not_a_policy_is_named() {
        let d = deny("u", "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z");
        assert!(plan_end_sessions("nope", &d, t("2026-11-30T10:00:00Z")).is_err());
        assert_eq!(PolicyDocument::parse("{}"), Err(DocumentError::NoStatements));
    }

    proptest! {
        #[test]
        fn denies_in_force_survive_any_sequence_of_revokes(
            steps in proptest::collection::vec((0u8..12, 0i64..600, 1i64..720), 1..60)
        ) {
            let start = t("2026-11-30T00:00:00Z");
            let mut current = initial();
            let mut in_force: Vec<SessionDeny> = Vec::new();
            let mut now = start;
            for (user, advance, minutes) in steps {
                now += chrono::Duration::minutes(advance);
                let d = SessionDeny {
                    user_id: format!("9067{user:02}-aaaa-bbbb-cccc-{user:012}"),
                    issued_before: now,
                    until: now + chrono::Duration::minutes(minutes),
                };
                let planned = plan_end_sessions(&current, &d, now).unwrap();
                if let Some(w) = planned.write { current = w; }
                prop_assert!(size(&current) <= MAX_DOCUMENT_CHARS);
                let doc = PolicyDocument::parse(&current).unwrap();
                if planned.adds_deny {
                    prop_assert!(doc.ends_sessions_of(&d.user_id, now));
                    in_force.push(d);
                }
                // Nothing still in force is ever lost, and nothing expired stays.
                for f in in_force.iter().filter(|f| f.until > now) {
                    prop_assert!(doc.denies().iter().any(|x| x.user_id == f.user_id
                        && x.issued_before >= f.issued_before && x.until >= f.until));
                }
                prop_assert!(doc.denies().iter().all(|x| x.until > now));
                let sids: std::collections::BTreeSet<_> = doc.denies().iter().map(SessionDeny::sid).collect();
                prop_assert_eq!(sids.len(), doc.denies().len());
            }
        }
    }
}
