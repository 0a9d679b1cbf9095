//! Choosing a law's form and Huber threshold by how well each predicts sizes it was not fitted
//! on: the job users give a law. In-sample error always favours the form with more freedom;
//! out-of-sample error does not.
//!
//! Each candidate (form × threshold) is refitted on the smallest sizes and scored on every larger
//! one, for each of the last [`MAX_SPLITS`] splits that leave enough points (rolling origin,
//! ending with the largest size left out); its score is the mean over splits of the mean
//! |ln(measured/predicted)| of the held-out points. A group with a single
//! model size rolls over D instead (a curve's prefix predicting its end). A candidate whose score
//! exceeds the best one's by less than one standard error of that difference (paired over the
//! same held-out points: Breiman's one-standard-error rule) is tied with it, and ties go to the
//! simpler form (fewer parameters), then to the earlier in [`Form::ALL`], then to the
//! noise-matched threshold. A form that cannot be fitted to every point is never chosen.

use crate::Skipped;
use serde::{Deserialize, Serialize};

use crate::approach3::CHINCHILLA_DELTA;
use crate::forms::{self, Form, Points};

/// Rolling splits scored: the ones with the most sizes fitted, which are nearest the question a
/// law is asked (predict the next larger runs from all the ones below), and which bound the cost
/// on long ladders.
pub const MAX_SPLITS: usize = 3;

/// Splits `auto` needs before it chooses a form by them. With fewer, the held-out points are one
/// or two sizes of one ladder, and the choice follows their noise: on the lab's CPU ladders (one
/// or two splits per language) it picked forms that missed the held-out 4× and 8×N targets by a
/// mean 2.4 % and 3.5 %, where Chinchilla's form missed by 0.9 % and 1.6 % (docs/findings/ladders.md).
/// Below it `auto` keeps Chinchilla's form (the other candidates are still scored and shown).
pub const MIN_SPLITS_TO_CHOOSE: usize = MAX_SPLITS;

/// Which form to fit: one by name, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LawChoice {
    #[default]
    Auto,
    Fixed(Form),
}

impl LawChoice {
    pub fn parse(s: &str) -> Option<LawChoice> {
        if s == "auto" {
            Some(LawChoice::Auto)
        } else {
            Form::parse(s).map(LawChoice::Fixed)
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LawChoice::Auto => "auto",
            LawChoice::Fixed(f) => f.name(),
        }
    }
}

/// A form tried on a group, with its out-of-sample error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub form: Form,
    pub formula: String,
    /// `matched` (to the residuals' robust scale) or `chinchilla` (1e-3), or the number given.
    pub huber: String,
    /// Mean over rolling splits of the mean |ln(measured/predicted)| at the held-out sizes;
    /// `None` when no split leaves enough points.
    pub out_of_sample: Option<f64>,
    /// Rolling splits the score averages.
    pub splits: usize,
    /// Fitted on every point (in-sample, shown, never used to choose).
    pub rmse_log: Option<f64>,
    pub alpha_n: Option<f64>,
    pub alpha_d: Option<f64>,
    pub l_inf: Option<f64>,
    pub chosen: bool,
    /// Within one standard error of the best out-of-sample score: a form (or threshold) the
    /// rolling splits cannot tell apart from the best. See [`form_spread`].
    #[serde(default)]
    pub tied: bool,
    /// Its parameters fitted on every point (natural units, in [`Form::param_names`] order);
    /// empty when that fit failed, and in fit files written before fitter version 9.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<f64>,
    /// Each held-out point's |log error| with its weight in the score (1 / (splits × points of
    /// its split)), in the same order for every candidate: what the tie rule pairs.
    #[serde(skip)]
    pub errors: Vec<(f64, f64)>,
}

/// The choice for one group: the form, the Huber threshold rule, every candidate and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub form: Form,
    /// `None`: noise-matched.
    pub delta: Option<f64>,
    pub candidates: Vec<Candidate>,
    pub reason: String,
}

type Triple = (f64, f64, f64);

/// Forms that these points can identify at all.
pub fn eligible(points: &[Triple]) -> Vec<Form> {
    let ns = crate::distinct(points.iter().map(|p| p.0)).len();
    let ds = crate::distinct(points.iter().map(|p| p.1)).len();
    Form::ALL
        .into_iter()
        .filter(|f| if f.has_n() { ns >= 2 && ds >= 2 } else { ns == 1 && ds >= 3 })
        .filter(|f| points.len() > f.n_params())
        .collect()
}

