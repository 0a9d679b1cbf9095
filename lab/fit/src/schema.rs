//! `fits/<name>.json`: what `codescale fit` writes and `codescale report` reads. Fields may be
//! added; renaming one breaks old fit files.

use serde::{Deserialize, Deserializer, Serialize};

/// JSON has no NaN or infinity: serde_json writes them as `null`. Reading `null` back as NaN
/// lets a fit of a degenerate group (an overflowing term, an undefined allocation) round-trip
/// instead of making the whole file unreadable.
fn nan() -> f64 {
    f64::NAN
}

fn one() -> usize {
    1
}

pub(crate) fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`f64_or_nan`] for every number of a list (a law's parameters: one that overflowed is
/// `null` in the file).
pub(crate) fn f64s_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// [`f64s_or_nan`] for a list of lists (bootstrap draws of a law's parameters).
pub(crate) fn f64_rows_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
    let rows = Vec::<Vec<Option<f64>>>::deserialize(d)?;
    Ok(rows.into_iter().map(|r| r.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()).collect())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitFile {
    /// Sweep or table name.
    pub name: String,
    /// Where the points came from (results.parquet or a user table).
    pub source: String,
    /// Which column gave N (`n_params`, `n_params_active`, …).
    pub n_col: String,
    /// Which column gave the loss (`val_loss`, `val_fim_loss`, or a table's column).
    #[serde(default = "val_loss")]
    pub loss_col: String,
    pub created: String,
    /// blake3 of the points the fit was made from ([`crate::results::input_hash`]): a report
    /// refits when the results it is given hash differently.
    #[serde(default)]
    pub input_hash: String,
    /// What else determines the fit: its options and the fitter's version
    /// ([`crate::FitOptions::key`]). A fit is reused only when both this and `input_hash` match.
    #[serde(default)]
    pub fit_key: String,
    pub groups: Vec<GroupFit>,
    /// Rows left out of every fit, with the reason (not done, NaN loss, …).
    pub excluded: Vec<Excluded>,
}

fn val_loss() -> String {
    "val_loss".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    pub id: String,
    pub group: String,
    pub reason: String,
}

/// A point estimate with its bootstrap percentile interval (95 % by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

impl Estimate {
    /// Whether `x` lies inside the interval (false without one).
    pub fn covers(&self, x: f64) -> bool {
        self.lo.is_some_and(|lo| lo <= x) && self.hi.is_some_and(|hi| x <= hi)
    }
    /// The interval is wider than the estimate: the data do not pin the quantity down.
    pub fn unidentified(&self) -> bool {
        matches!((self.lo, self.hi), (Some(lo), Some(hi)) if hi - lo > self.value.abs())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFit {
    /// The code task's metric as a sigmoid of the loss, with its targets' predicted metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<crate::task::TaskLaw>,
    /// Why there is no task law for a group whose trials measured the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_skipped: Option<String>,
    /// `python`, `python/moe`, or `pooled`.
    pub group: String,
    pub n_points: usize,
    /// Why there is no law for this group (e.g. "3 points, 5 needed").
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub law: Option<LawFit>,
    pub allocation: Option<Allocation>,
    pub isoflop: Option<IsoFlopFit>,
    pub hyper: Option<HyperLaws>,
    /// For a sweep of learning rates across sizes: the rule η_opt(N, D) to give a ladder.
    #[serde(default)]
    pub lr_rule: Option<crate::lr_rule::LrRuleFit>,
    pub extrapolation: Option<Extrapolation>,
    /// The rolling check: for each number k of smallest sizes, the law refitted on them alone
    /// predicting every larger size.
    #[serde(default)]
    pub rolling: Vec<Extrapolation>,
    /// Held-out targets (trained, never fitted): the law's prediction with its prediction
    /// interval, against the measured loss.
    #[serde(default)]
    pub targets: Vec<TargetCheck>,
    /// Points left out of the law (and the IsoFLOP fit) because a better configuration was
    /// trained at their (N, D); they still inform the hyperparameter laws.
    #[serde(default)]
    pub tuned_out: usize,
    /// The spread of each configuration measured more than once (replicates: other seeds).
    #[serde(default)]
    pub replicates: Vec<Replicates>,
    /// Whether the loss is additive in N and D at the fitted points, as the law assumes
    /// ([`crate::additivity`]); absent when the design cannot tell.
    #[serde(default)]
    pub additivity: Option<Additivity>,
    /// Compute of the largest fitted trial, in FLOPs: what "within the ladder" means.
    #[serde(default, deserialize_with = "f64_or_nan")]
    pub max_flops: f64,
    /// The points fitted, with the law's prediction, for plots and residuals.
    pub points: Vec<FitPoint>,
    /// Every law form tried on this group, with its out-of-sample error ([`crate::select`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<crate::select::Candidate>,
    /// Why the law's form and Huber threshold were chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub law_choice: Option<String>,
    /// Rows of this group that are intermediate checkpoints (not a run's final point): kept apart,
    /// never fitted as if they were finished runs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub intermediate: usize,
    /// Why the IsoFLOP analysis (Approach 2) did not run, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isoflop_skipped: Option<String>,
    /// The whole-curve law: every evaluation of every run under its schedule ([`crate::curve`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_law: Option<crate::curve::CurveLawFit>,
    /// Why there is no whole-curve law, for a sweep whose runs' curves were offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_law_skipped: Option<String>,
}

fn is_zero(x: &usize) -> bool {
    *x == 0
}

/// A held-out target against the law's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    pub id: String,
    #[serde(deserialize_with = "f64_or_nan")]
    pub n: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub d: f64,
    /// Its compute over the largest fitted trial's.
    #[serde(deserialize_with = "f64_or_nan")]
    pub compute_ratio: f64,
    /// The mean loss of its runs (replicates: other seeds).
    #[serde(deserialize_with = "f64_or_nan")]
    pub measured: f64,
    /// How many runs `measured` averages (1 in files written before replicates were averaged).
    #[serde(default = "one")]
    pub runs: usize,
    /// The prediction, with the prediction interval (parameter bootstrap plus residual noise).
    pub predicted: Estimate,
    /// measured / predicted − 1.
    #[serde(deserialize_with = "f64_or_nan")]
    pub error: f64,
    /// Whether the measured loss lies inside the prediction interval.
    pub covered: bool,
    /// The range the final-point law's candidate forms predict here, where the rolling splits
    /// cannot tell two or more of them apart ([`crate::select::form_spread`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_spread: Option<crate::select::FormSpread>,
}

/// Repeated measurements of one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replicates {
    #[serde(deserialize_with = "f64_or_nan")]
    pub n: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub d: f64,
    pub count: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean: f64,
    /// Sample standard deviation of the losses.
    #[serde(deserialize_with = "f64_or_nan")]
    pub sd: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub min: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub max: f64,
}

/// How far the points are from every surface f(N) + g(D), the law's form included.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Additivity {
    /// RMS over runs of the relative distance of each run's configuration (the mean of its
    /// seeds) from the best free additive surface (a value per size plus one per budget): the
    /// lack of fit, plus the noise that seed means still carry.
    #[serde(deserialize_with = "f64_or_nan")]
    pub misfit: f64,
    /// The free values of a level per configuration (and per block) minus those of the
    /// additive surface (and the blocks): configurations minus the surface's free levels.
    pub lack_of_fit_df: usize,
    /// Relative seed-to-seed spread of one run, pooled over replicated configurations; with
    /// trunks as blocks, the part of it a run does not share with its trunk.
    pub noise: Option<f64>,
    /// Runs minus configurations, minus the blocks' levels beyond their sizes'.
    pub noise_df: usize,
    /// WSD trunks taken as blocks: each shifts its cooldown branches alike, which is neither
    /// noise nor interaction. 0 for fit files from before blocks.
    #[serde(default)]
    pub trunks: usize,
    /// What `misfit` would be, on average, from seed noise alone on an additive loss.
    #[serde(default)]
    pub noise_floor: Option<f64>,
    /// Lack-of-fit F test: the chance of a misfit this large from noise alone, were the loss
    /// additive. Needs replicates.
    pub p_value: Option<f64>,
}

