//! Deterministic simulation of break-glass-access under concurrency: the
//! proof that the grant ledger keeps its promises when several executions
//! for the same user, account and permission set overlap, and everything
//! around them is slow, lagging, failing or crashing.
//!
//! Each seed gets its own current-thread tokio runtime with paused time;
//! one seeded generator ([`rng::SimRng`]) decides every click time, hold,
//! latency, fault, crash and Identity Center delay, and the scheduler is
//! deterministic, so a seed replays exactly (`break-glass-sim --seed N
//! --trace`). The executions run the deployed definition
//! (`statemachine/break-glass.asl.json`) in break-glass-local's ASL
//! interpreter, with its Retry/Catch/TimeoutSeconds, and the real
//! grant-access and revoke-access handlers (see `sim.rs`).
//!
//! The world ([`world`]): an asynchronous Identity Center (requests stay
//! `IN_PROGRESS` for a while, sometimes longer than any poll budget; status
//! NotFound right after a create; create/delete races answer
//! ConflictException; `ListAccountAssignments` answers from the recent
//! past), the ledger table with conditional writes, Slack, the Identity
//! Store; on every call throttling, 500s, answers lost after the fact,
//! slow answers, and Lambda crashes before or after the call took effect
//! or hangs that run into the task's `TimeoutSeconds`.
//!
//! Checked, as the run goes and at its end:
//! - (a) a standing assignment is never removed;
//! - (b) when every execution has ended without a loud alert, the assignment
//!   exists if and only if it was standing;
//! - (c) while an execution is between its "granted" post and its revoke,
//!   the assignment is present;
//! - (d) every execution that created something (its grant sent a create
//!   Identity Center accepted) ends in a verified revoke, a verified
//!   rollback, or a loud alert; for an execution stopped by hand, a removal
//!   verified after it left the ledger item (the reconciler's, or whoever
//!   took an unfinished removal over) or a reconciler's alert;
//! - (e) after every execution has ended and one reconcile run completed
//!   (the last one, with nothing failing, past the minimum age), no
//!   break-glass assignment remains;
//! - (f) ending the sessions (the Deny in the session policy, through a
//!   faulty, slow IAM) never fails or undoes a revoke: every removal that
//!   answered says whether its sessions were ended, and says "ended" only
//!   when IAM's default policy version holds the user's Deny then;
//! - (g) an End access now or Extend pressed by somebody who is neither the
//!   requester nor an administrator never takes effect;
//! - (h) End access now recorded during a hold starts the revoke within 15
//!   minutes of the press (or of the hold's start, if pressed during the
//!   grant), unless the execution was stopped by hand or its hold could not
//!   store its token and waited without it (the `HoldWithoutWaking` Wait).
//!
//! The hold runs the real hold-access handler (`CheckHold`, and the token's
//! store for the `Hold` callback task) over the same faulty ledger; End and
//! Extend are pressed at random times (some by a stranger) through the same
//! core functions access-requested calls, the End then sending the stored
//! token to the interpreter's waiting callback as `SendTaskSuccess` does.
//!
//! Some executions are stopped by hand (StopExecution) at a random time,
//! often during a grant or a revoke: no further state runs, no Catch; the
//! Lambda invocation in flight runs on to its end or its timeout, as in
//! Lambda. reconcile-access (`reconcile_access::handle`, the same faulty
//! ports, `DescribeExecution` answered from the executions with the seed's
//! Step Functions lag) runs as scheduled sweeps at random times and a
//! moment after each stop (the status-change event); its alerts count as
//! loud. (b) is checked at the end, after that last reconcile run.

pub mod legacy;
pub mod ports;
pub mod rng;
pub mod sim;
pub mod world;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use world::{Variant, Violation};

/// What one seed did.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub seed: u64,
    pub variant: Variant,
    pub violations: Vec<Violation>,
    pub trace: Vec<String>,
    /// FNV-1a over the trace: equal digests, equal runs.
    pub digest: u64,
    pub stats: BTreeMap<&'static str, u64>,
}

