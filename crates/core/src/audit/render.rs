//! The report, rendered: plain text, an HTML e-mail that reads at a glance
//! in Gmail and Outlook (tables and inline styles only, no scripts, no
//! remote images), a CSV of every event, and Slack Block Kit.
//!
//! Every event field is attacker-controlled (a user agent is whatever the
//! caller says, a resource name whatever they chose), so every one is
//! escaped for where it goes: HTML, Slack mrkdwn, CSV (including formula
//! injection), URLs.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Coverage;
use super::summary::{Counts, EventView, Summary};

/// Who, what, when, and what was read: the frame of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportContext {
    pub user_name: String,
    pub slack_user: String,
    pub account: String,
    pub permission_set: String,
    /// Why they broke glass, when the request said.
    pub reason: Option<String>,
    /// The incident link, when given.
    pub incident: Option<String>,
    /// Who pressed End access now, when somebody did.
    pub ended_early_by: Option<String>,
    pub granted_at: DateTime<Utc>,
    pub revoked_at: DateTime<Utc>,
    /// Sessions opened before the revoke stay valid until then.
    pub sessions_valid_until: DateTime<Utc>,
    /// revoke-access ended them (a verified Deny): `sessions_valid_until`
    /// is when, and the window ends there instead of after the session
    /// duration.
    pub sessions_ended: bool,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// How the events were read, in words.
    pub source: String,
    /// What each region or log group covered.
    pub coverage: Vec<Coverage>,
    /// Anything else that went wrong (the requester's copy, say).
    pub problems: Vec<String>,
    pub execution_name: String,
    /// The execution's Step Functions console page, when known.
    pub execution_url: Option<String>,
}

impl ReportContext {
    /// What the reader must know about coverage: one line per source that
    /// was not read whole.
    pub fn coverage_statements(&self) -> Vec<String> {
        self.coverage.iter().filter_map(Coverage::statement).collect()
    }

    pub fn incomplete(&self) -> bool {
        self.coverage.iter().any(|c| !c.complete())
    }
}

pub const CAVEAT: &str = "This report is a best-effort reading of CloudTrail. CloudTrail can deliver late or not \
at all, LookupEvents never shows data events (such as S3 object reads), and a session's activity is matched by \
role and session name. Treat it as a starting point: if anything looks alarming, confirm who did it, and check \
for yourself that nothing was missed.";

/// Rows shown per section in the e-mail; every event is in the CSV.
pub const SECTION_ROWS: usize = 100;
/// Rows per section in the plain-text part.
pub const TEXT_ROWS: usize = 200;

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", super::thousands(n), if n == 1 { one } else { many })
}

/// The one line that says what happened: "2 high-risk actions, 1 denied ·
/// 33 changes, 123 events".
pub fn verdict(c: &Counts) -> String {
    if c.total == 0 {
        return "No activity recorded".to_string();
    }
    let mut risks = Vec::new();
    if c.high_risk > 0 {
        risks.push(plural(c.high_risk, "high-risk action", "high-risk actions"));
    }
    if c.denied > 0 {
        risks.push(format!("{} denied", super::thousands(c.denied)));
    }
    if c.failed > c.denied {
        risks.push(format!("{} failed", super::thousands(c.failed - c.denied)));
    }
    let volume = format!(
        "{}, {}",
        plural(c.writes, "change", "changes"),
        plural(c.total, "event", "events")
    );
    match (risks.is_empty(), c.writes) {
        (true, 0) => format!("Read-only: {}, no changes", plural(c.total, "event", "events")),
        (true, _) => format!("No high-risk actions · {volume}"),
        (false, _) => format!("{} · {volume}", risks.join(", ")),
    }
}

fn verdict_line(ctx: &ReportContext, s: &Summary) -> String {
    let mut v = verdict(s.counts());
    if ctx.incomplete() {
        v.push_str(" (incomplete)");
    }
    v
}

/// Control characters out: the subject is a header.
pub fn subject(ctx: &ReportContext, s: &Summary) -> String {
    let why = match &ctx.reason {
        // Enough of the reason to recognise the incident in an inbox.
        Some(reason) => format!(" ({})", clip(reason, 60)),
        None => String::new(),
    };
    format!(
        "Break glass report: {} as {} in {}{why}: {}",
        ctx.user_name,
        ctx.permission_set,
        ctx.account,
        verdict_line(ctx, s)
    )
    .chars()
    .map(|c| if c.is_control() { ' ' } else { c })
    .collect()
}

