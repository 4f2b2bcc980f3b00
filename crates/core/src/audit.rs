//! CloudTrail events as the report sees them, and how they are read: which
//! events belong to the break-glass session, what makes one high risk, and
//! reading them from either source within a time budget, so that a report
//! always finishes and says exactly what it covered.
//!
//! - `LookupEvents` ([`read_lookup_events`]): one account, one region per
//!   call, 50 events a page, 2 calls per second per region. Regions are read
//!   in parallel, each paced at the limit, the window in ascending slices so
//!   that a report cut short is complete up to a stated time.
//! - CloudWatch Logs Insights over an organisation trail's log group
//!   ([`read_logs_insights`]): the engine counts (by service, event, error;
//!   and per minute, which plans the listing), and the events are listed in
//!   windows of fewer than 10,000, split again whenever a query comes back
//!   full.
//!
//! The summary and its renderings are in [`summary`] and [`render`]; the
//! Logs Insights query text in [`insights`].

pub mod insights;
pub mod render;
pub mod summary;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::ports::{AuditQuery, AuditTrail, InsightsQuery, InsightsStatus, LogsInsights, PortError};
use crate::retry::{Backoff, Deadline, with_retries};
pub use render::{ReportContext, render_csv, render_html, render_slack, render_text, subject, verdict};
pub use summary::{Counts, Summary};

/// One CloudTrail event, reduced to what the report shows.
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
    /// What was acted on, named from the request parameters of the common
    /// services (see [`RESOURCE_PARAMETERS`]) or CloudTrail's `resources`.
    pub resource: Option<String>,
}

// ------------------------------------------------------------------ parsing

/// A scalar field read without copying when it has no escapes; objects and
/// arrays where a scalar was expected read as absent rather than failing the
/// whole event (every field is whatever the caller sent).
#[derive(Debug, Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
    fn owned(self) -> Option<String> {
        self.0.filter(|s| !s.is_empty()).map(Cow::into_owned)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(if v { "true" } else { "false" }))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The fields of a CloudTrail record the report reads; everything else
/// (response elements, TLS details, policies in request parameters) is
/// skipped without being built.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent<'a> {
    #[serde(rename = "eventID", borrow, default)]
    event_id: Text<'a>,
    #[serde(borrow, default)]
    event_time: Text<'a>,
    #[serde(borrow, default)]
    event_source: Text<'a>,
    #[serde(borrow, default)]
    event_name: Text<'a>,
    #[serde(borrow, default)]
    aws_region: Text<'a>,
    #[serde(rename = "sourceIPAddress", borrow, default)]
    source_ip_address: Text<'a>,
    #[serde(borrow, default)]
    user_agent: Text<'a>,
    #[serde(borrow, default)]
    read_only: Text<'a>,
    #[serde(borrow, default)]
    error_code: Text<'a>,
    #[serde(borrow, default)]
    error_message: Text<'a>,
    #[serde(borrow, default)]
    event_type: Text<'a>,
    #[serde(borrow, default)]
    user_identity: Option<RawIdentity<'a>>,
    #[serde(borrow, default)]
    request_parameters: Option<Params<'a>>,
    #[serde(borrow, default)]
    resources: Option<Vec<RawResource<'a>>>,
}

#[derive(Deserialize)]
struct RawIdentity<'a> {
    #[serde(borrow, default)]
    arn: Text<'a>,
    #[serde(rename = "sessionContext", borrow, default)]
    session_context: Option<RawSessionContext<'a>>,
}

#[derive(Deserialize)]
struct RawSessionContext<'a> {
    #[serde(rename = "sessionIssuer", borrow, default)]
    session_issuer: Option<RawIssuer<'a>>,
}

#[derive(Deserialize)]
struct RawIssuer<'a> {
    #[serde(rename = "userName", borrow, default)]
    user_name: Text<'a>,
}

#[derive(Deserialize)]
struct RawResource<'a> {
    #[serde(rename = "ARN", borrow, default)]
    arn: Text<'a>,
}

#[derive(Deserialize)]
struct Items<'a> {
    #[serde(borrow, default)]
    items: Vec<Item<'a>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "instanceId", borrow, default)]
    instance_id: Text<'a>,
}

/// Generates [`Params`] (the request parameters that name resources) and
/// its lookup by name from one list.
macro_rules! params {
    ($($field:ident = $name:literal),* $(,)?) => {
        #[derive(Deserialize, Default)]
        struct Params<'a> {
            $(#[serde(rename = $name, borrow, default)] $field: Text<'a>,)*
            #[serde(rename = "instancesSet", borrow, default)]
            instances_set: Option<Items<'a>>,
        }
        impl Params<'_> {
            fn get(&self, name: &str) -> Option<&str> {
                match name {
                    $($name => self.$field.get(),)*
                    _ => None,
                }
            }
        }
    };
}

