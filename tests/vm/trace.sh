#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# `schedkit trace`, `schedkit run --trace` and `schedkit timeline` on a real sched_ext
# kernel: 5 s of desktop-mix under EEVDF and under rustland, in both formats, read
# back with schedkit's own decoder (`schedkit trace-check`); a TRACE_STRESS_S-second
# (default 60) trace of the stress mix under rustland without loss; Ctrl-C still
# writes a valid file; bad input gets one sentence and a non-zero exit. Afterwards,
# scripts/test.sh reads the .pftrace files written here on the host with Perfetto's
# own schema (scripts/check-pftrace.py).
# Run with: scripts/vm.sh bash tests/vm/trace.sh
source "$(dirname "$0")/lib.sh"

SCENARIO=$ROOT/scenarios/desktop-mix.toml
# The scenario's threads, by the names the executor gives them.
THREADS=(audio/0 video/0 ipc/0 hogs/0 batch/0)

# trace_check FILE: the decoder's JSON view of a written trace.
trace_check() { "$SCHEDKIT" trace-check "$1"; }

# jq-less JSON checks: python3 is in the VM, but it takes seconds to start under TCG,
# so the one-line JSON of trace-check is read in bash and python runs once a trace.
py() { python3 -c "$@"; }
num() { sed -n "s/.*\"$2\":\(-\{0,1\}[0-9]*\).*/\1/p" <<<"$1"; } # num JSON KEY
has_thread() { grep -q "\"threads\":\[[^]]*\"$2\"" <<<"$1"; } # has_thread JSON NAME
has_cpus() { # has_cpus JSON N: CPUs 0..N-1 are all in "cpus"
    local cpus c
    cpus=$(sed -n 's/.*"cpus":\[\([0-9,]*\)\].*/,\1,/p' <<<"$1")
    for ((c = 0; c < $2; c++)); do [[ $cpus == *",$c,"* ]] || return 1; done
}

decoded() { [ "$1" -eq 0 ] && [ -n "$(num "$2" lost)" ]; } # decoded STATUS JSON

# checks_on TRACE SUMMARY WITH_DECISIONS: the figures every recorded trace must have.
checks_on() {
    local trace=$1 summary=$2 decisions=$3 info rc
    info=$(trace_check "$trace" 2>&1); rc=$?
    echo "    trace-check: ${info:0:300}"
    # It prints `lost` only once the whole trace is decoded, and exits 0 only if the
    # trace is also well formed.
    check "$(basename "$trace") decodes with schedkit's own types" decoded "$rc" "$info"
    check "every CPU appears" has_cpus "$info" "$(nproc)"
    local t
    for t in "${THREADS[@]}"; do
        check "thread $t appears by name" has_thread "$info" "$t"
    done
    check "no event lost" [ "$(num "$info" lost)" = 0 ]
    if [ "$decisions" = yes ]; then
        check "the policy's decisions are on the timeline" [ "$(num "$info" decisions)" -gt 100 ]
    else
        check "no schedkit decision under EEVDF" [ "$(num "$info" decisions)" = 0 ]
    fi
    check "wake-up latencies are positive$([ "$decisions" = yes ] && echo ", and the summary has the policy's trips")" py '
import json,sys
s=json.load(open(sys.argv[1]))
woken=[t for t in s["tasks"] if t["wakeup"]["count"] > 0]
assert len(woken) > 10, len(woken)
bad=[(t["pid"], t["comm"], t["wakeup"]) for t in woken if not (t["wakeup"]["max_us"] > 0 and t["wakeup"]["p50_us"] >= 0)]
assert not bad, bad
assert any(t["wakeup"]["p50_us"] > 0 for t in woken), "no p50 above 0"
if sys.argv[2] == "yes":
    assert s["trips"]["policy_decisions"] > 100, s["trips"]' "$summary" "$decisions"
}

