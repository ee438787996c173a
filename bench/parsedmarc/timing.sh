#!/usr/bin/env bash
# timing.sh -- the parsedmarc CLI against dmarcpipe, on the same inputs.
#
# Times, interleaved, median of --runs:
#   parsedmarc           VENV/bin/parsedmarc --offline -s -o OUT FILE...
#                        (the CLI of the latest PyPI release, JSON output to
#                        OUT/aggregate.json; it also writes its CSV files there,
#                        it has no switch to turn them off)
#   dmarcpipe-parse      dmarcpipe parse --summary FILE...
#   dmarcpipe-run        dmarcpipe run --sink file:OUT/rollups.ndjson
#                                      --reports OUT/reports.ndjson FILE...
# on three corpora:
#   real        tests/data/corpus (the files its MANIFEST.tsv lists)
#   synthetic   --reports reports x --records records, gzipped (dp-gen-report)
#   big         one report of --big-size uncompressed XML, gzipped
#
# Usage: bench/parsedmarc/timing.sh [--quick] [--runs N] [--venv DIR]
#            [--reports N] [--records N] [--big-size SIZE] [--ips N]
#            [--schema rfc7489|rfc9990] [--seed S] [--workers N]
#            [--corpus DIR] [--only real|synthetic|big]... [--keep]
#
# Defaults: --runs 3, --reports 100 --records 1000, --big-size 50M,
# --ips 20000. --quick: 5 x 200 records, a 1M big report and --runs 1
# (unless --runs is given). --workers goes to dmarcpipe run (default: its
# own, one per core); parsedmarc runs with its default n_procs = 1, and
# dmarcpipe parse on one thread, so compare those two core for core.
#
# Rate: records/s = the records dmarcpipe parse accepted on the corpus /
# median wall seconds; the same count for every tool, so the rates compare.
# Peak RSS is the largest of the runs (GNU time %M). Nothing asserts a time.
#
# Offline: parsedmarc gets --offline (no reverse DNS, no download of the
# IP database, reverse DNS map or PSL overrides; its bundled files are used)
# and -s (otherwise it also prints every report as JSON on stdout). It also
# runs in an empty network namespace (unshare -n, when it works), so any
# attempt to reach the network fails at once instead of being measured.
#
# Totals checks (exit 1 on failure, or when a tool crashes: parsedmarc exit
# status != 0, dmarcpipe > 1 or a signal):
#   real        bench/parsedmarc/compare.py, file by file, before the
#               timing: both tools must agree on the messages of every file
#               both accept, unless the cause is verified to lie in
#               parsedmarc (see compare.py). The files on which the
#               parsedmarc CLI would abort the whole run (an uncaught
#               exception from its mbox reader; compare.py finds them) are
#               left out of the timed list, for every tool, and named.
#   synthetic,  the first run's outputs: dmarcpipe parse and run must find
#   big         the generator's reports, records and messages, and
#               parsedmarc's aggregate.json must hold every report with
#               dmarcpipe's messages, report_id by report_id
#
# Environment: BENCH_DIR (keep generated corpora and results there, reused
# when the same parameters come again; default a temporary folder removed
# on exit unless --keep), BUILD_DIR, DMARCPIPE, DP_GEN_REPORT,
# PARSEDMARC_VENV (default ${XDG_CACHE_HOME:-~/.cache}/dmarcpipe/parsedmarc-venv;
# made by setup.sh when missing).
#
# Output: a table, then one line per measure:
#   bench parsedmarc tool=T corpus=C wall_s=W records_per_s=R rss_kib=K cpu_s=U runs=N records=N files=F

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$repo/build}
gen=${DP_GEN_REPORT:-$build/bench/dp-gen-report}
dmarcpipe=${DMARCPIPE:-$build/dmarcpipe}
venv=${PARSEDMARC_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dmarcpipe/parsedmarc-venv}
corpus=$repo/tests/data/corpus

runs='' reports=100 records=1000 big_size=50M ips=20000 schema=rfc7489 seed=1
workers='' quick=0 keep=0 only=()

die() { echo "timing.sh: $1" >&2; exit "${2:-2}"; }
usage() { sed -n '/^# Usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --venv) venv=${2:?}; shift 2 ;;
        --reports) reports=${2:?}; shift 2 ;;
        --records) records=${2:?}; shift 2 ;;
        --big-size) big_size=${2:?}; shift 2 ;;
        --ips) ips=${2:?}; shift 2 ;;
        --schema) schema=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --workers) workers=${2:?}; shift 2 ;;
        --corpus) corpus=${2:?}; shift 2 ;;
        --only) only+=("${2:?}"); shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage ;;
        *) echo "timing.sh: unknown argument $1" >&2; usage ;;
    esac
