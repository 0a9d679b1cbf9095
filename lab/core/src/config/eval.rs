//! The evaluation section: how often a trial measures its validation loss, on how much, and on
//! how many examples of the code task.

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
        /// Identifier completions scored at the final evaluation (0: no task metric).
        task_examples: usize,
    }
}

/// Examples of the code task a trial is scored on unless it says otherwise: a binomial standard
/// error of at most 3 points of exact match, for a few seconds of greedy decoding.
pub const DEFAULT_TASK_EXAMPLES: usize = 256;

fn is_default_task(n: &usize) -> bool {
    *n == DEFAULT_TASK_EXAMPLES
}

fn default_task() -> usize {
    DEFAULT_TASK_EXAMPLES
}

/// When and on how many held-out tokens a trial is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSection {
    pub eval_interval: usize,
    pub eval_tokens: usize,
    /// Left out of the canonical JSON at its default, so trials from before it keep their ids.
    #[serde(skip_serializing_if = "is_default_task", default = "default_task")]
    pub task_examples: usize,
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
        Ok(EvalSection {
            eval_interval: self.eval_interval.unwrap_or(0),
            eval_tokens,
            task_examples: self.task_examples.unwrap_or(DEFAULT_TASK_EXAMPLES),
        })
    }
}
