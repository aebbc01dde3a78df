//! Each condition's schedule: which states run in which order, which losses act, and which
//! pathways (and which of E's heads) learn in each state.

use ndarray::Array4;
use padsim::brain::Brain;
use padsim::brain::{Condition, MemoryMix, Nrem, Phase, Rem, Schedule, Wake};
use padsim::cortex::{Activity, Architecture};
use padsim::plasticity::{AdamConfig, Optimisers, UnusedParameters};
use std::collections::BTreeMap;

fn tiny() -> Architecture {
    Architecture::pad(4, 8)
}

fn batch(seed: u64) -> Activity {
    let x = Array4::from_shape_fn((6, 3, 32, 32), |(n, c, h, w)| {
        (((n * 131 + c * 71 + h * 13 + w * 7) as u64 ^ seed) % 255) as f32 / 127.5 - 1.0
    });
    Activity::from_nchw(x.view())
}

fn snapshot(brain: &Brain) -> BTreeMap<String, ndarray::ArrayD<f32>> {
    brain
        .cortex
        .parameters()
        .into_iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect()
}

/// Names of the parameters that changed between two snapshots.
fn moved(before: &BTreeMap<String, ndarray::ArrayD<f32>>, brain: &Brain) -> Vec<String> {
    snapshot(brain)
        .into_iter()
        .filter(|(k, v)| before[k] != *v)
        .map(|(k, _)| k)
        .collect()
}

/// Sorted names of the parameters of one pathway, leaving out areas named in `except`.
fn all_of(brain: &Brain, prefix: &str, except: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = brain
        .cortex
        .parameters()
        .into_iter()
        .map(|p| p.name.clone())
        .filter(|n| n.starts_with(prefix) && !except.iter().any(|e| n.contains(e)))
        .collect();
    names.sort();
    names
}

/// Wake, NREM, REM and a wake without discriminator, each checked for the parameters it moves.
/// `skip`: parameters without gradient in a phase stay put (PyTorch 2); otherwise those
/// stepped before move by their momentum (PyTorch 1.x, the reference's runs).
fn states_train_the_pathways_the_conductor_names(unused: UnusedParameters) {
    let skip = unused == UnusedParameters::Skip;
    let optimisers = Optimisers {
        unused_parameters: unused,
        ..Optimisers::default()
    };
    let mut brain = Brain::new(&tiny(), Condition::FullPad.schedule(), optimisers, 1);
    let x = batch(1);

    let before = snapshot(&brain);
    let wake = brain.wake(1.0, 1.0, true, &x, None);
    let mut expect: Vec<String> = all_of(&brain, "E.", &[]);
    expect.extend(all_of(&brain, "G.", &[]));
    assert_eq!(moved(&before, &brain), expect, "wake trains all of E and G");
    assert!(
        wake.losses.iter().all(|(_, v)| v.is_finite() && *v > 0.0),
        "{:?}",
        wake.losses
    );

    let before = snapshot(&brain);
    let z = brain.hippocampus.newest().unwrap().clone();
    brain.nrem(1.0, z.view(), None);
    let unused: &[&str] = if skip { &["dis"] } else { &[] };
    assert_eq!(
        moved(&before, &brain),
        all_of(&brain, "E.", unused),
        "NREM trains E (its discriminator by momentum alone unless skipped), not G"
    );

    let before = snapshot(&brain);
    brain.rem(1.0, z.view());
    let unused: &[&str] = if skip { &["latent"] } else { &[] };
    let mut expect = all_of(&brain, "E.", unused);
    expect.extend(all_of(&brain, "G.", &[]));
    assert_eq!(
        moved(&before, &brain),
        expect,
        "REM trains E (its latent head by momentum alone unless skipped), and G"
    );

    let before = snapshot(&brain);
    let wake = brain.wake(1.0, 1.0, false, &x, None);
    assert_eq!(
        wake.losses
            .iter()
            .find(|(n, _)| *n == "external")
            .unwrap()
            .1,
        0.0
    );
    let unused: &[&str] = if skip { &["dis"] } else { &[] };
    let mut expect = all_of(&brain, "E.", unused);
    expect.extend(all_of(&brain, "G.", &[]));
    assert_eq!(
        moved(&before, &brain),
        expect,
        "wake without discriminator leaves E.dis alone unless it has momentum"
    );
}

