//! `padsim sweep SPEC`: the command line's four modes over a spec: run every task here, run
//! one task (a SLURM array element), list the tasks with their state, or write the SLURM
//! script.

use super::{
    run_queue, slurm_script, threads_per_run, QueueOptions, RunState, SlurmInvocation,
    SpecOverrides, SweepSpec,
};
use std::path::{Path, PathBuf};

/// What `padsim sweep` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepMode {
    /// Run every task on this machine.
    Local,
    /// Run task `i` only (`--task i`).
    Task(usize),
    /// Print the tasks and their state.
    List,
    /// Write the SLURM job-array script.
    Slurm,
}

/// A `padsim sweep` invocation.
#[derive(Clone, Debug)]
pub struct SweepCommand {
    /// The spec file.
    pub spec: PathBuf,
    /// What to do.
    pub mode: SweepMode,
    /// `--out`, `--data-dir`.
    pub overrides: SpecOverrides,
    /// `--parallel`: runs at once (local mode).
    pub parallel: Option<usize>,
    /// `--threads`: threads per run.
    pub threads: Option<usize>,
    /// The padsim executable that trains the runs (and that the SLURM script calls).
    pub padsim: PathBuf,
}

/// The environment variable SLURM sets to a task's `--cpus-per-task`.
pub const SLURM_CPUS: &str = "SLURM_CPUS_PER_TASK";

/// Runs the command and returns the sweep's folder; `Err` carries the message for the user
/// (and a failure exit code).
pub fn execute(command: &SweepCommand) -> Result<PathBuf, String> {
    let mut spec = SweepSpec::from_file(&command.spec).map_err(|e| e.to_string())?;
    spec.apply(&command.overrides)
        .map_err(|e| format!("{}: {e}", command.spec.display()))?;
    let tasks = spec.tasks();
    let done: Result<(), String> = match command.mode {
        SweepMode::List => {
            println!("{}", spec.describe());
            let width = tasks.iter().map(|t| t.run_name().len()).max().unwrap_or(0);
            println!("{:>6}  {:width$}  state", "task", "run");
            for task in &tasks {
                println!(
                    "{:>6}  {:width$}  {}",
                    task.index,
                    task.run_name(),
                    RunState::of(&task.config)
                );
            }
            Ok(())
        }
        SweepMode::Slurm => write_slurm(&spec, command),
        SweepMode::Local => {
            let parallel = command.parallel.unwrap_or(spec.local.parallel_runs).max(1);
            let threads = threads_per_run(
                command.threads.unwrap_or(spec.local.threads_per_run),
                parallel,
            );
            println!("{}", spec.describe());
            println!(
                "{parallel} run(s) at a time, {threads} thread(s) each; logs in {}",
                spec.sweep_dir().join("logs").display()
            );
            let outcome = run_queue(
                &tasks,
                &QueueOptions {
                    padsim: command.padsim.clone(),
                    parallel_runs: parallel,
                    threads,
                    log_dir: Some(spec.sweep_dir().join("logs")),
                    total: tasks.len(),
                },
            );
            println!("sweep '{}': {}", spec.name, outcome.summary());
            if outcome.all_complete() {
                println!(
                    "summarise with: padsim report {}",
                    shell_path(&spec.sweep_dir())
                );
                Ok(())
            } else {
                Err(format!(
                    "sweep '{}' is not complete ({}); run the same command again to resume",
                    spec.name,
                    outcome.summary()
                ))
            }
        }
        SweepMode::Task(index) => {
            let Some(task) = tasks.get(index) else {
                return Err(format!(
                    "--task {index}: the sweep has {} tasks, numbered 0 to {}",
                    tasks.len(),
                    tasks.len() - 1
                ));
            };
            let threads = match command.threads {
                Some(threads) => threads_per_run(threads, 1),
                None => match std::env::var(SLURM_CPUS) {
                    Ok(value) => value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| format!("{SLURM_CPUS} = {value:?} is not a number of CPUs"))?,
                    Err(_) => threads_per_run(spec.local.threads_per_run, 1),
                },
            };
            let outcome = run_queue(
                std::slice::from_ref(task),
                &QueueOptions {
                    padsim: command.padsim.clone(),
                    parallel_runs: 1,
                    threads: threads.max(1),
                    log_dir: None,
                    total: tasks.len(),
                },
            );
            if outcome.all_complete() {
                Ok(())
            } else {
                Err(format!(
                    "task {index} ({}) is not complete: {}",
                    task.run_name(),
                    outcome.summary()
                ))
            }
        }
    };
    done.map(|()| spec.sweep_dir())
}

fn write_slurm(spec: &SweepSpec, command: &SweepCommand) -> Result<(), String> {
    let absolute = |path: &Path, what: &str| {
        std::fs::canonicalize(path).map_err(|e| format!("{what} {}: {e}", path.display()))
    };
    let workdir = std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?;
    let mut extra_args = Vec::new();
    if let Some(out) = &command.overrides.out_dir {
        extra_args.push("--out".to_string());
        extra_args.push(out.to_string_lossy().into_owned());
    }
    for entry in &command.overrides.data_dirs {
        extra_args.push("--data-dir".to_string());
        extra_args.push(entry.clone());
    }
    let invocation = SlurmInvocation {
        padsim: absolute(&command.padsim, "the padsim executable")?,
        spec: absolute(&command.spec, "the spec")?,
        workdir: workdir.clone(),
        extra_args,
    };
    let script = slurm_script(spec, &invocation)?;
    let sweep_dir = spec.sweep_dir();
    let logs = sweep_dir.join("logs");
    // SLURM does not create the folder of --output; a task would fail before it starts.
    std::fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
    let path = sweep_dir.join("sweep.slurm");
    std::fs::write(&path, script).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let tasks = spec.tasks().len();
    println!("{}", spec.describe());
    println!(
        "wrote {} (array of {tasks} task(s), {} CPU(s) each)",
        path.display(),
        spec.slurm.cpus_per_task
    );
    println!("submit with:  sbatch {}", shell_path(&workdir.join(&path)));
    let extra: String = invocation
        .extra_args
        .iter()
        .map(|a| format!(" {}", super::shell_quote(a)))
        .collect();
    println!(
        "progress:     padsim sweep {} --list{extra}    (task logs in {})",
        shell_path(&invocation.spec),
        logs.display()
    );
    Ok(())
}

fn shell_path(path: &Path) -> String {
    super::shell_quote(&path.to_string_lossy())
}
