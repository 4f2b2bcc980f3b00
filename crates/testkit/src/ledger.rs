//! An in-memory [`Ledger`] with DynamoDB's conditional-write semantics:
//! for handler tests that need no moto, and as the reference the DynamoDB
//! adapter is tested against.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use break_glass_core::ledger::{ItemState, LedgerItem, LedgerKey};
use break_glass_core::ports::{Ledger, PortError, Written};
use break_glass_core::sessions::{Lease, lease_free};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default)]
pub struct InMemoryLedger {
    items: Arc<Mutex<BTreeMap<String, LedgerItem>>>,
    drift: Arc<Mutex<BTreeMap<String, DateTime<Utc>>>>,
    leases: Arc<Mutex<BTreeMap<String, Lease>>>,
}

impl InMemoryLedger {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LedgerItem>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every item, as a test would inspect the table.
    pub fn items(&self) -> Vec<LedgerItem> {
        self.lock().values().cloned().collect()
    }

    pub fn item(&self, key: &LedgerKey) -> Option<LedgerItem> {
        self.lock().get(&key.pk()).cloned()
    }
}

#[async_trait]
impl Ledger for InMemoryLedger {
    async fn get(&self, key: &LedgerKey) -> Result<Option<LedgerItem>, PortError> {
        Ok(self.item(key))
    }

    async fn put(&self, item: &LedgerItem, expected: Option<u64>) -> Result<Written, PortError> {
        let mut items = self.lock();
        let pk = item.key.pk();
        let stored = items.get(&pk).map(|i| i.version);
        if stored != expected {
            return Ok(Written::Stale);
        }
        items.insert(pk, item.clone());
        Ok(Written::Done)
    }

    async fn open_items(&self) -> Result<Vec<LedgerItem>, PortError> {
        Ok(self
            .lock()
            .values()
            .filter(|i| i.state != ItemState::Closed)
            .cloned()
            .collect())
    }

    async fn note_drift(&self, key: &LedgerKey, now: DateTime<Utc>) -> Result<bool, PortError> {
        let mut drift = self.drift.lock().unwrap_or_else(|e| e.into_inner());
        let due = drift
            .get(&key.pk())
            .is_none_or(|at| now - *at >= chrono::Duration::days(1));
        if due {
            drift.insert(key.pk(), now);
        }
        Ok(due)
    }

    async fn take_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if !lease_free(leases.get(name), owner, now) {
            return Ok(false);
        }
        leases.insert(
            name.to_string(),
            Lease {
                owner: owner.to_string(),
                until,
            },
        );
        Ok(true)
    }

    async fn end_lease(&self, name: &str, owner: &str) -> Result<(), PortError> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.get(name).is_some_and(|l| l.owner == owner) {
            leases.remove(name);
        }
        Ok(())
    }
}
