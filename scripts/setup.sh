#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Installs everything schedkit needs on a fresh Debian 12 machine, idempotently:
# build tools (clang >= 16 for BPF, libelf/zlib for libbpf-sys), qemu from
# bookworm-backports, virtme-ng, the workload tools, and a sched_ext kernel for the VM
# (../shared/vm-kernel when present, otherwise Debian unstable's linux-image-amd64).
# Every step checks before it installs, so a second run does nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
log() { printf 'setup: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh must run as root (or with sudo available)." >&2; exit 1; }
    SUDO=sudo
fi

# --- Debian sources: backports (qemu 10) and unstable (the kernel), pinned low. -------
src=/etc/apt/sources.list.d/debian.sources
uris=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$src" 2>/dev/null || true)
[ -n "$uris" ] || uris=$(awk '/^deb / && $3 ~ /bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$uris" ] || { echo "setup.sh: cannot find the Debian mirror in $src or /etc/apt/sources.list." >&2; exit 1; }
need_update=0
if [ ! -f /etc/apt/sources.list.d/schedkit.sources ]; then
    log "adding bookworm-backports and sid (pinned at priority 50) from $uris"
    $SUDO tee /etc/apt/sources.list.d/schedkit.sources >/dev/null <<EOS
Types: deb
URIs: $uris
Suites: bookworm-backports sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
    $SUDO tee /etc/apt/preferences.d/schedkit >/dev/null <<EOS
Package: *
Pin: release n=sid
Pin-Priority: 50

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100
EOS
    need_update=1
fi

pkgs=(kmod udev clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config bpftool
      stress-ng rt-tests linux-perf python3-pip python3-venv busybox-static)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null; then
    v=$(qemu-system-x86_64 --version | awk 'NR==1{print $4}')
    [ "${v%%.*}" -ge 8 ] 2>/dev/null && qemu_ok=1
fi
if [ ${#missing[@]} -gt 0 ] || [ $qemu_ok -eq 0 ]; then
    if [ $need_update -eq 1 ] || [ -z "$(find /var/lib/apt/lists -name '*backports*' -print -quit 2>/dev/null)" ]; then
        log "apt-get update"
        $SUDO apt-get update -qq
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [ $qemu_ok -eq 0 ]; then
        log "installing qemu-system-x86 from bookworm-backports"
        $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
    fi
fi

# clang for libbpf-cargo: it runs `clang`; point it at clang-19 without touching /usr/bin.
mkdir -p "$here/target/tools/bin"
ln -sf "$(command -v clang-19)" "$here/target/tools/bin/clang"

# --- virtme-ng -------------------------------------------------------------------------
if ! command -v vng >/dev/null; then
    log "installing virtme-ng"
    pip3 install -q virtme-ng 2>/dev/null || pip3 install -q --break-system-packages virtme-ng
fi
command -v vng >/dev/null || { echo "setup.sh: virtme-ng installed but vng is not on PATH ($PATH)." >&2; exit 1; }

# --- Perfetto's own protobuf classes, to check written traces against its schema -----
# (scripts/check-pftrace.py; the Perfetto UI itself needs a network.) Pinned versions,
# in a virtualenv of the checkout's own: nothing installed system-wide.
venv="$here/target/tools/pyvenv"
if ! "$venv/bin/python" -c 'import google.protobuf, perfetto.protos.perfetto.trace.perfetto_trace_pb2' 2>/dev/null; then
    log "installing Perfetto's protobuf classes into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check perfetto==0.59.1 protobuf==7.36.2
fi

# --- a sched_ext kernel for the guest ---------------------------------------------------
have_kernel() { for d in /lib/modules/*/; do grep -qs '^CONFIG_SCHED_CLASS_EXT=y' "$d/config" && [ -f "$d/vmlinuz" ] && return 0; done; return 1; }
if ! have_kernel; then
    shared="$here/../shared/vm-kernel"
    kdir=$(ls -d "$shared"/*/ 2>/dev/null | head -n1 || true)
    if [ -n "$kdir" ] && [ -f "$kdir/vmlinuz" ]; then
        ver=$(basename "$kdir")
        log "installing the sched_ext kernel $ver from $shared"
        $SUDO mkdir -p /lib/modules
        $SUDO cp -r "${kdir%/}" /lib/modules/
        $SUDO chmod -R u+w "/lib/modules/$ver"
    else
        log "fetching linux-image-amd64 from Debian unstable"
        tmp=$(mktemp -d)
        (cd "$tmp"
         [ -z "$(find /var/lib/apt/lists -name '*sid*' -print -quit)" ] && $SUDO apt-get update -qq
         meta=$(apt-cache -t sid depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
         ver=${meta#linux-image-}
         apt-get download -t sid "$meta" "linux-binary-$ver" "linux-modules-$ver" >/dev/null 2>&1 ||
             apt-get download -t sid "$meta" >/dev/null
         for deb in ./*.deb; do dpkg-deb -x "$deb" x; done
         $SUDO mkdir -p "/lib/modules/$ver"
         $SUDO cp -r "x/lib/modules/$ver/." "/lib/modules/$ver/" 2>/dev/null || $SUDO cp -r "x/usr/lib/modules/$ver/." "/lib/modules/$ver/"
         $SUDO cp x/boot/vmlinuz-"$ver" "/lib/modules/$ver/vmlinuz"
         $SUDO cp x/boot/config-"$ver" "/lib/modules/$ver/config")
        ver=$(cd "$tmp" && ls x/boot | sed -n 's/^vmlinuz-//p' | head -n1)
        rm -rf "$tmp"
    fi
    $SUDO depmod "$ver"
fi
have_kernel || { echo "setup.sh: no sched_ext kernel could be installed under /lib/modules." >&2; exit 1; }
log "ready"
