//! The grant ledger: the one record of who holds a break-glass assignment.
//!
//! One item per (Identity Center user, account, permission set). It says
//! where the assignment came from ([`Origin`]: standing access, or created by
//! break glass), which executions hold it and until when ([`Holder`]), and
//! what is happening to it ([`ItemState`]). Every change is a conditional
//! write on the item's `version` and every read that decides something is
//! strongly consistent, so two Lambdas can never both believe they are the
//! last holder, and no decision rests on `ListExecutions` (eventually
//! consistent, blind to executions that have not finished granting or were
//! stopped).
//!
//! This module is the *rules* only, as pure functions from what was read to
//! what to write next ([`plan_grant`], [`plan_release`]); the loops that read,
//! write and retry on a stale version live in [`crate::access`]. The rules:
//!
//! - Standing access is decided exactly once: when no item exists (or only a
//!   closed one, see [`TOMBSTONE_LAG`]) and `ListAccountAssignments` shows the
//!   assignment. A break-glass item never turns into standing access, and an
//!   item left behind by a failed or aborted revoke is never adopted as
//!   standing: it is still open, and whoever comes next finishes it.
//! - A grant joins a held item by adding itself as a holder; finding the item
//!   `granting` or `revoking` under another execution whose lease is still
//!   valid is a retryable "busy".
//! - Only the last holder of a break-glass item deletes, and it marks the
//!   item `revoking` first, so no grant can join a deletion in flight. The
//!   item is closed only after the deletion is verified.
//! - An operation in flight (`granting`, `revoking`) carries a lease longer
//!   than any Lambda can run: an expired lease proves its Lambda is dead, so
//!   another execution may take the operation over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::{AssignmentSource, optional_timestamp, timestamp};
use crate::domain::{AccountId, PermissionSetArn};

pub mod hold;

/// How long an operator's claim on a `granting`/`revoking` item lasts after
/// its last write. Longer than the grant and revoke Lambdas' timeout (300 s)
/// plus clock skew between Lambdas, so an expired lease means that Lambda
/// has been stopped by Lambda itself. Terraform's function timeouts are held
/// below it by a contract test.
pub const OPERATOR_LEASE: Duration = Duration::from_secs(420);

/// How long after a verified removal `ListAccountAssignments` may still show
/// the assignment. A closed break-glass item younger than this, with the
/// assignment still listed, is read as that lag, not as new standing access.
pub const TOMBSTONE_LAG: Duration = Duration::from_secs(15 * 60);

/// How long closed items are kept (DynamoDB TTL) for audit.
pub const CLOSED_ITEM_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// The ledger's key: the Identity Center principal, not the Slack user, so
/// two Slack identities mapped to one Identity Center user share one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LedgerKey {
    pub user_id: String,
    pub account_id: AccountId,
    pub permission_set_arn: PermissionSetArn,
}

impl LedgerKey {
    /// The table's partition key. `|` cannot occur in any of the three parts
    /// (user ids are UUID-like, accounts are digits, ARNs have no `|`), so the
    /// framing is unambiguous.
    pub fn pk(&self) -> String {
        format!(
            "assignment|{}|{}|{}",
            self.user_id,
            self.account_id.as_str(),
            self.permission_set_arn.as_str()
        )
    }
}

/// Where the assignment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The user had it independently of break glass: never removed by us.
    Standing,
    /// Break glass created it: the last holder removes it.
    BreakGlass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// The operator is creating the assignment; nobody else may join yet.
    Granting,
    /// The holders have it.
    Held,
    /// The operator (the last holder) is deleting it; nobody may join.
    Revoking,
    /// Nobody holds it; for a break-glass item, its removal was verified.
    Closed,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granting => "granting",
            Self::Held => "held",
            Self::Revoking => "revoking",
            Self::Closed => "closed",
        }
    }
}

/// An execution's claim on an operation in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub execution_name: String,
    #[serde(with = "timestamp")]
    pub until: DateTime<Utc>,
}

/// One execution holding the assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub execution_name: String,
    pub slack_user_id: String,
    #[serde(with = "timestamp")]
    pub joined_at: DateTime<Utc>,
    /// When its hold ends (its `grant.expires_at`).
    #[serde(with = "timestamp")]
    pub expires_at: DateTime<Utc>,
    /// What its grant reported, so a re-run of the same grant reports the same.
    pub source: AssignmentSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its Slack thread (channel, thread ts): where the reconciler tells the
    /// story if it has to finish this hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<(String, String)>,
    /// The incident link the requester gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// When access was asked for: extensions may not pass this plus the
    /// longest duration. `None` in items written before extensions existed
    /// (then `joined_at` stands in).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_timestamp")]
    pub requested_at: Option<DateTime<Utc>>,
    /// The latest an Extend may take the hold to, when the policy's rules
    /// allow less than `MAX_DURATION_MINUTES` (what the rule allowed at
    /// grant time, from `requested_at`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_timestamp")]
    pub latest_end: Option<DateTime<Utc>>,
    /// How the hold is ended early or moved (see [`hold`]).
    #[serde(default)]
    pub control: HoldControl,
}

