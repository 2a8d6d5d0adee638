//! Behaviour of the simulator as a whole: determinism, the EEVDF model's fairness,
//! the watchdog, CPU-time conservation, the timeline, policies compared, and specs at
//! the parser's limits.

use std::collections::{BTreeMap, VecDeque};

use schedkit_core::{Context, Decision, ExitInfo, Policy, QueuedTask};
use schedkit_policies::fifo::Fifo;
use schedkit_sim::{compare, plot, Scheduler, SimConfig, SimError, SimOutput, Simulation};
use schedkit_workload::spec::{MAX_TASKS, MAX_TIME_NS};
use schedkit_workload::Spec;

fn spec(text: &str) -> Spec {
    Spec::from_str_named(text, "test.toml").expect("valid test spec")
}

fn cfg(nr_cpus: u32) -> SimConfig {
    SimConfig {
        nr_cpus,
        ..SimConfig::default()
    }
}

fn policy(name: &str) -> Box<dyn Policy> {
    let entry = schedkit_policies::ENTRIES.iter().find(|e| e.name == name);
    entry.expect(name).build_default().expect(name)
}

/// Every kind of group at once.
const MIX: &str = r#"
name = "mix"
duration_s = 1
seed = 7

[[group]]
name = "game"
kind = "periodic"
period_ms = 10
work_ms = 2

[[group]]
name = "build"
kind = "jobs"
parallel = 3
work_ms = { dist = "exponential", mean = 8, max = 40 }

[[group]]
name = "pp"
kind = "pingpong"
work_us = 30

[[group]]
name = "hog"
kind = "cpu"
count = 2
nice = 5
"#;

fn run(sim: &Simulation, name: &str) -> SimOutput {
    if name == "eevdf" {
        sim.run_eevdf().expect("eevdf run")
    } else {
        sim.run(policy(name)).expect(name)
    }
}

#[test]
fn same_spec_policy_and_seed_give_byte_identical_json() {
    let sim = Simulation::new(spec(MIX), cfg(2));
    for name in ["fifo", "rustland", "eevdf"] {
        let a = run(&sim, name).to_json();
        let b = run(&sim, name).to_json();
        assert_eq!(a, b, "{name} is not deterministic");
    }
    // The seed matters: other job sizes give another report.
    let other = Simulation::new(
        spec(MIX),
        SimConfig {
            seed: Some(8),
            ..cfg(2)
        },
    );
    assert_ne!(run(&sim, "fifo").to_json(), run(&other, "fifo").to_json());
}

#[test]
fn json_output_reads_back_as_the_shared_report() {
    let sim = Simulation::new(spec(MIX), cfg(2));
    let out = run(&sim, "fifo");
    let back = schedkit_workload::Report::from_json(&out.to_json()).expect("a Report");
    assert_eq!(back, out.report);
    let v: serde_json::Value = serde_json::from_str(&out.to_json()).unwrap();
    assert!(v["simulation"]["decisions"].as_u64().unwrap() > 0);
}

/// Two CPU hogs for `duration_s` seconds.
fn two_hogs(duration_s: u32) -> String {
    format!("name = \"two hogs\"\nduration_s = {duration_s}\n[[group]]\nname = \"hog\"\nkind = \"cpu\"\ncount = 2\n")
}

#[test]
fn eevdf_gives_two_equal_hogs_on_one_cpu_half_each() {
    let out = Simulation::new(spec(&two_hogs(2)), cfg(1))
        .run_eevdf()
        .unwrap();
    let g = out.report.group("hog").unwrap();
    let total = out.report.duration_ns as f64;
    for &ns in &g.task_cpu_ns {
        let share = ns as f64 / total;
        assert!((share - 0.5).abs() < 0.02, "share {share}");
    }
    assert_eq!(g.task_cpu_ns.iter().sum::<u64>(), out.report.duration_ns);
}

#[test]
fn eevdf_shares_one_cpu_by_weight_two_to_one() {
    // Nice 0 weighs 1024 and nice 3 weighs 526: a 1.95:1 split.
    let text = r#"
name = "weights"
duration_s = 3
[[group]]
name = "heavy"
kind = "cpu"
[[group]]
name = "light"
kind = "cpu"
nice = 3
"#;
    let out = Simulation::new(spec(text), cfg(1)).run_eevdf().unwrap();
    let heavy = out.report.group("heavy").unwrap().cpu_ns as f64;
    let light = out.report.group("light").unwrap().cpu_ns as f64;
    let ratio = heavy / light;
    let expected = 1024.0 / 526.0;
    assert!(
        (ratio / expected - 1.0).abs() < 0.05,
        "ratio {ratio}, expected {expected}"
    );
    assert!((ratio / 2.0 - 1.0).abs() < 0.05, "ratio {ratio}");
}

#[test]
fn eevdf_lets_a_light_periodic_task_meet_every_deadline_against_hogs() {
    let text = r#"
name = "game vs hogs"
duration_s = 2
[[group]]
name = "game"
kind = "periodic"
period_ms = 16.667
work_ms = 2
[[group]]
name = "hog"
kind = "cpu"
count = 4
"#;
    let out = Simulation::new(spec(text), cfg(2)).run_eevdf().unwrap();
    let p = out.report.group("game").unwrap().periodic.clone().unwrap();
    assert_eq!(p.frames, 120);
    assert_eq!(p.deadline_misses, 0, "{p:?}");
}