done
if [ "$quick" = 1 ]; then
    reports=5 records=200 big_size=1M
    runs=${runs:-1}
fi
runs=${runs:-3}
[ ${#only[@]} -gt 0 ] || only=(real synthetic big)
for c in "${only[@]}"; do
    case $c in real|synthetic|big) ;; *) die "--only takes real, synthetic or big" ;; esac
done

[ -x "$dmarcpipe" ] || die "$dmarcpipe: not built (cmake --build build)"
[ -x /usr/bin/time ] || die "needs GNU time at /usr/bin/time (Debian package 'time')"
if [ ! -x "$venv/bin/parsedmarc" ]; then
    "$here/setup.sh" "$venv" >/dev/null || die "setup.sh failed" 1
fi
pdver=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("parsedmarc"))')

netns=()
if unshare -n true 2>/dev/null; then netns=(unshare -n); fi

if [ -n "${BENCH_DIR:-}" ]; then
    work=$BENCH_DIR/parsedmarc
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/dp-parsedmarc.XXXXXX")
    [ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
fi

failed=0
fail() { echo "timing.sh: FAILED: $*" >&2; failed=1; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }
maxof() { sort -g | tail -1; }

# ------------------------------------------------------------ the corpora
# gen_corpus NAME ARGS...: DIR with gzipped reports, and DIR.gen with the
# generator's "records=N messages=M bytes=B" line. Reused when present.
gen_corpus() {
    local dir=$1; shift
    if [ -s "$dir.gen" ] && [ -d "$dir" ]; then return; fi
    rm -rf "$dir" "$dir.gen"; mkdir -p "$dir"
    "$gen" "$@" 2>"$dir.gen.tmp" || { cat "$dir.gen.tmp" >&2; die "dp-gen-report failed" 1; }
    gzip -6 -f "$dir"/*.xml
    grep -E '^records=' "$dir.gen.tmp" | tail -1 >"$dir.gen"
    rm -f "$dir.gen.tmp"
}

declare -A C_FILES C_GEN C_NOTE CHECK
corpora=()
for c in "${only[@]}"; do
    case $c in
    real)
        [ -f "$corpus/MANIFEST.tsv" ] || die "$corpus/MANIFEST.tsv: missing"
        list=$work/real.files
        echo "checks, corpus real (compare.py, before the timing):" >&2
        if "$here/compare.py" -q --dmarcpipe "$dmarcpipe" --venv "$venv" --workdir "$work/compare-real" \
               --label real "$corpus" >"$work/compare-real.txt" 2>&1; then CHECK[$c]=ok
        else CHECK[$c]=FAILED; fail "compare.py on the real corpus (see $work/compare-real/compare.md)"; fi
        sed 's/^/  /' "$work/compare-real.txt" >&2
        [ -s "$work/compare-real/compare.json" ] || die "compare.py wrote no results" 1
        # every file compare.py read, less those that abort a parsedmarc CLI run
        python3 - "$work/compare-real/compare.json" "$list" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
fatal = set(r["parsedmarc_cli_fatal"])
files = sorted(x["file"] for rows in r["rows"].values() for x in rows)
open(sys.argv[2], "w").write("".join(f + "\n" for f in files if f not in fatal))
open(sys.argv[2] + ".excluded", "w").write("".join(f + "\n" for f in sorted(fatal)))
EOF
        n=$(wc -l <"$list.excluded")
        [ "$n" = 0 ] || C_NOTE[$c]="left out of the timing: $n file(s) that abort a whole parsedmarc CLI run ($(xargs -d '\n' -n1 basename <"$list.excluded" | paste -sd, -))"
        ;;
    synthetic)
        d=$work/synthetic-${reports}x${records}-ips${ips}-${schema}-s${seed}
        gen_corpus "$d" --reports "$reports" --records "$records" --ips "$ips" \
            --schema "$schema" --seed "$seed" -o "$d"
        list=$d.files; ls "$d"/*.xml.gz >"$list"
        C_GEN[$c]=$(cat "$d.gen")
        ;;
    big)
        d=$work/big-${big_size}-ips${ips}-${schema}-s${seed}
        gen_corpus "$d" --reports 1 --target-bytes "$big_size" --max-bytes "$big_size" \
            --ips "$ips" --schema "$schema" --seed "$seed" -o "$d/big.xml"
        list=$d.files; ls "$d"/*.xml.gz >"$list"
        C_GEN[$c]=$(cat "$d.gen")
        ;;
    esac
    C_FILES[$c]=$list
    corpora+=("$c")
done

# -------------------------------------------------------------- measuring
tools=(parsedmarc dmarcpipe-parse dmarcpipe-run)
declare -A WALL RSS CPU RECS NFILES
run_args=(); [ -z "$workers" ] || run_args=(--workers "$workers")

# one CORPUS TOOL RUN: runs it once under GNU time; outputs under
# $work/out/CORPUS/TOOL.RUN{,.stdout,.stderr}; appends to WALL/RSS/CPU.
one() {
    local c=$1 t=$2 r=$3 base=$work/out/$1/$2.$3 rc=0
    local -a files cmd
    mapfile -t files <"${C_FILES[$c]}"
    rm -rf "$base"; mkdir -p "$(dirname "$base")"
    # dmarcpipe writes into a folder that exists: it makes none for a sink
    if [ "$t" = dmarcpipe-run ]; then mkdir -p "$base"; fi
    case $t in
        parsedmarc) cmd=("${netns[@]}" "$venv/bin/parsedmarc" --offline -s -o "$base" "${files[@]}") ;;
        dmarcpipe-parse) cmd=("$dmarcpipe" parse --summary -- "${files[@]}") ;;
        dmarcpipe-run) cmd=("$dmarcpipe" run "${run_args[@]}" --sink "file:$base/rollups.ndjson"
                            --reports "$base/reports.ndjson" --quarantine "$base/quarantine" "${files[@]}") ;;
    esac
    /usr/bin/time -f '%e %M %U %S' -o "$base.time" "${cmd[@]}" >"$base.stdout" 2>"$base.stderr" || rc=$?
    local wall rss usr sys
    read -r wall rss usr sys < <(tail -1 "$base.time")
    WALL[$c,$t]+="$wall "; RSS[$c,$t]+="$rss "
    CPU[$c,$t]+="$(awk -v u="$usr" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') "
    if { [ "$t" = parsedmarc ] && [ "$rc" != 0 ]; } || [ "$rc" -gt 1 ]; then
        fail "$t crashed on corpus $c (exit $rc): $(tail -3 "$base.stderr" | tr '\n' ' ')"
    fi
    if [ "$r" != 1 ]; then rm -rf "$base" "$base.stdout"; fi   # keep run 1 for the checks
}

echo "parsedmarc $pdver (venv $venv) vs $dmarcpipe; median of $runs; work in $work" >&2
for c in "${corpora[@]}"; do
    NFILES[$c]=$(wc -l <"${C_FILES[$c]}")
    echo "corpus $c: ${NFILES[$c]} files${C_GEN[$c]:+, generator: ${C_GEN[$c]}}${C_NOTE[$c]:+; ${C_NOTE[$c]}}" >&2
    for r in $(seq 1 "$runs"); do
        for t in "${tools[@]}"; do
            one "$c" "$t" "$r"
            echo "  run $r $t: $(tail -1 "$work/out/$c/$t.$r.time")" >&2
        done
    done
    RECS[$c]=$(python3 -c '
import json, sys
print(sum(json.loads(l)["records"] for l in open(sys.argv[1]) if l.startswith("{")))' \
        "$work/out/$c/dmarcpipe-parse.1.stdout")
done

# ----------------------------------------------------------------- checks
check_generated() {  # CORPUS: the first run's outputs against the generator
    python3 - "$work/out/$1" "${C_GEN[$1]}" <<'EOF'
import json, os, re, sys
out, gen = sys.argv[1], dict(kv.split("=") for kv in sys.argv[2].split())
want_rec, want_msg = int(gen["records"]), int(gen["messages"])
bad = []
# dmarcpipe parse --summary
rows = [json.loads(l) for l in open(f"{out}/dmarcpipe-parse.1.stdout") if l.startswith("{")]
rep, rec, msg, rej = (sum(r[k] for r in rows) for k in ("reports", "records", "messages", "rejected"))
if (rec, msg, rej) != (want_rec, want_msg, 0) or rep != len(rows):
    bad.append(f"dmarcpipe parse: reports={rep} records={rec} messages={msg} rejected={rej}, "
               f"generator: reports={len(rows)} records={want_rec} messages={want_msg}")
# dmarcpipe run: its summary on stderr and its report inventory
err = open(f"{out}/dmarcpipe-run.1.stderr").read()
m = re.search(r"records:\s*(\d+)\s+messages:\s*(\d+)", err)
if not m or (int(m[1]), int(m[2])) != (want_rec, want_msg):
    bad.append(f"dmarcpipe run: {m[0] if m else 'no summary line'}; generator: records={want_rec} messages={want_msg}")
dp = {}
for l in open(f"{out}/dmarcpipe-run.1/reports.ndjson"):
    r = json.loads(l)
    dp[r["report_id"]] = (r["messages"], r["input"])
# parsedmarc: aggregate.json, report_id by report_id
try:
    pd_reports = json.load(open(f"{out}/parsedmarc.1/aggregate.json"))
except (OSError, ValueError) as e:
    pd_reports = []
    bad.append(f"parsedmarc: no readable aggregate.json: {e}")
pd = {}
for r in pd_reports:
    rid = r["report_metadata"]["report_id"]
    pd[rid] = pd.get(rid, 0) + sum(int(x["count"]) for x in r["records"])
failed_lines = [l.strip() for l in open(f"{out}/parsedmarc.1.stderr") if "Failed to parse" in l]
for rid, (m_dp, inp) in sorted(dp.items(), key=lambda kv: kv[1][1]):
    if rid not in pd:
        why = next((l for l in failed_lines if inp in l), "not in aggregate.json")
        bad.append(f"parsedmarc: {os.path.basename(inp)} (report_id {rid}) missing: {why[:300]}")
    elif pd[rid] != m_dp:
        bad.append(f"parsedmarc: {os.path.basename(inp)} (report_id {rid}) messages={pd[rid]}, dmarcpipe {m_dp}")
for rid in set(pd) - set(dp):
    bad.append(f"parsedmarc: report_id {rid} that dmarcpipe run did not count")
if sum(pd.values()) != want_msg:
    bad.append(f"parsedmarc: messages={sum(pd.values())} over {len(pd)} reports, generator {want_msg}")
for b in bad[:30]:
    print("  " + b)
print(f"  totals vs generator: {'ok' if not bad else 'FAILED'} (reports={len(rows)} records={want_rec} "
      f"messages={want_msg}; parsedmarc reports={len(pd)} messages={sum(pd.values())})")
sys.exit(1 if bad else 0)
EOF
}

for c in "${corpora[@]}"; do
    [ "$c" != real ] || continue
    echo "checks, corpus $c:" >&2
    if check_generated "$c" >&2; then CHECK[$c]=ok; else CHECK[$c]=FAILED; fail "totals on corpus $c"; fi
done

# ------------------------------------------------------------------ table
echo
printf '%-10s %-17s %6s %10s %12s %12s %9s\n' corpus tool files "wall s" "records/s" "peak RSS" "cpu s"
lines=()
for c in "${corpora[@]}"; do
    for t in "${tools[@]}"; do
        w=$(tr ' ' '\n' <<<"${WALL[$c,$t]}" | grep . | median)
        k=$(tr ' ' '\n' <<<"${RSS[$c,$t]}" | grep . | maxof)
        u=$(tr ' ' '\n' <<<"${CPU[$c,$t]}" | grep . | median)
        rate=$(awk -v n="${RECS[$c]}" -v w="$w" 'BEGIN {printf "%.0f", (w > 0 ? n / w : 0)}')
        printf '%-10s %-17s %6s %10.2f %12s %9.1f MiB %9.2f\n' "$c" "$t" "${NFILES[$c]}" "$w" "$rate" \
            "$(awk -v k="$k" 'BEGIN {print k / 1024}')" "$u"
        lines+=("bench parsedmarc tool=$t corpus=$c wall_s=$w records_per_s=$rate rss_kib=$k cpu_s=$u runs=$runs records=${RECS[$c]} files=${NFILES[$c]}")
    done
done
echo
for c in "${corpora[@]}"; do echo "totals check $c: ${CHECK[$c]}${C_NOTE[$c]:+; ${C_NOTE[$c]}}"; done
echo "parsedmarc $pdver: --offline -s -o DIR${netns:+, in unshare -n}; records/s counts the records dmarcpipe parse accepted"
printf '%s\n' "${lines[@]}"
exit "$failed"
