//! Time of each fused CPU kernel, forward and backward, at the shapes of the throughput
//! benchmark's d128-l4 step (micro-batch 16 × 256 tokens), against burn's composed ops; and of
//! a mixture-of-experts MLP layer against the dense MLP with the same active parameters.
//!
//!     cargo bench -p codescale-train --bench kernels [-- THREADS]

use std::time::Instant;

use burn::backend::{flex::FlexDevice, Autodiff, Flex};
use burn::tensor::{Distribution, Int, Tensor};
use codescale_core::{Arch, DataSpec, ModelSpec, TrialSpec};
use codescale_train::init::Init;
use codescale_train::kernels::{composed, rotary_tables, Kernels};
use codescale_train::model::SwiGlu;
use codescale_train::moe::MoeMlp;

type Ad = Autodiff<Flex>;

fn random<const D: usize>(shape: [usize; D]) -> Tensor<Ad, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &FlexDevice).require_grad()
}

/// Median milliseconds of forward + backward of `f` over a few repetitions.
fn time<const D: usize, const N: usize>(
    inputs: &[Tensor<Ad, D>; N],
    f: impl Fn([Tensor<Ad, D>; N]) -> Tensor<Ad, D>,
) -> (f64, f64) {
    let mut fwd = Vec::new();
    let mut bwd = Vec::new();
    for _ in 0..7 {
        let leaves = inputs.clone().map(|t| t.detach().require_grad());
        let t0 = Instant::now();
        let y = f(leaves);
        let _ = y.clone().inner().into_data();
        fwd.push(t0.elapsed().as_secs_f64() * 1e3);
        let t1 = Instant::now();
        let _grads = y.sum().backward();
        bwd.push(t1.elapsed().as_secs_f64() * 1e3);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(fwd), median(bwd))
}

fn row(name: &str, fused: (f64, f64), composed: (f64, f64)) {
    println!(
        "{name:<16} {:>9.2} {:>9.2} {:>11.2} {:>11.2} {:>7.1}×",
        fused.0,
        fused.1,
        composed.0,
        composed.1,
        (composed.0 + composed.1) / (fused.0 + fused.1)
    );
}

fn main() {
    let threads = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2);
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    let (b, t, h, hd, d, ff, v) = (16, 256, 4, 32, 128, 352, 256);
    println!("{threads} threads; milliseconds per call (median of 7)");
    println!(
        "{:<16} {:>9} {:>9} {:>11} {:>11} {:>8}",
        "op", "fused fwd", "fused bwd", "burn fwd", "burn bwd", "speedup"
    );
    let qkv = [random([b, t, h, hd]), random([b, t, h, hd]), random([b, t, h, hd])];
    row(
        "attention",
        time(&qkv, |[q, k, v]| Ad::causal_attention(q, k, v)),
        time(&qkv, |[q, k, v]| composed::causal_attention(q, k, v)),
    );
    let gamma = random([d]);
    let x = [random([b * t, d])];
    row(
        "rms_norm",
        time(&x, |[x]| Ad::rms_norm(x, gamma.clone())),
        time(&x, |[x]| composed::rms_norm(x, gamma.clone())),
    );
    let gu = [random([b * t, ff]), random([b * t, ff])];
    row("swiglu", time(&gu, |[g, u]| Ad::swiglu(g, u)), time(&gu, |[g, u]| composed::swiglu(g, u)));
    let (cos, sin) = rotary_tables(t, hd);
    let table = |v: Vec<f32>| Tensor::<Ad, 1>::from_floats(v.as_slice(), &FlexDevice).reshape([t, hd / 2]);
    let (cos, sin) = (table(cos), table(sin));
    let x = [random([b, t, h, hd])];
    row(
        "rotary",
        time(&x, |[x]| Ad::rotary(x, cos.clone(), sin.clone())),
        time(&x, |[x]| composed::rotary(x, cos.clone(), sin.clone())),
    );
    for (m, k, n) in [(4096, 128, 128), (4096, 128, 352), (4096, 352, 128), (128, 4096, 352)] {
        let a = Tensor::<Flex, 2>::random([m, k], Distribution::Normal(0.0, 1.0), &FlexDevice);
        let w = Tensor::<Flex, 2>::random([k, n], Distribution::Normal(0.0, 1.0), &FlexDevice);
        let mut times = Vec::new();
        for _ in 0..30 {
            let t0 = Instant::now();
            let _ = a.clone().matmul(w.clone());
            times.push(t0.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let dt = times[times.len() / 2];
        println!("matmul {m}×{k}·{k}×{n}: {:.3} ms, {:.0} GFLOP/s", dt * 1e3, 2.0 * (m * n * k) as f64 / dt / 1e9);
    }
    for (m, k, n) in [(4096, 128, 128), (4096, 128, 352), (4096, 352, 128)] {
        let x = [random([m, k])];
        let w = random([k, n]);
        let (f, b) = time(&x, |[x]| x.matmul(w.clone()));
        let flops = 2.0 * (m * n * k) as f64;
        println!(
            "autodiff matmul {m}×{k}·{k}×{n}: fwd {f:.3} ms ({:.0} GFLOP/s), bwd {b:.3} ms ({:.0} GFLOP/s)",
            flops / f / 1e6,
            2.0 * flops / b / 1e6
        );
    }
    let targets = Tensor::<Ad, 1, Int>::from_ints(
        (0..b * t).map(|i| (i * 7 % v) as i32).collect::<Vec<_>>().as_slice(),
        &FlexDevice,
    );
    let logits = [random([b * t, v])];
    row(
        "cross_entropy",
        time(&logits, |[l]| Ad::cross_entropy(l, targets.clone()).reshape([1, 1])),
        time(&logits, |[l]| composed::cross_entropy(l, targets.clone()).reshape([1, 1])),
    );
    mlp_layers(b * t);
}

/// The MLP layer of d128-l4: dense, and MoE with top-1 of 4 experts of the same width or top-2
/// of 8 experts of half the width (equal active parameters), forward and backward.
fn mlp_layers(tokens: usize) {
    let x = [random([tokens, 128])];
    let dense = SwiGlu::<Ad>::new(&mut Init::new(0, &FlexDevice), 128, 352, 0.02);
    let (f, b) = time(&x, |[x]| dense.forward(x));
    println!("{:<16} {:>9} {:>9} {:>9}", "mlp layer", "fwd", "bwd", "÷ dense");
    println!("{:<16} {f:>9.2} {b:>9.2} {:>9.2}", "dense", 1.0);
    for (top_k, n_experts) in [(1, 4), (2, 8)] {
        let spec = TrialSpec {
            data: DataSpec { language: Some("python".into()), ..Default::default() },
            model: ModelSpec {
                name: Some("d128-l4".into()),
                arch: Some(Arch::Moe),
                n_experts: Some(n_experts),
                top_k: Some(top_k),
                d_expert: Some(352 / top_k),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = spec.resolve().unwrap();
        let moe_config = config.model_config().moe.expect("an MoE trial");
        let moe = MoeMlp::<Ad>::new(&mut Init::new(0, &FlexDevice), config.model.d_model, &moe_config, 0.02);
        let (mf, mb) = time(&x, |[x]| {
            let (y, aux, _) = moe.forward(x);
            y + aux.reshape([1, 1])
        });
        println!("{:<16} {mf:>9.2} {mb:>9.2} {:>9.2}", format!("moe top-{top_k}"), (mf + mb) / (f + b));
    }
}
