//! 2-D convolution and transposed convolution, forward and backward, on channel-major
//! (`[C, N, H, W]`) maps, by im2col + GEMM.
//!
//! Convolution (`nn.Conv2d`), with `col = im2col(x)` of shape `[C_in·k·k, N·H_o·W_o]`:
//!
//! ```text
//! y  = W·col + b                 W viewed [C_out, C_in·k·k]
//! dW = dy·colᵀ    db = Σ dy      dx = col2im(Fᵀ·dy)
//! ```
//!
//! Transposed convolution (`nn.ConvTranspose2d`) is the adjoint of a convolution that maps the
//! large output back to the small input, so the two helpers swap roles:
//!
//! ```text
//! y  = col2im(Wᵀ·x) + b          W viewed [C_in, C_out·k·k]
//! dW = x·im2col(dy)ᵀ   db = Σ dy  dx = F·im2col(dy)
//! ```
//!
//! `F` is the matrix the error travels back through. Exact backprop passes `F = W`; other
//! plasticity rules pass their own feedback synapses (see `plasticity`).
//!
//! PAD equivalent: `nn.Conv2d(..., k, s, p)` and `nn.ConvTranspose2d(..., k, s, p)` in the
//! reference encoder and generator, with PyTorch's weight layouts and semantics (cross-
//! correlation, zero padding).
//!
//! Parallelism: im2col is split over channels, col2im over (channel, image) slabs, each slab
//! summed in a fixed order, GEMM splits only its output, and a layer's synaptic and input
//! gradients (independent) run side by side, each product on half the threads (one GEMM on
//! each of two threads scales better than two GEMMs split across both), so every result is
//! bit-identical whatever the number of threads.
//!
//! Buffers (`col`, `y`, `dx`, and the [`ConvScratch`]) are passed in and reused when their
//! length already fits: an area calls the same shapes every cycle, so training does not
//! allocate or zero its large matrices again. A fresh synaptic gradient is written over stale
//! memory ([`Update::Overwrite`]) rather than zeroed and then accumulated into.
//!
//! Under bfloat16 products ([`super::gemm::Precision::Bf16`]) the patch matrices, which the
//! products would round anyway, are built rounded ([`im2col_rounded`]): a convolution keeps
//! its `col` so ([`KeptInput`]) and a transposed convolution its error's patches. Same bits as
//! rounding the f32 matrices, half the memory traffic.

use super::bf16;
use super::gemm::{
    bf16_view, matmul_bf16_column_blocks, matmul_on, matmul_rounded, rounds_to_bf16, Op,
};
use super::pointwise::zip_in_place;
use super::transpose::{transpose, transpose_with};
use super::{Activation, Real};
use rayon::prelude::*;

/// The static shape of a convolution: channels, square kernel, stride and zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvGeometry {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl ConvGeometry {
    /// Output side of a convolution applied to a map of side `input`, or `None` when the
    /// kernel does not fit.
    pub fn conv_output(&self, input: usize) -> Option<usize> {
        let padded = input + 2 * self.padding;
        (padded >= self.kernel && self.stride > 0).then(|| (padded - self.kernel) / self.stride + 1)
    }

    /// Output side of a transposed convolution applied to a map of side `input`.
    pub fn transpose_output(&self, input: usize) -> Option<usize> {
        ((input.max(1) - 1) * self.stride + self.kernel).checked_sub(2 * self.padding)
    }

    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> usize {
        self.in_channels * self.out_channels * self.kernel * self.kernel
    }
}

/// How a kernel slides over a (large) map of `channels × batch × height × width`: the grid of
/// patches that im2col gathers and col2im scatters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGrid {
    /// Channels of the large map.
    pub channels: usize,
    /// Images in the batch.
    pub batch: usize,
    /// Height of the large map.
    pub height: usize,
    /// Width of the large map.
    pub width: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    pub padding: usize,
    /// Patch rows (the small map's height).
    pub out_height: usize,
    /// Patch columns (the small map's width).
    pub out_width: usize,
}

impl PatchGrid {
    /// The grid of a kernel with geometry `g` sliding over a map of `channels` channels.
    /// Panics when the kernel does not fit the map.
    pub fn new(
        channels: usize,
        batch: usize,
        height: usize,
        width: usize,
        g: &ConvGeometry,
    ) -> Self {
        let out_height = g.conv_output(height);
        let out_width = g.conv_output(width);
        let (Some(out_height), Some(out_width)) = (out_height, out_width) else {
            panic!(
                "kernel {} with padding {} does not fit a {height}x{width} map",
                g.kernel, g.padding
            )
        };
        PatchGrid {
            channels,
            batch,
            height,
            width,
            kernel: g.kernel,
            stride: g.stride,
            padding: g.padding,
            out_height,
            out_width,
        }
    }

    /// Rows of the column matrix: `channels·k·k`.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// Columns of the column matrix: `batch·out_height·out_width`.
    pub fn cols(&self) -> usize {
        self.batch * self.out_height * self.out_width
    }

    /// Elements of the large map.
    pub fn map_len(&self) -> usize {
        self.channels * self.batch * self.height * self.width
    }

    /// Side of the phase planes (see [`im2col`]): `out + (k − 1)/s` in each direction.
    fn phase_side(&self, out: usize) -> usize {
        out + (self.kernel - 1) / self.stride
    }

    /// Elements of all `s²` phase planes of one map plane.
    fn phases_len(&self) -> usize {
        self.stride
            * self.stride
            * self.phase_side(self.out_height)
            * self.phase_side(self.out_width)
    }

    /// Offset of phase plane `(ry, rx)` in a phases buffer.
    fn phase_offset(&self, ry: usize, rx: usize) -> usize {
        (ry * self.stride + rx) * self.phase_side(self.out_height) * self.phase_side(self.out_width)
    }

    /// Along one axis of `size` pixels, phase `r`'s indices whose padded position `j·s + r` is
    /// a real pixel: `[lo, hi)`. Index `j` is pixel `j·s + r − p`.
    fn phase_span(&self, r: usize, size: usize, side: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.padding);
        let lo = p.saturating_sub(r).div_ceil(s);
        let hi = if size + p > r {
            ((size - 1 + p - r) / s + 1).min(side)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Calls `copy(phase row offset, map row offset, j0, j1, rx)` for every phase row that
    /// holds real pixels: `phase[row + j] ↔ map[map_row + j·s + rx − p]` for `j0 ≤ j < j1`.
    fn for_each_phase_row(&self, mut copy: impl FnMut(usize, usize, usize, usize, usize)) {
        let (s, p) = (self.stride, self.padding);
        let (ph, pw) = (
            self.phase_side(self.out_height),
            self.phase_side(self.out_width),
        );
        for ry in 0..s {
            let (i0, i1) = self.phase_span(ry, self.height, ph);
            for rx in 0..s {
                let (j0, j1) = self.phase_span(rx, self.width, pw);
                for i in i0..i1 {
                    let map_row = (i * s + ry - p) * self.width;
                    copy(self.phase_offset(ry, rx) + i * pw, map_row, j0, j1, rx);
                }
            }
        }
    }

    /// Stride 2 only: where a map row's even pixels (`x = 2t`) and odd pixels (`x = 2t + 1`)
    /// go in the row's phase planes, `[(phase column, index of t = 0); 2]`, if every pixel of
    /// the row has a place there (PAD's geometries). Splitting and merging phases is then a
    /// de-interleave of pixel pairs, which the compiler vectorises.
    fn halved_columns(&self) -> Option<[(usize, usize); 2]> {
        if self.stride != 2 {
            return None;
        }
        let (p, w) = (self.padding, self.width);
        let pw = self.phase_side(self.out_width);
        let even = (p % 2, p / 2);
        let odd = ((p + 1) % 2, p.div_ceil(2));
        (even.1 + w.div_ceil(2) <= pw && odd.1 + w / 2 <= pw).then_some([even, odd])
    }

    /// Stride 2 only: for every map row `y`, the phase row it belongs to, `Some((ry, i))`, or
    /// `None` for a row that no patch reads.
    fn halved_rows(&self) -> impl Iterator<Item = (usize, Option<(usize, usize)>)> + '_ {
        let ph = self.phase_side(self.out_height);
        (0..self.height).map(move |y| {
            let padded = y + self.padding;
            (y, (padded / 2 < ph).then_some((padded % 2, padded / 2)))
        })
    }

