//! CloudTrail events as the report sees them, and the report itself: which
//! events belong to the break-glass session, what they add up to, and how
//! they read in an e-mail and in Slack.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One management event, reduced to what the report shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// `None` when CloudTrail did not say (console sign-ins, some services).
    pub read_only: Option<bool>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// `sessionContext.sessionIssuer.userName`: `AWSReservedSSO_<set>_<hex>`.
    pub session_issuer: Option<String>,
    /// `userIdentity.arn`.
    pub principal_arn: Option<String>,
    pub event_type: Option<String>,
    /// The main resource acted on, when CloudTrail names one.
    pub resource: Option<String>,
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The request parameters that usually name what was acted on, in the
/// order they are tried when an event lists no `resources`.
const RESOURCE_PARAMETERS: &[&str] = &[
    "roleName",
    "userName",
    "policyArn",
    "groupName",
    "bucketName",
    "key",
    "keyId",
    "name",
    "trailName",
    "detectorId",
    "groupId",
    "networkAclId",
    "dBInstanceIdentifier",
    "tableName",
    "functionName",
    "instanceId",
    "instancesSet",
    "secretId",
    "accountId",
];

impl AuditEvent {
    /// Parses the `CloudTrailEvent` JSON string of a `LookupEvents` answer.
    pub fn from_cloudtrail_json(raw: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(raw).map_err(|e| format!("event is not JSON: {e}"))?;
        let time = text(&v, &["eventTime"]).ok_or("event has no eventTime")?;
        let event_time = DateTime::parse_from_rfc3339(&time)
            .map_err(|e| format!("bad eventTime {time:?}: {e}"))?
            .with_timezone(&Utc);
        let read_only = match v.get("readOnly") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let resource = v
            .get("resources")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| text(r, &["ARN"]).or_else(|| text(r, &["resourceName"])))
            .or_else(|| {
                let params = v.get("requestParameters")?;
                RESOURCE_PARAMETERS.iter().find_map(|k| match params.get(*k)? {
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()).filter(|s| s.len() <= 200),
                })
            });
        Ok(Self {
            event_id: text(&v, &["eventID"]).ok_or("event has no eventID")?,
            event_time,
            event_source: text(&v, &["eventSource"]).unwrap_or_default(),
            event_name: text(&v, &["eventName"]).unwrap_or_default(),
            aws_region: text(&v, &["awsRegion"]).unwrap_or_default(),
            source_ip: text(&v, &["sourceIPAddress"]),
            user_agent: text(&v, &["userAgent"]),
            read_only,
            error_code: text(&v, &["errorCode"]),
            error_message: text(&v, &["errorMessage"]),
            session_issuer: text(
                &v,
                &["userIdentity", "sessionContext", "sessionIssuer", "userName"],
            ),
            principal_arn: text(&v, &["userIdentity", "arn"]),
            event_type: text(&v, &["eventType"]),
            resource,
        })
    }

    /// Whether the event was made in `user_name`'s session of the
    /// permission set: role `AWSReservedSSO_<set>_<hex>`, session `<user>`.
    pub fn in_session_of(&self, permission_set_name: &str, user_name: &str) -> bool {
        let role_prefix = format!("AWSReservedSSO_{permission_set_name}_");
        let issuer_ok = self
            .session_issuer
            .as_deref()
            .or_else(|| self.principal_arn.as_deref().and_then(|a| a.split('/').nth(1)))
            .is_some_and(|issuer| issuer.starts_with(&role_prefix));
        let session_ok = self
            .principal_arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .is_some_and(|session| session.eq_ignore_ascii_case(user_name));
        issuer_ok && session_ok
    }

    pub fn is_write(&self) -> bool {
        self.read_only == Some(false)
    }

    pub fn failed(&self) -> bool {
        self.error_code.is_some()
    }

    pub fn service(&self) -> &str {
        self.event_source
            .strip_suffix(".amazonaws.com")
            .unwrap_or(&self.event_source)
    }
}

