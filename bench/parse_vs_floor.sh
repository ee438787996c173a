#!/usr/bin/env bash
# parse_vs_floor.sh -- dmarcpipe's parse throughput as a fraction of the floor.
#
# Absolute MB/s figures mean little on shared, noisy CI machines, so this
# benchmark reports dmarcpipe's single-core parse speed as a percentage of
# the physical floor measured on the same machine, in the same run, on the
# same file: decompression plus a bare expat parser with no handlers
# (dp-floor). Runs of the floor and of dmarcpipe are interleaved so that a
# burst of noise from a neighbour hits both, and medians are reported.
#
# It generates a gzipped synthetic report (dp-gen-report | gzip -6), whose
# exact record and message totals are known, and checks that
# `dmarcpipe parse --summary` reports the same totals: the script fails
# (exit 1) when they disagree. It never fails because something was slow;
# that judgement needs a human looking at a trend, not one noisy run.
#
# Usage: bench/parse_vs_floor.sh [--size 256M|1G|BYTES] [--runs N]
#            [--seed S] [--ips N] [--schema rfc7489|rfc9990]
#            [--codec gzip|zstd] [--floor-only] [--keep] [--dp-arg ARG]...
#
# --size is the uncompressed XML size (binary suffixes); the report comes
# out within one record of it and never larger. --dp-arg passes one extra
# argument to dmarcpipe parse (e.g. --dp-arg --max-report-bytes=2G).
#
# Environment:
#   BENCH_DIR     where the report is written and kept (reused when the same
#                 size/seed/ips/schema/codec is asked again); default: a
#                 temporary directory removed on exit
#   BUILD_DIR     build tree (default: <repo>/build)
#   DMARCPIPE     dmarcpipe binary (default: $BUILD_DIR/dmarcpipe)
#   DP_GEN_REPORT, DP_FLOOR   the bench tools (default: $BUILD_DIR/bench/...)
#   BENCH_CPU     the core to pin to with taskset (default 0)
#
# Needs taskset (util-linux) and, for peak RSS, GNU time at /usr/bin/time
# (Debian package "time"); without the latter RSS is reported as n/a.
#
# Exit status: 0 ok, 1 totals disagree or a tool failed, 2 usage error or
# dmarcpipe missing (use --floor-only to measure just the floor).

set -euo pipefail

me=parse_vs_floor
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$here/common.sh"
cpu=${BENCH_CPU:-0}

size=256M
runs=5
seed=1
ips=100000
schema=rfc7489
codec=gzip
floor_only=0
keep=0
dp_args=()

usage() { sed -n '/^# Usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --size) size=${2:?}; shift 2 ;;
        --runs) runs=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --ips) ips=${2:?}; shift 2 ;;
        --schema) schema=${2:?}; shift 2 ;;
        --codec) codec=${2:?}; shift 2 ;;
        --floor-only) floor_only=1; shift ;;
        --keep) keep=1; shift ;;
        --dp-arg) dp_args+=("${2:?}"); shift 2 ;;
        -h|--help) usage ;;
        *) echo "parse_vs_floor: unknown argument '$1'" >&2; usage ;;
    esac
done

# Sizes are binary, like dp-gen-report's: 256M = 256 MiB.
bytes=$(awk -v s="$size" 'BEGIN {
    if (match(s, /^[0-9]+/) == 0) exit 1
    n = substr(s, 1, RLENGTH); u = toupper(substr(s, RLENGTH + 1))
    sub(/I?B$/, "", u)
    m = (u == "") ? 1 : (u == "K") ? 1024 : (u == "M") ? 1048576 : \
        (u == "G") ? 1073741824 : -1
    if (m < 0) exit 1
    printf "%.0f\n", n * m }') || die "bad --size '$size'" 2
case $runs in ''|*[!0-9]*|0) die "--runs must be a positive integer" 2 ;; esac
case $codec in
    gzip) compress=(gzip -6); ext=xml.gz ;;
    zstd) compress=(zstd -q -3); ext=xml.zst ;;
    *) die "--codec must be gzip or zstd" 2 ;;
esac

[ -x "$gen" ] || die "dp-gen-report not found at $gen (build it, or set DP_GEN_REPORT)" 2
[ -x "$floor" ] || die "dp-floor not found at $floor (build it, or set DP_FLOOR)" 2
if [ "$floor_only" = 0 ] && [ ! -x "$dmarcpipe" ]; then
    die "dmarcpipe not found at $dmarcpipe (set DMARCPIPE, or pass --floor-only)" 2
fi
command -v taskset >/dev/null || die "taskset not found (util-linux)" 2
have_time=0
[ -x /usr/bin/time ] && have_time=1

# Scratch is always removed; the input only when it lives in our own
# temporary directory and --keep was not given.
bench_dirs dp-bench-run dp-bench "$keep"

# --- generate (or reuse) the input -------------------------------------
input=$dir/report-$bytes-s$seed-i$ips-$schema.$ext
stats=$input.stats
if [ -s "$input" ] && [ -s "$stats" ]; then
    echo "reusing $input" >&2
else
    echo "generating $size ($bytes bytes) of XML into $input ..." >&2
    # The generator prints its totals on stderr; write via temporaries so an
    # interrupted run never leaves a half-written input to be reused.
    # target = max: within one record (~700 bytes) of --size, never over,
    # so "1G" stays inside dmarcpipe's default 1 GiB report limit.
    "$gen" --target-bytes "$bytes" --max-bytes "$bytes" --seed "$seed" --ips "$ips" \
        --schema "$schema" \
        2>"$stats.tmp" | "${compress[@]}" >"$input.tmp" ||
        die "generation failed: $(cat "$stats.tmp")"
    mv "$input.tmp" "$input"
    mv "$stats.tmp" "$stats"
