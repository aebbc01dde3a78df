//! Sweeps: a spec (TOML) naming conditions, seeds and data sets, expanded into one training run
//! per combination, each run's state on disk (nothing yet, cut off, trained, evaluated), and
//! the three ways of running them: a local queue of parallel runs, a single task (one element of
//! a SLURM job array), or a SLURM job-array script.
//!
//! ```toml
//! name = "fig4"                       # the sweep's folder: <out_dir>/<name>/
//! out_dir = "runs/sweeps"             # relative to the directory padsim is run from
//! conditions = ["full_pad", "no_nrem", "no_rem", "wake_only"]
//! seeds = [0, 1, 2, 3]
//! datasets = ["cifar10", "svhn"]
//! data_dirs = { cifar10 = "/data/cifar-10-batches-bin" }   # optional; else $PADSIM_DATA
//!
//! [base]                              # a run configuration (see Config) shared by every run
//! epochs = 50
//! [base.eval]
//! every = 5
//!
//! [local]                             # padsim sweep SPEC
//! parallel_runs = 1
//! threads_per_run = 0                 # 0: the machine's cores shared among parallel runs
//!
//! [slurm]                             # padsim sweep SPEC --slurm
//! cpus_per_task = 8
//! time = "24:00:00"
//! mem = "8G"
//! ```
//!
//! Runs are ordered seed by seed, then data set, then condition (task index = position), so a
//! queue finishes every condition of seed 0 first and adding seeds to a spec appends tasks
//! without renumbering the existing ones. Run `i` lives in
//! `<out_dir>/<name>/<dataset>_<condition>_seed<seed>/`; the sweep also writes
//! `<out_dir>/<name>/configs/<run>.toml` (the configuration each run is trained with) and
//! `logs/`.

mod command;
mod queue;
mod slurm;
mod status;

pub use command::{execute, SweepCommand, SweepMode, SLURM_CPUS};
pub use queue::{run_queue, Action, QueueOptions, SweepOutcome, TaskOutcome, INTERRUPTS};
pub use slurm::{shell_quote, slurm_script, SlurmInvocation};
pub use status::RunState;

use super::config::{Config, ConfigError};
use crate::brain::schedule::Condition;
use crate::data::DatasetKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys of `[base]` that the sweep sets for each run itself.
const SWEPT_KEYS: [(&str, &str); 7] = [
    ("seed", "seeds are listed in `seeds`"),
    ("dataset", "data sets are listed in `datasets`"),
    ("condition", "conditions are listed in `conditions`"),
    (
        "schedule",
        "a sweep compares the paper's conditions; give a custom schedule its own run config",
    ),
    (
        "out_dir",
        "runs go to <out_dir>/<name>/; set the sweep's `out_dir`",
    ),
    (
        "run_name",
        "runs are named <dataset>_<condition>_seed<seed>",
    ),
    (
        "data_dir",
        "set `data_dirs = { <dataset> = \"...\" }`, pass --data-dir or set PADSIM_DATA",
    ),
];

/// A sweep as written in its TOML file.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The sweep's name: its folder under `out_dir`, the SLURM job name.
    pub name: String,
    /// Directory receiving the sweep's folder (relative paths: to where padsim runs).
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
    /// The paper's conditions to run.
    pub conditions: Vec<Condition>,
    /// Seeds; each condition and data set runs once per seed.
    pub seeds: Vec<u64>,
    /// Data sets.
    pub datasets: Vec<DatasetKind>,
    /// Where each data set's files are, by data set name; a data set not listed uses
    /// `$PADSIM_DATA/<its usual folder>` when the run starts.
    #[serde(default)]
    pub data_dirs: BTreeMap<String, PathBuf>,
    /// The configuration every run shares (epochs, evaluation, model, ...).
    #[serde(default)]
    pub base: Config,
    /// How `padsim sweep SPEC` runs the sweep on this machine.
    #[serde(default)]
    pub local: LocalSettings,
    /// The resources each task of the SLURM job array asks for.
    #[serde(default)]
    pub slurm: SlurmSettings,
}

fn default_out_dir() -> PathBuf {
    PathBuf::from("runs/sweeps")
}

/// The local queue.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalSettings {
    /// Runs trained at the same time.
    pub parallel_runs: usize,
    /// Threads of each run; 0 = the machine's cores divided among the parallel runs.
    pub threads_per_run: usize,
}

impl Default for LocalSettings {
    fn default() -> Self {
        LocalSettings {
            parallel_runs: 1,
            threads_per_run: 0,
        }
    }
}

