//! Integration tests of `padsim::record`: run files, PNG grids and checkpoints on disk.

use ndarray::{arr2, Array, Array2, Array4, ArrayD, IxDyn};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use padsim::record::{
    save_grid_png, to_u8, Checkpoint, OptimiserState, RngState, RunAttributes, RunFile,
};
use std::path::Path;
use tempfile::TempDir;

fn attributes() -> RunAttributes {
    RunAttributes {
        padsim_version: "0.1.0".into(),
        config_toml: "[train]\nepochs = 50\nname = \"rêve\"\n".into(),
        seed: 42,
        dataset: "cifar10".into(),
        condition: "pad".into(),
        plasticity: "feedforward=exact_backprop feedback=exact_backprop".into(),
        optimiser: "feedforward=adam feedback=adam unused_parameters=zero_gradient".into(),
        created: "2026-01-02T03:04:05Z".into(),
    }
}

fn losses(epoch: usize, offset: f64) -> Vec<(String, String, f64)> {
    vec![
        ("wake".into(), "kl".into(), epoch as f64 + offset),
        (
            "wake".into(),
            "reconstruction".into(),
            10.0 * epoch as f64 + offset,
        ),
        (
            "nrem".into(),
            "latent_reconstruction".into(),
            -(epoch as f64),
        ),
    ]
}

/// Compares with NaN equal to NaN: never-written entries read as NaN.
fn assert_same(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            a == e || (a.is_nan() && e.is_nan()),
            "{actual:?} vs {expected:?}"
        );
    }
}

#[test]
fn run_file_attributes_and_losses_round_trip() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("run.h5");
    let run = RunFile::create(&path, &attributes()).unwrap();
    for epoch in 0..3 {
        run.record_losses(epoch, &losses(epoch, 0.5)).unwrap();
        run.flush().unwrap();
    }
    // A term that first appears at epoch 2 reads as NaN before it.
    run.record_losses(2, &[("rem", "internal", 0.25)]).unwrap();
    // Re-recording an epoch (as after a crash) overwrites it.
    run.record_losses(1, &losses(1, 100.0)).unwrap();
    run.close().unwrap();

    let run = RunFile::open_read(&path).unwrap();
    let expected = attributes();
    assert_eq!(run.attribute("padsim_version").unwrap(), "0.1.0");
    assert_eq!(run.attribute("config").unwrap(), expected.config_toml);
    assert_eq!(run.attribute("seed").unwrap(), "42");
    assert_eq!(run.attribute("dataset").unwrap(), "cifar10");
    assert_eq!(run.attribute("condition").unwrap(), "pad");
    assert_eq!(
        run.attribute("plasticity").unwrap(),
        "feedforward=exact_backprop feedback=exact_backprop"
    );
    assert_eq!(run.attribute("optimiser").unwrap(), expected.optimiser);
    assert_eq!(run.attribute("created").unwrap(), expected.created);
    assert!(run.attribute("missing").is_err());

    assert_eq!(
        run.loss_names().unwrap(),
        [
            ("nrem".to_string(), "latent_reconstruction".to_string()),
            ("rem".into(), "internal".into()),
            ("wake".into(), "kl".into()),
            ("wake".into(), "reconstruction".into()),
        ]
    );
    assert_same(&run.read_losses("wake", "kl").unwrap(), &[0.5, 101.0, 2.5]);
    assert_same(
        &run.read_losses("wake", "reconstruction").unwrap(),
        &[0.5, 110.0, 20.5],
    );
    assert_same(
        &run.read_losses("rem", "internal").unwrap(),
        &[f64::NAN, f64::NAN, 0.25],
    );
    // Read-only means read-only, and the error says which file.
    let error = run.record_losses(3, &losses(3, 0.0)).unwrap_err();
    assert!(error.to_string().contains("run.h5"), "{error}");
    drop(run);

    // A resume from the checkpoint after epoch 2 drops epoch 2 and records it again.
    let run = RunFile::open(&path).unwrap();
    run.truncate_epochs(2).unwrap();
    assert_same(&run.read_losses("wake", "kl").unwrap(), &[0.5, 101.0]);
    assert_same(
        &run.read_losses("rem", "internal").unwrap(),
        &[f64::NAN, f64::NAN],
    );
    run.record_losses(2, &losses(2, 7.0)).unwrap();
    assert_same(&run.read_losses("wake", "kl").unwrap(), &[0.5, 101.0, 9.0]);
    // Truncating never lengthens a shorter dataset.
    run.truncate_epochs(10).unwrap();
    assert_eq!(run.read_losses("wake", "kl").unwrap().len(), 3);
    // Truncated entries do not come back when the dataset grows again.
    run.truncate_epochs(1).unwrap();
    run.record_losses(3, &[("wake", "kl", 3.0)]).unwrap();
    assert_same(
        &run.read_losses("wake", "kl").unwrap(),
        &[0.5, f64::NAN, f64::NAN, 3.0],
    );
}

