//! The DynamoDB grant ledger through the real SDK against moto's DynamoDB,
//! held to the in-memory reference (`break_glass_testkit::ledger`): the same
//! writes get the same answers and leave the same items.

#![allow(clippy::unwrap_used)]

use break_glass_adapters::ledger::DynamoLedger;
use break_glass_core::contract::AssignmentSource;
use break_glass_core::ledger::{Holder, ItemState, LastChange, Lease, LedgerItem, LedgerKey, Origin};
use break_glass_core::ports::{Ledger, Written};
use break_glass_testkit::ledger::InMemoryLedger;
use break_glass_testkit::moto;
use chrono::{DateTime, Utc};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn ledger() -> (DynamoLedger, aws_sdk_dynamodb::Client, String) {
    let sdk = moto::sdk().await;
    let table = moto::unique("ledger");
    moto::create_ledger_table(&sdk, &table).await.unwrap();
    (
        DynamoLedger::from_sdk(&sdk, &table),
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    )
}

fn key(user: &str) -> LedgerKey {
    LedgerKey {
        user_id: user.into(),
        account_id: "123456789012".parse().unwrap(),
        permission_set_arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".parse().unwrap(),
    }
}

/// A `granting` item as a first grant writes it, sub-second times included.
fn granting(user: &str) -> LedgerItem {
    let now = t("2026-11-30T09:00:00.123Z");
    LedgerItem {
        key: key(user),
        version: 1,
        origin: Origin::BreakGlass,
        state: ItemState::Granting,
        operator: Some(Lease {
            execution_name: "bg-a-g1".into(),
            until: t("2026-11-30T09:07:00.123Z"),
        }),
        holders: vec![Holder {
            execution_name: "bg-a-g1".into(),
            slack_user_id: "U0001".into(),
            joined_at: now,
            expires_at: t("2026-11-30T10:00:00Z"),
            source: AssignmentSource::Created,
            reason: Some("incident #42: \"db down\"".into()),
            thread: Some(("C0INCIDENT".into(), "1700000000.000100".into())),
            incident: Some("https://incidents.example.com/42".into()),
            requested_at: Some(now),
            latest_end: None,
            control: Default::default(),
        }],
        user_name: "alice@example.com".into(),
        created_at: now,
        updated_at: now,
        closed_at: None,
        last_change: LastChange {
            by: "bg-a-g1".into(),
            what: "granting".into(),
            at: now,
        },
        reconcile_attempts: 0,
    }
}

fn next(item: &LedgerItem, f: impl FnOnce(&mut LedgerItem)) -> LedgerItem {
    let mut n = item.clone();
    n.version += 1;
    f(&mut n);
    n
}

fn held(item: &LedgerItem) -> LedgerItem {
    next(item, |n| {
        n.state = ItemState::Held;
        n.operator = None;
        n.holders.push(Holder {
            execution_name: "bg-b-g1".into(),
            slack_user_id: "U0002".into(),
            joined_at: t("2026-11-30T09:30:00Z"),
            expires_at: t("2026-11-30T10:30:00Z"),
            source: AssignmentSource::SharedWithRunningExecution,
            reason: None,
            thread: None,
            incident: None,
            requested_at: None,
            latest_end: None,
            control: Default::default(),
        });
    })
}

fn closed(item: &LedgerItem) -> LedgerItem {
    next(item, |n| {
        n.state = ItemState::Closed;
        n.operator = None;
        n.holders.clear();
        n.closed_at = Some(t("2026-11-30T10:31:00Z"));
        n.reconcile_attempts = 1;
    })
}

#[tokio::test]
async fn an_item_reads_back_exactly_as_it_was_written() {
    let (ledger, _, _) = ledger().await;
    let item = granting("u-roundtrip");
    assert_eq!(ledger.get(&item.key).await.unwrap(), None);
    assert_eq!(ledger.put(&item, None).await.unwrap(), Written::Done);
    assert_eq!(ledger.get(&item.key).await.unwrap(), Some(item.clone()));
    let held = held(&item);
    assert_eq!(ledger.put(&held, Some(1)).await.unwrap(), Written::Done);
    assert_eq!(ledger.get(&item.key).await.unwrap(), Some(held.clone()));
    let closed = closed(&held);
    assert_eq!(ledger.put(&closed, Some(2)).await.unwrap(), Written::Done);
    assert_eq!(ledger.get(&item.key).await.unwrap(), Some(closed));
}

#[tokio::test]
async fn creating_twice_is_stale_and_keeps_the_first() {
    let (ledger, _, _) = ledger().await;
    let first = granting("u-create");
    let mut second = granting("u-create");
    second.holders[0].execution_name = "bg-other-g1".into();
    assert_eq!(ledger.put(&first, None).await.unwrap(), Written::Done);
    assert_eq!(ledger.put(&second, None).await.unwrap(), Written::Stale);
    assert_eq!(ledger.get(&first.key).await.unwrap(), Some(first));
}

#[tokio::test]
async fn a_write_on_a_stale_version_is_stale_and_changes_nothing() {
    let (ledger, _, _) = ledger().await;
    let item = granting("u-stale");
    // Nothing stored yet: expecting any version is stale.
    assert_eq!(ledger.put(&held(&item), Some(1)).await.unwrap(), Written::Stale);
    ledger.put(&item, None).await.unwrap();
    let winner = held(&item);
    assert_eq!(ledger.put(&winner, Some(1)).await.unwrap(), Written::Done);
    // A second writer that read version 1 too loses.
    let loser = next(&item, |n| n.last_change.what = "lost".into());
    assert_eq!(ledger.put(&loser, Some(1)).await.unwrap(), Written::Stale);
    assert_eq!(ledger.put(&loser, Some(7)).await.unwrap(), Written::Stale);
    assert_eq!(ledger.get(&item.key).await.unwrap(), Some(winner));
}

