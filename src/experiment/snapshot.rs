//! Brain ↔ checkpoint: everything a killed run needs to continue bit for bit — parameters,
//! both optimisers' states, the hippocampus, the brain's random stream, the position in training, and
//! the state of plasticity rules that keep one (feedback alignment's fixed `B`), as the
//! checkpoint's extra array `<rule>:<area>`, e.g. `/extra/feedback_alignment:E.conv2` (HDF5
//! names cannot contain `/`).
//!
//! PAD equivalent: none (the reference saves weights only); this is what makes padsim runs
//! resumable on preemptible cluster nodes.

use crate::brain::Brain;
use crate::plasticity::{PathwayOptimiser, TensorState};
use crate::record::{Checkpoint, OptimiserState, RngState};
use crate::rng::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

const FEEDFORWARD: &str = "feedforward";
const FEEDBACK: &str = "feedback";
const DREAMS: &str = "dreams";

/// The checkpoint name of the state of `area`'s rule.
fn rule_state_name(rule: &str, area: &str) -> String {
    format!("{rule}:{area}")
}

fn optimiser_state(name: &str, optimiser: &PathwayOptimiser) -> OptimiserState {
    OptimiserState {
        name: name.to_string(),
        tensors: optimiser
            .tensors()
            .into_iter()
            .map(|t| (t.name, t.step, t.buffers))
            .collect(),
    }
}

/// The brain's state at a point of training.
pub fn capture(
    brain: &Brain,
    config_toml: String,
    epoch: u64,
    batch: u64,
    scalars: Vec<(String, f64)>,
) -> Checkpoint {
    Checkpoint {
        config_toml,
        epoch,
        batch,
        parameters: brain
            .cortex
            .parameters()
            .into_iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect(),
        optimisers: vec![
            optimiser_state(FEEDFORWARD, &brain.feedforward_optimiser),
            optimiser_state(FEEDBACK, &brain.feedback_optimiser),
        ],
        memories: brain.hippocampus.memories().cloned().collect(),
        rngs: vec![RngState {
            name: DREAMS.to_string(),
            seed: brain.rng.get_seed(),
            stream: brain.rng.get_stream(),
            word_pos: brain.rng.get_word_pos(),
        }],
        extra: brain
            .cortex
            .areas()
            .into_iter()
            .filter_map(|area| {
                let state = area.rule.state()?;
                Some((
                    rule_state_name(area.rule.name(), &area.full_name),
                    state.clone(),
                ))
            })
            .collect(),
        scalars,
    }
}

/// Puts a checkpoint's state into `brain` (built from the same configuration).
pub fn restore(brain: &mut Brain, checkpoint: &Checkpoint) -> Result<(), String> {
    for p in brain.cortex.parameters_mut() {
        let (_, value) = checkpoint
            .parameters
            .iter()
            .find(|(name, _)| *name == p.name)
            .ok_or_else(|| format!("the checkpoint has no parameter {}", p.name))?;
        if value.shape() != p.value.shape() {
            return Err(format!(
                "{}: checkpoint shape {:?}, model shape {:?}",
                p.name,
                value.shape(),
                p.value.shape()
            ));
        }
        p.value = value.clone();
        p.grad = None;
    }
    for (name, optimiser) in [
        (FEEDFORWARD, &mut brain.feedforward_optimiser),
        (FEEDBACK, &mut brain.feedback_optimiser),
    ] {
        let state = checkpoint
            .optimisers
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| format!("the checkpoint has no {name} optimiser"))?;
        let tensors: Vec<TensorState> = state
            .tensors
            .iter()
            .map(|(p, step, buffers)| TensorState {
                name: p.clone(),
                step: *step,
                buffers: buffers.clone(),
            })
            .collect();
        optimiser
            .restore(&tensors)
            .map_err(|e| format!("the {name} optimiser: {e}"))?;
    }
    for area in brain.cortex.areas_mut() {
        let name = rule_state_name(area.rule.name(), &area.full_name);
        let saved = checkpoint.extra.iter().find(|(n, _)| *n == name);
        let Some((_, state)) = saved else {
            // A rule that draws its state at first use (direct feedback alignment) has none
            // before it, and draws the same again.
            if area.rule.state().is_some() {
                return Err(format!(
                    "the checkpoint has no {name} (the state of {}'s {} rule)",
                    area.full_name,
                    area.rule.name()
                ));
            }
            continue;
        };
        area.rule
            .restore(state.clone())
            .map_err(|e| format!("{name}: {e}"))?;
    }
    brain.hippocampus.clear();
    for memory in checkpoint.memories.iter().rev() {
        brain.hippocampus.store(memory.clone());
    }
    let rng = checkpoint
        .rngs
        .iter()
        .find(|r| r.name == DREAMS)
        .ok_or("the checkpoint has no dreams RNG")?;
    brain.rng = ChaCha8Rng::from_seed(rng.seed);
    brain.rng.set_stream(rng.stream);
    brain.rng.set_word_pos(rng.word_pos);
    Ok(())
}
