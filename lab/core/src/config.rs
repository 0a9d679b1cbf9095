//! The trial configuration: what a user writes (`TrialSpec`, every key optional) and what a
//! trial runs with (`TrialConfig`, every key resolved). A trial's id is the hash of the latter.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::shape::{self, Shape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Dense,
    Moe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Linear,
    Constant,
    /// Warmup, stable, decay: constant after warmup, linear decay over the last `decay_frac`.
    Wsd,
}

/// The shape of a WSD cooldown (Hägele et al. 2024): the learning rate falls from its peak to
/// the floor linearly, or as 1 − √progress, which drops faster at first and helps at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DecayShape {
    #[default]
    #[serde(rename = "linear")]
    Linear,
    #[serde(rename = "1-sqrt")]
    OneMinusSqrt,
}

impl DecayShape {
    pub fn is_linear(&self) -> bool {
        *self == DecayShape::Linear
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Flex,
    Cuda,
    /// burn's wgpu backend (Vulkan, Metal, DX12): the composed ops, like `cuda`.
    Wgpu,
}

/// How a mixture-of-experts router turns its logits into the weights of the chosen experts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Softmax over all experts, then the top-k probabilities as they are (Switch, GShard):
    /// under top-1 the gate is the chosen expert's probability, through which the router
    /// learns from the language-model loss.
    Softmax,
    /// Softmax over the top-k logits only, so the gates sum to one (Mixtral). Under top-1 every
    /// gate is exactly 1 and the router learns only from the auxiliary losses.
    SoftmaxTopk,
}

impl Gate {
    /// The default for `top_k` chosen experts: `softmax` for top-1 (the only gating under which
    /// a top-1 router gets the LM loss's gradient), `softmax_topk` from top-2 on (Mixtral's
    /// choice, and what every MoE trial ran before the key existed).
    pub fn default_for(top_k: usize) -> Gate {
        if top_k == 1 {
            Gate::Softmax
        } else {
            Gate::SoftmaxTopk
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Softmax => "softmax",
            Gate::SoftmaxTopk => "softmax_topk",
        }
    }
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Dense => "dense",
            Arch::Moe => "moe",
        }
    }
}
impl Schedule {
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Cosine => "cosine",
            Schedule::Linear => "linear",
            Schedule::Constant => "constant",
            Schedule::Wsd => "wsd",
        }
    }
}
/// The precision of matrix multiplies. Weights, optimizer state, norms, softmax and the loss
/// stay f32 either way, as under PyTorch's autocast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bf16 multiplies (tensor cores on CUDA; emulated by rounding on Flex, which is slower and
    /// only useful to check the numerics).
    Bf16,
}

impl Precision {
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Whether `device` picks one of several devices for this backend (a GPU or wgpu adapter).
    pub fn has_devices(self) -> bool {
        matches!(self, Backend::Cuda | Backend::Wgpu)
    }
}

/// The corpus a trial was planned against: its manifest hash and its tokenizer's hash. Part of
/// the trial's id, so a trial is never reused on a corpus whose contents changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusKey {
    pub manifest: String,
    pub tokenizer: String,
}

/// The version of the trainer's numerics, hashed into every trial id. Bump it whenever a change
/// alters what a trial computes (its losses), so that no earlier result is reused as if it came
/// from the new code; `lab/train/tests/golden.rs` fails when the numerics change without it.
pub const NUMERICS_VERSION: u32 = 6;

/// A learning rate: a number, or a rule of the model size and budget, so that every size of a
/// ladder trains near its best rate (`lr = { rule = "power", coef = 3e-3, n_exponent = -0.25 }`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Lr {
    Value(f64),
    Rule(LrRule),
}

impl From<f64> for Lr {
    fn from(v: f64) -> Lr {
        Lr::Value(v)
    }
}

