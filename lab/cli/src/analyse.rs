//! `fit` and `report`: they read what the sweep wrote and never train.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codescale_core::{BadInput, CurvePoint, ResultRow};
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
    #[arg(long)]
    pub loss_col: Option<String>,
    #[arg(long)]
    pub group_col: Option<String>,
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (default fits/<name>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the fit as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl FitArgs {
    pub fn for_sweep(dir: PathBuf) -> FitArgs {
        FitArgs { sweep_dir: Some(dir), table: None, n_col: None, d_col: None, c_col: None, loss_col: None, group_col: None, bootstrap: 1000, seed: 0, out: None, json: false }
    }
}

pub fn fit(args: &FitArgs, quiet: bool) -> Result<FitFile> {
    match (&args.sweep_dir, &args.table) {
        (Some(dir), None) => fit_sweep(dir, args, quiet),
        (None, Some(table)) => fit_table(table, args),
        _ => Err(BadInput("give a sweep folder (runs/<sweep>) or --table FILE".into()).into()),
    }
}

/// The rows of a sweep: `results.parquet`, written from the trial records if missing.
pub fn sweep_rows(dir: &Path) -> Result<Vec<ResultRow>> {
    let sweep = SweepDir::open(dir)?;
    let path = dir.join(RESULTS_FILE);
    if path.exists() {
        codescale_table::read_rows(&path)
    } else {
        sweep.write_results()
    }
}

pub fn fit_sweep(dir: &Path, args: &FitArgs, quiet: bool) -> Result<FitFile> {
    let rows = sweep_rows(dir)?;
    let name = SweepDir::open(dir)?.name();
    let n_col = args.n_col.clone().unwrap_or_else(|| "n_params".into());
    anyhow::ensure!(["n_params", "n_params_active", "n_params_total"].contains(&n_col.as_str()), BadInput(format!("--n-col {n_col}: a sweep has n_params, n_params_active and n_params_total")));
    // Dense and MoE follow different laws: fit them apart when a sweep has both.
    let mixed = rows.iter().any(|r| r.arch == "moe") && rows.iter().any(|r| r.arch == "dense");
    let points: Vec<Point> = rows
        .iter()
        .map(|r| Point {
            id: r.trial_id.clone(),
            group: if mixed { format!("{}/{}", r.language, r.arch) } else { r.language.clone() },
            status: r.status.clone(),
            n: match n_col.as_str() {
                "n_params_active" => r.n_params_active,
                "n_params_total" => r.n_params_total,
                _ => r.n_params,
            },
            d: r.tokens,
            loss: r.val_loss.unwrap_or(f64::NAN),
            flops: Some(r.flops),
            lr: Some(r.lr),
            batch_tokens: Some((r.batch_size * r.seq_len) as f64),
            warmup_steps: Some(r.warmup_steps as f64),
        })
        .collect();
    let budgets = budgets_around(rows.iter().filter(|r| r.status == "done").map(|r| r.flops));
    write_fit(&name, &dir.join(RESULTS_FILE).display().to_string(), &points, args, &n_col, &budgets, quiet)
}

/// Compute budgets to plan for: every decade from the sweep's smallest trial to a hundred
/// times its largest, so the allocation speaks to the scale the sweep measured.
fn budgets_around(flops: impl Iterator<Item = f64>) -> Vec<f64> {
    let (lo, hi) = flops.filter(|f| f.is_finite() && *f > 0.0).fold((f64::INFINITY, 0f64), |(lo, hi), f| (lo.min(f), hi.max(f)));
    if hi <= 0.0 {
        return Vec::new();
    }
    (lo.log10().floor() as i32..=hi.log10().ceil() as i32 + 2).map(|e| 10f64.powi(e)).collect()
}

fn fit_table(path: &Path, args: &FitArgs) -> Result<FitFile> {
    use codescale_table::user::{f64_column, has_column, read_frame, str_column};
    let df = read_frame(path).map_err(|e| BadInput(format!("{e:#}")))?;
    let col = |name: &Option<String>, default: &str| name.clone().unwrap_or_else(|| default.to_string());
    let bad = |e: anyhow::Error| -> anyhow::Error { BadInput(format!("{}: {e:#}", path.display())).into() };
    let n_col = col(&args.n_col, "n_params");
    let n = f64_column(&df, &n_col).map_err(bad)?;
    let loss = f64_column(&df, &col(&args.loss_col, "loss")).map_err(bad)?;
    let flops = match &args.c_col {
        Some(c) => Some(f64_column(&df, c).map_err(bad)?),
        None => None,
    };
    let d = match (&args.d_col, &flops) {
        (Some(d), _) => f64_column(&df, d).map_err(bad)?,
        (None, Some(c)) => c.iter().zip(&n).map(|(c, n)| c / (6.0 * n)).collect(),
        (None, None) => f64_column(&df, "tokens").map_err(|_| BadInput(format!("{}: give --d-col or --c-col", path.display())))?,
    };
    let groups = match &args.group_col {
        Some(g) => str_column(&df, g).map_err(bad)?,
        None => vec!["all".to_string(); n.len()],
    };
    let optional = |name: &str| if has_column(&df, name) { f64_column(&df, name).ok() } else { None };
    let (lr, batch) = (optional("lr"), optional("batch_tokens"));
    let points: Vec<Point> = (0..n.len())
        .map(|i| Point {
            id: format!("row {}", i + 1),
            group: groups[i].clone(),
            status: "done".into(),
            n: n[i],
            d: d[i],
            loss: loss[i],
            flops: flops.as_ref().map(|c| c[i]),
            lr: lr.as_ref().map(|v| v[i]),
            batch_tokens: batch.as_ref().map(|v| v[i]),
            warmup_steps: None,
        })
        .collect();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "table".into());
    let budgets = budgets_around(points.iter().map(|p| p.flops.unwrap_or(6.0 * p.n * p.d)));
    write_fit(&name, &path.display().to_string(), &points, args, &n_col, &budgets, false)
}

