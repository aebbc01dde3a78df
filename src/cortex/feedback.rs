//! The feedback pathway (generator G): from a latent code back down to an image.
//!
//! ```text
//! z [nz,1,1] → lrelu(tconv 4/1/0) 4×4 → lrelu(tconv 4/2/1) 8×8 → lrelu(tconv 4/2/1) 16×16
//!            → tanh(tconv 4/2/1) 32×32
//! ```
//!
//! PAD equivalent: the reference's `Generator` (`tconv1..tconv4`).

use super::{Activity, Architecture, Connectivity, CorticalArea, Parameter, Pathway};
use crate::kernels::{Activation, ConvGeometry};
use ndarray::{Array2, ArrayView2};
use ndarray_rand::rand::Rng;

/// Generator: a stack of four transposed-convolution areas.
#[derive(Clone, Debug)]
pub struct FeedbackPathway {
    /// tconv1..tconv4.
    pub pathway: Pathway,
}

impl FeedbackPathway {
    /// A freshly initialised generator; draws G's parameters from `rng` in the reference order.
    pub fn new(arch: &Architecture, rng: &mut impl Rng) -> Self {
        let lrelu = Activation::LeakyRelu(arch.leak);
        let nf = arch.nf;
        let up = |i, o| ConvGeometry {
            in_channels: i,
            out_channels: o,
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        let first = ConvGeometry {
            in_channels: arch.nz,
            out_channels: 4 * nf,
            kernel: 4,
            stride: 1,
            padding: 0,
        };
        let mut area = |name, region, g, act| {
            CorticalArea::new("G", name, region, Connectivity::ConvTranspose, g, act, rng)
        };
        FeedbackPathway {
            pathway: Pathway {
                areas: vec![
                    area("tconv1", "V4 (feedback)", first, lrelu),
                    area("tconv2", "V2 (feedback)", up(4 * nf, 2 * nf), lrelu),
                    area("tconv3", "V1 (feedback)", up(2 * nf, nf), lrelu),
                    area(
                        "tconv4",
                        "retina (feedback)",
                        up(nf, arch.image_channels),
                        Activation::Tanh,
                    ),
                ],
            },
        }
    }

    /// Generates images (`[C, N, 32, 32]` activity) from latent codes `[N, nz]`.
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
