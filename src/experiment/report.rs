//! Reports over many runs (`padsim report DIR`): every run file under a folder, grouped by data
//! set and condition, each group's seeds summarised as mean ± SEM (SEM = sample standard
//! deviation, n − 1 in the denominator, over √n; undefined for one seed), as in the paper's
//! appendix table:
//!
//! - linear separability: test (and train) accuracy of the paper's SGD probe and of the
//!   converged probe (Fig 4, appendix table);
//! - occlusion robustness: both probes' test accuracy at each occlusion probability (Fig 5);
//! - latent geometry: intra/inter-class distance ratio and clean-vs-occluded over inter-class
//!   distance (Fig 6e/f), with the distances themselves.
//!
//! Which evaluation of a run: by default the latest epoch any run of its group was evaluated
//! at; runs of the group without an evaluation at that epoch (still training) are left out
//! and listed. `--epoch E` picks epoch E for every group.
//!
//! Groups: runs of the same data set whose configurations agree in everything that changes
//! results (all but seed, epochs, threads, folders, evaluation frequency and what is recorded).
//! Runs on your own data are named by kind and data folder (`image_folder-flowers`), so two
//! own data sets never share a group. Chance lines follow each data set's number of classes
//! (`/eval/classes`; none across data sets whose counts differ).
//! Runs of one condition that differ otherwise (e.g. in plasticity rules) form separate groups
//! labelled with what differs (`full_pad (plasticity.feedforward=feedback_alignment)`), so no
//! table averages across different experiments. A seed counted twice in a group (a copied run)
//! is counted once.
//!
//! Output: `report.md` (tables), tidy CSVs (`linear_separability.csv`,
//! `linear_separability_by_epoch.csv`, `occlusion.csv`, `geometry.csv`: one row per group and
//! measure with n, mean, SEM and the per-seed values; `runs.csv`: one row per run) and PNGs in
//! the spirit of the paper's figures: `fig4_linear_separability.png` (bars at the summarised
//! epoch), `fig4_linear_separability_epochs_<dataset>.png` (over training),
//! `fig5_occlusion_<dataset>.png`, `fig6_distance_ratios.png`.

use super::config::Config;
use super::runner::RUN_FILE;
use crate::brain::schedule::Condition;
use crate::data::DatasetKind;
use crate::record::figures::{self, BandSeries, Bar, BarPanel, BarSeries};
use crate::record::{RecordError, RunFile};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The geometry measures, as named under `/eval/geometry/` and in `geometry.csv`.
pub const GEOMETRY_MEASURES: [&str; 5] = [
    "intra",
    "inter",
    "intra_inter_ratio",
    "clean_occluded",
    "clean_occluded_ratio",
];

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A folder or file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Nothing to report.
    #[error("{0}")]
    Empty(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Mean ± SEM of a measure over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The value of each run, in the group's seed order (NaN where a run lacks the measure).
    pub values: Vec<f64>,
    /// Runs with a finite value.
    pub n: usize,
    /// Their mean (NaN if none).
    pub mean: f64,
    /// Sample standard deviation over √n (NaN if n < 2).
    pub sem: f64,
}

impl Summary {
    /// Summarises the finite entries of `values`.
    pub fn of(values: Vec<f64>) -> Summary {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let n = finite.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            finite.iter().sum::<f64>() / n as f64
        };
        let sem = if n < 2 {
            f64::NAN
        } else {
            let variance = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (variance / n as f64).sqrt()
        };
        Summary {
            values,
            n,
            mean,
            sem,
        }
    }
}

/// One run's measures at the evaluated epoch chosen for its group.
#[derive(Clone, Debug, PartialEq)]
pub struct RunMeasures {
    /// The run file.
    pub path: PathBuf,
    /// Its seed.
    pub seed: u64,
    /// SGD probe, test accuracy (fraction).
    pub linear_test: f64,
    /// SGD probe, training accuracy.
    pub linear_train: f64,
    /// Converged probe, test accuracy.
    pub converged_test: f64,
    /// Converged probe, training accuracy.
    pub converged_train: f64,
    /// SGD probe's test accuracy at each occlusion level.
    pub occlusion_linear: Vec<f64>,
    /// Converged probe's test accuracy at each occlusion level.
    pub occlusion_converged: Vec<f64>,
    /// The [`GEOMETRY_MEASURES`], in that order.
    pub geometry: [f64; 5],
}

/// The runs of one data set and condition (variant), at one epoch, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Data set name.
    pub dataset: String,
    /// The condition, with what distinguishes it from other runs of that condition if any.
    pub condition: String,
    /// Epochs of training before the evaluation summarised.
    pub epoch: i64,
    /// The runs, by seed.
    pub runs: Vec<RunMeasures>,
    /// Occlusion probabilities.
    pub occlusion_levels: Vec<f64>,
    /// SGD probe, test accuracy.
    pub linear_test: Summary,
    /// SGD probe, training accuracy.
    pub linear_train: Summary,
    /// Converged probe, test accuracy.
    pub converged_test: Summary,
    /// Converged probe, training accuracy.
    pub converged_train: Summary,
    /// SGD probe at each occlusion level.
    pub occlusion_linear: Vec<Summary>,
    /// Converged probe at each occlusion level.
    pub occlusion_converged: Vec<Summary>,
    /// The [`GEOMETRY_MEASURES`], in that order.
    pub geometry: Vec<Summary>,
    /// Classes of the data set (chance accuracy is 1/classes); 0 when its runs disagree.
    pub classes: usize,
    /// SGD probe test accuracy at every epoch (up to `epoch`) all the group's runs were
    /// evaluated at: the course of training (the paper's Fig 4 draws it).
    pub linear_test_by_epoch: Vec<(i64, Summary)>,
    /// The same for the converged probe.
    pub converged_test_by_epoch: Vec<(i64, Summary)>,
}

impl Group {
    /// The seeds, in order.
    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.seed).collect()
    }
}

/// A run file left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The run file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Everything a report says.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The folder searched.
    pub root: PathBuf,
    /// Groups in table order: data set, then condition in the paper's order.
    pub groups: Vec<Group>,
    /// Run files left out.
    pub skipped: Vec<Skipped>,
}

