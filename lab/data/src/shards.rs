//! Shard files: little-endian `u16` token ids, every document followed by the end-of-document token.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use crate::error::Result;

/// What a written shard holds.
pub struct Written {
    pub tokens: u64,
    pub blake3: String,
}

pub fn write(path: &Path, docs: &[Vec<u16>], eod: u16) -> Result<Written> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let mut hasher = blake3::Hasher::new();
    let mut tokens = 0u64;
    let mut buf = Vec::new();
    for doc in docs {
        buf.clear();
        buf.extend(doc.iter().chain(std::iter::once(&eod)).flat_map(|t| t.to_le_bytes()));
        hasher.update(&buf);
        out.write_all(&buf).with_context(|| format!("writing {}", path.display()))?;
        tokens += doc.len() as u64 + 1;
    }
    let file = out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(Written { tokens, blake3: hasher.finalize().to_hex().to_string() })
}

/// The ids and the blake3 of the file's bytes.
pub fn read(path: &Path) -> Result<(Vec<u16>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() % 2 != 0 {
        return Err(anyhow::anyhow!("{} has an odd number of bytes; not a u16 shard", path.display()).into());
    }
    let ids = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    Ok((ids, blake3::hash(&bytes).to_hex().to_string()))
}
