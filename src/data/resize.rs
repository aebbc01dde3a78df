//! Brings an 8-bit image plane of any size to a square `side × side` plane (the
//! architecture's input side, 32 for PAD) with Pillow's bilinear filter, byte for byte
//! (`Image.resize((side, side), Image.BILINEAR)` on an `L` image; an RGB image is the same
//! filter on each channel). Used by the loaders whose files are not already `side × side`: every
//! loader when the side differs from its files' (CIFAR-10 and SVHN are 32 × 32, MNIST-format sets
//! 28 × 28), and image folders and `.npy` arrays of any size. Upscaling interpolates between the
//! 2 × 2 nearest pixels; downscaling widens the triangle filter to the scale factor, so every
//! input pixel contributes (an area-weighted average, not a subsampling). Non-square images are
//! stretched, not cropped. A plane already `side × side` is copied unchanged. (Pillow 13 runs
//! the two passes in the other order for tall images shrunk much more in height than in width,
//! which can move a few pixels by one grey level; padsim follows Pillow 12 and earlier there,
//! see [`Bilinear::resize`].)
//!
//! PAD equivalent: `transforms.Resize(32)` on the PIL images torchvision hands it (a bilinear
//! upscale of MNIST's 28 × 28; for square images the same as `Resize((32, 32))`); `side` in
//! place of 32 for other architectures.

use rayon::prelude::*;

/// Fixed-point fraction bits of Pillow's 8-bit resampling (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// The resize of `rows × cols` planes to `side × side`: the filter taps of both axes,
/// computed once for every plane of that size.
#[derive(Clone, Debug)]
pub struct Bilinear {
    rows: usize,
    cols: usize,
    side: usize,
    horizontal: BilinearTaps,
    vertical: BilinearTaps,
}

impl Bilinear {
    /// The filter from planes of `rows × cols` bytes to planes of `side × side` (all at least 1).
    ///
    /// # Panics
    /// If `rows`, `cols` or `side` is 0 (loaders reject such images and sides first).
    pub fn new(rows: usize, cols: usize, side: usize) -> Self {
        assert!(rows > 0 && cols > 0, "a {rows}x{cols} plane has no pixels");
        assert!(side > 0, "cannot resize to a {side}x{side} plane");
        Self {
            rows,
            cols,
            side,
            horizontal: BilinearTaps::new(cols, side),
            vertical: BilinearTaps::new(rows, side),
        }
    }

    /// The output side.
    pub fn side(&self) -> usize {
        self.side
    }

    /// Bytes of one output plane, `side × side`.
    pub fn plane_len(&self) -> usize {
        self.side * self.side
    }

    /// Pillow's two-pass bilinear resize of the row-major `rows × cols` plane `src` into the
    /// `side × side` plane `dst`: rows first into a byte image, then columns (Pillow keeps only
    /// the input rows the vertical pass reads; all of them, here).
    ///
    /// Rows first is what Pillow up to 12 always does. Pillow 13 (python-pillow/Pillow#9549)
    /// runs the vertical pass first when the height shrinks much more than the width (for a
    /// square output, when `rows > side` and `rows + side > 2·cols`), which rounds the
    /// intermediate image differently: for such tall images shrunk to `side`, padsim's bytes
    /// are Pillow 12's and may differ from Pillow 13's by one grey level here and there.
    /// Square planes (every built-in data set) and all upscales are the same in both.
    ///
    /// # Panics
    /// If `src` is not `rows × cols` bytes or `dst` not `side × side`.
    pub fn resize(&self, src: &[u8], dst: &mut [u8]) {
        let (rows, cols, side) = (self.rows, self.cols, self.side);
        assert_eq!(src.len(), rows * cols, "source plane size");
        assert_eq!(dst.len(), side * side, "destination plane size");
        let mut wide = vec![0u8; rows * side];
        for r in 0..rows {
            let row = &src[r * cols..(r + 1) * cols];
            for x in 0..side {
                wide[r * side + x] = self.horizontal.sample(x, |i| row[i]);
            }
        }
        for y in 0..side {
            for x in 0..side {
                dst[y * side + x] = self.vertical.sample(y, |i| wide[i * side + x]);
            }
        }
    }

