use std::time::Duration;

use break_glass_core::audit::{LOOKUP_INTERVAL, LogGroup, insights};
use break_glass_core::config::{self, ConfigError, Env, SlackSettings};
use break_glass_core::domain::AccountId;

/// Where the report reads CloudTrail (`REPORT_SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportSource {
    /// `lookup-events` (the default): works in every account, management
    /// events only, 2 calls per second per region.
    LookupEvents,
    /// `logs-insights`: an organisation trail's log group
    /// (`CLOUDTRAIL_LOG_GROUP`), every region and data events included.
    LogsInsights(LogGroup),
}

/// How long the report reads: the Lambda's timeout is 900 s, and rendering,
/// the e-mail and Slack need well under the 3 minutes left. A report cut
/// short says what it covered rather than failing, so the state machine
/// never starts it over.
pub const READ_BUDGET: Duration = Duration::from_secs(720);

/// Logs Insights listing queries run at once per report: each answer can
/// be 10,000 events (20 MB), and the account's query concurrency is shared.
pub const INSIGHTS_CONCURRENCY: usize = 2;

/// report-on-access's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: ReportSource,
    /// Regions whose CloudTrail is searched with `LookupEvents`.
    pub regions: Vec<String>,
    /// For the link to the execution's console page.
    pub state_machine_arn: Option<String>,
    /// How long reading may take ([`READ_BUDGET`]).
    pub read_budget: Duration,
    /// One `LookupEvents` call per region per this ([`LOOKUP_INTERVAL`]).
    pub lookup_interval: Duration,
    /// Rows per Logs Insights query ([`insights::ROW_CAP`]).
    pub insights_rows: u32,
    /// Assumed in the target account to read its CloudTrail; `None`: the
    /// function's own credentials.
    pub audit_role_name: Option<String>,
    /// The account the function's own credentials are in (STS
    /// `GetCallerIdentity` at cold start, not an environment variable):
    /// without an audit role, that is the account `LookupEvents` searches,
    /// and the report says so when it is not the target account.
    pub own_account: Option<AccountId>,
    pub sender: String,
    pub recipients: Vec<String>,
    pub cc_requester: bool,
    pub slack: SlackSettings,
    /// Where failed revokes and incomplete grants are shouted about, besides
    /// the request's own thread. Both optional; the state machine also ends
    /// `Failed`, which the CloudWatch alarm watches.
    pub alert_slack_channel: Option<String>,
    pub alert_topic_arn: Option<String>,
}

