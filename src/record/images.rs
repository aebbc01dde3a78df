//! Image samples as bytes, and tiled PNG grids of them for looking at a run.
//!
//! PAD equivalent: `torchvision.utils.save_image(unorm(x), nrow=8)` in the reference: `unorm`
//! maps [-1, 1] to [0, 1], `save_image` scales to bytes with `x * 255 + 0.5` clamped, and
//! `make_grid` tiles the batch with 2 pixels of padding around every tile. Differences, for
//! readability: the padding is mid-gray instead of black, so dark images stay distinguishable
//! from the border, and tiles can be enlarged by an integer factor.

use super::error::{RecordError, Result};
use super::write_atomically;
use ndarray::{Array4, ArrayView4};
use std::path::Path;

/// Width of the border around and between tiles, in output pixels.
const BORDER: usize = 2;
/// Value of border pixels (and of empty cells in a partly filled last row).
const BORDER_GRAY: u8 = 128;

/// Maps images with values in [-1, 1] to bytes: `round((x + 1) * 127.5)`, clamped to 0..=255.
/// NaN becomes 0, so a diverged model shows as black rather than as an arbitrary value.
pub fn to_u8(images: ArrayView4<f32>) -> Array4<u8> {
    images.mapv(|x| {
        if x.is_nan() {
            0
        } else {
            ((x + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
        }
    })
}

/// Saves images `[n, C, H, W]` (C = 1 for grayscale, 3 for RGB) as one PNG: a grid with
/// `columns` tiles per row (fewer if there are fewer images), each tile enlarged `scale` times
/// by repeating pixels, separated and surrounded by a 2-pixel gray border.
///
/// The file is written under a temporary name in the same directory and renamed into place, so a
/// viewer never sees a half-written image.
pub fn save_grid_png(
    path: impl AsRef<Path>,
    images: ArrayView4<u8>,
    columns: usize,
    scale: u32,
) -> Result<()> {
    let path = path.as_ref();
    let operation = "saving image grid";
    let (count, channels, height, width) = images.dim();
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => {
            return Err(RecordError::invalid(
                path,
                operation,
                format!("images have {channels} channels; expected 1 or 3"),
            ))
        }
    };
    if count == 0 || height == 0 || width == 0 || columns == 0 || scale == 0 {
        return Err(RecordError::invalid(
            path,
            operation,
            format!(
                "nothing to draw: {count} images of {height}x{width}, {columns} columns, scale {scale}"
            ),
        ));
    }
    let scale = scale as usize;
    let columns = columns.min(count);
    let rows = count.div_ceil(columns);
    let tile_height = height * scale;
    let tile_width = width * scale;
    let grid_height = rows * (tile_height + BORDER) + BORDER;
    let grid_width = columns * (tile_width + BORDER) + BORDER;
    let (Ok(png_height), Ok(png_width)) = (u32::try_from(grid_height), u32::try_from(grid_width))
    else {
        return Err(RecordError::invalid(
            path,
            operation,
            format!("grid of {grid_height}x{grid_width} pixels is too large for PNG"),
        ));
    };

    let mut pixels = vec![BORDER_GRAY; grid_height * grid_width * channels];
    for (index, image) in images.outer_iter().enumerate() {
        let top = BORDER + (index / columns) * (tile_height + BORDER);
        let left = BORDER + (index % columns) * (tile_width + BORDER);
        for y in 0..tile_height {
            let row_start = ((top + y) * grid_width + left) * channels;
            let row = &mut pixels[row_start..row_start + tile_width * channels];
            for (x, pixel) in row.chunks_exact_mut(channels).enumerate() {
                for (channel, value) in pixel.iter_mut().enumerate() {
                    *value = image[[channel, y / scale, x / scale]];
                }
            }
        }
    }

    let mut encoded = Vec::new();
    let png_error = |source| RecordError::Png {
        path: path.to_path_buf(),
        operation: "encoding PNG".into(),
        source,
    };
    let mut encoder = png::Encoder::new(&mut encoded, png_width, png_height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;

    write_atomically(path, &encoded, "image grid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn to_u8_maps_range_rounds_and_clamps() {
        let values = [
            -1.0f32,
            1.0,
            0.0,
            -2.0,
            3.0,
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
        ];
        let images = Array4::from_shape_vec((1, 1, 1, values.len()), values.to_vec()).unwrap();
        let bytes = to_u8(images.view());
        assert_eq!(
            bytes.as_slice().unwrap(),
            // 0.0 -> 127.5 rounds half away from zero, as torchvision's `+ 0.5` then truncation.
            &[0, 255, 128, 0, 255, 0, 255, 0]
        );
    }

    #[test]
    fn rejects_unsupported_channels() {
        let images = Array4::<u8>::zeros((1, 2, 4, 4));
        let error = save_grid_png("unused.png", images.view(), 1, 1).unwrap_err();
        assert!(error.to_string().contains("unused.png"), "{error}");
        assert!(!Path::new("unused.png").exists());
    }

    #[test]
    fn grids_of_any_side_and_one_or_three_channels() {
        // Architectures with other input sides: 28 x 28 grey (MNIST as stored), 64 x 64 colour.
        let dir = tempfile::tempdir().unwrap();
        for (channels, side) in [(1usize, 28usize), (3, 64)] {
            let images = Array4::from_shape_fn((3, channels, side, side), |(n, c, h, w)| {
                (n * 50 + c * 20 + h + 2 * w) as u8
            });
            let path = dir.path().join(format!("grid_{channels}_{side}.png"));
            save_grid_png(&path, images.view(), 2, 2).unwrap();
            let decoder =
                png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
            let mut reader = decoder.read_info().unwrap();
            let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
            let frame = reader.next_frame(&mut pixels).unwrap();
            let tile = 2 * side + BORDER;
            assert_eq!(
                (frame.width as usize, frame.height as usize),
                (2 * tile + BORDER, 2 * tile + BORDER)
            );
            let width = frame.width as usize;
            // Image 2 sits in row 1, column 0; its last pixel is output (x, y) at the tile's
            // bottom-right corner.
            let (x, y) = (BORDER + 2 * side - 1, BORDER + tile + 2 * side - 1);
            for c in 0..channels {
                assert_eq!(
                    pixels[(y * width + x) * channels + c],
                    images[[2, c, side - 1, side - 1]],
                    "{channels} x {side}"
                );
            }
        }
    }
}
