//! The GPU path, tested where there is no GPU: burn's wgpu backend runs the same cubecl kernels
//! as CUDA (composed ops, no fused CPU kernels), here on whatever Vulkan adapter the machine
//! has. In CI that is lavapipe, Mesa's Vulkan driver for the CPU (`mesa-vulkan-drivers`,
//! installed by scripts/setup). Built only with the feature:
//!
//!   cargo test --workspace --features codescale-train/wgpu --test gpu
//!
//! For a tiny dense and a tiny MoE trial, the checks of bench/gpu.sh, with its tolerances: the
//! loss falls; the same seed gives the same curve; a run killed part way resumes to the curve
//! of an uninterrupted one; bf16 agrees with f32; wgpu computes what Flex computes from the same
//! weights and batches. Each test prints its measurements as rows of docs/guide/gpu.md's table.
//!
//! What the adapter cannot run is said, not skipped in silence: bf16 needs bf16 arithmetic,
//! which cubecl's WGSL compiler does not have, so on wgpu the trial is refused as bad input
//! (the test checks that refusal and says the comparison did not run). Without any adapter the
//! tests skip with a note, or fail under `CODESCALE_REQUIRE_ALL=1` (set by .ci/run).

mod common;

use std::path::Path;

use codescale_core::record::CURVE_FILE;
use codescale_core::{is_bad_input, Arch, Backend, CurvePoint, Precision, Status, TrialConfig, TrialRecord};
use codescale_data::Corpus;
use codescale_train::backend::{device_name, wgpu::adapters};
use codescale_train::{train_trial, RunOptions};

// bench/gpu_run.py's tolerances, in nats of the mean next-token loss. Same seed and resumed:
// kernels may add in another order from run to run (atomics), which steps amplify.
const REPRO_TOL: f64 = 0.02;
/// bf16 multiplies against f32, final validation loss.
const BF16_TOL: f64 = 0.05;
/// Against Flex: the first step's loss (same weights, same batch) agrees to rounding; at the
/// end the runs have drifted apart by accumulated rounding.
const FLEX_FIRST_STEP_TOL: f64 = 1e-3;
const FLEX_TOL: f64 = 0.05;
/// From the first steps' training loss (≈ ln 257 = 5.55) to the last ones'.
const MIN_DROP: f64 = 1.0;

/// Tiny, because lavapipe multiplies matrices at well under a GFLOP/s: d32, one layer, 256
/// tokens a step.
const STEPS: usize = 40;
/// The run killed after this step resumes from its checkpoint at step 20.
const STOP_AT: usize = 25;

fn tiny(arch: Arch, backend: Backend, precision: Precision) -> TrialConfig {
    let tokens = STEPS * 8 * 32;
    common::config(STEPS, |s| {
        s.model.name = Some("d32-l1".into());
        s.model.n_heads = Some(2);
        s.data.seq_len = Some(32);
        s.optimizer.batch_size = Some(8);
        s.schedule.tokens = Some(tokens as f64);
        s.optimizer.lr = Some(1e-2.into());
        s.schedule.warmup = Some(4.0);
        s.eval.eval_tokens = Some(2048);
        s.eval.eval_interval = Some(20);
        s.runtime.checkpoint_interval = Some(10);
        s.runtime.seed = Some(1);
        s.runtime.backend = Some(backend);
        s.runtime.precision = Some(precision);
        if arch == Arch::Moe {
            s.model.arch = Some(Arch::Moe);
            s.model.n_experts = Some(4);
            s.model.top_k = Some(2);
        }
    })
}

/// Whether there is an adapter to test on; without one the test is skipped, or fails where
/// `CODESCALE_REQUIRE_ALL=1` (CI) forbids skipping.
fn adapter_here() -> bool {
    let listed = adapters();
    if let Some((info, _)) = listed.first() {
        eprintln!(
            "wgpu adapter 0: {} ({:?}, driver {} {})",
            info.name, info.device_type, info.driver, info.driver_info
        );
        return true;
    }
    assert!(
        std::env::var("CODESCALE_REQUIRE_ALL").as_deref() != Ok("1"),
        "wgpu finds no Vulkan adapter and CODESCALE_REQUIRE_ALL=1 forbids skipping the GPU checks: install lavapipe (Debian: mesa-vulkan-drivers; scripts/setup does)"
    );
    eprintln!("skipped: wgpu finds no Vulkan adapter (install mesa-vulkan-drivers for lavapipe)");
    false
}

struct Trained {
    record: TrialRecord,
    curve: Vec<CurvePoint>,
}

