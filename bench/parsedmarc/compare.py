#!/usr/bin/env python3
"""Per-file verdicts and message totals: dmarcpipe against parsedmarc.

    compare.py --dmarcpipe BIN --venv VENV [--workdir D] [--label NAME]
               [--no-manifest] DIR_OR_FILE...

Runs with the system python3 (stdlib only). parsedmarc runs in ONE process
for all inputs, with the venv's python and pd_helper.py (offline, sockets
refused); dmarcpipe runs as `dmarcpipe parse --summary FILE...`.

Inputs: files are taken as given. A directory is read recursively in name
order, hidden files and folders skipped (as dmarcpipe does), except that a
directory holding a MANIFEST.tsv with a `path` column (tests/data/corpus) is
taken as the files that manifest lists; --no-manifest turns that off.

A tool "accepts" a file when it counts at least one aggregate report in it.
The messages of a file are the sum of <count> over every accepted report in
it (an e-mail or mbox may hold several). The categories:

  both_equal       both accept, equal totals
  both_differ      both accept, different totals (must be none, unless the
                   cause is verified to lie in parsedmarc; see explain())
  only_dmarcpipe   dmarcpipe accepts, parsedmarc does not (parsedmarc's reason)
  only_parsedmarc  parsedmarc accepts, dmarcpipe does not (dmarcpipe's reason)
  both_reject      neither accepts (both reasons)

Writes WORKDIR/compare.json and WORKDIR/compare.md, prints the summary and
every file that is not both_equal. Exit status: 0 when every both_differ
file is explained (with --strict: when there is none), 1 when not or when a
tool crashed, 2 on a usage error.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "pd_helper.py")
CATEGORIES = ["both_equal", "both_differ", "only_dmarcpipe", "only_parsedmarc", "both_reject"]
# both_differ rows get "explained" when explain() verifies a cause that lies
# in parsedmarc; the check fails on unexplained ones (on all with --strict).
ARGS_PER_CALL = 4000  # dmarcpipe is called once unless the list is huge


def die(msg, code=2):
    print(f"compare.py: {msg}", file=sys.stderr)
    sys.exit(code)


# ----------------------------------------------------------------- inputs
def manifest_paths(d):
    m = os.path.join(d, "MANIFEST.tsv")
    if not os.path.isfile(m):
        return None
    with open(m, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if "path" not in header:
            return None
        col = header.index("path")
        out = []
        for line in f:
            cells = line.rstrip("\n").split("\t")
            if len(cells) > col and cells[col]:
                out.append(os.path.join(d, cells[col]))
    return sorted(out)


def walk(d):
    out = []
    for root, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        out += [os.path.join(root, x) for x in sorted(files) if not x.startswith(".")]
    return out


def expand(args, use_manifest):
    files = []
    for a in args:
        if os.path.isdir(a):
            listed = manifest_paths(a) if use_manifest else None
            files += listed if listed is not None else walk(a)
        elif os.path.exists(a):
            files.append(a)
        else:
            die(f"{a}: no such file or directory")
    seen, uniq = set(), []
    for f in files:
        if f not in seen:
            seen.add(f)
            uniq.append(f)
    return uniq


# -------------------------------------------------------------- dmarcpipe
def run_dmarcpipe(binary, files, workdir):
    """{path: {...}} from `dmarcpipe parse --summary`, plus crash notes."""
    out, crashes = {}, []
    err_lines = []
    for i in range(0, len(files), ARGS_PER_CALL):
        chunk = files[i : i + ARGS_PER_CALL]
        p = subprocess.run(
            [binary, "parse", "--summary", "--", *chunk],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if p.returncode not in (0, 1):
            crashes.append(f"dmarcpipe parse --summary exited {p.returncode} (chunk {i // ARGS_PER_CALL})")
        for line in p.stdout.decode("utf-8", "replace").splitlines():
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            out[d["input"]] = d
        err_lines += p.stderr.decode("utf-8", "replace").splitlines()
    with open(os.path.join(workdir, "dmarcpipe.stderr"), "w", encoding="utf-8") as f:
        f.write("\n".join(err_lines) + "\n")

    # stderr: "dmarcpipe: INPUT[!part...]: stage: reason". Names may hold
    # '!' and ': ', so attribute each line to the longest input it starts with.
    by_len = sorted(files, key=len, reverse=True)
    reasons = {}
    for line in err_lines:
        if not line.startswith("dmarcpipe: "):
            continue
        rest = line[len("dmarcpipe: ") :]
        for f in by_len:
            if rest.startswith(f) and rest[len(f) : len(f) + 1] in (":", "!"):
                reasons.setdefault(f, []).append(rest[len(f) :].lstrip(":").strip())
                break

    res = {}
    for f in files:
        d = out.get(f)
        if d is None:
            res[f] = {"verdict": "missing", "reports": 0, "records": 0, "messages": 0,
                      "rejected": 0, "reason": "no summary line from dmarcpipe"}
            crashes.append(f"dmarcpipe printed no summary for {f}")
            continue
        r = reasons.get(f, [])
        reason = " | ".join(r) if r else None
        if d["reports"] > 0:
            verdict = "accept" if d["rejected"] == 0 else "partial"
        else:
            verdict = "not_aggregate" if reason and "not an aggregate report" in reason else "reject"
            if reason is None:
                reason = "no report found (no message on stderr)"
        res[f] = {"verdict": verdict, "reports": d["reports"], "records": d["records"],
                  "messages": d["messages"], "rejected": d["rejected"], "reason": reason}
    return res, crashes


# ------------------------------------------------------------- parsedmarc
def run_parsedmarc(venv, files, workdir, timeout, max_mem):
    py = os.path.join(venv, "bin", "python")
    if not os.access(py, os.X_OK):
        die(f"{py}: not found; run bench/parsedmarc/setup.sh first")
    lst = os.path.join(workdir, "parsedmarc.files")
    with open(lst, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("".join(x + "\n" for x in files))
    ndjson = os.path.join(workdir, "parsedmarc.ndjson")
    p = subprocess.run(
        [py, HELPER, "--list", lst, "--out", ndjson, "--timeout", str(timeout), "--max-mem", max_mem],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    crashes = []
    if p.returncode != 0:
        crashes.append(f"parsedmarc helper exited {p.returncode}: "
                       + p.stderr.decode("utf-8", "replace").strip()[-2000:])
    res, summary = {}, {}
    if os.path.exists(ndjson):
        with open(ndjson, encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                if "summary" in d:
                    summary = d["summary"]
                else:
                    res[d["path"]] = d
    for f in files:
        if f not in res:
            res[f] = {"verdict": "missing", "reports": 0, "records": 0, "messages": 0,
                      "reason": "no result from the parsedmarc helper", "warnings": []}
            if not crashes:
                crashes.append(f"parsedmarc helper gave no result for {f}")
    return res, summary, crashes


# ---------------------------------------------------- explaining a difference
def parts_of(binary, path):
    """{part: messages} per report of one file, from `dmarcpipe parse FILE`."""
    p = subprocess.run([binary, "parse", "--", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    parts = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            parts[r["part"]] = parts.get(r["part"], 0) + int(r["count"])
    return parts


def first_zip_member(path):
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        return names[0] if names else None
    except Exception:
        return None


def explain(binary, f, d, p):
    """A verified cause for both accepting with different totals, or None.

    Only causes that can be checked from the outputs count as explained:
      * parsedmarc logged "Could not parse record" and dropped records but
        kept the report, and its records plus the dropped ones make
        dmarcpipe's records;
      * the file holds several reports and parsedmarc's total is exactly
        the total of one of them (a zip: parsedmarc reads only the member
        namelist()[0]).
    """
    dropped = p.get("dropped_records") or 0
    if dropped and p["messages"] < d["messages"]:
        if not p.get("normalized") and p["records"] + dropped == d["records"]:
            return (f"parsedmarc dropped {dropped} of {d['records']} records it could not parse and kept the "
                    f"report (its warning: {sorted(set(w for w in p['warnings'] if w.startswith('Could not parse record')))[0]!r}); "
                    f"its {p['records']} records + {dropped} dropped = dmarcpipe's {d['records']}")
    parts = parts_of(binary, f)
    if len(parts) > 1 and sum(parts.values()) == d["messages"]:
        hits = [k for k, v in parts.items() if v == p["messages"]]
        if hits:
            member = first_zip_member(f)
            why = ""
            if member is not None and f"{f}!{member}" in hits:
                why = (f"; it is the zip's first member, {member!r}: parsedmarc's extract_report() "
                       f"reads only namelist()[0]")
            return (f"the file holds {len(parts)} reports (dmarcpipe: {', '.join(str(v) for v in parts.values())} messages); "
                    f"parsedmarc counted only one of them, {hits[0][len(f) + 1:]!r}{why}")
    return None


# ----------------------------------------------------------------- report
def accepts(v):
    return v["verdict"] in ("accept", "partial")


def md_cell(s):
    s = "" if s is None else str(s)
    return s.replace("|", "\\|").replace("\n", " ")


def short(s, n=160):
    s = "" if s is None else " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def main():
    ap = argparse.ArgumentParser(description="dmarcpipe vs parsedmarc: per-file verdicts and totals")
    ap.add_argument("--dmarcpipe", required=True, help="the dmarcpipe binary")
    ap.add_argument("--venv", required=True, help="venv with parsedmarc (bench/parsedmarc/setup.sh)")
    ap.add_argument("--workdir", help="where results go (default: a new temporary folder)")
    ap.add_argument("--label", default=None, help="corpus name for the reports")
    ap.add_argument("--no-manifest", action="store_true", help="read every file of a DIR, even with a MANIFEST.tsv")
    ap.add_argument("--timeout", type=int, default=300, help="parsedmarc seconds per file (default 300)")
    ap.add_argument("--max-mem", default="8G", help="parsedmarc address-space cap (default 8G)")
    ap.add_argument("--strict", action="store_true",
                    help="fail on every both_differ file, even one with a verified parsedmarc-side cause")
    ap.add_argument("-q", "--quiet", action="store_true", help="print the summary only")
    ap.add_argument("inputs", nargs="+", metavar="DIR_OR_FILE")
    a = ap.parse_args()

    if not os.access(a.dmarcpipe, os.X_OK):
        die(f"{a.dmarcpipe}: not an executable")
    files = expand(a.inputs, not a.no_manifest)
    if not files:
        die("no input files")
    workdir = a.workdir or tempfile.mkdtemp(prefix="dp-vs-parsedmarc.")
    os.makedirs(workdir, exist_ok=True)
    label = a.label or ",".join(a.inputs)

    dp, dp_crash = run_dmarcpipe(a.dmarcpipe, files, workdir)
    pd, pd_summary, pd_crash = run_parsedmarc(a.venv, files, workdir, a.timeout, a.max_mem)

    rows = {c: [] for c in CATEGORIES}
    for f in files:
        d, p = dp[f], pd[f]
        if accepts(d) and accepts(p):
            cat = "both_equal" if d["messages"] == p["messages"] else "both_differ"
        elif accepts(d):
            cat = "only_dmarcpipe"
        elif accepts(p):
            cat = "only_parsedmarc"
        else:
            cat = "both_reject"
        rows[cat].append({
            "file": f,
            "dmarcpipe": {k: d.get(k) for k in ("verdict", "reports", "records", "messages", "rejected", "reason")},
            "parsedmarc": {k: p.get(k) for k in ("verdict", "route", "reports", "records", "messages",
                                                  "reason", "warnings", "dropped_records", "cli_fatal",
                                                  "other_reports", "net_attempts")},
        })
        if cat == "both_differ":
            rows[cat][-1]["explained"] = explain(a.dmarcpipe, f, d, p)

    crashes = dp_crash + pd_crash
    net = pd_summary.get("net_attempts")
    counts = {c: len(rows[c]) for c in CATEGORIES}
    tot = {
        "dmarcpipe_messages_all_accepted": sum(dp[f]["messages"] for f in files if accepts(dp[f])),
        "parsedmarc_messages_all_accepted": sum(pd[f]["messages"] for f in files if accepts(pd[f])),
        "messages_both_accept": sum(r["dmarcpipe"]["messages"] for r in rows["both_equal"]),
        "dmarcpipe_records_accepted": sum(dp[f]["records"] for f in files if accepts(dp[f])),
        "dmarcpipe_reports_accepted": sum(dp[f]["reports"] for f in files if accepts(dp[f])),
        "parsedmarc_reports_accepted": sum(pd[f].get("reports", 0) for f in files if accepts(pd[f])),
    }
    unexplained = [r for r in rows["both_differ"] if not r.get("explained")]
    ok = not crashes and (counts["both_differ"] == 0 if a.strict else not unexplained)
    cli_fatal = [f for f in files if pd[f].get("cli_fatal")]
    result = {
        "label": label,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dmarcpipe": os.path.abspath(a.dmarcpipe),
        "parsedmarc": pd_summary,
        "files": len(files),
        "counts": counts,
        "both_differ_unexplained": len(unexplained),
        "strict": a.strict,
        "totals": tot,
        "crashes": crashes,
        "parsedmarc_cli_fatal": cli_fatal,
        "ok": ok,
        "rows": rows,
    }
    jpath = os.path.join(workdir, "compare.json")
    with open(jpath, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)

    # markdown
    ver = pd_summary.get("parsedmarc_version", "?")
    md = [f"# dmarcpipe vs parsedmarc {ver}: {md_cell(label)}", "",
          f"{len(files)} files. parsedmarc offline, {net if net is not None else '?'} network attempts. "
          f"Totals check: **{'ok' if ok else 'FAILED'}**.", "",
          "| category | files |", "|---|---:|"]
    md += [f"| {c} | {counts[c]} |" for c in CATEGORIES]
    md += [f"| both_differ, not explained | {len(unexplained)} |"]
    md += ["", f"Messages in files both accept: {tot['messages_both_accept']}. "
           f"All accepted: dmarcpipe {tot['dmarcpipe_messages_all_accepted']}, "
           f"parsedmarc {tot['parsedmarc_messages_all_accepted']}.", ""]
    if cli_fatal:
        md += ["## Files that abort a whole parsedmarc CLI run", "",
               "The CLI reads these as mbox files, and an exception out of get_dmarc_reports_from_mbox() "
               "is not caught: the run stops with a traceback before it writes any output.", ""]
        md += [f"- {md_cell(os.path.relpath(f))}: {md_cell(pd[f].get('reason'))}" for f in cli_fatal] + [""]
    if crashes:
        md += ["## Crashes", ""] + [f"- {md_cell(c)}" for c in crashes] + [""]
    heads = {
        "both_differ": "Both accept, different totals",
        "only_dmarcpipe": "Only dmarcpipe accepts",
        "only_parsedmarc": "Only parsedmarc accepts",
        "both_reject": "Both reject",
        "both_equal": "Both accept, equal totals",
    }
    for c in ["both_differ", "only_dmarcpipe", "only_parsedmarc", "both_reject", "both_equal"]:
        if not rows[c]:
            continue
        md += [f"## {heads[c]} ({len(rows[c])})", "",
               "| file | dmarcpipe | messages | parsedmarc | messages |", "|---|---|---:|---|---:|"]
        for r in rows[c]:
            d, p = r["dmarcpipe"], r["parsedmarc"]
            dtxt = d["verdict"] + (f": {d['reason']}" if d["reason"] else "")
            ptxt = p["verdict"] + (f": {p['reason']}" if p.get("reason") else "")
            if p.get("warnings") and c != "both_equal":
                ptxt += " (warnings: " + "; ".join(sorted(set(p["warnings"])))[:300] + ")"
            md.append(f"| {md_cell(os.path.relpath(r['file']))} | {md_cell(short(dtxt, 300))} | {d['messages']} "
                      f"| {md_cell(short(ptxt, 400))} | {p['messages']} |")
            if c == "both_differ":
                md.append(f"| ↳ explained | {md_cell(r.get('explained') or 'NOT EXPLAINED')} | | | |")
        md.append("")
    mpath = os.path.join(workdir, "compare.md")
    with open(mpath, "w", encoding="utf-8") as f:
        f.write("\n".join(md))

    # terminal
    print(f"compare {label}: {len(files)} files, parsedmarc {ver} (network attempts: {net})")
    for c in CATEGORIES:
        print(f"  {c:<16} {counts[c]:>5}" + (f"   ({len(unexplained)} not explained)" if c == "both_differ" else ""))
    print(f"  messages both accept: {tot['messages_both_accept']}")
    if not a.quiet:
        for c in ["both_differ", "only_dmarcpipe", "only_parsedmarc", "both_reject"]:
            for r in rows[c]:
                d, p = r["dmarcpipe"], r["parsedmarc"]
                print(f"  [{c}] {os.path.relpath(r['file'])}")
                print(f"      dmarcpipe  {d['verdict']:<13} messages={d['messages']:<10} {short(d['reason'])}")
                print(f"      parsedmarc {p['verdict']:<13} messages={p['messages']:<10} {short(p.get('reason'))}")
                if c == "both_differ":
                    print(f"      explained: {r.get('explained') or 'NOT EXPLAINED'}")
    for f in cli_fatal:
        print(f"  parsedmarc CLI would abort the whole run on {os.path.relpath(f)}: {short(pd[f].get('reason'), 200)}")
    for c in crashes:
        print(f"  CRASH: {short(c, 500)}")
    print(f"  totals check: {'ok' if ok else 'FAILED'}; wrote {jpath} and {mpath}")
    print(f"bench parsedmarc_compare corpus={label.replace(' ', '_')} files={len(files)} "
          + " ".join(f"{c}={counts[c]}" for c in CATEGORIES)
          + f" both_differ_unexplained={len(unexplained)} totals={'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
