#!/usr/bin/env bash
# Build vireo's test guest: Debian's cloud kernel + a busybox initramfs.
#
#   tests/guest/build-guest.sh [--refresh] OUTDIR
#
# Result (what tests use, see docs/dev.md):
#   OUTDIR/vmlinuz, OUTDIR/initrd.img   symlinks to the current kernel version
#   OUTDIR/disk.qcow2                    the same kernel and initramfs on a GPT
#                                        disk booted by GRUB from SeaBIOS or
#                                        OVMF (tests/guest/build-disk.sh)
#   OUTDIR/<kver>/{vmlinuz,initrd.img,disk.qcow2,config,modules/,load-order}
#   OUTDIR/cache/*.deb                   the downloaded kernel package
#
# The kernel is the package linux-image-cloud-amd64 depends on (resolved with
# apt-cache, fetched with apt-get download, unpacked with dpkg-deb -x: nothing
# is installed on the host). The initramfs holds busybox-static, the virtio /
# ACPI / SCSI / IDE modules and tests/guest/rootfs (/init, acpid handler).
#
# Once built, a run only checks that neither this script, build-disk.sh nor
# tests/guest/rootfs changed since OUTDIR/.stamp (by time, then by a sha256 fingerprint) and
# exits: no apt, well under a second. --refresh resolves the kernel version again (a newer kernel gets a
# new OUTDIR/<kver>). Parallel runs serialise on OUTDIR/.lock.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KERNEL_META=linux-image-cloud-amd64

# Modules the guest loads, by name; their dependencies are added (in order)
# by modprobe --show-depends at build time. Names absent from the kernel are
# skipped with a note (e.g. built-ins).
GUEST_MODULES=(
    virtio_pci virtio_mmio          # virtio transports (pc/q35, microvm)
    virtio_blk virtio_scsi sd_mod sr_mod isofs
    ata_piix                        # IDE disks/cdroms on the pc machine
    virtio_net                      # + failover, net_failover
    virtio_balloon virtio_console virtio_rng
    button evdev                    # ACPI power button as /dev/input/event*
    pvpanic_mmio pvpanic_pci        # guest panic notification (ISA pvpanic, pvpanic-pci)
)
# Module parameters: SCSI scanning synchronous, so disks exist at the marker.
declare -A MODULE_ARGS=([scsi_mod]="scan=sync")

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "build-guest: error: $*" >&2; exit 1; }
note() { echo "build-guest: $*" >&2; }

REFRESH=0
OUTDIR=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --refresh) REFRESH=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) [[ -z "$OUTDIR" ]] || die "only one OUTDIR expected"; OUTDIR="$1"; shift ;;
    esac
done
[[ -n "$OUTDIR" ]] || { usage >&2; exit 2; }
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"

# What the initramfs and the disk are made of, besides the kernel: these
# scripts and rootfs/.
fingerprint() {
    (cd "$HERE" && find build-guest.sh build-disk.sh rootfs -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum; find rootfs -printf '%p %m\n' | LC_ALL=C sort) | sha256sum | cut -d' ' -f1
}

up_to_date() {
    [[ $REFRESH -eq 0 && -s "$OUTDIR/vmlinuz" && -s "$OUTDIR/initrd.img" && -s "$OUTDIR/disk.qcow2" &&
        -f "$OUTDIR/.stamp" ]] &&
        [[ "$(cat "$OUTDIR/.stamp")" == "$(fingerprint) $(readlink "$OUTDIR/vmlinuz")" ]]
}

# Cheapest check first (no fingerprint, one process): nothing changed since
# the stamp was written.
unchanged_since_stamp() {
    [[ $REFRESH -eq 0 && -s "$OUTDIR/vmlinuz" && -s "$OUTDIR/initrd.img" && -s "$OUTDIR/disk.qcow2" &&
        -f "$OUTDIR/.stamp" && "$OUTDIR/.stamp" -nt "$HERE/build-guest.sh" &&
        "$OUTDIR/.stamp" -nt "$HERE/build-disk.sh" ]] &&
        [[ -z "$(find "$HERE/rootfs" -newer "$OUTDIR/.stamp" -print -quit)" ]]
}

unchanged_since_stamp && exit 0
# Touched but identical inputs: refresh the stamp's time for next run.
up_to_date && { touch "$OUTDIR/.stamp"; exit 0; }
exec 9>"$OUTDIR/.lock"
flock 9
# Another run may have finished the build while we waited for the lock.
up_to_date && exit 0

for tool in apt-cache apt-get dpkg-deb depmod modprobe cpio gzip sgdisk mkfs.fat mcopy mkfs.ext4 grub-mkimage qemu-img; do
    command -v "$tool" >/dev/null || die "'$tool' not found (install the packages in scripts/deps/test-guest.txt)"
