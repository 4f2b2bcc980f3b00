//! The simulated world: Identity Center's truth and its asynchronous
//! requests, the ledger table, Slack's threads, what each execution has
//! done, the trace, and the invariants checked as the truth changes.
//!
//! Everything lives behind `std::sync::Mutex`es only because the ports must
//! be `Send + Sync`: the simulation runs on one thread, and no lock is held
//! across an `.await` or while another of them is taken.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use break_glass_core::contract::Grant;
use break_glass_core::ledger::{ItemState, LedgerItem, LedgerKey};
use break_glass_core::ports::{PortError, PortErrorKind, Provisioning, ProvisioningStatus, Written};
use chrono::{DateTime, Utc};

use crate::rng::SimRng;

pub const INSTANCE_ARN: &str = "arn:aws:sso:::instance/ssoins-5151515151515151";
pub const PERMISSION_SET_ARN: &str =
    "arn:aws:sso:::permissionSet/ssoins-5151515151515151/ps-0123456789abcdef";
pub const PERMISSION_SET_NAME: &str = "BreakGlassAdmin";
pub const ACCOUNT_ID: &str = "111122223333";
/// The one Identity Center user every execution resolves to.
pub const USER_ID: &str = "94482488-3041-7026-18f0-000000000001";
pub const USER_NAME: &str = "alice";
pub const EMAIL: &str = "alice@example.com";
/// Two Slack identities of the same person (say, two workspaces of a grid).
pub const SLACK_USERS: [&str; 2] = ["U0ALICE", "W0ALICE"];

/// Which grant/revoke logic runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The real grant-access and revoke-access handlers over the ledger.
    Current,
    /// The holder logic before the ledger (commit 63fa70f): holders read
    /// from `ListExecutions`, which lags.
    Legacy,
    /// The current handlers with a ledger that never shows `revoking`: the
    /// last holder's mark before deleting is lost, so a grant may join a
    /// deletion in flight.
    NoRevokingMark,
    /// The current handlers with a ledger that forgets when a break-glass
    /// item was closed: a late `ListAccountAssignments` right after a
    /// verified removal reads as standing access.
    NoTombstone,
    /// End access now records the end in the ledger but never wakes the
    /// hold with its token: the hold runs to its time.
    NoWake,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Legacy => "legacy",
            Self::NoRevokingMark => "no-revoking-mark",
            Self::NoTombstone => "no-tombstone",
            Self::NoWake => "no-wake",
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "current" => Ok(Self::Current),
            "legacy" => Ok(Self::Legacy),
            "no-revoking-mark" => Ok(Self::NoRevokingMark),
            "no-tombstone" => Ok(Self::NoTombstone),
            "no-wake" => Ok(Self::NoWake),
            other => Err(format!(
                "unknown variant {other:?} (current, legacy, no-revoking-mark, no-tombstone, no-wake)"
            )),
        }
    }
}

/// How hostile this seed's world is. Drawn once per seed: a quarter of the
/// seeds are calm (only latency, asynchrony and lag), so the end-state
/// invariant is checked often; the others add faults at rising rates.
#[derive(Debug, Clone)]
pub struct Faults {
    pub level: u8,
    /// Per call: answered ThrottlingException, nothing done.
    pub throttle: f64,
    /// Per call: a 500 before anything was done.
    pub transient: f64,
    /// Per write: done, then the answer lost (a 500 after the fact).
    pub lost: f64,
    /// Per call: the Lambda dies here (before or after the call took effect).
    pub crash: f64,
    /// Per call: the answer takes minutes (the Lambda times out).
    pub hang: f64,
    /// Per call: the answer takes seconds.
    pub slow: f64,
    /// Per create/delete: Identity Center takes longer than any poll budget.
    pub ic_slow: f64,
    /// Per create/delete: Identity Center ends it FAILED.
    pub ic_fail: f64,
    /// Per create: its status is NotFound for a moment.
    pub not_found: f64,
    /// `ListAccountAssignments` shows the state of up to this long ago.
    pub list_lag_ms: u64,
    /// `ListExecutions`/history (legacy only) lag up to this long.
    pub sfn_lag_ms: u64,
    /// Per invocation: Lambda refuses to run it (TooManyRequests).
    pub lambda_throttle: f64,
    /// Per invocation: Lambda.ServiceException, the function never ran.
    pub lambda_error: f64,
}

