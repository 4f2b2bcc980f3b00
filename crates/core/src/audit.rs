//! CloudTrail events as the report sees them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