/// The rolling splits of `points`: (fitted, held out), smallest sizes fitted. Over N when there
/// are two sizes or more, else over D. Every candidate is scored on the same splits, so a split
/// must leave enough points for the largest eligible form (`params`); and three levels or more
/// where the design has four, since two sizes can place any form's N term nearly anywhere.
pub fn splits(points: &[Triple], params: usize) -> Vec<(Vec<Triple>, Vec<Triple>)> {
    let by_n = crate::distinct(points.iter().map(|p| p.0)).len() >= 2;
    let key = |p: &Triple| if by_n { p.0 } else { p.1 };
    let levels = crate::distinct(points.iter().map(key));
    let first = if levels.len() >= 4 { 3 } else { 2 };
    let mut out = vec![];
    for &level in &levels[first..] {
        let (train, test): (Vec<Triple>, Vec<Triple>) = points.iter().copied().partition(|p| key(p) < level);
        let ns = crate::distinct(train.iter().map(|p| p.0)).len();
        let ds = crate::distinct(train.iter().map(|p| p.1)).len();
        let enough = train.len() > params && ds >= 2 && (!by_n || ns >= 2) && (by_n || ds >= 3);
        if enough && !test.is_empty() {
            out.push((train, test));
        }
    }
    let skip = out.len().saturating_sub(MAX_SPLITS);
    out.into_iter().skip(skip).collect()
}

/// The candidate's held-out errors (see [`Candidate::errors`]) and its score (`None` without
/// splits).
fn out_of_sample(
    splits: &[(Vec<Triple>, Vec<Triple>)],
    form: Form,
    delta: Option<f64>,
) -> (Option<f64>, Vec<(f64, f64)>) {
    let mut errors = vec![];
    for (train, test) in splits {
        let weight = 1.0 / (splits.len() * test.len()) as f64;
        let fit = forms::fit_at(&Points::new(train), form, delta);
        for &(n, d, l) in test {
            // A form that cannot give a finite prediction has failed the split.
            let e = fit.as_ref().map_or(f64::INFINITY, |(f, _)| (l / form.predict(&f.params, n, d)).ln().abs());
            errors.push((if e.is_finite() { e } else { f64::INFINITY }, weight));
        }
    }
    let score = (!splits.is_empty()).then(|| errors.iter().map(|(e, w)| e * w).sum());
    (score, errors)
}

/// Whether `c` is tied with `best`: its score exceeds the best one's by less than one standard
/// error of the paired difference.
fn tied(c: &Candidate, best: &Candidate) -> bool {
    let (Some(sc), Some(sb)) = (c.out_of_sample, best.out_of_sample) else { return false };
    if !sc.is_finite() || c.errors.len() != best.errors.len() {
        return false;
    }
    let diffs: Vec<f64> = c.errors.iter().zip(&best.errors).map(|(a, b)| a.0 - b.0).collect();
    let m = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / m;
    let sd = if m > 1.0 { (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (m - 1.0)).sqrt() } else { 0.0 };
    let se = sd * c.errors.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
    sc - sb <= se
}

fn huber_label(delta: Option<f64>) -> String {
    match delta {
        None => "matched".into(),
        Some(d) if d == CHINCHILLA_DELTA => "chinchilla".into(),
        Some(d) => format!("{d:e}"),
    }
}