impl GroupFit {
    /// ln(measured / predicted) at each fitted point the law predicted: the residuals a
    /// prediction interval draws its noise from ([`crate::predict::interval`]).
    pub fn log_residuals(&self) -> Vec<f64> {
        self.points.iter().filter_map(|p| p.predicted.map(|pr| (p.loss / pr).ln())).filter(|r| r.is_finite()).collect()
    }
}

impl Additivity {
    /// The loss is significantly not additive (5 % level).
    pub fn rejected(&self) -> bool {
        self.p_value.is_some_and(|p| p < 0.05)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitPoint {
    #[serde(deserialize_with = "f64_or_nan")]
    pub n: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub d: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
    pub predicted: Option<f64>,
}

/// A fitted law. Its form is [`LawFit::form`] (Chinchilla's L(N, D) = E + A/N^α + B/D^β, also
/// written (N_c/N)^α_N + (D_c/D)^α_D + L_inf, in files from before forms were chosen). α_N, α_D,
/// L_inf, N_c and D_c mean the same in every form; `e`, `a`, `b`, `alpha` and `beta` are the
/// additive view: exact for the additive forms, and for Kaplan's the limits L(N, ∞) − E =
/// A/N^α and L(∞, D) − E = B/D^β (its interaction is in `params`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawFit {
    #[serde(default)]
    pub form: crate::forms::Form,
    /// The form's parameters in its own terms ([`crate::forms::Form::param_names`]); empty in
    /// files from before forms were chosen (the Chinchilla fields hold them).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "f64s_or_nan")]
    pub params: Vec<f64>,
    /// Bootstrap draws of `params` (at most [`BAND_SAMPLES`]), for forms other than Chinchilla,
    /// whose draws are `samples`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "f64_rows_or_nan")]
    pub param_samples: Vec<Vec<f64>>,
    pub e: Estimate,
    pub a: Estimate,
    pub b: Estimate,
    pub alpha: Estimate,
    pub beta: Estimate,
    pub l_inf: Estimate,
    pub alpha_n: Estimate,
    pub alpha_d: Estimate,
    pub n_c: Estimate,
    pub d_c: Estimate,
    /// Summed Huber objective at the optimum.
    #[serde(deserialize_with = "f64_or_nan")]
    pub huber: f64,
    /// The Huber threshold on log loss the law was fitted with (see
    /// [`crate::FitOptions::delta`]); NaN in files written before it was recorded.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub huber_delta: f64,
    /// Root-mean-square error of log loss.
    #[serde(deserialize_with = "f64_or_nan")]
    pub rmse_log: f64,
    pub starts: usize,
    pub converged_starts: usize,
    pub bootstrap_resamples: usize,
    /// Parameters the data cannot pin down: their interval is wider than the estimate (names as
    /// printed: `α_N`, `α_D`, `L_inf`).
    #[serde(default)]
    pub unidentified: Vec<String>,
    /// The first [`BAND_SAMPLES`] bootstrap laws, so that a reader (the notebooks) can draw the
    /// law's confidence band, pointwise percentiles of L(N, D) across them, without refitting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<crate::approach3::Law>,
}

/// Bootstrap laws kept in a fit file: enough for a smooth 95 % band, few enough to keep the
/// file small (about 20 kB per group).
pub const BAND_SAMPLES: usize = 200;

impl LawFit {
    /// The additive view at the point estimates (see the type's doc; exact unless the form is
    /// Kaplan's).
    pub fn law(&self) -> crate::approach3::Law {
        crate::approach3::Law {
            e: self.e.value,
            a: self.a.value,
            b: self.b.value,
            alpha: self.alpha.value,
            beta: self.beta.value,
        }
    }