/// What makes an event "high risk": the service, the event names (exact, or
/// a prefix ending in `*`), and the words the report uses.
pub const HIGH_RISK: &[(&str, &[&str], &str)] = &[
    (
        "iam",
        &[
            "Create*", "Delete*", "Put*", "Attach*", "Detach*", "Update*", "Add*", "Remove*", "Set*",
            "Upload*", "Change*",
        ],
        "IAM change",
    ),
    (
        "sso",
        &[
            "Create*",
            "Delete*",
            "Put*",
            "Attach*",
            "Detach*",
            "Update*",
            "Provision*",
        ],
        "Identity Center change",
    ),
    (
        "identitystore",
        &["Create*", "Delete*", "Update*"],
        "Identity Store change",
    ),
    (
        "sts",
        &["AssumeRole", "GetFederationToken"],
        "new credentials from this session",
    ),
    (
        "kms",
        &[
            "ScheduleKeyDeletion",
            "DisableKey",
            "PutKeyPolicy",
            "DisableKeyRotation",
        ],
        "KMS key deletion or weakening",
    ),
    (
        "cloudtrail",
        &[
            "StopLogging",
            "DeleteTrail",
            "UpdateTrail",
            "PutEventSelectors",
            "PutInsightSelectors",
        ],
        "CloudTrail tampering",
    ),
    (
        "guardduty",
        &[
            "DeleteDetector",
            "UpdateDetector",
            "DisassociateFromMasterAccount",
            "DisassociateFromAdministratorAccount",
            "DeleteMembers",
            "CreateFilter",
            "UpdateFilter",
        ],
        "GuardDuty tampering",
    ),
    (
        "config",
        &[
            "StopConfigurationRecorder",
            "DeleteConfigurationRecorder",
            "DeleteDeliveryChannel",
            "DeleteConfigRule",
        ],
        "AWS Config tampering",
    ),
    (
        "securityhub",
        &["DisableSecurityHub", "BatchDisableStandards", "DeleteInsight"],
        "Security Hub tampering",
    ),
    (
        "ec2",
        &[
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
            "ModifySecurityGroupRules",
            "CreateNetworkAclEntry",
            "ReplaceNetworkAclEntry",
            "DeleteNetworkAcl*",
            "DeleteFlowLogs",
        ],
        "network opened",
    ),
    (
        "s3",
        &[
            "PutBucketPolicy",
            "DeleteBucketPolicy",
            "PutBucketAcl",
            "PutObjectAcl",
            "PutBucketPublicAccessBlock",
            "DeleteBucketPublicAccessBlock",
            "PutAccountPublicAccessBlock",
            "DeleteAccountPublicAccessBlock",
        ],
        "S3 access policy change",
    ),
    (
        "s3",
        &[
            "DeleteBucket",
            "DeleteObject",
            "DeleteObjects",
            "PutBucketLifecycle*",
            "DeleteBucketReplication",
        ],
        "data deletion",
    ),
    ("rds", &["Delete*"], "data deletion"),
    (
        "dynamodb",
        &["DeleteTable", "DeleteBackup", "DeleteItem", "BatchWriteItem"],
        "data deletion",
    ),
    (
        "ec2",
        &["DeleteSnapshot", "DeleteVolume", "TerminateInstances"],
        "data deletion",
    ),
    ("backup", &["Delete*"], "data deletion"),
    (
        "secretsmanager",
        &["GetSecretValue", "DeleteSecret", "PutResourcePolicy"],
        "secret read or change",
    ),
    ("organizations", &["*"], "Organizations change"),
];

/// The label of the first [`HIGH_RISK`] rule the event matches.
pub fn high_risk_label(event: &AuditEvent) -> Option<&'static str> {
    if event.read_only == Some(true) && event.event_name != "GetSecretValue" {
        return None;
    }
    HIGH_RISK.iter().find_map(|(service, names, label)| {
        let matches = event.service() == *service
            && names.iter().any(|n| match n.strip_suffix('*') {
                Some(prefix) => event.event_name.starts_with(prefix),
                None => event.event_name == *n,
            });
        matches.then_some(*label)
    })
}

/// What the session did, summed up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub total: u64,
    /// (service, event name) → count.
    pub by_event: BTreeMap<(String, String), u64>,
    /// Write events, in time order.
    pub writes: Vec<AuditEvent>,
    pub failed: Vec<AuditEvent>,
    pub high_risk: Vec<(&'static str, AuditEvent)>,
    pub sign_ins: Vec<AuditEvent>,
}

