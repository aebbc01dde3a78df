//! A custom wake–sleep cycle built in code and trained with the experiment runner.
//!
//! The cycle: Wake, two NREM phases (each with its own occlusion mask), then REM dreaming from
//! spontaneous activity alone (no memories). Trains briefly on the built-in synthetic images
//! with tiny widths, writes the run to the system's temporary directory, and prints the
//! per-epoch losses read back from the run file.
//!
//! ```sh
//! cargo run --release --example custom_schedule
//! ```

use padsim::brain::{MemoryMix, Phase, Rem, Schedule};
use padsim::data::synthetic::SyntheticConfig;
use padsim::data::{DatasetKind, LoadOptions};
use padsim::experiment::config::{ModelConfig, RecordConfig};
use padsim::experiment::{self, Config, TrainOptions};
use padsim::record::RunFile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schedule = Schedule {
        phases: vec![
            Phase::wake(),
            Phase::nrem(),
            Phase::nrem(),
            Phase::new(Rem {
                weight: 1.0,
                dream: MemoryMix {
                    current: 0.0,
                    older: 0.0,
                    noise: 1.0,
                },
            }),
        ],
    };
    let config = Config {
        dataset: DatasetKind::Synthetic,
        schedule: Some(schedule),
        epochs: 3,
        batch_size: 32,
        max_cycles_per_epoch: Some(8),
        out_dir: std::env::temp_dir().join("padsim-examples"),
        run_name: "custom_schedule".into(),
        model: ModelConfig {
            nf: 8,
            nz: 16,
            ..ModelConfig::default()
        },
        data: LoadOptions {
            synthetic: SyntheticConfig {
                seed: 0,
                train_size: 256,
                test_size: 32,
            },
            ..LoadOptions::default()
        },
        record: RecordConfig {
            images_every: 0,
            ..RecordConfig::default()
        },
        ..Config::default()
    };
    // Start afresh each time the example runs (the runner never overwrites a finished run).
    let run_dir = config.run_dir();
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }

    let summary = experiment::train(&config, TrainOptions::default())?;
    println!(
        "trained {} epochs ({} cycles of wake, nrem, nrem, rem) in {:.1} s; run in {}",
        summary.epochs_completed,
        summary.cycles,
        summary.seconds,
        summary.run_dir.display()
    );

    let run = RunFile::open_read(summary.run_dir.join(experiment::runner::RUN_FILE))?;
    println!("per-epoch means from run.h5:");
    for (state, term) in run.loss_names()? {
        let values: Vec<String> = run
            .read_losses(&state, &term)?
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect();
        println!("  {state}/{term}: {}", values.join(", "));
    }
    println!("last epoch:");
    for (state, term, value) in &summary.last_epoch_losses {
        println!("  {state}/{term} = {value:.4}");
    }
    Ok(())
}
