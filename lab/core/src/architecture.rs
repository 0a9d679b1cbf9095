//! What a model is built from: its architecture alone, without the data, optimizer, schedule
//! or placement of the trial that trains it. The trainer builds its network from this and the
//! accounting counts the same network's parameters from it, so the two read one description.

use crate::config::{Arch, Gate, TrialConfig};

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Rows of the embedding and columns of the output head, end-of-document token included.
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// The dense SwiGLU hidden size (of every layer of a dense model, of the layers between
    /// routed ones otherwise).
    pub d_ff: usize,
    /// The longest sequence: the length of the rotary tables, and of the attention context in
    /// Kaplan's FLOP count.
    pub seq_len: usize,
    /// `None` for a dense model.
    pub moe: Option<MoeConfig>,
}

/// The routed MLP of a mixture-of-experts model.
#[derive(Debug, Clone, PartialEq)]
pub struct MoeConfig {
    pub n_experts: usize,
    /// Experts each token is sent to.
    pub top_k: usize,
    /// Each expert's SwiGLU hidden size.
    pub d_expert: usize,
    /// Layers 0, `every`, 2·`every`, … route; the others keep the dense MLP.
    pub every: usize,
    /// An always-on expert of `d_expert` beside the routed ones.
    pub shared_expert: bool,
    pub gate: Gate,
    /// Slots per expert as a multiple of an even share; `None` is dropless.
    pub capacity_factor: Option<f64>,
    /// The auxiliary losses are the layer's own output (each routed layer adds its terms to
    /// the loss), so their weights belong to the layer.
    pub aux_loss_coef: f64,
    pub z_loss_coef: f64,
}

impl ModelConfig {
    /// The routing of layer `layer` (0-based); `None` where the layer's MLP is dense.
    pub fn moe_at(&self, layer: usize) -> Option<&MoeConfig> {
        self.moe.as_ref().filter(|m| layer.is_multiple_of(m.every))
    }
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }
}

impl TrialConfig {
    /// The architecture this trial trains.
    pub fn model_config(&self) -> ModelConfig {
        let m = &self.model;
        let moe = (m.arch == Arch::Moe).then(|| MoeConfig {
            n_experts: m.n_experts,
            top_k: m.top_k,
            d_expert: m.d_expert,
            every: m.moe_every,
            shared_expert: m.shared_expert,
            gate: m.gate(),
            capacity_factor: m.capacity_factor,
            aux_loss_coef: m.aux_loss_coef,
            z_loss_coef: m.z_loss_coef,
        });
        ModelConfig {
            vocab_size: self.vocab_size(),
            d_model: m.d_model,
            n_layers: m.n_layers,
            n_heads: m.n_heads,
            d_ff: m.d_ff,
            seq_len: self.data.seq_len,
            moe,
        }
    }
}

impl TrialConfig {
    /// Why this trial cannot start from `base`'s final weights (`init_from`), if it cannot: the
    /// weights must have the same shapes and mean the same tokens. What is not a weight may
    /// differ (sequence length, since rotary positions are computed; routing's top-k, gate,
    /// capacity and auxiliary losses; the whole of data, optimizer and schedule).
    pub fn weights_mismatch(&self, base: &TrialConfig) -> Option<String> {
        if self.data.tokenizer != base.data.tokenizer || self.vocab_size() != base.vocab_size() {
            return Some(format!(
                "its tokenizer is `{}` ({} ids), this trial's `{}` ({} ids)",
                base.data.tokenizer,
                base.vocab_size(),
                self.data.tokenizer,
                self.vocab_size()
            ));
        }
        let shape = |c: &TrialConfig| {
            let m = &c.model;
            let moe = (m.arch == Arch::Moe).then_some((m.n_experts, m.d_expert, m.moe_every, m.shared_expert));
            (m.d_model, m.n_layers, m.n_heads, m.d_ff, moe)
        };
        let describe = |c: &TrialConfig| {
            let m = &c.model;
            let moe = match m.arch {
                Arch::Moe => format!(", {} experts of {} every {} layer(s)", m.n_experts, m.d_expert, m.moe_every),
                Arch::Dense => String::new(),
            };
            format!("{} {} ({} heads, d_ff {}{moe})", m.arch.as_str(), m.name, m.n_heads, m.d_ff)
        };
        (shape(self) != shape(base))
            .then(|| format!("its model is {}, this trial's {}", describe(base), describe(self)))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Arch, DataSpec, ModelSpec, TrialSpec};

    #[test]
    fn routed_layers_are_every_moe_every_th_from_the_first() {
        let spec = TrialSpec {
            data: DataSpec { language: Some("go".into()), ..Default::default() },
            model: ModelSpec {
                name: Some("d64-l5".into()),
                arch: Some(Arch::Moe),
                moe_every: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let m = spec.resolve().unwrap().model_config();
        let routed: Vec<usize> = (0..m.n_layers).filter(|&l| m.moe_at(l).is_some()).collect();
        assert_eq!(routed, [0, 2, 4]);
        let dense = TrialSpec { model: ModelSpec { arch: None, moe_every: None, ..spec.model }, ..spec }
            .resolve()
            .unwrap()
            .model_config();
        assert!(dense.moe.is_none() && (0..dense.n_layers).all(|l| dense.moe_at(l).is_none()));
    }
}
