#!/usr/bin/env python3
"""test_equivalence — the output does not depend on --workers or --shards.

For windows 1d and 1h, `dmarcpipe run` over the corpus with workers in
{1, 2, 4} x shards in {1, 3, 8} must give, for every (N, M):

  * the same multiset of rollup lines (compared sorted, byte for byte);
  * the same reports feed (sorted lines): the same copy of each report
    counts, whatever the thread timing; the corpus holds copies of one
    identity with different content (the Persistent Objects and
    google.com 12345678901234567890 reports), so a racy dedup shows here;
  * the same summary counts (reports accepted / rejected / duplicate,
    records, messages, inputs rejected) and exit status;
  * the same quarantine: the same file names with the same bytes (a
    .reason file compared without its quarantined_at time).

And within each run the total messages over the rollups equals the sum of
`messages` in the reports feed, and the summary's, exactly.

usage: test_equivalence.py DMARCPIPE CORPUS_DIR
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402

WORKERS = (1, 2, 4)
SHARDS = (1, 3, 8)
SUMMARY_KEYS = ("inputs", "inputs_rejected", "accepted", "rejected", "duplicates", "records",
                "messages", "rollups")


def quarantine_digest(r):
    qdir = os.path.join(r.outdir, "quarantine")
    out = {}
    for name in r.quarantined:
        with open(os.path.join(qdir, name), "rb") as f:
            data = f.read()
        if name.endswith(".reason"):
            # the reason without its clock reading
            try:
                reason = json.loads(data)
                reason.pop("quarantined_at", None)
                data = json.dumps(reason, sort_keys=True).encode()
            except ValueError:
                pass
        out[name] = hashlib.sha256(data).hexdigest()[:16]
    return out


def run_all(t, dmarcpipe, corpus):
    with dptest.scratch("equivalence") as tmp:
        for window in ("1d", "1h"):
            base = None
            for n in WORKERS:
                for m in SHARDS:
                    tag = f"{window} w{n} s{m}"
                    r = dptest.run(dmarcpipe, os.path.join(tmp, f"{window}-w{n}-s{m}"), [corpus],
                                   "--workers", n, "--shards", m, "--window", window)
                    ok = t.check(f"{tag}: ran (exit 0 or 1, summary printed)",
                                 r.rc in (0, 1) and "messages" in r.summary, r.describe())
                    t.check(f"{tag}: no sanitizer report", r.sanitizer_report() is None,
                            r.sanitizer_report())
                    if not ok:
                        continue
                    t.eq(f"{tag}: rollup messages = reports feed messages",
                         r.messages, r.report_messages)
                    t.eq(f"{tag}: rollup messages = summary messages",
                         r.messages, r.summary["messages"])
                    t.eq(f"{tag}: rollup lines = summary rollups",
                         len(r.rollup_lines), r.summary["rollups"])
                    t.check(f"{tag}: rollups are non-empty", len(r.rollup_lines) > 100,
                            f"{len(r.rollup_lines)} lines")
                    cur = {
                        "rc": r.rc,
                        "rollups": sorted(r.rollup_lines),
                        "reports": sorted(r.report_lines),
                        "summary": {k: r.summary.get(k) for k in SUMMARY_KEYS},
                        "quarantine": quarantine_digest(r),
                    }
                    if base is None:
                        base = (tag, cur)
                        continue
                    btag, b = base
                    t.check(f"{tag}: rollup lines identical to {btag}",
                            cur["rollups"] == b["rollups"],
                            dptest.diff_multisets(b["rollups"], cur["rollups"]))
                    t.check(f"{tag}: reports feed identical to {btag}",
                            cur["reports"] == b["reports"],
                            dptest.diff_multisets(b["reports"], cur["reports"]))
                    t.eq(f"{tag}: summary counts as {btag}", cur["summary"], b["summary"])
                    t.eq(f"{tag}: exit status as {btag}", cur["rc"], b["rc"])
                    qa, qb = b["quarantine"], cur["quarantine"]
                    t.check(f"{tag}: quarantine identical to {btag}", qa == qb,
                            dptest.diff_multisets(sorted(qa.items()), sorted(qb.items())))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, corpus = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    t = dptest.Harness("test_equivalence")
    t.run(run_all, t, dmarcpipe, corpus)
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
