//! `break-glass-sim [--seeds COUNT] [--from SEED] [--jobs N] [--variant V]`
//! runs COUNT seeds (default 2000) from SEED (default 0);
//! `break-glass-sim --seed N --trace` replays one seed and prints its trace.
//! Exits 1 when any seed violates an invariant.

use std::process::ExitCode;
use std::time::Instant;

use break_glass_sim::{Variant, default_jobs, explain_failures, run_seed, run_seeds};

const USAGE: &str = "usage: break-glass-sim [--seeds COUNT] [--from SEED] [--jobs N] [--variant current|legacy|no-revoking-mark|no-tombstone|no-wake]\n       break-glass-sim [--variant V] --seed N [--trace]";

struct Args {
    seeds: u64,
    from: u64,
    seed: Option<u64>,
    trace: bool,
    jobs: usize,
    variant: Variant,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: 2000,
        from: 0,
        seed: None,
        trace: false,
        jobs: default_jobs(),
        variant: Variant::Current,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--seeds" => args.seeds = value("--seeds")?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--from" => args.from = value("--from")?.parse().map_err(|e| format!("--from: {e}"))?,
            "--seed" => args.seed = Some(value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--jobs" => args.jobs = value("--jobs")?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--variant" => args.variant = value("--variant")?.parse()?,
            "--trace" => args.trace = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("{why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.seed {
        let report = run_seed(seed, args.variant);
        if args.trace || report.failed() {
            print!("{}", report.explain().trim_end_matches('\n'));
            println!();
        }
        println!(
            "seed {seed} ({}): {} violations, trace digest {:016x}",
            args.variant.name(),
            report.violations.len(),
            report.digest
        );
        return if report.failed() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let started = Instant::now();
    let summary = run_seeds(args.from, args.seeds, args.variant, args.jobs);
    let elapsed = started.elapsed();
    if !summary.failures.is_empty() {
        println!("{}", explain_failures(&summary));
    }
    let totals: Vec<String> = summary.totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("{}", totals.join(", "));
    if !summary.violations_by_invariant.is_empty() {
        let by: Vec<String> = summary
            .violations_by_invariant
            .iter()
            .map(|(k, v)| format!("({k}) {v}"))
            .collect();
        println!("violations by invariant: {}", by.join(", "));
    }
    println!(
        "{} seeds, {} violations ({} from seed {}, {} jobs, {:.1} s)",
        summary.seeds,
        summary.violations(),
        args.variant.name(),
        args.from,
        args.jobs,
        elapsed.as_secs_f64()
    );
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
