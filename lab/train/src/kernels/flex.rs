//! [`Kernels`] on Flex (forward only: evaluation) and on `Autodiff<Flex>` (training), where
//! each fused op is one autodiff node whose backward pass is a fused kernel too.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use burn_flex::FlexTensor;

use super::cpu::{self, Heads};
use super::{Kernels, RMS_EPS};

type Ad = Autodiff<Flex>;
type AdTensor = FloatTensor<Ad>;

/// A contiguous copy (or the tensor itself when it already is one).
fn contiguous(t: FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn host(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("fused kernels take contiguous f32 tensors")
}

fn flex(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

fn heads(shape: &Shape) -> Heads {
    Heads { batch: shape[0], time: shape[1], heads: shape[2], head_dim: shape[3] }
}

fn targets<B: Backend>(t: Tensor<B, 1, Int>) -> Vec<i64> {
    t.into_data().iter::<i64>().collect()
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

impl Kernels for Flex {
    fn causal_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let (q, k, v) = (contiguous(prim(q)), contiguous(prim(k)), contiguous(prim(v)));
        let shape = q.shape();
        let (out, _) = cpu::attention(host(&q), host(&k), host(&v), heads(&shape));
        wrap(flex(out, shape))
    }
    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>) -> Tensor<Self, 2> {
        let (x, gamma) = (contiguous(prim(x)), contiguous(prim(gamma)));
        wrap(flex(cpu::rms_norm(host(&x), host(&gamma), RMS_EPS).0, x.shape()))
    }
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let (g, u) = (contiguous(prim(gate)), contiguous(prim(up)));
        wrap(flex(cpu::swiglu(host(&g), host(&u)), g.shape()))
    }
    fn rotary(x: Tensor<Self, 4>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 4> {
        let (x, cos, sin) = (contiguous(prim(x)), contiguous(prim(cos)), contiguous(prim(sin)));
        let sh = heads(&x.shape());
        wrap(flex(cpu::rotary(host(&x), host(&cos), host(&sin), sh.time, sh.heads, sh.head_dim, false), x.shape()))
    }
    fn cross_entropy(logits: Tensor<Self, 2>, targets_: Tensor<Self, 1, Int>) -> Tensor<Self, 1> {
        let v = logits.dims()[1];
        let logits = contiguous(prim(logits));
        wrap(flex(vec![cpu::cross_entropy(host(&logits), &targets(targets_), v).0], [1]))
    }
}

/// Registers `out` as the result of `op` on `parents`, keeping `state` for the backward pass
/// when any parent needs a gradient.
fn record<Op: Backward<Flex, N>, const N: usize>(op: Op, parents: [&AdTensor; N], state: Op::State, out: FlexTensor) -> AdTensor {
    match op.prepare::<NoCheckpointing>(parents.map(|p| p.node.clone())).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// The shared part of every backward pass: takes the output's gradient, lets `grad` turn it
/// into one gradient per parent, and hands each parent that wants one its gradient.
fn backward<S, const N: usize>(ops: Ops<S, N>, grads: &mut Gradients, grad: impl FnOnce(&S, FlexTensor) -> [(Vec<f32>, Shape); N]) {
    let dy = contiguous(grads.consume::<Flex>(&ops.node));
    for (parent, (value, shape)) in ops.parents.into_iter().zip(grad(&ops.state, dy)) {
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, flex(value, shape));
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
            let (dq, dk, dv) = cpu::attention_backward(host(q), host(k), host(v), host(out), host(lse), host(&dout), heads(&shape));
            [(dq, shape.clone()), (dk, shape.clone()), (dv, shape)]
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
            let (dx, dgamma) = cpu::rms_norm_backward(host(x), host(gamma), host(inv), host(&dy));
            [(dx, x.shape()), (dgamma, gamma.shape())]
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
            let (dg, du) = cpu::swiglu_backward(host(g), host(u), host(&dy));
            [(dg, g.shape()), (du, u.shape())]
        });
    }
}

#[derive(Debug)]
struct RotaryGrad;

impl Backward<Flex, 1> for RotaryGrad {
    /// cos, sin, and the input's shape.
    type State = (FlexTensor, FlexTensor, Shape);
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |(cos, sin, shape), dy| {
            let sh = heads(shape);
            [(cpu::rotary(host(&dy), host(cos), host(sin), sh.time, sh.heads, sh.head_dim, true), shape.clone())]
        });
    }
}

#[derive(Debug)]
struct CrossEntropyGrad;

