//! Sweep files: parsing with positions, so every error names the file, line and key.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::config::{json_of_toml, SetError};
use codescale_core::error::line_of;
use codescale_core::{BadInput, TrialSpec};
use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

pub use crate::asha::EarlyStop;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Grid,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    Uniform,
    /// `min` and `max` are the values themselves (W&B's `log_uniform_values`).
    LogUniform,
    IntUniform,
    /// Uniform, rounded to a multiple of `q` (default 1), as W&B's `q_uniform`.
    QUniform,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub values: Option<Vec<toml::Value>>,
    pub value: Option<toml::Value>,
    pub distribution: Option<Distribution>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `q_uniform`'s step.
    pub q: Option<f64>,
    /// With `values` under `method = "random"`: the chance of drawing each value.
    pub probabilities: Option<Vec<f64>>,
}

/// Where a sweep's trials run: this machine's pool, or Slurm array jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Executor {
    #[default]
    Local,
    Slurm,
}

/// A name that is not an executor.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` is not an executor (`local` or `slurm`)")]
pub struct UnknownExecutor(pub String);

impl std::str::FromStr for Executor {
    type Err = UnknownExecutor;
    fn from_str(s: &str) -> Result<Executor, UnknownExecutor> {
        match s {
            "local" => Ok(Executor::Local),
            "slurm" => Ok(Executor::Slurm),
            _ => Err(UnknownExecutor(s.to_string())),
        }
    }
}

/// The `[slurm]` table: what each array task asks for, and how the arrays are cut.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub mem: Option<String>,
    /// Generic resources per task, e.g. `gpu:1`.
    pub gres: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub constraint: Option<String>,
    /// At most this many tasks run at once (`--array=…%N`).
    pub array_parallelism: Option<usize>,
    /// The cluster's MaxArraySize (array indices stay below it); asked of `scontrol` when absent.
    pub max_array_size: Option<usize>,
    /// Further `#SBATCH` lines, as given.
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlurm {
    partition: Option<Spanned<String>>,
    time: Option<Spanned<String>>,
    cpus_per_task: Option<Spanned<usize>>,
    mem: Option<Spanned<String>>,
    gres: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    qos: Option<Spanned<String>>,
    constraint: Option<Spanned<String>>,
    array_parallelism: Option<Spanned<usize>>,
    max_array_size: Option<Spanned<usize>>,
    #[serde(default)]
    extra: Vec<Spanned<String>>,
}