params! {
    access_key_id = "accessKeyId", account_id = "accountId", bucket_name = "bucketName",
    cluster = "cluster", cluster_name = "clusterName", config_rule_name = "configRuleName",
    configuration_recorder_name = "configurationRecorderName", db_cluster = "dBClusterIdentifier",
    db_instance = "dBInstanceIdentifier", db_snapshot = "dBSnapshotIdentifier", detector_id = "detectorId",
    function_name = "functionName", group_id = "groupId", group_name = "groupName",
    hosted_zone_id = "hostedZoneId", image_id = "imageId", instance_arn = "instanceArn",
    instance_id = "instanceId", instance_profile_name = "instanceProfileName", key = "key",
    key_id = "keyId", load_balancer_arn = "loadBalancerArn", load_balancer_name = "loadBalancerName",
    log_group_name = "logGroupName", name = "name", network_acl_id = "networkAclId",
    permission_set_arn = "permissionSetArn", policy_arn = "policyArn", policy_id = "policyId",
    policy_name = "policyName", queue_url = "queueUrl", repository_name = "repositoryName",
    role_arn = "roleArn", role_name = "roleName", secret_id = "secretId", service = "service",
    snapshot_id = "snapshotId", stack_name = "stackName", state_machine_arn = "stateMachineArn",
    stream_name = "streamName", subnet_id = "subnetId", table_name = "tableName",
    target_id = "targetId", topic_arn = "topicArn", trail_name = "trailName", user_name = "userName",
    volume_id = "volumeId", vpc_id = "vpcId", security_group_rule_ids = "securityGroupRuleIds",
}

/// Per service, the request parameters that name what a call acted on, most
/// telling first: the first present names the resource, and a second one of
/// the `also` list qualifies it (`role / policy`, `bucket/key`).
pub const RESOURCE_PARAMETERS: &[(&str, &[&str], &[&str])] = &[
    ("s3", &["bucketName"], &["key"]),
    (
        "ec2",
        &[
            "instanceId",
            "groupId",
            "groupName",
            "volumeId",
            "snapshotId",
            "networkAclId",
            "subnetId",
            "vpcId",
            "imageId",
        ],
        &[],
    ),
    (
        "iam",
        &[
            "roleName",
            "userName",
            "groupName",
            "instanceProfileName",
            "policyArn",
            "policyName",
        ],
        &["policyArn", "policyName", "accessKeyId"],
    ),
    ("sts", &["roleArn"], &[]),
    ("lambda", &["functionName"], &[]),
    ("dynamodb", &["tableName"], &[]),
    (
        "rds",
        &[
            "dBInstanceIdentifier",
            "dBClusterIdentifier",
            "dBSnapshotIdentifier",
        ],
        &[],
    ),
    ("kms", &["keyId"], &[]),
    ("secretsmanager", &["secretId", "name"], &[]),
    ("logs", &["logGroupName"], &[]),
    ("sns", &["topicArn", "name"], &[]),
    ("sqs", &["queueUrl"], &[]),
    ("cloudformation", &["stackName"], &[]),
    ("ecs", &["cluster"], &["service"]),
    ("eks", &["name", "clusterName"], &[]),
    ("ecr", &["repositoryName"], &[]),
    ("cloudtrail", &["name", "trailName"], &[]),
    ("ssm", &["name"], &[]),
    ("guardduty", &["detectorId"], &[]),
    ("config", &["configurationRecorderName", "configRuleName"], &[]),
    ("organizations", &["accountId", "policyId", "targetId"], &[]),
    ("sso", &["permissionSetArn", "instanceArn"], &[]),
    ("states", &["stateMachineArn", "name"], &[]),
    (
        "elasticloadbalancing",
        &["loadBalancerArn", "loadBalancerName"],
        &[],
    ),
    ("route53", &["hostedZoneId"], &[]),
    ("kinesis", &["streamName"], &[]),
];

/// Tried in this order for services [`RESOURCE_PARAMETERS`] does not list.
const ANY_SERVICE: &[&str] = &[
    "roleName",
    "userName",
    "bucketName",
    "functionName",
    "tableName",
    "name",
    "instanceId",
    "keyId",
    "secretId",
    "groupId",
    "accountId",
];

fn service_of(event_source: &str) -> &str {
    event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source)
}

