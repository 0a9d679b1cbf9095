//! Stage 3, `codescale fit`: scaling laws fitted to a sweep's results, or to a table of your
//! own, written as a fit file. This module turns a sweep's rows or a table's cells into fit
//! points (with their groups, N column and compute budgets); [`codescale_fit`] fits them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codescale_core::{BadInput, Status};
use codescale_fit::curve::CurveTrial;
pub use codescale_fit::forms::Form;
pub use codescale_fit::predict::{render as render_predictions, Prediction};
use codescale_fit::results::{budgets_around, points_from_rows};
pub use codescale_fit::results::{LOSS_COLUMNS, N_COLUMNS};
pub use codescale_fit::select::LawChoice;
pub use codescale_fit::table::law_summary;
pub use codescale_fit::{render_table, FitFile, FitOptions, GroupFit, Point};

/// How to fit, whatever the points come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// The column N comes from (default `n_params`; for a sweep, one of [`N_COLUMNS`]).
    pub n_col: Option<String>,
    /// The loss to fit: for a sweep one of [`LOSS_COLUMNS`] (default `val_loss`; `val_fim_loss`
    /// is the infilling loss of its fill-in-the-middle trials), for a table a column (default
    /// `loss`).
    pub loss_col: Option<String>,
    /// The fitter's own options (bootstrap, seed, Huber threshold, weighting, trust range). Its
    /// `n_col` is set from the field above and its `budgets` from the points' compute.
    pub fit: FitOptions,
    /// The fit file to write (default [`crate::paths::fit_file`] for a sweep,
    /// `fits/<table's stem>.json` for a table).
    pub out: Option<PathBuf>,
}

/// Which columns of a table of your own hold what (for [`fit_table`]). Only these columns (and
/// N's, and the optional `lr`, `batch_tokens` and `trunk` when present) are read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// D in tokens (default `tokens`; or give `c_col` and D is C/6N).
    pub d_col: Option<String>,
    /// Compute in FLOPs.
    pub c_col: Option<String>,
    /// Columns whose values together split the table into groups fitted apart (default: one
    /// group, `all`); several are joined with `|`.
    pub group_cols: Vec<String>,
    /// `fit` rows are fitted, `target` rows are held out and predicted (as a sweep's
    /// `[targets]`); any other value is bad input unless it is one of `ignore_roles`.
    pub role_col: Option<String>,
    /// Role values whose rows are left out (for example `extra`).
    pub ignore_roles: Vec<String>,
    /// `true` marks a run's final point; other rows are intermediate checkpoints, kept apart
    /// and never fitted as finished runs.
    pub final_col: Option<String>,
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
        (!self.left_out.is_empty())
            .then(|| format!("left out {} row(s):\n{}", self.left_out.len(), listing(&self.left_out)))
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
    anyhow::ensure!(
        N_COLUMNS.contains(&n_col.as_str()),
        BadInput(format!("--n-col {n_col}: a sweep has {}", N_COLUMNS.join(", ")))
    );
    let loss_col = opts.loss_col.clone().unwrap_or_else(|| "val_loss".into());
    anyhow::ensure!(
        LOSS_COLUMNS.contains(&loss_col.as_str()),
        BadInput(format!("--loss-col {loss_col}: a sweep has {}", LOSS_COLUMNS.join(", ")))
    );
    let points = points_from_rows(&crate::sweep::results(sweep_dir)?, &n_col, &loss_col);
    anyhow::ensure!(
        !points.is_empty() || loss_col == "val_loss",
        BadInput(format!("--loss-col {loss_col}: no trial of {} trains with `fim_rate` above 0", sweep_dir.display()))
    );
    let budgets = budgets_around(points.iter().filter(|p| p.status == Status::Done).filter_map(|p| p.flops));
    let out = opts.out.clone().unwrap_or_else(|| match loss_col.as_str() {
        "val_loss" => crate::paths::fit_file(sweep_dir),
        other => crate::paths::fit_file_by(sweep_dir, other),
    });
    let source = sweep_dir.join(codescale_sweep::runs::RESULTS_FILE).display().to_string();
    let fit_opts = fit_options(opts, &n_col, &loss_col, &budgets)?;
    let mut fit = codescale_fit::fit_points(&name, &source, &points, &fit_opts);
    if fit_opts.curves {
        codescale_fit::curve::add_to(&mut fit, &curve_trials(sweep_dir, &points, &loss_col)?, &fit_opts);
    }
    save(fit, out)
}

