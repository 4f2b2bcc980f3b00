//! report-on-access: tell security what was done with the broken glass.
//!
//! Reads CloudTrail for the user's session of the permission set, from just
//! before the grant until the last session opened during it could have
//! expired (never the future): with `LookupEvents`, every region at once,
//! each at CloudTrail's rate; or with Logs Insights over an organisation
//! trail. Reading stops within a time budget, and a report cut short says
//! exactly what it covered instead of failing. It is summed up with the
//! dangerous things first and delivered by e-mail (every event attached as
//! CSV) and to the Slack thread; one channel failing does not stop the other.

mod config;
mod notify;

use std::sync::Mutex;

use break_glass_core::ErrorType;
use break_glass_core::audit::{self, Budget, ReportContext, Session, Summary};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{ContractError, Execution, Report};
use break_glass_core::ports::{Alerts, Attachment, AuditTrail, Email, LogsInsights, Mailer, Slack};
use break_glass_core::retry::Deadline;
pub use config::{Config, INSIGHTS_CONCURRENCY, READ_BUDGET, ReportSource};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

/// How far before the grant the search starts: clocks differ, and a
/// session opened in the first seconds must not be missed.
const LEAD_IN: chrono::Duration = chrono::Duration::minutes(5);

/// The attachment's limit: SES takes messages up to 40 MB, and base64 makes
/// 24 MB about 32 MB. A CSV over it is sent gzipped (CloudTrail's columns
/// compress about tenfold: a million events fit); only beyond that is it
/// cut, and the report says so.
pub const ATTACHMENT_LIMIT: usize = 24 * 1024 * 1024;

#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    /// CloudTrail `LookupEvents` (`REPORT_SOURCE=lookup-events`).
    pub trail: &'a dyn AuditTrail,
    /// Logs Insights over the trail's log group (`logs-insights`).
    pub insights: Option<&'a dyn LogsInsights>,
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

/// Reads the session's events from the configured source into a summary,
/// within the budget; says what each source covered.
pub async fn read(
    deps: &Deps<'_>,
    session: &Session,
    deadline: Deadline,
) -> (Summary, Vec<audit::Coverage>, String) {
    let config = deps.config;
    let summary = Mutex::new(Summary::default());
    let (coverage, source) = match (&config.source, deps.insights) {
        (ReportSource::LogsInsights(group), Some(engine)) => {
            let budget = Budget {
                deadline,
                pace: config.lookup_interval,
                concurrency: INSIGHTS_CONCURRENCY,
                rows_per_query: config.insights_rows,
            };
            let c = audit::read_logs_insights(engine, deps.clock, session, group, budget, &summary).await;
            (
                vec![c],
                format!(
                    "CloudWatch Logs Insights on log group {} (every region)",
                    group.name
                ),
            )
        }
        (ReportSource::LogsInsights(_), None) | (ReportSource::LookupEvents, _) => {
            let budget = Budget {
                deadline,
                pace: config.lookup_interval,
                // Each region has its own limit: all of them at once.
                concurrency: config.regions.len(),
                rows_per_query: config.insights_rows,
            };
            let c =
                audit::read_lookup_events(deps.trail, deps.clock, session, &config.regions, budget, &summary)
                    .await;
            let regions = config.regions.join(", ");
            let source = match (&config.audit_role_name, &config.own_account) {
                (Some(role), _) => format!(
                    "CloudTrail LookupEvents in {regions} of account {} (through role {role})",
                    session.account
                ),
                // Without an audit role the function's own account is the
                // one searched: say which, when it is not the target.
                (None, Some(own)) if *own != session.account => format!(
                    "CloudTrail LookupEvents in {regions} of account {own}, this function's own: not account {}, \
                     where access was granted (set AUDIT_ROLE_NAME to search there)",
                    session.account
                ),
                (None, _) => format!(
                    "CloudTrail LookupEvents in {regions} of account {}",
                    session.account
                ),
            };
            (c, source)
        }
    };
    for c in &coverage {
        tracing::info!(scope = %c.scope, events = c.events, requests = c.requests, left_out = c.left_out,
            complete = c.complete(), "CloudTrail read");
    }
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.finish();
    (summary, coverage, source)
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 8), flate2::Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}

