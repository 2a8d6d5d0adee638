//! The summary on synthetic traces whose figures are known exactly.

use proptest::prelude::*;
use schedkit_trace::summary::{Summary, SummaryBuilder, TaskSummary};
use schedkit_trace::{Event, Pid, Sink, Target, TraceInfo, TraceSource};

fn info(nr_cpus: u32) -> TraceInfo {
    TraceInfo {
        source: TraceSource::Simulated,
        nr_cpus,
        scheduler: "rustland".into(),
        start_ns: 0,
    }
}

fn summarize(nr_cpus: u32, events: &[Event], end_ns: u64) -> Summary {
    let mut b = SummaryBuilder::new();
    b.begin(&info(nr_cpus)).unwrap();
    for ev in events {
        b.event(ev).unwrap();
    }
    b.finish(end_ns).unwrap();
    b.into_summary()
}

fn thread(ts_ns: u64, pid: Pid, tgid: Pid, comm: &str, scheduler: bool) -> Event {
    Event::Thread {
        ts_ns,
        pid,
        tgid,
        comm: comm.into(),
        scheduler,
    }
}

fn wake(ts_ns: u64, pid: Pid) -> Event {
    Event::Wakeup {
        ts_ns,
        pid,
        cpu: 0,
        waker: None,
        new_task: false,
    }
}

fn switch(ts_ns: u64, cpu: u32, prev: Pid, prev_runnable: bool, next: Pid) -> Event {
    Event::Switch {
        ts_ns,
        cpu,
        prev,
        prev_runnable,
        next,
    }
}

fn task(s: &Summary, pid: Pid) -> &TaskSummary {
    let mut found = s.tasks.iter().filter(|t| t.pid == pid);
    let t = found.next().expect("task in summary");
    assert!(found.next().is_none(), "one task with pid {pid}");
    t
}

#[test]
fn wakeup_latency_is_exact() {
    let s = summarize(1, &[wake(1_000, 7), switch(4_000, 0, 0, false, 7)], 10_000);
    let t = task(&s, 7);
    assert_eq!(t.wakeup.count, 1);
    assert_eq!(t.wakeup.p50_us, 3.0);
    assert_eq!(t.wakeup.p99_us, 3.0);
    assert_eq!(t.wakeup.max_us, 3.0);
    assert_eq!(t.wakeup.mean_us, 3.0);
    assert_eq!(t.runs, 1);
    assert_eq!(t.run_ns, 6_000);
}

#[test]
fn wakeup_percentiles_over_many_samples() {
    // Latencies 10, 20, ..., 1000 ns: the median is the 50th, p99 the 99th.
    let mut events = Vec::new();
    for i in 1..=100u64 {
        let base = i * 100_000;
        events.push(wake(base, 7));
        events.push(switch(base + i * 10, 0, 0, false, 7));
        events.push(switch(base + 50_000, 0, 7, false, 0));
    }
    let s = summarize(1, &events, 101 * 100_000);
    let t = task(&s, 7);
    assert_eq!(t.wakeup.count, 100);
    assert_eq!(t.wakeup.p50_us, 0.5);
    assert_eq!(t.wakeup.p99_us, 0.99);
    assert_eq!(t.wakeup.max_us, 1.0);
    assert_eq!(t.wakeup.mean_us, 0.505);
    assert_eq!(t.voluntary, 100);
    assert_eq!(t.involuntary, 0);
    assert_eq!(t.runs, 100);
}

#[test]
fn a_second_wakeup_keeps_the_first_and_a_running_task_ignores_wakeups() {
    let s = summarize(
        1,
        &[
            wake(1_000, 7),
            wake(2_000, 7), // already waiting: the clock keeps 1000
            switch(4_000, 0, 0, false, 7),
            wake(5_000, 7), // running: ignored
            switch(6_000, 0, 7, false, 0),
            wake(7_000, 7),
            switch(8_000, 0, 0, false, 7),
        ],
        10_000,
    );
    let t = task(&s, 7);
    assert_eq!(t.wakeups, 2);
    assert_eq!(t.wakeup.count, 2);
    assert_eq!(t.wakeup.max_us, 3.0);
    assert_eq!(t.wakeup.mean_us, 2.0);
    assert_eq!(t.run_ns, 2_000 + 2_000);
}

