# SPDX-License-Identifier: GPL-2.0-only
# What sched_ext says about the attached scheduler; sourced by the VM tests and the
# benchmark's guest script. SCX may be set beforehand (default /sys/kernel/sched_ext).
SCX=${SCX:-/sys/kernel/sched_ext}

state() { cat "$SCX/state" 2>/dev/null; }
ops() { cat "$SCX/root/ops" 2>/dev/null; }

wait_state() { # wait_state STATE SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ "$(state)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
