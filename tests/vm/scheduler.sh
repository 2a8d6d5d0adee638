#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The scheduler on a real sched_ext kernel: attach, survive the stress mix, detach
# cleanly, fall back to the default scheduler when killed, restart on CPU hotplug,
# and refuse what it cannot do with one clear sentence.
source "$(dirname "$0")/lib.sh"

STRESS=(stress-ng --aggressive -M -c 4 -f 4 --affinity 4 --affinity-delay 1 --affinity-pin
        -t "${STRESS_SECS:-30}" --temp-path /tmp)

fork_load() { # many short-lived processes
    local i
    for ((i = 0; i < 1500; i++)); do /bin/true; done
}

survives_stress() { # survives_stress POLICY
    local log=$LOGS/$1-stress.log
    check "$1 attaches" start_scheduler "$log" "$1" --stats 1
    check "root/ops names schedkit" [ "$(ops)" = "schedkit_$1" ]
    sleep 2
    local before; before=$(last_stat "$log" 'user ([0-9]+) kernel')
    "${STRESS[@]}" >"$LOGS/$1-stress-ng.log" 2>&1 &
    local stress=$!
    fork_load
    if [ "$1" = rustland ]; then
        check "schedkit monitor --json returns a well-formed sample" monitor_sample
    fi
    wait $stress
    check "stress-ng completed" [ $? -eq 0 ]
    sleep 2
    check "still attached after the load" [ "$(state)" = enabled ]
    check "root/ops still names schedkit" [ "$(ops)" = "schedkit_$1" ]
    local after; after=$(last_stat "$log" 'user ([0-9]+) kernel')
    echo "    user dispatches: ${before:-?} before the load, ${after:-?} after"
    check "user dispatches grew under the load" [ "${after:-0}" -gt "${before:-0}" ]
    local faults; faults=$(last_stat "$log" 'page faults ([0-9]+)')
    echo "    page faults after start-up: ${faults:-?}"
    check "no page fault after start-up" [ "${faults:-1}" = 0 ]
    kill -INT $SCHED_PID
    wait $SCHED_PID
    local rc=$?
    check "SIGINT exits 0 (got $rc)" [ $rc -eq 0 ]
    check "state back to disabled" wait_state disabled 10
    check "dmesg has no BUG, WARNING or stall" dmesg_clean
    tail -n 3 "$log" | sed 's/^/    | /'
}

monitor_sample() {
    local out; out=$(timeout 60 "$SCHEDKIT" monitor --json --count 1 2>&1)
    echo "    monitor (exit $?): ${out:0:160}..."
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["policy"]=="rustland" and "user_dispatches" in d and "slice_ns" in d' "$out"
}

test_fifo_survives_stress() { survives_stress fifo; }

# A crate made by `schedkit new` (tests/new-crate.sh builds it and passes its binary
# as NEW_POLICY_BIN): its own policy, attached by its own binary, through the stress
# mix, exactly as the shipped ones.
test_new_crate_survives_stress() {
    check "NEW_POLICY_BIN names the generated binary" [ -x "${NEW_POLICY_BIN:-}" ] || return
    local SCHEDKIT=$NEW_POLICY_BIN
    survives_stress "$(basename "$NEW_POLICY_BIN")"
}
test_rustland_survives_stress() { survives_stress rustland; }

test_sigkill_falls_back_to_the_default_scheduler() {
    local log=$LOGS/sigkill.log
    check "fifo attaches" start_scheduler "$log" fifo
    stress-ng -c 4 -t 20 --temp-path /tmp >"$LOGS/sigkill-stress.log" 2>&1 &
    local stress=$!
    sleep 3
    kill -KILL $SCHED_PID
    wait $SCHED_PID 2>/dev/null
    check "the kernel falls back to its default scheduler" wait_state disabled 30
    wait $stress
    check "the load still completes" [ $? -eq 0 ]
    check "dmesg shows the scheduler disabled" sh -c 'dmesg | grep -q "schedkit_fifo\" disabled"'
}

test_restarts_after_cpu_hotplug() {
    local log=$LOGS/hotplug.log
    local cpu1=/sys/devices/system/cpu/cpu1/online
    check "cpu1 can be offlined" [ -w $cpu1 ]
    check "fifo attaches" start_scheduler "$log" fifo
    echo 0 >$cpu1
    sleep 1
    echo 1 >$cpu1
    check_reattached "$log"
    check "the process is still running" kill -0 $SCHED_PID
    sed 's/^/    | /' "$log" | tail -n 4
}

test_clear_errors() {
    local log=$LOGS/errors.log out rc
    check "fifo attaches" start_scheduler "$log" fifo
    out=$(timeout 120 "$SCHEDKIT" run fifo 2>&1); rc=$?
    echo "    second scheduler (exit $rc): $out"
    check "a second scheduler is refused (exit $rc)" [ $rc -ne 0 ]
    check "... naming the attached one" grep -q "already attached" <<<"$out"
    check "... without a panic" bash -c "! grep -q panicked <<<'$out'"
    kill -INT $SCHED_PID; wait $SCHED_PID
    out=$(timeout 120 setpriv --reuid=65534 --regid=65534 --clear-groups "$SCHEDKIT" run fifo 2>&1); rc=$?
    echo "    not root: $out"
    check "not root is refused with a reason" bash -c "[ $rc -ne 0 ] && grep -q 'needs root' <<<'$out'"
    out=$(timeout 120 "$SCHEDKIT" run nosuch 2>&1); rc=$?
    check "an unknown policy is refused with the list" bash -c "[ $rc -ne 0 ] && grep -q 'choose one of' <<<'$out'"
}

