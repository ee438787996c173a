#!/usr/bin/env bash
# kafka_vs_kcat.sh -- how fast dmarcpipe's Kafka sink writes rollups, against
# kcat writing the very same messages to the same broker.
#
# kcat (librdkafka's own command-line producer, reading key<TAB>value lines
# from a file) is the floor here: it does nothing but produce. dmarcpipe
# parses XML, rolls up, formats JSON, and produces in a transaction. The
# script measures, in one run, on one generated input whose rollups are all
# distinct (dp-gen-report --distinct-ips, so every record is a rollup):
#
#   kcat      kcat -P -b BROKER -t topicB_i -K'\t' -z zstd -X linger.ms=50
#             -X batch.size=1000000 -X queue.buffering.max.messages=1000000
#             -l FILE, where FILE holds exactly the keys and values that
#             dmarcpipe writes (built once from a file-sink run);
#   kafka     dmarcpipe run --sink kafka://BROKER/topicA_i --state FRESH
#             --workers W --shards W INPUT, the whole process (parse, roll
#             up, producer start, ledger read, one transaction, commit);
#   file      dmarcpipe run --sink file:/dev/null, the same run without
#             Kafka. kafka - file estimates what the Kafka sink itself costs.
#   kcattx    kcat as above with -X transactional.id=...: every message in
#             one transaction, committed at the end, like one epoch of the
#             sink; the same delivery guarantee (idempotent producer, a
#             commit), where plain kcat promises less and does less.
#
# After a warm-up run of each (not measured: a fresh broker loads its
# transaction state on the first transactional producer), the three are
# interleaved, --runs times (default 3), with fresh topic names (and a fresh
# --instance-id, reports topic, ledger and --state) for every run. The
# topics are created before the clock starts (--no-precreate: by the
# producers, inside the measured time, about a second each), so that the
# runs measure producing into existing topics, as in production. The
# medians are reported: rollups/s for kcat, for dmarcpipe
# end to end, for the sink alone (rollups / median(kafka - file), the
# differences taken run by run), and the ratios sink-only/kcat and
# end-to-end/kcat. The broker runs on the same machine and competes for
# its cores, with both producers alike.
#
# Checked, and the script exits 1 when they disagree: each topic holds
# exactly N messages (dmarcpipe's read with isolation.level=read_committed);
# every dmarcpipe run's summary says N rollups, 1 epoch committed and none run
# again; on the first run, dmarcpipe's topic holds exactly the keys and
# values of the kcat file (sorted and compared). It never fails because
# something was slow.
#
# Usage: bench/kafka_vs_kcat.sh [--quick] [--runs N] [--rollups N]
#            [--per-report N] [--workers N] [--seed S] [--keep]
#            [--no-precreate] [-X KEY=VALUE]...
#
# Defaults: --runs 3, --rollups 500000 in reports of 5000 records
# (--per-report; the count is rounded up to a whole report), --workers 2
# (also --shards). --quick (for CI): 1 run, 20000 rollups in reports of
# 2000. -X passes a librdkafka property to dmarcpipe only (after its own
# defaults, so it overrides them): for experiments with the sink's settings;
# kcat's command stays as above.
#
# Environment:
#   KAFKA_BOOTSTRAP  HOST:PORT of a broker to use; default: one started with
#                    tests/kafka/start for this run and stopped on exit
#   BENCH_DIR        where the input is written and kept (reused when the
#                    same parameters are asked again); default: a temporary
#                    directory removed on exit
#   BUILD_DIR        build tree (default: <repo>/build)
#   DMARCPIPE, DP_GEN_REPORT   the binaries (default: $BUILD_DIR/...)
#   KCAT             kcat binary (default: kcat on PATH)
#   TMPDIR           scratch: the rollups file, then the kcat input (about
#                    455 bytes per rollup, 230 MB for 500k) and, on the first
#                    run, two sorted copies of it; removed on exit
#
# Needs kcat, gzip and GNU time at /usr/bin/time (Debian package "time").
#
# Exit status: 0 ok, 1 counts disagree or a tool failed, 2 usage error or a
# missing tool.