    /// Where the even and the odd pixels of a map row in phase row `(ry, i)` start in a
    /// phases buffer. They lie in different phase planes, so they never overlap.
    fn halved_row_starts(
        &self,
        (ry, i): (usize, usize),
        columns: [(usize, usize); 2],
    ) -> [usize; 2] {
        let pw = self.phase_side(self.out_width);
        columns.map(|(rx, j0)| self.phase_offset(ry, rx) + i * pw + j0)
    }

    /// Splits one map plane into its zero-padded stride phases.
    fn split_phases<T: Real>(&self, plane: &[T], phases: &mut [T]) {
        let (s, p, w) = (self.stride, self.padding, self.width);
        phases.fill(T::zero());
        if let Some(columns) = self.halved_columns() {
            for (y, row) in self.halved_rows() {
                let Some(row) = row else { continue };
                let src = &plane[y * w..][..w];
                let [e, o] = self.halved_row_starts(row, columns);
                let (even, odd) = if e < o {
                    let (low, high) = phases.split_at_mut(o);
                    (&mut low[e..][..w.div_ceil(2)], &mut high[..w / 2])
                } else {
                    let (low, high) = phases.split_at_mut(e);
                    (&mut high[..w.div_ceil(2)], &mut low[o..][..w / 2])
                };
                for ((pair, e), o) in src.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
                    *e = pair[0];
                    *o = pair[1];
                }
                if w % 2 == 1 {
                    even[w / 2] = src[w - 1];
                }
            }
            return;
        }
        self.for_each_phase_row(|row, map_row, j0, j1, rx| {
            let dst = &mut phases[row..];
            let src = &plane[map_row..][..w];
            for j in j0..j1 {
                dst[j] = src[j * s + rx - p];
            }
        });
    }

    /// Weaves the stride phases back into a map plane (padding dropped; pixels no phase
    /// covers become 0).
    fn merge_phases<T: Real>(&self, phases: &[T], plane: &mut [T]) {
        let (s, p, w) = (self.stride, self.padding, self.width);
        if let Some(columns) = self.halved_columns() {
            for (y, row) in self.halved_rows() {
                let dst = &mut plane[y * w..][..w];
                let Some(row) = row else {
                    dst.fill(T::zero());
                    continue;
                };
                let [e, o] = self.halved_row_starts(row, columns);
                let (even, odd) = (&phases[e..][..w.div_ceil(2)], &phases[o..][..w / 2]);
                for ((pair, e), o) in dst.chunks_exact_mut(2).zip(even.iter()).zip(odd.iter()) {
                    pair[0] = *e;
                    pair[1] = *o;
                }
                if w % 2 == 1 {
                    dst[w - 1] = even[w / 2];
                }
            }
            return;
        }
        plane.fill(T::zero());
        self.for_each_phase_row(|row, map_row, j0, j1, rx| {
            let src = &phases[row..];
            let dst = &mut plane[map_row..][..w];
            for j in j0..j1 {
                dst[j * s + rx - p] = src[j];
            }
        });
    }

    /// A kernel that covers the whole unpadded map in one position (PAD's 4×4 → 1×1 latent
    /// and discriminator, and the generator's 1×1 → 4×4): im2col is then a transpose.
    pub(crate) fn is_single_patch(&self) -> bool {
        self.padding == 0
            && self.height == self.kernel
            && self.width == self.kernel
            && self.out_height == 1
            && self.out_width == 1
    }
}

/// The `k×k` patch offsets `(row of the column matrix within a channel, phase plane offset,
/// shift of the window inside it)`: offset `(kh, kw)` reads phase `(kh mod s, kw mod s)` from
/// row `kh / s`, column `kw / s` on.
fn kernel_taps(grid: &PatchGrid) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let (k, s) = (grid.kernel, grid.stride);
    let pw = grid.phase_side(grid.out_width);
    (0..k * k).map(move |tap| {
        let (kh, kw) = (tap / k, tap % k);
        let phase = grid.phase_offset(kh % s, kw % s);
        (tap, phase, (kh / s) * pw + kw / s)
    })
}

/// Gathers every `k×k` patch of `map` (`[C, N, H, W]`) into `col` (`[C·k·k, N·H_o·W_o]`).
///
/// Each image plane is first split into its `s×s` stride phases, zero padding included
/// (phase `(ry, rx)` holds the padded pixels `(i·s + ry, j·s + rx)`); a patch offset then
/// reads one phase as a plain window, so every row of the output is one contiguous copy.
/// Parallel over channels.
pub fn im2col<T: Real>(map: &[T], grid: &PatchGrid, col: &mut [T]) {
    assert_eq!(map.len(), grid.map_len(), "im2col: map size");
    assert_eq!(col.len(), grid.rows() * grid.cols(), "im2col: col size");
    let per_channel = grid.kernel * grid.kernel * grid.cols();
    let taps: Vec<_> = kernel_taps(grid).collect();
    col.par_chunks_mut(per_channel).enumerate().for_each_init(
        || vec![T::zero(); grid.phases_len()],
        |phases, (c, rows)| channel_patches(map, grid, &taps, c, phases, rows),
    );
}

/// [`im2col`] rounded to bfloat16 ([`bf16::round`]): rows `pitch` apart (even, at least the
/// grid's columns), zero past each row's end. Each image plane's stride phases are rounded
/// once (they hold every pixel a window reads), then the windows are gathered from them, so
/// the matrix is written only once, at half the size.
pub fn im2col_rounded(map: &[f32], grid: &PatchGrid, col: &mut [u16], pitch: usize) {
    let cols = grid.cols();
    assert_eq!(map.len(), grid.map_len(), "im2col: map size");
    assert!(
        pitch.is_multiple_of(2) && pitch >= cols,
        "im2col: pitch {pitch} for {cols} columns"
    );
    assert_eq!(col.len(), grid.rows() * pitch, "im2col: col size");
    let (k, n_images) = (grid.kernel, grid.batch);
    let (oh, ow) = (grid.out_height, grid.out_width);
    let plane = grid.height * grid.width;
    let pw = grid.phase_side(ow);
    let taps: Vec<_> = kernel_taps(grid).collect();
    // The phases of one plane, or for a single patch a channel's transposed planes.
    let phases_len = if grid.is_single_patch() {
        k * k * cols
    } else {
        grid.phases_len()
    };
    col.par_chunks_mut(k * k * pitch).enumerate().for_each_init(
        || (vec![0.0; phases_len], vec![0; phases_len]),
        |(phases, rounded), (c, rows)| {
            let images = &map[c * n_images * plane..][..n_images * plane];
            rows.chunks_exact_mut(pitch)
                .for_each(|row| row[cols..].fill(0));
            if grid.is_single_patch() {
                // [N, k·k] → [k·k, N], then rounded.
                transpose(images, n_images, plane, phases);
                for (dst, src) in rows.chunks_exact_mut(pitch).zip(phases.chunks_exact(cols)) {
                    bf16::round(src, &mut dst[..cols]);
                }
                return;
            }
            for (n, image) in images.chunks_exact(plane).enumerate() {
                grid.split_phases(image, phases);
                bf16::round(phases, rounded);
                for &(tap, phase, shift) in &taps {
                    let dst = &mut rows[tap * pitch + n * oh * ow..][..oh * ow];
                    gather_window(dst, &rounded[phase + shift..], ow, pw);
                }
            }
        },
    );
}

