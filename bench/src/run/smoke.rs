//! `bench smoke`: the regression guard of CI, seconds long. Ours, raw and bcast (bcast has
//! no echo of its own, see [`serves`]) on two scenarios of [`SCENARIOS`], echo with 100
//! connections and fan-out to 1,000 members with 32 in flight, started and pinned as `bench
//! run` does, in the same run. It prints the same table and fails when ours is below
//! [`FLOOR`] times raw per server CPU-second on either: a ratio measured in one run, so
//! that a slower or busier machine moves both sides.

use super::*;

/// The implementations compared.
const SMOKE_IMPLS: [&str; 3] = ["raw", "bcast", "ours"];
/// The scenarios, by label.
const SMOKE_SCENARIOS: [&str; 2] =
    ["echo, 100 connections, JSON, 1 in flight each", "fan-out, 1,000 members, 32 in flight"];
/// The lowest ours/raw per server CPU-second that passes. Far enough below the 1.0x
/// measured in full runs that short runs on a shared machine do not fail at random, close
/// enough that a real regression does.
const FLOOR: f64 = 0.8;

/// Runs the smoke comparison; an error when ours is below [`FLOOR`] on a scenario or a
/// scenario has no ratio (every run of ours or raw failed).
pub(crate) fn smoke(args: &Args) -> Result<(), BoxError> {
    let runs: usize = args.num_or("runs", 2)?;
    let seconds: f64 = args.num_or("seconds", 2.0)?;
    if runs == 0 || !seconds.is_finite() || seconds <= 0.0 {
        return Err("need --runs > 0 and --seconds > 0".into());
    }
    let launcher = Launcher::new();
    launcher.describe();
    println!(
        "smoke: {runs} runs x {seconds} s (median shown); fails below {FLOOR}x raw per server CPU-second"
    );
    let ticks = clock_ticks();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for label in SMOKE_SCENARIOS {
        let scenario =
            SCENARIOS.iter().find(|s| s.label == label).ok_or_else(|| format!("no scenario {label}"))?;
        let impls = scenario_impls(&SMOKE_IMPLS, scenario);
        let samples = throughput_runs(&launcher, scenario, &impls, runs, seconds, ticks);
        let medians: Vec<(&str, Option<Sample>)> =
            impls.iter().copied().zip(samples.iter().map(|s| median_sample(s))).collect();
        let find = |name: &str| medians.iter().find(|(i, _)| *i == name).and_then(|(_, m)| *m);
        match (find("ours"), find("raw")) {
            (Some(ours), Some(raw)) => {
                let against_raw = ratio(ours.per_cpu_second, raw.per_cpu_second);
                // NaN (no CPU time counted) fails too.
                if against_raw.is_nan() || against_raw < FLOOR {
                    failures.push(format!("{label}: ours/raw {against_raw:.2}x per server CPU-second"));
                }
            }
            _ => failures.push(format!("{label}: no ratio, every run of ours or raw failed")),
        }
        rows.push((scenario, medians));
    }
    print_throughput(&rows);
    if failures.is_empty() {
        println!("\nsmoke: passed, ours >= {FLOOR}x raw per server CPU-second on every scenario");
        Ok(())
    } else {
        Err(format!("smoke failed (floor {FLOOR}x): {}", failures.join("; ")).into())
    }
}
