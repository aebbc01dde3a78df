//! Sweeps and reports end to end through the `padsim` binary: a tiny sweep (2 conditions × 2
//! seeds on the built-in data) run locally, skipped on a second pass without touching a file,
//! and summarised by `padsim report`, whose numbers are recomputed here from the run files; the
//! SLURM script's tasks run one by one exactly as the script runs them; and a sweep cut off by
//! Ctrl-C resumes to the same bits as an uninterrupted run.

use padsim::experiment::sweep::SweepSpec;
use padsim::experiment::{self, TrainOptions};
use padsim::record::{Checkpoint, RunFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A sweep small enough to run in seconds: 16-image batches, a few cycles per epoch, a small
/// cortex and cheap evaluation settings.
fn spec(name: &str, conditions: &str, seeds: &str, epochs: usize, cycles: usize) -> String {
    format!(
        r#"
name = "{name}"
out_dir = "runs"
conditions = {conditions}
seeds = {seeds}
datasets = ["synthetic"]

[base]
epochs = {epochs}
batch_size = 16
max_cycles_per_epoch = {cycles}
[base.model]
nf = 8
nz = 16
[base.data.synthetic]
train_size = 960
test_size = 160
[base.record]
images = 16
[base.eval]
every = 1
pca_points = 50
probe = {{ epochs = 2 }}
geometry = {{ intra_pairs_per_class = 20, inter_pairs = 200, occluded_pairs = 200 }}

[local]
parallel_runs = 2
threads_per_run = 1

[slurm]
cpus_per_task = 3
time = "00:30:00"
"#
    )
}

fn padsim(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_padsim"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the padsim binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(output: &Output, what: &str) -> String {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        output.status.success(),
        "{what} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(path.clone(), (std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    files
}

fn assert_unchanged(
    before: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
    after: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files were added or removed"
    );
    for (path, (bytes, modified)) in before {
        let (after_bytes, after_modified) = &after[path];
        assert!(bytes == after_bytes, "{} changed", path.display());
        assert_eq!(modified, after_modified, "{} was rewritten", path.display());
    }
}

/// Whether a run is trained for `epochs` epochs and evaluated after the last, read here
/// without the sweep's own status code.
fn assert_complete(run_dir: &Path, epochs: u64) {
    let header = Checkpoint::read_header(run_dir.join("checkpoint.h5"))
        .unwrap_or_else(|e| panic!("{}: {e}", run_dir.display()));
    assert_eq!(
        (header.epoch, header.batch),
        (epochs, 0),
        "{}",
        run_dir.display()
    );
    let run = RunFile::open_read(run_dir.join("run.h5")).unwrap();
    let evaluated = run.read_i64_1d("eval/epoch").unwrap();
    assert!(
        evaluated.contains(&(epochs as i64)),
        "{}: evaluated at {evaluated:?}",
        run_dir.display()
    );
}

/// Mean and sample SEM, computed here independently of the report's code.
fn mean_and_sem(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sum_of_squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (mean, (sum_of_squares / (n - 1.0)).sqrt() / n.sqrt())
}

fn assert_close(reported: f64, expected: f64, what: &str) {
    assert!(
        (reported - expected).abs() <= 1e-12 * expected.abs().max(1e-3),
        "{what}: report says {reported}, run files give {expected}"
    );
}

/// A CSV file as rows of named fields (the report's fields hold no commas or quotes here).
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let content = std::fs::read_to_string(path).unwrap();
    assert!(!content.contains('"'), "{}", path.display());
    let mut lines = content.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), header.len(), "{line}");
            header
                .iter()
                .zip(fields)
                .map(|(h, f)| (h.to_string(), f.to_string()))
                .collect()
        })
        .collect()
}

/// The value of a measure in a run file at its last evaluation.
fn final_value(run: &RunFile, path: &str) -> f64 {
    *run.read_f64_1d(path).unwrap().last().unwrap()
}

fn assert_valid_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 5_000,
        "{}: not a drawn PNG ({} bytes)",
        path.display(),
        bytes.len()
    );
}

