//! Training batches and evaluation windows drawn from a language's token shards.
//!
//! A batch is a pure function of (seed, step, micro-batch): there is no sampler state to
//! checkpoint, and a resumed run sees exactly the batches an uninterrupted one would.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use std::ops::Range;

use codescale_data::pairs::Pair;
use codescale_data::Fim;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Batch<B: Backend> {
    pub inputs: Tensor<B, 2, Int>,
    pub targets: Tensor<B, 2, Int>,
    /// The positions the loss is taken over (flat indices into rows × time); all when `None`.
    pub scored: Option<Tensor<B, 1, Int>>,
}

pub struct Sampler {
    tokens: Vec<u16>,
    seq_len: usize,
    micro_batch: usize,
    seed: u64,
    /// Fill-in-the-middle applied to each training window, drawing from the batch's stream
    /// after its offsets (so a trial without it sees exactly the batches it always did).
    fim: Option<Fim>,
    /// Reused host buffers: one batch's inputs and targets, and one transformed window.
    inputs: Vec<i32>,
    targets: Vec<i32>,
    window: Vec<u16>,
}

/// Tokens read past a window for FIM: a BPE fragment re-encoded in pieces can come out a few
/// tokens shorter, and the window is still filled from the text that follows.
const FIM_SLACK: usize = 16;

impl Sampler {
    pub fn new(tokens: Vec<u16>, seq_len: usize, micro_batch: usize, seed: u64) -> anyhow::Result<Sampler> {
        anyhow::ensure!(
            tokens.len() > seq_len + 1,
            "the training shard has {} tokens, fewer than one window of {}",
            tokens.len(),
            seq_len + 1
        );
        Ok(Sampler {
            tokens,
            seq_len,
            micro_batch,
            seed,
            fim: None,
            inputs: Vec::new(),
            targets: Vec::new(),
            window: Vec::new(),
        })
    }

    /// Training windows in fill-in-the-middle form at `fim`'s rate.
    pub fn with_fim(self, fim: Fim) -> Sampler {
        Sampler { fim: Some(fim), ..self }
    }

    pub fn batch<B: Backend>(&mut self, step: usize, micro: usize, device: &B::Device) -> Batch<B> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(((step as u64) << 16) | micro as u64);
        let last_start = self.tokens.len() - self.seq_len - 1;
        let offsets: Vec<usize> = (0..self.micro_batch).map(|_| rng.random_range(0..=last_start)).collect();
        match self.fim.take() {
            None => self.fill(&offsets),
            Some(fim) => {
                self.fill_fim(&fim, &offsets, &mut rng);
                self.fim = Some(fim);
            }
        }
        self.tensors(self.micro_batch, device)
    }

    fn fill(&mut self, offsets: &[usize]) {
        self.inputs.clear();
        self.targets.clear();
        for &o in offsets {
            let window = &self.tokens[o..o + self.seq_len + 1];
            push_window(&mut self.inputs, &mut self.targets, window);
        }
    }

    fn fill_fim(&mut self, fim: &Fim, offsets: &[usize], rng: &mut ChaCha8Rng) {
        self.inputs.clear();
        self.targets.clear();
        for &o in offsets {
            let raw = &self.tokens[o..(o + self.seq_len + 1 + FIM_SLACK).min(self.tokens.len())];
            fim.window(raw, self.seq_len + 1, rng, &mut self.window);
            push_window(&mut self.inputs, &mut self.targets, &self.window);
        }
    }

    fn tensors<B: Backend>(&self, rows: usize, device: &B::Device) -> Batch<B> {
        let shape = [rows, self.seq_len];
        Batch {
            inputs: Tensor::from_data(TensorData::new(self.inputs.clone(), shape), device),
            targets: Tensor::from_data(TensorData::new(self.targets.clone(), shape), device),
            scored: None,
        }
    }
}

/// A window's inputs (all but its last token) and targets (all but its first).
fn push_window(inputs: &mut Vec<i32>, targets: &mut Vec<i32>, window: &[u16]) {
    inputs.extend(window[..window.len() - 1].iter().map(|&t| t as i32));
    targets.extend(window[1..].iter().map(|&t| t as i32));
}

/// Fixed, evenly spaced validation windows: the same for every evaluation and every trial
/// with the same sequence length and token count.
pub struct EvalSet {
    sampler: Sampler,
    offsets: Vec<usize>,
    /// For FIM trials, the infilling example of each window.
    infill: Option<ScoredSet>,
    /// For fine-tuning trials, the held-out instruction pairs.
    completions: Option<ScoredSet>,
}

