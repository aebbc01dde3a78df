//! Evaluation end to end: `--eval-every` during training and `padsim eval` afterwards write
//! the paper's measures into the run file and draw the figures.

mod common;

use common::padsim_succeeds;
use padsim::experiment::{self, runner, Config, TrainOptions};
use padsim::record::RunFile;

const CONFIG: &str = r#"
seed = 5
dataset = "synthetic"
epochs = 2
batch_size = 16
max_cycles_per_epoch = 6
[model]
nf = 8
nz = 16
[data.synthetic]
train_size = 320
test_size = 160
[record]
images = 16
keep_checkpoints_every = 1
[eval]
every = 1
pca_points = 100
[eval.probe]
epochs = 3
[eval.geometry]
intra_pairs_per_class = 50
inter_pairs = 400
occluded_pairs = 400
"#;

#[test]
fn training_with_eval_every_records_every_measure_and_draws_figures() {
    let root = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml(CONFIG).unwrap();
    config.out_dir = root.path().to_path_buf();
    experiment::train(&config, TrainOptions::default()).unwrap();
    let run_dir = config.run_dir();
    let run = RunFile::open_read(run_dir.join("run.h5")).unwrap();

    assert_eq!(run.read_i64_1d("eval/epoch").unwrap(), vec![0, 1, 2]);
    for path in [
        "eval/linear/train_accuracy",
        "eval/linear/test_accuracy",
        "eval/converged/train_accuracy",
        "eval/converged/test_accuracy",
    ] {
        let values = run.read_f64_1d(path).unwrap();
        assert_eq!(values.len(), 3, "{path}");
        assert!(
            values.iter().all(|v| (0.0..=1.0).contains(v)),
            "{path}: {values:?}"
        );
    }
    let curves = run.read_f64_2d("eval/occlusion/test_accuracy").unwrap();
    assert_eq!(curves.dim(), (3, 11));
    let levels = run.read_f64_2d("eval/occlusion/levels").unwrap();
    assert_eq!(
        levels.row(0).to_vec(),
        (0..11).map(|i| i as f64 / 10.0).collect::<Vec<_>>()
    );
    // p = 0 is the clean test set: the curve starts at the probe's test accuracy.
    let test = run.read_f64_1d("eval/linear/test_accuracy").unwrap();
    for (row, acc) in curves.outer_iter().zip(&test) {
        assert_eq!(row[0], *acc);
    }
    let ratio = run.read_f64_1d("eval/geometry/intra_inter_ratio").unwrap();
    assert!(ratio.iter().all(|r| *r > 0.0 && r.is_finite()), "{ratio:?}");
    let occluded = run
        .read_f64_1d("eval/geometry/clean_occluded_ratio")
        .unwrap();
    assert!(
        occluded.iter().all(|r| *r > 0.0 && r.is_finite()),
        "{occluded:?}"
    );
    assert_eq!(
        run.read_f64_2d("eval/pca/epoch_0002").unwrap().dim(),
        (100, 2)
    );
    assert_eq!(
        run.read_i64_1d("eval/pca/epoch_0002_labels").unwrap().len(),
        100
    );
    for figure in ["accuracy", "occlusion", "pca", "losses"] {
        let path = run_dir.join("figures").join(format!("{figure}.png"));
        assert!(
            std::fs::metadata(&path)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{}",
            path.display()
        );
    }
    drop(run);

    // Re-evaluating a kept epoch through the CLI overwrites its row, bit-identically.
    let before = RunFile::open_read(run_dir.join("run.h5"))
        .unwrap()
        .read_f64_1d("eval/converged/test_accuracy")
        .unwrap();
    let stdout = padsim_succeeds(&[
        "eval".as_ref(),
        "--epoch".as_ref(),
        "1".as_ref(),
        run_dir.as_ref(),
    ]);
    assert!(stdout.contains("linear probe test"));
    let run = RunFile::open_read(run_dir.join("run.h5")).unwrap();
    assert_eq!(run.read_i64_1d("eval/epoch").unwrap(), vec![0, 1, 2]);
    assert_eq!(
        run.read_f64_1d("eval/converged/test_accuracy").unwrap(),
        before
    );
}

