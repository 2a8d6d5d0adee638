//! `inspect` reads back what the writers wrote, in both formats, and counts it right.

use std::path::PathBuf;

use schedkit_trace::inspect::inspect;
use schedkit_trace::{create_writer, Event, Sink, Target, TraceInfo, TraceSource};

fn events() -> Vec<Event> {
    let thread = |pid, comm: &str, scheduler| Event::Thread {
        ts_ns: 0,
        pid,
        tgid: pid,
        comm: comm.into(),
        scheduler,
    };
    let decision = |ts_ns, pid, target, kernel| Event::Decision {
        ts_ns,
        pid,
        target,
        slice_ns: 1_000_000,
        vtime: 5,
        preempt: false,
        kernel,
    };
    vec![
        thread(10, "video/0", false),
        thread(11, "audio/0", false),
        thread(12, "sched", true),
        Event::Wakeup {
            ts_ns: 100,
            pid: 10,
            cpu: 0,
            waker: Some(12),
            new_task: false,
        },
        Event::Switch {
            ts_ns: 200,
            cpu: 0,
            prev: 0,
            prev_runnable: false,
            next: 12,
        },
        decision(250, 10, Target::Any, false),
        decision(255, 11, Target::Cpu(1), false),
        decision(260, 11, Target::Cpu(0), true),
        Event::Switch {
            ts_ns: 300,
            cpu: 0,
            prev: 12,
            prev_runnable: false,
            next: 10,
        },
        Event::Wakeup {
            ts_ns: 310,
            pid: 11,
            cpu: 1,
            waker: Some(10),
            new_task: false,
        },
        Event::Switch {
            ts_ns: 400,
            cpu: 1,
            prev: 0,
            prev_runnable: false,
            next: 11,
        },
        Event::Lost {
            ts_ns: 500,
            count: 7,
        },
        Event::Switch {
            ts_ns: 600,
            cpu: 0,
            prev: 10,
            prev_runnable: false,
            next: 0,
        },
    ]
}

fn write(ext: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("schedkit-inspect-{}.{ext}", std::process::id()));
    let mut w = create_writer(&path).unwrap();
    w.begin(&TraceInfo {
        source: TraceSource::Kernel,
        nr_cpus: 2,
        scheduler: "rustland".into(),
        start_ns: 0,
    })
    .unwrap();
    for e in events() {
        w.event(&e).unwrap();
    }
    w.finish(1000).unwrap();
    path
}

#[test]
fn both_formats_read_back_the_same_counts() {
    for ext in ["json", "pftrace"] {
        let path = write(ext);
        let found = inspect(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(
            found.cpus.iter().copied().collect::<Vec<_>>(),
            vec![0, 1],
            "{ext}"
        );
        for name in ["video/0", "audio/0", "sched"] {
            assert!(
                found.threads.contains(name),
                "{ext}: {name} in {:?}",
                found.threads
            );
        }
        // sched, video on CPU 0 (closed at 600), audio on CPU 1 (closed at finish).
        assert_eq!(found.slices, 3, "{ext}");
        assert_eq!(found.scheduler_threads, 1, "{ext}");
        assert_eq!(found.wakeups, 2, "{ext}");
        assert_eq!((found.decisions, found.kernel_decisions), (2, 1), "{ext}");
        assert_eq!(found.decisions_on_cpu, 1, "{ext}");
        assert_eq!(found.lost, 7, "{ext}");
    }
}

#[test]
fn a_file_of_the_wrong_format_is_an_error_naming_it() {
    let path = std::env::temp_dir().join(format!(
        "schedkit-inspect-bad-{}.pftrace",
        std::process::id()
    ));
    std::fs::write(&path, b"{\"traceEvents\": []}").unwrap();
    let err = inspect(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).ok();
    assert!(err.contains("cannot read the trace"), "{err}");
}
