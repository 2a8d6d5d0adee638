//! A machine profile: what scheduling costs on one real machine (a context switch, a
//! trip through the user-space scheduler, creating a process), read from a small TOML
//! file, so that the simulator's figures can be compared with that machine's.
//!
//! Every time is in nanoseconds of the profiled machine's own clock: a slow machine
//! (the benchmark VM runs under TCG emulation) simply has large costs, and no separate
//! speed factor is needed, because a workload's work is CPU time, which a slower CPU
//! does not change. `schedkit calibrate` measures a profile on the machine it runs on
//! and writes it with [`MachineProfile::to_toml`]; the benchmark VM's is shipped
//! ([`MachineProfile::vm_default`]) and is what `schedkit sim` uses when no
//! `--machine` is given.
//!
//! ```
//! use schedkit_sim::{MachineProfile, SimConfig};
//! let p = MachineProfile::from_str_named(r#"
//!     name = "laptop"
//!     cpus = 8
//!     tick_hz = 1000
//!     context_switch_ns = 2000
//!     sched_wakeup_ns = 5000
//!     per_task_ns = 1500
//! "#, "laptop.toml").unwrap();
//! let cfg = SimConfig::from_profile(&p);
//! assert_eq!((cfg.nr_cpus, cfg.hz, cfg.context_switch_ns), (8, 1000, 2000));
//! // A mistake is one sentence that names the file and the field.
//! let err = MachineProfile::from_str_named("name = \"x\"\ncpus = 0\ntick_hz = 250\n\
//!     context_switch_ns = 1\nsched_wakeup_ns = 1\nper_task_ns = 1\n", "x.toml").unwrap_err();
//! assert_eq!(err.to_string(), "machine profile x.toml: cpus must be between 1 and 1024, got 0");
//! ```

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SimConfig;

/// The benchmark VM's profile, as shipped (`profiles/vm-tcg-2cpu.toml`).
pub const VM_PROFILE_TOML: &str = include_str!("../../../profiles/vm-tcg-2cpu.toml");

/// The file name the shipped VM profile is known by in messages.
pub const VM_PROFILE_NAME: &str = "profiles/vm-tcg-2cpu.toml";

/// The largest cost a profile may give to one event: a second is already absurd for a
/// context switch or a fork, so anything more is a mistake in the file.
pub const MAX_COST_NS: u64 = 1_000_000_000;

/// The EEVDF base slices a profile may give (0.1 ms to 100 ms), ns: the simulator
/// ends a slice with a timer event, so a slice of a few nanoseconds would never end a
/// simulation.
pub const BASE_SLICE_RANGE_NS: std::ops::RangeInclusive<u64> = 100_000..=100_000_000;

/// What scheduling costs on one machine. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineProfile {
    /// A short name ("vm-tcg-2cpu").
    pub name: String,
    /// What machine this is and how the figures were obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Number of CPUs.
    pub cpus: u32,
    /// The kernel's scheduler tick (CONFIG_HZ): slices end at a tick.
    pub tick_hz: u32,
    /// CPU time of one context switch, wake-up included, ns: charged to the task (or
    /// the user-space scheduler) switched in, on every switch, under every scheduler.
    pub context_switch_ns: u64,
    /// Extra CPU time when the task switched in last ran on another CPU, ns.
    #[serde(default)]
    pub migration_ns: u64,
    /// Extra CPU time when a switch goes to another process (another address space)
    /// rather than another thread of the same one, ns. Large under TCG, which empties
    /// its emulated TLB at every address-space change.
    #[serde(default)]
    pub mm_switch_ns: u64,
    /// CPU time a job's process spends being created and torn down (the child's side
    /// of fork and exit), ns, charged to the job.
    #[serde(default)]
    pub process_spawn_ns: u64,
    /// CPU time the parent spends forking each job (the executor's slot thread, a
    /// task of its own that competes for a CPU before the job can start), ns.
    #[serde(default)]
    pub fork_ns: u64,
    /// CPU time of one step of the user-space scheduler beyond the tasks it handles
    /// (being woken, polling its ring, its syscalls), ns.
    pub sched_wakeup_ns: u64,
    /// The user-space scheduler's CPU time per task it handles (drained, decided and
    /// sent), ns: what `schedkit monitor` shows as the trip cost.
    pub per_task_ns: u64,
    /// The kernel's preemption model is lazy (CONFIG_PREEMPT_LAZY): the fair class's
    /// wake-up preemption waits for the next tick.
    #[serde(default)]
    pub preempt_lazy: bool,
    /// EEVDF's DELAY_DEQUEUE feature (on since Linux 6.12): a task that sleeps owing
    /// service stays on its runqueue until it is eligible.
    #[serde(default)]
    pub delay_dequeue: bool,
    /// EEVDF's HRTICK feature: a timer ends each slice when it is used up, instead of
    /// the next tick.
    #[serde(default)]
    pub hrtick: bool,
    /// EEVDF's base slice before the kernel scales it by the CPU count
    /// (`/sys/kernel/debug/sched/base_slice_ns` divided by 1 + log2 of the CPUs), ns;
    /// 0 for the simulator's default, 0.75 ms.
    #[serde(default)]
    pub base_slice_ns: u64,
}

