//! The data loaders on small files written by the tests themselves (never on downloaded data):
//! well-formed files load to the right pixels and labels, malformed ones give errors that name
//! the file.
//!
//! `tests/data/svhn_tiny_32x32.mat` is the one checked-in fixture, a MAT-file written by SciPy
//! (so the reader is tested on a real writer's output, compressed), made with:
//!
//! ```text
//! python3 -c "import numpy as np, scipy.io as s; r,c,ch,n=np.meshgrid(*[np.arange(k) for k in (32,32,3,5)], indexing='ij'); s.savemat('tests/data/svhn_tiny_32x32.mat', {'X': ((r + 2*c + 50*ch + 7*n) % 256).astype(np.uint8), 'y': np.array([[10.], [1.], [2.], [3.], [9.]])}, do_compression=True)"
//! ```
//!
//! (SciPy 1.17.1, NumPy 2.4.6), i.e. X(row, col, ch, n) = (row + 2·col + 50·ch + 7·n) mod 256,
//! y = [10, 1, 2, 3, 9].

mod common;

use common::own_data::{npy_bytes, png_bytes, write_grey, write_png, write_rgb};
use ndarray_npy::write_npy;
use padsim::data::{
    self, cifar10, image_folder, mnist, npy, svhn, synthetic, DataError, DatasetKind, LoadOptions,
    MnistResize, SyntheticConfig,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "padsim-data-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asserts that loading failed with a message that starts with (or at least contains) the
/// file's name, and contains every one of `fragments`.
fn assert_error_names(
    result: Result<impl std::fmt::Debug, DataError>,
    file: &str,
    fragments: &[&str],
) {
    let err = result.expect_err("malformed input must be an error");
    let message = err.to_string();
    assert!(
        message.contains(file),
        "error does not name {file}: {message}"
    );
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "error lacks {fragment:?}: {message}"
        );
    }
    if let Some(path) = err.path() {
        assert!(path.to_string_lossy().contains(file), "{}", path.display());
    }
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10
// ---------------------------------------------------------------------------------------------

/// Pixel `p` (0..3072, CHW) of CIFAR record `r` in file `f`: distinct per file, record, pixel.
fn cifar_pixel(f: usize, r: usize, p: usize) -> u8 {
    ((p * 7 + r * 31 + f * 101) % 256) as u8
}

fn cifar_label(f: usize, r: usize) -> u8 {
    ((f * 3 + r) % 10) as u8
}

fn cifar_file(f: usize, records: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in 0..records {
        bytes.push(cifar_label(f, r));
        bytes.extend((0..3072).map(|p| cifar_pixel(f, r, p)));
    }
    bytes
}

/// A complete CIFAR folder: five training files and the test file, `records` each (file index
/// 0..5 for training, 5 for test).
fn write_cifar(dir: &TempDir, records: usize) {
    for (f, name) in cifar10::TRAIN_FILES.iter().enumerate() {
        dir.write(name, &cifar_file(f, records));
    }
    dir.write(cifar10::TEST_FILE, &cifar_file(5, records));
}

#[test]
fn cifar10_loads_all_six_files_in_order() {
    let dir = TempDir::new("cifar");
    write_cifar(&dir, 3);
    let meta = "plane\ncar\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    dir.write(cifar10::META_FILE, meta.as_bytes());

    let split = data::load(DatasetKind::Cifar10, dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (15, 3));
    assert_eq!(split.train.channels(), 3);
    assert_eq!(split.train.class_names()[1], "car");
    for f in 0..5 {
        for r in 0..3 {
            let i = f * 3 + r;
            assert_eq!(split.train.labels()[i], cifar_label(f, r));
            let expected: Vec<u8> = (0..3072).map(|p| cifar_pixel(f, r, p)).collect();
            assert_eq!(split.train.image(i), expected.as_slice(), "train image {i}");
        }
    }
    assert_eq!(
        split.test.labels(),
        &[cifar_label(5, 0), cifar_label(5, 1), cifar_label(5, 2)]
    );

    // Red plane first, rows of 32: pixel (row 1, col 2) of the green plane is byte 1024+34.
    let batch = split.train.batch_f32(&[4]);
    assert_eq!(batch.shape(), &[1, 3, 32, 32]);
    let byte = cifar_pixel(1, 1, 1024 + 32 + 2);
    assert_eq!(batch[[0, 1, 1, 2]], f32::from(byte) / 127.5 - 1.0);
}

#[test]
fn cifar10_without_meta_file_uses_standard_names() {
    let dir = TempDir::new("cifar-nometa");
    write_cifar(&dir, 1);
    let split = cifar10::load(dir.path()).unwrap();
    assert_eq!(split.train.class_names()[0], "airplane");
    assert_eq!(split.train.name(), "cifar10/train");
}

#[test]
fn cifar10_missing_training_file_is_named() {
    let dir = TempDir::new("cifar-missing");
    write_cifar(&dir, 2);
    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    assert_error_names(
        cifar10::load(dir.path()),
        "data_batch_4.bin",
        &["file not found", "training batch 4 of 5"],
    );
}

#[test]
fn cifar10_malformed_files_are_named() {
    let dir = TempDir::new("cifar-bad");
    write_cifar(&dir, 2);

    // Truncated: one record and a half.
    let mut truncated = cifar_file(1, 2);
    truncated.truncate(3073 + 1500);
    dir.write("data_batch_2.bin", &truncated);
    assert_error_names(
        cifar10::load(dir.path()),
        "data_batch_2.bin",
        &["size 4573 bytes", "multiple of the 3073-byte record"],
    );

    // Right size, impossible label.
    write_cifar(&dir, 2);
    let mut bad_label = cifar_file(5, 2);
    bad_label[3073] = 42;
    dir.write("test_batch.bin", &bad_label);
    assert_error_names(
        cifar10::load(dir.path()),
        "test_batch.bin",
        &["label 42 at record 1", "0..=9"],
    );

    // Empty file.
    write_cifar(&dir, 2);
    dir.write("data_batch_5.bin", &[]);
    assert_error_names(
        cifar10::load(dir.path()),
        "data_batch_5.bin",
        &["size 0 bytes"],
    );

    // Wrong number of class names.
    write_cifar(&dir, 2);
    dir.write(cifar10::META_FILE, b"a\nb\nc\n");
    assert_error_names(
        cifar10::load(dir.path()),
        "batches.meta.txt",
        &["3 class names; expected 10"],
    );
}

// ---------------------------------------------------------------------------------------------
// SVHN
// ---------------------------------------------------------------------------------------------

const SVHN_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/svhn_tiny_32x32.mat"
);

fn svhn_pixel(row: usize, col: usize, ch: usize, n: usize) -> u8 {
    ((row + 2 * col + 50 * ch + 7 * n) % 256) as u8
}

fn assert_svhn_pattern(data: &data::Dataset, n_images: usize) {
    assert_eq!(data.len(), n_images);
    for n in 0..n_images {
        let image = data.image(n);
        for ch in 0..3 {
            for row in 0..32 {
                for col in 0..32 {
                    assert_eq!(
                        image[ch * 1024 + row * 32 + col],
                        svhn_pixel(row, col, ch, n),
                        "image {n} channel {ch} ({row}, {col})"
                    );
                }
            }
        }
    }
}

