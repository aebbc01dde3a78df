//! Dense matrix product `C = alpha·C + op(A)·op(B)` on row-major slices.
//!
//! PAD equivalent: the `torch.mm` calls inside `nn.Conv2d` / `nn.ConvTranspose2d` (oneDNN/MKL).
//!
//! The default backend is the pure-Rust `gemm` crate (AVX-512 kernels through its `x86-v4`
//! feature); the `blas` feature routes the product through a system CBLAS (OpenBLAS) instead.
//! With several threads the output's longer side is cut into two blocks per thread, each a
//! single-threaded product (the crate's own threading synchronises at every slice of the
//! inner dimension, and one thread often waited for the other). The inner dimension is never
//! cut, and a block is only cut off when the crate sums it in the order it sums the whole
//! product, so results are bit-identical with 1 or N threads; otherwise the crate threads
//! the whole product itself, which also keeps that order.
//!
//! On a thread whose [`Precision`] is `Bf16`, f32 products run on bfloat16 operands instead
//! ([`super::bf16`]); [`matmul_fixed`] and [`matmul_rounded`] take operands already prepared
//! for them (packed once, or rounded before).

use super::Real;
use std::cell::Cell;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    Plain,
    /// Use its transpose.
    Transposed,
}

thread_local! {
    /// Floating-point operations (2·m·n·k per product) of every [`matmul`] called from this
    /// thread: what benchmarks divide by time to report GFLOP/s. Per thread, so concurrent
    /// work elsewhere in the process does not disturb a measurement.
    static FLOPS_PERFORMED: Cell<u64> = const { Cell::new(0) };
}

/// Floating-point operations of the [`matmul`] calls made from this thread so far.
pub fn flops_performed() -> u64 {
    FLOPS_PERFORMED.with(Cell::get)
}

/// Blocks a parallel product is cut into per thread (fewer when smaller blocks would sum in
/// another order, see `same_kernel_path`). With two, a thread that finishes first takes over
/// a block instead of waiting at the join while its neighbour is slowed, or descheduled by
/// the hypervisor (these shared VMs lose up to several percent of their time so). Measured
/// against one block per thread: see the CHANGELOG entry.
#[cfg(not(feature = "blas"))]
const BLOCKS_PER_THREAD: usize = 2;

/// The operand precision of f32 products on this thread ([`set_thread_precision`],
/// [`with_pool_precision`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands (the default; PyTorch's and the golden vectors').
    #[default]
    F32,
    /// bfloat16 operands, f32 accumulation ([`super::bf16`]).
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("'{other}': expected f32 or bf16")),
        }
    }
}

thread_local! {
    /// Memory of the bfloat16 operands packed by this thread's last product.
    static PACKING: std::cell::Cell<(Vec<u32>, Vec<u32>)> = const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Frees this thread's bfloat16 packing buffers (they hold the last product's operands).
pub fn release_packing() {
    PACKING.take();
}

thread_local! {
    static PRECISION: std::cell::Cell<Precision> = const { std::cell::Cell::new(Precision::F32) };
}

/// Sets the precision of this thread's f32 products (a rayon pool sets it in every worker, e.g.
/// from `ThreadPoolBuilder::start_handler`); f64 products are never rounded.
pub fn set_thread_precision(precision: Precision) {
    PRECISION.with(|p| p.set(precision));
}

/// The precision of this thread's f32 products.
pub fn thread_precision() -> Precision {
    PRECISION.with(|p| p.get())
}

/// Whether this thread's products of `T` run on bfloat16 operands (f32 under `Bf16`).
pub fn rounds_to_bf16<T: Real>() -> bool {
    thread_precision() == Precision::Bf16 && is_f32::<T>()
}

fn is_f32<T: Real>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
}

