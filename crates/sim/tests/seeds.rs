//! The simulation over many seeds: no seed may violate an invariant.
//! `BREAK_GLASS_SIM_SEEDS` sets how many (default 2000); `scripts/simulate`
//! runs 100 000 in a release build.

use break_glass_sim::{Variant, default_jobs, explain_failures, run_seed, run_seeds};

#[test]
fn no_seed_violates_an_invariant() {
    let count = std::env::var("BREAK_GLASS_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let summary = run_seeds(0, count, Variant::Current, default_jobs());
    let checked = summary
        .totals
        .get("seeds with the end state checked")
        .copied()
        .unwrap_or(0);
    println!(
        "{count} seeds, {} violations; {checked} with the end state checked; {:?}",
        summary.violations(),
        summary.totals
    );
    assert!(
        summary.failures.is_empty(),
        "{} of {count} seeds violate an invariant:\n{}",
        summary.violations(),
        explain_failures(&summary)
    );
    // The runs must reach what they are meant to test.
    for stat in [
        "grants created",
        "grants shared",
        "grants pre-existing",
        "ic conflicts",
        "crashes",
        "loud alerts",
    ] {
        assert!(
            summary.totals.get(stat).copied().unwrap_or(0) > 0,
            "no seed had any {stat}: {:?}",
            summary.totals
        );
    }
    assert!(
        checked * 4 > count,
        "the end state was checked in only {checked} of {count} seeds"
    );
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 1234, 98_765] {
        let first = run_seed(seed, Variant::Current);
        let again = run_seed(seed, Variant::Current);
        assert!(
            first.trace.len() > 20,
            "seed {seed} did almost nothing: {:?}",
            first.trace
        );
        assert_eq!(
            first.trace, again.trace,
            "seed {seed} ran differently the second time"
        );
        assert_eq!(first.digest, again.digest);
    }
    assert_ne!(
        run_seed(1, Variant::Current).digest,
        run_seed(2, Variant::Current).digest
    );
}
