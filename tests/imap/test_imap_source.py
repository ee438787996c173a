#!/usr/bin/env python3
"""The imap:// source against a real IMAP server (GreenMail, tests/imap/start).

Every mode mails report files into a mailbox (APPEND, as a delivery agent
files them) and checks `dmarcpipe run imap://...` against the truth: a plain
run over the same report files, equal in total messages, messages per
policy_domain|source_ip, and accepted reports.

  batch        move mode (?processed=Processed&quarantine=Quarantine): exact
               totals; INBOX empty after, each counted message in Processed,
               each rejected one (a message with no report among them) in
               Quarantine and in the local quarantine with its reason; a
               second run counts nothing.  Seen mode (no processed=) on
               another mailbox: exact totals, every message \\Seen, the
               rejected ones \\Flagged; a second run lists nothing and sends
               no FETCH nor SEARCH (the watermark).  A server without MOVE
               (a relay hides it): UID COPY, \\Deleted and UID EXPUNGE; without
               UIDPLUS either: the originals left \\Deleted, said once
  follow       `--follow --poll 1` while messages arrive in three waves; the
               server away for 8 s (a relay cuts every connection): said
               once, and its end once, no storm of logins; the follower
               killed with SIGKILL once and started again, then SIGTERM:
               exit 0, INBOX empty, exact totals
  uidvalidity  a run (seen mode), then the mailbox renamed away and made again
               (a new UIDVALIDITY) with new reports first and the old ones
               after, so the old watermark would hide new reports: the next
               run says the mailbox was rebuilt, reads everything again,
               counts the old reports as duplicates: exact totals
  password     a wrong password: a batch run ends non-zero with the one line
               "login refused: wrong user name or password", and no password
               in any output; a password in the URI is refused, masked; a
               follower with a wrong password (--imap-password-file) logs it
               once and logs in at most 3 times in 10 s; the password is in
               neither its command line nor its environment; the right
               password from the file counts exactly
  xoauth2      --imap-token-file: AUTHENTICATE XOAUTH2 and no LOGIN, exact
               totals; a wrong token is refused with one clear line, the
               token in no output; a follower started with a wrong token
               logs in once the file holds a good one (read again at each
               login) and counts exactly
  tls          imap:// to an address that is not loopback, where the server
               offers no STARTTLS: refused before any LOGIN, saying to use
               imaps://; imaps:// to a certificate no CA signed: refused,
               the certificate named, no LOGIN sent; and with that
               certificate in cafile=: exact totals, over TLS
  dovecot      batch and uidvalidity again, against Debian's Dovecot
               (dovecot-imapd, run with a config of its own on a free port)
  crash        (the fault-injection build, and a Kafka broker of its own) the
               run is killed (SIGKILL) at its state commit, after the Kafka
               transaction committed and before any message was moved: the
               messages are all still in INBOX and Kafka holds the truth;
               the restart moves them and counts nothing twice

usage: test_imap_source.py --dmarcpipe BIN --mode MODE
"""
import argparse
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imaptest as T  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def moved_query():
    return "?processed=Processed&quarantine=Quarantine"


def reasons(qdir):
    """The local quarantine: copies (with a .reason beside each)."""
    names = os.listdir(qdir) if os.path.isdir(qdir) else []
    copies = sorted(n for n in names if not n.endswith(".reason") and not n.startswith("."))
    return copies, [n for n in copies if n + ".reason" in names]


