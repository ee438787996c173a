#!/usr/bin/env python3
"""results.py -- bench/run's report: RESULTS.md and the plots.

Reads the `bench NAME key=value ...<TAB>cmd=COMMAND` lines that bench/run
collected (every line carries the command that produced it), and writes
RESULTS.md: the machine, the versions, the date and the commit, then one
section per benchmark, each figure next to its baseline from the same run
and the command that reproduces it (`dmarcpipe report` beside dp-json-floor,
a bare jansson reader of the same feed).  Plots are PNG files drawn by gnuplot:
throughput against workers, RSS against report size, dmarcpipe against
parsedmarc.  A section whose lines are missing says so.

usage: results.py --lines FILE --out DIR --repo DIR --dmarcpipe BIN [--quick]
"""
import argparse
import collections
import datetime
import glob
import os
import platform
import re
import shutil
import subprocess


def parse_lines(path):
    out = collections.defaultdict(list)
    with open(path) as f:
        for raw in f:
            raw = raw.rstrip("\n")
            if not raw.startswith("bench "):
                continue
            body, _, cmd = raw.partition("\tcmd=")
            parts = body.split()
            kv = {"_cmd": cmd}
            for p in parts[2:]:
                k, eq, v = p.partition("=")
                if eq:
                    kv[k] = v
            out[parts[1]].append(kv)
    return out


def sh(*cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=30).stdout.strip()
    except Exception:
        return "n/a"


def num(d, k, default=None):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return default