/// A profile that cannot be used, as one sentence naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("machine profile {file}: {message}")]
pub struct ProfileError {
    pub file: String,
    pub message: String,
}

impl MachineProfile {
    /// The shipped profile of the benchmark VM (2 CPUs under TCG, HZ=250).
    pub fn vm_default() -> MachineProfile {
        // Checked by a test: the shipped file is valid.
        MachineProfile::from_str_named(VM_PROFILE_TOML, VM_PROFILE_NAME)
            .unwrap_or_else(|e| panic!("the shipped VM profile is invalid: {e}"))
    }

    /// Reads and checks a profile file.
    pub fn from_path(path: &Path) -> Result<MachineProfile, ProfileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            file: name.clone(),
            message: format!("cannot be read ({e})"),
        })?;
        MachineProfile::from_str_named(&text, &name)
    }

    /// Parses and checks a profile; `name` is the file name for messages.
    pub fn from_str_named(text: &str, name: &str) -> Result<MachineProfile, ProfileError> {
        let err = |message: String| ProfileError {
            file: name.to_string(),
            message,
        };
        let p: MachineProfile = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim_end().replace('\n', "; ");
            let at = e
                .span()
                .map(|s| format!("line {}: ", text[..s.start].matches('\n').count() + 1))
                .unwrap_or_default();
            err(format!("{at}{msg}"))
        })?;
        p.validate().map_err(err)?;
        Ok(p)
    }

    /// Checks every value; the error is the sentence to show.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if !(1..=1024).contains(&self.cpus) {
            return Err(format!(
                "cpus must be between 1 and 1024, got {}",
                self.cpus
            ));
        }
        if !(1..=10_000).contains(&self.tick_hz) {
            return Err(format!(
                "tick_hz must be between 1 and 10000, got {}",
                self.tick_hz
            ));
        }
        if self.base_slice_ns != 0 && !BASE_SLICE_RANGE_NS.contains(&self.base_slice_ns) {
            return Err(format!(
                "base_slice_ns must be 0 (the default) or between {} and {}, got {}",
                BASE_SLICE_RANGE_NS.start(),
                BASE_SLICE_RANGE_NS.end(),
                self.base_slice_ns
            ));
        }
        for (field, v) in [
            ("context_switch_ns", self.context_switch_ns),
            ("migration_ns", self.migration_ns),
            ("mm_switch_ns", self.mm_switch_ns),
            ("process_spawn_ns", self.process_spawn_ns),
            ("fork_ns", self.fork_ns),
            ("sched_wakeup_ns", self.sched_wakeup_ns),
            ("per_task_ns", self.per_task_ns),
        ] {
            if v > MAX_COST_NS {
                return Err(format!(
                    "{field} must be at most {MAX_COST_NS} (one second), got {v}"
                ));
            }
        }
        Ok(())
    }

    /// The profile as a commented TOML file that [`MachineProfile::from_str_named`]
    /// reads back; `notes` go first, as comment lines.
    pub fn to_toml(&self, notes: &[String]) -> String {
        let mut s = String::new();
        for n in notes {
            let _ = writeln!(s, "# {n}");
        }
        if !notes.is_empty() {
            s.push('\n');
        }
        let q = |v: &str| toml::Value::String(v.to_string()).to_string();
        let _ = writeln!(s, "name = {}", q(&self.name));
        if let Some(d) = &self.description {
            let _ = writeln!(s, "description = {}", q(d));
        }
        let fields: [(&str, u64, &str); 9] = [
            ("cpus", self.cpus as u64, "number of CPUs"),
            ("tick_hz", self.tick_hz as u64, "the kernel's CONFIG_HZ"),
            (
                "context_switch_ns",
                self.context_switch_ns,
                "CPU time of one context switch, wake-up included",
            ),
            (
                "migration_ns",
                self.migration_ns,
                "extra when the task last ran on another CPU",
            ),
            (
                "mm_switch_ns",
                self.mm_switch_ns,
                "extra when the switch goes to another process",
            ),
            (
                "process_spawn_ns",
                self.process_spawn_ns,
                "CPU time of a job's process to start and exit (the child's side)",
            ),
            (
                "fork_ns",
                self.fork_ns,
                "CPU time of the parent to fork a job (the executor's slot thread)",
            ),
            (
                "sched_wakeup_ns",
                self.sched_wakeup_ns,
                "user-space scheduler: CPU time per step beyond its tasks",
            ),
            (
                "per_task_ns",
                self.per_task_ns,
                "user-space scheduler: CPU time per task handled",
            ),
        ];
        for (k, v, doc) in fields {
            let _ = writeln!(s, "# {doc}");
            let _ = writeln!(s, "{k} = {v}");
        }
        let _ = writeln!(
            s,
            "# CONFIG_PREEMPT_LAZY: EEVDF's wake-up preemption waits for the next tick"
        );
        let _ = writeln!(s, "preempt_lazy = {}", self.preempt_lazy);
        let _ = writeln!(
            s,
            "# EEVDF's DELAY_DEQUEUE: a task sleeping while owing service stays queued"
        );
        let _ = writeln!(s, "delay_dequeue = {}", self.delay_dequeue);
        let _ = writeln!(
            s,
            "# EEVDF's HRTICK: a timer ends each slice when it is used up, not the tick"
        );
        let _ = writeln!(s, "hrtick = {}", self.hrtick);
        if self.base_slice_ns > 0 {
            let _ = writeln!(
                s,
                "# EEVDF's base slice before scaling by the CPU count, ns"
            );
            let _ = writeln!(s, "base_slice_ns = {}", self.base_slice_ns);
        }
        s
    }
}

