//! Your own images from a folder of PNG files, one sub-folder per class: decodes every
//! `train/<class>/*.png` and `test/<class>/*.png` (with the `png` crate), drops alpha, brings
//! each image to the architecture's input side S × S (32 × 32 for PAD) with [`super::resize`]
//! and labels it by its class folder.
//!
//! PAD equivalent: none (the reference reads CIFAR-10, SVHN, MNIST and Fashion-MNIST through
//! torchvision). The layout is torchvision's `ImageFolder`, one per split.
//!
//! ```text
//! data_dir/
//!   train/<class>/*.png     training images, one folder per class
//!   test/<class>/*.png      test images, the same class folders
//! ```
//!
//! - **Classes**: the sub-folder names, sorted (byte order of their UTF-8 names); label `k` is
//!   the `k`-th name. `train/` and `test/` must hold the same set of class folders (the error
//!   lists the difference); 2 to 256 classes, each with at least one PNG in each split. Hidden
//!   folders (name starting with `.`, e.g. `.ipynb_checkpoints`) are not classes.
//! - **Files**: the `*.png` files directly inside a class folder (the extension in any case),
//!   in name order; hidden files, other files and deeper folders are ignored. Images are
//!   ordered class by class in turn (first image of every class, then the second, ...), so the
//!   first images of a split, which previews and the PCA show, cover every class.
//! - **Pixels**: grey, grey + alpha, RGB, RGBA and palette PNGs of any bit depth. Depths below 8
//!   are expanded (`png`'s `EXPAND`), 16-bit samples scaled to 8 bits by `round(v · 255 / 65535)`,
//!   palettes looked up (a palette image counts as colour). Alpha is dropped: a pixel keeps its
//!   stored colour whatever its transparency (no compositing onto a background).
//! - **Channels**: 1 if every image of both splits is grey (with or without alpha), else 3, with
//!   each grey image copied into R, G and B (Pillow's `convert("RGB")`).
//! - **Size**: any, per image: an S × S image is kept as it is, any other is resized to
//!   S × S with Pillow's bilinear filter (non-square images are stretched, not cropped).
//!   One decoded image may take at most [`MAX_DECODED_BYTES`].
//!
//! Errors name the file or folder and what was expected: a missing `train/` or `test/`, class
//! folders that differ between them, an empty class folder, a PNG that does not decode (cut
//! short, damaged chunk, bad checksum).

use super::resize::Bilinear;
use super::{check_side, file_error, DataError, Dataset, Split, IMAGE_SIDE};
use png::{BitDepth, ColorType, Decoder, Transformations};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The training split's folder under `data_dir`.
pub const TRAIN_DIR: &str = "train";

/// The test split's folder under `data_dir`.
pub const TEST_DIR: &str = "test";

/// Largest decoded image accepted, in bytes (256 MiB: e.g. 8192 × 8192 RGBA at 8 bits). Guards
/// against a damaged header claiming a huge image; real images for a network's input are far
/// smaller.
pub const MAX_DECODED_BYTES: usize = 256 << 20;

/// Loads `train/` and `test/` under `dir`, at PAD's 32 × 32: [`load_sized`] at [`IMAGE_SIDE`].
pub fn load(dir: &Path) -> Result<Split, DataError> {
    load_sized(dir, IMAGE_SIDE)
}

/// Loads `train/` and `test/` under `dir` with images of `side × side`; a side outside 1 to
/// [`super::MAX_IMAGE_SIDE`] is an error.
pub fn load_sized(dir: &Path, side: usize) -> Result<Split, DataError> {
    check_side(side)?;
    let train_root = dir.join(TRAIN_DIR);
    let test_root = dir.join(TEST_DIR);
    let classes = class_names(dir, &train_root, &test_root)?;
    let train_files = list_split(&train_root, &classes)?;
    let test_files = list_split(&test_root, &classes)?;
    let (train, test) = rayon::join(
        || decode_all(&train_files, side),
        || decode_all(&test_files, side),
    );
    let (train, test) = (train?, test?);
    let channels = if train.iter().chain(&test).any(|image| image.channels == 3) {
        3
    } else {
        1
    };
    Ok(Split {
        train: assemble(
            "image_folder/train",
            &train,
            &train_files,
            channels,
            side,
            &classes,
        )?,
        test: assemble(
            "image_folder/test",
            &test,
            &test_files,
            channels,
            side,
            &classes,
        )?,
    })
}

