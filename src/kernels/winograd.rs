//! Convolution forward by Winograd's minimal filtering F(2×2, 2×2), on channels-last
//! (`[N, H, W, C]`) maps, for inference only: PAD's 4×4 stride-2 areas in 9/16 of the
//! multiplications of im2col + GEMM.
//!
//! **Stride phases.** With `x̃` the zero-padded input, a 4×4 stride-2 convolution
//! `y[o] = Σ_k w[k]·x̃[2o + k]` (per axis) splits by the parity `b` of the tap `k = 2a + b`
//! into 2-tap, stride-1 correlations of the phase maps `x̃_b[j] = x̃[2j + b]`:
//!
//! ```text
//! y[o] = Σ_b Σ_{a∈{0,1}} w[2a + b]·x̃_b[o + a]
//! ```
//!
//! so in 2-D the layer is a 2×2 stride-1 convolution over `4·C_in` channels `(b_y, b_x, c)`.
//!
//! **F(2, 2).** Two outputs of a 2-tap correlation from three inputs `d` in three products:
//!
//! ```text
//! y = Aᵀ[(G g) ⊙ (Bᵀ d)]    Bᵀ = [1 −1 0; 0 1 0; 0 −1 1]   G = [1 0; 1 1; 0 1]
//!                          Aᵀ = [1 1 0; 0 1 1]
//! ```
//!
//! (every coefficient 0 or ±1: the transforms only add and subtract). Nested in 2-D, each
//! 2×2 output tile `Y = Aᵀ M A` needs the nine products `M_ξ = Σ_c U_ξ[c]·V_ξ[c]` of
//! `U = G g Gᵀ` and `V = Bᵀ d B` (3×3 input tiles), that is nine GEMMs
//!
//! ```text
//! M_ξ[tiles, C_out] = V_ξ[tiles, 4·C_in] · U_ξ[4·C_in, C_out]      ξ ∈ 3×3
//! ```
//!
//! `9·(HW/4)·4C_in·C_out` multiply-adds against im2col's `HW·16·C_in·C_out`. Results agree
//! with [`super::channels_last::conv2d_forward`] to rounding. Training keeps im2col: its
//! weight gradient needs the patch matrix anyway.
//!
//! Images go through in blocks of about `BLOCK_TILES` tiles (transform, nine products,
//! transform back), so a block's `V_ξ` and `M_ξ` stay in cache; the transforms run in
//! AVX-512 where the CPU has it (see [`super::wide`]).
//!
//! PAD equivalent: `nn.Conv2d(C_in, C_out, 4, 2, p)` forward under `torch.no_grad()` (same
//! function, another algorithm: results differ to rounding).

use super::conv::{scratch_prefix, ConvGeometry};
use super::gemm::{matmul_fixed, FixedOperand, Op};
use super::wide::wide;
use super::{Activation, Real};

/// The nine transformed points of a tile, `ξ = (u, v)` in row-major order.
const POINTS: usize = 9;

/// Whether [`conv2d_forward`] computes layers of geometry `g`: 4×4 kernels of stride 2.
pub fn supports(g: &ConvGeometry) -> bool {
    g.kernel == 4 && g.stride == 2
}

/// Whether a [`supports`]ed layer on a `height × width` map runs faster this way than by
/// im2col: it needs fewer multiplications (`9·4·C_in·C_out` per 2×2 output tile against
/// `16·C_in·C_out` per output; not for PAD's latent head, whose 1×1 output fills a quarter
/// of its one tile), and its products' inner dimension `4·C_in` is long enough for the GEMM
/// to run near its peak (not for V1's 3 colours, 12: slower in 3 of 4 rounds, measured).
pub fn pays_off(g: &ConvGeometry, height: usize, width: usize) -> bool {
    const MIN_INNER: usize = 64;
    match (g.conv_output(height), g.conv_output(width)) {
        (Some(oh), Some(ow)) if supports(g) && 4 * g.in_channels >= MIN_INNER => {
            9 * tiles(oh) * tiles(ow) < 4 * oh * ow
        }
        _ => false,
    }
}

