//! Chinchilla Approach 3: L(N, D) = E + A/N^α + B/D^β fitted by L-BFGS on a summed Huber loss of
//! log L against LSE(a − α ln N, b − β ln D, e), with a = ln A, b = ln B, e = ln E.

use std::cell::RefCell;

use argmin::core::{CostFunction, Error, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;

/// Parameter vector layout: [a = ln A, b = ln B, e = ln E, α, β].
pub type Params = [f64; 5];

/// A fitted law in natural units.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Law {
    pub e: f64,
    pub a: f64,
    pub b: f64,
    pub alpha: f64,
    pub beta: f64,
}

impl Law {
    pub fn from_params(p: &Params) -> Law {
        Law { a: p[0].exp(), b: p[1].exp(), e: p[2].exp(), alpha: p[3], beta: p[4] }
    }

    pub fn params(&self) -> Params {
        [self.a.ln(), self.b.ln(), self.e.ln(), self.alpha, self.beta]
    }

    pub fn predict(&self, n: f64, d: f64) -> f64 {
        self.e + self.a / n.powf(self.alpha) + self.b / d.powf(self.beta)
    }

    /// N_c = A^(1/α), so that A/N^α = (N_c/N)^α.
    pub fn n_c(&self) -> f64 {
        self.a.powf(1.0 / self.alpha)
    }

    /// D_c = B^(1/β).
    pub fn d_c(&self) -> f64 {
        self.b.powf(1.0 / self.beta)
    }
}

/// Points prepared for repeated evaluation. Sweeps reuse few distinct N and D, so the two power
/// terms are computed once per distinct value rather than once per point: that leaves one `ln`
/// per point and makes the 4500-start grid affordable.
///
/// ln N and ln D are stored centred. The optimiser works in q = [a − α·m_N, b − β·m_D, e, α, β]
/// (m = mean log size): in the raw parameters a and α move together along a valley of slope
/// ln N ≈ 15, which costs L-BFGS many iterations; the shift is linear, so the optimum is the same.
#[derive(Debug, Clone)]
pub struct Data {
    ln_n: Vec<f64>,
    ln_d: Vec<f64>,
    m_n: f64,
    m_d: f64,
    idx: Vec<(u32, u32)>,
    ln_loss: Vec<f64>,
    /// Bootstrap multiplicity of each point.
    weight: Vec<f64>,
}

impl Data {
    /// `points` are (N, D, loss), all finite and positive (the caller filters).
    pub fn new(points: &[(f64, f64, f64)]) -> Data {
        fn intern(values: &mut Vec<f64>, x: f64) -> u32 {
            match values.iter().position(|&v| v == x) {
                Some(i) => i as u32,
                None => {
                    values.push(x);
                    values.len() as u32 - 1
                }
            }
        }
        let (mut ln_n, mut ln_d, mut idx) = (vec![], vec![], vec![]);
        for &(n, d, _) in points {
            idx.push((intern(&mut ln_n, n.ln()), intern(&mut ln_d, d.ln())));
        }
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let (m_n, m_d) = (mean(&ln_n), mean(&ln_d));
        Data {
            ln_n: ln_n.iter().map(|x| x - m_n).collect(),
            ln_d: ln_d.iter().map(|x| x - m_d).collect(),
            m_n,
            m_d,
            idx,
            ln_loss: points.iter().map(|p| p.2.ln()).collect(),
            weight: vec![1.0; points.len()],
        }
    }

    /// The points with these weights in the objective (each point's term is multiplied by its
    /// weight), e.g. the precision of each measurement.
    pub fn with_weights(mut self, weights: &[f64]) -> Data {
        assert_eq!(weights.len(), self.len());
        self.weight = weights.to_vec();
        self
    }

    /// The points drawn `counts[i]` times each (a bootstrap resample); points never drawn are
    /// dropped so that evaluations skip them.
    pub fn weighted(&self, counts: &[f64]) -> Data {
        let keep: Vec<usize> = (0..self.len()).filter(|&i| counts[i] > 0.0).collect();
        Data {
            idx: keep.iter().map(|&i| self.idx[i]).collect(),
            ln_loss: keep.iter().map(|&i| self.ln_loss[i]).collect(),
            weight: keep.iter().map(|&i| counts[i] * self.weight[i]).collect(),
            ..self.clone()
        }
    }

