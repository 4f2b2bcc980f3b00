//! The CloudWatch Logs Insights queries the report runs over an
//! organisation trail's log group, and how their answers are read.
//!
//! Every query is filtered to the session the same way
//! [`super::AuditEvent::in_session_of`] matches it (account, role
//! `AWSReservedSSO_<set>_<16 hex digits>`, session name = user name, case-insensitive);
//! the listed events are matched again after parsing, so the filter only
//! has to narrow, never to decide.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::summary::Counts;
use crate::domain::AccountId;

/// Logs Insights returns at most this many rows per query.
pub const ROW_CAP: u32 = 10_000;

/// A planned listing window holds at most nine tenths of the row cap, so
/// events arriving late (after the per-minute query ran) rarely fill it.
pub const PLANNED_SHARE: (u64, u64) = (9, 10);

/// Escapes text for a Logs Insights regular expression literal (`/…/`).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$/#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `filter` command for the session's events in `account`.
pub fn session_filter(account: &AccountId, permission_set_name: &str, user_name: &str) -> String {
    format!(
        "filter userIdentity.accountId = \"{}\" \
         and userIdentity.sessionContext.sessionIssuer.userName like /^AWSReservedSSO_{}_[0-9a-fA-F]{{16}}$/ \
         and userIdentity.arn like /(?i)\\/{}$/",
        account.as_str(),
        regex_escape(permission_set_name),
        regex_escape(user_name)
    )
}

/// Totals by kind of call: the engine counts, whatever the volume.
pub fn counts_query(filter: &str) -> String {
    format!("{filter} | stats count(*) as n by eventSource, eventName, readOnly, errorCode, eventType")
}

/// Events per minute: plans the listing windows.
pub fn minutes_query(filter: &str) -> String {
    format!("{filter} | stats count(*) as n by bin(1m) as minute")
}

/// The events themselves, whole, oldest first, at most `rows` of them.
pub fn listing_query(filter: &str, rows: u32) -> String {
    format!("fields @timestamp, @message | {filter} | sort @timestamp asc | limit {rows}")
}

fn field<'a>(row: &'a [(String, String)], name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Logs Insights writes booleans as `1`/`0` in `stats` groups, JSON as
/// `true`/`false`: either is read.
fn flag(v: Option<&str>) -> Option<bool> {
    match v? {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The answer to [`counts_query`].
pub fn parse_counts(rows: &[Vec<(String, String)>]) -> Counts {
    let mut counts = Counts::default();
    for row in rows {
        let n = field(row, "n").and_then(|n| n.parse::<f64>().ok()).unwrap_or(0.0) as u64;
        counts.add(
            field(row, "eventSource").unwrap_or_default(),
            field(row, "eventName").unwrap_or_default(),
            flag(field(row, "readOnly")),
            field(row, "errorCode"),
            field(row, "eventType"),
            n,
        );
    }
    counts
}

/// `2026-11-30 09:01:00.000`, the engine's timestamp form (UTC).
pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
        .or_else(|| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

/// The answer to [`minutes_query`]: (minute, events), in time order.
pub fn parse_minutes(rows: &[Vec<(String, String)>]) -> Vec<(DateTime<Utc>, u64)> {
    let mut out: Vec<(DateTime<Utc>, u64)> = rows
        .iter()
        .filter_map(|row| {
            let minute = parse_time(field(row, "minute")?)?;
            let n = field(row, "n")?.parse::<f64>().ok()? as u64;
            Some((minute, n))
        })
        .collect();
    out.sort();
    out
}

/// Listing windows covering `[start, end]` (inclusive, whole seconds,
/// adjacent without overlap) holding about `max_rows` events each by the
/// per-minute counts. A minute holding more than that is one window of its
/// own, which the reader splits further when it comes back full.
pub fn plan_windows(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    minutes: &[(DateTime<Utc>, u64)],
    max_rows: u64,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let second = chrono::Duration::seconds(1);
    let mut windows = Vec::new();
    let mut from = start;
    let mut held = 0u64;
    for (minute, n) in minutes {
        if *minute <= from || *minute > end {
            held += n;
            continue;
        }
        if held + n > max_rows && held > 0 {
            windows.push((from, *minute - second));
            from = *minute;
            held = 0;
        }
        held += n;
        let next = *minute + chrono::Duration::minutes(1);
        if held > max_rows && next <= end {
            // A minute too big on its own: its own window, split later.
            windows.push((from, next - second));
            from = next;
            held = 0;
        }
    }
    windows.push((from, end));
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_filter_escapes_what_it_matches() {
        let account: AccountId = "123456789012".parse().unwrap();
        let f = session_filter(&account, "Break.Glass", "a+b/c@example.com");
        assert_eq!(
            f,
            "filter userIdentity.accountId = \"123456789012\" and userIdentity.sessionContext.sessionIssuer.userName \
             like /^AWSReservedSSO_Break\\.Glass_[0-9a-fA-F]{16}$/ and userIdentity.arn like /(?i)\\/a\\+b\\/c@example\\.com$/"
        );
        assert!(listing_query(&f, ROW_CAP).ends_with("| sort @timestamp asc | limit 10000"));
    }

    #[test]
    fn counts_and_minutes_are_read_from_rows() {
        let row = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let counts = parse_counts(&[
            row(&[
                ("eventSource", "iam.amazonaws.com"),
                ("eventName", "DeleteRole"),
                ("readOnly", "0"),
                ("n", "3"),
            ]),
            row(&[
                ("eventSource", "ec2.amazonaws.com"),
                ("eventName", "DescribeInstances"),
                ("readOnly", "true"),
                ("errorCode", "AccessDenied"),
                ("n", "2"),
            ]),
        ]);
        assert_eq!(
            (counts.total, counts.writes, counts.high_risk, counts.denied),
            (5, 3, 3, 2)
        );
        let minutes = parse_minutes(&[
            row(&[("minute", "2026-11-30 09:02:00.000"), ("n", "5")]),
            row(&[("minute", "2026-11-30 09:01:00.000"), ("n", "7")]),
        ]);
        assert_eq!(
            minutes,
            vec![(t("2026-11-30T09:01:00Z"), 7), (t("2026-11-30T09:02:00Z"), 5)]
        );
    }

    #[test]
    fn windows_hold_at_most_the_planned_rows_and_cover_everything() {
        let start = t("2026-11-30T08:55:00Z");
        let end = t("2026-11-30T11:00:05Z");
        let minutes: Vec<_> = (0..60)
            .map(|i| (t("2026-11-30T09:00:00Z") + chrono::Duration::minutes(i), 400))
            .collect();
        let w = plan_windows(start, end, &minutes, 9_000);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], (start, t("2026-11-30T09:21:59Z")));
        assert_eq!(w[1].0, t("2026-11-30T09:22:00Z"));
        assert_eq!(w[2].1, end);
        for pair in w.windows(2) {
            assert_eq!(pair[0].1 + chrono::Duration::seconds(1), pair[1].0);
        }
        assert_eq!(plan_windows(start, end, &[], 9_000), vec![(start, end)]);
        let busy = [
            (t("2026-11-30T09:05:00Z"), 1),
            (t("2026-11-30T09:30:00Z"), 12_000),
        ];
        assert_eq!(
            plan_windows(start, end, &busy, 9_000),
            vec![
                (start, t("2026-11-30T09:29:59Z")),
                (t("2026-11-30T09:30:00Z"), t("2026-11-30T09:30:59Z")),
                (t("2026-11-30T09:31:00Z"), end)
            ]
        );
    }
}