/// Runs `f` with the f32 products of this thread and of every worker of the current rayon pool
/// in `precision`, then restores this thread's previous setting everywhere.
pub fn with_pool_precision<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    let previous = thread_precision();
    let set = |p: Precision| {
        rayon::broadcast(|_| set_thread_precision(p));
        set_thread_precision(p);
    };
    set(precision);
    let result = f();
    set(previous);
    result
}

/// Checks a product's operand lengths (`None`: an operand held elsewhere, already checked),
/// then counts its operations in [`flops_performed`]. Returns whether it is non-empty.
fn checked((m, n, k): (usize, usize, usize), a: usize, b: Option<usize>, c: usize) -> bool {
    assert_eq!(a, m * k, "matmul: lhs has {a} elements, expected {m}x{k}");
    if let Some(b) = b {
        assert_eq!(b, k * n, "matmul: rhs has {b} elements, expected {k}x{n}");
    }
    assert_eq!(c, m * n, "matmul: dst has {c} elements, expected {m}x{n}");
    FLOPS_PERFORMED.with(|f| f.set(f.get() + (2 * m * n * k) as u64));
    m > 0 && n > 0
}

/// Products smaller than this many multiply-adds run on one thread: below it, waking the
/// rayon pool costs more than it saves.
#[cfg(not(feature = "blas"))]
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// `c[m×n] = alpha·c + op(a)[m×k] · op(b)[k×n]`, all row-major and contiguous.
///
/// `a` is stored `m×k` (or `k×m` when transposed), `b` is stored `k×n` (or `n×k`).
/// With `alpha = 0` the old contents of `c` are ignored (NaNs included).
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    alpha: T,
    c: &mut [T],
) {
    matmul_on(
        rayon::current_num_threads(),
        m,
        n,
        k,
        a,
        op_a,
        b,
        op_b,
        alpha,
        c,
    );
}

/// [`matmul`] on at most `threads` threads.
#[allow(clippy::too_many_arguments)]
pub fn matmul_on<T: Real>(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    alpha: T,
    c: &mut [T],
) {
    if !checked((m, n, k), a.len(), Some(b.len()), c.len()) {
        return;
    }
    if k == 0 {
        c.iter_mut().for_each(|v| *v = alpha * *v);
        return;
    }
    if let (Some(a), Some(b), Some(c), Some(&[alpha])) = (
        bf16_view(a),
        bf16_view(b),
        bf16_view_mut(c),
        bf16_view(std::slice::from_ref(&alpha)),
    ) {
        return product_bf16((m, k), a, op_a, BfOperand::Pack { n, b, op_b }, alpha, c);
    }
    backend::matmul(threads, m, n, k, a, op_a, b, op_b, alpha, c);
}

/// `x` as f32, when this thread's products of `T` run on bfloat16 operands (see
/// [`rounds_to_bf16`]); `None` otherwise.
pub(crate) fn bf16_view<T: Real>(x: &[T]) -> Option<&[f32]> {
    rounds_to_bf16::<T>().then(|| as_f32(x)).flatten()
}

/// `x` as f32 if `T` is f32.
fn as_f32<T: Real>(x: &[T]) -> Option<&[f32]> {
    // SAFETY: T is f32 (checked): the same slice, typed as f32.
    is_f32::<T>().then(|| unsafe { std::slice::from_raw_parts(x.as_ptr() as *const f32, x.len()) })
}

