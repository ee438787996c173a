#!/usr/bin/env bash
# run_scaling.sh -- how `dmarcpipe run` scales, how close one worker comes
# to the floor, and what a distinct rollup key costs in memory.
#
# Three measures, in one run, on generated inputs whose totals are known:
#
#   scaling  records/s of `dmarcpipe run` with 1..N workers (shards = workers)
#            on (a) a directory of many gzipped reports and (b) one big
#            gzipped report; median wall time of --runs, speedup against
#            1 worker. Nothing is pinned: every core is available.
#   floor    `dmarcpipe run --workers 1 --shards 1` on the big report against
#            dp-floor (bare expat + inflate) on the same file, interleaved in
#            the same loop; the ratio is given for wall time and for CPU time
#            (user + sys), since the run has two busy threads (worker, shard).
#            `dmarcpipe parse --summary` is measured beside them for reference.
#   keys     peak RSS of `dmarcpipe run --workers 2 --shards 2` on input where
#            every record is a rollup key of its own (dp-gen-report
#            --distinct-ips), and bytes of RSS per key above a baseline run on
#            one of those reports alone.
#
# Every run's totals (reports, records, messages in the run summary on
# stderr; rollup lines and their sums in the sink, on the first run of each
# configuration) are checked against the generator's: the script exits 1
# when they disagree. It never fails because something was slow or big;
# targets are printed, not asserted.
#
# --baseline BIN measures a second dmarcpipe binary, built from the code
# before a change, in the same run: for scaling and floor, every run of the
# current binary has the same run of the baseline beside it, in the same
# loop (the two take turns going first from one round to the next), so
# that the host's noise hits both alike. The baseline's totals are checked
# as the current binary's are. It adds `bench run_scaling_baseline` and
# `bench run_vs_floor_baseline` lines (the fields of run_scaling and
# run_vs_floor; the parse reference is not run for the baseline) and one
# `bench baseline_compare` line: run / floor and the 2-worker speedup and
# records/s on the many reports, current and baseline, and each *_change_pct
# (current over baseline, in percent: below 0 the current code is slower).
# keys is measured with the current binary only.
#
# Usage: bench/run_scaling.sh [--quick] [--runs N] [--max-workers N]
#            [--workers-list 1,2,4] [--reports N] [--records N]
#            [--size 256M|BYTES] [--keys N] [--keys-per-report N]
#            [--ips N] [--seed S] [--measure scaling,floor,keys] [--keep]
#            [--baseline BIN]
#
# Defaults: --runs 3; workers 1..nproc (1, 2, 4, ... and nproc above 8
# cores); 2000 reports of 500 records; a 256M report (uncompressed, just
# under that size); 10M keys in reports of 5000 records (rounded up to a
# whole report); 100000 distinct IPs in the scaling inputs.
# --quick (for CI): 1 run, workers 1 and 2, 20 reports of 100 records, a 4M
# report, 100k keys; takes seconds.
#
# Environment:
#   BENCH_DIR     where inputs are written and kept (reused when the same
#                 parameters are asked again; the big report has the same
#                 name as parse_vs_floor.sh's, so the two share it); default:
#                 a temporary directory removed on exit
#   BUILD_DIR     build tree (default: <repo>/build)
#   DMARCPIPE     dmarcpipe binary (default: $BUILD_DIR/dmarcpipe)
#   BASELINE_DMARCPIPE   the baseline binary, as --baseline (default: none)
#   DP_GEN_REPORT, DP_FLOOR   the bench tools (default: $BUILD_DIR/bench/...)
#   TMPDIR        scratch (sink output: ~430 bytes per rollup, 4.3 GB for
#                 10M keys, removed after each run)
#
# Needs GNU time at /usr/bin/time (Debian package "time") for CPU time and
# peak RSS, and gzip.
#
# Exit status: 0 ok, 1 totals disagree or a tool failed, 2 usage error or a
# missing tool.

set -euo pipefail

me=run_scaling
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$here/common.sh"

ncpu=$(nproc)
quick=0
runs=
max_workers=
workers_list=
n_reports=
n_records=
size=
keys=
keys_per=5000
ips=100000
seed=1
measures=scaling,floor,keys
keep=0
baseline=${BASELINE_DMARCPIPE:-}

