//! The hold: how long a grant lasts, and how Slack ends it early or moves it.
//!
//! The state machine holds a grant in a loop (`CheckHold` → `Hold` →
//! `CheckHold` …, see ARCHITECTURE.md): `CheckHold` reads this execution's
//! holder in the ledger (strongly consistent) and either says how many
//! seconds are left or that the hold is over, which it records
//! (`control.over`) before the revoke runs. `Hold` is a callback task whose
//! timeout is those seconds: its Lambda stores the task token on the holder,
//! and the End button sends it success to wake the hold at once. Extend
//! only moves `expires_at`: the hold wakes at the old time, `CheckHold`
//! reads the new one and holds again.
//!
//! The End and Extend buttons and the hold step change the same item under
//! the same version condition, so they are ordered: an End written before
//! the token is stored is seen by the token's writer (which then wakes the
//! hold by failing), an End written after finds the token; an Extend after
//! `over` is refused, and one before it is read by `CheckHold`. Nothing here
//! can keep access longer than `expires_at` said when `CheckHold` last read
//! it, and every way out of the loop leads to the revoke.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Holder, ItemState, LedgerItem, Stamp};

/// A hold this close to its end is over: waking for a second or two more
/// would cost a loop and gain nothing.
pub const END_SLACK: Duration = Duration::from_secs(2);

/// Why a hold is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldEnd {
    /// Its time ran out.
    Expired,
    /// Somebody pressed End access now.
    EndedEarly(Stamp),
    /// The ledger has no hold of this execution (the revoke already ran,
    /// or the grant never recorded one): the revoke decides.
    NotHeld,
}

/// What `CheckHold` does.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckPlan {
    /// Hold for `seconds` more (until `until`).
    Hold { seconds: u64, until: DateTime<Utc> },
    /// The hold is over: write `write` (if any) on condition of version
    /// `expected`, then revoke.
    Over {
        why: HoldEnd,
        write: Option<(LedgerItem, u64)>,
    },
}

fn holder_mut<'a>(item: &'a mut LedgerItem, me: &str) -> Option<&'a mut Holder> {
    item.holders.iter_mut().find(|h| h.execution_name == me)
}

fn whole_seconds_until(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let millis = (until - now).num_milliseconds().max(0) as u64;
    millis.div_ceil(1000)
}

/// Decides `CheckHold` for execution `me` from its item as read.
pub fn plan_check(item: Option<&LedgerItem>, me: &str, now: DateTime<Utc>) -> CheckPlan {
    let Some(item) = item.filter(|i| i.state != ItemState::Closed) else {
        return CheckPlan::Over {
            why: HoldEnd::NotHeld,
            write: None,
        };
    };
    let Some(holder) = item.holder(me) else {
        return CheckPlan::Over {
            why: HoldEnd::NotHeld,
            write: None,
        };
    };
    let why = match &holder.control.ended_early {
        Some(stamp) => HoldEnd::EndedEarly(stamp.clone()),
        None => HoldEnd::Expired,
    };
    let left = whole_seconds_until(holder.expires_at, now);
    if holder.control.ended_early.is_none() && !holder.control.over && left > END_SLACK.as_secs() {
        return CheckPlan::Hold {
            seconds: left,
            until: holder.expires_at,
        };
    }
    if holder.control.over {
        return CheckPlan::Over { why, write: None };
    }
    let mut next = item.next(me, "hold over: revoking", now);
    if let Some(h) = holder_mut(&mut next, me) {
        h.control.over = true;
        h.control.token = None;
    }
    CheckPlan::Over {
        why,
        write: Some((next, item.version)),
    }
}

/// What the `Hold` task's Lambda does with its task token.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterPlan {
    /// Store the token.
    Write { item: LedgerItem, expected: u64 },
    /// Stored already (a retried invocation).
    Stored,
    /// The hold is to end now (End was pressed before the token could be
    /// stored, or the hold is no longer in the ledger): fail the task so the
    /// hold wakes.
    Wake(HoldEnd),
}

