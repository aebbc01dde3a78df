//! Every file in experiments/ parses and validates, so the documented commands keep working as
//! the configuration grows: run configurations (`experiments/<dataset>/<condition>.toml`,
//! `experiments/plasticity/*.toml`) and sweep specs (`experiments/sweep_*.toml`). The paper's
//! run configurations and sweeps describe the same runs, so each counts the others' as done.

use padsim::brain::schedule::Condition;
use padsim::data::DatasetKind;
use padsim::experiment::runner::check_resumable;
use padsim::experiment::sweep::SweepSpec;
use padsim::experiment::Config;
use std::path::{Path, PathBuf};

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")
}

/// Every `.toml` under `dir`, sorted.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(toml_files(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn is_sweep(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("sweep_"))
}

fn run_config(path: &Path) -> Config {
    let config = Config::from_file(path).unwrap_or_else(|e| panic!("{e}"));
    config
        .validate()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    config
}

fn sweep(name: &str) -> SweepSpec {
    SweepSpec::from_file(&experiments().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_experiment_file_is_valid() {
    let (mut configs, mut sweeps) = (0, 0);
    for path in toml_files(&experiments()) {
        if is_sweep(&path) {
            SweepSpec::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            sweeps += 1;
        } else {
            run_config(&path);
            configs += 1;
        }
    }
    assert!(
        configs >= 29 && sweeps >= 3,
        "{configs} configs, {sweeps} sweeps"
    );
}

#[test]
fn every_condition_has_a_configuration_per_dataset_of_the_paper() {
    for dataset in [DatasetKind::Cifar10, DatasetKind::Svhn, DatasetKind::Mnist] {
        for condition in Condition::ALL {
            let path = experiments()
                .join(dataset.name())
                .join(format!("{condition}.toml"));
            let config = run_config(&path);
            assert_eq!(
                (
                    config.dataset,
                    config.condition,
                    config.epochs,
                    config.eval.every
                ),
                (dataset, condition, 50, 5),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn the_paper_sweeps_and_run_configurations_describe_the_same_runs() {
    let appendix = sweep("sweep_appendix.toml");
    let figures = sweep("sweep_fig4_5_6.toml");
    assert_eq!(appendix.tasks().len(), 9 * 4 * 3);
    assert_eq!(figures.tasks().len(), 4 * 4 * 2);
    assert_eq!(appendix.sweep_dir(), figures.sweep_dir());
    for task in figures.tasks() {
        let same = appendix
            .tasks()
            .into_iter()
            .find(|t| t.name == task.name)
            .unwrap_or_else(|| panic!("{} is not in the appendix sweep", task.name));
        assert_eq!(same.config, task.config, "{}", task.name);
    }
    for task in appendix.tasks().into_iter().filter(|t| t.seed == 0) {
        let path = experiments()
            .join(task.dataset.name())
            .join(format!("{}.toml", task.condition));
        let config = run_config(&path);
        assert_eq!(config.run_dir(), task.run_dir(), "{}", path.display());
        check_resumable(&task.config, &config.to_toml())
            .unwrap_or_else(|e| panic!("{} vs the sweep's {}: {e}", path.display(), task.name));
    }
}

#[test]
fn the_small_cifar10_sweep_is_pad_against_no_rem() {
    let spec = sweep("sweep_cifar10_pad_vs_no_rem.toml");
    let names: Vec<String> = spec.tasks().into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "cifar10_full_pad_seed0",
            "cifar10_no_rem_seed0",
            "cifar10_full_pad_seed1",
            "cifar10_no_rem_seed1"
        ]
    );
    assert_eq!((spec.base.epochs, spec.base.eval.every), (2, 1));
    assert!(
        spec.data_dirs.is_empty(),
        "data left to --data-dir or PADSIM_DATA"
    );
}
