//! [`Kernels`] on Flex (forward only: evaluation) and on `Autodiff<Flex>` (training), where
//! each fused op is one autodiff node whose backward pass is a fused kernel too.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use std::sync::Arc;

use burn::tensor::{Int, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use burn_flex::FlexTensor;

use super::cpu::{self, Heads};
use super::gemm::{self, Mat};
use super::moe::{self, Expert, Plan};
use super::{ExpertWeights, Kernels, Routed, RMS_EPS};

type Ad = Autodiff<Flex>;
type AdTensor = FloatTensor<Ad>;

fn host(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("fused kernels take contiguous f32 tensors")
}

fn flex(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

fn heads(shape: &Shape) -> Heads {
    Heads { batch: shape[0], time: shape[1], heads: shape[2], head_dim: shape[3] }
}

fn ints<B: Backend, const D: usize>(t: Tensor<B, D, Int>) -> Vec<i64> {
    t.into_data().iter::<i64>().collect()
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// The host tensor of a Flex tensor, contiguous (copied only when it is not already).
fn inner<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
    prim(t).to_contiguous()
}

// Forward passes on contiguous host tensors, shared by inference (Flex) and training
// (Autodiff<Flex>); each returns its output and what its backward pass keeps.

/// `x·w` for `x: [m, k]`, `w: [k, n]`.
fn project(x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let ([m, k], n) = (dims2(x), dims2(w)[1]);
    flex(gemm::product(Mat::new(host(x), m, k), Mat::new(host(w), k, n)), [m, n])
}

fn dims2(t: &FlexTensor) -> [usize; 2] {
    let shape = t.shape();
    [shape[0], shape[1]]
}

/// Output and log-sum-exp `[b·h, t]`.
fn attention(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor) -> (FlexTensor, FlexTensor) {
    let sh = heads(&q.shape());
    let (out, lse) = cpu::attention(host(q), host(k), host(v), sh);
    (flex(out, q.shape()), flex(lse, [sh.batch * sh.heads, sh.time]))
}

/// Output and 1/rms per row.
fn rms_norm(x: &FlexTensor, gamma: &FlexTensor) -> (FlexTensor, FlexTensor) {
    let (y, inv) = cpu::rms_norm(host(x), host(gamma), RMS_EPS);
    let rows = inv.len();
    (flex(y, x.shape()), flex(inv, [rows]))
}

fn swiglu(g: &FlexTensor, u: &FlexTensor) -> FlexTensor {
    flex(cpu::swiglu(host(g), host(u)), g.shape())
}

/// Forward, or with `inverse` the backward pass (the rotation back).
fn rotary(x: &FlexTensor, cos: &FlexTensor, sin: &FlexTensor, inverse: bool) -> FlexTensor {
    let sh = heads(&x.shape());
    flex(cpu::rotary(host(x), host(cos), host(sin), sh.time, sh.heads, sh.head_dim, inverse), x.shape())
}

/// Mean loss `[1]` and log-sum-exp per row.
fn cross_entropy(logits: &FlexTensor, targets: &[i64]) -> (FlexTensor, FlexTensor) {
    let (loss, lse) = cpu::cross_entropy(host(logits), targets, logits.shape()[1]);
    let rows = lse.len();
    (flex(vec![loss], [1]), flex(lse, [rows]))
}

impl Kernels for Flex {
    fn project(x: Tensor<Self, 2>, w: Tensor<Self, 2>) -> Tensor<Self, 2> {
        wrap(project(&inner(x), &inner(w)))
    }
    fn causal_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>) -> Tensor<Self, 4> {
        wrap(attention(&inner(q), &inner(k), &inner(v)).0)
    }
    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>) -> Tensor<Self, 2> {
        wrap(rms_norm(&inner(x), &inner(gamma)).0)
    }
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        wrap(swiglu(&inner(gate), &inner(up)))
    }
    fn rotary(x: Tensor<Self, 4>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 4> {
        wrap(rotary(&inner(x), &inner(cos), &inner(sin), false))
    }
    fn cross_entropy(logits: Tensor<Self, 2>, targets_: Tensor<Self, 1, Int>) -> Tensor<Self, 1> {
        wrap(cross_entropy(&inner(logits), &ints(targets_)).0)
    }
    fn token_losses(logits: Tensor<Self, 2>, targets_: Tensor<Self, 1, Int>) -> Tensor<Self, 1> {
        let logits = inner(logits);
        let n = logits.shape()[0];
        wrap(flex(cpu::token_losses(host(&logits), &ints(targets_), logits.shape()[1]), [n]))
    }
    fn moe_experts(
        x: Tensor<Self, 2>,
        gates: Tensor<Self, 2>,
        experts: Tensor<Self, 2, Int>,
        weights: &[ExpertWeights<Self>],
        capacity: Option<usize>,
    ) -> Routed<Self> {
        let plan = plan(experts, weights.len(), capacity);
        let running: Vec<[FlexTensor; 3]> = plan.active.iter().map(|&e| weights[e].clone().map(inner)).collect();
        let views: Vec<Expert> = running
            .iter()
            .map(|[gate, up, down]| Expert { gate: host(gate), up: host(up), down: host(down) })
            .collect();
        let x = inner(x);
        let (out, saved) = moe::forward(host(&x), host(&inner(gates)), &plan, &views);
        saved.recycle();
        routed(wrap(flex(out, x.shape())), &plan)
    }
}

