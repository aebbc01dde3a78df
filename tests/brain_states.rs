//! Brain states as an open set: a state written here is registered by name, runs in a TOML
//! schedule beside the built-in ones under its own conductor entry, and its losses reach the
//! run file; a run mixing user and built-in states, direct feedback alignment and SGD with
//! momentum resumes bit for bit.

use ndarray::Array2;
use padsim::experiment::runner::build_brain;
use padsim::experiment::{self, TrainOptions};
use padsim::kernels::loss;
use padsim::prelude::*;
use padsim::record::{Checkpoint, RunFile};
use std::path::{Path, PathBuf};

/// Replays the newest memory through G and teaches E to recognise it, with a settable weight.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Rehearsal {
    weight: f64,
}

impl Default for Rehearsal {
    fn default() -> Self {
        Rehearsal { weight: 1.0 }
    }
}

impl BrainState for Rehearsal {
    fn name(&self) -> &str {
        "rehearsal"
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["latent_error", "latent_norm"]
    }

    fn neuromodulation(&self) -> Neuromodulation {
        Neuromodulation::FEEDFORWARD_ONLY
    }

    fn run(&self, brain: &mut Brain, _x: &Activity, nm: &Neuromodulation) -> Losses {
        let z = brain.recall(&MemoryMix::CURRENT);
        brain.begin_state(nm);
        let image = brain.cortex.feedback.forward(z.view()).clone();
        let z_again = brain.cortex.feedforward.encode(&image);
        let (error, grad) = loss::mse(z_again.as_slice().unwrap(), z.as_slice().unwrap());
        let grad = Array2::from_shape_vec(z.raw_dim(), grad).unwrap() * self.weight as f32;
        if nm.feedforward_plastic {
            brain
                .cortex
                .feedforward
                .backward(Some(grad.view()), None, false);
        }
        brain.apply_plasticity(nm);
        let norm = z.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / z.len() as f64;
        vec![("latent_error", error), ("latent_norm", norm)]
    }
}

const CONFIG: &str = r#"
seed = 3
dataset = "synthetic"
epochs = 2
batch_size = 8
max_cycles_per_epoch = 3
threads = 1
[model]
nf = 4
nz = 8
[data.synthetic]
seed = 1
train_size = 64
test_size = 16
[record]
images_every = 0
[plasticity]
feedforward = "direct_feedback_alignment"
[optimiser.feedback]
kind = "sgd"
lr = 0.01
momentum = 0.9
[[schedule.phases]]
state = "wake"
[[schedule.phases]]
state = "rehearsal"
weight = 0.5
[[schedule.phases]]
state = "contrastive"
temperature = 0.2
[[schedule.phases]]
state = "rem"
"#;

fn config(out: &Path, epochs: usize) -> Config {
    register_state::<Rehearsal>();
    let mut config = Config::from_toml(CONFIG).unwrap();
    config.out_dir = out.to_path_buf();
    config.epochs = epochs;
    config
}

fn train(config: &Config, resume: bool) -> PathBuf {
    let options = TrainOptions {
        resume,
        progress: false,
    };
    experiment::train(config, options).unwrap().run_dir
}

fn checkpoint(run_dir: &Path) -> Checkpoint {
    Checkpoint::read(run_dir.join("checkpoint.h5")).unwrap()
}

#[test]
fn a_registered_user_state_runs_in_a_toml_schedule_and_its_losses_reach_the_run_file() {
    let root = tempfile::tempdir().unwrap();
    let config = config(root.path(), 2);
    let schedule = config.resolved_schedule();
    let names: Vec<&str> = schedule.phases.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["wake", "rehearsal", "contrastive", "rem"]);
    let rehearsal = schedule.phases[1].downcast_ref::<Rehearsal>().unwrap();
    assert_eq!(rehearsal.weight, 0.5);

    let run_dir = train(&config, false);
    let run = RunFile::open_read(run_dir.join("run.h5")).unwrap();
    for term in ["latent_error", "latent_norm"] {
        let values = run.read_losses("rehearsal", term).unwrap();
        assert_eq!(values.len(), 2, "{term}");
        assert!(
            values.iter().all(|v| v.is_finite() && *v > 0.0),
            "{term}: {values:?}"
        );
    }
    assert_eq!(
        run.attribute("optimiser").unwrap(),
        "feedforward=adam feedback=sgd unused_parameters=zero_gradient"
    );
    let contrastive = run.read_losses("contrastive", "info_nce").unwrap();
    assert!(contrastive.iter().all(|v| v.is_finite()));
    // The settings written into the run's configuration read back as the same schedule.
    let written = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    let again = Config::from_toml(&written).unwrap();
    assert_eq!(again.resolved_schedule(), schedule);
}

