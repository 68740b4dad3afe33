#!/usr/bin/env bash
# Build the stock-kernel guest: a Debian 12 root filesystem with Debian's stock kernel, systemd,
# and every package scripts/setup.sh installs, made on the host at native speed (debootstrap and
# chroot), then written into an ext4 disk image. Nothing is installed inside the slow guest.
#
#   build-guest.sh CACHE_DIR   -> prints the guest's folder (disk.raw, vmlinuz, initrd.img)
#
# The folder is named by a hash of this script, the guest's own files and the package list, so
# a change to any of them builds a new guest and an unchanged one is reused.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:?usage: build-guest.sh CACHE_DIR}
say() { printf 'stock-kernel: %s\n' "$*" >&2; }
die() { printf 'stock-kernel: error: %s\n' "$*" >&2; exit 1; }

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
DISK_SIZE=10G

# What a Vagrant box of this guest would have before provisioning: a kernel, systemd, the tools
# the provisioner itself uses (rsync for the synced folder, sudo) ...
BOX_PKGS=(linux-image-amd64 systemd-sysv udev kmod rsync sudo ca-certificates)
# ... and scripts/setup.sh's own list, read from it, so its apt step finds everything installed.
mapfile -t SETUP_PKGS < <(sed -n '/^PKGS=(/,/)/p' "$repo/scripts/setup.sh" \
  | sed -e 's/^PKGS=(//' -e 's/)$//' | tr -s ' \t' '\n' | sed '/^$/d')
[ ${#SETUP_PKGS[@]} -gt 5 ] || die "could not read the package list (PKGS=(...)) from scripts/setup.sh"

key=$( { cat "$0" "$here"/guest/*; printf '%s\n' "$SUITE" "${BOX_PKGS[@]}" "${SETUP_PKGS[@]}"; } \
  | sha256sum | cut -c1-16)
out="$cache/guest-$key"
if [ -f "$out/ready" ]; then
  say "guest $key: cached ($out)"
  echo "$out"
  exit 0
fi

for tool in debootstrap mkfs.ext4; do
  command -v "$tool" >/dev/null || die "$tool is missing (run-stock-kernel.sh installs it)"
done
mkdir -p "$cache"
work="$cache/build-$key.tmp"
root="$work/root"
# a build killed mid-way may have left its bind mounts: never remove through them
awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
rm -rf --one-file-system "$work"
mkdir -p "$work"

mounted=()
cleanup() {
  local m
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

t0=$(date +%s)
say "debootstrap $SUITE (minbase) -> $root"
debootstrap --variant=minbase --include=apt-utils,gnupg "$SUITE" "$root" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || die "debootstrap failed: $(tail -n 1 "$work/debootstrap.log")"

cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
# no daemon starts inside the build chroot
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
for fs in proc sys dev dev/pts; do
  mount --bind "/$fs" "$root/$fs"
  mounted+=("$root/$fs")
done

say "installing the box's and setup.sh's packages in the chroot: ${BOX_PKGS[*]} ${SETUP_PKGS[*]}"
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 bash -c '
  set -e
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@"
  apt-get clean
' bash "${BOX_PKGS[@]}" "${SETUP_PKGS[@]}" >"$work/apt.log" 2>&1 \
  || die "apt-get install in the chroot failed: $(tail -n 1 "$work/apt.log") (log: $work/apt.log)"

say "configuring: users, hostname, fstab, the test unit"
echo fabric-twin >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 fabric-twin\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 0\n' >"$root/etc/fstab"
# a Vagrant box's user, with passwordless sudo; root has no password (console only)
chroot "$root" useradd -m -s /bin/bash -G sudo vagrant
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"
chroot "$root" passwd -d root >/dev/null
install -m 755 "$here/guest/twin-vm-boot" "$root/usr/local/sbin/twin-vm-boot"
install -m 644 "$here/guest/twin-vm-test.service" "$root/etc/systemd/system/twin-vm-test.service"
install -m 644 "$here/guest/pip.conf" "$root/etc/pip.conf"
chroot "$root" systemctl enable twin-vm-test.service >/dev/null 2>&1
# nothing periodic competes with the test for the emulated CPUs
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer \
  e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
for unit in docker.service openvswitch-switch.service; do
  [ -e "$root/etc/systemd/system/multi-user.target.wants/$unit" ] \
    || die "$unit is not enabled in the guest (the systemd path would not start it)"
done
rm -f "$root/usr/sbin/policy-rc.d"

kver=$(ls "$root/lib/modules" | sort -V | tail -n 1)
[ -f "$root/boot/initrd.img-$kver" ] || die "no initramfs for $kver was built in the chroot"
for mod in sch_netem openvswitch 9pnet_virtio; do
  find "$root/lib/modules/$kver" -name "$mod.ko*" | grep -q . || die "the stock kernel $kver has no $mod module"
done
cleanup
mounted=()

mkdir -p "$work/guest"
cp "$root/boot/vmlinuz-$kver" "$work/guest/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/guest/initrd.img"
say "writing the ext4 disk image ($DISK_SIZE, sparse)"
truncate -s "$DISK_SIZE" "$work/guest/disk.raw"
mkfs.ext4 -q -F -L twin-root -d "$root" "$work/guest/disk.raw" \
  || die "mkfs.ext4 -d failed"
{
  echo "kernel $kver"
  echo "built $(date -u +%FT%TZ) in $(( $(date +%s) - t0 )) s"
  chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' \
    linux-image-amd64 systemd docker.io openvswitch-switch python3 2>/dev/null || true
} >"$work/guest/manifest"
rm -rf "$out"
mv "$work/guest" "$out"
touch "$out/ready"
rm -rf --one-file-system "$work"
# guests built from other inputs are not used again (1.5 GB each)
find "$cache" -maxdepth 1 -name 'guest-*' ! -name "guest-$key" -exec rm -rf --one-file-system {} +
say "guest $key built in $(( $(date +%s) - t0 )) s: $(head -n 1 "$out/manifest")"
echo "$out"
