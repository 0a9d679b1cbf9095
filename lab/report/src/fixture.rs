//! Synthetic but realistic report inputs: losses from known laws with small deterministic
//! noise, fits computed from those laws the way the fitter reports them. Used by the tests and
//! by `examples/fixture_report.rs`, so anyone can look at a full report without running a sweep.

use std::path::Path;

use codescale_core::{CurvePoint, Provenance, ResultRow};
use codescale_fit::{
    Allocation, BudgetPlan, Estimate, Excluded, Extrapolation, FitFile, FitPoint, GroupFit, HyperBudget, HyperLaws, HyperPoint,
    IsoFlopBudget, IsoFlopFit, LawFit, PowerLaw,
};

use crate::{write_report, ReportInput, ReportOutput};

/// The true law of one fixture language.
pub use codescale_fit::approach3::Law as TrueLaw;

/// The compute-optimal (N, D) of a true law.
fn optimal(t: &TrueLaw, c: f64) -> (f64, f64) {
    let plan = codescale_fit::allocation::plan(t, c);
    (plan.n_opt, plan.d_opt)
}

pub const LANGS: [(&str, TrueLaw); 3] = [
    (
        "python",
        TrueLaw {
            e: 0.85,
            a: 60.0,
            b: 45.0,
            alpha: 0.34,
            beta: 0.30,
        },
    ),
    (
        "rust",
        TrueLaw {
            e: 0.75,
            a: 75.0,
            b: 40.0,
            alpha: 0.38,
            beta: 0.28,
        },
    ),
    (
        "java",
        TrueLaw {
            e: 0.70,
            a: 45.0,
            b: 60.0,
            alpha: 0.30,
            beta: 0.33,
        },
    ),
];
pub const SIZES: [f64; 4] = [1.2e5, 3.5e5, 1.0e6, 3.0e6];
pub const TOKENS: [f64; 3] = [2e5, 1e6, 5e6];
pub const BUDGETS: [f64; 6] = [1e13, 1e14, 1e15, 1e16, 1e17, 1e18];
const SEQ_LEN: i64 = 128;
/// Uniform-guess loss for a byte vocabulary, where every curve starts.
const START_LOSS: f64 = 5.545;