/// FIFO, except that it holds the task called `victim-0` forever.
struct Starver {
    fifo: Fifo,
    kept: Vec<QueuedTask>,
}

impl Policy for Starver {
    fn name(&self) -> &'static str {
        "starver"
    }
    fn enqueue(&mut self, task: &QueuedTask, ctx: &mut Context<'_>) {
        if task.comm_str() == "victim-0" {
            self.kept.push(*task);
        } else {
            self.fifo.enqueue(task, ctx);
        }
    }
    fn dispatch(&mut self, ctx: &mut Context<'_>) -> Option<Decision> {
        self.fifo.dispatch(ctx)
    }
    fn nr_held(&self) -> usize {
        self.fifo.nr_held() + self.kept.len()
    }
}

#[test]
fn policy_that_never_dispatches_a_task_is_ejected_naming_it() {
    let text = r#"
name = "starve"
duration_s = 10
[[group]]
name = "hog"
kind = "cpu"
[[group]]
name = "victim"
kind = "cpu"
"#;
    let sim = Simulation::new(
        spec(text),
        SimConfig {
            watchdog_timeout_ns: 1_000_000_000,
            trace: true,
            ..cfg(1)
        },
    );
    let err = sim
        .run(Starver {
            fifo: Fifo::new(5_000_000),
            kept: Vec::new(),
        })
        .unwrap_err();
    let SimError::Ejected { exit, at_ns, trace } = err else {
        panic!("expected an ejection, got {err}");
    };
    assert_eq!(exit.kind, ExitInfo::KIND_ERROR_STALL);
    assert!(exit.is_error());
    // The victim is the second task: pid 1001.
    assert!(exit.message.contains("victim-0[1001]"), "{}", exit.message);
    assert!((1_000_000_000..2_000_000_000).contains(&at_ns), "{at_ns}");
    assert!(trace.is_some_and(|t| !t.is_empty()));
    // The same workload under FIFO itself is not ejected.
    assert!(sim.run(Fifo::new(5_000_000)).is_ok());
}

#[test]
fn every_cpu_nanosecond_is_task_scheduler_or_idle_time() {
    for name in ["fifo", "rustland", "eevdf"] {
        for cpus in [1, 3] {
            let out = run(&Simulation::new(spec(MIX), cfg(cpus)), name);
            let d = out.report.duration_ns;
            assert_eq!(d, 1_000_000_000);
            for (i, c) in out.sim.cpus.iter().enumerate() {
                assert_eq!(
                    c.task_ns + c.scheduler_ns + c.idle_ns,
                    d,
                    "{name}, CPU {i} of {cpus}: {c:?}"
                );
            }
            let cpu_task: u64 = out.sim.cpus.iter().map(|c| c.task_ns).sum();
            let cpu_sched: u64 = out.sim.cpus.iter().map(|c| c.scheduler_ns).sum();
            assert_eq!(cpu_task, out.sim.task_cpu_ns, "{name} on {cpus}");
            assert_eq!(cpu_sched, out.sim.scheduler_cpu_ns, "{name} on {cpus}");
            if name == "eevdf" {
                assert_eq!(cpu_sched, 0);
            } else {
                assert!(cpu_sched > 0, "{name}: the scheduler used no CPU");
            }
        }
    }
    // Without jobs (whose unfinished runs the report leaves out), the report's
    // per-group CPU time is that same total.
    let out = run(&Simulation::new(spec(&two_hogs(2)), cfg(2)), "fifo");
    let groups: u64 = out.report.groups.iter().map(|g| g.cpu_ns).sum();
    assert_eq!(groups, out.sim.task_cpu_ns);
}

#[test]
fn user_space_scheduler_cost_is_charged_as_cpu_time() {
    let s = spec(MIX);
    let with = |step, per_task| {
        Simulation::new(
            s.clone(),
            SimConfig {
                step_cost_ns: step,
                per_task_cost_ns: per_task,
                ..cfg(2)
            },
        )
        .run(Fifo::new(5_000_000))
        .unwrap()
        .sim
    };
    let free = with(0, 0);
    let cheap = with(5_000, 1_000);
    let dear = with(50_000, 10_000);
    assert_eq!(free.scheduler_cpu_ns, 0);
    assert!(cheap.scheduler_cpu_ns > 0);
    assert!(dear.scheduler_cpu_ns > 5 * cheap.scheduler_cpu_ns);
    assert!(dear.task_cpu_ns < cheap.task_cpu_ns);
}

