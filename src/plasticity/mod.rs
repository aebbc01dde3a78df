//! Plasticity: how an error is sent back through an area's synapses, and how synapses change.
//!
//! A [`PlasticityRule`] (the seam lives in [`crate::cortex::rule`]) decides, for its area, how
//! the error arrives (`e`, by default the one sent down from above), how the synapses change
//! (by default the local `ΔW ∝ δ ⋆ a_in`), and through which feedback synapses `F` the error
//! goes on to the area below (`δ_in = Fᵀ δ`):
//!
//! | rule                          | arriving error  | `F`                 | state of its own          |
//! |-------------------------------|-----------------|---------------------|---------------------------|
//! | [`ExactBackprop`]             | from above      | `W`                 | none                      |
//! | [`FeedbackAlignment`]         | from above      | fixed random `B`    | `B` (kept in checkpoints) |
//! | [`SignSymmetry`]              | from above      | `mean\|W\|·sign(W)` | none                      |
//! | [`DirectFeedbackAlignment`]   | `B_k · e_out`   | `W` (pathway input) | `B_k` (kept)              |
//!
//! Areas and brain states never ask which rule is active. A run chooses rules per pathway and
//! per area with [`PlasticityConfig`] (the `[plasticity]` table of its configuration); code may
//! set any area's `rule`, including rules defined outside the crate.
//!
//! Optimisers ([`Adam`], [`Sgd`] with momentum) turn gradients into synaptic change, one per
//! pathway, chosen by [`Optimisers`] (the `[optimiser.feedforward]` and `[optimiser.feedback]`
//! tables of a configuration).
//!
//! PAD equivalent: `loss.backward()` (exact backprop) followed by `optimizer.step()`.

mod adam;
mod direct_feedback_alignment;
mod feedback_alignment;
mod optimiser;
mod selection;
mod sgd;
mod sign_symmetry;

pub use crate::cortex::rule::{
    ErrorContext, ExactBackprop, LocalSignals, Modulation, PlasticityRule, SynapticChange,
};
pub use adam::{Adam, AdamConfig, AdamMoments};
pub use direct_feedback_alignment::DirectFeedbackAlignment;
pub use feedback_alignment::FeedbackAlignment;
pub use optimiser::{OptimiserConfig, Optimisers, PathwayOptimiser, TensorState, UnusedParameters};
pub use selection::{PlasticityConfig, RuleKind};
pub use sgd::{Sgd, SgdConfig, SgdMomentum};
pub use sign_symmetry::SignSymmetry;

use crate::cortex::Parameter;

/// Turns the gradients of a set of parameters into a change of their values.
pub trait Optimiser {
    /// One update of every parameter that has a gradient; parameters without one are skipped.
    fn step(&mut self, params: &mut [&mut Parameter]);
}
