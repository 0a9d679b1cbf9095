//! Checkpoints: parameters, optimizer moments, step and the curve so far, in one file written
//! atomically. Values are stored as raw f32, so a resumed run continues bit for bit.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use codescale_core::CurvePoint;
use serde::{Deserialize, Serialize};

use crate::optim::to_vec;

const MAGIC: &[u8; 8] = b"CSCKPT01";
pub const FILE: &str = "state.bin";
/// A finished trial's final weights, in its folder: what a trial with `init_from` starts from.
pub const WEIGHTS_FILE: &str = "weights.bin";

#[derive(Debug, Serialize, Deserialize)]
pub struct Meta {
    pub trial_id: String,
    /// Optimizer steps completed.
    pub step: usize,
    pub adam_t: u64,
    /// Each parameter's AdamW update count (empty in checkpoints from before per-parameter
    /// counts; such a checkpoint belongs to an older numerics version and is never resumed).
    #[serde(default)]
    pub param_steps: Vec<u64>,
    pub wall_s: f64,
    pub train_s: f64,
    pub curve: Vec<CurvePoint>,
    param_lens: Vec<usize>,
    moment_lens: Vec<Option<usize>>,
}

pub struct Checkpoint {
    pub meta: Meta,
    pub params: Vec<Vec<f32>>,
    pub moments: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

impl Checkpoint {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        trial_id: &str,
        step: usize,
        adam_t: u64,
        param_steps: Vec<u64>,
        wall_s: f64,
        train_s: f64,
        curve: Vec<CurvePoint>,
        params: Vec<Vec<f32>>,
        moments: Vec<Option<(Vec<f32>, Vec<f32>)>>,
    ) -> Self {
        let meta = Meta {
            trial_id: trial_id.to_string(),
            step,
            adam_t,
            param_steps,
            wall_s,
            train_s,
            curve,
            param_lens: params.iter().map(Vec::len).collect(),
            moment_lens: moments.iter().map(|m| m.as_ref().map(|(m, _)| m.len())).collect(),
        };
        Checkpoint { meta, params, moments }
    }

    /// Saves as `dir/state.bin`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.save_file(&dir.join(FILE))
    }

    pub fn save_file(&self, path: &Path) -> Result<()> {
        let meta = serde_json::to_vec(&self.meta)?;
        let floats: usize = self.params.iter().map(Vec::len).sum::<usize>()
            + self.moments.iter().flatten().map(|(m, v)| m.len() + v.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(16 + meta.len() + 4 * floats);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&meta);
        let all = self.params.iter().chain(self.moments.iter().flatten().flat_map(|(m, v)| [m, v]));
        for values in all {
            for x in values {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        codescale_core::atomic::write_atomic(path, &bytes)
    }

    /// Loads `dir/state.bin`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Checkpoint>> {
        Checkpoint::load_file(&dir.join(FILE))
    }

    pub fn load_file(path: &Path) -> Result<Option<Checkpoint>> {
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        ensure!(bytes.len() >= 16 && &bytes[..8] == MAGIC, "{} is not a codescale checkpoint", path.display());
        let meta_len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
        ensure!(meta_len <= bytes.len() - 16, "checkpoint {} is truncated", path.display());
        let meta: Meta = serde_json::from_slice(&bytes[16..16 + meta_len]).context("checkpoint metadata")?;
        let mut floats = bytes[16 + meta_len..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()));
        let mut take = |n: usize| -> Result<Vec<f32>> {
            let v: Vec<f32> = floats.by_ref().take(n).collect();
            ensure!(v.len() == n, "checkpoint {} is truncated", path.display());
            Ok(v)
        };
        let params = meta.param_lens.iter().map(|&n| take(n)).collect::<Result<Vec<_>>>()?;
        let moments = meta
            .moment_lens
            .iter()
            .map(|n| n.map(|n| Ok((take(n)?, take(n)?))).transpose())
            .collect::<Result<Vec<_>>>()?;
        ensure!(floats.next().is_none(), "checkpoint {} has trailing data", path.display());
        Ok(Some(Checkpoint { meta, params, moments }))
    }
}

/// Saves a finished trial's final weights (no optimizer state, no curve) as `dir/weights.bin`,
/// labelled with its id and step.
pub fn save_weights(dir: &Path, trial_id: &str, step: usize, params: Vec<Vec<f32>>) -> Result<()> {
    Checkpoint::new(trial_id, step, 0, Vec::new(), 0.0, 0.0, Vec::new(), params, Vec::new())
        .save_file(&dir.join(WEIGHTS_FILE))
}

/// The final weights of trial `trial_id` from its folder `dir`; an error when they are missing
/// or are another trial's.
pub fn load_weights(dir: &Path, trial_id: &str) -> Result<Vec<Vec<f32>>> {
    let path = dir.join(WEIGHTS_FILE);
    let ck = Checkpoint::load_file(&path)?.ok_or_else(|| codescale_core::BadInput(no_weights(dir)))?;
    ensure!(ck.meta.trial_id == trial_id, "{} holds the weights of trial {}", path.display(), ck.meta.trial_id);
    Ok(ck.params)
}

/// Why a finished trial's folder cannot be started from.
pub fn no_weights(dir: &Path) -> String {
    format!(
        "{} has no final weights ({WEIGHTS_FILE}): trials that finished before codescale kept them have none; \
         remove the folder to train it again",
        dir.display()
    )
}

/// Every float parameter of a module, in visiting order, as host vectors.
pub fn export_params<B: Backend, M: Module<B>>(model: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(to_vec(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// Replaces every float parameter with the stored values (same order, same shapes).
pub fn import_params<B: Backend, M: Module<B>>(model: M, params: Vec<Vec<f32>>) -> Result<M> {
    struct Load {
        params: std::vec::IntoIter<Vec<f32>>,
        error: Option<String>,
    }
    impl<B: Backend> ModuleMapper<B> for Load {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.shape();
            match self.params.next() {
                Some(values) if values.len() == shape.num_elements() => {
                    let grad = tensor.is_require_grad();
                    let loaded = Tensor::<B, D>::from_data(TensorData::new(values, shape), &tensor.device());
                    Param::from_mapped_value(id, if grad { loaded.require_grad() } else { loaded }, mapper)
                }
                _ => {
                    self.error.get_or_insert_with(|| "checkpoint does not match the model's shapes".into());
                    Param::from_mapped_value(id, tensor, mapper)
                }
            }
        }
    }
    let mut load = Load { params: params.into_iter(), error: None };
    let model = model.map(&mut load);
    match load.error {
        Some(e) => anyhow::bail!(e),
        None => Ok(model),
    }
}
