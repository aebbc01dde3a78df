//! The training runner: epochs of wake–sleep cycles over shuffled mini-batches, with a
//! progress bar, per-epoch losses and image grids in the run's HDF5 file (and PNGs), atomic
//! checkpoints every epoch and on Ctrl-C, resume, and a clean stop when a loss diverges.
//!
//! A run's folder holds `run.h5` (results), `checkpoint.h5` (state to resume from),
//! `config.toml` (the resolved configuration) and `images/*.png`.
//!
//! Determinism: the order of epoch `e` is a permutation drawn from the stream
//! `(seed, "shuffle/e")`, dreams from the brain's own stream, kept in the checkpoint; kernels
//! give the same bits for any thread count. So a run resumed from a checkpoint, or run with
//! another thread count, ends bit-identical to an uninterrupted one.
//!
//! PAD equivalent: the reference's epoch loop (`for epoch in range(n_epochs): for x, _ in
//! loader: ...`, DataLoader with shuffle=True, drop_last=True).

use super::config::{Config, ConfigError};
use super::evaluate;
use super::snapshot;
use crate::brain::Hippocampus;
use crate::brain::{Brain, CycleLosses};
use crate::cortex::Activity;
use crate::data::{self, DataError, Dataset, Split};
use crate::record::{self, RecordError, RunAttributes, RunFile};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray_rand::rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Set (e.g. by a Ctrl-C handler) to make the runner checkpoint after the current cycle and
/// return.
pub static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// File names inside a run folder.
pub const RUN_FILE: &str = "run.h5";
/// The checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint.h5";

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Unreadable data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Results or checkpoint could not be written or read.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Other file-system failure.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The run folder already has results and `--resume` was not given.
    #[error(
        "{0} already holds a run; pass --resume to continue it, or choose another --out / run_name"
    )]
    Exists(PathBuf),
    /// The checkpoint belongs to a different configuration.
    #[error("cannot resume from {path}: {reason}")]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A loss became NaN or infinite.
    #[error("{state}/{term} is {value} at epoch {epoch}, cycle {cycle}: training stopped; the last good checkpoint is {checkpoint}")]
    Diverged {
        /// Brain state.
        state: String,
        /// Loss term.
        term: String,
        /// The value.
        value: f64,
        /// Epoch (0-based).
        epoch: usize,
        /// Cycle within the epoch (0-based).
        cycle: usize,
        /// Where the last good state is.
        checkpoint: String,
    },
    /// The data set has fewer images than one mini-batch.
    #[error("the training set has {images} images, fewer than one mini-batch of {batch}")]
    TooLittleData {
        /// Images available.
        images: usize,
        /// Batch size.
        batch: usize,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the run folder's checkpoint if there is one.
    pub resume: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What a finished (or interrupted) run did.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run's folder.
    pub run_dir: PathBuf,
    /// Epochs completed in total.
    pub epochs_completed: usize,
    /// Cycles run by this invocation.
    pub cycles: usize,
    /// Wall time of this invocation, seconds.
    pub seconds: f64,
    /// Mean losses of the last completed epoch: (state, term, value).
    pub last_epoch_losses: Vec<(String, String, f64)>,
    /// Whether the run stopped on an interrupt.
    pub interrupted: bool,
}

/// Running sums of each (state, term) over an epoch.
#[derive(Default)]
struct EpochLosses {
    sums: BTreeMap<(String, String), (f64, u64)>,
}

impl EpochLosses {
    fn add(&mut self, cycle: &CycleLosses) {
        for (state, losses) in cycle {
            for (term, value) in losses {
                let entry = self
                    .sums
                    .entry((state.to_string(), term.to_string()))
                    .or_default();
                entry.0 += value;
                entry.1 += 1;
            }
        }
    }

    fn means(&self) -> Vec<(String, String, f64)> {
        self.sums
            .iter()
            .map(|((s, t), (sum, n))| (s.clone(), t.clone(), sum / *n as f64))
            .collect()
    }

    /// Flattened for a checkpoint: `state/term/sum` and `state/term/count`.
    fn to_scalars(&self) -> Vec<(String, f64)> {
        self.sums
            .iter()
            .flat_map(|((s, t), (sum, n))| {
                [
                    (format!("{s}/{t}/sum"), *sum),
                    (format!("{s}/{t}/count"), *n as f64),
                ]
            })
            .collect()
    }

