"""deploy/kubernetes/ holds, offline, without a cluster:

- kustomize builds the base and overlays/example (a resource the
  kustomization names but that is missing fails the build);
- every object rendered validates, strictly (no unknown field), against the
  Kubernetes API's schemas of K8S_VERSIONS (kubernetes-validate);
- what the schemas cannot say: each workload runs as 10001, non-root, on a
  read-only root with /tmp, no privilege gain, no capabilities, the
  RuntimeDefault seccomp profile, requests and limits, /healthz liveness and
  /readyz readiness on 9108, a grace period that lets an epoch end; every
  volume, ConfigMap, Secret and Service it names is rendered; the Service,
  the StatefulSet's governing Service and the PodDisruptionBudgets select
  pods that exist; each dmarcpipe config file has only keys that are
  `dmarcpipe run` options and that `dmarcpipe config` loads, with --metrics-addr on 9108, and the files it names are mounted;
- and the check can fail: broken copies (one fault each) must be reported.

usage: check_kubernetes.py DMARCPIPE KUSTOMIZE DEPLOY_KUBERNETES_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

from dmarcpipe_cli import clean_env, has_config_command, run_options

K8S_VERSIONS = ["1.31", "1.37"]
BUILDS = ["base", "overlays/example"]
WORKER_UID = 10001
MIN_GRACE_S = 60  # an epoch ends within --flush-interval (60 s) plus its commit
WORKLOADS = ("Deployment", "StatefulSet")


def build(kustomize, tree, which):
    p = subprocess.run([kustomize, "build", os.path.join(tree, which)], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return None, [f"{which}: kustomize build: {p.stderr.strip()}"]
    return [d for d in yaml.safe_load_all(p.stdout) if d], []


def schema_errors(which, docs):
    errs = []
    for d in docs:
        for v in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(d, v, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(i) for i in e.path)
                errs.append(f"{which}: {d['kind']}/{d['metadata']['name']} (k8s {v}): {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                errs.append(f"{which}: {d.get('kind')}: no schema in k8s {v}: {e}")
    return errs


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def probe_ok(probe, path, ports):
    g = (probe or {}).get("httpGet") or {}
    port = g.get("port")
    return g.get("path") == path and ports.get(port, port) == 9108


def workload_errors(which, w, by_kind, opts, dmarcpipe, config_cmd):
    name = f"{which}: {w['kind']}/{w['metadata']['name']}"
    errs = []
    pod = w["spec"]["template"]
    spec = pod["spec"]
    labels = pod["metadata"].get("labels") or {}
    if not matches(w["spec"]["selector"].get("matchLabels"), labels):
        errs.append(f"{name}: selector does not match its pods' labels")
    psc = spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != WORKER_UID:
        errs.append(f"{name}: pod must run as non-root user {WORKER_UID}")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        errs.append(f"{name}: pod seccompProfile must be RuntimeDefault")
    if (spec.get("terminationGracePeriodSeconds") or 30) < MIN_GRACE_S:
        errs.append(f"{name}: terminationGracePeriodSeconds must let an epoch end (>= {MIN_GRACE_S})")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for t in w["spec"].get("volumeClaimTemplates") or []:
        volumes[t["metadata"]["name"]] = {"pvc": True}
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
    for vn, v in volumes.items():
        if "configMap" in v and v["configMap"]["name"] not in cms:
            errs.append(f"{name}: volume {vn} names ConfigMap {v['configMap']['name']}, not rendered")
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            errs.append(f"{name}: volume {vn} names Secret {v['secret']['secretName']}, not rendered")
    if w["kind"] == "StatefulSet":
        svc = [s for s in by_kind.get("Service", []) if s["metadata"]["name"] == w["spec"].get("serviceName")]
        if not svc or not matches(svc[0]["spec"].get("selector"), labels):
            errs.append(f"{name}: serviceName names no Service that selects its pods")
    for c in spec["containers"]:
        cn = f"{name} container {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            errs.append(f"{cn}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            errs.append(f"{cn}: allowPrivilegeEscalation must be false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            errs.append(f"{cn}: capabilities must drop ALL")
        if sc.get("runAsNonRoot") is not True:
            errs.append(f"{cn}: runAsNonRoot must be true")
        res = c.get("resources") or {}
        for k in ("requests", "limits"):
            if not all(r in (res.get(k) or {}) for r in ("cpu", "memory")):
                errs.append(f"{cn}: resources.{k} needs cpu and memory")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
        if not probe_ok(c.get("livenessProbe"), "/healthz", ports):
            errs.append(f"{cn}: livenessProbe must GET /healthz on 9108")
        if not probe_ok(c.get("readinessProbe"), "/readyz", ports):
            errs.append(f"{cn}: readinessProbe must GET /readyz on 9108")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        for m in mounts.values():
            if m["name"] not in volumes:
                errs.append(f"{cn}: mount {m['mountPath']} names no volume {m['name']}")
        if "/tmp" not in mounts:
            errs.append(f"{cn}: a read-only root needs a volume at /tmp")
        if "/var/lib/dmarcpipe" not in mounts:
            errs.append(f"{cn}: the state needs a volume at /var/lib/dmarcpipe")

        def mounted(path):
            """The ConfigMap or Secret key a path reads, through the mounts."""
            for mp, m in mounts.items():
                if path.startswith(mp.rstrip("/") + "/"):
                    key = path[len(mp.rstrip("/")) + 1:]
                    v = volumes.get(m["name"], {})
                    src = (cms.get((v.get("configMap") or {}).get("name"))
                           or secrets.get((v.get("secret") or {}).get("secretName")))
                    if src and key in {**(src.get("data") or {}), **(src.get("stringData") or {})}:
                        return src
            return None

        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        if (c.get("args") or [None])[0] != "run":
            errs.append(f"{cn}: args must be run")
        for k in env:
            if re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", k) and not k.endswith("_FILE"):
                errs.append(f"{cn}: {k} in the environment: secrets are mounted files")
        for k in ("AWS_SHARED_CREDENTIALS_FILE",):
            if k in env and not mounted(env[k]):
                errs.append(f"{cn}: {k}={env[k]} is no mounted Secret key")
        conf = env.get("DMARCPIPE_CONFIG")
        src = mounted(conf) if conf else None
        if not src:
            errs.append(f"{cn}: DMARCPIPE_CONFIG={conf} is no mounted ConfigMap key")
            continue
        text = src["data"][os.path.basename(conf)]
        errs += config_errors(cn, conf, text, opts, dmarcpipe, config_cmd, mounted)
    return errs


def config_errors(cn, conf, text, opts, dmarcpipe, config_cmd, mounted):
    errs = []
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict):
        return [f"{cn}: {conf} is not a mapping"]
    for k in cfg:
        if k != "sources" and k not in opts:
            errs.append(f"{cn}: {conf}: key {k} is no option of `dmarcpipe run`")
    if not cfg.get("sources"):
        errs.append(f"{cn}: {conf}: no sources")
    if cfg.get("follow") is not True:
        errs.append(f"{cn}: {conf}: a service runs for good: follow: true")
    if str(cfg.get("metrics-addr", "")).rsplit(":", 1)[-1] != "9108":
        errs.append(f"{cn}: {conf}: metrics-addr must be on port 9108, where the probes ask")
    for k in ("kafka-config",):
        if k in cfg and not mounted(cfg[k]):
            errs.append(f"{cn}: {conf}: {k} {cfg[k]} is no mounted Secret key")
    if config_cmd and not errs:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(text)
            f.flush()
            p = subprocess.run([dmarcpipe, "config"], capture_output=True, text=True, timeout=30,
                               env=clean_env({"DMARCPIPE_CONFIG": f.name}))
            if p.returncode != 0:
                errs.append(f"{cn}: {conf}: `dmarcpipe config` refuses it: {(p.stdout + p.stderr).strip()}")
    return errs


def semantic_errors(which, docs, opts, dmarcpipe, config_cmd):
    errs = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for k in ("Namespace", "ConfigMap", "Secret", "Deployment", "StatefulSet", "Service", "PodDisruptionBudget"):
        if k not in by_kind:
            errs.append(f"{which}: no {k} rendered")
    pods = [w["spec"]["template"]["metadata"].get("labels") or {} for k in WORKLOADS for w in by_kind.get(k, [])]
    for w in (w for k in WORKLOADS for w in by_kind.get(k, [])):
        errs += workload_errors(which, w, by_kind, opts, dmarcpipe, config_cmd)
    for s in by_kind.get("Service", []):
        if not any(matches(s["spec"].get("selector"), p) for p in pods):
            errs.append(f"{which}: Service/{s['metadata']['name']} selects no pod")
        if not any(p.get("port") == 9108 for p in s["spec"]["ports"]):
            errs.append(f"{which}: Service/{s['metadata']['name']} has no port 9108")
        if (s["metadata"].get("annotations") or {}).get("prometheus.io/port") != "9108":
            errs.append(f"{which}: Service/{s['metadata']['name']} lacks the prometheus.io annotations")
    for p in by_kind.get("PodDisruptionBudget", []):
        if not any(matches(p["spec"]["selector"].get("matchLabels"), l) for l in pods):
            errs.append(f"{which}: PodDisruptionBudget/{p['metadata']['name']} selects no pod")
    return errs


def all_errors(kustomize, tree, opts, dmarcpipe, config_cmd):
    errs = []
    for which in BUILDS:
        docs, e = build(kustomize, tree, which)
        if e:
            errs += e
            continue
        e = schema_errors(which, docs)
        errs += e or semantic_errors(which, docs, opts, dmarcpipe, config_cmd)
    return errs


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    # the overlay's secret files are made from their examples, as a user would
    sec = os.path.join(dst, "overlays/example/secrets")
    for f in os.listdir(sec):
        if f.endswith(".example"):
            shutil.copy(os.path.join(sec, f), os.path.join(sec, f[:-len(".example")]))


def mutations():
    """(what, file, old, new): each breaks one thing the check guards."""
    yield "a resource file that is missing", "base/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - hpa.yaml\n"
    yield "an unknown field", "base/deployment-inbox.yaml", "          livenessProbe:", "          livenesProbe:"
    yield "a wrong type", "base/statefulset-s3.yaml", "  replicas: 1\n", "  replicas: one\n"
    yield "a writable root", "base/deployment-inbox.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"
    yield "root", "base/statefulset-s3.yaml", "        runAsUser: 10001\n        runAsGroup: 10001\n        fsGroup", "        runAsUser: 0\n        runAsGroup: 10001\n        fsGroup"
    yield "privilege escalation", "base/statefulset-s3.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"
    yield "no seccomp profile", "base/deployment-inbox.yaml", "      securityContext:\n        runAsNonRoot: true\n        runAsUser: 10001\n        runAsGroup: 10001\n        fsGroup: 10001\n        seccompProfile:\n          type: RuntimeDefault\n", "      securityContext:\n        runAsNonRoot: true\n        runAsUser: 10001\n        runAsGroup: 10001\n        fsGroup: 10001\n"
    yield "a readiness probe on the wrong path", "base/deployment-inbox.yaml", "path: /readyz", "path: /ready"
    yield "a short grace period", "base/statefulset-s3.yaml", "terminationGracePeriodSeconds: 120", "terminationGracePeriodSeconds: 10"
    yield "no memory limit", "base/deployment-inbox.yaml", "              cpu: \"2\"\n              memory: 1Gi\n", "              cpu: \"2\"\n"
    yield "a Secret that is not rendered", "base/statefulset-s3.yaml", "secretName: dmarcpipe\n", "secretName: dmarcpipe-s3\n"
    yield "a config key dmarcpipe lacks", "base/config/inbox.yaml", "follow: true\n", "follow: true\nno-such-option: 1\n"
    yield "a bad value in a config file", "base/config/s3.yaml", "workers: 2\n", "workers: many\n"
    yield "metrics elsewhere than the probes", "overlays/example/config/s3.yaml", "metrics-addr: 0.0.0.0:9108", "metrics-addr: 0.0.0.0:9200"
    yield "a PodDisruptionBudget that selects nothing", "base/pdb.yaml", "component: s3-follower", "component: s3-worker"
    yield "a Service that selects nothing", "base/service-metrics.yaml", "  selector:\n    app.kubernetes.io/name: dmarcpipe\n", "  selector:\n    app.kubernetes.io/name: dmarc\n"


def main():
    dmarcpipe, kustomize, src = sys.argv[1:4]
    opts = run_options(dmarcpipe, ("sink",))
    config_cmd = has_config_command(dmarcpipe)
    print(f"dmarcpipe run --help lists {len(opts)} options; `dmarcpipe config`: {'yes' if config_cmd else 'not in this build'}")
    fail = 0
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "good")
        copy_tree(src, tree)
        base_errs = all_errors(kustomize, tree, opts, dmarcpipe, config_cmd)
        if base_errs:
            fail = 1
            print(f"FAIL {src}:\n  " + "\n  ".join(base_errs))
        else:
            print(f"ok: {src}: {', '.join(BUILDS)} build, validate strictly against k8s "
                  f"{' and '.join(K8S_VERSIONS)}, and pass every semantic check")
        for i, (what, rel, old, new) in enumerate(mutations()):
            bad = os.path.join(tmp, f"bad{i}")
            copy_tree(src, bad)
            path = os.path.join(bad, rel)
            with open(path) as f:
                text = f.read()
            if old not in text:
                fail = 1
                print(f"FAIL: the broken copy ({what}) cannot be made: {rel} has no {old!r}")
                continue
            with open(path, "w") as f:
                f.write(text.replace(old, new, 1))
            errs = [e for e in all_errors(kustomize, bad, opts, dmarcpipe, config_cmd) if e not in base_errs]
            if errs:
                print(f"ok: broken copy reported ({what}): {errs[0][:200]}")
            else:
                fail = 1
                print(f"FAIL: broken copy passed ({what})")
    return fail


if __name__ == "__main__":
    sys.exit(main())
