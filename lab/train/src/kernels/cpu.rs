//! Fused CPU kernels on contiguous `f32` slices: the forward and backward of causal attention,
//! RMSNorm, SwiGLU, rotary embeddings and cross-entropy, each one pass over memory instead of
//! burn's chain of elementwise ops (each of which allocates, walks strides and is recorded
//! for autodiff).
//!
//! Work is split into fixed-size pieces (never "one per thread"), and partial sums are added
//! in piece order, so results are bit-identical whatever the pool size.

use std::cell::RefCell;

use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// Rows per parallel task in the row-wise kernels.
pub(super) const ROWS: usize = 32;
/// Query rows per block in attention: the causal mask lets block `[r0, r1)` stop at key `r1`.
const BLOCK: usize = 64;

thread_local! {
    /// Per-thread score matrices for attention (two `t × t` buffers), reused across calls so
    /// that no large allocation (and its page faults) happens per head.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `e^x` to about 1 ulp, branch-free so loops over it vectorise (libm's `expf` is a call per
/// element). Cephes' polynomial; rounding by the 1.5·2²³ trick works on plain SSE2.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    p = p * r * r + r + 1.0;
    // 2ⁿ from t's own bits (t = 1.5·2²³ + n holds n in its mantissa): integer ops that
    // vectorise, where `n as i32` would saturate element by element.
    let k = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    p * f32::from_bits(((k + 127) as u32) << 23)
}

#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Runs `f` compiled for AVX-512 or AVX2 when this CPU has them (checked at run time, cached by
/// std): the crate is built for baseline x86-64, whose 4-lane vectors leave most of the width
/// idle. Only what LLVM inlines into the `#[target_feature]` functions below is widened; objdump
/// shows that is the SwiGLU loops today, while the other closures are called, not inlined, and
/// run at baseline width. The lane order of every reduction is fixed and Rust never fuses a
/// multiply and an add on its own, so the result does not depend on which path runs.
#[inline(always)]
pub(super) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { with_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

// Whatever LLVM inlines into these is compiled for their features.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Reductions run in sixteen lanes (a fixed order, so they vectorise and stay deterministic).
#[inline(always)]
fn lanes(a: &[f32], b: &[f32], init: f32, step: impl Fn(f32, f32, f32) -> f32, merge: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] = step(acc[i], x[i], y[i]);
        }
    }
    let tail = ra.iter().zip(rb).fold(init, |m, (&x, &y)| step(m, x, y));
    acc.into_iter().fold(tail, merge)
}

#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    lanes(a, b, 0.0, |acc, x, y| acc + x * y, |a, b| a + b)
}

#[inline(always)]
fn max(a: &[f32]) -> f32 {
    lanes(a, a, f32::NEG_INFINITY, |m, x, _| m.max(x), f32::max)
}

/// `x ← e^(x − shift)` over `row`; returns the new sum.
#[inline(always)]
fn exp_shifted(row: &mut [f32], shift: f32) -> f32 {
    row.iter_mut().for_each(|x| *x = exp(*x - shift));
    lanes(row, row, 0.0, |acc, x, _| acc + x, |a, b| a + b)
}

// ---------------------------------------------------------------- RMSNorm

/// `y = x · r · γ` with `r = 1/√(mean(x²) + ε)` per row of `x: [n, d]`; returns `(y, r)`.
pub fn rms_norm(x: &[f32], gamma: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let mut y = vec![0f32; x.len()];
    let mut inv = vec![0f32; x.len() / d];
    y.par_chunks_mut(d * ROWS).zip(inv.par_chunks_mut(ROWS)).zip(x.par_chunks(d * ROWS)).for_each(|((y, inv), x)| {
        simd(|| {
            for ((y, r), x) in y.chunks_mut(d).zip(inv.iter_mut()).zip(x.chunks(d)) {
                *r = 1.0 / (dot(x, x) / d as f32 + eps).sqrt();
                for ((y, x), g) in y.iter_mut().zip(x).zip(gamma) {
                    *y = x * *r * g;
                }
            }
        })
    });
    (y, inv)
}

