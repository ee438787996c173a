#!/usr/bin/env python3
"""run_bombs.py — feeds dmarcpipe every hostile input of make_bombs.py.

    run_bombs.py --dmarcpipe BIN --workdir DIR [--generate]
                 [--rss-limit-mib N | --no-rss-limit] [--cpu-limit-s S]
                 [--timeout S] [CASE...]

For each case it runs `BIN parse --summary --quarantine DIR/quarantine/CASE
DIR/inputs/CASE` and checks that:

  * the process exited with status 1, not by a signal (no crash, no
    sanitizer abort, which exits with another status), within the timeout;
  * stderr holds a one-line error "dmarcpipe: WHERE: STAGE: MESSAGE" that
    names the input and matches the case's pattern (make_bombs.CASES);
  * the --summary line says rejected >= 1;
  * it used under 5 s of CPU (--cpu-limit-s): a bomb must be stopped, not
    merely survived;
  * peak RSS (ru_maxrss of that very child, from wait4) stayed under the
    bound: 64 MiB by default.  Linux carries the high-water mark across
    exec, so the figure is at least this harness's own RSS when it spawned
    the child (printed as the floor, ~15 MB): the check errs on the strict
    side.  Sanitizers inflate memory, so sanitizer builds pass
    --no-rss-limit (or set DP_BOMBS_NO_RSS=1) and the RSS is only printed;
  * the input was copied into the quarantine beside a NAME.reason file
    whose JSON has "error", "stage" and "offset".

It prints a table, then "N passed, M failed", and exits 1 on any failure.
Cases listed in make_bombs.KNOWN_BUGS (an ingest bug already reported, not
yet fixed) print as XFAIL and do not fail the run; once such a case passes
it prints as XPASS, and its entry should be deleted.
With --generate, the inputs are (re)written first when missing or stale.
No package beyond the standard library is needed.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bombs  # noqa: E402

ERR_LINE = re.compile(r"^dmarcpipe: (?P<where>.+?): (?P<stage>[a-z_]+): (?P<msg>.+)$")


def run_case(args, name, pattern, inputs, qroot):
    """Returns (ok, exit_text, error_line, rss_kib, cpu_seconds, problems)."""
    path = os.path.join(inputs, name)
    qdir = os.path.join(qroot, name)
    shutil.rmtree(qdir, ignore_errors=True)
    problems = []
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([args.dmarcpipe, "parse", "--summary", "--quarantine", qdir, path],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        # wait4 gives this child's own rusage; Popen.wait() would not.
        status = rusage = None
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > args.timeout:
                proc.kill()
                _, status, rusage = os.wait4(proc.pid, 0)
                problems.append("timed out after %ds" % args.timeout)
                break
            time.sleep(0.02)
        proc.returncode = 0  # reaped by hand; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")

    rss_kib = rusage.ru_maxrss  # KiB on Linux
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        exit_text = "signal %d (%s)" % (sig, signal.Signals(sig).name)
        problems.append("killed by " + exit_text)
    else:
        code = os.WEXITSTATUS(status)
        exit_text = str(code)
        if code != 1:
            problems.append("exit status %d, want 1" % code)

    # The error line: names this input (WHERE starts with its path) and
    # says why.  "quarantined as" lines are not errors.
    errors = []
    for line in stderr.splitlines():
        m = ERR_LINE.match(line)
        if m and m.group("where").startswith(path) and "quarantined as" not in line:
            errors.append(line)
    want = re.compile(pattern, re.I)
    matching = [e for e in errors if want.search(e)]
    shown = (matching or errors or [stderr.strip().splitlines()[0] if stderr.strip() else ""])[0]
    if not errors:
        problems.append("no 'dmarcpipe: WHERE: STAGE: MESSAGE' line naming the input on stderr")
    elif not matching:
        problems.append("no error line matches /%s/" % pattern)
    if "AddressSanitizer" in stderr or "runtime error:" in stderr or "LeakSanitizer" in stderr:
        problems.append("sanitizer report on stderr")

    # The summary line.
    summary = None
    for line in stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("input") == path:
            summary = obj
    if summary is None:
        problems.append("no --summary line for the input")
    elif not summary.get("rejected"):
        problems.append("summary says nothing was rejected: %s" % json.dumps(summary))

    cpu = rusage.ru_utime + rusage.ru_stime
    if args.cpu_limit_s and cpu > args.cpu_limit_s:
        problems.append("%.1f s of CPU, over the %.1f s bound" % (cpu, args.cpu_limit_s))
    if args.rss_limit_mib and rss_kib > args.rss_limit_mib * 1024:
        problems.append("peak RSS %.1f MiB over the %d MiB bound" % (rss_kib / 1024, args.rss_limit_mib))

    # The quarantine: a copy of the input and its .reason.
    reasons = []
    if os.path.isdir(qdir):
        reasons = [f for f in os.listdir(qdir) if f.endswith(".reason")]
    if len(reasons) != 1:
        problems.append("want one .reason file in %s, found %d" % (qdir, len(reasons)))
    else:
        rpath = os.path.join(qdir, reasons[0])
        copy = rpath[:-len(".reason")]
        try:
            with open(rpath) as f:
                reason = json.load(f)
            missing = [k for k in ("error", "stage", "offset") if k not in reason]
            if missing:
                problems.append(".reason lacks %s" % ", ".join(missing))
        except (OSError, ValueError) as e:
            problems.append("unreadable .reason: %s" % e)
        if not os.path.isfile(copy):
            problems.append("no quarantined copy beside the .reason")
        elif os.path.getsize(copy) != os.path.getsize(path):
            problems.append("quarantined copy has %d bytes, the input %d" %
                            (os.path.getsize(copy), os.path.getsize(path)))
        elif os.path.getsize(copy) > (1 << 20):
            os.unlink(copy)  # checked; do not keep 100 MB twice
    return not problems, exit_text, shown, rss_kib, cpu, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--generate", action="store_true", help="write the inputs when missing or stale")
    ap.add_argument("--rss-limit-mib", type=int, default=64)
    ap.add_argument("--no-rss-limit", action="store_true")
    ap.add_argument("--cpu-limit-s", type=float, default=5.0,
                    help="user+system CPU seconds per case (0: not checked)")
    ap.add_argument("--timeout", type=int, default=120, help="wall-clock seconds per case")
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    if args.no_rss_limit or os.environ.get("DP_BOMBS_NO_RSS") not in (None, "", "0"):
        args.rss_limit_mib = 0

    inputs = os.path.join(args.workdir, "inputs")
    qroot = os.path.join(args.workdir, "quarantine")
    if args.generate and not make_bombs.fresh(inputs):
        # In a child: building the inputs would grow this process, whose RSS
        # is the floor of every measurement below.
        print("generating bombs in %s" % inputs, flush=True)
        subprocess.run([sys.executable, make_bombs.__file__, inputs], check=True,
                       stdout=subprocess.DEVNULL)
    if not make_bombs.fresh(inputs):
        print("run_bombs: %s lacks the inputs; run make_bombs.py %s (or pass --generate)"
              % (inputs, inputs), file=sys.stderr)
        return 2
    names = args.cases or list(make_bombs.CASES)
    unknown = [n for n in names if n not in make_bombs.CASES]
    if unknown:
        print("run_bombs: unknown case(s): %s" % ", ".join(unknown), file=sys.stderr)
        return 2

    bound = ("%d MiB" % args.rss_limit_mib) if args.rss_limit_mib else "not checked"
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("peak RSS bound: %s (floor: this harness's own %.1f MiB)" % (bound, floor))
    print("%-36s %-5s %9s %7s  %s" % ("case", "exit", "RSS MiB", "CPU s", "error line"))
    passed = failed = xfailed = xpassed = 0
    for name in names:
        ok, exit_text, line, rss, cpu, problems = run_case(args, name, make_bombs.CASES[name][0],
                                                            inputs, qroot)
        if len(line) > 150:
            line = line[:147] + "..."
        print("%-36s %-5s %9.1f %7.2f  %s" % (name, exit_text, rss / 1024, cpu, line))
        known = make_bombs.KNOWN_BUGS.get(name)
        for p in problems:
            print("    %s: %s" % ("XFAIL" if known else "FAIL", p))
        if known and not ok:
            print("    XFAIL (known ingest bug): %s" % known)
            xfailed += 1
        elif known:
            print("    XPASS: fixed; delete its make_bombs.KNOWN_BUGS entry")
            xpassed += 1
        elif ok:
            passed += 1
        else:
            failed += 1
    extra = ""
    if xfailed or xpassed:
        extra = " (%d known ingest bugs still failing, %d fixed)" % (xfailed, xpassed)
    print("%d passed, %d failed%s" % (passed + xpassed, failed, extra))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