def mode_batch(dp, work, make=T.Server):
    srv = make(work)
    try:
        files = T.reports()
        msgs = [T.message(p, i) for i, p in enumerate(files)] + [T.no_report()]
        want = T.truth(dp, files, work)
        want_rejected = want[3] + 1  # and the message with no report
        T.log("%d messages: truth %d messages, %d reports, %d rejected inputs + 1 with no report"
              % (len(msgs), want[0], want[2], want[3]))
        env = {"DMARCPIPE_IMAP_PASSWORD": srv.password}

        # move mode
        T.append(srv, "INBOX", msgs)
        out, state = os.path.join(work, "move"), os.path.join(work, "state-move")
        r = T.run(dp, out, [srv.url("INBOX", moved_query())], env=env, state=state)
        T.check(r.returncode == 1, "move mode: exit 1 (some input rejected)", "exit %d:\n%s" % (r.returncode, r.stderr[-3000:]))
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), want, "move mode")
        inputs, rejected, _ = T.summary(r.stderr)
        T.check(inputs == len(msgs) and rejected == want_rejected, "move mode: %d inputs, %d rejected" % (inputs, rejected))
        T.check(T.uids(srv, "INBOX") == [], "move mode: INBOX is empty after the run")
        processed, quarantined = T.uids(srv, "Processed"), T.uids(srv, "Quarantine")
        T.check(len(processed) == len(msgs) - want_rejected and len(quarantined) == want_rejected,
                "move mode: %d messages in Processed, %d in Quarantine" % (len(processed), len(quarantined)))
        copies, with_reason = reasons(os.path.join(out, "quarantine"))
        T.check(len(copies) == want_rejected and copies == with_reason,
                "move mode: the local quarantine holds %d copies, each with its reason" % len(copies), str(copies))
        with open(os.path.join(out, "quarantine", copies[0] + ".reason")) as f:
            T.check('"input":"imap:dmarc@127.0.0.1:' in f.read(), "a reason names the message by its imap: key")
        before = os.path.getsize(out + "/rollups.ndjson")
        r = T.run(dp, out, [srv.url("INBOX", moved_query())], env=env, state=state)
        inputs, _, messages = T.summary(r.stderr)
        T.check(r.returncode == 0 and inputs == 0 and messages == 0
                and os.path.getsize(out + "/rollups.ndjson") == before,
                "move mode: a second run counts nothing", r.stderr[-2000:])

        # seen mode, another mailbox, through a relay that sees the commands
        T.append(srv, "Seen", msgs)
        proxy = T.Proxy(srv.port)
        out, state = os.path.join(work, "seen"), os.path.join(work, "state-seen")
        r = T.run(dp, out, [srv.url("Seen", port=proxy.port)], env=env, state=state)
        T.check(r.returncode == 1, "seen mode: exit 1", "exit %d:\n%s" % (r.returncode, r.stderr[-3000:]))
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), want, "seen mode")
        fl = T.flags(srv, "Seen")
        T.check(len(fl) == len(msgs) and all("\\Seen" in f for f in fl.values()),
                "seen mode: all %d messages stay, flagged \\Seen" % len(fl))
        flagged = [u for u, f in fl.items() if "\\Flagged" in f]
        T.check(len(flagged) == want_rejected, "seen mode: the %d rejected ones are \\Flagged" % len(flagged))
        T.check(T.uids(srv, "Processed") == processed, "seen mode moves nothing")
        proxy.clear()
        r = T.run(dp, out, [srv.url("Seen", port=proxy.port)], env=env, state=state)
        inputs, _, messages = T.summary(r.stderr)
        T.check(r.returncode == 0 and inputs == 0 and messages == 0, "seen mode: a second run counts nothing",
                r.stderr[-2000:])
        T.check(proxy.count(r"^\S+ STATUS ") >= 1 and proxy.count(r"FETCH") == 0 and proxy.count(r"SEARCH") == 0,
                "seen mode: the second run asks STATUS, and neither searches nor fetches",
                "\n".join(c for c in proxy.commands if "LOGIN" not in c))
        proxy.close()

        # a server without MOVE: UID COPY, \\Deleted, UID EXPUNGE (UIDPLUS)
        for hide, mailbox in ((["MOVE"], "Copy"), (["MOVE", "UIDPLUS"], "Copy2")):
            T.append(srv, mailbox, msgs)
            proxy = T.Proxy(srv.port, hide=hide)
            out, state = os.path.join(work, mailbox), os.path.join(work, "state-" + mailbox)
            query = "?processed=%s-done&quarantine=%s-bad" % (mailbox, mailbox)
            r = T.run(dp, out, [srv.url(mailbox, query, port=proxy.port)], env=env, state=state)
            what = "without " + " and ".join(hide)
            T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), want, what)
            T.check(proxy.count(r"^\S+ UID MOVE ") == 0 and proxy.count(r"^\S+ UID COPY ") == len(msgs),
                    what + ": UID COPY for each message, never UID MOVE")
            T.check(len(T.uids(srv, mailbox + "-done")) == len(msgs) - want_rejected
                    and len(T.uids(srv, mailbox + "-bad")) == want_rejected, what + ": copied to the folders")
            left = T.flags(srv, mailbox)
            if "UIDPLUS" in hide:
                T.check(len(left) == len(msgs) and all("\\Deleted" in f for f in left.values())
                        and r.stderr.count("neither MOVE nor UIDPLUS") == 1,
                        what + ": the originals are left \\Deleted, and that is said once", r.stderr[-2000:])
                r = T.run(dp, out, [srv.url(mailbox, query, port=proxy.port)], env=env, state=state)
                T.check(T.summary(r.stderr)[0] == 0, what + ": a second run lists nothing")
            else:
                T.check(not left and proxy.count(r"^\S+ UID EXPUNGE ") == len(msgs),
                        what + ": each original expunged by UID EXPUNGE")
            proxy.close()
    finally:
        srv.stop()