#[test]
fn waking_task_with_an_idle_previous_cpu_bypasses_user_space() {
    let text = r#"
name = "pingpong"
duration_s = 0.5
[[group]]
name = "pp"
kind = "pingpong"
work_us = 50
"#;
    let sim = Simulation::new(spec(text), cfg(4));
    let out = sim.run(Fifo::new(5_000_000)).unwrap();
    let pp = out.report.group("pp").unwrap().pingpong.clone().unwrap();
    assert!(pp.round_trips > 1000, "{pp:?}");
    // Nothing else runs: every wake-up finds its previous CPU idle.
    assert!(out.sim.kernel_dispatches >= 2 * pp.round_trips - 2);
    let no_fast_path = Simulation::new(
        spec(text),
        SimConfig {
            kernel_fast_path: false,
            ..cfg(4)
        },
    )
    .run(Fifo::new(5_000_000))
    .unwrap();
    assert_eq!(no_fast_path.sim.kernel_dispatches, 0);
    let slow = no_fast_path.report.group("pp").unwrap().pingpong.clone();
    // Through user space, every message waits for a scheduling step.
    assert!(slow.unwrap().latency.p50_ns > pp.latency.p50_ns);
}

#[test]
fn jobs_stop_at_their_total() {
    let text = r#"
name = "jobs"
duration_s = 2
[[group]]
name = "build"
kind = "jobs"
parallel = 2
total = 10
work_ms = 10
"#;
    for name in ["fifo", "eevdf"] {
        let out = run(&Simulation::new(spec(text), cfg(2)), name);
        let j = out.report.group("build").unwrap().jobs.clone().unwrap();
        assert_eq!((j.started, j.completed), (10, 10), "{name}");
        // Two jobs on two CPUs never wait for each other; under a policy, each waits
        // only for the user-space scheduler's steps (microseconds).
        if name == "eevdf" {
            assert_eq!(j.completion.max_ns, 10_000_000, "{name}: {j:?}");
        } else {
            assert!(
                (10_000_000..10_100_000).contains(&j.completion.max_ns),
                "{j:?}"
            );
        }
    }
}

#[test]
fn trace_is_well_formed_and_no_cpu_runs_two_things_at_once() {
    let sim = Simulation::new(
        spec(MIX),
        SimConfig {
            trace: true,
            ..cfg(2)
        },
    );
    for name in ["fifo", "eevdf"] {
        let out = run(&sim, name);
        let text = out.trace.expect("trace recorded").to_json_string();
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let events = v["traceEvents"].as_array().expect("traceEvents array");
        let mut runs: BTreeMap<u64, Vec<(f64, f64, String)>> = BTreeMap::new();
        let mut phases: BTreeMap<String, usize> = BTreeMap::new();
        for e in events {
            let ph = e["ph"].as_str().expect("ph");
            *phases.entry(ph.to_string()).or_default() += 1;
            assert!(e["name"].is_string(), "{e}");
            assert!(e["pid"].is_u64() && e["tid"].is_u64(), "{e}");
            let ts = e["ts"].as_f64().expect("ts");
            assert!((0.0..=1e6).contains(&ts), "{e}");
            match ph {
                "X" => {
                    let dur = e["dur"].as_f64().expect("dur");
                    assert!(dur > 0.0, "{e}");
                    if e["pid"] != 0 {
                        // A task's own track.
                        assert_eq!(e["name"], "running", "{e}");
                        continue;
                    }
                    let tid = e["tid"].as_u64().unwrap();
                    assert!(tid < 2, "{e}");
                    runs.entry(tid).or_default().push((
                        ts,
                        ts + dur,
                        e["name"].as_str().unwrap().to_string(),
                    ));
                }
                "i" => assert_eq!(e["s"], "t"),
                "s" | "f" => assert_eq!(e["cat"], "wakeup"),
                "C" => assert!(e["args"]["value"].is_u64()),
                "M" => assert!(e["args"]["name"].is_string() || e["args"]["sort_index"].is_u64()),
                other => panic!("unexpected phase {other}"),
            }
        }
        assert!(
            phases["X"] > 100 && phases["i"] > 100 && phases["C"] > 100,
            "{phases:?}"
        );
        let mut busy = 0.0;
        for (cpu, mut spans) in runs {
            spans.sort_by(|a, b| a.0.total_cmp(&b.0));
            for w in spans.windows(2) {
                assert!(
                    w[0].1 <= w[1].0 + 1e-6,
                    "{name}: CPU {cpu} runs {} until {} but {} from {}",
                    w[0].2,
                    w[0].1,
                    w[1].2,
                    w[1].0
                );
            }
            busy += spans.iter().map(|s| s.1 - s.0).sum::<f64>();
        }
        // The timeline accounts for the same busy time as the CPUs.
        let cpus: u64 = out
            .sim
            .cpus
            .iter()
            .map(|c| c.task_ns + c.scheduler_ns)
            .sum();
        assert!(
            (busy * 1e3 - cpus as f64).abs() < 1e3,
            "{busy} us vs {cpus} ns"
        );
    }
}

