//! The runtime section: the seed, the backend and precision a trial computes with, and the
//! keys that only say where and how a trial runs (`device`, `threads`, checkpoints), which
//! stay out of its id.

use serde::{Deserialize, Serialize};

use super::{bad, positive, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Flex,
    Cuda,
    /// burn's wgpu backend (Vulkan, Metal, DX12): the composed ops, like `cuda`.
    Wgpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Whether `device` picks one of several devices for this backend (a GPU or wgpu adapter).
    pub fn has_devices(self) -> bool {
        matches!(self, Backend::Cuda | Backend::Wgpu)
    }
}

/// The precision of matrix multiplies. Weights, optimizer state, norms, softmax and the loss
/// stay f32 either way, as under PyTorch's autocast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bf16 multiplies (tensor cores on CUDA; emulated by rounding on Flex, which is slower and
    /// only useful to check the numerics).
    Bf16,
}

impl Precision {
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

spec_section! {
    /// The runtime keys a file may set.
    RuntimeSpec {
        seed: u64,
        backend: Backend,
        /// The GPU's index (as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` count) for `backend =
        /// "cuda"`, or the wgpu adapter's (GPUs first, as codescale lists them) for `backend =
        /// "wgpu"`; 0 by default.
        device: usize,
        /// `f32` (default) or `bf16` (autocast matrix multiplies).
        precision: Precision,
        threads: usize,
        /// Optimizer steps between checkpoints (0: about ten in a scheduled run, none alone).
        checkpoint_interval: usize,
    }
}

/// What a trial computes with, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeSection {
    pub seed: u64,
    pub backend: Backend,
    /// Which GPU or adapter (`backend = "cuda"` or `"wgpu"` only). Like `threads`, it changes
    /// where a trial runs, not what it computes: left out of the id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device: Option<usize>,
    /// Left out of the canonical JSON when f32, so ids from before the key existed still hold.
    #[serde(skip_serializing_if = "Precision::is_f32", default)]
    pub precision: Precision,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub threads: Option<usize>,
    pub checkpoint_interval: usize,
}

impl RuntimeSpec {
    pub fn resolve(&self) -> Result<RuntimeSection, ConfigError> {
        if let Some(t) = self.threads {
            positive("threads", t)?;
        }
        let backend = self.backend.unwrap_or(Backend::Flex);
        if self.device.is_some() && !backend.has_devices() {
            return Err(bad(
                "device",
                format!(
                    "picks a GPU, but `backend` is \"{}\": set `backend = \"cuda\"` or `\"wgpu\"`, or remove `device`",
                    backend.as_str()
                ),
            ));
        }
        Ok(RuntimeSection {
            seed: self.seed.unwrap_or(0),
            backend,
            device: self.device,
            precision: self.precision.unwrap_or_default(),
            threads: self.threads,
            checkpoint_interval: self.checkpoint_interval.unwrap_or(0),
        })
    }
}
