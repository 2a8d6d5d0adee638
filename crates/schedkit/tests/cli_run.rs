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

#[test]
fn policies_lists_each_policys_options_with_defaults() {
    let o = schedkit(&["policies"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "--slice-us N",
        "--slice-us-min N",
        "--percpu-local",
        "[default: 5000 us; 50 to 1000000]",
        "[default: 20000 us; 50 to 1000000]",
    ] {
        assert!(out.contains(needle), "{needle} missing in {out}");
    }
    assert!(out.lines().any(|l| l.starts_with("eevdf ")), "{out}");
}

#[test]
fn an_option_the_policy_does_not_take_is_refused_before_anything_else() {
    assert_one_clear_error(
        &schedkit(&["run", "fifo", "--percpu-local"]),
        "the policy `fifo` takes no option --percpu-local: its options are --slice-us",
    );
    assert_one_clear_error(
        &schedkit(&[
            "sim",
            "no-such-spec.toml",
            "--policy",
            "eevdf",
            "--slice-us",
            "5000",
        ]),
        "`eevdf` takes no option --slice-us",
    );
    assert_one_clear_error(
        &schedkit(&[
            "sim",
            "no-such-spec.toml",
            "--policy",
            "fifo",
            "--slice-us",
            "1e9",
        ]),
        "--slice-us takes a whole number of us from 50 to 1000000",
    );
    assert_one_clear_error(
        &schedkit(&[
            "compare",
            "no-such-spec.toml",
            "--policies",
            "eevdf,fifo",
            "--percpu-local",
        ]),
        "none of the compared schedulers (eevdf, fifo) takes --percpu-local",
    );
}

#[test]
fn numbers_out_of_bounds_are_refused_without_a_panic() {
    for (args, needle) in [
        (
            &["run", "fifo", "--stats", "1e20"][..],
            "--stats takes 0.1 to 3600",
        ),
        (
            &["run", "fifo", "--stats", "1e-9"],
            "--stats takes 0.1 to 3600",
        ),
        (
            &["run", "fifo", "--stats", "NaN"],
            "--stats takes 0.1 to 3600",
        ),
        (
            &["run", "fifo", "--slice-us", "10000000"],
            "--slice-us must be between 50 and 1000000 us",
        ),
        (
            &["monitor", "--interval", "1e20"],
            "--interval takes 0.1 to 3600",
        ),
        (
            &[
                "sim",
                "no-such-spec.toml",
                "--policy",
                "rustland",
                "--slice-us",
                "18446744073709552",
            ],
            "--slice-us must be between",
        ),
    ] {
        assert_one_clear_error(&schedkit(args), needle);
    }
}

#[test]
fn new_refuses_a_path_that_is_not_empty_and_a_bad_name() {
    let dir = std::env::temp_dir().join(format!("schedkit-cli-new-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep"), "").unwrap();
    let d = dir.to_str().unwrap();
    assert_one_clear_error(&schedkit(&["new", d]), "is not an empty directory");
    assert_one_clear_error(
        &schedkit(&["new", &format!("{d}/My-Policy")]),
        "`My-Policy` cannot name a policy",
    );
    assert!(std::fs::read_dir(&dir).unwrap().count() == 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibrate_refuses_bad_options_in_one_sentence() {
    assert_one_clear_error(&schedkit(&["calibrate", "--duration", "0"]), "--duration");
    assert_one_clear_error(
        &schedkit(&["calibrate", "--policy", "nosuch"]),
        "unknown policy",
    );
}

#[test]
fn calibrate_without_sched_ext_writes_what_it_measured_and_says_what_it_kept() {
    if std::path::Path::new("/sys/kernel/sched_ext").exists() {
        // As root it would attach a scheduler to this machine: not in a host test.
        return;
    }
    let out = std::env::temp_dir().join(format!("schedkit-calibrate-{}.toml", std::process::id()));
    let o = schedkit(&[
        "calibrate",
        "-o",
        out.to_str().unwrap(),
        "--duration",
        "0.2",
        "--name",
        "host",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("kept from the default profile"), "{err}");
    assert!(err.contains("sched_wakeup_ns and per_task_ns"), "{err}");
    let p = schedkit_sim::MachineProfile::from_path(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(p.name, "host");
    assert!(p.context_switch_ns > 0 && p.fork_ns > 0, "{p:?}");
    // The file is what `sim --machine` reads.
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/pingpong.toml");
    let path = std::env::temp_dir().join(format!("schedkit-cal-sim-{}.toml", std::process::id()));
    std::fs::write(&path, p.to_toml(&[])).unwrap();
    let o = schedkit(&[
        "sim",
        spec,
        "--policy",
        "eevdf",
        "--duration",
        "0.2",
        "--machine",
        path.to_str().unwrap(),
    ]);
    std::fs::remove_file(&path).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn sim_refuses_a_bad_machine_profile_in_one_sentence() {
    let path =
        std::env::temp_dir().join(format!("schedkit-bad-profile-{}.toml", std::process::id()));
    std::fs::write(&path, "name = \"x\"\ncpus = 0\n").unwrap();
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/pingpong.toml");
    let o = schedkit(&["sim", spec, "--machine", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_one_clear_error(&o, "machine profile");
    assert_one_clear_error(
        &schedkit(&["sim", spec, "--machine", "/nonexistent/m.toml"]),
        "cannot be read",
    );
}
