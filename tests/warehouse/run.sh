#!/usr/bin/env bash
# tests/warehouse/run.sh — load dmarcpipe's rollups into SQLite with the
# warehouse schema and check them (tests/warehouse/load_and_check.py).
#
#   tests/warehouse/run.sh [BUILD_DIR]        # default: build
#
# Needs a built dmarcpipe, python3 (stdlib only) and sqlite 3.38+ in
# Python's sqlite3 module.  jq is used, when present, to compute the
# expected totals independently of the loader (python3 otherwise).
#
# Cases:
#   - the file sink's output of tests/data/samples, with its reports feed;
#   - the same rollups split into partial halves (and thirds), shuffled, on
#     stdin: the merged view must give back the original per key;
#   - real partial rollups from dmarcpipe itself (--max-keys 1 with several
#     reports of one key), against an unflushed run;
#   - synthetic reports from dp-gen-report, when it is built;
#   - the sample queries, in SQLite, on the loaded samples;
#   - negative cases: a lost rollup, a replayed one, a changed count, a
#     broken merge view, malformed lines — each must exit 1 with a diff.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
DMARCPIPE=$BUILD/dmarcpipe
GEN=$BUILD/bench/dp-gen-report
LOADER="python3 $ROOT/tests/warehouse/load_and_check.py"
SPLIT="python3 $ROOT/tests/warehouse/split_rollups.py"

if [ ! -x "$DMARCPIPE" ]; then
    echo "run.sh: $DMARCPIPE not found; build first (cmake --build build)" >&2
    exit 2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

# sum_messages FILE: the sum of `messages`, computed without the loader.
sum_messages() {
    if command -v jq >/dev/null 2>&1; then
        jq -n '[inputs.messages] | add // 0' "$1"
    else
        python3 -c 'import json,sys; print(sum(json.loads(l)["messages"] for l in open(sys.argv[1]) if l.strip()))' "$1"
    fi
}

# check NAME WANT_RC PATTERN -- CMD...: run CMD, expect exit WANT_RC and
# PATTERN (grep -E) in its output.
check() {
    local name=$1 want=$2 pattern=$3
    shift 4
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
        pass=$((pass + 1))
        printf 'PASS %s\n     %s\n' "$name" "$(head -1 <<<"$out")"
    else
        fail=$((fail + 1))
        printf 'FAIL %s (exit %d, wanted %d and /%s/)\n%s\n' "$name" "$rc" "$want" "$pattern" "$out"
    fi
}

# --- the bundled samples through the file sink -----------------------------
(cd "$TMP" && "$DMARCPIPE" run --sink "file:$TMP/rollups.ndjson" --reports "$TMP/reports.ndjson" \
    "$ROOT/tests/data/samples" >/dev/null 2>&1)
if [ ! -s "$TMP/rollups.ndjson" ] || [ ! -s "$TMP/reports.ndjson" ]; then
    echo "run.sh: dmarcpipe run wrote no rollups or no reports feed" >&2
    exit 1
fi
total=$(sum_messages "$TMP/rollups.ndjson")

check "samples: file sink output" 0 "^ok: .* $total messages" -- \
    $LOADER --expect-messages "$total" --reference "$TMP/rollups.ndjson" \
            --reports "$TMP/reports.ndjson" "$TMP/rollups.ndjson"

$SPLIT --parts 2 --seed 1 "$TMP/rollups.ndjson" >"$TMP/halves.ndjson"
check "samples split in halves, on stdin" 0 "merge \(([0-9]+) rows -> [0-9]+ keys\).*reference full" -- \
    sh -c "$LOADER --expect-messages $total --reference '$TMP/rollups.ndjson' --reference-key full \
                   --reports '$TMP/reports.ndjson' - <'$TMP/halves.ndjson'"

