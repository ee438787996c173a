#!/usr/bin/env bash
# report_vs_json.sh -- how fast `dmarcpipe report` reads a year of rollups,
# against reading the same NDJSON with a bare JSON parser, and whether its
# memory stays bounded as the feed grows.
#
# dmarcpipe report parses every feed line with jansson, then counts it into
# per-domain and per-source figures. dp-json-floor reads the same files the
# same way (1 MiB blocks, lines split in place) and does nothing with a line
# but json_loadb, one member lookup and json_decref: no reader of this feed
# that parses its lines with jansson can be faster, so it is the floor. The
# script measures, in one run, on one generated feed (dp-gen-rollups: the
# rollups and the reports feed of --domains domains with --sources senders
# each, over --days days ending 2026-12-06, as `dmarcpipe run` writes them):
#
#   floor    dp-json-floor DIR/rollups.ndjson DIR/reports.ndjson
#   report   dmarcpipe report --format json --from FIRST --to LAST DIR, the
#            period covering every generated day, so every line is counted
#            (one pass over the files)
#
# interleaved, --runs times (default 3), then once each:
#
#   default  dmarcpipe report --format json DIR: the default period (the
#            last 30 days of the data and the 30 before). It reads the files
#            twice: a scan for the latest day (no JSON parse), then the
#            count, which parses every line and keeps those of the 60 days
#   tenth    the report, all days, on a feed of --lines/10 lines and
#            otherwise the same options: its peak RSS against the full
#            feed's shows whether memory grows with lines (it should not:
#            it is bounded by domains x days and domains x sources)
#
# Wall time is the whole process, for both (start, reading, the report's
# rendering and writing). Peak RSS from /usr/bin/time -f %M. The medians are
# printed: lines/s of each, the ratio report/floor, and the RSS.
#
# Checked, and the script exits 1 when they disagree: every report says
# bad_lines 0, lines = the generator's lines and rollup_lines = --lines;
# the all-days reports say totals.messages = the generator's messages, and
# the period from FIRST to LAST; the floor counts the same lines and
# messages. It never fails because something was slow or large.
#
# Usage: bench/report_vs_json.sh [--quick] [--runs N] [--lines N] [--domains D]
#            [--days T] [--sources S] [--seed X] [--no-tenth] [--keep]
#
# Defaults: --runs 3, --lines 10000000, --domains 1000, --days 365,
# --sources 50 (per domain), --seed 1. --quick (for CI): 1 run, 200000
# lines. A 10M-line feed is about 4.4 GB (plus 0.2 GB of reports feed) and
# its tenth 0.45 GB: the script refuses to start when the disk under
# BENCH_DIR has less free space than the feeds it must write.
#
# Environment:
#   BENCH_DIR   where the feeds are written and kept (reused when the same
#               parameters are asked again); default: a temporary directory
#               removed on exit
#   BUILD_DIR   build tree (default: <repo>/build)
#   DMARCPIPE, DP_GEN_ROLLUPS, DP_JSON_FLOOR   the binaries
#   TMPDIR      scratch: the reports written (a few MB), removed on exit
#
# Needs GNU time at /usr/bin/time (Debian package "time") and python3.
#
# Exit status: 0 ok, 1 totals disagree or a tool failed, 2 usage error or a
# missing tool.

set -euo pipefail

me=report_vs_json
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$here/common.sh"
genr=${DP_GEN_ROLLUPS:-$build/bench/dp-gen-rollups}
jfloor=${DP_JSON_FLOOR:-$build/bench/dp-json-floor}

quick=0
runs=
lines=
domains=1000
days=365
sources=50
seed=1
tenth=1
keep=0

usage() { sed -n '/^# Usage:/,/^# Defaults:/{/^# Defaults:/d;/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --lines) lines=${2:?}; shift 2 ;;
        --domains) domains=${2:?}; shift 2 ;;
        --days) days=${2:?}; shift 2 ;;
        --sources) sources=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --no-tenth) tenth=0; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage ;;
        *) echo "report_vs_json: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ "$quick" = 1 ]; then
    : "${runs:=1}" "${lines:=200000}"
else
    : "${runs:=3}" "${lines:=10000000}"
fi
for v in runs:"$runs" lines:"$lines" domains:"$domains" days:"$days" sources:"$sources"; do
    posint "--${v%%:*}" "${v#*:}"
done
case $seed in ''|*[!0-9]*) die "--seed needs a number" 2 ;; esac
[ "$days" -le 3660 ] || die "--days must be at most 3660 (the report's longest period)" 2
small=$((lines / 10))
[ "$small" -gt 0 ] || tenth=0