# trace_scenario LABEL EXT: 5 s of the scenario, recorded as LABEL.EXT (the .json one
# with --cost, which must say what recording cost and leave the BPF statistics off).
trace_scenario() {
    local out=$LOGS/trace-$1.$2 summary=$LOGS/trace-$1-$2.summary.json rc cost=()
    rm -f "$out" "$summary"
    [ "$2" = json ] && cost=(--cost)
    timeout 300 "$SCHEDKIT" trace -o "$out" --json "$summary" "${cost[@]}" -- \
        "$SCHEDKIT" workload run "$SCENARIO" --duration 5 --quiet \
        >"$LOGS/trace-$1-$2.log" 2>&1
    rc=$?
    check "schedkit trace ($1, .$2) exits 0 (got $rc)" [ $rc -eq 0 ]
    grep -E 'events written|LOST|recording cost|too late' "$LOGS/trace-$1-$2.log" | sed 's/^/    | /'
    check "every event was written in time order" bash -c "! grep -q 'too late' '$LOGS/trace-$1-$2.log'"
    if [ "$2" = json ]; then
        check "--cost: the programs ran, and recording took 0 to 50% of the machine" python3 -c '
import re, sys
m = re.search(r"recording cost ([0-9.]+)% .* programs ran ([0-9]+) times for ([0-9]+) ms", open(sys.argv[1]).read())
assert m, "no cost line"
pct, runs = float(m.group(1)), int(m.group(2))
assert 0 < pct < 50 and runs > 1000, (pct, runs)' "$LOGS/trace-$1-$2.log"
        check "--cost: the BPF statistics are off again" [ "$(cat /proc/sys/kernel/bpf_stats_enabled)" = 0 ]
        if [ "$3" = yes ]; then
            check "--cost: the dispatcher's records are counted and timed" python3 -c '
import re, sys
m = re.search(r"the dispatcher.s ([0-9]+) records ([0-9]+) ms", open(sys.argv[1]).read())
assert m and int(m.group(1)) > 100 and int(m.group(2)) > 0, m and m.groups()' "$LOGS/trace-$1-$2.log"
        else
            check "--cost: no dispatcher's records without a schedkit scheduler" bash -c "! grep -q 'dispatcher' '$LOGS/trace-$1-$2.log'"
        fi
    else
        check "without --cost, no cost line" bash -c "! grep -q 'recording cost' '$LOGS/trace-$1-$2.log'"
    fi
    check "it wrote the trace" [ -s "$out" ]
    check "it wrote the summary" [ -s "$summary" ]
    checks_on "$out" "$summary" "$3"
}

test_trace_under_eevdf() {
    check "no scheduler attached" [ "$(state)" = disabled ]
    trace_scenario eevdf pftrace no
    trace_scenario eevdf json no
    check "the JSON trace draws as a timeline" "$SCHEDKIT" timeline "$LOGS/trace-eevdf.json" -o "$LOGS/trace-eevdf.svg"
    check "... with a lane per CPU" [ "$(grep -o ">cpu " "$LOGS/trace-eevdf.svg" | wc -l)" -ge "$(nproc)" ]
}

test_trace_under_rustland() {
    check "rustland attaches" start_scheduler "$LOGS/trace-rustland-run.log" rustland
    trace_scenario rustland pftrace yes
    trace_scenario rustland json yes
    check "the Perfetto trace draws as a timeline" "$SCHEDKIT" timeline "$LOGS/trace-rustland.pftrace" --from 1 --to 3 -o "$LOGS/trace-rustland.svg"
    check "the scheduler is still attached" [ "$(state)" = enabled ]
}

test_run_with_trace() {
    local log=$LOGS/run-trace.log out=$LOGS/run-trace.pftrace
    rm -f "$out"
    check "rustland --trace attaches" start_scheduler "$log" rustland --trace "$out"
    "$SCHEDKIT" workload run "$SCENARIO" --duration 4 --quiet >/dev/null 2>&1
    kill -INT $SCHED_PID; wait $SCHED_PID
    check "SIGINT exits 0" [ $? -eq 0 ]
    check "it printed the summary" grep -q "events written to" "$log"
    local info; info=$(trace_check "$out" 2>&1)
    echo "    trace-check: ${info:0:200}"
    check "the run's trace has the policy's decisions" [ "$(num "$info" decisions)" -gt 100 ]
    check "... and the scheduler's own thread" [ "$(num "$info" scheduler_threads)" -ge 1 ]
}

test_stress_trace_loses_nothing() {
    local out=$LOGS/trace-stress.pftrace secs=${TRACE_STRESS_S:-60}
    check "rustland attaches" start_scheduler "$LOGS/trace-stress-run.log" rustland
    timeout $((secs * 4 + 120)) "$SCHEDKIT" trace -o "$out" -- stress-ng --aggressive -M -c 4 -f 4 \
        --affinity 4 --affinity-delay 1 --affinity-pin -t "$secs" --temp-path /tmp \
        >"$LOGS/trace-stress.log" 2>&1
    check "schedkit trace exits 0" [ $? -eq 0 ]
    grep -E 'events written' "$LOGS/trace-stress.log" | sed 's/^/    | /'
    local info; info=$(trace_check "$out" 2>&1)
    check "no event lost in ${secs} s of the stress mix" [ "$(num "$info" lost)" = 0 ]
    check "... of more than 1000 slices" [ "$(num "$info" slices)" -gt 1000 ]
    check "still attached" [ "$(state)" = enabled ]
    ls -la "$out" | sed 's/^/    /'
}

