#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# scripts/vm.sh COMMAND...
#
# Boots a throw-away VM with a sched_ext kernel (virtme-ng, the host's filesystem as the
# guest's root, this checkout writable), runs COMMAND inside as root from the checkout,
# shows its output and returns its exit code.
#
# Environment: VM_CPUS (2), VM_MEMORY (2G), VM_KERNEL (a vmlinuz; default: the newest
# sched_ext kernel under /lib/modules), VM_KVM=1 to try KVM instead of TCG.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || { echo "usage: scripts/vm.sh COMMAND..." >&2; exit 2; }
command -v vng >/dev/null || { echo "vm.sh: virtme-ng (vng) is not installed: run scripts/setup.sh first." >&2; exit 1; }

kernel=${VM_KERNEL:-}
if [ -z "$kernel" ]; then
    for d in $(ls -d /lib/modules/*/ 2>/dev/null | sort -rV); do
        if grep -qs '^CONFIG_SCHED_CLASS_EXT=y' "$d/config" && [ -f "$d/vmlinuz" ]; then
            kernel="$d/vmlinuz"; break
        fi
    done
fi
[ -n "$kernel" ] || { echo "vm.sh: no sched_ext kernel under /lib/modules: run scripts/setup.sh first." >&2; exit 1; }

kvm=(--disable-kvm)
[ "${VM_KVM:-0}" = 1 ] && kvm=()

# The guest runs a script file so that COMMAND keeps its quoting.
script=$(mktemp "$here/target/vm-cmd.XXXXXX" 2>/dev/null || { mkdir -p "$here/target"; mktemp "$here/target/vm-cmd.XXXXXX"; })
trap 'rm -f "$script"' EXIT
{
    echo "cd $(printf %q "$here")"
    echo "export PATH=$(printf %q "$here/target/tools/bin:$PATH")"
    printf '%q ' "$@"; echo
} > "$script"

# Through a pipe: vng reopens its standard output and error, which truncates them when
# they are a file (a CI log would lose everything printed before the VM started).
set +e
vng -r "$kernel" "${kvm[@]}" --cpus "${VM_CPUS:-2}" --memory "${VM_MEMORY:-2G}" \
    --rwdir "$here" --exec "bash $script" </dev/null 2>&1 | cat
exec_rc=${PIPESTATUS[0]}
exit $exec_rc