usage() { sed -n '/^# Usage:/,/^# Defaults:/{/^# Defaults:/d;/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --max-workers) max_workers=${2:?}; shift 2 ;;
        --workers-list) workers_list=${2:?}; shift 2 ;;
        --reports) n_reports=${2:?}; shift 2 ;;
        --records) n_records=${2:?}; shift 2 ;;
        --size) size=${2:?}; shift 2 ;;
        --keys) keys=${2:?}; shift 2 ;;
        --keys-per-report) keys_per=${2:?}; shift 2 ;;
        --ips) ips=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --measure) measures=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        --baseline) baseline=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "run_scaling: unknown argument '$1'" >&2; usage ;;
    esac
done

if [ "$quick" = 1 ]; then
    : "${runs:=1}" "${n_reports:=20}" "${n_records:=100}" "${size:=4M}" "${keys:=100000}"
    [ -n "$max_workers" ] || [ -n "$workers_list" ] || workers_list=1,2
else
    : "${runs:=3}" "${n_reports:=2000}" "${n_records:=500}" "${size:=256M}" "${keys:=10000000}"
fi
: "${max_workers:=$ncpu}"
for v in runs:"$runs" max-workers:"$max_workers" reports:"$n_reports" records:"$n_records" \
         keys:"$keys" keys-per-report:"$keys_per" ips:"$ips"; do
    posint "--${v%%:*}" "${v#*:}"
done
case $seed in ''|*[!0-9]*) die "--seed needs a number" 2 ;; esac

want_scaling=0 want_floor=0 want_keys=0
IFS=, read -r -a mlist <<<"$measures"
for m in "${mlist[@]}"; do
    case $m in
        scaling) want_scaling=1 ;;
        floor) want_floor=1 ;;
        keys) want_keys=1 ;;
        *) die "--measure takes scaling, floor and keys, got '$m'" 2 ;;
    esac
done

# Worker counts: all of 1..N up to 8, then powers of two and N itself.
if [ -n "$workers_list" ]; then
    IFS=, read -r -a wcounts <<<"$workers_list"
    for w in "${wcounts[@]}"; do posint --workers-list "$w"; done
else
    wcounts=()
    for ((w = 1; w <= max_workers; w++)); do
        if [ "$max_workers" -le 8 ] || [ $((w & (w - 1))) = 0 ] || [ "$w" = "$max_workers" ]; then
            wcounts+=("$w")
        fi
    done
fi
base_w=${wcounts[0]}

# Sizes are binary, like dp-gen-report's: 256M = 256 MiB.
bytes=$(awk -v s="$size" 'BEGIN {
    if (match(s, /^[0-9]+/) == 0) exit 1
    n = substr(s, 1, RLENGTH); u = toupper(substr(s, RLENGTH + 1))
    sub(/I?B$/, "", u)
    m = (u == "") ? 1 : (u == "K") ? 1024 : (u == "M") ? 1048576 : \
        (u == "G") ? 1073741824 : -1
    if (m < 0) exit 1
    printf "%.0f\n", n * m }') || die "bad --size '$size'" 2

[ -x "$gen" ] || die "dp-gen-report not found at $gen (build it, or set DP_GEN_REPORT)" 2
[ -x "$dmarcpipe" ] || die "dmarcpipe not found at $dmarcpipe (build it, or set DMARCPIPE)" 2
if [ "$want_floor" = 1 ] && [ ! -x "$floor" ]; then
    die "dp-floor not found at $floor (build it, or set DP_FLOOR)" 2
fi
if [ -n "$baseline" ]; then
    if [ ! -x "$baseline" ] || [ -d "$baseline" ]; then
        die "baseline dmarcpipe not found at $baseline (--baseline, BASELINE_DMARCPIPE)" 2
    fi
    [ "$want_scaling" = 1 ] || [ "$want_floor" = 1 ] ||
        die "--baseline compares the scaling and floor measures; --measure has neither" 2
fi
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time (Debian package 'time')" 2
command -v gzip >/dev/null || die "gzip not found" 2

# Scratch is always removed; the inputs only when they live in our own
# temporary directory and --keep was not given.
bench_dirs dp-scaling-run dp-scaling "$keep"


# --- inputs ----------------------------------------------------------------
# Each is generated into a temporary name and renamed when complete, with
# the generator's totals beside it in NAME.stats, so an interrupted run never
# leaves a half-written input to be reused.