#[test]
fn each_state_trains_exactly_the_pathways_the_conductor_names() {
    states_train_the_pathways_the_conductor_names(UnusedParameters::Skip);
}

#[test]
fn with_zero_gradients_parameters_stepped_before_move_by_their_momentum() {
    states_train_the_pathways_the_conductor_names(UnusedParameters::ZeroGradient);
}

#[test]
fn a_parameter_that_never_had_a_gradient_is_never_stepped() {
    // Wake without discriminator from the start (no REM, wake only): E.dis has no gradient
    // in any phase, so even zero_gradient leaves it and its optimiser state alone.
    let mut brain = Brain::new(
        &tiny(),
        Condition::NoRem.schedule(),
        Optimisers::default(),
        2,
    );
    let before = snapshot(&brain);
    for seed in 0..3 {
        brain.cycle(&batch(seed));
    }
    assert!(!moved(&before, &brain)
        .iter()
        .any(|n| n.starts_with("E.dis")));
    assert!(!brain.feedforward_optimiser.has_stepped("E.dis.weight"));
}

#[test]
fn rem_moves_the_generator_against_the_discriminator() {
    // G ascends BCE(d, 0): after a REM step with E frozen, dreams look *more* external.
    let mut brain = Brain::new(
        &tiny(),
        Condition::FullPad.schedule(),
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
        2,
    );
    brain.conductor.entry(&Rem::default()).feedforward_plastic = false;
    brain.wake(1.0, 1.0, true, &batch(2), None);
    let z = brain.hippocampus.newest().unwrap().clone();
    let first = brain.rem(1.0, z.view());
    let mut last = first.clone();
    for _ in 0..20 {
        last = brain.rem(1.0, z.view());
    }
    let mean = |d: &ndarray::Array1<f32>| d.mean().unwrap();
    assert!(
        mean(&last.d) > mean(&first.d),
        "d on dreams went from {} to {}",
        mean(&first.d),
        mean(&last.d)
    );
}

#[test]
fn every_condition_runs_its_states_in_order_with_finite_losses() {
    for condition in Condition::ALL {
        let schedule = condition.schedule();
        let expected: Vec<String> = schedule
            .phases
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        let mut brain = Brain::new(&tiny(), schedule, AdamConfig::default(), 3);
        for cycle in 0..2 {
            let losses = brain.cycle(&batch(cycle));
            let states: Vec<String> = losses.iter().map(|(s, _)| s.clone()).collect();
            assert_eq!(states, expected, "{condition}");
            for (state, terms) in &losses {
                assert!(
                    terms.iter().all(|(_, v)| v.is_finite()),
                    "{condition} {state}: {terms:?}"
                );
            }
        }
    }
}

