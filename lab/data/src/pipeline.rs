//! `build`: recipe → sources → read → filter → dedup → split → tokenize → shards + manifest,
//! built in a temporary directory beside the output and renamed into place at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::error::{bad, Result};
use crate::filters::{self, Reason};
use crate::manifest::{
    self, BuildInfo, BuildStats, Counts, LanguageEntry, Manifest, SourceRecord, SplitEntry, Stage, TokenizerInfo,
};
use crate::recipe::{check_tokenizer, Recipe};
use crate::sources::{self, Doc, Listing, ResolvedSource};
use crate::tokenize::{Tokenizer, TOKENIZER_FILE};
use crate::{dedup, shards, split, BuildOptions, Corpus};

const CODE_VERSION: &str = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));

pub fn build(recipe_path: &Path, opts: &BuildOptions) -> Result<Corpus> {
    let started = Instant::now();
    let recipe = load_recipe(recipe_path, opts)?;
    let out = opts.out.clone().unwrap_or_else(|| crate::default_dir(recipe_path, &recipe.tokenizer));
    let ui = Ui { quiet: opts.quiet };
    let mut stats = BuildStats::default();
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();

    let t = Instant::now();
    let resolved = sources::resolve(&recipe);
    let listings = list_sources(&recipe, &resolved, &mut skipped)?;
    stats.list = Stage {
        seconds: t.elapsed().as_secs_f64(),
        bytes: listings.iter().flat_map(|l| &l.entries).map(|e| e.size).sum(),
    };
    let fingerprint = fingerprint(&recipe, &resolved, &listings);
    remove_dead_builds(&out);
    if !opts.force {
        if let Some(existing) = reuse(&out, &fingerprint, &ui) {
            return Ok(existing);
        }
    }
    check_replaceable(&out)?;

    let sources::Collected { languages: items, per_source, unassigned } =
        sources::collect(&recipe, &resolved, &listings)?;
    let items = languages_with_sources(&recipe, items, &mut skipped)?;
    let mut docs = read(items, &ui, &mut stats)?;
    let (inputs, mut removed) = filter(&recipe, &mut docs, &ui, &mut stats);
    let hashes = deduplicate(&recipe, &mut docs, &mut removed, &ui, &mut stats);
    drop_thin_languages(&recipe, &mut docs, &inputs, &removed, &mut skipped, &ui)?;
    let sides = split(&recipe, docs, &hashes);
    let tokenizer = tokenizer(&recipe, &sides, &ui, &mut stats)?;
    let encoded = tokenize(&tokenizer, &sides, &ui, &mut stats)?;

    // Write into a temporary sibling, then swap it in.
    let t = Instant::now();
    let tmp = TempDir::new(&out)?;
    let tokenizer_json = tokenizer.to_json()?;
    if let Some(json) = &tokenizer_json {
        std::fs::write(tmp.0.join(TOKENIZER_FILE), json).with_context(|| format!("writing {TOKENIZER_FILE}"))?;
    }
    let mut languages = BTreeMap::new();
    for (lang, [train_ids, val_ids]) in &encoded {
        let (train, val) = &sides[lang];
        let spec = recipe.language(lang);
        let entry_for = |name: &str, docs: &[Doc], ids: &[Vec<u16>]| -> Result<SplitEntry> {
            let file = format!("{lang}.{name}.bin");
            let w = shards::write(&tmp.0.join(&file), ids, tokenizer.eod())?;
            Ok(SplitEntry {
                shard: file,
                documents: docs.len() as u64,
                bytes: docs.iter().map(|d| d.content.len() as u64).sum(),
                tokens: w.tokens,
                blake3: w.blake3,
            })
        };
        let train_entry = entry_for("train", train, train_ids)?;
        let val_entry = entry_for("val", val, val_ids)?;
        let records = source_records(lang, &resolved, &listings, &per_source);
        languages.insert(
            lang.clone(),
            LanguageEntry {
                filters: spec.filters.clone(),
                max_bytes: (spec.max_bytes != u64::MAX).then_some(spec.max_bytes),
                input: inputs[lang],
                removed: Reason::ALL
                    .iter()
                    .map(|r| (r.as_str().to_string(), removed[lang].get(r).copied().unwrap_or(0)))
                    .collect(),
                train: train_entry,
                val: val_entry,
                sources: records,
            },
        );
    }
    stats.write = Stage {
        seconds: t.elapsed().as_secs_f64(),
        bytes: encoded.values().flatten().flatten().map(|d| 2 * (d.len() as u64 + 1)).sum(),
    };
    stats.total_seconds = started.elapsed().as_secs_f64();

    let warnings = skipped.iter().map(|(l, why)| format!("skipped language `{l}`: {why}")).collect();
    let mut manifest = Manifest {
        format: manifest::FORMAT,
        name: recipe.name.clone(),
        hash: String::new(),
        tokenizer: TokenizerInfo {
            name: recipe.tokenizer.clone(),
            vocab_size: tokenizer.vocab_size(),
            eod_token: tokenizer.eod(),
            file: tokenizer_json.as_ref().map(|_| TOKENIZER_FILE.to_string()),
        },
        tokenizer_hash: tokenizer.hash()?,
        validation_fraction: recipe.validation_fraction,
        dedup: recipe.dedup.clone(),
        languages,
        skipped,
        unassigned,
        build: BuildInfo {
            created: manifest::now_rfc3339(),
            fingerprint,
            code_version: CODE_VERSION.to_string(),
            recipe: recipe.path.display().to_string(),
            stats,
            warnings,
        },
    };
    manifest.hash = manifest.content_hash();
    codescale_core::atomic::write_json(&tmp.0.join(manifest::MANIFEST_FILE), &manifest)?;
    tmp.install(&out)?;
    ui.stage("write", &manifest.build.stats.write);
    Ok(Corpus { dir: out, manifest, reused: false, tokenizer })
}