fn write_fit(name: &str, source: &str, points: &[Point], args: &FitArgs, n_col: &str, budgets: &[f64], quiet: bool) -> Result<FitFile> {
    let opts = FitOptions { bootstrap: args.bootstrap, seed: args.seed, n_col: n_col.to_string(), budgets: budgets.to_vec(), ..Default::default() };
    let fit = codescale_fit::fit_points(name, source, points, &opts);
    let out = args.out.clone().unwrap_or_else(|| fit_path(name));
    codescale_core::atomic::write_json(&out, &fit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fit)?);
    } else if !quiet {
        println!("{}", codescale_fit::render_table(&fit));
        println!("fit: {}", out.display());
    }
    Ok(fit)
}

pub fn fit_path(name: &str) -> PathBuf {
    PathBuf::from("fits").join(format!("{name}.json"))
}

pub fn interval(e: &Estimate) -> String {
    match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!("{lo:.3}–{hi:.3}"),
        _ => "no interval".into(),
    }
}

pub fn report(dir: &Path, out: Option<PathBuf>, quiet: bool) -> Result<PathBuf> {
    let sweep = SweepDir::open(dir)?;
    let name = sweep.name();
    let rows = sweep_rows(dir)?;
    let mut notes = Vec::new();
    let fit_file = fit_path(&name);
    let fit = if fit_file.exists() {
        Some(codescale_core::atomic::read_json::<FitFile>(&fit_file)?)
    } else {
        notes.push(format!("{} was missing; fitted now", fit_file.display()));
        Some(fit_sweep(dir, &FitArgs::for_sweep(dir.to_path_buf()), true)?)
    };
    let mut curves = Vec::new();
    let mut provenance = Vec::new();
    for record in sweep.records()? {
        let trial_dir = sweep.trial_dir(&record.id);
        let curve_path = trial_dir.join(codescale_core::record::CURVE_FILE);
        if curve_path.exists() {
            let curve: Vec<CurvePoint> = codescale_table::read_rows(&curve_path).with_context(|| format!("curve of trial {}", record.id))?;
            curves.push((record.id.clone(), curve));
        }
        if !record.provenance.started.is_empty() {
            provenance.push((record.id.clone(), record.provenance.clone()));
        }
    }
    let sweep_toml = std::fs::read_to_string(dir.join(codescale_sweep::runs::SWEEP_FILE)).ok();
    let input = codescale_report::ReportInput { sweep: name.clone(), results: rows, curves, fit, provenance, sweep_toml, notes };
    let out_dir = out.unwrap_or_else(|| PathBuf::from("reports").join(&name));
    let output = codescale_report::write_report(&input, &out_dir)?;
    if !quiet {
        eprintln!("{} figures", output.figures.len());
    }
    Ok(output.html)
}