fn email(var: &'static str, value: &str) -> Result<String, ConfigError> {
    let ok = value
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !value.contains(char::is_whitespace);
    if ok {
        Ok(value.to_string())
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: format!("{value:?} is not an e-mail address"),
        })
    }
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let regions = match config::optional(env, "CLOUDTRAIL_REGIONS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect(),
            None => {
                // The function's own region, plus us-east-1 where global
                // services (IAM, STS, Organizations) record their events.
                let own = config::optional(env, "AWS_REGION").unwrap_or_else(|| "us-east-1".into());
                let mut regions = vec![own];
                if regions[0] != "us-east-1" {
                    regions.push("us-east-1".into());
                }
                regions
            }
        };
        if regions.is_empty()
            || regions.iter().any(|r| {
                !r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
        {
            return Err(ConfigError::Invalid {
                var: "CLOUDTRAIL_REGIONS",
                reason: "expected comma-separated region names such as eu-west-1,us-east-1".into(),
            });
        }
        let log_group = config::optional(env, "CLOUDTRAIL_LOG_GROUP")
            .map(|v| {
                LogGroup::parse(&v).map_err(|reason| ConfigError::Invalid {
                    var: "CLOUDTRAIL_LOG_GROUP",
                    reason,
                })
            })
            .transpose()?;
        let source = match (config::optional(env, "REPORT_SOURCE").as_deref(), log_group) {
            (None | Some("lookup-events"), _) => ReportSource::LookupEvents,
            (Some("logs-insights"), Some(group)) => ReportSource::LogsInsights(group),
            (Some("logs-insights"), None) => return Err(ConfigError::Missing("CLOUDTRAIL_LOG_GROUP")),
            (Some(other), _) => {
                return Err(ConfigError::Invalid {
                    var: "REPORT_SOURCE",
                    reason: format!("expected lookup-events or logs-insights, got {other:?}"),
                });
            }
        };
        let state_machine_arn = config::optional(env, "STATE_MACHINE_ARN");
        let sender = email("REPORT_SENDER", &config::required(env, "REPORT_SENDER")?)?;
        let recipients = config::optional(env, "REPORT_RECIPIENTS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| email("REPORT_RECIPIENTS", r))
            .collect::<Result<Vec<_>, _>>()?;
        let cc_requester = match config::optional(env, "REPORT_CC_REQUESTER").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "REPORT_CC_REQUESTER",
                    reason: format!("expected true or false, got {other:?}"),
                });
            }
        };
        if recipients.is_empty() && !cc_requester {
            return Err(ConfigError::Missing("REPORT_RECIPIENTS"));
        }
        Ok(Self {
            source,
            regions,
            state_machine_arn,
            read_budget: READ_BUDGET,
            lookup_interval: LOOKUP_INTERVAL,
            insights_rows: insights::ROW_CAP,
            audit_role_name: config::optional(env, "AUDIT_ROLE_NAME"),
            own_account: None,
            sender,
            recipients,
            cc_requester,
            slack: SlackSettings::from_env(env)?,
            alert_slack_channel: config::optional(env, "ALERT_SLACK_CHANNEL"),
            alert_topic_arn: config::optional(env, "ALERT_TOPIC_ARN"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use break_glass_core::config::map_env;

    #[test]
    fn regions_default_to_our_own_plus_us_east_1() {
        let env = map_env([
            ("AWS_REGION", "eu-west-1"),
            ("REPORT_SENDER", "break-glass@example.com"),
            ("REPORT_RECIPIENTS", "security@example.com, oncall@example.com"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.regions, vec!["eu-west-1", "us-east-1"]);
        assert_eq!(config.source, ReportSource::LookupEvents);
        assert_eq!(config.recipients.len(), 2);
        assert!(!config.cc_requester);
    }

    #[test]
    fn bad_values_are_named() {
        let base = [
            ("REPORT_SENDER", "break-glass@example.com"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ];
        let [a, b] = base;
        for (extra, var) in [
            (("REPORT_SOURCE", "lake"), "REPORT_SOURCE"),
            (("REPORT_SOURCE", "logs-insights"), "CLOUDTRAIL_LOG_GROUP"),
            (("CLOUDTRAIL_LOG_GROUP", "arn:aws:s3:::x"), "CLOUDTRAIL_LOG_GROUP"),
            (("REPORT_RECIPIENTS", "not-an-address"), "REPORT_RECIPIENTS"),
            (("CLOUDTRAIL_REGIONS", "EU WEST"), "CLOUDTRAIL_REGIONS"),
            (("REPORT_CC_REQUESTER", "yes"), "REPORT_CC_REQUESTER"),
        ] {
            let err = Config::from_env(&map_env([a, b, extra])).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
        let err = Config::from_env(&map_env(base)).unwrap_err().to_string();
        assert!(err.contains("REPORT_RECIPIENTS"), "{err}");
    }

    #[test]
    fn logs_insights_reads_the_log_group() {
        let env = map_env([
            ("REPORT_SOURCE", "logs-insights"),
            (
                "CLOUDTRAIL_LOG_GROUP",
                "arn:aws:logs:eu-west-1:111122223333:log-group:org-trail:*",
            ),
            ("REPORT_SENDER", "break-glass@example.com"),
            ("REPORT_RECIPIENTS", "security@example.com"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ]);
        let ReportSource::LogsInsights(group) = Config::from_env(&env).unwrap().source else {
            panic!("not logs-insights");
        };
        assert_eq!(group.name, "org-trail");
        assert_eq!(group.account.unwrap().as_str(), "111122223333");
    }
}