/// Each finished trial's curve of `loss_col` (`val_loss` or `val_fim_loss`) with its config (its
/// schedule) and fit point, for the whole-curve law. A curve that cannot be read leaves its
/// trial out of that law only.
pub fn curve_trials(sweep_dir: &Path, points: &[Point], loss_col: &str) -> Result<Vec<CurveTrial>> {
    let loss_of = |p: &codescale_core::CurvePoint| if loss_col == "val_fim_loss" { p.val_fim_loss } else { p.val_loss };
    let dir = codescale_sweep::runs::SweepDir::open(sweep_dir)?;
    let by_id: std::collections::HashMap<&str, &Point> = points.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut out = vec![];
    for record in dir.records()? {
        let Some(&point) = by_id.get(record.id.as_str()).filter(|p| p.status == Status::Done) else { continue };
        let evals = if point.target {
            vec![]
        } else {
            let path = dir.trial_dir(&record.id).join(codescale_core::record::CURVE_FILE);
            match codescale_table::read_rows::<codescale_core::CurvePoint>(&path) {
                Ok(curve) => curve.iter().filter_map(|p| loss_of(p).map(|l| (p.step, l))).collect(),
                Err(_) => continue,
            }
        };
        out.push(CurveTrial { point: point.clone(), config: record.config, evals });
    }
    Ok(out)
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
    use codescale_table::user::{column_names, f64_column, read_columns, str_column};
    let bad = |e: anyhow::Error| -> anyhow::Error { BadInput(format!("{}: {e:#}", path.display())).into() };
    let header = column_names(path).map_err(bad)?;
    let col = |name: &Option<String>, default: &str| name.clone().unwrap_or_else(|| default.to_string());
    let n_col = col(&opts.n_col, "n_params");
    let loss_col = col(&opts.loss_col, "loss");
    let d_col = match (&columns.d_col, &columns.c_col) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(_)) => None,
        (None, None) if header.iter().any(|h| h == "tokens") => Some("tokens".to_string()),
        (None, None) => {
            return Err(BadInput(format!(
                "{}: no column `tokens`; give --d-col or --c-col (columns: {})",
                path.display(),
                header.join(", ")
            ))
            .into())
        }
    };
    // Optional columns a sweep's table carries: read when present, never required.
    let optional: Vec<String> = ["lr", "batch_tokens", "trunk"]
        .iter()
        .filter(|c| header.iter().any(|h| h == *c))
        .map(|c| c.to_string())
        .collect();
    let mut wanted: Vec<String> = vec![n_col.clone(), loss_col.clone()];
    wanted.extend(d_col.iter().cloned());
    wanted.extend(columns.c_col.iter().cloned());
    wanted.extend(columns.group_cols.iter().cloned());
    wanted.extend(columns.role_col.iter().cloned());
    wanted.extend(columns.final_col.iter().cloned());
    wanted.extend(optional.iter().cloned());
    let df = read_columns(path, &wanted).map_err(bad)?;
    if df.height() == 0 {
        return Err(BadInput(format!("{}: the table has a header and no rows: nothing to fit", path.display())).into());
    }
    // A numeric column: its name, its values, and its cells as written (to quote a bad one).
    let numeric = |name: &str| -> Result<Column> {
        Ok(Column {
            name: name.to_string(),
            values: f64_column(&df, name).map_err(bad)?,
            text: str_column(&df, name).map_err(bad)?,
        })
    };
    let n = numeric(&n_col)?;
    let loss = numeric(&loss_col)?;
    let flops = columns.c_col.as_deref().map(numeric).transpose()?;
    let d = match (&d_col, &flops) {
        (Some(d), _) => numeric(d)?,
        (None, Some(c)) => Column {
            name: "C/6N".into(),
            values: c.values.iter().zip(&n.values).map(|(c, n)| c / (6.0 * n)).collect(),
            text: vec![String::new(); c.values.len()],
        },
        (None, None) => unreachable!("D comes from a column or from C"),
    };
    let rows = n.values.len();
    let groups: Vec<String> = if columns.group_cols.is_empty() {
        vec!["all".to_string(); rows]
    } else {
        let cols: Vec<Vec<String>> =
            columns.group_cols.iter().map(|g| str_column(&df, g).map_err(bad)).collect::<Result<_>>()?;
        (0..rows).map(|i| cols.iter().map(|c| c[i].as_str()).collect::<Vec<_>>().join("|")).collect()
    };
    // Per row: Some(is a target), or None for a role left out.
    let roles: Option<Vec<Option<bool>>> = match &columns.role_col {
        Some(r) => {
            let cells = str_column(&df, r).map_err(bad)?;
            let mut target = Vec::with_capacity(rows);
            for (i, cell) in cells.iter().enumerate() {
                match cell.trim() {
                    "fit" => target.push(Some(false)),
                    "target" => target.push(Some(true)),
                    other if columns.ignore_roles.iter().any(|x| x == other) => target.push(None),
                    other => {
                        return Err(BadInput(format!(
                        "{}: row {}: `{r}` = {other:?}: a role is `fit` or `target` (or one given to --ignore-role)",
                        path.display(),
                        i + 2
                    ))
                        .into())
                    }
                }
            }
            Some(target)
        }
        None => None,
    };
    let finals: Option<Vec<bool>> = match &columns.final_col {
        Some(f) => {
            let cells = str_column(&df, f).map_err(bad)?;
            let mut out = Vec::with_capacity(rows);
            for (i, cell) in cells.iter().enumerate() {
                match cell.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" => out.push(true),
                    "false" | "0" => out.push(false),
                    other => {
                        return Err(BadInput(format!(
                            "{}: row {}: `{f}` = {other:?}: true or false",
                            path.display(),
                            i + 2
                        ))
                        .into())
                    }
                }
            }
            Some(out)
        }
        None => None,
    };
    let has = |name: &str| optional.iter().any(|c| c == name);
    let (lr, batch) = (
        if has("lr") { Some(f64_column(&df, "lr").map_err(bad)?) } else { None },
        if has("batch_tokens") { Some(f64_column(&df, "batch_tokens").map_err(bad)?) } else { None },
    );
    // Rows that name one trunk are cooldown branches of it: the additivity check blocks on it.
    let trunks = if has("trunk") { Some(str_column(&df, "trunk").map_err(bad)?) } else { None };

    // A table is the user's own data: a cell that is not a positive number is a mistake to point
    // at (file, row, column), not a point to drop quietly.
    let mut problems = Vec::new();
    let mut keep = Vec::new();
    for i in (0..rows).filter(|&i| roles.as_ref().is_none_or(|r| r[i].is_some())) {
        let cells: Vec<String> = [Some(&n), Some(&d), Some(&loss), flops.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|c| c.bad_cell(i))
            .collect();
        if cells.is_empty() {
            keep.push(i);
        } else {
            problems.push(format!("{}: row {}: {} is not a positive number", path.display(), i + 2, cells.join(", ")));
        }
    }
    if !problems.is_empty() && !columns.skip_bad_rows {
        return Err(BadInput(format!(
            "{} row(s) of {} cannot be fitted (--skip-bad-rows leaves them out):\n{}",
            problems.len(),
            path.display(),
            listing(&problems)
        ))
        .into());
    }
    let is_target = |i: usize| roles.as_ref().is_some_and(|r| r[i] == Some(true));
    let intermediate = |i: usize| finals.as_ref().is_some_and(|f| !f[i]);
    // A target is predicted from its group's law: a group of targets alone has none.
    let mut lonely: Vec<&str> = keep
        .iter()
        .filter(|&&i| is_target(i))
        .map(|&i| groups[i].as_str())
        .filter(|g| !keep.iter().any(|&j| groups[j] == *g && !is_target(j) && !intermediate(j)))
        .collect();
    lonely.dedup();
    if let Some(g) = lonely.first() {
        return Err(BadInput(format!(
            "{}: group `{g}` has target rows and no fit rows: nothing to predict them from",
            path.display()
        ))
        .into());
    }
    let points: Vec<Point> = keep
        .into_iter()
        .map(|i| Point {
            id: format!("row {}", i + 2),
            group: groups[i].clone(),
            status: Status::Done,
            n: n.values[i],
            d: d.values[i],
            loss: loss.values[i],
            flops: flops.as_ref().map(|c| c.values[i]),
            lr: lr.as_ref().map(|v| v[i]),
            batch_tokens: batch.as_ref().map(|v| v[i]),
            // Rows of one group at the same N, D, LR and batch are repeated measurements (seeds) of
            // one configuration, as a sweep's replicates are.
            config: Some(format!(
                "{}|{}|{}|{:?}|{:?}",
                groups[i],
                n.values[i],
                d.values[i],
                lr.as_ref().map(|v| v[i]),
                batch.as_ref().map(|v| v[i])
            )),
            trunk: trunks.as_ref().map(|t| t[i].clone()).filter(|t| !t.is_empty()),
            target: is_target(i),
            intermediate: intermediate(i),
            ..Default::default()
        })
        .collect();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "table".into());
    let budgets = budgets_around(points.iter().filter(|p| !p.target).map(|p| p.flops.unwrap_or(6.0 * p.n * p.d)));
    let out = opts.out.clone().unwrap_or_else(|| PathBuf::from("fits").join(format!("{name}.json")));
    let fit_opts = fit_options(opts, &n_col, &loss_col, &budgets)?;
    let fit = codescale_fit::fit_points(&name, &path.display().to_string(), &points, &fit_opts);
    // Checked before anything is written: a table none of whose groups gives a law (or not the
    // law asked for) is a question the data cannot answer.
    if let codescale_fit::select::LawChoice::Fixed(form) = fit_opts.law {
        if let Some(g) =
            fit.groups.iter().find(|g| g.law.is_none() && g.message.as_deref().is_some_and(|m| m.contains("--law")))
        {
            return Err(BadInput(format!(
                "{}: {} (--law {})",
                path.display(),
                g.message.clone().unwrap_or_default(),
                form.name()
            ))
            .into());
        }
    }
    if !fit.groups.iter().any(|g| g.law.is_some()) {
        let why: Vec<String> = fit.groups.iter().filter_map(|g| g.message.clone()).collect();
        return Err(
            BadInput(format!("{}: no group has enough points for a law:\n{}", path.display(), listing(&why))).into()
        );
    }
    Ok(Fitted { left_out: problems, ..save(fit, out)? })
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
        (!(v.is_finite() && v > 0.0)).then(|| {
            format!(
                "`{}` = {}",
                self.name,
                if self.text[i].is_empty() { v.to_string() } else { format!("{:?}", self.text[i]) }
            )
        })
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

