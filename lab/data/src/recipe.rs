//! The corpus recipe: which sources make up each language, and how to filter, deduplicate,
//! split and tokenize them. Every problem is reported with the file, line and key.
//!
//! ```toml
//! name = "mine"                  # default: the file's stem
//! tokenizer = "bytes"            # or "bpe:<vocab>"; BuildOptions::tokenizer overrides it
//! validation_fraction = 0.05
//! max_bytes = 4_000_000          # per-language input cap, sampled by path hash (default: none)
//! min_bytes = 200_000            # a language with less left after filtering is skipped or an error
//! [filters]                      # see FilterConfig for keys and defaults
//! [dedup]                        # exact, near, jaccard, shingle, permutations
//! [extensions]                   # extra extension → language mappings, e.g. pyx = "python"
//! [languages.python]             # optional = true skips a language with no sources, with a warning
//! sources = [{ dir = "src", include = ["**/*.py"], exclude = ["**/tests/**"] }]
//! [languages.rust]               # a cargo registry pinned to a lockfile's crates (`<name>-<version>/`)
//! sources = [{ dir = "~/.cargo/registry/src/index.crates.io-*", cargo_lock = "../Cargo.lock" }]
//! [languages.java]               # no sources: settings for a language found in [[sources]]
//! filters = { max_line_length = 400 }
//! [[sources]]                    # mixed sources: language from the record's `lang` or the path's extension
//! jsonl = "data/stack.jsonl"
//! content_column = "text"        # jsonl and parquet: field names (defaults content, lang, path)
//! lang_column = "language"
//! path_column = "max_stars_repo_path"
//! languages = ["python", "rust"] # mixed sources: keep only these languages
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::dedup::{DedupConfig, DedupSpec};
use crate::error::{bad, InvalidValue, Result};
use crate::filters::{FilterConfig, FilterSpec};
use crate::lang::{self, Detector};
use crate::locate::Location;
pub use codescale_table::documents::Columns;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    name: Option<String>,
    tokenizer: Option<Spanned<String>>,
    validation_fraction: Option<Spanned<f64>>,
    max_bytes: Option<u64>,
    min_bytes: Option<u64>,
    #[serde(default)]
    filters: FilterSpec,
    #[serde(default)]
    dedup: Option<Spanned<DedupSpec>>,
    #[serde(default)]
    extensions: BTreeMap<String, String>,
    #[serde(default)]
    languages: BTreeMap<String, RawLanguage>,
    #[serde(default)]
    sources: Vec<Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    #[serde(default)]
    optional: bool,
    max_bytes: Option<u64>,
    min_bytes: Option<u64>,
    #[serde(default)]
    filters: FilterSpec,
    #[serde(default)]
    sources: Vec<Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    dir: Option<Location>,
    zip: Option<Location>,
    jsonl: Option<Location>,
    parquet: Option<Location>,
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    language: Option<String>,
    languages: Option<Vec<String>>,
    content_column: Option<String>,
    lang_column: Option<String>,
    path_column: Option<String>,
    cargo_lock: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Dir,
    Zip,
    Jsonl,
    Parquet,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Dir => "dir",
            SourceKind::Zip => "zip",
            SourceKind::Jsonl => "jsonl",
            SourceKind::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub location: Location,
    /// Globs over paths relative to the directory or archive root (dir and zip sources).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// For a mixed source: every document is this language instead of being detected.
    pub language: Option<String>,
    /// For a mixed source: only documents of these languages are taken.
    pub languages: Option<Vec<String>>,
    /// Where jsonl and parquet records keep their content, language and path.
    pub columns: Columns,
    /// A `Cargo.lock` (relative to the recipe's folder) whose registry packages are the only
    /// top-level folders of a `dir` source taken (`<name>-<version>`, as cargo unpacks them):
    /// a cargo registry then gives the same crates on every machine that fetched the lock.
    pub cargo_lock: Option<String>,
    /// Line in the recipe, for messages.
    pub line: usize,
}

