#!/usr/bin/env bash
# kafka_soak.sh -- the exactly-once proof of tests/kafka, for longer: many
# more SIGKILLs at random moments, then broker restarts, on the corpus, each
# round checked against the ground truth by a read_committed consumer.
#
# CI kills `dmarcpipe run` 20 times (ctest kafka_exactly_once_kill); this
# keeps going for as long as you give it.  It never times anything.
#
# Usage: bench/kafka_soak.sh [--rounds N] [--kills N] [--restarts N] [--corpus DIR]
# Defaults: 20 rounds of 30 kills (600 SIGKILLs), each round over 10 copies
# of the corpus, one input per epoch, so that kills land mid-run; then 5
# broker restarts;
# corpus tests/data/corpus.  Each round uses a fresh random seed (printed,
# so a failure can be replayed with tests/kafka/test_exactly_once.py --seed).
# Environment: BUILD_DIR (default <repo>/build).
# Exit status: 0 every round exact, 1 a round disagreed.
set -euo pipefail
# the benchmarks read dmarcpipe's summary as plain text, not JSON log lines
export DMARCPIPE_LOG_FORMAT=plain
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$repo/build}
rounds=20 kills=30 restarts=5 corpus=$repo/tests/data/corpus
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    --restarts) restarts=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--kills N] [--restarts N] [--corpus DIR]" >&2; exit 2 ;;
  esac
done
eo=(python3 "$repo/tests/kafka/test_exactly_once.py" --dmarcpipe "$build/dmarcpipe" --corpus "$corpus")
bdir=$(mktemp -d)
trap '"$repo/tests/kafka/stop" --dir "$bdir/broker" >/dev/null 2>&1 || true; rm -rf "$bdir"' EXIT
bootstrap=$("$repo/tests/kafka/start" --dir "$bdir/broker" 2>/dev/null)
echo "$bootstrap" >"$bdir/bootstrap"
start=$(date +%s)
for r in $(seq 1 "$rounds"); do
  "${eo[@]}" --mode kill --kills "$kills" --copies 10 --epoch-inputs 1 --max-kill-delay 1.0 \
    --seed "$((start + r))" --bootstrap-file "$bdir/bootstrap"
done
for r in $(seq 1 "$restarts"); do
  "${eo[@]}" --mode restart --epoch-inputs 1 --copies 5 --seed "$((start + 1000 + r))"
done
echo "kafka_soak: $((rounds * kills)) SIGKILLs in $rounds rounds and $restarts broker restarts, every total exact, in $(( $(date +%s) - start )) s"
