//! The `schedkit run`, `policies` and `monitor` commands as a user meets them on a
//! machine that cannot run a scheduler: one sentence, non-zero exit, never a panic.

use std::process::{Command, Output};

fn schedkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedkit"))
        .args(args)
        .env(
            "SCHEDKIT_SOCKET",
            std::env::temp_dir().join("schedkit-cli-test-none.sock"),
        )
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_clear_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "exit status {:?}", o.status);
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err:?}"
    );
}

#[test]
fn policies_lists_fifo_and_rustland() {
    let o = schedkit(&["policies"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("fifo ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("rustland ")), "{out}");
}

#[test]
fn an_unknown_policy_is_refused_with_the_list() {
    assert_one_clear_error(
        &schedkit(&["run", "nosuch"]),
        "choose one of rustland, fifo",
    );
}

#[test]
fn bad_slice_options_are_refused() {
    assert_one_clear_error(&schedkit(&["run", "fifo", "--slice-us", "0"]), "--slice-us");
    assert_one_clear_error(
        &schedkit(&[
            "run",
            "rustland",
            "--slice-us",
            "1000",
            "--slice-us-min",
            "2000",
        ]),
        "--slice-us-min",
    );
    assert_one_clear_error(&schedkit(&["run", "fifo", "--stats=-1"]), "--stats");
}

#[test]
fn a_machine_that_cannot_run_it_is_told_why() {
    if std::path::Path::new("/sys/kernel/sched_ext").exists() {
        return; // a sched_ext host: the VM tests cover attaching
    }
    let o = schedkit(&["run", "fifo"]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_one_clear_error(&o, "has no sched_ext");
        assert!(stderr(&o).contains("scripts/vm.sh"));
    } else {
        assert_one_clear_error(&o, "needs root");
    }
}

#[test]
fn monitor_without_a_running_scheduler_says_so() {
    assert_one_clear_error(
        &schedkit(&["monitor", "--count", "1"]),
        "no schedkit scheduler is running",
    );
}
