//! Sweep files in W&B's YAML dialect, converted to our TOML so that one parser
//! ([`crate::spec::Sweep`]) validates both. The conversion keeps, for every TOML line, the YAML
//! line it came from, so every error still names the YAML file's line and key.
//!
//! What maps onto what (W&B → codescale):
//! - `method: grid | random` → `method`; `run_cap` → `trials` (random plans a fixed number).
//! - `parameters.<key>`: `value` / `values` (+ `probabilities`) as they are; `distribution`
//!   `uniform`, `int_uniform`, `q_uniform` (+ `q`) as they are; `log_uniform_values` → our
//!   `log_uniform` (bounds are values); W&B's `log_uniform` takes bounds in ln space, so
//!   `min: a, max: b` → our `log_uniform` with `min = e^a, max = e^b`. Without `distribution`,
//!   W&B's inference: `int_uniform` for whole-number bounds, else `uniform`.
//! - `metric: {name, goal: minimize}`: a metric codescale records (`val_loss`, `val_bpb`,
//!   `train_loss`).
//! - `early_terminate: {type: hyperband, min_iter, eta}` → `[early_stop]` (asynchronous
//!   successive halving): `eta` → `reduction`; `min_iter` counts evaluations, so it becomes
//!   `min_tokens = min_iter · eval_interval · batch_size · seq_len`, which needs those three
//!   fixed with `value` (or give `min_tokens` instead of `min_iter`).
//! - `program`, `command`, `entity`, `project`, `description`: left out (codescale trains the
//!   models itself); `corpus`, `seed`, `jobs` may be given as in our TOML.
//!
//! Refused with the line and key: `method: bayes`, other distributions (`normal`, …), nested
//! `parameters`, `goal: maximize`, `metric.target`, hyperband's `max_iter`/`s`/`strict`.

use std::path::Path;

use anyhow::Result;
use codescale_core::BadInput;
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

pub fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// A W&B sweep as our TOML, with the YAML line each TOML line came from.
#[derive(Debug, Default)]
pub struct Converted {
    pub toml: String,
    lines: Vec<usize>,
}

impl Converted {
    /// The YAML line that TOML line `line` (1-based) came from.
    pub fn source_line(&self, line: usize) -> usize {
        self.lines.get(line.wrapping_sub(1)).copied().unwrap_or(1)
    }

    fn push(&mut self, yaml_line: usize, text: impl AsRef<str>) {
        for l in text.as_ref().lines() {
            self.toml.push_str(l);
            self.toml.push('\n');
            self.lines.push(yaml_line);
        }
    }
}

type Node<'a> = MarkedYaml<'a>;

/// Keys of W&B's sweep configuration that say how to launch a training script; codescale
/// trains the models itself.
const LAUNCH_KEYS: [&str; 5] = ["program", "command", "entity", "project", "description"];
const RECORDED_METRICS: [&str; 3] = ["val_loss", "val_bpb", "train_loss"];
const DISTRIBUTIONS: &str = "constant, categorical, uniform, int_uniform, q_uniform, log_uniform, log_uniform_values";

