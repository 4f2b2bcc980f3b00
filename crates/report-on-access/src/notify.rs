//! What the state machine's `Catch` states call: tell the clicker, and for
//! anything that may have left access behind, alert loudly (SNS topic, alert
//! channel). The execution then ends `Failed` whatever happens here.

use break_glass_core::access::tell_thread;
use break_glass_core::contract::Execution;
use serde_json::Value;

use crate::{Deps, ReportError};

/// Grant errors after which grant-access has already told the clicker.
const ANNOUNCED_BY_GRANT: &[&str] = &[
    "IdentityNotFound",
    "RequesterNotAllowed",
    "PermissionSetNotFound",
    "AssignmentFailed",
    "GrantRolledBack",
    "AwsCallFailed",
    "GrantCleanupUnverified",
];

/// Grant errors after which nothing can have been created.
const CLEAN_GRANT_FAILURES: &[&str] = &[
    "IdentityNotFound",
    "RequesterNotAllowed",
    "PermissionSetNotFound",
    "AssignmentFailed",
    "GrantRolledBack",
    "AwsCallFailed",
    "InvalidExecutionInput",
    "DependencyUnavailable",
    "GrantInProgressElsewhere",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub error: String,
    pub cause: String,
}

/// `$.error` as a Catch writes it: `Error`, and `Cause`, which for a Lambda
/// error is itself JSON with `errorMessage`.
pub(crate) fn failure_of(input: &Value) -> Failure {
    let error = input["error"]["Error"]
        .as_str()
        .unwrap_or("States.Unknown")
        .to_string();
    let raw_cause = input["error"]["Cause"].as_str().unwrap_or_default();
    let cause = serde_json::from_str::<Value>(raw_cause)
        .ok()
        .and_then(|c| c["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| raw_cause.to_string());
    Failure { error, cause }
}

pub(crate) async fn failure(input: Value, deps: &Deps<'_>) -> Result<Value, ReportError> {
    let f = failure_of(&input);
    let execution = Execution::from_value(input.clone())?;
    let request = &execution.request;
    let who = format!("<@{}>", request.requester.slack_user_id);
    let what = format!(
        "{} in {}",
        request.permission_set_arn.permission_set_id(),
        request.account_id
    );
    let (thread, alert): (Option<String>, Option<String>) = match (&execution.grant, &execution.revoke) {
        (None, _) if CLEAN_GRANT_FAILURES.contains(&f.error.as_str()) => {
            let thread = (!ANNOUNCED_BY_GRANT.contains(&f.error.as_str())).then(|| {
                format!(
                    "{who} :x: Break glass failed ({}): {}. Nothing was granted.",
                    f.error, f.cause
                )
            });
            (thread, None)
        }
        (None, _) => (
            Some(format!(
                "{who} :rotating_light: Break glass did not complete ({}). An assignment may have been left behind; the platform team has been alerted.",
                f.error
            )),
            Some(format!(
                "Break glass grant for {who} ({what}) did not complete: {}: {}. An assignment may exist; check Identity Center and remove it by hand if so. Execution {}.",
                f.error, f.cause, execution.execution_name
            )),
        ),
        (Some(grant), None) => (
            Some(format!(
                "{who} :rotating_light: Removing {} in {} FAILED; the access may still be in place. The platform team has been alerted.",
                grant.permission_set_name, request.account_id
            )),
            Some(format!(
                "REVOKE FAILED: {} ({who}) may still have {} in {} (expired {}). {}: {}. Remove the assignment by hand. Execution {}.",
                grant.user_name,
                grant.permission_set_name,
                request.account_id,
                grant.expires_at,
                f.error,
                f.cause,
                execution.execution_name
            )),
        ),
        (Some(grant), Some(revoke)) => {
            let text = format!(
                ":warning: Access was revoked at {} (verified: {}), but the activity report for {} failed: {}: {}",
                revoke.revoked_at, revoke.verified, grant.user_name, f.error, f.cause
            );
            (Some(text.clone()), Some(text))
        }
    };
    tracing::error!(execution = %execution.execution_name, error = %f.error, cause = %f.cause, alert = alert.is_some(), "execution failed");
    if let Some(text) = thread {
        tell_thread(deps.slack, request, &text).await;
    }
    if let Some(text) = alert {
        if let Some(channel) = &deps.config.alert_slack_channel
            && let Err(error) = deps
                .slack
                .post_message(channel, None, &format!(":rotating_light: {text}"))
                .await
        {
            tracing::error!(%error, "could not post the alert to Slack");
        }
        if let Some(alerts) = deps.alerts
            && let Err(error) = alerts.publish("break-glass-access alert", &text).await
        {
            tracing::error!(%error, "could not publish the alert to SNS");
        }
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A refusal at grant time (a guest, or someone the policy's rules no
    /// longer cover) created nothing and grant-access said why in the
    /// thread: no alert about access left behind, no second message.
    #[test]
    fn a_requester_refused_at_grant_time_is_neither_alerted_nor_told_twice() {
        assert!(CLEAN_GRANT_FAILURES.contains(&"RequesterNotAllowed"));
        assert!(ANNOUNCED_BY_GRANT.contains(&"RequesterNotAllowed"));
    }

    #[test]
    fn lambda_causes_are_unwrapped() {
        let input = json!({"error": {"Error": "RevokeUnverified", "Cause": "{\"errorType\":\"RevokeUnverified\",\"errorMessage\":\"still listed\"}"}});
        assert_eq!(
            failure_of(&input),
            Failure {
                error: "RevokeUnverified".into(),
                cause: "still listed".into()
            }
        );
        let input = json!({"error": {"Error": "States.Timeout", "Cause": "Task timed out"}});
        assert_eq!(failure_of(&input).cause, "Task timed out");
    }
}
