//! Helpers for end-to-end tests that drive the `codescale` binary in a scratch folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_codescale"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder with a corpus recipe over a copy of this repository's Rust code, so tests
/// may change the sources without touching the repository.
pub struct Lab {
    root: PathBuf,
    /// Removes a test's own lab when the test ends.
    _temp: Option<tempfile::TempDir>,
}

impl Lab {
    pub fn new() -> Lab {
        let temp = tempfile::tempdir().unwrap();
        Lab::fill(temp.path().to_path_buf(), Some(temp))
    }

    /// A lab at a fixed place under cargo's `target/tmp`, emptied first, for several tests of
    /// one binary to share from a static (which is never dropped, so a temporary folder would
    /// be left behind on every run).
    pub fn shared(name: &str) -> Lab {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        Lab::fill(root, None)
    }

    fn fill(root: PathBuf, temp: Option<tempfile::TempDir>) -> Lab {
        let src = root.join("src");
        for crate_dir in ["core", "sweep", "train", "fit"] {
            copy_tree(&repo().join("lab").join(crate_dir).join("src"), &src.join(crate_dir));
        }
        std::fs::write(
            root.join("recipe.toml"),
            "name = \"self\"\nvalidation_fraction = 0.1\n[languages.rust]\nsources = [{ dir = \"src\", include = [\"**/*.rs\"] }]\n",
        )
        .unwrap();
        Lab { root, _temp: temp }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes a sweep file whose trials are tiny models on the scratch corpus.
    pub fn sweep(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path().join(format!("{name}.toml"));
        let text = format!(
            "name = \"{name}\"\ncorpus = \"recipe.toml\"\n[base]\nlanguage = \"rust\"\nmodel = \"d32-l1\"\nseq_len = 32\nbatch_size = 8\neval_tokens = 1024\nwarmup = 0.1\n{body}"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn run(&self, args: &[&str]) -> Output {
        bin().args(args).current_dir(self.path()).env("NO_COLOR", "1").output().unwrap()
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The Python of the virtual environment `scripts/setup` makes (`.venv`), with the packages
/// other tools read our files with. A missing one fails the test, saying how to get it.
pub fn python() -> PathBuf {
    static CHECKED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let python = repo().join(".venv/bin/python");
        let modules = "nbconvert, ipykernel, pandas, pyarrow, matplotlib, tensorboard";
        let found =
            Command::new(&python).args(["-c", &format!("import {modules}")]).output().is_ok_and(|o| o.status.success());
        found
            .then_some(python.clone())
            .ok_or_else(|| format!("{} cannot import {modules}: run scripts/setup", python.display()))
    });
    checked.clone().unwrap_or_else(|why| panic!("{why}"))
}

/// Runs a Python program with [`python`], in `dir`, and returns its standard output; a failure
/// fails the test with what Python printed.
pub fn run_python(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(python()).arg("-c").arg(program).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "python failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
