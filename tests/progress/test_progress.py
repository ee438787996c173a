#!/usr/bin/env python3
"""test_progress.py -- the progress line of a batch `dmarcpipe run`.

In a real terminal (a detached tmux session, 120 x 10), a batch run over
a few thousand generated reports: the pane, captured every 0.1 s while it
runs, shows one progress line with its figures ("N/3000 inputs",
"X/Y MB", "records/s", "ETA"), the inputs it counts only grow and never
pass the total, and the last screen has the summary with no progress line
left on it.  With stderr redirected to a file nothing but the run's own
lines is there: no carriage return, no escape sequence, no progress line.
`--progress off` keeps a terminal free of it too.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

N_REPORTS = 3000
LINE = re.compile(r"(\d+)/(\d+) inputs(?: \(\d+ rejected\))?  ([\d.]+)/([\d.]+) MB  (\d+) records/s  ETA [\d:-]+")


def tmux(sock, *args, check=True):
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=check)


def run_in_terminal(tmp, sock, cmd):
    """Runs cmd in a fresh tmux pane; returns every screen captured while it ran, and the last."""
    done = os.path.join(tmp, "done-" + sock)
    shell = f"cd {shlex.quote(tmp)} && {cmd}; echo exit=$? > {shlex.quote(done)}; sleep 30"
    tmux(sock, "new-session", "-d", "-x", "120", "-y", "10", shell)
    screens = []
    end = time.time() + 240
    while not os.path.exists(done) and time.time() < end:
        screens.append(tmux(sock, "capture-pane", "-p", check=False).stdout)
        time.sleep(0.1)
    assert os.path.exists(done), "the run did not end in time"
    time.sleep(0.3)
    last = tmux(sock, "capture-pane", "-p", "-S", "-200").stdout
    tmux(sock, "kill-server", check=False)
    return screens, last, open(done).read().strip()


def fresh(tmp):
    """A run as if the first: no state, no output."""
    shutil.rmtree(os.path.join(tmp, "st"))
    os.unlink(os.path.join(tmp, "out.ndjson"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--gen-report", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dp-progress-")
    sock = f"dp-progress-{os.getpid()}"
    try:
        subprocess.run([a.gen_report, "--reports", str(N_REPORTS), "--records", "40", "--seed", "5", "-o",
                        os.path.join(tmp, "in")], check=True, capture_output=True)
        total_mb = sum(os.path.getsize(os.path.join(tmp, "in", n)) for n in os.listdir(os.path.join(tmp, "in"))) / 1e6
        dp = shlex.quote(a.dmarcpipe)
        base = f"{dp} run --workers 1 --shards 1 --sink file:out.ndjson --state st"

        # 1. a terminal: the line, then the summary alone
        screens, last, status = run_in_terminal(tmp, sock, f"{base} in")
        assert status == "exit=0", status
        seen = []
        for s in screens:
            lines = [l for l in s.splitlines() if LINE.search(l)]
            assert len(lines) <= 1, f"more than one progress line on the screen:\n{s}"
            if lines:
                m = LINE.search(lines[0])
                seen.append((int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4))))
        assert seen, "no progress line was ever on the screen:\n" + "\n---\n".join(screens[-3:])
        for done, total, mb, mb_total in seen:
            assert total == N_REPORTS and 0 <= done <= total, (done, total)
            assert abs(mb_total - total_mb) < 0.1 and mb <= mb_total + 0.05, (mb, mb_total, total_mb)
        dones = [d for d, *_ in seen]
        assert dones == sorted(dones), f"inputs done went backwards: {dones}"
        assert f"{N_REPORTS} inputs" in last, f"no summary on the last screen:\n{last}"
        assert not LINE.search(last) and "ETA" not in last, f"the progress line was left on screen:\n{last}"
        print(f"terminal: {len(seen)} captures with the progress line, inputs {dones[0]}..{dones[-1]} of {N_REPORTS}")

        # 2. stderr to a file: no progress at all
        fresh(tmp)
        p = subprocess.run(f"{base} in 2>err.txt", shell=True, cwd=tmp, timeout=240)
        assert p.returncode == 0
        err = open(os.path.join(tmp, "err.txt"), "rb").read()
        assert b"\r" not in err and b"\x1b" not in err and b"ETA" not in err and b"records/s  " not in err, err[:500]
        assert str(N_REPORTS).encode() in err, err[-500:]
        print("file: the summary only")

        # 3. --progress off, in a terminal
        fresh(tmp)
        screens, last, status = run_in_terminal(tmp, sock + "-off", f"{base} --progress off in")
        assert status == "exit=0", status
        assert not any(LINE.search(s) for s in screens), "a progress line with --progress off"
        print("--progress off: none")
        return 0
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        subprocess.run(["tmux", "-L", sock + "-off", "kill-server"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