/// Which end of the sessions applied, and so how far the search went.
fn sessions_line(ctx: &ReportContext) -> String {
    if ctx.sessions_ended {
        format!(
            "ended at {} by the revoke (a Deny on earlier credentials), so the search ends there",
            when(&ctx.sessions_valid_until)
        )
    } else {
        format!(
            "valid until {} (the permission set's session length; they were not ended)",
            when(&ctx.sessions_valid_until)
        )
    }
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn hm(t: &DateTime<Utc>) -> String {
    t.format("%H:%M").to_string()
}

/// `09:00 to 10:00 UTC, 2026-11-30`, or both dates when they differ.
fn span(from: &DateTime<Utc>, to: &DateTime<Utc>) -> String {
    if from.date_naive() == to.date_naive() {
        format!("{} to {} UTC, {}", hm(from), hm(to), from.format("%Y-%m-%d"))
    } else {
        format!(
            "{} to {}",
            from.format("%Y-%m-%d %H:%M"),
            to.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

// --------------------------------------------------------------------- text

fn line(e: &EventView<'_>) -> String {
    format!(
        "{}  {}  {}:{}{}  from {} ({}){}",
        when(&e.time),
        e.region,
        e.service(),
        e.event_name,
        e.resource.map(|r| format!("  {r}")).unwrap_or_default(),
        e.source_ip.unwrap_or("?"),
        clip(e.user_agent.unwrap_or("?"), 80),
        e.error_code.map(|c| format!("  FAILED: {c}")).unwrap_or_default()
    )
}

fn text_section<'a>(
    out: &mut String,
    title: &str,
    total: u64,
    rows: impl Iterator<Item = (String, EventView<'a>)>,
) {
    let _ = writeln!(out, "\n{title} ({total}):");
    let mut shown = 0u64;
    for (tag, e) in rows.take(TEXT_ROWS) {
        let _ = writeln!(out, "  {tag}{}", line(&e));
        shown += 1;
    }
    if shown == 0 {
        let _ = writeln!(out, "  none");
    } else if total > shown {
        let _ = writeln!(out, "  …and {} more in the attached CSV", total - shown);
    }
}

pub fn render_text(ctx: &ReportContext, s: &Summary) -> String {
    let c = s.counts();
    let mut out = String::new();
    let _ = writeln!(out, "Break glass report: {}\n", verdict_line(ctx, s));
    let _ = writeln!(out, "Who:      {} (Slack {})", ctx.user_name, ctx.slack_user);
    let _ = writeln!(out, "What:     {} in account {}", ctx.permission_set, ctx.account);
    if let Some(reason) = &ctx.reason {
        let _ = writeln!(out, "Why:      {reason}");
    }
    if let Some(incident) = &ctx.incident {
        let _ = writeln!(out, "Incident: {incident}");
    }
    if let Some(by) = &ctx.ended_early_by {
        let _ = writeln!(out, "Ended:    early, by Slack user {by}");
    }
    let _ = writeln!(out, "Granted:  {}", when(&ctx.granted_at));
    let _ = writeln!(out, "Revoked:  {}", when(&ctx.revoked_at));
    let _ = writeln!(out, "Sessions: {}", sessions_line(ctx));
    let _ = writeln!(
        out,
        "Searched: {} to {}, {}",
        when(&ctx.window_start),
        when(&ctx.window_end),
        ctx.source
    );
    let _ = writeln!(
        out,
        "Execution: {}",
        ctx.execution_url.as_deref().unwrap_or(&ctx.execution_name)
    );
    let _ = writeln!(
        out,
        "\nTotals: {} events, {} changes, {} high risk, {} denied, {} failed, {} sign-ins",
        c.total, c.writes, c.high_risk, c.denied, c.failed, c.sign_ins
    );
    let gaps: Vec<String> = ctx
        .coverage_statements()
        .into_iter()
        .chain(ctx.problems.clone())
        .collect();
    if !gaps.is_empty() {
        let _ = writeln!(out, "\nINCOMPLETE:");
        for p in gaps {
            let _ = writeln!(out, "  - {p}");
        }
    }
    let timeline = s.timeline();
    let _ = writeln!(
        out,
        "\nActivity ({}-minute buckets: events, changes, high risk):",
        timeline.minutes
    );
    if timeline.buckets.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for b in &timeline.buckets {
        if b.total > 0 {
            let _ = writeln!(
                out,
                "  {}  {:>6} {:>6} {:>4}",
                hm(&b.start),
                b.total,
                b.writes,
                b.high_risk
            );
        }
    }
    text_section(
        &mut out,
        "High risk",
        c.high_risk,
        s.high_risk().map(|(l, e)| (format!("[{l}] "), e)),
    );
    text_section(
        &mut out,
        "Changes, in time order",
        c.writes,
        s.writes().map(|e| (String::new(), e)),
    );
    text_section(
        &mut out,
        "Denied or failed",
        c.failed,
        s.failed().map(|e| (String::new(), e)),
    );
    text_section(
        &mut out,
        "Console sign-ins",
        c.sign_ins,
        s.sign_ins().map(|e| (String::new(), e)),
    );
    let _ = writeln!(out, "\nBy service and event:");
    if c.by_event.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for ((service, name), n) in &c.by_event {
        let _ = writeln!(out, "  {n:>7}  {service}:{name}");
    }
    if s.listed() > 0 {
        let _ = writeln!(out, "\nAll {} events listed are attached as CSV.", s.listed());
    }
    let _ = writeln!(out, "\n{CAVEAT}");
    out
}

// --------------------------------------------------------------------- HTML

/// Escapes text for HTML element content and attribute values.
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

/// Percent-encodes everything but unreserved characters.
fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn console_host(region: &str) -> Option<String> {
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return None;
    }
    Some(if region.starts_with("cn-") {
        format!("{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        format!("{region}.console.amazonaws-us-gov.com")
    } else {
        format!("{region}.console.aws.amazon.com")
    })
}

/// The event's page in the CloudTrail console (of the account it was
/// recorded in: the reader signs in there).
pub fn event_console_url(region: &str, event_id: &str) -> Option<String> {
    let host = console_host(region)?;
    Some(format!(
        "https://{host}/cloudtrailv2/home?region={region}#/events/{}",
        url_part(event_id)
    ))
}

/// The execution's page in the Step Functions console, from the state
/// machine's ARN (`arn:<partition>:states:<region>:<account>:stateMachine:<name>`).
pub fn execution_console_url(state_machine_arn: &str, execution_name: &str) -> Option<String> {
    let parts: Vec<&str> = state_machine_arn.split(':').collect();
    let [_, partition, "states", region, account, "stateMachine", name] = parts.as_slice() else {
        return None;
    };
    let host = console_host(region)?;
    let execution_arn =
        format!("arn:{partition}:states:{region}:{account}:execution:{name}:{execution_name}");
    Some(format!(
        "https://{host}/states/home?region={region}#/v2/executions/details/{}",
        url_part(&execution_arn)
    ))
}

const RED: &str = "#b91c1c";
const AMBER: &str = "#b45309";
const GREEN: &str = "#15803d";
const BLUE: &str = "#2563eb";
const GREY: &str = "#9ca3af";
const MUTED: &str = "#6b7280";
const CARD: &str = "background:#ffffff;border:1px solid #e5e7eb;padding:16px 20px;";
const CELL: &str = "padding:4px 6px;border-bottom:1px solid #e5e7eb;vertical-align:top;font-size:13px;";
const HEAD: &str =
    "padding:4px 6px;border-bottom:2px solid #d1d5db;text-align:left;font-size:12px;color:#6b7280;";

fn verdict_colour(c: &Counts) -> &'static str {
    if c.high_risk > 0 {
        RED
    } else if c.failed > 0 {
        AMBER
    } else {
        GREEN
    }
}

fn card_open(out: &mut String, id: &str, title: &str, count: Option<u64>) {
    let _ = write!(
        out,
        "<tr><td style=\"height:12px;line-height:12px;font-size:1px;\">&nbsp;</td></tr>\
         <tr><td id=\"{id}\" style=\"{CARD}\"><h2 style=\"margin:0 0 10px;font-size:17px;color:#111827;\">{}{}</h2>",
        escape_html(title),
        count
            .map(|n| format!(" <span style=\"color:{MUTED};font-weight:normal;\">({n})</span>"))
            .unwrap_or_default()
    );
}

fn card_close(out: &mut String) {
    out.push_str("</td></tr>");
}

fn none(out: &mut String) {
    let _ = write!(
        out,
        "<p style=\"margin:0;color:{MUTED};font-size:14px;\">none</p>"
    );
}

fn event_table<'a>(
    out: &mut String,
    total: u64,
    rows: impl Iterator<Item = (Option<&'static str>, EventView<'a>)>,
    with_label: bool,
) {
    let mut shown = 0u64;
    for (label, e) in rows.take(SECTION_ROWS) {
        if shown == 0 {
            let _ = write!(
                out,
                "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;\">\
                 <tr><th style=\"{HEAD}\">Time (UTC)</th>{}<th style=\"{HEAD}\">Event</th><th style=\"{HEAD}\">Resource</th>\
                 <th style=\"{HEAD}\">Region</th><th style=\"{HEAD}\">From</th><th style=\"{HEAD}\">Error</th></tr>",
                if with_label {
                    format!("<th style=\"{HEAD}\">Why</th>")
                } else {
                    String::new()
                }
            );
        }
        shown += 1;
        let time = escape_html(&e.time.format("%m-%d %H:%M:%S").to_string());
        let time = match event_console_url(e.region, e.event_id) {
            Some(url) => format!(
                "<a href=\"{}\" style=\"color:{BLUE};\">{time}</a>",
                escape_html(&url)
            ),
            None => time,
        };
        let _ = write!(
            out,
            "<tr><td style=\"{CELL}white-space:nowrap;\">{time}</td>{}<td style=\"{CELL}\"><b>{}</b><br><span style=\"color:{MUTED};font-size:12px;\">{}</span></td>\
             <td style=\"{CELL}word-break:break-all;\">{}</td><td style=\"{CELL}white-space:nowrap;\">{}</td>\
             <td style=\"{CELL}\">{}<br><span style=\"color:{MUTED};font-size:11px;\">{}</span></td><td style=\"{CELL}color:{RED};\">{}</td></tr>",
            if with_label {
                format!(
                    "<td style=\"{CELL}color:{RED};font-weight:bold;\">{}</td>",
                    escape_html(label.unwrap_or(""))
                )
            } else {
                String::new()
            },
            escape_html(e.event_name),
            escape_html(e.service()),
            escape_html(&clip(e.resource.unwrap_or(""), 120)),
            escape_html(e.region),
            escape_html(e.source_ip.unwrap_or("")),
            escape_html(&clip(e.user_agent.unwrap_or(""), 60)),
            escape_html(e.error_code.unwrap_or("")),
        );
    }
    if shown == 0 {
        none(out);
        return;
    }
    out.push_str("</table>");
    if total > shown {
        let _ = write!(
            out,
            "<p style=\"margin:8px 0 0;color:{MUTED};font-size:13px;\">…and {} more in the attached CSV.</p>",
            total - shown
        );
    }
}

fn tile(out: &mut String, n: u64, label: &str, colour: &str) {
    let _ = write!(
        out,
        "<td align=\"center\" style=\"padding:8px;border:1px solid #e5e7eb;\"><div style=\"font-size:20px;font-weight:bold;color:{colour};\">{}</div>\
         <div style=\"font-size:12px;color:{MUTED};\">{label}</div></td>",
        super::thousands(n)
    );
}

fn header(out: &mut String, ctx: &ReportContext, s: &Summary) {
    let c = s.counts();
    let colour = verdict_colour(c);
    let _ = write!(
        out,
        "<tr><td id=\"header\" style=\"{CARD}border-top:6px solid {colour};\">\
         <div style=\"font-size:12px;color:{MUTED};letter-spacing:1px;\">BREAK GLASS REPORT</div>\
         <div id=\"verdict\" style=\"font-size:22px;font-weight:bold;margin:6px 0 14px;color:{colour};\">{}</div>\
         <table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"font-size:14px;\">",
        escape_html(&verdict_line(ctx, s))
    );
    let mut row = |label: &str, value: String| {
        let _ = write!(
            out,
            "<tr><td style=\"color:{MUTED};padding:3px 14px 3px 0;vertical-align:top;\">{label}</td><td style=\"padding:3px 0;\">{value}</td></tr>"
        );
    };
    row(
        "Who",
        format!(
            "<b>{}</b> <span style=\"color:{MUTED};\">(Slack {})</span>",
            escape_html(&ctx.user_name),
            escape_html(&ctx.slack_user)
        ),
    );
    row("What", format!("<b>{}</b>", escape_html(&ctx.permission_set)));
    row("Where", format!("account <b>{}</b>", escape_html(&ctx.account)));
    if let Some(reason) = &ctx.reason {
        row("Why", escape_html(reason));
    }
    if let Some(incident) = &ctx.incident {
        row(
            "Incident",
            format!("<a href=\"{0}\">{0}</a>", escape_html(incident)),
        );
    }
    if let Some(by) = &ctx.ended_early_by {
        row("Ended", format!("early, by Slack user {}", escape_html(by)));
    }
    row(
        "When",
        format!(
            "{} <span style=\"color:{MUTED};\">(sessions {})</span>",
            escape_html(&span(&ctx.granted_at, &ctx.revoked_at)),
            escape_html(&sessions_line(ctx))
        ),
    );
    row(
        "Searched",
        format!(
            "{} · {}",
            escape_html(&span(&ctx.window_start, &ctx.window_end)),
            escape_html(&ctx.source)
        ),
    );
    row(
        "Execution",
        match &ctx.execution_url {
            Some(url) => format!(
                "<a href=\"{}\" style=\"color:{BLUE};\">{}</a>",
                escape_html(url),
                escape_html(&ctx.execution_name)
            ),
            None => escape_html(&ctx.execution_name),
        },
    );
    out.push_str(
        "</table><table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"margin-top:14px;border-collapse:collapse;\"><tr>",
    );
    tile(out, c.total, "events", "#111827");
    tile(out, c.writes, "changes", BLUE);
    tile(
        out,
        c.high_risk,
        "high risk",
        if c.high_risk > 0 { RED } else { GREEN },
    );
    tile(out, c.denied, "denied", if c.denied > 0 { AMBER } else { GREEN });
    tile(out, c.sign_ins, "sign-ins", "#111827");
    out.push_str("</tr></table></td></tr>");
}

fn segment(out: &mut String, width: f64, colour: &str) {
    if width > 0.0 {
        let _ = write!(
            out,
            "<td width=\"{width:.1}%\" bgcolor=\"{colour}\" style=\"background:{colour};height:14px;line-height:14px;font-size:1px;\">&nbsp;</td>"
        );
    }
}

fn timeline(out: &mut String, s: &Summary) {
    let t = s.timeline();
    card_open(out, "timeline", "Activity timeline", None);
    if t.buckets.is_empty() {
        none(out);
        card_close(out);
        return;
    }
    let _ = write!(
        out,
        "<p style=\"margin:0 0 8px;font-size:12px;color:{MUTED};\">Events per {} minutes: \
         <span style=\"color:{RED};\">&#9632; high risk</span> &nbsp;<span style=\"color:{BLUE};\">&#9632; changes</span> \
         &nbsp;<span style=\"color:{GREY};\">&#9632; reads</span></p>\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\">",
        t.minutes
    );
    let max = t.buckets.iter().map(|b| b.total).max().unwrap_or(1).max(1) as f64;
    for b in &t.buckets {
        let _ = write!(
            out,
            "<tr><td width=\"52\" style=\"font-size:12px;color:{MUTED};padding:1px 6px 1px 0;white-space:nowrap;\">{}</td><td style=\"padding:1px 0;\">",
            hm(&b.start)
        );
        if b.total > 0 {
            let whole = (b.total as f64 / max * 100.0).max(1.0);
            let _ = write!(
                out,
                "<table role=\"presentation\" width=\"{whole:.1}%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr>"
            );
            let n = b.total as f64;
            segment(out, b.high_risk as f64 / n * 100.0, RED);
            segment(out, b.writes.saturating_sub(b.high_risk) as f64 / n * 100.0, BLUE);
            segment(
                out,
                b.total.saturating_sub(b.writes.max(b.high_risk)) as f64 / n * 100.0,
                GREY,
            );
            out.push_str("</tr></table>");
        } else {
            out.push_str("&nbsp;");
        }
        let mut label = super::thousands(b.total);
        if b.high_risk > 0 {
            let _ = write!(
                label,
                " · <b style=\"color:{RED};\">{} high risk</b>",
                b.high_risk
            );
        }
        if b.denied > 0 {
            let _ = write!(
                label,
                " · <span style=\"color:{AMBER};\">{} denied</span>",
                b.denied
            );
        }
        let _ = write!(
            out,
            "</td><td width=\"150\" style=\"font-size:12px;padding:1px 0 1px 8px;white-space:nowrap;\">{label}</td></tr>"
        );
    }
    out.push_str("</table>");
    card_close(out);
}

fn counts_card(out: &mut String, c: &Counts) {
    card_open(out, "counts", "Counts", Some(c.total));
    if c.total == 0 {
        none(out);
        card_close(out);
        return;
    }
    let mut events: Vec<(&(String, String), &u64)> = c.by_event.iter().collect();
    events.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut services: Vec<(&String, &u64)> = c.by_service.iter().collect();
    services.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let _ = write!(
        out,
        "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;\">\
         <tr><th style=\"{HEAD}\">By service</th><th style=\"{HEAD}\"></th></tr>"
    );
    for (service, n) in services {
        let _ = write!(
            out,
            "<tr><td style=\"{CELL}\">{}</td><td style=\"{CELL}text-align:right;\">{}</td></tr>",
            escape_html(service),
            super::thousands(*n)
        );
    }
    let _ = write!(
        out,
        "<tr><th style=\"{HEAD}\">By event (top 40)</th><th style=\"{HEAD}\"></th></tr>"
    );
    for ((service, name), n) in events.iter().take(40) {
        let _ = write!(
            out,
            "<tr><td style=\"{CELL}\">{}:{}</td><td style=\"{CELL}text-align:right;\">{}</td></tr>",
            escape_html(service),
            escape_html(name),
            super::thousands(**n)
        );
    }
    if !c.by_error.is_empty() {
        let _ = write!(
            out,
            "<tr><th style=\"{HEAD}\">By error</th><th style=\"{HEAD}\"></th></tr>"
        );
        for (code, n) in &c.by_error {
            let _ = write!(
                out,
                "<tr><td style=\"{CELL}color:{RED};\">{}</td><td style=\"{CELL}text-align:right;\">{}</td></tr>",
                escape_html(code),
                super::thousands(*n)
            );
        }
    }
    out.push_str("</table>");
    card_close(out);
}

pub fn render_html(ctx: &ReportContext, s: &Summary) -> String {
    let c = s.counts();
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title></head><body style=\"margin:0;padding:0;background:#f3f4f6;\">\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"background:#f3f4f6;\"><tr><td align=\"center\" style=\"padding:16px 8px;\">\
         <table role=\"presentation\" width=\"720\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"width:100%;max-width:720px;font-family:Arial,Helvetica,sans-serif;color:#111827;text-align:left;\">",
        escape_html(&subject(ctx, s))
    );
    header(&mut out, ctx, s);
    let gaps: Vec<String> = ctx
        .coverage_statements()
        .into_iter()
        .chain(ctx.problems.clone())
        .collect();
    if !gaps.is_empty() {
        let _ = write!(
            out,
            "<tr><td style=\"height:12px;line-height:12px;font-size:1px;\">&nbsp;</td></tr>\
             <tr><td id=\"incomplete\" style=\"background:#fef2f2;border:1px solid #fecaca;padding:12px 20px;font-size:14px;color:{RED};\">\
             <b>Incomplete.</b> Not everything could be read or delivered:<ul style=\"margin:6px 0 0;padding-left:20px;\">"
        );
        for g in gaps {
            let _ = write!(out, "<li>{}</li>", escape_html(&g));
        }
        out.push_str("</ul></td></tr>");
    }
    timeline(&mut out, s);
    card_open(&mut out, "high-risk", "High risk", Some(c.high_risk));
    event_table(
        &mut out,
        c.high_risk,
        s.high_risk().map(|(l, e)| (Some(l), e)),
        true,
    );
    card_close(&mut out);
    card_open(&mut out, "changes", "Changes", Some(c.writes));
    event_table(&mut out, c.writes, s.writes().map(|e| (e.high_risk(), e)), false);
    card_close(&mut out);
    card_open(&mut out, "denied", "Denied or failed", Some(c.failed));
    event_table(&mut out, c.failed, s.failed().map(|e| (None, e)), false);
    card_close(&mut out);
    card_open(&mut out, "sign-ins", "Console sign-ins", Some(c.sign_ins));
    event_table(&mut out, c.sign_ins, s.sign_ins().map(|e| (None, e)), false);
    card_close(&mut out);
    counts_card(&mut out, c);
    let _ = write!(
        out,
        "<tr><td id=\"footer\" style=\"padding:14px 4px;font-size:12px;color:{MUTED};\">{}<p style=\"margin:8px 0 0;\"><i>{}</i></p></td></tr>\
         </table></td></tr></table></body></html>",
        if s.listed() > 0 {
            format!(
                "All {} events listed are attached as CSV; each time above opens the event in the CloudTrail console.",
                super::thousands(s.listed() as u64)
            )
        } else {
            String::new()
        },
        escape_html(CAVEAT)
    );
    out
}

// ---------------------------------------------------------------------- CSV

pub const CSV_HEADER: &str = "event_time,region,event_source,event_name,read_only,resource,error_code,error_message,high_risk,source_ip,user_agent,event_id";

/// One CSV cell: quoted when it must be, and neutralised when a
/// spreadsheet would take it for a formula.
fn csv_cell(out: &mut String, v: &str) {
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || v.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in v.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// Every listed event, in time order, one row each.
pub fn render_csv(s: &Summary) -> String {
    let mut out = String::with_capacity(s.listed() * 220 + CSV_HEADER.len() + 2);
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for e in s.events() {
        let _ = write!(out, "{},", e.time.format("%Y-%m-%dT%H:%M:%SZ"));
        for v in [e.region, e.event_source, e.event_name] {
            csv_cell(&mut out, v);
            out.push(',');
        }
        out.push_str(match e.read_only {
            Some(true) => "true,",
            Some(false) => "false,",
            None => ",",
        });
        for v in [
            e.resource.unwrap_or(""),
            e.error_code.unwrap_or(""),
            e.error_message.unwrap_or(""),
            e.high_risk().unwrap_or(""),
            e.source_ip.unwrap_or(""),
            e.user_agent.unwrap_or(""),
        ] {
            csv_cell(&mut out, v);
            out.push(',');
        }
        csv_cell(&mut out, e.event_id);
        out.push_str("\r\n");
    }
    out
}

// -------------------------------------------------------------------- Slack

/// Slack mrkdwn control characters in attacker-controlled text.
pub fn slack_safe(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// The thread's summary: the notification text (also the fallback where
/// blocks are not shown) and the Block Kit blocks, with the e-mail's
/// verdict line.
pub fn render_slack(ctx: &ReportContext, s: &Summary, emailed: bool) -> (String, Value) {
    let c = s.counts();
    let verdict = verdict_line(ctx, s);
    let text = format!(
        ":clipboard: Activity report for {} in {}: {}.",
        slack_safe(&ctx.user_name),
        slack_safe(&ctx.account),
        slack_safe(&verdict)
    );
    let icon = if c.high_risk > 0 {
        ":red_circle:"
    } else if c.failed > 0 {
        ":large_orange_circle:"
    } else {
        ":large_green_circle:"
    };
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!(
            ":clipboard: *Activity report* for {} as {} in {}",
            slack_safe(&ctx.user_name), slack_safe(&ctx.permission_set), slack_safe(&ctx.account)
        )}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{}*", slack_safe(&verdict))}}),
    ];
    let mut context = Vec::new();
    if let Some(reason) = &ctx.reason {
        context.push(format!("*Why:* {}", slack_safe(&clip(reason, 300))));
    }
    if let Some(incident) = &ctx.incident {
        context.push(format!("*Incident:* {}", slack_safe(incident)));
    }
    if let Some(by) = &ctx.ended_early_by {
        context.push(format!("*Ended early* by <@{}>", slack_safe(by)));
    }
    if !context.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context.join("  ")}]}));
    }
    if c.high_risk > 0 {
        let mut lines = String::new();
        for (label, e) in s.high_risk().take(5) {
            let _ = writeln!(
                lines,
                "• {} {label}: `{}:{}` {}",
                hm(&e.time),
                slack_safe(e.service()),
                slack_safe(e.event_name),
                slack_safe(&clip(e.resource.unwrap_or(""), 80))
            );
        }
        if c.high_risk > 5 {
            let _ = writeln!(lines, "• …and {} more", c.high_risk - 5);
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": lines.trim_end()}}));
    }
    let gaps: Vec<String> = ctx
        .coverage_statements()
        .into_iter()
        .chain(ctx.problems.clone())
        .collect();
    if !gaps.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(
            &format!(":warning: *Incomplete*: {}", slack_safe(&gaps.join("; "))), 2900
        )}}));
    }
    let mut context = format!(
        "Searched {} · {}",
        span(&ctx.window_start, &ctx.window_end),
        slack_safe(&ctx.source)
    );
    if emailed {
        context.push_str(" · The full report was e-mailed.");
    }
    context.push_str(" · _Best effort from CloudTrail: verify anything alarming._");
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    (text, Value::Array(blocks))
}

