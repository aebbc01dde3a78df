//! Convolution forward on channels-last (`[N, H, W, C]`) maps, for inference only.
//!
//! With the patch matrix stored patch-major, `col[P, K]` (`P = N·H_o·W_o` patches, `K = k·k·C_in`
//! taps ordered `(kh, kw, c)`), a convolution is
//!
//! ```text
//! y[P, C_out] = col[P, K] · Wᵀ[K, C_out] + b        Wᵀ[(kh, kw, c), o] = W[o, c, kh, kw]
//! ```
//!
//! and `y` is already the next layer's channels-last input. Each tap of a patch is a
//! contiguous run of a pixel's `C` values (the `kw` taps of one kernel row are one run), so
//! gathering needs no stride arithmetic per element; and the `gemm` crate runs these shapes
//! 13–33% faster than the channel-major products of training (PAD's encoder at 64 images,
//! one thread: 131/173/162 against 113/130/142 GFLOP/s for conv1/conv2/conv3).
//!
//! Training keeps the channel-major layout of [`super::conv`]: its weight gradients lose in
//! this layout what its forward passes gain. Results agree with [`super::conv::conv2d_forward`]
//! to rounding (the products sum in another order).
//!
//! PAD equivalent: `nn.Conv2d` forward under `torch.no_grad()` with `channels_last` tensors.

use super::conv::{scratch_prefix, ConvGeometry, PatchGrid};
use super::gemm::{matmul_fixed, FixedOperand, Op};
use super::transpose::transpose;
use super::{Activation, Real};

/// `W[C_out, C_in, k, k]` (PyTorch's conv layout) as `Wᵀ[k·k·C_in, C_out]`, taps ordered
/// `(kh, kw, c)`: the right operand of every product of [`conv2d_forward`].
pub fn transposed_weight<T: Real>(weight: &[T], g: &ConvGeometry) -> FixedOperand<T> {
    assert_eq!(weight.len(), g.weight_len(), "channels-last weight size");
    let (taps, cin, cout) = (g.kernel * g.kernel, g.in_channels, g.out_channels);
    // A tiled transpose to rows ordered (c, tap), then whole rows moved to (tap, c): both
    // passes stay in cache, unlike one loop writing C_out apart.
    let mut by_channel = vec![T::zero(); weight.len()];
    transpose(weight, cout, cin * taps, &mut by_channel);
    let mut wt = vec![T::zero(); weight.len()];
    for (row, values) in by_channel.chunks_exact(cout).enumerate() {
        let (c, tap) = (row / taps, row % taps);
        wt[(tap * cin + c) * cout..][..cout].copy_from_slice(values);
    }
    FixedOperand::new(taps * cin, cout, wt)
}

/// Gathers every `k×k` patch of the channels-last `map` (`[N, H, W, C]`, the grid's large
/// map) into `col` (`[N·H_o·W_o, k·k·C]`, zero where the kernel hangs over the padding).
pub fn im2col<T: Real>(map: &[T], grid: &PatchGrid, col: &mut [T]) {
    let (k, s, p, c) = (grid.kernel, grid.stride, grid.padding, grid.channels);
    let (height, width) = (grid.height, grid.width);
    let (oh, ow) = (grid.out_height, grid.out_width);
    assert_eq!(map.len(), grid.map_len(), "channels-last im2col: map size");
    assert_eq!(
        col.len(),
        grid.rows() * grid.cols(),
        "channels-last im2col: col size"
    );
    let row_len = k * c;
    for (patch, taps) in col.chunks_exact_mut(k * row_len).enumerate() {
        let (n, oy, ox) = (patch / (oh * ow), patch / ow % oh, patch % ow);
        // Kernel columns kw in [kw0, kw1) land on real pixels ix = ox·s + kw − p.
        let kw0 = p.saturating_sub(ox * s).min(k);
        let kw1 = (width + p).saturating_sub(ox * s).clamp(kw0, k);
        for (kh, row) in taps.chunks_exact_mut(row_len).enumerate() {
            let iy = (oy * s + kh).wrapping_sub(p);
            if iy >= height || kw0 == kw1 {
                row.fill(T::zero());
                continue;
            }
            let ix0 = ox * s + kw0 - p;
            let pixels = &map[((n * height + iy) * width + ix0) * c..][..(kw1 - kw0) * c];
            row[..kw0 * c].fill(T::zero());
            row[kw0 * c..kw1 * c].copy_from_slice(pixels);
            row[kw1 * c..].fill(T::zero());
        }
    }
}