impl RawSlurm {
    /// The options, each checked: counts above zero, text on one line (it becomes an
    /// `#SBATCH` line of the job script). `fail(span, key, message)` makes the error.
    fn check(self, fail: &dyn Fn(std::ops::Range<usize>, &str, &str) -> anyhow::Error) -> Result<SlurmOptions> {
        let text = |v: Option<Spanned<String>>, key: &str| -> Result<Option<String>> {
            match v {
                Some(v) if v.get_ref().trim().is_empty() || v.get_ref().chars().any(char::is_control) => {
                    Err(fail(v.span(), key, "must be a non-empty value on one line"))
                }
                v => Ok(v.map(Spanned::into_inner)),
            }
        };
        let count = |v: Option<Spanned<usize>>, key: &str| -> Result<Option<usize>> {
            match v {
                Some(v) if *v.get_ref() == 0 => Err(fail(v.span(), key, "must be > 0")),
                v => Ok(v.map(Spanned::into_inner)),
            }
        };
        Ok(SlurmOptions {
            partition: text(self.partition, "slurm.partition")?,
            time: text(self.time, "slurm.time")?,
            cpus_per_task: count(self.cpus_per_task, "slurm.cpus_per_task")?,
            mem: text(self.mem, "slurm.mem")?,
            gres: text(self.gres, "slurm.gres")?,
            account: text(self.account, "slurm.account")?,
            qos: text(self.qos, "slurm.qos")?,
            constraint: text(self.constraint, "slurm.constraint")?,
            array_parallelism: count(self.array_parallelism, "slurm.array_parallelism")?,
            max_array_size: count(self.max_array_size, "slurm.max_array_size")?,
            extra: self
                .extra
                .into_iter()
                .map(|line| text(Some(line), "slurm.extra").map(Option::unwrap_or_default))
                .collect::<Result<_>>()?,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: Spanned<String>,
    corpus: Option<Spanned<String>>,
    method: Option<Spanned<Method>>,
    trials: Option<Spanned<usize>>,
    seed: Option<u64>,
    jobs: Option<Spanned<usize>>,
    #[serde(default)]
    base: IndexMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    parameters: IndexMap<String, Spanned<Parameter>>,
    #[serde(default)]
    targets: IndexMap<String, Spanned<Parameter>>,
    #[serde(default)]
    pretrain: IndexMap<String, Spanned<IndexMap<String, Spanned<toml::Value>>>>,
    early_stop: Option<Spanned<EarlyStop>>,
    executor: Option<Spanned<String>>,
    slurm: Option<RawSlurm>,
    skip_missing_languages: Option<bool>,
    branches: Option<bool>,
    replicates: Option<Spanned<usize>>,
}

/// A validated sweep file. Lines are kept so later checks (planning) can point at keys.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub path: PathBuf,
    pub source: String,
    pub name: String,
    pub method: Method,
    pub trials: usize,
    pub seed: u64,
    pub jobs: Option<usize>,
    pub base: TrialSpec,
    /// Line of each key set in `[base]`.
    pub base_lines: IndexMap<String, usize>,
    pub parameters: IndexMap<String, (Parameter, usize)>,
    /// Held-out targets: keys whose `values` replace the ladder's (other parameters vary as in
    /// the ladder). Their trials are trained but never fitted; the fit predicts them.
    pub targets: IndexMap<String, (Parameter, usize)>,
    /// Base models for fine-tuning (`[pretrain.<name>]`: trial keys, the sweep's `corpus` by
    /// default), each a trial of the sweep that trials with `init_from = "<name>"` start from,
    /// with the line of its table.
    pub pretrain: IndexMap<String, (TrialSpec, usize)>,
    pub early_stop: Option<EarlyStop>,
    /// The executor `sweep run` and `run` use unless told otherwise.
    pub executor: Executor,
    pub slurm: Option<SlurmOptions>,
    /// Leave out (with a note) the trials of languages the corpus lacks, instead of refusing
    /// the sweep: for studies meant to run on whatever languages a machine has.
    pub skip_missing_languages: bool,
    /// Let WSD trials that differ only in budget share a trunk (default on).
    pub branches: bool,
    /// Each configuration trained with this many seeds (the base seed, +1, +2, …): repeated
    /// measurements that give the spread of a configuration's loss.
    pub replicates: usize,
}

impl Sweep {
    /// Reads a sweep file: our TOML, or W&B's YAML dialect (`.yaml`, `.yml`), which is
    /// converted to TOML first ([`crate::wandb`]) with errors still naming the YAML's lines.
    pub fn load(path: &Path) -> Result<Sweep> {
        let source = std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        if crate::wandb::is_yaml(path) {
            let converted = crate::wandb::to_toml(path, &source)?;
            return Sweep::parse_mapped(path, &converted.toml, &|l| converted.source_line(l));
        }
        Sweep::parse(path, &source)
    }

    pub fn parse(path: &Path, source: &str) -> Result<Sweep> {
        Sweep::parse_mapped(path, source, &|line| line)
    }

    /// Parses TOML whose line `l` came from line `source_line(l)` of the file at `path`.
    pub fn parse_mapped(path: &Path, source: &str, source_line: &dyn Fn(usize) -> usize) -> Result<Sweep> {
        let file = path.display();
        let fail = |line: usize, key: &str, msg: &str| -> anyhow::Error {
            BadInput(format!("{file}:{line}: `{key}`: {msg}")).into()
        };
        let line = |span: std::ops::Range<usize>| source_line(line_of(source, span.start));
        let raw: RawSweep = toml::from_str(source).map_err(|e| {
            let line = e.span().map(line).unwrap_or(1);
            BadInput(format!("{file}:{line}: {}", e.message().trim()))
        })?;

        let name = raw.name.get_ref().clone();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(fail(
                line(raw.name.span()),
                "name",
                "must be a non-empty name of letters, digits, `-`, `_` or `.` (it names the runs folder)",
            ));
        }
        if crate::runs::RESERVED_NAMES.contains(&name.as_str()) {
            let reserved = crate::runs::RESERVED_NAMES.map(|n| format!("`{n}`")).join(", ");
            return Err(fail(line(raw.name.span()), "name", &format!("`{name}` is reserved: a sweep's folder `<runs>/<name>` must not clash with what the runs folder holds itself (reserved: {reserved})")));
        }
        let method = raw.method.as_ref().map(|m| *m.get_ref()).unwrap_or(Method::Grid);
        let trials = match (&raw.trials, method) {
            (Some(t), Method::Random) if *t.get_ref() == 0 => {
                return Err(fail(line(t.span()), "trials", "must be > 0"))
            }
            (Some(t), Method::Random) => *t.get_ref(),
            (Some(t), Method::Grid) => {
                return Err(fail(line(t.span()), "trials", "only applies to `method = \"random\"`"))
            }
            (None, Method::Random) => return Err(fail(1, "trials", "`method = \"random\"` needs `trials = N`")),
            (None, Method::Grid) => 0,
        };
        if let Some(j) = &raw.jobs {
            if *j.get_ref() == 0 {
                return Err(fail(line(j.span()), "jobs", "must be > 0"));
            }
        }

        let mut base = TrialSpec::default();
        let mut base_lines = IndexMap::new();
        for (key, value) in &raw.base {
            let l = line(value.span());
            let json = json_of_toml(value.get_ref()).map_err(|e| fail(l, key, &e.to_string()))?;
            base.set_value(key, json).map_err(|e| fail(l, key, &e.to_string()))?;
            base_lines.insert(key.clone(), l);
        }
        if let Some(corpus) = &raw.corpus {
            if base.data.corpus.is_none() {
                base.data.corpus = Some(corpus.get_ref().clone());
                base_lines.insert("corpus".into(), line(corpus.span()));
            }
        }

        // `label` names the key in messages (`targets.model` for a target's).
        let check = |key: &str, label: &str, p: &Spanned<Parameter>, method: Method| -> Result<(Parameter, usize)> {
            let l = line(p.span());
            let param = p.get_ref().clone();
            validate_parameter(&param, method).map_err(|e| fail(l, label, &e.to_string()))?;
            // Every listed value must fit the key's type.
            let probes: Vec<serde_json::Value> = match (&param.values, &param.value) {
                (Some(vs), _) => {
                    vs.iter().map(json_of_toml).collect::<Result<_, _>>().map_err(|e| fail(l, label, &e.to_string()))?
                }
                (_, Some(v)) => vec![json_of_toml(v).map_err(|e| fail(l, label, &e.to_string()))?],
                _ => vec![match param.distribution {
                    Some(Distribution::IntUniform) => serde_json::json!(param.min.unwrap_or(1.0) as i64),
                    Some(Distribution::QUniform) => quantized(param.min.unwrap_or(1.0), param.q.unwrap_or(1.0)),
                    _ => serde_json::json!(param.min.unwrap_or(1.0)),
                }],
            };
            for v in probes {
                apply(&mut TrialSpec::default(), key, &v).map_err(|e| fail(l, label, &e.to_string()))?;
            }
            Ok((param, l))
        };
        let mut parameters = IndexMap::new();
        for (key, p) in &raw.parameters {
            parameters.insert(key.clone(), check(key, key, p, method)?);
        }
        // Targets are a grid whatever the ladder's method: a few chosen runs.
        let mut targets = IndexMap::new();
        for (key, p) in &raw.targets {
            targets.insert(key.clone(), check(key, &format!("targets.{key}"), p, Method::Grid)?);
        }

        let mut pretrain = IndexMap::new();
        for (name, table) in &raw.pretrain {
            let mut spec = TrialSpec::default();
            for (key, value) in table.get_ref() {
                let (l, label) = (line(value.span()), format!("pretrain.{name}.{key}"));
                let json = json_of_toml(value.get_ref()).map_err(|e| fail(l, &label, &e.to_string()))?;
                spec.set_value(key, json).map_err(|e| fail(l, &label, &e.to_string()))?;
            }
            if spec.model.init_from.is_some() {
                return Err(fail(
                    line(table.span()),
                    &format!("pretrain.{name}.init_from"),
                    "a base model starts from random weights",
                ));
            }
            if spec.data.corpus.is_none() {
                spec.data.corpus = raw.corpus.as_ref().map(|c| c.get_ref().clone());
            }
            pretrain.insert(name.clone(), (spec, line(table.span())));
        }

        let replicates = match &raw.replicates {
            Some(r) if *r.get_ref() == 0 => return Err(fail(line(r.span()), "replicates", "must be ≥ 1")),
            Some(r) if raw.parameters.contains_key("seed") => {
                return Err(fail(
                    line(r.span()),
                    "replicates",
                    "give either `replicates` or seeds as a parameter, not both",
                ))
            }
            Some(r) => *r.get_ref(),
            None => 1,
        };
        let early_stop = match raw.early_stop {
            Some(es) => {
                let l = line(es.span());
                let es = es.into_inner();
                if es.metric != "val_loss" {
                    return Err(fail(l, "early_stop.metric", "only `val_loss` is supported"));
                }
                if !(es.min_tokens.is_finite() && es.min_tokens > 0.0) {
                    return Err(fail(l, "early_stop.min_tokens", "must be > 0"));
                }
                if !(es.reduction.is_finite() && es.reduction >= 2.0) {
                    return Err(fail(l, "early_stop.reduction", "must be ≥ 2"));
                }
                Some(es)
            }
            None => None,
        };

        let executor = match &raw.executor {
            Some(e) => {
                e.get_ref().parse().map_err(|m: UnknownExecutor| fail(line(e.span()), "executor", &m.to_string()))?
            }
            None => Executor::Local,
        };
        let slurm = match raw.slurm {
            Some(s) => Some(s.check(&|span, key, msg| fail(line(span), key, msg))?),
            None => None,
        };

        Ok(Sweep {
            path: path.to_path_buf(),
            source: source.to_string(),
            name,
            method,
            trials,
            seed: raw.seed.unwrap_or(0),
            jobs: raw.jobs.map(|j| j.into_inner()),
            base,
            base_lines,
            parameters,
            targets,
            pretrain,
            early_stop,
            executor,
            slurm,
            skip_missing_languages: raw.skip_missing_languages.unwrap_or(false),
            branches: raw.branches.unwrap_or(true),
            replicates,
        })
    }

    /// Line to blame for a problem with `key`: where a parameter or `[base]` sets it.
    pub fn line_of_key(&self, key: &str) -> Option<usize> {
        self.parameters
            .get(key)
            .or_else(|| self.targets.get(key))
            .map(|(_, l)| *l)
            .or_else(|| self.base_lines.get(key).copied())
    }
}

/// A sweep parameter whose table does not describe values to try (the message says why).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidParameter(pub String);

fn validate_parameter(p: &Parameter, method: Method) -> Result<(), InvalidParameter> {
    let given = [p.values.is_some(), p.value.is_some(), p.distribution.is_some()].iter().filter(|&&b| b).count();
    if given != 1 {
        return Err(InvalidParameter("give exactly one of `values`, `value` or `distribution`".into()));
    }
    if p.values.as_ref().is_some_and(Vec::is_empty) {
        return Err(InvalidParameter("`values` is empty".into()));
    }
    if p.distribution.is_none() && (p.min.is_some() || p.max.is_some()) {
        return Err(InvalidParameter("`min` and `max` go with `distribution`".into()));
    }
    if let Some(probabilities) = &p.probabilities {
        let Some(values) = &p.values else { return Err(InvalidParameter("`probabilities` go with `values`".into())) };
        if method == Method::Grid {
            return Err(InvalidParameter(
                "`probabilities` need `method = \"random\"` (a grid takes every value)".into(),
            ));
        }
        if probabilities.len() != values.len() {
            return Err(InvalidParameter(format!(
                "{} `probabilities` for {} `values`",
                probabilities.len(),
                values.len()
            )));
        }
        if probabilities.iter().any(|x| !(x.is_finite() && *x >= 0.0))
            || (probabilities.iter().sum::<f64>() - 1.0).abs() > 1e-6
        {
            return Err(InvalidParameter("`probabilities` must be numbers ≥ 0 that sum to 1".into()));
        }
    }
    if p.q.is_some() && p.distribution != Some(Distribution::QUniform) {
        return Err(InvalidParameter("`q` goes with `distribution = \"q_uniform\"`".into()));
    }
    if let Some(d) = p.distribution {
        if method == Method::Grid {
            return Err(InvalidParameter(
                "a `distribution` needs `method = \"random\"` (a grid takes `values`)".into(),
            ));
        }
        let (Some(min), Some(max)) = (p.min, p.max) else {
            return Err(InvalidParameter("a `distribution` needs `min` and `max`".into()));
        };
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(InvalidParameter(format!("needs min < max (got {min} and {max})")));
        }
        if d == Distribution::LogUniform && min <= 0.0 {
            return Err(InvalidParameter("`log_uniform` needs min > 0".into()));
        }
        if d == Distribution::IntUniform && (min.fract() != 0.0 || max.fract() != 0.0) {
            return Err(InvalidParameter("`int_uniform` needs whole-number bounds".into()));
        }
        if p.q.is_some_and(|q| !(q.is_finite() && q > 0.0)) {
            return Err(InvalidParameter("`q` must be > 0".into()));
        }
    }
    Ok(())
}

/// Sets a parameter's value on a spec. A table value sets several keys at once, so one
/// parameter can vary things that go together: `family = { values = [{ arch = "dense" },
/// { arch = "moe", n_experts = 4, top_k = 1 }] }`.
pub fn apply(spec: &mut TrialSpec, key: &str, value: &serde_json::Value) -> Result<(), SetError> {
    match value {
        serde_json::Value::Object(keys) => keys.iter().try_for_each(|(k, v)| spec.set_value(k, v.clone())),
        _ => spec.set_value(key, value.clone()),
    }
}

/// `x` rounded to a multiple of `q`: a whole number when `q` is one (so `batch_size` may be
/// drawn from a `q_uniform`), else a float.
pub fn quantized(x: f64, q: f64) -> serde_json::Value {
    let v = (x / q).round() * q;
    if q.fract() == 0.0 && v.abs() < 2f64.powi(53) {
        serde_json::json!(v as i64)
    } else {
        serde_json::json!(v)
    }
}

/// A value already checked by [`Sweep::parse`] (finite numbers only) as JSON.
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
