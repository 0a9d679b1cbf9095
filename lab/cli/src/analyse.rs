//! `fit` and `report`: they read what the sweep wrote and never train.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::{BadInput, CurvePoint, ResultRow};
use codescale_fit::results::{budgets_around, input_hash, points_from_rows, N_COLUMNS};
use codescale_fit::{Estimate, FitFile, FitOptions, Point};
use codescale_sweep::runs::RESULTS_FILE;
use codescale_sweep::SweepDir;

#[derive(clap::Args, Clone)]
pub struct FitArgs {
    /// A sweep's runs folder (`runs/<sweep>`).
    pub sweep_dir: Option<PathBuf>,
    /// Fit a table of your own instead (CSV or Parquet).
    #[arg(long, conflicts_with = "sweep_dir")]
    pub table: Option<PathBuf>,
    /// Column with N (for sweeps: `n_params`, or `n_params_active` for MoE).
    #[arg(long)]
    pub n_col: Option<String>,
    /// Column with D in tokens (or give --c-col and D is C/6N).
    #[arg(long)]
    pub d_col: Option<String>,
    /// Column with compute in FLOPs.
    #[arg(long)]
    pub c_col: Option<String>,
    /// Column with the loss to fit (with --table; default `loss`).
    #[arg(long)]
    pub loss_col: Option<String>,
    /// Column whose values split the table into groups fitted apart (with --table).
    #[arg(long)]
    pub group_col: Option<String>,
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap's resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (default fits/<name>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the fit as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// With --table: leave out rows whose N, D, loss or compute is not a positive number
    /// (listing them) instead of refusing the table.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Weight each point by the precision of its evaluation (its validation loss's standard
    /// error).
    #[arg(long)]
    pub weight_by_se: bool,
    /// Allocations for budgets beyond this multiple of the largest fitted trial's compute are
    /// marked extrapolated.
    #[arg(long, default_value_t = 100.0)]
    pub trust_factor: f64,
}

impl FitArgs {
    pub fn for_sweep(dir: PathBuf) -> FitArgs {
        FitArgs { sweep_dir: Some(dir), table: None, n_col: None, d_col: None, c_col: None, loss_col: None, group_col: None, bootstrap: 1000, seed: 0, out: None, json: false, skip_bad_rows: false, weight_by_se: false, trust_factor: 100.0 }
    }
}

pub fn fit(args: &FitArgs, quiet: bool) -> Result<FitFile> {
    match (&args.sweep_dir, &args.table) {
        (Some(dir), None) => fit_sweep(dir, args, quiet),
        (None, Some(table)) => fit_table(table, args),
        _ => Err(BadInput("give a sweep folder (runs/<sweep>) or --table FILE".into()).into()),
    }
}


/// The rows of a sweep, from its trial records as they are now (`results.parquet` is
/// rewritten on the way, so it never lags behind a trial that finished since).
pub fn sweep_rows(dir: &Path) -> Result<Vec<ResultRow>> {
    SweepDir::open(dir)?.write_results()
}

pub fn fit_sweep(dir: &Path, args: &FitArgs, quiet: bool) -> Result<FitFile> {
    let name = SweepDir::open(dir)?.name();
    let n_col = args.n_col.clone().unwrap_or_else(|| "n_params".into());
    anyhow::ensure!(N_COLUMNS.contains(&n_col.as_str()), BadInput(format!("--n-col {n_col}: a sweep has {}", N_COLUMNS.join(", "))));
    let points = points_from_rows(&sweep_rows(dir)?, &n_col);
    let budgets = budgets_around(points.iter().filter(|p| p.status == "done").filter_map(|p| p.flops));
    let out = args.out.clone().unwrap_or_else(|| sibling_of_runs(dir, "fits").join(format!("{name}.json")));
    write_fit(&name, &dir.join(RESULTS_FILE).display().to_string(), &points, args, &n_col, &budgets, &out, quiet)
}

/// `<root>/<what>` for a sweep folder `<root>/<runs>/<sweep>`: fits and reports sit beside the
/// runs folder they come from, wherever the command runs.
pub fn sibling_of_runs(sweep_dir: &Path, what: &str) -> PathBuf {
    let runs_root = sweep_dir.parent().unwrap_or(Path::new(""));
    runs_root.parent().unwrap_or(Path::new("")).join(what)
}