#[test]
fn trace_writes_both_formats_with_the_same_cpu_slices() {
    use schedkit_trace::perfetto::{self, track_event};
    use schedkit_trace::{json, Event};

    let sim = Simulation::new(
        spec(MIX),
        SimConfig {
            trace: true,
            ..cfg(2)
        },
    );
    for name in ["fifo", "eevdf"] {
        let out = run(&sim, name);
        let trace = out.trace.expect("trace recorded");
        let events = trace.events();
        assert!(events.windows(2).all(|w| w[0].ts_ns() <= w[1].ts_ns()));
        let mut pf = Vec::new();
        trace.write_perfetto(&mut pf).unwrap();
        let mut js = Vec::new();
        trace.write_json(&mut js).unwrap();
        let (jn, jslices) = json::read_cpu_slices(&js[..]).unwrap();
        let (pn, pslices) = perfetto::read_cpu_slices(&pf[..]).unwrap();
        assert_eq!((jn, pn), (2, 2));
        assert_eq!(jslices, pslices, "{name}");
        // The slices account for every busy nanosecond of the CPUs.
        let busy: u64 = jslices.iter().map(|s| s.end_ns - s.start_ns).sum();
        let cpus: u64 = out
            .sim
            .cpus
            .iter()
            .map(|c| c.task_ns + c.scheduler_ns)
            .sum();
        assert_eq!(busy, cpus, "{name}");
        assert_eq!(
            jslices.iter().any(|s| s.scheduler),
            name == "fifo",
            "the user-space scheduler runs only under a policy"
        );
        assert!(jslices.iter().any(|s| s.name == "pp-0a"), "{name}");

        let decoded = perfetto::decode(&pf).unwrap();
        let threads: Vec<String> = decoded
            .packet
            .iter()
            .filter_map(|p| {
                p.track_descriptor
                    .as_ref()?
                    .thread
                    .as_ref()?
                    .thread_name
                    .clone()
            })
            .collect();
        assert!(threads.iter().any(|t| t == "game-0"), "{threads:?}");
        let instants = |cat: &str| {
            decoded
                .packet
                .iter()
                .filter_map(|p| p.track_event.as_ref())
                .filter(|e| e.r#type() == track_event::Type::Instant)
                .filter(|e| e.categories.iter().any(|c| c == cat))
                .count()
        };
        assert!(instants("wakeup") > 100, "{name}");
        assert_eq!(instants("decision") > 100, name == "fifo", "{name}");
        // Ping-pong partners wake each other: the waker is known.
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Wakeup { waker: Some(_), .. })));
        let flows: usize = decoded
            .packet
            .iter()
            .filter_map(|p| p.track_event.as_ref())
            .map(|e| e.terminating_flow_ids.len())
            .sum();
        assert!(flows > 100, "{name}: {flows}");
    }
}

#[test]
fn compare_runs_each_policy_and_shows_ratios_to_the_first() {
    let sim = Simulation::new(spec(MIX), cfg(2));
    let results = compare::run_all(&sim, &["eevdf", "fifo", "nope"], |n| match n {
        "eevdf" => Ok(Scheduler::Eevdf),
        "fifo" => Ok(Scheduler::Policy(policy("fifo"))),
        _ => Err(format!("unknown policy `{n}`")),
    });
    assert_eq!(results.len(), 3);
    assert!(results[2]
        .as_ref()
        .is_err_and(|e| e.to_string().contains("nope")));
    let runs: Vec<SimOutput> = results.into_iter().take(2).map(Result::unwrap).collect();
    assert_eq!(runs[0].report.scheduler, "eevdf");
    assert_eq!(runs[1].report.scheduler, "fifo");
    // Threads change nothing: the same figures as a run on its own.
    assert_eq!(runs[1].to_json(), run(&sim, "fifo").to_json());
    let table = compare::render_table(&runs);
    assert!(table.contains("game: deadline misses"), "{table}");
    assert!(table.contains("x)"), "{table}");
    let svg = plot::comparison_svg(&runs).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("fifo") && svg.contains("</svg>"));
}

fn game_while_building() -> Spec {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/game-while-building.toml"
    );
    Spec::from_path(path).expect("the shipped scenario parses")
}

#[test]
fn fifo_lets_the_build_delay_the_game_more_than_rustland() {
    let sim = Simulation::new(game_while_building(), cfg(2));
    let game = |out: &SimOutput| out.report.group("game").unwrap().periodic.clone().unwrap();
    let fifo = game(&run(&sim, "fifo"));
    let rl = game(&run(&sim, "rustland"));
    // Both meet nearly every deadline here (the scheduler gets a CPU within a tick);
    // rustland starts frames sooner.
    assert!(rl.miss_ratio <= 0.01, "rustland misses {}", rl.miss_ratio);
    for (name, f, r) in [
        ("p50", fifo.start_lateness.p50_ns, rl.start_lateness.p50_ns),
        ("p99", fifo.start_lateness.p99_ns, rl.start_lateness.p99_ns),
    ] {
        assert!(r < f, "lateness {name}: rustland {r}, fifo {f}");
    }
}

/// A policy that keeps tasks in arrival order but sends each to the CPU it asks for,
/// to check decisions aimed at one CPU land there.
struct Pin(VecDeque<QueuedTask>);

impl Policy for Pin {
    fn name(&self) -> &'static str {
        "pin"
    }
    fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) {
        self.0.push_back(*task);
    }
    fn dispatch(&mut self, _ctx: &mut Context<'_>) -> Option<Decision> {
        let t = self.0.pop_front()?;
        Some(Decision {
            target: schedkit_core::CpuTarget::On(schedkit_core::Cpu(7)),
            ..Decision::any_cpu(&t, 1_000_000)
        })
    }
    fn nr_held(&self) -> usize {
        self.0.len()
    }
}

