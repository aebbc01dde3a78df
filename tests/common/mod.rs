//! Shared helpers of the integration tests: the golden PyTorch vectors in tests/data/golden,
//! and writers of image-folder and `.npy` data sets ([`own_data`]).

#![allow(dead_code)]

pub mod own_data;

use ndarray::ArrayD;
use ndarray_npy::read_npy;
use padsim::cortex::{Architecture, Cortex, Parameter};
use padsim::plasticity::{Adam, AdamConfig, AdamMoments};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The golden sets copied from ../shared/golden (see tests/data/golden/README.md).
pub fn golden_dir(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(set)
}

/// Reads `<set>/<key>.npy` as f32.
pub fn load(set: &str, key: &str) -> ArrayD<f32> {
    let path = golden_dir(set).join(format!("{key}.npy"));
    read_npy(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Whether `<set>/<key>.npy` exists.
pub fn exists(set: &str, key: &str) -> bool {
    golden_dir(set).join(format!("{key}.npy")).exists()
}

/// The set's manifest.json.
pub fn manifest(set: &str) -> serde_json::Value {
    let path = golden_dir(set).join("manifest.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("valid json")
}

/// The widths of a golden set.
pub fn architecture(set: &str) -> Architecture {
    let h = &manifest(set)["hyperparameters"];
    Architecture::pad(
        h["nf"].as_u64().unwrap() as usize,
        h["nz"].as_u64().unwrap() as usize,
    )
    .with_leak(h["leaky_relu_slope"].as_f64().unwrap())
}

/// A cortex of the set's widths, its parameters overwritten from `<prefix>/<name>.npy`.
pub fn cortex_from(set: &str, prefix: &str) -> Cortex {
    let arch = architecture(set);
    let mut cortex = Cortex::new(&arch, &mut padsim::rng::stream(0, "init"));
    for p in cortex.parameters_mut() {
        load_into(p, set, prefix);
    }
    cortex
}

/// Overwrites a parameter's value from `<prefix>/<name>.npy`, checking the shape.
pub fn load_into(p: &mut Parameter, set: &str, prefix: &str) {
    let value = load(set, &format!("{prefix}/{}", p.name));
    assert_eq!(value.shape(), p.value.shape(), "{}: golden shape", p.name);
    p.value = value;
}

/// Elementwise `|actual − golden| ≤ atol + rtol·|golden|`; panics naming the worst element.
pub fn assert_close(what: &str, actual: &[f32], golden: &[f32], atol: f64, rtol: f64) {
    assert_eq!(actual.len(), golden.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &g)) in actual.iter().zip(golden).enumerate() {
        let excess = (a as f64 - g as f64).abs() - (atol + rtol * (g as f64).abs());
        // NaN counts as a failure: `excess > 0` is false for it, so test `is_nan` too.
        let fails = excess > 0.0 || excess.is_nan();
        if fails && worst.is_none_or(|(_, w)| excess > w || w.is_nan()) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} is {} but golden is {} (atol {atol:e}, rtol {rtol:e})",
            actual[i], golden[i]
        );
    }
}

/// Golden Adam state of `names` after the phase whose moments live under `adam_prefix`.
pub fn golden_adam(
    set: &str,
    manifest: &Value,
    adam_prefix: Option<&str>,
    names: &[String],
) -> Adam {
    let mut adam = Adam::new(AdamConfig::default());
    let Some(prefix) = adam_prefix else {
        return adam;
    };
    let phase = prefix.trim_end_matches("/adam");
    let steps = &manifest["adam_steps_after_phase"][phase];
    for name in names {
        let Some(step) = steps[name.as_str()].as_u64() else {
            continue;
        };
        adam.state.insert(
            name.clone(),
            AdamMoments {
                step,
                exp_avg: load(set, &format!("{prefix}/exp_avg/{name}")),
                exp_avg_sq: load(set, &format!("{prefix}/exp_avg_sq/{name}")),
            },
        );
    }
    adam
}

/// Runs the padsim binary with `args`, asserts that it succeeded (showing its stderr if not)
/// and returns its standard output.
pub fn padsim_succeeds(args: &[&OsStr]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_padsim"))
        .args(args)
        .output()
        .expect("the padsim binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
