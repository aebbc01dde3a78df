//! The `padsim` command line.

use clap::{Parser, Subcommand};
use padsim::brain::schedule::Condition;
use padsim::data::DatasetKind;
use padsim::experiment::{self, Config, TrainOptions};
use padsim::kernels::bf16;
use padsim::kernels::gemm::Precision;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Perturbed and adversarial dreaming: how Wake, NREM and REM shape cortical representations.
#[derive(Parser)]
#[command(name = "padsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a PAD brain; results go to <out>/<run name>/run.h5.
    Train(TrainArgs),
    /// Evaluate a run's feedforward pathway: linear separability, occlusion robustness,
    /// latent geometry, PCA; recorded in its run.h5, figures in <run>/figures/.
    Eval(EvalArgs),
    /// Measure throughput on this machine: whole cycles, the encoder, and the GEMM ceiling
    /// they are compared with (medians over repeats; keep the machine otherwise idle).
    Bench(BenchArgs),
    /// Run a sweep (conditions × seeds × data sets of a spec): here in a queue, one task of a
    /// SLURM array (--task), or write the SLURM script (--slurm). Complete runs are skipped,
    /// cut-off runs resumed.
    Sweep(SweepArgs),
    /// Summarise every run under DIR: linear separability, occlusion curves and distance
    /// ratios per condition and data set (mean ± SEM over seeds), as Markdown, CSV and PNG.
    Report(ReportArgs),
    /// Print the network a configuration builds, area by area (input → output, parameters),
    /// checking every shape without reading any data.
    Model(TrainArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Mini-batch sizes of the cycle measurements (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [64, 256])]
    batch: Vec<usize>,
    /// Thread counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    threads: Vec<usize>,
    /// Cycles timed per repeat.
    #[arg(long, default_value_t = 5)]
    cycles: usize,
    /// Timed repeats; medians are reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Condition whose cycle is timed.
    #[arg(long, default_value_t = Condition::FullPad)]
    condition: Condition,
    /// Batch of the encoder-only measurement (0 skips it).
    #[arg(long, default_value_t = 1000)]
    encoder_batch: usize,
    /// Operands of the products (comma-separated): f32, bf16 (the fastest bfloat16 path this
    /// CPU has: amx, avx512_bf16 or portable).
    #[arg(long, value_delimiter = ',', default_values_t = [Precision::F32])]
    precision: Vec<Precision>,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SweepArgs {
    /// The sweep spec (TOML; see README, "Sweeps and reports").
    spec: PathBuf,
    /// Run only task I (0-based), with $SLURM_CPUS_PER_TASK threads if set.
    #[arg(long, value_name = "I", conflicts_with_all = ["slurm", "list", "parallel"])]
    task: Option<usize>,
    /// Write <out>/<name>/sweep.slurm, a job array of one task per run, and say how to submit it.
    #[arg(long, conflicts_with = "list")]
    slurm: bool,
    /// List the tasks and the state of their runs; run nothing.
    #[arg(long)]
    list: bool,
    /// Runs at the same time (default: the spec's [local] parallel_runs).
    #[arg(long, value_name = "N")]
    parallel: Option<usize>,
    /// Threads per run (default: the spec's, or $SLURM_CPUS_PER_TASK with --task).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Output folder, replacing the spec's out_dir.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A data set's folder: DATASET=DIR, or DIR alone when the sweep has one data set
    /// (repeatable; default: the spec's data_dirs, else $PADSIM_DATA).
    #[arg(long, value_name = "[DATASET=]DIR")]
    data_dir: Vec<String>,
    /// Once every run is complete, summarise the sweep as `padsim report <sweep folder>` does.
    #[arg(long, conflicts_with_all = ["task", "slurm", "list"])]
    report: bool,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The folder to search for run files (e.g. a sweep's folder).
    dir: PathBuf,
    /// Where to write report.md, the CSVs and figures (default: DIR/report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Summarise the evaluation after E epochs (default: each group's latest).
    #[arg(long, value_name = "E")]
    epoch: Option<i64>,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// A run folder, its run.h5, or a checkpoint file.
    run: PathBuf,
    /// Evaluate the state after N epochs (0 = untrained; others need a kept checkpoint).
    /// Default: the latest checkpoint.
    #[arg(long)]
    epoch: Option<usize>,
    /// Worker threads (default: as the run was configured).
    #[arg(long)]
    threads: Option<usize>,
    /// Operands of the feature extraction's products, f32 or bf16 (default: the run's).
    #[arg(long, value_name = "f32|bf16")]
    precision: Option<Precision>,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// TOML configuration (every field optional; see README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data set: cifar10, svhn, mnist, fashion_mnist, synthetic (built in), or your own:
    /// image_folder (train/ and test/, a folder of PNGs per class) or npy (see README).
    #[arg(long)]
    dataset: Option<DatasetKind>,
    /// Folder with the data set's files (default: $PADSIM_DATA/<usual folder>; your own sets
    /// need it).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Experimental condition: full_pad, no_nrem, no_rem, wake_only, no_memory_mix,
    /// reversed_sleep, nrem_mixed_memories, rem_noise_only, rem_memories_only,
    /// contrastive_nrem.
    #[arg(long)]
    condition: Option<Condition>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed of every random stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (0 = one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Operands of the synaptic products: f32 (default) or bf16 (f32 accumulation).
    #[arg(long, value_name = "f32|bf16")]
    precision: Option<Precision>,
    /// Output folder (one sub-folder per run).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop each epoch after this many cycles.
    #[arg(long)]
    max_cycles: Option<usize>,
    /// Evaluate before training and every K epochs (and after the last).
    #[arg(long)]
    eval_every: Option<usize>,
    /// Continue from the run's checkpoint.
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn load_config(args: &TrainArgs) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(v) = args.dataset {
        config.dataset = v;
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = Some(v.clone());
    }
    if let Some(v) = args.condition {
        config.condition = v;
        config.schedule = None;
    }
    if let Some(v) = args.epochs {
        config.epochs = v;
    }
    if let Some(v) = args.seed {
        config.seed = v;
    }
    if let Some(v) = args.threads {
        config.threads = v;
    }
    if let Some(v) = args.precision {
        config.precision = v;
    }
    if let Some(v) = &args.out {
        config.out_dir = v.clone();
    }
    if let Some(v) = args.max_cycles {
        config.max_cycles_per_epoch = Some(v);
    }
    if let Some(v) = args.eval_every {
        config.eval.every = v;
    }
    Ok(config)
}

fn model(args: TrainArgs) -> Result<(), String> {
    let config = load_config(&args)?;
    config.validate().map_err(|e| e.to_string())?;
    let known = config.dataset.channels();
    let arch = config
        .architecture(config.image_channels_before_loading())
        .map_err(|e| e.to_string())?;
    let widths = if config.model.is_custom() {
        String::new()
    } else {
        format!(
            " (PAD, nf {}, nz {}, leak {})",
            config.model.nf, config.model.nz, config.model.leak
        )
    };
    println!(
        "network{widths} for {}×{}×{} images{}:",
        arch.image_channels,
        arch.image_side,
        arch.image_side,
        if known.is_some() {
            String::new()
        } else {
            format!(" (the channels of '{}' follow its files)", config.dataset)
        }
    );
    print!("{}", arch.describe().map_err(|e| e.to_string())?);
    Ok(())
}

fn train(args: TrainArgs) -> Result<(), String> {
    let config = load_config(&args)?;
    ctrlc::set_handler(|| {
        if experiment::runner::INTERRUPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: saving a checkpoint after this cycle (press Ctrl-C again to quit at once)");
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let summary = experiment::train(
        &config,
        TrainOptions {
            resume: args.resume,
            progress,
        },
    )
    .map_err(|e| e.to_string())?;
    let rate = summary.cycles as f64 / summary.seconds.max(1e-9);
    println!(
        "{} after {} epoch(s): {} cycles in {:.1} s ({rate:.2} cycles/s)",
        if summary.interrupted {
            "interrupted"
        } else {
            "finished"
        },
        summary.epochs_completed,
        summary.cycles,
        summary.seconds
    );
    for (state, term, value) in &summary.last_epoch_losses {
        println!("  {state}/{term}: {value:.6}");
    }
    let run_file = summary.run_dir.join(experiment::runner::RUN_FILE);
    if let Some(learned) = experiment::report::learning_summary(&run_file)? {
        println!("\nwhat the feedforward pathway learned:\n{learned}");
        println!("figures: {}", summary.run_dir.join("figures").display());
    }
    println!("results: {}", run_file.display());
    Ok(())
}

fn eval(args: EvalArgs) -> Result<(), String> {
    let target = experiment::runner::locate(&args.run, args.epoch).map_err(|e| e.to_string())?;
    let report = experiment::runner::evaluate_run(&target, args.threads, args.precision)
        .map_err(|e| e.to_string())?;
    println!("{}", experiment::evaluate::summary(&report));
    println!("figures: {}", target.run_dir.join("figures").display());
    Ok(())
}

fn bench(args: BenchArgs) -> Result<(), String> {
    use padsim::bench::{self, BenchSettings, Throughput};
    // Above this much machine-wide steal, two-thread figures on a shared VM are visibly low.
    const UNTRUSTWORTHY_STEAL: f64 = 0.02;
    let unsteady = std::cell::Cell::new(false);
    let print = |t: &Throughput| {
        unsteady.set(unsteady.get() || t.steal_share.unwrap_or(0.0) > UNTRUSTWORTHY_STEAL);
        if args.json {
            println!(
                "{}",
                serde_json::to_string(t).expect("plain numbers serialise")
            );
        } else {
            let steal = t
                .steal_share
                .map_or("-".into(), |share| format!("{:.1}%", 100.0 * share));
            println!(
                "{:<18} {:<10} {:>5} {:>7} {:>9.3} {:>9.1} {:>10.2} {:>8.1} {:>9.0}% {:>6}",
                t.what,
                t.precision,
                t.batch,
                t.threads,
                t.median_per_second,
                t.images_per_second,
                t.gflop_per_unit,
                t.gflops,
                100.0 * t.share_of_ceiling,
                steal
            );
        }
    };
    let runs: Vec<(Precision, usize)> = args
        .precision
        .iter()
        .flat_map(|&p| args.threads.iter().map(move |&t| (p, t)))
        .collect();
    let ceilings: Vec<f64> = runs
        .iter()
        .map(|&(precision, threads)| bench::gemm_ceiling(threads, args.repeats, precision))
        .collect();
    if !args.json {
        let logical_cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("CPU: {} ({logical_cpus} logical CPUs)", bench::cpu_model());
        for (&(precision, threads), ceiling) in runs.iter().zip(&ceilings) {
            println!(
                "GEMM ceiling (128x4096x1024), {}, {threads} thread(s): {ceiling:.1} GFLOP/s",
                bench::precision_name(precision)
            );
        }
        println!(
            "{:<18} {:<10} {:>5} {:>7} {:>9} {:>9} {:>10} {:>8} {:>10} {:>6}",
            "what",
            "precision",
            "batch",
            "threads",
            "units/s",
            "images/s",
            "GFLOP/unit",
            "GFLOP/s",
            "of ceiling",
            "steal"
        );
    }
    for (&(precision, threads), &ceiling) in runs.iter().zip(&ceilings) {
        for &batch in &args.batch {
            let settings = BenchSettings {
                batch,
                threads,
                units: args.cycles,
                warmup: 2,
                repeats: args.repeats,
                precision,
            };
            print(&bench::cycles(args.condition, &settings, ceiling));
        }
        if args.encoder_batch > 0 {
            let settings = BenchSettings {
                batch: args.encoder_batch,
                threads,
                units: 3,
                warmup: 1,
                repeats: args.repeats,
                precision,
            };
            print(&bench::encoder(&settings, ceiling));
        }
    }
    if unsteady.get() {
        eprintln!(
            "note: the hypervisor stole more than {:.0}% of this machine's CPU time during some \
             measurements (steal column); other guests were busy, so those figures are low. \
             Measure again when steal is near 0.",
            100.0 * UNTRUSTWORTHY_STEAL
        );
    }
    Ok(())
}

fn sweep(args: SweepArgs) -> Result<(), String> {
    use experiment::sweep::{SpecOverrides, SweepCommand, SweepMode, INTERRUPTS};
    let mode = match (args.task, args.slurm, args.list) {
        (Some(i), _, _) => SweepMode::Task(i),
        (None, true, _) => SweepMode::Slurm,
        (None, false, true) => SweepMode::List,
        (None, false, false) => SweepMode::Local,
    };
    if matches!(mode, SweepMode::Local | SweepMode::Task(_)) {
        ctrlc::set_handler(|| {
            if INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                eprintln!("\ninterrupt: running runs save a checkpoint after their current cycle (press Ctrl-C again to stop them at once)");
            }
        })
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    }
    let padsim =
        std::env::current_exe().map_err(|e| format!("cannot find the padsim executable: {e}"))?;
    let sweep_dir = experiment::sweep::execute(&SweepCommand {
        spec: args.spec,
        mode,
        overrides: SpecOverrides {
            out_dir: args.out,
            data_dirs: args.data_dir,
        },
        parallel: args.parallel,
        threads: args.threads,
        padsim,
    })?;
    if args.report {
        println!();
        report(ReportArgs {
            dir: sweep_dir,
            out: None,
            epoch: None,
        })?;
    }
    Ok(())
}

fn report(args: ReportArgs) -> Result<(), String> {
    let out = args.out.unwrap_or_else(|| args.dir.join("report"));
    let report = experiment::report::build(&args.dir, args.epoch).map_err(|e| e.to_string())?;
    for skipped in &report.skipped {
        eprintln!(
            "warning: left out {}: {}",
            skipped.path.display(),
            skipped.reason
        );
    }
    let written = experiment::report::write(&report, &out).map_err(|e| e.to_string())?;
    let runs: usize = report.groups.iter().map(|g| g.runs.len()).sum();
    println!("{}", report.text_summary());
    println!(
        "{runs} runs in {} groups; wrote {} files to {}:",
        report.groups.len(),
        written.len(),
        out.display()
    );
    for path in written {
        println!("  {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    // Output piped into `head` and the like ends quietly, as with other command-line tools,
    // instead of a panic at the first write after the reader has gone.
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // A mistyped kernel path is named before any work, not when the first product runs.
    let path = std::env::var(bf16::PATH_VARIABLE).ok();
    if let Some(Err(e)) = path.map(|name| bf16::Bf16Path::named(&name)) {
        eprintln!("padsim: {}: {e}", bf16::PATH_VARIABLE);
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Train(args) => train(args),
        Command::Eval(args) => eval(args),
        Command::Bench(args) => bench(args),
        Command::Sweep(args) => sweep(args),
        Command::Report(args) => report(args),
        Command::Model(args) => model(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("padsim: {message}");
            ExitCode::FAILURE
        }
    }
}
