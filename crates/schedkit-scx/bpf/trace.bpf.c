// SPDX-License-Identifier: GPL-2.0-only
/*
 * `schedkit trace`: one record per scheduling event, from the scheduler tracepoints,
 * into one ring buffer that user space drains on its own timer (no wake-up per
 * record). Works under any scheduler: EEVDF, schedkit, another sched_ext scheduler.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "trace_intf.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* Records not written because the ring was full; user space reports them. */
u64 nr_lost;

static struct sk_trace_rec *reserve(u32 kind)
{
	struct sk_trace_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		__sync_fetch_and_add(&nr_lost, 1);
		return NULL;
	}
	r->ts = bpf_ktime_get_ns();
	r->kind = kind;
	r->cpu = bpf_get_smp_processor_id();
	r->pid = r->tgid = r->pid2 = r->tgid2 = r->arg = 0;
	r->flags = 0;
	r->a = r->b = r->c = 0;
	return r;
}

static void submit(struct sk_trace_rec *r)
{
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

static void task_one(struct sk_trace_rec *r, struct task_struct *p)
{
	r->pid = p->pid;
	r->tgid = p->tgid;
	__builtin_memcpy(r->comm, p->comm, sizeof(r->comm));
}

static void task_two(struct sk_trace_rec *r, struct task_struct *p)
{
	r->pid2 = p->pid;
	r->tgid2 = p->tgid;
	__builtin_memcpy(r->comm2, p->comm, sizeof(r->comm2));
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sk_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct sk_trace_rec *r = reserve(SK_TR_SWITCH);

	if (!r)
		return 0;
	task_one(r, prev);
	task_two(r, next);
	/* TASK_RUNNING is 0: a task switched out in that state was preempted. */
	r->arg = preempt || prev_state == 0;
	submit(r);
	return 0;
}

static int wakeup(struct task_struct *p, u32 kind)
{
	struct sk_trace_rec *r = reserve(kind);
	struct task_struct *cur;

	if (!r)
		return 0;
	task_one(r, p);
	r->cpu = p->thread_info.cpu;
	cur = bpf_get_current_task_btf();
	task_two(r, cur);
	r->arg = bpf_get_smp_processor_id();
	submit(r);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sk_sched_wakeup, struct task_struct *p)
{
	return wakeup(p, SK_TR_WAKEUP);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sk_sched_wakeup_new, struct task_struct *p)
{
	return wakeup(p, SK_TR_WAKEUP_NEW);
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sk_sched_migrate_task, struct task_struct *p, int dest_cpu)
{
	struct sk_trace_rec *r = reserve(SK_TR_MIGRATE);

	if (!r)
		return 0;
	task_one(r, p);
	r->arg = p->thread_info.cpu;
	r->cpu = dest_cpu;
	submit(r);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sk_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	struct sk_trace_rec *r = reserve(SK_TR_FORK);

	if (!r)
		return 0;
	task_one(r, child);
	task_two(r, parent);
	submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sk_sched_process_exit, struct task_struct *p)
{
	struct sk_trace_rec *r = reserve(SK_TR_EXIT);

	if (!r)
		return 0;
	task_one(r, p);
	submit(r);
	return 0;
}