# gen_dir NAME REPORTS GEN-ARGS...: REPORTS reports in directory NAME, each
# gzipped on its own (report-000000.xml.gz, ...).
gen_dir() {
    local d=$dir/$1 n=$2; shift 2
    if [ -d "$d" ] && [ -s "$d.stats" ]; then
        echo "reusing $d" >&2
        return
    fi
    echo "generating $d (--reports $n $*) ..." >&2
    rm -rf "$d.tmp"
    # dp-gen-report writes a single report to a file, not into a directory.
    local o=$d.tmp
    [ "$n" = 1 ] && mkdir -p "$d.tmp" && o=$d.tmp/report-000000.xml
    "$gen" --reports "$n" "$@" -o "$o" 2>"$d.stats.tmp" ||
        die "generation failed: $(cat "$d.stats.tmp")"
    find "$d.tmp" -name '*.xml' -print0 | xargs -0 -r -n 32 -P "$ncpu" gzip -6 ||
        die "gzip failed"
    rm -rf "$d"
    mv "$d.tmp" "$d"
    mv "$d.stats.tmp" "$d.stats"
}

# gen_file NAME GEN-ARGS...: one report, gzipped.
gen_file() {
    local f=$dir/$1; shift
    if [ -s "$f" ] && [ -s "$f.stats" ]; then
        echo "reusing $f" >&2
        return
    fi
    echo "generating $f ($*) ..." >&2
    "$gen" "$@" 2>"$f.stats.tmp" | gzip -6 >"$f.tmp" || die "generation failed: $(cat "$f.stats.tmp")"
    mv "$f.tmp" "$f"
    mv "$f.stats.tmp" "$f.stats"
}

need_many=$want_scaling
need_big=$((want_scaling | want_floor))
many=$dir/many-${n_reports}x${n_records}-s$seed-i$ips
# Same name and command as parse_vs_floor.sh's input, so BENCH_DIR shares it.
big=$dir/report-$bytes-s$seed-i$ips-rfc7489.xml.gz
[ "$need_many" = 1 ] &&
    gen_dir "${many##*/}" "$n_reports" --records "$n_records" --ips "$ips" --seed "$seed"
[ "$need_big" = 1 ] &&
    gen_file "${big##*/}" --target-bytes "$bytes" --max-bytes "$bytes" --seed "$seed" \
        --ips "$ips" --schema rfc7489

if [ "$want_keys" = 1 ]; then
    [ "$keys_per" -le "$keys" ] || keys_per=$keys
    keys_reports=$(((keys + keys_per - 1) / keys_per))
    keys_total=$((keys_reports * keys_per))
    keysdir=$dir/keys-${keys_reports}x$keys_per-s$seed
    gen_dir "${keysdir##*/}" "$keys_reports" --distinct-ips --records "$keys_per" \
        --seed "$seed"
    # The baseline is the first of those reports alone: the same shape, so
    # per-report memory (pending table, batches) is in it too. Its totals
    # come from generating report 0 again, to /dev/null.
    keys_base=$keysdir/report-000000.xml.gz
    if [ "$keys_reports" = 1 ]; then
        keys_base_stats=$keysdir.stats
    else
        keys_base_stats=$keysdir.base.stats
        [ -s "$keys_base_stats" ] ||
            "$gen" --distinct-ips --records "$keys_per" --seed "$seed" 2>"$keys_base_stats" >/dev/null
    fi
fi

# --- one run of dmarcpipe ------------------------------------------------------
# dp_run BIN STATS-FILE EXPECT-REPORTS VERIFY-SINK LABEL ARGS... runs `BIN
# run ARGS...` (BIN: a dmarcpipe binary) and sets: r_wall r_cpu r_rss
# r_rollups. Totals are checked against STATS-FILE; with VERIFY-SINK=1 the
# sink's rollup lines are summed too (messages and records: each generated
# report covers exactly one UTC day, so with the 1d window a record is
# exactly one rollup share).
status=0
mismatch() { echo "run_scaling: $1: $2" >&2; status=1; }
# "  records:  N   messages: M" -> value after LABEL: in the summary.
sumval() { sed -n "s/.*$1:[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p" "$2" | head -n 1; }

