//! Exact backpropagation: the error returns through the very synapses it came forward on.
//!
//! `δ_in = Wᵀ δ_out`. PAD equivalent: autograd's `loss.backward()`.

use super::PlasticityRule;
use ndarray::{ArrayViewD, CowArray, IxDyn};

/// Feedback synapses equal to the forward synapses (`F = W`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExactBackprop;

impl PlasticityRule for ExactBackprop {
    fn name(&self) -> &str {
        "exact_backprop"
    }

    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        CowArray::from(weight)
    }

    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(*self)
    }
}
