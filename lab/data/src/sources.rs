//! Finding, listing, sampling and reading source documents.
//!
//! Listing touches only metadata (names, sizes, mtimes), so the rebuild check is cheap;
//! sampling picks a deterministic subset under each language's byte cap before any file
//! content is read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::error::{bad, CorpusError, Result};
use crate::recipe::{Columns, Recipe, SourceKind, SourceSpec};

/// A recipe source with its location resolved on this machine.
#[derive(Debug, Clone)]
pub struct ResolvedSource {
    /// The `[languages.<name>]` section it belongs to; `None` for a mixed `[[sources]]` entry.
    pub section: Option<String>,
    pub spec: SourceSpec,
    /// `None` when no candidate location exists.
    pub path: Option<PathBuf>,
    /// The spec's `cargo_lock`, from the recipe's folder.
    pub cargo_lock: Option<PathBuf>,
}

pub fn resolve(recipe: &Recipe) -> Vec<ResolvedSource> {
    let base = recipe.base_dir();
    let sections = recipe.languages.iter().flat_map(|l| l.sources.iter().map(move |s| (Some(l.name.clone()), s)));
    let mixed = recipe.mixed.iter().map(|s| (None, s));
    let sources: Vec<_> = sections.chain(mixed).collect();
    // Side by side: a location may run a command (`npm root -g` alone takes a third of a
    // second), and every sweep resolves its corpus's sources to check that it is current.
    std::thread::scope(|scope| {
        let base = &base;
        let resolving: Vec<_> = sources
            .into_iter()
            .map(|(section, spec)| {
                scope.spawn(move || ResolvedSource {
                    section,
                    path: spec.location.resolve(base),
                    cargo_lock: spec.cargo_lock.as_ref().map(|l| base.join(l)),
                    spec: spec.clone(),
                })
            })
            .collect();
        resolving.into_iter().map(|r| r.join().expect("resolving a location does not panic")).collect()
    })
}

/// Metadata of one file or archive entry, before reading.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the source root (dir, zip) or the file name (jsonl, parquet).
    pub name: String,
    pub size: u64,
    /// Nanoseconds since the epoch; 0 for archive entries, whose archive's mtime counts instead.
    pub mtime: u128,
    origin: Origin,
}

#[derive(Debug, Clone)]
enum Origin {
    File(PathBuf),
    ZipEntry(Arc<PathBuf>, usize),
}

/// What a source holds on this machine.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
}

pub fn list(src: &ResolvedSource) -> Result<Listing> {
    let Some(path) = &src.path else {
        return Ok(Listing::default());
    };
    let unreadable = |e: &dyn std::fmt::Display| bad(format!("cannot read {}: {e}", path.display()));
    match src.spec.kind {
        SourceKind::Dir => {
            let crates = src.cargo_lock.as_deref().map(locked_crates).transpose()?;
            list_dir(path, &src.spec, crates.as_ref())
        }
        SourceKind::Zip => list_zip(path, &src.spec),
        SourceKind::Jsonl | SourceKind::Parquet => {
            let meta = std::fs::metadata(path).map_err(|e| unreadable(&e))?;
            if !meta.is_file() {
                return Err(bad(format!("{} is not a file", path.display())));
            }
            let name =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            Ok(Listing {
                entries: vec![Entry {
                    name,
                    size: meta.len(),
                    mtime: mtime(&meta),
                    origin: Origin::File(path.clone()),
                }],
            })
        }
    }
}

fn mtime(meta: &std::fs::Metadata) -> u128 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
}

fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // `*` stays within one path component; `**` crosses them, as in .gitignore.
        b.add(GlobBuilder::new(p).literal_separator(true).build().map_err(|e| bad(format!("glob `{p}`: {e}")))?);
    }
    b.build().map_err(|e| bad(e.to_string()))
}

