#!/usr/bin/env bash
# Shared helpers for vireo's benchmarks (source it from bench/<name>/run).
#
#   source "$(dirname "$0")/../lib/anchors.sh"
#
# Anchors (what vireo is compared with), installed and started on demand:
#   ensure_qemu_img            qemu-img on PATH (Debian qemu-utils)
#   ensure_libvirt             libvirtd + virtlogd running, qemu:///system reachable
#   ensure_guest               the test guest in $VIREO_BUILD_DIR/guest; sets GUEST_DIR
# Measuring and reporting:
#   time_once CMD...           wall seconds of one run (fails if CMD fails)
#   time_median N CMD...       median wall seconds of N runs
#   print_header               the table header
#   print_row NAME VIREO ANCHOR  "name | vireo | anchor | ratio" (ratio = vireo/anchor,
#                              below 1 means vireo is faster)
# Environment:
#   VIREO_BUILD_DIR            build tree with bin/ and guest/ (default: <repo>/build)
#   VIREO_BENCH_REPEAT         repetitions for time_median callers (default 5)
# The libvirt packages are deliberately not in scripts/deps: only benchmarks
# need them, and they install them here.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VIREO_ROOT="$(cd "$BENCH_ROOT/.." && pwd)"
VIREO_BUILD_DIR="${VIREO_BUILD_DIR:-$VIREO_ROOT/build}"
VIREO_BENCH_REPEAT="${VIREO_BENCH_REPEAT:-5}"
LIBVIRT_PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)
LIBVIRT_URI="qemu:///system"

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# Install the Debian packages that are missing (as root, or with sudo).
bench_apt_install() {
    local missing=() pkg status sudo=""
    for pkg in "$@"; do
        # Captured, then searched: `dpkg-query | grep -q` can fail with
        # SIGPIPE under pipefail (the scripts sourcing this set it).
        status="$(dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null || true)"
        grep -qx 'install ok installed' <<<"$status" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    bench_log "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        $sudo apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
            bench_die "cannot install ${missing[*]}"
    fi
}

ensure_qemu_img() {
    command -v qemu-img >/dev/null || bench_apt_install qemu-utils
    command -v qemu-img >/dev/null || bench_die "qemu-img not found"
}

# libvirt's QEMU driver without systemd: no sVirt labelling, run QEMU as root,
# no cgroups (the machine may have no writable cgroup tree). Appended once.
configure_libvirt_qemu() {
    local conf=/etc/libvirt/qemu.conf marker="# vireo bench: run without systemd"
    mkdir -p /etc/libvirt
    grep -qxF "$marker" "$conf" 2>/dev/null && return 0
    {
        echo ""
        echo "$marker"
        echo 'security_driver = "none"'
        echo 'user = "root"'
        echo 'group = "root"'
        echo 'cgroup_controllers = [ ]'
    } >>"$conf"
}

libvirt_reachable() { virsh -c "$LIBVIRT_URI" version >/dev/null 2>&1; }

ensure_libvirt() {
    [[ $(id -u) -eq 0 ]] || bench_die "the libvirt anchor needs root (qemu:///system)"
    bench_apt_install "${LIBVIRT_PACKAGES[@]}"
    configure_libvirt_qemu
    libvirt_reachable && return 0
    # Directories libvirt-daemon-system would create (not installed: no systemd).
    mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /run/libvirt
    # libvirtd resolves its built-in default QEMU user before it reads
    # qemu.conf, so the account libvirt-daemon-system would add must exist.
    getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
    getent passwd libvirt-qemu >/dev/null ||
        useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
            --gid libvirt-qemu libvirt-qemu
    pgrep -x virtlogd >/dev/null || virtlogd -d
    pgrep -x libvirtd >/dev/null || libvirtd -d
    local i
    for i in $(seq 100); do
        libvirt_reachable && return 0
        sleep 0.1
    done
    bench_die "libvirtd did not answer on $LIBVIRT_URI (see /var/log/libvirt/)"
}

ensure_guest() {
    GUEST_DIR="$VIREO_BUILD_DIR/guest"
    "$VIREO_ROOT/tests/guest/build-guest.sh" "$GUEST_DIR" >&2 || bench_die "cannot build the test guest"
    GUEST_DIR="$(cd "$GUEST_DIR" && pwd)"
}

# Wall seconds of one run of CMD (its output discarded); fails with CMD.
# The clock is bash's own $EPOCHREALTIME: reading it forks nothing, so only
# the command is timed (two `date` processes around it added tens of ms on a
# loaded machine to both sides of every comparison).
time_once() {
    local start end
    start=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || { bench_log "command failed: $*"; return 1; }
    end=$EPOCHREALTIME
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.4f\n", e - s }'
}

# Median wall seconds of N runs of CMD.
time_median() {
    local n=$1 i t times=()
    shift
    for ((i = 0; i < n; i++)); do
        t=$(time_once "$@") || return 1
        times+=("$t")
    done
    median "${times[@]}"
}

# Median of numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        if (NR % 2) printf "%.4f\n", v[(NR + 1) / 2]
        else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

print_header() {
    printf '%-32s | %10s | %10s | %7s\n' "benchmark" "vireo" "anchor" "ratio"
    printf '%-32s-+-%10s-+-%10s-+-%7s\n' "--------------------------------" "----------" "----------" "-------"
}

# print_row NAME VIREO ANCHOR [UNIT]: figures as given, ratio vireo/anchor.
print_row() {
    local name=$1 vireo=$2 anchor=$3 unit=${4:-s}
    local ratio
    ratio=$(awk -v a="$vireo" -v b="$anchor" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }')
    printf '%-32s | %9s%s | %9s%s | %7s\n' "$name" "$vireo" "$unit" "$anchor" "$unit" "$ratio"
}