set -euo pipefail

me=kafka_vs_kcat
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$here/common.sh"
kcat=${KCAT:-kcat}

quick=0
runs=
rollups=
per_report=
workers=2
seed=1
keep=0
precreate=1
xprops=()

usage() { sed -n '/^# Usage:/,/^# Defaults:/{/^# Defaults:/d;/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --rollups) rollups=${2:?}; shift 2 ;;
        --per-report) per_report=${2:?}; shift 2 ;;
        --workers) workers=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        --no-precreate) precreate=0; shift ;;
        -X) case ${2:-} in *=*) xprops+=(-X "$2") ;; *) die "-X needs KEY=VALUE" 2 ;; esac; shift 2 ;;
        -X*=*) xprops+=(-X "${1#-X}"); shift ;;
        -h|--help) usage ;;
        *) echo "kafka_vs_kcat: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ "$quick" = 1 ]; then
    : "${runs:=1}" "${rollups:=20000}" "${per_report:=2000}"
else
    : "${runs:=3}" "${rollups:=500000}" "${per_report:=5000}"
fi
for v in runs:"$runs" rollups:"$rollups" per-report:"$per_report" workers:"$workers"; do
    posint "--${v%%:*}" "${v#*:}"
done
case $seed in ''|*[!0-9]*) die "--seed needs a number" 2 ;; esac
[ "$per_report" -le "$rollups" ] || per_report=$rollups
n_reports=$(((rollups + per_report - 1) / per_report))
n=$((n_reports * per_report))

[ -x "$gen" ] || die "dp-gen-report not found at $gen (build it, or set DP_GEN_REPORT)" 2
[ -x "$dmarcpipe" ] || die "dmarcpipe not found at $dmarcpipe (build it, or set DMARCPIPE)" 2
command -v "$kcat" >/dev/null || die "kcat not found (Debian package kcat, or set KCAT)" 2
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time (Debian package 'time')" 2
command -v gzip >/dev/null || die "gzip not found" 2

# On exit, the broker started here (if any) is stopped, then scratch and
# (unless --keep or BENCH_DIR) the input are removed.
broker_dir=
# shellcheck disable=SC2317  # called from the EXIT trap, through bench_dirs
stop_broker() {
    if [ -n "$broker_dir" ]; then
        "$repo/tests/kafka/stop" --dir "$broker_dir" >/dev/null 2>&1 ||
            echo "kafka_vs_kcat: could not stop the broker in $broker_dir" >&2
    fi
}
bench_dirs dp-kafka-bench dp-kafka-bench-in "$keep" stop_broker
trap 'exit 130' INT TERM

# --- broker ------------------------------------------------------------------
if [ -n "${KAFKA_BOOTSTRAP:-}" ]; then
    broker=$KAFKA_BOOTSTRAP
    broker_note="given (KAFKA_BOOTSTRAP)"
else
    echo "starting a broker (tests/kafka/start) ..." >&2
    # Twice: a start can fail by chance (a port taken meanwhile, a random
    # cluster id that StorageTool takes for an option).
    for attempt in 1 2; do
        if broker=$("$repo/tests/kafka/start" 2>"$scratch/kstart.err"); then
            broker_dir=$(sed -n 's/^tests\/kafka\/start: broker dir //p' "$scratch/kstart.err" | head -n 1)
            break
        fi
        cat "$scratch/kstart.err" >&2
        # a broker that failed after starting leaves its dir: stop and remove it
        d=$(sed -n 's/^tests\/kafka\/start: broker dir //p' "$scratch/kstart.err" | head -n 1)
        [ -z "$d" ] || [ ! -d "$d" ] || "$repo/tests/kafka/stop" --dir "$d" >/dev/null 2>&1 || true
        [ "$attempt" = 1 ] || die "tests/kafka/start failed"
        echo "kafka_vs_kcat: tests/kafka/start failed; trying once more" >&2
    done
    broker_note="started here (tests/kafka/start, single node, same machine)"
