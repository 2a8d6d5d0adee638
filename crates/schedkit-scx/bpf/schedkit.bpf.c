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
 * Where it falls short: the shared queue is one lock for all CPUs, fine for the small
 * machines this is tested on, a bottleneck on large ones; CPU choice for "any CPU" is
 * whichever CPU frees up first, with no notion of cache or NUMA locality.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "intf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	0
#define SCHED_DSQ	1
#define PCPU_DSQ_BASE	0x10000
#define MAX_CPUS	1024
#define NSEC_PER_SEC	1000000000ULL
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
u32 scx_bpf_nr_cpu_ids(void) __ksym;
u32 scx_bpf_dispatch_nr_slots(void) __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;

/* Ejects the scheduler with a message carrying one integer. */
#define schedkit_error(fmt, arg)						\
	({								\
		static char ___fmt[] = fmt;				\
		unsigned long long ___arg[1] = { (arg) };		\
		scx_bpf_error_bstr(___fmt, ___arg, sizeof(___arg));	\
	})

/* Set by the loader before load. */
const volatile s32 usersched_tgid;
const volatile u64 default_slice_ns = 5000000;

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
u64 nr_exit_lost;	/* exit events dropped because the ring was full */
u64 max_vtime;		/* largest vtime seen in a decision */
u64 nr_preemptions;	/* slices cut short for an earlier decision or the scheduler */
/*
 * vtime of the task running on each CPU, or 0 for one that must not be preempted
 * for a user-space decision (the scheduler itself, kernel threads it bypasses).
 */
u64 running_vtime[MAX_CPUS];
/* Tasks in the shared and per-CPU queues, as of the last time the scheduler woke up. */
u64 nr_dsq_waiting;
/* When the scheduler was queued and has not run since, or 0. */
u64 usersched_queued_at;

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

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} queued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4 << 20);
} dispatched SEC(".maps");

struct task_ctx {
	u64 generation;
	u64 started_at;
	u64 last_run_ns;
	u64 run_since_sleep_ns;
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
	return p->tgid == usersched_tgid;
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

/*
 * Tasks dispatched but not yet running are still waiting, as far as a policy that
 * sizes slices by the number of waiting tasks is concerned. Counted when the
 * scheduler wakes up, which is when it will next read the figure: one pass over the
 * per-CPU queues, cheap on the machines this targets.
 */
static void count_dsq_waiting(void)
{
	u32 n = min_cpus(scx_bpf_nr_cpu_ids());
	u64 total = scx_bpf_dsq_nr_queued(SHARED_DSQ);
	s32 cpu;

	bpf_for(cpu, 0, n)
		total += scx_bpf_dsq_nr_queued(PCPU_DSQ_BASE + cpu);
	nr_dsq_waiting = total;
}

/* Wake a CPU that is idle so it runs ops.dispatch and finds the new work. */
static void kick_idle_cpu(const struct task_struct *p)
{
	s32 cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
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
	if (is_idle && (is_usersched(p) || bypasses_user(p) ||
			(!nr_waiting_in_user() && !scx_bpf_dsq_nr_queued(SHARED_DSQ)))) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, default_slice_ns, 0);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
	}
	return cpu;
}

SEC("struct_ops/schedkit_enqueue")
void BPF_PROG(schedkit_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct schedkit_queued_task *e;
	struct task_ctx *tctx;

	if (is_usersched(p)) {
		s32 cpu;

		count_dsq_waiting();
		scx_bpf_dsq_insert(p, SCHED_DSQ, default_slice_ns, enq_flags);
		/*
		 * An idle CPU runs it at once; otherwise the next CPU to free up does,
		 * or the tick (see USERSCHED_WAIT_NS).
		 */
		if (!usersched_queued_at)
			usersched_queued_at = bpf_ktime_get_ns();
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
		if (cpu >= 0)
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return;
	}
	if (bypasses_user(p)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | scx_bpf_task_cpu(p), default_slice_ns,
				   enq_flags);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		return;
	}

	tctx = lookup_task_ctx(p);
	if (!tctx) {
		schedkit_error("task %d has no schedkit context", p->pid);
		return;
	}
	tctx->generation++;

	e = bpf_ringbuf_reserve(&queued, sizeof(*e), 0);
	if (!e) {
		/* User space is behind: keep the task moving without it. */
		scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, default_slice_ns, max_vtime, enq_flags);
		__sync_fetch_and_add(&nr_sched_congested, 1);
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
}

/*
 * No CPU is idle for a decision that may preempt: kick the allowed CPU whose running
 * task has the largest vtime, if that is larger than `vtime` (the decision's plus its
 * margin). Racy (the task
 * may stop meanwhile): at worst a CPU reschedules for nothing.
 */
static void preempt_for(const struct task_struct *p, u64 vtime)
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
	if (victim >= 0) {
		u32 i = victim;

		asm volatile("" : "+r"(i));
		running_vtime[i & (MAX_CPUS - 1)] = 0; /* one kick per running task */
		scx_bpf_kick_cpu(victim, SCX_KICK_PREEMPT);
		__sync_fetch_and_add(&nr_preemptions, 1);
	}
}

