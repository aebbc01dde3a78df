//! Wake, NREM and REM against PyTorch autograd (`pad_cycle_small`, nf 8, nz 16, B 4), and the
//! same against `pad_cycle_small_zero_grad`, made with `zero_grad(set_to_none=False)` as the
//! reference ran under PyTorch 1.x (padsim's `unused_parameters = "zero_gradient"`: NREM's E.dis
//! and REM's E.latent take an Adam step with a zero gradient).
//!
//! Each phase of two cycles runs in isolation from the golden state it started from, with
//! the recorded inputs, and must match the recorded losses, activations and gradients within
//! the manifest's per-tensor tolerances, and have no gradient exactly where PyTorch had none.
//! Then both cycles run end to end from init with padsim's own gradients (loose tolerances:
//! rounding differences compound across phases, see tests/data/golden/README.md).

mod common;

use common::*;
use ndarray::{Array2, ArrayD, Ix2, Ix4};
use padsim::brain::schedule::Condition;
use padsim::brain::Brain;
use padsim::brain::MemoryMix;
use padsim::cortex::{Activity, Parameter};
use padsim::plasticity::{Optimisers, UnusedParameters};
use serde_json::Value;

/// The first set skips parameters without gradient (PyTorch 2); the second steps them with a
/// zero gradient (PyTorch 1.x, the paper's runs).
const SKIP: &str = "pad_cycle_small";
const ZERO_GRAD: &str = "pad_cycle_small_zero_grad";

fn unused_parameters(set: &str) -> UnusedParameters {
    if set == ZERO_GRAD {
        UnusedParameters::ZeroGradient
    } else {
        UnusedParameters::Skip
    }
}

fn brain_at(set: &str, manifest: &Value, key: &str) -> Brain {
    let start = &manifest["phase_start_state"][key];
    let mut brain = Brain::new(
        &architecture(set),
        Condition::FullPad.schedule(),
        Optimisers {
            unused_parameters: unused_parameters(set),
            ..Optimisers::default()
        },
        0,
    );
    for p in brain.cortex.parameters_mut() {
        load_into(p, set, start[&p.name[..1]].as_str().unwrap());
    }
    let names = |ps: Vec<&Parameter>| ps.into_iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let e_names = names(brain.cortex.feedforward.parameters());
    let g_names = names(brain.cortex.feedback.parameters());
    brain.feedforward_optimiser =
        golden_adam(set, manifest, start["adam_E"].as_str(), &e_names).into();
    brain.feedback_optimiser =
        golden_adam(set, manifest, start["adam_G"].as_str(), &g_names).into();
    brain
}

fn input(set: &str, c: usize, what: &str) -> ArrayD<f32> {
    load(set, &format!("inputs/cycle{c}.{what}"))
}

fn latent(set: &str, key: &str) -> Array2<f32> {
    load(set, key).into_dimensionality::<Ix2>().unwrap()
}

/// Compares an activation with the golden one under the phase's tolerance.
fn check_activation(set: &str, manifest: &Value, key: &str, name: &str, actual: &[f32]) {
    let atol = manifest["tolerances"]["phases"][key]["activations"][name]["atol"]
        .as_f64()
        .unwrap();
    let golden = load(set, &format!("{key}/{name}"));
    assert_close(
        &format!("{key} {name}"),
        actual,
        golden.as_slice().unwrap(),
        atol,
        1e-4,
    );
}

fn check_loss(manifest: &Value, key: &str, golden_name: &str, actual: f64) {
    let tol = &manifest["tolerances"]["phases"][key]["losses"][golden_name];
    let (want, rtol) = (
        tol["value"].as_f64().unwrap(),
        tol["rtol"].as_f64().unwrap(),
    );
    assert!(
        (actual - want).abs() <= rtol * want.abs(),
        "{key} {golden_name}: {actual} vs golden {want} (rtol {rtol:e})"
    );
}

fn loss(losses: &[(&str, f64)], name: &str) -> f64 {
    losses
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no loss {name}"))
        .1
}

