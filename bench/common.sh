# shellcheck shell=bash disable=SC2034,SC2154  # sourced: the scripts use its variables and set `me`
# bench/common.sh -- what the bench scripts share: where the binaries are,
# and a few small helpers.  Sourced (never run) by parse_vs_floor.sh,
# run_scaling.sh and kafka_vs_kcat.sh, after they set `me` (the name their
# messages start with).
#
# Sets: repo, build (BUILD_DIR, default <repo>/build), gen (DP_GEN_REPORT),
# floor (DP_FLOOR), dmarcpipe (DMARCPIPE; the program lands at the top of
# the build tree). bench_dirs sets scratch, dir and cleanup.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
gen=${DP_GEN_REPORT:-$build/bench/dp-gen-report}
floor=${DP_FLOOR:-$build/bench/dp-floor}
dmarcpipe=${DMARCPIPE:-$build/dmarcpipe}
# the scripts read the run's summary as the plain text a terminal gets;
# off a terminal dmarcpipe would log JSON lines
export DMARCPIPE_LOG_FORMAT=plain

# bench_dirs SCRATCH-NAME INPUT-NAME KEEP [HOOK]: the two directories a
# benchmark works in, and their removal on exit. Sets:
#   scratch  a new directory $TMPDIR/SCRATCH-NAME.XXXXXX, always removed;
#   dir      where the inputs go: BENCH_DIR when set (created if need be,
#            never removed), else a new directory $TMPDIR/INPUT-NAME.XXXXXX,
#            removed unless KEEP is 1 (--keep);
#   cleanup  the directories removed on exit.
# Installs the EXIT trap: HOOK (a command, such as a function that stops a
# broker), when given, runs first; then the directories are removed.
bench_dirs() {
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    cleanup=("$scratch")
    if [ -n "${BENCH_DIR:-}" ]; then
        dir=$BENCH_DIR
        mkdir -p "$dir"
    else
        dir=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX")
        [ "$3" = 1 ] || cleanup+=("$dir")
    fi
    bench_exit_hook=${4:-}
    trap bench_on_exit EXIT
}
# The EXIT trap that bench_dirs installs.
bench_on_exit() {
    [ -z "$bench_exit_hook" ] || "$bench_exit_hook"
    rm -rf "${cleanup[@]}"
}

# die MESSAGE [STATUS]: one line on stderr, exit STATUS (default 1).
die() { echo "$me: $1" >&2; exit "${2:-1}"; }
# posint OPTION VALUE: exit 2 unless VALUE is a positive integer.
posint() { case $2 in ''|*[!0-9]*|0*) die "$1 needs a positive integer, got '$2'" 2 ;; esac; }
# kv KEY FILE: the value of KEY in a "key=value key=value" line of FILE; an
# exact match, so inflate_s does not pick up expat_inflate_s.
kv() {
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=")
        if (n && substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' "$2"
}
now_ns() { date +%s%N; }
# secs T0 T1: seconds between two now_ns readings.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }'; }
