//! Mixture-of-experts MLP: a linear router, top-k routing gated by the softmax over all
//! experts (`softmax`, Switch/GShard) or over the chosen ones (`softmax_topk`, Mixtral), SwiGLU
//! experts, an optional always-on shared expert, optional expert capacity, the Switch/GShard
//! load-balancing loss and the router z-loss.
//!
//! Routing never leaves the device: the top-k is taken by repeated argmax (burn's sort reads
//! the tensor back on GPU backends), and the experts run through [`Kernels::moe_experts`],
//! fused on Flex, masked dense compute elsewhere. Without a `capacity_factor` no token is
//! dropped.

use burn::module::Module;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor};
use codescale_core::{Gate, MoeConfig};

use crate::init::Init;
use crate::kernels::{composed, ExpertWeights, Kernels, Routed};
use crate::model::{Linear, SwiGlu};

#[derive(Module, Debug)]
pub struct MoeMlp<B: Backend> {
    router: Linear<B>,
    experts: Vec<SwiGlu<B>>,
    shared: Option<SwiGlu<B>>,
    top_k: usize,
    gate: Gate,
    capacity_factor: Option<f64>,
    aux_loss_coef: f64,
    z_loss_coef: f64,
}

/// Routing of one forward pass, as tensors (read only when reported).
pub struct RouterStats<B: Backend> {
    /// The fraction of token-slots sent to each expert, `[n_experts]`.
    pub load: Tensor<B, 1>,
    /// The fraction of token-slots dropped over capacity, `[1]`; `None` without a capacity.
    pub dropped: Option<Tensor<B, 1>>,
    log_probs: Tensor<B, 2>,
}

impl<B: Backend> RouterStats<B> {
    /// The mean per-token entropy of the router's softmax, in nats.
    pub fn entropy(&self) -> Tensor<B, 1> {
        (self.log_probs.clone().exp() * self.log_probs.clone()).sum_dim(1).mean().neg()
    }
}

impl<B: Backend> MoeMlp<B> {
    pub fn new(init: &mut Init<'_, B>, d: usize, c: &MoeConfig, out_std: f64) -> Self {
        let std = init.std;
        let router = Linear::new(init, d, c.n_experts, std);
        let experts = (0..c.n_experts).map(|_| SwiGlu::new(init, d, c.d_expert, out_std)).collect();
        let shared = c.shared_expert.then(|| SwiGlu::new(init, d, c.d_expert, out_std));
        MoeMlp {
            router,
            experts,
            shared,
            top_k: c.top_k,
            gate: c.gate,
            capacity_factor: c.capacity_factor,
            aux_loss_coef: c.aux_loss_coef,
            z_loss_coef: c.z_loss_coef,
        }
    }

    /// Slots each expert takes from `tokens` tokens: the capacity factor times an even share.
    fn capacity(&self, tokens: usize) -> Option<usize> {
        let share = (tokens * self.top_k) as f64 / self.experts.len() as f64;
        self.capacity_factor.map(|f| ((f * share).ceil() as usize).max(1))
    }
}

/// The `k` largest logits of each row of `logits: [n, E]` and their experts, best first, by
/// repeated argmax (burn's `topk` sorts, which GPU backends do on the host).
fn top_k<B: Backend>(logits: Tensor<B, 2>, k: usize) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
    let [n, _] = logits.dims();
    let mut remaining = logits.clone().detach();
    let mut chosen = Vec::with_capacity(k);
    for rank in 0..k {
        let best = remaining.clone().argmax(1);
        if rank + 1 < k {
            let mask = Tensor::full([n, 1], f32::NEG_INFINITY, &remaining.device());
            remaining = remaining.scatter(1, best.clone(), mask, IndexingUpdateOp::Add);
        }
        chosen.push(best);
    }
    let experts = Tensor::cat(chosen, 1);
    (logits.gather(1, experts.clone()), experts)
}

