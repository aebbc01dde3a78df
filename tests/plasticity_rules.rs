//! Plasticity rules beyond exact backprop: feedback alignment and sign-symmetry route the error
//! where backprop would use `Wᵀ`, and only there; feedback alignment's fixed `B` survives
//! training and checkpoint/resume; configurations choose rules per pathway and per area.
//!
//! Tiny widths (nf 4, nz 8) and the built-in synthetic images keep every test fast.

use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};
use padsim::brain::schedule::Condition;
use padsim::brain::Brain;
use padsim::cortex::{Activity, Architecture};
use padsim::data::synthetic::{generate_split, SplitTag};
use padsim::experiment::runner::build_brain;
use padsim::experiment::{self, Config, ConfigError, TrainError, TrainOptions};
use padsim::plasticity::{
    AdamConfig, FeedbackAlignment, PlasticityConfig, PlasticityRule, RuleKind, SignSymmetry,
};
use padsim::record::{Checkpoint, RunFile};
use std::path::{Path, PathBuf};

fn architecture() -> Architecture {
    Architecture::pad(4, 8)
}

fn brain_with(adam: AdamConfig) -> Brain {
    Brain::new(&architecture(), Condition::FullPad.schedule(), adam, 7)
}

fn brain() -> Brain {
    brain_with(AdamConfig::default())
}

