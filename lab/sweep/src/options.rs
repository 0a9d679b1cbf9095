//! What an executor is asked to do ([`RunConfig`]) and what it hands back ([`Summary`]): the
//! types the local and the Slurm executor share, so that neither depends on the other.

use std::path::PathBuf;

use codescale_core::{ResultRow, Status};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub runs_root: PathBuf,
    /// Parallel trials (the sweep's `jobs`, else 1).
    pub jobs: Option<usize>,
    pub quiet: bool,
    /// Cores to share between the jobs (all by default).
    pub cores: Option<usize>,
    /// Run `failed` trials again even when their cause looked permanent.
    pub retry_failed: bool,
    /// Keep a finished trial whose configuration matches but whose corpus or code version
    /// differs, marked stale, instead of training it again.
    pub reuse_stale: bool,
    /// Run a plan estimated to take longer than [`CONFIRM_ABOVE_S`](crate::estimate::CONFIRM_ABOVE_S).
    pub confirmed: bool,
    /// The `codescale` program to train each trial in a child process of (`trial run
    /// --child`, see [`crate::child`]); without it (a library caller) trials are threads of
    /// this process, which slow each other when several run at once.
    pub trial_exe: Option<PathBuf>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            runs_root: PathBuf::from("runs"),
            jobs: None,
            quiet: false,
            cores: None,
            retry_failed: false,
            reuse_stale: false,
            confirmed: false,
            trial_exe: None,
        }
    }
}

pub struct Summary {
    pub dir: PathBuf,
    pub rows: Vec<ResultRow>,
    pub trained: usize,
    pub skipped: usize,
    /// What the run repaired or reused on the way, one line each.
    pub notes: Vec<String>,
}

impl Summary {
    pub fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }
    /// Every trial ended and none failed: the sweep's exit status is success.
    pub fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| matches!(r.status, Status::Done | Status::Diverged | Status::Pruned))
    }
}