def follower(dp, out, state, url, env, errpath, *extra):
    args = [dp, "run", "--follow", "--poll", "1", "--flush-interval", "1", "--workers", "3", "--shards", "2",
            "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports", os.path.join(out, "reports.ndjson"),
            "--quarantine", os.path.join(out, "quarantine"), "--state", state] + list(extra) + [url]
    os.makedirs(out, exist_ok=True)
    with open(errpath, "a") as err:
        p = subprocess.Popen(args, cwd=out, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             env=dict(os.environ, **env))
    p.errpath = errpath
    return p


def stop(p, what):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        T.fail(what + ": did not stop within 60 s of SIGTERM")
    T.check(rc == 0, what + ": SIGTERM: exit 0", "exit %d" % rc)
    with open(p.errpath, errors="replace") as f:
        T.sanitizer_free(f.read(), what)


def mode_follow(dp, work):
    srv = T.Server(work)
    try:
        files = T.reports()
        msgs = [T.message(p, i) for i, p in enumerate(files)] + [T.no_report()]
        want = T.truth(dp, files, work)
        env = {"DMARCPIPE_IMAP_PASSWORD": srv.password}
        out, state, err = os.path.join(work, "out"), os.path.join(work, "state"), os.path.join(work, "follow.err")
        proxy = T.Proxy(srv.port)
        url = srv.url("INBOX", moved_query(), port=proxy.port)
        third = len(msgs) // 3
        waves = [msgs[:third], msgs[third:2 * third], msgs[2 * third:]]
        p = follower(dp, out, state, url, env, err)
        T.append(srv, "INBOX", waves[0])
        T.check(T.wait_for(lambda: T.uids(srv, "INBOX") == [], 60), "wave 1 (%d messages) taken" % len(waves[0]))

        # the server away for 8 s while wave 2 arrives
        proxy.set_down(True)
        attempts = proxy.attempts
        T.append(srv, "INBOX", waves[1])
        time.sleep(8)
        attempts = proxy.attempts - attempts
        proxy.set_down(False)
        T.check(T.wait_for(lambda: T.uids(srv, "INBOX") == [], 60), "wave 2 taken once the server is back")
        with open(err) as f:
            text = f.read()
        away = [l for l in text.splitlines() if "cannot reach the server" in l]
        back = [l for l in text.splitlines() if "the server answers again" in l]
        T.check(len(away) == 1 and len(back) == 1, "the outage is said once, and its end once",
                "\n".join(away + back) or text[-2000:])
        # polls at 0 and 5 s (then 15 s), each a transfer tried on up to 3
        # connections; polling every second would be 24
        T.check(1 <= attempts <= 9, "%d connections tried during the 8 s away: it backs off" % attempts)
        T.log(away[0])

        T.append(srv, "INBOX", waves[2])
        time.sleep(random.uniform(1.0, 2.5))
        p.kill()  # SIGKILL, wherever it was
        p.wait()
        T.log("follower killed with SIGKILL during wave 3; %d messages still in INBOX" % len(T.uids(srv, "INBOX")))
        p = follower(dp, out, state, url, env, err)
        T.check(T.wait_for(lambda: T.uids(srv, "INBOX") == [], 90), "wave 3 taken by the restarted follower")
        time.sleep(1.5)  # the last acknowledgements' cycle ends
        stop(p, "follower")
        with open(err) as f:
            text = f.read()
        bad = [l for l in text.splitlines()
               if re.search(r"UIDVALIDITY changed|counted, but|login refused|not read through", l)]
        T.check(not bad, "the follower's log says no other IMAP trouble", "\n".join(bad[:10]))
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), want, "follow")
        T.check(len(T.uids(srv, "Processed")) + len(T.uids(srv, "Quarantine")) == len(msgs),
                "every message is in Processed or Quarantine")
        proxy.close()
    finally:
        srv.stop()


