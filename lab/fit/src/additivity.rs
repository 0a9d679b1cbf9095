//! Is the loss additive in N and D at the fitted points?
//!
//! The law, E + A/N^α + B/D^β, is f(N) + g(D): how much more data helps does not depend on the
//! model's size. The most flexible such model, a free value per size plus a free value per
//! budget, is fitted by weighted least squares on relative deviations; whatever it misses, no
//! choice of the law's five parameters fits either. Replicates (other seeds of a configuration)
//! split that miss into noise and lack of fit: the classical lack-of-fit F test. A significant
//! lack of fit is an N × D interaction (small models gaining less from more data than large
//! ones), which the law's extrapolations carry but its form cannot express.
//!
//! Cooldown branches of one WSD trunk share that trunk's noise: a seed that trains a worse trunk
//! makes every budget of that size worse alike. Such a shift is additive, so the test should not
//! count it as noise either: each shared trunk is a block with its own free level, in both
//! models. The pure error is then the noise a run does not share with its trunk, and the test
//! compares how budgets differ within a trunk, which is where an interaction shows.

use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use crate::bootstrap::clusters;
use crate::schema::Additivity;

/// One measurement: N, D, loss, the configuration it measures (replicates share it) and the
/// trunk it branched from, if any (runs that share one share its noise).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement<'a> {
    pub n: f64,
    pub d: f64,
    pub loss: f64,
    pub config: &'a str,
    pub trunk: Option<&'a str>,
}

/// A factor of a linear model: each measurement's level of it (`None`: the factor leaves that
/// measurement alone), and how many levels there are.
struct Factor {
    level: Vec<Option<usize>>,
    levels: usize,
}

impl Factor {
    /// Equal keys share a level; a measurement without a key has none.
    fn of<K: PartialEq>(keys: &[Option<K>]) -> Factor {
        Factor::levels_of(clusters(keys).into_iter().filter(|runs| keys[runs[0]].is_some()), keys.len())
    }

    /// The trunks that more than one measurement shares; a trunk of one run is no block (its
    /// level would only fit that run exactly).
    fn blocks(trunks: &[Option<&str>]) -> Factor {
        Factor::levels_of(
            clusters(trunks).into_iter().filter(|runs| runs.len() > 1 && trunks[runs[0]].is_some()),
            trunks.len(),
        )
    }

    /// One level per group of measurement indices; measurements in no group have none.
    fn levels_of(groups: impl Iterator<Item = Vec<usize>>, measurements: usize) -> Factor {
        let mut level = vec![None; measurements];
        let mut levels = 0;
        for runs in groups {
            runs.iter().for_each(|&k| level[k] = Some(levels));
            levels += 1;
        }
        Factor { level, levels }
    }
}

/// The check, or `None` when the design leaves the free additive model nothing to miss: every
/// configuration is then fitted exactly (each size at a single budget, say).
pub fn additivity(points: &[Measurement]) -> Option<Additivity> {
    let factor = |key: fn(&Measurement) -> f64| Factor::of(&points.iter().map(|p| Some(key(p))).collect::<Vec<_>>());
    let (size, budget) = (factor(|p| p.n), factor(|p| p.d));
    let cell = Factor::of(&points.iter().map(|p| Some(p.config)).collect::<Vec<_>>());
    let block = Factor::blocks(&points.iter().map(|p| p.trunk).collect::<Vec<_>>());
    let y: Vec<f64> = points.iter().map(|p| p.loss).collect();
    // Relative deviations: weight 1/L², so a 1 % miss counts the same at every loss.
    let w: Vec<f64> = points.iter().map(|p| p.loss.powi(-2)).collect();

    let additive = [&size, &budget, &block];
    let saturated = [&cell, &block];
    let saturated_rank = rank(&saturated, y.len());
    let lof_df = saturated_rank.checked_sub(rank(&additive, y.len())).filter(|&df| df > 0)?;
    let noise_df = y.len() - saturated_rank;
    let rss = |factors: &[&Factor]| -> f64 {
        let fitted = least_squares(&y, &w, factors);
        (0..y.len()).map(|k| w[k] * (y[k] - fitted[k]).powi(2)).sum()
    };
    let noise_ss = rss(&saturated);
    let lof_ss = (rss(&additive) - noise_ss).max(0.0);
    let runs = y.len() as f64;
    let noise = (noise_df > 0).then(|| (noise_ss / noise_df as f64).sqrt());
    let p_value = noise.filter(|s| *s > 0.0).and_then(|s| {
        let f = (lof_ss / lof_df as f64) / s.powi(2);
        FisherSnedecor::new(lof_df as f64, noise_df as f64).ok().map(|dist| dist.sf(f))
    });
    Some(Additivity {
        misfit: (lof_ss / runs).sqrt(),
        lack_of_fit_df: lof_df,
        // Noise alone leaves lof_df·σ² of lack-of-fit sum of squares, on average.
        noise_floor: noise.map(|s| s * (lof_df as f64 / runs).sqrt()),
        noise,
        noise_df,
        trunks: block.levels,
        p_value,
    })
}