[ -x "$genr" ] || die "dp-gen-rollups not found at $genr (build it, or set DP_GEN_ROLLUPS)" 2
[ -x "$jfloor" ] || die "dp-json-floor not found at $jfloor (build it, or set DP_JSON_FLOOR)" 2
[ -x "$dmarcpipe" ] || die "dmarcpipe not found at $dmarcpipe (build it, or set DMARCPIPE)" 2
"$dmarcpipe" report --help >/dev/null 2>&1 || die "$dmarcpipe has no report command" 2
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time (Debian package 'time')" 2
command -v python3 >/dev/null || die "python3 not found" 2

bench_dirs dp-report-bench dp-report-bench-in "$keep"
trap 'exit 130' INT TERM

# --- input -------------------------------------------------------------------
# A feed is a folder as `dmarcpipe run` writes one (rollups.ndjson and
# reports.ndjson), generated under a temporary name and renamed when
# complete, with the generator's totals beside it, so an interrupted run
# never leaves a half-written feed to be reused.
feed_name() { echo "$dir/rollups-L$1-d$domains-t$days-s$sources-seed$seed"; }
# About 440 bytes per rollup line, 700 per reports-feed line (at most one
# per domain and day): what a feed of N lines needs on disk, in KiB.
need_kib() {
    awk -v n="$1" -v d="$domains" -v t="$days" 'BEGIN { r = d * t; if (r > n) r = n
        printf "%.0f\n", (n * 460 + r * 720) / 1024 * 1.05 + 1024 }'
}
want_kib=0
for n in "$lines" $([ "$tenth" = 1 ] && echo "$small"); do
    f=$(feed_name "$n")
    { [ -d "$f" ] && [ -s "$f.stats" ]; } || want_kib=$((want_kib + $(need_kib "$n")))
done
if [ "$want_kib" -gt 0 ]; then
    free_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
    [ "$free_kib" -gt "$want_kib" ] ||
        die "$dir has $((free_kib / 1024)) MiB free, the feeds need about $((want_kib / 1024)) MiB (set BENCH_DIR elsewhere, or fewer --lines)"
fi
make_feed() { # LINES -> the folder
    local f; f=$(feed_name "$1")
    if [ -d "$f" ] && [ -s "$f.stats" ]; then
        echo "reusing $f" >&2
    else
        echo "generating $f ($1 rollup lines, $domains domains x $sources sources, $days days) ..." >&2
        rm -rf "$f.tmp"
        mkdir -p "$f.tmp"
        "$genr" --lines "$1" --domains "$domains" --days "$days" --sources-per-domain "$sources" --seed "$seed" \
            -o "$f.tmp/rollups.ndjson" --reports "$f.tmp/reports.ndjson" 2>"$f.stats.tmp" ||
            die "generation failed: $(cat "$f.stats.tmp")"
        rm -rf "$f"
        mv "$f.tmp" "$f"
        mv "$f.stats.tmp" "$f.stats"
    fi
    echo "$f"
}
feed=$(make_feed "$lines")
[ "$tenth" = 1 ] && feed_small=$(make_feed "$small")

status=0
mismatch() { echo "report_vs_json: MISMATCH: $1" >&2; status=1; }
gen_lines=$(kv lines "$feed.stats") gen_rollups=$(kv rollup_lines "$feed.stats")
gen_msgs=$(kv messages "$feed.stats") first=$(kv first_day "$feed.stats") last=$(kv last_day "$feed.stats")
gen_bytes=$(kv bytes "$feed.stats") pairs=$(kv pairs "$feed.stats")
[ "$gen_rollups" = "$lines" ] || die "the generator wrote $gen_rollups rollup lines, expected $lines"

