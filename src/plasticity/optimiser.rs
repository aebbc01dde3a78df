//! Optimisers per pathway: which algorithm turns each pathway's gradients into synaptic change,
//! chosen in a configuration.
//!
//! ```toml
//! [optimiser.feedforward]      # E (encoder and discriminator neurons)
//! kind = "sgd"                 # adam (default) | sgd
//! lr = 0.01
//! momentum = 0.9
//!
//! [optimiser.feedback]         # G
//! kind = "adam"                # PAD's: lr 2e-4, betas (0.5, 0.999), eps 1e-8
//! ```
//!
//! A flat `[optimiser]` table of Adam's keys (`lr`, `beta1`, `beta2`, `eps`), the older form,
//! still sets Adam for both pathways.
//!
//! `unused_parameters` (beside either form) says what a step does with a parameter that took
//! no part in the phase but has been stepped before (NREM's `E.dis`, REM's `E.latent`):
//!
//! ```text
//! zero_gradient (default):  g = 0, stepped: m ← β1·m, v ← β2·v, t ← t + 1, p moves by its momentum
//! skip:                     not stepped: p, m, v and t unchanged
//! ```
//!
//! PAD equivalent: `zero_gradient` is the reference's `optimizer.zero_grad()` before each phase
//! under PyTorch 1.x (the paper's runs), which fills existing gradients with zeros; `skip` is
//! PyTorch 2's `zero_grad(set_to_none=True)`, which the first golden set follows. Either way a
//! parameter that never had a gradient (E.dis in conditions without a discriminator) is not
//! stepped, and a pathway that is not plastic in a phase is not stepped at all (the
//! reference calls no `step()` for it).
//!
//! PAD equivalent: `optimizerE = optim.Adam(netE.parameters(), ...)` and `optimizerG = ...`.

use super::{Adam, AdamConfig, AdamMoments, Optimiser, Sgd, SgdConfig, SgdMomentum};
use crate::cortex::Parameter;
use ndarray::ArrayD;
use serde::de::Error as _;

/// One pathway's optimiser settings; `kind` selects the algorithm.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimiserConfig {
    /// [`Adam`] with its hyperparameters.
    Adam(AdamConfig),
    /// [`Sgd`] (with momentum) with its hyperparameters.
    Sgd(SgdConfig),
}

impl Default for OptimiserConfig {
    /// PAD's Adam.
    fn default() -> Self {
        OptimiserConfig::Adam(AdamConfig::default())
    }
}

impl OptimiserConfig {
    /// The algorithm's name in configurations (`adam`, `sgd`).
    pub fn kind(&self) -> &'static str {
        match self {
            OptimiserConfig::Adam(_) => "adam",
            OptimiserConfig::Sgd(_) => "sgd",
        }
    }

    /// Checks the hyperparameters; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            OptimiserConfig::Adam(a) => {
                let keys = [("lr", a.lr), ("eps", a.eps)];
                if let Some((k, v)) = keys.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
                    return Err(format!("{k} must be a finite number ≥ 0, got {v}"));
                }
                for (k, v) in [("beta1", a.beta1), ("beta2", a.beta2)] {
                    if !(0.0..1.0).contains(&v) {
                        return Err(format!("{k} must lie in [0, 1), got {v}"));
                    }
                }
                Ok(())
            }
            OptimiserConfig::Sgd(s) => s.validate(),
        }
    }
}

/// What an optimiser step does with a parameter that has no gradient in a phase but has been
/// stepped before (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnusedParameters {
    /// Stepped with a zero gradient (PyTorch 1.x's `zero_grad()`, the paper's runs).
    #[default]
    ZeroGradient,
    /// Not stepped (PyTorch 2's `zero_grad(set_to_none=True)`).
    Skip,
}

