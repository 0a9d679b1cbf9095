//! The decoder-only transformer: pre-norm RMSNorm, rotary positions, causal multi-head
//! attention, SwiGLU MLP (or a routed mixture of experts), untied output head.
//!
//! Activations stay 2-D (`[batch·time, d_model]`) outside attention so every projection is one
//! plain matrix multiply; attention, norms, SwiGLU, rotary and the loss are the backend's fused
//! [`Kernels`].

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::embedding;
use burn::tensor::{FloatDType, Int, Tensor};
use codescale_core::{ModelConfig, Precision, TrialConfig};

use crate::init::Init;
use crate::kernels::{rotary_tables, Kernels};
use crate::moe::{MoeMlp, RouterStats};

/// A weight `[d_in, d_out]` without bias.
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    /// Autocast: multiply in bf16, keep the weight and the result in f32.
    pub(crate) bf16: bool,
}

impl<B: Backend> Linear<B> {
    pub fn new(init: &mut Init<'_, B>, d_in: usize, d_out: usize, std: f64) -> Self {
        Linear { weight: init.normal([d_in, d_out], std), bf16: init.bf16 }
    }
}

impl<B: Kernels> Linear<B> {
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        if self.bf16 {
            x.cast(FloatDType::BF16).matmul(self.weight.val().cast(FloatDType::BF16)).cast(FloatDType::F32)
        } else {
            B::project(x, self.weight.val())
        }
    }
}

#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
}

impl<B: Backend> RmsNorm<B> {
    pub fn new(init: &mut Init<'_, B>, d: usize) -> Self {
        RmsNorm { gamma: init.ones(d) }
    }
}

impl<B: Kernels> RmsNorm<B> {
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        B::rms_norm(x, self.gamma.val())
    }
}

/// Rotary tables (rotate-half form), precomputed once for the trial's sequence length.
#[derive(Module, Debug)]
pub struct Rotary<B: Backend> {
    /// `[seq_len, head_dim / 2]`.
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
}

impl<B: Backend> Rotary<B> {
    pub fn new(seq_len: usize, head_dim: usize, device: &B::Device) -> Self {
        let (cos, sin) = rotary_tables(seq_len, head_dim);
        let table = |v: Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), device).reshape([seq_len, head_dim / 2]);
        Rotary { cos: table(cos), sin: table(sin) }
    }
}

impl<B: Kernels> Rotary<B> {
    /// `x`: `[batch, time, heads, head_dim]`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, t, _, hd] = x.dims();
        B::rotary(x, self.cos.clone().slice([0..t, 0..hd / 2]), self.sin.clone().slice([0..t, 0..hd / 2]))
    }
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    q: Linear<B>,
    k: Linear<B>,
    v: Linear<B>,
    out: Linear<B>,
    n_heads: usize,
}

impl<B: Kernels> Attention<B> {
    fn forward(&self, x: Tensor<B, 2>, rotary: &Rotary<B>, batch: usize, time: usize) -> Tensor<B, 2> {
        let d = x.dims()[1];
        // q, k and v stay in the projections' own layout, [batch, time, heads, head_dim]: the
        // fused attention reads heads with strides, so nothing is transposed or copied.
        let heads = |t: Tensor<B, 2>| t.reshape([batch, time, self.n_heads, d / self.n_heads]);
        let q = rotary.apply(heads(self.q.forward(x.clone())));
        let k = rotary.apply(heads(self.k.forward(x.clone())));
        let v = heads(self.v.forward(x));
        self.out.forward(B::causal_attention(q, k, v).reshape([batch * time, d]))
    }
}

/// SwiGLU: (silu(x·W_gate) ⊙ x·W_up)·W_down. Gate and up stay two projections: slicing one
/// fused output would leave strided halves that every elementwise op (and its backward) then
/// walks slowly.
#[derive(Module, Debug)]
pub struct SwiGlu<B: Backend> {
    gate: Linear<B>,
    up: Linear<B>,
    down: Linear<B>,
}

impl<B: Backend> SwiGlu<B> {
    pub fn new(init: &mut Init<'_, B>, d: usize, hidden: usize, out_std: f64) -> Self {
        let std = init.std;
        SwiGlu {
            gate: Linear::new(init, d, hidden, std),
            up: Linear::new(init, d, hidden, std),
            down: Linear::new(init, hidden, d, out_std),
        }
    }
}

impl<B: Backend> SwiGlu<B> {
    /// The gate, up and down weights.
    pub fn weights(&self) -> [Tensor<B, 2>; 3] {
        [self.gate.weight.val(), self.up.weight.val(), self.down.weight.val()]
    }
}

impl<B: Kernels> SwiGlu<B> {
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.down.forward(B::swiglu(self.gate.forward(x.clone()), self.up.forward(x)))
    }
}

#[derive(Module, Debug)]
pub enum Mlp<B: Backend> {
    Dense(SwiGlu<B>),
    Moe(MoeMlp<B>),
}

