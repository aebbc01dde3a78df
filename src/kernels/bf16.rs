//! Dense matrix product with bfloat16 operands and f32 accumulation:
//! `C[m×n] = alpha·C + bf16(op(A))[m×k] · bf16(op(B))[k×n]`, where `bf16(x)` rounds an f32 to
//! bfloat16 (8 significant bits) to nearest, ties to even.
//!
//! PAD equivalent: none in the reference (f32 throughout); the same arithmetic as the
//! convolutions under `torch.autocast("cpu", dtype=torch.bfloat16)` (oneDNN's bf16 GEMM).
//!
//! The sum runs over the inner dimension in pairs, as the AVX-512 BF16 instruction `vdpbf16ps`
//! computes it: `acc ← (acc + a[2p+1]·b[2p+1]) + a[2p]·b[2p]`, every product exact in f32, every
//! addition rounded to nearest even, subnormal inputs and results flushed to zero. Two paths,
//! chosen at run time ([`Bf16Path::detect`]):
//! - `Avx512Bf16`: `vdpbf16ps` on 8 × 32 output tiles (CPUs with `avx512_bf16`: Intel Xeon
//!   since Cooper Lake, AMD Zen 4 and 5);
//! - `Portable`: the same operations in scalar Rust, in the same order, so it gives the same bits
//!   as `Avx512Bf16` on any machine.
//!
//! Operands are packed once per product into the kernels' layouts ([`PackedA`], [`PackedB`]): a
//! packed operand that does not change (a weight within a cycle) can be reused. Threads split the
//! rows of C, never the inner dimension, so results do not depend on the thread count.
//!
//! Not yet here (issue 25): the AMX path (`tdpbf16ps` tiles) and the use of this product by the
//! convolutions (`precision = "bf16"`).

use super::gemm::Op;
use rayon::prelude::*;

/// Rows of C per tile of the kernels.
const MR: usize = 8;
/// Columns of C per tile (two vectors of 16 f32).
const NR: usize = 32;

/// `x` rounded to bfloat16, to nearest with ties to even; NaN stays NaN (quiet), infinities stay.
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) as u16) | 0x0040;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// The f32 of a bfloat16 (exact).
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// `x` with a subnormal flushed to a zero of its sign (what `vdpbf16ps` does to inputs and
/// results).
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        f32::from_bits(x.to_bits() & 0x8000_0000)
    } else {
        x
    }
}

/// `x` rounded to bfloat16 with a subnormal result flushed to zero.
fn to_bf16_flushed(x: f32) -> u16 {
    let h = to_bf16(x);
    if h & 0x7f80 == 0 {
        h & 0x8000
    } else {
        h
    }
}

/// Which kernel computes the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Path {
    /// `vdpbf16ps` (AVX-512 BF16).
    Avx512Bf16,
    /// Scalar Rust, the same bits as `Avx512Bf16`.
    Portable,
}

impl Bf16Path {
    /// The fastest path this CPU runs.
    pub fn detect() -> Bf16Path {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16")
            {
                return Bf16Path::Avx512Bf16;
            }
        }
        Bf16Path::Portable
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Bf16Path::Portable => true,
            Bf16Path::Avx512Bf16 => Bf16Path::detect() == Bf16Path::Avx512Bf16,
        }
    }

    /// The name `padsim bench` prints.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Path::Avx512Bf16 => "avx512_bf16",
            Bf16Path::Portable => "portable",
        }
    }
}

/// `op(A)` (m × k) in bfloat16, for the kernels: rows padded to a multiple of [`MR`], each row
/// a run of `k/2` (rounded up) pairs `(a[2p], a[2p+1])` packed in a u32, low half first.
#[derive(Clone, Debug)]
pub struct PackedA {
    m: usize,
    k: usize,
    pairs: usize,
    data: Vec<u32>,
}

