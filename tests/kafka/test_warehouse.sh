#!/bin/sh
# The warehouse path end to end: the corpus goes to the real broker through
# the Kafka sink; a read_committed consumer (kcat) takes the rollups and the
# reports back out; tests/warehouse/load_and_check.py loads them into SQLite
# with deploy/warehouse/sqlite.sql (STRICT column types) and checks with SQL
# that the totals, messages per (source_ip, policy_domain), the merged view
# and the reports reconciliation equal a file-sink run of the same corpus.
#
# usage: test_warehouse.sh DMARCPIPE CORPUS BOOTSTRAP_FILE
set -eu
dmarcpipe=$(realpath "$1") corpus=$(realpath "$2") bootstrap=$(cat "$3")
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
tag="wh-$$-$(date +%s)"

# the truth: the embedded file sink, with its reports feed
"$dmarcpipe" run --sink file:truth.ndjson --reports truth-reports.ndjson --quarantine q1 "$corpus" \
  2>/dev/null || [ $? -eq 1 ]
expect=$(python3 -c 'import json,sys; print(sum(json.loads(l)["messages"] for l in open(sys.argv[1]) if l.strip()))' truth.ndjson)

"$dmarcpipe" run --sink "kafka://$bootstrap/$tag.rollups" --reports-topic "$tag.reports" \
  --instance-id "$tag" --state state --quarantine q2 --epoch-inputs 20 "$corpus" 2>run.err \
  || { rc=$?; [ $rc -eq 1 ] || { tail -20 run.err; exit 1; }; }

consume() {
  kcat -C -b "$bootstrap" -t "$1" -e -q -o beginning -X isolation.level=read_committed -f '%s\n'
}
consume "$tag.rollups" >rollups.ndjson
consume "$tag.reports" >reports.ndjson
echo "test_warehouse: $(wc -l <rollups.ndjson) rollup messages, $(wc -l <reports.ndjson) report messages; truth $expect messages"
python3 "$root/tests/warehouse/load_and_check.py" --expect-messages "$expect" --reference truth.ndjson \
  --reports reports.ndjson rollups.ndjson
