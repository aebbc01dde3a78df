//! Dense matrix product with bfloat16 operands and f32 accumulation:
//! `C[m×n] = alpha·C + bf16(op(A))[m×k] · bf16(op(B))[k×n]`, where `bf16(x)` rounds an f32 to
//! bfloat16 (8 significant bits) to nearest, ties to even.
//!
//! PAD equivalent: none in the reference (f32 throughout); the same arithmetic as the
//! convolutions under `torch.autocast("cpu", dtype=torch.bfloat16)` (oneDNN's bf16 GEMM).
//!
//! The sum runs over the inner dimension in pairs, as the AVX-512 BF16 instruction `vdpbf16ps`
//! computes it: `acc ← (acc + a[2p+1]·b[2p+1]) + a[2p]·b[2p]`, every product exact in f32, every
//! addition rounded to nearest even, subnormal inputs and results flushed to zero. Three paths,
//! chosen at run time ([`Bf16Path::detect`]):
//! - `Amx`: `tdpbf16ps` on 32 × 32 output blocks of four 16 × 16 tiles (Intel Xeon since
//!   Sapphire Rapids), after Linux has granted the process the tile data state
//!   (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); stable Rust has no AMX intrinsics,
//!   so the instructions are inline assembly. The unit sums a tile's 32 products per output in
//!   its own order: same bits for any thread count, not those of the other paths;
//! - `Avx512Bf16`: `vdpbf16ps` on 8 × 32 output tiles (CPUs with `avx512_bf16`: Intel Xeon
//!   since Cooper Lake, AMD Zen 4 and 5);
//! - `Portable`: the same operations in scalar Rust, in the same order, so it gives the same bits
//!   as `Avx512Bf16` on any machine.
//!
//! Operands are packed into the kernels' layouts ([`PackedA`], [`PackedB`]) with
//! `vcvtne2ps2bf16` where the CPU has AVX-512 BF16 (the same bits as the scalar rounding);
//! operands stored transposed go through 16 × 16 register transposes. Threads split the rows of
//! C, never the inner dimension, so results do not depend on the thread count.
//!
//! Used by every f32 product of a thread whose [`super::gemm::Precision`] is `Bf16` (a run with
//! `precision = "bf16"` sets it in its pool): such products pack both operands, into per-thread
//! buffers kept between products. Three kinds of operand skip that work: synapses that do not
//! change ([`super::gemm::FixedOperand`], the frozen encoder's) are packed once; patch matrices
//! are kept already rounded ([`round`], [`PackedB::from_rounded_in`]), half the bytes to write
//! and read. `$PADSIM_BF16_PATH` pins the path ([`Bf16Path::detect`]). Where the time goes:
//! benches/RESULTS.md.

use super::gemm::Op;
use rayon::prelude::*;

/// The environment variable that pins the kernel path ([`Bf16Path::detect`]).
pub const PATH_VARIABLE: &str = "PADSIM_BF16_PATH";

/// Rows of C per tile of the AVX-512 and portable kernels.
const MR: usize = 8;
/// Columns of C per tile (two vectors of 16 f32; two AMX tiles).
const NR: usize = 32;
/// Rows of C per block of the AMX kernel (two tiles); packed A is padded to a multiple of it.
const AMX_ROWS: usize = 32;
/// Pairs of the inner dimension per AMX tile (64 bytes); packed operands are padded to it.
const AMX_PAIRS: usize = 16;
/// Panels of packed B, or blocks of packed A, written by one task.
const PANEL_GROUP: usize = 8;
/// Pairs of a transposed B operand converted at a time (their panel rows, 32 KB, stay in L1).
const PAIR_CHUNK: usize = 256;

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

/// `x` rounded to bfloat16 as `vcvtneps2bf16` does it: a subnormal input is a zero of its sign
/// (a normal f32 always rounds to a normal bfloat16 or infinity: the exponents are the same).
fn to_bf16_flushed(x: f32) -> u16 {
    to_bf16(flush(x))
}

/// Which kernel computes the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Path {
    /// `tdpbf16ps` (AMX tiles).
    Amx,
    /// `vdpbf16ps` (AVX-512 BF16).
    Avx512Bf16,
    /// Scalar Rust, the same bits as `Avx512Bf16`.
    Portable,
}

impl Bf16Path {
    /// The path products run on: the one named by `$PADSIM_BF16_PATH` (`amx`, `avx512_bf16`
    /// or `portable`; to give every node of a mixed cluster the same bits, or to time a path),
    /// else the fastest this CPU runs. Panics if the variable names no path this CPU runs.
    pub fn detect() -> Bf16Path {
        static CHOSEN: std::sync::OnceLock<Bf16Path> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| match std::env::var(PATH_VARIABLE) {
            Ok(name) => Bf16Path::named(&name).unwrap_or_else(|e| panic!("{PATH_VARIABLE}: {e}")),
            Err(_) => Bf16Path::fastest(),
        })
    }

    /// The fastest path this CPU runs.
    pub fn fastest() -> Bf16Path {
        [Bf16Path::Amx, Bf16Path::Avx512Bf16]
            .into_iter()
            .find(|path| path.available())
            .unwrap_or(Bf16Path::Portable)
    }

    /// The path called `name` ([`Bf16Path::name`]), if this CPU runs it.
    pub fn named(name: &str) -> Result<Bf16Path, String> {
        let all = [Bf16Path::Amx, Bf16Path::Avx512Bf16, Bf16Path::Portable];
        let Some(path) = all.into_iter().find(|p| p.name() == name) else {
            return Err(format!("'{name}': expected amx, avx512_bf16 or portable"));
        };
        if !path.available() {
            return Err(format!("this CPU cannot run the {name} path"));
        }
        Ok(path)
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Bf16Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Bf16Path::Amx => amx::usable(),
            #[cfg(target_arch = "x86_64")]
            Bf16Path::Avx512Bf16 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bf16")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The name `padsim bench` prints.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Path::Amx => "amx",
            Bf16Path::Avx512Bf16 => "avx512_bf16",
            Bf16Path::Portable => "portable",
        }
    }
}