/// The optimiser of each pathway (`[optimiser.feedforward]`, `[optimiser.feedback]`) and what
/// steps do with unused parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Optimisers {
    /// The feedforward pathway's (E, including the latent and discriminator heads).
    pub feedforward: OptimiserConfig,
    /// The feedback pathway's (G).
    pub feedback: OptimiserConfig,
    /// Parameters without gradient in a phase: stepped with zeros or skipped.
    pub unused_parameters: UnusedParameters,
}

impl From<AdamConfig> for Optimisers {
    /// Adam with `config` for both pathways (unused parameters: the default).
    fn from(config: AdamConfig) -> Self {
        Optimisers {
            feedforward: OptimiserConfig::Adam(config),
            feedback: OptimiserConfig::Adam(config),
            unused_parameters: UnusedParameters::default(),
        }
    }
}

impl Optimisers {
    /// One line for records: `feedforward=<kind> feedback=<kind> unused_parameters=<policy>`.
    pub fn summary(&self) -> String {
        let unused = match self.unused_parameters {
            UnusedParameters::ZeroGradient => "zero_gradient",
            UnusedParameters::Skip => "skip",
        };
        format!(
            "feedforward={} feedback={} unused_parameters={unused}",
            self.feedforward.kind(),
            self.feedback.kind()
        )
    }

    /// Checks both pathways' settings; the error names the table and key.
    pub fn validate(&self) -> Result<(), String> {
        for (pathway, config) in [
            ("feedforward", self.feedforward),
            ("feedback", self.feedback),
        ] {
            config
                .validate()
                .map_err(|e| format!("optimiser.{pathway} ({}): {e}", config.kind()))?;
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for Optimisers {
    /// Either per pathway (`feedforward`, `feedback`, each optional, default PAD's Adam), or
    /// the older flat table of Adam's keys for both.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        let unused_parameters = match table.remove("unused_parameters") {
            None => UnusedParameters::default(),
            Some(value) => value.try_into().map_err(|e: toml::de::Error| {
                D::Error::custom(format!(
                    "optimiser.unused_parameters: {} (expected \"zero_gradient\" or \"skip\")",
                    e.message()
                ))
            })?,
        };
        let per_pathway = ["feedforward", "feedback"];
        if !per_pathway.iter().any(|k| table.contains_key(*k)) {
            let adam: AdamConfig = table.try_into().map_err(|e: toml::de::Error| {
                D::Error::custom(format!(
                    "{} (a flat [optimiser] table holds Adam's lr, beta1, beta2, eps; per pathway, use [optimiser.feedforward] and [optimiser.feedback])",
                    e.message()
                ))
            })?;
            return Ok(Optimisers {
                unused_parameters,
                ..adam.into()
            });
        }
        let mut pathway = |name: &str| -> Result<OptimiserConfig, D::Error> {
            let Some(value) = table.remove(name) else {
                return Ok(OptimiserConfig::default());
            };
            let toml::Value::Table(mut settings) = value else {
                return Err(D::Error::custom(format!(
                    "optimiser.{name} must be a table"
                )));
            };
            if !settings.contains_key("kind") {
                settings.insert("kind".into(), "adam".into());
            }
            settings.try_into().map_err(|e: toml::de::Error| {
                D::Error::custom(format!("optimiser.{name}: {}", e.message()))
            })
        };
        let optimisers = Optimisers {
            feedforward: pathway("feedforward")?,
            feedback: pathway("feedback")?,
            unused_parameters,
        };
        if let Some(key) = table.keys().next() {
            return Err(D::Error::custom(format!(
                "optimiser.{key}: unknown key beside [optimiser.feedforward] / [optimiser.feedback]"
            )));
        }
        Ok(optimisers)
    }
}

/// The state an optimiser keeps for one parameter tensor, for checkpoints: its step count and
/// named buffers (Adam: `exp_avg`, `exp_avg_sq`; SGD with momentum: `momentum_buffer`).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorState {
    /// The parameter's name.
    pub name: String,
    /// Steps the tensor has taken.
    pub step: u64,
    /// The buffers, by name, in the parameter's shape.
    pub buffers: Vec<(String, ArrayD<f32>)>,
}