dp_run() {
    local bin=$1 stats=$2 exp_reports=$3 verify=$4 label=$5; shift 5
    local exp_records exp_messages out=$scratch/r.ndjson rep=$scratch/rep.ndjson
    exp_records=$(kv records "$stats")
    exp_messages=$(kv messages "$stats")
    rm -rf "$scratch/q" "$out" "$rep"
    local t0 t1 rc=0
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$bin" run --sink "file:$out" --reports "$rep" --quarantine "$scratch/q" "$@" \
        >"$scratch/dp.out" 2>"$scratch/dp.err" || rc=$?
    t1=$(now_ns)
    if [ "$rc" != 0 ]; then
        tail -n 20 "$scratch/dp.err" >&2
        die "$label: $bin run $* failed (exit $rc)"
    fi
    r_wall=$(secs "$t0" "$t1")
    read -r _ u s r_rss <"$scratch/time.out" || die "$label: cannot read /usr/bin/time output"
    r_cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f\n", u + s }')

    local e=$scratch/dp.err got_records got_messages got_inputs got_inrej got_acc got_rej got_dup
    got_records=$(sumval records "$e")
    got_messages=$(sumval messages "$e")
    got_inputs=$(sed -n 's/^dmarcpipe run: \([0-9]*\) inputs (\([0-9]*\) rejected).*/\1/p' "$e")
    got_inrej=$(sed -n 's/^dmarcpipe run: \([0-9]*\) inputs (\([0-9]*\) rejected).*/\2/p' "$e")
    got_acc=$(sed -n 's/^[[:space:]]*reports:[[:space:]]*\([0-9]*\) accepted.*/\1/p' "$e")
    got_rej=$(sed -n 's/.* \([0-9]*\) rejected, .*/\1/p' "$e")
    got_dup=$(sed -n 's/.* \([0-9]*\) duplicate.*/\1/p' "$e")
    r_rollups=$(sumval rollups "$e")
    if [ "$got_records" != "$exp_records" ] || [ "$got_messages" != "$exp_messages" ] ||
       [ "$got_acc" != "$exp_reports" ] || [ "$got_inputs" != "$exp_reports" ] ||
       [ "$got_inrej" != 0 ] || [ "$got_rej" != 0 ] || [ "$got_dup" != 0 ] ||
       [ -z "$r_rollups" ]; then
        cat "$e" >&2
        mismatch "$label" "expected reports=$exp_reports records=$exp_records messages=$exp_messages, no rejects or duplicates"
    fi
    if [ -d "$scratch/q" ] && [ -n "$(ls -A "$scratch/q")" ]; then
        mismatch "$label" "something was quarantined: $(find "$scratch/q" -type f | head -n 3)"
    fi
    if [ "$verify" = 1 ]; then
        local sink_sum rep_lines
        # "messages":N and "records":N of every rollup line; mawk-safe.
        sink_sum=$(awk '{
            if (match($0, /"messages":[0-9]+/)) m += substr($0, RSTART + 11, RLENGTH - 11)
            if (match($0, /"records":[0-9]+/)) r += substr($0, RSTART + 10, RLENGTH - 10)
            n++ } END { printf "%.0f %.0f %.0f\n", n, m, r }' "$out")
        rep_lines=$(wc -l <"$rep")
        if [ "$sink_sum" != "$r_rollups $exp_messages $exp_records" ] ||
           [ "$rep_lines" != "$exp_reports" ]; then
            mismatch "$label" "sink has lines/messages/records '$sink_sum' and $rep_lines report lines; expected '$r_rollups $exp_messages $exp_records' and $exp_reports"
        fi
    fi
    rm -f "$out" "$rep"
}

# --- scaling and floor, interleaved ---------------------------------------
results=$scratch/results
: >"$results"
if [ "$need_many" = 1 ]; then
    many_reports=$n_reports
    many_records=$(kv records "$many.stats")
    many_bytes=$(kv bytes "$many.stats")
fi
if [ "$need_big" = 1 ]; then
    big_records=$(kv records "$big.stats")
    big_messages=$(kv messages "$big.stats")
    big_bytes=$(kv bytes "$big.stats")
    big_gz=$(wc -c <"$big")
fi
# "many" goes first so it is not measured right after the big report on a
# freshly warmed page cache alone.
inputs=()
[ "$need_many" = 1 ] && inputs+=(many)
[ "$need_big" = 1 ] && inputs+=(big)

floor_once() {
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$floor" --only expat --runs 1 "$big" >"$scratch/floor.out" 2>"$scratch/floor.err" ||
        { cat "$scratch/floor.err" >&2; die "dp-floor failed"; }
    local fb fs u s
    fb=$(kv bytes "$scratch/floor.out")
    fs=$(kv expat_inflate_s "$scratch/floor.out")
    [ "$fb" = "$big_bytes" ] || mismatch floor "dp-floor read $fb bytes of XML, the generator wrote $big_bytes"
    read -r _ u s _ <"$scratch/time.out"
    echo "floor 1 $fs $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') 0" >>"$results"
}

