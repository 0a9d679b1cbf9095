//! AdamW against PyTorch's `torch.optim.AdamW` on a parameter that idles, then wakes up.

mod common;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use codescale_train::optim::AdamW;
use codescale_train::CpuTrainBackend;

type T = CpuTrainBackend;

/// Two parameters: a gain (no weight decay) and a matrix (decayed).
#[derive(Module, Debug)]
struct Two<B: Backend> {
    a: Param<Tensor<B, 1>>,
    b: Param<Tensor<B, 2>>,
}

/// Three steps in which only `a` has a gradient (the loss does not touch `b`, as no token
/// reaches an idle expert), then one in which only `b` has. PyTorch skips a parameter whose
/// `.grad` is None — no moment decay, no step count — so `b`'s first update is a first Adam step:
/// m̂ = g, v̂ = g², p ← p·(1 − lr·λ) − lr·g/(|g| + ε).
///
/// `bench/adamw_idle.py` runs the same four steps through `torch.optim.AdamW` and prints the
/// numbers checked here.
#[test]
fn an_idle_parameter_first_update_is_a_first_adam_step_as_in_pytorch() {
    let device = Default::default();
    let (lr, wd) = (1e-2, 0.1);
    let config = common::config(10, |s| {
        s.optimizer.lr = Some(lr.into());
        s.optimizer.weight_decay = Some(wd);
        s.optimizer.beta1 = Some(0.9);
        s.optimizer.beta2 = Some(0.95);
        s.optimizer.eps = Some(1e-8);
        s.optimizer.grad_clip = Some(0.0);
    });
    let mut model = Two::<T> {
        a: Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.5f32, -0.25], [2]), &device)),
        b: Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.3f32, -0.2], [1, 2]), &device)),
    };
    let mut opt = AdamW::<T>::new(&config);
    let ca = Tensor::<T, 1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
    let gb = Tensor::<T, 2>::from_data(TensorData::new(vec![0.02f32, -0.04], [1, 2]), &device);
    for step in 0..4 {
        let loss = if step < 3 { (model.a.val() * ca.clone()).sum() } else { (model.b.val() * gb.clone()).sum() };
        let grads = loss.backward();
        opt.accumulate(&model, &grads);
        let norm = opt.grad_norm();
        model = opt.step(model, lr, norm);
    }
    let b: Vec<f32> = model.b.val().into_data().convert::<f32>().to_vec().unwrap();
    // PyTorch's numbers (bench/adamw_idle.py), and the same from the formula in f64.
    let torch = TORCH_B;
    for (i, (&g, &p0)) in [0.02f64, -0.04].iter().zip(&[0.3f64, -0.2]).enumerate() {
        let expected = p0 * (1.0 - lr * wd) - lr * g / (g.abs() + 1e-8);
        assert!((b[i] as f64 - expected).abs() < 1e-6, "b[{i}] = {} but a first Adam step gives {expected}", b[i]);
        assert!((b[i] - torch[i]).abs() < 2e-5, "b[{i}] = {} but PyTorch gives {}", b[i], torch[i]);
    }
}

/// `b` after the four steps, printed by `python3 bench/adamw_idle.py` (PyTorch 2.15, float32).
const TORCH_B: [f32; 2] = [0.2897, -0.1898];
