#!/usr/bin/env python3
"""parsedmarc's verdict on each input file, in one process.

Run with the parsedmarc venv's python (compare.py does this):

    VENV/bin/python pd_helper.py --list FILES.txt --out RESULTS.ndjson

FILES.txt holds one path per line. RESULTS.ndjson gets one JSON object per
input, then a last line {"summary": ...}. Every input is read the way the
parsedmarc CLI reads it:

  * a file that parsedmarc.utils.is_mbox() calls an mbox goes through
    get_dmarc_reports_from_mbox() (the CLI does the same; an .eml that starts
    with a "From " line counts as an mbox there too); an exception out of that call aborts the whole
    CLI run, and is marked "cli_fatal";
  * any other file goes through parse_report_file().

Always offline=True. On top of that, every socket connect and name lookup
is refused and counted, so "no network" is checked, not assumed.

Every exception is caught and recorded as "Class: message". An input that
yields no aggregate report but a failure or SMTP TLS report is recorded as
"not_aggregate". The messages of an input are the sum of record["count"]
over report["records"] of its aggregate reports.
"""

import argparse
import dataclasses
import inspect
import json
import logging
import resource
import signal
import socket
import sys
import time
import traceback

# ---------------------------------------------------------------- no network
NET_ATTEMPTS = []


def _refuse(what):
    def refuse(*args, **kwargs):
        NET_ATTEMPTS.append(f"{what}{args[1:2] if what == 'connect' else args[:1]}")
        raise OSError(f"network disabled by pd_helper ({what})")

    return refuse


socket.socket.connect = _refuse("connect")
socket.socket.connect_ex = _refuse("connect")
socket.getaddrinfo = _refuse("getaddrinfo")
socket.gethostbyname = _refuse("gethostbyname")
socket.gethostbyaddr = _refuse("gethostbyaddr")

import parsedmarc  # noqa: E402  (after the socket guard, on purpose)
import parsedmarc.utils  # noqa: E402

try:
    from importlib.metadata import version as _dist_version

    PD_VERSION = _dist_version("parsedmarc")
except Exception:  # pragma: no cover
    PD_VERSION = getattr(parsedmarc, "__version__", "unknown")


# ------------------------------------------------------------ log capture
class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append(record.getMessage())
        except Exception:
            pass


CAPTURE = _Capture()
_pd_logger = logging.getLogger("parsedmarc")
_pd_logger.addHandler(CAPTURE)
_pd_logger.setLevel(logging.WARNING)
_pd_logger.propagate = False


# ------------------------------------------------------------- API shims
def _accepts(func, name):
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


ParserConfig = None
try:  # parsedmarc >= 10: one config object carries options and caches
    from parsedmarc.config import ParserConfig  # noqa: F811
except Exception:
    ParserConfig = None


def _fresh_config():
    """A config with its own caches, so dedup never crosses files."""
    if ParserConfig is None:
        return None
    fields = {f.name for f in dataclasses.fields(ParserConfig)}
    kw = {"offline": True}
    if "always_use_local_files" in fields:
        kw["always_use_local_files"] = True
    return ParserConfig(**kw)


BASE_CONFIG = _fresh_config()


def _kw(func, config):
    if config is not None and _accepts(func, "config"):
        return {"config": config}
    kw = {"offline": True}
    if _accepts(func, "always_use_local_files"):
        kw["always_use_local_files"] = True
    return kw


def _timeout(signum, frame):
    raise TimeoutError("pd_helper: per-file time limit reached")


def _messages(report):
    recs = report.get("records") or []
    return len(recs), sum(int(r.get("count") or 0) for r in recs)


