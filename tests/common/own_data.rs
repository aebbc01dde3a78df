//! Writers of the files `image_folder` and `npy` data sets are made of: PNG images (with the
//! `png` crate) and `.npy` arrays (with `ndarray-npy`, or byte by byte for the layouts it does
//! not write).

use std::path::Path;

/// Writes a PNG of `width × height` pixels: `data` holds the rows, samples interleaved, 16-bit
/// samples big-endian (as PNG stores them). `palette` (RGB triples) is for indexed images.
pub fn write_png(
    path: &Path,
    (width, height): (u32, u32),
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        png_bytes((width, height), color, depth, data, palette),
    )
    .unwrap();
}

/// The bytes of the PNG [`write_png`] writes.
pub fn png_bytes(
    (width, height): (u32, u32),
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
) -> Vec<u8> {
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if let Some(palette) = palette {
        encoder.set_palette(palette.to_vec());
    }
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    encoded
}

/// An 8-bit grey PNG whose pixel `(r, c)` is `pixel(r, c)`.
pub fn write_grey(path: &Path, (rows, cols): (usize, usize), pixel: impl Fn(usize, usize) -> u8) {
    let data: Vec<u8> = (0..rows * cols)
        .map(|i| pixel(i / cols, i % cols))
        .collect();
    let size = (cols as u32, rows as u32);
    write_png(
        path,
        size,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &data,
        None,
    );
}

/// An 8-bit RGB PNG whose sample `(r, c, ch)` is `sample(r, c, ch)`.
pub fn write_rgb(
    path: &Path,
    (rows, cols): (usize, usize),
    sample: impl Fn(usize, usize, usize) -> u8,
) {
    let data: Vec<u8> = (0..rows * cols * 3)
        .map(|i| sample(i / 3 / cols, i / 3 % cols, i % 3))
        .collect();
    let size = (cols as u32, rows as u32);
    write_png(
        path,
        size,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &data,
        None,
    );
}

/// The bytes of a version 1.0 `.npy` file with dtype `descr`, the given order and shape, and
/// `payload` as the data (written by hand: big-endian and Fortran-order arrays, broken files).
pub fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], payload: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64, as NumPy pads.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(payload);
    bytes
}