    pub fn len(&self) -> usize {
        self.ln_loss.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ln_loss.is_empty()
    }

    fn to_internal(&self, p: &Params) -> Params {
        [p[0] - p[3] * self.m_n, p[1] - p[4] * self.m_d, p[2], p[3], p[4]]
    }

    fn to_external(&self, q: &Params) -> Params {
        [q[0] + q[3] * self.m_n, q[1] + q[4] * self.m_d, q[2], q[3], q[4]]
    }
}

fn huber(r: f64, delta: f64) -> (f64, f64) {
    if r.abs() <= delta {
        (0.5 * r * r, r)
    } else {
        (delta * (r.abs() - 0.5 * delta), delta * r.signum())
    }
}

fn lse3(x: f64, y: f64, z: f64) -> (f64, [f64; 3]) {
    let m = x.max(y).max(z);
    let (u, v, w) = ((x - m).exp(), (y - m).exp(), (z - m).exp());
    let s = u + v + w;
    (m + s.ln(), [u / s, v / s, w / s])
}

/// Scratch space for the per-size terms: on the stack for ordinary sweeps.
// The big variant is the point: it avoids four heap allocations per evaluation.
#[allow(clippy::large_enum_variant)]
enum Scratch {
    Stack([f64; 64], usize),
    Heap(Vec<f64>),
}

impl Scratch {
    fn new(len: usize) -> Scratch {
        if len <= 64 {
            Scratch::Stack([0.0; 64], len)
        } else {
            Scratch::Heap(vec![0.0; len])
        }
    }

    fn as_mut(&mut self) -> &mut [f64] {
        match self {
            Scratch::Stack(a, n) => &mut a[..*n],
            Scratch::Heap(v) => v,
        }
    }
}

/// The objective and its gradient in the internal (centred) parameters.
fn objective_internal(data: &Data, delta: f64, q: &Params, grad: &mut Params) -> f64 {
    let [la, lb, le, al, be] = *q;
    let (mut tn, mut td) = (Scratch::new(data.ln_n.len()), Scratch::new(data.ln_d.len()));
    let (tn, td) = (tn.as_mut(), td.as_mut());
    for (t, x) in tn.iter_mut().zip(&data.ln_n) {
        *t = la - al * x;
    }
    for (t, x) in td.iter_mut().zip(&data.ln_d) {
        *t = lb - be * x;
    }
    let m = tn.iter().chain(td.iter()).fold(le, |m, &x| m.max(x));
    let (mut un, mut vd) = (Scratch::new(tn.len()), Scratch::new(td.len()));
    let (un, vd) = (un.as_mut(), vd.as_mut());
    for (u, t) in un.iter_mut().zip(tn.iter()) {
        *u = (t - m).exp();
    }
    for (v, t) in vd.iter_mut().zip(td.iter()) {
        *v = (t - m).exp();
    }
    let w = (le - m).exp();
    let mut cost = 0.0;
    *grad = [0.0; 5];
    for i in 0..data.len() {
        let (jn, jd) = (data.idx[i].0 as usize, data.idx[i].1 as usize);
        let s = un[jn] + vd[jd] + w;
        // The shared shift can leave a point whose terms all lie far below the largest exponent
        // of another point; recompute that point on its own shift instead of taking ln(0).
        let (pred, soft) = if s > 1e-250 {
            let inv = 1.0 / s;
            (m + s.ln(), [un[jn] * inv, vd[jd] * inv, w * inv])
        } else {
            lse3(tn[jn], td[jd], le)
        };
        let wt = data.weight[i];
        let (h, psi) = huber(data.ln_loss[i] - pred, delta);
        cost += wt * h;
        let g = -wt * psi;
        grad[0] += g * soft[0];
        grad[1] += g * soft[1];
        grad[2] += g * soft[2];
        grad[3] -= g * soft[0] * data.ln_n[jn];
        grad[4] -= g * soft[1] * data.ln_d[jd];
    }
    cost
}

/// Summed (weighted) Huber objective at p = [ln A, ln B, ln E, α, β], with its gradient in p.
pub fn objective(data: &Data, delta: f64, p: &Params, grad: &mut Params) -> f64 {
    let mut g = [0.0; 5];
    let cost = objective_internal(data, delta, &data.to_internal(p), &mut g);
    *grad = [g[0], g[1], g[2], g[3] - data.m_n * g[0], g[4] - data.m_d * g[1]];
    cost
}

