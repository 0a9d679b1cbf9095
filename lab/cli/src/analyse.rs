//! `fit`: its flags, and how a fit is shown. The fitting is `codescale::fit`.

use std::path::PathBuf;

use anyhow::Result;
use codescale::fit::{self, Fitted};
use codescale::BadInput;

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
    /// The loss to fit: for a sweep `val_loss` (default) or `val_fim_loss` (the infilling loss
    /// of its fill-in-the-middle trials, fitted to fits/<sweep>.val_fim_loss.json); for a
    /// table, a column (default `loss`).
    #[arg(long)]
    pub loss_col: Option<String>,
    /// Column whose values split the table into groups fitted apart (with --table; repeat it to
    /// group by several columns together).
    #[arg(long)]
    pub group_col: Vec<String>,
    /// Column of each row's role (with --table): `fit` rows are fitted, `target` rows are held
    /// out and predicted with a 95 % prediction interval; any other value is bad input.
    #[arg(long)]
    pub role_col: Option<String>,
    /// A role value whose rows are left out (with --role-col; repeatable), e.g. `extra`.
    #[arg(long, requires = "role_col")]
    pub ignore_role: Vec<String>,
    /// Column that is `true` on a run's final point (with --table): other rows are intermediate
    /// checkpoints, kept apart and never fitted as finished runs.
    #[arg(long)]
    pub final_col: Option<String>,
    /// The law's form: `auto` chooses per group by out-of-sample error (fit the smaller sizes,
    /// predict the larger); or one of chinchilla, kaplan, gadre, kaplan2020, data.
    #[arg(long, default_value = "auto", value_parser = law_choice)]
    pub law: LawArg,
    /// Also fit every group's points together (per architecture).
    #[arg(long)]
    pub pool: bool,
    /// Skip the whole-curve law (a sweep's every evaluation under its schedule), fitted beside
    /// the final-point law by default.
    #[arg(long)]
    pub no_curves: bool,
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = fit::FitOptions::default().bootstrap)]
    pub bootstrap: usize,
    /// Seed of the bootstrap's resampling.
    #[arg(long, default_value_t = fit::FitOptions::default().seed)]
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
    #[arg(long, default_value_t = fit::FitOptions::default().trust_factor)]
    pub trust_factor: f64,
    /// Huber threshold on log loss: `auto` matches it to the points' scatter (1.345 × their
    /// robust scale); a number fixes it (Chinchilla's is 1e-3).
    #[arg(long, default_value = "auto", value_parser = huber_delta)]
    pub huber_delta: HuberDelta,
}

/// `--law`.
#[derive(Debug, Clone, Copy)]
pub struct LawArg(codescale::fit::LawChoice);

/// A command-line value clap hands back with its usage message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArg(String);

fn law_choice(s: &str) -> Result<LawArg, BadArg> {
    codescale::fit::LawChoice::parse(s).map(LawArg).ok_or_else(|| {
        BadArg(format!("`{s}` is not a law form: auto, {}", codescale::fit::Form::ALL.map(|f| f.name()).join(", ")))
    })
}

/// `--huber-delta`: `None` for `auto`.
#[derive(Debug, Clone, Copy)]
pub struct HuberDelta(Option<f64>);

fn huber_delta(s: &str) -> Result<HuberDelta, BadArg> {
    match s {
        "auto" => Ok(HuberDelta(None)),
        _ => match s.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(HuberDelta(Some(x))),
            _ => Err(BadArg(format!("`{s}` is neither `auto` nor a positive number"))),
        },
    }
}

impl FitArgs {
    fn options(&self) -> fit::Options {
        let law = fit::FitOptions {
            bootstrap: self.bootstrap,
            seed: self.seed,
            weight_by_se: self.weight_by_se,
            trust_factor: self.trust_factor,
            delta: self.huber_delta.0,
            law: self.law.0,
            pool: self.pool,
            curves: !self.no_curves,
            ..Default::default()
        };
        fit::Options { n_col: self.n_col.clone(), loss_col: self.loss_col.clone(), fit: law, out: self.out.clone() }
    }

    fn columns(&self) -> fit::Columns {
        fit::Columns {
            d_col: self.d_col.clone(),
            c_col: self.c_col.clone(),
            group_cols: self.group_col.clone(),
            role_col: self.role_col.clone(),
            ignore_roles: self.ignore_role.clone(),
            final_col: self.final_col.clone(),
            skip_bad_rows: self.skip_bad_rows,
        }
    }
}

/// `codescale fit`: a sweep's fit is shown unless `quiet`; a table's always is.
pub fn fit(args: &FitArgs, quiet: bool) -> Result<()> {
    match (&args.sweep_dir, &args.table) {
        (Some(dir), None) => show(&fit::fit_sweep(dir, &args.options())?, args.json, quiet),
        (None, Some(table)) => {
            let fitted = fit::fit_table(table, &args.columns(), &args.options())?;
            if let Some(note) = fitted.left_out_note() {
                eprintln!("{note}");
            }
            show(&fitted, args.json, false)
        }
        _ => Err(BadInput("give a sweep folder (runs/<sweep>) or --table FILE".into()).into()),
    }
}

/// The fit as JSON, or (unless `quiet`) as a table followed by the file it was written to.
pub fn show(fitted: &Fitted, json: bool, quiet: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&fitted.fit)?);
    } else if !quiet {
        println!("{}", fit::render_table(&fitted.fit));
        println!("fit: {}", fitted.path.display());
    }
    Ok(())
}

#[derive(clap::Args, Clone)]
pub struct PredictArgs {
    /// A fit file (`fits/<name>.json`, from a sweep or a table).
    pub fit: PathBuf,
    /// Parameters N (in the fit's N convention).
    #[arg(long, allow_negative_numbers = true)]
    pub n: f64,
    /// Training tokens D.
    #[arg(long, allow_negative_numbers = true)]
    pub d: f64,
    /// Only this group (default: every group with a law).
    #[arg(long)]
    pub group: Option<String>,
    /// Compute beyond this multiple of the largest fitted trial's is marked beyond the trust
    /// range.
    #[arg(long, default_value_t = fit::FitOptions::default().trust_factor)]
    pub trust_factor: f64,
    /// One JSON object per group (group, law, n, d, loss, lo, hi, extrapolated, …).
    #[arg(long)]
    pub json: bool,
}

/// `codescale predict`.
pub fn predict(args: &PredictArgs) -> Result<()> {
    let answers = fit::predict(&args.fit, args.n, args.d, args.group.as_deref(), args.trust_factor)?;
    if args.json {
        for a in &answers {
            match a {
                Ok(p) => println!("{}", serde_json::to_string(p)?),
                Err(why) => eprintln!("{why}"),
            }
        }
    } else {
        print!("{}", fit::render_predictions(&answers));
    }
    Ok(())
}
