#!/usr/bin/env python3
"""Runs test_enrich_dns (Check) against a real DNS server on loopback.

Starts dnsmasq and its stubs (dns.py), builds the MMDB files with PyPI
mmdb-writer, and hands their places to the test program in DP_TEST_*
variables; stops the servers whatever happens.

Usage: test_enrich_dns.py TEST_PROGRAM
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dns  # noqa: E402


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dp-enrich-") as work:
        asn, country = dns.mmdb(os.path.join(work, "mmdb"))
        srv = dns.start(os.path.join(work, "dns"))
        try:
            env = dict(os.environ, DP_TEST_DNS=srv.addr, DP_TEST_DNS_LOG=srv.log,
                       DP_TEST_DNS_SILENT=srv.silent_addr, DP_TEST_DNS_SILENT_LOG=srv.info["silent_log"],
                       DP_TEST_DNS_DEAD=srv.dead_addr, DP_TEST_MMDB_ASN=asn, DP_TEST_MMDB_COUNTRY=country,
                       DP_TEST_WORK=work)
            rc = subprocess.run([sys.argv[1]], env=env).returncode
        finally:
            srv.stop()
        if rc != 0:
            print("--- the last lines of dnsmasq's log ---")
            print("".join(open(srv.log, errors="replace").readlines()[-30:]))
        return rc


if __name__ == "__main__":
    sys.exit(main())
