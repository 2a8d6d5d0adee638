/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What `schedkit trace` records: one fixed-size record per scheduling event, from the
 * tracer's programs on the scheduler tracepoints (trace.bpf.c) and, while a trace
 * records, from the dispatcher (schedkit.bpf.c) for the policy's own decisions.
 */
#ifndef __SCHEDKIT_TRACE_INTF_H
#define __SCHEDKIT_TRACE_INTF_H

enum sk_trace_kind {
	/* From the tracepoints. */
	SK_TR_SWITCH = 0,	/* pid = prev, pid2 = next; arg = prev still runnable */
	SK_TR_WAKEUP = 1,	/* pid = wakee on `cpu`, pid2 = waker (current) */
	SK_TR_WAKEUP_NEW = 2,	/* same, for a new task */
	SK_TR_MIGRATE = 3,	/* pid moves from arg to cpu */
	SK_TR_FORK = 4,		/* pid = child, pid2 = parent */
	SK_TR_EXIT = 5,		/* pid exits */
	/* From the dispatcher. */
	SK_TR_ENQUEUED = 16,	/* pid handed to user space, runnable on cpu */
	SK_TR_DECISION = 17,	/* pid: target arg (-1 any), a = slice, b = vtime */
	SK_TR_COUNTERS = 18,	/* a = queued, b = held, c = refused, arg = in queues */
};

enum sk_trace_flags {
	SK_TRF_PREEMPT = 1,	/* the decision may preempt */
	SK_TRF_KERNEL = 2,	/* the dispatcher decided alone */
	SK_TRF_STANDING = 4,	/* applied from the policy's standing instruction */
};

struct sk_trace_rec {
	u64 ts;			/* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	u32 kind;		/* enum sk_trace_kind */
	u32 cpu;		/* the CPU it happened on, or the target CPU */
	s32 pid;
	s32 tgid;
	s32 pid2;
	s32 tgid2;
	s32 arg;
	u32 flags;		/* enum sk_trace_flags */
	u64 a;
	u64 b;
	u64 c;
	char comm[16];		/* pid's */
	char comm2[16];		/* pid2's */
};

/* Bits of sk_trace_ctl.on. */
enum sk_trace_on {
	SK_TRACE_ON = 1,	/* a trace is recording: send records to sk_trace_rb */
	SK_TRACE_TIMED = 2,	/* ... and count their CPU time (`schedkit trace --cost`) */
};

/*
 * The dispatcher's switch, set by a tracer: value of the one-entry sk_trace_ctl map.
 * Fields are only ever added at the end: a tracer reads what it knows of the value
 * and writes back the rest as it found it.
 */
struct sk_trace_ctl {
	u32 on;			/* enum sk_trace_on */
	s32 usersched_pid;	/* the scheduler's loop thread, written by the loader */
	u64 nr_lost;		/* records not written: the ring was full */
	u64 nr_timed;		/* records written while SK_TRACE_TIMED was set */
	u64 timed_ns;		/* ... and their CPU time, from reserving to submitting */
};

#endif /* __SCHEDKIT_TRACE_INTF_H */