impl Summary {
    /// One pass over the events; memory grows with writes, failures and
    /// distinct event names, not with reads.
    pub fn build<I: IntoIterator<Item = AuditEvent>>(events: I) -> Self {
        let mut s = Summary::default();
        for event in events {
            s.total += 1;
            *s.by_event
                .entry((event.service().to_string(), event.event_name.clone()))
                .or_default() += 1;
            if event.event_type.as_deref() == Some("AwsConsoleSignIn") || event.event_name == "ConsoleLogin" {
                s.sign_ins.push(event.clone());
            }
            if let Some(label) = high_risk_label(&event) {
                s.high_risk.push((label, event.clone()));
            }
            if event.failed() {
                s.failed.push(event.clone());
            }
            if event.is_write() {
                s.writes.push(event);
            }
        }
        s.writes
            .sort_by(|a, b| a.event_time.cmp(&b.event_time).then(a.event_id.cmp(&b.event_id)));
        s.failed.sort_by_key(|e| e.event_time);
        s.high_risk.sort_by_key(|(_, e)| e.event_time);
        s.sign_ins.sort_by_key(|e| e.event_time);
        s
    }
}

/// CloudTrail allows 2 `LookupEvents` requests per second per account and
/// region; we pace to that and back off harder when told to slow down.
pub const LOOKUP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

const THROTTLED: crate::retry::Backoff = crate::retry::Backoff {
    first: std::time::Duration::from_secs(1),
    max: std::time::Duration::from_secs(10),
    attempts: 10,
    budget: std::time::Duration::from_secs(90),
    jitter: true,
};

/// How a lookup went, beyond its events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collected {
    pub events: Vec<AuditEvent>,
    pub requests: u64,
    pub unreadable: usize,
    /// Events of the user outside this session (other permission sets, or
    /// outside the window) that were left out.
    pub left_out: usize,
}

/// Every event of the query's user, to the last page, keeping only those of
/// `permission_set_name`'s session inside the window.
pub async fn collect(
    trail: &dyn crate::ports::AuditTrail,
    clock: &dyn crate::clock::Clock,
    query: &crate::ports::AuditQuery,
    permission_set_name: &str,
) -> Result<Collected, crate::ports::PortError> {
    let mut out = Collected::default();
    let mut token: Option<String> = None;
    loop {
        if out.requests > 0 {
            clock.sleep(LOOKUP_INTERVAL).await;
        }
        let page = crate::retry::with_retries(clock, THROTTLED, || {
            out.requests += 1;
            trail.lookup_page(query, token.as_deref())
        })
        .await?;
        out.unreadable += page.unreadable;
        for event in page.events {
            let inside = event.event_time >= query.start && event.event_time <= query.end;
            if inside && event.in_session_of(permission_set_name, &query.user_name) {
                out.events.push(event);
            } else {
                out.left_out += 1;
            }
        }
        match page.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(out),
        }
    }
}

/// Who, what, when: the frame of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportContext {
    pub user_name: String,
    pub slack_user: String,
    pub account: String,
    pub permission_set: String,
    pub granted_at: DateTime<Utc>,
    pub revoked_at: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub regions: Vec<String>,
    /// Regions or lookups that failed: the report says it is incomplete.
    pub problems: Vec<String>,
}

pub const CAVEAT: &str = "This report is a best-effort reading of CloudTrail management events. CloudTrail can \
deliver late or not at all, data events (such as S3 object reads) are not included, and a session's activity \
is matched by role and session name. Treat it as a starting point: if anything looks alarming, confirm who did \
it, and check for yourself that nothing was missed.";

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn subject(ctx: &ReportContext, s: &Summary) -> String {
    format!(
        "Break glass report: {} as {} in {}: {} write event{}{}",
        ctx.user_name,
        ctx.permission_set,
        ctx.account,
        s.writes.len(),
        if s.writes.len() == 1 { "" } else { "s" },
        if s.high_risk.is_empty() {
            String::new()
        } else {
            format!(", {} high risk", s.high_risk.len())
        }
    )
}

