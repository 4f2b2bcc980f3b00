//! The rules of granting and revoking, over the ports: who the clicker is in
//! Identity Center, who else holds the same access, and how to make an
//! asynchronous Identity Center change and be sure it happened.
//!
//! Shared by grant-access and revoke-access (and the local runner), so the
//! two functions cannot disagree about what "holding" means.

use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::clock::Clock;
use crate::contract::{AccessRequest, AssignmentSource};
use crate::domain::{AccountId, PermissionSetArn, SlackUserId};
use crate::ledger::{
    Claim, GrantPlan, ItemState, LedgerItem, LedgerKey, ReleasePlan, Released, Then, grant_needs_listing,
    plan_closed, plan_grant, plan_granted, plan_release,
};
use crate::policy::{ProfileRefusal, SlackWorkspaces, check_profile};
use crate::ports::{
    Directory, DirectoryUser, IdentityCenter, Ledger, LookupAttribute, PortError, PortErrorKind,
    Provisioning, ProvisioningStatus, Slack, Written,
};
use crate::retry::{Backoff, Deadline, Polled, poll, with_retries};

/// How the clicker's Slack e-mail is matched in the Identity Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityLookup {
    /// `emails.value`, then `userName` = e-mail.
    Email,
    /// `userName` = e-mail only.
    UserName,
}

impl std::str::FromStr for IdentityLookup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "email" => Ok(Self::Email),
            "username" => Ok(Self::UserName),
            other => Err(format!("expected email or username, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("your Slack profile has no e-mail address, so no Identity Center user can be matched")]
    NoEmail,
    #[error("no Identity Center user matches {0}")]
    NoMatch(String),
    #[error("more than one Identity Center user matches {0}")]
    Ambiguous(String),
    #[error(transparent)]
    Unavailable(PortError),
    /// A guest, a stranger from another organisation, a bot, a deactivated
    /// account, or an account of a workspace that is not ours.
    #[error("{0}")]
    NotAllowed(ProfileRefusal),
}

/// Who may break glass at all, and how they are found in the Identity
/// Store. `Copy` (the workspaces are borrowed, and live as long as the
/// function's configuration) so a `Config` can hand it out by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityRules<'a> {
    pub lookup: IdentityLookup,
    pub workspaces: &'a SlackWorkspaces,
}

/// Slack user → profile (`users.info`): a full member of one of our
/// workspaces? → e-mail → Identity Store user.
pub async fn resolve_identity(
    slack: &dyn Slack,
    directory: &dyn Directory,
    rules: IdentityRules<'_>,
    user: &SlackUserId,
    clock: &dyn Clock,
) -> Result<DirectoryUser, IdentityError> {
    resolve_requester(slack, directory, rules, user, clock)
        .await
        .map(|(user, _)| user)
}

/// [`resolve_identity`], also giving the e-mail that found the user: the
/// policy's rules name people by it.
pub async fn resolve_requester(
    slack: &dyn Slack,
    directory: &dyn Directory,
    rules: IdentityRules<'_>,
    user: &SlackUserId,
    clock: &dyn Clock,
) -> Result<(DirectoryUser, String), IdentityError> {
    let profile = with_retries(clock, Backoff::API, || slack.user_profile(user))
        .await
        .map_err(|e| match e.kind {
            PortErrorKind::NotFound => IdentityError::NoEmail,
            _ => IdentityError::Unavailable(e),
        })?;
    // access-requested checked the click; this checks the account behind it,
    // which only users.info knows: guests and Slack Connect strangers can
    // click any button in a channel they are in.
    check_profile(&profile, rules.workspaces).map_err(IdentityError::NotAllowed)?;
    let email = profile
        .email
        .filter(|e| !e.is_empty())
        .ok_or(IdentityError::NoEmail)?;
    let attributes: &[LookupAttribute] = match rules.lookup {
        IdentityLookup::Email => &[LookupAttribute::Email, LookupAttribute::UserName],
        IdentityLookup::UserName => &[LookupAttribute::UserName],
    };
    for attribute in attributes {
        match with_retries(clock, Backoff::API, || directory.find_user(*attribute, &email)).await {
            Ok(Some(user)) => return Ok((user, email)),
            Ok(None) => continue,
            Err(e) if e.kind == PortErrorKind::Conflict => return Err(IdentityError::Ambiguous(email)),
            Err(e) => return Err(IdentityError::Unavailable(e)),
        }
    }
    Err(IdentityError::NoMatch(email))
}

