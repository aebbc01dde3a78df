//! Running a kernel's loop in the CPU's widest vectors.
//!
//! ```text
//! wide(body) = body()    compiled for AVX-512 where the CPU has it, for baseline x86-64 otherwise
//! ```
//!
//! PAD equivalent: none; PyTorch picks its elementwise kernels' instruction set at run time
//! the same way (`ATEN_CPU_CAPABILITY`).
//!
//! padsim is built for baseline x86-64 so that one binary runs on every cluster node; its own
//! loops then compile to 4-wide SSE while the `gemm` crate picks AVX-512 at run time. [`wide`]
//! gives chosen loops (Winograd's transforms, Adam, pointwise passes) the same choice: `body` is
//! inlined into a function compiled with AVX-512 enabled, together with the helpers it calls
//! that are marked `#[inline(always)]`. The operations and their order are unchanged (Rust
//! never contracts `a·b + c` into a fused multiply-add, and vector `sqrt` and `/` round as
//! the scalar ones do), so results are bit-identical on every CPU.
//!
//! Call it inside a parallel iterator's per-chunk closure, not around the iterator: rayon's
//! worker threads run the chunk closures from code built for the baseline. Mark the closure
//! `#[inline(always)]`: a large one is otherwise called, not inlined, and runs as built.
//!
//! Not every loop gains. im2col's and col2im's row copies and adds measured slower in
//! AVX-512 (their windows start one element apart, so most 64-byte loads split cache lines,
//! and one add loop went scalar): they stay as built.

/// Whether this CPU runs AVX-512 (F and VL).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `body()`, compiled for AVX-512 where [`has_avx512`] (see the module docs).
#[inline(always)]
pub(crate) fn wide<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2")]
        fn avx512<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        if has_avx512() {
            // SAFETY: the CPU has the features `avx512` is compiled for.
            return unsafe { avx512(body) };
        }
    }
    body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wide_build_computes_what_the_baseline_computes() {
        // Adam's moment update and a division, as padsim runs them through `wide` (on a CPU
        // without AVX-512 both sides are the baseline build and agree trivially).
        let g: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 1e-3).collect();
        let step = |g: &[f32]| -> Vec<f32> {
            g.iter()
                .map(|&g| {
                    let v = 0.999 * 1e-7 + 0.001 * g * g;
                    g / (v.sqrt() / 0.03 + 1e-8)
                })
                .collect()
        };
        let baseline = step(&g);
        let widened = wide(
            #[inline(always)]
            || step(&g),
        );
        assert!(baseline
            .iter()
            .zip(&widened)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
