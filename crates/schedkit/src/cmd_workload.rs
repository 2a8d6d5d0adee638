//! `schedkit workload ...`: runs a scenario for real and prints (and saves) its report.
//! The work itself lives in `schedkit_workload::exec`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use schedkit_workload::exec::{self, ExecOptions};
use schedkit_workload::spec::Spec;

#[derive(clap::Subcommand)]
pub enum WorkloadCommand {
    /// Run a scenario on this machine, under whatever scheduler is attached.
    Run {
        /// Workload spec (TOML); see scenarios/example.toml for every field.
        spec: PathBuf,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Run this many seconds instead of the spec's `duration_s`.
        #[arg(long, value_name = "SECS")]
        duration: Option<f64>,
        /// Scheduler name for the report (default: the attached sched_ext scheduler,
        /// or the kernel's default scheduler).
        #[arg(long, value_name = "NAME")]
        label: Option<String>,
        /// No progress line on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
}

pub fn main(cmd: WorkloadCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WorkloadCommand::Run {
            spec,
            json,
            duration,
            label,
            quiet,
        } => run(spec, json, duration, label, quiet),
    }
}

fn run(
    spec_path: PathBuf,
    json: Option<PathBuf>,
    duration: Option<f64>,
    label: Option<String>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let spec = Spec::from_path(&spec_path)?;
    let duration_ns = duration
        .map(|s| crate::cmd_sim::secs_to_ns("--duration", s))
        .transpose()?;
    // Create the JSON file now: a path that cannot be written should fail before the
    // run, not after it.
    let json_file = match &json {
        Some(path) => Some((
            path,
            std::fs::File::create(path)
                .with_context(|| format!("cannot write the JSON report to {}", path.display()))?,
        )),
        None => None,
    };
    let before = exec::attached_scheduler();
    let opts = ExecOptions {
        duration_ns,
        scheduler_label: label.unwrap_or_else(|| before.clone()),
        progress: !quiet,
    };
    let report =
        exec::run(&spec, &opts).with_context(|| format!("cannot run {}", spec_path.display()))?;
    let after = exec::attached_scheduler();
    print!("{}", report.render_table());
    if let Some((path, mut file)) = json_file {
        writeln!(file, "{}", report.to_json())
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
    }
    if after != before {
        // The figures mix two schedulers (a sched_ext scheduler attached or was ejected
        // mid-run): say so, and fail so that a benchmark script notices.
        eprintln!(
            "schedkit: the scheduler changed during the run ({before} -> {after}); \
             these figures mix both, run again"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_spec(dir: &std::path::Path, text: &str) -> PathBuf {
        let path = dir.join("spec.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "schedkit-cmd-workload-{tag}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const TINY: &str =
        "name = \"tiny\"\nduration_s = 0.2\n[[group]]\nname = \"hog\"\nkind = \"cpu\"\n";

    #[test]
    fn bad_spec_error_names_file_line_and_field() {
        let dir = temp_dir("bad");
        let spec = write_spec(
            &dir,
            "name = \"x\"\nduration_s = -1\n[[group]]\nname = \"g\"\nkind = \"cpu\"\n",
        );
        let err = run(spec.clone(), None, None, None, true).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "{}:2:14: `duration_s` must be a positive number of seconds, got -1",
                spec.display()
            )
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unwritable_json_path_fails_before_the_run() {
        let dir = temp_dir("json");
        // The spec would run for an hour: failing fast proves the check comes first.
        let spec = write_spec(&dir, &TINY.replace("0.2", "3600"));
        let err = run(spec, Some(dir.join("no/such/dir/r.json")), None, None, true).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("cannot write the JSON report to "),
            "{err:#}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn json_report_carries_label_and_duration_override() {
        let dir = temp_dir("ok");
        let spec = write_spec(&dir, &TINY.replace("0.2", "3600"));
        let json = dir.join("r.json");
        run(
            spec,
            Some(json.clone()),
            Some(0.2),
            Some("mine".into()),
            true,
        )
        .unwrap();
        let r =
            schedkit_workload::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(r.scheduler, "mine");
        assert_eq!(r.duration_ns, 200_000_000);
        assert_eq!(r.groups[0].name, "hog");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn non_positive_duration_is_refused() {
        let dir = temp_dir("dur");
        let spec = write_spec(&dir, TINY);
        let err = run(spec, None, Some(0.0), None, true).unwrap_err();
        assert!(
            format!("{err}").starts_with("--duration must be a positive"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
