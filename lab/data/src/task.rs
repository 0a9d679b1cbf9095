//! A code task scored by exact match that models of 10⁴–10⁶ parameters get partly right:
//! **completing a partly typed identifier that the file used a little earlier**. The prompt is a
//! validation window that ends inside an identifier (after its first characters, on a token
//! boundary); an earlier occurrence of the same identifier lies inside the window, so a model
//! can complete it by reading its context, as an editor's completion does. The model answers by
//! greedy decoding, and is right when it writes the rest of the identifier and then ends it (a
//! character that cannot continue an identifier).
//!
//! Every example comes from held-out files, and the examples are a pure function of the
//! validation shard, the tokenizer, the window length and their number: every trial of a
//! language with the same `seq_len` is scored on the same examples.

use crate::tokenize::Tokenizer;

/// Identifiers the task asks for, in characters: long enough that a guess rarely completes
/// one, short enough that greedy decoding stays cheap.
const MIN_IDENT: usize = 4;
const MAX_IDENT: usize = 16;

/// One prompt and the bytes that complete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// `seq_len` tokens ending where the model is to go on.
    pub prompt: Vec<u16>,
    /// The rest of the identifier, as bytes.
    pub answer: Vec<u8>,
}

/// The task's examples of one language, with the tokenizer that reads the answers.
#[derive(Clone)]
pub struct Task {
    tokenizer: Tokenizer,
    pub examples: Vec<Example>,
    /// Tokens to decode: enough for the longest answer and the character that ends it.
    pub max_new_tokens: usize,
}

impl Task {
    /// Up to `count` examples from the validation tokens `val`, evenly spaced over all the
    /// candidates there (deterministic). Empty when the shard has none.
    pub fn identifier_completion(tokenizer: &Tokenizer, val: &[u16], seq_len: usize, count: usize) -> Task {
        let eod = tokenizer.eod();
        // The byte offset each token starts at, over the whole shard (end-of-document tokens
        // stand for one byte that no identifier contains).
        let mut starts = Vec::with_capacity(val.len() + 1);
        let mut bytes = Vec::with_capacity(val.len());
        for &t in val {
            starts.push(bytes.len());
            if t == eod {
                bytes.push(b'\n');
            } else {
                bytes.extend(tokenizer.token_bytes(&[t]));
            }
        }
        starts.push(bytes.len());
        let mut candidates = vec![];
        // Token index t: the prompt is the seq_len tokens before t; the answer starts at t.
        for t in seq_len..val.len() {
            let at = starts[t];
            let Some((start, end)) = identifier_around(&bytes, at) else { continue };
            let typed = at - start;
            if typed == 0 || end - at < 2 || !(MIN_IDENT..=MAX_IDENT).contains(&(end - start)) {
                continue;
            }
            // An earlier occurrence, whole, inside the window before the identifier.
            let window = &bytes[starts[t - seq_len]..start];
            let ident = &bytes[start..end];
            if occurs_whole(window, ident) {
                candidates.push((t, at, end));
            }
        }
        let step = (candidates.len() as f64 / count.max(1) as f64).max(1.0);
        let examples: Vec<Example> = (0..count.min(candidates.len()))
            .map(|i| candidates[(i as f64 * step) as usize])
            .map(|(t, at, end)| Example { prompt: val[t - seq_len..t].to_vec(), answer: bytes[at..end].to_vec() })
            .collect();
        let max_new_tokens = examples.iter().map(|e| e.answer.len() + 1).max().unwrap_or(0);
        Task { tokenizer: tokenizer.clone(), examples, max_new_tokens }
    }

    /// The share of examples a model completes exactly. `next` is the model: given the indices
    /// of the examples still decoding and one window of `seq_len` tokens for each (the prompt's
    /// tail, then what it wrote), it returns the next token of each.
    pub fn score(&self, mut next: impl FnMut(&[usize], &[Vec<u16>]) -> Vec<u16>) -> Score {
        let tokenizer = &self.tokenizer;
        let mut windows: Vec<Vec<u16>> = self.examples.iter().map(|e| e.prompt.clone()).collect();
        let mut written: Vec<Vec<u8>> = vec![vec![]; windows.len()];
        let mut done: Vec<Option<bool>> = vec![None; windows.len()];
        for _ in 0..self.max_new_tokens {
            let open: Vec<usize> = (0..windows.len()).filter(|&i| done[i].is_none()).collect();
            if open.is_empty() {
                break;
            }
            let batch: Vec<Vec<u16>> = open.iter().map(|&i| windows[i].clone()).collect();
            for (&i, token) in open.iter().zip(next(&open, &batch)) {
                let window = &mut windows[i];
                window.remove(0);
                window.push(token);
                if token == tokenizer.eod() || token as usize >= tokenizer.vocab_size() {
                    written[i].push(b'\n');
                } else {
                    written[i].extend(tokenizer.token_bytes(&[token]));
                }
                done[i] = verdict(&self.examples[i].answer, &written[i]);
            }
        }
        let right = done.iter().filter(|d| **d == Some(true)).count();
        Score { right, total: self.examples.len() }
    }
}

