#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# scripts/bench-guest.sh --out DIR [--runs N] [--duration S] [--quick] [--peer PATH]...
#
# The collecting half of scripts/bench-vm.sh: runs as root inside the sched_ext VM and
# only measures. In each of N rounds, for each scheduler in turn, starting one later
# each round (the kernel's default, labelled eevdf; `schedkit run fifo`; `schedkit run
# rustland`; every --peer executable) it attaches it, runs every scenarios/*.toml,
# hackbench, perf bench sched pipe and cyclictest under stress-ng once, checks after
# every run that the same scheduler is still attached, and detaches it. Every run goes
# into DIR/raw.json; `schedkit bench-report` turns that into tables and a
# chart. A run during which the scheduler was ejected is recorded as "ejected", never
# as a measurement of the default scheduler.
#
# Exit status: 0 when every scheduler attached and stayed attached, 1 otherwise.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCHEDKIT=${SCHEDKIT:-$ROOT/target/release/schedkit}
SCX=${BENCH_SCX_DIR:-/sys/kernel/sched_ext} # overridable only to test this script off a sched_ext kernel

out=
runs=3
duration=10
quick=0
trace=0
peers=()
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --peer) peers+=("$2"); shift 2 ;;
        --trace) trace=1; shift ;;
        *) echo "bench-guest.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { echo "bench-guest.sh: --out DIR is required" >&2; exit 2; }
[ -d $SCX ] || { echo "bench-guest.sh: this kernel has no sched_ext ($SCX is missing): run it through scripts/vm.sh" >&2; exit 1; }
mkdir -p "$out/logs" || exit 1
logs=$out/logs
cd /tmp || exit 1

cpus=$(nproc)
hz=$(getconf CLK_TCK)
hackbench_loops=300
[ $quick = 1 ] && hackbench_loops=30
HACKBENCH=(hackbench -g 4 -l "$hackbench_loops" -T)
pipe_loops=10000
[ $quick = 1 ] && pipe_loops=2000
PIPE=(perf bench sched pipe -l "$pipe_loops")
STRESS=(stress-ng -c $((2 * cpus)) --temp-path /tmp)
CYCLIC=(cyclictest --policy=other -p 0 -i 2000 -D "$duration" -t 1 -q -h 50000)

source "$ROOT/scripts/scx-state.sh"

json_str() { # a JSON string literal of $1
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/}
    printf '"%s"' "$s"
}

num_or_null() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] && printf '%s' "$1" || printf null; }

# CPU ticks (utime + stime) and page faults (minflt + majflt) of PID, as "TICKS FAULTS".
# The fields are counted after the last ')' because the command name may hold spaces.
proc_cost() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "- -"; return; }
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    # After ')': $1 is field 3 (state); minflt is 10, majflt 12, utime 14, stime 15.
    echo "$((${12} + ${13})) $((${8} + ${10}))"
}

# Is the scheduler under test still the one attached? Sets CHECK to what was seen.
attached_ok() { # attached_ok LABEL OPS PID
    local st op
    st=$(state); op=$(ops)
    CHECK="state=$st ops=$op"
    if [ "$1" = eevdf ]; then
        [ "$st" = disabled ]
    else
        [ "$st" = enabled ] && [ "$op" = "$2" ] && kill -0 "$3" 2>/dev/null
    fi
}

# --- metadata -------------------------------------------------------------------------
kver=$(uname -r)
kconfig=
for f in "/boot/config-$kver" "/lib/modules/$kver/config"; do
    [ -r "$f" ] && { kconfig=$f; break; }
done
config_hz=
[ -n "$kconfig" ] && config_hz=$(sed -n 's/^CONFIG_HZ=//p' "$kconfig")

