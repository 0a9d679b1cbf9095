//! Instruction pairs for supervised fine-tuning, derived from a language's own code: **a
//! function's doc comment and signature as the prompt, its body as the completion**. This is the
//! shape of the instruction sets code models are fine-tuned on (a description and a signature in,
//! an implementation out), found in the corpus itself, so that every language the corpus holds
//! has pairs and no data comes from outside the machine.
//!
//! A pair is found by lines:
//! - **Brace languages** (everything but Python): a line that opens a function's body (it holds
//!   `(`, ends with `{`, starts with no control keyword and assigns nothing; Rust's holds `fn `,
//!   Go's starts with `func `) right below comment lines (`//`, `/*`, `*`), with attribute or
//!   annotation lines allowed between them. The body runs to the line where the braces balance
//!   again (braces in comments after `//` are not counted).
//! - **Python**: a `def` whose first statement is a docstring; the body is the lines indented
//!   deeper than the `def` after the docstring.
//!
//! Bodies longer than [`MAX_BODY_LINES`] lines are left out: they rarely fit a lab window.

use std::ops::Range;

use crate::tokenize::Tokenizer;

/// The longest body, in lines, a pair may have.
pub const MAX_BODY_LINES: usize = 40;

/// One prompt and its completion, as tokens (no end-of-document token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub prompt: Vec<u16>,
    pub completion: Vec<u16>,
}

/// Every pair of a shard's documents (split at end-of-document tokens), in shard order. The
/// prompt and the completion are encoded separately, as the model meets them.
pub fn function_pairs(tokenizer: &Tokenizer, shard: &[u16], language: &str) -> Vec<Pair> {
    let python = language == "python";
    let mut pairs = Vec::new();
    for doc in shard.split(|&t| t == tokenizer.eod()).filter(|d| !d.is_empty()) {
        let bytes = tokenizer.token_bytes(doc);
        let found = if python { python_functions(&bytes) } else { brace_functions(&bytes, language) };
        for (prompt, completion) in found {
            // A piece that is not whole UTF-8 characters cannot be BPE-encoded: left out.
            if let (Ok(prompt), Ok(completion)) =
                (tokenizer.encode(&bytes[prompt]), tokenizer.encode(&bytes[completion]))
            {
                pairs.push(Pair { prompt, completion });
            }
        }
    }
    pairs
}

/// The byte ranges of a document's lines, without their newline.
fn lines(doc: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in doc.iter().enumerate() {
        if b == b'\n' {
            out.push(start..i);
            start = i + 1;
        }
    }
    if start < doc.len() {
        out.push(start..doc.len());
    }
    out
}

