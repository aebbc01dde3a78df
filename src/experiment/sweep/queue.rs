//! Running a sweep's tasks: a queue of worker threads, each taking the next task, deciding from
//! the run's state what to do (skip it, start it, start it over, resume it, evaluate it), and
//! doing it in a child process (`padsim train --config <configs/run.toml> --resume`, or
//! `padsim eval`).
//!
//! Child processes rather than training in this process: each run gets its own rayon pool,
//! memory and HDF5 library state; a crash or a diverging run takes down one run, not the
//! sweep; and a run is trained exactly as `padsim train` trains it, so its log reads the same
//! and a cut-off run resumes from its checkpoint the usual way.
//!
//! Interrupts: children run in their own process group, so a Ctrl-C reaches only the sweep,
//! which counts it in [`INTERRUPTS`]. The first stops the queue from starting runs and is
//! passed on (SIGINT) to every running child, which saves a checkpoint after its current cycle
//! and exits; a second is passed on too, and the children quit at once. The next `padsim
//! sweep` resumes what was cut off.

use super::{RunState, Task};
use crate::experiment::runner::RUN_FILE;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Interrupt requests the sweep has received (e.g. from a Ctrl-C handler): 1 = finish the
/// current cycle, checkpoint and stop; 2 or more = stop at once.
pub static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// How to run the queue.
#[derive(Clone, Debug)]
pub struct QueueOptions {
    /// The `padsim` executable the runs are started with.
    pub padsim: PathBuf,
    /// Runs at the same time.
    pub parallel_runs: usize,
    /// Threads of each run.
    pub threads: usize,
    /// Folder for one log per run (`<run>.log`, appended to); `None`: runs write to this
    /// process's stdout and stderr (a SLURM task's log).
    pub log_dir: Option<PathBuf>,
    /// Tasks in the whole sweep, for the `[i/N]` in messages.
    pub total: usize,
}

/// What the sweep does with a run, decided from its [`RunState`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Complete: nothing to do.
    Skip,
    /// Train from the start.
    Start,
    /// Delete the run file left by a run cut off in its first epoch, then train from the start.
    StartOver,
    /// Continue from the checkpoint.
    Resume {
        /// Epochs done.
        epoch: u64,
        /// Cycles into the next epoch.
        batch: u64,
    },
    /// Evaluate the final checkpoint (`padsim eval`).
    Evaluate,
    /// Leave the folder alone; the reason.
    Refuse(String),
}

impl Action {
    /// The action for a run in `state`.
    pub fn for_state(state: &RunState) -> Action {
        match state {
            RunState::Fresh => Action::Start,
            RunState::Abandoned => Action::StartOver,
            RunState::Partial { epoch, batch } => Action::Resume {
                epoch: *epoch,
                batch: *batch,
            },
            RunState::Unevaluated => Action::Evaluate,
            RunState::Complete => Action::Skip,
            RunState::Conflict(reason) => Action::Refuse(reason.clone()),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Skip => f.write_str("skipped (complete)"),
            Action::Start => f.write_str("started"),
            Action::StartOver => f.write_str(
                "started over (cut off in its first epoch: its run.h5 removed, nothing to resume)",
            ),
            Action::Resume { epoch, batch: 0 } => write!(f, "resumed after epoch {epoch}"),
            Action::Resume { epoch, batch } => {
                write!(f, "resumed at epoch {}, cycle {batch}", epoch + 1)
            }
            Action::Evaluate => f.write_str("evaluating (trained, final evaluation missing)"),
            Action::Refuse(reason) => write!(f, "refused: {reason}"),
        }
    }
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskOutcome {
    /// Already complete.
    Skipped,
    /// Trained (or evaluated) to completion by this pass.
    Finished,
    /// Stopped by an interrupt after checkpointing; the next pass resumes it.
    Interrupted,
    /// Not started because of an interrupt.
    NotStarted,
    /// Failed or refused; why.
    Failed(String),
}

/// One task's record.
#[derive(Clone, Debug)]
pub struct TaskReport {
    /// Position in the sweep.
    pub index: usize,
    /// The run's folder name.
    pub run_name: String,
    /// What was done.
    pub action: Action,
    /// How it ended.
    pub outcome: TaskOutcome,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Every task's record, in task order.
#[derive(Clone, Debug, Default)]
pub struct SweepOutcome {
    /// One per task run by this pass.
    pub reports: Vec<TaskReport>,
}

impl SweepOutcome {
    fn count(&self, wanted: fn(&TaskOutcome) -> bool) -> usize {
        self.reports.iter().filter(|r| wanted(&r.outcome)).count()
    }

    /// Whether every task is complete now.
    pub fn all_complete(&self) -> bool {
        self.reports
            .iter()
            .all(|r| matches!(r.outcome, TaskOutcome::Skipped | TaskOutcome::Finished))
    }

