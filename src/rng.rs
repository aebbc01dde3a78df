//! Seeded random streams. Every random draw in padsim comes from a ChaCha8 generator derived
//! from the run's seed and a named purpose, so results never depend on thread scheduling.

use ndarray::{ArrayD, IxDyn};
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::{Distribution, Normal};
use rand_chacha::rand_core::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

/// A generator for `purpose` (e.g. `"init"`, `"shuffle"`), derived from `seed`.
pub fn stream(seed: u64, purpose: &str) -> ChaCha8Rng {
    // FNV-1a of the purpose, mixed into the seed: distinct purposes get independent streams.
    let tag = purpose.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(tag);
    rng
}

/// An array of `shape` whose entries are drawn independently from N(0, std²) in row-major
/// order (f32 samples, as PyTorch's `normal_(0, std)` on a float tensor).
pub fn normal_array(shape: &[usize], std: f64, rng: &mut impl Rng) -> ArrayD<f32> {
    let normal = Normal::new(0.0f32, std as f32).expect("a finite, non-negative std");
    ArrayD::from_shape_simple_fn(IxDyn(shape), || normal.sample(rng))
}
