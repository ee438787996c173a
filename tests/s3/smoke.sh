#!/bin/bash
# The test S3 server (tests/s3/start, stop) against Debian's curl 7.88 and its
# --aws-sigv4, the signing an s3:// source built on libcurl will use:
#   - start prints http://127.0.0.1:PORT last, writes DIR/endpoint; the key
#     pair is in DIR/access_key, DIR/secret_key, DIR/s3proxy.properties (all
#     0600) and on no command line of the server;
#   - PUT /bucket; PUT two objects, one at in/ under a name that needs
#     escaping ("a! b.xml", sent as in/a%21%20b.xml) with the body's sha256;
#   - ListObjectsV2 with prefix=in%2F lists only that one; a second page by
#     continuation-token; GET returns the exact bytes; a multi-object delete;
#   - a request signed with a wrong secret: 403;
#   - the SigV4 traps of curl 7.88 (README.md): each wrong form is refused,
#     its right form accepted;
#   - tests/s3/stop without --dir stops the last start: server gone, dir
#     removed;
#   - the secret appears nowhere in this test's output.
# curl gets the key pair from a config on stdin (-K -), never in argv.  The
# server is stopped on every exit (trap).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
command -v curl >/dev/null || { echo "smoke.sh: curl not found" >&2; exit 1; }

smoke_name="s3 smoke" secret_what=secret
# shellcheck source=tests/lib/smoke-harness.sh
. "$here/../lib/smoke-harness.sh"

# --- start -----------------------------------------------------------------
endpoint=$(TMPDIR=$work "$here/start" --dir "$srv" | tail -n 1) || die "tests/s3/start failed"
secret=$(cat "$srv/secret_key")
key=$(cat "$srv/access_key")
if [ -z "$secret" ] || [ -z "$key" ]; then die "no key pair in $srv"; fi
case $endpoint in
  http://127.0.0.1:[0-9]*) ok "start's last line is $endpoint" ;;
  *) die "start's last line is not http://127.0.0.1:PORT: $endpoint" ;;
esac
if [ "$(cat "$srv/endpoint")" = "$endpoint" ]; then ok "DIR/endpoint holds it"; else fail "DIR/endpoint differs"; fi
for f in access_key secret_key s3proxy.properties; do
  mode=$(stat -c %a "$srv/$f")
  if [ "$mode" = 600 ]; then ok "DIR/$f is mode 600"; else fail "DIR/$f is mode $mode, not 600"; fi
done
pid=$(cat "$srv/pid")
if tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qF -- "$secret"; then
  fail "the secret is on the server's command line"
else
  ok "the secret is not on the server's command line (pid $pid)"
fi