/// A pathway's optimiser, built from its [`OptimiserConfig`].
#[derive(Clone, Debug, PartialEq)]
pub enum PathwayOptimiser {
    /// Adam.
    Adam(Adam),
    /// SGD with momentum.
    Sgd(Sgd),
}

impl From<Adam> for PathwayOptimiser {
    fn from(adam: Adam) -> Self {
        PathwayOptimiser::Adam(adam)
    }
}

impl PathwayOptimiser {
    /// A fresh optimiser with the settings `config`.
    pub fn new(config: OptimiserConfig) -> Self {
        match config {
            OptimiserConfig::Adam(c) => PathwayOptimiser::Adam(Adam::new(c)),
            OptimiserConfig::Sgd(c) => PathwayOptimiser::Sgd(Sgd::new(c)),
        }
    }

    /// Its settings.
    pub fn config(&self) -> OptimiserConfig {
        match self {
            PathwayOptimiser::Adam(a) => OptimiserConfig::Adam(a.config),
            PathwayOptimiser::Sgd(s) => OptimiserConfig::Sgd(s.config),
        }
    }

    /// Whether the parameter `name` has been stepped (has state here).
    pub fn has_stepped(&self, name: &str) -> bool {
        match self {
            PathwayOptimiser::Adam(a) => a.state.contains_key(name),
            PathwayOptimiser::Sgd(s) => s.state.contains_key(name),
        }
    }

    /// The per-tensor state, sorted by parameter name.
    pub fn tensors(&self) -> Vec<TensorState> {
        match self {
            PathwayOptimiser::Adam(adam) => adam
                .state
                .iter()
                .map(|(name, m)| TensorState {
                    name: name.clone(),
                    step: m.step,
                    buffers: vec![
                        ("exp_avg".into(), m.exp_avg.clone()),
                        ("exp_avg_sq".into(), m.exp_avg_sq.clone()),
                    ],
                })
                .collect(),
            PathwayOptimiser::Sgd(sgd) => sgd
                .state
                .iter()
                .map(|(name, m)| TensorState {
                    name: name.clone(),
                    step: m.step,
                    buffers: m
                        .buffer
                        .iter()
                        .map(|b| ("momentum_buffer".into(), b.clone()))
                        .collect(),
                })
                .collect(),
        }
    }

    /// Replaces the per-tensor state by `tensors` (as [`PathwayOptimiser::tensors`] gave it);
    /// fails, naming the tensor, if a buffer this algorithm keeps is missing.
    pub fn restore(&mut self, tensors: &[TensorState]) -> Result<(), String> {
        let buffer = |t: &TensorState, key: &str| {
            t.buffers
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, b)| b.clone())
        };
        match self {
            PathwayOptimiser::Adam(adam) => {
                adam.state = tensors
                    .iter()
                    .map(|t| {
                        let moment = |key| {
                            buffer(t, key)
                                .ok_or_else(|| format!("{}: Adam's {key} is missing", t.name))
                        };
                        let moments = AdamMoments {
                            step: t.step,
                            exp_avg: moment("exp_avg")?,
                            exp_avg_sq: moment("exp_avg_sq")?,
                        };
                        Ok((t.name.clone(), moments))
                    })
                    .collect::<Result<_, String>>()?;
            }
            PathwayOptimiser::Sgd(sgd) => {
                let momentum = sgd.config.momentum != 0.0;
                sgd.state = tensors
                    .iter()
                    .map(|t| {
                        let b = buffer(t, "momentum_buffer");
                        if momentum && b.is_none() {
                            return Err(format!("{}: SGD's momentum_buffer is missing", t.name));
                        }
                        let state = SgdMomentum {
                            step: t.step,
                            buffer: b,
                        };
                        Ok((t.name.clone(), state))
                    })
                    .collect::<Result<_, String>>()?;
            }
        }
        Ok(())
    }
}