def one(path, per_file_timeout):
    res = {
        "path": path,
        "route": None,
        "verdict": None,
        "reports": 0,
        "records": 0,
        "messages": 0,
        "other_reports": {},
        "reason": None,
        "warnings": [],
        "dropped_records": 0,
        "cli_fatal": False,
        "normalized": False,
        "seconds": None,
    }
    CAPTURE.lines = []
    t0 = time.monotonic()
    if per_file_timeout:
        signal.alarm(per_file_timeout)
    aggregate = []
    other = {}
    try:
        if parsedmarc.utils.is_mbox(path):
            res["route"] = "get_dmarc_reports_from_mbox"
            func = parsedmarc.get_dmarc_reports_from_mbox
            out = func(path, **_kw(func, _fresh_config()))
            aggregate = list(out.get("aggregate_reports") or [])
            for key in ("failure_reports", "forensic_reports", "smtp_tls_reports"):
                if out.get(key):
                    other[key.replace("_reports", "")] = len(out[key])
        else:
            res["route"] = "parse_report_file"
            func = parsedmarc.parse_report_file
            out = func(path, **_kw(func, BASE_CONFIG))
            rtype = out.get("report_type")
            if rtype == "aggregate":
                aggregate = [out["report"]]
            else:
                other[str(rtype)] = 1
    except BaseException as e:  # noqa: BLE001  every exception is a verdict
        if isinstance(e, KeyboardInterrupt):
            raise
        res["verdict"] = "reject"
        # The CLI catches every exception of a plain file (parallel.py) but
        # none from get_dmarc_reports_from_mbox(): there, one aborts the
        # whole run before any output is written.
        res["cli_fatal"] = res["route"] == "get_dmarc_reports_from_mbox"
        msg = " ".join(str(e).split())
        if len(msg) > 400:
            msg = msg[:400] + "..."
        res["reason"] = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
        if not isinstance(e, (parsedmarc.ParserError, TimeoutError, MemoryError)):
            res["traceback"] = traceback.format_exc(limit=-3)
    finally:
        if per_file_timeout:
            signal.alarm(0)
    res["seconds"] = round(time.monotonic() - t0, 4)
    res["warnings"] = CAPTURE.lines[:20]
    # parse_aggregate_report_xml() logs this and drops the record, keeping
    # the rest of the report: the report is accepted with fewer messages.
    res["dropped_records"] = sum(1 for w in CAPTURE.lines if w.startswith("Could not parse record"))
    if res["verdict"] is None:
        res["reports"] = len(aggregate)
        for rep in aggregate:
            meta = rep.get("report_metadata") or {}
            if meta.get("timespan_requires_normalization"):
                res["normalized"] = True  # records split per day: more records, same messages
            n, m = _messages(rep)
            res["records"] += n
            res["messages"] += m
        res["other_reports"] = other
        if aggregate:
            res["verdict"] = "accept"
        elif other:
            res["verdict"] = "not_aggregate"
            res["reason"] = "not an aggregate report: " + ", ".join(
                f"{k} x{v}" for k, v in sorted(other.items())
            )
        else:
            res["verdict"] = "reject"
            res["reason"] = (
                "no report found" + (": " + CAPTURE.lines[0] if CAPTURE.lines else "")
            )
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", required=True, help="file with one input path a line")
    ap.add_argument("--out", required=True, help="NDJSON results")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per file (0: none)")
    ap.add_argument("--max-mem", default="8G", help="address-space cap, e.g. 8G (0: none)")
    args = ap.parse_args()

    if args.max_mem and args.max_mem != "0":
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        s = args.max_mem.upper()
        cap = int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.signal(signal.SIGALRM, _timeout)

    with open(args.list, encoding="utf-8", errors="surrogateescape") as f:
        paths = [line.rstrip("\n") for line in f if line.rstrip("\n")]

    t0 = time.monotonic()
    counts = {}
    with open(args.out, "w", encoding="utf-8") as out:
        for path in paths:
            before = len(NET_ATTEMPTS)
            res = one(path, args.timeout)
            res["net_attempts"] = NET_ATTEMPTS[before:]
            counts[res["verdict"]] = counts.get(res["verdict"], 0) + 1
            out.write(json.dumps(res, ensure_ascii=False, default=str) + "\n")
        out.write(
            json.dumps(
                {
                    "summary": {
                        "parsedmarc_version": PD_VERSION,
                        "python": sys.version.split()[0],
                        "files": len(paths),
                        "verdicts": counts,
                        "net_attempts": len(NET_ATTEMPTS),
                        "seconds": round(time.monotonic() - t0, 3),
                    }
                }
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