/// Gradients `(dx, dγ)` of [`rms_norm`]: `dx = r·(γ·dy) − x·r³·mean(γ·dy·x)`, `dγ = Σ dy·x·r`.
pub fn rms_norm_backward(x: &[f32], gamma: &[f32], inv: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let mut dx = vec![0f32; x.len()];
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(d * ROWS)
        .zip(x.par_chunks(d * ROWS))
        .zip(dy.par_chunks(d * ROWS))
        .zip(inv.par_chunks(ROWS))
        .map(|(((dx, x), dy), inv)| {
            simd(|| {
                let mut dgamma = vec![0f32; d];
                let mut gdy = vec![0f32; d];
                for (((dx, x), dy), &r) in dx.chunks_mut(d).zip(x.chunks(d)).zip(dy.chunks(d)).zip(inv) {
                    for ((o, a), g) in gdy.iter_mut().zip(dy).zip(gamma) {
                        *o = a * g;
                    }
                    let c = dot(&gdy, x) * r * r * r / d as f32;
                    for (((dx, x), g), (dg, dy)) in dx.iter_mut().zip(x).zip(&gdy).zip(dgamma.iter_mut().zip(dy)) {
                        *dx = r * g - x * c;
                        *dg += dy * x * r;
                    }
                }
                dgamma
            })
        })
        .collect();
    (dx, sum_rows(partials, d))
}

fn sum_rows(partials: Vec<Vec<f32>>, d: usize) -> Vec<f32> {
    partials.into_iter().fold(vec![0f32; d], |mut acc, p| {
        acc.iter_mut().zip(p).for_each(|(a, p)| *a += p);
        acc
    })
}

// ---------------------------------------------------------------- SwiGLU

const CHUNK: usize = 4096;

/// `silu(g) · u`, elementwise.
pub fn swiglu(g: &[f32], u: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; g.len()];
    y.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).zip(u.par_chunks(CHUNK)).for_each(|((y, g), u)| {
        simd(|| {
            for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
                *y = g * sigmoid(g) * u;
            }
        })
    });
    y
}

/// `(dg, du)` of [`swiglu`]: `du = dy·silu(g)`, `dg = dy·u·σ(g)·(1 + g·(1 − σ(g)))`.
pub fn swiglu_backward(g: &[f32], u: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut dg = vec![0f32; g.len()];
    let mut du = vec![0f32; g.len()];
    dg.par_chunks_mut(CHUNK)
        .zip(du.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)).zip(dy.par_chunks(CHUNK)))
        .for_each(|((dg, du), ((g, u), dy))| {
            simd(|| {
                for ((dg, du), ((&g, &u), &dy)) in dg.iter_mut().zip(du.iter_mut()).zip(g.iter().zip(u).zip(dy)) {
                    let s = sigmoid(g);
                    *du = dy * g * s;
                    *dg = dy * u * s * (1.0 + g * (1.0 - s));
                }
            })
        });
    (dg, du)
}

// ---------------------------------------------------------------- Rotary

/// Rotary embedding in the rotate-half form on `x: [b, t, h, hd]` with tables `[t, hd/2]`:
/// `(x₁, x₂) ↦ (x₁·cos − x₂·sin, x₂·cos + x₁·sin)`. `inverse` rotates back, which is also the
/// backward pass (a rotation's transpose is its inverse).
pub fn rotary(x: &[f32], cos: &[f32], sin: &[f32], t: usize, h: usize, hd: usize, inverse: bool) -> Vec<f32> {
    let half = hd / 2;
    let sign = if inverse { -1.0 } else { 1.0 };
    let mut y = vec![0f32; x.len()];
    // One task per (batch, position): h heads share that position's table row.
    y.par_chunks_mut(h * hd).zip(x.par_chunks(h * hd)).enumerate().for_each(|(row, (y, x))| {
        simd(|| {
            let pos = row % t;
            let (c, s) = (&cos[pos * half..(pos + 1) * half], &sin[pos * half..(pos + 1) * half]);
            for (y, x) in y.chunks_mut(hd).zip(x.chunks(hd)) {
                let (x1, x2) = x.split_at(half);
                let (y1, y2) = y.split_at_mut(half);
                for i in 0..half {
                    y1[i] = x1[i] * c[i] - sign * x2[i] * s[i];
                    y2[i] = x2[i] * c[i] + sign * x1[i] * s[i];
                }
            }
        })
    });
    y
}