/// Every parameter's gradient against PyTorch's, including which ones have none.
fn check_grads(set: &str, manifest: &Value, key: &str, brain: &Brain) {
    let tolerances = &manifest["tolerances"]["phases"][key]["grad"];
    let absent: Vec<&str> = manifest["absent_grads"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut compared = 0;
    for p in brain.cortex.parameters() {
        let file = format!("{key}/grad/{}", p.name);
        match (&p.grad, exists(set, &file)) {
            (Some(grad), true) => {
                let atol = tolerances[p.name.as_str()]["atol"].as_f64().unwrap();
                let golden = load(set, &file);
                assert_close(
                    &format!("{key} grad {}", p.name),
                    grad.as_slice().unwrap(),
                    golden.as_slice().unwrap(),
                    atol,
                    1e-4,
                );
                compared += 1;
            }
            (None, false) => {}
            (Some(_), false) => panic!("{key}: {} has a gradient; PyTorch had none", p.name),
            (None, true) => panic!("{key}: {} has no gradient; PyTorch had one", p.name),
        }
        if absent.contains(&p.name.as_str()) {
            assert!(p.grad.is_none(), "{key}: {} listed as absent", p.name);
        }
    }
    assert!(compared >= 8, "{key}: only {compared} gradients compared");
}

fn to_nchw_vec(a: &Activity) -> Vec<f32> {
    a.to_nchw().into_raw_vec_and_offset().0
}

/// The REM latent mix of cycle `c` as the hippocampus makes it.
fn rem_mix(set: &str, brain: &mut Brain, c: usize) -> Array2<f32> {
    brain.hippocampus.clear();
    for past in 1..=c {
        brain
            .hippocampus
            .store(latent(set, &format!("cycle{past}/wake/z")));
    }
    let older = brain
        .hippocampus
        .older(&mut padsim::rng::stream(0, "unused"))
        .cloned();
    let noise = input(set, c, "noise").into_dimensionality::<Ix2>().unwrap();
    brain
        .hippocampus
        .replay(&MemoryMix::PAD_REM, older.as_ref(), Some(noise.view()))
}

fn every_phase_in_isolation_matches_pytorch_in(set: &str) {
    let manifest = manifest(set);
    for c in 1..=2 {
        let x = Activity::from_nchw(
            input(set, c, "x")
                .into_dimensionality::<Ix4>()
                .unwrap()
                .view(),
        );
        let mask = input(set, c, "mask").into_dimensionality::<Ix2>().unwrap();

        let key = format!("cycle{c}/wake");
        let mut brain = brain_at(set, &manifest, &key);
        let out = brain.wake(1.0, 1.0, true, &x, None);
        check_activation(set, &manifest, &key, "z", out.z.as_slice().unwrap());
        check_activation(set, &manifest, &key, "d", out.d.as_slice().unwrap());
        check_activation(
            set,
            &manifest,
            &key,
            "x_rec",
            &to_nchw_vec(&out.reconstruction),
        );
        check_loss(
            &manifest,
            &key,
            "bce_d_vs_ones",
            loss(&out.losses, "external"),
        );
        check_loss(&manifest, &key, "kl", loss(&out.losses, "kl"));
        check_loss(
            &manifest,
            &key,
            "mse_reconstruction",
            loss(&out.losses, "reconstruction"),
        );
        check_loss(&manifest, &key, "total", loss(&out.losses, "total"));
        check_grads(set, &manifest, &key, &brain);

        let key = format!("cycle{c}/nrem");
        let mut brain = brain_at(set, &manifest, &key);
        let z_wake = latent(set, &format!("cycle{c}/wake/z"));
        let out = brain.nrem(1.0, z_wake.view(), Some(mask.view()));
        check_activation(set, &manifest, &key, "xg", &to_nchw_vec(&out.dream));
        check_activation(set, &manifest, &key, "x_occ", &to_nchw_vec(&out.occluded));
        check_activation(set, &manifest, &key, "z2", out.z_dream.as_slice().unwrap());
        check_loss(
            &manifest,
            &key,
            "mse_latent",
            loss(&out.losses, "latent_reconstruction"),
        );
        check_grads(set, &manifest, &key, &brain);

        let key = format!("cycle{c}/rem");
        let mut brain = brain_at(set, &manifest, &key);
        let zmix = rem_mix(set, &mut brain, c);
        check_activation(set, &manifest, &key, "zmix", zmix.as_slice().unwrap());
        let out = brain.rem(1.0, zmix.view());
        check_activation(set, &manifest, &key, "xr", &to_nchw_vec(&out.dream));
        check_activation(set, &manifest, &key, "d_r", out.d.as_slice().unwrap());
        check_loss(
            &manifest,
            &key,
            "bce_d_vs_zeros",
            loss(&out.losses, "internal"),
        );
        check_grads(set, &manifest, &key, &brain);
    }
}

fn phase_steps_move_exactly_the_plastic_parameters_in(set: &str) {
    // After each isolated phase, parameters without gradient are bit-identical to the start,
    // and the stepped ones agree with PyTorch's post-step values (abs 2e-3, the end-to-end bound).
    let manifest = manifest(set);
    for c in 1..=2 {
        for phase in ["wake", "nrem", "rem"] {
            let key = format!("cycle{c}/{phase}");
            let mut brain = brain_at(set, &manifest, &key);
            let before: Vec<Parameter> = brain.cortex.parameters().into_iter().cloned().collect();
            let x = Activity::from_nchw(
                input(set, c, "x")
                    .into_dimensionality::<Ix4>()
                    .unwrap()
                    .view(),
            );
            let mask = input(set, c, "mask").into_dimensionality::<Ix2>().unwrap();
            let z_wake = latent(set, &format!("cycle{c}/wake/z"));
            match phase {
                "wake" => drop(brain.wake(1.0, 1.0, true, &x, None)),
                "nrem" => drop(brain.nrem(1.0, z_wake.view(), Some(mask.view()))),
                _ => {
                    let zmix = rem_mix(set, &mut brain, c);
                    drop(brain.rem(1.0, zmix.view()));
                }
            }
            for (p, old) in brain.cortex.parameters().into_iter().zip(&before) {
                if p.grad.is_none() {
                    assert_eq!(
                        p.value, old.value,
                        "{key}: {} moved without gradient",
                        p.name
                    );
                } else {
                    let golden = load(set, &format!("{key}/after/{}", p.name));
                    assert_close(
                        &format!("{key} after {}", p.name),
                        p.value.as_slice().unwrap(),
                        golden.as_slice().unwrap(),
                        2e-3,
                        0.0,
                    );
                }
            }
        }
    }
}

fn two_cycles_end_to_end_from_init_in(set: &str) {
    let manifest = manifest(set);
    let mut brain = brain_at(set, &manifest, "cycle1/wake");
    for c in 1..=2 {
        let x = Activity::from_nchw(
            input(set, c, "x")
                .into_dimensionality::<Ix4>()
                .unwrap()
                .view(),
        );
        let mask = input(set, c, "mask").into_dimensionality::<Ix2>().unwrap();
        let noise = input(set, c, "noise").into_dimensionality::<Ix2>().unwrap();
        let losses = &manifest["losses"];

        let wake = brain.wake(1.0, 1.0, true, &x, None);
        let key = format!("cycle{c}/wake");
        for (mine, theirs) in [
            ("external", "bce_d_vs_ones"),
            ("kl", "kl"),
            ("reconstruction", "mse_reconstruction"),
        ] {
            let want = losses[&key][theirs].as_f64().unwrap();
            let got = loss(&wake.losses, mine);
            assert!(
                (got - want).abs() <= 1e-4 * want.abs(),
                "{key} {theirs}: {got} vs {want}"
            );
        }
        assert_close(
            &format!("{key} z"),
            wake.z.as_slice().unwrap(),
            load(set, &format!("{key}/z")).as_slice().unwrap(),
            2e-3,
            0.0,
        );

        let key = format!("cycle{c}/nrem");
        let z = brain.hippocampus.newest().unwrap().clone();
        let nrem = brain.nrem(1.0, z.view(), Some(mask.view()));
        let want = losses[&key]["mse_latent"].as_f64().unwrap();
        let got = loss(&nrem.losses, "latent_reconstruction");
        assert!((got - want).abs() <= 0.1 * want, "{key}: {got} vs {want}");

        let key = format!("cycle{c}/rem");
        let older = brain
            .hippocampus
            .older(&mut padsim::rng::stream(0, "unused"))
            .cloned();
        let zmix =
            brain
                .hippocampus
                .replay(&MemoryMix::PAD_REM, older.as_ref(), Some(noise.view()));
        let rem = brain.rem(1.0, zmix.view());
        let want = losses[&key]["bce_d_vs_zeros"].as_f64().unwrap();
        let got = loss(&rem.losses, "internal");
        assert!((got - want).abs() <= 1e-4 * want, "{key}: {got} vs {want}");
        for p in brain.cortex.parameters() {
            let golden = load(set, &format!("{key}/after/{}", p.name));
            assert_close(
                &format!("{key} after {}", p.name),
                p.value.as_slice().unwrap(),
                golden.as_slice().unwrap(),
                2e-3,
                0.0,
            );
        }
    }
}

#[test]
fn every_phase_in_isolation_matches_pytorch() {
    every_phase_in_isolation_matches_pytorch_in(SKIP);
}

#[test]
fn phase_steps_move_exactly_the_plastic_parameters() {
    phase_steps_move_exactly_the_plastic_parameters_in(SKIP);
}

#[test]
fn two_cycles_end_to_end_from_init() {
    two_cycles_end_to_end_from_init_in(SKIP);
}

#[test]
fn every_phase_in_isolation_matches_pytorch_with_zero_gradients() {
    every_phase_in_isolation_matches_pytorch_in(ZERO_GRAD);
}

#[test]
fn phase_steps_move_exactly_the_plastic_parameters_with_zero_gradients() {
    phase_steps_move_exactly_the_plastic_parameters_in(ZERO_GRAD);
}

#[test]
fn two_cycles_end_to_end_from_init_with_zero_gradients() {
    two_cycles_end_to_end_from_init_in(ZERO_GRAD);
}