fn train(dir: &Path, config: &TrialConfig, corpus: &Corpus, stop_after_steps: Option<usize>) -> Trained {
    let t = std::time::Instant::now();
    let opts = RunOptions { quiet: true, stop_after_steps, ..Default::default() };
    let record = train_trial(dir, config, corpus, &opts)
        .unwrap_or_else(|e| panic!("training {} on {}: {e:#}", dir.display(), config.runtime.backend.as_str()));
    let curve = codescale_table::read_rows(&dir.join(CURVE_FILE)).unwrap();
    eprintln!(
        "  trained {} ({}): {} steps in {:.1} s",
        dir.file_name().unwrap().to_string_lossy(),
        config.runtime.backend.as_str(),
        record.metrics.steps,
        t.elapsed().as_secs_f64()
    );
    Trained { record, curve }
}

fn final_val(curve: &[CurvePoint]) -> f64 {
    curve.last().and_then(|p| p.val_loss).expect("a final evaluation")
}

/// The largest step-by-step difference of the training losses (infinite when the lengths
/// differ), and whether the curves are bit for bit the same.
fn gap(a: &[CurvePoint], b: &[CurvePoint]) -> (f64, bool) {
    if a.len() != b.len() {
        return (f64::INFINITY, false);
    }
    let max = a.iter().zip(b).map(|(p, q)| (p.train_loss - q.train_loss).abs()).fold(0.0, f64::max);
    (max, a.iter().zip(b).all(|(p, q)| p.train_loss.to_bits() == q.train_loss.to_bits()))
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// One check's outcome, printed as a row of docs/guide/gpu.md's table.
struct Row {
    check: &'static str,
    ok: bool,
    detail: String,
}

/// Every check of bench/gpu.sh on one architecture; prints them all before failing on any.
fn checks(arch: Arch) {
    if !adapter_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let corpus = common::synthetic_corpus(tmp.path());
    let name = if arch == Arch::Moe { "moe" } else { "dense" };
    let f32 = tiny(arch, Backend::Wgpu, Precision::F32);
    let device = device_name(&f32).unwrap();
    let mut rows = Vec::new();

    let a = train(&tmp.path().join("a"), &f32, &corpus, None);
    let losses: Vec<f64> = a.curve.iter().map(|p| p.train_loss).collect();
    let (first, last) = (mean(losses[..3].iter().copied()), mean(losses[STEPS - 5..].iter().copied()));
    rows.push(Row {
        check: "the loss falls",
        ok: a.record.status == Status::Done && a.curve.len() == STEPS && first - last >= MIN_DROP,
        detail: format!(
            "train loss {first:.3} (steps 1-3) → {last:.3} (last 5), val {:.3}; needs a drop ≥ {MIN_DROP}",
            final_val(&a.curve)
        ),
    });
    assert_eq!(a.record.provenance.device, device, "provenance names the adapter and its driver");

    let b = train(&tmp.path().join("b"), &f32, &corpus, None);
    let (d, bits) = gap(&a.curve, &b.curve);
    let dv = (final_val(&a.curve) - final_val(&b.curve)).abs();
    rows.push(Row {
        check: "same seed, same curve",
        ok: d <= REPRO_TOL && dv <= REPRO_TOL,
        detail: format!("max |Δ train loss| {d:.1e} over {STEPS} steps, |Δ final val| {dv:.1e} (tolerance {REPRO_TOL}); bit-identical: {bits}"),
    });

    let dir = tmp.path().join("resumed");
    let stopped = train(&dir, &f32, &corpus, Some(STOP_AT));
    let kept = dir.join("checkpoint/state.bin").exists() && stopped.record.status == Status::Running;
    let c = train(&dir, &f32, &corpus, None);
    let (d, bits) = gap(&a.curve, &c.curve);
    let dv = (final_val(&a.curve) - final_val(&c.curve)).abs();
    let resumed = c.record.notes.iter().any(|n| n.contains("resumed from its checkpoint at step 20"));
    rows.push(Row {
        check: "killed and resumed = uninterrupted",
        ok: kept && resumed && c.record.status == Status::Done && d <= REPRO_TOL && dv <= REPRO_TOL,
        detail: format!("killed after step {STOP_AT}, resumed at 20: {resumed}; max |Δ train loss| {d:.1e}, |Δ final val| {dv:.1e} (tolerance {REPRO_TOL}); bit-identical: {bits}"),
    });

    let bf16 = tiny(arch, Backend::Wgpu, Precision::Bf16);
    rows.push(match device_name(&bf16) {
        Ok(_) => {
            let h = train(&tmp.path().join("bf16"), &bf16, &corpus, None);
            let dv = (final_val(&a.curve) - final_val(&h.curve)).abs();
            Row {
                check: "bf16 agrees with f32",
                ok: dv <= BF16_TOL,
                detail: format!(
                    "final val f32 {:.4}, bf16 {:.4}: |Δ| {dv:.1e} (tolerance {BF16_TOL})",
                    final_val(&a.curve),
                    final_val(&h.curve)
                ),
            }
        }
        Err(e) => {
            // What this adapter cannot run is bad input before anything is trained, naming the
            // key: the check is not run here, and says so.
            let message = format!("{e:#}");
            Row {
                check: "bf16 agrees with f32",
                ok: is_bad_input(&e) && message.contains("`precision` = \"bf16\""),
                detail: format!("not run on this adapter, refused as bad input: {message}"),
            }
        }
    });

    // MoE routing is discontinuous: a last-bit difference flips some token's expert and the runs
    // part (bench/gpu_run.py's MOE_SEEDS), so for MoE the end is compared as the mean of the
    // paired differences over four seeds.
    let seeds: &[u64] = if arch == Arch::Moe { &[1, 2, 3, 4] } else { &[1] };
    let (mut first_step, mut gaps, mut max_gap) = (0.0f64, Vec::new(), 0.0f64);
    for &seed in seeds {
        let on = |backend| {
            let mut c = tiny(arch, backend, Precision::F32);
            c.runtime.seed = seed;
            c
        };
        let wgpu = if seed == 1 {
            None
        } else {
            Some(train(&tmp.path().join(format!("s{seed}")), &on(Backend::Wgpu), &corpus, None))
        };
        let wgpu = wgpu.as_ref().map_or(&a.curve, |t| &t.curve);
        let flex = train(&tmp.path().join(format!("flex-s{seed}")), &on(Backend::Flex), &corpus, None);
        first_step = first_step.max((wgpu[0].train_loss - flex.curve[0].train_loss).abs());
        gaps.push(final_val(wgpu) - final_val(&flex.curve));
        max_gap = max_gap.max(gap(wgpu, &flex.curve).0);
    }
    let dv = mean(gaps.iter().copied()).abs();
    let by_seed: Vec<String> = gaps.iter().map(|g| format!("{g:+.1e}")).collect();
    rows.push(Row {
        check: "wgpu computes what Flex computes",
        ok: first_step <= FLEX_FIRST_STEP_TOL && dv <= FLEX_TOL,
        detail: format!(
            "step 1 |Δ| {first_step:.1e} (tolerance {FLEX_FIRST_STEP_TOL}); final val wgpu − flex by seed {}: |mean| {dv:.1e} (tolerance {FLEX_TOL}); max |Δ train loss| {max_gap:.1e}",
            by_seed.join(" ")
        ),
    });

    eprintln!("\n{name} on {device}:");
    for r in &rows {
        eprintln!("{} {name}: {}: {}", if r.ok { "PASS" } else { "FAIL" }, r.check, r.detail);
    }
    let failed: Vec<&str> = rows.iter().filter(|r| !r.ok).map(|r| r.check).collect();
    assert!(failed.is_empty(), "{name} on wgpu failed: {}", failed.join(", "));
}

#[test]
fn a_tiny_dense_model_on_wgpu_passes_the_gpu_checks() {
    checks(Arch::Dense);
}

#[test]
fn a_tiny_moe_on_wgpu_passes_the_gpu_checks() {
    checks(Arch::Moe);
}

/// Without a Vulkan driver the trial is bad input (exit 2 from the CLI, before a corpus is
/// built) naming the key and what was found, not a panic inside cubecl. Run in a child process
/// of this test binary whose Vulkan loader is pointed at no driver.
#[test]
fn no_adapter_is_bad_input_naming_the_key() {
    if std::env::var_os("CODESCALE_TEST_NO_ADAPTER").is_some() {
        let e = device_name(&tiny(Arch::Dense, Backend::Wgpu, Precision::F32)).unwrap_err();
        let message = format!("{e:#}");
        assert!(is_bad_input(&e), "{message}");
        assert!(
            message.contains("`backend` = \"wgpu\"")
                && message.contains("no Vulkan adapter")
                && message.contains("mesa-vulkan-drivers"),
            "{message}"
        );
        println!("MESSAGE: {message}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_adapter_is_bad_input_naming_the_key", "--nocapture", "--test-threads", "1"])
        .env("CODESCALE_TEST_NO_ADAPTER", "1")
        // The Vulkan loader's list of drivers (VK_DRIVER_FILES since loader 1.3.234, and its
        // older name): a file that is not there, so the loader finds none.
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("MESSAGE: "), "{text}");
    eprintln!("{}", &text[text.find("MESSAGE: ").unwrap()..].lines().next().unwrap());
}

/// `device` counts the adapters as codescale lists them; one past the end is bad input that
/// lists what is there.
#[test]
fn an_adapter_that_is_not_there_is_bad_input_listing_those_that_are() {
    if !adapter_here() {
        return;
    }
    let mut config = tiny(Arch::Dense, Backend::Wgpu, Precision::F32);
    config.runtime.device = Some(adapters().len());
    let e = device_name(&config).unwrap_err();
    let message = format!("{e:#}");
    assert!(
        is_bad_input(&e) && message.contains(&format!("`device` = {}", adapters().len())) && message.contains("0: "),
        "{message}"
    );
}