// ---------------------------------------------------------------- Cross-entropy

/// Mean of `logsumexp(row) − row[target]` over rows of `logits: [n, v]`; returns the loss and
/// each row's log-sum-exp (kept for the backward pass).
pub fn cross_entropy(logits: &[f32], targets: &[i64], v: usize) -> (f32, Vec<f32>) {
    let mut lse = vec![0f32; targets.len()];
    let partials: Vec<f64> = lse
        .par_chunks_mut(ROWS)
        .zip(logits.par_chunks(v * ROWS))
        .zip(targets.par_chunks(ROWS))
        .map(|((lse, logits), targets)| {
            simd(|| {
                let mut sum = 0f64;
                for ((l, row), &t) in lse.iter_mut().zip(logits.chunks(v)).zip(targets) {
                    *l = log_sum_exp(row);
                    sum += (*l - row[t as usize]) as f64;
                }
                sum
            })
        })
        .collect();
    ((partials.iter().sum::<f64>() / targets.len() as f64) as f32, lse)
}

/// Each row's cross-entropy, `lse(row) − row[target]`, as [`cross_entropy`] computes it.
pub fn token_losses(logits: &[f32], targets: &[i64], v: usize) -> Vec<f32> {
    let mut out = vec![0f32; targets.len()];
    out.par_chunks_mut(ROWS).zip(logits.par_chunks(v * ROWS)).zip(targets.par_chunks(ROWS)).for_each(
        |((out, logits), targets)| {
            simd(|| {
                for ((o, row), &t) in out.iter_mut().zip(logits.chunks(v)).zip(targets) {
                    *o = log_sum_exp(row) - row[t as usize];
                }
            })
        },
    );
    out
}

fn log_sum_exp(row: &[f32]) -> f32 {
    let m = max(row);
    let s = lanes(row, row, 0.0, |acc, x, _| acc + exp(x - m), |a, b| a + b);
    m + s.ln()
}

/// `d logits = g/n · (softmax − onehot(target))`.
pub fn cross_entropy_backward(logits: &[f32], targets: &[i64], lse: &[f32], v: usize, g: f32) -> Vec<f32> {
    let scale = g / targets.len() as f32;
    let mut dl = vec![0f32; logits.len()];
    dl.par_chunks_mut(v * ROWS)
        .zip(logits.par_chunks(v * ROWS))
        .zip(targets.par_chunks(ROWS).zip(lse.par_chunks(ROWS)))
        .for_each(|((dl, logits), (targets, lse))| {
            simd(|| {
                for ((d, row), (&t, &l)) in dl.chunks_mut(v).zip(logits.chunks(v)).zip(targets.iter().zip(lse)) {
                    for (d, &x) in d.iter_mut().zip(row) {
                        *d = exp(x - l) * scale;
                    }
                    d[t as usize] -= scale;
                }
            })
        });
    dl
}

// ---------------------------------------------------------------- Causal attention

/// Shape of attention inputs, all `[batch, time, heads, head_dim]` (the projections' natural
/// layout, so no transposes are needed on either side).
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub batch: usize,
    pub time: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Heads {
    fn row_stride(&self) -> isize {
        (self.heads * self.head_dim) as isize
    }
    /// Offset of position 0 of head `bh % heads` in batch `bh / heads`.
    fn base(&self, bh: usize) -> usize {
        ((bh / self.heads) * self.time * self.heads + bh % self.heads) * self.head_dim
    }
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// A raw pointer that tasks writing disjoint heads may share.
#[derive(Clone, Copy)]
struct Out(*mut f32);
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// A method, not a field access, so closures capture the `Sync` wrapper, not the pointer.
    fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// `dst[m×n] = beta · a[m×k] · b[k×n]` with row/column strides, single-threaded (parallelism is
/// over heads).
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: *const f32,
    b_rs: isize,
    b_cs: isize,
    beta: f32,
) {
    gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs,
        false,
        a,
        a_cs,
        a_rs,
        b,
        b_cs,
        b_rs,
        0.0,
        beta,
        false,
        false,
        false,
        Parallelism::None,
    );
}