/// What Slack's End and Extend buttons change, and what the hold step reads
/// (see [`hold`]). Every field is written by a conditional write on the
/// item, like everything else in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HoldControl {
    /// The task token of the execution's current hold: sending it success
    /// wakes the hold at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Who asked to end the hold early, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_early: Option<Stamp>,
    /// Who moved `expires_at` later, and when, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Stamp>,
    /// The hold step decided the hold is over and went on to the revoke:
    /// nothing may end or extend it any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub over: bool,
}

/// Who did something, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub by: String,
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
}

/// What happened last to an item, in words, for people reading the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastChange {
    pub by: String,
    pub what: String,
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerItem {
    #[serde(flatten)]
    pub key: LedgerKey,
    /// Bumped by every write; the condition of the next one.
    pub version: u64,
    pub origin: Origin,
    pub state: ItemState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Lease>,
    pub holders: Vec<Holder>,
    /// Identity Center user name (the CloudTrail session name).
    pub user_name: String,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_timestamp")]
    pub closed_at: Option<DateTime<Utc>>,
    pub last_change: LastChange,
    /// How many reconciler runs have tried to remove this item: the second
    /// failure in a row is alerted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reconcile_attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LedgerItem {
    pub fn holder(&self, execution_name: &str) -> Option<&Holder> {
        self.holders.iter().find(|h| h.execution_name == execution_name)
    }

    /// The latest end of any hold: after this (plus the revoke's retries),
    /// an open item is something the reconciler should look at.
    pub fn holds_until(&self) -> Option<DateTime<Utc>> {
        self.holders.iter().map(|h| h.expires_at).max()
    }

    /// Whether another execution's lease on an operation is still valid.
    fn busy_for(&self, me: &str, now: DateTime<Utc>) -> Option<&Lease> {
        match (&self.state, &self.operator) {
            (ItemState::Granting | ItemState::Revoking, Some(lease))
                if lease.execution_name != me && lease.until > now =>
            {
                Some(lease)
            }
            _ => None,
        }
    }

    /// The next version of this item, written by `by` at `now`.
    fn next(&self, by: &str, what: impl Into<String>, now: DateTime<Utc>) -> LedgerItem {
        let mut item = self.clone();
        item.version += 1;
        item.updated_at = now;
        item.last_change = LastChange {
            by: by.to_string(),
            what: what.into(),
            at: now,
        };
        item
    }

    /// When DynamoDB may expire a closed item.
    pub fn expires_from_table_at(&self) -> Option<DateTime<Utc>> {
        let closed = self.closed_at?;
        Some(closed + chrono::Duration::from_std(CLOSED_ITEM_RETENTION).unwrap_or_default())
    }
}

fn lease(execution_name: &str, now: DateTime<Utc>) -> Lease {
    Lease {
        execution_name: execution_name.to_string(),
        until: now + chrono::Duration::from_std(OPERATOR_LEASE).unwrap_or_default(),
    }
}

/// Who is asking to hold the assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: LedgerKey,
    pub execution_name: String,
    pub slack_user_id: String,
    pub user_name: String,
    pub expires_at: DateTime<Utc>,
    pub reason: Option<String>,
    /// (channel, thread ts)
    pub thread: Option<(String, String)>,
    pub incident: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub latest_end: Option<DateTime<Utc>>,
}

impl Claim {
    fn holder(&self, source: AssignmentSource, now: DateTime<Utc>) -> Holder {
        Holder {
            execution_name: self.execution_name.clone(),
            slack_user_id: self.slack_user_id.clone(),
            joined_at: now,
            expires_at: self.expires_at,
            source,
            reason: self.reason.clone(),
            thread: self.thread.clone(),
            incident: self.incident.clone(),
            requested_at: self.requested_at,
            latest_end: self.latest_end,
            control: HoldControl::default(),
        }
    }
}

/// What a grant needs to know besides the item: whether Identity Center
/// lists the assignment. Only asked for when the item cannot answer (no item,
/// a closed one, or standing access).
pub fn grant_needs_listing(item: Option<&LedgerItem>) -> bool {
    match item {
        None => true,
        Some(item) => {
            item.state == ItemState::Closed
                || (item.state == ItemState::Held && item.origin == Origin::Standing)
        }
    }
}

