#!/usr/bin/env bash
# inbox_scaling.sh -- how the Kafka inbox spreads reports over workers: one,
# two and three `dmarcpipe run` processes of one consumer group reading the
# same inbox topic, against kcat reading that topic alone.
#
# The inbox (source/kafka_inbox.c) is there so that work can be divided
# among processes and machines.  The question is whether adding workers
# divides the partitions and loses nothing, and what reading through the
# inbox costs against reading the same reports from a folder.  On one
# machine the workers share its cores (and the broker's JVM): on 2 cores,
# 3 processes cannot go 3x faster; nproc is printed with every figure.
#
# One input: --reports gzipped reports (dp-gen-report, --records records
# each), produced into an inbox topic of --partitions partitions (kcat -P
# -p, one message per file, file i to partition i mod P, so the partitions
# hold the same number of messages within one).  Then, --runs times, in
# this order:
#
#   kcat     kcat -C -e -q -o beginning -X isolation.level=read_committed
#            -f '%S\n' over the inbox topic: every message fetched to the
#            end, nothing else; the floor of reading the inbox;
#   folder   dmarcpipe run --sink file:... --workers nproc over the same
#            files in a folder (no Kafka), for reference;
#   inbox N  for N in --processes (default 1,2,3): a fresh consumer group
#            and an inbox topic of its own, filled as above (a run appends
#            to its inbox: a message whose report another partition owns
#            is forwarded there), its rollups, reports and ledger topics,
#            all made before the clock starts; N processes
#              dmarcpipe run 'kafka://B/INBOX?group=G' --sink kafka://B/ROLLUPS
#                  --reports-topic REPORTS --state OWN --workers T --shards T
#            started at the same moment, T = max(1, nproc / N) so that N
#            processes do not ask for more threads than there are cores;
#            timed from the start until the last one exits.
#
# Checked, and the script exits 1 when they disagree: the folder run and
# every inbox run count exactly the generator's reports, records and
# messages (the processes' summaries, added up: no input rejected, no
# duplicates, every report accepted once); a read_committed consumer of
# each run's rollups topic finds the generator's records and messages, and
# of its reports topic one line per report; kcat reads every message and
# byte of the inbox.  It never fails because something was slow.
#
# A warm-up run (not measured) goes first: a fresh broker loads its
# transaction and group coordinators on the first use.
#
# Usage: bench/inbox_scaling.sh [--quick] [--runs N] [--reports N]
#            [--records N] [--partitions P] [--processes 1,2,3] [--seed S]
#            [--keep] [-X KEY=VALUE]...
#
# Defaults: --runs 3, 5000 reports of 100 records (367 MB of XML, 17 MB
# gzipped), 12 partitions, processes 1,2,3; about two minutes on 2 cores.
# --quick (for CI): 1 run, 240 reports of 20 records.  -X passes a
# librdkafka property to every dmarcpipe process (the inbox's consumer and
# the sink's producer), e.g. -X heartbeat.interval.ms=500: a member learns
# that another joined at its next heartbeat (librdkafka's default: 3 s),
# and only then does the group divide the partitions.
#
# Environment:
#   KAFKA_BOOTSTRAP  HOST:PORT of a broker to use; default: one started with
#                    tests/kafka/start for this run and stopped on exit
#   BENCH_DIR        where the input is written and kept (reused when the
#                    same parameters are asked again); default: a temporary
#                    directory removed on exit
#   BUILD_DIR        build tree (default: <repo>/build)
#   DMARCPIPE, DP_GEN_REPORT   the binaries (default: $BUILD_DIR/...)
#   CREATE_TOPIC     tests/kafka/create_topic.c built (default:
#                    $BUILD_DIR/tests/create_topic)
#   KCAT             kcat binary (default: kcat on PATH)
#
# Needs kcat, gzip and GNU time at /usr/bin/time (Debian package "time").
#
# Exit status: 0 ok, 1 totals disagree or a tool failed, 2 usage error or a
# missing tool.

