//! The values that cross between a policy, the runtime and a backend.

use serde::{Deserialize, Serialize};

/// A task's id (the kernel's `pid`, which is a thread id).
pub type Pid = i32;

/// A CPU number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cpu(pub u32);

/// Where a decision sends a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CpuTarget {
    /// The first CPU that becomes free among those the task may use.
    Any,
    /// This CPU (if the task may no longer run there, the backend sends it anywhere).
    On(Cpu),
}

/// Enqueue flag: the task is runnable because it woke up (as opposed to preempted or
/// its slice expired). Same value as the kernel's `SCX_ENQ_WAKEUP`.
pub const ENQ_WAKEUP: u64 = 1;

/// A task that became runnable, as the backend reports it. All times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedTask {
    pub pid: Pid,
    /// Thread name, NUL-padded, as in the kernel.
    pub comm: [u8; 16],
    /// CPU it last ran on.
    pub prev_cpu: Cpu,
    /// How many CPUs its affinity allows.
    pub nr_cpus_allowed: u32,
    /// Enqueue flags (see [`ENQ_WAKEUP`]).
    pub flags: u64,
    /// Scheduling weight, 1..=10000; 100 is nice 0.
    pub weight: u32,
    /// The task's virtual time as the kernel side last set it.
    pub vtime: u64,
    /// Run time of its last run (from being picked to being switched out).
    pub last_run_ns: u64,
    /// Run time since it last went to sleep voluntarily.
    pub run_since_sleep_ns: u64,
    /// Total voluntary context switches (`nvcsw`).
    pub nvcsw: u64,
    /// Total CPU time (`se.sum_exec_runtime`).
    pub sum_exec_runtime_ns: u64,
    /// Bumped on every enqueue; a decision must echo it, or it is stale.
    pub generation: u64,
}

impl QueuedTask {
    /// A nice-0 task with the given pid and generation, other fields zero: for tests and
    /// simulators, which then set what they need.
    pub fn new(pid: Pid, generation: u64) -> Self {
        QueuedTask {
            pid,
            comm: [0; 16],
            prev_cpu: Cpu(0),
            nr_cpus_allowed: u32::MAX,
            flags: 0,
            weight: 100,
            vtime: 0,
            last_run_ns: 0,
            run_since_sleep_ns: 0,
            nvcsw: 0,
            sum_exec_runtime_ns: 0,
            generation,
        }
    }

    /// The thread name as text.
    pub fn comm_str(&self) -> &str {
        let end = self.comm.iter().position(|&b| b == 0).unwrap_or(16);
        std::str::from_utf8(&self.comm[..end]).unwrap_or("?")
    }

    /// Whether it became runnable by waking up.
    pub fn is_wakeup(&self) -> bool {
        self.flags & ENQ_WAKEUP != 0
    }
}

/// What a backend reports to the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent {
    Queued(QueuedTask),
    Exited(Pid),
}

/// A policy's answer for one task: run it there, for that long, in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub pid: Pid,
    /// Copied from the [`QueuedTask`]; the backend drops the decision if the task was
    /// re-queued since.
    pub generation: u64,
    pub target: CpuTarget,
    pub slice_ns: u64,
    /// Ordering key on the kernel side: lower runs first among tasks waiting for the
    /// same CPUs.
    pub vtime: u64,
    /// When no allowed CPU is idle: `Some(margin_ns)` preempts the running task with the
    /// largest vtime if that vtime is later than this decision's by more than
    /// `margin_ns`, so ordering by vtime extends to tasks already running (how a waking
    /// interactive task gets a CPU at once); `None` waits for a CPU to free up. The
    /// margin keeps near-equals from taking turns preempting each other, which costs
    /// two switches and a round trip through the scheduler each time.
    pub preempt_margin_ns: Option<u64>,
    /// A standing instruction for the task's later wake-ups (see [`Standing`]), or
    /// `None`. Any later decision for the task replaces it.
    pub standing: Option<Standing>,
}

