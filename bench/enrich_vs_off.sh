#!/usr/bin/env bash
# enrich_vs_off.sh -- what enrichment costs `dmarcpipe run`: the same many
# reports counted with enrichment off, on against a DNS server that answers
# every query 100 ms late, and on against a resolver that is not there.
#
# Enrichment must never be on the path that counts records: a lookup that is
# slow or never answered may leave a rollup's source_* fields null, but it
# must not delay a flush nor the end of the run.  So the three runs should
# take the same time.  Three modes, interleaved in each round (the order
# turns from one round to the next, so that a noisy neighbour hits all
# alike):
#
#   off    dmarcpipe run (no enrichment)
#   on     dmarcpipe run --enrich --resolver 127.0.0.1:P, where P is
#          bench/slow_dns.py (PyPI dnslib): every PTR, A and AAAA answered
#          after --delay-ms (default 100); PTR names under SendGrid, Amazon
#          SES, Microsoft 365, Google and a domain no map knows, each
#          forward-confirmed; the queries it receives are counted
#   dead   dmarcpipe run --enrich --resolver 127.0.0.1:Q, where nothing
#          listens on Q
#   wait   (with --wait SEC, and in --quick) `on` plus --enrich-wait SEC: the
#          final flush waits for the lookups still out, so the rollups come
#          out named; this one is slower by design and shows what a full
#          answer costs
#
# No --state and no --enrich-cache: the PTR cache is in memory and empty at
# the start of every run, the worst case for the resolver.
#
# For each mode: median wall and CPU time, records/s, the ratio of its
# records/s to off's (100% = as fast), peak RSS, the DNS queries the server
# received during the run, and how many rollups came out with a PTR and with
# a service.  Then the noise to judge "as fast" by (with --runs 2 or more):
# how far off's own wall time moved across the rounds, and each mode's
# records/s against off's within each round (lowest, highest, median).  Totals are checked: every run's summary against the
# generator's, and, on the first round, the rollups themselves: the same
# lines in every mode once the seven source_* fields are set aside (a
# digest of the sorted lines), each PTR the one the server gives for that IP,
# each service what enrich/known_senders.tsv says of that name.  The script
# exits 1 when any of that disagrees; never because something was slow.
#
# Usage: bench/enrich_vs_off.sh [--quick] [--runs N] [--reports N]
#            [--records N] [--ips N] [--seed S] [--workers N]
#            [--delay-ms MS] [--wait SEC] [--keep]
#
# Defaults: --runs 3; 2000 reports of 500 records with 100000 distinct IPs
# (the `many` input of run_scaling.sh: the same files when BENCH_DIR is
# shared); dmarcpipe's default workers; --delay-ms 100; no wait mode.
# --quick (CI): 1 run, 20 reports of 100 records, 300 IPs, and the wait mode
# with --wait 20 (every rollup must then come out with its PTR).
#
# Environment:
#   BENCH_DIR     where inputs are written and kept; default: a temporary
#                 directory removed on exit
#   BUILD_DIR     build tree (default: <repo>/build)
#   DMARCPIPE     dmarcpipe binary (default: $BUILD_DIR/dmarcpipe)
#   DP_GEN_REPORT the generator (default: $BUILD_DIR/bench/dp-gen-report)
#   DP_DNS_VENV   the venv holding dnslib (default:
#                 ~/.cache/dmarcpipe/bench-dns-venv; made with pip from PyPI
#                 when missing; needs python3-venv)
#
# Needs GNU time at /usr/bin/time (Debian package "time"), gzip and python3.
#
# Exit status: 0 ok, 1 totals disagree or a tool failed, 2 usage error or a
# missing tool.

set -euo pipefail

me=enrich_vs_off
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$here/common.sh"

DNSLIB=dnslib==0.9.26
ncpu=$(nproc)
quick=0 seed=1 delay_ms=100 keep=0
runs=''
n_reports=''
n_records=''
ips=''
workers=''
wait_s=''

