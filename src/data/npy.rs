//! Your own images and labels as NumPy `.npy` arrays: reads `uint8` image arrays and integer
//! label arrays for both splits (headers and data through the `ndarray-npy` crate), brings the
//! images to the architecture's input side S × S (32 × 32 for PAD) with [`super::resize`] and
//! checks every label against the classes.
//!
//! PAD equivalent: none (the reference reads CIFAR-10, SVHN, MNIST and Fashion-MNIST through
//! torchvision).
//!
//! ```text
//! data_dir/
//!   train_images.npy   uint8, shape (N, H, W) (grey) or (N, C, H, W) with C = 1 or 3
//!   train_labels.npy   any integer dtype NumPy writes (uint8, int32, int64, ...), shape (N,)
//!   test_images.npy    the same for the test set (same C; H and W may differ)
//!   test_labels.npy
//!   class_names.txt    optional: one class name per line, line k naming label k
//! ```
//!
//! Written by `np.save("train_images.npy", x.astype(np.uint8))` and so on; C order or Fortran
//! order, either byte order. Channels-last arrays (N, H, W, C) must be transposed first:
//! `np.transpose(x, (0, 3, 1, 2))`.
//!
//! - **Classes**: with `class_names.txt`, its lines (blank ones skipped), 2 to 256 distinct
//!   names, and every label must lie in `0..names`; without it, `0..=K-1` named `"0"`, `"1"`,
//!   …, where K − 1 is the largest label of either split (at least 1, at most 255).
//! - **Size**: arrays of S × S images are used as they are; any other size is resized to
//!   S × S with Pillow's bilinear filter, each channel plane alone.
//! - **Order**: images keep the order of the arrays.
//!
//! Errors name the file and what was expected: a dtype other than `uint8` for images or an
//! integer for labels, a shape of the wrong rank or channel count, a file size that does not
//! match its header (cut short or padded), label and image counts that differ, a label
//! outside the classes.

use super::resize::Bilinear;
use super::{check_side, file_error, read_name_lines, DataError, Dataset, Split, IMAGE_SIDE};
use ndarray::ArrayD;
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// The training images.
pub const TRAIN_IMAGES: &str = "train_images.npy";
/// The training labels.
pub const TRAIN_LABELS: &str = "train_labels.npy";
/// The test images.
pub const TEST_IMAGES: &str = "test_images.npy";
/// The test labels.
pub const TEST_LABELS: &str = "test_labels.npy";
/// The optional class names, one per line.
pub const CLASS_NAMES_FILE: &str = "class_names.txt";

/// Largest `.npy` header accepted (1 MiB; NumPy writes about 128 bytes).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Loads the four arrays (and `class_names.txt` if present) from `dir`, at PAD's 32 × 32:
/// [`load_sized`] at [`IMAGE_SIDE`].
pub fn load(dir: &Path) -> Result<Split, DataError> {
    load_sized(dir, IMAGE_SIDE)
}

/// Loads the four arrays (and `class_names.txt` if present) from `dir`, with images of
/// `side × side`; a side outside 1 to [`super::MAX_IMAGE_SIDE`] is an error.
pub fn load_sized(dir: &Path, side: usize) -> Result<Split, DataError> {
    check_side(side)?;
    let paths = |images: &str, labels: &str| (dir.join(images), dir.join(labels));
    let (train_images_path, train_labels_path) = paths(TRAIN_IMAGES, TRAIN_LABELS);
    let (test_images_path, test_labels_path) = paths(TEST_IMAGES, TEST_LABELS);
    let train_images = read_images(&train_images_path)?;
    let test_images = read_images(&test_images_path)?;
    if test_images.channels != train_images.channels {
        return Err(DataError::format(
            &test_images_path,
            format!(
                "images of {} channel(s); expected {} like {}",
                test_images.channels,
                train_images.channels,
                train_images_path.display()
            ),
        ));
    }
    let train_labels = read_labels_for(&train_labels_path, &train_images_path, &train_images)?;
    let test_labels = read_labels_for(&test_labels_path, &test_images_path, &test_images)?;

    let names_path = dir.join(CLASS_NAMES_FILE);
    let named = read_class_names(&names_path)?;
    let limit = named.as_ref().map(Vec::len);
    let train_labels = to_u8_labels(&train_labels_path, &train_labels, limit)?;
    let test_labels = to_u8_labels(&test_labels_path, &test_labels, limit)?;
    let class_names = match named {
        Some(names) => names,
        None => {
            let largest = train_labels.iter().chain(&test_labels).max().copied();
            let classes = usize::from(largest.unwrap_or(0)) + 1;
            if classes < 2 {
                return Err(DataError::format(
                    &train_labels_path,
                    format!(
                        "every label of both splits is 0; expected at least two classes (labels 0 and 1 at least, or a {CLASS_NAMES_FILE} naming them)"
                    ),
                ));
            }
            (0..classes).map(|k| k.to_string()).collect()
        }
    };
    let dataset = |name: &str, images: NpyImages, labels: Vec<u8>| {
        let channels = images.channels;
        Dataset::new(
            name,
            channels,
            side,
            side,
            images.into_side(side),
            labels,
            class_names.clone(),
        )
    };
    Ok(Split {
        train: dataset("npy/train", train_images, train_labels)?,
        test: dataset("npy/test", test_images, test_labels)?,
    })
}

