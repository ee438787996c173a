#!/bin/sh
# deploy/kubernetes/, offline: kustomize (built from the Go module proxy)
# renders the base and overlays/example, kubernetes-validate (PyPI) checks
# every object strictly against the Kubernetes API's schemas, then what
# the schemas cannot say, and broken copies that must be reported
# (tests/deploy/check_kubernetes.py).  Tools cached per machine (tools.sh).
# usage: test_kubernetes.sh DMARCPIPE DEPLOY_KUBERNETES_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 dir=$2
[ -x "$bin" ] || { echo "FAIL: $bin not found; build first"; exit 1; }
. "$here/tools.sh"
dp_deploy_venv || exit 1
dp_deploy_kustomize || exit 1
exec "$PY" "$here/check_kubernetes.py" "$bin" "$KUSTOMIZE" "$dir"
