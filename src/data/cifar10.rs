//! CIFAR-10, binary version: 50,000 training and 10,000 test images, 3 × 32 × 32, 10 classes,
//! brought to the architecture's input side (32 for PAD: kept byte for byte; any other side:
//! each plane resized with Pillow's bilinear filter, [`super::resize`]).
//!
//! PAD equivalent: `torchvision.datasets.CIFAR10(train=…)` + `Resize(32)` (a no-op) +
//! `ToTensor()` + `Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))`; `Resize(S)` at side S.
//!
//! Layout of the folder `cifar-10-batches-bin/`:
//!
//! ```text
//! data_batch_1.bin … data_batch_5.bin   training set, read in this order
//! test_batch.bin                        test set
//! batches.meta.txt                      class names, one per line (optional here)
//! ```
//!
//! Each `.bin` file is a sequence of 3,073-byte records with no header:
//!
//! ```text
//! byte 0           label 0..=9
//! bytes 1..1025    red plane,   32 rows of 32 pixels, row-major
//! bytes 1025..2049 green plane
//! bytes 2049..3073 blue plane
//! ```
//!
//! The pixel part already is CHW, so a record's 3,072 pixel bytes are copied unchanged into
//! the NCHW image buffer; the labels go to their own vector.

use super::{
    check_side, file_error, read_name_lines, DataError, Dataset, Split, IMAGE_SIDE, NUM_CLASSES,
};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Bytes of pixels per image: 3 planes of 32 × 32.
pub const PIXELS_PER_RECORD: usize = 3 * IMAGE_SIDE * IMAGE_SIDE;

/// Bytes per record: one label byte, then the pixels.
pub const RECORD_LEN: usize = 1 + PIXELS_PER_RECORD;

/// The training files, in the order their images are concatenated.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];

/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";

/// The class-name file (optional: [`CLASS_NAMES`] is used when it is absent).
pub const META_FILE: &str = "batches.meta.txt";

/// CIFAR-10's classes, indexed by label, as `batches.meta.txt` spells them.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// [`load`], with the images resized to `side × side` (kept as they are at 32); a side outside
/// 1 to [`super::MAX_IMAGE_SIDE`] is an error.
pub fn load_sized(dir: &Path, side: usize) -> Result<Split, DataError> {
    check_side(side)?;
    load(dir)?.resized(side)
}

