#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The scheduler when things go wrong around it: stopped with SIGSTOP under load (the
# dispatcher schedules by itself meanwhile and gives control back on SIGCONT), sent
# a terminal stop signal (ignored), attached while a CPU is offline, and pinned to one
# CPU. Run with: scripts/vm.sh bash tests/vm/hardening.sh
source "$(dirname "$0")/lib.sh"

# The worst wait a task sleeping 1 ms at a time may see while the scheduler is stopped.
WORST_GAP_MS=${WORST_GAP_MS:-250}

# sleeper SECS OUT: sleeps 1 ms at a time for SECS seconds, then writes "WORST N" to OUT:
# the longest time between two wake-ups in ms, and the number of wake-ups.
sleeper() {
    python3 - "$1" >"$2" <<'EOF'
import sys, time
end = time.monotonic() + float(sys.argv[1])
worst, n, last = 0.0, 0, time.monotonic()
while last < end:
    time.sleep(0.001)
    now = time.monotonic()
    worst, n, last = max(worst, now - last), n + 1, now
print(f"{worst * 1000:.1f} {n}")
EOF
}

user_dispatches() { last_stat "$1" 'user ([0-9]+) kernel'; }

check_worst_gap() { # check_worst_gap FILE: the sleeper's result against the bound
    local worst n; read -r worst n <"$1"
    echo "    sleeper: worst gap ${worst:-?} ms over ${n:-?} wake-ups (bound $WORST_GAP_MS ms)"
    check "the sleeper never waited more than $WORST_GAP_MS ms" \
        python3 -c "import sys; sys.exit(not float('${worst:-1e9}') <= $WORST_GAP_MS)"
}

check_grew() { # check_grew WHAT BEFORE AFTER: user dispatches grew from BEFORE to AFTER
    echo "    user dispatches: ${2:-?} before, ${3:-?} after"
    check "user dispatches grew $1" [ "${3:-0}" -gt "${2:-0}" ]
}

# The figure FIELD of one `schedkit monitor --json` sample.
monitor_field() {
    timeout 60 "$SCHEDKIT" monitor --json --count 1 2>/dev/null |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"
}

not_stopped() { # not_stopped PID: the process is not in the stopped state
    [ "$(awk '{print $3}' "/proc/$1/stat")" != T ]
}