/// What the grant does after its write lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Nothing to create: the user holds it as standing access.
    Standing,
    /// Create (idempotent) and confirm the assignment: as the operator of a
    /// `granting` item, or to make sure a joined break-glass item is really
    /// present (somebody may have removed it by hand).
    Ensure,
}

/// The next step of a grant.
// One plan is made per ledger round and consumed at once: boxing the item
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantPlan {
    /// Write `item` on condition that the stored version is `expected`.
    Write {
        item: LedgerItem,
        expected: Option<u64>,
        source: AssignmentSource,
        then: Then,
    },
    /// This execution already holds it (a re-run after a crash): report what
    /// it reported before, making sure a break-glass assignment is present.
    AlreadyHeld { source: AssignmentSource, then: Then },
    /// This execution was finishing a removal (a grant rolling back, or a
    /// revoke it took over): finish that first, then plan again.
    FinishRemoval,
    /// Another execution holds a valid lease on a change in flight.
    Busy {
        execution_name: String,
        state: ItemState,
    },
}

/// Decides a grant's next step from the item as read (strongly consistent)
/// and, when [`grant_needs_listing`] says so, whether the assignment is listed.
pub fn plan_grant(
    item: Option<&LedgerItem>,
    listed: Option<bool>,
    claim: &Claim,
    now: DateTime<Utc>,
) -> GrantPlan {
    let me = claim.execution_name.as_str();
    let listed = listed.unwrap_or(false);
    let Some(item) = item else {
        let (origin, state, operator, source, then) = fresh(listed, me, now);
        let item = LedgerItem {
            key: claim.key.clone(),
            version: 1,
            origin,
            state,
            operator,
            holders: vec![claim.holder(source, now)],
            user_name: claim.user_name.clone(),
            created_at: now,
            updated_at: now,
            closed_at: None,
            last_change: LastChange {
                by: me.to_string(),
                what: first_words(origin),
                at: now,
            },
            reconcile_attempts: 0,
        };
        return GrantPlan::Write {
            item,
            expected: None,
            source,
            then,
        };
    };
    if let Some(lease) = item.busy_for(me, now) {
        return GrantPlan::Busy {
            execution_name: lease.execution_name.clone(),
            state: item.state,
        };
    }
    let operator_is_me = item.operator.as_ref().is_some_and(|l| l.execution_name == me);
    match item.state {
        // Ours (a rollback that crashed) or an expired lease: the removal
        // must be finished before anyone holds this again.
        ItemState::Revoking => GrantPlan::FinishRemoval,
        ItemState::Closed => {
            // A closed standing item says nothing about today; a closed
            // break-glass item says we removed it: a listing within the lag
            // window is the removal not having propagated, not new access.
            let standing = listed
                && (item.origin == Origin::Standing
                    || item.closed_at.is_none_or(|t| {
                        now - t > chrono::Duration::from_std(TOMBSTONE_LAG).unwrap_or_default()
                    }));
            let (origin, state, operator, source, then) = fresh(standing, me, now);
            let mut next = item.next(me, first_words(origin), now);
            next.origin = origin;
            next.state = state;
            next.operator = operator;
            next.holders = vec![claim.holder(source, now)];
            next.closed_at = None;
            next.reconcile_attempts = 0;
            next.user_name = claim.user_name.clone();
            GrantPlan::Write {
                item: next,
                expected: Some(item.version),
                source,
                then,
            }
        }
        ItemState::Granting => {
            // Our own create (a re-run), or a dead operator's: either way we
            // are the operator now. A dead operator never finished granting,
            // so it never got a grant section and will never revoke: it is
            // not a holder any more.
            let mut next = item.next(me, "granting (taken over)", now);
            next.operator = Some(lease(me, now));
            if !operator_is_me {
                let dead = item.operator.as_ref().map(|l| l.execution_name.clone());
                next.holders.retain(|h| Some(&h.execution_name) != dead.as_ref());
            }
            let source = if next.holders.iter().any(|h| h.execution_name != me) {
                AssignmentSource::SharedWithRunningExecution
            } else {
                AssignmentSource::Created
            };
            if let Some(mine) = next.holders.iter_mut().find(|h| h.execution_name == me) {
                mine.source = source;
            } else {
                next.holders.push(claim.holder(source, now));
            }
            GrantPlan::Write {
                item: next,
                expected: Some(item.version),
                source,
                then: Then::Ensure,
            }
        }
        ItemState::Held => {
            if let Some(mine) = item.holder(me) {
                let then = match item.origin {
                    Origin::Standing => Then::Standing,
                    Origin::BreakGlass => Then::Ensure,
                };
                return GrantPlan::AlreadyHeld {
                    source: mine.source,
                    then,
                };
            }
            match item.origin {
                Origin::BreakGlass => join(
                    item,
                    claim,
                    now,
                    "joined",
                    AssignmentSource::SharedWithRunningExecution,
                    Then::Ensure,
                    |_| {},
                ),
                Origin::Standing if listed => join(
                    item,
                    claim,
                    now,
                    "joined standing access",
                    AssignmentSource::PreExisting,
                    Then::Standing,
                    |_| {},
                ),
                // The standing assignment was removed (by an administrator)
                // while other executions held it: what we create now is
                // break glass's, and the last holder removes it.
                Origin::Standing => join(
                    item,
                    claim,
                    now,
                    "standing access gone; granting",
                    AssignmentSource::Created,
                    Then::Ensure,
                    |next| {
                        next.origin = Origin::BreakGlass;
                        next.state = ItemState::Granting;
                        next.operator = Some(lease(me, now));
                    },
                ),
            }
        }
    }
}

