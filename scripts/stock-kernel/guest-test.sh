#!/usr/bin/env bash
# Inside the stock-kernel guest (started by its systemd unit once the box is up): sync the
# repository as the Vagrantfile's rsync folder does, provision with the Vagrantfile's own
# command, print `twin doctor`, run the chosen integration tests, and leave the logs in the
# output share. The exit status is the tests' (and 1 where an earlier step failed).
#
# Shares (mounted by twin-vm-boot): /mnt/twin-src the repository (read-only), /mnt/twin-in what
# run.sh prepared (provisioning command, rsync excludes, tests, worker image, wheelhouse),
# /mnt/twin-out for results.
set -uo pipefail
in=/mnt/twin-in
out=/mnt/twin-out
t_start=$(date +%s)
stamp() { printf '\n=== [guest +%4ds] %s\n' "$(( $(date +%s) - t_start ))" "$*"; }
fail() { printf 'guest: error: %s\n' "$*"; collect_logs; exit 1; }

collect_logs() {
  mkdir -p "$out/logs"
  journalctl -b --no-pager >"$out/logs/journal.log" 2>&1 || true
  dmesg >"$out/logs/dmesg.log" 2>&1 || true
  cp /tmp/twin-*.log "$out/logs/" 2>/dev/null || true
  cp -r /var/log/openvswitch "$out/logs/" 2>/dev/null || true
  [ -d "${guest_path:-/twin}/results/runs" ] && cp -r "${guest_path:-/twin}/results/runs" "$out/logs/" 2>/dev/null
  true
}

stamp "booted: $(uname -r) ($(systemd-detect-virt 2>/dev/null || echo unknown)), $(nproc) CPUs," \
  "systemd $(systemctl is-system-running 2>/dev/null)"
echo "boot to this script: $(cut -d' ' -f1 /proc/uptime) s of guest uptime"
for unit in docker openvswitch-switch; do
  echo "$unit.service: $(systemctl is-active "$unit")"
done

guest_path=$(cat "$in/guest-path")
stamp "syncing the repository to $guest_path as the Vagrantfile's rsync folder does" \
  "(excluding: $(paste -sd' ' "$in/rsync-exclude"))"
mkdir -p "$guest_path"
# Vagrant's rsync arguments (--archive --delete --copy-links, owner and group left out) and the
# Vagrantfile's excludes
rsync --archive --delete --copy-links --no-owner --no-group --exclude-from="$in/rsync-exclude" \
  /mnt/twin-src/ "$guest_path/" || fail "rsync of the repository failed"

stamp "loading the host's worker image (docker save on the host; no debootstrap here)"
docker load -i "$in/worker-image.tar" || fail "docker load failed"

stamp "provisioning as the Vagrantfile's shell provisioner: $(cat "$in/provision.sh")"
t0=$(date +%s)
( cd /root && HOME=/root bash -l "$in/provision.sh" ) || fail "provisioning failed (its logs: $out/logs)"
echo "provisioning took $(( $(date +%s) - t0 )) s (emulated guest)"

cd "$guest_path" || fail "no $guest_path"
stamp "twin doctor"
COLUMNS=200 .venv/bin/twin doctor | tee "$out/doctor.txt"
grep -q "sch_netem present" "$out/doctor.txt" || fail "twin doctor does not report netem links"
grep -q "kernel datapath" "$out/doctor.txt" || fail "twin doctor does not report the OVS kernel datapath"

mapfile -t tests <"$in/tests"
stamp "integration tests on the stock kernel: ${tests[*]}"
echo "(timings inside this guest are under software emulation, not a hardware measurement)"
TWIN_STOCK_KERNEL=1 PYTHONPATH="$guest_path/scripts/stock-kernel" \
  .venv/bin/python -m pytest -p no:cacheprovider -p pytest_report_now -ra -v --durations=15 \
  --junitxml="$out/junit.xml" "${tests[@]}"
rc=$?
stamp "tests done: exit status $rc"
collect_logs
exit "$rc"
