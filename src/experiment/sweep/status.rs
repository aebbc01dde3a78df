//! Where a sweep's run stands on disk, read from its checkpoint's header and its run file, and
//! so what the sweep does with it.
//!
//! The training runner writes, at the end of each epoch: the epoch's losses, image grids and
//! (when due) the evaluation into `run.h5`, and only then the checkpoint. So:
//! - no `run.h5`: nothing was trained ([`RunState::Fresh`]);
//! - `run.h5` without a checkpoint: the run was cut off before its first epoch ended. Nothing in
//!   the run file is needed (a fresh run with the same seed writes the same numbers again), but
//!   the runner refuses to overwrite it, so the sweep deletes that one file, after checking it
//!   belongs to the same configuration, and starts over ([`RunState::Abandoned`]);
//! - a checkpoint before the last epoch, or inside an epoch: resume ([`RunState::Partial`]);
//! - a checkpoint after the last epoch: complete, once the run file holds the evaluation of
//!   that epoch ([`RunState::Complete`]); without it (the run was trained with evaluation off)
//!   the sweep evaluates the checkpoint ([`RunState::Unevaluated`]);
//! - anything else (another configuration's run in the folder, more epochs than asked, an
//!   unreadable file) is left alone and reported ([`RunState::Conflict`]).

use crate::experiment::runner::{check_resumable, CHECKPOINT_FILE, RUN_FILE};
use crate::experiment::Config;
use crate::record::{Checkpoint, RunFile};
use std::fmt;
use std::path::Path;

/// A run's state, as found in its folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Nothing trained yet.
    Fresh,
    /// A run file of this configuration but no checkpoint: cut off during the first epoch.
    Abandoned,
    /// Checkpointed after `epoch` epochs and `batch` cycles of the next.
    Partial {
        /// Epochs completed.
        epoch: u64,
        /// Cycles into the next epoch.
        batch: u64,
    },
    /// Trained for every epoch, the final evaluation not recorded.
    Unevaluated,
    /// Trained and evaluated.
    Complete,
    /// Not this sweep's to touch; the reason, naming the file.
    Conflict(String),
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunState::Fresh => f.write_str("not started"),
            RunState::Abandoned => f.write_str("cut off in its first epoch"),
            RunState::Partial { epoch, batch: 0 } => write!(f, "{epoch} epoch(s) done"),
            RunState::Partial { epoch, batch } => {
                write!(f, "{epoch} epoch(s) and {batch} cycle(s) done")
            }
            RunState::Unevaluated => f.write_str("trained, final evaluation missing"),
            RunState::Complete => f.write_str("complete"),
            RunState::Conflict(reason) => write!(f, "conflict: {reason}"),
        }
    }
}

impl RunState {
    /// Reads the state of the run `config` describes, in `config.run_dir()`.
    pub fn of(config: &Config) -> RunState {
        let dir = config.run_dir();
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let run_path = dir.join(RUN_FILE);
        if checkpoint_path.exists() {
            let header = match Checkpoint::read_header(&checkpoint_path) {
                Ok(header) => header,
                Err(e) => return RunState::Conflict(e.to_string()),
            };
            if let Err(reason) = check_resumable(config, &header.config_toml) {
                return conflict_of_configuration(&checkpoint_path, &reason, &dir);
            }
            if !run_path.exists() {
                return RunState::Conflict(format!(
                    "{} has a checkpoint but no {RUN_FILE}; delete the folder to start the run over",
                    dir.display()
                ));
            }
            let epochs = config.epochs as u64;
            if header.epoch > epochs || (header.epoch == epochs && header.batch > 0) {
                return RunState::Conflict(format!(
                    "{} was trained for {} epoch(s), more than the {epochs} asked for",
                    checkpoint_path.display(),
                    header.epoch
                ));
            }
            if header.epoch < epochs {
                return RunState::Partial {
                    epoch: header.epoch,
                    batch: header.batch,
                };
            }
            match evaluated_epochs(&run_path) {
                Ok(epochs_evaluated) if epochs_evaluated.contains(&(epochs as i64)) => {
                    RunState::Complete
                }
                Ok(_) => RunState::Unevaluated,
                Err(reason) => RunState::Conflict(reason),
            }
        } else if run_path.exists() {
            let stored = RunFile::open_read(&run_path)
                .and_then(|run| run.attribute("config"))
                .map_err(|e| e.to_string())
                .or_else(|run_error| {
                    // The run file may be torn by the kill; the runner writes config.toml
                    // right after creating it.
                    std::fs::read_to_string(dir.join("config.toml")).map_err(|_| run_error)
                });
            match stored {
                Ok(stored) => match check_resumable(config, &stored) {
                    Ok(()) => RunState::Abandoned,
                    Err(reason) => conflict_of_configuration(&run_path, &reason, &dir),
                },
                Err(reason) => RunState::Conflict(format!(
                    "{reason}; there is no checkpoint, so delete {} to start the run over",
                    dir.display()
                )),
            }
        } else {
            RunState::Fresh
        }
    }
}

