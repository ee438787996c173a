"""s3test -- what the s3:// source tests share (Python 3 stdlib only).

  Server     an S3Proxy of the test's own (tests/s3/start, stop), objects
             as plain files under DIR/data/BUCKET/KEY; put() writes one
             there directly (with the MD5 S3Proxy keeps as its ETag, in the
             xattr user.user.content-md5), atomically, so 10,000 objects
             take a second rather than 10,000 PUTs
  Proxy      an HTTP relay on loopback between dmarcpipe and the server,
             one request per connection: it answers 500 InternalError to
             the first N requests (or all), cuts one GET's body mid-way,
             or sends GET bodies slowly
  report()   a small RFC 7489 report with known totals
  truth()    a plain `dmarcpipe run` over the same report files
  totals()   messages, messages per policy_domain|source_ip, reports
"""
import collections
import hashlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
sys.path.insert(0, os.path.join(HERE, "..", "aggregate"))
import dptest  # noqa: E402  (report_head, record_xml, REPORT_TAIL)

PROC_TIMEOUT = 900  # a run under ASan is many times slower


def log(*a):
    print(os.path.basename(sys.argv[0]) + ":", *a, flush=True)


FAILED = []


def check(ok, what, detail=""):
    if ok:
        log("ok: " + what)
    else:
        log("FAIL: " + what + (": " + detail if detail else ""))
        FAILED.append(what)
    return ok


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


# ---- the server ------------------------------------------------------------------------------


