//! The machine's fused multiply-add ceiling: THREADS threads each run independent FMA chains
//! on registers only (no memory traffic), at the widest vector width the CPU offers (AVX-512,
//! else AVX2). Prints GFLOP/s; `bench/throughput.sh` sets the gemm peak and each side's step
//! against it, which says how much a faster matrix multiply could still gain.
//!
//!     cargo build --workspace --examples && target/debug/examples/fma_peak THREADS

use std::time::Instant;

/// Independent accumulators per thread: enough to cover the FMA latency (4–5 cycles) on two
/// pipes, few enough to stay in registers.
const CHAINS: usize = 10;
const ITERATIONS: usize = 400_000_000;

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).expect("usage: fma_peak THREADS");
    let (lanes, run) = chains();
    let t0 = Instant::now();
    std::thread::scope(|s| (0..threads).for_each(|_| _ = s.spawn(run)));
    let seconds = t0.elapsed().as_secs_f64();
    let flops = (threads * ITERATIONS * CHAINS * lanes * 2) as f64;
    println!("{:.1}", flops / seconds / 1e9);
}

/// The f32 lanes of the widest FMA this CPU runs, and a thread's work at that width.
#[cfg(target_arch = "x86_64")]
fn chains() -> (usize, fn()) {
    if std::is_x86_feature_detected!("avx512f") {
        (16, || unsafe { avx512() })
    } else if std::is_x86_feature_detected!("fma") {
        (8, || unsafe { avx2() })
    } else {
        panic!("no FMA on this CPU")
    }
}
#[cfg(not(target_arch = "x86_64"))]
fn chains() -> (usize, fn()) {
    panic!("fma_peak measures x86-64 only")
}

/// One macro, two widths: the loop is the same, only the register type and intrinsics differ.
macro_rules! fma_loop {
    ($name:ident, $feature:literal, $set1:ident, $fmadd:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $name() {
            use std::arch::x86_64::*;
            // Through black_box, in and out, so the compiler can neither fold the chains, merge
            // them, nor drop them.
            let (m, c) = ($set1(std::hint::black_box(0.999_999_9)), $set1(std::hint::black_box(1e-7)));
            let mut acc: [_; CHAINS] = std::array::from_fn(|i| $set1(std::hint::black_box(i as f32)));
            for _ in 0..ITERATIONS {
                for a in acc.iter_mut() {
                    *a = $fmadd(*a, m, c);
                }
            }
            std::hint::black_box(acc);
        }
    };
}
fma_loop!(avx2, "avx2,fma", _mm256_set1_ps, _mm256_fmadd_ps);
fma_loop!(avx512, "avx512f", _mm512_set1_ps, _mm512_fmadd_ps);
