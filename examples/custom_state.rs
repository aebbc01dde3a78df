//! A brain state written outside padsim, used in a TOML schedule beside Wake and REM.
//!
//! *Quiet-wake replay*: between episodes the hippocampus replays the newest memory, the
//! feedback pathway turns it into a faint, noisy image, and the feedforward pathway learns to
//! map that image back onto the memory:
//!
//! ```text
//! z = newest memory;   x' = G(z) + σ·n,  n ~ N(0, I) per pixel     (G frozen)
//! L = Q · MSE(E_latent(x'), z)                                     (E plastic)
//! ```
//!
//! The state is registered by name, so the schedule below names it like a built-in one, its
//! settings (`weight`, `pixel_noise`) read from its phase table; its loss reaches the run file
//! as `/losses/quiet_wake/replay`.
//!
//! ```sh
//! cargo run --release --example custom_state
//! ```

use ndarray::Array2;
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::StandardNormal;
use padsim::kernels::loss;
use padsim::prelude::*;
use padsim::record::RunFile;

/// Quiet-wake replay, with its settings (what a `[[schedule.phases]]` table may hold).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct QuietWake {
    /// Q: weight of the replay loss.
    weight: f64,
    /// σ: standard deviation of the pixel noise on the replayed image.
    pixel_noise: f32,
}

impl Default for QuietWake {
    fn default() -> Self {
        QuietWake {
            weight: 1.0,
            pixel_noise: 0.1,
        }
    }
}

impl BrainState for QuietWake {
    fn name(&self) -> &str {
        "quiet_wake"
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["replay"]
    }

    /// E learns, G is frozen, the discriminator neurons are not trained (a `[conductor.quiet_wake]`
    /// table overrides it).
    fn neuromodulation(&self) -> Neuromodulation {
        Neuromodulation::FEEDFORWARD_ONLY
    }

    fn run(&self, brain: &mut Brain, _x: &Activity, nm: &Neuromodulation) -> Losses {
        let z = brain.recall(&MemoryMix::CURRENT);
        brain.begin_state(nm);
        let mut image = brain.cortex.feedback.forward(z.view()).clone();
        for v in image.as_mut_slice() {
            *v += self.pixel_noise * brain.rng.sample::<f32, _>(StandardNormal);
        }
        let z_replay = brain.cortex.feedforward.encode(&image);
        let (replay, grad) = loss::mse(
            z_replay.as_slice().expect("contiguous"),
            z.as_slice().expect("contiguous"),
        );
        let grad =
            Array2::from_shape_vec(z.raw_dim(), grad).expect("z's shape") * self.weight as f32;
        if nm.feedforward_plastic {
            brain
                .cortex
                .feedforward
                .backward(Some(grad.view()), None, false);
        }
        brain.apply_plasticity(nm);
        vec![("replay", replay)]
    }
}

const CONFIG: &str = r#"
dataset = "synthetic"
epochs = 3
batch_size = 32
max_cycles_per_epoch = 8
run_name = "custom_state"

[model]
nf = 8
nz = 16

[data.synthetic]
train_size = 256
test_size = 32

[record]
images_every = 0

[[schedule.phases]]
state = "wake"

[[schedule.phases]]
state = "quiet_wake"
pixel_noise = 0.2

[[schedule.phases]]
state = "rem"
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    register_state::<QuietWake>();
    let mut config = Config::from_toml(CONFIG)?;
    config.out_dir = std::env::temp_dir().join("padsim-examples");
    // Start afresh each time the example runs (the runner never overwrites a finished run).
    let run_dir = config.run_dir();
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }

    let summary = padsim::experiment::train(&config, TrainOptions::default())?;
    println!(
        "trained {} epochs ({} cycles of wake, quiet_wake, rem) in {:.1} s; run in {}",
        summary.epochs_completed,
        summary.cycles,
        summary.seconds,
        summary.run_dir.display()
    );
    let run = RunFile::open_read(summary.run_dir.join(padsim::experiment::runner::RUN_FILE))?;
    let replay = run.read_losses("quiet_wake", "replay")?;
    println!("/losses/quiet_wake/replay per epoch: {replay:.5?}");
    assert_eq!(replay.len(), config.epochs, "one mean per epoch");
    for (state, term) in run.loss_names()? {
        println!("  recorded: /losses/{state}/{term}");
    }
    Ok(())
}