#[test]
fn run_file_refuses_to_overwrite_and_names_missing_files() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("run.h5");
    RunFile::create(&path, &attributes()).unwrap();
    let error = RunFile::create(&path, &attributes()).unwrap_err();
    assert!(error.to_string().contains("run.h5"), "{error}");

    let missing = dir.path().join("missing.h5");
    for error in [
        RunFile::open(&missing).unwrap_err(),
        RunFile::open_read(&missing).unwrap_err(),
    ] {
        assert_eq!(error.path(), missing);
        assert!(error.to_string().contains("missing.h5"), "{error}");
    }
}

#[test]
fn run_file_images_round_trip_and_replace() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("run.h5");
    let run = RunFile::create(&path, &attributes()).unwrap();
    let images = Array4::from_shape_fn((2, 3, 4, 5), |(n, c, h, w)| {
        (n * 60 + c * 20 + h * 5 + w) as u8
    });
    run.record_images(3, "rem_dream", images.view()).unwrap();
    run.record_images(3, "nrem_dream", images.slice(ndarray::s![.., ..1, .., ..]))
        .unwrap();
    assert_eq!(run.read_images(3, "rem_dream").unwrap(), images);

    // Replacing may change the shape; a non-standard layout is stored as its logical values.
    let transposed = images.view().permuted_axes([0, 1, 3, 2]);
    run.record_images(3, "rem_dream", transposed).unwrap();
    assert_eq!(run.read_images(3, "rem_dream").unwrap(), transposed);
    assert_eq!(
        run.read_images(3, "nrem_dream").unwrap().dim(),
        (2, 1, 4, 5)
    );
    assert!(run.read_images(4, "rem_dream").is_err());
    assert!(run.record_images(3, "a/b", images.view()).is_err());
}

#[test]
fn run_file_generic_helpers() {
    let dir = TempDir::new().unwrap();
    let run = RunFile::create(dir.path().join("run.h5"), &attributes()).unwrap();

    run.write_i64_at("eval/epoch", 0, 5).unwrap();
    run.write_i64_at("/eval/epoch", 2, 15).unwrap();
    assert_eq!(run.read_i64_1d("eval/epoch").unwrap(), [5, -1, 15]);

    run.write_f64_at("eval/linear/test_accuracy", 1, 0.59)
        .unwrap();
    assert_same(
        &run.read_f64_1d("eval/linear/test_accuracy").unwrap(),
        &[f64::NAN, 0.59],
    );

    let path = "eval/occlusion/test_accuracy";
    let row = |k: f64| (0..11).map(|i| k + i as f64 / 10.0).collect::<Vec<_>>();
    run.append_row_f64(path, &row(0.0), 0).unwrap();
    run.append_row_f64(path, &row(2.0), 2).unwrap();
    run.append_row_f64(path, &row(5.0), 0).unwrap();
    let table = run.read_f64_2d(path).unwrap();
    assert_eq!(table.dim(), (3, 11));
    assert_same(table.row(0).as_slice().unwrap(), &row(5.0));
    assert!(table.row(1).iter().all(|v| v.is_nan()));
    assert_same(table.row(2).as_slice().unwrap(), &row(2.0));
    let error = run.append_row_f64(path, &[1.0, 2.0], 3).unwrap_err();
    assert!(error.to_string().contains("test_accuracy"), "{error}");
    assert!(run.append_row_f64("eval/empty", &[], 0).is_err());

    let projection = arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    run.write_f64_2d("eval/pca/epoch_0010", projection.view())
        .unwrap();
    run.write_i64_1d("eval/pca/epoch_0010_labels", &[3, 1, 4])
        .unwrap();
    let replacement = Array2::from_elem((1, 2), 9.0);
    run.write_f64_2d("eval/pca/epoch_0010", replacement.view())
        .unwrap();
    assert_eq!(run.read_f64_2d("eval/pca/epoch_0010").unwrap(), replacement);
    assert_eq!(
        run.read_i64_1d("eval/pca/epoch_0010_labels").unwrap(),
        [3, 1, 4]
    );

    assert!(run.write_f64_at("eval//x", 0, 1.0).is_err());
    // A 2-D dataset is not a 1-D one.
    assert!(run.write_f64_at(path, 0, 1.0).is_err());
}