usage() { sed -n '/^# Usage:/,/^# Defaults:/{/^# Defaults:/d;/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --reports) n_reports=${2:?}; shift 2 ;;
        --records) n_records=${2:?}; shift 2 ;;
        --ips) ips=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --workers) workers=${2:?}; shift 2 ;;
        --delay-ms) delay_ms=${2:?}; shift 2 ;;
        --wait) wait_s=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage ;;
        *) echo "enrich_vs_off: unknown argument '$1'" >&2; usage ;;
    esac
done

if [ "$quick" = 1 ]; then
    : "${runs:=1}" "${n_reports:=20}" "${n_records:=100}" "${ips:=300}" "${wait_s:=20}"
else
    : "${runs:=3}" "${n_reports:=2000}" "${n_records:=500}" "${ips:=100000}"
fi
for v in runs:"$runs" reports:"$n_reports" records:"$n_records" ips:"$ips" delay-ms:"$delay_ms"; do
    posint "--${v%%:*}" "${v#*:}"
done
[ -z "$workers" ] || posint --workers "$workers"
[ -z "$wait_s" ] || posint --wait "$wait_s"
case $seed in ''|*[!0-9]*) die "--seed needs a number" 2 ;; esac

[ -x "$gen" ] || die "dp-gen-report not found at $gen (build it, or set DP_GEN_REPORT)" 2
[ -x "$dmarcpipe" ] || die "dmarcpipe not found at $dmarcpipe (build it, or set DMARCPIPE)" 2
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time (Debian package 'time')" 2
command -v gzip >/dev/null || die "gzip not found" 2
"$dmarcpipe" run --help 2>&1 | grep -q -- '--resolver' ||
    die "$dmarcpipe has no --enrich/--resolver (a build without enrichment)" 2
senders=$repo/enrich/known_senders.tsv
[ -s "$senders" ] || die "no $senders" 2

dns_pid=
stop_dns() {
    if [ -n "$dns_pid" ]; then
        kill "$dns_pid" 2>/dev/null || true
        wait "$dns_pid" 2>/dev/null || true
        dns_pid=
    fi
}
bench_dirs dp-enrich-run dp-enrich "$keep" stop_dns

# --- the DNS server's venv ------------------------------------------------------
venv=${DP_DNS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dmarcpipe/bench-dns-venv}
py=$venv/bin/python
if [ "$(cat "$venv/.dp-requirements" 2>/dev/null)" != "$DNSLIB" ] ||
   ! "$py" -c 'import dnslib.server' 2>/dev/null; then
    echo "installing $DNSLIB into $venv ..." >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || die "cannot make a venv in $venv (python3-venv missing?)" 2
    "$py" -m pip install --disable-pip-version-check -q "$DNSLIB" ||
        { rm -rf "$venv"; die "pip install $DNSLIB failed (is PyPI reachable?)" 2; }
    echo "$DNSLIB" >"$venv/.dp-requirements"
fi

# --- input: the `many` directory of run_scaling.sh ----------------------------
many=$dir/many-${n_reports}x${n_records}-s$seed-i$ips
if [ -d "$many" ] && [ -s "$many.stats" ]; then
    echo "reusing $many" >&2
else
    echo "generating $many ..." >&2
    rm -rf "$many.tmp"
    "$gen" --reports "$n_reports" --records "$n_records" --ips "$ips" --seed "$seed" \
        -o "$many.tmp" 2>"$many.stats.tmp" || die "generation failed: $(cat "$many.stats.tmp")"
    find "$many.tmp" -name '*.xml' -print0 | xargs -0 -r -n 32 -P "$ncpu" gzip -6 || die "gzip failed"
    rm -rf "$many"
    mv "$many.tmp" "$many"
    mv "$many.stats.tmp" "$many.stats"
fi
exp_records=$(kv records "$many.stats")
exp_messages=$(kv messages "$many.stats")
xml_bytes=$(kv bytes "$many.stats")