/// η = coef · (N / 10⁶)^n_exponent · (D / 10⁹)^d_exponent, with N the non-embedding parameters
/// and D the training tokens. The fitter prints the rule it finds for an LR sweep in this form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrRule {
    pub rule: RuleKind,
    pub coef: f64,
    pub n_exponent: f64,
    #[serde(default)]
    pub d_exponent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Power,
}

/// The sizes the rule's constants refer to.
pub const LR_RULE_N_REF: f64 = 1e6;
pub const LR_RULE_D_REF: f64 = 1e9;

impl LrRule {
    pub fn at(&self, n: f64, d: f64) -> f64 {
        self.coef * (n / LR_RULE_N_REF).powf(self.n_exponent) * (d / LR_RULE_D_REF).powf(self.d_exponent)
    }
}

/// Every key a trial file, a sweep's `[base]` or a sweep parameter may set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialSpec {
    pub corpus: Option<String>,
    pub language: Option<String>,
    pub tokenizer: Option<String>,
    pub arch: Option<Arch>,
    /// A named shape such as `d128-l4`.
    pub model: Option<String>,
    /// A target non-embedding parameter count, resolved through the shape ladder.
    pub n_params: Option<f64>,
    pub d_model: Option<usize>,
    pub n_layers: Option<usize>,
    pub n_heads: Option<usize>,
    pub d_ff: Option<usize>,
    pub n_experts: Option<usize>,
    pub top_k: Option<usize>,
    pub d_expert: Option<usize>,
    pub moe_every: Option<usize>,
    pub shared_expert: Option<bool>,
    /// `softmax` (default for top-1) or `softmax_topk` (default from top-2 on).
    pub gate: Option<Gate>,
    /// Slots per expert per forward pass, as a multiple of an even share (`tokens · top_k /
    /// n_experts`); slots beyond it are dropped. Unset: dropless routing.
    pub capacity_factor: Option<f64>,
    pub aux_loss_coef: Option<f64>,
    pub z_loss_coef: Option<f64>,
    pub seq_len: Option<usize>,
    /// Global batch in sequences.
    pub batch_size: Option<usize>,
    /// Sequences per forward pass; `batch_size / micro_batch` accumulation steps.
    pub micro_batch: Option<usize>,
    /// Training token budget.
    pub tokens: Option<f64>,
    /// A rate, or a rule of N and D (resolved to the rate for this trial's size and budget).
    pub lr: Option<Lr>,
    /// Below 1: a fraction of the steps; 1 or more: a number of steps.
    pub warmup: Option<f64>,
    pub schedule: Option<Schedule>,
    pub final_lr_ratio: Option<f64>,
    /// WSD: the cooldown's share of the steps.
    pub decay_frac: Option<f64>,
    /// WSD: the cooldown's shape, `linear` (default) or `1-sqrt`.
    pub decay_shape: Option<DecayShape>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub weight_decay: Option<f64>,
    pub grad_clip: Option<f64>,
    pub eval_interval: Option<usize>,
    pub eval_tokens: Option<usize>,
    pub checkpoint_interval: Option<usize>,
    pub seed: Option<u64>,
    pub backend: Option<Backend>,
    /// The GPU's index (as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` count) for `backend = "cuda"`,
    /// or the wgpu adapter's (GPUs first, as codescale lists them) for `backend = "wgpu"`; 0 by
    /// default.
    pub device: Option<usize>,
    /// `f32` (default) or `bf16` (autocast matrix multiplies).
    pub precision: Option<Precision>,
    pub threads: Option<usize>,
}