/// Exact matches out of examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub right: usize,
    pub total: usize,
}

impl Score {
    pub fn rate(&self) -> f64 {
        self.right as f64 / self.total as f64
    }

    /// The binomial standard error of [`Score::rate`].
    pub fn se(&self) -> f64 {
        let p = self.rate();
        (p * (1.0 - p) / self.total as f64).sqrt()
    }
}

/// Right once the answer and a character that ends the identifier are written; wrong as soon as
/// what is written departs from that; `None` while it may still be either.
fn verdict(answer: &[u8], written: &[u8]) -> Option<bool> {
    let n = written.len().min(answer.len());
    if written[..n] != answer[..n] {
        return Some(false);
    }
    written.get(answer.len()).map(|&b| !is_ident(b))
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier (ASCII letters, digits, `_`, not starting with a digit) that the boundary
/// before byte `at` splits in two, as `(start, end)`.
fn identifier_around(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    if at == 0 || at >= bytes.len() || !is_ident(bytes[at - 1]) || !is_ident(bytes[at]) {
        return None;
    }
    let start = (0..at).rev().take_while(|&i| is_ident(bytes[i])).last()?;
    let end = (at..bytes.len()).find(|&i| !is_ident(bytes[i])).unwrap_or(bytes.len());
    (!bytes[start].is_ascii_digit()).then_some((start, end))
}

/// Whether `ident` occurs in `text` as a whole identifier.
fn occurs_whole(text: &[u8], ident: &[u8]) -> bool {
    text.windows(ident.len()).enumerate().any(|(i, w)| {
        w == ident && (i == 0 || !is_ident(text[i - 1])) && text.get(i + ident.len()).is_none_or(|&b| !is_ident(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "def parse_header(stream):\n    header = stream.read(4)\n    return header\n\n\
                        def compute_total(values):\n    total = 0\n    for value in values:\n        total += value\n    return total\n";

    fn task(tokenizer: &Tokenizer) -> (Vec<u16>, Task) {
        let mut val = vec![];
        for _ in 0..3 {
            val.extend(tokenizer.encode(CODE.as_bytes()).unwrap());
            val.push(tokenizer.eod());
        }
        let t = Task::identifier_completion(tokenizer, &val, 32, 10);
        (val, t)
    }

    #[test]
    fn examples_complete_an_identifier_seen_earlier_in_the_window() {
        let tok = Tokenizer::Bytes;
        let (_, t) = task(&tok);
        assert_eq!(t.examples.len(), 10);
        for e in &t.examples {
            assert_eq!(e.prompt.len(), 32);
            let prompt = tok.token_bytes(&e.prompt);
            let typed: Vec<u8> = prompt.iter().rev().take_while(|&&b| is_ident(b)).copied().collect();
            let ident: Vec<u8> = typed.iter().rev().chain(&e.answer).copied().collect();
            assert!(ident.len() >= MIN_IDENT && e.answer.len() >= 2, "{:?}", String::from_utf8_lossy(&ident));
            assert!(occurs_whole(&prompt[..prompt.len() - typed.len()], &ident));
        }
        let again = task(&tok).1;
        assert_eq!(again.examples, t.examples, "deterministic");
    }

    /// A model that writes the answer scores 1; one that guesses uniformly scores about 0 (a
    /// guess completes two or more bytes with probability below 1/257²).
    #[test]
    fn a_copying_model_scores_one_and_a_uniform_one_near_chance() {
        // A BPE of few merges, so that identifiers are split into tokens the prompt can end
        // between (a common identifier that is one token is no example).
        for tok in [Tokenizer::Bytes, Tokenizer::train_bpe(280, std::iter::repeat_n(CODE, 40)).unwrap()] {
            let (_, t) = task(&tok);
            assert!(!t.examples.is_empty());
            // Knows each example's answer: writes its next bytes, then a space.
            let mut step = 0;
            let oracle = |open: &[usize], windows: &[Vec<u16>]| -> Vec<u16> {
                let next = open
                    .iter()
                    .zip(windows)
                    .map(|(&i, w)| {
                        let written = tok.token_bytes(&w[w.len() - step..]);
                        let mut rest = t.examples[i].answer[written.len()..].to_vec();
                        rest.push(b' ');
                        tok.encode(&rest).unwrap()[0]
                    })
                    .collect();
                step += 1;
                next
            };
            assert_eq!(t.score(oracle).rate(), 1.0);
            let mut state = 7u64;
            let uniform = |_: &[usize], windows: &[Vec<u16>]| -> Vec<u16> {
                windows
                    .iter()
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        ((state >> 33) % tok.vocab_size() as u64) as u16
                    })
                    .collect()
            };
            assert_eq!(t.score(uniform).right, 0);
        }
    }

    #[test]
    fn the_verdict_needs_the_identifier_to_end() {
        assert_eq!(verdict(b"der", b"de"), None);
        assert_eq!(verdict(b"der", b"dx"), Some(false));
        assert_eq!(verdict(b"der", b"der"), None);
        assert_eq!(verdict(b"der", b"der("), Some(true));
        assert_eq!(verdict(b"der", b"ders"), Some(false));
    }
}