    /// One line: how many runs ended which way.
    pub fn summary(&self) -> String {
        format!(
            "{} finished, {} skipped (already complete), {} interrupted, {} not started, {} failed",
            self.count(|o| *o == TaskOutcome::Finished),
            self.count(|o| *o == TaskOutcome::Skipped),
            self.count(|o| *o == TaskOutcome::Interrupted),
            self.count(|o| *o == TaskOutcome::NotStarted),
            self.count(|o| matches!(o, TaskOutcome::Failed(_))),
        )
    }
}

/// Runs `tasks` with `options.parallel_runs` at a time, printing a line when each starts and
/// ends; returns their records in task order. Returns when every task has ended (or, after an
/// interrupt, when the running ones have stopped).
pub fn run_queue(tasks: &[Task], options: &QueueOptions) -> SweepOutcome {
    let next = AtomicUsize::new(0);
    let running: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    let reports: Mutex<Vec<TaskReport>> = Mutex::new(Vec::new());
    let workers = options.parallel_runs.clamp(1, tasks.len().max(1));
    let busy_workers = AtomicUsize::new(workers);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(task) = tasks.get(i) else { break };
                    let report = run_task(task, options, &running);
                    reports
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(report);
                }
                busy_workers.fetch_sub(1, Ordering::SeqCst);
            });
        }
        // Pass interrupts on to the running children.
        let mut forwarded = 0;
        while busy_workers.load(Ordering::SeqCst) > 0 {
            {
                let running = running.lock().unwrap_or_else(|e| e.into_inner());
                let requested = INTERRUPTS.load(Ordering::SeqCst);
                if requested > forwarded {
                    for &pid in running.iter() {
                        send_interrupt(pid);
                    }
                    forwarded = requested;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.index);
    SweepOutcome { reports }
}

/// Runs one task to its end.
fn run_task(task: &Task, options: &QueueOptions, running: &Mutex<Vec<u32>>) -> TaskReport {
    let started = Instant::now();
    let width = options.total.max(1).to_string().len();
    let tag = format!(
        "[{:>width$}/{}] {}",
        task.index + 1,
        options.total,
        task.run_name()
    );
    let action = Action::for_state(&RunState::of(&task.config));
    let report = |outcome: TaskOutcome| TaskReport {
        index: task.index,
        run_name: task.run_name().to_string(),
        action: action.clone(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
    };
    match &action {
        Action::Skip => {
            println!("{tag}: {action}");
            return report(TaskOutcome::Skipped);
        }
        Action::Refuse(reason) => {
            println!("{tag}: failed: {reason}");
            return report(TaskOutcome::Failed(reason.clone()));
        }
        _ if INTERRUPTS.load(Ordering::SeqCst) > 0 => return report(TaskOutcome::NotStarted),
        _ => {}
    }
    match launch(task, &action, options, running, &tag) {
        Ok(None) => report(TaskOutcome::NotStarted),
        Ok(Some(status)) => {
            let outcome = judge(task, status, options);
            let seconds = started.elapsed().as_secs_f64();
            match &outcome {
                TaskOutcome::Finished => println!("{tag}: finished in {seconds:.1} s"),
                TaskOutcome::Interrupted => println!(
                    "{tag}: interrupted after {seconds:.1} s ({}); run the sweep again to resume",
                    RunState::of(&task.config)
                ),
                TaskOutcome::Failed(reason) => println!("{tag}: failed: {reason}"),
                TaskOutcome::Skipped | TaskOutcome::NotStarted => {}
            }
            report(outcome)
        }
        Err(reason) => {
            println!("{tag}: failed: {reason}");
            report(TaskOutcome::Failed(reason))
        }
    }
}

/// Starts the child process for `action` and waits for it; `None` if an interrupt came first.
fn launch(
    task: &Task,
    action: &Action,
    options: &QueueOptions,
    running: &Mutex<Vec<u32>>,
    tag: &str,
) -> Result<Option<std::process::ExitStatus>, String> {
    let config_path = write_run_config(task)?;
    let threads = options.threads.to_string();
    let mut command = Command::new(&options.padsim);
    match action {
        Action::Evaluate => {
            command
                .arg("eval")
                .arg(task.run_dir())
                .args(["--threads", &threads]);
        }
        _ => {
            command
                .args(["train", "--quiet", "--threads", &threads, "--config"])
                .arg(&config_path);
            if matches!(action, Action::Resume { .. }) {
                command.arg("--resume");
            }
        }
    }
    command.stdin(Stdio::null());
    let log_path = match &options.log_dir {
        Some(dir) => {
            let path = dir.join(format!("{}.log", task.run_name()));
            let log = open_log(&path, action)?;
            let log_err = log
                .try_clone()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            command.stdout(log).stderr(log_err);
            Some(path)
        }
        None => None,
    };
    #[cfg(unix)]
    {
        // Its own process group: a Ctrl-C at the terminal reaches the sweep only, which passes
        // it on once (a second SIGINT would make the run quit without its checkpoint).
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }

    let mut child = {
        // Checked again under the lock the interrupt forwarding takes: either this child is
        // started before an interrupt is passed on (and receives it), or it is not started.
        let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
        if INTERRUPTS.load(Ordering::SeqCst) > 0 {
            return Ok(None);
        }
        if *action == Action::StartOver {
            let run_file = task.run_dir().join(RUN_FILE);
            std::fs::remove_file(&run_file)
                .map_err(|e| format!("removing {}: {e}", run_file.display()))?;
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", options.padsim.display()))?;
        running.push(child.id());
        child
    };
    match &log_path {
        Some(log) => println!("{tag}: {action} (log: {})", log.display()),
        None => println!("{tag}: {action}"),
    }
    let status = child.wait();
    running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&pid| pid != child.id());
    status
        .map(Some)
        .map_err(|e| format!("waiting for padsim: {e}"))
}

/// Decides how a finished child left its run: complete, interrupted (checkpointed, to be
/// resumed) or failed.
fn judge(task: &Task, status: std::process::ExitStatus, options: &QueueOptions) -> TaskOutcome {
    let state = RunState::of(&task.config);
    if state == RunState::Complete {
        return TaskOutcome::Finished;
    }
    if INTERRUPTS.load(Ordering::SeqCst) > 0 {
        return TaskOutcome::Interrupted;
    }
    let log_tail = options
        .log_dir
        .as_ref()
        .map(|dir| {
            let path = dir.join(format!("{}.log", task.run_name()));
            let tail = last_lines(&path, 12);
            format!("; last lines of {}:\n{tail}", path.display())
        })
        .unwrap_or_default();
    TaskOutcome::Failed(format!(
        "padsim exited with {status}; the run is now: {state}{log_tail}"
    ))
}

/// Writes the configuration a task trains with to `<sweep>/configs/<run>.toml`.
fn write_run_config(task: &Task) -> Result<PathBuf, String> {
    let dir = task.config.out_dir.join("configs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.toml", task.run_name()));
    let text = format!(
        "# Run {} of a padsim sweep (written by `padsim sweep`; edit the sweep spec instead).\n{}",
        task.index,
        task.config.to_toml()
    );
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

fn open_log(path: &Path, action: &Action) -> Result<std::fs::File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(log, "=== padsim sweep: {action} ===")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(log)
}

/// The last `n` lines of a text file (or why it cannot be read).
fn last_lines(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..]
                .iter()
                .map(|line| format!("    {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    ({e})"),
    }
}

