//! What fill-in-the-middle training costs the causal loss: each trained configuration (language,
//! architecture, N, D) at each FIM rate against the same configuration without FIM, the
//! difference beside its noise (the seeds' spread when there are replicates, the evaluations'
//! standard errors otherwise). Bavarian et al. 2022 found FIM at rate 0.5 "for free" at their
//! scale; this table says whether it is at the sweep's.

use std::collections::BTreeMap;

use codescale_core::ResultRow;
use serde::Serialize;

use crate::axes::fmt_si;
use crate::data::{is_done, Seeds};

/// One FIM rate against no FIM, over every configuration trained at both.
#[derive(Debug, Serialize)]
pub struct RateCost {
    pub group: String,
    pub rate: String,
    /// Mean relative change of the causal loss, and its standard error over configurations.
    pub cost: String,
    pub se: String,
    pub configurations: usize,
    /// Configurations whose change exceeds twice its own noise.
    pub beyond_noise: usize,
    /// The verdict in words: within seed noise or not.
    pub verdict: String,
}

/// One configuration at one FIM rate.
#[derive(Debug, Serialize)]
pub struct CellCost {
    pub group: String,
    pub n: String,
    pub d: String,
    pub rate: String,
    pub seeds: String,
    pub cost: String,
    pub noise: String,
    pub beyond_noise: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct FimCost {
    pub rates: Vec<RateCost>,
    pub cells: Vec<CellCost>,
}

/// `None` when the sweep has no configuration trained both with and without FIM.
pub fn cost(results: &[ResultRow]) -> Option<FimCost> {
    // (language/arch, N, D) → rate → seeds; rates as their bits so that they sort and compare.
    let mut cells: BTreeMap<(String, u64, u64), BTreeMap<u64, Seeds>> = BTreeMap::new();
    for r in results.iter().filter(|r| is_done(r) && !r.target) {
        let key =
            (codescale_fit::results::arch_group(&r.language, r.arch), r.n_params.to_bits(), r.tokens.round().to_bits());
        let seeds = cells.entry(key).or_default().entry(r.fim_rate.to_bits()).or_default();
        seeds.losses.push(r.val_loss.expect("done rows have a loss"));
        seeds.ses.push(r.val_loss_se.unwrap_or(0.0));
    }
    let mut out = FimCost::default();
    // (group, rate) → relative changes and whether each exceeds its noise.
    let mut by_rate: BTreeMap<(String, u64), Vec<(f64, bool)>> = BTreeMap::new();
    for ((group, n, d), rates) in &cells {
        let Some(base) = rates.get(&0f64.to_bits()) else { continue };
        for (&rate, seeds) in rates.iter().filter(|(&r, _)| r != 0f64.to_bits()) {
            let change = seeds.mean() / base.mean() - 1.0;
            let noise = (seeds.var_of_mean() + base.var_of_mean()).sqrt() / base.mean();
            let beyond = change.abs() > 2.0 * noise;
            by_rate.entry((group.clone(), rate)).or_default().push((change, beyond));
            out.cells.push(CellCost {
                group: group.clone(),
                n: fmt_si(f64::from_bits(*n)),
                d: fmt_si(f64::from_bits(*d)),
                rate: f64::from_bits(rate).to_string(),
                seeds: format!("{} vs {}", seeds.losses.len(), base.losses.len()),
                cost: format!("{:+.2} %", 100.0 * change),
                noise: format!("± {:.2} %", 100.0 * noise),
                beyond_noise: beyond,
            });
        }
    }
    for ((group, rate), changes) in by_rate {
        let k = changes.len() as f64;
        let mean = changes.iter().map(|c| c.0).sum::<f64>() / k;
        let se = if k >= 2.0 {
            (changes.iter().map(|c| (c.0 - mean).powi(2)).sum::<f64>() / (k - 1.0) / k).sqrt()
        } else {
            f64::NAN
        };
        let beyond = changes.iter().filter(|c| c.1).count();
        let verdict = if se.is_nan() {
            "one configuration: see its noise below".to_string()
        } else if mean.abs() > 2.0 * se {
            format!("{} beyond noise", if mean > 0.0 { "a cost" } else { "a gain" })
        } else {
            "within noise".to_string()
        };
        out.rates.push(RateCost {
            group,
            rate: f64::from_bits(rate).to_string(),
            cost: format!("{:+.2} %", 100.0 * mean),
            se: if se.is_nan() { "–".into() } else { format!("± {:.2} %", 100.0 * se) },
            configurations: changes.len(),
            beyond_noise: beyond,
            verdict,
        });
    }
    (!out.rates.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::row;

    fn fim(mut r: ResultRow, rate: f64, seed: i64) -> ResultRow {
        (r.fim_rate, r.seed, r.val_loss_se) = (rate, seed, Some(0.002));
        r.trial_id = format!("{}-{rate}-{seed}", r.trial_id);
        r
    }

    /// A 1 % cost over seeds 0.1 % apart is beyond noise; 0.05 % is within it.
    #[test]
    fn a_cost_is_told_from_seed_noise() {
        let mut rows = vec![];
        for (i, n) in [1e5, 3e5, 1e6].into_iter().enumerate() {
            for seed in 0..2 {
                let base = 2.0 + 0.1 * i as f64 + 0.002 * seed as f64;
                rows.push(fim(row("s", "done", "go", "dense", n, 1e6, 3e-3, 32, 50, Some(base)), 0.0, seed));
                rows.push(fim(row("s", "done", "go", "dense", n, 1e6, 3e-3, 32, 50, Some(base * 1.01)), 0.9, seed));
                let small = base * (1.0 + 0.0005 * (i as f64 - 1.0));
                rows.push(fim(row("s", "done", "go", "dense", n, 1e6, 3e-3, 32, 50, Some(small)), 0.5, seed));
            }
        }
        let c = cost(&rows).unwrap();
        let rate = |r: &str| c.rates.iter().find(|x| x.rate == r).unwrap();
        assert_eq!((rate("0.9").cost.as_str(), rate("0.9").verdict.as_str()), ("+1.00 %", "a cost beyond noise"));
        assert_eq!(rate("0.9").beyond_noise, 3);
        assert_eq!(rate("0.5").verdict, "within noise");
        assert_eq!(c.cells.len(), 6);
        assert!(cost(&rows.iter().filter(|r| r.fim_rate == 0.0).cloned().collect::<Vec<_>>()).is_none());
    }
}
