//! Labelled image sets held in memory as bytes, and the occlusion masks of NREM sleep and of
//! the occlusion-robustness evaluation.
//!
//! Every loader produces a [`Split`] of two [`Dataset`]s whose images are `u8` in NCHW order
//! (`[N, C, S, S]`, S = the architecture's input side, 32 for PAD; C = 3 for colour sets, 1 for
//! grey ones such as MNIST) with labels `0..classes` (10 classes for the built-in sets, any
//! number from 2 to 256 for your own). Pixels
//! become network input only when a mini-batch is drawn ([`Dataset::batch_f32`]), scaled to
//! [-1, 1] by `x / 127.5 - 1`, so a 50,000-image training set costs about 150 MB, not 600.
//!
//! PAD equivalent: `utils.get_dataset` = `torchvision.datasets.{CIFAR10, SVHN, MNIST,
//! FashionMNIST}` + `Resize(32)` + `ToTensor()` + `Normalize((0.5,…), (0.5,…))`; [`load`] is
//! that at side 32, [`load_sized`] the same with `Resize(S)` for an architecture of input side S.
//!
//! | [`DatasetKind`]   | files in the directory                                       | module             |
//! |-------------------|--------------------------------------------------------------|--------------------|
//! | `cifar10`         | `data_batch_{1..5}.bin`, `test_batch.bin`, `batches.meta.txt` | [`cifar10`]        |
//! | `svhn`            | `train_32x32.mat`, `test_32x32.mat` (MATLAB v5)              | [`svhn`]           |
//! | `mnist`           | `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`           | [`mnist`]          |
//! | `fashion_mnist`   | same names as MNIST                                          | [`mnist`]          |
//! | `synthetic`       | none: generated from a seed                                  | [`synthetic`]      |
//! | `image_folder`    | `{train,test}/<class>/*.png`                                 | [`image_folder`]   |
//! | `npy`             | `{train,test}_{images,labels}.npy`, `class_names.txt`        | [`npy`]            |
//!
//! Images are brought to S × S, the architecture's input side (32 for PAD, [`IMAGE_SIDE`]):
//! files already of that size are used byte for byte, others are resized by [`resize`]
//! (Pillow's bilinear filter; MNIST-format sets may be padded instead, see [`MnistResize`]), and
//! the synthetic set is drawn at S directly. At S = 28, MNIST and Fashion-MNIST are their idx
//! files unchanged. S runs from 1 to [`MAX_IMAGE_SIDE`]; other sides are a [`DataError::Side`].
//!
//! Loaders never panic on malformed files: each returns a [`DataError`] whose message starts
//! with the file's path and says what was expected and what was found.

pub mod cifar10;
pub mod image_folder;
pub mod mat5;
pub mod mnist;
pub mod npy;
pub mod occlusion;
pub mod resize;
pub mod svhn;
pub mod synthetic;

use ndarray::Array4;
use rayon::prelude::*;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use mnist::MnistResize;
pub use occlusion::{
    apply_mask, apply_per_image_masks, eval_tile, nrem_mask, nrem_tile_sizes, per_image_masks,
    tile_mask, NremOcclusion,
};
pub use synthetic::SyntheticConfig;

/// Height and width of the images of PAD's architecture (PAD's `--imageSize 32`): the side
/// [`load`] brings every data set to. Other architectures ask [`load_sized`] for theirs.
pub const IMAGE_SIDE: usize = 32;

/// The largest image side [`load_sized`] accepts: a 1024 × 1024 RGB image is 3 MiB, so any
/// larger side is far beyond what a data set in memory can hold and taken for a mistake.
pub const MAX_IMAGE_SIDE: usize = 1024;

/// Number of classes of the built-in data sets (CIFAR-10, SVHN, MNIST, Fashion-MNIST, the
/// synthetic set). Your own sets ([`DatasetKind::ImageFolder`], [`DatasetKind::Npy`]) have
/// their own count, which code must take from [`Dataset::classes`], never from here.
pub const NUM_CLASSES: usize = 10;