#[test]
fn eval_names_what_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let err = runner::locate(&root.path().join("nothing"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing"), "{err}");
    let mut config = Config::from_toml(CONFIG).unwrap();
    config.out_dir = root.path().to_path_buf();
    config.epochs = 1;
    config.eval.every = 0;
    config.record.keep_checkpoints_every = 0;
    experiment::train(&config, TrainOptions::default()).unwrap();
    let err = runner::locate(&config.run_dir(), Some(7))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("epoch_0007") && err.contains("keep_checkpoints_every"),
        "{err}"
    );
    assert!(runner::locate(&config.run_dir(), Some(1))
        .unwrap()
        .checkpoint
        .is_some());
    assert!(runner::locate(&config.run_dir(), Some(0))
        .unwrap()
        .checkpoint
        .is_none());
}

#[test]
fn padsim_train_evaluates_the_untrained_and_the_trained_encoder_and_prints_what_was_learned() {
    let root = tempfile::tempdir().unwrap();
    let config_path = root.path().join("config.toml");
    std::fs::write(
        &config_path,
        CONFIG.replace("[eval]\nevery = 1\n", "[eval]\n"),
    )
    .unwrap();
    let train = || {
        let out = root.path().as_ref();
        padsim_succeeds(&[
            "train".as_ref(),
            "--config".as_ref(),
            config_path.as_ref(),
            "--out".as_ref(),
            out,
        ])
    };

    // By default (`every = 0`, `before_and_after = true`): epochs 0 and 2 only, and a table of
    // both beside each other whose numbers are the run file's.
    let stdout = train();
    let run_dir = root.path().join("synthetic_full_pad_seed5");
    let run = RunFile::open_read(run_dir.join("run.h5")).unwrap();
    assert_eq!(run.read_i64_1d("eval/epoch").unwrap(), vec![0, 2]);
    let row = |label: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} in\n{stdout}"));
        line[line.find(label).unwrap() + label.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert!(
        stdout.contains("untrained") && stdout.contains("after 2 epoch(s)"),
        "{stdout}"
    );
    let percent = |path: &str| -> Vec<String> {
        run.read_f64_1d(path)
            .unwrap()
            .iter()
            .map(|v| format!("{:.1}%", 100.0 * v))
            .collect()
    };
    assert_eq!(
        row("linear probe, SGD (the paper's)"),
        percent("eval/linear/test_accuracy")
    );
    assert_eq!(
        row("linear probe, converged"),
        percent("eval/converged/test_accuracy")
    );
    let occluded: Vec<String> = run
        .read_f64_2d("eval/occlusion/test_accuracy")
        .unwrap()
        .column(5)
        .iter()
        .map(|v| format!("{:.1}%", 100.0 * v))
        .collect();
    assert_eq!(row("SGD probe, half the image occluded"), occluded);
    drop(run);

    // Evaluation off: no /eval and no table.
    std::fs::remove_dir_all(&run_dir).unwrap();
    std::fs::write(
        &config_path,
        CONFIG.replace(
            "[eval]\nevery = 1\n",
            "[eval]\nevery = 0\nbefore_and_after = false\n",
        ),
    )
    .unwrap();
    let stdout = train();
    assert!(!stdout.contains("untrained"), "{stdout}");
    let run = RunFile::open_read(run_dir.join("run.h5")).unwrap();
    assert!(!run.contains("eval/epoch"));
}

/// The README's main command (`padsim train` with the defaults) on the built-in shapes: the
/// converged probe at least 10 points above the untrained encoder's, the paper's SGD probe
/// above chance. (About 3 minutes in the test profile; a minute in a release build.)
#[test]
fn the_built_in_shapes_show_what_pad_learns_within_the_main_commands_two_epochs() {
    let root = tempfile::tempdir().unwrap();
    let config = Config {
        out_dir: root.path().to_path_buf(),
        ..Config::default()
    };
    experiment::train(&config, TrainOptions::default()).unwrap();
    let run = RunFile::open_read(config.run_dir().join("run.h5")).unwrap();
    assert_eq!(run.read_i64_1d("eval/epoch").unwrap(), vec![0, 2]);
    let converged = run.read_f64_1d("eval/converged/test_accuracy").unwrap();
    let sgd = run.read_f64_1d("eval/linear/test_accuracy").unwrap();
    assert!(
        converged[1] >= converged[0] + 0.10,
        "converged probe: {converged:?}"
    );
    assert!(sgd[1] > 0.15, "SGD probe: {sgd:?}");
}
