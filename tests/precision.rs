//! `precision = "bf16"`: bfloat16 synaptic products (kernels::bf16) in a whole training run.

use padsim::experiment::{self, Config, TrainOptions};

const CONFIG: &str = r#"
seed = 5
dataset = "synthetic"
epochs = 1
batch_size = 16
max_cycles_per_epoch = 6
[model]
nf = 8
nz = 16
[data.synthetic]
train_size = 320
test_size = 160
[eval]
before_and_after = false
"#;

/// `precision = "bf16"`: the run trains with bfloat16 products, gives the same bits on 1 and 2
/// threads, and other numbers than f32.
#[test]
fn bf16_precision_trains_repeatably_on_any_thread_count_and_differs_from_f32() {
    let root = tempfile::tempdir().unwrap();
    let run = |precision: &str, threads: usize| -> Vec<u64> {
        let mut config =
            Config::from_toml(&format!("precision = \"{precision}\"\n{CONFIG}")).unwrap();
        config.out_dir = root.path().join(format!("{precision}_{threads}"));
        config.threads = threads;
        let summary = experiment::train(&config, TrainOptions::default()).unwrap();
        summary
            .last_epoch_losses
            .iter()
            .map(|(_, _, value)| value.to_bits())
            .collect()
    };
    let bf16 = run("bf16", 1);
    assert_eq!(bf16, run("bf16", 2));
    assert_ne!(bf16, run("f32", 1));
}
