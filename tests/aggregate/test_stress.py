#!/usr/bin/env python3
"""test_stress — many threads on tiny rings give the same output as one.

`--workers 4 --shards 3 --ring-slots 2 --batch-items 1` makes every record
its own batch and every ring nearly always full or empty, so workers and
shards hand batches back and forth (and wait on each other) as often as
possible.  Over the corpus, over 300 generated reports (bench/dp-gen-report
--reports 300 --records 20), and over 9,050 tiny reports (two zips of
4,500, half of the second repeating the first's identities with other
counts: more reports than may wait undecided), the rollup lines, the
reports feed and the summary counts must equal those of `--workers 1
--shards 1`, in each of --repeat runs (windows 1d; the generated set also
1h, where one record spans many windows).

It carries the `tsan` label: in a ThreadSanitizer build, a data race stops
the run (TSAN_OPTIONS=halt_on_error=1, set by CTest) and fails the test,
as does any sanitizer report on stderr.

usage: test_stress.py DMARCPIPE DP_GEN_REPORT CORPUS_DIR [--repeat N]
"""
import io
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402

STRESS = ("--workers", 4, "--shards", 3, "--ring-slots", 2, "--batch-items", 1)
SINGLE = ("--workers", 1, "--shards", 1)
KEYS = ("inputs", "inputs_rejected", "accepted", "rejected", "duplicates", "records", "messages",
        "rollups")


# Two zips of 4,500 one-record reports each, the second repeating half of
# the first's identities with other counts, then 50 small files: more
# reports than the engine lets wait undecided (4,096), and dedup decisions
# while workers wait for the earliest input.
MANY_N = 4500
MANY_WANT = (MANY_N + MANY_N // 2 + 50, MANY_N // 2, MANY_N * 1 + (MANY_N // 2) * 5 + 50 * 2)


def many_reports(d):
    day = 1700006400
    for name, first, count in (("a-first.zip", 0, 1), ("b-second.zip", MANY_N // 2, 5)):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for i in range(first, first + MANY_N):
                z.writestr(f"r{i:05d}.xml", dptest.report_xml(
                    "many.example", f"many-{i}", "example.com", day, day + 86400,
                    [(f"10.{i % 7}.{i % 250}.{i % 13 + 1}", count)]))
        dptest.write(os.path.join(d, name), buf.getvalue())
    for i in range(50):
        dptest.write(os.path.join(d, "c-small", f"s{i:02d}.xml"),
                     dptest.report_xml("small.example", f"small-{i}", "example.com", day,
                                       day + 86400, [("192.0.2.1", 2)]))
    return d


def compare(t, tag, r, base):
    ok = t.check(f"{tag}: ran (exit {base.rc} as the single-thread run)", r.rc == base.rc,
                 r.describe())
    san = r.sanitizer_report()
    t.check(f"{tag}: no sanitizer report", san is None, san)
    if not ok:
        return
    t.check(f"{tag}: rollup lines equal ({len(base.rollup_lines)})",
            sorted(r.rollup_lines) == sorted(base.rollup_lines),
            dptest.diff_multisets(sorted(base.rollup_lines), sorted(r.rollup_lines)))
    t.check(f"{tag}: reports feed equal ({len(base.report_lines)})",
            sorted(r.report_lines) == sorted(base.report_lines),
            dptest.diff_multisets(sorted(base.report_lines), sorted(r.report_lines)))
    t.eq(f"{tag}: summary counts equal", {k: r.summary.get(k) for k in KEYS},
         {k: base.summary.get(k) for k in KEYS})
    t.eq(f"{tag}: rollup messages = reports feed messages", r.messages, r.report_messages)


def run_all(t, dmarcpipe, gen, corpus, repeat):
    with dptest.scratch("stress") as tmp:
        gen_dir = os.path.join(tmp, "gen")
        dptest.gen_reports(gen, gen_dir, 300, 20, seed=3, extra=("--domains", "7"))
        n = len(os.listdir(gen_dir))
        t.eq("fixture: generated reports", n, 300)
        many_dir = many_reports(os.path.join(tmp, "many"))
        cases = (("corpus", [corpus], "1d"), ("generated", [gen_dir], "1d"),
                 ("generated", [gen_dir], "1h"), ("many", [many_dir], "1d"))
        for name, sources, window in cases:
            tag = f"{name} {window}"
            base = dptest.run(dmarcpipe, os.path.join(tmp, f"{name}-{window}-single"), sources,
                              *SINGLE, "--window", window)
            t.check(f"{tag}: single-thread run", base.rc in (0, 1) and base.rollups,
                    base.describe())
            t.check(f"{tag}: single-thread run, no sanitizer report",
                    base.sanitizer_report() is None, base.sanitizer_report())
            if name == "generated":
                t.eq(f"{tag}: all 300 reports counted", base.summary.get("accepted"), 300)
            if name == "many":
                t.eq(f"{tag}: accepted / duplicates / messages",
                     (base.summary.get("accepted"), base.summary.get("duplicates"), base.messages),
                     MANY_WANT)
            for i in range(repeat):
                r = dptest.run(dmarcpipe, os.path.join(tmp, f"{name}-{window}-stress-{i}"),
                               sources, *STRESS, "--window", window)
                compare(t, f"{tag} stress #{i + 1}", r, base)


def main(argv):
    args = list(argv[1:])
    repeat = 2
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, gen, corpus = (os.path.abspath(a) for a in args)
    t = dptest.Harness("test_stress")
    t.run(run_all, t, dmarcpipe, gen, corpus, repeat)
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
