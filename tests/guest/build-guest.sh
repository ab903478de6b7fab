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
#   OUTDIR/cache/*.deb                   the downloaded kernel and
#                                        qemu-guest-agent packages
#
# The kernel is the package linux-image-cloud-amd64 depends on (resolved with
# apt-cache, fetched with apt-get download, unpacked with dpkg-deb -x: nothing
# is installed on the host). The initramfs holds busybox-static, the virtio /
# ACPI / SCSI / IDE modules, tests/guest/rootfs (/init, acpid handler, the
# helpers qemu-ga runs) and Debian's qemu-guest-agent: /usr/sbin/qemu-ga from
# the package (fetched the same way), with the shared libraries and the
# dynamic loader ldd finds for it on the host (the same Debian release).
#
# Once built, a run only checks that neither this script, build-disk.sh nor
# tests/guest/rootfs changed since OUTDIR/.stamp (by time, then by a sha256 fingerprint) and
# exits: no apt, well under a second. --refresh resolves the kernel version again (a newer kernel gets a
# new OUTDIR/<kver>) and the qemu-guest-agent version (a newer package, whose
# name is in the stamp, rebuilds the initramfs). Parallel runs serialise on OUTDIR/.lock.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KERNEL_META=linux-image-cloud-amd64
QGA_PACKAGE=qemu-guest-agent
# The package that ships each shared library qemu-ga loads (its Depends and
# theirs), for the error when the host lacks one.
declare -A LIB_PACKAGES=(
    [libc.so.6]=libc6 [libm.so.6]=libc6 [ld-linux-x86-64.so.2]=libc6
    [libglib-2.0.so.0]=libglib2.0-0 [libgmodule-2.0.so.0]=libglib2.0-0
    [libpcre2-8.so.0]=libpcre2-8-0 [libnuma.so.1]=libnuma1
    [libudev.so.1]=libudev1 [liburing.so.2]=liburing2
)

# Modules the guest loads, by name; their dependencies are added (in order)
# by modprobe --show-depends at build time. Names absent from the kernel are
# skipped with a note (e.g. built-ins).
GUEST_MODULES=(
    virtio_pci virtio_mmio          # virtio transports (pc/q35, microvm)
    virtio_blk virtio_scsi sd_mod sr_mod isofs
    ata_piix                        # IDE disks/cdroms on the pc machine
    virtio_net                      # + failover, net_failover
    virtio_balloon virtio_console virtio_rng
    virtio_input                    # virtio tablet, mouse, keyboard (hotplug tests)
    virtio_mem                      # virtio-mem memory devices (plugged blocks follow memhp_default_state)
    button evdev                    # ACPI power button as /dev/input/event*
    pvpanic_mmio pvpanic_pci        # guest panic notification (ISA pvpanic, pvpanic-pci)
)
# Module parameters: SCSI scanning synchronous, so disks exist at the marker.
declare -A MODULE_ARGS=([scsi_mod]="scan=sync")

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
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

# What the initramfs and the disk are made of, besides the kernel and the
# agent's package: these scripts and rootfs/.
fingerprint() {
    (cd "$HERE" && find build-guest.sh build-disk.sh rootfs -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum; find rootfs -printf '%p %m\n' | LC_ALL=C sort) | sha256sum | cut -d' ' -f1
}

# The qemu-guest-agent .deb in use: the one in OUTDIR/cache (the cache holds
# one version, so this needs no apt), or nothing before the first build.
cached_qga_deb() {
    first_existing "$OUTDIR/cache/${QGA_PACKAGE}_"*.deb
}

# The stamp: the fingerprint, the package name (with its version) of the
# agent and the kernel in use.
stamp_line() {
    local qga
    qga="$(cached_qga_deb)"
    echo "$(fingerprint) ${qga##*/} $1"
}