/// Channel `c`'s rows of the patch matrix (`k·k` rows of `N·H_o·W_o`) into `rows`.
fn channel_patches<T: Real>(
    map: &[T],
    grid: &PatchGrid,
    taps: &[(usize, usize, usize)],
    c: usize,
    phases: &mut [T],
    rows: &mut [T],
) {
    let (n_images, cols) = (grid.batch, grid.cols());
    let (oh, ow) = (grid.out_height, grid.out_width);
    let plane = grid.height * grid.width;
    let images = &map[c * n_images * plane..][..n_images * plane];
    if grid.is_single_patch() {
        // [N, k·k] → [k·k, N].
        return transpose(images, n_images, plane, rows);
    }
    let pw = grid.phase_side(ow);
    for (n, image) in images.chunks_exact(plane).enumerate() {
        grid.split_phases(image, phases);
        for &(tap, phase, shift) in taps {
            let dst = &mut rows[tap * cols + n * oh * ow..][..oh * ow];
            gather_window(dst, &phases[phase + shift..], ow, pw);
        }
    }
}

/// Scatters `col` (`[C·k·k, N·H_o·W_o]`) back onto `map` (`[C, N, H, W]`), summing overlaps:
/// the adjoint of [`im2col`]. `map` is overwritten.
///
/// Each patch offset adds its rows into one stride phase (contiguous adds), then the phases
/// are woven back into the image plane. Every pixel sums its contributions in the order of
/// the kernel offsets, whatever the thread count. Parallel over (channel, image) planes.
pub fn col2im<T: Real>(col: &[T], grid: &PatchGrid, map: &mut [T]) {
    col2im_then(col, grid, map, |_, _| {});
}

/// [`col2im`], then `finish(channel, pixels)` on each part of the map as soon as it is
/// complete (an image plane, or a channel's planes for a single patch).
fn col2im_then<T: Real>(
    col: &[T],
    grid: &PatchGrid,
    map: &mut [T],
    finish: impl Fn(usize, &mut [T]) + Sync,
) {
    assert_eq!(map.len(), grid.map_len(), "col2im: map size");
    assert_eq!(col.len(), grid.rows() * grid.cols(), "col2im: col size");
    let (n_images, plane) = (grid.batch, grid.height * grid.width);
    if grid.is_single_patch() {
        // Per channel, [k·k, N] → [N, k·k].
        map.par_chunks_mut(plane * n_images)
            .zip(col.par_chunks(plane * n_images))
            .enumerate()
            .for_each(|(channel, (images, rows))| {
                transpose(rows, plane, n_images, images);
                finish(channel, images);
            });
        return;
    }
    col2im_block(col, grid, 0, map, finish);
}

/// [`col2im_then`] for the images a block of columns of the patch matrix covers: `col` holds
/// columns `first·H_o·W_o..` (whole images) of every row, and only those images' planes of
/// `map` are written (and finished).
fn col2im_block<T: Real>(
    col: &[T],
    grid: &PatchGrid,
    first: usize,
    map: &mut [T],
    finish: impl Fn(usize, &mut [T]) + Sync,
) {
    let (k, n_images) = (grid.kernel, grid.batch);
    let (oh, ow) = (grid.out_height, grid.out_width);
    let (pw, plane, per_image) = (grid.phase_side(ow), grid.height * grid.width, oh * ow);
    let width = col.len() / grid.rows().max(1);
    assert_eq!(
        width % per_image.max(1),
        0,
        "col2im: a block of whole images"
    );
    let images = first..first + width / per_image.max(1);
    assert!(
        images.end <= n_images,
        "col2im: images {images:?} of {n_images}"
    );
    let taps: Vec<_> = kernel_taps(grid).collect();
    // The block's planes: images `images` of every channel.
    let planes: Vec<(usize, usize, &mut [T])> = map
        .chunks_mut(n_images * plane)
        .enumerate()
        .flat_map(|(c, channel)| {
            let block = &mut channel[images.start * plane..images.end * plane];
            let first = images.start;
            block
                .chunks_mut(plane)
                .enumerate()
                .map(move |(i, dst)| (c, first + i, dst))
        })
        .collect();
    planes.into_par_iter().for_each_init(
        || vec![T::zero(); grid.phases_len()],
        |phases, (c, n, dst)| {
            phases.fill(T::zero());
            for &(tap, phase, shift) in &taps {
                let src = &col[(c * k * k + tap) * width + (n - first) * per_image..];
                scatter_add_window(&src[..per_image], &mut phases[phase + shift..], ow, pw);
            }
            grid.merge_phases(phases, dst);
            finish(c, dst);
        },
    );
}

/// Columns of the patch matrix a bfloat16 product computes at a time when col2im consumes
/// them ([`super::gemm::matmul_bf16_column_blocks`]): whole images, about 1 MB of f32 results,
/// which stay in the core's cache until col2im has read them.
fn image_block_columns(grid: &PatchGrid) -> usize {
    const BLOCK_BYTES: usize = 1 << 20;
    let per_image = grid.out_height * grid.out_width;
    let image_bytes = grid.rows() * per_image * std::mem::size_of::<f32>();
    (BLOCK_BYTES / image_bytes.max(1)).clamp(1, grid.batch.max(1)) * per_image
}

/// `map ← col2im(aᵀ·b)` over `grid`, each finished part of the map handed to `finish` (see
/// [`col2im_then`]), with `a` stored `k × rows` and `b` `k × cols`: a convolution's input
/// gradient, a transposed convolution's forward pass. `in_blocks` (a bfloat16 thread's) runs
/// the product a few images at a time, each block scattered while in cache; otherwise the
/// whole product is formed in `col` first.
fn scatter_product<T: Real>(
    threads: usize,
    grid: &PatchGrid,
    (a, b, k): (&[T], &[T], usize),
    in_blocks: bool,
    col: &mut Vec<T>,
    map: &mut [T],
    finish: impl Fn(usize, &mut [T]) + Sync,
) {
    let (rows, cols) = (grid.rows(), grid.cols());
    if in_blocks && !grid.is_single_patch() {
        let (width, per_image) = (image_block_columns(grid), grid.out_height * grid.out_width);
        let scatter =
            |j0: usize, block: &mut [T]| col2im_block(block, grid, j0 / per_image, map, &finish);
        matmul_bf16_column_blocks((rows, cols, k), a, Op::Transposed, b, width, col, scatter);
    } else {
        let col = scratch_prefix(col, rows * cols);
        matmul_on(
            threads,
            rows,
            cols,
            k,
            a,
            Op::Transposed,
            b,
            Op::Plain,
            T::zero(),
            col,
        );
        col2im_then(col, grid, map, finish);
    }
}

