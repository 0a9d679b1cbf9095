//! The parameter accounting against the network the trainer builds. N, N_total and N_active
//! are results columns and the x-axis of every fitted law, computed from the config alone;
//! here they are checked against the parameters of the actual burn model, dense and MoE, for
//! every shape the sweeps in `sweeps/` train and the ladders the lab uses besides.

use std::collections::BTreeSet;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use codescale_core::shape::{self, Shape};
use codescale_core::{Arch, DataSpec, ModelSpec, TrialConfig, TrialSpec};
use codescale_train::init::Init;
use codescale_train::model::Transformer;
use codescale_train::CpuBackend;

type B = CpuBackend;

/// Every parameter of a model with the path of module names that leads to it, and the values
/// of those under the top-level module `capture` (`embed`, `head`) when one is named.
#[derive(Default)]
struct Inventory {
    path: Vec<String>,
    params: Vec<(Vec<String>, usize)>,
    capture: Option<&'static str>,
    values: Vec<f32>,
}

impl ModuleVisitor<B> for Inventory {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.params.push((self.path.clone(), param.val().shape().num_elements()));
        if self.capture.is_some() && self.path.first().map(String::as_str) == self.capture {
            self.values.extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
}

/// What the built model holds, counted from its parameters.
#[derive(Debug, PartialEq)]
struct Counted {
    non_embedding: f64,
    total: f64,
    active: f64,
    embedding: f64,
    head: f64,
}

fn count(config: &TrialConfig) -> Counted {
    let device = Default::default();
    let model = Transformer::<B>::new(&config.model_config(), &mut Init::new(0, &device));
    let mut inventory = Inventory::default();
    model.visit(&mut inventory);
    let params = inventory.params;
    let total: usize = params.iter().map(|(_, n)| n).sum();
    assert_eq!(total, model.num_params(), "the visitor sees every parameter burn counts");
    let under = |name: &str| -> usize {
        params.iter().filter(|(p, _)| p.first().map(String::as_str) == Some(name)).map(|(_, n)| n).sum()
    };
    let (embedding, head) = (under("embed"), under("head"));
    assert!(
        embedding > 0 && head > 0,
        "the paths name the embedding and head: {:?}",
        params.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    // A token runs through top_k of each routed layer's experts: the others are inactive.
    let mut inactive = 0;
    for layer in 0..config.model.n_layers {
        let expert = |e: usize| -> usize {
            let e = e.to_string();
            params
                .iter()
                .filter(|(p, _)| {
                    p.get(..2) == Some(&["blocks".to_string(), layer.to_string()][..])
                        && p.windows(2).any(|w| w[0] == "experts" && w[1] == e)
                })
                .map(|(_, n)| n)
                .sum()
        };
        let sizes: Vec<usize> = (0..config.model.n_experts).map(expert).filter(|&n| n > 0).collect();
        if sizes.is_empty() {
            continue;
        }
        assert_eq!(sizes.len(), config.model.n_experts, "layer {layer} holds every expert");
        assert!(sizes.iter().all(|&n| n == sizes[0]), "layer {layer}: experts of one size");
        inactive += (config.model.n_experts - config.model.top_k) * sizes[0];
    }
    let non_embedding = total - embedding - head;
    Counted {
        non_embedding: non_embedding as f64,
        total: total as f64,
        active: (non_embedding - inactive) as f64,
        embedding: embedding as f64,
        head: head as f64,
    }
}

fn accounted(config: &TrialConfig) -> Counted {
    let p = config.params();
    Counted {
        non_embedding: p.n_params,
        total: p.n_params_total,
        active: p.n_params_active,
        embedding: p.embedding,
        head: p.head,
    }
}

/// The shape names and `n_params` targets anywhere in a sweep file (base, parameter values,
/// tables of values such as a `family`).
fn shapes_in(value: &toml::Value, key: Option<&str>, out: &mut BTreeSet<(usize, usize)>) {
    match value {
        toml::Value::String(s) => {
            if let Ok(s) = shape::parse_name(s) {
                out.insert((s.d_model, s.n_layers));
            }
        }
        toml::Value::Float(_) | toml::Value::Integer(_) if key == Some("n_params") => {
            let n = value.as_float().or(value.as_integer().map(|i| i as f64)).unwrap();
            let s = shape::from_param_count(n);
            out.insert((s.d_model, s.n_layers));
        }
        toml::Value::Array(a) => a.iter().for_each(|v| shapes_in(v, key, out)),
        toml::Value::Table(t) => {
            t.iter().for_each(|(k, v)| shapes_in(v, if k == "values" || k == "value" { key } else { Some(k) }, out))
        }
        _ => {}
    }
}

fn sweep_shapes() -> BTreeSet<(usize, usize)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps");
    let mut shapes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            shapes_in(&toml::from_str::<toml::Value>(&text).unwrap(), None, &mut shapes);
        }
    }
    shapes
}