/// Eight synthetic images as a `[C, N, 32, 32]` activity.
fn images(seed: u64) -> Activity {
    let set = generate_split(seed, SplitTag::Train, 8);
    Activity::from_nchw(set.batch_f32(&(0..8).collect::<Vec<_>>()).view())
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

/// The wake losses that drive a test's gradients (reconstruction always).
#[derive(Clone, Copy)]
struct WakeLosses {
    kl: bool,
    discriminator: bool,
}

/// PAD's wake: reconstruction, KL and the discriminator's BCE.
const PAD_WAKE: WakeLosses = WakeLosses {
    kl: true,
    discriminator: true,
};

/// Reconstruction alone. At initialisation (at these widths at least) the error G sends back
/// to z is below the rounding unit of the KL gradient it is added to, and tiny beside the
/// discriminator's error at V4, so under PAD's wake how G routes its error hardly reaches E's
/// gradients.
const RECONSTRUCTION_ONLY: WakeLosses = WakeLosses {
    kl: false,
    discriminator: false,
};

/// One wake phase, then every parameter's gradient (`None`: the parameter had none).
fn wake_gradients(
    brain: &mut Brain,
    x: &Activity,
    losses: WakeLosses,
) -> Vec<(String, Option<ArrayD<f32>>)> {
    let kl_weight = if losses.kl { 1.0 } else { 0.0 };
    brain.wake(1.0, kl_weight, losses.discriminator, x, None);
    brain
        .cortex
        .parameters()
        .into_iter()
        .map(|p| (p.name.clone(), p.grad.clone()))
        .collect()
}

fn optional_bits(a: &Option<ArrayD<f32>>) -> Option<Vec<u32>> {
    a.as_ref().map(bits)
}

/// ‖a − b‖ / ‖b‖.
fn relative_difference(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f64 {
    let norm = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v * v).sum::<f64>().sqrt();
    norm(&mut a.iter().zip(b).map(|(&x, &y)| f64::from(x - y)))
        / norm(&mut b.iter().map(|&y| f64::from(y)))
}

#[test]
fn feedback_alignment_with_b_equal_to_w_is_exact_backprop() {
    let x = images(1);
    let mut reference = brain();
    let mut aligned = reference.clone();
    for area in aligned.cortex.areas_mut() {
        area.rule = Box::new(FeedbackAlignment {
            feedback: area.weight.value.clone(),
        });
    }
    let expected = wake_gradients(&mut reference, &x, PAD_WAKE);
    let actual = wake_gradients(&mut aligned, &x, PAD_WAKE);
    assert_eq!(expected.len(), 18);
    for ((name, e), (_, a)) in expected.iter().zip(&actual) {
        assert!(e.is_some(), "{name} has a gradient");
        assert_eq!(optional_bits(a), optional_bits(e), "{name}");
    }
    for (p, q) in reference
        .cortex
        .parameters()
        .iter()
        .zip(aligned.cortex.parameters())
    {
        assert_eq!(
            bits(&q.value),
            bits(&p.value),
            "{} after the Adam step",
            p.name
        );
    }
}

/// `mean|W| · sign(W)` computed here from its definition, with sign(0) = 0.
fn scaled_signs(w: &ArrayD<f32>) -> ArrayD<f32> {
    let scale = (w.iter().map(|v| f64::from(v.abs())).sum::<f64>() / w.len() as f64) as f32;
    w.mapv(|v| match v.partial_cmp(&0.0) {
        Some(std::cmp::Ordering::Greater) => scale,
        Some(std::cmp::Ordering::Less) => -scale,
        _ => 0.0,
    })
}

#[test]
fn sign_symmetry_feedback_is_the_scaled_sign_of_w_and_follows_it() {
    // A large learning rate: Adam's first step moves every weight by about lr = 0.05, more
    // than the init std 0.02, so many weights change sign.
    let mut brain = brain_with(AdamConfig {
        lr: 0.05,
        ..AdamConfig::default()
    });
    for area in brain.cortex.areas_mut() {
        area.rule = Box::new(SignSymmetry);
    }
    let signs = |brain: &Brain| -> Vec<Vec<f32>> {
        brain
            .cortex
            .areas()
            .iter()
            .map(|a| a.weight.value.iter().map(|w| w.signum()).collect())
            .collect()
    };
    let check = |brain: &Brain| {
        for area in brain.cortex.areas() {
            let w = &area.weight.value;
            let f = area.rule.feedback(w.view()).into_owned();
            assert_eq!(bits(&f), bits(&scaled_signs(w)), "{}", area.full_name);
            let scale = SignSymmetry::scale(w.view());
            assert!(f.iter().all(|v| v.abs() == scale || *v == 0.0));
        }
    };
    check(&brain);
    let before = signs(&brain);
    brain.cycle(&images(2));
    let after = signs(&brain);
    let flipped: usize = before
        .iter()
        .zip(&after)
        .map(|(b, a)| b.iter().zip(a).filter(|(x, y)| x != y).count())
        .sum();
    assert!(flipped > 100, "only {flipped} weights changed sign");
    check(&brain);
}

fn install(brain: &mut Brain, plasticity: &PlasticityConfig) {
    plasticity.install(&mut brain.cortex, 7).unwrap();
}

#[test]
fn feedback_alignment_keeps_b_fixed_while_w_learns() {
    let mut brain = brain();
    install(
        &mut brain,
        &PlasticityConfig {
            feedforward: RuleKind::FeedbackAlignment,
            feedback: RuleKind::FeedbackAlignment,
            ..PlasticityConfig::default()
        },
    );
    let snapshot = |brain: &Brain| -> Vec<(ArrayD<f32>, ArrayD<f32>)> {
        brain
            .cortex
            .areas()
            .iter()
            .map(|a| (a.rule.state().expect("B").clone(), a.weight.value.clone()))
            .collect()
    };
    let before = snapshot(&brain);
    for seed in 0..3 {
        brain.cycle(&images(seed));
    }
    for ((b0, w0), (b1, w1)) in before.iter().zip(snapshot(&brain)) {
        assert_eq!(bits(b0), bits(&b1));
        assert_ne!(bits(w0), bits(&w1));
    }
}

/// A parameter's name, its gradient under the rule tested, and under exact backprop.
type Comparison = (String, Option<ArrayD<f32>>, Option<ArrayD<f32>>);

/// Wake gradients with `plasticity` installed, and with exact backprop, from the same weights.
fn gradients_against_backprop(
    plasticity: &PlasticityConfig,
    losses: WakeLosses,
) -> Vec<Comparison> {
    let x = images(3);
    let mut exact = brain();
    let mut other = exact.clone();
    install(&mut other, plasticity);
    wake_gradients(&mut other, &x, losses)
        .into_iter()
        .zip(wake_gradients(&mut exact, &x, losses))
        .map(|((name, g), (_, e))| (name, g, e))
        .collect()
}

/// Asserts that the gradients of the areas in `unchanged` equal backprop's bit for bit (or
/// are absent under both) and that the others differ materially.
fn assert_changed_exactly(gradients: &[Comparison], unchanged: &[&str]) {
    for (name, g, e) in gradients {
        let area = name.rsplit_once('.').unwrap().0;
        if unchanged.contains(&area) {
            assert_eq!(
                optional_bits(g),
                optional_bits(e),
                "{name} should equal backprop's"
            );
        } else {
            let (g, e) = (g.as_ref().unwrap(), e.as_ref().unwrap());
            let d = relative_difference(g, e);
            assert!(
                d > 1e-2,
                "{name} should differ from backprop's (relative {d:e})"
            );
        }
    }
}

#[test]
fn rules_change_gradients_only_below_the_loss() {
    for rule in [RuleKind::FeedbackAlignment, RuleKind::SignSymmetry] {
        // In E, IT and the discriminator receive their losses directly: their own gradients
        // are local. V1–V4 get errors routed through the heads' feedback synapses. G, whose
        // backward runs before E's, is untouched.
        let e_only = PlasticityConfig {
            feedforward: rule,
            ..PlasticityConfig::default()
        };
        assert_changed_exactly(
            &gradients_against_backprop(&e_only, PAD_WAKE),
            &[
                "E.latent", "E.dis", "G.tconv1", "G.tconv2", "G.tconv3", "G.tconv4",
            ],
        );
        // In G, only tconv4 receives the reconstruction loss directly. The latent error
        // G sends to E passes tconv1's feedback synapses, so E changes too (the
        // discriminator, without its loss here, has no gradient either way).
        let g_only = PlasticityConfig {
            feedback: rule,
            ..PlasticityConfig::default()
        };
        assert_changed_exactly(
            &gradients_against_backprop(&g_only, RECONSTRUCTION_ONLY),
            &["G.tconv4", "E.dis"],
        );
    }
}

#[test]
fn a_single_area_override_changes_only_the_areas_below_it() {
    // Feedback alignment at V2 alone: V2's error reaches V1 through B, so only V1 changes.
    let conv2 = PlasticityConfig {
        areas: [("E.conv2".to_string(), RuleKind::FeedbackAlignment)].into(),
        ..PlasticityConfig::default()
    };
    let gradients = gradients_against_backprop(&conv2, PAD_WAKE);
    let unchanged: Vec<&str> = gradients
        .iter()
        .map(|(name, _, _)| name.rsplit_once('.').unwrap().0)
        .filter(|area| *area != "E.conv1")
        .collect();
    assert_changed_exactly(&gradients, &unchanged);
}

const CONFIG: &str = r#"
seed = 5
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
feedforward = "feedback_alignment"
feedback = "sign_symmetry"
areas = { "E.dis" = "exact_backprop", "G.tconv2" = "feedback_alignment" }
"#;

fn config(out: &Path, epochs: usize) -> Config {
    Config {
        out_dir: out.to_path_buf(),
        epochs,
        ..Config::from_toml(CONFIG).unwrap()
    }
}

fn train(config: &Config, resume: bool) -> Result<PathBuf, TrainError> {
    let options = TrainOptions {
        resume,
        progress: false,
    };
    experiment::train(config, options).map(|summary| summary.run_dir)
}

fn checkpoint(run_dir: &Path) -> Checkpoint {
    Checkpoint::read(run_dir.join("checkpoint.h5")).unwrap()
}

fn named_bits(arrays: &[(String, ArrayD<f32>)]) -> Vec<(String, Vec<u32>)> {
    arrays.iter().map(|(n, a)| (n.clone(), bits(a))).collect()
}

fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn feedback_alignment_survives_checkpoint_and_resume() {
    let root = tempfile::tempdir().unwrap();
    let reference = train(&config(&root.path().join("reference"), 2), false).unwrap();
    let expected = checkpoint(&reference);
    let fa_areas = ["E.conv1", "E.conv2", "E.conv3", "E.latent", "G.tconv2"];
    let names: Vec<String> = expected.extra.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        names,
        fa_areas.map(|a| format!("feedback_alignment:{a}")).to_vec()
    );
    // B is what the configuration drew: the stream (seed, "feedback_alignment/<area>").
    let mut fresh = build_brain(&config(root.path(), 2)).unwrap();
    for (area, (_, b)) in fa_areas.iter().zip(&expected.extra) {
        let rule = &fresh
            .cortex
            .areas_mut()
            .into_iter()
            .find(|a| a.full_name == *area)
            .unwrap()
            .rule;
        assert_eq!(bits(rule.state().unwrap()), bits(b), "{area}");
    }
    assert_eq!(
        RunFile::open_read(reference.join("run.h5"))
            .unwrap()
            .attribute("plasticity")
            .unwrap(),
        "feedforward=feedback_alignment feedback=sign_symmetry E.dis=exact_backprop G.tconv2=feedback_alignment"
    );

    // One epoch, then resume to two: bit-identical to the uninterrupted run.
    let out = root.path().join("resumed");
    let resumed = train(&config(&out, 1), false).unwrap();
    let spare = root.path().join("spare");
    copy_run(&resumed, &spare);
    train(&config(&out, 2), true).unwrap();
    let actual = checkpoint(&resumed);
    assert_eq!(actual.epoch, 2);
    assert_eq!(named_bits(&actual.extra), named_bits(&expected.extra));
    assert_eq!(
        named_bits(&actual.parameters),
        named_bits(&expected.parameters)
    );
    assert_eq!(actual.optimisers, expected.optimisers);

    // B comes from the checkpoint, not from a fresh draw: a changed B is carried on.
    let mut tampered = checkpoint(&spare);
    let (_, b) = tampered
        .extra
        .iter_mut()
        .find(|(n, _)| n == "feedback_alignment:E.conv2")
        .unwrap();
    b.mapv_inplace(|v| -v);
    let negated = b.clone();
    restart_from(&spare, &resumed, &tampered);
    train(&config(&out, 2), true).unwrap();
    let after = checkpoint(&resumed);
    let (_, b) = after
        .extra
        .iter()
        .find(|(n, _)| n == "feedback_alignment:E.conv2")
        .unwrap();
    assert_eq!(bits(b), bits(&negated));
    assert_ne!(
        named_bits(&after.parameters),
        named_bits(&expected.parameters)
    );

    // A checkpoint without a rule's state cannot be resumed.
    let mut missing = checkpoint(&spare);
    missing
        .extra
        .retain(|(n, _)| n != "feedback_alignment:G.tconv2");
    restart_from(&spare, &resumed, &missing);
    let err = train(&config(&out, 2), true).unwrap_err();
    assert!(
        matches!(&err, TrainError::Resume { reason, .. } if reason.contains("feedback_alignment:G.tconv2")),
        "{err}"
    );
}