impl Faults {
    /// Nothing goes wrong, nothing lags.
    pub fn none() -> Faults {
        Faults {
            level: 0,
            throttle: 0.0,
            transient: 0.0,
            lost: 0.0,
            crash: 0.0,
            hang: 0.0,
            slow: 0.0,
            ic_slow: 0.0,
            ic_fail: 0.0,
            not_found: 0.0,
            list_lag_ms: 0,
            sfn_lag_ms: 0,
            lambda_throttle: 0.0,
            lambda_error: 0.0,
        }
    }

    pub fn draw(rng: &mut SimRng) -> Faults {
        let level = rng.below(4) as u8;
        let k = [0.0, 1.0, 3.0, 8.0][level as usize];
        let lag = *rng.pick(&[0, 2_000, 10_000, 60_000]);
        let sfn_lag = *rng.pick(&[0, 1_000, 5_000, 30_000]);
        Faults {
            level,
            throttle: 0.02 * k,
            transient: 0.01 * k,
            lost: 0.01 * k,
            crash: 0.001 * k,
            hang: 0.0002 * k,
            slow: 0.01 * k,
            ic_slow: 0.01 * k,
            ic_fail: 0.005 * k,
            not_found: if level == 0 { 0.2 } else { 0.4 },
            list_lag_ms: lag,
            sfn_lag_ms: sfn_lag,
            lambda_throttle: 0.01 * k,
            lambda_error: 0.001 * k,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqState {
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
struct Request {
    id: String,
    create: bool,
    state: ReqState,
    /// Before this, asking about it answers NotFound.
    visible_at: Duration,
}

/// Identity Center, for our one user, account and permission set.
#[derive(Debug, Default)]
struct Ic {
    standing: bool,
    present: bool,
    /// Every change of `present`, from time zero.
    history: Vec<(Duration, bool)>,
    requests: Vec<Request>,
    next_id: u64,
}

/// An invocation of grant-access.
#[derive(Debug, Clone, Default)]
pub struct GrantInvocation {
    pub id: u64,
    /// It sent a create that Identity Center accepted.
    pub created: bool,
    /// `None` while running, or when Lambda cut it off (crash, timeout).
    pub outcome: Option<Result<(), (String, String)>>,
}

/// What one execution did, as the checks need it.
#[derive(Debug, Clone, Default)]
pub struct ExecutionRecord {
    pub name: String,
    pub slack_user: String,
    pub click: Duration,
    pub minutes: u64,
    pub input: String,
    pub state: String,
    pub started: Option<Duration>,
    pub ended: Option<Duration>,
    pub ending: Option<String>,
    /// Its grant section and when it was recorded (history, for legacy holders).
    pub grant: Option<(Duration, Grant)>,
    /// When the ":unlock:" post landed.
    pub unlocked: Option<Duration>,
    /// When its first Revoke invocation started (or it ended without one).
    pub closed: Option<Duration>,
    pub grant_invocations: Vec<GrantInvocation>,
    pub revoke_verified: bool,
    pub alert: Option<String>,
    pub posts: Vec<String>,
    /// When it was stopped (StopExecution): no further state ran.
    pub aborted: Option<Duration>,
    /// Its hold ended in a removal someone verified (see `track_removal`).
    pub removal_verified: bool,
    /// Reconciler alerts naming it or posted to its thread.
    pub reconciler_alerts: Vec<String>,
    /// When its hold began (CheckHold first entered).
    pub hold_entered: Option<Duration>,
    /// When End access now was recorded for it in the ledger.
    pub end_pressed: Option<Duration>,
    /// Its hold could not store its token and waited without it
    /// (HoldWithoutWaking): End then waits for the hold's end.
    pub hold_fallback: bool,
}

impl ExecutionRecord {
    /// Its Slack thread (see `sim::plan`): `sim-e3` → `1772442000.000004`.
    pub fn thread_ts(&self) -> String {
        let i: usize = short(&self.name)
            .strip_prefix('e')
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX - 1);
        format!("1772442000.{:06}", i + 1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: char,
    pub at: Duration,
    pub detail: String,
}

impl Violation {
    pub fn describe(&self) -> String {
        let what = match self.invariant {
            'a' => "a standing assignment was removed",
            'b' => {
                "every execution ended without a loud alert, yet the assignment's presence differs from standing access"
            }
            'c' => "an execution between its granted post and its revoke found the assignment absent",
            'd' => {
                "an execution that created something ended with neither a verified revoke, a verified rollback nor an alert"
            }
            'e' => {
                "after every execution ended and a reconcile run completed, a break-glass assignment remains"
            }
            's' => "the simulation did not finish",
            _ => "?",
        };
        format!(
            "({}) at {}: {what}: {}",
            self.invariant,
            clock_text(self.at),
            self.detail
        )
    }
}

pub fn clock_text(d: Duration) -> String {
    let ms = d.as_millis();
    format!(
        "+{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

pub struct World {
    pub seed: u64,
    pub variant: Variant,
    pub faults: Faults,
    /// Record trace lines (always on: the digest is over them).
    rng: Mutex<SimRng>,
    start: tokio::time::Instant,
    epoch: DateTime<Utc>,
    last_now: Mutex<DateTime<Utc>>,
    ic: Mutex<Ic>,
    ledger: Mutex<BTreeMap<String, LedgerItem>>,
    /// The Hold states waiting for End access now (`SendTaskSuccess`).
    pub callbacks: break_glass_local::asl::Callbacks,
    executions: Mutex<Vec<ExecutionRecord>>,
    trace: Mutex<Vec<String>>,
    violations: Mutex<Vec<Violation>>,
    stats: Mutex<BTreeMap<&'static str, u64>>,
    next_invocation: Mutex<u64>,
    /// The end of the run: no faults anywhere, for the final reconcile.
    calm: Mutex<bool>,
    /// Every alert a reconciler raised (SNS or the alert channel).
    reconciler_alerts: Mutex<Vec<String>>,
    /// Executions that left the ledger item, until someone closes it with
    /// the removal verified (see `track_removal`).
    removing: Mutex<Vec<String>>,
    /// The final reconcile run's summary, when it completed.
    final_reconcile: Mutex<Option<String>>,
    /// The target account's session-revocation policy, as IAM keeps it.
    iam: Mutex<Iam>,
    /// The grant ledger table's lease items (`Ledger::take_lease`).
    leases: Mutex<BTreeMap<String, break_glass_core::sessions::Lease>>,
}

/// IAM's side of the session policy: its versions (at most five), the
/// default one, the size limit; no conditional writes, as in IAM.
#[derive(Debug)]
pub struct Iam {
    /// (version number, document, created)
    versions: Vec<(u32, String, DateTime<Utc>)>,
    default: u32,
    next: u32,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.seed)
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// 2026-03-02 09:00:00 UTC: a Monday morning.
pub const EPOCH_UNIX: i64 = 1_772_442_000;

/// The session policy as Terraform creates it: a Deny that matches nothing.
pub const INITIAL_SESSION_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoSessionsRevoked","Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"1970-01-01T00:00:00Z"}}}]}"#;

impl World {
    /// Must be called inside the seed's (paused) runtime.
    pub fn new(seed: u64, variant: Variant) -> Arc<World> {
        let mut rng = SimRng::new(seed);
        let faults = Faults::draw(&mut rng);
        let standing = rng.chance(0.3);
        let epoch = DateTime::from_timestamp(EPOCH_UNIX, 0).unwrap_or_default();
        let world = Arc::new(World {
            seed,
            variant,
            faults,
            rng: Mutex::new(rng),
            start: tokio::time::Instant::now(),
            epoch,
            last_now: Mutex::new(epoch),
            ic: Mutex::new(Ic {
                standing,
                present: standing,
                history: vec![(Duration::ZERO, standing)],
                ..Ic::default()
            }),
            ledger: Mutex::new(BTreeMap::new()),
            callbacks: Default::default(),
            executions: Mutex::new(Vec::new()),
            trace: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            stats: Mutex::new(BTreeMap::new()),
            next_invocation: Mutex::new(0),
            calm: Mutex::new(false),
            reconciler_alerts: Mutex::new(Vec::new()),
            removing: Mutex::new(Vec::new()),
            final_reconcile: Mutex::new(None),
            iam: Mutex::new(Iam {
                versions: vec![(1, INITIAL_SESSION_POLICY.to_string(), epoch)],
                default: 1,
                next: 2,
            }),
            leases: Mutex::new(BTreeMap::new()),
        });
        let f = &world.faults;
        world.log(
            "world",
            format!(
                "seed {seed}, variant {}, fault level {}, ListAccountAssignments lag up to {} s, ListExecutions lag up to {} s, standing access: {standing}",
                variant.name(),
                f.level,
                f.list_lag_ms / 1000,
                f.sfn_lag_ms / 1000
            ),
        );
        world
    }

    pub fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.start)
    }