/// `op(A)` (m × k) in bfloat16, for the kernels: rows padded to a multiple of 32, each row a run
/// of `k/2` pairs `(a[2p], a[2p+1])` packed in a u32, low half first, padded with zero pairs to
/// a multiple of 16 (the zeros add exact zeros). Blocks of 32 rows, each stored as its 32 × 16
/// slices of 16 pairs one after the other, so that an AMX tile (16 rows × 16
/// pairs) is 1 KB of consecutive memory: measured 10–20% faster tile products than rows.
#[derive(Clone, Debug)]
pub struct PackedA {
    m: usize,
    k: usize,
    pairs: usize,
    data: Vec<u32>,
}

/// `op(B)` (k × n) in bfloat16, for the kernels: panels of 32 columns (the last padded with
/// zeros), each a run of `k/2` rows (padded with zeros to a multiple of 16) of NR pairs
/// `(b[2p][j], b[2p+1][j])`.
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

/// `dst[p] = pair(src[2p], src[2p+1])` (a missing last element is 0): a run of the inner
/// dimension, contiguous in memory, converted in place order, its pairs written in runs of 16
/// that lie `stride` apart in `dst` (16: one after the other).
fn pairs_along(src: &[f32], dst: &mut [u32], stride: usize) {
    let pairs = src.len().div_ceil(2);
    assert!(pairs == 0 || (pairs - 1) / 16 * stride + (pairs - 1) % 16 < dst.len());
    #[cfg(target_arch = "x86_64")]
    if simd::usable() {
        // SAFETY: the CPU has the features (checked by `usable`); lengths as asserted.
        return unsafe { simd::pairs_along(src, dst, stride) };
    }
    for (j, two) in src.chunks(2).enumerate() {
        dst[j / 16 * stride + j % 16] = pair(two[0], two.get(1).copied().unwrap_or(0.0));
    }
}

/// `dst[j] = pair(lo[j], hi[j])` (`hi` absent: zeros): two rows of the inner dimension.
fn pairs_across(lo: &[f32], hi: Option<&[f32]>, dst: &mut [u32]) {
    debug_assert!(dst.len() == lo.len());
    // Chunks of NR columns NR apart: one after the other.
    pairs_across_panels(lo, hi, dst, NR);
}

/// [`pairs_across`] for the columns of consecutive panels: `lo` and `hi` hold the columns
/// `j0..j0 + lo.len()` of two rows; column chunk `q` of `NR` goes to `dst[q·stride..]`.
fn pairs_across_panels(lo: &[f32], hi: Option<&[f32]>, dst: &mut [u32], stride: usize) {
    assert!(hi.is_none_or(|h| h.len() == lo.len()));
    assert!(lo.is_empty() || (lo.len() - 1) / NR * stride + (lo.len() - 1) % NR < dst.len());
    #[cfg(target_arch = "x86_64")]
    if simd::usable() {
        // SAFETY: the CPU has the features (checked by `usable`); lengths as asserted.
        return unsafe { simd::pairs_across_panels(lo, hi, dst, stride) };
    }
    for (j, &l) in lo.iter().enumerate() {
        dst[j / NR * stride + j % NR] = pair(l, hi.map_or(0.0, |h| h[j]));
    }
}

/// Where the values of an operand come from: f32, rounded while packing, or bfloat16 values
/// rounded before, in rows `pitch` apart.
#[derive(Clone, Copy)]
enum Source<'a> {
    Values { b: &'a [f32], pitch: usize },
    Rounded { b: &'a [u16], pitch: usize },
}

/// `values` rounded to bfloat16 into `rounded` (as the packing rounds: to nearest even,
/// subnormal inputs as zeros).
pub fn round(values: &[f32], rounded: &mut [u16]) {
    assert_eq!(values.len(), rounded.len(), "round: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if simd::usable() {
        // SAFETY: the CPU has the features (checked by `usable`); lengths as asserted.
        return unsafe { simd::round(values, rounded) };
    }
    for (r, &v) in rounded.iter_mut().zip(values) {
        *r = to_bf16_flushed(v);
    }
}

/// [`pairs_across_panels`] for rounded rows: `dst[q·stride + j] = (lo[j], hi[j])` by column
/// chunks of `NR`.
fn rounded_pairs_across_panels(lo: &[u16], hi: Option<&[u16]>, dst: &mut [u32], stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if simd::usable() {
        assert!(hi.is_none_or(|h| h.len() == lo.len()));
        assert!(lo.is_empty() || (lo.len() - 1) / NR * stride + (lo.len() - 1) % NR < dst.len());
        // SAFETY: the CPU has the features (checked by `usable`); lengths as asserted.
        return unsafe { simd::rounded_pairs_across_panels(lo, hi, dst, stride) };
    }
    for (j, &l) in lo.iter().enumerate() {
        dst[j / NR * stride + j % NR] = l as u32 | (hi.map_or(0, |h| h[j]) as u32) << 16;
    }
}

/// Columns `j0..j0 + cols` of `op(B)` for a B stored `n×k` (`Op::Transposed`) into their
/// panel `block` (pair-major, `NR` columns per pair).
fn transposed_panel(source: Source<'_>, k: usize, (j0, cols): (usize, usize), block: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::usable() {
        // SAFETY: the CPU has the features (checked by `usable`); the columns and `block` as
        // asserted inside.
        return unsafe { simd::transposed_panel(source, k, (j0, cols), block) };
    }
    let used = k.div_ceil(2);
    let mut run = [0u32; PAIR_CHUNK];
    for p0 in (0..used).step_by(PAIR_CHUNK) {
        let len = (used - p0).min(PAIR_CHUNK);
        for jj in 0..cols {
            match source {
                Source::Values { b, pitch } => {
                    let src = &b[(j0 + jj) * pitch..][2 * p0..(2 * (p0 + len)).min(k)];
                    pairs_along(src, &mut run[..len], 16);
                }
                Source::Rounded { b, pitch } => {
                    let src = &b[(j0 + jj) * pitch + 2 * p0..][..2 * len];
                    for (r, two) in run.iter_mut().zip(src.chunks_exact(2)) {
                        *r = two[0] as u32 | (two[1] as u32) << 16;
                    }
                }
            }
            for (p, &v) in run[..len].iter().enumerate() {
                block[(p0 + p) * NR + jj] = v;
            }
        }
    }
}