/// A standing instruction: the task's next wake-ups are dispatched by the backend
/// itself, without a trip through the policy, as this decision says: the same slice
/// and preemption margin, to an idle CPU if there is one (its previous CPU first), else
/// to the shared queue by vtime. The vtime is the decision's, advanced as a vruntime by
/// the CPU time the task uses from then on (`used × 100 / weight`). It lapses once the
/// task has used `cpu_budget_ns` of CPU time or `ttl_ns` have passed, whichever comes
/// first; the next enqueue then comes to the policy, with the run time it used in the
/// meantime, and the policy may issue a new one. Enqueues that are not wake-ups (a
/// slice that ran out, an affinity change) always come to the policy.
///
/// This is how a task that wakes thousands of times a second (a ping-pong pair, a
/// pipe) skips the round trip through user space while the policy still decides its
/// place. Backends that cannot apply one ignore it: every enqueue then comes to the
/// policy, which is always correct, only slower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub cpu_budget_ns: u64,
    pub ttl_ns: u64,
}

impl Decision {
    /// A decision for `task`: run it on whichever CPU frees up first, for `slice_ns`,
    /// with vtime 0 and no preemption. The task's pid and generation are copied here,
    /// so a policy never handles the generation itself; the other fields are set with
    /// the builder methods below.
    ///
    /// ```
    /// use schedkit_core::{Cpu, CpuTarget, Decision, QueuedTask};
    ///
    /// let task = QueuedTask::new(42, 7);
    /// let d = Decision::new(&task, 5_000_000)
    ///     .on_cpu(Cpu(1))
    ///     .vtime(1_000)
    ///     .preempt_if_later_by(500_000);
    /// assert_eq!((d.pid, d.generation), (42, 7));
    /// assert_eq!(d.target, CpuTarget::On(Cpu(1)));
    /// assert_eq!(d.preempt_margin_ns, Some(500_000));
    /// ```
    pub fn new(task: &QueuedTask, slice_ns: u64) -> Self {
        Decision {
            pid: task.pid,
            generation: task.generation,
            target: CpuTarget::Any,
            slice_ns,
            vtime: 0,
            preempt_margin_ns: None,
            standing: None,
        }
    }

    /// Run `task` on whichever CPU frees up first, for `slice_ns`, in arrival order
    /// (the same as [`Decision::new`]).
    pub fn any_cpu(task: &QueuedTask, slice_ns: u64) -> Self {
        Decision::new(task, slice_ns)
    }

    /// Sends the task to `target`.
    pub fn target(mut self, target: CpuTarget) -> Self {
        self.target = target;
        self
    }

    /// Sends the task to `cpu`.
    pub fn on_cpu(self, cpu: Cpu) -> Self {
        self.target(CpuTarget::On(cpu))
    }

    /// Sends the task to `cpu` if there is one (typically the answer of
    /// `Context::select_idle_cpu`), to any CPU otherwise.
    pub fn on_cpu_or_any(self, cpu: Option<Cpu>) -> Self {
        self.target(cpu.map_or(CpuTarget::Any, CpuTarget::On))
    }

    /// Orders the task by `vtime` among those waiting for the same CPUs (lower first).
    pub fn vtime(mut self, vtime: u64) -> Self {
        self.vtime = vtime;
        self
    }

    /// When no allowed CPU is idle, preempts the running task with the latest vtime if
    /// that vtime is later than this decision's by more than `margin_ns` (see
    /// [`Decision::preempt_margin_ns`]).
    pub fn preempt_if_later_by(mut self, margin_ns: u64) -> Self {
        self.preempt_margin_ns = Some(margin_ns);
        self
    }

    /// Sets or clears the preemption margin at once (`None`: never preempt).
    pub fn preempt_margin(mut self, margin_ns: Option<u64>) -> Self {
        self.preempt_margin_ns = margin_ns;
        self
    }

    /// Also leaves a standing instruction for the task's next wake-ups (see
    /// [`Standing`]): they skip the policy until the task has used `cpu_budget_ns` of
    /// CPU time or `ttl_ns` have passed. A zero budget or time-to-live leaves none.
    ///
    /// ```
    /// use schedkit_core::{Decision, QueuedTask, Standing};
    ///
    /// let d = Decision::new(&QueuedTask::new(42, 7), 5_000_000).standing(2_000_000, 50_000_000);
    /// assert_eq!(d.standing, Some(Standing { cpu_budget_ns: 2_000_000, ttl_ns: 50_000_000 }));
    /// assert_eq!(Decision::new(&QueuedTask::new(42, 7), 1).standing(0, 1).standing, None);
    /// ```
    pub fn standing(mut self, cpu_budget_ns: u64, ttl_ns: u64) -> Self {
        self.standing = (cpu_budget_ns > 0 && ttl_ns > 0).then_some(Standing {
            cpu_budget_ns,
            ttl_ns,
        });
        self
    }
}