/// Converts the W&B sweep file at `path` (its text is `source`) to our TOML.
pub fn to_toml(path: &Path, source: &str) -> Result<Converted> {
    let fail = Fail { file: path.display().to_string() };
    let docs = MarkedYaml::load_from_str(source)
        .map_err(|e| BadInput(format!("{}:{}: {}", fail.file, e.marker().line(), e.info())))?;
    let root = match docs.as_slice() {
        [root] => root,
        [] => return Err(fail.at(1, "name", "the file is empty")),
        [_, second, ..] => return Err(fail.at(line(second), "---", "one sweep per file")),
    };
    let top = entries(root, "the file", &fail)?;

    let mut out = Converted::default();
    out.push(1, format!("# Converted by codescale from {}, a sweep in W&B's YAML dialect.", fail.file));
    let left_out: Vec<&str> = top.iter().map(|(k, _, _)| *k).filter(|k| LAUNCH_KEYS.contains(k)).collect();
    if !left_out.is_empty() {
        out.push(1, format!("# Left out, as codescale trains the models itself: {}.", left_out.join(", ")));
    }
    let get = |key: &str| top.iter().find(|(k, _, _)| *k == key).map(|(_, l, n)| (*l, *n));
    for (key, l, _) in &top {
        if !LAUNCH_KEYS.contains(key)
            && !["name", "method", "metric", "parameters", "early_terminate", "run_cap", "corpus", "seed", "jobs"]
                .contains(key)
        {
            return Err(fail.at(*l, key, "is not a key of a W&B sweep that codescale reads (it reads name, method, metric, parameters, early_terminate, run_cap, and corpus, seed, jobs as in its TOML)"));
        }
    }

    // The name names the runs folder: W&B's free-form names become a folder name.
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let (name_line, name) = match get("name") {
        Some((l, n)) => (l, string(n, "name", &fail)?),
        None => (1, stem),
    };
    let folder: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    if folder != name {
        out.push(name_line, format!("# W&B name: {}", toml::Value::String(name.clone())));
    }
    out.push(name_line, format!("name = {}", toml::Value::String(folder)));

    let (method_line, method) = match get("method") {
        Some((l, n)) => (l, string(n, "method", &fail)?),
        None => return Err(fail.at(1, "method", "is required in a W&B sweep (grid or random)")),
    };
    match method.as_str() {
        "grid" | "random" => out.push(method_line, format!("method = \"{method}\"")),
        "bayes" => return Err(fail.at(
            method_line,
            "method",
            "`bayes` is not supported: codescale plans every trial up front (use `random` with `run_cap`, or `grid`)",
        )),
        other => {
            return Err(fail.at(method_line, "method", &format!("`{other}` is not a W&B method (grid, random, bayes)")))
        }
    }
    match (get("run_cap"), method.as_str()) {
        (Some((l, n)), "random") => out.push(l, format!("trials = {}", scalar(n, "run_cap", &fail)?)),
        (Some((l, _)), _) => {
            return Err(fail.at(l, "run_cap", "only applies to `method: random` (a grid runs every combination)"))
        }
        (None, "random") => {
            return Err(fail.at(
                method_line,
                "run_cap",
                "`method: random` needs `run_cap`: codescale plans a fixed number of trials",
            ))
        }
        _ => {}
    }
    for key in ["corpus", "seed", "jobs"] {
        if let Some((l, n)) = get(key) {
            out.push(l, format!("{key} = {}", scalar(n, key, &fail)?));
        }
    }
    let metric = get("metric").map(|(l, n)| check_metric(l, n, &fail)).transpose()?;

    let parameters = match get("parameters") {
        Some((l, n)) => (l, entries(n, "parameters", &fail)?),
        None => return Err(fail.at(1, "parameters", "is required")),
    };
    out.push(parameters.0, "[parameters]");
    for (key, l, spec) in &parameters.1 {
        let (comment, table) = parameter(key, *l, spec, &fail)?;
        if let Some(c) = comment {
            out.push(*l, format!("# {c}"));
        }
        out.push(*l, format!("{} = {}", toml_key(key), toml::Value::Table(table)));
    }

    if let Some((l, n)) = get("early_terminate") {
        if let Some((metric_line, name)) = metric.filter(|(_, name)| name == "train_loss") {
            return Err(fail.at(
                metric_line,
                "metric.name",
                &format!("early stopping ranks trials by validation loss, not `{name}`"),
            ));
        }
        let (min_tokens, eta) = hyperband(l, n, &parameters.1, &fail)?;
        out.push(l, "[early_stop]");
        out.push(l, "metric = \"val_loss\"");
        out.push(l, format!("min_tokens = {}", toml::Value::Float(min_tokens)));
        out.push(l, format!("reduction = {}", toml::Value::Float(eta)));
    }
    Ok(out)
}

/// Errors naming the YAML file, line and key.
struct Fail {
    file: String,
}

impl Fail {
    fn at(&self, line: usize, key: &str, message: &str) -> anyhow::Error {
        BadInput(format!("{}:{line}: `{key}`: {message}", self.file)).into()
    }
}

fn line(node: &Node) -> usize {
    node.span.start.line()
}

/// A mapping's entries in order: key, the key's line, value.
fn entries<'n, 'a>(node: &'n Node<'a>, what: &str, fail: &Fail) -> Result<Vec<(&'n str, usize, &'n Node<'a>)>> {
    let YamlData::Mapping(map) = &node.data else {
        return Err(fail.at(line(node), what, "must be a mapping of keys to values"));
    };
    map.iter()
        .map(|(k, v)| match &k.data {
            YamlData::Value(Scalar::String(s)) => Ok((s.as_ref(), line(k), v)),
            _ => Err(fail.at(line(k), what, "keys must be names")),
        })
        .collect()
}