    /// Every `rows × cols` plane of `src` (back to back, e.g. an NCHW buffer) resized to
    /// `side × side`, back to back in the same order; planes in parallel. A source already
    /// `side × side` is copied unchanged.
    ///
    /// # Panics
    /// If `src` is not a whole number of planes.
    pub fn resize_planes(&self, src: &[u8]) -> Vec<u8> {
        let in_len = self.rows * self.cols;
        assert_eq!(src.len() % in_len, 0, "a whole number of planes");
        if (self.rows, self.cols) == (self.side, self.side) {
            return src.to_vec();
        }
        let plane = self.plane_len();
        let mut out = vec![0u8; src.len() / in_len * plane];
        out.par_chunks_mut(plane)
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

    /// Bytes of a 32 × 32 plane.
    const PLANE: usize = 32 * 32;

    #[test]
    fn constant_planes_stay_constant_up_and_down() {
        for side in [32, 28, 64, 1, 7] {
            for (rows, cols) in [(1, 1), (28, 28), (32, 32), (7, 50), (64, 64), (100, 33)] {
                let filter = Bilinear::new(rows, cols, side);
                let plane = side * side;
                let out =
                    filter.resize_planes(&[vec![0; rows * cols], vec![173; rows * cols]].concat());
                assert_eq!(out.len(), 2 * plane);
                assert!(
                    out[..plane].iter().all(|&v| v == 0),
                    "{rows}x{cols} to {side}"
                );
                assert!(
                    out[plane..].iter().all(|&v| v == 173),
                    "{rows}x{cols} to {side}"
                );
            }
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
        Bilinear::new(64, 64, 32).resize(&src, &mut dst);
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
        assert_eq!(Bilinear::new(32, 32, 32).resize_planes(&src), src);
        let mut dst = vec![0; PLANE];
        Bilinear::new(32, 32, 32).resize(&src, &mut dst);
        assert_eq!(dst, src);
    }

    #[test]
    fn a_plane_already_at_the_side_is_copied_whatever_the_side() {
        for side in [1, 28, 64] {
            let src: Vec<u8> = (0..2 * side * side).map(|i| (i * 13 + 5) as u8).collect();
            let filter = Bilinear::new(side, side, side);
            assert_eq!(filter.resize_planes(&src), src, "side {side}");
            let mut dst = vec![0; side * side];
            filter.resize(&src[..side * side], &mut dst);
            assert_eq!(dst, &src[..side * side]);
        }
    }

    /// FNV-1a, 64 bits.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    #[test]
    fn other_sides_match_pillow_byte_for_byte() {
        // Pillow 13: with `r, c = np.mgrid[0:rows, 0:cols]` and
        // `a = ((r*37 + c*11 + (r*c) % 7 * 20) % 256).astype(np.uint8)`,
        // `out = np.asarray(Image.fromarray(a).resize((side, side), Image.BILINEAR))`:
        // FNV-1a of `out.tobytes()` and `out[side // 2, :6]`. All cases are ones where
        // Pillow 13 runs the horizontal pass first, as every earlier Pillow does (see
        // `Bilinear::resize`).
        let cases: [(usize, usize, usize, u64, [u8; 6]); 7] = [
            (28, 28, 64, 0xd5e8_9856_92dd_3662, [68, 63, 52, 40, 43, 45]),
            (
                37,
                50,
                28,
                0x147e_3b2b_c4e3_79eb,
                [149, 117, 137, 59, 91, 78],
            ),
            (
                32,
                32,
                64,
                0x4337_14e4_8224_49d9,
                [71, 83, 105, 129, 151, 175],
            ),
            (
                64,
                64,
                28,
                0x7437_4ab1_1074_1124,
                [147, 127, 89, 98, 102, 125],
            ),
            (
                28,
                28,
                20,
                0x7f10_6566_49e2_066e,
                [40, 51, 72, 94, 110, 102],
            ),
            (
                7,
                50,
                13,
                0xe6c2_9290_9194_58ac,
                [194, 147, 53, 51, 107, 135],
            ),
            (
                32,
                32,
                28,
                0x503e_bbe5_f6fe_6b0d,
                [93, 140, 178, 173, 167, 204],
            ),
        ];
        for (rows, cols, side, hash, middle_row) in cases {
            let src: Vec<u8> = (0..rows * cols)
                .map(|i| {
                    let (r, c) = (i / cols, i % cols);
                    ((r * 37 + c * 11 + (r * c) % 7 * 20) % 256) as u8
                })
                .collect();
            let out = Bilinear::new(rows, cols, side).resize_planes(&src);
            assert_eq!(out.len(), side * side);
            let row = side / 2 * side;
            assert_eq!(out[row..row + 6], middle_row, "{rows}x{cols} to {side}");
            assert_eq!(fnv1a(&out), hash, "{rows}x{cols} to {side}");
        }
    }
}
