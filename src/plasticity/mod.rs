//! Plasticity: how an error is sent back through an area's synapses, and how synapses change.
//!
//! A [`PlasticityRule`] decides the *route* of the error: the area's weight gradient is always
//! its local one (`ΔW ∝ δ_out · activity_inᵀ`), but the error handed to the area below is
//! `δ_in = Fᵀ δ_out` with feedback synapses `F` of the rule's choosing:
//!
//! | rule                  | `F`                 | state of its own          |
//! |-----------------------|---------------------|---------------------------|
//! | [`ExactBackprop`]     | `W`                 | none                      |
//! | [`FeedbackAlignment`] | fixed random `B`    | `B` (kept in checkpoints) |
//! | [`SignSymmetry`]      | `mean\|W\|·sign(W)` | none                      |
//!
//! Areas and brain states never ask which rule is active. A run chooses rules per pathway and
//! per area with [`PlasticityConfig`] (the `[plasticity]` table of its configuration); code may
//! set any area's `rule`, including rules defined outside the crate.
//!
//! Optimisers ([`Adam`], [`Sgd`]) turn gradients into synaptic change.
//!
//! PAD equivalent: `loss.backward()` (exact backprop) followed by `optimizer.step()`.

mod adam;
mod backprop;
mod feedback_alignment;
mod selection;
mod sgd;
mod sign_symmetry;

pub use adam::{Adam, AdamConfig, AdamMoments};
pub use backprop::ExactBackprop;
pub use feedback_alignment::FeedbackAlignment;
pub use selection::{PlasticityConfig, RuleKind};
pub use sgd::Sgd;
pub use sign_symmetry::SignSymmetry;

use crate::cortex::Parameter;
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

/// The rule by which an area's error travels back to the area below it.
pub trait PlasticityRule: Send + Sync + std::fmt::Debug {
    /// A short name for records and logs (`exact_backprop`, ...).
    fn name(&self) -> &str;

    /// The feedback synapses through which the error reaches the area's input, shaped like
    /// (and in the layout of) the area's forward weights `weight`.
    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn>;

    /// A boxed copy, so areas holding a rule can be cloned.
    fn boxed_clone(&self) -> Box<dyn PlasticityRule>;

    /// What the rule keeps besides the area's synapses (feedback alignment's fixed `B`), which
    /// a checkpoint must save for a resumed run to continue bit for bit. `None` (the default):
    /// the rule derives everything from `W`.
    fn state(&self) -> Option<&ArrayD<f32>> {
        None
    }

    /// Puts back what [`PlasticityRule::state`] returned when a checkpoint was taken. Rules
    /// without state refuse.
    fn restore(&mut self, state: ArrayD<f32>) -> Result<(), String> {
        let _ = state;
        Err(format!(
            "the {} rule keeps no state to restore",
            self.name()
        ))
    }
}

impl Clone for Box<dyn PlasticityRule> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

/// Turns the gradients of a set of parameters into a change of their values.
pub trait Optimiser {
    /// One update of every parameter that has a gradient; parameters without one are skipped.
    fn step(&mut self, params: &mut [&mut Parameter]);
}