    fn from_scalars(scalars: &[(String, f64)]) -> Self {
        let mut out = EpochLosses::default();
        for (key, value) in scalars {
            let Some(prefix) = key.strip_suffix("/sum") else {
                continue;
            };
            let Some((state, term)) = prefix.split_once('/') else {
                continue;
            };
            let count = scalars
                .iter()
                .find(|(k, _)| *k == format!("{prefix}/count"))
                .map_or(0.0, |(_, c)| *c);
            out.sums.insert(
                (state.to_string(), term.to_string()),
                (*value, count as u64),
            );
        }
        out
    }

    fn running_message(&self) -> String {
        self.means()
            .iter()
            .filter(|(_, t, _)| t != "total")
            .map(|(s, t, v)| format!("{s}/{t} {v:.4}"))
            .collect::<Vec<_>>()
            .join("  ")
    }
}

/// The order of the training set in `epoch`.
pub fn epoch_order(seed: u64, epoch: usize, len: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut crate::rng::stream(seed, &format!("shuffle/{epoch}")));
    order
}

/// A configured brain, not yet trained, with its plasticity rules installed. Fails if
/// `plasticity.areas` names an unknown area, or if the data set's image channels are only
/// known from its files (`image_folder`, `npy`: use [`build_brain_for`] with the loaded set's
/// channels).
pub fn build_brain(config: &Config) -> Result<Brain, ConfigError> {
    let channels = config.dataset.channels().ok_or_else(|| {
        ConfigError::Invalid(format!(
            "the image channels of dataset '{}' follow its files: load them and build the brain with build_brain_for",
            config.dataset
        ))
    })?;
    build_brain_for(config, channels)
}

/// [`build_brain`] for images of `image_channels` channels (the loaded data set's).
pub fn build_brain_for(config: &Config, image_channels: usize) -> Result<Brain, ConfigError> {
    let mut brain = Brain::new(
        &config.architecture(image_channels)?,
        config.resolved_schedule(),
        config.optimiser,
        config.seed,
    );
    brain.hippocampus = Hippocampus::new(config.hippocampus.capacity, config.hippocampus.policy);
    brain.conductor = config.conductor.clone();
    config
        .plasticity
        .install(&mut brain.cortex, config.seed)
        .map_err(ConfigError::Invalid)?;
    Ok(brain)
}

/// The configured data set at the network's input side (`model.image_side`).
pub fn load_data(config: &Config) -> Result<Split, TrainError> {
    let dir = config.resolved_data_dir()?;
    let side = config.model.image_side;
    Ok(data::load_sized(config.dataset, &dir, &config.data, side)?)
}

/// Trains as configured. Runs inside a rayon pool of `config.threads` threads.
pub fn train(config: &Config, options: TrainOptions) -> Result<RunSummary, TrainError> {
    config.validate()?;
    config
        .thread_pool()
        .install(|| train_in_pool(config, None, options))
}

/// Trains `brain`, built in code (any architecture, rules, schedule and optimisers), on the
/// data, epochs, evaluation and recording of `config`. The run's `config.toml` records the
/// brain's architecture as `[[model.*]]` areas (so `padsim eval` and `padsim report` can rebuild
/// it); rules, schedule and optimisers set in code are the caller's to rebuild on `--resume`.
/// The data are brought to the brain's image side; a brain for other channels than the data's
/// is refused.
pub fn train_brain(
    config: &Config,
    brain: Brain,
    options: TrainOptions,
) -> Result<RunSummary, TrainError> {
    let mut config = config.clone();
    config.model = super::config::ModelConfig::from_architecture(&brain.cortex.architecture);
    config.validate()?;
    config
        .thread_pool()
        .install(|| train_in_pool(&config, Some(brain), options))
}

