//! The model's fused operations, as a burn backend extension.
//!
//! [`Kernels`] names the operations where burn's generic ops cost the most on the CPU
//! (projections, attention, RMSNorm, SwiGLU, rotary, cross-entropy, routed experts). Its
//! default methods compose burn's tensor ops (what CUDA uses, where burn fuses kernels
//! itself); Flex and `Autodiff<Flex>` override them with the one-pass kernels of [`cpu`],
//! [`moe`] and [`gemm`] and hand-written backward passes.

pub mod cpu;
mod flex;
pub mod gemm;
pub mod moe;

use burn::tensor::activation::{log_softmax, silu};
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Int, Tensor};

pub const RMS_EPS: f32 = 1e-6;

pub trait Kernels: Backend {
    /// `x·w` for `x: [n, d_in]` and a weight `w: [d_in, d_out]`.
    fn project(x: Tensor<Self, 2>, w: Tensor<Self, 2>) -> Tensor<Self, 2> {
        x.matmul(w)
    }
    /// Causal softmax attention; `q`, `k`, `v` and the result are `[batch, time, heads, head_dim]`.
    fn causal_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>) -> Tensor<Self, 4> {
        composed::causal_attention(q, k, v)
    }
    /// `x / rms(x) · γ` per row of `x: [n, d]`.
    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>) -> Tensor<Self, 2> {
        composed::rms_norm(x, gamma)
    }
    /// `silu(gate) · up`.
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        composed::swiglu(gate, up)
    }
    /// Rotate-half rotary embedding of `x: [batch, time, heads, head_dim]` with `cos`, `sin`:
    /// `[time, head_dim / 2]`.
    fn rotary(x: Tensor<Self, 4>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 4> {
        composed::rotary(x, cos, sin)
    }
    /// Mean next-token cross-entropy in nats of `logits: [n, vocab]` against `targets: [n]`.
    fn cross_entropy(logits: Tensor<Self, 2>, targets: Tensor<Self, 1, Int>) -> Tensor<Self, 1> {
        composed::cross_entropy(logits, targets)
    }
    /// Cross-entropy of each row, `[n]` (for evaluation, which needs the spread of the losses
    /// as well as their mean; not differentiated).
    fn token_losses(logits: Tensor<Self, 2>, targets: Tensor<Self, 1, Int>) -> Tensor<Self, 1> {
        composed::token_losses(logits, targets)
    }
    /// Routed SwiGLU experts and their weighted combine: token `i` gets
    /// `Σ_j gates[i, j] · expert_{experts[i, j]}(x_i)` over its slots `j` (`x: [n, d]`, `gates`
    /// and `experts: [n, k]`). With a `capacity`, each expert takes at most that many slots,
    /// first choices before second choices, each in token order; the rest are dropped (they add
    /// nothing). `weights[e]` holds expert `e`'s gate `[d, h]`, up `[d, h]` and down `[h, d]`.
    fn moe_experts(
        x: Tensor<Self, 2>,
        gates: Tensor<Self, 2>,
        experts: Tensor<Self, 2, Int>,
        weights: &[ExpertWeights<Self>],
        capacity: Option<usize>,
    ) -> Routed<Self> {
        composed::moe_experts(x, gates, experts, weights.len(), capacity, |e, x| composed::swiglu_mlp(x, &weights[e]))
    }
}

/// One SwiGLU expert's weights: gate `[d, h]`, up `[d, h]`, down `[h, d]`.
pub type ExpertWeights<B> = [Tensor<B, 2>; 3];

/// What [`Kernels::moe_experts`] returns.
pub struct Routed<B: Backend> {
    /// The combined expert outputs, `[n, d]`.
    pub out: Tensor<B, 2>,
    /// Slots sent to each expert, before capacity, `[n_experts]` (no gradient).
    pub load: Tensor<B, 1>,
    /// Slots dropped over capacity, `[1]`.
    pub dropped: Tensor<B, 1>,
}

#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Cuda {}
#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Autodiff<burn::backend::Cuda> {}
#[cfg(feature = "wgpu")]
impl Kernels for burn::backend::Wgpu {}
#[cfg(feature = "wgpu")]
impl Kernels for burn::backend::Autodiff<burn::backend::Wgpu> {}

/// The operations in burn's own tensor ops, differentiable on any backend: the defaults, and
/// the reference the fused kernels are tested against.
pub mod composed {
    use super::*;

