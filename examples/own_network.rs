//! A network of dense areas built in code, on 28 × 28 grey images in MNIST's idx format (no
//! resizing: the network's input is 28 × 28), trained with full PAD through
//! `experiment::train_brain`.
//!
//! ```text
//! E: 1×28×28 → V1 dense 256 → V2 dense 128 → IT (latent) dense 32, identity
//!                                           → discriminator dense 1, sigmoid
//! G: z 32 → dense 128 → dense 256 → dense 28×28 maps, tanh
//! ```
//!
//! With a folder of MNIST's four idx files as argument it trains on them; without one it
//! writes the built-in shapes, drawn at 28 × 28 and turned grey, as idx files to the system's
//! temporary directory and trains on those.
//!
//! ```sh
//! cargo run --release --example own_network [-- /path/to/mnist]
//! ```
//!
//! On the grey shapes dense areas learn little that a linear probe can use (converged probe
//! 22.6% untrained, 20.7% after 2 epochs, 23.4% after 10; the SGD probe 10.1% → 14.8%): the
//! example shows the mechanics; convolutional areas are what learn these shapes.

use padsim::data::synthetic::{self, SyntheticConfig};
use padsim::experiment::report::learning_summary;
use padsim::experiment::runner::RUN_FILE;
use padsim::prelude::*;
use std::path::{Path, PathBuf};

const SIDE: usize = 28;

fn architecture() -> Architecture {
    let dense = |name, units, region| AreaSpec::dense(name, units).region(region);
    Architecture {
        image_channels: 1,
        image_side: SIDE,
        feedforward: vec![dense("fc1", 256, "V1"), dense("fc2", 128, "V2")],
        latent: dense("latent", 32, "IT").activation(Activation::Identity),
        discriminator: dense("dis", 1, "discriminator").activation(Activation::Sigmoid),
        feedback: vec![
            dense("fc1", 128, "V2 (feedback)"),
            dense("fc2", 256, "V1 (feedback)"),
            dense("out", 1, "retina (feedback)")
                .side(SIDE)
                .activation(Activation::Tanh),
        ],
    }
}

/// Writes `images` (`[N, 28·28]` grey bytes) and `labels` as an idx pair.
fn write_idx(dir: &Path, prefix: &str, images: &[u8], labels: &[u8]) -> std::io::Result<()> {
    let n = labels.len() as u32;
    let mut bytes = [0x0803u32, n, SIDE as u32, SIDE as u32]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect::<Vec<u8>>();
    bytes.extend_from_slice(images);
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), bytes)?;
    let mut bytes: Vec<u8> = [0x0801u32, n]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    bytes.extend_from_slice(labels);
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), bytes)
}

/// The built-in shapes at 28 × 28, each pixel the mean of its three channels, as idx files.
fn write_grey_shapes(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let shapes = synthetic::generate_sized(&SyntheticConfig::default(), SIDE)?;
    for (prefix, set) in [("train", &shapes.train), ("t10k", &shapes.test)] {
        let plane = SIDE * SIDE;
        let grey: Vec<u8> = set
            .images()
            .chunks_exact(3 * plane)
            .flat_map(|rgb| {
                (0..plane).map(move |i| {
                    let sum: u32 = (0..3).map(|c| u32::from(rgb[c * plane + i])).sum();
                    (sum / 3) as u8
                })
            })
            .collect();
        write_idx(dir, prefix, &grey, set.labels())?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = std::env::temp_dir().join("padsim-examples/grey_shapes_28");
            write_grey_shapes(&dir)?;
            dir
        }
    };
    let mut config =
        Config::from_toml("dataset = \"mnist\"\nepochs = 2\n[model]\nimage_side = 28\n")?;
    config.data_dir = Some(data_dir.clone());
    config.out_dir = std::env::temp_dir().join("padsim-examples");
    config.run_name = "own_network".into();
    let run_dir = config.run_dir();
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }

    let arch = architecture();
    println!("dense PAD on {}:\n{}", data_dir.display(), arch.describe()?);
    let brain = Brain::new(
        &arch,
        config.resolved_schedule(),
        config.optimiser,
        config.seed,
    );
    let summary = train_brain(&config, brain, TrainOptions::default())?;
    println!(
        "{} epochs, {} cycles in {:.1} s",
        summary.epochs_completed, summary.cycles, summary.seconds
    );
    if let Some(learned) = learning_summary(&summary.run_dir.join(RUN_FILE))? {
        println!("{learned}");
    }
    println!("run: {}", summary.run_dir.display());
    Ok(())
}