# --- the servers ----------------------------------------------------------------
free_udp_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
stats=$scratch/dns.stats
"$py" "$here/slow_dns.py" serve --port-file "$scratch/dns.port" --stats "$stats" \
    --delay "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", m / 1000 }')" 2>"$scratch/dns.err" &
dns_pid=$!
for _ in $(seq 1 100); do
    [ -s "$scratch/dns.port" ] && break
    kill -0 "$dns_pid" 2>/dev/null || die "the DNS server did not start: $(cat "$scratch/dns.err")"
    sleep 0.1
done
[ -s "$scratch/dns.port" ] || die "the DNS server did not start in 10 s"
port=$(cat "$scratch/dns.port")
# Nothing listens there: a port just free, and the server's own port + 1 is
# not used, since it might be taken by then by anything.
dead=$(free_udp_port)
[ "$dead" != "$port" ] || dead=$(free_udp_port)
dns_queries() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["queries"])' "$stats"; }
# the server's CPU time so far, in clock ticks (utime + stime): on a small
# machine what it spends is taken from the run it answers
dns_ticks() { awk '{ print $14 + $15 }' "/proc/$dns_pid/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

modes=(off on dead)
[ -z "$wait_s" ] || modes+=(wait)
mode_args() {
    case $1 in
        off) ;;
        on) echo --enrich --resolver "127.0.0.1:$port" ;;
        dead) echo --enrich --resolver "127.0.0.1:$dead" ;;
        wait) echo --enrich --resolver "127.0.0.1:$port" --enrich-wait "$wait_s" ;;
    esac
}
wargs=()
[ -z "$workers" ] || wargs=(--workers "$workers" --shards "$workers")

# --- one run ----------------------------------------------------------------------
status=0
mismatch() { echo "enrich_vs_off: $1: $2" >&2; status=1; }
sumval() { sed -n "s/.*$1:[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p" "$2" | head -n 1; }
results=$scratch/results
: >"$results"

