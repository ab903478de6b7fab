#!/usr/bin/env bash
# Build vireo's disk-booted test guest from a built direct-boot guest:
#
#   tests/guest/build-disk.sh VDIR
#
# VDIR is a kernel directory of tests/guest/build-guest.sh (it calls this
# script), holding vmlinuz and initrd.img. Result: VDIR/disk.qcow2, a GPT disk
# that boots that kernel and initramfs (so the same VIREO-GUEST-READY marker
# on ttyS0) from firmware, as installed guests do:
#
#   1  BIOS boot partition (1 MiB)  GRUB i386-pc core.img (SeaBIOS: the MBR's
#                                   boot.img loads it)
#   2  EFI system partition (FAT16) EFI/BOOT/BOOTX64.EFI = Debian's signed shim,
#                                   EFI/BOOT/grubx64.efi = Debian's signed GRUB
#                                   (OVMF with or without secure boot; the
#                                   removable-media path needs no NVRAM entry)
#   3  root (ext4, fixed UUID)      /boot/vmlinuz, /boot/initrd.img (the kernel
#                                   is Debian's signed one), /boot/grub/grub.cfg
#
# Every GRUB finds the root partition by its filesystem UUID, so the disk's
# bus and the other disks (a cdrom) do not matter. Built without root: the
# partitions are made as files (mkfs.fat + mtools, mkfs.ext4 -d) and written
# into the image at their offsets; GRUB's boot sectors are patched here as
# grub-bios-setup would (boot.img's core.img sector, diskboot's blocklist).
set -euo pipefail

die() { echo "build-disk: error: $*" >&2; exit 1; }
note() { echo "build-disk: $*" >&2; }

