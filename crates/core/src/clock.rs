//! Time, passed in rather than read, so tests can pin "now" and skip sleeps.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    /// Waits for `duration`. A manual clock advances itself instead of waiting.
    async fn sleep(&self, duration: Duration);
}

/// The wall clock and tokio's timer: what the deployed functions use.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A clock that only moves when told to (or when slept on), and remembers
/// every sleep so tests can assert backoff schedules.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(ManualState {
                now,
                sleeps: Vec::new(),
            }),
        }
    }

    pub fn at_unix(seconds: i64) -> Self {
        Self::new(DateTime::from_timestamp(seconds, 0).unwrap_or_default())
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    pub fn set(&self, now: DateTime<Utc>) {
        self.lock().now = now;
    }

    /// Every duration slept so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A poisoned clock only means another test thread panicked; the time
        // value itself is still meaningful.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }
    async fn sleep(&self, duration: Duration) {
        let mut state = self.lock();
        state.sleeps.push(duration);
        state.now += chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_advances_when_slept_on_and_records_it() {
        let clock = ManualClock::at_unix(1_000);
        clock.sleep(Duration::from_millis(1500)).await;
        clock.advance(Duration::from_secs(10));
        assert_eq!(clock.now().timestamp_millis(), 1_000_000 + 11_500);
        assert_eq!(clock.sleeps(), vec![Duration::from_millis(1500)]);
    }
}
