#!/usr/bin/env python3
"""The GPU side of bench/gpu.sh: runs on the GPU machine from the bundle gpu.sh built (the
release `codescale` built with `--features cuda,wgpu` (or one of them), a small corpus, this file
and bench/torch_reference.py). Needs Python 3, with PyTorch for the bench phase; no Rust, no
network, no numpy.

  python3 bench/gpu_run.py --bundle DIR --results DIR [--phase checks|bench|all] [--backend cuda,wgpu]

Each backend of --backend (default: both) is checked and measured in turn: `cuda`, and `wgpu`
(burn's wgpu backend: the same cubecl kernels compiled to WGSL, on the machine's Vulkan driver;
it needs the Vulkan loader and the GPU's Vulkan driver, and codescale's preflight says what is
missing). A backend the binary was built without, or that the machine cannot run, fails its
checks with codescale's message and the other backend goes on.

1. Checks, on tiny dense and MoE trials trained on each backend:
   - the loss falls;
   - the same seed gives the same curve (within REPRO_TOL);
   - a run stopped as if killed and started again resumes from its checkpoint and ends where an
     uninterrupted run ends (within REPRO_TOL);
   - bf16 autocast ends within BF16_TOL of f32 (wgpu: cubecl's WGSL has no bf16, so codescale
     refuses it as bad input; the check says so and counts as not run, N/A);
   - the backend computes what the CPU (Flex) computes from the same weights and batches
     (FLEX_FIRST_STEP_TOL, FLEX_TOL).
   MoE's two comparisons (bf16, Flex) use the mean over MOE_SEEDS of the paired differences:
   see MOE_SEEDS for why one run's end says little. The trainings of one trial shape are
   independent and run --jobs at a time.
2. Throughput of the ~20M and ~100M dense ladder shapes, f32 and bf16, against
   bench/torch_reference.py with the same shapes (eager, then torch.compile), and MFU.

Everything is written under --results as it comes (results.json, table.md and each trial's
folder), so a run cut short still leaves what it measured. Exits 0 when no check failed, 1 when
one failed, 2 when the machine cannot run the bench (CUDA asked for and no nvidia-smi, no
PyTorch for the bench phase, no CUDA in PyTorch).

--cpu-dry-run rehearses all of it on the CPU, so the plumbing can be tried where there is no
GPU: Flex stands in for CUDA, wgpu runs on the CPU's Vulkan adapter (lavapipe) with the smaller
check shape of lab/train/tests/gpu.rs, PyTorch runs on the CPU, bench shapes are tiny and there
is no MFU; its figures mean nothing.
"""
import argparse
import ctypes
import glob
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Tolerances, in nats of the mean next-token loss (bytes: a uniform guess is ln 257 = 5.55).
# Same seed, same machine: cuBLAS-free cubecl kernels may still add in a different order from
# run to run (atomics in scatter-adds such as the embedding's backward); 80 steps of a tiny
# model amplify a last-bit difference to well under this.
REPRO_TOL = 0.02
# bf16 multiplies against f32, after 80 steps: rounding of every matmul input to 8 bits of
# mantissa moves a tiny dense model's loss by about 0.2 % (0.001-0.008 nats over seeds 1-5).
BF16_TOL = 0.05
# CUDA against Flex, f32: the first step's loss (same weights, same batch) agrees to rounding;
# at the end the runs have drifted apart by accumulated rounding, as two GPUs' would.
FLEX_FIRST_STEP_TOL = 1e-3
FLEX_TOL = 0.05
# The loss must fall by this much from the first steps to the last (from ~5.5 to ~3 on code).
MIN_DROP = 1.0
# MoE routing is discontinuous: a last-bit difference flips some token's expert, and from then on
# two runs part (after about 10 steps here). Runs that differ only in the order f32 sums are
# added in (Flex's fused MoE kernels against the composed ops the GPU backends run) end the tiny
# MoE 0.005-0.106 nats apart over seeds 1-10 (mean 0.037), as far apart as bf16 against f32
# (0.004-0.101, mean 0.043): one run's end cannot tell bf16's effect, or a backend's, from that
# scatter. MoE's bf16 and Flex comparisons therefore take the mean of the paired differences over
# these seeds (scatter of the mean ≈ 0.045 / 2), against the same tolerances.
MOE_SEEDS = [1, 2, 3, 4]