#[cfg(test)]
mod tests {
    use super::super::AuditEvent;
    use super::super::tests::event;
    use super::*;

    fn ctx() -> ReportContext {
        ReportContext {
            user_name: "alice@example.com".into(),
            slack_user: "U1".into(),
            account: "123456789012".into(),
            permission_set: "BreakGlassAdmin".into(),
            reason: None,
            incident: None,
            ended_early_by: None,
            granted_at: "2026-11-30T09:00:00Z".parse().unwrap(),
            revoked_at: "2026-11-30T10:00:00Z".parse().unwrap(),
            sessions_valid_until: "2026-11-30T11:00:00Z".parse().unwrap(),
            sessions_ended: false,
            window_start: "2026-11-30T08:55:00Z".parse().unwrap(),
            window_end: "2026-11-30T11:00:00Z".parse().unwrap(),
            source: "CloudTrail LookupEvents in eu-west-1".into(),
            coverage: vec![],
            problems: vec![],
            execution_name: "bg-1".into(),
            execution_url: execution_console_url(
                "arn:aws:states:eu-west-1:111111111111:stateMachine:break-glass-access",
                "bg-1",
            ),
        }
    }

    #[test]
    fn the_report_says_whether_the_sessions_were_ended_or_ran_out() {
        let ran_out = ctx();
        let text = render_text(&ran_out, &summary());
        assert!(
            text.contains(
                "Sessions: valid until 2026-11-30 11:00:00 UTC (the permission set's session length"
            ),
            "{text}"
        );
        let ended = ReportContext {
            sessions_ended: true,
            sessions_valid_until: "2026-11-30T10:00:01Z".parse().unwrap(),
            window_end: "2026-11-30T10:00:01Z".parse().unwrap(),
            ..ctx()
        };
        let text = render_text(&ended, &summary());
        assert!(
            text.contains("Sessions: ended at 2026-11-30 10:00:01 UTC by the revoke"),
            "{text}"
        );
        assert!(
            render_html(&ended, &summary())
                .contains("(sessions ended at 2026-11-30 10:00:01 UTC by the revoke")
        );
    }

