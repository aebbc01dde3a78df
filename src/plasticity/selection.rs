//! Which plasticity rule each cortical area learns by: one rule per pathway, optionally
//! overridden per area. In a configuration:
//!
//! ```toml
//! [plasticity]
//! feedforward = "feedback_alignment"   # E: exact_backprop (default) | feedback_alignment
//!                                      #    | sign_symmetry | direct_feedback_alignment
//! feedback = "exact_backprop"          # G
//! areas = { "E.conv2" = "sign_symmetry", "G.tconv1" = "feedback_alignment" }
//! ```
//!
//! Areas are named by pathway and module: `E.conv1`, `E.conv2`, `E.conv3`, `E.latent`, `E.dis`,
//! `G.tconv1` … `G.tconv4`; an unknown name is an error that names it. Feedback alignment's `B`
//! of area `X` is drawn (std [`INIT_STD`]) from the stream `(seed, "feedback_alignment/X")`, so
//! it depends on the seed and the area only, not on which other areas use the rule.
//!
//! PAD equivalent: none; the reference always backpropagates exactly (the defaults here).

use super::{
    DirectFeedbackAlignment, ExactBackprop, FeedbackAlignment, PlasticityRule, SignSymmetry,
};
use crate::cortex::{Cortex, CorticalArea, INIT_STD};
use std::collections::BTreeMap;
use std::fmt;

/// The rules a configuration can name.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// [`ExactBackprop`]: `F = W`.
    #[default]
    ExactBackprop,
    /// [`FeedbackAlignment`]: a fixed random `F = B`.
    FeedbackAlignment,
    /// [`SignSymmetry`]: `F = mean|W| · sign(W)`.
    SignSymmetry,
    /// [`DirectFeedbackAlignment`]: each area's error is `B_k · e_out`.
    DirectFeedbackAlignment,
}