fi
"$kcat" -L -b "$broker" -m 10 >/dev/null 2>&1 || die "no broker answers at $broker"

# --- input -------------------------------------------------------------------
# Generated into a temporary name and renamed when complete, with the
# generator's totals beside it, so an interrupted run never leaves a
# half-written input to be reused.
input=$dir/kafka-${n_reports}x$per_report-s$seed-distinct
if [ -d "$input" ] && [ -s "$input.stats" ]; then
    echo "reusing $input" >&2
else
    echo "generating $input ($n_reports reports x $per_report records, --distinct-ips) ..." >&2
    rm -rf "$input.tmp"
    o=$input.tmp
    [ "$n_reports" = 1 ] && mkdir -p "$input.tmp" && o=$input.tmp/report-000000.xml
    "$gen" --reports "$n_reports" --records "$per_report" --distinct-ips --seed "$seed" -o "$o" \
        2>"$input.stats.tmp" || die "generation failed: $(cat "$input.stats.tmp")"
    find "$input.tmp" -name '*.xml' -print0 | xargs -0 -r -n 32 -P "$(nproc)" gzip -6 ||
        die "gzip failed"
    rm -rf "$input"
    mv "$input.tmp" "$input"
    mv "$input.stats.tmp" "$input.stats"
fi
gen_records=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' "$input.stats" | head -n 1)
[ "$gen_records" = "$n" ] || die "the generator wrote $gen_records records, expected $n"

status=0
mismatch() { echo "kafka_vs_kcat: MISMATCH: $1" >&2; status=1; }
cpu_of() { awk '{ printf "%.2f\n", $2 + $3 }' "$1"; }
sumval() { sed -n "s/.*$1:[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p" "$2" | head -n 1; }
dp_args=(--workers "$workers" --shards "$workers" --quarantine "$scratch/q")

# The messages: one file-sink run, then key<TAB>value lines for kcat. The key
# is what the Kafka sink builds: policy_domain|source_ip (empty when null).
echo "writing the rollups once (file sink) and the kcat input ..." >&2
rollups_file=$scratch/rollups.ndjson
kcat_in=$scratch/kcat-input.tsv
"$dmarcpipe" run --sink "file:$rollups_file" --reports /dev/null "${dp_args[@]}" "$input" \
    >/dev/null 2>"$scratch/first.err" || { cat "$scratch/first.err" >&2; die "dmarcpipe run (file sink) failed"; }
