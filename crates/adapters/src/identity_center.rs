//! [`IdentityCenter`] on IAM Identity Center's `sso-admin` API.

use async_trait::async_trait;
use aws_sdk_ssoadmin::Client;
use aws_sdk_ssoadmin::types::{AccountAssignmentOperationStatus, PrincipalType, StatusValues, TargetType};
use break_glass_core::domain::{AccountId, InstanceArn, PermissionSetArn};
use break_glass_core::ports::{
    IdentityCenter, PermissionSetInfo, PortError, PortErrorKind, Provisioning, ProvisioningStatus,
};

use crate::error::classify;

const SERVICE: &str = "sso";

#[derive(Debug, Clone)]
pub struct SsoAdmin {
    client: Client,
    instance: InstanceArn,
}

impl SsoAdmin {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, instance: InstanceArn) -> Self {
        Self::new(Client::new(sdk), instance)
    }

    pub fn new(client: Client, instance: InstanceArn) -> Self {
        Self { client, instance }
    }
}

fn provisioning(
    operation: &'static str,
    status: Option<AccountAssignmentOperationStatus>,
) -> Result<Provisioning, PortError> {
    let status = status.ok_or_else(|| {
        PortError::new(
            PortErrorKind::Other,
            SERVICE,
            operation,
            "answer carried no status",
        )
    })?;
    let request_id = status.request_id.unwrap_or_default();
    let state = match status.status {
        Some(StatusValues::Succeeded) => ProvisioningStatus::Succeeded,
        Some(StatusValues::Failed) => ProvisioningStatus::Failed {
            reason: status.failure_reason,
        },
        // IN_PROGRESS, or a value this SDK doesn't know yet: keep polling.
        _ => ProvisioningStatus::InProgress,
    };
    Ok(Provisioning {
        request_id,
        status: state,
    })
}

#[async_trait]
impl IdentityCenter for SsoAdmin {
    async fn assigned_users(
        &self,
        account: &AccountId,
        permission_set: &PermissionSetArn,
    ) -> Result<Vec<String>, PortError> {
        let mut pages = self
            .client
            .list_account_assignments()
            .instance_arn(self.instance.as_str())
            .account_id(account.as_str())
            .permission_set_arn(permission_set.as_str())
            .into_paginator()
            .items()
            .send();
        let mut users = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| classify(SERVICE, "ListAccountAssignments", e))?;
            if item.principal_type == Some(PrincipalType::User)
                && let Some(id) = item.principal_id
                && !users.contains(&id)
            {
                users.push(id);
            }
        }
        Ok(users)
    }

    async fn create_assignment(
        &self,
        account: &AccountId,
        permission_set: &PermissionSetArn,
        user_id: &str,
    ) -> Result<Provisioning, PortError> {
        let out = self
            .client
            .create_account_assignment()
            .instance_arn(self.instance.as_str())
            .target_id(account.as_str())
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(permission_set.as_str())
            .principal_type(PrincipalType::User)
            .principal_id(user_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "CreateAccountAssignment", e))?;
        provisioning("CreateAccountAssignment", out.account_assignment_creation_status)
    }

    async fn creation_status(&self, request_id: &str) -> Result<Provisioning, PortError> {
        let out = self
            .client
            .describe_account_assignment_creation_status()
            .instance_arn(self.instance.as_str())
            .account_assignment_creation_request_id(request_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DescribeAccountAssignmentCreationStatus", e))?;
        provisioning(
            "DescribeAccountAssignmentCreationStatus",
            out.account_assignment_creation_status,
        )
    }

    async fn delete_assignment(
        &self,
        account: &AccountId,
        permission_set: &PermissionSetArn,
        user_id: &str,
    ) -> Result<Provisioning, PortError> {
        let out = self
            .client
            .delete_account_assignment()
            .instance_arn(self.instance.as_str())
            .target_id(account.as_str())
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(permission_set.as_str())
            .principal_type(PrincipalType::User)
            .principal_id(user_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DeleteAccountAssignment", e))?;
        provisioning("DeleteAccountAssignment", out.account_assignment_deletion_status)
    }

    async fn deletion_status(&self, request_id: &str) -> Result<Provisioning, PortError> {
        let out = self
            .client
            .describe_account_assignment_deletion_status()
            .instance_arn(self.instance.as_str())
            .account_assignment_deletion_request_id(request_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DescribeAccountAssignmentDeletionStatus", e))?;
        provisioning(
            "DescribeAccountAssignmentDeletionStatus",
            out.account_assignment_deletion_status,
        )
    }

    async fn permission_set(
        &self,
        permission_set: &PermissionSetArn,
    ) -> Result<PermissionSetInfo, PortError> {
        let out = self
            .client
            .describe_permission_set()
            .instance_arn(self.instance.as_str())
            .permission_set_arn(permission_set.as_str())
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DescribePermissionSet", e))?;
        let ps = out.permission_set.ok_or_else(|| {
            PortError::new(
                PortErrorKind::NotFound,
                SERVICE,
                "DescribePermissionSet",
                "no permission set in answer",
            )
        })?;
        Ok(PermissionSetInfo {
            name: ps
                .name
                .unwrap_or_else(|| permission_set.permission_set_id().to_string()),
            session_duration: ps.session_duration,
        })
    }
}