/// Why a data set could not be loaded. Messages name the offending file first, then what was
/// expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file exists but could not be read.
    #[error("{}: cannot read ({source})", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file the data set needs is not there.
    #[error("{}: file not found; expected {expected}", path.display())]
    Missing { path: PathBuf, expected: String },
    /// The file's length does not fit its format.
    #[error("{}: size {found} bytes; expected {expected}", path.display())]
    Size {
        path: PathBuf,
        found: u64,
        expected: String,
    },
    /// The file does not start with its format's magic number.
    #[error("{}: magic number 0x{found:08x}; expected 0x{expected:08x} ({what})", path.display())]
    Magic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    /// A label outside the classes of the data set.
    #[error("{}: label {found} at record {record}; expected {expected}", path.display())]
    Label {
        path: PathBuf,
        record: usize,
        found: String,
        expected: String,
    },
    /// Any other violation of the file format (headers, element types, dimensions, variables).
    #[error("{}: {detail}", path.display())]
    Format { path: PathBuf, detail: String },
    /// A compressed stream inside the file could not be inflated.
    #[error("{}: {format} decompression failed ({source})", path.display())]
    Decompress {
        path: PathBuf,
        format: &'static str,
        #[source]
        source: io::Error,
    },
    /// An in-memory data set whose parts disagree (see [`Dataset::new`]).
    #[error("data set {name:?}: {detail}")]
    Invalid { name: String, detail: String },
    /// A data set name that [`DatasetKind::from_str`] does not know.
    #[error("unknown data set {found:?}; expected one of {}", DatasetKind::NAMES.join(", "))]
    UnknownKind { found: String },
    /// An image side the loaders cannot produce (0, or above [`MAX_IMAGE_SIDE`]).
    #[error(
        "image side {side} pixels; expected 1 to {MAX_IMAGE_SIDE} (the architecture's square input side, 32 for PAD)"
    )]
    Side { side: usize },
}

impl DataError {
    /// The file the error is about, if it is about a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. }
            | Self::Missing { path, .. }
            | Self::Size { path, .. }
            | Self::Magic { path, .. }
            | Self::Label { path, .. }
            | Self::Format { path, .. }
            | Self::Decompress { path, .. } => Some(path),
            Self::Invalid { .. } | Self::UnknownKind { .. } | Self::Side { .. } => None,
        }
    }

    pub(crate) fn format(path: &Path, detail: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// `Ok` for an image side the loaders can produce, 1 to [`MAX_IMAGE_SIDE`]; a
/// [`DataError::Side`] otherwise.
pub fn check_side(side: usize) -> Result<(), DataError> {
    if (1..=MAX_IMAGE_SIDE).contains(&side) {
        Ok(())
    } else {
        Err(DataError::Side { side })
    }
}

/// Reads a whole file; a missing file becomes [`DataError::Missing`] with `expected` saying
/// what the file should have been.
pub(crate) fn read_file(path: &Path, expected: &str) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| file_error(path, expected, source))
}