fn line(e: &AuditEvent) -> String {
    format!(
        "{}  {}  {}:{}  {}  from {}  ({}){}",
        when(&e.event_time),
        e.aws_region,
        e.service(),
        e.event_name,
        e.resource.as_deref().unwrap_or("-"),
        e.source_ip.as_deref().unwrap_or("?"),
        e.user_agent.as_deref().unwrap_or("?"),
        e.error_code
            .as_deref()
            .map(|c| format!("  FAILED: {c}"))
            .unwrap_or_default()
    )
}

pub fn render_text(ctx: &ReportContext, s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Break glass report\n");
    let _ = writeln!(out, "Who:      {} (Slack {})", ctx.user_name, ctx.slack_user);
    let _ = writeln!(out, "Access:   {} in account {}", ctx.permission_set, ctx.account);
    let _ = writeln!(out, "Granted:  {}", when(&ctx.granted_at));
    let _ = writeln!(out, "Revoked:  {}", when(&ctx.revoked_at));
    let _ = writeln!(
        out,
        "Searched: {} to {} in {}",
        when(&ctx.window_start),
        when(&ctx.window_end),
        ctx.regions.join(", ")
    );
    let _ = writeln!(
        out,
        "\nTotals: {} events, {} writes, {} failed, {} high risk",
        s.total,
        s.writes.len(),
        s.failed.len(),
        s.high_risk.len()
    );
    if !ctx.problems.is_empty() {
        let _ = writeln!(out, "\nINCOMPLETE: some lookups failed:");
        for p in &ctx.problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    let _ = writeln!(out, "\nHigh risk ({}):", s.high_risk.len());
    if s.high_risk.is_empty() {
        let _ = writeln!(out, "  none found");
    }
    for (label, e) in &s.high_risk {
        let _ = writeln!(out, "  [{label}] {}", line(e));
    }
    let _ = writeln!(out, "\nConsole sign-ins ({}):", s.sign_ins.len());
    for e in &s.sign_ins {
        let _ = writeln!(out, "  {}", line(e));
    }
    let _ = writeln!(out, "\nWrite events in time order ({}):", s.writes.len());
    for e in &s.writes {
        let _ = writeln!(out, "  {}", line(e));
    }
    let _ = writeln!(out, "\nDenied or failed calls ({}):", s.failed.len());
    for e in &s.failed {
        let _ = writeln!(out, "  {}", line(e));
    }
    let _ = writeln!(out, "\nBy service and event:");
    for ((service, name), n) in &s.by_event {
        let _ = writeln!(out, "  {n:>6}  {service}:{name}");
    }
    let _ = writeln!(out, "\n{CAVEAT}");
    out
}

/// Escapes text for HTML element content and attribute values. Every event
/// field is attacker-controlled (a user agent is whatever the caller says).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_rows(out: &mut String, events: &[(&str, &AuditEvent)]) {
    out.push_str("<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr><th>Time (UTC)</th><th>Region</th><th>Event</th><th>Resource</th><th>Source IP</th><th>User agent</th><th>Error</th><th>Why</th></tr>");
    for (why, e) in events {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}:{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&when(&e.event_time)),
            escape_html(&e.aws_region),
            escape_html(e.service()),
            escape_html(&e.event_name),
            escape_html(e.resource.as_deref().unwrap_or("-")),
            escape_html(e.source_ip.as_deref().unwrap_or("?")),
            escape_html(e.user_agent.as_deref().unwrap_or("?")),
            escape_html(e.error_code.as_deref().unwrap_or("")),
            escape_html(why),
        );
    }
    out.push_str("</table>");
}

