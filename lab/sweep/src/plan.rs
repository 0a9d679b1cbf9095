//! Planning, the one place a sweep is planned: it expands into resolved trial configs in a fixed
//! order, each named by the hash of its config ([`plan`], [`plan_targets`]); binds every trial
//! to its built corpus ([`plan_with_corpora`]); writes the sweep's folder and `plan.json`
//! ([`prepare`]); and gives each trial its WSD trunk ([`plan_branches`]) and the sweep's
//! early-stopping rule, from which its rungs follow. Executors read what it wrote and depend on it, never the
//! other way round.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use codescale_core::{BadInput, CorpusKey, TrialConfig};
use codescale_data::{BuildOptions, Corpus};
use codescale_train::Branch;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::index::RunsIndex;
use crate::options::RunConfig;
use crate::runs::{Plan, SweepDir, SWEEP_FILE};
use crate::spec::{apply, quantized, toml_to_json, Distribution, Method, Parameter, Sweep};

/// The ladder's trials of a sweep, duplicates removed (first occurrence kept).
pub fn plan(sweep: &Sweep) -> Result<Vec<TrialConfig>> {
    let assignments = match sweep.method {
        Method::Grid => grid(&sweep.parameters),
        Method::Random => random(sweep),
    };
    resolve_all(sweep, assignments)
}

/// The held-out targets of a sweep: the grid of the ladder's parameters with the `[targets]`
/// keys' values in place of the ladder's. A target that is also a ladder trial is refused (it
/// would be fitted).
pub fn plan_targets(sweep: &Sweep, ladder: &[TrialConfig]) -> Result<Vec<TrialConfig>> {
    if sweep.targets.is_empty() {
        return Ok(Vec::new());
    }
    let (first, (_, line)) = sweep.targets.first().expect("non-empty");
    let refuse = |message: &str| -> anyhow::Error {
        BadInput(format!("{}:{line}: `targets.{first}`: {message}", sweep.path.display())).into()
    };
    if sweep.method == Method::Random {
        return Err(refuse("targets need a grid ladder (`method = \"grid\"`)"));
    }
    let mut parameters = sweep.parameters.clone();
    for (key, p) in &sweep.targets {
        parameters.insert(key.clone(), p.clone());
    }
    let targets = resolve_all(sweep, grid(&parameters))?;
    let ladder: std::collections::HashSet<String> = ladder.iter().map(TrialConfig::trial_id).collect();
    if let Some(t) = targets.iter().find(|t| ladder.contains(&t.trial_id())) {
        return Err(refuse(&format!(
            "the target {} {} on {:.3e} tokens is also a ladder trial, so it would be fitted",
            t.data.language, t.model.name, t.schedule.tokens
        )));
    }
    Ok(targets)
}

