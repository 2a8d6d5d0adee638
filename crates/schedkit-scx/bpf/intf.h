/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What crosses between the BPF dispatcher and the schedkit process. Shared by the
 * BPF program and (through the generated skeleton types) by the Rust loader.
 */
#ifndef __SCHEDKIT_INTF_H
#define __SCHEDKIT_INTF_H

/* Kernel to user, one record per event in the "queued" ring buffer. */
enum schedkit_event_kind {
	SCHEDKIT_EV_QUEUED = 0,	/* a task became runnable and waits for a decision */
	SCHEDKIT_EV_EXITED = 1,	/* a task left sched_ext: drop its state */
};

struct schedkit_queued_task {
	u32 kind;		/* enum schedkit_event_kind */
	s32 pid;
	s32 prev_cpu;
	u32 nr_cpus_allowed;
	u64 flags;		/* enqueue flags */
	u64 weight;		/* 1..10000, 100 = nice 0 */
	u64 vtime;		/* p->scx.dsq_vtime */
	u64 last_run_ns;	/* run time of the last run */
	u64 run_since_sleep_ns;	/* run time since the last voluntary sleep */
	u64 nvcsw;		/* total voluntary context switches */
	u64 sum_exec_runtime;	/* total CPU time, ns */
	u64 generation;		/* bumped on every enqueue */
	char comm[16];
};

/* User to kernel, one record per decision in the "dispatched" user ring buffer. */
enum schedkit_decision_flags {
	SCHEDKIT_DEC_PREEMPT = 1,	/* may preempt a running task with a larger vtime */
};

struct schedkit_decision {
	s32 pid;
	s32 cpu;		/* a CPU, or -1 for any CPU */
	u64 slice_ns;
	u64 vtime;
	u64 generation;
	u64 flags;		/* enum schedkit_decision_flags */
	u64 preempt_margin_ns;	/* with SCHEDKIT_DEC_PREEMPT: preempt only a task whose
				 * vtime is later than this one's by more than this */
	/*
	 * A standing instruction, if both are non-zero: the task's later wake-ups are
	 * dispatched by the kernel side with this decision's slice, preemption and vtime
	 * (advanced by the CPU time used since, scaled by weight), without a trip to
	 * user space, until the task has used standing_budget_ns of CPU time or
	 * standing_ttl_ns have passed. Any decision replaces it.
	 */
	u64 standing_budget_ns;
	u64 standing_ttl_ns;
};

/* Argument of the pick_idle_cpu syscall program. */
struct schedkit_idle_query {
	s32 pid;
	s32 prev_cpu;
};

#endif /* __SCHEDKIT_INTF_H */
