//! grant-access: give the clicker the permission set in the account, and
//! only say so once Identity Center confirms it.
//!
//! Before creating anything it finds out whether the user already holds the
//! assignment, and why: standing access (pre-existing, never to be removed),
//! or another running break-glass execution (shared: the last holder's revoke
//! removes it). After a create has been sent, any failure to confirm it ends
//! in a delete that is verified, or in an error the state machine alerts on.

mod config;

use break_glass_core::ErrorType;
use break_glass_core::access::{
    self, IdentityError, Provisioned, create_assignment, delete_assignment, is_assigned, other_holders,
    resolve_identity, tell_thread, utc_time,
};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{AssignmentSource, ContractError, Execution, Grant, whole_seconds};
use break_glass_core::ports::{Directory, Executions, IdentityCenter, PortError, PortErrorKind, Slack};
use break_glass_core::retry::{Backoff, with_retries};
pub use config::Config;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub identity_center: &'a dyn IdentityCenter,
    pub directory: &'a dyn Directory,
    pub executions: &'a dyn Executions,
    pub slack: &'a dyn Slack,
    pub clock: &'a dyn Clock,
}

#[derive(Debug, Error)]
pub enum GrantError {
    #[error(transparent)]
    InvalidInput(#[from] ContractError),
    #[error("{0}")]
    IdentityNotFound(IdentityError),
    #[error("permission set not found: {0}")]
    PermissionSetNotFound(PortError),
    #[error("a dependency is unavailable, nothing was granted yet: {0}")]
    DependencyUnavailable(PortError),
    #[error("an AWS call was refused, nothing was granted: {0}")]
    AwsCallFailed(PortError),
    #[error("another break-glass execution ({0}) is still granting the same access")]
    GrantInProgressElsewhere(String),
    #[error("Identity Center could not create the assignment: {0}")]
    AssignmentFailed(String),
    #[error("the assignment could not be confirmed ({0}); it was removed again and verified gone")]
    RolledBack(String),
    #[error(
        "the assignment could not be confirmed ({0}) and removing it could not be verified: check Identity Center now"
    )]
    CleanupUnverified(String),
}

impl ErrorType for GrantError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(e) => e.error_type(),
            Self::IdentityNotFound(_) => "IdentityNotFound",
            Self::PermissionSetNotFound(_) => "PermissionSetNotFound",
            Self::DependencyUnavailable(_) => "DependencyUnavailable",
            Self::AwsCallFailed(_) => "AwsCallFailed",
            Self::GrantInProgressElsewhere(_) => "GrantInProgressElsewhere",
            Self::AssignmentFailed(_) => "AssignmentFailed",
            Self::RolledBack(_) => "GrantRolledBack",
            Self::CleanupUnverified(_) => "GrantCleanupUnverified",
        }
    }
}

