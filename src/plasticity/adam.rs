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
use ndarray::{ArrayD, Zip};
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

impl Optimiser for Adam {
    fn step(&mut self, params: &mut [&mut Parameter]) {
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        for p in params.iter_mut() {
            let Some(grad) = p.grad.as_ref() else {
                continue;
            };
            let moments = self
                .state
                .entry(p.name.clone())
                .or_insert_with(|| AdamMoments {
                    step: 0,
                    exp_avg: ArrayD::zeros(p.value.raw_dim()),
                    exp_avg_sq: ArrayD::zeros(p.value.raw_dim()),
                });
            moments.step += 1;
            let t = moments.step as i32;
            let step_size = (lr / (1.0 - beta1.powi(t))) as f32;
            let bias_correction2_sqrt = (1.0 - beta2.powi(t)).sqrt() as f32;
            let (one_minus_b1, b2, one_minus_b2) =
                ((1.0 - beta1) as f32, beta2 as f32, (1.0 - beta2) as f32);
            let eps = eps as f32;
            Zip::from(&mut p.value)
                .and(grad)
                .and(&mut moments.exp_avg)
                .and(&mut moments.exp_avg_sq)
                .par_for_each(|w, &g, m, v| {
                    *m += one_minus_b1 * (g - *m);
                    *v = *v * b2 + one_minus_b2 * g * g;
                    let denom = v.sqrt() / bias_correction2_sqrt + eps;
                    *w += -step_size * (*m / denom);
                });
        }
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