#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    norm_attn: RmsNorm<B>,
    attn: Attention<B>,
    norm_mlp: RmsNorm<B>,
    mlp: Mlp<B>,
}

#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    embed: Param<Tensor<B, 2>>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    head: Linear<B>,
    rotary: Rotary<B>,
}

/// What one forward pass returns besides logits: the MoE auxiliary losses (zero for dense
/// models) and routing statistics.
pub struct Aux<B: Backend> {
    pub loss: Option<Tensor<B, 1>>,
    pub router: Vec<RouterStats<B>>,
}

impl<B: Backend> Aux<B> {
    /// The fraction of token-slots dropped over capacity, over all MoE layers (each routes the
    /// same number of slots); `None` when no layer has a capacity.
    pub fn dropped(&self) -> Option<Tensor<B, 1>> {
        let layers: Vec<Tensor<B, 1>> = self.router.iter().filter_map(|s| s.dropped.clone()).collect();
        let n = layers.len();
        layers.into_iter().reduce(|a, b| a + b).map(|sum| sum.div_scalar(n as f64))
    }
}

impl<B: Backend> Transformer<B> {
    /// The trial's model: its architecture, drawn from its seed, multiplying in its precision.
    pub fn for_trial(c: &TrialConfig, device: &B::Device) -> Self {
        let mut init = Init::new(c.runtime.seed, device);
        init.std = c.model.init_std;
        init.bf16 = c.runtime.precision == Precision::Bf16;
        Transformer::new(&c.model_config(), &mut init)
    }

    /// GPT-2/LLaMA initialisation: N(0, init.std) everywhere (0.02 unless the trial's
    /// `init_std` says otherwise), residual output projections scaled by 1/√(2·n_layers), norms
    /// at 1. Drawn on the host from `init`'s seed, so every backend starts from the same weights.
    pub fn new(c: &ModelConfig, init: &mut Init<'_, B>) -> Self {
        let (d, v) = (c.d_model, c.vocab_size);
        let std = init.std;
        let out_std = std / (2.0 * c.n_layers as f64).sqrt();
        let embed = init.normal([v, d], std);
        let blocks = (0..c.n_layers)
            .map(|layer| {
                let mlp = match c.moe_at(layer) {
                    Some(moe) => Mlp::Moe(MoeMlp::new(init, d, moe, out_std)),
                    None => Mlp::Dense(SwiGlu::new(init, d, c.d_ff, out_std)),
                };
                Block {
                    norm_attn: RmsNorm::new(init, d),
                    attn: Attention {
                        q: Linear::new(init, d, d, std),
                        k: Linear::new(init, d, d, std),
                        v: Linear::new(init, d, d, std),
                        out: Linear::new(init, d, d, out_std),
                        n_heads: c.n_heads,
                    },
                    norm_mlp: RmsNorm::new(init, d),
                    mlp,
                }
            })
            .collect();
        let norm = RmsNorm::new(init, d);
        let head = Linear::new(init, d, v, std);
        Transformer { embed, blocks, norm, head, rotary: Rotary::new(c.seq_len, c.head_dim(), init.device()) }
    }
}

impl<B: Kernels> Transformer<B> {
    /// `tokens`: `[batch, time]` → logits `[batch·time, vocab]`.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> (Tensor<B, 2>, Aux<B>) {
        let [batch, time] = tokens.dims();
        let d = self.embed.dims()[1];
        let mut x = embedding(self.embed.val(), tokens).reshape([batch * time, d]);
        let mut aux = Aux { loss: None, router: Vec::new() };
        for block in &self.blocks {
            x = x.clone() + block.attn.forward(block.norm_attn.forward(x.clone()), &self.rotary, batch, time);
            let h = block.norm_mlp.forward(x.clone());
            let y = match &block.mlp {
                Mlp::Dense(mlp) => mlp.forward(h),
                Mlp::Moe(moe) => {
                    let (y, loss, stats) = moe.forward(h);
                    aux.loss = Some(match aux.loss.take() {
                        Some(l) => l + loss,
                        None => loss,
                    });
                    aux.router.push(stats);
                    y
                }
            };
            x = x + y;
        }
        (self.head.forward(self.norm.forward(x)), aux)
    }

    /// Mean next-token cross-entropy in nats; `targets`: `[batch, time]`. Over the positions
    /// `scored` only (flat indices into batch × time: a fine-tuning pair's completion) when
    /// given, over every position otherwise.
    pub fn loss(
        &self,
        tokens: Tensor<B, 2, Int>,
        targets: Tensor<B, 2, Int>,
        scored: Option<Tensor<B, 1, Int>>,
    ) -> (Tensor<B, 1>, Aux<B>) {
        let [batch, time] = targets.dims();
        let (logits, aux) = self.forward(tokens);
        let targets = targets.reshape([batch * time]);
        let (logits, targets) = match scored {
            Some(at) => (logits.select(0, at.clone()), targets.select(0, at)),
            None => (logits, targets),
        };
        (B::cross_entropy(logits, targets), aux)
    }
}
