//! Backend choice. Burn's backend is a type parameter, so the runtime choice is a `match`
//! that calls the generic trainer.
//!
//! Burn's CUDA backend finds what it needs at run time, on first touching the device: the
//! driver (`libcuda`), NVRTC (which compiles its kernels) and the CUDA headers those kernels
//! include. It panics when one is missing, and cubecl also panics on a device index that is not
//! there. [`device_name`] asks for each of them first, fallibly, so that a trial asking for a
//! GPU that is not here fails as bad input naming the key.
//!
//! Burn's wgpu backend runs the same cubecl kernels, compiled to WGSL, on whatever adapter the
//! graphics API (Vulkan on Linux) offers: a GPU, or lavapipe, Mesa's Vulkan driver for the CPU.
//! It panics when no adapter is there; [`device_name`] lists the adapters first, opens the one
//! `device` picks and checks that it has the types the trial computes in.

use std::path::Path;

use anyhow::Result;
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
    let device_name = device_name(config)?;
    let threads =
        config.runtime.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    pool.install(|| match config.runtime.backend {
        Backend::Flex => trainer::train::<CpuTrainBackend>(dir, config, corpus, &FlexDevice, &device_name, opts),
        Backend::Cuda => train_cuda(dir, config, corpus, &device_name, opts),
        Backend::Wgpu => train_wgpu(dir, config, corpus, &device_name, opts),
    })
}

/// The device the config's backend names, as provenance records it (`cuda:0 (NVIDIA H100 80GB
/// HBM3)`, `wgpu:0 (llvmpipe (LLVM 15.0.6, 256 bits); Vulkan cpu; driver llvmpipe, Mesa 22.3.6
/// (LLVM 15.0.6))`), or bad input saying what is missing when that device cannot run here.
pub fn device_name(config: &TrialConfig) -> Result<String> {
    match config.runtime.backend {
        Backend::Flex => Ok("cpu (flex)".into()),
        Backend::Cuda => {
            let index = config.runtime.device.unwrap_or(0);
            let name = cuda::probe(index)?;
            Ok(format!("cuda:{index} ({name})"))
        }
        Backend::Wgpu => {
            let adapter = wgpu::probe(config)?;
            Ok(adapter.name)
        }
    }
}