got=$(wc -l <"$rollups_file")
[ "$got" = "$n" ] || die "the file sink has $got rollups, expected $n (one per record)"
awk '{
    k = ""; ip = ""
    if (match($0, /"policy_domain":"[^"]*"/)) k = substr($0, RSTART + 17, RLENGTH - 18)
    if (match($0, /"source_ip":"[^"]*"/)) ip = substr($0, RSTART + 13, RLENGTH - 14)
    printf "%s|%s\t%s\n", k, ip, $0 }' "$rollups_file" >"$kcat_in"
rm -f "$rollups_file"
in_bytes=$(wc -c <"$kcat_in")

# count TOPIC: committed messages in TOPIC (all partitions).
count() {
    "$kcat" -C -b "$broker" -t "$1" -e -q -o beginning -X isolation.level=read_committed \
        -f '%o\n' 2>"$scratch/count.err" | wc -l
}

tag=$$-$(date +%s)
results=$scratch/results
: >"$results"

# one_kcat RUN plain|tx. tx: kcat with -X transactional.id, all its
# messages in one transaction, committed at the end, as the sink commits an
# epoch. The same delivery guarantee as the sink's (idempotent, acks=all, a
# commit), where plain kcat promises less and so does less.
one_kcat() {
    local kind=kcat what="" topic t0 t1 rc=0 tx=()
    if [ "$2" = tx ]; then
        kind=kcattx what=" (transactional)" tx=(-X "transactional.id=kcat-$tag-$1")
    fi
    topic=$kind-$tag-$1
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$kcat" -P -b "$broker" -t "$topic" -K$'\t' -z zstd -X linger.ms=50 -X batch.size=1000000 \
        -X queue.buffering.max.messages=1000000 "${tx[@]}" -l "$kcat_in" \
        >"$scratch/kcat.out" 2>"$scratch/kcat.err" || rc=$?
    t1=$(now_ns)
    [ "$rc" = 0 ] || { tail -n 20 "$scratch/kcat.err" >&2; die "kcat -P$what failed (exit $rc)"; }
    local c s
    c=$(count "$topic")
    [ "$c" = "$n" ] || mismatch "run $1: kcat's$what topic $topic holds $c committed messages, expected $n"
    s=$(secs "$t0" "$t1")
    echo "$kind $1 $s $(cpu_of "$scratch/time.out")" >>"$results"
    printf '  run %d: %-6s %8.3f s  cpu %6.2f s\n' "$1" "$kind" "$s" "$(cpu_of "$scratch/time.out")" >&2
}

one_dp() {  # RUN kafka|file
    local run=$1 kind=$2 t0 t1 rc=0 sink id=bench-$tag-$1
    local err=$scratch/dp-$kind.err
    local extra=()
    if [ "$kind" = kafka ]; then
        sink=kafka://$broker/dp-$tag-$run
        rm -rf "$scratch/state"
        extra=(--state "$scratch/state" --instance-id "$id" --reports-topic "rep-$id" "${xprops[@]}")
    else
        sink=file:/dev/null
        extra=(--reports /dev/null)
    fi
    rm -rf "$scratch/q"
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$dmarcpipe" run --sink "$sink" "${extra[@]}" "${dp_args[@]}" "$input" >/dev/null 2>"$err" || rc=$?
    t1=$(now_ns)
    [ "$rc" = 0 ] || { tail -n 20 "$err" >&2; die "dmarcpipe run --sink $sink failed (exit $rc)"; }
    local s r
    s=$(secs "$t0" "$t1")
    r=$(sumval rollups "$err")
    [ "$r" = "$n" ] || mismatch "run $run: dmarcpipe --sink $sink says $r rollups, expected $n"
    if [ "$kind" = kafka ]; then
        grep -q '^  epochs:   1 committed, 0 run again' "$err" ||
            mismatch "run $run: not one clean epoch: $(grep epochs: "$err" || echo none)"
        grep 'dmarcpipe: kafka' "$err" >&2 || true
        local c topic=dp-$tag-$run
        c=$(count "$topic")
        [ "$c" = "$n" ] || mismatch "run $run: dmarcpipe's topic $topic holds $c committed messages, expected $n"
        if [ "$run" = 1 ]; then
            # The same keys and values as the kcat input, in any order.
            "$kcat" -C -b "$broker" -t "$topic" -e -q -o beginning -X isolation.level=read_committed \
                -f '%k\t%s\n' 2>/dev/null | LC_ALL=C sort >"$scratch/a.sorted"
            LC_ALL=C sort "$kcat_in" >"$scratch/b.sorted"
            cmp -s "$scratch/a.sorted" "$scratch/b.sorted" ||
                mismatch "dmarcpipe's topic $topic and the kcat input differ: $(diff "$scratch/a.sorted" "$scratch/b.sorted" | head -n 4)"
            rm -f "$scratch/a.sorted" "$scratch/b.sorted"
        fi
    fi
    echo "$kind $run $s $(cpu_of "$scratch/time.out")" >>"$results"
    if [ "$kind" = kafka ]; then
        # the sink's own time, measured inside the run: from the first
        # rollup produced (the final flush) to the commit's return
        local inner
        inner=$(sed -n 's/^  kafka: .* committed in \([0-9.]*\) s .*/\1/p' "$err")
        [ -n "$inner" ] && echo "inner $run $inner 0" >>"$results"
    fi
    printf '  run %d: %-6s %8.3f s  cpu %6.2f s\n' "$run" "$kind" "$s" "$(cpu_of "$scratch/time.out")" >&2
}

# Warm-up, not measured: a fresh broker loads its transaction state on the
# first transactional producer ("Coordinator load in progress"), and the
# page cache takes the input and the kcat file.
echo "warming up ..." >&2
rm -rf "$scratch/state" "$scratch/q"
"$dmarcpipe" run --sink "kafka://$broker/warmup-$$" --state "$scratch/state" --instance-id "warmup-$$" \
    --reports-topic "warmup-rep-$$" "${xprops[@]}" "${dp_args[@]}" "$input" >/dev/null 2>"$scratch/warmup.err" ||
    { tail -n 20 "$scratch/warmup.err" >&2; die "dmarcpipe run (warm-up) failed"; }
head -n 1000 "$kcat_in" | "$kcat" -P -b "$broker" -t "warmup-kcat-$$" -K$'\t' >/dev/null 2>&1 ||
    die "kcat -P (warm-up) failed"
cat "$kcat_in" >/dev/null

# Topics: by default every topic of every run is created now, before the
# clock starts (a metadata request for it makes the broker create it, with
# auto.create.topics.enable), so that the runs measure producing into
# existing topics, as in production, and not the second or so that a first
# produce to a new topic waits for its leader. --no-precreate leaves them to
# be created by the producers, inside the measured time. The ledger topic
# then exists, empty, as it does (with records) on every run but the first
# in production, so dmarcpipe's start-up ledger read is measured as there.
if [ "$precreate" = 1 ]; then
    echo "creating the topics ..." >&2
    topics=()
    for i in $(seq 1 "$runs"); do
        topics+=("kcat-$tag-$i" "kcattx-$tag-$i" "dp-$tag-$i" "rep-bench-$tag-$i" "dmarcpipe.ledger.bench-$tag-$i")
    done
    for t in "${topics[@]}"; do "$kcat" -L -b "$broker" -t "$t" -m 10 >/dev/null 2>&1 || true; done
    for t in "${topics[@]}"; do
        for _ in $(seq 1 120); do
            "$kcat" -L -b "$broker" -t "$t" -m 10 2>/dev/null | grep -q "with [1-9][0-9]* partitions" && break
            sleep 0.25
        done
        "$kcat" -L -b "$broker" -t "$t" -m 10 2>/dev/null | grep -q "with [1-9][0-9]* partitions" ||
            die "topic $t was not created (is auto.create.topics.enable off? try --no-precreate)"
    done
fi

load_start=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)
echo "measuring: $runs run(s) of $n rollups against $broker, load average $load_start ..." >&2
for i in $(seq 1 "$runs"); do
    one_kcat "$i" plain
    one_kcat "$i" tx
    one_dp "$i" kafka
    one_dp "$i" file
