//! Kill-and-resume: a run killed with SIGKILL (or interrupted with SIGINT mid-epoch) and
//! resumed ends bit-identical to an uninterrupted run with the same seed, and thread counts
//! (1 for the reference, 2 for the interrupted run) do not change a bit.

use padsim::experiment::{self, Config, TrainOptions};
use padsim::plasticity::AdamConfig;
use padsim::record::{Checkpoint, RunFile};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
seed = 11
dataset = "synthetic"
epochs = 4
batch_size = 16
threads = 1
[model]
nf = 16
nz = 32
[data.synthetic]
seed = 3
train_size = 640
test_size = 32
[record]
images = 16
"#;

fn config_in(dir: &Path) -> (PathBuf, Config) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, CONFIG).unwrap();
    (path, Config::from_toml(CONFIG).unwrap())
}

fn padsim(config: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_padsim"))
        .args(["train", "--quiet", "--threads", "2", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("padsim binary")
}

/// Waits until `path` holds a checkpoint with at least `epochs` completed epochs.
fn wait_for_checkpoint(path: &Path, epochs: u64, child: &mut Child) {
    let start = Instant::now();
    loop {
        if let Ok(c) = Checkpoint::read(path) {
            if c.epoch >= epochs {
                return;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("padsim exited ({status}) before the checkpoint of epoch {epochs} appeared");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after 120 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn assert_same_results(reference: &Path, other: &Path) {
    let a = RunFile::open_read(reference.join("run.h5")).unwrap();
    let b = RunFile::open_read(other.join("run.h5")).unwrap();
    let names = a.loss_names().unwrap();
    assert_eq!(names, b.loss_names().unwrap());
    for (state, term) in &names {
        let (x, y) = (
            a.read_losses(state, term).unwrap(),
            b.read_losses(state, term).unwrap(),
        );
        assert_eq!(x.len(), 4, "{state}/{term}");
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x), bits(&y), "{state}/{term}: {x:?} vs {y:?}");
    }
    for name in ["wake_reconstruction", "rem_dream"] {
        assert_eq!(
            a.read_images(3, name).unwrap(),
            b.read_images(3, name).unwrap(),
            "{name}"
        );
    }
    let (ca, cb) = (
        Checkpoint::read(reference.join("checkpoint.h5")).unwrap(),
        Checkpoint::read(other.join("checkpoint.h5")).unwrap(),
    );
    assert_eq!(ca.epoch, 4);
    assert_eq!(ca.parameters, cb.parameters);
    assert_eq!(ca.optimisers, cb.optimisers);
    assert_eq!(ca.memories, cb.memories);
    assert_eq!(ca.rngs, cb.rngs);
}

fn run_dir(out: &Path) -> PathBuf {
    out.join("synthetic_full_pad_seed11")
}

#[test]
fn killed_and_interrupted_runs_resume_bit_identically() {
    let root = tempfile::tempdir().unwrap();
    let (config_path, mut config) = config_in(root.path());

    config.out_dir = root.path().join("reference");
    let summary = experiment::train(&config, TrainOptions::default()).unwrap();
    assert_eq!((summary.epochs_completed, summary.cycles), (4, 160));
    let reference = run_dir(&config.out_dir);

    // SIGKILL after the first epoch's checkpoint, then resume to the end.
    let killed_out = root.path().join("killed");
    let mut child = padsim(&config_path, &killed_out, &[]);
    wait_for_checkpoint(&run_dir(&killed_out).join("checkpoint.h5"), 1, &mut child);
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "the run finished before it was killed"
    );
    let again = padsim(&config_path, &killed_out, &[])
        .wait_with_output()
        .unwrap();
    assert!(
        !again.status.success(),
        "an existing run must not be overwritten without --resume"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    let resumed = padsim(&config_path, &killed_out, &["--resume"])
        .wait_with_output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_same_results(&reference, &run_dir(&killed_out));

    // SIGINT: the run saves a mid-epoch checkpoint and exits cleanly; resume finishes it.
    let interrupted_out = root.path().join("interrupted");
    let mut child = padsim(&config_path, &interrupted_out, &[]);
    wait_for_checkpoint(
        &run_dir(&interrupted_out).join("checkpoint.h5"),
        1,
        &mut child,
    );
    std::thread::sleep(Duration::from_millis(30));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");
    // An epoch takes far longer than 30 ms here, so the interrupt lands inside epoch 2.
    let checkpoint = Checkpoint::read(run_dir(&interrupted_out).join("checkpoint.h5")).unwrap();
    assert_eq!(checkpoint.epoch, 1, "{stdout}");
    assert!(
        checkpoint.batch > 0 && !checkpoint.scalars.is_empty(),
        "a mid-epoch checkpoint"
    );
    let resumed = padsim(&config_path, &interrupted_out, &["--resume"])
        .wait_with_output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_same_results(&reference, &run_dir(&interrupted_out));
}

#[test]
fn a_changed_configuration_cannot_resume() {
    let root = tempfile::tempdir().unwrap();
    let (_, mut config) = config_in(root.path());
    config.out_dir = root.path().to_path_buf();
    config.epochs = 1;
    config.max_cycles_per_epoch = Some(2);
    experiment::train(&config, TrainOptions::default()).unwrap();
    config.epochs = 2;
    config.model.nz = 8;
    let err = experiment::train(
        &config,
        TrainOptions {
            resume: true,
            progress: false,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("different configuration"), "{err}");
}

#[test]
fn a_diverging_run_stops_with_a_message_naming_the_loss() {
    let root = tempfile::tempdir().unwrap();
    let (_, mut config) = config_in(root.path());
    config.out_dir = root.path().to_path_buf();
    config.epochs = 3;
    config.optimiser = AdamConfig {
        lr: 1e30,
        ..AdamConfig::default()
    }
    .into();
    let err = experiment::train(&config, TrainOptions::default())
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    assert!(err.contains("training stopped"), "{err}");
    assert!(
        err.contains("wake/") || err.contains("nrem/") || err.contains("rem/"),
        "{err}"
    );
}
