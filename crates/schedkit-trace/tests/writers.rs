//! The writers on synthetic event streams: the JSON parses and draws what ran
//! where, the Perfetto trace decodes with the crate's own types, both read back to
//! the same CPU slices, and no event sequence makes them panic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use proptest::prelude::*;
use schedkit_trace::json::{self, JsonWriter, DECISIONS_TID};
use schedkit_trace::perfetto::{self, track_event, PerfettoWriter, TracePacket};
use schedkit_trace::{
    Counter, CpuSlice, Event, Format, Sink, Target, Tee, TraceError, TraceInfo, TraceSource,
};
use serde_json::Value;

fn info(nr_cpus: u32) -> TraceInfo {
    TraceInfo {
        source: TraceSource::Simulated,
        nr_cpus,
        scheduler: "fifo".into(),
        start_ns: 0,
    }
}

fn thread(ts_ns: u64, pid: u32, tgid: u32, comm: &str, scheduler: bool) -> Event {
    Event::Thread {
        ts_ns,
        pid,
        tgid,
        comm: comm.into(),
        scheduler,
    }
}

fn switch(ts_ns: u64, cpu: u32, prev: u32, next: u32) -> Event {
    Event::Switch {
        ts_ns,
        cpu,
        prev,
        prev_runnable: false,
        next,
    }
}

const END_NS: u64 = 1_000;

/// Three CPUs (CPU 2 stays idle); a worker (10) and its helper thread (11), and the
/// user-space scheduler (20).
fn scenario() -> Vec<Event> {
    vec![
        thread(0, 10, 10, "worker", false),
        thread(0, 11, 10, "helper", false),
        thread(0, 20, 20, "rustland", true),
        switch(100, 0, 0, 10),
        // 10, running on CPU 0, wakes 11 for CPU 1.
        Event::Wakeup {
            ts_ns: 150,
            pid: 11,
            cpu: 1,
            waker: Some(10),
            new_task: false,
        },
        switch(200, 1, 0, 11),
        Event::Enqueued {
            ts_ns: 250,
            pid: 11,
            cpu: 1,
        },
        Event::Decision {
            ts_ns: 250,
            pid: 11,
            target: Target::Cpu(1),
            slice_ns: 5_000_000,
            vtime: 42,
            preempt: false,
            kernel: false,
        },
        switch(300, 0, 10, 20),
        Event::Counter {
            ts_ns: 350,
            counter: Counter::Waiting,
            value: 2,
        },
        switch(400, 0, 20, 0),
        // A timer wakes 10: no waker.
        Event::Wakeup {
            ts_ns: 450,
            pid: 10,
            cpu: 0,
            waker: None,
            new_task: false,
        },
        switch(500, 0, 0, 10),
        Event::Lost {
            ts_ns: 550,
            count: 3,
        },
        Event::Decision {
            ts_ns: 600,
            pid: 10,
            target: Target::Any,
            slice_ns: 1_500,
            vtime: 7,
            preempt: true,
            kernel: true,
        },
        thread(700, 11, 10, "helper2", false),
        Event::Exit {
            ts_ns: 790,
            pid: 11,
        },
        switch(800, 1, 11, 0),
        // 10 still runs on CPU 0 at the end.
    ]
}

fn expected_slices() -> Vec<CpuSlice> {
    let s = |cpu, start_ns, end_ns, pid, name: &str, scheduler| CpuSlice {
        cpu,
        start_ns,
        end_ns,
        pid,
        name: name.into(),
        scheduler,
    };
    vec![
        s(0, 100, 300, 10, "worker", false),
        s(0, 300, 400, 20, "rustland", true),
        s(0, 500, END_NS, 10, "worker", false),
        s(1, 200, 800, 11, "helper", false),
    ]
}

fn write_with(sink: &mut dyn Sink, info: &TraceInfo, events: &[Event], end_ns: u64) {
    sink.begin(info).unwrap();
    for e in events {
        sink.event(e).unwrap();
    }
    sink.finish(end_ns).unwrap();
}

fn json_of(info: &TraceInfo, events: &[Event], end_ns: u64) -> Vec<u8> {
    let mut w = JsonWriter::new(Vec::new());
    write_with(&mut w, info, events, end_ns);
    w.into_inner()
}