    fn summary() -> Summary {
        let mut events: Vec<AuditEvent> = [
            ("DescribeInstances", "ec2.amazonaws.com", true),
            ("DeleteRole", "iam.amazonaws.com", false),
            ("RunInstances", "ec2.amazonaws.com", false),
        ]
        .iter()
        .map(|(n, s, r)| AuditEvent::from_cloudtrail_json(&event(n, s, *r)).unwrap())
        .collect();
        events[0].user_agent = Some("=HYPERLINK(\"http://x\")".into());
        Summary::build(events)
    }

    #[test]
    fn verdicts_read_at_a_glance() {
        let mut c = Counts::default();
        assert_eq!(verdict(&c), "No activity recorded");
        c.add(
            "ec2.amazonaws.com",
            "DescribeInstances",
            Some(true),
            None,
            None,
            120,
        );
        assert_eq!(verdict(&c), "Read-only: 120 events, no changes");
        c.add("ec2.amazonaws.com", "RebootInstances", Some(false), None, None, 3);
        assert_eq!(verdict(&c), "No high-risk actions · 3 changes, 123 events");
        c.add("iam.amazonaws.com", "CreateAccessKey", Some(false), None, None, 2);
        c.add(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            Some(false),
            Some("AccessDenied"),
            None,
            1,
        );
        assert_eq!(
            verdict(&c),
            "3 high-risk actions, 1 denied · 6 changes, 126 events"
        );
    }