parse_once() {
    local t0 t1 u s line
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$dmarcpipe" parse --summary "$big" >"$scratch/parse.out" 2>"$scratch/parse.err" ||
        { cat "$scratch/parse.err" >&2; die "dmarcpipe parse failed"; }
    t1=$(now_ns)
    read -r _ u s _ <"$scratch/time.out"
    line=$(head -n 1 "$scratch/parse.out")
    case $line in
        *"\"reports\":1,\"records\":$big_records,\"messages\":$big_messages,\"rejected\":0"*) ;;
        *) mismatch parse "dmarcpipe parse --summary said $line; expected records=$big_records messages=$big_messages" ;;
    esac
    echo "parse 1 $(secs "$t0" "$t1") $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') 0" >>"$results"
}

# run_input many|big WORKERS RUN-NUMBER [current|baseline]: one run of the
# current binary (default) or of the baseline; the baseline's results are
# kept as kind many-baseline or big-baseline.
run_input() {
    local verify=0 bin=$dmarcpipe kind=$1 which=${4:-current} label note=""
    [ "$3" = 1 ] && verify=1
    label="$1 w=$2 run $3"
    if [ "$which" = baseline ]; then
        bin=$baseline kind=$1-baseline label="$label (baseline)"
    fi
    [ -z "$baseline" ] || note="  $which"
    if [ "$1" = many ]; then
        dp_run "$bin" "$many.stats" "$many_reports" "$verify" "$label" \
            --workers "$2" --shards "$2" "$many"
    else
        dp_run "$bin" "$big.stats" 1 "$verify" "$label" --workers "$2" --shards "$2" "$big"
    fi
    echo "$kind $2 $r_wall $r_cpu $r_rss" >>"$results"
    printf '  run %d: %-4s %2d workers %8.3f s  cpu %7.2f s  rss %7.1f MiB%s\n' \
        "$3" "$1" "$2" "$r_wall" "$r_cpu" "$(awk -v k="$r_rss" 'BEGIN { print k / 1024 }')" "$note" >&2
}

# Others' load makes wall times meaningless on a small machine; the load
# average before and after is printed so a reader can tell.
load_start=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)
if [ "$want_scaling" = 1 ] || [ "$want_floor" = 1 ]; then
    echo "measuring: $runs runs, workers ${wcounts[*]}, nproc $ncpu, load average $load_start ..." >&2
    [ -z "$baseline" ] ||
        echo "  each run of $dmarcpipe (current) beside the same run of $baseline (baseline)" >&2
    for i in $(seq 1 "$runs"); do
        # With a baseline, the two binaries take turns going first, so that
        # neither always runs on the caches and clocks the other left.
        bins=(current)
        if [ -n "$baseline" ]; then
            if [ $((i % 2)) = 1 ]; then bins=(current baseline); else bins=(baseline current); fi
        fi
        if [ "$want_floor" = 1 ]; then
            # floor, then the 1-worker run on the same file, then parse
            floor_once
            for b in "${bins[@]}"; do run_input big 1 "$i" "$b"; done
            parse_once
        fi
        [ "$want_scaling" = 1 ] || continue
        for w in "${wcounts[@]}"; do
            for inp in "${inputs[@]}"; do
                [ "$want_floor" = 1 ] && [ "$inp" = big ] && [ "$w" = 1 ] && continue
                for b in "${bins[@]}"; do run_input "$inp" "$w" "$i" "$b"; done
            done
        done
    done
fi

# median COLUMN KIND WORKERS: median of column COLUMN (3 wall, 4 cpu) of
# the results for KIND and WORKERS; max of column 5 (RSS) with COLUMN=max5.
median() {
    if [ "$1" = max5 ]; then
        awk -v k="$2" -v w="$3" '$1 == k && $2 == w && $5 > m { m = $5 } END { print m + 0 }' "$results"
        return
    fi
    awk -v k="$2" -v w="$3" -v c="$1" '$1 == k && $2 == w { print $c }' "$results" | sort -g |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "nan"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The fastest of the runs: the one the host disturbed least.  Shown beside
# the medians (which the targets are read from) to tell what the code does
# from what the neighbours did: a run with helper threads loses more than
# the one-thread floor when the host takes part of a core.
fastest() {
    awk -v k="$2" -v w="$3" -v c="$1" '$1 == k && $2 == w { print $c }' "$results" | sort -g | head -n 1
}

load_end=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)
totals=ok
machine=()
echo
echo "dmarcpipe run: nproc $ncpu, nothing pinned; $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
if [ "$want_scaling" = 1 ] || [ "$want_floor" = 1 ]; then
    echo "  median of $runs run(s); 1-minute load average $load_start before the runs, $load_end after"
    echo "  (our own runs count in the second; a first figure above 0.5 means someone else was busy)"
    [ -z "$baseline" ] || echo "  current: $dmarcpipe; baseline: $baseline (interleaved, run by run)"