/// Packing with `vcvtne2ps2bf16` (AVX-512 BF16): 32 roundings per instruction, the same bits
/// as [`pair`] (round to nearest even, subnormal inputs as zeros, NaNs quieted).
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    pub fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512bf16")
        })
    }

    /// See [`super::pairs_along`]: 32 consecutive f32 become 16 consecutive pairs.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn pairs_along(src: &[f32], dst: &mut [u32], stride: usize) {
        let pairs = src.len().div_ceil(2);
        for i in 0..pairs.div_ceil(16) {
            // The last run may be short: masked lanes are neither read nor written (an odd
            // last element pairs with a zero, as in the scalar packing).
            let rest = src.len() - 32 * i;
            let at = src.as_ptr().wrapping_add(32 * i);
            let lo = _mm512_maskz_loadu_ps(first_lanes(rest), at);
            let hi =
                _mm512_maskz_loadu_ps(first_lanes(rest.saturating_sub(16)), at.wrapping_add(16));
            // The second operand lands in the low half: lo's 16 values, then hi's.
            let h: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            let out = dst.as_mut_ptr().add(i * stride) as *mut i32;
            _mm512_mask_storeu_epi32(out, first_lanes(pairs - 16 * i), h);
        }
    }

    /// Interleaves the halves of a vector of 32 bfloat16: u16 lanes 0, 16, 1, 17, ...
    #[target_feature(enable = "avx512f,avx512bw")]
    fn interleave_order() -> __m512i {
        _mm512_set_epi16(
            31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20,
            4, 19, 3, 18, 2, 17, 1, 16, 0,
        )
    }

    /// The 16 × 16 matrix of u32 whose rows are `rows` transposed in place: pairs of rows
    /// interleaved by 32 and 64 bits within each 128-bit lane, then the 4 × 4 grids of lanes
    /// transposed by two rounds of lane shuffles (64 instructions).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose16(rows: &mut [__m512i; 16]) {
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(rows[2 * i], rows[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(rows[2 * i], rows[2 * i + 1]);
        }
        // u[4g + c], lane L: rows 4g..4g + 4 of column 4L + c.
        let mut u = [_mm512_setzero_si512(); 16];
        for g in 0..4 {
            let [t0, t1, t2, t3] = [t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]];
            u[4 * g] = _mm512_unpacklo_epi64(t0, t2);
            u[4 * g + 1] = _mm512_unpackhi_epi64(t0, t2);
            u[4 * g + 2] = _mm512_unpacklo_epi64(t1, t3);
            u[4 * g + 3] = _mm512_unpackhi_epi64(t1, t3);
        }
        // Row 4L + c of the result gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
        const EVEN: i32 = 0b10_00_10_00;
        const ODD: i32 = 0b11_01_11_01;
        for c in 0..4 {
            let x0 = _mm512_shuffle_i32x4::<EVEN>(u[c], u[4 + c]);
            let x1 = _mm512_shuffle_i32x4::<ODD>(u[c], u[4 + c]);
            let y0 = _mm512_shuffle_i32x4::<EVEN>(u[8 + c], u[12 + c]);
            let y1 = _mm512_shuffle_i32x4::<ODD>(u[8 + c], u[12 + c]);
            rows[c] = _mm512_shuffle_i32x4::<EVEN>(x0, y0);
            rows[4 + c] = _mm512_shuffle_i32x4::<EVEN>(x1, y1);
            rows[8 + c] = _mm512_shuffle_i32x4::<ODD>(x0, y0);
            rows[12 + c] = _mm512_shuffle_i32x4::<ODD>(x1, y1);
        }
    }

    /// The mask of the first `count` lanes (all 16 from 16 on).
    fn first_lanes(count: usize) -> __mmask16 {
        ((1u32 << count.min(16)) - 1) as __mmask16
    }

    /// Rows `i0..i0 + valid` of `op(a)` for an `a` stored `k×m` (`Op::Transposed`) into their
    /// packed rows in `dst` (`pairs` apart): per 16 pairs and 16 rows, the pairs are formed
    /// across the stored rows (16 rows at a time, as [`pairs_across`]) and the 16 × 16 result
    /// transposed, so that every store is a whole run of one packed row. The stored rows are
    /// read along their `valid` elements.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn a_transposed_rows(
        a: &[f32],
        (m, k): (usize, usize),
        (i0, valid): (usize, usize),
        dst: &mut [u32],
        pairs: usize,
    ) {
        assert!(i0 + valid <= m && a.len() == m * k && dst.len() >= valid * pairs);
        let order = interleave_order();
        let used = k.div_ceil(2);
        // Masked lanes are not read: the pointers may run past `a` (wrapping_add).
        let at = |row: usize, first: usize| a.as_ptr().wrapping_add(row * m + first);
        for p0 in (0..used).step_by(16) {
            for h in 0..valid.div_ceil(16) {
                let (first, count) = (i0 + 16 * h, (valid - 16 * h).min(16));
                let lanes = first_lanes(count);
                let mut v = [_mm512_setzero_si512(); 16];
                for (t, vt) in v.iter_mut().enumerate().take(used - p0) {
                    let p = p0 + t;
                    let lo = _mm512_maskz_loadu_ps(lanes, at(2 * p, first));
                    let hi = if 2 * p + 1 < k {
                        _mm512_maskz_loadu_ps(lanes, at(2 * p + 1, first))
                    } else {
                        _mm512_setzero_ps()
                    };
                    let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                    *vt = _mm512_permutexvar_epi16(order, both);
                }
                transpose16(&mut v);
                for (i, row) in v.iter().enumerate().take(count) {
                    let out = dst.as_mut_ptr().add(super::a_offset(16 * h + i, p0, pairs));
                    _mm512_storeu_si512(out as *mut __m512i, *row);
                }
            }
        }
    }

    /// See [`super::transposed_panel`]: per 16 columns and 16 pairs, each stored row's run
    /// of 16 pairs is formed (rounded as [`pairs_along`], or read as it is), and the 16 × 16
    /// result transposed, so that every store is half a panel row.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn transposed_panel(
        source: super::Source<'_>,
        k: usize,
        (j0, cols): (usize, usize),
        block: &mut [u32],
    ) {
        use super::{Source, NR};
        let used = k.div_ceil(2);
        let (len, pitch, run) = match source {
            Source::Values { b, pitch } => (b.len(), pitch, k),
            Source::Rounded { b, pitch } => (b.len(), pitch, 2 * used),
        };
        assert!(cols <= NR && block.len() >= used * NR);
        assert!(cols == 0 || (j0 + cols - 1) * pitch + run <= len);
        for h in 0..cols.div_ceil(16) {
            let count = (cols - 16 * h).min(16);
            for p0 in (0..used).step_by(16) {
                let mut v = [_mm512_setzero_si512(); 16];
                let start = |t: usize| (j0 + 16 * h + t) * pitch + 2 * p0;
                // Masked lanes are not read: the pointers may run past the rows (wrapping_add).
                match source {
                    Source::Values { b, .. } => {
                        let elements = (k - 2 * p0).min(32);
                        let lo_lanes = first_lanes(elements);
                        let hi_lanes = first_lanes(elements.saturating_sub(16));
                        for (t, vt) in v.iter_mut().enumerate().take(count) {
                            let src = b.as_ptr().wrapping_add(start(t));
                            let lo = _mm512_maskz_loadu_ps(lo_lanes, src);
                            let hi = _mm512_maskz_loadu_ps(hi_lanes, src.wrapping_add(16));
                            *vt = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(
                                hi, lo,
                            ));
                        }
                    }
                    Source::Rounded { b, .. } => {
                        let lanes = first_lanes(used - p0);
                        for (t, vt) in v.iter_mut().enumerate().take(count) {
                            let src = b.as_ptr().wrapping_add(start(t)) as *const i32;
                            *vt = _mm512_maskz_loadu_epi32(lanes, src);
                        }
                    }
                }
                transpose16(&mut v);
                for (p, row) in v.iter().enumerate().take(used - p0) {
                    let out = block.as_mut_ptr().add((p0 + p) * NR + 16 * h);
                    _mm512_storeu_si512(out as *mut __m512i, *row);
                }
            }
        }
    }

    /// See [`super::rounded_pairs_across_panels`]: 16 values of each row, widened to 32 bits,
    /// make 16 pairs.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn rounded_pairs_across_panels(
        lo: &[u16],
        hi: Option<&[u16]>,
        dst: &mut [u32],
        stride: usize,
    ) {
        for j in (0..lo.len()).step_by(16) {
            let lanes = first_lanes(lo.len() - j);
            let l = _mm256_maskz_loadu_epi16(lanes, lo.as_ptr().add(j) as *const i16);
            let h = match hi {
                Some(hi) => _mm256_maskz_loadu_epi16(lanes, hi.as_ptr().add(j) as *const i16),
                None => _mm256_setzero_si256(),
            };
            let pairs = _mm512_or_si512(
                _mm512_cvtepu16_epi32(l),
                _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)),
            );
            let out = dst.as_mut_ptr().add(j / super::NR * stride + j % super::NR);
            _mm512_mask_storeu_epi32(out as *mut i32, lanes, pairs);
        }
    }

    /// See [`super::round`]: 16 values per instruction.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn round(values: &[f32], rounded: &mut [u16]) {
        for (i, out) in rounded.chunks_mut(16).enumerate() {
            let lanes = first_lanes(out.len());
            let v = _mm512_maskz_loadu_ps(lanes, values.as_ptr().add(16 * i));
            let r: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
            let r = _mm512_castsi256_si512(r);
            _mm512_mask_storeu_epi16(out.as_mut_ptr() as *mut i16, lanes as __mmask32, r);
        }
    }

    /// See [`super::pairs_across_panels`]: 16 elements of each row become 16 pairs.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn pairs_across_panels(
        lo: &[f32],
        hi: Option<&[f32]>,
        dst: &mut [u32],
        stride: usize,
    ) {
        let order = interleave_order();
        for j in (0..lo.len()).step_by(16) {
            // A short last run: masked lanes are neither read nor written.
            let lanes = first_lanes(lo.len() - j);
            let l = _mm512_maskz_loadu_ps(lanes, lo.as_ptr().add(j));
            let h = match hi {
                Some(hi) => _mm512_maskz_loadu_ps(lanes, hi.as_ptr().add(j)),
                None => _mm512_setzero_ps(),
            };
            let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(h, l));
            let pairs = _mm512_permutexvar_epi16(order, both);
            let out = dst.as_mut_ptr().add(j / super::NR * stride + j % super::NR);
            _mm512_mask_storeu_epi32(out as *mut i32, lanes, pairs);
        }
    }
}

