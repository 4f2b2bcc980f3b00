//! Canned Identity Center answers for aws-smithy-mocks: the behaviour moto
//! cannot show (IN_PROGRESS, FAILED, conflicts, throttling).

use aws_sdk_ssoadmin::types::{
    AccountAssignment, AccountAssignmentOperationStatus, PermissionSet, PrincipalType, StatusValues,
};

pub fn status(
    value: StatusValues,
    request_id: &str,
    reason: Option<&str>,
) -> AccountAssignmentOperationStatus {
    AccountAssignmentOperationStatus::builder()
        .status(value)
        .request_id(request_id)
        .set_failure_reason(reason.map(str::to_string))
        .build()
}

pub fn user_assignments(account: &str, permission_set_arn: &str, users: &[&str]) -> Vec<AccountAssignment> {
    users
        .iter()
        .map(|u| {
            AccountAssignment::builder()
                .account_id(account)
                .permission_set_arn(permission_set_arn)
                .principal_type(PrincipalType::User)
                .principal_id(*u)
                .build()
        })
        .collect()
}

pub fn permission_set(arn: &str, name: &str, session: &str) -> PermissionSet {
    PermissionSet::builder()
        .permission_set_arn(arn)
        .name(name)
        .session_duration(session)
        .build()
}
