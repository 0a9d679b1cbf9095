//! Where fits and reports go: beside the runs folder a sweep's folder sits in, so that
//! `<root>/runs/<sweep>` fits to `<root>/fits/<sweep>.json` and reports to
//! `<root>/reports/<sweep>/`, wherever the program runs.

use std::path::{Path, PathBuf};

/// `<root>/fits/<sweep>.json` for `sweep_dir` = `<root>/<runs>/<sweep>`.
///
/// ```
/// use std::path::Path;
/// assert_eq!(codescale::paths::fit_file(Path::new("lab/runs/tiny")), Path::new("lab/fits/tiny.json"));
/// ```
pub fn fit_file(sweep_dir: &Path) -> PathBuf {
    beside_runs(sweep_dir, "fits").join(format!("{}.json", name(sweep_dir)))
}

/// `<root>/fits/<sweep>.<column>.json`: the sweep fitted against another N column than its
/// main fit's (the report's dense-vs-MoE laws against active and total parameters), or to
/// another loss (`val_fim_loss`).
pub fn fit_file_by(sweep_dir: &Path, column: &str) -> PathBuf {
    beside_runs(sweep_dir, "fits").join(format!("{}.{column}.json", name(sweep_dir)))
}

/// `<root>/reports/<sweep>` for `sweep_dir` = `<root>/<runs>/<sweep>`.
pub fn report_dir(sweep_dir: &Path) -> PathBuf {
    beside_runs(sweep_dir, "reports").join(name(sweep_dir))
}

fn beside_runs(sweep_dir: &Path, what: &str) -> PathBuf {
    let runs_root = sweep_dir.parent().unwrap_or(Path::new(""));
    runs_root.parent().unwrap_or(Path::new("")).join(what)
}

/// The sweep's name, as [`SweepDir::name`](crate::sweep::SweepDir::name) gives it.
fn name(sweep_dir: &Path) -> String {
    crate::sweep::SweepDir { path: sweep_dir.to_path_buf() }.name()
}