fn trim(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

fn indent(line: &[u8]) -> usize {
    line.iter().take_while(|&&b| b == b' ' || b == b'\t').count()
}

/// From the start of line `first` through the end of line `last`, newline included when the
/// document has one there.
fn span(lines: &[Range<usize>], first: usize, last: usize, doc_len: usize) -> Range<usize> {
    lines[first].start..(lines[last].end + 1).min(doc_len)
}

/// Words that open a block but not a function.
const CONTROL: [&str; 14] = [
    "if", "for", "while", "switch", "catch", "else", "do", "try", "match", "loop", "return", "foreach", "using", "lock",
];

fn is_comment(line: &[u8]) -> bool {
    line.starts_with(b"//") || line.starts_with(b"/*") || line.starts_with(b"*")
}

/// Attribute and annotation lines that may stand between a doc comment and its function:
/// Rust's `#[…]`, Java's and TypeScript's `@…`, C#'s `[…]`.
fn is_attribute(line: &[u8]) -> bool {
    line.starts_with(b"#[") || line.starts_with(b"@") || (line.starts_with(b"[") && line.ends_with(b"]"))
}

/// Whether a trimmed line is a function's signature in a brace language: one that opens the
/// body (`… {`), or, with `allman`, one whose body opens on the next line alone.
fn opens_function(line: &[u8], language: &str, allman: bool) -> bool {
    let opens = if allman { !line.ends_with(b";") && !line.contains(&b'{') } else { line.ends_with(b"{") };
    if !opens || is_comment(line) {
        return false;
    }
    let Some(paren) = line.iter().position(|&b| b == b'(') else { return false };
    if line[..paren].contains(&b'=') || !line.contains(&b')') {
        return false;
    }
    let first = line.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_')).next().unwrap_or_default();
    if CONTROL.iter().any(|k| k.as_bytes() == first) || line.starts_with(b"}") {
        return false;
    }
    match language {
        "rust" => line.windows(3).any(|w| w == b"fn "),
        "go" => line.starts_with(b"func "),
        _ => true,
    }
}

/// `{` minus `}` on a line, outside a trailing `//` comment.
fn brace_balance(line: &[u8]) -> i64 {
    let code = line.windows(2).position(|w| w == b"//").map_or(line, |at| &line[..at]);
    code.iter().map(|&b| i64::from(b == b'{') - i64::from(b == b'}')).sum()
}

fn brace_functions(doc: &[u8], language: &str) -> Vec<(Range<usize>, Range<usize>)> {
    let lines = lines(doc);
    let text = |i: usize| trim(&doc[lines[i].clone()]);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // The line that opens the body: the signature's own, or (Allman style, as C# and much
        // C++ write) the next one, holding `{` alone.
        let allman = i + 1 < lines.len() && text(i + 1) == b"{";
        let open = if allman { i + 1 } else { i };
        if !opens_function(text(i), language, allman) || brace_balance(text(open)) != 1 {
            i += 1;
            continue;
        }
        // Doc comment and attributes directly above.
        let (mut top, mut documented) = (i, false);
        while top > 0 && (is_comment(text(top - 1)) || is_attribute(text(top - 1))) {
            documented |= is_comment(text(top - 1));
            top -= 1;
        }
        // The body: to the line where the braces balance.
        let (mut depth, mut end) = (1i64, None);
        for k in open + 1..lines.len().min(open + 1 + MAX_BODY_LINES) {
            depth += brace_balance(text(k));
            if depth <= 0 {
                end = (depth == 0).then_some(k);
                break;
            }
        }
        match end {
            Some(end) if documented && end > open + 1 => {
                out.push((span(&lines, top, open, doc.len()), span(&lines, open + 1, end, doc.len())));
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn python_functions(doc: &[u8]) -> Vec<(Range<usize>, Range<usize>)> {
    let lines = lines(doc);
    let raw = |i: usize| &doc[lines[i].clone()];
    let mut out = Vec::new();
    for i in 0..lines.len() {
        let line = trim(raw(i));
        if !(line.starts_with(b"def ") || line.starts_with(b"async def ")) {
            continue;
        }
        let base = indent(raw(i));
        // The signature may run over a few lines, to the one ending with `:`.
        let Some(sig_end) = (i..lines.len().min(i + 6)).find(|&k| trim(raw(k)).ends_with(b":")) else { continue };
        let Some(doc_start) = (sig_end + 1..lines.len()).find(|&k| !trim(raw(k)).is_empty()) else { continue };
        let first = trim(raw(doc_start));
        let first = first.strip_prefix(b"r").unwrap_or(first);
        let Some(quote) = [b"\"\"\"", b"'''"].into_iter().find(|q| first.starts_with(*q)) else { continue };
        // The docstring closes on its first line (after the opening quotes) or a later one.
        let doc_end = if first[3..].windows(3).any(|w| w == quote) {
            doc_start
        } else {
            match (doc_start + 1..lines.len().min(doc_start + 60)).find(|&k| raw(k).windows(3).any(|w| w == quote)) {
                Some(k) => k,
                None => continue,
            }
        };
        // The body: lines indented deeper than the `def`, blank ones between them included.
        let mut last = None;
        for k in doc_end + 1..lines.len() {
            let l = raw(k);
            if trim(l).is_empty() {
                continue;
            }
            if indent(l) <= base {
                break;
            }
            last = Some(k);
        }
        match last {
            Some(last) if last - doc_end <= MAX_BODY_LINES => {
                out.push((span(&lines, i, doc_end, doc.len()), span(&lines, doc_end + 1, last, doc.len())));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(doc: &str, language: &str) -> Vec<(String, String)> {
        let tok = Tokenizer::Bytes;
        function_pairs(&tok, &tok.encode(doc.as_bytes()).unwrap(), language)
            .into_iter()
            .map(|p| (tok.decode(&p.prompt), tok.decode(&p.completion)))
            .collect()
    }

    #[test]
    fn a_documented_rust_function_is_a_pair_and_an_undocumented_one_is_not() {
        let doc = "use std::fmt;\n\n/// Adds one.\n#[inline]\npub fn inc(x: u32) -> u32 {\n    if x > 3 {\n        x\n    } else {\n        x + 1\n    }\n}\n\nfn bare() {\n    1\n}\n";
        assert_eq!(
            texts(doc, "rust"),
            vec![(
                "/// Adds one.\n#[inline]\npub fn inc(x: u32) -> u32 {\n".to_string(),
                "    if x > 3 {\n        x\n    } else {\n        x + 1\n    }\n}\n".to_string()
            )]
        );
    }

    #[test]
    fn java_methods_inside_a_class_and_go_functions_are_found_control_blocks_are_not() {
        let java = "class A {\n    /**\n     * Twice.\n     */\n    @Override\n    public int twice(int x) {\n        return 2 * x; // {\n    }\n    // not a function\n    if (x) {\n        y();\n    }\n}\n";
        let pairs = texts(java, "java");
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert!(pairs[0].0.starts_with("    /**") && pairs[0].0.ends_with("twice(int x) {\n"));
        assert_eq!(pairs[0].1, "        return 2 * x; // {\n    }\n");
        let go =
            "// Max returns the larger.\nfunc Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}\n";
        assert_eq!(texts(go, "go").len(), 1);
        assert!(texts(go, "rust").is_empty(), "a Rust function says `fn`");
        let csharp = "    /// <summary>Half.</summary>\n    public static int Half(int x)\n    {\n        return x / 2;\n    }\n";
        let pairs = texts(csharp, "csharp");
        assert_eq!(pairs.len(), 1, "Allman braces: {pairs:?}");
        assert!(pairs[0].0.ends_with("Half(int x)\n    {\n") && pairs[0].1 == "        return x / 2;\n    }\n");
    }

    #[test]
    fn a_python_function_with_a_docstring_is_a_pair_up_to_its_dedent() {
        let doc = "import os\n\ndef area(w,\n         h):\n    \"\"\"The area\n    of a rectangle.\"\"\"\n    a = w * h\n\n    return a\n\nx = area(1, 2)\n\ndef bare():\n    return 1\n";
        assert_eq!(
            texts(doc, "python"),
            vec![(
                "def area(w,\n         h):\n    \"\"\"The area\n    of a rectangle.\"\"\"\n".to_string(),
                "    a = w * h\n\n    return a\n".to_string()
            )]
        );
        let one_line = "class C:\n    def f(self):\n        '''Doc.'''\n        return 1\n";
        assert_eq!(texts(one_line, "python")[0].1, "        return 1\n");
    }

    /// Pairs never cross documents, and a body that never closes is no pair.
    #[test]
    fn pairs_stay_inside_their_document() {
        let tok = Tokenizer::Bytes;
        let mut shard = tok.encode(b"// Open.\nfn open() {\n    1\n").unwrap();
        shard.push(tok.eod());
        shard.extend(tok.encode(b"}\n").unwrap());
        assert!(function_pairs(&tok, &shard, "rust").is_empty());
    }
}
