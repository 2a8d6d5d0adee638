/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * schedkit's dispatcher: a thin sched_ext scheduler that hands every scheduling
 * decision to a user-space process, where the policy is ordinary Rust.
 *
 * Tasks that become runnable (ops.enqueue) are sent to user space through the "queued"
 * ring buffer. The policy answers with decisions (task, CPU or "any CPU", slice,
 * vtime, generation) through the "dispatched" user ring buffer, which ops.dispatch
 * drains into vtime-ordered dispatch queues: one per CPU for decisions that name a CPU,
 * and one shared queue for "any CPU". Each CPU serves its own queue, then the shared
 * one.
 *
 * The user-space scheduler is itself a task sched_ext must schedule. It has a queue of
 * its own that every CPU serves first, so it runs as soon as it is runnable. Some tasks
 * must never wait for it, or the machine could deadlock: the scheduler's own threads,
 * per-CPU kernel threads, and the memory-reclaim threads (kswapd, kcompactd,
 * khugepaged) that the scheduler itself may be waiting for. They are dispatched here.
 *
 * Two fast paths keep the round trip off the common case: a waking task that finds an
 * idle CPU while nothing is waiting anywhere runs there at once, and when the ring to
 * user space is full the task goes to the shared queue (counted as congestion) instead
 * of being lost.
 *
 * A per-task generation counter, bumped on every enqueue and echoed in the decision,
 * tells a stale decision (for a task that was dequeued and enqueued again while user
 * space held it) from a current one; stale decisions are dropped and counted.
 *
 * Degraded mode: the scheduler can stop (SIGSTOP, a debugger, strace -p) or be unable
 * to run, and every task it holds would wait for it until the watchdog ejects it. So a
 * task sent to user space is also parked in a FIFO queue of its own (PARK_DSQ) that no
 * CPU serves: a decision moves it from there to the queue it names. When the oldest
 * parked task has waited LATE_NS and the scheduler has not run for as long, the
 * dispatcher takes over: parked tasks move to a fallback queue that CPUs serve in
 * weighted-vtime order (as scx_simple does), newly runnable tasks go there directly,
 * without a trip to user space, and running tasks are preempted once so that the
 * fallback order applies at once. As soon as the scheduler runs again it decides
 * again; the fallback queue drains ahead of the shared one, and a decision for a task
 * still in it moves it out as usual. Decisions for tasks the dispatcher ran meanwhile
 * find them gone from both queues and are dropped, like stale ones.
 *
 * A real-time or deadline task that takes a CPU would hold the sched_ext task it
 * preempted there until it let go (up to 950 ms with the kernel's defaults): where the
 * kernel can, it hands such a task back instead, and the dispatcher puts it where
 * another CPU runs it (see handed_back()).
 *
 * Where it falls short: the shared queue is one lock for all CPUs, fine for the small
 * machines this is tested on, a bottleneck on large ones; CPU choice for "any CPU" is
 * whichever CPU frees up first, with no notion of cache or NUMA locality.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "intf.h"
#include "trace_intf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	0
#define SCHED_DSQ	1
#define PARK_DSQ	2	/* sent to user space, no decision yet; never served */
#define FALLBACK_DSQ	3	/* scheduled by the dispatcher itself, in degraded mode */
#define PCPU_DSQ_BASE	0x10000
#define MAX_CPUS	1024
#define NSEC_PER_MSEC	1000000ULL
#define CLOCK_MONOTONIC	1
#define ESRCH		3
#define ENOENT		2

/* From include/linux/sched.h; flags are macros, absent from BTF. */
#define PF_KSWAPD	0x00020000
#define PF_KTHREAD	0x00200000

/* kfuncs, declared here so the object does not depend on a particular header set. */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
/* From 6.19; 7.x logs that writing p->scx.slice directly is deprecated. */
bool scx_bpf_task_set_slice(struct task_struct *p, u64 slice) __ksym __weak;
u32 scx_bpf_nr_cpu_ids(void) __ksym;
u32 scx_bpf_dispatch_nr_slots(void) __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
const struct cpumask *scx_bpf_get_online_cpumask(void) __ksym;
void scx_bpf_put_cpumask(const struct cpumask *cpumask) __ksym;
bool scx_bpf_dsq_move_vtime(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p,
			    u64 dsq_id, u64 enq_flags) __ksym;
bool scx_bpf_dsq_move(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p,
		      u64 dsq_id, u64 enq_flags) __ksym;
void scx_bpf_dsq_move_set_slice(struct bpf_iter_scx_dsq *it__iter, u64 slice) __ksym;
void scx_bpf_dsq_move_set_vtime(struct bpf_iter_scx_dsq *it__iter, u64 vtime) __ksym;
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __ksym;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym;
struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;

/* The iterator of the innermost bpf_for_each, for the kfuncs that take it. */
#define BPF_FOR_EACH_ITER	(&___it)

/* Ejects the scheduler with a message carrying one integer. */
#define schedkit_error(fmt, arg)						\
	({								\
		static char ___fmt[] = fmt;				\
		unsigned long long ___arg[1] = { (arg) };		\
		scx_bpf_error_bstr(___fmt, ___arg, sizeof(___arg));	\
	})

/*
 * Set by the loader before load. The scheduler is the thread that runs the loop, not
 * its whole process: the statistics and printing threads are ordinary tasks, which
 * must neither jump every queue nor preempt others at the tick.
 */
const volatile s32 usersched_pid;
const volatile u64 default_slice_ns = 5000000;

/*
 * A policy's slice is clamped to this range: 0 would end every run at once, and
 * u64::MAX is SCX_SLICE_INF, a slice that never ends, so every other task on that CPU
 * would wait for the watchdog. The upper bound is far below the watchdog timeout.
 */
#define SLICE_MIN_NS	50000ULL
#define SLICE_MAX_NS	100000000ULL

/*
 * Counters, read by user space through the mmapped .bss. Written with atomic adds
 * from any CPU; user space only reads them, except nr_consumed and nr_scheduled,
 * which only user space writes.
 */
u64 nr_enqueued;	/* tasks sent to user space */
u64 nr_consumed;	/* ... of which user space has read (user-written) */
u64 nr_scheduled;	/* tasks the policy holds (user-written) */
u64 nr_running;
u64 nr_user_dispatches;
u64 nr_kernel_dispatches;
u64 nr_cancel_dispatches;
u64 nr_bounce_dispatches;
u64 nr_sched_congested;
u64 nr_exit_pid_reused;	/* exit records not sent: the pid already named a new task */
u64 nr_exit_lost;	/* exit events dropped because the ring was full */
u64 max_vtime;		/* largest vtime seen in a decision */
u64 nr_preemptions;	/* slices cut short for an earlier decision or the scheduler */
u64 nr_standing_dispatches; /* wake-ups dispatched from a standing instruction */
/*
 * vtime of the task running on each CPU, or 0 for one that must not be preempted
 * for a user-space decision (the scheduler itself, kernel threads it bypasses).
 */
u64 running_vtime[MAX_CPUS];
/*
 * Set when a CPU is kicked to preempt its task for a wake-up placed by a standing
 * instruction; cleared when the next task starts there. The task that stops meanwhile
 * was preempted: it keeps its place without a trip to user space. (Tasks preempted
 * for a decision of the policy, or for the scheduler at the tick, take the trip: in
 * the VM, keeping their place too cost desktop-mix's video task half its frames.)
 */
bool preempt_pending[MAX_CPUS];
u64 nr_preempted_kept;	/* preempted tasks put back in their place by the kernel side */
u64 nr_handed_back;	/* tasks handed back from a CPU a higher class took */
/* Tasks in the shared and per-CPU queues, as of the last time the scheduler woke up. */
u64 nr_dsq_waiting;
/* When the scheduler was queued and has not run since, or 0. */
u64 usersched_queued_at;
/* Whether the scheduler is on a CPU, and when it last got on or off one. */
bool usersched_on_cpu;
u64 usersched_seen_at;
/* When degraded mode began, or 0; time spent in it before, ns; times entered. */
u64 degraded_since;
u64 degraded_ns;
u64 nr_degraded;
/* Fallback vtime of the task that last started running (scx_simple's vtime_now). */
u64 fallback_vtime_now;

/*
 * Degraded mode starts once the oldest parked task has waited this long and the
 * scheduler has not run for as long; the timer checks every TIMER_BUSY_NS while tasks
 * wait for user space, so a task waits at most about LATE_NS + TIMER_BUSY_NS + one
 * fallback turn. A healthy scheduler answers within a few ms even in the emulated VM;
 * one that holds tasks by choice still runs, so it never looks late.
 */
#define LATE_NS		(50 * NSEC_PER_MSEC)
#define TIMER_BUSY_NS	(20 * NSEC_PER_MSEC)
#define TIMER_IDLE_NS	(100 * NSEC_PER_MSEC)

/*
 * The scheduler waits at most this long, and then to the next tick, for a CPU: a tick
 * that finds it waiting longer ends the slice of the task running there. Preempting
 * for it as soon as it wakes (tried first, with a 1 ms grace) cost hackbench a third
 * of its throughput in the VM; waiting for slices to end leaves a waking task
 * queued for up to a whole slice behind CPU-bound tasks when every CPU runs one.
 */
#define USERSCHED_WAIT_NS	1000000ULL

/* Why the scheduler was ejected; kind is written last, user space polls it. */
struct schedkit_exit_info {
	s32 kind;
	s64 exit_code;
	char reason[128];
	char msg[1024];
} uei;

/*
 * The two rings to and from user space: 512 KiB each (about 5,000 tasks and 9,000
 * decisions in flight). User space maps each twice over, and all of it is locked: at
 * 4 MiB they were 16 MiB of the scheduler's resident set. A full ring is not a stall:
 * the dispatcher then decides by itself (counted as congestion).
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 << 10);
} queued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 512 << 10);
} dispatched SEC(".maps");

/*
 * What a `schedkit trace` sees of the policy: while a tracer has set `on` in
 * sk_trace_ctl (it finds the map by name), the dispatcher sends a record for each task
 * handed to user space, each decision taken, and the queues' counters each time the
 * scheduler wakes. When no trace records, this costs one map lookup per event.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sk_trace_ctl);
} sk_trace_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} sk_trace_rb SEC(".maps");

static struct sk_trace_rec *trace_reserve(u32 kind)
{
	struct sk_trace_rec *r;
	struct sk_trace_ctl *c;
	u32 key = 0;
	u64 now;

	c = bpf_map_lookup_elem(&sk_trace_ctl, &key);
	if (!c || !c->on)
		return NULL;
	now = bpf_ktime_get_ns();
	r = bpf_ringbuf_reserve(&sk_trace_rb, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&c->nr_lost, 1);
		return NULL;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->ts = now;
	r->kind = kind;
	r->cpu = bpf_get_smp_processor_id();
	return r;
}

/*
 * Sends a record from trace_reserve. A tracer that measures what it costs
 * (SK_TRACE_TIMED) gets the time from before the reserve to after this submit.
 */
static __always_inline void trace_submit(struct sk_trace_rec *r)
{
	struct sk_trace_ctl *c;
	u64 began = r->ts;
	u32 key = 0;

	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	c = bpf_map_lookup_elem(&sk_trace_ctl, &key);
	if (c && (c->on & SK_TRACE_TIMED)) {
		__sync_fetch_and_add(&c->nr_timed, 1);
		__sync_fetch_and_add(&c->timed_ns, bpf_ktime_get_ns() - began);
	}
}

/*
 * A task handed to user space (SK_TR_ENQUEUED) or a decision taken (SK_TR_DECISION).
 * Inlined: a BPF function takes five arguments at most.
 */
static __always_inline void trace_task(u32 kind, const struct task_struct *p, s32 target,
				       u64 slice, u64 vtime, u32 flags)
{
	struct sk_trace_rec *r = trace_reserve(kind);

	if (!r)
		return;
	r->pid = p->pid;
	r->tgid = p->tgid;
	__builtin_memcpy(r->comm, p->comm, sizeof(r->comm));
	r->arg = target;
	r->a = slice;
	r->b = vtime;
	r->flags = flags;
	trace_submit(r);
}

struct task_ctx {
	u64 generation;
	u64 started_at;
	u64 last_run_ns;
	u64 run_since_sleep_ns;
	u64 parked_at;		/* when it was last sent to user space */
	u64 runnable_since;	/* when it became runnable, not reset by a re-enqueue */
	bool rescued;		/* moved to the fallback queue by a safety net */
	u64 fallback_vtime;	/* weighted run time, for the fallback queue's order */
	bool in_fallback;	/* last queued by the dispatcher, not by a decision */
	/*
	 * The policy's standing instruction for wake-ups (see intf.h), valid while
	 * st_until is non-zero, st_until is in the future and st_used < st_budget.
	 */
	u64 st_until;
	u64 st_vtime;		/* the decision's vtime when it was issued */
	u64 st_used;		/* CPU time used since it was issued */
	u64 st_budget;
	u64 st_slice;
	u64 st_flags;		/* enum schedkit_decision_flags */
	u64 st_margin;
	/*
	 * Whether the task's current place (p->scx.dsq_vtime, its slice) was given by the
	 * policy; the slice left at the start of its current run and at its end. A task
	 * preempted for another keeps that place.
	 */
	bool decided;
	u64 slice_at_start;
	u64 slice_left;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctx_stor SEC(".maps");

struct usersched_timer {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct usersched_timer);
} timer_map SEC(".maps");

/*
 * Loops over CPUs use open-coded iterators (bpf_for), which the verifier checks once
 * instead of once per iteration: a plain loop bounded by MAX_CPUS costs it a thousand
 * passes, minutes under emulation.
 */
static u32 min_cpus(u32 n)
{
	return n < MAX_CPUS ? n : MAX_CPUS;
}

static struct task_ctx *lookup_task_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
}