$SPLIT --parts 3 --seed 2 "$TMP/rollups.ndjson" >"$TMP/thirds.ndjson"
check "samples in thirds plus halves, two inputs" 0 "^ok: .* $((total * 2)) messages" -- \
    $LOADER --expect-messages $((total * 2)) "$TMP/thirds.ndjson" "$TMP/halves.ndjson"

# --- the sample queries (tests/warehouse/queries_sqlite.sql) on the loaded samples
check "samples loaded into a database file" 0 "^ok: " -- \
    $LOADER --db "$TMP/samples.db" --reports "$TMP/reports.ndjson" "$TMP/halves.ndjson"
check "sample queries: invariants, low thresholds" 0 "^ok: queries ran; [1-9][0-9]* domains, [0-9]+ failing sources, [1-9][0-9]* ready" -- \
    python3 "$ROOT/tests/warehouse/check_queries.py" --min-pct 50 --min-messages 1 --min-reporters 1 \
            --min-days 1 "$TMP/samples.db"
check "sample queries: invariants, default thresholds" 0 "^ok: queries ran" -- \
    python3 "$ROOT/tests/warehouse/check_queries.py" --quiet "$TMP/samples.db"

# --- real partial rollups from dmarcpipe ---------------------------------------
# Several reports (distinct report_ids) with the same records, so the same
# keys; --max-keys 1 on one shard flushes a key before its later reports.
mkdir -p "$TMP/same"
for i in 1 2 3 4; do
    sed "s|<report_id>[^<]*</report_id>|<report_id>warehouse-test-$i</report_id>|" \
        "$ROOT/tests/data/samples/cry-inc-webde.xml" >"$TMP/same/r$i.xml"
