//! Validated domain values. Each one can only be built through its parser, so
//! a value of the type is proof the text had the right shape.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("account id must be exactly 12 digits, got {0:?}")]
    AccountId(String),
    #[error("permission set ARN must look like arn:aws:sso:::permissionSet/ssoins-<id>/ps-<id>, got {0:?}")]
    PermissionSetArn(String),
    #[error("instance ARN must look like arn:aws:sso:::instance/ssoins-<id>, got {0:?}")]
    InstanceArn(String),
    #[error("duration must be between 1 and {max} minutes, got {got}")]
    Duration { got: u64, max: u32 },
    #[error("Slack {kind} id must be {shape}, got {got:?}")]
    SlackId {
        kind: &'static str,
        shape: &'static str,
        got: String,
    },
}

/// Keeps a refused value short in messages: they go to Slack, into 400
/// answers and the logs, and a payload field can be arbitrarily long (or
/// crafted to look like a log line). A few dozen characters identify it.
pub fn clip(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        let mut clipped: String = value.chars().take(MAX).collect();
        clipped.push('…');
        clipped
    }
}

/// Identity Center ids are 16 characters today; 64 leaves room and keeps
/// anything echoed back (refusals, logs) short.
fn is_id_token(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_partition(s: &str) -> bool {
    matches!(s, "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b")
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// An AWS account id: exactly 12 ASCII digits (leading zeros are significant).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(DomainError::AccountId(clip(s)))
        }
    }
}
string_serde!(AccountId);

/// `arn:<partition>:sso:::instance/ssoins-<id>`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceArn {
    arn: String,
    instance_id: String,
}

impl InstanceArn {
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    /// The `ssoins-…` part.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }
}

impl FromStr for InstanceArn {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DomainError::InstanceArn(clip(s));
        let rest = s.strip_prefix("arn:").ok_or_else(err)?;
        let (partition, rest) = rest.split_once(':').ok_or_else(err)?;
        let id = rest.strip_prefix("sso:::instance/").ok_or_else(err)?;
        let token = id.strip_prefix("ssoins-").ok_or_else(err)?;
        if !is_partition(partition) || !is_id_token(token) {
            return Err(err());
        }
        Ok(Self {
            arn: s.to_string(),
            instance_id: id.to_string(),
        })
    }
}
string_serde!(InstanceArn);

/// `arn:<partition>:sso:::permissionSet/ssoins-<id>/ps-<id>`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PermissionSetArn {
    arn: String,
    instance_id: String,
    permission_set_id: String,
}

impl PermissionSetArn {
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }
    /// The `ps-…` part: short enough to show people and to name executions.
    pub fn permission_set_id(&self) -> &str {
        &self.permission_set_id
    }
    pub fn belongs_to(&self, instance: &InstanceArn) -> bool {
        self.instance_id == instance.instance_id()
    }
}

impl FromStr for PermissionSetArn {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DomainError::PermissionSetArn(clip(s));
        let rest = s.strip_prefix("arn:").ok_or_else(err)?;
        let (partition, rest) = rest.split_once(':').ok_or_else(err)?;
        let ids = rest.strip_prefix("sso:::permissionSet/").ok_or_else(err)?;
        let (instance_id, ps_id) = ids.split_once('/').ok_or_else(err)?;
        let instance_token = instance_id.strip_prefix("ssoins-").ok_or_else(err)?;
        let ps_token = ps_id.strip_prefix("ps-").ok_or_else(err)?;
        if !is_partition(partition) || !is_id_token(instance_token) || !is_id_token(ps_token) {
            return Err(err());
        }
        Ok(Self {
            arn: s.to_string(),
            instance_id: instance_id.to_string(),
            permission_set_id: ps_id.to_string(),
        })
    }
}
string_serde!(PermissionSetArn);

/// Slack ids are one capital letter saying what they name, then capital
/// letters and digits (`U024BE7LH`). Checking the shape keeps anything else
/// (spaces, separators, lower case) out of policy decisions, execution
/// names and log lines.
fn is_slack_id(s: &str, prefixes: &[u8]) -> bool {
    let bytes = s.as_bytes();
    (2..=32).contains(&bytes.len())
        && prefixes.contains(&bytes[0])
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

macro_rules! slack_id {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $prefixes:expr, $shape:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if is_slack_id(s, $prefixes) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(DomainError::SlackId {
                        kind: $kind,
                        shape: $shape,
                        got: clip(s),
                    })
                }
            }
        }
        string_serde!($ty);
    };
}

slack_id!(
    /// A Slack user id: `U…`, or `W…` for Enterprise Grid users.
    SlackUserId,
    "user",
    b"UW",
    "U or W and then capital letters and digits"
);
slack_id!(
    /// A Slack workspace (team) id, `T…`.
    SlackTeamId,
    "team",
    b"T",
    "T and then capital letters and digits"
);
slack_id!(
    /// An Enterprise Grid organisation id, `E…`.
    SlackEnterpriseId,
    "enterprise",
    b"E",
    "E and then capital letters and digits"
);
slack_id!(
    /// A conversation id: `C…` (channel), `G…` (private channel or group
    /// message), `D…` (direct message).
    SlackChannelId,
    "channel",
    b"CGD",
    "C, G or D and then capital letters and digits"
);
slack_id!(
    /// A Slack app id, `A…`.
    SlackAppId,
    "app",
    b"A",
    "A and then capital letters and digits"
);

/// How long access lasts. Bounded absolutely at Identity Center's own longest
/// session (12 h); a policy narrows it further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct AccessDuration {
    minutes: u32,
}

