//! The neuromodulator conductor: for each brain state, which pathways are plastic, the sign
//! of the feedback pathway's plasticity, and what the discriminator neurons are told.
//!
//! | state | feedforward | feedback          | discriminator target |
//! |-------|-------------|-------------------|----------------------|
//! | Wake  | plastic     | plastic, sign +1  | external (1)         |
//! | NREM  | plastic     | frozen            | gated off            |
//! | REM   | plastic     | plastic, sign −1  | internal (0)         |
//!
//! The sign −1 in REM is the reference's gradient-reversal layer between G and E: G ascends
//! the loss E descends, learning to make dreams that look external.
//!
//! PAD equivalent: which optimisers `step()` in each phase of the reference's training loop,
//! `GradientReversal` in REM, and `BCE(d, 1)` / `BCE(d, 0)` in Wake / REM.

use super::Reality;
use crate::states::BrainState;

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

/// The per-state table; the defaults are PAD's.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conductor {
    /// Wake.
    pub wake: Neuromodulation,
    /// NREM.
    pub nrem: Neuromodulation,
    /// REM.
    pub rem: Neuromodulation,
}

impl Default for Conductor {
    fn default() -> Self {
        Conductor {
            wake: Neuromodulation {
                feedforward_plastic: true,
                feedback_plastic: true,
                feedback_sign: 1.0,
                discriminator: Some(Reality::External),
            },
            nrem: Neuromodulation {
                feedforward_plastic: true,
                feedback_plastic: false,
                feedback_sign: 1.0,
                discriminator: None,
            },
            rem: Neuromodulation {
                feedforward_plastic: true,
                feedback_plastic: true,
                feedback_sign: -1.0,
                discriminator: Some(Reality::Internal),
            },
        }
    }
}

impl Conductor {
    /// The settings of `state`.
    pub fn neuromodulation(&self, state: BrainState) -> &Neuromodulation {
        match state {
            BrainState::Wake => &self.wake,
            BrainState::Nrem => &self.nrem,
            BrainState::Rem => &self.rem,
        }
    }
}