    #[test]
    fn the_html_escapes_links_and_says_none() {
        let s = summary();
        let mut ctx = ctx();
        ctx.reason = Some("<b>prod down</b>".into());
        let html = render_html(&ctx, &s);
        assert!(!html.contains("<script>"), "event fields must be escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;prod down&lt;/b&gt;"));
        assert!(html.contains("id=\"verdict\""));
        assert!(html.contains("1 high-risk action · 2 changes, 3 events"));
        assert!(html.contains("https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/id-DeleteRole"));
        assert!(html.contains(
            "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn%3Aaws%3Astates%3Aeu-west-1%3A111111111111%3Aexecution%3Abreak-glass-access%3Abg-1"
        ));
        // Denied and sign-ins are empty: they say so.
        let denied = &html[html.find("id=\"denied\"").unwrap()..];
        assert!(denied[..denied.find("</td></tr>").unwrap()].contains(">none<"));
        assert!(!html.contains("<script") && !html.contains("javascript:"));
        assert!(
            !render_html(&self::ctx(), &s).contains("Why</td>"),
            "no reason, no row"
        );
    }

    #[test]
    fn text_slack_and_subject_agree() {
        let s = summary();
        let text = render_text(&ctx(), &s);
        assert!(text.contains("[IAM change]"));
        assert!(text.contains("Denied or failed (0):\n  none"));
        assert!(text.contains("best-effort"));
        assert_eq!(
            subject(&ctx(), &s),
            "Break glass report: alice@example.com as BreakGlassAdmin in 123456789012: 1 high-risk action · 2 changes, 3 events"
        );
        let (fallback, blocks) = render_slack(&ctx(), &s, true);
        assert_eq!(
            fallback,
            ":clipboard: Activity report for alice@example.com in 123456789012: 1 high-risk action · 2 changes, 3 events."
        );
        let all = blocks.to_string();
        assert!(all.contains("*1 high-risk action · 2 changes, 3 events*"));
        assert!(all.contains("IAM change"));
        assert!(!all.contains("<script>"));
        assert!(all.contains("The full report was e-mailed."));
    }

    #[test]
    fn the_csv_has_every_event_and_defuses_formulas() {
        let csv = render_csv(&summary());
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], CSV_HEADER);
        assert!(csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{csv}");
        assert!(csv.contains(",IAM change,"));
    }

    #[test]
    fn links_are_only_made_from_sane_parts() {
        assert_eq!(event_console_url("eu-west-1\"><x", "1"), None);
        assert_eq!(
            event_console_url("cn-north-1", "a/b").as_deref(),
            Some("https://cn-north-1.console.amazonaws.cn/cloudtrailv2/home?region=cn-north-1#/events/a%2Fb")
        );
        assert_eq!(execution_console_url("not-an-arn", "x"), None);
    }
}
