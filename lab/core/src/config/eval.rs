//! The evaluation section: how often a trial measures its validation loss, and on how much.

use serde::{Deserialize, Serialize};

use super::{bad, ConfigError};

/// Tokens of the final evaluation unless a trial says otherwise: about 16,000 windows of 64
/// tokens, which puts the standard error of the loss near 0.2 % for the quickstart's languages
/// (measured: 0.23 % for Python and 0.30 % for Go at 2²⁰ tokens with d64-l2 after 10⁶ tokens;
/// the per-window spread is about 30–40 % of the loss, so the error falls as 1/√windows).
pub const DEFAULT_EVAL_TOKENS: usize = 1 << 20;

spec_section! {
    /// The evaluation keys a file may set.
    EvalSpec {
        /// Optimizer steps between evaluations (0: about ten per run).
        eval_interval: usize,
        eval_tokens: usize,
    }
}

/// When and on how many held-out tokens a trial is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSection {
    pub eval_interval: usize,
    pub eval_tokens: usize,
}

impl EvalSpec {
    /// `seq_len`: the final evaluation reads at least one window.
    pub fn resolve(&self, seq_len: usize) -> Result<EvalSection, ConfigError> {
        let eval_tokens = self.eval_tokens.unwrap_or(DEFAULT_EVAL_TOKENS);
        if eval_tokens < seq_len {
            return Err(bad(
                "eval_tokens",
                format!("{eval_tokens} is less than one window of seq_len = {seq_len} tokens"),
            ));
        }
        Ok(EvalSection { eval_interval: self.eval_interval.unwrap_or(0), eval_tokens })
    }
}
