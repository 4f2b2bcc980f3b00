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
use break_glass_core::ports::{IdentityCenter, Ledger, PortError, SessionPolicy, Slack};
use break_glass_core::retry::Deadline;
use break_glass_core::sessions::{self, SessionDeny, SessionsEnded};
pub use config::{Config, EndSessions};
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
    /// The target accounts' session-revocation policy, through the audit
    /// role; `None` unless `config.end_sessions` is `On`.
    pub session_policy: Option<&'a dyn SessionPolicy>,
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
    let request = &execution.request;
    let now = deps.clock.now();
    let mut revoke = revoke;
    // Only a removal ends sessions: standing access and access another
    // grant still holds are not ours to cut. After the verified removal,
    // never before, and never able to fail or undo it.
    if matches!(
        revoke.outcome,
        RevokeOutcome::Deleted | RevokeOutcome::AlreadyGone
    ) {
        end_grant_sessions(&execution, &mut revoke, deps).await;
    }
    let text = thread_text(&execution, &revoke, now);
    tracing::info!(
        execution = %execution.execution_name,
        outcome = ?revoke.outcome,
        verified = revoke.verified,
        report_at = %revoke.report_at,
        "revoke done"
    );
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
        sessions_ended: false,
        sessions_not_ended: None,
    })
}

/// `revoke.sessions_not_ended` when ending sessions is switched off.
pub const SWITCHED_OFF: &str = "switched off (END_SESSIONS_ON_REVOKE=false)";
/// `revoke.sessions_not_ended` without an audit role to write through.
pub const NOT_CONFIGURED: &str = "not configured (no audit role)";

/// Adds the Deny on the user's earlier credentials to the target account's
/// session policy, within [`sessions::BUDGET`], and records what was
/// verified. When it is, the report need not wait out the session duration.
async fn end_grant_sessions(execution: &Execution, revoke: &mut Revoke, deps: &Deps<'_>) {
    let (policy, policy_name) = match (&deps.config.end_sessions, deps.session_policy) {
        (EndSessions::On { policy_name, .. }, Some(policy)) => (policy, policy_name),
        (EndSessions::SwitchedOff, _) => {
            revoke.sessions_not_ended = Some(SWITCHED_OFF.into());
            return;
        }
        _ => {
            revoke.sessions_not_ended = Some(NOT_CONFIGURED.into());
            return;
        }
    };
    let Ok(grant) = execution.grant() else { return };
    let clock = deps.clock;
    let deny = SessionDeny {
        user_id: grant.user_id.clone(),
        // revoked_at is cut to whole seconds: the next second covers every
        // credential issued before the removal was verified.
        issued_before: revoke.revoked_at + chrono::Duration::seconds(1),
        until: revoke.sessions_valid_until,
    };
    let account = &execution.request.account_id;
    let work = sessions::end_sessions(
        policy,
        deps.ledger,
        clock,
        account,
        &deny,
        &execution.execution_name,
        Deadline::after(clock, sessions::BUDGET),
    );
    // The deadline is checked between calls; this bounds a call that hangs.
    let ended = tokio::time::timeout(sessions::BUDGET + Duration::from_secs(5), work)
        .await
        .unwrap_or_else(|_| SessionsEnded::NotEnded("IAM did not answer in time".into()));
    match ended {
        SessionsEnded::Ended => {
            let at = whole_seconds(clock.now()) + chrono::Duration::seconds(1);
            let delay = chrono::Duration::from_std(deps.config.cloudtrail_delay).unwrap_or_default();
            revoke.sessions_ended = true;
            revoke.sessions_valid_until = at.min(revoke.sessions_valid_until);
            revoke.report_at = revoke.sessions_valid_until + delay;
            tracing::info!(account = %account, policy = %policy_name, "sessions ended");
        }
        SessionsEnded::NotEnded(why) => {
            tracing::warn!(account = %account, policy = %policy_name, reason = %why, "sessions not ended");
            revoke.sessions_not_ended = Some(why);
        }
    }
}

fn thread_text(execution: &Execution, revoke: &Revoke, now: chrono::DateTime<chrono::Utc>) -> String {
    let request = &execution.request;
    let who = format!("<@{}>", request.requester.slack_user_id);
    let what = match execution.grant() {
        Ok(grant) => format!("{} in {}", grant.permission_set_name, request.account_id),
        Err(_) => format!("access in {}", request.account_id),
    };
    let until = utc_time(revoke.sessions_valid_until, now);
    match &revoke.outcome {
        RevokeOutcome::Deleted | RevokeOutcome::AlreadyGone if revoke.sessions_ended => format!(
            ":lock: Access removed: {who} no longer has {what}, and the sessions opened during the grant \
             were ended at {until} (credentials issued before the revoke are denied); the activity report follows."
        ),
        RevokeOutcome::Deleted | RevokeOutcome::AlreadyGone => {
            let why = match revoke.sessions_not_ended.as_deref() {
                Some(SWITCHED_OFF) => {
                    " They were not ended, on purpose: ending sessions on revoke is switched off.".to_string()
                }
                Some(NOT_CONFIGURED) => String::new(),
                Some(why) => format!(" They could not be ended: {why}."),
                None => String::new(),
            };
            let base = format!(
                ":lock: Access removed: {who} no longer has {what}. Sessions opened before now stay valid until {until} \
                 (the permission set's session length)"
            );
            if why.is_empty() {
                format!("{base}; the activity report follows after that.")
            } else {
                format!("{base}.{why} The activity report follows after that.")
            }
        }
        RevokeOutcome::LeftPreExisting => format!(
            ":information_source: Break glass is over. {who} keeps {what}: they had it before breaking glass, so it was left in place."
        ),
        RevokeOutcome::LeftForLaterGrant { execution_name } => format!(
            ":information_source: This grant is over, but {who} keeps {what} for now: another break-glass grant \
             ({execution_name}) still holds it, and the last grant to end removes it."
        ),
    }
}

/// revoke-access's retries and polling stop here, inside its 300 s Lambda
/// timeout; the state machine runs it again if that was not enough.
pub const BUDGET: Duration = Duration::from_secs(200);