fn resource_of(
    service: &str,
    params: Option<&Params<'_>>,
    resources: Option<&[RawResource<'_>]>,
) -> Option<String> {
    let named = params.and_then(|p| {
        if service == "ec2"
            && p.instance_id.get().is_none()
            && let Some(set) = &p.instances_set
        {
            let ids: Vec<&str> = set.items.iter().filter_map(|i| i.instance_id.get()).collect();
            if let Some(first) = ids.first() {
                return Some(match ids.len() {
                    1 => (*first).to_string(),
                    n => format!("{first} and {} more", n - 1),
                });
            }
        }
        let (primary, also) = RESOURCE_PARAMETERS
            .iter()
            .find(|(s, _, _)| *s == service)
            .map(|(_, primary, also)| (*primary, *also))
            .unwrap_or((ANY_SERVICE, &[]));
        let (first_name, first) = primary.iter().find_map(|n| p.get(n).map(|v| (*n, v)))?;
        let second = also.iter().filter(|n| **n != first_name).find_map(|n| p.get(n));
        Some(match second {
            Some(second) if service == "s3" => format!("{first}/{second}"),
            Some(second) => format!("{first} / {second}"),
            None => first.to_string(),
        })
    });
    named.or_else(|| resources?.iter().find_map(|r| r.arn.get().map(str::to_string)))
}

impl AuditEvent {
    /// Parses one CloudTrail record: the `CloudTrailEvent` string of a
    /// `LookupEvents` answer, or a log event of a trail's log group.
    pub fn from_cloudtrail_json(raw: &str) -> Result<Self, String> {
        let v: RawEvent<'_> =
            serde_json::from_str(raw).map_err(|e| format!("event is not a CloudTrail record: {e}"))?;
        let time = v.event_time.get().ok_or("event has no eventTime")?;
        let event_time = DateTime::parse_from_rfc3339(time)
            .map_err(|e| format!("bad eventTime {time:?}: {e}"))?
            .with_timezone(&Utc);
        let event_source = v.event_source.owned().unwrap_or_default();
        let resource = resource_of(
            service_of(&event_source),
            v.request_parameters.as_ref(),
            v.resources.as_deref(),
        );
        let read_only = match v.read_only.get() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        let (principal_arn, session_issuer) = match v.user_identity {
            Some(identity) => (
                identity.arn.owned(),
                identity
                    .session_context
                    .and_then(|c| c.session_issuer)
                    .and_then(|i| i.user_name.owned()),
            ),
            None => (None, None),
        };
        Ok(Self {
            event_id: v.event_id.owned().ok_or("event has no eventID")?,
            event_time,
            event_source,
            event_name: v.event_name.owned().unwrap_or_default(),
            aws_region: v.aws_region.owned().unwrap_or_default(),
            source_ip: v.source_ip_address.owned(),
            user_agent: v.user_agent.owned(),
            read_only,
            error_code: v.error_code.owned(),
            error_message: v.error_message.owned(),
            session_issuer,
            principal_arn,
            event_type: v.event_type.owned(),
            resource,
        })
    }

    /// Whether the event was made in `user_name`'s session of the
    /// permission set: role `AWSReservedSSO_<set>_<hex>`, session `<user>`.
    pub fn in_session_of(&self, permission_set_name: &str, user_name: &str) -> bool {
        let issuer = self
            .session_issuer
            .as_deref()
            .or_else(|| self.principal_arn.as_deref().and_then(|a| a.split('/').nth(1)));
        let issuer_ok = issuer.is_some_and(|i| is_session_role_of(i, permission_set_name));
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
        service_of(&self.event_source)
    }
}

/// Whether `role` is the role Identity Center creates for a permission set
/// in each account: `AWSReservedSSO_<set>_` followed by exactly 16 hex
/// digits. A prefix match would count `AWSReservedSSO_Admin_ReadOnly_<hex>`
/// (another permission set) as a session of `Admin`.
pub fn is_session_role_of(role: &str, permission_set_name: &str) -> bool {
    role.strip_prefix("AWSReservedSSO_")
        .and_then(|rest| rest.strip_prefix(permission_set_name))
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|suffix| suffix.len() == 16 && suffix.bytes().all(|b| b.is_ascii_hexdigit()))
}

// --------------------------------------------------------------- high risk

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

/// The label of the first [`HIGH_RISK`] rule a call matches. Read-only
/// calls are never high risk, except reading a secret.
pub fn high_risk_of(service: &str, event_name: &str, read_only: Option<bool>) -> Option<&'static str> {
    if read_only == Some(true) && event_name != "GetSecretValue" {
        return None;
    }
    HIGH_RISK.iter().find_map(|(s, names, label)| {
        let matches = service == *s
            && names.iter().any(|n| match n.strip_suffix('*') {
                Some(prefix) => event_name.starts_with(prefix),
                None => event_name == *n,
            });
        matches.then_some(*label)
    })
}

/// The label of the first [`HIGH_RISK`] rule the event matches.
pub fn high_risk_label(event: &AuditEvent) -> Option<&'static str> {
    high_risk_of(event.service(), &event.event_name, event.read_only)
}

/// Error codes that mean "not allowed" rather than "went wrong".
pub fn is_denial(error_code: &str) -> bool {
    let c = error_code.to_ascii_lowercase();
    c.contains("accessdenied")
        || c.contains("unauthorized")
        || c.contains("forbidden")
        || c.contains("notauthorized")
}

// ---------------------------------------------------------------- coverage

/// How many events a cut-short read left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Counted by the engine (Logs Insights).
    Exactly(u64),
    /// Estimated from the rate of what was read.
    About(u64),
    /// Nothing to estimate from.
    Unknown,
}

