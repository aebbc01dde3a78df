//! Stochastic gradient descent with momentum, PyTorch's semantics (`torch.optim.SGD`,
//! `foreach=False`, `maximize=False`), per parameter tensor:
//!
//! ```text
//! g ← g + λ·p                                   (weight decay λ, if λ ≠ 0)
//! b ← g                         at the tensor's first step with momentum μ ≠ 0,
//! b ← μ·b + (1 − dampening)·g   after it
//! g ← g + μ·b  (Nesterov)   or   g ← b          (if μ ≠ 0)
//! p ← p − lr·g
//! ```
//!
//! A tensor without gradient in a step is skipped entirely (value, buffer and step count
//! unchanged). Tensor arithmetic is f32.
//!
//! PAD equivalent: `torch.optim.SGD(lr=0.2)` of the linear-separability probe (no momentum, no
//! weight decay); with momentum, `torch.optim.SGD(params, lr, momentum, dampening,
//! weight_decay, nesterov)`.

use super::Optimiser;
use crate::cortex::Parameter;
use ndarray::{ArrayD, Zip};
use std::collections::BTreeMap;

/// SGD's hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// μ: decay of the momentum buffer (0: plain SGD).
    pub momentum: f64,
    /// Dampening of the gradient entering the buffer.
    pub dampening: f64,
    /// λ: L2 weight decay added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs μ > 0 and no dampening).
    pub nesterov: bool,
}

impl Default for SgdConfig {
    /// PyTorch's defaults (lr 1e-3, no momentum, no dampening, no weight decay).
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// Plain SGD at learning rate `lr`.
    pub fn plain(lr: f64) -> Self {
        SgdConfig {
            lr,
            ..SgdConfig::default()
        }
    }

    /// Checks the settings as PyTorch does; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let finite = [
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("weight_decay", self.weight_decay),
        ];
        if let Some((key, v)) = finite.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            return Err(format!("{key} must be a finite number ≥ 0, got {v}"));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err("nesterov needs momentum > 0 and dampening = 0".into());
        }
        Ok(())
    }
}

/// SGD's state for one parameter tensor.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdMomentum {
    /// Steps taken by this tensor.
    pub step: u64,
    /// The momentum buffer `b` (PyTorch's `momentum_buffer`); absent without momentum.
    pub buffer: Option<ArrayD<f32>>,
}

/// The SGD optimiser; its state is keyed by parameter name.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd {
    /// Hyperparameters.
    pub config: SgdConfig,
    /// Per-parameter state, created at a parameter's first step.
    pub state: BTreeMap<String, SgdMomentum>,
}

impl Sgd {
    /// A fresh optimiser.
    pub fn new(config: SgdConfig) -> Self {
        Sgd {
            config,
            state: BTreeMap::new(),
        }
    }
}

impl Optimiser for Sgd {
    fn step(&mut self, params: &mut [&mut Parameter]) {
        let c = self.config;
        let (lr, mu, lambda) = (c.lr as f32, c.momentum as f32, c.weight_decay as f32);
        let keep = (1.0 - c.dampening) as f32;
        for p in params.iter_mut() {
            let Some(grad) = p.grad.as_ref() else {
                continue;
            };
            let state = self.state.entry(p.name.clone()).or_insert(SgdMomentum {
                step: 0,
                buffer: None,
            });
            state.step += 1;
            let mut g = grad.clone();
            if lambda != 0.0 {
                Zip::from(&mut g)
                    .and(&p.value)
                    .for_each(|g, &w| *g += lambda * w);
            }
            if mu != 0.0 {
                match &mut state.buffer {
                    None => state.buffer = Some(g.clone()),
                    Some(b) => Zip::from(b)
                        .and(&g)
                        .for_each(|b, &g| *b = mu * *b + keep * g),
                }
                let b = state.buffer.as_ref().expect("set above");
                if c.nesterov {
                    Zip::from(&mut g).and(b).for_each(|g, &b| *g += mu * b);
                } else {
                    g.assign(b);
                }
            }
            p.value.zip_mut_with(&g, |v, &g| *v -= lr * g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, ArrayD};

    #[test]
    fn steps_against_the_gradient_and_skips_missing_ones() {
        let mut a = Parameter::new("a", arr1(&[1.0f32, 2.0]).into_dyn());
        a.grad = Some(arr1(&[0.5f32, -1.0]).into_dyn());
        let mut b = Parameter::new("b", ArrayD::from_elem(vec![1], 3.0f32));
        let mut sgd = Sgd::new(SgdConfig::plain(0.2));
        sgd.step(&mut [&mut a, &mut b]);
        assert_eq!(a.value, arr1(&[0.9f32, 2.2]).into_dyn());
        assert_eq!(b.value[[0]], 3.0);
        assert!(!sgd.state.contains_key("b"));
        assert_eq!(sgd.state["a"].buffer, None);
    }

    /// PyTorch, by hand: `torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1,
    /// weight_decay=0.5)` on p = 1 with gradients 2 then −1.
    #[test]
    fn momentum_dampening_and_weight_decay_follow_pytorch() {
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 0.5,
            nesterov: false,
        };
        let mut p = Parameter::new("p", arr1(&[1.0f32]).into_dyn());
        let mut sgd = Sgd::new(config);
        p.grad = Some(arr1(&[2.0f32]).into_dyn());
        sgd.step(&mut [&mut p]);
        // g = 2 + 0.5·1 = 2.5; b = 2.5 (first step: no dampening); p = 1 − 0.25 = 0.75.
        assert!((p.value[[0]] - 0.75).abs() < 1e-7);
        p.grad = Some(arr1(&[-1.0f32]).into_dyn());
        sgd.step(&mut [&mut p]);
        // g = −1 + 0.375 = −0.625; b = 0.9·2.5 + 0.9·(−0.625) = 1.6875; p = 0.75 − 0.16875.
        assert!((p.value[[0]] - 0.58125).abs() < 1e-6, "{}", p.value[[0]]);
        assert_eq!(sgd.state["p"].step, 2);

        // Nesterov: the step uses g + μ·b.
        let mut p = Parameter::new("p", arr1(&[0.0f32]).into_dyn());
        let mut sgd = Sgd::new(SgdConfig {
            lr: 1.0,
            momentum: 0.5,
            nesterov: true,
            ..SgdConfig::default()
        });
        p.grad = Some(arr1(&[1.0f32]).into_dyn());
        sgd.step(&mut [&mut p]);
        assert_eq!(p.value[[0]], -1.5);
    }

    #[test]
    fn invalid_settings_name_their_key() {
        let bad = SgdConfig {
            momentum: -0.1,
            ..SgdConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("momentum"));
        let bad = SgdConfig {
            nesterov: true,
            ..SgdConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("nesterov"));
    }
}
