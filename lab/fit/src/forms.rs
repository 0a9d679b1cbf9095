//! Law forms beside Chinchilla's, fitted by one generic multi-start L-BFGS on a Huber loss of
//! log L: the form is a choice the data make (by out-of-sample error, [`crate::select`]), not an
//! assumption.
//!
//! Every form is written as log L = LSE(terms), with ln N and ln D centred on their means while
//! fitting (the same conditioning trick as [`crate::approach3`]): a scale and its exponent then
//! no longer move together along a long valley.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A law's functional form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// Hoffmann et al. (2022): L = E + A/N^α + B/D^β.
    #[default]
    Chinchilla,
    /// Kaplan et al. (2020) with an irreducible term: L = E + ((N_c/N)^(α_N/α_D) + D_c/D)^α_D.
    /// Not additive in N and D: small models gain less from more data than large ones.
    Kaplan,
    /// Gadre et al. (2024): Chinchilla with one exponent for N and D, L = E + A/N^η + B/D^η,
    /// which makes the loss a power law in compute at a fixed tokens-per-parameter ratio M
    /// (their L(C, M) = E + (a·M^η + b·M^−η)·C^−η). One parameter fewer than Chinchilla.
    Gadre,
    /// Kaplan et al.'s (2020) own law, eq. (1.5), with no irreducible term:
    /// L = ((N_c/N)^(α_N/α_D) + D_c/D)^α_D. Where a ladder has not yet bent toward a floor (the loss
    /// still a power law in N at a fixed D), a fitted E stops the law from falling as far as the
    /// larger runs do; this form lets the data choose that shape, at the price of no L_inf.
    Kaplan2020,
    /// L = E + B/D^β: for a single model size (one run's curve), where N's term cannot be told
    /// from E.
    Data,
}

impl Form {
    pub const ALL: [Form; 5] = [Form::Chinchilla, Form::Kaplan, Form::Gadre, Form::Kaplan2020, Form::Data];

