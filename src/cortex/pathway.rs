//! A pathway: an ordered stack of cortical areas, each driven by the one before.
//!
//! ```text
//! forward:  a_0 = input,  a_i = area_i(a_{i−1})
//! backward: δ_L = ∂L/∂a_L,  δ_{i−1} = area_i.backward(δ_i)
//! ```
//!
//! PAD equivalent: the `nn.Sequential`-like bodies of the reference's encoder and generator.

use super::{Activity, CorticalArea, Parameter};

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
        let mut grad = Some(grad_output);
        for i in (0..self.areas.len()).rev() {
            let needed = i > 0 || want_input_grad;
            grad = self.areas[i].backward(grad.expect("error from the area above"), needed);
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