/// What one source (a region, a log group) covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// `eu-west-1`, or `log group org-trail`.
    pub scope: String,
    /// Events of the session read and kept.
    pub events: u64,
    /// Everything from the window's start to here was read.
    pub complete_to: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// `None` when the read finished.
    pub unread: Option<Unread>,
    /// Why it stopped, when it was not the time budget.
    pub failure: Option<String>,
    /// Records the source returned that could not be parsed.
    pub unreadable: u64,
    /// Calls made (pages, queries), for the log.
    pub requests: u64,
    /// The user's events outside this session (another permission set, or
    /// outside the window) that were left out.
    pub left_out: u64,
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Coverage {
    fn start(scope: impl Into<String>, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            scope: scope.into(),
            events: 0,
            complete_to: start,
            window_end: end,
            unread: None,
            failure: None,
            unreadable: 0,
            requests: 0,
            left_out: 0,
        }
    }

    pub fn complete(&self) -> bool {
        self.unread.is_none() && self.failure.is_none() && self.complete_to >= self.window_end
    }

    /// What a reader must know about this source, or `None` when it was
    /// read whole: "complete to 14:05 UTC in eu-west-1; about 40,000 events
    /// not read (out of time)".
    pub fn statement(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.complete() {
            let unread = match self.unread {
                Some(Unread::Exactly(0)) => "no events missing".to_string(),
                Some(Unread::Exactly(n)) => format!("{} events not read", thousands(n)),
                Some(Unread::About(n)) => format!("about {} events not read", thousands(n)),
                Some(Unread::Unknown) | None => "an unknown number of events not read".to_string(),
            };
            let why = match &self.failure {
                Some(f) => format!("stopped by an error: {f}"),
                None => "the report ran out of time".to_string(),
            };
            parts.push(format!(
                "complete to {} in {}; {unread} ({why})",
                self.complete_to.format("%Y-%m-%d %H:%M:%S UTC"),
                self.scope
            ));
        }
        if self.unreadable > 0 {
            parts.push(format!(
                "{}: {} events could not be read",
                self.scope, self.unreadable
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// How reading is bounded: stop by `deadline`, and pace `LookupEvents` calls
/// to one per `pace` per region.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Deadline,
    /// CloudTrail allows 2 `LookupEvents` calls per second per account and
    /// region: [`LOOKUP_INTERVAL`].
    pub pace: Duration,
    /// How many regions (or Logs Insights listing queries) at once.
    pub concurrency: usize,
    /// Rows a Logs Insights query may return ([`insights::ROW_CAP`]); a
    /// query returning this many is taken to be full.
    pub rows_per_query: u32,
}

/// CloudTrail allows 2 `LookupEvents` requests per second per account and
/// region; each region is paced to exactly that.
pub const LOOKUP_INTERVAL: Duration = Duration::from_millis(500);

/// `LookupEvents` is read in ascending slices of this length, each paged
/// newest first: a read cut short is then complete up to a slice boundary.
pub const SLICE: chrono::Duration = chrono::Duration::minutes(15);

/// Throttling (and transient failures) are retried, more patiently than
/// ordinary API calls: the limit is per region and shared with everything
/// else reading CloudTrail in the account.
const THROTTLED: Backoff = Backoff {
    first: Duration::from_secs(1),
    max: Duration::from_secs(10),
    attempts: 10,
    budget: Duration::from_secs(90),
    jitter: true,
};

/// Who and when: what both sources filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: crate::domain::AccountId,
    pub permission_set_name: String,
    /// The Identity Center user name: the role session name.
    pub user_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Session {
    fn keeps(&self, event: &AuditEvent) -> bool {
        event.event_time >= self.start
            && event.event_time <= self.end
            && event.in_session_of(&self.permission_set_name, &self.user_name)
    }
}

fn lock(summary: &Mutex<Summary>) -> std::sync::MutexGuard<'_, Summary> {
    // A poisoned lock means another region's task panicked mid-add; the rows
    // already added are whole, so the summary is still worth sending.
    summary.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads every region's `LookupEvents` for the session into `summary`, up
/// to `budget.concurrency` regions at once, and says what each covered.
pub async fn read_lookup_events(
    trail: &dyn AuditTrail,
    clock: &dyn Clock,
    session: &Session,
    regions: &[String],
    budget: Budget,
    summary: &Mutex<Summary>,
) -> Vec<Coverage> {
    // The futures are made first and only then streamed: a closure that
    // makes them inside the stream borrows `region` for a lifetime the
    // compiler cannot prove `Send` for every caller (the local runner's
    // `async_trait` needs that).
    let reads: Vec<_> = regions
        .iter()
        .map(|region| read_region(trail, clock, session, region, budget, summary))
        .collect();
    futures_util::stream::iter(reads)
        .buffered(budget.concurrency.max(1))
        .collect()
        .await
}

/// One region: ascending slices, each paged to its end, calls paced at
/// `budget.pace` from start to start, throttling retried, stopping at the
/// deadline with what it covered.
async fn read_region(
    trail: &dyn AuditTrail,
    clock: &dyn Clock,
    session: &Session,
    region: &str,
    budget: Budget,
    summary: &Mutex<Summary>,
) -> Coverage {
    let mut cov = Coverage::start(region, session.start, session.end);
    let mut last_call: Option<DateTime<Utc>> = None;
    // Slices share their boundary second (the API's times are inclusive):
    // events at a boundary are kept once.
    let mut at_boundary: HashSet<String> = HashSet::new();
    let mut slice_start = session.start;
    let mut partial: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    'slices: loop {
        let slice_end = (slice_start + SLICE).min(session.end);
        let query = AuditQuery {
            account: session.account.clone(),
            region: region.to_string(),
            user_name: session.user_name.clone(),
            start: slice_start,
            end: slice_end,
        };
        let mut next_boundary = HashSet::new();
        let mut token: Option<String> = None;
        let mut oldest: Option<DateTime<Utc>> = None;
        loop {
            if budget.deadline.passed(clock) {
                partial = oldest.map(|o| (o, slice_end));
                break 'slices;
            }
            if let Some(last) = last_call {
                let since = (clock.now() - last).to_std().unwrap_or_default();
                if since < budget.pace {
                    clock.sleep(budget.pace - since).await;
                }
            }
            last_call = Some(clock.now());
            let backoff = THROTTLED.within(budget.deadline.remaining(clock));
            let page = with_retries(clock, backoff, || {
                cov.requests += 1;
                trail.lookup_page(&query, token.as_deref())
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%region, %error, "CloudTrail lookup failed");
                    cov.failure = Some(error.to_string());
                    partial = oldest.map(|o| (o, slice_end));
                    break 'slices;
                }
            };
            cov.unreadable += page.unreadable as u64;
            let mut kept = Vec::with_capacity(page.events.len());
            for event in page.events {
                oldest = Some(oldest.map_or(event.event_time, |o| o.min(event.event_time)));
                if event.event_time == slice_start && at_boundary.contains(&event.event_id) {
                    continue;
                }
                if event.event_time == slice_end {
                    next_boundary.insert(event.event_id.clone());
                }
                if session.keeps(&event) {
                    kept.push(event);
                } else {
                    cov.left_out += 1;
                }
            }
            cov.events += kept.len() as u64;
            lock(summary).extend(kept);
            match page.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        cov.complete_to = slice_end;
        at_boundary = next_boundary;
        if slice_end >= session.end {
            break;
        }
        slice_start = slice_end;
    }
    if cov.complete_to < session.end || cov.failure.is_some() {
        cov.unread = Some(estimate_unread(&cov, session, partial));
    }
    cov
}

/// Events not read, from the rate of those read: the covered time is the
/// complete part plus, in a slice cut short, its newest part already paged.
fn estimate_unread(
    cov: &Coverage,
    session: &Session,
    partial: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Unread {
    let whole = (session.end - session.start).num_seconds().max(1);
    let mut covered = (cov.complete_to - session.start).num_seconds().max(0);
    if let Some((oldest, end)) = partial {
        covered += (end - oldest).num_seconds().max(0);
    }
    if cov.events == 0 || covered == 0 {
        return if covered >= whole {
            Unread::About(0)
        } else {
            Unread::Unknown
        };
    }
    let rest = (whole - covered).max(0) as f64;
    Unread::About((cov.events as f64 / covered as f64 * rest).round() as u64)
}

// ------------------------------------------------------------ Logs Insights

/// How often a running query is asked for its results.
const POLL: Duration = Duration::from_secs(1);

/// Where the organisation trail's events are, for [`read_logs_insights`]:
/// a log group name (read with the function's own role, in its region), or
/// its ARN (read in that region, through the audit role when the account
/// is another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroup {
    pub name: String,
    pub region: Option<String>,
    pub account: Option<crate::domain::AccountId>,
}

impl LogGroup {
    /// `org-trail`, or `arn:aws:logs:eu-west-1:111122223333:log-group:org-trail[:*]`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 512
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
        };
        if let Some(rest) = value.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(6, ':').collect();
            let [_partition, "logs", region, account, kind_name, ..] = parts.as_slice() else {
                return Err(format!("{value:?} is not a log group ARN"));
            };
            let name = kind_name
                .strip_prefix("log-group:")
                .map(|n| n.trim_end_matches(":*"))
                .or_else(|| {
                    (*kind_name == "log-group")
                        .then(|| parts.get(5).copied())
                        .flatten()
                })
                .map(|n| n.trim_end_matches(":*"))
                .filter(|n| name_ok(n))
                .ok_or_else(|| format!("{value:?} is not a log group ARN"))?;
            let account = account
                .parse()
                .map_err(|_| format!("{value:?} has no account id"))?;
            let region_ok = !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !region_ok {
                return Err(format!("{value:?} has no region"));
            }
            return Ok(Self {
                name: name.to_string(),
                region: Some((*region).to_string()),
                account: Some(account),
            });
        }
        if name_ok(value) {
            Ok(Self {
                name: value.to_string(),
                region: None,
                account: None,
            })
        } else {
            Err(format!("{value:?} is not a log group name or ARN"))
        }
    }
}

