#!/bin/sh
# The systemd unit (deploy/systemd/dmarcpipe.service) is valid and hardened:
#   - `systemd-analyze verify` says nothing about it (it exits 0 on a bad
#     value, with a warning: any output fails the test), with ExecStart
#     pointed at the binary just built, the one line changed;
#   - `systemd-analyze security --offline=true` rates its exposure at most
#     MAX_EXPOSURE (0 safest, 10 unprotected);
#   - and the check can fail: a copy with a bad value is reported.
# usage: test_systemd.sh DMARCPIPE UNIT
set -eu
bin=$1 unit=$2
MAX_EXPOSURE=2.0
command -v systemd-analyze >/dev/null || { echo "test_systemd: systemd-analyze missing (deploy/install-deps installs systemd)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dp-systemd.XXXXXX")
trap 'rm -rf "$work"' EXIT
sed "s|^ExecStart=/usr/local/bin/dmarcpipe |ExecStart=$bin |" "$unit" >"$work/dmarcpipe.service"
grep -q "^ExecStart=$bin run --follow" "$work/dmarcpipe.service" || { echo "FAIL: no ExecStart=/usr/local/bin/dmarcpipe run --follow in $unit"; exit 1; }

out=$(systemd-analyze verify --man=no "$work/dmarcpipe.service" 2>&1) || { echo "FAIL: verify exited non-zero: $out"; exit 1; }
[ -z "$out" ] || { echo "FAIL: verify said: $out"; exit 1; }
echo "ok: systemd-analyze verify: nothing to say"

sec=$(systemd-analyze security --offline=true "$work/dmarcpipe.service" 2>&1 || true)
level=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for dmarcpipe.service: \([0-9.]*\).*/\1/p')
[ -n "$level" ] || { echo "FAIL: no exposure level in: $sec"; exit 1; }
awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }' || { echo "FAIL: exposure $level > $MAX_EXPOSURE:"; printf '%s\n' "$sec" | grep '✗'; exit 1; }
echo "ok: exposure level $level (at most $MAX_EXPOSURE)"

sed 's/^NoNewPrivileges=yes/NoNewPrivileges=bogus/' "$work/dmarcpipe.service" >"$work/broken.service"
out=$(systemd-analyze verify --man=no "$work/broken.service" 2>&1 || true)
case $out in *bogus*) echo "ok: a bad value is reported";; *) echo "FAIL: a bad value went unreported: $out"; exit 1;; esac