/// Decodes a PNG into (width, height, color type, pixels).
fn decode_png(path: &Path) -> (u32, u32, png::ColorType, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    (info.width, info.height, info.color_type, pixels)
}

#[test]
fn png_grid_layout() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("grid.png");
    // Five RGB images of 2x3 pixels, 3 per row, scaled 2x: tiles of 4x6 with 2-pixel borders.
    let images = Array4::from_shape_fn((5, 3, 2, 3), |(n, c, h, w)| {
        (n * 40 + c * 10 + h * 3 + w) as u8
    });
    save_grid_png(&path, images.view(), 3, 2).unwrap();
    let (width, height, color, pixels) = decode_png(&path);
    assert_eq!((width, height), (3 * (6 + 2) + 2, 2 * (4 + 2) + 2));
    assert_eq!(color, png::ColorType::Rgb);
    let pixel = |x: usize, y: usize| {
        let start = (y * width as usize + x) * 3;
        [pixels[start], pixels[start + 1], pixels[start + 2]]
    };
    let gray = [128; 3];
    for (x, y) in [(0, 0), (1, 1), (25, 13), (8, 5), (9, 2), (2, 6), (2, 7)] {
        assert_eq!(pixel(x, y), gray, "border at ({x}, {y})");
    }
    // The empty sixth cell is gray too.
    assert_eq!(pixel(18, 8), gray);
    // Image 4 sits in row 1, column 1: top-left at (10, 8); output pixel (15, 11) is source
    // pixel (w = 5 / 2, h = 3 / 2) = (2, 1).
    let source = |n: usize, h: usize, w: usize| [0, 1, 2].map(|c| images[[n, c, h, w]]);
    assert_eq!(pixel(10 + 5, 8 + 3), source(4, 1, 2));
    assert_eq!(pixel(10, 8), source(4, 0, 0));
    assert_eq!(pixel(2 + 1, 2 + 1), source(0, 0, 0));

    // Grayscale, overwriting an existing file; nothing temporary is left behind.
    let gray_images = Array4::from_shape_fn((2, 1, 2, 2), |(n, _, h, w)| (n * 4 + h * 2 + w) as u8);
    save_grid_png(&path, gray_images.view(), 8, 1).unwrap();
    let (width, height, color, pixels) = decode_png(&path);
    // Two columns although eight were allowed: the grid is no wider than the images need.
    assert_eq!((width, height, color), (10, 6, png::ColorType::Grayscale));
    assert_eq!(pixels[2 * 10 + 2..2 * 10 + 4], [0, 1]);
    assert_eq!(pixels[3 * 10 + 6..3 * 10 + 8], [6, 7]);
    assert_eq!(pixels[2 * 10 + 4], 128);
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");

    let missing_dir = dir.path().join("no/such/dir/grid.png");
    let error = save_grid_png(&missing_dir, gray_images.view(), 8, 1).unwrap_err();
    assert!(error.to_string().contains("grid.png"), "{error}");
}

