//! [`Ledger`] on a DynamoDB table: the grant ledger.
//!
//! One item per [`LedgerKey::pk`], partition key `pk` (S) and nothing else.
//! Every field of a [`LedgerItem`] is its own attribute, named as in the
//! type, so a person reading the table in the console sees what the code
//! sees: `version` (N); `origin`, `state`, `user_id`, `account_id`,
//! `permission_set_arn`, `user_name` (S); the operator's lease as `operator`
//! (its execution name) and `lease_until`; `holders` (L of M, one map per
//! holder with its fields, its Slack `thread` as M of `channel` and `ts`);
//! `created_at`, `updated_at`, `closed_at`, `last_change` (M) and
//! `reconcile_attempts` (N, absent when 0). Times are RFC 3339 in UTC, to
//! the precision they were written with, so an item reads back exactly as it
//! was written.
//!
//! Three attributes are derived, written for DynamoDB and never read back:
//!
//! - `open` = `"1"` while the item is not closed: the partition key of the
//!   sparse index [`OPEN_ITEMS_INDEX`], which therefore holds open items only;
//! - `holds_until`: that index's sort key, the latest end of any hold (see
//!   [`holds_until`]), in whole seconds so it sorts as text;
//! - `ttl` (N, epoch seconds) on closed items only: when DynamoDB may delete
//!   them ([`LedgerItem::expires_from_table_at`]).
//!
//! Writes are conditional on the stored `version`; reads that decide are
//! strongly consistent. The index is read by [`Ledger::open_items`] only,
//! and like every global secondary index it is eventually consistent.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use break_glass_core::ledger::{HoldControl, Holder, ItemState, LastChange, Lease, LedgerItem, LedgerKey};
use break_glass_core::ports::{Ledger, PortError, PortErrorKind, Written};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::classify;

const SERVICE: &str = "dynamodb";

/// The sparse global secondary index of open items: partition key `open`,
/// sort key `holds_until`, every attribute projected. The Terraform module
/// and `break_glass_testkit::moto::create_ledger_table` create it so.
pub const OPEN_ITEMS_INDEX: &str = "open-items";

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn get(&self, key: &LedgerKey) -> Result<Option<LedgerItem>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.pk()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetItem", e))?;
        out.item
            .map(|item| from_item(&item).map_err(|e| unreadable("GetItem", &key.pk(), e)))
            .transpose()
    }

    async fn put(&self, item: &LedgerItem, expected: Option<u64>) -> Result<Written, PortError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(item)?));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
        Ok(if landed(request.send().await)? {
            Written::Done
        } else {
            Written::Stale
        })
    }

    async fn note_drift(&self, key: &LedgerKey, now: DateTime<Utc>) -> Result<bool, PortError> {
        // Its own item beside the ledger's (`drift|` + the ledger key), out
        // of the open-items index, expiring after two days.
        let day_ago = (now - chrono::Duration::days(1)).timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("drift|{}", key.pk())))
            .item("reported_at", AttributeValue::N(now.timestamp().to_string()))
            .item(
                "ttl",
                AttributeValue::N((now + chrono::Duration::days(2)).timestamp().to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR reported_at <= :day_ago")
            .expression_attribute_values(":day_ago", AttributeValue::N(day_ago.to_string()))
            .send()
            .await;
        landed(result)
    }

    async fn take_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        // `sessions::lease_free` as a condition: nobody holds it, its time
        // ran out, or it is ours. Its own item (`lease|` + the name), out of
        // the open-items index, expiring a day later.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("lease|{name}")))
            .item("lease_owner", AttributeValue::S(owner.to_string()))
            .item(
                "lease_until",
                AttributeValue::N(until.timestamp_millis().to_string()),
            )
            .item(
                "ttl",
                AttributeValue::N((until + chrono::Duration::days(1)).timestamp().to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR lease_until <= :now OR lease_owner = :me")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp_millis().to_string()))
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
            .send()
            .await;
        landed(result)
    }

    async fn end_lease(&self, name: &str, owner: &str) -> Result<(), PortError> {
        // Expired now, if still ours (a PutItem: the role needs no DeleteItem).
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("lease|{name}")))
            .item("lease_owner", AttributeValue::S(owner.to_string()))
            .item("lease_until", AttributeValue::N("0".into()))
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
            .send()
            .await;
        // Not ours (any more): nothing to give back.
        landed(result).map(|_| ())
    }

    async fn open_items(&self) -> Result<Vec<LedgerItem>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_ITEMS_INDEX)
            .key_condition_expression("#open = :open")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":open", AttributeValue::S("1".into()))
            .into_paginator()
            .items()
            .send();
        let mut open = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| classify(SERVICE, "Query", e))?;
            let pk = item
                .get("pk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            open.push(from_item(&item).map_err(|e| unreadable("Query", &pk, e))?);
        }
        Ok(open)
    }
}