#[test]
fn svhn_reads_scipy_compressed_fixture() {
    let fixture = std::fs::read(SVHN_FIXTURE).unwrap();
    let dir = TempDir::new("svhn");
    dir.write(svhn::TRAIN_FILE, &fixture);
    dir.write(svhn::TEST_FILE, &fixture);
    let split = data::load(DatasetKind::Svhn, dir.path(), &LoadOptions::default()).unwrap();
    assert_svhn_pattern(&split.train, 5);
    assert_svhn_pattern(&split.test, 5);
    // SVHN's class 10 is the digit 0.
    assert_eq!(split.train.labels(), &[0, 1, 2, 3, 9]);
    assert_eq!(split.train.class_names()[0], "0");
}

/// Byte-by-byte level-5 MAT-file construction, little-endian, no compression.
mod mat {
    pub const MI_INT8: u32 = 1;
    pub const MI_UINT8: u32 = 2;
    pub const MI_INT32: u32 = 5;
    pub const MI_UINT32: u32 = 6;
    pub const MI_DOUBLE: u32 = 9;
    pub const MI_MATRIX: u32 = 14;
    pub const MX_DOUBLE: u32 = 6;
    pub const MX_UINT8: u32 = 9;

    /// 116 bytes of text, 8 bytes of subsystem offset, version 0x0100, "IM".
    pub fn header() -> Vec<u8> {
        let mut h = b"MATLAB 5.0 MAT-file, Platform: padsim test, built byte by byte".to_vec();
        h.resize(116, b' ');
        h.extend([0; 8]);
        h.extend(0x0100u16.to_le_bytes());
        h.extend(b"IM");
        assert_eq!(h.len(), 128);
        h
    }

    /// A data element: 8-byte tag (type, byte count) + data + zero padding to 8 bytes, or the
    /// 8-byte small form (count << 16 | type, then up to 4 data bytes) when `small` allows it.
    pub fn element(kind: u32, data: &[u8], small: bool) -> Vec<u8> {
        let mut e = Vec::new();
        if small && data.len() <= 4 {
            e.extend((((data.len() as u32) << 16) | kind).to_le_bytes());
            e.extend(data);
            e.resize(8, 0);
        } else {
            e.extend(kind.to_le_bytes());
            e.extend((data.len() as u32).to_le_bytes());
            e.extend(data);
            e.resize(e.len().div_ceil(8) * 8, 0);
        }
        e
    }

    /// miMATRIX: array flags (class), dimensions, name, real part.
    pub fn matrix(name: &str, class: u32, dims: &[i32], storage: u32, values: &[u8]) -> Vec<u8> {
        let mut flags = class.to_le_bytes().to_vec();
        flags.extend(0u32.to_le_bytes());
        let dims: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
        let mut body = element(MI_UINT32, &flags, false);
        body.extend(element(MI_INT32, &dims, false));
        body.extend(element(MI_INT8, name.as_bytes(), true));
        body.extend(element(storage, values, false));
        element(MI_MATRIX, &body, false)
    }

    /// X (uint8, 32x32x3xN, column-major) from a pixel function of (row, col, ch, n).
    pub fn svhn_x(n: usize, pixel: impl Fn(usize, usize, usize, usize) -> u8) -> Vec<u8> {
        let mut x = vec![0u8; 3072 * n];
        for i in 0..n {
            for ch in 0..3 {
                for col in 0..32 {
                    for row in 0..32 {
                        x[row + 32 * col + 1024 * ch + 3072 * i] = pixel(row, col, ch, i);
                    }
                }
            }
        }
        x
    }
}

fn svhn_uncompressed(n: usize, labels: &[u8], y_class: u32) -> Vec<u8> {
    let mut file = mat::header();
    let x = mat::svhn_x(n, svhn_pixel);
    file.extend(mat::matrix(
        "X",
        mat::MX_UINT8,
        &[32, 32, 3, n as i32],
        mat::MI_UINT8,
        &x,
    ));
    // y stored as miUINT8 whatever its class: MATLAB narrows storage of integer-valued doubles.
    file.extend(mat::matrix(
        "y",
        y_class,
        &[labels.len() as i32, 1],
        mat::MI_UINT8,
        labels,
    ));
    file
}