/// Documents of a language, keyed by language.
type Docs = BTreeMap<String, Vec<Doc>>;
/// Per language, removals by reason.
type Removed = BTreeMap<String, BTreeMap<Reason, u64>>;

/// The recipe, with the tokenizer override applied.
fn load_recipe(path: &Path, opts: &BuildOptions) -> Result<Recipe> {
    let mut recipe = Recipe::load(path)?;
    if let Some(t) = &opts.tokenizer {
        check_tokenizer(t).map_err(|m| bad(format!("tokenizer override: {m}")))?;
        recipe.tokenizer = t.clone();
    }
    Ok(recipe)
}

/// The corpus already at `out`, if it was built from the same recipe, sources and code and every
/// shard still holds what the manifest says: a shard damaged on disk is rebuilt rather than
/// failing every trial that reads it.
fn reuse(out: &Path, fingerprint: &str, ui: &Ui) -> Option<Corpus> {
    let mut existing = Corpus::open(out).ok().filter(|c| c.manifest.build.fingerprint == fingerprint)?;
    match existing.verify() {
        Ok(()) => {
            existing.reused = true;
            Some(existing)
        }
        Err(e) => {
            ui.warn(&format!("{e}; rebuilding the corpus"));
            None
        }
    }
}

/// The collected files of every language that has some; a language without any is skipped when
/// optional, an error otherwise.
fn languages_with_sources(
    recipe: &Recipe,
    mut items: BTreeMap<String, Vec<sources::Item>>,
    skipped: &mut BTreeMap<String, String>,
) -> Result<BTreeMap<String, Vec<sources::Item>>> {
    for spec in &recipe.languages {
        if items.get(&spec.name).is_some_and(|v| !v.is_empty()) || skipped.contains_key(&spec.name) {
            continue;
        }
        let tried: Vec<String> = spec.sources.iter().map(|s| format!("{} {}", s.kind.as_str(), s.location)).collect();
        // A section without sources of its own only sets options for a language of [[sources]].
        let (skip, fail) = if tried.is_empty() {
            let none = "the recipe's [[sources]] hold none of it".to_string();
            (none.clone(), none)
        } else {
            (
                format!("no source files found (looked in {})", tried.join("; ")),
                format!("its sources matched no files ({})", tried.join("; ")),
            )
        };
        if spec.optional {
            skipped.insert(spec.name.clone(), skip);
        } else {
            return Err(bad(format!("{}: language `{}` has no documents: {fail}", recipe.path.display(), spec.name)));
        }
    }
    items.retain(|l, _| !skipped.contains_key(l));
    Ok(items)
}

fn read(items: BTreeMap<String, Vec<sources::Item>>, ui: &Ui, stats: &mut BuildStats) -> Result<Docs> {
    let t = Instant::now();
    let total: u64 = items.values().flatten().map(|i| i.read_size()).sum();
    let n_files: usize = items.values().map(Vec::len).sum();
    let bar = ui.bytes_bar(total, format!("{n_files} files"));
    let mut docs = Docs::new();
    for (lang, list) in items {
        docs.insert(lang, sources::read(list, &bar)?);
    }
    bar.finish_and_clear();
    stats.read = Stage { seconds: t.elapsed().as_secs_f64(), bytes: total };
    ui.stage("read", &stats.read);
    Ok(docs)
}