done
load_end=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)

# median KIND COLUMN (3 wall, 4 cpu); KIND "diff": kafka - file, run by run.
median() {
    if [ "$1" = diff ]; then
        awk -v c="$2" '$1 == "kafka" { k[$2] = $c } $1 == "file" { f[$2] = $c }
            END { for (r in k) if (r in f) print k[r] - f[r] }' "$results"
    else
        awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$results"
    fi | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

totals=ok
[ "$status" = 0 ] || totals=MISMATCH
kc_s=$(median kcat 3) kc_c=$(median kcat 4)
kt_s=$(median kcattx 3) kt_c=$(median kcattx 4)
ka_s=$(median kafka 3) ka_c=$(median kafka 4)
fi_s=$(median file 3) fi_c=$(median file 4)
di_s=$(median diff 3) di_c=$(median diff 4)
in_s=$(median inner 3)
xdesc=${xprops[*]:-}
echo
echo "kafka vs kcat: $n rollups ($n_reports reports x $per_report, distinct keys), $(awk -v b="$in_bytes" -v n="$n" 'BEGIN { printf "%.0f bytes/message with key", b / n }')"
echo "  broker $broker, $broker_note; nproc $(nproc), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
echo "  median of $runs run(s); 1-minute load average $load_start before, $load_end after"
if [ "$precreate" = 1 ]; then
    echo "  topics created before the clock starts (rollups, reports, ledger; kcat's)"
else
    echo "  topics created by the producers, inside the measured time (--no-precreate)"
fi
[ -z "$xdesc" ] || echo "  dmarcpipe extra properties: $xdesc"
awk -v n="$n" -v w="$workers" -v kcs="$kc_s" -v kcc="$kc_c" -v kas="$ka_s" -v kac="$ka_c" \
    -v fis="$fi_s" -v fic="$fi_c" -v dis="$di_s" -v dic="$di_c" -v ins="$in_s" \
    -v kts="$kt_s" -v ktc="$kt_c" 'BEGIN {
    printf "  %-52s %8s %8s %11s %9s\n", "measure", "wall_s", "cpu_s", "rollups/s", "vs_kcat"
    printf "  %-52s %8.3f %8.2f %11.0f %8.1f%%\n", "kcat -P -z zstd (floor)", kcs, kcc, n / kcs, 100
    printf "  %-52s %8.3f %8.2f %11.0f %8.1f%%\n", "dmarcpipe run --sink kafka:// (end to end, w=" w ")", kas, kac, n / kas, 100 * kcs / kas
    printf "  %-52s %8.3f %8.2f %11.0f %9s\n", "dmarcpipe run --sink file:/dev/null (no Kafka)", fis, fic, n / fis, ""
    if (dis > 0)
        printf "  %-52s %8.3f %8.2f %11.0f %8.1f%%\n", "Kafka sink alone (kafka - file, estimate)", dis, dic, n / dis, 100 * kcs / dis
    else
        printf "  %-52s %8.3f %8.2f %11s %9s\n", "Kafka sink alone (kafka - file, estimate)", dis, dic, "n/a", "n/a"
    if (ins > 0)
        printf "  %-52s %8.3f %8s %11.0f %8.1f%%\n", "Kafka sink, measured in the run (produce..commit)", ins, "", n / ins, 100 * kcs / ins
    printf "  against kcat with the sink'"'"'s guarantee (transactional, one commit):\n"
    printf "  %-52s %8.3f %8.2f %11.0f %8.1f%%\n", "kcat -P -z zstd -X transactional.id=...", kts, ktc, n / kts, 100
    if (ins > 0)
        printf "  %-52s %8.3f %8s %11.0f %8.1f%%\n", "Kafka sink, measured in the run, vs transactional", ins, "", n / ins, 100 * kts / ins
    }'
