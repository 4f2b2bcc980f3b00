//! grant-access: give the clicker the permission set in the account, and
//! only say so once Identity Center confirms it.
//!
//! Before creating anything it finds out whether the user already holds the
//! assignment, and why: standing access (pre-existing, never to be removed),
//! or another running break-glass execution (shared: the last holder's revoke
//! removes it). After a create has been sent, any failure to confirm it ends
//! in a delete that is verified, or in an error the state machine alerts on.

mod config;

use break_glass_core::ErrorType;
use std::time::Duration;

use break_glass_core::access::{
    self, CreateError, IdentityError, LedgerError, Limits, Provisioned, acquire, await_creation,
    create_assignment, mark_granted, release, resolve_requester, tell_thread, utc_time,
};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{
    AccessRequest, AssignmentSource, ContractError, Execution, Grant, whole_seconds,
};
use break_glass_core::ledger::{Claim, LedgerKey, Then};
use break_glass_core::policy::ProfileRefusal;
use break_glass_core::ports::{
    Directory, DirectoryUser, IdentityCenter, Ledger, PortError, PortErrorKind, Slack,
};
use break_glass_core::requester::{
    Member, PolicyRules, PolicyUnavailable, RulesRefusal, decide, member_groups,
};
use break_glass_core::retry::with_retries;
use break_glass_core::retry::{Backoff, Deadline};
use break_glass_core::rules::{Allowed, RuleRefusal, Wanted};
pub use config::Config;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub identity_center: &'a dyn IdentityCenter,
    pub directory: &'a dyn Directory,
    pub ledger: &'a dyn Ledger,
    pub slack: &'a dyn Slack,
    pub clock: &'a dyn Clock,
    /// The policy's rules, checked again before granting with group
    /// membership read afresh; `NO_RULES` when the allow lists decide.
    pub rules: &'a PolicyRules,
}

/// Why the requester may not have what they clicked for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotAllowed {
    /// Not a full member of our Slack workspaces.
    #[error("{0}")]
    Profile(ProfileRefusal),
    /// The policy's rules do not cover them (any more).
    #[error("{0}")]
    Rules(RuleRefusal),
}

#[derive(Debug, Error)]
pub enum GrantError {
    #[error(transparent)]
    InvalidInput(#[from] ContractError),
    #[error("{0}")]
    IdentityNotFound(IdentityError),
    #[error("permission set not found: {0}")]
    PermissionSetNotFound(PortError),
    #[error("a dependency is unavailable, nothing was granted yet: {0}")]
    DependencyUnavailable(PortError),
    #[error("an AWS call was refused, nothing was granted: {0}")]
    AwsCallFailed(PortError),
    #[error("another break-glass execution ({0}) is still granting the same access")]
    GrantInProgressElsewhere(String),
    #[error("Identity Center could not create the assignment: {0}")]
    AssignmentFailed(String),
    #[error(
        "the assignment could not be confirmed ({0}); this grant gave it back (removed and verified gone, unless another grant still holds it)"
    )]
    RolledBack(String),
    #[error(
        "a break-glass removal left unfinished must be finished before granting, and could not be yet: {0}"
    )]
    CleanupPending(String),
    #[error(
        "the assignment could not be confirmed ({0}) and removing it could not be verified: check Identity Center now"
    )]
    CleanupUnverified(String),
    /// The clicker is not a full member of our Slack workspaces (a guest, a
    /// Slack Connect stranger, a bot, a deactivated account, another
    /// workspace's member), or the policy's rules do not cover the request
    /// (checked again here, with fresh group membership): nothing was
    /// granted.
    #[error("{0}")]
    RequesterNotAllowed(NotAllowed),
}

impl ErrorType for GrantError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(e) => e.error_type(),
            Self::RequesterNotAllowed(_) => "RequesterNotAllowed",
            Self::IdentityNotFound(_) => "IdentityNotFound",
            Self::PermissionSetNotFound(_) => "PermissionSetNotFound",
            Self::DependencyUnavailable(_) => "DependencyUnavailable",
            Self::AwsCallFailed(_) => "AwsCallFailed",
            Self::GrantInProgressElsewhere(_) => "GrantInProgressElsewhere",
            Self::AssignmentFailed(_) => "AssignmentFailed",
            Self::RolledBack(_) => "GrantRolledBack",
            Self::CleanupPending(_) => "GrantCleanupPending",
            Self::CleanupUnverified(_) => "GrantCleanupUnverified",
        }
    }
}