/// `PT1H`, `PT12H`, `PT30M`, `PT1H30M`: Identity Center's `SessionDuration`.
/// Absent means Identity Center's default of one hour.
pub fn session_duration(iso: Option<&str>) -> Result<Duration, String> {
    let Some(iso) = iso else {
        return Ok(Duration::from_secs(3600));
    };
    let rest = iso
        .strip_prefix("PT")
        .ok_or_else(|| format!("unsupported SessionDuration {iso:?}"))?;
    let mut seconds = 0u64;
    let mut number = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .map_err(|_| format!("unsupported SessionDuration {iso:?}"))?;
        number.clear();
        seconds += n * match c {
            'H' => 3600,
            'M' => 60,
            'S' => 1,
            _ => return Err(format!("unsupported SessionDuration {iso:?}")),
        };
    }
    if !number.is_empty() || seconds == 0 {
        return Err(format!("unsupported SessionDuration {iso:?}"));
    }
    Ok(Duration::from_secs(seconds))
}

/// The end of an asynchronous Identity Center change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    Succeeded,
    Failed {
        reason: String,
    },
    /// Still `IN_PROGRESS` when the polling budget ran out.
    Unconfirmed {
        request_id: String,
    },
}

/// How long an Identity Center call may be retried and a request polled, for
/// one phase of a function; shrunk to fit what is left of the function's
/// time (see [`Deadline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub api: Backoff,
    pub poll: Backoff,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        api: Backoff::API,
        poll: Backoff::PROVISIONING,
    };

    /// These limits, with no more sleeping than `deadline` leaves.
    pub fn until(self, deadline: Deadline, clock: &dyn Clock) -> Limits {
        let left = deadline.remaining(clock);
        Limits {
            api: self.api.within(left),
            poll: self.poll.within(left),
        }
    }
}

/// Creates the assignment (retrying conflicts and throttling) and polls until
/// Identity Center says it is done. A `NotFound` while polling right after
/// the create is the request not being visible yet, not an answer.
pub async fn create_assignment(
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    limits: Limits,
    account: &AccountId,
    permission_set: &PermissionSetArn,
    user_id: &str,
) -> Result<Provisioned, CreateError> {
    let started = with_retries(clock, limits.api, || {
        identity_center.create_assignment(account, permission_set, user_id)
    })
    .await
    .map_err(CreateError::NotAccepted)?;
    let request_id = started.request_id.clone();
    settle(clock, limits, started, move |id: String| async move {
        creation_status(identity_center, &id).await
    })
    .await
    .map_err(|error| CreateError::Unconfirmed { request_id, error })
}

/// Why a create did not settle.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CreateError {
    /// The create call itself failed: Identity Center may or may not have
    /// accepted it (a 500 after the request arrived), so it is cleaned up
    /// like any other.
    #[error("{0}")]
    NotAccepted(PortError),
    /// Accepted, then polling its status failed.
    #[error("create {request_id} accepted, then: {error}")]
    Unconfirmed { request_id: String, error: PortError },
}

impl CreateError {
    pub fn port(&self) -> &PortError {
        match self {
            Self::NotAccepted(e) | Self::Unconfirmed { error: e, .. } => e,
        }
    }
}