    /// The form's parameters at their point estimates.
    pub fn form_params(&self) -> Vec<f64> {
        if self.params.is_empty() {
            let l = self.law();
            vec![l.e, l.a, l.b, l.alpha, l.beta]
        } else {
            self.params.clone()
        }
    }

    /// The stored bootstrap draws of the form's parameters.
    pub fn form_samples(&self) -> Vec<Vec<f64>> {
        if self.param_samples.is_empty() && self.form == crate::forms::Form::Chinchilla {
            self.samples.iter().map(|l| vec![l.e, l.a, l.b, l.alpha, l.beta]).collect()
        } else {
            self.param_samples.clone()
        }
    }

    /// L(N, D) at the point estimates, in the law's own form.
    pub fn predict(&self, n: f64, d: f64) -> f64 {
        self.form.predict(&self.form_params(), n, d)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// N_opt ∝ C^a, a = β/(α+β).
    pub a: Estimate,
    /// D_opt ∝ C^b, b = α/(α+β).
    pub b: Estimate,
    /// G = (αA/(βB))^(1/(α+β)).
    pub g: Estimate,
    pub budgets: Vec<BudgetPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetPlan {
    #[serde(deserialize_with = "f64_or_nan")]
    pub flops: f64,
    pub n_opt: Estimate,
    pub d_opt: Estimate,
    pub tokens_per_param: Estimate,
    pub loss: Estimate,
    /// Beyond the trust range (a stated multiple of the largest fitted trial's compute): an
    /// extrapolation, not a measurement-backed recommendation.
    #[serde(default)]
    pub extrapolated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoFlopFit {
    pub budgets: Vec<IsoFlopBudget>,
    pub a: Estimate,
    pub b: Estimate,
    /// The lowest loss reachable at each budget as a law of compute, L*(C) = E + A·C^−α, fitted
    /// through the budgets' lowest losses (Porian et al.'s loss law); absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_law: Option<ComputeLossLaw>,
}

/// L*(C) = E + A·C^−α through the lowest loss of each IsoFLOP budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeLossLaw {
    pub e: Estimate,
    pub a: Estimate,
    pub alpha: Estimate,
    /// [E, A, α] at the point estimates, and bootstrap draws of them (budgets' points resampled).
    #[serde(deserialize_with = "f64s_or_nan")]
    pub params: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "f64_rows_or_nan")]
    pub samples: Vec<Vec<f64>>,
    /// ln(lowest loss / law) of each fitted budget, for prediction intervals.
    #[serde(deserialize_with = "f64s_or_nan")]
    pub residuals: Vec<f64>,
}

impl ComputeLossLaw {
    /// L*(C) at the point estimates.
    pub fn predict(&self, flops: f64) -> f64 {
        crate::forms::Form::Data.predict(&self.params, 1.0, flops)
    }

