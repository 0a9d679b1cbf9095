//! Parameter and FLOP accounting, recorded for every trial.
//!
//! `n_params` follows Kaplan et al.: no token embedding and no output head. Compute per
//! training token is 6·N plus Kaplan's attention term 6·n_layers·seq_len·d_model; the
//! `_with_head` variants add the output head's 6·d_model·vocab (the Porian et al. convention).

use crate::architecture::ModelConfig;

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
    /// Kaplan's 6·n_layers·seq_len·d_model: training FLOPs per token of the attention scores
    /// and their weighted sum, which no parameter accounts for.
    pub attention_flops_per_token: f64,
}

impl Params {
    pub fn of(m: &ModelConfig) -> Params {
        let d = m.d_model as f64;
        let v = m.vocab_size as f64;
        let attention = 4.0 * d * d;
        let norms = 2.0 * d;
        let dense_mlp = 3.0 * d * m.d_ff as f64;
        let (mut total, mut active) = (d, d); // final norm
        for layer in 0..m.n_layers {
            let (mlp_total, mlp_active) = match m.moe_at(layer) {
                Some(moe) => {
                    let expert = 3.0 * d * moe.d_expert as f64;
                    let router = d * moe.n_experts as f64;
                    let shared = if moe.shared_expert { expert } else { 0.0 };
                    (router + shared + moe.n_experts as f64 * expert, router + shared + moe.top_k as f64 * expert)
                }
                None => (dense_mlp, dense_mlp),
            };
            total += attention + norms + mlp_total;
            active += attention + norms + mlp_active;
        }
        let embedding = v * d;
        let head = d * v;
        Params {
            n_params: total,
            n_params_total: total + embedding + head,
            n_params_active: active,
            embedding,
            head,
            attention_flops_per_token: 6.0 * (m.n_layers * m.seq_len * m.d_model) as f64,
        }
    }

    /// Training FLOPs per token from active parameters, with Kaplan's attention term.
    pub fn flops_per_token(&self) -> f64 {
        6.0 * self.n_params_active + self.attention_flops_per_token
    }
    pub fn flops_per_token_with_head(&self) -> f64 {
        self.flops_per_token() + 6.0 * self.head
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Arch, DataSpec, ModelSpec, TrialSpec};

    fn config(arch: Arch) -> crate::config::TrialConfig {
        let spec = TrialSpec {
            data: DataSpec { language: Some("python".into()), ..Default::default() },
            model: ModelSpec {
                name: Some("d64-l2".into()),
                arch: Some(arch),
                n_experts: (arch == Arch::Moe).then_some(4),
                top_k: (arch == Arch::Moe).then_some(1),
                ..Default::default()
            },
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
        assert_eq!(p.flops_per_token(), 6.0 * p.n_params + 6.0 * l * 128.0 * d);
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