fi

if [ "$want_scaling" = 1 ]; then
    printf '  %-5s %-46s %7s %8s %9s %11s %8s %8s\n' input what workers wall_s cpu_s records/s "MB/s" speedup
    table_bins=(current)
    [ -z "$baseline" ] || table_bins+=(baseline)
    for inp in "${inputs[@]}"; do
        for b in "${table_bins[@]}"; do
            if [ "$inp" = many ]; then
                recs=$many_records xb=$many_bytes
                what="$many_reports reports x $n_records records, gzip"
            else
                recs=$big_records xb=$big_bytes
                what="1 report, $(awk -v b="$big_bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }') XML, $recs records, gzip"
            fi
            kind=$inp name=run_scaling
            if [ "$b" = baseline ]; then
                kind=$inp-baseline name=run_scaling_baseline what="baseline binary, the same input"
            fi
            base=$(median 3 "$kind" "$base_w")
            for w in "${wcounts[@]}"; do
                wall=$(median 3 "$kind" "$w")
                cpu=$(median 4 "$kind" "$w")
                rss=$(median max5 "$kind" "$w")
                line=$(awk -v r="$recs" -v b="$xb" -v s="$wall" -v c="$cpu" -v b0="$base" -v w="$w" \
                    -v inp="$inp" -v what="$what" -v rss="$rss" -v n="$ncpu" -v runs="$runs" -v name="$name" 'BEGIN {
                    printf "  %-5s %-46s %7d %8.3f %9.2f %11.0f %8.1f %7.2fx\n", inp, what, w, s, c, r / s, b / s / 1e6, b0 / s
                    printf "bench %s input=%s workers=%d shards=%d records=%.0f xml_bytes=%.0f runs=%d wall_s=%.3f cpu_s=%.2f records_per_s=%.0f mbps=%.1f speedup=%.2f rss_kib=%d nproc=%d\n", \
                        name, inp, w, w, r, b, runs, s, c, r / s, b / s / 1e6, b0 / s, rss, n }')
                printf '%s\n' "${line%%$'\n'*}"
                machine+=("${line##*$'\n'}")
                what=""
            done
        done
    done
    [ "$base_w" = 1 ] || echo "  (speedup is against $base_w workers, the first of --workers-list)"
fi

