//! The real executor on this machine, with short runs (about a second each). These
//! check behaviour that holds under any sane scheduler, not performance.

use schedkit_workload::exec::{self, ExecOptions};
use schedkit_workload::report::Report;
use schedkit_workload::spec::Spec;

fn run(text: &str) -> Report {
    let spec = Spec::from_str_named(text, "test.toml").unwrap();
    exec::run(&spec, &ExecOptions::default()).unwrap()
}

#[test]
fn periodic_group_reports_one_frame_per_period() {
    let r = run(r#"
        name = "frames"
        duration_s = 1
        [[group]]
        name = "tick"
        kind = "periodic"
        period_ms = 20
        work_ms = 1
    "#);
    let p = r.group("tick").unwrap().periodic.clone().unwrap();
    assert!((49..=51).contains(&p.frames), "frames {}", p.frames);
    assert!(p.start_lateness.count <= p.frames, "{p:?}");
    assert!(p.start_lateness.count >= 45, "{p:?}");
    // 1 ms of CPU per frame, about 50 frames.
    let cpu = r.group("tick").unwrap().cpu_ns;
    assert!((40_000_000..=70_000_000).contains(&cpu), "cpu {cpu}");
}

#[test]
fn two_equal_hogs_on_one_cpu_share_it_fairly() {
    let cpu = first_allowed_cpu();
    let r = run(&format!(
        r#"
        name = "fair"
        duration_s = 1
        [[group]]
        name = "hogs"
        kind = "cpu"
        count = 2
        affinity = [{cpu}]
    "#
    ));
    let g = r.group("hogs").unwrap();
    let (a, b) = (g.task_cpu_ns[0] as f64, g.task_cpu_ns[1] as f64);
    assert!((a - b).abs() / (a + b) < 0.10, "unfair: {a} vs {b}");
    // Both on one CPU: together no more than that CPU's time (plus clock slack).
    assert!(a + b <= 1.05e9, "{a} + {b}");
    assert_eq!(r.fairness.len(), 1);
    assert!(r.fairness[0].jain > 0.99, "{:?}", r.fairness);
}

#[test]
fn jobs_group_completes_its_total() {
    let r = run(r#"
        name = "jobs"
        duration_s = 1.5
        seed = 11
        [[group]]
        name = "make"
        kind = "jobs"
        parallel = 2
        total = 20
        work_ms = { dist = "uniform", min = 2, max = 6 }
    "#);
    let g = r.group("make").unwrap();
    let j = g.jobs.clone().unwrap();
    assert_eq!(j.started, 20);
    assert_eq!(j.completed, 20);
    assert_eq!(g.task_cpu_ns.len(), 20);
    // Each job burned at least its drawn size, at least 2 ms.
    assert!(
        g.task_cpu_ns.iter().all(|&ns| ns >= 1_900_000),
        "{:?}",
        g.task_cpu_ns
    );
    assert!(j.completion.mean_ns >= 2_000_000, "{j:?}");
}

#[test]
fn pingpong_pair_makes_round_trips_and_times_them() {
    let r = run(r#"
        name = "pp"
        duration_s = 0.5
        [[group]]
        name = "pp"
        kind = "pingpong"
        rounds = 2000
    "#);
    let p = r.group("pp").unwrap().pingpong.clone().unwrap();
    assert!(p.round_trips > 0 && p.round_trips <= 2000, "{p:?}");
    assert_eq!(p.latency.count, p.round_trips);
    assert!(
        p.latency.p50_ns > 0 && p.latency.p50_ns <= p.latency.max_ns,
        "{p:?}"
    );
}

#[test]
fn executor_report_round_trips_through_json() {
    let r = run(r#"
        name = "json"
        duration_s = 0.3
        [[group]]
        name = "tick"
        kind = "periodic"
        period_ms = 10
        work_ms = 1
        [[group]]
        name = "hog"
        kind = "cpu"
    "#);
    let back = Report::from_json(&r.to_json()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn unplaceable_affinity_is_an_error_before_the_run() {
    let spec = Spec::from_str_named(
        "name = \"x\"\nduration_s = 5\n[[group]]\nname = \"h\"\nkind = \"cpu\"\naffinity = [4000]\n",
        "x.toml",
    )
    .unwrap();
    let t = std::time::Instant::now();
    let err = exec::run(&spec, &ExecOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot pin group `h`"), "{err}");
    assert!(t.elapsed().as_secs() < 2, "the run started anyway");
}

/// A CPU this test process may run on (CI may restrict the set).
fn first_allowed_cpu() -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .unwrap()
    }
}

#[test]
fn nice_level_sets_the_cpu_ratio_between_hogs() {
    let cpu = last_allowed_cpu();
    let r = run(&format!(
        r#"
        name = "nice"
        duration_s = 1
        [[group]]
        name = "normal"
        kind = "cpu"
        affinity = [{cpu}]
        [[group]]
        name = "niced"
        kind = "cpu"
        nice = 5
        affinity = [{cpu}]
    "#
    ));
    let normal = r.group("normal").unwrap().cpu_ns as f64;
    let niced = r.group("niced").unwrap().cpu_ns as f64;
    // Weights 1024 : 335 give about 3 : 1; equal nice would give 1 : 1.
    assert!(
        normal > 2.0 * niced,
        "nice 0 got {normal} ns, nice 5 got {niced} ns"
    );
}

/// The last CPU this test process may run on.
fn last_allowed_cpu() -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .rev()
            .find(|&c| libc::CPU_ISSET(c, &set))
            .unwrap()
    }
}

#[test]
fn spec_over_the_task_limit_is_refused_before_anything_starts() {
    // Built in code, past the parser's checks: the executor counts for itself.
    let mut spec = Spec::from_str_named(
        r#"
        name = "crowd"
        duration_s = 0.001
        [[group]]
        name = "sleepers"
        kind = "periodic"
        period_ms = 1000
        work_ms = 0.001
        "#,
        "test.toml",
    )
    .unwrap();
    spec.groups[0].count = schedkit_workload::spec::MAX_TASKS + 1;
    let err = exec::run(&spec, &ExecOptions::default()).unwrap_err();
    assert!(
        matches!(&err, exec::ExecError::TooManyTasks(e) if e.nr_tasks == 4097),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with("scenario `crowd` would run 4097 tasks at once on "));
}