/// The routing of `experts: [n, k]` among `n_experts`.
fn plan<B: Backend>(experts: Tensor<B, 2, Int>, n_experts: usize, capacity: Option<usize>) -> Plan {
    let k = experts.dims()[1];
    Plan::new(&ints(experts), n_experts, k, capacity)
}

/// `out` with the plan's tallies.
fn routed<B: Backend>(out: Tensor<B, 2>, plan: &Plan) -> Routed<B> {
    let device = out.device();
    let load: Vec<f32> = plan.routed.iter().map(|&n| n as f32).collect();
    let load = Tensor::from_data(TensorData::new(load, [plan.routed.len()]), &device);
    let dropped = Tensor::from_data(TensorData::new(vec![plan.dropped() as f32], [1]), &device);
    Routed { out, load, dropped }
}

/// Registers `out` as the result of `op` on `parents`, keeping `state` for the backward pass
/// when any parent needs a gradient.
fn record<Op: Backward<Flex, N>, const N: usize>(
    op: Op,
    parents: [&AdTensor; N],
    state: Op::State,
    out: FlexTensor,
) -> AdTensor {
    match op.prepare::<NoCheckpointing>(parents.map(|p| p.node.clone())).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// The shared part of every backward pass: takes the output's gradient, lets `grad` turn it
/// (and the state, which it may consume) into one gradient per parent, and hands each parent
/// that wants one its gradient.
fn backward<S, const N: usize>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
    grad: impl FnOnce(S, FlexTensor) -> [FlexTensor; N],
) {
    let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
    for (parent, value) in ops.parents.into_iter().zip(grad(ops.state, dy)) {
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, value);
        }
    }
}

#[derive(Debug)]
struct ProjectGrad;

impl Backward<Flex, 2> for ProjectGrad {
    /// x, w.
    type State = [FlexTensor; 2];
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let [x, w] = ops.state;
        let ([m, k], n) = (dims2(&x), dims2(&w)[1]);
        let (x, w, dy) = (Mat::new(host(&x), m, k), Mat::new(host(&w), k, n), Mat::new(host(&dy), m, n));
        // Each gradient only for a parent that wants one: each is a full matrix product.
        let [x_node, w_node] = ops.parents;
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, flex(gemm::product(dy, w.t()), [m, k]));
        }
        if let Some(node) = w_node {
            grads.register::<Flex>(node.id, flex(gemm::product(x.t(), dy), [k, n]));
        }
    }
}

#[derive(Debug)]
struct AttentionGrad;

impl Backward<Flex, 3> for AttentionGrad {
    /// q, k, v, output, log-sum-exp.
    type State = [FlexTensor; 5];
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |[q, k, v, out, lse], dout| {
            let shape = q.shape();
            let (dq, dk, dv) = cpu::attention_backward(
                host(&q),
                host(&k),
                host(&v),
                host(&out),
                host(&lse),
                host(&dout),
                heads(&shape),
            );
            [flex(dq, shape.clone()), flex(dk, shape.clone()), flex(dv, shape)]
        });
    }
}

#[derive(Debug)]
struct RmsNormGrad;

impl Backward<Flex, 2> for RmsNormGrad {
    /// x, γ, 1/rms per row.
    type State = [FlexTensor; 3];
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |[x, gamma, inv], dy| {
            let (dx, dgamma) = cpu::rms_norm_backward(host(&x), host(&gamma), host(&inv), host(&dy));
            [flex(dx, x.shape()), flex(dgamma, gamma.shape())]
        });
    }
}