# Sends SIGINT to PID and waits up to 120 s for it to exit; the exit status is its own,
# or 124 if it was still running (then it is killed).
interrupt() { # interrupt PID
    local pid=$1 i
    kill -INT "$pid"
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "    still running 120 s after SIGINT: killed"
        kill -KILL "$pid"; wait "$pid"; return 124
    fi
    wait "$pid"
}

# Ctrl-C once the recording runs, and Ctrl-C while the tracer still loads (seconds
# under TCG). Started from a script, the background job has
# SIGINT ignored until schedkit installs its handler: one installed too late would
# leave it recording for ever.
test_ctrl_c_writes_a_valid_file() {
    local out=$LOGS/trace-ctrlc.json log=$LOGS/trace-ctrlc.log i
    rm -f "$out"
    "$SCHEDKIT" trace -o "$out" >"$log" 2>&1 &
    local pid=$!
    for ((i = 0; i < 1200; i++)); do
        grep -q "recording under" "$log" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    check "the recording starts" grep -q "recording under" "$log"
    sleep 2
    interrupt $pid
    check "Ctrl-C ends the recording with exit 0" [ $? -eq 0 ]
    check "... and the file is valid JSON" py 'import json,sys; json.load(open(sys.argv[1]))' "$out"

    out=$LOGS/trace-ctrlc-early.json
    rm -f "$out"
    "$SCHEDKIT" trace -o "$out" >"$log" 2>&1 &
    pid=$!
    # schedkit creates the output after installing its handler, before loading.
    for ((i = 0; i < 600; i++)); do
        [ -e "$out" ] && break
        sleep 0.05
    done
    check "the output is created before the tracer loads" [ -e "$out" ]
    grep -q "recording under" "$log" && echo "    (the tracer had loaded already)"
    interrupt $pid
    check "Ctrl-C while the tracer loads ends it with exit 0" [ $? -eq 0 ]
    check "... and the file is valid JSON" py 'import json,sys; json.load(open(sys.argv[1]))' "$out"
    sed 's/^/    | /' "$log" | grep -v libbpf | tail -n 2
}

refused() { # refused WHAT PATTERN COMMAND...: non-zero exit, one line, the pattern, no panic
    local what=$1 pat=$2 out rc; shift 2
    out=$("$@" 2>&1); rc=$?
    echo "    $what (exit $rc): $out"
    check "$what is refused" [ $rc -ne 0 ]
    check "... in one line" [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]
    check "... saying why" grep -qi -- "$pat" <<<"$out"
    check "... without a panic" bash -c "! grep -q panicked <<<\"\$1\"" _ "$out"
}

test_trace_bad_input() {
    refused "not root" "needs root" setpriv --reuid=65534 --regid=65534 --clear-groups "$SCHEDKIT" trace -o /tmp/x.pftrace --duration 1
    refused "an unknown extension" "pftrace" "$SCHEDKIT" trace -o /tmp/x.txt --duration 1
    refused "an unwritable file" "cannot write" "$SCHEDKIT" trace -o /proc/nope/x.pftrace --duration 1
    rm -f /tmp/x.pftrace
    refused "a temporary directory that does not exist" "TMPDIR" env TMPDIR=/tmp/none "$SCHEDKIT" trace -o /tmp/x.pftrace --duration 1
    check "... and leaves no trace file behind" [ ! -e /tmp/x.pftrace ]
    refused "a bad duration" "duration" "$SCHEDKIT" trace -o /tmp/x.pftrace --duration 1e20
    refused "a timeline of a missing file" "x.json" "$SCHEDKIT" timeline /tmp/none/x.json -o /tmp/x.svg
    check "state stays disabled" [ "$(state)" = disabled ]
}

tests=${VM_TESTS:-"test_trace_under_eevdf test_trace_under_rustland test_run_with_trace test_stress_trace_loses_nothing test_ctrl_c_writes_a_valid_file test_trace_bad_input"}
echo "kernel $(uname -r), $(nproc) CPUs, sched_ext state $(state)"
for t in $tests; do run_test "$t"; done
summary
