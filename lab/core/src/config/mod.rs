//! The trial configuration: what a user writes ([`TrialSpec`], every key optional) and what a
//! trial runs with ([`TrialConfig`], every key resolved). A trial's id is the hash of the latter.
//!
//! Both are made of sections: data, model, optimizer, schedule, evaluation and runtime, one file
//! each, where a section's keys are declared, defaulted and checked. Files keep their flat keys
//! (`lr = 3e-3`, not `optimizer.lr`): each section's spec knows its keys, and the resolved
//! sections are flattened into one JSON object, the one trial ids have always hashed. Adding a
//! key touches one section's file.

use serde::{Deserialize, Serialize};

/// Declares a section's spec: each key optional, as trial files, a sweep's `[base]` and sweep
/// axes give them, with the section's key table and a typed setter (the value is deserialized
/// into the key's own type, so `batch_size = "many"` is refused naming `batch_size`). A field
/// spelled otherwise in files names its key: `name as "model": String`.
macro_rules! spec_section {
    ($(#[$meta:meta])* $spec:ident { $( $(#[$fmeta:meta])* $field:ident $(as $key:literal)?: $ty:ty, )* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $spec { $( $(#[$fmeta])* pub $field: Option<$ty>, )* }

        impl $spec {
            /// This section's keys, as files spell them.
            pub const KEYS: &'static [&'static str] = &[$( spec_section!(@key $field $($key)?) ),*];
        }

        impl $crate::config::Section for $spec {
            fn keys(&self) -> &'static [&'static str] {
                Self::KEYS
            }
            fn set(&mut self, key: &str, value: serde_json::Value) -> Result<(), serde_json::Error> {
                $( if key == spec_section!(@key $field $($key)?) {
                    self.$field = Some(serde_json::from_value::<$ty>(value)?);
                    return Ok(());
                } )*
                unreachable!("`{key}` is not a key of {}", stringify!($spec))
            }
            fn merge(&mut self, other: &Self) {
                $( if other.$field.is_some() {
                    self.$field = other.$field.clone();
                } )*
            }
        }
    };
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
}

mod data;
mod eval;
mod model;
mod optimizer;
mod runtime;
mod schedule;

pub use data::{vocab_size, CorpusKey, DataSection, DataSpec, Sft, DEFAULT_FIM_SPM_RATE, FIM_SENTINELS};
pub use eval::{EvalSection, EvalSpec, DEFAULT_EVAL_TOKENS, DEFAULT_TASK_EXAMPLES};
pub use model::{Arch, Gate, ModelSection, ModelSpec, GPT2_INIT_STD};
pub use optimizer::{Lr, LrRule, OptimizerSection, OptimizerSpec, RuleKind, LR_RULE_D_REF, LR_RULE_N_REF};
pub use runtime::{Backend, Precision, RuntimeSection, RuntimeSpec};
pub use schedule::{DecayShape, Schedule, ScheduleSection, ScheduleSpec};

/// One section of a [`TrialSpec`]: the keys it owns and how a value is set on one of them.
pub trait Section {
    fn keys(&self) -> &'static [&'static str];
    /// Sets `key`, one of [`Section::keys`], deserializing `value` into the key's type.
    fn set(&mut self, key: &str, value: serde_json::Value) -> Result<(), serde_json::Error>;
    /// Keys set in `other` win.
    fn merge(&mut self, other: &Self)
    where
        Self: Sized;
}

/// The version of the trainer's numerics, hashed into every trial id. Bump it whenever a change
/// alters what a trial computes (its losses), so that no earlier result is reused as if it came
/// from the new code; `lab/train/tests/golden.rs` fails when the numerics change without it.
pub const NUMERICS_VERSION: u32 = 6;

/// Every key a trial file, a sweep's `[base]` or a sweep parameter may set, by section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrialSpec {
    pub data: DataSpec,
    pub model: ModelSpec,
    pub optimizer: OptimizerSpec,
    pub schedule: ScheduleSpec,
    pub eval: EvalSpec,
    pub runtime: RuntimeSpec,
}

/// A fully resolved trial. Its canonical JSON (the sections' keys in one flat object) hashes to
/// the trial id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialConfig {
    #[serde(flatten)]
    pub data: DataSection,
    #[serde(flatten)]
    pub model: ModelSection,
    #[serde(flatten)]
    pub optimizer: OptimizerSection,
    #[serde(flatten)]
    pub schedule: ScheduleSection,
    #[serde(flatten)]
    pub eval: EvalSection,
    #[serde(flatten)]
    pub runtime: RuntimeSection,
    /// Set when the trial is bound to a built corpus (planning, `train`); part of the id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub corpus_key: Option<CorpusKey>,
}