static bool is_usersched(const struct task_struct *p)
{
	return p->pid == usersched_pid;
}

static bool comm_starts_with(const struct task_struct *p, const char *prefix, int len)
{
	for (int i = 0; i < len && i < 16; i++)
		if (p->comm[i] != prefix[i])
			return false;
	return true;
}

/*
 * Tasks the dispatcher schedules by itself. Per-CPU kernel threads can only run on one
 * CPU and often do work the whole machine waits for (workqueues, RCU, softirqs); the
 * reclaim threads free the memory the user-space scheduler may fault on.
 */
static bool bypasses_user(const struct task_struct *p)
{
	if (!(p->flags & PF_KTHREAD))
		return false;
	if (p->nr_cpus_allowed == 1 || (p->flags & PF_KSWAPD))
		return true;
	return comm_starts_with(p, "kswapd", 6) || comm_starts_with(p, "kcompactd", 9) ||
	       comm_starts_with(p, "khugepaged", 10);
}

static u64 nr_waiting_in_user(void)
{
	return nr_enqueued - nr_consumed + nr_scheduled;
}

static bool is_online(s32 cpu)
{
	const struct cpumask *online = scx_bpf_get_online_cpumask();
	bool on = cpu >= 0 && bpf_cpumask_test_cpu(cpu, online);

	scx_bpf_put_cpumask(online);
	return on;
}

