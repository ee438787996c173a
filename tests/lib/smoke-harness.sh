# shellcheck shell=bash disable=SC2154  # here, smoke_name, secret_what: the caller's
# smoke-harness.sh -- sourced by the test servers' smoke tests (tests/imap,
# tests/s3/smoke.sh): a work dir, the server dir in it, every line of output
# held in a log that is checked for the secret on exit and then shown with
# it masked, and the server stopped however the test ends.
#
# The caller sets `here` (its folder, whose `stop` stops the server),
# `smoke_name` ("imap smoke") and `secret_what` ("password"), sources this,
# and sets `secret` as soon as it knows it.  It gets $work, $srv, $log,
# $failed and fail/ok/die.

work=$(mktemp -d)
srv=$work/server
log=$work/log
secret=""
failed=0

exec 3>&1 4>&2
exec > "$log" 2>&1

smoke_finish() {
  local rc=$? line
  # TMPDIR=$work: the "last start" note of these runs stays in $work, and a
  # server the caller started by hand stays the one a plain stop stops.
  if [ -d "$srv" ]; then TMPDIR=$work "$here/stop" --dir "$srv" || true; fi
  exec 1>&3 2>&4 3>&- 4>&-
  if [ -n "$secret" ] && grep -qF -- "$secret" "$log"; then
    echo "FAIL: the $secret_what appears in the output (masked below)" >> "$log"
    failed=1
  fi
  while IFS= read -r line || [ -n "$line" ]; do
    if [ -n "$secret" ]; then line=${line//"$secret"/***}; fi
    printf '%s\n' "$line"
  done < "$log"
  rm -rf "$work"
  if [ "$failed" = 1 ] || [ "$rc" != 0 ]; then
    echo "$smoke_name: FAILED"
    exit 1
  fi
  echo "$smoke_name: all passed"
  exit 0
}
trap smoke_finish EXIT
trap 'exit 1' INT TERM HUP

fail() { echo "FAIL: $*"; failed=1; }
ok() { echo "ok: $*"; }
die() { echo "FAIL: $*"; failed=1; exit 1; }
