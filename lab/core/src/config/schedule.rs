//! The schedule section: the token budget and the learning rate's path through it.

use serde::{Deserialize, Serialize};

use super::{bad, limits, unit, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Linear,
    Constant,
    /// Warmup, stable, decay: constant after warmup, linear decay over the last `decay_frac`.
    Wsd,
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

spec_section! {
    /// The schedule keys a file may set.
    ScheduleSpec {
        /// Training token budget.
        tokens: f64,
        /// Below 1: a fraction of the steps; 1 or more: a number of steps.
        warmup: f64,
        kind as "schedule": Schedule,
        final_lr_ratio: f64,
        /// WSD: the cooldown's share of the steps.
        decay_frac: f64,
        /// WSD: the cooldown's shape, `linear` (default) or `1-sqrt`.
        decay_shape: DecayShape,
    }
}

/// How long a trial trains and how its rate moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSection {
    pub tokens: f64,
    pub warmup: f64,
    #[serde(rename = "schedule")]
    pub kind: Schedule,
    pub final_lr_ratio: f64,
    pub decay_frac: f64,
    /// Left out of the canonical JSON when linear, so ids from before the key existed hold.
    #[serde(skip_serializing_if = "DecayShape::is_linear", default)]
    pub decay_shape: DecayShape,
}

impl ScheduleSpec {
    /// `tokens_per_step`: a budget must cover at least one optimizer step.
    pub fn resolve(&self, tokens_per_step: usize) -> Result<ScheduleSection, ConfigError> {
        let tokens = self.tokens.unwrap_or(1e6);
        if !(tokens.is_finite() && tokens >= tokens_per_step as f64) {
            return Err(bad(
                "tokens",
                format!("{tokens} is not a number of tokens ≥ one batch ({tokens_per_step} tokens)"),
            ));
        }
        if tokens > limits::MAX_TOKENS {
            return Err(bad(
                "tokens",
                format!("{tokens:e} tokens is beyond any trial this lab can run (at most {:e})", limits::MAX_TOKENS),
            ));
        }
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
        Ok(ScheduleSection {
            tokens,
            warmup,
            kind: self.kind.unwrap_or(Schedule::Cosine),
            final_lr_ratio,
            decay_frac,
            decay_shape: self.decay_shape.unwrap_or_default(),
        })
    }
}