/// Settings for one language; languages found only in mixed sources get the recipe's defaults.
#[derive(Debug, Clone)]
pub struct LanguageSpec {
    pub name: String,
    pub optional: bool,
    pub max_bytes: u64,
    /// Fewer bytes left after filtering and deduplication leave the language out (optional)
    /// or fail the build: a language with a few kilobytes cannot be trained or evaluated.
    pub min_bytes: u64,
    pub filters: FilterConfig,
    pub sources: Vec<SourceSpec>,
}

#[derive(Debug, Clone)]
pub struct Recipe {
    pub path: PathBuf,
    /// The file's bytes, part of the rebuild fingerprint.
    pub text: String,
    pub name: String,
    pub tokenizer: String,
    pub validation_fraction: f64,
    pub max_bytes: u64,
    pub min_bytes: u64,
    pub filters: FilterConfig,
    pub dedup: DedupConfig,
    pub detector: Detector,
    pub languages: Vec<LanguageSpec>,
    pub mixed: Vec<SourceSpec>,
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Recipe> {
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read recipe {}: {e}", path.display())))?;
        Recipe::parse(path, &text)
    }

    /// Parses `text` as if read from `path` (relative source paths are taken from its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Recipe> {
        let file = path.display().to_string();
        let raw: RawRecipe = toml::from_str(text).map_err(|e| bad(toml_message(&file, text, &e)))?;
        let at = |span: Range<usize>, key: &str, msg: String| {
            bad(format!("{file}:{}: `{key}`: {msg}", line_of(text, span.start)))
        };

        let tokenizer = match &raw.tokenizer {
            Some(t) => {
                check_tokenizer(t.get_ref()).map_err(|e| at(t.span(), "tokenizer", e.to_string()))?;
                t.get_ref().clone()
            }
            None => "bytes".to_string(),
        };
        let validation_fraction = match &raw.validation_fraction {
            Some(v) if !(0.0..1.0).contains(v.get_ref()) => {
                return Err(at(v.span(), "validation_fraction", format!("must be in [0, 1), got {}", v.get_ref())))
            }
            Some(v) => *v.get_ref(),
            None => 0.05,
        };
        let dedup = match &raw.dedup {
            Some(d) => d.get_ref().resolve().map_err(|e| at(d.span(), "dedup", e.to_string()))?,
            None => DedupSpec::default().resolve().expect("defaults are valid"),
        };
        let mut extensions = BTreeMap::new();
        for (ext, l) in &raw.extensions {
            let canon = lang::canonical(l).ok_or_else(|| {
                bad(format!("{file}:{}: `extensions.{ext}`: `{l}` is not a usable language name", find_line(text, ext)))
            })?;
            extensions.insert(ext.clone(), canon);
        }
        let detector = Detector::new(&extensions);
        let filters = raw.filters.over(&FilterConfig::default());
        check_filters(&filters).map_err(|m| bad(format!("{file}:{}: `filters`: {m}", find_line(text, "[filters]"))))?;
        let max_bytes = raw.max_bytes.unwrap_or(u64::MAX);
        let min_bytes = raw.min_bytes.unwrap_or(0);

