# SPDX-License-Identifier: GPL-2.0-only
# Helpers for the VM tests: sourced by tests/vm/*.sh, which run as root inside the
# sched_ext VM (scripts/vm.sh). Each test is a shell function; `check` records a
# failed expectation with its reason, `run_test` prints PASS or FAIL per test and the
# summary line at the end is "N passed, M failed".
set -u

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SCHEDKIT=${SCHEDKIT:-$ROOT/target/release/schedkit}
LOGS=${LOGS:-$ROOT/target/vm-logs}
SCX=/sys/kernel/sched_ext
mkdir -p "$LOGS"
cd /tmp || exit 1

passed=0
failed=0
test_failed=0

check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then
        echo "    ok: $what"
    else
        echo "    FAILED: $what"
        test_failed=1
    fi
}

# Each test runs in a subshell of its own, watched: one that runs over TEST_LIMIT_S
# (20 minutes unless set) is killed with everything it started and fails, so that a
# hang costs one test, not the whole CI run.
run_test() { # run_test NAME
    local limit=${TEST_LIMIT_S:-1200} waited=0 rc began=$SECONDS
    echo "=== $1"
    DMESG_FROM=$(dmesg | wc -l)
    ( test_failed=0; "$1"; exit $test_failed ) &
    local pid=$!
    while kill -0 $pid 2>/dev/null; do
        if [ $waited -ge "$limit" ]; then
            echo "    FAILED: $1 still running after $limit s: killed"
            kill_tree $pid
            break
        fi
        sleep 1; waited=$((waited + 1))
    done
    wait $pid; rc=$?
    if [ $rc -eq 0 ]; then
        echo "PASS $1 ($((SECONDS - began)) s)"; passed=$((passed + 1))
    else
        echo "FAIL $1 ($((SECONDS - began)) s)"; failed=$((failed + 1))
    fi
    # Leave nothing attached for the next test.
    stop_all || true
}

kill_tree() { # kill_tree PID: kills PID and all its descendants
    local c
    kill -STOP "$1" 2>/dev/null
    for c in $(pgrep -P "$1"); do kill_tree "$c"; done
    kill -KILL "$1" 2>/dev/null
}

source "$ROOT/scripts/scx-state.sh"

# start_scheduler LOG ARGS...: starts schedkit run ARGS in the background, sets SCHED_PID,
# and waits until it is attached (the verifier is slow under TCG). On failure it shows
# why: the process's exit status, its log and the kernel's last words. SCHED_WRAP is a
# command to start it through (e.g. "taskset -c 0"), which must exec it.
start_scheduler() {
    local log=$1; shift
    ${SCHED_WRAP:-} "$SCHEDKIT" run "$@" >"$log" 2>&1 &
    SCHED_PID=$!
    local i
    for ((i = 0; i < 1800; i++)); do
        if [ "$(state)" = enabled ] && grep -q "attached" "$log"; then
            return 0
        fi
        if ! kill -0 $SCHED_PID 2>/dev/null; then
            wait $SCHED_PID
            echo "    schedkit run $* exited with status $? before attaching; its log:"
            sed 's/^/    | /' "$log" | grep -v libbpf | tail -n 5
            dmesg | tail -n 5 | sed 's/^/    dmesg| /'
            return 1
        fi
        sleep 0.1
    done
    echo "    schedkit run $* did not attach within 180 s (state $(state))"
    return 1
}

# Stops every schedkit process: SIGINT, then SIGKILL after a minute; waits for the
# kernel to go back to its default scheduler.
# (schedkit, the spread example, and a binary made by `schedkit new` if NEW_POLICY_BIN
# names one).
stop_all() {
    local names=(schedkit spread) n i
    [ -n "${NEW_POLICY_BIN:-}" ] && names+=("$(basename "$NEW_POLICY_BIN")")
    # A process's name (comm) is at most 15 characters, and procps matches nothing
    # (with a warning) given a longer one: match each name alone, cut to 15.
    for n in "${names[@]}"; do pkill -INT -x "${n:0:15}" 2>/dev/null; done
    for ((i = 0; i < 600; i++)); do
        any_running "${names[@]}" || break
        sleep 0.1
    done
    for n in "${names[@]}"; do pkill -KILL -x "${n:0:15}" 2>/dev/null; done
    wait_state disabled 60
}

any_running() { # any_running NAME...: is a process of one of these names running?
    local n
    for n in "$@"; do pgrep -x "${n:0:15}" >/dev/null && return 0; done
    return 1
}

# The last --stats line's figure after WORD (e.g. `stat_of LOG user` after "dispatches").
last_stat() { # last_stat LOG REGEX-WITH-ONE-GROUP
    grep '^\[' "$1" | tail -n 1 | sed -nE "s/.*$2.*/\1/p"
}

# Waits (up to 2 minutes) until the scheduler logging to LOG has re-attached after a
# hotplug, then checks that it did and that a scheduler is attached.
check_reattached() { # check_reattached LOG
    local i
    for ((i = 0; i < 1200; i++)); do
        grep -q "re-attaching" "$1" && [ "$(state)" = enabled ] && break
        sleep 0.1
    done
    check "the scheduler re-attached by itself" grep -q "re-attaching" "$1"
    check "attached after the hotplug" wait_state enabled 120
}

# No kernel bug, warning or stall report ("stall" as a word: "Installing" is fine)
# since the test began (one test's failure is not every later test's).
dmesg_clean() {
    ! dmesg | tail -n +$((${DMESG_FROM:-0} + 1)) | grep -E 'BUG:|WARNING:|\bstall'
}

summary() {
    echo "$passed passed, $failed failed"
    [ $failed -eq 0 ]
}