async fn creation_status(identity_center: &dyn IdentityCenter, id: &str) -> Result<Provisioning, PortError> {
    match identity_center.creation_status(id).await {
        Err(e) if e.kind == PortErrorKind::NotFound => Ok(Provisioning {
            request_id: id.to_string(),
            status: ProvisioningStatus::InProgress,
        }),
        other => other,
    }
}

/// Waits until an accepted create request is no longer in progress, so a
/// deletion that follows cannot be overtaken by it. `true` when it settled.
pub async fn await_creation(
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    limits: Limits,
    request_id: &str,
) -> bool {
    let polled = poll(
        clock,
        limits.poll,
        || with_retries(clock, limits.api, || creation_status(identity_center, request_id)),
        |p| p.status != ProvisioningStatus::InProgress,
    )
    .await;
    matches!(polled, Ok(Polled::Done(_)))
}

/// Deletes the assignment and polls until Identity Center says it is done.
/// `Ok(None)` when there was nothing to delete.
pub async fn delete_assignment(
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    limits: Limits,
    account: &AccountId,
    permission_set: &PermissionSetArn,
    user_id: &str,
) -> Result<Option<Provisioned>, PortError> {
    let started = with_retries(clock, limits.api, || {
        identity_center.delete_assignment(account, permission_set, user_id)
    })
    .await;
    match started {
        Ok(started) => settle(clock, limits, started, move |id: String| async move {
            identity_center.deletion_status(&id).await
        })
        .await
        .map(Some),
        Err(e) if e.kind == PortErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Polls an asynchronous request (`status` asks Identity Center about it)
/// until it is no longer `IN_PROGRESS` or the polling budget is spent.
async fn settle<F, Fut>(
    clock: &dyn Clock,
    limits: Limits,
    started: Provisioning,
    status: F,
) -> Result<Provisioned, PortError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Provisioning, PortError>>,
{
    let request_id = started.request_id.clone();
    let last = match started.status {
        ProvisioningStatus::InProgress => {
            let polled = poll(
                clock,
                limits.poll,
                || with_retries(clock, limits.api, || status(request_id.clone())),
                |p| p.status != ProvisioningStatus::InProgress,
            )
            .await?;
            match polled {
                Polled::Done(p) => p,
                Polled::TimedOut(_) => return Ok(Provisioned::Unconfirmed { request_id }),
            }
        }
        _ => started,
    };
    Ok(match last.status {
        ProvisioningStatus::Succeeded => Provisioned::Succeeded,
        ProvisioningStatus::Failed { reason } => Provisioned::Failed {
            reason: reason.unwrap_or_else(|| "Identity Center gave no reason".into()),
        },
        ProvisioningStatus::InProgress => Provisioned::Unconfirmed { request_id },
    })
}

/// Whether `user_id` holds the assignment right now (all pages).
pub async fn is_assigned(
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    api: Backoff,
    account: &AccountId,
    permission_set: &PermissionSetArn,
    user_id: &str,
) -> Result<bool, PortError> {
    let users = with_retries(clock, api, || {
        identity_center.assigned_users(account, permission_set)
    })
    .await?;
    Ok(users.iter().any(|u| u == user_id))
}

// ------------------------------------------------------------- the ledger

/// How many times a read-decide-write round may lose to a concurrent write
/// before the function gives up (retryably): each loss means another
/// execution made progress, so this only bounds pathological contention.
const LEDGER_ROUNDS: usize = 12;

/// Why taking or giving up a hold did not finish.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    /// Another execution's change to the same assignment is in flight; try
    /// again shortly.
    #[error("execution {execution_name} is {} the same access", state.as_str())]
    Busy {
        execution_name: String,
        state: ItemState,
    },
    /// The deletion could not be verified; the item stays `revoking` under
    /// this execution, so a re-run (or the next grant, once the lease has
    /// expired) finishes it.
    #[error("{0}")]
    Unverified(String),
    #[error(transparent)]
    Port(PortError),
    /// A removal found unfinished (ours, or under a lease that expired)
    /// could not be finished yet: a break-glass assignment may be left
    /// behind until it is.
    #[error("an unfinished removal could not be finished yet: {0}")]
    RemovalUnfinished(String),
}

impl LedgerError {
    /// Worth running the whole step again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Busy { .. } | Self::Unverified(_) | Self::RemovalUnfinished(_) => true,
            Self::Port(e) => e.is_retryable(),
        }
    }
}

