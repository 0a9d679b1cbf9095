//! Stage 3, `codescale fit`: scaling laws fitted to a sweep's results, or to a table of your
//! own, written as a fit file. This module turns a sweep's rows or a table's cells into fit
//! points (with their groups, N column and compute budgets); [`codescale_fit`] fits them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::BadInput;
use codescale_fit::results::{budgets_around, points_from_rows};
pub use codescale_fit::results::N_COLUMNS;
pub use codescale_fit::{render_table, FitFile, FitOptions, GroupFit, Point};

/// How to fit, whatever the points come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// The column N comes from (default `n_params`; for a sweep, one of [`N_COLUMNS`]).
    pub n_col: Option<String>,
    /// The fitter's own options (bootstrap, seed, Huber threshold, weighting, trust range). Its
    /// `n_col` is set from the field above and its `budgets` from the points' compute.
    pub fit: FitOptions,
    /// The fit file to write (default [`crate::paths::fit_file`] for a sweep,
    /// `fits/<table's stem>.json` for a table).
    pub out: Option<PathBuf>,
}

/// Which columns of a table of your own hold what (for [`fit_table`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// D in tokens (default `tokens`; or give `c_col` and D is C/6N).
    pub d_col: Option<String>,
    /// Compute in FLOPs.
    pub c_col: Option<String>,
    /// The loss to fit (default `loss`).
    pub loss_col: Option<String>,
    /// Values that split the table into groups fitted apart (default: one group, `all`).
    pub group_col: Option<String>,
    /// Leave out rows whose N, D, loss or compute is not a positive number (listed in
    /// [`Fitted::left_out`]) instead of refusing the table.
    pub skip_bad_rows: bool,
}

/// A fit and the file it was written to.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub fit: FitFile,
    pub path: PathBuf,
    /// Rows of a table left out under [`Columns::skip_bad_rows`], one line each.
    pub left_out: Vec<String>,
}

impl Fitted {
    /// `left out <n> row(s):` and the first rows left out, if any were.
    pub fn left_out_note(&self) -> Option<String> {
        (!self.left_out.is_empty()).then(|| format!("left out {} row(s):\n{}", self.left_out.len(), listing(&self.left_out)))
    }
}

/// Fits the sweep at `sweep_dir` (`runs/<sweep>`) from its records as they are now, one group
/// per language (and architecture), and writes the fit beside the runs folder.
///
/// ```
/// use codescale::{fit, sweep};
///
/// let lab = codescale::example::Lab::new()?;
/// let summary = sweep::run(&lab.sweep()?, &lab.run_config())?;
/// let fitted = fit::fit_sweep(&summary.dir, &fit::Options { fit: fit::FitOptions { bootstrap: 50, ..Default::default() }, ..Default::default() })?;
/// assert_eq!(fitted.path, lab.path().join("fits/tiny.json"));
/// let rust = &fitted.fit.groups[0];
/// assert_eq!((rust.group.as_str(), rust.n_points), ("rust", 6));
/// println!("{}", fit::render_table(&fitted.fit));
/// # anyhow::Ok(())
/// ```
pub fn fit_sweep(sweep_dir: &Path, opts: &Options) -> Result<Fitted> {
    let name = crate::sweep::SweepDir::open(sweep_dir)?.name();
    let n_col = opts.n_col.clone().unwrap_or_else(|| "n_params".into());
    anyhow::ensure!(N_COLUMNS.contains(&n_col.as_str()), BadInput(format!("--n-col {n_col}: a sweep has {}", N_COLUMNS.join(", "))));
    let points = points_from_rows(&crate::sweep::results(sweep_dir)?, &n_col);
    let budgets = budgets_around(points.iter().filter(|p| p.status == "done").filter_map(|p| p.flops));
    let out = opts.out.clone().unwrap_or_else(|| crate::paths::fit_file(sweep_dir));
    let source = sweep_dir.join(codescale_sweep::runs::RESULTS_FILE).display().to_string();
    write_fit(&name, &source, &points, opts, &n_col, &budgets, out, Vec::new())
}

