#!/bin/sh
# deploy/compose.yaml, offline: the Compose Specification's schema, what the
# schema cannot say (volumes, secrets, dependencies, loopback ports, the
# workers' hardening and commands against `dmarcpipe run`), and broken
# copies that must be reported (tests/deploy/check_compose.py).  The
# validators come from PyPI into a venv cached per machine (tools.sh).
# usage: test_compose.sh DMARCPIPE COMPOSE_FILE
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 compose=$2
[ -x "$bin" ] || { echo "FAIL: $bin not found; build first"; exit 1; }
. "$here/tools.sh"
dp_deploy_venv || exit 1
exec "$PY" "$here/check_compose.py" "$bin" "$compose"