/// Scores the candidates and picks one. `law` fixes the form (then only its thresholds are
/// compared); `delta` fixes the threshold (else both the matched one
/// and Chinchilla's are tried). `Err` says why no form (or not the one asked for) can be fitted.
pub fn choose(points: &[Triple], law: LawChoice, delta: Option<f64>) -> Result<Selection, Skipped> {
    let forms = eligible(points);
    if forms.is_empty() {
        return Err(Skipped("no law form can be identified from these points (two sizes and two budgets, or one size and three budgets, and more points than parameters)".into()));
    }
    if let LawChoice::Fixed(form) = law {
        if !forms.contains(&form) {
            return Err(Skipped(format!(
                "--law {}: these points cannot identify it ({} parameters; {})",
                form.name(),
                form.n_params(),
                if form.has_n() {
                    "needs two model sizes and two budgets"
                } else {
                    "needs a single model size and three budgets"
                }
            )));
        }
    }
    let deltas: Vec<Option<f64>> = match delta {
        Some(d) => vec![Some(d)],
        None => vec![None, Some(CHINCHILLA_DELTA)],
    };
    let all = Points::new(points);
    let splits = splits(points, forms.iter().map(|f| f.n_params()).max().unwrap_or(0));
    // A form asked for by name is compared only across thresholds: the other forms' scores
    // would cost as much as `auto` and decide nothing.
    let tried: Vec<Form> = match law {
        LawChoice::Fixed(form) => vec![form],
        LawChoice::Auto => forms.clone(),
    };
    let mut candidates: Vec<(Candidate, Option<f64>)> = vec![];
    for &form in &tried {
        for &dl in &deltas {
            let (score, errors) = out_of_sample(&splits, form, dl);
            let full = forms::fit_at(&all, form, dl);
            let head = full.as_ref().map(|(f, _)| form.headline(&f.params)).unwrap_or([None; 3]);
            candidates.push((
                Candidate {
                    form,
                    formula: form.formula().into(),
                    huber: huber_label(dl),
                    out_of_sample: score,
                    splits: splits.len(),
                    rmse_log: full.as_ref().map(|(f, _)| f.rmse_log),
                    alpha_n: head[0],
                    alpha_d: head[1],
                    l_inf: head[2],
                    chosen: false,
                    tied: false,
                    params: full.map(|(f, _)| f.params).unwrap_or_default(),
                    errors,
                },
                dl,
            ));
        }
    }
    let (mut candidates, thresholds): (Vec<Candidate>, Vec<Option<f64>>) = candidates.into_iter().unzip();
    let (pick, best, choose_by_score) = pick(&mut candidates, law, splits.len());
    candidates[pick].chosen = true;
    let chosen = candidates[pick].clone();
    let default = &candidates[0];
    let passed_over = if default.form != chosen.form && !default.fits_all() {
        format!(" ({} could not be fitted to every point)", default.form.name())
    } else {
        String::new()
    };
    let reason = match (law, chosen.out_of_sample) {
        (LawChoice::Fixed(f), _) => format!("{} as asked (--law {}); Huber threshold {} by out-of-sample error", f.name(), f.name(), chosen.huber),
        (LawChoice::Auto, Some(s)) if choose_by_score => format!(
            "out-of-sample error over {} rolling split(s) {:.2} % (mean |log error| at the held-out sizes; best {:.2} %): the form with fewest parameters among those within one standard error of the best",
            chosen.splits,
            100.0 * s,
            100.0 * best
        ),
        (LawChoice::Auto, _) if !splits.is_empty() && best.is_finite() => format!(
            "{} by default{passed_over}: {} rolling split(s), {MIN_SPLITS_TO_CHOOSE} needed to choose a form by out-of-sample error (the best scored {:.2} %; see the candidates)",
            chosen.form.name(),
            splits.len(),
            100.0 * best
        ),
        _ => format!("no rolling split leaves enough points to judge forms by prediction; {} by default{passed_over}", chosen.form.name()),
    };
    Ok(Selection { form: chosen.form, delta: thresholds[pick], candidates, reason })
}

/// Marks the candidates tied with the best ([`Candidate::tied`]) and says which one `auto` (or a
/// fixed form's threshold choice) takes, the best out-of-sample score among those that can be the
/// law, and whether scores decided (enough splits).
///
/// Only a candidate whose fit on every point gave finite parameters can be the law: a form that
/// fails there (an exponent running away, a term overflowing) is shown, never chosen, however it
/// scored on the splits, and the default passes over it.
fn pick(candidates: &mut [Candidate], law: LawChoice, splits: usize) -> (usize, f64, bool) {
    let best = candidates
        .iter()
        .filter(|c| c.fits_all())
        .filter_map(|c| c.out_of_sample)
        .filter(|s| s.is_finite())
        .fold(f64::INFINITY, f64::min);
    if let Some(leader) = candidates.iter().position(|c| c.fits_all() && c.out_of_sample == Some(best)) {
        let ties: Vec<bool> = candidates.iter().map(|c| c.fits_all() && tied(c, &candidates[leader])).collect();
        for (c, t) in candidates.iter_mut().zip(ties) {
            c.tied = t;
        }
    }
    // Out-of-sample scores decide the form only when there are enough splits to trust them.
    let choose_by_score = best.is_finite() && splits >= MIN_SPLITS_TO_CHOOSE;
    let pick = match law {
        // With a fixed form, the threshold is still chosen by prediction (when not fixed).
        LawChoice::Fixed(form) => (0..candidates.len())
            .filter(|&j| candidates[j].form == form)
            .min_by(|&a, &b| score_of(&candidates[a]).total_cmp(&score_of(&candidates[b])).then(a.cmp(&b)))
            .expect("an eligible form has candidates"),
        LawChoice::Auto if choose_by_score => (0..candidates.len())
            .filter(|&i| candidates[i].tied)
            .min_by_key(|&i| (candidates[i].form.n_params(), i))
            .expect("the best is tied with itself"),
        // Too few splits to judge forms by: Chinchilla (or the first eligible form) at the
        // matched threshold.
        LawChoice::Auto => candidates.iter().position(Candidate::fits_all).unwrap_or(0),
    };
    (pick, best, choose_by_score)
}