impl From<GrantError> for Diagnostic {
    fn from(e: GrantError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

fn port(e: PortError) -> GrantError {
    if e.is_retryable() {
        GrantError::DependencyUnavailable(e)
    } else {
        GrantError::AwsCallFailed(e)
    }
}

/// Takes the execution contract, returns it with a `grant` section.
pub async fn handle(input: Value, deps: &Deps<'_>) -> Result<Value, GrantError> {
    let mut execution = Execution::from_value(input)?;
    if execution.grant.is_some() {
        // A re-run from the history: the grant is already recorded.
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
            match g.assignment {
                AssignmentSource::PreExisting => text.push_str(
                    " They already had this access before breaking glass, so it will be left in place afterwards.",
                ),
                AssignmentSource::SharedWithRunningExecution => {
                    text.push_str(" (An earlier break-glass grant for the same access is still running.)")
                }
                AssignmentSource::Created => {}
            }
            tracing::info!(
                execution = %execution.execution_name,
                user = %g.user_name,
                account = %request.account_id,
                permission_set = %request.permission_set_arn,
                assignment = ?g.assignment,
                expires_at = %g.expires_at,
                "access granted"
            );
            tell_thread(deps.slack, request, &text).await;
        }
        Err(e) => {
            tracing::error!(execution = %execution.execution_name, error_type = e.error_type(), error = %e, "grant failed");
            if let Some(text) = failure_text(e) {
                tell_thread(
                    deps.slack,
                    request,
                    &format!("<@{}> {text}", request.requester.slack_user_id),
                )
                .await;
            }
        }
    }
    execution.grant = Some(grant?);
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}

/// What the clicker reads when their grant fails. Retryable failures say
/// nothing: the state machine tries again, and a final failure is reported
/// by its Catch.
fn failure_text(e: &GrantError) -> Option<String> {
    match e {
        GrantError::DependencyUnavailable(_) | GrantError::GrantInProgressElsewhere(_) => None,
        GrantError::IdentityNotFound(why) => {
            Some(format!(":x: Break glass failed: {why}. Nothing was granted."))
        }
        GrantError::CleanupUnverified(_) => Some(format!(
            ":rotating_light: Break glass failed and cleaning up could not be verified: {e}. The platform team has been alerted."
        )),
        other => Some(format!(":x: Break glass failed: {other}.")),
    }
}

async fn grant(execution: &Execution, deps: &Deps<'_>) -> Result<Grant, GrantError> {
    let request = &execution.request;
    let clock = deps.clock;
    let user = resolve_identity(
        deps.slack,
        deps.directory,
        deps.config.lookup,
        &request.requester.slack_user_id,
        clock,
    )
    .await
    .map_err(|e| match e {
        IdentityError::Unavailable(p) => port(p),
        other => GrantError::IdentityNotFound(other),
    })?;

    let permission_set = with_retries(clock, Backoff::API, || {
        deps.identity_center.permission_set(&request.permission_set_arn)
    })
    .await
    .map_err(|e| match e.kind {
        PortErrorKind::NotFound => GrantError::PermissionSetNotFound(e),
        _ => port(e),
    })?;
    let session =
        access::session_duration(permission_set.session_duration.as_deref()).unwrap_or_else(|why| {
            // Assume the longest session Identity Center allows, so the report
            // window is never too short.
            tracing::warn!(%why, "assuming a 12 hour session");
            std::time::Duration::from_secs(12 * 3600)
        });

    let (account, set) = (&request.account_id, &request.permission_set_arn);
    let held = is_assigned(deps.identity_center, clock, account, set, &user.user_id)
        .await
        .map_err(port)?;
    let assignment = if held {
        let holders = other_holders(deps.executions, &execution.execution_name, request, clock)
            .await
            .map_err(port)?;
        if let Some(pending) = holders.iter().find(|h| h.grant.is_none()) {
            return Err(GrantError::GrantInProgressElsewhere(
                pending.execution_name.clone(),
            ));
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
        // From here on we may have created something: every failure path
        // removes it again or says loudly that it could not.
        match create_assignment(deps.identity_center, clock, account, set, &user.user_id).await {
            Ok(Provisioned::Succeeded) => AssignmentSource::Created,
            Ok(Provisioned::Failed { reason }) => return Err(GrantError::AssignmentFailed(reason)),
            Ok(Provisioned::Unconfirmed { request_id }) => {
                return Err(roll_back(
                    deps,
                    execution,
                    &user.user_id,
                    format!("still IN_PROGRESS ({request_id})"),
                )
                .await);
            }
            Err(e) if !e.is_retryable() && e.kind != PortErrorKind::Other => return Err(port(e)),
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

/// The create may or may not have happened: delete, then look.
async fn roll_back(deps: &Deps<'_>, execution: &Execution, user_id: &str, why: String) -> GrantError {
    let request = &execution.request;
    let (account, set, clock) = (&request.account_id, &request.permission_set_arn, deps.clock);
    let deleted = delete_assignment(deps.identity_center, clock, account, set, user_id).await;
    let gone = matches!(deleted, Ok(None | Some(Provisioned::Succeeded)))
        && matches!(
            is_assigned(deps.identity_center, clock, account, set, user_id).await,
            Ok(false)
        );
    if gone {
        GrantError::RolledBack(why)
    } else {
        GrantError::CleanupUnverified(why)
    }
}
