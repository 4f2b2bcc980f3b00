//! revoke-access: take back what grant-access gave, and prove it is gone.
//!
//! Leaves alone what is not ours to take: standing access the user had
//! before, and access a later, still-running break-glass grant holds (that
//! grant's revoke removes it). Everything else is deleted, polled until
//! Identity Center finishes, and checked with `ListAccountAssignments`.
//! Idempotent: the state machine may run it again after a partial failure.

mod config;

use break_glass_core::ErrorType;
use break_glass_core::access::{
    Provisioned, delete_assignment, is_assigned, other_holders, tell_thread, utc_time,
};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{ContractError, Execution, Revoke, RevokeOutcome, whole_seconds};
use break_glass_core::ports::{Executions, IdentityCenter, PortError, Slack};
pub use config::Config;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub identity_center: &'a dyn IdentityCenter,
    pub executions: &'a dyn Executions,
    pub slack: &'a dyn Slack,
    pub clock: &'a dyn Clock,
}

#[derive(Debug, Error)]
pub enum RevokeError {
    #[error(transparent)]
    InvalidInput(#[from] ContractError),
    #[error("a dependency is unavailable, the access may still be in place: {0}")]
    DependencyUnavailable(PortError),
    #[error("an AWS call was refused, the access may still be in place: {0}")]
    AwsCallFailed(PortError),
    #[error("the revoke could not be verified, the access may still be in place: {0}")]
    RevokeUnverified(String),
}

impl ErrorType for RevokeError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(e) => e.error_type(),
            Self::DependencyUnavailable(_) => "DependencyUnavailable",
            Self::AwsCallFailed(_) => "AwsCallFailed",
            Self::RevokeUnverified(_) => "RevokeUnverified",
        }
    }
}

impl From<RevokeError> for Diagnostic {
    fn from(e: RevokeError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

fn port(e: PortError) -> RevokeError {
    if e.is_retryable() {
        RevokeError::DependencyUnavailable(e)
    } else {
        RevokeError::AwsCallFailed(e)
    }
}

/// Takes grant-access's output, returns it with a `revoke` section.
pub async fn handle(input: Value, deps: &Deps<'_>) -> Result<Value, RevokeError> {
    let mut execution = Execution::from_value(input)?;
    if execution.revoke.is_some() {
        return Ok(serde_json::to_value(&execution).unwrap_or_default());
    }
    let result = revoke(&execution, deps).await;
    if let Err(e) = &result {
        tracing::error!(execution = %execution.execution_name, error_type = e.error_type(), error = %e, "revoke failed");
    }
    let revoke = result?;
    let grant = execution.grant()?;
    let request = &execution.request;
    let now = deps.clock.now();
    let who = format!("<@{}>", request.requester.slack_user_id);
    let what = format!("{} in {}", grant.permission_set_name, request.account_id);
    let text = match &revoke.outcome {
        RevokeOutcome::Deleted | RevokeOutcome::AlreadyGone => format!(
            ":lock: Access removed: {who} no longer has {what}. Sessions opened before now stay valid until {} \
             (the permission set's session length); the activity report follows after that.",
            utc_time(revoke.sessions_valid_until, now)
        ),
        RevokeOutcome::LeftPreExisting => format!(
            ":information_source: Break glass is over. {who} keeps {what}: they had it before breaking glass, so it was left in place."
        ),
        RevokeOutcome::LeftForLaterGrant { execution_name } => format!(
            ":information_source: This grant is over, but {who} keeps {what} for now: a later break-glass grant \
             ({execution_name}) still holds it and will remove it."
        ),
    };
    tracing::info!(
        execution = %execution.execution_name,
        outcome = ?revoke.outcome,
        verified = revoke.verified,
        report_at = %revoke.report_at,
        "revoke done"
    );
    tell_thread(deps.slack, request, &text).await;
    execution.revoke = Some(revoke);
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}

async fn revoke(execution: &Execution, deps: &Deps<'_>) -> Result<Revoke, RevokeError> {
    let grant = execution.grant()?;
    let request = &execution.request;
    let clock = deps.clock;
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
            None => match delete_assignment(deps.identity_center, clock, account, set, user).await {
                Ok(None) => RevokeOutcome::AlreadyGone,
                Ok(Some(Provisioned::Succeeded)) => RevokeOutcome::Deleted,
                Ok(Some(Provisioned::Failed { reason })) => {
                    return Err(RevokeError::RevokeUnverified(format!(
                        "Identity Center reported FAILED: {reason}"
                    )));
                }
                Ok(Some(Provisioned::Unconfirmed { request_id })) => {
                    return Err(RevokeError::RevokeUnverified(format!(
                        "deletion {request_id} still IN_PROGRESS"
                    )));
                }
                Err(e) => return Err(port(e)),
            },
        }
    };

    let still_assigned = is_assigned(deps.identity_center, clock, account, set, user)
        .await
        .map_err(port)?;
    let expected_assigned = matches!(
        outcome,
        RevokeOutcome::LeftPreExisting | RevokeOutcome::LeftForLaterGrant { .. }
    );
    if !expected_assigned && still_assigned {
        return Err(RevokeError::RevokeUnverified(
            "ListAccountAssignments still lists the user after the deletion succeeded".into(),
        ));
    }

    let revoked_at = whole_seconds(clock.now());
    let sessions_valid_until = revoked_at + chrono::Duration::seconds(grant.session_duration_seconds as i64);
    let delay = chrono::Duration::from_std(deps.config.cloudtrail_delay).unwrap_or_default();
    Ok(Revoke {
        revoked_at,
        verified: expected_assigned == still_assigned,
        outcome,
        sessions_valid_until,
        report_at: sessions_valid_until + delay,
    })
}