impl AccessDuration {
    pub const MAX_MINUTES: u32 = 12 * 60;
    /// The longest any grant can be: Identity Center's longest session.
    pub const MAX: AccessDuration = AccessDuration {
        minutes: Self::MAX_MINUTES,
    };

    pub fn from_minutes(minutes: u64) -> Result<Self, DomainError> {
        if (1..=u64::from(Self::MAX_MINUTES)).contains(&minutes) {
            Ok(Self {
                minutes: minutes as u32,
            })
        } else {
            Err(DomainError::Duration {
                got: minutes,
                max: Self::MAX_MINUTES,
            })
        }
    }
    pub fn minutes(self) -> u32 {
        self.minutes
    }
    pub fn seconds(self) -> u64 {
        u64::from(self.minutes) * 60
    }
    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.minutes))
    }
}

impl TryFrom<u64> for AccessDuration {
    type Error = DomainError;
    /// From seconds, as the execution contract carries it.
    fn try_from(seconds: u64) -> Result<Self, Self::Error> {
        if !seconds.is_multiple_of(60) {
            return Err(DomainError::Duration {
                got: seconds / 60,
                max: Self::MAX_MINUTES,
            });
        }
        Self::from_minutes(seconds / 60)
    }
}

impl From<AccessDuration> for u64 {
    fn from(d: AccessDuration) -> u64 {
        d.seconds()
    }
}

impl fmt::Display for AccessDuration {
    /// "45 minutes", "1 hour", "2 hours 30 minutes": how people say it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m) = (self.minutes / 60, self.minutes % 60);
        let plural = |n: u32| if n == 1 { "" } else { "s" };
        match (h, m) {
            (0, m) => write!(f, "{m} minute{}", plural(m)),
            (h, 0) => write!(f, "{h} hour{}", plural(h)),
            (h, m) => write!(f, "{h} hour{} {m} minute{}", plural(h), plural(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_exactly_twelve_digits() {
        assert!("123456789012".parse::<AccountId>().is_ok());
        assert!("012345678901".parse::<AccountId>().is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", "", "١٢٣٤٥٦٧٨٩٠١٢"] {
            assert!(bad.parse::<AccountId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn permission_set_arns_parse_into_their_parts() {
        let arn: PermissionSetArn = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345"
            .parse()
            .unwrap();
        assert_eq!(arn.instance_id(), "ssoins-12345");
        assert_eq!(arn.permission_set_id(), "ps-12345");
        let instance: InstanceArn = "arn:aws:sso:::instance/ssoins-12345".parse().unwrap();
        assert!(arn.belongs_to(&instance));
        let other: InstanceArn = "arn:aws:sso:::instance/ssoins-99999".parse().unwrap();
        assert!(!arn.belongs_to(&other));
    }

    #[test]
    fn malformed_permission_set_arns_are_refused() {
        for bad in [
            "",
            "retry",
            "arn:aws:sso:::instance/ssoins-12345/ps-12345",
            "arn:aws:sso:::permissionSet/ssoins-12345",
            "arn:aws:sso:::permissionSet/ssoins-/ps-1",
            "arn:aws:sso:::permissionSet/ssoins-1/ps-",
            "arn:aws:sso:::permissionSet/ssoins-1/ps-1/extra",
            "arn:evil:sso:::permissionSet/ssoins-1/ps-1",
            "arn:aws:iam:::permissionSet/ssoins-1/ps-1",
        ] {
            assert!(bad.parse::<PermissionSetArn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_bounded_and_read_naturally() {
        assert!(AccessDuration::from_minutes(0).is_err());
        assert!(AccessDuration::from_minutes(721).is_err());
        let d = AccessDuration::from_minutes(150).unwrap();
        assert_eq!(d.to_string(), "2 hours 30 minutes");
        assert_eq!(AccessDuration::from_minutes(60).unwrap().to_string(), "1 hour");
        assert_eq!(AccessDuration::from_minutes(1).unwrap().to_string(), "1 minute");
        assert_eq!(serde_json::to_string(&d).unwrap(), "9000");
        assert_eq!(serde_json::from_str::<AccessDuration>("9000").unwrap(), d);
        assert!(serde_json::from_str::<AccessDuration>("61").is_err());
    }

    #[test]
    fn slack_ids_have_slacks_shapes() {
        for good in ["U024BE7LH", "W012A3CDE", "U1"] {
            assert!(good.parse::<SlackUserId>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "U",
            "T024BE7LH",
            "u024be7lh",
            "U024 BE7LH",
            "U-1",
            "UÖ1",
            &format!("U{}", "1".repeat(32)),
        ] {
            assert!(bad.parse::<SlackUserId>().is_err(), "{bad}");
        }
        assert!("T0001".parse::<SlackTeamId>().is_ok());
        assert!("E0001".parse::<SlackTeamId>().is_err());
        assert!("E0001".parse::<SlackEnterpriseId>().is_ok());
        for good in ["C12345", "G0PRIVATE", "D0DM"] {
            assert!(good.parse::<SlackChannelId>().is_ok(), "{good}");
        }
        assert!("U12345".parse::<SlackChannelId>().is_err());
        assert!("A0APP".parse::<SlackAppId>().is_ok());
        let err = "T0001".parse::<SlackUserId>().unwrap_err().to_string();
        assert!(err.starts_with("Slack user id must be U or W"), "{err}");
    }

    #[test]
    fn refused_values_are_clipped_in_messages() {
        let long = "9".repeat(5000);
        let msg = long.parse::<AccountId>().unwrap_err().to_string();
        assert!(msg.len() < 100, "{}", msg.len());
        assert_eq!(clip(&"x".repeat(41)).chars().count(), 41, "40 and an ellipsis");
        assert_eq!(clip("short"), "short");
    }
}