#[test]
fn to_u8_extremes() {
    let values = vec![-1.0, 1.0, -1.5, 7.0, f32::NAN, -0.5, 0.999];
    let images = Array4::from_shape_vec((1, 1, 1, values.len()), values).unwrap();
    assert_eq!(
        to_u8(images.view()).into_raw_vec_and_offset().0,
        [0, 255, 0, 255, 0, 64, 255]
    );
}

fn random(seed: u64, shape: &[usize]) -> ArrayD<f32> {
    let mut rng = padsim::rng::stream(seed, "record-test");
    Array::random_using(IxDyn(shape), StandardNormal, &mut rng)
}

/// Adam's two buffers of one tensor, as a checkpoint stores them.
fn adam(exp_avg: ArrayD<f32>, exp_avg_sq: ArrayD<f32>) -> Vec<(String, ArrayD<f32>)> {
    vec![
        ("exp_avg".into(), exp_avg),
        ("exp_avg_sq".into(), exp_avg_sq),
    ]
}

fn full_checkpoint() -> Checkpoint {
    Checkpoint {
        config_toml: "[model]\nnz = 256\n".into(),
        epoch: 7,
        batch: 312,
        // Not in alphabetical order: the order must survive.
        parameters: vec![
            ("E.conv1.weight".into(), random(1, &[64, 3, 4, 4])),
            ("E.conv1.bias".into(), random(2, &[64])),
            ("D.weight".into(), random(3, &[1, 256, 4, 4])),
        ],
        optimisers: vec![
            OptimiserState {
                name: "G".into(),
                tensors: vec![(
                    "G.deconv1.weight".into(),
                    3,
                    adam(random(4, &[8, 4]), random(5, &[8, 4])),
                )],
            },
            OptimiserState {
                name: "E".into(),
                tensors: vec![
                    (
                        "E.conv1.weight".into(),
                        9,
                        adam(random(6, &[2, 3]), random(7, &[2, 3])),
                    ),
                    (
                        "E.conv1.bias".into(),
                        u64::MAX,
                        adam(random(8, &[3]), random(9, &[3])),
                    ),
                ],
            },
            // SGD: a momentum buffer, and a tensor with no buffer at all (no momentum).
            OptimiserState {
                name: "sgd".into(),
                tensors: vec![
                    (
                        "E.dis.weight".into(),
                        2,
                        vec![("momentum_buffer".into(), random(20, &[1, 4]))],
                    ),
                    ("E.dis.bias".into(), 1, Vec::new()),
                ],
            },
        ],
        memories: (0..3)
            .map(|i| random(10 + i, &[4, 6]).into_dimensionality().unwrap())
            .collect(),
        rngs: vec![
            RngState {
                name: "shuffle".into(),
                seed: std::array::from_fn(|i| i as u8 * 7),
                stream: u64::MAX - 1,
                word_pos: (1u128 << 67) + 12345,
            },
            RngState {
                name: "init".into(),
                seed: [255; 32],
                stream: 0,
                word_pos: 0,
            },
        ],
        extra: vec![
            ("B.feedback".into(), random(20, &[5, 5])),
            ("empty".into(), ArrayD::zeros(IxDyn(&[0, 3]))),
            ("scalar".into(), ArrayD::from_elem(IxDyn(&[]), 1.5)),
        ],
        scalars: vec![
            ("wake/kl/sum".into(), 0.1 + 0.2),
            ("wake/kl/count".into(), 17.0),
            ("tiny".into(), f64::MIN_POSITIVE),
        ],
    }
}

fn assert_bits_equal(actual: &ArrayD<f32>, expected: &ArrayD<f32>) {
    assert_eq!(actual.shape(), expected.shape());
    assert!(actual
        .iter()
        .zip(expected.iter())
        .all(|(a, e)| a.to_bits() == e.to_bits()));
}

