# tests/deploy/tools.sh — sourced by test_compose.sh and test_kubernetes.sh:
# the validators of the deploy files, fetched once per machine and reused
# by every build tree, never committed.
#   dp_deploy_venv        check-jsonschema (with the Compose Specification's
#                         schema vendored in it) and kubernetes-validate (the
#                         Kubernetes API's schemas), from PyPI, into
#                         DP_DEPLOY_VENV (default ~/.cache/dmarcpipe/deploy-venv,
#                         about 160 MB; 20 s the first time)
#   dp_deploy_kustomize   kustomize, built from the Go module proxy with the
#                         machine's Go into DP_DEPLOY_GOBIN (default
#                         ~/.cache/dmarcpipe/go/bin, 29 MB; 40 s the first
#                         time on 2 cores; the module and build caches it
#                         takes are removed after)
# Each sets $PY or $KUSTOMIZE.  Two tests may set up at once (ctest -j): a
# lock makes the second wait, and a stamp written last marks a complete
# install.  Without PyPI or the Go module proxy this FAILS: CI has both,
# and a test that skipped itself there would hide a broken manifest.

DP_DEPLOY_REQUIREMENTS="check-jsonschema==0.39.0 kubernetes-validate==1.37.0"
DP_KUSTOMIZE_VERSION=v5.8.2
DP_DEPLOY_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/dmarcpipe

dp_deploy_lock() {
    mkdir -p "$DP_DEPLOY_CACHE"
    exec 9>"$DP_DEPLOY_CACHE/.deploy-tools.lock"
    flock 9
}

dp_deploy_venv() {
    venv=${DP_DEPLOY_VENV:-$DP_DEPLOY_CACHE/deploy-venv}
    dp_deploy_lock
    if [ "$(cat "$venv/.dp-requirements" 2>/dev/null)" != "$DP_DEPLOY_REQUIREMENTS" ] ||
       ! "$venv/bin/python" -c 'import check_jsonschema, kubernetes_validate, yaml' >/dev/null 2>&1; then
        rm -rf "$venv"
        "${PYTHON:-python3}" -m venv "$venv" ||
            { echo "FAIL: cannot make a venv with ${PYTHON:-python3} -m venv (python3-venv missing?)"; exec 9>&-; return 1; }
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install --disable-pip-version-check -q $DP_DEPLOY_REQUIREMENTS ||
            { echo "FAIL: pip install $DP_DEPLOY_REQUIREMENTS failed (is PyPI reachable?)"; rm -rf "$venv"; exec 9>&-; return 1; }
        echo "$DP_DEPLOY_REQUIREMENTS" >"$venv/.dp-requirements"
    fi
    exec 9>&-
    PY=$venv/bin/python
}

dp_deploy_kustomize() {
    gobin=${DP_DEPLOY_GOBIN:-$DP_DEPLOY_CACHE/go/bin}
    KUSTOMIZE=$gobin/kustomize
    dp_deploy_lock
    if [ "$("$KUSTOMIZE" version 2>/dev/null)" != "$DP_KUSTOMIZE_VERSION" ]; then
        go=$(command -v go || echo /usr/local/go/bin/go)
        [ -x "$go" ] || { echo "FAIL: no Go to build kustomize with (go on PATH or /usr/local/go/bin/go)"; exec 9>&-; return 1; }
        scratch=$(mktemp -d "${TMPDIR:-/tmp}/dp-kustomize.XXXXXX")
        started=$(date +%s)
        if ! GOBIN=$gobin GOPATH=$scratch GOMODCACHE=$scratch/mod GOCACHE=$scratch/build GOFLAGS=-modcacherw \
             GOTOOLCHAIN=local "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$DP_KUSTOMIZE_VERSION" >"$scratch/log" 2>&1; then
            echo "FAIL: go install sigs.k8s.io/kustomize/kustomize/v5@$DP_KUSTOMIZE_VERSION failed (is the Go module proxy reachable?):"
            tail -20 "$scratch/log"
            rm -rf "$scratch"; exec 9>&-; return 1
        fi
        rm -rf "$scratch"
        echo "built kustomize $DP_KUSTOMIZE_VERSION in $(( $(date +%s) - started )) s"
    fi
    exec 9>&-
}
