//! reconcile-access: finish every revoke that did not finish.
//!
//! Every path in the state machine ends in a verified revoke or an alert,
//! but an alert needs a person, and some endings skip the state machine: an
//! execution stopped by hand, one that timed out, a state machine replaced
//! while grants were held, a revoke that exhausted its retries. The grant
//! ledger knows, for every break-glass assignment, who holds it: this
//! function removes the ones whose holders have all ended, with the same
//! verified delete revoke-access uses, and says so loudly. Standing access
//! is never removed, only its ledger item closed; running holders and
//! changes in flight are never touched; every write is conditional on the
//! item being unchanged since it was read.
//!
//! Triggered on a schedule (a full sweep) and by this state machine's
//! executions ending ABORTED, TIMED_OUT or FAILED (that execution is known
//! to have ended at once; anything else is a sweep).

mod config;

use std::collections::BTreeMap;

use break_glass_core::ErrorType;
use break_glass_core::access::{Limits, Reconciled, reconcile_item, tell_channel};
use break_glass_core::clock::Clock;
use break_glass_core::ledger::{Holder, HolderStatus, LedgerItem, LedgerKey};
use break_glass_core::ports::{
    Alerts, ExecutionStatus, Executions, IdentityCenter, Ledger, PortError, SessionPolicy, Slack,
};
use break_glass_core::retry::{Deadline, with_retries};
pub use config::{Config, SessionPolicySettings};
use lambda_runtime::Diagnostic;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub ledger: &'a dyn Ledger,
    pub identity_center: &'a dyn IdentityCenter,
    pub executions: &'a dyn Executions,
    pub slack: &'a dyn Slack,
    pub alerts: Option<&'a dyn Alerts>,
    pub clock: &'a dyn Clock,
    /// The target accounts' session revocation policy, through the audit
    /// role; `None` unless `config.session_policy` is set.
    pub session_policy: Option<&'a dyn SessionPolicy>,
}

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("the grant ledger could not be read; the next run tries again: {0}")]
    LedgerUnavailable(PortError),
}

impl ErrorType for ReconcileError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::LedgerUnavailable(_) => "LedgerUnavailable",
        }
    }
}

impl From<ReconcileError> for Diagnostic {
    fn from(e: ReconcileError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// What started this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An execution of ours ended without finishing (EventBridge's "Step
    /// Functions Execution Status Change" with ABORTED, TIMED_OUT or FAILED).
    Ended { execution_name: String, status: String },
    /// The schedule, or anything else.
    Sweep,
}

impl Trigger {
    pub fn from_event(event: &Value, state_machine_arn: &str) -> Trigger {
        let detail = &event["detail"];
        let status = detail["status"].as_str().unwrap_or_default();
        let ours = detail["stateMachineArn"].as_str() == Some(state_machine_arn);
        match (event["detail-type"].as_str(), detail["name"].as_str()) {
            (Some("Step Functions Execution Status Change"), Some(name))
                if ours && matches!(status, "ABORTED" | "TIMED_OUT" | "FAILED") =>
            {
                Trigger::Ended {
                    execution_name: name.to_string(),
                    status: status.to_string(),
                }
            }
            _ => Trigger::Sweep,
        }
    }
}

/// The run's output: what it looked at and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub trigger: String,
    pub looked_at: usize,
    /// Break-glass assignments removed (verified) because every holder ended.
    pub finished: usize,
    /// Standing-access items closed.
    pub closed: usize,
    /// Items with a running holder or a change in flight.
    pub left: usize,
    /// Items that changed while we looked: the next run decides.
    pub changed: usize,
    pub drift: Vec<String>,
    /// Accounts whose session revocation policy had expired Denies dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub session_policies_cleaned: Vec<String>,
    pub errors: Vec<String>,
}

/// How long one run may spend before it stops picking up new items (the
/// Lambda's timeout is 300 s; an item in progress gets the rest).
pub const RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(200);