fn assert_checkpoints_bit_equal(actual: &Checkpoint, expected: &Checkpoint) {
    // PartialEq covers names, counters and order; bit comparison covers the floats exactly.
    assert_eq!(actual, expected);
    let arrays = |c: &Checkpoint| {
        let mut all: Vec<ArrayD<f32>> = Vec::new();
        all.extend(c.parameters.iter().map(|(_, a)| a.clone()));
        all.extend(c.extra.iter().map(|(_, a)| a.clone()));
        all.extend(c.memories.iter().map(|m| m.clone().into_dyn()));
        for optimiser in &c.optimisers {
            for (_, _, buffers) in &optimiser.tensors {
                all.extend(buffers.iter().map(|(_, b)| b.clone()));
            }
        }
        all
    };
    for (a, e) in arrays(actual).iter().zip(&arrays(expected)) {
        assert_bits_equal(a, e);
    }
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("checkpoint.h5");
    let checkpoint = full_checkpoint();
    checkpoint.write_atomic(&path).unwrap();
    assert_checkpoints_bit_equal(&Checkpoint::read(&path).unwrap(), &checkpoint);

    let empty = Checkpoint {
        config_toml: String::new(),
        epoch: 0,
        batch: 0,
        parameters: vec![],
        optimisers: vec![],
        memories: vec![],
        rngs: vec![],
        extra: vec![],
        scalars: vec![],
    };
    empty.write_atomic(&path).unwrap();
    assert_eq!(Checkpoint::read(&path).unwrap(), empty);

    // A non-standard layout is stored as its logical values.
    let mut transposed = empty.clone();
    let weight = random(30, &[3, 5]);
    transposed.parameters = vec![("w".into(), weight.clone().reversed_axes())];
    assert!(!transposed.parameters[0].1.is_standard_layout());
    transposed.write_atomic(&path).unwrap();
    assert_bits_equal(
        &Checkpoint::read(&path).unwrap().parameters[0].1,
        &weight.t().to_owned(),
    );
}

#[test]
fn checkpoint_write_is_atomic() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("checkpoint.h5");
    let temporary = dir.path().join("checkpoint.h5.tmp");
    let old = full_checkpoint();
    old.write_atomic(&path).unwrap();
    assert!(!temporary.exists());

    // A crash mid-write leaves a partial temporary file beside the intact old checkpoint.
    std::fs::write(&temporary, b"\x89HDF\r\n\x1a\n half a checkpoint").unwrap();
    assert_checkpoints_bit_equal(&Checkpoint::read(&path).unwrap(), &old);

    // A write that fails (a name HDF5 would read as a path) also leaves the old one in place.
    let mut invalid = old.clone();
    invalid.parameters.push(("a/b".into(), random(40, &[2])));
    let error = invalid.write_atomic(&path).unwrap_err();
    assert!(error.to_string().contains("checkpoint.h5.tmp"), "{error}");
    assert_checkpoints_bit_equal(&Checkpoint::read(&path).unwrap(), &old);
    assert!(!temporary.exists());

    let mut new = old.clone();
    new.epoch += 1;
    new.parameters[0].1.mapv_inplace(|w| w * 0.5);
    std::fs::write(&temporary, b"stale").unwrap();
    new.write_atomic(&path).unwrap();
    assert_checkpoints_bit_equal(&Checkpoint::read(&path).unwrap(), &new);
    assert!(!temporary.exists());
}

#[test]
fn corrupt_checkpoint_is_an_error_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("checkpoint.h5");
    full_checkpoint().write_atomic(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let truncated = dir.path().join("truncated.h5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.path().join("garbage.h5");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    let missing = dir.path().join("missing.h5");
    for path in [&truncated, &garbage, &missing] {
        let error = Checkpoint::read(path).unwrap_err();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(error.to_string().contains(name), "{error}");
    }

    // A file from a different layout version is refused, not misread.
    let other_version = dir.path().join("version2.h5");
    std::fs::write(&other_version, &bytes).unwrap();
    {
        let file = hdf5::File::open_rw(&other_version).unwrap();
        file.attr("format_version")
            .unwrap()
            .write_scalar(&2u64)
            .unwrap();
    }
    let error = Checkpoint::read(&other_version).unwrap_err();
    assert!(error.to_string().contains("format version 2"), "{error}");
}
