//! Training on your own data end to end, on files the tests write: a short run on an image
//! folder (three classes; RGB and grey PNGs of three sizes) and one on `.npy` arrays (two
//! classes, 28 × 28, through the command line) complete and write run.h5; the evaluation's
//! probes and the report follow the data set's class count.

mod common;

use common::own_data::{write_grey, write_rgb};
use common::padsim_succeeds;
use ndarray_npy::write_npy;
use padsim::data::DatasetKind;
use padsim::experiment::{self, report, Config, TrainOptions};
use padsim::record::RunFile;
use std::path::Path;
use std::process::Command;

const CONFIG: &str = r#"
seed = 3
epochs = 2
batch_size = 16
max_cycles_per_epoch = 3
[model]
nf = 8
nz = 16
[record]
images = 16
[eval]
every = 0
pca_points = 20
[eval.probe]
epochs = 3
[eval.geometry]
intra_pairs_per_class = 20
inter_pairs = 100
occluded_pairs = 100
"#;

/// A value that differs between images and pixels, so no two images are alike.
fn wobble(image: usize, r: usize, c: usize) -> usize {
    (image * 37 + r * 11 + c * 5) % 40
}

/// Three classes under `dir/{train,test}/`: `bright` (RGB, 32 × 32), `dark` (grey, 40 × 40),
/// `striped` (RGB, 24 × 20); `per_class` training and `per_class / 2` test images each.
fn write_image_folder(dir: &Path, per_class: usize) {
    for (split, count) in [("train", per_class), ("test", per_class / 2)] {
        for i in 0..count {
            let name = format!("img{i:03}.png");
            write_rgb(
                &dir.join(split).join("bright").join(&name),
                (32, 32),
                |r, c, ch| (180 + wobble(i, r, c) + ch * 10) as u8,
            );
            write_grey(
                &dir.join(split).join("dark").join(&name),
                (40, 40),
                |r, c| (20 + wobble(i, r, c)) as u8,
            );
            write_rgb(
                &dir.join(split).join("striped").join(&name),
                (24, 20),
                |r, c, ch| {
                    if (r / 3) % 2 == 0 {
                        (200 + wobble(i, r, c)) as u8
                    } else {
                        (40 + ch * 20) as u8
                    }
                },
            );
        }
    }
}

#[test]
fn an_image_folder_trains_evaluates_with_its_classes_and_reports() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("shapes");
    write_image_folder(&data_dir, 16);

    let mut config = Config::from_toml(CONFIG).unwrap();
    config.dataset = DatasetKind::ImageFolder;
    config.data_dir = Some(data_dir.clone());
    config.out_dir = root.path().join("runs");
    config.eval.every = 1;
    let summary = experiment::train(&config, TrainOptions::default()).unwrap();
    assert!(summary.run_dir.join("run.h5").exists());

    let run = RunFile::open_read(config.run_dir().join("run.h5")).unwrap();
    assert_eq!(run.attribute("dataset").unwrap(), "image_folder");
    assert_eq!(run.read_i64_1d("eval/epoch").unwrap(), vec![0, 1, 2]);
    assert_eq!(run.read_i64_1d("eval/classes").unwrap(), vec![3, 3, 3]);
    for path in ["eval/linear/test_accuracy", "eval/converged/test_accuracy"] {
        let values = run.read_f64_1d(path).unwrap();
        assert!(
            values.iter().all(|v| (0.0..=1.0).contains(v)),
            "{path}: {values:?}"
        );
    }
    // The images are 3-channel (the grey class promoted): the recorded grids say so.
    assert_eq!(run.read_images(1, "input").unwrap().shape()[1], 3);
    assert!(config.run_dir().join("figures/accuracy.png").exists());
    drop(run);

    // `padsim eval` rebuilds the encoder for the folder's channels from the stored config.
    padsim_succeeds(&["eval".as_ref(), config.run_dir().as_ref()]);

    let built = report::build(&config.out_dir, None).unwrap();
    assert_eq!(built.groups.len(), 1, "{:?}", built.skipped);
    let group = &built.groups[0];
    assert_eq!(group.dataset, "image_folder-shapes");
    assert_eq!(group.classes, 3);
    let written = report::write(&built, &root.path().join("report")).unwrap();
    assert!(written
        .iter()
        .any(|p| p.ends_with("fig5_occlusion_image_folder-shapes.png")));
}

#[test]
fn npy_arrays_train_from_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("arrays");
    std::fs::create_dir_all(&data_dir).unwrap();
    // Class 0: bright left half; class 1: bright right half; 28 x 28, resized to 32 x 32.
    let images = |count: usize| {
        ndarray::Array3::from_shape_fn((count, 28, 28), |(n, r, c)| {
            let bright = (c < 14) == (n % 2 == 0);
            (if bright { 200 } else { 30 } + wobble(n, r, c)) as u8
        })
    };
    let labels = |count: usize| ndarray::Array1::from_shape_fn(count, |n| (n % 2) as i64);
    write_npy(data_dir.join("train_images.npy"), &images(48)).unwrap();
    write_npy(data_dir.join("train_labels.npy"), &labels(48)).unwrap();
    write_npy(data_dir.join("test_images.npy"), &images(16)).unwrap();
    write_npy(data_dir.join("test_labels.npy"), &labels(16)).unwrap();
    std::fs::write(data_dir.join("class_names.txt"), "left\nright\n").unwrap();
    let config_path = root.path().join("config.toml");
    std::fs::write(&config_path, CONFIG).unwrap();

    let runs = root.path().join("runs");
    padsim_succeeds(&[
        "train".as_ref(),
        "--quiet".as_ref(),
        "--dataset".as_ref(),
        "npy".as_ref(),
        "--config".as_ref(),
        config_path.as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_ref(),
        "--out".as_ref(),
        runs.as_ref(),
    ]);
    let run_dir = root.path().join("runs/npy_full_pad_seed3");
    let run = RunFile::open_read(run_dir.join("run.h5")).unwrap();
    assert_eq!(run.attribute("dataset").unwrap(), "npy");
    assert!(!run.loss_names().unwrap().is_empty());
    assert_eq!(run.read_images(1, "input").unwrap().shape()[1], 1);

    // Without data_dir there is nothing to read: the error says what to set.
    let out = Command::new(env!("CARGO_BIN_EXE_padsim"))
        .args(["train", "--quiet", "--dataset", "npy", "--config"])
        .arg(&config_path)
        .arg("--out")
        .arg(root.path().join("runs2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("data_dir") && stderr.contains("train_images.npy"),
        "{stderr}"
    );
}