/// `op(B)` (k × n) in bfloat16, for the kernels: panels of [`NR`] columns (the last padded with
/// zeros), each a run of `k/2` (rounded up) rows of NR pairs `(b[2p][j], b[2p+1][j])`.
#[derive(Clone, Debug)]
pub struct PackedB {
    k: usize,
    n: usize,
    pairs: usize,
    data: Vec<u32>,
}

fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16_flushed(lo) as u32 | (to_bf16_flushed(hi) as u32) << 16
}

impl PackedA {
    /// Packs `op(a)`, with `a` stored row-major `m×k` (`Op::Plain`) or `k×m` (`Op::Transposed`).
    pub fn new(m: usize, k: usize, a: &[f32], op: Op) -> PackedA {
        assert_eq!(
            a.len(),
            m * k,
            "PackedA: {} elements, expected {m}x{k}",
            a.len()
        );
        let pairs = k.div_ceil(2);
        let rows = m.div_ceil(MR) * MR;
        let at = |i: usize, l: usize| -> f32 {
            if i >= m || l >= k {
                0.0
            } else {
                match op {
                    Op::Plain => a[i * k + l],
                    Op::Transposed => a[l * m + i],
                }
            }
        };
        let mut data = vec![0u32; rows * pairs];
        data.par_chunks_mut(pairs.max(1))
            .enumerate()
            .for_each(|(i, row)| {
                for (p, slot) in row.iter_mut().enumerate() {
                    *slot = pair(at(i, 2 * p), at(i, 2 * p + 1));
                }
            });
        PackedA { m, k, pairs, data }
    }
}

impl PackedB {
    /// Packs `op(b)`, with `b` stored row-major `k×n` (`Op::Plain`) or `n×k` (`Op::Transposed`).
    pub fn new(k: usize, n: usize, b: &[f32], op: Op) -> PackedB {
        assert_eq!(
            b.len(),
            k * n,
            "PackedB: {} elements, expected {k}x{n}",
            b.len()
        );
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let at = |l: usize, j: usize| -> f32 {
            if l >= k || j >= n {
                0.0
            } else {
                match op {
                    Op::Plain => b[l * n + j],
                    Op::Transposed => b[j * k + l],
                }
            }
        };
        let mut data = vec![0u32; panels * pairs * NR];
        data.par_chunks_mut((pairs * NR).max(1))
            .enumerate()
            .for_each(|(panel, block)| {
                for (p, row) in block.chunks_mut(NR).enumerate() {
                    for (jj, slot) in row.iter_mut().enumerate() {
                        let j = panel * NR + jj;
                        *slot = pair(at(2 * p, j), at(2 * p + 1, j));
                    }
                }
            });
        PackedB { k, n, pairs, data }
    }
}

/// `c[m×n] = alpha·c + a·b` on packed bfloat16 operands, on the current rayon pool.
/// With `alpha = 0` the old contents of `c` are ignored (NaNs included).
pub fn matmul_bf16(path: Bf16Path, a: &PackedA, b: &PackedB, alpha: f32, c: &mut [f32]) {
    let (m, n) = (a.m, b.n);
    assert_eq!(
        a.k, b.k,
        "matmul_bf16: inner dimensions {} and {}",
        a.k, b.k
    );
    assert_eq!(
        c.len(),
        m * n,
        "matmul_bf16: dst has {} elements, expected {m}x{n}",
        c.len()
    );
    assert!(
        path.available(),
        "matmul_bf16: this CPU lacks {}",
        path.name()
    );
    if m == 0 || n == 0 {
        return;
    }
    // Blocks of rows, a multiple of MR, about four per thread: results do not depend on it.
    let threads = rayon::current_num_threads().max(1);
    let tiles = m.div_ceil(MR);
    let tiles_per_block = tiles.div_ceil(4 * threads).max(1);
    let rows_per_block = tiles_per_block * MR;
    c.par_chunks_mut(rows_per_block * n)
        .enumerate()
        .for_each(|(block, c_block)| {
            let row0 = block * rows_per_block;
            let rows = c_block.len() / n;
            let mut tile = [[0f32; NR]; MR];
            for panel in 0..n.div_ceil(NR) {
                let b_panel = &b.data[panel * b.pairs * NR..(panel + 1) * b.pairs * NR];
                let cols = (n - panel * NR).min(NR);
                for r0 in (0..rows).step_by(MR) {
                    let a_tile = &a.data[(row0 + r0) * a.pairs..(row0 + r0 + MR) * a.pairs];
                    match path {
                        Bf16Path::Portable => tile_portable(a.pairs, a_tile, b_panel, &mut tile),
                        Bf16Path::Avx512Bf16 => {
                            #[cfg(target_arch = "x86_64")]
                            // SAFETY: `available()` checked that the CPU has the features; the
                            // slices hold MR × pairs and pairs × NR elements.
                            unsafe {
                                tile_avx512(a.pairs, a_tile, b_panel, &mut tile)
                            }
                            #[cfg(not(target_arch = "x86_64"))]
                            unreachable!("checked by available()")
                        }
                    }
                    for (r, tile_row) in tile.iter().enumerate().take((rows - r0).min(MR)) {
                        let c_row = &mut c_block[(r0 + r) * n + panel * NR..][..cols];
                        for (dst, &acc) in c_row.iter_mut().zip(tile_row) {
                            *dst = if alpha == 0.0 {
                                acc
                            } else {
                                alpha * *dst + acc
                            };
                        }
                    }
                }
            }
        });
}