impl Backward<Flex, 1> for CrossEntropyGrad {
    /// logits, targets, log-sum-exp per row.
    type State = (FlexTensor, std::sync::Arc<Vec<i64>>, FlexTensor);
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward(ops, grads, |(logits, targets, lse), dloss| {
            let v = logits.shape()[1];
            [(cpu::cross_entropy_backward(host(logits), targets, host(lse), v, host(&dloss)[0]), logits.shape())]
        });
    }
}

impl Kernels for Ad {
    fn causal_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let (q, k, v) = (prim(q), prim(k), prim(v));
        let (qf, kf, vf) = (contiguous(q.primitive.clone()), contiguous(k.primitive.clone()), contiguous(v.primitive.clone()));
        let shape = qf.shape();
        let sh = heads(&shape);
        let (out, lse) = cpu::attention(host(&qf), host(&kf), host(&vf), sh);
        let (out, lse) = (flex(out, shape), flex(lse, [sh.batch * sh.heads, sh.time]));
        wrap(record(AttentionGrad, [&q, &k, &v], [qf, kf, vf, out.clone(), lse], out))
    }
    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>) -> Tensor<Self, 2> {
        let (x, gamma) = (prim(x), prim(gamma));
        let (xf, gf) = (contiguous(x.primitive.clone()), contiguous(gamma.primitive.clone()));
        let (y, inv) = cpu::rms_norm(host(&xf), host(&gf), RMS_EPS);
        let rows = inv.len();
        let y = flex(y, xf.shape());
        wrap(record(RmsNormGrad, [&x, &gamma], [xf, gf, flex(inv, [rows])], y))
    }
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let (g, u) = (prim(gate), prim(up));
        let (gf, uf) = (contiguous(g.primitive.clone()), contiguous(u.primitive.clone()));
        let y = flex(cpu::swiglu(host(&gf), host(&uf)), gf.shape());
        wrap(record(SwigluGrad, [&g, &u], [gf, uf], y))
    }
    fn rotary(x: Tensor<Self, 4>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 4> {
        let x = prim(x);
        // The tables are constants: their inner tensors are all the kernel needs.
        let (cos, sin) = (contiguous(prim(cos).primitive), contiguous(prim(sin).primitive));
        let xf = contiguous(x.primitive.clone());
        let shape = xf.shape();
        let sh = heads(&shape);
        let y = flex(cpu::rotary(host(&xf), host(&cos), host(&sin), sh.time, sh.heads, sh.head_dim, false), shape.clone());
        wrap(record(RotaryGrad, [&x], (cos, sin, shape), y))
    }
    fn cross_entropy(logits: Tensor<Self, 2>, targets_: Tensor<Self, 1, Int>) -> Tensor<Self, 1> {
        let targets = std::sync::Arc::new(targets(targets_));
        let logits = prim(logits);
        let lf = contiguous(logits.primitive.clone());
        let (loss, lse) = cpu::cross_entropy(host(&lf), &targets, lf.shape()[1]);
        let rows = lse.len();
        wrap(record(CrossEntropyGrad, [&logits], (lf, targets, flex(lse, [rows])), flex(vec![loss], [1])))
    }
}

#[cfg(test)]
mod tests {
    //! Each fused op against the same op in burn's own tensor ops: values and gradients.
    use burn::backend::flex::FlexDevice;
    use burn::tensor::{Distribution, Tensor};

    use super::super::composed;
    use super::*;

    fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Ad, D> {
        <Flex as Backend>::seed(&FlexDevice, seed);
        Tensor::<Ad, D>::random(shape, Distribution::Normal(0.0, 1.0), &FlexDevice).require_grad()
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

    #[test]
    fn attention_matches_burn_including_partial_blocks() {
        // 150 positions: two full 64-row blocks and a partial one.
        let shape = [2, 150, 3, 8];
        let inputs = [random(shape, 1), random(shape, 2), random(shape, 3)];
        check("attention", inputs, |[q, k, v]| Ad::causal_attention(q, k, v), |[q, k, v]| composed::causal_attention(q, k, v));
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
        check("rotary", [random([3, 20, 2, 8], 8)], |[x]| Ad::rotary(x, cos.clone(), sin.clone()), |[x]| composed::rotary(x, c.clone(), s.clone()));
    }

    #[test]
    fn cross_entropy_matches_burn() {
        let targets = Tensor::<Ad, 1, Int>::from_ints([3, 0, 9, 9, 1, 4, 7], &FlexDevice);
        let t = targets.clone();
        let fused = |[l]: [Tensor<Ad, 2>; 1]| Ad::cross_entropy(l, targets.clone()).reshape([1, 1]);
        let reference = |[l]: [Tensor<Ad, 2>; 1]| composed::cross_entropy(l, t.clone()).reshape([1, 1]);
        check("cross_entropy", [random([7, 10], 9).mul_scalar(4.0)], fused, reference);
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