/// Fits a table of your own (CSV or Parquet), one row per trial. A cell of N, D, loss or
/// compute that is not a positive number is bad input naming the file, row and column, unless
/// `columns.skip_bad_rows`. Optional columns: `lr` and `batch_tokens` (rows of a group at the
/// same N, D, LR and batch are seeds of one configuration) and `trunk` (rows naming the same one
/// are cooldown branches of one WSD trunk, whose noise they share).
///
/// ```
/// use codescale::fit;
///
/// // Losses from a known law, L = 1.7 + (3e4/N)^0.34 + (2e7/D)^0.28.
/// let mut csv = String::from("n_params,tokens,loss\n");
/// for n in [1e5_f64, 3e5, 1e6, 3e6] {
///     for d in [1e8_f64, 3e8, 1e9] {
///         csv += &format!("{n},{d},{}\n", 1.7 + (3e4 / n).powf(0.34) + (2e7 / d).powf(0.28));
///     }
/// }
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("mine.csv"), csv)?;
/// let opts = fit::Options { fit: fit::FitOptions { bootstrap: 50, ..Default::default() }, out: Some(dir.path().join("mine.json")), ..Default::default() };
/// let fitted = fit::fit_table(&dir.path().join("mine.csv"), &fit::Columns::default(), &opts)?;
/// let law = fitted.fit.groups[0].law.as_ref().expect("12 points make a law");
/// assert!((law.alpha_n.value - 0.34).abs() < 0.02, "{}", law.alpha_n.value);
/// # anyhow::Ok(())
/// ```
pub fn fit_table(path: &Path, columns: &Columns, opts: &Options) -> Result<Fitted> {
    use codescale_table::user::{f64_column, has_column, read_frame, str_column};
    let df = read_frame(path).map_err(|e| BadInput(format!("{e:#}")))?;
    let col = |name: &Option<String>, default: &str| name.clone().unwrap_or_else(|| default.to_string());
    let bad = |e: anyhow::Error| -> anyhow::Error { BadInput(format!("{}: {e:#}", path.display())).into() };
    let n_col = col(&opts.n_col, "n_params");
    let loss_col = col(&columns.loss_col, "loss");
    // A numeric column: its name, its values, and its cells as written (to quote a bad one).
    let numeric = |name: &str| -> Result<Column> { Ok(Column { name: name.to_string(), values: f64_column(&df, name).map_err(bad)?, text: str_column(&df, name).map_err(bad)? }) };
    let n = numeric(&n_col)?;
    let loss = numeric(&loss_col)?;
    let flops = columns.c_col.as_deref().map(numeric).transpose()?;
    let d = match (&columns.d_col, &flops) {
        (Some(d), _) => numeric(d)?,
        (None, Some(c)) => Column { name: "C/6N".into(), values: c.values.iter().zip(&n.values).map(|(c, n)| c / (6.0 * n)).collect(), text: vec![String::new(); c.values.len()] },
        (None, None) => numeric("tokens").map_err(|_| BadInput(format!("{}: give --d-col or --c-col", path.display())))?,
    };
    let groups = match &columns.group_col {
        Some(g) => str_column(&df, g).map_err(bad)?,
        None => vec!["all".to_string(); n.values.len()],
    };
    let optional = |name: &str| if has_column(&df, name) { f64_column(&df, name).ok() } else { None };
    let (lr, batch) = (optional("lr"), optional("batch_tokens"));
    // Rows that name one trunk are cooldown branches of it: the additivity check blocks on it.
    let trunks = if has_column(&df, "trunk") { Some(str_column(&df, "trunk").map_err(bad)?) } else { None };

    // A table is the user's own data: a cell that is not a positive number is a mistake to point
    // at (file, row, column), not a point to drop quietly.
    let mut problems = Vec::new();
    let mut keep = Vec::new();
    for i in 0..n.values.len() {
        let cells: Vec<String> = [Some(&n), Some(&d), Some(&loss), flops.as_ref()].into_iter().flatten().filter_map(|c| c.bad_cell(i)).collect();
        if cells.is_empty() {
            keep.push(i);
        } else {
            problems.push(format!("{}: row {}: {} is not a positive number", path.display(), i + 2, cells.join(", ")));
        }
    }
    if !problems.is_empty() && !columns.skip_bad_rows {
        return Err(BadInput(format!("{} row(s) of {} cannot be fitted (--skip-bad-rows leaves them out):\n{}", problems.len(), path.display(), listing(&problems))).into());
    }
    let points: Vec<Point> = keep
        .into_iter()
        .map(|i| Point {
            id: format!("row {}", i + 2),
            group: groups[i].clone(),
            status: "done".into(),
            n: n.values[i],
            d: d.values[i],
            loss: loss.values[i],
            flops: flops.as_ref().map(|c| c.values[i]),
            lr: lr.as_ref().map(|v| v[i]),
            batch_tokens: batch.as_ref().map(|v| v[i]),
            // Rows of one group at the same N, D, LR and batch are repeated measurements (seeds) of
            // one configuration, as a sweep's replicates are.
            config: Some(format!("{}|{}|{}|{:?}|{:?}", groups[i], n.values[i], d.values[i], lr.as_ref().map(|v| v[i]), batch.as_ref().map(|v| v[i]))),
            trunk: trunks.as_ref().map(|t| t[i].clone()).filter(|t| !t.is_empty()),
            ..Default::default()
        })
        .collect();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "table".into());
    let budgets = budgets_around(points.iter().map(|p| p.flops.unwrap_or(6.0 * p.n * p.d)));
    let out = opts.out.clone().unwrap_or_else(|| PathBuf::from("fits").join(format!("{name}.json")));
    write_fit(&name, &path.display().to_string(), &points, opts, &n_col, &budgets, out, problems)
}

/// A numeric column of a user's table.
struct Column {
    name: String,
    values: Vec<f64>,
    /// The cells as written (row numbers as a spreadsheet shows them: the header is row 1).
    text: Vec<String>,
}

impl Column {
    fn bad_cell(&self, i: usize) -> Option<String> {
        let v = self.values[i];
        (!(v.is_finite() && v > 0.0)).then(|| format!("`{}` = {}", self.name, if self.text[i].is_empty() { v.to_string() } else { format!("{:?}", self.text[i]) }))
    }
}

/// The first 20 problems, indented, and how many more there are.
fn listing(problems: &[String]) -> String {
    let mut listing = problems.iter().take(20).map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n");
    if problems.len() > 20 {
        listing += &format!("\n  … and {} more", problems.len() - 20);
    }
    listing
}

#[allow(clippy::too_many_arguments)]
fn write_fit(name: &str, source: &str, points: &[Point], opts: &Options, n_col: &str, budgets: &[f64], out: PathBuf, left_out: Vec<String>) -> Result<Fitted> {
    let trust_factor = opts.fit.trust_factor;
    if !(trust_factor.is_finite() && trust_factor >= 1.0) {
        return Err(BadInput(format!("--trust-factor {trust_factor}: must be a number ≥ 1")).into());
    }
    let fit_opts = FitOptions { n_col: n_col.to_string(), budgets: budgets.to_vec(), ..opts.fit.clone() };
    let fit = codescale_fit::fit_points(name, source, points, &fit_opts);
    codescale_core::atomic::write_json(&out, &fit)?;
    Ok(Fitted { fit, path: out, left_out })
}
