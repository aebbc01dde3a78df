//! MNIST and Fashion-MNIST from their idx files: 60,000 training and 10,000 test images,
//! 1 × 28 × 28, brought to 1 × S × S for an architecture of input side S (32 for PAD). At
//! S = 28 the images are the idx file's bytes, unchanged, whatever [`MnistResize`] says.
//!
//! PAD equivalent: `torchvision.datasets.MNIST` / `FashionMNIST` + `Resize(32)` +
//! `ToTensor()` + `Normalize((0.5,), (0.5,))`. PAD's `Resize(32)` is a bilinear upscale, which
//! [`MnistResize::Bilinear`], padsim's default, reproduces byte for byte (Pillow's fixed-point
//! arithmetic; `Resize(S)` at any other side). [`MnistResize::Pad`] is the alternative: a black
//! border (2 pixels at 32) keeps every stroke pixel as drawn, with no interpolation blur; it
//! cannot shrink, so padding to a side below the files' is an error naming the file.
//!
//! Files (each may also be gzip-compressed, named with `.gz` appended):
//!
//! ```text
//! train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
//!
//! idx format, all integers big-endian:
//!   u32 magic = 0x0000_08_0D: two zero bytes, type 0x08 (unsigned byte), D dimensions
//!   D × u32 dimension sizes
//!   the bytes, row-major (last dimension fastest)
//! images: magic 0x00000803, dims [N, 28, 28]; labels: magic 0x00000801, dims [N], values 0..=9
//! ```

use super::resize::Bilinear;
use super::{check_side, read_file, DataError, Dataset, Split, IMAGE_SIDE, NUM_CLASSES};
use flate2::read::MultiGzDecoder;
use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Magic number of an idx file of unsigned bytes with three dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

/// Magic number of an idx file of unsigned bytes with one dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Which of the two MNIST-format data sets a folder holds (they differ only in class names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MnistFlavour {
    /// Handwritten digits.
    Digits,
    /// Zalando's clothing images.
    Fashion,
}

impl MnistFlavour {
    fn prefix(self) -> &'static str {
        match self {
            Self::Digits => "mnist",
            Self::Fashion => "fashion_mnist",
        }
    }

    /// Class names, indexed by label.
    pub fn class_names(self) -> Vec<String> {
        match self {
            Self::Digits => (0..NUM_CLASSES).map(|d| d.to_string()).collect(),
            Self::Fashion => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

/// How an MNIST image becomes `side × side` (32 × 32 for PAD) when it is not already that size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MnistResize {
    /// Centre the image on a black `side × side` canvas (2 pixels each side for 28 × 28 at
    /// 32); an error when the image is larger than the side.
    Pad,
    /// Bilinear resize, byte-for-byte what PAD's `transforms.Resize(32)` (`Resize(side)`) does
    /// to a PIL image.
    #[default]
    Bilinear,
}

/// Loads the four idx files (each plain or `.gz`) from `dir`, at PAD's 32 × 32:
/// [`load_sized`] at [`IMAGE_SIDE`].
pub fn load(dir: &Path, flavour: MnistFlavour, resize: MnistResize) -> Result<Split, DataError> {
    load_sized(dir, flavour, resize, IMAGE_SIDE)
}

/// Loads the four idx files (each plain or `.gz`) from `dir`, with images of `side × side`
/// ([`IdxImages::to_side`]); a side outside 1 to [`super::MAX_IMAGE_SIDE`] is an error.
pub fn load_sized(
    dir: &Path,
    flavour: MnistFlavour,
    resize: MnistResize,
    side: usize,
) -> Result<Split, DataError> {
    check_side(side)?;
    let split = |stem: &str, name: &str| -> Result<Dataset, DataError> {
        let images_path = find(dir, &format!("{stem}-images-idx3-ubyte"), "images")?;
        let labels_path = find(dir, &format!("{stem}-labels-idx1-ubyte"), "labels")?;
        let images = read_idx_images(&images_path)?;
        let labels = read_idx_labels(&labels_path)?;
        if labels.len() != images.count {
            return Err(DataError::format(
                &labels_path,
                format!(
                    "{} labels; expected {}, one per image of {}",
                    labels.len(),
                    images.count,
                    images_path.display()
                ),
            ));
        }
        let pixels = images
            .to_side(side, resize)
            .map_err(|detail| DataError::format(&images_path, detail))?;
        Dataset::new(
            format!("{}/{name}", flavour.prefix()),
            1,
            side,
            side,
            pixels,
            labels,
            flavour.class_names(),
        )
    };
    let (train, test) = rayon::join(|| split("train", "train"), || split("t10k", "test"));
    Ok(Split {
        train: train?,
        test: test?,
    })
}

/// `dir/base` if it exists, else `dir/base.gz`, else a [`DataError::Missing`] for `dir/base`.
fn find(dir: &Path, base: &str, content: &str) -> Result<PathBuf, DataError> {
    let plain = dir.join(base);
    if plain.exists() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{base}.gz"));
    if gz.exists() {
        return Ok(gz);
    }
    Err(DataError::Missing {
        path: plain,
        expected: format!("MNIST-format {content} as an idx file, or gzipped as {base}.gz"),
    })
}

/// Reads a file, inflating it when it starts with the gzip magic bytes (whatever its name).
fn read_maybe_gzip(path: &Path, expected: &str) -> Result<Vec<u8>, DataError> {
    let bytes = read_file(path, expected)?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut inflated = Vec::with_capacity(bytes.len() * 4);
    MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut inflated)
        .map_err(|source| DataError::Decompress {
            path: path.to_path_buf(),
            format: "gzip",
            source,
        })?;
    Ok(inflated)
}

