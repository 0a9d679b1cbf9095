//! Fill-in-the-middle (Bavarian et al. 2022, "Efficient Training of Language Models to Fill in
//! the Middle"): a document cut at two character positions into prefix, middle and suffix is
//! trained on in an order that puts the middle last, behind three sentinel tokens:
//!
//! - PSM: `<PRE> prefix <SUF> suffix <MID> middle`
//! - SPM: `<PRE> <SUF> suffix <MID> prefix middle` (the paper's SPM variant, whose prefix and
//!   middle are contiguous)
//!
//! The lab applies it per training window (the paper's context-level FIM, Appendix B.2): each
//! document fragment between end-of-document tokens is transformed with probability `rate`.
//! Lab windows hold 64–512 tokens, far fewer than a source file, so document-level FIM would
//! put a document's prefix, suffix and middle in different windows, where the model never sees
//! them together.
//!
//! The sentinels are the three ids after the tokenizer's vocabulary, so no text encodes to one:
//! a model trained with FIM has three more embedding rows, one trained without has none.

use rand::Rng;

use crate::tokenize::Tokenizer;

/// How the sentinels show in decoded text (StarCoder's spelling).
pub const SENTINEL_TEXT: [&str; 3] = ["<fim_prefix>", "<fim_middle>", "<fim_suffix>"];

/// The three sentinel ids: the first three after a vocabulary of `vocab` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sentinels {
    pub prefix: u16,
    pub middle: u16,
    pub suffix: u16,
}

impl Sentinels {
    /// Ids a FIM model adds to its tokenizer's vocabulary.
    pub const COUNT: usize = 3;

    pub fn after(vocab: usize) -> Sentinels {
        let base = u16::try_from(vocab).expect("a vocabulary of at most 65536 - 3 ids");
        Sentinels { prefix: base, middle: base + 1, suffix: base + 2 }
    }

    /// The sentinel's text, if `id` is one.
    pub fn text(&self, id: u16) -> Option<&'static str> {
        [self.prefix, self.middle, self.suffix].iter().position(|&s| s == id).map(|i| SENTINEL_TEXT[i])
    }
}

/// Where a document is cut: byte offsets `0 ≤ start ≤ end ≤ len`, both on character boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub start: usize,
    pub end: usize,
}

impl Cut {
    /// Two positions drawn uniformly among the `len + 1`-or-fewer character boundaries of
    /// `bytes`, sorted (Bavarian et al.: the middle may be empty). A byte that continues a UTF-8
    /// character is never a boundary, so a window that starts or ends inside one still cuts
    /// only between characters.
    pub fn draw(bytes: &[u8], rng: &mut impl Rng) -> Cut {
        let boundaries = boundaries(bytes);
        let a = boundaries[rng.random_range(0..boundaries.len())];
        let b = boundaries[rng.random_range(0..boundaries.len())];
        Cut { start: a.min(b), end: a.max(b) }
    }

    /// As [`Cut::draw`], but with a middle of at least one character; `None` for empty text.
    pub fn draw_nonempty(bytes: &[u8], rng: &mut impl Rng) -> Option<Cut> {
        let boundaries = boundaries(bytes);
        if boundaries.len() < 2 {
            return None;
        }
        let a = rng.random_range(0..boundaries.len() - 1);
        let b = rng.random_range(a + 1..boundaries.len());
        Some(Cut { start: boundaries[a], end: boundaries[b] })
    }

    /// `(prefix, middle, suffix)` of `bytes`.
    pub fn apply<'a>(&self, bytes: &'a [u8]) -> [&'a [u8]; 3] {
        [&bytes[..self.start], &bytes[self.start..self.end], &bytes[self.end..]]
    }
}

/// The offsets `0..=len` that lie between UTF-8 characters: a byte that continues a character
/// is never one.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    (0..=bytes.len()).filter(|&i| i == bytes.len() || bytes[i] & 0xC0 != 0x80).collect()
}

/// The order a transformed document is trained in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Psm,
    Spm,
}

/// One document in FIM form, with where its middle's tokens lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Infill {
    pub tokens: Vec<u16>,
    /// Positions in `tokens` of the middle's tokens.
    pub middle: std::ops::Range<usize>,
}

/// FIM as a trial asks for it, over one tokenizer.
#[derive(Clone)]
pub struct Fim {
    tokenizer: Tokenizer,
    pub sentinels: Sentinels,
    eod: u16,
    /// Probability that a document fragment is transformed.
    pub rate: f64,
    /// Probability that a transformed fragment is in SPM rather than PSM order.
    pub spm_rate: f64,
}