/// Every `run.h5` under `root` (not following symbolic links), sorted.
pub fn find_run_files(root: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() && entry.file_name() == RUN_FILE {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Everything a run file's `/eval` holds, one entry per evaluation.
#[derive(Clone, Debug)]
struct Evaluations {
    path: PathBuf,
    dataset: String,
    condition: String,
    seed: u64,
    /// Identifies the experiment: the configuration without what does not change results.
    variant: String,
    /// The same as flat `key = value` pairs, to name what differs between variants.
    settings: BTreeMap<String, String>,
    epochs: Vec<i64>,
    /// Classes of the data set (`/eval/classes`; 10 in files written before it was recorded,
    /// when every data set had ten).
    classes: usize,
    linear_test: Vec<f64>,
    linear_train: Vec<f64>,
    converged_test: Vec<f64>,
    converged_train: Vec<f64>,
    occlusion_levels: Vec<f64>,
    occlusion_linear: Vec<Vec<f64>>,
    occlusion_converged: Vec<Vec<f64>>,
    geometry: Vec<Vec<f64>>,
}

impl Evaluations {
    fn measures_at(&self, row: usize) -> RunMeasures {
        let at = |values: &Vec<f64>| values.get(row).copied().unwrap_or(f64::NAN);
        let curve = |rows: &Vec<Vec<f64>>| {
            rows.get(row)
                .cloned()
                .unwrap_or_else(|| vec![f64::NAN; self.occlusion_levels.len()])
        };
        RunMeasures {
            path: self.path.clone(),
            seed: self.seed,
            linear_test: at(&self.linear_test),
            linear_train: at(&self.linear_train),
            converged_test: at(&self.converged_test),
            converged_train: at(&self.converged_train),
            occlusion_linear: curve(&self.occlusion_linear),
            occlusion_converged: curve(&self.occlusion_converged),
            geometry: std::array::from_fn(|i| at(&self.geometry[i])),
        }
    }
}

/// Reads a run file's evaluations; the error says why it cannot be used.
fn read_evaluations(path: &Path) -> Result<Evaluations, String> {
    let run = RunFile::open_read(path).map_err(|e| {
        format!("{e} (a run still training? its file is locked while it runs; set HDF5_USE_FILE_LOCKING=FALSE to read it anyway)")
    })?;
    let attribute = |name: &str| run.attribute(name).map_err(|e| e.to_string());
    let mut dataset = attribute("dataset")?;
    let condition = attribute("condition")?;
    let seed: u64 = attribute("seed")?
        .parse()
        .map_err(|e| format!("{}: attribute seed: {e}", path.display()))?;
    let config_text = attribute("config")?;
    let config = Config::from_toml(&config_text).map_err(|e| {
        format!("its stored configuration does not parse (written by another padsim version?): {e}")
    })?;
    if let Some(label) = own_data_label(&config) {
        dataset = label;
    }
    let variant_config = comparable(&config);
    let variant = variant_config.to_toml();
    let mut settings = BTreeMap::new();
    let value: toml::Value =
        toml::Value::try_from(&variant_config).map_err(|e| format!("its configuration: {e}"))?;
    flatten("", &value, &mut settings);
    settings.retain(|key, _| !MODEL_AREA_KEYS.iter().any(|k| key.starts_with(k)));
    settings.insert("model.areas".into(), model_areas(&config));

    if !run.contains("eval/epoch") {
        return Err("no evaluation recorded (train with --eval-every K or `[eval] every`, or run `padsim eval` on it)".into());
    }
    let read_1d = |name: &str| run.read_f64_1d(name).map_err(|e| e.to_string());
    let epochs = run.read_i64_1d("eval/epoch").map_err(|e| e.to_string())?;
    let rows = epochs.len();
    // Measures added in later versions read as missing rather than failing the run.
    let optional_1d = |name: &str| -> Result<Vec<f64>, String> {
        if run.contains(name) {
            let mut values = read_1d(name)?;
            values.resize(rows, f64::NAN);
            Ok(values)
        } else {
            Ok(vec![f64::NAN; rows])
        }
    };
    let classes = if run.contains("eval/classes") {
        let counts = run.read_i64_1d("eval/classes").map_err(|e| e.to_string())?;
        counts
            .iter()
            .rev()
            .find(|&&c| c > 0)
            .map_or(0, |&c| c as usize)
    } else {
        crate::data::NUM_CLASSES
    };
    let mut linear_test = read_1d("eval/linear/test_accuracy")?;
    linear_test.resize(rows, f64::NAN);
    let occlusion_levels = if run.contains("eval/occlusion/levels") {
        run.read_f64_2d("eval/occlusion/levels")
            .map_err(|e| e.to_string())?
            .iter()
            .copied()
            .collect()
    } else {
        Vec::new()
    };
    let optional_2d = |name: &str| -> Result<Vec<Vec<f64>>, String> {
        let mut curves: Vec<Vec<f64>> = if run.contains(name) {
            run.read_f64_2d(name)
                .map_err(|e| e.to_string())?
                .outer_iter()
                .map(|row| row.to_vec())
                .collect()
        } else {
            Vec::new()
        };
        curves.resize(rows, vec![f64::NAN; occlusion_levels.len()]);
        Ok(curves)
    };
    Ok(Evaluations {
        path: path.to_path_buf(),
        dataset,
        condition,
        seed,
        variant,
        settings,
        linear_test,
        linear_train: optional_1d("eval/linear/train_accuracy")?,
        converged_test: optional_1d("eval/converged/test_accuracy")?,
        converged_train: optional_1d("eval/converged/train_accuracy")?,
        occlusion_linear: optional_2d("eval/occlusion/test_accuracy")?,
        occlusion_converged: optional_2d("eval/occlusion/converged_test_accuracy")?,
        geometry: GEOMETRY_MEASURES
            .iter()
            .map(|m| optional_1d(&format!("eval/geometry/{m}")))
            .collect::<Result<_, _>>()?,
        occlusion_levels,
        epochs,
        classes,
    })
}

/// What a run learned, for the end of `padsim train`: both probes and the occlusion robustness
/// at p = 0.5 of its first evaluation (the untrained encoder, if evaluated) beside its last, and
/// the distance ratios. `None` if the run file holds no evaluation.
pub fn learning_summary(run_file: &Path) -> Result<Option<String>, String> {
    let run = RunFile::open_read(run_file).map_err(|e| format!("{}: {e}", run_file.display()))?;
    if !run.contains("eval/epoch") {
        return Ok(None);
    }
    drop(run);
    let evaluations = read_evaluations(run_file)?;
    let Some(last) = evaluations.epochs.len().checked_sub(1) else {
        return Ok(None);
    };
    let rows: Vec<usize> = if last == 0 { vec![0] } else { vec![0, last] };
    let name = |row: usize| match evaluations.epochs[row] {
        0 => "untrained".to_string(),
        e => format!("after {e} epoch(s)"),
    };
    let half = evaluations
        .occlusion_levels
        .iter()
        .position(|&p| (p - 0.5).abs() < 1e-9);
    let columns: Vec<(String, RunMeasures)> = rows
        .iter()
        .map(|&row| (name(row), evaluations.measures_at(row)))
        .collect();
    let width = columns
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let mut out = format!(
        "{:<40}{}\n",
        format!(
            "test accuracy ({} classes, chance {:.0}%)",
            evaluations.classes,
            100.0 / evaluations.classes as f64
        ),
        columns
            .iter()
            .map(|(n, _)| format!("{n:>width$}"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    let mut line = |label: &str, value: &dyn Fn(&RunMeasures) -> String| {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, m)| format!("{:>width$}", value(m)))
            .collect();
        let _ = writeln!(out, "  {label:<38}{}", cells.join("  "));
    };
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    line("linear probe, SGD (the paper's)", &|m| pct(m.linear_test));
    line("linear probe, converged", &|m| pct(m.converged_test));
    if let Some(i) = half {
        line("SGD probe, half the image occluded", &|m| {
            pct(m.occlusion_linear.get(i).copied().unwrap_or(f64::NAN))
        });
    }
    line("intra / inter-class distance", &|m| {
        format!("{:.3}", m.geometry[2])
    });
    line("clean-vs-occluded / inter-class", &|m| {
        format!("{:.3}", m.geometry[4])
    });
    Ok(Some(out))
}

/// The name a run on your own data is reported under: the kind and the name of its data
/// folder (`image_folder-flowers`, characters other than letters, digits, `-`, `_` and `.`
/// replaced by `_`), so that runs on different own data sets are never summarised together
/// (and runs on the same folder staged at different paths are). `None` for the built-in sets.
fn own_data_label(config: &Config) -> Option<String> {
    if !config.dataset.is_own_data() {
        return None;
    }
    let folder = config
        .data_dir
        .as_deref()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder: String = folder
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(format!("{}-{folder}", config.dataset))
}

/// The configuration with what does not change a run's results set to fixed values: seed,
/// data set (compared separately), epochs (runs are compared at an evaluated epoch, and
/// training does not depend on how many epochs follow), threads (bit-identical results),
/// folders, names, evaluation frequency and what is recorded.
fn comparable(config: &Config) -> Config {
    let defaults = Config::default();
    Config {
        seed: 0,
        dataset: defaults.dataset,
        data_dir: None,
        epochs: 0,
        threads: 0,
        out_dir: PathBuf::new(),
        run_name: String::new(),
        record: defaults.record,
        eval: super::config::EvalConfig {
            every: 0,
            before_and_after: true,
            ..config.eval.clone()
        },
        ..config.clone()
    }
}

/// Keys of a configuration's own areas, which a report names together as `model.areas`.
const MODEL_AREA_KEYS: [&str; 4] = [
    "model.feedforward",
    "model.latent",
    "model.discriminator",
    "model.feedback",
];

/// `PAD` for PAD's network (its widths are `model.nf` and `model.nz`), else the areas by
/// pathway with their output channels: `E: conv1 48, conv2 96, latent 256, dis 1; G: ...`.
fn model_areas(config: &Config) -> String {
    if !config.model.is_custom() {
        return "PAD".into();
    }
    let m = &config.model;
    let list = |areas: &mut dyn Iterator<Item = &crate::cortex::AreaSpec>| {
        areas
            .map(|a| match a.channels {
                Some(c) => format!("{} {c}", a.name),
                None => a.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let heads = m.latent.iter().chain(m.discriminator.iter());
    format!(
        "E: {}; G: {}",
        list(&mut m.feedforward.iter().chain(heads)),
        list(&mut m.feedback.iter())
    )
}

/// `value` as `dotted.key = value` pairs.
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, inner, out);
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_string(), text.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Labels for the variants of each condition: the condition alone when it has one variant,
/// else the condition and the settings in which its variants differ.
fn variant_labels(runs: &[Evaluations]) -> BTreeMap<(String, String), String> {
    let mut by_condition: BTreeMap<&str, Vec<&Evaluations>> = BTreeMap::new();
    for run in runs {
        let list = by_condition.entry(run.condition.as_str()).or_default();
        if !list.iter().any(|r| r.variant == run.variant) {
            list.push(run);
        }
    }
    let mut labels = BTreeMap::new();
    for (condition, variants) in by_condition {
        if let [only] = variants.as_slice() {
            labels.insert(
                (condition.to_string(), only.variant.clone()),
                condition.to_string(),
            );
            continue;
        }
        let keys: std::collections::BTreeSet<&String> =
            variants.iter().flat_map(|v| v.settings.keys()).collect();
        let differing: Vec<&String> = keys
            .into_iter()
            .filter(|key| {
                let first = variants[0].settings.get(*key);
                variants.iter().any(|v| v.settings.get(*key) != first)
            })
            .collect();
        for variant in variants {
            let described: Vec<String> = differing
                .iter()
                .map(|key| {
                    let value = variant.settings.get(*key).map_or("none", String::as_str);
                    format!("{key}={value}")
                })
                .collect();
            labels.insert(
                (condition.to_string(), variant.variant.clone()),
                format!("{condition} ({})", described.join(", ")),
            );
        }
    }
    labels
}

/// Position of a data set in tables (the order of [`DatasetKind::ALL`], unknown names last).
fn dataset_rank(name: &str) -> usize {
    DatasetKind::ALL
        .iter()
        .position(|kind| kind.name() == name)
        .unwrap_or(DatasetKind::ALL.len())
}

/// Position of a condition label in tables (the paper's order, custom schedules last).
fn condition_rank(label: &str) -> usize {
    let base = label.split(' ').next().unwrap_or(label);
    Condition::ALL
        .iter()
        .position(|c| c.name() == base)
        .unwrap_or(Condition::ALL.len())
}

/// Reads every run file under `root` and summarises them by group, at `epoch` if given, else
/// at each group's latest evaluated epoch.
pub fn build(root: &Path, epoch: Option<i64>) -> Result<Report, ReportError> {
    let mut skipped = Vec::new();
    let mut runs = Vec::new();
    for path in find_run_files(root)? {
        match read_evaluations(&path) {
            Ok(run) => runs.push(run),
            Err(reason) => skipped.push(Skipped { path, reason }),
        }
    }
    let labels = variant_labels(&runs);
    let mut grouped: BTreeMap<(usize, String, usize, String), Vec<&Evaluations>> = BTreeMap::new();
    for run in &runs {
        let label = labels[&(run.condition.clone(), run.variant.clone())].clone();
        grouped
            .entry((
                dataset_rank(&run.dataset),
                run.dataset.clone(),
                condition_rank(&label),
                label,
            ))
            .or_default()
            .push(run);
    }
    let mut groups = Vec::new();
    for ((_, dataset, _, condition), members) in grouped {
        let chosen = epoch.unwrap_or_else(|| {
            members
                .iter()
                .flat_map(|r| r.epochs.iter().copied())
                .max()
                .unwrap_or(0)
        });
        let levels = members
            .iter()
            .find(|r| r.epochs.contains(&chosen))
            .map(|r| r.occlusion_levels.clone())
            .unwrap_or_default();
        let mut counted: Vec<(&Evaluations, RunMeasures)> = Vec::new();
        for run in members {
            let Some(row) = run.epochs.iter().rposition(|&e| e == chosen) else {
                skipped.push(Skipped {
                    path: run.path.clone(),
                    reason: format!(
                        "no evaluation at epoch {chosen}{} (it has epochs {:?})",
                        if epoch.is_some() {
                            ""
                        } else {
                            ", the latest of its group"
                        },
                        run.epochs
                    ),
                });
                continue;
            };
            if run.occlusion_levels != levels {
                skipped.push(Skipped {
                    path: run.path.clone(),
                    reason: format!(
                        "occlusion levels {:?} differ from its group's {levels:?}",
                        run.occlusion_levels
                    ),
                });
                continue;
            }
            if let Some((_, first)) = counted.iter().find(|(_, m)| m.seed == run.seed) {
                skipped.push(Skipped {
                    path: run.path.clone(),
                    reason: format!(
                        "seed {} of {dataset} / {condition} is already counted from {}",
                        run.seed,
                        first.path.display()
                    ),
                });
                continue;
            }
            counted.push((run, run.measures_at(row)));
        }
        if counted.is_empty() {
            continue;
        }
        counted.sort_by_key(|(_, m)| m.seed);
        let mut group = summarise(
            dataset,
            condition,
            chosen,
            levels,
            counted.iter().map(|(_, m)| m.clone()).collect(),
        );
        let runs: Vec<&Evaluations> = counted.iter().map(|(run, _)| *run).collect();
        group.linear_test_by_epoch = course(&runs, chosen, |run| &run.linear_test);
        group.converged_test_by_epoch = course(&runs, chosen, |run| &run.converged_test);
        group.classes = common_classes(runs.iter().map(|run| run.classes));
        groups.push(group);
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Report {
        root: root.to_path_buf(),
        groups,
        skipped,
    })
}

/// The class count all of `counts` agree on; 0 (no chance level) when they differ or are none.
fn common_classes(mut counts: impl Iterator<Item = usize>) -> usize {
    let first = counts.next().unwrap_or(0);
    if counts.all(|c| c == first) {
        first
    } else {
        0
    }
}

/// The chance line of a figure for `classes` classes (none for 0), e.g. `chance (10%)`.
fn chance_reference(classes: usize) -> Option<(f64, String)> {
    (classes > 0).then(|| {
        let percent = 100.0 / classes as f64;
        let label = if 100 % classes == 0 {
            format!("chance ({}%)", 100 / classes)
        } else {
            format!("chance ({percent:.1}%)")
        };
        (percent, label)
    })
}

/// A measure at every epoch up to `last` that all `runs` were evaluated at.
fn course(
    runs: &[&Evaluations],
    last: i64,
    measure: fn(&Evaluations) -> &Vec<f64>,
) -> Vec<(i64, Summary)> {
    let mut epochs: Vec<i64> = runs[0]
        .epochs
        .iter()
        .copied()
        .filter(|&e| e <= last && runs.iter().all(|run| run.epochs.contains(&e)))
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    epochs
        .into_iter()
        .map(|epoch| {
            let values = runs
                .iter()
                .map(|run| {
                    let row = run.epochs.iter().rposition(|&e| e == epoch);
                    row.and_then(|row| measure(run).get(row).copied())
                        .unwrap_or(f64::NAN)
                })
                .collect();
            (epoch, Summary::of(values))
        })
        .collect()
}

fn summarise(
    dataset: String,
    condition: String,
    epoch: i64,
    occlusion_levels: Vec<f64>,
    runs: Vec<RunMeasures>,
) -> Group {
    let of = |get: &dyn Fn(&RunMeasures) -> f64| Summary::of(runs.iter().map(get).collect());
    let level_summaries = |get: &dyn Fn(&RunMeasures) -> &Vec<f64>| {
        (0..occlusion_levels.len())
            .map(|i| Summary::of(runs.iter().map(|r| get(r)[i]).collect()))
            .collect()
    };
    Group {
        linear_test: of(&|r| r.linear_test),
        linear_train: of(&|r| r.linear_train),
        converged_test: of(&|r| r.converged_test),
        converged_train: of(&|r| r.converged_train),
        occlusion_linear: level_summaries(&|r| &r.occlusion_linear),
        occlusion_converged: level_summaries(&|r| &r.occlusion_converged),
        geometry: (0..GEOMETRY_MEASURES.len())
            .map(|i| of(&|r| r.geometry[i]))
            .collect(),
        linear_test_by_epoch: Vec::new(),
        converged_test_by_epoch: Vec::new(),
        classes: 0,
        dataset,
        condition,
        epoch,
        occlusion_levels,
        runs,
    }
}

// ---------------------------------------------------------------------------------------------
// Tables.

/// A number for a CSV cell: shortest exact form; empty when not finite.
fn csv_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else {
        String::new()
    }
}

/// A CSV line (RFC 4180 quoting where needed).
fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|field| {
            let field = field.as_ref();
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.to_string()
            }
        })
        .collect();
    quoted.join(",") + "\n"
}

fn joined<T: ToString>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";")
}

