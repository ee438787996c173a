#!/usr/bin/env python3
"""test_system_resolver — `dmarcpipe run --enrich` with no --resolver: the
lookups go where the system's resolver configuration says (c-ares reads
/etc/resolv.conf when it is given no server), against a real dnsmasq.

    test_system_resolver.py DMARCPIPE

The system's configuration cannot be pointed at a test server without
changing the machine's, so the run happens in private namespaces
(`unshare --mount --net --pid`, util-linux): a network of its own, where
only loopback is up and port 53 is free for dnsmasq, a mount table of its
own, where a temporary file is bind-mounted over /etc/resolv.conf, and
process IDs of its own, so that nothing started there outlives the test.
The machine's /etc/resolv.conf is never written (the test checks it is
the same after).  Needs root (CAP_SYS_ADMIN); elsewhere it says why in
one line and exits 77 (skipped).

  * `nameserver 127.0.0.1`, dnsmasq there with tests/enrich/dns.py's
    records: the rollups carry the same fields as with --resolver
    (test_enrich_run.py's test set and checks), dnsmasq logged the
    queries, and the totals are those of a run without enrichment;
  * `nameserver 127.0.0.2`, where nothing listens: the run ends about as
    fast as without enrichment, exit 0, the same totals, null names, and
    one warning naming the resolver as the system's.

Only the MMDB files (PyPI mmdb-writer, which needs the network the first
time) are made outside the namespaces.
"""
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile

import test_enrich_run as er  # its test set, its run and checks; it puts dptest and dns on the path
import dptest
import dns

RESOLV_CONF = "/etc/resolv.conf"
SYSTEM_RESOLVER = "of the system (/etc/resolv.conf)"  # how enrich names a resolver it was not given


def unshare(*cmd):
    """CMD in new mount, network and PID namespaces: CMD is PID 1 there, so
    when it ends, however it ends, the kernel kills what it started
    (dnsmasq, the stubs), and it is killed when unshare is."""
    return ["unshare", "--mount", "--net", "--pid", "--kill-child", "--"] + list(cmd)


def die_with_parent():
    """unshare gets SIGKILL when this script dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def why_not(work):
    """None when private namespaces and the bind mount work here, else why not."""
    if not os.path.exists(RESOLV_CONF):
        return f"{RESOLV_CONF} does not exist, so nothing can be mounted over it"
    probe = os.path.join(work, "probe.conf")
    with open(probe, "w") as f:
        f.write("nameserver 127.0.0.1\n")
    try:
        p = subprocess.run(unshare("mount", "--bind", probe, RESOLV_CONF), capture_output=True, text=True,
                           timeout=30)
    except FileNotFoundError:
        return "unshare is not installed (util-linux)"
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        return f"unshare --mount --net and mount --bind are not permitted here (root, CAP_SYS_ADMIN): {err}"
    return None


def loopback_up():
    """`ip link set lo up`, without iproute2: a new network namespace starts
    with loopback down."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, siocgifflags, struct.pack("16sH", b"lo", 0))
        flags = struct.unpack("16sH", ifr[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))


def nameserver(conf, addr):
    """Rewrites the file in place: the bind mount holds its inode."""
    with open(conf, "w") as f:
        f.write(f"# {RESOLV_CONF} of the test's own mount namespace\nnameserver {addr}\n")


def inside(bin_, work):
    """In the namespaces: the server, the mount, the runs and the checks."""
    t = dptest.Harness("enrich_system_resolver")
    loopback_up()
    conf = os.path.join(work, "resolv.conf")
    nameserver(conf, "127.0.0.1")
    subprocess.run(["mount", "--bind", conf, RESOLV_CONF], check=True)
    with open(RESOLV_CONF) as f:
        t.check(f"{RESOLV_CONF} is the test's in the namespace", "nameserver 127.0.0.1" in f.read())
    geo = ["--geoip-asn", os.path.join(work, "asn.mmdb"), "--geoip-country", os.path.join(work, "country.mmdb")]
    src = er.reports(os.path.join(work, "in"), "sys")
    srv = dns.start(os.path.join(work, "dns"), port=53)
    try:
        p, plain, secs_off = er.run(bin_, os.path.join(work, "off"), src)
        t.check("run without enrichment exit 0", p.returncode == 0, p.stderr[-2000:])

        # 1. the system's resolver is dnsmasq: the fields as with --resolver
        p, rows, _ = er.run(bin_, os.path.join(work, "sys"), src, "--enrich", "--enrich-wait", 10, *geo)
        t.check("system resolver: exit 0", p.returncode == 0, p.stderr[-2000:])
        er.check_fields(t, "system resolver", rows)
        asked = {ip: srv.queries(dns.reverse_name(ip), "PTR") for ip in (er.ESP4, er.M365, er.V6)}
        t.check("system resolver: dnsmasq on 127.0.0.1:53 got the PTR queries", all(asked.values()), asked)
        t.eq("system resolver: the same totals as without enrichment", er.totals(rows), er.totals(plain))
        t.eq("system resolver: no warning", [line for line in p.stderr.splitlines() if "resolver" in line], [])

        # 2. the system's resolver is an address where nothing listens
        nameserver(conf, "127.0.0.2")
        p, rows, secs_dead = er.run(bin_, os.path.join(work, "dead"), src, "--enrich")
        t.check("nothing at the system resolver: exit 0", p.returncode == 0, p.stderr[-2000:])
        t.check(f"nothing at the system resolver: about as fast as without enrichment ({secs_dead:.2f} s vs "
                f"{secs_off:.2f} s)", secs_dead < secs_off + 3.0, f"{secs_dead:.2f} s")
        t.check("nothing at the system resolver: every source field null",
                rows and all(r[f] is None for r in rows for f in er.FIELDS), rows[:1])
        t.eq("nothing at the system resolver: the same totals", er.totals(rows), er.totals(plain))
        t.eq("nothing at the system resolver: one warning naming it",
             len([line for line in p.stderr.splitlines() if SYSTEM_RESOLVER in line]), 1)
    finally:
        srv.stop()
    t.finish()


def main():
    # SIGTERM unwinds: the folder is removed, unshare killed, dnsmasq stopped
    # (and PID 1, inside, ignores a signal it has no handler for)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bin_ = os.path.abspath(sys.argv[-1])
    if len(sys.argv) == 4 and sys.argv[1] == "inside":
        inside(bin_, sys.argv[2])
        return
    with tempfile.TemporaryDirectory(prefix="enrich-sysres-") as work:
        reason = why_not(work)
        if reason:
            print(f"SKIP enrich_system_resolver: {reason}", flush=True)
            sys.exit(77)
        dns.mmdb(work)
        with open(RESOLV_CONF, "rb") as f:
            before = f.read()
        inner = subprocess.Popen(unshare(sys.executable, os.path.abspath(__file__), "inside", work, bin_),
                                 preexec_fn=die_with_parent)
        try:
            rc = inner.wait()
        finally:
            if inner.poll() is None:
                inner.kill()
                inner.wait()
        with open(RESOLV_CONF, "rb") as f:
            after = f.read()
    if after != before:
        print(f"FAIL the machine's {RESOLV_CONF} changed: {after!r}", flush=True)
        rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