done
# Output is captured before it is searched: under pipefail, `busybox --list |
# grep -q acpid` fails whenever grep exits at the match before busybox has
# written everything (SIGPIPE, status 141), so a present busybox looked absent.
applets="$( [[ -x /bin/busybox ]] && /bin/busybox --list 2>/dev/null || true)"
grep -qx acpid <<<"$applets" ||
    die "/bin/busybox with acpid not found (apt-get install busybox-static)"
# The initramfs has no libc: /bin/busybox must be the static build (the
# package busybox installs a dynamically linked one at the same path).
owner="$(dpkg -S /bin/busybox 2>/dev/null || true)"
grep -q '^busybox-static:' <<<"$owner" ||
    die "/bin/busybox does not come from busybox-static (apt-get install busybox-static)"
# Leftovers of an interrupted run (we hold the lock, so none is in use).
rm -rf "$OUTDIR"/.unpack.* "$OUTDIR"/.initramfs.* "$OUTDIR"/cache/.download.* "$OUTDIR"/*/.disk.*

# The versioned package the meta package depends on, e.g. linux-image-6.1.0-56-cloud-amd64.
# apt-cache's answer is captured first: awk stops at the first match, which
# in a pipeline could kill apt-cache with SIGPIPE (a failure under pipefail);
# an unknown package is an empty answer, which the caller reports.
resolve_kernel_package() {
    local deps
    deps="$(apt-cache depends "$KERNEL_META" 2>/dev/null || true)"
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }' <<<"$deps"
}

# The kernel version to use: the one OUTDIR already has, unless --refresh.
current_kver() {
    local link
    link="$(readlink "$OUTDIR/vmlinuz" 2>/dev/null || true)"
    if [[ $REFRESH -eq 0 && "$link" == */vmlinuz && -s "$OUTDIR/${link%/vmlinuz}/vmlinuz" ]]; then
        echo "${link%/vmlinuz}"
        return
    fi
    local pkg
    pkg="$(resolve_kernel_package)"
    [[ -n "$pkg" ]] || die "apt-cache knows no '$KERNEL_META' (is bookworm main in sources.list? run apt-get update)"
    echo "${pkg#linux-image-}"
}