if [ "$want_floor" = 1 ]; then
    fl_s=$(median 3 floor 1); fl_c=$(median 4 floor 1)
    run_s=$(median 3 big 1); run_c=$(median 4 big 1)
    pa_s=$(median 3 parse 1); pa_c=$(median 4 parse 1)
    fl_f=$(fastest 3 floor 1); run_f=$(fastest 3 big 1)
    bl_s='' bl_c='' bl_f=''
    if [ -n "$baseline" ]; then
        bl_s=$(median 3 big-baseline 1); bl_c=$(median 4 big-baseline 1); bl_f=$(fastest 3 big-baseline 1)
    fi
    echo
    # bs, bc, bf: the baseline's run (wall, cpu, fastest wall); empty without one
    awk -v b="$big_bytes" -v gz="$big_gz" -v rec="$big_records" -v fs="$fl_s" -v fc="$fl_c" \
        -v rs="$run_s" -v rc="$run_c" -v ps="$pa_s" -v pc="$pa_c" -v runs="$runs" \
        -v ff="$fl_f" -v rf="$run_f" -v bs="$bl_s" -v bc="$bl_c" -v bf="$bl_f" 'BEGIN {
        printf "run vs floor: %.1f MiB XML, gzip %.1f MiB, %d records; nothing pinned, median of %d\n", b / 1048576, gz / 1048576, rec, runs
        printf "  %-38s %8s %8s %9s\n", "measure", "wall_s", "MB/s", "cpu_s"
        printf "  %-38s %8.3f %8.1f %9.2f\n", "floor: dp-floor --only expat", fs, b / fs / 1e6, fc
        printf "  %-38s %8.3f %8.1f %9.2f\n", "dmarcpipe run --workers 1 --shards 1", rs, b / rs / 1e6, rc
        if (bs != "")
            printf "  %-38s %8.3f %8.1f %9.2f\n", "baseline: run --workers 1 --shards 1", bs, b / bs / 1e6, bc
        printf "  %-38s %8.3f %8.1f %9.2f\n", "dmarcpipe parse --summary (reference)", ps, b / ps / 1e6, pc
        printf "  %-38s %7.1f%% %8s %8.1f%%\n", "run / floor (target >= 75%)", 100 * fs / rs, "", 100 * fc / rc
        if (bs != "")
            printf "  %-38s %7.1f%% %8s %8.1f%%\n", "baseline run / floor", 100 * fs / bs, "", 100 * fc / bc
        printf "  %-38s %7.1f%% %8s %8.1f%%\n", "parse / floor", 100 * fs / ps, "", 100 * fc / pc
        printf "  %-38s %7.1f%%   (floor %.3f s, run %.3f s: the runs the host disturbed least)\n", "run / floor, fastest of each", 100 * ff / rf, ff, rf
        if (bs != "")
            printf "  %-38s %7.1f%%   (baseline run %.3f s)\n", "baseline run / floor, fastest of each", 100 * ff / bf, bf
    }'
    machine+=("$(awk -v b="$big_bytes" -v rec="$big_records" -v fs="$fl_s" -v fc="$fl_c" \
        -v rs="$run_s" -v rc="$run_c" -v ps="$pa_s" -v pc="$pa_c" -v runs="$runs" \
        -v ff="$fl_f" -v rf="$run_f" 'BEGIN {
        printf "bench run_vs_floor bytes=%.0f records=%.0f runs=%d floor_s=%.3f run_s=%.3f wall_ratio_pct=%.1f floor_cpu_s=%.2f run_cpu_s=%.2f cpu_ratio_pct=%.1f parse_s=%.3f parse_ratio_pct=%.1f fastest_floor_s=%.3f fastest_run_s=%.3f fastest_ratio_pct=%.1f", \
            b, rec, runs, fs, rs, 100 * fs / rs, fc, rc, 100 * fc / rc, ps, 100 * fs / ps, ff, rf, 100 * ff / rf }')")
    if [ -n "$baseline" ]; then
        machine+=("$(awk -v b="$big_bytes" -v rec="$big_records" -v fs="$fl_s" -v fc="$fl_c" \
            -v bs="$bl_s" -v bc="$bl_c" -v runs="$runs" -v ff="$fl_f" -v bf="$bl_f" 'BEGIN {
            printf "bench run_vs_floor_baseline bytes=%.0f records=%.0f runs=%d floor_s=%.3f run_s=%.3f wall_ratio_pct=%.1f floor_cpu_s=%.2f run_cpu_s=%.2f cpu_ratio_pct=%.1f fastest_floor_s=%.3f fastest_run_s=%.3f fastest_ratio_pct=%.1f", \
                b, rec, runs, fs, bs, 100 * fs / bs, fc, bc, 100 * fc / bc, ff, bf, 100 * ff / bf }')")
    fi
fi

if [ "$want_keys" = 1 ]; then
    echo "measuring keys: baseline (1 report of $keys_per records), then $keys_total keys in $keys_reports reports, 2 workers, 2 shards ..." >&2
    kargs=(--workers 2 --shards 2 --max-keys 100000000)
    # Nothing may be flushed before the end, or the peak would be the keys
    # of one flush interval. Builds where --flush-interval 0 is refused
    # flush only at the end by default.
    if "$dmarcpipe" run --flush-interval 0 --help >/dev/null 2>&1; then
        kargs+=(--flush-interval 0)
    fi
    dp_run "$dmarcpipe" "$keys_base_stats" 1 1 "keys baseline" "${kargs[@]}" "$keys_base"
    base_rss=$r_rss base_keys=$r_rollups
    [ "$base_keys" = "$keys_per" ] ||
        mismatch "keys baseline" "$base_keys rollups from $keys_per records with distinct IPs"
    dp_run "$dmarcpipe" "$keysdir.stats" "$keys_reports" 1 "keys" "${kargs[@]}" "$keysdir"
    [ "$r_rollups" = "$keys_total" ] ||
        mismatch keys "$r_rollups rollups from $keys_total records with distinct IPs"
    echo
    line=$(awk -v k="$r_rollups" -v bk="$base_keys" -v rss="$r_rss" -v brss="$base_rss" \
        -v s="$r_wall" -v c="$r_cpu" -v nr="$keys_reports" -v args="${kargs[*]}" 'BEGIN {
        per = k > bk ? (rss - brss) * 1024 / (k - bk) : 0
        ok = rss <= 2 * 1048576 ? "yes" : "NO"
        printf "distinct keys: %d rollup keys (every record its own), %d reports, %s\n", k, nr, args
        printf "  %-40s %10.1f MiB\n", "peak RSS", rss / 1024
        printf "  %-40s %10.1f MiB (%d keys)\n", "peak RSS, baseline (1 report)", brss / 1024, bk
        printf "  %-40s %10.1f bytes\n", "RSS per key above the baseline", per
        printf "  %-40s %10s\n", "peak RSS <= 2 GiB (target)", ok
        printf "  %-40s %10.3f s  cpu %.2f s  %.0f records/s\n", "wall", s, c, k / s
        printf "bench run_keys keys=%d reports=%d workers=2 shards=2 peak_rss_kib=%d baseline_rss_kib=%d baseline_keys=%d bytes_per_key=%.1f wall_s=%.3f cpu_s=%.2f target_rss_kib=2097152 within_target=%s\n", \
            k, nr, rss, brss, bk, per, s, c, ok }')
    printf '%s\n' "${line%$'\n'*}"
    machine+=("${line##*$'\n'}")