# check_report FILE WHAT LINES ROLLUPS MESSAGES|- PERIOD(FROM:TO|default:LAST):
# the report's input counts, totals and period against the generator's.
check_report() {
    local out
    out=$(python3 - "$@" <<'EOF'
import json, sys
path, what, lines, rollups, messages, period = sys.argv[1:7]
try:
    r = json.load(open(path))
except Exception as e:
    print("%s: the report is not JSON: %s" % (what, e)); sys.exit(0)
i, t, p = r.get("input", {}), r.get("totals", {}), r.get("period", {})
bad = []
if i.get("bad_lines") != 0: bad.append("bad_lines %s, expected 0" % i.get("bad_lines"))
if str(i.get("lines")) != lines: bad.append("lines %s, expected %s" % (i.get("lines"), lines))
if str(i.get("rollup_lines")) != rollups: bad.append("rollup_lines %s, expected %s" % (i.get("rollup_lines"), rollups))
if messages != "-" and str(t.get("messages")) != messages:
    bad.append("totals.messages %s, expected %s" % (t.get("messages"), messages))
a, b = period.split(":")
if a == "default":
    if p.get("to") != b or p.get("days") != 30: bad.append("period %s, expected the 30 days to %s" % (p, b))
elif (p.get("from"), p.get("to")) != (a, b):
    bad.append("period %s, expected %s to %s" % (p, a, b))
if bad: print("%s: %s" % (what, "; ".join(bad)))
EOF
    ) || { mismatch "$2: python3 failed"; return; }
    [ -z "$out" ] || mismatch "$out"
}

results=$scratch/results
: >"$results"
cpu_of() { awk '{ printf "%.2f\n", $2 + $3 }' "$1"; }
rss_of() { awk '{ print $4 }' "$1"; }

one_floor() { # RUN
    local t0 t1 rc=0 s
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$jfloor" "$feed/rollups.ndjson" "$feed/reports.ndjson" >"$scratch/floor.out" 2>"$scratch/floor.err" || rc=$?
    t1=$(now_ns)
    [ "$rc" = 0 ] || { cat "$scratch/floor.err" >&2; die "dp-json-floor failed (exit $rc)"; }
    [ "$(kv lines "$scratch/floor.out")" = "$gen_lines" ] ||
        mismatch "run $1: dp-json-floor read $(kv lines "$scratch/floor.out") lines, expected $gen_lines"
    [ "$(kv messages "$scratch/floor.out")" = "$gen_msgs" ] ||
        mismatch "run $1: dp-json-floor summed $(kv messages "$scratch/floor.out") messages, expected $gen_msgs"
    s=$(secs "$t0" "$t1")
    echo "floor $1 $s $(cpu_of "$scratch/time.out") $(rss_of "$scratch/time.out")" >>"$results"
    printf '  run %d: %-8s %8.3f s  cpu %7.2f s  rss %7.1f MiB\n' "$1" floor "$s" "$(cpu_of "$scratch/time.out")" \
        "$(awk -v k="$(rss_of "$scratch/time.out")" 'BEGIN { print k / 1024 }')" >&2
}

# one_report RUN KIND FEED LINES ROLLUPS MESSAGES|- PERIOD ARGS...
one_report() {
    local run=$1 kind=$2 f=$3 l=$4 ro=$5 m=$6 period=$7 t0 t1 rc=0 s
    shift 7
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$dmarcpipe" report --format json "$@" "$f" >"$scratch/report.json" 2>"$scratch/report.err" || rc=$?
    t1=$(now_ns)
    [ "$rc" = 0 ] || { tail -n 20 "$scratch/report.err" >&2; die "dmarcpipe report $* $f failed (exit $rc)"; }
    check_report "$scratch/report.json" "run $run, $kind" "$l" "$ro" "$m" "$period"
    s=$(secs "$t0" "$t1")
    echo "$kind $run $s $(cpu_of "$scratch/time.out") $(rss_of "$scratch/time.out")" >>"$results"
    printf '  run %d: %-8s %8.3f s  cpu %7.2f s  rss %7.1f MiB\n' "$run" "$kind" "$s" "$(cpu_of "$scratch/time.out")" \
        "$(awk -v k="$(rss_of "$scratch/time.out")" 'BEGIN { print k / 1024 }')" >&2
}

# Warm-up, not measured: the page cache takes the feed.
cat "$feed/rollups.ndjson" "$feed/reports.ndjson" >/dev/null

load_start=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)
echo "measuring: $runs run(s) over $gen_lines lines ($lines rollups), load average $load_start ..." >&2
for i in $(seq 1 "$runs"); do
    one_floor "$i"
    one_report "$i" report "$feed" "$gen_lines" "$lines" "$gen_msgs" "$first:$last" --from "$first" --to "$last"
done
one_report 1 default "$feed" "$gen_lines" "$lines" - "default:$last"
small_lines=0 small_pairs=0
if [ "$tenth" = 1 ]; then
    small_lines=$(kv lines "$feed_small.stats") small_pairs=$(kv pairs "$feed_small.stats")
    cat "$feed_small/rollups.ndjson" "$feed_small/reports.ndjson" >/dev/null
    one_report 1 tenth "$feed_small" "$small_lines" "$small" "$(kv messages "$feed_small.stats")" \
        "$(kv first_day "$feed_small.stats"):$(kv last_day "$feed_small.stats")" \
        --from "$(kv first_day "$feed_small.stats")" --to "$(kv last_day "$feed_small.stats")"
