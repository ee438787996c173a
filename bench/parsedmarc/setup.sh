#!/usr/bin/env bash
# Creates (or reuses) a venv holding the latest parsedmarc release from PyPI.
#
#   bench/parsedmarc/setup.sh [--upgrade] [--no-deps] [VENV]
#
# VENV defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/dmarcpipe/parsedmarc-venv.
# A venv that already imports parsedmarc is reused as it is; --upgrade asks
# PyPI for the latest release again. No version is pinned: the installed one
# is printed, and compare.py / timing.sh print it in their results.
#
# The venv is built on Debian's python3 (/usr/bin/python3; set PYTHON to
# override), which needs the Debian package python3-venv: with root and apt
# it is installed when missing, otherwise the script says what to install.
#
# If `pip install parsedmarc` fails (a dependency that does not build or
# resolve), the fallback is `pip install --no-deps parsedmarc` plus only the
# modules `import parsedmarc, parsedmarc.cli` needs; offline file parsing
# needs nothing else (Elasticsearch, OpenSearch, Kafka, S3, Splunk, Gmail and
# MS Graph are optional extras in parsedmarc 11 and are never installed).
# --no-deps takes that path directly.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

upgrade=0 nodeps=0 venv=''
while [ $# -gt 0 ]; do
    case $1 in
        --upgrade) upgrade=1 ;;
        --no-deps) nodeps=1 ;;
        -h|--help) usage 0 ;;
        -*) echo "setup.sh: unknown option $1" >&2; usage 2 >&2 ;;
        *) [ -z "$venv" ] || usage 2 >&2; venv=$1 ;;
    esac
    shift
done
venv=${venv:-${XDG_CACHE_HOME:-$HOME/.cache}/dmarcpipe/parsedmarc-venv}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)

# What `import parsedmarc, parsedmarc.cli` needs (parsedmarc 11.1; found by
# installing with --no-deps and adding each missing module until both
# imports and an offline parse worked). Used only by the fallback.
IMPORT_DEPS="lxml xmltodict expiringdict python-dateutil pyyaml tqdm dnspython
httpx idna maxminddb publicsuffixlist mailsuite mail-parser dkimpy cryptography
cffi html2text publicsuffix2 imapclient"

log() { printf 'setup.sh: %s\n' "$*" >&2; }

pd_version() {
    "$venv/bin/python" - <<'EOF' 2>/dev/null
from importlib.metadata import version
import parsedmarc, parsedmarc.cli  # noqa: F401  both must import
print(version("parsedmarc"))
EOF
}

smoke() {  # an offline parse of a minimal report, in the venv
    "$venv/bin/python" - <<'EOF'
import parsedmarc
xml = b"""<?xml version="1.0"?><feedback><report_metadata><org_name>x</org_name>
<email>a@x.example</email><report_id>1</report_id><date_range><begin>1700000000</begin>
<end>1700086399</end></date_range></report_metadata><policy_published><domain>x.example</domain>
<p>none</p></policy_published><record><row><source_ip>192.0.2.1</source_ip><count>3</count>
<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
</row><identifiers><header_from>x.example</header_from></identifiers><auth_results><spf>
<domain>x.example</domain><result>pass</result></spf></auth_results></record></feedback>"""
r = parsedmarc.parse_report_file(xml, offline=True)
n = sum(rec["count"] for rec in r["report"]["records"])
assert r["report_type"] == "aggregate" and n == 3, (r["report_type"], n)
EOF
}

# 1. Reuse.
if [ "$upgrade" = 0 ] && [ -x "$venv/bin/python" ] && v=$(pd_version); then
    log "reusing $venv (parsedmarc $v)"
    echo "parsedmarc $v $venv"
    exit 0
fi

# 2. python3-venv.
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        pyv=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        log "installing Debian's python3-venv (python$pyv-venv) with apt-get"
        apt-get install -y --no-install-recommends python3-venv "python$pyv-venv" >&2 \
            || { apt-get update >&2 && apt-get install -y --no-install-recommends python3-venv >&2; }
    else
        log "$PYTHON has no venv/ensurepip: install Debian's python3-venv (apt-get install python3-venv)"
        exit 1
    fi
fi

# 3. The venv and parsedmarc.
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    "$PYTHON" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
up=(); [ "$upgrade" = 1 ] && up=(--upgrade)

how=full
if [ "$nodeps" = 1 ] || ! "${pip[@]}" install "${up[@]}" parsedmarc >&2; then
    [ "$nodeps" = 1 ] || log "'pip install parsedmarc' failed; falling back to --no-deps plus the import-time modules"
    how=no-deps
    "${pip[@]}" install "${up[@]}" --no-deps parsedmarc >&2
    # shellcheck disable=SC2086  # word splitting of the list is intended
    "${pip[@]}" install $IMPORT_DEPS >&2 || "${pip[@]}" install --no-deps $IMPORT_DEPS >&2
fi

v=$(pd_version) || { log "parsedmarc does not import in $venv"; "$venv/bin/python" -c 'import parsedmarc.cli'; exit 1; }
smoke || { log "parsedmarc $v imports but fails an offline parse"; exit 1; }
log "installed parsedmarc $v ($how install) into $venv"
echo "parsedmarc $v $venv"