impl Fim {
    pub fn new(tokenizer: Tokenizer, rate: f64, spm_rate: f64) -> Fim {
        let sentinels = Sentinels::after(tokenizer.vocab_size());
        Fim { eod: tokenizer.eod(), tokenizer, sentinels, rate, spm_rate }
    }

    /// The end-of-document id.
    pub fn eod(&self) -> u16 {
        self.eod
    }

    /// A document's bytes (from [`Tokenizer::token_bytes`], no end-of-document token) cut at
    /// `cut` and put in `order`, as tokens; `None` when a piece is not whole UTF-8 characters
    /// and the tokenizer needs them (BPE, at a window's edge inside a multi-byte character).
    pub fn transform(&self, bytes: &[u8], cut: Cut, order: Order) -> Option<Infill> {
        let [p, m, s] = cut.apply(bytes).map(|piece| self.tokenizer.encode(piece).ok());
        let (p, m, s) = (p?, m?, s?);
        let Sentinels { prefix: pre, middle: mid, suffix: suf } = self.sentinels;
        let mut out = Vec::with_capacity(p.len() + m.len() + s.len() + Sentinels::COUNT);
        match order {
            Order::Psm => {
                out.push(pre);
                out.extend(&p);
                out.push(suf);
                out.extend(&s);
                out.push(mid);
            }
            Order::Spm => {
                out.extend([pre, suf]);
                out.extend(&s);
                out.push(mid);
                out.extend(&p);
            }
        }
        let start = out.len();
        out.extend(&m);
        Some(Infill { middle: start..out.len(), tokens: out })
    }

    /// Context-level FIM of one training window: each fragment between end-of-document tokens
    /// is transformed with probability `rate` (PSM or SPM by `spm_rate`), and the result is cut
    /// back to `len` tokens (the sentinels lengthen it). `window` should run a little past `len`,
    /// so that a BPE fragment re-encoded in fewer tokens still fills it; what is still missing is
    /// padded with end-of-document tokens.
    pub fn window(&self, window: &[u16], len: usize, rng: &mut impl Rng, out: &mut Vec<u16>) {
        out.clear();
        for (i, fragment) in window.split(|&t| t == self.eod).enumerate() {
            if out.len() >= len {
                break;
            }
            if i > 0 {
                out.push(self.eod);
            }
            let transformed = if !fragment.is_empty() && rng.random::<f64>() < self.rate {
                let order = if rng.random::<f64>() < self.spm_rate { Order::Spm } else { Order::Psm };
                let bytes = self.tokenizer.token_bytes(fragment);
                self.transform(&bytes, Cut::draw(&bytes, rng), order)
            } else {
                None
            };
            match transformed {
                Some(infill) => out.extend(infill.tokens),
                None => out.extend(fragment),
            }
        }
        out.resize(len, self.eod);
    }