#[tokio::test]
async fn open_items_lists_every_open_item_and_no_closed_one() {
    let (ledger, _, _) = ledger().await;
    let granting_item = granting("u-open-1");
    let held_item = held(&granting("u-open-2"));
    // A removal in flight whose last holder has left: still open.
    let revoking = next(&granting("u-open-3"), |n| {
        n.state = ItemState::Revoking;
        n.holders.clear();
    });
    let closed_item = closed(&held(&granting("u-closed")));
    for item in [&granting_item, &held_item, &revoking, &closed_item] {
        assert_eq!(ledger.put(item, None).await.unwrap(), Written::Done);
    }
    let mut open = ledger.open_items().await.unwrap();
    open.sort_by(|a, b| a.key.user_id.cmp(&b.key.user_id));
    assert_eq!(open, vec![granting_item.clone(), held_item, revoking]);

    // Closing one takes it out of the index.
    ledger.put(&closed(&granting_item), Some(1)).await.unwrap();
    let open: Vec<String> = ledger
        .open_items()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key.user_id)
        .collect();
    assert!(!open.contains(&"u-open-1".to_string()), "{open:?}");
    assert_eq!(open.len(), 2, "{open:?}");
}

#[tokio::test]
async fn open_items_reads_every_page() {
    let (ledger, client, table) = ledger().await;
    // Holders' reasons large enough that a 1 MB query page cannot hold all.
    let reason = "x".repeat(300_000);
    for i in 0..5 {
        let mut item = granting(&format!("u-page-{i}"));
        item.holders[0].reason = Some(reason.clone());
        ledger.put(&item, None).await.unwrap();
    }
    let first_page = client
        .query()
        .table_name(&table)
        .index_name(break_glass_adapters::ledger::OPEN_ITEMS_INDEX)
        .key_condition_expression("#open = :open")
        .expression_attribute_names("#open", "open")
        .expression_attribute_values(":open", aws_sdk_dynamodb::types::AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap();
    assert!(first_page.last_evaluated_key.is_some(), "the items span pages");
    assert_eq!(ledger.open_items().await.unwrap().len(), 5);
}

#[tokio::test]
async fn the_table_reads_as_a_person_would_want() {
    let (ledger, client, table) = ledger().await;
    let item = held(&granting("u-console"));
    ledger.put(&item, None).await.unwrap();
    let stored = client
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(item.key.pk()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let text = |name: &str| stored[name].as_s().unwrap().clone();
    assert_eq!(text("state"), "held");
    assert_eq!(text("origin"), "break_glass");
    assert_eq!(text("user_id"), "u-console");
    assert_eq!(text("account_id"), "123456789012");
    assert_eq!(text("user_name"), "alice@example.com");
    assert_eq!(text("open"), "1");
    assert_eq!(text("holds_until"), "2026-11-30T10:30:00Z");
    assert_eq!(stored["version"].as_n().unwrap(), "2");
    let holders = stored["holders"].as_l().unwrap();
    assert_eq!(holders.len(), 2);
    assert_eq!(
        holders[1].as_m().unwrap()["execution_name"].as_s().unwrap(),
        "bg-b-g1"
    );
    assert!(!stored.contains_key("ttl") && !stored.contains_key("operator"));

    let closed = closed(&item);
    ledger.put(&closed, Some(2)).await.unwrap();
    let stored = client
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(item.key.pk()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!stored.contains_key("open"));
    assert_eq!(
        stored["ttl"].as_n().unwrap(),
        &closed.expires_from_table_at().unwrap().timestamp().to_string()
    );
}

#[tokio::test]
async fn dynamodb_answers_every_write_as_the_in_memory_reference_does() {
    let (dynamo, _, _) = ledger().await;
    let memory = InMemoryLedger::default();
    let a = granting("u-ref-a");
    let b = granting("u-ref-b");
    let script: Vec<(LedgerItem, Option<u64>)> = vec![
        (a.clone(), None),
        (a.clone(), None),
        (held(&a), Some(2)),
        (held(&a), Some(1)),
        (closed(&held(&a)), Some(1)),
        (closed(&held(&a)), Some(2)),
        (b.clone(), Some(1)),
        (b.clone(), None),
        (held(&b), Some(1)),
    ];
    for (i, (item, expected)) in script.iter().enumerate() {
        let want = memory.put(item, *expected).await.unwrap();
        let got = dynamo.put(item, *expected).await.unwrap();
        assert_eq!(got, want, "write {i}: {expected:?} over {:?}", item.key.user_id);
        for key in [&a.key, &b.key] {
            assert_eq!(
                dynamo.get(key).await.unwrap(),
                memory.get(key).await.unwrap(),
                "after write {i}"
            );
        }
    }
    let mut from_dynamo = dynamo.open_items().await.unwrap();
    from_dynamo.sort_by(|x, y| x.key.user_id.cmp(&y.key.user_id));
    assert_eq!(from_dynamo, memory.open_items().await.unwrap());
}
