//! Asynchronous successive halving (Li et al., 2020) with the token budget as the resource.
//!
//! Rungs sit at `min_tokens · reduction^k`. A trial reaching a rung goes on only if its
//! validation loss is among the best 1/reduction of all losses recorded at that rung so far
//! (with fewer than `reduction` recorded, it goes on). Trials are compared only with trials
//! of the same language, model and budget, so a small model is never pruned for losing to a
//! large one. The recorded losses live on disk (`runs/<sweep>/asha.json`), so a restarted
//! scheduler keeps its rungs and the local pool's threads and Slurm's array tasks, each with an
//! [`Asha`] of its own, decide on the same rungs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use codescale_core::atomic::{read_json, write_json};
use codescale_core::TrialConfig;

/// The rung state, in the sweep's runs folder.
pub const ASHA_FILE: &str = "asha.json";

/// A sweep's early-stopping rule (`[early_stop]`): asynchronous successive halving over the
/// token budget.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStop {
    #[serde(default = "default_metric")]
    pub metric: String,
    pub min_tokens: f64,
    #[serde(default = "default_reduction")]
    pub reduction: f64,
}
fn default_metric() -> String {
    "val_loss".into()
}
fn default_reduction() -> f64 {
    3.0
}

/// group → rung (tokens, as text) → trial id → loss.
type Rungs = BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>;

pub struct Asha {
    rule: EarlyStop,
    path: PathBuf,
}

impl Asha {
    /// The rule deciding on the rungs of the sweep whose runs folder is `sweep_dir`
    /// (its [`ASHA_FILE`]).
    pub fn in_sweep_dir(rule: EarlyStop, sweep_dir: &std::path::Path) -> Asha {
        Asha::new(rule, sweep_dir.join(ASHA_FILE))
    }

    pub fn new(rule: EarlyStop, path: PathBuf) -> Asha {
        Asha { rule, path }
    }

    /// Rung token counts below this trial's budget.
    pub fn rungs(&self, config: &TrialConfig) -> Vec<f64> {
        rungs(&self.rule, config)
    }

    /// Records the trial's loss at a rung and says whether it goes on.
    pub fn report(&self, config: &TrialConfig, rung: f64, loss: f64) -> Result<bool> {
        // Read, decide and write under an exclusive flock on a file beside the state (never
        // removed, so every reporter locks the same inode): another thread or process reporting
        // at once would otherwise decide on stale losses and overwrite this one's.
        let lock_path = self.path.with_extension("lock");
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
        let mut rungs: Rungs = if self.path.exists() { read_json(&self.path)? } else { Rungs::new() };
        let group = format!(
            "{}/{}/{}/{}",
            config.data.language,
            config.model.arch.as_str(),
            config.model.name,
            config.schedule.tokens
        );
        let at = rungs.entry(group).or_default().entry(format!("{rung}")).or_default();
        at.insert(config.trial_id(), loss);
        let go_on = promote(at.values().copied().collect(), loss, self.rule.reduction);
        write_json(&self.path, &rungs)?;
        Ok(go_on)
    }
}

/// Rung token counts of `rule` below the trial's budget.
pub fn rungs(rule: &EarlyStop, config: &TrialConfig) -> Vec<f64> {
    let mut out = Vec::new();
    let mut r = rule.min_tokens;
    while r < config.schedule.tokens {
        out.push(r);
        r *= rule.reduction;
    }
    out
}

fn promote(mut losses: Vec<f64>, loss: f64, reduction: f64) -> bool {
    if !loss.is_finite() {
        return false;
    }
    if (losses.len() as f64) < reduction {
        return true;
    }
    losses.sort_by(f64::total_cmp);
    let keep = ((losses.len() as f64 / reduction).floor() as usize).max(1);
    loss <= losses[keep - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use codescale_core::{DataSpec, ModelSpec, RuntimeSpec};

    #[test]
    fn keeps_the_top_third() {
        assert!(promote(vec![1.0], 1.0, 3.0));
        assert!(promote(vec![1.0, 2.0, 3.0], 1.0, 3.0));
        assert!(!promote(vec![1.0, 2.0, 3.0], 2.0, 3.0));
        assert!(promote(vec![1.0, 2.0, 3.0, 0.5, 4.0, 5.0], 1.0, 3.0));
        assert!(!promote(vec![f64::NAN], f64::NAN, 3.0));
    }

    /// Reporters that each have their own `Asha` (as array tasks do) and report at once lose
    /// no loss to another's write.
    #[test]
    fn concurrent_reporters_keep_every_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asha.json");
        let rule = EarlyStop { metric: "val_loss".into(), min_tokens: 1e3, reduction: 3.0 };
        let config = |seed: u64| {
            codescale_core::TrialSpec {
                data: DataSpec { language: Some("go".into()), ..Default::default() },
                model: ModelSpec { name: Some("d64-l2".into()), ..Default::default() },
                runtime: RuntimeSpec { seed: Some(seed), ..Default::default() },
                ..Default::default()
            }
            .resolve()
            .unwrap()
        };
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (rule, path) = (rule.clone(), path.clone());
                s.spawn(move || {
                    let asha = Asha::new(rule, path);
                    for k in 0..25 {
                        asha.report(&config(t * 100 + k), 1e3, 1.0 + k as f64).unwrap();
                    }
                });
            }
        });
        let rungs: Rungs = read_json(&path).unwrap();
        assert_eq!(rungs.values().flat_map(|g| g.values()).map(|r| r.len()).sum::<usize>(), 100);
    }
}
