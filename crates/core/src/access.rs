//! The rules of granting and revoking, over the ports: who the clicker is in
//! Identity Center, who else holds the same access, and how to make an
//! asynchronous Identity Center change and be sure it happened.
//!
//! Shared by grant-access and revoke-access (and the local runner), so the
//! two functions cannot disagree about what "holding" means.

use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::clock::Clock;
use crate::contract::{AccessRequest, Execution, Grant};
use crate::domain::{AccountId, PermissionSetArn, SlackUserId};
use crate::ports::{
    Directory, DirectoryUser, Executions, IdentityCenter, LookupAttribute, PortError, PortErrorKind,
    ProvisioningStatus, Slack,
};
use crate::retry::{Backoff, Polled, poll, with_retries};

/// How the clicker's Slack e-mail is matched in the Identity Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityLookup {
    /// `emails.value`, then `userName` = e-mail.
    Email,
    /// `userName` = e-mail only.
    UserName,
}

impl std::str::FromStr for IdentityLookup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "email" => Ok(Self::Email),
            "username" => Ok(Self::UserName),
            other => Err(format!("expected email or username, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("your Slack profile has no e-mail address, so no Identity Center user can be matched")]
    NoEmail,
    #[error("no Identity Center user matches {0}")]
    NoMatch(String),
    #[error("more than one Identity Center user matches {0}")]
    Ambiguous(String),
    #[error(transparent)]
    Unavailable(PortError),
}

/// Slack user → e-mail (`users.info`) → Identity Store user.
pub async fn resolve_identity(
    slack: &dyn Slack,
    directory: &dyn Directory,
    lookup: IdentityLookup,
    user: &SlackUserId,
    clock: &dyn Clock,
) -> Result<DirectoryUser, IdentityError> {
    let email = with_retries(clock, Backoff::API, || slack.user_email(user))
        .await
        .map_err(|e| match e.kind {
            PortErrorKind::NotFound => IdentityError::NoEmail,
            _ => IdentityError::Unavailable(e),
        })?
        .ok_or(IdentityError::NoEmail)?;
    let attributes: &[LookupAttribute] = match lookup {
        IdentityLookup::Email => &[LookupAttribute::Email, LookupAttribute::UserName],
        IdentityLookup::UserName => &[LookupAttribute::UserName],
    };
    for attribute in attributes {
        match with_retries(clock, Backoff::API, || directory.find_user(*attribute, &email)).await {
            Ok(Some(user)) => return Ok(user),
            Ok(None) => continue,
            Err(e) if e.kind == PortErrorKind::Conflict => return Err(IdentityError::Ambiguous(email)),
            Err(e) => return Err(IdentityError::Unavailable(e)),
        }
    }
    Err(IdentityError::NoMatch(email))
}

/// Another running execution of this state machine for the same Slack user,
/// account and permission set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub execution_name: String,
    /// When its grant ends: from its grant section when it has one, else
    /// estimated from its request.
    pub expires_at: DateTime<Utc>,
    /// `None` while it has not finished granting.
    pub grant: Option<Grant>,
}

/// The other running executions holding (or about to hold) this request's
/// access. Executions whose input is not ours are skipped, not fatal.
pub async fn other_holders(
    executions: &dyn Executions,
    me: &str,
    request: &AccessRequest,
    clock: &dyn Clock,
) -> Result<Vec<Holder>, PortError> {
    let running = with_retries(clock, Backoff::API, || executions.running()).await?;
    let mut holders = Vec::new();
    for execution in running {
        if execution.name == me {
            continue;
        }
        let Ok(value) = serde_json::from_str(&execution.input) else {
            continue;
        };
        let Ok(theirs) = Execution::from_value(value) else {
            continue;
        };
        let same = theirs.request.requester.slack_user_id == request.requester.slack_user_id
            && theirs.request.account_id == request.account_id
            && theirs.request.permission_set_arn == request.permission_set_arn;
        if !same {
            continue;
        }
        let grant = execution.grant;
        let expires_at = grant
            .as_ref()
            .map(|g| g.expires_at)
            .unwrap_or_else(|| theirs.request.requested_at + theirs.request.duration_seconds.as_chrono());
        holders.push(Holder {
            execution_name: execution.name,
            expires_at,
            grant,
        });
    }
    Ok(holders)
}

/// `PT1H`, `PT12H`, `PT30M`, `PT1H30M`: Identity Center's `SessionDuration`.
/// Absent means Identity Center's default of one hour.
pub fn session_duration(iso: Option<&str>) -> Result<Duration, String> {
    let Some(iso) = iso else {
        return Ok(Duration::from_secs(3600));
    };
    let rest = iso
        .strip_prefix("PT")
        .ok_or_else(|| format!("unsupported SessionDuration {iso:?}"))?;
    let mut seconds = 0u64;
    let mut number = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .map_err(|_| format!("unsupported SessionDuration {iso:?}"))?;
        number.clear();
        seconds += n * match c {
            'H' => 3600,
            'M' => 60,
            'S' => 1,
            _ => return Err(format!("unsupported SessionDuration {iso:?}")),
        };
    }
    if !number.is_empty() || seconds == 0 {
        return Err(format!("unsupported SessionDuration {iso:?}"));
    }
    Ok(Duration::from_secs(seconds))
}