/// The non-blank lines of a text file of names, one per line, trimmed; `None` if there is no
/// such file (`expected` describes it in other errors).
pub(crate) fn read_name_lines(
    path: &Path,
    expected: &str,
) -> Result<Option<Vec<String>>, DataError> {
    let bytes = match read_file(path, expected) {
        Ok(bytes) => bytes,
        Err(DataError::Missing { .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| DataError::format(path, format!("not UTF-8 text ({e})")))?;
    Ok(Some(
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

/// The error of a failed open or read of `path`: [`DataError::Missing`] (quoting `expected`)
/// when there is no such file, [`DataError::Io`] otherwise.
pub(crate) fn file_error(path: &Path, expected: &str, source: io::Error) -> DataError {
    if source.kind() == io::ErrorKind::NotFound {
        DataError::Missing {
            path: path.to_path_buf(),
            expected: expected.to_string(),
        }
    } else {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A labelled image set in memory: `len()` images of `channels × height × width` bytes each,
/// stored back to back in NCHW order (image-major, then channel planes, then rows).
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    name: String,
    channels: usize,
    height: usize,
    width: usize,
    images: Vec<u8>,
    labels: Vec<u8>,
    class_names: Vec<String>,
}

impl fmt::Debug for Dataset {
    // The pixel buffer is tens of megabytes: print its shape, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("channels", &self.channels)
            .field("height", &self.height)
            .field("width", &self.width)
            .field("class_names", &self.class_names)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// Assembles a data set, checking that `images` holds exactly `labels.len()` images of
    /// `channels × height × width` bytes and that every label names one of `class_names`.
    pub fn new(
        name: impl Into<String>,
        channels: usize,
        height: usize,
        width: usize,
        images: Vec<u8>,
        labels: Vec<u8>,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let name = name.into();
        let invalid = |detail: String| DataError::Invalid {
            name: name.clone(),
            detail,
        };
        if channels == 0 || height == 0 || width == 0 {
            return Err(invalid(format!(
                "image shape {channels}x{height}x{width} has a zero extent"
            )));
        }
        let expected_bytes = channels
            .checked_mul(height)
            .and_then(|n| n.checked_mul(width))
            .and_then(|n| n.checked_mul(labels.len()))
            .ok_or_else(|| invalid("image buffer size overflows usize".into()))?;
        if images.len() != expected_bytes {
            return Err(invalid(format!(
                "{} pixel bytes for {} labels of {channels}x{height}x{width} images; expected {expected_bytes}",
                images.len(),
                labels.len()
            )));
        }
        if class_names.is_empty() || class_names.len() > usize::from(u8::MAX) + 1 {
            return Err(invalid(format!(
                "{} class names; expected 1..=256",
                class_names.len()
            )));
        }
        if let Some((record, &label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &label)| usize::from(label) >= class_names.len())
        {
            return Err(invalid(format!(
                "label {label} at record {record}; expected 0..={}",
                class_names.len() - 1
            )));
        }
        Ok(Self {
            name,
            channels,
            height,
            width,
            images,
            labels,
            class_names,
        })
    }

    /// A short description such as `"cifar10/train"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Colour channels per image (3, or 1 for grey sets such as MNIST).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height in pixels (the side the set was loaded at: 32 for PAD).
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels (the side the set was loaded at: 32 for PAD).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Bytes per image: `channels × height × width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// All pixels, NCHW, `len() × image_len()` bytes.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels, in image order, each below `class_names().len()`.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of classes: `class_names().len()` (10 for the built-in sets).
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Image `i` as CHW bytes (channel planes of row-major rows).
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The labels of the images at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is `>= len()`.
    pub fn batch_labels(&self, indices: &[usize]) -> Vec<u8> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }

    /// The images at `indices` as network input: an NCHW `[indices.len(), C, H, W]` array
    /// with every byte `x` mapped to `x / 127.5 - 1` (0 → -1, 255 → 1).
    ///
    /// This is `ToTensor()` (x/255) followed by `Normalize(0.5, 0.5)` ((y - 0.5)/0.5) folded into
    /// one affine map; the two agree to within an f32 rounding step.
    ///
    /// # Panics
    /// If an index is `>= len()`.
    pub fn batch_f32(&self, indices: &[usize]) -> Array4<f32> {
        let image_len = self.image_len();
        let mut batch =
            Array4::<f32>::zeros((indices.len(), self.channels, self.height, self.width));
        let out = batch
            .as_slice_mut()
            .expect("a freshly allocated array is contiguous");
        out.par_chunks_mut(image_len)
            .zip(indices.par_iter())
            .for_each(|(dst, &i)| {
                for (d, &x) in dst.iter_mut().zip(self.image(i)) {
                    *d = scale_to_unit_range(x);
                }
            });
        batch
    }

    /// A new data set made of the images at `indices`, in that order (e.g. a quick-run subset).
    ///
    /// # Panics
    /// If an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            name: self.name.clone(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            images,
            labels: self.batch_labels(indices),
            class_names: self.class_names.clone(),
        }
    }

    /// The same images at `side × side`: every channel plane resized with Pillow's bilinear
    /// filter ([`resize::Bilinear`]); the set itself, untouched, when it already is that size.
    /// An error for a side outside 1 to [`MAX_IMAGE_SIDE`].
    pub fn resized(self, side: usize) -> Result<Dataset, DataError> {
        if (self.height, self.width) == (side, side) {
            return Ok(self);
        }
        check_side(side)?;
        let images =
            resize::Bilinear::new(self.height, self.width, side).resize_planes(&self.images);
        Ok(Dataset {
            height: side,
            width: side,
            images,
            ..self
        })
    }

    /// How many images each class has, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &label in &self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }
}

/// Maps a pixel byte to [-1, 1]: `x / 127.5 - 1`.
#[inline]
pub fn scale_to_unit_range(x: u8) -> f32 {
    f32::from(x) / 127.5 - 1.0
}

/// A training set and its held-out test set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

impl Split {
    /// Both sets at `side × side` ([`Dataset::resized`]).
    pub fn resized(self, side: usize) -> Result<Split, DataError> {
        Ok(Split {
            train: self.train.resized(side)?,
            test: self.test.resized(side)?,
        })
    }
}

/// The data sets padsim can load; a configuration names one in snake case (`"cifar10"`,
/// `"fashion_mnist"`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// CIFAR-10, binary version (3 × 32 × 32 files, brought to the architecture's side).
    Cifar10,
    /// Street View House Numbers, cropped digits (3 × 32 × 32 files, brought to the side).
    Svhn,
    /// MNIST handwritten digits (1 × 28 × 28 files, brought to the side: 32 for PAD).
    Mnist,
    /// Fashion-MNIST (1 × 28 × 28 files, brought to the side: 32 for PAD).
    FashionMnist,
    /// The built-in procedural shapes (3 channels, drawn at the side), needs no files.
    Synthetic,
    /// Your own PNG images, one sub-folder per class under `train/` and `test/`.
    ImageFolder,
    /// Your own images and labels as NumPy `.npy` arrays.
    Npy,
}

impl DatasetKind {
    /// Every kind, in declaration order.
    pub const ALL: [DatasetKind; 7] = [
        Self::Cifar10,
        Self::Svhn,
        Self::Mnist,
        Self::FashionMnist,
        Self::Synthetic,
        Self::ImageFolder,
        Self::Npy,
    ];

    /// The configuration names, in the order of [`DatasetKind::ALL`].
    pub const NAMES: [&'static str; 7] = [
        "cifar10",
        "svhn",
        "mnist",
        "fashion_mnist",
        "synthetic",
        "image_folder",
        "npy",
    ];

    /// The configuration name (`"fashion_mnist"`), as serde writes it.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The folder name this kind's files conventionally live in under a data root such as
    /// `$PADSIM_DATA` (`None` for the synthetic set, which needs no files, and for your own
    /// sets, whose folder is always named).
    pub fn conventional_dir(self) -> Option<&'static str> {
        match self {
            Self::Cifar10 => Some("cifar-10-batches-bin"),
            Self::Svhn => Some("svhn"),
            Self::Mnist => Some("mnist"),
            Self::FashionMnist => Some("fashion_mnist"),
            Self::Synthetic | Self::ImageFolder | Self::Npy => None,
        }
    }

    /// Whether the kind reads a researcher's own files ([`DatasetKind::ImageFolder`],
    /// [`DatasetKind::Npy`]), whose classes and channels are only known once they are loaded.
    pub fn is_own_data(self) -> bool {
        matches!(self, Self::ImageFolder | Self::Npy)
    }

    /// Colour channels of the kind's images; `None` for your own sets, where the files decide
    /// (see [`Dataset::channels`]).
    pub fn channels(self) -> Option<usize> {
        match self {
            Self::Mnist | Self::FashionMnist => Some(1),
            Self::Cifar10 | Self::Svhn | Self::Synthetic => Some(3),
            Self::ImageFolder | Self::Npy => None,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    /// Accepts the snake-case names case-insensitively, and ignores `-` and `_` so that
    /// command-line spellings such as `CIFAR-10` or `fashion-mnist` work too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let squashed = |name: &str| -> String {
            name.chars()
                .filter(|c| *c != '-' && *c != '_')
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let wanted = squashed(s.trim());
        Self::ALL
            .into_iter()
            .find(|kind| squashed(kind.name()) == wanted)
            .ok_or_else(|| DataError::UnknownKind {
                found: s.to_string(),
            })
    }
}

/// The environment variable naming the data root that benchmarks and experiments read from
/// when no directory is given.
pub const DATA_ENV: &str = "PADSIM_DATA";

/// `$PADSIM_DATA/<conventional dir>` for `kind`, if the variable is set (and the kind has a
/// conventional folder). Whether the folder exists is left to the loader, which names what is missing.
pub fn dir_from_env(kind: DatasetKind) -> Option<PathBuf> {
    let root = std::env::var_os(DATA_ENV)?;
    Some(Path::new(&root).join(kind.conventional_dir()?))
}

/// Settings that only some loaders read; `Default` gives PAD's choices where PAD has one.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LoadOptions {
    /// How MNIST's 28 × 28 images become the architecture's side when it is not 28 (32 for PAD).
    pub mnist_resize: MnistResize,
    /// Size and seed of the synthetic set.
    pub synthetic: SyntheticConfig,
}

/// Loads both splits of `kind` from `dir`, the folder that holds the data set's files (for
/// CIFAR-10 the `cifar-10-batches-bin` folder itself; for an image folder the one holding
/// `train/` and `test/`), with images of PAD's 32 × 32: [`load_sized`] at [`IMAGE_SIDE`].
/// `dir` is ignored for [`DatasetKind::Synthetic`].
pub fn load(kind: DatasetKind, dir: &Path, options: &LoadOptions) -> Result<Split, DataError> {
    load_sized(kind, dir, options, IMAGE_SIDE)
}

/// Loads both splits of `kind` from `dir` (as [`load`]) with images of `side × side`, the
/// architecture's input side: files of that size are kept byte for byte, others resized with
/// Pillow's bilinear filter (MNIST-format sets: bilinear or padded, as `options.mnist_resize`
/// says, and untouched at side 28); the synthetic set is drawn at `side`. A side outside 1 to
/// [`MAX_IMAGE_SIDE`] is a [`DataError::Side`].
pub fn load_sized(
    kind: DatasetKind,
    dir: &Path,
    options: &LoadOptions,
    side: usize,
) -> Result<Split, DataError> {
    check_side(side)?;
    match kind {
        DatasetKind::Cifar10 => cifar10::load_sized(dir, side),
        DatasetKind::Svhn => svhn::load_sized(dir, side),
        DatasetKind::Mnist => {
            mnist::load_sized(dir, mnist::MnistFlavour::Digits, options.mnist_resize, side)
        }
        DatasetKind::FashionMnist => mnist::load_sized(
            dir,
            mnist::MnistFlavour::Fashion,
            options.mnist_resize,
            side,
        ),
        DatasetKind::Synthetic => synthetic::generate_sized(&options.synthetic, side),
        DatasetKind::ImageFolder => image_folder::load_sized(dir, side),
        DatasetKind::Npy => npy::load_sized(dir, side),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // Two 1x2x2 images: [0, 255, 127, 128] and [10, 20, 30, 40].
        Dataset::new(
            "tiny",
            1,
            2,
            2,
            vec![0, 255, 127, 128, 10, 20, 30, 40],
            vec![1, 0],
            vec!["a".into(), "b".into()],
        )
        .unwrap()
    }

    #[test]
    fn batch_scales_bytes_to_unit_range_in_index_order() {
        let data = tiny();
        let batch = data.batch_f32(&[1, 0, 1]);
        assert_eq!(batch.shape(), &[3, 1, 2, 2]);
        assert_eq!(batch[[1, 0, 0, 0]], -1.0);
        assert_eq!(batch[[1, 0, 0, 1]], 1.0);
        assert!((batch[[1, 0, 1, 0]] - (127.0 / 127.5 - 1.0)).abs() < 1e-7);
        assert!((batch[[0, 0, 1, 1]] - (40.0 / 127.5 - 1.0)).abs() < 1e-7);
        assert_eq!(
            batch.index_axis(ndarray::Axis(0), 0),
            batch.index_axis(ndarray::Axis(0), 2)
        );
        assert_eq!(data.batch_labels(&[1, 0, 1]), vec![0, 1, 0]);
    }

    #[test]
    fn scaling_matches_to_tensor_then_normalize() {
        for x in 0..=255u8 {
            let torch_like = (f32::from(x) / 255.0 - 0.5) / 0.5;
            assert!((scale_to_unit_range(x) - torch_like).abs() <= 2.0 * f32::EPSILON);
        }
    }

    #[test]
    fn new_rejects_inconsistent_parts() {
        let names = || vec!["a".to_string(), "b".to_string()];
        let short = Dataset::new("t", 1, 2, 2, vec![0; 7], vec![0, 1], names());
        assert!(short.unwrap_err().to_string().contains("7 pixel bytes"));
        let bad_label = Dataset::new("t", 1, 2, 2, vec![0; 8], vec![0, 2], names());
        assert!(bad_label
            .unwrap_err()
            .to_string()
            .contains("label 2 at record 1"));
        let zero = Dataset::new("t", 0, 2, 2, vec![], vec![], names());
        assert!(zero.is_err());
    }

    #[test]
    fn subset_and_counts() {
        let data = tiny();
        let sub = data.subset(&[1]);
        assert_eq!(sub.len(), 1);
        assert_eq!(sub.image(0), &[10, 20, 30, 40]);
        assert_eq!(sub.labels(), &[0]);
        assert_eq!(data.class_counts(), vec![1, 1]);
    }

    #[test]
    fn resized_keeps_a_set_at_its_side_and_resizes_every_plane_otherwise() {
        let data = tiny();
        assert_eq!(data.clone().resized(2).unwrap(), data);
        let up = data.clone().resized(3).unwrap();
        assert_eq!(
            (up.channels(), up.height(), up.width(), up.len()),
            (1, 3, 3, 2)
        );
        let filter = resize::Bilinear::new(2, 2, 3);
        assert_eq!(up.images(), filter.resize_planes(data.images()).as_slice());
        assert_eq!(
            (up.labels(), up.class_names()),
            (data.labels(), data.class_names())
        );
        for side in [0, MAX_IMAGE_SIDE + 1, usize::MAX] {
            let err = data.clone().resized(side).unwrap_err();
            assert!(matches!(err, DataError::Side { side: s } if s == side));
        }
    }

    #[test]
    fn sides_outside_the_range_are_errors_not_panics() {
        assert!(check_side(1).is_ok() && check_side(MAX_IMAGE_SIDE).is_ok());
        let nowhere = Path::new("/nonexistent/padsim");
        for side in [0, MAX_IMAGE_SIDE + 1, usize::MAX] {
            for kind in DatasetKind::ALL {
                let err = load_sized(kind, nowhere, &LoadOptions::default(), side).unwrap_err();
                let message = err.to_string();
                assert!(
                    message.contains(&format!("image side {side} pixels"))
                        && message.contains("expected 1 to 1024"),
                    "{kind}: {message}"
                );
                assert!(err.path().is_none());
            }
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in DatasetKind::ALL {
            assert_eq!(kind.to_string().parse::<DatasetKind>().unwrap(), kind);
        }
        assert_eq!(
            "CIFAR-10".parse::<DatasetKind>().unwrap(),
            DatasetKind::Cifar10
        );
        assert_eq!(
            "fashion-mnist".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        let err = "imagenet".parse::<DatasetKind>().unwrap_err().to_string();
        assert!(
            err.contains("imagenet") && err.contains("fashion_mnist"),
            "{err}"
        );
    }
}
