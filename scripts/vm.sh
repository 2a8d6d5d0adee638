#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# scripts/vm.sh COMMAND...
#
# Boots a throw-away VM with a sched_ext kernel (virtme-ng, the host's filesystem as the
# guest's root, this checkout writable), runs COMMAND inside as root from the checkout,
# shows its output and returns its exit code. The guest kernel's console (errors and
# warnings) is kept in target/vm-logs/vm-*.log, and its tail shown when the VM fails.
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

# The guest's kernel console (its serial port) goes to a file under target/vm-logs/, at
# loglevel 5: errors and warnings, an oops and a panic, but not the boot chatter, so that
# a guest that dies is explained without slowing the console down in normal runs. Its
# lines carry the kernel's time stamp ("[   12.345678] "); everything after the first of
# them that does not is COMMAND's output, which is shown (the lines before it are the
# firmware's and the boot loader's; the two KASLR lines are the kernel's, unstamped).
logs="$here/target/vm-logs"
mkdir -p "$logs"
{ ls -1t "$logs"/vm-*.log 2>/dev/null || true; } | tail -n +20 | xargs -r rm -f
console="$logs/vm-$(date +%Y%m%d-%H%M%S)-$$.log"
# A kernel line's beginning (an extended regular expression, for bash and for grep).
stamp='^\[ *[0-9]+\.[0-9]{6}\] '

# Each line to the console file; COMMAND's lines on to standard output, as they come
# (a line at a time: awk would read its input in blocks and hold a test's output back).
split_console() { # split_console FILE
    local line booted=0
    while IFS= read -r line || [ -n "$line" ]; do
        printf '%s\n' "$line" >>"$1"
        if [[ $line =~ $stamp ]]; then
            booted=1
        elif [ $booted = 1 ] && ! [[ $line =~ ^(Memory|Poking)\ KASLR\  ]]; then
            printf '%s\n' "$line"
        fi
    done
}

# Through a pipe: vng reopens its standard output and error, which truncates them when
# they are a file (a CI log would lose everything printed before the VM started).
set +e
vng -r "$kernel" "${kvm[@]}" --cpus "${VM_CPUS:-2}" --memory "${VM_MEMORY:-2G}" \
    --verbose --append loglevel=5 \
    --rwdir "$here" --exec "bash $script" </dev/null 2>&1 |
    split_console "$console"
exec_rc=${PIPESTATUS[0]}
set -e
if [ "$exec_rc" -ne 0 ]; then
    echo "vm.sh: the VM exited with $exec_rc; the guest kernel's last messages (all in $console):" >&2
    { grep -E "$stamp" "$console" || true; } | tail -n 30 | sed 's/^/    /' >&2
fi
exit $exec_rc
