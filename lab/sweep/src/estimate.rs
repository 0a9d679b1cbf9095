//! How long a plan will take on this machine, from the throughput of trials it already ran.

use std::path::Path;

use codescale_core::TrialConfig;

use crate::index::RunsIndex;

/// Training FLOP/s per thread (with the head) measured with `bench/throughput.sh` on the
/// 2-core CI machine, used until this machine has finished trials of its own.
const REFERENCE_FLOPS_PER_S_PER_THREAD: f64 = 1.5e10;

/// A plan estimated to run longer than this must be confirmed (`RunConfig::confirmed`): beyond
/// it a typo in a budget is likelier than a deliberate day of computing.
pub const CONFIRM_ABOVE_S: f64 = 24.0 * 3600.0;

/// Training FLOP/s per thread on this machine: the median over finished trials under `runs`
/// (from the runs folder's index, refreshed here), or the reference figure when there are
/// none; with where the figure came from.
pub fn flops_per_s_per_thread(runs: &Path) -> (f64, &'static str) {
    median_flops_per_s_per_thread(&RunsIndex::refresh(runs))
}

/// [`flops_per_s_per_thread`] from an index already refreshed.
pub fn median_flops_per_s_per_thread(index: &RunsIndex) -> (f64, &'static str) {
    let mut rates: Vec<f64> = index.flops_per_s_per_thread().collect();
    if rates.is_empty() {
        return (REFERENCE_FLOPS_PER_S_PER_THREAD, "reference machine");
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], "finished trials")
}

/// Estimated seconds of one trial with `threads` threads at `per_thread` FLOP/s each.
pub fn trial_seconds(c: &TrialConfig, per_thread: f64, threads: f64) -> f64 {
    c.params().flops_per_token_with_head() * c.schedule.tokens / (per_thread * threads)
}

/// Estimated seconds for `trials` on this machine with all its cores, and where the throughput
/// figure came from.
pub fn plan_seconds(trials: &[TrialConfig], runs: &Path) -> (f64, &'static str) {
    plan_seconds_with(trials, &RunsIndex::refresh(runs))
}

/// [`plan_seconds`] from an index already refreshed.
pub fn plan_seconds_with(trials: &[TrialConfig], index: &RunsIndex) -> (f64, &'static str) {
    let (per_thread, source) = median_flops_per_s_per_thread(index);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    (trials.iter().map(|c| trial_seconds(c, per_thread, threads)).sum(), source)
}
