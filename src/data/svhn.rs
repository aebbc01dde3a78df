//! SVHN (Street View House Numbers), cropped digits: 73,257 training and 26,032 test
//! images, 3 × 32 × 32, labels 0..=9, brought to the architecture's input side (32 for PAD:
//! kept byte for byte; any other side: each plane resized with Pillow's bilinear filter,
//! [`super::resize`]).
//!
//! PAD equivalent: `torchvision.datasets.SVHN(split='train'|'test')` + `Resize(32)` (a no-op) +
//! `ToTensor()` + `Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))`; torchvision reads the same
//! files with `scipy.io.loadmat`, takes `X.transpose(3, 2, 0, 1)` and maps label 10 to 0.
//! `Resize(S)` at side S.
//!
//! Files (MATLAB v5/v7 MAT-files, read by [`super::mat5`]):
//!
//! ```text
//! train_32x32.mat, test_32x32.mat, each with two variables:
//!   X  uint8, dimensions 32x32x3xN, column-major: X(row, col, channel, n) is at byte
//!      row + 32·col + 1024·channel + 3072·n
//!   y  N labels (N x 1 or 1 x N), double or any other numeric class, values 1..=10, where 10
//!      stands for the digit 0
//! ```
//!
//! The NCHW buffer wants `n·3072 + channel·1024 + row·32 + col`, so each 32 × 32 plane is
//! transposed (MATLAB's column-major plane → row-major rows).

use super::mat5::{self, MatClass, MatFile};
use super::{check_side, DataError, Dataset, Split, IMAGE_SIDE, NUM_CLASSES};
use rayon::prelude::*;
use std::path::Path;

/// The training file.
pub const TRAIN_FILE: &str = "train_32x32.mat";

/// The test file.
pub const TEST_FILE: &str = "test_32x32.mat";

const PLANE: usize = IMAGE_SIDE * IMAGE_SIDE;
const IMAGE_LEN: usize = 3 * PLANE;

/// [`load`], with the images resized to `side × side` (kept as they are at 32); a side outside
/// 1 to [`super::MAX_IMAGE_SIDE`] is an error.
pub fn load_sized(dir: &Path, side: usize) -> Result<Split, DataError> {
    check_side(side)?;
    load(dir)?.resized(side)
}

/// Loads `train_32x32.mat` and `test_32x32.mat` from `dir`, at the files' 32 × 32.
pub fn load(dir: &Path) -> Result<Split, DataError> {
    let (train, test) = rayon::join(
        || read_split(&dir.join(TRAIN_FILE), "svhn/train"),
        || read_split(&dir.join(TEST_FILE), "svhn/test"),
    );
    Ok(Split {
        train: train?,
        test: test?,
    })
}

/// Class names: the digits, indexed by label (label 0 is the digit 0, SVHN's class 10).
pub fn class_names() -> Vec<String> {
    (0..NUM_CLASSES).map(|d| d.to_string()).collect()
}

/// Reads one SVHN MAT-file into a data set called `name`.
pub fn read_split(path: &Path, name: &str) -> Result<Dataset, DataError> {
    let mat = mat5::read(path).map_err(|err| match err {
        DataError::Missing { path, .. } => DataError::Missing {
            path,
            expected: "SVHN cropped digits (train_32x32.mat / test_32x32.mat, MATLAB v5/v7)".into(),
        },
        other => other,
    })?;
    dataset_from_mat(&mat, name)
}

