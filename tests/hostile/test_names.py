#!/usr/bin/env python3
"""test_names -- what a sender or an operator names, and what a copy of a
counted report holds, cannot mislead the output or the log.

  * a copy of a counted report that is not valid (its identity is in the
    state) is rejected and quarantined, not passed as a duplicate;
  * an input whose name is not UTF-8 is named losslessly in the reports
    feed, in `parse`'s records and in its quarantine reason ("hex:" and its
    bytes), so the file can be found again;
  * names with a newline and an escape byte: every log line stays one line,
    with no control byte in it (\\xNN instead);
  * --sink file:/no/such/dir/x is an error (exit 2); no folder is made.

Usage: test_names.py DMARCPIPE
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402

D0 = 1700006400
DAY = 86400


def good(rid, count=5):
    return dptest.report_xml("names.example", rid, "example.com", D0, D0 + DAY - 1, [("192.0.2.9", count)])


def invalid_copy_of_a_counted_report(t, dp):
    with dptest.scratch("invalid-copy") as d:
        state = os.path.join(d, "state")
        first = os.path.join(d, "first")
        dptest.write(os.path.join(first, "r.xml"), good("same-id"))
        r = dptest.run(dp, os.path.join(d, "o1"), [first], state=state)
        t.eq("counted: exit 0", r.rc, 0)
        second = os.path.join(d, "second")
        # the same identity (org, id, domain, begin), then a record that is not valid
        bad = good("same-id").replace("<count>5</count>", "<count>five</count>")
        dptest.write(os.path.join(second, "copy.xml"), bad)
        r = dptest.run(dp, os.path.join(d, "o2"), [second], state=state)
        t.eq("invalid copy: rejected (exit 1)", r.rc, 1)
        t.eq("invalid copy: not a duplicate", r.summary.get("duplicates"), 0)
        t.eq("invalid copy: one report rejected", r.summary.get("rejected"), 1)
        t.check("invalid copy: in the quarantine", "copy.xml" in r.quarantined, r.quarantined)
        # a valid copy is still a duplicate
        dptest.write(os.path.join(second, "copy.xml"), good("same-id"))
        r = dptest.run(dp, os.path.join(d, "o3"), [second], state=state)
        t.eq("valid copy: a duplicate", (r.rc, r.summary.get("duplicates")), (0, 1))


def names_that_are_not_utf8(t, dp):
    with dptest.scratch("bytes") as d:
        src = os.path.join(d, "in").encode()
        os.makedirs(src)
        name = os.path.join(src, b"caf\xe9-r\xff.xml")
        with open(name, "wb") as f:
            f.write(good("bytes-1").encode())
        badname = os.path.join(src, b"z\xfe-bad.xml")
        with open(badname, "wb") as f:
            f.write(b"<feedback>")
        r = dptest.run(dp, os.path.join(d, "out"), [src.decode()])
        inputs = sorted(x["input"] for x in r.reports)
        t.eq("reports feed: one report", len(inputs), 1)
        t.check("reports feed: the name in hex, exactly", inputs and inputs[0] == "hex:" + name.hex(), inputs)
        p = subprocess.run([dp, "parse", src.decode()], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=dptest.PROC_TIMEOUT)
        recs = [json.loads(l) for l in p.stdout.decode().splitlines()]
        t.check("parse: the name in hex, exactly", recs and recs[0]["input"] == "hex:" + name.hex(), recs[:1])
        qdir = os.path.join(d, "out", "quarantine").encode()
        reasons = [n for n in os.listdir(qdir) if n.endswith(b".reason")]
        t.eq("quarantine: one reason", len(reasons), 1)
        reason = json.load(open(os.path.join(qdir, reasons[0])))
        t.eq("quarantine: the input named in hex, exactly", reason["input"], "hex:" + badname.hex())


def names_with_control_bytes(t, dp):
    with dptest.scratch("control") as d:
        src = os.path.join(d, "in")
        os.makedirs(src)
        nasty = "x\n\x1b[31mred\x07.xml"
        dptest.write(os.path.join(src, nasty), "<feedback>")
        dptest.write(os.path.join(src, "ok.xml"), good("ctl-1"))
        r = dptest.run(dp, os.path.join(d, "out"), [src])
        lines = r.stderr.split("\n")
        t.check("log: no control byte in any line", not any(c in r.stderr for c in "\x1b\x07"), repr(r.stderr[-800:]))
        t.check("log: the name escaped, on one line",
                any("x\\x0a\\x1b[31mred\\x07.xml" in l and "quarantined as" in l for l in lines), repr(r.stderr[-800:]))
        t.check("log: the rejection named on one line",
                any("x\\x0a\\x1b[31mred\\x07.xml" in l and "xml:" in l for l in lines), repr(r.stderr[-800:]))
        t.eq("the good report counted", r.messages, 5)


def sink_folder_not_made(t, dp):
    with dptest.scratch("sink-dir") as d:
        src = os.path.join(d, "in")
        dptest.write(os.path.join(src, "r.xml"), good("dir-1"))
        missing = os.path.join(d, "no", "such", "dir")
        p = subprocess.run([dp, "run", "--sink", "file:" + os.path.join(missing, "x.ndjson"), "--quarantine",
                            os.path.join(d, "q"), src], cwd=d, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=dptest.PROC_TIMEOUT)
        t.eq("missing sink folder: exit 2", p.returncode, 2)
        t.check("missing sink folder: the reason", b"No such file or directory" in p.stderr, p.stderr)
        t.check("missing sink folder: not made", not os.path.exists(os.path.join(d, "no")))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dp = os.path.abspath(sys.argv[1])
    t = dptest.Harness("hostile_names")
    t.run(invalid_copy_of_a_counted_report, t, dp)
    t.run(names_that_are_not_utf8, t, dp)
    t.run(names_with_control_bytes, t, dp)
    t.run(sink_folder_not_made, t, dp)
    t.finish()


if __name__ == "__main__":
    main()
