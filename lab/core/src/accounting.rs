//! Parameter and FLOP accounting, recorded for every trial.
//!
//! `n_params` follows Kaplan et al.: no token embedding and no output head. Compute per
//! training token is 6·N plus Kaplan's attention term 6·n_layers·seq_len·d_model; the
//! `_with_head` variants add the output head's 6·d_model·vocab (the Porian et al. convention).

use crate::config::{Arch, TrialConfig};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Non-embedding parameters (all experts).
    pub n_params: f64,
    /// Everything: embedding, blocks, final norm, output head.
    pub n_params_total: f64,
    /// Non-embedding parameters one token touches (= n_params for dense models).
    pub n_params_active: f64,
    pub embedding: f64,
    pub head: f64,
}

impl Params {
    pub fn of(c: &TrialConfig) -> Params {
        let d = c.d_model as f64;
        let v = c.vocab_size() as f64;
        let attention = 4.0 * d * d;
        let norms = 2.0 * d;
        let dense_mlp = 3.0 * d * c.d_ff as f64;
        let expert = 3.0 * d * c.d_expert as f64;
        let (mut total, mut active) = (d, d); // final norm
        for layer in 0..c.n_layers {
            let (mlp_total, mlp_active) = if c.arch == Arch::Moe && layer % c.moe_every == 0 {
                let router = d * c.n_experts as f64;
                let shared = if c.shared_expert { expert } else { 0.0 };
                (router + shared + c.n_experts as f64 * expert, router + shared + c.top_k as f64 * expert)
            } else {
                (dense_mlp, dense_mlp)
            };
            total += attention + norms + mlp_total;
            active += attention + norms + mlp_active;
        }
        let embedding = v * d;
        let head = d * v;
        Params { n_params: total, n_params_total: total + embedding + head, n_params_active: active, embedding, head }
    }

    /// Training FLOPs per token from active parameters, with Kaplan's attention term.
    pub fn flops_per_token(&self, c: &TrialConfig) -> f64 {
        6.0 * self.n_params_active + 6.0 * (c.n_layers * c.seq_len * c.d_model) as f64
    }
    pub fn flops_per_token_with_head(&self, c: &TrialConfig) -> f64 {
        self.flops_per_token(c) + 6.0 * self.head
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Arch, TrialSpec};

    fn config(arch: Arch) -> crate::config::TrialConfig {
        let spec = TrialSpec {
            language: Some("python".into()),
            model: Some("d64-l2".into()),
            arch: Some(arch),
            n_experts: (arch == Arch::Moe).then_some(4),
            top_k: (arch == Arch::Moe).then_some(1),
            ..Default::default()
        };
        spec.resolve().unwrap()
    }

    #[test]
    fn dense_matches_closed_form() {
        let c = config(Arch::Dense);
        let p = c.params();
        let (d, f, l, v) = (64.0, 176.0, 2.0, 257.0);
        assert_eq!(p.n_params, l * (4.0 * d * d + 3.0 * d * f + 2.0 * d) + d);
        assert_eq!(p.n_params_total, p.n_params + 2.0 * v * d);
        assert_eq!(p.n_params_active, p.n_params);
        assert_eq!(p.flops_per_token(&c), 6.0 * p.n_params + 6.0 * l * 128.0 * d);
    }

    #[test]
    fn moe_active_is_less_than_total() {
        let c = config(Arch::Moe);
        let p = c.params();
        let (d, f) = (64.0, 176.0);
        assert_eq!(p.n_params - p.n_params_active, 2.0 * 3.0 * 3.0 * d * f);
        assert!(p.n_params_active < p.n_params);
    }
}