# The headline scenario first, then the others; example.toml only documents the format.
scenarios=()
[ -f "$ROOT/scenarios/game-while-building.toml" ] && scenarios+=("$ROOT/scenarios/game-while-building.toml")
for f in "$ROOT"/scenarios/*.toml; do
    case $(basename "$f") in example.toml|game-while-building.toml) continue ;; esac
    scenarios+=("$f")
done

runs_file=$out/runs.part
scheds_file=$out/schedulers.part
: >"$runs_file"; : >"$scheds_file"
failures=0

add_run() { # add_run JSON-OBJECT
    [ -s "$runs_file" ] && printf ',\n' >>"$runs_file"
    printf '%s' "$1" >>"$runs_file"
}

add_sched() {
    [ -s "$scheds_file" ] && printf ',\n' >>"$scheds_file"
    printf '%s' "$1" >>"$scheds_file"
}

# --- one measured run -----------------------------------------------------------------
# measure LABEL OPS PID KIND NAME RUN: runs one benchmark, checks the scheduler before
# and after it, and appends the run to runs.part.
measure() {
    local label=$1 op=$2 pid=$3 kind=$4 name=$5 run=$6
    local tag="$label-$name-$run" figures=null status=ok rc=0 before after
    local cpu_s=null faults=null t0 t1 wall
    # With TRACE_TO=FILE the run is recorded by `schedkit trace` (its cost shows
    # against the same benchmark's untraced runs, and as the CPU time that `--cost`
    # counts: trace_cost).
    local wrap=() trace_cost=null
    [ -n "${TRACE_TO:-}" ] && wrap=("$SCHEDKIT" trace -o "$TRACE_TO" --json "${TRACE_TO%.*}.summary.json" --cost --)
    echo "  [$label] $name run $run" >&2
    if ! attached_ok "$label" "$op" "$pid"; then
        echo "    $label is no longer attached before the run ($CHECK): ejected" >&2
        add_run "{\"scheduler\":$(json_str "$label"),\"ops\":$(json_str "$op"),\"benchmark\":$(json_str "$name"),\"kind\":\"$kind\",\"run\":$run,\"status\":\"ejected\",\"check\":$(json_str "before the run: $CHECK"),\"figures\":null,\"sched_cpu_s\":null,\"sched_faults\":null,\"wall_s\":null}"
        failures=$((failures + 1))
        return 1
    fi
    [ "$label" != eevdf ] && before=$(proc_cost "$pid")
    t0=$(date +%s.%N)
    case $kind in
        workload)
            timeout $((duration * 4 + 120)) "${wrap[@]}" "$SCHEDKIT" workload run "$name_path" --quiet \
                --json "$logs/$tag.json" --duration "$duration" --label "$label" \
                >"$logs/$tag.txt" 2>&1 || rc=$?
            [ $rc = 0 ] && [ -s "$logs/$tag.json" ] && figures=$(cat "$logs/$tag.json")
            ;;
        hackbench)
            timeout 600 "${wrap[@]}" "${HACKBENCH[@]}" >"$logs/$tag.txt" 2>&1 || rc=$?
            local secs; secs=$(sed -n 's/^Time: *//p' "$logs/$tag.txt" | tail -n 1)
            [ $rc = 0 ] && [ -n "$secs" ] && figures="{\"wall_s\":$(num_or_null "$secs")}"
            ;;
        pipe)
            timeout 600 "${PIPE[@]}" >"$logs/$tag.txt" 2>&1 || rc=$?
            local us; us=$(sed -n 's/^ *\([0-9.]*\) usecs\/op.*/\1/p' "$logs/$tag.txt" | tail -n 1)
            [ $rc = 0 ] && [ -n "$us" ] && figures="{\"usecs_per_op\":$(num_or_null "$us")}"
            ;;
        cyclictest)
            "${STRESS[@]}" >"$logs/$tag-stress.txt" 2>&1 &
            local stress=$!
            sleep 1
            timeout $((duration * 4 + 60)) "${CYCLIC[@]}" >"$logs/$tag.txt" 2>&1 || rc=$?
            kill -INT $stress 2>/dev/null; wait $stress 2>/dev/null
            [ $rc = 0 ] && figures=$(cyclic_figures "$logs/$tag.txt")
            ;;
    esac
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ -n "${TRACE_TO:-}" ]; then
        local pct; pct=$(sed -n 's/^schedkit: recording cost \([0-9.]*\)%.*/\1/p' "$logs/$tag.txt" | tail -n 1)
        [ -n "$pct" ] && trace_cost=$(awk -v p="$pct" 'BEGIN { printf "%.5f", p / 100 }')
    fi
    if [ "$label" != eevdf ]; then
        after=$(proc_cost "$pid")
        if [ "${before%% *}" != - ] && [ "${after%% *}" != - ]; then
            cpu_s=$(awk -v a="${before%% *}" -v b="${after%% *}" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
            faults=$((${after##* } - ${before##* }))
        fi
    fi
    if ! attached_ok "$label" "$op" "$pid"; then
        status=ejected
        echo "    $label was ejected during the run ($CHECK)" >&2
        failures=$((failures + 1))
    elif [ $rc != 0 ] || [ "$figures" = null ]; then
        status=failed
        echo "    $name failed (exit $rc): see $logs/$tag.txt" >&2
    fi
    add_run "{\"scheduler\":$(json_str "$label"),\"ops\":$(json_str "$op"),\"benchmark\":$(json_str "$name"),\"kind\":\"$kind\",\"run\":$run,\"status\":\"$status\",\"check\":$(json_str "after the run: $CHECK"),\"figures\":$figures,\"sched_cpu_s\":$cpu_s,\"sched_faults\":$faults,\"wall_s\":$wall,\"trace_cost\":$trace_cost}"
    [ $status != ejected ]
}

# avg / max from cyclictest's summary; p99 from its histogram (1 us buckets), counting
# the overflows (beyond the last bucket) as the slowest samples.
cyclic_figures() {
    awk '
        /^[0-9]+ +[0-9]+/ { n = $2 + 0; if (n > 0) { k++; us[k] = $1 + 0; cnt[k] = n; total += n } }
        /^# Avg Latencies:/ { avg = $4 + 0 }
        /^# Max Latencies:/ { max = $4 + 0 }
        /^# Histogram Overflows:/ { over = $4 + 0 }
        END {
            all = total + over
            if (all == 0) { print "null"; exit }
            want = all * 0.99; seen = 0; p99 = max
            # The buckets come in ascending order.
            for (i = 1; i <= k; i++) { seen += cnt[i]; if (seen >= want) { p99 = us[i]; break } }
            printf "{\"avg_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"samples\":%d,\"overflows\":%d}", avg, p99, max, all, over
        }' "$1"
}

# --- traced runs (--trace) ---------------------------------------------------------------
# traced_runs LABEL OPS PID: every scenario once under `schedkit trace` (a trace and its
# timeline SVG in traces/). What recording costs is measured in the main loop instead
# (traced_pair), each traced run right after its untraced twin.
traced_runs() {
    local label=$1 op=$2 pid=$3 s name
    mkdir -p "$out/traces"
    for s in "${scenarios[@]}"; do
        name=$(basename "$s" .toml)
        name_path=$s
        TRACE_TO=$out/traces/$label-$name.pftrace measure "$label" "$op" $pid workload "$name+trace" 1 || return 1
        "$SCHEDKIT" timeline "$out/traces/$label-$name.pftrace" -o "$out/traces/$label-$name.svg" \
            >>"$logs/timelines.txt" 2>&1 || echo "    no timeline for $label-$name (see logs/timelines.txt)" >&2
    done
}

# traced_pair LABEL OPS PID KIND NAME RUN: with --trace, the run NAME+trace of KIND
# (hackbench, or the workload in name_path) recorded by `schedkit trace`, right after
# its untraced twin: traced and untraced runs alternate, so a drift of the machine over
# the benchmark does not pass for the cost of recording (they used to run in two
# blocks). The trace itself is thrown away.
traced_pair() {
    local label=$1 op=$2 pid=$3 kind=$4 name=$5 run=$6
    [ $trace = 1 ] || return 0
    # The first scenario's run 1 is the one traced_runs keeps.
    [ "$kind" = workload ] && [ $run = 1 ] && return 0
    TRACE_TO=$logs/$label-$name-trace-$run.pftrace measure "$label" "$op" $pid "$kind" "$name+trace" $run || return 1
    rm -f "$logs/$label-$name-trace-$run.pftrace"
}

# --- the schedulers, in rounds --------------------------------------------------------
# Round R attaches each scheduler in turn, runs every benchmark once (run R) under it
# and detaches it. A slow stretch of the host then falls on every scheduler alike; when
# each scheduler's runs came back to back, one such stretch could fall on all the runs
# of one scheduler, and its median with them. Round R starts with the R-th scheduler,
# so that none always comes right after the same one (what a scheduler leaves behind,
# a warm cache or a cold one, a backlog of kernel work, then falls on each in turn).
labels=(eevdf fifo rustland)
for p in "${peers[@]}"; do labels+=("$(basename "$p")"); done
# What is known of each scheduler over its rounds, by label.
declare -A s_ops s_attached s_attach_s s_error s_detach_rc s_peak s_out

sched_cmd() { # sched_cmd INDEX: the command that attaches labels[INDEX], into CMD
    case $1 in
        0) CMD=() ;;
        1) CMD=("$SCHEDKIT" run fifo) ;;
        2) CMD=("$SCHEDKIT" run rustland) ;;
        *) CMD=("${peers[$1 - 3]}") ;;
    esac
}

