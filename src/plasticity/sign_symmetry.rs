//! Sign-symmetry (Liao, Leibo & Poggio, AAAI 2016; Xiao, Chen, Liao & Poggio, 2018): the error
//! returns through synapses that share only the *signs* of the forward ones, at one common
//! magnitude.
//!
//! ```text
//! F = s · sign(W),   s = mean_ij |W_ij|,   sign(0) = 0
//! δ_in = Fᵀ δ_out,   ∂L/∂W = δ_out · a_inᵀ (local, as under exact backprop)
//! ```
//!
//! `F` is recomputed from the area's current `W` at every backward pass, so it follows `W`'s
//! signs as `W` learns; the rule keeps no state of its own. The scale `s` keeps the feedback's
//! magnitude comparable to `W`'s (Liao et al. relied on batch normalisation for that; PAD has
//! none), and is summed in f64 in a fixed order, so results do not depend on thread count.
//!
//! PAD equivalent: none in the reference, which always backpropagates exactly. This rule
//! replaces `loss.backward()`'s use of `Wᵀ` when an area's error is passed to its input.

use super::PlasticityRule;
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

/// Feedback synapses `mean|W| · sign(W)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignSymmetry;

impl SignSymmetry {
    /// The common magnitude `s = mean |W|` of the feedback synapses.
    pub fn scale(weight: ArrayViewD<f32>) -> f32 {
        let total: f64 = weight.iter().map(|w| f64::from(w.abs())).sum();
        (total / weight.len() as f64) as f32
    }

    /// `s · sign(W)`, in `W`'s shape (standard layout).
    pub fn feedback_synapses(weight: ArrayViewD<f32>) -> ArrayD<f32> {
        let scale = Self::scale(weight.view());
        let signed = weight
            .iter()
            .map(|&w| if w == 0.0 { 0.0 } else { scale * w.signum() })
            .collect();
        ArrayD::from_shape_vec(weight.raw_dim(), signed).expect("one value per synapse")
    }
}

impl PlasticityRule for SignSymmetry {
    fn name(&self) -> &str {
        "sign_symmetry"
    }

    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        CowArray::from(Self::feedback_synapses(weight))
    }

    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn feedback_is_the_mean_magnitude_times_the_sign() {
        let w = arr1(&[0.5f32, -0.25, 0.0, -0.0, 0.25]).into_dyn();
        assert_eq!(SignSymmetry::scale(w.view()), 0.2);
        assert_eq!(
            SignSymmetry.feedback(w.view()).into_owned(),
            arr1(&[0.2f32, -0.2, 0.0, 0.0, 0.2]).into_dyn()
        );
    }

    #[test]
    fn keeps_no_state() {
        assert!(SignSymmetry.state().is_none());
        assert!(SignSymmetry
            .boxed_clone()
            .restore(ArrayD::zeros(IxDyn(&[1])))
            .is_err());
    }
}