enum Ran {
    Rows(Vec<Vec<(String, String)>>),
    OutOfTime,
}

/// Runs one query to its end: started (retrying the concurrency limit,
/// which Logs Insights reports as `LimitExceededException`), polled until
/// done, and stopped if the deadline comes first so it costs nothing more.
async fn run_query(
    engine: &dyn LogsInsights,
    clock: &dyn Clock,
    query: &InsightsQuery,
    deadline: Deadline,
    requests: &std::sync::atomic::AtomicU64,
) -> Result<Ran, PortError> {
    use std::sync::atomic::Ordering::Relaxed;
    if deadline.passed(clock) {
        return Ok(Ran::OutOfTime);
    }
    let id = with_retries(clock, THROTTLED.within(deadline.remaining(clock)), || {
        requests.fetch_add(1, Relaxed);
        engine.start_query(query)
    })
    .await?;
    loop {
        if deadline.passed(clock) {
            requests.fetch_add(1, Relaxed);
            if let Err(error) = engine.stop_query(&id).await {
                tracing::warn!(%error, query_id = %id, "could not stop a query cut short");
            }
            return Ok(Ran::OutOfTime);
        }
        clock.sleep(POLL).await;
        let results = with_retries(clock, Backoff::API.within(deadline.remaining(clock)), || {
            requests.fetch_add(1, Relaxed);
            engine.query_results(&id)
        })
        .await?;
        match results.status {
            InsightsStatus::Running => {}
            InsightsStatus::Complete => return Ok(Ran::Rows(results.rows)),
            InsightsStatus::Failed(why) => {
                return Err(PortError::new(
                    crate::ports::PortErrorKind::Other,
                    "logs",
                    "GetQueryResults",
                    format!("query {id} ended {why}"),
                ));
            }
        }
    }
}

