//! Mixture-of-experts MLP: a linear router, top-k routing with softmax over the selected
//! logits, SwiGLU experts, an optional always-on shared expert, the Switch/GShard
//! load-balancing loss and the router z-loss.
//!
//! No token is dropped: each expert gathers exactly the rows routed to it, runs on them, and
//! scatter-adds its gated output back. Routing decisions come to the host once per layer (the
//! index lists have data-dependent sizes), which is the one sync a routed layer needs.

use burn::module::Module;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};
use codescale_core::TrialConfig;

use crate::init::Init;
use crate::kernels::Kernels;
use crate::model::{Linear, SwiGlu};

#[derive(Module, Debug)]
pub struct MoeMlp<B: Backend> {
    router: Linear<B>,
    experts: Vec<SwiGlu<B>>,
    shared: Option<SwiGlu<B>>,
    top_k: usize,
    aux_loss_coef: f64,
    z_loss_coef: f64,
}

/// Routing of one forward pass: the fraction of token-slots each expert received, and the
/// mean per-token entropy of the router's softmax (a tensor, read only when reported).
pub struct RouterStats<B: Backend> {
    pub load: Vec<f64>,
    pub entropy: Tensor<B, 1>,
}

impl<B: Backend> MoeMlp<B> {
    pub fn new(init: &mut Init<'_, B>, c: &TrialConfig, out_std: f64) -> Self {
        let d = c.d_model;
        let std = init.std;
        let router = Linear::new(init, d, c.n_experts, std);
        let experts = (0..c.n_experts).map(|_| SwiGlu::new(init, d, c.d_expert, out_std)).collect();
        let shared = c.shared_expert.then(|| SwiGlu::new(init, d, c.d_expert, out_std));
        MoeMlp { router, experts, shared, top_k: c.top_k, aux_loss_coef: c.aux_loss_coef, z_loss_coef: c.z_loss_coef }
    }
}