/// Blocks of query rows `[r0, r1)`.
fn blocks(t: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..t).step_by(BLOCK).map(move |r0| (r0, block_end(r0, t)))
}

/// The end `r1` of the block holding row `i`: the scores of row `i` are computed up to key `r1`.
#[inline(always)]
fn block_end(i: usize, t: usize) -> usize {
    (i / BLOCK * BLOCK + BLOCK).min(t)
}

/// `s[i, j] = scale · q_i·k_j` for `j < r1` of each row block (keys past the block are never
/// needed under the causal mask).
unsafe fn scores(s: &mut [f32], q: *const f32, k: *const f32, sh: &Heads) {
    let (t, rs) = (sh.time, sh.row_stride());
    for (r0, r1) in blocks(t) {
        matmul(
            r1 - r0,
            r1,
            sh.head_dim,
            s.as_mut_ptr().add(r0 * t),
            t as isize,
            q.offset(r0 as isize * rs),
            rs,
            1,
            k,
            1,
            rs,
            sh.scale(),
        );
    }
}

/// Causal softmax, in place, of each row of the scores `p: [t, t]` (row `i` keeps keys `0..=i`
/// and is zeroed up to its block's end); writes each row's log-sum-exp.
#[inline(always)]
fn causal_softmax(p: &mut [f32], lse: &mut [f32], t: usize) {
    for (i, l) in lse.iter_mut().enumerate() {
        let r1 = block_end(i, t);
        let (live, masked) = p[i * t..i * t + r1].split_at_mut(i + 1);
        let m = max(live);
        let sum = exp_shifted(live, m);
        let inv = 1.0 / sum;
        live.iter_mut().for_each(|x| *x *= inv);
        masked.fill(0.0);
        *l = m + sum.ln();
    }
}

/// Rebuilds the probabilities `p` from the scores and log-sum-exp, and turns `ds` (holding
/// `dO·Vᵀ`) into the scores' gradient `P ∘ (dO·Vᵀ − rowsum(dO ∘ O))`.
#[inline(always)]
fn score_gradients(
    p: &mut [f32],
    ds: &mut [f32],
    lse: &[f32],
    dout: &[f32],
    out: &[f32],
    row_stride: usize,
    hd: usize,
) {
    let t = lse.len();
    for (i, &l) in lse.iter().enumerate() {
        let r1 = block_end(i, t);
        let row = i * row_stride;
        let delta = dot(&dout[row..row + hd], &out[row..row + hd]);
        let (p_live, p_masked) = p[i * t..i * t + r1].split_at_mut(i + 1);
        let (ds_live, ds_masked) = ds[i * t..i * t + r1].split_at_mut(i + 1);
        for (p, ds) in p_live.iter_mut().zip(ds_live.iter_mut()) {
            *p = exp(*p - l);
            *ds = *p * (*ds - delta);
        }
        p_masked.fill(0.0);
        ds_masked.fill(0.0);
    }
}

