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
    Exponents {
        a: law.beta / s,
        b: law.alpha / s,
        g: (law.alpha * law.a / (law.beta * law.b)).powf(1.0 / s),
    }
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
    Plan {
        n_opt,
        d_opt,
        tokens_per_param: d_opt / n_opt,
        loss: law.predict(n_opt, d_opt),
    }
}

/// 1e15 … 1e24 FLOPs by decade.
pub fn default_budgets() -> Vec<f64> {
    (15..=24).map(|k| 10f64.powi(k)).collect()
}

/// The allocation of `law` with percentile intervals from the bootstrap laws.
pub fn allocation_with_intervals(law: &Law, boot: &[Law], budgets: &[f64], confidence: f64) -> Allocation {
    let x = allocation(law);
    let xs: Vec<Exponents> = boot.iter().map(allocation).collect();
    let col = |f: fn(&Exponents) -> f64| xs.iter().map(f).collect::<Vec<f64>>();
    let budgets = budgets
        .iter()
        .map(|&c| {
            let p = plan(law, c);
            let ps: Vec<Plan> = boot.iter().map(|l| plan(l, c)).collect();
            let col = |f: fn(&Plan) -> f64| ps.iter().map(f).collect::<Vec<f64>>();
            BudgetPlan {
                flops: c,
                n_opt: estimate(p.n_opt, &col(|p| p.n_opt), confidence),
                d_opt: estimate(p.d_opt, &col(|p| p.d_opt), confidence),
                tokens_per_param: estimate(p.tokens_per_param, &col(|p| p.tokens_per_param), confidence),
                loss: estimate(p.loss, &col(|p| p.loss), confidence),
                extrapolated: false,
            }
        })
        .collect();
    Allocation {
        a: estimate(x.a, &col(|x| x.a), confidence),
        b: estimate(x.b, &col(|x| x.b), confidence),
        g: estimate(x.g, &col(|x| x.g), confidence),
        budgets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinchilla_allocation_exponent() {
        let law = Law {
            e: 1.69337,
            a: 406.401,
            b: 410.723,
            alpha: 0.33917,
            beta: 0.28491,
        };
        let x = allocation(&law);
        assert!((x.a - 0.46).abs() <= 0.005, "a = {}", x.a);
        assert!((x.a + x.b - 1.0).abs() < 1e-12);
    }

    #[test]
    fn plan_spends_the_budget_and_is_optimal() {
        let law = Law {
            e: 1.69,
            a: 406.4,
            b: 410.7,
            alpha: 0.34,
            beta: 0.28,
        };
        let c = 1e21;
        let p = plan(&law, c);
        assert!((6.0 * p.n_opt * p.d_opt / c - 1.0).abs() < 1e-9);
        // Moving along the iso-FLOP curve in either direction must not lower the loss.
        for f in [0.9, 1.1] {
            assert!(law.predict(p.n_opt * f, p.d_opt / f) > p.loss);
        }
    }
}