        let mut languages: Vec<LanguageSpec> = Vec::new();
        for (written, l) in &raw.languages {
            let header_line = find_line(text, &format!("languages.{written}"));
            let name = lang::canonical(written).ok_or_else(|| {
                bad(format!(
                    "{file}:{header_line}: `languages.{written}`: a language name may hold only a-z, 0-9, `_` and `-`"
                ))
            })?;
            if languages.iter().any(|o| o.name == name) {
                return Err(bad(format!("{file}:{header_line}: `languages.{written}`: `{name}` is given twice")));
            }
            let lang_filters = l.filters.over(&filters);
            check_filters(&lang_filters)
                .map_err(|m| bad(format!("{file}:{header_line}: `languages.{written}.filters`: {m}")))?;
            let mut sources = Vec::new();
            for s in &l.sources {
                sources.push(source(s, Some(&name), &detector, &file, text)?);
            }
            if sources.is_empty() && raw.sources.is_empty() {
                return Err(bad(format!("{file}:{header_line}: `languages.{written}.sources`: no sources (a section without sources only sets options for a language of the recipe's `[[sources]]`, and it has none)")));
            }
            languages.push(LanguageSpec {
                name,
                optional: l.optional,
                max_bytes: l.max_bytes.unwrap_or(max_bytes),
                min_bytes: l.min_bytes.unwrap_or(min_bytes),
                filters: lang_filters,
                sources,
            });
        }
        let mixed = raw.sources.iter().map(|s| source(s, None, &detector, &file, text)).collect::<Result<Vec<_>>>()?;
        if languages.is_empty() && mixed.is_empty() {
            return Err(bad(format!("{file}: the recipe has no `[languages.<name>]` and no `[[sources]]`")));
        }
        let name = raw.name.clone().unwrap_or_else(|| stem(path));
        Ok(Recipe {
            path: path.to_path_buf(),
            text: text.to_string(),
            name,
            tokenizer,
            validation_fraction,
            max_bytes,
            min_bytes,
            filters,
            dedup,
            detector,
            languages,
            mixed,
        })
    }

    /// The folder relative source paths are taken from.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Settings for `name`: its own section, or the recipe defaults for a language that only
    /// appears in mixed sources.
    pub fn language(&self, name: &str) -> LanguageSpec {
        self.languages.iter().find(|l| l.name == name).cloned().unwrap_or_else(|| LanguageSpec {
            name: name.to_string(),
            optional: false,
            max_bytes: self.max_bytes,
            min_bytes: self.min_bytes,
            filters: self.filters.clone(),
            sources: Vec::new(),
        })
    }
}

/// `bytes`, or `bpe:<vocab>` with a vocabulary that fits `u16` ids and holds the 256 bytes and the
/// end-of-document token.
pub fn check_tokenizer(name: &str) -> std::result::Result<(), InvalidValue> {
    codescale_core::config::vocab_size(name)
        .map(|_| ())
        .ok_or_else(|| InvalidValue(format!("`{name}` is not `bytes` or `bpe:<vocab>` with 258 ≤ vocab ≤ 65536")))
}

fn check_filters(f: &FilterConfig) -> std::result::Result<(), InvalidValue> {
    if !(0.0..=1.0).contains(&f.min_alnum_fraction) {
        return Err(InvalidValue(format!("`min_alnum_fraction` must be in [0, 1], got {}", f.min_alnum_fraction)));
    }
    if f.max_avg_line_length.is_nan() || f.max_avg_line_length <= 0.0 {
        return Err(InvalidValue(format!("`max_avg_line_length` must be positive, got {}", f.max_avg_line_length)));
    }
    Ok(())
}