fn train_in_pool(
    config: &Config,
    brain: Option<Brain>,
    options: TrainOptions,
) -> Result<RunSummary, TrainError> {
    let started = Instant::now();
    // The data first: the brain's input channels follow it. (Every random stream is named, so
    // the order does not change any number.)
    let split = load_data(config)?;
    let channels = split.train.channels();
    let mut brain = match brain {
        None => build_brain_for(config, channels)?,
        Some(brain) => {
            let arch = &brain.cortex.architecture;
            let images = (arch.image_channels, arch.image_side, arch.image_side);
            let data = (channels, split.train.height(), split.train.width());
            if images != data {
                return Err(ConfigError::Invalid(format!(
                    "the brain sees {}×{}×{} images, the data set has {}×{}×{}",
                    images.0, images.1, images.2, data.0, data.1, data.2
                ))
                .into());
            }
            brain
        }
    };
    let train_set = &split.train;
    let batch = config.batch_size;
    let cycles_per_epoch =
        (train_set.len() / batch).min(config.max_cycles_per_epoch.unwrap_or(usize::MAX));
    if cycles_per_epoch == 0 {
        return Err(TrainError::TooLittleData {
            images: train_set.len(),
            batch,
        });
    }

    let run_dir = config.run_dir();
    std::fs::create_dir_all(run_dir.join("images")).map_err(io(&run_dir))?;
    let run_path = run_dir.join(RUN_FILE);
    let checkpoint_path = run_dir.join(CHECKPOINT_FILE);
    let config_toml = config.to_toml();

    let (mut epoch, mut start_cycle, mut partial) = (0usize, 0usize, EpochLosses::default());
    let run_file = if options.resume && checkpoint_path.exists() {
        let checkpoint = record::Checkpoint::read(&checkpoint_path)?;
        check_resumable(config, &checkpoint.config_toml).map_err(|reason| TrainError::Resume {
            path: checkpoint_path.clone(),
            reason,
        })?;
        snapshot::restore(&mut brain, &checkpoint).map_err(|reason| TrainError::Resume {
            path: checkpoint_path.clone(),
            reason,
        })?;
        epoch = checkpoint.epoch as usize;
        start_cycle = checkpoint.batch as usize;
        partial = EpochLosses::from_scalars(&checkpoint.scalars);
        let run_file = RunFile::open(&run_path)?;
        run_file.truncate_epochs(epoch)?;
        run_file
    } else {
        if run_path.exists() && !options.resume {
            return Err(TrainError::Exists(run_dir));
        }
        let attributes = RunAttributes {
            padsim_version: env!("CARGO_PKG_VERSION").to_string(),
            config_toml: config_toml.clone(),
            seed: config.seed,
            dataset: config.dataset.to_string(),
            condition: if config.schedule.is_some() {
                "custom".into()
            } else {
                config.condition.to_string()
            },
            plasticity: config.plasticity.summary(),
            optimiser: config.optimiser.summary(),
            created: now_utc(),
        };
        RunFile::create(&run_path, &attributes)?
    };
    std::fs::write(run_dir.join("config.toml"), &config_toml).map_err(io(&run_dir))?;
    if config.eval.due_after(0, config.epochs) && epoch == 0 && start_cycle == 0 {
        run_evaluation(
            &mut brain,
            config,
            &split,
            &run_file,
            &run_dir,
            0,
            &ProgressBar::hidden(),
        )?;
    }

    let preview = preview_batch(&split.test, config.record.images);
    let total =
        (config.epochs.saturating_sub(epoch) * cycles_per_epoch).saturating_sub(start_cycle);
    let bar = progress_bar(options.progress, total as u64);
    let mut cycles = 0;
    let mut last_epoch_losses = Vec::new();
    while epoch < config.epochs {
        let order = epoch_order(config.seed, epoch, train_set.len());
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, config.epochs));
        for cycle in start_cycle..cycles_per_epoch {
            if cycle == 0 && config.hippocampus.forget_each_epoch {
                brain.hippocampus.clear();
            }
            let indices = &order[cycle * batch..(cycle + 1) * batch];
            let x = Activity::from_nchw(train_set.batch_f32(indices).view());
            let losses = brain.cycle(&x);
            if let Some((state, term, value)) = first_non_finite(&losses) {
                bar.abandon();
                return Err(TrainError::Diverged {
                    state,
                    term,
                    value,
                    epoch,
                    cycle,
                    checkpoint: if checkpoint_path.exists() {
                        checkpoint_path.display().to_string()
                    } else {
                        "none (diverged before the first epoch ended)".into()
                    },
                });
            }
            partial.add(&losses);
            cycles += 1;
            bar.inc(1);
            if cycle % 10 == 0 {
                bar.set_message(partial.running_message());
            }
            if INTERRUPT.load(Ordering::SeqCst) && cycle + 1 < cycles_per_epoch {
                let checkpoint = snapshot::capture(
                    &brain,
                    config_toml.clone(),
                    epoch as u64,
                    (cycle + 1) as u64,
                    partial.to_scalars(),
                );
                checkpoint.write_atomic(&checkpoint_path)?;
                return Ok(interrupted(
                    &bar,
                    &checkpoint_path,
                    run_dir,
                    epoch,
                    cycles,
                    started,
                    last_epoch_losses,
                ));
            }
        }
        last_epoch_losses = partial.means();
        run_file.record_losses(epoch, &last_epoch_losses)?;
        let every = config.record.images_every;
        if every > 0 && ((epoch + 1) % every == 0 || epoch + 1 == config.epochs) {
            if let Some(preview) = &preview {
                record_images(&mut brain, config, &run_file, &run_dir, epoch, preview)?;
            }
        }
        if config.eval.due_after(epoch + 1, config.epochs) {
            run_evaluation(
                &mut brain,
                config,
                &split,
                &run_file,
                &run_dir,
                epoch + 1,
                &bar,
            )?;
        }
        run_file.flush()?;
        epoch += 1;
        start_cycle = 0;
        partial = EpochLosses::default();
        // The next cycle rebuilds the activity areas keep for their backward passes; freeing
        // it here keeps the checkpoint's copies of the parameters from raising peak memory.
        for area in brain.cortex.areas_mut() {
            area.forget();
        }
        snapshot::capture(&brain, config_toml.clone(), epoch as u64, 0, Vec::new())
            .write_atomic(&checkpoint_path)?;
        let keep = config.record.keep_checkpoints_every;
        if keep > 0 && epoch % keep == 0 {
            let kept = kept_checkpoint(&run_dir, epoch);
            std::fs::create_dir_all(run_dir.join("checkpoints")).map_err(io(&run_dir))?;
            std::fs::copy(&checkpoint_path, &kept).map_err(io(&kept))?;
        }
        if INTERRUPT.load(Ordering::SeqCst) && epoch < config.epochs {
            return Ok(interrupted(
                &bar,
                &checkpoint_path,
                run_dir,
                epoch,
                cycles,
                started,
                last_epoch_losses,
            ));
        }
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        run_dir,
        epochs_completed: epoch,
        cycles,
        seconds: started.elapsed().as_secs_f64(),
        last_epoch_losses,
        interrupted: false,
    })
}