pub fn plan_register(item: Option<&LedgerItem>, me: &str, token: &str, now: DateTime<Utc>) -> RegisterPlan {
    let holder = item
        .filter(|i| i.state != ItemState::Closed)
        .and_then(|i| i.holder(me));
    let (Some(item), Some(holder)) = (item, holder) else {
        return RegisterPlan::Wake(HoldEnd::NotHeld);
    };
    if let Some(stamp) = &holder.control.ended_early {
        return RegisterPlan::Wake(HoldEnd::EndedEarly(stamp.clone()));
    }
    if holder.control.over {
        return RegisterPlan::Wake(HoldEnd::Expired);
    }
    if holder.control.token.as_deref() == Some(token) {
        return RegisterPlan::Stored;
    }
    let mut next = item.next(me, "holding: task token stored", now);
    if let Some(h) = holder_mut(&mut next, me) {
        h.control.token = Some(token.to_string());
    }
    RegisterPlan::Write {
        item: next,
        expected: item.version,
    }
}

/// Who pressed a button, and whether they are one of the administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presser<'a> {
    pub slack_user_id: &'a str,
    pub is_admin: bool,
}

/// Why an End or Extend changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlRefusal {
    #[error("this grant has already ended")]
    NotHeld,
    #[error("only the person who broke glass (or a break-glass administrator) can do that")]
    NotYours,
    #[error("this grant is past its hold: access is being revoked")]
    PastHold,
    #[error("access is already ending (asked by <@{}>)", .0.by)]
    AlreadyEnding(Stamp),
    #[error(
        "that would end access at {}, past the longest break glass allows ({})",
        crate::contract::timestamp::format(.wanted),
        crate::contract::timestamp::format(.cap)
    )]
    PastCap {
        wanted: DateTime<Utc>,
        cap: DateTime<Utc>,
    },
}

/// The holder `presser` may control, or why not.
fn controllable<'a>(
    item: Option<&'a LedgerItem>,
    me: &str,
    presser: Presser<'_>,
) -> Result<(&'a LedgerItem, &'a Holder), ControlRefusal> {
    let item = item
        .filter(|i| i.state != ItemState::Closed)
        .ok_or(ControlRefusal::NotHeld)?;
    let holder = item.holder(me).ok_or(ControlRefusal::NotHeld)?;
    // Who may comes before anything about the hold: a stranger learns
    // nothing from the answer but "not yours".
    if holder.slack_user_id != presser.slack_user_id && !presser.is_admin {
        return Err(ControlRefusal::NotYours);
    }
    if holder.control.over || item.state == ItemState::Revoking {
        return Err(ControlRefusal::PastHold);
    }
    Ok((item, holder))
}

/// An End that was written: wake the hold with `token`, when there is one
/// (without, the token's writer sees the end and wakes the hold itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndPlan {
    pub item: LedgerItem,
    pub expected: u64,
    pub token: Option<String>,
}

/// End access now. A second press (a double click) is `AlreadyEnding`, and
/// changes nothing.
pub fn plan_end(
    item: Option<&LedgerItem>,
    me: &str,
    presser: Presser<'_>,
    now: DateTime<Utc>,
) -> Result<EndPlan, ControlRefusal> {
    let (item, holder) = controllable(item, me, presser)?;
    if let Some(stamp) = &holder.control.ended_early {
        return Err(ControlRefusal::AlreadyEnding(stamp.clone()));
    }
    if whole_seconds_until(holder.expires_at, now) <= END_SLACK.as_secs() {
        return Err(ControlRefusal::PastHold);
    }
    let token = holder.control.token.clone();
    let mut next = item.next(
        presser.slack_user_id,
        format!("end access now, asked by {}", presser.slack_user_id),
        now,
    );
    if let Some(h) = holder_mut(&mut next, me) {
        h.control.ended_early = Some(Stamp {
            by: presser.slack_user_id.to_string(),
            at: now,
        });
    }
    Ok(EndPlan {
        item: next,
        expected: item.version,
        token,
    })
}

/// What an Extend does.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendPlan {
    /// Write `item`: the hold now ends at `until`.
    Write {
        item: LedgerItem,
        expected: u64,
        until: DateTime<Utc>,
    },
    /// The hold was already moved past `from` (a double click, or a button
    /// from an older message): nothing changes, it ends at `until`.
    Already { until: DateTime<Utc> },
}