/// The fitter's options for these points, or bad input.
fn fit_options(opts: &Options, n_col: &str, loss_col: &str, budgets: &[f64]) -> Result<FitOptions> {
    let trust_factor = opts.fit.trust_factor;
    if !(trust_factor.is_finite() && trust_factor >= 1.0) {
        return Err(BadInput(format!("--trust-factor {trust_factor}: must be a number ≥ 1")).into());
    }
    Ok(FitOptions {
        n_col: n_col.to_string(),
        loss_col: loss_col.to_string(),
        budgets: budgets.to_vec(),
        ..opts.fit.clone()
    })
}

fn save(fit: FitFile, out: PathBuf) -> Result<Fitted> {
    codescale_core::atomic::write_json(&out, &fit)?;
    Ok(Fitted { fit, path: out, left_out: Vec::new() })
}

/// "What loss will N parameters on D tokens reach?" from a fit file (a sweep's or a table's):
/// one answer per group with a law (or only `group`), each with its 95 % prediction interval
/// and whether (N, D) is an extrapolation. A group without a law answers with why.
///
/// ```
/// use codescale::fit;
///
/// let mut csv = String::from("n_params,tokens,loss\n");
/// for n in [1e5_f64, 3e5, 1e6, 3e6] {
///     for d in [1e8_f64, 3e8, 1e9] {
///         csv += &format!("{n},{d},{}\n", 1.7 + (3e4 / n).powf(0.34) + (2e7 / d).powf(0.28));
///     }
/// }
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("mine.csv"), csv)?;
/// let opts = fit::Options { fit: fit::FitOptions { bootstrap: 50, ..Default::default() }, out: Some(dir.path().join("mine.json")), ..Default::default() };
/// fit::fit_table(&dir.path().join("mine.csv"), &fit::Columns::default(), &opts)?;
/// let answers = fit::predict(&dir.path().join("mine.json"), 1e7, 1e10, None, 100.0)?;
/// let p = answers[0].as_ref().unwrap();
/// let truth = 1.7 + (3e4 / 1e7_f64).powf(0.34) + (2e7 / 1e10_f64).powf(0.28);
/// assert!((p.loss / truth - 1.0).abs() < 0.01 && p.extrapolated);
/// # anyhow::Ok(())
/// ```
pub fn predict(
    fit_path: &Path,
    n: f64,
    d: f64,
    group: Option<&str>,
    trust_factor: f64,
) -> Result<Vec<std::result::Result<Prediction, codescale_fit::Skipped>>> {
    let text = std::fs::read_to_string(fit_path).map_err(|e| BadInput(format!("{}: {e}", fit_path.display())))?;
    let fit: FitFile =
        serde_json::from_str(&text).map_err(|e| BadInput(format!("{}: not a fit file: {e}", fit_path.display())))?;
    codescale_fit::predict::predict(&fit, n, d, group, trust_factor)
        .map_err(|why| BadInput(format!("{}: {why}", fit_path.display())).into())
}