/// `packed` (rows of `width`, contiguous) ← the window of `plane` whose rows lie `pitch`
/// apart. PAD's rows are 4, 8 or 16 wide: those widths are copied as fixed-size arrays, a
/// few vector moves per row instead of a `memcpy` call.
fn gather_window<T: Copy>(packed: &mut [T], plane: &[T], width: usize, pitch: usize) {
    fn fixed<const W: usize, T: Copy>(packed: &mut [T], plane: &[T], pitch: usize) {
        for (row, out) in packed.chunks_exact_mut(W).enumerate() {
            let out: &mut [T; W] = out.try_into().expect("W-wide row");
            *out = plane[row * pitch..][..W].try_into().expect("W-wide row");
        }
    }
    match width {
        4 => fixed::<4, T>(packed, plane, pitch),
        8 => fixed::<8, T>(packed, plane, pitch),
        16 => fixed::<16, T>(packed, plane, pitch),
        _ => {
            for (row, out) in packed.chunks_exact_mut(width).enumerate() {
                out.copy_from_slice(&plane[row * pitch..][..width]);
            }
        }
    }
}

/// The window of `plane` whose rows lie `pitch` apart += `packed` (rows of `width`,
/// contiguous); fixed-size rows as in [`gather_window`].
fn scatter_add_window<T: Real>(packed: &[T], plane: &mut [T], width: usize, pitch: usize) {
    fn fixed<const W: usize, T: Real>(packed: &[T], plane: &mut [T], pitch: usize) {
        for (row, from) in packed.chunks_exact(W).enumerate() {
            let line: &mut [T; W] = (&mut plane[row * pitch..][..W])
                .try_into()
                .expect("W-wide row");
            let from: &[T; W] = from.try_into().expect("W-wide row");
            for j in 0..W {
                line[j] += from[j];
            }
        }
    }
    match width {
        4 => fixed::<4, T>(packed, plane, pitch),
        8 => fixed::<8, T>(packed, plane, pitch),
        16 => fixed::<16, T>(packed, plane, pitch),
        _ => {
            for (row, from) in packed.chunks_exact(width).enumerate() {
                let line = &mut plane[row * pitch..][..width];
                line.iter_mut().zip(from).for_each(|(v, &d)| *v += d);
            }
        }
    }
}

/// `dst[m×n] (+)= a[m×k]·b[n×k]ᵀ`, the weight gradient's product. With a long inner
/// dimension the `gemm` crate runs this shape fastest with both operands in plain layout
/// and a column-major destination: `a` is transposed into `scratch.a_t` (a pass over the
/// smaller operand), the product formed as `b·aᵀ` in `scratch.product` and written (or
/// added) transposed. Measured, one thread: 1.3–1.4× for V2/V4 and the generator's middle
/// areas, 5.7× for V1 and the generator's last area (48×64 outputs over 16,384 pixels),
/// against `b·aᵀ` read through strides. With a short one the transposed passes would cost
/// more than they save.
#[allow(clippy::too_many_arguments)]
fn outer_products<T: Real>(
    threads: usize,
    a: &[T],
    b: &[T],
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    update: Update,
    scratch: &mut OuterProductScratch<T>,
) {
    const LONG_INNER: usize = 512;
    // Packing for bfloat16 reads either layout as fast: the detour would only add its passes.
    if k < LONG_INNER || rounds_to_bf16::<T>() {
        let (a, b) = ((a, Op::Plain), (b, Op::Transposed));
        matmul_on(threads, m, n, k, a.0, a.1, b.0, b.1, update.alpha(), dst);
        return;
    }
    let a_t = scratch_prefix(&mut scratch.a_t, k * m);
    transpose(a, m, k, a_t);
    let product_t = scratch_prefix(&mut scratch.product, n * m);
    matmul_on(
        threads,
        n,
        m,
        k,
        b,
        Op::Plain,
        a_t,
        Op::Plain,
        T::zero(),
        product_t,
    );
    match update {
        Update::Overwrite => transpose(product_t, n, m, dst),
        Update::Accumulate => transpose_with(product_t, n, m, dst, |d, v| *d += v),
    }
}

/// Threads for the synaptic and the input gradient's products: the pool split in two when
/// both are computed (their products have equal sizes and run side by side), all of it for
/// the synaptic one alone.
fn split_threads(both: bool) -> (usize, usize) {
    let threads = rayon::current_num_threads();
    if both {
        (threads.div_ceil(2), (threads / 2).max(1))
    } else {
        (threads, threads)
    }
}

/// Whether a kernel writes its result over a buffer's contents or adds it to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// The old contents are ignored (stale values and NaNs included).
    Overwrite,
    /// The result is added to the old contents (PyTorch's `.grad` accumulation).
    Accumulate,
}

impl Update {
    /// The factor [`matmul`] applies to the old contents.
    fn alpha<T: Real>(self) -> T {
        match self {
            Update::Overwrite => T::zero(),
            Update::Accumulate => T::one(),
        }
    }
}

/// Where a backward pass puts a layer's synaptic gradients, and how.
#[derive(Debug)]
pub struct SynapticGradients<'a, T> {
    /// `∂L/∂W`, in the layer's weight layout.
    pub weight: &'a mut [T],
    /// Overwrite (a fresh gradient) or accumulate into an existing one.
    pub weight_update: Update,
    /// `∂L/∂b`, one per output channel.
    pub bias: &'a mut [T],
    /// As `weight_update`, for the bias.
    pub bias_update: Update,
}

/// What a layer keeps of its input for the weight gradient: a convolution's patch matrix
/// ([`conv2d_forward`] fills it, [`conv2d_backward`] reads it) or a transposed convolution's
/// input ([`KeptInput::copy_values`]). In `T`, or, for a convolution on a thread whose
/// products run on bfloat16 operands, rounded to bfloat16: the products would round it
/// anyway, and the rounded matrix is half the memory traffic.
#[derive(Clone, Debug, Default)]
pub struct KeptInput<T> {
    values: Vec<T>,
    rounded: Vec<u16>,
    /// Row pitch of `rounded` when it holds the matrix (`None`: `values` holds it).
    pitch: Option<usize>,
}

impl<T: Real> KeptInput<T> {
    /// Keeps a copy of `x`.
    pub fn copy_values(&mut self, x: &[T]) {
        self.pitch = None;
        zip_in_place(reuse(&mut self.values, x.len()), x, |_, v| v);
    }

    /// The kept values. Panics when they were kept rounded to bfloat16.
    pub fn values(&self) -> &[T] {
        assert!(
            self.pitch.is_none(),
            "the kept input was rounded to bfloat16: it has no f32 values"
        );
        &self.values
    }

    /// The kept patch matrix, as the products read it.
    fn patches(&self) -> PatchMatrix<'_, T> {
        match self.pitch {
            Some(pitch) => PatchMatrix::Rounded(&self.rounded, pitch),
            None => PatchMatrix::Values(&self.values),
        }
    }
}