enum Listed {
    /// Every event of the window, in time order.
    Done(Vec<Vec<(String, String)>>),
    /// Part of it (the windows that finished), then time or an error ran out.
    Cut {
        rows: Vec<Vec<(String, String)>>,
        complete_to: DateTime<Utc>,
        failure: Option<String>,
    },
}

/// What every listing query of one read shares.
struct Lister<'a> {
    engine: &'a dyn LogsInsights,
    clock: &'a dyn Clock,
    group: &'a LogGroup,
    filter: String,
    deadline: Deadline,
    /// Rows per query; a query returning this many is full.
    cap: u32,
    requests: std::sync::atomic::AtomicU64,
}

/// Lists one window's events; a window whose query came back full is split
/// in two and each half listed, down to a single second.
fn list_window<'a>(
    l: &'a Lister<'a>,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> futures_util::future::BoxFuture<'a, Listed> {
    Box::pin(async move {
        let (start, end) = window;
        let query = InsightsQuery {
            log_group: l.group.name.clone(),
            start,
            end,
            query: insights::listing_query(&l.filter, l.cap),
            limit: l.cap,
        };
        let rows = match run_query(l.engine, l.clock, &query, l.deadline, &l.requests).await {
            Ok(Ran::Rows(rows)) => rows,
            Ok(Ran::OutOfTime) => {
                return Listed::Cut {
                    rows: Vec::new(),
                    complete_to: start,
                    failure: None,
                };
            }
            Err(error) => {
                return Listed::Cut {
                    rows: Vec::new(),
                    complete_to: start,
                    failure: Some(error.to_string()),
                };
            }
        };
        if rows.len() < l.cap as usize || end - start < chrono::Duration::seconds(2) {
            if rows.len() >= l.cap as usize {
                tracing::warn!(%start, cap = l.cap, "a full query for one second: some events are not listed");
            }
            return Listed::Done(rows);
        }
        drop(rows);
        // Inclusive bounds in whole seconds: [start, mid] and [mid + 1 s, end].
        let mid = start + (end - start) / 2;
        let mid = DateTime::from_timestamp(mid.timestamp(), 0).unwrap_or(mid);
        let mut rows = match list_window(l, (start, mid)).await {
            Listed::Done(rows) => rows,
            cut => return cut,
        };
        match list_window(l, (mid + chrono::Duration::seconds(1), end)).await {
            Listed::Done(more) => {
                rows.extend(more);
                Listed::Done(rows)
            }
            Listed::Cut {
                rows: more,
                complete_to,
                failure,
            } => {
                rows.extend(more);
                Listed::Cut {
                    rows,
                    complete_to,
                    failure,
                }
            }
        }
    })
}

