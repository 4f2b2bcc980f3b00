//! An Identity Center whose deletions are refused (as when the revoking
//! role lost its permission), everything else passed through: for the
//! revoke-fails drill and the reconciler's "revoke failed, finish it later"
//! tests.

use std::sync::Arc;

use async_trait::async_trait;
use break_glass_core::domain::{AccountId, PermissionSetArn};
use break_glass_core::ports::{IdentityCenter, PermissionSetInfo, PortError, PortErrorKind, Provisioning};

#[derive(Debug, Clone)]
pub struct RefusingDeletes(pub Arc<dyn IdentityCenter>);

#[async_trait]
impl IdentityCenter for RefusingDeletes {
    async fn assigned_users(&self, a: &AccountId, p: &PermissionSetArn) -> Result<Vec<String>, PortError> {
        self.0.assigned_users(a, p).await
    }
    async fn create_assignment(
        &self,
        a: &AccountId,
        p: &PermissionSetArn,
        u: &str,
    ) -> Result<Provisioning, PortError> {
        self.0.create_assignment(a, p, u).await
    }
    async fn creation_status(&self, id: &str) -> Result<Provisioning, PortError> {
        self.0.creation_status(id).await
    }
    async fn delete_assignment(
        &self,
        _: &AccountId,
        _: &PermissionSetArn,
        _: &str,
    ) -> Result<Provisioning, PortError> {
        Err(PortError::new(
            PortErrorKind::AccessDenied,
            "sso",
            "DeleteAccountAssignment",
            "AccessDeniedException: deletions are refused in this drill",
        ))
    }
    async fn deletion_status(&self, id: &str) -> Result<Provisioning, PortError> {
        self.0.deletion_status(id).await
    }
    async fn permission_set(&self, p: &PermissionSetArn) -> Result<PermissionSetInfo, PortError> {
        self.0.permission_set(p).await
    }
}
