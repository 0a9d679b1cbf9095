//! How the lab's commands scale with the runs folder (`bench/runs_scale`, issue 35 item 7).
//!
//! For each size (10³, 10⁴ and 10⁵ finished trial records by default) it builds a synthetic
//! lab under `--dir` (default `/tmp/codescale-runs-scale`): the example corpus, `--sweeps` sweep
//! files (10) of `size / sweeps` trials each, every sweep planned by the lab's own planner and
//! written as `sweep run` writes it (`runs/<sweep>/{sweep.toml, plan.json}`), and one finished
//! `trial.json` per trial (a `TrialRecord` with a loss drawn from a known law), written directly
//! and in parallel rather than trained. Then it times the release binary's `sweep plan`,
//! `sweep status`, `sweep run` (with nothing left to train: it must say `trained 0`), `fit` and
//! `report` on the first sweep, with the whole folder beside it, and prints a table of records ×
//! command → seconds. The folders are removed at the end unless `--keep`.
//!
//! `stale` is `sweep run --reuse-stale` on the last sweep, whose records were all made on an
//! older corpus (their ids differ from the plan's, their configurations do not): every trial is
//! looked up across the runs folder and kept as a stale result, none trained. It changes the
//! folder (the copies), so it is timed once, after the others.
//!
//! With `--repeat N` every other command runs N times in a row and its cell lists each time
//! (`first/second/…`): the first `plan` of a folder whose runs index has not been built yet
//! pays for building it.
//!
//! ```sh
//! bench/runs_scale                     # builds the release binary and this example, then runs it
//! cargo run --release --example runs_scale -- --sizes 1000,10000 --commands status,run
//! ```
//!
//! Curves (`curve.parquet`) are not written: every command but `fit` and `report` ignores them,
//! and those two leave a trial without one out of the whole-curve law and the curve figures.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use codescale::sweep::{Sweep, SweepDir};
use codescale_core::record::{BranchOrigin, Metrics, Provenance, TRIAL_FILE};
use codescale_core::{CorpusKey, Status, TrialConfig, TrialRecord};
use codescale_sweep::Plan;

const COMMANDS: [&str; 6] = ["plan", "status", "run", "fit", "report", "stale"];

struct Args {
    sizes: Vec<usize>,
    sweeps: usize,
    dir: PathBuf,
    bin: PathBuf,
    commands: Vec<String>,
    repeat: usize,
    timeout: Duration,
    threads: usize,
    keep: bool,
}