impl SeedReport {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    /// The seed, what broke, the whole trace, and how to replay it.
    pub fn explain(&self) -> String {
        let mut out = format!("seed {} ({}) violates:\n", self.seed, self.variant.name());
        for v in &self.violations {
            out.push_str(&format!("  {}\n", v.describe()));
        }
        out.push_str("trace (simulated time since the first click was planned):\n");
        for line in &self.trace {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("replay: {}\n", replay_command(self.seed, self.variant)));
        out
    }
}

pub fn replay_command(seed: u64, variant: Variant) -> String {
    match variant {
        Variant::Current => format!("break-glass-sim --seed {seed} --trace"),
        other => format!("break-glass-sim --variant {} --seed {seed} --trace", other.name()),
    }
}

fn digest(lines: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for line in lines {
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Runs one seed from scratch on a runtime of its own.
pub fn run_seed(seed: u64, variant: Variant) -> SeedReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("a current-thread runtime: {e}"));
    let local = tokio::task::LocalSet::new();
    let world = local.block_on(&runtime, async move {
        let world = world::World::new(seed, variant);
        sim::simulate(std::sync::Arc::clone(&world)).await;
        world
    });
    drop(local);
    let trace = world.trace();
    SeedReport {
        seed,
        variant,
        violations: world.violations(),
        digest: digest(&trace),
        trace,
        stats: world.stats(),
    }
}

/// Many seeds.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub seeds: u64,
    /// Failing seeds, in seed order (the first few with their traces).
    pub failures: Vec<SeedReport>,
    /// Every statistic summed over the seeds.
    pub totals: BTreeMap<&'static str, u64>,
    pub violations_by_invariant: BTreeMap<char, u64>,
}

impl Summary {
    pub fn violations(&self) -> u64 {
        self.failures.len() as u64
    }
}

/// How many failing seeds keep their whole trace.
const TRACES_KEPT: usize = 5;

/// Runs `count` seeds from `from` on `jobs` threads (one runtime per seed,
/// so the result does not depend on `jobs`).
pub fn run_seeds(from: u64, count: u64, variant: Variant, jobs: usize) -> Summary {
    let next = AtomicU64::new(0);
    let summary = Mutex::new(Summary::default());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    let report = run_seed(from + n, variant);
                    let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
                    s.seeds += 1;
                    for (k, v) in &report.stats {
                        *s.totals.entry(k).or_insert(0) += v;
                    }
                    if report.failed() {
                        for v in &report.violations {
                            *s.violations_by_invariant.entry(v.invariant).or_insert(0) += 1;
                        }
                        s.failures.push(report);
                    }
                }
            });
        }
    });
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.failures.sort_by_key(|r| r.seed);
    for (i, r) in summary.failures.iter_mut().enumerate() {
        if i >= TRACES_KEPT {
            r.trace = Vec::new();
        }
    }
    summary
}

/// One line per failing seed, then the first failure in full, replayed
/// from its seed to show the replay is exact.
pub fn explain_failures(summary: &Summary) -> String {
    let mut out = String::new();
    for r in &summary.failures {
        let first = &r.violations[0];
        out.push_str(&format!(
            "seed {}: {} (replay: {})\n",
            r.seed,
            first.describe(),
            replay_command(r.seed, r.variant)
        ));
    }
    if let Some(first) = summary.failures.first() {
        let replayed = run_seed(first.seed, first.variant);
        out.push_str(&format!(
            "\nreplaying seed {}: {}\n",
            first.seed,
            if replayed.digest == first.digest {
                "same trace"
            } else {
                "DIFFERENT TRACE (the simulation is not deterministic)"
            }
        ));
        out.push_str(&replayed.explain());
    }
    out
}

/// Parallelism for many seeds: the machine's, unless told.
pub fn default_jobs() -> usize {
    std::env::var("BREAK_GLASS_SIM_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