impl From<GrantError> for Diagnostic {
    fn from(e: GrantError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

fn port(e: PortError) -> GrantError {
    if e.is_retryable() {
        GrantError::DependencyUnavailable(e)
    } else {
        GrantError::AwsCallFailed(e)
    }
}

/// Takes the execution contract, returns it with a `grant` section.
pub async fn handle(input: Value, deps: &Deps<'_>) -> Result<Value, GrantError> {
    let mut execution = Execution::from_value(input)?;
    if execution.grant.is_some() {
        // A re-run from the history: the grant is already recorded.
        return Ok(serde_json::to_value(&execution).unwrap_or_default());
    }
    let granted = grant(&execution, deps).await;
    let request = &execution.request;
    let (grant, allowed) = match granted {
        Ok((g, allowed)) => (Ok(g), allowed),
        Err(e) => (Err(e), None),
    };
    match &grant {
        Ok(g) => {
            let mut text = format!(
                ":unlock: <@{}> has {} in {} until {}.",
                request.requester.slack_user_id,
                g.permission_set_name,
                request.account_id,
                utc_time(g.expires_at, deps.clock.now())
            );
            match g.assignment {
                AssignmentSource::PreExisting => text.push_str(
                    " They already had this access before breaking glass, so it will be left in place afterwards.",
                ),
                AssignmentSource::SharedWithRunningExecution => {
                    text.push_str(" (An earlier break-glass grant for the same access is still running.)")
                }
                AssignmentSource::Created => {}
            }
            tracing::info!(
                execution = %execution.execution_name,
                user = %g.user_name,
                account = %request.account_id,
                permission_set = %request.permission_set_arn,
                assignment = ?g.assignment,
                expires_at = %g.expires_at,
                "access granted"
            );
            if let Some(line) = break_glass_core::slack::views::why_line(
                request.reason.as_deref(),
                request.incident.as_deref(),
            ) {
                text.push('\n');
                text.push_str(&line);
            }
            // Block Kit, with End access now and Extend under it (pressed by
            // anyone: access-requested checks who against the ledger).
            let hold = break_glass_core::slack::control::HoldRef {
                execution: execution.execution_name.clone(),
                user: g.user_id.clone(),
                account: request.account_id.clone(),
                permission_set: request.permission_set_arn.clone(),
                until: g.expires_at,
            };
            let blocks = break_glass_core::slack::views::granted_blocks(&text, &hold, None);
            if let Err(error) = deps
                .slack
                .post_blocks(
                    &request.slack.channel_id,
                    Some(&request.slack.thread_ts),
                    &text,
                    &blocks,
                )
                .await
            {
                tracing::warn!(%error, "could not post to the Slack thread; carrying on");
            }
            // The rules' notify channels hear of it too (best effort, like
            // the thread: a Slack failure never fails a grant).
            if let Some(allowed) = &allowed {
                let text = format!("{text} (break-glass rule {})", allowed.rule);
                for channel in &allowed.notify_channels {
                    if let Err(error) = deps.slack.post_message(channel.as_str(), None, &text).await {
                        tracing::warn!(%error, channel = %channel, "could not announce the grant in the rule's channel");
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(execution = %execution.execution_name, error_type = e.error_type(), error = %e, "grant failed");
            if let Some(text) = failure_text(e) {
                tell_thread(
                    deps.slack,
                    request,
                    &format!("<@{}> {text}", request.requester.slack_user_id),
                )
                .await;
            }
        }
    }
    execution.grant = Some(grant?);
    Ok(serde_json::to_value(&execution).unwrap_or_default())
}

/// What the clicker reads when their grant fails. Retryable failures say
/// nothing: the state machine tries again, and a final failure is reported
/// by its Catch.
fn failure_text(e: &GrantError) -> Option<String> {
    match e {
        GrantError::DependencyUnavailable(_)
        | GrantError::GrantInProgressElsewhere(_)
        | GrantError::CleanupPending(_) => None,
        GrantError::RequesterNotAllowed(why) => Some(format!(
            ":no_entry: Break glass refused: {why}. Nothing was granted."
        )),
        GrantError::IdentityNotFound(why) => {
            Some(format!(":x: Break glass failed: {why}. Nothing was granted."))
        }
        GrantError::CleanupUnverified(_) => Some(format!(
            ":rotating_light: Break glass failed and cleaning up could not be verified: {e}. The platform team has been alerted."
        )),
        other => Some(format!(":x: Break glass failed: {other}.")),
    }
}

/// grant-access's time plan inside its 300 s Lambda timeout. Each phase's
/// retries and polling stop at its mark, so the rollback always has time
/// to run, and 60 s are left for the calls themselves:
/// - by 60 s: identity, permission set, and the ledger hold taken;
/// - by 150 s: the create accepted and confirmed;
/// - by 240 s: a failed create settled, deleted, verified, and the ledger
///   closed (or `GrantCleanupUnverified` raised).
///
/// The ledger's operator lease (`ledger::OPERATOR_LEASE`, 420 s) outlasts the
/// timeout, so nobody takes a grant over while its Lambda may still run.
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(300);
pub const PREPARE_BY: Duration = Duration::from_secs(60);
pub const CREATE_BY: Duration = Duration::from_secs(150);
pub const ROLLBACK_BY: Duration = Duration::from_secs(240);

async fn grant(execution: &Execution, deps: &Deps<'_>) -> Result<(Grant, Option<Allowed>), GrantError> {
    let request = &execution.request;
    let clock = deps.clock;
    let started = clock.now();
    let by = |mark: Duration| Deadline(started + chrono::Duration::from_std(mark).unwrap_or_default());
    let prepare = Limits::DEFAULT.until(by(PREPARE_BY), clock);
    let (user, email) = resolve_requester(
        deps.slack,
        deps.directory,
        deps.config.identity(),
        &request.requester.slack_user_id,
        clock,
    )
    .await
    .map_err(|e| match e {
        IdentityError::Unavailable(p) => port(p),
        IdentityError::NotAllowed(why) => GrantError::RequesterNotAllowed(NotAllowed::Profile(why)),
        other => GrantError::IdentityNotFound(other),
    })?;

    let permission_set = with_retries(clock, prepare.api, || {
        deps.identity_center.permission_set(&request.permission_set_arn)
    })
    .await
    .map_err(|e| match e.kind {
        PortErrorKind::NotFound => GrantError::PermissionSetNotFound(e),
        _ => port(e),
    })?;
    let allowed = check_rules(
        deps,
        request,
        user.clone(),
        email,
        &permission_set.name,
        prepare.api,
    )
    .await?;
    let session =
        access::session_duration(permission_set.session_duration.as_deref()).unwrap_or_else(|why| {
            // Assume the longest session Identity Center allows, so the report
            // window is never too short.
            tracing::warn!(%why, "assuming a 12 hour session");
            std::time::Duration::from_secs(12 * 3600)
        });

    // The grant's times are fixed before the hold is recorded, so a re-run
    // after a crash reports the same expiry the ledger holds.
    let granted_at = whole_seconds(started);
    let expires_at = granted_at + request.duration_seconds.as_chrono();
    let key = LedgerKey {
        user_id: user.user_id.clone(),
        account_id: request.account_id.clone(),
        permission_set_arn: request.permission_set_arn.clone(),
    };
    let claim = Claim {
        key: key.clone(),
        execution_name: execution.execution_name.clone(),
        slack_user_id: request.requester.slack_user_id.as_str().to_string(),
        user_name: user.user_name.clone(),
        expires_at,
        reason: request.reason.clone(),
        thread: Some((
            request.slack.channel_id.to_string(),
            request.slack.thread_ts.clone(),
        )),
        incident: request.incident.clone(),
        requested_at: Some(request.requested_at),
        // A rule allows no Extend past its own longest.
        latest_end: allowed
            .as_ref()
            .map(|a| request.requested_at + a.longest.as_chrono()),
    };
    let (ledger, ic, me) = (
        deps.ledger,
        deps.identity_center,
        execution.execution_name.as_str(),
    );
    let acquired = acquire(ledger, ic, clock, prepare, &claim)
        .await
        .map_err(ledger_error)?;

    // A re-run that finds its own hold `held` was confirmed before (the item
    // only becomes `held` after a confirmed create): report it again.
    if acquired.then == Then::Ensure && !acquired.resumed {
        if by(PREPARE_BY).passed(clock) {
            // Too late to create and still have time to undo it: give the
            // hold back and let the state machine run the grant again.
            let why = "preparing the grant took too long".to_string();
            let rollback = Limits::DEFAULT.until(by(ROLLBACK_BY), clock);
            return Err(match release(ledger, ic, clock, rollback, &key, me).await {
                Ok(_) => GrantError::DependencyUnavailable(PortError::new(
                    PortErrorKind::Transient,
                    "grant-access",
                    "prepare",
                    why,
                )),
                Err(e) => GrantError::CleanupUnverified(format!("{why}; releasing the hold: {e}")),
            });
        }
        // From here on we may have created something: every failure path
        // removes it again (unless another holder still needs it) or says
        // loudly that it could not.
        let create = Limits::DEFAULT.until(by(CREATE_BY), clock);
        let (account, set) = (&request.account_id, &request.permission_set_arn);
        let failure = match create_assignment(ic, clock, create, account, set, &user.user_id).await {
            Ok(Provisioned::Succeeded) => None,
            Ok(Provisioned::Failed { reason }) => Some(Failure::Refused(reason)),
            Ok(Provisioned::Unconfirmed { request_id }) => Some(Failure::Unsettled {
                request_id: Some(request_id.clone()),
                why: format!("still IN_PROGRESS ({request_id})"),
                retryable: false,
            }),
            Err(e) => Some(Failure::Unsettled {
                request_id: match &e {
                    CreateError::Unconfirmed { request_id, .. } => Some(request_id.clone()),
                    CreateError::NotAccepted(_) => None,
                },
                why: e.to_string(),
                retryable: e.port().is_retryable(),
            }),
        };
        if let Some(failure) = failure {
            return Err(roll_back(deps, &key, me, failure, by(ROLLBACK_BY)).await);
        }
        // `granting` → `held` (a no-op when we joined a held item). Fails
        // only when our lease was taken over (we ran past it): the new
        // operator owns the assignment now, and a re-run of this grant joins.
        let finish = Limits::DEFAULT.until(by(ROLLBACK_BY), clock);
        match mark_granted(ledger, clock, finish, &key, me).await {
            Ok(()) => {}
            Err(e @ LedgerError::Busy { .. }) => return Err(ledger_error(e)),
            Err(e) => {
                // The assignment exists but the ledger does not say so:
                // undo it rather than hold access nobody will revoke.
                let failure = Failure::Unsettled {
                    request_id: None,
                    why: format!("recording the grant in the ledger failed: {e}"),
                    retryable: e.is_retryable(),
                };
                return Err(roll_back(deps, &key, me, failure, by(ROLLBACK_BY)).await);
            }
        }
    }

    if let Some(allowed) = &allowed {
        tracing::info!(
            execution = %execution.execution_name,
            rule = %allowed.rule,
            "allowed by the policy's rules"
        );
    }
    let grant = Grant {
        user_id: user.user_id,
        user_name: user.user_name,
        permission_set_name: permission_set.name,
        session_duration_seconds: session.as_secs(),
        granted_at,
        expires_at,
        pre_existing: acquired.source == AssignmentSource::PreExisting,
        assignment: acquired.source,
    };
    Ok((grant, allowed))
}

/// The policy's rules again, just before anything is created: the
/// requester's groups are read now (never cached), so someone removed from
/// the group since clicking gets nothing. `Ok(None)` when no rules are
/// configured. Whatever cannot be read refuses.
async fn check_rules(
    deps: &Deps<'_>,
    request: &AccessRequest,
    user: DirectoryUser,
    email: String,
    permission_set_name: &str,
    backoff: Backoff,
) -> Result<Option<Allowed>, GrantError> {
    let clock = deps.clock;
    let rules = match deps.rules.current(clock, backoff).await {
        Ok(Some(rules)) => rules,
        Ok(None) => return Ok(None),
        Err(PolicyUnavailable::Unreadable(e)) => return Err(port(e)),
        Err(e @ PolicyUnavailable::Invalid(_)) => {
            return Err(GrantError::AwsCallFailed(PortError::new(
                PortErrorKind::Invalid,
                "ssm",
                "GetParameter",
                e.to_string(),
            )));
        }
    };
    let group_ids = member_groups(deps.directory, clock, backoff, &user.user_id)
        .await
        .map_err(port)?;
    let member = Member {
        user,
        email,
        group_ids,
    };
    let wanted = Wanted {
        account: &request.account_id,
        permission_set: &request.permission_set_arn,
        permission_set_name: Some(permission_set_name),
        duration: Some(request.duration_seconds),
        // A button click carries no reason: rules that require one do not
        // cover it (REQUIRE_REASON sends such clicks through the modal).
        reason: request.reason.as_deref(),
    };
    decide(
        &rules,
        &member,
        wanted,
        request.duration_seconds,
        deps.directory,
        deps.identity_center,
        clock,
        backoff,
        None,
    )
    .await
    .map(Some)
    .map_err(|e| match e {
        RulesRefusal::Refused(why) => GrantError::RequesterNotAllowed(NotAllowed::Rules(why)),
        RulesRefusal::Unreadable(p) => port(p),
    })
}

fn ledger_error(e: LedgerError) -> GrantError {
    match e {
        LedgerError::RemovalUnfinished(why) => GrantError::CleanupPending(why),
        LedgerError::Busy { .. } => GrantError::GrantInProgressElsewhere(e.to_string()),
        LedgerError::Port(p) => port(p),
        LedgerError::Unverified(why) => GrantError::DependencyUnavailable(PortError::new(
            PortErrorKind::Transient,
            "identity-center",
            "finish an earlier removal",
            why,
        )),
    }
}

/// How a create went wrong.
enum Failure {
    /// Identity Center answered FAILED: nothing was created.
    Refused(String),
    /// It may or may not exist.
    Unsettled {
        request_id: Option<String>,
        why: String,
        /// The cause was throttling or a transient fault: once cleaned up,
        /// the whole grant is worth another try.
        retryable: bool,
    },
}

/// The create may or may not have happened: let it settle, then give the
/// hold back, which deletes and verifies when nobody else holds it.
async fn roll_back(deps: &Deps<'_>, key: &LedgerKey, me: &str, failure: Failure, by: Deadline) -> GrantError {
    let (ic, clock) = (deps.identity_center, deps.clock);
    let limits = Limits::DEFAULT.until(by, clock);
    if let Failure::Unsettled {
        request_id: Some(id), ..
    } = &failure
    {
        // A delete sent while the create is still in progress could be
        // overtaken by it: wait for the create to finish first.
        if !await_creation(ic, clock, limits, id).await {
            tracing::warn!(request_id = %id, "the create had not settled; deleting anyway");
        }
    }
    let released = release(deps.ledger, ic, clock, Limits::DEFAULT.until(by, clock), key, me).await;
    match (failure, released) {
        (Failure::Refused(reason), Ok(_)) => GrantError::AssignmentFailed(reason),
        (Failure::Unsettled { why, retryable, .. }, Ok(_)) if retryable => {
            GrantError::DependencyUnavailable(PortError::new(
                PortErrorKind::Transient,
                "identity-center",
                "CreateAccountAssignment",
                format!("{why}; rolled back, verified"),
            ))
        }
        (Failure::Unsettled { why, .. }, Ok(_)) => GrantError::RolledBack(why),
        (Failure::Refused(why) | Failure::Unsettled { why, .. }, Err(e)) => {
            GrantError::CleanupUnverified(format!("{why}; removing it: {e}"))
        }
    }
}