[[ $# -eq 1 ]] || die "usage: build-disk.sh VDIR"
VDIR="$(cd "$1" && pwd)"
[[ -s "$VDIR/vmlinuz" && -s "$VDIR/initrd.img" ]] || die "$VDIR has no vmlinuz and initrd.img"

GRUB_PC=/usr/lib/grub/i386-pc
SHIM=/usr/lib/shim/shimx64.efi.signed
GRUB_EFI=/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed
for tool in sgdisk mkfs.fat mmd mcopy mkfs.ext4 grub-mkimage qemu-img; do
    command -v "$tool" >/dev/null || die "'$tool' not found (install the packages in scripts/deps/test-guest.txt)"
done
for f in "$GRUB_PC/boot.img" "$GRUB_PC/diskboot.img" "$SHIM" "$GRUB_EFI"; do
    [[ -s "$f" ]] || die "$f not found (install the packages in scripts/deps/test-guest.txt)"
done

# Same kernel command line as the direct-boot guest (kGuestCmdline in
# tests/support/guest.hpp).
CMDLINE="console=ttyS0 quiet panic=-1"
ROOT_UUID=5e1f0c3a-7a1d-4c6e-9b2f-0d15c0ffee15
MIB=2048                                   # sectors
BIOS_START=$((1 * MIB)) BIOS_SIZE=$((1 * MIB))
ESP_START=$((2 * MIB)) ESP_SIZE=$((16 * MIB))
ROOT_START=$((18 * MIB))
# Root: the kernel, the initramfs and a quarter more for the filesystem.
payload=$(( ($(stat -Lc %s "$VDIR/vmlinuz") + $(stat -Lc %s "$VDIR/initrd.img")) / 1048576 ))
ROOT_SIZE=$(( (payload + payload / 4 + 4) * MIB ))
TOTAL=$((ROOT_START + ROOT_SIZE + MIB))    # + the backup GPT

WORK="$(mktemp -d "$VDIR/.disk.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Write the little-endian N-byte integer VALUE at byte OFFSET of FILE.
put_le() {
    local file=$1 offset=$2 bytes=$3 value=$4 i hex=""
    for ((i = 0; i < bytes; i++)); do
        hex+=$(printf '\\x%02x' $(( (value >> (8 * i)) & 255 )))
    done
    printf '%b' "$hex" | dd of="$file" bs=1 seek="$offset" conv=notrunc status=none
}

# Copy FILE into the image at sector SECTOR.
put_at() { dd if="$2" of="$WORK/disk.raw" bs=512 seek="$1" conv=notrunc,sparse status=none; }

# -- GRUB's configuration: one file on the root partition for every GRUB.
mkdir -p "$WORK/root/boot/grub"
cp "$VDIR/vmlinuz" "$WORK/root/boot/vmlinuz"
cp "$VDIR/initrd.img" "$WORK/root/boot/initrd.img"
cat >"$WORK/root/boot/grub/grub.cfg" <<EOF
# vireo's disk test guest (tests/guest/build-disk.sh): no menu, boot at once.
search --no-floppy --fs-uuid --set=root $ROOT_UUID
linux /boot/vmlinuz $CMDLINE
initrd /boot/initrd.img
boot
EOF
# The signed EFI GRUB reads \$prefix/grub.cfg, prefix being /EFI/debian on
# the partition it was loaded from; this one hands over to the root's.
cat >"$WORK/esp-grub.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
configfile \$prefix/grub.cfg
EOF
# core.img's own (embedded) configuration: find the root, then normal mode
# reads \$prefix/grub.cfg.
cat >"$WORK/core.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
EOF

# -- The partitions, as files.
note "root partition (ext4, $((ROOT_SIZE / MIB)) MiB)"
truncate -s $((ROOT_SIZE * 512)) "$WORK/root.img"
# No journal (nothing writes it), no metadata_csum_seed/orphan_file: every
# feature GRUB 2.06 reads.
mkfs.ext4 -q -F -L vireo-root -U "$ROOT_UUID" -O ^has_journal,^metadata_csum_seed,^orphan_file \
    -E root_owner=0:0 -d "$WORK/root" "$WORK/root.img" >&2

note "EFI system partition (FAT16, $((ESP_SIZE / MIB)) MiB)"
truncate -s $((ESP_SIZE * 512)) "$WORK/esp.img"
mkfs.fat -F 16 -n VIREO-ESP "$WORK/esp.img" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i "$WORK/esp.img" "$SHIM" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$WORK/esp.img" "$GRUB_EFI" ::/EFI/BOOT/grubx64.efi
mcopy -i "$WORK/esp.img" "$WORK/esp-grub.cfg" ::/EFI/debian/grub.cfg

note "GRUB i386-pc core.img"
grub-mkimage -O i386-pc -d "$GRUB_PC" -o "$WORK/core.img" -c "$WORK/core.cfg" -p /boot/grub \
    biosdisk part_gpt ext2 search search_fs_uuid normal linux configfile echo test
core_sectors=$(( ($(stat -c %s "$WORK/core.img") + 511) / 512 ))
[[ $core_sectors -le $BIOS_SIZE ]] || die "core.img ($core_sectors sectors) does not fit the BIOS boot partition"
# diskboot.img (core.img's first sector) loads the rest: its blocklist
# (at 512-12: start sector u64, count u16) names the sectors after it.
put_le "$WORK/core.img" 500 8 $((BIOS_START + 1))
put_le "$WORK/core.img" 508 2 $((core_sectors - 1))

# -- The disk: GPT, the partitions, the MBR boot code.
note "disk image"
truncate -s $((TOTAL * 512)) "$WORK/disk.raw"
sgdisk -o \
    -n 1:$BIOS_START:+$BIOS_SIZE -t 1:ef02 -c 1:bios \
    -n 2:$ESP_START:+$ESP_SIZE -t 2:ef00 -c 2:esp \
    -n 3:$ROOT_START:+$ROOT_SIZE -t 3:8300 -c 3:root \
    "$WORK/disk.raw" >/dev/null
put_at $BIOS_START "$WORK/core.img"
put_at $ESP_START "$WORK/esp.img"
put_at $ROOT_START "$WORK/root.img"
# boot.img's code into the protective MBR (its first 440 bytes: the disk
# signature and the partition table stay), pointed at core.img (u64 at 0x5c).
dd if="$GRUB_PC/boot.img" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
put_le "$WORK/disk.raw" $((0x5c)) 8 $BIOS_START

qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
# Replaced atomically: a test may be booting the previous image.
mv -f "$WORK/disk.qcow2" "$VDIR/disk.qcow2"
note "disk guest ready: $VDIR/disk.qcow2 ($((TOTAL / MIB)) MiB virtual)"
