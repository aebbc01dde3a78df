//! Experiments: run configuration, the training runner with checkpoint/resume.

pub mod config;
pub mod evaluate;
pub mod runner;
pub mod snapshot;

pub use config::{Config, ConfigError};
pub use runner::{train, RunSummary, TrainError, TrainOptions};