    pub fn name(self) -> &'static str {
        match self {
            Form::Chinchilla => "chinchilla",
            Form::Kaplan => "kaplan",
            Form::Gadre => "gadre",
            Form::Kaplan2020 => "kaplan2020",
            Form::Data => "data",
        }
    }

    pub fn parse(s: &str) -> Option<Form> {
        Form::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The law written out, for tables and the report.
    pub fn formula(self) -> &'static str {
        match self {
            Form::Chinchilla => "E + A/N^α + B/D^β",
            Form::Kaplan => "E + ((N_c/N)^(α_N/α_D) + D_c/D)^α_D",
            Form::Gadre => "E + A/N^η + B/D^η",
            Form::Kaplan2020 => "((N_c/N)^(α_N/α_D) + D_c/D)^α_D",
            Form::Data => "E + B/D^β",
        }
    }

    /// Names of the natural parameters, in the order of [`Form::natural`]'s output.
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            Form::Chinchilla => &["E", "A", "B", "α", "β"],
            Form::Kaplan => &["E", "N_c", "D_c", "α_N", "α_D"],
            Form::Gadre => &["E", "A", "B", "η"],
            Form::Kaplan2020 => &["N_c", "D_c", "α_N", "α_D"],
            Form::Data => &["E", "B", "β"],
        }
    }

    pub fn n_params(self) -> usize {
        self.param_names().len()
    }

    /// Whether the form has an N term at all (needs two sizes or more).
    pub fn has_n(self) -> bool {
        self != Form::Data
    }

    /// Whether the form has an N × D interaction (Kaplan's forms), the kind the additivity check
    /// can find.
    pub fn has_interaction(self) -> bool {
        matches!(self, Form::Kaplan | Form::Kaplan2020)
    }

    /// (α_N, α_D, L_inf) of natural parameters; `None` where the form has no such quantity.
    pub fn headline(self, p: &[f64]) -> [Option<f64>; 3] {
        match self {
            Form::Chinchilla => [Some(p[3]), Some(p[4]), Some(p[0])],
            Form::Kaplan => [Some(p[3]), Some(p[4]), Some(p[0])],
            Form::Gadre => [Some(p[3]), Some(p[3]), Some(p[0])],
            Form::Kaplan2020 => [Some(p[2]), Some(p[3]), None],
            Form::Data => [None, Some(p[2]), Some(p[0])],
        }
    }

    /// (N_c, D_c) of natural parameters, so that the N term alone is (N_c/N)^α_N.
    pub fn scales(self, p: &[f64]) -> [Option<f64>; 2] {
        match self {
            Form::Chinchilla => [Some(p[1].powf(1.0 / p[3])), Some(p[2].powf(1.0 / p[4]))],
            Form::Kaplan => [Some(p[1]), Some(p[2])],
            Form::Gadre => [Some(p[1].powf(1.0 / p[3])), Some(p[2].powf(1.0 / p[3]))],
            Form::Kaplan2020 => [Some(p[0]), Some(p[1])],
            Form::Data => [None, Some(p[1].powf(1.0 / p[2]))],
        }
    }

    /// The loss at (N, D) from natural parameters.
    pub fn predict(self, p: &[f64], n: f64, d: f64) -> f64 {
        match self {
            Form::Chinchilla => p[0] + p[1] / n.powf(p[3]) + p[2] / d.powf(p[4]),
            Form::Kaplan => p[0] + ((p[1] / n).powf(p[3] / p[4]) + p[2] / d).powf(p[4]),
            Form::Gadre => p[0] + p[1] / n.powf(p[3]) + p[2] / d.powf(p[3]),
            Form::Kaplan2020 => ((p[0] / n).powf(p[2] / p[3]) + p[1] / d).powf(p[3]),
            Form::Data => p[0] + p[1] / d.powf(p[2]),
        }
    }

    /// Natural parameters from internal ones (centred at ln N = m_n, ln D = m_d).
    fn natural(self, q: &[f64], m_n: f64, m_d: f64) -> Vec<f64> {
        match self {
            Form::Chinchilla => vec![q[2].exp(), (q[0] + q[3] * m_n).exp(), (q[1] + q[4] * m_d).exp(), q[3], q[4]],
            Form::Kaplan => vec![q[2].exp(), (q[0] + m_n).exp(), (q[1] + m_d).exp(), q[3].exp(), q[4].exp()],
            Form::Gadre => vec![q[2].exp(), (q[0] + q[3] * m_n).exp(), (q[1] + q[3] * m_d).exp(), q[3]],
            Form::Kaplan2020 => vec![(q[0] + m_n).exp(), (q[1] + m_d).exp(), q[2].exp(), q[3].exp()],
            Form::Data => vec![q[1].exp(), (q[0] + q[2] * m_d).exp(), q[2]],
        }
    }

    /// Internal parameters from natural ones: the inverse of [`Form::natural`].
    fn internal(self, p: &[f64], m_n: f64, m_d: f64) -> Vec<f64> {
        match self {
            Form::Chinchilla => vec![p[1].ln() - p[3] * m_n, p[2].ln() - p[4] * m_d, p[0].ln(), p[3], p[4]],
            Form::Kaplan => vec![p[1].ln() - m_n, p[2].ln() - m_d, p[0].ln(), p[3].ln(), p[4].ln()],
            Form::Gadre => vec![p[1].ln() - p[3] * m_n, p[2].ln() - p[3] * m_d, p[0].ln(), p[3]],
            Form::Kaplan2020 => vec![p[0].ln() - m_n, p[1].ln() - m_d, p[2].ln(), p[3].ln()],
            Form::Data => vec![p[1].ln() - p[2] * m_d, p[0].ln(), p[2]],
        }
    }

    /// log L and its gradient in the internal parameters at centred x = ln N − m_n, y = ln D − m_d.
    fn log_predict(self, q: &[f64], x: f64, y: f64, grad: &mut [f64]) -> f64 {
        match self {
            Form::Chinchilla => {
                let (v, w) = lse(&[q[0] - q[3] * x, q[1] - q[4] * y, q[2]]);
                grad.copy_from_slice(&[w[0], w[1], w[2], -w[0] * x, -w[1] * y]);
                v
            }
            Form::Gadre => {
                let (v, w) = lse(&[q[0] - q[3] * x, q[1] - q[3] * y, q[2]]);
                grad.copy_from_slice(&[w[0], w[1], w[2], -w[0] * x - w[1] * y]);
                v
            }
            Form::Data => {
                let (v, w) = lse(&[q[0] - q[2] * y, q[1]]);
                grad.copy_from_slice(&[w[0], w[1], -w[0] * y]);
                v
            }
            Form::Kaplan => {
                // T = α_D · LSE(r·(c_n − x), c_d − y), r = α_N/α_D; log L = LSE(T, e).
                let (an, ad) = (q[3].exp(), q[4].exp());
                let u = an / ad * (q[0] - x);
                let (s, wi) = lse(&[u, q[1] - y]);
                let t = ad * s;
                let (v, wo) = lse(&[t, q[2]]);
                let dt = [an * wi[0], ad * wi[1], wi[0] * (q[0] - x) * an, (s - wi[0] * u) * ad];
                grad.copy_from_slice(&[wo[0] * dt[0], wo[0] * dt[1], wo[1], wo[0] * dt[2], wo[0] * dt[3]]);
                v
            }
            Form::Kaplan2020 => {
                // log L = α_D · LSE(r·(c_n − x), c_d − y), r = α_N/α_D: Kaplan's term alone.
                let (an, ad) = (q[2].exp(), q[3].exp());
                let u = an / ad * (q[0] - x);
                let (s, w) = lse(&[u, q[1] - y]);
                grad.copy_from_slice(&[an * w[0], ad * w[1], w[0] * (q[0] - x) * an, (s - w[0] * u) * ad]);
                ad * s
            }
        }
    }

    /// Starting points in internal coordinates: exponents, term sizes at the centre and E spread
    /// over what losses of this size allow.
    fn grid(self, mean_loss: f64, min_loss: f64) -> Vec<Vec<f64>> {
        let terms = [0.02, 0.1, 0.5].map(|f: f64| (f * mean_loss).ln());
        let es = [0.3, 0.7, 0.95].map(|f: f64| (f * min_loss).ln());
        let exps = [0.15, 0.4, 0.9];
        let mut grid = vec![];
        for &e in &es {
            for &t1 in &terms {
                for &x1 in &exps {
                    match self {
                        Form::Data => grid.push(vec![t1, e, x1]),
                        _ => {
                            for &t2 in &terms {
                                for &x2 in &exps {
                                    match self {
                                        Form::Chinchilla => grid.push(vec![t1, t2, e, x1, x2]),
                                        // A Kaplan term alone is (N_c/N)^α_N: at the centre its log is
                                        // α_N·c_n, so c_n = ln(term)/α_N.
                                        Form::Kaplan => grid.push(vec![t1 / x1, t2 / x2, e, x1.ln(), x2.ln()]),
                                        // No E to spread: each start once.
                                        Form::Kaplan2020 => {
                                            if e == es[0] {
                                                grid.push(vec![t1 / x1, t2 / x2, x1.ln(), x2.ln()]);
                                            }
                                        }
                                        Form::Gadre => {
                                            if x1 == x2 {
                                                grid.push(vec![t1, t2, e, x1]);
                                            }
                                        }
                                        Form::Data => unreachable!(),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        grid
    }
}

/// Log-sum-exp and its softmax weights.
pub(crate) fn lse<const K: usize>(xs: &[f64; K]) -> (f64, [f64; K]) {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut w = [0.0; K];
    let mut s = 0.0;
    for (wi, x) in w.iter_mut().zip(xs) {
        *wi = (x - m).exp();
        s += *wi;
    }
    for wi in &mut w {
        *wi /= s;
    }
    (m + s.ln(), w)
}

pub(crate) fn huber(r: f64, delta: f64) -> (f64, f64) {
    if r.abs() <= delta {
        (0.5 * r * r, r)
    } else {
        (delta * (r.abs() - 0.5 * delta), delta * r.signum())
    }
}

/// Points prepared for a form: centred logs and weights (bootstrap multiplicities × precision).
#[derive(Debug, Clone)]
pub struct Points {
    x: Vec<f64>,
    y: Vec<f64>,
    ln_loss: Vec<f64>,
    weight: Vec<f64>,
    m_n: f64,
    m_d: f64,
    mean_loss: f64,
    min_loss: f64,
}

impl Points {
    /// `points` are (N, D, loss), finite and positive.
    pub fn new(points: &[(f64, f64, f64)]) -> Points {
        let k = points.len().max(1) as f64;
        let m_n = points.iter().map(|p| p.0.ln()).sum::<f64>() / k;
        let m_d = points.iter().map(|p| p.1.ln()).sum::<f64>() / k;
        Points {
            x: points.iter().map(|p| p.0.ln() - m_n).collect(),
            y: points.iter().map(|p| p.1.ln() - m_d).collect(),
            ln_loss: points.iter().map(|p| p.2.ln()).collect(),
            weight: vec![1.0; points.len()],
            m_n,
            m_d,
            mean_loss: points.iter().map(|p| p.2).sum::<f64>() / k,
            min_loss: points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min),
        }
    }

    pub fn with_weights(mut self, weights: &[f64]) -> Points {
        self.weight = weights.to_vec();
        self
    }

    /// The same points, each weight multiplied by a bootstrap multiplicity.
    pub fn resampled(&self, counts: &[f64]) -> Points {
        Points { weight: self.weight.iter().zip(counts).map(|(w, c)| w * c).collect(), ..self.clone() }
    }

    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    fn objective(&self, form: Form, delta: f64, q: &[f64], grad: &mut [f64]) -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut g = vec![0.0; q.len()];
        let mut cost = 0.0;
        for i in 0..self.len() {
            if self.weight[i] == 0.0 {
                continue;
            }
            let pred = form.log_predict(q, self.x[i], self.y[i], &mut g);
            let (h, psi) = huber(self.ln_loss[i] - pred, delta);
            cost += self.weight[i] * h;
            for (gk, dk) in grad.iter_mut().zip(&g) {
                *gk -= self.weight[i] * psi * dk;
            }
        }
        cost
    }

    /// Log residuals (measured − predicted) of natural parameters `p`.
    pub fn residuals(&self, form: Form, p: &[f64]) -> Vec<f64> {
        let q = form.internal(p, self.m_n, self.m_d);
        let mut g = vec![0.0; q.len()];
        (0..self.len()).map(|i| self.ln_loss[i] - form.log_predict(&q, self.x[i], self.y[i], &mut g)).collect()
    }
}

/// A smooth cost and its gradient in internal coordinates, for [`minimize`].
pub(crate) type Objective<'a> = dyn Fn(&[f64], &mut [f64]) -> f64 + Sync + 'a;

/// The last point the objective was evaluated at, with its value and gradient.
type Evaluated = Option<(Vec<f64>, f64, Vec<f64>)>;

struct Problem<'a> {
    objective: &'a Objective<'a>,
    cache: RefCell<Evaluated>,
}

impl Problem<'_> {
    fn eval(&self, q: &[f64]) -> (f64, Vec<f64>) {
        if let Some((cq, c, g)) = &*self.cache.borrow() {
            if cq.as_slice() == q {
                return (*c, g.clone());
            }
        }
        let mut g = vec![0.0; q.len()];
        let c = (self.objective)(q, &mut g);
        // The line search must see a wall, not a NaN, where a term overflows.
        let c = if c.is_finite() { c } else { f64::MAX };
        *self.cache.borrow_mut() = Some((q.to_vec(), c, g.clone()));
        (c, g)
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, q: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.eval(q).0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, q: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(q).1)
    }
}

/// A fitted form.
#[derive(Debug, Clone, PartialEq)]
pub struct FormFit {
    pub form: Form,
    /// Natural parameters (see [`Form::param_names`]).
    pub params: Vec<f64>,
    pub huber: f64,
    pub rmse_log: f64,
    pub starts: usize,
    pub converged_starts: usize,
    pub converged: bool,
    /// The starts of the best distinct end points, for the bootstrap's restarts (natural units).
    pub good_starts: Vec<Vec<f64>>,
}

pub(crate) struct End {
    pub start: Vec<f64>,
    pub q: Vec<f64>,
    pub cost: f64,
    pub converged: bool,
}

/// One L-BFGS descent of `objective` from `q0`: where it ended, its cost there and whether it
/// converged (gradient small, not an iteration cap or a failed line search).
pub(crate) fn minimize(objective: &Objective, q0: Vec<f64>) -> End {
    let failed = End { start: q0.clone(), q: q0.clone(), cost: f64::INFINITY, converged: false };
    let problem = Problem { objective, cache: RefCell::new(None) };
    let Ok(solver) = LBFGS::new(MoreThuenteLineSearch::new(), 7)
        .with_tolerance_grad(1e-8)
        .and_then(|s| s.with_tolerance_cost(1e-14))
    else {
        return failed;
    };
    let Ok(res) = Executor::new(problem, solver).configure(|s| s.param(q0.clone()).max_iters(500)).timer(false).run()
    else {
        return failed;
    };
    let state = res.state();
    let Some(q) = state.get_best_param().cloned() else { return failed };
    let mut g = vec![0.0; q.len()];
    let cost = objective(&q, &mut g);
    if !cost.is_finite() || q.iter().any(|x| !x.is_finite()) {
        return failed;
    }
    let gnorm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let converged = match state.get_termination_reason() {
        Some(TerminationReason::SolverConverged) => true,
        Some(TerminationReason::SolverExit(_)) => gnorm < 1e-6 * (1.0 + cost),
        _ => false,
    };
    End { start: q0, q, cost, converged }
}

fn run_start(points: &Points, form: Form, delta: f64, q0: Vec<f64>) -> End {
    minimize(&|q: &[f64], g: &mut [f64]| points.objective(form, delta, q, g), q0)
}

fn finish(points: &Points, form: Form, ends: Vec<End>) -> Option<FormFit> {
    let starts = ends.len();
    let converged_starts = ends.iter().filter(|e| e.converged).count();
    let pick = |only: bool| {
        ends.iter()
            .enumerate()
            .filter(|(_, e)| e.cost.is_finite() && (e.converged || !only))
            .min_by(|(i, a), (j, b)| a.cost.total_cmp(&b.cost).then(i.cmp(j)))
            .map(|(i, _)| i)
    };
    let (best, converged) = pick(true).map(|i| (i, true)).or_else(|| pick(false).map(|i| (i, false)))?;
    let params = form.natural(&ends[best].q, points.m_n, points.m_d);
    if params.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut order: Vec<usize> = (0..ends.len()).filter(|&i| ends[i].converged).collect();
    order.sort_by(|&i, &j| ends[i].cost.total_cmp(&ends[j].cost).then(i.cmp(&j)));
    let mut good: Vec<&End> = vec![];
    for i in order {
        if !good.iter().any(|g| g.q.iter().zip(&ends[i].q).all(|(a, b)| (a - b).abs() < 1e-3)) {
            good.push(&ends[i]);
            if good.len() == 3 {
                break;
            }
        }
    }
    let good_starts = good.iter().map(|e| form.natural(&e.start, points.m_n, points.m_d)).collect();
    let r = points.residuals(form, &params);
    let rmse_log = (r.iter().map(|x| x * x).sum::<f64>() / r.len().max(1) as f64).sqrt();
    Some(FormFit { form, params, huber: ends[best].cost, rmse_log, starts, converged_starts, converged, good_starts })
}

/// Multi-start fit from the form's grid (in parallel).
pub fn fit(points: &Points, form: Form, delta: f64) -> Option<FormFit> {
    let grid = form.grid(points.mean_loss, points.min_loss);
    let ends: Vec<End> = grid.into_par_iter().map(|q0| run_start(points, form, delta, q0)).collect();
    finish(points, form, ends)
}

/// Fit from given starts (natural units), serially: for bootstrap resamples, which run in
/// parallel themselves.
pub fn fit_from(points: &Points, form: Form, delta: f64, starts: &[Vec<f64>]) -> Option<FormFit> {
    let ends: Vec<End> =
        starts.iter().map(|s| run_start(points, form, delta, form.internal(s, points.m_n, points.m_d))).collect();
    finish(points, form, ends)
}

/// The fit at a Huber threshold matched to its own residuals' robust scale (as
/// [`crate::approach3::fit_noise_matched`] does for Chinchilla), and that threshold.
pub fn fit_noise_matched(points: &Points, form: Form) -> Option<(FormFit, f64)> {
    let first = fit(points, form, crate::approach3::CHINCHILLA_DELTA)?;
    let delta = matched_delta(&points.residuals(form, &first.params));
    if delta == crate::approach3::CHINCHILLA_DELTA {
        return Some((first, delta));
    }
    let mut starts = vec![first.params.clone()];
    starts.extend(first.good_starts.iter().cloned());
    let second = fit_from(points, form, delta, &starts)?;
    Some((FormFit { starts: first.starts, converged_starts: first.converged_starts, ..second }, delta))
}

/// The Huber threshold matched to residuals' robust scale: [`crate::approach3::HUBER_K`] robust
/// standard deviations (1.4826 × the median |residual|), and never below Chinchilla's 1e-3.
pub(crate) fn matched_delta(residuals: &[f64]) -> f64 {
    let mut r: Vec<f64> = residuals.iter().map(|x| x.abs()).collect();
    r.sort_by(f64::total_cmp);
    let median = if r.is_empty() {
        0.0
    } else if r.len() % 2 == 1 {
        r[r.len() / 2]
    } else {
        0.5 * (r[r.len() / 2 - 1] + r[r.len() / 2])
    };
    crate::approach3::CHINCHILLA_DELTA.max(crate::approach3::HUBER_K * 1.4826 * median)
}

/// A fit at `delta`, or noise-matched when `None`.
pub fn fit_at(points: &Points, form: Form, delta: Option<f64>) -> Option<(FormFit, f64)> {
    match delta {
        Some(d) => fit(points, form, d).map(|f| (f, d)),
        None => fit_noise_matched(points, form),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(form: Form) -> Vec<f64> {
        match form {
            Form::Chinchilla => vec![1.69, 406.4, 410.7, 0.34, 0.28],
            Form::Kaplan => vec![1.5, 8.8e13, 5.4e13, 0.076, 0.095],
            Form::Gadre => vec![1.8, 300.0, 900.0, 0.3],
            Form::Kaplan2020 => vec![8.8e13, 5.4e13, 0.076, 0.095],
            Form::Data => vec![2.0, 50.0, 0.25],
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for form in Form::ALL {
            let q: Vec<f64> = match form {
                Form::Chinchilla => vec![0.3, -0.5, 0.4, 0.3, 0.25],
                Form::Kaplan => vec![1.2, 0.7, 0.4, -1.5, -1.2],
                Form::Gadre => vec![0.3, -0.5, 0.4, 0.3],
                Form::Kaplan2020 => vec![1.2, 0.7, -1.5, -1.2],
                Form::Data => vec![-0.5, 0.4, 0.3],
            };
            let (x, y) = (0.7, -1.3);
            let mut g = vec![0.0; q.len()];
            form.log_predict(&q, x, y, &mut g);
            for k in 0..q.len() {
                let h = 1e-6;
                let (mut hi, mut lo) = (q.clone(), q.clone());
                hi[k] += h;
                lo[k] -= h;
                let mut tmp = vec![0.0; q.len()];
                let fd = (form.log_predict(&hi, x, y, &mut tmp) - form.log_predict(&lo, x, y, &mut tmp)) / (2.0 * h);
                assert!((fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()), "{form:?} k={k} fd={fd} g={}", g[k]);
            }
        }
    }

    #[test]
    fn internal_and_natural_are_inverse_and_agree_on_predictions() {
        for form in Form::ALL {
            let p = truth(form);
            let (m_n, m_d) = (17.0, 21.0);
            let q = form.internal(&p, m_n, m_d);
            let back = form.natural(&q, m_n, m_d);
            for (a, b) in p.iter().zip(&back) {
                assert!((a / b - 1.0).abs() < 1e-9, "{form:?}: {p:?} vs {back:?}");
            }
            let (n, d) = (3e8_f64, 7e9_f64);
            let mut g = vec![0.0; q.len()];
            let log = form.log_predict(&q, n.ln() - m_n, d.ln() - m_d, &mut g);
            assert!((log.exp() / form.predict(&p, n, d) - 1.0).abs() < 1e-9, "{form:?}");
        }
    }

    /// Each form recovers its own law from noiseless points of a 4 × 4 design.
    #[test]
    fn every_form_recovers_its_law() {
        for form in Form::ALL {
            let p = truth(form);
            let ns: &[f64] = if form.has_n() { &[1e7, 4e7, 1.6e8, 6.4e8] } else { &[1e8] };
            let pts: Vec<(f64, f64, f64)> =
                ns.iter().flat_map(|&n| [2e8, 8e8, 3.2e9, 1.28e10].map(|d| (n, d, form.predict(&p, n, d)))).collect();
            let fit = fit(&Points::new(&pts), form, 1e-4).expect("fits");
            assert!(fit.rmse_log < 1e-5, "{form:?}: rmse {}", fit.rmse_log);
            let (n, d) = (5e9, 1e11);
            let rel = fit.params.len();
            assert!(
                (form.predict(&fit.params, n, d) / form.predict(&p, n, d) - 1.0).abs() < 1e-3,
                "{form:?} ({rel} params): {:?} against {p:?}",
                fit.params
            );
        }
    }
}
