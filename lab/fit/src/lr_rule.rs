//! The learning-rate rule of an LR sweep across sizes: the best rate of each (N, D), then
//! η_opt = coef · (N / 10⁶)^n_exponent · (D / 10⁹)^d_exponent by least squares in log space — the
//! form a sweep file takes as `lr = { rule = "power", … }`, so that a ladder trains each size
//! near its best rate.

use codescale_core::config::{LR_RULE_D_REF, LR_RULE_N_REF};
use serde::{Deserialize, Serialize};

use crate::hyper::HyperInput;

/// The fitted rule and the best rates it was fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrRuleFit {
    pub coef: f64,
    pub n_exponent: f64,
    pub d_exponent: f64,
    /// Root-mean-square residual of ln η_opt: how far a size's best rate strays from the rule.
    pub rmse_log: f64,
    /// (N, D, best learning rate) of every size and budget whose best rate the sweep brackets.
    pub optima: Vec<[f64; 3]>,
}

impl LrRuleFit {
    /// The rule as a sweep file writes it.
    pub fn toml(&self) -> String {
        format!(
            "lr = {{ rule = \"power\", coef = {:.4e}, n_exponent = {:.4}, d_exponent = {:.4} }}",
            self.coef, self.n_exponent, self.d_exponent
        )
    }
}

/// The best rate at each (N, D, batch): the vertex of a parabola in ln η through the best rate
/// and its two neighbours. A best rate at either end of the grid is not bracketed and is left
/// out, with a note.
pub fn optima(points: &[HyperInput], notes: &mut Vec<String>) -> Vec<[f64; 3]> {
    let mut keys: Vec<(f64, f64, f64)> = points.iter().map(|p| (p.n, p.d, p.batch_tokens)).collect();
    keys.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    keys.dedup();
    let mut out = Vec::new();
    for (n, d, batch) in keys {
        let mut at: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| (p.n, p.d, p.batch_tokens) == (n, d, batch))
            .map(|p| (p.lr.ln(), p.loss))
            .collect();
        at.sort_by(|a, b| a.0.total_cmp(&b.0));
        at.dedup_by(|a, b| a.0 == b.0);
        if at.len() < 3 {
            continue;
        }
        let best = (0..at.len()).min_by(|&i, &j| at[i].1.total_cmp(&at[j].1)).expect("non-empty");
        if best == 0 || best == at.len() - 1 {
            notes.push(format!(
                "N = {n:.3e}, D = {d:.3e}: the best learning rate is at the edge of the grid ({:.3e}); widen the sweep",
                at[best].0.exp()
            ));
            continue;
        }
        let [(x0, y0), (x1, y1), (x2, y2)] = [at[best - 1], at[best], at[best + 1]];
        // Vertex of the parabola through three points.
        let num = (x1 - x0).powi(2) * (y1 - y2) - (x1 - x2).powi(2) * (y1 - y0);
        let den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0);
        let x = if den.abs() > 0.0 { (x1 - 0.5 * num / den).clamp(x0, x2) } else { x1 };
        out.push([n, d, x.exp()]);
    }
    out
}

/// The rule through the bracketed optima; `None` with fewer than two.
pub fn lr_rule(points: &[HyperInput], notes: &mut Vec<String>) -> Option<LrRuleFit> {
    let optima = optima(points, notes);
    if optima.len() < 2 {
        return None;
    }
    let xs: Vec<[f64; 2]> = optima.iter().map(|o| [(o[0] / LR_RULE_N_REF).ln(), (o[1] / LR_RULE_D_REF).ln()]).collect();
    let ys: Vec<f64> = optima.iter().map(|o| o[2].ln()).collect();
    let varies = |k: usize| xs.iter().any(|x| (x[k] - xs[0][k]).abs() > 1e-12);
    let (a, p, q) = least_squares(&xs, &ys, varies(0), varies(1))?;
    let rmse =
        (xs.iter().zip(&ys).map(|(x, y)| (y - a - p * x[0] - q * x[1]).powi(2)).sum::<f64>() / ys.len() as f64).sqrt();
    Some(LrRuleFit { coef: a.exp(), n_exponent: p, d_exponent: q, rmse_log: rmse, optima })
}

/// y = a + p·x₀ + q·x₁, with p (q) fixed at 0 when x₀ (x₁) does not vary.
fn least_squares(xs: &[[f64; 2]], ys: &[f64], use_n: bool, use_d: bool) -> Option<(f64, f64, f64)> {
    let cols: Vec<usize> = [(0, use_n), (1, use_d)].into_iter().filter(|c| c.1).map(|c| c.0).collect();
    let k = cols.len() + 1;
    // Normal equations, solved by Gaussian elimination.
    let row = |x: &[f64; 2]| -> Vec<f64> { std::iter::once(1.0).chain(cols.iter().map(|&c| x[c])).collect() };
    let mut m = vec![vec![0.0; k + 1]; k];
    for (x, &y) in xs.iter().zip(ys) {
        let r = row(x);
        for i in 0..k {
            for j in 0..k {
                m[i][j] += r[i] * r[j];
            }
            m[i][k] += r[i] * y;
        }
    }
    for col in 0..k {
        let pivot = (col..k).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        m.swap(col, pivot);
        if m[col][col].abs() < 1e-12 {
            return None;
        }
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let coef: Vec<f64> = (0..k).map(|i| m[i][k] / m[i][i]).collect();
    let mut it = coef[1..].iter();
    let p = if use_n { *it.next()? } else { 0.0 };
    let q = if use_d { *it.next()? } else { 0.0 };
    Some((coef[0], p, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_rule_from_a_grid_of_rates() {
        // Loss a parabola in ln η around the true optimum η* = 4e-3 · (N/1e6)^-0.3 · (D/1e9)^-0.1.
        let truth = |n: f64, d: f64| 4e-3 * (n / 1e6).powf(-0.3) * (d / 1e9).powf(-0.1);
        let mut pts = vec![];
        for n in [1e4, 1e5, 1e6] {
            for d in [1e5, 1e6] {
                for k in 0..7 {
                    let lr = 1e-4 * 2f64.powi(k * 2) / 4.0 * 16.0;
                    let loss = 2.0 + 0.05 * (lr.ln() - truth(n, d).ln()).powi(2);
                    pts.push(HyperInput { n, d, flops: None, lr, batch_tokens: 1024.0, warmup_steps: 0.0, loss });
                }
            }
        }
        let mut notes = vec![];
        let rule = lr_rule(&pts, &mut notes).unwrap();
        assert!((rule.n_exponent + 0.3).abs() < 1e-6 && (rule.d_exponent + 0.1).abs() < 1e-6, "{rule:?} {notes:?}");
        assert!((rule.coef / 4e-3 - 1.0).abs() < 1e-6);
        assert!(rule.toml().starts_with("lr = { rule = \"power\", coef = 4.0000e-3, n_exponent = -0.3000"));
    }

    #[test]
    fn an_optimum_at_the_edge_of_the_grid_is_not_trusted() {
        let pts: Vec<HyperInput> = [1e-3, 2e-3, 4e-3]
            .iter()
            .map(|&lr| HyperInput {
                n: 1e5,
                d: 1e6,
                flops: None,
                lr,
                batch_tokens: 1024.0,
                warmup_steps: 0.0,
                loss: 3.0 - lr,
            })
            .collect();
        let mut notes = vec![];
        assert!(optima(&pts, &mut notes).is_empty());
        assert!(notes[0].contains("edge of the grid"));
    }
}