#[test]
fn a_wakeup_of_a_task_running_since_before_the_trace_is_dropped_when_it_switches_out() {
    // Task 7 runs on CPU 0 from before the trace: its wake-up at 1000 is spurious.
    let s = summarize(
        1,
        &[
            wake(1_000, 7),
            switch(2_000, 0, 7, false, 0),
            switch(9_000, 0, 0, false, 7),
        ],
        10_000,
    );
    let t = task(&s, 7);
    assert_eq!(t.wakeup.count, 0);
    // Before the CPU's first switch its occupant is unknown: no run time counted.
    assert_eq!(t.run_ns, 1_000);
    assert_eq!(s.cpus[0].busy_ns, 1_000);
    assert_eq!(s.cpus[0].observed_ns, 8_000);
}

#[test]
fn preemption_is_involuntary_and_measured_as_run_delay() {
    let s = summarize(
        1,
        &[
            switch(0, 0, 0, false, 1),
            wake(1_000, 2),
            switch(2_000, 0, 1, true, 2),
            wake(3_000, 1), // already runnable (preempted): ignored
            switch(5_000, 0, 2, false, 1),
        ],
        10_000,
    );
    let a = task(&s, 1);
    assert_eq!((a.involuntary, a.voluntary), (1, 0));
    assert_eq!(a.wakeup.count, 0);
    assert_eq!(a.run_delay.count, 1);
    assert_eq!(a.run_delay.max_us, 3.0);
    assert_eq!(a.delay.count, 1);
    assert_eq!(a.delay.max_us, 3.0);
    assert_eq!(a.runs, 2);
    assert_eq!(a.run_ns, 2_000 + 5_000);
    let b = task(&s, 2);
    assert_eq!((b.involuntary, b.voluntary), (0, 1));
    assert_eq!(b.wakeup.max_us, 1.0);
    assert_eq!(b.run_delay.count, 0);
    assert_eq!(b.run_ns, 3_000);
}

#[test]
fn migrations_are_counted() {
    let migrate = |ts_ns, from, to| Event::Migrate {
        ts_ns,
        pid: 9,
        from,
        to,
    };
    let s = summarize(
        2,
        &[
            migrate(100, 0, 1),
            migrate(200, 1, 0),
            migrate(300, 0, 1),
            Event::Migrate {
                ts_ns: 400,
                pid: 0,
                from: 0,
                to: 1,
            },
        ],
        1_000,
    );
    assert_eq!(task(&s, 9).migrations, 3);
    assert!(s.tasks.iter().all(|t| t.pid != 0));
}

#[test]
fn pid_zero_is_never_a_task() {
    let s = summarize(1, &[wake(100, 0), switch(200, 0, 0, false, 0)], 1_000);
    assert!(s.tasks.is_empty());
    assert_eq!(s.cpus[0].busy_ns, 0);
}

#[test]
fn cpu_busy_share_is_exact() {
    let s = summarize(
        2,
        &[
            switch(0, 0, 0, false, 1),
            switch(4_000, 0, 1, false, 0),
            // CPU 1's occupant is unknown until its first switch, at 2000.
            switch(2_000, 1, 0, false, 2),
        ],
        10_000,
    );
    assert_eq!(s.duration_ns, 10_000);
    assert_eq!(s.cpus.len(), 2);
    assert_eq!(s.cpus[0].busy_ns, 4_000);
    assert_eq!(s.cpus[0].busy_share, 0.4);
    assert_eq!(s.cpus[0].observed_ns, 10_000);
    assert_eq!(s.cpus[1].busy_ns, 8_000);
    assert_eq!(s.cpus[1].busy_share, 0.8);
    assert_eq!(s.cpus[1].observed_ns, 8_000);
    assert_eq!(task(&s, 2).run_ns, 8_000);
    assert_eq!(task(&s, 2).cpu_share, 0.8);
    assert_eq!(task(&s, 2).machine_share, 0.4);
}

#[test]
fn scheduler_share_is_exact() {
    let s = summarize(
        2,
        &[
            thread(0, 50, 50, "rustland", true),
            thread(0, 51, 50, "rustland-stats", true),
            thread(0, 60, 60, "work", false),
            switch(0, 0, 0, false, 60),
            switch(1_000, 0, 60, true, 50),
            switch(3_000, 0, 50, false, 60),
            switch(0, 1, 0, false, 51),
            switch(500, 1, 51, false, 0),
        ],
        10_000,
    );
    assert_eq!(s.scheduler_run_ns, 2_500);
    assert_eq!(s.scheduler_machine_share, 0.125);
    assert_eq!(s.scheduler_cpu_share, 0.25);
    assert!(task(&s, 50).scheduler);
    assert!(!task(&s, 60).scheduler);
    let p = s.processes.iter().find(|p| p.tgid == 50).unwrap();
    assert!(p.scheduler);
    assert_eq!(p.threads, 2);
    assert_eq!(p.run_ns, 2_500);
}

