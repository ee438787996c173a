#!/usr/bin/env python3
"""slow_dns.py -- a DNS server on loopback that answers every query late,
and the checker of what `dmarcpipe run --enrich` wrote from its answers.

bench/enrich_vs_off.sh measures enrichment against a resolver that takes
--delay seconds (default 0.1) per answer.  dnsmasq answers at once and
cannot be told to wait, so this is a server of its own on PyPI dnslib's
packet codec: one thread holds each reply in a heap until its query is
--delay old, however many are in flight, and works in rounds 10 ms apart
(a reply goes out --delay to --delay + 20 ms after its query came).  (dnslib's own DNSServer spends a
thread on every query; at a few hundred a second that took 2 s of CPU per
run, which a 2-core machine took from the dmarcpipe being measured.)
Its answers:

  PTR  d.c.b.a.in-addr.arpa  -> mta-a-b-c-d.DOMAIN
  PTR  (32 nibbles).ip6.arpa -> mta-<32 hex digits>.DOMAIN
  A    mta-a-b-c-d.DOMAIN    -> a.b.c.d   (so the PTR is forward-confirmed)
  AAAA mta-<hex>.DOMAIN      -> the IPv6 address
  anything else              -> NXDOMAIN (a name it does not know) or an
                                empty answer (a known name, another type)

DOMAIN is picked from DOMAINS by a hash of the address, so that a run sees
known senders (SendGrid, Amazon SES, Microsoft 365, Google) and a domain no
map knows.  It counts the queries it receives, by type, and rewrites
--stats FILE (JSON, atomically) at most every 50 ms while they come, and
when it stops (SIGTERM).  UDP only: no answer here is big enough to be
truncated.

Usage:
  slow_dns.py serve --port-file FILE --stats FILE [--port N] [--delay SEC]
  slow_dns.py check --sink FILE --senders TSV [--expect-all]
      reads the rollup lines of a run, prints one line of key=value pairs:
      rollups, messages, records, enriched (source_ptr not null),
      with_service, and digest (sha256 of the sorted lines less the seven
      source_* fields, so that runs with and without enrichment can be
      compared).  Every non-null source_ptr must be the name `serve` gives
      that IP, and source_service what the senders map (TSV) says of it:
      exit 1 otherwise; with --expect-all, also when a rollup has no PTR.
"""
import argparse
import hashlib
import ipaddress
import json
import os
import signal
import sys
import time

SEND_EVERY = 0.01
DOMAINS = ("sendgrid.net", "smtp-out.amazonses.com", "outbound.protection.outlook.com",
           "google.com", "dyn.isp.example")
ENRICH_FIELDS = ("source_ptr", "source_base_domain", "source_asn", "source_as_org",
                 "source_country", "source_service", "source_service_type")


def ptr_name(ip):
    """The PTR name `serve` answers for `ip` (an ipaddress object)."""
    dom = DOMAINS[int(hashlib.sha256(ip.packed).hexdigest()[:8], 16) % len(DOMAINS)]
    if ip.version == 4:
        return "mta-%s.%s" % (str(ip).replace(".", "-"), dom)
    return "mta-%s.%s" % (ip.packed.hex(), dom)


def ip_of_name(name):
    """The address a name made by ptr_name stands for, or None."""
    name = name.rstrip(".").lower()
    if not name.startswith("mta-"):
        return None
    label, _, dom = name[4:].partition(".")
    if dom not in DOMAINS:
        return None
    try:
        if len(label) == 32:
            ip = ipaddress.IPv6Address(bytes.fromhex(label))
        else:
            ip = ipaddress.IPv4Address(label.replace("-", "."))
    except ValueError:
        return None
    return ip if ptr_name(ip) == name else None


def ip_of_arpa(qname):
    q = qname.rstrip(".").lower()
    try:
        if q.endswith(".in-addr.arpa"):
            parts = q[:-len(".in-addr.arpa")].split(".")
            if len(parts) == 4:
                return ipaddress.IPv4Address(".".join(reversed(parts)))
        elif q.endswith(".ip6.arpa"):
            nib = q[:-len(".ip6.arpa")].split(".")
            if len(nib) == 32:
                return ipaddress.IPv6Address(bytes.fromhex("".join(reversed(nib))))
    except ValueError:
        pass
    return None


def answer(request):
    """The reply to one parsed query (a dnslib DNSRecord)."""
    from dnslib import QTYPE, RCODE, RR, A, AAAA, PTR
    qname = str(request.q.qname)
    qtype = QTYPE[request.q.qtype]
    reply = request.reply()
    if qtype == "PTR":
        ip = ip_of_arpa(qname)
        if ip is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            reply.add_answer(RR(qname, QTYPE.PTR, rdata=PTR(ptr_name(ip) + "."), ttl=3600))
        return qtype, reply
    ip = ip_of_name(qname)
    if ip is None:
        reply.header.rcode = RCODE.NXDOMAIN
    elif qtype == "A" and ip.version == 4:
        reply.add_answer(RR(qname, QTYPE.A, rdata=A(str(ip)), ttl=3600))
    elif qtype == "AAAA" and ip.version == 6:
        reply.add_answer(RR(qname, QTYPE.AAAA, rdata=AAAA(str(ip)), ttl=3600))
    return qtype, reply


