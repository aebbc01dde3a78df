//! A plasticity rule written outside padsim, plugged into the feedforward pathway.
//!
//! The rule sends the error back through the forward weights with a fixed random subset of
//! their signs flipped:
//!
//! ```text
//! F = S ⊙ W,   S_ij = −1 with probability p, else +1, drawn once per area
//! ```
//!
//! p = 0 is exact backprop; as p grows towards ½, `F` carries less of `W`'s structure. The
//! example trains two brains from the same initial weights on the built-in synthetic images,
//! one with exact backprop and one with this rule in every feedforward area, and prints their
//! losses side by side.
//!
//! ```sh
//! cargo run --release --example custom_rule
//! ```

use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};
use ndarray_rand::rand::Rng;
use padsim::brain::{Brain, Condition, CycleLosses};
use padsim::cortex::{Activity, Architecture};
use padsim::data::synthetic::{self, SyntheticConfig};
use padsim::plasticity::{AdamConfig, PlasticityRule};

/// Feedback through `W` with a fixed random subset of signs flipped.
#[derive(Clone, Debug)]
struct FlippedSigns {
    /// `S`: ±1, shaped like the area's weights.
    signs: ArrayD<f32>,
}

impl FlippedSigns {
    /// Flips each sign with probability `p`.
    fn draw(shape: &[usize], p: f64, rng: &mut impl Rng) -> Self {
        let signs =
            ArrayD::from_shape_simple_fn(
                IxDyn(shape),
                || {
                    if rng.random_bool(p) {
                        -1.0
                    } else {
                        1.0
                    }
                },
            );
        FlippedSigns { signs }
    }
}

impl PlasticityRule for FlippedSigns {
    fn name(&self) -> &str {
        "flipped_signs"
    }

    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        // `W ⊙ S` in standard layout, as areas expect.
        CowArray::from(&weight * &self.signs)
    }

    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(self.clone())
    }

    // `S` is drawn once: a checkpoint must keep it (padsim saves it as
    // `/extra/flipped_signs:<area>` when a brain with this rule is checkpointed).
    fn state(&self) -> Option<&ArrayD<f32>> {
        Some(&self.signs)
    }

    fn restore(&mut self, state: ArrayD<f32>) -> Result<(), String> {
        if state.shape() != self.signs.shape() {
            return Err(format!("signs of shape {:?}", state.shape()));
        }
        self.signs = state;
        Ok(())
    }
}

const SEED: u64 = 0;
/// PAD's network at reduced widths: V1 maps and latent size.
const NF: usize = 8;
const NZ: usize = 16;
const FLIP_PROBABILITY: f64 = 0.25;
const BATCH: usize = 32;
const CYCLES: usize = 40;

/// `wake/reconstruction 0.1234  wake/kl …` for the terms worth watching.
fn summary(losses: &CycleLosses) -> String {
    losses
        .iter()
        .flat_map(|(state, terms)| {
            terms
                .iter()
                .filter(|(term, _)| *term != "total")
                .map(move |(term, value)| format!("{state}/{term} {value:.4}"))
        })
        .collect::<Vec<_>>()
        .join("  ")
}

fn main() {
    let architecture = Architecture::pad(NF, NZ);
    let data = synthetic::generate(&SyntheticConfig {
        seed: SEED,
        train_size: BATCH * CYCLES,
        test_size: 0,
    });
    let schedule = Condition::FullPad.schedule();
    let mut exact = Brain::new(&architecture, schedule, AdamConfig::default(), SEED);
    let mut flipped = exact.clone();
    for area in flipped.cortex.feedforward.areas_mut() {
        let mut rng = padsim::rng::stream(SEED, &format!("flipped_signs/{}", area.full_name));
        area.rule = Box::new(FlippedSigns::draw(
            area.weight.value.shape(),
            FLIP_PROBABILITY,
            &mut rng,
        ));
    }

    println!(
        "full PAD, nf {NF}, nz {NZ}, batch {BATCH}; feedforward rule: exact_backprop vs {} (p = {FLIP_PROBABILITY})",
        flipped.cortex.feedforward.latent.rule.name(),
    );
    for cycle in 0..CYCLES {
        let indices: Vec<usize> = (cycle * BATCH..(cycle + 1) * BATCH).collect();
        let x = Activity::from_nchw(data.train.batch_f32(&indices).view());
        let (a, b) = (exact.cycle(&x), flipped.cycle(&x));
        if cycle % 10 == 0 || cycle + 1 == CYCLES {
            println!("cycle {cycle:2}  exact_backprop  {}", summary(&a));
            println!("          flipped_signs   {}", summary(&b));
        }
    }
}
