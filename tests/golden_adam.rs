//! Adam fed with PyTorch's gradients, phase by phase, against PyTorch's parameters and moments
//! (`pad_cycle_small`): every phase of two Wake/NREM/REM cycles.

mod common;

use common::*;
use padsim::cortex::Parameter;
use padsim::plasticity::Optimiser;

const SET: &str = "pad_cycle_small";

fn max_abs(a: &ndarray::ArrayD<f32>) -> f64 {
    a.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64))
}

#[test]
fn adam_reproduces_every_phase_of_two_cycles() {
    let manifest = manifest(SET);
    let mut checked = 0;
    for cycle in 1..=2 {
        for phase in ["wake", "nrem", "rem"] {
            let key = format!("cycle{cycle}/{phase}");
            let start = &manifest["phase_start_state"][&key];
            // Parameters as the phase found them, with the gradients PyTorch computed in it.
            let cortex = cortex_from(SET, "init");
            let mut params: Vec<Parameter> = cortex.parameters().into_iter().cloned().collect();
            for p in params.iter_mut() {
                let pathway = &p.name[..1];
                load_into(p, SET, start[pathway].as_str().unwrap());
                let grad_key = format!("{key}/grad/{}", p.name);
                p.grad = exists(SET, &grad_key).then(|| load(SET, &grad_key));
            }
            // NREM steps E only: G's gradients are None there (no file), so G is skipped too.
            for pathway in ["E", "G"] {
                let names: Vec<String> = params
                    .iter()
                    .filter(|p| p.name.starts_with(pathway))
                    .map(|p| p.name.clone())
                    .collect();
                let mut adam = golden_adam(
                    SET,
                    &manifest,
                    start[format!("adam_{pathway}")].as_str(),
                    &names,
                );
                let before: Vec<Parameter> = params
                    .iter()
                    .filter(|p| p.name.starts_with(pathway))
                    .cloned()
                    .collect();
                let mut mine: Vec<&mut Parameter> = params
                    .iter_mut()
                    .filter(|p| p.name.starts_with(pathway))
                    .collect();
                adam.step(&mut mine);
                for (p, old) in mine.iter().zip(&before) {
                    let after_key = format!("{key}/after/{}", p.name);
                    if !exists(SET, &after_key) {
                        // Not recorded (G in NREM): it had no gradient, so it must not move.
                        assert_eq!(
                            p.value, old.value,
                            "{key}: {} moved without gradient",
                            p.name
                        );
                        continue;
                    }
                    let golden = load(SET, &after_key);
                    assert_close(
                        &format!("{key} after {}", p.name),
                        p.value.as_slice().unwrap(),
                        golden.as_slice().unwrap(),
                        1e-7,
                        0.0,
                    );
                    let want_step = manifest["adam_steps_after_phase"][&key][p.name.as_str()]
                        .as_u64()
                        .unwrap();
                    let state = &adam.state[&p.name];
                    assert_eq!(state.step, want_step, "{key}: step count of {}", p.name);
                    for (moment, value) in [
                        ("exp_avg", &state.exp_avg),
                        ("exp_avg_sq", &state.exp_avg_sq),
                    ] {
                        let golden = load(SET, &format!("{key}/adam/{moment}/{}", p.name));
                        let tol = 1e-5 * max_abs(&golden);
                        assert_close(
                            &format!("{key} {moment} {}", p.name),
                            value.as_slice().unwrap(),
                            golden.as_slice().unwrap(),
                            tol,
                            0.0,
                        );
                    }
                    if p.grad.is_none() {
                        assert_eq!(
                            golden, old.value,
                            "{key}: golden moved {} without gradient",
                            p.name
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    // 18 tensors in wake and rem, 10 (E only) in nrem, twice.
    assert_eq!(checked, 2 * (18 + 10 + 18));
}
