//! [`AuditTrail`] on CloudTrail `LookupEvents`, in the target account
//! (through an assumed audit role when configured) and any region; and the
//! audit role itself, which the Logs Insights source (`audit_logs`) assumes
//! too when the trail's log group is in another account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::config::Region;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::DateTime;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use break_glass_core::audit::AuditEvent;
use break_glass_core::ports::{AuditPage, AuditQuery, AuditTrail, PortError, PortErrorKind};

use crate::error::{classify, kind_of};

const SERVICE: &str = "cloudtrail";

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Credentials for `role` in `account`, assumed with the function's own
/// through `aws_config::sts`: the client's identity cache asks for new ones
/// before these expire, so a warm container never signs with stale
/// credentials however long it lives. Assumed once here, so a role that
/// cannot be assumed is named now, as STS's refusal.
pub(crate) async fn audit_role_credentials(
    sdk: &SdkConfig,
    account: &str,
    region: &str,
    role: &str,
) -> Result<SharedCredentialsProvider, PortError> {
    audit_role_credentials_as(sdk, account, region, role, "break-glass-report").await
}

/// [`audit_role_credentials`] under another role session name, so
/// CloudTrail in the target account tells who used the role for what
/// (`break-glass-sessions`: revoke-access and reconcile-access writing the
/// session revocation policy).
pub(crate) async fn audit_role_credentials_as(
    sdk: &SdkConfig,
    account: &str,
    region: &str,
    role: &str,
    session_name: &str,
) -> Result<SharedCredentialsProvider, PortError> {
    let role_arn = format!("arn:{}:iam::{account}:role/{role}", partition(region));
    let provider = AssumeRoleProvider::builder(role_arn)
        .session_name(session_name)
        .session_length(Duration::from_secs(3600))
        .configure(sdk)
        .build()
        .await;
    let first = provider.provide_credentials().await.map_err(assume_role_error)?;
    Ok(SharedCredentialsProvider::new(Probed {
        first: Mutex::new(Some(first)),
        provider,
    }))
}

/// An [`AssumeRoleProvider`] whose first answer is the one its probe got, so
/// the role is not assumed twice for one client.
#[derive(Debug)]
struct Probed {
    first: Mutex<Option<Credentials>>,
    provider: AssumeRoleProvider,
}

impl ProvideCredentials for Probed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match self.first.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(first) => future::ProvideCredentials::ready(Ok(first)),
            None => self.provider.provide_credentials(),
        }
    }
}

/// STS's refusal, classified like any other AWS error.
fn assume_role_error(err: CredentialsError) -> PortError {
    let sdk_error = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>());
    let kind = match (&err, sdk_error) {
        (CredentialsError::ProviderTimedOut(_), _) => PortErrorKind::Transient,
        (_, Some(e)) => kind_of(e.code(), e.raw_response().map(|r| r.status().as_u16())),
        (_, None) => PortErrorKind::Other,
    };
    let message = match sdk_error {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ),
        None => err.to_string(),
    };
    PortError::new(kind, "sts", "AssumeRole", message)
}

/// A client per (account, region), with when its credentials expire.
type Clients = HashMap<(String, String), Client>;

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
        if let Some(client) = self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(client.clone());
        }
        let mut config =
            aws_sdk_cloudtrail::config::Builder::from(&self.sdk).region(Region::new(region.to_string()));
        if let Some(role) = &self.audit_role_name {
            config =
                config.credentials_provider(audit_role_credentials(&self.sdk, account, region, role).await?);
        }
        let client = Client::from_conf(config.build());
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, client.clone());
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
