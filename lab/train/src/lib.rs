//! The trainer: decoder-only code LMs (dense and mixture-of-experts) on burn. The only crate
//! that depends on burn.

pub mod backend;
pub mod checkpoint;
pub mod data;
pub mod init;
pub mod kernels;
pub mod model;
pub mod moe;
pub mod optim;
pub mod run;
pub mod task;
pub mod trainer;
pub mod trunk;

pub use backend::{train_trial, CpuBackend, CpuTrainBackend};
pub use kernels::gemm::simd_path;
pub use trainer::RunOptions;
pub use trunk::Branch;
