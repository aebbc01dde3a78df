//! Direct feedback alignment (Nøkland, *NeurIPS* 2016): the pathway's output error is sent
//! straight to every area through fixed random synapses, instead of down the stack.
//!
//! ```text
//! e_out = δ of the pathway's output areas, one row per image  (E: [δ_z, δ_d], [N, nz + 1])
//! e_k   = B_k · e_out              B_k ~ N(0, 1/E), [C_k·H_k·W_k, E], drawn once, never plastic
//! δ_k   = e_k ⊙ f'(u_k),   ∂L/∂W_k = δ_k ⋆ a_in   (the local update, as under backprop)
//! ```
//!
//! An area under this rule needs no error from the area above, so that area skips its input
//! gradient. The output areas themselves (E's latent and discriminator heads, G's last area)
//! receive the true error: a rule there sees no `e_out` and takes the error from above. When
//! the pathway's *input* needs an error (REM and NREM send E's error on to G), the bottom area
//! passes its δ down through its forward synapses (`F = W`).
//!
//! `B_k` has std `1/√E`, so `B_k · e_out` has about the norm of `e_out` per unit; it is drawn
//! at the area's first backward pass from the stream `(seed, "direct_feedback_alignment/<area>")`
//! (its shape follows from the area's output and the output error), so it depends on the seed
//! and the area only, and is kept in checkpoints as `/extra/direct_feedback_alignment:<area>`.
//!
//! PAD equivalent: none; the reference always backpropagates exactly.

use crate::cortex::rule::ErrorContext;
use crate::cortex::{Activity, PlasticityRule};
use ndarray::{Array2, ArrayD, ArrayViewD, CowArray, Ix2, IxDyn};

/// Fixed random projections `B_k` of the pathway's output error.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectFeedbackAlignment {
    /// `B_k`, `[C·H·W, E]`, once drawn.
    pub feedback: Option<ArrayD<f32>>,
    seed: u64,
    purpose: String,
}

impl DirectFeedbackAlignment {
    /// The rule of area `area` (full name) in a run with seed `seed`; `B_k` is drawn at the
    /// first backward pass.
    pub fn new(area: &str, seed: u64) -> Self {
        DirectFeedbackAlignment {
            feedback: None,
            seed,
            purpose: format!("direct_feedback_alignment/{area}"),
        }
    }

    /// `B_k` for an area of `units` units per image and an output error of `width`, drawn (or
    /// checked against the one restored).
    fn projection(&mut self, units: usize, width: usize) -> &ArrayD<f32> {
        let shape = [units, width];
        if let Some(b) = &self.feedback {
            assert_eq!(
                b.shape(),
                shape,
                "{}: fixed feedback synapses of shape {:?}, but the area and the output error need {shape:?}",
                self.purpose,
                b.shape()
            );
        }
        self.feedback.get_or_insert_with(|| {
            let std = 1.0 / (width as f64).sqrt();
            crate::rng::normal_array(
                &shape,
                std,
                &mut crate::rng::stream(self.seed, &self.purpose),
            )
        })
    }
}

impl PlasticityRule for DirectFeedbackAlignment {
    fn name(&self) -> &str {
        "direct_feedback_alignment"
    }

    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        CowArray::from(weight)
    }

    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(self.clone())
    }

    fn wants_output_error(&self) -> bool {
        true
    }

    fn needs_error_from_above(&self) -> bool {
        false
    }

    fn arriving_error(
        &mut self,
        from_above: Option<Activity>,
        output: &Activity,
        context: &ErrorContext,
    ) -> Activity {
        let Some(e) = context.output_error else {
            // An output area: its own error is the true one.
            return from_above.expect("an output area receives its error");
        };
        let (c, h, w) = (output.channels(), output.height(), output.width());
        let b = self
            .projection(c * h * w, e.ncols())
            .view()
            .into_dimensionality::<Ix2>()
            .expect("two axes");
        let rows: Array2<f32> = e.dot(&b.t());
        Activity::from_rows(rows.view(), c, h, w)
    }

    fn state(&self) -> Option<&ArrayD<f32>> {
        self.feedback.as_ref()
    }

    fn restore(&mut self, state: ArrayD<f32>) -> Result<(), String> {
        if state.ndim() != 2 {
            return Err(format!(
                "fixed feedback synapses of shape {:?}; expected [units, output error]",
                state.shape()
            ));
        }
        self.feedback = Some(state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_depends_on_the_seed_and_the_area_only_and_has_unit_gain() {
        let draw = |seed, area| {
            let mut rule = DirectFeedbackAlignment::new(area, seed);
            rule.projection(4096, 257).clone()
        };
        let b = draw(3, "E.conv2");
        assert_eq!(b, draw(3, "E.conv2"));
        assert_ne!(b, draw(4, "E.conv2"));
        assert_ne!(b, draw(3, "E.conv3"));
        let var = b.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / b.len() as f64;
        assert!((var * 257.0 - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn output_areas_keep_the_error_from_above() {
        let mut rule = DirectFeedbackAlignment::new("E.latent", 0);
        let above = Activity::from_vec(2, 3, 1, 1, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let got = rule.arriving_error(Some(above.clone()), &above, &ErrorContext::default());
        assert_eq!(got, above);
        assert!(rule.state().is_none());
    }
}