#[derive(Debug)]
struct SwigluGrad;

impl Backward<Flex, 2> for SwigluGrad {
    /// gate, up.
    type State = [FlexTensor; 2];
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |[g, u], dy| {
            let (dg, du) = cpu::swiglu_backward(host(&g), host(&u), host(&dy));
            [flex(dg, g.shape()), flex(du, u.shape())]
        });
    }
}

#[derive(Debug)]
struct RotaryGrad;

impl Backward<Flex, 1> for RotaryGrad {
    /// cos, sin.
    type State = (FlexTensor, FlexTensor);
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |(cos, sin), dy| [rotary(&dy, &cos, &sin, true)]);
    }
}

#[derive(Debug)]
struct CrossEntropyGrad;

impl Backward<Flex, 1> for CrossEntropyGrad {
    /// logits, targets, log-sum-exp per row.
    type State = (FlexTensor, Arc<Vec<i64>>, FlexTensor);
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |(logits, targets, lse), dloss| {
            let v = logits.shape()[1];
            [flex(cpu::cross_entropy_backward(host(&logits), &targets, host(&lse), v, host(&dloss)[0]), logits.shape())]
        });
    }
}

#[derive(Debug)]
struct MoeGrad;

/// x, gates, the running experts' stacked gate, up and down weights, the plan, and what the
/// forward pass saved.
#[derive(Debug, Clone)]
struct MoeState {
    x: FlexTensor,
    gates: FlexTensor,
    weights: [FlexTensor; 3],
    plan: Arc<Plan>,
    saved: moe::Saved,
}

impl Backward<Flex, 5> for MoeGrad {
    type State = MoeState;
    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |MoeState { x, gates, weights, plan, saved }, dout| {
            let g = moe::backward(host(&x), host(&gates), &plan, &stacked(&weights, &plan), saved, host(&dout));
            let [wg, wu, wd] = weights.map(|w| w.shape());
            [flex(g.x, x.shape()), flex(g.gates, gates.shape()), flex(g.gate, wg), flex(g.up, wu), flex(g.down, wd)]
        });
    }
}

/// The kernel's view of the running experts' stacked weights.
fn stacked<'a>([gate, up, down]: &'a [FlexTensor; 3], plan: &Plan) -> Vec<Expert<'a>> {
    Expert::unstack(host(gate), host(up), host(down), plan.active.len())
}

/// The host tensor of a tracked tensor, contiguous.
fn host_of(t: &AdTensor) -> FlexTensor {
    t.primitive.to_contiguous()
}

impl Kernels for Ad {
    fn project(x: Tensor<Self, 2>, w: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let (x, w) = (prim(x), prim(w));
        let (xf, wf) = (host_of(&x), host_of(&w));
        let y = project(&xf, &wf);
        wrap(record(ProjectGrad, [&x, &w], [xf, wf], y))
    }
    fn causal_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let (q, k, v) = (prim(q), prim(k), prim(v));
        let (qf, kf, vf) = (host_of(&q), host_of(&k), host_of(&v));
        let (out, lse) = attention(&qf, &kf, &vf);
        wrap(record(AttentionGrad, [&q, &k, &v], [qf, kf, vf, out.clone(), lse], out))
    }
    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>) -> Tensor<Self, 2> {
        let (x, gamma) = (prim(x), prim(gamma));
        let (xf, gf) = (host_of(&x), host_of(&gamma));
        let (y, inv) = rms_norm(&xf, &gf);
        wrap(record(RmsNormGrad, [&x, &gamma], [xf, gf, inv], y))
    }
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let (g, u) = (prim(gate), prim(up));
        let (gf, uf) = (host_of(&g), host_of(&u));
        let y = swiglu(&gf, &uf);
        wrap(record(SwigluGrad, [&g, &u], [gf, uf], y))
    }
    fn rotary(x: Tensor<Self, 4>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 4> {
        let x = prim(x);
        // The tables are constants: their inner tensors are all the kernel needs.
        let (cos, sin) = (host_of(&prim(cos)), host_of(&prim(sin)));
        let y = rotary(&host_of(&x), &cos, &sin, false);
        wrap(record(RotaryGrad, [&x], (cos, sin), y))
    }
    fn cross_entropy(logits: Tensor<Self, 2>, targets_: Tensor<Self, 1, Int>) -> Tensor<Self, 1> {
        let targets = Arc::new(ints(targets_));
        let logits = prim(logits);
        let lf = host_of(&logits);
        let (loss, lse) = cross_entropy(&lf, &targets);
        wrap(record(CrossEntropyGrad, [&logits], (lf, targets, lse), loss))
    }
    fn moe_experts(
        x: Tensor<Self, 2>,
        gates: Tensor<Self, 2>,
        experts: Tensor<Self, 2, Int>,
        weights: &[ExpertWeights<Self>],
        capacity: Option<usize>,
    ) -> Routed<Self> {
        let plan = Arc::new(plan(experts, weights.len(), capacity));
        // The node takes the running experts' weights stacked, one parent per projection: a
        // fixed number of parents, and experts that no token reached get no gradient at all
        // (so that AdamW leaves them alone, as PyTorch does).
        let stack = |p: usize| prim(Tensor::cat(plan.active.iter().map(|&e| weights[e][p].clone()).collect(), 0));
        let w = [stack(0), stack(1), stack(2)];
        let (x, gates) = (prim(x), prim(gates));
        let (xf, gf, wf) = (host_of(&x), host_of(&gates), w.each_ref().map(host_of));
        let (out, saved) = moe::forward(host(&xf), host(&gf), &plan, &stacked(&wf, &plan));
        let out = flex(out, xf.shape());
        let state = MoeState { x: xf, gates: gf, weights: wf, plan: plan.clone(), saved };
        routed(wrap(record(MoeGrad, [&x, &gates, &w[0], &w[1], &w[2]], state, out)), &plan)
    }
}

