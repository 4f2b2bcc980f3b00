//! [`AuditTrail`] on CloudTrail `LookupEvents`, in the target account
//! (through an assumed audit role when configured) and any region; and the
//! audit role itself, which the Logs Insights source (`audit_logs`) assumes
//! too when the trail's log group is in another account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::config::{Credentials, Region};
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime;
use break_glass_core::audit::AuditEvent;
use break_glass_core::ports::{AuditPage, AuditQuery, AuditTrail, PortError, PortErrorKind};

use crate::error::classify;

const SERVICE: &str = "cloudtrail";

/// Assumed credentials are renewed this long before they expire: a report
/// reads for up to 12 minutes, and a warm Lambda keeps its clients.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Credentials for `role` in `account`, assumed with the function's own,
/// and when they expire.
pub(crate) async fn assume_audit_role(
    sdk: &SdkConfig,
    account: &str,
    region: &str,
    role: &str,
) -> Result<(Credentials, Option<SystemTime>), PortError> {
    let role_arn = format!("arn:{}:iam::{account}:role/{role}", partition(region));
    let assumed = aws_sdk_sts::Client::new(sdk)
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("break-glass-report")
        .duration_seconds(3600)
        .send()
        .await
        .map_err(|e| classify("sts", "AssumeRole", e))?;
    let creds = assumed.credentials.ok_or_else(|| {
        PortError::new(
            PortErrorKind::Other,
            "sts",
            "AssumeRole",
            "no credentials in answer",
        )
    })?;
    let expires = SystemTime::try_from(creds.expiration).ok();
    Ok((
        Credentials::new(
            creds.access_key_id,
            creds.secret_access_key,
            Some(creds.session_token),
            expires,
            "break-glass-audit-role",
        ),
        expires,
    ))
}

/// Whether a client made with credentials expiring at `expires` is still
/// good to use.
pub(crate) fn fresh(expires: Option<SystemTime>) -> bool {
    expires.is_none_or(|at| SystemTime::now() + RENEW_BEFORE < at)
}

/// A client per (account, region), with when its credentials expire.
type Clients = HashMap<(String, String), (Client, Option<SystemTime>)>;

#[derive(Debug)]
pub struct CloudTrailLookup {
    sdk: SdkConfig,
    audit_role_name: Option<String>,
    clients: Mutex<Clients>,
}

impl CloudTrailLookup {
    /// Without `audit_role_name`, the function's own credentials are used
    /// (the report runs in the account it audits).
    pub fn new(sdk: &SdkConfig, audit_role_name: Option<String>) -> Self {
        Self {
            sdk: sdk.clone(),
            audit_role_name,
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self, account: &str, region: &str) -> Result<Client, PortError> {
        let key = (account.to_string(), region.to_string());
        if let Some((client, expires)) = self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && fresh(*expires)
        {
            return Ok(client.clone());
        }
        let mut config =
            aws_sdk_cloudtrail::config::Builder::from(&self.sdk).region(Region::new(region.to_string()));
        let mut expires = None;
        if let Some(role) = &self.audit_role_name {
            let (creds, until) = assume_audit_role(&self.sdk, account, region, role).await?;
            config = config.credentials_provider(creds);
            expires = until;
        }
        let client = Client::from_conf(config.build());
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (client.clone(), expires));
        Ok(client)
    }
}

#[async_trait]
impl AuditTrail for CloudTrailLookup {
    async fn lookup_page(
        &self,
        query: &AuditQuery,
        next_token: Option<&str>,
    ) -> Result<AuditPage, PortError> {
        let client = self.client(query.account.as_str(), &query.region).await?;
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::Username)
            .attribute_value(&query.user_name)
            .build()
            .map_err(|e| PortError::new(PortErrorKind::Invalid, SERVICE, "LookupEvents", e.to_string()))?;
        let out = client
            .lookup_events()
            .lookup_attributes(attribute)
            .start_time(DateTime::from_secs(query.start.timestamp()))
            .end_time(DateTime::from_secs(query.end.timestamp()))
            .max_results(50)
            .set_next_token(next_token.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(SERVICE, "LookupEvents", e))?;
        let mut page = AuditPage {
            next_token: out.next_token,
            ..AuditPage::default()
        };
        for event in out.events.unwrap_or_default() {
            match event
                .cloud_trail_event
                .as_deref()
                .map(AuditEvent::from_cloudtrail_json)
            {
                Some(Ok(parsed)) => page.events.push(parsed),
                _ => page.unreadable += 1,
            }
        }
        Ok(page)
    }
}
