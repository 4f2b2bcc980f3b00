use break_glass_core::config::{self, ConfigError, Env, SlackSettings};

/// report-on-access's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Regions whose CloudTrail is searched.
    pub regions: Vec<String>,
    /// Assumed in the target account to read its CloudTrail; `None`: the
    /// function's own credentials.
    pub audit_role_name: Option<String>,
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
            regions,
            audit_role_name: config::optional(env, "AUDIT_ROLE_NAME"),
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
}
