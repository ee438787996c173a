#!/bin/bash
# The test IMAP server (tests/imap/start, stop) against Debian's curl, the
# libcurl an imap:// source will use:
#   - start prints imap://dmarc:PASSWORD@127.0.0.1:PORT/INBOX last, writes
#     DIR/url, DIR/smtp, DIR/password (0600); the password is on no command
#     line of the server;
#   - one sample report is delivered by SMTP (curl smtp://);
#   - UID SEARCH ALL lists it; ;UID=N fetches it: the sent bytes, modulo
#     CRLF and the Return-Path/Received lines GreenMail puts on top;
#   - EXAMINE INBOX reports a UIDVALIDITY (the same twice) and 1 EXISTS;
#   - a wrong password fails with curl's login-denied error (67), quickly;
#   - a UID that is not there: curl's remote-file-not-found (78);
#   - CREATE Processed + UID MOVE (when CAPABILITY says MOVE): the message
#     leaves INBOX for Processed;
#   - tests/imap/stop without --dir stops the last start: server gone, dir
#     removed;
#   - the password appears nowhere in this test's own output (URLs are
#     printed with it masked).
# The server is stopped on every exit (trap).
#
# usage: smoke.sh [SAMPLE.eml]   (default tests/data/samples/freitagsrunde-google.eml)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
sample=$(realpath "${1:-$here/../data/samples/freitagsrunde-google.eml}")
[ -r "$sample" ] || { echo "smoke.sh: cannot read $sample" >&2; exit 1; }
command -v curl >/dev/null || { echo "smoke.sh: curl not found" >&2; exit 1; }

smoke_name="imap smoke" secret_what=password
# shellcheck source=tests/lib/smoke-harness.sh
. "$here/../lib/smoke-harness.sh"
indent() { sed 's/^/  | /'; }

# Elapsed milliseconds since $1 (from now_ms).
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# curl with a time limit; -sS: errors only, as one line.
c() { curl -sS --max-time 20 "$@"; }

# --- start -----------------------------------------------------------------
url=$(TMPDIR=$work "$here/start" --dir "$srv" | tail -n 1) || die "tests/imap/start failed"
pass=$(cat "$srv/password")
secret=$pass
[ -n "$pass" ] || die "no password in $srv/password"
masked=${url/":$pass@"/:***@}
echo "server: $masked"
case $url in
  "imap://dmarc:$pass@127.0.0.1:"[0-9]*/INBOX) ok "start's last line is imap://dmarc:***@127.0.0.1:PORT/INBOX" ;;
  *) die "start's last line is not imap://dmarc:***@127.0.0.1:PORT/INBOX: $masked" ;;
esac
hostport=${url#*@}; hostport=${hostport%/INBOX}
root="imap://dmarc:$pass@$hostport"   # the server, no mailbox
if [ "$(cat "$srv/url")" = "$url" ]; then ok "DIR/url holds the URL"; else fail "DIR/url differs from the printed URL"; fi
smtp=$(cat "$srv/smtp")
case $smtp in
  127.0.0.1:[0-9]*) ok "DIR/smtp is $smtp" ;;
  *) die "DIR/smtp is not 127.0.0.1:PORT: $smtp" ;;
esac
for f in password url java.args; do
  mode=$(stat -c %a "$srv/$f")
  if [ "$mode" = 600 ]; then ok "DIR/$f is mode 600"; else fail "DIR/$f is mode $mode, not 600"; fi
done
pid=$(cat "$srv/pid")
if tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qF -- "$pass"; then
  fail "the password is on the server's command line"
else
  ok "the password is not on the server's command line (pid $pid)"
fi

# --- deliver ---------------------------------------------------------------
rcpt=$(cat "$srv/address")
c "smtp://$smtp/localhost" --mail-from dmarc-reports@example.net --mail-rcpt "$rcpt" \
  --upload-file "$sample" || die "SMTP delivery to $rcpt failed"
ok "delivered $(basename "$sample") ($(wc -c < "$sample") bytes) to $rcpt by SMTP"

# --- list ------------------------------------------------------------------
uids=""
for i in $(seq 1 25); do             # delivery is synchronous; 5 s of slack
  uids=$(c "$url" -X 'UID SEARCH ALL' | tr -d '\r' | sed -n 's/^\* SEARCH *//p')
  [ -z "$uids" ] || break
  sleep 0.2; : "$i"
done
echo "INBOX UIDs: ${uids:-none}"
case $uids in
  *[!0-9]*|"") die "UID SEARCH ALL does not list exactly one message: '${uids}'" ;;
  *) uid=$uids; ok "UID SEARCH ALL lists one message, UID $uid" ;;
esac

