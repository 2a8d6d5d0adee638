#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# scripts/trace-vm.sh [--duration S] [--out DIR] [--no-build] SCENARIO.toml [POLICY]...
#
# Records SCENARIO under the kernel's default scheduler (eevdf) and under each POLICY
# (default: rustland), one after the other in ONE sched_ext VM boot (scripts/vm.sh),
# with `schedkit trace`, and draws each run's CPU lanes with `schedkit timeline`.
# Writes, for each scheduler S, into DIR (default trace-results/<timestamp>/):
#   S.pftrace        the timeline (open it in ui.perfetto.dev)
#   S.svg            its CPU lanes, from second 1 to second 3 of the run
#   S.summary.json   per task and process: wake-up latency, run time, switches
#   S.txt            the scenario's report and the summary's table
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
duration=5
out=
build=1
usage() { sed -n '4p' "$0" | sed 's/^# //' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --duration) [ $# -ge 2 ] || usage; duration=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "trace-vm.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
scenario=$1; shift
policies=("$@")
[ ${#policies[@]} -gt 0 ] || policies=(rustland)
[ -f "$scenario" ] || { echo "trace-vm.sh: $scenario is not a file." >&2; exit 2; }
[[ $duration =~ ^[1-9][0-9]*$ ]] || { echo "trace-vm.sh: --duration takes whole seconds (1 or more), not '$duration'." >&2; exit 2; }
scenario=$(realpath "$scenario")

[ -n "$out" ] || out=$here/trace-results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$out"
out=$(realpath "$out")
case $out in "$here"/*) ;; *) echo "trace-vm.sh: --out must be inside $here (the only place the VM can write)." >&2; exit 2 ;; esac

if [ $build = 1 ]; then
    (cd "$here" && cargo build --release -p schedkit)
fi

guest=$(mktemp "$here/target/trace-guest.XXXXXX.sh")
trap 'rm -f "$guest"' EXIT
cat >"$guest" <<EOF
set -u
S=$here/target/release/schedkit
source $here/scripts/scx-state.sh
rc=0
record() { # record LABEL
    "\$S" trace -o "$out/\$1.pftrace" --json "$out/\$1.summary.json" -- \\
        "\$S" workload run "$scenario" --duration $duration --quiet >"$out/\$1.txt" 2>&1 || rc=1
    "\$S" timeline "$out/\$1.pftrace" --from 1 --to 3 -o "$out/\$1.svg" || rc=1
}
record eevdf
for p in ${policies[*]}; do
    "\$S" run "\$p" >"$out/\$p-scheduler.log" 2>&1 &
    pid=\$!
    wait_state enabled 180 || { echo "\$p did not attach" >&2; rc=1; continue; }
    record "\$p"
    kill -INT \$pid; wait \$pid || rc=1
    wait_state disabled 60
done
exit \$rc
EOF
"$here/scripts/vm.sh" bash "$guest"
echo "trace-vm.sh: results in $out"
ls "$out"