impl SimConfig {
    /// A machine built from `profile`: its CPUs, tick and costs, the rest default.
    /// The user-space scheduler's per-task cost is split evenly between draining a
    /// task and sending its decision, the two moments the simulator charges it.
    pub fn from_profile(profile: &MachineProfile) -> SimConfig {
        SimConfig {
            nr_cpus: profile.cpus,
            hz: profile.tick_hz,
            context_switch_ns: profile.context_switch_ns,
            migration_ns: profile.migration_ns,
            mm_switch_ns: profile.mm_switch_ns,
            process_spawn_ns: profile.process_spawn_ns,
            fork_ns: profile.fork_ns,
            step_cost_ns: profile.sched_wakeup_ns,
            per_task_cost_ns: profile.per_task_ns / 2,
            preempt_lazy: profile.preempt_lazy,
            delay_dequeue: profile.delay_dequeue,
            hrtick: profile.hrtick,
            eevdf_base_slice_ns: match profile.base_slice_ns {
                0 => SimConfig::default().eevdf_base_slice_ns,
                ns => ns,
            },
            ..SimConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "name = \"t\"\ncpus = 2\ntick_hz = 250\ncontext_switch_ns = 10\n\
                      sched_wakeup_ns = 20\nper_task_ns = 30\n";

    #[test]
    fn shipped_vm_profile_is_valid_and_has_two_cpus_at_250_hz() {
        let p = MachineProfile::vm_default();
        assert_eq!((p.cpus, p.tick_hz), (2, 250));
        assert!(p.context_switch_ns > 0 && p.per_task_ns > 0);
    }

    #[test]
    fn written_profile_reads_back_equal() {
        let mut p = MachineProfile::from_str_named(OK, "t").unwrap();
        p.description = Some("a \"quoted\" machine".into());
        p.process_spawn_ns = 123;
        let text = p.to_toml(&["measured by a test".into()]);
        assert!(text.starts_with("# measured by a test\n"));
        assert_eq!(MachineProfile::from_str_named(&text, "t").unwrap(), p);
    }

    #[test]
    fn bad_profiles_give_one_sentence_naming_the_field() {
        let cases = [
            (OK.replace("cpus = 2", "cpus = 0"), "cpus must be between"),
            (
                OK.replace("tick_hz = 250", "tick_hz = 0"),
                "tick_hz must be",
            ),
            (
                format!("{OK}base_slice_ns = 5\n"),
                "base_slice_ns must be 0",
            ),
            (
                OK.replace("per_task_ns = 30", "per_task_ns = 2000000000"),
                "per_task_ns must be at most",
            ),
            (OK.replace("per_task_ns = 30", "per_task_ns = -1"), "line 6"),
            (OK.replace("name = \"t\"", "name = \" \""), "name must not"),
            (format!("{OK}speed = 3\n"), "unknown field `speed`"),
            (
                OK.replace("per_task_ns = 30\n", ""),
                "missing field `per_task_ns`",
            ),
        ];
        for (text, want) in cases {
            let e = MachineProfile::from_str_named(&text, "bad.toml").unwrap_err();
            let s = e.to_string();
            assert!(s.starts_with("machine profile bad.toml: "), "{s}");
            assert!(s.contains(want), "{s} lacks {want}");
            assert!(!s.contains('\n'), "{s}");
        }
    }

    #[test]
    fn profile_sets_the_simulated_machine() {
        let p = MachineProfile::from_str_named(OK, "t").unwrap();
        let c = SimConfig::from_profile(&p);
        assert_eq!(c.nr_cpus, 2);
        assert_eq!(c.context_switch_ns, 10);
        assert_eq!(c.step_cost_ns, 20);
        assert_eq!(c.per_task_cost_ns, 15);
    }
}
