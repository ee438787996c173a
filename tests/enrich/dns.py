#!/usr/bin/env python3
"""dns.py -- a real DNS server on loopback for the enrichment tests, and
MaxMind DB files built for them.

The server is Debian's dnsmasq (dnsmasq-base) on 127.0.0.1 and a free port,
answering only from its configuration (--no-resolv --no-hosts) and logging
every query it receives (--log-queries --log-facility=FILE), so that a test
counts the queries a run made.  Beside it run two small UDP servers of this
file: one answers SERVFAIL to everything (dnsmasq forwards one zone to it
and passes the SERVFAIL on: dnsmasq cannot make one itself), the other
never answers (a resolver that times out; it logs each datagram it gets).
A third port is bound by nobody (an unreachable resolver).

The records (RECORDS below; a test may add its own):
  192.0.2.1    mail.example.com                     confirmed
  192.0.2.2    o1.ptr1234.sendgrid.net              confirmed; built-in map: SendGrid, esp
  192.0.2.3    x.bucket.s3.amazonaws.com            confirmed; base domain by the PSL's private
                                                    section: bucket.s3.amazonaws.com
  192.0.2.4    mail-eopbgr.outbound.protection.outlook.com   confirmed; Microsoft 365 (longer than outlook.com)
  192.0.2.5    spoof.sendgrid.net                   PTR only: its A is 192.0.2.55 (not confirmed)
  192.0.2.6    ghost.example.com                    PTR only: the name has no A (not confirmed)
  192.0.2.7    -                                    NXDOMAIN
  192.0.2.8    relay.example.org                    confirmed; no built-in service
  192.0.2.9 .. 192.0.2.19   hN.example.com          confirmed (one IP per test that counts queries)
  192.0.2.100 .. 192.0.2.199  hN.example.com        confirmed (bulk)
  198.51.100.7 -                                    SERVFAIL
  203.0.113.8  -                                    REFUSED (outside every zone)
  2001:db8::25 mx.example.net                       confirmed by AAAA
The MMDB files (`mmdb`): ASN 192.0.2.0/24 -> 64500 "Example Net AS",
2001:db8::/32 -> 64501 "Example Six"; country 192.0.2.0/24 -> NL,
2001:db8::/32 -> DE, 198.51.100.0/24 -> SE; IPv6 databases with
ipv4_compatible=True, so IPv4 is found in them as in MaxMind's.

As a module:
    srv = dns.start(workdir[, port])  srv.addr ("127.0.0.1:PORT"), srv.silent_addr,
                                  srv.dead_addr, srv.queries(name, qtype), srv.silent_count(), srv.stop()
    dns.mmdb(workdir)             -> (asn_path, country_path), made with PyPI mmdb-writer
                                  in a venv cached under ~/.cache/dmarcpipe/enrich-venv
As a program (for shell tests and by hand):
    dns.py start WORKDIR          starts everything, writes WORKDIR/dns.json, prints it
    dns.py stop WORKDIR
    dns.py count WORKDIR [NAME]   queries dnsmasq logged (for NAME)
    dns.py mmdb WORKDIR           prints the two paths
"""
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = "mmdb-writer==0.2.7 netaddr==1.3.0"

RECORDS = (
    [("host", "mail.example.com", "192.0.2.1"),
     ("host", "o1.ptr1234.sendgrid.net", "192.0.2.2"),
     ("host", "x.bucket.s3.amazonaws.com", "192.0.2.3"),
     ("host", "mail-eopbgr.outbound.protection.outlook.com", "192.0.2.4"),
     ("ptr", "spoof.sendgrid.net", "192.0.2.5"),
     ("host", "spoof.sendgrid.net", "192.0.2.55"),
     ("ptr", "ghost.example.com", "192.0.2.6"),
     ("host", "relay.example.org", "192.0.2.8"),
     ("host", "mx.example.net", "2001:db8::25")]
    + [("host", "h%d.example.com" % i, "192.0.2.%d" % i) for i in list(range(9, 20)) + list(range(100, 200))])