/// A fully resolved trial. Its canonical JSON hashes to the trial id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// The corpus recipe, relative to the working directory when inside it, in one spelling
    /// whatever the spelling given (`./corpora/local.toml` is `corpora/local.toml`).
    pub corpus: String,
    pub language: String,
    pub tokenizer: String,
    pub arch: Arch,
    pub model: String,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_ff: usize,
    pub n_experts: usize,
    pub top_k: usize,
    pub d_expert: usize,
    pub moe_every: usize,
    pub shared_expert: bool,
    /// Set for MoE trials only, and left out of the canonical JSON otherwise, so dense trials
    /// keep the ids they had before the key existed. See [`TrialConfig::gate`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gate: Option<Gate>,
    /// MoE only; unset is dropless routing (and keeps the key out of the id).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_factor: Option<f64>,
    pub aux_loss_coef: f64,
    pub z_loss_coef: f64,
    pub seq_len: usize,
    pub batch_size: usize,
    pub micro_batch: usize,
    pub tokens: f64,
    pub lr: f64,
    pub warmup: f64,
    pub schedule: Schedule,
    pub final_lr_ratio: f64,
    pub decay_frac: f64,
    /// Left out of the canonical JSON when linear, so ids from before the key existed hold.
    #[serde(skip_serializing_if = "DecayShape::is_linear", default)]
    pub decay_shape: DecayShape,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub eval_interval: usize,
    pub eval_tokens: usize,
    pub checkpoint_interval: usize,
    pub seed: u64,
    pub backend: Backend,
    /// Which GPU or adapter (`backend = "cuda"` or `"wgpu"` only). Like `threads`, it changes
    /// where a trial runs, not what it computes: left out of the id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device: Option<usize>,
    /// Left out of the canonical JSON when f32, so ids from before the key existed still hold.
    #[serde(skip_serializing_if = "Precision::is_f32", default)]
    pub precision: Precision,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub threads: Option<usize>,
    /// Set when the trial is bound to a built corpus (planning, `train`); part of the id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub corpus_key: Option<CorpusKey>,
}

/// A configuration problem, naming the key so callers can point at its line.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}
impl std::error::Error for ConfigError {}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { key, message: message.into() }
}

