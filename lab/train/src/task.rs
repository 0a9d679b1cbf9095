//! The code task at a trial's final evaluation: greedy decoding of identifier completions
//! ([`codescale_data::task`]) with the model as it is, in batches of `rows` windows.

use burn::tensor::{Int, Tensor, TensorData};
use codescale_data::task::{Score, Task};

use crate::kernels::Kernels;
use crate::model::Transformer;

/// The model's exact-match score on `task`: each step feeds every example still decoding one
/// window and takes the most likely next token at its last position.
pub fn exact_match<B: Kernels>(model: &Transformer<B>, task: &Task, device: &B::Device, rows: usize) -> Score {
    task.score(|_, windows| {
        let mut next = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(rows.max(1)) {
            let time = chunk[0].len();
            let ids: Vec<i32> = chunk.iter().flatten().map(|&t| t as i32).collect();
            let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [chunk.len(), time]), device);
            let (logits, _) = model.forward(tokens);
            let vocab = logits.dims()[1];
            let last = logits.reshape([chunk.len(), time, vocab]).narrow(1, time - 1, 1).reshape([chunk.len(), vocab]);
            let best = last.argmax(1).into_data().convert::<i64>().to_vec::<i64>().expect("token ids");
            next.extend(best.into_iter().map(|t| t as u16));
        }
        next
    })
}
