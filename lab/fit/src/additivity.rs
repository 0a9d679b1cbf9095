//! Is the loss additive in N and D at the fitted points?
//!
//! The law, E + A/N^α + B/D^β, is f(N) + g(D): how much more data helps does not depend on the
//! model's size. The most flexible such model, a free value per size plus a free value per
//! budget, is fitted by weighted least squares on relative deviations; whatever it misses, no
//! choice of the law's five parameters fits either. Replicates (other seeds of a configuration)
//! split that miss into noise and lack of fit: the classical lack-of-fit F test. A significant
//! lack of fit is an N × D interaction (small models gaining less from more data than large
//! ones), which the law's extrapolations carry but its form cannot express.

use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use crate::bootstrap::clusters;
use crate::distinct;
use crate::schema::Additivity;

/// One measurement: N, D, loss, and the configuration it measures (replicates share it).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement<'a> {
    pub n: f64,
    pub d: f64,
    pub loss: f64,
    pub config: &'a str,
}

/// The check, or `None` when the design leaves the free additive model nothing to miss: every
/// configuration is then fitted exactly (each size at a single budget, say).
pub fn additivity(points: &[Measurement]) -> Option<Additivity> {
    let sizes = distinct(points.iter().map(|p| p.n));
    let budgets = distinct(points.iter().map(|p| p.d));
    let configs = clusters(&points.iter().map(|p| p.config).collect::<Vec<&str>>());
    let at = |levels: &[f64], x: f64| levels.iter().position(|&l| l == x).expect("a level of the points");
    let size: Vec<usize> = points.iter().map(|p| at(&sizes, p.n)).collect();
    let budget: Vec<usize> = points.iter().map(|p| at(&budgets, p.d)).collect();
    let mut cell = vec![0; points.len()];
    for (c, runs) in configs.iter().enumerate() {
        runs.iter().for_each(|&k| cell[k] = c);
    }
    // Each connected set of sizes and budgets (linked by a measurement) shares one free level.
    let free = sizes.len() + budgets.len() - components(sizes.len(), budgets.len(), &size, &budget);
    let lof_df = configs.len().checked_sub(free).filter(|&df| df > 0)?;
    let noise_df = points.len() - configs.len();
    // Relative deviations: weight 1/L², so a 1 % miss counts the same at every loss.
    let w: Vec<f64> = points.iter().map(|p| p.loss.powi(-2)).collect();
    let y: Vec<f64> = points.iter().map(|p| p.loss).collect();

    let fitted = additive_fit(&y, &w, &size, &budget, sizes.len(), budgets.len());
    let total: f64 = (0..y.len()).map(|k| w[k] * (y[k] - fitted[k]).powi(2)).sum();
    let means = weighted_means(&y, &w, &cell, configs.len());
    let noise_ss: f64 = (0..y.len()).map(|k| w[k] * (y[k] - means[cell[k]]).powi(2)).sum();
    // Each run's configuration mean against the surface: Σ over configurations of runs × miss².
    let lof_ss = (total - noise_ss).max(0.0);
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
        p_value,
    })
}

/// Least-squares values a_size + b_budget by backfitting (Gauss–Seidel on the normal equations,
/// which converges for any design): each sweep sets every level to the weighted mean of what the
/// other levels leave.
fn additive_fit(y: &[f64], w: &[f64], size: &[usize], budget: &[usize], sizes: usize, budgets: usize) -> Vec<f64> {
    let (mut a, mut b) = (vec![0.0; sizes], vec![0.0; budgets]);
    let surface = |a: &[f64], b: &[f64]| (0..y.len()).map(|k| a[size[k]] + b[budget[k]]).collect::<Vec<f64>>();
    let mut fitted = surface(&a, &b);
    for _ in 0..10_000 {
        let r: Vec<f64> = (0..y.len()).map(|k| y[k] - b[budget[k]]).collect();
        a = weighted_means(&r, w, size, sizes);
        let r: Vec<f64> = (0..y.len()).map(|k| y[k] - a[size[k]]).collect();
        b = weighted_means(&r, w, budget, budgets);
        let next = surface(&a, &b);
        let moved = next.iter().zip(&fitted).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        fitted = next;
        if moved < 1e-13 {
            break;
        }
    }
    fitted
}

/// The weighted mean of `values` within each of `count` classes.
fn weighted_means(values: &[f64], w: &[f64], class: &[usize], count: usize) -> Vec<f64> {
    let mut sum = vec![0.0; count];
    let mut weight = vec![0.0; count];
    for k in 0..values.len() {
        sum[class[k]] += w[k] * values[k];
        weight[class[k]] += w[k];
    }
    sum.iter().zip(&weight).map(|(s, w)| s / w).collect()
}

/// Connected components of the bipartite graph of sizes and budgets, one edge per measurement.
fn components(sizes: usize, budgets: usize, size: &[usize], budget: &[usize]) -> usize {
    let mut parent: Vec<usize> = (0..sizes + budgets).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (&i, &j) in size.iter().zip(budget) {
        let (ri, rj) = (root(&mut parent, i), root(&mut parent, sizes + j));
        parent[ri] = rj;
    }
    (0..parent.len()).filter(|&x| root(&mut parent, x) == x).count()
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

    fn check(points: &[(f64, f64, f64, String)]) -> Option<Additivity> {
        let m: Vec<Measurement> = points.iter().map(|(n, d, loss, c)| Measurement { n: *n, d: *d, loss: *loss, config: c }).collect();
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
        let pts = grid(|n, d, r| (1.5 + 30.0 / n.powf(0.4) + 300.0 / d.powf(0.45)) * if r == 0 { 0.99 } else { 1.01 }, 2);
        let a = check(&pts).unwrap();
        assert_eq!((a.lack_of_fit_df, a.noise_df), (6, 12));
        assert!((a.noise.unwrap() - 0.01 * 2f64.sqrt()).abs() < 1e-3, "{a:?}");
        // Noise alone: 6 of the 24 runs' degrees of freedom, each of variance σ².
        assert!((a.noise_floor.unwrap() - a.noise.unwrap() * 0.5).abs() < 1e-12, "{a:?}");
        assert!(a.p_value.unwrap() > 0.99, "{a:?}");
    }

    #[test]
    fn a_single_budget_per_size_leaves_nothing_to_test() {
        let pts: Vec<_> = [(1e4, 2e5), (2e4, 4e5), (4e4, 8e5)].iter().map(|&(n, d)| (n, d, 2.0, format!("{n}"))).collect();
        assert!(check(&pts).is_none());
    }
}