/// The images of an idx3 file: `count` images of `rows × cols` bytes, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads the header and the dimension sizes of an idx file, checking the magic number and that
/// the payload has exactly the size the dimensions promise. Returns (dims, payload offset).
fn parse_idx(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
) -> Result<(Vec<usize>, usize), DataError> {
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    let found_magic = bytes
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    match found_magic {
        Some(found) if found == magic => {}
        Some(found) => {
            return Err(DataError::Magic {
                path: path.to_path_buf(),
                found,
                expected: magic,
                what,
            })
        }
        None => {
            return Err(DataError::Size {
                path: path.to_path_buf(),
                found: bytes.len() as u64,
                expected: format!("at least the {header_len}-byte idx header ({what})"),
            })
        }
    }
    if bytes.len() < header_len {
        return Err(DataError::Size {
            path: path.to_path_buf(),
            found: bytes.len() as u64,
            expected: format!("at least the {header_len}-byte idx header ({what})"),
        });
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let expected_len = payload.and_then(|p| p.checked_add(header_len as u64));
    if expected_len != Some(bytes.len() as u64) {
        let dims_text: Vec<String> = dims.iter().map(usize::to_string).collect();
        return Err(DataError::Size {
            path: path.to_path_buf(),
            found: bytes.len() as u64,
            expected: match expected_len {
                Some(n) => format!(
                    "{n} ({header_len}-byte header + {} bytes for dimensions {})",
                    n - header_len as u64,
                    dims_text.join("x")
                ),
                None => format!(
                    "a size for dimensions {}, which overflow",
                    dims_text.join("x")
                ),
            },
        });
    }
    Ok((dims, header_len))
}

/// Reads an idx3-ubyte image file (plain or gzip).
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    const WHAT: &str = "idx3-ubyte images: unsigned bytes, 3 dimensions";
    let bytes = read_maybe_gzip(path, WHAT)?;
    let (dims, offset) = parse_idx(path, &bytes, IMAGES_MAGIC, WHAT)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            path,
            format!("images of {rows}x{cols} pixels; expected a non-zero size such as 28x28"),
        ));
    }
    let mut pixels = bytes;
    pixels.drain(..offset);
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Reads an idx1-ubyte label file (plain or gzip), checking every label is below 10.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    const WHAT: &str = "idx1-ubyte labels: unsigned bytes, 1 dimension";
    let bytes = read_maybe_gzip(path, WHAT)?;
    let (_, offset) = parse_idx(path, &bytes, LABELS_MAGIC, WHAT)?;
    let labels = bytes[offset..].to_vec();
    if let Some((record, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        return Err(DataError::Label {
            path: path.to_path_buf(),
            record,
            found: label.to_string(),
            expected: format!("0..={}", NUM_CLASSES - 1),
        });
    }
    Ok(labels)
}

impl IdxImages {
    /// All images brought to `side × side`, back to back: the stored bytes unchanged when they
    /// already are that size, else padded or resized as `resize` says. Fails (with a message
    /// for the caller to attach to the file) for a side of 0 and when padding is asked of an
    /// image larger than the side.
    pub fn to_side(&self, side: usize, resize: MnistResize) -> Result<Vec<u8>, String> {
        if side == 0 {
            return Err(
                "images cannot be brought to 0x0 pixels; expected a side of at least 1".into(),
            );
        }
        if (self.rows, self.cols) == (side, side) {
            return Ok(self.pixels.clone());
        }
        if resize == MnistResize::Pad && (self.rows > side || self.cols > side) {
            return Err(format!(
                "images of {}x{} pixels cannot be padded to {side}x{side}; use bilinear resizing",
                self.rows, self.cols
            ));
        }
        let out_len = side * side;
        let in_len = self.rows * self.cols;
        let bilinear = Bilinear::new(self.rows, self.cols, side);
        let mut out = vec![0u8; self.count * out_len];
        out.par_chunks_mut(out_len)
            .zip(self.pixels.par_chunks(in_len))
            .for_each(|(dst, src)| match resize {
                MnistResize::Pad => pad_into(src, self.rows, self.cols, side, dst),
                MnistResize::Bilinear => bilinear.resize(src, dst),
            });
        Ok(out)
    }
}

