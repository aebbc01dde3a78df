//! A plasticity rule written outside padsim that changes the weight update itself: the
//! error-driven change plus a local, Hebbian term (Oja's rule, which keeps weights bounded).
//!
//! ```text
//! ΔW = −lr · ∂L/∂W  +  η · (y ⋆ x − (Σ y²) ⊙ W) / P      per output channel o:
//!      y ⋆ x: correlation of the area's output y with its input x (as δ ⋆ x is for the error),
//!      Σ y²: the channel's summed squared activity, P: positions × images
//! ```
//!
//! The optimiser descends what the rule leaves as the gradient, so the rule subtracts the
//! Hebbian term from it. It reads only what is local to its area (`LocalSignals`: `W`, `x`,
//! `y`), and errors still reach the area below through `W` (exact routing). The example
//! trains two brains from the same initial weights on the built-in synthetic images, one with
//! exact backprop and one with this rule in V1, V2 and V4, and prints their losses and the
//! rule's effect on V1's weights.
//!
//! ```sh
//! cargo run --release --example local_rule
//! ```

use ndarray::{ArrayD, ArrayViewD, Axis, CowArray, IxDyn};
use padsim::cortex::{Connectivity, SynapticChange};
use padsim::data::synthetic::{self, SyntheticConfig};
use padsim::prelude::*;

/// Backprop plus Oja's Hebbian term at rate `eta`.
#[derive(Clone, Debug)]
struct HebbianBackprop {
    eta: f32,
}

impl PlasticityRule for HebbianBackprop {
    fn name(&self) -> &str {
        "hebbian_backprop"
    }

    /// Errors travel down through `W`, as under backprop.
    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        CowArray::from(weight)
    }

    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(self.clone())
    }

    fn changes_update(&self) -> bool {
        true
    }

    fn weight_change(&mut self, local: &LocalSignals, change: SynapticChange) {
        assert_eq!(
            local.connectivity,
            Connectivity::Conv,
            "written for convolutions"
        );
        let y = local.output;
        let (hebb, _) = local.correlate(y);
        // Σ y² per output channel, over images and positions.
        let power = y.maps().mapv(|v| v * v).sum_axis(Axis(3)).sum_axis(Axis(2));
        let power = power.sum_axis(Axis(1));
        let positions = (y.batch() * y.height() * y.width()) as f32;
        let rate = self.eta / positions;
        for (o, mut grad) in change.weight.axis_iter_mut(Axis(0)).enumerate() {
            let hebb = hebb.index_axis(Axis(0), o);
            let w = local.weight.index_axis(Axis(0), o);
            ndarray::Zip::from(&mut grad)
                .and(&hebb)
                .and(&w)
                .for_each(|g, &h, &w| *g -= rate * (h - power[o] * w));
        }
    }
}

const SEED: u64 = 0;
/// PAD's network at reduced widths: V1 maps and latent size.
const NF: usize = 8;
const NZ: usize = 16;
/// Strong enough for the Hebbian term to show through Adam's normalised steps on the built-in
/// shapes (dark backgrounds, so little activity to correlate): after 40 cycles V1's mean
/// filter norm is 0.159 with backprop alone and 0.171, 0.180, 0.194 with η = 3, 5, 10.
const ETA: f32 = 5.0;
const BATCH: usize = 32;
const CYCLES: usize = 40;

fn wake_loss(losses: &CycleLosses, term: &str) -> f64 {
    let (_, wake) = losses.iter().find(|(s, _)| s == "wake").expect("wake");
    wake.iter().find(|(t, _)| *t == term).expect("term").1
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
    let mut local = exact.clone();
    for area in &mut local.cortex.feedforward.trunk.areas {
        area.rule = Box::new(HebbianBackprop { eta: ETA });
    }
    let v1_start: ArrayD<f32> = exact.cortex.feedforward.trunk.areas[0].weight.value.clone();

    println!(
        "full PAD, nf {NF}, nz {NZ}, batch {BATCH}; V1, V2, V4 learn by exact_backprop vs hebbian_backprop (η = {ETA})"
    );
    println!("cycle  reconstruction (exact, hebbian)   kl (exact, hebbian)");
    for cycle in 0..CYCLES {
        let indices: Vec<usize> = (cycle * BATCH..(cycle + 1) * BATCH).collect();
        let x = Activity::from_nchw(data.train.batch_f32(&indices).view());
        let (a, b) = (exact.cycle(&x), local.cycle(&x));
        if cycle % 10 == 0 || cycle + 1 == CYCLES {
            println!(
                "{cycle:5}  {:.4}  {:.4}                  {:.4}  {:.4}",
                wake_loss(&a, "reconstruction"),
                wake_loss(&b, "reconstruction"),
                wake_loss(&a, "kl"),
                wake_loss(&b, "kl"),
            );
        }
    }
    // Oja's term drives each filter towards unit norm; the error alone leaves them small.
    let filter_norm = |w: &ArrayD<f32>| {
        let norms = w
            .mapv(|v| v * v)
            .sum_axis(Axis(3))
            .sum_axis(Axis(2))
            .sum_axis(Axis(1));
        norms.mapv(f32::sqrt).mean().expect("filters")
    };
    let v1 = |brain: &Brain| filter_norm(&brain.cortex.feedforward.trunk.areas[0].weight.value);
    let (start, e, h) = (filter_norm(&v1_start), v1(&exact), v1(&local));
    println!("V1's mean filter norm: {start:.3} at the start, {e:.3} (exact), {h:.3} (hebbian)");
    assert!(
        h > e,
        "the Hebbian term grows V1's filters towards unit norm"
    );
}
