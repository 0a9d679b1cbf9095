//! The model section: architecture, shape and, for mixtures of experts, routing.

use serde::{Deserialize, Serialize};

use super::{bad, limits, non_negative, within, ConfigError};
use crate::shape::{self, Shape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Dense,
    Moe,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Dense => "dense",
            Arch::Moe => "moe",
        }
    }
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

spec_section! {
    /// The model keys a file may set.
    ModelSpec {
        arch: Arch,
        /// A named shape such as `d128-l4`.
        name as "model": String,
        /// A target non-embedding parameter count, resolved through the shape ladder.
        n_params: f64,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
        d_ff: usize,
        n_experts: usize,
        top_k: usize,
        d_expert: usize,
        moe_every: usize,
        shared_expert: bool,
        /// `softmax` (default for top-1) or `softmax_topk` (default from top-2 on).
        gate: Gate,
        /// Slots per expert per forward pass, as a multiple of an even share (`tokens · top_k /
        /// n_experts`); slots beyond it are dropped. Unset: dropless routing.
        capacity_factor: f64,
        aux_loss_coef: f64,
        z_loss_coef: f64,
        /// Standard deviation of the initial weights (GPT-2's 0.02 by default); residual output
        /// projections get it divided by √(2·n_layers).
        init_std: f64,
        /// A finished trial to start from: its id, or its folder. The trial then fine-tunes
        /// that trial's final weights (same shape) instead of a random initialisation.
        init_from: String,
    }
}

/// The network a trial trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSection {
    pub arch: Arch,
    /// The shape's name (`d64-l2`), given or derived from the width and depth.
    #[serde(rename = "model")]
    pub name: String,
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
    /// keep the ids they had before the key existed. See [`ModelSection::gate`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gate: Option<Gate>,
    /// MoE only; unset is dropless routing (and keeps the key out of the id).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_factor: Option<f64>,
    pub aux_loss_coef: f64,
    pub z_loss_coef: f64,
    /// Left out of the canonical JSON at GPT-2's 0.02, so ids from before the key existed hold.
    #[serde(skip_serializing_if = "is_gpt2_init", default = "gpt2_init")]
    pub init_std: f64,
    /// The id of the finished trial whose final weights this one starts from (a folder given in
    /// a file is resolved to its id before the trial is planned, so the base's id is part of
    /// this trial's). Left out of the canonical JSON when unset: trials trained from scratch
    /// keep their ids.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub init_from: Option<String>,
}

/// GPT-2's initial standard deviation, every trial's before `init_std` existed.
pub const GPT2_INIT_STD: f64 = 0.02;

fn gpt2_init() -> f64 {
    GPT2_INIT_STD
}

fn is_gpt2_init(std: &f64) -> bool {
    *std == GPT2_INIT_STD
}

impl ModelSpec {
    pub fn resolve(&self) -> Result<ModelSection, ConfigError> {
        let arch = self.arch.unwrap_or(Arch::Dense);
        let named = match (&self.name, self.n_params) {
            (Some(_), Some(_)) => return Err(bad("n_params", "give either `model` or `n_params`, not both")),
            (Some(name), None) => Some(shape::parse_name(name).map_err(|e| bad("model", e.to_string()))?),
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
        let aux_loss_coef = self.aux_loss_coef.unwrap_or(if arch == Arch::Moe { 0.01 } else { 0.0 });
        non_negative("aux_loss_coef", aux_loss_coef)?;
        let z_loss_coef = self.z_loss_coef.unwrap_or(if arch == Arch::Moe { 1e-3 } else { 0.0 });
        non_negative("z_loss_coef", z_loss_coef)?;
        let init_std = self.init_std.unwrap_or(GPT2_INIT_STD);
        if !(init_std.is_finite() && init_std > 0.0 && init_std <= 1.0) {
            return Err(bad("init_std", format!("{init_std} must lie in (0, 1]")));
        }
        if self.init_from.as_ref().is_some_and(|b| b.trim().is_empty()) {
            return Err(bad("init_from", "is empty: give a finished trial's id or folder"));
        }

        Ok(ModelSection {
            arch,
            name: self.name.clone().unwrap_or_else(|| shape::name(d_model, n_layers)),
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
            init_std,
            init_from: self.init_from.clone(),
        })
    }
}

impl ModelSection {
    /// The MoE gating: the resolved key, or for a record from before the key existed the
    /// renormalised top-k every MoE trial ran then.
    pub fn gate(&self) -> Gate {
        self.gate.unwrap_or(Gate::SoftmaxTopk)
    }
}
