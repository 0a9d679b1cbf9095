//! The machine's gemm throughput at one dense model's shapes: every projection product of a
//! training step at micro-batch 16 × 256 (forward, and both products of each backward pass),
//! through the trainer's own [`product`], timed alone back to back. Prints GFLOP/s (median of
//! 5 steps' worth); `bench/throughput.sh` divides a step's achieved GFLOP/s by it.
//!
//!     cargo build --workspace --examples && target/debug/examples/gemm_peak D LAYERS THREADS

use std::time::Instant;

use codescale_core::shape::Shape;
use codescale_train::kernels::gemm::{product, Mat};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("D LAYERS THREADS")).collect();
    let [d, layers, threads] = args[..] else { panic!("usage: gemm_peak D LAYERS THREADS") };
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    let (rows, vocab, ff) = (16 * 256, 256, Shape::new(d, layers).d_ff);
    // (k, n) of each weight a step multiplies by: q, k, v, out; gate, up; down; the head.
    let per_layer = [(d, d), (d, d), (d, d), (d, d), (d, ff), (d, ff), (ff, d)];
    let weights: Vec<(usize, usize)> = (0..layers).flat_map(|_| per_layer).chain([(d, vocab)]).collect();
    let fill = |n: usize| (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect::<Vec<f32>>();
    let data: Vec<[Vec<f32>; 3]> =
        weights.iter().map(|&(k, n)| [fill(rows * k), fill(k * n), fill(rows * n)]).collect();
    let step = || {
        for (&(k, n), [x, w, dy]) in weights.iter().zip(&data) {
            let (x, w, dy) = (Mat::new(x, rows, k), Mat::new(w, k, n), Mat::new(dy, rows, n));
            std::hint::black_box((product(x, w), product(dy, w.t()), product(x.t(), dy)));
        }
    };
    step();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            step();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let flops: usize = weights.iter().map(|&(k, n)| 3 * 2 * rows * k * n).sum();
    println!("{:.1}", flops as f64 / times[2] / 1e9);
}