# apt-get download PKG into DIR; a few tries, since a concurrent apt run or a
# network hiccup can make one attempt fail.
apt_download() {
    local dir=$1 pkg=$2 try
    for try in 1 2 3; do
        # apt-get download writes to the current directory; _apt cannot write
        # there, which apt reports as a harmless warning (filtered out).
        # Into a scratch directory first, so an interrupted download never
        # leaves a truncated .deb in the cache.
        local part
        part="$(mktemp -d "$dir/.download.XXXXXX")"
        if (cd "$part" && apt-get download -q "$pkg" 2>&1 | grep -v 'Download is performed unsandboxed' >&2
            exit "${PIPESTATUS[0]}"); then
            mv -f "$part"/*.deb "$dir"/ && rm -rf "$part" && return 0
        fi
        rm -rf "$part"
        [[ $try -lt 3 ]] && sleep $((try * 3))
    done
    return 1
}

# The first of its arguments that exists (a glob's first match, sorted as ls
# sorts), or nothing; no `ls | head` pipeline to die of SIGPIPE under pipefail.
first_existing() {
    local f
    for f in "$@"; do
        if [[ -e "$f" ]]; then
            echo "$f"
            return 0
        fi
    done
}

# Path of the downloaded .deb of linux-image-<kver>, fetching it if needed.
fetch_kernel_deb() {
    local kver=$1 pkg="linux-image-$1" cache="$OUTDIR/cache" deb
    mkdir -p "$cache"
    deb="$(first_existing "$cache/${pkg}_"*.deb)"
    if [[ -z "$deb" ]]; then
        note "downloading $pkg"
        if ! apt_download "$cache" "$pkg"; then
            # A stale package list names a version the mirror no longer has.
            note "download failed; refreshing the package lists once (apt-get update)"
            apt-get update -q >&2 || die "apt-get update failed"
            apt_download "$cache" "$pkg" || die "cannot download $pkg with apt-get download"
        fi
        deb="$(first_existing "$cache/${pkg}_"*.deb)"
        [[ -n "$deb" ]] || die "apt-get download left no ${pkg}_*.deb in $cache"
    fi
    echo "$deb"
}

# Copy the wanted modules (and their dependencies) from an unpacked kernel
# tree into $dest/modules, write $dest/load-order ("name args" per line).
collect_modules() {
    local tree=$1 kver=$2 dest=$3
    depmod -b "$tree" "$kver"
    mkdir -p "$dest/modules"
    : >"$dest/load-order"
    local -A seen=()
    local mod line path name
    for mod in "${GUEST_MODULES[@]}"; do
        if ! modprobe -d "$tree" -S "$kver" --show-depends "$mod" >"$dest/deps.tmp" 2>/dev/null; then
            note "module $mod not in $kver, skipped"
            continue
        fi
        while read -r line; do
            # "insmod /path/x.ko [args]" for modules, "builtin x" for built-ins.
            [[ "$line" == insmod\ * ]] || continue
            path="$(awk '{print $2}' <<<"$line")"
            name="$(basename "$path")"
            name="${name%%.ko*}"
            [[ -n "${seen[$name]:-}" ]] && continue
            seen[$name]=1
            case "$path" in
                *.ko.xz) xz -dc "$path" >"$dest/modules/$name.ko" ;;
                *.ko.zst) zstd -qdc "$path" >"$dest/modules/$name.ko" ;;
                *.ko.gz) gzip -dc "$path" >"$dest/modules/$name.ko" ;;
                *) cp "$path" "$dest/modules/$name.ko" ;;
            esac
            echo "$name ${MODULE_ARGS[$name]:-}" >>"$dest/load-order"
        done <"$dest/deps.tmp"
    done
    rm -f "$dest/deps.tmp"
}

# The cpio (newc, gzip) initramfs: busybox + applet links, rootfs/, modules.
make_initramfs() {
    local vdir=$1 out=$2 root
    root="$(mktemp -d "$OUTDIR/.initramfs.XXXXXX")"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,root,etc,lib/modules}
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [[ "$applet" == busybox ]] || ln -s busybox "$root/bin/$applet"
    done
    ln -s bin "$root/sbin"
    mkdir -p "$root/usr"
    ln -s ../bin "$root/usr/bin"
    ln -s ../bin "$root/usr/sbin"
    cp -a "$HERE/rootfs/." "$root/"
    cp "$vdir/modules/"*.ko "$root/lib/modules/"
    cp "$vdir/load-order" "$root/lib/modules/load-order"
    # /dev/console for the kernel's first open, before /init mounts devtmpfs
    # (the kernel's built-in initramfs has one too, so this is best effort).
    mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9 >"$out.tmp"
    mv -f "$out.tmp" "$out"
    rm -rf "$root"
}

build() {
    local kver vdir deb tree
    kver="$(current_kver)"
    vdir="$OUTDIR/$kver"
    mkdir -p "$vdir"
    if [[ ! -s "$vdir/vmlinuz" || ! -s "$vdir/load-order" || ! -s "$vdir/disk.qcow2" || ! -f "$vdir/.fingerprint" ||
          "$(cat "$vdir/.fingerprint")" != "$(fingerprint)" ]]; then
        deb="$(fetch_kernel_deb "$kver")"
        tree="$(mktemp -d "$OUTDIR/.unpack.XXXXXX")"
        # shellcheck disable=SC2064
        trap "rm -rf '$tree'" EXIT
        note "unpacking $(basename "$deb")"
        dpkg-deb -x "$deb" "$tree"
        [[ -s "$tree/boot/vmlinuz-$kver" ]] || die "$(basename "$deb") has no boot/vmlinuz-$kver"
        rm -rf "$vdir/modules"
        collect_modules "$tree" "$kver" "$vdir"
        # Replaced atomically: a test may be booting the previous build.
        cp "$tree/boot/vmlinuz-$kver" "$vdir/vmlinuz.tmp" && mv -f "$vdir/vmlinuz.tmp" "$vdir/vmlinuz"
        cp "$tree/boot/config-$kver" "$vdir/config"
        note "building initramfs ($(wc -l <"$vdir/load-order") modules)"
        make_initramfs "$vdir" "$vdir/initrd.img"
        rm -rf "$tree"
        trap - EXIT
        "$HERE/build-disk.sh" "$vdir"
        fingerprint >"$vdir/.fingerprint"
    fi
    ln -sfn "$kver/vmlinuz" "$OUTDIR/vmlinuz.new" && mv -Tf "$OUTDIR/vmlinuz.new" "$OUTDIR/vmlinuz"
    ln -sfn "$kver/initrd.img" "$OUTDIR/initrd.img.new" && mv -Tf "$OUTDIR/initrd.img.new" "$OUTDIR/initrd.img"
    ln -sfn "$kver/disk.qcow2" "$OUTDIR/disk.qcow2.new" && mv -Tf "$OUTDIR/disk.qcow2.new" "$OUTDIR/disk.qcow2"
    echo "$(fingerprint) $kver/vmlinuz" >"$OUTDIR/.stamp"
    note "guest ready: $OUTDIR/vmlinuz -> $kver/vmlinuz"
}

build
