#!/usr/bin/env python3
"""test_duplicates -- the same report mailed twice, or delivered to two
mail drops, counts once.

Three reports A, B and C, as report files: their batch run is the truth.
Then the mail, as receivers and mail systems really duplicate it:
  * A is mailed twice to the same Maildir (a receiver that resends);
  * B is in the Maildir and in an mbox (delivered to two mail drops), and
    once more gzipped in a message of its own in the mbox (same report,
    other bytes);
  * C is only in the mbox.
One run over `maildir:` and `mbox:` together must give the truth's totals
exactly, with 3 reports accepted and 3 duplicates; a second run over the
same mail drops with new copies of A and C delivered must count nothing
more (4 duplicates more, reports the state already knows).

usage: test_duplicates.py DMARCPIPE
"""
import gzip
import os
import sys

import mailgen
from mailgen import dptest


def report(name, report_id, domain, records):
    xml = dptest.report_xml("receiver.example", report_id, domain, 1704067200, 1704153599, records)
    return name, xml.encode()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dp = os.path.abspath(sys.argv[1])
    t = dptest.Harness("mail_duplicates")
    tmp = dptest.scratch("mail-dup")
    work = tmp.name
    a = report("a.xml", "r-a", "a.example", [("192.0.2.1", 7), ("192.0.2.2", 3)])
    b = report("b.xml", "r-b", "b.example", [("198.51.100.9", 11)])
    c = report("c.xml", "r-c", "c.example", [("203.0.113.5", 5), ("2001:db8::1", 2)])
    truth = mailgen.truth(dp, [a, b, c], work)
    t.eq("the truth: 3 reports accepted", truth.summary.get("accepted"), 3)

    maildir = mailgen.maildir_make(os.path.join(work, "Maildir"))
    mailgen.maildir_put(maildir, [mailgen.as_message(*a), mailgen.as_message(*a), mailgen.as_message(*b)])
    b_gz = ("b.xml.gz", gzip.compress(b[1]))
    mbox = dptest.write(os.path.join(work, "dmarc.mbox"),
                        mailgen.mbox_bytes([mailgen.as_message(*b), mailgen.as_message(*c),
                                            mailgen.as_message(*b_gz)]))
    state = os.path.join(work, "state")
    r = dptest.run(dp, os.path.join(work, "out1"), ["maildir:" + maildir, "mbox:" + mbox], state=state)
    t.eq("run 1 exits 0", r.rc, 0)
    t.eq("run 1: messages and per-(domain, IP) totals are the truth's",
         mailgen.totals(r), mailgen.totals(truth))
    t.eq("run 1: 3 reports accepted, 3 duplicates", (r.summary.get("accepted"), r.summary.get("duplicates")), (3, 3))
    t.eq("run 1: every Maildir message processed",
         len(os.listdir(os.path.join(maildir, ".Processed", "cur"))), 3)

    # new copies of A (Maildir) and C (mbox, appended) arrive later
    mailgen.maildir_put(maildir, [mailgen.as_message(*a)])
    with open(mbox, "ab") as f:
        f.write(mailgen.mbox_bytes([mailgen.as_message(*c)]))
    r2 = dptest.run(dp, os.path.join(work, "out2"), ["maildir:" + maildir, "mbox:" + mbox], state=state)
    t.eq("run 2 exits 0", r2.rc, 0)
    t.eq("run 2: nothing counted", (r2.messages, r2.summary.get("accepted")), (0, 0))
    t.eq("run 2: the 2 new copies are duplicates", r2.summary.get("duplicates"), 2)
    t.finish()


if __name__ == "__main__":
    main()