/// What the choice of form does to one prediction: the lowest and highest loss predicted by the
/// chosen form and every form the rolling splits cannot tell apart from the best. Where several
/// forms predict the held-out sizes equally well, their disagreement at a far (N, D) is an
/// uncertainty the prediction interval of one form does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormSpread {
    pub lo: f64,
    pub hi: f64,
    /// The forms the range spans, chosen one first.
    pub forms: Vec<Form>,
}

impl FormSpread {
    /// The forms' names, chosen one first: "chinchilla, kaplan".
    pub fn form_names(&self) -> String {
        self.forms.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    }

    /// One clause for the terminal.
    pub fn describe(&self) -> String {
        format!(
            "the law and the forms the rolling splits cannot tell apart from the best ({}) predict {:.4} to {:.4}",
            self.form_names(),
            self.lo,
            self.hi
        )
    }
}

/// The spread at (n, d) over the law's own prediction `law` (the chosen candidate's, refitted
/// with bootstrap) and the predictions of the candidates tied with the best; `None` unless at
/// least two forms are in it (thresholds of one form are the interval's business), or for fit
/// files without the candidates' parameters.
pub fn form_spread(candidates: &[Candidate], n: f64, d: f64, law: f64) -> Option<FormSpread> {
    let chosen = candidates.iter().find(|c| c.chosen)?;
    let others: Vec<&Candidate> =
        candidates.iter().filter(|c| c.tied && !c.chosen && c.params.len() == c.form.n_params()).collect();
    let mut forms = vec![chosen.form];
    for c in &others {
        if !forms.contains(&c.form) {
            forms.push(c.form);
        }
    }
    let mut predictions = vec![law];
    predictions.extend(others.iter().map(|c| c.form.predict(&c.params, n, d)));
    (forms.len() >= 2 && predictions.iter().all(|x| x.is_finite())).then(|| FormSpread {
        lo: predictions.iter().copied().fold(f64::INFINITY, f64::min),
        hi: predictions.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        forms,
    })
}

impl Candidate {
    /// Whether the form could be fitted to every point (finite parameters): what the law of
    /// the group will be if the form is chosen.
    pub fn fits_all(&self) -> bool {
        self.rmse_log.is_some_and(f64::is_finite)
    }
}