/// Resources of one SLURM array task (one run).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmSettings {
    /// `--cpus-per-task`: also the run's thread count (read from SLURM_CPUS_PER_TASK).
    pub cpus_per_task: usize,
    /// `--time` (e.g. `"24:00:00"`, `"2-00:00:00"`); the cluster's default if absent.
    pub time: Option<String>,
    /// `--mem` (e.g. `"8G"`); the cluster's default if absent.
    pub mem: Option<String>,
    /// `--partition`.
    pub partition: Option<String>,
    /// At most this many tasks at once (`--array=0-N%K`).
    pub max_concurrent: Option<usize>,
    /// More `#SBATCH` options, one per entry without the prefix (e.g. `"--account=lab"`).
    pub sbatch_options: Vec<String>,
    /// Shell lines run before padsim in each task (e.g. `"module load hdf5"`).
    pub setup_commands: Vec<String>,
    /// Seconds before the time limit at which SLURM asks a task to checkpoint and stop
    /// (`--signal=B:INT@N`). SLURM sends it on its own timer, up to a minute early or late; an
    /// evaluation in progress delays the checkpoint by its length.
    pub signal_seconds: u32,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            cpus_per_task: 4,
            time: None,
            mem: None,
            partition: None,
            max_concurrent: None,
            sbatch_options: Vec::new(),
            setup_commands: Vec::new(),
            signal_seconds: 600,
        }
    }
}

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Position in the sweep (the SLURM array index).
    pub index: usize,
    /// Data set.
    pub dataset: DatasetKind,
    /// Condition.
    pub condition: Condition,
    /// Seed.
    pub seed: u64,
    /// The run's folder name, `<dataset>_<condition>_seed<seed>`.
    pub name: String,
    /// The run's full configuration. Its `run_name` is left empty: the default name is the
    /// same, and so a run trained with `padsim train --config` from a configuration of the same
    /// settings in the same folder counts as this task's run.
    pub config: Config,
}

impl Task {
    /// The run's folder name, `<dataset>_<condition>_seed<seed>`.
    pub fn run_name(&self) -> &str {
        &self.name
    }

    /// The run's folder.
    pub fn run_dir(&self) -> PathBuf {
        self.config.run_dir()
    }
}

/// Overrides from the command line.
#[derive(Clone, Debug, Default)]
pub struct SpecOverrides {
    /// Replaces `out_dir`.
    pub out_dir: Option<PathBuf>,
    /// `--data-dir [DATASET=]DIR`, in order; a bare DIR needs a sweep over one data set.
    pub data_dirs: Vec<String>,
}

