//! Perception without learning: the feedforward pathway's trunk and latent head, frozen and
//! run channels-last, for feature extraction.
//!
//! ```text
//! z = latent(V4(V2(V1(x))))      each area  a ↦ f(W ⊛ a + b)      (no discriminator, no traces)
//! ```
//!
//! The weights are copied once into the channels-last layout of
//! [`crate::kernels::channels_last`], whose products the `gemm` crate runs faster; nothing is
//! kept for a backward pass, so the pathway is shared read-only by every thread. The codes
//! equal [`FeedforwardPathway::forward`]'s `z` to rounding.
//!
//! PAD equivalent: `with torch.no_grad(): z, _ = netE(x)` (the feature loop before the linear
//! classifier).

use super::{Connectivity, CorticalArea, FeedforwardPathway};
use crate::kernels::channels_last::{conv2d_forward, transposed_weight};
use crate::kernels::{Activation, ConvGeometry};
use ndarray::{Array2, ArrayView4};
use std::sync::Mutex;

/// One area, frozen.
#[derive(Clone, Debug)]
struct FrozenArea {
    geometry: ConvGeometry,
    /// `Wᵀ[k·k·C_in, C_out]`.
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    activation: Activation,
}

impl FrozenArea {
    fn new(area: &CorticalArea) -> Self {
        assert_eq!(
            area.connectivity,
            Connectivity::Conv,
            "area {} is not a convolution",
            area.name
        );
        let weight = area.weight.value.as_slice().expect("standard layout");
        FrozenArea {
            geometry: area.geometry,
            weight_t: transposed_weight(weight, &area.geometry),
            bias: area.bias.value.iter().copied().collect(),
            activation: area.activation,
        }
    }
}

/// The patch matrix and the two maps a pass alternates between.
#[derive(Default)]
struct Buffers {
    col: Vec<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
}

/// The feedforward pathway frozen for perception (see the module docs).
pub struct FrozenPerception {
    areas: Vec<FrozenArea>,
    /// Buffers of finished passes, taken by the next ones (one set per concurrent pass).
    idle: Mutex<Vec<Buffers>>,
}

impl FrozenPerception {
    /// Freezes `pathway`'s current synapses (V1 … V4 and IT).
    pub fn new(pathway: &FeedforwardPathway) -> Self {
        let areas = pathway
            .trunk
            .areas
            .iter()
            .chain([&pathway.latent])
            .map(FrozenArea::new)
            .collect();
        FrozenPerception {
            areas,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Latent codes `[N, nz]` of the images `[N, C, H, W]`.
    pub fn latents(&self, images: ArrayView4<f32>) -> Array2<f32> {
        let (n, c, mut h, mut w) = images.dim();
        let first = &self.areas[0].geometry;
        assert_eq!(
            c, first.in_channels,
            "perception expects {} image channels, got {c}",
            first.in_channels
        );
        let mut buffers = self.take_buffers();
        buffers.input.clear();
        buffers
            .input
            .extend(images.permuted_axes([0, 2, 3, 1]).iter().copied());
        for area in &self.areas {
            let b = &mut buffers;
            (h, w) = conv2d_forward(
                &b.input[..n * h * w * area.geometry.in_channels],
                n,
                h,
                w,
                &area.geometry,
                &area.weight_t,
                &area.bias,
                area.activation,
                &mut b.col,
                &mut b.output,
            );
            std::mem::swap(&mut b.input, &mut b.output);
        }
        let nz = self.areas.last().map_or(0, |a| a.geometry.out_channels);
        assert_eq!((h, w), (1, 1), "the latent head must reduce the map to 1x1");
        let z = Array2::from_shape_vec((n, nz), buffers.input[..n * nz].to_vec())
            .expect("[N, nz] codes");
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buffers);
        z
    }

    fn take_buffers(&self) -> Buffers {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cortex::{Activity, Architecture};
    use ndarray::Array4;
    use ndarray_rand::rand_distr::Uniform;
    use ndarray_rand::RandomExt;

    #[test]
    fn codes_equal_the_training_forward_pass_to_rounding() {
        let arch = Architecture::default();
        let mut rng = crate::rng::stream(3, "test/perception");
        let mut encoder = FeedforwardPathway::new(&arch, &mut rng);
        let uniform = Uniform::new(-1.0f32, 1.0).unwrap();
        let images = Array4::random_using((5, 3, 32, 32), uniform, &mut rng);
        let expected = encoder.forward(&Activity::from_nchw(images.view())).z;
        let frozen = FrozenPerception::new(&encoder);
        for _ in 0..2 {
            let z = frozen.latents(images.view());
            assert_eq!(z.dim(), expected.dim());
            let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, e) in z.iter().zip(&expected) {
                assert!((a - e).abs() <= 1e-5 * scale, "{a} vs {e}");
            }
        }
    }
}