echo "  counts: each topic $n committed messages, dmarcpipe's = the kcat input: $totals"
echo
awk -v n="$n" -v runs="$runs" -v w="$workers" -v pre="$precreate" -v kcs="$kc_s" -v kas="$ka_s" -v fis="$fi_s" -v dis="$di_s" \
    -v kcc="$kc_c" -v kac="$ka_c" -v dic="$di_c" -v t="$totals" -v ins="$in_s" -v kts="$kt_s" 'BEGIN {
    sink = dis > 0 ? n / dis : 0
    inner = ins > 0 ? n / ins : 0
    printf "bench kafka_vs_kcat rollups=%d runs=%d workers=%d precreate=%d kcat_s=%.3f kafka_s=%.3f file_s=%.3f sink_s=%.3f kcat_cpu_s=%.2f kafka_cpu_s=%.2f sink_cpu_s=%.2f kcat_per_s=%.0f e2e_per_s=%.0f sink_per_s=%.0f e2e_vs_kcat=%.3f sink_vs_kcat=%.3f sink_inner_s=%.3f sink_inner_per_s=%.0f sink_inner_vs_kcat=%.3f kcattx_s=%.3f sink_inner_vs_kcattx=%.3f totals=%s\n", \
        n, runs, w, pre, kcs, kas, fis, dis, kcc, kac, dic, n / kcs, n / kas, sink, kcs / kas, (dis > 0 ? kcs / dis : 0), ins, inner, (ins > 0 ? kcs / ins : 0), kts, (ins > 0 ? kts / ins : 0), t }'
[ "$keep" = 1 ] && [ -z "${BENCH_DIR:-}" ] && echo "kept the input in $dir" >&2
exit "$status"
