//! The simulation must be able to fail: the holder logic before the grant
//! ledger (holders read from `ListExecutions`, which lags) is caught, and so
//! is a ledger rule broken on purpose.

use break_glass_sim::{Variant, run_seeds};

fn caught(variant: Variant, seeds: u64) {
    let summary = run_seeds(0, seeds, variant, break_glass_sim::default_jobs());
    let first = summary.failures.first().unwrap_or_else(|| {
        panic!(
            "{} seeds of the {} variant violated nothing: the simulation cannot tell it apart",
            seeds,
            variant.name()
        )
    });
    println!(
        "{}: {} of {} seeds fail, by invariant {:?}; first: seed {}: {}",
        variant.name(),
        summary.violations(),
        summary.seeds,
        summary.violations_by_invariant,
        first.seed,
        first.violations[0].describe()
    );
}

#[test]
fn the_old_holder_logic_is_caught() {
    caught(Variant::Legacy, 300);
}

#[test]
fn an_end_that_does_not_wake_the_hold_is_caught() {
    // End access now written to the ledger but the hold left to its time:
    // the revoke comes at the hold's end, not within minutes of the press.
    caught(Variant::NoWake, 300);
}

#[test]
fn forgetting_when_a_removal_was_verified_is_caught() {
    // A closed break-glass item without its closing time reads a late
    // `ListAccountAssignments` as standing access.
    caught(Variant::NoTombstone, 500);
}

// `--variant no-revoking-mark` (the last holder deletes without marking the
// item `revoking`) is caught too, but rarely: about 1 seed in 500, because
// Identity Center's ConflictException keeps a joining create behind the
// deletion most of the time. Too slow for the debug test run.