/// The sorted class-folder names of both splits, checked to be the same set of 2 to 256.
fn class_names(dir: &Path, train_root: &Path, test_root: &Path) -> Result<Vec<String>, DataError> {
    let train = class_folders(train_root)?;
    let test = class_folders(test_root)?;
    if train != test {
        let list = |names: Vec<&String>| {
            let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut parts = Vec::new();
        let only_train: Vec<&String> = train.difference(&test).collect();
        let only_test: Vec<&String> = test.difference(&train).collect();
        if !only_train.is_empty() {
            parts.push(format!("only in {TRAIN_DIR}/: {}", list(only_train)));
        }
        if !only_test.is_empty() {
            parts.push(format!("only in {TEST_DIR}/: {}", list(only_test)));
        }
        return Err(DataError::format(
            dir,
            format!(
                "the class folders of {TRAIN_DIR}/ and {TEST_DIR}/ differ ({}); expected the same classes in both",
                parts.join("; ")
            ),
        ));
    }
    if !(2..=256).contains(&train.len()) {
        return Err(DataError::format(
            train_root,
            format!(
                "{} class folder(s); expected 2 to 256, one sub-folder of PNG images per class",
                train.len()
            ),
        ));
    }
    Ok(train.into_iter().collect())
}

/// The names of the (non-hidden) sub-folders of `root`.
fn class_folders(root: &Path) -> Result<BTreeSet<String>, DataError> {
    const EXPECTED: &str = "a folder with one sub-folder of PNG images per class";
    let entries = std::fs::read_dir(root).map_err(|e| file_error(root, EXPECTED, e))?;
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| file_error(root, EXPECTED, e))?;
        let path = entry.path();
        // Follows symbolic links: a linked class folder counts.
        if !path.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(DataError::format(
                &path,
                "a class folder whose name is not valid UTF-8; expected UTF-8 class names",
            ));
        };
        if !name.starts_with('.') {
            names.insert(name);
        }
    }
    Ok(names)
}

/// The PNG files of every class folder under `root`, labelled, in the load order: the first
/// image of each class in class order, then the second of each, and so on.
fn list_split(root: &Path, classes: &[String]) -> Result<Vec<(PathBuf, u8)>, DataError> {
    let per_class = classes
        .iter()
        .map(|class| png_files(&root.join(class)))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = per_class.iter().map(Vec::len).max().unwrap_or(0);
    let mut files = Vec::with_capacity(per_class.iter().map(Vec::len).sum());
    for k in 0..longest {
        for (label, class_files) in per_class.iter().enumerate() {
            if let Some(path) = class_files.get(k) {
                files.push((path.clone(), label as u8));
            }
        }
    }
    Ok(files)
}

/// The non-hidden `*.png` files directly in `folder`, sorted by name; an error if there is none.
fn png_files(folder: &Path) -> Result<Vec<PathBuf>, DataError> {
    const EXPECTED: &str = "a class folder of PNG images";
    let entries = std::fs::read_dir(folder).map_err(|e| file_error(folder, EXPECTED, e))?;
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| file_error(folder, EXPECTED, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let is_png = Path::new(name.as_ref())
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            files.push(path);
        } else {
            ignored.push(name.into_owned());
        }
    }
    if files.is_empty() {
        ignored.sort();
        let others = match ignored.first() {
            None => String::from("the folder is empty"),
            Some(example) => format!(
                "{} other entr{} ignored, e.g. {example:?}: only PNG files are read",
                ignored.len(),
                if ignored.len() == 1 { "y" } else { "ies" }
            ),
        };
        return Err(DataError::format(
            folder,
            format!("no PNG image (*.png) in this class folder ({others}); expected at least one"),
        ));
    }
    files.sort();
    Ok(files)
}

/// One decoded image at `side × side`: 1 (grey) or 3 (RGB) planes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedImage {
    /// 1 or 3.
    pub channels: usize,
    /// `channels` planes of `side × side` bytes (CHW).
    pub planes: Vec<u8>,
}

fn decode_all(files: &[(PathBuf, u8)], side: usize) -> Result<Vec<DecodedImage>, DataError> {
    let decoded: Vec<Result<DecodedImage, DataError>> = files
        .par_iter()
        .map(|(path, _)| read_png(path, side))
        .collect();
    // The first failure in load order, whichever thread met it first.
    decoded.into_iter().collect()
}