/// The images of an `.npy` file: `count` images of `channels × rows × cols` bytes, NCHW.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyImages {
    pub count: usize,
    pub channels: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl NpyImages {
    /// All images at `side × side` (resized with Pillow's bilinear filter if they are not),
    /// NCHW.
    ///
    /// # Panics
    /// If `side` is 0 ([`load_sized`] checks it first).
    pub fn into_side(self, side: usize) -> Vec<u8> {
        if (self.rows, self.cols) == (side, side) {
            self.pixels
        } else {
            Bilinear::new(self.rows, self.cols, side).resize_planes(&self.pixels)
        }
    }
}

/// Reads an image array: `uint8`, shape (N, H, W) or (N, C, H, W) with C = 1 or 3, N ≥ 1.
pub fn read_images(path: &Path) -> Result<NpyImages, DataError> {
    const EXPECTED: &str = "uint8 images of shape (N, H, W) or (N, C, H, W), C = 1 or 3";
    let npy = NpyFile::open(path, EXPECTED)?;
    let descr = npy.descr();
    if !matches!(descr.as_str(), "|u1" | "u1" | "B") {
        return Err(DataError::format(
            path,
            format!(
                "dtype {descr}; expected uint8 ('|u1') pixels 0..=255 (save x.astype(np.uint8))"
            ),
        ));
    }
    let shape = npy.header.shape.clone();
    let (count, channels, rows, cols) = match shape[..] {
        [n, h, w] => (n, 1, h, w),
        [n, c @ (1 | 3), h, w] => (n, c, h, w),
        [_, _, _, 1 | 3] => {
            return Err(DataError::format(
                path,
                format!(
                    "shape {} looks channels-last; expected (N, C, H, W): save np.transpose(x, (0, 3, 1, 2))",
                    shape_text(&shape)
                ),
            ))
        }
        _ => {
            return Err(DataError::format(
                path,
                format!("shape {}; expected {EXPECTED}", shape_text(&shape)),
            ))
        }
    };
    if count == 0 || rows == 0 || cols == 0 {
        return Err(DataError::format(
            path,
            format!(
                "shape {}; expected at least one image of at least 1x1 pixels",
                shape_text(&shape)
            ),
        ));
    }
    npy.check_size(path, 1)?;
    let array = npy.read::<u8>(path)?;
    let pixels = if array.is_standard_layout() {
        array.into_raw_vec_and_offset().0
    } else {
        array.as_standard_layout().iter().copied().collect()
    };
    Ok(NpyImages {
        count,
        channels,
        rows,
        cols,
        pixels,
    })
}

/// Reads a label array: any integer dtype, shape (N,). Values are returned as they are stored
/// (range checks are the caller's).
pub fn read_labels(path: &Path) -> Result<Vec<i128>, DataError> {
    const EXPECTED: &str = "integer labels of shape (N,)";
    let npy = NpyFile::open(path, EXPECTED)?;
    let descr = npy.descr();
    let Some(bytes) = integer_item_size(&descr) else {
        return Err(DataError::format(
            path,
            format!(
                "dtype {descr}; expected an integer dtype (uint8, int32, int64, ...; save y.astype(np.int64))"
            ),
        ));
    };
    if npy.header.shape.len() != 1 {
        return Err(DataError::format(
            path,
            format!(
                "shape {}; expected {EXPECTED} (save y.ravel())",
                shape_text(&npy.header.shape)
            ),
        ));
    }
    npy.check_size(path, bytes)?;
    let signed = descr.contains('i') || descr.ends_with('b');
    match (bytes, signed) {
        (1, false) => npy.read_ints::<u8>(path),
        (1, true) => npy.read_ints::<i8>(path),
        (2, false) => npy.read_ints::<u16>(path),
        (2, true) => npy.read_ints::<i16>(path),
        (4, false) => npy.read_ints::<u32>(path),
        (4, true) => npy.read_ints::<i32>(path),
        (8, false) => npy.read_ints::<u64>(path),
        _ => npy.read_ints::<i64>(path),
    }
}