#[test]
fn processes_merge_their_threads() {
    let s = summarize(
        1,
        &[
            thread(0, 101, 100, "app-worker", false),
            thread(0, 100, 100, "app", false),
            thread(0, 102, 102, "other", false),
            wake(1_000, 100),
            switch(2_000, 0, 0, false, 100), // 1 µs
            wake(2_500, 101),
            switch(3_000, 0, 100, false, 0),
            switch(4_500, 0, 0, false, 101), // 2 µs
            wake(5_000, 102),
            switch(6_000, 0, 101, false, 102), // 1 µs
            wake(6_000, 101),
            switch(9_000, 0, 102, false, 101), // 3 µs
            Event::Migrate {
                ts_ns: 9_500,
                pid: 101,
                from: 0,
                to: 0,
            },
        ],
        10_000,
    );
    assert_eq!(s.processes.len(), 2);
    let app = &s.processes[0];
    assert_eq!(app.tgid, 100);
    assert_eq!(app.comm, "app", "the main thread names the process");
    assert_eq!(app.threads, 2);
    assert_eq!(app.run_ns, 1_000 + 1_500 + 1_000);
    assert_eq!(app.runs, 3);
    assert_eq!(app.voluntary, 2);
    assert_eq!(app.migrations, 1);
    assert_eq!(app.wakeup.count, 3);
    assert_eq!(app.wakeup.p50_us, 2.0);
    assert_eq!(app.wakeup.max_us, 3.0);
    assert_eq!(app.wakeup.mean_us, 2.0);
    assert_eq!(app.cpu_share, 0.35);
    let other = &s.processes[1];
    assert_eq!((other.tgid, other.comm.as_str()), (102, "other"));
    assert_eq!(other.run_ns, 3_000);
    // Tasks come by decreasing run time.
    let order: Vec<Pid> = s.tasks.iter().map(|t| t.pid).collect();
    assert_eq!(order, [102, 101, 100]);
}

#[test]
fn exit_drops_pending_state_and_a_reused_pid_is_a_new_task() {
    let mut events = vec![thread(0, 5, 5, "old", false)];
    for i in 0..3u64 {
        events.push(wake(i * 1_000, 5));
        events.push(switch(i * 1_000 + 100, 0, 0, false, 5));
        events.push(switch(i * 1_000 + 500, 0, 5, false, 0));
    }
    events.extend([
        wake(3_000, 5),
        Event::Exit {
            ts_ns: 3_100,
            pid: 5,
        },
        thread(4_000, 5, 5, "new", false),
        Event::Wakeup {
            ts_ns: 4_000,
            pid: 5,
            cpu: 0,
            waker: None,
            new_task: true,
        },
        switch(4_200, 0, 0, false, 5),
    ]);
    let s = summarize(1, &events, 5_000);
    assert_eq!(s.tasks.len(), 2);
    let old = s.tasks.iter().find(|t| t.comm == "old").unwrap();
    let new = s.tasks.iter().find(|t| t.comm == "new").unwrap();
    assert!(old.exited && !new.exited);
    // The wake-up at 3000 died with the thread: 3 samples of 100 ns.
    assert_eq!(old.wakeup.count, 3);
    assert_eq!(old.wakeup.p99_us, 0.1);
    assert_eq!(old.run_ns, 3 * 400);
    assert_eq!(new.wakeup.count, 1);
    assert_eq!(new.wakeup.max_us, 0.2);
    assert_eq!(new.run_ns, 800);
    // Same pid, same process: the compressed histogram of the old one merges.
    assert_eq!(s.processes.len(), 1);
    assert_eq!(s.processes[0].comm, "new");
    assert_eq!(s.processes[0].threads, 2);
    assert_eq!(s.processes[0].wakeup.count, 4);
    assert_eq!(s.processes[0].wakeup.max_us, 0.2);
}