/// The CSV of every listed event: as it is, gzipped when it is over
/// [`ATTACHMENT_LIMIT`], cut at the last whole row under it when even that
/// is too big; and, when cut, what it holds.
pub fn csv_attachment(summary: &Summary, name: &str) -> (Attachment, Option<String>) {
    csv_attachment_within(summary, name, ATTACHMENT_LIMIT)
}

fn csv_attachment_within(summary: &Summary, name: &str, limit: usize) -> (Attachment, Option<String>) {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let filename = format!("break-glass-events-{safe}.csv");
    let mut csv = audit::render_csv(summary);
    if csv.len() <= limit {
        let attachment = Attachment {
            filename,
            content_type: "text/csv".into(),
            data: csv.into_bytes(),
        };
        return (attachment, None);
    }
    let mut note = None;
    loop {
        match gzip(csv.as_bytes()) {
            Ok(zipped) if zipped.len() <= limit => {
                let attachment = Attachment {
                    filename: format!("{filename}.gz"),
                    content_type: "application/gzip".into(),
                    data: zipped,
                };
                return (attachment, note);
            }
            Ok(zipped) => {
                // Keep the share of rows that should fit, with a margin.
                let keep = (csv.len() as f64 * limit as f64 / zipped.len() as f64 * 0.9) as usize;
                let cut = csv[..keep.min(csv.len())].rfind("\r\n").map_or(0, |i| i + 2);
                csv.truncate(cut);
            }
            Err(error) => {
                tracing::error!(%error, "could not compress the CSV; sending its beginning");
                let cut = csv[..limit].rfind("\r\n").map_or(0, |i| i + 2);
                csv.truncate(cut);
                let rows = csv.matches("\r\n").count().saturating_sub(1);
                let attachment = Attachment {
                    filename,
                    content_type: "text/csv".into(),
                    data: csv.into_bytes(),
                };
                let note = format!(
                    "the CSV attachment holds the first {rows} of {} events (the e-mail size limit)",
                    summary.listed()
                );
                return (attachment, Some(note));
            }
        }
        let rows = csv.matches("\r\n").count().saturating_sub(1);
        note = Some(format!(
            "the CSV attachment holds the first {rows} of {} events (the e-mail size limit)",
            summary.listed()
        ));
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
    let deadline = Deadline::after(deps.clock, deps.config.read_budget);
    let window_start = grant.granted_at.min(request.requested_at) - LEAD_IN;
    let window_end = revoke.sessions_valid_until.min(now);
    let session = Session {
        account: request.account_id.clone(),
        permission_set_name: grant.permission_set_name.clone(),
        user_name: grant.user_name.clone(),
        start: window_start,
        end: window_end,
    };
    let (summary, coverage, source) = read(deps, &session, deadline).await;
    let mut problems: Vec<String> = Vec::new();
    let mut ctx = ReportContext {
        user_name: grant.user_name.clone(),
        slack_user: request.requester.slack_user_id.to_string(),
        account: request.account_id.to_string(),
        permission_set: grant.permission_set_name.clone(),
        reason: request.reason.clone(),
        incident: request.incident.clone(),
        ended_early_by: execution.hold.as_ref().and_then(|h| h.ended_early_by.clone()),
        granted_at: grant.granted_at,
        revoked_at: revoke.revoked_at,
        sessions_valid_until: revoke.sessions_valid_until,
        sessions_ended: revoke.sessions_ended,
        window_start,
        window_end,
        source,
        coverage,
        problems: Vec::new(),
        execution_name: execution.execution_name.clone(),
        execution_url: deps
            .config
            .state_machine_arn
            .as_deref()
            .and_then(|arn| audit::render::execution_console_url(arn, &execution.execution_name)),
    };

    let mut to = deps.config.recipients.clone();
    if deps.config.cc_requester {
        match deps.slack.user_email(&request.requester.slack_user_id).await {
            Ok(Some(address)) if !to.contains(&address) => to.push(address),
            Ok(_) => {}
            Err(error) => problems.push(format!("requester's e-mail for the copy: {error}")),
        }
    }
    let (csv, csv_note) = csv_attachment(&summary, &execution.execution_name);
    problems.extend(csv_note);
    ctx.problems = problems.clone();
    let mut message_id = None;
    let mut emailed_to = Vec::new();
    if !to.is_empty() {
        let email = Email {
            from: deps.config.sender.clone(),
            to: to.clone(),
            subject: audit::subject(&ctx, &summary),
            text: audit::render_text(&ctx, &summary),
            html: audit::render_html(&ctx, &summary),
            attachments: if summary.listed() > 0 {
                vec![csv]
            } else {
                Vec::new()
            },
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
    ctx.problems = problems.clone();
    let (text, blocks) = audit::render_slack(&ctx, &summary, message_id.is_some());
    let slack_posted = match deps
        .slack
        .post_blocks(
            &request.slack.channel_id,
            Some(&request.slack.thread_ts),
            &text,
            &blocks,
        )
        .await
    {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "could not post the summary to the Slack thread");
            problems.push("Slack: the summary could not be posted".into());
            false
        }
    };
    let counts = summary.counts();
    tracing::info!(
        execution = %execution.execution_name,
        events = counts.total,
        listed = summary.listed(),
        writes = counts.writes,
        high_risk = counts.high_risk,
        complete = !ctx.incomplete(),
        emailed = message_id.is_some(),
        slack_posted,
        "report done"
    );
    if message_id.is_none() && !slack_posted {
        return Err(ReportError::Undelivered(problems.join("; ")));
    }
    let mut all_problems = ctx.coverage_statements();
    all_problems.extend(problems);
    execution.report = Some(Report {
        total_events: counts.total,
        write_events: counts.writes,
        failed_events: counts.failed,
        high_risk_events: counts.high_risk,
        window_start,
        window_end,
        regions: match &deps.config.source {
            ReportSource::LogsInsights(_) if deps.insights.is_some() => vec!["*".into()],
            _ => deps.config.regions.clone(),
        },
        emailed_to,
        email_message_id: message_id,
        slack_posted,
        problems: all_problems,
    });
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Read as _;

    use break_glass_core::audit::AuditEvent;

    use super::*;

    fn summary(n: usize) -> Summary {
        Summary::build((0..n).map(|i| {
            let raw = serde_json::json!({"eventID": format!("e-{i:05}"), "eventTime": "2026-11-30T09:10:00Z",
                "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "readOnly": true,
                "userAgent": "aws-cli/2.22.0 md/awscrt#0.23.4 ua/2.0 os/linux#6.1.0"});
            AuditEvent::from_cloudtrail_json(&raw.to_string()).unwrap()
        }))
    }

    #[test]
    fn a_big_csv_is_gzipped_and_only_then_cut() {
        let s = summary(400);
        let plain = audit::render_csv(&s);
        let (small, note) = csv_attachment_within(&s, "bg/1", plain.len());
        assert_eq!(
            (small.filename.as_str(), small.content_type.as_str(), note),
            ("break-glass-events-bg-1.csv", "text/csv", None)
        );
        let (zipped, note) = csv_attachment_within(&s, "bg-1", plain.len() / 2);
        assert_eq!(zipped.filename, "break-glass-events-bg-1.csv.gz");
        assert_eq!(note, None);
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&zipped.data[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
        let (cut, note) = csv_attachment_within(&s, "bg-1", 1_000);
        assert!(cut.data.len() <= 1_000);
        let note = note.unwrap();
        assert!(
            note.starts_with("the CSV attachment holds the first ")
                && note.ends_with(" of 400 events (the e-mail size limit)"),
            "{note}"
        );
    }
}