/// A patch matrix `[rows, cols]` as the products read it: in `T`, or rounded to bfloat16 with
/// rows `pitch` apart ([`im2col_rounded`]).
#[derive(Clone, Copy)]
enum PatchMatrix<'a, T> {
    Values(&'a [T]),
    Rounded(&'a [u16], usize),
}

impl<T: Real> PatchMatrix<'_, T> {
    /// `dst[m×rows] (+)= a[m×cols]·selfᵀ`: a weight gradient.
    fn weight_gradient(
        self,
        threads: usize,
        a: &[T],
        dims: (usize, usize, usize),
        dst: &mut [T],
        update: Update,
        scratch: &mut OuterProductScratch<T>,
    ) {
        match self {
            PatchMatrix::Values(b) => outer_products(threads, a, b, dims, dst, update, scratch),
            PatchMatrix::Rounded(b, pitch) => {
                let (alpha, b) = (update.alpha(), (b, pitch));
                matmul_rounded(dims, a, Op::Plain, b, Op::Transposed, alpha, dst)
            }
        }
    }

    /// `dst[m×cols] = op(a)[m×rows]·self`.
    fn times(
        self,
        threads: usize,
        (m, cols, rows): (usize, usize, usize),
        (a, op_a): (&[T], Op),
        dst: &mut [T],
    ) {
        match self {
            PatchMatrix::Values(b) => matmul_on(
                threads,
                m,
                cols,
                rows,
                a,
                op_a,
                b,
                Op::Plain,
                T::zero(),
                dst,
            ),
            PatchMatrix::Rounded(b, pitch) => {
                let dims = (m, cols, rows);
                matmul_rounded(dims, a, op_a, (b, pitch), Op::Plain, T::zero(), dst)
            }
        }
    }
}

/// Work buffers of the passes, kept between calls: a patch matrix and the weight gradient's
/// transposed operand and product. Only their first elements are used by a smaller pass.
#[derive(Debug, Default)]
pub struct ConvScratch<T> {
    patches: Vec<T>,
    rounded: Vec<u16>,
    outer: OuterProductScratch<T>,
}

/// The buffers of [`outer_products`]: its transposed left operand and transposed product.
#[derive(Debug, Default)]
struct OuterProductScratch<T> {
    a_t: Vec<T>,
    product: Vec<T>,
}

impl<T> ConvScratch<T> {
    /// Empty buffers.
    pub const fn new() -> Self {
        ConvScratch {
            patches: Vec::new(),
            rounded: Vec::new(),
            outer: OuterProductScratch {
                a_t: Vec::new(),
                product: Vec::new(),
            },
        }
    }
}

/// `buf` holding exactly `len` elements, to be overwritten: a buffer kept from an earlier pass
/// of the same shape is used as it is, so steady-state training neither allocates nor zeroes
/// its large matrices.
pub fn reuse<T: Real>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    buf.resize(len, T::zero());
    buf.as_mut_slice()
}

/// The first `len` elements of a scratch buffer shared by passes of different sizes, to be
/// overwritten. The buffer never shrinks: growing it back after a smaller pass would zero
/// the regrown part every time (3% of a cycle, measured).
pub(crate) fn scratch_prefix<T: Real>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::zero());
    }
    &mut buf[..len]
}

/// [`scratch_prefix`] for rounded (bfloat16) buffers.
fn scratch_prefix_u16(buf: &mut Vec<u16>, len: usize) -> &mut [u16] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// `out ← f(out + bias[c])` on every element of channel `c` of a channel-major buffer.
pub fn add_bias_and_activate<T: Real>(out: &mut [T], bias: &[T], activation: Activation) {
    let per_channel = out.len() / bias.len().max(1);
    out.par_chunks_mut(per_channel.max(1))
        .zip(bias.par_iter())
        .for_each(|(row, &b)| activation.apply_after_bias(row, b));
}

/// Convolution forward. `x` is `[C_in, N, H, W]`, `weight` `[C_out, C_in, k, k]`.
/// Fills `y` with `f(W ⊛ x + b)`, `[C_out, N, H_o, W_o]` (`f` = `activation`), and `col` with
/// the patch matrix, which the weight gradient needs; returns the patch grid.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward<T: Real>(
    x: &[T],
    batch: usize,
    height: usize,
    width: usize,
    g: &ConvGeometry,
    weight: &[T],
    bias: &[T],
    activation: Activation,
    col: &mut KeptInput<T>,
    y: &mut Vec<T>,
) -> PatchGrid {
    let grid = PatchGrid::new(g.in_channels, batch, height, width, g);
    assert_eq!(weight.len(), g.weight_len(), "conv2d: weight size");
    assert_eq!(bias.len(), g.out_channels, "conv2d: bias size");
    let (rows, cols) = (grid.rows(), grid.cols());
    let y = reuse(y, g.out_channels * cols);
    // The patches, kept for the weight gradient: rounded under bfloat16 (the products round
    // them anyway), else in T.
    if let Some(x) = bf16_view(x) {
        let pitch = cols.next_multiple_of(2);
        col.rounded.resize(rows * pitch, 0);
        im2col_rounded(x, &grid, &mut col.rounded, pitch);
        col.pitch = Some(pitch);
    } else {
        im2col(x, &grid, reuse(&mut col.values, rows * cols));
        col.pitch = None;
    }
    let threads = rayon::current_num_threads();
    let dims = (g.out_channels, cols, rows);
    col.patches().times(threads, dims, (weight, Op::Plain), y);
    add_bias_and_activate(y, bias, activation);
    grid
}

/// Convolution backward from the pre-activation gradient `dy` (`[C_out, N, H_o, W_o]`).
///
/// Writes or adds `dy·colᵀ` and `Σ dy` into `grads`; fills `dx` (`[C_in, N, H, W]`), the
/// error sent back through `feedback` (PyTorch weight layout), when one is asked for.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward<T: Real>(
    dy: &[T],
    col: &KeptInput<T>,
    grid: &PatchGrid,
    g: &ConvGeometry,
    feedback: &[T],
    grads: SynapticGradients<'_, T>,
    scratch: &mut ConvScratch<T>,
    dx: Option<&mut Vec<T>>,
) {
    let (rows, cols) = (grid.rows(), grid.cols());
    assert_eq!(dy.len(), g.out_channels * cols, "conv2d backward: dy size");
    assert_eq!(
        grads.weight.len(),
        g.out_channels * rows,
        "conv2d backward: dweight size"
    );
    let ConvScratch { patches, outer, .. } = scratch;
    // Decided here, on the caller's thread (the products below may run on another).
    let in_blocks = rounds_to_bf16::<T>();
    // The synaptic and the input gradient are independent: computed side by side, each
    // one's serial stretches (the transposed add, col2im) leave threads to the other.
    let (dw_threads, dx_threads) = split_threads(dx.is_some());
    rayon::join(
        || {
            let dims = (g.out_channels, rows, cols);
            let (dw, update) = (grads.weight, grads.weight_update);
            col.patches()
                .weight_gradient(dw_threads, dy, dims, dw, update, outer);
            channel_sums(dy, g.out_channels, grads.bias, grads.bias_update);
        },
        || {
            if let Some(dx) = dx {
                let dx = reuse(dx, grid.map_len());
                let product = (feedback, dy, g.out_channels);
                scatter_product(dx_threads, grid, product, in_blocks, patches, dx, |_, _| {});
            }
        },
    );
}

/// Transposed-convolution forward. `x` is `[C_in, N, H, W]`, `weight` `[C_in, C_out, k, k]`.
/// Fills `y` with `f(Wᵀ ⊛ x + b)`, `[C_out, N, H_o, W_o]` (`f` = `activation`, applied to each
/// image plane as col2im completes it), using `scratch` for the patch matrix; returns the grid
/// over `y`.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_forward<T: Real>(
    x: &[T],
    batch: usize,
    height: usize,
    width: usize,
    g: &ConvGeometry,
    weight: &[T],
    bias: &[T],
    activation: Activation,
    scratch: &mut ConvScratch<T>,
    y: &mut Vec<T>,
) -> PatchGrid {
    let grid = transpose_grid(batch, height, width, g);
    assert_eq!(
        x.len(),
        g.in_channels * grid.cols(),
        "conv_transpose2d: input size"
    );
    assert_eq!(
        weight.len(),
        g.weight_len(),
        "conv_transpose2d: weight size"
    );
    assert_eq!(bias.len(), g.out_channels, "conv_transpose2d: bias size");
    let y = reuse(y, grid.map_len());
    let finish =
        |channel: usize, plane: &mut [T]| activation.apply_after_bias(plane, bias[channel]);
    let (threads, in_blocks) = (rayon::current_num_threads(), rounds_to_bf16::<T>());
    let product = (weight, x, g.in_channels);
    scatter_product(
        threads,
        &grid,
        product,
        in_blocks,
        &mut scratch.patches,
        y,
        finish,
    );
    grid
}

