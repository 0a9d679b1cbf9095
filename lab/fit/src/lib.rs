//! Scaling-law fitting. No burn, no polars: points in, `FitFile` out.
//!
//! [`fit_points`] fits every group (plus a pooled fit when asked): a law whose form is chosen by
//! out-of-sample error ([`select`], [`forms`]; Chinchilla's by Approach 3, [`approach3`]) with
//! bootstrap and prediction intervals ([`bootstrap`], [`predict`]), the compute-optimal
//! allocation it implies ([`allocation`]), IsoFLOP parabolas ([`isoflop`]), learning-rate and
//! batch-size laws ([`hyper`]) and an extrapolation check ([`extrapolate`]). [`render_table`]
//! prints the result.

pub mod additivity;
pub mod allocation;
pub mod approach3;
pub mod bootstrap;
pub mod curve;
pub mod extrapolate;
pub mod forms;
mod group;
pub mod hyper;
pub mod isoflop;
pub mod lr_rule;
pub mod predict;
pub mod results;
pub mod schema;
pub mod select;
pub mod table;
pub mod task;

pub use codescale_core::time::rfc3339_utc;
use codescale_core::Status;
pub use schema::*;
pub use table::render_table;

/// Why a step of the fit gave no result (too few sizes or splits, no convergence, a design
/// that is not what the step needs), in the words the fit file and the report record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Skipped(pub String);

/// A `predict` question the fit cannot answer: N or D not a positive finite number, or a
/// group the fit does not have (bad input).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuestion(pub String);

/// One trial as the CLI reads it from results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    pub id: String,
    pub group: String,
    /// `done`, `failed`, `running`, …; only `done` points are fitted.
    pub status: Status,
    pub n: f64,
    pub d: f64,
    pub loss: f64,
    pub flops: Option<f64>,
    pub lr: Option<f64>,
    pub batch_tokens: Option<f64>,
    pub warmup_steps: Option<f64>,
    /// Replicates (the same configuration with other seeds) share this; a point without one is
    /// its own configuration.
    pub config: Option<String>,
    /// The WSD trunk a cooldown branch forked from: branches of one trunk share its noise.
    pub trunk: Option<String>,
    /// Standard error of `loss` from the evaluation (for weighting).
    pub loss_se: Option<f64>,
    /// The code task's metric ([`task::METRIC`]), fitted against the loss in a second step.
    pub task: Option<f64>,
    /// A held-out target: trained but never fitted; the law predicts it.
    pub target: bool,
    /// An intermediate checkpoint of a run, not its end: kept apart from final points (a
    /// checkpoint of a cosine run before its decay is not a shorter finished run).
    pub intermediate: bool,
}

impl Point {
    /// The configuration this point measures: its replicates share it, and a point without one is
    /// its own.
    pub fn config_key(&self) -> &str {
        self.config.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Bootstrap resamples (0 disables intervals).
    pub bootstrap: usize,
    pub seed: u64,
    /// Huber threshold on log loss; `None` matches it to the data's noise
    /// ([`approach3::fit_noise_matched`]). Chinchilla's 1e-3 is far below the 0.5–2 % scatter of
    /// small sweeps, which makes the fit a least-absolute-deviations one whose bootstrap intervals
    /// over-cover (99 % for a nominal 95 %, lab/fit/tests/coverage.rs).
    pub delta: Option<f64>,
    /// Budgets (FLOPs) for the allocation table; empty means 1e15 … 1e24 by decade.
    pub budgets: Vec<f64>,
    /// Which column gave N, recorded in the output.
    pub n_col: String,
    /// Which column gave the loss, recorded in the output.
    pub loss_col: String,
    pub confidence: f64,
    /// Worker threads; `None` uses rayon's global pool.
    pub threads: Option<usize>,
    /// Weight each point by its evaluation's precision, (median relative SE / its relative
    /// SE)², clamped to [0.1, 10]; points without a standard error weigh 1.
    pub weight_by_se: bool,
    /// Allocation headlines for budgets beyond this multiple of the largest fitted trial's
    /// compute are marked extrapolated.
    pub trust_factor: f64,
    /// Run the extrapolation checks (largest sizes held out, rolling): a refit each.
    pub checks: bool,
    /// The law's form: one by name, or chosen per group by out-of-sample error ([`select`]).
    pub law: select::LawChoice,
    /// Add a fit of every group's points together (per architecture). Off unless asked: groups
    /// are usually different things (languages, evaluation sets) whose pooled law means nothing.
    pub pool: bool,
    /// Fit the whole-curve law ([`curve`]) where the runs' curves are given (sweeps).
    pub curves: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            bootstrap: 1000,
            seed: 0,
            delta: None,
            budgets: allocation::default_budgets(),
            n_col: "n_params".into(),
            loss_col: "val_loss".into(),
            confidence: 0.95,
            threads: None,
            weight_by_se: false,
            trust_factor: 100.0,
            checks: true,
            law: select::LawChoice::Auto,
            pool: false,
            curves: true,
        }
    }
}

