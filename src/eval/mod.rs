//! Evaluation of learned representations.
//!
//! - [`features`]: latents of every image of a data set from a fixed encoder (optionally
//!   occluded per image);
//! - [`probe`]: the paper's linear-separability probe (a linear layer, 20 epochs of SGD);
//! - [`logistic`]: a converged probe (standardised features, L2 logistic regression fitted by
//!   [`lbfgs`] to a small gradient), which measures the features without an SGD schedule;
//! - [`geometry`]: intra- over inter-class distance, clean-vs-occluded over inter-class
//!   distance;
//! - [`pca`]: the plane of largest variance, for plots.
//!
//! Everything but [`features`] is a pure function of feature matrices: no model, no files.
//! The occlusion-robustness curve is the probe's accuracy on latents of occluded test images,
//! so it needs nothing beyond [`LinearClassifier::accuracy`].
//!
//! PAD equivalent: the reference's evaluation scripts (linear classifier on encoder features,
//! occlusion test, latent distances, PCA plots).

pub mod features;
pub mod geometry;
pub mod lbfgs;
pub mod logistic;
pub mod pca;
pub mod probe;

pub use geometry::{latent_geometry, Geometry, GeometryConfig};
pub use lbfgs::{minimise, LbfgsConfig, Minimum};
pub use logistic::{
    fit_converged_probe, fit_converged_probe_in_place, ConvergedProbe, LogisticConfig,
};
pub use pca::{pca_2d, Pca2};
pub use probe::{train_sgd_probe, LinearClassifier, ProbeConfig};