fi

# The current binary against the baseline, in one table and one line:
# run / floor (1 worker, big report) and, when 2 workers were measured, the
# speedup and records/s of 2 workers on the many reports. change: current
# over baseline, in percent (below 0, the current code is slower).
if [ -n "$baseline" ]; then
    cmp_fields=() cmp_rows=()
    # compare_row NAME LABEL CURRENT BASELINE [UNIT]: one row of the table
    # (UNIT after each value) and the line's fields NAME_current,
    # NAME_baseline and NAME_change_pct.
    compare_row() {
        local ch
        ch=$(awk -v c="$3" -v b="$4" 'BEGIN { if (b > 0) printf "%+.1f", 100 * (c / b - 1); else print "nan" }')
        cmp_fields+=("$1_current=$3" "$1_baseline=$4" "$1_change_pct=$ch")
        cmp_rows+=("$(printf '  %-44s %10s %10s %9s' "$2" "$3${5:-}" "$4${5:-}" "$ch%")")
    }
    # ratio A B FORMAT: A / B (times 100 for FORMAT pct); nan when B is 0.
    ratio() {
        awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN {
            if (b + 0 == 0) print "nan"
            else if (f == "pct") printf "%.1f", 100 * a / b; else printf f, a / b }'
    }
    if [ "$want_floor" = 1 ]; then
        compare_row run_floor_pct "run / floor, wall (1 worker, big report)" \
            "$(ratio "$fl_s" "$run_s" pct)" "$(ratio "$fl_s" "$bl_s" pct)" %
        compare_row run_floor_cpu_pct "run / floor, cpu" \
            "$(ratio "$fl_c" "$run_c" pct)" "$(ratio "$fl_c" "$bl_c" pct)" %
        compare_row run_floor_fastest_pct "run / floor, fastest of each" \
            "$(ratio "$fl_f" "$run_f" pct)" "$(ratio "$fl_f" "$bl_f" pct)" %
    fi
    if [ "$want_scaling" = 1 ] && [[ " ${wcounts[*]} " == *" 2 "* ]]; then
        c2=$(median 3 many 2) b2=$(median 3 many-baseline 2)
        compare_row speedup2 "speedup, 2 workers vs $base_w, many reports" \
            "$(ratio "$(median 3 many "$base_w")" "$c2" %.2f)" \
            "$(ratio "$(median 3 many-baseline "$base_w")" "$b2" %.2f)" x
        compare_row records_per_s2 "records/s, 2 workers, many reports" \
            "$(ratio "$many_records" "$c2" %.0f)" "$(ratio "$many_records" "$b2" %.0f)"
    fi
    echo
    echo "current against baseline: medians of $runs interleaved run(s); change = current / baseline - 1"
    printf '  %-44s %10s %10s %9s\n' measure current baseline change
    if [ "${#cmp_rows[@]}" -gt 0 ]; then
        printf '%s\n' "${cmp_rows[@]}"
    else
        echo "  (nothing to compare: no floor measure, and 2 workers were not measured)"
    fi
    machine+=("bench baseline_compare runs=$runs ${cmp_fields[*]}")
fi

[ "$status" = 0 ] || totals=MISMATCH
echo "  totals vs generator: $totals"
echo
for m in "${machine[@]}"; do printf '%s totals=%s\n' "$m" "$totals"; done
[ "$keep" = 1 ] && [ -z "${BENCH_DIR:-}" ] && echo "kept inputs in $dir" >&2
exit "$status"