/// Converts the `X` and `y` variables of an SVHN MAT-file into a data set.
pub fn dataset_from_mat(mat: &MatFile, name: &str) -> Result<Dataset, DataError> {
    let path = mat.path.as_path();
    let x = mat.variable("X")?;
    if x.class != MatClass::Uint8 {
        return Err(DataError::format(
            path,
            format!("variable 'X' has class {}; expected uint8", x.class),
        ));
    }
    // MATLAB drops trailing singleton dimensions, so a single image is 32x32x3.
    let count = match x.dims.as_slice() {
        [IMAGE_SIDE, IMAGE_SIDE, 3, n] => *n,
        [IMAGE_SIDE, IMAGE_SIDE, 3] => 1,
        _ => {
            return Err(DataError::format(
                path,
                format!(
                    "variable 'X' has dimensions {}; expected 32x32x3xN",
                    x.dims_text()
                ),
            ))
        }
    };
    let column_major = x.real_u8().ok_or_else(|| {
        DataError::format(path, "variable 'X' holds values that are not bytes 0..=255")
    })?;

    let y = mat.variable("y")?;
    if !y.class.is_numeric() || y.complex {
        return Err(DataError::format(
            path,
            format!(
                "variable 'y' has class {}{}; expected real double or uint8",
                y.class,
                if y.complex { " (complex)" } else { "" }
            ),
        ));
    }
    let non_singleton = y.dims.iter().filter(|&&d| d != 1).count();
    if y.element_count() != count || non_singleton > 1 {
        return Err(DataError::format(
            path,
            format!(
                "variable 'y' has dimensions {}; expected {count}x1 (one label per image of 'X')",
                y.dims_text()
            ),
        ));
    }
    let raw_labels = y
        .real_f64()
        .ok_or_else(|| DataError::format(path, "variable 'y' holds no numeric values"))?;
    let labels = raw_labels
        .iter()
        .enumerate()
        .map(|(record, &v)| {
            if v.fract() == 0.0 && (1.0..=10.0).contains(&v) {
                Ok((v as u8) % 10)
            } else {
                Err(DataError::Label {
                    path: path.to_path_buf(),
                    record,
                    found: v.to_string(),
                    expected: "1..=10 (10 = digit 0)".into(),
                })
            }
        })
        .collect::<Result<Vec<u8>, _>>()?;

    let mut images = vec![0u8; count * IMAGE_LEN];
    images
        .par_chunks_mut(IMAGE_LEN)
        .zip(column_major.par_chunks(IMAGE_LEN))
        .for_each(|(dst, src)| {
            for (dst_plane, src_plane) in dst.chunks_exact_mut(PLANE).zip(src.chunks_exact(PLANE)) {
                transpose_plane(src_plane, dst_plane);
            }
        });
    Dataset::new(
        name,
        3,
        IMAGE_SIDE,
        IMAGE_SIDE,
        images,
        labels,
        class_names(),
    )
}

/// Column-major 32 × 32 plane (`src[row + 32·col]`) to row-major (`dst[row·32 + col]`).
fn transpose_plane(src: &[u8], dst: &mut [u8]) {
    for (col, src_col) in src.chunks_exact(IMAGE_SIDE).enumerate() {
        for (row, &v) in src_col.iter().enumerate() {
            dst[row * IMAGE_SIDE + col] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::mat5::writer::*;
    use super::super::mat5::{data_type, read_from, Endian};
    use super::*;

    /// X(row, col, ch, n) = row + 2·col + 50·ch + 7·n (mod 256): every index visible.
    fn x_value(row: usize, col: usize, ch: usize, n: usize) -> u8 {
        ((row + 2 * col + 50 * ch + 7 * n) % 256) as u8
    }

    fn svhn_file(n: usize, labels: &[f64]) -> Vec<u8> {
        let le = Endian::Little;
        let mut x = vec![0u8; n * IMAGE_LEN];
        for i in 0..n {
            for ch in 0..3 {
                for col in 0..32 {
                    for row in 0..32 {
                        x[row + 32 * col + 1024 * ch + 3072 * i] = x_value(row, col, ch, i);
                    }
                }
            }
        }
        let y: Vec<u8> = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut file = header(le);
        file.extend(compressed(
            le,
            &matrix(le, "X", 9, &[32, 32, 3, n as i32], data_type::UINT8, &x),
        ));
        file.extend(matrix(
            le,
            "y",
            6,
            &[labels.len() as i32, 1],
            data_type::DOUBLE,
            &y,
        ));
        file
    }

    fn convert(file: &[u8]) -> Result<Dataset, DataError> {
        let mat = read_from(file, Path::new("s.mat"))?;
        dataset_from_mat(&mat, "svhn/test")
    }

    #[test]
    fn column_major_planes_become_nchw_and_label_10_becomes_0() {
        let data = convert(&svhn_file(2, &[10.0, 3.0])).unwrap();
        assert_eq!(data.labels(), &[0, 3]);
        for n in 0..2 {
            let image = data.image(n);
            for ch in 0..3 {
                for row in 0..32 {
                    for col in 0..32 {
                        assert_eq!(image[ch * 1024 + row * 32 + col], x_value(row, col, ch, n));
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_labels_and_counts_are_errors() {
        let err = convert(&svhn_file(2, &[0.0, 3.0])).unwrap_err().to_string();
        assert_eq!(
            err,
            "s.mat: label 0 at record 0; expected 1..=10 (10 = digit 0)"
        );
        let err = convert(&svhn_file(2, &[1.0])).unwrap_err().to_string();
        assert!(
            err.contains("'y' has dimensions 1x1; expected 2x1"),
            "{err}"
        );
    }
}
