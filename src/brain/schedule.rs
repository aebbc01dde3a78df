//! Schedules: a wake–sleep cycle as an ordered list of brain-state phases with their loss
//! weights and replay recipes, and the paper's experimental conditions as presets.
//!
//! | condition               | cycle                    | notes                                       |
//! |-------------------------|--------------------------|---------------------------------------------|
//! | `full_pad`              | Wake, NREM, REM          | W = N = R = 1                               |
//! | `no_nrem`               | Wake, REM                |                                             |
//! | `no_rem`                | Wake, NREM               | wake latent noise ε, NREM ×0.5, no BCE term |
//! | `wake_only`             | Wake                     | wake latent noise ε, no BCE term            |
//! | `no_memory_mix`         | Wake, NREM, REM          | REM dreams from the current memory alone    |
//! | `reversed_sleep`        | Wake, REM, NREM          |                                             |
//! | `nrem_mixed_memories`   | Wake, NREM, REM          | NREM replays REM's mix: memories + noise    |
//! | `rem_noise_only`        | Wake, NREM, REM          | REM dreams from noise alone                 |
//! | `rem_memories_only`     | Wake, NREM, REM          | REM dreams from 0.5 z + 0.5 z_old           |
//! | `contrastive_nrem`      | Wake, contrastive, REM   | contrastive dreaming replaces NREM          |
//!
//! PAD equivalent: the reference's command-line switches for these conditions (Figs 4–6 and
//! the appendix of Deperrois et al. 2022); `contrastive_nrem` is padsim's own (see
//! [`super::contrastive`]).
//!
//! Where each preset follows the paper's text:
//! - `full_pad`, `no_nrem`, `no_rem`, `wake_only`: the ablations of Figs 4–6 (Results, "REM
//!   and NREM sleep shape the latent space"; Methods, training). The paper adds Gaussian noise
//!   to the encoded activities "for models without the REM phase", so `no_rem` **and**
//!   `wake_only` reconstruct from `z + ε·n`. The paper does not give ε: padsim's choice is
//!   [`NO_REM_LATENT_NOISE`] = 0.5, half the unit prior's standard deviation (a documented
//!   choice, not the reference's value). `no_rem` also halves the NREM loss, as the reference's
//!   no-REM switch does.
//! - `nrem_mixed_memories` (appendix): NREM replays "a convex combination of mixed memories and
//!   spontaneous cortical activity", i.e. REM's mix ([`MemoryMix::PAD_REM`]: 0.25 z + 0.25 z_old
//!   + 0.5 n, n ~ N(0, I)), then occluded as usual.
//! - `no_memory_mix`, `rem_noise_only`, `rem_memories_only`, `reversed_sleep` (appendix): REM
//!   from the current memory alone, from spontaneous activity alone, from two memories without
//!   it; REM before NREM.
//!
//! In TOML a schedule is a list of phases:
//!
//! ```toml
//! [[schedule.phases]]
//! state = "wake"
//! reconstruction_weight = 1.0
//!
//! [[schedule.phases]]
//! state = "rem"
//! weight = 1.0
//! dream = { current = 0.25, older = 0.25, noise = 0.5 }
//! ```

use super::{Conductor, Contrastive, MemoryMix, Nrem, Phase, Rem, Wake};
use std::fmt;
use std::str::FromStr;

/// Standard deviation of the wake latent noise in the no-REM condition.
pub const NO_REM_LATENT_NOISE: f32 = 0.5;

impl Phase {
    /// PAD's wake phase.
    pub fn wake() -> Phase {
        Phase::new(Wake::default())
    }

    /// PAD's NREM phase.
    pub fn nrem() -> Phase {
        Phase::new(Nrem::default())
    }

    /// PAD's REM phase.
    pub fn rem() -> Phase {
        Phase::new(Rem::default())
    }
}

/// An ordered list of phases, run once per mini-batch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The phases in order. The first must store memories, as Wake does (sleep replays what
    /// wake stored).
    pub phases: Vec<Phase>,
}

impl Default for Schedule {
    fn default() -> Self {
        Condition::FullPad.schedule()
    }
}

impl Schedule {
    /// Checks that every phase can run under the conductor's settings for its state; the
    /// error names the state's `[conductor.<name>]` table.
    pub fn check_conductor(&self, conductor: &Conductor) -> Result<(), String> {
        for phase in &self.phases {
            let state = phase.state();
            state
                .check_neuromodulation(&conductor.for_state(state))
                .map_err(|e| format!("conductor.{}: {e}", state.name()))?;
        }
        Ok(())
    }

    /// Checks that the schedule can run: non-empty, starting with Wake.
    pub fn validate(&self) -> Result<(), String> {
        match self.phases.first() {
            None => Err("the schedule has no phases".into()),
            Some(p) if !p.state().stores_memories() => Err(format!(
                "the schedule starts with {}; it must start with wake or another state that stores memories (sleep replays wake's memories)",
                p.name()
            )),
            _ => Ok(()),
        }
    }
}