/// Drops the documents the language's filters reject; returns what came in and what went, per
/// language.
fn filter(recipe: &Recipe, docs: &mut Docs, ui: &Ui, stats: &mut BuildStats) -> (BTreeMap<String, Counts>, Removed) {
    let t = Instant::now();
    let mut removed = Removed::new();
    let mut inputs: BTreeMap<String, Counts> = BTreeMap::new();
    for (lang, list) in docs.iter_mut() {
        let cfg = recipe.language(lang).filters;
        let verdicts: Vec<Option<Reason>> = list
            .par_iter()
            .map(|d| if d.oversize { Some(Reason::TooLarge) } else { filters::check(&d.content, &d.name, &cfg) })
            .collect();
        inputs.insert(
            lang.clone(),
            Counts { documents: list.len() as u64, bytes: list.iter().map(|d| d.content.len() as u64).sum() },
        );
        let counts = removed.entry(lang.clone()).or_default();
        let mut verdicts = verdicts.into_iter();
        list.retain(|_| match verdicts.next().flatten() {
            Some(r) => {
                *counts.entry(r).or_default() += 1;
                false
            }
            None => true,
        });
    }
    stats.filter = Stage { seconds: t.elapsed().as_secs_f64(), bytes: inputs.values().map(|c| c.bytes).sum() };
    ui.stage("filter", &stats.filter);
    (inputs, removed)
}

/// Drops exact and near duplicates; returns each kept document's content hash (which the split
/// also uses).
fn deduplicate(
    recipe: &Recipe,
    docs: &mut Docs,
    removed: &mut Removed,
    ui: &Ui,
    stats: &mut BuildStats,
) -> BTreeMap<String, Vec<[u8; 32]>> {
    let t = Instant::now();
    let spinner = ui.spinner("dedup");
    let mut hashes: BTreeMap<String, Vec<[u8; 32]>> = BTreeMap::new();
    let mut dedup_bytes = 0;
    for (lang, list) in docs.iter_mut() {
        dedup_bytes += list.iter().map(|d| d.content.len() as u64).sum::<u64>();
        let counts = removed.get_mut(lang).expect("filtered");
        let mut h: Vec<[u8; 32]> = list.par_iter().map(|d| *blake3::hash(&d.content).as_bytes()).collect();
        if recipe.dedup.exact {
            let dup = dedup::exact_duplicates(&h);
            *counts.entry(Reason::ExactDuplicate).or_default() += dup.iter().filter(|&&d| d).count() as u64;
            keep(list, &mut h, &dup);
        }
        if recipe.dedup.near {
            let contents: Vec<&[u8]> = list.iter().map(|d| d.content.as_slice()).collect();
            let dup = dedup::near_duplicates(&contents, &recipe.dedup);
            *counts.entry(Reason::NearDuplicate).or_default() += dup.iter().filter(|&&d| d).count() as u64;
            keep(list, &mut h, &dup);
        }
        hashes.insert(lang.clone(), h);
    }
    spinner.finish_and_clear();
    stats.dedup = Stage { seconds: t.elapsed().as_secs_f64(), bytes: dedup_bytes };
    ui.stage("dedup", &stats.dedup);
    hashes
}

/// Skips (or, for a required language, refuses) every language left empty or under `min_bytes`
/// by filtering and dedup.
fn drop_thin_languages(
    recipe: &Recipe,
    docs: &mut Docs,
    inputs: &BTreeMap<String, Counts>,
    removed: &Removed,
    skipped: &mut BTreeMap<String, String>,
    ui: &Ui,
) -> Result<()> {
    for (lang, list) in docs.iter() {
        let kept: u64 = list.iter().map(|d| d.content.len() as u64).sum();
        let min_bytes = recipe.language(lang).min_bytes;
        let msg = if list.is_empty() {
            let why: Vec<String> =
                removed[lang].iter().filter(|(_, &n)| n > 0).map(|(r, n)| format!("{} {n}", r.as_str())).collect();
            format!("all {} documents were removed ({})", inputs[lang].documents, why.join(", "))
        } else if kept < min_bytes {
            format!("only {kept} bytes in {} documents left after filtering, below min_bytes = {min_bytes}", list.len())
        } else {
            continue;
        };
        if recipe.language(lang).optional {
            skipped.insert(lang.clone(), msg);
        } else {
            return Err(bad(format!("{}: language `{lang}` is empty: {msg}", recipe.path.display())));
        }
    }
    docs.retain(|l, _| !skipped.contains_key(l));
    if docs.is_empty() {
        return Err(bad(format!(
            "{}: no language has any documents ({})",
            recipe.path.display(),
            describe_skips(skipped)
        )));
    }
    for (lang, why) in skipped.iter() {
        ui.warn(&format!("skipping language `{lang}`: {why}"));
    }
    Ok(())
}