fn contended(what: &'static str) -> LedgerError {
    LedgerError::Port(PortError::new(
        PortErrorKind::Conflict,
        "ledger",
        what,
        "the ledger item kept changing under us",
    ))
}

/// A hold taken by [`acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub source: AssignmentSource,
    pub then: Then,
    /// This execution already held it `held` (a re-run after a crash): its
    /// grant was confirmed and announced before, and must not be undone
    /// because a second look fails.
    pub resumed: bool,
}

/// Records `claim` as a holder in the ledger, deciding standing access,
/// sharing and who creates. Finishes a removal it finds abandoned first.
pub async fn acquire(
    ledger: &dyn Ledger,
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    limits: Limits,
    claim: &Claim,
) -> Result<Acquired, LedgerError> {
    let key = &claim.key;
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key).await?;
        let listed = if grant_needs_listing(item.as_ref()) {
            Some(
                is_assigned(
                    identity_center,
                    clock,
                    limits.api,
                    &key.account_id,
                    &key.permission_set_arn,
                    &key.user_id,
                )
                .await
                .map_err(LedgerError::Port)?,
            )
        } else {
            None
        };
        match plan_grant(item.as_ref(), listed, claim, clock.now()) {
            GrantPlan::Write {
                item,
                expected,
                source,
                then,
            } => {
                if put(ledger, clock, limits, &item, expected).await? == Written::Done {
                    tracing::info!(state = item.state.as_str(), ?source, "ledger: hold taken");
                    return Ok(Acquired {
                        source,
                        then,
                        resumed: false,
                    });
                }
            }
            GrantPlan::AlreadyHeld { source, then } => {
                return Ok(Acquired {
                    source,
                    then,
                    resumed: true,
                });
            }
            GrantPlan::FinishRemoval => {
                tracing::warn!("ledger: finishing a removal left unfinished before granting");
                release(ledger, identity_center, clock, limits, key, &claim.execution_name)
                    .await
                    .map_err(|e| LedgerError::RemovalUnfinished(e.to_string()))?;
            }
            GrantPlan::Busy {
                execution_name,
                state,
            } => {
                return Err(LedgerError::Busy {
                    execution_name,
                    state,
                });
            }
        }
    }
    Err(contended("acquire"))
}

/// Ends a `granting` the caller operates: the item becomes `held`. An error
/// of kind Busy means the caller's lease was taken over (it ran too long):
/// it is no longer the operator, and a re-run joins whoever is.
pub async fn mark_granted(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
    me: &str,
) -> Result<(), LedgerError> {
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key).await?;
        let Some(item) = item else {
            return Err(contended("mark_granted"));
        };
        match plan_granted(&item, me, clock.now()) {
            Some(next) if next.version == item.version => return Ok(()),
            Some(next) => {
                if put(ledger, clock, limits, &next, Some(item.version)).await? == Written::Done {
                    return Ok(());
                }
            }
            None => {
                return Err(LedgerError::Busy {
                    execution_name: item
                        .operator
                        .map(|l| l.execution_name)
                        .unwrap_or_else(|| item.last_change.by.clone()),
                    state: item.state,
                });
            }
        }
    }
    Err(contended("mark_granted"))
}

