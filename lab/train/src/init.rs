//! Deterministic weight initialisation on the host, so a seed means the same weights on every
//! backend and every run.

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

pub struct Init<'a, B: Backend> {
    rng: ChaCha8Rng,
    device: &'a B::Device,
    /// The base standard deviation (a trial's `init_std`; GPT-2's 0.02 by default).
    pub std: f64,
    /// Whether the linear layers made from here multiply in bf16.
    pub bf16: bool,
}

impl<'a, B: Backend> Init<'a, B> {
    pub fn new(seed: u64, device: &'a B::Device) -> Self {
        Init { rng: ChaCha8Rng::seed_from_u64(seed), device, std: codescale_core::config::GPT2_INIT_STD, bf16: false }
    }

    pub fn device(&self) -> &'a B::Device {
        self.device
    }

    pub fn normal<const D: usize>(&mut self, shape: [usize; D], std: f64) -> Param<Tensor<B, D>> {
        let normal = Normal::new(0.0f32, std as f32).expect("finite std");
        let values: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| normal.sample(&mut self.rng)).collect();
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), self.device))
    }

    pub fn ones(&mut self, d: usize) -> Param<Tensor<B, 1>> {
        Param::from_tensor(Tensor::ones([d], self.device))
    }
}
