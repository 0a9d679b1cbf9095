//! Backend choice. Burn's backend is a type parameter, so the runtime choice is a `match`
//! that calls the generic trainer.

use std::path::Path;

use anyhow::{bail, Result};
use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use codescale_core::{Backend, TrialConfig, TrialRecord};
use codescale_data::Corpus;

use crate::trainer::{self, RunOptions};

pub type CpuBackend = Flex;
pub type CpuTrainBackend = Autodiff<Flex>;

/// Trains on the backend the config names, inside a thread pool of `config.threads` threads
/// (all cores by default), so parallel trials split the machine instead of fighting over it.
pub fn train_trial(dir: &Path, config: &TrialConfig, corpus: &Corpus, opts: &RunOptions) -> Result<TrialRecord> {
    let threads = config.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    pool.install(|| match config.backend {
        Backend::Flex => trainer::train::<CpuTrainBackend>(dir, config, corpus, &FlexDevice, "cpu (flex)", opts),
        Backend::Cuda => train_cuda(dir, config, corpus, opts),
    })
}

#[cfg(feature = "cuda")]
fn train_cuda(dir: &Path, config: &TrialConfig, corpus: &Corpus, opts: &RunOptions) -> Result<TrialRecord> {
    use burn::backend::cuda::CudaDevice;
    use burn::backend::Cuda;
    // cudarc panics when it cannot load the driver library; find it first and say so plainly.
    if !cuda_driver_present() {
        bail!("backend = \"cuda\" but no CUDA driver (libcuda.so) was found on this machine; use backend = \"flex\"");
    }
    let device = CudaDevice::default();
    trainer::train::<Autodiff<Cuda>>(dir, config, corpus, &device, "cuda:0", opts)
}

#[cfg(feature = "cuda")]
fn cuda_driver_present() -> bool {
    let dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/cuda/lib64", "/usr/lib/wsl/lib", "/usr/lib"];
    dirs.iter().any(|d| Path::new(d).join("libcuda.so.1").exists() || Path::new(d).join("libcuda.so").exists())
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(_: &Path, _: &TrialConfig, _: &Corpus, _: &RunOptions) -> Result<TrialRecord> {
    bail!("backend = \"cuda\" but this codescale was built without CUDA: rebuild with `cargo build --release --features cuda`")
}
