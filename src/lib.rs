//! padsim: perturbed and adversarial dreaming (PAD; Deperrois, Petrovici, Senn & Jordan,
//! eLife 2022) as a library of cortical areas, plasticity rules and brain states.
//!
//! Layers, bottom up:
//! - [`kernels`]: pure numerics (convolutions by im2col + GEMM, activations, losses);
//! - [`cortex`]: cortical areas, pathways, discriminator neurons, the architecture as data
//!   ([`cortex::Architecture`]: areas listed per pathway, PAD's by default), and the seam of
//!   plasticity rules ([`cortex::PlasticityRule`]: how an area's error arrives, changes its
//!   synapses and travels back);
//! - [`plasticity`]: the rules (exact backprop, feedback alignment, sign symmetry, direct
//!   feedback alignment), their selection per pathway and area, and optimisers (Adam, SGD);
//! - [`brain`]: brain states (the [`brain::BrainState`] trait: Wake, NREM, REM, contrastive
//!   dreaming, and states of your own), schedules, the conductor, the hippocampus, and the
//!   whole learner that runs them;
//! - [`record`]: HDF5 run files, PNG image grids and atomic checkpoints;
//! - [`eval`]: what the learned latents are worth: linear probes, latent geometry, PCA.

pub mod bench;
pub mod brain;
pub mod cortex;
pub mod data;
pub mod eval;
pub mod experiment;
pub mod kernels;
pub mod plasticity;
pub mod record;
pub mod rng;

/// What examples and experiments usually need, in one `use padsim::prelude::*;`.
pub mod prelude {
    pub use crate::brain::{
        register_state, Brain, BrainState, Condition, CycleLosses, Losses, MemoryMix,
        Neuromodulation, Phase, Schedule,
    };
    pub use crate::cortex::{
        Activity, Architecture, AreaSpec, LocalSignals, Modulation, PlasticityRule, SynapticChange,
    };
    pub use crate::data::{DatasetKind, LoadOptions};
    pub use crate::experiment::{train, train_brain, Config, TrainOptions};
    pub use crate::kernels::Activation;
    pub use crate::plasticity::{AdamConfig, PlasticityConfig, RuleKind};
}
