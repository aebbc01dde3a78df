//! The cortex: areas, pathways and the discriminator neurons.
//!
//! An area owns its synapses, transfer function, last activity and plasticity rule (the
//! [`PlasticityRule`] seam, in [`rule`]); a pathway stacks areas.
//! PAD has two pathways: the feedforward one ([`FeedforwardPathway`], the encoder E with its
//! [`Discriminator`]) and the feedback one ([`FeedbackPathway`], the generator G).
//! Which areas they hold is data: an [`Architecture`] lists each pathway's [`AreaSpec`]s
//! (PAD's is [`Architecture::pad`]), checks their shapes and builds the [`Cortex`].

mod activity;
mod architecture;
mod area;
mod discriminator;
mod feedback;
mod feedforward;
mod pathway;
mod perception;
pub mod rule;
mod synapses;

pub use activity::Activity;
pub use architecture::{
    Architecture, ArchitectureError, AreaKind, AreaLayout, AreaSpec, MapShape, Role, PAD_LEAK,
};
pub use area::{release_scratch, Connectivity, CorticalArea, INIT_STD};
pub use discriminator::{Discriminator, Reality};
pub use feedback::FeedbackPathway;
pub use feedforward::{FeedforwardPathway, Percept};
pub use pathway::Pathway;
pub use perception::FrozenPerception;
pub use rule::{
    ErrorContext, ExactBackprop, LocalSignals, Modulation, PlasticityRule, SynapticChange,
};
pub use synapses::Parameter;

use ndarray_rand::rand::Rng;

/// Both pathways, initialised as the reference does: E's parameters first, then G's, from
/// one seeded generator.
#[derive(Clone, Debug)]
pub struct Cortex {
    /// Feedforward pathway (encoder E).
    pub feedforward: FeedforwardPathway,
    /// Feedback pathway (generator G).
    pub feedback: FeedbackPathway,
    /// The specification the cortex was built from.
    pub architecture: Architecture,
}

impl Cortex {
    /// A new cortex of architecture `arch` with PAD's initialisation ([`Architecture::init`];
    /// panics if `arch` is not valid: check it with [`Architecture::layout`]).
    pub fn new(arch: &Architecture, rng: &mut impl Rng) -> Self {
        arch.init(rng)
    }

    /// Every parameter, E first, in the reference's order.
    pub fn parameters_mut(&mut self) -> Vec<&mut Parameter> {
        let mut params = self.feedforward.parameters_mut();
        params.extend(self.feedback.parameters_mut());
        params
    }

    /// Every parameter, E first, in the reference's order.
    pub fn parameters(&self) -> Vec<&Parameter> {
        let mut params = self.feedforward.parameters();
        params.extend(self.feedback.parameters());
        params
    }

    /// Every area, E's (input side first, then IT and the discriminator) before G's.
    pub fn areas(&self) -> Vec<&CorticalArea> {
        let mut areas = self.feedforward.areas();
        areas.extend(self.feedback.areas());
        areas
    }

    /// Every area, E's (input side first, then IT and the discriminator) before G's.
    pub fn areas_mut(&mut self) -> Vec<&mut CorticalArea> {
        let mut areas = self.feedforward.areas_mut();
        areas.extend(self.feedback.areas_mut());
        areas
    }

    /// Sets the modulation each pathway's areas show their rules (at the start of a state).
    pub fn modulate(&mut self, feedforward: Modulation, feedback: Modulation) {
        for area in self.feedforward.areas_mut() {
            area.modulation = feedforward;
        }
        for area in self.feedback.areas_mut() {
            area.modulation = feedback;
        }
    }

    /// Forgets every gradient (before a new phase).
    pub fn clear_grads(&mut self) {
        self.parameters_mut()
            .into_iter()
            .for_each(Parameter::clear_grad);
    }
}
