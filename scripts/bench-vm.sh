#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# scripts/bench-vm.sh [--runs N] [--peer PATH]... [--duration S] [--quick] [--out DIR]
#                     [--trace] [--no-build]
#
# Benchmarks the kernel's default scheduler (eevdf), `schedkit run fifo`,
# `schedkit run rustland` and every --peer sched_ext scheduler executable side by side
# in ONE sched_ext VM boot (scripts/vm.sh), as docs/benchmarks.md asks: every scenario
# in scenarios/, hackbench, and cyclictest (SCHED_OTHER) under stress-ng, N runs each,
# with an attachment check after every run.
#
#   --runs N        runs of each benchmark per scheduler (default 3)
#   --duration S    seconds per scenario and per cyclictest (default 10)
#   --quick         hackbench with 30 loops instead of 300 (for CI)
#   --peer PATH     another sched_ext scheduler executable to compare (repeatable);
#                   labelled by its file name
#   --out DIR       where the results go (default bench-results/<timestamp>/)
#   --trace         also run every scenario once under `schedkit trace` per scheduler
#                   (DIR/traces/SCHEDULER-SCENARIO.pftrace, .svg and .summary.json),
#                   and hackbench and the first scenario N times traced, as
#                   "hackbench+trace" and "SCENARIO+trace": what recording costs
#   --no-build      use target/release/schedkit as it is
#
# Writes DIR/raw.json (every run), DIR/report.md (medians and ratios to eevdf) and
# DIR/chart.svg (linked from report.md). Exits non-zero if a scheduler failed to attach
# or was ejected.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
runs=3
duration=10
quick=0
trace=0
build=1
out=
peers=()
usage() { sed -n '4,5p' "$0" | sed 's/^# //' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
        --duration) [ $# -ge 2 ] || usage; duration=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --trace) trace=1; shift ;;
        --peer) [ $# -ge 2 ] || usage; peers+=("$2"); shift 2 ;;
        --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '4,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-vm.sh: unknown option $1" >&2; usage ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "bench-vm.sh: --runs takes a positive whole number, not '$runs'." >&2; exit 2; }
[[ $duration =~ ^[1-9][0-9]*$ ]] || { echo "bench-vm.sh: --duration takes whole seconds (1 or more), not '$duration'." >&2; exit 2; }

guest_args=(--runs "$runs" --duration "$duration")
[ $quick = 1 ] && guest_args+=(--quick)
[ $trace = 1 ] && guest_args+=(--trace)
for p in "${peers[@]}"; do
    [ -x "$p" ] || { echo "bench-vm.sh: --peer $p is not an executable file." >&2; exit 2; }
    # The VM sees the host's filesystem: an absolute path works inside it.
    guest_args+=(--peer "$(realpath "$p")")
done

stamp=$(date -u +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$here/bench-results/$stamp
mkdir -p "$out"
out=$(realpath "$out")
# Only the checkout is writable in the VM: the guest writes into a staging directory
# in it, and the results move to --out afterwards.
stage=$here/bench-results/.stage-$stamp-$$
mkdir -p "$stage"
trap 'rm -rf "$stage"' EXIT

if [ $build = 1 ]; then
    (cd "$here" && cargo build --release -p schedkit)
fi
[ -x "$here/target/release/schedkit" ] || { echo "bench-vm.sh: target/release/schedkit is missing: run cargo build --release -p schedkit." >&2; exit 1; }

start=$(date +%s)
guest_rc=0
"$here/scripts/vm.sh" "$here/scripts/bench-guest.sh" --out "$stage" "${guest_args[@]}" || guest_rc=$?
[ -s "$stage/raw.json" ] || { echo "bench-vm.sh: the VM run wrote no results (exit $guest_rc); logs, if any, in $stage/logs." >&2; trap - EXIT; exit 1; }
cp -r "$stage/." "$out/"

report_rc=0
"$here/target/release/schedkit" bench-report "$out/raw.json" --out "$out" || report_rc=$?
echo
cat "$out/report.md" 2>/dev/null || true
echo
echo "bench-vm.sh: $(( $(date +%s) - start )) s in the VM"
echo "  raw runs:  $out/raw.json"
echo "  table:     $out/report.md"
echo "  chart:     $out/chart.svg"
echo "  logs:      $out/logs/"
[ $guest_rc = 0 ] && [ $report_rc = 0 ]