/// Deterministic noise in [-1, 1] (splitmix64).
pub fn noise(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn id(parts: &str) -> String {
    // Stable 16-hex-digit ids shaped like the lab's blake3 trial ids.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}{:016x}", h.rotate_left(17) ^ 0x5bd1_e995)
}

#[allow(clippy::too_many_arguments)]
pub fn row(
    sweep: &str,
    status: &str,
    lang: &str,
    arch: &str,
    n: f64,
    d: f64,
    lr: f64,
    batch: i64,
    warmup: i64,
    loss: Option<f64>,
) -> ResultRow {
    let trial_id = id(&format!("{sweep}/{lang}/{arch}/{n}/{d}/{lr}/{batch}/{warmup}"));
    let moe = arch != "dense";
    let active = if moe { n / 4.0 } else { n };
    let d_model = ((n / 12.0).sqrt() / 16.0).round().max(1.0) as i64 * 16;
    ResultRow {
        sweep: sweep.into(),
        trial_id,
        status: status.into(),
        language: lang.into(),
        arch: arch.into(),
        model: format!("d{d_model}-l4"),
        tokenizer: "bytes".into(),
        d_model,
        n_layers: 4,
        n_heads: (d_model / 32).max(1),
        d_ff: 4 * d_model,
        n_experts: if moe { 8 } else { 0 },
        top_k: if moe { 2 } else { 0 },
        gate: moe.then(|| "softmax_topk".into()),
        capacity_factor: None,
        dropped_frac: None,
        n_params: n,
        n_params_total: n + 2.0 * 256.0 * d_model as f64,
        n_params_active: active,
        tokens: d,
        flops: 6.0 * active * d,
        seq_len: SEQ_LEN,
        batch_size: batch,
        lr,
        warmup_steps: warmup,
        schedule: "cosine".into(),
        weight_decay: 0.1,
        seed: 0,
        train_loss: loss.map(|l| l * 0.985),
        val_loss: loss,
        val_bpb: loss.map(|l| l / std::f64::consts::LN_2),
        steps: (d / (batch * SEQ_LEN) as f64).round() as i64,
        wall_s: active * d * 2e-9 + 3.0,
        tokens_per_s: 4.0e3,
        backend: "flex".into(),
        stale: false,
        config_id: String::new(),
        trunk: String::new(),
        val_loss_se: None,
        target: false,
        n_params_with_head: n,
    }
}

fn est(v: f64, rel: f64) -> Estimate {
    Estimate {
        value: v,
        lo: Some(v * (1.0 - rel)),
        hi: Some(v * (1.0 + rel)),
    }
}

fn est_log(v: f64, w: f64) -> Estimate {
    Estimate {
        value: v,
        lo: Some(v * (-w).exp()),
        hi: Some(v * w.exp()),
    }
}

fn law_fit(t: &TrueLaw, points: &[FitPoint]) -> LawFit {
    let r: Vec<f64> = points.iter().map(|p| (p.loss / p.predicted.unwrap_or(p.loss)).ln()).collect();
    let rmse = (r.iter().map(|x| x * x).sum::<f64>() / r.len().max(1) as f64).sqrt();
    LawFit {
        e: est(t.e, 0.05),
        a: est(t.a, 0.25),
        b: est(t.b, 0.25),
        alpha: est(t.alpha, 0.07),
        beta: est(t.beta, 0.07),
        l_inf: est(t.e, 0.05),
        alpha_n: est(t.alpha, 0.07),
        alpha_d: est(t.beta, 0.07),
        n_c: est_log(t.a.powf(1.0 / t.alpha), 0.6),
        d_c: est_log(t.b.powf(1.0 / t.beta), 0.6),
        huber: r.iter().map(|x| x * x / 2.0).sum(),
        rmse_log: rmse,
        starts: 64,
        converged_starts: 58,
        bootstrap_resamples: 1000,
        unidentified: vec![],
        samples: Vec::new(),
    }
}

fn allocation(t: &TrueLaw) -> Allocation {
    let x = codescale_fit::allocation::allocation(t);
    let budgets = BUDGETS
        .iter()
        .map(|&c| {
            let (n, d) = optimal(t, c);
            // The interval widens the further the budget lies beyond the trials.
            let w = 0.08 + 0.07 * (c / 1e13).log10();
            BudgetPlan {
                flops: c,
                n_opt: est_log(n, w),
                d_opt: est_log(d, w),
                tokens_per_param: est_log(d / n, 2.0 * w),
                loss: est(t.predict(n, d), 0.01 + 0.004 * (c / 1e13).log10()),
                extrapolated: c > 1e15,
            }
        })
        .collect();
    Allocation {
        a: est(x.a, 0.06),
        b: est(x.b, 0.06),
        g: est(x.g, 0.3),
        budgets,
    }
}

/// Least-squares parabola in ln N, as the fitter's IsoFLOP step reports it.
fn parabola(points: &[FitPoint]) -> [f64; 3] {
    let mut m = [[0.0f64; 4]; 3];
    for p in points {
        let x = p.n.ln();
        let xs = [1.0, x, x * x];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += xs[i] * xs[j];
            }
            m[i][3] += xs[i] * p.loss;
        }
    }
    #[allow(clippy::needless_range_loop)] // Gauss–Jordan reads clearer with indices
    for col in 0..3 {
        let piv = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs())).unwrap_or(col);
        m.swap(col, piv);
        for r in 0..3 {
            if r != col {
                let f = m[r][col] / m[col][col];
                for k in col..4 {
                    m[r][k] -= f * m[col][k];
                }
            }
        }
    }
    [m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]]
}

fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    num / den
}

fn curve(t: &TrueLaw, n: f64, d: f64, seed: u64) -> Vec<CurvePoint> {
    let steps = 80;
    (1..=steps)
        .map(|k| {
            let tokens = d * k as f64 / steps as f64;
            let clean = t.predict(n, tokens).min(START_LOSS);
            let train = clean * (1.0 + 0.012 * noise(seed * 1000 + k as u64));
            let val = (k % 10 == 0).then(|| clean * (1.0 + 0.004 * noise(seed * 1000 + 500 + k as u64)));
            CurvePoint {
                step: k * 10,
                tokens,
                lr: 3e-3,
                train_loss: train,
                val_loss: val,
                val_loss_se: val.map(|v| v * 0.002),
                val_bpb: val.map(|v| v / std::f64::consts::LN_2),
                grad_norm: 1.0,
                wall_s: k as f64 * 0.5,
                expert_load: None,
                router_entropy: None,
                dropped_frac: None,
            }
        })
        .collect()
}