    pub fn causal_attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
        attention(q.swap_dims(1, 2), k.swap_dims(1, 2), v.swap_dims(1, 2), None, None, options).swap_dims(1, 2)
    }

    pub fn rms_norm<B: Backend>(x: Tensor<B, 2>, gamma: Tensor<B, 1>) -> Tensor<B, 2> {
        let inv_rms = (x.clone().square().mean_dim(1) + RMS_EPS as f64).sqrt().recip();
        x * inv_rms * gamma.unsqueeze()
    }

    pub fn swiglu<B: Backend>(gate: Tensor<B, 2>, up: Tensor<B, 2>) -> Tensor<B, 2> {
        silu(gate) * up
    }

    pub fn rotary<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Tensor<B, 4> {
        let [_, t, _, hd] = x.dims();
        let half = hd / 2;
        let table = |c: Tensor<B, 2>| Tensor::cat(vec![c.clone(), c], 1).reshape([1, t, 1, hd]);
        let rotated = Tensor::cat(vec![x.clone().narrow(3, half, half).neg(), x.clone().narrow(3, 0, half)], 3);
        x * table(cos) + rotated * table(sin)
    }

    pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        log_softmax(logits, 1).gather(1, targets.unsqueeze_dim(1)).mean().neg()
    }

    pub fn token_losses<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let n = targets.dims()[0];
        log_softmax(logits, 1).gather(1, targets.unsqueeze_dim(1)).reshape([n]).neg()
    }

    /// `(silu(x·W_gate) ⊙ x·W_up)·W_down`.
    pub fn swiglu_mlp<B: Backend>(x: Tensor<B, 2>, [gate, up, down]: &ExpertWeights<B>) -> Tensor<B, 2> {
        swiglu(x.clone().matmul(gate.clone()), x.matmul(up.clone())).matmul(down.clone())
    }

    /// [`Kernels::moe_experts`] with each expert run on every token and weighted by a mask:
    /// `n_experts / k` times the expert compute, but every shape is static and the routing
    /// never leaves the device (no index list is read back). `expert(e, x)` runs expert `e`.
    /// Every expert gets a gradient (zero when no token reached it).
    pub fn moe_experts<B: Backend>(
        x: Tensor<B, 2>,
        gates: Tensor<B, 2>,
        experts: Tensor<B, 2, Int>,
        n_experts: usize,
        capacity: Option<usize>,
        expert: impl Fn(usize, Tensor<B, 2>) -> Tensor<B, 2>,
    ) -> Routed<B> {
        let [n, k] = experts.dims();
        let mut out = x.zeros_like();
        let mut load = Vec::with_capacity(n_experts);
        let mut kept = Vec::with_capacity(n_experts);
        for e in 0..n_experts {
            let routed = experts.clone().equal_elem(e as i64);
            let fits = match capacity {
                Some(c) => within_capacity(routed.clone(), c),
                None => routed.clone(),
            };
            load.push(routed.int().sum().float());
            kept.push(fits.clone().int().sum().float());
            let weight = (gates.clone() * fits.float()).sum_dim(1);
            out = out + expert(e, x.clone()) * weight;
        }
        let dropped = Tensor::cat(kept, 0).sum().neg().add_scalar((n * k) as f64);
        Routed { out, load: Tensor::cat(load, 0), dropped }
    }

    /// The slots of one expert (`routed: [n, k]`) that fit in its capacity: first choices
    /// before second choices, each in token order.
    fn within_capacity<B: Backend>(routed: Tensor<B, 2, Bool>, capacity: usize) -> Tensor<B, 2, Bool> {
        let [n, k] = routed.dims();
        let rank_major = routed.int().swap_dims(0, 1).reshape([n * k]);
        // 1-based position of each slot in the expert's queue.
        let position = rank_major.clone().cumsum(0);
        let fits = position.lower_equal_elem(capacity as i64).int() * rank_major;
        fits.reshape([k, n]).swap_dims(0, 1).equal_elem(1)
    }
}

/// Rotary tables `[seq_len, head_dim / 2]` (cos, sin) for positions `0..seq_len`.
pub fn rotary_tables(seq_len: usize, head_dim: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let angles =
        (0..seq_len).flat_map(|pos| (0..half).map(move |i| pos as f64 * 10_000f64.powf(-(i as f64) / half as f64)));
    angles.map(|a| (a.cos() as f32, a.sin() as f32)).unzip()
}