/// Ends the progress bar and summarises a run stopped by an interrupt after its checkpoint
/// was written.
fn interrupted(
    bar: &ProgressBar,
    checkpoint_path: &Path,
    run_dir: PathBuf,
    epochs_completed: usize,
    cycles: usize,
    started: Instant,
    last_epoch_losses: Vec<(String, String, f64)>,
) -> RunSummary {
    bar.abandon_with_message(format!(
        "interrupted; state saved to {} (resume with --resume)",
        checkpoint_path.display()
    ));
    RunSummary {
        run_dir,
        epochs_completed,
        cycles,
        seconds: started.elapsed().as_secs_f64(),
        last_epoch_losses,
        interrupted: true,
    }
}

/// Where the copy of the checkpoint after `epoch` epochs is kept.
pub fn kept_checkpoint(run_dir: &Path, epoch: usize) -> PathBuf {
    run_dir
        .join("checkpoints")
        .join(format!("epoch_{epoch:04}.h5"))
}

/// Evaluates the brain's feedforward pathway, records the result and redraws the figures.
fn run_evaluation(
    brain: &mut Brain,
    config: &Config,
    split: &Split,
    run_file: &RunFile,
    run_dir: &Path,
    epoch: usize,
    bar: &ProgressBar,
) -> Result<(), TrainError> {
    let say = |line: String| {
        if bar.is_hidden() {
            eprintln!("{line}")
        } else {
            bar.println(line)
        }
    };
    say(format!(
        "evaluating the feedforward pathway after {epoch} epoch(s)..."
    ));
    let report = evaluate::evaluate(
        &mut brain.cortex.feedforward,
        split,
        &config.eval,
        config.seed,
        epoch,
    );
    evaluate::record(run_file, &report)?;
    evaluate::render_figures(
        run_file,
        &run_dir.join("figures"),
        split.test.class_names(),
        &report,
    )?;
    say(evaluate::summary(&report));
    Ok(())
}