# Dense bf16 tensor-core peaks without sparsity, TFLOP/s, from NVIDIA's datasheets. The first
# pattern found in nvidia-smi's name wins, so specific names come before general ones.
PEAKS = [
    ("H200 NVL", 835.0),
    ("H200", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM5 (nvidia-smi: "NVIDIA H100 80GB HBM3")
    ("A100", 312.0),
]

CHECK = """corpus = "recipe.toml"
language = "python"
model = "{model}"
seq_len = {seq}
batch_size = {batch}
tokens = {tokens}
lr = {lr}
warmup = {warmup}
eval_tokens = {eval_tokens}
eval_interval = {eval_interval}
checkpoint_interval = {ckpt}
seed = 1
backend = "{backend}"
"""
# The check trials: killed after `stop`, a run resumes from the checkpoint before it and
# recomputes the steps in between.
TINY = dict(model="d64-l2", seq=128, batch=16, steps=80, stop=50, ckpt=20, eval_interval=40, eval_tokens=16384, lr=3e-3, warmup=0.1, extra="")
# lab/train/tests/gpu.rs's shape, for wgpu on lavapipe in a dry run (lavapipe multiplies
# matrices at well under a GFLOP/s).
SMALL = dict(model="d32-l1", seq=32, batch=8, steps=40, stop=25, ckpt=10, eval_interval=20, eval_tokens=2048, lr=1e-2, warmup=4, extra="n_heads = 2\n")

MOE = 'arch = "moe"\nn_experts = 4\ntop_k = 2\n'

BENCH = """corpus = "recipe.toml"
language = "python"
model = "{model}"
seq_len = {seq}
batch_size = {batch}
tokens = {tokens}
lr = 1e-3
warmup = 0.1
eval_tokens = {seq}
eval_interval = 1000000
seed = 1
backend = "{backend}"
precision = "{precision}"
"""
# The ladder shapes nearest 20M and 100M non-embedding parameters (lab/core/src/shape.rs).
BENCH_MODELS = [("~20M", "d384-l12"), ("~100M", "d640-l20")]
BENCH_SEQ, BENCH_BATCH = 512, 32  # 16,384 tokens a step
WARM_STEPS, TIMED_STEPS = 10, 30

DRY_BENCH_MODELS = [("tiny", "d64-l2")]
DRY_SEQ, DRY_BATCH, DRY_WARM, DRY_TIMED = 128, 8, 2, 5


class Bench:
    def __init__(self, args):
        self.bundle = Path(args.bundle).resolve()
        self.results = Path(args.results).resolve()
        self.results.mkdir(parents=True, exist_ok=True)
        self.dry = args.cpu_dry_run
        # In a dry run Flex stands in for CUDA; wgpu stays wgpu (lavapipe on the CPU).
        self.backends = [("flex" if self.dry and b == "cuda" else b) for b in args.backend]
        self.phase = args.phase
        self.bin = str(self.bundle / "bin" / "codescale")
        self.env = dict(os.environ)
        # libwayland complains on every wgpu start when XDG_RUNTIME_DIR is unset.
        self.env.setdefault("XDG_RUNTIME_DIR", str(self.results))
        self.out = {"device": {}, "backends": self.backends, "checks": [], "bench": [], "provenance_device": {}}
        self.timeout = args.timeout
        self.jobs = args.jobs
        self.torch_cuda = False

    def save(self):
        (self.results / "results.json").write_text(json.dumps(self.out, indent=2) + "\n")

    # --- the machine ---------------------------------------------------------------------

    def preflight(self):
        d = self.out["device"]
        d["host"] = platform.node()
        build = self.bundle / "BUILD"
        d["codescale"] = build.read_text().strip() if build.exists() else self.run([self.bin, "--version"], check=True).strip()
        try:
            import torch
        except ImportError:
            if self.phase != "checks":
                fail(2, "PyTorch is not importable by this python3: bench/torch_reference.py needs it (--phase checks runs without)")
            torch = None
        d["torch"] = torch.__version__ if torch else "not installed"
        if self.dry or "cuda" not in self.backends:
            d["name"] = "cpu (dry run: figures mean nothing)"
            d["peak_tflops"] = None
            self.save()
            return
        if not shutil.which("nvidia-smi"):
            fail(2, "nvidia-smi not found: this is the GPU side of bench/gpu.sh and needs an NVIDIA GPU with its driver (--cpu-dry-run rehearses it on the CPU)")
        query = self.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], check=True)
        gpus = [line.split(", ") for line in query.strip().splitlines()]
        if not gpus:
            fail(2, "nvidia-smi lists no GPU")
        d["name"], d["driver"], d["memory"] = gpus[0][0], gpus[0][1], gpus[0][2]
        header = self.run(["nvidia-smi"], check=True)
        m = re.search(r"CUDA Version:\s*([0-9.]+)", header)
        d["cuda"] = m.group(1) if m else "unknown"
        d["peak_tflops"], d["peak_source"] = None, "unknown GPU: no MFU"
        for pattern, peak in PEAKS:
            if pattern in d["name"]:
                d["peak_tflops"], d["peak_source"] = peak, f"{pattern}: {peak:.0f} TFLOP/s dense bf16"
                break
        self.torch_cuda = bool(torch) and torch.cuda.is_available()
        if torch and not self.torch_cuda:
            fail(2, f"PyTorch {torch.__version__} sees no CUDA device (a CPU-only build?): the reference cannot run")
        self.find_cuda_files()
        self.save()

    def find_cuda_files(self):
        """Points codescale at NVRTC and the CUDA headers its kernels include: a CUDA toolkit if
        there is one, else the ones PyTorch's pip wheels ship (site-packages/nvidia/...)."""
        d = self.out["device"]
        roots = [Path(p) for p in sys.path if p.endswith("-packages")]
        wheels = [r / "nvidia" for r in roots if (r / "nvidia").is_dir()]
        if "CUDA_PATH" not in self.env and not Path("/usr/local/cuda/include/cuda_runtime.h").exists():
            dirs = [Path(p) for w in wheels for p in sorted(glob.glob(str(w / "*" / "include")))]
            whole = [p for p in dirs if (p / "cuda_runtime.h").exists() and (p / "cuda_bf16.h").exists() and (p / "mma.h").exists()]
            if whole:  # cu13 wheels: one folder with everything (nvidia/cu13/include)
                self.env["CUDA_PATH"] = str(whole[0].parent)
            elif dirs:  # cu12 wheels: one include folder per component; merged by links
                merged = self.results / "cuda" / "include"
                merged.mkdir(parents=True, exist_ok=True)
                for inc in dirs:
                    for entry in inc.iterdir():
                        link = merged / entry.name
                        if not link.exists():
                            link.symlink_to(entry)
                self.env["CUDA_PATH"] = str(merged.parent)
        d["cuda_path"] = self.env.get("CUDA_PATH", "/usr/local/cuda (default)")
        libs = sorted({str(Path(p).parent) for w in wheels for p in glob.glob(str(w / "*" / "lib" / "libnvrtc.so*"))})
        if libs:
            self.env["LD_LIBRARY_PATH"] = ":".join(libs + [self.env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
        d["nvrtc"] = "not found (codescale will say so)"
        for lib in [p for ld in libs for p in sorted(glob.glob(ld + "/libnvrtc.so*"))] + ["libnvrtc.so"]:
            try:
                nvrtc = ctypes.CDLL(lib)
            except OSError:
                continue
            major, minor = ctypes.c_int(), ctypes.c_int()
            nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
            d["nvrtc"] = f"{major.value}.{minor.value} ({lib})"
            break

    # --- running things ------------------------------------------------------------------

    def run(self, cmd, check=False, timeout=None):
        """stdout of `cmd` run in the bundle; on failure, raises with its output."""
        p = subprocess.run(cmd, cwd=self.bundle, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-4000:]}")
        return p.stdout if check else p

    def train(self, name, toml, sets=(), stop_after=None):
        """Trains the trial file `toml` into results/trials/<name>; its record and curve."""
        trial = self.results / "trials" / f"{name}.toml"
        trial.parent.mkdir(parents=True, exist_ok=True)
        trial.write_text(toml)
        out = self.results / "trials" / name
        cmd = [self.bin, "train", str(trial), "--out", str(out), "--quiet"]
        for s in sets:
            cmd += ["--set", s]
        if stop_after:
            cmd += ["--stop-after-steps", str(stop_after)]
        t0 = time.time()
        p = self.run(cmd, timeout=self.timeout)
        if p.returncode != 0:
            raise TrainError(p.returncode, f"codescale train {name} exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-4000:]}")
        self.run([self.bin, "export", str(out), "--format", "jsonl"], check=True)
        record = json.loads((out / "trial.json").read_text())
        curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
        print(f"  trained {name}: {len(curve)} steps in {time.time() - t0:.0f} s", flush=True)
        return record, curve

    # --- 1. checks -------------------------------------------------------------------------

    def check(self, name, ok, detail):
        """ok: True (PASS), False (FAIL) or None (N/A: the backend cannot run it, as it says)."""
        self.out["checks"].append({"check": name, "ok": ok, "detail": detail})
        self.save()
        print(f"{verdict(ok)}  {name}: {detail}", flush=True)

    def checks(self):
        for backend in self.backends:
            shape = SMALL if self.dry and backend == "wgpu" else TINY
            for arch, extra in [("dense", ""), ("moe", MOE)]:
                toml = CHECK.format(tokens=shape["steps"] * shape["batch"] * shape["seq"], backend=backend, **shape) + shape["extra"] + extra
                try:
                    self.check_arch(backend, arch, toml, shape)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    self.check(f"{backend} {arch}: trains", False, str(e).strip().splitlines()[-1][:300])
                    print(e, file=sys.stderr)

    def check_arch(self, backend, arch, toml, shape):
        name = f"{backend} {arch}"
        steps, stop = shape["steps"], shape["stop"]
        restored = stop // shape["ckpt"] * shape["ckpt"]
        seeds = MOE_SEEDS if arch == "moe" else [1]
        prefix = f"{backend}-{arch}"

        def resumed():
            """Stopped as if killed after `stop` steps, then started again: both halves."""
            first = self.train(f"{prefix}-resume", toml, stop_after=stop)
            left = (self.results / "trials" / f"{prefix}-resume" / "checkpoint").is_dir()
            return first, left, self.train(f"{prefix}-resume", toml)

        # The trainings are independent (the resumed pair runs in order within one job): they
        # run --jobs at a time; the checks below read them in a fixed order.
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            a_job = pool.submit(self.train, f"{prefix}-a", toml)
            b_job = pool.submit(self.train, f"{prefix}-b", toml)
            resume_job = pool.submit(resumed)
            f32_jobs = {s: pool.submit(self.train, f"{prefix}-s{s}", toml, [f"seed={s}"]) for s in seeds[1:]}
            bf16_jobs = {s: pool.submit(self.train, f"{prefix}-bf16-s{s}", toml, ["precision=bf16", f"seed={s}"]) for s in seeds}
            flex_jobs = {} if backend == "flex" else {
                s: pool.submit(self.train, f"{prefix}-flex-s{s}", toml, ["backend=flex", f"seed={s}"]) for s in seeds}

            rec_a, a = a_job.result()
            losses = [p["train_loss"] for p in a]
            first, last = mean(losses[:3]), mean(losses[-10:])
            self.check(f"{name}: the loss falls", len(a) == steps and first - last >= MIN_DROP and rec_a["status"] == "done",
                       f"train loss {first:.3f} (steps 1-3) → {last:.3f} (last 10), val {rec_a['metrics']['val_loss']:.3f}; needs a drop ≥ {MIN_DROP}")
            self.out["provenance_device"].setdefault(backend, rec_a["provenance"]["device"])

            _, b = b_job.result()
            d, bits = curve_gap(a, b), identical(a, b)
            dv = abs(final_val(a) - final_val(b))
            self.check(f"{name}: same seed, same curve", d <= REPRO_TOL and dv <= REPRO_TOL,
                       f"max |Δ train loss| {d:.2e} over {len(a)} steps, |Δ final val| {dv:.2e} (tolerance {REPRO_TOL}); bit-identical: {bits}")

            (rec_stop, c_stop), ckpt, (rec_c, c) = resume_job.result()
            kept = c[:restored] == c_stop[:restored]  # restored from the checkpoint, wall times included
            d = curve_gap(a, c)
            dv = abs(final_val(a) - final_val(c))
            # The stopped run's curve reaches `stop`; its trial.json is the last checkpoint's.
            done = len(c_stop) == stop and rec_c["status"] == "done" and len(c) == steps
            self.check(f"{name}: killed at step {stop}, resumed, matches", ckpt and done and kept and d <= REPRO_TOL and dv <= REPRO_TOL,
                       f"checkpoint left: {ckpt}; steps 1-{restored} restored as saved: {kept}; against the uninterrupted run: max |Δ train loss| {d:.2e}, |Δ final val| {dv:.2e} (tolerance {REPRO_TOL})")

            # MoE: the same comparisons on more seeds, paired by seed (see MOE_SEEDS).
            f32 = {1: a, **{s: job.result()[1] for s, job in f32_jobs.items()}}
            over = f" (mean over seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else ""

            bf16, refused = {}, None
            for seed, job in bf16_jobs.items():
                try:
                    bf16[seed] = job.result()[1]
                except TrainError as e:
                    # wgpu refuses bf16 it cannot compute as bad input (exit 2) naming the key.
                    if backend == "wgpu" and e.code == 2 and "`precision`" in str(e):
                        refused = next((l for l in str(e).splitlines() if "`precision`" in l), str(e)).strip()
                        continue
                    raise
            if refused:
                self.check(f"{name}: bf16 agrees with f32", None, f"not run: {refused[:400]}")
            else:
                gaps = [final_val(bf16[s]) - final_val(f32[s]) for s in seeds]
                dv = abs(mean(gaps))
                self.check(f"{name}: bf16 agrees with f32", dv <= BF16_TOL and all(len(h) == shape["steps"] for h in bf16.values()),
                           f"final val f32 {final_val(a):.4f}, bf16 {final_val(bf16[1]):.4f}; bf16 − f32 by seed {' '.join(f'{g:+.3f}' for g in gaps)}: |mean| {dv:.2e}{over} (tolerance {BF16_TOL})")

            if flex_jobs:
                flex = {s: job.result()[1] for s, job in flex_jobs.items()}
                d1 = max(abs(f32[s][0]["train_loss"] - flex[s][0]["train_loss"]) for s in seeds)
                gaps = [final_val(f32[s]) - final_val(flex[s]) for s in seeds]
                dv = abs(mean(gaps))
                self.check(f"{name}: computes what the CPU (Flex) computes", d1 <= FLEX_FIRST_STEP_TOL and dv <= FLEX_TOL,
                           f"step 1 |Δ| {d1:.2e} (tolerance {FLEX_FIRST_STEP_TOL}); {backend} − flex final val by seed {' '.join(f'{g:+.3f}' for g in gaps)}: |mean| {dv:.2e}{over} (tolerance {FLEX_TOL})")

    # --- 2. throughput ---------------------------------------------------------------------

    def bench(self, compile_too):
        models = DRY_BENCH_MODELS if self.dry else BENCH_MODELS
        seq, batch, warm, timed = (DRY_SEQ, DRY_BATCH, DRY_WARM, DRY_TIMED) if self.dry else (BENCH_SEQ, BENCH_BATCH, WARM_STEPS, TIMED_STEPS)
        shard = sorted((self.bundle / "corpus").glob("*/python.train.bin"))[0]
        peak = self.out["device"].get("peak_tflops")
        reference = {}  # PyTorch's figures per (model, precision), measured once for all backends
        for label, model in models:
            for precision in ["f32", "bf16"]:
                for backend in self.backends:
                    row = {"backend": backend, "label": label, "model": model, "precision": precision}
                    self.out["bench"].append(row)
                    tokens = (warm + timed) * seq * batch
                    toml = BENCH.format(model=model, seq=seq, batch=batch, tokens=tokens, backend=backend, precision=precision)
                    try:
                        rec, curve = self.train(f"bench-{backend}-{model}-{precision}", toml)
                        c = rec["config"]
                        m = rec["metrics"]
                        row["n_params"] = m["n_params"]
                        row["flops_per_token"] = m["flops_with_head"] / m["tokens"]
                        # Steady state: the first steps compile kernels and autotune; every step
                        # reads its loss, so each point's wall time is the device's too.
                        w0, w1 = curve[warm - 1], curve[-1]
                        row["codescale_tok_s"] = (w1["tokens"] - w0["tokens"]) / (w1["wall_s"] - w0["wall_s"])
                        row["codescale_all_steps_tok_s"] = m["tokens_per_s"]
                        shape = ["--d-model", str(c["d_model"]), "--layers", str(c["n_layers"]), "--heads", str(c["n_heads"]), "--d-ff", str(c["d_ff"])]
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        lines = str(e).strip().splitlines()
                        # A refusal (exit 2, e.g. bf16 on wgpu) says why on its `error:` line.
                        row["codescale_error"] = next((l for l in lines if l.startswith("error:")), lines[-1])[:300]
                        print(e, file=sys.stderr)
                        self.save()
                        continue
                    if (model, precision) not in reference:
                        reference[(model, precision)] = self.torch_reference(shape, shard, batch, seq, warm, timed, precision, compile_too)
                    row.update(reference[(model, precision)])
                    if peak and "codescale_tok_s" in row:
                        row["mfu"] = row["codescale_tok_s"] * row["flops_per_token"] / (peak * 1e12)
                        if "torch_tok_s" in row:
                            row["torch_mfu"] = row["torch_tok_s"] * row["flops_per_token"] / (peak * 1e12)
                    self.save()
                    print(f"  {backend} {model} {precision}: {row.get('codescale_tok_s', 0):.0f} tok/s against PyTorch {row.get('torch_tok_s', 0):.0f}", flush=True)

    def torch_reference(self, shape, shard, batch, seq, warm, timed, precision, compile_too):
        """bench/torch_reference.py's tokens/s (eager, and torch.compile) for one shape."""
        out = {}
        on_gpu = not self.dry and self.torch_cuda
        for compiled in [False, True] if compile_too else [False]:
            key = "torch_compile_tok_s" if compiled else "torch_tok_s"
            cmd = [sys.executable, str(self.bundle / "bench" / "torch_reference.py"), "--data", str(shard), "--vocab", "257", *shape,
                   "--batch", str(batch), "--seq", str(seq), "--steps", str(timed), "--warmup-steps", str(warm), "--lr", "1e-3",
                   "--device", "cuda" if on_gpu else "cpu", "--precision", precision, "--threads", str(os.cpu_count() or 1)]
            if compiled:
                cmd.append("--compile")
            try:
                ref = json.loads(self.run(cmd, check=True, timeout=self.timeout).strip().splitlines()[-1])
                out[key] = ref["tokens_per_s"]
                out.setdefault("torch_tf32", ref["tf32"])
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as e:
                out[key.replace("tok_s", "error")] = str(e).strip().splitlines()[-1][:300]
                print(e, file=sys.stderr)
        return out

    # --- the table -----------------------------------------------------------------------

    def table(self):
        d = self.out["device"]
        lines = []
        if self.dry or "cuda" not in self.backends:
            lines.append(f"device: {d['name']} · codescale {d['codescale']} · torch {d['torch']}")
        else:
            peak = f"{d['peak_source']}" if d.get("peak_tflops") else d.get("peak_source", "")
            lines.append(f"device: {d.get('name')} ({d.get('memory')}) · driver {d.get('driver')} · CUDA {d.get('cuda')} · NVRTC {d.get('nvrtc')} · peak {peak} · "
                         f"torch {d['torch']} · {d['codescale']}")
        for backend, device in self.out["provenance_device"].items():
            lines.append(f"provenance.device of {backend}: {device}")
        lines.append("MFU = tokens/s × (6·N + 6·n_layers·seq_len·d_model + 6·d_model·vocab) ÷ the peak above (dense bf16, also for f32 rows); "
                     f"peaks: {', '.join(f'{p} {v:.0f}' for p, v in PEAKS)} TFLOP/s")
        lines.append("")
        lines.append("| backend | model | N | precision | codescale tok/s | PyTorch tok/s | ratio | MFU | torch.compile tok/s | PyTorch MFU |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in self.out["bench"]:
            ours, theirs = r.get("codescale_tok_s"), r.get("torch_tok_s")
            ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
            lines.append(f"| {r['backend']} | {r['label']} {r['model']} | {fmt_n(r.get('n_params'))} | {r['precision']} | {fmt(ours, r.get('codescale_error'))} | {fmt(theirs, r.get('torch_error'))} | {ratio} | "
                         f"{pct(r.get('mfu'))} | {fmt(r.get('torch_compile_tok_s'), r.get('torch_compile_error'))} | {pct(r.get('torch_mfu'))} |")
        lines.append("")
        for c in self.out["checks"]:
            lines.append(f"- {verdict(c['ok'])} {c['check']}: {c['detail']}")
        for r in self.out["bench"]:
            if r.get("codescale_error"):
                lines.append(f"- {r['backend']} {r['model']} {r['precision']} did not run: {r['codescale_error']}")
        text = "\n".join(lines) + "\n"
        (self.results / "table.md").write_text(text)
        print("\n" + text)


class TrainError(RuntimeError):
    """`codescale train` failed; `code` is its exit code (2: bad input, such as what the backend
    cannot run)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def verdict(ok):
    return {True: "PASS", False: "FAIL", None: "N/A "}[ok]


def mean(xs):
    return sum(xs) / len(xs)


def final_val(curve):
    return curve[-1]["val_loss"]


def curve_gap(a, b):
    """Largest step-by-step difference of the training losses (inf when the lengths differ)."""
    if len(a) != len(b):
        return math.inf
    return max(abs(p["train_loss"] - q["train_loss"]) for p, q in zip(a, b))


def identical(a, b):
    return [p["train_loss"] for p in a] == [q["train_loss"] for q in b]


def fmt(v, error=None):
    return f"{v:,.0f}" if v else ("failed" if error else "-")


def fmt_n(n):
    return f"{n / 1e6:.1f}M" if n else "-"


def pct(v):
    return f"{100 * v:.1f} %" if v is not None else "-"


def fail(code, message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default=str(Path(__file__).resolve().parent.parent), help="the unpacked bundle (default: the folder above this file)")
    p.add_argument("--results", default="codescale-gpu-bench-results")
    p.add_argument("--phase", choices=["checks", "bench", "all"], default="all")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile reference")
    p.add_argument("--timeout", type=int, default=300, help="seconds for any one training run")
    p.add_argument("--jobs", type=int, default=4, help="check trainings run at once (the bench phase always runs one at a time)")
    p.add_argument("--backend", default="cuda,wgpu", help="the backends to check and measure, in order: cuda, wgpu or both (default cuda,wgpu)")
    p.add_argument("--cpu-dry-run", action="store_true", help="rehearse on the CPU: Flex for CUDA, wgpu on lavapipe, PyTorch on the CPU, tiny shapes")
    args = p.parse_args()
    args.backend = [b.strip() for b in args.backend.split(",") if b.strip()]
    if not args.backend or any(b not in ("cuda", "wgpu") for b in args.backend):
        p.error(f"--backend takes cuda, wgpu or cuda,wgpu, not {','.join(args.backend)!r}")
    b = Bench(args)
    b.preflight()
    print(f"device: {b.out['device'].get('name')} · backends {', '.join(b.backends)} · results in {b.results}", flush=True)
    if args.phase in ("checks", "all"):
        b.checks()
    if args.phase in ("bench", "all"):
        b.bench(compile_too=not args.no_compile)
    b.table()
    sys.exit(0 if all(c["ok"] is not False for c in b.out["checks"]) else 1)


if __name__ == "__main__":
    main()
