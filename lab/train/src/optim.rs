//! AdamW as PyTorch defines it, with the two things burn's `AdamW` lacks for LM training:
//! clipping by the *global* gradient norm, and no weight decay on gains (1-D parameters).
//! Gradients of several micro-batches accumulate in place before one update.
//!
//! As in PyTorch, a parameter without a gradient in a step (an expert no token reached) is left
//! alone, moments and step count included: each parameter's bias correction counts its own
//! updates, so an expert that wakes up after idling moves by about the learning rate, not by a
//! multiple of it.
//!
//! Parameters are addressed by their visiting order, which is fixed by the module's field
//! order; that order is also the checkpoint layout.

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use codescale_core::TrialConfig;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;
/// A parameter's first and second moments (flattened).
type Moments<B> = (Tensor<Inner<B>, 1>, Tensor<Inner<B>, 1>);

pub struct AdamW<B: AutodiffBackend> {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    grad_clip: f64,
    /// Updates taken so far.
    pub t: u64,
    /// Updates each parameter received (its bias correction's step count).
    steps: Vec<u64>,
    /// First and second moments per parameter, flattened.
    moments: Vec<Option<Moments<B>>>,
    /// Summed gradients of the micro-batches since the last update, flattened.
    grads: Vec<Option<Tensor<Inner<B>, 1>>>,
}

impl<B: AutodiffBackend> AdamW<B> {
    pub fn new(c: &TrialConfig) -> Self {
        AdamW {
            beta1: c.optimizer.beta1,
            beta2: c.optimizer.beta2,
            eps: c.optimizer.eps,
            weight_decay: c.optimizer.weight_decay,
            grad_clip: c.optimizer.grad_clip,
            t: 0,
            steps: Vec::new(),
            moments: Vec::new(),
            grads: Vec::new(),
        }
    }

    /// Adds one backward pass's gradients to the accumulator.
    pub fn accumulate<M: AutodiffModule<B>>(&mut self, model: &M, grads: &B::Gradients) {
        let mut visitor = Accumulate::<B> { grads, acc: &mut self.grads, index: 0 };
        model.visit(&mut visitor);
    }

    /// Squared global L2 norm of the accumulated gradient, left on the device (`None` before
    /// any gradient), for the caller to read along with whatever else it reads.
    pub fn grad_sq_sum(&self) -> Option<Tensor<Inner<B>, 1>> {
        self.grads.iter().flatten().map(|g| g.clone().square().sum()).reduce(|a, b| a + b)
    }

    /// Global L2 norm of the accumulated gradient (one device→host read).
    pub fn grad_norm(&self) -> f64 {
        self.grad_sq_sum().map_or(0.0, |s| s.into_scalar().elem::<f64>()).sqrt()
    }

    /// Applies one update with learning rate `lr`, given the accumulated gradient's norm, and
    /// clears the accumulator.
    pub fn step<M: AutodiffModule<B>>(&mut self, model: M, lr: f64, grad_norm: f64) -> M {
        self.t += 1;
        let scale =
            if self.grad_clip > 0.0 && grad_norm > self.grad_clip { self.grad_clip / (grad_norm + 1e-6) } else { 1.0 };
        let mut mapper = Update { opt: self, lr, scale, index: 0 };
        let model = model.map(&mut mapper);
        self.grads.iter_mut().for_each(|g| *g = None);
        model
    }

    /// Moments as host vectors, in parameter order, for checkpoints.
    pub fn export_moments(&self) -> Vec<Option<(Vec<f32>, Vec<f32>)>> {
        self.moments.iter().map(|m| m.as_ref().map(|(m, v)| (to_vec(m.clone()), to_vec(v.clone())))).collect()
    }

    /// Each parameter's update count, in parameter order, for checkpoints.
    pub fn export_steps(&self) -> Vec<u64> {
        self.steps.clone()
    }

    /// Restores the state [`export_moments`](Self::export_moments) and
    /// [`export_steps`](Self::export_steps) saved after `t` updates.
    pub fn import_state(
        &mut self,
        moments: Vec<Option<(Vec<f32>, Vec<f32>)>>,
        steps: Vec<u64>,
        t: u64,
        device: &burn::tensor::Device<Inner<B>>,
    ) {
        let load = |v: Vec<f32>| {
            let n = v.len();
            Tensor::<Inner<B>, 1>::from_data(TensorData::new(v, [n]), device)
        };
        self.moments = moments.into_iter().map(|m| m.map(|(m, v)| (load(m), load(v)))).collect();
        self.steps = steps;
        self.t = t;
    }
}

pub fn to_vec<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 tensor")
}

struct Accumulate<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    acc: &'a mut Vec<Option<Tensor<Inner<B>, 1>>>,
    index: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Accumulate<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let i = self.index;
        self.index += 1;
        if self.acc.len() <= i {
            self.acc.resize(i + 1, None);
        }
        if let Some(g) = param.val().grad(self.grads) {
            let n = g.shape().num_elements();
            let g = g.reshape([n]);
            self.acc[i] = Some(match self.acc[i].take() {
                Some(sum) => sum + g,
                None => g,
            });
        }
    }
}

struct Update<'a, B: AutodiffBackend> {
    opt: &'a mut AdamW<B>,
    lr: f64,
    scale: f64,
    index: usize,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Update<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let i = self.index;
        self.index += 1;
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.opt.grads.get_mut(i).and_then(Option::take) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let opt = &mut *self.opt;
        let shape = tensor.shape();
        let n = shape.num_elements();
        let p = tensor.inner().reshape([n]);
        let g = if self.scale == 1.0 { grad } else { grad.mul_scalar(self.scale) };

        if opt.moments.len() <= i {
            opt.moments.resize(i + 1, None);
        }
        if opt.steps.len() <= i {
            opt.steps.resize(i + 1, 0);
        }
        opt.steps[i] += 1;
        let t = opt.steps[i] as i32;
        let (m, v) = match opt.moments[i].take() {
            Some((m, v)) => (
                m.mul_scalar(opt.beta1) + g.clone().mul_scalar(1.0 - opt.beta1),
                v.mul_scalar(opt.beta2) + g.square().mul_scalar(1.0 - opt.beta2),
            ),
            None => (g.clone().mul_scalar(1.0 - opt.beta1), g.square().mul_scalar(1.0 - opt.beta2)),
        };
        let bias1 = 1.0 - opt.beta1.powi(t);
        let bias2 = 1.0 - opt.beta2.powi(t);
        // p ← p·(1 − lr·λ) − lr · m̂ / (√v̂ + ε), with m̂ = m/bias1 and v̂ = v/bias2.
        let denom = v.clone().div_scalar(bias2).sqrt().add_scalar(opt.eps);
        let update = m.clone().div(denom).mul_scalar(self.lr / bias1);
        let decayed = if D >= 2 && opt.weight_decay > 0.0 { p.mul_scalar(1.0 - self.lr * opt.weight_decay) } else { p };
        let p = decayed - update;
        opt.moments[i] = Some((m, v));
        let p = Tensor::<B, D>::from_inner(p.reshape(shape)).require_grad();
        Param::from_mapped_value(id, p, mapper)
    }
}