/// The item size of the integer descriptors `ndarray-npy` reads (`|u1`, `<i4`, `>u8`, ...).
fn integer_item_size(descr: &str) -> Option<usize> {
    match descr {
        "|u1" | "u1" | "B" | "|i1" | "i1" | "b" => Some(1),
        "<u2" | ">u2" | "<i2" | ">i2" => Some(2),
        "<u4" | ">u4" | "<i4" | ">i4" => Some(4),
        "<u8" | ">u8" | "<i8" | ">i8" => Some(8),
        _ => None,
    }
}

/// The labels of `labels_path`, checked to be one per image of `images_path`.
fn read_labels_for(
    labels_path: &Path,
    images_path: &Path,
    images: &NpyImages,
) -> Result<Vec<i128>, DataError> {
    let labels = read_labels(labels_path)?;
    if labels.len() != images.count {
        return Err(DataError::format(
            labels_path,
            format!(
                "{} labels; expected {}, one per image of {}",
                labels.len(),
                images.count,
                images_path.display()
            ),
        ));
    }
    Ok(labels)
}

/// The labels as bytes, each checked to lie below `classes` (256 when not given).
fn to_u8_labels(
    path: &Path,
    labels: &[i128],
    classes: Option<usize>,
) -> Result<Vec<u8>, DataError> {
    let limit = classes.unwrap_or(256) as i128;
    if let Some((record, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &label)| !(0..limit).contains(&label))
    {
        return Err(DataError::Label {
            path: path.to_path_buf(),
            record,
            found: label.to_string(),
            expected: match classes {
                Some(k) => format!("0..={} (one class per line of {CLASS_NAMES_FILE})", k - 1),
                None => "0..=255 (at most 256 classes)".into(),
            },
        });
    }
    Ok(labels.iter().map(|&label| label as u8).collect())
}

/// `class_names.txt`: one name per line, blank lines skipped; `None` if there is no such file.
pub fn read_class_names(path: &Path) -> Result<Option<Vec<String>>, DataError> {
    let Some(names) = read_name_lines(path, "class names, one per line")? else {
        return Ok(None);
    };
    if !(2..=256).contains(&names.len()) {
        return Err(DataError::format(
            path,
            format!(
                "{} class names; expected 2 to 256, one per line",
                names.len()
            ),
        ));
    }
    for (k, name) in names.iter().enumerate() {
        if let Some(first) = names[..k].iter().position(|other| other == name) {
            return Err(DataError::format(
                path,
                format!(
                    "class name {name:?} on lines {} and {} (blank lines not counted); expected distinct names",
                    first + 1,
                    k + 1
                ),
            ));
        }
    }
    Ok(Some(names))
}

/// A `.npy` file whose header has been read and checked against the file's length.
struct NpyFile {
    file: File,
    header: Header,
    /// Bytes before the array data: magic, version, header length and header.
    data_offset: u64,
    file_len: u64,
}

impl NpyFile {
    /// Opens `path` and reads its header. `ndarray-npy` parses the header, but first allocates
    /// a buffer of the length the file's prefix claims (up to 4 GiB in format 2.0); so the fixed
    /// prefix (magic `\x93NUMPY`, version, little-endian header length) is read here and the
    /// claimed length checked against the file's size before the header is handed over.
    fn open(path: &Path, expected: &str) -> Result<Self, DataError> {
        let mut file = File::open(path).map_err(|e| file_error(path, expected, e))?;
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file_len = file.metadata().map_err(io)?.len();
        let mut prefix = [0u8; 12];
        let available = file_len.min(12) as usize;
        file.read_exact(&mut prefix[..available]).map_err(io)?;
        let not_npy = |detail: String| {
            DataError::format(
                path,
                format!("not a NumPy .npy file ({detail}); expected {expected}"),
            )
        };
        if available < 10 || &prefix[..6] != b"\x93NUMPY" {
            return Err(not_npy("no \\x93NUMPY magic string".into()));
        }
        let (length_bytes, header_len) = match prefix[6] {
            1 => (2u64, u64::from(u16::from_le_bytes([prefix[8], prefix[9]]))),
            2 | 3 if available == 12 => (
                4,
                u64::from(u32::from_le_bytes([
                    prefix[8], prefix[9], prefix[10], prefix[11],
                ])),
            ),
            major => {
                return Err(not_npy(format!(
                    "format version {major}.{}, expected 1.0, 2.0 or 3.0",
                    prefix[7]
                )))
            }
        };
        let data_offset = 8 + length_bytes + header_len;
        if header_len > MAX_HEADER_BYTES || data_offset > file_len {
            return Err(DataError::Size {
                path: path.to_path_buf(),
                found: file_len,
                expected: format!(
                    "at least the {data_offset}-byte header its prefix announces (at most {MAX_HEADER_BYTES} bytes of header)"
                ),
            });
        }
        let mut head = vec![0u8; data_offset as usize];
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_exact(&mut head).map_err(io)?;
        let header = Header::from_reader(&mut head.as_slice())
            .map_err(|e| not_npy(format!("header: {e}")))?;
        Ok(Self {
            file,
            header,
            data_offset,
            file_len,
        })
    }