/// Why a backend stopped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The kernel's `scx_exit_kind` (see [`ExitInfo::kind_name`]).
    pub kind: u32,
    /// The exit code; bit 48 asks for a restart, bit 32 says the reason was hotplug.
    pub exit_code: i64,
    pub reason: String,
    pub message: String,
}

impl ExitInfo {
    pub const KIND_NONE: u32 = 0;
    pub const KIND_DONE: u32 = 1;
    pub const KIND_UNREG: u32 = 64;
    pub const KIND_UNREG_BPF: u32 = 65;
    pub const KIND_UNREG_KERN: u32 = 66;
    pub const KIND_SYSRQ: u32 = 67;
    pub const KIND_ERROR: u32 = 1024;
    pub const KIND_ERROR_BPF: u32 = 1025;
    pub const KIND_ERROR_STALL: u32 = 1026;
    const ACT_RESTART: i64 = 1 << 48;

    /// The kind as the kernel names it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Self::KIND_NONE => "none",
            Self::KIND_DONE => "done",
            Self::KIND_UNREG => "unregistered from user space",
            Self::KIND_UNREG_BPF => "unregistered from BPF",
            Self::KIND_UNREG_KERN => "unregistered by the kernel",
            Self::KIND_SYSRQ => "disabled by sysrq-S",
            68 => "parent scheduler exited",
            Self::KIND_ERROR => "runtime error",
            Self::KIND_ERROR_BPF => "error raised by BPF",
            Self::KIND_ERROR_STALL => "runnable task stall",
            _ => "unknown",
        }
    }

    /// The kernel asks for the scheduler to be attached again (e.g. after CPU hotplug).
    pub fn should_restart(&self) -> bool {
        self.exit_code & Self::ACT_RESTART != 0
    }

    /// A normal end: detached on request, or a finished simulation.
    pub fn is_clean(&self) -> bool {
        matches!(
            self.kind,
            Self::KIND_NONE | Self::KIND_DONE | Self::KIND_UNREG
        )
    }

    /// An error exit (kind >= 1024).
    pub fn is_error(&self) -> bool {
        self.kind >= Self::KIND_ERROR
    }

    /// The task the watchdog found stalled, as the kernel names it in the message
    /// (`"comm[pid] failed to run for 10.004s"`): its name and pid.
    pub fn stalled_task(&self) -> Option<(&str, i32)> {
        if self.kind != Self::KIND_ERROR_STALL {
            return None;
        }
        let (task, _) = self.message.split_once(" failed to run for ")?;
        let (comm, pid) = task.strip_suffix(']')?.rsplit_once('[')?;
        Some((comm, pid.parse().ok()?))
    }

    /// One sentence for the user: what happened, why, and what to do.
    ///
    /// ```
    /// use schedkit_core::ExitInfo;
    /// let stall = ExitInfo {
    ///     kind: ExitInfo::KIND_ERROR_STALL,
    ///     exit_code: 0,
    ///     reason: "runnable task stall".into(),
    ///     message: "stress-ng[412] failed to run for 10.004s".into(),
    /// };
    /// assert!(stall.describe().contains("stress-ng (pid 412)"));
    /// ```
    pub fn describe(&self) -> String {
        // The kernel's reason mostly repeats the kind's name: said once.
        let reason = match self.reason.as_str() {
            r if r == self.kind_name() => "",
            r => r,
        };
        let detail = match (reason, self.message.as_str()) {
            ("", "") => String::new(),
            (r, "") | ("", r) => format!(" ({r})"),
            (r, m) => format!(" ({r}: {m})"),
        };
        if self.should_restart() {
            return format!(
                "the kernel detached the scheduler and asks for a restart{detail}: CPUs were \
                 hot-plugged; attach again (schedkit run does it by itself)"
            );
        }
        let kind = self.kind_name();
        match self.kind {
            Self::KIND_NONE | Self::KIND_DONE | Self::KIND_UNREG => {
                format!("the scheduler was detached ({kind})")
            }
            Self::KIND_ERROR_STALL => {
                let task = match self.stalled_task() {
                    Some((comm, pid)) => format!("{comm} (pid {pid})"),
                    None => "a task".into(),
                };
                format!(
                    "the kernel ejected the scheduler: {kind}{detail}: {task} waited longer \
                     than the watchdog allows without running; make sure the policy \
                     dispatches every task it is given, then run the scheduler again (the \
                     machine is back on its default scheduler)"
                )
            }
            Self::KIND_ERROR_BPF => format!(
                "the kernel ejected the scheduler: {kind}{detail}: the dispatcher found \
                 something it cannot handle; report this message as a schedkit bug (the \
                 machine is back on its default scheduler)"
            ),
            Self::KIND_ERROR => format!(
                "the kernel ejected the scheduler: {kind}{detail}: the dispatcher asked for \
                 something the kernel refuses; report this message as a schedkit bug (the \
                 machine is back on its default scheduler)"
            ),
            Self::KIND_UNREG_BPF => format!(
                "the dispatcher detached itself{detail}{}: run the scheduler again to resume",
                if self.exit_code != 0 {
                    format!(", exit code {}", self.exit_code)
                } else {
                    String::new()
                }
            ),
            Self::KIND_UNREG_KERN | Self::KIND_SYSRQ | 68 => format!(
                "the kernel took the machine back from the scheduler: {kind}{detail}; run \
                 the scheduler again to resume"
            ),
            _ => format!(
                "the kernel ejected the scheduler: {kind} (kind {}){detail}; run the \
                 scheduler again to resume",
                self.kind
            ),
        }
    }
}