/// The folders cargo unpacks `lock`'s registry packages into (`<name>-<version>`).
fn locked_crates(lock: &Path) -> Result<BTreeSet<String>> {
    #[derive(serde::Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Package>,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
        version: String,
        source: Option<String>,
    }
    let at = |e: &dyn std::fmt::Display| bad(format!("`cargo_lock`: cannot read {}: {e}", lock.display()));
    let text = std::fs::read_to_string(lock).map_err(|e| at(&e))?;
    let lock: Lock = toml::from_str(&text).map_err(|e| at(&e))?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| p.source.as_deref().is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+")))
        .map(|p| format!("{}-{}", p.name, p.version))
        .collect())
}

/// The files of `root` the spec's globs select; with `crates`, only under those top-level
/// folders.
fn list_dir(root: &Path, spec: &SourceSpec, crates: Option<&BTreeSet<String>>) -> Result<Listing> {
    if !root.is_dir() {
        return Err(bad(format!("{} is not a directory", root.display())));
    }
    let (include, exclude) = (globs(&spec.include)?, globs(&spec.exclude)?);
    let mut entries = Vec::new();
    let locked = |e: &walkdir::DirEntry| {
        e.depth() != 1 || crates.is_none_or(|c| e.file_type().is_dir() && c.contains(&*e.file_name().to_string_lossy()))
    };
    // Sorted and not following links: the same tree lists the same way everywhere, without cycles.
    for e in walkdir::WalkDir::new(root).sort_by_file_name().into_iter().filter_entry(locked) {
        let e = e.map_err(|e| {
            let at = e.path().unwrap_or(root).display().to_string();
            bad(format!("cannot read {at}: {}", e.io_error().map_or_else(|| e.to_string(), |io| io.to_string())))
        })?;
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        let rel = rel.to_string_lossy().replace('\\', "/");
        if !include.is_match(&rel) || exclude.is_match(&rel) {
            continue;
        }
        let meta = e.metadata().map_err(|err| bad(format!("cannot read {}: {err}", e.path().display())))?;
        entries.push(Entry {
            name: rel,
            size: meta.len(),
            mtime: mtime(&meta),
            origin: Origin::File(e.path().to_path_buf()),
        });
    }
    Ok(Listing { entries })
}

