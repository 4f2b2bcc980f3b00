//! The holder logic before the grant ledger (commit 63fa70f), kept only so
//! the simulation can show it catches it: grant-access and revoke-access
//! decided who else held the access from `ListExecutions` (running
//! executions, their inputs and, from their history, their grant sections),
//! which is eventually consistent.
//!
//! A minimal port: `other_holders`, the grant and the revoke as they were;
//! the Identity Center helpers (create/delete and poll, list) are today's,
//! so what the simulation finds here is the holder logic's doing.

use std::time::Duration;

use async_trait::async_trait;
use break_glass_core::access::{
    CreateError, Limits, Provisioned, create_assignment, delete_assignment, is_assigned, session_duration,
    tell_thread, utc_time,
};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{
    AccessRequest, AssignmentSource, Execution, Grant, Revoke, RevokeOutcome, whole_seconds,
};
use break_glass_core::ports::{Directory, IdentityCenter, LookupAttribute, PortError, PortErrorKind, Slack};
use break_glass_core::retry::{Backoff, with_retries};
use break_glass_local::asl::TaskError;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::ports::SimPorts;

/// A running execution as `ListExecutions` + `DescribeExecution` +
/// `GetExecutionHistory` showed it (the port the old code read holders from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningExecution {
    pub name: String,
    pub input: String,
    pub grant: Option<Grant>,
}

#[async_trait]
pub trait RunningExecutions: Send + Sync + std::fmt::Debug {
    async fn running(&self) -> Result<Vec<RunningExecution>, PortError>;
}

/// Step Functions' listing: the executions running as of a random moment
/// up to the seed's lag ago, with the grant sections recorded by then.
#[async_trait]
impl RunningExecutions for SimPorts {
    async fn running(&self) -> Result<Vec<RunningExecution>, PortError> {
        let (world, by) = (&self.0.world, self.0.label.clone());
        self.0
            .call("states", "ListExecutions", false, || {
                let now = world.elapsed();
                let lag = Duration::from_millis(world.rng(|r| r.below(world.faults.sfn_lag_ms + 1)));
                let seen_at = now.saturating_sub(lag);
                let running: Vec<RunningExecution> = world
                    .executions()
                    .into_iter()
                    .filter(|e| {
                        e.started.is_some_and(|t| t <= seen_at) && e.ended.is_none_or(|t| t > seen_at)
                    })
                    .map(|e| RunningExecution {
                        grant: e.grant.filter(|(t, _)| *t <= seen_at).map(|(_, g)| g),
                        name: e.name,
                        input: e.input,
                    })
                    .collect();
                let names: Vec<String> = running
                    .iter()
                    .map(|r| {
                        format!(
                            "{}{}",
                            crate::world::short(&r.name),
                            if r.grant.is_some() { "+grant" } else { "" }
                        )
                    })
                    .collect();
                world.log(
                    &by,
                    format!(
                        "ListExecutions -> [{}] (as of {:.1} s ago)",
                        names.join(", "),
                        lag.as_secs_f64()
                    ),
                );
                Ok(running)
            })
            .await
    }
}

#[derive(Debug)]
pub struct Deps<'a> {
    pub identity_center: &'a dyn IdentityCenter,
    pub directory: &'a dyn Directory,
    pub slack: &'a dyn Slack,
    pub executions: &'a dyn RunningExecutions,
    pub clock: &'a dyn Clock,
}

fn fail(error_type: &str, message: impl std::fmt::Display) -> TaskError {
    TaskError::new(
        error_type,
        json!({"errorType": error_type, "errorMessage": message.to_string()}).to_string(),
    )
}

fn port(e: PortError) -> TaskError {
    if e.is_retryable() {
        fail("DependencyUnavailable", e)
    } else {
        fail("AwsCallFailed", e)
    }
}

struct Holder {
    execution_name: String,
    expires_at: DateTime<Utc>,
    grant: Option<Grant>,
}

