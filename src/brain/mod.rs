//! The brain: cortex, hippocampus, conductor, schedule and plasticity, run one wake–sleep
//! cycle per mini-batch. This room holds everything a cycle is made of besides the cortex:
//! brain states ([`state`]: the [`BrainState`] trait and its registry; [`states`]: Wake, NREM,
//! REM; [`contrastive`]: contrastive dreaming), the [`schedule`] of phases, the neuromodulator
//! [`conductor`] and the [`hippocampus`].
//!
//! Data flow of a cycle: batch → for each phase of the schedule, the conductor's settings for
//! its state → the state runs the pathways forward, computes its losses, sends errors back
//! through the areas (with each area's plasticity rule) → optimisers step the plastic areas →
//! the hippocampus stores (Wake) or replays (NREM, REM).
//!
//! PAD equivalent: the body of the reference's training loop for one mini-batch.

pub mod conductor;
pub mod contrastive;
pub mod hippocampus;
pub mod schedule;
pub mod state;
pub mod states;

pub use conductor::{Conductor, Neuromodulation};
pub use contrastive::{Contrastive, Perturbation};
pub use hippocampus::{Hippocampus, MemoryMix, ReplayPolicy};
pub use schedule::{Condition, Schedule};
pub use state::{register_state, registered_states, BrainState, Losses, Phase, StateObject};
pub use states::{Nrem, NremOutcome, Rem, RemOutcome, Wake, WakeOutcome};

use crate::cortex::{Activity, Architecture, Cortex};
use crate::data::occlusion;
use crate::plasticity::{Optimisers, PathwayOptimiser, UnusedParameters};
use crate::rng::ChaCha8Rng;
use ndarray::Array2;
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;

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
    /// Optimiser of the feedforward pathway (E).
    pub feedforward_optimiser: PathwayOptimiser,
    /// Optimiser of the feedback pathway (G).
    pub feedback_optimiser: PathwayOptimiser,
    /// What steps do with parameters that took no part in a phase.
    pub unused_parameters: UnusedParameters,
    /// Source of dreams' randomness: occlusion masks, spontaneous activity, latent noise.
    pub rng: ChaCha8Rng,
}

impl Brain {
    /// A new brain: cortex initialised from `seed`'s `"init"` stream, dreams from its
    /// `"dreams"` stream; `optimisers` per pathway (an `AdamConfig` sets Adam for both).
    pub fn new(
        arch: &Architecture,
        schedule: Schedule,
        optimisers: impl Into<Optimisers>,
        seed: u64,
    ) -> Self {
        let optimisers = optimisers.into();
        Brain {
            cortex: Cortex::new(arch, &mut crate::rng::stream(seed, "init")),
            hippocampus: Hippocampus::new(2, ReplayPolicy::Previous),
            conductor: Conductor::default(),
            schedule,
            feedforward_optimiser: PathwayOptimiser::new(optimisers.feedforward),
            feedback_optimiser: PathwayOptimiser::new(optimisers.feedback),
            unused_parameters: optimisers.unused_parameters,
            rng: crate::rng::stream(seed, "dreams"),
        }
    }
}

/// The losses of one cycle, phase by phase: the state's name and its terms (a state may occur
/// more than once).
pub type CycleLosses = Vec<(String, Losses)>;

impl Brain {
    /// One wake–sleep cycle on the batch `x` (`[C, N, H, W]` in [-1, 1]): every phase of the
    /// schedule in order, each under the conductor's settings for its state. Randomness
    /// (occlusion masks, spontaneous activity, latent noise) is drawn from the brain's own
    /// stream.
    pub fn cycle(&mut self, x: &Activity) -> CycleLosses {
        let schedule = std::mem::replace(&mut self.schedule, Schedule { phases: Vec::new() });
        let losses = schedule
            .phases
            .iter()
            .map(|phase| {
                let nm = self.conductor.for_state(phase.state());
                (phase.name().to_string(), phase.state().run(self, x, &nm))
            })
            .collect();
        self.schedule = schedule;
        losses
    }

    /// Latents replayed by the hippocampus following `mix`.
    pub fn recall(&mut self, mix: &MemoryMix) -> Array2<f32> {
        let batch = self
            .hippocampus
            .newest()
            .expect("wake stores a memory before sleep")
            .nrows();
        let older = if mix.older != 0.0 {
            self.hippocampus.older(&mut self.rng).cloned()
        } else {
            None
        };
        let noise = (mix.noise != 0.0).then(|| self.standard_normal(batch));
        self.hippocampus
            .replay(mix, older.as_ref(), noise.as_ref().map(|n| n.view()))
    }

    /// Standard-normal latents `[batch, nz]` from the brain's stream (spontaneous activity).
    pub fn standard_normal(&mut self, batch: usize) -> Array2<f32> {
        let nz = self.cortex.feedforward.latent.geometry.out_channels;
        Array2::random_using((batch, nz), StandardNormal, &mut self.rng)
    }
}

/// What the brain makes of a batch, for looking at: reconstructions and both kinds of dream.
#[derive(Clone, Debug)]
pub struct DreamImages {
    /// G(E(x)).
    pub wake_reconstruction: Activity,
    /// An NREM dream as the feedforward pathway sees it: G(E(x)) occluded by one NREM mask.
    pub nrem_dream: Activity,
    /// A REM dream: G of the schedule's REM mix, using the batch's latents as the newest
    /// memory and the same latents shifted by one image as the older one.
    pub rem_dream: Activity,
}

impl Brain {
    /// Reconstructions and dreams of `x` without learning and without touching the
    /// hippocampus or the brain's random stream (randomness comes from `rng`).
    pub fn dreams(&mut self, x: &Activity, rng: &mut ChaCha8Rng) -> DreamImages {
        let z = self.cortex.feedforward.forward(x).z;
        let wake_reconstruction = self.cortex.feedback.forward(z.view()).clone();
        let mut nrem_dream = wake_reconstruction.clone();
        let side = nrem_dream.height();
        nrem_dream.mask_pixels(occlusion::nrem_mask(side, rng).view());
        let mix = self
            .schedule
            .phases
            .iter()
            .find_map(|p| p.downcast_ref::<Rem>().map(|rem| rem.dream))
            .unwrap_or(MemoryMix::PAD_REM);
        let mut older = z.clone();
        for (i, mut row) in older.rows_mut().into_iter().enumerate() {
            row.assign(&z.row((i + 1) % z.nrows()));
        }
        let mut memory = Hippocampus::new(2, ReplayPolicy::Previous);
        memory.store(z);
        let nz = self.cortex.feedforward.latent.geometry.out_channels;
        let noise: Array2<f32> = Array2::random_using((x.batch(), nz), StandardNormal, rng);
        let z_mix = memory.replay(&mix, Some(&older), Some(noise.view()));
        let rem_dream = self.cortex.feedback.forward(z_mix.view()).clone();
        DreamImages {
            wake_reconstruction,
            nrem_dream,
            rem_dream,
        }
    }
}