/// A configuration problem, naming the key so callers can point at its line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

/// Why a key could not be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetError {
    #[error("unknown key `{key}` (known keys: {known})")]
    UnknownKey { key: String, known: String },
    /// The value is not of the key's type, or not a finite number.
    #[error("`{key}`: {message}")]
    Value { key: String, message: String },
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { key, message: message.into() }
}

/// A number JSON cannot hold (NaN or an infinity) where a trial key's value was expected.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{0} is not a finite number")]
pub struct NotFinite(pub f64);

/// A TOML value as JSON, refusing what JSON cannot hold: serde would turn `nan` and `inf` into
/// `null`, which the spec reads as "not set" — a silent default in place of a typo.
pub fn json_of_toml(v: &toml::Value) -> Result<serde_json::Value, NotFinite> {
    fn check(v: &toml::Value) -> Result<(), NotFinite> {
        match v {
            toml::Value::Float(x) if !x.is_finite() => Err(NotFinite(*x)),
            toml::Value::Array(a) => a.iter().try_for_each(check),
            toml::Value::Table(t) => t.values().try_for_each(check),
            _ => Ok(()),
        }
    }
    check(v)?;
    // Finite numbers, strings, booleans, dates, arrays and tables all have a JSON form.
    Ok(serde_json::to_value(v).expect("a finite TOML value is JSON"))
}

/// Upper bounds that no trial of this lab can reach: a value beyond them is a typo, and
/// accepting it would plan a run that never ends.
pub mod limits {
    /// Tokens per trial (10¹³: beyond the largest published training runs).
    pub const MAX_TOKENS: f64 = 1e13;
    /// Non-embedding parameters of a `n_params` target.
    pub const MAX_PARAMS: f64 = 1e13;
    pub const MAX_LR: f64 = 10.0;
    pub const MAX_WIDTH: usize = 1 << 16;
    pub const MAX_LAYERS: usize = 1024;
    pub const MAX_EXPERTS: usize = 1024;
    pub const MAX_SEQ_LEN: usize = 1 << 16;
    pub const MAX_BATCH: usize = 1 << 20;
}

impl TrialSpec {
    fn sections_mut(&mut self) -> [&mut dyn Section; 6] {
        [&mut self.data, &mut self.model, &mut self.optimizer, &mut self.schedule, &mut self.eval, &mut self.runtime]
    }

    /// Every key, section by section.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        [DataSpec::KEYS, ModelSpec::KEYS, OptimizerSpec::KEYS, ScheduleSpec::KEYS, EvalSpec::KEYS, RuntimeSpec::KEYS]
            .into_iter()
            .flatten()
            .copied()
    }

    /// Keys set in `other` win.
    pub fn merged(&self, other: &TrialSpec) -> TrialSpec {
        let mut merged = self.clone();
        merged.data.merge(&other.data);
        merged.model.merge(&other.model);
        merged.optimizer.merge(&other.optimizer);
        merged.schedule.merge(&other.schedule);
        merged.eval.merge(&other.eval);
        merged.runtime.merge(&other.runtime);
        merged
    }

    /// Sets one key from its string form, as `--set key=value` does: TOML syntax, or a bare
    /// word taken as a string.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SetError> {
        match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(t) => self.set_toml(key, &t["v"]),
            Err(_) => self.set_value(key, serde_json::Value::String(value.to_string())),
        }
    }

    /// Sets one key to a TOML value, as a trial file gives it.
    pub fn set_toml(&mut self, key: &str, value: &toml::Value) -> Result<(), SetError> {
        let json = json_of_toml(value).map_err(|e| SetError::Value { key: key.into(), message: e.to_string() })?;
        self.set_value(key, json)
    }

    /// Sets one key to a value of its type, in the section that owns the key.
    pub fn set_value(&mut self, key: &str, value: serde_json::Value) -> Result<(), SetError> {
        match self.sections_mut().into_iter().find(|s| s.keys().contains(&key)) {
            Some(section) => {
                section.set(key, value).map_err(|e| SetError::Value { key: key.into(), message: e.to_string() })
            }
            None => {
                Err(SetError::UnknownKey { key: key.into(), known: TrialSpec::keys().collect::<Vec<_>>().join(", ") })
            }
        }
    }

    /// Fills defaults and checks that the trial can run, section by section; the learning
    /// rate last, since a rule of N and D needs the model and the budget.
    pub fn resolve(&self) -> Result<TrialConfig, ConfigError> {
        let data = self.data.resolve()?;
        let model = self.model.resolve()?;
        let optimizer = self.optimizer.resolve()?;
        let schedule = self.schedule.resolve(optimizer.batch_size * data.seq_len)?;
        let eval = self.eval.resolve(data.seq_len)?;
        let runtime = self.runtime.resolve()?;
        let mut config = TrialConfig { data, model, optimizer, schedule, eval, runtime, corpus_key: None };
        if config.total_steps() < 1 {
            return Err(bad("tokens", "gives no training step"));
        }
        config.optimizer.lr =
            self.optimizer.rate_for(&config.optimizer, config.params().n_params, config.schedule.tokens)?;
        Ok(config)
    }
}