fn source(
    s: &Spanned<RawSource>,
    section: Option<&str>,
    detector: &Detector,
    file: &str,
    text: &str,
) -> Result<SourceSpec> {
    let line = line_of(text, s.span().start);
    let err = |key: &str, msg: String| bad(format!("{file}:{line}: `{key}`: {msg}"));
    let r = s.get_ref();
    let given: Vec<(SourceKind, &Location)> = [
        (SourceKind::Dir, &r.dir),
        (SourceKind::Zip, &r.zip),
        (SourceKind::Jsonl, &r.jsonl),
        (SourceKind::Parquet, &r.parquet),
    ]
    .into_iter()
    .filter_map(|(k, l)| l.as_ref().map(|l| (k, l)))
    .collect();
    let [(kind, location)] = given[..] else {
        return Err(err("sources", "a source needs exactly one of `dir`, `zip`, `jsonl`, `parquet`".into()));
    };
    let language = match (&r.language, section) {
        (Some(_), Some(sec)) => {
            return Err(err(
                "language",
                format!("not allowed under `languages.{sec}`, which already names the language"),
            ))
        }
        (Some(l), None) => {
            Some(lang::canonical(l).ok_or_else(|| err("language", format!("`{l}` is not a usable language name")))?)
        }
        (None, sec) => sec.map(String::from),
    };
    let files = matches!(kind, SourceKind::Dir | SourceKind::Zip);
    let named =
        [("content_column", &r.content_column), ("lang_column", &r.lang_column), ("path_column", &r.path_column)];
    if let Some((key, _)) = named.iter().find(|(_, v)| v.is_some()).filter(|_| files) {
        return Err(err(key, format!("column names apply to `jsonl` and `parquet` sources, not `{}`", kind.as_str())));
    }
    if let (Some(_), Some(sec)) = (&r.lang_column, section) {
        return Err(err(
            "lang_column",
            format!("not used under `languages.{sec}`, which names the language of every record"),
        ));
    }
    let languages = match (&r.languages, section.or(r.language.as_deref())) {
        (Some(_), Some(_)) => {
            return Err(err("languages", "keeps some languages of a mixed source; this source has one language".into()))
        }
        (Some(list), None) => Some(
            list.iter()
                .map(|l| {
                    lang::canonical(l).ok_or_else(|| err("languages", format!("`{l}` is not a usable language name")))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        (None, _) => None,
    };
    let defaults = Columns::default();
    let columns = Columns {
        content: r.content_column.clone().unwrap_or(defaults.content),
        lang: r.lang_column.clone().unwrap_or(defaults.lang),
        path: r.path_column.clone().unwrap_or(defaults.path),
    };
    if r.cargo_lock.is_some() && kind != SourceKind::Dir {
        return Err(err("cargo_lock", format!("applies to `dir` sources (a cargo registry), not `{}`", kind.as_str())));
    }
    if !files && (r.include.is_some() || !r.exclude.is_empty()) {
        return Err(err(
            "include",
            format!("`include` and `exclude` apply to `dir` and `zip` sources, not `{}`", kind.as_str()),
        ));
    }
    let include = match (&r.include, &language) {
        (Some(globs), _) => globs.clone(),
        (None, Some(l)) => detector.globs_for(l),
        (None, None) => detector.all_globs(),
    };
    if files && include.is_empty() {
        let l = language.as_deref().unwrap_or("?");
        return Err(err("include", format!("language `{l}` has no known file extensions; give `include` globs")));
    }
    for g in include.iter().chain(&r.exclude) {
        globset::Glob::new(g).map_err(|e| {
            err(if r.include.as_ref().is_some_and(|i| i.contains(g)) { "include" } else { "exclude" }, e.to_string())
        })?;
    }
    Ok(SourceSpec {
        kind,
        location: location.clone(),
        include,
        exclude: r.exclude.clone(),
        language,
        languages,
        columns,
        cargo_lock: r.cargo_lock.clone(),
        line,
    })
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "corpus".into())
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Line of the first occurrence of `needle`, or 1.
fn find_line(text: &str, needle: &str) -> usize {
    text.find(needle).map_or(1, |o| line_of(text, o))
}

/// `file:line: \`key\`: message` from a toml error, the key read from the text around its span:
/// toml points at the key for unknown fields and at the value for wrong types.
fn toml_message(file: &str, text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    let Some(span) = e.span() else {
        return format!("{file}: {message}");
    };
    let line = line_of(text, span.start);
    match key_at(text, span) {
        Some(key) => format!("{file}:{line}: `{key}`: {message}"),
        None => format!("{file}:{line}: {message}"),
    }
}

fn key_at(text: &str, span: Range<usize>) -> Option<String> {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..start];
    let clean = |k: &str| {
        let k = k.trim().trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']').trim();
        (!k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || "_-.+#".contains(c))).then(|| k.to_string())
    };
    let end = span.end.min(text.len()).max(start);
    // An unknown key: the span is the key itself, followed by `=`.
    if text[end..].trim_start_matches([' ', '\t']).starts_with('=') {
        if let Some(k) = clean(&text[start..end]) {
            return Some(k);
        }
    }
    // The value of `key = value`, possibly inside an inline table or array: the last `=` before it.
    if let Some(eq) = before.rfind('=') {
        let lhs = &before[..eq];
        let key_start = lhs.rfind(['{', ',', '[']).map_or(0, |i| i + 1);
        if let Some(k) = clean(&lhs[key_start..]) {
            return Some(k);
        }
    }
    let spanned = &text[start..end];
    let first_line = spanned.lines().next().unwrap_or("");
    clean(first_line.split('=').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Recipe> {
        Recipe::parse(Path::new("r.toml"), text)
    }

    #[test]
    fn defaults_and_overrides() {
        let r = parse(
            "max_bytes = 10\n[filters]\nmax_line_length = 50\n[languages.Python]\nfilters = { min_alnum_fraction = 0.5 }\nsources = [{ dir = \"src\" }]\n",
        )
        .unwrap();
        assert_eq!(r.name, "r");
        assert_eq!(r.tokenizer, "bytes");
        let py = &r.languages[0];
        assert_eq!(py.name, "python");
        assert_eq!(py.max_bytes, 10);
        assert_eq!(py.filters.max_line_length, 50);
        assert_eq!(py.filters.min_alnum_fraction, 0.5);
        assert_eq!(py.sources[0].include, vec!["**/*.py", "**/*.pyi"]);
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = parse("tokenizer = \"bytes\"\n\n[languages.rust]\nsources = [{ dir = \"x\" }]\nmaxbytes = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.toml:5: `maxbytes`"), "{e}");
        let e = parse("[languages.rust]\nmax_bytes = \"many\"\nsources = [{ dir = \"x\" }]\n").unwrap_err().to_string();
        assert!(e.starts_with("r.toml:2: `max_bytes`"), "{e}");
        let e = parse("[languages.rust]\nsources = [\n  { dir = \"x\", inclde = [\"*.rs\"] },\n]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.toml:3: `inclde`"), "{e}");
        let e =
            parse("tokenizer = \"bpe:12\"\n[languages.rust]\nsources = [{ dir = \"x\" }]\n").unwrap_err().to_string();
        assert!(e.starts_with("r.toml:1: `tokenizer`"), "{e}");
        let e = parse("[languages.rust]\nsources = [{ dir = \"x\", zip = \"y\" }]\n").unwrap_err().to_string();
        assert!(e.starts_with("r.toml:2: `sources`"), "{e}");
        let e = parse("[[sources]]\njsonl = \"a\"\n\n[[sources]]\nparquet = \"b\"\ninclude = [\"*\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.toml:4: `include`"), "{e}");
    }

    #[test]
    fn column_names_and_kept_languages_go_where_they_mean_something() {
        let r = parse("[[sources]]\nparquet = \"s.parquet\"\ncontent_column = \"text\"\nlanguages = [\"Python\", \"C++\"]\n[languages.python]\nfilters = { max_line_length = 80 }\n").unwrap();
        let s = &r.mixed[0];
        assert_eq!(
            (s.columns.content.as_str(), s.columns.lang.as_str(), s.columns.path.as_str()),
            ("text", "lang", "path")
        );
        assert_eq!(s.languages, Some(vec!["python".to_string(), "cpp".to_string()]));
        assert_eq!(r.language("python").filters.max_line_length, 80, "a section without sources sets options");
        let cases = [
            ("[languages.rust]\nsources = [{ dir = \"x\", path_column = \"p\" }]\n", "r.toml:2: `path_column`"),
            ("[languages.rust]\nsources = [{ jsonl = \"x\", lang_column = \"l\" }]\n", "r.toml:2: `lang_column`"),
            ("[languages.rust]\nsources = [{ jsonl = \"x\", languages = [\"go\"] }]\n", "r.toml:2: `languages`"),
            ("[[sources]]\njsonl = \"x\"\nlanguages = [\"c c\"]\n", "r.toml:1: `languages`"),
            (
                "[languages.rust]\nfilters = { max_line_length = 80 }\n",
                "r.toml:1: `languages.rust.sources`: no sources",
            ),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
        }
    }
}
