//! The SLURM job-array script of a sweep: one array task per run, each running
//! `padsim sweep SPEC --task $SLURM_ARRAY_TASK_ID`, which trains its run with
//! `$SLURM_CPUS_PER_TASK` threads, or resumes it, or skips it when complete. Submitting the same
//! script again after time-outs or failures finishes what is left.
//!
//! Ahead of the time limit SLURM sends SIGINT to the task (`--signal=B:INT@N`, N =
//! `[slurm] signal_seconds`, 600 by default); the script `exec`s padsim, so the sweep receives
//! it and passes it on to the training run, which saves a checkpoint after its current cycle.

use super::{SlurmSettings, SweepSpec};
use std::path::{Path, PathBuf};

/// Where things are, for the script.
#[derive(Clone, Debug)]
pub struct SlurmInvocation {
    /// The padsim executable, absolute.
    pub padsim: PathBuf,
    /// The spec file, absolute.
    pub spec: PathBuf,
    /// The directory the tasks run in, absolute: relative paths of the spec resolve against it.
    pub workdir: PathBuf,
    /// Options each task repeats (e.g. `--data-dir cifar10=/data/c10`, `--out DIR`).
    pub extra_args: Vec<String>,
}

/// Refuses settings that would break the script or be read as something else by SLURM.
pub(super) fn check_settings(slurm: &SlurmSettings) -> Result<(), String> {
    let check = |what: &str, value: &str, allowed: &dyn Fn(char) -> bool, example: &str| {
        if value.is_empty() || !value.chars().all(allowed) {
            Err(format!(
                "[slurm] {what} = {value:?} is not a SLURM value like {example:?}"
            ))
        } else {
            Ok(())
        }
    };
    if let Some(time) = &slurm.time {
        check(
            "time",
            time,
            &|c| c.is_ascii_digit() || c == ':' || c == '-',
            "1-12:00:00",
        )?;
    }
    if let Some(mem) = &slurm.mem {
        check("mem", mem, &|c| c.is_ascii_alphanumeric(), "16G")?;
    }
    if let Some(partition) = &slurm.partition {
        check(
            "partition",
            partition,
            &|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ','),
            "gpu",
        )?;
    }
    if slurm.signal_seconds > 65535 {
        return Err(format!(
            "[slurm] signal_seconds = {} is more than SLURM's --signal accepts (65535)",
            slurm.signal_seconds
        ));
    }
    for option in &slurm.sbatch_options {
        if !option.starts_with('-') || option.contains(['\n', '\r']) {
            return Err(format!(
                "[slurm] sbatch_options entry {option:?} must be one option such as \"--account=lab\""
            ));
        }
    }
    for line in &slurm.setup_commands {
        if line.contains(['\n', '\r']) {
            return Err(format!(
                "[slurm] setup_commands entry {line:?} must be a single line"
            ));
        }
    }
    Ok(())
}

/// `value` as one shell word: unchanged if it is plain, else in single quotes.
pub fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The job-array script of `spec` (one task per run).
pub fn slurm_script(spec: &SweepSpec, invocation: &SlurmInvocation) -> Result<String, String> {
    let tasks = spec.tasks().len();
    let sweep_dir = absolute(&invocation.workdir, &spec.sweep_dir());
    let log_pattern = sweep_dir.join("logs").join("slurm_%A_%a.out");
    let log_pattern = log_pattern.to_string_lossy().into_owned();
    if log_pattern.chars().any(char::is_whitespace) {
        return Err(format!(
            "the sweep's folder {} has white space in its path, which #SBATCH --output cannot hold; choose another out_dir",
            sweep_dir.display()
        ));
    }
    let slurm = &spec.slurm;
    let array = match slurm.max_concurrent {
        Some(k) => format!("0-{}%{k}", tasks - 1),
        None => format!("0-{}", tasks - 1),
    };
    let quoted = |path: &Path| shell_quote(&path.to_string_lossy());

    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# padsim sweep '{}': {tasks} runs ({} condition(s) × {} seed(s) × {} data set(s)), one per array task.",
            spec.name,
            spec.conditions.len(),
            spec.seeds.len(),
            spec.datasets.len()
        ),
        format!(
            "# Written by padsim {} from {}. Submit with:",
            env!("CARGO_PKG_VERSION"),
            invocation.spec.display()
        ),
        "#   sbatch <this file>".to_string(),
        "# Each task skips a complete run, resumes one that was cut off, and otherwise trains it with".to_string(),
        "# $SLURM_CPUS_PER_TASK threads; submit again after time-outs or failures to finish the rest.".to_string(),
        format!("#SBATCH --job-name={}", spec.name),
        format!("#SBATCH --array={array}"),
        format!("#SBATCH --cpus-per-task={}", slurm.cpus_per_task),
    ];
    if let Some(time) = &slurm.time {
        lines.push(format!("#SBATCH --time={time}"));
    }
    if let Some(mem) = &slurm.mem {
        lines.push(format!("#SBATCH --mem={mem}"));
    }
    if let Some(partition) = &slurm.partition {
        lines.push(format!("#SBATCH --partition={partition}"));
    }
    lines.push(format!("#SBATCH --output={log_pattern}"));
    lines.push(format!("#SBATCH --signal=B:INT@{}", slurm.signal_seconds));
    for option in &slurm.sbatch_options {
        lines.push(format!("#SBATCH {option}"));
    }
    lines.push("set -eo pipefail".to_string());
    lines.push(format!("cd {}", quoted(&invocation.workdir)));
    lines.extend(slurm.setup_commands.iter().cloned());
    let mut command = vec![
        "exec".to_string(),
        quoted(&invocation.padsim),
        "sweep".to_string(),
        quoted(&invocation.spec),
        "--task".to_string(),
        "\"${SLURM_ARRAY_TASK_ID:?run this script with sbatch: SLURM_ARRAY_TASK_ID is not set}\""
            .to_string(),
    ];
    command.extend(invocation.extra_args.iter().map(|a| shell_quote(a)));
    lines.push(command.join(" "));
    Ok(lines.join("\n") + "\n")
}