/// One L-BFGS run in internal parameters. Line searches call cost and gradient at the same
/// point, so both come from one evaluation cached here.
struct Problem<'a> {
    data: &'a Data,
    delta: f64,
    cache: RefCell<Option<(Params, f64, Params)>>,
}

impl Problem<'_> {
    fn eval(&self, q: &[f64]) -> (f64, Params) {
        let q: Params = [q[0], q[1], q[2], q[3], q[4]];
        if let Some((c_q, c, g)) = *self.cache.borrow() {
            if c_q == q {
                return (c, g);
            }
        }
        let mut g = [0.0; 5];
        let c = objective_internal(self.data, self.delta, &q, &mut g);
        *self.cache.borrow_mut() = Some((q, c, g));
        (c, g)
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, q: &Vec<f64>) -> Result<f64, Error> {
        Ok(self.eval(q).0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, q: &Vec<f64>) -> Result<Vec<f64>, Error> {
        Ok(self.eval(q).1.to_vec())
    }
}

/// Where one start ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartResult {
    pub start: Params,
    pub params: Params,
    pub cost: f64,
    pub converged: bool,
    pub iters: u64,
}

pub const MAX_ITERS: u64 = 1000;
/// argmin's gradient-norm criterion. Residual accuracy is ~1e-9 in log loss at this setting,
/// far below any noise the fit will see; tighter only adds iterations on the flat Huber valley.
pub const TOL_GRAD: f64 = 1e-7;
/// argmin's cost criterion is an absolute change; summed objectives are ≥ 1e-6 on real data.
pub const TOL_COST: f64 = 1e-13;

/// Runs L-BFGS from `start` for at most `max_iters` iterations. A start counts as converged when
/// argmin reports convergence, or when the line search gives up at a point whose gradient is
/// already negligible (the objective is flat to machine precision there).
pub fn run_start(data: &Data, delta: f64, start: Params, max_iters: u64) -> StartResult {
    let failed = StartResult { start, params: start, cost: f64::INFINITY, converged: false, iters: 0 };
    let problem = Problem { data, delta, cache: RefCell::new(None) };
    let Ok(solver) = LBFGS::new(MoreThuenteLineSearch::new(), 7)
        .with_tolerance_grad(TOL_GRAD)
        .and_then(|s| s.with_tolerance_cost(TOL_COST))
    else {
        return failed;
    };
    let q0 = data.to_internal(&start).to_vec();
    let res = Executor::new(problem, solver).configure(|s| s.param(q0).max_iters(max_iters)).timer(false).run();
    let Ok(res) = res else { return failed };
    let state = res.state();
    let Some(best) = state.get_best_param() else { return failed };
    let q: Params = [best[0], best[1], best[2], best[3], best[4]];
    let mut g = [0.0; 5];
    let cost = objective_internal(data, delta, &q, &mut g);
    if !cost.is_finite() || q.iter().any(|x| !x.is_finite()) {
        return failed;
    }
    let gnorm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let converged = match state.get_termination_reason() {
        Some(TerminationReason::SolverConverged) => true,
        Some(TerminationReason::SolverExit(_)) => gnorm < 1e-6,
        _ => false,
    };
    StartResult { start, params: data.to_external(&q), cost, converged, iters: state.get_iter() }
}

/// The Chinchilla grid: α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25}.
pub fn chinchilla_grid() -> Vec<Params> {
    let half = |k: i32| 0.5 * k as f64;
    let mut grid = Vec::with_capacity(4500);
    for a in 0..6 {
        for b in 0..6 {
            for e in -2..=2 {
                for al in 0..5 {
                    for be in 0..5 {
                        grid.push([5.0 * a as f64, 5.0 * b as f64, half(e), half(al), half(be)]);
                    }
                }
            }
        }
    }
    grid
}

/// Result of a multi-start fit.
#[derive(Debug, Clone)]
pub struct Fit {
    pub law: Law,
    pub params: Params,
    /// Summed Huber objective at the optimum.
    pub huber: f64,
    pub rmse_log: f64,
    pub starts: usize,
    pub converged_starts: usize,
    /// False when no start converged and the best non-converged end point is reported.
    pub converged: bool,
    /// Grid starts that led to the best end points, one per distinct basin first: the bootstrap
    /// restarts from a few of these.
    pub good_starts: Vec<Params>,
}