    /// L*(C) with a 95 % prediction interval.
    pub fn predict_with_interval(&self, flops: f64, confidence: f64) -> Estimate {
        let preds: Vec<f64> = self.samples.iter().map(|p| crate::forms::Form::Data.predict(p, 1.0, flops)).collect();
        crate::predict::interval(self.predict(flops), &preds, &self.residuals, 3, confidence, flops.to_bits())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoFlopBudget {
    #[serde(deserialize_with = "f64_or_nan")]
    pub flops: f64,
    /// loss = c[0] + c[1]·x + c[2]·x², x = ln N.
    pub coeffs: [f64; 3],
    #[serde(deserialize_with = "f64_or_nan")]
    pub n_opt: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub d_opt: f64,
    pub points: Vec<FitPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperLaws {
    pub budgets: Vec<HyperBudget>,
    /// η_opt(C) = k·C^p.
    pub lr_law: Option<PowerLaw>,
    /// B_opt(C) = k·C^p, B in tokens.
    pub batch_law: Option<PowerLaw>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperBudget {
    #[serde(deserialize_with = "f64_or_nan")]
    pub flops: f64,
    pub best: HyperPoint,
    /// Every configuration within 0.25 % of the best loss.
    pub near_best: Vec<HyperPoint>,
    /// Every configuration at this budget, for heatmaps.
    pub all: Vec<HyperPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HyperPoint {
    #[serde(deserialize_with = "f64_or_nan")]
    pub lr: f64,
    /// Batch size in tokens.
    #[serde(deserialize_with = "f64_or_nan")]
    pub batch_tokens: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub warmup_steps: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerLaw {
    pub k: Estimate,
    pub p: Estimate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extrapolation {
    /// The model sizes left out of the refit.
    pub held_out_n: Vec<f64>,
    pub points: Vec<FitPoint>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_abs_rel_error: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_abs_rel_error: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_round_trip_as_nan() {
        let plan = BudgetPlan {
            flops: 1e18,
            n_opt: Estimate { value: f64::INFINITY, lo: None, hi: None },
            d_opt: Estimate { value: 1e9, lo: Some(1e8), hi: Some(1e10) },
            tokens_per_param: Estimate { value: f64::NAN, lo: None, hi: None },
            loss: Estimate { value: f64::NAN, lo: Some(2.0), hi: Some(3.0) },
            extrapolated: true,
        };
        let back: BudgetPlan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert!(back.loss.value.is_nan() && back.n_opt.value.is_nan() && back.tokens_per_param.value.is_nan());
        assert_eq!(back.d_opt, plan.d_opt);
        assert_eq!(back.loss.lo, Some(2.0));
    }

    /// A law fitted to a boundary can overflow a parameter (A = ∞ when α_N runs away on a tiny
    /// ladder); the file is still read back, the parameter as NaN.
    #[test]
    fn a_law_with_an_overflowed_parameter_round_trips() {
        let e = |v: f64| Estimate { value: v, lo: None, hi: None };
        let law = LawFit {
            form: crate::forms::Form::Kaplan,
            params: vec![1.0, f64::INFINITY, 13.4, 228.3, 0.14],
            param_samples: vec![vec![1.0, f64::NAN, 13.0, 200.0, 0.15]],
            e: e(1.0),
            a: e(f64::MAX),
            b: e(13.4),
            alpha: e(228.3),
            beta: e(0.14),
            l_inf: e(1.0),
            alpha_n: e(228.3),
            alpha_d: e(0.14),
            n_c: e(f64::NAN),
            d_c: e(1e7),
            huber: 0.1,
            huber_delta: 1e-3,
            rmse_log: 0.01,
            starts: 10,
            converged_starts: 3,
            bootstrap_resamples: 1,
            unidentified: vec![],
            samples: vec![],
        };
        let back: LawFit = serde_json::from_str(&serde_json::to_string(&law).unwrap()).unwrap();
        assert_eq!(back.params[0], 1.0);
        assert!(back.params[1].is_nan() && back.param_samples[0][1].is_nan());
        assert_eq!(back.params[2..], law.params[2..]);
    }
}