/*
 * An idle CPU among `allowed`, claimed, or -1. The idle mask may still hold a CPU that
 * went offline, and a task's mask may name one: such a pick is dropped (claiming it
 * costs nothing) and another tried, a few times.
 */
static s32 pick_idle_online_cpu(const struct cpumask *allowed)
{
	s32 cpu = -1, i;

	bpf_for(i, 0, 4) {
		cpu = scx_bpf_pick_idle_cpu(allowed, 0);
		if (cpu < 0 || is_online(cpu))
			break;
		cpu = -1;
	}
	return cpu;
}

/*
 * Kick a CPU the policy's idle query claimed for a decision that did not send a task
 * there (cancelled, bounced, or the task is gone): the claim cleared its idle bit, and
 * only going through the scheduler again, with nothing to run, sets it back. Without
 * this, an idle CPU would stay hidden from every later idle query.
 */
static void release_claim(s32 cpu)
{
	if (cpu >= 0 && cpu < min_cpus(scx_bpf_nr_cpu_ids()) && is_online(cpu))
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

/*
 * Tasks dispatched but not yet running are still waiting, as far as a policy that
 * sizes slices by the number of waiting tasks is concerned. Counted when the
 * scheduler wakes up, which is when it will next read the figure: one pass over the
 * per-CPU queues, cheap on the machines this targets.
 */
static void count_dsq_waiting(void)
{
	u32 n = min_cpus(scx_bpf_nr_cpu_ids());
	u64 total = scx_bpf_dsq_nr_queued(SHARED_DSQ) + scx_bpf_dsq_nr_queued(FALLBACK_DSQ);
	s32 cpu;

	bpf_for(cpu, 0, n)
		total += scx_bpf_dsq_nr_queued(PCPU_DSQ_BASE + cpu);
	nr_dsq_waiting = total;
}

/* The queues' counters, for a trace, each time the scheduler wakes up. */
static void trace_counters(void)
{
	struct sk_trace_rec *r = trace_reserve(SK_TR_COUNTERS);

	if (!r)
		return;
	r->a = nr_enqueued - nr_consumed;
	r->b = nr_scheduled;
	r->c = nr_sched_congested;
	r->arg = nr_dsq_waiting;
	trace_submit(r);
}

/* Wake a CPU that is idle so it runs ops.dispatch and finds the new work. */
static void kick_idle_cpu(const struct task_struct *p)
{
	s32 cpu = pick_idle_online_cpu(p->cpus_ptr);

	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

static bool is_degraded(void)
{
	return degraded_since != 0;
}

/*
 * Where a task stands in the fallback queue: its weighted run time, but no more than
 * one slice behind the task that last started (a task back from a long sleep gets a
 * turn soon, not a burst that starves the others).
 */
/* Run time `ns` as virtual time for `p`: scaled by its weight (100 is nice 0). */
static __always_inline u64 weighted_ns(u64 ns, const struct task_struct *p)
{
	return ns * 100 / (p->scx.weight ? p->scx.weight : 1);
}

/* a + b, or the largest u64 if that overflows. */
static __always_inline u64 sat_add(u64 a, u64 b)
{
	return a + b < a ? (u64)-1 : a + b;
}

static u64 fallback_vtime(struct task_ctx *tctx)
{
	u64 floor = fallback_vtime_now > default_slice_ns ?
			    fallback_vtime_now - default_slice_ns : 0;

	if (tctx->fallback_vtime < floor)
		tctx->fallback_vtime = floor;
	return tctx->fallback_vtime;
}

/*
 * Moves `p` from queue `from` to `to` with the given slice and vtime; false if it is not
 * (or no longer) there. A task is moved only if it was queued before the iterator was
 * created, so this creates its own.
 */
static bool move_task(struct task_struct *p, u64 from, u64 to, u64 slice, u64 vtime)
{
	struct bpf_iter_scx_dsq it;
	bool moved = false;

	if (!bpf_iter_scx_dsq_new(&it, from, 0)) {
		scx_bpf_dsq_move_set_slice(&it, slice);
		scx_bpf_dsq_move_set_vtime(&it, vtime);
		moved = scx_bpf_dsq_move_vtime(&it, p, to, 0);
	}
	bpf_iter_scx_dsq_destroy(&it);
	return moved;
}

/* How long the oldest parked task has waited for user space, ns (0 if none). */
static u64 oldest_parked_wait(u64 now)
{
	struct task_struct *p;
	u64 wait = 0;

	bpf_for_each(scx_dsq, p, PARK_DSQ, 0) {
		struct task_ctx *tctx = lookup_task_ctx(p);

		if (tctx && tctx->parked_at && now > tctx->parked_at)
			wait = now - tctx->parked_at;
		break;
	}
	return wait;
}

static bool usersched_late(u64 now)
{
	u64 seen = usersched_seen_at;

	/* Another CPU may have set it after `now` was read. */
	return !usersched_on_cpu && now > seen && now - seen > LATE_NS &&
	       oldest_parked_wait(now) > LATE_NS;
}

/* Hands every parked task to the fallback queue. */
static void unpark_all(void)
{
	struct task_struct *p;

	bpf_for_each(scx_dsq, p, PARK_DSQ, 0) {
		struct task_ctx *tctx = lookup_task_ctx(p);

		if (!tctx)
			continue;
		tctx->in_fallback = true;
		scx_bpf_dsq_move_set_slice(BPF_FOR_EACH_ITER, default_slice_ns);
		scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER, fallback_vtime(tctx));
		if (scx_bpf_dsq_move_vtime(BPF_FOR_EACH_ITER, p, FALLBACK_DSQ, 0))
			__sync_fetch_and_add(&nr_kernel_dispatches, 1);
	}
}

#define RESCUE_NS	(2000 * NSEC_PER_MSEC)
u64 nr_rescued;

/*
 * The safety net: a task runnable for RESCUE_NS without running goes to the fallback
 * queue, which CPUs serve first, wherever it waits: parked for a decision that never
 * came, or in the shared or a CPU's own queue. A policy may hold a task, but not for a
 * fifth of the watchdog's timeout. The time counts from when the task became runnable
 * and is not reset when the kernel queues it again without running it (an affinity
 * change dequeues and re-enqueues it, a new trip through the policy each time): under
 * affinity churn a policy that puts each new trip behind the others would otherwise
 * keep it waiting until the watchdog ejects the scheduler (seen with stress-ng
 * --affinity under rustland). A CPU's own queue may also hold a task that cannot move
 * to that CPU while its migration is disabled. (No count bounds the scan: a counter
 * the verifier tracks makes it walk every iteration separately, past its limit.)
 */
static void rescue_starved_in(u64 dsq, u64 now)
{
	struct task_struct *p;

	bpf_for_each(scx_dsq, p, dsq, 0) {
		struct task_ctx *tctx = lookup_task_ctx(p);

		/*
		 * `now` was read when the timer started: a task that became runnable on
		 * another CPU since has a later runnable_since, and the difference would
		 * wrap around to a huge wait (seen: ping-pong tasks rescued at once).
		 */
		if (!tctx || !tctx->runnable_since || now < tctx->runnable_since ||
		    now - tctx->runnable_since < RESCUE_NS)
			continue;
		tctx->in_fallback = true;
		tctx->rescued = true;
		scx_bpf_dsq_move_set_slice(BPF_FOR_EACH_ITER, default_slice_ns);
		scx_bpf_dsq_move_set_vtime(BPF_FOR_EACH_ITER, fallback_vtime(tctx));
		if (scx_bpf_dsq_move_vtime(BPF_FOR_EACH_ITER, p, FALLBACK_DSQ, 0))
			__sync_fetch_and_add(&nr_rescued, 1);
	}
}

static long rescue_starved_cpu(u64 cpu, void *ctx)
{
	u64 now = *(u64 *)ctx;

	if (scx_bpf_dsq_nr_queued(PCPU_DSQ_BASE + cpu))
		rescue_starved_in(PCPU_DSQ_BASE + cpu, now);
	return 0;
}

/* The per-CPU queues through bpf_loop: verified once, not once per CPU. */
static void rescue_starved(u64 now)
{
	rescue_starved_in(PARK_DSQ, now);
	rescue_starved_in(SHARED_DSQ, now);
	bpf_loop(min_cpus(scx_bpf_nr_cpu_ids()), rescue_starved_cpu, &now, 0);
}

/*
 * A decision can reach a CPU's own queue just before that CPU goes offline, and nobody
 * serves the queue of an offline CPU: its tasks go to the shared queue.
 */
static void rescue_offline_queues(void)
{
	u32 n = min_cpus(scx_bpf_nr_cpu_ids());
	struct task_struct *p;
	s32 cpu;

	bpf_for(cpu, 0, n) {
		if (is_online(cpu) || !scx_bpf_dsq_nr_queued(PCPU_DSQ_BASE + cpu))
			continue;
		bpf_for_each(scx_dsq, p, PCPU_DSQ_BASE + cpu, 0) {
			if (scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, SHARED_DSQ, 0))
				__sync_fetch_and_add(&nr_rescued, 1);
		}
	}
}

