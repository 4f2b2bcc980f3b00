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

/// This deployment's state machine.
#[async_trait]
pub trait Executions: Send + Sync + Debug {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError>;
    async fn status(&self, name: &str) -> Result<Option<ExecutionStatus>, PortError>;
    /// `SendTaskSuccess`: wakes the callback task waiting for `token` with
    /// `output`. `Ok(false)` when no task waits for it any more (it timed
    /// out, was woken already, or its execution ended).
    async fn send_task_success(&self, token: &str, output: &str) -> Result<bool, PortError> {
        let _ = (token, output);
        Err(PortError::new(
            PortErrorKind::Other,
            "states",
            "SendTaskSuccess",
            "these executions take no callbacks",
        ))
    }
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
    /// The ids of the groups the user is a direct member of (all pages of
    /// `ListGroupMembershipsForMember`). A stand-in that knows no groups
    /// fails, so a rule by group can never be met by accident.
    async fn group_ids_of(&self, user_id: &str) -> Result<Vec<String>, PortError> {
        let _ = user_id;
        Err(PortError::new(
            PortErrorKind::Other,
            "identitystore",
            "ListGroupMembershipsForMember",
            "this directory does not serve groups",
        ))
    }
    /// The id of the group with this display name (`GetGroupId`); `Ok(None)`
    /// when there is none.
    async fn find_group(&self, display_name: &str) -> Result<Option<String>, PortError> {
        let _ = display_name;
        Err(PortError::new(
            PortErrorKind::Other,
            "identitystore",
            "GetGroupId",
            "this directory does not serve groups",
        ))
    }
}

// ---------------------------------------------------------------- Policy source

/// Where the break-glass policy's rules are kept (an SSM parameter): the
/// document as stored, read and checked by `rules::RuleSet::parse`.
#[async_trait]
pub trait PolicySource: Send + Sync + Debug {
    async fn read_policy(&self) -> Result<String, PortError>;
}

// ------------------------------------------------------------------------ Slack

/// What `users.info` says about a Slack user: enough to tell a full member
/// of our workspace from a guest, a Slack Connect stranger, a bot or a
/// deactivated account. Ids are as Slack sent them; policy checks them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlackProfile {
    /// `profile.email`, when the profile has one (and we may read it).
    pub email: Option<String>,
    /// `team_id`: the workspace the account belongs to.
    pub team_id: Option<String>,
    /// `enterprise_user.enterprise_id`: their Enterprise Grid organisation.
    pub enterprise_id: Option<String>,
    /// A multi-channel guest.
    pub is_restricted: bool,
    /// A single-channel guest.
    pub is_ultra_restricted: bool,
    /// Someone from another organisation, seen through a shared channel.
    pub is_stranger: bool,
    pub deleted: bool,
    pub is_bot: bool,
}

#[async_trait]
pub trait Slack: Send + Sync + Debug {
    /// The user's account and profile (`users.info`).
    async fn user_profile(&self, user: &SlackUserId) -> Result<SlackProfile, PortError>;
    /// The e-mail on the user's profile, if they have one.
    async fn user_email(&self, user: &SlackUserId) -> Result<Option<String>, PortError> {
        Ok(self.user_profile(user).await?.email)
    }
    /// `chat.postMessage`, in `thread_ts`'s thread when given.
    async fn post_message(&self, channel: &str, thread_ts: Option<&str>, text: &str)
    -> Result<(), PortError>;
    /// An ephemeral reply through an interaction's `response_url`.
    async fn respond_ephemeral(&self, response_url: &str, text: &str) -> Result<(), PortError>;
    /// `chat.postMessage` with Block Kit `blocks`; `text` is the
    /// notification and the fallback where blocks are not shown.
    async fn post_blocks(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: &serde_json::Value,
    ) -> Result<(), PortError> {
        let _ = blocks;
        self.post_message(channel, thread_ts, text).await
    }
    /// `chat.postMessage` of a new message (Block Kit `blocks`) whose thread
    /// will carry a request's story: its `ts`.
    async fn start_thread(
        &self,
        channel: &str,
        text: &str,
        blocks: &serde_json::Value,
    ) -> Result<String, PortError> {
        let _ = (channel, text, blocks);
        Err(unsupported("chat.postMessage"))
    }
    /// `views.open`: shows `view` (a modal) to whoever holds `trigger_id`
    /// (valid for 3 s after the click or command).
    async fn open_view(&self, trigger_id: &str, view: &serde_json::Value) -> Result<(), PortError> {
        let _ = (trigger_id, view);
        Err(unsupported("views.open"))
    }
    /// `views.publish`: `user`'s App Home tab becomes `view`.
    async fn publish_home(&self, user: &SlackUserId, view: &serde_json::Value) -> Result<(), PortError> {
        let _ = (user, view);
        Err(unsupported("views.publish"))
    }
}