# Zones answered from the configuration alone: a name there that is not
# configured is NXDOMAIN, not a question for an upstream.
LOCAL_ZONES = ["2.0.192.in-addr.arpa", "100.51.198.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa", "example.com",
               "example.net", "example.org", "sendgrid.net", "amazonaws.com", "outlook.com"]
SERVFAIL_ZONE = "7.100.51.198.in-addr.arpa"


def reverse_name(ip):
    if ":" in ip:
        import ipaddress
        return ipaddress.ip_address(ip).reverse_pointer
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def free_udp_port():
    """A port free for UDP on 127.0.0.1 (and for TCP: dnsmasq binds both)."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def stub(mode, port, log):
    """A UDP server: `servfail` answers SERVFAIL, `silent` never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    out = open(log, "a", buffering=1)
    while True:
        d, a = s.recvfrom(4096)
        out.write("datagram %d bytes\n" % len(d))
        if mode != "servfail" or len(d) < 12:
            continue
        i = 12
        while i < len(d) and d[i]:
            i += d[i] + 1
        flags = struct.unpack(">H", d[2:4])[0]
        head = d[:2] + struct.pack(">HHHHH", 0x8000 | (flags & 0x0100) | 0x0080 | 2, 1, 0, 0, 0)
        s.sendto(head + d[12:i + 5], a)


class Server:
    def __init__(self, work, info, procs=None):
        self.work, self.info, self.procs = work, info, procs or []
        self.addr = "127.0.0.1:%d" % info["port"]
        self.silent_addr = "127.0.0.1:%d" % info["silent_port"]
        self.dead_addr = "127.0.0.1:%d" % info["dead_port"]
        self.log = info["log"]

    def queries(self, name=None, qtype=None):
        """Queries dnsmasq logged, of NAME (a reverse name for an IP) and QTYPE."""
        if name and (re.match(r"^[0-9.]+$", name) or ":" in name):
            name = reverse_name(name)
        n = 0
        try:
            text = open(self.log, errors="replace").read()
        except OSError:
            return 0
        for m in re.finditer(r"query\[(\w+)\] (\S+) from", text):
            if (qtype is None or m.group(1) == qtype) and (name is None or m.group(2).lower() == name.lower()):
                n += 1
        return n

    def silent_count(self):
        try:
            return sum(1 for _ in open(self.info["silent_log"]))
        except OSError:
            return 0

    def stop(self):
        for pid in self.info.get("pids", []):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def _config(work, port, servfail_port):
    lines = ["port=%d" % port, "listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts",
             "no-negcache", "log-queries", "log-facility=%s" % os.path.join(work, "dnsmasq.log")]
    for z in LOCAL_ZONES:
        lines.append("local=/%s/" % z)
    lines.append("server=/%s/127.0.0.1#%d" % (SERVFAIL_ZONE, servfail_port))
    for kind, name, ip in RECORDS:
        if kind == "host":
            lines.append("host-record=%s,%s" % (name, ip))
        else:
            lines.append("ptr-record=%s,%s" % (reverse_name(ip), name))
    return "\n".join(lines) + "\n"


def _wait_udp(port, proc, what):
    """Until a DNS query on the port gets any answer (or the process dies)."""
    q = struct.pack(">HHHHHH", 4242, 0x0100, 1, 0, 0, 0) + b"\x04test\x00" + struct.pack(">HH", 1, 1)
    end = time.time() + 15
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %d" % (what, proc.returncode))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", port))
            s.recv(512)
            return
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    raise RuntimeError("%s did not answer on port %d" % (what, port))


