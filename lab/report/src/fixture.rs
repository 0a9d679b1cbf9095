//! Synthetic but realistic report inputs: losses from known laws with small seeded noise, and
//! the fits `codescale fit` makes of them (the fitter itself, run on the synthetic rows). Used
//! by the tests and by `examples/fixture_report.rs`, so anyone can look at a full report
//! without running a sweep.

use std::path::Path;

use codescale_core::{Arch, Backend, CurvePoint, Provenance, ResultRow, Schedule};
use codescale_fit::results::points_from_rows;
use codescale_fit::{fit_points_at, FitFile, FitOptions};

use crate::{write_report, ReportInput, ReportOutput};

/// The true law of one fixture language.
pub use codescale_fit::approach3::Law as TrueLaw;

/// The compute-optimal N of a true law at `c` FLOPs, around which the IsoFLOP trials are placed.
fn optimal_n(t: &TrueLaw, c: f64) -> f64 {
    codescale_fit::allocation::plan(t, c).n_opt
}

pub const LANGS: [(&str, TrueLaw); 3] = [
    ("python", TrueLaw { e: 0.85, a: 60.0, b: 45.0, alpha: 0.34, beta: 0.30 }),
    ("rust", TrueLaw { e: 0.75, a: 75.0, b: 40.0, alpha: 0.38, beta: 0.28 }),
    ("java", TrueLaw { e: 0.70, a: 45.0, b: 60.0, alpha: 0.30, beta: 0.33 }),
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
        status: serde_json::from_value(status.into()).expect("a status"),
        language: lang.into(),
        arch: if moe { Arch::Moe } else { Arch::Dense },
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
        warmup: warmup as f64,
        schedule: Schedule::Cosine,
        weight_decay: 0.1,
        seed: 0,
        train_loss: loss.map(|l| l * 0.985),
        val_loss: loss,
        val_bpb: loss.map(|l| l / std::f64::consts::LN_2),
        task_exact_match: None,
        task_exact_match_se: None,
        val_completion_loss: None,
        val_completion_loss_se: None,
        init_from: String::new(),
        sft: String::new(),
        val_fim_loss: None,
        val_fim_loss_se: None,
        fim_rate: 0.0,
        fim_spm_rate: 0.0,
        steps: (d / (batch * SEQ_LEN) as f64).round() as i64,
        wall_s: active * d * 2e-9 + 3.0,
        tokens_per_s: 4.0e3,
        backend: Backend::Flex,
        stale: false,
        config_id: String::new(),
        trunk: String::new(),
        val_loss_se: None,
        target: false,
        n_params_with_head: n,
    }
}

/// Python's code-task score: a sigmoid of the loss (half of 60 % at a loss of 2.2), with noise
/// of 1.5 points as 256 examples have.
fn task_metric(loss: f64, seed: u64) -> (Option<f64>, Option<f64>) {
    let p = (0.6 / (1.0 + (-4.0 * (2.2 - loss)).exp()) + 0.015 * noise(seed + 31)).clamp(0.0, 1.0);
    (Some(p), Some((p * (1.0 - p) / 256.0).sqrt()))
}

/// The fitter as `codescale fit` runs it, with fewer bootstrap resamples so that the tests
/// stay quick, on the rows of one sweep that finished or not.
fn fit(sweep: &str, rows: &[ResultRow]) -> FitFile {
    fit_by(sweep, rows, "n_params")
}

/// [`fit`] with N from `n_col`.
fn fit_by(sweep: &str, rows: &[ResultRow], n_col: &str) -> FitFile {
    fit_loss(sweep, rows, n_col, "val_loss")
}

/// [`fit`] with N from `n_col` and the loss from `loss_col`.
fn fit_loss(sweep: &str, rows: &[ResultRow], n_col: &str, loss_col: &str) -> FitFile {
    let opts = FitOptions {
        bootstrap: BOOTSTRAP,
        budgets: BUDGETS.to_vec(),
        n_col: n_col.into(),
        loss_col: loss_col.into(),
        ..FitOptions::default()
    };
    fit_points_at(
        sweep,
        &format!("runs/{sweep}/results.parquet"),
        &points_from_rows(rows, n_col, loss_col),
        &opts,
        CREATED,
    )
}

