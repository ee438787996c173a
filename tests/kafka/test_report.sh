#!/bin/sh
# `dmarcpipe report` reading its feeds from Kafka (kafka://HOST:PORT/TOPIC,
# sink/feed_read.c) says exactly what it says over the same feeds in files:
#   - the samples go to the broker through the Kafka sink (one epoch, topics
#     of this test's own) and through the file sink; the JSON report over
#     the rollups and reports topics equals, byte for byte, the one over the
#     file run's folder (fixed --from/--to).  The Kafka read goes through a
#     --kafka-config file, -X and DMARCPIPE_KAFKA_* (a password among them,
#     which appears nowhere);
#   - the same samples in epochs of 2 inputs (several transactions, rollups
#     split over messages): the same report but for the line counts;
#   - a topic that does not exist: exit 3, one line that names it, no report;
#   - no broker at the address, --broker-timeout 2: exit 3 within seconds,
#     the last line says so;
#   - a refused property with a sensitive name: exit 2, its value unprinted.
# What read_committed hides (an aborted and an open transaction) is pinned
# by test_feed_read, which writes those transactions itself.
#
# usage: test_report.sh DMARCPIPE SAMPLES BOOTSTRAP_FILE
set -eu
dmarcpipe=$(realpath "$1") samples=$(realpath "$2") bootstrap=$(cat "$3")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
tag="report-$$-$(date +%s)"
period="--from 2018-01-01 --to 2024-12-31" # every sample's days
failed=0
fail() { echo "FAIL: $*"; failed=1; }
ok() { echo "ok: $*"; }

# the truth: the file sink and its reports feed
mkdir truth
"$dmarcpipe" run --sink file:truth/rollups.ndjson --reports truth/reports.ndjson --quarantine q0 \
  --state s0 "$samples" 2>run0.err || { rc=$?; [ $rc -eq 1 ] || { tail -20 run0.err; exit 1; }; }
# shellcheck disable=SC2086
"$dmarcpipe" report --format json $period truth >want.json

kafka_run() { # NAME EXTRA...: the samples into topics NAME.rollups and NAME.reports
  name=$1
  shift
  "$dmarcpipe" run --sink "kafka://$bootstrap/$name.rollups" --reports-topic "$name.reports" \
    --instance-id "$name" --state "s-$name" --quarantine "q-$name" "$@" "$samples" 2>"run-$name.err" \
    || { rc=$?; [ $rc -eq 1 ] || { tail -20 "run-$name.err"; exit 1; }; }
}

# 1. one epoch: byte for byte, through every way of configuring the reader
kafka_run "$tag"
printf '# the reader takes the sink'"'"'s configuration\nclient.id = dmarcpipe-report-test\nsasl.password=Pa55-c0nfig-only\n' >kafka.conf
# shellcheck disable=SC2086
if DMARCPIPE_KAFKA_SASL_USERNAME=reader "$dmarcpipe" report --format json $period --kafka-config kafka.conf \
     -X fetch.wait.max.ms=50 --broker-timeout 30 \
     "kafka://$bootstrap/$tag.rollups" "kafka://$bootstrap/$tag.reports" >got.json 2>report.err; then
  if cmp -s want.json got.json; then ok "the report over Kafka equals the report over files ($(wc -c <got.json) bytes)"
  else fail "the reports differ"; cmp want.json got.json || true; fi
  if grep -q 'Pa55-c0nfig-only' report.err got.json; then fail "the password was printed"; fi
else
  fail "report over Kafka: exit $?"; cat report.err
fi
if [ -s report.err ]; then echo "report's stderr:"; cat report.err; fi

# 2. several epochs: rollups split over messages sum to the same report
kafka_run "$tag-e2" --epoch-inputs 2
epochs=$(sed -n 's/.*epochs: *\([0-9]*\) committed.*/\1/p' "run-$tag-e2.err")
# shellcheck disable=SC2086
if "$dmarcpipe" report --format json $period "kafka://$bootstrap/$tag-e2.rollups" \
     "kafka://$bootstrap/$tag-e2.reports" >got2.json 2>report2.err; then
  if python3 - want.json got2.json <<'EOF'
import json, sys
want, got = (json.load(open(p)) for p in sys.argv[1:3])
# the line counts differ (more messages); everything else is sums
for d in (want, got):
    d.pop("input")
sys.exit(0 if want == got else 1)
EOF
  then ok "in ${epochs:-?} epochs: the same report but for its line counts"
  else fail "the report over $epochs epochs differs"; fi
else
  fail "report over Kafka, epochs of 2: exit $?"; cat report2.err
fi

# 3. a topic that does not exist
rc=0
"$dmarcpipe" report --format json "kafka://$bootstrap/$tag.none" >none.json 2>none.err || rc=$?
if [ $rc -eq 3 ] && [ "$(wc -l <none.err)" -eq 1 ] && grep -q "topic $tag.none does not exist" none.err \
   && [ ! -s none.json ]; then
  ok "a missing topic: exit 3, one line: $(cat none.err)"
else
  fail "a missing topic: exit $rc, stderr:"; cat none.err
fi

# 4. no broker
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rc=0
t0=$(date +%s)
"$dmarcpipe" report --format json --broker-timeout 2 "kafka://127.0.0.1:$port/$tag.rollups" >dead.json 2>dead.err || rc=$?
took=$(($(date +%s) - t0))
if [ $rc -eq 3 ] && [ $took -le 10 ] && tail -n 1 dead.err | grep -q 'no broker answered for 2 s.*--broker-timeout' \
   && [ ! -s dead.json ]; then
  ok "no broker: exit 3 after ${took} s: $(tail -n 1 dead.err)"
else
  fail "no broker: exit $rc after ${took} s, stderr:"; cat dead.err
fi

# 5. a refused sensitive property: named, its value never printed
rc=0
"$dmarcpipe" report --format json -X my.secret.thing=N0t-f0r-pr1nting "kafka://$bootstrap/$tag.rollups" \
  >refused.json 2>refused.err || rc=$?
if [ $rc -eq 2 ] && grep -q "'my.secret.thing' refused" refused.err && ! grep -q 'N0t-f0r-pr1nting' refused.err; then
  ok "a refused property: exit 2: $(cat refused.err)"
else
  fail "a refused property: exit $rc, stderr:"; cat refused.err
fi

exit $failed