fn list_zip(path: &Path, spec: &SourceSpec) -> Result<Listing> {
    let (include, exclude) = (globs(&spec.include)?, globs(&spec.exclude)?);
    let file = File::open(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| bad(format!("{} is not a readable zip archive: {e}", path.display())))?;
    let archive = Arc::new(path.to_path_buf());
    let mut entries = Vec::new();
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(|e| bad(format!("{}: entry {i}: {e}", path.display())))?;
        let name = f.name().trim_start_matches('/').to_string();
        if !f.is_file() || !include.is_match(&name) || exclude.is_match(&name) {
            continue;
        }
        // The CRC stands in for an mtime: it changes exactly when the entry's content does.
        entries.push(Entry {
            name,
            size: f.size(),
            mtime: f.crc32() as u128,
            origin: Origin::ZipEntry(archive.clone(), i),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Listing { entries })
}

/// Feeds what identifies a source's current state into the rebuild fingerprint.
pub fn fingerprint(h: &mut blake3::Hasher, src: &ResolvedSource, listing: &Listing) {
    let path = src.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let head = format!("{:?}|{}|{}|{}\n", src.section, src.spec.kind.as_str(), src.spec.location, path);
    h.update(head.as_bytes());
    for e in &listing.entries {
        h.update(format!("{}\0{}\0{}\n", e.name, e.size, e.mtime).as_bytes());
    }
}

/// A document chosen for a language, not yet read (files) or already in memory (records).
#[derive(Debug)]
pub struct Item {
    pub key: u64,
    pub name: String,
    pub source: usize,
    pub size: u64,
    content: Content,
}

#[derive(Debug)]
enum Content {
    At(Origin),
    Inline(Vec<u8>),
    /// Read from an archive already (and counted on the progress bar).
    Loaded(Vec<u8>),
    /// Larger than the language's file cap: never read, removed as too large.
    Skipped,
}

/// A document read into memory.
#[derive(Debug)]
pub struct Doc {
    pub name: String,
    pub content: Vec<u8>,
    /// Not read because it exceeds `max_file_bytes`.
    pub oversize: bool,
}

/// Keeps, per language, the documents with the smallest keys whose sizes first reach the cap.
/// Bounded memory: a document that can no longer make the cut is dropped as soon as it falls out.
struct Sampler {
    budget: u64,
    max_file_bytes: u64,
    total: u64,
    seq: usize,
    items: BTreeMap<(u64, usize, usize), Item>,
}

impl Sampler {
    fn push(&mut self, mut item: Item) {
        let oversize = item.size > self.max_file_bytes;
        if oversize {
            item.content = Content::Skipped;
        }
        self.total += item.read_size();
        self.seq += 1;
        self.items.insert((item.key, item.source, self.seq), item);
        // Drop the largest keys while the rest still fill the budget.
        while let Some((_, last)) = self.items.last_key_value() {
            let size = last.read_size();
            if self.total - size < self.budget {
                break;
            }
            self.total -= size;
            self.items.pop_last();
        }
    }
}

/// Documents per language, in sampling-key order, plus what could not be assigned a language.
pub struct Collected {
    pub languages: BTreeMap<String, Vec<Item>>,
    /// (language, source index) → (documents, bytes) in the sample.
    pub per_source: BTreeMap<(String, usize), (u64, u64)>,
    pub unassigned: u64,
}

/// A JSON line's content, language and path, from the fields the source names.
fn json_record(
    line: &[u8],
    columns: &Columns,
) -> std::result::Result<(String, Option<String>, Option<String>), String> {
    let mut record: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let mut text = |field: &str, required: bool| match record.remove(field) {
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        None | Some(serde_json::Value::Null) if !required => Ok(None),
        None => Err(format!("no `{field}` field")),
        Some(other) => Err(format!("`{field}` is {other:.40}, not a string")),
    };
    let content = text(&columns.content, true)?.expect("required");
    Ok((content, text(&columns.lang, false)?, text(&columns.path, false)?))
}

/// What becomes of a document of a source.
enum Assign {
    To(String),
    /// No language could be told (counted in the manifest).
    Unknown,
    /// A language the source's `languages` leaves out.
    LeftOut,
}

fn sample_key(lang: &str, name: &str) -> u64 {
    let h = blake3::hash(format!("{lang}\0{name}").as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Assigns languages, samples under each language's cap and returns the chosen items.
pub fn collect(recipe: &Recipe, sources: &[ResolvedSource], listings: &[Listing]) -> Result<Collected> {
    let mut samplers: BTreeMap<String, Sampler> = BTreeMap::new();
    let mut unassigned = 0u64;
    let mut offer = |lang: String, name: String, source: usize, size: u64, content: Content| {
        let sampler = samplers.entry(lang.clone()).or_insert_with(|| {
            let spec = recipe.language(&lang);
            Sampler {
                budget: spec.max_bytes,
                max_file_bytes: spec.filters.max_file_bytes,
                total: 0,
                seq: 0,
                items: BTreeMap::new(),
            }
        });
        sampler.push(Item { key: sample_key(&lang, &name), name, source, size, content });
    };
    for (i, (src, listing)) in sources.iter().zip(listings).enumerate() {
        let fixed = src.section.clone().or_else(|| src.spec.language.clone());
        let assign = |name: &str, lang: Option<&str>| {
            let told = fixed
                .clone()
                .or_else(|| lang.and_then(crate::lang::canonical))
                .or_else(|| recipe.detector.detect(name).map(String::from));
            match told {
                None => Assign::Unknown,
                Some(l) if src.spec.languages.as_ref().is_some_and(|keep| !keep.contains(&l)) => Assign::LeftOut,
                Some(l) => Assign::To(l),
            }
        };
        match src.spec.kind {
            SourceKind::Dir | SourceKind::Zip => {
                for e in &listing.entries {
                    match assign(&e.name, None) {
                        Assign::To(l) => offer(l, e.name.clone(), i, e.size, Content::At(e.origin.clone())),
                        Assign::Unknown => unassigned += 1,
                        Assign::LeftOut => {}
                    }
                }
            }
            SourceKind::Jsonl => {
                let Some(path) = &src.path else { continue };
                let file = File::open(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
                let mut reader = BufReader::new(file);
                let mut line = Vec::new();
                let mut number = 0usize;
                loop {
                    line.clear();
                    number += 1;
                    let n = reader
                        .read_until(b'\n', &mut line)
                        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
                    if n == 0 {
                        break;
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let (content, lang, doc_path) = json_record(&line, &src.spec.columns).map_err(|e| {
                        let content = &src.spec.columns.content;
                        bad(format!("{}:{number}: not a JSON object with a string `{content}`: {e}", path.display()))
                    })?;
                    let name = doc_path.unwrap_or_else(|| format!("{}:{number}", listing.entries[0].name));
                    let size = content.len() as u64;
                    match assign(&name, lang.as_deref()) {
                        Assign::To(l) => offer(l, name, i, size, Content::Inline(content.into_bytes())),
                        Assign::Unknown => unassigned += 1,
                        Assign::LeftOut => {}
                    }
                }
            }
            SourceKind::Parquet => {
                let Some(path) = &src.path else { continue };
                let docs = codescale_table::documents::read_documents(path, &src.spec.columns)
                    .map_err(|e| bad(format!("{e:#}")))?;
                for (row, d) in docs.into_iter().enumerate() {
                    let name = d.path.clone().unwrap_or_else(|| format!("{}#{row}", listing.entries[0].name));
                    let size = d.content.len() as u64;
                    match assign(&name, d.lang.as_deref()) {
                        Assign::To(l) => offer(l, name, i, size, Content::Inline(d.content)),
                        Assign::Unknown => unassigned += 1,
                        Assign::LeftOut => {}
                    }
                }
            }
        }
    }
    let mut per_source = BTreeMap::new();
    let languages = samplers
        .into_iter()
        .map(|(lang, s)| {
            let items: Vec<Item> = s.items.into_values().collect();
            for it in &items {
                let e = per_source.entry((lang.clone(), it.source)).or_insert((0u64, 0u64));
                e.0 += 1;
                e.1 += it.size;
            }
            (lang, items)
        })
        .collect();
    Ok(Collected { languages, per_source, unassigned })
}

/// Reads the chosen items' content. Files are read in parallel; each archive is opened once.
pub fn read(mut items: Vec<Item>, progress: &ProgressBar) -> Result<Vec<Doc>> {
    let mut zipped: BTreeMap<Arc<PathBuf>, Vec<(usize, usize)>> = BTreeMap::new();
    for (pos, it) in items.iter().enumerate() {
        if let Content::At(Origin::ZipEntry(archive, index)) = &it.content {
            zipped.entry(archive.clone()).or_default().push((*index, pos));
        }
    }
    for (archive, mut wanted) in zipped {
        wanted.sort_unstable();
        let file = File::open(&*archive).map_err(|e| bad(format!("cannot read {}: {e}", archive.display())))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("cannot read {}: {e}", archive.display())))?;
        for (index, pos) in wanted {
            let mut entry =
                zip.by_index(index).map_err(|e| bad(format!("{}: entry {index}: {e}", archive.display())))?;
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut buf).map_err(|e| bad(format!("{}: {}: {e}", archive.display(), entry.name())))?;
            progress.inc(buf.len() as u64);
            items[pos].content = Content::Loaded(buf);
        }
    }
    items
        .into_par_iter()
        .map(|it| {
            let (content, oversize) = match it.content {
                Content::Inline(bytes) => {
                    progress.inc(bytes.len() as u64);
                    (bytes, false)
                }
                Content::Skipped => (Vec::new(), true),
                Content::Loaded(bytes) => (bytes, false),
                Content::At(Origin::ZipEntry(archive, index)) => {
                    unreachable!("{}: entry {index} not loaded", archive.display())
                }
                Content::At(Origin::File(path)) => {
                    let bytes =
                        std::fs::read(&path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
                    progress.inc(bytes.len() as u64);
                    (bytes, false)
                }
            };
            Ok::<_, CorpusError>(Doc { name: it.name, content, oversize })
        })
        .collect()
}

impl Item {
    /// Bytes this item will contribute to reading, for the progress bar.
    pub fn read_size(&self) -> u64 {
        match self.content {
            Content::Skipped => 0,
            _ => self.size,
        }
    }
}