# --- curl ------------------------------------------------------------------
# s3 SECRET PROVIDER SHA256 ARGS...: one signed request; prints the HTTP
# status on the last line, the body (if any, and not -o) before it.
# SHA256 "" sends no x-amz-content-sha256 header.
s3() {
  local sec=$1 prov=$2 sha=$3; shift 3
  local hdr=()
  [ -z "$sha" ] || hdr=(-H "x-amz-content-sha256: $sha")
  printf 'user = "%s:%s"\n' "$key" "$sec" |
    curl -sS --max-time 20 -K - --aws-sigv4 "$prov" "${hdr[@]}" -w '\n%{http_code}\n' "$@" || true
}
V4=aws:amz:us-east-1:s3
U=UNSIGNED-PAYLOAD
code() { tail -n 1; }
# want WHAT CODE OUTPUT: the status line of OUTPUT is CODE
want() {
  local got
  got=$(printf '%s\n' "$3" | tail -n 1)
  if [ "$got" = "$2" ]; then ok "$1: HTTP $got"; else fail "$1: HTTP $got, want $2"; printf '%s\n' "$3" | head -n 3; fi
}
# RFC 3986 percent-encoding of everything but the unreserved characters, as
# SigV4 wants keys, prefixes and tokens in the URL.
uri_encode() {
  local s=$1 out="" c i
  local LC_ALL=C
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in [A-Za-z0-9._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}
keys_of() { grep -o '<Key>[^<]*</Key>' | sed 's:</\?Key>::g' | tr '\n' '|'; }

b=$endpoint/dmarc-reports

# --- bucket and objects ------------------------------------------------------
want "PUT /dmarc-reports with no x-amz-content-sha256 fails (trap 1)" 500 "$(s3 "$secret" $V4 "" -X PUT "$b")"
want "PUT /dmarc-reports (x-amz-content-sha256: UNSIGNED-PAYLOAD)" 200 "$(s3 "$secret" $V4 $U -X PUT "$b")"

head -c 3000 /dev/urandom > "$work/obj1"
printf '<feedback>not in the prefix</feedback>\n' > "$work/obj2"
name1='in/a! b.xml'
enc1=$(uri_encode "$name1"); enc1=${enc1//%2F//}          # the path keeps its /
sha1=$(sha256sum "$work/obj1" | cut -d' ' -f1)
echo "object 1: '$name1' as $enc1"
want "PUT with a wrong x-amz-content-sha256 is refused" 400 \
  "$(s3 "$secret" $V4 "$(sha256sum "$work/obj2" | cut -d' ' -f1)" -T "$work/obj1" "$b/$enc1")"
want "PUT $enc1 (the body's sha256)" 200 "$(s3 "$secret" $V4 "$sha1" -T "$work/obj1" "$b/$enc1")"
want "PUT top.xml (UNSIGNED-PAYLOAD)" 200 "$(s3 "$secret" $V4 $U -T "$work/obj2" "$b/top.xml")"
want "a raw space in the key: curl refuses the URL (exit 3, no status)" 000 \
  "$(s3 "$secret" $V4 $U -T "$work/obj2" "$b/in/raw name.xml" 2>/dev/null)"
[ ! -e "$srv/data/dmarc-reports/in/raw name.xml" ] || fail "a raw space in the key stored an object"

# --- list --------------------------------------------------------------------
out=$(s3 "$secret" $V4 $U "$endpoint/dmarc-reports?list-type=2&prefix=in%2F")
want "ListObjectsV2 ?list-type=2&prefix=in%2F" 200 "$out"
got=$(printf '%s\n' "$out" | keys_of)
if [ "$got" = "$name1|" ]; then ok "it lists only '$name1'"; else fail "it lists '$got', want '$name1|'"; fi
want "the same, parameters not sorted (trap 2)" 403 \
  "$(s3 "$secret" $V4 $U "$endpoint/dmarc-reports?prefix=in%2F&list-type=2")"
want "the same, prefix=in/ not encoded (trap 4)" 403 \
  "$(s3 "$secret" $V4 $U "$endpoint/dmarc-reports?list-type=2&prefix=in/")"

out=$(s3 "$secret" $V4 $U "$endpoint/dmarc-reports?list-type=2&max-keys=1")
want "ListObjectsV2 page 1 (max-keys=1)" 200 "$out"
token=$(printf '%s\n' "$out" | sed -n 's:.*<NextContinuationToken>\([^<]*\)</NextContinuationToken>.*:\1:p')
[ -n "$token" ] || die "page 1 gives no NextContinuationToken"
echo "NextContinuationToken: $token"
out=$(s3 "$secret" $V4 $U "$endpoint/dmarc-reports?continuation-token=$(uri_encode "$token")&list-type=2&max-keys=1")
want "page 2, continuation-token encoded and first in order" 200 "$out"
got=$(printf '%s\n' "$out" | keys_of)
if [ "$got" = "top.xml|" ]; then ok "page 2 lists top.xml"; else fail "page 2 lists '$got', want 'top.xml|'"; fi
if [ "$token" != "$(uri_encode "$token")" ]; then
  half=${token//\//%2F}; half=${half// /%20}                # '!' left raw
  want "page 2, token with a raw character in it (trap 4)" 403 \
    "$(s3 "$secret" $V4 $U "$endpoint/dmarc-reports?continuation-token=$half&list-type=2&max-keys=1")"
fi

# --- get ---------------------------------------------------------------------
want "GET $enc1" 200 "$(s3 "$secret" $V4 $U -o "$work/got1" "$b/$enc1")"
if cmp -s "$work/obj1" "$work/got1"; then ok "GET returns the exact $(wc -c < "$work/obj1") bytes"; else fail "GET returns other bytes"; fi

# --- signing -----------------------------------------------------------------
want "a wrong secret" 403 "$(s3 "wrong-$secret" $V4 $U "$b/$enc1")"
want "provider 'aws:amz' (region and service left to curl's guess, trap 5)" 403 \
  "$(s3 "$secret" aws:amz $U "$b/$enc1")"

# --- multi-object delete -------------------------------------------------------
printf '<Delete><Object><Key>top.xml</Key></Object></Delete>' > "$work/del.xml"
md5=$(python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.md5(open(sys.argv[1], "rb").read()).digest()).decode())' "$work/del.xml")
dsha=$(sha256sum "$work/del.xml" | cut -d' ' -f1)
want "POST ?delete (no '=', trap 3)" 403 \
  "$(s3 "$secret" $V4 "$dsha" -H "Content-MD5: $md5" -X POST --data-binary @"$work/del.xml" "$endpoint/dmarc-reports?delete")"
out=$(s3 "$secret" $V4 "$dsha" -H "Content-MD5: $md5" -X POST --data-binary @"$work/del.xml" "$endpoint/dmarc-reports?delete=")
want "POST ?delete= (multi-object delete of top.xml)" 200 "$out"
got=$(s3 "$secret" $V4 $U "$endpoint/dmarc-reports?list-type=2" | keys_of)
if [ "$got" = "$name1|" ]; then ok "the bucket holds only '$name1' now"; else fail "the bucket holds '$got'"; fi

# --- stop --------------------------------------------------------------------
TMPDIR=$work "$here/stop" || die "tests/s3/stop (no --dir) failed"
# (a zombie the reaper has not collected yet counts as gone)
state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' 2>/dev/null < "/proc/$pid/status" || true)
if [ -d "$srv" ] || { [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]; }; then
  fail "tests/s3/stop (no --dir) left the server or its dir"
else
  ok "tests/s3/stop (no --dir) stopped the last start's server and removed its dir"
fi
rc=0; curl -sS --max-time 5 -o /dev/null "$endpoint/" 2>/dev/null || rc=$?
if [ "$rc" = 7 ]; then ok "nothing answers at $endpoint any more"; else fail "$endpoint: curl exit $rc after stop, want 7"; fi