fn conflict_of_configuration(file: &Path, reason: &str, dir: &Path) -> RunState {
    RunState::Conflict(format!(
        "{}: {reason}; move {} away or give the sweep another out_dir",
        file.display(),
        dir.display()
    ))
}

/// The epochs a run file holds evaluations of (none if it holds no `/eval`).
fn evaluated_epochs(run_path: &Path) -> Result<Vec<i64>, String> {
    let run = RunFile::open_read(run_path).map_err(|e| e.to_string())?;
    if !run.contains("eval/epoch") {
        return Ok(Vec::new());
    }
    run.read_i64_1d("eval/epoch").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{train, TrainOptions};

    fn tiny(out: &Path) -> Config {
        let mut config = Config::from_toml(
            r#"
            dataset = "synthetic"
            epochs = 1
            batch_size = 8
            max_cycles_per_epoch = 2
            threads = 1
            [model]
            nf = 4
            nz = 8
            [data.synthetic]
            train_size = 64
            test_size = 40
            [record]
            images_every = 0
            [eval]
            every = 1
            pca_points = 10
            probe = { epochs = 1 }
            geometry = { intra_pairs_per_class = 5, inter_pairs = 20, occluded_pairs = 20 }
            "#,
        )
        .unwrap();
        config.out_dir = out.to_path_buf();
        config
    }

    #[test]
    fn states_follow_what_is_on_disk() {
        let root = tempfile::tempdir().unwrap();
        let mut config = tiny(root.path());
        assert_eq!(RunState::of(&config), RunState::Fresh);

        train(&config, TrainOptions::default()).unwrap();
        assert_eq!(RunState::of(&config), RunState::Complete);
        // Threads, data and output folders may differ between passes.
        config.threads = 2;
        config.data_dir = Some("/elsewhere".into());
        assert_eq!(RunState::of(&config), RunState::Complete);

        // More epochs asked for: resume.
        config.epochs = 2;
        assert_eq!(
            RunState::of(&config),
            RunState::Partial { epoch: 1, batch: 0 }
        );
        // Train on to 2 epochs; then a sweep asking for 1 must refuse.
        train(
            &config,
            TrainOptions {
                resume: true,
                progress: false,
            },
        )
        .unwrap();
        assert_eq!(RunState::of(&config), RunState::Complete);
        config.epochs = 1;
        let RunState::Conflict(reason) = RunState::of(&config) else {
            panic!("{:?}", RunState::of(&config));
        };
        assert!(reason.contains("trained for 2 epoch(s)"), "{reason}");
        config.epochs = 2;

        // Another configuration in the folder: refuse, naming the file.
        let mut other = config.clone();
        other.model.nz = 16;
        let RunState::Conflict(reason) = RunState::of(&other) else {
            panic!("{:?}", RunState::of(&other));
        };
        assert!(
            reason.contains("checkpoint.h5") && reason.contains("different configuration"),
            "{reason}"
        );

        // No checkpoint (killed in the first epoch): start over, but only if the run file is
        // this configuration's.
        std::fs::remove_file(config.run_dir().join(CHECKPOINT_FILE)).unwrap();
        let RunState::Conflict(reason) = RunState::of(&other) else {
            panic!("{:?}", RunState::of(&other));
        };
        assert!(reason.contains("run.h5"), "{reason}");
        assert_eq!(RunState::of(&config), RunState::Abandoned);
    }

    #[test]
    fn a_run_trained_without_evaluation_is_unevaluated() {
        let root = tempfile::tempdir().unwrap();
        let mut config = tiny(root.path());
        config.eval.every = 0;
        config.eval.before_and_after = false;
        train(&config, TrainOptions::default()).unwrap();
        config.eval.every = 1;
        assert_eq!(RunState::of(&config), RunState::Unevaluated);
        let text = RunState::Partial { epoch: 3, batch: 7 }.to_string();
        assert_eq!(text, "3 epoch(s) and 7 cycle(s) done");
    }
}
