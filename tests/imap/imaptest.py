"""imaptest -- what the imap:// source tests share (Python 3 stdlib only).

  Server     a GreenMail server of the test's own (tests/imap/start, stop):
             its URL's parts, an imaplib session as the mailbox's user
  Proxy      a TCP relay between dmarcpipe and the server that keeps every
             command line the client sent (to count logins, to see that a
             run fetched nothing), and can play the server away
  reports()  report files (the bundled samples and part of the corpus)
  message()  a report file as a receiver mails it: an RFC 5322 message with
             the report as a base64 attachment (an .eml file as it is)
  truth()    a plain `dmarcpipe run` over the report files themselves: the
             totals every mail run must equal
  totals()   messages, messages per policy_domain|source_ip, reports, from
             the rollup and report feeds
"""
import collections
import csv
import email.message
import email.utils
import imaplib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
PROC_TIMEOUT = 600  # a run under ASan is many times slower


def log(*a):
    print(os.path.basename(sys.argv[0]) + ":", *a, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def check(ok, what, detail=""):
    if not ok:
        fail(what + (": " + detail if detail else ""))
    log("ok: " + what)


# ---- the server ----------------------------------------------------------------------------


class Server:
    """A GreenMail of its own in `work`/server, stopped by stop()."""

    def __init__(self, work, password=None):
        self.dir = os.path.join(work, "server")
        env = dict(os.environ, TMPDIR=work)
        if password:
            env["DP_IMAP_PASSWORD"] = password
        p = subprocess.run([os.path.join(HERE, "start"), "--dir", self.dir], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        if p.returncode != 0:
            fail("tests/imap/start failed:\n" + p.stderr[-3000:])
        self.env = env
        url = p.stdout.strip().splitlines()[-1]
        m = re.fullmatch(r"imap://([^:@]+):([^@]+)@127\.0\.0\.1:(\d+)/INBOX", url)
        if not m:
            fail("tests/imap/start printed no imap://USER:PASS@127.0.0.1:PORT/INBOX line")
        self.user, self.password, self.port = m[1], m[2], int(m[3])

    def url(self, mailbox="INBOX", query="", port=None):
        return "imap://%s@127.0.0.1:%d/%s%s" % (self.user, port or self.port, mailbox, query)

    def session(self):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        c.login(self.user, self.password)
        return c

    def stop(self):
        subprocess.run([os.path.join(HERE, "stop"), "--dir", self.dir], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


def append(srv, mailbox, messages):
    """APPENDs the messages (bytes) to mailbox (created when missing)."""
    c = srv.session()
    try:
        c.create(mailbox) if mailbox != "INBOX" else None
        for m in messages:
            typ, data = c.append(mailbox, None, None, m)
            if typ != "OK":
                fail("APPEND to %s: %r" % (mailbox, data))
    finally:
        c.logout()


def uids(srv, mailbox):
    """The UIDs in mailbox, [] when it does not exist."""
    c = srv.session()
    try:
        typ, _ = c.select('"%s"' % mailbox)
        if typ != "OK":
            return []
        typ, data = c.uid("SEARCH", None, "ALL")
        return [int(x) for x in data[0].split()] if typ == "OK" and data and data[0] else []
    finally:
        c.logout()


def flags(srv, mailbox):
    """UID -> set of flags, for every message of mailbox."""
    c = srv.session()
    out = {}
    try:
        c.select('"%s"' % mailbox)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        for item in data or []:
            if not item:
                continue
            line = item.decode() if isinstance(item, bytes) else item[0].decode()
            m = re.search(r"UID (\d+)", line)
            f = re.search(r"FLAGS \(([^)]*)\)", line)
            if m and f:
                out[int(m[1])] = set(f[1].split())
    finally:
        c.logout()
    return out


def status_validity(srv, mailbox):
    c = srv.session()
    try:
        typ, data = c.status('"%s"' % mailbox, "(UIDVALIDITY)")
        return int(re.search(rb"UIDVALIDITY (\d+)", data[0])[1])
    finally:
        c.logout()


# ---- a relay that sees the commands ----------------------------------------------------------


class Proxy:
    """Listens on 127.0.0.1:port and relays to the server; `commands` holds
    every line the clients sent, in order."""

    def __init__(self, target_port, bind="127.0.0.1", tls=None, hide=()):
        self.target = target_port
        self.hide = [c.encode() for c in hide]  # capabilities taken out of the server's CAPABILITY lines
        self.tls = tls  # an ssl.SSLContext: the relay is a TLS server, as on an imaps port
        self.down = False  # set: connections are cut, new ones closed at once
        self.open = []
        self.commands = []
        self.connections = 0
        self.attempts = 0  # connections asked for, the refused ones too
        self.handshake_errors = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.attempts += 1
            if self.down:
                client.close()
                continue
            if self.tls:
                try:
                    client.settimeout(10)
                    client = self.tls.wrap_socket(client, server_side=True)
                    client.settimeout(None)
                except (OSError, ValueError) as e:
                    with self.lock:
                        self.handshake_errors.append(str(e))
                    client.close()
                    continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += 1
                self.open += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _capabilities(self, line):
        if not (line.startswith(b"* CAPABILITY ") or line.startswith(b"* OK [CAPABILITY ")):
            return line
        for c in self.hide:
            line = re.sub(rb" " + re.escape(c) + rb"(?=[ \]\r])", b"", line)
        return line

    def _pipe(self, src, dst, from_client):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client:
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    with self.lock:
                        self.commands.extend(l.rstrip(b"\r").decode("utf-8", "replace") for l in lines)
                elif self.hide:
                    # whole lines only, so that a CAPABILITY line is seen whole
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    if not lines:
                        continue
                    data = b"".join(self._capabilities(l) + b"\n" for l in lines)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_down(self, down):
        """The server away (every connection cut, new ones closed at once), or back."""
        self.down = down
        if down:
            with self.lock:
                socks, self.open = self.open, []
            for sk in socks:
                try:
                    sk.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def count(self, pattern):
        with self.lock:
            return sum(1 for c in self.commands if re.search(pattern, c))

    def clear(self):
        with self.lock:
            self.commands.clear()

    def close(self):
        self.sock.close()


# ---- reports and messages ----------------------------------------------------------------------


def reports(corpus_every=5, max_bytes=100000):
    """The bundled samples, and every `corpus_every`-th corpus file (in
    MANIFEST order) under max_bytes: accepted and rejected ones."""
    files = sorted(os.path.join(DATA, "samples", n) for n in os.listdir(os.path.join(DATA, "samples")))
    with open(os.path.join(DATA, "corpus", "MANIFEST.tsv")) as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if int(r["bytes"]) < max_bytes]
    files += [os.path.join(DATA, "corpus", r["path"]) for r in rows[::corpus_every]]
    return files


TYPES = {".xml": ("application", "xml"), ".gz": ("application", "gzip"), ".zip": ("application", "zip"),
         ".zst": ("application", "zstd")}


def message(path, n=0):
    """The report file as mail: a message (.eml) as it is, any other file
    as the base64 attachment of a message, as receivers send reports."""
    with open(path, "rb") as f:
        data = f.read()
    if re.match(rb"(From |[A-Za-z][A-Za-z0-9-]*:)", data):  # mail already (.eml, and some .txt)
        return data
    m = email.message.EmailMessage()
    m["From"] = "noreply-dmarc@example.net"
    m["To"] = "dmarc@example.org"
    m["Subject"] = "Report Domain: example.org Submitter: example.net Report-ID: %d" % n
    m["Date"] = email.utils.formatdate(1700000000 + n)
    m["Message-ID"] = "<report-%d@example.net>" % n
    m.set_content("This is an aggregate report.\n")
    ext = os.path.splitext(path)[1].lower()
    maintype, subtype = TYPES.get(ext, ("application", "octet-stream"))
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=os.path.basename(path))
    return m.as_bytes()


def no_report(n=0):
    """A message with no report in it: it is rejected, and quarantined."""
    m = email.message.EmailMessage()
    m["From"] = "someone@example.net"
    m["To"] = "dmarc@example.org"
    m["Subject"] = "hello %d" % n
    m["Message-ID"] = "<hello-%d@example.net>" % n
    m.set_content("Not a report, only a note.\n")
    return m.as_bytes()


# ---- running dmarcpipe and the truth -----------------------------------------------------------


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


def truth(dmarcpipe, files, work):
    """A plain run over copies of the report files: (messages, per key,
    reports, rejected inputs)."""
    d = os.path.join(work, "truth")
    os.makedirs(os.path.join(d, "in"))
    for i, p in enumerate(files):
        shutil.copyfile(p, os.path.join(d, "in", "%03d-%s" % (i, os.path.basename(p))))
    r = run(dmarcpipe, d, [os.path.join(d, "in")])
    if r.returncode not in (0, 1):
        fail("the truth run exited %d:\n%s" % (r.returncode, r.stderr[-2000:]))
    m = re.search(r"\((\d+) rejected\)", r.stderr)
    t = totals(os.path.join(d, "rollups.ndjson"), os.path.join(d, "reports.ndjson"))
    return t + (int(m[1]) if m else -1,)


def run(dmarcpipe, outdir, sources, *opts, env=None, state=None, timeout=PROC_TIMEOUT):
    """`dmarcpipe run` in outdir: rollups.ndjson, reports.ndjson,
    quarantine/; returns the CompletedProcess (text)."""
    os.makedirs(outdir, exist_ok=True)
    args = [dmarcpipe, "run", "--sink", "file:" + os.path.join(outdir, "rollups.ndjson"), "--reports",
            os.path.join(outdir, "reports.ndjson"), "--quarantine", os.path.join(outdir, "quarantine"),
            "--workers", "3", "--shards", "2"]
    if state:
        args += ["--state", state]
    args += list(opts) + list(sources)
    p = subprocess.run(args, cwd=outdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, errors="replace", timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    sanitizer_free(p.stderr, " ".join(args[1:3]))
    return p


def sanitizer_free(stderr, what):
    """Fails on a sanitizer's report (ASan, UBSan, LSan, TSan): an ASan
    build exits 1, as a run with a rejected input does."""
    m = re.search(r".*(AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:).*", stderr)
    if m:
        fail("a sanitizer report in %s: %s\n%s" % (what, m[0], stderr[-4000:]))


def same_totals(got, want, what):
    total, per_key, n_reports = got[:3]
    w_total, w_keys, w_reports = want[:3]
    bad = sorted(k for k in set(per_key) | set(w_keys) if per_key.get(k, 0) != w_keys.get(k, 0))
    check(total == w_total and not bad and n_reports == w_reports,
          "%s: %d messages over %d keys, %d reports, equal to the truth" % (what, total, len(per_key), n_reports),
          "got %d messages, %d reports; truth %d messages, %d reports; keys differing: %s"
          % (total, n_reports, w_total, w_reports, bad[:10]))


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


# ---- Dovecot, for a second server --------------------------------------------------------------

DOVECOT = "/usr/sbin/dovecot"

DOVECOT_CONF = """# written by tests/imap/imaptest.py: a throw-away Dovecot for one test
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
last_valid_uid = 0
mail_location = maildir:{d}/mail/%u
default_login_user = {login}
default_internal_user = {user}
default_internal_group = {group}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    user = {user}
  }}
}}
"""


class Dovecot:
    """Debian's Dovecot (dovecot-imapd) on a free port, as the user running
    the test, with a config, mail and logs of its own in `work`/dovecot:
    the same interface as Server."""

    def __init__(self, work):
        import grp
        import pwd
        import secrets
        self.dir = os.path.join(work, "dovecot")
        os.makedirs(os.path.join(self.dir, "mail"))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.user, self.password = "dmarc", secrets.token_urlsafe(18)
        # As root, Dovecot's own users (Debian's dovecot-core makes them): its
        # login processes refuse to run as root.  As anyone else, that user.
        me = pwd.getpwuid(os.getuid())
        login = pwd.getpwnam("dovenull") if os.getuid() == 0 else me
        internal = pwd.getpwnam("dovecot") if os.getuid() == 0 else me
        if os.getuid() == 0:
            os.chmod(work, 0o711)  # the login processes reach the sockets below
            os.chmod(self.dir, 0o755)
            os.chown(os.path.join(self.dir, "mail"), internal.pw_uid, internal.pw_gid)
        with open(os.path.join(self.dir, "users"), "w") as f:
            os.fchmod(f.fileno(), 0o644)  # read by the auth process
            f.write("%s:{PLAIN}%s\n" % (self.user, self.password))
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(d=self.dir, port=self.port, login=login.pw_name, user=internal.pw_name,
                                        uid=internal.pw_uid, gid=internal.pw_gid,
                                        group=grp.getgrgid(internal.pw_gid).gr_name))
        # the daemon inherits its stdout: a file, not a pipe, or run() would wait for it
        with open(os.path.join(self.dir, "start.log"), "w") as out:
            rc = subprocess.run([DOVECOT, "-c", self.conf], stdout=out, stderr=subprocess.STDOUT, timeout=60).returncode
        if rc != 0:
            with open(os.path.join(self.dir, "start.log")) as f:
                fail("dovecot did not start: " + f.read()[-2000:])

        def ready():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as c:
                    return c.recv(100).startswith(b"* OK")
            except OSError:
                return False
        if not wait_for(ready, 30):
            self.stop()
            fail("dovecot is not answering on port %d:\n%s" % (self.port, self.log()[-2000:]))

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    url = Server.url
    session = Server.session

    def stop(self):
        pid = None
        try:
            with open(os.path.join(self.dir, "run", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pass
        if pid:
            try:
                os.kill(pid, 15)
            except OSError:
                pass
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), 15)
