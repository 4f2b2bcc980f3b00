//! Backoff with jitter, and polling, on a [`Clock`] so tests run instantly.

use std::future::Future;
use std::time::Duration;

use crate::clock::Clock;
use crate::ports::PortError;

/// Exponential backoff: `first`, doubling, capped at `max`, until `attempts`
/// tries have been made or `budget` of sleeping has been spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
    pub budget: Duration,
    /// Spread each delay over [delay/2, delay] so concurrent executions
    /// retrying the same throttled API don't stay in lockstep.
    pub jitter: bool,
}

impl Backoff {
    /// For throttling and Identity Center's create/delete conflicts.
    pub const API: Backoff = Backoff {
        first: Duration::from_millis(200),
        max: Duration::from_secs(5),
        attempts: 8,
        budget: Duration::from_secs(30),
        jitter: true,
    };

    /// For polling an asynchronous Identity Center request: the first look
    /// comes quickly because provisioning usually takes about a second.
    pub const PROVISIONING: Backoff = Backoff {
        first: Duration::from_millis(250),
        max: Duration::from_secs(3),
        attempts: 60,
        budget: Duration::from_secs(120),
        jitter: false,
    };

    /// This backoff, sleeping no more than `left` in all.
    pub fn within(self, left: Duration) -> Backoff {
        Backoff {
            budget: self.budget.min(left),
            ..self
        }
    }

    /// The delay before retry number `retry` (0-based), before jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(16));
        self.first.saturating_mul(factor).min(self.max)
    }

    fn jittered(&self, retry: u32, seed: i64) -> Duration {
        let delay = self.delay(retry);
        if !self.jitter {
            return delay;
        }
        let half = delay / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_micros(mix(seed as u64 ^ u64::from(retry)) % spread)
    }
}

/// A moment a function's work must be done by, so that its retries and
/// polling stop in time to leave room for what must follow (a rollback, the
/// ledger write) before Lambda stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub chrono::DateTime<chrono::Utc>);

impl Deadline {
    pub fn after(clock: &dyn Clock, from_now: Duration) -> Deadline {
        Deadline(clock.now() + chrono::Duration::from_std(from_now).unwrap_or_default())
    }

    pub fn remaining(&self, clock: &dyn Clock) -> Duration {
        (self.0 - clock.now()).to_std().unwrap_or(Duration::ZERO)
    }

    pub fn passed(&self, clock: &dyn Clock) -> bool {
        clock.now() >= self.0
    }
}

/// splitmix64: enough randomness for jitter without a dependency.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Runs `op` until it succeeds, fails with an error that is not retryable, or
/// the backoff is spent (then the last error is returned).
pub async fn with_retries<T, F, Fut>(clock: &dyn Clock, backoff: Backoff, mut op: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let mut slept = Duration::ZERO;
    let mut retry = 0;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_retryable() && retry + 1 < backoff.attempts => {
                let delay = backoff.jittered(retry, clock.now().timestamp_subsec_nanos().into());
                if slept + delay > backoff.budget {
                    return Err(err);
                }
                tracing::warn!(error = %err, retry, delay_ms = delay.as_millis() as u64, "retrying");
                clock.sleep(delay).await;
                slept += delay;
                retry += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// The outcome of [`poll`]: the last value seen, and whether it was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled<T> {
    Done(T),
    /// Gave up waiting; the last value seen, still not done.
    TimedOut(T),
}

/// Calls `check` until `done` says so, sleeping on the backoff between tries.
pub async fn poll<T, F, Fut>(
    clock: &dyn Clock,
    backoff: Backoff,
    mut check: F,
    done: impl Fn(&T) -> bool,
) -> Result<Polled<T>, PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let mut slept = Duration::ZERO;
    let mut retry = 0;
    loop {
        let value = check().await?;
        if done(&value) {
            return Ok(Polled::Done(value));
        }
        let delay = backoff.delay(retry);
        if retry + 1 >= backoff.attempts || slept + delay > backoff.budget {
            return Ok(Polled::TimedOut(value));
        }
        clock.sleep(delay).await;
        slept += delay;
        retry += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ports::PortErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(kind: PortErrorKind) -> PortError {
        PortError::new(kind, "svc", "Op", "boom")
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_with_growing_jittered_delays() {
        let clock = ManualClock::at_unix(0);
        let calls = AtomicU32::new(0);
        let result = with_retries(&clock, Backoff::API, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(err(PortErrorKind::Throttled))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result, Ok(7));
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 3);
        for (i, s) in sleeps.iter().enumerate() {
            let full = Backoff::API.delay(i as u32);
            assert!(*s >= full / 2 && *s <= full, "{s:?} vs {full:?}");
        }
    }

    #[tokio::test]
    async fn other_errors_fail_at_once() {
        let clock = ManualClock::at_unix(0);
        let result: Result<(), _> = with_retries(&clock, Backoff::API, || async {
            Err(err(PortErrorKind::AccessDenied))
        })
        .await;
        assert_eq!(result.unwrap_err().kind, PortErrorKind::AccessDenied);
        assert!(clock.sleeps().is_empty());
    }

    #[tokio::test]
    async fn retries_stop_when_attempts_run_out() {
        let clock = ManualClock::at_unix(0);
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&clock, Backoff::API, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(err(PortErrorKind::Conflict))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), Backoff::API.attempts);
    }

    #[tokio::test]
    async fn polling_starts_fast_caps_its_delay_and_gives_up_within_budget() {
        let clock = ManualClock::at_unix(0);
        let outcome = poll(
            &clock,
            Backoff::PROVISIONING,
            || async { Ok::<_, PortError>(0) },
            |_| false,
        )
        .await
        .unwrap();
        assert_eq!(outcome, Polled::TimedOut(0));
        let sleeps = clock.sleeps();
        assert_eq!(sleeps[0], Duration::from_millis(250));
        assert!(sleeps.iter().all(|s| *s <= Backoff::PROVISIONING.max));
        assert!(sleeps.iter().sum::<Duration>() <= Backoff::PROVISIONING.budget);
    }
}