/// Reads the session from an organisation trail's log group with Logs
/// Insights: the engine counts what it can (by service, event and error,
/// and per minute), the per-minute counts plan listing windows of under
/// 10,000 events, and the windows are listed `budget.concurrency` at a time
/// into `summary`. Returns what was covered; the engine's counts are set on
/// the summary, so totals stay exact even when listing is cut short.
pub async fn read_logs_insights(
    engine: &dyn LogsInsights,
    clock: &dyn Clock,
    session: &Session,
    group: &LogGroup,
    budget: Budget,
    summary: &Mutex<Summary>,
) -> Coverage {
    let lister = Lister {
        engine,
        clock,
        group,
        filter: insights::session_filter(&session.account, &session.permission_set_name, &session.user_name),
        deadline: budget.deadline,
        cap: budget.rows_per_query,
        requests: std::sync::atomic::AtomicU64::new(0),
    };
    let mut cov = Coverage::start(format!("log group {}", group.name), session.start, session.end);
    let stats = |query: String| InsightsQuery {
        log_group: group.name.clone(),
        start: session.start,
        end: session.end,
        query,
        limit: budget.rows_per_query,
    };
    let counts_query = stats(insights::counts_query(&lister.filter));
    let minutes_query = stats(insights::minutes_query(&lister.filter));
    let (counts, minutes) = futures_util::future::join(
        run_query(engine, clock, &counts_query, budget.deadline, &lister.requests),
        run_query(engine, clock, &minutes_query, budget.deadline, &lister.requests),
    )
    .await;
    let engine_counts = match counts {
        Ok(Ran::Rows(rows)) if rows.len() < budget.rows_per_query as usize => {
            Some(insights::parse_counts(&rows))
        }
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "Logs Insights counting failed; counting the listed events instead");
            None
        }
    };
    let windows = match minutes {
        Ok(Ran::Rows(rows)) => insights::plan_windows(
            session.start,
            session.end,
            &insights::parse_minutes(&rows),
            u64::from(budget.rows_per_query) * insights::PLANNED_SHARE.0 / insights::PLANNED_SHARE.1,
        ),
        _ => vec![(session.start, session.end)],
    };
    let listings: Vec<_> = windows.into_iter().map(|w| list_window(&lister, w)).collect();
    let mut listings = futures_util::stream::iter(listings).buffered(budget.concurrency.max(1));
    let mut gap = false;
    while let Some(listed) = listings.next().await {
        let (rows, cut) = match listed {
            Listed::Done(rows) => (rows, None),
            Listed::Cut {
                rows,
                complete_to,
                failure,
            } => (rows, Some((complete_to, failure))),
        };
        let mut kept = Vec::with_capacity(rows.len());
        for row in rows {
            let message = row.iter().find(|(f, _)| f == "@message").map(|(_, v)| v.as_str());
            match message.map(AuditEvent::from_cloudtrail_json) {
                Some(Ok(event)) if session.keeps(&event) => kept.push(event),
                Some(Ok(_)) => cov.left_out += 1,
                _ => cov.unreadable += 1,
            }
        }
        cov.events += kept.len() as u64;
        lock(summary).extend(kept);
        // The first window cut short ends what is complete; later windows
        // that finished still add their events.
        if let Some((complete_to, failure)) = cut {
            if !gap {
                cov.complete_to = complete_to;
                cov.failure = failure;
            }
            gap = true;
        }
    }
    if !gap {
        cov.complete_to = session.end;
    }
    drop(listings);
    cov.requests = lister.requests.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(counts) = engine_counts {
        if gap {
            cov.unread = Some(Unread::Exactly(counts.total.saturating_sub(cov.events)));
        }
        lock(summary).set_engine_counts(counts);
    } else if gap {
        cov.unread = Some(Unread::Unknown);
    }
    cov
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn session_roles_match_the_permission_set_exactly() {
        let hex = "0123456789abcdef";
        for (role, set, expected) in [
            (format!("AWSReservedSSO_Admin_{hex}"), "Admin", true),
            (
                format!("AWSReservedSSO_Admin_{}", hex.to_uppercase()),
                "Admin",
                true,
            ),
            // Another permission set whose name starts with ours.
            (format!("AWSReservedSSO_Admin_ReadOnly_{hex}"), "Admin", false),
            (format!("AWSReservedSSO_AdminX_{hex}"), "Admin", false),
            (
                format!("AWSReservedSSO_Admin_ReadOnly_{hex}"),
                "Admin_ReadOnly",
                true,
            ),
            // The suffix is exactly sixteen hex digits.
            ("AWSReservedSSO_Admin_0123456789abcde".to_string(), "Admin", false),
            (
                "AWSReservedSSO_Admin_0123456789abcdef0".to_string(),
                "Admin",
                false,
            ),
            (
                "AWSReservedSSO_Admin_0123456789abcdeg".to_string(),
                "Admin",
                false,
            ),
            ("AWSReservedSSO_Admin_".to_string(), "Admin", false),
            // Not Identity Center's role at all.
            (format!("MyAWSReservedSSO_Admin_{hex}"), "Admin", false),
            (format!("AWSReservedSSO_admin_{hex}"), "Admin", false),
        ] {
            assert_eq!(is_session_role_of(&role, set), expected, "{role} as {set}");
        }
    }

    #[test]
    fn a_lookalike_permission_sets_session_is_not_ours() {
        let ours: serde_json::Value =
            serde_json::from_str(&event("TerminateInstances", "ec2.amazonaws.com", false)).unwrap();
        let lookalike = serde_json::to_string(&ours).unwrap().replace(
            "AWSReservedSSO_BreakGlassAdmin_",
            "AWSReservedSSO_BreakGlassAdmin_ReadOnly_",
        );
        let parsed = |raw: &str| AuditEvent::from_cloudtrail_json(raw).unwrap();
        assert!(
            parsed(&serde_json::to_string(&ours).unwrap())
                .in_session_of("BreakGlassAdmin", "alice@example.com")
        );
        assert!(!parsed(&lookalike).in_session_of("BreakGlassAdmin", "alice@example.com"));
        assert!(parsed(&lookalike).in_session_of("BreakGlassAdmin_ReadOnly", "alice@example.com"));
    }

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
            "requestParameters": {"roleName": "<script>alert(1)</script>", "policyDocument": {"Statement": []}},
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
        assert!(AuditEvent::from_cloudtrail_json("[]").is_err());
    }

    #[test]
    fn odd_shapes_read_as_absent_not_as_failures() {
        let raw = r#"{"eventID":"x","eventTime":"2026-11-30T09:10:00Z","eventSource":"ec2.amazonaws.com",
            "eventName":"RunInstances","readOnly":"false","userAgent":{"nested":[1,2]},"sourceIPAddress":7,
            "errorCode":null,"requestParameters":{"instancesSet":{"items":[{"instanceId":"i-1"},{"instanceId":"i-2"}]}}}"#;
        let e = AuditEvent::from_cloudtrail_json(raw).unwrap();
        assert_eq!(e.read_only, Some(false));
        assert_eq!(e.user_agent, None);
        assert_eq!(e.source_ip.as_deref(), Some("7"));
        assert_eq!(e.error_code, None);
        assert_eq!(e.resource.as_deref(), Some("i-1 and 1 more"));
        let escaped = r#"{"eventID":"a\"b","eventTime":"2026-11-30T09:10:00Z","eventName":"x\u003cy"}"#;
        let e = AuditEvent::from_cloudtrail_json(escaped).unwrap();
        assert_eq!((e.event_id.as_str(), e.event_name.as_str()), ("a\"b", "x<y"));
    }

    #[test]
    fn resources_are_named_from_the_request_for_common_services() {
        let named = |source: &str, params: serde_json::Value| {
            let raw = serde_json::json!({"eventID": "1", "eventTime": "2026-11-30T09:10:00Z",
                "eventSource": source, "eventName": "X", "requestParameters": params});
            AuditEvent::from_cloudtrail_json(&raw.to_string())
                .unwrap()
                .resource
        };
        assert_eq!(
            named(
                "s3.amazonaws.com",
                serde_json::json!({"bucketName": "logs", "key": "a/b.txt", "Host": "h"})
            )
            .as_deref(),
            Some("logs/a/b.txt")
        );
        assert_eq!(
            named(
                "iam.amazonaws.com",
                serde_json::json!({"roleName": "Ops", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
            )
            .as_deref(),
            Some("Ops / arn:aws:iam::aws:policy/AdministratorAccess")
        );
        assert_eq!(
            named("iam.amazonaws.com", serde_json::json!({"policyArn": "arn:p"})).as_deref(),
            Some("arn:p")
        );
        assert_eq!(
            named(
                "lambda.amazonaws.com",
                serde_json::json!({"functionName": "f", "name": "n"})
            )
            .as_deref(),
            Some("f")
        );
        assert_eq!(
            named(
                "ecs.amazonaws.com",
                serde_json::json!({"cluster": "prod", "service": "web"})
            )
            .as_deref(),
            Some("prod / web")
        );
        assert_eq!(
            named("unknown.amazonaws.com", serde_json::json!({"tableName": "t"})).as_deref(),
            Some("t")
        );
        let raw = serde_json::json!({"eventID": "1", "eventTime": "2026-11-30T09:10:00Z", "eventSource": "kms.amazonaws.com",
            "requestParameters": null, "resources": [{"ARN": "arn:aws:kms:eu-west-1:1:key/k", "type": "AWS::KMS::Key"}]});
        assert_eq!(
            AuditEvent::from_cloudtrail_json(&raw.to_string())
                .unwrap()
                .resource
                .as_deref(),
            Some("arn:aws:kms:eu-west-1:1:key/k")
        );
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
        assert!(is_denial("AccessDenied") && is_denial("Client.UnauthorizedOperation"));
        assert!(!is_denial("ThrottlingException"));
    }

    #[test]
    fn log_groups_are_named_or_given_by_arn() {
        assert_eq!(
            LogGroup::parse("aws-cloudtrail-logs-o-abc/org").unwrap(),
            LogGroup {
                name: "aws-cloudtrail-logs-o-abc/org".into(),
                region: None,
                account: None
            }
        );
        for arn in [
            "arn:aws:logs:eu-west-1:111122223333:log-group:org-trail:*",
            "arn:aws:logs:eu-west-1:111122223333:log-group:org-trail",
        ] {
            let g = LogGroup::parse(arn).unwrap();
            assert_eq!(g.name, "org-trail");
            assert_eq!(g.region.as_deref(), Some("eu-west-1"));
            assert_eq!(g.account.unwrap().as_str(), "111122223333");
        }
        for bad in [
            "",
            "arn:aws:s3:::bucket",
            "arn:aws:logs:eu-west-1:1:log-group:x",
            "a b",
            "x\"y",
        ] {
            assert!(LogGroup::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coverage_says_what_was_read() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut c = Coverage::start("eu-west-1", t("2026-11-30T09:00:00Z"), t("2026-11-30T15:00:00Z"));
        c.complete_to = t("2026-11-30T15:00:00Z");
        assert!(c.complete());
        assert_eq!(c.statement(), None);
        c.complete_to = t("2026-11-30T14:05:00Z");
        c.unread = Some(Unread::About(40_000));
        assert_eq!(
            c.statement().unwrap(),
            "complete to 2026-11-30 14:05:00 UTC in eu-west-1; about 40,000 events not read (the report ran out of time)"
        );
        c.unread = Some(Unread::Exactly(1_234_567));
        c.failure = Some("AccessDenied".into());
        c.unreadable = 2;
        assert_eq!(
            c.statement().unwrap(),
            "complete to 2026-11-30 14:05:00 UTC in eu-west-1; 1,234,567 events not read (stopped by an error: AccessDenied); eu-west-1: 2 events could not be read"
        );
    }

    #[test]
    fn unread_events_are_estimated_from_the_rate_read() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let session = Session {
            account: "123456789012".parse().unwrap(),
            permission_set_name: "P".into(),
            user_name: "u".into(),
            start: t("2026-11-30T09:00:00Z"),
            end: t("2026-11-30T13:00:00Z"),
        };
        let mut c = Coverage::start("r", session.start, session.end);
        c.complete_to = t("2026-11-30T10:00:00Z");
        c.events = 1_000;
        // One hour complete, plus the newest half hour of the next slice.
        let partial = Some((t("2026-11-30T10:00:00Z"), t("2026-11-30T10:30:00Z")));
        assert_eq!(estimate_unread(&c, &session, partial), Unread::About(1_667));
        c.events = 0;
        c.complete_to = session.start;
        assert_eq!(estimate_unread(&c, &session, None), Unread::Unknown);
    }
}