up_to_date() {
    [[ $REFRESH -eq 0 && -s "$OUTDIR/vmlinuz" && -s "$OUTDIR/initrd.img" && -s "$OUTDIR/disk.qcow2" &&
        -f "$OUTDIR/.stamp" ]] &&
        [[ "$(cat "$OUTDIR/.stamp")" == "$(stamp_line "$(readlink "$OUTDIR/vmlinuz")")" ]]
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

for tool in apt-cache apt-get dpkg-deb ldd depmod modprobe cpio lz4 sgdisk mkfs.fat mcopy mkfs.ext4 grub-mkimage qemu-img; do
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

# apt_download, or else once more after apt-get update: a stale package list
# names a version the mirror no longer has.
download_deb() {
    local dir=$1 pkg=$2
    apt_download "$dir" "$pkg" && return 0
    note "download failed; refreshing the package lists once (apt-get update)"
    apt-get update -q >&2 || die "apt-get update failed"
    apt_download "$dir" "$pkg" || die "cannot download $pkg with apt-get download"
}

# Path of the downloaded .deb of linux-image-<kver>, fetching it if needed.
fetch_kernel_deb() {
    local kver=$1 pkg="linux-image-$1" cache="$OUTDIR/cache" deb
    mkdir -p "$cache"
    deb="$(first_existing "$cache/${pkg}_"*.deb)"
    if [[ -z "$deb" ]]; then
        note "downloading $pkg"
        download_deb "$cache" "$pkg"
        deb="$(first_existing "$cache/${pkg}_"*.deb)"
        [[ -n "$deb" ]] || die "apt-get download left no ${pkg}_*.deb in $cache"
    fi
    echo "$deb"
}

# The version apt would install of a package ("" if none).
apt_candidate() {
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null || true)"
    awk '$1 == "Candidate:" && $2 != "(none)" { print $2; exit }' <<<"$policy"
}

# Path of the qemu-guest-agent .deb to use: the cached one, unless --refresh
# (or none yet) finds that apt has another version; that one is downloaded
# and replaces it (one version in the cache: cached_qga_deb).
fetch_qga_deb() {
    local cache="$OUTDIR/cache" deb want part new
    mkdir -p "$cache"
    deb="$(cached_qga_deb)"
    if [[ -n "$deb" && $REFRESH -eq 0 ]]; then
        echo "$deb"
        return
    fi
    want="$(apt_candidate "$QGA_PACKAGE")"
    [[ -n "$want" || -n "$deb" ]] ||
        die "apt-cache knows no '$QGA_PACKAGE' (is bookworm main in sources.list? run apt-get update)"
    if [[ -n "$deb" && ( -z "$want" || "$(dpkg-deb -f "$deb" Version)" == "$want" ) ]]; then
        echo "$deb"
        return
    fi
    note "downloading $QGA_PACKAGE $want"
    # Into a scratch directory (named for the leftover cleanup above): the
    # cached version is replaced only by a complete download.
    part="$(mktemp -d "$cache/.download.qga.XXXXXX")"
    download_deb "$part" "$QGA_PACKAGE"
    new="$(first_existing "$part/${QGA_PACKAGE}_"*.deb)"
    [[ -n "$new" ]] || die "apt-get download left no ${QGA_PACKAGE}_*.deb in $part"
    rm -f "$cache/${QGA_PACKAGE}_"*.deb
    mv -f "$new" "$cache/"
    rm -rf "$part"
    echo "$cache/${new##*/}"
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

# qemu-ga from its package into the initramfs root $1, with every shared
# library it loads and the dynamic loader, at the paths ldd resolves them to
# on the host (/lib/x86_64-linux-gnu/, /lib64/ld-linux-x86-64.so.2): the
# initramfs has no libc of its own, and the host's libraries are the
# versions the package was built against (same Debian release). Only the
# files ldd names, not whole library directories.
install_qga() {
    local root=$1 deb=$2 unpack bin out line lib missing="" libs
    unpack="$(mktemp -d "$OUTDIR/.unpack.XXXXXX")"
    dpkg-deb -x "$deb" "$unpack"
    bin="$unpack/usr/sbin/qemu-ga"
    [[ -x "$bin" ]] || die "${deb##*/} has no usr/sbin/qemu-ga"
    # Captured first (see the busybox check above); ldd's status is not
    # enough: a missing library is a "not found" line, not a failure.
    out="$(ldd "$bin" 2>&1)" || die "ldd cannot read qemu-ga: $out"
    # "libx.so.1 => not found", or a library too old for it:
    # ".../qemu-ga: /lib/.../libx.so.1: version `X_1.2' not found (required by ...)".
    while IFS= read -r line; do
        [[ "$line" == *"not found"* ]] || continue
        if [[ "$line" == *"=> not found"* ]]; then
            lib="$(awk '{ print $1 }' <<<"$line")"
        else
            lib="$(awk '{ sub(/:$/, "", $2); print $2 }' <<<"$line")"
            lib="${lib##*/}"
        fi
        missing+="  $lib (apt-get install ${LIB_PACKAGES[$lib]:-the package that ships it}): ${line#"${line%%[![:space:]]*}"}"$'\n'
    done <<<"$out"
    [[ -z "$missing" ]] ||
        die "qemu-ga needs libraries this host lacks (see scripts/deps/test-guest.txt):"$'\n'"${missing%$'\n'}"
    # "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)" and
    # "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso.so.1 is no file.
    libs="$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")"
    [[ -n "$libs" ]] || die "ldd names no libraries for qemu-ga: $out"
    for lib in $libs; do
        mkdir -p "$root${lib%/*}"
        cp -L "$lib" "$root$lib"
    done
    cp "$bin" "$root/bin/qemu-ga"
    rm -rf "$unpack"
}

