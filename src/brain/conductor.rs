//! The neuromodulator conductor: for each brain state (by name), which pathways are plastic,
//! the sign of the feedback pathway's plasticity, and what the discriminator neurons are told.
//!
//! | state       | feedforward | feedback          | discriminator target |
//! |-------------|-------------|-------------------|----------------------|
//! | Wake        | plastic     | plastic, sign +1  | external (1)         |
//! | NREM        | plastic     | frozen            | gated off            |
//! | REM         | plastic     | plastic, sign −1  | internal (0)         |
//! | contrastive | plastic     | frozen            | gated off            |
//!
//! The sign −1 in REM is the reference's gradient-reversal layer between G and E: G ascends
//! the loss E descends, learning to make dreams that look external.
//!
//! PAD equivalent: which optimisers `step()` in each phase of the reference's training loop,
//! `GradientReversal` in REM, and `BCE(d, 1)` / `BCE(d, 0)` in Wake / REM.

use super::{BrainState, Nrem, Rem, Wake};
use crate::cortex::Reality;
use std::collections::BTreeMap;

/// What the conductor sets for one brain state.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neuromodulation {
    /// Whether the feedforward pathway (E) learns.
    pub feedforward_plastic: bool,
    /// Whether the feedback pathway (G) learns.
    pub feedback_plastic: bool,
    /// Multiplies the error reaching G from E: +1 cooperative, −1 adversarial.
    pub feedback_sign: f32,
    /// The discriminator's target, or `None` when its neurons are not trained.
    pub discriminator: Option<Reality>,
}

impl Neuromodulation {
    /// The feedforward pathway plastic, the feedback pathway frozen, the discriminator not
    /// trained: NREM's and contrastive dreaming's setting, and a common one for new states.
    pub const FEEDFORWARD_ONLY: Neuromodulation = Neuromodulation {
        feedforward_plastic: true,
        feedback_plastic: false,
        feedback_sign: 1.0,
        discriminator: None,
    };
}

/// The per-state table, keyed by state name (`[conductor.<state>]` in TOML). A state without
/// an entry runs with its own [`BrainState::neuromodulation`]; the default table holds PAD's
/// three states.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Conductor {
    /// Settings by state name.
    pub states: BTreeMap<String, Neuromodulation>,
}

impl Default for Conductor {
    fn default() -> Self {
        let pad: [&dyn BrainState; 3] = [&Wake::default(), &Nrem::default(), &Rem::default()];
        Conductor {
            states: pad
                .into_iter()
                .map(|s| (s.name().to_string(), s.neuromodulation()))
                .collect(),
        }
    }
}

impl Conductor {
    /// The settings of the state named `name`, if the table has them.
    pub fn get(&self, name: &str) -> Option<&Neuromodulation> {
        self.states.get(name)
    }

    /// The settings of `state`, to change (created from its own default if absent).
    pub fn entry(&mut self, state: &dyn BrainState) -> &mut Neuromodulation {
        self.states
            .entry(state.name().to_string())
            .or_insert_with(|| state.neuromodulation())
    }

    /// What `state` runs under: its entry, else its own default.
    pub fn for_state(&self, state: &dyn BrainState) -> Neuromodulation {
        self.get(state.name())
            .copied()
            .unwrap_or_else(|| state.neuromodulation())
    }
}