fn joined_numbers(values: &[f64]) -> String {
    values
        .iter()
        .map(|&v| csv_number(v))
        .collect::<Vec<_>>()
        .join(";")
}

/// A tidy CSV of summaries, `dataset, condition, <keys>, n, mean, sem, seeds, values`: one row
/// for each `(key values, summary)` that `rows` gives for a group.
fn summary_csv<'a>(
    report: &'a Report,
    keys: &[&str],
    rows: impl Fn(&'a Group) -> Vec<(Vec<String>, &'a Summary)>,
) -> String {
    let mut header = vec!["dataset", "condition"];
    header.extend_from_slice(keys);
    header.extend(["n", "mean", "sem", "seeds", "values"]);
    let mut out = csv_line(&header);
    for group in &report.groups {
        for (key_values, summary) in rows(group) {
            let mut cells = vec![group.dataset.clone(), group.condition.clone()];
            cells.extend(key_values);
            cells.extend([
                summary.n.to_string(),
                csv_number(summary.mean),
                csv_number(summary.sem),
                joined(&group.seeds()),
                joined_numbers(&summary.values),
            ]);
            out += &csv_line(&cells);
        }
    }
    out
}

/// `linear_separability.csv`: one row per group, probe and split.
pub fn linear_separability_csv(report: &Report) -> String {
    summary_csv(report, &["epoch", "probe", "split"], |group| {
        [
            ("sgd", "test", &group.linear_test),
            ("sgd", "train", &group.linear_train),
            ("converged", "test", &group.converged_test),
            ("converged", "train", &group.converged_train),
        ]
        .into_iter()
        .map(|(probe, split, summary)| {
            let keys = vec![group.epoch.to_string(), probe.into(), split.into()];
            (keys, summary)
        })
        .collect()
    })
}