/// The synapses of a [`supports`]ed layer transformed once: `U_ξ[(b_y, b_x, c), o]`, nine
/// `4·C_in × C_out` matrices, from the channels-last `Wᵀ[(k_y, k_x, c), o]` of
/// [`super::channels_last::transposed_weight`]. Every entry is a sum of whole rows of `Wᵀ`.
pub fn transformed_weight<T: Real>(
    weight_t: &FixedOperand<T>,
    g: &ConvGeometry,
) -> Vec<FixedOperand<T>> {
    let weight_t = weight_t.values();
    assert!(supports(g), "Winograd: only 4x4 kernels of stride 2");
    assert_eq!(weight_t.len(), g.weight_len(), "Winograd: weight size");
    let (cin, cout) = (g.in_channels, g.out_channels);
    let rows = 4 * cin;
    // G's rows as the taps (0 or 1) of a 2-tap filter each transformed point sums.
    const G: [&[usize]; 3] = [&[0], &[0, 1], &[1]];
    let mut u = Vec::with_capacity(POINTS);
    for point in 0..POINTS {
        let mut dst = vec![T::zero(); rows * cout];
        let (down, across) = (G[point / 3], G[point % 3]);
        for (row, dst) in dst.chunks_exact_mut(cout).enumerate() {
            let (phase, c) = (row / cin, row % cin);
            let (by, bx) = (phase / 2, phase % 2);
            for &ay in down {
                for &ax in across {
                    let tap = (2 * ay + by) * 4 + 2 * ax + bx;
                    let src = &weight_t[(tap * cin + c) * cout..][..cout];
                    dst.iter_mut().zip(src).for_each(|(d, &w)| *d += w);
                }
            }
        }
        u.push(FixedOperand::new(rows, cout, dst));
    }
    u
}

/// Elements from one point's matrix to the next in a buffer of nine, each `len` long. The
/// transforms write (or read) all nine at once; a skew of a few cache lines keeps them off
/// the same cache sets, where power-of-two sizes would put them.
fn point_stride(len: usize) -> usize {
    const SKEW: usize = 64;
    len + SKEW
}

/// Tiles of a map whose output is `out` pixels along one axis (the last may hang over).
fn tiles(out: usize) -> usize {
    out.div_ceil(2)
}

/// `dst ← a − b` elementwise.
#[inline(always)]
fn difference<T: Real>(dst: &mut [T], a: &[T], b: &[T]) {
    for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
        *d = a - b;
    }
}

/// `V_ξ` of every tile: `v` holds nine `[tiles, 4·C]` matrices, tiles ordered
/// `(n, tile row, tile column)`. Input rows and columns outside the map read as zeros.
/// `across` holds a tile's half-transformed rows.
#[inline(always)]
fn transform_input<T: Real>(
    x: &[T],
    (batch, height, width): (usize, usize, usize),
    channels: usize,
    padding: usize,
    (tiles_y, tiles_x): (usize, usize),
    v: &mut [T],
    across: &mut [T],
) {
    let c = channels;
    let (kc, per_point) = (4 * c, point_stride(batch * tiles_y * tiles_x * 4 * c));
    let zeros = vec![T::zero(); c];
    // Pixel (padded row, padded column) of image n, as a run of its C channels.
    let pixel = |n: usize, py: usize, px: usize| -> &[T] {
        let (iy, ix) = (py.wrapping_sub(padding), px.wrapping_sub(padding));
        if iy < height && ix < width {
            &x[((n * height + iy) * width + ix) * c..][..c]
        } else {
            &zeros
        }
    };
    for n in 0..batch {
        for ty in 0..tiles_y {
            for tx in 0..tiles_x {
                let tile = (n * tiles_y + ty) * tiles_x + tx;
                for (by, bx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    // Input (r, s) of this phase's 3×3 tile is padded pixel
                    // (4·ty + 2r + b_y, 4·tx + 2s + b_x).
                    let d = |r: usize, s: usize| pixel(n, 4 * ty + 2 * r + by, 4 * tx + 2 * s + bx);
                    // Bᵀ along x: across[(r, v)].
                    for r in 0..3 {
                        let (d0, d1, d2) = (d(r, 0), d(r, 1), d(r, 2));
                        let row = &mut across[3 * r * c..][..3 * c];
                        let (t0, rest) = row.split_at_mut(c);
                        let (t1, t2) = rest.split_at_mut(c);
                        difference(t0, d0, d1);
                        t1.copy_from_slice(d1);
                        difference(t2, d2, d1);
                    }
                    // Bᵀ along y, straight into the nine matrices.
                    let column = (2 * by + bx) * c;
                    for vx in 0..3 {
                        let t = |r: usize| &across[(3 * r + vx) * c..][..c];
                        let at = |uy: usize| (uy * 3 + vx) * per_point + tile * kc + column;
                        difference(&mut v[at(0)..][..c], t(0), t(1));
                        v[at(1)..][..c].copy_from_slice(t(1));
                        difference(&mut v[at(2)..][..c], t(2), t(1));
                    }
                }
            }
        }
    }
}

