//! One error type for the corpus pipeline, split the way the CLI maps exit codes: a problem the
//! user can fix in the recipe or the sources (exit 2) versus a failure of the machine (exit 1).

use std::fmt;

#[derive(Debug)]
pub enum CorpusError {
    /// The recipe, a source or a path named by the user is wrong; the message says where.
    BadInput(String),
    /// Anything else: writing the output, a corrupt corpus directory, a tokenizer failure.
    Io(anyhow::Error),
}

/// A recipe value outside what it may be (the message names the key and the range).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

pub type Result<T, E = CorpusError> = std::result::Result<T, E>;

impl CorpusError {
    pub fn is_bad_input(&self) -> bool {
        matches!(self, CorpusError::BadInput(_))
    }

    /// As an [`anyhow::Error`] whose bad input is [`codescale_core::BadInput`], the one type the
    /// CLI (exit code 2) and the other crates look for in an error chain.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            CorpusError::BadInput(m) => codescale_core::BadInput(m).into(),
            CorpusError::Io(e) => e,
        }
    }
}

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorpusError::BadInput(m) => f.write_str(m),
            // `{:#}` keeps anyhow's context chain on one line.
            CorpusError::Io(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for CorpusError {}

impl From<anyhow::Error> for CorpusError {
    fn from(e: anyhow::Error) -> Self {
        CorpusError::Io(e)
    }
}

impl From<std::io::Error> for CorpusError {
    fn from(e: std::io::Error) -> Self {
        CorpusError::Io(e.into())
    }
}

pub(crate) fn bad(message: impl Into<String>) -> CorpusError {
    CorpusError::BadInput(message.into())
}