def mode_uidvalidity(dp, work, make=T.Server):
    srv = make(work)
    try:
        files = T.reports()
        half = len(files) // 2
        old, new = files[:half], files[half:]
        old_msgs = [T.message(p, i) for i, p in enumerate(old)]
        new_msgs = [T.message(p, half + i) for i, p in enumerate(new)]
        env = {"DMARCPIPE_IMAP_PASSWORD": srv.password}
        out, state = os.path.join(work, "out"), os.path.join(work, "state")
        T.append(srv, "Reports", old_msgs)
        v1 = T.status_validity(srv, "Reports")
        r = T.run(dp, out, [srv.url("Reports")], env=env, state=state)
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), T.truth(dp, old, work + "/t1"),
                      "the first run (%d messages)" % len(old_msgs))
        # the mailbox made again, as a server rebuilt from a backup: renamed
        # away (GreenMail 2.1.8 drops the connection on a DELETE of a folder
        # an earlier session selected) and created anew
        time.sleep(1.2)  # GreenMail's UIDVALIDITY is the creation time, in seconds
        c = srv.session()
        c.rename("Reports", "Reports-old")
        c.logout()
        # new reports first: they take the UIDs the old watermark covers
        T.append(srv, "Reports", new_msgs + old_msgs)
        v2 = T.status_validity(srv, "Reports")
        T.check(v1 != v2, "the mailbox made again has a new UIDVALIDITY (%d, then %d)" % (v1, v2))
        r = T.run(dp, out, [srv.url("Reports")], env=env, state=state)
        T.check(r.returncode in (0, 1), "the second run ends", r.stderr[-3000:])
        lines = [l for l in r.stderr.splitlines() if "UIDVALIDITY changed" in l]
        T.check(len(lines) == 1 and "from %d to %d" % (v1, v2) in lines[0], "one line says the mailbox was rebuilt",
                r.stderr[-2000:])
        inputs, _, _ = T.summary(r.stderr)
        T.check(inputs == len(new_msgs) + len(old_msgs), "every message is read again (%s inputs)" % inputs)
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), T.truth(dp, old + new, work + "/t2"),
                      "both runs")
        T.check(re.search(r"reports:\s+\d+ accepted, \d+ rejected, [1-9]\d* duplicate", r.stderr) is not None,
                "the old reports are counted as duplicates")
    finally:
        srv.stop()