pub fn render_html(ctx: &ReportContext, s: &Summary) -> String {
    let mut out = String::from("<!DOCTYPE html><html><body style=\"font-family: sans-serif\">");
    let _ = write!(
        out,
        "<h1>Break glass report</h1><p><b>{}</b> (Slack {}) had <b>{}</b> in account <b>{}</b> from {} to {}.</p>\
         <p>Searched {} to {} in {}.</p><p>{} events, <b>{} writes</b>, {} failed, <b>{} high risk</b>.</p>",
        escape_html(&ctx.user_name),
        escape_html(&ctx.slack_user),
        escape_html(&ctx.permission_set),
        escape_html(&ctx.account),
        escape_html(&when(&ctx.granted_at)),
        escape_html(&when(&ctx.revoked_at)),
        escape_html(&when(&ctx.window_start)),
        escape_html(&when(&ctx.window_end)),
        escape_html(&ctx.regions.join(", ")),
        s.total,
        s.writes.len(),
        s.failed.len(),
        s.high_risk.len()
    );
    if !ctx.problems.is_empty() {
        out.push_str("<p style=\"color:#b00\"><b>Incomplete:</b> some lookups failed:</p><ul>");
        for p in &ctx.problems {
            let _ = write!(out, "<li>{}</li>", escape_html(p));
        }
        out.push_str("</ul>");
    }
    let _ = write!(out, "<h2>High risk ({})</h2>", s.high_risk.len());
    let high: Vec<(&str, &AuditEvent)> = s.high_risk.iter().map(|(l, e)| (*l, e)).collect();
    html_rows(&mut out, &high);
    let _ = write!(out, "<h2>Console sign-ins ({})</h2>", s.sign_ins.len());
    html_rows(
        &mut out,
        &s.sign_ins.iter().map(|e| ("sign-in", e)).collect::<Vec<_>>(),
    );
    let _ = write!(out, "<h2>Write events ({})</h2>", s.writes.len());
    html_rows(
        &mut out,
        &s.writes.iter().map(|e| ("write", e)).collect::<Vec<_>>(),
    );
    let _ = write!(out, "<h2>Denied or failed calls ({})</h2>", s.failed.len());
    html_rows(
        &mut out,
        &s.failed.iter().map(|e| ("failed", e)).collect::<Vec<_>>(),
    );
    out.push_str("<h2>By service and event</h2><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">");
    for ((service, name), n) in &s.by_event {
        let _ = write!(
            out,
            "<tr><td>{n}</td><td>{}:{}</td></tr>",
            escape_html(service),
            escape_html(name)
        );
    }
    let _ = write!(out, "</table><p><i>{}</i></p></body></html>", escape_html(CAVEAT));
    out
}

/// The few lines that go to the Slack thread.
pub fn render_slack(ctx: &ReportContext, s: &Summary, emailed: bool) -> String {
    let mut out = format!(
        ":clipboard: Activity report for {} in {}: {} events, {} writes, {} failed, {} high risk.",
        ctx.user_name,
        ctx.account,
        s.total,
        s.writes.len(),
        s.failed.len(),
        s.high_risk.len()
    );
    for (label, e) in s.high_risk.iter().take(5) {
        let _ = write!(
            out,
            "\n• {label}: `{}:{}` {}",
            e.service(),
            e.event_name,
            slack_safe(e.resource.as_deref().unwrap_or(""))
        );
    }
    if s.high_risk.len() > 5 {
        let _ = write!(out, "\n• …and {} more", s.high_risk.len() - 5);
    }
    if !ctx.problems.is_empty() {
        let _ = write!(
            out,
            "\n:warning: Incomplete: {}",
            slack_safe(&ctx.problems.join("; "))
        );
    }
    if emailed {
        out.push_str("\nThe full report was e-mailed.");
    }
    out.push_str("\n_Best effort from CloudTrail: verify anything alarming._");
    out
}

/// Slack mrkdwn control characters in attacker-controlled text.
fn slack_safe(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of the AWS CLI documentation's `lookup-events` example,
    /// made an Identity Center session.
    pub(crate) fn event(name: &str, source: &str, read_only: bool) -> String {
        serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:alice@example.com",
                "arn": "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/alice@example.com",
                "accountId": "123456789012",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef", "accountId": "123456789012", "userName": "AWSReservedSSO_BreakGlassAdmin_0123456789abcdef"},
                    "attributes": {"creationDate": "2026-11-30T09:01:00Z", "mfaAuthenticated": "false"}
                }
            },
            "eventTime": "2026-11-30T09:10:00Z",
            "eventSource": source,
            "eventName": name,
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "203.0.113.7",
            "userAgent": "aws-cli/2.15.0",
            "requestParameters": {"roleName": "<script>alert(1)</script>"},
            "responseElements": null,
            "requestID": "r-1",
            "eventID": format!("id-{name}"),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": "123456789012"
        })
        .to_string()
    }

    #[test]
    fn cloudtrail_events_parse_and_match_their_session() {
        let e = AuditEvent::from_cloudtrail_json(&event("DeleteRole", "iam.amazonaws.com", false)).unwrap();
        assert_eq!(e.service(), "iam");
        assert!(e.is_write());
        assert_eq!(e.resource.as_deref(), Some("<script>alert(1)</script>"));
        assert!(e.in_session_of("BreakGlassAdmin", "alice@example.com"));
        assert!(e.in_session_of("BreakGlassAdmin", "ALICE@example.com"));
        assert!(!e.in_session_of("ReadOnly", "alice@example.com"));
        assert!(!e.in_session_of("BreakGlassAdmin", "bob@example.com"));
        assert!(
            !e.in_session_of("BreakGlass", "alice@example.com"),
            "prefix must end at the underscore"
        );
        assert!(AuditEvent::from_cloudtrail_json("{").is_err());
        assert!(AuditEvent::from_cloudtrail_json("{}").is_err());
    }

    #[test]
    fn the_high_risk_table_drives_the_labels() {
        let label = |name: &str, source: &str, ro: bool| {
            high_risk_label(&AuditEvent::from_cloudtrail_json(&event(name, source, ro)).unwrap())
        };
        assert_eq!(
            label("CreateAccessKey", "iam.amazonaws.com", false),
            Some("IAM change")
        );
        assert_eq!(label("ListRoles", "iam.amazonaws.com", true), None);
        assert_eq!(
            label("StopLogging", "cloudtrail.amazonaws.com", false),
            Some("CloudTrail tampering")
        );
        assert_eq!(
            label("ScheduleKeyDeletion", "kms.amazonaws.com", false),
            Some("KMS key deletion or weakening")
        );
        assert_eq!(
            label("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", false),
            Some("network opened")
        );
        assert_eq!(
            label("PutBucketPolicy", "s3.amazonaws.com", false),
            Some("S3 access policy change")
        );
        assert_eq!(
            label("DeleteDBCluster", "rds.amazonaws.com", false),
            Some("data deletion")
        );
        assert_eq!(
            label("LeaveOrganization", "organizations.amazonaws.com", false),
            Some("Organizations change")
        );
        assert_eq!(
            label("GetSecretValue", "secretsmanager.amazonaws.com", true),
            Some("secret read or change")
        );
        assert_eq!(label("RunInstances", "ec2.amazonaws.com", false), None);
    }

    #[test]
    fn summaries_count_sort_and_escape() {
        let events: Vec<AuditEvent> = [
            ("DescribeInstances", "ec2.amazonaws.com", true),
            ("DeleteRole", "iam.amazonaws.com", false),
            ("RunInstances", "ec2.amazonaws.com", false),
        ]
        .iter()
        .map(|(n, s, r)| AuditEvent::from_cloudtrail_json(&event(n, s, *r)).unwrap())
        .collect();
        let s = Summary::build(events);
        assert_eq!((s.total, s.writes.len(), s.high_risk.len()), (3, 2, 1));
        let ctx = ReportContext {
            user_name: "alice@example.com".into(),
            slack_user: "U1".into(),
            account: "123456789012".into(),
            permission_set: "BreakGlassAdmin".into(),
            granted_at: "2026-11-30T09:00:00Z".parse().unwrap(),
            revoked_at: "2026-11-30T10:00:00Z".parse().unwrap(),
            window_start: "2026-11-30T08:55:00Z".parse().unwrap(),
            window_end: "2026-11-30T11:00:00Z".parse().unwrap(),
            regions: vec!["eu-west-1".into()],
            problems: vec![],
        };
        let html = render_html(&ctx, &s);
        assert!(!html.contains("<script>"), "event fields must be escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        let text = render_text(&ctx, &s);
        assert!(text.contains("[IAM change]"));
        assert!(text.contains("best-effort"));
        assert_eq!(
            subject(&ctx, &s),
            "Break glass report: alice@example.com as BreakGlassAdmin in 123456789012: 2 write events, 1 high risk"
        );
        assert!(!render_slack(&ctx, &s, true).contains("<script>"));
    }
}