#[cfg(test)]
mod tests {
    //! Each fused op against the same op in burn's own tensor ops: values and gradients.
    use burn::backend::flex::FlexDevice;
    use burn::tensor::Tensor;

    use super::super::composed;
    use super::*;

    /// Standard normal values from the test's own generator: the backend's is global, and a
    /// test on another thread drawing between its seeding and its draw would change the values
    /// (the fused and reference runs then weighed their outputs differently).
    fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Ad, D> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<f32> =
            (0..shape.iter().product::<usize>()).map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal)).collect();
        Tensor::<Ad, D>::from_data(burn::tensor::TensorData::new(values, shape), &FlexDevice).require_grad()
    }

    fn assert_close<const D: usize>(what: &str, a: Tensor<Flex, D>, b: Tensor<Flex, D>) {
        let (a, b) = (a.into_data().to_vec::<f32>().unwrap(), b.into_data().to_vec::<f32>().unwrap());
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-3);
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 2e-5 * scale.max(1.0), "{what}: max |fused − composed| = {worst} (scale {scale})");
    }

    /// Runs `f` fused and composed on the same inputs, then compares outputs and the gradients
    /// of a random projection of the output with respect to every input.
    fn check<const D: usize, const N: usize>(
        name: &str,
        inputs: [Tensor<Ad, D>; N],
        fused: impl Fn([Tensor<Ad, D>; N]) -> Tensor<Ad, D>,
        reference: impl Fn([Tensor<Ad, D>; N]) -> Tensor<Ad, D>,
    ) {
        let run = |f: &dyn Fn([Tensor<Ad, D>; N]) -> Tensor<Ad, D>| {
            let leaves = inputs.clone().map(|t| t.detach().require_grad());
            let y = f(leaves.clone());
            let weights = random::<D>(y.dims(), 99).detach();
            let grads = (y.clone() * weights).sum().backward();
            (y.inner(), leaves.map(|l| l.grad(&grads).expect("every input gets a gradient")))
        };
        let (y_fused, g_fused) = run(&fused);
        let (y_ref, g_ref) = run(&reference);
        assert_close(&format!("{name} output"), y_fused, y_ref);
        for (i, (a, b)) in g_fused.into_iter().zip(g_ref).enumerate() {
            assert_close(&format!("{name} gradient of input {i}"), a, b);
        }
    }

    /// The projection makes burn-flex's own gemm call, so it matches burn's matmul bit for bit,
    /// forward and backward: swapping it in changes no trial's losses.
    #[test]
    fn project_is_bit_identical_to_burn() {
        // A small product (one thread) and one above the threading threshold.
        for (m, k, n) in [(33, 20, 17), (300, 200, 130)] {
            let (x, w) = (random([m, k], 11), random([k, n], 12));
            let run = |f: &dyn Fn(Tensor<Ad, 2>, Tensor<Ad, 2>) -> Tensor<Ad, 2>| {
                let (x, w) = (x.clone().detach().require_grad(), w.clone().detach().require_grad());
                let y = f(x.clone(), w.clone());
                let grads = (y.clone() * random::<2>([m, n], 13).detach()).sum().backward();
                [y.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap()]
                    .map(|t| t.into_data().to_vec::<f32>().unwrap())
            };
            let (ours, burns) = (run(&|x, w| Ad::project(x, w)), run(&|x, w| x.matmul(w)));
            for (what, (a, b)) in ["output", "gradient of x", "gradient of w"].iter().zip(ours.iter().zip(&burns)) {
                assert!(a == b, "[{m}, {k}]·[{k}, {n}] {what} differs from burn's matmul");
            }
            let inference = Flex::project(x.clone().inner(), w.clone().inner()).into_data().to_vec::<f32>().unwrap();
            assert!(inference == burns[0], "inference output differs from burn's matmul");
        }
    }

    #[test]
    fn attention_matches_burn_including_partial_blocks() {
        // 150 positions: two full 64-row blocks and a partial one.
        let shape = [2, 150, 3, 8];
        let inputs = [random(shape, 1), random(shape, 2), random(shape, 3)];
        check(
            "attention",
            inputs,
            |[q, k, v]| Ad::causal_attention(q, k, v),
            |[q, k, v]| composed::causal_attention(q, k, v),
        );
    }

    #[test]
    fn rms_norm_matches_burn() {
        let gamma = random([40], 5);
        let x = random([70, 40], 4);
        let g = gamma.clone();
        check("rms_norm (x)", [x.clone()], |[x]| Ad::rms_norm(x, g.clone()), |[x]| composed::rms_norm(x, g.clone()));
        // γ's gradient sums over rows: check it through a 2-D view.
        let fused = |[g]: [Tensor<Ad, 2>; 1]| Ad::rms_norm(x.clone(), g.reshape([40]));
        let reference = |[g]: [Tensor<Ad, 2>; 1]| composed::rms_norm(x.clone(), g.reshape([40]));
        check("rms_norm (γ)", [gamma.reshape([1, 40])], fused, reference);
    }

    #[test]
    fn swiglu_matches_burn() {
        let inputs = [random([33, 70], 6), random([33, 70], 7)];
        check("swiglu", inputs, |[g, u]| Ad::swiglu(g, u), |[g, u]| composed::swiglu(g, u));
    }

    #[test]
    fn rotary_matches_burn() {
        let (cos, sin) = crate::kernels::rotary_tables(20, 8);
        let table = |v: Vec<f32>| Tensor::<Ad, 1>::from_floats(v.as_slice(), &FlexDevice).reshape([20, 4]);
        let (cos, sin) = (table(cos), table(sin));
        let (c, s) = (cos.clone(), sin.clone());
        check(
            "rotary",
            [random([3, 20, 2, 8], 8)],
            |[x]| Ad::rotary(x, cos.clone(), sin.clone()),
            |[x]| composed::rotary(x, c.clone(), s.clone()),
        );
    }

    #[test]
    fn cross_entropy_matches_burn() {
        let targets = Tensor::<Ad, 1, Int>::from_ints([3, 0, 9, 9, 1, 4, 7], &FlexDevice);
        let t = targets.clone();
        let fused = |[l]: [Tensor<Ad, 2>; 1]| Ad::cross_entropy(l, targets.clone()).reshape([1, 1]);
        let reference = |[l]: [Tensor<Ad, 2>; 1]| composed::cross_entropy(l, t.clone()).reshape([1, 1]);
        check("cross_entropy", [random([7, 10], 9).mul_scalar(4.0)], fused, reference);
    }

    /// `x [n, d]`, gates `[n, k]`, and gate, up, down weights of four experts, as one list.
    fn moe_inputs(n: usize, k: usize) -> [Tensor<Ad, 2>; 14] {
        let (d, h) = (24, 40);
        let weights =
            (0..4).flat_map(|e| [random([d, h], 10 + 3 * e), random([d, h], 11 + 3 * e), random([h, d], 12 + 3 * e)]);
        let mut inputs = vec![random([n, d], 1), random([n, k], 2)];
        inputs.extend(weights);
        inputs.try_into().unwrap()
    }

    /// A routing of `n` tokens to `k ≤ 2` distinct experts of four: every expert is chosen, the
    /// first one twice as often as the others, so that a capacity binds.
    fn moe_routing(n: usize, k: usize) -> Tensor<Ad, 2, Int> {
        let choices = |i: usize| {
            let first = i % 5 % 4;
            [first, (first + 1 + i % 3) % 4].map(|e| e as i64)
        };
        let flat: Vec<i64> = (0..n).flat_map(|i| choices(i)[..k].to_vec()).collect();
        Tensor::from_data(TensorData::new(flat, [n, k]), &FlexDevice)
    }

    fn experts(inputs: &[Tensor<Ad, 2>]) -> Vec<ExpertWeights<Ad>> {
        inputs.chunks(3).map(|w| [w[0].clone(), w[1].clone(), w[2].clone()]).collect()
    }

    #[test]
    fn moe_experts_match_burn_with_and_without_capacity() {
        for k in [1, 2] {
            for capacity in [None, Some(9)] {
                let idx = moe_routing(40, k);
                let (i, c) = (idx.clone(), capacity);
                let fused = |[x, g, w @ ..]: [Tensor<Ad, 2>; 14]| Ad::moe_experts(x, g, i.clone(), &experts(&w), c).out;
                let reference = |[x, g, w @ ..]: [Tensor<Ad, 2>; 14]| {
                    let w = experts(&w);
                    composed::moe_experts(x, g, idx.clone(), 4, capacity, |e, x| composed::swiglu_mlp(x, &w[e])).out
                };
                check(&format!("moe top-{k}, capacity {capacity:?}"), moe_inputs(40, k), fused, reference);
                let [x, g, w @ ..] = moe_inputs(40, k);
                let tally = |r: Routed<Ad>| (r.load.into_data(), r.dropped.into_data());
                let fused = tally(Ad::moe_experts(x.clone(), g.clone(), moe_routing(40, k), &experts(&w), capacity));
                let reference = tally(composed::moe_experts(x, g, moe_routing(40, k), 4, capacity, |e, x| {
                    composed::swiglu_mlp(x, &experts(&w)[e])
                }));
                assert_eq!(fused, reference, "top-{k}, capacity {capacity:?}: load and dropped slots");
            }
        }
    }

    #[test]
    fn moe_experts_give_no_gradient_to_an_expert_no_token_reached() {
        let [x, g, w @ ..] = moe_inputs(8, 1);
        let idx = Tensor::from_data(TensorData::new(vec![0i64, 1, 3, 0, 1, 3, 0, 1], [8, 1]), &FlexDevice);
        let grads = Ad::moe_experts(x, g, idx, &experts(&w), None).out.sum().backward();
        let reached: Vec<bool> = w.iter().map(|w| w.grad(&grads).is_some()).collect();
        assert_eq!(
            reached,
            [[true; 3], [true; 3], [false; 3], [true; 3]].concat(),
            "AdamW leaves an idle expert alone only without a gradient"
        );
    }

    #[test]
    fn moe_experts_are_bit_identical_whatever_the_pool_size() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                // 300 tokens: several blocks per expert, and a partial one.
                let [x, g, w @ ..] = moe_inputs(300, 2).map(|t| t.detach().require_grad());
                let out = Ad::moe_experts(x.clone(), g.clone(), moe_routing(300, 2), &experts(&w), Some(170)).out;
                let grads = (out.clone() * out.clone()).sum().backward();
                let grads: Vec<TensorData> =
                    [x, g].into_iter().chain(w).map(|t| t.grad(&grads).unwrap().into_data()).collect();
                (out.into_data(), grads)
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn token_losses_match_burn_and_average_to_the_loss() {
        let targets = Tensor::<Flex, 1, Int>::from_ints([3, 0, 9, 9, 1, 4, 7], &FlexDevice);
        let logits = random([7, 10], 9).mul_scalar(4.0).inner();
        let fused: Vec<f32> = Flex::token_losses(logits.clone(), targets.clone()).into_data().to_vec().unwrap();
        let reference: Vec<f32> = composed::token_losses(logits.clone(), targets.clone()).into_data().to_vec().unwrap();
        for (a, b) in fused.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-5, "{fused:?} vs {reference:?}");
        }
        let mean: f32 = Flex::cross_entropy(logits, targets).into_scalar();
        assert!((fused.iter().sum::<f32>() / 7.0 - mean).abs() < 1e-6);
    }

    #[test]
    fn forward_on_flex_equals_forward_on_autodiff() {
        let shape = [1, 70, 2, 4];
        let [q, k, v] = [1, 2, 3].map(|s| random(shape, s));
        let trained = Ad::causal_attention(q.clone(), k.clone(), v.clone()).inner();
        let inferred = Flex::causal_attention(q.inner(), k.inner(), v.inner());
        assert_eq!(trained.into_data(), inferred.into_data());
    }
}