fn parse_args() -> Result<Args> {
    let exe = std::env::current_exe()?;
    // target/release/examples/runs_scale → target/release/codescale
    let default_bin =
        exe.parent().and_then(Path::parent).map(|p| p.join("codescale")).unwrap_or_else(|| PathBuf::from("codescale"));
    let mut args = Args {
        sizes: vec![1_000, 10_000, 100_000],
        sweeps: 10,
        dir: PathBuf::from("/tmp/codescale-runs-scale"),
        bin: default_bin,
        commands: COMMANDS.iter().map(|c| c.to_string()).collect(),
        repeat: 1,
        timeout: Duration::from_secs(900),
        threads: 4,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sizes" => {
                args.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<f64>().map(|v| v as usize))
                    .collect::<Result<_, _>>()?
            }
            "--sweeps" => args.sweeps = value()?.parse()?,
            "--dir" => args.dir = PathBuf::from(value()?),
            "--bin" => args.bin = PathBuf::from(value()?),
            "--commands" => args.commands = value()?.split(',').map(|s| s.trim().to_string()).collect(),
            "--repeat" => args.repeat = value()?.parse()?,
            "--timeout" => args.timeout = Duration::from_secs(value()?.parse()?),
            "--threads" => args.threads = value()?.parse()?,
            "--keep" => args.keep = true,
            "-h" | "--help" => {
                println!("runs_scale [--sizes 1000,10000,100000] [--sweeps 10] [--dir /tmp/codescale-runs-scale] [--bin target/release/codescale] [--commands plan,status,run,fit,report] [--repeat 1] [--timeout 900] [--threads 4] [--keep]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    for c in &args.commands {
        ensure!(COMMANDS.contains(&c.as_str()), "unknown command {c} (one of {})", COMMANDS.join(", "));
    }
    ensure!(
        args.bin.exists(),
        "{} does not exist: build it with `cargo build --release --bin codescale`",
        args.bin.display()
    );
    args.bin = args.bin.canonicalize()?;
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let start_dir = std::env::current_dir()?;
    let mut table: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for &size in &args.sizes {
        let root = args.dir.join(format!("n{size}"));
        if root.exists() {
            std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        }
        std::fs::create_dir_all(&root)?;
        std::env::set_current_dir(&root)?;
        let result = (|| -> Result<BTreeMap<String, String>> {
            let t = Instant::now();
            let first = generate(size, args.sweeps, args.threads)?;
            let mut row = BTreeMap::new();
            row.insert("build".to_string(), format!("{:.1}", t.elapsed().as_secs_f64()));
            eprintln!("{size} records: built in {:.1} s under {}", t.elapsed().as_secs_f64(), root.display());
            for command in &args.commands {
                let mut times: Vec<String> = Vec::new();
                let mut cpu: Vec<String> = Vec::new();
                let mut cell = None;
                let repeat = if command == "stale" { 1 } else { args.repeat };
                for _ in 0..repeat {
                    match time(&args.bin, command, (&first.0, &first.1), args.timeout)? {
                        Timed::Took(wall, c) => {
                            times.push(format!("{wall:.2}"));
                            cpu.push(format!("{c:.2}"));
                        }
                        Timed::OutOfTime => {
                            cell = Some(format!(">{}", args.timeout.as_secs()));
                            break;
                        }
                        Timed::Failed(why) => {
                            cell = Some("failed".to_string());
                            eprintln!("{size} records: {command} failed: {why}");
                            break;
                        }
                    }
                }
                let cpu_cell = cell.clone().unwrap_or_else(|| cpu.join("/"));
                let cell = cell.unwrap_or_else(|| times.join("/"));
                eprintln!("{size} records: {command} {cell} s ({cpu_cell} s of CPU)");
                row.insert(command.clone(), cell);
                row.insert(format!("{command} cpu"), cpu_cell);
            }
            Ok(row)
        })();
        std::env::set_current_dir(&start_dir)?;
        if !args.keep {
            let t = Instant::now();
            std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
            eprintln!("{size} records: removed in {:.1} s", t.elapsed().as_secs_f64());
        }
        table.insert(size, result?);
    }
    if !args.keep {
        let _ = std::fs::remove_dir(&args.dir);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!(
        "{} on the first of {} sweeps (stale: the last); {cores} core(s), load average {load}",
        args.bin.display(),
        args.sweeps
    );
    for (title, suffix) in [("wall-clock seconds", ""), ("CPU seconds (user + system)", " cpu")] {
        println!("{title}:");
        let mut header = format!("{:>8} {:>8}", "records", "build");
        for c in &args.commands {
            header += &format!(" {:>11}", c);
        }
        println!("{header}");
        for (size, row) in &table {
            let mut line = format!("{size:>8} {:>8}", if suffix.is_empty() { row["build"].as_str() } else { "" });
            for c in &args.commands {
                line += &format!(" {:>11}", row[&format!("{c}{suffix}")]);
            }
            println!("{line}");
        }
    }
    Ok(())
}

enum Timed {
    /// Wall-clock seconds, and CPU seconds (user + system) of the command.
    Took(f64, f64),
    OutOfTime,
    Failed(String),
}

/// Runs one command of the binary on sweep `first` in the current folder and times it.
fn time(bin: &Path, command: &str, (first, last): (&str, &str), timeout: Duration) -> Result<Timed> {
    let sweep_file = format!("sweeps/{first}.toml");
    let stale_file = format!("sweeps/{last}.toml");
    let sweep_dir = format!("runs/{first}");
    let args: Vec<&str> = match command {
        "plan" => vec!["sweep", "plan", &sweep_file],
        "status" => vec!["sweep", "status", &sweep_file],
        "run" => vec!["sweep", "run", &sweep_file],
        "fit" => vec!["fit", &sweep_dir],
        "report" => vec!["report", &sweep_dir],
        "stale" => vec!["sweep", "run", &stale_file, "--reuse-stale"],
        _ => unreachable!(),
    };
    let cpu_before = children_cpu();
    let t = Instant::now();
    let mut child = Command::new(bin)
        .arg("--quiet")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drained on threads so a chatty command never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if t.elapsed() > timeout {
            child.kill()?;
            child.wait()?;
            return Ok(Timed::OutOfTime);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = t.elapsed().as_secs_f64();
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    if !status.success() {
        return Ok(Timed::Failed(format!("{status}: {}", tail(&stderr))));
    }
    if (command == "run" || command == "stale") && !stdout.contains("trained 0 now") {
        return Ok(Timed::Failed(format!("a no-op run trained something: {}", tail(&stdout))));
    }
    Ok(Timed::Took(seconds, children_cpu() - cpu_before))
}

/// CPU seconds (user + system) of the waited-for children of this process so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// The grid of one sweep of `n` trials: widths × budgets × learning rates.
fn sweep_text(name: &str, seed: usize, n: usize) -> Result<String> {
    let widths = n.min(10);
    let budgets = (n / widths).min(10);
    let rates = n / (widths * budgets);
    ensure!(
        widths * budgets * rates == n,
        "{n} trials per sweep is not widths × budgets × rates (use a multiple of 100)"
    );
    let models: Vec<String> = (0..widths).map(|i| format!("\"d{}-l1\"", 32 + 16 * i)).collect();
    let tokens: Vec<String> = (1..=budgets).map(|k| format!("{}", 4096 * k)).collect();
    let lrs: Vec<String> = (0..rates).map(|k| format!("{:e}", 2e-3 * (1.0 + 0.01 * k as f64))).collect();
    Ok(format!(
        "name = \"{name}\"\ncorpus = \"recipe.toml\"\n[base]\nlanguage = \"rust\"\nseq_len = 32\nbatch_size = 8\neval_tokens = 1024\nschedule = \"wsd\"\nwarmup = 4\nseed = {seed}\n[parameters]\nmodel = {{ values = [{}] }}\ntokens = {{ values = [{}] }}\nlr = {{ values = [{}] }}\n",
        models.join(", "),
        tokens.join(", "),
        lrs.join(", ")
    ))
}

/// Writes the lab in the current folder: recipe, corpus, sweep files, plans and records (the
/// last sweep's made on an older corpus). Returns the first sweep's name and the last's.
fn generate(size: usize, sweeps: usize, threads: usize) -> Result<(String, String)> {
    ensure!(size.is_multiple_of(sweeps), "{size} records do not split into {sweeps} sweeps");
    std::fs::write("recipe.toml", codescale::example::recipe_text())?;
    std::fs::create_dir_all("sweeps")?;
    let mut planned: Vec<(SweepDir, Vec<TrialConfig>)> = Vec::new();
    for s in 0..sweeps {
        let name = format!("scale{s}");
        let path = PathBuf::from(format!("sweeps/{name}.toml"));
        std::fs::write(&path, sweep_text(&name, s, size / sweeps)?)?;
        let sweep = Sweep::load(&path)?;
        let trials = codescale::sweep::plan(&sweep, true)?.trials;
        ensure!(trials.len() == size / sweeps, "{name} planned {} trials, not {}", trials.len(), size / sweeps);
        let dir = SweepDir::new(Path::new("runs"), &name);
        std::fs::create_dir_all(&dir.path)?;
        std::fs::write(dir.path.join(codescale_sweep::runs::SWEEP_FILE), &sweep.source)?;
        dir.write_plan(&Plan {
            sweep: name.clone(),
            trials: trials.clone(),
            targets: Vec::new(),
            branches: Vec::new(),
            early_stop: None,
        })?;
        planned.push((dir, trials));
    }
    let older = |c: &TrialConfig| {
        let key = c.corpus_key.clone().map(|k| CorpusKey { manifest: "0".repeat(k.manifest.len()), ..k });
        TrialConfig { corpus_key: key, ..c.clone() }
    };
    let last = planned.len() - 1;
    let jobs: Vec<(&SweepDir, TrialConfig)> = planned
        .iter()
        .enumerate()
        .flat_map(|(s, (d, ts))| ts.iter().map(move |t| (d, if s == last { older(t) } else { t.clone() })))
        .collect();
    let chunk = jobs.len().div_ceil(threads.max(1));
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = jobs
            .chunks(chunk.max(1))
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || -> Result<()> {
                    for (i, (dir, config)) in part.iter().enumerate() {
                        let record = finished(config, (c * chunk + i) as u64);
                        let trial_dir = dir.trial_dir(&record.id);
                        std::fs::create_dir_all(&trial_dir)?;
                        let mut bytes = serde_json::to_vec_pretty(&record)?;
                        bytes.push(b'\n');
                        std::fs::write(trial_dir.join(TRIAL_FILE), bytes)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    Ok((planned[0].0.name(), planned[last].0.name()))
}

/// A finished record of `config` whose loss follows L = 1.2 + 40/N^0.35 + 60/D^0.3 times a
/// bowl in log lr, with 1 % noise drawn from `k`.
fn finished(config: &TrialConfig, k: u64) -> TrialRecord {
    let params = config.params();
    let steps = config.total_steps();
    let tokens = (steps * config.tokens_per_step()) as f64;
    let (n, d) = (params.n_params, tokens);
    let bowl = 1.0 + 0.05 * (config.optimizer.lr / 2.5e-3).ln().powi(2);
    let loss = (1.2 + 40.0 * n.powf(-0.35) + 60.0 * d.powf(-0.3)) * bowl * (1.0 + 0.01 * noise(k));
    let tokens_per_s = 2.0e5 / (1.0 + n / 1e5);
    let mut record = TrialRecord::pending(config.clone());
    record.status = Status::Done;
    record.metrics = Metrics {
        n_params: params.n_params,
        n_params_total: params.n_params_total,
        n_params_active: params.n_params_active,
        flops: params.flops_per_token() * tokens,
        flops_with_head: params.flops_per_token_with_head() * tokens,
        steps,
        tokens,
        train_loss: Some(loss * 0.98),
        val_loss: Some(loss),
        val_loss_se: Some(0.002 * loss),
        val_bpb: Some(loss / std::f64::consts::LN_2),
        wall_s: tokens / tokens_per_s,
        tokens_per_s,
        ..Default::default()
    };
    let (corpus_hash, tokenizer_hash) =
        config.corpus_key.as_ref().map(|k| (k.manifest.clone(), k.tokenizer.clone())).unwrap_or_default();
    record.provenance = Provenance {
        codescale_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: "0000000000000000000000000000000000000000".into(),
        rustc: "synthetic".into(),
        backend: "flex".into(),
        device: "cpu".into(),
        threads: 2,
        host: "runs-scale".into(),
        started: "2025-01-01T00:00:00Z".into(),
        finished: Some("2025-01-01T00:01:00Z".into()),
        corpus_hash,
        tokenizer_hash,
        seed: config.runtime.seed,
        ..Default::default()
    };
    record.branch = config.trunk_id().map(|trunk| BranchOrigin { trunk, step: config.decay_start() });
    record
}

/// A standard normal draw from `k` (splitmix64, Box–Muller).
fn noise(k: u64) -> f64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let u = |z: u64| ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (a, b) = (u(mix(2 * k)), u(mix(2 * k + 1)));
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
}
