#!/bin/bash
# A bootable Debian 12 disk made from Debian's packages, as a user would bring one (test/e2e-fullos.test.ts):
# systemd, the cloud kernel, cloud-init, qemu-guest-agent, openssh-server, ifupdown + isc-dhcp-client, locales
# with en_US.UTF-8 generated (cloud-init's locale module sets it and fails without it, and then
# `cloud-init status --wait` ends with an error before the user-data's scripts have run). No D-Bus: systemd's
# logind does not run, so the guest honours neither the ACPI button nor qemu-ga's guest-shutdown (hull's stop
# falls back to poweroff through the agent), as in the issue's own image.
# Usage: debian-disk.sh OUT.qcow2   (OUT is written whole, or not at all)
#
# Layout (MBR, no partition device nodes needed: each file system is made in a file and copied in):
#   partition 1 at 1 MiB: ext4 "root", extlinux installed in it; syslinux's mbr.bin in the first 440 bytes
#     boots it with BIOS (SeaBIOS)
#   partition 2: a FAT EFI system partition (type ef) with systemd-boot as the removable-media loader
#     \EFI\BOOT\BOOTX64.EFI, the kernel and the initramfs: boots with UEFI (OVMF reads MBR partition tables)
set -euo pipefail
out=$1
work=$(mktemp -d "${out}.work.XXXXXX")
mnt=""
cleanup() {
  if [ -n "$mnt" ] && mountpoint -q "$mnt"; then umount "$mnt"; fi
  [ -n "${HULL_KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "debian-disk.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

root="$work/root"
mmdebstrap --quiet --variant=minbase \
  --include=systemd-sysv,udev,linux-image-cloud-amd64,cloud-init,qemu-guest-agent,openssh-server,ifupdown,isc-dhcp-client,netbase,systemd-boot-efi,iproute2,locales \
  --customize-hook='echo "LABEL=root / ext4 defaults 0 1" > "$1/etc/fstab"' \
  --customize-hook='rm -f "$1/etc/hostname"' \
  --customize-hook='echo "en_US.UTF-8 UTF-8" > "$1/etc/locale.gen" && chroot "$1" locale-gen >/dev/null' \
  bookworm "$root"

kernel=$(cd "$root/boot" && ls vmlinuz-* | head -1)
initrd=$(cd "$root/boot" && ls initrd.img-* | head -1)
cmdline="root=LABEL=root ro console=ttyS0 net.ifnames=0"
mkdir -p "$root/boot/extlinux"
cat >"$root/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 0
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND $cmdline
EOF

# the ESP: systemd-boot and one entry
esp="$work/esp.img"
mkfs.vfat -C -n ESP "$esp" $((48 * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$esp" "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$root/boot/$kernel" ::/vmlinuz
mcopy -i "$esp" "$root/boot/$initrd" ::/initrd.img
printf 'default debian.conf\ntimeout 0\n' >"$work/loader.conf"
printf 'title Debian\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$cmdline" >"$work/debian.conf"
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/debian.conf" ::/loader/entries/debian.conf

# the root file system, in a file
rootimg="$work/root.img"
truncate -s 2G "$rootimg"
mkfs.ext4 -q -L root -d "$root" "$rootimg"
mnt="$work/mnt"
mkdir "$mnt"
mount -o loop "$rootimg" "$mnt"
extlinux --install "$mnt/boot/extlinux" >/dev/null
umount "$mnt"
mnt=""

# the disk: 1 MiB gap, root, ESP
raw="$work/disk.raw"
root_mib=2048
esp_mib=48
truncate -s $((1 + root_mib + esp_mib + 1))M "$raw"
sfdisk --quiet "$raw" <<EOF
label: dos
start=1MiB, size=${root_mib}MiB, type=83, bootable
start=$((1 + root_mib))MiB, size=${esp_mib}MiB, type=ef
EOF
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
dd if="$rootimg" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$esp" of="$raw" bs=1M seek=$((1 + root_mib)) conv=notrunc,sparse status=none
qemu-img convert -O qcow2 "$raw" "$out.tmp"
mv "$out.tmp" "$out"
