//! What the kernel says about sched_ext, through sysfs and procfs.

use std::fs;

use crate::ScxError;

const SCX_DIR: &str = "/sys/kernel/sched_ext";

/// Whether a sched_ext scheduler is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedExtState {
    /// The kernel has no sched_ext.
    Unsupported,
    /// No BPF scheduler is attached.
    Disabled,
    /// A scheduler is attached (or being attached or detached); its name.
    Attached(String),
}

/// Reads `/sys/kernel/sched_ext/state` and `root/ops`.
pub fn sched_ext_state() -> SchedExtState {
    match fs::read_to_string(format!("{SCX_DIR}/state")) {
        Err(_) => SchedExtState::Unsupported,
        Ok(s) if s.trim() == "disabled" => SchedExtState::Disabled,
        Ok(s) => {
            let name = fs::read_to_string(format!("{SCX_DIR}/root/ops"))
                .map(|n| n.trim().to_string())
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("unnamed, state {}", s.trim()));
            SchedExtState::Attached(name)
        }
    }
}

/// `/sys/kernel/sched_ext/hotplug_seq`, to be set in the ops before attaching so that a
/// CPU hotplug between reading the topology and attaching is noticed.
pub fn hotplug_seq() -> u64 {
    fs::read_to_string(format!("{SCX_DIR}/hotplug_seq"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `/sys/kernel/sched_ext/enable_seq`: how many times a scheduler was attached since
/// boot (None where the kernel does not say).
pub fn enable_seq() -> Option<u64> {
    fs::read_to_string(format!("{SCX_DIR}/enable_seq"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The kernel functions the dispatcher calls, with what each one stands for.
const REQUIRED_KFUNCS: &[(&str, &str)] = &[
    ("scx_bpf_dsq_insert", "scx_bpf_dsq_insert (renamed in 6.13)"),
    (
        "scx_bpf_dsq_insert_vtime",
        "scx_bpf_dsq_insert_vtime (6.13)",
    ),
    (
        "scx_bpf_dsq_move_to_local",
        "scx_bpf_dsq_move_to_local (6.13)",
    ),
    ("scx_bpf_dispatch_nr_slots", "scx_bpf_dispatch_nr_slots"),
    ("scx_bpf_select_cpu_dfl", "scx_bpf_select_cpu_dfl"),
    ("scx_bpf_pick_idle_cpu", "scx_bpf_pick_idle_cpu"),
    (
        "scx_bpf_test_and_clear_cpu_idle",
        "scx_bpf_test_and_clear_cpu_idle",
    ),
    ("scx_bpf_error_bstr", "scx_bpf_error_bstr"),
    ("scx_bpf_get_online_cpumask", "scx_bpf_get_online_cpumask"),
    (
        "bpf_user_ringbuf_drain",
        "the user ring buffer (BPF_MAP_TYPE_USER_RINGBUF)",
    ),
];

/// Names from `REQUIRED_KFUNCS` that the kernel's BTF does not mention. One pass over
/// the NUL-separated strings: the BTF is megabytes, and this runs at every start.
fn missing_kfuncs(btf: &[u8]) -> Vec<&'static str> {
    let mut found = vec![false; REQUIRED_KFUNCS.len()];
    for word in btf.split(|&b| b == 0) {
        if let Some(i) = REQUIRED_KFUNCS
            .iter()
            .position(|(name, _)| name.as_bytes() == word)
        {
            found[i] = true;
        }
    }
    REQUIRED_KFUNCS
        .iter()
        .zip(found)
        .filter(|(_, f)| !f)
        .map(|((_, what), _)| *what)
        .collect()
}

/// Everything that can be checked before loading: root, sched_ext, kernel features,
/// no other scheduler attached.
pub fn check_can_attach() -> Result<(), ScxError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ScxError::NotRoot);
    }
    match sched_ext_state() {
        SchedExtState::Unsupported => return Err(ScxError::NoSchedExt(kernel_release())),
        SchedExtState::Attached(name) => return Err(ScxError::AlreadyAttached(name)),
        SchedExtState::Disabled => {}
    }
    if let Ok(btf) = fs::read("/sys/kernel/btf/vmlinux") {
        let missing = missing_kfuncs(&btf);
        if !missing.is_empty() {
            return Err(ScxError::MissingFeature {
                kernel: kernel_release(),
                what: missing.join(", "),
            });
        }
    }
    Ok(())
}

/// CPUs a decision may name: one more than the highest online CPU (so every online CPU
/// is below it; CPUs offline at attach are left out, and a hotplug re-attaches). Falls
/// back to the possible CPUs if the online list cannot be read.
pub fn nr_cpus_online() -> u32 {
    fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| cpus_below_highest(&s))
        .unwrap_or_else(schedkit_core::topology::nr_possible_cpus)
}

fn cpus_below_highest(cpu_list: &str) -> Option<u32> {
    schedkit_core::topology::parse_cpu_list(cpu_list)
        .into_iter()
        .max()
        .map(|max| max + 1)
}

/// Page faults (minor and major) of the calling thread since it started. Called from
/// the scheduling loop, that is the scheduler's: the dispatcher runs that thread first,
/// and a fault it waits on could need the very CPU it schedules. The process's other
/// threads (statistics, signals) are ordinary tasks, scheduled like any other, so
/// their first-run faults, which now come after the loop has started, do not count.
pub fn page_faults() -> u64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: a valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: getrusage succeeded and filled it.
    let ru = unsafe { ru.assume_init() };
    (ru.ru_minflt + ru.ru_majflt) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_kfuncs_are_named_and_present_ones_are_not() {
        let mut btf = vec![0u8];
        for (name, _) in REQUIRED_KFUNCS.iter().skip(1) {
            btf.extend_from_slice(name.as_bytes());
            btf.push(0);
        }
        assert_eq!(
            missing_kfuncs(&btf),
            vec!["scx_bpf_dsq_insert (renamed in 6.13)"]
        );
        // A longer name does not count as the shorter one.
        let btf = b"\0scx_bpf_dsq_insert_vtime\0".to_vec();
        assert!(missing_kfuncs(&btf).contains(&"scx_bpf_dsq_insert (renamed in 6.13)"));
    }

    #[test]
    fn cpus_a_decision_may_name_end_at_the_highest_online_one() {
        assert_eq!(cpus_below_highest("0\n"), Some(1));
        assert_eq!(cpus_below_highest("0,2-3\n"), Some(4));
        assert_eq!(cpus_below_highest(""), None);
    }

    #[test]
    fn the_host_without_sched_ext_or_as_non_root_is_refused_with_a_reason() {
        // On the development hosts there is no sched_ext; as root that is the error,
        // as non-root the root check comes first.
        if sched_ext_state() == SchedExtState::Unsupported {
            let err = check_can_attach().unwrap_err().to_string();
            assert!(err.contains("sched_ext") || err.contains("root"), "{err}");
        }
    }
}
