//! Adam with PyTorch's exact semantics (`torch.optim.Adam`, `foreach=False`).
//!
//! Per parameter tensor, with its own step count `t` (a tensor without gradient in a step is
//! skipped entirely: value, moments and `t` unchanged):
//!
//! ```text
//! t ← t + 1
//! m ← m + (1 − β1)(g − m)
//! v ← β2·v + (1 − β2)·g²
//! p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
//! ```
//!
//! The bias corrections are computed in f64 as Python does; tensor arithmetic is f32.
//!
//! PAD equivalent: `optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))` for E and for G.

use super::Optimiser;
use crate::cortex::Parameter;
use crate::kernels::wide::wide;
use ndarray::ArrayD;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Adam's hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator after bias correction.
    pub eps: f64,
}

impl Default for AdamConfig {
    /// PAD's settings: lr 2e-4, betas (0.5, 0.999), eps 1e-8.
    fn default() -> Self {
        AdamConfig {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam's state for one parameter tensor.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamMoments {
    /// Steps taken by this tensor.
    pub step: u64,
    /// First moment `m`.
    pub exp_avg: ArrayD<f32>,
    /// Second moment `v`.
    pub exp_avg_sq: ArrayD<f32>,
}

/// The Adam optimiser; its state is keyed by parameter name.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// Hyperparameters.
    pub config: AdamConfig,
    /// Per-parameter state, created at a parameter's first step.
    pub state: BTreeMap<String, AdamMoments>,
}

impl Adam {
    /// A fresh optimiser.
    pub fn new(config: AdamConfig) -> Self {
        Adam {
            config,
            state: BTreeMap::new(),
        }
    }
}

/// Elements per parallel task: every tensor of a step is cut into pieces this long, and all
/// pieces run in one parallel pass (a pass per tensor woke the pool forty times a cycle, most
/// of them for biases of a few hundred elements).
const PIECE: usize = 1 << 14;

/// The constants of one tensor's update at its step `t`.
#[derive(Clone, Copy)]
struct StepConstants {
    step_size: f32,
    bias_correction2_sqrt: f32,
    one_minus_b1: f32,
    b2: f32,
    one_minus_b2: f32,
    eps: f32,
}

impl StepConstants {
    fn new(config: &AdamConfig, t: u64) -> Self {
        let t = t as i32;
        StepConstants {
            step_size: (config.lr / (1.0 - config.beta1.powi(t))) as f32,
            bias_correction2_sqrt: (1.0 - config.beta2.powi(t)).sqrt() as f32,
            one_minus_b1: (1.0 - config.beta1) as f32,
            b2: config.beta2 as f32,
            one_minus_b2: (1.0 - config.beta2) as f32,
            eps: config.eps as f32,
        }
    }

    /// Updates one piece of a tensor: values `w`, gradient `g`, moments `m` and `v`.
    fn update(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let c = *self;
        wide(
            #[inline(always)]
            || {
                for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
                    *m += c.one_minus_b1 * (g - *m);
                    *v = *v * c.b2 + c.one_minus_b2 * g * g;
                    let denom = v.sqrt() / c.bias_correction2_sqrt + c.eps;
                    *w += -c.step_size * (*m / denom);
                }
            },
        )
    }
}

fn values(tensor: &mut ArrayD<f32>) -> &mut [f32] {
    tensor.as_slice_mut().expect("standard layout")
}

impl Optimiser for Adam {
    fn step(&mut self, params: &mut [&mut Parameter]) {
        let mut learning = Vec::new();
        for p in params.iter_mut() {
            if p.grad.is_none() {
                continue;
            }
            let moments = self
                .state
                .entry(p.name.clone())
                .or_insert_with(|| AdamMoments {
                    step: 0,
                    exp_avg: ArrayD::zeros(p.value.raw_dim()),
                    exp_avg_sq: ArrayD::zeros(p.value.raw_dim()),
                });
            moments.step += 1;
            learning.push(StepConstants::new(&self.config, moments.step));
        }
        let mut moments: BTreeMap<&str, &mut AdamMoments> = self
            .state
            .iter_mut()
            .map(|(name, m)| (name.as_str(), m))
            .collect();
        let mut pieces = Vec::new();
        let with_grad = params.iter_mut().filter(|p| p.grad.is_some());
        for (p, constants) in with_grad.zip(learning) {
            let state = moments.remove(p.name.as_str()).expect("created above");
            let grad = p.grad.as_ref().and_then(|g| g.as_slice());
            let (w, g, m, v) = (
                values(&mut p.value),
                grad.expect("standard layout"),
                values(&mut state.exp_avg),
                values(&mut state.exp_avg_sq),
            );
            let chunks = w
                .chunks_mut(PIECE)
                .zip(g.chunks(PIECE))
                .zip(m.chunks_mut(PIECE))
                .zip(v.chunks_mut(PIECE));
            pieces.extend(chunks.map(|(((w, g), m), v)| (constants, w, g, m, v)));
        }
        pieces
            .into_par_iter()
            .for_each(|(c, w, g, m, v)| c.update(w, g, m, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn first_step_moves_by_lr_times_sign() {
        let mut p = Parameter::new("w", arr1(&[0.0f32, 0.0, 1.0]).into_dyn());
        p.grad = Some(arr1(&[3.0f32, -0.01, 0.0]).into_dyn());
        let mut adam = Adam::new(AdamConfig::default());
        adam.step(&mut [&mut p]);
        assert!((p.value[[0]] + 2e-4).abs() < 1e-9);
        assert!((p.value[[1]] - 2e-4).abs() < 1e-9);
        assert_eq!(p.value[[2]], 1.0);
        assert_eq!(adam.state["w"].step, 1);
    }

    #[test]
    fn parameters_without_gradient_keep_their_state() {
        let mut a = Parameter::new("a", arr1(&[1.0f32]).into_dyn());
        let mut b = Parameter::new("b", arr1(&[1.0f32]).into_dyn());
        a.grad = Some(arr1(&[1.0f32]).into_dyn());
        b.grad = Some(arr1(&[1.0f32]).into_dyn());
        let mut adam = Adam::new(AdamConfig::default());
        adam.step(&mut [&mut a, &mut b]);
        b.clear_grad();
        let before = (b.value.clone(), adam.state["b"].clone());
        adam.step(&mut [&mut a, &mut b]);
        assert_eq!((b.value.clone(), adam.state["b"].clone()), before);
        assert_eq!((adam.state["a"].step, adam.state["b"].step), (2, 1));
    }
}