/// The patch grid of a transposed convolution: the kernel slides over the *output* map, and
/// each patch position is one input pixel.
pub fn transpose_grid(batch: usize, height: usize, width: usize, g: &ConvGeometry) -> PatchGrid {
    let (Some(out_h), Some(out_w)) = (g.transpose_output(height), g.transpose_output(width)) else {
        panic!(
            "transposed kernel {} with padding {} gives an empty map",
            g.kernel, g.padding
        )
    };
    let grid = PatchGrid::new(g.out_channels, batch, out_h, out_w, g);
    assert_eq!(
        (grid.out_height, grid.out_width),
        (height, width),
        "conv_transpose2d geometry"
    );
    grid
}

/// Transposed-convolution backward from the pre-activation gradient `dy` (`[C_out, N, H_o, W_o]`)
/// with `x` the forward input (`[C_in, N, H, W]`).
///
/// Writes or adds `x·im2col(dy)ᵀ` and `Σ dy` into `grads`; fills `dx`, the error sent back
/// through `feedback` (PyTorch layout `[C_in, C_out, k, k]`), when one is asked for.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_backward<T: Real>(
    dy: &[T],
    x: &[T],
    grid: &PatchGrid,
    g: &ConvGeometry,
    feedback: &[T],
    grads: SynapticGradients<'_, T>,
    scratch: &mut ConvScratch<T>,
    dx: Option<&mut Vec<T>>,
) {
    let (rows, cols) = (grid.rows(), grid.cols());
    assert_eq!(
        dy.len(),
        grid.map_len(),
        "conv_transpose2d backward: dy size"
    );
    assert_eq!(
        grads.weight.len(),
        g.in_channels * rows,
        "conv_transpose2d backward: dweight size"
    );
    let ConvScratch {
        patches,
        rounded,
        outer,
    } = scratch;
    // The error's patches, rounded to bfloat16 if the products round them anyway.
    let dcol = match bf16_view(dy) {
        Some(dy) => {
            let pitch = cols.next_multiple_of(2);
            let rounded = scratch_prefix_u16(rounded, rows * pitch);
            im2col_rounded(dy, grid, rounded, pitch);
            PatchMatrix::Rounded(rounded, pitch)
        }
        None => {
            let dcol = scratch_prefix(patches, rows * cols);
            im2col(dy, grid, dcol);
            PatchMatrix::Values(dcol)
        }
    };
    let (dw_threads, dx_threads) = split_threads(dx.is_some());
    rayon::join(
        || {
            let dims = (g.in_channels, rows, cols);
            let (dw, update) = (grads.weight, grads.weight_update);
            dcol.weight_gradient(dw_threads, x, dims, dw, update, outer);
            channel_sums(dy, g.out_channels, grads.bias, grads.bias_update);
        },
        || {
            if let Some(dx) = dx {
                let (m, dx) = (g.in_channels, reuse(dx, g.in_channels * cols));
                dcol.times(dx_threads, (m, cols, rows), (feedback, Op::Plain), dx);
            }
        },
    );
}

