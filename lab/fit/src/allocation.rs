//! Compute-optimal allocation implied by an Approach 3 law under C = 6·N·D.

use crate::approach3::Law;
use crate::bootstrap::estimate;
use crate::schema::{Allocation, BudgetPlan};

/// N_opt(C) = G·(C/6)^a, D_opt(C) = G⁻¹·(C/6)^b.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponents {
    /// β/(α+β).
    pub a: f64,
    /// α/(α+β).
    pub b: f64,
    /// (αA/(βB))^(1/(α+β)).
    pub g: f64,
}

pub fn allocation(law: &Law) -> Exponents {
    let s = law.alpha + law.beta;
    Exponents { a: law.beta / s, b: law.alpha / s, g: (law.alpha * law.a / (law.beta * law.b)).powf(1.0 / s) }
}

/// What the law recommends at `flops`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub n_opt: f64,
    pub d_opt: f64,
    pub tokens_per_param: f64,
    pub loss: f64,
}

pub fn plan(law: &Law, flops: f64) -> Plan {
    let x = allocation(law);
    let n_opt = x.g * (flops / 6.0).powf(x.a);
    let d_opt = (flops / 6.0).powf(x.b) / x.g;
    Plan { n_opt, d_opt, tokens_per_param: d_opt / n_opt, loss: law.predict(n_opt, d_opt) }
}

/// 1e15 … 1e24 FLOPs by decade.
pub fn default_budgets() -> Vec<f64> {
    (15..=24).map(|k| 10f64.powi(k)).collect()
}

/// One budget's plan with percentile intervals from the bootstrap laws' plans.
fn budget_plan(flops: f64, p: Plan, boot: &[Plan], confidence: f64) -> BudgetPlan {
    let col = |f: fn(&Plan) -> f64| boot.iter().map(f).collect::<Vec<f64>>();
    BudgetPlan {
        flops,
        n_opt: estimate(p.n_opt, &col(|p| p.n_opt), confidence),
        d_opt: estimate(p.d_opt, &col(|p| p.d_opt), confidence),
        tokens_per_param: estimate(p.tokens_per_param, &col(|p| p.tokens_per_param), confidence),
        loss: estimate(p.loss, &col(|p| p.loss), confidence),
        extrapolated: false,
    }
}

/// The allocation of `law` with percentile intervals from the bootstrap laws.
pub fn allocation_with_intervals(law: &Law, boot: &[Law], budgets: &[f64], confidence: f64) -> Allocation {
    let x = allocation(law);
    let xs: Vec<Exponents> = boot.iter().map(allocation).collect();
    let col = |f: fn(&Exponents) -> f64| xs.iter().map(f).collect::<Vec<f64>>();
    let budgets = budgets
        .iter()
        .map(|&c| budget_plan(c, plan(law, c), &boot.iter().map(|l| plan(l, c)).collect::<Vec<Plan>>(), confidence))
        .collect();
    Allocation {
        a: estimate(x.a, &col(|x| x.a), confidence),
        b: estimate(x.b, &col(|x| x.b), confidence),
        g: estimate(x.g, &col(|x| x.g), confidence),
        budgets,
    }
}

/// N_opt at `flops` for any form: the minimum over ln N of L(N, C/6N), scanned on a grid of
/// ln N and refined by golden section (the loss along an isoFLOP line has one minimum for every
/// form here).
pub fn numeric_n_opt(form: crate::forms::Form, p: &[f64], flops: f64) -> f64 {
    let f = |u: f64| form.predict(p, u.exp(), flops / (6.0 * u.exp()));
    let (lo, hi) = (1e2_f64.ln(), (flops / 6.0 / 1e2).ln());
    if hi.is_nan() || hi <= lo {
        return f64::NAN;
    }
    let steps = 200;
    let at = |k: usize| lo + (hi - lo) * k as f64 / steps as f64;
    let best = (0..=steps).filter(|&k| f(at(k)).is_finite()).min_by(|&i, &j| f(at(i)).total_cmp(&f(at(j))));
    let Some(k) = best else { return f64::NAN };
    let (mut a, mut b) = (at(k.saturating_sub(1)), at((k + 1).min(steps)));
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let (c, d) = (b - g * (b - a), a + g * (b - a));
        if f(c) < f(d) {
            b = d;
        } else {
            a = c;
        }
    }
    (0.5 * (a + b)).exp()
}

/// The allocation of a form without a closed form (Kaplan's), found numerically at each budget;
/// a and b are the slopes of ln N_opt and ln D_opt against ln C across the budgets, and G is left
/// undefined (NaN).
pub fn numeric(form: crate::forms::Form, p: &[f64], boot: &[Vec<f64>], budgets: &[f64], confidence: f64) -> Allocation {
    let plan_of = |q: &[f64], c: f64| {
        let n_opt = numeric_n_opt(form, q, c);
        let d_opt = c / (6.0 * n_opt);
        Plan { n_opt, d_opt, tokens_per_param: d_opt / n_opt, loss: form.predict(q, n_opt, d_opt) }
    };
    let slope = |q: &[f64]| {
        let xs: Vec<f64> = budgets.iter().map(|c| c.ln()).collect();
        let ys: Vec<f64> = budgets.iter().map(|&c| plan_of(q, c).n_opt.ln()).collect();
        crate::isoflop::line(&xs, &ys).map_or(f64::NAN, |l| l.1)
    };
    let a = slope(p);
    let sa: Vec<f64> = boot.iter().map(|q| slope(q)).collect();
    let plans = budgets
        .iter()
        .map(|&c| budget_plan(c, plan_of(p, c), &boot.iter().map(|q| plan_of(q, c)).collect::<Vec<Plan>>(), confidence))
        .collect();
    Allocation {
        a: estimate(a, &sa, confidence),
        b: estimate(1.0 - a, &sa.iter().map(|x| 1.0 - x).collect::<Vec<f64>>(), confidence),
        g: crate::schema::Estimate { value: f64::NAN, lo: None, hi: None },
        budgets: plans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinchilla_allocation_exponent() {
        let law = Law { e: 1.69337, a: 406.401, b: 410.723, alpha: 0.33917, beta: 0.28491 };
        let x = allocation(&law);
        assert!((x.a - 0.46).abs() <= 0.005, "a = {}", x.a);
        assert!((x.a + x.b - 1.0).abs() < 1e-12);
    }

    #[test]
    fn plan_spends_the_budget_and_is_optimal() {
        let law = Law { e: 1.69, a: 406.4, b: 410.7, alpha: 0.34, beta: 0.28 };
        let c = 1e21;
        let p = plan(&law, c);
        assert!((6.0 * p.n_opt * p.d_opt / c - 1.0).abs() < 1e-9);
        // Moving along the iso-FLOP curve in either direction must not lower the loss.
        for f in [0.9, 1.1] {
            assert!(law.predict(p.n_opt * f, p.d_opt / f) > p.loss);
        }
    }

    /// The numeric search finds Chinchilla's closed-form optimum.
    #[test]
    fn numeric_optimum_matches_the_closed_form() {
        let law = Law { e: 1.69, a: 406.4, b: 410.7, alpha: 0.34, beta: 0.28 };
        let p = [law.e, law.a, law.b, law.alpha, law.beta];
        for c in [1e18, 1e21, 1e24] {
            let n = numeric_n_opt(crate::forms::Form::Chinchilla, &p, c);
            assert!((n / plan(&law, c).n_opt - 1.0).abs() < 1e-4, "{n} vs {}", plan(&law, c).n_opt);
        }
    }
}