fn unreadable(operation: &'static str, pk: &str, why: String) -> PortError {
    PortError::new(
        PortErrorKind::Other,
        SERVICE,
        operation,
        format!("ledger item {pk} is unreadable: {why}"),
    )
}

/// The sort key of the open-items index: the latest end of any hold; for an
/// open item nobody holds any more (a removal in flight) the end of its
/// operator's lease, else its last change. Always set on open items, since
/// an item without it would be missing from the index.
fn holds_until(item: &LedgerItem) -> DateTime<Utc> {
    item.holds_until()
        .or_else(|| item.operator.as_ref().map(|l| l.until))
        .unwrap_or(item.updated_at)
}

// ------------------------------------------------------------ item → table

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// RFC 3339, UTC, `Z`, with exactly the fraction the time has.
fn time(t: &DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A unit enum's serde name (`break_glass`, `pre_existing`, …).
fn name_of<T: Serialize>(value: &T) -> Result<AttributeValue, PortError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(s(name)),
        other => Err(PortError::new(
            PortErrorKind::Invalid,
            SERVICE,
            "PutItem",
            format!("cannot store {other:?} as a name"),
        )),
    }
}

fn holder_map(h: &Holder) -> Result<AttributeValue, PortError> {
    let mut m = HashMap::from([
        ("execution_name".to_string(), s(&h.execution_name)),
        ("slack_user_id".to_string(), s(&h.slack_user_id)),
        ("joined_at".to_string(), time(&h.joined_at)),
        ("expires_at".to_string(), time(&h.expires_at)),
        ("source".to_string(), name_of(&h.source)?),
    ]);
    if let Some(reason) = &h.reason {
        m.insert("reason".into(), s(reason));
    }
    if let Some((channel, ts)) = &h.thread {
        m.insert(
            "thread".into(),
            AttributeValue::M(HashMap::from([
                ("channel".to_string(), s(channel)),
                ("ts".to_string(), s(ts)),
            ])),
        );
    }
    if let Some(incident) = &h.incident {
        m.insert("incident".into(), s(incident));
    }
    if let Some(requested_at) = &h.requested_at {
        m.insert("requested_at".into(), time(requested_at));
    }
    if let Some(latest_end) = &h.latest_end {
        m.insert("latest_end".into(), time(latest_end));
    }
    if h.control != HoldControl::default() {
        // Kept as one JSON string: the control is read and written whole,
        // always with the item, and never queried.
        let json = serde_json::to_string(&h.control).map_err(|e| {
            PortError::new(
                PortErrorKind::Invalid,
                "dynamodb",
                "PutItem",
                format!("hold control: {e}"),
            )
        })?;
        m.insert("control".into(), s(json));
    }
    Ok(AttributeValue::M(m))
}

/// Whether a conditional `PutItem` landed: `false` when its condition
/// failed, an error for anything else.
fn landed<T>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>>,
) -> Result<bool, PortError> {
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(err) => Err(classify(SERVICE, "PutItem", err)),
    }
}