/// The paper's experimental conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Wake, NREM, REM (W = N = R = 1).
    FullPad,
    /// No NREM phase.
    NoNrem,
    /// No REM phase; noisy wake latents; NREM loss halved; no discriminator.
    NoRem,
    /// Wake alone (an autoencoder with a KL prior); noisy wake latents, no discriminator.
    WakeOnly,
    /// REM dreams from the current memory alone, without noise.
    NoMemoryMix,
    /// REM before NREM.
    ReversedSleep,
    /// NREM replays REM's mix of two memories and spontaneous activity.
    NremMixedMemories,
    /// REM dreams from noise alone.
    RemNoiseOnly,
    /// REM dreams from two memories without noise.
    RemMemoriesOnly,
    /// Contrastive dreaming in place of NREM (not one of the paper's conditions).
    ContrastiveNrem,
}

impl Condition {
    /// Every condition, in the paper's order.
    pub const ALL: [Condition; 10] = [
        Condition::FullPad,
        Condition::NoNrem,
        Condition::NoRem,
        Condition::WakeOnly,
        Condition::NoMemoryMix,
        Condition::ReversedSleep,
        Condition::NremMixedMemories,
        Condition::RemNoiseOnly,
        Condition::RemMemoriesOnly,
        Condition::ContrastiveNrem,
    ];

    /// The condition's schedule.
    pub fn schedule(self) -> Schedule {
        // Without REM: no discriminator, and noise on the wake latent.
        let wake_without_rem = || {
            Phase::new(Wake {
                discriminator: false,
                latent_noise: NO_REM_LATENT_NOISE,
                ..Wake::default()
            })
        };
        let rem_with = |dream| Phase::new(Rem { weight: 1.0, dream });
        let phases = match self {
            Condition::FullPad => vec![Phase::wake(), Phase::nrem(), Phase::rem()],
            Condition::NoNrem => vec![Phase::wake(), Phase::rem()],
            Condition::NoRem => vec![
                wake_without_rem(),
                Phase::new(Nrem {
                    weight: 0.5,
                    ..Nrem::default()
                }),
            ],
            Condition::WakeOnly => vec![wake_without_rem()],
            Condition::NoMemoryMix => {
                vec![Phase::wake(), Phase::nrem(), rem_with(MemoryMix::CURRENT)]
            }
            Condition::ReversedSleep => vec![Phase::wake(), Phase::rem(), Phase::nrem()],
            Condition::NremMixedMemories => vec![
                Phase::wake(),
                Phase::new(Nrem {
                    recall: MemoryMix::PAD_REM,
                    ..Nrem::default()
                }),
                Phase::rem(),
            ],
            Condition::RemNoiseOnly => {
                vec![Phase::wake(), Phase::nrem(), rem_with(MemoryMix::NOISE)]
            }
            Condition::RemMemoriesOnly => {
                vec![Phase::wake(), Phase::nrem(), rem_with(MemoryMix::MEMORIES)]
            }
            Condition::ContrastiveNrem => {
                vec![
                    Phase::wake(),
                    Phase::new(Contrastive::default()),
                    Phase::rem(),
                ]
            }
        };
        Schedule { phases }
    }

    /// The condition's name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Condition::FullPad => "full_pad",
            Condition::NoNrem => "no_nrem",
            Condition::NoRem => "no_rem",
            Condition::WakeOnly => "wake_only",
            Condition::NoMemoryMix => "no_memory_mix",
            Condition::ReversedSleep => "reversed_sleep",
            Condition::NremMixedMemories => "nrem_mixed_memories",
            Condition::RemNoiseOnly => "rem_noise_only",
            Condition::RemMemoriesOnly => "rem_memories_only",
            Condition::ContrastiveNrem => "contrastive_nrem",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Condition::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Condition::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown condition '{s}'; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_starts_with_wake_and_round_trips_through_its_name() {
        for c in Condition::ALL {
            c.schedule().validate().unwrap();
            assert_eq!(c.name().parse::<Condition>().unwrap(), c);
        }
        assert!("full"
            .parse::<Condition>()
            .unwrap_err()
            .contains("full_pad"));
    }

    #[test]
    fn schedules_read_from_toml_with_defaults() {
        let text = r#"
            [[phases]]
            state = "wake"
            [[phases]]
            state = "rem"
            dream = { current = 0.0, older = 0.0, noise = 1.0 }
        "#;
        let s: Schedule = toml::from_str(text).unwrap();
        assert_eq!(
            s.phases,
            vec![
                Phase::wake(),
                Phase::new(Rem {
                    weight: 1.0,
                    dream: MemoryMix::NOISE
                })
            ]
        );
        let bad = "[[phases]]\nstate = \"wake\"\nreconstruction = 2.0\n";
        let err = toml::from_str::<Schedule>(bad).unwrap_err().to_string();
        assert!(err.contains("reconstruction"), "{err}");
    }

    #[test]
    fn a_schedule_must_start_awake() {
        let s = Schedule {
            phases: vec![Phase::rem(), Phase::wake()],
        };
        assert!(s.validate().unwrap_err().contains("start with wake"));
    }
}