/// A TOML value as JSON, refusing what JSON cannot hold: serde would turn `nan` and `inf` into
/// `null`, which the spec reads as "not set" — a silent default in place of a typo.
pub fn json_of_toml(v: &toml::Value) -> Result<serde_json::Value, String> {
    fn check(v: &toml::Value) -> Result<(), String> {
        match v {
            toml::Value::Float(x) if !x.is_finite() => Err(format!("{x} is not a finite number")),
            toml::Value::Array(a) => a.iter().try_for_each(check),
            toml::Value::Table(t) => t.values().try_for_each(check),
            _ => Ok(()),
        }
    }
    check(v)?;
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// Tokens of the final evaluation unless a trial says otherwise: about 16,000 windows of 64
/// tokens, which puts the standard error of the loss near 0.2 % for the quickstart's languages
/// (measured: 0.23 % for Python and 0.30 % for Go at 2²⁰ tokens with d64-l2 after 10⁶ tokens;
/// the per-window spread is about 30–40 % of the loss, so the error falls as 1/√windows).
pub const DEFAULT_EVAL_TOKENS: usize = 1 << 20;

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

/// Vocabulary size implied by a tokenizer name, including the end-of-document token.
pub fn vocab_size(tokenizer: &str) -> Option<usize> {
    if tokenizer == "bytes" {
        return Some(257);
    }
    let n: usize = tokenizer.strip_prefix("bpe:")?.parse().ok()?;
    (258..=65_536).contains(&n).then_some(n)
}

impl TrialSpec {
    /// Keys set in `other` win.
    pub fn merged(&self, other: &TrialSpec) -> TrialSpec {
        let a = serde_json::to_value(self).expect("spec serializes");
        let b = serde_json::to_value(other).expect("spec serializes");
        let (serde_json::Value::Object(mut a), serde_json::Value::Object(b)) = (a, b) else { unreachable!() };
        for (k, v) in b {
            if !v.is_null() {
                a.insert(k, v);
            }
        }
        serde_json::from_value(serde_json::Value::Object(a)).expect("merged spec deserializes")
    }

    /// Sets one key from its string form, as `--set key=value` does: TOML syntax, or a bare
    /// word taken as a string.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let parsed: serde_json::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(t) => json_of_toml(&t["v"])?,
            Err(_) => serde_json::Value::String(value.to_string()),
        };
        self.set_value(key, parsed)
    }

    /// Sets one key to a JSON value, checking the key exists and the value has its type.
    pub fn set_value(&mut self, key: &str, value: serde_json::Value) -> Result<(), String> {
        let mut map = match serde_json::to_value(&*self).expect("spec serializes") {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        if !map.contains_key(key) {
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(format!("unknown key `{key}` (known keys: {})", known.join(", ")));
        }
        map.insert(key.to_string(), value);
        *self = serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| format!("`{key}`: {e}"))?;
        Ok(())
    }

    /// Fills defaults and checks that the trial can run.
    pub fn resolve(&self) -> Result<TrialConfig, ConfigError> {
        let arch = self.arch.unwrap_or(Arch::Dense);
        let tokenizer = self.tokenizer.clone().unwrap_or_else(|| "bytes".into());
        vocab_size(&tokenizer).ok_or_else(|| {
            bad("tokenizer", format!("`{tokenizer}` is not `bytes` or `bpe:<vocab>` with 258 ≤ vocab ≤ 65536"))
        })?;
        let language = self.language.clone().ok_or_else(|| bad("language", "is required"))?;
        if language.is_empty() {
            return Err(bad("language", "is empty"));
        }

        let named = match (&self.model, self.n_params) {
            (Some(_), Some(_)) => return Err(bad("n_params", "give either `model` or `n_params`, not both")),
            (Some(name), None) => Some(shape::parse_name(name).map_err(|m| bad("model", m))?),
            (None, Some(n)) => {
                if !(n.is_finite() && (1e3..=limits::MAX_PARAMS).contains(&n)) {
                    return Err(bad(
                        "n_params",
                        format!("{n} is not a parameter count in [1000, {:e}]", limits::MAX_PARAMS),
                    ));
                }
                Some(shape::from_param_count(n))
            }
            (None, None) => None,
        };
        let d_model = self
            .d_model
            .or(named.map(|s| s.d_model))
            .ok_or_else(|| bad("model", "give `model`, `n_params` or `d_model` and `n_layers`"))?;
        let n_layers =
            self.n_layers.or(named.map(|s| s.n_layers)).ok_or_else(|| bad("n_layers", "is required with `d_model`"))?;
        let defaults = Shape::new(d_model, n_layers);
        let n_heads = self.n_heads.unwrap_or(defaults.n_heads);
        let d_ff = self.d_ff.unwrap_or(defaults.d_ff);
        within("d_model", d_model, limits::MAX_WIDTH)?;
        within("n_layers", n_layers, limits::MAX_LAYERS)?;
        within("n_heads", n_heads, d_model)?;
        within("d_ff", d_ff, limits::MAX_WIDTH * 8)?;
        if d_model % n_heads != 0 {
            return Err(bad("n_heads", format!("{n_heads} heads do not divide d_model = {d_model}")));
        }
        if !(d_model / n_heads).is_multiple_of(2) {
            return Err(bad("n_heads", format!("head size {} must be even for rotary embeddings", d_model / n_heads)));
        }

        let (n_experts, top_k) = match arch {
            Arch::Dense => (self.n_experts.unwrap_or(1), self.top_k.unwrap_or(1)),
            Arch::Moe => (self.n_experts.unwrap_or(8), self.top_k.unwrap_or(2)),
        };
        within("n_experts", n_experts, limits::MAX_EXPERTS)?;
        within("top_k", top_k, limits::MAX_EXPERTS)?;
        if top_k > n_experts {
            return Err(bad("top_k", format!("top_k = {top_k} exceeds n_experts = {n_experts}")));
        }
        if arch == Arch::Dense && (n_experts != 1 || top_k != 1) {
            return Err(bad("n_experts", "expert keys need `arch = \"moe\"`"));
        }
        let d_expert = self.d_expert.unwrap_or(d_ff);
        within("d_expert", d_expert, limits::MAX_WIDTH * 8)?;
        let moe_every = self.moe_every.unwrap_or(1);
        within("moe_every", moe_every, n_layers.max(1))?;
        let gate = match arch {
            Arch::Dense if self.gate.is_some() => return Err(bad("gate", "needs `arch = \"moe\"`")),
            Arch::Dense => None,
            Arch::Moe => Some(self.gate.unwrap_or(Gate::default_for(top_k))),
        };
        if let Some(f) = self.capacity_factor {
            if arch == Arch::Dense {
                return Err(bad("capacity_factor", "needs `arch = \"moe\"`"));
            }
            // From n_experts / top_k on no slot can be dropped; far beyond it is a typo.
            if !(f.is_finite() && f > 0.0 && f <= n_experts as f64) {
                return Err(bad(
                    "capacity_factor",
                    format!("{f} must lie in (0, n_experts = {n_experts}]; leave it unset for dropless routing"),
                ));
            }
        }

        let seq_len = self.seq_len.unwrap_or(128);
        within("seq_len", seq_len, limits::MAX_SEQ_LEN)?;
        let batch_size = self.batch_size.unwrap_or(32);
        within("batch_size", batch_size, limits::MAX_BATCH)?;
        let micro_batch = self.micro_batch.unwrap_or(batch_size);
        positive("micro_batch", micro_batch)?;
        if !batch_size.is_multiple_of(micro_batch) {
            return Err(bad("micro_batch", format!("{micro_batch} does not divide batch_size = {batch_size}")));
        }
        let tokens = self.tokens.unwrap_or(1e6);
        if !(tokens.is_finite() && tokens >= (batch_size * seq_len) as f64) {
            return Err(bad(
                "tokens",
                format!("{tokens} is not a number of tokens ≥ one batch ({} tokens)", batch_size * seq_len),
            ));
        }
        if tokens > limits::MAX_TOKENS {
            return Err(bad(
                "tokens",
                format!("{tokens:e} tokens is beyond any trial this lab can run (at most {:e})", limits::MAX_TOKENS),
            ));
        }
        // A rule needs N, so it is applied once the shape is known (below).
        let lr = match self.lr.unwrap_or(Lr::Value(3e-3)) {
            Lr::Value(v) => v,
            Lr::Rule(r) => {
                if ![r.coef, r.n_exponent, r.d_exponent].iter().all(|x| x.is_finite()) || r.coef <= 0.0 {
                    return Err(bad("lr", "the rule's `coef` must be a finite number > 0 and its exponents finite"));
                }
                r.coef
            }
        };
        let warmup = self.warmup.unwrap_or(0.05);
        if !(warmup.is_finite() && warmup >= 0.0 && (warmup < 1.0 || warmup.fract() == 0.0)) {
            return Err(bad("warmup", format!("{warmup} is not a fraction in [0, 1) or a whole number of steps")));
        }
        let final_lr_ratio = self.final_lr_ratio.unwrap_or(0.1);
        unit("final_lr_ratio", final_lr_ratio)?;
        let decay_frac = self.decay_frac.unwrap_or(0.2);
        if !(decay_frac > 0.0 && decay_frac <= 1.0) {
            return Err(bad("decay_frac", format!("{decay_frac} must lie in (0, 1]")));
        }
        let beta1 = self.beta1.unwrap_or(0.9);
        let beta2 = self.beta2.unwrap_or(0.95);
        below_one("beta1", beta1)?;
        below_one("beta2", beta2)?;
        let eps = self.eps.unwrap_or(1e-8);
        if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
            return Err(bad("eps", format!("{eps} must lie in (0, 1)")));
        }
        let weight_decay = self.weight_decay.unwrap_or(0.1);
        non_negative("weight_decay", weight_decay)?;
        let grad_clip = self.grad_clip.unwrap_or(1.0);
        non_negative("grad_clip", grad_clip)?;
        let aux_loss_coef = self.aux_loss_coef.unwrap_or(if arch == Arch::Moe { 0.01 } else { 0.0 });
        non_negative("aux_loss_coef", aux_loss_coef)?;
        let z_loss_coef = self.z_loss_coef.unwrap_or(if arch == Arch::Moe { 1e-3 } else { 0.0 });
        non_negative("z_loss_coef", z_loss_coef)?;
        let eval_tokens = self.eval_tokens.unwrap_or(DEFAULT_EVAL_TOKENS);
        if eval_tokens < seq_len {
            return Err(bad(
                "eval_tokens",
                format!("{eval_tokens} is less than one window of seq_len = {seq_len} tokens"),
            ));
        }
        if let Some(t) = self.threads {
            positive("threads", t)?;
        }
        let backend = self.backend.unwrap_or(Backend::Flex);
        if self.device.is_some() && !backend.has_devices() {
            return Err(bad(
                "device",
                format!(
                    "picks a GPU, but `backend` is \"{}\": set `backend = \"cuda\"` or `\"wgpu\"`, or remove `device`",
                    backend.as_str()
                ),
            ));
        }

        let model = self.model.clone().unwrap_or_else(|| shape::name(d_model, n_layers));
        let config = TrialConfig {
            corpus: self.corpus.as_deref().map_or_else(
                || "corpora/local.toml".into(),
                |path| match std::env::current_dir() {
                    Ok(cwd) => recipe_path(path, &cwd),
                    Err(_) => path.to_string(),
                },
            ),
            language,
            tokenizer,
            arch,
            model,
            d_model,
            n_layers,
            n_heads,
            d_ff,
            n_experts,
            top_k,
            d_expert,
            moe_every,
            shared_expert: self.shared_expert.unwrap_or(false),
            gate,
            capacity_factor: self.capacity_factor,
            aux_loss_coef,
            z_loss_coef,
            seq_len,
            batch_size,
            micro_batch,
            tokens,
            lr,
            warmup,
            schedule: self.schedule.unwrap_or(Schedule::Cosine),
            final_lr_ratio,
            decay_frac,
            decay_shape: self.decay_shape.unwrap_or_default(),
            beta1,
            beta2,
            eps,
            weight_decay,
            grad_clip,
            eval_interval: self.eval_interval.unwrap_or(0),
            eval_tokens,
            checkpoint_interval: self.checkpoint_interval.unwrap_or(0),
            seed: self.seed.unwrap_or(0),
            backend,
            device: self.device,
            precision: self.precision.unwrap_or_default(),
            threads: self.threads,
            corpus_key: None,
        };
        if config.total_steps() < 1 {
            return Err(bad("tokens", "gives no training step"));
        }
        let mut config = config;
        if let Some(Lr::Rule(rule)) = self.lr {
            config.lr = rule.at(config.params().n_params, config.tokens);
        }
        if !(config.lr.is_finite() && config.lr > 0.0 && config.lr <= limits::MAX_LR) {
            return Err(bad("lr", format!("{} is not a learning rate in (0, {}]", config.lr, limits::MAX_LR)));
        }
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
        vocab_size(&self.tokenizer).expect("validated tokenizer")
    }
    pub fn tokens_per_step(&self) -> usize {
        self.batch_size * self.seq_len
    }
    pub fn total_steps(&self) -> usize {
        (self.tokens / self.tokens_per_step() as f64).floor() as usize
    }
    pub fn accumulation_steps(&self) -> usize {
        self.batch_size / self.micro_batch
    }
    pub fn warmup_steps(&self) -> usize {
        let total = self.total_steps();
        if self.warmup < 1.0 {
            (self.warmup * total as f64).round() as usize
        } else {
            (self.warmup as usize).min(total)
        }
    }
    /// Evaluation every this many steps (0 in the config means about ten evaluations).
    pub fn eval_every(&self) -> usize {
        if self.eval_interval > 0 {
            self.eval_interval
        } else {
            self.tenth_of_steps()
        }
    }
    /// Checkpoint interval for a scheduled run, which must survive a crash: the config's, or
    /// about ten checkpoints (0 in the config means none for a lone `train`).
    pub fn checkpoint_every(&self) -> usize {
        if self.checkpoint_interval > 0 {
            self.checkpoint_interval
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
    fn without_placement(self) -> TrialConfig {
        TrialConfig { threads: None, device: None, checkpoint_interval: 0, ..self }
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
        c.seed = 0;
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
        self.warmup_steps().max(total - (self.decay_frac * total as f64).round() as usize)
    }
    /// For WSD trials, the key of the constant-rate trunk this trial shares with every trial
    /// that differs from it only in budget and cooldown (`tokens`, `decay_frac`, `decay_shape`,
    /// `final_lr_ratio`, evaluation and checkpoint intervals): their runs coincide until their
    /// cooldowns begin. `None` for other schedules.
    pub fn trunk_id(&self) -> Option<String> {
        (self.schedule == Schedule::Wsd).then(|| {
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
        TrialConfig {
            tokens: (steps * self.tokens_per_step()) as f64,
            warmup: self.warmup_steps() as f64,
            schedule: Schedule::Constant,
            decay_frac: 1.0,
            decay_shape: DecayShape::Linear,
            final_lr_ratio: 1.0,
            eval_interval: 0,
            ..self.clone()
        }
    }
    /// This config bound to a corpus.
    pub fn bound_to(mut self, key: CorpusKey) -> TrialConfig {
        self.corpus_key = Some(key);
        self
    }
    /// The MoE gating: the resolved key, or for a record from before the key existed the
    /// renormalised top-k every MoE trial ran then.
    pub fn gate(&self) -> Gate {
        self.gate.unwrap_or(Gate::SoftmaxTopk)
    }
    pub fn params(&self) -> crate::accounting::Params {
        crate::accounting::Params::of(&self.model_config())
    }
}

/// A recipe's path as trial configs spell it, so that the spelling of a path is not part of a
/// trial's id: lexically normal (`.` dropped, `..` resolved) and relative to `cwd`, where
/// recipes are looked up, when inside it; absolute otherwise. Symbolic links are followed only
/// for an absolute path that reaches `cwd` through one (`/home` linked to `/gpfs/home`), so
/// `corpora/local.toml` keeps the ids it always had.
fn recipe_path(path: &str, cwd: &Path) -> String {
    let normal = lexically_normal(&cwd.join(path));
    let inside = normal.strip_prefix(cwd).map(Path::to_path_buf).ok().or_else(|| {
        let (file, cwd) = (normal.canonicalize().ok()?, cwd.canonicalize().ok()?);
        file.strip_prefix(cwd).map(Path::to_path_buf).ok()
    });
    inside.unwrap_or(normal).to_string_lossy().into_owned()
}

fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(normal.components().next_back(), Some(Component::Normal(_))) => {
                normal.pop();
            }
            part => normal.push(part),
        }
    }
    normal
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
        TrialSpec { language: Some("python".into()), model: Some("d64-l2".into()), ..Default::default() }
    }

    #[test]
    fn resolves_named_shape_with_defaults() {
        let c = spec().resolve().unwrap();
        assert_eq!((c.d_model, c.n_layers, c.n_heads), (64, 2, 2));
        assert_eq!(c.vocab_size(), 257);
        assert_eq!(c.total_steps(), 1_000_000 / (32 * 128));
    }

    #[test]
    fn id_is_stable_and_ignores_threads() {
        let a = spec().resolve().unwrap();
        let mut b = a.clone();
        b.threads = Some(7);
        assert_eq!(a.trial_id(), b.trial_id());
        b.lr *= 2.0;
        assert_ne!(a.trial_id(), b.trial_id());
    }

    #[test]
    fn precision_is_in_the_canonical_config_only_when_not_f32() {
        let a = spec().resolve().unwrap();
        assert!(!serde_json::to_string(&a).unwrap().contains("precision"), "f32 trials keep their ids");
        let mut s = spec();
        s.set("precision", "bf16").unwrap();
        let b = s.resolve().unwrap();
        assert_eq!(b.precision, Precision::Bf16);
        assert!(serde_json::to_string(&b).unwrap().contains(r#""precision":"bf16""#));
        assert_ne!(a.trial_id(), b.trial_id());
        assert!(spec().set("precision", "fp8").is_err());
    }

    fn moe(top_k: usize) -> TrialSpec {
        TrialSpec { arch: Some(Arch::Moe), n_experts: Some(4), top_k: Some(top_k), ..spec() }
    }

    #[test]
    fn dense_trials_keep_their_ids_and_moe_trials_name_their_gate() {
        let dense = serde_json::to_string(&spec().resolve().unwrap()).unwrap();
        assert!(!dense.contains("gate") && !dense.contains("capacity_factor"), "{dense}");
        let top1 = moe(1).resolve().unwrap();
        assert_eq!(top1.gate, Some(Gate::Softmax), "top-1 routers learn from the LM loss by default");
        assert_eq!(moe(2).resolve().unwrap().gate, Some(Gate::SoftmaxTopk));
        assert!(serde_json::to_string(&top1).unwrap().contains(r#""gate":"softmax""#));
        let mut renormalised = moe(1);
        renormalised.set("gate", "softmax_topk").unwrap();
        assert_ne!(renormalised.resolve().unwrap().trial_id(), top1.trial_id());
        assert!(moe(1).set("gate", "sigmoid").is_err());
    }

    #[test]
    fn capacity_factor_is_moe_only_positive_and_in_the_id() {
        let dropless = moe(1).resolve().unwrap();
        assert_eq!(dropless.capacity_factor, None);
        assert!(!serde_json::to_string(&dropless).unwrap().contains("capacity_factor"));
        let mut s = moe(1);
        s.set("capacity_factor", "1.25").unwrap();
        let capped = s.resolve().unwrap();
        assert_eq!(capped.capacity_factor, Some(1.25));
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
        s.capacity_factor = Some(f64::NAN);
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
        assert_eq!(old.gate(), Gate::SoftmaxTopk);
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
        assert_eq!(gpu1.device, Some(1));
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
        let e = spec().set("backend", "tpu").unwrap_err();
        assert!(e.contains("`backend`") && e.contains("`flex`") && e.contains("`cuda`") && e.contains("`wgpu`"), "{e}");
    }

    #[test]
    fn rejects_impossible_shapes() {
        let mut s = spec();
        s.n_heads = Some(3);
        assert_eq!(s.resolve().unwrap_err().key, "n_heads");
        let mut s = spec();
        s.arch = Some(Arch::Moe);
        s.n_experts = Some(2);
        s.top_k = Some(3);
        assert_eq!(s.resolve().unwrap_err().key, "top_k");
    }

    #[test]
    fn set_parses_values_by_key() {
        let mut s = spec();
        s.set("lr", "0.01").unwrap();
        s.set("schedule", "wsd").unwrap();
        s.set("batch_size", "8").unwrap();
        assert_eq!(s.lr, Some(Lr::Value(0.01)));
        assert_eq!(s.schedule, Some(Schedule::Wsd));
        assert_eq!(s.batch_size, Some(8));
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
            (c.trial_id(), c.trunk_id().unwrap(), c.corpus)
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
        assert_eq!(recipe_path(&linked.display().to_string(), &cwd), "corpora/local.toml");
    }

    #[test]
    fn a_learning_rate_rule_sets_each_size_its_rate() {
        let mut small = spec();
        small.set("lr", r#"{ rule = "power", coef = 2e-3, n_exponent = -0.5 }"#).unwrap();
        let mut large = small.clone();
        large.model = Some("d128-l4".into());
        let (small, large) = (small.resolve().unwrap(), large.resolve().unwrap());
        let expected = |c: &TrialConfig| 2e-3 * (c.params().n_params / 1e6).powf(-0.5);
        assert!((small.lr - expected(&small)).abs() < 1e-15 && (large.lr - expected(&large)).abs() < 1e-15);
        assert!(small.lr > large.lr);
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