/// The attributes stored for `item`, derived ones included.
fn to_item(item: &LedgerItem) -> Result<Item, PortError> {
    let mut m: Item = HashMap::from([
        ("pk".to_string(), s(item.key.pk())),
        ("version".to_string(), AttributeValue::N(item.version.to_string())),
        ("origin".to_string(), name_of(&item.origin)?),
        ("state".to_string(), s(item.state.as_str())),
        ("user_id".to_string(), s(&item.key.user_id)),
        ("account_id".to_string(), s(item.key.account_id.as_str())),
        (
            "permission_set_arn".to_string(),
            s(item.key.permission_set_arn.as_str()),
        ),
        ("user_name".to_string(), s(&item.user_name)),
        (
            "holders".to_string(),
            AttributeValue::L(item.holders.iter().map(holder_map).collect::<Result<_, _>>()?),
        ),
        ("created_at".to_string(), time(&item.created_at)),
        ("updated_at".to_string(), time(&item.updated_at)),
        (
            "last_change".to_string(),
            AttributeValue::M(HashMap::from([
                ("by".to_string(), s(&item.last_change.by)),
                ("what".to_string(), s(&item.last_change.what)),
                ("at".to_string(), time(&item.last_change.at)),
            ])),
        ),
    ]);
    if let Some(lease) = &item.operator {
        m.insert("operator".into(), s(&lease.execution_name));
        m.insert("lease_until".into(), time(&lease.until));
    }
    if let Some(closed) = &item.closed_at {
        m.insert("closed_at".into(), time(closed));
    }
    if item.reconcile_attempts > 0 {
        m.insert(
            "reconcile_attempts".into(),
            AttributeValue::N(item.reconcile_attempts.to_string()),
        );
    }
    if item.state == ItemState::Closed {
        if let Some(expires) = item.expires_from_table_at() {
            m.insert("ttl".into(), AttributeValue::N(expires.timestamp().to_string()));
        }
    } else {
        m.insert("open".into(), s("1"));
        m.insert(
            "holds_until".into(),
            s(holds_until(item).to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
    }
    Ok(m)
}

// ------------------------------------------------------------ table → item

fn attr<'a>(m: &'a Item, name: &str) -> Result<&'a AttributeValue, String> {
    m.get(name).ok_or_else(|| format!("no attribute {name}"))
}

fn string(m: &Item, name: &str) -> Result<String, String> {
    attr(m, name)?
        .as_s()
        .cloned()
        .map_err(|_| format!("{name} is not a string"))
}

fn optional_string(m: &Item, name: &str) -> Result<Option<String>, String> {
    m.get(name)
        .map(|v| v.as_s().cloned().map_err(|_| format!("{name} is not a string")))
        .transpose()
}

fn parse_time(name: &str, raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{name} {raw:?}: {e}"))
}

fn time_of(m: &Item, name: &str) -> Result<DateTime<Utc>, String> {
    parse_time(name, &string(m, name)?)
}

fn optional_time(m: &Item, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    optional_string(m, name)?
        .map(|raw| parse_time(name, &raw))
        .transpose()
}

/// The value whose serde name (or string form) is attribute `name`.
fn named<T: DeserializeOwned>(m: &Item, name: &str) -> Result<T, String> {
    let raw = string(m, name)?;
    serde_json::from_value(serde_json::Value::String(raw.clone())).map_err(|e| format!("{name} {raw:?}: {e}"))
}

fn map_of<'a>(m: &'a Item, name: &str) -> Result<&'a Item, String> {
    attr(m, name)?.as_m().map_err(|_| format!("{name} is not a map"))
}

fn number<T: std::str::FromStr>(m: &Item, name: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    m.get(name)
        .map(|v| {
            let raw = v.as_n().map_err(|_| format!("{name} is not a number"))?;
            raw.parse::<T>().map_err(|e| format!("{name} {raw:?}: {e}"))
        })
        .transpose()
}