/// Convolution forward with bias and activation: `x` is `[N, H, W, C_in]`, `weight_t` comes
/// from [`transposed_weight`]. Fills the first `N·H_o·W_o·C_out` elements of `y` with
/// `[N, H_o, W_o, C_out]` (after `activation`), using `col` for the patch matrix; returns
/// `(H_o, W_o)`. Neither buffer is shrunk: passes of different sizes share them without
/// zeroing regrown memory.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward<T: Real>(
    x: &[T],
    batch: usize,
    height: usize,
    width: usize,
    g: &ConvGeometry,
    weight_t: &FixedOperand<T>,
    bias: &[T],
    activation: Activation,
    col: &mut Vec<T>,
    y: &mut Vec<T>,
) -> (usize, usize) {
    assert_eq!(
        weight_t.values().len(),
        g.weight_len(),
        "channels-last conv: weight size"
    );
    assert_eq!(bias.len(), g.out_channels, "channels-last conv: bias size");
    let grid = PatchGrid::new(g.in_channels, batch, height, width, g);
    let (patches, taps) = (grid.cols(), grid.rows());
    // A kernel covering the whole unpadded map reads each image as one patch: no gather.
    let col: &[T] = if grid.is_single_patch() {
        x
    } else {
        let col = scratch_prefix(col, patches * taps);
        im2col(x, &grid, col);
        col
    };
    let y = scratch_prefix(y, patches * g.out_channels);
    matmul_fixed(patches, col, Op::Plain, weight_t, T::zero(), y);
    for pixel in y.chunks_exact_mut(g.out_channels) {
        pixel.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
    }
    activation.forward_in_place(y);
    (grid.out_height, grid.out_width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv;

    /// `[C, N, H, W]` → `[N, H, W, C]`: the transpose of a `C × N·H·W` matrix.
    fn to_channels_last(x: &[f64], c: usize, n: usize, hw: usize) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        transpose(x, c, n * hw, &mut out);
        out
    }

    #[test]
    fn matches_the_channel_major_convolution_for_every_padding_and_stride() {
        let n = 3;
        for (side, kernel, stride, padding) in [
            (8, 4, 2, 1),
            (7, 3, 1, 1),
            (4, 4, 2, 0),
            (9, 4, 2, 2),
            (5, 1, 1, 0),
        ] {
            let g = ConvGeometry {
                in_channels: 5,
                out_channels: 6,
                kernel,
                stride,
                padding,
            };
            let x: Vec<f64> = (0..5 * n * side * side)
                .map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5)
                .collect();
            let w: Vec<f64> = (0..g.weight_len())
                .map(|i| ((i * 11) % 17) as f64 / 9.0 - 0.9)
                .collect();
            let b: Vec<f64> = (0..6).map(|i| i as f64 * 0.1 - 0.2).collect();
            let act = Activation::LeakyRelu(0.2);
            let (mut col, mut expected) = (conv::KeptInput::default(), Vec::new());
            let grid =
                conv::conv2d_forward(&x, n, side, side, &g, &w, &b, act, &mut col, &mut expected);
            let (oh, ow) = (grid.out_height, grid.out_width);
            let expected = to_channels_last(&expected, 6, n, oh * ow);
            let x_last = to_channels_last(&x, 5, n, side * side);
            let (mut col, mut y) = (Vec::new(), Vec::new());
            let size = conv2d_forward(
                &x_last,
                n,
                side,
                side,
                &g,
                &transposed_weight(&w, &g),
                &b,
                act,
                &mut col,
                &mut y,
            );
            assert_eq!(size, (oh, ow));
            assert!(y.len() >= expected.len());
            for (i, (a, e)) in y.iter().zip(&expected).enumerate() {
                assert!(
                    (a - e).abs() < 1e-12,
                    "side {side} k {kernel} s {stride} p {padding}: {i}: {a} vs {e}"
                );
            }
        }
    }
}