/// Where pair `p` of row `i` lies in a [`PackedA`] whose rows hold `pairs` pairs.
fn a_offset(i: usize, p: usize, pairs: usize) -> usize {
    (i / AMX_ROWS) * AMX_ROWS * pairs + a_in_block(i % AMX_ROWS, p)
}

/// [`a_offset`] within a block of 32 rows.
const fn a_in_block(r: usize, p: usize) -> usize {
    (p / AMX_PAIRS) * AMX_PAIRS * AMX_ROWS + r * AMX_PAIRS + p % AMX_PAIRS
}

impl PackedA {
    /// Packs `op(a)`, with `a` stored row-major `m×k` (`Op::Plain`) or `k×m` (`Op::Transposed`).
    pub fn new(m: usize, k: usize, a: &[f32], op: Op) -> PackedA {
        PackedA::new_in(Vec::new(), m, k, a, op)
    }

    /// [`PackedA::new`] in `buffer`'s memory (from [`PackedA::into_buffer`]), so repeated
    /// products neither allocate nor fault in fresh pages.
    pub fn new_in(mut data: Vec<u32>, m: usize, k: usize, a: &[f32], op: Op) -> PackedA {
        assert_eq!(
            a.len(),
            m * k,
            "PackedA: {} elements, expected {m}x{k}",
            a.len()
        );
        let pairs = k.div_ceil(2).div_ceil(AMX_PAIRS) * AMX_PAIRS;
        let rows = m.div_ceil(AMX_ROWS) * AMX_ROWS;
        // The reused memory keeps old values: the packing below writes every element and
        // zeroes the padding itself (a memset of the whole buffer cost as much as a pass).
        data.resize(rows * pairs, 0);
        if pairs == 0 || m == 0 {
            return PackedA { m, k, pairs, data };
        }
        let used = k.div_ceil(2);
        // Groups of 32-row blocks; a transposed operand is read along its rows for a while.
        data.par_chunks_mut(PANEL_GROUP * AMX_ROWS * pairs)
            .enumerate()
            .for_each(|(group, dst)| {
                let i0 = group * PANEL_GROUP * AMX_ROWS;
                let valid = m.saturating_sub(i0).min(dst.len() / pairs);
                for ii in 0..dst.len() / pairs {
                    // Runs of 16 pairs: from the first padding pair to each run's end.
                    let mut p = if ii < valid { used } else { 0 };
                    while p < pairs {
                        let end = (p / AMX_PAIRS + 1) * AMX_PAIRS;
                        dst[a_offset(ii, p, pairs)..][..end - p].fill(0);
                        p = end;
                    }
                }
                match op {
                    Op::Plain => {
                        for ii in 0..valid {
                            let row = &a[(i0 + ii) * k..(i0 + ii + 1) * k];
                            let runs = AMX_PAIRS * AMX_ROWS;
                            pairs_along(row, &mut dst[a_offset(ii, 0, pairs)..], runs);
                        }
                    }
                    Op::Transposed => {
                        #[cfg(target_arch = "x86_64")]
                        if simd::usable() {
                            // SAFETY: the CPU has the features (checked by `usable`); the
                            // rows and `dst` as asserted inside.
                            unsafe { simd::a_transposed_rows(a, (m, k), (i0, valid), dst, pairs) };
                            return;
                        }
                        let mut column = [0u32; AMX_ROWS];
                        for b0 in (0..valid).step_by(AMX_ROWS) {
                            let (r0, rows) = (i0 + b0, (valid - b0).min(AMX_ROWS));
                            for p in 0..used {
                                let lo = &a[2 * p * m + r0..][..rows];
                                let hi =
                                    (2 * p + 1 < k).then(|| &a[(2 * p + 1) * m + r0..][..rows]);
                                pairs_across(lo, hi, &mut column[..rows]);
                                for (ii, &v) in column[..rows].iter().enumerate() {
                                    dst[a_offset(b0 + ii, p, pairs)] = v;
                                }
                            }
                        }
                    }
                }
            });
        PackedA { m, k, pairs, data }
    }