#[test]
fn a_tiny_sweep_runs_skips_and_reports_numbers_that_match_its_run_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    std::fs::write(
        dir.join("tiny.toml"),
        spec("tiny", r#"["full_pad", "no_rem"]"#, "[0, 1]", 1, 3),
    )
    .unwrap();
    let sweep_dir = dir.join("runs/tiny");

    let first = assert_success(&padsim(dir, &["sweep", "tiny.toml"]), "first pass");
    assert_eq!(first.matches(": started").count(), 4, "{first}");
    assert_eq!(first.matches(": finished in").count(), 4, "{first}");
    assert!(first.contains("4 finished, 0 skipped"), "{first}");
    let names = [
        "synthetic_full_pad_seed0",
        "synthetic_no_rem_seed0",
        "synthetic_full_pad_seed1",
        "synthetic_no_rem_seed1",
    ];
    for name in names {
        assert_complete(&sweep_dir.join(name), 1);
        assert!(sweep_dir.join("logs").join(format!("{name}.log")).exists());
    }

    let before = snapshot(&sweep_dir);
    let second = assert_success(&padsim(dir, &["sweep", "tiny.toml"]), "second pass");
    assert_eq!(
        second.matches(": skipped (complete)").count(),
        4,
        "{second}"
    );
    assert!(second.contains("0 finished, 4 skipped"), "{second}");
    assert!(!second.contains(": started"), "{second}");
    assert_unchanged(&before, &snapshot(&sweep_dir));
    let list = assert_success(&padsim(dir, &["sweep", "tiny.toml", "--list"]), "--list");
    assert_eq!(list.matches("  complete").count(), 4, "{list}");

    let report = assert_success(&padsim(dir, &["report", "runs/tiny"]), "report");
    assert!(report.contains("4 runs in 2 groups"), "{report}");
    let out = sweep_dir.join("report");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();

    // Each group's numbers, recomputed from the two seeds' run files.
    let runs = |condition: &str| -> Vec<RunFile> {
        [0, 1]
            .iter()
            .map(|seed| {
                RunFile::open_read(
                    sweep_dir.join(format!("synthetic_{condition}_seed{seed}/run.h5")),
                )
                .unwrap()
            })
            .collect()
    };
    let linear = read_csv(&out.join("linear_separability.csv"));
    assert_eq!(linear.len(), 2 * 4, "2 conditions × 2 probes × 2 splits");
    for row in &linear {
        let (condition, probe, split) = (&row["condition"], &row["probe"], &row["split"]);
        assert_eq!(
            (
                row["dataset"].as_str(),
                row["epoch"].as_str(),
                row["n"].as_str(),
                row["seeds"].as_str()
            ),
            ("synthetic", "1", "2", "0;1"),
            "{row:?}"
        );
        let group = if probe == "sgd" {
            "linear"
        } else {
            "converged"
        };
        let values: Vec<f64> = runs(condition)
            .iter()
            .map(|run| final_value(run, &format!("eval/{group}/{split}_accuracy")))
            .collect();
        let (mean, sem) = mean_and_sem(&values);
        let what = format!("{condition} {probe} {split}");
        assert_close(row["mean"].parse().unwrap(), mean, &what);
        assert_close(row["sem"].parse().unwrap(), sem, &what);
        if split == "test" {
            let cell = format!("{:.1} ± {:.1} (n = 2)", 100.0 * mean, 100.0 * sem);
            let line = markdown
                .lines()
                .find(|l| l.starts_with(&format!("| {condition} |")) && l.contains(&cell))
                .unwrap_or_else(|| panic!("no cell {cell:?} for {what} in report.md:\n{markdown}"));
            assert!(!line.is_empty());
        }
    }

    let by_epoch = read_csv(&out.join("linear_separability_by_epoch.csv"));
    assert_eq!(
        by_epoch.len(),
        2 * 2 * 2,
        "2 conditions × 2 probes × epochs 0 and 1"
    );
    for row in &by_epoch {
        let epoch: i64 = row["epoch"].parse().unwrap();
        let group = if row["probe"] == "sgd" {
            "linear"
        } else {
            "converged"
        };
        let values: Vec<f64> = runs(&row["condition"])
            .iter()
            .map(|run| {
                let epochs = run.read_i64_1d("eval/epoch").unwrap();
                let at = epochs.iter().position(|&e| e == epoch).unwrap();
                run.read_f64_1d(&format!("eval/{group}/test_accuracy"))
                    .unwrap()[at]
            })
            .collect();
        let (mean, sem) = mean_and_sem(&values);
        let what = format!("{} {} epoch {epoch}", row["condition"], row["probe"]);
        assert_close(row["mean"].parse().unwrap(), mean, &what);
        assert_close(row["sem"].parse().unwrap(), sem, &what);
    }

    let occlusion = read_csv(&out.join("occlusion.csv"));
    assert_eq!(
        occlusion.len(),
        2 * 2 * 11,
        "2 conditions × 2 probes × 11 levels"
    );
    for row in &occlusion {
        let level = (row["p"].parse::<f64>().unwrap() * 10.0).round() as usize;
        let dataset = if row["probe"] == "sgd" {
            "eval/occlusion/test_accuracy"
        } else {
            "eval/occlusion/converged_test_accuracy"
        };
        let values: Vec<f64> = runs(&row["condition"])
            .iter()
            .map(|run| {
                let curves = run.read_f64_2d(dataset).unwrap();
                curves[[curves.nrows() - 1, level]]
            })
            .collect();
        let (mean, sem) = mean_and_sem(&values);
        let what = format!("{} {} p={}", row["condition"], row["probe"], row["p"]);
        assert_close(row["mean"].parse().unwrap(), mean, &what);
        assert_close(row["sem"].parse().unwrap(), sem, &what);
    }

    let geometry = read_csv(&out.join("geometry.csv"));
    assert_eq!(geometry.len(), 2 * 5);
    for row in &geometry {
        let values: Vec<f64> = runs(&row["condition"])
            .iter()
            .map(|run| final_value(run, &format!("eval/geometry/{}", row["measure"])))
            .collect();
        let (mean, sem) = mean_and_sem(&values);
        assert!(mean > 0.0, "{row:?}");
        let what = format!("{} {}", row["condition"], row["measure"]);
        assert_close(row["mean"].parse().unwrap(), mean, &what);
        assert_close(row["sem"].parse().unwrap(), sem, &what);
        if row["measure"] == "intra_inter_ratio" {
            let cell = format!("{mean:.3} ± {sem:.3}");
            assert!(markdown.contains(&cell), "{cell} not in report.md");
        }
    }
    assert_eq!(read_csv(&out.join("runs.csv")).len(), 4);
    for figure in [
        "fig4_linear_separability.png",
        "fig4_linear_separability_epochs_synthetic.png",
        "fig5_occlusion_synthetic.png",
        "fig6_distance_ratios.png",
    ] {
        assert_valid_png(&out.join(figure));
        assert!(markdown.contains(&format!("]({figure})")), "{figure}");
    }
}