set -euo pipefail

me=inbox_scaling
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$here/common.sh"
kcat=${KCAT:-kcat}
create_topic=${CREATE_TOPIC:-$build/tests/create_topic}

quick=0
runs=
n=
records=
partitions=12
procs_list=1,2,3
seed=1
keep=0
xprops=()

usage() { sed -n '/^# Usage:/,/^# Defaults:/{/^# Defaults:/d;/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --reports) n=${2:?}; shift 2 ;;
        --records) records=${2:?}; shift 2 ;;
        --partitions) partitions=${2:?}; shift 2 ;;
        --processes) procs_list=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -X) case ${2:-} in *=*) xprops+=(-X "$2") ;; *) die "-X needs KEY=VALUE" 2 ;; esac; shift 2 ;;
        -X*=*) xprops+=(-X "${1#-X}"); shift ;;
        -h|--help) usage ;;
        *) echo "inbox_scaling: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ "$quick" = 1 ]; then
    : "${runs:=1}" "${n:=240}" "${records:=20}"
else
    : "${runs:=3}" "${n:=5000}" "${records:=100}"
fi
for v in runs:"$runs" reports:"$n" records:"$records" partitions:"$partitions"; do
    posint "--${v%%:*}" "${v#*:}"
done
case $seed in ''|*[!0-9]*) die "--seed needs a number" 2 ;; esac
IFS=, read -r -a procs <<<"$procs_list"
[ "${#procs[@]}" -gt 0 ] || die "--processes needs a list such as 1,2,3" 2
for p in "${procs[@]}"; do posint --processes "$p"; done
[ "$n" -ge 2 ] || die "--reports needs at least 2" 2

[ -x "$gen" ] || die "dp-gen-report not found at $gen (build it, or set DP_GEN_REPORT)" 2
[ -x "$dmarcpipe" ] || die "dmarcpipe not found at $dmarcpipe (build it, or set DMARCPIPE)" 2
[ -x "$create_topic" ] || die "create_topic not found at $create_topic (build the tree with tests, or set CREATE_TOPIC)" 2
command -v "$kcat" >/dev/null || die "kcat not found (Debian package kcat, or set KCAT)" 2
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time (Debian package 'time')" 2
command -v gzip >/dev/null || die "gzip not found" 2
ncpu=$(nproc)

# On exit: the workers still running (an interrupted run), the broker
# started here, then scratch and (unless --keep or BENCH_DIR) the input.
broker_dir=
worker_pids=()
# shellcheck disable=SC2317  # called from the EXIT trap, through bench_dirs
stop_all() {
    local p
    # each pid is /usr/bin/time's: its child, the dmarcpipe, is stopped first
    for p in "${worker_pids[@]}"; do
        pkill -TERM -P "$p" 2>/dev/null || true
        kill "$p" 2>/dev/null || true
    done
    for p in "${worker_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$broker_dir" ]; then
        "$repo/tests/kafka/stop" --dir "$broker_dir" >/dev/null 2>&1 ||
            echo "inbox_scaling: could not stop the broker in $broker_dir" >&2
    fi
}
bench_dirs dp-inbox-bench dp-inbox-bench-in "$keep" stop_all
trap 'exit 130' INT TERM

# --- broker ------------------------------------------------------------------
# Its data goes beside the inputs (BENCH_DIR, else the temporary input
# directory); tests/kafka/stop removes it.
tag=$$-$(date +%s)
if [ -n "${KAFKA_BOOTSTRAP:-}" ]; then
    broker=$KAFKA_BOOTSTRAP
    broker_note="given (KAFKA_BOOTSTRAP)"