    /// The infilling example of an evaluation window: its longest fragment without an
    /// end-of-document token, shortened so that its PSM form fits `len` tokens, cut with a
    /// non-empty middle. `None` when the window has no text. A BPE re-encoding that comes out
    /// longer than `len` loses the end of its middle.
    pub fn infill_example(&self, window: &[u16], len: usize, rng: &mut impl Rng) -> Option<Infill> {
        let longest = window.split(|&t| t == self.eod).max_by_key(|f| f.len())?;
        let fragment = &longest[..longest.len().min(len.saturating_sub(Sentinels::COUNT))];
        let bytes = self.tokenizer.token_bytes(fragment);
        let cut = Cut::draw_nonempty(&bytes, rng)?;
        let mut infill = self.transform(&bytes, cut, Order::Psm)?;
        infill.tokens.truncate(len);
        infill.middle.end = infill.middle.end.min(len);
        (!infill.middle.is_empty()).then_some(infill)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const DOC: &str = "fn main() {\n    let café = \"ünïcode\";\n    println!(\"{café}\");\n}\n";

    fn bpe() -> Tokenizer {
        let docs = [DOC, "def f(x):\n    return x + 1\n", "fn g(y: u32) -> u32 { y * 2 }\n"];
        Tokenizer::train_bpe(320, docs.iter().copied().cycle().take(60)).unwrap()
    }

    /// Every piece back in document order is the document, for both orders and both tokenizers.
    #[test]
    fn a_transformed_document_is_its_three_pieces_and_nothing_else() {
        for tokenizer in [Tokenizer::Bytes, bpe()] {
            let fim = Fim::new(tokenizer.clone(), 1.0, 0.5);
            let doc = tokenizer.encode(DOC.as_bytes()).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            for _ in 0..200 {
                let cut = Cut::draw(DOC.as_bytes(), &mut rng);
                assert!(DOC.is_char_boundary(cut.start) && DOC.is_char_boundary(cut.end));
                for order in [Order::Psm, Order::Spm] {
                    let infill = fim.transform(&tokenizer.token_bytes(&doc), cut, order).unwrap();
                    let s = fim.sentinels;
                    let t = &infill.tokens;
                    let at = |id| t.iter().position(|&x| x == id).unwrap();
                    let (pre, mid, suf) = (at(s.prefix), at(s.middle), at(s.suffix));
                    let (prefix, suffix) = match order {
                        Order::Psm => (&t[pre + 1..suf], &t[suf + 1..mid]),
                        Order::Spm => (&t[mid + 1..infill.middle.start], &t[suf + 1..mid]),
                    };
                    assert_eq!(infill.middle.end, t.len());
                    let text = |ids: &[u16]| String::from_utf8(tokenizer.token_bytes(ids)).unwrap();
                    let whole = [prefix, &t[infill.middle.clone()], suffix].map(text).concat();
                    assert_eq!(whole, DOC, "{order:?} at {cut:?}");
                    assert_eq!(text(&t[infill.middle.clone()]), DOC[cut.start..cut.end]);
                }
            }
        }
    }

    #[test]
    fn the_same_seed_transforms_a_window_the_same_way() {
        let tokenizer = Tokenizer::Bytes;
        let fim = Fim::new(tokenizer.clone(), 0.5, 0.5);
        let mut window = tokenizer.encode(DOC.as_bytes()).unwrap();
        window.push(tokenizer.eod());
        window.extend(tokenizer.encode(b"def f(x):\n    return x\n").unwrap());
        let run = |seed| {
            let mut out = Vec::new();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|_| {
                    fim.window(&window, 80, &mut rng, &mut out);
                    out.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let windows = run(3);
        assert!(windows.iter().all(|w| w.len() == 80));
        assert!(windows.iter().any(|w| w.contains(&fim.sentinels.middle)), "rate 0.5 transforms some");
        assert!(windows.iter().any(|w| w[..60] == window[..60]), "and leaves some");
    }

    #[test]
    fn rate_zero_leaves_every_window_as_it_was() {
        let tokenizer = Tokenizer::Bytes;
        let fim = Fim::new(tokenizer.clone(), 0.0, 0.0);
        let window = tokenizer.encode(DOC.as_bytes()).unwrap();
        let mut out = Vec::new();
        fim.window(&window, 40, &mut ChaCha8Rng::seed_from_u64(1), &mut out);
        assert_eq!(out, window[..40]);
    }

    /// Sentinels are ids no text encodes to: the sentinels' own spelling is ordinary text.
    #[test]
    fn no_text_encodes_to_a_sentinel() {
        let text = format!("{DOC}// {} {} {}\n", SENTINEL_TEXT[0], SENTINEL_TEXT[1], SENTINEL_TEXT[2]);
        for tokenizer in [Tokenizer::Bytes, bpe()] {
            let s = Sentinels::after(tokenizer.vocab_size());
            let ids = tokenizer.encode(text.as_bytes()).unwrap();
            assert!(ids.iter().all(|&id| s.text(id).is_none() && (id as usize) < tokenizer.vocab_size()));
            let fim = Fim::new(tokenizer.clone(), 1.0, 0.0);
            let infill = fim.transform(&tokenizer.token_bytes(&ids), Cut { start: 3, end: 10 }, Order::Psm).unwrap();
            let shown = tokenizer.decode(&infill.tokens);
            assert!(shown.starts_with("<fim_prefix>fn <fim_suffix>"), "{shown}");
        }
    }

    #[test]
    fn an_evaluation_example_fits_its_window_and_has_a_middle() {
        let tokenizer = Tokenizer::Bytes;
        let fim = Fim::new(tokenizer.clone(), 1.0, 0.0);
        let mut window = tokenizer.encode(b"ab").unwrap();
        window.push(tokenizer.eod());
        window.extend(tokenizer.encode(DOC.as_bytes()).unwrap());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..100 {
            let e = fim.infill_example(&window, 32, &mut rng).unwrap();
            assert!(e.tokens.len() <= 32 && !e.middle.is_empty() && e.middle.end == e.tokens.len());
            assert_eq!(e.tokens[e.middle.start - 1], fim.sentinels.middle);
        }
        assert!(fim.infill_example(&[tokenizer.eod()], 32, &mut rng).is_none());
    }
}