/// Loads the training set (all five batch files, which must all be present) and the test set
/// from the `cifar-10-batches-bin` folder `dir`, at the files' 32 × 32.
///
/// Records are streamed from the files straight into the final image buffers (the five
/// training files in parallel, each into its own stretch): no file is held in memory whole,
/// which kept ~120 MB of freed copies resident in the process before.
pub fn load(dir: &Path) -> Result<Split, DataError> {
    let class_names = read_class_names(&dir.join(META_FILE))?;
    let train_files = TRAIN_FILES
        .iter()
        .enumerate()
        .map(|(k, file)| {
            BatchFile::open(
                &dir.join(file),
                &format!("CIFAR-10 training batch {} of 5", k + 1),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let test = BatchFile::open(&dir.join(TEST_FILE), "the CIFAR-10 test batch")?;

    let records: usize = train_files.iter().map(|f| f.records).sum();
    let mut train_images = vec![0; records * PIXELS_PER_RECORD];
    let mut train_labels = vec![0; records];
    let mut stretches = Vec::with_capacity(train_files.len());
    let (mut images, mut labels) = (&mut train_images[..], &mut train_labels[..]);
    for file in train_files {
        let (file_images, rest_images) = images.split_at_mut(file.records * PIXELS_PER_RECORD);
        let (file_labels, rest_labels) = labels.split_at_mut(file.records);
        stretches.push((file, file_images, file_labels));
        (images, labels) = (rest_images, rest_labels);
    }
    stretches
        .into_par_iter()
        .try_for_each(|(file, images, labels)| file.read_into(images, labels))?;
    let (test_images, test_labels) = test.read()?;
    Ok(Split {
        train: assemble("cifar10/train", train_images, train_labels, &class_names)?,
        test: assemble("cifar10/test", test_images, test_labels, &class_names)?,
    })
}

fn assemble(
    name: &str,
    images: Vec<u8>,
    labels: Vec<u8>,
    class_names: &[String],
) -> Result<Dataset, DataError> {
    Dataset::new(
        name,
        3,
        IMAGE_SIDE,
        IMAGE_SIDE,
        images,
        labels,
        class_names.to_vec(),
    )
}

/// An opened batch file whose length has been checked: `records` whole records.
struct BatchFile {
    path: PathBuf,
    reader: BufReader<File>,
    records: usize,
}

impl BatchFile {
    /// Opens `path`; `role` says what the file is for, and is quoted when it is missing.
    fn open(path: &Path, role: &str) -> Result<Self, DataError> {
        let expected =
            format!("{role} ({RECORD_LEN}-byte records: 1 label + {PIXELS_PER_RECORD} pixels)");
        let file = File::open(path).map_err(|e| file_error(path, &expected, e))?;
        let length = file
            .metadata()
            .map_err(|e| file_error(path, &expected, e))?
            .len();
        Ok(BatchFile {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            records: record_count(path, length)?,
        })
    }

    fn read_into(self, images: &mut [u8], labels: &mut [u8]) -> Result<(), DataError> {
        read_records(&self.path, self.reader, images, labels)
    }

    /// All records as (NCHW pixel bytes, labels).
    fn read(self) -> Result<(Vec<u8>, Vec<u8>), DataError> {
        let mut images = vec![0; self.records * PIXELS_PER_RECORD];
        let mut labels = vec![0; self.records];
        self.read_into(&mut images, &mut labels)?;
        Ok((images, labels))
    }
}

/// Reads one batch file into (NCHW pixel bytes, labels). `role` says what the file is for,
/// and is quoted when the file is missing.
pub fn read_batch_file(path: &Path, role: &str) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    BatchFile::open(path, role)?.read()
}

/// Splits the records of a batch file already in memory; `path` is only used in errors.
pub fn parse_batch(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let records = record_count(path, bytes.len() as u64)?;
    let mut images = vec![0; records * PIXELS_PER_RECORD];
    let mut labels = vec![0; records];
    read_records(path, bytes, &mut images, &mut labels)?;
    Ok((images, labels))
}

/// Whole records in a batch file of `length` bytes (at least one, none cut short).
fn record_count(path: &Path, length: u64) -> Result<usize, DataError> {
    let record = RECORD_LEN as u64;
    if length == 0 || !length.is_multiple_of(record) {
        let expected = if length == 0 {
            format!("at least one {RECORD_LEN}-byte record (1 label + {PIXELS_PER_RECORD} pixels)")
        } else {
            format!(
                "a multiple of the {RECORD_LEN}-byte record (1 label + {PIXELS_PER_RECORD} pixels)"
            )
        };
        return Err(DataError::Size {
            path: path.to_path_buf(),
            found: length,
            expected,
        });
    }
    Ok((length / record) as usize)
}

/// Reads `labels.len()` records from `source`: labels to `labels`, pixels to `images`.
fn read_records(
    path: &Path,
    mut source: impl Read,
    images: &mut [u8],
    labels: &mut [u8],
) -> Result<(), DataError> {
    let mut record = [0u8; RECORD_LEN];
    let pixels = images.chunks_exact_mut(PIXELS_PER_RECORD);
    for (index, (label, pixels)) in labels.iter_mut().zip(pixels).enumerate() {
        source
            .read_exact(&mut record)
            .map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if usize::from(record[0]) >= NUM_CLASSES {
            return Err(DataError::Label {
                path: path.to_path_buf(),
                record: index,
                found: record[0].to_string(),
                expected: format!("0..={}", NUM_CLASSES - 1),
            });
        }
        *label = record[0];
        pixels.copy_from_slice(&record[1..]);
    }
    Ok(())
}

/// Reads `batches.meta.txt`: one class name per line, blank lines ignored. A missing file
/// gives the standard names; a file with other than ten names is an error.
pub fn read_class_names(path: &Path) -> Result<Vec<String>, DataError> {
    let Some(names) = read_name_lines(path, "CIFAR-10 class names")? else {
        return Ok(CLASS_NAMES.iter().map(|s| s.to_string()).collect());
    };
    if names.len() != NUM_CLASSES {
        return Err(DataError::format(
            path,
            format!(
                "{} class names; expected {NUM_CLASSES}, one per line",
                names.len()
            ),
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..PIXELS_PER_RECORD).map(|i| fill.wrapping_add(i as u8)));
        r
    }

    #[test]
    fn records_split_into_labels_and_chw_pixels() {
        let mut bytes = record(3, 0);
        bytes.extend(record(9, 100));
        let (images, labels) = parse_batch(Path::new("b.bin"), &bytes).unwrap();
        assert_eq!(labels, vec![3, 9]);
        assert_eq!(images.len(), 2 * PIXELS_PER_RECORD);
        assert_eq!(&images[..PIXELS_PER_RECORD], &bytes[1..RECORD_LEN]);
        assert_eq!(images[PIXELS_PER_RECORD], 100);
    }

    #[test]
    fn size_and_label_errors_name_the_file() {
        let err = parse_batch(Path::new("data_batch_1.bin"), &[0; 30000]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data_batch_1.bin: size 30000 bytes; expected a multiple of the 3073-byte record \
             (1 label + 3072 pixels)"
        );
        let err = parse_batch(Path::new("x.bin"), &record(10, 0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.bin: label 10 at record 0; expected 0..=9"
        );
        assert!(parse_batch(Path::new("e.bin"), &[]).is_err());
    }
}