/// `linear_separability_by_epoch.csv`: one row per group, probe and evaluated epoch (the
/// test accuracy over training).
pub fn linear_separability_by_epoch_csv(report: &Report) -> String {
    summary_csv(report, &["epoch", "probe"], |group| {
        [
            ("sgd", &group.linear_test_by_epoch),
            ("converged", &group.converged_test_by_epoch),
        ]
        .into_iter()
        .flat_map(|(probe, course)| {
            course
                .iter()
                .map(move |(epoch, summary)| (vec![epoch.to_string(), probe.into()], summary))
        })
        .collect()
    })
}

/// `occlusion.csv`: one row per group, probe and occlusion level.
pub fn occlusion_csv(report: &Report) -> String {
    summary_csv(report, &["epoch", "probe", "p"], |group| {
        [
            ("sgd", &group.occlusion_linear),
            ("converged", &group.occlusion_converged),
        ]
        .into_iter()
        .flat_map(|(probe, curve)| {
            group
                .occlusion_levels
                .iter()
                .zip(curve)
                .map(move |(p, summary)| {
                    let keys = vec![group.epoch.to_string(), probe.into(), csv_number(*p)];
                    (keys, summary)
                })
        })
        .collect()
    })
}

/// `geometry.csv`: one row per group and geometry measure.
pub fn geometry_csv(report: &Report) -> String {
    summary_csv(report, &["epoch", "measure"], |group| {
        GEOMETRY_MEASURES
            .iter()
            .zip(&group.geometry)
            .map(|(measure, summary)| (vec![group.epoch.to_string(), measure.to_string()], summary))
            .collect()
    })
}

