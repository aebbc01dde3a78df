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

/// `$PADSIM_BF16_PATH` naming no path this CPU runs stops padsim before any work, with the
/// variable, the value and the paths it takes in the message.
#[test]
fn a_mistyped_bf16_path_is_named_before_any_work() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_padsim"))
        .args(["model"])
        .env("PADSIM_BF16_PATH", "sse")
        .output()
        .expect("the padsim binary runs");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no work was done");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = "PADSIM_BF16_PATH: 'sse': expected amx, avx512_bf16 or portable";
    assert!(stderr.contains(expected), "{stderr}");
}