/// The write that adds `claim` as a holder of `item` (after `change`), on
/// condition that nobody wrote it since it was read.
fn join(
    item: &LedgerItem,
    claim: &Claim,
    now: DateTime<Utc>,
    what: &str,
    source: AssignmentSource,
    then: Then,
    change: impl FnOnce(&mut LedgerItem),
) -> GrantPlan {
    let mut next = item.next(&claim.execution_name, what, now);
    change(&mut next);
    next.holders.push(claim.holder(source, now));
    GrantPlan::Write {
        item: next,
        expected: Some(item.version),
        source,
        then,
    }
}

fn first_words(origin: Origin) -> String {
    match origin {
        Origin::Standing => "recorded standing access".into(),
        Origin::BreakGlass => "granting".into(),
    }
}

type Fresh = (Origin, ItemState, Option<Lease>, AssignmentSource, Then);

fn fresh(standing: bool, me: &str, now: DateTime<Utc>) -> Fresh {
    if standing {
        (
            Origin::Standing,
            ItemState::Held,
            None,
            AssignmentSource::PreExisting,
            Then::Standing,
        )
    } else {
        (
            Origin::BreakGlass,
            ItemState::Granting,
            Some(lease(me, now)),
            AssignmentSource::Created,
            Then::Ensure,
        )
    }
}

/// The write that ends a grant's `granting`: the item is `held`.
/// `None` when the item is no longer ours to finish (its lease was taken).
pub fn plan_granted(item: &LedgerItem, me: &str, now: DateTime<Utc>) -> Option<LedgerItem> {
    match item.state {
        ItemState::Held if item.holder(me).is_some() => Some(item.clone()),
        ItemState::Granting if item.operator.as_ref().is_some_and(|l| l.execution_name == me) => {
            let mut next = item.next(me, "granted", now);
            next.state = ItemState::Held;
            next.operator = None;
            Some(next)
        }
        _ => None,
    }
}

/// What a release (a revoke, or a grant rolling back) leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Other executions still hold it; the one whose hold ends last is named.
    LeftToOthers { execution_name: String },
    /// It is standing access: left in place.
    LeftStanding,
    /// This execution was the last holder of a break-glass assignment: it
    /// was deleted and the deletion verified.
    Removed,
    /// This execution held nothing (an earlier run released it, or the item
    /// was closed by someone finishing its removal).
    NotHolding,
}

/// The next step of a release.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleasePlan {
    /// Write `item` on condition that the stored version is `expected`; when
    /// `delete` is set, the item is now `revoking` under this execution and
    /// the assignment must be deleted, verified, and the item closed.
    Write {
        item: LedgerItem,
        expected: u64,
        outcome: Released,
        delete: bool,
    },
    /// The item is `revoking` under this execution (a re-run) or under a dead
    /// operator: renew the lease with `item`, then delete, verify and close.
    Resume {
        item: LedgerItem,
        expected: u64,
    },
    Done(Released),
    Busy {
        execution_name: String,
        state: ItemState,
    },
}