/// One MR × NR tile in scalar Rust, in `vdpbf16ps`'s order.
fn tile_portable(pairs: usize, a: &[u32], b: &[u32], tile: &mut [[f32; NR]; MR]) {
    let lo = |v: u32| from_bf16(v as u16);
    let hi = |v: u32| from_bf16((v >> 16) as u16);
    for (r, tile_row) in tile.iter_mut().enumerate() {
        let a_row = &a[r * pairs..(r + 1) * pairs];
        let mut acc = [0f32; NR];
        for (p, &ap) in a_row.iter().enumerate() {
            let (a0, a1) = (lo(ap), hi(ap));
            for (acc, &bp) in acc.iter_mut().zip(&b[p * NR..(p + 1) * NR]) {
                let t = flush(*acc + flush(a1 * hi(bp)));
                *acc = flush(t + flush(a0 * lo(bp)));
            }
        }
        *tile_row = acc;
    }
}

/// One MR × NR tile with `vdpbf16ps`: 16 accumulators, two B vectors per pair of the inner
/// dimension, each A pair broadcast.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_avx512(pairs: usize, a: &[u32], b: &[u32], tile: &mut [[f32; NR]; MR]) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= MR * pairs && b.len() >= pairs * NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (a_ptr, b_ptr) = (a.as_ptr(), b.as_ptr());
    for p in 0..pairs {
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b_ptr.add(p * NR) as *const _));
        let b1: __m512bh =
            std::mem::transmute(_mm512_loadu_si512(b_ptr.add(p * NR + 16) as *const _));
        for (r, acc_row) in acc.iter_mut().enumerate() {
            let a_pair: __m512bh =
                std::mem::transmute(_mm512_set1_epi32(*a_ptr.add(r * pairs + p) as i32));
            acc_row[0] = _mm512_dpbf16_ps(acc_row[0], a_pair, b0);
            acc_row[1] = _mm512_dpbf16_ps(acc_row[1], a_pair, b1);
        }
    }
    for (tile_row, acc_row) in tile.iter_mut().zip(&acc) {
        _mm512_storeu_ps(tile_row.as_mut_ptr(), acc_row[0]);
        _mm512_storeu_ps(tile_row.as_mut_ptr().add(16), acc_row[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_rand::rand::Rng;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to the even.
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        // Just above the half rounds up.
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(to_bf16(-2.5), 0xc020);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        // The largest f32 rounds to infinity, as IEEE rounding does.
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
        for x in [0.1f32, -3.7, 1e-20, 6.5e4] {
            let back = from_bf16(to_bf16(x));
            assert!(((back - x) / x).abs() <= 1.0 / 256.0, "{x} -> {back}");
        }
    }

    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// The product in f64 from the same bfloat16-rounded operands.
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        op_a: Op,
        b: &[f32],
        op_b: Op,
    ) -> Vec<f64> {
        let r = |x: f32| from_bf16(to_bf16(x)) as f64;
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|l| {
                        let x = match op_a {
                            Op::Plain => a[i * k + l],
                            Op::Transposed => a[l * m + i],
                        };
                        let y = match op_b {
                            Op::Plain => b[l * n + j],
                            Op::Transposed => b[j * k + l],
                        };
                        r(x) * r(y)
                    })
                    .sum();
            }
        }
        c
    }

    /// PAD's product shapes (im2col GEMMs of V1–V4 and G at batch 64, smaller in m) and ragged
    /// ones (odd k, partial tiles).
    const SHAPES: [(usize, usize, usize); 7] = [
        (64, 256, 48),
        (128, 64, 1024),
        (256, 16, 2048),
        (3, 1024, 64),
        (13, 37, 7),
        (9, 33, 1),
        (17, 65, 129),
    ];

    #[test]
    fn each_available_path_matches_the_f64_product_of_the_rounded_operands() {
        for path in [Bf16Path::Portable, Bf16Path::Avx512Bf16] {
            if !path.available() {
                eprintln!("skipped: this CPU has no {} (not tested here)", path.name());
                continue;
            }
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                for (op_a, op_b) in [(Op::Plain, Op::Plain), (Op::Transposed, Op::Transposed)] {
                    let a = random(m * k, 2 * s as u64);
                    let b = random(k * n, 2 * s as u64 + 1);
                    let mut c = random(m * n, 99);
                    let old = c.clone();
                    let pa = PackedA::new(m, k, &a, op_a);
                    let pb = PackedB::new(k, n, &b, op_b);
                    matmul_bf16(path, &pa, &pb, 0.5, &mut c);
                    let want = reference(m, n, k, &a, op_a, &b, op_b);
                    for i in 0..m * n {
                        let expected = 0.5 * old[i] as f64 + want[i];
                        // f32 accumulation of k terms of size up to 1: k·2^-24 relative to the
                        // running sum's magnitude, bounded by k.
                        let bound = 2.0 * k as f64 * f32::EPSILON as f64 * (k as f64).sqrt();
                        assert!(
                            (c[i] as f64 - expected).abs() <= bound.max(1e-6),
                            "{path:?} {m}x{n}x{k} {op_a:?}/{op_b:?} [{i}]: {} vs {expected}",
                            c[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_avx512_path_gives_the_portable_paths_bits() {
        if !Bf16Path::Avx512Bf16.available() {
            eprintln!("skipped: this CPU has no avx512_bf16 (not tested here)");
            return;
        }
        for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
            let a = random(m * k, 10 + s as u64);
            let b = random(k * n, 20 + s as u64);
            let pa = PackedA::new(m, k, &a, Op::Plain);
            let pb = PackedB::new(k, n, &b, Op::Plain);
            let mut portable = vec![f32::NAN; m * n];
            let mut avx = vec![f32::NAN; m * n];
            matmul_bf16(Bf16Path::Portable, &pa, &pb, 0.0, &mut portable);
            matmul_bf16(Bf16Path::Avx512Bf16, &pa, &pb, 0.0, &mut avx);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&portable), bits(&avx), "{m}x{n}x{k}");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let (m, n, k) = (200, 96, 300);
        let (a, b) = (random(m * k, 5), random(k * n, 6));
        let pa = PackedA::new(m, k, &a, Op::Plain);
        let pb = PackedB::new(k, n, &b, Op::Plain);
        let path = Bf16Path::detect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![0f32; m * n];
            pool.install(|| matmul_bf16(path, &pa, &pb, 0.0, &mut c));
            c
        };
        let one = run(1);
        for threads in [2, 3, 7] {
            assert!(one
                .iter()
                .zip(run(threads))
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
