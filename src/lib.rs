//! padsim: perturbed and adversarial dreaming (PAD; Deperrois, Petrovici, Senn & Jordan,
//! eLife 2022) as a library of cortical areas, plasticity rules and brain states.
//!
//! Layers, bottom up:
//! - [`kernels`]: pure numerics (convolutions by im2col + GEMM, activations, losses);
//! - [`cortex`]: cortical areas, pathways, discriminator neurons;
//! - [`plasticity`]: how errors travel back (the [`plasticity::PlasticityRule`] seam) and how
//!   synapses change (Adam, SGD);
//! - [`states`], [`schedule`], [`brain`]: Wake, NREM and REM, cycles of them, and the whole
//!   learner that runs them;
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
pub mod schedule;
pub mod states;
