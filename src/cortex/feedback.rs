//! The feedback pathway (generator G): from a latent code back down to an image.
//!
//! ```text
//! z [nz,1,1] → lrelu(tconv 4/1/0) 4×4 → lrelu(tconv 4/2/1) 8×8 → lrelu(tconv 4/2/1) 16×16
//!            → tanh(tconv 4/2/1) 32×32
//! ```
//!
//! Any list of areas can be specified ([`super::Architecture`]); the above is PAD's.
//!
//! PAD equivalent: the reference's `Generator` (`tconv1..tconv4`).

use super::{Activity, CorticalArea, Parameter, Pathway};
use ndarray::{Array2, ArrayView2};

/// Generator: a stack of areas from the latent code to the images (built by
/// [`super::Architecture::init`]).
#[derive(Clone, Debug)]
pub struct FeedbackPathway {
    /// The areas, latent side first (PAD: tconv1..tconv4).
    pub pathway: Pathway,
}

impl FeedbackPathway {
    /// Generates images (`[C, N, side, side]` activity) from latent codes `[N, nz]`.
    pub fn forward(&mut self, z: ArrayView2<f32>) -> &Activity {
        self.pathway.forward(&Activity::from_latent(z))
    }

    /// Sends the error on the generated images back; returns ∂L/∂z (`[N, nz]`) if asked.
    pub fn backward(
        &mut self,
        grad_images: Activity,
        want_latent_grad: bool,
    ) -> Option<Array2<f32>> {
        self.pathway
            .backward(grad_images, want_latent_grad)
            .map(|g| g.to_latent())
    }

    /// Every parameter in the reference order.
    pub fn parameters_mut(&mut self) -> Vec<&mut Parameter> {
        self.pathway.parameters_mut()
    }

    /// Every parameter in the reference order.
    pub fn parameters(&self) -> Vec<&Parameter> {
        self.pathway.parameters()
    }

    /// Every area, latent side first (tconv1..tconv4).
    pub fn areas(&self) -> Vec<&CorticalArea> {
        self.pathway.areas.iter().collect()
    }

    /// Every area, latent side first (tconv1..tconv4).
    pub fn areas_mut(&mut self) -> Vec<&mut CorticalArea> {
        self.pathway.areas.iter_mut().collect()
    }
}