fn holder_of(v: &AttributeValue) -> Result<Holder, String> {
    let m = v.as_m().map_err(|_| "a holder is not a map".to_string())?;
    Ok(Holder {
        execution_name: string(m, "execution_name")?,
        slack_user_id: string(m, "slack_user_id")?,
        joined_at: time_of(m, "joined_at")?,
        expires_at: time_of(m, "expires_at")?,
        source: named(m, "source")?,
        reason: optional_string(m, "reason")?,
        thread: match m.get("thread") {
            Some(thread) => {
                let thread = thread.as_m().map_err(|_| "thread is not a map".to_string())?;
                Some((string(thread, "channel")?, string(thread, "ts")?))
            }
            None => None,
        },
        incident: optional_string(m, "incident")?,
        requested_at: optional_time(m, "requested_at")?,
        latest_end: optional_time(m, "latest_end")?,
        control: match optional_string(m, "control")? {
            Some(raw) => serde_json::from_str(&raw).map_err(|e| format!("control: {e}"))?,
            None => HoldControl::default(),
        },
    })
}

/// The [`LedgerItem`] an item's attributes describe (derived attributes
/// and anything unknown are ignored).
fn from_item(m: &Item) -> Result<LedgerItem, String> {
    let version = number::<u64>(m, "version")?.ok_or("no attribute version")?;
    let operator = match optional_string(m, "operator")? {
        Some(execution_name) => Some(Lease {
            execution_name,
            until: time_of(m, "lease_until")?,
        }),
        None => None,
    };
    let holders = attr(m, "holders")?
        .as_l()
        .map_err(|_| "holders is not a list".to_string())?
        .iter()
        .map(holder_of)
        .collect::<Result<_, _>>()?;
    let last_change = map_of(m, "last_change")?;
    Ok(LedgerItem {
        key: LedgerKey {
            user_id: string(m, "user_id")?,
            account_id: named(m, "account_id")?,
            permission_set_arn: named(m, "permission_set_arn")?,
        },
        version,
        origin: named(m, "origin")?,
        state: named(m, "state")?,
        operator,
        holders,
        user_name: string(m, "user_name")?,
        created_at: time_of(m, "created_at")?,
        updated_at: time_of(m, "updated_at")?,
        closed_at: optional_time(m, "closed_at")?,
        last_change: LastChange {
            by: string(last_change, "by")?,
            what: string(last_change, "what")?,
            at: time_of(last_change, "at")?,
        },
        reconcile_attempts: number(m, "reconcile_attempts")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use break_glass_core::contract::AssignmentSource;
    use break_glass_core::ledger::Origin;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn item(state: ItemState) -> LedgerItem {
        LedgerItem {
            key: LedgerKey {
                user_id: "u-1".into(),
                account_id: "123456789012".parse().unwrap(),
                permission_set_arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".parse().unwrap(),
            },
            version: 3,
            origin: Origin::BreakGlass,
            state,
            operator: Some(Lease {
                execution_name: "bg-a-g1".into(),
                until: t("2026-11-30T09:07:00.250Z"),
            }),
            holders: vec![
                Holder {
                    execution_name: "bg-a-g1".into(),
                    slack_user_id: "U1".into(),
                    joined_at: t("2026-11-30T09:00:00.123456789Z"),
                    expires_at: t("2026-11-30T10:00:00Z"),
                    source: AssignmentSource::Created,
                    reason: Some("incident 42".into()),
                    thread: Some(("C0INCIDENT".into(), "1700000000.000100".into())),
                    incident: Some("https://incidents.example.com/42".into()),
                    requested_at: Some(t("2026-11-30T08:59:58Z")),
                    latest_end: Some(t("2026-11-30T12:59:58Z")),
                    control: break_glass_core::ledger::HoldControl {
                        token: Some("AQB8AAAAKgAAAAMAAAAAAAAAAeMq/token==".into()),
                        ended_early: Some(break_glass_core::ledger::Stamp {
                            by: "U7".into(),
                            at: t("2026-11-30T09:10:00Z"),
                        }),
                        extensions: vec![],
                        over: true,
                    },
                },
                Holder {
                    execution_name: "bg-b-g1".into(),
                    slack_user_id: "U2".into(),
                    joined_at: t("2026-11-30T09:30:00Z"),
                    expires_at: t("2026-11-30T10:30:00.5Z"),
                    source: AssignmentSource::SharedWithRunningExecution,
                    reason: None,
                    thread: None,
                    incident: None,
                    requested_at: None,
                    latest_end: None,
                    control: Default::default(),
                },
            ],
            user_name: "alice@example.com".into(),
            created_at: t("2026-11-30T09:00:00Z"),
            updated_at: t("2026-11-30T09:30:00Z"),
            closed_at: None,
            last_change: LastChange {
                by: "bg-b-g1".into(),
                what: "joined".into(),
                at: t("2026-11-30T09:30:00Z"),
            },
            reconcile_attempts: 2,
        }
    }

    #[test]
    fn an_item_reads_back_exactly_as_written() {
        for state in [ItemState::Granting, ItemState::Held, ItemState::Revoking] {
            let item = item(state);
            assert_eq!(from_item(&to_item(&item).unwrap()).unwrap(), item);
        }
        let mut closed = item(ItemState::Closed);
        closed.operator = None;
        closed.holders.clear();
        closed.closed_at = Some(t("2026-11-30T10:31:00Z"));
        assert_eq!(from_item(&to_item(&closed).unwrap()).unwrap(), closed);
    }

    #[test]
    fn attributes_are_readable_and_the_index_keys_derived() {
        let stored = to_item(&item(ItemState::Held)).unwrap();
        let text = |name: &str| stored[name].as_s().unwrap().clone();
        assert_eq!(
            text("pk"),
            "assignment|u-1|123456789012|arn:aws:sso:::permissionSet/ssoins-1/ps-1"
        );
        assert_eq!(stored["version"].as_n().unwrap(), "3");
        assert_eq!(text("origin"), "break_glass");
        assert_eq!(text("state"), "held");
        assert_eq!(text("operator"), "bg-a-g1");
        assert_eq!(text("lease_until"), "2026-11-30T09:07:00.250Z");
        assert_eq!(text("open"), "1");
        assert_eq!(
            text("holds_until"),
            "2026-11-30T10:30:00Z",
            "whole seconds, sortable"
        );
        assert!(!stored.contains_key("ttl") && !stored.contains_key("closed_at"));
        let holders = stored["holders"].as_l().unwrap();
        assert_eq!(
            holders[1].as_m().unwrap()["source"].as_s().unwrap(),
            "shared_with_running_execution"
        );
        assert!(!holders[1].as_m().unwrap().contains_key("reason"));
        let thread = holders[0].as_m().unwrap()["thread"].as_m().unwrap();
        assert_eq!(thread["channel"].as_s().unwrap(), "C0INCIDENT");
        assert_eq!(stored["reconcile_attempts"].as_n().unwrap(), "2");
    }

    #[test]
    fn a_removal_in_flight_with_no_holders_left_stays_in_the_index() {
        let mut revoking = item(ItemState::Revoking);
        revoking.holders.clear();
        let stored = to_item(&revoking).unwrap();
        assert_eq!(stored["open"].as_s().unwrap(), "1");
        assert_eq!(stored["holds_until"].as_s().unwrap(), "2026-11-30T09:07:00Z");
    }

    #[test]
    fn closed_items_leave_the_index_and_expire() {
        let mut closed = item(ItemState::Closed);
        closed.operator = None;
        closed.holders.clear();
        closed.closed_at = Some(t("2026-11-30T10:31:00Z"));
        closed.reconcile_attempts = 0;
        let stored = to_item(&closed).unwrap();
        assert!(!stored.contains_key("open") && !stored.contains_key("holds_until"));
        assert!(
            !stored.contains_key("reconcile_attempts"),
            "absent when 0, as in JSON"
        );
        assert!(!stored.contains_key("operator") && !stored.contains_key("lease_until"));
        assert_eq!(
            stored["ttl"].as_n().unwrap(),
            &closed.expires_from_table_at().unwrap().timestamp().to_string()
        );
    }

    #[test]
    fn a_damaged_item_is_named_not_guessed() {
        let mut stored = to_item(&item(ItemState::Held)).unwrap();
        stored.insert("state".into(), s("melting"));
        assert!(from_item(&stored).unwrap_err().contains("state \"melting\""));
        let mut stored = to_item(&item(ItemState::Held)).unwrap();
        stored.remove("user_name");
        assert!(from_item(&stored).unwrap_err().contains("user_name"));
    }
}