static void kick_online_cpus(u64 flags)
{
	u32 n = min_cpus(scx_bpf_nr_cpu_ids());
	s32 cpu;

	bpf_for(cpu, 0, n)
		if (is_online(cpu))
			scx_bpf_kick_cpu(cpu, flags);
}

static void enter_degraded(u64 now)
{
	if (__sync_val_compare_and_swap(&degraded_since, 0, now) != 0)
		return;
	__sync_fetch_and_add(&nr_degraded, 1);
	unpark_all();
	/* Running tasks may hold a long slice from the policy: fallback order from now. */
	kick_online_cpus(SCX_KICK_PREEMPT);
}

static void leave_degraded(u64 now)
{
	u64 since = degraded_since;

	if (since && __sync_val_compare_and_swap(&degraded_since, since, 0) == since &&
	    now > since)
		__sync_fetch_and_add(&degraded_ns, now - since);
}

SEC("struct_ops/schedkit_select_cpu")
s32 BPF_PROG(schedkit_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_usersched(p))
		count_dsq_waiting();

	/*
	 * The idle fast path: the CPU is idle and nothing waits anywhere, so there is no
	 * decision to make. Checked without locks: at worst one task skips the policy
	 * once, or one decision is taken in user space that did not need to be.
	 */
	if (is_idle && (is_usersched(p) || bypasses_user(p) || is_degraded() ||
			(!nr_waiting_in_user() && !scx_bpf_dsq_nr_queued(SHARED_DSQ)))) {
		struct task_ctx *tctx = lookup_task_ctx(p);

		if (tctx)
			tctx->decided = false;
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, default_slice_ns, 0);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		if (!is_usersched(p))
			trace_task(SK_TR_DECISION, p, cpu, default_slice_ns, 0, SK_TRF_KERNEL);
	}
	return cpu;
}

static void preempt_for(const struct task_struct *p, u64 vtime, bool keep);
static bool cpu_usable(s32 cpu, const struct task_struct *p);
static u64 clamp_slice(u64 slice_ns);

/*
 * A waking task with a standing instruction from the policy (see intf.h) is
 * dispatched here, as the policy said, without a trip to user space: to its previous
 * CPU or another allowed one if idle (claimed, so no other wake-up takes it), otherwise
 * to the shared queue by its vtime, preempting as the instruction allows. Its vtime is
 * the instruction's advanced by the CPU time used since, scaled by weight, as a
 * vruntime would be. An expired instruction is dropped and the task takes the trip,
 * where the policy sees what it used and may issue a new one.
 */
static __always_inline bool standing_dispatch(struct task_struct *p, struct task_ctx *tctx,
					      u64 enq_flags)
{
	u64 vtime, now;
	s32 cpu, target = -1;

	if (!tctx->st_until)
		return false;
	now = bpf_ktime_get_ns();
	if (now >= tctx->st_until || tctx->st_used >= tctx->st_budget) {
		tctx->st_until = 0;
		return false;
	}
	vtime = tctx->st_vtime + weighted_ns(tctx->st_used, p);
	cpu = scx_bpf_task_cpu(p);
	if (cpu >= 0 && cpu < MAX_CPUS && bpf_cpumask_test_cpu(cpu, p->cpus_ptr) &&
	    is_online(cpu) && scx_bpf_test_and_clear_cpu_idle(cpu))
		target = cpu;
	else
		target = pick_idle_online_cpu(p->cpus_ptr);
	if (target >= 0) {
		scx_bpf_dsq_insert_vtime(p, PCPU_DSQ_BASE + target, tctx->st_slice, vtime,
					 enq_flags);
		scx_bpf_kick_cpu(target, SCX_KICK_IDLE);
	} else {
		scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, tctx->st_slice, vtime, enq_flags);
		if (tctx->st_flags & SCHEDKIT_DEC_PREEMPT)
			preempt_for(p, sat_add(vtime, tctx->st_margin), true);
	}
	tctx->decided = true;
	__sync_fetch_and_add(&nr_standing_dispatches, 1);
	trace_task(SK_TR_DECISION, p, target, tctx->st_slice, vtime,
		   SK_TRF_STANDING |
			   ((tctx->st_flags & SCHEDKIT_DEC_PREEMPT) ? SK_TRF_PREEMPT : 0));
	return true;
}

