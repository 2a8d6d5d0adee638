#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The main job. On a sched_ext host (as root): build schedkit and run the rustland
# policy with live statistics until Ctrl-C. Elsewhere: set everything up, boot a
# throw-away sched_ext VM, attach rustland there, put a visible load on it (a CPU-bound
# stress and a stream of short-lived processes) while its statistics print, show
# `schedkit monitor`, then detach.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
POLICY=${POLICY:-rustland}

if [ -d /sys/kernel/sched_ext ] && [ "$(id -u)" -eq 0 ] && [ "${DEMO_IN_VM:-0}" != 1 ]; then
    export PATH="$here/target/tools/bin:$PATH"
    command -v clang >/dev/null || scripts/setup.sh
    cargo build --release -p schedkit
    exec target/release/schedkit run "$POLICY" --stats 1 "$@"
fi

if [ "${DEMO_IN_VM:-0}" = 1 ]; then
    # Inside the VM.
    cd /tmp
    echo "demo: $(uname -r), $(nproc) CPUs, sched_ext $(cat /sys/kernel/sched_ext/state)"
    "$here/target/release/schedkit" run "$POLICY" --stats 2 &
    sched=$!
    for _ in $(seq 600); do
        [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] && break
        sleep 0.1
    done
    echo "demo: /sys/kernel/sched_ext/state = $(cat /sys/kernel/sched_ext/state), root/ops = $(cat /sys/kernel/sched_ext/root/ops)"
    echo "demo: load: stress-ng -c 4 for 20 s and 1000 short processes"
    stress-ng -c 4 -t 20 --temp-path /tmp --metrics-brief 2>&1 | sed 's/^/stress-ng: /' &
    load=$!
    for _ in $(seq 1000); do /bin/true; done
    sleep 5
    echo "demo: schedkit monitor (one sample):"
    "$here/target/release/schedkit" monitor --count 1 | sed 's/^/  /'
    wait $load
    kill -INT $sched
    wait $sched
    echo "demo: detached (exit $?), state = $(cat /sys/kernel/sched_ext/state)"
    exit 0
fi

scripts/setup.sh
export PATH="$here/target/tools/bin:$PATH"
cargo build --release -p schedkit
echo "demo: this kernel has no sched_ext; booting a sched_ext VM (TCG: loading the BPF scheduler takes a while)"
exec env DEMO_IN_VM=1 POLICY="$POLICY" scripts/vm.sh env DEMO_IN_VM=1 POLICY="$POLICY" bash scripts/demo.sh