fn assemble(
    name: &str,
    images: &[DecodedImage],
    files: &[(PathBuf, u8)],
    channels: usize,
    side: usize,
    classes: &[String],
) -> Result<Dataset, DataError> {
    let mut pixels = Vec::with_capacity(images.len() * channels * side * side);
    for image in images {
        if image.channels == channels {
            pixels.extend_from_slice(&image.planes);
        } else {
            // A grey image in a colour set: the same plane as R, G and B.
            for _ in 0..channels {
                pixels.extend_from_slice(&image.planes);
            }
        }
    }
    let labels = files.iter().map(|&(_, label)| label).collect();
    Dataset::new(name, channels, side, side, pixels, labels, classes.to_vec())
}

/// Decodes one PNG file to `side × side` planes (see the module documentation for the rules;
/// `side` is [`IMAGE_SIDE`] for PAD). A side of 0 is an error.
pub fn read_png(path: &Path, side: usize) -> Result<DecodedImage, DataError> {
    check_side(side)?;
    let file = File::open(path).map_err(|e| file_error(path, "a PNG image", e))?;
    let damaged =
        |e: png::DecodingError| DataError::format(path, format!("not a readable PNG image ({e})"));
    let mut decoder = Decoder::new(BufReader::new(file));
    decoder.set_transformations(Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(damaged)?;
    let (width, height) = reader.info().size();
    let size = reader
        .output_buffer_size()
        .filter(|&bytes| bytes <= MAX_DECODED_BYTES)
        .ok_or_else(|| {
            DataError::format(
                path,
                format!(
                    "a {width}x{height} image; expected at most {} MiB once decoded",
                    MAX_DECODED_BYTES >> 20
                ),
            )
        })?;
    let mut buffer = vec![0u8; size];
    let frame = reader.next_frame(&mut buffer).map_err(damaged)?;
    let (rows, cols) = (frame.height as usize, frame.width as usize);
    let samples = match frame.color_type {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => {
            return Err(DataError::format(
                path,
                "a palette the decoder did not expand; expected grey, RGB or palette colours",
            ))
        }
    };
    let bytes_per_sample = match frame.bit_depth {
        BitDepth::Eight => 1,
        BitDepth::Sixteen => 2,
        other => {
            return Err(DataError::format(
                path,
                format!("{other:?} samples after expansion; expected 8 or 16 bits"),
            ))
        }
    };
    let channels = if samples >= 3 { 3 } else { 1 };
    let pixel_bytes = samples * bytes_per_sample;
    let line = frame.line_size;
    if rows == 0 || cols == 0 || line < cols * pixel_bytes || buffer.len() < rows * line {
        return Err(DataError::format(
            path,
            format!("a {cols}x{rows} frame that does not fit its decoded data"),
        ));
    }
    // Split into planes at the stored size, colour samples only (alpha dropped).
    let mut planes = vec![0u8; channels * rows * cols];
    for r in 0..rows {
        let row = &buffer[r * line..r * line + cols * pixel_bytes];
        for (c, pixel) in row.chunks_exact(pixel_bytes).enumerate() {
            for ch in 0..channels {
                let at = ch * bytes_per_sample;
                let value = if bytes_per_sample == 1 {
                    pixel[at]
                } else {
                    scale_16_to_8(u16::from_be_bytes([pixel[at], pixel[at + 1]]))
                };
                planes[(ch * rows + r) * cols + c] = value;
            }
        }
    }
    Ok(DecodedImage {
        channels,
        planes: Bilinear::new(rows, cols, side).resize_planes(&planes),
    })
}

/// A 16-bit sample as 8 bits: `round(v · 255 / 65535)` (so `257·k` becomes `k`).
pub fn scale_16_to_8(value: u16) -> u8 {
    ((u32::from(value) * 255 + 32767) / 65535) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_samples_round_to_the_nearest_byte() {
        assert_eq!(scale_16_to_8(0), 0);
        assert_eq!(scale_16_to_8(u16::MAX), 255);
        for k in 0..=255u16 {
            assert_eq!(scale_16_to_8(k * 257), k as u8);
        }
        // 128.5 · 257 lies halfway between 128 and 129 in 8-bit terms: rounds up.
        assert_eq!(scale_16_to_8(33025), 129);
        assert_eq!(scale_16_to_8(33024), 128);
    }
}
