//! The decoder-only transformer: pre-norm RMSNorm, rotary positions, causal multi-head
//! attention, SwiGLU MLP (or a routed mixture of experts), untied output head.
//!
//! Activations stay 2-D (`[batch·time, d_model]`) outside attention so every projection is one
//! plain matrix multiply.

use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, silu};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor};
use codescale_core::{Arch, TrialConfig};

use crate::init::Init;
use crate::moe::{MoeMlp, RouterStats};

/// A weight `[d_in, d_out]` without bias.
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
}

impl<B: Backend> Linear<B> {
    pub fn new(init: &mut Init<'_, B>, d_in: usize, d_out: usize, std: f64) -> Self {
        Linear { weight: init.normal([d_in, d_out], std) }
    }
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight.val())
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
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let inv_rms = (x.clone().square().mean_dim(1) + 1e-6).sqrt().recip();
        x * inv_rms * self.gamma.val().unsqueeze()
    }
}

/// Rotary embeddings in the "rotate half" form, with cos/sin tables precomputed once.
#[derive(Module, Debug)]
pub struct Rotary<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
}

impl<B: Backend> Rotary<B> {
    pub fn new(seq_len: usize, head_dim: usize, device: &B::Device) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(seq_len * head_dim);
        let mut sin = Vec::with_capacity(seq_len * head_dim);
        for pos in 0..seq_len {
            for i in 0..head_dim {
                let freq = 10_000f64.powf(-((i % half) as f64) / half as f64);
                let angle = pos as f64 * freq;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let table = |v: Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), device).reshape([1, 1, seq_len, head_dim]);
        Rotary { cos: table(cos), sin: table(sin) }
    }

    /// `x`: `[batch, heads, time, head_dim]`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, t, hd] = x.dims();
        let half = hd / 2;
        let rotated = Tensor::cat(vec![x.clone().narrow(3, half, half).neg(), x.clone().narrow(3, 0, half)], 3);
        let cos = self.cos.clone().narrow(2, 0, t);
        let sin = self.sin.clone().narrow(2, 0, t);
        x * cos + rotated * sin
    }
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    qkv: Linear<B>,
    out: Linear<B>,
    n_heads: usize,
}

impl<B: Backend> Attention<B> {
    fn forward(&self, x: Tensor<B, 2>, rotary: &Rotary<B>, batch: usize, time: usize) -> Tensor<B, 2> {
        let d = x.dims()[1];
        let (h, hd) = (self.n_heads, d / self.n_heads);
        let qkv = self.qkv.forward(x).reshape([batch, time, 3 * h, hd]).swap_dims(1, 2);
        let q = rotary.apply(qkv.clone().narrow(1, 0, h));
        let k = rotary.apply(qkv.clone().narrow(1, h, h));
        let v = qkv.narrow(1, 2 * h, h);
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
        let y = attention(q, k, v, None, None, options);
        self.out.forward(y.swap_dims(1, 2).reshape([batch * time, d]))
    }
}

/// SwiGLU: (silu(x·W_gate) ⊙ x·W_up)·W_down, gate and up fused into one projection.
#[derive(Module, Debug)]
pub struct SwiGlu<B: Backend> {
    gate_up: Linear<B>,
    down: Linear<B>,
    hidden: usize,
}

impl<B: Backend> SwiGlu<B> {
    pub fn new(init: &mut Init<'_, B>, d: usize, hidden: usize, out_std: f64) -> Self {
        let std = init.std;
        SwiGlu { gate_up: Linear::new(init, d, 2 * hidden, std), down: Linear::new(init, hidden, d, out_std), hidden }
    }
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let gu = self.gate_up.forward(x);
        let gate = gu.clone().narrow(1, 0, self.hidden);
        let up = gu.narrow(1, self.hidden, self.hidden);
        self.down.forward(silu(gate) * up)
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

impl<B: Backend> Transformer<B> {
    /// GPT-2/LLaMA initialisation: N(0, 0.02) everywhere, residual output projections scaled
    /// by 1/√(2·n_layers), norms at 1. Drawn on the host from the trial seed, so every backend
    /// starts from the same weights.
    pub fn new(c: &TrialConfig, device: &B::Device) -> Self {
        let mut init = Init::new(c.seed, device);
        let (d, v) = (c.d_model, c.vocab_size());
        let std = init.std;
        let out_std = std / (2.0 * c.n_layers as f64).sqrt();
        let embed = init.normal([v, d], std);
        let blocks = (0..c.n_layers)
            .map(|layer| {
                let mlp = if c.arch == Arch::Moe && layer % c.moe_every == 0 {
                    Mlp::Moe(MoeMlp::new(&mut init, c, out_std))
                } else {
                    Mlp::Dense(SwiGlu::new(&mut init, d, c.d_ff, out_std))
                };
                Block {
                    norm_attn: RmsNorm::new(&mut init, d),
                    attn: Attention { qkv: Linear::new(&mut init, d, 3 * d, std), out: Linear::new(&mut init, d, d, out_std), n_heads: c.n_heads },
                    norm_mlp: RmsNorm::new(&mut init, d),
                    mlp,
                }
            })
            .collect();
        let norm = RmsNorm::new(&mut init, d);
        let head = Linear::new(&mut init, d, v, std);
        Transformer { embed, blocks, norm, head, rotary: Rotary::new(c.seq_len, d / c.n_heads, device) }
    }

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

    /// Mean next-token cross-entropy in nats; `targets`: `[batch, time]`.
    pub fn loss(&self, tokens: Tensor<B, 2, Int>, targets: Tensor<B, 2, Int>) -> (Tensor<B, 1>, Aux<B>) {
        let [batch, time] = targets.dims();
        let (logits, aux) = self.forward(tokens);
        (cross_entropy(logits, targets.reshape([batch * time, 1])), aux)
    }
}

pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    log_softmax(logits, 1).gather(1, targets).mean().neg()
}