/// Whether a checkpoint (or run file) whose configuration is the TOML text `stored` may be
/// continued by `config`: only the number of epochs, the thread count, how often to evaluate,
/// what is recorded, and where the data and the runs live may differ, as none of them changes
/// the numbers (a cluster may stage the data at another path; a sweep may keep fewer
/// checkpoints than a single run's configuration).
pub fn check_resumable(config: &Config, stored: &str) -> Result<(), String> {
    let stored =
        Config::from_toml(stored).map_err(|e| format!("its configuration does not parse: {e}"))?;
    let mut same = config.clone();
    same.epochs = stored.epochs;
    same.threads = stored.threads;
    same.eval.every = stored.eval.every;
    same.eval.before_and_after = stored.eval.before_and_after;
    same.record = stored.record;
    same.data_dir.clone_from(&stored.data_dir);
    same.out_dir.clone_from(&stored.out_dir);
    if same != stored {
        return Err("it was written by a different configuration (only epochs, threads, eval.every, eval.before_and_after, record, data_dir and out_dir may change on resume)".into());
    }
    Ok(())
}

fn first_non_finite(losses: &CycleLosses) -> Option<(String, String, f64)> {
    losses.iter().find_map(|(state, terms)| {
        terms
            .iter()
            .find(|(_, v)| !v.is_finite())
            .map(|(t, v)| (state.to_string(), t.to_string(), *v))
    })
}

/// The first `n` test images: a fixed batch to reconstruct and dream from every epoch.
fn preview_batch(test: &Dataset, n: usize) -> Option<Activity> {
    let n = n.min(test.len());
    (n >= 2).then(|| Activity::from_nchw(test.batch_f32(&(0..n).collect::<Vec<_>>()).view()))
}

fn record_images(
    brain: &mut Brain,
    config: &Config,
    run_file: &RunFile,
    run_dir: &Path,
    epoch: usize,
    preview: &Activity,
) -> Result<(), TrainError> {
    let mut rng = crate::rng::stream(config.seed, &format!("images/{epoch}"));
    let dreams = brain.dreams(preview, &mut rng);
    let columns = (preview.batch() as f64).sqrt().ceil() as usize;
    for (name, images) in [
        ("input", preview),
        ("wake_reconstruction", &dreams.wake_reconstruction),
        ("nrem_dream", &dreams.nrem_dream),
        ("rem_dream", &dreams.rem_dream),
    ] {
        let pixels = record::to_u8(images.to_nchw().view());
        run_file.record_images(epoch, name, pixels.view())?;
        let png = run_dir
            .join("images")
            .join(format!("epoch_{:04}_{name}.png", epoch + 1));
        record::save_grid_png(&png, pixels.view(), columns, 2)?;
    }
    Ok(())
}

fn progress_bar(visible: bool, total: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} cycles, {per_sec}, ETA {eta}\n  {msg}")
            .expect("valid template"),
    );
    bar
}

/// Current UTC time as ISO 8601, without a date crate.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_that_differ_by_epoch() {
        let a = epoch_order(3, 0, 100);
        let b = epoch_order(3, 1, 100);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(a, b);
        assert_eq!(a, epoch_order(3, 0, 100));
    }

    #[test]
    fn partial_epoch_sums_survive_a_checkpoint() {
        let mut losses = EpochLosses::default();
        losses.add(&vec![(
            "wake".to_string(),
            vec![("kl", 1.5), ("total", 2.0)],
        )]);
        losses.add(&vec![(
            "wake".to_string(),
            vec![("kl", 0.5), ("total", 1.0)],
        )]);
        let back = EpochLosses::from_scalars(&losses.to_scalars());
        assert_eq!(back.means(), losses.means());
    }

    #[test]
    fn timestamps_are_iso_8601() {
        let t = now_utc();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}

/// Which encoder state `padsim eval` should evaluate.
#[derive(Clone, Debug)]
pub struct EvalTarget {
    /// The run's folder.
    pub run_dir: PathBuf,
    /// The checkpoint to restore, or `None` for the untrained encoder (epoch 0).
    pub checkpoint: Option<PathBuf>,
}