/// [`as_f32`] for a destination.
fn as_f32_mut<T: Real>(x: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`.
    is_f32::<T>()
        .then(|| unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr() as *mut f32, x.len()) })
}

/// [`bf16_view`] for a destination.
fn bf16_view_mut<T: Real>(x: &mut [T]) -> Option<&mut [f32]> {
    rounds_to_bf16::<T>().then(|| as_f32_mut(x)).flatten()
}

/// The right operand of a bfloat16 product: to be packed now, or packed already.
enum BfOperand<'a> {
    Pack {
        n: usize,
        b: &'a [f32],
        op_b: Op,
    },
    Rounded {
        n: usize,
        b: &'a [u16],
        pitch: usize,
        op_b: Op,
    },
    Packed(&'a super::bf16::PackedB),
}

/// `c = alpha·c + op(a)·b` on bfloat16 operands, packed into this thread's buffers.
fn product_bf16(
    (m, k): (usize, usize),
    a: &[f32],
    op_a: Op,
    b: BfOperand<'_>,
    alpha: f32,
    c: &mut [f32],
) {
    use super::bf16::{matmul_bf16, Bf16Path, PackedA, PackedB};
    // The thread's packing buffers (a product started inside this one, as rayon may run on
    // a waiting thread, finds them taken and allocates its own).
    let (buffer_a, buffer_b) = PACKING.take();
    let pa = PackedA::new_in(buffer_a, m, k, a, op_a);
    let buffer_b = match b {
        BfOperand::Pack { n, b, op_b } => {
            let pb = PackedB::new_in(buffer_b, k, n, b, op_b);
            matmul_bf16(Bf16Path::detect(), &pa, &pb, alpha, c);
            pb.into_buffer()
        }
        BfOperand::Rounded { n, b, pitch, op_b } => {
            let pb = PackedB::from_rounded_in(buffer_b, (k, n), b, pitch, op_b);
            matmul_bf16(Bf16Path::detect(), &pa, &pb, alpha, c);
            pb.into_buffer()
        }
        BfOperand::Packed(pb) => {
            matmul_bf16(Bf16Path::detect(), &pa, pb, alpha, c);
            buffer_b
        }
    };
    PACKING.set((pa.into_buffer(), buffer_b));
}

/// [`matmul`] with `b` rounded to bfloat16 before ([`super::bf16::round`]), stored row-major
/// `k×n` (or `n×k` when transposed) in rows `pitch` apart, `pitch` even and zero-padded: a
/// bfloat16 product on any thread. `T` must be f32.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rounded<T: Real>(
    (m, n, k): (usize, usize, usize),
    a: &[T],
    op_a: Op,
    (b, pitch): (&[u16], usize),
    op_b: Op,
    alpha: T,
    c: &mut [T],
) {
    let (Some(a), Some(&[alpha]), Some(c)) = (
        as_f32(a),
        as_f32(std::slice::from_ref(&alpha)),
        as_f32_mut(c),
    ) else {
        panic!("matmul_rounded: bfloat16 operands need f32 products");
    };
    if !checked((m, n, k), a.len(), None, c.len()) {
        return;
    }
    let b = BfOperand::Rounded { n, b, pitch, op_b };
    product_bf16((m, k), a, op_a, b, alpha, c);
}

/// `op(a)[m×k] · b[:, block]` for consecutive blocks of `width` columns of a `b` stored
/// row-major `k×n`, on bfloat16 operands (`T` must be f32): each block of the product
/// (`m × its width`, row-major, in `c`'s memory) is handed to `each(first column, block)` as
/// soon as it is complete, so a product consumed block by block (col2im) stays in cache. A
/// is packed once. Every element has the bits of the whole product's ([`matmul`] on a `Bf16`
/// thread).
#[allow(clippy::too_many_arguments)]
pub fn matmul_bf16_column_blocks<T: Real>(
    (m, n, k): (usize, usize, usize),
    a: &[T],
    op_a: Op,
    b: &[T],
    width: usize,
    c: &mut Vec<T>,
    mut each: impl FnMut(usize, &mut [T]),
) {
    use super::bf16::{matmul_bf16, Bf16Path, PackedA, PackedB};
    let (Some(a_f32), Some(b)) = (as_f32(a), as_f32(b)) else {
        panic!("matmul_bf16_column_blocks: bfloat16 operands need f32 products");
    };
    checked((m, n, k), a.len(), Some(b.len()), m * n);
    assert!(width > 0, "matmul_bf16_column_blocks: empty blocks");
    if c.len() < m * width.min(n) {
        c.resize(m * width.min(n), T::zero());
    }
    let (buffer_a, mut buffer_b) = PACKING.take();
    let pa = PackedA::new_in(buffer_a, m, k, a_f32, op_a);
    for j0 in (0..n).step_by(width) {
        let w = width.min(n - j0);
        let pb = PackedB::columns_in(buffer_b, (k, w), &b[j0..], n);
        let block = &mut c[..m * w];
        let block_f32 = as_f32_mut(block).expect("T is f32");
        matmul_bf16(Bf16Path::detect(), &pa, &pb, 0.0, block_f32);
        buffer_b = pb.into_buffer();
        each(j0, block);
    }
    PACKING.set((pa.into_buffer(), buffer_b));
}

/// A right operand that stays the same over many products (a frozen area's synapses): its
/// values, row-major `k×n`, and their bfloat16 packing, made by the first product that runs
/// in bfloat16 and kept for the others.
#[derive(Debug)]
pub struct FixedOperand<T> {
    k: usize,
    n: usize,
    values: Vec<T>,
    packed: std::sync::OnceLock<super::bf16::PackedB>,
}

impl<T: Real> FixedOperand<T> {
    /// The operand `values`, stored row-major `k×n`.
    pub fn new(k: usize, n: usize, values: Vec<T>) -> Self {
        assert_eq!(
            values.len(),
            k * n,
            "fixed operand: {} values, expected {k}x{n}",
            values.len()
        );
        let packed = std::sync::OnceLock::new();
        FixedOperand {
            k,
            n,
            values,
            packed,
        }
    }

    /// The values, row-major `k×n`.
    pub fn values(&self) -> &[T] {
        &self.values
    }
}

impl<T: Real> Clone for FixedOperand<T> {
    fn clone(&self) -> Self {
        FixedOperand::new(self.k, self.n, self.values.clone())
    }
}

/// [`matmul`] with a [`FixedOperand`] on the right: `c[m×n] = alpha·c + op(a)[m×k] · b`.
/// Under bfloat16 the operand is packed once, not at every product.
pub fn matmul_fixed<T: Real>(
    m: usize,
    a: &[T],
    op_a: Op,
    b: &FixedOperand<T>,
    alpha: T,
    c: &mut [T],
) {
    let (k, n) = (b.k, b.n);
    let bf16 = (
        bf16_view(b.values()),
        bf16_view(a),
        bf16_view(std::slice::from_ref(&alpha)),
    );
    if let (Some(values), Some(a_bf), Some(&[alpha_bf]), true) = (bf16.0, bf16.1, bf16.2, k > 0) {
        if !checked((m, n, k), a.len(), None, c.len()) {
            return;
        }
        let c = bf16_view_mut(c).expect("T is f32");
        let packed = b
            .packed
            .get_or_init(|| super::bf16::PackedB::new(k, n, values, Op::Plain));
        return product_bf16((m, k), a_bf, op_a, BfOperand::Packed(packed), alpha_bf, c);
    }
    matmul(m, n, k, a, op_a, b.values(), Op::Plain, alpha, c);
}

/// Row and column strides of a row-major operand stored `rows×cols`, used as `op(stored)`.
#[cfg(not(feature = "blas"))]
fn strides(stored_cols: usize, op: Op) -> (isize, isize) {
    let ld = stored_cols as isize;
    match op {
        Op::Plain => (ld, 1),
        Op::Transposed => (1, ld),
    }
}

#[cfg(not(feature = "blas"))]
mod backend {
    use super::{strides, Op, Real, BLOCKS_PER_THREAD, PARALLEL_MIN_MACS};
    use rayon::prelude::*;
    use std::ops::Range;

    #[allow(clippy::too_many_arguments)]
    pub(super) fn matmul<T: Real>(
        threads: usize,
        m: usize,
        n: usize,
        k: usize,
        a: &[T],
        op_a: Op,
        b: &[T],
        op_b: Op,
        alpha: T,
        c: &mut [T],
    ) {
        let (a_rs, a_cs) = strides(if op_a == Op::Plain { k } else { m }, op_a);
        let (b_rs, b_cs) = strides(if op_b == Op::Plain { n } else { k }, op_b);
        let dst = SharedDst(c.as_mut_ptr());
        // One block of the product: rows `rows` and columns `cols` of `c`.
        let block = |rows: Range<usize>, cols: Range<usize>, parallelism| {
            // SAFETY: the asserts in `super::matmul` guarantee that every index the strides
            // produce for the whole product lies inside the three slices, so do those of any
            // block of it; `c` does not alias `a` or `b` (`&mut`), and blocks are disjoint.
            unsafe {
                gemm::gemm(
                    rows.len(),
                    cols.len(),
                    k,
                    dst.at(rows.start * n + cols.start),
                    1,
                    n as isize,
                    alpha != T::zero(),
                    a.as_ptr().offset(rows.start as isize * a_rs),
                    a_cs,
                    a_rs,
                    b.as_ptr().offset(cols.start as isize * b_cs),
                    b_cs,
                    b_rs,
                    alpha,
                    T::one(),
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        };
        if threads <= 1 || m * n * k < PARALLEL_MIN_MACS {
            block(0..m, 0..n, gemm::Parallelism::None);
            return;
        }
        // The longer side of the output is cut into blocks (whole vector widths), each a
        // single-threaded product: no synchronisation inside it, where the crate's own
        // threading meets at a barrier for every slice of the inner dimension.
        const ALIGN: usize = 16;
        let side = m.max(n);
        let cut = (1..=BLOCKS_PER_THREAD).rev().find_map(|per_thread| {
            let piece = side.div_ceil(threads * per_thread).div_ceil(ALIGN) * ALIGN;
            let last = side - (side - 1) / piece * piece;
            let smallest = if n >= m { (m, last) } else { (last, n) };
            same_kernel_path(smallest).then_some(piece)
        });
        let Some(piece) = cut else {
            block(0..m, 0..n, gemm::Parallelism::Rayon(threads));
            return;
        };
        // One job per block, so an idle thread takes over a block another has not begun.
        (0..side.div_ceil(piece))
            .into_par_iter()
            .with_max_len(1)
            .for_each(|t| {
                let part = t * piece..((t + 1) * piece).min(side);
                if n >= m {
                    block(0..m, part, gemm::Parallelism::None);
                } else {
                    block(part, 0..n, gemm::Parallelism::None);
                }
            });
    }

    /// Whether a block of `rows×cols` outputs (cut from a larger product, with no fewer of
    /// either) takes the `gemm` crate's general kernel path with the same inner-dimension
    /// slices as the whole product, so each of its elements is summed in the same order.
    /// Vector-product kernels (a side of 1), the dot-product kernel (≤ 256 outputs) and the
    /// shorter slices of products up to 64×64 sum differently.
    fn same_kernel_path((rows, cols): (usize, usize)) -> bool {
        rows >= 2 && cols >= 2 && rows * cols > 256 && (rows > 64 || cols > 64)
    }

    /// The destination pointer, shared by the threads that write disjoint blocks of it.
    #[derive(Clone, Copy)]
    struct SharedDst<T>(*mut T);
    // SAFETY: each thread writes only its own block (see `matmul`).
    unsafe impl<T> Send for SharedDst<T> {}
    unsafe impl<T> Sync for SharedDst<T> {}

    impl<T> SharedDst<T> {
        /// The element `offset` places in.
        ///
        /// # Safety
        /// `offset` must lie inside the destination.
        unsafe fn at(self, offset: usize) -> *mut T {
            self.0.add(offset)
        }
    }
}

#[cfg(feature = "blas")]
mod backend {
    use super::{Op, Real};
    use std::any::TypeId;

    // cblas-sys declares the functions; the system OpenBLAS provides them.
    #[link(name = "openblas")]
    extern "C" {}

    fn transpose(op: Op) -> cblas_sys::CBLAS_TRANSPOSE {
        match op {
            Op::Plain => cblas_sys::CBLAS_TRANSPOSE::CblasNoTrans,
            Op::Transposed => cblas_sys::CBLAS_TRANSPOSE::CblasTrans,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn matmul<T: Real>(
        threads: usize,
        m: usize,
        n: usize,
        k: usize,
        a: &[T],
        op_a: Op,
        b: &[T],
        op_b: Op,
        alpha: T,
        c: &mut [T],
    ) {
        let _ = threads; // OpenBLAS keeps its own thread count.
        let lda = if op_a == Op::Plain { k } else { m } as i32;
        let ldb = if op_b == Op::Plain { n } else { k } as i32;
        let (m, n, k) = (m as i32, n as i32, k as i32);
        let layout = cblas_sys::CBLAS_LAYOUT::CblasRowMajor;
        // SAFETY: sizes were checked in `super::matmul`; the TypeId test makes the pointer
        // casts exact.
        unsafe {
            if TypeId::of::<T>() == TypeId::of::<f32>() {
                cblas_sys::cblas_sgemm(
                    layout,
                    transpose(op_a),
                    transpose(op_b),
                    m,
                    n,
                    k,
                    1.0,
                    a.as_ptr() as *const f32,
                    lda,
                    b.as_ptr() as *const f32,
                    ldb,
                    alpha.to_f32().unwrap_or(0.0),
                    c.as_mut_ptr() as *mut f32,
                    n,
                );
            } else if TypeId::of::<T>() == TypeId::of::<f64>() {
                cblas_sys::cblas_dgemm(
                    layout,
                    transpose(op_a),
                    transpose(op_b),
                    m,
                    n,
                    k,
                    1.0,
                    a.as_ptr() as *const f64,
                    lda,
                    b.as_ptr() as *const f64,
                    ldb,
                    alpha.to_f64().unwrap_or(0.0),
                    c.as_mut_ptr() as *mut f64,
                    n,
                );
            } else {
                unreachable!("Real is implemented for f32 and f64 only");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], ta: Op, b: &[f64], tb: Op) -> Vec<f64> {
        let at = |i: usize, p: usize| {
            if ta == Op::Plain {
                a[i * k + p]
            } else {
                a[p * m + i]
            }
        };
        let bt = |p: usize, j: usize| {
            if tb == Op::Plain {
                b[p * n + j]
            } else {
                b[j * k + p]
            }
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_for_every_transpose_and_accumulate() {
        let (m, n, k) = (37, 29, 70);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
        let b: Vec<f64> = (0..k * n)
            .map(|i| ((i * 104729) % 11) as f64 - 5.0)
            .collect();
        for ta in [Op::Plain, Op::Transposed] {
            for tb in [Op::Plain, Op::Transposed] {
                let expected = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![f64::NAN; m * n];
                matmul(m, n, k, &a, ta, &b, tb, 0.0, &mut c);
                assert_eq!(c, expected, "{ta:?} {tb:?}");
                let mut acc = vec![1.0; m * n];
                matmul(m, n, k, &a, ta, &b, tb, 2.0, &mut acc);
                let want: Vec<f64> = expected.iter().map(|v| v + 2.0).collect();
                assert_eq!(acc, want, "accumulate {ta:?} {tb:?}");
            }
        }
    }

    #[test]
    fn a_fixed_operand_gives_the_products_of_its_values_and_is_packed_once() {
        // f32 and bf16 products, each against the plain product of the same values; the bf16
        // packing is made by the first bf16 product and only then.
        let (m, k, n) = (70, 48, 40);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i % 31) as f32 - 15.0) * 0.03)
            .collect();
        let values: Vec<f32> = (0..k * n)
            .map(|i| ((i % 23) as f32 - 11.0) * 0.07)
            .collect();
        let fixed = FixedOperand::new(k, n, values.clone());
        for precision in [Precision::F32, Precision::Bf16, Precision::Bf16] {
            set_thread_precision(precision);
            for (op_a, alpha) in [(Op::Plain, 0.0), (Op::Transposed, 1.0)] {
                let start: Vec<f32> = (0..m * n).map(|i| (i % 5) as f32).collect();
                let (mut want, mut got) = (start.clone(), start);
                matmul(m, n, k, &a, op_a, &values, Op::Plain, alpha, &mut want);
                matmul_fixed(m, &a, op_a, &fixed, alpha, &mut got);
                assert!(want == got, "{precision} {op_a:?}");
            }
            assert_eq!(fixed.packed.get().is_some(), precision == Precision::Bf16);
        }
        set_thread_precision(Precision::F32);
    }

    #[test]
    fn bf16_column_blocks_are_the_whole_products_columns() {
        let (m, n, k) = (70, 100, 48);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i % 31) as f32 - 15.0) * 0.03)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i % 23) as f32 - 11.0) * 0.07)
            .collect();
        set_thread_precision(Precision::Bf16);
        for op_a in [Op::Plain, Op::Transposed] {
            let mut whole = vec![0.0f32; m * n];
            matmul(m, n, k, &a, op_a, &b, Op::Plain, 0.0, &mut whole);
            for width in [1, 7, 32, 100, 130] {
                let (mut c, mut seen) = (Vec::new(), vec![f32::NAN; m * n]);
                matmul_bf16_column_blocks((m, n, k), &a, op_a, &b, width, &mut c, |j0, block| {
                    let w = block.len() / m;
                    assert!(w == width.min(n - j0), "block at {j0}: {w} columns");
                    for (i, row) in block.chunks_exact(w).enumerate() {
                        seen[i * n + j0..][..w].copy_from_slice(row);
                    }
                });
                assert!(seen == whole, "{op_a:?}, blocks of {width}");
            }
        }
        set_thread_precision(Precision::F32);
    }

    #[test]
    fn same_bits_whatever_the_thread_count() {
        use Op::{Plain, Transposed};
        // Every product shape of a PAD cycle at batch 64, and others.
        let shapes = [
            (1, 64, 4096, Plain, Plain),
            (1, 4096, 64, Plain, Transposed),
            (48, 64, 16384, Plain, Plain),
            (48, 16384, 64, Transposed, Plain),
            (64, 16384, 48, Plain, Plain),
            (128, 4096, 1024, Plain, Plain),
            (256, 64, 4096, Plain, Plain),
            (256, 1024, 2048, Plain, Plain),
            (256, 4096, 64, Plain, Transposed),
            (1024, 128, 4096, Plain, Plain),
            (1024, 4096, 128, Transposed, Plain),
            (2048, 256, 1024, Plain, Plain),
            (2048, 1024, 256, Transposed, Plain),
            (4096, 64, 1, Transposed, Plain),
            (4096, 64, 256, Transposed, Plain),
            (128, 1024, 1024, Plain, Transposed),
            // Blocks that would leave the general kernel path, or reach it from the
            // dot-product one.
            (32, 16, 1024, Plain, Transposed),
            (100, 40, 2048, Plain, Plain),
            (40, 70, 512, Transposed, Plain),
            (65, 70, 512, Plain, Transposed),
            (20, 600, 64, Plain, Plain),
            // Two blocks per thread would leave the general path, one does not.
            (300, 64, 256, Plain, Plain),
        ];
        for (m, n, k, op_a, op_b) in shapes {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i % 97) as f32 - 48.0) * 1e-2)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i % 89) as f32 - 44.0) * 1e-3)
                .collect();
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut c: Vec<f32> = (0..m * n).map(|i| (i % 7) as f32).collect();
                pool.install(|| matmul(m, n, k, &a, op_a, &b, op_b, 1.0, &mut c));
                c
            };
            let one = run(1);
            for threads in [2, 3, 4] {
                assert!(one == run(threads), "{m}x{n}x{k}, {threads} threads");
            }
        }
    }
}