#[test]
fn decisions_for_a_cpu_the_task_may_not_use_are_bounced_to_the_shared_queue() {
    let text = r#"
name = "pinned"
duration_s = 0.2
[[group]]
name = "hog"
kind = "cpu"
count = 3
affinity = [0, 1]
"#;
    let out = Simulation::new(spec(text), cfg(8))
        .run(Pin(VecDeque::new()))
        .unwrap();
    assert!(out.sim.bounced > 0);
    assert_eq!(out.sim.bounced, out.sim.user_dispatches);
    // Only CPUs 0 and 1 ever ran a hog.
    assert!(out.sim.cpus[2..].iter().all(|c| c.task_ns == 0));
    assert!(out.sim.cpus[..2].iter().all(|c| c.task_ns > 0));
}

/// Arrival order, but a task that woke up gets vtime 0 (and may preempt a task 20 ms
/// later than it), while any other enqueue (a hog whose slice ended) gets vtime 10 ms.
struct Waker(VecDeque<QueuedTask>);

impl Policy for Waker {
    fn name(&self) -> &'static str {
        "waker"
    }
    fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) {
        self.0.push_back(*task);
    }
    fn dispatch(&mut self, _ctx: &mut Context<'_>) -> Option<Decision> {
        let t = self.0.pop_front()?;
        let wakeup = t.is_wakeup();
        Some(Decision {
            vtime: if wakeup { 0 } else { 10_000_000 },
            preempt_margin_ns: wakeup.then_some(20_000_000),
            ..Decision::any_cpu(&t, 50_000_000)
        })
    }
    fn nr_held(&self) -> usize {
        self.0.len()
    }
}

#[test]
fn a_scheduler_waiting_behind_hogs_gets_a_cpu_at_the_next_tick() {
    let text = r#"
name = "tick and hog"
duration_s = 0.5
[[group]]
name = "tick"
kind = "periodic"
period_ms = 10
work_ms = 0.2
[[group]]
name = "hog"
kind = "cpu"
count = 2
"#;
    // Two hogs with 50 ms slices on two CPUs: the scheduler only gets a CPU when the
    // tick ends a hog's slice for it.
    let out = Simulation::new(spec(text), cfg(2))
        .run(Waker(VecDeque::new()))
        .unwrap();
    assert!(out.sim.scheduler_preemptions > 0, "{:?}", out.sim);
    let tick = out.report.group("tick").unwrap().periodic.clone().unwrap();
    // Within a tick (4 ms) and the wait before it (1 ms), not a 50 ms slice.
    assert!(
        tick.start_lateness.max_ns <= 5_500_000,
        "{:?}",
        tick.start_lateness
    );
}

/// A broken policy: it never stops deciding (always the same, stale, decision).
struct Chatterbox(Option<QueuedTask>);

impl Policy for Chatterbox {
    fn name(&self) -> &'static str {
        "chatterbox"
    }
    fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) {
        self.0 = Some(*task);
    }
    fn dispatch(&mut self, _ctx: &mut Context<'_>) -> Option<Decision> {
        self.0.map(|t| Decision::any_cpu(&t, 1_000_000))
    }
    fn nr_held(&self) -> usize {
        0
    }
}

#[test]
fn a_policy_that_never_stops_deciding_fills_the_ring_instead_of_memory() {
    let text = r#"
name = "one hog"
duration_s = 0.05
[[group]]
name = "hog"
kind = "cpu"
"#;
    let out = Simulation::new(spec(text), cfg(1))
        .run(Chatterbox(None))
        .unwrap();
    // The first decision runs the hog; the flood of copies is cancelled as stale.
    assert!(out.sim.user_dispatches >= 1);
    assert!(out.sim.cancelled > 4000, "{:?}", out.sim);
    // Every step spends the full ring's worth of per-task cost: the hog still runs, but
    // the scheduler's chatter shows as its CPU time.
    assert!(out.report.group("hog").unwrap().cpu_share > 0.1, "{out:?}");
    assert!(out.sim.scheduler_share > 0.3, "{:?}", out.sim);
}

// ---- Specs at the limits the parser accepts (`schedkit_workload::spec`): the longest
// times and the most tasks run to the end without overflow, and a per-CPU `parallel`
// past the task limit on the simulated machine is refused, as the executor refuses it.

/// Every time at its largest accepted value: 24 hours.
const LONGEST: &str = r#"
name = "longest"
duration_s = 86400
seed = 9223372036854775807

[[group]]
name = "frame"
kind = "periodic"
count = 3
period_ms = 86400000
work_ms = 86399999.999999

[[group]]
name = "jobs"
kind = "jobs"
parallel = 2
work_ms = { dist = "exponential", mean = 86400000 }

[[group]]
name = "huge-jobs"
kind = "jobs"
parallel = "cpus"
work_ms = { dist = "uniform", min = 86400000, max = 86400000 }

[[group]]
name = "pp"
kind = "pingpong"
count = 2
work_us = 86400000000