else
    echo "starting a broker (tests/kafka/start) ..." >&2
    # Twice: a start can fail by chance (a port taken meanwhile).
    for attempt in 1 2; do
        if broker=$("$repo/tests/kafka/start" --dir "$dir/broker-$tag-$attempt" 2>"$scratch/kstart.err"); then
            broker_dir=$dir/broker-$tag-$attempt
            break
        fi
        cat "$scratch/kstart.err" >&2
        [ ! -d "$dir/broker-$tag-$attempt" ] || "$repo/tests/kafka/stop" --dir "$dir/broker-$tag-$attempt" >/dev/null 2>&1 || true
        [ "$attempt" = 1 ] || die "tests/kafka/start failed"
        echo "inbox_scaling: tests/kafka/start failed; trying once more" >&2
    done
    broker_note="started here (tests/kafka/start, single node, same machine)"
fi
"$kcat" -L -b "$broker" -m 10 >/dev/null 2>&1 || die "no broker answers at $broker"

# The broker's CPU seconds so far (its JVM's utime + stime), when it runs
# here; "" otherwise.
broker_cpu() {
    local pid
    [ -n "$broker_dir" ] && [ -s "$broker_dir/pid" ] || return 0
    pid=$(cat "$broker_dir/pid")
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$pid/stat" \
        2>/dev/null || true
}

# --- input -------------------------------------------------------------------
# Generated into a temporary name and renamed when complete, with the
# generator's totals beside it, so an interrupted run never leaves a
# half-written input to be reused.
input=$dir/inbox-${n}x$records-s$seed
if [ -d "$input" ] && [ -s "$input.stats" ]; then
    echo "reusing $input" >&2
else
    echo "generating $input ($n reports x $records records, gzipped) ..." >&2
    rm -rf "$input.tmp"
    "$gen" --reports "$n" --records "$records" --seed "$seed" -o "$input.tmp" 2>"$input.stats.tmp" ||
        die "generation failed: $(cat "$input.stats.tmp")"
    find "$input.tmp" -name '*.xml' -print0 | xargs -0 -r -n 64 -P "$ncpu" gzip -6 || die "gzip failed"
    rm -rf "$input"
    mv "$input.tmp" "$input"
    mv "$input.stats.tmp" "$input.stats"
fi
gen_records=$(kv records "$input.stats")
gen_messages=$(kv messages "$input.stats")
xml_bytes=$(kv bytes "$input.stats")
[ "$gen_records" = $((n * records)) ] || die "the generator wrote $gen_records records, expected $((n * records))"
find "$input" -name '*.xml.gz' | LC_ALL=C sort >"$scratch/files"
[ "$(wc -l <"$scratch/files")" = "$n" ] || die "$input holds $(wc -l <"$scratch/files") reports, expected $n"
gz_bytes=$(xargs stat -c %s <"$scratch/files" | awk '{ s += $1 } END { print s }')