fn unsupported(operation: &'static str) -> PortError {
    PortError::new(
        PortErrorKind::Other,
        "slack",
        operation,
        "not supported by this Slack",
    )
}

// ----------------------------------------------------------------------- E-mail

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
}

/// A file sent with an e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    /// `text/csv`, say.
    pub content_type: String,
    pub data: Vec<u8>,
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

/// CloudTrail `LookupEvents`: one account and region per call. Paging,
/// pacing, slicing and retries are the caller's (`audit::read_lookup_events`).
#[async_trait]
pub trait AuditTrail: Send + Sync + Debug {
    async fn lookup_page(&self, query: &AuditQuery, next_token: Option<&str>)
    -> Result<AuditPage, PortError>;
}

/// One CloudWatch Logs Insights query over a log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightsQuery {
    pub log_group: String,
    /// Inclusive, whole seconds.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub query: String,
    /// At most 10,000 rows.
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsightsStatus {
    /// Scheduled or running.
    Running,
    Complete,
    /// Failed, cancelled or timed out, as the engine said.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightsResults {
    pub status: InsightsStatus,
    /// Each row's (field, value) pairs, as the engine returned them.
    pub rows: Vec<Vec<(String, String)>>,
}

/// CloudWatch Logs Insights (`StartQuery`, `GetQueryResults`, `StopQuery`)
/// on the log group an organisation trail delivers to. Polling, splitting
/// and retries are the caller's (`audit::read_logs_insights`).
#[async_trait]
pub trait LogsInsights: Send + Sync + Debug {
    /// Returns the query id.
    async fn start_query(&self, query: &InsightsQuery) -> Result<String, PortError>;
    async fn query_results(&self, query_id: &str) -> Result<InsightsResults, PortError>;
    async fn stop_query(&self, query_id: &str) -> Result<(), PortError>;
}

// ----------------------------------------------------------------------- Alerts

#[async_trait]
pub trait Alerts: Send + Sync + Debug {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError>;
}

// ----------------------------------------------------------------- Grant ledger

/// Whether a conditional write landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The stored item's version was not the expected one: somebody else
    /// changed it first. Read again and decide again.
    Stale,
}

/// The grant ledger (see [`crate::ledger`]): one item per Identity Center
/// user, account and permission set, changed only by conditional writes.
#[async_trait]
pub trait Ledger: Send + Sync + Debug {
    /// A strongly consistent read.
    async fn get(
        &self,
        key: &crate::ledger::LedgerKey,
    ) -> Result<Option<crate::ledger::LedgerItem>, PortError>;
    /// Stores `item` if the stored item's version is `expected` (`None`: no
    /// item may exist yet).
    async fn put(
        &self,
        item: &crate::ledger::LedgerItem,
        expected: Option<u64>,
    ) -> Result<Written, PortError>;
    /// Every item that is not closed (granting, held, revoking): what the
    /// reconciler looks through. Served from an index that holds only those.
    async fn open_items(&self) -> Result<Vec<crate::ledger::LedgerItem>, PortError>;
    /// Records that the reconciler found this assignment outside break
    /// glass; `true` when it was not reported in the day before `now` (so
    /// it is reported now, at most once a day).
    async fn note_drift(&self, key: &crate::ledger::LedgerKey, now: DateTime<Utc>)
    -> Result<bool, PortError>;
    /// Takes the lease `name` for `owner` until `until` when
    /// [`crate::sessions::lease_free`] says it may (an item of its own beside
    /// the ledger's, out of the open-items index); `true` when taken.
    async fn take_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError>;
    /// Gives the lease back if `owner` still holds it.
    async fn end_lease(&self, name: &str, owner: &str) -> Result<(), PortError>;
}