pub async fn handle(event: Value, deps: &Deps<'_>) -> Result<Value, ReconcileError> {
    let clock = deps.clock;
    let trigger = Trigger::from_event(&event, &deps.config.state_machine_arn);
    // Unique per run, so two reconcilers never both think they hold a lease.
    let me = format!(
        "reconcile-access:{}",
        event["id"].as_str().map(str::to_string).unwrap_or_else(|| clock
            .now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_string())
    );
    let deadline = Deadline::after(clock, RUN_BUDGET);
    let limits = Limits::DEFAULT.until(deadline, clock);
    let items = with_retries(clock, limits.api, || deps.ledger.open_items())
        .await
        .map_err(ReconcileError::LedgerUnavailable)?;
    let mut summary = Summary {
        trigger: match &trigger {
            Trigger::Ended {
                execution_name,
                status,
            } => format!("{execution_name} ended {status}"),
            Trigger::Sweep => "sweep".into(),
        },
        looked_at: items.len(),
        ..Summary::default()
    };
    for item in &items {
        if deadline.passed(clock) {
            summary.errors.push(format!(
                "{}: not reached before the run's time ran out",
                describe(item)
            ));
            continue;
        }
        reconcile_one(item, &trigger, &me, deps, &mut summary).await;
    }
    if trigger == Trigger::Sweep && !deadline.passed(clock) {
        drift(deps, &mut summary).await;
    }
    if trigger == Trigger::Sweep && !deadline.passed(clock) {
        clean_session_policies(deps, &me, &mut summary).await;
    }
    tracing::info!(?summary, "reconciled");
    Ok(serde_json::to_value(&summary).unwrap_or_default())
}

/// How long cleaning one account's session policy may take.
const CLEANUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Drops the Denies whose sessions have all expired from each allowed
/// account's session revocation policy, so a stale statement goes even
/// when no later revoke writes to that account. An expired Deny only
/// matches expired credentials: leaving one for the next sweep is harmless.
async fn clean_session_policies(deps: &Deps<'_>, me: &str, summary: &mut Summary) {
    let Some(policy) = deps.session_policy else {
        return;
    };
    for account in &deps.config.accounts {
        let work = break_glass_core::sessions::clean_up(policy, deps.ledger, deps.clock, account, me);
        match tokio::time::timeout(CLEANUP_BUDGET, work).await {
            Ok(Ok(true)) => summary.session_policies_cleaned.push(account.to_string()),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => summary.errors.push(format!("session policy in {account}: {e}")),
            Err(_) => summary
                .errors
                .push(format!("session policy in {account}: no answer in time")),
        }
    }
}

async fn reconcile_one(
    item: &LedgerItem,
    trigger: &Trigger,
    me: &str,
    deps: &Deps<'_>,
    summary: &mut Summary,
) {
    let clock = deps.clock;
    let now = clock.now();
    let min_age = chrono::Duration::from_std(deps.config.min_age).unwrap_or_default();
    // What Step Functions says of each holder, trusted only where its
    // eventual consistency cannot mislead us.
    let mut statuses: BTreeMap<String, Option<HolderStatus>> = BTreeMap::new();
    for holder in &item.holders {
        let status = match trigger {
            Trigger::Ended { execution_name, .. } if *execution_name == holder.execution_name => {
                Some(HolderStatus::Ended)
            }
            _ if now - holder.joined_at < min_age => None,
            _ => match deps.executions.status(&holder.execution_name).await {
                Ok(Some(ExecutionStatus::Running)) => Some(HolderStatus::Running),
                Ok(Some(ExecutionStatus::Ended(_)) | None) => Some(HolderStatus::Ended),
                Err(e) => {
                    summary.errors.push(format!(
                        "{}: DescribeExecution {}: {e}",
                        describe(item),
                        holder.execution_name
                    ));
                    None
                }
            },
        };
        statuses.insert(holder.execution_name.clone(), status);
    }
    let status = |h: &Holder| statuses.get(&h.execution_name).copied().flatten();
    let limits = Limits::DEFAULT.until(Deadline::after(clock, RUN_BUDGET), clock);
    match reconcile_item(
        deps.ledger,
        deps.identity_center,
        clock,
        limits,
        item,
        &status,
        me,
    )
    .await
    {
        Ok(Reconciled::Left(_)) => summary.left += 1,
        Ok(Reconciled::Changed) => summary.changed += 1,
        Ok(Reconciled::Closed) => summary.closed += 1,
        Ok(Reconciled::Removed { holders }) => {
            summary.finished += 1;
            let names: Vec<&str> = holders.iter().map(|h| h.execution_name.as_str()).collect();
            let text = format!(
                ":rotating_light: reconcile-access removed a break-glass assignment nobody was holding any more: {}. \
                 Every execution that held it had ended without removing it ({}). The removal is verified.",
                describe(item),
                if names.is_empty() {
                    "a revoke left unfinished".to_string()
                } else {
                    names.join(", ")
                }
            );
            alert(deps, "break glass: leftover access removed", &text, &holders).await;
        }
        Err(e) => {
            let line = format!("{}: {e}", describe(item));
            summary.errors.push(line.clone());
            // The item stays as it was (or `revoking` under our lease), so
            // the next run tries again; a second failure in a row is a
            // person's problem.
            if item.reconcile_attempts >= 1 {
                let text = format!(
                    ":rotating_light: reconcile-access could not remove a leftover break-glass assignment, \
                     {} runs in a row: {line}. Remove it by hand.",
                    item.reconcile_attempts + 1
                );
                alert(
                    deps,
                    "break glass: leftover access NOT removed",
                    &text,
                    &item.holders,
                )
                .await;
            }
        }
    }
}