/// (train, validation) documents per language, by content hash.
fn split(
    recipe: &Recipe,
    docs: Docs,
    hashes: &BTreeMap<String, Vec<[u8; 32]>>,
) -> BTreeMap<String, (Vec<Doc>, Vec<Doc>)> {
    let mut sides = BTreeMap::new();
    for (lang, list) in docs {
        let val = split::validation(&hashes[&lang], recipe.validation_fraction);
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        for (d, v) in list.into_iter().zip(val) {
            if v {
                valid.push(d)
            } else {
                train.push(d)
            }
        }
        sides.insert(lang, (train, valid));
    }
    sides
}

/// Bytes, or a BPE tokenizer trained on every language's training split.
fn tokenizer(
    recipe: &Recipe,
    sides: &BTreeMap<String, (Vec<Doc>, Vec<Doc>)>,
    ui: &Ui,
    stats: &mut BuildStats,
) -> Result<Tokenizer> {
    let Some(vocab) = crate::vocab_of(&recipe.tokenizer) else { return Ok(Tokenizer::Bytes) };
    let t = Instant::now();
    let spinner = ui.spinner("training BPE");
    let texts = sides
        .values()
        .flat_map(|(train, _)| train)
        .map(|d| std::str::from_utf8(&d.content).expect("filtered to UTF-8"));
    let tok = Tokenizer::train_bpe(vocab, texts)?;
    spinner.finish_and_clear();
    stats.train_tokenizer = Stage {
        seconds: t.elapsed().as_secs_f64(),
        bytes: sides.values().flat_map(|(tr, _)| tr).map(|d| d.content.len() as u64).sum(),
    };
    ui.stage("train_tokenizer", &stats.train_tokenizer);
    Ok(tok)
}

/// [train, validation] token ids of every document, per language.
fn tokenize(
    tokenizer: &Tokenizer,
    sides: &BTreeMap<String, (Vec<Doc>, Vec<Doc>)>,
    ui: &Ui,
    stats: &mut BuildStats,
) -> Result<BTreeMap<String, [Vec<Vec<u16>>; 2]>> {
    let t = Instant::now();
    let spinner = ui.spinner("tokenize");
    let mut encoded = BTreeMap::new();
    for (lang, (train, val)) in sides {
        let enc = |docs: &Vec<Doc>| docs.par_iter().map(|d| tokenizer.encode(&d.content)).collect::<Result<Vec<_>>>();
        encoded.insert(lang.clone(), [enc(train)?, enc(val)?]);
    }
    spinner.finish_and_clear();
    let kept_bytes: u64 = sides.values().flat_map(|(a, b)| a.iter().chain(b)).map(|d| d.content.len() as u64).sum();
    stats.tokenize = Stage { seconds: t.elapsed().as_secs_f64(), bytes: kept_bytes };
    ui.stage("tokenize", &stats.tokenize);
    Ok(encoded)
}

/// Lists every source. In an optional language a missing or unreadable source only skips the
/// language; anywhere else it is an error naming the recipe line.
fn list_sources(
    recipe: &Recipe,
    resolved: &[ResolvedSource],
    skipped: &mut BTreeMap<String, String>,
) -> Result<Vec<Listing>> {
    let optional = |s: &ResolvedSource| s.section.as_ref().is_some_and(|l| recipe.language(l).optional);
    for s in resolved {
        if s.path.is_none() && !optional(s) {
            let whose = s.section.as_ref().map_or(String::new(), |l| format!(" of language `{l}`"));
            return Err(bad(format!(
                "{}:{}: {} source{whose} not found: {}",
                recipe.path.display(),
                s.spec.line,
                s.spec.kind.as_str(),
                s.spec.location
            )));
        }
    }
    let listed: Vec<Result<Listing>> = resolved.par_iter().map(sources::list).collect();
    let mut out = Vec::with_capacity(listed.len());
    for (s, l) in resolved.iter().zip(listed) {
        match l {
            Ok(l) => out.push(l),
            Err(e) if optional(s) => {
                let lang = s.section.clone().expect("optional sources are in a section");
                skipped.entry(lang).or_insert_with(|| e.to_string());
                out.push(Listing::default());
            }
            Err(e) => return Err(bad(format!("{}:{}: {e}", recipe.path.display(), s.spec.line))),
        }
    }
    Ok(out)
}

