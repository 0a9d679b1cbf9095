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
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        for crate_dir in ["core", "sweep", "train", "fit"] {
            copy_tree(&repo().join("lab").join(crate_dir).join("src"), &src.join(crate_dir));
        }
        std::fs::write(
            dir.path().join("recipe.toml"),
            "name = \"self\"\nvalidation_fraction = 0.1\n[languages.rust]\nsources = [{ dir = \"src\", include = [\"**/*.rs\"] }]\n",
        )
        .unwrap();
        Lab { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
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

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
