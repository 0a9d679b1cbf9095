//! Tokenizers: raw bytes, or a byte-level BPE trained on the training split. Both put the
//! end-of-document token after every document.

use std::path::Path;

use anyhow::{anyhow, Context};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

use crate::error::Result;

/// The special token's text in a BPE vocabulary.
pub const EOD_TEXT: &str = "<|endoftext|>";
/// File name of a trained tokenizer inside the corpus directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
const BYTES_EOD: u16 = 256;

#[derive(Clone)]
pub enum Tokenizer {
    /// Ids 0..=255 are bytes, 256 ends a document.
    Bytes,
    Bpe {
        inner: Box<tokenizers::Tokenizer>,
        eod: u16,
        vocab: usize,
    },
}

impl Tokenizer {
    /// Trains a byte-level BPE of `vocab` entries (the end-of-document token included).
    pub fn train_bpe<'a>(vocab: usize, docs: impl Iterator<Item = &'a str> + Send) -> Result<Tokenizer> {
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from(EOD_TEXT, true)])
            // Every byte is in the alphabet, so any text encodes without unknown tokens.
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tok = tokenizers::Tokenizer::new(BPE::default());
        tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tok.with_decoder(Some(ByteLevel::default()));
        tok.train(&mut TrainerWrapper::BpeTrainer(trainer), docs).map_err(|e| anyhow!("training BPE: {e}"))?;
        Tokenizer::from_bpe(tok, vocab)
    }

    /// Loads `tokenizer.json` as saved by a build; `vocab` is the nominal size from the name.
    pub fn load_bpe(path: &Path, vocab: usize) -> Result<Tokenizer> {
        let tok = tokenizers::Tokenizer::from_file(path).map_err(|e| anyhow!("loading {}: {e}", path.display()))?;
        Tokenizer::from_bpe(tok, vocab)
    }

    fn from_bpe(mut tok: tokenizers::Tokenizer, vocab: usize) -> Result<Tokenizer> {
        // Source code may contain the literal `<|endoftext|>`; it must encode as text, not as EOD.
        tok.set_encode_special_tokens(true);
        let eod = tok.token_to_id(EOD_TEXT).context("BPE tokenizer has no end-of-document token")?;
        let actual = tok.get_vocab_size(true);
        if actual > vocab || actual > u16::MAX as usize + 1 {
            return Err(anyhow!("BPE vocabulary has {actual} entries, more than the {vocab} asked for").into());
        }
        Ok(Tokenizer::Bpe { inner: Box::new(tok), eod: eod as u16, vocab })
    }

    /// For `bytes` or `bpe:<vocab>`: the vocabulary size from the name.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Bytes => BYTES_EOD as usize + 1,
            Tokenizer::Bpe { vocab, .. } => *vocab,
        }
    }

    pub fn eod(&self) -> u16 {
        match self {
            Tokenizer::Bytes => BYTES_EOD,
            Tokenizer::Bpe { eod, .. } => *eod,
        }
    }

    /// Ids of one document, without the end-of-document token. BPE needs UTF-8, which every
    /// document that passed the filters is.
    pub fn encode(&self, doc: &[u8]) -> Result<Vec<u16>> {
        match self {
            Tokenizer::Bytes => Ok(doc.iter().map(|&b| b as u16).collect()),
            Tokenizer::Bpe { inner, .. } => {
                let text = std::str::from_utf8(doc).context("BPE input is not UTF-8")?;
                let enc = inner.encode(text, false).map_err(|e| anyhow!("encoding: {e}"))?;
                Ok(enc.get_ids().iter().map(|&i| i as u16).collect())
            }
        }
    }

    /// The bytes of text that `ids` (no end-of-document token) stand for: the inverse of
    /// [`Tokenizer::encode`] exactly, for any run of ids, even one that starts or ends inside a
    /// multi-byte character (which text decoding could only replace).
    pub fn token_bytes(&self, ids: &[u16]) -> Vec<u8> {
        match self {
            Tokenizer::Bytes => ids.iter().map(|&i| i.min(255) as u8).collect(),
            Tokenizer::Bpe { inner, .. } => ids
                .iter()
                .filter_map(|&id| inner.id_to_token(id as u32))
                .flat_map(|token| token.chars().filter_map(byte_of_char).collect::<Vec<u8>>())
                .collect(),
        }
    }

    /// Text of `ids`; end-of-document tokens show as `<|endoftext|>`, fill-in-the-middle
    /// sentinels as `<fim_prefix>` and so on, invalid UTF-8 lossily.
    pub fn decode(&self, ids: &[u16]) -> String {
        let sentinels = crate::fim::Sentinels::after(self.vocab_size());
        let mut out = String::new();
        for run in ids.split_inclusive(|&i| sentinels.text(i).is_some()) {
            match run.split_last() {
                Some((&last, text)) if sentinels.text(last).is_some() => {
                    out.push_str(&self.decode_text(text));
                    out.push_str(sentinels.text(last).expect("a sentinel"));
                }
                _ => out.push_str(&self.decode_text(run)),
            }
        }
        out
    }

    fn decode_text(&self, ids: &[u16]) -> String {
        match self {
            Tokenizer::Bytes => {
                let mut out = String::new();
                for doc in ids.split_inclusive(|&i| i == BYTES_EOD) {
                    let (body, eod) = match doc.split_last() {
                        Some((&BYTES_EOD, body)) => (body, true),
                        _ => (doc, false),
                    };
                    let bytes: Vec<u8> = body.iter().map(|&i| i.min(255) as u8).collect();
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    if eod {
                        out.push_str(EOD_TEXT);
                    }
                }
                out
            }
            Tokenizer::Bpe { inner, .. } => {
                let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
                inner.decode(&ids, false).unwrap_or_else(|e| format!("<undecodable: {e}>"))
            }
        }
    }

    /// The JSON saved as `tokenizer.json`; `None` for bytes, which needs no file.
    pub fn to_json(&self) -> Result<Option<String>> {
        match self {
            Tokenizer::Bytes => Ok(None),
            Tokenizer::Bpe { inner, .. } => {
                Ok(Some(inner.to_string(false).map_err(|e| anyhow!("serialising tokenizer: {e}"))?))
            }
        }
    }

    /// Identifies the tokenizer: the hash of its saved JSON, or of a fixed tag for bytes.
    pub fn hash(&self) -> Result<String> {
        Ok(match self.to_json()? {
            Some(json) => blake3::hash(json.as_bytes()).to_hex().to_string(),
            None => blake3::hash(b"codescale-tokenizer:bytes:v1").to_hex().to_string(),
        })
    }
}