fn provenance(i: usize) -> Provenance {
    Provenance {
        codescale_version: "0.1.0".into(),
        git_commit: "9a19e97c4d2b8f01e6a5c3b7d9f0e1a2b3c4d5e6".into(),
        git_dirty: false,
        rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
        backend: "flex".into(),
        device: "cpu".into(),
        threads: 2,
        host: "lab-node-1".into(),
        started: format!("2026-05-01T{:02}:{:02}:00Z", 8 + i / 60, i % 60),
        finished: Some(format!("2026-05-01T{:02}:{:02}:30Z", 8 + i / 60, i % 60)),
        corpus_hash: "b3:5f2ac4e1d09b7e63a8c2".into(),
        tokenizer_hash: "b3:bytes-256".into(),
        seed: i as u64,
    }
}

/// A full sweep: three fitted languages on a 4 × 3 grid of N × D, a fourth language with too
/// few points to fit, an IsoFLOP set, two learning-rate × batch slices with a diverged corner,
/// dense and MoE rows, a failed trial, curves and provenance.
pub fn full() -> ReportInput {
    let sweep = "fixture";
    let mut results = Vec::new();
    let mut curves = Vec::new();
    let mut groups = Vec::new();
    let mut excluded = Vec::new();
    let mut seed = 1u64;
    for (li, (lang, t)) in LANGS.iter().enumerate() {
        let mut points = Vec::new();
        for &n in &SIZES {
            for &d in &TOKENS {
                seed += 1;
                let clean = t.predict(n, d);
                let loss = clean * (1.0 + 0.006 * noise(seed));
                let r = row(sweep, "done", lang, "dense", n, d, 3e-3, 32, 50, Some(loss));
                curves.push((r.trial_id.clone(), curve(t, n, d, seed)));
                results.push(r);
                points.push(FitPoint {
                    n,
                    d,
                    loss,
                    predicted: Some(clean),
                });
            }
        }
        let law = law_fit(t, &points);
        let held_n = SIZES[SIZES.len() - 1];
        let held: Vec<FitPoint> = points
            .iter()
            .filter(|p| p.n == held_n)
            .map(|p| FitPoint {
                predicted: p.predicted.map(|q| q * (1.0 + 0.008 * (li as f64 + 1.0))),
                ..*p
            })
            .collect();
        let errs: Vec<f64> = held.iter().map(|p| (p.predicted.unwrap() / p.loss - 1.0).abs()).collect();
        let extrapolation = Extrapolation {
            held_out_n: vec![held_n],
            mean_abs_rel_error: errs.iter().sum::<f64>() / errs.len() as f64,
            max_abs_rel_error: errs.iter().copied().fold(0.0, f64::max),
            points: held,
        };
        let mut isoflop = None;
        if *lang == "rust" {
            let mut budgets = Vec::new();
            for (bi, &c) in [1e12, 4e12, 1.6e13].iter().enumerate() {
                let (n_star, _) = optimal(t, c);
                let pts: Vec<FitPoint> = (0..5)
                    .map(|k| {
                        let n = n_star * 10f64.powf(-0.6 + 0.3 * k as f64);
                        let d = c / (6.0 * n);
                        let clean = t.predict(n, d);
                        let loss = clean * (1.0 + 0.003 * noise(9000 + bi as u64 * 10 + k));
                        results.push(row(sweep, "done", lang, "dense", n, d, 3e-3, 32, 50, Some(loss)));
                        FitPoint {
                            n,
                            d,
                            loss,
                            predicted: Some(clean),
                        }
                    })
                    .collect();
                let coeffs = parabola(&pts);
                let n_opt = (-coeffs[1] / (2.0 * coeffs[2])).exp();
                budgets.push(IsoFlopBudget {
                    flops: c,
                    coeffs,
                    n_opt,
                    d_opt: c / (6.0 * n_opt),
                    points: pts,
                });
            }
            let lc: Vec<f64> = budgets.iter().map(|b| b.flops.ln()).collect();
            let a = slope(&lc, &budgets.iter().map(|b| b.n_opt.ln()).collect::<Vec<_>>());
            let b = slope(&lc, &budgets.iter().map(|b| b.d_opt.ln()).collect::<Vec<_>>());
            isoflop = Some(IsoFlopFit {
                budgets,
                a: est(a, 0.08),
                b: est(b, 0.08),
            });
        }
        let hyper = (*lang == "python").then(|| hyper_slices(sweep, t, &mut results, &mut excluded));
        groups.push(GroupFit {
            group: lang.to_string(),
            n_points: points.len(),
            message: None,
            warnings: if *lang == "java" {
                vec!["2 of 64 starts hit the iteration limit".into()]
            } else {
                Vec::new()
            },
            law: Some(law),
            allocation: Some(allocation(t)),
            isoflop,
            hyper,
            lr_rule: None,
            extrapolation: Some(extrapolation),
            rolling: vec![],
            targets: vec![],
            replicates: vec![],
            max_flops: 1e13,
            points,
        });
    }
    // Mixture-of-experts rows for python at the same active sizes and budgets as dense ones.
    let py = LANGS[0].1;
    for &active in &SIZES[..3] {
        for &d in &TOKENS[1..] {
            seed += 1;
            let loss = py.predict(active, d) * 0.955 * (1.0 + 0.005 * noise(seed));
            results.push(row(sweep, "done", "python", "moe", active * 4.0, d, 3e-3, 32, 50, Some(loss)));
        }
    }
    // A language with too few finished trials to fit.
    let go = TrueLaw {
        e: 0.8,
        a: 55.0,
        b: 50.0,
        alpha: 0.33,
        beta: 0.31,
    };
    for &n in &SIZES[..3] {
        seed += 1;
        results.push(row(
            sweep,
            "done",
            "go",
            "dense",
            n,
            1e6,
            3e-3,
            32,
            50,
            Some(go.predict(n, 1e6) * (1.0 + 0.005 * noise(seed))),
        ));
    }
    groups.push(GroupFit {
        group: "go".into(),
        n_points: 3,
        message: Some("3 points, 5 needed".into()),
        warnings: Vec::new(),
        law: None,
        allocation: None,
        isoflop: None,
        hyper: None,
        lr_rule: None,
        extrapolation: None,
        rolling: vec![],
        targets: vec![],
        replicates: vec![],
        max_flops: 1e13,
        points: Vec::new(),
    });
    let failed = row(sweep, "failed", "rust", "dense", 1e7, 5e6, 3e-3, 32, 50, None);
    excluded.push(Excluded {
        id: failed.trial_id.clone(),
        group: "rust".into(),
        reason: "status failed (out of memory)".into(),
    });
    results.push(failed);
    let provenance = results
        .iter()
        .enumerate()
        .map(|(i, r)| (r.trial_id.clone(), provenance(i)))
        .collect();
    ReportInput {
        sweep: sweep.into(),
        results,
        curves,
        fit: Some(FitFile {
            name: sweep.into(),
            source: "runs/fixture/results.parquet".into(),
            n_col: "n_params".into(),
            created: "2026-05-01T12:00:00Z".into(),
            input_hash: String::new(),
            groups,
            excluded,
        }),
        provenance,
        sweep_toml: Some(SWEEP_TOML.into()),
        notes: Vec::new(),
    }
}