new_crate_test=
# schedkit calibrate as root on the sched_ext kernel: it measures switches and forks
# under EEVDF, then attaches fifo and measures the trip through it, and writes a
# profile that `schedkit sim --machine` accepts.
test_calibrate_measures_the_trip() {
    local prof=$LOGS/calibrated.toml err=$LOGS/calibrate.err
    check "calibrate exits 0" timeout 300 "$SCHEDKIT" calibrate --duration 1 -o "$prof" 2>"$err"
    sed 's/^/    | /' "$err" | tail -n 3
    grep -E '^# (context switch|trip):' "$prof" | sed 's/^/    /'
    local per_task switch
    per_task=$(sed -nE 's/^per_task_ns = ([0-9]+)$/\1/p' "$prof")
    switch=$(sed -nE 's/^context_switch_ns = ([0-9]+)$/\1/p' "$prof")
    check "a context switch was measured (${switch:-?} ns)" [ "${switch:-0}" -gt 0 ]
    check "the trip's cost per task was measured (${per_task:-?} ns)" [ "${per_task:-0}" -gt 0 ]
    check "the trip was measured, not kept from the default" grep -q '^# trip:' "$prof"
    check "sim runs with the profile" bash -c '"$0" sim "$1" --machine "$2" --duration 1 >/dev/null' \
        "$SCHEDKIT" "$ROOT/scenarios/pingpong.toml" "$prof"
    check "the kernel is back to its default scheduler" [ "$(state)" = disabled ]
}

# Standing instructions: under rustland --standing, ping-pong pairs (which wake about
# a thousand times a second) beside CPU hogs are dispatched mostly by the kernel side
# from the policy's standing instructions, and the hogs they preempt keep their place;
# by default every wake-up goes through the policy. The round trips of both are
# printed (one run each: a figure, not a benchmark).
standing_run() { # standing_run LOG [OPTION]: sets SR="round-trips/s standing kept rescued"
    local log=$1; shift
    SR=
    check "rustland $* attaches" start_scheduler "$log" rustland --stats 1 "$@" || return
    sleep 2
    local rt
    rt=$("$SCHEDKIT" workload run "$ROOT/scenarios/pingpong.toml" --duration 6 2>/dev/null |
        sed -nE 's/^pairs .* round trips [0-9]+ +([0-9.]+)\/s.*/\1/p')
    sleep 1
    check "still attached after the ping-pong" [ "$(state)" = enabled ]
    kill -INT $SCHED_PID
    wait $SCHED_PID
    check "SIGINT exits 0" [ $? -eq 0 ]
    check "state back to disabled" wait_state disabled 10
    SR="${rt:-0} $(last_stat "$log" 'standing ([0-9]+) \|') $(last_stat "$log" 'kept ([0-9]+) ') $(last_stat "$log" 'rescued ([0-9]+) ')"
}

test_standing_instructions_skip_the_trip() {
    local rt1 st1 kept1 res1 rt2 st2 kept2 res2
    standing_run "$LOGS/standing-on.log" --standing
    read -r rt1 st1 kept1 res1 <<<"$SR"
    standing_run "$LOGS/standing-off.log"
    read -r rt2 st2 kept2 res2 <<<"$SR"
    echo "    standing on:  ${rt1:-?} round trips/s, ${st1:-?} standing dispatches, ${kept1:-?} preempted tasks kept their place"
    echo "    standing off: ${rt2:-?} round trips/s, ${st2:-?} standing dispatches, ${kept2:-?} kept"
    check "the pairs ran" python3 -c "import sys; sys.exit(not (float('${rt1:-0}') > 0 and float('${rt2:-0}') > 0))"
    check "wake-ups were dispatched from standing instructions (${st1:-?})" [ "${st1:-0}" -gt 100 ]
    check "preempted tasks kept their place (${kept1:-?})" [ "${kept1:-0}" -gt 0 ]
    check "without --standing there are none (${st2:-?}) and no task keeps its place (${kept2:-?})" \
        [ "${st2:-1}" -eq 0 ] && [ "${kept2:-1}" -eq 0 ]
    check "no task needed rescuing (${res1:-?}, ${res2:-?})" [ "${res1:-1}${res2:-1}" = 00 ]
    check "dmesg has no BUG, WARNING or stall" dmesg_clean
}

[ -n "${NEW_POLICY_BIN:-}" ] && new_crate_test=test_new_crate_survives_stress
tests=${VM_TESTS:-"test_fifo_survives_stress test_rustland_survives_stress $new_crate_test test_sigkill_falls_back_to_the_default_scheduler test_restarts_after_cpu_hotplug test_clear_errors test_calibrate_measures_the_trip test_standing_instructions_skip_the_trip"}
echo "kernel $(uname -r), $(nproc) CPUs, sched_ext state $(state)"
for t in $tests; do run_test "$t"; done
summary