def secret_free(text, secrets, what):
    leaked = [s for s in secrets if s and s in text]
    T.check(not leaked, what + ": no secret in the output")


def mode_password(dp, work):
    srv = T.Server(work)
    wrong = "not-" + srv.password[4:] + "-x"
    try:
        files = T.reports(corpus_every=20)
        msgs = [T.message(p, i) for i, p in enumerate(files)]
        T.append(srv, "INBOX", msgs)
        out, state = os.path.join(work, "out"), os.path.join(work, "state")
        r = T.run(dp, out, [srv.url("INBOX", moved_query())], env={"DMARCPIPE_IMAP_PASSWORD": wrong}, state=state)
        want_line = "dmarcpipe run: imap://dmarc@127.0.0.1:%d/INBOX: login refused: wrong user name or password" % srv.port
        refused = [l for l in r.stderr.splitlines() if "login refused" in l]
        T.check(r.returncode == 3 and refused == [want_line], "a wrong password: exit 3 and the one line '%s'" % want_line,
                "exit %d: %s" % (r.returncode, r.stderr[-2000:]))
        secret_free(r.stdout + r.stderr, [wrong, srv.password], "a wrong password")
        T.check(len(T.uids(srv, "INBOX")) == len(msgs), "nothing was moved")

        r = T.run(dp, out, ["imap://dmarc:%s@127.0.0.1:%d/INBOX" % (srv.password, srv.port)], state=state)
        T.check(r.returncode == 2 and "imap://dmarc:***@" in r.stderr and "DMARCPIPE_IMAP_PASSWORD" in r.stderr,
                "a password in the URI is refused, masked, saying what to do", r.stderr[-1000:])
        secret_free(r.stdout + r.stderr, [srv.password], "a password in the URI")

        # a follower with a wrong password, through a relay that counts logins
        proxy = T.Proxy(srv.port)
        pwfile = os.path.join(work, "password")
        with open(pwfile, "w") as f:
            f.write(wrong + "\n")
        err = os.path.join(work, "follow.err")
        p = follower(dp, out, state, srv.url("INBOX", moved_query(), port=proxy.port), {}, err,
                     "--imap-password-file", pwfile)
        time.sleep(1.0)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            cmdline = f.read().decode("utf-8", "replace")
        with open("/proc/%d/environ" % p.pid, "rb") as f:
            environ = f.read().decode("utf-8", "replace")
        T.check(wrong not in cmdline and wrong not in environ,
                "the password is in neither the follower's command line nor its environment")
        time.sleep(9.0)
        stop(p, "the follower with a wrong password")
        logins = proxy.count(r"^\S+ (LOGIN|AUTHENTICATE) ")
        T.check(1 <= logins <= 3, "the follower logged in %d times in 10 s (at most 3: it backs off)" % logins)
        with open(err) as f:
            text = f.read()
        refused = [l for l in text.splitlines() if "login refused" in l]
        T.check(len(refused) == 1 and "wrong user name or password" in refused[0],
                "the follower said it once: " + (refused[0] if refused else "(nothing)"), text[-2000:])
        secret_free(text, [wrong, srv.password], "the follower")

        # the right password from the file
        with open(pwfile, "w") as f:
            f.write(srv.password + "\n")
        r = T.run(dp, out, [srv.url("INBOX", moved_query(), port=proxy.port)], "--imap-password-file", pwfile,
                  state=state)
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), T.truth(dp, files, work),
                      "the right password from --imap-password-file")
        secret_free(r.stdout + r.stderr, [srv.password], "a good run")
        proxy.close()
    finally:
        srv.stop()


