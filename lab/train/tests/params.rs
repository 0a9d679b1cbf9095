//! The N of every law is the parameter count from `codescale_core::accounting`, a formula: it
//! must be the number of parameters the trainer's model actually has, for every shape the
//! shipped sweeps use, dense and MoE.

use burn::backend::flex::FlexDevice;
use burn::backend::Flex;
use burn::module::Module;
use codescale_core::TrialSpec;
use codescale_train::model::Transformer;

/// `(model, n_heads)` of the shipped ladders (sweeps/*.toml) and the targets beyond them.
const SHAPES: [(&str, usize); 14] = [
    ("d16-l2", 2),
    ("d24-l2", 3),
    ("d32-l2", 4),
    ("d48-l2", 6),
    ("d96-l2", 12),
    ("d32-l1", 0),
    ("d48-l2", 0),
    ("d64-l2", 0),
    ("d96-l3", 0),
    ("d128-l4", 0),
    ("d160-l5", 0),
    ("d128-l2", 0),
    ("d256-l6", 0),
    ("d384-l8", 0),
];

/// MoE variants: `(n_experts, top_k, shared_expert, moe_every)`.
const MOE: [(usize, usize, bool, usize); 4] = [(4, 1, false, 1), (8, 2, false, 1), (4, 1, true, 1), (4, 2, false, 2)];

fn count(spec: &TrialSpec) -> (f64, f64, f64, f64) {
    let c = spec.resolve().unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    let p = c.params();
    let model = Transformer::<Flex>::new(&c, &FlexDevice);
    (model.num_params() as f64, p.n_params_total, p.n_params_total - p.embedding - p.head, p.n_params)
}

fn spec(model: &str, n_heads: usize) -> TrialSpec {
    let mut s = TrialSpec::default();
    s.set("language", "python").unwrap();
    s.set("model", model).unwrap();
    if n_heads > 0 {
        s.set("n_heads", &n_heads.to_string()).unwrap();
    }
    s
}

#[test]
fn accounting_counts_the_parameters_the_model_has() {
    for (model, n_heads) in SHAPES {
        let dense = spec(model, n_heads);
        let (built, total, non_embedding, n) = count(&dense);
        assert_eq!(built, total, "{model} dense: the model has {built} parameters, accounting says {total}");
        assert_eq!(non_embedding, n, "{model} dense: N is the total without embedding and head");
        let layers = dense.resolve().unwrap().n_layers;
        for (experts, top_k, shared, every) in MOE.into_iter().filter(|m| m.3 <= layers) {
            let mut moe = dense.clone();
            for (k, v) in [("arch", "moe".to_string()), ("n_experts", experts.to_string()), ("top_k", top_k.to_string()), ("shared_expert", shared.to_string()), ("moe_every", every.to_string())] {
                moe.set(k, &v).unwrap();
            }
            let (built, total, non_embedding, n) = count(&moe);
            assert_eq!(built, total, "{model} MoE {experts}×top-{top_k} shared {shared} every {every}: the model has {built}, accounting says {total}");
            assert_eq!(non_embedding, n);
        }
    }
}

/// Active parameters: a MoE with one expert is the dense model plus its router, and top-k of
/// E experts touches k experts' worth of the MLP.
#[test]
fn active_parameters_are_the_dense_count_plus_the_router() {
    for (model, n_heads) in SHAPES {
        let dense = spec(model, n_heads).resolve().unwrap();
        let mut moe = spec(model, n_heads);
        for (k, v) in [("arch", "moe"), ("n_experts", "4"), ("top_k", "1"), ("d_expert", &dense.d_ff.to_string())] {
            moe.set(k, v).unwrap();
        }
        let moe = moe.resolve().unwrap();
        let router = (dense.n_layers * dense.d_model * 4) as f64;
        assert_eq!(moe.params().n_params_active, dense.params().n_params + router, "{model}");
        assert_eq!(moe.params().n_params, dense.params().n_params + router + 3.0 * (3 * dense.d_model * dense.d_ff) as f64 * dense.n_layers as f64, "{model}");
    }
}