/// Causal softmax attention. Returns the output `[b, t, h, hd]` and the log-sum-exp of every
/// score row `[b·h, t]`, from which the backward pass rebuilds the probabilities.
pub fn attention(q: &[f32], k: &[f32], v: &[f32], sh: Heads) -> (Vec<f32>, Vec<f32>) {
    let t = sh.time;
    let mut out = vec![0f32; q.len()];
    let mut lse = vec![0f32; sh.batch * sh.heads * t];
    let dst = Out(out.as_mut_ptr());
    lse.par_chunks_mut(t).enumerate().for_each(|(bh, lse)| {
        let base = sh.base(bh);
        let mut scratch = SCRATCH.take();
        let p = &mut scratch.0;
        p.resize(t * t, 0.0);
        // SAFETY: every head reads its own rows of q, k, v and writes its own rows of out.
        unsafe { scores(p, q.as_ptr().add(base), k.as_ptr().add(base), &sh) };
        simd(|| causal_softmax(p, lse, t));
        let rs = sh.row_stride();
        for (r0, r1) in blocks(t) {
            unsafe {
                let out = dst.at(base).offset(r0 as isize * rs);
                matmul(
                    r1 - r0,
                    sh.head_dim,
                    r1,
                    out,
                    rs,
                    p.as_ptr().add(r0 * t),
                    t as isize,
                    1,
                    v.as_ptr().add(base),
                    rs,
                    1,
                    1.0,
                );
            }
        }
        SCRATCH.set(scratch);
    });
    (out, lse)
}

/// Gradients `(dq, dk, dv)` of [`attention`] given its output and log-sum-exp:
/// `dV = Pᵀ·dO`, `dS = P ∘ (dO·Vᵀ − rowsum(dO ∘ O))`, `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &[f32],
    lse: &[f32],
    dout: &[f32],
    sh: Heads,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (t, hd, rs) = (sh.time, sh.head_dim, sh.row_stride());
    let (mut dq, mut dk, mut dv) = (vec![0f32; q.len()], vec![0f32; q.len()], vec![0f32; q.len()]);
    let (dq_ptr, dk_ptr, dv_ptr) = (Out(dq.as_mut_ptr()), Out(dk.as_mut_ptr()), Out(dv.as_mut_ptr()));
    lse.par_chunks(t).enumerate().for_each(|(bh, lse)| {
        let base = sh.base(bh);
        let mut scratch = SCRATCH.take();
        let (p, ds) = (&mut scratch.0, &mut scratch.1);
        p.resize(t * t, 0.0);
        ds.resize(t * t, 0.0);
        let (q, k, v) = unsafe { (q.as_ptr().add(base), k.as_ptr().add(base), v.as_ptr().add(base)) };
        let (o, dout) = (&out[base..], &dout[base..]);
        unsafe {
            scores(p, q, k, &sh);
            // dP = dO·Vᵀ, blockwise like the scores.
            for (r0, r1) in blocks(t) {
                matmul(
                    r1 - r0,
                    r1,
                    hd,
                    ds.as_mut_ptr().add(r0 * t),
                    t as isize,
                    dout.as_ptr().offset(r0 as isize * rs),
                    rs,
                    1,
                    v,
                    1,
                    rs,
                    1.0,
                );
            }
        }
        simd(|| score_gradients(p, ds, lse, dout, o, rs as usize, hd));
        let ld = t as isize;
        unsafe {
            let (dq, dk, dv) = (dq_ptr.at(base), dk_ptr.at(base), dv_ptr.at(base));
            for (r0, r1) in blocks(t) {
                let at = r0 as isize * rs;
                // dQ rows r0..r1 need keys 0..r1.
                matmul(r1 - r0, hd, r1, dq.offset(at), rs, ds.as_ptr().add(r0 * t), ld, 1, k, rs, 1, sh.scale());
                // dK and dV rows r0..r1 (keys) need queries r0..t; (dS)ᵀ and Pᵀ are read by
                // swapping their strides.
                let tail = r0 * t + r0;
                matmul(
                    r1 - r0,
                    hd,
                    t - r0,
                    dk.offset(at),
                    rs,
                    ds.as_ptr().add(tail),
                    1,
                    ld,
                    q.offset(at),
                    rs,
                    1,
                    sh.scale(),
                );
                matmul(
                    r1 - r0,
                    hd,
                    t - r0,
                    dv.offset(at),
                    rs,
                    p.as_ptr().add(tail),
                    1,
                    ld,
                    dout.as_ptr().offset(at),
                    rs,
                    1,
                    1.0,
                );
            }
        }
        SCRATCH.set(scratch);
    });
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_a_few_ulp() {
        for i in -8000..8000 {
            let x = i as f32 / 100.0;
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 3e-7, "exp({x}) = {a}, libm {b}");
        }
    }
}
