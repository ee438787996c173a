#!/bin/sh
# The container image (deploy/container/Dockerfile), built from the working
# tree and run with podman the way deploy/README.md says to run it:
#   - the base image, debian:bookworm-slim, is made with mmdebstrap unless
#     podman's store has it (deploy/container/make-base), then the image is
#     built (layers cached: a warm rebuild redoes only the compile);
#   - its metadata: the non-root user 10001, the version label (CMake's),
#     the HEALTHCHECK on /healthz;
#   - a batch run over a read-only mount of the samples, with a read-only
#     root, no capabilities and no-new-privileges, into a mounted volume:
#     its rollups, reports feed, quarantine and exit status are those of
#     the host's build on the same files (feeds_agree.py);
#   - `run --follow`, its metrics server on 0.0.0.0:9108 by the image's
#     default (DMARCPIPE_METRICS_ADDR), published on a random 127.0.0.1
#     port: /healthz answers 200, `podman healthcheck run` passes
#     (and fails on a container where nothing listens), a report dropped
#     into the watched volume is counted (the metrics'
#     dmarcpipe_messages_total, the output, --done) as the host counts it,
#     the process runs as 10001 with no capabilities on a read-only root,
#     and `podman stop` (SIGTERM) ends it with status 0.
# Without podman, or where `podman info` fails, or not as root (the volumes
# are handed to UID 10001 with chown), it prints one line and exits 77.
# The image stays in podman's store as localhost/dmarcpipe:test: its layers
# are the next run's cache (cold, about 100 s on 2 cores; warm, under 10 s,
# or some 25 s after a source change: the compile).
# usage: test_container.sh DMARCPIPE SOURCE_ROOT
set -eu
bin=$(realpath "$1") root=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
UID_IMAGE=10001

command -v podman >/dev/null 2>&1 || { echo "SKIP: podman is not installed (deploy/install-deps installs it)"; exit 77; }
podman info >/dev/null 2>&1 || { echo "SKIP: podman cannot run containers on this host (podman info fails)"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root podman (the volumes are handed to UID $UID_IMAGE)"; exit 77; }

start=$(date +%s)
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok ($(($(date +%s) - start)) s): $*"; }

# runc, not crun, where both are there: crun cannot set up cgroup v1 hosts
# like some CI runners.  Rlimits explicit: podman's defaults for root exceed
# what a nested container may set (EPERM at create).
RUNTIME=""
command -v runc >/dev/null 2>&1 && RUNTIME="--runtime runc"
hard_limit() { # the hard limit named $1 in /proc/self/limits, at most $2
  awk -v name="$1" -v cap="$2" 'index($0, name) == 1 {
    h = $(NF - 1); print (h == "unlimited" || h + 0 > cap) ? cap : h }' /proc/self/limits
}
nofile=$(hard_limit "Max open files" 65536)
nproc=$(hard_limit "Max processes" 4096)
# shellcheck disable=SC2086 # $RUNTIME: one word or none
prun() { podman run $RUNTIME --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$@"; }
# as deploy/README.md says to run it
hardened() { prun --read-only --cap-drop=ALL --security-opt no-new-privileges "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dp-container.XXXXXX")
names=""
cleanup() {
  for n in $names; do podman rm -f -v -t 0 "$n" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
tag=localhost/dmarcpipe:test

# --- the image ---------------------------------------------------------------
"$root/deploy/container/make-base" || fail "no base image"
version=$(sed -n 's/^project(dmarcpipe VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
# chroot isolation: the RUN steps need no namespaces of their own, so the
# build works inside a container too (CI runners, this test's hosts)
if ! podman build --isolation chroot --format docker --layers \
     --label org.opencontainers.image.version="$version" --label org.opencontainers.image.revision="$revision" \
     --iidfile "$work/iid" -f "$root/deploy/container/Dockerfile" -t "$tag" "$root" >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log"
  fail "podman build"
fi
image=$(cat "$work/iid")
ok "image built: $(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')"

user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "$UID_IMAGE:$UID_IMAGE" ] || fail "image USER is '$user', not $UID_IMAGE:$UID_IMAGE"
label=$(podman image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$image")
[ "$label" = "$version" ] || fail "version label '$label', CMakeLists.txt says '$version'"
hc=$(podman image inspect --format '{{json .HealthCheck}}' "$image")
case $hc in *127.0.0.1:9108/healthz*) ;; *) fail "no HEALTHCHECK on :9108/healthz (built without --format docker?): $hc";; esac
ok "USER $user, version $label, HEALTHCHECK on :9108/healthz"

# --- a batch run, against the host's build -----------------------------------
mkdir "$work/samples" "$work/host" "$work/var"
cp -R "$root/tests/data/samples/." "$work/samples/"
chmod -R a+rX "$work/samples"
chown "$UID_IMAGE:$UID_IMAGE" "$work/var"
host_rc=0
(cd "$work/host" && "$bin" run "$work/samples" >/dev/null 2>"$work/host.err") || host_rc=$?
ctr_rc=0
hardened --rm -v "$work/samples:/reports:ro" -v "$work/var:/var/lib/dmarcpipe" \
  "$image" run /reports >/dev/null 2>"$work/ctr.err" || ctr_rc=$?
[ "$ctr_rc" = "$host_rc" ] || { cat "$work/ctr.err"; fail "the container exited $ctr_rc, the host's build $host_rc"; }
agree=$(python3 "$here/feeds_agree.py" "$work/host/dmarcpipe-out" "$work/var/dmarcpipe-out") ||
  { printf '%s\n' "$agree"; cat "$work/ctr.err"; fail "the container's output differs from the host's"; }
owner=$(stat -c %u "$work/var/dmarcpipe-out/rollups.ndjson")
[ "$owner" = "$UID_IMAGE" ] || fail "rollups.ndjson written by UID $owner"
ok "batch run, read-only root and samples, no capabilities, exit $ctr_rc as on the host: $agree"

# --- the long-running mode, its health and metrics, SIGTERM ------------------
drop=keltia-google.com!keltia.net!1538438400!1538524799.zip
mkdir -p "$work/one" "$work/spool/in" "$work/spool/done" "$work/fvar"
cp "$work/samples/$drop" "$work/one/"
(cd "$work/one" && "$bin" run "$work/one/$drop" >/dev/null 2>&1) || fail "the host's build rejects $drop"
chown -R "$UID_IMAGE:$UID_IMAGE" "$work/spool" "$work/fvar"
follower=dp-test-follow-$$
names="$names $follower"
hardened -d --name "$follower" -p 127.0.0.1::9108 \
  -v "$work/spool:/var/spool/dmarcpipe" -v "$work/fvar:/var/lib/dmarcpipe" \
  "$image" run --follow --poll 1 --flush-interval 0 \
  --done /var/spool/dmarcpipe/done /var/spool/dmarcpipe/in >/dev/null 2>"$work/run.err" ||
  { cat "$work/run.err"; fail "podman run --follow"; }
port=$(podman port "$follower" 9108/tcp | sed -n '1s/.*://p')
[ -n "$port" ] || fail "port 9108 not published"
up=""
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then up=1; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$follower")" = true ] || break
  sleep 0.5