fi
# Integer value of "KEY": N in a one-line JSON object.
js() { printf '%s\n' "$2" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\\([0-9]*\\).*/\\1/p"; }
exp_records=$(kv records "$stats")
exp_messages=$(kv messages "$stats")
xml_bytes=$(kv bytes "$stats")
if [ -z "$exp_records" ] || [ -z "$exp_messages" ] || [ -z "$xml_bytes" ]; then
    die "cannot read generator totals from $stats"
fi
gz_bytes=$(wc -c <"$input")

# --- measure -------------------------------------------------------------
for f in floor.s inflate.s dp.s rss; do : >"$scratch/$f"; done
status=0
for i in $(seq 1 "$runs"); do
    taskset -c "$cpu" "$floor" --runs 1 "$input" >"$scratch/floor.out" ||
        die "dp-floor failed"
    kv expat_inflate_s "$scratch/floor.out" >>"$scratch/floor.s"
    kv inflate_s "$scratch/floor.out" >>"$scratch/inflate.s"

    [ "$floor_only" = 1 ] && continue
    timecmd=()
    [ "$have_time" = 1 ] && timecmd=(/usr/bin/time -f %M -o "$scratch/rss.run")
    t0=$(now_ns)
    if ! taskset -c "$cpu" "${timecmd[@]}" "$dmarcpipe" parse --summary "${dp_args[@]}" "$input" \
            >"$scratch/dp.out" 2>"$scratch/dp.err"; then
        cat "$scratch/dp.err" >&2
        die "dmarcpipe parse failed (run $i)"
    fi
    t1=$(now_ns)
    echo "$t0 $t1" | awk '{ printf "%.6f\n", ($2 - $1) / 1e9 }' >>"$scratch/dp.s"
    [ "$have_time" = 1 ] && tail -n 1 "$scratch/rss.run" >>"$scratch/rss"

    # Every run must agree with the generator, not just the last one.
    line=$(head -n 1 "$scratch/dp.out")
    got_records=$(js records "$line")
    got_messages=$(js messages "$line")
    got_reports=$(js reports "$line")
    got_rejected=$(js rejected "$line")
    if [ "$got_records" != "$exp_records" ] || [ "$got_messages" != "$exp_messages" ] ||
       [ "$got_reports" != 1 ] || [ "${got_rejected:-0}" != 0 ]; then
        echo "parse_vs_floor: run $i: dmarcpipe reported: $line" >&2
        echo "parse_vs_floor: expected reports=1 records=$exp_records" \
             "messages=$exp_messages rejected=0" >&2
        status=1
    fi
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
floor_s=$(median "$scratch/floor.s")
inflate_s=$(median "$scratch/inflate.s")

# --- report --------------------------------------------------------------
awk -v b="$xml_bytes" -v gz="$gz_bytes" -v rec="$exp_records" -v runs="$runs" \
    -v cpu="$cpu" -v codec="$codec" -v fs="$floor_s" -v is="$inflate_s" '
BEGIN {
    printf "parse vs floor: %.1f MiB XML, %s %.1f MiB, %d records; CPU %s, median of %d\n",
        b / 1048576, codec, gz / 1048576, rec, cpu, runs
    printf "  %-26s %10s %10s\n", "measure", "MB/s", "seconds"
    printf "  %-26s %10.1f %10.3f\n", "inflate only", b / is / 1e6, is
    printf "  %-26s %10.1f %10.3f\n", "floor (inflate + expat)", b / fs / 1e6, fs
}'
if [ "$floor_only" = 1 ]; then
    printf 'bench parse_vs_floor bytes=%s floor_mbps=%s inflate_mbps=%s\n' "$xml_bytes" \
        "$(awk -v b="$xml_bytes" -v s="$floor_s" 'BEGIN { printf "%.1f", b / s / 1e6 }')" \
        "$(awk -v b="$xml_bytes" -v s="$inflate_s" 'BEGIN { printf "%.1f", b / s / 1e6 }')"
    [ "$keep" = 1 ] && [ -z "${BENCH_DIR:-}" ] && echo "kept $input" >&2
    exit 0
fi

dp_s=$(median "$scratch/dp.s")
rss_kib=n/a
[ "$have_time" = 1 ] && rss_kib=$(sort -n "$scratch/rss" | tail -n 1)
totals=ok
[ "$status" = 0 ] || totals=MISMATCH
awk -v b="$xml_bytes" -v fs="$floor_s" -v ds="$dp_s" -v rss="$rss_kib" \
    -v totals="$totals" -v rec="$exp_records" -v msg="$exp_messages" '
BEGIN {
    fm = b / fs / 1e6; dm = b / ds / 1e6
    printf "  %-26s %10.1f %10.3f\n", "dmarcpipe parse --summary", dm, ds
    printf "  %-26s %9.1f%%\n", "ratio dmarcpipe / floor", 100 * dm / fm
    if (rss == "n/a") printf "  %-26s %10s\n", "peak RSS (max of runs)", "n/a"
    else printf "  %-26s %6.1f MiB\n", "peak RSS (max of runs)", rss / 1024
    printf "  %-26s %s (records=%s messages=%s)\n", "totals vs generator", totals, rec, msg
    printf "bench parse_vs_floor bytes=%s floor_mbps=%.1f dmarcpipe_mbps=%.1f ratio_pct=%.1f rss_kib=%s totals=%s\n",
        b, fm, dm, 100 * dm / fm, rss, totals
}'
[ "$keep" = 1 ] && [ -z "${BENCH_DIR:-}" ] && echo "kept $input" >&2
exit "$status"