/// Picks the winner: the lowest objective among converged starts (ties go to the earlier start so
/// the choice does not depend on thread scheduling); the best unconverged one if none converged.
fn select(results: &[StartResult]) -> Option<(usize, bool)> {
    let pick = |only_converged: bool| {
        results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.cost.is_finite() && (r.converged || !only_converged))
            .min_by(|(i, x), (j, y)| x.cost.total_cmp(&y.cost).then(i.cmp(j)))
            .map(|(i, _)| i)
    };
    pick(true).map(|i| (i, true)).or_else(|| pick(false).map(|i| (i, false)))
}

fn close(p: &Params, q: &Params, tol: f64) -> bool {
    p.iter().zip(q.iter()).all(|(x, y)| (x - y).abs() < tol)
}

/// Indices of finite results by ascending cost, keeping one per cluster of end points.
fn distinct_by_cost(results: &[StartResult], keep: impl Fn(&StartResult) -> bool, tol: f64, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> =
        (0..results.len()).filter(|&i| results[i].cost.is_finite() && keep(&results[i])).collect();
    order.sort_by(|&i, &j| results[i].cost.total_cmp(&results[j].cost).then(i.cmp(&j)));
    let mut reps: Vec<usize> = vec![];
    for i in order {
        if !reps.iter().any(|&r| close(&results[r].params, &results[i].params, tol)) {
            reps.push(i);
            if reps.len() == k {
                break;
            }
        }
    }
    reps
}

fn good_starts(results: &[StartResult], k: usize) -> Vec<Params> {
    let mut starts: Vec<Params> =
        distinct_by_cost(results, |r| r.converged, 1e-3, k).iter().map(|&i| results[i].start).collect();
    let mut order: Vec<usize> = (0..results.len()).filter(|&i| results[i].converged).collect();
    order.sort_by(|&i, &j| results[i].cost.total_cmp(&results[j].cost).then(i.cmp(&j)));
    for i in order {
        if starts.len() >= k {
            break;
        }
        if !starts.contains(&results[i].start) {
            starts.push(results[i].start);
        }
    }
    starts
}

pub fn rmse_log(data: &Data, p: &Params) -> f64 {
    let mut g = [0.0; 5];
    // A Huber threshold larger than any residual turns the objective into half the sum of squares.
    let half_ss = objective(data, f64::INFINITY, p, &mut g);
    (2.0 * half_ss / data.len().max(1) as f64).sqrt()
}

/// Iterations every grid start gets before the grid is pruned.
pub const SCREEN_ITERS: u64 = 10;
/// Distinct screened end points that are carried on to convergence.
pub const SURVIVORS: usize = 32;

/// Multi-start fit over a large grid. Running 4500 starts to convergence costs ~1.2 s per fit,
/// and most of them end in the same basin, so every start first gets [`SCREEN_ITERS`] L-BFGS
/// iterations; starts that already converged are kept, and the [`SURVIVORS`] best distinct
/// unconverged end points continue to convergence. Every grid point is still explored, and the
/// winner is still the best converged start.
pub fn fit_grid(data: &Data, delta: f64, grid: &[Params]) -> Option<Fit> {
    let screened: Vec<StartResult> = grid.par_iter().map(|&s| run_start(data, delta, s, SCREEN_ITERS)).collect();
    let survivors = distinct_by_cost(&screened, |r| !r.converged, 1e-3, SURVIVORS);
    let continued: Vec<StartResult> = survivors
        .par_iter()
        .map(|&i| StartResult { start: screened[i].start, ..run_start(data, delta, screened[i].params, MAX_ITERS) })
        .collect();
    let mut results: Vec<StartResult> = screened.iter().filter(|r| r.converged).copied().collect();
    results.extend(continued);
    finish(data, &results, grid.len())
}

/// Runs every start to convergence on the current thread; for the bootstrap, which parallelises
/// over resamples and gives each only a handful of starts.
pub fn fit_from_serial(data: &Data, delta: f64, starts: &[Params]) -> Option<Fit> {
    let results: Vec<StartResult> = starts.iter().map(|&s| run_start(data, delta, s, MAX_ITERS)).collect();
    finish(data, &results, starts.len())
}

