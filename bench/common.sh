# shellcheck shell=bash disable=SC2034,SC2154  # sourced: the scripts use its variables and set `me`
# bench/common.sh -- what the bench scripts share: where the binaries are,
# and a few small helpers.  Sourced (never run) by parse_vs_floor.sh,
# run_scaling.sh and kafka_vs_kcat.sh, after they set `me` (the name their
# messages start with).
#
# Sets: repo, build (BUILD_DIR, default <repo>/build), gen (DP_GEN_REPORT),
# floor (DP_FLOOR), dmarcpipe (DMARCPIPE; the CLI lands at the top of the
# build tree, older layouts had it beside its sources).

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
gen=${DP_GEN_REPORT:-$build/bench/dp-gen-report}
floor=${DP_FLOOR:-$build/bench/dp-floor}
dmarcpipe=${DMARCPIPE:-}
if [ -z "$dmarcpipe" ]; then
    dmarcpipe=$build/dmarcpipe
    [ -x "$dmarcpipe" ] || [ ! -x "$build/common/cli/dmarcpipe" ] ||
        dmarcpipe=$build/common/cli/dmarcpipe
fi

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