/// Gives up `me`'s hold. The last holder of a break-glass assignment marks
/// the item `revoking`, deletes the assignment, verifies it is gone, and only
/// then closes the item. Idempotent: a re-run finishes what a crashed run
/// started.
pub async fn release(
    ledger: &dyn Ledger,
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
    me: &str,
) -> Result<Released, LedgerError> {
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key).await?;
        match plan_release(item.as_ref(), me, clock.now()) {
            ReleasePlan::Done(released) => return Ok(released),
            ReleasePlan::Busy {
                execution_name,
                state,
            } => {
                return Err(LedgerError::Busy {
                    execution_name,
                    state,
                });
            }
            ReleasePlan::Write {
                item: next,
                expected,
                outcome,
                delete,
            } => {
                if put(ledger, clock, limits, &next, Some(expected)).await? == Written::Stale {
                    continue;
                }
                if delete {
                    remove(ledger, identity_center, clock, limits, key, me).await?;
                }
                return Ok(outcome);
            }
            ReleasePlan::Resume { item: next, expected } => {
                if put(ledger, clock, limits, &next, Some(expected)).await? == Written::Stale {
                    continue;
                }
                remove(ledger, identity_center, clock, limits, key, me).await?;
                return Ok(Released::Removed);
            }
        }
    }
    Err(contended("release"))
}

/// What the reconciler did with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    Left(&'static str),
    /// Standing access nobody holds: the item was closed.
    Closed,
    /// A break-glass assignment nobody held: deleted, verified, closed.
    Removed {
        holders: Vec<crate::ledger::Holder>,
    },
    /// The item changed while we looked (a grant joined, a revoke finished):
    /// left for the next run, as the conditional write decided.
    Changed,
}

/// Reconciles one open item (see [`crate::ledger::plan_reconcile`]): the
/// removal is conditional on the item being unchanged since it was read.
pub async fn reconcile_item(
    ledger: &dyn Ledger,
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    limits: Limits,
    item: &LedgerItem,
    status: &dyn Fn(&crate::ledger::Holder) -> Option<crate::ledger::HolderStatus>,
    me: &str,
) -> Result<Reconciled, LedgerError> {
    match crate::ledger::plan_reconcile(item, status, me, clock.now()) {
        crate::ledger::ReconcilePlan::Leave(why) => Ok(Reconciled::Left(why)),
        crate::ledger::ReconcilePlan::Close { item: next, expected } => {
            Ok(match put(ledger, clock, limits, &next, Some(expected)).await? {
                Written::Done => Reconciled::Closed,
                Written::Stale => Reconciled::Changed,
            })
        }
        crate::ledger::ReconcilePlan::Remove {
            item: next,
            expected,
            holders,
        } => {
            if put(ledger, clock, limits, &next, Some(expected)).await? == Written::Stale {
                return Ok(Reconciled::Changed);
            }
            remove(ledger, identity_center, clock, limits, &next.key, me).await?;
            Ok(Reconciled::Removed { holders })
        }
    }
}

/// Deletes the assignment of an item `me` holds `revoking`, verifies it is
/// gone, then closes the item.
async fn remove(
    ledger: &dyn Ledger,
    identity_center: &dyn IdentityCenter,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
    me: &str,
) -> Result<(), LedgerError> {
    let (account, set, user) = (&key.account_id, &key.permission_set_arn, key.user_id.as_str());
    match delete_assignment(identity_center, clock, limits, account, set, user).await {
        Ok(None | Some(Provisioned::Succeeded)) => {}
        Ok(Some(Provisioned::Failed { reason })) => {
            return Err(LedgerError::Unverified(format!(
                "Identity Center reported the deletion FAILED: {reason}"
            )));
        }
        Ok(Some(Provisioned::Unconfirmed { request_id })) => {
            return Err(LedgerError::Unverified(format!(
                "deletion {request_id} still IN_PROGRESS"
            )));
        }
        Err(e) => return Err(LedgerError::Port(e)),
    }
    if is_assigned(identity_center, clock, limits.api, account, set, user)
        .await
        .map_err(LedgerError::Port)?
    {
        return Err(LedgerError::Unverified(
            "ListAccountAssignments still lists the user after the deletion succeeded".into(),
        ));
    }
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key).await?;
        // Not ours to close any more: our lease ran out and someone else
        // took the removal over (and maybe finished it). The deletion we
        // verified stands.
        let Some(next) = item.as_ref().and_then(|i| plan_closed(i, me, clock.now())) else {
            return Ok(());
        };
        if put(ledger, clock, limits, &next, item.map(|i| i.version)).await? == Written::Done {
            tracing::info!("ledger: removal verified, item closed");
            return Ok(());
        }
    }
    Err(contended("close"))
}

