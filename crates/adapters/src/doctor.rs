//! [`Deployment`] for `doctor`: the read-only calls that check a deployment
//! (Secrets Manager, Slack `auth.test`, sso-admin, SES, STS and CloudTrail,
//! Step Functions). Nothing here grants, changes or sends anything.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudtrail::config::Region;
use aws_smithy_types::DateTime;
use break_glass_core::config::SecretSource;
use break_glass_core::domain::{AccountId, InstanceArn, PermissionSetArn};
use break_glass_core::ports::{
    AuditAccessError, Deployment, PermissionSetInfo, PortError, PortErrorKind, SlackAuth,
};

use crate::audit::audit_role_credentials;
use crate::error::classify;
use crate::identity_center::SsoAdmin;
use crate::slack::{BotToken, SlackWebApi};

#[derive(Debug, Clone)]
pub struct AwsDeployment {
    sdk: SdkConfig,
    /// For sso-admin: Identity Center's home region.
    sso: aws_sdk_ssoadmin::Client,
    secrets: aws_sdk_secretsmanager::Client,
    ses: aws_sdk_sesv2::Client,
    sfn: aws_sdk_sfn::Client,
    slack_api_url: String,
    /// A CloudTrail stand-in (tests); `None`: the SDK's endpoint.
    cloudtrail_endpoint: Option<String>,
}

impl AwsDeployment {
    /// `sso_region`: Identity Center's home region when it is not `sdk`'s.
    pub fn new(sdk: &SdkConfig, sso_region: Option<&str>, slack_api_url: &str) -> Self {
        Self {
            sdk: sdk.clone(),
            sso: aws_sdk_ssoadmin::Client::new(&crate::in_region(sdk, sso_region)),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            ses: aws_sdk_sesv2::Client::new(sdk),
            sfn: aws_sdk_sfn::Client::new(sdk),
            slack_api_url: slack_api_url.to_string(),
            cloudtrail_endpoint: None,
        }
    }

    /// Sends CloudTrail calls to `url` (a stand-in) instead.
    pub fn with_cloudtrail_endpoint(mut self, url: impl Into<String>) -> Self {
        self.cloudtrail_endpoint = Some(url.into());
        self
    }

    fn region(&self) -> String {
        self.sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into())
    }
}

#[async_trait]
impl Deployment for AwsDeployment {
    async fn secret(&self, source: &SecretSource) -> Result<String, PortError> {
        crate::secrets::resolve(&self.secrets, source).await
    }

    async fn slack_auth(&self, bot_token: &str) -> Result<SlackAuth, PortError> {
        SlackWebApi::new(&self.slack_api_url, Some(BotToken::new(bot_token)))
            .auth_test()
            .await
    }

    async fn permission_set(
        &self,
        instance: &InstanceArn,
        permission_set: &PermissionSetArn,
    ) -> Result<PermissionSetInfo, PortError> {
        use break_glass_core::ports::IdentityCenter;
        SsoAdmin::new(self.sso.clone(), instance.clone())
            .permission_set(permission_set)
            .await
    }

    async fn provisioned_permission_sets(
        &self,
        instance: &InstanceArn,
        account: &AccountId,
    ) -> Result<Vec<String>, PortError> {
        let mut pages = self
            .sso
            .list_permission_sets_provisioned_to_account()
            .instance_arn(instance.as_str())
            .account_id(account.as_str())
            .into_paginator()
            .send();
        let mut listed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("sso", "ListPermissionSetsProvisionedToAccount", e))?;
            listed.extend(page.permission_sets.unwrap_or_default());
        }
        Ok(listed)
    }

    async fn sending_identity(&self, identity: &str) -> Result<Option<bool>, PortError> {
        match self
            .ses
            .get_email_identity()
            .email_identity(identity)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.verified_for_sending_status)),
            Err(e) => {
                let e = classify("ses", "GetEmailIdentity", e);
                if e.kind == PortErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn audit_access(
        &self,
        account: Option<&AccountId>,
        role: Option<&str>,
    ) -> Result<(), AuditAccessError> {
        let region = self.region();
        let mut config =
            aws_sdk_cloudtrail::config::Builder::from(&self.sdk).region(Region::new(region.clone()));
        if let (Some(account), Some(role)) = (account, role) {
            let credentials = audit_role_credentials(&self.sdk, account.as_str(), &region, role)
                .await
                .map_err(AuditAccessError::AssumeRole)?;
            config = config.credentials_provider(credentials);
        }
        if let Some(url) = &self.cloudtrail_endpoint {
            config = config.endpoint_url(url);
        }
        let now = std::time::SystemTime::now();
        let hour_ago = now - Duration::from_secs(3600);
        aws_sdk_cloudtrail::Client::from_conf(config.build())
            .lookup_events()
            .start_time(DateTime::from(hour_ago))
            .end_time(DateTime::from(now))
            .max_results(1)
            .send()
            .await
            .map_err(|e| AuditAccessError::LookupEvents(classify("cloudtrail", "LookupEvents", e)))?;
        Ok(())
    }

    async fn state_machine_definition(&self, arn: &str) -> Result<Option<String>, PortError> {
        match self
            .sfn
            .describe_state_machine()
            .state_machine_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.definition)),
            Err(e) => {
                let e = classify("states", "DescribeStateMachine", e);
                if e.kind == PortErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn session_policy_exists(
        &self,
        account: &AccountId,
        role: &str,
        policy_name: &str,
    ) -> Result<bool, PortError> {
        let region = self.region();
        let credentials = audit_role_credentials(&self.sdk, account.as_str(), &region, role).await?;
        let client = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&self.sdk)
                .credentials_provider(credentials)
                .build(),
        );
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        let arn = format!("arn:{partition}:iam::{}:policy/{policy_name}", account.as_str());
        match client.get_policy().policy_arn(arn).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = classify("iam", "GetPolicy", e);
                if e.kind == PortErrorKind::NotFound {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn customer_managed_policies(
        &self,
        instance: &InstanceArn,
        permission_set: &PermissionSetArn,
    ) -> Result<Vec<String>, PortError> {
        let mut pages = self
            .sso
            .list_customer_managed_policy_references_in_permission_set()
            .instance_arn(instance.as_str())
            .permission_set_arn(permission_set.as_str())
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify("sso", "ListCustomerManagedPolicyReferencesInPermissionSet", e))?;
            names.extend(
                page.customer_managed_policy_references
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| r.name),
            );
        }
        Ok(names)
    }
}