# --- fetch -----------------------------------------------------------------
c "$url;UID=$uid" -o "$work/got.eml" || die "fetching UID $uid failed"
tr -d '\r' < "$sample" > "$work/sent.lf"
tr -d '\r' < "$work/got.eml" > "$work/got.lf"
n=$(wc -c < "$work/sent.lf")
echo "fetched $(wc -c < "$work/got.eml") bytes; added on top:"
head -c $(($(wc -c < "$work/got.lf") - n)) "$work/got.lf" | indent
if tail -c "$n" "$work/got.lf" | cmp -s - "$work/sent.lf"; then
  ok "the fetched message ends with the sent bytes (line endings aside)"
else
  fail "the fetched message is not the sent one plus headers on top"
fi
# A distinctive line: the attachment's first base64 line, else (a sample
# with no base64 part) the sample's longest line.
what="the attachment's first base64 line"
mark=$(grep -m 1 -E '^[A-Za-z0-9+/]{40,}={0,2}$' "$work/sent.lf" || true)
if [ -z "$mark" ]; then
  what="the sample's longest line"
  mark=$(awk 'length($0) > length(m) { m = $0 } END { print m }' "$work/sent.lf")
fi
if [ -z "$mark" ]; then
  fail "$(basename "$sample") has no line to look for"
elif grep -qxF -- "$mark" "$work/got.lf"; then
  ok "$what is there (${mark:0:24}...)"
else
  fail "$what is missing"
fi

# --- UIDVALIDITY -----------------------------------------------------------
ex=$(c "$root/" -X 'EXAMINE INBOX' | tr -d '\r')
indent <<< "$ex"
v1=$(echo "$ex" | sed -n 's/^\* OK \[UIDVALIDITY \([0-9][0-9]*\)\].*/\1/p')
v2=$(c "$root/" -X 'EXAMINE INBOX' | tr -d '\r' | sed -n 's/^\* OK \[UIDVALIDITY \([0-9][0-9]*\)\].*/\1/p')
if [ -n "$v1" ] && [ "$v1" = "$v2" ]; then
  ok "EXAMINE INBOX reports UIDVALIDITY $v1, the same twice"
else
  fail "EXAMINE INBOX: UIDVALIDITY '$v1' then '$v2'"
fi
if grep -qx '\* 1 EXISTS' <<< "$ex"; then ok "EXAMINE INBOX: 1 EXISTS"; else fail "EXAMINE INBOX does not say 1 EXISTS"; fi

# --- errors ----------------------------------------------------------------
t0=$(now_ms)
rc=0
c "imap://dmarc:not-the-password@$hostport/INBOX" -X 'UID SEARCH ALL' || rc=$?
dt=$(($(now_ms) - t0))
if [ "$rc" = 67 ] && [ "$dt" -lt 10000 ]; then
  ok "a wrong password: curl exit 67 (login denied) in ${dt} ms"
else
  fail "a wrong password: curl exit $rc in ${dt} ms (want 67, under 10 s)"
fi
rc=0
c "$url;UID=$((uid + 100))" -o "$work/none.eml" || rc=$?
if [ "$rc" = 78 ]; then
  ok "a UID that is not there: curl exit 78 (remote file not found)"
else
  fail "a UID that is not there: curl exit $rc, want 78"
fi

# --- MOVE ------------------------------------------------------------------
caps=$(c "$root/" -X CAPABILITY | tr -d '\r')
echo "$caps"
case " $(echo "$caps" | sed -n 's/^\* CAPABILITY //p') " in
  *" MOVE "*)
    c "$root/" -X 'CREATE Processed' || die "CREATE Processed failed"
    c "$url" -X "UID MOVE $uid Processed" || die "UID MOVE $uid Processed failed"
    left=$(c "$url" -X 'UID SEARCH ALL' | tr -d '\r' | sed -n 's/^\* SEARCH *//p')
    moved=$(c "imap://dmarc:$pass@$hostport/Processed" -X 'UID SEARCH ALL' | tr -d '\r' | sed -n 's/^\* SEARCH *//p')
    if [ -z "$left" ] && [ -n "$moved" ]; then
      ok "UID MOVE $uid Processed: INBOX empty, Processed holds UID $moved"
    else
      fail "UID MOVE $uid Processed: INBOX '$left', Processed '$moved'"
    fi ;;
  *) echo "skip: no MOVE in CAPABILITY" ;;
esac

# --- stop ------------------------------------------------------------------
TMPDIR=$work "$here/stop" || die "tests/imap/stop (no --dir) failed"
# (a zombie the reaper has not collected yet counts as gone)
state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' 2>/dev/null < "/proc/$pid/status" || true)
if [ -d "$srv" ] || { [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]; }; then
  fail "tests/imap/stop (no --dir) left the server or its dir"
else
  ok "tests/imap/stop (no --dir) stopped the last start's server and removed its dir"
fi