/// The item, read strongly consistent, with the API retries `limits` allow.
async fn get(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
) -> Result<Option<LedgerItem>, LedgerError> {
    with_retries(clock, limits.api, || ledger.get(key))
        .await
        .map_err(LedgerError::Port)
}

async fn put(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    limits: Limits,
    item: &LedgerItem,
    expected: Option<u64>,
) -> Result<Written, LedgerError> {
    with_retries(clock, limits.api, || ledger.put(item, expected))
        .await
        .map_err(LedgerError::Port)
}

/// What `CheckHold` found: hold `seconds` more, or the hold is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldCheck {
    Hold { seconds: u64, until: DateTime<Utc> },
    Over(crate::ledger::hold::HoldEnd),
}

/// `CheckHold` (see [`crate::ledger::hold`]): how long execution `me` holds
/// on, recording that its hold is over before it says so.
pub async fn check_hold(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
    me: &str,
) -> Result<HoldCheck, LedgerError> {
    use crate::ledger::hold::{CheckPlan, plan_check};
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key).await?;
        match plan_check(item.as_ref(), me, clock.now()) {
            CheckPlan::Hold { seconds, until } => return Ok(HoldCheck::Hold { seconds, until }),
            CheckPlan::Over { why, write: None } => return Ok(HoldCheck::Over(why)),
            CheckPlan::Over {
                why,
                write: Some((next, expected)),
            } => {
                if put(ledger, clock, limits, &next, Some(expected)).await? == Written::Done {
                    return Ok(HoldCheck::Over(why));
                }
            }
        }
    }
    Err(contended("check_hold"))
}

/// What storing a hold's task token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Stored: the End button can wake the hold.
    Stored,
    /// The hold is to end now: fail the task to wake it.
    Wake(crate::ledger::hold::HoldEnd),
}

/// The `Hold` task's Lambda: stores `token` on `me`'s holder, unless the
/// hold is already to end.
pub async fn register_hold(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
    me: &str,
    token: &str,
) -> Result<Registered, LedgerError> {
    use crate::ledger::hold::{RegisterPlan, plan_register};
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key).await?;
        match plan_register(item.as_ref(), me, token, clock.now()) {
            RegisterPlan::Stored => return Ok(Registered::Stored),
            RegisterPlan::Wake(why) => return Ok(Registered::Wake(why)),
            RegisterPlan::Write { item: next, expected } => {
                if put(ledger, clock, limits, &next, Some(expected)).await? == Written::Done {
                    return Ok(Registered::Stored);
                }
            }
        }
    }
    Err(contended("register_hold"))
}

/// Why an End or Extend press did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    #[error("{0}")]
    Refused(crate::ledger::hold::ControlRefusal),
    #[error(transparent)]
    Ledger(LedgerError),
}

/// The hold's Slack thread (channel, ts), as its ledger holder records it.
pub type Thread = Option<(String, String)>;

fn thread_of(item: &LedgerItem, me: &str) -> Thread {
    item.holder(me).and_then(|h| h.thread.clone())
}

/// End access now: records the end, then returns the token to wake the
/// hold with (`None`: the hold's own Lambda will see the end) and the
/// hold's thread.
pub async fn end_hold(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
    me: &str,
    presser: crate::ledger::hold::Presser<'_>,
) -> Result<(Option<String>, Thread), ControlError> {
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key)
            .await
            .map_err(ControlError::Ledger)?;
        let plan = crate::ledger::hold::plan_end(item.as_ref(), me, presser, clock.now())
            .map_err(ControlError::Refused)?;
        if put(ledger, clock, limits, &plan.item, Some(plan.expected))
            .await
            .map_err(ControlError::Ledger)?
            == Written::Done
        {
            return Ok((plan.token, thread_of(&plan.item, me)));
        }
    }
    Err(ControlError::Ledger(contended("end_hold")))
}