/// Weighted least-squares fit of a sum of factor levels, by backfitting (Gauss–Seidel on the
/// normal equations, which converges for any design): each sweep sets every factor's levels to
/// the weighted mean of what the other factors leave.
fn least_squares(y: &[f64], w: &[f64], factors: &[&Factor]) -> Vec<f64> {
    let mut effects: Vec<Vec<f64>> = factors.iter().map(|f| vec![0.0; f.levels]).collect();
    let effect = |f: &Factor, e: &[f64], k: usize| f.level[k].map_or(0.0, |l| e[l]);
    let mut fitted = vec![0.0; y.len()];
    for _ in 0..10_000 {
        for i in 0..factors.len() {
            let others: Vec<f64> = (0..y.len())
                .map(|k| {
                    y[k] - (0..factors.len())
                        .filter(|&j| j != i)
                        .map(|j| effect(factors[j], &effects[j], k))
                        .sum::<f64>()
                })
                .collect();
            effects[i] = weighted_means(&others, w, factors[i]);
        }
        let next: Vec<f64> =
            (0..y.len()).map(|k| (0..factors.len()).map(|j| effect(factors[j], &effects[j], k)).sum()).collect();
        let moved = next.iter().zip(&fitted).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        fitted = next;
        if moved < 1e-13 {
            break;
        }
    }
    fitted
}

/// The weighted mean of `values` within each level of `factor` (every level has a measurement).
fn weighted_means(values: &[f64], w: &[f64], factor: &Factor) -> Vec<f64> {
    let mut sum = vec![0.0; factor.levels];
    let mut weight = vec![0.0; factor.levels];
    for (k, level) in factor.level.iter().enumerate() {
        if let Some(l) = *level {
            sum[l] += w[k] * values[k];
            weight[l] += w[k];
        }
    }
    sum.iter().zip(&weight).map(|(s, w)| s / w).collect()
}

