#!/usr/bin/env bash
# make test-stock-kernel: the twin on Debian 12's stock kernel (netem links, the OVS kernel
# datapath, systemd starting dockerd and OVS), in a VM booted here, provisioned as the
# Vagrantfile provisions, running the integration tests of those code paths.
#
#   1. host packages (QEMU, debootstrap, ruby for the Vagrantfile), installed when missing
#   2. the Vagrantfile: syntax (ruby -c), then its synced folder and provisioner read from it
#   3. the guest (build-guest.sh, cached under $CACHE by a hash of its inputs), the pinned
#      wheelhouse and the host's worker image (docker save), shared read-only into the guest
#   4. QEMU boots the stock kernel (KVM where it can run it, found by trying; else TCG), the
#      guest's systemd unit syncs, provisions, runs the tests and powers off
#   5. the exit status is the guest's test result; a guest that does not finish in
#      STOCK_KERNEL_TIMEOUT seconds fails the run
#
# Environment: STOCK_KERNEL_TESTS (pytest arguments, default the stock-kernel selection),
# STOCK_KERNEL_TIMEOUT (s, default 2400), STOCK_KERNEL_CPUS (2), STOCK_KERNEL_MEMORY (MiB, 4096),
# TWIN_MACHINE_LOCKED=1 (the caller holds the machine lock).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${TWIN_CACHE_DIR:-/var/cache/twin}/stock-kernel
# the stock-kernel mechanism tests, and the existing ones of those paths that hold no timing
# bound the emulated CPU cannot meet (docs/stock-kernel.md)
TESTS=${STOCK_KERNEL_TESTS:-tests/integration/stock_kernel tests/integration/emulation/test_api.py
tests/integration/experiments/test_determinism.py::test_detpath_pins_paths_and_fails_over_within_a_fraction_of_a_second}
TIMEOUT=${STOCK_KERNEL_TIMEOUT:-2400}
CPUS=${STOCK_KERNEL_CPUS:-2}
MEMORY=${STOCK_KERNEL_MEMORY:-4096}
say() { printf 'stock-kernel: %s\n' "$*"; }
die() { printf 'stock-kernel: error: %s\n' "$*" >&2; exit 1; }
elapsed() { echo $(( $(date +%s) - $1 )); }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and the guest's disk need it)"
t_all=$(date +%s)

# ---- 1. host packages ----------------------------------------------------------------------
HOST_PKGS=(qemu-system-x86 qemu-utils debootstrap e2fsprogs ruby)
missing=()
for p in "${HOST_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/tmp/twin-stock-apt.log 2>&1 || die "apt-get update failed (/tmp/twin-stock-apt.log)"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/twin-stock-apt.log 2>&1 \
    || die "apt-get install failed: $(tail -n 1 /tmp/twin-stock-apt.log)"
fi

# ---- 2. the Vagrantfile ----------------------------------------------------------------------
ruby -c "$repo/Vagrantfile" >/dev/null || die "Vagrantfile: ruby -c found a syntax error (above)"
vagrant=$(ruby "$here/vagrant-provision.rb" "$repo/Vagrantfile") || die "Vagrantfile: could not read it"
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print("\n".join(v) if isinstance(v, list) else v)' "$vagrant" "$1"; }
[ "$(field sync_type)" = rsync ] || die "Vagrantfile: the project's synced folder is not type rsync"
say "Vagrantfile: syntax ok (ruby -c); provisioner: $(field inline); synced to $(field guest_path) by rsync"

# ---- 3. what goes into the guest ---------------------------------------------------------------
mkdir -p "$CACHE"
t0=$(date +%s)
wkey=$(cat "$repo/requirements.lock" "$repo/pyproject.toml" | sha256sum | cut -c1-16)
wheels="$CACHE/wheels-$wkey"
if [ ! -f "$wheels/ready" ]; then
  say "building the wheelhouse for requirements.lock ($wheels)"
  rm -rf "$wheels.tmp"
  "$repo/.venv/bin/pip" wheel -q -w "$wheels.tmp" -r "$repo/requirements.lock" pip "setuptools>=68" wheel \
    >/tmp/twin-stock-wheels.log 2>&1 || die "pip wheel failed: $(tail -n 1 /tmp/twin-stock-wheels.log)"
  touch "$wheels.tmp/ready"
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
image=$(cd "$repo" && .venv/bin/python -c 'from twin.host.images import worker_image_ref; print(worker_image_ref())')
tar="$CACHE/images/${image/:/-}.tar"
if [ ! -f "$tar" ]; then
  docker image inspect "$image" >/dev/null 2>&1 || die "the worker image $image is not built (make setup builds it)"
  say "docker save $image"
  mkdir -p "$CACHE/images"
  rm -f "$CACHE"/images/*.tar
  docker save -o "$tar.tmp" "$image" && mv "$tar.tmp" "$tar"
fi
t_inputs=$(elapsed "$t0")

# debootstrap, the guest's boot and its tests take the machine: one such run at a time
# (TWIN_MACHINE_LOCKED=1: the caller holds it already)
if [ "${TWIN_MACHINE_LOCKED:-}" != 1 ]; then
  exec 9>/tmp/twin-machine.lock  # the machine lock (/work/bin/machine-lock uses the same file)
  if ! flock -n 9; then
    say "waiting for the machine lock (another twin run is using the machine)"
    flock 9
  fi
fi
t0=$(date +%s)
guest=$(bash "$here/build-guest.sh" "$CACHE")
t_build=$(elapsed "$t0")

run="$CACHE/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run/in" "$run/out"
ls -1d "$CACHE"/runs/*/ | sort | head -n -3 | xargs -r rm -rf --one-file-system
cp -al "$wheels" "$run/in/wheels"
ln "$tar" "$run/in/worker-image.tar"
field guest_path >"$run/in/guest-path"
field rsync_exclude >"$run/in/rsync-exclude"
field inline >"$run/in/provision.sh"
printf '%s\n' $TESTS >"$run/in/tests"
qemu-img create -q -f qcow2 -F raw -b "$guest/disk.raw" "$run/disk.qcow2"

