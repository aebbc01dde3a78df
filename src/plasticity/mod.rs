//! Plasticity: how an error is sent back through an area's synapses, and how synapses change.
//!
//! A [`PlasticityRule`] decides the *route* of the error: the area's weight gradient is always
//! its local one (`ΔW ∝ δ_out · activity_inᵀ`), but the error handed to the area below is
//! `δ_in = Fᵀ δ_out` with feedback synapses `F` of the rule's choosing. Exact backprop uses
//! `F = W`; feedback alignment would use a fixed random `B`; sign-symmetry `sign(W)·scale`.
//! Areas and brain states never ask which rule is active.
//!
//! Optimisers ([`Adam`], [`Sgd`]) turn gradients into synaptic change.
//!
//! PAD equivalent: `loss.backward()` (exact backprop) followed by `optimizer.step()`.

mod adam;
mod backprop;
mod sgd;

pub use adam::{Adam, AdamConfig, AdamMoments};
pub use backprop::ExactBackprop;
pub use sgd::Sgd;

use crate::cortex::Parameter;
use ndarray::{ArrayViewD, CowArray, IxDyn};

/// The rule by which an area's error travels back to the area below it.
pub trait PlasticityRule: Send + Sync + std::fmt::Debug {
    /// A short name for records and logs (`exact_backprop`, ...).
    fn name(&self) -> &str;

    /// The feedback synapses through which the error reaches the area's input, shaped like
    /// (and in the layout of) the area's forward weights `weight`.
    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn>;

    /// A boxed copy, so areas holding a rule can be cloned.
    fn boxed_clone(&self) -> Box<dyn PlasticityRule>;
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