[[group]]
name = "hog"
kind = "cpu"
"#;

#[test]
fn times_of_24_hours_everywhere_run_to_the_end() {
    let cfg = SimConfig {
        nr_cpus: 2,
        // One tick a second and no watchdog in the way: a day in few events.
        hz: 1,
        watchdog_timeout_ns: 2 * MAX_TIME_NS,
        ..SimConfig::default()
    };
    let sim = Simulation::new(spec(LONGEST), cfg);
    for name in ["fifo", "eevdf"] {
        let out = run(&sim, name);
        assert_eq!(out.report.duration_ns, MAX_TIME_NS, "{name}");
        for (i, c) in out.sim.cpus.iter().enumerate() {
            assert_eq!(
                c.task_ns + c.scheduler_ns + c.idle_ns,
                MAX_TIME_NS,
                "{name}, CPU {i}: {c:?}"
            );
        }
        // Three frames of nearly a day each on two busy CPUs: at least one misses.
        let frames = out.report.group("frame").unwrap().periodic.clone().unwrap();
        assert_eq!(frames.frames, 3, "{name}: {frames:?}");
        assert!(frames.deadline_misses >= 1, "{name}: {frames:?}");
        assert_eq!(out.report.group("huge-jobs").unwrap().tasks, 2);
    }
}

#[test]
fn the_most_tasks_the_parser_accepts_run() {
    let text = format!(
        r#"
name = "crowd"
duration_s = 0.05

[[group]]
name = "hogs"
kind = "cpu"
count = {}

[[group]]
name = "pp"
kind = "pingpong"
count = 1000
work_us = 5

[[group]]
name = "make"
kind = "jobs"
parallel = "cpus"
work_ms = 1
"#,
        MAX_TASKS - 2000 - 4
    );
    let spec = spec(&text);
    let cfg = SimConfig {
        nr_cpus: 4,
        ..SimConfig::default()
    };
    assert_eq!(spec.check_nr_tasks(4), Ok(MAX_TASKS));
    for name in ["fifo", "eevdf"] {
        let out = run(&Simulation::new(spec.clone(), cfg.clone()), name);
        let tasks: u32 = out.report.groups.iter().map(|g| g.tasks).sum();
        assert_eq!(tasks, MAX_TASKS, "{name}");
    }
}