fn pftrace_of(info: &TraceInfo, events: &[Event], end_ns: u64) -> Vec<u8> {
    let mut w = PerfettoWriter::new(Vec::new());
    write_with(&mut w, info, events, end_ns);
    w.into_inner()
}

fn trace_events(bytes: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(bytes).expect("valid JSON");
    assert_eq!(v["displayTimeUnit"], "ns");
    v["traceEvents"].as_array().expect("traceEvents").clone()
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

#[test]
fn json_x_events_have_the_right_cpu_duration_and_name() {
    let events = trace_events(&json_of(&info(3), &scenario(), END_NS));
    let mut cpu_runs = Vec::new();
    let mut thread_runs = BTreeMap::new();
    for e in &events {
        assert!(e["ph"].is_string() && e["name"].is_string(), "{e}");
        assert!(
            e["ts"].is_number() && e["pid"].is_u64() && e["tid"].is_u64(),
            "{e}"
        );
        if e["ph"] != "X" {
            continue;
        }
        let ts = e["ts"].as_f64().unwrap();
        let dur = e["dur"].as_f64().unwrap();
        assert!(dur > 0.0, "{e}");
        if e["pid"] == 0 {
            cpu_runs.push((
                e["tid"].as_u64().unwrap(),
                ts,
                dur,
                e["name"].as_str().unwrap().to_string(),
                e["cat"].as_str().unwrap().to_string(),
                e["args"]["pid"].as_u64().unwrap(),
                e["args"]["tgid"].as_u64().unwrap(),
            ));
        } else {
            assert_eq!(e["name"], "running");
            thread_runs
                .entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
                .or_insert_with(Vec::new)
                .push((ts, dur, e["args"]["cpu"].as_u64().unwrap()));
        }
    }
    cpu_runs.sort_by(|a, b| (a.0, a.1).partial_cmp(&(b.0, b.1)).unwrap());
    let s = |cpu, a, b, name: &str, cat: &str, pid, tgid| {
        (
            cpu,
            us(a),
            us(b - a),
            name.to_string(),
            cat.to_string(),
            pid,
            tgid,
        )
    };
    assert_eq!(
        cpu_runs,
        vec![
            s(0, 100, 300, "worker", "run", 10, 10),
            s(0, 300, 400, "rustland", "scheduler", 20, 20),
            s(0, 500, END_NS, "worker", "run", 10, 10),
            s(1, 200, 800, "helper", "run", 11, 10),
        ]
    );
    // Each thread's own track (process = tgid, tid = pid) has its runs.
    assert_eq!(
        thread_runs[&(10, 10)],
        vec![(us(100), us(200), 0), (us(500), us(500), 0)]
    );
    assert_eq!(thread_runs[&(10, 11)], vec![(us(200), us(600), 1)]);
    assert_eq!(thread_runs[&(20, 20)], vec![(us(300), us(100), 0)]);
}

#[test]
fn json_names_the_machine_the_cpus_the_processes_and_the_threads() {
    let events = trace_events(&json_of(&info(3), &scenario(), END_NS));
    let meta: Vec<(String, u64, u64, Value)> = events
        .iter()
        .filter(|e| e["ph"] == "M")
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["pid"].as_u64().unwrap(),
                e["tid"].as_u64().unwrap(),
                e["args"].clone(),
            )
        })
        .collect();
    let name_of = |kind: &str, pid: u64, tid: u64| -> Vec<String> {
        meta.iter()
            .filter(|m| m.0 == kind && m.1 == pid && m.2 == tid)
            .map(|m| m.3["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(name_of("process_name", 0, 0), ["simulated machine"]);
    for cpu in 0..3 {
        assert_eq!(name_of("thread_name", 0, cpu), [format!("CPU {cpu}")]);
    }
    assert_eq!(
        name_of("thread_name", 0, DECISIONS_TID as u64),
        ["schedkit decisions"]
    );
    assert_eq!(name_of("process_name", 10, 10), ["worker"]);
    assert_eq!(
        name_of("thread_name", 10, 11),
        ["helper", "helper2"],
        "renamed"
    );
    assert_eq!(name_of("process_name", 20, 20), ["rustland"]);
    // CPU tracks sort by CPU.
    let sort: Vec<u64> = meta
        .iter()
        .filter(|m| m.0 == "thread_sort_index" && m.1 == 0 && m.2 < 3)
        .map(|m| m.3["sort_index"].as_u64().unwrap())
        .collect();
    assert_eq!(sort, [0, 1, 2]);

    let kernel = TraceInfo {
        source: TraceSource::Kernel,
        scheduler: "rustland".into(),
        ..info(1)
    };
    let events = trace_events(&json_of(&kernel, &[], 10));
    assert_eq!(events[0]["args"]["name"], "kernel (rustland)");
}

#[test]
fn json_wakeup_flows_start_at_the_wakeup_and_end_at_the_next_run() {
    let events = trace_events(&json_of(&info(3), &scenario(), END_NS));
    let mut starts = HashMap::new();
    let mut ends = HashMap::new();
    for e in &events {
        let at = (
            e["pid"].as_u64().unwrap(),
            e["tid"].as_u64().unwrap(),
            e["ts"].as_f64().unwrap(),
        );
        match e["ph"].as_str().unwrap() {
            "s" => assert!(starts.insert(e["id"].as_u64().unwrap(), at).is_none()),
            "f" => {
                assert_eq!(e["bp"], "e", "binds to the enclosing slice");
                assert!(ends.insert(e["id"].as_u64().unwrap(), at).is_none());
            }
            _ => {}
        }
        if e["ph"] == "s" || e["ph"] == "f" {
            assert_eq!(
                (&e["cat"], &e["name"]),
                (&"wakeup".into(), &"wakeup".into())
            );
        }
    }
    assert_eq!(starts.len(), 2);
    assert_eq!(
        starts.keys().collect::<BTreeSet<_>>(),
        ends.keys().collect::<BTreeSet<_>>()
    );
    let pairs: BTreeSet<_> = starts
        .iter()
        .map(|(id, s)| {
            let f = ends[id];
            (
                (s.0, s.1, (s.2 * 1e3) as u64),
                (f.0, f.1, (f.2 * 1e3) as u64),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        BTreeSet::from([
            // From the waker's CPU (0) to 11's own track when it ran, at 200.
            ((0, 0, 150), (10, 11, 200)),
            // No waker: from the target CPU (0) to 10's next run, at 500.
            ((0, 0, 450), (10, 10, 500)),
        ])
    );
    // Each flow start follows its wake-up instant on the same track at once.
    for (i, e) in events.iter().enumerate() {
        if e["ph"] == "s" {
            let w = &events[i - 1];
            assert_eq!((&w["ph"], &w["cat"]), (&"i".into(), &"wakeup".into()));
            assert_eq!((&w["tid"], &w["ts"]), (&e["tid"], &e["ts"]));
        }
    }
}

#[test]
fn json_decisions_counters_and_lost_events() {
    let events = trace_events(&json_of(&info(3), &scenario(), END_NS));
    let decisions: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "i" && e["tid"] == DECISIONS_TID)
        .collect();
    assert_eq!(decisions.len(), 3);
    assert_eq!(decisions[0]["name"], "enqueue helper");
    let d = &decisions[1];
    assert_eq!(d["name"], "dispatch helper");
    assert_eq!(d["cat"], "decision");
    assert_eq!(d["args"]["target"], 1);
    assert_eq!(d["args"]["slice_us"].as_f64(), Some(5000.0));
    assert_eq!(d["args"]["vtime"], 42);
    assert_eq!(d["args"]["preempt"], false);
    assert_eq!(d["args"]["by"], "policy");
    let d = &decisions[2];
    assert_eq!(d["args"]["target"], "any");
    assert_eq!(d["args"]["slice_us"].as_f64(), Some(1.5));
    assert_eq!(
        (&d["args"]["preempt"], &d["args"]["by"]),
        (&true.into(), &"kernel".into())
    );

    let counters: Vec<&Value> = events.iter().filter(|e| e["ph"] == "C").collect();
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0]["name"], Counter::Waiting.name());
    assert_eq!(counters[0]["args"]["value"], 2);
    assert_eq!(counters[0]["ts"].as_f64(), Some(us(350)));

    let lost: Vec<&Value> = events.iter().filter(|e| e["cat"] == "lost").collect();
    assert_eq!(lost.len(), 1);
    assert_eq!((&lost[0]["ph"], &lost[0]["s"]), (&"i".into(), &"g".into()));
    assert_eq!(lost[0]["args"]["count"], 3);

    let wakes: Vec<&Value> = events
        .iter()
        .filter(|e| e["cat"] == "wakeup" && e["ph"] == "i")
        .collect();
    assert_eq!(wakes[0]["name"], "wake helper");
    assert_eq!(wakes[0]["args"]["waker"], 10);
    assert_eq!(wakes[1]["args"]["waker"], Value::Null);
}

#[test]
fn json_escapes_names_and_names_unknown_threads_after_their_pid() {
    let odd = "a \"quoted\"\\ name\n\t\u{1}é";
    let events = [
        thread(0, 5, 5, odd, false),
        switch(10, 0, 0, 5),
        switch(20, 0, 5, 6),
    ];
    let bytes = json_of(&info(1), &events, 30);
    let names: Vec<String> = trace_events(&bytes)
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == 0)
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, [odd, "pid 6"]);
    let (_, slices) = json::read_cpu_slices(&bytes[..]).unwrap();
    assert_eq!(slices[0].name, odd);
}

