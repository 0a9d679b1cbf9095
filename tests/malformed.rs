//! Malformed sweep files: each is refused with exit code 2 and the line of the problem, and
//! nothing is written.

mod common;

use common::{text, Lab};

const HEAD: &str = "name = \"bad\"\n[base]\nlanguage = \"rust\"\n";

/// (file body, line expected in the message, a word the message must contain)
fn cases() -> Vec<(String, usize, &'static str)> {
    let p = |s: &str| format!("{HEAD}[parameters]\n{s}\n");
    vec![
        (format!("{HEAD}learning_rate = 0.1\n"), 4, "learning_rate"),
        (format!("{HEAD}lr = \"fast\"\n"), 4, "lr"),
        (format!("{HEAD}batch_size = 1.5\n"), 4, "batch_size"),
        (format!("{HEAD}model = \"big\"\n"), 4, "model"),
        (format!("nme = \"x\"\n{HEAD}"), 1, "nme"),
        ("name = \"a b\"\n[base]\nlanguage = \"rust\"\n".to_string(), 1, "name"),
        // Names the runs folder uses itself: the sweep's folder would be one of them.
        ("name = \"trials\"\n[base]\nlanguage = \"rust\"\n".to_string(), 1, "`name`: `trials` is reserved"),
        ("name = \"_trunks\"\n[base]\nlanguage = \"rust\"\n".to_string(), 1, "`name`: `_trunks` is reserved"),
        ("name = \"..\"\n[base]\nlanguage = \"rust\"\n".to_string(), 1, "`name`: `..` is reserved"),
        (p("model = { values = [] }"), 5, "empty"),
        (p("lr = { values = [1e-3], value = 1e-3 }"), 5, "exactly one"),
        (p("lr = { distribution = \"log_uniform\", min = 1e-4, max = 1e-2 }"), 5, "random"),
        (p("lr = { distribution = \"gaussian\", min = 1, max = 2 }"), 5, "gaussian"),
        (format!("method = \"random\"\ntrials = 3\n{HEAD}[parameters]\nlr = {{ distribution = \"log_uniform\", min = 0, max = 1 }}\n"), 7, "log_uniform"),
        (format!("method = \"random\"\ntrials = 3\n{HEAD}[parameters]\nlr = {{ distribution = \"uniform\", min = 2, max = 1 }}\n"), 7, "min < max"),
        (format!("method = \"random\"\ntrials = 3\n{HEAD}[parameters]\nlr = {{ distribution = \"uniform\", min = 1 }}\n"), 7, "min` and `max"),
        (p("model = { values = [\"d64-l2\"] }\nn_heads = { values = [3] }"), 6, "do not divide"),
        (format!("{HEAD}model = \"d64-l2\"\narch = \"moe\"\nn_experts = 2\ntop_k = 4\n"), 7, "top_k"),
        (p("batch_size = { values = [\"many\"] }"), 5, "batch_size"),
        (p("warp = { values = [1, 2] }"), 5, "unknown key"),
        (format!("{HEAD}model = \"d64-l2\"\nschedule = \"exponential\"\n"), 5, "schedule"),
        (format!("{HEAD}model = \"d64-l2\"\n[early_stop]\nmin_tokens = 1e5\nreduction = 1\n"), 5, "reduction"),
        (format!("{HEAD}model = \"d64-l2\"\ntokens = 10\n"), 5, "tokens"),
        (format!("{HEAD}model = \"d64-l2\"\nmicro_batch = 5\n"), 5, "micro_batch"),
        (format!("{HEAD}model = \"d64-l2\"\n[parameters\n"), 5, ""),
        ("name = \"bad\"\n[base]\nmodel = \"d64-l2\"\n".to_string(), 1, "`language`: is required"),
        (format!("{HEAD}model = \"d64-l2\"\nfim_rate = 1.5\n"), 5, "fim_rate"),
        (format!("{HEAD}model = \"d64-l2\"\nfim_spm_rate = 0.5\n"), 5, "without `fim_rate`"),
        (p("model = { values = [\"d64-l2\"] }\nfim_rate = { values = [0.5, -1] }"), 6, "fim_rate"),
        (format!("{HEAD}model = \"d64-l2\"\ntask_examples = -1\n"), 5, "task_examples"),
    ]
}

#[test]
fn twenty_malformed_sweeps_exit_2_and_name_the_line() {
    let lab = Lab::new();
    let cases = cases();
    assert!(cases.len() >= 20);
    for (i, (body, line, word)) in cases.into_iter().enumerate() {
        let path = lab.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, &body).unwrap();
        let out = lab.run(&["sweep", "plan", path.to_str().unwrap()]);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "case {i} ({body:?}) should exit 2: {msg}");
        let at = format!("bad{i}.toml:{line}:");
        assert!(msg.contains(&at), "case {i}: expected `{at}` in: {msg}");
        assert!(msg.contains(word), "case {i}: expected `{word}` in: {msg}");
    }
    assert!(!lab.path().join("runs").exists(), "planning writes nothing");
}