/// The fitter's version: bumped whenever the same points and options would fit differently, so
/// that no fit made by an older fitter is taken for a current one. 2: law forms chosen by
/// out-of-sample error. 3: the whole-curve law beside them. 4: L*(C) through each budget's
/// interpolated minimum. 5: `auto` chooses a form only with MIN_SPLITS_TO_CHOOSE rolling splits.
/// 6: the task metric's sigmoid of the loss ([`task`]). 7: Kaplan et al.'s own form, without E, among
/// the candidates. 8: `auto` never takes a form that could not be fitted to every point. 9: the
/// candidates' parameters and ties in the fit file, and the spread of tied forms at each target.
pub const FITTER_VERSION: u32 = 9;

impl FitOptions {
    /// blake3 of every option that changes the fit, and of [`FITTER_VERSION`]. Not the budgets,
    /// which follow from the points (and so from the input hash), nor the thread count.
    pub fn key(&self) -> String {
        let mut text = format!(
            "v{FITTER_VERSION}|bootstrap {}|seed {}|delta {:?}|n {}|confidence {}|weight_by_se {}|trust {}|checks {}|law {}|pool {}|curves {}",
            self.bootstrap,
            self.seed,
            self.delta.map(f64::to_bits),
            self.n_col,
            self.confidence.to_bits(),
            self.weight_by_se,
            self.trust_factor.to_bits(),
            self.checks,
            self.law.name(),
            self.pool,
            self.curves
        );
        // Only another loss than the causal one is spelled out, so earlier fits keep their keys.
        if self.loss_col != "val_loss" {
            text.push_str(&format!("|loss {}", self.loss_col));
        }
        blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
    }
}

/// Fits every group of `points`; `created` is the current UTC time.
pub fn fit_points(name: &str, source: &str, points: &[Point], opts: &FitOptions) -> FitFile {
    fit_points_at(name, source, points, opts, &rfc3339_utc(std::time::SystemTime::now()))
}

/// [`fit_points`] with a given `created` stamp, so that outputs can be compared byte for byte.
pub fn fit_points_at(name: &str, source: &str, points: &[Point], opts: &FitOptions, created: &str) -> FitFile {
    let run = || group::fit_all(points, opts);
    let (groups, excluded) = match opts.threads.map(|t| rayon::ThreadPoolBuilder::new().num_threads(t.max(1)).build()) {
        Some(Ok(pool)) => pool.install(run),
        _ => run(),
    };
    FitFile {
        name: name.into(),
        source: source.into(),
        n_col: opts.n_col.clone(),
        loss_col: opts.loss_col.clone(),
        created: created.into(),
        input_hash: results::input_hash(points),
        fit_key: opts.key(),
        groups,
        excluded,
    }
}

/// The distinct values, sorted (sizes, budgets, …).
pub fn distinct(xs: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}
