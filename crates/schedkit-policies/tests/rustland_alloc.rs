//! The rustland policy does not allocate in steady state: once it has seen its tasks,
//! enqueues and decisions only reuse the room reserved up front. Its own test binary,
//! because it counts every allocation of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use schedkit_core::{fake::FakeBackend, Context, Cpu, Policy, QueuedTask, ENQ_WAKEUP};
use schedkit_policies::rustland::Rustland;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `rounds` of: every pid in `pids` enqueued (some re-queued while held, some
/// exiting and coming back), then everything dispatched.
fn churn(p: &mut Rustland, fake: &mut FakeBackend, pids: std::ops::Range<i32>, rounds: u64) {
    for round in 0..rounds {
        fake.set_now(round * 3_000_000);
        fake.set_idle(Cpu((round % 2) as u32));
        for pid in pids.clone() {
            let task = QueuedTask {
                flags: if pid % 2 == 0 { ENQ_WAKEUP } else { 0 },
                weight: 1 + (pid as u32 * 37) % 10_000,
                nvcsw: round * pid as u64,
                sum_exec_runtime_ns: round * 1_000_000,
                ..QueuedTask::new(pid, round)
            };
            for _ in 0..1 + (pid % 3) {
                let held = p.nr_held();
                p.enqueue(&task, &mut Context::new(fake, held));
            }
            if pid % 5 == 0 && round % 7 == 0 {
                p.task_exit(pid);
            }
        }
        loop {
            let held = p.nr_held();
            if p.dispatch(&mut Context::new(fake, held)).is_none() {
                break;
            }
        }
        std::hint::black_box(p.stats());
    }
}

#[test]
fn rustland_does_not_allocate_in_steady_state() {
    let mut fake = FakeBackend::new(2);
    let mut p = Rustland::default();
    churn(&mut p, &mut fake, 1..500, 3);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    churn(&mut p, &mut fake, 1..500, 200);
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations in steady state");
    assert!(p.stats().nr_tasks > 0);
}