// ------------------------------------------------------------ Session policy

/// The session-revocation policy (`crate::sessions`) in target accounts,
/// read and written through the audit role there.
#[async_trait]
pub trait SessionPolicy: Send + Sync + Debug {
    /// The default version's document and every version's id
    /// (`GetPolicy`, `GetPolicyVersion`, `ListPolicyVersions`).
    async fn read(&self, account: &AccountId) -> Result<crate::sessions::PolicyState, PortError>;
    /// `DeletePolicyVersion` (never the default).
    async fn delete_version(&self, account: &AccountId, version_id: &str) -> Result<(), PortError>;
    /// `CreatePolicyVersion` with `SetAsDefault`.
    async fn write_default(&self, account: &AccountId, document: &str) -> Result<(), PortError>;
}

// ----------------------------------------------------------------------- Doctor

/// What Slack's `auth.test` says about a bot token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlackAuth {
    pub team_id: Option<String>,
    pub user_id: Option<String>,
}

/// Why the report could not read CloudTrail the way it will.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditAccessError {
    #[error("{0}")]
    AssumeRole(PortError),
    #[error("{0}")]
    LookupEvents(PortError),
    /// Neither step answered in time.
    #[error("{0}")]
    NoAnswer(PortError),
}

impl From<PortError> for AuditAccessError {
    fn from(e: PortError) -> Self {
        Self::NoAnswer(e)
    }
}

/// The read-only questions `doctor` asks of a deployment
/// (`crate::doctor`). Nothing here grants, changes or sends anything.
#[async_trait]
pub trait Deployment: Send + Sync + Debug {
    /// A secret as the functions read it (Secrets Manager `GetSecretValue`;
    /// a plain value as it is). [`PortErrorKind::NotFound`]: the secret or
    /// its value does not exist.
    async fn secret(&self, source: &crate::config::SecretSource) -> Result<String, PortError>;
    /// Slack `auth.test` with `bot_token`.
    async fn slack_auth(&self, bot_token: &str) -> Result<SlackAuth, PortError>;
    /// `DescribePermissionSet`.
    async fn permission_set(
        &self,
        instance: &crate::domain::InstanceArn,
        permission_set: &PermissionSetArn,
    ) -> Result<PermissionSetInfo, PortError>;
    /// `ListPermissionSetsProvisionedToAccount`, every page: the ARNs.
    async fn provisioned_permission_sets(
        &self,
        instance: &crate::domain::InstanceArn,
        account: &AccountId,
    ) -> Result<Vec<String>, PortError>;
    /// SES `GetEmailIdentity`: `Some(VerifiedForSendingStatus)`, `None`
    /// when there is no such identity.
    async fn sending_identity(&self, identity: &str) -> Result<Option<bool>, PortError>;
    /// Reads CloudTrail as the report does: assumes `role` in `account`
    /// when given, then asks `LookupEvents` for one event of the last hour.
    async fn audit_access(
        &self,
        account: Option<&AccountId>,
        role: Option<&str>,
    ) -> Result<(), AuditAccessError>;
    /// `DescribeStateMachine`'s definition; `None` when there is no such
    /// state machine.
    async fn state_machine_definition(&self, arn: &str) -> Result<Option<String>, PortError>;
    /// `GetPolicy` on the session revocation policy `policy_name` in
    /// `account`, as `role` there (the way revoke-access reaches it):
    /// `Ok(false)` when there is no such policy.
    async fn session_policy_exists(
        &self,
        account: &AccountId,
        role: &str,
        policy_name: &str,
    ) -> Result<bool, PortError>;
    /// `ListCustomerManagedPolicyReferencesInPermissionSet`, every page:
    /// the names referenced.
    async fn customer_managed_policies(
        &self,
        instance: &crate::domain::InstanceArn,
        permission_set: &PermissionSetArn,
    ) -> Result<Vec<String>, PortError>;
}