done
cp "$ROOT"/tests/data/samples/*.xml "$TMP/same/"
(cd "$TMP" && "$DMARCPIPE" run --workers 1 --shards 1 --max-keys 1 \
    --sink "file:$TMP/same-partial.ndjson" --reports "$TMP/same-reports.ndjson" "$TMP/same" >/dev/null 2>&1)
(cd "$TMP" && "$DMARCPIPE" run --sink "file:$TMP/same-full.ndjson" --reports "$TMP/same-reports2.ndjson" \
    "$TMP/same" >/dev/null 2>&1)
same_total=$(sum_messages "$TMP/same-full.ndjson")
check "dmarcpipe's own partial rollups (--max-keys 1)" 0 "merge \(([0-9]+) rows -> [0-9]+ keys\)" -- \
    $LOADER --expect-messages "$same_total" --reference "$TMP/same-full.ndjson" --reference-key full \
            --reports "$TMP/same-reports.ndjson" "$TMP/same-partial.ndjson"
if [ "$(grep -c . "$TMP/same-partial.ndjson")" -le "$(grep -c . "$TMP/same-full.ndjson")" ]; then
    echo "note: dmarcpipe emitted no partial rollups here; the split cases above still cover merging"
fi

# --- synthetic reports -----------------------------------------------------------
if [ -x "$GEN" ]; then
    "$GEN" --reports 20 --records 100 --ips 200 --domains 4 --reporters 14 --seed 11 -o "$TMP/gen" >/dev/null 2>&1
    (cd "$TMP" && "$DMARCPIPE" run --window 1h --sink "file:$TMP/gen.ndjson" --reports "$TMP/gen-reports.ndjson" \
        "$TMP/gen" >/dev/null 2>&1)
    gen_total=$(sum_messages "$TMP/gen.ndjson")
    $SPLIT --parts 3 --seed 3 "$TMP/gen.ndjson" >"$TMP/gen-thirds.ndjson"
    check "synthetic reports, 1h windows, in thirds" 0 "^ok: .* $gen_total messages" -- \
        $LOADER --expect-messages "$gen_total" --reference "$TMP/gen.ndjson" --reference-key full \
                --reports "$TMP/gen-reports.ndjson" "$TMP/gen-thirds.ndjson"
else
    echo "note: $GEN not built; synthetic case skipped"
fi

# --- negative cases: each must fail with a diff ------------------------------------
# a lost rollup: the line with the most messages
python3 - "$TMP/rollups.ndjson" "$TMP/lost.ndjson" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
drop = max(range(len(lines)), key=lambda i: json.loads(lines[i])["messages"])
open(sys.argv[2], "w").writelines(l for i, l in enumerate(lines) if i != drop)
EOF
check "a lost rollup is caught" 1 "FAIL total messages" -- \
    $LOADER --expect-messages "$total" --reference "$TMP/rollups.ndjson" "$TMP/lost.ndjson"
check "a lost rollup is named" 1 "source_ip=.*expected messages [0-9]+, loaded messages" -- \
    $LOADER --reference "$TMP/rollups.ndjson" "$TMP/lost.ndjson"

# a replayed rollup (an at-least-once consumer re-reading a batch)
head -1 "$TMP/rollups.ndjson" | cat "$TMP/rollups.ndjson" - >"$TMP/replayed.ndjson"
check "a replayed rollup is caught by the reports feed" 1 "reports say [0-9]+, rollups hold" -- \
    $LOADER --reports "$TMP/reports.ndjson" "$TMP/replayed.ndjson"

# a changed count
sed '1s/"messages":\([0-9]*\)/"messages":1\1/' "$TMP/rollups.ndjson" >"$TMP/changed.ndjson"
check "a changed count is caught" 1 "source_ip=.*expected messages [0-9]+, loaded messages [0-9]+" -- \
    $LOADER --expect-messages "$total" --reference "$TMP/rollups.ndjson" "$TMP/changed.ndjson"

# a merge view that does not sum
sed 's/SUM(messages)   AS messages/MAX(messages)   AS messages/' "$ROOT/deploy/warehouse/sqlite.sql" >"$TMP/broken.sql"
check "a merge view that does not sum is caught" 1 "FAIL merge" -- \
    $LOADER --schema "$TMP/broken.sql" "$TMP/halves.ndjson"

# malformed lines
sed '2s/"v":2/"v":3/' "$TMP/rollups.ndjson" >"$TMP/v3.ndjson"
check "schema v3 is refused" 1 "FAIL input: .*:2: schema version" -- $LOADER "$TMP/v3.ndjson"
# a v1 line (no source_* fields) loads, the fields NULL; a v2 line without them does not
sed '1s/"v":2/"v":1/; 1s/,"source_ptr":.*,"source_service_type":[^,]*,"messages"/,"messages"/' \
    "$TMP/rollups.ndjson" >"$TMP/v1.ndjson"
check "a v1 line loads beside v2 lines" 0 "" -- $LOADER --expect-messages "$total" "$TMP/v1.ndjson"
sed '1s/,"source_ptr":.*,"source_service_type":[^,]*,"messages"/,"messages"/' \
    "$TMP/rollups.ndjson" >"$TMP/v2short.ndjson"
check "a v2 line without the source fields is refused" 1 "FAIL input: .*:1: .*missing source_ptr" -- \
    $LOADER "$TMP/v2short.ndjson"
sed '1s/"records":[0-9]*,//' "$TMP/rollups.ndjson" >"$TMP/missing.ndjson"
check "a missing field is refused" 1 "FAIL input: .*:1: .*missing records" -- $LOADER "$TMP/missing.ndjson"
sed '1s/"source_ip":"[^"]*"/"source_ip":"not-an-ip"/' "$TMP/rollups.ndjson" >"$TMP/badip.ndjson"
check "a bad source_ip is refused" 1 "FAIL input: .*:1: source_ip" -- $LOADER "$TMP/badip.ndjson"
printf '%s\n\n' "$(head -1 "$TMP/rollups.ndjson")" >"$TMP/blank.ndjson"
check "an empty message is refused" 1 "FAIL input: .*:2: empty line" -- $LOADER "$TMP/blank.ndjson"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