    /// The packed operand's memory, for the next [`PackedA::new_in`].
    pub fn into_buffer(self) -> Vec<u32> {
        self.data
    }
}

impl PackedB {
    /// Packs `op(b)`, with `b` stored row-major `k×n` (`Op::Plain`) or `n×k` (`Op::Transposed`).
    pub fn new(k: usize, n: usize, b: &[f32], op: Op) -> PackedB {
        PackedB::new_in(Vec::new(), k, n, b, op)
    }

    /// [`PackedB::new`] in `buffer`'s memory (from [`PackedB::into_buffer`]).
    pub fn new_in(data: Vec<u32>, k: usize, n: usize, b: &[f32], op: Op) -> PackedB {
        assert_eq!(
            b.len(),
            k * n,
            "PackedB: {} elements, expected {k}x{n}",
            b.len()
        );
        let pitch = if op == Op::Plain { n } else { k };
        PackedB::pack(data, k, n, Source::Values { b, pitch }, op)
    }

    /// [`PackedB::new_in`] from the first `n` columns of a plain `b` whose rows lie `pitch`
    /// apart (a block of columns of a wider matrix: pass the slice from its first column).
    pub fn columns_in(data: Vec<u32>, (k, n): (usize, usize), b: &[f32], pitch: usize) -> PackedB {
        assert!(
            pitch >= n && (k == 0 || (k - 1) * pitch + n <= b.len()),
            "PackedB: {} elements, expected {k} rows of {n} columns {pitch} apart",
            b.len()
        );
        PackedB::pack(data, k, n, Source::Values { b, pitch }, Op::Plain)
    }

    /// [`PackedB::new_in`] from values rounded to bfloat16 before ([`round`]), stored row-major
    /// with rows `pitch` apart (`k` rows of `n`, or `n` rows of `k` when transposed), `pitch`
    /// even and every element past a row's end up to it zero. The same packing as from the
    /// f32 values, without the rounding pass and at half the reads.
    pub fn from_rounded_in(
        data: Vec<u32>,
        (k, n): (usize, usize),
        b: &[u16],
        pitch: usize,
        op: Op,
    ) -> PackedB {
        let (rows, cols) = if op == Op::Plain { (k, n) } else { (n, k) };
        assert!(
            pitch.is_multiple_of(2) && pitch >= cols && b.len() >= rows * pitch,
            "PackedB: {} rounded elements of pitch {pitch}, expected {rows}x{cols}",
            b.len()
        );
        PackedB::pack(data, k, n, Source::Rounded { b, pitch }, op)
    }

    fn pack(mut data: Vec<u32>, k: usize, n: usize, source: Source<'_>, op: Op) -> PackedB {
        let pairs = k.div_ceil(2).div_ceil(AMX_PAIRS) * AMX_PAIRS;
        let panels = n.div_ceil(NR);
        // As in PackedA::new_in: every element is written, the padding zeroed below.
        data.resize(panels * pairs * NR, 0);
        if pairs == 0 {
            return PackedB { k, n, pairs, data };
        }
        let used = k.div_ceil(2);
        // Groups of panels, so that reads run along rows for a while (Plain) and writes stay
        // within a few cache lines (Transposed) instead of one line per row or per pair.
        data.par_chunks_mut(PANEL_GROUP * pairs * NR)
            .enumerate()
            .for_each(|(group, blocks)| {
                let panel0 = group * PANEL_GROUP;
                let panels_here = blocks.len() / (pairs * NR);
                for (q, block) in blocks.chunks_mut(pairs * NR).enumerate() {
                    let cols = (n - (panel0 + q) * NR).min(NR);
                    block[used * NR..].fill(0);
                    if cols < NR {
                        block[..used * NR]
                            .chunks_mut(NR)
                            .for_each(|row| row[cols..].fill(0));
                    }
                }
                match op {
                    Op::Plain => {
                        let (j0, j1) = (panel0 * NR, ((panel0 + panels_here) * NR).min(n));
                        for p in 0..used {
                            let dst = &mut blocks[p * NR..];
                            let has_hi = 2 * p + 1 < k;
                            match source {
                                Source::Values { b, pitch } => {
                                    let lo = &b[2 * p * pitch..][j0..j1];
                                    let hi = has_hi.then(|| &b[(2 * p + 1) * pitch..][j0..j1]);
                                    pairs_across_panels(lo, hi, dst, pairs * NR);
                                }
                                Source::Rounded { b, pitch } => {
                                    let lo = &b[2 * p * pitch..][j0..j1];
                                    let hi = has_hi.then(|| &b[(2 * p + 1) * pitch..][j0..j1]);
                                    rounded_pairs_across_panels(lo, hi, dst, pairs * NR);
                                }
                            }
                        }
                    }
                    Op::Transposed => {
                        for (q, block) in blocks.chunks_mut(pairs * NR).enumerate() {
                            let j0 = (panel0 + q) * NR;
                            let cols = (n - j0).min(NR);
                            transposed_panel(source, k, (j0, cols), block);
                        }
                    }
                }
            });
        PackedB { k, n, pairs, data }
    }