/// The dense, MoE and head-count variants every shape is built in: routed every layer or
/// every other one, top-1 and top-2, with and without the shared expert, experts narrower
/// than the dense MLP.
fn variants(d_model: usize, n_layers: usize) -> Vec<TrialSpec> {
    let base = TrialSpec {
        data: DataSpec { language: Some("python".into()), ..Default::default() },
        model: ModelSpec { d_model: Some(d_model), n_layers: Some(n_layers), ..Default::default() },
        ..Default::default()
    };
    let moe = |n_experts: usize, top_k: usize, shared: bool, every: usize, d_expert: Option<usize>| TrialSpec {
        model: ModelSpec {
            arch: Some(Arch::Moe),
            n_experts: Some(n_experts),
            top_k: Some(top_k),
            shared_expert: Some(shared),
            moe_every: Some(every.min(n_layers)),
            d_expert,
            ..base.clone().model
        },
        ..base.clone()
    };
    let mut specs = vec![
        base.clone(),
        moe(4, 1, false, 1, None),
        moe(4, 2, false, 1, None),
        moe(4, 1, true, 1, None),
        moe(8, 2, true, 2, Some(Shape::new(d_model, n_layers).d_ff / 2)),
    ];
    // Head counts change no parameter count; every valid one is built for the small widths.
    for n_heads in
        (1..=d_model / 2).filter(|h| d_model.is_multiple_of(*h) && (d_model / h).is_multiple_of(2) && d_model <= 96)
    {
        specs.push(TrialSpec { model: ModelSpec { n_heads: Some(n_heads), ..base.clone().model }, ..base.clone() });
    }
    specs
}

#[test]
fn accounting_counts_the_parameters_of_the_built_model() {
    let mut shapes = sweep_shapes();
    assert!(shapes.contains(&(64, 2)) && shapes.len() >= 5, "the sweeps' shapes were found: {shapes:?}");
    // Ladders the lab runs besides its bundled sweeps: narrow two-layer models, and the wider
    // rungs of the benchmarks and the README.
    shapes.extend((16..=96).step_by(16).map(|d| (d, 2)));
    shapes.extend([(32, 1), (48, 2), (96, 3), (128, 4), (160, 4), (160, 5), (256, 6), (384, 8)]);
    let mut checked = 0;
    for (d_model, n_layers) in shapes {
        for spec in variants(d_model, n_layers) {
            let config = spec.resolve().unwrap_or_else(|e| panic!("d{d_model}-l{n_layers}: {e}"));
            let name = format!(
                "d{d_model}-l{n_layers} {:?} {} experts top-{} shared {} every {} heads {}",
                config.model.arch,
                config.model.n_experts,
                config.model.top_k,
                config.model.shared_expert,
                config.model.moe_every,
                config.model.n_heads
            );
            let counted = count(&config);
            if config.model.arch == Arch::Moe {
                assert!(counted.active < counted.non_embedding, "{name}: the inactive experts were found");
            }
            assert_eq!(accounted(&config), counted, "{name}");
            if config.model.arch == Arch::Dense {
                let s = Shape { d_model, n_layers, n_heads: config.model.n_heads, d_ff: config.model.d_ff };
                assert_eq!(shape::non_embedding_params(&s), config.params().n_params, "{name}: the ladder's count");
            }
            checked += 1;
        }
    }
    println!("{checked} models checked");
}

#[test]
fn accounting_follows_the_vocabulary_into_embedding_and_head_only() {
    let spec = |tokenizer: &str| TrialSpec {
        data: DataSpec { language: Some("python".into()), tokenizer: Some(tokenizer.into()), ..Default::default() },
        model: ModelSpec { name: Some("d64-l2".into()), ..Default::default() },
        ..Default::default()
    };
    let (bytes, bpe) = (spec("bytes").resolve().unwrap(), spec("bpe:4096").resolve().unwrap());
    assert_eq!(accounted(&bpe), count(&bpe));
    assert_eq!(accounted(&bpe).non_embedding, accounted(&bytes).non_embedding);
    assert_eq!(count(&bpe).embedding, 4096.0 * 64.0);
}

/// `init_std` is the spread of the weights the trainer starts from: the embedding of a trial at
/// 0.05 spreads 2.5 times as wide as one at GPT-2's 0.02, from the same seed.
#[test]
fn init_std_sets_the_spread_of_the_initial_weights() {
    let spread = |init_std: &str| {
        let mut spec = TrialSpec {
            data: DataSpec { language: Some("python".into()), ..Default::default() },
            model: ModelSpec { name: Some("d64-l2".into()), ..Default::default() },
            ..Default::default()
        };
        spec.set("init_std", init_std).unwrap();
        let model = Transformer::<B>::for_trial(&spec.resolve().unwrap(), &Default::default());
        let mut embed = Inventory { capture: Some("embed"), ..Default::default() };
        model.visit(&mut embed);
        let n = embed.values.len() as f64;
        assert!(n > 10_000.0, "{n} embedding weights");
        (embed.values.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n).sqrt()
    };
    let (gpt2, wide) = (spread("0.02"), spread("0.05"));
    assert!((gpt2 / 0.02 - 1.0).abs() < 0.03, "embedding spread {gpt2} at init_std = 0.02");
    assert!((wide / gpt2 / 2.5 - 1.0).abs() < 0.01, "spread {wide} at 0.05 against {gpt2} at 0.02");
}