fn string(node: &Node, key: &str, fail: &Fail) -> Result<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Ok(s.to_string()),
        _ => Err(fail.at(line(node), key, "must be a string")),
    }
}

fn number(node: &Node, key: &str, fail: &Fail) -> Result<f64> {
    match value(node, key, fail)? {
        toml::Value::Integer(i) => Ok(i as f64),
        toml::Value::Float(x) => Ok(x),
        _ => Err(fail.at(line(node), key, "must be a number")),
    }
}

/// A scalar as TOML text.
fn scalar(node: &Node, key: &str, fail: &Fail) -> Result<String> {
    match value(node, key, fail)? {
        v @ (toml::Value::Array(_) | toml::Value::Table(_)) => {
            Err(fail.at(line(node), key, &format!("must be a single value, not {v}")))
        }
        v => Ok(v.to_string()),
    }
}

/// Any YAML value as a TOML value (TOML has no null, and we refuse what is not finite).
fn value(node: &Node, key: &str, fail: &Fail) -> Result<toml::Value> {
    let l = line(node);
    Ok(match &node.data {
        YamlData::Value(Scalar::Integer(i)) => toml::Value::Integer(*i),
        YamlData::Value(Scalar::FloatingPoint(x)) if x.is_finite() => toml::Value::Float(x.into_inner()),
        YamlData::Value(Scalar::FloatingPoint(x)) => {
            return Err(fail.at(l, key, &format!("{x} is not a finite number")))
        }
        YamlData::Value(Scalar::Boolean(b)) => toml::Value::Boolean(*b),
        YamlData::Value(Scalar::String(s)) => toml::Value::String(s.to_string()),
        YamlData::Value(Scalar::Null) => return Err(fail.at(l, key, "has no value (null)")),
        YamlData::Sequence(items) => {
            toml::Value::Array(items.iter().map(|n| value(n, key, fail)).collect::<Result<_>>()?)
        }
        YamlData::Mapping(_) => {
            let mut table = toml::Table::new();
            for (k, _, v) in entries(node, key, fail)? {
                table.insert(k.to_string(), value(v, k, fail)?);
            }
            toml::Value::Table(table)
        }
        _ => return Err(fail.at(l, key, "anchors, aliases and tags are not supported")),
    })
}