#[test]
fn trips_through_the_policy_are_measured() {
    let decision = |ts_ns, pid, kernel| Event::Decision {
        ts_ns,
        pid,
        target: if kernel { Target::Any } else { Target::Cpu(0) },
        slice_ns: 5_000_000,
        vtime: 0,
        preempt: false,
        kernel,
    };
    let s = summarize(
        1,
        &[
            Event::Enqueued {
                ts_ns: 1_000,
                pid: 3,
                cpu: 0,
            },
            Event::Enqueued {
                ts_ns: 1_200,
                pid: 3,
                cpu: 0,
            }, // keeps the first
            decision(1_500, 3, false),
            switch(2_500, 0, 0, false, 3),
            decision(3_000, 4, true),
            switch(3_200, 0, 3, false, 4),
        ],
        10_000,
    );
    let trips = s.trips.expect("trips present");
    assert_eq!(trips.enqueued, 2);
    assert_eq!(trips.policy_decisions, 1);
    assert_eq!(trips.kernel_decisions, 1);
    assert_eq!(trips.to_any_cpu, 1);
    assert_eq!(trips.to_decision.count, 1);
    assert_eq!(trips.to_decision.max_us, 0.5);
    assert_eq!(trips.to_running.count, 2);
    assert_eq!(trips.to_running.p50_us, 0.2);
    assert_eq!(trips.to_running.max_us, 1.0);

    let none = summarize(1, &[switch(0, 0, 0, false, 1)], 10);
    assert!(none.trips.is_none());
}

#[test]
fn trace_figures_and_lost_events() {
    let mut b = SummaryBuilder::new();
    b.begin(&TraceInfo {
        source: TraceSource::Kernel,
        nr_cpus: 4,
        scheduler: "eevdf".into(),
        start_ns: 1_000_000,
    })
    .unwrap();
    b.event(&Event::Lost {
        ts_ns: 1_500_000,
        count: 7,
    })
    .unwrap();
    b.event(&Event::Lost {
        ts_ns: 1_600_000,
        count: 5,
    })
    .unwrap();
    b.finish(3_000_000).unwrap();
    let s = b.summary();
    assert_eq!(s.lost_events, 12);
    assert_eq!(s.duration_ns, 2_000_000);
    assert_eq!(s.nr_cpus, 4);
    assert_eq!(s.cpus.len(), 4);
    assert_eq!(s.scheduler, "eevdf");
    assert_eq!(s.source, TraceSource::Kernel);
}

#[test]
fn negative_intervals_count_as_zero() {
    // Out of order (the sink's contract broken): no panic, latencies clamp to 0.
    let s = summarize(
        1,
        &[
            switch(5_000, 0, 0, false, 0),
            wake(5_000, 7),
            switch(4_000, 0, 0, false, 7),
        ],
        3_000,
    );
    let t = task(&s, 7);
    assert_eq!(t.wakeup.count, 1);
    assert_eq!(t.wakeup.max_us, 0.0);
    assert_eq!(t.run_ns, 0);
}

#[test]
fn the_table_shows_the_expected_rows() {
    let s = summarize(
        2,
        &[
            thread(0, 50, 50, "rustland", true),
            thread(0, 60, 60, "a-very-long-thread-name", false),
            wake(0, 60),
            switch(3_000, 0, 0, false, 60),
            switch(1_000_000, 1, 0, false, 50),
            switch(1_500_000, 1, 50, false, 0),
            Event::Enqueued {
                ts_ns: 2_000_000,
                pid: 60,
                cpu: 0,
            },
        ],
        10_000_000,
    );
    let mut out = Vec::new();
    s.write_table(&mut out, 10).unwrap();
    let text = String::from_utf8(out).unwrap();
    println!("{text}");
    assert!(text.contains(
        "source simulated, scheduler rustland, duration 10.000 ms, 2 cpus, 0 events lost"
    ));
    assert!(text.contains("2.50% of the machine (5.00% of one cpu)"));
    assert!(text.contains("cpu0   100.0%  cpu1     5.0%"));
    assert!(text.contains("top 2 of 2 processes"));
    // The long name is cut to 16 characters.
    assert!(text.contains("a-very-long-thre "));
    assert!(!text.contains("a-very-long-thread"));
    let threads: Vec<Vec<&str>> = text
        .split("\n\n")
        .find(|section| section.starts_with("top 2 of 2 threads"))
        .expect("the threads' table")
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    // comm, pid, runs, run ms, %cpu, wake p50, p99, max, vol, invol, migr; * marks
    // the scheduler.
    assert_eq!(
        threads,
        [
            vec![
                "a-very-long-thre",
                "60",
                "1",
                "10.0",
                "100.0%",
                "3.0",
                "3.0",
                "3.0",
                "0",
                "0",
                "0"
            ],
            vec!["rustland", "*", "50", "1", "0.5", "5.0%", "-", "-", "-", "1", "0", "0"],
        ]
    );
    assert!(text.contains("trips through the policy: 1 enqueued"));
    assert!(text.contains("enqueued -> decision"));

    // Top 1: one row per table.
    let mut out = Vec::new();
    s.write_table(&mut out, 1).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("rustland        *").count(), 0);
    assert_eq!(text.matches("a-very-long-thre").count(), 2);
}