impl RuleKind {
    /// The configuration name, which is also the rule's [`PlasticityRule::name`].
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::ExactBackprop => "exact_backprop",
            RuleKind::FeedbackAlignment => "feedback_alignment",
            RuleKind::SignSymmetry => "sign_symmetry",
            RuleKind::DirectFeedbackAlignment => "direct_feedback_alignment",
        }
    }

    /// A fresh rule of this kind for `area`, drawing any random state from `seed`.
    pub fn rule_for(self, area: &CorticalArea, seed: u64) -> Box<dyn PlasticityRule> {
        match self {
            RuleKind::ExactBackprop => Box::new(ExactBackprop),
            RuleKind::FeedbackAlignment => {
                let purpose = format!("feedback_alignment/{}", area.full_name);
                Box::new(FeedbackAlignment::draw(
                    area.weight.value.shape(),
                    INIT_STD,
                    &mut crate::rng::stream(seed, &purpose),
                ))
            }
            RuleKind::SignSymmetry => Box::new(SignSymmetry),
            RuleKind::DirectFeedbackAlignment => {
                Box::new(DirectFeedbackAlignment::new(&area.full_name, seed))
            }
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rule of each pathway, and of areas that differ from their pathway.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlasticityConfig {
    /// Rule of the feedforward pathway's areas (E, including IT and the discriminator).
    pub feedforward: RuleKind,
    /// Rule of the feedback pathway's areas (G).
    pub feedback: RuleKind,
    /// Per-area overrides, keyed by the area's full name (`E.conv2`, `G.tconv1`, ...).
    pub areas: BTreeMap<String, RuleKind>,
}

impl PlasticityConfig {
    /// Gives every area of `cortex` its configured rule; fails, changing nothing, if an
    /// override names an area the cortex does not have.
    pub fn install(&self, cortex: &mut Cortex, seed: u64) -> Result<(), String> {
        let known: Vec<&str> = cortex
            .areas()
            .into_iter()
            .map(|a| a.full_name.as_str())
            .collect();
        if let Some(unknown) = self.areas.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "plasticity.areas names an unknown area '{unknown}' (the areas are {})",
                known.join(", ")
            ));
        }
        for (pathway_rule, areas) in [
            (self.feedforward, cortex.feedforward.areas_mut()),
            (self.feedback, cortex.feedback.areas_mut()),
        ] {
            for area in areas {
                let kind = self
                    .areas
                    .get(&area.full_name)
                    .copied()
                    .unwrap_or(pathway_rule);
                area.rule = kind.rule_for(area, seed);
            }
        }
        Ok(())
    }

    /// One line for records: `feedforward=… feedback=…`, then each override as `area=rule`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "feedforward={} feedback={}",
            self.feedforward, self.feedback
        );
        for (area, kind) in &self.areas {
            line += &format!(" {area}={kind}");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cortex::Architecture;

    fn cortex() -> Cortex {
        let arch = Architecture::pad(2, 4);
        Cortex::new(&arch, &mut crate::rng::stream(0, "init"))
    }

    fn rules(cortex: &Cortex) -> Vec<(String, String)> {
        cortex
            .areas()
            .into_iter()
            .map(|a| (a.full_name.clone(), a.rule.name().to_string()))
            .collect()
    }

    #[test]
    fn the_default_is_exact_backprop_everywhere() {
        let mut c = cortex();
        PlasticityConfig::default().install(&mut c, 0).unwrap();
        assert!(rules(&c).iter().all(|(_, r)| r == "exact_backprop"));
        assert_eq!(
            PlasticityConfig::default().summary(),
            "feedforward=exact_backprop feedback=exact_backprop"
        );
    }

    #[test]
    fn overrides_beat_the_pathway_rule() {
        let config = PlasticityConfig {
            feedforward: RuleKind::FeedbackAlignment,
            feedback: RuleKind::ExactBackprop,
            areas: [
                ("E.dis".to_string(), RuleKind::ExactBackprop),
                ("G.tconv2".to_string(), RuleKind::SignSymmetry),
            ]
            .into(),
        };
        let mut c = cortex();
        config.install(&mut c, 0).unwrap();
        let names: Vec<(&str, &str)> = vec![
            ("E.conv1", "feedback_alignment"),
            ("E.conv2", "feedback_alignment"),
            ("E.conv3", "feedback_alignment"),
            ("E.latent", "feedback_alignment"),
            ("E.dis", "exact_backprop"),
            ("G.tconv1", "exact_backprop"),
            ("G.tconv2", "sign_symmetry"),
            ("G.tconv3", "exact_backprop"),
            ("G.tconv4", "exact_backprop"),
        ];
        let expected: Vec<(String, String)> = names
            .into_iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect();
        assert_eq!(rules(&c), expected);
        assert_eq!(
            config.summary(),
            "feedforward=feedback_alignment feedback=exact_backprop E.dis=exact_backprop G.tconv2=sign_symmetry"
        );
    }

    #[test]
    fn feedback_alignment_draws_b_per_area_from_the_seed() {
        let fa = PlasticityConfig {
            feedforward: RuleKind::FeedbackAlignment,
            ..PlasticityConfig::default()
        };
        let b_of = |seed| {
            let mut c = cortex();
            fa.install(&mut c, seed).unwrap();
            let conv2 = &c.feedforward.trunk.areas[1];
            let expected = FeedbackAlignment::draw(
                conv2.weight.value.shape(),
                INIT_STD,
                &mut crate::rng::stream(seed, "feedback_alignment/E.conv2"),
            );
            assert_eq!(conv2.rule.state(), Some(&expected.feedback));
            expected.feedback
        };
        assert_ne!(b_of(1), b_of(2));
    }

    #[test]
    fn unknown_areas_are_named_and_nothing_changes() {
        let config = PlasticityConfig {
            feedforward: RuleKind::SignSymmetry,
            areas: [("E.conv9".to_string(), RuleKind::SignSymmetry)].into(),
            ..PlasticityConfig::default()
        };
        let mut c = cortex();
        let err = config.install(&mut c, 0).unwrap_err();
        assert!(
            err.contains("'E.conv9'") && err.contains("G.tconv4"),
            "{err}"
        );
        assert!(rules(&c).iter().all(|(_, r)| r == "exact_backprop"));
    }
}