fn fingerprint(recipe: &Recipe, resolved: &[ResolvedSource], listings: &[Listing]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(format!("{CODE_VERSION}\nformat {}\ntokenizer {}\n", manifest::FORMAT, recipe.tokenizer).as_bytes());
    h.update(recipe.text.as_bytes());
    for (s, l) in resolved.iter().zip(listings) {
        sources::fingerprint(&mut h, s, l);
    }
    h.finalize().to_hex().to_string()
}

fn keep(list: &mut Vec<Doc>, hashes: &mut Vec<[u8; 32]>, dup: &[bool]) {
    let mut it = dup.iter();
    list.retain(|_| !*it.next().expect("same length"));
    let mut it = dup.iter();
    hashes.retain(|_| !*it.next().expect("same length"));
}

fn source_records(
    lang: &str,
    resolved: &[ResolvedSource],
    listings: &[Listing],
    per_source: &BTreeMap<(String, usize), (u64, u64)>,
) -> Vec<SourceRecord> {
    resolved
        .iter()
        .zip(listings)
        .enumerate()
        .filter_map(|(i, (s, l))| {
            let contributed = per_source.get(&(lang.to_string(), i)).copied();
            if s.section.as_deref() != Some(lang) && contributed.is_none() {
                return None;
            }
            let (documents, bytes) = contributed.unwrap_or((0, 0));
            Some(SourceRecord {
                kind: s.spec.kind.as_str().to_string(),
                location: s.spec.location.to_string(),
                path: s.path.as_ref().map(|p| p.display().to_string()),
                listed: l.entries.len() as u64,
                documents,
                bytes,
            })
        })
        .collect()
}

fn describe_skips(skipped: &BTreeMap<String, String>) -> String {
    skipped.iter().map(|(l, w)| format!("{l}: {w}")).collect::<Vec<_>>().join("; ")
}

/// Refuses to replace a directory that is not a corpus: `--out` pointing at the wrong place
/// must not delete someone's files.
fn check_replaceable(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let is_corpus = out.join(manifest::MANIFEST_FILE).is_file();
    let is_empty = out.is_dir() && std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
    if is_corpus || is_empty {
        Ok(())
    } else {
        Err(bad(format!(
            "{} exists and is not a corpus directory (no {}); refusing to replace it",
            out.display(),
            manifest::MANIFEST_FILE
        )))
    }
}

/// The output under construction; removed unless installed, so a failed build leaves nothing.
struct TempDir(PathBuf);

impl TempDir {
    fn new(out: &Path) -> Result<TempDir> {
        let dir = sibling(out, "tmp");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing stale {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    fn install(self, out: &Path) -> Result<()> {
        if out.exists() {
            let old = sibling(out, "old");
            std::fs::rename(out, &old).with_context(|| format!("moving aside {}", out.display()))?;
            std::fs::rename(&self.0, out)
                .with_context(|| format!("renaming {} to {}", self.0.display(), out.display()))?;
            std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        } else {
            std::fs::rename(&self.0, out)
                .with_context(|| format!("renaming {} to {}", self.0.display(), out.display()))?;
        }
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the build folders beside `out` that builds killed mid-way left (their process is
/// gone from this host).
fn remove_dead_builds(out: &Path) {
    let name = out.file_name().map_or_else(|| "corpus".into(), |n| n.to_string_lossy().into_owned());
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&format!(".{name}.")) else { continue };
        let pid = rest.split_once('-').and_then(|(_, r)| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !codescale_core::provenance::process_alive(p)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `.<name>.<what>-<pid>` beside `out`: same filesystem, so the final rename is atomic.
fn sibling(out: &Path, what: &str) -> PathBuf {
    let name = out.file_name().map_or_else(|| "corpus".into(), |n| n.to_string_lossy().into_owned());
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Process id and a counter: concurrent builds (a sweep's threads, two shells) never share one.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    parent.join(format!(".{name}.{what}-{}-{n}", std::process::id()))
}

struct Ui {
    quiet: bool,
}

impl Ui {
    fn bytes_bar(&self, total: u64, msg: String) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total).with_message(msg).with_prefix("read");
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    }

    fn spinner(&self, what: &'static str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_prefix(what);
        bar.set_style(ProgressStyle::with_template("{prefix:>9} {spinner} {elapsed}").expect("valid template"));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }

    fn stage(&self, name: &str, s: &Stage) {
        if !self.quiet {
            eprintln!(
                "{name:>15}: {:8.2} MB in {:6.2} s  ({:7.1} MB/s)",
                s.bytes as f64 / 1e6,
                s.seconds,
                s.mb_per_s()
            );
        }
    }

    fn warn(&self, msg: &str) {
        if !self.quiet {
            eprintln!("warning: {msg}");
        }
    }
}