/// The byte a character of a byte-level BPE token stands for: GPT-2's table (printable
/// Latin-1 as itself, the other 68 bytes as U+0100 onwards in byte order), which `tokenizers`
/// keeps private.
fn byte_of_char(c: char) -> Option<u8> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<char, u8>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let mut shifted = 0u32;
        (0..=255u8)
            .map(|b| {
                if printable(b) {
                    (char::from(b), b)
                } else {
                    shifted += 1;
                    (char::from_u32(255 + shifted).expect("below U+0200"), b)
                }
            })
            .collect()
    });
    table.get(&c).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let t = Tokenizer::Bytes;
        let mut ids = t.encode("héllo".as_bytes()).unwrap();
        ids.push(t.eod());
        assert_eq!(t.decode(&ids), "héllo<|endoftext|>");
    }

    #[test]
    fn bpe_round_trips_and_keeps_literal_eod_text() {
        let docs = ["def f(x):\n    return x + 1\n", "def g(y):\n    return y * 2  # <|endoftext|> ünïcode\n"];
        let t = Tokenizer::train_bpe(300, docs.iter().copied().cycle().take(50)).unwrap();
        assert_eq!(t.vocab_size(), 300);
        for d in docs {
            let ids = t.encode(d.as_bytes()).unwrap();
            assert!(!ids.contains(&t.eod()));
            assert!(ids.len() < d.len());
            assert_eq!(t.decode(&ids), d);
        }
        let again = Tokenizer::train_bpe(300, docs.iter().copied().cycle().take(50)).unwrap();
        assert_eq!(t.hash().unwrap(), again.hash().unwrap(), "BPE training must be deterministic");
    }

    /// `token_bytes` inverts `encode` byte for byte, also for a run cut inside a character.
    #[test]
    fn token_bytes_are_the_encoded_bytes() {
        let alphabet: std::collections::HashSet<char> = ByteLevel::alphabet().into_iter().collect();
        assert_eq!(alphabet.len(), 256);
        assert!(alphabet.iter().all(|&c| byte_of_char(c).is_some()), "the table is byte-level BPE's alphabet");
        let docs = ["def f(x):\n    return x + 1\n", "// ünïcode → ✓ and emoji 🦀\n\tlet y = 2;\r\n"];
        let t = Tokenizer::train_bpe(300, docs.iter().copied().cycle().take(50)).unwrap();
        for tokenizer in [Tokenizer::Bytes, t] {
            for d in docs {
                let ids = tokenizer.encode(d.as_bytes()).unwrap();
                assert_eq!(tokenizer.token_bytes(&ids), d.as_bytes());
                let (a, b) = ids.split_at(ids.len() / 2);
                assert_eq!([tokenizer.token_bytes(a), tokenizer.token_bytes(b)].concat(), d.as_bytes());
            }
        }
    }
}