status=0
mismatch() { echo "inbox_scaling: MISMATCH: $1" >&2; status=1; }
# sumval FIELD FILE...: FIELD's number in the run summaries (stderr), added up
sumval() {
    sed -n "s/.*[[:space:]]$1:[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p" "${@:2}" | awk '{ s += $1 } END { print s + 0 }'
}
# the summary's first line: "dmarcpipe run: N inputs (R rejected) ..."
suminputs() {
    sed -n 's/^dmarcpipe run: \([0-9][0-9]*\) inputs (\([0-9][0-9]*\) rejected).*/\1 \2/p' "$@" |
        awk '{ i += $1; r += $2 } END { print i + 0, r + 0 }'
}
# a summary line's second number, e.g. "reports:  N accepted, R rejected, D duplicate" -> "N R D"
summary_reports() {
    sed -n 's/^  reports:  \([0-9]*\) accepted, \([0-9]*\) rejected, \([0-9]*\) duplicate.*/\1 \2 \3/p' "$@" |
        awk '{ a += $1; r += $2; d += $3 } END { print a + 0, r + 0, d + 0 }'
}
# check_summaries WHAT LOG...: every input once, every report accepted,
# and the generator's records and messages
check_summaries() {
    local what=$1; shift
    local ir rep rec msg
    ir=$(suminputs "$@")
    rep=$(summary_reports "$@")
    rec=$(sumval records "$@")
    msg=$(sumval messages "$@")
    # an input is a message read; a message that holds a report another
    # partition owns is forwarded there and read again, so inputs >= n
    if [ "${ir% *}" -lt "$n" ] || [ "${ir#* }" != 0 ]; then
        mismatch "$what: inputs (rejected) $ir, expected at least $n, 0"
    fi
    [ "$rep" = "$n 0 0" ] || mismatch "$what: reports accepted, rejected, duplicate $rep, expected $n 0 0"
    [ "$rec" = "$gen_records" ] || mismatch "$what: $rec records in the summaries, the generator wrote $gen_records"
    [ "$msg" = "$gen_messages" ] || mismatch "$what: $msg messages in the summaries, the generator wrote $gen_messages"
}
# consume TOPIC FORMAT: the topic's committed messages, printed with FORMAT
consume() {
    "$kcat" -C -b "$broker" -t "$1" -e -q -o beginning -X isolation.level=read_committed -f "$2" \
        2>"$scratch/consume.err" || { cat "$scratch/consume.err" >&2; echo "consume-failed"; }
}
# rollup_totals TOPIC: "LINES RECORDS MESSAGES" of the rollups it holds
rollup_totals() {
    consume "$1" '%s\n' | awk '
        $0 == "consume-failed" { bad = 1 }
        { if (match($0, /"messages":[0-9]+/)) m += substr($0, RSTART + 11, RLENGTH - 11)
          if (match($0, /"records":[0-9]+/)) r += substr($0, RSTART + 10, RLENGTH - 10)
          n++ }
        END { if (bad) print "failed"; else printf "%d %d %d\n", n, r, m }'
}
# wait_topic TOPIC: until the broker has a leader for it (made by a
# metadata request, with auto.create.topics.enable)
wait_topic() {
    local _
    for _ in $(seq 1 120); do
        "$kcat" -L -b "$broker" -t "$1" -m 10 2>/dev/null | grep -q "with [1-9][0-9]* partitions" && return 0
        sleep 0.25
    done
    die "topic $1 was not created (is auto.create.topics.enable off?)"
}


# --- the inbox ---------------------------------------------------------------
# make_inbox TOPIC: the reports produced into a new topic, file i to
# partition i mod P.  Every measured run reads an inbox of its own, made
# before the clock starts: a run appends to the inbox it reads (a message
# holding a report another partition owns is forwarded there), so a second
# group on the same topic would find more than the reports.
make_inbox() {
    local p got
    "$create_topic" "$broker" "$1" "$partitions" >/dev/null 2>"$scratch/create.err" ||
        die "create_topic $1 failed: $(cat "$scratch/create.err")"
    for p in $(seq 0 $((partitions - 1))); do
        awk -v p="$p" -v np="$partitions" '(NR - 1) % np == p' "$scratch/files" >"$scratch/part"
        [ -s "$scratch/part" ] || continue
        xargs "$kcat" -P -b "$broker" -t "$1" -p "$p" <"$scratch/part" 2>"$scratch/produce.err" ||
            die "kcat -P -p $p failed: $(cat "$scratch/produce.err")"
    done
    consume "$1" '%S\n' | awk -v n="$n" -v b="$gz_bytes" '{ c++; s += $1 } END { exit !(c == n && s == b) }' ||
        die "the inbox $1 does not hold the $n reports ($gz_bytes bytes) produced into it"
}
inbox=inbox-$tag
echo "producing $n reports into $inbox ($partitions partitions) ..." >&2
make_inbox "$inbox"
got=$(consume "$inbox" '%p\n' | sort | uniq -c | awk '{ printf "%s%d", s, $1; s = "/" } END { print "" }')
echo "  messages per partition: $got" >&2

