//! Brings an 8-bit image plane of any size to the network's 32 × 32 with Pillow's bilinear
//! filter, byte for byte (`Image.resize((32, 32), Image.BILINEAR)` on an `L` image; an RGB image
//! is the same filter on each channel). Used by the loaders whose files are not 32 × 32:
//! MNIST-format sets ([`super::mnist`]), image folders ([`super::image_folder`]) and `.npy`
//! arrays ([`super::npy`]). Upscaling interpolates between the 2 × 2 nearest pixels;
//! downscaling widens the triangle filter to the scale factor, so every input pixel
//! contributes (an area-weighted average, not a subsampling). Non-square images are stretched,
//! not cropped.
//!
//! PAD equivalent: `transforms.Resize(32)` on the PIL images torchvision hands it (a bilinear
//! upscale of MNIST's 28 × 28; for square images the same as `Resize((32, 32))`).

use super::IMAGE_SIDE;
use rayon::prelude::*;

/// Bytes of one output plane: 32 × 32.
pub const PLANE: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Fixed-point fraction bits of Pillow's 8-bit resampling (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// The resize of `rows × cols` planes to 32 × 32: the filter taps of both axes, computed once
/// for every plane of that size.
#[derive(Clone, Debug)]
pub struct Bilinear {
    rows: usize,
    cols: usize,
    horizontal: BilinearTaps,
    vertical: BilinearTaps,
}

impl Bilinear {
    /// The filter for planes of `rows × cols` bytes (both at least 1).
    ///
    /// # Panics
    /// If `rows` or `cols` is 0 (loaders reject such images first).
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!(rows > 0 && cols > 0, "a {rows}x{cols} plane has no pixels");
        Self {
            rows,
            cols,
            horizontal: BilinearTaps::new(cols, IMAGE_SIDE),
            vertical: BilinearTaps::new(rows, IMAGE_SIDE),
        }
    }

    /// Pillow's two-pass bilinear resize of the row-major `rows × cols` plane `src` into the
    /// 32 × 32 plane `dst`: rows first into a byte image, then columns (Pillow keeps only the
    /// input rows the vertical pass reads; all of them, here).
    ///
    /// # Panics
    /// If `src` is not `rows × cols` bytes or `dst` not 32 × 32.
    pub fn resize(&self, src: &[u8], dst: &mut [u8]) {
        let (rows, cols) = (self.rows, self.cols);
        assert_eq!(src.len(), rows * cols, "source plane size");
        assert_eq!(dst.len(), PLANE, "destination plane size");
        let mut wide = vec![0u8; rows * IMAGE_SIDE];
        for r in 0..rows {
            let row = &src[r * cols..(r + 1) * cols];
            for x in 0..IMAGE_SIDE {
                wide[r * IMAGE_SIDE + x] = self.horizontal.sample(x, |i| row[i]);
            }
        }
        for y in 0..IMAGE_SIDE {
            for x in 0..IMAGE_SIDE {
                dst[y * IMAGE_SIDE + x] = self.vertical.sample(y, |i| wide[i * IMAGE_SIDE + x]);
            }
        }
    }

    /// Every `rows × cols` plane of `src` (back to back, e.g. an NCHW buffer) resized to
    /// 32 × 32, back to back in the same order; planes in parallel. A 32 × 32 source is copied.
    ///
    /// # Panics
    /// If `src` is not a whole number of planes.
    pub fn resize_planes(&self, src: &[u8]) -> Vec<u8> {
        let in_len = self.rows * self.cols;
        assert_eq!(src.len() % in_len, 0, "a whole number of planes");
        if (self.rows, self.cols) == (IMAGE_SIDE, IMAGE_SIDE) {
            return src.to_vec();
        }
        let mut out = vec![0u8; src.len() / in_len * PLANE];
        out.par_chunks_mut(PLANE)
            .zip(src.par_chunks(in_len))
            .for_each(|(dst, plane)| self.resize(plane, dst));
        out
    }
}