/// Copies a `rows × cols` image into the centre of a zeroed `side × side` canvas (an odd
/// margin leaves the extra pixel at the bottom or right).
fn pad_into(src: &[u8], rows: usize, cols: usize, side: usize, dst: &mut [u8]) {
    let top = (side - rows) / 2;
    let left = (side - cols) / 2;
    for (r, src_row) in src.chunks_exact(cols).enumerate() {
        let start = (top + r) * side + left;
        dst[start..start + cols].copy_from_slice(src_row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern28() -> Vec<u8> {
        (0..28 * 28)
            .map(|i| {
                let (r, c) = (i / 28, i % 28);
                ((r * 37 + c * 11 + (r * c) % 7 * 20) % 256) as u8
            })
            .collect()
    }

    #[test]
    fn pad_centres_the_image_on_black() {
        let images = IdxImages {
            count: 1,
            rows: 28,
            cols: 28,
            pixels: vec![200; 28 * 28],
        };
        let out = images.to_side(32, MnistResize::Pad).unwrap();
        for r in 0..32 {
            for c in 0..32 {
                let inside = (2..30).contains(&r) && (2..30).contains(&c);
                assert_eq!(out[r * 32 + c], if inside { 200 } else { 0 }, "({r},{c})");
            }
        }
    }

    /// Pillow 13's output, one hex string per row, for the 28 x 28 `pattern28()`:
    /// `Image.fromarray(a).resize((32, 32), Image.BILINEAR)` with
    /// `r, c = np.mgrid[0:28, 0:28]; a = ((r*37 + c*11 + (r*c) % 7 * 20) % 256).astype(np.uint8)`.
    const PILLOW_BILINEAR_ROWS: [&str; 32] = [
        "0009131c262f39434c566069737c869099a3adb6c0c9d3dde6f0fa730d162029",
        "1e344c647c94acbc718199b1c9a02946b1cee689465e76863b4b6360637b93a9",
        "3e628ab1ae9fc7e492afd79b989c1441cf6d746e4839617e2c4971989586aed2",
        "5f91c8d2cbc6ac6ea8698550496014496740626c6560618f4b78afb9b2adaee1",
        "7fc0dca3acd26e15c03d292f384246521d5a767c858f939f6aa7c38a93b985ef",
        "a0ae936e86963a20945d3041596a87623c897d8ea6b7d4af8995b1786d7d42ae",
        "c04d21819c513b240f6a6e59749e88715cb7bba6c1ebd5bea93497c38338220d",
        "d071575049423b342e91a49d968f88817bdef1eae3dcd5cec86843373029221c",
        "11131a222b333c454d5d676f788089929aaab4bcc5cdd6dfe7ea4c09121a232b",
        "21374f677f97afbf74849cb4cca32c49b4d15a31496179893e4e454e667e96ac",
        "41658db4b1a2cae795b261519b9f1744d270404e4b3c64812f4c749b9889b1d5",
        "629468968f66af71ab6c3b224c63174c6a43656f686364924e7bb2bcb5b0b1e4",
        "82c37c6770727118c3402c323b454955205d797f889296a26daac68d96bc88f2",
        "a3b1967189993d23976033445c6d8a653f8c8091a9bad7b28c98b47b708045b1",
        "c35024849f543e27126d715c77a18b745fbabea9c4eed8c1ac379ac6863b2510",
        "d3745a534c453e373194a7a099928b847ee1f4ede6dfd8d1cb6b463a332c251f",
        "14161d252e363f4850606a727b838c959dadb7bfc8d0d9e2eaed4f0c151d262e",
        "243a526a829ab2c277879fb7cfa62f4cb7d45d344c647c8c41514851698199af",
        "446890b7b4a5cdea98b564549ea21a47d57343514e3f6784324f779e9b8cb4d8",
        "65976b999269b274ae6f3e254f661a4f6d4668726b666795517eb5bfb8b3b4e7",
        "85c67f6a7375741bc6432f353e484c5823607c828b9599a570adc99099bf8bf5",
        "a6b499748c9c40269a6336475f708d68428f8394acbddab58f9bb77e738348b4",
        "c6532787a257412a1570745f7aa48e776296b2acc7f1dbc4af3a9dc9893e2813",
        "d6775d564f48413a3497aaa39c958e878121acf0e9e2dbd4ce6e493d362f2822",
        "171920283139424b53636d757e868f98a0a3b5c2cbd3dce5edf0520f18202931",
        "273d556d859db5c57a8aa2bad2a9324fbad760374f677f8f44544b546c849cb2",
        "476b93bab7a8d0ed9bb86757a1a51d4ad876465451426a8735527aa19e8fb7db",
        "689a6e9c956cb577b172412852691d5270496b756e696a985481b8c2bbb6b7ea",
        "88c9826d7678771ec9463238414b4f5b26637f858e989ca873b0cc939cc27988",
        "a9b79c778f9f43299d66394a6273906b459286978c89ddb8929eba8176862a07",
        "c9562a8aa55a442d187377627da7917a6599b5af6f65dec7b23da0cc8c412b16",
        "e781645c544c443c359eb1a9a1999189821baef6eee6ded6cf684b433b332b24",
    ];

    #[test]
    fn bilinear_matches_pillow_byte_for_byte() {
        let images = IdxImages {
            count: 1,
            rows: 28,
            cols: 28,
            pixels: pattern28(),
        };
        let out = images.to_side(32, MnistResize::Bilinear).unwrap();
        for (r, hex) in PILLOW_BILINEAR_ROWS.iter().enumerate() {
            for c in 0..32 {
                let expected = u8::from_str_radix(&hex[2 * c..2 * c + 2], 16).unwrap();
                assert_eq!(out[r * 32 + c], expected, "pixel ({r}, {c})");
            }
        }
    }

    #[test]
    fn bilinear_keeps_a_constant_image_constant() {
        let images = IdxImages {
            count: 2,
            rows: 28,
            cols: 28,
            pixels: [vec![0; 784], vec![255; 784]].concat(),
        };
        let out = images.to_side(32, MnistResize::Bilinear).unwrap();
        assert!(out[..1024].iter().all(|&v| v == 0));
        assert!(out[1024..].iter().all(|&v| v == 255));
    }

    #[test]
    fn at_the_files_side_the_bytes_are_kept_whatever_the_resize() {
        let images = IdxImages {
            count: 2,
            rows: 28,
            cols: 28,
            pixels: [pattern28(), pattern28().iter().map(|v| !v).collect()].concat(),
        };
        for resize in [MnistResize::Pad, MnistResize::Bilinear] {
            assert_eq!(images.to_side(28, resize).unwrap(), images.pixels);
        }
    }

    #[test]
    fn pad_centres_on_any_larger_side_and_refuses_smaller_ones() {
        let images = IdxImages {
            count: 1,
            rows: 28,
            cols: 28,
            pixels: pattern28(),
        };
        // 64: 18 pixels each side; 31: 1 above and left, 2 below and right.
        for (side, margin) in [(64, 18), (31, 1)] {
            let out = images.to_side(side, MnistResize::Pad).unwrap();
            assert_eq!(out.len(), side * side);
            for r in 0..side {
                for c in 0..side {
                    let inside =
                        (margin..margin + 28).contains(&r) && (margin..margin + 28).contains(&c);
                    let expected = if inside {
                        pattern28()[(r - margin) * 28 + (c - margin)]
                    } else {
                        0
                    };
                    assert_eq!(out[r * side + c], expected, "side {side} ({r},{c})");
                }
            }
        }
        let err = images.to_side(20, MnistResize::Pad).unwrap_err();
        assert_eq!(
            err,
            "images of 28x28 pixels cannot be padded to 20x20; use bilinear resizing"
        );
        assert!(images.to_side(0, MnistResize::Bilinear).is_err());
        assert!(images.to_side(0, MnistResize::Pad).is_err());
    }

    #[test]
    fn bilinear_to_other_sides_is_the_shared_filter() {
        let images = IdxImages {
            count: 2,
            rows: 28,
            cols: 28,
            pixels: [pattern28(), vec![90; 784]].concat(),
        };
        for side in [20, 64] {
            let out = images.to_side(side, MnistResize::Bilinear).unwrap();
            let expected = Bilinear::new(28, 28, side).resize_planes(&images.pixels);
            assert_eq!(out, expected, "side {side}");
            assert!(out[side * side..].iter().all(|&v| v == 90));
        }
    }

    #[test]
    fn idx_header_errors() {
        let p = Path::new("train-labels-idx1-ubyte");
        let mut labels = LABELS_MAGIC.to_be_bytes().to_vec();
        labels.extend(3u32.to_be_bytes());
        labels.extend([1, 2]);
        let err = parse_idx(p, &labels, LABELS_MAGIC, "labels")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "train-labels-idx1-ubyte: size 10 bytes; expected 11 (8-byte header + 3 bytes for dimensions 3)"
        );
        let err = parse_idx(p, &labels, IMAGES_MAGIC, "images")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "train-labels-idx1-ubyte: magic number 0x00000801; expected 0x00000803 (images)"
        );
        assert!(parse_idx(p, &[0, 0], LABELS_MAGIC, "labels").is_err());
    }
}