# --- warm-up -------------------------------------------------------------------
# A topic of its own, a few reports: the broker loads its transaction and
# group coordinators, and the page cache takes the input.
echo "warming up ..." >&2
"$create_topic" "$broker" "warm-$tag" 2 >/dev/null 2>&1 || die "create_topic warm-$tag failed"
head -n 4 "$scratch/files" | xargs "$kcat" -P -b "$broker" -t "warm-$tag" -p 0 2>/dev/null || die "kcat -P (warm-up) failed"
"$dmarcpipe" run "kafka://$broker/warm-$tag?group=warm-$tag" --sink "kafka://$broker/warm-roll-$tag" \
    --reports-topic "warm-rep-$tag" --state "$scratch/warm-state" --quarantine "$scratch/warm-q" "${xprops[@]}" \
    >/dev/null 2>"$scratch/warm.err" || { tail -n 20 "$scratch/warm.err" >&2; die "dmarcpipe run (warm-up) failed"; }
xargs cat <"$scratch/files" >/dev/null

results=$scratch/results
: >"$results"

# one_kcat RUN: the inbox read to its end, every message fetched
one_kcat() {
    local t0 t1 c
    t0=$(now_ns)
    c=$(consume "$inbox" '%S\n' | awk '{ c++; s += $1 } END { printf "%d %d\n", c, s }')
    t1=$(now_ns)
    [ "$c" = "$n $gz_bytes" ] || mismatch "run $1: kcat read $c (messages bytes), expected $n $gz_bytes"
    echo "kcat 0 $1 $(secs "$t0" "$t1") 0 0 -" >>"$results"
    printf '  run %d: %-22s %8.3f s\n' "$1" "kcat (floor)" "$(secs "$t0" "$t1")" >&2
}

# one_folder RUN: the same files from a folder, no Kafka
one_folder() {
    local t0 t1 rc=0 d=$scratch/folder
    rm -rf "$d"
    mkdir -p "$d"
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S' -o "$d/time" "$dmarcpipe" run --sink "file:$d/rollups.ndjson" \
        --reports "$d/reports.ndjson" --quarantine "$d/q" --workers "$ncpu" --shards "$ncpu" "$input" \
        >/dev/null 2>"$d/log" || rc=$?
    t1=$(now_ns)
    [ "$rc" = 0 ] || { tail -n 20 "$d/log" >&2; die "dmarcpipe run (folder) failed (exit $rc)"; }
    check_summaries "run $1, folder" "$d/log"
    local tot
    tot=$(awk '{ if (match($0, /"messages":[0-9]+/)) m += substr($0, RSTART + 11, RLENGTH - 11)
                 if (match($0, /"records":[0-9]+/)) r += substr($0, RSTART + 10, RLENGTH - 10) }
               END { printf "%d %d\n", r, m }' "$d/rollups.ndjson")
    [ "$tot" = "$gen_records $gen_messages" ] ||
        mismatch "run $1, folder: the rollups sum to $tot (records messages), expected $gen_records $gen_messages"
    [ "$(wc -l <"$d/reports.ndjson")" = "$n" ] || mismatch "run $1, folder: the reports feed has not $n lines"
    echo "folder 1 $1 $(secs "$t0" "$t1") $(awk '{ print $2 + $3 }' "$d/time") 0 -" >>"$results"
    printf '  run %d: %-22s %8.3f s\n' "$1" "folder, $ncpu workers" "$(secs "$t0" "$t1")" >&2
    rm -rf "$d"
}

