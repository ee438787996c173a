#!/bin/sh
# tests/insight/warehouse.sh — the warehouse views say what `dmarcpipe
# report` says (tests/insight/warehouse_agree.py), in ClickHouse (chdb),
# DuckDB and SQLite; then the same run on a broken copy of the SQL must
# fail, in each engine, so that agreement is not a comparison that cannot
# fail.
#
#   tests/insight/warehouse.sh [BUILD_DIR]        # default: build
#
# chdb and duckdb come from PyPI, into a venv cached for every build tree
# of the machine (DP_INSIGHT_VENV, default ~/.cache/dmarcpipe/insight-venv;
# about 1 GB: chdb brings ClickHouse, pandas and pyarrow).
# A venv is reused only once a complete install has written its stamp.  If
# pip cannot install them (no PyPI), this FAILS: CI has PyPI, and a test
# that skips itself there would hide a broken warehouse.  PYTHON names the
# interpreter the venv is made from (default python3; Debian needs the
# python3-venv package, which deploy/install-deps installs).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd) || exit 1
DMARCPIPE=$BUILD/dmarcpipe
VENV=${DP_INSIGHT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dmarcpipe/insight-venv}
REQUIREMENTS="chdb==4.4.0 duckdb==2.0.1"

if [ ! -x "$DMARCPIPE" ]; then
    echo "FAIL warehouse.sh: $DMARCPIPE not found; build first" >&2
    exit 1
fi

if [ "$(cat "$VENV/.dp-requirements" 2>/dev/null)" != "$REQUIREMENTS" ] ||
   ! "$VENV/bin/python" -c 'import chdb, duckdb' >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! "${PYTHON:-python3}" -m venv "$VENV"; then
        echo "FAIL warehouse.sh: cannot make a venv with ${PYTHON:-python3} -m venv (python3-venv missing?)" >&2
        exit 1
    fi
    # shellcheck disable=SC2086
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q $REQUIREMENTS; then
        echo "FAIL warehouse.sh: pip install $REQUIREMENTS failed (is PyPI reachable?)" >&2
        rm -rf "$VENV"
        exit 1
    fi
    echo "$REQUIREMENTS" >"$VENV/.dp-requirements"
fi
PY=$VENV/bin/python

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

# --- the real SQL: every engine agrees with the command ---------------------
if "$PY" "$ROOT/tests/insight/warehouse_agree.py" --dmarcpipe "$DMARCPIPE" >"$TMP/out" 2>&1; then
    echo "PASS the warehouse agrees with dmarcpipe report"
    sed 's/^/     /' "$TMP/out"
else
    echo "FAIL the warehouse disagrees with dmarcpipe report"
    cat "$TMP/out"
    fail=1
fi

# --- a broken copy: one slip per engine, each must be caught -----------------
#   clickhouse: a tie between aligned and another class no longer goes to aligned
#   sqlite:     a day with rollups but no messages counts as a day with reports
#   duckdb:     a tie between two reports' policies goes to the smaller sha256
cp -r "$ROOT/deploy/warehouse" "$TMP/broken"
mutate() { # file, sed expression
    sed "$2" "$TMP/broken/$1" >"$TMP/broken/$1.new"
    if cmp -s "$TMP/broken/$1" "$TMP/broken/$1.new"; then
        echo "FAIL warehouse.sh: '$2' changed nothing in $1; the SQL moved, update the mutation here"
        fail=1
    fi
    mv "$TMP/broken/$1.new" "$TMP/broken/$1"
}
mutate clickhouse.sql 's/multiIf(aligned >= greatest(/multiIf(aligned > greatest(/'
mutate sqlite.sql 's/SUM(c\.messages > 0) *AS days_with_reports/COUNT(*) AS days_with_reports/'
mutate duckdb.sql 's/ORDER BY date_begin DESC, sha256 DESC/ORDER BY date_begin DESC, sha256 ASC/'
"$PY" "$ROOT/tests/insight/warehouse_agree.py" --dmarcpipe "$DMARCPIPE" --warehouse "$TMP/broken" \
    >"$TMP/broken.out" 2>&1
rc=$?
caught=1
for want in "FAIL clickhouse/.* ties.example source .*'forwarded'" \
            "FAIL sqlite/.* days_with_reports: sql 1, report 0" \
            "FAIL duckdb/.* tie-policy.example policy"; do
    grep -q "$want" "$TMP/broken.out" || { caught=0; echo "     not found: /$want/"; }
done
if [ "$rc" -eq 1 ] && [ "$caught" -eq 1 ]; then
    echo "PASS a broken copy of the SQL is caught in each engine"
    grep -c '^FAIL' "$TMP/broken.out" | sed 's/^/     mismatches: /'
else
    echo "FAIL a broken copy of the SQL was not caught (exit $rc)"
    head -40 "$TMP/broken.out"
    fail=1
fi

exit "$fail"
