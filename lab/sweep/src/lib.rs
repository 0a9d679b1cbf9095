//! Sweeps: sweep files, planning, the local and Slurm executors, early stopping, status.

pub mod asha;
pub mod bases;
pub mod branches;
pub mod child;
pub mod estimate;
pub mod index;
pub mod lease;
pub mod lock;
pub mod options;
pub mod plan;
pub mod runs;
pub mod scheduler;
pub mod slurm;
pub mod spec;
pub mod status;
pub mod tasks;
pub mod triage;
pub mod trial;
pub mod wandb;

pub use options::{RunConfig, Summary};
pub use runs::{Plan, SweepDir};
pub use scheduler::run_sweep;
pub use spec::Sweep;