#[test]
fn svhn_reads_uncompressed_file_built_byte_by_byte() {
    let dir = TempDir::new("svhn-plain");
    for class in [mat::MX_DOUBLE, mat::MX_UINT8] {
        let path = dir.write("plain.mat", &svhn_uncompressed(3, &[10, 5, 1], class));
        let data = svhn::read_split(&path, "svhn/train").unwrap();
        assert_svhn_pattern(&data, 3);
        assert_eq!(data.labels(), &[0, 5, 1]);
    }
    // y as genuine doubles.
    let mut file = mat::header();
    file.extend(mat::matrix(
        "X",
        mat::MX_UINT8,
        &[32, 32, 3, 2],
        mat::MI_UINT8,
        &mat::svhn_x(2, svhn_pixel),
    ));
    let y: Vec<u8> = [7.0f64, 10.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    file.extend(mat::matrix(
        "y",
        mat::MX_DOUBLE,
        &[1, 2],
        mat::MI_DOUBLE,
        &y,
    ));
    let path = dir.write("doubles.mat", &file);
    assert_eq!(svhn::read_split(&path, "t").unwrap().labels(), &[7, 0]);
}

#[test]
fn svhn_missing_file_is_named() {
    let dir = TempDir::new("svhn-missing");
    dir.write(svhn::TRAIN_FILE, &std::fs::read(SVHN_FIXTURE).unwrap());
    assert_error_names(
        svhn::load(dir.path()),
        "test_32x32.mat",
        &["file not found"],
    );
}

#[test]
fn svhn_malformed_files_are_named() {
    let dir = TempDir::new("svhn-bad");
    let fixture = std::fs::read(SVHN_FIXTURE).unwrap();
    let read = |name: &str, bytes: &[u8]| {
        let path = dir.write(name, bytes);
        svhn::read_split(&path, "t")
    };

    // Truncated inside the compressed X.
    assert_error_names(read("cut.mat", &fixture[..400]), "cut.mat", &["truncated"]);
    // Truncated inside the header.
    assert_error_names(
        read("short.mat", &fixture[..60]),
        "short.mat",
        &["60 bytes", "128-byte header"],
    );
    // Wrong endian indicator.
    let mut bad = fixture.clone();
    bad[126..128].copy_from_slice(b"XY");
    assert_error_names(
        read("endian.mat", &bad),
        "endian.mat",
        &["endian indicator \"XY\""],
    );
    // Not a MAT-file at all.
    assert_error_names(
        read("text.mat", &[b'a'; 300]),
        "text.mat",
        &["not a MATLAB v5 MAT-file"],
    );
    // Corrupt zlib stream: flip bytes inside the first compressed element.
    let mut corrupt = fixture.clone();
    for b in &mut corrupt[140..180] {
        *b ^= 0x5a;
    }
    assert_error_names(read("zlib.mat", &corrupt), "zlib.mat", &["zlib"]);

    // Wrong class of X.
    let mut file = mat::header();
    let doubles: Vec<u8> = (0..3072).flat_map(|_| 1.0f64.to_le_bytes()).collect();
    file.extend(mat::matrix(
        "X",
        mat::MX_DOUBLE,
        &[32, 32, 3, 1],
        mat::MI_DOUBLE,
        &doubles,
    ));
    file.extend(mat::matrix(
        "y",
        mat::MX_DOUBLE,
        &[1, 1],
        mat::MI_UINT8,
        &[1],
    ));
    assert_error_names(
        read("class.mat", &file),
        "class.mat",
        &["'X' has class double; expected uint8"],
    );

    // Wrong dimensions of X (one channel).
    let mut file = mat::header();
    file.extend(mat::matrix(
        "X",
        mat::MX_UINT8,
        &[32, 32, 1, 3],
        mat::MI_UINT8,
        &[0; 3072],
    ));
    file.extend(mat::matrix(
        "y",
        mat::MX_DOUBLE,
        &[3, 1],
        mat::MI_UINT8,
        &[1, 2, 3],
    ));
    assert_error_names(
        read("dims.mat", &file),
        "dims.mat",
        &["32x32x1x3; expected 32x32x3xN"],
    );

    // No y.
    let mut file = mat::header();
    file.extend(mat::matrix(
        "X",
        mat::MX_UINT8,
        &[32, 32, 3, 1],
        mat::MI_UINT8,
        &[0; 3072],
    ));
    assert_error_names(
        read("noy.mat", &file),
        "noy.mat",
        &["missing variable 'y'", "[X]"],
    );

    // Label out of range.
    assert_error_names(
        read("label.mat", &svhn_uncompressed(2, &[3, 11], mat::MX_DOUBLE)),
        "label.mat",
        &["label 11 at record 1", "1..=10"],
    );
}

// ---------------------------------------------------------------------------------------------
// MNIST / Fashion-MNIST
// ---------------------------------------------------------------------------------------------

fn idx_images(count: usize, pixel: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut bytes = 0x0000_0803u32.to_be_bytes().to_vec();
    for d in [count as u32, 28, 28] {
        bytes.extend(d.to_be_bytes());
    }
    for n in 0..count {
        bytes.extend((0..784).map(|p| pixel(n, p)));
    }
    bytes
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = 0x0000_0801u32.to_be_bytes().to_vec();
    bytes.extend((labels.len() as u32).to_be_bytes());
    bytes.extend(labels);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn mnist_pixel(n: usize, p: usize) -> u8 {
    ((n * 50 + p * 3) % 256) as u8
}

/// Training files gzipped, test files plain: both spellings are found.
fn write_mnist(dir: &TempDir) {
    dir.write(
        "train-images-idx3-ubyte.gz",
        &gzip(&idx_images(3, mnist_pixel)),
    );
    dir.write("train-labels-idx1-ubyte.gz", &gzip(&idx_labels(&[5, 0, 4])));
    dir.write(
        "t10k-images-idx3-ubyte",
        &idx_images(2, |n, p| mnist_pixel(n + 10, p)),
    );
    dir.write("t10k-labels-idx1-ubyte", &idx_labels(&[7, 2]));
}

#[test]
fn mnist_loads_plain_and_gzipped_idx_files_with_padding() {
    let dir = TempDir::new("mnist");
    write_mnist(&dir);
    let options = LoadOptions {
        mnist_resize: MnistResize::Pad,
        ..LoadOptions::default()
    };
    let split = data::load(DatasetKind::Mnist, dir.path(), &options).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (3, 2));
    assert_eq!(split.train.channels(), 1);
    assert_eq!(split.train.labels(), &[5, 0, 4]);
    assert_eq!(split.test.labels(), &[7, 2]);
    for n in 0..3 {
        let image = split.train.image(n);
        for r in 0..32 {
            for c in 0..32 {
                let expected = if (2..30).contains(&r) && (2..30).contains(&c) {
                    mnist_pixel(n, (r - 2) * 28 + (c - 2))
                } else {
                    0
                };
                assert_eq!(image[r * 32 + c], expected, "image {n} ({r}, {c})");
            }
        }
    }
    assert_eq!(split.test.image(1)[2 * 32 + 2], mnist_pixel(11, 0));
    assert_eq!(split.train.batch_f32(&[0]).shape(), &[1, 1, 32, 32]);
}

#[test]
fn fashion_mnist_bilinear_keeps_flat_images_flat() {
    let dir = TempDir::new("fashion");
    dir.write(
        "train-images-idx3-ubyte",
        &idx_images(2, |n, _| [30, 220][n]),
    );
    dir.write("train-labels-idx1-ubyte", &idx_labels(&[9, 1]));
    dir.write("t10k-images-idx3-ubyte", &idx_images(1, |_, _| 128));
    dir.write("t10k-labels-idx1-ubyte", &idx_labels(&[3]));
    let options = LoadOptions {
        mnist_resize: MnistResize::Bilinear,
        ..LoadOptions::default()
    };
    let split = data::load(DatasetKind::FashionMnist, dir.path(), &options).unwrap();
    assert_eq!(split.train.class_names()[9], "Ankle boot");
    assert_eq!(split.train.name(), "fashion_mnist/train");
    assert!(split.train.image(0).iter().all(|&v| v == 30));
    assert!(split.train.image(1).iter().all(|&v| v == 220));
    assert!(split.test.image(0).iter().all(|&v| v == 128));
}

#[test]
fn mnist_malformed_files_are_named() {
    let load =
        |dir: &TempDir| mnist::load(dir.path(), mnist::MnistFlavour::Digits, MnistResize::Pad);

    // Missing file.
    let dir = TempDir::new("mnist-missing");
    write_mnist(&dir);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    assert_error_names(
        load(&dir),
        "t10k-labels-idx1-ubyte",
        &["file not found", ".gz"],
    );

    // Wrong magic: a label file where the images should be.
    let dir = TempDir::new("mnist-magic");
    write_mnist(&dir);
    dir.write("t10k-images-idx3-ubyte", &idx_labels(&[1, 2]));
    assert_error_names(
        load(&dir),
        "t10k-images-idx3-ubyte",
        &["magic number 0x00000801; expected 0x00000803"],
    );

    // Truncated images (size does not match the dimensions).
    let dir = TempDir::new("mnist-short");
    write_mnist(&dir);
    let mut short = idx_images(2, mnist_pixel);
    short.truncate(short.len() - 10);
    dir.write("t10k-images-idx3-ubyte", &short);
    assert_error_names(
        load(&dir),
        "t10k-images-idx3-ubyte",
        &["size 1574 bytes", "expected 1584"],
    );

    // Header cut short.
    let dir = TempDir::new("mnist-header");
    write_mnist(&dir);
    dir.write("t10k-labels-idx1-ubyte", &[0, 0, 8, 1, 0]);
    assert_error_names(
        load(&dir),
        "t10k-labels-idx1-ubyte",
        &["size 5 bytes", "8-byte idx header"],
    );

    // Counts disagree.
    let dir = TempDir::new("mnist-count");
    write_mnist(&dir);
    dir.write("t10k-labels-idx1-ubyte", &idx_labels(&[1, 2, 3]));
    assert_error_names(
        load(&dir),
        "t10k-labels-idx1-ubyte",
        &["3 labels; expected 2"],
    );

    // Label out of range.
    let dir = TempDir::new("mnist-label");
    write_mnist(&dir);
    dir.write(
        "train-labels-idx1-ubyte.gz",
        &gzip(&idx_labels(&[1, 10, 3])),
    );
    assert_error_names(
        load(&dir),
        "train-labels-idx1-ubyte.gz",
        &["label 10 at record 1"],
    );

    // Broken gzip stream.
    let dir = TempDir::new("mnist-gzip");
    write_mnist(&dir);
    let mut broken = gzip(&idx_images(3, mnist_pixel));
    broken.truncate(broken.len() / 2);
    dir.write("train-images-idx3-ubyte.gz", &broken);
    assert_error_names(
        load(&dir),
        "train-images-idx3-ubyte.gz",
        &["gzip decompression failed"],
    );
}

// ---------------------------------------------------------------------------------------------
// Image folders
// ---------------------------------------------------------------------------------------------

/// Pixel `(r, c)` of grey test image `k`.
fn grey_pixel(k: usize, r: usize, c: usize) -> u8 {
    ((r * 5 + c * 3 + k * 40) % 256) as u8
}

/// Sample `(r, c, ch)` of colour test image `k`.
fn colour_sample(k: usize, r: usize, c: usize, ch: usize) -> u8 {
    ((r * 7 + c * 2 + ch * 60 + k * 33) % 256) as u8
}

fn grey_image(k: usize) -> Vec<u8> {
    (0..1024).map(|i| grey_pixel(k, i / 32, i % 32)).collect()
}

/// The CHW planes of colour image `k` at `rows × cols`.
fn colour_planes(k: usize, rows: usize, cols: usize) -> Vec<u8> {
    (0..3 * rows * cols)
        .map(|i| colour_sample(k, i / cols % rows, i % cols, i / (rows * cols)))
        .collect()
}

#[test]
fn image_folder_reads_grey_pngs_by_sorted_class_folder_in_turn() {
    let dir = TempDir::new("folder-grey");
    let root = dir.path();
    // Written out of order; sorted, the classes are apple, beetle, cat.
    write_grey(&root.join("train/cat/first.png"), (32, 32), |r, c| {
        grey_pixel(9, r, c)
    });
    // 16-bit grey: v·257 + 100 scales back to v.
    let wide: Vec<u8> = (0..1024)
        .flat_map(|i| {
            (u16::from(grey_pixel(4, i / 32, i % 32)) * 257)
                .saturating_add(100)
                .to_be_bytes()
        })
        .collect();
    write_png(
        &root.join("train/cat/z.PNG"),
        (32, 32),
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &wide,
        None,
    );
    // Grey + alpha, fully transparent: the grey values are kept as stored.
    let grey_alpha: Vec<u8> = grey_image(3).iter().flat_map(|&g| [g, 0]).collect();
    write_png(
        &root.join("train/beetle/a.png"),
        (32, 32),
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Eight,
        &grey_alpha,
        None,
    );
    for (k, name) in [(1, "1.png"), (2, "2.png")] {
        write_grey(&root.join("train/apple").join(name), (32, 32), |r, c| {
            grey_pixel(k, r, c)
        });
    }
    for (k, class) in [(5, "apple"), (6, "beetle"), (7, "cat")] {
        write_grey(
            &root.join("test").join(class).join("t.png"),
            (32, 32),
            |r, c| grey_pixel(k, r, c),
        );
    }
    // Ignored: hidden folders and files, files that are not PNG.
    for split in ["train", "test"] {
        write_grey(
            &root.join(split).join(".ipynb_checkpoints/x.png"),
            (4, 4),
            |_, _| 1,
        );
    }
    write_grey(&root.join("train/cat/.hidden.png"), (4, 4), |_, _| 1);
    dir.write("train/cat/notes.txt", b"not an image");

    let split = data::load(DatasetKind::ImageFolder, root, &LoadOptions::default()).unwrap();
    assert_eq!(split.train.class_names(), ["apple", "beetle", "cat"]);
    assert_eq!(split.train.classes(), 3);
    assert_eq!(split.test.class_names(), split.train.class_names());
    assert_eq!((split.train.channels(), split.test.channels()), (1, 1));
    assert_eq!(split.train.name(), "image_folder/train");
    // Class by class in turn: apple/1, beetle/a, cat/first, apple/2, cat/z.
    assert_eq!(split.train.labels(), &[0, 1, 2, 0, 2]);
    for (i, k) in [1, 3, 9, 2, 4].into_iter().enumerate() {
        assert_eq!(
            split.train.image(i),
            grey_image(k).as_slice(),
            "train image {i}"
        );
    }
    assert_eq!(split.test.labels(), &[0, 1, 2]);
    assert_eq!(split.test.image(2), grey_image(7).as_slice());
}

#[test]
fn image_folder_mixes_colour_and_grey_into_rgb_and_resizes_other_sizes() {
    let dir = TempDir::new("folder-colour");
    let root = dir.path();
    write_rgb(&root.join("train/a/rgb.png"), (32, 32), |r, c, ch| {
        colour_sample(1, r, c, ch)
    });
    // RGBA: alpha dropped.
    let rgba: Vec<u8> = (0..1024)
        .flat_map(|i| {
            let (r, c) = (i / 32, i % 32);
            [0, 1, 2, 3].map(|ch| {
                if ch == 3 {
                    (i * 13 % 256) as u8
                } else {
                    colour_sample(2, r, c, ch)
                }
            })
        })
        .collect();
    write_png(
        &root.join("train/a/rgba.png"),
        (32, 32),
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        &rgba,
        None,
    );
    write_grey(&root.join("train/b/grey.png"), (32, 32), |r, c| {
        grey_pixel(3, r, c)
    });
    // 16 rows x 24 columns: resized to 32 x 32, each channel alone.
    write_rgb(&root.join("train/b/small.png"), (16, 24), |r, c, ch| {
        colour_sample(4, r, c, ch)
    });
    // A palette image (two bits per index) is colour once looked up.
    let palette = [10, 20, 30, 200, 100, 50, 0, 255, 0, 90, 90, 90];
    let indices: Vec<u8> = (0..32 * 32 / 4)
        .map(|i| {
            let pixel = |p: usize| ((p / 32 + p % 32) % 4) as u8;
            (0..4).fold(0u8, |byte, k| (byte << 2) | pixel(4 * i + k))
        })
        .collect();
    write_png(
        &root.join("test/a/palette.png"),
        (32, 32),
        png::ColorType::Indexed,
        png::BitDepth::Two,
        &indices,
        Some(&palette),
    );
    write_grey(&root.join("test/b/big.png"), (50, 40), |_, _| 77);

    let split = data::load(DatasetKind::ImageFolder, root, &LoadOptions::default()).unwrap();
    assert_eq!((split.train.channels(), split.test.channels()), (3, 3));
    assert_eq!(split.train.labels(), &[0, 1, 0, 1]);
    assert_eq!(split.train.image(0), colour_planes(1, 32, 32).as_slice());
    assert_eq!(split.train.image(1), grey_image(3).repeat(3).as_slice());
    assert_eq!(split.train.image(2), colour_planes(2, 32, 32).as_slice());
    let resized = data::resize::Bilinear::new(16, 24, 32).resize_planes(&colour_planes(4, 16, 24));
    assert_eq!(split.train.image(3), resized.as_slice());
    for p in 0..1024 {
        let index = (p / 32 + p % 32) % 4;
        for ch in 0..3 {
            assert_eq!(split.test.image(0)[ch * 1024 + p], palette[3 * index + ch]);
        }
    }
    assert!(split.test.image(1).iter().all(|&v| v == 77));
}

#[test]
fn image_folder_problems_are_named() {
    let two_classes = |dir: &TempDir| {
        for split in ["train", "test"] {
            for class in ["a", "b"] {
                write_grey(
                    &dir.path().join(split).join(class).join("x.png"),
                    (8, 8),
                    |r, c| (r + c) as u8,
                );
            }
        }
    };
    let load = |dir: &TempDir| image_folder::load(dir.path());

    let dir = TempDir::new("folder-differ");
    two_classes(&dir);
    write_grey(&dir.path().join("train/c/x.png"), (8, 8), |_, _| 0);
    write_grey(&dir.path().join("test/d/x.png"), (8, 8), |_, _| 0);
    assert_error_names(
        load(&dir),
        "folder-differ",
        &[
            "class folders of train/ and test/ differ",
            "only in train/: [\"c\"]",
            "only in test/: [\"d\"]",
        ],
    );

    let dir = TempDir::new("folder-empty");
    two_classes(&dir);
    std::fs::remove_file(dir.path().join("test/b/x.png")).unwrap();
    dir.write("test/b/photo.jpg", b"\xff\xd8");
    assert_error_names(
        load(&dir),
        "test/b",
        &["no PNG image", "1 other entry ignored", "photo.jpg"],
    );

    let dir = TempDir::new("folder-notest");
    two_classes(&dir);
    std::fs::remove_dir_all(dir.path().join("test")).unwrap();
    assert_error_names(load(&dir), "test", &["file not found", "one sub-folder"]);

    let dir = TempDir::new("folder-one-class");
    two_classes(&dir);
    std::fs::remove_dir_all(dir.path().join("train/b")).unwrap();
    std::fs::remove_dir_all(dir.path().join("test/b")).unwrap();
    assert_error_names(
        load(&dir),
        "train",
        &["1 class folder(s); expected 2 to 256"],
    );

    let dir = TempDir::new("folder-truncated");
    two_classes(&dir);
    let whole = std::fs::read(dir.path().join("train/a/x.png")).unwrap();
    dir.write("train/a/y.png", &whole[..whole.len() / 2]);
    assert_error_names(load(&dir), "y.png", &["not a readable PNG image"]);

    let dir = TempDir::new("folder-not-png");
    two_classes(&dir);
    dir.write("test/a/z.png", b"GIF89a, honestly");
    assert_error_names(load(&dir), "z.png", &["not a readable PNG image"]);
}

// ---------------------------------------------------------------------------------------------
// .npy arrays
// ---------------------------------------------------------------------------------------------

fn npy_pixel(n: usize, p: usize) -> u8 {
    ((p * 3 + n * 71) % 256) as u8
}

/// `count` images of `shape` (e.g. C, H, W or H, W), C order, with [`npy_pixel`] values.
fn npy_images(count: usize, shape: &[usize]) -> ndarray::ArrayD<u8> {
    let len: usize = shape.iter().product();
    let full: Vec<usize> = std::iter::once(count)
        .chain(shape.iter().copied())
        .collect();
    let values = (0..count * len)
        .map(|i| npy_pixel(i / len, i % len))
        .collect();
    ndarray::ArrayD::from_shape_vec(full, values).unwrap()
}

/// A complete, valid `.npy` folder: 5 + 2 grey 32 x 32 images, int64 and uint8 labels.
fn write_npy_set(dir: &TempDir) {
    let path = |name: &str| dir.path().join(name);
    write_npy(path(npy::TRAIN_IMAGES), &npy_images(5, &[32, 32])).unwrap();
    write_npy(path(npy::TRAIN_LABELS), &ndarray::arr1(&[0i64, 2, 1, 2, 0])).unwrap();
    write_npy(path(npy::TEST_IMAGES), &npy_images(2, &[32, 32])).unwrap();
    write_npy(path(npy::TEST_LABELS), &ndarray::arr1(&[1u8, 0])).unwrap();
}

#[test]
fn npy_reads_grey_arrays_with_labels_of_any_integer_dtype() {
    let dir = TempDir::new("npy-grey");
    write_npy_set(&dir);
    let split = data::load(DatasetKind::Npy, dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (5, 2));
    assert_eq!(
        (split.train.channels(), split.train.name()),
        (1, "npy/train")
    );
    assert_eq!(split.train.class_names(), ["0", "1", "2"]);
    assert_eq!(split.train.labels(), &[0, 2, 1, 2, 0]);
    assert_eq!(split.test.labels(), &[1, 0]);
    for n in 0..5 {
        let expected: Vec<u8> = (0..1024).map(|p| npy_pixel(n, p)).collect();
        assert_eq!(split.train.image(n), expected.as_slice(), "image {n}");
    }
}

#[test]
fn npy_reads_colour_arrays_resizes_them_and_names_classes_from_the_file() {
    let dir = TempDir::new("npy-colour");
    let path = |name: &str| dir.path().join(name);
    write_npy(path(npy::TRAIN_IMAGES), &npy_images(4, &[3, 20, 24])).unwrap();
    write_npy(path(npy::TRAIN_LABELS), &ndarray::arr1(&[0i32, 1, 2, 1])).unwrap();
    write_npy(path(npy::TEST_IMAGES), &npy_images(2, &[3, 32, 32])).unwrap();
    write_npy(path(npy::TEST_LABELS), &ndarray::arr1(&[2u16, 0])).unwrap();
    dir.write(npy::CLASS_NAMES_FILE, b"red\ngreen\n\n  blue \n");

    let split = data::load(DatasetKind::Npy, dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(split.train.class_names(), ["red", "green", "blue"]);
    assert_eq!((split.train.channels(), split.test.channels()), (3, 3));
    assert_eq!((split.train.height(), split.train.width()), (32, 32));
    let bilinear = data::resize::Bilinear::new(20, 24, 32);
    for n in 0..4 {
        let stored: Vec<u8> = (0..3 * 20 * 24).map(|p| npy_pixel(n, p)).collect();
        assert_eq!(
            split.train.image(n),
            bilinear.resize_planes(&stored).as_slice()
        );
    }
    let test0: Vec<u8> = (0..3072).map(|p| npy_pixel(0, p)).collect();
    assert_eq!(split.test.image(0), test0.as_slice());
    assert_eq!(split.test.labels(), &[2, 0]);
}

#[test]
fn npy_reads_fortran_order_and_big_endian_labels() {
    let dir = TempDir::new("npy-fortran");
    // Element (n, r, c) of a (2, 32, 32) Fortran-order array is at n + 2·r + 64·c.
    let mut payload = vec![0u8; 2 * 1024];
    for n in 0..2 {
        for p in 0..1024 {
            payload[n + 2 * (p / 32) + 64 * (p % 32)] = npy_pixel(n, p);
        }
    }
    let images = npy_bytes("|u1", true, &[2, 32, 32], &payload);
    dir.write(npy::TRAIN_IMAGES, &images);
    dir.write(npy::TEST_IMAGES, &images);
    let big: Vec<u8> = [1i32, 0].iter().flat_map(|v| v.to_be_bytes()).collect();
    dir.write(npy::TRAIN_LABELS, &npy_bytes(">i4", false, &[2], &big));
    let wide: Vec<u8> = [0u64, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    dir.write(npy::TEST_LABELS, &npy_bytes("<u8", false, &[2], &wide));

    let split = npy::load(dir.path()).unwrap();
    assert_eq!(split.train.labels(), &[1, 0]);
    assert_eq!(split.test.labels(), &[0, 1]);
    for n in 0..2 {
        let expected: Vec<u8> = (0..1024).map(|p| npy_pixel(n, p)).collect();
        assert_eq!(split.train.image(n), expected.as_slice());
    }
}

#[test]
fn npy_problems_are_named() {
    let load = |dir: &TempDir| npy::load(dir.path());
    let fresh = |label: &str| {
        let dir = TempDir::new(label);
        write_npy_set(&dir);
        dir
    };

    let dir = fresh("npy-float");
    write_npy(
        dir.path().join(npy::TRAIN_IMAGES),
        &ndarray::Array3::<f32>::zeros((5, 32, 32)),
    )
    .unwrap();
    assert_error_names(
        load(&dir),
        "train_images.npy",
        &["dtype <f4", "expected uint8"],
    );

    let dir = fresh("npy-last");
    write_npy(
        dir.path().join(npy::TEST_IMAGES),
        &npy_images(2, &[32, 32, 3]),
    )
    .unwrap();
    assert_error_names(
        load(&dir),
        "test_images.npy",
        &["shape (2, 32, 32, 3) looks channels-last", "transpose"],
    );

    let dir = fresh("npy-flat");
    write_npy(dir.path().join(npy::TEST_IMAGES), &npy_images(2, &[1024])).unwrap();
    assert_error_names(
        load(&dir),
        "test_images.npy",
        &["shape (2, 1024); expected"],
    );

    let dir = fresh("npy-channels");
    write_npy(
        dir.path().join(npy::TEST_IMAGES),
        &npy_images(2, &[3, 32, 32]),
    )
    .unwrap();
    assert_error_names(
        load(&dir),
        "test_images.npy",
        &["3 channel(s); expected 1 like", "train_images.npy"],
    );

    let dir = fresh("npy-count");
    write_npy(
        dir.path().join(npy::TRAIN_LABELS),
        &ndarray::arr1(&[0i64, 1, 1]),
    )
    .unwrap();
    assert_error_names(
        load(&dir),
        "train_labels.npy",
        &["3 labels; expected 5", "train_images.npy"],
    );

    let dir = fresh("npy-range");
    dir.write(npy::CLASS_NAMES_FILE, b"zero\none\n");
    assert_error_names(
        load(&dir),
        "train_labels.npy",
        &["label 2 at record 1", "expected 0..=1", "class_names.txt"],
    );

    let dir = fresh("npy-negative");
    write_npy(
        dir.path().join(npy::TEST_LABELS),
        &ndarray::arr1(&[1i8, -1]),
    )
    .unwrap();
    assert_error_names(load(&dir), "test_labels.npy", &["label -1 at record 1"]);

    let dir = fresh("npy-one-class");
    write_npy(
        dir.path().join(npy::TRAIN_LABELS),
        &ndarray::Array1::<u8>::zeros(5),
    )
    .unwrap();
    write_npy(
        dir.path().join(npy::TEST_LABELS),
        &ndarray::Array1::<u8>::zeros(2),
    )
    .unwrap();
    assert_error_names(load(&dir), "train_labels.npy", &["at least two classes"]);

    let dir = fresh("npy-float-labels");
    write_npy(
        dir.path().join(npy::TEST_LABELS),
        &ndarray::arr1(&[1.0f64, 0.0]),
    )
    .unwrap();
    assert_error_names(
        load(&dir),
        "test_labels.npy",
        &["dtype <f8", "expected an integer dtype"],
    );

    let dir = fresh("npy-column");
    write_npy(
        dir.path().join(npy::TEST_LABELS),
        &ndarray::arr2(&[[1i64], [0]]),
    )
    .unwrap();
    assert_error_names(load(&dir), "test_labels.npy", &["shape (2, 1)", "ravel"]);

    let dir = fresh("npy-short");
    let whole = std::fs::read(dir.path().join(npy::TRAIN_IMAGES)).unwrap();
    dir.write(npy::TRAIN_IMAGES, &whole[..whole.len() - 7]);
    assert_error_names(
        load(&dir),
        "train_images.npy",
        &[
            &format!("size {} bytes", whole.len() - 7),
            &format!("expected {}", whole.len()),
            "shape (5, 32, 32) of |u1",
        ],
    );

    let dir = fresh("npy-magic");
    dir.write(npy::TEST_LABELS, b"0 1\n");
    assert_error_names(load(&dir), "test_labels.npy", &["not a NumPy .npy file"]);

    let dir = fresh("npy-missing");
    std::fs::remove_file(dir.path().join(npy::TEST_LABELS)).unwrap();
    assert_error_names(load(&dir), "test_labels.npy", &["file not found"]);

    let dir = fresh("npy-names");
    dir.write(npy::CLASS_NAMES_FILE, b"a\nb\nc\nb\n");
    assert_error_names(
        load(&dir),
        "class_names.txt",
        &["class name \"b\" on lines 2 and 4"],
    );
}

// ---------------------------------------------------------------------------------------------
// Other image sides: `load_sized` for architectures whose input is not 32 x 32
// ---------------------------------------------------------------------------------------------

/// `data` resized from `rows × cols` planes to `side × side` by the shared Pillow filter.
fn bilinear(data: &[u8], rows: usize, cols: usize, side: usize) -> Vec<u8> {
    data::resize::Bilinear::new(rows, cols, side).resize_planes(data)
}

/// Asserts the shape of both splits: `channels × side × side`.
fn assert_side(split: &data::Split, channels: usize, side: usize) {
    for set in [&split.train, &split.test] {
        assert_eq!(
            (set.channels(), set.height(), set.width()),
            (channels, side, side),
            "{}",
            set.name()
        );
        assert_eq!(set.images().len(), set.len() * channels * side * side);
        assert_eq!(
            set.batch_f32(&[0]).shape(),
            &[1, channels, side, side],
            "{}",
            set.name()
        );
    }
}

#[test]
fn cifar10_at_sides_28_and_64_resizes_every_plane() {
    let dir = TempDir::new("cifar-sides");
    write_cifar(&dir, 2);
    let at_32 = data::load(DatasetKind::Cifar10, dir.path(), &LoadOptions::default()).unwrap();
    let sized = |side| {
        data::load_sized(
            DatasetKind::Cifar10,
            dir.path(),
            &LoadOptions::default(),
            side,
        )
        .unwrap()
    };
    assert_eq!(sized(32), at_32);
    for side in [28, 64] {
        let split = sized(side);
        assert_side(&split, 3, side);
        assert_eq!(split.train.labels(), at_32.train.labels());
        assert_eq!(split.test.labels(), at_32.test.labels());
        assert_eq!(split.train.class_names(), at_32.train.class_names());
        for i in 0..at_32.train.len() {
            assert_eq!(
                split.train.image(i),
                bilinear(at_32.train.image(i), 32, 32, side).as_slice(),
                "side {side}, train image {i}"
            );
        }
        assert_eq!(
            split.test.image(1),
            bilinear(at_32.test.image(1), 32, 32, side).as_slice()
        );
    }
    assert_eq!(cifar10::load_sized(dir.path(), 64).unwrap(), sized(64));
    assert!(matches!(
        cifar10::load_sized(dir.path(), 0),
        Err(DataError::Side { side: 0 })
    ));
}

#[test]
fn svhn_at_sides_28_and_64_resizes_every_plane() {
    let fixture = std::fs::read(SVHN_FIXTURE).unwrap();
    let dir = TempDir::new("svhn-sides");
    dir.write(svhn::TRAIN_FILE, &fixture);
    dir.write(svhn::TEST_FILE, &fixture);
    let at_32 = data::load(DatasetKind::Svhn, dir.path(), &LoadOptions::default()).unwrap();
    for side in [28, 64] {
        let split =
            data::load_sized(DatasetKind::Svhn, dir.path(), &LoadOptions::default(), side).unwrap();
        assert_side(&split, 3, side);
        assert_eq!(split.train.labels(), &[0, 1, 2, 3, 9]);
        for n in 0..5 {
            assert_eq!(
                split.train.image(n),
                bilinear(at_32.train.image(n), 32, 32, side).as_slice(),
                "side {side}, image {n}"
            );
        }
        assert_eq!(svhn::load_sized(dir.path(), side).unwrap(), split);
    }
}

/// MNIST-format files of `write_mnist`, as the 28 x 28 images of each split in file order.
fn mnist_images_28() -> (Vec<u8>, Vec<u8>) {
    let train = (0..3).flat_map(|n| (0..784).map(move |p| mnist_pixel(n, p)));
    let test = (0..2).flat_map(|n| (0..784).map(move |p| mnist_pixel(n + 10, p)));
    (train.collect(), test.collect())
}

#[test]
fn mnist_at_side_28_is_the_idx_files_byte_for_byte() {
    let dir = TempDir::new("mnist-28");
    write_mnist(&dir);
    let (train, test) = mnist_images_28();
    for (kind, resize) in [
        (DatasetKind::Mnist, MnistResize::Bilinear),
        (DatasetKind::Mnist, MnistResize::Pad),
        (DatasetKind::FashionMnist, MnistResize::Bilinear),
    ] {
        let options = LoadOptions {
            mnist_resize: resize,
            ..LoadOptions::default()
        };
        let split = data::load_sized(kind, dir.path(), &options, 28).unwrap();
        assert_side(&split, 1, 28);
        assert_eq!(split.train.images(), train.as_slice(), "{kind} {resize:?}");
        assert_eq!(split.test.images(), test.as_slice(), "{kind} {resize:?}");
        assert_eq!(split.train.labels(), &[5, 0, 4]);
        assert_eq!(split.test.labels(), &[7, 2]);
    }
}

#[test]
fn mnist_at_side_64_resizes_or_pads_and_padding_down_is_an_error() {
    let dir = TempDir::new("mnist-64");
    write_mnist(&dir);
    let (train, test) = mnist_images_28();
    let with = |resize| LoadOptions {
        mnist_resize: resize,
        ..LoadOptions::default()
    };

    let split = data::load_sized(
        DatasetKind::Mnist,
        dir.path(),
        &with(MnistResize::Bilinear),
        64,
    )
    .unwrap();
    assert_side(&split, 1, 64);
    assert_eq!(
        split.train.images(),
        bilinear(&train, 28, 28, 64).as_slice()
    );
    assert_eq!(split.test.images(), bilinear(&test, 28, 28, 64).as_slice());

    // Padded: 18 black pixels each side.
    let split =
        data::load_sized(DatasetKind::Mnist, dir.path(), &with(MnistResize::Pad), 64).unwrap();
    assert_side(&split, 1, 64);
    for n in 0..3 {
        let image = split.train.image(n);
        for r in 0..64 {
            for c in 0..64 {
                let expected = if (18..46).contains(&r) && (18..46).contains(&c) {
                    mnist_pixel(n, (r - 18) * 28 + (c - 18))
                } else {
                    0
                };
                assert_eq!(image[r * 64 + c], expected, "image {n} ({r}, {c})");
            }
        }
    }

    // Below the files' side: bilinear shrinks, padding cannot.
    let split = data::load_sized(
        DatasetKind::Mnist,
        dir.path(),
        &with(MnistResize::Bilinear),
        20,
    )
    .unwrap();
    assert_eq!(split.test.images(), bilinear(&test, 28, 28, 20).as_slice());
    assert_error_names(
        mnist::load_sized(
            dir.path(),
            mnist::MnistFlavour::Digits,
            MnistResize::Pad,
            20,
        ),
        "train-images-idx3-ubyte.gz",
        &[
            "images of 28x28 pixels cannot be padded to 20x20",
            "bilinear",
        ],
    );
}

#[test]
fn image_folder_at_sides_28_and_64_keeps_images_of_that_size() {
    let dir = TempDir::new("folder-sides");
    let root = dir.path();
    let small = |r: usize, c: usize| grey_pixel(1, r, c);
    let large = |r: usize, c: usize| grey_pixel(2, r, c);
    for split in ["train", "test"] {
        write_grey(&root.join(split).join("a/small.png"), (28, 28), small);
        write_grey(&root.join(split).join("b/large.png"), (64, 64), large);
    }
    write_rgb(&root.join("train/b/wide.png"), (20, 40), |r, c, ch| {
        colour_sample(5, r, c, ch)
    });
    let small_bytes: Vec<u8> = (0..28 * 28).map(|i| small(i / 28, i % 28)).collect();
    let large_bytes: Vec<u8> = (0..64 * 64).map(|i| large(i / 64, i % 64)).collect();
    for side in [28, 64] {
        let split = data::load_sized(
            DatasetKind::ImageFolder,
            root,
            &LoadOptions::default(),
            side,
        )
        .unwrap();
        assert_side(&split, 3, side);
        // In turn: a/small, b/large, then b/wide; grey images copied into R, G and B.
        assert_eq!(split.train.labels(), &[0, 1, 1]);
        let (small_at, large_at) = match side {
            28 => (small_bytes.clone(), bilinear(&large_bytes, 64, 64, 28)),
            _ => (bilinear(&small_bytes, 28, 28, 64), large_bytes.clone()),
        };
        assert_eq!(
            split.train.image(0),
            small_at.repeat(3).as_slice(),
            "side {side}"
        );
        assert_eq!(
            split.train.image(1),
            large_at.repeat(3).as_slice(),
            "side {side}"
        );
        assert_eq!(
            split.train.image(2),
            bilinear(&colour_planes(5, 20, 40), 20, 40, side).as_slice()
        );
        assert_eq!(split.test.image(1), large_at.repeat(3).as_slice());
        assert_eq!(image_folder::load_sized(root, side).unwrap(), split);
    }
}

#[test]
fn npy_at_sides_28_and_64_keeps_arrays_of_that_size() {
    let dir = TempDir::new("npy-sides");
    let path = |name: &str| dir.path().join(name);
    write_npy(path(npy::TRAIN_IMAGES), &npy_images(3, &[28, 28])).unwrap();
    write_npy(path(npy::TRAIN_LABELS), &ndarray::arr1(&[0u8, 1, 1])).unwrap();
    write_npy(path(npy::TEST_IMAGES), &npy_images(2, &[1, 64, 64])).unwrap();
    write_npy(path(npy::TEST_LABELS), &ndarray::arr1(&[1u8, 0])).unwrap();
    let stored = |n: usize, len: usize| -> Vec<u8> { (0..len).map(|p| npy_pixel(n, p)).collect() };
    for side in [28, 64] {
        let split =
            data::load_sized(DatasetKind::Npy, dir.path(), &LoadOptions::default(), side).unwrap();
        assert_side(&split, 1, side);
        for n in 0..3 {
            let expected = match side {
                28 => stored(n, 784),
                _ => bilinear(&stored(n, 784), 28, 28, 64),
            };
            assert_eq!(
                split.train.image(n),
                expected.as_slice(),
                "side {side}, train {n}"
            );
        }
        for n in 0..2 {
            let expected = match side {
                64 => stored(n, 4096),
                _ => bilinear(&stored(n, 4096), 64, 64, 28),
            };
            assert_eq!(
                split.test.image(n),
                expected.as_slice(),
                "side {side}, test {n}"
            );
        }
        assert_eq!(npy::load_sized(dir.path(), side).unwrap(), split);
    }
}

#[test]
fn synthetic_set_at_side_64_through_load_sized() {
    let options = LoadOptions {
        synthetic: SyntheticConfig {
            seed: 2,
            train_size: 20,
            test_size: 10,
        },
        ..LoadOptions::default()
    };
    let nowhere = Path::new("/nonexistent/padsim");
    let split = data::load_sized(DatasetKind::Synthetic, nowhere, &options, 64).unwrap();
    assert_side(&split, 3, 64);
    assert_eq!(split.train.class_counts(), vec![2; 10]);
    let at_32 = data::load(DatasetKind::Synthetic, nowhere, &options).unwrap();
    assert_eq!(
        data::load_sized(DatasetKind::Synthetic, nowhere, &options, 32).unwrap(),
        at_32
    );
    assert_eq!(split.train.labels(), at_32.train.labels());
}

#[test]
fn absurd_sides_are_errors_that_say_which_sides_work() {
    let dir = TempDir::new("cifar-absurd");
    write_cifar(&dir, 1);
    for side in [0, data::MAX_IMAGE_SIDE + 1] {
        let err = data::load_sized(
            DatasetKind::Cifar10,
            dir.path(),
            &LoadOptions::default(),
            side,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "image side {side} pixels; expected 1 to 1024 (the architecture's square input side, 32 for PAD)"
            )
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic set, configuration names
// ---------------------------------------------------------------------------------------------

#[test]
fn synthetic_set_through_load_is_deterministic_and_needs_no_files() {
    let options = LoadOptions {
        synthetic: SyntheticConfig {
            seed: 9,
            train_size: 50,
            test_size: 20,
        },
        ..LoadOptions::default()
    };
    let nowhere = Path::new("/nonexistent/padsim");
    let a = data::load(DatasetKind::Synthetic, nowhere, &options).unwrap();
    let b = data::load(DatasetKind::Synthetic, nowhere, &options).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.train.len(), a.test.len()), (50, 20));
    assert_eq!(a.train.class_counts(), vec![5; 10]);
    assert_eq!(
        a.train.class_names(),
        synthetic::CLASS_NAMES.map(String::from)
    );
    let batch = a.train.batch_f32(&[0, 1, 2]);
    assert!(batch.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn dataset_kind_and_options_in_configs() {
    assert_eq!(
        serde_json::to_string(&DatasetKind::FashionMnist).unwrap(),
        "\"fashion_mnist\""
    );
    assert_eq!(
        serde_json::to_string(&DatasetKind::Cifar10).unwrap(),
        "\"cifar10\""
    );
    for kind in DatasetKind::ALL {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{kind}\""));
        assert_eq!(serde_json::from_str::<DatasetKind>(&json).unwrap(), kind);
    }
    let options: LoadOptions =
        serde_json::from_str(r#"{"mnist_resize": "bilinear", "synthetic": {"seed": 4}}"#).unwrap();
    assert_eq!(options.mnist_resize, MnistResize::Bilinear);
    assert_eq!(options.synthetic.seed, 4);
    assert_eq!(
        options.synthetic.train_size,
        SyntheticConfig::default().train_size
    );
}

// ---------------------------------------------------------------------------------------------
// Real data (manual check): `PADSIM_DATA=/path/to/data cargo test --release --test data_loaders
// -- --ignored --nocapture`, where the folder holds `cifar-10-batches-bin/`.
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs the real CIFAR-10 files under $PADSIM_DATA"]
fn real_cifar10_loads() {
    let Some(dir) = data::dir_from_env(DatasetKind::Cifar10) else {
        eprintln!("{} is not set; nothing to check", data::DATA_ENV);
        return;
    };
    let start = std::time::Instant::now();
    let split = data::load(DatasetKind::Cifar10, &dir, &LoadOptions::default()).unwrap();
    let elapsed = start.elapsed();
    assert_eq!((split.train.len(), split.test.len()), (50_000, 10_000));
    assert_eq!(split.train.class_counts(), vec![5000; 10]);
    assert_eq!(split.test.class_counts(), vec![1000; 10]);
    eprintln!(
        "CIFAR-10 (60,000 images) loaded in {:.0} ms",
        elapsed.as_secs_f64() * 1e3
    );
}

// ---------------------------------------------------------------------------------------------
// Robustness: damaged files give errors (or, by luck, data), never panics.
// ---------------------------------------------------------------------------------------------

/// Copies of `original` with a few bytes overwritten or the tail cut, deterministically.
fn mutations(original: &[u8], count: usize, seed: u64) -> Vec<Vec<u8>> {
    use ndarray_rand::rand::Rng;
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut bytes = original.to_vec();
            if rng.random::<bool>() {
                for _ in 0..rng.random_range(1..=4) {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random();
                }
            } else {
                bytes.truncate(rng.random_range(0..original.len()));
            }
            bytes
        })
        .collect()
}

#[test]
fn damaged_files_never_panic() {
    let fixture = std::fs::read(SVHN_FIXTURE).unwrap();
    let plain_mat = svhn_uncompressed(1, &[4], mat::MX_DOUBLE);
    for (k, bytes) in mutations(&fixture, 400, 1)
        .into_iter()
        .chain(mutations(&plain_mat, 400, 2))
        .enumerate()
    {
        let name = format!("m{k}.mat");
        if let Ok(mat) = padsim::data::mat5::read_from(bytes.as_slice(), Path::new(&name)) {
            let _ = svhn::dataset_from_mat(&mat, "t");
        }
    }

    let cifar = cifar_file(0, 2);
    for bytes in mutations(&cifar, 200, 3) {
        let _ = cifar10::parse_batch(Path::new("b.bin"), &bytes);
    }

    let dir = TempDir::new("mnist-fuzz");
    let images = idx_images(2, mnist_pixel);
    let images_gz = gzip(&images);
    let labels = idx_labels(&[1, 2]);
    for (k, bytes) in mutations(&images, 150, 4)
        .into_iter()
        .chain(mutations(&images_gz, 150, 5))
        .chain(mutations(&labels, 100, 6))
        .enumerate()
    {
        let path = dir.write(&format!("f{k}"), &bytes);
        if let Ok(images) = mnist::read_idx_images(&path) {
            for side in [32, 28, 64] {
                let _ = images.to_side(side, MnistResize::Pad);
                let _ = images.to_side(side, MnistResize::Bilinear);
            }
        }
        let _ = mnist::read_idx_labels(&path);
    }

    // PNG files of an image folder: grey 8-bit, RGBA 16-bit, palette.
    let dir = TempDir::new("png-fuzz");
    let grey: Vec<u8> = (0..20 * 20).map(|i| (i * 7 % 256) as u8).collect();
    let rgba16: Vec<u8> = (0..8 * 8 * 4 * 2).map(|i| (i * 13 % 256) as u8).collect();
    let indices: Vec<u8> = (0..12 * 12).map(|i| (i % 3) as u8).collect();
    let pngs = [
        png_bytes(
            (20, 20),
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &grey,
            None,
        ),
        png_bytes(
            (8, 8),
            png::ColorType::Rgba,
            png::BitDepth::Sixteen,
            &rgba16,
            None,
        ),
        png_bytes(
            (12, 12),
            png::ColorType::Indexed,
            png::BitDepth::Eight,
            &indices,
            Some(&[0, 0, 0, 255, 0, 0, 0, 0, 255]),
        ),
    ];
    for (k, bytes) in pngs
        .iter()
        .enumerate()
        .flat_map(|(j, png)| mutations(png, 150, 7 + j as u64))
        .enumerate()
    {
        let path = dir.write(&format!("f{k}.png"), &bytes);
        for side in [32, 28, 64] {
            let _ = image_folder::read_png(&path, side);
        }
    }

    // .npy arrays: images (C order and Fortran order) and labels.
    let dir = TempDir::new("npy-fuzz");
    let pixels: Vec<u8> = (0..2 * 3 * 8 * 8).map(|i| (i % 256) as u8).collect();
    let images_c = npy_bytes("|u1", false, &[2, 3, 8, 8], &pixels);
    let images_f = npy_bytes("|u1", true, &[2, 8, 8], &pixels[..128]);
    let labels: Vec<u8> = [3i64, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let labels = npy_bytes("<i8", false, &[3], &labels);
    for (k, bytes) in mutations(&images_c, 200, 10)
        .into_iter()
        .chain(mutations(&images_f, 100, 11))
        .chain(mutations(&labels, 200, 12))
        .enumerate()
    {
        let path = dir.write(&format!("f{k}.npy"), &bytes);
        if let Ok(images) = npy::read_images(&path) {
            for side in [32, 28, 64] {
                let _ = images.clone().into_side(side);
            }
        }
        let _ = npy::read_labels(&path);
    }
}
