//! Configs, records, schemas and atomic I/O shared by every codescale crate. No heavy
//! dependencies: fitting and reporting build on this without burn or polars.

pub mod accounting;
pub mod architecture;
pub mod atomic;
pub mod config;
pub mod error;
pub mod provenance;
// `build.rs` includes it too and calls what the library itself only calls in tests.
#[cfg_attr(not(test), allow(dead_code))]
mod git;
pub mod record;
pub mod results;
pub mod schedule;
pub mod shape;
pub mod time;

pub use architecture::{ModelConfig, MoeConfig};
pub use config::{
    Arch, Backend, CorpusKey, DataSection, DataSpec, DecayShape, EvalSection, EvalSpec, Gate, Lr, LrRule, ModelSection,
    ModelSpec, OptimizerSection, OptimizerSpec, Precision, RuntimeSection, RuntimeSpec, Schedule, ScheduleSection,
    ScheduleSpec, Sft, TrialConfig, TrialSpec, DEFAULT_FIM_SPM_RATE, FIM_SENTINELS, NUMERICS_VERSION,
};
pub use error::{is_bad_input, BadInput};
pub use record::{BranchOrigin, CurvePoint, CurveRow, Metrics, Provenance, Status, TrialRecord};
pub use results::ResultRow;