/// The other running executions for the same Slack user, account and
/// permission set (as the old `access::other_holders`).
async fn other_holders(
    executions: &dyn RunningExecutions,
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

pub async fn grant_handle(input: Value, deps: &Deps<'_>) -> Result<Value, TaskError> {
    let mut execution = Execution::from_value(input).map_err(|e| fail("InvalidExecutionInput", e))?;
    if execution.grant.is_some() {
        return Ok(serde_json::to_value(&execution).unwrap_or_default());
    }
    let grant = grant(&execution, deps).await;
    let request = &execution.request;
    match &grant {
        Ok(g) => {
            let mut text = format!(
                ":unlock: <@{}> has {} in {} until {}.",
                request.requester.slack_user_id,
                g.permission_set_name,
                request.account_id,
                utc_time(g.expires_at, deps.clock.now())
            );
            if g.assignment == AssignmentSource::PreExisting {
                text.push_str(" They already had this access before breaking glass.");
            }
            tell_thread(deps.slack, request, &text).await;
        }
        Err(e) if e.error != "DependencyUnavailable" && e.error != "GrantInProgressElsewhere" => {
            tell_thread(
                deps.slack,
                request,
                &format!(":x: Break glass failed: {}", e.error),
            )
            .await;
        }
        Err(_) => {}
    }
    execution.grant = Some(grant?);
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}

async fn grant(execution: &Execution, deps: &Deps<'_>) -> Result<Grant, TaskError> {
    let request = &execution.request;
    let (ic, clock) = (deps.identity_center, deps.clock);
    // Slack e-mail → Identity Store user, as before.
    let profile = with_retries(clock, Backoff::API, || {
        deps.slack.user_profile(&request.requester.slack_user_id)
    })
    .await
    .map_err(port)?;
    let email = profile
        .email
        .ok_or_else(|| fail("IdentityNotFound", "no e-mail"))?;
    let user = with_retries(clock, Backoff::API, || {
        deps.directory.find_user(LookupAttribute::Email, &email)
    })
    .await
    .map_err(port)?
    .ok_or_else(|| fail("IdentityNotFound", "no user"))?;
    let permission_set = with_retries(clock, Backoff::API, || {
        ic.permission_set(&request.permission_set_arn)
    })
    .await
    .map_err(|e| match e.kind {
        PortErrorKind::NotFound => fail("PermissionSetNotFound", e),
        _ => port(e),
    })?;
    let session = session_duration(permission_set.session_duration.as_deref())
        .unwrap_or(Duration::from_secs(12 * 3600));

    let (account, set) = (&request.account_id, &request.permission_set_arn);
    let held = is_assigned(ic, clock, Backoff::API, account, set, &user.user_id)
        .await
        .map_err(port)?;
    let assignment = if held {
        let holders = other_holders(deps.executions, &execution.execution_name, request, clock)
            .await
            .map_err(port)?;
        if let Some(pending) = holders.iter().find(|h| h.grant.is_none()) {
            return Err(fail("GrantInProgressElsewhere", &pending.execution_name));
        }
        let inherited_standing = holders
            .iter()
            .any(|h| h.grant.as_ref().is_some_and(|g| g.pre_existing));
        if holders.is_empty() || inherited_standing {
            AssignmentSource::PreExisting
        } else {
            AssignmentSource::SharedWithRunningExecution
        }
    } else {
        match create_assignment(ic, clock, Limits::DEFAULT, account, set, &user.user_id).await {
            Ok(Provisioned::Succeeded) => AssignmentSource::Created,
            Ok(Provisioned::Failed { reason }) => return Err(fail("AssignmentFailed", reason)),
            Ok(Provisioned::Unconfirmed { request_id }) => {
                return Err(roll_back(
                    deps,
                    execution,
                    &user.user_id,
                    format!("still IN_PROGRESS ({request_id})"),
                )
                .await);
            }
            Err(CreateError::NotAccepted(e)) if !e.is_retryable() && e.kind != PortErrorKind::Other => {
                return Err(port(e));
            }
            Err(e) => return Err(roll_back(deps, execution, &user.user_id, e.to_string()).await),
        }
    };
    let granted_at = whole_seconds(clock.now());
    Ok(Grant {
        user_id: user.user_id,
        user_name: user.user_name,
        permission_set_name: permission_set.name,
        session_duration_seconds: session.as_secs(),
        granted_at,
        expires_at: granted_at + request.duration_seconds.as_chrono(),
        pre_existing: assignment == AssignmentSource::PreExisting,
        assignment,
    })
}

async fn roll_back(deps: &Deps<'_>, execution: &Execution, user_id: &str, why: String) -> TaskError {
    let request = &execution.request;
    let (ic, clock) = (deps.identity_center, deps.clock);
    let (account, set) = (&request.account_id, &request.permission_set_arn);
    let deleted = delete_assignment(ic, clock, Limits::DEFAULT, account, set, user_id).await;
    let gone = matches!(deleted, Ok(None | Some(Provisioned::Succeeded)))
        && matches!(
            is_assigned(ic, clock, Backoff::API, account, set, user_id).await,
            Ok(false)
        );
    if gone {
        fail("GrantRolledBack", why)
    } else {
        fail("GrantCleanupUnverified", why)
    }
}

pub async fn revoke_handle(input: Value, deps: &Deps<'_>) -> Result<Value, TaskError> {
    let mut execution = Execution::from_value(input).map_err(|e| fail("InvalidExecutionInput", e))?;
    if execution.revoke.is_some() {
        return Ok(serde_json::to_value(&execution).unwrap_or_default());
    }
    let revoke = revoke(&execution, deps).await?;
    let request = &execution.request;
    let text = match &revoke.outcome {
        RevokeOutcome::Deleted | RevokeOutcome::AlreadyGone => ":lock: Access removed.".to_string(),
        RevokeOutcome::LeftPreExisting => {
            ":information_source: Break glass is over; standing access kept.".into()
        }
        RevokeOutcome::LeftForLaterGrant { execution_name } => {
            format!(":information_source: This grant is over; {execution_name} still holds it.")
        }
    };
    tell_thread(deps.slack, request, &text).await;
    execution.revoke = Some(revoke);
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}

async fn revoke(execution: &Execution, deps: &Deps<'_>) -> Result<Revoke, TaskError> {
    let grant = execution.grant().map_err(|e| fail("InvalidExecutionInput", e))?;
    let request = &execution.request;
    let (ic, clock) = (deps.identity_center, deps.clock);
    let (account, set, user) = (
        &request.account_id,
        &request.permission_set_arn,
        grant.user_id.as_str(),
    );

    let outcome = if grant.pre_existing {
        RevokeOutcome::LeftPreExisting
    } else {
        let holders = other_holders(deps.executions, &execution.execution_name, request, clock)
            .await
            .map_err(port)?;
        let mine = (grant.expires_at, execution.execution_name.as_str());
        let later = holders
            .iter()
            .filter(|h| (h.expires_at, h.execution_name.as_str()) > mine)
            .max_by_key(|h| h.expires_at);
        match later {
            Some(holder) => RevokeOutcome::LeftForLaterGrant {
                execution_name: holder.execution_name.clone(),
            },
            None => match delete_assignment(ic, clock, Limits::DEFAULT, account, set, user).await {
                Ok(None) => RevokeOutcome::AlreadyGone,
                Ok(Some(Provisioned::Succeeded)) => RevokeOutcome::Deleted,
                Ok(Some(Provisioned::Failed { reason })) => {
                    return Err(fail(
                        "RevokeUnverified",
                        format!("Identity Center reported FAILED: {reason}"),
                    ));
                }
                Ok(Some(Provisioned::Unconfirmed { request_id })) => {
                    return Err(fail(
                        "RevokeUnverified",
                        format!("deletion {request_id} still IN_PROGRESS"),
                    ));
                }
                Err(e) => return Err(port(e)),
            },
        }
    };

    let still_assigned = is_assigned(ic, clock, Backoff::API, account, set, user)
        .await
        .map_err(port)?;
    let expected_assigned = matches!(
        outcome,
        RevokeOutcome::LeftPreExisting | RevokeOutcome::LeftForLaterGrant { .. }
    );
    if !expected_assigned && still_assigned {
        return Err(fail(
            "RevokeUnverified",
            "ListAccountAssignments still lists the user after the deletion succeeded",
        ));
    }
    let revoked_at = whole_seconds(clock.now());
    let sessions_valid_until = revoked_at + chrono::Duration::seconds(grant.session_duration_seconds as i64);
    Ok(Revoke {
        revoked_at,
        verified: expected_assigned == still_assigned,
        outcome,
        sessions_valid_until,
        report_at: sessions_valid_until + chrono::Duration::minutes(15),
        slack_unreachable: None,
        sessions_ended: false,
        sessions_not_ended: None,
    })
}
