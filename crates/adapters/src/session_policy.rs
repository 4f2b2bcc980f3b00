//! [`SessionPolicy`] on IAM: the session-revocation customer managed policy
//! in each target account, read and written through the audit role there
//! (`infrastructure/modules/target-account` allows it exactly these five
//! operations on exactly this policy).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_iam::Client;
use aws_sdk_iam::config::timeout::TimeoutConfig;
use break_glass_core::domain::AccountId;
use break_glass_core::ports::{PortError, PortErrorKind, SessionPolicy};
use break_glass_core::sessions::{PolicyState, PolicyVersion};
use chrono::{DateTime, Utc};

use crate::audit::audit_role_credentials_as;
use crate::error::classify;

const SERVICE: &str = "iam";

#[derive(Debug)]
pub struct IamSessionPolicy {
    sdk: SdkConfig,
    audit_role_name: String,
    policy_name: String,
    clients: Mutex<HashMap<String, Client>>,
}

impl IamSessionPolicy {
    pub fn new(sdk: &SdkConfig, audit_role_name: impl Into<String>, policy_name: impl Into<String>) -> Self {
        Self {
            sdk: sdk.clone(),
            audit_role_name: audit_role_name.into(),
            policy_name: policy_name.into(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn region(&self) -> String {
        self.sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into())
    }

    fn policy_arn(&self, account: &AccountId) -> String {
        let region = self.region();
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        format!(
            "arn:{partition}:iam::{}:policy/{}",
            account.as_str(),
            self.policy_name
        )
    }

    async fn client(&self, account: &AccountId) -> Result<Client, PortError> {
        if let Some(client) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account.as_str())
        {
            return Ok(client.clone());
        }
        let credentials = audit_role_credentials_as(
            &self.sdk,
            account.as_str(),
            &self.region(),
            &self.audit_role_name,
            "break-glass-sessions",
        )
        .await?;
        // Each call bounded, so ending sessions can never hold the revoke up
        // for long (the caller bounds the whole step too).
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(20))
            .build();
        let config = aws_sdk_iam::config::Builder::from(&self.sdk)
            .credentials_provider(credentials)
            .timeout_config(timeouts)
            .build();
        let client = Client::from_conf(config);
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.as_str().to_string(), client.clone());
        Ok(client)
    }
}

#[async_trait]
impl SessionPolicy for IamSessionPolicy {
    async fn read(&self, account: &AccountId) -> Result<PolicyState, PortError> {
        let client = self.client(account).await?;
        let arn = self.policy_arn(account);
        let policy = client
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetPolicy", e))?;
        let default = policy.policy.and_then(|p| p.default_version_id).ok_or_else(|| {
            PortError::new(PortErrorKind::Other, SERVICE, "GetPolicy", "no default version")
        })?;
        let version = client
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(&default)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetPolicyVersion", e))?;
        let document = version.policy_version.and_then(|v| v.document).ok_or_else(|| {
            PortError::new(PortErrorKind::Other, SERVICE, "GetPolicyVersion", "no document")
        })?;
        let listed = client
            .list_policy_versions()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "ListPolicyVersions", e))?;
        let versions = listed
            .versions
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| {
                Some(PolicyVersion {
                    id: v.version_id?,
                    is_default: v.is_default_version,
                    created: v
                        .create_date
                        .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
                        .unwrap_or_default(),
                })
            })
            .collect();
        Ok(PolicyState {
            document: url_decoded(&document),
            versions,
        })
    }

    async fn delete_version(&self, account: &AccountId, version_id: &str) -> Result<(), PortError> {
        let client = self.client(account).await?;
        client
            .delete_policy_version()
            .policy_arn(self.policy_arn(account))
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DeletePolicyVersion", e))?;
        Ok(())
    }

    async fn write_default(&self, account: &AccountId, document: &str) -> Result<(), PortError> {
        let client = self.client(account).await?;
        client
            .create_policy_version()
            .policy_arn(self.policy_arn(account))
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "CreatePolicyVersion", e))?;
        Ok(())
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986); a document that is
/// already JSON (moto returns some that way) is left as it is.
fn url_decoded(document: &str) -> String {
    if document.trim_start().starts_with('{') {
        return document.to_string();
    }
    let bytes = document.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_url_decoded_once() {
        assert_eq!(
            url_decoded("%7B%22Version%22%3A%222012-10-17%22%7D"),
            r#"{"Version":"2012-10-17"}"#
        );
        assert_eq!(url_decoded(r#"{"a":"100%"}"#), r#"{"a":"100%"}"#);
    }
}