/// The end of an asynchronous Identity Center change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    Succeeded,
    Failed {
        reason: String,
    },
    /// Still `IN_PROGRESS` when the polling budget ran out.
    Unconfirmed {
        request_id: String,
    },
}

/// Creates the assignment (retrying conflicts and throttling) and polls until
/// Identity Center says it is done.
pub async fn create_assignment(
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    account: &AccountId,
    permission_set: &PermissionSetArn,
    user_id: &str,
) -> Result<Provisioned, PortError> {
    let started = with_retries(clock, Backoff::API, || {
        identity_center.create_assignment(account, permission_set, user_id)
    })
    .await?;
    settle(clock, started, move |id: String| async move {
        identity_center.creation_status(&id).await
    })
    .await
}

/// Deletes the assignment and polls until Identity Center says it is done.
/// `Ok(None)` when there was nothing to delete.
pub async fn delete_assignment(
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    account: &AccountId,
    permission_set: &PermissionSetArn,
    user_id: &str,
) -> Result<Option<Provisioned>, PortError> {
    let started = with_retries(clock, Backoff::API, || {
        identity_center.delete_assignment(account, permission_set, user_id)
    })
    .await;
    match started {
        Ok(started) => settle(clock, started, move |id: String| async move {
            identity_center.deletion_status(&id).await
        })
        .await
        .map(Some),
        Err(e) if e.kind == PortErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Polls an asynchronous request (`status` asks Identity Center about it)
/// until it is no longer `IN_PROGRESS` or the polling budget is spent.
async fn settle<F, Fut>(
    clock: &dyn Clock,
    started: crate::ports::Provisioning,
    status: F,
) -> Result<Provisioned, PortError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<crate::ports::Provisioning, PortError>>,
{
    let request_id = started.request_id.clone();
    let last = match started.status {
        ProvisioningStatus::InProgress => {
            let polled = poll(
                clock,
                Backoff::PROVISIONING,
                || with_retries(clock, Backoff::API, || status(request_id.clone())),
                |p| p.status != ProvisioningStatus::InProgress,
            )
            .await?;
            match polled {
                Polled::Done(p) => p,
                Polled::TimedOut(_) => return Ok(Provisioned::Unconfirmed { request_id }),
            }
        }
        _ => started,
    };
    Ok(match last.status {
        ProvisioningStatus::Succeeded => Provisioned::Succeeded,
        ProvisioningStatus::Failed { reason } => Provisioned::Failed {
            reason: reason.unwrap_or_else(|| "Identity Center gave no reason".into()),
        },
        ProvisioningStatus::InProgress => Provisioned::Unconfirmed { request_id },
    })
}

/// Whether `user_id` holds the assignment right now (all pages).
pub async fn is_assigned(
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    account: &AccountId,
    permission_set: &PermissionSetArn,
    user_id: &str,
) -> Result<bool, PortError> {
    let users = with_retries(clock, Backoff::API, || {
        identity_center.assigned_users(account, permission_set)
    })
    .await?;
    Ok(users.iter().any(|u| u == user_id))
}

/// Posts to the request's thread; a Slack failure is logged, never fatal:
/// access must not depend on Slack being up.
pub async fn tell_thread(slack: &dyn Slack, request: &AccessRequest, text: &str) -> bool {
    match slack
        .post_message(&request.slack.channel_id, Some(&request.slack.thread_ts), text)
        .await
    {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "could not post to the Slack thread; carrying on");
            false
        }
    }
}

/// `14:05 UTC` for today, `2026-12-01 14:05 UTC` otherwise.
pub fn utc_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_durations_parse_like_identity_center_writes_them() {
        assert_eq!(session_duration(None), Ok(Duration::from_secs(3600)));
        assert_eq!(session_duration(Some("PT1H")), Ok(Duration::from_secs(3600)));
        assert_eq!(session_duration(Some("PT12H")), Ok(Duration::from_secs(43200)));
        assert_eq!(session_duration(Some("PT1H30M")), Ok(Duration::from_secs(5400)));
        assert_eq!(session_duration(Some("PT45M")), Ok(Duration::from_secs(2700)));
        for bad in ["", "P1D", "PT", "PT1X", "PT1", "1H"] {
            assert!(session_duration(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookup_modes_parse_case_insensitively() {
        assert_eq!("EMAIL".parse::<IdentityLookup>(), Ok(IdentityLookup::Email));
        assert_eq!("username".parse::<IdentityLookup>(), Ok(IdentityLookup::UserName));
        assert!("upn".parse::<IdentityLookup>().is_err());
    }

    #[test]
    fn times_read_naturally() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let later = DateTime::parse_from_rfc3339("2026-11-30T14:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tomorrow = DateTime::parse_from_rfc3339("2026-12-01T01:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(utc_time(later, now), "14:05 UTC");
        assert_eq!(utc_time(tomorrow, now), "2026-12-01 01:05 UTC");
    }
}