/// Puts the run saved in `spare` back into `run_dir`, with `checkpoint` as its checkpoint.
fn restart_from(spare: &Path, run_dir: &Path, checkpoint: &Checkpoint) {
    std::fs::remove_dir_all(run_dir).unwrap();
    copy_run(spare, run_dir);
    checkpoint
        .write_atomic(run_dir.join("checkpoint.h5"))
        .unwrap();
}

#[test]
fn configurations_install_the_named_rules() {
    let root = tempfile::tempdir().unwrap();
    let mut brain = build_brain(&config(root.path(), 1)).unwrap();
    let rules: Vec<(String, String)> = brain
        .cortex
        .areas_mut()
        .into_iter()
        .map(|a| (a.full_name.clone(), a.rule.name().to_string()))
        .collect();
    let expected = [
        ("E.conv1", "feedback_alignment"),
        ("E.conv2", "feedback_alignment"),
        ("E.conv3", "feedback_alignment"),
        ("E.latent", "feedback_alignment"),
        ("E.dis", "exact_backprop"),
        ("G.tconv1", "sign_symmetry"),
        ("G.tconv2", "feedback_alignment"),
        ("G.tconv3", "sign_symmetry"),
        ("G.tconv4", "sign_symmetry"),
    ]
    .map(|(a, r)| (a.to_string(), r.to_string()));
    assert_eq!(rules, expected);

    let default = build_brain(&Config::default()).unwrap();
    assert!(default
        .cortex
        .areas()
        .iter()
        .all(|a| a.rule.name() == "exact_backprop"));
}