# one_inbox RUN N: N processes of a fresh group, started together
one_inbox() {
    local run=$1 np=$2 threads=$(($(nproc) / $2)) g=g-$tag-$1-$2 d=$scratch/inbox-$1-$2 i rc
    [ "$threads" -ge 1 ] || threads=1
    local roll=roll-$g rep=rep-$g in=inbox-$g
    mkdir -p "$d"
    make_inbox "$in"
    for t in "$roll" "$rep" "dmarcpipe.ledger.$g"; do "$kcat" -L -b "$broker" -t "$t" -m 10 >/dev/null 2>&1 || true; done
    for t in "$roll" "$rep" "dmarcpipe.ledger.$g"; do wait_topic "$t"; done
    local b0 b1 t0 t1
    b0=$(broker_cpu)
    worker_pids=()
    t0=$(now_ns)
    for i in $(seq 1 "$np"); do
        /usr/bin/time -f '%e %U %S' -o "$d/time$i" "$dmarcpipe" run "kafka://$broker/$in?group=$g" \
            --sink "kafka://$broker/$roll" --reports-topic "$rep" --state "$d/state$i" --quarantine "$d/q$i" \
            --workers "$threads" --shards "$threads" "${xprops[@]}" >/dev/null 2>"$d/log$i" &
        worker_pids+=($!)
    done
    local failed=
    for i in $(seq 1 "$np"); do
        rc=0
        wait "${worker_pids[$((i - 1))]}" || rc=$?
        [ "$rc" = 0 ] || failed="$failed process $i exited $rc;"
    done
    t1=$(now_ns)
    worker_pids=()
    b1=$(broker_cpu)
    if [ -n "$failed" ]; then
        for i in $(seq 1 "$np"); do echo "--- process $i:" >&2; tail -n 15 "$d/log$i" >&2; done
        die "run $run, $np process(es):$failed"
    fi
    # inputs each process counted, and when each exited (its wall time)
    local logs=() split='' exits=''
    for i in $(seq 1 "$np"); do
        logs+=("$d/log$i")
        split=$split${split:+/}$(suminputs "$d/log$i" | cut -d ' ' -f 1)
        exits=$exits${exits:+/}$(cut -d ' ' -f 1 "$d/time$i")
    done
    check_summaries "run $run, $np process(es)" "${logs[@]}"
    local tot reps
    tot=$(rollup_totals "$roll")
    [ "${tot#* }" = "$gen_records $gen_messages" ] ||
        mismatch "run $run, $np process(es): topic $roll holds (lines records messages) $tot, expected records $gen_records messages $gen_messages"
    reps=$(consume "$rep" '%o\n' | wc -l)
    [ "$reps" = "$n" ] || mismatch "run $run, $np process(es): topic $rep holds $reps committed reports, expected $n"
    local cpu bcpu=0
    cpu=$(cat "$d"/time* | awk '{ s += $2 + $3 } END { printf "%.2f\n", s }')
    [ -z "$b0" ] || [ -z "$b1" ] || bcpu=$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f\n", b - a }')
    echo "inbox $np $run $(secs "$t0" "$t1") $cpu $bcpu $split $exits" >>"$results"
    printf '  run %d: %-22s %8.3f s  inputs per process %s, exits at %s s; cpu %s s, broker %s s\n' "$run" \
        "inbox, $np x $threads thr" "$(secs "$t0" "$t1")" "$split" "$exits" "$cpu" "$bcpu" >&2
    rm -rf "$d"
}

load_start=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)
echo "measuring: $runs run(s) of $n reports, nproc $ncpu, load average $load_start ..." >&2
for r in $(seq 1 "$runs"); do
    one_kcat "$r"
    one_folder "$r"
    for p in "${procs[@]}"; do one_inbox "$r" "$p"; done
done
load_end=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)

# median KIND PROCESSES COLUMN (4 wall, 5 cpu, 6 broker cpu)
median() {
    awk -v k="$1" -v p="$2" -v c="$3" '$1 == k && $2 == p { print $c }' "$results" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) { print "nan"; exit }
              if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# COLUMN (7 inputs per process, 8 their exits) of the median run of PROCESSES
of_median() {
    local m; m=$(median inbox "$1" 4)
    awk -v p="$1" -v m="$m" -v c="$2" '$1 == "inbox" && $2 == p && $4 == m { print $c; exit }' "$results"
}