/*
 * Put a task the policy placed back in the shared queue (not a CPU's own, which CPUs
 * serve first) with the rest of its slice, by its vtime advanced by the run it just
 * had, as a vruntime would be: left where it was, a task stopped again and again
 * would keep the place it had before all those runs, ahead of the tasks it should
 * now let run. Not a new decision, so no trip to user space.
 */
static __always_inline u64 requeue_decided(struct task_struct *p, struct task_ctx *tctx,
					   u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime + weighted_ns(tctx->last_run_ns, p);
	s32 idle;

	tctx->decided = true;
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, tctx->slice_left, vtime, enq_flags);
	idle = pick_idle_online_cpu(p->cpus_ptr);
	if (idle >= 0)
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	return vtime;
}

/*
 * A task the policy placed, preempted for a wake-up placed by a standing instruction
 * before its slice ran out, keeps its place: a preemption is not a new decision, and
 * sending the task to user space would make the scheduler, which runs first, delay
 * the very task the preemption was for.
 */
static __always_inline bool keep_place(struct task_struct *p, struct task_ctx *tctx,
				       u64 enq_flags)
{
	u32 cpu = scx_bpf_task_cpu(p);

	asm volatile("" : "+r"(cpu));
	if (!preempt_pending[cpu & (MAX_CPUS - 1)] || tctx->slice_left < SLICE_MIN_NS)
		return false;
	preempt_pending[cpu & (MAX_CPUS - 1)] = false;
	__sync_fetch_and_add(&nr_preempted_kept, 1);
	requeue_decided(p, tctx, enq_flags);
	return true;
}

/*
 * Was the task handed back because a higher class took the CPU it ran on? Read from
 * the reason the kernel leaves in its flags, where it has one (7.1 on).
 */
static __always_inline bool taken_by_higher_class(const struct task_struct *p)
{
	u32 mask, preempted;

	if (!bpf_core_enum_value_exists(enum scx_ent_flags, SCX_TASK_REENQ_PREEMPTED))
		return false;
	mask = bpf_core_enum_value(enum scx_ent_flags, SCX_TASK_REENQ_REASON_MASK);
	preempted = bpf_core_enum_value(enum scx_ent_flags, SCX_TASK_REENQ_PREEMPTED);
	return (p->scx.flags & mask) == preempted;
}

/*
 * The kernel hands a task back (SCX_ENQ_REENQ) when a higher class (real-time,
 * deadline) takes the CPU it runs on, or when the CPU it was put on cannot run it at
 * once: every insert into a CPU's local queue is "immediate"
 * (SCX_OPS_ALWAYS_ENQ_IMMED, set at load where the kernel has it). Without that, a
 * busy real-time task would hold the task it preempted in its CPU's local queue
 * until the kernel's reserve for lower classes came round, most of a second.
 *
 * Taken by a higher class, a task the policy placed goes where any CPU serves it, as
 * it was, with the rest of its slice; a kernel thread the dispatcher places alone
 * waits for its CPU (it may not run elsewhere); anything else takes the trip, as a
 * new decision. Not run at once where it was put (the CPU was idle when it was
 * chosen, and is not now, or the waker still runs there), a task waits for that CPU
 * first in line, in the CPU's own queue, as it did in the local one: sent through
 * the policy instead, each costs a trip and a delay (measured: the game missed about
 * three times as many frames as without the flag).
 */
static __always_inline bool handed_back(struct task_struct *p, struct task_ctx *tctx,
					bool decided, u64 enq_flags)
{
	s32 cpu;
	u64 vtime;

	/* Every enqueue comes through here: nothing before this test. */
	if (!(enq_flags & SCX_ENQ_REENQ))
		return false;
	if (taken_by_higher_class(p)) {
		__sync_fetch_and_add(&nr_handed_back, 1);
		if (!bypasses_user(p)) {
			if (!tctx || !decided || tctx->slice_left < SLICE_MIN_NS)
				return false;
			vtime = requeue_decided(p, tctx, enq_flags);
			trace_task(SK_TR_DECISION, p, -1, tctx->slice_left, vtime, SK_TRF_KERNEL);
			return true;
		}
	}
	cpu = scx_bpf_task_cpu(p);
	scx_bpf_dsq_insert_vtime(p, PCPU_DSQ_BASE + cpu, default_slice_ns, 0, enq_flags);
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	trace_task(SK_TR_DECISION, p, cpu, default_slice_ns, 0, SK_TRF_KERNEL);
	return true;
}

SEC("struct_ops/schedkit_enqueue")
void BPF_PROG(schedkit_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct schedkit_queued_task *e;
	struct task_ctx *tctx;
	bool decided;

	/* Only a local queue takes it; none of the inserts below is into one. */
	enq_flags &= ~(u64)SCX_ENQ_IMMED;
	if (is_usersched(p)) {
		count_dsq_waiting();
		trace_counters();
		scx_bpf_dsq_insert(p, SCHED_DSQ, default_slice_ns, enq_flags);
		/*
		 * An idle CPU runs it at once; otherwise the next CPU to free up does,
		 * or the tick (see USERSCHED_WAIT_NS).
		 */
		if (!usersched_queued_at)
			usersched_queued_at = bpf_ktime_get_ns();
		kick_idle_cpu(p);
		return;
	}
	if (bypasses_user(p)) {
		if (handed_back(p, NULL, false, enq_flags))
			return;
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | scx_bpf_task_cpu(p), default_slice_ns,
				   enq_flags);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		trace_task(SK_TR_DECISION, p, scx_bpf_task_cpu(p), default_slice_ns, 0,
			   SK_TRF_KERNEL);
		return;
	}

	tctx = lookup_task_ctx(p);
	if (!tctx) {
		schedkit_error("task %d has no schedkit context", p->pid);
		return;
	}
	tctx->generation++;
	tctx->in_fallback = false;
	/*
	 * A task preempted or out of slice stays runnable, so ops.runnable does not run
	 * for it: the safety net's clock starts here.
	 */
	if (!tctx->runnable_since)
		tctx->runnable_since = bpf_ktime_get_ns();
	decided = tctx->decided;
	tctx->decided = false;

	if (is_degraded() || tctx->rescued) {
		/*
		 * User space does not answer, or a safety net took the task over: schedule
		 * it here, no trip to user space, until it has run.
		 */
		tctx->in_fallback = true;
		scx_bpf_dsq_insert_vtime(p, FALLBACK_DSQ, default_slice_ns, fallback_vtime(tctx),
					 enq_flags);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		trace_task(SK_TR_DECISION, p, -1, default_slice_ns, tctx->fallback_vtime,
			   SK_TRF_KERNEL);
		kick_idle_cpu(p);
		return;
	}

	if (handed_back(p, tctx, decided, enq_flags))
		return;
	if ((enq_flags & SCX_ENQ_WAKEUP) && standing_dispatch(p, tctx, enq_flags))
		return;
	if (!(enq_flags & SCX_ENQ_WAKEUP) && decided && keep_place(p, tctx, enq_flags))
		return;

	e = bpf_ringbuf_reserve(&queued, sizeof(*e), 0);
	if (!e) {
		/* User space is behind: keep the task moving without it. */
		__sync_fetch_and_add(&nr_sched_congested, 1);
		if (p->flags & PF_KTHREAD) {
			/*
			 * A kernel thread does work the machine waits for, the kernel's
			 * own sched_ext watchdog among it: it runs next on its CPU rather
			 * than behind the others. At the end of the shared queue, behind
			 * 9,200 hackbench threads and then rescued behind thousands of
			 * them, the watchdog's worker waited past its timeout once and
			 * the kernel ejected the scheduler.
			 */
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, default_slice_ns, enq_flags);
			trace_task(SK_TR_DECISION, p, scx_bpf_task_cpu(p), default_slice_ns, 0,
				   SK_TRF_KERNEL);
			return;
		}
		scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, default_slice_ns, max_vtime, enq_flags);
		trace_task(SK_TR_DECISION, p, -1, default_slice_ns, max_vtime, SK_TRF_KERNEL);
		kick_idle_cpu(p);
		return;
	}
	e->kind = SCHEDKIT_EV_QUEUED;
	e->pid = p->pid;
	e->prev_cpu = scx_bpf_task_cpu(p);
	e->nr_cpus_allowed = p->nr_cpus_allowed;
	e->flags = enq_flags;
	e->weight = p->scx.weight;
	e->vtime = p->scx.dsq_vtime;
	e->last_run_ns = tctx->last_run_ns;
	e->run_since_sleep_ns = tctx->run_since_sleep_ns;
	e->nvcsw = p->nvcsw;
	e->sum_exec_runtime = p->se.sum_exec_runtime;
	e->generation = tctx->generation;
	__builtin_memcpy(e->comm, p->comm, sizeof(e->comm));
	__sync_fetch_and_add(&nr_enqueued, 1);
	bpf_ringbuf_submit(e, 0);
	trace_task(SK_TR_ENQUEUED, p, scx_bpf_task_cpu(p), 0, 0, 0);
	/*
	 * Parked where the dispatcher can find it if user space is late. In FIFO order, so
	 * the head is the task that has waited longest (not moved to the head for any
	 * reason the kernel gives).
	 */
	tctx->parked_at = bpf_ktime_get_ns();
	scx_bpf_dsq_insert(p, PARK_DSQ, default_slice_ns,
			   enq_flags & ~(u64)(SCX_ENQ_HEAD | SCX_ENQ_PREEMPT));
}

