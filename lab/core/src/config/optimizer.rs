//! The optimizer section: AdamW's rate, moments and decay, gradient clipping, and the batch
//! each step averages over.

use serde::{Deserialize, Serialize};

use super::{bad, below_one, limits, non_negative, positive, within, ConfigError};

/// A learning rate: a number, or a rule of the model size and budget, so that every size of a
/// ladder trains near its best rate (`lr = { rule = "power", coef = 3e-3, n_exponent = -0.25 }`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Lr {
    Value(f64),
    Rule(LrRule),
}

impl From<f64> for Lr {
    fn from(v: f64) -> Lr {
        Lr::Value(v)
    }
}

/// η = coef · (N / 10⁶)^n_exponent · (D / 10⁹)^d_exponent, with N the non-embedding parameters
/// and D the training tokens. The fitter prints the rule it finds for an LR sweep in this form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrRule {
    pub rule: RuleKind,
    pub coef: f64,
    pub n_exponent: f64,
    #[serde(default)]
    pub d_exponent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Power,
}

/// The sizes the rule's constants refer to.
pub const LR_RULE_N_REF: f64 = 1e6;
pub const LR_RULE_D_REF: f64 = 1e9;

impl LrRule {
    pub fn at(&self, n: f64, d: f64) -> f64 {
        self.coef * (n / LR_RULE_N_REF).powf(self.n_exponent) * (d / LR_RULE_D_REF).powf(self.d_exponent)
    }
}

spec_section! {
    /// The optimizer keys a file may set.
    OptimizerSpec {
        /// A rate, or a rule of N and D (resolved to the rate for this trial's size and budget).
        lr: Lr,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        grad_clip: f64,
        /// Global batch in sequences.
        batch_size: usize,
        /// Sequences per forward pass; `batch_size / micro_batch` accumulation steps.
        micro_batch: usize,
    }
}

/// How a trial steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSection {
    /// The peak rate (a rule resolved for the trial's N and D).
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub batch_size: usize,
    pub micro_batch: usize,
}

impl OptimizerSpec {
    /// Resolves every key but a rule's rate, which needs the model's size and the budget:
    /// `lr` holds the rule's coefficient until [`OptimizerSpec::rate_for`] sets it.
    pub fn resolve(&self) -> Result<OptimizerSection, ConfigError> {
        let batch_size = self.batch_size.unwrap_or(32);
        within("batch_size", batch_size, limits::MAX_BATCH)?;
        let micro_batch = self.micro_batch.unwrap_or(batch_size);
        positive("micro_batch", micro_batch)?;
        if !batch_size.is_multiple_of(micro_batch) {
            return Err(bad("micro_batch", format!("{micro_batch} does not divide batch_size = {batch_size}")));
        }
        let lr = match self.lr.unwrap_or(Lr::Value(3e-3)) {
            Lr::Value(v) => v,
            Lr::Rule(r) => {
                if ![r.coef, r.n_exponent, r.d_exponent].iter().all(|x| x.is_finite()) || r.coef <= 0.0 {
                    return Err(bad("lr", "the rule's `coef` must be a finite number > 0 and its exponents finite"));
                }
                r.coef
            }
        };
        let beta1 = self.beta1.unwrap_or(0.9);
        let beta2 = self.beta2.unwrap_or(0.95);
        below_one("beta1", beta1)?;
        below_one("beta2", beta2)?;
        let eps = self.eps.unwrap_or(1e-8);
        if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
            return Err(bad("eps", format!("{eps} must lie in (0, 1)")));
        }
        let weight_decay = self.weight_decay.unwrap_or(0.1);
        non_negative("weight_decay", weight_decay)?;
        let grad_clip = self.grad_clip.unwrap_or(1.0);
        non_negative("grad_clip", grad_clip)?;
        Ok(OptimizerSection { lr, beta1, beta2, eps, weight_decay, grad_clip, batch_size, micro_batch })
    }

    /// The peak rate for `n` non-embedding parameters trained on `d` tokens, checked.
    pub fn rate_for(&self, section: &OptimizerSection, n: f64, d: f64) -> Result<f64, ConfigError> {
        let lr = match self.lr {
            Some(Lr::Rule(rule)) => rule.at(n, d),
            _ => section.lr,
        };
        if !(lr.is_finite() && lr > 0.0 && lr <= limits::MAX_LR) {
            return Err(bad("lr", format!("{lr} is not a learning rate in (0, {}]", limits::MAX_LR)));
        }
        Ok(lr)
    }
}

impl OptimizerSection {
    pub fn accumulation_steps(&self) -> usize {
        self.batch_size / self.micro_batch
    }
}
