//! Matrix transpose, `dst[j·rows + i] = src[i·cols + j]` for a `rows×cols` row-major `src`
//! (or `dst += srcᵀ`).
//!
//! PAD equivalent: none in the reference; PyTorch's `.t().contiguous()` inside its GEMM calls.
//! Here it lays out GEMM operands the way the `gemm` crate reads fastest (weight gradients),
//! turns single-patch convolutions' im2col into a copy, and reorders weights for the
//! channels-last encoder.
//!
//! Square tiles are moved: a cache line of each source row is read into a local tile and
//! written down its columns, so the matrices' power-of-two pitches do not map a whole tile
//! column onto one cache set (an element-by-element loop over the matrix spent 2 ns per element
//! on PAD's gradients, the tiles about 0.7 ns). Edges go element by element. An AVX register
//! transpose of 8×8 tiles was measured too (3.6% -> 2.8% of a one-thread cycle) and not kept:
//! the pass is bound by memory traffic.

use super::Real;

/// Side of the tiles (a 64-byte line of `f32`).
const TILE: usize = 16;

/// `dst = srcᵀ` for a `rows×cols` row-major `src`.
pub fn transpose<T: Real>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    transpose_with(src, rows, cols, dst, |d, v| *d = v);
}

/// `dst = combine(dst, srcᵀ)` element by element, for a `rows×cols` row-major `src` (e.g.
/// `dst += srcᵀ`).
pub fn transpose_with<T: Real>(
    src: &[T],
    rows: usize,
    cols: usize,
    dst: &mut [T],
    combine: impl Fn(&mut T, T),
) {
    assert_eq!(src.len(), rows * cols, "transpose: source size");
    assert_eq!(dst.len(), rows * cols, "transpose: destination size");
    let (full_rows, full_cols) = (rows / TILE * TILE, cols / TILE * TILE);
    let mut tile = [[T::zero(); TILE]; TILE];
    for i0 in (0..full_rows).step_by(TILE) {
        for j0 in (0..full_cols).step_by(TILE) {
            for (r, line) in tile.iter_mut().enumerate() {
                line.copy_from_slice(&src[(i0 + r) * cols + j0..][..TILE]);
            }
            for c in 0..TILE {
                let out: &mut [T; TILE] = (&mut dst[(j0 + c) * rows + i0..][..TILE])
                    .try_into()
                    .expect("tile-wide row");
                for r in 0..TILE {
                    combine(&mut out[r], tile[r][c]);
                }
            }
        }
    }
    let mut single = |i: usize, j: usize| combine(&mut dst[j * rows + i], src[i * cols + j]);
    for i in 0..full_rows {
        (full_cols..cols).for_each(|j| single(i, j));
    }
    for i in full_rows..rows {
        (0..cols).for_each(|j| single(i, j));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_and_edges_match_the_definition_on_ragged_shapes() {
        // Whole tiles, edge rows and columns, shapes smaller than one tile, in f32 and f64.
        let shapes = [
            (1, 1),
            (3, 40),
            (8, 8),
            (16, 16),
            (17, 33),
            (48, 64),
            (64, 5),
            (35, 16),
            (40, 9),
        ];
        for (rows, cols) in shapes {
            let src32: Vec<f32> = (0..rows * cols).map(|v| v as f32 * 0.5 - 7.0).collect();
            let src64: Vec<f64> = src32.iter().map(|&v| v as f64).collect();
            let mut dst32 = vec![f32::NAN; src32.len()];
            transpose(&src32, rows, cols, &mut dst32);
            let mut dst64 = vec![f64::NAN; src64.len()];
            transpose(&src64, rows, cols, &mut dst64);
            let mut added = vec![1.0; src64.len()];
            transpose_with(&src64, rows, cols, &mut added, |d, v| *d += v);
            for i in 0..rows {
                for j in 0..cols {
                    let want = src32[i * cols + j];
                    let at = j * rows + i;
                    assert_eq!(dst32[at], want, "f32 {rows}x{cols} ({i},{j})");
                    assert_eq!(dst64[at], want as f64, "f64 {rows}x{cols} ({i},{j})");
                    assert_eq!(added[at], 1.0 + want as f64, "add {rows}x{cols} ({i},{j})");
                }
            }
        }
    }
}