impl<B: Kernels> MoeMlp<B> {
    /// `x`: `[tokens, d]` → (output `[tokens, d]`, auxiliary loss, routing statistics).
    pub fn forward(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 1>, RouterStats<B>) {
        let [n, _] = x.dims();
        let device = x.device();
        let n_experts = self.experts.len();
        let logits = self.router.forward(x.clone());
        let (top_logits, top_idx) = logits.clone().topk_with_indices(self.top_k, 1);
        let gates = softmax(top_logits, 1).reshape([n * self.top_k]);

        let chosen: Vec<i64> = top_idx.into_data().convert::<i64>().to_vec().expect("routing indices");
        let mut rows: Vec<Vec<i64>> = vec![Vec::new(); n_experts];
        let mut slots: Vec<Vec<i64>> = vec![Vec::new(); n_experts];
        for (slot, &e) in chosen.iter().enumerate() {
            rows[e as usize].push((slot / self.top_k) as i64);
            slots[e as usize].push(slot as i64);
        }

        let mut out = match &self.shared {
            Some(shared) => shared.forward(x.clone()),
            None => x.zeros_like(),
        };
        for (e, expert) in self.experts.iter().enumerate() {
            if rows[e].is_empty() {
                continue;
            }
            let m = rows[e].len();
            let row_idx = Tensor::<B, 1, Int>::from_data(TensorData::new(std::mem::take(&mut rows[e]), [m]), &device);
            let slot_idx = Tensor::<B, 1, Int>::from_data(TensorData::new(std::mem::take(&mut slots[e]), [m]), &device);
            let y = expert.forward(x.clone().select(0, row_idx.clone()));
            let w = gates.clone().select(0, slot_idx).unsqueeze_dim(1);
            out = out.select_assign(0, row_idx, y * w, IndexingUpdateOp::Add);
        }

        let load: Vec<f64> = {
            let mut counts = vec![0.0; n_experts];
            for &e in &chosen {
                counts[e as usize] += 1.0;
            }
            counts.iter().map(|c| c / chosen.len() as f64).collect()
        };
        let log_probs = log_softmax(logits.clone(), 1);
        let probs = log_probs.clone().exp();
        // Switch Transformer balance loss: E · Σ_e f_e · P_e, with f_e the (non-differentiable)
        // share of slots and P_e the mean router probability.
        let f = Tensor::<B, 1>::from_data(TensorData::new(load.iter().map(|&v| v as f32).collect(), [n_experts]), &device);
        let balance = (probs.clone().mean_dim(0).reshape([n_experts]) * f).sum().mul_scalar(n_experts as f64);
        // z-loss: mean squared log-partition of the router logits (ST-MoE).
        let lse = logits.clone() - log_probs.clone();
        let z = lse.narrow(1, 0, 1).square().mean();
        let aux = balance.mul_scalar(self.aux_loss_coef) + z.mul_scalar(self.z_loss_coef);
        let entropy = (probs * log_probs).sum_dim(1).mean().neg();
        (out, aux, RouterStats { load, entropy })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use codescale_core::{Arch, TrialSpec};

    type B = CpuBackend;

    fn config(n_experts: usize, top_k: usize) -> TrialConfig {
        TrialSpec {
            language: Some("python".into()),
            model: Some("d64-l1".into()),
            arch: Some(Arch::Moe),
            n_experts: Some(n_experts),
            top_k: Some(top_k),
            aux_loss_coef: Some(0.0),
            z_loss_coef: Some(0.0),
            ..Default::default()
        }
        .resolve()
        .unwrap()
    }

    fn input(n: usize, d: usize) -> Tensor<B, 2> {
        let values: Vec<f32> = (0..n * d).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        Tensor::from_data(TensorData::new(values, [n, d]), &Default::default())
    }

    #[test]
    fn single_expert_equals_dense_mlp() {
        let c = config(1, 1);
        let device = Default::default();
        let moe = MoeMlp::<B>::new(&mut Init::new(3, &device), &c, 0.02);
        let x = input(12, 64);
        let (y, _, stats) = moe.forward(x.clone());
        let dense = moe.experts[0].forward(x);
        let diff: f32 = (y - dense).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
        assert_eq!(stats.load, vec![1.0]);
    }

    #[test]
    fn balancing_loss_falls_when_the_router_learns_on_uniform_data() {
        use crate::optim::AdamW;
        use burn::tensor::ElementConversion;
        type T = crate::backend::CpuTrainBackend;
        let mut c = config(4, 1);
        c.aux_loss_coef = 1.0;
        c.lr = 1e-2;
        c.weight_decay = 0.0;
        let device = Default::default();
        let mut init = Init::<T>::new(7, &device);
        let mut moe = MoeMlp::<T>::new(&mut init, &c, 0.02);
        // A router that sends every (positive) input to expert 0.
        let skewed: Vec<f32> = (0..64 * 4).map(|i| if i % 4 == 0 { 0.5 } else { 0.0 }).collect();
        moe.router = Linear { weight: burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(skewed, [64, 4]), &device)), bf16: false };
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
            moe = opt.step(moe, c.lr, norm);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(first > 3.5, "the skewed router starts unbalanced: {first}");
        assert!(last < 1.5, "balance loss {first} → {last}");
    }

    #[test]
    fn top_k_gates_sum_to_one_over_k_experts() {
        let c = config(4, 2);
        let device = Default::default();
        let moe = MoeMlp::<B>::new(&mut Init::new(5, &device), &c, 0.02);
        let x = input(10, 64);
        let logits = moe.router.forward(x.clone());
        let (top, idx) = logits.topk_with_indices(2, 1);
        let gates = softmax(top, 1);
        let sums: Vec<f32> = gates.sum_dim(1).into_data().to_vec().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6));
        let idx: Vec<i64> = idx.into_data().convert::<i64>().to_vec().unwrap();
        for pair in idx.chunks(2) {
            assert_ne!(pair[0], pair[1], "each token reaches two distinct experts");
        }
        let (_, _, stats) = moe.forward(x);
        assert!((stats.load.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