#[test]
fn the_conductor_is_keyed_by_state_name() {
    let root = tempfile::tempdir().unwrap();
    let mut config = config(root.path(), 1);
    let mut brain = build_brain(&config).unwrap();
    // No entry: the state's own neuromodulation.
    let state = Rehearsal::default();
    assert_eq!(brain.conductor.for_state(&state), state.neuromodulation());

    // An entry freezing E: a rehearsal phase then leaves E's synapses as they were.
    let frozen = "[conductor.rehearsal]\nfeedforward_plastic = false\nfeedback_plastic = false\nfeedback_sign = 1.0\n";
    let text = format!("{CONFIG}{frozen}");
    config = Config::from_toml(&text).unwrap();
    assert!(
        !config
            .conductor
            .get("rehearsal")
            .unwrap()
            .feedforward_plastic
    );
    brain = build_brain(&config).unwrap();
    let set =
        padsim::data::synthetic::generate_split(0, padsim::data::synthetic::SplitTag::Train, 8);
    let x = Activity::from_nchw(set.batch_f32(&(0..8).collect::<Vec<_>>()).view());
    let wake = Phase::wake();
    let nm = brain.conductor.for_state(wake.state());
    wake.state().run(&mut brain, &x, &nm);
    let before: Vec<_> = brain
        .cortex
        .parameters()
        .iter()
        .map(|p| p.value.clone())
        .collect();
    let phase = &config.resolved_schedule().phases[1];
    let nm = brain.conductor.for_state(phase.state());
    let losses = phase.state().run(&mut brain, &x, &nm);
    assert_eq!(losses.len(), 2);
    let after: Vec<_> = brain
        .cortex
        .parameters()
        .iter()
        .map(|p| p.value.clone())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn unknown_states_and_settings_are_named() {
    let err = Config::from_toml("[[schedule.phases]]\nstate = \"daydream\"\n").unwrap_err();
    assert!(err.contains("daydream") && err.contains("wake"), "{err}");
    register_state::<Rehearsal>();
    let err = Config::from_toml("[[schedule.phases]]\nstate = \"rehearsal\"\nwieght = 2.0\n")
        .unwrap_err();
    assert!(err.contains("rehearsal") && err.contains("wieght"), "{err}");
}

#[test]
fn user_states_rules_and_momentum_resume_bit_for_bit() {
    let root = tempfile::tempdir().unwrap();
    let reference = train(&config(&root.path().join("reference"), 2), false);
    let expected = checkpoint(&reference);

    let out = root.path().join("resumed");
    let resumed = train(&config(&out, 1), false);
    assert_eq!(checkpoint(&resumed).epoch, 1);
    train(&config(&out, 2), true);
    let actual = checkpoint(&resumed);
    assert_eq!(actual.epoch, 2);

    let bits = |arrays: &[(String, ndarray::ArrayD<f32>)]| -> Vec<(String, Vec<u32>)> {
        arrays
            .iter()
            .map(|(n, a)| (n.clone(), a.iter().map(|v| v.to_bits()).collect()))
            .collect()
    };
    assert_eq!(bits(&actual.parameters), bits(&expected.parameters));
    // DFA's fixed matrices, one per trunk area, kept in the checkpoint.
    let extra: Vec<&str> = expected.extra.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        extra,
        ["E.conv1", "E.conv2", "E.conv3"].map(|a| format!("direct_feedback_alignment:{a}"))
    );
    assert_eq!(bits(&actual.extra), bits(&expected.extra));
    // SGD's momentum buffers for G, Adam's moments for E.
    assert_eq!(actual.optimisers, expected.optimisers);
    let feedback = expected
        .optimisers
        .iter()
        .find(|o| o.name == "feedback")
        .unwrap();
    assert!(feedback
        .tensors
        .iter()
        .all(|(_, _, buffers)| buffers.len() == 1 && buffers[0].0 == "momentum_buffer"));
    assert_eq!(actual.memories, expected.memories);

    let losses = |dir: &Path| {
        let run = RunFile::open_read(dir.join("run.h5")).unwrap();
        run.read_losses("rehearsal", "latent_error").unwrap()
    };
    assert_eq!(losses(&resumed), losses(&reference));
}

