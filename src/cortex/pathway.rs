//! A pathway: an ordered stack of cortical areas, each driven by the one before.
//!
//! ```text
//! forward:  a_0 = input,  a_i = area_i(a_{i−1})
//! backward: δ_L = ∂L/∂a_L,  δ_{i−1} = area_i.backward(δ_i)
//! ```
//!
//! When an area's rule asks for the pathway's output error `e_out` (direct feedback
//! alignment), it is the δ of the last area, one row per image, unless the caller gives it
//! (the feedforward pathway's heads); an area above a rule that needs no error from above
//! does not compute one.
//!
//! PAD equivalent: the `nn.Sequential`-like bodies of the reference's encoder and generator.

use super::rule::ErrorContext;
use super::{Activity, CorticalArea, Parameter};
use ndarray::Array2;

/// An ordered stack of areas.
#[derive(Clone, Debug)]
pub struct Pathway {
    /// The areas, input side first.
    pub areas: Vec<CorticalArea>,
}

impl Pathway {
    /// Runs `input` through every area; returns the last area's activity.
    pub fn forward(&mut self, input: &Activity) -> &Activity {
        for i in 0..self.areas.len() {
            let (done, rest) = self.areas.split_at_mut(i);
            let source = done.last().map_or(input, |area| area.output());
            rest[0].forward(source);
        }
        self.output()
    }

    /// The last area's activity (the input if the pathway is empty is not allowed).
    pub fn output(&self) -> &Activity {
        self.areas
            .last()
            .expect("a pathway has at least one area")
            .output()
    }

    /// Sends `grad_output` back from the last area to the first; returns ∂L/∂input if
    /// `want_input_grad`.
    pub fn backward(&mut self, grad_output: Activity, want_input_grad: bool) -> Option<Activity> {
        self.backward_with(Some(grad_output), want_input_grad, None)
    }

    /// [`Pathway::backward`] with the pathway's output error given by the caller (`[N, E]`),
    /// for rules that ask for it (`None`: the last area's δ). `grad_output` is absent when the
    /// last area's rule builds its error without it.
    pub fn backward_with(
        &mut self,
        grad_output: Option<Activity>,
        want_input_grad: bool,
        output_error: Option<&Array2<f32>>,
    ) -> Option<Activity> {
        let wanted = self.areas.iter().any(|a| a.rule.wants_output_error());
        let mut grad = grad_output;
        let mut own_error = None;
        for i in (0..self.areas.len()).rev() {
            let last = i + 1 == self.areas.len();
            let needed = if i > 0 {
                self.areas[i - 1].rule.needs_error_from_above()
            } else {
                want_input_grad
            };
            let context = ErrorContext {
                output_error: if last && output_error.is_none() {
                    None
                } else {
                    output_error.or(own_error.as_ref())
                },
            };
            let keep = last && wanted && output_error.is_none();
            grad = self.areas[i].backward_with(grad.take(), needed, &context, keep);
            if keep {
                own_error = self.areas[i].delta().map(Activity::to_rows);
            }
        }
        grad
    }

    /// Every parameter, input side first, weight before bias.
    pub fn parameters_mut(&mut self) -> Vec<&mut Parameter> {
        self.areas
            .iter_mut()
            .flat_map(|a| a.parameters_mut())
            .collect()
    }

    /// Every parameter, input side first, weight before bias.
    pub fn parameters(&self) -> Vec<&Parameter> {
        self.areas.iter().flat_map(|a| a.parameters()).collect()
    }
}
