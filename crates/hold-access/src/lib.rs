//! hold-access: the hold between grant and revoke, which Slack can end
//! early or move (see `break_glass_core::ledger::hold`).
//!
//! One function, two steps of the state machine:
//! - `CheckHold` (a plain task, input the execution): reads this
//!   execution's hold in the ledger and returns the execution with a `hold`
//!   section — seconds left, or over (recorded in the ledger first, so no
//!   Extend can land after the revoke was decided).
//! - `Hold` (`lambda:invoke.waitForTaskToken`, input `{task_token,
//!   execution}`): stores the task token on the holder so End access now can
//!   wake the hold, and fails with `HoldOver` when the hold is to end already
//!   (an End pressed before the token was stored), which wakes it too.
//!
//! Every answer the state machine gets leads to the revoke sooner or later:
//! errors of `CheckHold` are caught into the revoke, errors of `Hold` into
//! a plain Wait until the last known end.

mod config;

use std::time::Duration;

use break_glass_core::ErrorType;
use break_glass_core::access::{HoldCheck, LedgerError, Limits, Registered, check_hold, register_hold};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{ContractError, Execution, Hold};
use break_glass_core::ledger::LedgerKey;
use break_glass_core::ledger::hold::HoldEnd;
use break_glass_core::ports::Ledger;
use break_glass_core::retry::Deadline;
pub use config::Config;
use lambda_runtime::Diagnostic;
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

/// How long one call may keep trying the ledger: well inside the
/// function's 30 s timeout.
pub const BUDGET: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct Deps<'a> {
    pub ledger: &'a dyn Ledger,
    pub clock: &'a dyn Clock,
    /// [`Config::time_scale`]: 1 in AWS.
    pub time_scale: f64,
}

/// Time as the hold sees it under a time scale: from the hold's first look
/// on, `scale` times as fast as `real` (break-glass-local's scaled waits).
#[derive(Debug)]
struct Scaled<'a> {
    real: &'a dyn Clock,
    from: chrono::DateTime<chrono::Utc>,
    scale: f64,
}

#[async_trait::async_trait]
impl Clock for Scaled<'_> {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let real = self.real.now();
        let elapsed = (real - self.from).num_milliseconds().max(0) as f64;
        self.from + chrono::Duration::milliseconds((elapsed * self.scale) as i64)
    }
    async fn sleep(&self, duration: Duration) {
        self.real.sleep(duration).await;
    }
}

#[derive(Debug, Error)]
pub enum HoldError {
    #[error(transparent)]
    InvalidInput(#[from] ContractError),
    /// Not a failure: the way the `Hold` task is woken when its hold is to
    /// end before the End button could find its token.
    #[error("the hold is over ({0}); waking the state machine")]
    HoldOver(&'static str),
    #[error("the grant ledger is unavailable: {0}")]
    DependencyUnavailable(LedgerError),
}

impl ErrorType for HoldError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(e) => e.error_type(),
            Self::HoldOver(_) => "HoldOver",
            Self::DependencyUnavailable(_) => "DependencyUnavailable",
        }
    }
}

impl From<HoldError> for Diagnostic {
    fn from(e: HoldError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// The `Hold` task's payload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Waiting {
    task_token: String,
    execution: Value,
}

/// Either step, told apart by the payload's shape.
pub async fn handle(input: Value, deps: &Deps<'_>) -> Result<Value, HoldError> {
    if input.get("task_token").is_some() {
        let waiting: Waiting = serde_json::from_value(input)
            .map_err(|e| HoldError::InvalidInput(ContractError::Malformed(e.to_string())))?;
        let execution = Execution::from_value(waiting.execution)?;
        hold(&execution, &waiting.task_token, deps).await?;
        Ok(Value::Object(Default::default()))
    } else {
        let mut execution = Execution::from_value(input)?;
        execution.hold = Some(check(&execution, deps).await?);
        Ok(serde_json::to_value(&execution).unwrap_or_default())
    }
}

fn key_of(execution: &Execution) -> Result<LedgerKey, ContractError> {
    let grant = execution.grant()?;
    Ok(LedgerKey {
        user_id: grant.user_id.clone(),
        account_id: execution.request.account_id.clone(),
        permission_set_arn: execution.request.permission_set_arn.clone(),
    })
}

fn why(end: &HoldEnd) -> &'static str {
    match end {
        HoldEnd::Expired => "its time is up",
        HoldEnd::EndedEarly(_) => "ended early",
        HoldEnd::NotHeld => "the ledger holds no hold of this execution",
    }
}

/// `CheckHold`.
pub async fn check(execution: &Execution, deps: &Deps<'_>) -> Result<Hold, HoldError> {
    let key = key_of(execution)?;
    let started_at = execution
        .hold
        .as_ref()
        .and_then(|h| h.started_at)
        .unwrap_or_else(|| deps.clock.now());
    let scaled = Scaled {
        real: deps.clock,
        from: started_at,
        scale: deps.time_scale,
    };
    let clock: &dyn Clock = if deps.time_scale > 1.0 {
        &scaled
    } else {
        deps.clock
    };
    let limits = Limits::DEFAULT.until(Deadline::after(clock, BUDGET), clock);
    let me = execution.execution_name.as_str();
    let checked = check_hold(deps.ledger, clock, limits, &key, me)
        .await
        .map_err(HoldError::DependencyUnavailable)?;
    let last_until = execution
        .hold
        .as_ref()
        .map(|h| h.until)
        .or(execution.grant.as_ref().map(|g| g.expires_at))
        .unwrap_or_else(|| clock.now());
    Ok(match checked {
        HoldCheck::Hold { seconds, until } => {
            tracing::info!(execution = me, seconds, until = %until, "holding");
            Hold {
                over: false,
                seconds,
                until,
                ended_early_by: None,
                started_at: Some(started_at),
            }
        }
        HoldCheck::Over(end) => {
            tracing::info!(execution = me, why = why(&end), "hold over; revoking");
            Hold {
                over: true,
                seconds: 0,
                until: match &end {
                    HoldEnd::EndedEarly(stamp) => stamp.at,
                    _ => last_until,
                },
                ended_early_by: match end {
                    HoldEnd::EndedEarly(stamp) => Some(stamp.by),
                    _ => None,
                },
                started_at: Some(started_at),
            }
        }
    })
}

/// `Hold`'s Lambda.
pub async fn hold(execution: &Execution, token: &str, deps: &Deps<'_>) -> Result<(), HoldError> {
    let key = key_of(execution)?;
    let clock = deps.clock;
    let limits = Limits::DEFAULT.until(Deadline::after(clock, BUDGET), clock);
    let me = execution.execution_name.as_str();
    match register_hold(deps.ledger, clock, limits, &key, me, token)
        .await
        .map_err(HoldError::DependencyUnavailable)?
    {
        Registered::Stored => {
            tracing::info!(execution = me, "hold token stored; waiting");
            Ok(())
        }
        Registered::Wake(end) => Err(HoldError::HoldOver(why(&end))),
    }
}