fn toml_key(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// The metric's name and its line, once checked.
fn check_metric(l: usize, node: &Node, fail: &Fail) -> Result<(usize, String)> {
    let mut named = None;
    for (key, kl, v) in entries(node, "metric", fail)? {
        match key {
            "name" => {
                let name = string(v, "metric.name", fail)?;
                if !RECORDED_METRICS.contains(&name.as_str()) {
                    return Err(fail.at(
                        kl,
                        "metric.name",
                        &format!("`{name}` is not a metric codescale records ({})", RECORDED_METRICS.join(", ")),
                    ));
                }
                named = Some((kl, name));
            }
            "goal" => {
                if string(v, "metric.goal", fail)? != "minimize" {
                    return Err(fail.at(kl, "metric.goal", "codescale's metrics are losses: the goal is `minimize`"));
                }
            }
            "target" => {
                return Err(fail.at(kl, "metric.target", "is not supported: codescale runs every planned trial"))
            }
            other => return Err(fail.at(kl, &format!("metric.{other}"), "is not a key of `metric` (name, goal)")),
        }
    }
    named.ok_or_else(|| fail.at(l, "metric.name", "is required"))
}

/// One parameter: a comment for the TOML when the meaning shifts, and our inline table.
fn parameter(key: &str, key_line: usize, spec: &Node, fail: &Fail) -> Result<(Option<String>, toml::Table)> {
    let fields = entries(spec, key, fail)?;
    let field = |name: &str| fields.iter().find(|(k, _, _)| *k == name).map(|(_, l, n)| (*l, *n));
    let whole = |name: &str| field(name).is_some_and(|(_, n)| matches!(n.data, YamlData::Value(Scalar::Integer(_))));
    let named = field("distribution")
        .map(|(l, n)| Ok::<_, anyhow::Error>((l, string(n, &format!("{key}.distribution"), fail)?)))
        .transpose()?;
    let distribution = match named.as_ref().map(|(l, d)| (*l, d.as_str())) {
        Some((_, "constant" | "categorical")) => None,
        Some((_, d @ ("uniform" | "int_uniform" | "q_uniform"))) => Some(d),
        Some((_, "log_uniform_values" | "log_uniform")) => Some("log_uniform"),
        Some((l, other)) => {
            return Err(fail.at(
                l,
                &format!("{key}.distribution"),
                &format!("`{other}` is not supported (supported: {DISTRIBUTIONS})"),
            ))
        }
        // W&B's inference when no distribution is named.
        None if field("min").is_some() || field("max").is_some() => {
            Some(if whole("min") && whole("max") { "int_uniform" } else { "uniform" })
        }
        None => None,
    };
    let mut table = toml::Table::new();
    if let Some(d) = distribution {
        table.insert("distribution".into(), d.into());
    }
    for (name, l, node) in &fields {
        match *name {
            "distribution" => {}
            "values" | "value" | "probabilities" | "min" | "max" | "q" => {
                table.insert(name.to_string(), value(node, key, fail)?);
            }
            "parameters" => return Err(fail.at(*l, key, "nested `parameters` are not supported: give the value as a table, `values: [{arch: moe, n_experts: 4}]`")),
            other => return Err(fail.at(*l, &format!("{key}.{other}"), &format!("is not supported (a parameter takes values, value, probabilities, distribution, min, max, q; distributions: {DISTRIBUTIONS})"))),
        }
    }
    if named.as_ref().is_none_or(|(_, d)| d != "log_uniform") {
        return Ok((None, table));
    }
    // W&B draws e^U(min, max): its `log_uniform` bounds are logarithms, ours are values.
    let (Some((min_line, min)), Some((max_line, max))) = (field("min"), field("max")) else {
        return Err(fail.at(key_line, key, "`log_uniform` needs `min` and `max`"));
    };
    let (min, max) = (number(min, &format!("{key}.min"), fail)?, number(max, &format!("{key}.max"), fail)?);
    for (l, bound, v) in [(min_line, "min", min.exp()), (max_line, "max", max.exp())] {
        if !(v.is_finite() && v > 0.0) {
            return Err(fail.at(l, &format!("{key}.{bound}"), "W&B's `log_uniform` takes natural-log bounds, and e to this is no usable number (did you mean `log_uniform_values`?)"));
        }
        table.insert(bound.into(), toml::Value::Float(v));
    }
    Ok((Some(format!("W&B `log_uniform` over ln-space bounds [{min}, {max}]: codescale's `log_uniform` takes the values e^{min}, e^{max}")), table))
}

/// Hyperband's `min_iter` and `eta` as ASHA's first rung in tokens and its reduction factor.
fn hyperband(l: usize, node: &Node, parameters: &[(&str, usize, &Node)], fail: &Fail) -> Result<(f64, f64)> {
    let (mut min_iter, mut min_tokens, mut eta) = (None, None, 3.0);
    let mut kind = None;
    for (key, kl, v) in entries(node, "early_terminate", fail)? {
        let dotted = format!("early_terminate.{key}");
        match key {
            "type" => kind = Some((kl, string(v, &dotted, fail)?)),
            "min_iter" => min_iter = Some((kl, number(v, &dotted, fail)?)),
            "min_tokens" => min_tokens = Some(number(v, &dotted, fail)?),
            "eta" => {
                eta = number(v, &dotted, fail)?;
                if !(eta.is_finite() && eta >= 2.0) {
                    return Err(fail.at(kl, &dotted, "must be ≥ 2 (each rung keeps the best 1/eta)"));
                }
            }
            "max_iter" | "s" | "strict" => {
                return Err(fail.at(kl, &dotted, "is not supported: give `min_iter` (the first rung) and `eta`"))
            }
            _ => return Err(fail.at(kl, &dotted, "is not a key of `early_terminate` (type, min_iter, eta)")),
        }
    }
    match kind {
        Some((_, t)) if t == "hyperband" => {}
        Some((kl, t)) => {
            return Err(fail.at(kl, "early_terminate.type", &format!("`{t}` is not supported (hyperband)")))
        }
        None => return Err(fail.at(l, "early_terminate.type", "is required (hyperband)")),
    }
    let min_tokens = match (min_iter, min_tokens) {
        (Some(_), Some(_)) => return Err(fail.at(l, "early_terminate", "give `min_iter` or `min_tokens`, not both")),
        (None, Some(t)) => t,
        (None, None) => return Err(fail.at(l, "early_terminate.min_iter", "is required")),
        (Some((kl, iters)), None) => {
            // A W&B iteration is one logged value of the metric: here, one evaluation.
            let fixed = |key: &str| -> Option<f64> {
                let (_, _, spec) = parameters.iter().find(|(k, _, _)| *k == key)?;
                let (_, _, v) = entries(spec, key, fail).ok()?.into_iter().find(|(k, _, _)| *k == "value")?;
                number(v, key, fail).ok()
            };
            let (Some(every), Some(batch), Some(seq)) = (fixed("eval_interval"), fixed("batch_size"), fixed("seq_len"))
            else {
                return Err(fail.at(kl, "early_terminate.min_iter", "counts evaluations, and codescale's rungs are in tokens: fix `eval_interval`, `batch_size` and `seq_len` with `value` so an evaluation is a known number of tokens, or give `min_tokens` instead"));
            };
            iters * every * batch * seq
        }
    };
    Ok((min_tokens, eta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Distribution, Method, Sweep};

    fn load(yaml: &str) -> Result<Sweep> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.yaml");
        std::fs::write(&path, yaml).unwrap();
        Sweep::load(&path)
    }

    fn error(yaml: &str) -> String {
        let e = load(yaml).unwrap_err();
        assert!(codescale_core::is_bad_input(&e), "{e}");
        let text = e.to_string();
        text[text.find("sweep.yaml").expect("names the file")..].to_string()
    }

    const WANDB: &str = "\
program: train.py
name: lr sweep
method: random
run_cap: 12
metric:
  name: val_loss
  goal: minimize
parameters:
  language:
    value: rust
  model:
    values: [d32-l1, d64-l1]
    probabilities: [0.25, 0.75]
  lr:
    distribution: log_uniform_values
    min: 0.0001
    max: 0.01
  weight_decay:
    distribution: log_uniform
    min: -4.605170186
    max: -2.302585093
  warmup:
    distribution: q_uniform
    min: 0
    max: 0.3
    q: 0.1
  eval_tokens:
    min: 1024
    max: 2048
  batch_size:
    value: 16
  seq_len:
    value: 32
  eval_interval:
    value: 4
early_terminate:
  type: hyperband
  min_iter: 2
  eta: 3
";

    #[test]
    fn a_wandb_sweep_is_accepted_as_it_is() {
        let s = load(WANDB).unwrap();
        assert_eq!((s.name.as_str(), s.method, s.trials), ("lr-sweep", Method::Random, 12));
        let (model, _) = &s.parameters["model"];
        assert_eq!(model.probabilities, Some(vec![0.25, 0.75]));
        let (lr, _) = &s.parameters["lr"];
        assert_eq!((lr.distribution, lr.min, lr.max), (Some(Distribution::LogUniform), Some(1e-4), Some(1e-2)));
        // W&B's log_uniform bounds are logarithms: e^-4.6 ≈ 0.01, e^-2.3 ≈ 0.1.
        let (wd, _) = &s.parameters["weight_decay"];
        assert_eq!(wd.distribution, Some(Distribution::LogUniform));
        assert!((wd.min.unwrap() - 0.01).abs() < 1e-9 && (wd.max.unwrap() - 0.1).abs() < 1e-9, "{wd:?}");
        assert_eq!(
            (s.parameters["warmup"].0.distribution, s.parameters["warmup"].0.q),
            (Some(Distribution::QUniform), Some(0.1))
        );
        assert_eq!(
            s.parameters["eval_tokens"].0.distribution,
            Some(Distribution::IntUniform),
            "W&B infers int_uniform from whole bounds"
        );
        let es = s.early_stop.clone().unwrap();
        assert_eq!((es.min_tokens, es.reduction), (2.0 * 4.0 * 16.0 * 32.0, 3.0));
        assert!(s.source.contains("# Left out, as codescale trains the models itself: program."), "{}", s.source);

        let trials = crate::plan::plan(&s).unwrap();
        assert_eq!(trials.len(), 12);
        assert!(trials.iter().all(|c| (0.01..0.1).contains(&c.optimizer.weight_decay)
            && (1e-4..1e-2).contains(&c.optimizer.lr)
            && (1024..=2048).contains(&c.eval.eval_tokens)));
    }

    #[test]
    fn grid_sweeps_plan_every_combination() {
        let s = load("method: grid\nparameters:\n  language: {value: go}\n  model: {values: [d32-l1, d64-l1]}\n  tokens: {values: [1.0e5, 2.0e5, 4.0e5]}\n").unwrap();
        assert_eq!(s.name, "sweep", "the file's stem names an unnamed sweep");
        assert_eq!(crate::plan::plan(&s).unwrap().len(), 6);
    }

    #[test]
    fn unsupported_parts_name_the_line_and_key() {
        let head =
            "name: x\nmethod: random\nrun_cap: 3\nparameters:\n  language: {value: go}\n  model: {value: d32-l1}\n";
        let cases: Vec<(String, &str)> = vec![
            (
                "name: x\nmethod: bayes\nparameters:\n  lr: {values: [0.1]}\n".into(),
                "sweep.yaml:2: `method`: `bayes` is not supported",
            ),
            (format!("{head}  lr: {{values: [1], mu: 0}}\n"), "sweep.yaml:7: `lr.mu`: is not supported"),
            (
                format!("{head}  lr:\n    distribution: normal\n"),
                "sweep.yaml:8: `lr.distribution`: `normal` is not supported",
            ),
            (format!("{head}  dropout: {{values: [0.1, 0.2]}}\n"), "sweep.yaml:7: `dropout`: unknown key"),
            (
                format!("{head}  lr: {{values: [0.1, 0.2], probabilities: [0.5]}}\n"),
                "sweep.yaml:7: `lr`: 1 `probabilities` for 2 `values`",
            ),
            (format!("{head}metric: {{name: val_loss, goal: maximize}}\n"), "sweep.yaml:7: `metric.goal`"),
            (
                format!("{head}metric: {{name: accuracy, goal: minimize}}\n"),
                "sweep.yaml:7: `metric.name`: `accuracy` is not a metric",
            ),
            (
                format!("{head}metric:\n  name: train_loss\nearly_terminate: {{type: hyperband, min_tokens: 1.0e4}}\n"),
                "sweep.yaml:8: `metric.name`: early stopping ranks",
            ),
            (
                format!("{head}early_terminate: {{type: hyperband, min_iter: 3}}\n"),
                "sweep.yaml:7: `early_terminate.min_iter`: counts evaluations",
            ),
            (
                format!("{head}early_terminate: {{type: hyperband, max_iter: 27, s: 2}}\n"),
                "sweep.yaml:7: `early_terminate.max_iter`: is not supported",
            ),
            (
                format!("{head}early_terminate: {{type: envelope}}\n"),
                "sweep.yaml:7: `early_terminate.type`: `envelope` is not supported",
            ),
            (
                format!("{head}early_terminate: {{type: hyperband, min_tokens: 1.0e4, eta: 1}}\n"),
                "sweep.yaml:7: `early_terminate.eta`: must be ≥ 2",
            ),
            ("name: x\nmethod: random\nparameters:\n  lr: {values: [0.1]}\n".into(), "sweep.yaml:2: `run_cap`"),
            ("name: x\nmethod: grid\nparameters:\n  lr:\n    values: [0.1\n".into(), "sweep.yaml:"),
            ("name: x\nmethod: grid\nmethod: random\nparameters: {}\n".into(), "sweep.yaml:3"),
            (
                format!("{head}  opt:\n    parameters:\n      lr: {{value: 1}}\n"),
                "sweep.yaml:8: `opt`: nested `parameters`",
            ),
            (format!("{head}imports: [a]\n"), "sweep.yaml:7: `imports`: is not a key"),
        ];
        for (yaml, expected) in cases {
            let e = error(&yaml);
            assert!(e.starts_with(expected), "expected `{expected}…`, got `{e}` for:\n{yaml}");
        }
    }

    #[test]
    fn errors_after_conversion_point_at_the_yaml_line() {
        // Found by planning, from a line the YAML set.
        let s = load("name: x\nmethod: grid\nparameters:\n  language: {value: go}\n  model: {values: [d64-l2]}\n  n_heads:\n    values: [3]\n").unwrap();
        let e = crate::plan::plan(&s).unwrap_err().to_string();
        assert!(e.contains("sweep.yaml:6: `n_heads`"), "{e}");
    }
}