/// Live counters of a backend, cumulative since attach, except the `nr_*` gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Tasks running on a CPU now.
    pub nr_running: u64,
    /// Tasks queued towards the policy, not yet drained.
    pub nr_queued: u64,
    /// Tasks the policy holds.
    pub nr_held: u64,
    /// Tasks dispatched by decisions of the policy.
    pub user_dispatches: u64,
    /// Tasks dispatched by the kernel side without asking user space.
    pub kernel_dispatches: u64,
    /// Decisions dropped because the task was re-queued meanwhile.
    pub cancelled: u64,
    /// Decisions for a CPU the task may not use, sent anywhere instead.
    pub bounced: u64,
    /// Tasks sent to the shared queue because the ring to user space was full.
    pub congestion: u64,
    /// Times the backend refused a decision because its ring to the kernel was full;
    /// the runtime keeps the decision and sends it again next step. Counted by the
    /// runtime, whatever the backend.
    pub failed: u64,
    /// Exit events the kernel side could not report (ring full): per-task state a
    /// policy keeps for those tasks is never dropped. Should stay 0.
    #[serde(default)]
    pub exit_lost: u64,
    /// Exit events not sent because the task's pid already named a new task: by
    /// pid, they would have dropped the new task's state in the policy.
    #[serde(default)]
    pub exit_pid_reused: u64,
    /// Tasks the dispatcher ran itself because their decision never came (waited
    /// over 2 s while the scheduler ran) or went to the queue of a CPU that went
    /// offline. Should stay 0.
    #[serde(default)]
    pub rescued: u64,
    /// Idle-CPU queries that failed on the backend's side (the task was sent to any
    /// CPU instead). Should stay 0.
    #[serde(default)]
    pub idle_query_errors: u64,
    /// Running tasks preempted to let a decision with an earlier vtime run, or the
    /// user-space scheduler when it waited too long for a CPU.
    pub preemptions: u64,
    /// Wake-ups the backend dispatched from a policy's standing instruction, without
    /// a trip through the policy.
    #[serde(default)]
    pub standing_dispatches: u64,
    /// Tasks preempted for a wake-up placed by a standing instruction, before their
    /// slice ran out, that the backend put back in their place (their vtime advanced
    /// by the run they had, the rest of their slice) without a trip through the policy.
    #[serde(default)]
    pub preempted_kept: u64,
    /// Tasks the kernel handed back to the backend because a higher scheduling class
    /// (real-time, deadline) took the CPU they ran on: placed again where another CPU
    /// runs them, without a trip through the policy when it had placed them.
    #[serde(default)]
    pub handed_back: u64,
    /// The scheduler's CPU time per task it handles, moving average, ns (filled in by
    /// the runtime; see `Runtime::trip_cost_ns`).
    #[serde(default)]
    pub trip_cost_ns: u64,
    /// Time the backend scheduled tasks by itself because the scheduler did not answer
    /// (stopped, or unable to run), cumulative, ns.
    #[serde(default)]
    pub degraded_ns: u64,
}

/// How many named figures a policy can report in one [`PolicyStats`].
pub const MAX_POLICY_FIGURES: usize = 8;

/// One named figure of a policy's own, for live statistics: `--stats` prints it as
/// `name value unit`, `schedkit monitor --json` as `{"name", "value", "unit"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figure {
    /// What it is, in a few words ("vruntime spread").
    pub name: &'static str,
    pub value: f64,
    /// The unit of `value` ("ms", "%", "" for a count).
    pub unit: &'static str,
}