fn packets(bytes: &[u8]) -> Vec<TracePacket> {
    perfetto::decode(bytes).expect("decodes").packet
}

/// Track uuid → descriptor name, for the tracks declared with a name.
fn track_names(ps: &[TracePacket]) -> HashMap<u64, String> {
    ps.iter()
        .filter_map(|p| p.track_descriptor.as_ref())
        .filter_map(|d| Some((d.uuid?, d.name.clone()?)))
        .collect()
}

#[test]
fn pftrace_is_one_sequence_on_the_monotonic_clock() {
    let ps = packets(&pftrace_of(&info(3), &scenario(), END_NS));
    let first = &ps[0];
    assert_eq!(
        first.sequence_flags,
        Some(perfetto::sequence_flags::SEQ_INCREMENTAL_STATE_CLEARED)
    );
    assert_eq!(first.first_packet_on_sequence, Some(true));
    let snap = first.clock_snapshot.as_ref().expect("a clock snapshot");
    assert_eq!(snap.primary_trace_clock, Some(3));
    assert_eq!(snap.clocks[0].clock_id, Some(3));
    for p in &ps {
        assert_eq!(p.trusted_packet_sequence_id, Some(perfetto::SEQUENCE_ID));
        if p.timestamp.is_some() {
            assert_eq!(p.timestamp_clock_id, Some(3));
        }
        assert_eq!(p.previous_packet_dropped, None);
    }
    // Times never go backwards.
    let ts: Vec<u64> = ps.iter().filter_map(|p| p.timestamp).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn pftrace_has_every_cpu_track_and_slices_that_pair_up() {
    let ps = packets(&pftrace_of(&info(3), &scenario(), END_NS));
    let names = track_names(&ps);
    let root = ps
        .iter()
        .filter_map(|p| p.track_descriptor.as_ref())
        .find(|d| d.uuid == Some(perfetto::ROOT_UUID))
        .unwrap();
    assert_eq!(root.name.as_deref(), Some("simulated machine"));
    for cpu in 0..3 {
        let uuid = perfetto::cpu_track_uuid(cpu);
        assert_eq!(names[&uuid], format!("CPU {cpu}"));
    }
    // Begins and ends pair up on every track, and are properly nested.
    let mut depth: HashMap<u64, i32> = HashMap::new();
    let mut begins_on_cpu = BTreeMap::new();
    for p in &ps {
        let Some(e) = &p.track_event else { continue };
        let uuid = e.track_uuid.unwrap();
        let d = depth.entry(uuid).or_default();
        match e.r#type() {
            track_event::Type::SliceBegin => {
                *d += 1;
                assert_eq!(*d, 1, "{e:?}");
                if let Some(n) = names.get(&uuid).filter(|n| n.starts_with("CPU ")) {
                    begins_on_cpu
                        .entry(n.clone())
                        .or_insert_with(Vec::new)
                        .push((p.timestamp.unwrap(), e.name.clone().unwrap()));
                    assert!(e.annotation("pid").and_then(|a| a.uint_value).is_some());
                }
            }
            track_event::Type::SliceEnd => {
                *d -= 1;
                assert_eq!(*d, 0, "{e:?}");
            }
            _ => {}
        }
    }
    assert!(depth.values().all(|&d| d == 0), "every slice ends");
    assert_eq!(
        begins_on_cpu["CPU 0"],
        [
            (100, "worker".into()),
            (300, "rustland".into()),
            (500, "worker".into())
        ]
    );
    assert_eq!(begins_on_cpu["CPU 1"], [(200, "helper".into())]);
    assert!(!begins_on_cpu.contains_key("CPU 2"));
}

