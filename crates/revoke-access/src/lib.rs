//! revoke-access: take back what grant-access gave, and prove it is gone.
//!
//! Gives up this execution's hold in the grant ledger. Leaves alone what is
//! not ours to take: standing access the user had before, and access another
//! break-glass grant still holds (the last holder's revoke removes it). The
//! last holder of a break-glass assignment deletes it, polls until Identity
//! Center finishes, checks with `ListAccountAssignments`, and only then
//! closes the ledger item. Idempotent: the state machine may run it again
//! after a partial failure, and the re-run finishes what the first started.

mod config;

use break_glass_core::ErrorType;
use std::time::Duration;

use break_glass_core::access::{LedgerError, Limits, release, tell_thread, utc_time};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{ContractError, Execution, Revoke, RevokeOutcome, whole_seconds};
use break_glass_core::ledger::{LedgerKey, Released};
use break_glass_core::ports::{IdentityCenter, Ledger, PortError, Slack};
use break_glass_core::retry::Deadline;
pub use config::Config;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub identity_center: &'a dyn IdentityCenter,
    pub ledger: &'a dyn Ledger,
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
    #[error("another execution is changing the same access right now: {0}")]
    RevokeInProgressElsewhere(String),
}

impl ErrorType for RevokeError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(e) => e.error_type(),
            Self::DependencyUnavailable(_) => "DependencyUnavailable",
            Self::AwsCallFailed(_) => "AwsCallFailed",
            Self::RevokeUnverified(_) => "RevokeUnverified",
            Self::RevokeInProgressElsewhere(_) => "RevokeInProgressElsewhere",
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
            ":information_source: This grant is over, but {who} keeps {what} for now: another break-glass grant \
             ({execution_name}) still holds it, and the last grant to end removes it."
        ),
    };
    tracing::info!(
        execution = %execution.execution_name,
        outcome = ?revoke.outcome,
        verified = revoke.verified,
        report_at = %revoke.report_at,
        "revoke done"
    );
    let mut revoke = revoke;
    if !tell_thread(deps.slack, request, &text).await {
        revoke.slack_unreachable = Some(
            "Slack could not be reached (or no bot token is configured): the thread was not told".into(),
        );
    }
    execution.revoke = Some(revoke);
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}

async fn revoke(execution: &Execution, deps: &Deps<'_>) -> Result<Revoke, RevokeError> {
    let grant = execution.grant()?;
    let request = &execution.request;
    let clock = deps.clock;
    let key = LedgerKey {
        user_id: grant.user_id.clone(),
        account_id: request.account_id.clone(),
        permission_set_arn: request.permission_set_arn.clone(),
    };
    let limits = Limits::DEFAULT.until(Deadline::after(clock, BUDGET), clock);
    let released = release(
        deps.ledger,
        deps.identity_center,
        clock,
        limits,
        &key,
        &execution.execution_name,
    )
    .await
    .map_err(|e| match e {
        LedgerError::Busy { .. } => RevokeError::RevokeInProgressElsewhere(e.to_string()),
        LedgerError::Unverified(why) | LedgerError::RemovalUnfinished(why) => {
            RevokeError::RevokeUnverified(why)
        }
        LedgerError::Port(p) => port(p),
    })?;
    let outcome = match released {
        Released::Removed => RevokeOutcome::Deleted,
        Released::LeftStanding => RevokeOutcome::LeftPreExisting,
        Released::LeftToOthers { execution_name } => RevokeOutcome::LeftForLaterGrant { execution_name },
        // An earlier run of this revoke finished (the item is closed or we
        // are no longer a holder): what it did was verified then.
        Released::NotHolding if grant.pre_existing => RevokeOutcome::LeftPreExisting,
        Released::NotHolding => RevokeOutcome::AlreadyGone,
    };

    let revoked_at = whole_seconds(clock.now());
    let sessions_valid_until = revoked_at + chrono::Duration::seconds(grant.session_duration_seconds as i64);
    let delay = chrono::Duration::from_std(deps.config.cloudtrail_delay).unwrap_or_default();
    Ok(Revoke {
        revoked_at,
        // Deletions are verified with ListAccountAssignments before the
        // ledger closes; what is left in place is the ledger's to know.
        verified: true,
        outcome,
        sessions_valid_until,
        report_at: sessions_valid_until + delay,
        slack_unreachable: None,
    })
}

/// revoke-access's retries and polling stop here, inside its 300 s Lambda
/// timeout; the state machine runs it again if that was not enough.
pub const BUDGET: Duration = Duration::from_secs(200);