/// The rank of the model's design matrix (one indicator column per level of each factor): the
/// number of free values it fits. Gaussian elimination on 0/1 columns, exact enough at this size.
fn rank(factors: &[&Factor], runs: usize) -> usize {
    let mut columns: Vec<Vec<f64>> = factors
        .iter()
        .flat_map(|f| {
            (0..f.levels).map(move |l| f.level.iter().map(|&x| if x == Some(l) { 1.0 } else { 0.0 }).collect())
        })
        .collect();
    let mut rank = 0;
    for row in 0..runs {
        let Some(pivot) =
            (rank..columns.len()).max_by(|&a, &b| columns[a][row].abs().total_cmp(&columns[b][row].abs()))
        else {
            break;
        };
        if columns[pivot][row].abs() < 1e-9 {
            continue;
        }
        columns.swap(rank, pivot);
        let p = columns[rank].clone();
        for c in &mut columns[rank + 1..] {
            let factor = c[row] / p[row];
            c.iter_mut().zip(&p).for_each(|(x, y)| *x -= factor * y);
        }
        rank += 1;
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(value: impl Fn(f64, f64, usize) -> f64, replicates: usize) -> Vec<(f64, f64, f64, String)> {
        let mut v = vec![];
        for n in [1e4, 2e4, 4e4, 8e4] {
            for d in [2.5e5, 5e5, 1e6] {
                for r in 0..replicates {
                    v.push((n, d, value(n, d, r), format!("{n}-{d}")));
                }
            }
        }
        v
    }

    /// The check without trunks: every run trained on its own.
    fn check(points: &[(f64, f64, f64, String)]) -> Option<Additivity> {
        let m: Vec<Measurement> = points
            .iter()
            .map(|(n, d, loss, c)| Measurement { n: *n, d: *d, loss: *loss, config: c, trunk: None })
            .collect();
        additivity(&m)
    }

    /// The check with each size's seeds as cooldown branches of one trunk per seed, as a WSD
    /// ladder trains them (`grid` lists seeds innermost).
    fn check_with_trunks(points: &[(f64, f64, f64, String)], replicates: usize) -> Option<Additivity> {
        let trunks: Vec<String> =
            points.iter().enumerate().map(|(k, (n, ..))| format!("{n}/seed {}", k % replicates)).collect();
        let m: Vec<Measurement> = points
            .iter()
            .zip(&trunks)
            .map(|((n, d, loss, c), t)| Measurement { n: *n, d: *d, loss: *loss, config: c, trunk: Some(t) })
            .collect();
        additivity(&m)
    }

    #[test]
    fn an_additive_surface_is_fitted_exactly() {
        let a = check(&grid(|n, d, _| 1.5 + 30.0 / n.powf(0.4) + 300.0 / d.powf(0.45), 1)).unwrap();
        assert!(a.misfit < 1e-9, "{a:?}");
        assert_eq!((a.lack_of_fit_df, a.noise_df, a.noise, a.noise_floor, a.p_value), (6, 0, None, None, None));
    }

    #[test]
    fn replicates_measure_the_noise_and_test_the_rest() {
        // Two replicates 1 % apart around an additive surface: all of the miss is noise.
        let pts =
            grid(|n, d, r| (1.5 + 30.0 / n.powf(0.4) + 300.0 / d.powf(0.45)) * if r == 0 { 0.99 } else { 1.01 }, 2);
        let a = check(&pts).unwrap();
        assert_eq!((a.lack_of_fit_df, a.noise_df), (6, 12));
        assert!((a.noise.unwrap() - 0.01 * 2f64.sqrt()).abs() < 1e-3, "{a:?}");
        // Noise alone: 6 of the 24 runs' degrees of freedom, each of variance σ².
        assert!((a.noise_floor.unwrap() - a.noise.unwrap() * 0.5).abs() < 1e-12, "{a:?}");
        assert!(a.p_value.unwrap() > 0.99, "{a:?}");
    }

    #[test]
    fn a_trunks_shift_is_not_noise() {
        // Each seed's trunk sits 0.02 above or below an additive surface at every budget.
        let pts =
            grid(|n, d, r| 1.5 + 30.0 / n.powf(0.4) + 300.0 / d.powf(0.45) + if r == 0 { 0.02 } else { -0.02 }, 2);
        let blocked = check_with_trunks(&pts, 2).unwrap();
        assert_eq!((blocked.lack_of_fit_df, blocked.noise_df), (6, 8));
        assert!(blocked.misfit < 1e-9 && blocked.noise.unwrap() < 1e-9, "{blocked:?}");
        // Without the trunks the same shift is seed noise of about 0.02 / L.
        let unblocked = check(&pts).unwrap();
        assert_eq!((unblocked.lack_of_fit_df, unblocked.noise_df), (6, 12));
        assert!(unblocked.noise.unwrap() > 0.005, "{unblocked:?}");
    }

    #[test]
    fn an_interaction_within_trunks_is_tested_against_the_noise_trunks_do_not_share() {
        // Trunk shifts of ±3 %, run noise of ±0.2 %, and an interaction of up to 2 %: the unblocked
        // test drowns it in the trunks' spread, the blocked one finds it.
        let pts = grid(
            |n, d, r| {
                let surface = 1.5 + 30.0 / n.powf(0.4) + 300.0 / d.powf(0.45);
                let interaction = 0.02 * (n / 2e4).ln() * (d / 5e5).ln();
                let trunk = if r == 0 { 1.03 } else { 0.97 };
                let run =
                    if (n as usize / 10_000 + d as usize / 250_000 + r).is_multiple_of(2) { 1.002 } else { 0.998 };
                surface * (1.0 + interaction) * trunk * run
            },
            2,
        );
        assert!(check_with_trunks(&pts, 2).unwrap().rejected());
        assert!(!check(&pts).unwrap().rejected());
    }

    #[test]
    fn a_single_budget_per_size_leaves_nothing_to_test() {
        let pts: Vec<_> =
            [(1e4, 2e5), (2e4, 4e5), (4e4, 8e5)].iter().map(|&(n, d)| (n, d, 2.0, format!("{n}"))).collect();
        assert!(check(&pts).is_none());
    }
}