#[test]
fn pftrace_names_threads_and_processes_and_renames_them() {
    let ps = packets(&pftrace_of(&info(3), &scenario(), END_NS));
    let mut threads: Vec<(i32, i64, String)> = Vec::new();
    let mut procs = Vec::new();
    for d in ps.iter().filter_map(|p| p.track_descriptor.as_ref()) {
        if let Some(t) = &d.thread {
            threads.push((
                t.pid.unwrap(),
                t.tid.unwrap(),
                t.thread_name.clone().unwrap(),
            ));
            assert_eq!(d.parent_uuid, None, "grouped by pid, as Perfetto asks");
        }
        if let Some(p) = &d.process {
            procs.push((p.pid.unwrap(), p.process_name.clone()));
        }
    }
    assert_eq!(
        threads,
        [
            (10, 10, "worker".to_string()),
            (10, 11, "helper".to_string()),
            (20, 20, "rustland".to_string()),
            (10, 11, "helper2".to_string()),
        ]
    );
    assert_eq!(
        procs,
        [
            (10, Some("worker".to_string())),
            (20, Some("rustland".to_string()))
        ]
    );
}

#[test]
fn pftrace_counters_decisions_and_lost_events() {
    let ps = packets(&pftrace_of(&info(3), &scenario(), END_NS));
    let names = track_names(&ps);
    let counter_uuid = perfetto::counter_track_uuid(Counter::Waiting);
    let desc = ps
        .iter()
        .filter_map(|p| p.track_descriptor.as_ref())
        .find(|d| d.uuid == Some(counter_uuid))
        .expect("a counter track");
    assert!(desc.counter.is_some());
    assert_eq!(desc.name.as_deref(), Some(Counter::Waiting.name()));
    let mut counters = Vec::new();
    let mut decisions = Vec::new();
    let mut lost = Vec::new();
    for p in &ps {
        let Some(e) = &p.track_event else { continue };
        match e.track_uuid.unwrap() {
            u if u == counter_uuid => {
                assert_eq!(e.r#type(), track_event::Type::Counter);
                counters.push((p.timestamp.unwrap(), e.counter_value.unwrap()));
            }
            perfetto::DECISIONS_UUID => decisions.push(e.clone()),
            perfetto::LOST_UUID => lost.push(e.clone()),
            _ => {}
        }
    }
    assert_eq!(counters, [(350, 2)]);
    assert_eq!(names[&perfetto::DECISIONS_UUID], "schedkit decisions");
    let names: Vec<&str> = decisions
        .iter()
        .map(|e| e.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        ["enqueue helper", "dispatch helper", "dispatch worker"]
    );
    assert!(decisions
        .iter()
        .all(|e| e.r#type() == track_event::Type::Instant));
    let d = &decisions[1];
    assert_eq!(d.annotation("target").unwrap().uint_value, Some(1));
    assert_eq!(d.annotation("slice_us").unwrap().double_value, Some(5000.0));
    assert_eq!(d.annotation("vtime").unwrap().uint_value, Some(42));
    assert_eq!(d.annotation("preempt").unwrap().bool_value, Some(false));
    assert_eq!(
        d.annotation("by").unwrap().string_value.as_deref(),
        Some("policy")
    );
    let d = &decisions[2];
    assert_eq!(
        d.annotation("target").unwrap().string_value.as_deref(),
        Some("any")
    );
    assert_eq!(
        d.annotation("by").unwrap().string_value.as_deref(),
        Some("kernel")
    );
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].annotation("count").unwrap().uint_value, Some(3));
}

#[test]
fn pftrace_wakeup_flows_end_at_the_next_running_slice() {
    let ps = packets(&pftrace_of(&info(3), &scenario(), END_NS));
    let names = track_names(&ps);
    let thread_of: HashMap<u64, i64> = ps
        .iter()
        .filter_map(|p| p.track_descriptor.as_ref())
        .filter_map(|d| Some((d.uuid?, d.thread.as_ref()?.tid?)))
        .collect();
    let mut starts = BTreeMap::new();
    let mut ends = BTreeMap::new();
    for p in &ps {
        let Some(e) = &p.track_event else { continue };
        let uuid = e.track_uuid.unwrap();
        let at = p.timestamp.unwrap();
        for &id in &e.flow_ids {
            assert_eq!(e.r#type(), track_event::Type::Instant);
            let track = names
                .get(&uuid)
                .cloned()
                .unwrap_or_else(|| format!("thread {}", thread_of[&uuid]));
            starts.insert(id, (track, at, e.name.clone().unwrap()));
        }
        for &id in &e.terminating_flow_ids {
            assert_eq!(e.r#type(), track_event::Type::SliceBegin);
            assert_eq!(e.name.as_deref(), Some("running"));
            ends.insert(id, (thread_of[&uuid], at));
        }
    }
    assert_eq!(
        starts.keys().collect::<Vec<_>>(),
        ends.keys().collect::<Vec<_>>()
    );
    let pairs: Vec<_> = starts.iter().map(|(id, s)| (s.clone(), ends[id])).collect();
    assert_eq!(
        pairs,
        [
            (
                ("CPU 0".to_string(), 150, "wake helper".to_string()),
                (11, 200)
            ),
            (
                ("thread 10".to_string(), 450, "wake worker".to_string()),
                (10, 500)
            ),
        ]
    );
}

#[test]
fn read_cpu_slices_round_trips_both_formats() {
    let events = scenario();
    let (n, slices) = json::read_cpu_slices(&json_of(&info(3), &events, END_NS)[..]).unwrap();
    assert_eq!((n, slices), (3, expected_slices()));
    let (n, slices) =
        perfetto::read_cpu_slices(&pftrace_of(&info(3), &events, END_NS)[..]).unwrap();
    assert_eq!((n, slices), (3, expected_slices()));
}

#[test]
fn a_lost_switch_out_ends_the_stretch_where_the_thread_shows_up_next() {
    // 7 runs on CPU 0, then shows up on CPU 1 without leaving CPU 0.
    let events = [
        switch(10, 0, 0, 7),
        switch(30, 1, 0, 7),
        switch(40, 0, 7, 0),
    ];
    let expect = vec![
        CpuSlice {
            cpu: 0,
            start_ns: 10,
            end_ns: 30,
            pid: 7,
            name: "pid 7".into(),
            scheduler: false,
        },
        CpuSlice {
            cpu: 1,
            start_ns: 30,
            end_ns: 50,
            pid: 7,
            name: "pid 7".into(),
            scheduler: false,
        },
    ];
    let (_, j) = json::read_cpu_slices(&json_of(&info(2), &events, 50)[..]).unwrap();
    let (_, p) = perfetto::read_cpu_slices(&pftrace_of(&info(2), &events, 50)[..]).unwrap();
    assert_eq!(j, expect);
    assert_eq!(p, expect);
}

#[test]
fn cpus_beyond_nr_cpus_get_tracks_too() {
    let events = [
        switch(10, 5, 0, 7),
        Event::Migrate {
            ts_ns: 20,
            pid: 7,
            from: 5,
            to: 6,
        },
    ];
    let (n, _) = json::read_cpu_slices(&json_of(&info(2), &events, 50)[..]).unwrap();
    assert_eq!(n, 7);
    let (n, _) = perfetto::read_cpu_slices(&pftrace_of(&info(2), &events, 50)[..]).unwrap();
    assert_eq!(n, 7);
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let mut w = JsonWriter::new(Vec::new());
    assert!(w.event(&switch(1, 0, 0, 1)).is_err());
    assert!(w.finish(1).is_err());
    w.begin(&info(1)).unwrap();
    assert!(w.begin(&info(1)).is_err());
    w.finish(2).unwrap();
    w.finish(2).unwrap();
    assert!(w.event(&switch(3, 0, 0, 1)).is_err());
    let mut p = PerfettoWriter::new(Vec::new());
    assert!(p.event(&switch(1, 0, 0, 1)).is_err());
    p.begin(&info(1)).unwrap();
    p.finish(2).unwrap();
    assert!(p.event(&switch(3, 0, 0, 1)).is_err());
}

#[test]
fn readers_reject_what_is_not_a_trace() {
    assert!(json::read_cpu_slices(&b"{\"a\":1}"[..]).is_err());
    assert!(json::read_cpu_slices(&b"not json"[..]).is_err());
    assert!(perfetto::read_cpu_slices(&b""[..]).is_err());
    assert!(perfetto::read_cpu_slices(&b"\x0a\xff\xff\xff\xff\x0f"[..]).is_err());
    assert!(perfetto::read_cpu_slices(&b"{\"traceEvents\":[]}"[..]).is_err());
}

#[test]
fn tee_feeds_both_sinks() {
    let mut tee = Tee(JsonWriter::new(Vec::new()), PerfettoWriter::new(Vec::new()));
    write_with(&mut tee, &info(3), &scenario(), END_NS);
    let Tee(j, p) = tee;
    let (_, a) = json::read_cpu_slices(&j.into_inner()[..]).unwrap();
    let (_, b) = perfetto::read_cpu_slices(&p.into_inner()[..]).unwrap();
    assert_eq!(a, b);
    let mut v: Vec<Box<dyn Sink>> = vec![Box::new(JsonWriter::new(Vec::new()))];
    write_with(&mut v, &info(1), &[], 5);
}

#[test]
fn format_follows_the_extension() {
    let f = |p: &str| Format::from_path(Path::new(p)).ok();
    assert_eq!(f("out.json"), Some(Format::Json));
    assert_eq!(f("dir.d/OUT.JSON"), Some(Format::Json));
    assert_eq!(f("out.pftrace"), Some(Format::Perfetto));
    assert_eq!(f("out.perfetto-trace"), Some(Format::Perfetto));
    assert_eq!(f("out.pb"), Some(Format::Perfetto));
    for bad in ["out", "out.txt", "out.json.gz", ".json", "dir.json/"] {
        let err = Format::from_path(Path::new(bad));
        if bad == "dir.json/" {
            // A trailing slash is ignored by Path: this is "dir.json".
            assert!(err.is_ok());
            continue;
        }
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("cannot tell the trace format of {bad}:")),
            "{msg}"
        );
        assert!(msg.contains(".json") && msg.contains(".pftrace"), "{msg}");
        assert!(
            msg.contains(".perfetto-trace") && msg.contains(".pb"),
            "{msg}"
        );
        assert_eq!(msg.matches(". ").count(), 0, "one sentence: {msg}");
        assert!(!msg.ends_with('.'));
    }
}

#[test]
fn files_are_written_and_read_back_by_extension() {
    let dir = std::env::temp_dir().join(format!("schedkit-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["json", "pftrace"] {
        let path = dir.join(format!("t.{ext}"));
        let mut w = schedkit_trace::create_writer(&path).unwrap();
        write_with(&mut *w, &info(3), &scenario(), END_NS);
        drop(w);
        let (n, slices) = schedkit_trace::read_cpu_slices(&path).unwrap();
        assert_eq!((n, slices), (3, expected_slices()), "{ext}");
    }
    // An unknown extension creates nothing.
    let bad = dir.join("t.txt");
    assert!(matches!(
        schedkit_trace::create_writer(&bad),
        Err(TraceError::UnknownFormat { .. })
    ));
    assert!(!bad.exists());
    // A file that cannot be created says where and why, in one sentence.
    let nowhere = dir.join("no/such/dir/t.json");
    let msg = schedkit_trace::create_writer(&nowhere)
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot write the trace to {}: ",
            nowhere.display()
        )),
        "{msg}"
    );
    let msg = schedkit_trace::read_cpu_slices(dir.join("absent.pftrace"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("cannot read the trace "), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- any well-ordered stream ----

fn arb_event() -> impl Strategy<Value = (u64, Event)> {
    let pid = 0u32..6;
    let cpu = 0u32..5;
    let names = prop::sample::select(vec!["", "a", "kworker/0:1", "é\"\\\n", "pid 3"]);
    let ev = prop_oneof![
        1 => (pid.clone(), pid.clone(), names, any::<bool>()).prop_map(|(pid, tgid, n, s)| {
            Event::Thread {
                ts_ns: 0,
                pid,
                tgid,
                comm: n.to_string(),
                scheduler: s,
            }
        }),
        4 => (cpu.clone(), pid.clone(), pid.clone(), any::<bool>()).prop_map(|(cpu, prev, next, r)| {
            Event::Switch { ts_ns: 0, cpu, prev, prev_runnable: r, next }
        }),
        2 => (pid.clone(), cpu.clone(), prop::option::of(pid.clone()), any::<bool>()).prop_map(
            |(pid, cpu, waker, new_task)| Event::Wakeup { ts_ns: 0, pid, cpu, waker, new_task }
        ),
        1 => (pid.clone(), cpu.clone(), cpu.clone())
            .prop_map(|(pid, from, to)| Event::Migrate { ts_ns: 0, pid, from, to }),
        1 => pid.clone().prop_map(|pid| Event::Exit { ts_ns: 0, pid }),
        1 => (pid.clone(), cpu.clone()).prop_map(|(pid, cpu)| Event::Enqueued { ts_ns: 0, pid, cpu }),
        1 => (pid, prop::option::of(cpu), any::<u64>(), any::<u64>(), any::<bool>(), any::<bool>())
            .prop_map(|(pid, t, slice_ns, vtime, preempt, kernel)| Event::Decision {
                ts_ns: 0,
                pid,
                target: t.map_or(Target::Any, Target::Cpu),
                slice_ns,
                vtime,
                preempt,
                kernel,
            }),
        1 => (0usize..4, any::<u64>()).prop_map(|(i, value)| Event::Counter {
            ts_ns: 0,
            counter: [Counter::Waiting, Counter::Queued, Counter::Held, Counter::Congested][i],
            value,
        }),
        1 => any::<u64>().prop_map(|count| Event::Lost { ts_ns: 0, count }),
    ];
    (0u64..20, ev)
}

fn with_ts(mut e: Event, t: u64) -> Event {
    match &mut e {
        Event::Thread { ts_ns, .. }
        | Event::Switch { ts_ns, .. }
        | Event::Wakeup { ts_ns, .. }
        | Event::Migrate { ts_ns, .. }
        | Event::Exit { ts_ns, .. }
        | Event::Enqueued { ts_ns, .. }
        | Event::Decision { ts_ns, .. }
        | Event::Counter { ts_ns, .. }
        | Event::Lost { ts_ns, .. } => *ts_ns = t,
    }
    e
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_well_ordered_stream_writes_decodable_traces_that_agree(
        nr_cpus in 0u32..4,
        start in 0u64..1_000_000_000_000,
        steps in prop::collection::vec(arb_event(), 0..60),
        tail in 0u64..50,
    ) {
        let mut t = start;
        let mut events = Vec::new();
        for (dt, e) in steps {
            t += dt;
            events.push(with_ts(e, t));
        }
        let info = TraceInfo { start_ns: start, ..info(nr_cpus) };
        let end = t + tail;
        let j = json_of(&info, &events, end);
        let p = pftrace_of(&info, &events, end);
        serde_json::from_slice::<Value>(&j).expect("valid JSON");
        let decoded = perfetto::decode(&p).expect("decodes");
        prop_assert!(!decoded.packet.is_empty());
        let (jn, js) = json::read_cpu_slices(&j[..]).unwrap();
        let (pn, ps) = perfetto::read_cpu_slices(&p[..]).unwrap();
        prop_assert_eq!(jn, pn);
        prop_assert!(jn >= nr_cpus);
        prop_assert_eq!(&js, &ps);
        // No CPU runs two things at once, and everything is inside the trace.
        for w in js.windows(2) {
            if w[0].cpu == w[1].cpu {
                prop_assert!(w[0].end_ns <= w[1].start_ns, "{:?}", w);
            }
        }
        for s in &js {
            prop_assert!(start <= s.start_ns && s.start_ns < s.end_ns && s.end_ns <= end);
            prop_assert!(s.cpu < jn && s.pid != 0);
        }
    }
}