/// A policy's own figures, for live statistics: the two every policy has, plus up to
/// [`MAX_POLICY_FIGURES`] named figures of its own. Fixed size and `Copy`, so the
/// scheduling loop can hand it to the statistics thread without allocating.
///
/// ```
/// use schedkit_core::PolicyStats;
///
/// let s = PolicyStats::new(3, 5_000_000).with_figure("vruntime spread", 1.5, "ms");
/// assert_eq!(s.nr_tasks, 3);
/// assert_eq!(s.figures().next().unwrap().name, "vruntime spread");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PolicyStats {
    /// Tasks the policy has per-task state for.
    pub nr_tasks: u64,
    /// The time slice of the latest decision, ns.
    pub slice_ns: u64,
    #[serde(rename = "policy_figures", serialize_with = "serialize_figures")]
    figures: [Option<Figure>; MAX_POLICY_FIGURES],
}

fn serialize_figures<S: serde::Serializer>(
    figures: &[Option<Figure>; MAX_POLICY_FIGURES],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(figures.iter().flatten())
}

impl PolicyStats {
    /// The two figures every policy has, and no named one yet.
    pub fn new(nr_tasks: u64, slice_ns: u64) -> Self {
        PolicyStats {
            nr_tasks,
            slice_ns,
            figures: [None; MAX_POLICY_FIGURES],
        }
    }

    /// Adds a named figure (ignored past [`MAX_POLICY_FIGURES`]).
    pub fn with_figure(mut self, name: &'static str, value: f64, unit: &'static str) -> Self {
        if let Some(slot) = self.figures.iter_mut().find(|f| f.is_none()) {
            *slot = Some(Figure { name, value, unit });
        }
        self
    }

    /// The named figures, in the order they were added.
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.figures.iter().flatten()
    }
}

/// What went wrong on the backend's side.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    /// No room to send more decisions now; retry next step.
    #[error("the dispatch ring is full")]
    Full,
    /// The backend cannot go on.
    #[error("{0}")]
    Fatal(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(kind: u32, exit_code: i64, reason: &str, message: &str) -> ExitInfo {
        ExitInfo {
            kind,
            exit_code,
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_stall_names_the_task_and_what_to_do_and_no_exit_code() {
        let e = exit(
            ExitInfo::KIND_ERROR_STALL,
            0,
            "runnable task stall",
            "kworker/u8:3[77] failed to run for 10.004s",
        );
        assert_eq!(e.stalled_task(), Some(("kworker/u8:3", 77)));
        let s = e.describe();
        assert!(s.contains("runnable task stall"), "{s}");
        assert!(s.contains("kworker/u8:3 (pid 77)"), "{s}");
        assert!(s.contains("make sure the policy dispatches"), "{s}");
        assert!(!s.contains("exit code"), "{s}");
    }

    #[test]
    fn a_stall_without_a_task_in_the_message_still_reads_well() {
        let e = exit(
            ExitInfo::KIND_ERROR_STALL,
            0,
            "runnable task stall",
            "watchdog failed to check in for 5.000s",
        );
        assert_eq!(e.stalled_task(), None);
        assert!(e.describe().contains(": a task waited"));
    }

    #[test]
    fn each_kind_of_exit_says_what_happened() {
        let hotplug = exit(ExitInfo::KIND_UNREG_KERN, 1 << 48 | 1 << 32, "", "");
        assert!(hotplug.describe().contains("hot-plugged"));
        let bpf = exit(
            ExitInfo::KIND_ERROR_BPF,
            0,
            "scx_bpf_error",
            "task 3 has no ctx",
        );
        assert!(bpf.describe().contains("scx_bpf_error: task 3 has no ctx"));
        assert!(bpf.describe().contains("schedkit bug"));
        let sysrq = exit(ExitInfo::KIND_SYSRQ, 0, "disabled by sysrq-S", "");
        assert!(sysrq.describe().contains("run the scheduler again"));
        assert!(!sysrq.describe().contains("sysrq-S (disabled by sysrq-S)"));
        let own = exit(ExitInfo::KIND_UNREG_BPF, 3, "", "");
        assert!(own.describe().contains("exit code 3"));
        assert_eq!(
            exit(ExitInfo::KIND_UNREG, 0, "", "").describe(),
            "the scheduler was detached (unregistered from user space)"
        );
    }
}