/// `runs.csv`: one row per run counted.
pub fn runs_csv(report: &Report) -> String {
    let mut out = csv_line(&[
        "path",
        "dataset",
        "condition",
        "seed",
        "epoch",
        "sgd_test",
        "sgd_train",
        "converged_test",
        "converged_train",
        "intra_inter_ratio",
        "clean_occluded_ratio",
    ]);
    for group in &report.groups {
        for run in &group.runs {
            out += &csv_line(&[
                run.path.display().to_string(),
                group.dataset.clone(),
                group.condition.clone(),
                run.seed.to_string(),
                group.epoch.to_string(),
                csv_number(run.linear_test),
                csv_number(run.linear_train),
                csv_number(run.converged_test),
                csv_number(run.converged_train),
                csv_number(run.geometry[2]),
                csv_number(run.geometry[4]),
            ]);
        }
    }
    out
}

/// `mean ± sem` with `decimals` (after multiplying by `scale`); the mean alone for one run,
/// `—` for none.
pub fn format_mean_sem(summary: &Summary, scale: f64, decimals: usize) -> String {
    match summary.n {
        0 => "—".into(),
        1 => format!("{:.decimals$}", summary.mean * scale),
        _ => format!(
            "{:.decimals$} ± {:.decimals$}",
            summary.mean * scale,
            summary.sem * scale
        ),
    }
}

/// A Markdown table row; `|` inside cells escaped.
fn md_row<S: AsRef<str>>(cells: &[S]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|c| c.as_ref().replace('|', "\\|"))
        .collect();
    format!("| {} |\n", cells.join(" | "))
}

fn md_rule(columns: usize) -> String {
    format!("|{}\n", "---|".repeat(columns))
}

impl Report {
    /// Data sets in table order.
    pub fn datasets(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for group in &self.groups {
            if !names.contains(&group.dataset) {
                names.push(group.dataset.clone());
            }
        }
        names
    }

    /// Condition labels in table order (the paper's order, then variants, then custom).
    pub fn conditions(&self) -> Vec<String> {
        let mut labels: Vec<String> = Vec::new();
        for group in &self.groups {
            if !labels.contains(&group.condition) {
                labels.push(group.condition.clone());
            }
        }
        labels.sort_by_key(|label| (condition_rank(label), label.clone()));
        labels
    }

