//! The feedforward pathway (encoder E): V1 → V2 → V4, then IT (the latent code z) and the
//! discriminator neurons, both reading V4.
//!
//! ```text
//! V1 = lrelu(conv 4/2/1)  32→16     V2 = lrelu(conv 4/2/1)  16→8     V4 = lrelu(conv 4/2/1) 8→4
//! z  = conv 4/2/0 (V4), flattened (no nonlinearity)      d = σ(conv 4/2/0 (V4))
//! ```
//!
//! Any trunk and heads can be specified ([`super::Architecture`]); the above is PAD's.
//!
//! PAD equivalent: the reference's `Encoder` (`conv1..conv3`, `latent`, `dis`).

use super::rule::ErrorContext;
use super::{Activity, CorticalArea, Discriminator, Parameter, Pathway};
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};

/// Encoder: trunk, latent head (IT) and discriminator neurons (built by
/// [`super::Architecture::init`]).
#[derive(Clone, Debug)]
pub struct FeedforwardPathway {
    /// The trunk (PAD: V1, V2, V4).
    pub trunk: Pathway,
    /// IT: the latent code.
    pub latent: CorticalArea,
    /// Discriminator neurons.
    pub discriminator: Discriminator,
}

/// What the feedforward pathway computes for a batch.
#[derive(Clone, Debug)]
pub struct Percept {
    /// Latent codes `[N, nz]`.
    pub z: Array2<f32>,
    /// Discriminator outputs `[N]`, in (0, 1).
    pub d: Array1<f32>,
}

impl FeedforwardPathway {
    /// Perceives a batch of images (`[C, N, side, side]` activity).
    pub fn forward(&mut self, images: &Activity) -> Percept {
        let v4 = self.trunk.forward(images);
        let z = self.latent.forward(v4).to_latent();
        let d = self.discriminator.forward(v4);
        Percept { z, d }
    }

    /// The latent code `[N, nz]` of a batch alone (NREM reads no discriminator output).
    pub fn encode(&mut self, images: &Activity) -> Array2<f32> {
        let v4 = self.trunk.forward(images);
        self.latent.forward(v4).to_latent()
    }

    /// The discriminator's outputs `[N]` for a batch alone (REM reads no latent code).
    pub fn discriminate(&mut self, images: &Activity) -> Array1<f32> {
        let v4 = self.trunk.forward(images);
        self.discriminator.forward(v4)
    }

    /// Sends the errors on z and/or d back to the images. A head without error gets no
    /// gradient (its parameters are not stepped); with neither, nothing happens. Rules of the
    /// trunk that ask for the output error get `e_out = [δ_z, δ_d]` per image (`[N, nz + 1]`,
    /// zeros for a head without error).
    pub fn backward(
        &mut self,
        grad_z: Option<ArrayView2<f32>>,
        grad_d: Option<ArrayView1<f32>>,
        want_input_grad: bool,
    ) -> Option<Activity> {
        if grad_z.is_none() && grad_d.is_none() {
            return None;
        }
        let wanted = self.trunk.areas.iter().any(|a| a.rule.wants_output_error());
        // The heads send their error to V4 only if V4's rule takes it (DFA builds its own).
        let send_down = self
            .trunk
            .areas
            .last()
            .is_none_or(|a| a.rule.needs_error_from_above());
        let none = ErrorContext::default();
        let from_z = grad_z.and_then(|g| {
            let grad = Activity::from_latent(g);
            self.latent
                .backward_with(Some(grad), send_down, &none, wanted)
        });
        let from_d = grad_d.and_then(|g| self.discriminator.backward(g, send_down, wanted));
        let output_error = wanted.then(|| self.output_error(grad_z.is_some(), grad_d.is_some()));
        let grad_v4 = match (from_z, from_d) {
            (Some(mut a), Some(b)) => {
                a.add_assign(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
        self.trunk
            .backward_with(grad_v4, want_input_grad, output_error.as_ref())
    }

    /// `[δ_z, δ_d]` of the heads' last backward pass, `[N, nz + 1]`; zeros for a head that had
    /// no error.
    fn output_error(&self, z: bool, d: bool) -> Array2<f32> {
        let nz = self.latent.geometry.out_channels;
        let dz = z.then(|| self.latent.delta().expect("kept").to_latent());
        let dd = d.then(|| self.discriminator.area.delta().expect("kept").to_latent());
        // The batch of the head that ran: the other head's trace may be of an earlier phase.
        let n = dz.as_ref().or(dd.as_ref()).map_or(0, |e| e.nrows());
        let mut e = Array2::zeros((n, nz + 1));
        if let Some(dz) = dz {
            e.slice_mut(s![.., ..nz]).assign(&dz);
        }
        if let Some(dd) = dd {
            e.slice_mut(s![.., nz..]).assign(&dd);
        }
        e
    }

    /// Every parameter in the reference order.
    pub fn parameters_mut(&mut self) -> Vec<&mut Parameter> {
        let mut params = self.trunk.parameters_mut();
        params.extend(self.latent.parameters_mut());
        params.extend(self.discriminator.area.parameters_mut());
        params
    }

    /// Every parameter in the reference order.
    pub fn parameters(&self) -> Vec<&Parameter> {
        let mut params = self.trunk.parameters();
        params.extend(self.latent.parameters());
        params.extend(self.discriminator.area.parameters());
        params
    }

    /// Every area, input side first, then IT and the discriminator.
    pub fn areas(&self) -> Vec<&CorticalArea> {
        let mut areas: Vec<&CorticalArea> = self.trunk.areas.iter().collect();
        areas.push(&self.latent);
        areas.push(&self.discriminator.area);
        areas
    }

    /// Every area, input side first, then IT and the discriminator.
    pub fn areas_mut(&mut self) -> Vec<&mut CorticalArea> {
        let mut areas: Vec<&mut CorticalArea> = self.trunk.areas.iter_mut().collect();
        areas.push(&mut self.latent);
        areas.push(&mut self.discriminator.area);
        areas
    }
}