/// `path` made absolute against `base` (unchanged if already absolute).
fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> SweepSpec {
        let spec = SweepSpec::from_toml(&format!(
            r#"
            name = "fig4"
            out_dir = "runs/sweeps"
            conditions = ["full_pad", "no_nrem", "no_rem"]
            seeds = [0, 1]
            datasets = ["cifar10"]
            [base.eval]
            every = 5
            [slurm]
            cpus_per_task = 8
            {extra}
            "#
        ))
        .unwrap();
        spec.validate().unwrap();
        spec
    }

    fn invocation() -> SlurmInvocation {
        SlurmInvocation {
            padsim: "/opt/padsim/bin/padsim".into(),
            spec: "/home/me/my specs/fig4.toml".into(),
            workdir: "/home/me/project".into(),
            extra_args: vec!["--data-dir".into(), "/data/c10".into()],
        }
    }

    #[test]
    fn the_script_has_one_task_per_run() {
        let script = slurm_script(
            &spec("time = \"1-00:00:00\"\nmem = \"8G\"\nmax_concurrent = 2\nsbatch_options = [\"--account=lab\"]\nsetup_commands = [\"module load hdf5\"]"),
            &invocation(),
        )
        .unwrap();
        for line in [
            "#!/bin/bash",
            "#SBATCH --job-name=fig4",
            "#SBATCH --array=0-5%2",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --time=1-00:00:00",
            "#SBATCH --mem=8G",
            "#SBATCH --output=/home/me/project/runs/sweeps/fig4/logs/slurm_%A_%a.out",
            "#SBATCH --account=lab",
            "cd /home/me/project",
            "module load hdf5",
        ] {
            assert!(script.lines().any(|l| l == line), "{line}\n{script}");
        }
        let last = script.lines().last().unwrap();
        assert!(
            last.starts_with("exec /opt/padsim/bin/padsim sweep '/home/me/my specs/fig4.toml' --task \"${SLURM_ARRAY_TASK_ID:?"),
            "{last}"
        );
        assert!(last.ends_with(" --data-dir /data/c10"), "{last}");
        // Every #SBATCH line comes before the first command, as sbatch requires.
        let first_command = script.lines().position(|l| !l.starts_with('#')).unwrap();
        assert!(script
            .lines()
            .skip(first_command)
            .all(|l| !l.starts_with("#SBATCH")));
        assert!(!script.contains("--partition"));
    }

    #[test]
    fn settings_that_would_break_the_script_are_refused() {
        for bad in [
            "time = \"1 day\"",
            "mem = \"8G\\n#SBATCH --x\"",
            "partition = \"a b\"",
            "sbatch_options = [\"account=lab\"]",
            "setup_commands = [\"a\\nb\"]",
        ] {
            let text = format!(
                "name = \"x\"\nconditions = [\"full_pad\"]\nseeds = [0]\ndatasets = [\"synthetic\"]\n[base.eval]\nevery = 1\n[slurm]\n{bad}\n"
            );
            let spec = SweepSpec::from_toml(&text).unwrap();
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains("[slurm]"), "{bad}: {err}");
        }
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a/b-c_d.toml"), "/a/b-c_d.toml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