    /// The groups of one data set, in report order.
    pub fn groups_of<'a>(&'a self, dataset: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups.iter().filter(move |g| g.dataset == dataset)
    }

    /// The group of a data set and condition label.
    pub fn group(&self, dataset: &str, condition: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.dataset == dataset && g.condition == condition)
    }

    /// The single epoch every group was summarised at, if they agree.
    fn common_epoch(&self) -> Option<i64> {
        let first = self.groups.first()?.epoch;
        self.groups
            .iter()
            .all(|g| g.epoch == first)
            .then_some(first)
    }

    /// The paper's comparison as plain text, one table per data set: both probes, the SGD
    /// probe with half the image occluded (p = 0.5) and the distance ratios, mean ± SEM over
    /// seeds (for `padsim report`'s output; `markdown` has everything).
    pub fn text_summary(&self) -> String {
        let headers = [
            "condition",
            "epoch",
            "n",
            "SGD probe",
            "converged",
            "SGD, p = 0.5",
            "intra/inter",
            "occluded/inter",
        ];
        let mut out = String::new();
        for dataset in self.datasets() {
            let mut rows = vec![headers.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
            for group in self.groups_of(&dataset) {
                let half = group
                    .occlusion_levels
                    .iter()
                    .position(|&p| (p - 0.5).abs() < 1e-9)
                    .map(|i| format_mean_sem(&group.occlusion_linear[i], 100.0, 1) + "%")
                    .unwrap_or_else(|| "—".into());
                rows.push(vec![
                    group.condition.clone(),
                    group.epoch.to_string(),
                    group.runs.len().to_string(),
                    format_mean_sem(&group.linear_test, 100.0, 1) + "%",
                    format_mean_sem(&group.converged_test, 100.0, 1) + "%",
                    half,
                    format_mean_sem(&group.geometry[2], 1.0, 3),
                    format_mean_sem(&group.geometry[4], 1.0, 3),
                ]);
            }
            let widths: Vec<usize> = (0..headers.len())
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            let _ = writeln!(
                out,
                "{dataset}: test accuracy of linear probes on the latents, distance ratios"
            );
            for row in rows {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(c, (cell, &w))| {
                        let pad = w - cell.chars().count();
                        if c == 0 {
                            format!("{cell}{}", " ".repeat(pad))
                        } else {
                            format!("{}{cell}", " ".repeat(pad))
                        }
                    })
                    .collect();
                let _ = writeln!(out, "  {}", cells.join("  "));
            }
        }
        out
    }

    /// The report as Markdown.
    pub fn markdown(&self, figures: &[String]) -> String {
        let mut md = String::new();
        let runs: usize = self.groups.iter().map(|g| g.runs.len()).sum();
        let _ = writeln!(md, "# padsim report: {}\n", self.root.display());
        let _ = writeln!(
            md,
            "{runs} runs in {} groups (data set × condition); {} run file(s) left out (listed at the end). Written by padsim {}.\n",
            self.groups.len(),
            self.skipped.len(),
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(md, "Values are mean ± SEM over seeds (SEM: sample standard deviation / √n); n is the number of seeds; a single seed shows its value alone.");
        let common = self.common_epoch();
        match common {
            Some(epoch) => {
                let _ = writeln!(
                    md,
                    "Every group is evaluated after {epoch} epoch(s) of training.\n"
                );
            }
            None => {
                let _ = writeln!(md, "Groups are evaluated after different numbers of epochs; each cell names its epoch.\n");
            }
        }
        let datasets = self.datasets();
        let conditions = self.conditions();
        let cell = |group: Option<&Group>, summary: &dyn Fn(&Group) -> &Summary| match group {
            None => "—".to_string(),
            Some(group) => {
                let s = summary(group);
                let epoch = if common.is_none() {
                    format!(", epoch {}", group.epoch)
                } else {
                    String::new()
                };
                format!("{} (n = {}{epoch})", format_mean_sem(s, 100.0, 1), s.n)
            }
        };
        for (title, note, summary) in [
            (
                "Linear separability: SGD probe, test accuracy (%)",
                "The paper's protocol: a linear layer trained by SGD (lr 0.2, batch 64, 20 epochs) on the fixed encoder's latents.",
                sgd_test as fn(&Group) -> &Summary,
            ),
            (
                "Linear separability: converged probe, test accuracy (%)",
                "Multinomial logistic regression (L2 1e-4) fitted to convergence by L-BFGS on standardised latents.",
                converged_test,
            ),
        ] {
            let _ = writeln!(md, "## {title}\n\n{note}\n");
            let mut header = vec!["condition".to_string()];
            header.extend(datasets.iter().cloned());
            md += &md_row(&header);
            md += &md_rule(header.len());
            for condition in &conditions {
                let mut row = vec![condition.clone()];
                for dataset in &datasets {
                    row.push(cell(self.group(dataset, condition), &summary));
                }
                md += &md_row(&row);
            }
            md.push('\n');
        }

        let _ = writeln!(md, "## Linear separability over training: SGD probe, test accuracy (%) by epoch\n\nAt every epoch all runs of a group were evaluated at; the converged probe's course is in linear_separability_by_epoch.csv.\n");
        for dataset in &datasets {
            let in_dataset: Vec<&Group> = self.groups_of(dataset).collect();
            let mut epochs: Vec<i64> = in_dataset
                .iter()
                .flat_map(|g| g.linear_test_by_epoch.iter().map(|(e, _)| *e))
                .collect();
            epochs.sort_unstable();
            epochs.dedup();
            let _ = writeln!(md, "### {dataset}\n");
            let mut header = vec!["condition".to_string(), "n".to_string()];
            header.extend(epochs.iter().map(|e| format!("epoch {e}")));
            md += &md_row(&header);
            md += &md_rule(header.len());
            for group in in_dataset {
                let mut row = vec![group.condition.clone(), group.linear_test.n.to_string()];
                row.extend(epochs.iter().map(|epoch| {
                    group
                        .linear_test_by_epoch
                        .iter()
                        .find(|(e, _)| e == epoch)
                        .map_or("—".to_string(), |(_, s)| format_mean_sem(s, 100.0, 1))
                }));
                md += &md_row(&row);
            }
            md.push('\n');
        }

        let _ = writeln!(md, "## Occlusion robustness: SGD probe, test accuracy (%) by occlusion probability p\n\nThe probe is trained on clean latents and tested on images with per-image tile masks. The converged probe's curves are in occlusion.csv.\n");
        for dataset in &datasets {
            let in_dataset: Vec<&Group> = self.groups_of(dataset).collect();
            let levels = &in_dataset[0].occlusion_levels;
            let _ = writeln!(md, "### {dataset}\n");
            let mut header = vec!["condition".to_string(), "n".to_string()];
            if common.is_none() {
                header.push("epoch".into());
            }
            header.extend(levels.iter().map(|p| format!("p = {p:.1}")));
            md += &md_row(&header);
            md += &md_rule(header.len());
            for group in in_dataset {
                let mut row = vec![group.condition.clone(), group.linear_test.n.to_string()];
                if common.is_none() {
                    row.push(group.epoch.to_string());
                }
                if &group.occlusion_levels == levels {
                    row.extend(
                        group
                            .occlusion_linear
                            .iter()
                            .map(|s| format_mean_sem(s, 100.0, 1)),
                    );
                } else {
                    row.push("(other occlusion levels: see occlusion.csv)".into());
                }
                md += &md_row(&row);
            }
            md.push('\n');
        }

        let _ = writeln!(md, "## Latent geometry (test set)\n\nIntra-class over inter-class distance (lower: classes more clustered) and clean-vs-occluded over inter-class distance (lower: occlusion moves latents less); distances themselves in geometry.csv.\n");
        for dataset in &datasets {
            let _ = writeln!(md, "### {dataset}\n");
            md += &md_row(&[
                "condition",
                "n",
                "intra / inter-class distance",
                "clean-vs-occluded / inter-class distance",
            ]);
            md += &md_rule(4);
            for group in self.groups_of(dataset) {
                md += &md_row(&[
                    group.condition.clone(),
                    group.geometry[2].n.to_string(),
                    format_mean_sem(&group.geometry[2], 1.0, 3),
                    format_mean_sem(&group.geometry[4], 1.0, 3),
                ]);
            }
            md.push('\n');
        }

        if !figures.is_empty() {
            let _ = writeln!(md, "## Figures\n");
            for figure in figures {
                let _ = writeln!(md, "![{figure}]({figure})\n");
            }
        }

        let _ = writeln!(md, "## Runs\n");
        md += &md_row(&[
            "run file",
            "data set",
            "condition",
            "seed",
            "epoch",
            "SGD probe test %",
            "converged probe test %",
        ]);
        md += &md_rule(7);
        for group in &self.groups {
            for run in &group.runs {
                let shown = run.path.strip_prefix(&self.root).unwrap_or(&run.path);
                md += &md_row(&[
                    shown.display().to_string(),
                    group.dataset.clone(),
                    group.condition.clone(),
                    run.seed.to_string(),
                    group.epoch.to_string(),
                    format!("{:.1}", 100.0 * run.linear_test),
                    format!("{:.1}", 100.0 * run.converged_test),
                ]);
            }
        }
        md.push('\n');
        if !self.skipped.is_empty() {
            let _ = writeln!(md, "## Left out\n");
            for skipped in &self.skipped {
                let shown = skipped
                    .path
                    .strip_prefix(&self.root)
                    .unwrap_or(&skipped.path);
                let _ = writeln!(md, "- `{}`: {}", shown.display(), skipped.reason);
            }
            md.push('\n');
        }
        md
    }
}