# Whether the process ignores signal number SIG (bit SIG-1 of SigIgn).
ignores() { # ignores PID SIG
    local mask; mask=$(awk '/^SigIgn:/ {print $2}' "/proc/$1/status")
    (( (16#$mask >> ($2 - 1)) & 1 ))
}

test_sigstop_under_load_degrades_and_resumes() {
    local log=$LOGS/sigstop.log gap=$LOGS/sigstop-gap.txt
    check "rustland attaches" start_scheduler "$log" rustland --stats 1
    stress-ng -c 4 -t 25 --temp-path /tmp >"$LOGS/sigstop-stress.log" 2>&1 &
    local stress=$!
    sleep 2
    sleeper 9 "$gap" &
    local sleeper_pid=$!
    sleep 2
    local before; before=$(user_dispatches "$log")
    kill -STOP $SCHED_PID
    sleep 3
    check "attached while the scheduler is stopped" [ "$(state)" = enabled ]
    kill -CONT $SCHED_PID
    wait $sleeper_pid
    check_worst_gap "$gap"
    sleep 2
    check "still attached after SIGCONT" [ "$(state)" = enabled ]
    check_grew "from before SIGSTOP to after SIGCONT" "$before" "$(user_dispatches "$log")"
    local degraded; degraded=$(monitor_field degraded_ns)
    echo "    time in degraded mode: ${degraded:-?} ns"
    check "degraded mode counted (> 2 s of the 3 s stop)" [ "${degraded:-0}" -gt 2000000000 ]
    # Back in charge: over the next 4 s the dispatcher may still step in briefly (the
    # scheduler is slow under emulation), but not for most of the time.
    sleep 4
    local later; later=$(monitor_field degraded_ns)
    echo "    degraded mode in the 4 s after: $(( (${later:-0} - ${degraded:-0}) / 1000000 )) ms"
    check "mostly out of degraded mode after SIGCONT" \
        [ $(( ${later:-0} - ${degraded:-0} )) -lt 1000000000 ]
    wait $stress
    check "stress-ng completed" [ $? -eq 0 ]
    kill -INT $SCHED_PID
    wait $SCHED_PID
    local rc=$?
    check "SIGINT exits 0 (got $rc)" [ $rc -eq 0 ]
    check "dmesg has no BUG, WARNING or stall" dmesg_clean
    tail -n 2 "$log" | sed 's/^/    | /'
}

test_terminal_stop_signals_are_ignored() {
    local log=$LOGS/sigtstp.log
    check "fifo attaches" start_scheduler "$log" fifo --stats 1
    check "SIGTSTP ignored" ignores $SCHED_PID 20
    check "SIGTTIN ignored" ignores $SCHED_PID 21
    check "SIGTTOU ignored" ignores $SCHED_PID 22
    local before; before=$(user_dispatches "$log")
    kill -TSTP $SCHED_PID
    stress-ng -c 4 -t 4 --temp-path /tmp >"$LOGS/sigtstp-stress.log" 2>&1
    sleep 2
    check "not stopped by SIGTSTP" not_stopped $SCHED_PID
    check_grew "after SIGTSTP" "$before" "$(user_dispatches "$log")"
}

test_attaches_with_a_cpu_offline_then_restarts_when_it_comes_back() {
    local log=$LOGS/offline.log cpu1=/sys/devices/system/cpu/cpu1/online
    check "cpu1 can be offlined" [ -w $cpu1 ]
    echo 0 >$cpu1
    check "fifo attaches with cpu1 offline" start_scheduler "$log" fifo --stats 1
    stress-ng -c 4 -t 4 --temp-path /tmp >"$LOGS/offline-stress.log" 2>&1
    check "stress-ng completed on one CPU" [ $? -eq 0 ]
    sleep 2
    check "attached with cpu1 offline" [ "$(state)" = enabled ]
    local dispatched; dispatched=$(user_dispatches "$log")
    echo "    user dispatches with cpu1 offline: ${dispatched:-?}"
    check "user dispatches with cpu1 offline" [ "${dispatched:-0}" -gt 0 ]
    echo 1 >$cpu1
    check_reattached "$log"
    stress-ng -c 4 -t 4 --temp-path /tmp >"$LOGS/offline-stress2.log" 2>&1
    check "stress-ng completed on both CPUs" [ $? -eq 0 ]
    check "the process is still running" kill -0 $SCHED_PID
    check "dmesg has no BUG, WARNING or stall" dmesg_clean
}

test_pinned_to_one_cpu() {
    local log=$LOGS/pinned.log gap=$LOGS/pinned-gap.txt
    SCHED_WRAP="taskset -c 0" check "rustland attaches pinned to CPU 0" \
        start_scheduler "$log" rustland --stats 1
    check "pinned to CPU 0" grep -qE '^Cpus_allowed_list:\s+0$' "/proc/$SCHED_PID/status"
    sleep 2
    local before; before=$(user_dispatches "$log")
    stress-ng -c 4 -t 10 --temp-path /tmp >"$LOGS/pinned-stress.log" 2>&1 &
    local stress=$!
    sleep 1
    sleeper 6 "$gap"
    wait $stress
    check "stress-ng completed" [ $? -eq 0 ]
    check_worst_gap "$gap"
    sleep 2
    check "still attached" [ "$(state)" = enabled ]
    check_grew "under the load" "$before" "$(user_dispatches "$log")"
    local degraded; degraded=$(monitor_field degraded_ns)
    echo "    time in degraded mode: ${degraded:-?} ns"
    check "dmesg has no BUG, WARNING or stall" dmesg_clean
}

tests=${VM_TESTS:-"test_sigstop_under_load_degrades_and_resumes test_terminal_stop_signals_are_ignored test_attaches_with_a_cpu_offline_then_restarts_when_it_comes_back test_pinned_to_one_cpu"}
echo "kernel $(uname -r), $(nproc) CPUs, sched_ext state $(state)"
for t in $tests; do run_test "$t"; done
summary
