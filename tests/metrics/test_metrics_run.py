#!/usr/bin/env python3
"""test_metrics_run.py -- `dmarcpipe run --metrics-addr` end to end.

A follower (--follow --flush-interval 1) serves /metrics on a free port of
127.0.0.1 while the test drops reports into its folder:
  - /healthz and /readyz answer 200 once it is ready, before any input;
  - every scrape, taken while the reports are being counted, passes
    `promtool check metrics` with nothing to say, and has every family of
    the documented list, with its TYPE, and one shard_keys series per shard;
  - once a cycle is done, dmarcpipe_messages_total equals the sum of the
    messages in the rollups written, and the reports, records and inputs
    equal what was dropped (records as dp-gen-report made them);
  - a report that is not XML and a FIFO are counted in
    dmarcpipe_rejections_total as {stage="ingest",reason="xml"} and
    {stage="source",reason="input"};
  - after SIGTERM it exits 0 within seconds, and the summary it prints
    gives the same messages figure as the last scrape;
  - a second run on the same port stops at once: exit 2, one line naming
    the address and the reason.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

FAMILIES = {
    "dmarcpipe_reports_total": "counter",
    "dmarcpipe_records_total": "counter",
    "dmarcpipe_messages_total": "counter",
    "dmarcpipe_input_bytes_total": "counter",
    "dmarcpipe_inputs_total": "counter",
    "dmarcpipe_rejections_total": "counter",
    "dmarcpipe_epochs_total": "counter",
    "dmarcpipe_epoch_commit_seconds": "histogram",
    "dmarcpipe_ring_occupancy": "histogram",
    "dmarcpipe_shard_keys": "gauge",
    "dmarcpipe_build_info": "gauge",
}
SHARDS = 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def parse(text):
    """{(name, frozenset(labels)): value} and {family: type}."""
    values, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        values[(m.group(1), labels)] = float(m.group(4))
    return values, types


def value(values, name, **labels):
    return values.get((name, frozenset(labels.items())))


def promtool_check(promtool, text):
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        f"promtool check metrics: rc {p.returncode}\n{p.stdout}{p.stderr}"


def rollup_messages(path):
    total = 0
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                total += json.loads(line)["messages"]
    return total


def wait_for(what, fn, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        r = fn()
        if r:
            return r
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--gen-report", required=True)
    ap.add_argument("--promtool", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dp-metrics-")
    proc = None
    try:
        gen = os.path.join(tmp, "gen")
        n_reports, n_records = 60, 40
        g = subprocess.run([a.gen_report, "--reports", str(n_reports), "--records", str(n_records), "--seed", "7",
                            "-o", gen], capture_output=True, text=True, check=True)
        spool, out = os.path.join(tmp, "spool"), os.path.join(tmp, "rollups.ndjson")
        os.mkdir(spool)
        port = free_port()
        err = open(os.path.join(tmp, "stderr"), "w+")
        proc = subprocess.Popen([a.dmarcpipe, "run", "--follow", "--poll", "1", "--flush-interval", "1",
                                 "--shards", str(SHARDS), "--workers", "2", "--metrics-addr", f"127.0.0.1:{port}",
                                 "--sink", "file:" + out, "--state", os.path.join(tmp, "state"),
                                 "--quarantine", os.path.join(tmp, "quarantine"), spool],
                                cwd=tmp, stderr=err, stdout=subprocess.DEVNULL)

        def up():
            try:
                return get(port, "/readyz")[0] == 200
            except OSError:
                return False
        wait_for("/readyz 200", up)
        assert get(port, "/healthz")[0] == 200
        status, ctype, text = get(port, "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
        promtool_check(a.promtool, text)
        values, types = parse(text)
        for fam, typ in FAMILIES.items():
            assert types.get(fam) == typ, f"{fam}: TYPE {types.get(fam)}, want {typ}"
        for s in range(SHARDS):
            assert value(values, "dmarcpipe_shard_keys", shard=str(s)) == 0
        assert value(values, "dmarcpipe_shard_keys", shard=str(SHARDS)) is None
        assert value(values, "dmarcpipe_messages_total") == 0

        # the reports arrive in waves, each written under a dot name and
        # renamed into place; scraped all along
        names = sorted(os.listdir(gen))
        scrapes = 0
        for i, name in enumerate(names):
            shutil.copy(os.path.join(gen, name), os.path.join(spool, "." + name))
            os.rename(os.path.join(spool, "." + name), os.path.join(spool, name))
            if i % 10 == 9:
                text = get(port, "/metrics")[2]
                promtool_check(a.promtool, text)
                scrapes += 1
                time.sleep(0.3)
        with open(os.path.join(spool, "not-xml.xml"), "w") as f:
            f.write("<feedback><report_metadata>")
        os.mkfifo(os.path.join(spool, "a-fifo.xml"))

        def settled():
            v, _ = parse(get(port, "/metrics")[2])
            done = (value(v, "dmarcpipe_inputs_total", result="accepted") == n_reports and
                    value(v, "dmarcpipe_rejections_total", stage="ingest", reason="xml") == 1)
            return v if done else None
        values = wait_for("every report counted", settled, timeout=60)
        # a cycle is done: what the metrics say is what the sink holds
        messages = rollup_messages(out)
        assert messages > 0
        assert value(values, "dmarcpipe_messages_total") == messages, \
            (value(values, "dmarcpipe_messages_total"), messages)
        assert value(values, "dmarcpipe_reports_total", result="accepted") == n_reports
        assert value(values, "dmarcpipe_records_total") == n_reports * n_records
        assert value(values, "dmarcpipe_input_bytes_total") == sum(
            os.path.getsize(os.path.join(gen, n)) for n in names) + len("<feedback><report_metadata>")
        assert value(values, "dmarcpipe_reports_total", result="duplicate") == 0
        fifo = value(values, "dmarcpipe_rejections_total", stage="source", reason="input")
        assert fifo == 1, f"the FIFO: rejections_total{{stage=source,reason=input}} is {fifo}"
        assert value(values, "dmarcpipe_inputs_total", result="rejected") == 2
        assert value(values, "dmarcpipe_epochs_total") >= 1
        assert value(values, "dmarcpipe_epoch_commit_seconds_count") == value(values, "dmarcpipe_epochs_total")
        assert value(values, "dmarcpipe_ring_occupancy_count") > 0
        # every label value a family may take is declared: none of an input's names leaks in
        text = get(port, "/metrics")[2]
        assert "spool" not in text and "not-xml" not in text and "fifo" not in text
        promtool_check(a.promtool, text)
        assert get(port, "/healthz")[0] == 200 and get(port, "/readyz")[0] == 200
        assert get(port, "/nope")[0] == 404

        # the same port again: refused at once, one line, exit 2
        second = subprocess.run([a.dmarcpipe, "run", "--metrics-addr", f"127.0.0.1:{port}", "--sink",
                                 "file:" + os.path.join(tmp, "second.ndjson"), "--state",
                                 os.path.join(tmp, "state2"), gen], cwd=tmp, capture_output=True, text=True,
                                timeout=30)
        assert second.returncode == 2, (second.returncode, second.stderr)
        lines = [l for l in second.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Address already in use" in lines[0], lines
        assert not os.path.exists(os.path.join(tmp, "second.ndjson"))

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        err.seek(0)
        log = err.read()
        assert rc == 0, f"exit {rc} after SIGTERM:\n{log[-6000:]}"
        assert str(int(messages)) in log, f"the summary does not give {messages} messages:\n{log[-2000:]}"
        print(f"ok: {scrapes} scrapes during the run, promtool clean; messages_total {int(messages)} equals the "
              f"rollups'; rejections by stage and reason; a taken port refused; SIGTERM exit 0")
        return 0
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