#[test]
fn unknown_area_names_are_configuration_errors() {
    let root = tempfile::tempdir().unwrap();
    let mut bad = config(root.path(), 1);
    bad.plasticity
        .areas
        .insert("E.conv4".into(), RuleKind::SignSymmetry);
    let err = build_brain(&bad).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("'E.conv4'"), "{err}");
    // Training refuses before writing anything.
    let err = train(&bad, false).unwrap_err();
    assert!(err.to_string().contains("'E.conv4'"), "{err}");
    assert!(!bad.run_dir().exists());

    let err = Config::from_toml("[plasticity]\nareas = { \"E.conv1\" = \"hebbian\" }").unwrap_err();
    assert!(err.contains("hebbian"), "{err}");
}

/// A rule defined outside the crate plugs into an area like the built-in ones.
#[derive(Clone, Debug)]
struct HalfTranspose;

impl PlasticityRule for HalfTranspose {
    fn name(&self) -> &str {
        "half_transpose"
    }
    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        CowArray::from(weight.mapv(|w| 0.5 * w))
    }
    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(self.clone())
    }
}

#[test]
fn a_user_rule_routes_the_error_and_has_no_state_to_checkpoint() {
    // Halving F at IT halves the reconstruction and KL error IT sends down to V4, so V4 and
    // below change while IT's own gradient does not.
    let x = images(4);
    let mut exact = brain();
    let mut halved = exact.clone();
    halved.cortex.feedforward.latent.rule = Box::new(HalfTranspose);
    let expected = wake_gradients(&mut exact, &x, PAD_WAKE);
    let actual = wake_gradients(&mut halved, &x, PAD_WAKE);
    for ((name, e), (_, a)) in expected.iter().zip(&actual) {
        let same = optional_bits(a) == optional_bits(e);
        let below_it = name.starts_with("E.conv");
        assert_eq!(same, !below_it, "{name}");
    }
    assert!(HalfTranspose.state().is_none());
    assert!(HalfTranspose
        .clone()
        .restore(ArrayD::zeros(IxDyn(&[1])))
        .is_err());
}
