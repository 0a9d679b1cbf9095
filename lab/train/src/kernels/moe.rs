//! The fused routing path on the CPU: dispatch of each token to its experts, the experts'
//! SwiGLU MLPs, the gated combine, and the backward pass of all three, on contiguous `f32`
//! slices.
//!
//! A [`Plan`] sorts the token-slots by expert (a counting sort, after capacity), so each
//! expert runs as dense matrix multiplies over a contiguous block of rows and the combine adds
//! a token's slots in rank order. Work is split into fixed blocks of rows (never "one per
//! thread") and every sum has a fixed order, so results are bit-identical whatever the pool
//! size.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use super::cpu::{dot, sigmoid, simd, ROWS};
use super::gemm::{matmul, Mat};

/// Rows of one expert per parallel task.
const BLOCK: usize = 128;
/// [`Plan`]'s row of a slot dropped over capacity.
const DROPPED: usize = usize::MAX;

thread_local! {
    /// Per-thread scratch rows (gathered inputs, activations), reused across blocks and calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Per-row buffers of earlier calls (the saved projections, the backward pass's temporaries),
/// for reuse. Fresh allocations of their size come as new pages from the OS, faulted in one at a
/// time: at lab sizes that took longer than the experts' products.
static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
/// Buffers kept in [`POOL`]: the saved ones of a dozen MoE layers and a backward pass's.
const POOL_SIZE: usize = 40;

/// A buffer of `len` values left over from an earlier call: its contents are stale, so every
/// user writes each element before it reads it.
fn take(len: usize) -> Vec<f32> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let fit =
        pool.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
    let mut buf = fit.map(|i| pool.swap_remove(i)).unwrap_or_default();
    drop(pool);
    buf.resize(len, 0.0);
    buf
}

fn give(buffers: impl IntoIterator<Item = Vec<f32>>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    for b in buffers {
        if pool.len() < POOL_SIZE {
            pool.push(b);
        }
    }
}

/// Where every token-slot goes. Slot `i·k + j` is token `i`'s `j`-th choice; the kept slots
/// are laid out as rows, grouped by expert.
#[derive(Debug)]
pub struct Plan {
    top_k: usize,
    /// Slots sent to each expert, before capacity.
    pub routed: Vec<usize>,
    /// The experts that kept at least one slot, ascending: the ones that run.
    pub active: Vec<usize>,
    /// The slot of each row; active expert `a` owns rows `offsets[a]..offsets[a + 1]`, in
    /// queue order.
    slots: Vec<usize>,
    offsets: Vec<usize>,
    /// The row of each slot, or [`DROPPED`].
    row: Vec<usize>,
}

impl Plan {
    /// `experts: [n·k]`, each token's choices in rank order. With a `capacity`, an expert
    /// queues first choices before second choices, each in token order, and drops what
    /// overflows.
    pub fn new(experts: &[i64], n_experts: usize, top_k: usize, capacity: Option<usize>) -> Plan {
        let expert = |e: i64| {
            usize::try_from(e)
                .ok()
                .filter(|&e| e < n_experts)
                .unwrap_or_else(|| panic!("expert {e} out of 0..{n_experts}"))
        };
        let mut routed = vec![0; n_experts];
        experts.iter().for_each(|&e| routed[expert(e)] += 1);
        let kept: Vec<usize> = routed.iter().map(|&r| capacity.map_or(r, |c| r.min(c))).collect();
        let active: Vec<usize> = (0..n_experts).filter(|&e| kept[e] > 0).collect();
        let mut offsets = vec![0];
        let mut next = vec![0; n_experts];
        for &e in &active {
            next[e] = *offsets.last().unwrap();
            offsets.push(next[e] + kept[e]);
        }
        let end: Vec<usize> = (0..n_experts).map(|e| next[e] + kept[e]).collect();
        let mut slots = vec![0; *offsets.last().unwrap()];
        let mut row = vec![DROPPED; experts.len()];
        let tokens = experts.len() / top_k;
        for rank in 0..top_k {
            for slot in (0..tokens).map(|i| i * top_k + rank) {
                let e = expert(experts[slot]);
                if next[e] < end[e] {
                    slots[next[e]] = slot;
                    row[slot] = next[e];
                    next[e] += 1;
                }
            }
        }
        Plan { top_k, routed, active, slots, offsets, row }
    }