    /// The packed operand's memory, for the next [`PackedB::new_in`].
    pub fn into_buffer(self) -> Vec<u32> {
        self.data
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
    // Blocks of rows, a multiple of 32, about four per thread: results do not depend on it.
    let threads = rayon::current_num_threads().max(1);
    let tiles = m.div_ceil(AMX_ROWS);
    let tiles_per_block = tiles.div_ceil(4 * threads).max(1);
    let rows_per_block = tiles_per_block * AMX_ROWS;
    c.par_chunks_mut(rows_per_block * n)
        .enumerate()
        .for_each(|(block, c_block)| {
            let row0 = block * rows_per_block;
            #[cfg(target_arch = "x86_64")]
            if path == Bf16Path::Amx {
                // SAFETY: `available()` checked the CPU and the kernel's permission; the packed
                // operands are padded to whole tiles.
                unsafe { amx::block(a, b, row0, c_block, n, alpha) };
                return;
            }
            let rows = c_block.len() / n;
            let mut tile = [[0f32; NR]; MR];
            for panel in 0..n.div_ceil(NR) {
                let b_panel = &b.data[panel * b.pairs * NR..(panel + 1) * b.pairs * NR];
                let cols = (n - panel * NR).min(NR);
                for r0 in (0..rows).step_by(MR) {
                    // The tile's rows onwards, to the end of their block of 32.
                    let (first, block) = (row0 + r0, (row0 + r0) / AMX_ROWS + 1);
                    let a_tile = &a.data[a_offset(first, 0, a.pairs)..block * AMX_ROWS * a.pairs];
                    match path {
                        Bf16Path::Portable | Bf16Path::Amx => {
                            tile_portable(a.pairs, a_tile, b_panel, &mut tile)
                        }
                        Bf16Path::Avx512Bf16 => {
                            #[cfg(target_arch = "x86_64")]
                            // SAFETY: `available()` checked that the CPU has the features; the
                            // slices hold the tile's rows of their block and pairs × NR elements.
                            unsafe {
                                tile_avx512(a.pairs, a_tile, b_panel, &mut tile)
                            }
                            #[cfg(not(target_arch = "x86_64"))]
                            unreachable!("checked by available()")
                        }
                    }
                    let valid = (rows - r0).min(MR);
                    store(
                        &tile[..valid],
                        &mut c_block[r0 * n..],
                        n,
                        panel * NR,
                        cols,
                        alpha,
                    );
                }
            }
        });
}

/// `c[r][col0 + j] = alpha·c + tile[r][j]` for the rows of `tile` and `j < cols`, `c` row-major
/// with `n` columns.
fn store(tile: &[[f32; NR]], c: &mut [f32], n: usize, col0: usize, cols: usize, alpha: f32) {
    for (r, tile_row) in tile.iter().enumerate() {
        let c_row = &mut c[r * n + col0..][..cols];
        let acc = &tile_row[..cols];
        // One loop per case, so each vectorises; 1·c + acc is c + acc exactly.
        if alpha == 0.0 {
            c_row.copy_from_slice(acc);
        } else if alpha == 1.0 {
            c_row.iter_mut().zip(acc).for_each(|(d, &a)| *d += a);
        } else {
            c_row
                .iter_mut()
                .zip(acc)
                .for_each(|(d, &a)| *d = alpha * *d + a);
        }
    }
}

/// The AMX kernel and what it needs from the CPU and the kernel.
#[cfg(target_arch = "x86_64")]
mod amx {
    use super::{store, PackedA, PackedB, AMX_PAIRS, AMX_ROWS, NR};
    use std::arch::asm;
    use std::sync::OnceLock;