/* Kick `cpu` to preempt the task running there (one kick per running task). */
static void kick_preempt(s32 cpu, bool keep)
{
	u32 i = cpu;

	asm volatile("" : "+r"(i));
	running_vtime[i & (MAX_CPUS - 1)] = 0;
	preempt_pending[i & (MAX_CPUS - 1)] = keep;
	scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	__sync_fetch_and_add(&nr_preemptions, 1);
}

/*
 * No CPU is idle for a decision that may preempt: kick the allowed CPU whose running
 * task has the largest vtime, if that is larger than `vtime` (the decision's plus its
 * margin). Racy (the task
 * may stop meanwhile): at worst a CPU reschedules for nothing.
 */
static void preempt_for(const struct task_struct *p, u64 vtime, bool keep)
{
	u32 n = min_cpus(scx_bpf_nr_cpu_ids());
	s32 victim = -1, cpu;
	u64 latest = vtime;

	bpf_for(cpu, 0, n) {
		u64 v;

		if (cpu >= MAX_CPUS) /* for the verifier: bpf_for bounds are not known */
			break;
		asm volatile("" : "+r"(cpu));
		v = running_vtime[cpu & (MAX_CPUS - 1)];
		if (v > latest && bpf_cpumask_test_cpu(cpu, p->cpus_ptr)) {
			latest = v;
			victim = cpu;
		}
	}
	if (victim >= 0)
		kick_preempt(victim, keep);
}

/*
 * The CPU a preempting decision for `p` should take, if it is `p`'s previous CPU: not
 * the CPU applying the decision (that one is already between tasks), usable by `p`,
 * and running a task later than `vtime` (the decision's plus its margin). Else -1.
 */
static s32 prev_cpu_to_preempt(const struct task_struct *p, u64 vtime)
{
	s32 prev = scx_bpf_task_cpu(p);
	u32 i = prev;

	asm volatile("" : "+r"(i));
	if (prev == bpf_get_smp_processor_id() || prev < 0 || prev >= MAX_CPUS ||
	    running_vtime[i & (MAX_CPUS - 1)] <= vtime)
		return -1;
	return cpu_usable(prev, p) ? prev : -1;
}

/* Decisions taken from the ring in one ops.dispatch at most; the rest wait. */
#define DECISIONS_PER_DISPATCH	256

/* Whether a decision may send its task to `cpu`'s own queue. */
static bool cpu_usable(s32 cpu, const struct task_struct *p)
{
	return cpu >= 0 && cpu < min_cpus(scx_bpf_nr_cpu_ids()) &&
	       bpf_cpumask_test_cpu(cpu, p->cpus_ptr) && is_online(cpu);
}

static u64 clamp_slice(u64 slice_ns)
{
	if (slice_ns < SLICE_MIN_NS)
		return SLICE_MIN_NS;
	return slice_ns > SLICE_MAX_NS ? SLICE_MAX_NS : slice_ns;
}

/*
 * Moves a task with a current decision to the queue it names. It is parked, or in the
 * fallback queue if degraded mode took it over and has not run it yet. It may not be
 * parked yet: the decision can come back before the enqueue that sent the task has
 * finished; the move then waits for that CPU's run-queue lock, and the task is
 * queued once it gets it, but after the first iterator was created, so the second try
 * finds it.
 */
static bool move_decided(struct task_struct *p, u64 dsq, u64 slice, u64 vtime)
{
	return move_task(p, PARK_DSQ, dsq, slice, vtime) ||
	       move_task(p, FALLBACK_DSQ, dsq, slice, vtime) ||
	       move_task(p, PARK_DSQ, dsq, slice, vtime);
}

/*
 * One decision from user space. A decision for a CPU that is offline or that the
 * task may not use goes to the shared queue (bounced): a per-CPU queue of an offline
 * CPU is served by nobody. Whenever the decision does not end up on the CPU it names,
 * that CPU's claim is released.
 */