/* One decision from user space, drained in ops.dispatch. */
static long handle_decision(struct bpf_dynptr *dynptr, void *ctx)
{
	struct schedkit_decision d;
	struct task_struct *p;
	struct task_ctx *tctx;
	u64 dsq = SHARED_DSQ;

	if (!scx_bpf_dispatch_nr_slots())
		return 1; /* the rest waits for the next ops.dispatch */
	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0))
		return 0;
	p = bpf_task_from_pid(d.pid);
	if (!p)
		return 0; /* exited meanwhile */
	tctx = lookup_task_ctx(p);
	if (!tctx || tctx->generation != d.generation) {
		__sync_fetch_and_add(&nr_cancel_dispatches, 1);
		goto out;
	}
	if (d.cpu >= 0) {
		if (d.cpu < MAX_CPUS && bpf_cpumask_test_cpu(d.cpu, p->cpus_ptr))
			dsq = PCPU_DSQ_BASE + d.cpu;
		else
			__sync_fetch_and_add(&nr_bounce_dispatches, 1);
	}
	if (d.vtime > max_vtime)
		max_vtime = d.vtime;
	scx_bpf_dsq_insert_vtime(p, dsq, d.slice_ns, d.vtime, 0);
	__sync_fetch_and_add(&nr_user_dispatches, 1);
	if (dsq == SHARED_DSQ) {
		s32 idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		if (idle >= 0)
			scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
		else if (d.flags & SCHEDKIT_DEC_PREEMPT)
			preempt_for(p, d.vtime + d.preempt_margin_ns < d.vtime ?
					       (u64)-1 : d.vtime + d.preempt_margin_ns);
	} else {
		scx_bpf_kick_cpu(d.cpu, SCX_KICK_IDLE);
	}
out:
	bpf_task_release(p);
	return 0;
}

SEC("struct_ops/schedkit_dispatch")
void BPF_PROG(schedkit_dispatch, s32 cpu, struct task_struct *prev)
{
	bpf_user_ringbuf_drain(&dispatched, handle_decision, NULL, 0);

	/* The scheduler first: every other task may be waiting for its decisions. */
	if (scx_bpf_dsq_move_to_local(SCHED_DSQ))
		return;
	if (scx_bpf_dsq_move_to_local(PCPU_DSQ_BASE + cpu))
		return;
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

SEC("struct_ops/schedkit_runnable")
void BPF_PROG(schedkit_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx;

	if (!(enq_flags & SCX_ENQ_WAKEUP))
		return;
	tctx = lookup_task_ctx(p);
	if (tctx)
		tctx->run_since_sleep_ns = 0;
}

SEC("struct_ops/schedkit_running")
void BPF_PROG(schedkit_running, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	u64 vtime = (is_usersched(p) || bypasses_user(p)) ? 0 : p->scx.dsq_vtime;
	u32 cpu = scx_bpf_task_cpu(p);

	__sync_fetch_and_add(&nr_running, 1);
	if (tctx)
		tctx->started_at = bpf_ktime_get_ns();
	/* Opaque to clang, so the mask that bounds the index for the verifier stays. */
	asm volatile("" : "+r"(cpu));
	running_vtime[cpu & (MAX_CPUS - 1)] = vtime;
	if (is_usersched(p))
		usersched_queued_at = 0;
}

SEC("struct_ops/schedkit_stopping")
void BPF_PROG(schedkit_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	u64 ran;

	__sync_fetch_and_sub(&nr_running, 1);
	if (!tctx || !tctx->started_at)
		return;
	ran = bpf_ktime_get_ns() - tctx->started_at;
	tctx->started_at = 0;
	tctx->last_run_ns = ran;
	tctx->run_since_sleep_ns += ran;
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

	if (!queued || is_usersched(p) || bpf_ktime_get_ns() - queued < USERSCHED_WAIT_NS)
		return;
	if (__sync_val_compare_and_swap(&usersched_queued_at, queued, 0) != queued)
		return;
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

	if (is_usersched(p) || bypasses_user(p))
		return;
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
 * The safety net: once a second, make sure some CPU looks at the queues, so a task
 * can never sit in them unseen until the watchdog fires.
 */
static int usersched_timer_fn(void *map, int *key, struct bpf_timer *timer)
{
	u32 n = min_cpus(scx_bpf_nr_cpu_ids());
	s32 cpu;

	if (scx_bpf_dsq_nr_queued(SCHED_DSQ) || scx_bpf_dsq_nr_queued(SHARED_DSQ) ||
	    nr_waiting_in_user()) {
		bpf_for(cpu, 0, n)
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
	bpf_timer_start(timer, NSEC_PER_SEC, 0);
	return 0;
}

SEC("struct_ops.s/schedkit_init")
s32 BPF_PROG(schedkit_init)
{
	struct usersched_timer *t;
	u32 key = 0, n = min_cpus(scx_bpf_nr_cpu_ids());
	s32 err, cpu;

	err = scx_bpf_create_dsq(SHARED_DSQ, -1);
	if (err)
		return err;
	err = scx_bpf_create_dsq(SCHED_DSQ, -1);
	if (err)
		return err;
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
	return bpf_timer_start(&t->timer, NSEC_PER_SEC, 0);
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
	      scx_bpf_test_and_clear_cpu_idle(cpu)))
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
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