# run_mode MODE ROUND: one `dmarcpipe run`; appends "MODE wall cpu rss
# queries rollups warnings" to the results; on round 1 checks the sink.
run_mode() {
    local mode=$1 round=$2 out=$scratch/r.ndjson rep=$scratch/rep.ndjson
    local -a extra
    read -r -a extra <<<"$(mode_args "$mode")"
    rm -rf "$scratch/q" "$out" "$rep"
    # answers still out from the previous run land first
    sleep 0.3
    local q0 q1 c0 c1 t0 t1 rc=0
    q0=$(dns_queries)
    c0=$(dns_ticks)
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$scratch/time.out" \
        "$dmarcpipe" run --sink "file:$out" --reports "$rep" --quarantine "$scratch/q" \
        "${wargs[@]}" "${extra[@]}" "$many" >"$scratch/dp.out" 2>"$scratch/dp.err" || rc=$?
    t1=$(now_ns)
    if [ "$rc" != 0 ]; then
        tail -n 20 "$scratch/dp.err" >&2
        die "$mode: dmarcpipe run ${extra[*]} failed (exit $rc)"
    fi
    # queries the run sent before it ended that are still being answered
    sleep "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", 2 * m / 1000 + 0.2 }')"
    q1=$(dns_queries)
    c1=$(dns_ticks)
    local wall u s rss cpu
    wall=$(secs "$t0" "$t1")
    read -r _ u s rss <"$scratch/time.out"
    cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f\n", u + s }')
    local e=$scratch/dp.err got_records got_messages got_acc rollups warns
    got_records=$(sumval records "$e")
    got_messages=$(sumval messages "$e")
    got_acc=$(sed -n 's/^[[:space:]]*reports:[[:space:]]*\([0-9]*\) accepted.*/\1/p' "$e")
    rollups=$(sumval rollups "$e")
    # what enrichment told the user (plain logs carry no level: its
    # messages are the lines "dmarcpipe: enrich: ...")
    warns=$(grep -c '^dmarcpipe: enrich:' "$e" || true)
    [ "$round" != 1 ] || grep '^dmarcpipe: enrich:' "$e" | sort -u >"$scratch/log.$mode" || true
    if [ "$got_records" != "$exp_records" ] || [ "$got_messages" != "$exp_messages" ] ||
       [ "$got_acc" != "$n_reports" ] || [ -z "$rollups" ]; then
        cat "$e" >&2
        mismatch "$mode" "expected reports=$n_reports records=$exp_records messages=$exp_messages"
    fi
    if [ -d "$scratch/q" ] && [ -n "$(ls -A "$scratch/q")" ]; then
        mismatch "$mode" "something was quarantined"
    fi
    echo "$mode $wall $cpu $rss $((q1 - q0)) $rollups $warns $(awk -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" >>"$results"
    if [ "$round" = 1 ]; then
        local chk=(--sink "$out" --senders "$senders")
        [ "$mode" != wait ] || chk+=(--expect-all)
        if ! python3 "$here/slow_dns.py" check "${chk[@]}" >"$scratch/check.$mode" 2>"$scratch/check.err"; then
            cat "$scratch/check.err" >&2
            mismatch "$mode" "the rollups' source_* fields are wrong"
        fi
        [ "$(kv rollups "$scratch/check.$mode")" = "$rollups" ] ||
            mismatch "$mode" "$(kv rollups "$scratch/check.$mode") rollup lines, the summary says $rollups"
        if [ "$(kv messages "$scratch/check.$mode")" != "$exp_messages" ] ||
           [ "$(kv records "$scratch/check.$mode")" != "$exp_records" ]; then
            mismatch "$mode" "the sink's sums are not the generator's: $(cat "$scratch/check.$mode")"
        fi
        if [ "$mode" = dead ] || [ "$mode" = off ]; then
            [ "$(kv enriched "$scratch/check.$mode")" = 0 ] ||
                mismatch "$mode" "$(kv enriched "$scratch/check.$mode") rollups with a PTR, and no server answered"
        fi
        if [ "$mode" = wait ] && [ "$(kv with_service "$scratch/check.$mode")" = 0 ]; then
            mismatch wait "no rollup named a service"
        fi
    fi
    rm -f "$out" "$rep"
}