class Server:
    """An S3Proxy of its own in `work`/server, stopped by stop()."""

    def __init__(self, work):
        self.dir = os.path.join(work, "server")
        self.env = dict(os.environ, TMPDIR=work)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            self.env.pop(k, None)
        p = subprocess.run([os.path.join(HERE, "start"), "--dir", self.dir], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        if p.returncode != 0:
            fail("tests/s3/start failed:\n" + p.stderr[-3000:])
        self.endpoint = p.stdout.strip().splitlines()[-1]
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self.access_key = open(os.path.join(self.dir, "access_key")).read().strip()
        self.secret_key = open(os.path.join(self.dir, "secret_key")).read().strip()
        self.staging = os.path.join(work, "staging")
        os.makedirs(self.staging, exist_ok=True)
        self.n_staged = 0

    def creds(self, secret=None):
        """The environment a run signs with."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": secret or self.secret_key}

    def uri(self, bucket, prefix, query="", port=None):
        ep = "http://127.0.0.1:%d" % (port or self.port)
        return "s3://%s/%s?endpoint=%s&region=us-east-1&path_style=1%s" % (bucket, prefix, ep, query)

    def bucket_dir(self, bucket):
        return os.path.join(self.dir, "data", bucket)

    def make_bucket(self, bucket):
        os.makedirs(self.bucket_dir(bucket), exist_ok=True)

    def put(self, bucket, key, data):
        """The object, written where S3Proxy keeps it: staged beside and renamed
        into place, so a listing never sees half of it."""
        path = os.path.join(self.bucket_dir(bucket), key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.n_staged += 1
        tmp = os.path.join(self.staging, "obj-%d" % self.n_staged)
        with open(tmp, "wb") as f:
            f.write(data)
        os.setxattr(tmp, "user.user.content-md5", hashlib.md5(data).digest())
        os.rename(tmp, path)

    def put_file(self, bucket, key, src_path, md5):
        """A large object already written at src_path (in the staging dir), with its MD5."""
        path = os.path.join(self.bucket_dir(bucket), key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.setxattr(src_path, "user.user.content-md5", md5)
        os.rename(src_path, path)

    def keys(self, bucket, prefix=""):
        """The objects in the bucket (its files), sorted."""
        root = self.bucket_dir(bucket)
        out = []
        for d, _, files in os.walk(root):
            for n in files:
                k = os.path.relpath(os.path.join(d, n), root)
                if k.startswith(prefix):
                    out.append(k)
        return sorted(out)

    def stop(self):
        subprocess.run([os.path.join(HERE, "stop"), "--dir", self.dir], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


# ---- a relay that can fail ----------------------------------------------------------------------


class Proxy:
    """Relays HTTP to the server, one request per connection (the request is
    sent on with Connection: close, an unsigned header).  fail_first: that
    many requests answered 500 InternalError; fail_all: every one; cut_once:
    the first GET of an object whose body passes that many bytes is cut
    there; drop_ranged: a GET with a Range (a resumption) closed unanswered; delay: seconds slept per 16 KiB of a GET's body."""

    def __init__(self, target_port, fail_first=0, fail_all=False, cut_once=0, delay=0.0, drop_ranged=False):
        self.target = target_port
        self.drop_ranged = drop_ranged
        self.fail_first, self.fail_all, self.cut_once, self.delay = fail_first, fail_all, cut_once, delay
        self.lock = threading.Lock()
        self.requests = []  # (method, path, status sent), as each ends
        self.started = []  # (method, path), as each arrives
        self.failed = 0
        self.cuts = 0
        self.ranges = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                d = c.recv(65536)
                if not d:
                    return
                head += d
            head, rest = head.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            method, path = lines[0].split(b" ")[:2]
            is_get = method == b"GET" and b"list-type" not in path
            with self.lock:
                self.started.append((method.decode(), path.decode()))
            for l in lines:
                if l.lower().startswith(b"range:"):
                    with self.lock:
                        self.ranges.append(l.decode())
            with self.lock:
                fault = self.fail_all or self.failed < self.fail_first
                if fault:
                    self.failed += 1
                cut = is_get and self.cut_once and self.cuts == 0
                drop = self.drop_ranged and any(l.lower().startswith(b"range:") for l in lines)
            if drop:
                return  # closed without an answer
            if fault:
                body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                c.sendall(b"HTTP/1.1 500 Server Error\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
                          b"Connection: close\r\n\r\n%s" % (len(body), body))
                with self.lock:
                    self.requests.append((method.decode(), path.decode(), 500))
                return
            kept = [l for l in lines if not l.lower().startswith(b"connection:")]
            u = socket.create_connection(("127.0.0.1", self.target))
            u.sendall(b"\r\n".join(kept) + b"\r\nConnection: close\r\n\r\n" + rest)
            # a request body (none here but a PUT's): relay what else comes, in the background
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            sent, status = 0, None
            while True:
                d = u.recv(16384)
                if not d:
                    break
                if status is None:
                    m = re.match(rb"HTTP/1\.\d (\d+)", d)
                    status = int(m[1]) if m else 0
                if cut and sent + len(d) > self.cut_once:
                    c.sendall(d[: self.cut_once - sent])
                    with self.lock:
                        self.cuts += 1
                    c.shutdown(socket.SHUT_RDWR)
                    break
                c.sendall(d)
                sent += len(d)
                if is_get and self.delay:
                    time.sleep(self.delay)
            with self.lock:
                self.requests.append((method.decode(), path.decode(), status))
            u.close()
        except OSError:
            pass
        finally:
            # shutdown first: the request pump blocked in recv() on it would
            # otherwise keep the connection open, and the answer unended
            for how in (c.shutdown, c.close):
                try:
                    how(socket.SHUT_RDWR) if how == c.shutdown else how()
                except OSError:
                    pass

    @staticmethod
    def _pump(c, u):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                u.sendall(d)
        except OSError:
            pass

    def close(self):
        self.sock.close()


# ---- reports ----------------------------------------------------------------------------------------


def report(n, records=2, seed=0):
    """Report n: `records` records from a small pool of IPs and domains."""
    rnd = random.Random(n * 7919 + seed)
    domain = "d%d.example" % (n % 17)
    recs = [("192.0.2.%d" % rnd.randrange(1, 60), rnd.randrange(1, 50)) for _ in range(records)]
    begin = 1700000000 + (n % 30) * 86400
    return dptest.report_xml("org%d.example" % (n % 5), "r-%d-%d" % (seed, n), domain, begin, begin + 86399,
                             recs).encode()


def samples():
    """The bundled samples (report files of every kind, one failure report)."""
    d = os.path.join(DATA, "samples")
    return [(n, open(os.path.join(d, n), "rb").read()) for n in sorted(os.listdir(d)) if not n.startswith(".")]


def totals(rollups_path, reports_path=None):
    per_key = collections.Counter()
    total = 0
    if os.path.exists(rollups_path):
        with open(rollups_path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    per_key["%s|%s" % (r["policy_domain"] or "", r["source_ip"] or "")] += r["messages"]
                    total += r["messages"]
    n_reports = 0
    if reports_path and os.path.exists(reports_path):
        with open(reports_path) as f:
            n_reports = sum(1 for line in f if line.strip())
    return total, per_key, n_reports


def out_totals(out):
    return totals(os.path.join(out, "rollups.ndjson"), os.path.join(out, "reports.ndjson"))


def same_totals(got, want, what):
    total, per_key, n_reports = got[:3]
    w_total, w_keys, w_reports = want[:3]
    bad = sorted(k for k in set(per_key) | set(w_keys) if per_key.get(k, 0) != w_keys.get(k, 0))
    return check(total == w_total and not bad and n_reports == w_reports,
                 "%s: %d messages over %d keys, %d reports, equal to the truth" % (what, total, len(per_key), n_reports),
                 "got %d messages, %d reports; truth %d messages, %d reports; keys differing: %s"
                 % (total, n_reports, w_total, w_reports, bad[:10]))


def run(dmarcpipe, outdir, sources, *opts, env=None, state=None, timeout=PROC_TIMEOUT, workers=2):
    """`dmarcpipe run` in outdir: rollups.ndjson, reports.ndjson, quarantine/."""
    os.makedirs(outdir, exist_ok=True)
    args = [dmarcpipe, "run", "--sink", "file:" + os.path.join(outdir, "rollups.ndjson"), "--reports",
            os.path.join(outdir, "reports.ndjson"), "--quarantine", os.path.join(outdir, "quarantine"),
            "--workers", str(workers), "--shards", "2"]
    if state:
        args += ["--state", state]
    args += list(opts) + list(sources)
    p = subprocess.run(args, cwd=outdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, errors="replace", timeout=timeout, env=dict(os.environ, **(env or {})))
    sanitizer_free(p.stderr, " ".join(args[1:3]))
    return p


def sanitizer_free(stderr, what):
    m = re.search(r".*(AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:).*", stderr)
    if m:
        fail("a sanitizer report in %s: %s\n%s" % (what, m[0], stderr[-4000:]))


def truth(dmarcpipe, files, work, name="truth"):
    """A plain run over the report files, written to work/NAME/in: (messages,
    per key, reports, rejected inputs)."""
    d = os.path.join(work, name)
    os.makedirs(os.path.join(d, "in"))
    for i, (n, data) in enumerate(files):
        with open(os.path.join(d, "in", "%05d-%s" % (i, os.path.basename(n))), "wb") as f:
            f.write(data)
    r = run(dmarcpipe, d, [os.path.join(d, "in")])
    if r.returncode not in (0, 1):
        fail("the truth run exited %d:\n%s" % (r.returncode, r.stderr[-2000:]))
    m = re.search(r"\((\d+) rejected\)", r.stderr)
    return out_totals(d) + (int(m[1]) if m else -1,)


def summary(stderr):
    """inputs, rejected inputs and messages of a run's summary (None when absent)."""
    m = re.search(r"(\d+) inputs \((\d+) rejected\)", stderr)
    n = re.search(r"messages: (\d+)", stderr)
    return (int(m[1]) if m else None, int(m[2]) if m else None, int(n[1]) if n else None)


def wait_for(cond, timeout, step=0.25):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()