# round_scheduler LABEL RUN COMMAND...: attaches the scheduler (none for eevdf), runs
# every benchmark once as run RUN, and detaches it. A scheduler that failed to attach
# or was ejected is marked out (s_out) and left out of the later rounds.
round_scheduler() {
    local label=$1 run=$2; shift 2
    local pid=0 op="" attached=true error="" log=$logs/$label-scheduler.log
    echo "== $label, round $run of $runs" >&2
    if [ "$(state)" != disabled ]; then
        echo "   another scheduler is attached ($(ops)): waiting for it to leave" >&2
        wait_state disabled 60
    fi
    local attach_s t_start
    if [ $# -gt 0 ]; then
        t_start=$(date +%s.%N)
        "$@" >>"$log" 2>&1 &
        pid=$!
        local i
        attached=false
        for ((i = 0; i < 3000; i++)); do
            if [ "$(state)" = enabled ] && [ -n "$(ops)" ]; then attached=true; break; fi
            kill -0 $pid 2>/dev/null || break
            sleep 0.1
        done
        op=$(ops)
        attach_s=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        # The slowest of the attaches is the one reported.
        if [ -z "${s_attach_s[$label]:-}" ] || awk -v a="$attach_s" -v b="${s_attach_s[$label]}" 'BEGIN { exit !(a > b) }'; then
            s_attach_s[$label]=$attach_s
        fi
        if $attached && ! kill -0 $pid 2>/dev/null; then
            attached=false
        fi
        if ! $attached; then
            error="did not attach in round $run: state=$(state), process $(kill -0 $pid 2>/dev/null && echo alive || echo exited); log: $(tail -n 5 "$log")"
            echo "   $label $error" >&2
            kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
            failures=$((failures + 1))
            s_attached[$label]=false
            s_error[$label]=$error
            s_out[$label]=1
            return
        fi
        echo "   attached in $attach_s s: ops=$op pid=$pid" >&2
        s_ops[$label]=$op
    fi
    local s ok=true
    for s in "${scenarios[@]}"; do
        name_path=$s
        measure "$label" "$op" $pid workload "$(basename "$s" .toml)" $run || { ok=false; break; }
        if [ "$s" = "${scenarios[0]}" ]; then
            traced_pair "$label" "$op" $pid workload "$(basename "$s" .toml)" $run || { ok=false; break; }
        fi
    done
    if $ok; then
        measure "$label" "$op" $pid hackbench hackbench $run &&
            traced_pair "$label" "$op" $pid hackbench hackbench $run &&
            measure "$label" "$op" $pid pipe pipe $run &&
            measure "$label" "$op" $pid cyclictest cyclictest $run || ok=false
    fi
    # The kept traces, in the last round.
    $ok && [ $trace = 1 ] && [ $run = $runs ] && { traced_runs "$label" "$op" $pid || ok=false; }
    if ! $ok; then
        s_error[$label]="ejected during round $run"
        s_out[$label]=1
    fi
    [ $pid = 0 ] && return
    # Peak resident memory over the whole attach, before it is stopped; the highest of
    # the rounds is the one reported.
    local peak_rss
    peak_rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    if [ -n "$peak_rss" ] && [ "$peak_rss" -gt "${s_peak[$label]:-0}" ]; then
        s_peak[$label]=$peak_rss
    fi
    kill -INT $pid 2>/dev/null
    wait_state disabled 60 || echo "   $label did not detach within 60 s" >&2
    local i
    for ((i = 0; i < 300; i++)); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then
        # A shell-script peer started in the background ignores SIGINT.
        echo "   $label did not exit within 30 s of SIGINT: SIGTERM" >&2
        kill -TERM $pid 2>/dev/null
        for ((i = 0; i < 100; i++)); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    fi
    if kill -0 $pid 2>/dev/null; then
        echo "   $label did not exit after SIGTERM: SIGKILL" >&2
        kill -KILL $pid 2>/dev/null
    fi
    local rc=0
    wait $pid || rc=$?
    echo "   detached (exit $rc, state $(state))" >&2
    # A failed detach in any round is the one reported.
    [ "${s_detach_rc[$label]:-0}" = 0 ] && s_detach_rc[$label]=$rc
}

for ((run = 1; run <= runs; run++)); do
    for ((k = 0; k < ${#labels[@]}; k++)); do
        i=$(((k + run - 1) % ${#labels[@]}))
        [ -n "${s_out[${labels[$i]}]:-}" ] && continue
        sched_cmd "$i"
        round_scheduler "${labels[$i]}" $run "${CMD[@]}"
    done
done
for i in "${!labels[@]}"; do
    label=${labels[$i]}
    sched_cmd "$i"
    cmd=$(printf '%s ' "${CMD[@]}")
    add_sched "{\"label\":$(json_str "$label"),\"command\":$(json_str "${cmd% }"),\"ops\":$(json_str "${s_ops[$label]:-}"),\"attached\":${s_attached[$label]:-true},\"attach_s\":$(num_or_null "${s_attach_s[$label]:-}"),\"error\":$(json_str "${s_error[$label]:-}"),\"detach_rc\":$(num_or_null "${s_detach_rc[$label]:-}"),\"peak_rss_kib\":$(num_or_null "${s_peak[$label]:-}")}"
done

peers_json=
for p in "${peers[@]}"; do peers_json+="${peers_json:+,}$(json_str "$p")"; done
{
    printf '{\n"meta":{"kernel":%s,"hz":%s,"kernel_config":%s,"cpus":%d,"clk_tck":%d,' \
        "$(json_str "$kver")" "$(num_or_null "$config_hz")" "$(json_str "$kconfig")" "$cpus" "$hz"
    printf '"date":%s,"options":{"runs":%d,"rounds":true,"rotated":true,"duration_s":%s,"quick":%s,"trace":%s,"peers":[%s],' \
        "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$runs" "$(num_or_null "$duration")" \
        "$([ $quick = 1 ] && echo true || echo false)" "$([ $trace = 1 ] && echo true || echo false)" "$peers_json"
    printf '"hackbench":%s,"pipe":%s,"cyclictest":%s,"stress":%s}},\n' \
        "$(json_str "${HACKBENCH[*]}")" "$(json_str "${PIPE[*]}")" "$(json_str "${CYCLIC[*]}")" "$(json_str "${STRESS[*]}")"
    printf '"schedulers":[\n'; cat "$scheds_file"; printf '\n],\n'
    printf '"runs":[\n'; cat "$runs_file"; printf '\n]\n}\n'
} >"$out/raw.json"
rm -f "$runs_file" "$scheds_file"
echo "bench-guest.sh: $out/raw.json ($failures failure(s))" >&2
[ $failures = 0 ]
