//! Dense matrix product `C = alpha·C + op(A)·op(B)` on row-major slices.
//!
//! PAD equivalent: the `torch.mm` calls inside `nn.Conv2d` / `nn.ConvTranspose2d` (oneDNN/MKL).
//!
//! The default backend is the pure-Rust `gemm` crate (AVX-512 kernels through its `x86-v4`
//! feature); the `blas` feature routes the product through a system CBLAS (OpenBLAS) instead.
//! The `gemm` crate splits the output, never the inner dimension, across threads, so every
//! element is summed in the same order whatever the thread count: results are bit-identical
//! with 1 or N threads.

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
    assert_eq!(
        a.len(),
        m * k,
        "matmul: lhs has {} elements, expected {m}x{k}",
        a.len()
    );
    assert_eq!(
        b.len(),
        k * n,
        "matmul: rhs has {} elements, expected {k}x{n}",
        b.len()
    );
    assert_eq!(
        c.len(),
        m * n,
        "matmul: dst has {} elements, expected {m}x{n}",
        c.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    FLOPS_PERFORMED.with(|f| f.set(f.get() + (2 * m * n * k) as u64));
    if k == 0 {
        c.iter_mut().for_each(|v| *v = alpha * *v);
        return;
    }
    backend::matmul(threads, m, n, k, a, op_a, b, op_b, alpha, c);
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
    use super::{strides, Op, Real, PARALLEL_MIN_MACS};

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
        let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: the asserts in `super::matmul` guarantee that every index the strides
        // produce lies inside the three slices, and `c` does not alias `a` or `b` (`&mut`).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                alpha != T::zero(),
                a.as_ptr(),
                a_cs,
                a_rs,
                b.as_ptr(),
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
    fn same_bits_with_one_and_two_threads() {
        let (m, n, k) = (128, 1024, 1024);
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
            let mut c = vec![0.0f32; m * n];
            pool.install(|| matmul(m, n, k, &a, Op::Plain, &b, Op::Transposed, 0.0, &mut c));
            c
        };
        assert_eq!(run(1), run(2));
    }
}