impl SweepSpec {
    /// Reads and validates a spec file; errors name the file and the key.
    pub fn from_file(path: &Path) -> Result<SweepSpec, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let spec = SweepSpec::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.into(),
            message,
        })?;
        spec.validate().map_err(|e| match e {
            ConfigError::Invalid(message) => ConfigError::Parse {
                path: path.into(),
                message,
            },
            other => other,
        })?;
        Ok(spec)
    }

    /// Parses TOML text (not yet validated): unknown keys and keys of `[base]` that the sweep
    /// sets itself are errors naming the key.
    pub fn from_toml(text: &str) -> Result<SweepSpec, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(toml::Value::Table(base)) = table.get("base") {
            for (key, why) in SWEPT_KEYS {
                if base.contains_key(key) {
                    return Err(format!(
                        "[base] must not set `{key}`: the sweep sets it for each run ({why})"
                    ));
                }
            }
            if base.contains_key("threads") {
                return Err("[base] must not set `threads`: use [local] threads_per_run, --threads, or [slurm] cpus_per_task".into());
            }
        }
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks what serde cannot: non-empty, duplicate-free lists, a usable name, data
    /// directories of swept data sets only, evaluation switched on, SLURM values that cannot
    /// break the script, and every run's configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || self.name.starts_with('.')
        {
            return bad(format!(
                "name {:?} must be non-empty, of letters, digits, '_', '-' and '.', and not start with '.' (it names a folder and the SLURM job)",
                self.name
            ));
        }
        check_list("conditions", &self.conditions)?;
        check_list("seeds", &self.seeds)?;
        check_list("datasets", &self.datasets)?;
        for key in self.data_dirs.keys() {
            let kind: DatasetKind = key
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("data_dirs: {e}")))?;
            if !self.datasets.contains(&kind) {
                return bad(format!(
                    "data_dirs names '{key}', which is not in datasets {:?}",
                    self.datasets.iter().map(|d| d.name()).collect::<Vec<_>>()
                ));
            }
        }
        if self.base.epochs == 0 {
            return bad("[base] epochs must be at least 1".into());
        }
        if self.base.eval.every == 0 {
            return bad("[base.eval] every must be at least 1: a sweep's runs are evaluated (and always after their last epoch), so that `padsim report` can compare them".into());
        }
        if self.local.parallel_runs == 0 {
            return bad("[local] parallel_runs must be at least 1".into());
        }
        if self.slurm.cpus_per_task == 0 {
            return bad("[slurm] cpus_per_task must be at least 1".into());
        }
        if self.slurm.max_concurrent == Some(0) {
            return bad("[slurm] max_concurrent must be at least 1 when given".into());
        }
        slurm::check_settings(&self.slurm).map_err(ConfigError::Invalid)?;
        for task in self.tasks() {
            task.config
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("run {}: {e}", task.name)))?;
        }
        Ok(())
    }

    /// Applies command-line overrides (then validate again).
    pub fn apply(&mut self, overrides: &SpecOverrides) -> Result<(), ConfigError> {
        if let Some(out) = &overrides.out_dir {
            self.out_dir.clone_from(out);
        }
        for entry in &overrides.data_dirs {
            let (kind, dir) = match entry.split_once('=') {
                Some((name, dir)) => {
                    let kind: DatasetKind = name.parse().map_err(|e| {
                        ConfigError::Invalid(format!("--data-dir {entry}: {e}"))
                    })?;
                    (kind, dir)
                }
                None if self.datasets.len() == 1 => (self.datasets[0], entry.as_str()),
                None => {
                    return Err(ConfigError::Invalid(format!(
                        "--data-dir {entry}: this sweep has {} data sets; say which one each folder holds, e.g. --data-dir cifar10=/data/cifar-10-batches-bin (or set PADSIM_DATA to a folder holding them all)",
                        self.datasets.len()
                    )))
                }
            };
            if !self.datasets.contains(&kind) {
                return Err(ConfigError::Invalid(format!(
                    "--data-dir {entry}: '{kind}' is not one of the sweep's data sets"
                )));
            }
            self.data_dirs.retain(|key, _| {
                key.parse::<DatasetKind>()
                    .map_or(true, |other| other != kind)
            });
            self.data_dirs
                .insert(kind.name().to_string(), PathBuf::from(dir));
        }
        self.validate()
    }

    /// The sweep's folder, `<out_dir>/<name>`.
    pub fn sweep_dir(&self) -> PathBuf {
        self.out_dir.join(&self.name)
    }

    /// Every run, in task order: seed by seed, then data set, then condition.
    pub fn tasks(&self) -> Vec<Task> {
        let mut tasks = Vec::new();
        for &seed in &self.seeds {
            for &dataset in &self.datasets {
                for &condition in &self.conditions {
                    let mut config = self.base.clone();
                    config.seed = seed;
                    config.dataset = dataset;
                    config.condition = condition;
                    config.schedule = None;
                    config.out_dir = self.sweep_dir();
                    config.run_name = String::new();
                    config.data_dir = self.data_dir(dataset);
                    tasks.push(Task {
                        index: tasks.len(),
                        dataset,
                        condition,
                        seed,
                        name: format!("{dataset}_{condition}_seed{seed}"),
                        config,
                    });
                }
            }
        }
        tasks
    }

    fn data_dir(&self, dataset: DatasetKind) -> Option<PathBuf> {
        self.data_dirs
            .iter()
            .find(|(key, _)| key.parse::<DatasetKind>().is_ok_and(|k| k == dataset))
            .map(|(_, dir)| dir.clone())
    }

    /// One line: what the sweep is.
    pub fn describe(&self) -> String {
        let count = self.conditions.len() * self.seeds.len() * self.datasets.len();
        format!(
            "sweep '{}': {count} runs ({} condition(s) × {} seed(s) × {} data set(s), {} epoch(s), evaluated every {}) in {}",
            self.name,
            self.conditions.len(),
            self.seeds.len(),
            self.datasets.len(),
            self.base.epochs,
            self.base.eval.every,
            self.sweep_dir().display()
        )
    }
}

/// Refuses an empty list or one naming a value twice (which would train the same run twice).
fn check_list<T: PartialEq + std::fmt::Debug>(what: &str, values: &[T]) -> Result<(), ConfigError> {
    if values.is_empty() {
        return Err(ConfigError::Invalid(format!("{what} must not be empty")));
    }
    for (i, value) in values.iter().enumerate() {
        if values[..i].contains(value) {
            return Err(ConfigError::Invalid(format!(
                "{what} lists {value:?} twice"
            )));
        }
    }
    Ok(())
}