# The cpio (newc, lz4) initramfs: busybox + applet links, rootfs/, modules,
# qemu-ga (from the package $3) and its libraries.
# lz4, not gzip: the kernel unpacks it on every boot, under TCG. qemu-ga and
# its libraries are 6 MiB, more than the rest; gzip -9 made the whole 4.4 MB
# that took the kernel 0.24 s to unpack (0.13 s before qemu-ga), lz4 -9
# makes it 5.1 MB that take 0.12 s. lz4 -l: the kernel reads only the legacy
# frame format.
make_initramfs() {
    local vdir=$1 out=$2 qga_deb=$3 root
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
    # Replacing, not writing through, an applet link of the same name.
    cp -a --remove-destination "$HERE/rootfs/." "$root/"
    # Git keeps only the executable bit: root's password hashes for root only.
    chmod 600 "$root/etc/shadow"
    cp "$vdir/modules/"*.ko "$root/lib/modules/"
    cp "$vdir/load-order" "$root/lib/modules/load-order"
    install_qga "$root" "$qga_deb"
    # /dev/console for the kernel's first open, before /init mounts devtmpfs
    # (the kernel's built-in initramfs has one too, so this is best effort).
    mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | lz4 -l -9 -c -q >"$out.tmp"
    mv -f "$out.tmp" "$out"
    rm -rf "$root"
}

build() {
    local kver vdir deb tree qga inputs
    kver="$(current_kver)"
    qga="$(fetch_qga_deb)"
    # The kernel directory's inputs: scripts, rootfs/ and the agent's package.
    inputs="$(fingerprint) ${qga##*/}"
    vdir="$OUTDIR/$kver"
    mkdir -p "$vdir"
    if [[ ! -s "$vdir/vmlinuz" || ! -s "$vdir/load-order" || ! -s "$vdir/disk.qcow2" || ! -f "$vdir/.fingerprint" ||
          "$(cat "$vdir/.fingerprint")" != "$inputs" ]]; then
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
        grep -qx 'CONFIG_RD_LZ4=y' "$vdir/config" || die "$kver cannot unpack an lz4 initramfs (no CONFIG_RD_LZ4)"
        note "building initramfs ($(wc -l <"$vdir/load-order") modules)"
        make_initramfs "$vdir" "$vdir/initrd.img" "$qga"
        rm -rf "$tree"
        trap - EXIT
        "$HERE/build-disk.sh" "$vdir"
        echo "$inputs" >"$vdir/.fingerprint"
    fi
    ln -sfn "$kver/vmlinuz" "$OUTDIR/vmlinuz.new" && mv -Tf "$OUTDIR/vmlinuz.new" "$OUTDIR/vmlinuz"
    ln -sfn "$kver/initrd.img" "$OUTDIR/initrd.img.new" && mv -Tf "$OUTDIR/initrd.img.new" "$OUTDIR/initrd.img"
    ln -sfn "$kver/disk.qcow2" "$OUTDIR/disk.qcow2.new" && mv -Tf "$OUTDIR/disk.qcow2.new" "$OUTDIR/disk.qcow2"
    stamp_line "$kver/vmlinuz" >"$OUTDIR/.stamp"
    note "guest ready: $OUTDIR/vmlinuz -> $kver/vmlinuz"
}

build