/// Sends SIGINT to a child (best effort: it may have just exited).
fn send_interrupt(pid: u32) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-s", "INT", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_states() {
        assert_eq!(Action::for_state(&RunState::Fresh), Action::Start);
        assert_eq!(Action::for_state(&RunState::Complete), Action::Skip);
        assert_eq!(Action::for_state(&RunState::Abandoned), Action::StartOver);
        assert_eq!(
            Action::for_state(&RunState::Partial { epoch: 2, batch: 5 }),
            Action::Resume { epoch: 2, batch: 5 }
        );
        assert_eq!(Action::for_state(&RunState::Unevaluated), Action::Evaluate);
        assert_eq!(
            Action::for_state(&RunState::Conflict("x".into())),
            Action::Refuse("x".into())
        );
        assert_eq!(
            Action::Resume { epoch: 2, batch: 5 }.to_string(),
            "resumed at epoch 3, cycle 5"
        );
        assert_eq!(
            Action::Resume { epoch: 2, batch: 0 }.to_string(),
            "resumed after epoch 2"
        );
    }

    #[test]
    fn the_summary_counts_outcomes() {
        let report = |index, outcome| TaskReport {
            index,
            run_name: format!("r{index}"),
            action: Action::Start,
            outcome,
            seconds: 0.0,
        };
        let outcome = SweepOutcome {
            reports: vec![
                report(0, TaskOutcome::Finished),
                report(1, TaskOutcome::Skipped),
                report(2, TaskOutcome::Skipped),
            ],
        };
        assert!(outcome.all_complete());
        assert_eq!(
            outcome.summary(),
            "1 finished, 2 skipped (already complete), 0 interrupted, 0 not started, 0 failed"
        );
        let failed = SweepOutcome {
            reports: vec![report(0, TaskOutcome::Failed("x".into()))],
        };
        assert!(!failed.all_complete());
        assert!(failed.summary().ends_with("1 failed"));
    }

    #[test]
    fn log_tails_keep_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "1\n2\n3\n").unwrap();
        assert_eq!(last_lines(&path, 2), "    2\n    3");
        assert!(last_lines(&dir.path().join("none"), 2).contains('('));
    }
}