#[cfg(feature = "cuda")]
fn train_cuda(
    dir: &Path,
    config: &TrialConfig,
    corpus: &Corpus,
    device_name: &str,
    opts: &RunOptions,
) -> Result<TrialRecord> {
    use burn::backend::cuda::CudaDevice;
    use burn::backend::Cuda;
    let device = CudaDevice::new(config.runtime.device.unwrap_or(0));
    trainer::train::<Autodiff<Cuda>>(dir, config, corpus, &device, device_name, opts)
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(_: &Path, _: &TrialConfig, _: &Corpus, _: &str, _: &RunOptions) -> Result<TrialRecord> {
    unreachable!("device_name refuses CUDA in a build without it")
}

#[cfg(feature = "wgpu")]
fn train_wgpu(
    dir: &Path,
    config: &TrialConfig,
    corpus: &Corpus,
    device_name: &str,
    opts: &RunOptions,
) -> Result<TrialRecord> {
    use burn::backend::Wgpu;
    let adapter = wgpu::probe(config)?;
    trainer::train::<Autodiff<Wgpu>>(dir, config, corpus, &adapter.device, device_name, opts)
}

#[cfg(not(feature = "wgpu"))]
fn train_wgpu(_: &Path, _: &TrialConfig, _: &Corpus, _: &str, _: &RunOptions) -> Result<TrialRecord> {
    unreachable!("device_name refuses wgpu in a build without it")
}

#[cfg(not(feature = "wgpu"))]
mod wgpu {
    use codescale_core::BadInput;

    pub struct Adapter {
        pub name: String,
    }

    pub fn probe(_: &codescale_core::TrialConfig) -> Result<Adapter, BadInput> {
        Err(BadInput("`backend` = \"wgpu\" but this codescale was built without wgpu: rebuild with `cargo build --release --features wgpu`".into()))
    }
}

#[cfg(feature = "wgpu")]
pub mod wgpu {
    //! The adapters burn's wgpu backend can run on, in the order `device` counts them.

    use std::panic::{catch_unwind, AssertUnwindSafe};

    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    use burn::backend::wgpu::WgpuDevice;
    use burn::backend::Wgpu;
    use burn::tensor::DType;
    use codescale_core::{BadInput, Precision, TrialConfig};
    use wgpu::{AdapterInfo, DeviceType};

    /// The adapter a trial runs on: cubecl's name for it and the words provenance records.
    pub struct Adapter {
        pub device: WgpuDevice,
        pub name: String,
    }

    /// GPUs before virtual ones before the CPU, so `device = 0` (the default) is the best there is.
    fn rank(kind: DeviceType) -> u8 {
        match kind {
            DeviceType::DiscreteGpu => 0,
            DeviceType::IntegratedGpu => 1,
            DeviceType::VirtualGpu => 2,
            DeviceType::Cpu => 3,
            DeviceType::Other => 4,
        }
    }

    fn kind(kind: DeviceType) -> &'static str {
        match kind {
            DeviceType::DiscreteGpu => "discrete GPU",
            DeviceType::IntegratedGpu => "integrated GPU",
            DeviceType::VirtualGpu => "virtual GPU",
            DeviceType::Cpu => "cpu",
            DeviceType::Other => "other",
        }
    }

    fn describe(info: &AdapterInfo) -> String {
        format!(
            "{}; {:?} {}; driver {}, {}",
            info.name,
            info.backend,
            kind(info.device_type),
            info.driver,
            info.driver_info
        )
    }

    /// Every adapter of the graphics API cubecl uses here (Vulkan on Linux, Metal on macOS),
    /// best kind first, each with the device cubecl opens it by: the n-th adapter of its kind in
    /// the driver's order (cubecl reaches only the first CPU adapter and none of kind "other").
    pub fn adapters() -> Vec<(AdapterInfo, Option<WgpuDevice>)> {
        let backend = AutoGraphicsApi::backend();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: backend.into(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let infos: Vec<AdapterInfo> =
            block_on(instance.enumerate_adapters(backend.into())).iter().map(wgpu::Adapter::get_info).collect();
        let mut listed: Vec<(AdapterInfo, Option<WgpuDevice>)> = infos
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let nth = infos[..i].iter().filter(|o| o.device_type == info.device_type).count();
                let device = match info.device_type {
                    DeviceType::DiscreteGpu => Some(WgpuDevice::DiscreteGpu(nth)),
                    DeviceType::IntegratedGpu => Some(WgpuDevice::IntegratedGpu(nth)),
                    DeviceType::VirtualGpu => Some(WgpuDevice::VirtualGpu(nth)),
                    DeviceType::Cpu if nth == 0 => Some(WgpuDevice::Cpu),
                    DeviceType::Cpu | DeviceType::Other => None,
                };
                (info.clone(), device)
            })
            .collect();
        listed.sort_by_key(|(info, _)| rank(info.device_type));
        listed
    }

    /// The adapter `config.device` picks (default 0), opened, with what the trial needs of it
    /// checked; otherwise what is missing, naming the key.
    pub fn probe(config: &TrialConfig) -> Result<Adapter, BadInput> {
        let index = config.runtime.device.unwrap_or(0);
        let listed = adapters();
        let list = || {
            listed
                .iter()
                .enumerate()
                .map(|(i, (info, _))| format!("{i}: {}", describe(info)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if listed.is_empty() {
            return Err(BadInput(format!(
                "`backend` = \"wgpu\" but wgpu found no {:?} adapter on this machine: install a driver for the GPU, or Mesa's lavapipe to run on the CPU (Debian: mesa-vulkan-drivers), or set `backend = \"flex\"`",
                AutoGraphicsApi::backend()
            )));
        }
        let Some((info, device)) = listed.get(index) else {
            return Err(BadInput(format!(
                "`device` = {index} but wgpu lists {} adapter(s) here, numbered from 0: {}",
                listed.len(),
                list()
            )));
        };
        let Some(device) = device.clone() else {
            return Err(BadInput(format!("`device` = {index} is {}, which cubecl cannot open (only the first CPU adapter, and no adapter of kind \"other\"); the adapters: {}", describe(info), list())));
        };
        let name = format!("wgpu:{index} ({})", describe(info));
        // Opening the device is where cubecl panics when the adapter cannot serve it.
        let supports = |dtype| {
            catch_unwind(AssertUnwindSafe(|| <Wgpu as burn::tensor::backend::Backend>::supports_dtype(&device, dtype)))
        };
        match supports(DType::F32) {
            Ok(true) => {}
            Ok(false) => return Err(BadInput(format!("`backend` = \"wgpu\": adapter {name} cannot compute in f32"))),
            Err(_) => {
                return Err(BadInput(format!(
                    "`backend` = \"wgpu\": cubecl could not open adapter {name} (see the panic above)"
                )))
            }
        }
        if config.runtime.precision == Precision::Bf16 && !supports(DType::BF16).unwrap_or(false) {
            return Err(BadInput(format!(
                "`precision` = \"bf16\" but the wgpu backend cannot compute in bf16 on adapter {name} (cubecl reports no bf16 arithmetic for it; its WGSL compiler has no bf16 type): use `precision = \"f32\"` here, or `backend = \"cuda\"` for bf16"
            )));
        }
        Ok(Adapter { device, name })
    }

    /// Runs a future that is ready at once (wgpu's adapter listing is synchronous on native
    /// platforms).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use codescale_core::BadInput;

    pub fn probe(_index: usize) -> Result<String, BadInput> {
        Err(BadInput("`backend` = \"cuda\" but this codescale was built without CUDA: rebuild with `cargo build --release --features cuda` (see bench/gpu.sh)".into()))
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use codescale_core::BadInput;
    use cudarc::driver::{result as driver, sys as driver_sys, CudaContext};
    use cudarc::nvrtc::sys as nvrtc;

    /// `major.minor` of a CUDA version number such as 13000.
    fn version(v: i32) -> String {
        format!("{}.{}", v / 1000, v % 1000 / 10)
    }

    /// The name of GPU `index`, or what is missing to train on it, in words a user can act on.
    pub fn probe(index: usize) -> Result<String, BadInput> {
        // SAFETY: opens the driver library and closes it again, as cudarc does on first use;
        // nothing of it is called.
        if !unsafe { driver_sys::is_culib_present() } {
            return Err(BadInput("`backend` = \"cuda\" but no CUDA driver (libcuda.so) could be loaded on this machine: run on a machine with an NVIDIA GPU and its driver, or set `backend = \"flex\"`".into()));
        }
        let count = CudaContext::device_count()
            .map_err(|e| BadInput(format!("`backend` = \"cuda\" but the CUDA driver has no usable GPU here ({e})")))?
            .max(0) as usize;
        if index >= count {
            return Err(BadInput(format!("`device` = {index} but this machine has {count} CUDA device(s), numbered from 0 (CUDA_VISIBLE_DEVICES={})", std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into()))));
        }
        let name = driver::device::get(index as i32)
            .and_then(driver::device::get_name)
            .map_err(|e| BadInput(format!("`device` = {index}: the CUDA driver cannot name it ({e})")))?;

        // cudarc calls the driver's entry points of the CUDA version it was built for; an older
        // driver may lack some, which surfaces as a panic deep inside a training step.
        let mut driver_version = 0;
        // SAFETY: writes one integer through a valid pointer.
        unsafe { driver_sys::cuDriverGetVersion(&mut driver_version) }
            .result()
            .map_err(|e| BadInput(format!("`backend` = \"cuda\": the driver does not report its version ({e})")))?;
        let built = driver_sys::CUDA_VERSION as i32;
        if driver_version < built {
            return Err(BadInput(format!(
                "`backend` = \"cuda\": this codescale was built for CUDA {} but the driver supports CUDA {}: rebuild with CUDARC_CUDA_VERSION={}0{}0 (as bench/gpu.sh does)",
                version(built),
                version(driver_version),
                driver_version / 1000,
                driver_version % 1000 / 10
            )));
        }

        // SAFETY: as for the driver above.
        if !unsafe { nvrtc::is_culib_present() } {
            return Err(BadInput("`backend` = \"cuda\" needs NVRTC (libnvrtc.so), which compiles the CUDA kernels at run time, and none could be loaded: install the CUDA toolkit, or put the lib folder of PyTorch's CUDA wheels (site-packages/nvidia/cu13/lib) on LD_LIBRARY_PATH".into()));
        }
        let (mut major, mut minor) = (0, 0);
        // SAFETY: writes two integers through valid pointers.
        unsafe { nvrtc::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|e| BadInput(format!("`backend` = \"cuda\": NVRTC does not report its version ({e:?})")))?;
        // The kernels reach the driver as PTX, which a driver older than the compiler refuses.
        if major * 1000 + minor * 10 > driver_version {
            return Err(BadInput(format!(
                "`backend` = \"cuda\": NVRTC {major}.{minor} writes PTX that this driver (CUDA {}) cannot load: put an NVRTC of CUDA {} or older first on LD_LIBRARY_PATH",
                version(driver_version),
                version(driver_version)
            )));
        }

        let Some(root) = cubecl_cuda::install::cuda_path() else {
            return Err(BadInput("`backend` = \"cuda\" needs the CUDA headers its kernels include, and found no CUDA installation (CUDA_PATH, /usr/local/cuda, /opt/cuda): set CUDA_PATH to a CUDA toolkit, or to PyTorch's site-packages/nvidia/cu13, whose include/ holds cuda_runtime.h".into()));
        };
        let header = root.join("include").join("cuda_runtime.h");
        if !header.exists() {
            return Err(BadInput(format!("`backend` = \"cuda\" needs the CUDA headers its kernels include, and {} is missing: point CUDA_PATH at a folder whose include/ holds them", header.display())));
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use codescale_core::{is_bad_input, DataSpec, ModelSpec, TrialSpec};

    use super::*;

    fn config(sets: &[(&str, &str)]) -> TrialConfig {
        let mut spec = TrialSpec {
            data: DataSpec { language: Some("python".into()), ..Default::default() },
            model: ModelSpec { name: Some("d64-l2".into()), ..Default::default() },
            ..Default::default()
        };
        for (k, v) in sets {
            spec.set(k, v).unwrap();
        }
        spec.resolve().unwrap()
    }

    #[test]
    fn flex_runs_on_the_cpu() {
        assert_eq!(device_name(&config(&[])).unwrap(), "cpu (flex)");
    }

    /// Here, with no GPU, this is the path a user meets: bad input (exit 2) that names the key
    /// and says what is missing, not a panic inside cudarc. On a machine with a GPU, built with
    /// CUDA, device 4095 is what is missing.
    #[test]
    fn a_gpu_that_is_not_here_is_bad_input_naming_the_key() {
        let e = device_name(&config(&[("backend", "cuda"), ("device", "4095")])).unwrap_err();
        let message = format!("{e:#}");
        assert!(is_bad_input(&e), "{message}");
        if cfg!(not(feature = "cuda")) {
            assert!(message.contains("`backend` = \"cuda\"") && message.contains("built without CUDA"), "{message}");
        } else if !std::path::Path::new("/dev/nvidiactl").exists() {
            assert!(
                message.contains("`backend` = \"cuda\"")
                    && (message.contains("libcuda.so") || message.contains("no usable GPU")),
                "{message}"
            );
        } else {
            assert!(message.contains("`device` = 4095"), "{message}");
        }
    }
}