/// `y[n, 2·ty + a, 2·tx + b] ← f(Σ_{u∈{a,a+1}} Σ_{v∈{b,b+1}} M_(u,v)[tile] + bias)`:
/// `Aᵀ M A`, dropping outputs past the map's edge. `across` holds a tile's half-transformed
/// rows.
#[inline(always)]
fn transform_output<T: Real>(
    m: &[T],
    (batch, out_height, out_width): (usize, usize, usize),
    (bias, activation): (&[T], Activation),
    (tiles_y, tiles_x): (usize, usize),
    y: &mut [T],
    across: &mut [T],
) {
    let co = bias.len();
    let per_point = point_stride(batch * tiles_y * tiles_x * co);
    for n in 0..batch {
        for ty in 0..tiles_y {
            for tx in 0..tiles_x {
                let tile = (n * tiles_y + ty) * tiles_x + tx;
                let point = |u: usize, v: usize| &m[(u * 3 + v) * per_point + tile * co..][..co];
                // Aᵀ along x: across[(u, b)] = M(u, b) + M(u, b + 1).
                for u in 0..3 {
                    for b in 0..2 {
                        let dst = &mut across[(2 * u + b) * co..][..co];
                        let (p, q) = (point(u, b), point(u, b + 1));
                        for ((d, &p), &q) in dst.iter_mut().zip(p).zip(q) {
                            *d = p + q;
                        }
                    }
                }
                for a in 0..2 {
                    let oy = 2 * ty + a;
                    for b in 0..2 {
                        let ox = 2 * tx + b;
                        if oy >= out_height || ox >= out_width {
                            continue;
                        }
                        let (p, q) = (
                            &across[(2 * a + b) * co..][..co],
                            &across[(2 * (a + 1) + b) * co..][..co],
                        );
                        let dst = &mut y[((n * out_height + oy) * out_width + ox) * co..][..co];
                        for (((d, &p), &q), &b) in dst.iter_mut().zip(p).zip(q).zip(bias) {
                            *d = p + q + b;
                        }
                        activation.forward_in_place(dst);
                    }
                }
            }
        }
    }
}

/// Images transformed, multiplied and transformed back at a time: about [`BLOCK_TILES`]
/// tiles, so that the nine `V_ξ` and `M_ξ` of a block stay in the core's cache between the
/// three steps.
fn block_images(tiles_per_image: usize) -> usize {
    (BLOCK_TILES / tiles_per_image.max(1)).max(1)
}

/// See [`block_images`].
const BLOCK_TILES: usize = 128;

/// The work buffers of [`conv2d_forward`], kept between calls (never shrunk).
#[derive(Debug, Default)]
pub struct WinogradScratch<T> {
    /// The nine `V_ξ`.
    input: Vec<T>,
    /// The nine `M_ξ`.
    products: Vec<T>,
    /// One tile's half-transformed rows.
    across: Vec<T>,
}