/// Extend by `by`, from `from` (the end the pressed button showed, which
/// makes a double click extend once). Refused, not clamped, past
/// `requested_at + longest`.
pub fn plan_extend(
    item: Option<&LedgerItem>,
    me: &str,
    presser: Presser<'_>,
    from: DateTime<Utc>,
    by: chrono::Duration,
    longest: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<ExtendPlan, ControlRefusal> {
    let (item, holder) = controllable(item, me, presser)?;
    if let Some(stamp) = &holder.control.ended_early {
        return Err(ControlRefusal::AlreadyEnding(stamp.clone()));
    }
    if whole_seconds_until(holder.expires_at, now) <= END_SLACK.as_secs() {
        return Err(ControlRefusal::PastHold);
    }
    if holder.expires_at > from {
        return Ok(ExtendPlan::Already {
            until: holder.expires_at,
        });
    }
    let wanted = holder.expires_at + by;
    let mut cap = holder.requested_at.unwrap_or(holder.joined_at) + longest;
    if let Some(rule_cap) = holder.latest_end {
        cap = cap.min(rule_cap);
    }
    if wanted > cap {
        return Err(ControlRefusal::PastCap { wanted, cap });
    }
    let mut next = item.next(
        presser.slack_user_id,
        format!(
            "extended to {}, asked by {}",
            crate::contract::timestamp::format(&wanted),
            presser.slack_user_id
        ),
        now,
    );
    if let Some(h) = holder_mut(&mut next, me) {
        h.expires_at = wanted;
        h.control.extensions.push(Stamp {
            by: presser.slack_user_id.to_string(),
            at: now,
        });
    }
    Ok(ExtendPlan::Write {
        item: next,
        expected: item.version,
        until: wanted,
    })
}

/// The holds `slack_user_id` has running in `items` (for App Home): every
/// open item's holder of theirs whose hold is not over, soonest end first.
pub fn active_holds<'a>(items: &'a [LedgerItem], slack_user_id: &str) -> Vec<(&'a LedgerItem, &'a Holder)> {
    let mut holds: Vec<_> = items
        .iter()
        .filter(|i| i.state == ItemState::Held)
        .flat_map(|i| i.holders.iter().map(move |h| (i, h)))
        .filter(|(_, h)| {
            h.slack_user_id == slack_user_id && !h.control.over && h.control.ended_early.is_none()
        })
        .collect();
    holds.sort_by_key(|(_, h)| h.expires_at);
    holds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::AssignmentSource;
    use crate::ledger::{HoldControl, LastChange, LedgerKey, Origin};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn holder(name: &str, user: &str, expires: i64) -> Holder {
        Holder {
            execution_name: name.into(),
            slack_user_id: user.into(),
            joined_at: t(0),
            expires_at: t(expires),
            source: AssignmentSource::Created,
            reason: Some("db on fire".into()),
            thread: None,
            incident: None,
            requested_at: Some(t(0)),
            latest_end: None,
            control: HoldControl::default(),
        }
    }

    fn item(holders: Vec<Holder>) -> LedgerItem {
        LedgerItem {
            key: LedgerKey {
                user_id: "u-1".into(),
                account_id: "123456789012".parse().unwrap(),
                permission_set_arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".parse().unwrap(),
            },
            version: 7,
            origin: Origin::BreakGlass,
            state: ItemState::Held,
            operator: None,
            holders,
            user_name: "alice".into(),
            created_at: t(0),
            updated_at: t(0),
            closed_at: None,
            last_change: LastChange {
                by: "x".into(),
                what: "y".into(),
                at: t(0),
            },
            reconcile_attempts: 0,
        }
    }

    const ALICE: Presser<'static> = Presser {
        slack_user_id: "U1",
        is_admin: false,
    };
    const MALLORY: Presser<'static> = Presser {
        slack_user_id: "U9",
        is_admin: false,
    };
    const ADMIN: Presser<'static> = Presser {
        slack_user_id: "U7",
        is_admin: true,
    };

    fn written(plan: CheckPlan) -> LedgerItem {
        match plan {
            CheckPlan::Over {
                write: Some((item, 7)),
                ..
            } => item,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn a_hold_with_time_left_holds_for_exactly_that_long() {
        let i = item(vec![holder("e1", "U1", 3600)]);
        assert_eq!(
            plan_check(Some(&i), "e1", t(600)),
            CheckPlan::Hold {
                seconds: 3000,
                until: t(3600)
            }
        );
    }

    #[test]
    fn an_expired_hold_is_marked_over_so_nothing_can_extend_it_after() {
        let i = item(vec![holder("e1", "U1", 3600)]);
        let next = written(plan_check(Some(&i), "e1", t(3599)));
        assert!(next.holder("e1").unwrap().control.over);
        assert_eq!(next.version, 8);
        assert_eq!(
            plan_extend(
                Some(&next),
                "e1",
                ALICE,
                t(3600),
                chrono::Duration::minutes(60),
                chrono::Duration::hours(4),
                t(3599)
            ),
            Err(ControlRefusal::PastHold)
        );
        // A second look (a retried CheckHold) writes nothing more.
        assert!(matches!(
            plan_check(Some(&next), "e1", t(3700)),
            CheckPlan::Over {
                why: HoldEnd::Expired,
                write: None
            }
        ));
    }

    #[test]
    fn a_missing_item_or_holder_is_over_and_left_to_the_revoke() {
        assert!(matches!(
            plan_check(None, "e1", t(0)),
            CheckPlan::Over {
                why: HoldEnd::NotHeld,
                write: None
            }
        ));
        let i = item(vec![holder("e2", "U1", 3600)]);
        assert!(matches!(
            plan_check(Some(&i), "e1", t(0)),
            CheckPlan::Over {
                why: HoldEnd::NotHeld,
                ..
            }
        ));
    }

    #[test]
    fn end_now_by_the_requester_is_recorded_and_wakes_the_stored_token() {
        let mut h = holder("e1", "U1", 3600);
        h.control.token = Some("tok".into());
        let i = item(vec![h]);
        let plan = plan_end(Some(&i), "e1", ALICE, t(60)).unwrap();
        assert_eq!(plan.token.as_deref(), Some("tok"));
        assert_eq!(plan.expected, 7);
        let stamp = plan
            .item
            .holder("e1")
            .unwrap()
            .control
            .ended_early
            .clone()
            .unwrap();
        assert_eq!(stamp.by, "U1");
        // The hold step then ends it, whatever time is left.
        let checked = plan_check(Some(&plan.item), "e1", t(61));
        assert!(matches!(
            checked,
            CheckPlan::Over {
                why: HoldEnd::EndedEarly(_),
                write: Some(_)
            }
        ));
        // A double click changes nothing.
        assert!(matches!(
            plan_end(Some(&plan.item), "e1", ALICE, t(62)),
            Err(ControlRefusal::AlreadyEnding(_))
        ));
    }

    #[test]
    fn an_end_before_the_token_is_stored_is_seen_by_the_token_writer() {
        let i = item(vec![holder("e1", "U1", 3600)]);
        let plan = plan_end(Some(&i), "e1", ALICE, t(1)).unwrap();
        assert_eq!(plan.token, None);
        assert!(matches!(
            plan_register(Some(&plan.item), "e1", "tok", t(2)),
            RegisterPlan::Wake(HoldEnd::EndedEarly(_))
        ));
        // Without an end, the token is stored once.
        let RegisterPlan::Write { item: stored, .. } = plan_register(Some(&i), "e1", "tok", t(2)) else {
            panic!("expected the token to be stored");
        };
        assert_eq!(
            plan_register(Some(&stored), "e1", "tok", t(3)),
            RegisterPlan::Stored
        );
    }

    #[test]
    fn only_the_requester_or_an_administrator_may_end_or_extend() {
        let i = item(vec![holder("e1", "U1", 3600)]);
        assert_eq!(
            plan_end(Some(&i), "e1", MALLORY, t(1)),
            Err(ControlRefusal::NotYours)
        );
        let hour = chrono::Duration::hours(1);
        assert_eq!(
            plan_extend(Some(&i), "e1", MALLORY, t(3600), hour, hour * 4, t(1)),
            Err(ControlRefusal::NotYours)
        );
        assert!(plan_end(Some(&i), "e1", ADMIN, t(1)).is_ok());
        assert!(matches!(
            plan_extend(Some(&i), "e1", ADMIN, t(3600), hour, hour * 4, t(1)),
            Ok(ExtendPlan::Write { .. })
        ));
    }

    #[test]
    fn extending_moves_the_end_once_per_button_and_never_past_the_cap() {
        let hour = chrono::Duration::hours(1);
        let i = item(vec![holder("e1", "U1", 3600)]);
        let ExtendPlan::Write {
            item: once, until, ..
        } = plan_extend(Some(&i), "e1", ALICE, t(3600), hour, hour * 3, t(10)).unwrap()
        else {
            panic!("expected an extension");
        };
        assert_eq!(until, t(7200));
        assert_eq!(once.holder("e1").unwrap().expires_at, t(7200));
        // The same button again: already done.
        assert_eq!(
            plan_extend(Some(&once), "e1", ALICE, t(3600), hour, hour * 3, t(11)),
            Ok(ExtendPlan::Already { until: t(7200) })
        );
        // From the new end: to 3 h, exactly the cap, is allowed...
        let ExtendPlan::Write { item: twice, .. } =
            plan_extend(Some(&once), "e1", ALICE, t(7200), hour, hour * 3, t(12)).unwrap()
        else {
            panic!("expected an extension to the cap");
        };
        // ...one more hour is refused, and not clamped.
        assert_eq!(
            plan_extend(Some(&twice), "e1", ALICE, t(10800), hour, hour * 3, t(13)),
            Err(ControlRefusal::PastCap {
                wanted: t(14400),
                cap: t(10800)
            })
        );
        // The hold step reads the new end.
        assert_eq!(
            plan_check(Some(&twice), "e1", t(3600)),
            CheckPlan::Hold {
                seconds: 7200,
                until: t(10800)
            }
        );
    }

    #[test]
    fn a_rule_that_allows_less_caps_extensions_below_the_longest() {
        let hour = chrono::Duration::hours(1);
        let mut h = holder("e1", "U1", 3600);
        h.latest_end = Some(t(5400));
        let i = item(vec![h]);
        assert_eq!(
            plan_extend(Some(&i), "e1", ALICE, t(3600), hour, hour * 4, t(10)),
            Err(ControlRefusal::PastCap {
                wanted: t(7200),
                cap: t(5400)
            })
        );
        assert!(matches!(
            plan_extend(
                Some(&i),
                "e1",
                ALICE,
                t(3600),
                chrono::Duration::minutes(30),
                hour * 4,
                t(10)
            ),
            Ok(ExtendPlan::Write { .. })
        ));
    }

    #[test]
    fn nothing_is_controllable_once_revoking_or_closed() {
        let mut i = item(vec![holder("e1", "U1", 3600)]);
        i.state = ItemState::Revoking;
        assert_eq!(
            plan_end(Some(&i), "e1", ALICE, t(1)),
            Err(ControlRefusal::PastHold)
        );
        i.state = ItemState::Closed;
        assert_eq!(
            plan_end(Some(&i), "e1", ALICE, t(1)),
            Err(ControlRefusal::NotHeld)
        );
        assert_eq!(plan_end(None, "e1", ALICE, t(1)), Err(ControlRefusal::NotHeld));
    }

    #[test]
    fn active_holds_are_the_users_own_running_ones() {
        let mut ended = holder("e3", "U1", 900);
        ended.control.over = true;
        let items = vec![
            item(vec![holder("e1", "U1", 3600), holder("e2", "U2", 60)]),
            item(vec![holder("e4", "U1", 1800), ended]),
        ];
        let mine: Vec<_> = active_holds(&items, "U1")
            .into_iter()
            .map(|(_, h)| h.execution_name.as_str())
            .collect();
        assert_eq!(mine, ["e4", "e1"]);
    }
}