/// Every parameter's and optimiser state's bits.
fn state_bits(brain: &Brain) -> Vec<u32> {
    let mut bits: Vec<u32> = Vec::new();
    for p in brain.cortex.parameters() {
        bits.extend(p.value.iter().map(|v| v.to_bits()));
    }
    for opt in [&brain.feedforward_optimiser, &brain.feedback_optimiser] {
        for t in opt.tensors() {
            bits.push(t.step as u32);
            for (_, b) in &t.buffers {
                bits.extend(b.iter().map(|v| v.to_bits()));
            }
        }
    }
    bits
}

#[test]
fn built_in_states_through_the_trait_equal_the_phase_methods_the_golden_tests_check() {
    // tests/golden_phases.rs checks Brain::wake, ::nrem and ::rem against PyTorch; here the
    // Wake, Nrem and Rem states, run through BrainState::run as a schedule runs them, give the
    // same bits when the phase methods get the replay, mask and noise the states draw.
    use padsim::brain::{Nrem, Rem, Wake};
    use padsim::data::occlusion::nrem_mask;
    let arch = Architecture::pad(4, 8);
    let mut by_trait = Brain::new(
        &arch,
        Condition::FullPad.schedule(),
        AdamConfig::default(),
        2,
    );
    let mut by_method = by_trait.clone();
    let set =
        padsim::data::synthetic::generate_split(4, padsim::data::synthetic::SplitTag::Train, 16);
    for cycle in 0..2 {
        let idx: Vec<usize> = (8 * cycle..8 * (cycle + 1)).collect();
        let x = Activity::from_nchw(set.batch_f32(&idx).view());

        let wake = Wake::default();
        let nm = by_trait.conductor.for_state(&wake);
        let losses = wake.run(&mut by_trait, &x, &nm);
        let out = by_method.wake(1.0, 1.0, true, &x, None);
        assert_eq!(losses, out.losses);
        assert_eq!(
            state_bits(&by_trait),
            state_bits(&by_method),
            "wake, cycle {cycle}"
        );

        let nrem = Nrem::default();
        let nm = by_trait.conductor.for_state(&nrem);
        let losses = nrem.run(&mut by_trait, &x, &nm);
        let z = by_method.recall(&nrem.recall);
        let mask = nrem_mask(x.height(), &mut by_method.rng);
        let out = by_method.nrem(1.0, z.view(), Some(mask.view()));
        assert_eq!(losses, out.losses);
        assert_eq!(
            state_bits(&by_trait),
            state_bits(&by_method),
            "nrem, cycle {cycle}"
        );

        let rem = Rem::default();
        let nm = by_trait.conductor.for_state(&rem);
        let losses = rem.run(&mut by_trait, &x, &nm);
        let z_mix = by_method.recall(&rem.dream);
        let out = by_method.rem(1.0, z_mix.view());
        assert_eq!(losses, out.losses);
        assert_eq!(
            state_bits(&by_trait),
            state_bits(&by_method),
            "rem, cycle {cycle}"
        );
    }
}

#[test]
fn a_rem_conductor_entry_without_a_discriminator_target_is_refused_before_training() {
    let text = "[conductor.rem]\nfeedforward_plastic = true\nfeedback_plastic = true\nfeedback_sign = -1.0\n";
    let config = Config::from_toml(text).unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("conductor.rem") && err.contains("discriminator"),
        "{err}"
    );
    let ok = format!("{text}discriminator = \"internal\"\n");
    Config::from_toml(&ok).unwrap().validate().unwrap();
}