/// Convolution forward with bias and activation of a [`supports`]ed layer: `x` is
/// `[N, H, W, C_in]`, `u` (nine matrices) comes from [`transformed_weight`]. Fills the first
/// `N·H_o·W_o·C_out` elements of `y` with `[N, H_o, W_o, C_out]` (after `activation`); returns
/// `(H_o, W_o)`. Single-threaded apart from the products.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward<T: Real>(
    x: &[T],
    batch: usize,
    height: usize,
    width: usize,
    g: &ConvGeometry,
    u: &[FixedOperand<T>],
    bias: &[T],
    activation: Activation,
    scratch: &mut WinogradScratch<T>,
    y: &mut Vec<T>,
) -> (usize, usize) {
    assert!(supports(g), "Winograd: only 4x4 kernels of stride 2");
    let (cin, cout) = (g.in_channels, g.out_channels);
    assert_eq!(
        x.len(),
        batch * height * width * cin,
        "Winograd: input size"
    );
    let weight_sizes = u.iter().map(|u| u.values().len());
    assert!(
        u.len() == POINTS && weight_sizes.into_iter().all(|len| len == 4 * cin * cout),
        "Winograd: weight size"
    );
    assert_eq!(bias.len(), cout, "Winograd: bias size");
    let (Some(oh), Some(ow)) = (g.conv_output(height), g.conv_output(width)) else {
        panic!(
            "kernel 4 with padding {} does not fit a {height}x{width} map",
            g.padding
        )
    };
    let grid = (tiles(oh), tiles(ow));
    let kc = 4 * cin;
    let images = block_images(grid.0 * grid.1).min(batch.max(1));
    let count = images * grid.0 * grid.1;
    let WinogradScratch {
        input,
        products,
        across,
    } = scratch;
    let v = scratch_prefix(input, POINTS * point_stride(count * kc));
    let m = scratch_prefix(products, POINTS * point_stride(count * cout));
    let across = scratch_prefix(across, (9 * cin).max(6 * cout));
    let y = scratch_prefix(y, batch * oh * ow * cout);
    for (x, y) in x
        .chunks(images * height * width * cin)
        .zip(y.chunks_mut(images * oh * ow * cout))
    {
        let images = x.len() / (height * width * cin);
        let count = images * grid.0 * grid.1;
        let (v_len, m_len) = (count * kc, count * cout);
        let shape = (images, height, width);
        wide(
            #[inline(always)]
            || transform_input(x, shape, cin, g.padding, grid, v, across),
        );
        for ((m, v), u) in m
            .chunks_exact_mut(point_stride(m_len))
            .zip(v.chunks_exact(point_stride(v_len)))
            .zip(u)
        {
            let (v, m) = (&v[..v_len], &mut m[..m_len]);
            matmul_fixed(count, v, Op::Plain, u, T::zero(), m);
        }
        let epilogue = (bias, activation);
        wide(
            #[inline(always)]
            || transform_output(m, (images, oh, ow), epilogue, grid, y, across),
        );
    }
    (oh, ow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::channels_last;

    #[test]
    fn equals_im2col_for_every_padding_and_map_side() {
        let (n, cin, cout) = (2, 5, 7);
        // Even and odd outputs (a last tile hanging over the edge), padding 0 to 2.
        for (side, padding) in [(8, 1), (16, 1), (6, 1), (4, 0), (7, 0), (9, 2), (10, 2)] {
            let g = ConvGeometry {
                in_channels: cin,
                out_channels: cout,
                kernel: 4,
                stride: 2,
                padding,
            };
            let x: Vec<f64> = (0..n * side * side * cin)
                .map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5)
                .collect();
            let w: Vec<f64> = (0..g.weight_len())
                .map(|i| ((i * 11) % 17) as f64 / 9.0 - 0.9)
                .collect();
            let b: Vec<f64> = (0..cout).map(|i| i as f64 * 0.1 - 0.2).collect();
            let act = Activation::LeakyRelu(0.2);
            let (mut col, mut expected) = (Vec::new(), Vec::new());
            let wt = channels_last::transposed_weight(&w, &g);
            let size = channels_last::conv2d_forward(
                &x,
                n,
                side,
                side,
                &g,
                &wt,
                &b,
                act,
                &mut col,
                &mut expected,
            );
            let (mut scratch, mut y) = (WinogradScratch::default(), Vec::new());
            let u = transformed_weight(&wt, &g);
            for _ in 0..2 {
                let got = conv2d_forward(&x, n, side, side, &g, &u, &b, act, &mut scratch, &mut y);
                assert_eq!(got, size);
                let len = n * size.0 * size.1 * cout;
                for (i, (a, e)) in y[..len].iter().zip(&expected[..len]).enumerate() {
                    assert!(
                        (a - e).abs() < 1e-12,
                        "side {side} p {padding}: {i}: {a} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_single_tap_lands_where_the_direct_definition_puts_it() {
        // One input pixel, one kernel tap: a shifted copy, whose place tests the phase
        // bookkeeping independently of im2col.
        let g = ConvGeometry {
            in_channels: 1,
            out_channels: 1,
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        let side = 8;
        for (tap_y, tap_x) in [(0, 0), (1, 3), (2, 1), (3, 2)] {
            let mut w = vec![0.0f64; 16];
            w[tap_y * 4 + tap_x] = 2.0;
            let u = transformed_weight(&channels_last::transposed_weight(&w, &g), &g);
            let (oy, ox) = (2, 1);
            let mut x = vec![0.0f64; side * side];
            // y[oy, ox] reads x[2·oy + k_y − p, 2·ox + k_x − p].
            x[(2 * oy + tap_y - 1) * side + 2 * ox + tap_x - 1] = 1.5;
            let (mut scratch, mut y) = (WinogradScratch::default(), Vec::new());
            let act = Activation::Identity;
            conv2d_forward(&x, 1, side, side, &g, &u, &[0.0], act, &mut scratch, &mut y);
            for (i, &value) in y[..16].iter().enumerate() {
                let expected = if i == oy * 4 + ox { 3.0 } else { 0.0 };
                assert_eq!(value, expected, "tap ({tap_y}, {tap_x}) output {i}");
            }
        }
    }
}