impl EvalSet {
    pub fn new(tokens: Vec<u16>, seq_len: usize, eval_tokens: usize, batch: usize) -> anyhow::Result<EvalSet> {
        let sampler = Sampler::new(tokens, seq_len, batch, 0)?;
        let last_start = sampler.tokens.len() - seq_len - 1;
        let wanted = (eval_tokens / seq_len).max(1);
        let windows = wanted.min(last_start / seq_len + 1).max(1);
        let offsets = (0..windows).map(|i| if windows == 1 { 0 } else { i * last_start / (windows - 1) }).collect();
        Ok(EvalSet { sampler, offsets, infill: None, completions: None })
    }

    /// Also measures the infilling loss, on one PSM example per window.
    pub fn with_infilling(self, fim: &Fim) -> EvalSet {
        let infill = infill_rows(fim, &self.sampler.tokens, &self.offsets, self.sampler.seq_len);
        EvalSet { infill: Some(ScoredSet::new(infill, self.sampler.seq_len, fim.eod())), ..self }
    }

    /// Also measures the completion loss of held-out instruction pairs.
    pub fn with_completions(self, pairs: ScoredSet) -> EvalSet {
        EvalSet { completions: Some(pairs), ..self }
    }

    /// The infilling examples' batches with their masks (every `stride`-th example); `None`
    /// for a trial without FIM.
    pub fn infill_batches<B: Backend>(&self, device: &B::Device, stride: usize) -> Option<Vec<(Batch<B>, Vec<f32>)>> {
        Some(self.infill.as_ref()?.batches(device, stride, self.sampler.micro_batch))
    }

    /// The held-out pairs' batches with their masks (every `stride`-th pair); `None` for a
    /// trial that does not fine-tune on pairs.
    pub fn completion_batches<B: Backend>(
        &self,
        device: &B::Device,
        stride: usize,
    ) -> Option<Vec<(Batch<B>, Vec<f32>)>> {
        Some(self.completions.as_ref()?.batches(device, stride, self.sampler.micro_batch))
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

/// Where the evaluation's infilling examples draw their cuts: fixed, so that every evaluation
/// of every FIM trial with the same windows scores the same examples.
const INFILL_SEED: u64 = 0x5f1d;

/// The infilling examples of the validation windows: each window's longest document fragment
/// cut at two random characters and put in PSM order, scored on its middle only.
fn infill_rows(fim: &Fim, tokens: &[u16], offsets: &[usize], seq_len: usize) -> Vec<(Vec<u16>, Range<usize>)> {
    let mut rows = Vec::new();
    for (i, &o) in offsets.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(INFILL_SEED);
        rng.set_stream(i as u64);
        if let Some(example) = fim.infill_example(&tokens[o..o + seq_len + 1], seq_len + 1, &mut rng) {
            rows.push((example.tokens, example.middle));
        }
    }
    rows
}

/// Instruction pairs as rows of one window each: the prompt, then the completion and an
/// end-of-document token, scored on the completion and its end. A prompt longer than half the
/// window keeps its last half window (the signature and the end of its doc comment); a
/// completion that runs past the window is cut there, and scored as far as it goes.
pub fn pair_rows(pairs: &[Pair], seq_len: usize, eod: u16) -> Vec<(Vec<u16>, Range<usize>)> {
    pairs
        .iter()
        .filter(|p| !p.completion.is_empty())
        .map(|p| {
            let prompt = &p.prompt[p.prompt.len().saturating_sub(seq_len / 2)..];
            let mut row: Vec<u16> = prompt.iter().chain(&p.completion).copied().chain([eod]).collect();
            row.truncate(seq_len + 1);
            let scored = prompt.len()..row.len();
            (row, scored)
        })
        .collect()
}

/// Rows of one window each, every one scored on a span of its tokens only (an infilling
/// example's middle, an instruction pair's completion): what the masked losses read, and what
/// fine-tuning trains on.
pub struct ScoredSet {
    /// One row of `seq_len` inputs and targets per example, padded with end-of-document tokens.
    inputs: Vec<i32>,
    targets: Vec<i32>,
    /// 1 where the target is a scored token, else 0.
    mask: Vec<f32>,
    seq_len: usize,
}

impl ScoredSet {
    /// `rows`: each example's tokens (at most `seq_len + 1`) and the positions of the tokens
    /// scored (position `t` is the target after the first `t` tokens).
    pub fn new(rows: Vec<(Vec<u16>, Range<usize>)>, seq_len: usize, pad: u16) -> ScoredSet {
        let (mut inputs, mut targets, mut mask) = (vec![], vec![], vec![]);
        for (mut row, scored) in rows {
            row.resize(seq_len + 1, pad);
            push_window(&mut inputs, &mut targets, &row);
            // Target t is token t + 1 of the row.
            mask.extend((1..=seq_len).map(|t| if scored.contains(&t) { 1.0 } else { 0.0 }));
        }
        ScoredSet { inputs, targets, mask, seq_len }
    }

    pub fn len(&self) -> usize {
        self.mask.len() / self.seq_len
    }

    pub fn is_empty(&self) -> bool {
        self.mask.is_empty()
    }

