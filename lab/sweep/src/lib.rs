//! Sweeps: sweep files, planning, the local and Slurm executors, early stopping, status.

pub mod asha;
pub mod branches;
pub mod child;
pub mod estimate;
pub mod index;
pub mod lease;
pub mod lock;
pub mod plan;
pub mod runs;
pub mod scheduler;
pub mod slurm;
pub mod spec;
pub mod status;
pub mod tasks;
pub mod trial;
pub mod wandb;

pub use runs::{Plan, SweepDir};
pub use scheduler::{run_sweep, RunConfig, Summary};
pub use spec::Sweep;
