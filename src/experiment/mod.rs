//! Experiments: run configuration, the training runner with checkpoint/resume, sweeps over
//! conditions, seeds and data sets, and reports comparing their runs.

pub mod config;
pub mod evaluate;
pub mod report;
pub mod runner;
pub mod snapshot;
pub mod sweep;

pub use config::{Config, ConfigError};
pub use runner::{train, train_brain, RunSummary, TrainError, TrainOptions};