/// Decides a release's next step from the item as read (strongly consistent).
pub fn plan_release(item: Option<&LedgerItem>, me: &str, now: DateTime<Utc>) -> ReleasePlan {
    let Some(item) = item else {
        return ReleasePlan::Done(Released::NotHolding);
    };
    if let Some(lease) = item.busy_for(me, now) {
        // Only a removal can be in flight when we still hold it: we never
        // let a grant start `granting` over existing holders except to
        // replace lost standing access, which is a short create.
        return ReleasePlan::Busy {
            execution_name: lease.execution_name.clone(),
            state: item.state,
        };
    }
    match item.state {
        ItemState::Closed => ReleasePlan::Done(Released::NotHolding),
        ItemState::Revoking => {
            let mut next = item.next(me, "removing", now);
            next.operator = Some(lease(me, now));
            next.holders.retain(|h| h.execution_name != me);
            ReleasePlan::Resume {
                item: next,
                expected: item.version,
            }
        }
        ItemState::Granting | ItemState::Held => {
            // A `granting` item we may release: ours (a grant rolling back),
            // or a dead operator's (its lease expired).
            let operating = item.operator.as_ref().is_some_and(|l| l.execution_name == me);
            if item.holder(me).is_none() && !operating {
                // An earlier run of ours already gave the hold up (or a dead
                // operator's create is left for whoever grants next): say who
                // holds it now.
                return ReleasePlan::Done(left_with(item, me));
            }
            let dead_operator = item
                .operator
                .as_ref()
                .filter(|l| l.execution_name != me)
                .map(|l| l.execution_name.clone());
            let others: Vec<&Holder> = item
                .holders
                .iter()
                .filter(|h| h.execution_name != me && Some(&h.execution_name) != dead_operator.as_ref())
                .collect();
            let mut next = item.next(me, "released", now);
            next.holders
                .retain(|h| others.iter().any(|o| o.execution_name == h.execution_name));
            if let Some(last) = others
                .iter()
                .max_by_key(|h| (h.expires_at, h.execution_name.clone()))
            {
                let outcome = match item.origin {
                    Origin::Standing => Released::LeftStanding,
                    Origin::BreakGlass => Released::LeftToOthers {
                        execution_name: last.execution_name.clone(),
                    },
                };
                if operating {
                    // We were creating for the others (lost standing access
                    // replaced): they still need it, so it stays held.
                    next.state = ItemState::Held;
                    next.operator = None;
                }
                return ReleasePlan::Write {
                    item: next,
                    expected: item.version,
                    outcome,
                    delete: false,
                };
            }
            match item.origin {
                Origin::Standing => {
                    next.state = ItemState::Closed;
                    next.operator = None;
                    next.closed_at = Some(now);
                    next.last_change.what = "closed; standing access left in place".into();
                    ReleasePlan::Write {
                        item: next,
                        expected: item.version,
                        outcome: Released::LeftStanding,
                        delete: false,
                    }
                }
                Origin::BreakGlass => {
                    next.state = ItemState::Revoking;
                    next.operator = Some(lease(me, now));
                    next.last_change.what = "removing".into();
                    ReleasePlan::Write {
                        item: next,
                        expected: item.version,
                        outcome: Released::Removed,
                        delete: true,
                    }
                }
            }
        }
    }
}

/// What is left after `me` no longer holds `item`.
fn left_with(item: &LedgerItem, me: &str) -> Released {
    let last = item
        .holders
        .iter()
        .filter(|h| h.execution_name != me)
        .max_by_key(|h| (h.expires_at, h.execution_name.clone()));
    match (item.origin, last) {
        (_, None) => Released::NotHolding,
        (Origin::Standing, Some(_)) => Released::LeftStanding,
        (Origin::BreakGlass, Some(h)) => Released::LeftToOthers {
            execution_name: h.execution_name.clone(),
        },
    }
}

/// The write that ends a verified removal. `None` when the item is no longer
/// ours to close (our lease was taken over and someone else finished it).
pub fn plan_closed(item: &LedgerItem, me: &str, now: DateTime<Utc>) -> Option<LedgerItem> {
    let ours =
        item.state == ItemState::Revoking && item.operator.as_ref().is_some_and(|l| l.execution_name == me);
    if !ours {
        return None;
    }
    let mut next = item.next(me, "removed and verified", now);
    next.state = ItemState::Closed;
    next.operator = None;
    next.holders.clear();
    next.closed_at = Some(now);
    next.reconcile_attempts = 0;
    Some(next)
}

/// What the reconciler knows about one holder's execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderStatus {
    Running,
    /// Ended (succeeded, failed, aborted, timed out) or no such execution.
    Ended,
}

/// What the reconciler does with one open item.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcilePlan {
    /// Somebody is (or may still be) using or changing it.
    Leave(&'static str),
    /// Standing access whose holders all ended: close the item, leave the
    /// assignment.
    Close { item: LedgerItem, expected: u64 },
    /// A break-glass assignment nobody holds any more: the item is now
    /// `revoking` under the reconciler; delete, verify and close.
    Remove {
        item: LedgerItem,
        expected: u64,
        /// The executions that held it, for the alert.
        holders: Vec<Holder>,
    },
}