def serve(args):
    """One thread, one UDP socket: each reply is held in a heap until its
    query is --delay old, and the thread wakes once a round.  dnslib's DNSServer spawns a thread per query
    (ThreadingMixIn), and at a few hundred queries a second those threads
    cost CPU that, on a small machine, the server takes from the dmarcpipe
    it is measuring; here the delay costs nothing."""
    import heapq
    import socket
    from dnslib import DNSRecord

    counts = {"queries": 0, "ptr": 0, "a": 0, "aaaa": 0, "other": 0, "bad": 0}

    def write_stats():
        tmp = args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.replace(tmp, args.stats)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", args.port))
    write_stats()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % sock.getsockname()[1])
    os.replace(tmp, args.port_file)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    due = []      # (time to send, sequence, reply bytes, address)
    seq = 0
    dirty = False
    last_write = 0.0
    while not stop:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, data, addr = heapq.heappop(due)
            try:
                sock.sendto(data, addr)
            except OSError:
                pass
        if dirty and now - last_write >= 0.05:
            write_stats()
            dirty, last_write = False, now
        # The server works in rounds SEND_EVERY apart: it sleeps, then takes
        # every query waiting and sends every reply due.  One wake-up a
        # round, not one a query: at several hundred queries a second, the
        # wake-ups were most of this server's CPU, which on a small machine
        # it takes from the dmarcpipe it measures.  A reply thus goes out
        # between --delay and --delay + 2 rounds after its query came.
        time.sleep(SEND_EVERY)
        arrived = time.monotonic()
        for _ in range(4096):
            try:
                pkt, addr = sock.recvfrom(4096, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            counts["queries"] += 1
            try:
                qtype, reply = answer(DNSRecord.parse(pkt))
            except Exception:  # not a DNS query: counted, not answered
                counts["bad"] += 1
                continue
            counts[qtype.lower() if qtype in ("PTR", "A", "AAAA") else "other"] += 1
            seq += 1
            heapq.heappush(due, (arrived + args.delay, seq, reply.pack(), addr))
            dirty = True
    write_stats()
    return 0


def load_senders(path):
    m = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            m[fields[0].lower()] = (fields[1], fields[2])
    return m


def service_of(name, senders):
    """Longest DOMAIN of the map equal to `name` or a parent of it."""
    labels = name.split(".")
    for i in range(len(labels)):
        hit = senders.get(".".join(labels[i:]))
        if hit:
            return hit
    return (None, None)


def check(args):
    senders = load_senders(args.senders)
    n = messages = records = enriched = with_service = 0
    bad = []
    digest_lines = []
    with open(args.sink, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            n += 1
            messages += r["messages"]
            records += r["records"]
            ptr = r.get("source_ptr")
            if ptr is not None:
                enriched += 1
                want = ptr_name(ipaddress.ip_address(r["source_ip"]))
                svc, typ = service_of(want, senders)
                if ptr != want:
                    bad.append("%s: source_ptr %r, the server gave %r" % (r["source_ip"], ptr, want))
                elif (r.get("source_service"), r.get("source_service_type")) != (svc, typ):
                    bad.append("%s (%s): service %r/%r, the map says %r/%r" % (
                        r["source_ip"], ptr, r.get("source_service"), r.get("source_service_type"), svc, typ))
                if r.get("source_service") is not None:
                    with_service += 1
            elif args.expect_all:
                bad.append("%s: no source_ptr" % r["source_ip"])
            elif any(r.get(k) is not None for k in ENRICH_FIELDS):
                bad.append("%s: source_* fields without a source_ptr" % r["source_ip"])
            for k in ENRICH_FIELDS:
                r.pop(k, None)
            digest_lines.append(json.dumps(r, sort_keys=True))
    digest_lines.sort()
    h = hashlib.sha256()
    for s in digest_lines:
        h.update(s.encode())
        h.update(b"\n")
    print("rollups=%d messages=%d records=%d enriched=%d with_service=%d digest=%s" % (
        n, messages, records, enriched, with_service, h.hexdigest()[:16]))
    for b in bad[:10]:
        print("slow_dns check: %s" % b, file=sys.stderr)
    if bad:
        print("slow_dns check: %d rollup(s) wrong" % len(bad), file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--delay", type=float, default=0.1)
    s.add_argument("--port-file", required=True)
    s.add_argument("--stats", required=True)
    c = sub.add_parser("check")
    c.add_argument("--sink", required=True)
    c.add_argument("--senders", required=True)
    c.add_argument("--expect-all", action="store_true")
    args = ap.parse_args()
    return serve(args) if args.cmd == "serve" else check(args)


if __name__ == "__main__":
    sys.exit(main())