    /// Simulated wall time. Paused tokio time moves in whole milliseconds;
    /// a few random nanoseconds are added (never going backwards) because
    /// the ASL interpreter's FULL jitter and core's retry jitter are seeded
    /// from the clock's sub-second nanoseconds, which would otherwise always
    /// be a multiple of 1 000 000 (and FULL jitter always zero).
    pub fn now(&self) -> DateTime<Utc> {
        let base = self.epoch + chrono::Duration::from_std(self.elapsed()).unwrap_or_default();
        let noise = chrono::Duration::nanoseconds(self.rng(|r| r.below(999_999)) as i64);
        let mut last = lock(&self.last_now);
        let t = (base + noise).max(*last);
        *last = t;
        t
    }

    pub fn rng<R>(&self, f: impl FnOnce(&mut SimRng) -> R) -> R {
        f(&mut lock(&self.rng))
    }

    pub fn log(&self, who: &str, text: impl AsRef<str>) {
        let line = format!("{} {who:<12} {}", clock_text(self.elapsed()), text.as_ref());
        lock(&self.trace).push(line);
    }

    pub fn stat(&self, name: &'static str) {
        *lock(&self.stats).entry(name).or_insert(0) += 1;
    }

    pub fn stats(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.stats).clone()
    }

    pub fn trace(&self) -> Vec<String> {
        lock(&self.trace).clone()
    }

    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.violations).clone()
    }

    pub fn violate(&self, invariant: char, detail: String) {
        let v = Violation {
            invariant,
            at: self.elapsed(),
            detail,
        };
        self.log("VIOLATION", v.describe());
        lock(&self.violations).push(v);
    }

    /// The faults in force: the seed's, or none once the run is calm.
    pub fn faults_now(&self) -> Faults {
        if *lock(&self.calm) {
            Faults::none()
        } else {
            self.faults.clone()
        }
    }

    /// From now on nothing fails or lags (the final reconcile).
    pub fn calm_down(&self) {
        *lock(&self.calm) = true;
        self.log("world", "calm: no more faults");
    }

    /// An alert a reconciler raised: to SNS or the alert channel
    /// (`thread` None), or to a holder's thread.
    pub fn reconciler_alert(&self, by: &str, thread: Option<&str>, text: &str) {
        let first: String = text.chars().take(110).collect();
        self.log(by, format!("RECONCILER ALERT: {first}"));
        self.stat("reconciler alerts");
        let mut all = lock(&self.executions);
        for e in all.iter_mut() {
            let ts = e.thread_ts();
            if thread == Some(ts.as_str()) || (thread.is_none() && text.contains(&e.name)) {
                e.reconciler_alerts.push(text.to_string());
            }
        }
        drop(all);
        lock(&self.reconciler_alerts).push(text.to_string());
    }

    pub fn set_final_reconcile(&self, summary: String) {
        *lock(&self.final_reconcile) = Some(summary);
    }

    pub fn final_reconcile(&self) -> Option<String> {
        lock(&self.final_reconcile).clone()
    }

    pub fn reconciler_alerts(&self) -> Vec<String> {
        lock(&self.reconciler_alerts).clone()
    }

    pub fn next_invocation(&self) -> u64 {
        let mut n = lock(&self.next_invocation);
        *n += 1;
        *n
    }

    // ------------------------------------------------------------ executions

    pub fn add_execution(&self, record: ExecutionRecord) -> usize {
        let mut all = lock(&self.executions);
        all.push(record);
        all.len() - 1
    }

    pub fn execution<R>(&self, i: usize, f: impl FnOnce(&mut ExecutionRecord) -> R) -> R {
        f(&mut lock(&self.executions)[i])
    }

    pub fn executions(&self) -> Vec<ExecutionRecord> {
        lock(&self.executions).clone()
    }

    pub fn label(&self, i: usize) -> String {
        format!("e{i}")
    }

    /// Opens execution `i`'s window for (c): it told the user they have it.
    pub fn unlocked(&self, i: usize) {
        let now = self.elapsed();
        let opened = self.execution(i, |e| {
            if e.unlocked.is_none() && e.closed.is_none() {
                e.unlocked = Some(now);
                true
            } else {
                false
            }
        });
        if opened && !self.present() {
            self.violate(
                'c',
                format!(
                    "{} posted \"granted\" while the assignment is absent",
                    self.label(i)
                ),
            );
        }
    }

    /// Closes execution `i`'s window for (c).
    pub fn close_window(&self, i: usize, why: &str) {
        let now = self.elapsed();
        let closed = self.execution(i, |e| {
            if e.closed.is_none() {
                e.closed = Some(now);
                e.unlocked.is_some()
            } else {
                false
            }
        });
        if closed {
            self.log(&self.label(i), format!("(c) window closed: {why}"));
        }
    }

    // ------------------------------------------------------- Identity Center

    pub fn present(&self) -> bool {
        lock(&self.ic).present
    }

    pub fn standing(&self) -> bool {
        lock(&self.ic).standing
    }

    fn set_present(&self, present: bool, why: &str) {
        let now = self.elapsed();
        let (changed, standing) = {
            let mut ic = lock(&self.ic);
            let changed = ic.present != present;
            if changed {
                ic.present = present;
                ic.history.push((now, present));
            }
            (changed, ic.standing)
        };
        if !changed {
            return;
        }
        self.log(
            "TRUTH",
            format!(
                "assignment {} ({why})",
                if present { "PRESENT" } else { "ABSENT" }
            ),
        );
        if present {
            return;
        }
        if standing {
            self.violate('a', format!("standing access removed by {why}"));
        }
        let open: Vec<usize> = lock(&self.executions)
            .iter()
            .enumerate()
            .filter(|(_, e)| e.unlocked.is_some() && e.closed.is_none())
            .map(|(i, _)| i)
            .collect();
        for i in open {
            self.violate(
                'c',
                format!(
                    "{why} removed the assignment while {} is between its \"granted\" post and its revoke",
                    self.label(i)
                ),
            );
        }
    }

    /// `CreateAccountAssignment` arriving at Identity Center.
    pub fn ic_create(self: &Arc<Self>, by: &str) -> Result<Provisioning, PortError> {
        let now = self.elapsed();
        let f = self.faults_now();
        let mut ic = lock(&self.ic);
        if ic
            .requests
            .iter()
            .any(|r| !r.create && r.state == ReqState::InProgress)
        {
            drop(ic);
            self.stat("ic conflicts");
            self.log(
                by,
                "CreateAccountAssignment -> ConflictException (a deletion is in progress)",
            );
            return Err(PortError::new(
                PortErrorKind::Conflict,
                "identity-center",
                "CreateAccountAssignment",
                "ConflictException: a deletion of this assignment is in progress",
            ));
        }
        ic.next_id += 1;
        let id = format!("create-{}", ic.next_id);
        let (hidden, takes, fails) = self.rng(|r| {
            let hidden = if r.chance(f.not_found) {
                r.millis(100, 3_000)
            } else {
                Duration::ZERO
            };
            let takes = if r.chance(f.ic_slow) {
                r.millis(125_000, 400_000)
            } else if r.chance(0.75) {
                r.millis(200, 3_000)
            } else {
                r.millis(3_000, 20_000)
            };
            (hidden, takes, r.chance(f.ic_fail))
        });
        ic.requests.push(Request {
            id: id.clone(),
            create: true,
            state: ReqState::InProgress,
            visible_at: now + hidden,
        });
        drop(ic);
        self.log(
            by,
            format!(
                "CreateAccountAssignment -> IN_PROGRESS {id} (settles in {:.1} s{})",
                takes.as_secs_f64(),
                if fails {
                    ", to FAIL if there is work to do"
                } else {
                    ""
                }
            ),
        );
        self.settle_later(id.clone(), takes, fails, by.to_string());
        Ok(Provisioning {
            request_id: id,
            status: ProvisioningStatus::InProgress,
        })
    }

    /// `DeleteAccountAssignment` arriving at Identity Center.
    pub fn ic_delete(self: &Arc<Self>, by: &str) -> Result<Provisioning, PortError> {
        let now = self.elapsed();
        let f = self.faults_now();
        let mut ic = lock(&self.ic);
        if ic
            .requests
            .iter()
            .any(|r| r.create && r.state == ReqState::InProgress)
        {
            drop(ic);
            self.stat("ic conflicts");
            self.log(
                by,
                "DeleteAccountAssignment -> ConflictException (a creation is in progress)",
            );
            return Err(PortError::new(
                PortErrorKind::Conflict,
                "identity-center",
                "DeleteAccountAssignment",
                "ConflictException: a creation of this assignment is in progress",
            ));
        }
        if !ic.present {
            drop(ic);
            self.log(by, "DeleteAccountAssignment -> ResourceNotFoundException");
            return Err(PortError::new(
                PortErrorKind::NotFound,
                "identity-center",
                "DeleteAccountAssignment",
                "ResourceNotFoundException: no such assignment",
            ));
        }
        ic.next_id += 1;
        let id = format!("delete-{}", ic.next_id);
        let (takes, fails) = self.rng(|r| {
            let takes = if r.chance(f.ic_slow) {
                r.millis(125_000, 400_000)
            } else if r.chance(0.75) {
                r.millis(200, 3_000)
            } else {
                r.millis(3_000, 20_000)
            };
            (takes, r.chance(f.ic_fail))
        });
        ic.requests.push(Request {
            id: id.clone(),
            create: false,
            state: ReqState::InProgress,
            visible_at: now,
        });
        drop(ic);
        self.log(
            by,
            format!(
                "DeleteAccountAssignment -> IN_PROGRESS {id} (settles in {:.1} s{})",
                takes.as_secs_f64(),
                if fails {
                    ", to FAIL if there is work to do"
                } else {
                    ""
                }
            ),
        );
        self.settle_later(id.clone(), takes, fails, by.to_string());
        Ok(Provisioning {
            request_id: id,
            status: ProvisioningStatus::InProgress,
        })
    }

    fn settle_later(self: &Arc<Self>, id: String, after: Duration, fails: bool, by: String) {
        let world = Arc::clone(self);
        tokio::task::spawn_local(async move {
            tokio::time::sleep(after).await;
            let (create, fails) = {
                let mut ic = lock(&world.ic);
                let present = ic.present;
                let Some(r) = ic.requests.iter_mut().find(|r| r.id == id) else {
                    return;
                };
                // Creating an assignment that exists succeeds (documented);
                // only real work can fail.
                let fails = fails && present != r.create;
                r.state = if fails {
                    ReqState::Failed
                } else {
                    ReqState::Succeeded
                };
                (r.create, fails)
            };
            world.log(
                "idc",
                format!("{id} {}", if fails { "FAILED" } else { "SUCCEEDED" }),
            );
            if !fails {
                world.set_present(create, &format!("{id} sent by {by}"));
            }
        });
    }

    /// `DescribeAccountAssignment{Creation,Deletion}Status`.
    pub fn ic_status(&self, by: &str, request_id: &str, create: bool) -> Result<Provisioning, PortError> {
        let now = self.elapsed();
        let operation = if create {
            "DescribeAccountAssignmentCreationStatus"
        } else {
            "DescribeAccountAssignmentDeletionStatus"
        };
        let found = lock(&self.ic)
            .requests
            .iter()
            .find(|r| r.id == request_id && r.create == create && r.visible_at <= now)
            .map(|r| r.state);
        let Some(state) = found else {
            self.log(
                by,
                format!("{operation} {request_id} -> ResourceNotFoundException"),
            );
            return Err(PortError::new(
                PortErrorKind::NotFound,
                "identity-center",
                operation,
                format!("ResourceNotFoundException: {request_id}"),
            ));
        };
        let status = match state {
            ReqState::InProgress => ProvisioningStatus::InProgress,
            ReqState::Succeeded => ProvisioningStatus::Succeeded,
            ReqState::Failed => ProvisioningStatus::Failed {
                reason: Some("simulated failure".into()),
            },
        };
        if state != ReqState::InProgress {
            self.log(by, format!("{operation} {request_id} -> {state:?}"));
        }
        Ok(Provisioning {
            request_id: request_id.to_string(),
            status,
        })
    }

    /// `ListAccountAssignments`: eventually consistent, the state of a
    /// random moment in the recent past.
    pub fn ic_list(&self, by: &str) -> Vec<String> {
        let now = self.elapsed();
        let list_lag_ms = self.faults_now().list_lag_ms;
        let lag = self.rng(|r| {
            if r.chance(0.5) {
                Duration::ZERO
            } else {
                Duration::from_millis(r.below(list_lag_ms + 1))
            }
        });
        let seen_at = now.saturating_sub(lag);
        let present = {
            let ic = lock(&self.ic);
            ic.history
                .iter()
                .rev()
                .find(|(t, _)| *t <= seen_at)
                .map(|(_, p)| *p)
                .unwrap_or(ic.standing)
        };
        self.log(
            by,
            format!(
                "ListAccountAssignments -> {} (as of {:.1} s ago)",
                if present { "listed" } else { "not listed" },
                lag.as_secs_f64()
            ),
        );
        if present {
            vec![USER_ID.to_string()]
        } else {
            Vec::new()
        }
    }

    // ---------------------------------------------------------------- ledger

    pub fn ledger_get(&self, key: &LedgerKey) -> Option<LedgerItem> {
        let mut item = lock(&self.ledger).get(&key.pk()).cloned();
        if self.variant == Variant::NoTombstone {
            // The mutant: no record of when the removal was verified.
            if let Some(item) = item.as_mut() {
                item.closed_at = None;
            }
        }
        item
    }

    pub fn ledger_put(&self, by: &str, item: &LedgerItem, expected: Option<u64>) -> Written {
        let mut stored = item.clone();
        if self.variant == Variant::NoRevokingMark && stored.state == ItemState::Revoking {
            // The mutant: the mark that keeps grants out of a deletion in
            // flight never reaches the table.
            stored.state = ItemState::Held;
        }
        let (written, before) = {
            let mut table = lock(&self.ledger);
            let pk = stored.key.pk();
            if table.get(&pk).map(|i| i.version) != expected {
                (Written::Stale, None)
            } else {
                (Written::Done, table.insert(pk, stored))
            }
        };
        if written == Written::Done {
            self.track_removal(by, item, before.as_ref());
        }
        self.log(
            by,
            format!(
                "ledger put {} expecting {expected:?} -> {written:?}",
                item_text(item)
            ),
        );
        if written == Written::Done {
            // How often the rarer rules ran, so a run shows what it reached.
            match item.last_change.what.as_str() {
                "granting (taken over)" => self.stat("ledger: granting taken over"),
                "standing access gone; granting" => self.stat("ledger: lost standing access replaced"),
                "joined standing access" => self.stat("ledger: joined standing access"),
                "joined" => self.stat("ledger: joined a break-glass hold"),
                "removing" => self.stat("ledger: marked revoking"),
                "removed and verified" => self.stat("ledger: removals verified and closed"),
                _ => {}
            }
        }
        written
    }

    /// Which executions a verified removal covers: everyone who has left
    /// the item (as a holder or as the one holding its lease: a revoke, a
    /// rollback, a grant taken over, the reconciler) since the last one,
    /// once someone verifies a removal and closes the item. Whoever keeps
    /// an item keeps the assignment it stands for; the removal verified
    /// after an execution left is the end of what it created.
    fn track_removal(&self, by: &str, item: &LedgerItem, before: Option<&LedgerItem>) {
        let names = |i: &LedgerItem| -> Vec<String> {
            i.holders
                .iter()
                .map(|h| h.execution_name.clone())
                .chain(i.operator.iter().map(|l| l.execution_name.clone()))
                .collect()
        };
        let now_in = names(item);
        let covered = {
            let mut pending = lock(&self.removing);
            for name in before.map(names).unwrap_or_default() {
                if !now_in.contains(&name) && !pending.contains(&name) {
                    pending.push(name);
                }
            }
            if item.last_change.what != "removed and verified" {
                return;
            }
            std::mem::take(&mut *pending)
        };
        let mut all = lock(&self.executions);
        let mut aborted = Vec::new();
        for e in all.iter_mut().filter(|e| covered.contains(&e.name)) {
            e.removal_verified = true;
            if e.aborted.is_some() {
                aborted.push(short(&e.name).to_string());
            }
        }
        drop(all);
        if !aborted.is_empty() {
            self.stat("aborted holds removed and verified");
            self.log(
                by,
                format!("(covers the removal for aborted {})", aborted.join(", ")),
            );
        }
    }

    /// `GetPolicy` + `GetPolicyVersion` + `ListPolicyVersions`.
    pub fn iam_read(&self) -> break_glass_core::sessions::PolicyState {
        let iam = lock(&self.iam);
        let document = iam
            .versions
            .iter()
            .find(|v| v.0 == iam.default)
            .map(|v| v.1.clone())
            .unwrap_or_default();
        break_glass_core::sessions::PolicyState {
            document,
            versions: iam
                .versions
                .iter()
                .map(|(n, _, created)| break_glass_core::sessions::PolicyVersion {
                    id: format!("v{n}"),
                    is_default: *n == iam.default,
                    created: *created,
                })
                .collect(),
        }
    }

    /// `DeletePolicyVersion`: never the default one.
    pub fn iam_delete(&self, by: &str, id: &str) -> Result<(), PortError> {
        let mut iam = lock(&self.iam);
        let n: u32 = id.trim_start_matches('v').parse().unwrap_or(0);
        if n == iam.default {
            return Err(PortError::new(
                PortErrorKind::Conflict,
                "iam",
                "DeletePolicyVersion",
                "DeleteConflict: the default version",
            ));
        }
        let before = iam.versions.len();
        iam.versions.retain(|v| v.0 != n);
        if iam.versions.len() == before {
            return Err(PortError::new(
                PortErrorKind::NotFound,
                "iam",
                "DeletePolicyVersion",
                "NoSuchEntity",
            ));
        }
        drop(iam);
        self.log(by, format!("iam: deleted policy version {id}"));
        Ok(())
    }

    /// `CreatePolicyVersion` with `SetAsDefault`.
    pub fn iam_write(&self, by: &str, document: &str) -> Result<(), PortError> {
        if break_glass_core::sessions::size(document) > break_glass_core::sessions::MAX_DOCUMENT_CHARS {
            return Err(PortError::new(
                PortErrorKind::Invalid,
                "iam",
                "CreatePolicyVersion",
                "LimitExceeded: policy size",
            ));
        }
        let now = self.now();
        let mut iam = lock(&self.iam);
        if iam.versions.len() >= break_glass_core::sessions::MAX_VERSIONS {
            return Err(PortError::new(
                PortErrorKind::Invalid,
                "iam",
                "CreatePolicyVersion",
                "LimitExceeded: 5 versions",
            ));
        }
        let n = iam.next;
        iam.next += 1;
        iam.versions.push((n, document.to_string(), now));
        iam.default = n;
        drop(iam);
        self.log(by, format!("iam: policy version v{n} is the default: {document}"));
        self.stat("session policy writes");
        Ok(())
    }

    /// The lease rule, on the table's lease items.
    pub fn lease_take(&self, name: &str, owner: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> bool {
        let mut leases = lock(&self.leases);
        if !break_glass_core::sessions::lease_free(leases.get(name), owner, now) {
            return false;
        }
        leases.insert(
            name.to_string(),
            break_glass_core::sessions::Lease {
                owner: owner.to_string(),
                until,
            },
        );
        true
    }

    pub fn lease_end(&self, name: &str, owner: &str) {
        let mut leases = lock(&self.leases);
        if leases.get(name).is_some_and(|l| l.owner == owner) {
            leases.remove(name);
        }
    }

    pub fn ledger_open_items(&self) -> Vec<LedgerItem> {
        lock(&self.ledger)
            .values()
            .filter(|i| i.state != ItemState::Closed)
            .cloned()
            .collect()
    }
}

pub fn item_text(item: &LedgerItem) -> String {
    let holders: Vec<String> = item
        .holders
        .iter()
        .map(|h| format!("{}:{:?}", short(&h.execution_name), h.source))
        .collect();
    format!(
        "v{} {:?}/{} holders [{}]{}",
        item.version,
        item.origin,
        item.state.as_str(),
        holders.join(", "),
        item.operator
            .as_ref()
            .map(|l| format!(" operator {}", short(&l.execution_name)))
            .unwrap_or_default()
    )
}

/// `sim-e2` → `e2`.
pub fn short(name: &str) -> &str {
    name.strip_prefix("sim-").unwrap_or(name)
}