    /// Every `stride`-th example, in batches of at most `batch` rows, each with its mask.
    pub fn batches<B: Backend>(&self, device: &B::Device, stride: usize, batch: usize) -> Vec<(Batch<B>, Vec<f32>)> {
        let rows: Vec<usize> = (0..self.len()).step_by(stride.max(1)).collect();
        rows.chunks(batch.max(1))
            .map(|chunk| {
                let mask = chunk.iter().flat_map(|&r| self.row(&self.mask, r).iter().copied()).collect();
                (self.batch(chunk, device, false), mask)
            })
            .collect()
    }

    fn row<'a, T>(&self, v: &'a [T], r: usize) -> &'a [T] {
        &v[r * self.seq_len..(r + 1) * self.seq_len]
    }

    /// The batch of rows `rows`, with the scored positions when `scored` (for training on them).
    fn batch<B: Backend>(&self, rows: &[usize], device: &B::Device, scored: bool) -> Batch<B> {
        let take = |v: &[i32]| -> Vec<i32> { rows.iter().flat_map(|&r| self.row(v, r).iter().copied()).collect() };
        let shape = [rows.len(), self.seq_len];
        let scored = scored.then(|| {
            let at: Vec<i32> = rows
                .iter()
                .flat_map(|&r| self.row(&self.mask, r).iter().copied())
                .enumerate()
                .filter(|&(_, m)| m > 0.0)
                .map(|(i, _)| i as i32)
                .collect();
            let n = at.len();
            Tensor::from_data(TensorData::new(at, [n]), device)
        });
        Batch {
            inputs: Tensor::from_data(TensorData::new(take(&self.inputs), shape), device),
            targets: Tensor::from_data(TensorData::new(take(&self.targets), shape), device),
            scored,
        }
    }
}

/// Fine-tuning batches: rows of a [`ScoredSet`] drawn uniformly (with replacement) as a pure
/// function of (seed, step, micro-batch), like [`Sampler`]'s windows, with the loss on each
/// row's scored span only.
pub struct PairSampler {
    set: ScoredSet,
    micro_batch: usize,
    seed: u64,
}

impl PairSampler {
    pub fn new(set: ScoredSet, micro_batch: usize, seed: u64) -> anyhow::Result<PairSampler> {
        anyhow::ensure!(!set.is_empty(), "no instruction pair fits a window of {} tokens", set.seq_len);
        Ok(PairSampler { set, micro_batch, seed })
    }

    pub fn batch<B: Backend>(&self, step: usize, micro: usize, device: &B::Device) -> Batch<B> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(((step as u64) << 16) | micro as u64);
        let rows: Vec<usize> = (0..self.micro_batch).map(|_| rng.random_range(0..self.set.len())).collect();
        self.set.batch(&rows, device, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

    fn ints<const D: usize>(t: Tensor<CpuBackend, D, Int>) -> Vec<i64> {
        t.into_data().convert::<i64>().to_vec().unwrap()
    }

    /// A pair's row is its prompt, completion and end; the loss sees the completion and the end
    /// only. A long prompt keeps its last half window, a long completion is cut at the window.
    #[test]
    fn a_pair_is_scored_on_its_completion_and_end_only() {
        let pairs = [
            Pair { prompt: vec![1, 2, 3], completion: vec![4, 5] },
            Pair { prompt: vec![9; 10], completion: vec![7; 20] },
        ];
        let rows = pair_rows(&pairs, 8, 0);
        assert_eq!(rows[0], (vec![1, 2, 3, 4, 5, 0], 3..6));
        assert_eq!(rows[1], ([vec![9; 4], vec![7; 5]].concat(), 4..9));
        let device = Default::default();
        let sampler = PairSampler::new(ScoredSet::new(rows, 8, 0), 3, 11).unwrap();
        let batch = sampler.batch::<CpuBackend>(5, 0, &device);
        let (inputs, targets) = (ints(batch.inputs), ints(batch.targets));
        let scored: Vec<usize> = ints(batch.scored.unwrap()).into_iter().map(|i| i as usize).collect();
        // Every scored position predicts a completion token or the end; every other target is
        // a prompt token or padding.
        for r in 0..3 {
            let row = &targets[r * 8..(r + 1) * 8];
            let short = inputs[r * 8] == 1;
            let expected: Vec<usize> =
                if short { (2..5).map(|t| r * 8 + t).collect() } else { (3..8).map(|t| r * 8 + t).collect() };
            let here: Vec<usize> = scored.iter().copied().filter(|i| i / 8 == r).collect();
            assert_eq!(here, expected, "row {r}: {row:?}");
        }
        // The same (seed, step, micro-batch) draws the same rows.
        let again = sampler.batch::<CpuBackend>(5, 0, &device);
        assert_eq!(ints(again.inputs), inputs);
    }
}