fi
load_end=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)

# median KIND COLUMN (3 wall, 4 cpu); max KIND 5 (rss)
median() {
    awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$results" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print 0; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maxof() { awk -v k="$1" -v c="$2" '$1 == k && $c > m { m = $c } END { print m + 0 }' "$results"; }

totals=ok
[ "$status" = 0 ] || totals=MISMATCH
fl_s=$(median floor 3) fl_c=$(median floor 4) fl_r=$(maxof floor 5)
re_s=$(median report 3) re_c=$(median report 4) re_r=$(maxof report 5)
de_s=$(median default 3) de_c=$(median default 4) de_r=$(maxof default 5)
te_s=$(median tenth 3) te_r=$(maxof tenth 5)

echo
echo "report vs json: $gen_lines lines ($lines rollups, $((gen_lines - lines)) reports-feed lines, $(awk -v b="$gen_bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }')), $domains domains x $sources sources ($pairs pairs used), $days days $first..$last"
echo "  nproc $(nproc), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
echo "  median of $runs run(s); 1-minute load average $load_start before, $load_end after"
awk -v n="$gen_lines" -v fs="$fl_s" -v fc="$fl_c" -v fr="$fl_r" -v rs="$re_s" -v rc="$re_c" -v rr="$re_r" \
    -v ds="$de_s" -v dc="$de_c" -v dr="$de_r" -v ts="$te_s" -v tr="$te_r" -v sl="$small_lines" 'BEGIN {
    printf "  %-58s %8s %8s %11s %9s %10s\n", "measure", "wall_s", "cpu_s", "lines/s", "vs_floor", "rss_MiB"
    printf "  %-58s %8.3f %8.2f %11.0f %8.1f%% %10.1f\n", "dp-json-floor (jansson: read, json_loadb, json_decref)", fs, fc, n / fs, 100, fr / 1024
    printf "  %-58s %8.3f %8.2f %11.0f %8.1f%% %10.1f\n", "dmarcpipe report --from FIRST --to LAST (every day)", rs, rc, n / rs, 100 * fs / rs, rr / 1024
    printf "  %-58s %8.3f %8.2f %11.0f %8.1f%% %10.1f\n", "dmarcpipe report (default period; reads the files twice)", ds, dc, n / ds, 100 * fs / ds, dr / 1024
    if (sl > 0)
        printf "  %-58s %8.3f %8s %11.0f %9s %10.1f\n", "dmarcpipe report, every day, on " sl " lines (a tenth)", ts, "", sl / ts, "", tr / 1024
    }'
echo "  totals: every report's lines, rollup_lines, bad_lines, messages and period, and the floor's, against the generator: $totals"
echo
# Counts as %.0f, not %d: mawk, Debian's awk, prints %d through a 32-bit int.
awk -v n="$gen_lines" -v ro="$lines" -v runs="$runs" -v fs="$fl_s" -v fc="$fl_c" -v fr="$fl_r" -v rs="$re_s" -v rc="$re_c" \
    -v rr="$re_r" -v ds="$de_s" -v dr="$de_r" -v ts="$te_s" -v tr="$te_r" -v sl="$small_lines" -v b="$gen_bytes" \
    -v p="$pairs" -v sp="$small_pairs" -v d="$domains" -v s="$sources" -v t="$days" -v tot="$totals" 'BEGIN {
    printf "bench report lines=%.0f rollup_lines=%.0f bytes=%.0f domains=%.0f sources=%.0f days=%.0f pairs=%.0f runs=%.0f floor_s=%.3f report_s=%.3f floor_cpu_s=%.2f report_cpu_s=%.2f floor_lines_per_s=%.0f report_lines_per_s=%.0f ratio=%.3f floor_rss_kib=%.0f report_rss_kib=%.0f default_s=%.3f default_lines_per_s=%.0f default_rss_kib=%.0f tenth_lines=%.0f tenth_pairs=%.0f tenth_s=%.3f tenth_rss_kib=%.0f rss_growth=%.3f totals=%s\n", \
        n, ro, b, d, s, t, p, runs, fs, rs, fc, rc, n / fs, n / rs, fs / rs, fr, rr, ds, n / ds, dr, sl, sp, ts, tr, (tr > 0 ? rr / tr : 0), tot }'
exit "$status"