/// Pillow's bilinear filter taps for resizing one axis from `in_size` to `out_size` samples
/// (`precompute_coeffs` + `normalize_coeffs_8bpc` in Pillow's `Resample.c`).
///
/// Output sample `x` is centred at `c = (x + 0.5)·in/out` in input coordinates and takes input
/// pixels `i` from `round(c - s)` to `round(c + s)` (clamped to the image) with weight
/// `tri((i + 0.5 - c)/f)`, where `f = max(1, in/out)`, `s = f` and `tri(t) = max(0, 1 - |t|)`;
/// the weights are normalised to sum 1 and rounded to 22-bit fixed point. Near the border
/// fewer taps remain, so the edge pixel is repeated rather than mixed with black.
#[derive(Clone, Debug)]
struct BilinearTaps {
    /// Per output sample: first input index and the fixed-point weights from there on.
    taps: Vec<(usize, Vec<i32>)>,
}

impl BilinearTaps {
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = filter_scale; // bilinear support is 1 pixel, widened when shrinking
        let taps = (0..out_size)
            .map(|x| {
                let center = (x as f64 + 0.5) * scale;
                // Pillow truncates toward zero after adding 0.5 (a C cast), then clamps.
                let first = ((center - support + 0.5) as i64).max(0) as usize;
                let end = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
                let weights: Vec<f64> = (first..end)
                    .map(|i| {
                        let t = (i as f64 - center + 0.5) / filter_scale;
                        (1.0 - t.abs()).max(0.0)
                    })
                    .collect();
                let total: f64 = weights.iter().sum();
                let fixed = weights
                    .iter()
                    .map(|&w| {
                        let w = if total != 0.0 { w / total } else { w };
                        let scaled = w * f64::from(1u32 << PRECISION_BITS);
                        (if scaled < 0.0 {
                            scaled - 0.5
                        } else {
                            scaled + 0.5
                        }) as i32
                    })
                    .collect();
                (first, fixed)
            })
            .collect();
        Self { taps }
    }

    /// One resampled value from `get(i)` for the input indices of output sample `x`, rounded
    /// and clipped to a byte as Pillow's `clip8` does.
    fn sample(&self, x: usize, get: impl Fn(usize) -> u8) -> u8 {
        let (first, weights) = &self.taps[x];
        let mut acc: i64 = 1 << (PRECISION_BITS - 1);
        for (k, &w) in weights.iter().enumerate() {
            acc += i64::from(get(first + k)) * i64::from(w);
        }
        (acc >> PRECISION_BITS).clamp(0, 255) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_planes_stay_constant_up_and_down() {
        for (rows, cols) in [(1, 1), (28, 28), (32, 32), (7, 50), (64, 64), (100, 33)] {
            let filter = Bilinear::new(rows, cols);
            let out =
                filter.resize_planes(&[vec![0; rows * cols], vec![173; rows * cols]].concat());
            assert_eq!(out.len(), 2 * PLANE);
            assert!(out[..PLANE].iter().all(|&v| v == 0), "{rows}x{cols}");
            assert!(out[PLANE..].iter().all(|&v| v == 173), "{rows}x{cols}");
        }
    }

    #[test]
    fn halving_a_linear_ramp_samples_it_at_the_block_centres() {
        // 64 x 64 → 32 x 32 widens the triangle to 4 input pixels per axis (weights 1/8, 3/8,
        // 3/8, 1/8), symmetric about the centre of each 2 x 2 block: on a ramp linear in row and
        // column, interior outputs are the ramp at the block centre (the border taps are cut).
        let src: Vec<u8> = (0..64 * 64)
            .map(|i| ((i / 64) + (i % 64) * 2) as u8)
            .collect();
        let mut dst = vec![0; PLANE];
        Bilinear::new(64, 64).resize(&src, &mut dst);
        for y in 1..31 {
            for x in 1..31 {
                let centre = (2.0 * y as f64 + 0.5) + 2.0 * (2.0 * x as f64 + 0.5);
                let got = f64::from(dst[y * 32 + x]);
                assert!((got - centre).abs() <= 1.0, "({y}, {x}): {got} vs {centre}");
            }
        }
    }

    #[test]
    fn a_32x32_plane_is_copied() {
        let src: Vec<u8> = (0..PLANE).map(|i| (i * 7) as u8).collect();
        assert_eq!(Bilinear::new(32, 32).resize_planes(&src), src);
        let mut dst = vec![0; PLANE];
        Bilinear::new(32, 32).resize(&src, &mut dst);
        assert_eq!(dst, src);
    }
}