fn describe(item: &LedgerItem) -> String {
    format!(
        "{} ({}) in {} as {}",
        item.user_name, item.key.user_id, item.key.account_id, item.key.permission_set_arn
    )
}

/// SNS, the alert channel and the holders' threads; none of them failing
/// stops the others (or the run).
async fn alert(deps: &Deps<'_>, subject: &str, text: &str, holders: &[Holder]) {
    tracing::error!(subject, text, "alert");
    if let Some(alerts) = deps.alerts
        && let Err(error) = alerts.publish(subject, text).await
    {
        tracing::error!(%error, "could not publish the alert to SNS");
    }
    if let Some(channel) = &deps.config.alert_slack_channel {
        tell_channel(deps.slack, channel, None, text).await;
    }
    for (channel, thread) in holders.iter().filter_map(|h| h.thread.as_ref()) {
        tell_channel(deps.slack, channel, Some(thread), text).await;
    }
}

/// Assignments of the allow-listed permission sets in the allowed accounts
/// that the ledger knows nothing about: listed, never deleted (standing
/// access is not ours to judge), at most once a day each.
async fn drift(deps: &Deps<'_>, summary: &mut Summary) {
    let clock = deps.clock;
    for account in &deps.config.accounts {
        for set in &deps.config.permission_sets {
            let users = match with_retries(clock, Limits::DEFAULT.api, || {
                deps.identity_center.assigned_users(account, set)
            })
            .await
            {
                Ok(users) => users,
                Err(e) => {
                    summary.errors.push(format!("drift {account} {set}: {e}"));
                    continue;
                }
            };
            for user_id in users {
                let key = LedgerKey {
                    user_id,
                    account_id: account.clone(),
                    permission_set_arn: set.clone(),
                };
                match deps.ledger.get(&key).await {
                    Ok(Some(_)) => {}
                    Ok(None) => match deps.ledger.note_drift(&key, clock.now()).await {
                        Ok(true) => summary.drift.push(format!(
                            "{} holds {} in {} with no break-glass record",
                            key.user_id, set, account
                        )),
                        Ok(false) => {}
                        Err(e) => summary.errors.push(format!("drift {}: {e}", key.pk())),
                    },
                    Err(e) => summary.errors.push(format!("drift {}: {e}", key.pk())),
                }
            }
        }
    }
    if !summary.drift.is_empty() {
        let text = format!(
            ":mag: Assignments of break-glass permission sets that break glass did not make (left in place; \
             review them):\n{}",
            summary.drift.join("\n")
        );
        alert(deps, "break glass: assignments outside break glass", &text, &[]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SM: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:break-glass";

    #[test]
    fn only_our_executions_ending_badly_are_named_everything_else_is_a_sweep() {
        let event = |sm: &str, status: &str| {
            json!({"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
                   "detail": {"name": "bg-1-g1", "status": status, "stateMachineArn": sm}})
        };
        assert_eq!(
            Trigger::from_event(&event(SM, "ABORTED"), SM),
            Trigger::Ended {
                execution_name: "bg-1-g1".into(),
                status: "ABORTED".into()
            }
        );
        assert!(matches!(
            Trigger::from_event(&event(SM, "TIMED_OUT"), SM),
            Trigger::Ended { .. }
        ));
        assert_eq!(Trigger::from_event(&event(SM, "SUCCEEDED"), SM), Trigger::Sweep);
        assert_eq!(
            Trigger::from_event(&event("arn:other", "ABORTED"), SM),
            Trigger::Sweep
        );
        assert_eq!(
            Trigger::from_event(&json!({"source": "aws.scheduler"}), SM),
            Trigger::Sweep
        );
        assert_eq!(Trigger::from_event(&json!([1, 2]), SM), Trigger::Sweep);
    }
}
