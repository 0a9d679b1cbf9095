//! One trial: `codescale train` (a trial file, outside any sweep) and `codescale trial run` (one
//! planned trial of a prepared sweep, what each Slurm array task runs).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_core::error::line_of;
use codescale_core::{BadInput, CorpusKey, TrialConfig, TrialSpec};
pub use codescale_core::{Status, TrialRecord};
pub use codescale_sweep::child::{outcome_line, ProgressReporter};
pub use codescale_sweep::trial::{run_planned, Outcome, TaskOptions};
pub use codescale_train::RunOptions;

/// Reads a trial file (TOML with any trial key), applies `KEY=VALUE` overrides (`--set`) and
/// resolves it; errors are bad input naming the file and line, or the override.
pub fn load(path: &Path, sets: &[String]) -> Result<TrialConfig> {
    let source = std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    let table: std::collections::BTreeMap<String, toml::Spanned<toml::Value>> =
        toml::from_str(&source).map_err(|e| {
            let line = e.span().map(|s| line_of(&source, s.start)).unwrap_or(1);
            BadInput(format!("{}:{line}: {}", path.display(), e.message().trim()))
        })?;
    let mut spec = TrialSpec::default();
    for (key, value) in &table {
        let line = line_of(&source, value.span().start);
        spec.set_toml(key, value.get_ref()).map_err(|e| BadInput(format!("{}:{line}: {e}", path.display())))?;
    }
    for set in sets {
        let (key, value) = set.split_once('=').ok_or_else(|| BadInput(format!("--set {set}: expected KEY=VALUE")))?;
        spec.set(key.trim(), value.trim()).map_err(|m| BadInput(format!("--set {set}: {m}")))?;
    }
    spec.resolve().map_err(|e| {
        let line = source
            .lines()
            .position(|l| l.trim_start().strip_prefix(e.key).is_some_and(|r| r.trim_start().starts_with('=')))
            .map(|i| i + 1);
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        BadInput(format!("{}{at}: {e}", path.display())).into()
    })
}

/// `path` is one trial's folder (it holds `trial.json`), not a sweep's.
pub fn is_trial_dir(path: &Path) -> bool {
    path.join(codescale_core::record::TRIAL_FILE).exists()
}

/// A trained trial and the folder it was trained in.
pub struct Trained {
    pub record: TrialRecord,
    pub dir: PathBuf,
}

/// Trains the trial of a trial file ([`load`] with `sets`) into `out` (default
/// `runs/trials/<id>`), building or reusing its corpus first; a trial stopped part way (by
/// `opts.stop_after_steps`) resumes from its checkpoint when trained again into the same folder.
/// A GPU backend that this machine cannot run is refused before the corpus is built.
///
/// ```
/// use codescale::trial;
///
/// let lab = codescale::example::Lab::new()?;
/// std::fs::write("t.toml", "corpus = \"recipe.toml\"\nlanguage = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\ntokens = 2560\neval_tokens = 256\n")?;
/// let opts = trial::RunOptions { quiet: true, ..Default::default() };
/// let trained = trial::train("t.toml".as_ref(), &["lr=3e-3".to_string()], Some(lab.path().join("t")), &opts)?;
/// assert_eq!(trained.record.metrics.steps, 10, "2560 tokens / (8 × 32)");
/// assert_eq!(trained.record.config.optimizer.lr, 3e-3);
/// # anyhow::Ok(())
/// ```
pub fn train(path: &Path, sets: &[String], out: Option<PathBuf>, opts: &RunOptions) -> Result<Trained> {
    let config = load(path, sets)?;
    // A GPU that is not here is refused before the corpus is built, which can take minutes.
    codescale_train::backend::device_name(&config).with_context(|| path.display().to_string())?;
    let corpus = codescale_sweep::plan::corpus_for(&config, opts.quiet)?;
    if !corpus.languages().contains(&config.data.language) {
        return Err(BadInput(format!(
            "{}: `language`: `{}` is not in corpus {} (it has: {})",
            path.display(),
            config.data.language,
            config.data.corpus,
            corpus.languages().join(", ")
        ))
        .into());
    }
    let (config, base_dir) = with_base(config, path)?;
    let config = config
        .bound_to(CorpusKey { manifest: corpus.hash().to_string(), tokenizer: corpus.tokenizer_hash().to_string() });
    let dir = out.unwrap_or_else(|| PathBuf::from(TRIALS_ROOT).join(config.trial_id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let opts = RunOptions { init_from: base_dir, ..opts.clone() };
    let record = codescale_train::train_trial(&dir, &config, &corpus, &opts)?;
    Ok(Trained { record, dir })
}

/// Where `codescale train` puts a trial by default: `runs/trials/<id>`.
const TRIALS_ROOT: &str = "runs/trials";

/// `config` with its `init_from` (a finished trial's folder, or its id under `runs/`) replaced
/// by the base's id, and the base's folder; bad input naming the trial file when the base is
/// not there, not done, or of another shape.
fn with_base(mut config: TrialConfig, path: &Path) -> Result<(TrialConfig, Option<PathBuf>)> {
    let Some(named) = config.model.init_from.clone() else { return Ok((config, None)) };
    let refuse = |why: String| -> anyhow::Error { BadInput(format!("{}: `init_from`: {why}", path.display())).into() };
    let dir = if Path::new(&named).join(codescale_core::record::TRIAL_FILE).is_file() {
        PathBuf::from(&named)
    } else {
        codescale_sweep::bases::locate(Path::new("runs"), None, &named)
            .ok_or_else(|| refuse(format!("`{named}` is neither a trial's folder nor the id of a trial under runs/")))?
    };
    let base = codescale_sweep::bases::finished_trial(&dir).map_err(refuse)?;
    if let Some(why) = config.weights_mismatch(&base.config) {
        return Err(refuse(format!("trial {} cannot start this one: {why}", base.id)));
    }
    config.model.init_from = Some(base.id);
    Ok((config, Some(dir)))
}
