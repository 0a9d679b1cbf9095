//! Bootstrap over points: seeded resamples, percentile intervals, and the Approach 3 refits.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::approach3::{self, Data, Fit, Law, Params};
use crate::schema::Estimate;

/// The random stream of resample `index`. Each resample has its own ChaCha stream, so the
/// resamples do not depend on how rayon schedules them or on how many there are.
pub fn rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// Mixes a label (a group name, an analysis name) into a seed so that each gets its own streams.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in label.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Multiplicities of `n` points drawn with replacement (`n` draws).
pub fn resample_counts(n: usize, rng: &mut impl Rng) -> Vec<f64> {
    let mut w = vec![0.0; n];
    for _ in 0..n {
        w[rng.random_range(0..n)] += 1.0;
    }
    w
}

/// Multiplicities of points when whole clusters are drawn with replacement (as many draws as
/// clusters): replicates of one configuration are not independent evidence about the law, so
/// they are resampled together. With one point per cluster, in order, this is
/// [`resample_counts`], draw for draw.
pub fn resample_clusters(members: &[Vec<usize>], points: usize, rng: &mut impl Rng) -> Vec<f64> {
    let mut w = vec![0.0; points];
    for _ in 0..members.len() {
        for &p in &members[rng.random_range(0..members.len())] {
            w[p] += 1.0;
        }
    }
    w
}

/// Every point its own cluster (no replicates).
pub fn singletons(points: usize) -> Vec<Vec<usize>> {
    (0..points).map(|i| vec![i]).collect()
}

/// The clusters of `keys` (points with equal keys form one), in order of first appearance.
pub fn clusters<K: PartialEq>(keys: &[K]) -> Vec<Vec<usize>> {
    let mut firsts: Vec<&K> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match firsts.iter().position(|f| *f == k) {
            Some(c) => members[c].push(i),
            None => {
                firsts.push(k);
                members.push(vec![i]);
            }
        }
    }
    members
}

/// Indices drawn with replacement within each stratum (same size as the stratum).
pub fn resample_strata(strata: &[Vec<usize>], rng: &mut impl Rng) -> Vec<Vec<usize>> {
    strata.iter().map(|s| (0..s.len()).map(|_| s[rng.random_range(0..s.len())]).collect()).collect()
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    }
}

/// Percentile interval of the finite samples; `None` with fewer than two.
pub fn interval(samples: &[f64], confidence: f64) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some((quantile(&v, tail), quantile(&v, 1.0 - tail)))
}

/// A point estimate with the percentile interval of its bootstrap samples (none if there are no
/// samples). JSON has no infinity, so an infinite value is clamped to ±f64::MAX.
pub fn estimate(value: f64, samples: &[f64], confidence: f64) -> Estimate {
    let finite = |x: f64| if x.is_nan() { x } else { x.clamp(-f64::MAX, f64::MAX) };
    let ci = interval(samples, confidence);
    Estimate { value: finite(value), lo: ci.map(|c| c.0), hi: ci.map(|c| c.1) }
}

/// Bootstrap starts per resample taken from the grid, besides the full-data optimum.
pub const GRID_STARTS_PER_RESAMPLE: usize = 2;

#[derive(Debug, Clone, Default)]
pub struct LawBootstrap {
    /// One law per resample whose fit converged.
    pub laws: Vec<Law>,
    pub resamples: usize,
    /// Resamples whose fit did not converge from any start (left out of the intervals).
    pub failed: usize,
}

/// Refits Approach 3 on `resamples` bootstrap resamples of the points.
///
/// Starting each resample from the whole 4500-point grid would cost ~1000× the main fit. A
/// resample's optimum lies near the full-data optimum, so that is the first start; the grid
/// starts that reached the best full-data end points ([`Fit::good_starts`], at most
/// [`GRID_STARTS_PER_RESAMPLE`]) are added so that a resample whose optimum moved to another basin
/// can still reach it. Resamples are weighted copies (multiplicities), which keeps the objective a
/// sum over drawn points.
///
/// `members` are the clusters resampled together (one per configuration; see
/// [`resample_clusters`]).
pub fn bootstrap_law(
    data: &Data,
    full: &Fit,
    delta: f64,
    resamples: usize,
    seed: u64,
    members: &[Vec<usize>],
) -> LawBootstrap {
    let mut starts: Vec<Params> = vec![full.params];
    starts.extend(full.good_starts.iter().take(GRID_STARTS_PER_RESAMPLE).copied());
    let fits: Vec<Option<Law>> = (0..resamples)
        .into_par_iter()
        .map(|i| {
            let w = resample_clusters(members, data.len(), &mut rng(seed, i as u64));
            approach3::fit_from_serial(&data.weighted(&w), delta, &starts).filter(|f| f.converged).map(|f| f.law)
        })
        .collect();
    let laws: Vec<Law> = fits.iter().flatten().copied().collect();
    LawBootstrap { failed: resamples - laws.len(), laws, resamples }
}

/// [`bootstrap_law`] for a form other than Chinchilla ([`crate::forms`]): each resample refitted
/// from the full-data optimum and the starts of its best basins; the parameters of those that
/// converged.
pub fn bootstrap_form(
    points: &crate::forms::Points,
    full: &crate::forms::FormFit,
    delta: f64,
    resamples: usize,
    seed: u64,
    members: &[Vec<usize>],
) -> Vec<Vec<f64>> {
    let mut starts = vec![full.params.clone()];
    starts.extend(full.good_starts.iter().take(GRID_STARTS_PER_RESAMPLE).cloned());
    let fits: Vec<Option<Vec<f64>>> = (0..resamples)
        .into_par_iter()
        .map(|i| {
            let w = resample_clusters(members, points.len(), &mut rng(seed, i as u64));
            crate::forms::fit_from(&points.resampled(&w), full.form, delta, &starts)
                .filter(|f| f.converged)
                .map(|f| f.params)
        })
        .collect();
    fits.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interval_of_uniform_grid() {
        let v: Vec<f64> = (0..=100).map(|i| i as f64).collect();
        let (lo, hi) = interval(&v, 0.95).unwrap();
        assert!((lo - 2.5).abs() < 1e-12 && (hi - 97.5).abs() < 1e-12);
        assert!(interval(&[1.0], 0.95).is_none());
        assert!(interval(&[f64::NAN, 1.0, 2.0], 0.5).is_some());
    }

    #[test]
    fn singleton_clusters_resample_exactly_as_points_do() {
        let singletons: Vec<Vec<usize>> = (0..30).map(|i| vec![i]).collect();
        assert_eq!(resample_clusters(&singletons, 30, &mut rng(5, 2)), resample_counts(30, &mut rng(5, 2)));
        let pairs = clusters(&["a", "b", "a", "c", "b"]);
        assert_eq!(pairs, vec![vec![0, 2], vec![1, 4], vec![3]]);
        let w = resample_clusters(&pairs, 5, &mut rng(1, 1));
        assert_eq!(w[0], w[2], "replicates are drawn together");
        assert_eq!(w[1], w[4]);
    }

    #[test]
    fn resamples_are_reproducible_and_distinct() {
        let a = resample_counts(50, &mut rng(7, 3));
        assert_eq!(a, resample_counts(50, &mut rng(7, 3)));
        assert_ne!(a, resample_counts(50, &mut rng(7, 4)));
        assert_eq!(a.iter().sum::<f64>(), 50.0);
        assert_ne!(derive_seed(1, "python"), derive_seed(1, "go"));
    }
}