fn positive(key: &'static str, v: usize) -> Result<(), ConfigError> {
    within(key, v, usize::MAX)
}
fn within(key: &'static str, v: usize, max: usize) -> Result<(), ConfigError> {
    match v {
        0 => Err(bad(key, "must be > 0")),
        v if v > max => Err(bad(key, format!("{v} is more than {max}"))),
        _ => Ok(()),
    }
}
fn non_negative(key: &'static str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(bad(key, format!("{v} must be a finite number ≥ 0")))
    }
}
fn unit(key: &'static str, v: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(bad(key, format!("{v} must lie in [0, 1]")))
    }
}
/// Adam's decay rates: at 1 the moments never forget and the bias correction divides by zero.
fn below_one(key: &'static str, v: f64) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(bad(key, format!("{v} must lie in [0, 1)")))
    }
}

impl TrialConfig {
    pub fn vocab_size(&self) -> usize {
        self.data.vocab_size()
    }
    pub fn tokens_per_step(&self) -> usize {
        self.optimizer.batch_size * self.data.seq_len
    }
    pub fn total_steps(&self) -> usize {
        (self.schedule.tokens / self.tokens_per_step() as f64).floor() as usize
    }
    pub fn accumulation_steps(&self) -> usize {
        self.optimizer.accumulation_steps()
    }
    pub fn warmup_steps(&self) -> usize {
        let total = self.total_steps();
        if self.schedule.warmup < 1.0 {
            (self.schedule.warmup * total as f64).round() as usize
        } else {
            (self.schedule.warmup as usize).min(total)
        }
    }
    /// Evaluation every this many steps (0 in the config means about ten evaluations).
    pub fn eval_every(&self) -> usize {
        if self.eval.eval_interval > 0 {
            self.eval.eval_interval
        } else {
            self.tenth_of_steps()
        }
    }
    /// Checkpoint interval for a scheduled run, which must survive a crash: the config's, or
    /// about ten checkpoints (0 in the config means none for a lone `train`).
    pub fn checkpoint_every(&self) -> usize {
        if self.runtime.checkpoint_interval > 0 {
            self.runtime.checkpoint_interval
        } else {
            self.tenth_of_steps()
        }
    }
    fn tenth_of_steps(&self) -> usize {
        (self.total_steps() / 10).max(1)
    }
    /// Learning rate at optimizer step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        crate::schedule::lr_at(self, step)
    }
    /// The canonical form of the configuration: sorted keys, without the keys that change how
    /// a trial runs but not what it computes (`threads`, `device`, `checkpoint_interval`) and
    /// without the corpus it is bound to.
    pub fn canonical_json(&self) -> String {
        let mut c = self.clone();
        c.corpus_key = None;
        canonical(&c.without_placement())
    }
    /// This config without the keys that only say where and how often it runs.
    fn without_placement(mut self) -> TrialConfig {
        self.runtime.threads = None;
        self.runtime.device = None;
        self.runtime.checkpoint_interval = 0;
        self
    }
    /// The trial's id: the hash of everything that determines its result — the configuration,
    /// the corpus contents and tokenizer ([`CorpusKey`]) and the trainer's numerics version.
    pub fn trial_id(&self) -> String {
        let key = serde_json::to_string(&self.corpus_key).expect("key serializes");
        short_hash(&format!("{}\ncorpus {key}\nnumerics {NUMERICS_VERSION}", self.canonical_json()))
    }
    /// The hash of the configuration alone (what trial ids were before they covered the corpus
    /// and the code): trials with the same `config_id` differ at most in corpus or code.
    pub fn config_id(&self) -> String {
        short_hash(&self.canonical_json())
    }
    /// The id shared by replicates: the configuration without its seed.
    pub fn replicate_id(&self) -> String {
        let mut c = self.clone();
        c.runtime.seed = 0;
        c.config_id()
    }
    /// Whether a standalone run of this trial evaluates after `step` optimizer steps: every
    /// `eval_every()` steps, at the end, and at the ASHA rungs (`rung_steps`).
    pub fn evaluates_at(&self, step: usize, rung_steps: &[usize]) -> bool {
        step > 0 && (step.is_multiple_of(self.eval_every()) || step == self.total_steps() || rung_steps.contains(&step))
    }
    /// WSD: the step at which the cooldown starts (the steps before it run at the peak rate).
    pub fn decay_start(&self) -> usize {
        let total = self.total_steps().max(1);
        self.warmup_steps().max(total - (self.schedule.decay_frac * total as f64).round() as usize)
    }
    /// For WSD trials, the key of the constant-rate trunk this trial shares with every trial
    /// that differs from it only in budget and cooldown (`tokens`, `decay_frac`, `decay_shape`,
    /// `final_lr_ratio`, evaluation and checkpoint intervals): their runs coincide until their
    /// cooldowns begin. `None` for other schedules, and for fine-tuning trials (`init_from`).
    pub fn trunk_id(&self) -> Option<String> {
        // A fine-tuning trial starts from its base's weights, which no trunk has.
        (self.schedule.kind == Schedule::Wsd && self.model.init_from.is_none()).then(|| {
            let t = self.trunk_config(0);
            short_hash(&format!(
                "trunk\n{}\ncorpus {}\nnumerics {NUMERICS_VERSION}",
                canonical(&t.without_placement()),
                serde_json::to_string(&self.corpus_key).expect("key serializes")
            ))
        })
    }
    /// The trunk's own config, trained for `steps` steps: a constant rate after this trial's
    /// warmup (in steps, so that budgets share it), no cooldown.
    pub fn trunk_config(&self, steps: usize) -> TrialConfig {
        let mut trunk = self.clone();
        trunk.schedule = ScheduleSection {
            tokens: (steps * self.tokens_per_step()) as f64,
            warmup: self.warmup_steps() as f64,
            kind: Schedule::Constant,
            decay_frac: 1.0,
            decay_shape: DecayShape::Linear,
            final_lr_ratio: 1.0,
        };
        trunk.eval.eval_interval = 0;
        trunk
    }
    /// This config bound to a corpus.
    pub fn bound_to(mut self, key: CorpusKey) -> TrialConfig {
        self.corpus_key = Some(key);
        self
    }
    pub fn params(&self) -> crate::accounting::Params {
        crate::accounting::Params::of(&self.model_config())
    }
}