/// Equal, floats within a relative 1e-12 (JSON's decimal floats may not come back
/// to the last bit).
fn assert_close(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                "{path}: {x} != {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (k, v) in x {
                assert_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn json_round_trip() {
    let s = summarize(
        2,
        &[
            thread(0, 50, 50, "rustland", true),
            wake(0, 60),
            switch(3_000, 0, 0, false, 60),
            switch(7_000, 0, 60, true, 50),
            switch(9_000, 0, 50, false, 60),
            Event::Decision {
                ts_ns: 9_500,
                pid: 60,
                target: Target::Cpu(1),
                slice_ns: 1,
                vtime: 2,
                preempt: true,
                kernel: false,
            },
        ],
        30_000,
    );
    let mut json = Vec::new();
    serde_json::to_writer_pretty(&mut json, &s).unwrap();
    let back: Summary = serde_json::from_slice(&json).unwrap();
    assert_eq!(back.tasks.len(), s.tasks.len());
    assert_eq!(back.trips.as_ref().unwrap().preempting, 1);
    assert_close(
        &serde_json::to_value(&s).unwrap(),
        &serde_json::to_value(&back).unwrap(),
        "summary",
    );
    let text = String::from_utf8(json).unwrap();
    for field in [
        "\"wakeup\"",
        "\"p99_us\"",
        "\"busy_share\"",
        "\"scheduler_cpu_share\"",
    ] {
        assert!(text.contains(field), "{field} in the JSON");
    }
}

#[test]
fn a_summary_before_finish_ends_at_the_last_event() {
    let mut b = SummaryBuilder::new();
    b.begin(&info(1)).unwrap();
    b.event(&switch(1_000, 0, 0, false, 1)).unwrap();
    b.event(&wake(4_000, 2)).unwrap();
    let s = b.summary();
    assert_eq!(s.end_ns, 4_000);
    assert_eq!(task(&s, 1).run_ns, 3_000);
    b.finish(6_000).unwrap();
    assert_eq!(task(&b.summary(), 1).run_ns, 5_000);
}

proptest! {
    /// Whatever the switches, run time adds up: the tasks' run time is the CPUs'
    /// busy time, no CPU is busier than observed, and runs are switch-ins.
    #[test]
    fn run_time_adds_up(
        steps in prop::collection::vec((0u64..5_000, 0u32..3, 0u32..6, any::<bool>(), 0u8..4), 1..200)
    ) {
        let mut ts = 0;
        let mut events = Vec::new();
        let mut on_cpu = [0u32; 3];
        let mut switch_ins = 0;
        for (dt, cpu, next, runnable, kind) in steps {
            ts += dt;
            match kind {
                0 => events.push(wake(ts, next)),
                1 => events.push(Event::Exit { ts_ns: ts, pid: next }),
                _ => {
                    let prev = on_cpu[cpu as usize];
                    events.push(switch(ts, cpu, prev, runnable, next));
                    on_cpu[cpu as usize] = next;
                    switch_ins += u64::from(next != 0);
                }
            }
        }
        let end = ts + 1_000;
        let s = summarize(3, &events, end);
        let run: u64 = s.tasks.iter().map(|t| t.run_ns).sum();
        let busy: u64 = s.cpus.iter().map(|c| c.busy_ns).sum();
        prop_assert_eq!(run, busy);
        for c in &s.cpus {
            prop_assert!(c.busy_ns <= c.observed_ns && c.observed_ns <= s.duration_ns);
        }
        prop_assert_eq!(s.tasks.iter().map(|t| t.runs).sum::<u64>(), switch_ins);
        let process_run: u64 = s.processes.iter().map(|p| p.run_ns).sum();
        prop_assert_eq!(process_run, run);
    }
}