    /// The dtype descriptor as text (`|u1`, `<i8`, ...; a structured dtype as its Python
    /// literal).
    fn descr(&self) -> String {
        let descr = &self.header.type_descriptor;
        descr
            .as_string()
            .cloned()
            .unwrap_or_else(|| descr.to_string())
    }

    /// Checks that the data after the header is exactly the shape's elements of `item` bytes.
    fn check_size(&self, path: &Path, item: usize) -> Result<(), DataError> {
        let shape = &self.header.shape;
        let data = shape
            .iter()
            .try_fold(item as u64, |acc, &d| acc.checked_mul(d as u64));
        let total = data.and_then(|d| d.checked_add(self.data_offset));
        if total == Some(self.file_len) {
            return Ok(());
        }
        Err(DataError::Size {
            path: path.to_path_buf(),
            found: self.file_len,
            expected: match (total, data) {
                (Some(total), Some(data)) => format!(
                    "{total} ({}-byte header + {data} bytes for shape {} of {})",
                    self.data_offset,
                    shape_text(shape),
                    self.descr()
                ),
                _ => format!("a size for shape {}, which overflows", shape_text(shape)),
            },
        })
    }

    /// The array, read by `ndarray-npy` (after [`NpyFile::check_size`], so its allocation is
    /// bounded by the file's size).
    fn read<T: ReadableElement>(mut self, path: &Path) -> Result<ArrayD<T>, DataError> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        ArrayD::<T>::read_npy(BufReader::new(self.file)).map_err(|e| match e {
            ReadNpyError::Io(source) => DataError::Io {
                path: path.to_path_buf(),
                source,
            },
            other => DataError::format(path, format!("cannot read the array ({other})")),
        })
    }

    /// A 1-D integer array as `i128` values, in file order.
    fn read_ints<T: ReadableElement + Copy + Into<i128>>(
        self,
        path: &Path,
    ) -> Result<Vec<i128>, DataError> {
        Ok(self.read::<T>(path)?.iter().map(|&v| v.into()).collect())
    }
}

/// A shape as Python writes it: `(5,)`, `(5, 32, 32)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_descriptors_and_shapes() {
        assert_eq!(integer_item_size("|u1"), Some(1));
        assert_eq!(integer_item_size(">i4"), Some(4));
        assert_eq!(integer_item_size("<i8"), Some(8));
        assert_eq!(integer_item_size("<f4"), None);
        assert_eq!(integer_item_size("|b1"), None);
        assert_eq!(shape_text(&[5]), "(5,)");
        assert_eq!(shape_text(&[5, 3, 32, 32]), "(5, 3, 32, 32)");
        assert_eq!(shape_text(&[]), "()");
    }

    #[test]
    fn labels_outside_the_classes_are_named() {
        let p = Path::new("train_labels.npy");
        assert_eq!(to_u8_labels(p, &[0, 2, 1], Some(3)).unwrap(), vec![0, 2, 1]);
        let err = to_u8_labels(p, &[0, 3], Some(3)).unwrap_err().to_string();
        assert_eq!(
            err,
            "train_labels.npy: label 3 at record 1; expected 0..=2 (one class per line of class_names.txt)"
        );
        let err = to_u8_labels(p, &[-1], None).unwrap_err().to_string();
        assert!(
            err.contains("label -1 at record 0") && err.contains("0..=255"),
            "{err}"
        );
        assert!(to_u8_labels(p, &[256], None).is_err());
    }
}