# ---- 4. boot ---------------------------------------------------------------------------------
# KVM only where it runs a stock kernel: a kernel with no root file system panics within a
# second under KVM; where KVM runs only paravirtualized guests it never gets that far.
accel=tcg cpu=max
if [ -w /dev/kvm ]; then
  # (where it cannot, QEMU hangs or aborts: either way no panic message)
  bash -c 'timeout 10 "$@" >/dev/null 2>&1; exit 0' probe qemu-system-x86_64 -accel kvm -cpu host \
    -m 256 -nodefaults -display none -no-reboot -serial "file:$run/kvm-probe.log" \
    -kernel "$guest/vmlinuz" -append "console=ttyS0 panic=-1" 2>/dev/null || true
  if grep -q "Kernel panic" "$run/kvm-probe.log" 2>/dev/null; then accel=kvm cpu=host; fi
fi
if [ "$accel" = tcg ]; then
  say "KVM cannot run a stock kernel here (probe: no boot within 10 s): software emulation (TCG)"
else
  say "KVM runs the stock kernel here"
fi
say "booting $(head -n 1 "$guest/manifest") ($accel, $CPUS CPUs, $MEMORY MiB); timeout ${TIMEOUT} s"
say "guest console: $run/console.log; guest logs and junit.xml: $run/out"
[ "$accel" = tcg ] && say "timings below are under software emulation: not a hardware measurement"

: >"$run/tests.log"
t0=$(date +%s)
timeout --kill-after=15 "$TIMEOUT" qemu-system-x86_64 \
  -accel "$accel" -cpu "$cpu" -smp "$CPUS" -m "$MEMORY" -nodefaults -display none -no-reboot \
  -kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 quiet panic=-1 systemd.show_status=0" \
  -drive "file=$run/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
  -virtfs "local,path=$repo,mount_tag=twin-src,security_model=none,readonly=on" \
  -virtfs "local,path=$run/in,mount_tag=twin-in,security_model=none,readonly=on" \
  -virtfs "local,path=$run/out,mount_tag=twin-out,security_model=none" \
  -nic none -serial "file:$run/console.log" -serial "file:$run/tests.log" \
  >"$run/qemu.log" 2>&1 &
qemu=$!
tail -n +1 -f --pid="$qemu" "$run/tests.log" | sed -u 's/\r$//' &
tailer=$!
qrc=0
wait "$qemu" || qrc=$?
wait "$tailer" 2>/dev/null || true
t_guest=$(elapsed "$t0")
rm -f "$run/disk.qcow2"
rm -rf "$run/in/wheels" "$run/in/worker-image.tar"

# ---- 5. the result -----------------------------------------------------------------------------
echo
say "guest build ${t_build} s (cached when its inputs are unchanged), wheelhouse and worker image ${t_inputs} s,"
say "guest run ${t_guest} s ($accel), total $(elapsed "$t_all") s"
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  say "the guest did not finish within ${TIMEOUT} s (hung?); last lines of its console:"
  tail -n 30 "$run/console.log" | tr -d '\r'
  die "timeout after ${TIMEOUT} s (STOCK_KERNEL_TIMEOUT); console: $run/console.log"
fi
[ "$qrc" = 0 ] || { tail -n 5 "$run/qemu.log"; die "qemu exited with status $qrc (see $run/qemu.log)"; }
[ -f "$run/out/status" ] || {
  tail -n 30 "$run/console.log" | tr -d '\r'
  die "the guest powered off without a result (console: $run/console.log)"
}
rc=$(cat "$run/out/status")
if [ "$rc" = 0 ]; then say "PASSED in the stock-kernel guest"; else say "FAILED in the stock-kernel guest (exit status $rc; logs: $run/out)"; fi
exit "$rc"