def start(work, port=None):
    """dnsmasq (on PORT, else a free port) and the two stubs, on free ports.
    Raises when dnsmasq is missing."""
    os.makedirs(work, exist_ok=True)
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.path.exists(dnsmasq):
        raise RuntimeError("dnsmasq not found (Debian dnsmasq-base; deploy/install-deps)")
    port = port or free_udp_port()
    sf_port, silent_port, dead_port = (free_udp_port() for _ in range(3))
    silent_log = os.path.join(work, "silent.log")
    open(silent_log, "w").close()
    procs = []
    for mode, p, log in (("servfail", sf_port, os.path.join(work, "servfail.log")), ("silent", silent_port, silent_log)):
        procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "stub", mode, str(p), log],
                                      start_new_session=True))
    conf = os.path.join(work, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write(_config(work, port, sf_port))
    err = open(os.path.join(work, "dnsmasq.err"), "w")
    procs.append(subprocess.Popen([dnsmasq, "--keep-in-foreground", "--conf-file=" + conf, "--pid-file="],
                                  stdout=err, stderr=err, start_new_session=True))
    info = {"port": port, "silent_port": silent_port, "dead_port": dead_port, "servfail_port": sf_port,
            "log": os.path.join(work, "dnsmasq.log"), "silent_log": silent_log, "pids": [p.pid for p in procs]}
    srv = Server(work, info, procs)
    try:
        _wait_udp(port, procs[-1], "dnsmasq")
        _wait_udp(sf_port, procs[0], "the SERVFAIL stub")
    except Exception:
        srv.stop()
        raise
    with open(os.path.join(work, "dns.json"), "w") as f:
        json.dump(info, f)
    return srv


def ensure_venv():
    """The venv with mmdb-writer, made once per machine (a lock for ctest -j)."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dmarcpipe")
    venv = os.environ.get("DP_ENRICH_VENV") or os.path.join(cache, "enrich-venv")
    os.makedirs(cache, exist_ok=True)
    py = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".dp-requirements")
    with open(os.path.join(cache, ".enrich-venv.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ok = os.path.exists(stamp) and open(stamp).read().strip() == REQUIREMENTS and subprocess.run(
            [py, "-c", "import mmdb_writer, netaddr"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0
        if not ok:
            shutil.rmtree(venv, ignore_errors=True)
            if subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "venv", venv]).returncode != 0:
                raise RuntimeError("cannot make a venv in %s (python3-venv missing?)" % venv)
            if subprocess.run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
                              + REQUIREMENTS.split()).returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise RuntimeError("pip install %s failed (is PyPI reachable?)" % REQUIREMENTS)
            with open(stamp, "w") as f:
                f.write(REQUIREMENTS + "\n")
    return py


def _write_mmdb(work):
    """Runs inside the venv: writes the two databases."""
    from mmdb_writer import MMDBWriter, MmdbU32
    from netaddr import IPSet
    asn = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    asn.insert_network(IPSet(["192.0.2.0/24"]), {"autonomous_system_number": MmdbU32(64500),
                                                 "autonomous_system_organization": "Example Net AS"})
    asn.insert_network(IPSet(["2001:db8::/32"]), {"autonomous_system_number": MmdbU32(64501),
                                                  "autonomous_system_organization": "Example Six"})
    asn.to_db_file(os.path.join(work, "asn.mmdb"))
    cc = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True)
    for net, iso in (("192.0.2.0/24", "NL"), ("2001:db8::/32", "DE"), ("198.51.100.0/24", "SE")):
        cc.insert_network(IPSet([net]), {"country": {"iso_code": iso}})
    cc.to_db_file(os.path.join(work, "country.mmdb"))


def mmdb(work):
    os.makedirs(work, exist_ok=True)
    py = ensure_venv()
    subprocess.run([py, os.path.abspath(__file__), "write-mmdb", work], check=True)
    return os.path.join(work, "asn.mmdb"), os.path.join(work, "country.mmdb")


def main(argv):
    if len(argv) >= 4 and argv[1] == "stub":
        stub(argv[2], int(argv[3]), argv[4])
        return 0
    if len(argv) == 3 and argv[1] == "write-mmdb":
        _write_mmdb(argv[2])
        return 0
    if len(argv) >= 3 and argv[1] in ("start", "stop", "count", "mmdb"):
        work = os.path.abspath(argv[2])
        if argv[1] == "start":
            srv = start(work)
            print(json.dumps(srv.info))
            return 0
        if argv[1] == "mmdb":
            print("\n".join(mmdb(work)))
            return 0
        info = json.load(open(os.path.join(work, "dns.json")))
        srv = Server(work, info)
        if argv[1] == "stop":
            srv.stop()
        else:
            print(srv.queries(argv[3] if len(argv) > 3 else None))
        return 0
    print(__doc__.split("\n\n")[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