#[test]
fn missing_sweep_file_is_bad_input() {
    let lab = Lab::new();
    let out = lab.run(&["sweep", "plan", "nope.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("nope.toml"));
}

/// `codescale train` on a GPU that is not here: bad input naming the key, before the corpus is
/// built. Without the `cuda` feature the build is what is missing; with it, on this GPU-less
/// machine, the driver; on a GPU machine, device 7.
#[test]
fn training_on_a_missing_gpu_exits_2_naming_the_key() {
    let lab = Lab::new();
    let trial = lab.path().join("trial.toml");
    let body = "corpus = \"recipe.toml\"\nlanguage = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\nbackend = \"cuda\"\ndevice = 7\n";
    std::fs::write(&trial, body).unwrap();
    let out = lab.run(&["train", "trial.toml"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("trial.toml") && !msg.contains("panicked"), "{msg}");
    assert!(msg.contains("`backend` = \"cuda\"") || msg.contains("`device` = 7"), "{msg}");
    assert!(!lab.path().join("corpus").exists() && !lab.path().join("runs").exists(), "nothing is built or written");

    std::fs::write(&trial, body.replace("backend = \"cuda\"\n", "")).unwrap();
    let out = lab.run(&["train", "trial.toml"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("trial.toml:6: `device`"), "{msg}");
}

/// `backend = "wgpu"`: in a build without the feature, bad input with the command that builds
/// it; with it, an adapter that is not there (device 99) names `device`. An unknown backend is
/// bad input listing the three. Nothing is built or written in any case.
#[test]
fn wgpu_without_the_feature_or_an_unknown_backend_exits_2() {
    let lab = Lab::new();
    let trial = lab.path().join("trial.toml");
    let body = "corpus = \"recipe.toml\"\nlanguage = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\nbackend = \"wgpu\"\ndevice = 99\n";
    std::fs::write(&trial, body).unwrap();
    let out = lab.run(&["train", "trial.toml"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("trial.toml") && !msg.contains("panicked"), "{msg}");
    if cfg!(feature = "wgpu") {
        assert!(msg.contains("`device` = 99") || msg.contains("no Vulkan adapter"), "{msg}");
    } else {
        assert!(msg.contains("`backend` = \"wgpu\"") && msg.contains("cargo build --release --features wgpu"), "{msg}");
    }
    assert!(!lab.path().join("corpus").exists() && !lab.path().join("runs").exists(), "nothing is built or written");

    std::fs::write(&trial, body.replace("\"wgpu\"", "\"tpu\"")).unwrap();
    let out = lab.run(&["train", "trial.toml"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("trial.toml:6") && msg.contains("`flex`") && msg.contains("`cuda`") && msg.contains("`wgpu`"),
        "{msg}"
    );
    assert!(!lab.path().join("corpus").exists() && !lab.path().join("runs").exists(), "nothing is built or written");
}

/// `--huber-delta`: `auto` matches the threshold to the scatter, a number fixes it, and anything
/// else is bad input before anything is fitted or written. The threshold used is in the fit file.
#[test]
fn the_huber_threshold_is_matched_or_fixed_and_recorded() {
    let lab = Lab::new();
    let mut csv = String::from("n_params,tokens,loss\n");
    for (i, n) in [1e5f64, 3e5, 1e6, 3e6].into_iter().enumerate() {
        for (j, d) in [1e7f64, 3e7, 1e8, 3e8].into_iter().enumerate() {
            // ±2 % of scatter, far above Chinchilla's 1e-3.
            let wiggle = 1.0 + 0.02 * [1.0, -1.0, 0.5, -0.5][(i + j) % 4];
            csv.push_str(&format!("{n},{d},{}\n", (1.7 + 400.0 / n.powf(0.34) + 410.0 / d.powf(0.28)) * wiggle));
        }
    }
    std::fs::write(lab.path().join("points.csv"), csv).unwrap();
    let delta = |args: &[&str], out: &str| {
        let mut cmd = vec!["fit", "--table", "points.csv", "--bootstrap", "20", "--out", out];
        cmd.extend_from_slice(args);
        let run = lab.run(&cmd);
        assert!(run.status.success(), "{}", text(&run));
        let fit: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(lab.path().join(out)).unwrap()).unwrap();
        fit["groups"][0]["law"]["huber_delta"].as_f64().unwrap()
    };
    let auto = delta(&[], "auto.json");
    assert!(auto > 0.005 && auto < 0.05, "matched to the 2 % scatter: {auto}");
    assert_eq!(delta(&["--huber-delta", "1e-3"], "fixed.json"), 1e-3);

    let out = lab.run(&["fit", "--table", "points.csv", "--huber-delta", "0", "--out", "bad.json"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("--huber-delta") && msg.contains("`0`"), "{msg}");
    assert!(!lab.path().join("bad.json").exists(), "nothing written");
}
