//! Training batches and evaluation windows drawn from a language's token shards.
//!
//! A batch is a pure function of (seed, step, micro-batch): there is no sampler state to
//! checkpoint, and a resumed run sees exactly the batches an uninterrupted one would.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Batch<B: Backend> {
    pub inputs: Tensor<B, 2, Int>,
    pub targets: Tensor<B, 2, Int>,
}

pub struct Sampler {
    tokens: Vec<u16>,
    seq_len: usize,
    micro_batch: usize,
    seed: u64,
    /// Reused host buffers: one batch's inputs and targets.
    inputs: Vec<i32>,
    targets: Vec<i32>,
}

impl Sampler {
    pub fn new(tokens: Vec<u16>, seq_len: usize, micro_batch: usize, seed: u64) -> anyhow::Result<Sampler> {
        anyhow::ensure!(
            tokens.len() > seq_len + 1,
            "the training shard has {} tokens, fewer than one window of {}",
            tokens.len(),
            seq_len + 1
        );
        Ok(Sampler { tokens, seq_len, micro_batch, seed, inputs: Vec::new(), targets: Vec::new() })
    }

    pub fn batch<B: Backend>(&mut self, step: usize, micro: usize, device: &B::Device) -> Batch<B> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(((step as u64) << 16) | micro as u64);
        let last_start = self.tokens.len() - self.seq_len - 1;
        let offsets: Vec<usize> = (0..self.micro_batch).map(|_| rng.random_range(0..=last_start)).collect();
        self.fill(&offsets);
        self.tensors(self.micro_batch, device)
    }

    fn fill(&mut self, offsets: &[usize]) {
        self.inputs.clear();
        self.targets.clear();
        for &o in offsets {
            let window = &self.tokens[o..o + self.seq_len + 1];
            self.inputs.extend(window[..self.seq_len].iter().map(|&t| t as i32));
            self.targets.extend(window[1..].iter().map(|&t| t as i32));
        }
    }

    fn tensors<B: Backend>(&self, rows: usize, device: &B::Device) -> Batch<B> {
        let shape = [rows, self.seq_len];
        Batch {
            inputs: Tensor::from_data(TensorData::new(self.inputs.clone(), shape), device),
            targets: Tensor::from_data(TensorData::new(self.targets.clone(), shape), device),
        }
    }
}

/// Fixed, evenly spaced validation windows: the same for every evaluation and every trial
/// with the same sequence length and token count.
pub struct EvalSet {
    sampler: Sampler,
    offsets: Vec<usize>,
}

impl EvalSet {
    pub fn new(tokens: Vec<u16>, seq_len: usize, eval_tokens: usize, batch: usize) -> anyhow::Result<EvalSet> {
        let sampler = Sampler::new(tokens, seq_len, batch, 0)?;
        let last_start = sampler.tokens.len() - seq_len - 1;
        let wanted = (eval_tokens / seq_len).max(1);
        let windows = wanted.min(last_start / seq_len + 1).max(1);
        let offsets = (0..windows).map(|i| if windows == 1 { 0 } else { i * last_start / (windows - 1) }).collect();
        Ok(EvalSet { sampler, offsets })
    }

    /// Every `stride`-th window (all with 1), in batches of at most `batch` rows.
    pub fn batches<B: Backend>(&mut self, device: &B::Device, stride: usize) -> Vec<Batch<B>> {
        let windows: Vec<usize> = self.offsets.iter().copied().step_by(stride.max(1)).collect();
        let chunks: Vec<Vec<usize>> = windows.chunks(self.sampler.micro_batch).map(|c| c.to_vec()).collect();
        chunks
            .into_iter()
            .map(|chunk| {
                self.sampler.fill(&chunk);
                self.sampler.tensors(chunk.len(), device)
            })
            .collect()
    }
}