    fn tokens(&self) -> usize {
        self.row.len() / self.top_k
    }
    fn rows(&self) -> usize {
        self.slots.len()
    }
    /// Slots dropped over capacity.
    pub fn dropped(&self) -> usize {
        self.row.len() - self.rows()
    }
    /// Rows of active expert `a`.
    fn expert_rows(&self, a: usize) -> Range<usize> {
        self.offsets[a]..self.offsets[a + 1]
    }
    /// The parallel tasks: up to [`BLOCK`] rows of one expert each, in row order.
    fn blocks(&self) -> Vec<(usize, Range<usize>)> {
        let per_expert = (0..self.active.len()).flat_map(|a| {
            let rows = self.expert_rows(a);
            rows.clone().step_by(BLOCK).map(move |r0| (a, r0..(r0 + BLOCK).min(rows.end)))
        });
        per_expert.collect()
    }
    /// `x`'s rows for `rows` of the plan, into `xs`.
    fn gather(&self, x: &[f32], rows: Range<usize>, xs: &mut [f32]) {
        let d = xs.len() / rows.len();
        for (dst, &slot) in xs.chunks_mut(d).zip(&self.slots[rows]) {
            let token = slot / self.top_k;
            dst.copy_from_slice(&x[token * d..(token + 1) * d]);
        }
    }
}

/// One running expert's weights, row-major: gate `[d, h]`, up `[d, h]`, down `[h, d]`.
pub struct Expert<'a> {
    pub gate: &'a [f32],
    pub up: &'a [f32],
    pub down: &'a [f32],
}