static void apply_decision(const struct schedkit_decision *d)
{
	struct task_struct *p;
	struct task_ctx *tctx;
	u64 dsq = SHARED_DSQ;
	s32 idle = -1, victim = -1;

	p = bpf_task_from_pid(d->pid);
	if (!p) {
		release_claim(d->cpu); /* exited meanwhile */
		return;
	}
	tctx = lookup_task_ctx(p);
	if (!tctx || tctx->generation != d->generation || tctx->rescued) {
		__sync_fetch_and_add(&nr_cancel_dispatches, 1);
		release_claim(d->cpu);
		goto out;
	}
	if (d->cpu >= 0) {
		if (cpu_usable(d->cpu, p)) {
			dsq = PCPU_DSQ_BASE + d->cpu;
		} else {
			__sync_fetch_and_add(&nr_bounce_dispatches, 1);
			release_claim(d->cpu);
		}
	}
	/*
	 * For any CPU: an idle one is claimed and kicked to take it from the shared
	 * queue. With none, a decision that may preempt goes to its previous CPU's own
	 * queue, and preempts there, when that CPU runs a later task: the task stays
	 * where it ran (no migration, and the CPU applying the decision does not take it
	 * first, which it would from the shared queue). Measured in the VM (2026-11-29,
	 * 8 rounds in one boot, against sending it to the shared queue and preempting
	 * the latest task anywhere): the scheduler's CPU time per pingpong run 0.79x
	 * (lower in 8 of 8) and per desktop-mix run 0.93x (8 of 8).
	 */
	if (dsq == SHARED_DSQ) {
		idle = pick_idle_online_cpu(p->cpus_ptr);
		if (idle < 0 && (d->flags & SCHEDKIT_DEC_PREEMPT)) {
			victim = prev_cpu_to_preempt(p, sat_add(d->vtime, d->preempt_margin_ns));
			if (victim >= 0)
				dsq = PCPU_DSQ_BASE + victim;
		}
	}
	if (!move_decided(p, dsq, clamp_slice(d->slice_ns), d->vtime)) {
		/* The dispatcher ran it meanwhile (degraded mode): as good as stale. */
		__sync_fetch_and_add(&nr_cancel_dispatches, 1);
		release_claim(d->cpu);
		release_claim(idle);
		goto out;
	}
	tctx->in_fallback = false;
	tctx->decided = true;
	if (d->standing_budget_ns && d->standing_ttl_ns) {
		tctx->st_vtime = d->vtime;
		tctx->st_used = 0;
		tctx->st_budget = d->standing_budget_ns;
		tctx->st_slice = clamp_slice(d->slice_ns);
		tctx->st_flags = d->flags;
		tctx->st_margin = d->preempt_margin_ns;
		tctx->st_until = bpf_ktime_get_ns() + d->standing_ttl_ns;
		if (tctx->st_until < d->standing_ttl_ns)
			tctx->st_until = (u64)-1;
	} else {
		tctx->st_until = 0;
	}
	if (d->vtime > max_vtime)
		max_vtime = d->vtime;
	__sync_fetch_and_add(&nr_user_dispatches, 1);
	trace_task(SK_TR_DECISION, p,
		   dsq == SHARED_DSQ ? -1 : (s32)(dsq - PCPU_DSQ_BASE), clamp_slice(d->slice_ns),
		   d->vtime, (d->flags & SCHEDKIT_DEC_PREEMPT) ? SK_TRF_PREEMPT : 0);
	if (victim >= 0)
		kick_preempt(victim, false);
	else if (idle >= 0)
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	else if (dsq == SHARED_DSQ && (d->flags & SCHEDKIT_DEC_PREEMPT))
		preempt_for(p, sat_add(d->vtime, d->preempt_margin_ns), false);
	else if (dsq != SHARED_DSQ)
		scx_bpf_kick_cpu(d->cpu, SCX_KICK_IDLE);
out:
	bpf_task_release(p);
}

/*
 * bpf_user_ringbuf_drain consumes a record whatever its callback returns, so the limit
 * is checked after a decision is applied, never before (that would drop it).
 */
static long handle_decision(struct bpf_dynptr *dynptr, void *ctx)
{
	struct schedkit_decision d;
	u32 *taken = ctx;

	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0))
		return 0;
	apply_decision(&d);
	return ++*taken >= DECISIONS_PER_DISPATCH;
}

SEC("struct_ops/schedkit_dispatch")
void BPF_PROG(schedkit_dispatch, s32 cpu, struct task_struct *prev)
{
	u32 taken = 0;

	bpf_user_ringbuf_drain(&dispatched, handle_decision, &taken, 0);

	/* The scheduler first: every other task may be waiting for its decisions. */
	if (scx_bpf_dsq_move_to_local(SCHED_DSQ))
		return;
	if (scx_bpf_dsq_move_to_local(PCPU_DSQ_BASE + cpu))
		return;
	/*
	 * In degraded mode the shared queue only holds decisions taken before it, so it
	 * empties first; once the scheduler is back, the fallback queue only holds what it
	 * left, so that one empties first. Neither starves the other.
	 */
	if (is_degraded()) {
		if (!scx_bpf_dsq_move_to_local(SHARED_DSQ))
			scx_bpf_dsq_move_to_local(FALLBACK_DSQ);
	} else if (!scx_bpf_dsq_move_to_local(FALLBACK_DSQ)) {
		scx_bpf_dsq_move_to_local(SHARED_DSQ);
	}
}

SEC("struct_ops/schedkit_runnable")
void BPF_PROG(schedkit_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (!tctx)
		return;
	/* Kept through a dequeue and re-enqueue: reset only when it runs. */
	if (!tctx->runnable_since)
		tctx->runnable_since = bpf_ktime_get_ns();
	if (enq_flags & SCX_ENQ_WAKEUP)
		tctx->run_since_sleep_ns = 0;
}

SEC("struct_ops/schedkit_running")
void BPF_PROG(schedkit_running, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	u64 now = bpf_ktime_get_ns();
	u64 vtime = (is_usersched(p) || bypasses_user(p) || (tctx && tctx->in_fallback)) ?
			    0 : p->scx.dsq_vtime;
	u32 cpu = scx_bpf_task_cpu(p);

	__sync_fetch_and_add(&nr_running, 1);
	preempt_pending[cpu & (MAX_CPUS - 1)] = false;
	if (tctx) {
		tctx->started_at = now;
		tctx->slice_at_start = p->scx.slice;
		tctx->runnable_since = 0;
		tctx->rescued = false;
		if (tctx->fallback_vtime > fallback_vtime_now)
			fallback_vtime_now = tctx->fallback_vtime;
	}
	/* Opaque to clang, so the mask that bounds the index for the verifier stays. */
	asm volatile("" : "+r"(cpu));
	running_vtime[cpu & (MAX_CPUS - 1)] = vtime;
	if (is_usersched(p)) {
		usersched_queued_at = 0;
		usersched_on_cpu = true;
		usersched_seen_at = now;
		leave_degraded(now);
	}
}

SEC("struct_ops/schedkit_stopping")
void BPF_PROG(schedkit_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	u32 cpu = scx_bpf_task_cpu(p);
	u64 now = bpf_ktime_get_ns();
	u64 ran;

	__sync_fetch_and_sub(&nr_running, 1);
	/* Nothing runs here for now: nothing to preempt for a decision. */
	asm volatile("" : "+r"(cpu));
	running_vtime[cpu & (MAX_CPUS - 1)] = 0;
	if (is_usersched(p)) {
		usersched_on_cpu = false;
		usersched_seen_at = now;
	}
	if (!tctx || !tctx->started_at)
		return;
	ran = now - tctx->started_at;
	tctx->started_at = 0;
	tctx->slice_left = tctx->slice_at_start > ran ? tctx->slice_at_start - ran : 0;
	tctx->last_run_ns = ran;
	tctx->run_since_sleep_ns += ran;
	tctx->fallback_vtime += weighted_ns(ran, p);
	if (tctx->st_until)
		tctx->st_used += ran;
}

/*
 * The scheduler has waited too long for a CPU: end the slice of the task running
 * here, so this CPU serves the scheduler's queue next. One CPU does it per wait (the
 * compare-and-swap), not every CPU that ticks.
 */