const SWEEP_TOML: &str = r#"name = "fixture"
corpus = "corpora/local.toml"
method = "grid"
seed = 0
[base]
arch = "dense"
tokenizer = "bytes"
seq_len = 128
schedule = "cosine"
warmup = 50
lr = 3e-3
batch_size = 32
[parameters]
language = { values = ["python", "rust", "java", "go"] }
n_params = { values = [1.2e5, 3.5e5, 1e6, 3e6] }
tokens   = { values = [2e5, 1e6, 5e6] }
# <script>alert("escaped")</script> & friends stay text
"#;

/// Two budgets of python trained over learning rate × batch × warmup; the most aggressive
/// corner diverges.
fn hyper_slices(sweep: &str, t: &TrueLaw, results: &mut Vec<ResultRow>, excluded: &mut Vec<Excluded>) -> HyperLaws {
    let mut budgets = Vec::new();
    for (si, &(n, d)) in [(3.5e5f64, 1e6f64), (1e6, 5e6)].iter().enumerate() {
        let c = 6.0 * n * d;
        let lr_opt = 2.5e-3 * (c / 2.1e12).powf(-0.125);
        let b_opt = 4096.0 * (c / 2.1e12).powf(0.33);
        let mut all = Vec::new();
        for (i, &lr) in [3e-4, 1e-3, 3e-3, 1e-2, 3e-2].iter().enumerate() {
            for (j, &batch) in [16i64, 32, 64].iter().enumerate() {
                for &warmup in &[50i64, 200] {
                    let bt = (batch * SEQ_LEN) as f64;
                    if lr == 3e-3 && batch == 32 && warmup == 50 {
                        continue; // the grid trial itself
                    }
                    if lr == 3e-2 && batch == 16 {
                        let r = row(sweep, "diverged", "python", "dense", n, d * 0.2, lr, batch, warmup, None);
                        excluded.push(Excluded {
                            id: r.trial_id.clone(),
                            group: "python".into(),
                            reason: "status diverged (loss NaN at step 41)".into(),
                        });
                        results.push(r);
                        continue;
                    }
                    let penalty = 0.045 * (lr / lr_opt).ln().powi(2)
                        + 0.02 * (bt / b_opt).ln().powi(2)
                        + if warmup == 50 && lr >= 1e-2 { 0.06 } else { 0.0 };
                    let loss =
                        (t.predict(n, d) + penalty) * (1.0 + 0.002 * noise(7000 + si as u64 * 100 + i as u64 * 10 + j as u64 + warmup as u64));
                    results.push(row(sweep, "done", "python", "dense", n, d, lr, batch, warmup, Some(loss)));
                    all.push(HyperPoint {
                        lr,
                        batch_tokens: bt,
                        warmup_steps: warmup as f64,
                        loss,
                    });
                }
            }
        }
        let best = *all.iter().min_by(|a, b| a.loss.total_cmp(&b.loss)).unwrap();
        let near_best = all.iter().copied().filter(|p| p.loss <= best.loss * 1.0025).collect();
        budgets.push(HyperBudget {
            flops: c,
            best,
            near_best,
            all,
        });
    }
    HyperLaws {
        budgets,
        lr_law: Some(PowerLaw {
            k: est(0.3118, 0.2),
            p: est(-0.125, 0.15),
        }),
        batch_law: Some(PowerLaw {
            k: est(0.292, 0.2),
            p: est(0.3271, 0.1),
        }),
    }
}

