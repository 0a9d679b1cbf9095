//! Cooldown branches: WSD trials of a plan that differ only in budget (and cooldown) share one
//! constant-rate trunk and fork their cooldowns from it, so a ladder of budgets costs about its
//! largest run plus the cooldowns instead of the sum of its runs. Each branch stays an ordinary
//! trial (own id, record, curve), equal bit for bit to training it alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use codescale_core::TrialConfig;
use codescale_train::trainer::rung_steps;
use codescale_train::Branch;

/// Trunks live beside the sweeps of a runs folder, so sweeps that share one train it once.
pub const TRUNKS_DIR: &str = "_trunks";

/// For each trial of `trials`, the trunk it forks from, if any: a trunk serves the WSD trials
/// that share its id, when there are at least two (a lone budget gains nothing). `rungs` gives a
/// trial's ASHA rungs in tokens, at which it must evaluate.
pub fn plan(trials: &[TrialConfig], runs_root: &Path, rungs: impl Fn(&TrialConfig) -> Vec<f64>) -> Vec<Option<Branch>> {
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, c) in trials.iter().enumerate() {
        if let Some(id) = c.trunk_id() {
            members.entry(id).or_default().push(i);
        }
    }
    let mut out = vec![None; trials.len()];
    for (id, group) in members.into_iter().filter(|(_, g)| g.len() > 1) {
        let mut eval_steps = Vec::new();
        let mut fork_steps = Vec::new();
        for &i in &group {
            let c = &trials[i];
            let at = c.decay_start();
            let rungs = rung_steps(c, &rungs(c));
            eval_steps.extend((1..=at).filter(|&k| c.evaluates_at(k, &rungs)));
            fork_steps.push(at);
        }
        eval_steps.sort_unstable();
        eval_steps.dedup();
        fork_steps.sort_unstable();
        fork_steps.dedup();
        let branch = Branch { trunk_dir: runs_root.join(TRUNKS_DIR).join(&id), eval_steps, fork_steps };
        for i in group {
            out[i] = Some(branch.clone());
        }
    }
    out
}

/// How many WSD trials cannot share a trunk only because their learning rates differ, as a
/// rule with a `d_exponent` makes them: each budget then runs at its own constant rate. A trial
/// counts when it would train alone although a trial of another budget differs from it only in
/// rate (an LR grid whose budgets share trunks rate by rate is not split).
pub fn split_by_lr(trials: &[TrialConfig]) -> usize {
    let mut per_trunk: BTreeMap<String, usize> = BTreeMap::new();
    let mut budgets_of: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut keys = Vec::new();
    for c in trials {
        if let Some(id) = c.trunk_id() {
            *per_trunk.entry(id.clone()).or_default() += 1;
            let mut at_one_rate = c.clone();
            at_one_rate.optimizer.lr = 1.0;
            let same_rate = at_one_rate.trunk_id().expect("still WSD");
            budgets_of.entry(same_rate.clone()).or_default().insert(c.schedule.tokens.to_bits());
            keys.push((id, same_rate));
        }
    }
    keys.iter().filter(|(id, same_rate)| per_trunk[id] == 1 && budgets_of[same_rate].len() > 1).count()
}

/// Training FLOPs of `trials` trained alone, and with the branches of `branches` (each trunk
/// once, to its last fork, plus every cooldown).
pub fn compute(trials: &[TrialConfig], branches: &[Option<Branch>]) -> (f64, f64) {
    let per_step = |c: &TrialConfig| c.params().flops_per_token() * c.tokens_per_step() as f64;
    let alone: f64 = trials.iter().map(|c| per_step(c) * c.total_steps() as f64).sum();
    let mut trunks: BTreeMap<&Path, f64> = BTreeMap::new();
    let mut branched = 0.0;
    for (c, b) in trials.iter().zip(branches) {
        match b {
            Some(b) => {
                let trunk = trunks.entry(&b.trunk_dir).or_default();
                *trunk = trunk.max(per_step(c) * c.decay_start() as f64);
                branched += per_step(c) * (c.total_steps() - c.decay_start()) as f64;
            }
            None => branched += per_step(c) * c.total_steps() as f64,
        }
    }
    (alone, branched + trunks.values().sum::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use codescale_core::{DataSpec, ModelSpec, OptimizerSpec, Schedule, ScheduleSpec, TrialSpec};

    #[test]
    fn a_rate_that_follows_the_budget_is_what_keeps_budgets_apart() {
        let same = [trial(1e5, 1e-3), trial(3e5, 1e-3)];
        assert_eq!(split_by_lr(&same), 0);
        let apart = [trial(1e5, 1e-3), trial(3e5, 2e-3)];
        assert_eq!(split_by_lr(&apart), 2);
        // A learning-rate grid whose budgets share one trunk per rate, or that has one budget.
        let grid = [trial(1e5, 1e-3), trial(3e5, 1e-3), trial(1e5, 2e-3), trial(3e5, 2e-3)];
        assert_eq!(split_by_lr(&grid), 0);
        assert_eq!(split_by_lr(&[trial(1e5, 1e-3), trial(1e5, 2e-3)]), 0);
    }

    fn trial(tokens: f64, lr: f64) -> TrialConfig {
        TrialSpec {
            data: DataSpec { language: Some("go".into()), seq_len: Some(16), ..Default::default() },
            model: ModelSpec { name: Some("d64-l2".into()), ..Default::default() },
            optimizer: OptimizerSpec { batch_size: Some(4), lr: Some(lr.into()), ..Default::default() },
            schedule: ScheduleSpec {
                kind: Some(Schedule::Wsd),
                warmup: Some(10.0),
                tokens: Some(tokens),
                ..Default::default()
            },
            ..Default::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn budgets_share_a_trunk_and_other_rates_do_not() {
        let trials = [trial(64.0 * 100.0, 1e-3), trial(64.0 * 300.0, 1e-3), trial(64.0 * 100.0, 2e-3)];
        let plan = plan(&trials, Path::new("runs"), |_| Vec::new());
        let (a, b) = (plan[0].as_ref().unwrap(), plan[1].as_ref().unwrap());
        assert_eq!(a.trunk_dir, b.trunk_dir);
        assert!(plan[2].is_none(), "a lone trial trains on its own");
        assert_eq!(a.fork_steps, vec![80, 240]);
        // The trunk evaluates wherever either branch would: every 10 steps up to 80, then every 30.
        assert!(
            a.eval_steps.contains(&10)
                && a.eval_steps.contains(&30)
                && a.eval_steps.contains(&240)
                && !a.eval_steps.contains(&241)
        );
        let (alone, branched) = compute(&trials, &plan);
        assert!(branched < alone);
        let per_step = trials[0].params().flops_per_token() * 64.0;
        assert!(
            (alone - branched - per_step * 80.0).abs() < 1e-6 * alone,
            "the shorter budget's 80 trunk steps are saved"
        );
    }
}