def mode_xoauth2(dp, work):
    srv = T.Server(work)
    wrong = "ya29.not-a-token-" + srv.password[:6]
    try:
        files = T.reports(corpus_every=20)
        msgs = [T.message(p, i) for i, p in enumerate(files)]
        want = T.truth(dp, files, work)
        T.append(srv, "INBOX", msgs)
        token = os.path.join(work, "token")
        # GreenMail takes the user's password as a valid bearer token
        with open(token, "w") as f:
            f.write(srv.password + "\n")
        proxy = T.Proxy(srv.port)
        env = {"DMARCPIPE_IMAP_PASSWORD": ""}
        out, state = os.path.join(work, "out"), os.path.join(work, "state")
        r = T.run(dp, out, [srv.url("INBOX", moved_query(), port=proxy.port)], "--imap-token-file", token, env=env,
                  state=state)
        T.check(r.returncode in (0, 1), "a run with a token file ends", r.stderr[-2000:])
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), want, "XOAUTH2")
        T.check(proxy.count(r"^\S+ AUTHENTICATE XOAUTH2 ") >= 1 and proxy.count(r"^\S+ LOGIN ") == 0,
                "it logs in with AUTHENTICATE XOAUTH2, never LOGIN")
        secret_free(r.stdout + r.stderr, [srv.password], "XOAUTH2")

        T.append(srv, "Later", msgs)
        with open(token, "w") as f:
            f.write(wrong + "\n")
        r = T.run(dp, out, [srv.url("Later", moved_query())], "--imap-token-file", token, env=env, state=state)
        refused = [l for l in r.stderr.splitlines() if "login refused" in l]
        T.check(r.returncode == 3 and len(refused) == 1 and "the token was not accepted" in refused[0],
                "a wrong token: exit 3 and one line: " + (refused[0] if refused else "(none)"), r.stderr[-2000:])
        secret_free(r.stdout + r.stderr, [wrong, srv.password], "a wrong token")

        # a follower with a wrong token: an outside tool writes a good one
        out2, state2, err = os.path.join(work, "out2"), os.path.join(work, "state2"), os.path.join(work, "follow.err")
        p = follower(dp, out2, state2, srv.url("Later", moved_query()), env, err, "--imap-token-file", token)
        T.wait_for(lambda: "login refused" in open(err).read(), 20)
        tmp = token + ".new"
        with open(tmp, "w") as f:
            f.write(srv.password + "\n")
        os.rename(tmp, token)
        T.check(T.wait_for(lambda: T.uids(srv, "Later") == [], 60),
                "the follower logs in with the new token, unasked, and takes the mailbox")
        time.sleep(1.5)
        stop(p, "the follower")
        T.same_totals(T.totals(out2 + "/rollups.ndjson", out2 + "/reports.ndjson"), want, "the follower, XOAUTH2")
        with open(err) as f:
            text = f.read()
        secret_free(text, [wrong, srv.password], "the follower")
        proxy.close()
    finally:
        srv.stop()