#[test]
fn presets_encode_the_papers_conditions() {
    use Condition::*;
    let states = |c: Condition| {
        c.schedule()
            .phases
            .iter()
            .map(|p| p.name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(states(FullPad), ["wake", "nrem", "rem"]);
    assert_eq!(states(NoNrem), ["wake", "rem"]);
    assert_eq!(states(NoRem), ["wake", "nrem"]);
    assert_eq!(states(WakeOnly), ["wake"]);
    assert_eq!(states(ReversedSleep), ["wake", "rem", "nrem"]);
    assert_eq!(states(ContrastiveNrem), ["wake", "contrastive", "rem"]);
    let no_rem = NoRem.schedule();
    let wake = no_rem.phases[0].downcast_ref::<Wake>().unwrap();
    assert!(!wake.discriminator);
    assert!(wake.latent_noise > 0.0);
    assert_eq!(no_rem.phases[1].downcast_ref::<Nrem>().unwrap().weight, 0.5);
    // "for models without the REM phase": no REM and Wake only both perturb the wake latent.
    let wake_only = WakeOnly.schedule();
    let wake = wake_only.phases[0].downcast_ref::<Wake>().unwrap();
    assert!(!wake.discriminator);
    assert_eq!(
        wake.latent_noise,
        no_rem.phases[0]
            .downcast_ref::<Wake>()
            .unwrap()
            .latent_noise
    );
    let rem_mix = |c: Condition| {
        c.schedule()
            .phases
            .iter()
            .find_map(|p| p.downcast_ref::<Rem>().map(|r| r.dream))
            .unwrap()
    };
    assert_eq!(rem_mix(FullPad), MemoryMix::PAD_REM);
    assert_eq!(rem_mix(NoMemoryMix), MemoryMix::CURRENT);
    assert_eq!(rem_mix(RemNoiseOnly), MemoryMix::NOISE);
    assert_eq!(rem_mix(RemMemoriesOnly), MemoryMix::MEMORIES);
    let mixed = NremMixedMemories.schedule();
    // "a convex combination of mixed memories and spontaneous cortical activity"
    assert_eq!(
        mixed.phases[1].downcast_ref::<Nrem>().unwrap().recall,
        MemoryMix::PAD_REM
    );
}

#[test]
fn no_rem_perturbs_the_wake_latent_before_the_generator() {
    // Same weights, same batch: with ε > 0 the reconstruction differs from the clean one.
    let x = batch(4);
    let run = |condition: Condition| {
        let mut brain = Brain::new(&tiny(), condition.schedule(), AdamConfig::default(), 4);
        brain.cycle(&x)[0]
            .1
            .iter()
            .find(|(n, _)| *n == "reconstruction")
            .unwrap()
            .1
    };
    assert_ne!(run(Condition::NoRem), run(Condition::FullPad));
    assert_ne!(run(Condition::WakeOnly), run(Condition::NoNrem));
}

#[test]
fn noise_only_dreams_ignore_memories() {
    let mut brain = Brain::new(
        &tiny(),
        Schedule {
            phases: vec![Phase::wake()],
        },
        AdamConfig::default(),
        5,
    );
    brain.cycle(&batch(5));
    let mut other = brain.clone();
    other
        .hippocampus
        .store(ndarray::Array2::from_elem((6, 8), 100.0));
    assert_eq!(
        brain.recall(&MemoryMix::NOISE),
        other.recall(&MemoryMix::NOISE)
    );
    assert_ne!(
        brain.clone().recall(&MemoryMix::MEMORIES),
        other.clone().recall(&MemoryMix::MEMORIES)
    );
}

#[test]
fn same_bits_with_one_and_two_threads() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let arch = Architecture::pad(16, 32);
            let mut brain = Brain::new(
                &arch,
                Condition::FullPad.schedule(),
                AdamConfig::default(),
                6,
            );
            for cycle in 0..3 {
                brain.cycle(&batch(cycle));
            }
            snapshot(&brain)
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn forgetting_memories_each_epoch_changes_only_the_epochs_after_the_first() {
    // The reference's quirk: its z_prev restarts with each epoch, so the first REM dream of an
    // epoch is 0.5 z + 0.5 n again. Epoch 1 is the same either way; epoch 2 is not.
    let root = tempfile::tempdir().unwrap();
    let run = |forget: bool| {
        let text = format!(
            "dataset = \"synthetic\"\nepochs = 2\nbatch_size = 8\nmax_cycles_per_epoch = 2\nthreads = 1\n\
             run_name = \"forget_{forget}\"\n[model]\nnf = 4\nnz = 8\n\
             [data.synthetic]\ntrain_size = 32\ntest_size = 8\n[record]\nimages_every = 0\n\
             [hippocampus]\nforget_each_epoch = {forget}\n"
        );
        let mut config = padsim::experiment::Config::from_toml(&text).unwrap();
        config.out_dir = root.path().to_path_buf();
        let options = padsim::experiment::TrainOptions {
            resume: false,
            progress: false,
        };
        let dir = padsim::experiment::train(&config, options).unwrap().run_dir;
        let file = padsim::record::RunFile::open_read(dir.join("run.h5")).unwrap();
        let losses = file.read_losses("rem", "internal").unwrap();
        let checkpoint = padsim::record::Checkpoint::read(dir.join("checkpoint.h5")).unwrap();
        (losses, checkpoint.parameters)
    };
    let ((kept, kept_params), (forgotten, forgotten_params)) = (run(false), run(true));
    assert_eq!(kept[0], forgotten[0], "epoch 1 is the same");
    assert_ne!(kept_params, forgotten_params, "epoch 2 dreamt differently");
}