/// Resolves `padsim eval`'s argument (a run folder, its run.h5 or a checkpoint file) and
/// `--epoch` into the state to evaluate.
pub fn locate(target: &Path, epoch: Option<usize>) -> Result<EvalTarget, TrainError> {
    let missing = |path: &Path, what: &str| TrainError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, what.to_string()),
    };
    let (run_dir, latest) = if target.is_dir() {
        (target.to_path_buf(), target.join(CHECKPOINT_FILE))
    } else if target.file_name().is_some_and(|n| n == RUN_FILE) {
        let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
        let latest = dir.join(CHECKPOINT_FILE);
        (dir, latest)
    } else if target.is_file() {
        // A checkpoint: either the run's latest or a kept copy in <run>/checkpoints/.
        let parent = target.parent().unwrap_or(Path::new("."));
        let dir = if parent.file_name().is_some_and(|n| n == "checkpoints") {
            parent.parent().unwrap_or(parent)
        } else {
            parent
        };
        (dir.to_path_buf(), target.to_path_buf())
    } else {
        return Err(missing(
            target,
            "no run folder, run file or checkpoint here",
        ));
    };
    let checkpoint = match epoch {
        Some(0) => None,
        None => Some(latest),
        Some(n) => {
            let kept = kept_checkpoint(&run_dir, n);
            if kept.exists() {
                Some(kept)
            } else {
                let latest_epoch = record::Checkpoint::read(&latest)
                    .ok()
                    .map(|c| (c.epoch, c.batch));
                match latest_epoch {
                    Some((e, 0)) if e as usize == n => Some(latest),
                    _ => return Err(missing(&kept, "no checkpoint of that epoch (keep them with record.keep_checkpoints_every; --epoch 0 is the untrained encoder)")),
                }
            }
        }
    };
    if let Some(path) = &checkpoint {
        if !path.exists() {
            return Err(missing(path, "no checkpoint"));
        }
    }
    Ok(EvalTarget {
        run_dir,
        checkpoint,
    })
}

/// `padsim eval`: evaluates an encoder state of a run and, when the run file is there and the
/// state ends an epoch, records the results and redraws the figures.
///
/// `threads` and `precision` replace the run's (`precision`: the operands of the feature
/// extraction's products; the probes run in f32 either way).
pub fn evaluate_run(
    target: &EvalTarget,
    threads: Option<usize>,
    precision: Option<crate::kernels::gemm::Precision>,
) -> Result<evaluate::EvalReport, TrainError> {
    let checkpoint = match &target.checkpoint {
        Some(path) => Some(record::Checkpoint::read(path)?),
        None => None,
    };
    let config_toml = match &checkpoint {
        Some(c) => c.config_toml.clone(),
        None => std::fs::read_to_string(target.run_dir.join("config.toml"))
            .map_err(io(&target.run_dir.join("config.toml")))?,
    };
    let mut config = Config::from_toml(&config_toml).map_err(|message| ConfigError::Parse {
        path: target.run_dir.join("config.toml"),
        message,
    })?;
    if let Some(t) = threads {
        config.threads = t;
    }
    if let Some(p) = precision {
        config.precision = p;
    }
    config.thread_pool().install(|| {
        let split = load_data(&config)?;
        let mut brain = build_brain_for(&config, split.train.channels())?;
        // The checkpoint is dropped once restored: it would double the brain's memory during
        // the evaluation.
        let (epoch, mid_epoch) = match checkpoint {
            Some(c) => {
                let path = target.checkpoint.clone().unwrap_or_default();
                snapshot::restore(&mut brain, &c)
                    .map_err(|reason| TrainError::Resume { path, reason })?;
                (c.epoch as usize, c.batch > 0)
            }
            None => (0, false),
        };
        let report = evaluate::evaluate(
            &mut brain.cortex.feedforward,
            &split,
            &config.eval,
            config.seed,
            epoch,
        );
        let run_path = target.run_dir.join(RUN_FILE);
        if run_path.exists() && !mid_epoch {
            let run_file = RunFile::open(&run_path)?;
            evaluate::record(&run_file, &report)?;
            evaluate::render_figures(
                &run_file,
                &target.run_dir.join("figures"),
                split.test.class_names(),
                &report,
            )?;
        } else if mid_epoch {
            eprintln!(
                "note: the checkpoint was taken inside epoch {}; results are printed, not recorded",
                epoch + 1
            );
        }
        Ok(report)
    })
}
