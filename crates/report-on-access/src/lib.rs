//! report-on-access: tell security what was done with the broken glass.
//!
//! Reads CloudTrail in the target account for the user's session of the
//! permission set, from just before the grant until the last session opened
//! during it could have expired (never the future), sums it up with the
//! dangerous things first, and delivers it by e-mail and to the Slack thread.
//! One channel failing does not stop the other.

mod config;
mod notify;

use break_glass_core::ErrorType;
use break_glass_core::access::tell_thread;
use break_glass_core::audit::{self, ReportContext, Summary};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{ContractError, Execution, Report};
use break_glass_core::ports::{Alerts, AuditQuery, AuditTrail, Email, Mailer, Slack};
pub use config::Config;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

/// How far before the grant the search starts: clocks differ, and a
/// session opened in the first seconds must not be missed.
const LEAD_IN: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub trail: &'a dyn AuditTrail,
    pub mailer: &'a dyn Mailer,
    pub slack: &'a dyn Slack,
    /// SNS, when `ALERT_TOPIC_ARN` is set.
    pub alerts: Option<&'a dyn Alerts>,
    pub clock: &'a dyn Clock,
}

#[derive(Debug, Error)]
pub enum ReportError {
    #[error(transparent)]
    InvalidInput(#[from] ContractError),
    #[error("the report could not be delivered anywhere: {0}")]
    Undelivered(String),
}

impl ErrorType for ReportError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(e) => e.error_type(),
            Self::Undelivered(_) => "ReportUndelivered",
        }
    }
}

impl From<ReportError> for Diagnostic {
    fn from(e: ReportError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// Takes revoke-access's output, returns it with a `report` section. With an
/// `error` (a state machine `Catch`), tells people what failed instead.
pub async fn handle(input: Value, deps: &Deps<'_>) -> Result<Value, ReportError> {
    if input.get("error").is_some() {
        return notify::failure(input, deps).await;
    }
    let mut execution = Execution::from_value(input)?;
    if execution.report.is_some() {
        return Ok(serde_json::to_value(&execution).unwrap_or_default());
    }
    let grant = execution.grant()?.clone();
    let revoke = execution.revoke()?.clone();
    let request = &execution.request;
    let now = deps.clock.now();
    let window_start = grant.granted_at.min(request.requested_at) - LEAD_IN;
    let window_end = revoke.sessions_valid_until.min(now);

    let mut events = Vec::new();
    let mut problems = Vec::new();
    for region in &deps.config.regions {
        let query = AuditQuery {
            account: request.account_id.clone(),
            region: region.clone(),
            user_name: grant.user_name.clone(),
            start: window_start,
            end: window_end,
        };
        match audit::collect(deps.trail, deps.clock, &query, &grant.permission_set_name).await {
            Ok(found) => {
                tracing::info!(%region, requests = found.requests, kept = found.events.len(), left_out = found.left_out, "CloudTrail searched");
                if found.unreadable > 0 {
                    problems.push(format!("{region}: {} events could not be read", found.unreadable));
                }
                events.extend(found.events);
            }
            Err(error) => {
                tracing::error!(%region, %error, "CloudTrail lookup failed");
                problems.push(format!("{region}: {error}"));
            }
        }
    }
    let summary = Summary::build(events);
    let ctx = ReportContext {
        user_name: grant.user_name.clone(),
        slack_user: request.requester.slack_user_id.to_string(),
        account: request.account_id.to_string(),
        permission_set: grant.permission_set_name.clone(),
        granted_at: grant.granted_at,
        revoked_at: revoke.revoked_at,
        window_start,
        window_end,
        regions: deps.config.regions.clone(),
        problems: problems.clone(),
    };

    let mut to = deps.config.recipients.clone();
    if deps.config.cc_requester {
        match deps.slack.user_email(&request.requester.slack_user_id).await {
            Ok(Some(address)) if !to.contains(&address) => to.push(address),
            Ok(_) => {}
            Err(error) => problems.push(format!("requester's e-mail for the copy: {error}")),
        }
    }
    let mut message_id = None;
    let mut emailed_to = Vec::new();
    if !to.is_empty() {
        let email = Email {
            from: deps.config.sender.clone(),
            to: to.clone(),
            subject: audit::subject(&ctx, &summary),
            text: audit::render_text(&ctx, &summary),
            html: audit::render_html(&ctx, &summary),
        };
        match deps.mailer.send(&email).await {
            Ok(id) => {
                message_id = Some(id);
                emailed_to = to;
            }
            Err(error) => {
                tracing::error!(%error, "report e-mail failed");
                problems.push(format!("e-mail: {error}"));
            }
        }
    }
    let slack_posted = tell_thread(
        deps.slack,
        request,
        &audit::render_slack(&ctx, &summary, message_id.is_some()),
    )
    .await;
    if !slack_posted {
        problems.push("Slack: the summary could not be posted".into());
    }
    tracing::info!(
        execution = %execution.execution_name,
        events = summary.total,
        writes = summary.writes.len(),
        high_risk = summary.high_risk.len(),
        emailed = message_id.is_some(),
        slack_posted,
        "report done"
    );
    if message_id.is_none() && !slack_posted {
        return Err(ReportError::Undelivered(problems.join("; ")));
    }
    execution.report = Some(Report {
        total_events: summary.total,
        write_events: summary.writes.len() as u64,
        failed_events: summary.failed.len() as u64,
        high_risk_events: summary.high_risk.len() as u64,
        window_start,
        window_end,
        regions: deps.config.regions.clone(),
        emailed_to,
        email_message_id: message_id,
        slack_posted,
        problems,
    });
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}