fn fit_table(path: &Path, args: &FitArgs) -> Result<FitFile> {
    use codescale_table::user::{f64_column, has_column, read_frame, str_column};
    let df = read_frame(path).map_err(|e| BadInput(format!("{e:#}")))?;
    let col = |name: &Option<String>, default: &str| name.clone().unwrap_or_else(|| default.to_string());
    let bad = |e: anyhow::Error| -> anyhow::Error { BadInput(format!("{}: {e:#}", path.display())).into() };
    let n_col = col(&args.n_col, "n_params");
    let loss_col = col(&args.loss_col, "loss");
    // A numeric column: its name, its values, and its cells as written (to quote a bad one).
    let numeric = |name: &str| -> Result<Column> { Ok(Column { name: name.to_string(), values: f64_column(&df, name).map_err(bad)?, text: str_column(&df, name).map_err(bad)? }) };
    let n = numeric(&n_col)?;
    let loss = numeric(&loss_col)?;
    let flops = args.c_col.as_deref().map(numeric).transpose()?;
    let d = match (&args.d_col, &flops) {
        (Some(d), _) => numeric(d)?,
        (None, Some(c)) => Column { name: "C/6N".into(), values: c.values.iter().zip(&n.values).map(|(c, n)| c / (6.0 * n)).collect(), text: vec![String::new(); c.values.len()] },
        (None, None) => numeric("tokens").map_err(|_| BadInput(format!("{}: give --d-col or --c-col", path.display())))?,
    };
    let groups = match &args.group_col {
        Some(g) => str_column(&df, g).map_err(bad)?,
        None => vec!["all".to_string(); n.values.len()],
    };
    let optional = |name: &str| if has_column(&df, name) { f64_column(&df, name).ok() } else { None };
    let (lr, batch) = (optional("lr"), optional("batch_tokens"));

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
    if !problems.is_empty() {
        let mut listing = problems.iter().take(20).map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n");
        if problems.len() > 20 {
            listing += &format!("\n  … and {} more", problems.len() - 20);
        }
        if !args.skip_bad_rows {
            return Err(BadInput(format!("{} row(s) of {} cannot be fitted (--skip-bad-rows leaves them out):\n{listing}", problems.len(), path.display())).into());
        }
        eprintln!("left out {} row(s):\n{listing}", problems.len());
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
            ..Default::default()
        })
        .collect();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "table".into());
    let budgets = budgets_around(points.iter().map(|p| p.flops.unwrap_or(6.0 * p.n * p.d)));
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("fits").join(format!("{name}.json")));
    write_fit(&name, &path.display().to_string(), &points, args, &n_col, &budgets, &out, false)
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

#[allow(clippy::too_many_arguments)]
fn write_fit(name: &str, source: &str, points: &[Point], args: &FitArgs, n_col: &str, budgets: &[f64], out: &Path, quiet: bool) -> Result<FitFile> {
    if !(args.trust_factor.is_finite() && args.trust_factor >= 1.0) {
        return Err(BadInput(format!("--trust-factor {}: must be a number ≥ 1", args.trust_factor)).into());
    }
    let opts = FitOptions { bootstrap: args.bootstrap, seed: args.seed, n_col: n_col.to_string(), budgets: budgets.to_vec(), weight_by_se: args.weight_by_se, trust_factor: args.trust_factor, ..Default::default() };
    let fit = codescale_fit::fit_points(name, source, points, &opts);
    codescale_core::atomic::write_json(out, &fit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fit)?);
    } else if !quiet {
        println!("{}", codescale_fit::render_table(&fit));
        println!("fit: {}", out.display());
    }
    Ok(fit)
}

pub fn interval(e: &Estimate) -> String {
    match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!("{lo:.3}–{hi:.3}"),
        _ => "no interval".into(),
    }
}


/// Where a report was written, printed as one line: `report: <html> (<n> figures)`.
pub struct Written {
    pub html: PathBuf,
    pub figures: usize,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "report: {} ({} figures)", self.html.display(), self.figures)
    }
}

pub fn report(dir: &Path, out: Option<PathBuf>) -> Result<Written> {
    let sweep = SweepDir::open(dir)?;
    let name = sweep.name();
    let rows = sweep_rows(dir)?;
    let mut notes = Vec::new();
    // The fit on disk is used only if it was made from exactly these results.
    let fit_file = sibling_of_runs(dir, "fits").join(format!("{name}.json"));
    let on_disk = fit_file.exists().then(|| codescale_core::atomic::read_json::<FitFile>(&fit_file)).and_then(Result::ok);
    let current = on_disk.filter(|f| N_COLUMNS.contains(&f.n_col.as_str()) && f.input_hash == input_hash(&points_from_rows(&rows, &f.n_col)));
    let fit = match current {
        Some(fit) => fit,
        None => {
            notes.push(if fit_file.exists() { format!("{} was made from other results; fitted again", fit_file.display()) } else { format!("{} was missing; fitted now", fit_file.display()) });
            fit_sweep(dir, &FitArgs::for_sweep(dir.to_path_buf()), true)?
        }
    };
    let mut curves = Vec::new();
    let mut provenance = Vec::new();
    for record in sweep.records()? {
        let curve_path = sweep.trial_dir(&record.id).join(codescale_core::record::CURVE_FILE);
        if curve_path.exists() {
            match codescale_table::read_rows::<CurvePoint>(&curve_path) {
                Ok(curve) => curves.push((record.id.clone(), curve)),
                Err(e) => notes.push(format!("the curve of trial {} is unreadable ({e:#}); left out", record.id)),
            }
        }
        if let Some(why) = &record.stale {
            notes.push(format!("trial {} is a stale result kept with --reuse-stale: {why}", record.id));
        }
        if !record.provenance.started.is_empty() {
            provenance.push((record.id.clone(), record.provenance.clone()));
        }
    }
    let sweep_toml = std::fs::read_to_string(dir.join(codescale_sweep::runs::SWEEP_FILE)).ok();
    let input = codescale_report::ReportInput { sweep: name.clone(), results: rows, curves, fit: Some(fit), provenance, sweep_toml, notes };
    let out_dir = out.unwrap_or_else(|| sibling_of_runs(dir, "reports").join(&name));
    let output = codescale_report::write_report(&input, &out_dir)?;
    Ok(Written { html: output.html, figures: output.figures.len() })
}