/// A sweep that went wrong: some trials failed or diverged and no group could be fitted.
pub fn partly_failed() -> ReportInput {
    let sweep = "partial";
    let t = LANGS[0].1;
    let mut results = Vec::new();
    for &n in &SIZES[..3] {
        results.push(row(sweep, "done", "python", "dense", n, 1e6, 3e-3, 32, 50, Some(t.predict(n, 1e6))));
    }
    results.push(row(sweep, "failed", "python", "dense", 3e6, 1e6, 3e-3, 32, 50, None));
    results.push(row(sweep, "diverged", "go", "dense", 1.2e5, 1e6, 3e-2, 32, 50, None));
    results.push(row(sweep, "diverged", "go", "dense", 3.5e5, 1e6, 3e-2, 32, 50, None));
    results.push(row(sweep, "pending", "go", "dense", 1e6, 1e6, 3e-3, 32, 50, None));
    let excluded = results
        .iter()
        .filter(|r| r.status != "done")
        .map(|r| Excluded {
            id: r.trial_id.clone(),
            group: r.language.clone(),
            reason: format!("status {}", r.status),
        })
        .collect();
    let empty_group = |g: &str, n: usize| GroupFit {
        group: g.into(),
        n_points: n,
        message: Some(format!("{n} points, 5 needed")),
        warnings: Vec::new(),
        law: None,
        allocation: None,
        isoflop: None,
        hyper: None,
        lr_rule: None,
        extrapolation: None,
        rolling: vec![],
        targets: vec![],
        replicates: vec![],
        max_flops: 1e13,
        points: Vec::new(),
    };
    ReportInput {
        sweep: sweep.into(),
        results,
        curves: Vec::new(),
        fit: Some(FitFile {
            name: sweep.into(),
            source: "runs/partial/results.parquet".into(),
            n_col: "n_params".into(),
            created: "2026-05-02T09:00:00Z".into(),
            input_hash: String::new(),
            groups: vec![empty_group("python", 3), empty_group("go", 0)],
            excluded,
        }),
        provenance: Vec::new(),
        sweep_toml: None,
        notes: vec!["2 trial records could not be read and were skipped".into()],
    }
}

/// Nothing at all: a sweep that was planned but never run.
pub fn empty() -> ReportInput {
    ReportInput {
        sweep: "empty".into(),
        notes: vec!["fit missing: fits/empty.json does not exist".into()],
        ..ReportInput::default()
    }
}

/// Writes the full fixture report to `dir`.
pub fn write_fixture_report(dir: &Path) -> anyhow::Result<ReportOutput> {
    write_report(&full(), dir)
}