impl<B: Kernels> MoeMlp<B> {
    /// `x`: `[tokens, d]` → (output `[tokens, d]`, auxiliary loss, routing statistics).
    pub fn forward(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 1>, RouterStats<B>) {
        self.forward_with(x, |x, gates, experts, capacity| {
            if self.router.bf16 {
                // The fused kernels multiply in f32; autocast goes through the experts' own
                // (bf16) projections.
                composed::moe_experts(x, gates, experts, self.experts.len(), capacity, |e, x| {
                    self.experts[e].forward(x)
                })
            } else {
                B::moe_experts(x, gates, experts, &self.expert_weights(), capacity)
            }
        })
    }

    fn expert_weights(&self) -> Vec<ExpertWeights<B>> {
        self.experts.iter().map(SwiGlu::weights).collect()
    }

    /// The layer with `route(x, gates, experts, capacity)` running the experts.
    fn forward_with(
        &self,
        x: Tensor<B, 2>,
        route: impl FnOnce(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2, Int>, Option<usize>) -> Routed<B>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>, RouterStats<B>) {
        let [n, _] = x.dims();
        let n_experts = self.experts.len();
        let logits = self.router.forward(x.clone());
        let log_probs = log_softmax(logits.clone(), 1);
        let probs = log_probs.clone().exp();
        let (top_logits, experts) = top_k(logits.clone(), self.top_k);
        let gates = match self.gate {
            Gate::Softmax => probs.clone().gather(1, experts.clone()),
            Gate::SoftmaxTopk => softmax(top_logits, 1),
        };
        let routed = route(x.clone(), gates, experts, self.capacity(n));
        let out = match &self.shared {
            Some(shared) => shared.forward(x) + routed.out,
            None => routed.out,
        };

        let slots = (n * self.top_k) as f64;
        let load = routed.load.div_scalar(slots);
        let mut aux = Tensor::zeros([1], &logits.device());
        if self.aux_loss_coef > 0.0 {
            // Switch Transformer balance loss: E · Σ_e f_e · P_e, with f_e the
            // (non-differentiable) share of slots and P_e the mean router probability.
            let balance = (probs.mean_dim(0).reshape([n_experts]) * load.clone()).sum().mul_scalar(n_experts as f64);
            aux = aux + balance.mul_scalar(self.aux_loss_coef);
        }
        if self.z_loss_coef > 0.0 {
            // z-loss: mean squared log-partition of the router logits (ST-MoE).
            let lse = (logits - log_probs.clone()).narrow(1, 0, 1);
            aux = aux + lse.square().mean().mul_scalar(self.z_loss_coef);
        }
        let dropped = self.capacity_factor.map(|_| routed.dropped.div_scalar(slots));
        (out, aux, RouterStats { load, dropped, log_probs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CpuBackend, CpuTrainBackend};
    use burn::tensor::{Distribution, TensorData};
    use codescale_core::{Arch, DataSpec, ModelSpec, TrialConfig, TrialSpec};

    type B = CpuBackend;
    type T = CpuTrainBackend;

    fn config(n_experts: usize, top_k: usize) -> TrialConfig {
        TrialSpec {
            data: DataSpec { language: Some("python".into()), ..Default::default() },
            model: ModelSpec {
                name: Some("d64-l1".into()),
                arch: Some(Arch::Moe),
                n_experts: Some(n_experts),
                top_k: Some(top_k),
                aux_loss_coef: Some(0.0),
                z_loss_coef: Some(0.0),
                ..Default::default()
            },
            ..Default::default()
        }
        .resolve()
        .unwrap()
    }

    fn moe_config(c: &TrialConfig) -> MoeConfig {
        c.model_config().moe.expect("an MoE trial")
    }

    fn input<Bk: Backend>(n: usize, d: usize) -> Tensor<Bk, 2> {
        let values: Vec<f32> = (0..n * d).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        Tensor::from_data(TensorData::new(values, [n, d]), &Default::default())
    }

    fn max_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn single_expert_equals_dense_mlp_forward_and_backward() {
        for gate in [Gate::Softmax, Gate::SoftmaxTopk] {
            let mut c = config(1, 1);
            c.model.gate = Some(gate);
            let device = Default::default();
            let moe = MoeMlp::<T>::new(&mut Init::new(3, &device), c.model.d_model, &moe_config(&c), 0.02);
            let x = input::<T>(12, 64).require_grad();
            let (y, _, stats) = moe.forward(x.clone());
            let dense = moe.experts[0].forward(x.clone());
            assert!(max_diff(y.clone().inner(), dense.clone().inner()) < 1e-6, "{gate:?}");
            assert_eq!(crate::optim::to_vec(stats.load.inner()), vec![1.0]);
            let (moe_grads, dense_grads) = (y.sum().backward(), dense.sum().backward());
            let pairs = moe.experts[0].weights().into_iter().chain([x]);
            for (i, w) in pairs.enumerate() {
                let (a, b) = (w.grad(&moe_grads).unwrap(), w.grad(&dense_grads).unwrap());
                assert!(max_diff(a, b) < 1e-5, "{gate:?}: gradient {i}");
            }
        }
    }

    /// The router, every expert and the shared expert: the layer's parameters in a fixed order.
    fn parameters(moe: &MoeMlp<T>) -> Vec<Tensor<T, 2>> {
        let experts = moe.experts.iter().chain(&moe.shared).flat_map(SwiGlu::weights);
        std::iter::once(moe.router.weight.val()).chain(experts).collect()
    }

    /// The layer through the fused kernels against the same layer through burn's composed ops:
    /// output, auxiliary loss, routing tallies, and the gradient of every parameter and of `x`.
    fn check_fused_against_composed(top_k: usize, shared: bool, capacity_factor: Option<f64>) {
        let name = format!("top-{top_k}, shared expert {shared}, capacity {capacity_factor:?}");
        let mut c = config(4, top_k);
        (c.model.shared_expert, c.model.capacity_factor, c.model.aux_loss_coef, c.model.z_loss_coef) =
            (shared, capacity_factor, 0.01, 1e-3);
        let device = Default::default();
        let moe = MoeMlp::<T>::new(&mut Init::new(11, &device), c.model.d_model, &moe_config(&c), 0.02);
        <B as Backend>::seed(&device, 5);
        let x = Tensor::<T, 2>::random([96, 64], Distribution::Normal(0.0, 1.0), &device);
        let weights = Tensor::<T, 2>::random([96, 64], Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let (y, aux, stats) = if fused {
                moe.forward(x.clone())
            } else {
                let experts = moe.expert_weights();
                moe.forward_with(x.clone(), |x, gates, idx, capacity| {
                    composed::moe_experts(x, gates, idx, 4, capacity, |e, x| composed::swiglu_mlp(x, &experts[e]))
                })
            };
            let grads = ((y.clone() * weights.clone()).sum() + aux.clone()).backward();
            let inputs = parameters(&moe).into_iter().chain([x]);
            let grads: Vec<Tensor<B, 2>> =
                inputs.map(|p| p.grad(&grads).expect("every input gets a gradient")).collect();
            (y.inner(), aux.inner(), stats.load.inner(), stats.dropped.map(|d| d.inner().into_scalar()), grads)
        };
        let (fused, composed) = (run(true), run(false));
        assert!(max_diff(fused.0, composed.0) < 2e-5, "{name}: output");
        assert!(max_diff(fused.1, composed.1) < 1e-6, "{name}: auxiliary loss");
        assert_eq!(fused.2.into_data(), composed.2.into_data(), "{name}: load");
        assert_eq!(fused.3, composed.3, "{name}: dropped fraction");
        if capacity_factor.is_some() {
            assert!(fused.3.unwrap() > 0.0, "{name}: the capacity drops slots");
        }
        for (i, (a, b)) in fused.4.into_iter().zip(composed.4).enumerate() {
            let scale: f32 = b.clone().abs().max().into_scalar();
            assert!(max_diff(a, b) <= 2e-5 * scale.max(1.0), "{name}: gradient {i}");
        }
    }

    #[test]
    fn fused_routing_matches_composed_routing() {
        for top_k in [1, 2] {
            for shared in [false, true] {
                for capacity_factor in [None, Some(1.0)] {
                    check_fused_against_composed(top_k, shared, capacity_factor);
                }
            }
        }
    }

    #[test]
    fn balancing_loss_falls_when_the_router_learns_on_uniform_data() {
        use crate::optim::AdamW;
        use burn::tensor::ElementConversion;
        let mut c = config(4, 1);
        c.model.aux_loss_coef = 1.0;
        c.optimizer.lr = 1e-2;
        c.optimizer.weight_decay = 0.0;
        let device = Default::default();
        let mut init = Init::<T>::new(7, &device);
        let mut moe = MoeMlp::<T>::new(&mut init, c.model.d_model, &moe_config(&c), 0.02);
        // A router that sends every (positive) input to expert 0.
        let skewed: Vec<f32> = (0..64 * 4).map(|i| if i % 4 == 0 { 0.5 } else { 0.0 }).collect();
        moe.router = Linear {
            weight: burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(skewed, [64, 4]), &device)),
            bf16: false,
        };
        let values: Vec<f32> = {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            (0..256 * 64).map(|_| rng.random_range(0.0f32..1.0)).collect()
        };
        let x = Tensor::<T, 2>::from_data(TensorData::new(values, [256, 64]), &device);
        let mut opt = AdamW::<T>::new(&c);
        let mut losses = Vec::new();
        for _ in 0..150 {
            let (_, aux, _) = moe.forward(x.clone());
            losses.push(aux.clone().into_scalar().elem::<f64>());
            opt.accumulate(&moe, &aux.backward());
            let norm = opt.grad_norm();
            moe = opt.step(moe, c.optimizer.lr, norm);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(first > 3.5, "the skewed router starts unbalanced: {first}");
        assert!(last < 1.5, "balance loss {first} → {last}");
    }

    #[test]
    fn top_k_takes_distinct_experts_best_first_like_a_sort() {
        let logits = input::<B>(10, 8);
        let (values, experts) = top_k(logits.clone(), 3);
        let (sorted, order) = logits.topk_with_indices(3, 1);
        assert_eq!(experts.into_data(), order.into_data());
        assert_eq!(values.into_data(), sorted.into_data());
    }

    #[test]
    fn gates_are_full_softmax_probabilities_or_renormalised_over_the_chosen() {
        let x = input::<B>(10, 64);
        for gate in [Gate::Softmax, Gate::SoftmaxTopk] {
            let mut c = config(4, 2);
            c.model.gate = Some(gate);
            let moe = MoeMlp::<B>::new(&mut Init::new(5, &Default::default()), c.model.d_model, &moe_config(&c), 0.02);
            let probs = softmax(moe.router.forward(x.clone()), 1);
            moe.forward_with(x.clone(), |x, gates, experts, _| {
                let sums: Vec<f32> = gates.clone().sum_dim(1).into_data().to_vec().unwrap();
                match gate {
                    Gate::Softmax => assert!(max_diff(gates.clone(), probs.clone().gather(1, experts.clone())) < 1e-7),
                    Gate::SoftmaxTopk => assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}"),
                }
                if gate == Gate::Softmax {
                    assert!(sums.iter().all(|&s| s < 1.0), "two of four probabilities sum below 1: {sums:?}");
                }
                B::moe_experts(x, gates, experts, &moe.expert_weights(), None)
            });
        }
    }
}