#[test]
fn per_cpu_parallel_past_the_task_limit_on_the_simulated_machine_is_refused() {
    let spec = spec(
        r#"
name = "wide make"
duration_s = 1
[[group]]
name = "make"
kind = "jobs"
parallel = "64x-cpus"
work_ms = 1
"#,
    );
    let sim = |nr_cpus| {
        Simulation::new(
            spec.clone(),
            SimConfig {
                nr_cpus,
                ..SimConfig::default()
            },
        )
    };
    let err = sim(65).run_eevdf().unwrap_err();
    assert!(matches!(err, SimError::Config(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "scenario `wide make` would run 4160 tasks at once on 65 CPUs, more than the limit \
         of 4096: lower a group's `count` or `parallel`"
    );
    let err = sim(1024).run(policy("fifo")).unwrap_err();
    assert!(
        err.to_string().contains("65536 tasks at once on 1024 CPUs"),
        "{err}"
    );
    let out = run(&sim(2), "eevdf");
    assert_eq!(out.report.group("make").unwrap().tasks, 128);
}

#[test]
fn context_switch_cost_slows_round_trips_under_eevdf_and_sched_ext() {
    let text = r#"
name = "pingpong"
duration_s = 0.5
[[group]]
name = "pp"
kind = "pingpong"
work_us = 20
"#;
    let trips = |cs: u64, scheduler: &str| {
        let sim = Simulation::new(
            spec(text),
            SimConfig {
                context_switch_ns: cs,
                ..cfg(1)
            },
        );
        let s = if scheduler == "eevdf" {
            Scheduler::Eevdf
        } else {
            Scheduler::Policy(policy(scheduler))
        };
        let out = sim.run_scheduler(s).unwrap();
        // The switch is paid inside the tasks' CPU time: nothing is lost.
        let cpu = &out.sim.cpus[0];
        assert_eq!(cpu.task_ns + cpu.scheduler_ns + cpu.idle_ns, 500_000_000);
        out.report
            .group("pp")
            .unwrap()
            .pingpong
            .clone()
            .unwrap()
            .round_trips
    };
    for scheduler in ["eevdf", "fifo"] {
        let free = trips(0, scheduler);
        let dear = trips(20_000, scheduler);
        // Each message costs 20 us of work; a 20 us switch per message halves the rate
        // at least (fifo also pays for the scheduler's switches).
        assert!(dear * 2 <= free + 2, "{scheduler}: {dear} vs {free}");
        assert!(dear > 0, "{scheduler}");
    }
}

#[test]
fn process_creation_cost_is_charged_to_each_job() {
    let text = r#"
name = "jobs"
duration_s = 1
seed = 1
[[group]]
name = "build"
kind = "jobs"
parallel = 1
work_ms = 10
"#;
    let run = |spawn_ns: u64| {
        let sim = Simulation::new(
            spec(text),
            SimConfig {
                process_spawn_ns: spawn_ns,
                ..cfg(1)
            },
        );
        sim.run_eevdf()
            .unwrap()
            .report
            .group("build")
            .unwrap()
            .clone()
    };
    let free = run(0).jobs.unwrap();
    let dear = run(10_000_000).jobs.unwrap();
    // 10 ms of work per job, then 20 ms with the process's creation: half the jobs.
    assert!((99..=100).contains(&free.completed), "{free:?}");
    assert!((49..=50).contains(&dear.completed), "{dear:?}");
}

#[test]
fn simulated_runs_with_the_vm_profile_are_deterministic() {
    let cfg = SimConfig::from_profile(&schedkit_sim::MachineProfile::vm_default());
    let sim = Simulation::new(spec(MIX), cfg);
    for name in ["eevdf", "fifo", "rustland"] {
        let a = run(&sim, name);
        let b = run(&sim, name);
        assert_eq!(a.to_json(), b.to_json(), "{name}");
    }
}

#[test]
fn process_creation_cost_is_paid_in_full_even_when_the_job_is_preempted() {
    // One CPU shared with a hog: each job's first stretch ends at a tick, long before
    // its 30 ms creation cost is paid; what is left is paid on its next runs.
    let text = r#"
name = "jobs and a hog"
duration_s = 2
seed = 1
[[group]]
name = "build"
kind = "jobs"
parallel = 1
work_ms = 10
[[group]]
name = "hog"
kind = "cpu"
"#;
    let run = |spawn_ns: u64| {
        let sim = Simulation::new(
            spec(text),
            SimConfig {
                process_spawn_ns: spawn_ns,
                ..cfg(1)
            },
        );
        sim.run_eevdf()
            .unwrap()
            .report
            .group("build")
            .unwrap()
            .clone()
    };
    let jobs = run(30_000_000);
    let done = jobs.jobs.unwrap().completed;
    assert!(done > 0);
    // Every finished job used its 10 ms of work and its 30 ms of creation.
    let per_job = jobs.cpu_ns / done;
    assert!(per_job >= 40_000_000, "{per_job}");
}

#[test]
fn switching_between_processes_costs_more_than_between_threads() {
    // Two jobs' processes take turns on one CPU; with the same total work, an
    // address-space change at every switch leaves less CPU for the work.
    let text = r#"
name = "jobs"
duration_s = 1
seed = 1
[[group]]
name = "build"
kind = "jobs"
parallel = 2
work_ms = 20
"#;
    let done = |mm_switch_ns: u64| {
        let sim = Simulation::new(
            spec(text),
            SimConfig {
                context_switch_ns: 10_000,
                mm_switch_ns,
                ..cfg(1)
            },
        );
        let out = sim.run_eevdf().unwrap();
        out.report
            .group("build")
            .unwrap()
            .jobs
            .clone()
            .unwrap()
            .completed
    };
    assert!(done(1_000_000) < done(0));
}

#[test]
fn lazy_preemption_makes_a_waking_task_wait_for_the_tick_under_eevdf() {
    let text = r#"
name = "frames and a hog"
duration_s = 2
[[group]]
name = "game"
kind = "periodic"
period_ms = 10
work_ms = 1
[[group]]
name = "hog"
kind = "cpu"
"#;
    let p50 = |lazy: bool| {
        let sim = Simulation::new(
            spec(text),
            SimConfig {
                preempt_lazy: lazy,
                ..cfg(1)
            },
        );
        let out = sim.run_eevdf().unwrap();
        let g = out.report.group("game").unwrap().periodic.clone().unwrap();
        g.start_lateness.p50_ns
    };
    let (eager, lazy) = (p50(false), p50(true));
    assert!(eager < 100_000, "{eager}");
    assert!(lazy > 500_000 && lazy <= 4_100_000, "{lazy}");
}

#[test]
fn hrtick_ends_eevdf_slices_when_they_are_used_up_not_at_the_tick() {
    let text = &two_hogs(1);
    let switches = |hrtick: bool| {
        let sim = Simulation::new(
            spec(text),
            SimConfig {
                hrtick,
                eevdf_base_slice_ns: 1_000_000,
                ..cfg(1)
            },
        );
        let out = sim.run_eevdf().unwrap();
        let shares: Vec<f64> = out
            .report
            .group("hog")
            .unwrap()
            .task_cpu_ns
            .iter()
            .map(|&ns| ns as f64 / 1e9)
            .collect();
        assert!(
            shares.iter().all(|s| (0.45..=0.55).contains(s)),
            "{shares:?}"
        );
        out.sim.context_switches
    };
    // One CPU: the base slice is 1 ms, and the tick comes every 4 ms.
    let (tick, hrtick) = (switches(false), switches(true));
    assert!((240..=260).contains(&tick), "{tick}");
    assert!((950..=1010).contains(&hrtick), "{hrtick}");
}

#[test]
fn forking_costs_the_slot_thread_not_the_job() {
    // One slot forking 10 ms jobs for 10 ms each: half the jobs, and the jobs' own CPU
    // time is still their work.
    let text = r#"
name = "jobs"
duration_s = 1
seed = 1
[[group]]
name = "build"
kind = "jobs"
parallel = 1
work_ms = 10
"#;
    let sim = Simulation::new(
        spec(text),
        SimConfig {
            fork_ns: 10_000_000,
            ..cfg(1)
        },
    );
    let out = sim.run_eevdf().unwrap();
    let g = out.report.group("build").unwrap();
    let done = g.jobs.clone().unwrap().completed;
    assert!((49..=50).contains(&done), "{done}");
    assert_eq!(g.cpu_ns, done * 10_000_000);
    // The slot thread's time is the rest of the CPU's.
    assert!(
        out.sim.task_cpu_ns >= 990_000_000,
        "{}",
        out.sim.task_cpu_ns
    );
}

#[test]
fn delayed_dequeue_keeps_a_ping_pong_pair_from_starving_a_hog_under_eevdf() {
    let text = r#"
name = "pair and hog"
duration_s = 1
[[group]]
name = "pair"
kind = "pingpong"
work_us = 10
[[group]]
name = "hog"
kind = "cpu"
"#;
    let hog_share = |delay_dequeue: bool| {
        let sim = Simulation::new(
            spec(text),
            SimConfig {
                delay_dequeue,
                ..cfg(1)
            },
        );
        sim.run_eevdf()
            .unwrap()
            .report
            .group("hog")
            .unwrap()
            .cpu_share
    };
    // Without it, each 10 us sleep clears the pair's debt and the hog waits forever;
    // with it, the pair (one runnable thread at a time) and the hog share the CPU.
    assert!(hog_share(false) < 0.05);
    let shared = hog_share(true);
    assert!((0.4..=0.6).contains(&shared), "{shared}");
}

/// Arrival order, any CPU, a fixed slice, and no decision may preempt.
struct Plain(VecDeque<QueuedTask>, u64);

impl Policy for Plain {
    fn name(&self) -> &'static str {
        "plain"
    }
    fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) {
        self.0.push_back(*task);
    }
    fn dispatch(&mut self, _ctx: &mut Context<'_>) -> Option<Decision> {
        let t = self.0.pop_front()?;
        Some(Decision::any_cpu(&t, self.1))
    }
    fn nr_held(&self) -> usize {
        self.0.len()
    }
}

