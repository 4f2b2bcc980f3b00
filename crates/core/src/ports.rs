//! The outside world, as seen from the domain. Each trait is implemented once
//! for real in `break-glass-adapters` (AWS SDK, Slack Web API) and, where a
//! test needs it, by a fake. Adapters translate their errors into
//! [`PortError`] with a [`PortErrorKind`], so retry decisions live here, in
//! one place, not in each SDK call.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::audit::AuditEvent;
use crate::domain::{AccountId, PermissionSetArn, SlackUserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortErrorKind {
    /// Rate limited: back off and try again.
    Throttled,
    /// A concurrent change (Identity Center's create/delete race).
    Conflict,
    NotFound,
    AccessDenied,
    /// Network trouble, timeouts, 5xx: worth another try.
    Transient,
    /// The request itself was refused as invalid.
    Invalid,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{service} {operation} failed ({kind:?}): {message}")]
pub struct PortError {
    pub kind: PortErrorKind,
    pub service: &'static str,
    pub operation: &'static str,
    pub message: String,
}

impl PortError {
    pub fn new(
        kind: PortErrorKind,
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            service,
            operation,
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            PortErrorKind::Throttled | PortErrorKind::Conflict | PortErrorKind::Transient
        )
    }
}

// ---------------------------------------------------------------- Step Functions

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started {
        execution_arn: String,
    },
    /// An execution with this name exists (running or not) with another input.
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    Running,
    /// Succeeded, failed, timed out, aborted: any state it will not leave.
    Ended(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningExecution {
    pub name: String,
    /// Its original input: who asked for what, for how long.
    pub input: String,
    /// Its grant section, once its grant step has finished (read from its
    /// history): whether the access it holds was pre-existing.
    pub grant: Option<crate::contract::Grant>,
}

/// This deployment's state machine.
#[async_trait]
pub trait Executions: Send + Sync + Debug {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError>;
    async fn status(&self, name: &str) -> Result<Option<ExecutionStatus>, PortError>;
    /// Every running execution with its input.
    async fn running(&self) -> Result<Vec<RunningExecution>, PortError>;
}

// ------------------------------------------------------------- Identity Center

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisioningStatus {
    InProgress,
    Succeeded,
    Failed { reason: Option<String> },
}

/// The answer to an asynchronous create or delete, and to polling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioning {
    pub request_id: String,
    pub status: ProvisioningStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSetInfo {
    pub name: String,
    /// ISO-8601 (`PT1H`); Identity Center's default when absent is one hour.
    pub session_duration: Option<String>,
}

/// One Identity Center instance's account assignments, for users.
#[async_trait]
pub trait IdentityCenter: Send + Sync + Debug {
    /// The user principal ids assigned `permission_set` in `account`
    /// (all pages). Group assignments are not listed.
    async fn assigned_users(
        &self,
        account: &AccountId,
        permission_set: &PermissionSetArn,
    ) -> Result<Vec<String>, PortError>;
    async fn create_assignment(
        &self,
        account: &AccountId,
        permission_set: &PermissionSetArn,
        user_id: &str,
    ) -> Result<Provisioning, PortError>;
    async fn creation_status(&self, request_id: &str) -> Result<Provisioning, PortError>;
    async fn delete_assignment(
        &self,
        account: &AccountId,
        permission_set: &PermissionSetArn,
        user_id: &str,
    ) -> Result<Provisioning, PortError>;
    async fn deletion_status(&self, request_id: &str) -> Result<Provisioning, PortError>;
    async fn permission_set(&self, permission_set: &PermissionSetArn)
    -> Result<PermissionSetInfo, PortError>;
}

// ---------------------------------------------------------------- Identity Store

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupAttribute {
    /// `emails.value`
    Email,
    /// `userName`
    UserName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub user_id: String,
    pub user_name: String,
    pub display_name: Option<String>,
}

#[async_trait]
pub trait Directory: Send + Sync + Debug {
    /// `Ok(None)` when nobody matches. An ambiguous match is an error of kind
    /// [`PortErrorKind::Conflict`].
    async fn find_user(
        &self,
        attribute: LookupAttribute,
        value: &str,
    ) -> Result<Option<DirectoryUser>, PortError>;
}

// ------------------------------------------------------------------------ Slack

#[async_trait]
pub trait Slack: Send + Sync + Debug {
    /// The e-mail on the user's profile (`users.info`), if they have one.
    async fn user_email(&self, user: &SlackUserId) -> Result<Option<String>, PortError>;
    /// `chat.postMessage`, in `thread_ts`'s thread when given.
    async fn post_message(&self, channel: &str, thread_ts: Option<&str>, text: &str)
    -> Result<(), PortError>;
    /// An ephemeral reply through an interaction's `response_url`.
    async fn respond_ephemeral(&self, response_url: &str, text: &str) -> Result<(), PortError>;
}

// ----------------------------------------------------------------------- E-mail

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[async_trait]
pub trait Mailer: Send + Sync + Debug {
    /// Returns the provider's message id.
    async fn send(&self, email: &Email) -> Result<String, PortError>;
}

// ------------------------------------------------------------------ Audit trail

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub account: AccountId,
    pub region: String,
    /// The role session name to look up: the Identity Center user name.
    pub user_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One page of a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next_token: Option<String>,
    /// Events the source returned that could not be read.
    pub unreadable: usize,
}

/// Where the record of what a user did comes from: CloudTrail `LookupEvents`
/// today; an organisation trail in CloudWatch Logs is the scale path. Paging,
/// pacing and retries are the caller's (see `audit::collect`), so every
/// source gets them the same way.
#[async_trait]
pub trait AuditTrail: Send + Sync + Debug {
    async fn lookup_page(&self, query: &AuditQuery, next_token: Option<&str>)
    -> Result<AuditPage, PortError>;
}

// ----------------------------------------------------------------------- Alerts

#[async_trait]
pub trait Alerts: Send + Sync + Debug {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError>;
}