/// Enough resamples for intervals that look like the real ones.
const BOOTSTRAP: usize = 100;
const CREATED: &str = "2026-05-01T12:00:00Z";

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
                task_exact_match: None,
                task_exact_match_se: None,
                val_completion_loss: None,
                val_completion_loss_se: None,
                val_fim_loss: None,
                val_fim_loss_se: None,
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
        source_head: None,
        rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
        backend: "flex".into(),
        device: "cpu".into(),
        simd_path: Some("x86_64 avx512f; caches 48K/2048K/107520K".into()),
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
    // Fitting takes seconds (bootstrap and extrapolation refits of six groups): once per process.
    static FULL: std::sync::OnceLock<ReportInput> = std::sync::OnceLock::new();
    FULL.get_or_init(full_sweep).clone()
}

fn full_sweep() -> ReportInput {
    let sweep = "fixture";
    let mut results = Vec::new();
    let mut curves = Vec::new();
    let mut seed = 1u64;
    for (lang, t) in LANGS.iter() {
        for &n in &SIZES {
            for &d in &TOKENS {
                seed += 1;
                let loss = t.predict(n, d) * (1.0 + 0.006 * noise(seed));
                let mut r = row(sweep, "done", lang, "dense", n, d, 3e-3, 32, 50, Some(loss));
                if *lang == "python" {
                    (r.task_exact_match, r.task_exact_match_se) = task_metric(loss, seed);
                }
                curves.push((r.trial_id.clone(), curve(t, n, d, seed)));
                results.push(r);
            }
        }
        if *lang == "rust" {
            // Five sizes around the optimum of each of three budgets, D = C / 6N.
            for (bi, &c) in [1e12, 4e12, 1.6e13].iter().enumerate() {
                let n_star = optimal_n(t, c);
                for k in 0..5 {
                    let n = n_star * 10f64.powf(-0.6 + 0.3 * k as f64);
                    let d = c / (6.0 * n);
                    let loss = t.predict(n, d) * (1.0 + 0.003 * noise(9000 + bi as u64 * 10 + k));
                    results.push(row(sweep, "done", lang, "dense", n, d, 3e-3, 32, 50, Some(loss)));
                }
            }
        }
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
    // A held-out python target at 4× the largest size, with its task metric.
    let (n, d) = (4.0 * SIZES[3], TOKENS[2]);
    let loss = LANGS[0].1.predict(n, d) * (1.0 + 0.006 * noise(777));
    let mut target = row(sweep, "done", "python", "dense", n, d, 3e-3, 32, 50, Some(loss));
    target.target = true;
    (target.task_exact_match, target.task_exact_match_se) = task_metric(loss, 778);
    results.push(target);
    // Java also trained with fill-in-the-middle at rate 0.5: a causal loss 0.3 % above the
    // plain runs' (Bavarian et al.'s "for free" would be 0) and an infilling loss on a law of
    // its own, lower than the causal one (the suffix tells the middle a lot).
    let (java, infill) = (LANGS[2].1, TrueLaw { e: 0.45, a: 50.0, b: 55.0, alpha: 0.32, beta: 0.34 });
    for &n in &SIZES {
        for &d in &TOKENS {
            seed += 1;
            let loss = java.predict(n, d) * 1.003 * (1.0 + 0.006 * noise(seed));
            let mut r = row(sweep, "done", "java", "dense", n, d, 3e-3, 32, 50, Some(loss));
            r.trial_id = id(&format!("{sweep}/java/fim0.5/{n}/{d}"));
            (r.fim_rate, r.fim_spm_rate) = (0.5, 0.5);
            (r.val_fim_loss, r.val_fim_loss_se) =
                (Some(infill.predict(n, d) * (1.0 + 0.006 * noise(seed + 7))), Some(0.01));
            results.push(r);
        }
    }
    // Both architectures over learning rate × batch at one size and budget, MoE the more
    // sensitive (its bowl twice as steep); the MoE's most aggressive corner diverges.
    let (active, d) = (SIZES[1], TOKENS[2]);
    for (arch, steepness) in [("dense", 0.02), ("moe", 0.04)] {
        let n = if arch == "moe" { active * 4.0 } else { active };
        let best = results
            .iter()
            .find(|r| r.arch.as_str() == arch && r.language == "python" && r.n_params == n && r.tokens == d)
            .and_then(|r| r.val_loss)
            .expect("the grid's centre was trained");
        for lr in [1e-3, 3e-3, 1e-2] {
            for batch in [32, 64] {
                if (lr, batch) == (3e-3, 32) {
                    continue;
                }
                let off = (lr / 3e-3f64).log10().powi(2) + if batch == 64 { 0.3 } else { 0.0 };
                let diverges = arch == "moe" && lr == 1e-2 && batch == 64;
                results.push(row(
                    sweep,
                    if diverges { "diverged" } else { "done" },
                    "python",
                    arch,
                    n,
                    d,
                    lr,
                    batch,
                    50,
                    (!diverges).then_some(best * (1.0 + steepness * off)),
                ));
            }
        }
    }
    // A language with too few finished trials to fit.
    let go = TrueLaw { e: 0.8, a: 55.0, b: 50.0, alpha: 0.33, beta: 0.31 };
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
    results.push(row(sweep, "failed", "rust", "dense", 1e7, 5e6, 3e-3, 32, 50, None));
    let mut fit_file = fit(sweep, &results);
    let n_fits = vec![fit_by(sweep, &results, "n_params_active")];
    let fim_fit = Some(fit_loss(sweep, &results, "n_params", "val_fim_loss"));

    // The learning-rate × batch slices are fitted apart, as the lab's LR sweeps are, so that
    // python's law (whose values the tests check) comes from the N × D grid alone: with the grid
    // trials at their budgets, python's hyperparameter laws come from them.
    let slices = hyper_slices(sweep, &py);
    let at_slice = |r: &&ResultRow| {
        r.language == "python"
            && r.arch == Arch::Dense
            && slices.iter().any(|s| (s.n_params, s.tokens) == (r.n_params, r.tokens))
    };
    let slice_rows: Vec<ResultRow> = results.iter().filter(at_slice).cloned().chain(slices.iter().cloned()).collect();
    let mut hyper_fit = fit(sweep, &slice_rows);
    fn python(f: &mut FitFile) -> &mut codescale_fit::GroupFit {
        f.groups.iter_mut().find(|g| g.group == "python").expect("python is fitted")
    }
    let from = python(&mut hyper_fit);
    let (hyper, lr_rule) = (from.hyper.take(), from.lr_rule.take());
    let to = python(&mut fit_file);
    (to.hyper, to.lr_rule) = (hyper, lr_rule);
    fit_file.excluded.extend(hyper_fit.excluded);
    results.extend(slices);

    let provenance = results.iter().enumerate().map(|(i, r)| (r.trial_id.clone(), provenance(i))).collect();
    ReportInput {
        sweep: sweep.into(),
        results,
        curves,
        fit: Some(fit_file),
        n_fits,
        fim_fit,
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

/// Two budgets of python trained over learning rate × batch × warmup, without the grid trial
/// (3e-3, 32, 50) they share with the N × D grid; the most aggressive corner diverges.
fn hyper_slices(sweep: &str, t: &TrueLaw) -> Vec<ResultRow> {
    let mut results = Vec::new();
    for (si, &(n, d)) in [(3.5e5f64, 1e6f64), (1e6, 5e6)].iter().enumerate() {
        let c = 6.0 * n * d;
        let lr_opt = 2.5e-3 * (c / 2.1e12).powf(-0.125);
        let b_opt = 4096.0 * (c / 2.1e12).powf(0.33);
        for (i, &lr) in [3e-4, 1e-3, 3e-3, 1e-2, 3e-2].iter().enumerate() {
            for (j, &batch) in [16i64, 32, 64].iter().enumerate() {
                for &warmup in &[50i64, 200] {
                    let bt = (batch * SEQ_LEN) as f64;
                    if lr == 3e-3 && batch == 32 && warmup == 50 {
                        continue;
                    }
                    if lr == 3e-2 && batch == 16 {
                        // It stopped a fifth of the way in.
                        results.push(row(sweep, "diverged", "python", "dense", n, d * 0.2, lr, batch, warmup, None));
                        continue;
                    }
                    let penalty = 0.045 * (lr / lr_opt).ln().powi(2)
                        + 0.02 * (bt / b_opt).ln().powi(2)
                        + if warmup == 50 && lr >= 1e-2 { 0.06 } else { 0.0 };
                    let loss = (t.predict(n, d) + penalty)
                        * (1.0 + 0.002 * noise(7000 + si as u64 * 100 + i as u64 * 10 + j as u64 + warmup as u64));
                    results.push(row(sweep, "done", "python", "dense", n, d, lr, batch, warmup, Some(loss)));
                }
            }
        }
    }
    results
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
    ReportInput {
        sweep: sweep.into(),
        fit: Some(fit(sweep, &results)),
        results,
        curves: Vec::new(),
        n_fits: Vec::new(),
        fim_fit: None,
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
