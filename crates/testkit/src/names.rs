//! An [`IdentityCenter`] that only names permission sets: for tests of the
//! Slack side (the modal, App Home), which never assign anything.

use async_trait::async_trait;
use break_glass_core::domain::{AccountId, PermissionSetArn};
use break_glass_core::ports::{IdentityCenter, PermissionSetInfo, PortError, PortErrorKind, Provisioning};

/// Every permission set is called `BreakGlassAdmin`; anything else fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct NamesOnly;

fn unused(operation: &'static str) -> PortError {
    PortError::new(
        PortErrorKind::Other,
        "sso",
        operation,
        "this stand-in only names permission sets",
    )
}

#[async_trait]
impl IdentityCenter for NamesOnly {
    async fn assigned_users(&self, _: &AccountId, _: &PermissionSetArn) -> Result<Vec<String>, PortError> {
        Err(unused("ListAccountAssignments"))
    }
    async fn create_assignment(
        &self,
        _: &AccountId,
        _: &PermissionSetArn,
        _: &str,
    ) -> Result<Provisioning, PortError> {
        Err(unused("CreateAccountAssignment"))
    }
    async fn creation_status(&self, _: &str) -> Result<Provisioning, PortError> {
        Err(unused("DescribeAccountAssignmentCreationStatus"))
    }
    async fn delete_assignment(
        &self,
        _: &AccountId,
        _: &PermissionSetArn,
        _: &str,
    ) -> Result<Provisioning, PortError> {
        Err(unused("DeleteAccountAssignment"))
    }
    async fn deletion_status(&self, _: &str) -> Result<Provisioning, PortError> {
        Err(unused("DescribeAccountAssignmentDeletionStatus"))
    }
    async fn permission_set(&self, _: &PermissionSetArn) -> Result<PermissionSetInfo, PortError> {
        Ok(PermissionSetInfo {
            name: "BreakGlassAdmin".into(),
            session_duration: Some("PT1H".into()),
        })
    }
}