impl<'a> Expert<'a> {
    /// The experts of weights stacked expert after expert (`count` of them).
    pub fn unstack(gate: &'a [f32], up: &'a [f32], down: &'a [f32], count: usize) -> Vec<Expert<'a>> {
        let size = gate.len() / count;
        gate.chunks(size)
            .zip(up.chunks(size))
            .zip(down.chunks(size))
            .map(|((gate, up), down)| Expert { gate, up, down })
            .collect()
    }
}

/// What the forward pass keeps for the backward pass, per row of the plan: the gate and up
/// projections `[rows, h]` and the expert outputs before gating `[rows, d]`.
#[derive(Debug, Clone)]
pub struct Saved {
    gate: Vec<f32>,
    up: Vec<f32>,
    y: Vec<f32>,
}

impl Saved {
    /// Hands the buffers back for reuse when no backward pass will read them.
    pub fn recycle(self) {
        give([self.gate, self.up, self.y]);
    }
}

/// Gradients of [`forward`]; those of the weights are stacked like the running experts'.
pub struct Grads {
    pub x: Vec<f32>,
    pub gates: Vec<f32>,
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    pub down: Vec<f32>,
}

/// `out_i = Σ_j gates[i, j] · expert_{e(i, j)}(x_i)` over token `i`'s kept slots, for
/// `x: [n, d]`, `gates: [n, k]` and `experts[a]` the weights of `plan.active[a]`.
pub fn forward(x: &[f32], gates: &[f32], plan: &Plan, experts: &[Expert]) -> (Vec<f32>, Saved) {
    let d = x.len() / plan.tokens();
    let h = experts[0].gate.len() / d;
    let rows = plan.rows();
    let (mut gate, mut up, mut y) = (take(rows * h), take(rows * h), take(rows * d));
    let blocks = plan.blocks();
    let tasks: Vec<_> = split(&mut gate, h, &blocks)
        .into_iter()
        .zip(split(&mut up, h, &blocks))
        .zip(split(&mut y, d, &blocks))
        .zip(&blocks)
        .collect();
    tasks.into_par_iter().for_each(|(((g, u), y), (a, rows))| {
        let w = &experts[*a];
        let b = rows.len();
        with_scratch(b * (d + h), |scratch| {
            let (xs, act) = scratch.split_at_mut(b * d);
            plan.gather(x, rows.clone(), xs);
            matmul(g, Mat::new(xs, b, d), Mat::new(w.gate, d, h), false);
            matmul(u, Mat::new(xs, b, d), Mat::new(w.up, d, h), false);
            simd(|| {
                for ((a, &g), &u) in act.iter_mut().zip(g.iter()).zip(u.iter()) {
                    *a = g * sigmoid(g) * u;
                }
            });
            matmul(y, Mat::new(act, b, h), Mat::new(w.down, h, d), false);
        });
    });
    let out = combine(gates, plan, &y, d);
    (out, Saved { gate, up, y })
}

/// Each token's gated sum of its kept rows of `y: [rows, d]`, in rank order.
fn combine(gates: &[f32], plan: &Plan, y: &[f32], d: usize) -> Vec<f32> {
    let k = plan.top_k;
    let mut out = vec![0f32; plan.tokens() * d];
    out.par_chunks_mut(d * ROWS).zip(gates.par_chunks(k * ROWS)).zip(plan.row.par_chunks(k * ROWS)).for_each(
        |((out, gates), rows)| {
            simd(|| {
                for ((out, gates), rows) in out.chunks_mut(d).zip(gates.chunks(k)).zip(rows.chunks(k)) {
                    for (&g, &r) in gates.iter().zip(rows).filter(|(_, &r)| r != DROPPED) {
                        out.iter_mut().zip(&y[r * d..(r + 1) * d]).for_each(|(o, &y)| *o += g * y);
                    }
                }
            })
        },
    );
    out
}

/// Gradients of [`forward`] given the output's gradient `dout: [n, d]`.
///
/// Per block of rows: `dy = gate · dout`, `da = dy·W_downᵀ`, SwiGLU's backward (into the saved
/// projections' buffers), `dxs = dg·W_gateᵀ + du·W_upᵀ`. Then each weight's gradient as one
/// product over its expert's rows (split by output rows, so no sum is split), and each token's
/// `dx` and gate gradients from its rows in rank order.
pub fn backward(x: &[f32], gates: &[f32], plan: &Plan, experts: &[Expert], saved: Saved, dout: &[f32]) -> Grads {
    let d = x.len() / plan.tokens();
    let h = experts[0].gate.len() / d;
    let rows = plan.rows();
    let Saved { gate: mut dg, up: mut du, y } = saved;
    let (mut xs, mut dy, mut act, mut dxs) = (take(rows * d), take(rows * d), take(rows * h), take(rows * d));
    let blocks = plan.blocks();
    let per_row = [(&mut dg, h), (&mut du, h), (&mut xs, d), (&mut dy, d), (&mut act, h), (&mut dxs, d)];
    let [dg_, du_, xs_, dy_, act_, dxs_] = per_row.map(|(buf, width)| split(buf, width, &blocks));
    let tasks: Vec<_> = dg_.into_iter().zip(du_).zip(xs_).zip(dy_).zip(act_).zip(dxs_).zip(&blocks).collect();
    tasks.into_par_iter().for_each(|((((((dg, du), xs), dy), act), dxs), (a, rows))| {
        let w = &experts[*a];
        let b = rows.len();
        plan.gather(x, rows.clone(), xs);
        for (dy, &slot) in dy.chunks_mut(d).zip(&plan.slots[rows.clone()]) {
            let (token, g) = (slot / plan.top_k, gates[slot]);
            dy.iter_mut().zip(&dout[token * d..(token + 1) * d]).for_each(|(dy, &o)| *dy = g * o);
        }
        with_scratch(b * h, |da| {
            matmul(da, Mat::new(dy, b, d), Mat::new(w.down, h, d).t(), false);
            // SwiGLU's backward, overwriting the saved projections with their gradients.
            simd(|| {
                for (((g, u), a), &da) in dg.iter_mut().zip(du.iter_mut()).zip(act.iter_mut()).zip(da.iter()) {
                    let s = sigmoid(*g);
                    *a = *g * s * *u;
                    let d_up = da * *g * s;
                    *g = da * *u * s * (1.0 + *g * (1.0 - s));
                    *u = d_up;
                }
            });
        });
        matmul(dxs, Mat::new(dg, b, h), Mat::new(w.gate, d, h).t(), false);
        matmul(dxs, Mat::new(du, b, h), Mat::new(w.up, d, h).t(), true);
    });
    let (gate, up, down) = weight_grads(plan, d, h, [&xs, &dg, &du, &act, &dy]);
    let (dx, dgates) = scatter_back(plan, &dxs, &y, dout, d);
    give([dg, du, y, xs, dy, act, dxs]);
    Grads { x: dx, gates: dgates, gate, up, down }
}

/// `dW_gate = xsᵀ·dg`, `dW_up = xsᵀ·du`, `dW_down = actᵀ·dy` per running expert, over its rows;
/// tasks split each gradient by [`BLOCK`] output rows.
fn weight_grads(plan: &Plan, d: usize, h: usize, [xs, dg, du, act, dy]: [&[f32]; 5]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n_active = plan.active.len();
    let (mut gate, mut up, mut down) =
        (vec![0f32; n_active * d * h], vec![0f32; n_active * d * h], vec![0f32; n_active * h * d]);
    // Each product `lhsᵀ·rhs`, with `lhs: [rows, width]` and `rhs: [rows, cols]` per plan row.
    let products = [(&mut gate, (xs, d), (dg, h)), (&mut up, (xs, d), (du, h)), (&mut down, (act, h), (dy, d))];
    let mut tasks = Vec::new();
    for (dst, lhs, rhs) in products {
        for (a, dst) in dst.chunks_mut(lhs.1 * rhs.1).enumerate() {
            for (i, dst) in dst.chunks_mut(BLOCK * rhs.1).enumerate() {
                tasks.push((a, i * BLOCK, lhs, rhs, dst));
            }
        }
    }
    tasks.into_par_iter().for_each(|(a, r0, (lhs, width), (rhs, cols), dst)| {
        let rows = plan.expert_rows(a);
        let m = rows.len();
        let lhs = Mat::new(&lhs[rows.start * width..rows.end * width], m, width).t().rows(r0..r0 + dst.len() / cols);
        matmul(dst, lhs, Mat::new(&rhs[rows.start * cols..rows.end * cols], m, cols), false);
    });
    (gate, up, down)
}

/// Each token's `dx` (the sum of its rows of `dxs`, in rank order) and gate gradients
/// (`dout_i · y_row`, zero for dropped slots).
fn scatter_back(plan: &Plan, dxs: &[f32], y: &[f32], dout: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let k = plan.top_k;
    let mut dx = vec![0f32; plan.tokens() * d];
    let mut dgates = vec![0f32; plan.row.len()];
    let chunks = dx
        .par_chunks_mut(d * ROWS)
        .zip(dgates.par_chunks_mut(k * ROWS))
        .zip(plan.row.par_chunks(k * ROWS))
        .zip(dout.par_chunks(d * ROWS));
    chunks.for_each(|(((dx, dgates), rows), dout)| {
        simd(|| {
            for (((dx, dgates), rows), dout) in
                dx.chunks_mut(d).zip(dgates.chunks_mut(k)).zip(rows.chunks(k)).zip(dout.chunks(d))
            {
                for (dgate, &r) in dgates.iter_mut().zip(rows).filter(|(_, &r)| r != DROPPED) {
                    let row = r * d..(r + 1) * d;
                    *dgate = dot(dout, &y[row.clone()]);
                    dx.iter_mut().zip(&dxs[row]).for_each(|(dx, &g)| *dx += g);
                }
            }
        })
    });
    (dx, dgates)
}

/// `buf: [rows, width]` cut into the blocks' disjoint row ranges (which tile it in order).
fn split<'a>(mut buf: &'a mut [f32], width: usize, blocks: &[(usize, Range<usize>)]) -> Vec<&'a mut [f32]> {
    blocks
        .iter()
        .map(|(_, rows)| {
            let (head, tail) = std::mem::take(&mut buf).split_at_mut(rows.len() * width);
            buf = tail;
            head
        })
        .collect()
}

fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut scratch = SCRATCH.take();
    scratch.resize(len.max(scratch.len()), 0.0);
    let r = f(&mut scratch[..len]);
    SCRATCH.set(scratch);
    r
}
