//! Evaluation: what PAD's representations are worth (linear separability, occlusion
//! robustness, latent geometry, PCA).

pub mod features;