fn sgd_test(group: &Group) -> &Summary {
    &group.linear_test
}

fn converged_test(group: &Group) -> &Summary {
    &group.converged_test
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// One curve per condition of `dataset`, labelled with its number of seeds: `points` gives each
/// group's `(x, mean, sem)`.
fn band_series(
    report: &Report,
    dataset: &str,
    points: impl Fn(&Group) -> Vec<(f64, f64, f64)>,
) -> Vec<BandSeries> {
    report
        .groups_of(dataset)
        .map(|group| BandSeries {
            label: format!(
                "{} (n = {})",
                display_name(&group.condition),
                group.linear_test.n
            ),
            points: points(group),
        })
        .collect()
}

/// A condition label as the paper's figures name it ("no NREM" for `no_nrem`), keeping any
/// variant description.
pub fn display_name(label: &str) -> String {
    let (base, rest) = label.split_once(' ').unwrap_or((label, ""));
    let name = match base {
        "full_pad" => "full PAD",
        "no_nrem" => "no NREM",
        "no_rem" => "no REM",
        "wake_only" => "Wake only",
        "no_memory_mix" => "no memory mix",
        "reversed_sleep" => "reversed sleep",
        "nrem_mixed_memories" => "NREM mixed memories",
        "rem_noise_only" => "REM noise only",
        "rem_memories_only" => "REM memories only",
        other => other,
    };
    if rest.is_empty() {
        name.to_string()
    } else {
        format!("{name} {rest}")
    }
}

fn bar(summary: &Summary, scale: f64) -> Bar {
    Bar {
        value: summary.mean * scale,
        error: summary.sem * scale,
        points: summary.values.iter().map(|v| v * scale).collect(),
    }
}

fn bar_panel(
    report: &Report,
    title: &str,
    y_label: &str,
    scale: f64,
    reference: Option<(f64, String)>,
    summary: &dyn Fn(&Group) -> &Summary,
) -> BarPanel {
    let conditions = report.conditions();
    BarPanel {
        title: title.into(),
        y_label: y_label.into(),
        categories: conditions.iter().map(|c| display_name(c)).collect(),
        series: report
            .datasets()
            .iter()
            .map(|dataset| BarSeries {
                label: dataset.clone(),
                bars: conditions
                    .iter()
                    .map(|condition| match report.group(dataset, condition) {
                        Some(group) => bar(summary(group), scale),
                        None => Bar {
                            value: f64::NAN,
                            error: f64::NAN,
                            points: Vec::new(),
                        },
                    })
                    .collect(),
            })
            .collect(),
        reference,
    }
}

/// Draws the report's figures into `dir`; returns their file names.
pub fn render_figures(report: &Report, dir: &Path) -> Result<Vec<String>, ReportError> {
    let mut written = Vec::new();
    // One chance line across data sets only if they have the same number of classes.
    let chance = chance_reference(common_classes(report.groups.iter().map(|g| g.classes)));
    let name = "fig4_linear_separability.png";
    figures::bar_chart(
        &dir.join(name),
        "Linear separability of latents (mean ± SEM over seeds)",
        &[
            bar_panel(
                report,
                "SGD probe (paper's protocol), test",
                "test accuracy (%)",
                100.0,
                chance.clone(),
                &|g| &g.linear_test,
            ),
            bar_panel(
                report,
                "converged probe, test",
                "test accuracy (%)",
                100.0,
                chance,
                &|g| &g.converged_test,
            ),
        ],
    )?;
    written.push(name.to_string());

    let classes_of =
        |dataset: &str| common_classes(report.groups_of(dataset).map(|group| group.classes));
    for dataset in report.datasets() {
        let name = format!("fig4_linear_separability_epochs_{dataset}.png");
        let series = band_series(report, &dataset, |group| {
            group
                .linear_test_by_epoch
                .iter()
                .map(|(epoch, s)| (*epoch as f64, s.mean, s.sem))
                .collect()
        });
        figures::accuracy_band_plot(
            &dir.join(&name),
            &format!("Linear separability over training, {dataset} (SGD probe, mean ± SEM)"),
            &series,
            classes_of(&dataset),
        )?;
        written.push(name);
    }

    for dataset in report.datasets() {
        let name = format!("fig5_occlusion_{dataset}.png");
        let series = band_series(report, &dataset, |group| {
            group
                .occlusion_levels
                .iter()
                .zip(&group.occlusion_linear)
                .map(|(&p, s)| (p, s.mean, s.sem))
                .collect()
        });
        figures::occlusion_band_plot(
            &dir.join(&name),
            &format!("Occlusion robustness, {dataset} (SGD probe, mean ± SEM)"),
            &series,
            classes_of(&dataset),
        )?;
        written.push(name);
    }

    let name = "fig6_distance_ratios.png";
    figures::bar_chart(
        &dir.join(name),
        "Latent organisation (test set, mean ± SEM over seeds)",
        &[
            bar_panel(
                report,
                "intra-class / inter-class distance",
                "distance ratio",
                1.0,
                None,
                &|g| &g.geometry[2],
            ),
            bar_panel(
                report,
                "clean-vs-occluded / inter-class distance",
                "distance ratio",
                1.0,
                None,
                &|g| &g.geometry[4],
            ),
        ],
    )?;
    written.push(name.to_string());
    Ok(written)
}

/// Writes `report.md`, the CSVs and the figures into `out`; returns the files written.
pub fn write(report: &Report, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if report.groups.is_empty() {
        let mut message = format!(
            "no evaluated runs under {} ({} run file(s) found",
            report.root.display(),
            report.skipped.len()
        );
        for skipped in report.skipped.iter().take(10) {
            let _ = write!(message, "; {}: {}", skipped.path.display(), skipped.reason);
        }
        message.push(')');
        return Err(ReportError::Empty(message));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let figures = render_figures(report, out)?;
    let mut written: Vec<PathBuf> = figures.iter().map(|f| out.join(f)).collect();
    for (name, text) in [
        ("report.md", report.markdown(&figures)),
        ("linear_separability.csv", linear_separability_csv(report)),
        (
            "linear_separability_by_epoch.csv",
            linear_separability_by_epoch_csv(report),
        ),
        ("occlusion.csv", occlusion_csv(report)),
        ("geometry.csv", geometry_csv(report)),
        ("runs.csv", runs_csv(report)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sem_uses_the_sample_standard_deviation() {
        let s = Summary::of(vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.n, 4);
        assert_eq!(s.mean, 2.5);
        // Sample variance 5/3; SEM = sqrt(5/3 / 4).
        assert!((s.sem - (5.0f64 / 12.0).sqrt()).abs() < 1e-15, "{}", s.sem);
        let one = Summary::of(vec![0.7]);
        assert_eq!((one.n, one.mean), (1, 0.7));
        assert!(one.sem.is_nan());
        let with_missing = Summary::of(vec![0.5, f64::NAN, 0.7]);
        assert_eq!(with_missing.n, 2);
        assert!((with_missing.mean - 0.6).abs() < 1e-15);
        assert!(
            (with_missing.sem - 0.1).abs() < 1e-15,
            "{}",
            with_missing.sem
        );
        assert_eq!(with_missing.values.len(), 3);
        let none = Summary::of(vec![]);
        assert!(none.mean.is_nan() && none.sem.is_nan());
    }

    #[test]
    fn cells_and_csv_fields_are_formatted() {
        let s = Summary::of(vec![0.5812, 0.5901]);
        assert_eq!(format_mean_sem(&s, 100.0, 1), "58.6 ± 0.4");
        assert_eq!(format_mean_sem(&Summary::of(vec![0.5]), 100.0, 1), "50.0");
        assert_eq!(format_mean_sem(&Summary::of(vec![]), 100.0, 1), "—");
        assert_eq!(
            format_mean_sem(&Summary::of(vec![0.81, 0.83]), 1.0, 3),
            "0.820 ± 0.010"
        );
        assert_eq!(
            csv_line(&["a", "b,c", "say \"hi\""]),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
        assert_eq!(csv_number(0.1), "0.1");
        assert_eq!(csv_number(f64::NAN), "");
        assert_eq!(md_row(&["a|b", "c"]), "| a\\|b | c |\n");
        assert_eq!(joined_numbers(&[0.25, f64::NAN]), "0.25;");
    }

    #[test]
    fn conditions_are_ordered_and_named_as_in_the_paper() {
        assert!(condition_rank("full_pad") < condition_rank("no_nrem"));
        assert!(condition_rank("wake_only") < condition_rank("rem_memories_only"));
        assert_eq!(condition_rank("custom"), Condition::ALL.len());
        assert_eq!(
            condition_rank("full_pad (plasticity.feedforward=sign_symmetry)"),
            0
        );
        assert_eq!(display_name("no_nrem"), "no NREM");
        assert_eq!(
            display_name("full_pad (model.nz=64)"),
            "full PAD (model.nz=64)"
        );
        assert!(dataset_rank("cifar10") < dataset_rank("svhn"));
    }

    fn evaluations(condition: &str, config: &Config) -> Evaluations {
        let variant_config = comparable(config);
        let mut settings = BTreeMap::new();
        flatten(
            "",
            &toml::Value::try_from(&variant_config).unwrap(),
            &mut settings,
        );
        Evaluations {
            path: PathBuf::from(format!("{condition}.h5")),
            dataset: "cifar10".into(),
            condition: condition.into(),
            seed: config.seed,
            variant: variant_config.to_toml(),
            settings,
            epochs: vec![],
            classes: 10,
            linear_test: vec![],
            linear_train: vec![],
            converged_test: vec![],
            converged_train: vec![],
            occlusion_levels: vec![],
            occlusion_linear: vec![],
            occlusion_converged: vec![],
            geometry: vec![],
        }
    }

    #[test]
    fn own_data_is_reported_by_folder_and_chance_follows_the_class_count() {
        let mut config = Config::default();
        assert_eq!(own_data_label(&config), None);
        config.dataset = DatasetKind::ImageFolder;
        config.data_dir = Some(PathBuf::from("/data/my flowers/"));
        assert_eq!(own_data_label(&config).unwrap(), "image_folder-my_flowers");
        config.dataset = DatasetKind::Npy;
        config.data_dir = Some(PathBuf::from("/scratch/x/cells.v2"));
        assert_eq!(own_data_label(&config).unwrap(), "npy-cells.v2");

        assert_eq!(common_classes([3, 3].into_iter()), 3);
        assert_eq!(common_classes([3, 10].into_iter()), 0);
        assert_eq!(common_classes(std::iter::empty()), 0);
        assert_eq!(chance_reference(10).unwrap(), (10.0, "chance (10%)".into()));
        let (y, label) = chance_reference(3).unwrap();
        assert!((y - 100.0 / 3.0).abs() < 1e-12 && label == "chance (33.3%)");
        assert_eq!(chance_reference(0), None);
    }

    #[test]
    fn own_networks_are_named_by_their_areas_in_one_setting() {
        assert_eq!(model_areas(&Config::default()), "PAD");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/architectures/five_areas.toml"
        );
        let config = Config::from_file(std::path::Path::new(path)).unwrap();
        assert_eq!(
            model_areas(&config),
            "E: conv1 48, conv2 96, conv3 192, conv4 192, latent 256, dis 1; \
             G: tconv1 192, tconv1b 192, tconv2 96, tconv3 48, tconv4"
        );
    }

    #[test]
    fn variants_of_a_condition_are_labelled_by_what_differs() {
        let base = Config::default();
        let other_seed = Config {
            seed: 3,
            epochs: 50,
            threads: 7,
            run_name: "x".into(),
            ..base.clone()
        };
        let mut fa = base.clone();
        fa.plasticity.feedforward = crate::plasticity::RuleKind::FeedbackAlignment;
        let no_rem = Config {
            condition: Condition::NoRem,
            ..base.clone()
        };
        let runs = [
            evaluations("full_pad", &base),
            evaluations("full_pad", &other_seed),
            evaluations("full_pad", &fa),
            evaluations("no_rem", &no_rem),
        ];
        // Seeds, epochs, threads and names do not make a variant.
        assert_eq!(runs[0].variant, runs[1].variant);
        let labels = variant_labels(&runs);
        let label =
            |run: &Evaluations| labels[&(run.condition.clone(), run.variant.clone())].clone();
        assert_eq!(labels.len(), 3, "{labels:?}");
        assert_eq!(label(&runs[3]), "no_rem");
        assert_eq!(
            label(&runs[0]),
            "full_pad (plasticity.feedforward=exact_backprop)"
        );
        assert_eq!(
            label(&runs[2]),
            "full_pad (plasticity.feedforward=feedback_alignment)"
        );
    }
}