/// Decides what the reconciler does with an open item. `status` says what
/// Step Functions answered for a holder, and `None` when its answer cannot
/// be trusted yet: `DescribeExecution` is eventually consistent, so a holder
/// that joined less than the minimum age ago and is not named by a
/// status-change event is treated as running.
pub fn plan_reconcile(
    item: &LedgerItem,
    status: &dyn Fn(&Holder) -> Option<HolderStatus>,
    me: &str,
    now: DateTime<Utc>,
) -> ReconcilePlan {
    if item.state == ItemState::Closed {
        return ReconcilePlan::Leave("closed");
    }
    if item.busy_for(me, now).is_some() {
        return ReconcilePlan::Leave("a change is in flight under a valid lease");
    }
    if item
        .holders
        .iter()
        .any(|h| status(h) != Some(HolderStatus::Ended))
    {
        return ReconcilePlan::Leave("a holder is running, or ended too recently to be sure");
    }
    let mut next = item.next(me, "reconciling: every holder has ended", now);
    next.holders.clear();
    match item.origin {
        Origin::Standing if item.state == ItemState::Held => {
            next.state = ItemState::Closed;
            next.operator = None;
            next.closed_at = Some(now);
            next.last_change.what = "closed by the reconciler; standing access left in place".into();
            ReconcilePlan::Close {
                item: next,
                expected: item.version,
            }
        }
        // Break glass's, or standing access being replaced by a grant that
        // died: nobody will revoke it but us.
        _ => {
            next.origin = Origin::BreakGlass;
            next.state = ItemState::Revoking;
            next.operator = Some(lease(me, now));
            next.last_change.what = "reconciler removing: every holder has ended".into();
            next.reconcile_attempts = item.reconcile_attempts + 1;
            ReconcilePlan::Remove {
                item: next,
                expected: item.version,
                holders: item.holders.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0).unwrap_or_default()
    }

    fn key() -> LedgerKey {
        LedgerKey {
            user_id: "u-1".into(),
            account_id: "123456789012".parse().unwrap(),
            permission_set_arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".parse().unwrap(),
        }
    }

    fn claim(name: &str, expires: i64) -> Claim {
        Claim {
            key: key(),
            execution_name: name.into(),
            slack_user_id: "U1".into(),
            user_name: "alice".into(),
            expires_at: t(expires),
            reason: None,
            thread: None,
            incident: None,
            requested_at: None,
            latest_end: None,
        }
    }

    /// Applies a plan's write, as the ledger would.
    fn written(plan: GrantPlan) -> (LedgerItem, AssignmentSource, Then) {
        match plan {
            GrantPlan::Write {
                item, source, then, ..
            } => (item, source, then),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn granted(name: &str, at: i64, expires: i64) -> LedgerItem {
        let (item, _, _) = written(plan_grant(None, Some(false), &claim(name, expires), t(at)));
        plan_granted(&item, name, t(at)).unwrap()
    }

    #[test]
    fn standing_access_is_decided_only_when_no_item_exists() {
        let (item, source, then) = written(plan_grant(None, Some(true), &claim("A", 60), t(0)));
        assert_eq!(
            (item.origin, item.state, source, then),
            (
                Origin::Standing,
                ItemState::Held,
                AssignmentSource::PreExisting,
                Then::Standing
            )
        );
        let (item, source, then) = written(plan_grant(None, Some(false), &claim("A", 60), t(0)));
        assert_eq!(
            (item.origin, item.state, source, then),
            (
                Origin::BreakGlass,
                ItemState::Granting,
                AssignmentSource::Created,
                Then::Ensure
            )
        );
        assert_eq!(
            item.operator.as_ref().map(|l| l.execution_name.as_str()),
            Some("A")
        );
        assert_eq!(item.version, 1);
    }

    #[test]
    fn a_break_glass_item_left_open_is_never_adopted_as_standing() {
        // A's revoke failed (or A was stopped): the item is still held or
        // revoking. B sees the assignment listed, but the item says whose.
        let held = granted("A", 0, 60);
        let (next, source, then) = written(plan_grant(Some(&held), Some(true), &claim("B", 200), t(120)));
        assert_eq!(next.origin, Origin::BreakGlass);
        assert_eq!(source, AssignmentSource::SharedWithRunningExecution);
        assert_eq!(then, Then::Ensure);
        assert_eq!(next.holders.len(), 2);

        let revoking = match plan_release(Some(&held), "A", t(60)) {
            ReleasePlan::Write {
                item, delete: true, ..
            } => item,
            other => panic!("{other:?}"),
        };
        assert_eq!(revoking.state, ItemState::Revoking);
        // While A's lease is valid, B waits; once it has expired, B finishes
        // the removal before anything else.
        assert!(matches!(
            plan_grant(Some(&revoking), Some(true), &claim("B", 200), t(61)),
            GrantPlan::Busy { .. }
        ));
        assert_eq!(
            plan_grant(Some(&revoking), Some(true), &claim("B", 200), t(70)),
            GrantPlan::FinishRemoval
        );
    }

    #[test]
    fn a_closed_break_glass_item_reads_a_lagging_listing_as_lag_not_standing() {
        let held = granted("A", 0, 60);
        let ReleasePlan::Write { item: revoking, .. } = plan_release(Some(&held), "A", t(60)) else {
            panic!()
        };
        let closed = plan_closed(&revoking, "A", t(61)).unwrap();
        assert_eq!(closed.state, ItemState::Closed);
        assert!(closed.holders.is_empty());
        // Listed a minute after the verified removal: lag. B creates, and
        // B's revoke will remove it.
        let (next, source, _) = written(plan_grant(Some(&closed), Some(true), &claim("B", 90), t(62)));
        assert_eq!(
            (next.origin, source),
            (Origin::BreakGlass, AssignmentSource::Created)
        );
        // Listed long after: an administrator has given standing access since.
        let (next, source, _) = written(plan_grant(Some(&closed), Some(true), &claim("B", 200), t(120)));
        assert_eq!(
            (next.origin, source),
            (Origin::Standing, AssignmentSource::PreExisting)
        );
        // Not listed: break glass creates it.
        let (next, _, _) = written(plan_grant(Some(&closed), Some(false), &claim("B", 200), t(120)));
        assert_eq!(next.origin, Origin::BreakGlass);
        assert_eq!(next.version, closed.version + 1);
    }

    #[test]
    fn a_grant_in_flight_makes_others_wait_until_its_lease_expires_then_is_taken_over() {
        let (granting, _, _) = written(plan_grant(None, Some(false), &claim("A", 60), t(0)));
        assert_eq!(
            plan_grant(Some(&granting), None, &claim("B", 60), t(1)),
            GrantPlan::Busy {
                execution_name: "A".into(),
                state: ItemState::Granting
            }
        );
        // A's Lambda is certainly dead after the lease: B takes over, and A
        // (which never finished granting, so will never revoke) is dropped.
        let later = t(0) + chrono::Duration::from_std(OPERATOR_LEASE).unwrap() + chrono::Duration::seconds(1);
        let plan = plan_grant(Some(&granting), None, &claim("B", 60), later);
        let (next, source, then) = written(plan);
        assert_eq!((source, then), (AssignmentSource::Created, Then::Ensure));
        assert_eq!(
            next.holders
                .iter()
                .map(|h| h.execution_name.as_str())
                .collect::<Vec<_>>(),
            ["B"]
        );
        assert_eq!(next.operator.unwrap().execution_name, "B");
        // A's own re-run, within its lease, resumes as operator.
        let (resumed, source, _) = written(plan_grant(Some(&granting), None, &claim("A", 60), t(2)));
        assert_eq!(source, AssignmentSource::Created);
        assert_eq!(resumed.holders.len(), 1);
    }

    #[test]
    fn a_re_run_of_a_finished_grant_reports_what_it_reported() {
        let held = granted("A", 0, 60);
        assert_eq!(
            plan_grant(Some(&held), None, &claim("A", 60), t(1)),
            GrantPlan::AlreadyHeld {
                source: AssignmentSource::Created,
                then: Then::Ensure
            }
        );
    }

    #[test]
    fn only_the_last_holder_deletes_and_it_blocks_joins_first() {
        let held = granted("A", 0, 60);
        let (shared, _, _) = written(plan_grant(Some(&held), None, &claim("B", 90), t(30)));
        // A leaves first: B keeps it.
        match plan_release(Some(&shared), "A", t(60)) {
            ReleasePlan::Write {
                item,
                outcome,
                delete,
                ..
            } => {
                assert!(!delete);
                assert_eq!(
                    outcome,
                    Released::LeftToOthers {
                        execution_name: "B".into()
                    }
                );
                assert_eq!(item.state, ItemState::Held);
                // B is last: it marks the item revoking, under its lease.
                match plan_release(Some(&item), "B", t(90)) {
                    ReleasePlan::Write {
                        item,
                        outcome,
                        delete,
                        ..
                    } => {
                        assert!(delete);
                        assert_eq!(outcome, Released::Removed);
                        assert_eq!(item.state, ItemState::Revoking);
                        assert_eq!(item.operator.unwrap().execution_name, "B");
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        // A re-run of A's revoke after it left says who holds it now.
        let ReleasePlan::Write { item: after_a, .. } = plan_release(Some(&shared), "A", t(60)) else {
            panic!()
        };
        assert_eq!(
            plan_release(Some(&after_a), "A", t(61)),
            ReleasePlan::Done(Released::LeftToOthers {
                execution_name: "B".into()
            })
        );
    }

    #[test]
    fn standing_items_are_closed_not_deleted_by_their_last_holder() {
        let (standing, _, _) = written(plan_grant(None, Some(true), &claim("A", 60), t(0)));
        match plan_release(Some(&standing), "A", t(60)) {
            ReleasePlan::Write {
                item,
                outcome,
                delete,
                ..
            } => {
                assert!(!delete);
                assert_eq!(outcome, Released::LeftStanding);
                assert_eq!(item.state, ItemState::Closed);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_revoke_left_unfinished_is_resumed_by_its_own_re_run() {
        let held = granted("A", 0, 60);
        let ReleasePlan::Write { item: revoking, .. } = plan_release(Some(&held), "A", t(60)) else {
            panic!()
        };
        match plan_release(Some(&revoking), "A", t(61)) {
            ReleasePlan::Resume { item, expected } => {
                assert_eq!(expected, revoking.version);
                assert_eq!(item.version, revoking.version + 1);
            }
            other => panic!("{other:?}"),
        }
        // Someone else's valid lease is not ours to close.
        assert!(plan_closed(&revoking, "B", t(61)).is_none());
        assert!(matches!(
            plan_release(Some(&revoking), "B", t(61)),
            ReleasePlan::Busy { .. }
        ));
    }

    #[test]
    fn lost_standing_access_is_replaced_by_break_glass_access() {
        let (standing, _, _) = written(plan_grant(None, Some(true), &claim("A", 60), t(0)));
        let (next, source, then) = written(plan_grant(Some(&standing), Some(false), &claim("B", 90), t(10)));
        assert_eq!(
            (next.origin, next.state, source, then),
            (
                Origin::BreakGlass,
                ItemState::Granting,
                AssignmentSource::Created,
                Then::Ensure
            )
        );
    }

    #[test]
    fn items_round_trip_as_json_and_keys_frame_their_parts() {
        let held = granted("A", 0, 60);
        let json = serde_json::to_string(&held).unwrap();
        assert_eq!(serde_json::from_str::<LedgerItem>(&json).unwrap(), held);
        assert_eq!(
            key().pk(),
            "assignment|u-1|123456789012|arn:aws:sso:::permissionSet/ssoins-1/ps-1"
        );
        assert_eq!(held.holds_until(), Some(t(60)));
    }

    #[test]
    fn the_reconciler_removes_only_what_every_holder_has_left() {
        let held = granted("A", 0, 60);
        let (shared, _, _) = written(plan_grant(Some(&held), None, &claim("B", 90), t(30)));
        let ended = |h: &Holder| {
            Some(if h.execution_name == "A" {
                HolderStatus::Ended
            } else {
                HolderStatus::Running
            })
        };
        assert!(matches!(
            plan_reconcile(&shared, &ended, "reconciler", t(100)),
            ReconcilePlan::Leave(_)
        ));
        // Not sure yet (joined too recently): treated as running.
        let unsure = |h: &Holder| (h.execution_name == "A").then_some(HolderStatus::Ended);
        assert!(matches!(
            plan_reconcile(&shared, &unsure, "reconciler", t(100)),
            ReconcilePlan::Leave(_)
        ));
        let all_ended = |_: &Holder| Some(HolderStatus::Ended);
        match plan_reconcile(&shared, &all_ended, "reconciler", t(100)) {
            ReconcilePlan::Remove {
                item,
                expected,
                holders,
            } => {
                assert_eq!(expected, shared.version);
                assert_eq!(item.state, ItemState::Revoking);
                assert_eq!(item.operator.unwrap().execution_name, "reconciler");
                assert_eq!(holders.len(), 2);
                assert!(item.holders.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Standing access is closed, never removed.
        let (standing, _, _) = written(plan_grant(None, Some(true), &claim("A", 60), t(0)));
        assert!(matches!(
            plan_reconcile(&standing, &all_ended, "reconciler", t(100)),
            ReconcilePlan::Close { .. }
        ));
        // A change in flight under a valid lease is not touched.
        let (granting, _, _) = written(plan_grant(None, Some(false), &claim("C", 60), t(0)));
        assert!(matches!(
            plan_reconcile(&granting, &all_ended, "reconciler", t(1)),
            ReconcilePlan::Leave(_)
        ));
        assert!(matches!(
            plan_reconcile(&granting, &all_ended, "reconciler", t(30)),
            ReconcilePlan::Remove { .. }
        ));
    }
}