    /// Whether the CPU has AMX-TILE and AMX-BF16 and Linux lets this process use the tiles.
    pub fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
            let (amx_bf16, amx_tile) = (leaf7.edx & (1 << 22) != 0, leaf7.edx & (1 << 24) != 0);
            amx_bf16 && amx_tile && request_tile_data()
        })
    }

    /// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: Linux (5.16+) grants the tile
    /// data state to the whole process; without it the first tile instruction faults.
    fn request_tile_data() -> bool {
        const SYS_ARCH_PRCTL: libc::c_long = 158;
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: a plain system call with integer arguments.
        unsafe { libc::syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
    }

    /// Palette 1, eight tiles of 16 rows × 64 bytes: tmm0–3 accumulate C (16 × 16 f32 each),
    /// tmm4–5 hold A (16 rows × 16 pairs), tmm6–7 hold B (16 pairs × 16 columns, pair-major).
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const CONFIG: TileConfig = {
        let mut bytes = [0u8; 64];
        bytes[0] = 1;
        let mut t = 0;
        while t < 8 {
            bytes[16 + 2 * t] = 64;
            bytes[48 + t] = 16;
            t += 1;
        }
        TileConfig(bytes)
    };

    /// Rows `row0..` of C (those of `c_block`) on the AMX unit: 32 × 32 blocks, each four tiles
    /// accumulated over the inner dimension 16 pairs at a time.
    ///
    /// # Safety
    /// [`usable`] must be true; the operands must be packed by [`PackedA`] / [`PackedB`].
    pub unsafe fn block(
        a: &PackedA,
        b: &PackedB,
        row0: usize,
        c_block: &mut [f32],
        n: usize,
        alpha: f32,
    ) {
        let rows = c_block.len() / n;
        let pairs = a.pairs;
        let a_stride = AMX_PAIRS * 4;
        let b_stride = NR * 4;
        let mut out = [[0f32; NR]; AMX_ROWS];
        let config = CONFIG;
        asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
        for panel in 0..n.div_ceil(NR) {
            let b_panel = b.data.as_ptr().add(panel * pairs * NR);
            let cols = (n - panel * NR).min(NR);
            for r0 in (0..rows).step_by(AMX_ROWS) {
                // The block's two tiles of each 16 pairs: 2 KB of consecutive memory.
                let a0 = a.data.as_ptr().add((row0 + r0) * pairs);
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                for p in (0..pairs).step_by(AMX_PAIRS) {
                    asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm5, [{a1} + {sa}*1]",
                        "tileloadd tmm6, [{b0} + {sb}*1]",
                        "tileloadd tmm7, [{b1} + {sb}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0.add(p * AMX_ROWS),
                        a1 = in(reg) a0.add(p * AMX_ROWS + 16 * AMX_PAIRS),
                        b0 = in(reg) b_panel.add(p * NR),
                        b1 = in(reg) b_panel.add(p * NR + 16),
                        sa = in(reg) a_stride,
                        sb = in(reg) b_stride,
                        options(nostack, readonly)
                    );
                }
                let valid = (rows - r0).min(AMX_ROWS);
                // A whole block that overwrites C goes straight from the tiles to C.
                let direct = alpha == 0.0 && valid == AMX_ROWS && cols == NR;
                let (o, stride) = if direct {
                    (c_block.as_mut_ptr().add(r0 * n + panel * NR), n * 4)
                } else {
                    (out.as_mut_ptr() as *mut f32, NR * 4)
                };
                let row16 = stride / 4 * 16;
                asm!(
                    "tilestored [{c00} + {s}*1], tmm0",
                    "tilestored [{c01} + {s}*1], tmm1",
                    "tilestored [{c10} + {s}*1], tmm2",
                    "tilestored [{c11} + {s}*1], tmm3",
                    c00 = in(reg) o,
                    c01 = in(reg) o.add(16),
                    c10 = in(reg) o.add(row16),
                    c11 = in(reg) o.add(row16 + 16),
                    s = in(reg) stride,
                    options(nostack)
                );
                if !direct {
                    store(
                        &out[..valid],
                        &mut c_block[r0 * n..],
                        n,
                        panel * NR,
                        cols,
                        alpha,
                    );
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// One MR × NR tile in scalar Rust, in `vdpbf16ps`'s order.
fn tile_portable(pairs: usize, a: &[u32], b: &[u32], tile: &mut [[f32; NR]; MR]) {
    let lo = |v: u32| from_bf16(v as u16);
    let hi = |v: u32| from_bf16((v >> 16) as u16);
    for (r, tile_row) in tile.iter_mut().enumerate() {
        let mut acc = [0f32; NR];
        for p in 0..pairs {
            let ap = a[a_in_block(r, p)];
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
    debug_assert!(a.len() > a_in_block(MR - 1, pairs - 1) && b.len() >= pairs * NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (a_ptr, b_ptr) = (a.as_ptr(), b.as_ptr());
    for p in 0..pairs {
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b_ptr.add(p * NR) as *const _));
        let b1: __m512bh =
            std::mem::transmute(_mm512_loadu_si512(b_ptr.add(p * NR + 16) as *const _));
        for (r, acc_row) in acc.iter_mut().enumerate() {
            let a_pair: __m512bh =
                std::mem::transmute(_mm512_set1_epi32(*a_ptr.add(a_in_block(r, p)) as i32));
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
    fn paths_are_named_as_bench_prints_them() {
        assert_eq!(Bf16Path::named("portable"), Ok(Bf16Path::Portable));
        for path in [Bf16Path::Amx, Bf16Path::Avx512Bf16] {
            assert_eq!(Bf16Path::named(path.name()).is_ok(), path.available());
        }
        let unknown = Bf16Path::named("sse").unwrap_err();
        assert!(
            unknown.contains("expected amx, avx512_bf16 or portable"),
            "{unknown}"
        );
        assert!(Bf16Path::fastest().available());
    }

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

    /// f32s of every kind: random bits (NaNs, infinities, subnormals among them), ties, zeros.
    fn every_kind(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let special = [
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(0x007f_ffff), // the largest subnormal: rounds up to a normal
            f32::from_bits(0x8000_0001),
            f32::from_bits(0x3f80_8000), // a tie: stays even
            f32::from_bits(0x3f81_8000), // a tie: rounds up to even
            f32::MAX,
        ];
        (0..len)
            .map(|i| match i % 3 {
                0 => special[rng.random_range(0..special.len())],
                1 => f32::from_bits(rng.random()),
                _ => rng.random_range(-4.0f32..4.0),
            })
            .collect()
    }

    #[test]
    fn vector_packing_gives_the_scalar_pairs_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        {
            if !simd::usable() {
                eprintln!("skipped: this CPU lacks AVX-512 BF16 (the scalar packing is used)");
                return;
            }
            for len in (0..70).chain([511, 1024]) {
                let src = every_kind(len, len as u64);
                let scalar: Vec<u32> = src
                    .chunks(2)
                    .map(|t| pair(t[0], t.get(1).copied().unwrap_or(0.0)))
                    .collect();
                let mut dst = vec![0u32; len.div_ceil(2)];
                unsafe { simd::pairs_along(&src, &mut dst, 16) };
                assert_eq!(dst, scalar, "along, {len} elements");

                let hi = every_kind(len, 1000 + len as u64);
                for hi in [Some(&hi[..]), None] {
                    let scalar: Vec<u32> = (0..len)
                        .map(|j| pair(src[j], hi.map_or(0.0, |h| h[j])))
                        .collect();
                    let mut dst = vec![0u32; len];
                    unsafe { simd::pairs_across_panels(&src, hi, &mut dst, NR) };
                    assert_eq!(dst, scalar, "across, {len} elements");
                    // Panels of 32 columns, 40 apart in the destination.
                    let mut dst = vec![7u32; len.div_ceil(NR) * 40];
                    unsafe { simd::pairs_across_panels(&src, hi, &mut dst, 40) };
                    for (j, &want) in scalar.iter().enumerate() {
                        assert_eq!(
                            dst[j / NR * 40 + j % NR],
                            want,
                            "panels, column {j} of {len}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_register_transpose_transposes() {
        #[cfg(target_arch = "x86_64")]
        {
            if !simd::usable() {
                eprintln!("skipped: this CPU lacks AVX-512 BF16 (the scalar packing is used)");
                return;
            }
            use std::arch::x86_64::*;
            let mut m: [[u32; 16]; 16] =
                std::array::from_fn(|i| std::array::from_fn(|j| (i * 100 + j) as u32));
            unsafe {
                let mut rows: [__m512i; 16] =
                    std::array::from_fn(|i| _mm512_loadu_si512(m[i].as_ptr() as *const _));
                simd::transpose16(&mut rows);
                for (i, row) in rows.iter().enumerate() {
                    _mm512_storeu_si512(m[i].as_mut_ptr() as *mut _, *row);
                }
            }
            for (i, row) in m.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    assert_eq!(v, (j * 100 + i) as u32, "({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn packed_operands_hold_the_pairs_of_their_definition() {
        // Element (i, p) of packed op(A) is pair(op(A)[i][2p], op(A)[i][2p + 1]); packed B is
        // the same along its columns. Ragged shapes, every kind of value, both layouts.
        for (m, k) in [
            (1, 1),
            (5, 7),
            (16, 32),
            (17, 33),
            (40, 64),
            (33, 300),
            (64, 97),
        ] {
            let a = every_kind(m * k, (m * 1000 + k) as u64);
            for op in [Op::Plain, Op::Transposed] {
                let at = |i: usize, kk: usize| match (kk < k, op) {
                    (false, _) => 0.0,
                    (true, Op::Plain) => a[i * k + kk],
                    (true, Op::Transposed) => a[kk * m + i],
                };
                let packed = PackedA::new(m, k, &a, op);
                for i in 0..m.div_ceil(AMX_ROWS) * AMX_ROWS {
                    for p in 0..packed.pairs {
                        let want = if i < m {
                            pair(at(i, 2 * p), at(i, 2 * p + 1))
                        } else {
                            0
                        };
                        let got = packed.data[a_offset(i, p, packed.pairs)];
                        assert_eq!(got, want, "A {m}x{k} {op:?} ({i}, {p})");
                    }
                }
                // The same values as a k×m operand B: column j of op(B) is row j of op(A).
                let (kb, n) = (k, m);
                let packed = PackedB::new(
                    kb,
                    n,
                    &a,
                    if op == Op::Plain {
                        Op::Transposed
                    } else {
                        Op::Plain
                    },
                );
                for j in 0..n.div_ceil(NR) * NR {
                    for p in 0..packed.pairs {
                        let want = if j < n {
                            pair(at(j, 2 * p), at(j, 2 * p + 1))
                        } else {
                            0
                        };
                        let got = packed.data[(j / NR * packed.pairs + p) * NR + j % NR];
                        assert_eq!(got, want, "B {kb}x{n} ({j}, {p})");
                    }
                }
            }
        }
    }

    #[test]
    fn operands_rounded_before_pack_as_their_values_do() {
        // Every kind of value, ragged shapes, both layouts, rows padded to an even pitch.
        for (k, n) in [
            (1, 1),
            (7, 5),
            (32, 16),
            (33, 17),
            (64, 40),
            (300, 33),
            (97, 64),
        ] {
            let b = every_kind(k * n, (k * 100 + n) as u64);
            let mut scalar = vec![0u16; b.len()];
            scalar
                .iter_mut()
                .zip(&b)
                .for_each(|(r, &v)| *r = to_bf16_flushed(v));
            let mut rounded = vec![7u16; b.len()];
            round(&b, &mut rounded);
            assert_eq!(rounded, scalar, "round, {k}x{n}");
            for op in [Op::Plain, Op::Transposed] {
                let (rows, cols) = if op == Op::Plain { (k, n) } else { (n, k) };
                let pitch = cols.next_multiple_of(2) + 2;
                let mut padded = vec![0u16; rows * pitch];
                for (dst, src) in padded
                    .chunks_exact_mut(pitch)
                    .zip(rounded.chunks_exact(cols))
                {
                    dst[..cols].copy_from_slice(src);
                }
                let want = PackedB::new(k, n, &b, op).into_buffer();
                let used = vec![u32::MAX; want.len() + 64];
                let got = PackedB::from_rounded_in(used, (k, n), &padded, pitch, op);
                assert_eq!(got.into_buffer(), want, "{k}x{n} {op:?}");
            }
        }
    }

    #[test]
    fn packing_into_a_used_buffer_gives_a_fresh_packing() {
        // Buffers full of NaN pairs, longer than needed: the padding must still be zeros.
        for (m, k, n) in [(5, 7, 33), (32, 64, 32), (40, 1, 300), (3, 600, 70)] {
            for op in [Op::Plain, Op::Transposed] {
                let (a, b) = (random(m * k, 1), random(k * n, 2));
                let used = || vec![u32::MAX; 4 * (m + 32) * (k + 32) * (n + 32)];
                let fresh = PackedA::new(m, k, &a, op).into_buffer();
                assert_eq!(PackedA::new_in(used(), m, k, &a, op).into_buffer(), fresh);
                let fresh = PackedB::new(k, n, &b, op).into_buffer();
                assert_eq!(PackedB::new_in(used(), k, n, &b, op).into_buffer(), fresh);
            }
        }
    }

    #[test]
    fn subnormal_inputs_round_as_zeros_of_their_sign() {
        assert_eq!(to_bf16_flushed(f32::from_bits(0x007f_ffff)), 0x0000);
        assert_eq!(to_bf16_flushed(f32::from_bits(0x8000_0001)), 0x8000);
        assert_eq!(to_bf16_flushed(f32::MIN_POSITIVE), 0x0080);
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
        for path in [Bf16Path::Portable, Bf16Path::Avx512Bf16, Bf16Path::Amx] {
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
        for path in [Bf16Path::Portable, Bf16Path::Avx512Bf16, Bf16Path::Amx] {
            if !path.available() {
                eprintln!("skipped: this CPU has no {} (not tested here)", path.name());
                continue;
            }
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
                let other = run(threads);
                let same = one
                    .iter()
                    .zip(&other)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{path:?}, {threads} threads");
            }
        }
    }
}
