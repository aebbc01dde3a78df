//! The hippocampus: an episodic buffer of wake latents, recalled single (NREM) or mixed with
//! spontaneous activity (REM).
//!
//! ```text
//! store:   M ← [z_t, z_{t−1}, …]   (newest first, at most `capacity` batches)
//! mix:     z_mix = (a·z_t + b·z_old) + c·n,   n ~ N(0, I)
//!          with no older memory yet: z_mix = (a + b)·z_t + c·n
//! ```
//!
//! PAD equivalent: the reference keeps the previous batch's latent (`z_prev`) and dreams from
//! `0.25 z + 0.25 z_prev + 0.5 n` in REM (first cycle: `0.5 z + 0.5 n`); NREM replays `z`.
//! The evaluation order `(a·z + b·z_old) + c·n` is the reference's, so f32 results agree bit
//! for bit.

use ndarray::{Array2, ArrayView2};
use ndarray_rand::rand::Rng;
use std::collections::VecDeque;

/// Which older memory joins the newest one in a mix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayPolicy {
    /// The batch stored just before the newest (the reference's `z_prev`).
    #[default]
    Previous,
    /// A uniformly drawn older batch among those kept.
    Random,
}

/// The recipe of a replayed latent: weights of the newest memory, an older memory and noise.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryMix {
    /// Weight of the newest memory (this cycle's wake latents).
    pub current: f32,
    /// Weight of an older memory.
    pub older: f32,
    /// Weight of spontaneous activity (standard normal noise).
    pub noise: f32,
}

impl MemoryMix {
    /// Replay of the newest memory alone (NREM).
    pub const CURRENT: MemoryMix = MemoryMix {
        current: 1.0,
        older: 0.0,
        noise: 0.0,
    };
    /// PAD's REM dream: a quarter of two memories and half noise.
    pub const PAD_REM: MemoryMix = MemoryMix {
        current: 0.25,
        older: 0.25,
        noise: 0.5,
    };
    /// Two memories, no noise.
    pub const MEMORIES: MemoryMix = MemoryMix {
        current: 0.5,
        older: 0.5,
        noise: 0.0,
    };
    /// Noise alone.
    pub const NOISE: MemoryMix = MemoryMix {
        current: 0.0,
        older: 0.0,
        noise: 1.0,
    };
}

/// The episodic buffer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hippocampus {
    /// Batches kept (at least 1).
    pub capacity: usize,
    /// How the older memory of a mix is chosen.
    pub policy: ReplayPolicy,
    /// Stored batches of latents `[N, nz]`, newest first.
    memories: VecDeque<Array2<f32>>,
}

impl Hippocampus {
    /// An empty hippocampus.
    pub fn new(capacity: usize, policy: ReplayPolicy) -> Self {
        Hippocampus {
            capacity: capacity.max(1),
            policy,
            memories: VecDeque::new(),
        }
    }

    /// Stores this wake phase's latents, forgetting the oldest beyond capacity.
    pub fn store(&mut self, z: Array2<f32>) {
        self.memories.push_front(z);
        self.memories.truncate(self.capacity);
    }

    /// The newest memory, if any.
    pub fn newest(&self) -> Option<&Array2<f32>> {
        self.memories.front()
    }

    /// Batches currently kept.
    pub fn len(&self) -> usize {
        self.memories.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.memories.is_empty()
    }

    /// An older memory chosen by the policy, if one exists.
    pub fn older(&self, rng: &mut impl Rng) -> Option<&Array2<f32>> {
        match (self.policy, self.memories.len()) {
            (_, 0 | 1) => None,
            (ReplayPolicy::Previous, _) => self.memories.get(1),
            (ReplayPolicy::Random, n) => self.memories.get(rng.random_range(1..n)),
        }
    }

    /// A replayed latent batch following `mix`. `noise` (`[N, nz]`, standard normal) is
    /// required when `mix.noise != 0`. Panics if nothing is stored.
    pub fn replay(
        &self,
        mix: &MemoryMix,
        older: Option<&Array2<f32>>,
        noise: Option<ArrayView2<f32>>,
    ) -> Array2<f32> {
        let newest = self.newest().expect("replay needs a stored memory");
        let mut z = match older {
            Some(old) if mix.older != 0.0 => {
                let mut z = newest * mix.current;
                z.zip_mut_with(old, |a, &b| *a += mix.older * b);
                z
            }
            _ => newest * (mix.current + mix.older),
        };
        if mix.noise != 0.0 {
            let noise = noise.expect("a mix with noise needs a noise sample");
            z.zip_mut_with(&noise, |a, &n| *a += mix.noise * n);
        }
        z
    }

    /// Stored batches, newest first.
    pub fn memories(&self) -> impl Iterator<Item = &Array2<f32>> {
        self.memories.iter()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.memories.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn keeps_newest_first_up_to_capacity() {
        let mut h = Hippocampus::new(2, ReplayPolicy::Previous);
        for v in 1..=3 {
            h.store(array![[v as f32]]);
        }
        assert_eq!(h.len(), 2);
        assert_eq!(h.newest().unwrap()[[0, 0]], 3.0);
        let mut rng = crate::rng::stream(0, "test");
        assert_eq!(h.older(&mut rng).unwrap()[[0, 0]], 2.0);
    }

    #[test]
    fn pad_mix_without_older_memory_gives_half_memory_half_noise() {
        let mut h = Hippocampus::new(2, ReplayPolicy::Previous);
        h.store(array![[2.0f32, 4.0]]);
        let noise = array![[1.0f32, -1.0]];
        let z = h.replay(&MemoryMix::PAD_REM, None, Some(noise.view()));
        assert_eq!(z, array![[1.5f32, 1.5]]);
        h.store(array![[6.0f32, 8.0]]);
        let mut rng = crate::rng::stream(0, "test");
        let older = h.older(&mut rng).cloned();
        let z = h.replay(&MemoryMix::PAD_REM, older.as_ref(), Some(noise.view()));
        assert_eq!(
            z,
            array![[0.25 * 6.0 + 0.25 * 2.0 + 0.5, 0.25 * 8.0 + 0.25 * 4.0 - 0.5]]
        );
    }

    #[test]
    fn random_policy_never_returns_the_newest() {
        let mut h = Hippocampus::new(5, ReplayPolicy::Random);
        for v in 0..5 {
            h.store(array![[v as f32]]);
        }
        let mut rng = crate::rng::stream(1, "test");
        for _ in 0..50 {
            assert_ne!(h.older(&mut rng).unwrap()[[0, 0]], 4.0);
        }
    }
}