load_start=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)
nm=${#modes[@]}
for ((round = 1; round <= runs; round++)); do
    for ((k = 0; k < nm; k++)); do
        mode=${modes[$(((k + round - 1) % nm))]}
        run_mode "$mode" "$round"
        echo "round $round $mode: $(tail -n 1 "$results")" >&2
    done
done
load_end=$(cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo n/a)
stop_dns

# every mode gave the same rollups, source_* fields aside
d_off=$(kv digest "$scratch/check.off")
for m in "${modes[@]}"; do
    [ "$(kv digest "$scratch/check.$m")" = "$d_off" ] ||
        mismatch "$m" "its rollups differ from off's (source_* fields aside)"
done

median() { # COLUMN MODE
    awk -v m="$2" -v c="$1" '$1 == m { print $c }' "$results" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maxcol() { awk -v m="$2" -v c="$1" '$1 == m && $c > x { x = $c } END { print x + 0 }' "$results"; }

totals=ok
[ "$status" = 0 ] || totals=MISMATCH
off_wall=$(median 2 off)
echo
echo "enrichment vs off: $n_reports reports x $n_records records ($exp_records records, $ips IPs), gzip;" \
     "DNS answers after ${delay_ms} ms; median of $runs"
echo "  nproc $ncpu; 1-minute load average $load_start before, $load_end after"
printf '  %-6s %8s %8s %11s %9s %8s %7s %9s %9s %8s %10s\n' mode wall_s cpu_s records/s vs_off queries dns_cpu rollups with_ptr service enrich_log
lines=()
for m in "${modes[@]}"; do
    wall=$(median 2 "$m") cpu=$(median 3 "$m") rss=$(maxcol 4 "$m") q=$(median 5 "$m")
    rollups=$(median 6 "$m") warns=$(maxcol 7 "$m") dcpu=$(median 8 "$m")
    enriched=$(kv enriched "$scratch/check.$m") svc=$(kv with_service "$scratch/check.$m")
    row=$(awk -v m="$m" -v w="$wall" -v c="$cpu" -v r="$exp_records" -v ow="$off_wall" -v q="$q" \
        -v dc="$dcpu" -v ro="$rollups" -v en="$enriched" -v sv="$svc" -v wa="$warns" -v rss="$rss" -v runs="$runs" \
        -v xb="$xml_bytes" -v ips="$ips" -v d="$delay_ms" -v ws="${wait_s:-0}" 'BEGIN {
        printf "  %-6s %8.3f %8.2f %11.0f %8.1f%% %8d %7.2f %9d %9d %8d %10d\n", m, w, c, r / w, 100 * ow / w, q, dc, ro, en, sv, wa
        printf "bench enrich_vs_off mode=%s records=%.0f xml_bytes=%.0f ips=%d runs=%d delay_ms=%d wait_s=%d wall_s=%.3f cpu_s=%.2f records_per_s=%.0f vs_off_pct=%.1f rss_kib=%d dns_queries=%d dns_cpu_s=%.2f rollups=%d enriched=%d with_service=%d enrich_log_lines=%d\n", \
            m, r, xb, ips, runs, d, (m == "wait" ? ws : 0), w, c, r / w, 100 * ow / w, rss, q, dc, ro, en, sv, wa }')
    printf '%s\n' "${row%%$'\n'*}"
    lines+=("${row##*$'\n'}")
done
echo "  (vs_off: records/s against off's; queries, dns_cpu: received by the DNS server during the run, and"
echo "   the CPU seconds it spent answering them, medians;"
echo "   with_ptr, service: rollups of the first round with a source_ptr, a source_service)"
echo "  enrich_log: lines of the run's log from enrichment, the most of any run; in the first round:"
for m in "${modes[@]}"; do
    if [ -s "$scratch/log.$m" ]; then
        sed "s/^/    $m: /" "$scratch/log.$m"
    else
        echo "    $m: (none)"
    fi
done
# The noise, to judge "as fast" by: how far off's own wall time moves from
# round to round, and each mode against off within each round (the rows
# come a round at a time, every mode once, so a noisy neighbour hits a
# round's runs alike).
awk -v n="${#modes[@]}" -v runs="$runs" '
    { r = int((NR - 1) / n); wall[$1, r] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
    function med(a, m,   i, j, t) {
        for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        if (runs < 2) exit
        lo = hi = wall["off", 0]
        for (r = 0; r < runs; r++) { if (wall["off", r] < lo) lo = wall["off", r]; if (wall["off", r] > hi) hi = wall["off", r] }
        for (r = 0; r < runs; r++) v[r + 1] = wall["off", r]
        printf "  noise: off took %.2f-%.2f s across the rounds (%.0f%% of its median from one end to the other)\n", lo, hi, 100 * (hi - lo) / med(v, runs)
        for (i = 1; i <= k; i++) {
            m = order[i]
            if (m == "off") continue
            rlo = 1e9; rhi = 0
            for (r = 0; r < runs; r++) { q = wall["off", r] / wall[m, r]; v[r + 1] = q; if (q < rlo) rlo = q; if (q > rhi) rhi = q }
            printf "    %s vs off in the same round, records/s: %.1f%%-%.1f%%, median %.1f%%\n", m, 100 * rlo, 100 * rhi, 100 * med(v, runs)
        }
    }' "$results"
echo "  totals vs generator, and the same rollups in every mode: $totals"
echo
for l in "${lines[@]}"; do printf '%s totals=%s\n' "$l" "$totals"; done
[ "$keep" = 1 ] && [ -z "${BENCH_DIR:-}" ] && echo "kept inputs in $dir" >&2
exit "$status"
