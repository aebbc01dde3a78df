//! Brain states as an open set: the [`BrainState`] trait, the [`Phase`] of a schedule that
//! holds one, and the registry through which TOML schedules name them.
//!
//! ```text
//! a cycle:   for each phase:  m = conductor[phase.name()] or phase.neuromodulation()
//!                             losses = phase.run(brain, x, m)   → /losses/<name>/<term>
//! ```
//!
//! A state computes from the batch, the hippocampus and its neuromodulation `m` (which
//! pathways are plastic, the feedback pathway's sign, the discriminator's target), sends its
//! errors back and steps the plastic pathways (usually through [`Brain::apply_plasticity`]).
//! Wake, NREM, REM and contrastive dreaming are built in; a state written elsewhere becomes
//! usable in TOML schedules (`[[schedule.phases]] state = "<name>"`, its settings beside) once
//! [`register_state`] has named it.
//!
//! PAD equivalent: the Wake, NREM and REM blocks of the reference's training loop.

use super::{Brain, Neuromodulation};
use crate::cortex::Activity;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{LazyLock, RwLock};

/// Named loss terms of one phase, in the order of [`BrainState::loss_terms`].
pub type Losses = Vec<(&'static str, f64)>;

/// A brain state: what it does to the cortex in one phase of a cycle.
///
/// Implement it for a `Clone + Serialize` settings struct: the settings are what a TOML phase
/// table holds (besides `state`), and [`StateObject`] (copying and serialising) comes free.
pub trait BrainState: StateObject + Send + Sync + fmt::Debug + Any {
    /// The name in schedules, the conductor and run files (`wake`, `nrem`, ...).
    fn name(&self) -> &str;

    /// The names of the loss terms [`BrainState::run`] returns, in its order (each becomes
    /// `/losses/<state>/<term>` in the run file).
    fn loss_terms(&self) -> Vec<&'static str>;

    /// The neuromodulation of this state when the conductor has no entry for its name.
    fn neuromodulation(&self) -> Neuromodulation;

    /// Whether the state stores memories in the hippocampus (a schedule must start with one,
    /// since sleep replays what it stored). Default: no.
    fn stores_memories(&self) -> bool {
        false
    }

    /// Checks that the state can run under `modulation` (its conductor entry); the error says
    /// what is missing. Called when a configuration is validated, before any data is read.
    /// Default: any neuromodulation will do.
    fn check_neuromodulation(&self, modulation: &Neuromodulation) -> Result<(), String> {
        let _ = modulation;
        Ok(())
    }

    /// Runs the state on the batch `x` (`[C, N, H, W]` in [-1, 1]) under `modulation`; returns
    /// the loss terms.
    fn run(&self, brain: &mut Brain, x: &Activity, modulation: &Neuromodulation) -> Losses;
}

/// Copying and serialising a boxed state; implemented for every `Clone + Serialize` state.
pub trait StateObject {
    /// A boxed copy.
    fn boxed_clone(&self) -> Box<dyn BrainState>;
    /// The state's settings as a TOML table (without the `state` key).
    fn settings(&self) -> toml::Table;
}

impl<T: BrainState + Clone + Serialize> StateObject for T {
    fn boxed_clone(&self) -> Box<dyn BrainState> {
        Box::new(self.clone())
    }

    fn settings(&self) -> toml::Table {
        toml::Table::try_from(self).expect("a state's settings serialise as a TOML table")
    }
}

type Constructor = fn(toml::Table) -> Result<Box<dyn BrainState>, String>;

fn construct<S: BrainState + DeserializeOwned>(
    settings: toml::Table,
) -> Result<Box<dyn BrainState>, String> {
    let state: S = settings
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    Ok(Box::new(state))
}

static REGISTRY: LazyLock<RwLock<BTreeMap<String, Constructor>>> = LazyLock::new(|| {
    let mut states = BTreeMap::new();
    let mut add = |name: &str, make: Constructor| states.insert(name.to_string(), make);
    add("wake", construct::<super::Wake>);
    add("nrem", construct::<super::Nrem>);
    add("rem", construct::<super::Rem>);
    add("contrastive", construct::<super::Contrastive>);
    RwLock::new(states)
});

/// Makes the state `S` usable in TOML schedules under its name (`S::default().name()`), its
/// settings read from the phase's table. Registering a name again replaces the state.
pub fn register_state<S: BrainState + DeserializeOwned + Default>() {
    let name = S::default().name().to_string();
    REGISTRY
        .write()
        .expect("state registry")
        .insert(name, construct::<S>);
}

/// The names of every registered state, sorted.
pub fn registered_states() -> Vec<String> {
    REGISTRY
        .read()
        .expect("state registry")
        .keys()
        .cloned()
        .collect()
}

/// A state named `name` with the settings `settings` (a TOML phase table without `state`).
pub fn state_from_settings(
    name: &str,
    settings: toml::Table,
) -> Result<Box<dyn BrainState>, String> {
    let make = REGISTRY.read().expect("state registry").get(name).copied();
    let make = make.ok_or_else(|| {
        format!(
            "unknown brain state '{name}'; the registered states are {}",
            registered_states().join(", ")
        )
    })?;
    make(settings).map_err(|e| format!("state '{name}': {e}"))
}

/// One phase of a cycle: a brain state with its settings.
pub struct Phase(Box<dyn BrainState>);

impl Phase {
    /// A phase running `state`.
    pub fn new(state: impl BrainState) -> Self {
        Phase(Box::new(state))
    }

    /// The state.
    pub fn state(&self) -> &dyn BrainState {
        &*self.0
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The state as its concrete type, if it is one.
    pub fn downcast_ref<S: BrainState>(&self) -> Option<&S> {
        let any: &dyn Any = &*self.0;
        any.downcast_ref()
    }
}

impl Clone for Phase {
    fn clone(&self) -> Self {
        Phase(self.0.boxed_clone())
    }
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for Phase {
    fn eq(&self, other: &Phase) -> bool {
        self.name() == other.name() && self.0.settings() == other.0.settings()
    }
}

impl Serialize for Phase {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let mut table = toml::Table::new();
        table.insert("state".into(), toml::Value::String(self.name().into()));
        table.extend(self.0.settings());
        table.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(deserializer)?;
        let name = match table.remove("state") {
            Some(toml::Value::String(name)) => name,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "a phase's state is a name, not {}",
                    other.type_str()
                )))
            }
            None => return Err(D::Error::custom("a phase needs `state = \"<name>\"`")),
        };
        state_from_settings(&name, table)
            .map(Phase)
            .map_err(D::Error::custom)
    }
}