totals=ok
[ "$status" = 0 ] || totals=MISMATCH
kc_s=$(median kcat 0 4)
fo_s=$(median folder 1 4)
one_s=$(median inbox "${procs[0]}" 4)
echo
echo "inbox scaling: $n reports x $records records ($(awk -v b="$xml_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB of XML, $(awk -v b="$gz_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB gzipped) in $partitions partitions"
echo "  broker $broker, $broker_note; nproc $ncpu, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
echo "  median of $runs run(s); 1-minute load average $load_start before, $load_end after"
[ ${#xprops[@]} = 0 ] || echo "  dmarcpipe extra properties: ${xprops[*]}"
printf '  %-40s %8s %10s %9s %8s %8s %8s  %s\n' measure wall_s reports/s XML_MB/s vs_first cpu_s broker_s "inputs per process"
printf '  %-40s %8.3f %10.0f %9.1f %8s %8s %8s\n' "kcat -C read_committed (floor)" "$kc_s" \
    "$(awk -v n="$n" -v s="$kc_s" 'BEGIN { print n / s }')" "$(awk -v b="$xml_bytes" -v s="$kc_s" 'BEGIN { print b / 1e6 / s }')" "" "" ""
printf '  %-40s %8.3f %10.0f %9.1f %8s %8s %8s\n' "dmarcpipe run FOLDER, $ncpu workers" "$fo_s" \
    "$(awk -v n="$n" -v s="$fo_s" 'BEGIN { print n / s }')" "$(awk -v b="$xml_bytes" -v s="$fo_s" 'BEGIN { print b / 1e6 / s }')" "" \
    "$(median folder 1 5)" ""
# the -X properties, in one word for the bench line ("-" when none)
xdesc=$(printf '%s' "${xprops[*]:-}" | sed 's/-X //g; s/ /,/g')
[ -n "$xdesc" ] || xdesc=-
lines=()
for p in "${procs[@]}"; do
    s=$(median inbox "$p" 4) threads=$((ncpu / p))
    [ "$threads" -ge 1 ] || threads=1
    cpu=$(median inbox "$p" 5) bcpu=$(median inbox "$p" 6) split=$(of_median "$p" 7) exits=$(of_median "$p" 8)
    printf '  %-40s %8.3f %10.0f %9.1f %7.2fx %8s %8s  %s (exits at %s s)\n' "inbox, $p process(es) x $threads thread(s)" "$s" \
        "$(awk -v n="$n" -v s="$s" 'BEGIN { print n / s }')" "$(awk -v b="$xml_bytes" -v s="$s" 'BEGIN { print b / 1e6 / s }')" \
        "$(awk -v a="$one_s" -v s="$s" 'BEGIN { print a / s }')" "$cpu" "$bcpu" "$split" "$exits"
    lines+=("$(awk -v n="$n" -v rec="$records" -v part="$partitions" -v runs="$runs" -v nproc="$ncpu" -v p="$p" \
        -v thr="$threads" -v s="$s" -v one="$one_s" -v kc="$kc_s" -v fo="$fo_s" -v xb="$xml_bytes" -v gb="$gz_bytes" \
        -v cpu="$cpu" -v bcpu="$bcpu" -v spl="$split" -v ex="$exits" -v props="$xdesc" -v t="$totals" 'BEGIN {
        printf "bench inbox_scaling processes=%d threads=%d reports=%d records=%d partitions=%d runs=%d nproc=%d wall_s=%.3f reports_per_s=%.0f xml_mbps=%.1f gz_mbps=%.2f vs_one=%.2f kcat_s=%.3f kcat_reports_per_s=%.0f vs_kcat=%.3f folder_s=%.3f folder_reports_per_s=%.0f vs_folder=%.3f cpu_s=%s broker_cpu_s=%s split=%s exits_s=%s props=%s totals=%s\n",
            p, thr, n, rec, part, runs, nproc, s, n / s, xb / 1e6 / s, gb / 1e6 / s, one / s, kc, n / kc, kc / s, fo, n / fo, fo / s, cpu, bcpu, spl, ex, props, t }')")
done
echo "  totals (summaries, read_committed rollups and reports, kcat's messages and bytes): $totals"
echo
printf '%s\n' "${lines[@]}"
[ "$keep" = 1 ] && [ -z "${BENCH_DIR:-}" ] && echo "kept the input in $dir" >&2
exit "$status"