/// Resolves assignments (adding replicates), blaming the line of the key at fault.
fn resolve_all(sweep: &Sweep, assignments: Vec<Assignment>) -> Result<Vec<TrialConfig>> {
    // Replicates vary fastest: each configuration's seeds are planned together.
    let assignments: Vec<Assignment> = assignments
        .into_iter()
        .flat_map(|a| {
            let base_seed = sweep.base.runtime.seed.unwrap_or(0);
            (0..sweep.replicates as u64).map(move |r| {
                let mut a = a.clone();
                if sweep.replicates > 1 {
                    a.push(("seed".to_string(), serde_json::json!(base_seed + r)));
                }
                a
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut trials = Vec::new();
    for assignment in assignments {
        let mut spec = sweep.base.clone();
        for (key, value) in &assignment {
            apply(&mut spec, key, value).map_err(|e| blame(sweep, key, &e.to_string()))?;
        }
        let config = spec.resolve().map_err(|e| {
            // A shape error may come from a key the file does not set (heads from the ladder):
            // blame the key that chose the shape. Any other key the file does not set is
            // missing, and is named as it is (`language`: is required).
            let set_by = |k: &str| assignment.iter().find(|(_, v)| v.get(k).is_some()).map(|(p, _)| p.as_str());
            let shape_keys: &[&str] =
                if SHAPE_DERIVED.contains(&e.key) { &["model", "n_params", "d_model", "n_layers"] } else { &[] };
            let key = std::iter::once(e.key)
                .chain(shape_keys.iter().copied())
                .find_map(|k| set_by(k).or_else(|| sweep.line_of_key(k).map(|_| k)))
                .unwrap_or(e.key);
            let detail = assignment.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ");
            blame(
                sweep,
                key,
                &format!(
                    "{} (in the trial with {})",
                    e.message,
                    if detail.is_empty() { "the base settings".into() } else { detail }
                ),
            )
        })?;
        if seen.insert(config.trial_id()) {
            trials.push(config);
        }
    }
    if trials.is_empty() {
        return Err(BadInput(format!("{}: the sweep plans no trials", sweep.path.display())).into());
    }
    Ok(trials)
}

/// Keys that default from the model's shape, so a problem with one lies with what chose it.
const SHAPE_DERIVED: [&str; 7] = ["model", "d_model", "n_layers", "n_heads", "d_ff", "d_expert", "moe_every"];

fn blame(sweep: &Sweep, key: &str, message: &str) -> anyhow::Error {
    let line = sweep.line_of_key(key).unwrap_or(1);
    BadInput(format!("{}:{line}: `{key}`: {message}", sweep.path.display())).into()
}

type Assignment = Vec<(String, Value)>;

fn values(p: &Parameter) -> Vec<Value> {
    match (&p.values, &p.value) {
        (Some(vs), _) => vs.iter().map(toml_to_json).collect(),
        (_, Some(v)) => vec![toml_to_json(v)],
        _ => Vec::new(),
    }
}

/// Cartesian product, the first parameter varying slowest.
fn grid(parameters: &indexmap::IndexMap<String, (Parameter, usize)>) -> Vec<Assignment> {
    let mut out: Vec<Assignment> = vec![Vec::new()];
    for (key, (p, _)) in parameters {
        let vs = values(p);
        out = out
            .into_iter()
            .flat_map(|a| {
                vs.iter().map(move |v| {
                    let mut a = a.clone();
                    a.push((key.clone(), v.clone()));
                    a
                })
            })
            .collect();
    }
    out
}

/// `trials` independent draws from a generator seeded by the sweep's seed.
fn random(sweep: &Sweep) -> Vec<Assignment> {
    let mut rng = ChaCha8Rng::seed_from_u64(sweep.seed);
    (0..sweep.trials)
        .map(|_| {
            sweep
                .parameters
                .iter()
                .map(|(key, (p, _))| {
                    let value = match p.distribution {
                        None => {
                            let vs = values(p);
                            vs[pick(p.probabilities.as_deref(), vs.len(), &mut rng)].clone()
                        }
                        Some(d) => draw(d, p, &mut rng),
                    };
                    (key.clone(), value)
                })
                .collect()
        })
        .collect()
}

/// An index into `n` values: uniform, or weighted by `probabilities` (which sum to 1).
fn pick(probabilities: Option<&[f64]>, n: usize, rng: &mut ChaCha8Rng) -> usize {
    let Some(probabilities) = probabilities else { return rng.random_range(0..n) };
    let u: f64 = rng.random_range(0.0..1.0);
    let mut total = 0.0;
    // The last value takes what rounding leaves of the sum.
    probabilities
        .iter()
        .position(|p| {
            total += p;
            u < total
        })
        .unwrap_or(n - 1)
}

fn draw(d: Distribution, p: &Parameter, rng: &mut ChaCha8Rng) -> Value {
    let (min, max) = (p.min.unwrap(), p.max.unwrap());
    match d {
        Distribution::Uniform => serde_json::json!(rng.random_range(min..max)),
        Distribution::LogUniform => serde_json::json!(rng.random_range(min.ln()..max.ln()).exp()),
        Distribution::IntUniform => serde_json::json!(rng.random_range(min as i64..=max as i64)),
        Distribution::QUniform => quantized(rng.random_range(min..max), p.q.unwrap_or(1.0)),
    }
}

/// A sweep planned against its corpora.
pub struct Planned {
    /// Every trial, bound to its corpus: the ladder, then the held-out targets.
    pub trials: Vec<TrialConfig>,
    /// Ids of the targets among `trials`.
    pub targets: Vec<String>,
    pub corpora: Corpora,
    /// What planning left out and why (languages the corpus lacks, under
    /// `skip_missing_languages`).
    pub notes: Vec<String>,
}

/// Plans a sweep against its corpora: expands it, builds (or reuses) each corpus it needs and
/// binds every trial to its corpus, so ids cover the corpus contents. Nothing is written under
/// the runs folder; a language the corpus lacks is bad input naming the sweep file's line
/// (unless the sweep says `skip_missing_languages = true`).
pub fn plan_with_corpora(sweep: &Sweep, quiet: bool) -> Result<Planned> {
    let bases = crate::bases::plan_pretrain(sweep)?;
    let ladder = plan(sweep)?;
    let targets = plan_targets(sweep, &ladder)?;
    // Bases first: a fine-tuning trial waits for its base, so the base should start early.
    let trials: Vec<(Role, TrialConfig)> = bases
        .iter()
        .map(|(_, c)| (Role::Base, c.clone()))
        .chain(ladder.into_iter().map(|c| (Role::Ladder, c)))
        .chain(targets.into_iter().map(|c| (Role::Target, c)))
        .collect();
    let corpora = build_corpora(&trials.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(), quiet)?;
    let mut bound = Vec::new();
    let mut missing = std::collections::BTreeSet::new();
    for (role, config) in trials {
        match corpora.bind(config, sweep) {
            Ok(c) => bound.push((role, c)),
            // A base is never left out: the trials that start from it would have nothing.
            Err(Missing { language, error }) if sweep.skip_missing_languages && role != Role::Base => {
                missing.insert(format!("{language}: {error}"));
            }
            Err(Missing { error, .. }) => return Err(error.into()),
        }
    }
    let bound_bases: Vec<(String, TrialConfig)> =
        bases.iter().map(|(name, _)| name.clone()).zip(bound.iter().map(|(_, c)| c.clone())).collect();
    let (roles, configs): (Vec<Role>, Vec<TrialConfig>) = bound.into_iter().unzip();
    let configs = crate::bases::resolve(sweep, &bound_bases, configs)?;
    let mut seen = std::collections::HashSet::new();
    let (mut trials, mut target_ids) = (Vec::new(), Vec::new());
    for (role, c) in roles.into_iter().zip(configs) {
        if seen.insert(c.trial_id()) {
            if role == Role::Target {
                target_ids.push(c.trial_id());
            }
            trials.push(c);
        }
    }
    let notes: Vec<String> = missing.into_iter().map(|m| format!("left out language {m}")).collect();
    if trials.iter().all(|c| bound_bases.iter().any(|(_, b)| b.trial_id() == c.trial_id())) {
        return Err(BadInput(format!(
            "{}: no planned trial has a language the corpus holds ({})",
            sweep.path.display(),
            notes.join("; ")
        ))
        .into());
    }
    Ok(Planned { trials, targets: target_ids, corpora, notes })
}

/// Where a planned trial comes from in the sweep file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A `[pretrain.*]` base.
    Base,
    Ladder,
    Target,
}

/// Plans the sweep and writes its folder (copy of the file, plan). A plan estimated to take
/// over a day is bad input unless `cfg.confirmed`; then nothing is written.
pub fn prepare(sweep: &Sweep, cfg: &RunConfig) -> Result<(SweepDir, Plan, Planned)> {
    let mut planned = plan_with_corpora(sweep, cfg.quiet)?;
    let (trials, targets) = (planned.trials.clone(), planned.targets.clone());
    let index = RunsIndex::refresh(&cfg.runs_root);
    planned.notes.extend(index.notes.iter().cloned());
    let (seconds, source) = crate::estimate::plan_seconds_with(&trials, &index);
    if seconds > crate::estimate::CONFIRM_ABOVE_S && !cfg.confirmed {
        return Err(BadInput(format!(
            "{}: the plan needs about {:.1} days on this machine (throughput from {source}); check `tokens` and the model sizes, or confirm with --yes",
            sweep.path.display(),
            seconds / 86_400.0
        ))
        .into());
    }
    let dir = SweepDir::new(&cfg.runs_root, &sweep.name);
    std::fs::create_dir_all(&dir.path).with_context(|| format!("creating {}", dir.path.display()))?;
    codescale_core::atomic::write_atomic(&dir.path.join(SWEEP_FILE), sweep.source.as_bytes())?;
    // Trunk folders relative to the runs root: executors join their own root to them.
    let branches = plan_branches(sweep, &trials, Path::new(""));
    let plan = Plan { sweep: sweep.name.clone(), trials, targets, branches, early_stop: sweep.early_stop.clone() };
    dir.write_plan(&plan)?;
    Ok((dir, plan, planned))
}

/// The trunk each trial of the plan forks from (none when the sweep turns branching off).
pub fn plan_branches(sweep: &Sweep, trials: &[TrialConfig], runs_root: &Path) -> Vec<Option<Branch>> {
    if !sweep.branches {
        return vec![None; trials.len()];
    }
    let rungs = |c: &TrialConfig| sweep.early_stop.as_ref().map(|rule| crate::asha::rungs(rule, c)).unwrap_or_default();
    crate::branches::plan(trials, runs_root, rungs)
}

/// The corpora a plan needs, built or reused once per (recipe, tokenizer).
pub struct Corpora {
    built: BTreeMap<(String, String), Corpus>,
}

impl Corpora {
    pub fn get(&self, config: &TrialConfig) -> Result<&Corpus> {
        self.built.get(&(config.data.corpus.clone(), config.data.tokenizer.clone())).ok_or_else(|| {
            anyhow::anyhow!("corpus {} ({}) was not prepared", config.data.corpus, config.data.tokenizer)
        })
    }

    /// `config` bound to its corpus; a language the corpus lacks is bad input at the line of
    /// the sweep file that chose it.
    pub fn bind(&self, config: TrialConfig, sweep: &Sweep) -> Result<TrialConfig, Missing> {
        let corpus = self
            .get(&config)
            .map_err(|e| Missing { language: config.data.language.clone(), error: BadInput(format!("{e:#}")) })?;
        if !corpus.languages().iter().any(|l| l == &config.data.language) {
            let line = sweep.line_of_key("language").unwrap_or(1);
            let skipped = corpus
                .manifest
                .skipped
                .get(&config.data.language)
                .map(|why| format!("; the recipe skipped it: {why}"))
                .unwrap_or_default();
            let error = BadInput(format!(
                "{}:{line}: `language`: `{}` is not in corpus {} (it has: {}){skipped}",
                sweep.path.display(),
                config.data.language,
                config.data.corpus,
                corpus.languages().join(", ")
            ));
            return Err(Missing { language: config.data.language, error });
        }
        let key = CorpusKey { manifest: corpus.hash().to_string(), tokenizer: corpus.tokenizer_hash().to_string() };
        Ok(config.bound_to(key))
    }
}

/// A trial whose language its corpus lacks.
pub struct Missing {
    pub language: String,
    pub error: BadInput,
}

pub fn build_corpora(trials: &[TrialConfig], quiet: bool) -> Result<Corpora> {
    let mut built = BTreeMap::new();
    for c in trials {
        let key = (c.data.corpus.clone(), c.data.tokenizer.clone());
        if built.contains_key(&key) {
            continue;
        }
        let corpus =
            corpus_for(c, quiet).with_context(|| format!("corpus {} ({})", c.data.corpus, c.data.tokenizer))?;
        built.insert(key, corpus);
    }
    Ok(Corpora { built })
}

/// Builds or reuses the corpus a trial trains on (its recipe, with its tokenizer, in the default
/// folder); bad recipes become [`BadInput`].
pub fn corpus_for(config: &TrialConfig, quiet: bool) -> Result<Corpus> {
    let opts = BuildOptions { tokenizer: Some(config.data.tokenizer.clone()), quiet, ..Default::default() };
    codescale_data::build(Path::new(&config.data.corpus), &opts).map_err(codescale_data::CorpusError::into_anyhow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sweep(text: &str) -> Result<Sweep> {
        Sweep::parse(Path::new("s.toml"), text)
    }

    #[test]
    fn grid_expands_in_order() {
        let s = sweep("name = \"g\"\n[base]\nlanguage = \"python\"\n[parameters]\nmodel = { values = [\"d64-l2\", \"d96-l3\"] }\ntokens = { values = [2e5, 4e5, 8e5] }\n").unwrap();
        let trials = plan(&s).unwrap();
        assert_eq!(trials.len(), 6);
        assert_eq!((trials[0].model.name.as_str(), trials[0].schedule.tokens), ("d64-l2", 2e5));
        assert_eq!((trials[5].model.name.as_str(), trials[5].schedule.tokens), ("d96-l3", 8e5));
    }

    #[test]
    fn random_is_seeded() {
        let text = "name = \"r\"\nmethod = \"random\"\ntrials = 5\nseed = 3\n[base]\nlanguage = \"go\"\nmodel = \"d64-l2\"\n[parameters]\nlr = { distribution = \"log_uniform\", min = 1e-4, max = 1e-2 }\nbatch_size = { distribution = \"int_uniform\", min = 8, max = 32 }\n";
        let a: Vec<String> = plan(&sweep(text).unwrap()).unwrap().iter().map(|c| c.trial_id()).collect();
        let b: Vec<String> = plan(&sweep(text).unwrap()).unwrap().iter().map(|c| c.trial_id()).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        for c in plan(&sweep(text).unwrap()).unwrap() {
            assert!((1e-4..1e-2).contains(&c.optimizer.lr) && (8..=32).contains(&c.optimizer.batch_size));
        }
    }

    #[test]
    fn probabilities_weight_the_draw_and_q_uniform_rounds() {
        let text = "name = \"r\"\nmethod = \"random\"\ntrials = 400\n[base]\nlanguage = \"go\"\nmodel = \"d64-l2\"\n[parameters]\nschedule = { values = [\"cosine\", \"wsd\"], probabilities = [0.9, 0.1] }\nbatch_size = { distribution = \"q_uniform\", min = 8, max = 64, q = 8 }\nwarmup = { distribution = \"q_uniform\", min = 0, max = 0.3, q = 0.1 }\nlr = { distribution = \"log_uniform\", min = 1e-4, max = 1e-2 }\n";
        let trials = plan(&sweep(text).unwrap()).unwrap();
        assert_eq!(trials.len(), 400);
        let wsd = trials.iter().filter(|c| c.schedule.kind == codescale_core::Schedule::Wsd).count();
        assert!((15..=70).contains(&wsd), "about 10 % wsd, got {wsd} of {}", trials.len());
        assert!(trials.iter().all(|c| c.optimizer.batch_size % 8 == 0 && (8..=64).contains(&c.optimizer.batch_size)));
        assert!(trials.iter().all(|c| ((c.schedule.warmup * 10.0).round() - c.schedule.warmup * 10.0).abs() < 1e-9));
    }

    #[test]
    fn table_values_set_several_keys() {
        let s = sweep("name = \"m\"\n[base]\nlanguage = \"go\"\nmodel = \"d64-l2\"\n[parameters]\nfamily = { values = [{ arch = \"dense\" }, { arch = \"moe\", n_experts = 4, top_k = 1 }] }\n").unwrap();
        let trials = plan(&s).unwrap();
        assert_eq!(trials.len(), 2);
        assert_eq!(
            (trials[1].model.arch, trials[1].model.n_experts, trials[1].model.top_k),
            (codescale_core::Arch::Moe, 4, 1)
        );
        let e = plan(&sweep("name = \"m\"\n[base]\nlanguage = \"go\"\nmodel = \"d64-l2\"\n[parameters]\nfamily = { values = [{ arch = \"moe\", n_experts = 2, top_k = 3 }] }\n").unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("s.toml:6: `family`"), "{e}");
    }

    #[test]
    fn replicates_are_seeds_of_each_configuration() {
        let s = sweep("name = \"r\"\nreplicates = 3\n[base]\nlanguage = \"go\"\nseed = 7\n[parameters]\nmodel = { values = [\"d64-l2\", \"d96-l3\"] }\n").unwrap();
        let trials = plan(&s).unwrap();
        assert_eq!(
            trials.iter().map(|c| (c.model.name.as_str(), c.runtime.seed)).collect::<Vec<_>>(),
            [("d64-l2", 7), ("d64-l2", 8), ("d64-l2", 9), ("d96-l3", 7), ("d96-l3", 8), ("d96-l3", 9)]
        );
        assert_eq!(trials[0].replicate_id(), trials[2].replicate_id());
        assert_ne!(trials[0].replicate_id(), trials[3].replicate_id());
        let e = sweep(
            "name = \"r\"\nreplicates = 2\n[base]\nlanguage = \"go\"\n[parameters]\nseed = { values = [1, 2] }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("s.toml:2: `replicates`"), "{e}");
    }

    #[test]
    fn targets_replace_the_ladder_keys_they_name() {
        let s = sweep("name = \"t\"\n[base]\nlanguage = \"go\"\n[parameters]\nlanguage = { values = [\"go\", \"rust\"] }\nmodel = { values = [\"d64-l2\", \"d96-l3\"] }\ntokens = { values = [2e5, 4e5] }\n[targets]\nmodel = { values = [\"d192-l4\"] }\ntokens = { values = [4e5] }\n").unwrap();
        let ladder = plan(&s).unwrap();
        let targets = plan_targets(&s, &ladder).unwrap();
        assert_eq!(ladder.len(), 8);
        assert_eq!(
            targets
                .iter()
                .map(|c| (c.data.language.as_str(), c.model.name.as_str(), c.schedule.tokens))
                .collect::<Vec<_>>(),
            [("go", "d192-l4", 4e5), ("rust", "d192-l4", 4e5)]
        );
        let clash = sweep("name = \"t\"\n[base]\nlanguage = \"go\"\n[parameters]\nmodel = { values = [\"d64-l2\", \"d96-l3\"] }\n[targets]\nmodel = { values = [\"d96-l3\"] }\n").unwrap();
        let e = plan_targets(&clash, &plan(&clash).unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("s.toml:7: `targets.model`") && e.to_string().contains("also a ladder trial"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_key_is_named_not_the_shape_beside_it() {
        let e = plan(&sweep("name = \"x\"\n[base]\nmodel = \"d64-l2\"\n").unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("s.toml:1: `language`: is required"), "{e}");
    }

    #[test]
    fn impossible_shape_names_the_line() {
        let e = plan(&sweep("name = \"x\"\n[base]\nlanguage = \"go\"\nn_heads = 3\n[parameters]\nmodel = { values = [\"d64-l2\"] }\n").unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("s.toml:4: `n_heads`"), "{e}");
    }
}
