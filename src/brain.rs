//! The brain: cortex, hippocampus, conductor, schedule and plasticity, run one wake–sleep
//! cycle per mini-batch.
//!
//! Data flow of a cycle: batch → for each phase of the schedule, the conductor's settings for
//! its state → the state runs the pathways forward, computes its losses, sends errors back
//! through the areas (with each area's plasticity rule) → optimisers step the plastic areas →
//! the hippocampus stores (Wake) or replays (NREM, REM).
//!
//! PAD equivalent: the body of the reference's training loop for one mini-batch.

use crate::cortex::{Architecture, Conductor, Cortex, Hippocampus, ReplayPolicy};
use crate::plasticity::{Adam, AdamConfig};
use crate::rng::ChaCha8Rng;
use crate::schedule::Schedule;

/// Everything that learns or remembers.
#[derive(Clone, Debug)]
pub struct Brain {
    /// Both pathways.
    pub cortex: Cortex,
    /// Episodic memory.
    pub hippocampus: Hippocampus,
    /// Per-state neuromodulation.
    pub conductor: Conductor,
    /// The cycle's phases.
    pub schedule: Schedule,
    /// Adam of the feedforward pathway (E).
    pub feedforward_optimiser: Adam,
    /// Adam of the feedback pathway (G).
    pub feedback_optimiser: Adam,
    /// Source of dreams' randomness: occlusion masks, spontaneous activity, latent noise.
    pub rng: ChaCha8Rng,
}

impl Brain {
    /// A new brain: cortex initialised from `seed`'s `"init"` stream, dreams from its
    /// `"dreams"` stream.
    pub fn new(arch: &Architecture, schedule: Schedule, adam: AdamConfig, seed: u64) -> Self {
        Brain {
            cortex: Cortex::new(arch, &mut crate::rng::stream(seed, "init")),
            hippocampus: Hippocampus::new(2, ReplayPolicy::Previous),
            conductor: Conductor::default(),
            schedule,
            feedforward_optimiser: Adam::new(adam),
            feedback_optimiser: Adam::new(adam),
            rng: crate::rng::stream(seed, "dreams"),
        }
    }
}