def outward_address():
    """An address of this machine that is not loopback, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the source address
            ip = u.getsockname()[0]
        return None if ip.startswith("127.") or ip == "0.0.0.0" else ip
    except OSError:
        return None


def mode_tls(dp, work):
    srv = T.Server(work)
    try:
        files = T.reports(corpus_every=40)
        T.append(srv, "INBOX", [T.message(p, i) for i, p in enumerate(files)])
        env = {"DMARCPIPE_IMAP_PASSWORD": srv.password}
        out, state = os.path.join(work, "out"), os.path.join(work, "state")
        ip = outward_address()
        if ip:
            relay = T.Proxy(srv.port, bind=ip)
            url = "imap://dmarc@%s:%d/INBOX" % (ip, relay.port)
            r = T.run(dp, out, [url], env=env, state=state)
            line = "dmarcpipe run: imap://dmarc@%s:%d/INBOX: cannot reach the server: the server offers no STARTTLS" % (
                ip, relay.port)
            T.check(r.returncode == 3 and line in r.stderr,
                    "imap:// off loopback to a server without STARTTLS: refused before it logs in", r.stderr[-2000:])
            T.check(relay.attempts >= 1 and relay.count(r"LOGIN|AUTHENTICATE") == 0,
                    "no LOGIN crossed the network (%d commands: %s)" % (len(relay.commands), relay.commands))
            secret_free(r.stdout + r.stderr, [srv.password], "STARTTLS refused")
            relay.close()
        else:
            T.log("skipped: this machine has no address but loopback, for imap:// off loopback")
        # imaps:// to a server whose certificate no CA signed
        key, crt = os.path.join(work, "key.pem"), os.path.join(work, "crt.pem")
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                            "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if p.returncode != 0:
            T.fail("openssl could not make a certificate: " + p.stderr.decode(errors="replace")[-500:])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        relay = T.Proxy(srv.port, tls=ctx)
        r = T.run(dp, out, ["imaps://dmarc@localhost:%d/INBOX" % relay.port], env=env, state=state)
        T.check(r.returncode == 3 and "imaps://dmarc@localhost:%d/INBOX: cannot reach the server" % relay.port in r.stderr
                and "certificate" in r.stderr,
                "imaps:// to a self-signed certificate: refused, the certificate named", r.stderr[-2000:])
        T.check(relay.attempts >= 1 and relay.count(r"LOGIN|AUTHENTICATE") == 0 and relay.handshake_errors,
                "the TLS handshake failed, and no LOGIN was sent", "%s %s" % (relay.commands, relay.handshake_errors))
        secret_free(r.stdout + r.stderr, [srv.password], "imaps refused")
        # the same server with its certificate given in cafile=: TLS from the first byte
        r = T.run(dp, out, ["imaps://dmarc@localhost:%d/INBOX?processed=Processed&cafile=%s" % (relay.port, crt)],
                  env=env, state=state)
        T.check(r.returncode in (0, 1), "imaps:// with cafile= runs", r.stderr[-2000:])
        T.same_totals(T.totals(out + "/rollups.ndjson", out + "/reports.ndjson"), T.truth(dp, files, work),
                      "imaps:// with cafile=")
        T.check(relay.count(r"^\S+ LOGIN ") >= 1 and T.uids(srv, "INBOX") == [],
                "it logged in inside TLS, and moved every message")
        relay.close()
    finally:
        srv.stop()


def mode_dovecot(dp, work):
    """batch and uidvalidity against Debian's Dovecot: a server that speaks
    UID SEARCH N:* and MOVE as production servers do."""
    os.chmod(work, 0o711)  # Dovecot's own users reach its sockets and files below
    for name, mode in (("batch", mode_batch), ("uidvalidity", mode_uidvalidity)):
        d = os.path.join(work, name)
        os.makedirs(d)
        T.log("-- %s, against Dovecot" % name)
        mode(dp, d, make=T.Dovecot)


def kafka_totals(work, bootstrap, topic_rollups, topic_reports):
    def consume(topic):
        p = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-o", "beginning",
                            "-X", "isolation.level=read_committed", "-f", "%s\n"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        if p.returncode != 0:
            T.fail("kcat failed on %s: %s" % (topic, p.stderr[-1000:]))
        return [l for l in p.stdout.splitlines() if l.strip()]
    d = tempfile.mkdtemp(prefix="kafka-", dir=work)
    with open(os.path.join(d, "r"), "w") as f:
        f.write("\n".join(consume(topic_rollups)) + "\n")
    with open(os.path.join(d, "p"), "w") as f:
        f.write("\n".join(consume(topic_reports)) + "\n")
    return T.totals(os.path.join(d, "r"), os.path.join(d, "p"))


def mode_crash(dp, work):
    kdir = os.path.join(work, "kafka")
    p = subprocess.run([os.path.join(HERE, "..", "kafka", "start"), "--dir", kdir], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=300)
    if p.returncode != 0:
        T.fail("tests/kafka/start failed:\n" + p.stderr[-3000:])
    bootstrap = p.stdout.strip().splitlines()[-1]
    srv = T.Server(work)
    try:
        files = T.reports(corpus_every=10)
        msgs = [T.message(p, i) for i, p in enumerate(files)] + [T.no_report()]
        want = T.truth(dp, files, work)
        env = {"DMARCPIPE_IMAP_PASSWORD": srv.password}

        def cmd(name, mailbox):
            return [dp, "run", "--sink", "kafka://%s/%s.rollups" % (bootstrap, name), "--reports-topic",
                    name + ".reports", "--instance-id", name, "--state", os.path.join(work, "state-" + name),
                    "--quarantine", os.path.join(work, "q-" + name), "--workers", "2", "--shards", "2",
                    srv.url(mailbox, moved_query())]

        def run(name, mailbox, extra_env):
            p = subprocess.run(cmd(name, mailbox), cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, errors="replace", timeout=300,
                               env=dict(os.environ, **env, **extra_env))
            T.sanitizer_free(p.stderr, name)
            return p

        # how many state commits a whole run makes: its last is the epoch's
        T.append(srv, "Count", msgs)
        counts = os.path.join(work, "counts")
        r = run("imapcount", "Count", {"DP_FAULT_COUNTS": counts})
        T.check(r.returncode == 1, "the counting run ends", r.stderr[-2000:])
        with open(counts) as f:
            n = int(dict(l.split() for l in f if l.strip())["commit"])
        T.same_totals(kafka_totals(work, bootstrap, "imapcount.rollups", "imapcount.reports"), want, "the counting run")

        T.append(srv, "INBOX", msgs)
        r = run("imapcrash", "INBOX", {"DP_FAULT": "commit:%d:crash" % n})
        T.check(r.returncode == -signal.SIGKILL, "killed at state commit %d (after the Kafka commit)" % n,
                "exit %d:\n%s" % (r.returncode, r.stderr[-2000:]))
        T.check(len(T.uids(srv, "INBOX")) == len(msgs), "no message was moved before the crash")
        T.same_totals(kafka_totals(work, bootstrap, "imapcrash.rollups", "imapcrash.reports"), want,
                      "Kafka after the crash (the epoch committed)")
        r = run("imapcrash", "INBOX", {})
        T.check(r.returncode in (0, 1), "the restart ends", r.stderr[-2000:])
        T.check("already committed by an earlier run" in r.stderr, "the restart finds every message committed",
                r.stderr[-2000:])
        T.same_totals(kafka_totals(work, bootstrap, "imapcrash.rollups", "imapcrash.reports"), want,
                      "Kafka after the restart: nothing counted twice")
        T.check(T.uids(srv, "INBOX") == [], "the restart moved every message out of INBOX")
        n_bad = want[3] + 1  # rejected inputs, and the message with no report
        T.check(len(T.uids(srv, "Processed")) == 2 * (len(msgs) - n_bad) and len(T.uids(srv, "Quarantine")) == 2 * n_bad,
                "Processed and Quarantine hold both mailboxes' messages: the rejected ones, whose acknowledgement "
                "the crash put off, in Quarantine")
    finally:
        srv.stop()
        subprocess.run([os.path.join(HERE, "..", "kafka", "stop"), "--dir", kdir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


MODES = {"batch": mode_batch, "follow": mode_follow, "uidvalidity": mode_uidvalidity, "password": mode_password,
         "xoauth2": mode_xoauth2, "tls": mode_tls, "dovecot": mode_dovecot, "crash": mode_crash}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--mode", required=True, choices=sorted(MODES))
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dp-imap-%s-" % a.mode)
    t0 = time.time()
    try:
        MODES[a.mode](os.path.abspath(a.dmarcpipe), work)
    finally:
        if not a.keep:
            subprocess.run(["rm", "-rf", work])
    T.log("%s: all passed in %.0f s" % (a.mode, time.time() - t0))


if __name__ == "__main__":
    main()
