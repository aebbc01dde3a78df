//! Experiments: run configuration, the training runner with checkpoint/resume, and sweeps over
//! conditions, seeds and data sets.

pub mod config;
pub mod evaluate;
pub mod runner;
pub mod snapshot;
pub mod sweep;

pub use config::{Config, ConfigError};
pub use runner::{train, RunSummary, TrainError, TrainOptions};