def machine(args):
    cpu = "n/a"
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    mem = "n/a"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = "%.1f GiB" % (kib / 1048576)
    except OSError:
        pass
    def pkg(name):
        v = sh("dpkg-query", "-W", "-f=${Version}", name)
        return v if v and "no packages" not in v else "n/a"
    pm = "n/a"
    venv = os.environ.get("PARSEDMARC_VENV") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dmarcpipe", "parsedmarc-venv")
    if os.path.exists(os.path.join(venv, "bin", "pip")):
        for line in sh(os.path.join(venv, "bin", "pip"), "show", "parsedmarc").splitlines():
            if line.startswith("Version:"):
                pm = line.split(":", 1)[1].strip()
    kafka = "n/a"
    pom = os.path.join(args.repo, "tests", "kafka", "pom.xml")
    if os.path.exists(pom):
        text = open(pom).read()
        m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", text) or \
            re.search(r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<$]+)<", text)
        kafka = m.group(1) if m else "n/a"
    return [
        ("date (UTC)", datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")),
        ("commit", sh("git", "-C", args.repo, "rev-parse", "--short", "HEAD")),
        ("dmarcpipe", sh(args.dmarcpipe, "--version").splitlines()[0] if os.path.exists(args.dmarcpipe) else "n/a"),
        ("CPU", "%s, %d cores online" % (cpu, os.cpu_count() or 0)),
        ("memory", mem),
        ("OS", "%s, kernel %s" % (sh("sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"), platform.release())),
        ("compiler", sh("cc", "--version").splitlines()[0]),
        ("expat / zlib / zstd / libarchive", " / ".join(pkg(p) for p in
                                                         ("libexpat1", "zlib1g", "libzstd1", "libarchive13"))),
        ("librdkafka / kcat / Kafka broker", "%s / %s / %s" % (pkg("librdkafka1"), pkg("kcat"), kafka)),
        ("parsedmarc (PyPI)", pm),
        ("load average before the write-up", " ".join(open("/proc/loadavg").read().split()[:3])),
    ]


def table(rows, head):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


REPO = None  # set in main(): commands are shown relative to the checkout


def cmd_list(entries):
    seen = []
    for e in entries:
        c = e["_cmd"]
        if REPO:
            c = c.replace(REPO + "/", "").replace(REPO, ".")
        if c and c not in seen:
            seen.append(c)
    return "\n".join("    " + c for c in seen)


def gnuplot(out_dir, name, script, data):
    if not shutil.which("gnuplot"):
        return None
    dat = os.path.join(out_dir, name + ".dat")
    with open(dat, "w") as f:
        f.write(data)
    png = name + ".png"
    full = ("set terminal pngcairo size 900,540 noenhanced font 'sans,11'\n"
            "set output '%s'\nset grid\nset key top left\n" % os.path.join(out_dir, png)) + \
        script.replace("DATA", dat)
    p = subprocess.run(["gnuplot"], input=full, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.unlink(dat)
    if p.returncode != 0:
        print("results.py: gnuplot failed for %s: %s" % (name, p.stderr[-500:]))
        return None
    return png


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    global REPO
    REPO = os.path.abspath(args.repo)
    L = parse_lines(args.lines)
    md = ["# dmarcpipe benchmark results", ""]
    if args.quick:
        md += ["**--quick run**: tiny inputs and one run each. It shows that the benchmarks work; "
               "its figures mean nothing.", ""]
    md += ["Written by `bench/run` (see `bench/README.md`). Every figure comes with the command that "
           "measured it; run that command to reproduce it. The machines are shared and noisy: figures are "
           "medians, and what carries meaning is each ratio to a baseline measured in the same run.", ""]
    md += ["## Machine", "", table(machine(args), ["", ""]), ""]

    summary = []

    # ---- floors
    md += ["## Floors", ""]
    # dp-floor's lines only: each names its codec
    fl = [e for e in L.get("floor", []) if e.get("codec")]
    if fl:
        rows = []
        for e in fl:
            codec = e.get("codec")
            rows.append((codec, "%.0f MiB" % (num(e, "bytes", 0) / 1048576),
                         e.get("inflate_mbps", "-"), e.get("expat_inflate_mbps", "-"),
                         e.get("expat_raw_mbps", "-"), e.get("memcpy_mbps", "-")))
        md += ["MB/s of decompressed XML (10^6 bytes), median of the runs; one core.", "",
               table(rows, ["file", "XML", "decompress only", "expat fed by decompress", "bare expat (in memory)",
                            "memcpy"]), "", "```", cmd_list(fl), "```", ""]
    else:
        md += ["(not measured in this run)", ""]

    # ---- parse vs floor
    md += ["## `dmarcpipe parse` against the floor", ""]
    pv = [e for e in L.get("parse_vs_floor", []) if "ratio_pct" in e]
    if pv:
        rows = [("%.0f MiB" % (num(e, "bytes", 0) / 1048576), e.get("floor_mbps"), e.get("dmarcpipe_mbps"),
                 "**%s%%**" % e.get("ratio_pct"), "%.1f MiB" % (num(e, "rss_kib", 0) / 1024), e.get("totals"))
                for e in pv]
        md += ["One core, the same gzipped report; the floor is expat fed by inflate (dp-floor).", "",
               table(rows, ["XML", "floor MB/s", "parse MB/s", "parse / floor", "peak RSS", "totals"]), "",
               "```", cmd_list(pv), "```", ""]
        summary.append(("parse / floor (ingest issue: parse near the floor)", "%s%%" % pv[-1]["ratio_pct"]))
    else:
        md += ["(not measured in this run)", ""]

    # ---- run scaling
    md += ["## `dmarcpipe run`: workers, the floor, distinct keys", ""]
    rs = L.get("run_scaling", [])
    # a second binary, the code before a change, measured in the same run
    rsb = L.get("run_scaling_baseline", [])
    rfb = L.get("run_vs_floor_baseline", [])
    bc = L.get("baseline_compare", [])
    plot_tp = None
    if rs:
        rows = [(e.get("input"), e.get("workers"), e.get("shards"), e.get("records"), e.get("wall_s"),
                 e.get("records_per_s"), e.get("mbps"), "**%sx**" % e.get("speedup"),
                 "%.0f MiB" % (num(e, "rss_kib", 0) / 1024)) for e in rs]
        md += [table(rows, ["input", "workers", "shards", "records", "wall s", "records/s", "MB/s",
                            "speedup vs 1", "peak RSS"]), ""]
        many2 = [e for e in rs if e.get("input") == "many" and e.get("workers") == "2"]
        if many2:
            summary.append(("run, 2 workers vs 1 on many reports (target >= 1.7x)", many2[0]["speedup"] + "x"))
        data = ""
        # With a baseline binary (run_scaling.sh --baseline), its curves are
        # drawn dashed beside the current binary's.
        series = [(rs, "")]
        if rsb:
            series.append((rsb, ", baseline"))
        plots = []
        for entries, suffix in series:
            for color, (inp, title) in enumerate((("many", "many reports"), ("big", "one big report")), 1):
                pts = sorted((int(e["workers"]), num(e, "records_per_s", 0)) for e in entries
                             if e.get("input") == inp)
                data += "".join("%d %f\n" % p for p in pts) + "\n\n"
                # each input keeps its colour; the baseline's line is dashed
                style = " lc %d%s" % (color, " dt 2" if suffix else "") if rsb else ""
                plots.append("%s index %d with linespoints lw 2%s title '%s%s'" %
                             ("'DATA'" if not plots else "''", len(plots), style, title, suffix))
        plot_tp = gnuplot(args.out, "throughput-vs-workers",
                          "set title 'dmarcpipe run: records/s against workers (shards = workers)'\n"
                          "set xlabel 'workers'\nset ylabel 'records/s'\nset yrange [0:*]\n"
                          "plot " + ", ".join(plots) + "\n", data)
    rf = L.get("run_vs_floor", [])
    if rf:
        e = rf[-1]
        md += ["Run against the floor, one worker and one shard, same big report, interleaved runs:", "",
               table([("floor (dp-floor, expat + inflate)", e.get("floor_s"), "100%"),
                      ("`dmarcpipe run --workers 1 --shards 1`", e.get("run_s"), "**%s%%**" % e.get("wall_ratio_pct")),
                      ("`dmarcpipe parse --summary`", e.get("parse_s"), "%s%%" % e.get("parse_ratio_pct"))],
                     ["measure", "wall s (median)", "of the floor's rate"]), ""]
        if e.get("fastest_ratio_pct"):
            md += ["The fastest run of each (the ones the host disturbed least): floor %s s, run %s s, "
                   "%s%% of the floor's rate. The target is read from the medians above." %
                   (e.get("fastest_floor_s"), e.get("fastest_run_s"), e.get("fastest_ratio_pct")), ""]
        summary.append(("run / floor, one worker (target >= 75%)", "%s%%" % e.get("wall_ratio_pct")))
        if e.get("fastest_ratio_pct"):
            summary.append(("run / floor, one worker, fastest run of each (host noise aside)",
                            "%s%%" % e.get("fastest_ratio_pct")))
    rk = L.get("run_keys", [])
    if rk:
        e = rk[-1]
        md += ["Distinct keys: peak RSS %.1f MiB with %s keys, %s bytes per key above the baseline "
               "(target: at most 2 GiB)." % (num(e, "peak_rss_kib", 0) / 1024, e.get("keys"), e.get("bytes_per_key")), ""]
        summary.append(("peak RSS with %s distinct keys (target <= 2 GiB)" % e.get("keys"),
                        "%.0f MiB" % (num(e, "peak_rss_kib", 0) / 1024)))
    if rsb or rfb or bc:
        md += ["### Against the baseline binary", "",
               "A second dmarcpipe binary, built from the code before a change (`run_scaling.sh --baseline`), "
               "measured in the same run: each of its runs beside the same run of the current binary, in the "
               "same loop, so that the host's noise hit both alike. Its totals were checked like the current "
               "binary's. change: current / baseline - 1; below 0, the current code is slower.", ""]
        if bc:
            e = bc[-1]
            rows = []
            for key, label in (("run_floor_pct", "run / floor, wall, one worker, big report"),
                               ("run_floor_cpu_pct", "run / floor, CPU"),
                               ("run_floor_fastest_pct", "run / floor, fastest run of each"),
                               ("speedup2", "speedup, 2 workers vs 1, many reports"),
                               ("records_per_s2", "records/s, 2 workers, many reports")):
                if key + "_current" in e:
                    unit = "%" if key.endswith("_pct") else "x" if key == "speedup2" else ""
                    rows.append((label, "**%s%s**" % (e[key + "_current"], unit),
                                 "%s%s" % (e.get(key + "_baseline"), unit), "%s%%" % e.get(key + "_change_pct")))
            md += ["Medians of %s run(s) of each binary:" % e.get("runs"), "",
                   table(rows, ["measure", "current", "baseline", "change"]), ""]
            if "run_floor_pct_current" in e:
                summary.append(("run / floor, one worker: current, baseline binary (same run)",
                                "%s%%, %s%%" % (e["run_floor_pct_current"], e.get("run_floor_pct_baseline"))))
            if "speedup2_current" in e:
                summary.append(("run, 2 workers vs 1 on many reports: current, baseline binary (same run)",
                                "%sx, %sx" % (e["speedup2_current"], e.get("speedup2_baseline"))))
        if rsb:
            rows = [(e.get("input"), e.get("workers"), e.get("shards"), e.get("records"), e.get("wall_s"),
                     e.get("records_per_s"), e.get("mbps"), "%sx" % e.get("speedup"),
                     "%.0f MiB" % (num(e, "rss_kib", 0) / 1024)) for e in rsb]
            md += ["The baseline binary over workers:", "",
                   table(rows, ["input", "workers", "shards", "records", "wall s", "records/s", "MB/s",
                                "speedup vs 1", "peak RSS"]), ""]
        if rfb:
            e = rfb[-1]
            md += ["The baseline binary against the same floor runs: %s s, %s%% of the floor's rate "
                   "(fastest run of each: %s%%)." % (e.get("run_s"), e.get("wall_ratio_pct"),
                                                    e.get("fastest_ratio_pct")), ""]
    if rs or rf or rk or rsb or rfb or bc:
        md += ["```", cmd_list(rs + rf + rk + rsb + rfb + bc), "```", ""]
        if plot_tp:
            md += ["![throughput against workers](%s)" % plot_tp, ""]
    else:
        md += ["(not measured in this run)", ""]

    # ---- RSS vs size
    md += ["## Peak RSS against report size", ""]
    rv = L.get("rss_vs_size", [])
    pmr = [e for e in L.get("parsedmarc", []) if e.get("xml_bytes")]
    if rv:
        rows = [(e.get("tool"), "%.0f MiB" % (num(e, "xml_bytes", 0) / 1048576), e.get("wall_s"),
                 "%.1f MiB" % (num(e, "rss_kib", 0) / 1024)) for e in rv + pmr]
        md += ["One gzipped report of each size; dmarcpipe streams it, so its memory does not grow with it.", "",
               table(rows, ["tool", "XML", "wall s", "peak RSS"]), "", "```", cmd_list(rv), "```", ""]
        data = ""
        tools = []
        for t in sorted(set(e["tool"] for e in rv + pmr)):
            pts = sorted((num(e, "xml_bytes", 0) / 1e6, num(e, "rss_kib", 0) / 1024) for e in rv + pmr
                         if e.get("tool") == t)
            data += "".join("%f %f\n" % p for p in pts) + "\n\n"
            tools.append(t)
        plots = ", ".join("'DATA' index %d with linespoints lw 2 title '%s'" % (i, t) if i == 0 else
                          "'' index %d with linespoints lw 2 title '%s'" % (i, t) for i, t in enumerate(tools))
        png = gnuplot(args.out, "rss-vs-report-size",
                      "set title 'peak RSS against report size'\nset logscale x\nset logscale y\n"
                      "set xlabel 'uncompressed XML, MB'\nset ylabel 'peak RSS, MiB'\nplot " + plots + "\n", data)
        if png:
            md += ["![RSS against report size](%s)" % png, ""]
        big = [e for e in rv if e.get("tool") == "dmarcpipe-parse"]
        if big:
            e = max(big, key=lambda x: num(x, "xml_bytes", 0))
            summary.append(("parse peak RSS on a %.0f MiB report" % (num(e, "xml_bytes", 0) / 1048576),
                            "%.1f MiB" % (num(e, "rss_kib", 0) / 1024)))
    else:
        md += ["(not measured in this run)", ""]

    # ---- parsedmarc
    md += ["## Against parsedmarc", ""]
    pm = [e for e in L.get("parsedmarc", []) if not e.get("xml_bytes")]
    cmp_md = sorted(glob.glob(os.path.join(args.out, "parsedmarc-compare", "*.md")))
    if pm or cmp_md:
        if pm:
            for c in sorted(set(e.get("corpus", "") for e in pm)):
                by = {e.get("tool"): num(e, "records_per_s", 0) for e in pm if e.get("corpus") == c}
                if by.get("parsedmarc") and by.get("dmarcpipe-parse"):
                    summary.append(("records/s, `dmarcpipe parse` / parsedmarc, %s corpus" % c,
                                    "%.0fx" % (by["dmarcpipe-parse"] / by["parsedmarc"])))
            keys = [k for k in pm[0] if k != "_cmd"]
            md += [table([[e.get(k, "") for k in keys] for e in pm], keys), "", "```", cmd_list(pm), "```", ""]
            data = ""
            corpora = []
            for c in sorted(set(e.get("corpus", "") for e in pm)):
                rows = [e for e in pm if e.get("corpus", "") == c]
                corpora.append(c)
                data += "".join('"%s" %f\n' % (e.get("tool"), num(e, "records_per_s", 0)) for e in rows) + "\n\n"
            plots = ", ".join(("'DATA' index %d using 2:xtic(1) title '%s'" if i == 0 else
                               "'' index %d using 2:xtic(1) title '%s'") % (i, c) for i, c in enumerate(corpora))
            png = gnuplot(args.out, "dmarcpipe-vs-parsedmarc",
                          "set title 'records/s, dmarcpipe against parsedmarc (same inputs)'\n"
                          "set style data histogram\nset style fill solid 0.7\nset logscale y\n"
                          "set ylabel 'records/s (log)'\nset xtics rotate by -20\nplot " + plots + "\n", data)
            if png:
                md += ["![dmarcpipe against parsedmarc](%s)" % png, ""]
        for f in cmp_md:
            md += ["### %s" % os.path.relpath(f, args.out), ""]
            with open(f) as fh:
                # its headings go under this section's
                md += [re.sub(r"(?m)^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", fh.read().strip()), ""]
            m = re.search(r"Totals check: \*\*(\w+)\*\*", open(f).read())
            if m:
                summary.append(("parsedmarc vs dmarcpipe, real corpus, files both accept: totals", m.group(1)))
    else:
        md += ["(not measured in this run)", ""]

    # ---- kafka
    md += ["## Kafka sink against kcat", ""]
    kk = L.get("kafka_vs_kcat", [])
    if kk:
        e = kk[-1]
        if num(e, "sink_inner_vs_kcat"):
            summary.append(("Kafka sink rollups/s, measured in the run, / kcat's (target >= 100%)",
                            "%.0f%%" % (100 * num(e, "sink_inner_vs_kcat"))))
        if num(e, "sink_inner_vs_kcattx"):
            summary.append(("Kafka sink rollups/s, measured in the run, / transactional kcat's",
                            "%.0f%%" % (100 * num(e, "sink_inner_vs_kcattx"))))
        keys = [k for k in kk[0] if k != "_cmd"]
        md += [table([[e.get(k, "") for k in keys] for e in kk], keys), "", "```", cmd_list(kk), "```", ""]
    else:
        md += ["(not measured in this run)", ""]

    # ---- report
    md += ["## `dmarcpipe report` against a bare JSON parser", ""]
    rp = L.get("report", [])
    if rp:
        e = rp[-1]
        mib = lambda k: "%.1f MiB" % (num(e, k, 0) / 1024)
        n = num(e, "lines", 0)
        rows = [("floor: `dp-json-floor ROLLUPS REPORTS` (read, `json_loadb`, `json_decref`)", e.get("floor_s"),
                 e.get("floor_lines_per_s"), "100%", mib("floor_rss_kib")),
                ("`dmarcpipe report --format json --from FIRST --to LAST DIR` (every line counted)", e.get("report_s"),
                 e.get("report_lines_per_s"), "**%.1f%%**" % (100 * num(e, "ratio", 0)), mib("report_rss_kib")),
                ("`dmarcpipe report --format json DIR` (default period: reads the files twice)", e.get("default_s"),
                 e.get("default_lines_per_s"), "%.1f%%" % (100 * num(e, "floor_s", 0) / num(e, "default_s", 1)),
                 mib("default_rss_kib"))]
        if num(e, "tenth_lines", 0) > 0:
            rows.append(("the report, every day, on a feed of %s lines (a tenth)" % e.get("tenth_lines"),
                         e.get("tenth_s"), "%.0f" % (num(e, "tenth_lines", 0) / num(e, "tenth_s", 1)), "",
                         mib("tenth_rss_kib")))
        md += ["%.0f lines (%s rollups, the rest the reports feed; %.2f GB) of %s domains x %s sources over %s days "
               "(dp-gen-rollups), %s distinct (domain, source) pairs. Wall time of the whole process, median of %s "
               "interleaved runs; peak RSS the largest. The floor parses every line with the jansson the report "
               "uses and does nothing else." % (n, e.get("rollup_lines"), num(e, "bytes", 0) / 1e9, e.get("domains"),
                                               e.get("sources"), e.get("days"), e.get("pairs"), e.get("runs")), "",
               table(rows, ["measure", "wall s", "lines/s", "of the floor's rate", "peak RSS"]), "",
               "Peak RSS at all the lines / at a tenth of them: %.2f (pairs: %s and %s). Memory is bounded by "
               "domains x days and domains x sources, not by lines. Totals (lines, messages, period) against "
               "the generator: %s." % (num(e, "rss_growth", 0), e.get("pairs"), e.get("tenth_pairs"), e.get("totals")),
               "", "```", cmd_list(rp), "```", ""]
        summary.append(("`dmarcpipe report` lines/s / the bare jansson floor's (%s lines)" % "{:,}".format(int(n)),
                        "%.1f%%" % (100 * num(e, "ratio", 0))))
        summary.append(("`dmarcpipe report` peak RSS, all lines / a tenth of them",
                        "%s / %s" % (mib("report_rss_kib"), mib("tenth_rss_kib"))))
    else:
        md += ["(not measured in this run)", ""]

    # ---- imap
    md += ["## `dmarcpipe run imap://` against curl", ""]
    im = L.get("imap", [])
    if im:
        rows = [(e.get("server"), e.get("messages"), e.get("curl_s"), e.get("curl_msgs_per_s"), e.get("run_s"),
                 e.get("run_msgs_per_s"), "**%.1f%%**" % (100 * num(e, "ratio", 0)), e.get("totals")) for e in im]
        md += ["Each message is a report of its own (20 records). The floor is one curl process fetching every "
               "message by UID over one logged-in connection, writing the bytes nowhere; dmarcpipe fetches each "
               "into a temporary file, parses and counts it, commits, then moves it (`processed=`, UID MOVE). "
               "Median of %s runs, each on a mailbox filled anew. GreenMail answers each command after about "
               "45 ms (curl sees it too): its row measures its latency; Dovecot's is the one to read."
               % im[-1].get("runs"), "",
               table(rows, ["server", "messages", "curl s", "curl msg/s", "run s", "run msg/s",
                            "run's rate / curl's", "totals"]), "", "```", cmd_list(im), "```", ""]
        for e in im:
            summary.append(("`dmarcpipe run imap://` msg/s / curl's bare fetch, %s (%s messages)"
                            % (e.get("server"), e.get("messages")), "%.1f%%" % (100 * num(e, "ratio", 0))))
    else:
        md += ["(not measured in this run)", ""]

    # ---- the Kafka inbox, scaled out
    md += ["## The Kafka inbox: 1, 2, 3 processes of one group", ""]
    ib = L.get("inbox_scaling", [])
    if ib:
        e0 = ib[0]
        rows = [("kcat -C, read_committed, to the end (the floor of reading the inbox)", "", e0.get("kcat_s"),
                 e0.get("kcat_reports_per_s"), "", "", "", ""),
                ("`dmarcpipe run FOLDER` over the same files, %s workers (no Kafka)" % e0.get("nproc"), "",
                 e0.get("folder_s"), e0.get("folder_reports_per_s"), "", "", "", "")]
        rows += [("inbox, %s process(es) x %s thread(s)" % (e.get("processes"), e.get("threads")), e.get("processes"),
                  e.get("wall_s"), e.get("reports_per_s"), e.get("xml_mbps"), "**%sx**" % e.get("vs_one"),
                  "%.0f%%" % (100 * num(e, "vs_folder", 0)), e.get("split")) for e in ib]
        md += ["%s gzipped reports of %s records in an inbox topic of %s partitions, on %s cores shared with the "
               "broker. Each row: a fresh consumer group, its processes started together, timed until the last "
               "exits; median of %s runs. On %s cores, more processes cannot multiply the speed: what is shown is "
               "that the partitions are divided and nothing is lost. Totals (the processes' summaries, the "
               "read_committed rollups and reports, kcat's messages) against the generator: %s."
               % (e0.get("reports"), e0.get("records"), e0.get("partitions"), e0.get("nproc"), e0.get("runs"),
                  e0.get("nproc"), ib[-1].get("totals")), "",
               table(rows, ["measure", "processes", "wall s", "reports/s", "XML MB/s", "vs 1 process",
                            "of the folder run's rate", "inputs per process"]), "", "```", cmd_list(ib), "```", ""]
        for e in ib:
            if e.get("processes") != "1":
                summary.append(("Kafka inbox, %s processes / 1 (%s cores)" % (e.get("processes"), e.get("nproc")),
                                "%sx" % e.get("vs_one")))
    else:
        md += ["(not measured in this run)", ""]

    # ---- enrichment
    md += ["## `dmarcpipe run --enrich` against enrichment off", ""]
    en = L.get("enrich_vs_off", [])
    if en:
        e0 = en[0]
        what = {"off": "off", "on": "`--enrich`, DNS answering after %s ms" % e0.get("delay_ms"),
                "dead": "`--enrich`, nothing listening at the resolver's port",
                "wait": "`--enrich --enrich-wait %s`, DNS after %s ms" % (en[-1].get("wait_s"), e0.get("delay_ms"))}
        rows = [(what.get(e.get("mode"), e.get("mode")), e.get("wall_s"), e.get("records_per_s"),
                 "**%s%%**" % e.get("vs_off_pct"), e.get("dns_queries"), e.get("dns_cpu_s"), e.get("rollups"), e.get("enriched"),
                 e.get("with_service"), e.get("enrich_log_lines"), e.get("totals")) for e in en]
        md += ["%s records with %s distinct source IPs in gzipped reports; the same runs, interleaved, median of %s. "
               "The PTR cache starts empty in every run. `enriched`: rollups of the first run that came out with "
               "a PTR; the others carry nulls, since no flush waits for a lookup."
               % (e0.get("records"), e0.get("ips"), e0.get("runs")), "",
               table(rows, ["mode", "wall s", "records/s", "records/s / off's", "DNS queries", "DNS server CPU s", "rollups",
                            "enriched", "with a service", "enrichment's log lines", "totals"]), "", "```", cmd_list(en), "```", ""]
        for e in en:
            if e.get("mode") in ("on", "dead"):
                summary.append(("`dmarcpipe run` records/s, %s / off" % what[e.get("mode")],
                                "%s%%" % e.get("vs_off_pct")))
    else:
        md += ["(not measured in this run)", ""]

    # ---- anything else
    known = {"floor", "parse_vs_floor", "run_scaling", "run_vs_floor", "run_keys", "rss_vs_size", "parsedmarc",
             "kafka_vs_kcat", "run_scaling_baseline", "run_vs_floor_baseline", "baseline_compare", "report", "imap",
             "inbox_scaling", "enrich_vs_off"}
    for name in sorted(set(L) - known):
        keys = [k for k in L[name][0] if k != "_cmd"]
        md += ["## %s" % name, "", table([[e.get(k, "") for k in keys] for e in L[name]], keys), "", "```",
               cmd_list(L[name]), "```", ""]

    head = ["## Summary", ""]
    head += [table(summary, ["measure", "this run"]) if summary else "(no figures)", ""]
    i = md.index("## Floors")
    md = md[:i] + head + md[i:]
    with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