/// The thread count of each run: `threads_per_run`, or the machine's cores shared among the
/// parallel runs (at least one each).
pub fn threads_per_run(threads_per_run: usize, parallel_runs: usize) -> usize {
    if threads_per_run > 0 {
        return threads_per_run;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / parallel_runs.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
        name = "tiny"
        out_dir = "out"
        conditions = ["full_pad", "no_rem"]
        seeds = [3, 1]
        datasets = ["synthetic", "cifar10"]
        data_dirs = { cifar10 = "/data/c10" }
        [base]
        epochs = 3
        batch_size = 16
        [base.eval]
        every = 2
    "#;

    #[test]
    fn tasks_go_seed_by_seed_then_dataset_then_condition() {
        let spec = SweepSpec::from_toml(SPEC).unwrap();
        spec.validate().unwrap();
        let names: Vec<String> = spec.tasks().iter().map(|t| t.run_name().into()).collect();
        assert_eq!(
            names,
            [
                "synthetic_full_pad_seed3",
                "synthetic_no_rem_seed3",
                "cifar10_full_pad_seed3",
                "cifar10_no_rem_seed3",
                "synthetic_full_pad_seed1",
                "synthetic_no_rem_seed1",
                "cifar10_full_pad_seed1",
                "cifar10_no_rem_seed1",
            ]
        );
        let tasks = spec.tasks();
        for (i, task) in tasks.iter().enumerate() {
            assert_eq!(task.index, i);
            assert_eq!(task.config.epochs, 3);
            assert_eq!(task.config.batch_size, 16);
            assert_eq!(task.config.eval.every, 2);
            assert_eq!(task.config.seed, task.seed);
            assert_eq!(task.config.resolved_run_name(), task.run_name());
            assert_eq!(task.run_dir(), Path::new("out/tiny").join(task.run_name()));
        }
        assert_eq!(tasks[2].config.data_dir, Some(PathBuf::from("/data/c10")));
        assert_eq!(tasks[0].config.data_dir, None);
        assert_eq!(tasks[1].config.condition, Condition::NoRem);
    }

    #[test]
    fn keys_the_sweep_sets_are_refused_in_base() {
        for key in [
            "seed = 1",
            "dataset = \"svhn\"",
            "run_name = \"x\"",
            "threads = 2",
        ] {
            let text = SPEC.replace("epochs = 3", key);
            let err = SweepSpec::from_toml(&text).unwrap_err();
            let name = key.split(' ').next().unwrap();
            assert!(err.contains(&format!("`{name}`")), "{key}: {err}");
        }
        let err = SweepSpec::from_toml(&SPEC.replace("epochs = 3", "epochz = 3")).unwrap_err();
        assert!(err.contains("epochz"), "{err}");
        let err = SweepSpec::from_toml(&format!("{SPEC}\n[locale]\nx = 1")).unwrap_err();
        assert!(err.contains("locale"), "{err}");
        let err = SweepSpec::from_toml(&SPEC.replace("\"no_rem\"", "\"no_sleep\"")).unwrap_err();
        assert!(err.contains("no_sleep"), "{err}");
    }

    #[test]
    fn invalid_specs_are_explained() {
        let check = |from: &str, to: &str, expect: &str| {
            let spec = SweepSpec::from_toml(&SPEC.replace(from, to)).unwrap();
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(expect), "{to}: {err}");
        };
        check("seeds = [3, 1]", "seeds = [3, 3]", "twice");
        check("seeds = [3, 1]", "seeds = []", "seeds must not be empty");
        check("name = \"tiny\"", "name = \"a/b\"", "name");
        check("every = 2", "every = 0", "every");
        check("cifar10 = ", "svhn = ", "svhn");
        check("cifar10 = ", "imagenet = ", "imagenet");
        check("batch_size = 16", "batch_size = 1", "batch_size");
    }

    #[test]
    fn data_dirs_from_the_command_line() {
        let mut spec = SweepSpec::from_toml(SPEC).unwrap();
        let err = spec
            .apply(&SpecOverrides {
                data_dirs: vec!["/x".into()],
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("cifar10=/"), "{err}");
        spec.apply(&SpecOverrides {
            out_dir: Some("elsewhere".into()),
            data_dirs: vec!["CIFAR-10=/y".into()],
        })
        .unwrap();
        assert_eq!(spec.data_dirs.len(), 1);
        assert_eq!(spec.tasks()[2].config.data_dir, Some(PathBuf::from("/y")));
        assert!(spec.tasks()[0].run_dir().starts_with("elsewhere/tiny"));

        let mut single = SweepSpec::from_toml(
            &SPEC
                .replace(", \"cifar10\"]", "]")
                .replace("data_dirs = { cifar10 = \"/data/c10\" }", ""),
        )
        .unwrap();
        single
            .apply(&SpecOverrides {
                data_dirs: vec!["/z".into()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(single.tasks()[0].config.data_dir, Some(PathBuf::from("/z")));
    }

    #[test]
    fn threads_are_shared_among_parallel_runs() {
        assert_eq!(threads_per_run(3, 8), 3);
        assert!(threads_per_run(0, 1) >= 1);
        assert_eq!(threads_per_run(0, usize::MAX), 1);
    }
}