/// `dbias[c] (+)= Σ` over channel `c` of a channel-major gradient, each channel summed in f64 in
/// a fixed order (so the result does not depend on the thread count): eight running sums over
/// interleaved elements, which vectorise (one running sum is a chain of dependent adds),
/// then added up in order.
fn channel_sums<T: Real>(grad: &[T], channels: usize, dbias: &mut [T], update: Update) {
    const LANES: usize = 8;
    assert_eq!(dbias.len(), channels);
    let per_channel = grad.len() / channels.max(1);
    let wide = |v: &T| v.to_f64().unwrap_or(f64::NAN);
    dbias.par_iter_mut().enumerate().for_each(|(c, out)| {
        let values = &grad[c * per_channel..(c + 1) * per_channel];
        let mut lanes = [0.0f64; LANES];
        let blocks = values.chunks_exact(LANES);
        let tail: f64 = blocks.remainder().iter().map(wide).sum();
        for block in blocks {
            lanes.iter_mut().zip(block).for_each(|(l, v)| *l += wide(v));
        }
        let sum = lanes.iter().sum::<f64>() + tail;
        let sum = T::from_f64(sum).unwrap_or_else(T::nan);
        *out = match update {
            Update::Overwrite => sum,
            Update::Accumulate => *out + sum,
        };
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::matmul;

    const IDENTITY: Activation = Activation::Identity;

    /// Direct NCHW-free reference convolution on a channel-major map, in f64.
    fn reference_conv(
        x: &[f64],
        n: usize,
        h: usize,
        w: usize,
        g: &ConvGeometry,
        wt: &[f64],
        b: &[f64],
    ) -> Vec<f64> {
        let (oh, ow) = (g.conv_output(h).unwrap(), g.conv_output(w).unwrap());
        let k = g.kernel;
        let mut y = vec![0.0; g.out_channels * n * oh * ow];
        for co in 0..g.out_channels {
            for img in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = b[co];
                        for ci in 0..g.in_channels {
                            for kh in 0..k {
                                for kw in 0..k {
                                    let iy = (oy * g.stride + kh) as isize - g.padding as isize;
                                    let ix = (ox * g.stride + kw) as isize - g.padding as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xv =
                                        x[((ci * n + img) * h + iy as usize) * w + ix as usize];
                                    acc += xv * wt[((co * g.in_channels + ci) * k + kh) * k + kw];
                                }
                            }
                        }
                        y[((co * n + img) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        y
    }

    /// Direct scatter-form transposed convolution (PyTorch's definition), channel-major, f64.
    fn reference_conv_transpose(
        x: &[f64],
        n: usize,
        h: usize,
        w: usize,
        g: &ConvGeometry,
        wt: &[f64],
        b: &[f64],
    ) -> Vec<f64> {
        let (oh, ow) = (
            g.transpose_output(h).unwrap(),
            g.transpose_output(w).unwrap(),
        );
        let k = g.kernel;
        let mut y = vec![0.0; g.out_channels * n * oh * ow];
        for co in 0..g.out_channels {
            for img in 0..n {
                y[(co * n + img) * oh * ow..][..oh * ow]
                    .iter_mut()
                    .for_each(|v| *v = b[co]);
            }
        }
        for ci in 0..g.in_channels {
            for img in 0..n {
                for iy in 0..h {
                    for ix in 0..w {
                        let xv = x[((ci * n + img) * h + iy) * w + ix];
                        for co in 0..g.out_channels {
                            for kh in 0..k {
                                for kw in 0..k {
                                    let oy = (iy * g.stride + kh) as isize - g.padding as isize;
                                    let ox = (ix * g.stride + kw) as isize - g.padding as isize;
                                    if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                        continue;
                                    }
                                    y[((co * n + img) * oh + oy as usize) * ow + ox as usize] +=
                                        xv * wt[((ci * g.out_channels + co) * k + kh) * k + kw];
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    fn sample(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    const GEOMETRIES: [(usize, usize, usize, usize, usize, usize); 10] = [
        // (c_in, c_out, k, s, p, side)
        (2, 3, 5, 3, 2, 11),
        (2, 3, 4, 2, 2, 9),
        (2, 2, 3, 2, 0, 9),
        (3, 2, 4, 2, 3, 5),
        (3, 5, 4, 2, 1, 8),
        (1, 4, 4, 2, 1, 6),
        (4, 3, 4, 2, 0, 4),
        (2, 3, 4, 1, 0, 5),
        (3, 2, 3, 1, 1, 5),
        (2, 2, 3, 2, 1, 7),
    ];

    #[test]
    fn conv_forward_matches_direct_definition() {
        for (i, &(ci, co, k, s, p, side)) in GEOMETRIES.iter().enumerate() {
            let g = ConvGeometry {
                in_channels: ci,
                out_channels: co,
                kernel: k,
                stride: s,
                padding: p,
            };
            let n = 3;
            let x = sample(ci * n * side * side, i as u64);
            let wt = sample(g.weight_len(), 100 + i as u64);
            let b = sample(co, 200 + i as u64);
            let (mut col, mut y) = (KeptInput::default(), Vec::new());
            conv2d_forward(&x, n, side, side, &g, &wt, &b, IDENTITY, &mut col, &mut y);
            let want = reference_conv(&x, n, side, side, &g, &wt, &b);
            for (a, e) in y.iter().zip(&want) {
                assert!((a - e).abs() < 1e-12, "{g:?}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn conv_transpose_forward_matches_scatter_definition() {
        for (i, &(ci, co, k, s, p, side)) in GEOMETRIES.iter().enumerate() {
            let g = ConvGeometry {
                in_channels: ci,
                out_channels: co,
                kernel: k,
                stride: s,
                padding: p,
            };
            let n = 3;
            let side = side.min(4);
            if g.transpose_output(side).unwrap_or(0) == 0 {
                continue;
            }
            let x = sample(ci * n * side * side, i as u64);
            let wt = sample(g.weight_len(), 100 + i as u64);
            let b = sample(co, 200 + i as u64);
            let (mut scratch, mut y) = (ConvScratch::new(), Vec::new());
            conv_transpose2d_forward(
                &x,
                n,
                side,
                side,
                &g,
                &wt,
                &b,
                IDENTITY,
                &mut scratch,
                &mut y,
            );
            let want = reference_conv_transpose(&x, n, side, side, &g, &wt, &b);
            assert_eq!(y.len(), want.len());
            for (a, e) in y.iter().zip(&want) {
                assert!((a - e).abs() < 1e-12, "{g:?}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn fused_activation_equals_applying_it_afterwards() {
        let activations = [
            Activation::LeakyRelu(0.2),
            Activation::Tanh,
            Activation::Sigmoid,
        ];
        // (k, s, p, input side): a doubling transposed convolution and a single patch.
        for (k, s, p, side) in [(4, 2, 1, 4), (4, 1, 0, 1)] {
            let g = ConvGeometry {
                in_channels: 3,
                out_channels: 2,
                kernel: k,
                stride: s,
                padding: p,
            };
            let n = 3;
            let x = sample(3 * n * side * side, 5);
            let (wt, b) = (sample(g.weight_len(), 6), sample(2, 7));
            let mut scratch = ConvScratch::new();
            for act in activations {
                let (mut fused, mut afterwards) = (Vec::new(), Vec::new());
                conv_transpose2d_forward(
                    &x,
                    n,
                    side,
                    side,
                    &g,
                    &wt,
                    &b,
                    act,
                    &mut scratch,
                    &mut fused,
                );
                conv_transpose2d_forward(
                    &x,
                    n,
                    side,
                    side,
                    &g,
                    &wt,
                    &b,
                    IDENTITY,
                    &mut scratch,
                    &mut afterwards,
                );
                act.forward_in_place(&mut afterwards);
                assert_eq!(fused, afterwards, "{act:?}, {g:?}");
                let (mut col, mut fused, mut afterwards) =
                    (KeptInput::default(), Vec::new(), Vec::new());
                let conv = ConvGeometry {
                    in_channels: 2,
                    out_channels: 3,
                    ..g
                };
                let map = sample(2 * n * 8 * 8, 8);
                conv2d_forward(
                    &map,
                    n,
                    8,
                    8,
                    &conv,
                    &wt,
                    &b[..1].repeat(3),
                    act,
                    &mut col,
                    &mut fused,
                );
                conv2d_forward(
                    &map,
                    n,
                    8,
                    8,
                    &conv,
                    &wt,
                    &b[..1].repeat(3),
                    IDENTITY,
                    &mut col,
                    &mut afterwards,
                );
                act.forward_in_place(&mut afterwards);
                assert_eq!(fused, afterwards, "{act:?}, {conv:?}");
            }
        }
    }

    #[test]
    fn rounded_patches_are_the_rounded_patch_matrix() {
        // Strided, padded, single-patch and odd-width grids; rows padded to an even pitch.
        let shapes = [
            (4, 2, 1, 8, 3),
            (4, 1, 0, 4, 3),
            (3, 1, 1, 5, 1),
            (4, 2, 1, 32, 2),
        ];
        for (k, s, p, side, n) in shapes {
            let g = ConvGeometry {
                in_channels: 3,
                out_channels: 2,
                kernel: k,
                stride: s,
                padding: p,
            };
            let grid = PatchGrid::new(3, n, side, side, &g);
            let map: Vec<f32> = sample(grid.map_len(), 9)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let mut col = vec![0.0f32; grid.rows() * grid.cols()];
            im2col(&map, &grid, &mut col);
            let cols = grid.cols();
            let pitch = cols.next_multiple_of(2);
            let mut rounded = vec![u16::MAX; grid.rows() * pitch];
            im2col_rounded(&map, &grid, &mut rounded, pitch);
            for (row, (got, want)) in rounded.chunks(pitch).zip(col.chunks(cols)).enumerate() {
                let want: Vec<u16> = want
                    .iter()
                    .map(|&v| crate::kernels::bf16::to_bf16(v))
                    .collect();
                assert_eq!(&got[..cols], &want[..], "{grid:?}, row {row}");
                assert!(
                    got[cols..].iter().all(|&v| v == 0),
                    "{grid:?}, row {row} padding"
                );
            }
        }
    }

    #[test]
    fn col2im_by_blocks_of_images_is_col2im() {
        let g = ConvGeometry {
            in_channels: 2,
            out_channels: 3,
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        let n = 5;
        let grid = PatchGrid::new(2, n, 8, 8, &g);
        let (rows, cols, per_image) = (grid.rows(), grid.cols(), 16);
        let col = sample(rows * cols, 21);
        let mut want = vec![0.0; grid.map_len()];
        col2im(&col, &grid, &mut want);
        for images in [1, 2, 5] {
            let mut got = vec![f64::NAN; grid.map_len()];
            for first in (0..n).step_by(images) {
                let count = images.min(n - first);
                let width = count * per_image;
                // The block: columns first·16.. of every row, as a product would make them.
                let block: Vec<f64> = col
                    .chunks_exact(cols)
                    .flat_map(|row| row[first * per_image..][..width].to_vec())
                    .collect();
                col2im_block(&block, &grid, first, &mut got, |_, _| {});
            }
            assert!(got == want, "blocks of {images} images");
        }
    }

    #[test]
    fn bf16_passes_on_rounded_patches_give_the_products_of_the_f32_patches() {
        // Under bfloat16 a convolution keeps its patches rounded and a transposed one rounds
        // its error's patches: bit for bit the products that pack the f32 matrices.
        use crate::kernels::gemm::{set_thread_precision, Precision};
        let g = ConvGeometry {
            in_channels: 3,
            out_channels: 5,
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        let (n, side) = (3, 8);
        let f32s = |v: Vec<f64>| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
        let x = f32s(sample(3 * n * side * side, 11));
        let (w, b) = (f32s(sample(g.weight_len(), 12)), vec![0.0f32; 5]);
        set_thread_precision(Precision::Bf16);
        let (mut kept, mut y) = (KeptInput::default(), Vec::new());
        let grid = conv2d_forward(&x, n, side, side, &g, &w, &b, IDENTITY, &mut kept, &mut y);
        let mut col = vec![0.0f32; grid.rows() * grid.cols()];
        im2col(&x, &grid, &mut col);
        let (rows, cols) = (grid.rows(), grid.cols());
        let mut want = vec![0.0f32; 5 * cols];
        matmul(
            5,
            cols,
            rows,
            &w,
            Op::Plain,
            &col,
            Op::Plain,
            0.0,
            &mut want,
        );
        assert!(y == want, "forward");
        let dy = f32s(sample(y.len(), 13));
        let (mut dw, mut db, mut dx) = (vec![0.0f32; w.len()], vec![0.0f32; 5], Vec::new());
        let grads = SynapticGradients {
            weight: &mut dw,
            weight_update: Update::Overwrite,
            bias: &mut db,
            bias_update: Update::Overwrite,
        };
        let mut scratch = ConvScratch::new();
        conv2d_backward(
            &dy,
            &kept,
            &grid,
            &g,
            &w,
            grads,
            &mut scratch,
            Some(&mut dx),
        );
        let mut want_dw = vec![0.0f32; w.len()];
        matmul(
            5,
            rows,
            cols,
            &dy,
            Op::Plain,
            &col,
            Op::Transposed,
            0.0,
            &mut want_dw,
        );
        assert!(dw == want_dw, "weight gradient");
        let mut dcol = vec![0.0f32; rows * cols];
        matmul(
            rows,
            cols,
            5,
            &w,
            Op::Transposed,
            &dy,
            Op::Plain,
            0.0,
            &mut dcol,
        );
        let mut want_dx = vec![0.0f32; x.len()];
        col2im(&dcol, &grid, &mut want_dx);
        assert!(dx == want_dx, "input gradient");
        // The transposed convolution 5 → 3 channels back onto the 8 × 8 maps.
        let tg = ConvGeometry {
            in_channels: 5,
            out_channels: 3,
            ..g
        };
        let tgrid = transpose_grid(n, side / 2, side / 2, &tg);
        let (z, dmap) = (f32s(sample(5 * cols, 14)), f32s(sample(x.len(), 15)));
        let (mut dw, mut db, mut dz) = (vec![0.0f32; w.len()], vec![0.0f32; 3], Vec::new());
        let grads = SynapticGradients {
            weight: &mut dw,
            weight_update: Update::Overwrite,
            bias: &mut db,
            bias_update: Update::Overwrite,
        };
        conv_transpose2d_backward(
            &dmap,
            &z,
            &tgrid,
            &tg,
            &w,
            grads,
            &mut scratch,
            Some(&mut dz),
        );
        let mut dcol = vec![0.0f32; tgrid.rows() * tgrid.cols()];
        im2col(&dmap, &tgrid, &mut dcol);
        let (trows, tcols) = (tgrid.rows(), tgrid.cols());
        let mut want_dw = vec![0.0f32; w.len()];
        matmul(
            5,
            trows,
            tcols,
            &z,
            Op::Plain,
            &dcol,
            Op::Transposed,
            0.0,
            &mut want_dw,
        );
        let mut want_dz = vec![0.0f32; 5 * tcols];
        matmul(
            5,
            tcols,
            trows,
            &w,
            Op::Plain,
            &dcol,
            Op::Plain,
            0.0,
            &mut want_dz,
        );
        // Its forward pass: Wᵀ·z scattered onto the maps, then the activation.
        let mut y = Vec::new();
        let act = Activation::LeakyRelu(0.2);
        conv_transpose2d_forward(&z, n, 4, 4, &tg, &w, &b[..3], act, &mut scratch, &mut y);
        let mut tcol = vec![0.0f32; trows * tcols];
        matmul(
            trows,
            tcols,
            5,
            &w,
            Op::Transposed,
            &z,
            Op::Plain,
            0.0,
            &mut tcol,
        );
        let mut want_y = vec![0.0f32; x.len()];
        col2im(&tcol, &tgrid, &mut want_y);
        act.forward_in_place(&mut want_y);
        set_thread_precision(Precision::F32);
        assert!(y == want_y, "transposed: forward");
        assert!(dw == want_dw, "transposed: weight gradient");
        assert!(dz == want_dz, "transposed: input gradient");
    }

    #[test]
    fn fresh_gradients_overwrite_stale_memory_exactly() {
        // Overwriting a NaN-filled buffer must give what accumulating into zeros gives, on the
        // short- and the long-inner-dimension paths of the weight gradient (32 and 512 patches).
        let g = ConvGeometry {
            in_channels: 3,
            out_channels: 4,
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        for side in [8, 32] {
            let n = 2;
            let x = sample(3 * n * side * side, 1);
            let (wt, b) = (sample(g.weight_len(), 2), sample(4, 3));
            let mut scratch = ConvScratch::new();
            let (mut col, mut y) = (KeptInput::default(), Vec::new());
            let grid = conv2d_forward(&x, n, side, side, &g, &wt, &b, IDENTITY, &mut col, &mut y);
            let dy = sample(y.len(), 4);
            let tconv = ConvGeometry {
                in_channels: 4,
                out_channels: 3,
                ..g
            };
            let tgrid = transpose_grid(n, side / 2, side / 2, &tconv);
            let run = |update: Update, start: f64, scratch: &mut ConvScratch<f64>| {
                let (mut dw, mut db) = (vec![start; wt.len()], vec![start; 4]);
                let mut grads = SynapticGradients {
                    weight: &mut dw,
                    weight_update: update,
                    bias: &mut db,
                    bias_update: update,
                };
                conv2d_backward(&dy, &col, &grid, &g, &wt, grads, scratch, None);
                let (mut tdw, mut tdb) = (vec![start; wt.len()], vec![start; 3]);
                grads = SynapticGradients {
                    weight: &mut tdw,
                    weight_update: update,
                    bias: &mut tdb,
                    bias_update: update,
                };
                conv_transpose2d_backward(&x, &dy, &tgrid, &tconv, &wt, grads, scratch, None);
                [dw, db, tdw, tdb]
            };
            let fresh = run(Update::Overwrite, f64::NAN, &mut scratch);
            let accumulated = run(Update::Accumulate, 0.0, &mut scratch);
            assert_eq!(fresh, accumulated, "side {side}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), c> == <x, col2im(c)> for every geometry, padding and stride.
        for (i, &(ci, _, k, s, p, side)) in GEOMETRIES.iter().enumerate() {
            let g = ConvGeometry {
                in_channels: ci,
                out_channels: 1,
                kernel: k,
                stride: s,
                padding: p,
            };
            let grid = PatchGrid::new(ci, 2, side, side + 1, &g);
            let x = sample(grid.map_len(), i as u64);
            let c = sample(grid.rows() * grid.cols(), 50 + i as u64);
            let mut col = vec![0.0; c.len()];
            im2col(&x, &grid, &mut col);
            let mut back = vec![0.0; x.len()];
            col2im(&c, &grid, &mut back);
            let lhs: f64 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{grid:?}");
        }
    }
}