fn score_of(c: &Candidate) -> f64 {
    c.out_of_sample.unwrap_or(f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(f: impl Fn(f64, f64) -> f64) -> Vec<Triple> {
        let mut pts = vec![];
        for (i, n) in [1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10].into_iter().enumerate() {
            for (j, m) in [5.0, 20.0, 80.0, 320.0].into_iter().enumerate() {
                let d = m * n;
                // ±0.3 % of deterministic scatter.
                let wiggle = 1.0 + 0.003 * (((i * 3 + j) % 5) as f64 - 2.0) / 2.0;
                pts.push((n, d, f(n, d) * wiggle));
            }
        }
        pts
    }

    /// On a strongly non-additive (Kaplan) surface, auto picks Kaplan: the additive forms
    /// predict the larger sizes worse.
    #[test]
    fn auto_finds_the_interaction() {
        let p = [1.2, 3e8, 2e9, 0.35, 0.3];
        let pts = grid(|n, d| Form::Kaplan.predict(&p, n, d));
        let s = choose(&pts, LawChoice::Auto, None).unwrap();
        assert_eq!(s.form, Form::Kaplan, "{:#?}", s.candidates);
        assert_eq!(s.candidates.iter().filter(|c| c.chosen).count(), 1);
    }

    /// On an additive surface with one exponent, the simpler Gadre form ties and wins.
    #[test]
    fn ties_go_to_the_simpler_form() {
        let p = [1.8, 300.0, 900.0, 0.3];
        let pts = grid(|n, d| Form::Gadre.predict(&p, n, d));
        let s = choose(&pts, LawChoice::Auto, None).unwrap();
        assert_eq!(s.form, Form::Gadre, "{:#?}", s.candidates);
    }

    fn candidate(form: Form, out_of_sample: f64, rmse_log: Option<f64>) -> Candidate {
        Candidate {
            form,
            formula: form.formula().into(),
            huber: "matched".into(),
            out_of_sample: Some(out_of_sample),
            splits: 2,
            rmse_log,
            alpha_n: None,
            alpha_d: None,
            l_inf: None,
            chosen: false,
            tied: false,
            params: vec![],
            errors: vec![(out_of_sample, 1.0)],
        }
    }

    /// A form whose fit on every point failed is never the law: below enough splits the
    /// default passes over it to the next form that fitted, and with enough splits its good
    /// score does not make it the leader.
    #[test]
    fn a_form_that_failed_on_every_point_is_never_chosen() {
        let mut failed_default = [
            candidate(Form::Chinchilla, 0.020, None),
            candidate(Form::Kaplan, 0.030, Some(0.02)),
            candidate(Form::Gadre, 0.025, Some(0.02)),
        ];
        assert_eq!(pick(&mut failed_default, LawChoice::Auto, 2).0, 1);
        let (chosen, best, by_score) = pick(&mut failed_default, LawChoice::Auto, MAX_SPLITS);
        assert!(by_score);
        assert_eq!((chosen, best), (2, 0.025));
        let mut fitted = [candidate(Form::Chinchilla, 0.030, Some(0.02)), candidate(Form::Kaplan, 0.020, Some(0.02))];
        assert_eq!(pick(&mut fitted, LawChoice::Auto, 2).0, 0, "the default stands when it fitted");
    }

    /// The spread runs over the law's prediction and the tied forms', not over a form the
    /// splits rejected; one form alone (at two thresholds) has none.
    #[test]
    fn the_spread_covers_the_tied_forms_only() {
        let mut chinchilla = candidate(Form::Chinchilla, 0.02, Some(0.01));
        chinchilla.params = vec![1.5, 400.0, 2000.0, 0.3, 0.3];
        chinchilla.chosen = true;
        let mut kaplan = candidate(Form::Kaplan, 0.02, Some(0.01));
        kaplan.params = vec![1.2, 3e8, 2e9, 0.35, 0.3];
        kaplan.tied = true;
        let mut rejected = candidate(Form::Kaplan2020, 0.05, Some(0.01));
        rejected.params = vec![3e8, 2e9, 0.1, 0.1];
        let (n, d) = (1e9, 2e10);
        let (a, b) = (Form::Chinchilla.predict(&chinchilla.params, n, d), Form::Kaplan.predict(&kaplan.params, n, d));
        let spread = form_spread(&[chinchilla.clone(), kaplan.clone(), rejected.clone()], n, d, a).unwrap();
        assert_eq!((spread.lo, spread.hi), (a.min(b), a.max(b)));
        assert_eq!(spread.forms, vec![Form::Chinchilla, Form::Kaplan]);
        let mut other_threshold = chinchilla.clone();
        other_threshold.chosen = false;
        other_threshold.tied = true;
        assert_eq!(form_spread(&[chinchilla, other_threshold, rejected], n, d, a), None);
    }

    #[test]
    fn a_single_size_rolls_over_d() {
        let p = [2.0, 50.0, 0.25];
        let pts: Vec<Triple> =
            (1..=10).map(|k| (1e8, 1e9 * k as f64, Form::Data.predict(&p, 1e8, 1e9 * k as f64))).collect();
        assert_eq!(eligible(&pts), vec![Form::Data]);
        let s = choose(&pts, LawChoice::Auto, None).unwrap();
        assert_eq!(s.form, Form::Data);
        assert_eq!(s.candidates[0].splits, MAX_SPLITS);
        assert!(s.candidates[0].out_of_sample.unwrap() < 1e-4);
    }
}