fn finish(data: &Data, results: &[StartResult], starts: usize) -> Option<Fit> {
    let (best, converged) = select(results)?;
    let r = results[best];
    Some(Fit {
        law: Law::from_params(&r.params),
        params: r.params,
        huber: r.cost,
        rmse_log: rmse_log(data, &r.params),
        starts,
        converged_starts: results.iter().filter(|r| r.converged).count(),
        converged,
        good_starts: good_starts(results, 4),
    })
}

/// The Huber threshold of Hoffmann et al. (2022), on log loss.
pub const CHINCHILLA_DELTA: f64 = 1e-3;

/// Huber's tuning constant: 95 % of least squares' efficiency under Gaussian noise, while a point
/// further out than this many noise scales still counts only linearly.
pub const HUBER_K: f64 = 1.345;

/// The fit whose Huber threshold is matched to the data's noise, and that threshold.
///
/// A first fit at [`CHINCHILLA_DELTA`] gives residuals r; the threshold is [`HUBER_K`] × their
/// robust scale (1.4826 × median |r|, the normal-consistent median absolute deviation), never
/// below Chinchilla's. With noise far above 1e-3 every point sits on the linear arm of the Huber
/// loss and the fit minimises absolute deviations: still consistent, but its percentile
/// bootstrap intervals over-cover (99 % at a nominal 95 %), which flags parameters as
/// unidentified that the data do pin down. At the matched threshold they cover 95–96 %.
pub fn fit_noise_matched(data: &Data, grid: &[Params]) -> Option<(Fit, f64)> {
    let first = fit_grid(data, CHINCHILLA_DELTA, grid)?;
    let delta = CHINCHILLA_DELTA.max(HUBER_K * robust_scale(data, &first.params));
    if delta == CHINCHILLA_DELTA {
        return Some((first, delta));
    }
    // The optimum moves little with the threshold: restart from the first optimum and from the
    // grid starts that reached the first fit's best basins, not from the whole grid again.
    let mut starts = vec![first.params];
    starts.extend(first.good_starts.iter().copied());
    let second = fit_from_serial(data, delta, &starts)?;
    // The counts describe the search of basins, which was the grid's.
    Some((Fit { starts: first.starts, converged_starts: first.converged_starts, ..second }, delta))
}

/// 1.4826 × the median absolute log residual of the (unweighted) points at `p`.
fn robust_scale(data: &Data, p: &Params) -> f64 {
    let q = data.to_internal(p);
    let mut r: Vec<f64> = data
        .idx
        .iter()
        .zip(&data.ln_loss)
        .map(|(&(jn, jd), y)| {
            let (lse, _) = lse3(q[0] - q[3] * data.ln_n[jn as usize], q[1] - q[4] * data.ln_d[jd as usize], q[2]);
            (lse - y).abs()
        })
        .collect();
    if r.is_empty() {
        return 0.0;
    }
    r.sort_by(f64::total_cmp);
    let mid = r.len() / 2;
    let median = if r.len() % 2 == 1 { r[mid] } else { 0.5 * (r[mid - 1] + r[mid]) };
    1.4826 * median
}

/// Approach 3 on (N, D, loss) triples from the full Chinchilla grid of starts.
pub fn fit(points: &[(f64, f64, f64)], delta: f64) -> Option<Fit> {
    fit_grid(&Data::new(points), delta, &chinchilla_grid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let law = Law { e: 1.69, a: 406.4, b: 410.7, alpha: 0.34, beta: 0.28 };
        let pts: Vec<_> = [(1e6, 1e9), (3e7, 2e9), (1e8, 5e8), (2e6, 4e10)]
            .iter()
            .enumerate()
            .map(|(i, &(n, d))| (n, d, law.predict(n, d) * (1.0 + 0.01 * (i as f64 - 1.5))))
            .collect();
        let data = Data::new(&pts);
        let p = [5.5, 6.5, 0.4, 0.3, 0.3];
        let mut g = [0.0; 5];
        objective(&data, 1e-3, &p, &mut g);
        for k in 0..5 {
            let h = 1e-6;
            let (mut hi, mut lo) = (p, p);
            hi[k] += h;
            lo[k] -= h;
            let mut tmp = [0.0; 5];
            let fd = (objective(&data, 1e-3, &hi, &mut tmp) - objective(&data, 1e-3, &lo, &mut tmp)) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()), "k={k} fd={fd} g={}", g[k]);
        }
    }

    #[test]
    fn grid_has_4500_starts() {
        assert_eq!(chinchilla_grid().len(), 4500);
    }
}
