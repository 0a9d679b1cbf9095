//! Errors the user can fix: the CLI exits with code 2 for these, 1 for everything else.

/// Bad input: a malformed file, an unknown key, a missing path. The message names the file,
/// line and key where there are such.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Returns early with a [`BadInput`] error.
#[macro_export]
macro_rules! bad_input {
    ($($arg:tt)*) => { return Err(anyhow::Error::new($crate::error::BadInput(format!($($arg)*)))) };
}

/// Whether an error chain contains bad input.
pub fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<BadInput>())
}

/// 1-based line of a byte offset in `source`.
pub fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].bytes().filter(|&b| b == b'\n').count() + 1
}