fn canonical<T: Serialize>(value: &T) -> String {
    let value = serde_json::to_value(value).expect("config serializes");
    // serde_json's map keeps insertion order with preserve_order on; sort explicitly.
    let sorted: std::collections::BTreeMap<String, serde_json::Value> = match value {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => unreachable!(),
    };
    serde_json::to_string(&sorted).expect("config serializes")
}

fn short_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TrialSpec {
        let mut s = TrialSpec::default();
        s.data.language = Some("python".into());
        s.model.name = Some("d64-l2".into());
        s
    }

    #[test]
    fn resolves_named_shape_with_defaults() {
        let c = spec().resolve().unwrap();
        assert_eq!((c.model.d_model, c.model.n_layers, c.model.n_heads), (64, 2, 2));
        assert_eq!(c.vocab_size(), 257);
        assert_eq!(c.total_steps(), 1_000_000 / (32 * 128));
    }

    /// A key belongs to one section, and the resolved config's flat JSON has exactly the keys
    /// files set (but `n_params`, which resolves into a shape): the sections are the file
    /// format's keys regrouped, not a second vocabulary.
    #[test]
    fn every_key_is_one_sections_and_the_flat_json_keeps_the_file_keys() {
        let keys: Vec<&str> = TrialSpec::keys().collect();
        let unique: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len(), "a key in two sections: {keys:?}");
        let mut s = moe(2);
        for (k, v) in [
            ("capacity_factor", "1.5"),
            ("device", "1"),
            ("threads", "2"),
            ("precision", "bf16"),
            ("init_std", "0.03"),
            ("fim_rate", "0.5"),
            ("task_examples", "64"),
            ("sft", "functions"),
            ("init_from", "0123456789abcdef"),
        ] {
            s.set(k, v).unwrap();
        }
        s.set("backend", "cuda").unwrap();
        s.set("decay_shape", "\"1-sqrt\"").unwrap();
        let json = serde_json::to_value(s.resolve().unwrap()).unwrap();
        let mut written: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        written.sort();
        let mut expected: Vec<&str> = keys.iter().copied().filter(|k| *k != "n_params").collect();
        expected.sort();
        assert_eq!(written, expected);
        let back: TrialConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, s.resolve().unwrap(), "a config reads back from its flat JSON");
    }

    /// `init_std`, the key added to show what a new key takes: a line in its section's spec, a
    /// field with its default, a check; trials that leave it at GPT-2's 0.02 keep their ids.
    #[test]
    fn init_std_is_a_model_key_that_moves_the_id_only_when_set_off_its_default() {
        let default = spec().resolve().unwrap();
        assert_eq!(default.model.init_std, 0.02);
        assert!(!serde_json::to_string(&default).unwrap().contains("init_std"), "old trials keep their ids");
        let mut same = spec();
        same.set("init_std", "0.02").unwrap();
        assert_eq!(same.resolve().unwrap().trial_id(), default.trial_id());
        let mut wider = spec();
        wider.set("init_std", "0.04").unwrap();
        let wider = wider.resolve().unwrap();
        assert_ne!(wider.trial_id(), default.trial_id());
        let back: TrialConfig = serde_json::from_str(&serde_json::to_string(&wider).unwrap()).unwrap();
        assert_eq!(back.model.init_std, 0.04);
        for v in ["0", "-0.1", "2"] {
            let mut s = spec();
            s.set("init_std", v).unwrap();
            assert_eq!(s.resolve().unwrap_err().key, "init_std", "init_std = {v}");
        }
        assert!(spec().set("init_std", "nan").is_err());
    }

    /// FIM keys: out of the id at rate 0 (every trial before them), three sentinel ids more in
    /// the vocabulary when on, and refused outside [0, 1] or ordered without FIM.
    #[test]
    fn fim_keys_move_the_id_and_the_vocabulary_only_when_fim_is_on() {
        let default = spec().resolve().unwrap();
        assert!(!serde_json::to_string(&default).unwrap().contains("fim"), "old trials keep their ids");
        let mut off = spec();
        off.set("fim_rate", "0").unwrap();
        assert_eq!(off.resolve().unwrap().trial_id(), default.trial_id());
        let mut on = spec();
        on.set("fim_rate", "0.5").unwrap();
        let on = on.resolve().unwrap();
        assert_ne!(on.trial_id(), default.trial_id());
        assert_eq!((on.data.fim_spm_rate, on.vocab_size()), (DEFAULT_FIM_SPM_RATE, 257 + FIM_SENTINELS));
        let back: TrialConfig = serde_json::from_str(&serde_json::to_string(&on).unwrap()).unwrap();
        assert_eq!(back, on);
        let mut psm_only = spec();
        psm_only.set("fim_rate", "0.9").unwrap();
        psm_only.set("fim_spm_rate", "0").unwrap();
        let psm_only = psm_only.resolve().unwrap();
        let back: TrialConfig = serde_json::from_str(&serde_json::to_string(&psm_only).unwrap()).unwrap();
        assert_eq!(back.data.fim_spm_rate, 0.0);
        for (key, value, other) in [
            ("fim_rate", "1.5", None),
            ("fim_rate", "-0.1", None),
            ("fim_spm_rate", "0.5", None),
            ("fim_spm_rate", "2", Some(("fim_rate", "0.5"))),
            ("fim_rate", "0.5", Some(("tokenizer", "\"bpe:65536\""))),
        ] {
            let mut s = spec();
            s.set(key, value).unwrap();
            if let Some((k, v)) = other {
                s.set(k, v).unwrap();
            }
            assert_eq!(s.resolve().unwrap_err().key, key, "{key} = {value} with {other:?}");
        }
    }

    /// docs/guide/keys.md is where users look keys up: every key has its row there.
    #[test]
    fn every_key_is_documented_in_the_guide() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/guide/keys.md");
        let guide = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let missing: Vec<&str> = TrialSpec::keys().filter(|k| !guide.contains(&format!("`{k}`"))).collect();
        assert!(missing.is_empty(), "keys without a row in {}: {missing:?}", path.display());
    }

    #[test]
    fn an_unknown_key_is_named_with_the_known_ones() {
        let e = spec().set("learning_rate", "0.1").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown key `learning_rate` (known keys: corpus, language,") && e.contains(" lr,"),
            "{e}"
        );
        let e = spec().set("lr", "nan").unwrap_err();
        assert!(
            matches!(&e, SetError::Value { key, message } if key == "lr" && message.contains("not a finite number")),
            "{e}"
        );
    }

    #[test]
    fn id_is_stable_and_ignores_threads() {
        let a = spec().resolve().unwrap();
        let mut b = a.clone();
        b.runtime.threads = Some(7);
        assert_eq!(a.trial_id(), b.trial_id());
        b.optimizer.lr *= 2.0;
        assert_ne!(a.trial_id(), b.trial_id());
    }

    #[test]
    fn precision_is_in_the_canonical_config_only_when_not_f32() {
        let a = spec().resolve().unwrap();
        assert!(!serde_json::to_string(&a).unwrap().contains("precision"), "f32 trials keep their ids");
        let mut s = spec();
        s.set("precision", "bf16").unwrap();
        let b = s.resolve().unwrap();
        assert_eq!(b.runtime.precision, Precision::Bf16);
        assert!(serde_json::to_string(&b).unwrap().contains(r#""precision":"bf16""#));
        assert_ne!(a.trial_id(), b.trial_id());
        assert!(spec().set("precision", "fp8").is_err());
    }

    fn moe(top_k: usize) -> TrialSpec {
        let mut s = spec();
        s.model.arch = Some(Arch::Moe);
        s.model.n_experts = Some(4);
        s.model.top_k = Some(top_k);
        s
    }

    #[test]
    fn dense_trials_keep_their_ids_and_moe_trials_name_their_gate() {
        let dense = serde_json::to_string(&spec().resolve().unwrap()).unwrap();
        assert!(!dense.contains("gate") && !dense.contains("capacity_factor"), "{dense}");
        let top1 = moe(1).resolve().unwrap();
        assert_eq!(top1.model.gate, Some(Gate::Softmax), "top-1 routers learn from the LM loss by default");
        assert_eq!(moe(2).resolve().unwrap().model.gate, Some(Gate::SoftmaxTopk));
        assert!(serde_json::to_string(&top1).unwrap().contains(r#""gate":"softmax""#));
        let mut renormalised = moe(1);
        renormalised.set("gate", "softmax_topk").unwrap();
        assert_ne!(renormalised.resolve().unwrap().trial_id(), top1.trial_id());
        assert!(moe(1).set("gate", "sigmoid").is_err());
    }

    #[test]
    fn capacity_factor_is_moe_only_positive_and_in_the_id() {
        let dropless = moe(1).resolve().unwrap();
        assert_eq!(dropless.model.capacity_factor, None);
        assert!(!serde_json::to_string(&dropless).unwrap().contains("capacity_factor"));
        let mut s = moe(1);
        s.set("capacity_factor", "1.25").unwrap();
        let capped = s.resolve().unwrap();
        assert_eq!(capped.model.capacity_factor, Some(1.25));
        assert_ne!(capped.trial_id(), dropless.trial_id());
        for v in ["0", "-1", "4.5", "125"] {
            let mut s = moe(1);
            s.set("capacity_factor", v).unwrap();
            assert_eq!(s.resolve().unwrap_err().key, "capacity_factor", "capacity_factor = {v}");
        }
        for v in ["nan", "inf"] {
            assert!(moe(1).set("capacity_factor", v).is_err(), "capacity_factor = {v}");
        }
        let mut s = moe(1);
        s.model.capacity_factor = Some(f64::NAN);
        assert_eq!(s.resolve().unwrap_err().key, "capacity_factor");
        for (key, value) in [("capacity_factor", "1.0"), ("gate", "softmax")] {
            let mut s = spec();
            s.set(key, value).unwrap();
            assert_eq!(s.resolve().unwrap_err().key, key, "{key} on a dense trial");
        }
    }

    #[test]
    fn records_from_before_the_gate_key_ran_renormalised_top_k() {
        let mut json: serde_json::Value = serde_json::to_value(moe(1).resolve().unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("gate");
        let old: TrialConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.model.gate(), Gate::SoftmaxTopk);
    }

    #[test]
    fn device_picks_a_gpu_without_changing_the_trial() {
        let flex = spec().resolve().unwrap();
        assert!(!serde_json::to_string(&flex).unwrap().contains("device"), "flex trials keep their ids");
        let mut s = spec();
        s.set("backend", "cuda").unwrap();
        let gpu0 = s.resolve().unwrap();
        s.set("device", "1").unwrap();
        let gpu1 = s.resolve().unwrap();
        assert_eq!(gpu1.runtime.device, Some(1));
        assert!(serde_json::to_string(&gpu1).unwrap().contains(r#""device":1"#));
        assert_eq!(gpu0.trial_id(), gpu1.trial_id(), "the same trial on another GPU");
        assert_ne!(flex.trial_id(), gpu0.trial_id(), "another backend computes another trial");
        let mut wsd = s.clone();
        wsd.set("schedule", "wsd").unwrap();
        let trunk = wsd.resolve().unwrap().trunk_id();
        wsd.set("device", "0").unwrap();
        assert_eq!(wsd.resolve().unwrap().trunk_id(), trunk, "branches on other GPUs share the trunk");
        let mut cpu = spec();
        cpu.set("device", "1").unwrap();
        let e = cpu.resolve().unwrap_err();
        assert_eq!(e.key, "device");
        assert!(e.message.contains("backend = \"cuda\""), "{e}");
        assert!(spec().set("device", "-1").is_err());
    }

    /// wgpu is a third backend: its own trials (another id than flex's and cuda's for the same
    /// config), `device` picks its adapter without changing the id, and a name that is none of
    /// the three is refused with the three listed.
    #[test]
    fn wgpu_is_a_backend_of_its_own_and_unknown_backends_list_the_three() {
        let id = |sets: &[(&str, &str)]| {
            let mut s = spec();
            for (k, v) in sets {
                s.set(k, v).unwrap();
            }
            s.resolve().unwrap().trial_id()
        };
        let (flex, cuda, wgpu) = (id(&[]), id(&[("backend", "cuda")]), id(&[("backend", "wgpu")]));
        assert!(flex != wgpu && cuda != wgpu, "another backend computes another trial");
        assert_eq!(id(&[("backend", "wgpu"), ("device", "1")]), wgpu, "the same trial on another adapter");
        let e = spec().set("backend", "tpu").unwrap_err().to_string();
        assert!(e.contains("`backend`") && e.contains("`flex`") && e.contains("`cuda`") && e.contains("`wgpu`"), "{e}");
    }

    #[test]
    fn rejects_impossible_shapes() {
        let mut s = spec();
        s.model.n_heads = Some(3);
        assert_eq!(s.resolve().unwrap_err().key, "n_heads");
        let mut s = spec();
        s.model.arch = Some(Arch::Moe);
        s.model.n_experts = Some(2);
        s.model.top_k = Some(3);
        assert_eq!(s.resolve().unwrap_err().key, "top_k");
    }

    #[test]
    fn set_parses_values_by_key() {
        let mut s = spec();
        s.set("lr", "0.01").unwrap();
        s.set("schedule", "wsd").unwrap();
        s.set("batch_size", "8").unwrap();
        assert_eq!(s.optimizer.lr, Some(Lr::Value(0.01)));
        assert_eq!(s.schedule.kind, Some(Schedule::Wsd));
        assert_eq!(s.optimizer.batch_size, Some(8));
        assert!(s.set("nope", "1").is_err());
        assert!(s.set("batch_size", "many").is_err());
    }

    #[test]
    fn id_covers_the_corpus_but_config_id_does_not() {
        let a = spec().resolve().unwrap();
        let key = |m: &str| CorpusKey { manifest: m.into(), tokenizer: "t".into() };
        let b = a.clone().bound_to(key("m1"));
        let c = a.clone().bound_to(key("m2"));
        assert_ne!(a.trial_id(), b.trial_id());
        assert_ne!(b.trial_id(), c.trial_id(), "a changed corpus is a different trial");
        assert_eq!(b.config_id(), c.config_id());
        assert_eq!(a.config_id(), b.config_id());
    }

    #[test]
    fn one_recipe_is_one_trial_however_its_path_is_spelled() {
        // Pinned before recipe paths were normalised: the canonical spelling keeps its ids.
        const GOLDEN: (&str, &str) = ("e9ab2226a79e323f", "4a2e987406ffb203");
        let cwd = std::env::current_dir().unwrap();
        let ids = |corpus: &str| {
            let mut s = spec();
            s.set("corpus", &format!("{corpus:?}")).unwrap();
            s.set("schedule", "\"wsd\"").unwrap();
            let c = s.resolve().unwrap().bound_to(CorpusKey { manifest: "m".into(), tokenizer: "t".into() });
            (c.trial_id(), c.trunk_id().unwrap(), c.data.corpus)
        };
        let (trial, trunk, corpus) = ids("corpora/local.toml");
        assert_eq!((trial.as_str(), trunk.as_str()), GOLDEN);
        assert_eq!(corpus, "corpora/local.toml");
        let absolute = cwd.join("corpora/local.toml").display().to_string();
        for spelling in ["./corpora/local.toml", "corpora/./local.toml", "corpora/../corpora/local.toml", &absolute] {
            assert_eq!(ids(spelling), (trial.clone(), trunk.clone(), corpus.clone()), "{spelling}");
        }
        // Outside the working directory a path stays absolute, normalised the same way.
        let outside = cwd.parent().unwrap().join("other/local.toml");
        let up = ids("../other/./local.toml");
        assert_eq!(up.2, outside.display().to_string());
        assert_eq!(up, ids(&outside.display().to_string()));
        assert_ne!(up.0, trial, "another recipe is another trial");
    }

    #[cfg(unix)]
    #[test]
    fn an_absolute_recipe_path_through_a_symbolic_link_is_the_same_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("lab");
        std::fs::create_dir_all(lab.join("corpora")).unwrap();
        std::fs::write(lab.join("corpora/local.toml"), "").unwrap();
        std::os::unix::fs::symlink(&lab, dir.path().join("link")).unwrap();
        let cwd = lab.canonicalize().unwrap();
        let linked = dir.path().join("link/corpora/local.toml");
        assert_eq!(data::recipe_path(&linked.display().to_string(), &cwd), "corpora/local.toml");
    }

    #[test]
    fn a_learning_rate_rule_sets_each_size_its_rate() {
        let mut small = spec();
        small.set("lr", r#"{ rule = "power", coef = 2e-3, n_exponent = -0.5 }"#).unwrap();
        let mut large = small.clone();
        large.model.name = Some("d128-l4".into());
        let (small, large) = (small.resolve().unwrap(), large.resolve().unwrap());
        let expected = |c: &TrialConfig| 2e-3 * (c.params().n_params / 1e6).powf(-0.5);
        assert!(
            (small.optimizer.lr - expected(&small)).abs() < 1e-15
                && (large.optimizer.lr - expected(&large)).abs() < 1e-15
        );
        assert!(small.optimizer.lr > large.optimizer.lr);
        let mut bad_rule = spec();
        bad_rule.set("lr", r#"{ rule = "power", coef = -1.0, n_exponent = 0.0 }"#).unwrap();
        assert_eq!(bad_rule.resolve().unwrap_err().key, "lr");
        assert!(spec().set("lr", r#"{ rule = "exp", coef = 1.0, n_exponent = 0.0 }"#).is_err());
    }

    #[test]
    fn non_finite_values_are_refused_not_defaulted() {
        for key in ["lr", "tokens", "warmup", "beta1", "weight_decay", "n_params"] {
            for v in ["nan", "inf", "-inf"] {
                assert!(spec().set(key, v).is_err(), "{key} = {v} was accepted");
            }
        }
        let t: toml::Table = toml::from_str("v = [1.0, nan]").unwrap();
        assert!(json_of_toml(&t["v"]).is_err());
    }

    #[test]
    fn impossible_values_name_their_key() {
        let cases: &[(&str, &str)] = &[
            ("tokens", "1e30"),
            ("beta1", "1.0"),
            ("beta2", "1"),
            ("lr", "100"),
            ("eps", "0"),
            ("warmup", "2.5"),
            ("decay_frac", "0"),
            ("weight_decay", "-1"),
            ("eval_tokens", "8"),
            ("d_model", "1000000"),
        ];
        for (key, value) in cases {
            let mut s = spec();
            s.set(key, value).unwrap();
            let e = s.resolve().expect_err(&format!("{key} = {value} resolved"));
            assert_eq!(e.key, *key, "{key} = {value}: {e}");
        }
    }
}
