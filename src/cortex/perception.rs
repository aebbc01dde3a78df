//! Perception without learning: the feedforward pathway's trunk and latent head, frozen and
//! run channels-last, for feature extraction.
//!
//! ```text
//! z = latent(V4(V2(V1(x))))      each area  a ↦ f(W ⊛ a + b)      (no discriminator, no traces)
//! ```
//!
//! The weights are copied once into the channels-last layout of
//! [`crate::kernels::channels_last`], whose products the `gemm` crate runs faster, and for
//! V2 and V4 also into Winograd's transformed form ([`crate::kernels::winograd`], 9/16 of the
//! multiplications; each area takes the faster of the two for its map); nothing is kept for
//! a backward pass, so the pathway is shared read-only by every thread. The codes equal
//! [`FeedforwardPathway::forward`]'s `z` to rounding.
//!
//! PAD equivalent: `with torch.no_grad(): z, _ = netE(x)` (the feature loop before the linear
//! classifier).

use super::{Connectivity, CorticalArea, FeedforwardPathway};
use crate::kernels::channels_last::{self, transposed_weight};
use crate::kernels::gemm::FixedOperand;
use crate::kernels::transpose::transpose;
use crate::kernels::winograd::{self, WinogradScratch};
use crate::kernels::{Activation, ConvGeometry};
use ndarray::{Array2, ArrayView4};
use std::sync::{Mutex, OnceLock};

/// One area, frozen.
#[derive(Clone, Debug)]
struct FrozenArea {
    geometry: ConvGeometry,
    /// `Wᵀ[k·k·C_in, C_out]`, for im2col + GEMM (packed once for bfloat16 products).
    weight_t: FixedOperand<f32>,
    /// Winograd's `U_ξ`, made from `weight_t` the first time a map makes Winograd pay off
    /// (never for V1 or the latent head, whose transformed weights would be dead weight).
    winograd: OnceLock<Vec<FixedOperand<f32>>>,
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
            winograd: OnceLock::new(),
            bias: area.bias.value.iter().copied().collect(),
            activation: area.activation,
        }
    }
}

/// The patch matrix (or Winograd's transformed tiles) and the two maps a pass alternates
/// between.
#[derive(Default)]
struct Buffers {
    col: Vec<f32>,
    winograd: WinogradScratch<f32>,
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
    /// Whether every area of the trunk and the latent head is a convolution (dense areas
    /// are), as the frozen passes need; a trunk with a transposed convolution is encoded by
    /// [`FeedforwardPathway::encode`] instead.
    pub fn supports(pathway: &FeedforwardPathway) -> bool {
        let mut areas = pathway.trunk.areas.iter().chain([&pathway.latent]);
        areas.all(|a| a.connectivity == Connectivity::Conv)
    }

    /// The frozen copy of `pathway`'s trunk and latent head. Panics unless
    /// [`FrozenPerception::supports`] it.
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
        to_channels_last(images, &mut buffers.input);
        for area in &self.areas {
            let b = &mut buffers;
            let g = &area.geometry;
            let x = &b.input[..n * h * w * g.in_channels];
            (h, w) = if winograd::pays_off(g, h, w) {
                let u = area
                    .winograd
                    .get_or_init(|| winograd::transformed_weight(&area.weight_t, g));
                winograd::conv2d_forward(
                    x,
                    n,
                    h,
                    w,
                    g,
                    u,
                    &area.bias,
                    area.activation,
                    &mut b.winograd,
                    &mut b.output,
                )
            } else {
                channels_last::conv2d_forward(
                    x,
                    n,
                    h,
                    w,
                    g,
                    &area.weight_t,
                    &area.bias,
                    area.activation,
                    &mut b.col,
                    &mut b.output,
                )
            };
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

/// `[N, C, H, W]` images into `[N, H, W, C]` maps: each image's `C × HW` matrix transposed.
fn to_channels_last(images: ArrayView4<f32>, out: &mut Vec<f32>) {
    let (_, c, h, w) = images.dim();
    out.clear();
    match images.as_slice() {
        Some(pixels) => {
            out.resize(pixels.len(), 0.0);
            for (image, dst) in pixels
                .chunks_exact(c * h * w)
                .zip(out.chunks_exact_mut(c * h * w))
            {
                transpose(image, c, h * w, dst);
            }
        }
        None => out.extend(images.permuted_axes([0, 2, 3, 1]).iter().copied()),
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
        let mut encoder = arch.init(&mut rng).feedforward;
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