#[test]
fn the_slurm_script_runs_each_task_and_a_second_pass_skips_them() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    std::fs::write(
        dir.join("array.toml"),
        spec("array", r#"["no_nrem", "wake_only"]"#, "[4, 5]", 1, 2)
            .replace("threads_per_run = 1", "threads_per_run = 2"),
    )
    .unwrap();
    let written = assert_success(&padsim(dir, &["sweep", "array.toml", "--slurm"]), "--slurm");
    let script_path = dir.join("runs/array/sweep.slurm");
    assert!(written.contains("sbatch "), "{written}");
    let script = std::fs::read_to_string(&script_path).unwrap();

    let option = |name: &str| -> String {
        let prefix = format!("#SBATCH --{name}=");
        script
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{script}"))
            .to_string()
    };
    let last_task: usize = option("array")
        .strip_prefix("0-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("--array={}", option("array")));
    assert_eq!(last_task + 1, 4, "one task per run");
    assert_eq!(option("cpus-per-task"), "3");
    assert_eq!(option("time"), "00:30:00");
    assert_eq!(option("job-name"), "array");
    let log_pattern = option("output");
    assert!(Path::new(&log_pattern).is_absolute() && log_pattern.ends_with("%A_%a.out"));
    assert!(
        dir.join("runs/array/logs").is_dir(),
        "SLURM needs the log folder to exist"
    );
    let command = script.lines().last().unwrap();
    let spec_path = std::fs::canonicalize(dir.join("array.toml")).unwrap();
    assert!(
        command.contains(&format!(
            " sweep {} --task \"${{SLURM_ARRAY_TASK_ID",
            spec_path.display()
        )),
        "{command}"
    );

    // Each task as SLURM would start it: the script itself, from another directory, with the
    // array index and the task's CPU count in the environment.
    let run_task = |index: usize| -> Output {
        Command::new("bash")
            .arg(&script_path)
            .current_dir("/")
            .env("SLURM_ARRAY_TASK_ID", index.to_string())
            .env("SLURM_CPUS_PER_TASK", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for index in 0..=last_task {
        let stdout = assert_success(&run_task(index), &format!("task {index}"));
        assert!(
            stdout.contains(": started") && stdout.contains(": finished"),
            "{stdout}"
        );
    }
    let sweep_dir = dir.join("runs/array");
    for name in [
        "synthetic_no_nrem_seed4",
        "synthetic_wake_only_seed4",
        "synthetic_no_nrem_seed5",
        "synthetic_wake_only_seed5",
    ] {
        assert_complete(&sweep_dir.join(name), 1);
        // Trained with SLURM_CPUS_PER_TASK threads, not the spec's threads_per_run.
        let config = std::fs::read_to_string(sweep_dir.join(name).join("config.toml")).unwrap();
        assert!(config.contains("\nthreads = 1\n"), "{name}: {config}");
    }

    let before = snapshot(&sweep_dir);
    for index in 0..=last_task {
        let stdout = assert_success(&run_task(index), &format!("task {index} again"));
        assert!(stdout.contains(": skipped (complete)"), "{stdout}");
    }
    assert_unchanged(&before, &snapshot(&sweep_dir));

    // Outside an array job, and past its end, the task says what is wrong.
    let outside = Command::new("bash").arg(&script_path).output().unwrap();
    assert!(!outside.status.success());
    assert!(
        text(&outside.stderr).contains("SLURM_ARRAY_TASK_ID"),
        "{}",
        text(&outside.stderr)
    );
    let past = padsim(dir, &["sweep", "array.toml", "--task", "4"]);
    assert!(!past.status.success());
    assert!(
        text(&past.stderr).contains("numbered 0 to 3"),
        "{}",
        text(&past.stderr)
    );
}

/// Waits until the run's checkpoint records at least `epochs` epochs.
fn wait_for_epochs(run_dir: &Path, epochs: u64, sweep: &mut std::process::Child) {
    let start = Instant::now();
    loop {
        if let Ok(header) = Checkpoint::read_header(run_dir.join("checkpoint.h5")) {
            if header.epoch >= epochs {
                return;
            }
        }
        if let Some(status) = sweep.try_wait().unwrap() {
            panic!("the sweep exited ({status}) before epoch {epochs} was checkpointed");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after 120 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_same_run(reference: &Path, other: &Path) {
    let (a, b) = (
        RunFile::open_read(reference.join("run.h5")).unwrap(),
        RunFile::open_read(other.join("run.h5")).unwrap(),
    );
    let bits = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let names = a.loss_names().unwrap();
    assert_eq!(names, b.loss_names().unwrap());
    for (state, term) in names {
        assert_eq!(
            bits(a.read_losses(&state, &term).unwrap()),
            bits(b.read_losses(&state, &term).unwrap()),
            "{state}/{term}"
        );
    }
    assert_eq!(
        a.read_i64_1d("eval/epoch").unwrap(),
        b.read_i64_1d("eval/epoch").unwrap()
    );
    for path in [
        "eval/linear/test_accuracy",
        "eval/converged/test_accuracy",
        "eval/geometry/intra_inter_ratio",
    ] {
        assert_eq!(
            bits(a.read_f64_1d(path).unwrap()),
            bits(b.read_f64_1d(path).unwrap()),
            "{path}"
        );
    }
    let (ca, cb) = (
        Checkpoint::read(reference.join("checkpoint.h5")).unwrap(),
        Checkpoint::read(other.join("checkpoint.h5")).unwrap(),
    );
    assert_eq!(ca.parameters, cb.parameters);
    assert_eq!(ca.optimisers, cb.optimisers);
}

#[test]
fn a_cut_off_sweep_resumes_to_the_bits_of_an_uninterrupted_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let text_of_spec = spec("cut", r#"["full_pad"]"#, "[2]", 4, 12);
    std::fs::write(dir.join("cut.toml"), &text_of_spec).unwrap();
    let run_dir = dir.join("runs/cut/synthetic_full_pad_seed2");

    // The same run, uninterrupted, in this process.
    let mut reference = SweepSpec::from_toml(&text_of_spec).unwrap().tasks()[0]
        .config
        .clone();
    reference.out_dir = dir.join("reference");
    experiment::train(&reference, TrainOptions::default()).unwrap();
    let reference_dir = reference.run_dir();

    // Ctrl-C to the sweep (not to its child, which runs in its own process group): the sweep
    // passes it on, the run checkpoints and stops, the sweep says so and fails.
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_padsim"))
        .current_dir(dir)
        .args(["sweep", "cut.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_epochs(&run_dir, 1, &mut sweep);
    let interrupt = Command::new("kill")
        .args(["-s", "INT", &sweep.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let output = sweep.wait_with_output().unwrap();
    let stdout = text(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains(": interrupted after"), "{stdout}");
    assert!(stdout.contains("1 interrupted"), "{stdout}");
    let header = Checkpoint::read_header(run_dir.join("checkpoint.h5")).unwrap();
    assert!(
        header.epoch < 4,
        "the run finished before the interrupt reached it"
    );

    let resumed = assert_success(&padsim(dir, &["sweep", "cut.toml"]), "resuming pass");
    assert!(resumed.contains(": resumed "), "{resumed}");
    assert!(resumed.contains("1 finished"), "{resumed}");
    assert_complete(&run_dir, 4);
    assert_same_run(&reference_dir, &run_dir);

    // A run file without a checkpoint (killed in its first epoch) is started over.
    std::fs::remove_file(run_dir.join("checkpoint.h5")).unwrap();
    let again = assert_success(&padsim(dir, &["sweep", "cut.toml"]), "starting over");
    assert!(again.contains(": started over"), "{again}");
    assert_same_run(&reference_dir, &run_dir);

    // A spec that would train something else into the same folder is refused, and the run
    // is left as it was.
    let before = snapshot(&run_dir);
    std::fs::write(
        dir.join("other.toml"),
        text_of_spec.replace("nz = 16", "nz = 8"),
    )
    .unwrap();
    let refused = padsim(dir, &["sweep", "other.toml"]);
    assert!(!refused.status.success());
    let stdout = text(&refused.stdout);
    assert!(
        stdout.contains("failed") && stdout.contains("different configuration"),
        "{stdout}"
    );
    assert_unchanged(&before, &snapshot(&run_dir));
}

#[test]
fn a_run_trained_without_evaluation_is_evaluated_and_reports_explain_what_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let text_of_spec = spec("late", r#"["no_rem"]"#, "[0]", 1, 2);
    std::fs::write(dir.join("late.toml"), &text_of_spec).unwrap();
    let mut config = SweepSpec::from_toml(&text_of_spec).unwrap().tasks()[0]
        .config
        .clone();
    config.out_dir = dir.join(&config.out_dir);
    config.eval.every = 0;
    config.eval.before_and_after = false;
    experiment::train(&config, TrainOptions::default()).unwrap();

    // Nothing evaluated yet: the report names the run and why it cannot use it.
    let report = padsim(dir, &["report", "runs/late"]);
    assert!(!report.status.success());
    let stderr = text(&report.stderr);
    assert!(
        stderr.contains("synthetic_no_rem_seed0") && stderr.contains("no evaluation recorded"),
        "{stderr}"
    );

    let stdout = assert_success(&padsim(dir, &["sweep", "late.toml"]), "sweep");
    assert!(
        stdout.contains(": evaluating") && stdout.contains(": finished"),
        "{stdout}"
    );
    assert_complete(&dir.join("runs/late/synthetic_no_rem_seed0"), 1);
    assert_success(&padsim(dir, &["report", "runs/late"]), "report");

    let empty = tempfile::tempdir().unwrap();
    let nothing = padsim(dir, &["report", &empty.path().to_string_lossy()]);
    assert!(!nothing.status.success());
    assert!(
        text(&nothing.stderr).contains("no evaluated runs"),
        "{}",
        text(&nothing.stderr)
    );
}

// --- A real SLURM cluster ---------------------------------------------------------------------
//
// These tests submit the sweep's script with `sbatch` to the cluster this machine runs, so they
// are ignored by a plain `cargo test` (which says so) and run where one is up:
//
//     .ci/slurm-cluster && cargo test --test sweep -- --ignored --test-threads=1
//
// Asked to run without a cluster, they fail and say why; they never pass without SLURM.

/// Fails, naming what is missing, unless a SLURM controller answers with a usable node.
fn require_slurm_cluster() {
    let sinfo = Command::new("sinfo")
        .args(["--noheader", "--format=%T"])
        .output()
        .unwrap_or_else(|e| {
            panic!("no SLURM here: sinfo cannot run ({e}); .ci/slurm-cluster starts a one-node cluster")
        });
    let states = text(&sinfo.stdout);
    assert!(
        sinfo.status.success()
            && states
                .lines()
                .any(|s| ["idle", "mixed", "allocated"].contains(&s.trim_end_matches('*'))),
        "SLURM has no usable node (sinfo: {}; {}); .ci/slurm-cluster starts a one-node cluster",
        states.trim(),
        text(&sinfo.stderr).trim()
    );
}

/// `sbatch --wait [OPTIONS] SCRIPT`: the job's exit status and its id.
fn sbatch_and_wait(script: &Path, options: &[&str]) -> (std::process::ExitStatus, String) {
    let output = Command::new("sbatch")
        .args(["--wait", "--parsable"])
        .args(options)
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .expect("sbatch runs");
    let stdout = text(&output.stdout);
    let job = stdout.lines().next().unwrap_or_default().trim().to_string();
    assert!(
        job.chars().all(|c| c.is_ascii_digit()) && !job.is_empty(),
        "sbatch did not submit ({}):\n{stdout}\n{}",
        output.status,
        text(&output.stderr)
    );
    (output.status, job)
}

/// What array task `index` of `job` printed.
fn slurm_log(sweep_dir: &Path, job: &str, index: usize) -> String {
    let path = sweep_dir.join(format!("logs/slurm_{job}_{index}.out"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes the spec and its SLURM script; returns the script's path.
fn slurm_sweep(dir: &Path, name: &str, spec_text: &str) -> PathBuf {
    std::fs::write(dir.join(format!("{name}.toml")), spec_text).unwrap();
    assert_success(
        &padsim(dir, &["sweep", &format!("{name}.toml"), "--slurm"]),
        "--slurm",
    );
    dir.join(format!("runs/{name}/sweep.slurm"))
}

#[test]
#[ignore = "needs a SLURM cluster: .ci/slurm-cluster, then cargo test --test sweep -- --ignored"]
fn a_real_slurm_cluster_runs_every_task_of_the_array_and_a_second_submission_skips_them_all() {
    require_slurm_cluster();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let script = slurm_sweep(
        dir,
        "cluster",
        &spec("cluster", r#"["no_nrem", "wake_only"]"#, "[4, 5]", 1, 2)
            .replace("cpus_per_task = 3", "cpus_per_task = 1"),
    );
    let sweep_dir = dir.join("runs/cluster");
    let names = [
        "synthetic_no_nrem_seed4",
        "synthetic_wake_only_seed4",
        "synthetic_no_nrem_seed5",
        "synthetic_wake_only_seed5",
    ];

    let (status, job) = sbatch_and_wait(&script, &[]);
    let logs: Vec<String> = (0..4).map(|i| slurm_log(&sweep_dir, &job, i)).collect();
    assert!(status.success(), "job {job}: {status}\n{}", logs.join("\n"));
    for (index, log) in logs.iter().enumerate() {
        assert!(
            log.contains(&format!("{}: started", names[index])) && log.contains(": finished"),
            "task {index}:\n{log}"
        );
    }
    for name in names {
        assert_complete(&sweep_dir.join(name), 1);
    }

    let before: Vec<_> = names.iter().map(|n| snapshot(&sweep_dir.join(n))).collect();
    let (status, job) = sbatch_and_wait(&script, &[]);
    assert!(status.success(), "second submission, job {job}: {status}");
    for index in 0..4 {
        let log = slurm_log(&sweep_dir, &job, index);
        assert!(log.contains(": skipped (complete)"), "task {index}:\n{log}");
    }
    for (name, before) in names.iter().zip(&before) {
        assert_unchanged(before, &snapshot(&sweep_dir.join(name)));
    }

    // Every run is reported.
    assert_success(&padsim(dir, &["report", "runs/cluster"]), "report");
    let runs = read_csv(&sweep_dir.join("report/runs.csv"));
    assert_eq!(runs.len(), 4, "{runs:?}");
}

#[test]
#[ignore = "needs a SLURM cluster: .ci/slurm-cluster, then cargo test --test sweep -- --ignored"]
fn a_task_stopped_by_its_slurm_time_limit_checkpoints_and_resubmissions_finish_it_bit_for_bit() {
    require_slurm_cluster();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    // A one-minute limit whose signal comes 50 s before it: SLURM sends it on its timer, 10 to
    // 40 s into the task. The run takes longer than that uninterrupted.
    let text_of_spec = spec(
        "limit",
        r#"["full_pad"]"#,
        "[3]",
        LIMIT_EPOCHS,
        LIMIT_CYCLES,
    )
    .replace("batch_size = 16", "batch_size = 64")
    .replace("nf = 8", "nf = 64")
    .replace("train_size = 960", "train_size = 3200")
    .replace("every = 1", &format!("every = {LIMIT_EPOCHS}"))
    .replace("cpus_per_task = 3", "cpus_per_task = 1")
    .replace(
        "time = \"00:30:00\"",
        "time = \"00:01:00\"\nsignal_seconds = 50",
    );
    let script = slurm_sweep(dir, "limit", &text_of_spec);
    assert!(std::fs::read_to_string(&script)
        .unwrap()
        .contains("#SBATCH --signal=B:INT@50\n"));
    let sweep_dir = dir.join("runs/limit");
    let run_dir = sweep_dir.join("synthetic_full_pad_seed3");

    // The same run, uninterrupted, in this process while the cluster works.
    let mut reference = SweepSpec::from_toml(&text_of_spec).unwrap().tasks()[0]
        .config
        .clone();
    reference.out_dir = dir.join("reference");
    let reference_dir = reference.run_dir();
    let uninterrupted = std::thread::spawn(move || {
        let start = Instant::now();
        experiment::train(&reference, TrainOptions::default()).unwrap();
        start.elapsed()
    });

    let (status, job) = sbatch_and_wait(&script, &[]);
    let log = slurm_log(&sweep_dir, &job, 0);
    assert!(!status.success(), "the task was not stopped:\n{log}");
    assert!(log.contains(": interrupted after"), "{log}");
    let progress = Checkpoint::read_header(run_dir.join("checkpoint.h5"))
        .map(|h| (h.epoch, h.batch))
        .unwrap_or_else(|e| panic!("no checkpoint after the time limit: {e}\n{log}"));
    assert!(progress < (LIMIT_EPOCHS as u64, 0), "{progress:?}");

    // The same script submitted again, with a longer limit as one would after a time-out
    // (`sbatch --time` overrides the script's), resumes the run and finishes it.
    let (status, job) = sbatch_and_wait(&script, &["--time=00:15:00"]);
    let log = slurm_log(&sweep_dir, &job, 0);
    assert!(status.success(), "job {job}: {status}\n{log}");
    assert!(
        log.contains(": resumed ") && log.contains(": finished"),
        "{log}"
    );
    assert_complete(&run_dir, LIMIT_EPOCHS as u64);
    let took = uninterrupted.join().unwrap();
    eprintln!("uninterrupted run: {took:?}; the first submission stopped at {progress:?}");
    assert_same_run(&reference_dir, &run_dir);
}

/// The time-limit test's run: long enough that SLURM's signal finds it training (90 cycles of
/// batch 64 at nf = 64: about 90 s on one thread of a 2-core Xeon in the test profile).
const LIMIT_EPOCHS: usize = 3;
const LIMIT_CYCLES: usize = 30;
