#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The soak: rustland for SOAK_S seconds (default 600) under a load that changes every
# minute: the stress mix, hackbench, fork storms, `perf bench sched pipe`. No
# ejection, a resident set that stays within 1 MiB of where it was after the first
# round, no page fault after start-up, and a clean dmesg.
#
# SOAK_STRESS=0 leaves out the rounds of the stress mix (stress-ng with affinity
# churn). They once got rustland ejected: a task whose affinity changes while it waits
# goes through the policy again each time, and rustland put each new trip behind the
# others, so it never ran. The dispatcher now runs a task runnable for 2 s in its
# fallback queue (counted as rescued), whatever the policy does.
#
# SOAK_HOTPLUG=0 leaves out the CPU hotplug cycle that ends every round (the scheduler
# re-attaches by itself each time; its RSS must stay where it was). With it, rustland
# was once ejected for a stalled rcu_preempt at the second or third cycle; that went
# with the same fix as the stress mix (a 240 s soak: 15 cycles, no ejection, RSS flat).
# Run with: scripts/vm.sh bash tests/vm/soak.sh  (SOAK_S=120 for a quick loop)
source "$(dirname "$0")/lib.sh"

SOAK_S=${SOAK_S:-600}
ROUND_S=60

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# One round of load, about ROUND_S seconds in all; the kind rotates with the round.
load_round() { # load_round N
    local cpu1=/sys/devices/system/cpu/cpu1/online
    local kind=$(($1 % 4))
    # The stress mix unless SOAK_STRESS=0: see the header.
    [ $kind = 0 ] && [ "${SOAK_STRESS:-1}" != 1 ] && kind=1
    case $kind in
    0) timeout 40 stress-ng --aggressive -M -c 4 -f 4 --affinity 4 --affinity-delay 1 \
           --affinity-pin -t 30 --temp-path /tmp >/dev/null 2>&1 ;;
    1) timeout 60 hackbench -g 4 -l 200 -T >/dev/null 2>&1 ;;
    2) local i pids=()
       for ((i = 0; i < 4; i++)); do
           (for ((j = 0; j < 150; j++)); do /bin/true; done) &
           pids+=($!)
       done
       wait "${pids[@]}" ;;
    3) timeout 60 perf bench sched pipe -l 20000 >/dev/null 2>&1 ;;
    esac
    # A hotplug cycle each minute: the scheduler is re-attached by itself.
    if [ "${SOAK_HOTPLUG:-1}" = 1 ] && [ -w $cpu1 ]; then
        echo 0 >$cpu1; sleep 1; echo 1 >$cpu1
    fi
}

test_soak() {
    local log=$LOGS/soak.log
    check "rustland attaches" start_scheduler "$log" rustland --stats 5
    local start=$SECONDS round=0 rss0="" rss ejected=0 cycles=0
    while ((SECONDS - start < SOAK_S)); do
        load_round $round
        round=$((round + 1))
        [ "${SOAK_HOTPLUG:-1}" = 1 ] && [ -w /sys/devices/system/cpu/cpu1/online ] &&
            cycles=$((cycles + 1))
        wait_state enabled 120 || { ejected=1; break; }
        kill -0 $SCHED_PID 2>/dev/null || { ejected=1; break; }
        rss=$(rss_kib $SCHED_PID)
        # The first round sets the reference: ring buffers, the policy's tables and the
        # statistics threads have all been touched by then.
        [ -z "$rss0" ] && rss0=$rss
        echo "    round $round at $((SECONDS - start)) s: RSS ${rss} KiB, state $(state)"
    done
    check "no ejection over $round rounds" [ $ejected -eq 0 ]
    if [ "${SOAK_HOTPLUG:-1}" = 1 ] && ((SOAK_S >= 300)); then
        check "at least 5 hotplug cycles (got $cycles)" [ $cycles -ge 5 ]
    fi
    check "the scheduler never said it was ejected" bash -c "! grep -q 'ejected' '$log'"
    echo "    RSS after the first round ${rss0:-?} KiB, at the end ${rss:-?} KiB"
    check "RSS stayed within 1 MiB" [ $(( ${rss:-0} - ${rss0:-0} )) -le 1024 ]
    local faults; faults=$(last_stat "$log" 'page faults ([0-9]+)')
    echo "    page faults after start-up: ${faults:-?}"
    check "no page fault after start-up" [ "${faults:-1}" = 0 ]
    kill -INT $SCHED_PID; wait $SCHED_PID
    check "SIGINT exits 0" [ $? -eq 0 ]
    check "dmesg has no BUG, WARNING or stall" dmesg_clean
}

echo "kernel $(uname -r), $(nproc) CPUs, soak ${SOAK_S} s"
TEST_LIMIT_S=$((SOAK_S + 1200)) run_test test_soak
summary