/// The runs (switch-ins) of task `name` on the timeline of `out`, and their total time
/// in us.
fn runs_of(out: &SimOutput, name: &str) -> (usize, f64) {
    let text = out.trace.as_ref().expect("trace recorded").to_json_string();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let runs: Vec<f64> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "run" && e["name"] == name)
        .map(|e| e["dur"].as_f64().unwrap())
        .collect();
    (runs.len(), runs.iter().sum())
}

#[test]
fn a_hog_sharing_a_cpu_with_a_frequent_waker_keeps_it_for_its_slice() {
    // Both on CPU 1; the scheduler has CPU 0 to itself. The ticker wakes every ms, but
    // its decisions do not ask to preempt: sched_ext ends the hog's run only when its
    // slice is found used up at a tick, never for a wake-up.
    let text = r#"
name = "hog and waker"
duration_s = 1
[[group]]
name = "hog"
kind = "cpu"
affinity = [1]
[[group]]
name = "ticker"
kind = "periodic"
period_ms = 1
work_ms = 0.05
affinity = [1]
"#;
    let slice = 20_000_000;
    let out = Simulation::new(
        spec(text),
        SimConfig {
            trace: true,
            ..cfg(2)
        },
    )
    .run(Plain(VecDeque::new(), slice))
    .unwrap();
    assert_eq!(out.sim.preemptions, 0, "{:?}", out.sim);
    let (n, us) = runs_of(&out, "hog-0");
    // About one run per slice (each ends at the first tick past it), not one per
    // wake-up: a thousand wake-ups, at most ~45 runs of ~20 ms.
    assert!(n > 10 && n <= 60, "{n} runs");
    assert!(us / n as f64 >= 15_000.0, "{n} runs, {us} us in all");
    let ticker = out
        .report
        .group("ticker")
        .unwrap()
        .periodic
        .clone()
        .unwrap();
    assert!(
        ticker.miss_ratio > 0.5,
        "the ticker waits for the hog's slices"
    );
}

#[test]
fn a_task_whose_slice_ends_with_nothing_else_to_run_keeps_its_cpu_without_a_trip() {
    // One hog per CPU and nothing else: at each slice end the CPU finds nothing to run
    // (the kernel keeps the last runnable task and refills its slice), so the hogs go
    // through the policy once, not every millisecond.
    let text = &two_hogs(1);
    let out = Simulation::new(
        spec(text),
        SimConfig {
            trace: true,
            ..cfg(2)
        },
    )
    .run(Plain(VecDeque::new(), 1_000_000))
    .unwrap();
    assert!(out.sim.decisions <= 4, "{:?}", out.sim);
    assert!(out.sim.kept_running > 0, "{:?}", out.sim);
    for hog in ["hog-0", "hog-1"] {
        assert!(runs_of(&out, hog).0 <= 2, "{hog}: {:?}", runs_of(&out, hog));
    }
}
