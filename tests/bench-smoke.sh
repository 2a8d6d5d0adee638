#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/bench-smoke.sh: the benchmark runs end to end in one VM boot (the quick way:
# one run, 2-second scenarios, a short hackbench), every scheduler attaches and stays
# attached, and the report names each of them. Runs on the host (it boots the VM
# itself through scripts/bench-vm.sh); takes about 5 minutes under TCG.
# Extra arguments go to bench-vm.sh (e.g. --no-build, --peer PATH).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d "$root/bench-results/smoke.XXXXXX" 2>/dev/null ||
      { mkdir -p "$root/bench-results"; mktemp -d "$root/bench-results/smoke.XXXXXX"; })
failed=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failed=1; fi
}

"$root/scripts/bench-vm.sh" --runs 1 --duration 2 --quick --trace --out "$out" "$@"
rc=$?
md=$out/report.md
check "bench-vm.sh exits 0 (got $rc)" [ $rc -eq 0 ]
check "report.md written" [ -s "$md" ]
check "chart.svg written and linked" grep -q '](chart.svg)' "$md"
check "chart.svg is an SVG" grep -q '<svg' "$out/chart.svg"
for s in eevdf fifo rustland; do
    check "report.md has a column for $s" grep -q "| $s |" "$md"
done
check "report.md has no ejected scheduler" bash -c "[ -s '$md' ] && ! grep -qi ejected '$md'"
check "report.md has no scheduler that failed to attach" bash -c "[ -s '$md' ] && ! grep -qi 'not attached' '$md'"
check "raw.json holds every run" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
runs = d["runs"]
for s in ("eevdf", "fifo", "rustland"):
    names = {r["benchmark"] for r in runs if r["scheduler"] == s and r["status"] == "ok"}
    assert {"game-while-building", "desktop-mix", "pingpong", "hackbench", "pipe", "cyclictest"} <= names, (s, names)
for s in d["schedulers"]:
    if s["label"] != "eevdf":
        assert s["peak_rss_kib"] and s["peak_rss_kib"] > 1024, s
assert d["meta"]["cpus"] >= 1 and d["meta"]["kernel"]
# Every traced run says what recording cost (schedkit trace --cost), a share of the machine.
traced = [r for r in runs if r["benchmark"].endswith("+trace") and r["status"] == "ok"]
assert traced, "no traced run"
for r in traced:
    assert r.get("trace_cost") is not None and 0 < r["trace_cost"] < 0.5, r
' "$out/raw.json"
for s in eevdf fifo rustland; do
    for scen in game-while-building desktop-mix pingpong; do
        check "a trace and its timeline for $s on $scen" \
            bash -c "[ -s '$out/traces/$s-$scen.pftrace' ] && grep -q '<svg' '$out/traces/$s-$scen.svg'"
    done
done
check "report.md has perf bench sched pipe" grep -q '| pipe / time per op |' "$md"
check "report.md shows the schedulers' peak RSS" grep -q '| peak RSS |' "$md"
check "report.md sets traced runs against untraced ones" grep -q '| hackbench+trace /' "$md"
check "report.md says what recording cost" grep -q '| hackbench+trace / recording cost |' "$md"
check "report.md says the runs were taken in rounds" grep -q "Each round attached every scheduler" "$md"
echo "results in $out"
[ $failed -eq 0 ] && echo "bench-smoke: PASS" || echo "bench-smoke: FAIL"
exit $failed
