//! Mixture-of-experts trials on real code: the router learns from the language-model loss,
//! capacity drops and counts slots, and a MoE trial resumes bit for bit.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use codescale_core::record::CURVE_FILE;
use codescale_core::{Arch, CurvePoint, Gate, ResultRow, Status, TrialConfig, TrialSpec};
use codescale_data::Split;
use codescale_train::data::Sampler;
use codescale_train::model::Transformer;
use codescale_train::{train_trial, CpuTrainBackend, RunOptions};

type T = CpuTrainBackend;

fn moe(spec: &mut TrialSpec) {
    spec.model.arch = Some(Arch::Moe);
    spec.model.n_experts = Some(4);
}

fn curve(dir: &std::path::Path) -> Vec<CurvePoint> {
    codescale_table::read_rows(&dir.join(CURVE_FILE)).unwrap()
}

/// The largest gradient magnitude of the parameters inside modules named `router`.
struct RouterGradient<'a> {
    grads: &'a <T as AutodiffBackend>::Gradients,
    path: Vec<String>,
    largest: Option<f32>,
}

impl ModuleVisitor<T> for RouterGradient<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<T, D>>) {
        if self.path.iter().any(|p| p == "router") {
            let g = param.val().grad(self.grads).expect("the router is on the loss's graph");
            let largest: f32 = g.abs().max().into_scalar();
            self.largest = Some(self.largest.unwrap_or(0.0).max(largest));
        }
    }
}

/// The router's largest gradient from one batch's LM loss alone (no auxiliary loss).
fn router_gradient_from_lm_loss(config: &TrialConfig, tokens: Vec<u16>) -> f32 {
    let device = Default::default();
    let model = Transformer::<T>::for_trial(config, &device);
    let batch =
        Sampler::new(tokens, config.data.seq_len, config.optimizer.micro_batch, 0).unwrap().batch::<T>(0, 0, &device);
    let (loss, _) = model.loss(batch.inputs, batch.targets, None);
    let grads = loss.backward();
    let mut visitor = RouterGradient { grads: &grads, path: Vec::new(), largest: None };
    model.visit(&mut visitor);
    visitor.largest.expect("the model has routers")
}

#[test]
fn a_top1_router_learns_from_the_lm_loss_under_softmax_gating_only() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = common::corpus(tmp.path()).shard("rust", Split::Train).unwrap();
    let config = |gate: Option<Gate>| {
        common::config(1, |s| {
            moe(s);
            s.model.top_k = Some(1);
            s.model.gate = gate;
            s.model.aux_loss_coef = Some(0.0);
            s.model.z_loss_coef = Some(0.0);
        })
    };
    let softmax = config(None);
    assert_eq!(softmax.model.gate, Some(Gate::Softmax), "the default for top-1");
    let g = router_gradient_from_lm_loss(&softmax, tokens.clone());
    assert!(g > 1e-6, "softmax gating: the router's LM-loss gradient is {g}");
    // Renormalising over one chosen expert makes every gate exactly 1: nothing to learn from.
    let g = router_gradient_from_lm_loss(&config(Some(Gate::SoftmaxTopk)), tokens);
    assert_eq!(g, 0.0, "softmax_topk under top-1");
}

fn capped(steps: usize) -> TrialConfig {
    common::config(steps, |s| {
        moe(s);
        s.model.top_k = Some(2);
        s.model.shared_expert = Some(true);
        s.model.capacity_factor = Some(1.0);
        s.runtime.checkpoint_interval = Some(10);
        s.optimizer.micro_batch = Some(8);
    })
}

#[test]
fn a_moe_trial_with_capacity_counts_its_drops_and_resumes_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = common::corpus(tmp.path());
    let config = capped(30);
    let quiet = || RunOptions { quiet: true, ..Default::default() };
    let whole = tmp.path().join("whole");
    let record = train_trial(&whole, &config, &corpus, &quiet()).unwrap();
    assert_eq!(record.status, Status::Done);

    let dropped = record.metrics.dropped_frac.expect("a capacity records its drops");
    assert!(dropped > 0.0 && dropped < 0.5, "dropped fraction {dropped}");
    let row = ResultRow::from_record("s", &record);
    assert_eq!(
        (row.gate.as_deref(), row.capacity_factor, row.dropped_frac),
        (Some("softmax_topk"), Some(1.0), Some(dropped))
    );

    let resumed = tmp.path().join("resumed");
    let stopped = train_trial(
        &resumed,
        &config,
        &corpus,
        &RunOptions { quiet: true, stop_after_steps: Some(15), ..Default::default() },
    )
    .unwrap();
    assert_eq!(stopped.status, Status::Running);
    assert_eq!(train_trial(&resumed, &config, &corpus, &quiet()).unwrap().metrics.dropped_frac, Some(dropped));

    let key = |p: &CurvePoint| {
        (
            p.step,
            p.train_loss.to_bits(),
            p.val_loss.map(f64::to_bits),
            p.grad_norm.to_bits(),
            p.dropped_frac.map(f64::to_bits),
            p.expert_load.clone(),
        )
    };
    let a: Vec<_> = curve(&whole).iter().map(key).collect();
    let b: Vec<_> = curve(&resumed).iter().map(key).collect();
    assert_eq!(a.len(), 30);
    assert_eq!(a, b);
}

#[test]
fn dropless_routing_records_no_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = common::corpus(tmp.path());
    let config = common::config(3, moe);
    let record =
        train_trial(&tmp.path().join("t"), &config, &corpus, &RunOptions { quiet: true, ..Default::default() })
            .unwrap();
    assert_eq!(record.metrics.dropped_frac, None);
    assert!(curve(&tmp.path().join("t")).iter().all(|p| p.dropped_frac.is_none()));
}