SEC("struct_ops/schedkit_tick")
void BPF_PROG(schedkit_tick, struct task_struct *p)
{
	u64 queued = usersched_queued_at;
	struct task_struct *sched;
	bool allowed;

	if (!queued || is_usersched(p) || bpf_ktime_get_ns() - queued < USERSCHED_WAIT_NS)
		return;
	/* Only a CPU the scheduler may run on (it may be pinned) can make room for it. */
	sched = bpf_task_from_pid(usersched_pid);
	if (!sched)
		return;
	allowed = bpf_cpumask_test_cpu(bpf_get_smp_processor_id(), sched->cpus_ptr);
	bpf_task_release(sched);
	if (!allowed)
		return;
	if (__sync_val_compare_and_swap(&usersched_queued_at, queued, 0) != queued)
		return;
	if (bpf_ksym_exists(scx_bpf_task_set_slice))
		scx_bpf_task_set_slice(p, 0);
	else
		p->scx.slice = 0;
	__sync_fetch_and_add(&nr_preemptions, 1);
}

SEC("struct_ops/schedkit_enable")
void BPF_PROG(schedkit_enable, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	/* A task entering sched_ext starts with a clean run history. */
	if (tctx) {
		tctx->started_at = 0;
		tctx->last_run_ns = 0;
		tctx->run_since_sleep_ns = 0;
		tctx->fallback_vtime = fallback_vtime_now;
		tctx->st_until = 0;
	}
}

SEC("struct_ops/schedkit_init_task")
s32 BPF_PROG(schedkit_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	if (!bpf_task_storage_get(&task_ctx_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -12; /* -ENOMEM */
	return 0;
}

SEC("struct_ops/schedkit_exit_task")
void BPF_PROG(schedkit_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	struct schedkit_queued_task *e;

	struct task_struct *owner;
	bool reused;

	if (is_usersched(p) || bypasses_user(p))
		return;
	/*
	 * A pid is freed before its task is, so by now the pid may name a new task. An
	 * exit record by pid would then drop the new task's state in the policy, and a
	 * task the policy holds would never be dispatched. Send none: the new task's own
	 * records take over the pid's state, and its exit will clear it.
	 */
	owner = bpf_task_from_pid(p->pid);
	if (owner) {
		reused = owner != p;
		bpf_task_release(owner);
		if (reused) {
			__sync_fetch_and_add(&nr_exit_pid_reused, 1);
			return;
		}
	}
	e = bpf_ringbuf_reserve(&queued, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&nr_exit_lost, 1);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = SCHEDKIT_EV_EXITED;
	e->pid = p->pid;
	__sync_fetch_and_add(&nr_enqueued, 1);
	bpf_ringbuf_submit(e, 0);
}

/*
 * The safety net, and the watch on user space: make sure some CPU looks at the queues,
 * so a task never sits in them unseen until the watchdog fires, and start degraded
 * mode when the scheduler is late. Often while tasks wait for user space, rarely when
 * nothing does. In degraded mode, also hand over tasks parked by an enqueue that
 * raced with the start of it.
 */
static int usersched_timer_fn(void *map, int *key, struct bpf_timer *timer)
{
	u64 now = bpf_ktime_get_ns();
	bool waiting = nr_waiting_in_user() || scx_bpf_dsq_nr_queued(PARK_DSQ);

	if (is_degraded())
		unpark_all();
	else if (waiting && usersched_late(now))
		enter_degraded(now);
	rescue_offline_queues();
	rescue_starved(now);
	if (waiting || scx_bpf_dsq_nr_queued(SCHED_DSQ) || scx_bpf_dsq_nr_queued(SHARED_DSQ) ||
	    scx_bpf_dsq_nr_queued(FALLBACK_DSQ))
		kick_online_cpus(SCX_KICK_IDLE);
	bpf_timer_start(timer, waiting || is_degraded() ? TIMER_BUSY_NS : TIMER_IDLE_NS, 0);
	return 0;
}

SEC("struct_ops.s/schedkit_init")
s32 BPF_PROG(schedkit_init)
{
	struct usersched_timer *t;
	u32 key = 0, n = min_cpus(scx_bpf_nr_cpu_ids());
	s32 err, cpu, dsq;

	/* The shared, scheduler, parked and fallback queues: ids 0 to 3. */
	bpf_for(dsq, SHARED_DSQ, FALLBACK_DSQ + 1) {
		err = scx_bpf_create_dsq(dsq, -1);
		if (err)
			return err;
	}
	usersched_seen_at = bpf_ktime_get_ns();
	bpf_for(cpu, 0, n) {
		err = scx_bpf_create_dsq(PCPU_DSQ_BASE + cpu, -1);
		if (err)
			return err;
	}

	t = bpf_map_lookup_elem(&timer_map, &key);
	if (!t)
		return -ENOENT;
	bpf_timer_init(&t->timer, &timer_map, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&t->timer, usersched_timer_fn);
	return bpf_timer_start(&t->timer, TIMER_IDLE_NS, 0);
}

SEC("struct_ops/schedkit_exit")
void BPF_PROG(schedkit_exit, struct scx_exit_info *ei)
{
	bpf_probe_read_kernel_str(uei.reason, sizeof(uei.reason), ei->reason);
	bpf_probe_read_kernel_str(uei.msg, sizeof(uei.msg), ei->msg);
	uei.exit_code = ei->exit_code;
	asm volatile("" ::: "memory"); /* kind last: user space polls it */
	uei.kind = ei->kind;
}

/*
 * Idle-CPU query for user space (BPF_PROG_TEST_RUN): the task's previous CPU if it is
 * idle and allowed, else any idle CPU it may use; claimed, so two queries do not
 * return the same CPU. Returns the CPU, or a negative value if none is idle.
 */
SEC("syscall")
int pick_idle_cpu(struct schedkit_idle_query *q)
{
	struct task_struct *p = bpf_task_from_pid(q->pid);
	s32 cpu = q->prev_cpu;

	if (!p)
		return -ESRCH;
	/* A syscall program is sleepable: cpus_ptr may only be read under RCU. */
	bpf_rcu_read_lock();
	if (!(cpu >= 0 && cpu < MAX_CPUS && bpf_cpumask_test_cpu(cpu, p->cpus_ptr) &&
	      is_online(cpu) && scx_bpf_test_and_clear_cpu_idle(cpu)))
		cpu = pick_idle_online_cpu(p->cpus_ptr);
	bpf_rcu_read_unlock();
	bpf_task_release(p);
	return cpu;
}

SEC(".struct_ops.link")
struct sched_ext_ops schedkit_ops = {
	.select_cpu	= (void *)schedkit_select_cpu,
	.enqueue	= (void *)schedkit_enqueue,
	.dispatch	= (void *)schedkit_dispatch,
	.runnable	= (void *)schedkit_runnable,
	.running	= (void *)schedkit_running,
	.stopping	= (void *)schedkit_stopping,
	.tick		= (void *)schedkit_tick,
	.enable		= (void *)schedkit_enable,
	.init_task	= (void *)schedkit_init_task,
	.exit_task	= (void *)schedkit_exit_task,
	.init		= (void *)schedkit_init,
	.exit		= (void *)schedkit_exit,
	.dispatch_max_batch = 256,
	.timeout_ms	= 10000,
	.name		= "schedkit",
};