/// Extend: the hold now ends at the returned time (`true` when this press
/// moved it, `false` when an earlier press of the same button had), and
/// the hold's thread.
#[allow(clippy::too_many_arguments)]
pub async fn extend_hold(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    limits: Limits,
    key: &LedgerKey,
    me: &str,
    presser: crate::ledger::hold::Presser<'_>,
    from: DateTime<Utc>,
    by: chrono::Duration,
    longest: chrono::Duration,
) -> Result<(DateTime<Utc>, bool, Thread), ControlError> {
    use crate::ledger::hold::{ExtendPlan, plan_extend};
    for _ in 0..LEDGER_ROUNDS {
        let item = get(ledger, clock, limits, key)
            .await
            .map_err(ControlError::Ledger)?;
        let thread = item.as_ref().and_then(|i| thread_of(i, me));
        match plan_extend(item.as_ref(), me, presser, from, by, longest, clock.now())
            .map_err(ControlError::Refused)?
        {
            ExtendPlan::Already { until } => return Ok((until, false, thread)),
            ExtendPlan::Write {
                item: next,
                expected,
                until,
            } => {
                if put(ledger, clock, limits, &next, Some(expected))
                    .await
                    .map_err(ControlError::Ledger)?
                    == Written::Done
                {
                    return Ok((until, true, thread));
                }
            }
        }
    }
    Err(ControlError::Ledger(contended("extend_hold")))
}

/// Posts to the request's thread; a Slack failure is logged, never fatal:
/// access must not depend on Slack being up.
pub async fn tell_thread(slack: &dyn Slack, request: &AccessRequest, text: &str) -> bool {
    tell_channel(
        slack,
        &request.slack.channel_id,
        Some(&request.slack.thread_ts),
        text,
    )
    .await
}

/// Posts to a channel (in a thread when given); never fails, like
/// [`tell_thread`].
pub async fn tell_channel(slack: &dyn Slack, channel: &str, thread_ts: Option<&str>, text: &str) -> bool {
    match slack.post_message(channel, thread_ts, text).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "could not post to the Slack thread; carrying on");
            false
        }
    }
}

/// `14:05 UTC` for today, `2026-12-01 14:05 UTC` otherwise.
pub fn utc_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_durations_parse_like_identity_center_writes_them() {
        assert_eq!(session_duration(None), Ok(Duration::from_secs(3600)));
        assert_eq!(session_duration(Some("PT1H")), Ok(Duration::from_secs(3600)));
        assert_eq!(session_duration(Some("PT12H")), Ok(Duration::from_secs(43200)));
        assert_eq!(session_duration(Some("PT1H30M")), Ok(Duration::from_secs(5400)));
        assert_eq!(session_duration(Some("PT45M")), Ok(Duration::from_secs(2700)));
        for bad in ["", "P1D", "PT", "PT1X", "PT1", "1H"] {
            assert!(session_duration(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookup_modes_parse_case_insensitively() {
        assert_eq!("EMAIL".parse::<IdentityLookup>(), Ok(IdentityLookup::Email));
        assert_eq!("username".parse::<IdentityLookup>(), Ok(IdentityLookup::UserName));
        assert!("upn".parse::<IdentityLookup>().is_err());
    }

    #[test]
    fn times_read_naturally() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let later = DateTime::parse_from_rfc3339("2026-11-30T14:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tomorrow = DateTime::parse_from_rfc3339("2026-12-01T01:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(utc_time(later, now), "14:05 UTC");
        assert_eq!(utc_time(tomorrow, now), "2026-12-01 01:05 UTC");
    }
}
