//! Feedback alignment (Lillicrap, Cownden, Tweed & Akerman, *Nat. Commun.* 2016): the error
//! returns through fixed random synapses instead of the forward ones.
//!
//! ```text
//! δ_in = Bᵀ δ_out          B_ij ~ N(0, σ²), drawn once, never plastic (σ = 0.02 by default)
//! ∂L/∂W = δ_out · a_inᵀ    the local weight gradient, as under exact backprop
//! ```
//!
//! (`Bᵀ` stands for the transposed convolution with `B` for a conv area and the convolution
//! with `B` for a conv-transpose area, exactly where exact backprop uses `W`.) Learning still
//! descends the loss because each area's forward weights come to align with its `B` (the area
//! below learns from `Bᵀ δ`, and the activity it then produces shapes `W`'s updates), so that
//! `Bᵀ δ` points within 90° of the exact `Wᵀ δ`.
//!
//! `B` has `W`'s shape and layout (conv `[out, in, k, k]`, conv-transpose `[in, out, k, k]`)
//! and the default std is PAD's weight-initialisation std ([`crate::cortex::INIT_STD`]), so `B`
//! is distributed as `W` was at initialisation.
//!
//! PAD equivalent: none in the reference, which always backpropagates exactly. This rule
//! replaces `loss.backward()`'s use of `Wᵀ` when an area's error is passed to its input. In a
//! configured run each area's `B` is drawn from the stream `(seed, "feedback_alignment/<area>")`
//! (see [`super::PlasticityConfig`]) and kept in checkpoints.

use super::PlasticityRule;
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};
use ndarray_rand::rand::Rng;

/// Fixed random feedback synapses `B` (`F = B`, whatever `W` becomes).
#[derive(Clone, Debug, PartialEq)]
pub struct FeedbackAlignment {
    /// `B`, shaped like the area's forward weights.
    pub feedback: ArrayD<f32>,
}

impl FeedbackAlignment {
    /// `B` of `shape` with independent N(0, std²) entries drawn from `rng`.
    pub fn draw(shape: &[usize], std: f64, rng: &mut impl Rng) -> Self {
        FeedbackAlignment {
            feedback: crate::rng::normal_array(shape, std, rng),
        }
    }
}

impl PlasticityRule for FeedbackAlignment {
    fn name(&self) -> &str {
        "feedback_alignment"
    }

    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        assert_eq!(
            self.feedback.shape(),
            weight.shape(),
            "feedback alignment: B and the area's weights differ in shape"
        );
        self.feedback.as_standard_layout()
    }

    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(self.clone())
    }

    fn state(&self) -> Option<&ArrayD<f32>> {
        Some(&self.feedback)
    }

    fn restore(&mut self, state: ArrayD<f32>) -> Result<(), String> {
        if state.shape() != self.feedback.shape() {
            return Err(format!(
                "fixed feedback synapses of shape {:?}, but the area's are {:?}",
                state.shape(),
                self.feedback.shape()
            ));
        }
        self.feedback = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cortex::INIT_STD;

    #[test]
    fn feedback_is_b_whatever_w_is() {
        let fa = FeedbackAlignment::draw(&[3, 2, 4, 4], INIT_STD, &mut crate::rng::stream(1, "b"));
        for w in [
            ArrayD::zeros(IxDyn(&[3, 2, 4, 4])),
            ArrayD::ones(IxDyn(&[3, 2, 4, 4])),
        ] {
            assert_eq!(fa.feedback(w.view()).view(), fa.feedback.view());
        }
    }

    #[test]
    fn b_has_the_requested_spread_and_follows_the_stream() {
        let draw = |seed| {
            FeedbackAlignment::draw(&[64, 32, 4, 4], 0.02, &mut crate::rng::stream(seed, "b"))
        };
        let b = draw(5);
        assert_eq!(b, draw(5));
        assert_ne!(b, draw(6));
        let n = b.feedback.len() as f64;
        let mean = b.feedback.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (b
            .feedback
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!(
            mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3,
            "mean {mean}, std {std}"
        );
    }

    #[test]
    fn restore_replaces_b_and_checks_the_shape() {
        let mut fa = FeedbackAlignment::draw(&[2, 2], 1.0, &mut crate::rng::stream(0, "b"));
        let saved = ArrayD::from_elem(IxDyn(&[2, 2]), 0.5f32);
        fa.restore(saved.clone()).unwrap();
        assert_eq!(fa.state(), Some(&saved));
        let err = fa.restore(ArrayD::zeros(IxDyn(&[4]))).unwrap_err();
        assert!(err.contains("[4]") && err.contains("[2, 2]"), "{err}");
    }

    #[test]
    #[should_panic(expected = "differ in shape")]
    fn a_b_of_the_wrong_shape_is_refused() {
        let fa = FeedbackAlignment::draw(&[2, 2], 1.0, &mut crate::rng::stream(0, "b"));
        fa.feedback(ArrayD::zeros(IxDyn(&[2, 3])).view());
    }
}
