#!/usr/bin/env python3
"""test_kafka_away -- a Kafka sink whose broker is not there.

  * a batch run gives up after --broker-timeout (5 s here) with exit 2 and
    a one-line reason, nothing acknowledged (no input moved to --done),
    nothing counted in the state (a later run takes every input);
  * with no --broker-timeout it gives up by itself, after about a minute;
  * a follower waits for the broker for good, says so in its log, and
    ends on SIGTERM with exit 0.

Nothing listens on the port used (a freshly closed socket's), so no broker
is needed.

Usage: test_kafka_away.py DMARCPIPE CORPUS_SAMPLES
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def batch(t, dp, samples, extra, limit, label):
    with dptest.scratch("kafka-away") as d:
        spool, done = os.path.join(d, "spool"), os.path.join(d, "done")
        shutil.copytree(samples, spool)
        args = [dp, "run", "--sink", f"kafka://127.0.0.1:{dead_port()}/dmarc.rollups", "--state",
                os.path.join(d, "state"), "--done", done, *extra, spool]
        t0 = time.monotonic()
        p = subprocess.run(args, cwd=d, stdin=subprocess.DEVNULL, capture_output=True, timeout=limit + 60)
        took = time.monotonic() - t0
        err = p.stderr.decode("utf-8", "replace")
        t.check(f"{label}: gave up within {limit} s ({took:.1f} s)", took < limit, err[-600:])
        t.eq(f"{label}: exit 2", p.returncode, 2)
        t.check(f"{label}: the reason, in one line", "no broker answered" in err and "--broker-timeout" in err,
                err[-600:])
        t.eq(f"{label}: nothing acknowledged", os.listdir(done) if os.path.isdir(done) else [], [])
        t.eq(f"{label}: every input still in the spool", sorted(os.listdir(spool)), sorted(os.listdir(samples)))


def follower(t, dp, samples):
    with dptest.scratch("kafka-away-follow") as d:
        spool = os.path.join(d, "spool")
        shutil.copytree(samples, spool)
        errpath = os.path.join(d, "err")
        with open(errpath, "wb") as err:
            p = subprocess.Popen([dp, "run", "--follow", "--poll", "1", "--sink",
                                  f"kafka://127.0.0.1:{dead_port()}/dmarc.rollups", "--state",
                                  os.path.join(d, "state"), spool],
                                 cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            time.sleep(12)
            alive = p.poll() is None
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = "hung"
        text = open(errpath, errors="replace").read()
        t.check("follower: still waiting after 12 s", alive, text[-600:])
        t.check("follower: says it is retrying", "retrying" in text, text[-600:])
        t.eq("follower: SIGTERM ends it with 0", rc, 0)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    dp, samples = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    t = dptest.Harness("hostile_kafka_away")
    t.run(batch, t, dp, samples, ["--broker-timeout", "5"], 30, "--broker-timeout 5")
    if os.environ.get("DP_SANITIZED") != "1":  # a minute more under a sanitizer proves nothing new
        t.run(batch, t, dp, samples, [], 100, "the default")
    t.run(follower, t, dp, samples)
    t.finish()


if __name__ == "__main__":
    main()