impl Optimiser for PathwayOptimiser {
    fn step(&mut self, params: &mut [&mut Parameter]) {
        match self {
            PathwayOptimiser::Adam(a) => a.step(params),
            PathwayOptimiser::Sgd(s) => s.step(params),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Optimisers, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn per_pathway_tables_flat_tables_and_defaults_are_read() {
        assert_eq!(parse("").unwrap(), Optimisers::default());
        let flat = parse("lr = 1e-3\nbeta1 = 0.9").unwrap();
        let adam = AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            ..AdamConfig::default()
        };
        assert_eq!(flat, Optimisers::from(adam));
        let both = parse(
            "[feedforward]\nkind = \"sgd\"\nlr = 0.01\nmomentum = 0.9\n[feedback]\nlr = 1e-3\nbeta1 = 0.9\n",
        )
        .unwrap();
        assert_eq!(
            both.feedforward,
            OptimiserConfig::Sgd(SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                ..SgdConfig::default()
            })
        );
        assert_eq!(both.feedback, OptimiserConfig::Adam(adam));
        // What is written is read back the same.
        let text = toml::to_string(&both).unwrap();
        assert_eq!(parse(&text).unwrap(), both);
        assert_eq!(both.unused_parameters, UnusedParameters::ZeroGradient);
        let skip = parse("unused_parameters = \"skip\"\nlr = 1e-3").unwrap();
        assert_eq!(
            (skip.unused_parameters, skip.feedback),
            (
                UnusedParameters::Skip,
                OptimiserConfig::Adam(AdamConfig {
                    lr: 1e-3,
                    ..AdamConfig::default()
                })
            )
        );
        let err = parse("unused_parameters = \"none\"").unwrap_err();
        assert!(err.contains("unused_parameters"), "{err}");
    }

    #[test]
    fn mistakes_name_the_table_and_key() {
        let err = parse("[feedforward]\nkind = \"sgd\"\nbeta1 = 0.9").unwrap_err();
        assert!(
            err.contains("optimiser.feedforward") && err.contains("beta1"),
            "{err}"
        );
        let err = parse("[feedback]\nkind = \"rmsprop\"").unwrap_err();
        assert!(
            err.contains("optimiser.feedback") && err.contains("rmsprop"),
            "{err}"
        );
        let err = parse("lr = 1e-3\nmomentum = 0.9").unwrap_err();
        assert!(err.contains("momentum"), "{err}");
        let err = parse("lr = 1e-3\n[feedback]\nkind = \"adam\"").unwrap_err();
        assert!(err.contains("optimiser.lr"), "{err}");
        let bad = Optimisers {
            feedback: OptimiserConfig::Adam(AdamConfig {
                beta2: 1.0,
                ..AdamConfig::default()
            }),
            ..Optimisers::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(
            err.contains("optimiser.feedback") && err.contains("beta2"),
            "{err}"
        );
    }

    #[test]
    fn state_round_trips_through_tensors_for_both_algorithms() {
        let sgd = OptimiserConfig::Sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..SgdConfig::default()
        });
        for config in [OptimiserConfig::default(), sgd] {
            let mut opt = PathwayOptimiser::new(config);
            let mut p = Parameter::new("w", ndarray::arr1(&[1.0f32, -2.0]).into_dyn());
            for g in [0.5f32, -0.25] {
                p.grad = Some(ndarray::arr1(&[g, 2.0 * g]).into_dyn());
                opt.step(&mut [&mut p]);
            }
            let mut fresh = PathwayOptimiser::new(config);
            fresh.restore(&opt.tensors()).unwrap();
            assert_eq!(fresh, opt, "{}", config.kind());
            let mut emptied = opt.tensors();
            emptied[0].buffers.clear();
            assert!(fresh.restore(&emptied).unwrap_err().contains("missing"));
        }
    }
}