done
[ -n "$up" ] || { podman logs "$follower" 2>&1 | tail -n 20; fail "no 200 from /healthz on 127.0.0.1:$port"; }
ok "the follower answers /healthz on 127.0.0.1:$port"

podman healthcheck run "$follower" >/dev/null 2>&1 || fail "podman healthcheck run: unhealthy with /healthz answering"
idle=dp-test-idle-$$
names="$names $idle"
hardened -d --name "$idle" --entrypoint sleep "$image" 60 >/dev/null 2>&1 || fail "podman run sleep"
if podman healthcheck run "$idle" >/dev/null 2>&1; then fail "podman healthcheck run passes where nothing listens on 9108"; fi
podman rm -f -v -t 0 "$idle" >/dev/null 2>&1
ok "podman healthcheck run: healthy, and unhealthy where nothing listens"

status=$(podman exec "$follower" cat /proc/1/status)
printf '%s\n' "$status" | grep -Eq "^Uid:[[:space:]]+${UID_IMAGE}[[:space:]]+${UID_IMAGE}[[:space:]]+${UID_IMAGE}[[:space:]]+${UID_IMAGE}\$" ||
  fail "dmarcpipe does not run as $UID_IMAGE: $(printf '%s\n' "$status" | grep ^Uid)"
printf '%s\n' "$status" | grep -Eq '^CapEff:[[:space:]]+0+$' || fail "dmarcpipe has capabilities: $(printf '%s\n' "$status" | grep ^CapEff)"
printf '%s\n' "$status" | grep -Eq '^NoNewPrivs:[[:space:]]+1$' || fail "no-new-privileges is not set"
if podman exec "$follower" touch /usr/local/bin/x 2>/dev/null; then fail "the root file system is writable"; fi
ok "dmarcpipe runs as UID $UID_IMAGE, no capabilities, no new privileges, read-only root"

metric() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 + 0 }'; }
before=$(metric dmarcpipe_messages_total)
[ "$before" = 0 ] || fail "dmarcpipe_messages_total is '$before' before any report"
cp "$work/samples/$drop" "$work/spool/in/.$drop"
mv "$work/spool/in/.$drop" "$work/spool/in/$drop"
for _ in $(seq 1 120); do
  [ -e "$work/spool/done/$drop" ] && break
  sleep 0.5
done
[ -e "$work/spool/done/$drop" ] || { podman logs "$follower" 2>&1 | tail -n 20; fail "$drop was not moved to --done within 60 s"; }
agree=$(python3 "$here/feeds_agree.py" "$work/one/dmarcpipe-out" "$work/fvar/dmarcpipe-out") ||
  { printf '%s\n' "$agree"; fail "the follower's output differs from the host's for $drop"; }
want=$(printf '%s\n' "$agree" | sed -n 's/.* records, \([0-9]*\) messages.*/\1/p')
got=$(metric dmarcpipe_messages_total)
[ "$got" = "$want" ] || fail "dmarcpipe_messages_total is '$got', the host counts $want messages in $drop"
ok "a report dropped into the spool: moved to done, dmarcpipe_messages_total $got, output as the host's: $agree"

t0=$(date +%s)
podman stop -t 60 "$follower" >/dev/null 2>&1 || fail "podman stop"
code=$(podman inspect --format '{{.State.ExitCode}}' "$follower")
[ "$code" = 0 ] || { podman logs "$follower" 2>&1 | tail -n 20; fail "after SIGTERM the follower exited $code"; }
ok "podman stop: SIGTERM, exit 0 in $(($(date +%s) - t0)) s"
