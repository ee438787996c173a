"""deploy/compose.yaml holds, offline, without a container engine:

- against the Compose Specification's JSON schema (the one check-jsonschema
  vendors, as its `check-compose-spec` hook uses it);
- in what the schema cannot say: every volume, secret and dependency a
  service names is declared, with the condition its target can meet; the
  secret's file is in git as an example; ports are published on loopback
  only; every dmarcpipe container runs as 10001 on a read-only root with no
  capabilities and no privilege gain, with /tmp, a healthcheck on
  --metrics-addr and a stop grace that covers an epoch; no secret is given
  in the environment; the Kafka URIs name the broker service; each worker's
  command is `run` with options that `dmarcpipe run --help` lists (and,
  when the program has `dmarcpipe config`, that it accepts);
- and the check can fail: broken copies (one fault each) must be reported.

usage: check_compose.py DMARCPIPE COMPOSE_FILE   (run by test_compose.sh)
"""
import copy
import os
import re
import subprocess
import sys
import tempfile

import yaml

from dmarcpipe_cli import clean_env, has_config_command, run_options

DMARCPIPE_IMAGE = "localhost/dmarcpipe"
WORKER_UID = "10001"
MIN_GRACE_S = 60  # an epoch ends within --flush-interval (60 s) plus its commit
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|SASL", re.I)


def seconds(d):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(d))
    if not m or not str(d):
        return -1
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def schema_errors(venv_bin, path):
    p = subprocess.run([os.path.join(venv_bin, "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path],
                       capture_output=True, text=True, timeout=120)
    return [] if p.returncode == 0 else ["schema: " + (p.stdout + p.stderr).strip()]


def named_volume(src):
    return src and not src.startswith(("/", ".", "~", "$"))


def check_worker_command(name, svc, opts, dmarcpipe, config_cmd, services):
    errs = []
    cmd = svc.get("command")
    if not isinstance(cmd, list) or not cmd or cmd[0] != "run":
        return [f"{name}: command must be a list starting with run, not {cmd!r}"]
    if "--follow" not in cmd:
        errs.append(f"{name}: a service runs for good: run --follow")
    for a in cmd[1:]:
        if a.startswith("--") and a[2:].split("=")[0] not in opts:
            errs.append(f"{name}: `dmarcpipe run` has no option {a}")
    for i, a in enumerate(cmd):
        if a in ("--sink",) or a.startswith(("kafka://",)):
            uri = cmd[i + 1] if a == "--sink" else a
            m = re.match(r"kafka://([^/]+)/", uri)
            if m:
                for hp in m.group(1).split(","):
                    host = hp.split(":")[0]
                    if host not in services:
                        errs.append(f"{name}: {uri} names broker {host}, which is no service")
    if "--metrics-addr" not in cmd or cmd[cmd.index("--metrics-addr") + 1] != "0.0.0.0:9108":
        errs.append(f"{name}: --metrics-addr 0.0.0.0:9108 is what the healthcheck and the ports expect")
    hc = " ".join(map(str, (svc.get("healthcheck") or {}).get("test") or []))
    if "127.0.0.1:9108/healthz" not in hc:
        errs.append(f"{name}: healthcheck must ask /healthz on 9108, not {hc!r}")
    if config_cmd and not errs:
        # what the program makes of this very command line, the
        # ${VAR:-default} of Compose replaced by its default
        args = [re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", a) for a in cmd[1:]]
        env = svc.get("environment") or {}
        p = subprocess.run([dmarcpipe, "config"] + args, capture_output=True, text=True, timeout=30,
                           env=clean_env(env if isinstance(env, dict) else {}))
        if p.returncode != 0:
            errs.append(f"{name}: `dmarcpipe config` refuses the command: {(p.stdout + p.stderr).strip()}")
    return errs


def semantic_errors(doc, base_dir, opts, dmarcpipe, config_cmd):
    errs = []
    if not isinstance(doc, dict):
        return ["not a mapping"]
    if "version" in doc:
        errs.append("`version:` is obsolete in the Compose Specification")
    services = doc.get("services") or {}
    vols = doc.get("volumes") or {}
    secrets = doc.get("secrets") or {}
    used_vols = set()
    for name, svc in services.items():
        if not svc.get("image"):
            errs.append(f"{name}: no image")
        if "ALL" not in (svc.get("cap_drop") or []):
            errs.append(f"{name}: cap_drop must hold ALL")
        if "no-new-privileges:true" not in (svc.get("security_opt") or []):
            errs.append(f"{name}: security_opt must hold no-new-privileges:true")
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if named_volume(src):
                used_vols.add(src)
                if src not in vols:
                    errs.append(f"{name}: volume {src} is not declared under volumes:")
        for s in svc.get("secrets") or []:
            sname = s if isinstance(s, str) else s.get("source")
            if sname not in secrets:
                errs.append(f"{name}: secret {sname} is not declared under secrets:")
        for dep, how in (svc.get("depends_on") or {}).items():
            if dep not in services:
                errs.append(f"{name}: depends on {dep}, which is no service")
                continue
            cond = (how or {}).get("condition")
            if cond == "service_healthy" and not services[dep].get("healthcheck"):
                errs.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
            if cond == "service_completed_successfully" and services[dep].get("restart") not in (None, "no"):
                errs.append(f"{name}: waits for {dep} to complete, which restarts")
        for p in svc.get("ports") or []:
            if not str(p).startswith("127.0.0.1:"):
                errs.append(f"{name}: port {p} is published beyond loopback")
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        for k, v in env.items():
            if SECRET_WORDS.search(k) and not k.endswith("_FILE"):
                errs.append(f"{name}: {k} in the environment: secrets go in a secret file")
        if str(svc.get("image", "")).startswith(DMARCPIPE_IMAGE):
            if str(svc.get("user", "")).split(":")[0] != WORKER_UID:
                errs.append(f"{name}: must run as user {WORKER_UID}")
            if svc.get("read_only") is not True:
                errs.append(f"{name}: read_only must be true")
            if svc.get("command"):  # a worker, not a one-shot
                if "/tmp" not in (svc.get("tmpfs") or []):
                    errs.append(f"{name}: a read-only root needs tmpfs /tmp")
                if seconds(svc.get("stop_grace_period", "")) < MIN_GRACE_S:
                    errs.append(f"{name}: stop_grace_period must let an epoch end (>= {MIN_GRACE_S}s)")
                if "depends_on" not in svc:
                    errs.append(f"{name}: must wait for its broker (depends_on)")
                errs += check_worker_command(name, svc, opts, dmarcpipe, config_cmd, services)
    for v in vols:
        if v not in used_vols:
            errs.append(f"volume {v} is declared and never used")
    for sname, s in secrets.items():
        if "environment" in s:
            errs.append(f"secret {sname}: from a file, not from the environment")
        f = s.get("file")
        if f:
            p = os.path.normpath(os.path.join(base_dir, f))
            if not os.path.exists(p) and not os.path.exists(p + ".example"):
                errs.append(f"secret {sname}: neither {p} nor {p}.example exists")
    return errs


def all_errors(path, base_dir, venv_bin, opts, dmarcpipe, config_cmd):
    errs = schema_errors(venv_bin, path)
    if errs:  # the checks below read a file of the schema's shape
        return errs
    with open(path) as f:
        doc = yaml.safe_load(f)
    return semantic_errors(doc, base_dir, opts, dmarcpipe, config_cmd)


def mutations():
    """(what, how) pairs: each breaks one thing the check guards."""
    def svc(name, fn):
        def go(d):
            fn(d["services"][name])
        return go
    yield "an unknown key in a service", svc("worker-s3", lambda s: s.__setitem__("restrat", "always"))
    yield "a wrong type (cap_drop a number)", svc("kafka", lambda s: s.__setitem__("cap_drop", 7))
    yield "the obsolete version key", lambda d: d.__setitem__("version", "3.8")
    yield "an undeclared volume", svc("worker-maildir", lambda s: s["volumes"].append("spool:/var/spool/x"))
    yield "a declared volume no one uses", lambda d: d["volumes"].__setitem__("spare", None)
    yield "an undeclared secret", svc("worker-s3", lambda s: s["secrets"].append("kafka-password"))
    yield "a secret key inline", svc("worker-s3", lambda s: s["environment"].__setitem__("AWS_SECRET_ACCESS_KEY", "x"))
    yield "a port on every address", svc("worker-maildir", lambda s: s.__setitem__("ports", ["9108:9108"]))
    yield "a writable root", svc("worker-s3", lambda s: s.__setitem__("read_only", False))
    yield "root", svc("worker-maildir", lambda s: s.__setitem__("user", "0"))
    yield "capabilities kept", svc("worker-s3", lambda s: s.__setitem__("cap_drop", ["NET_RAW"]))
    yield "no /tmp", svc("worker-s3", lambda s: s.pop("tmpfs"))
    yield "a short stop", svc("worker-s3", lambda s: s.__setitem__("stop_grace_period", "10s"))
    yield "healthy, of a service with no healthcheck", svc("kafka", lambda s: s.pop("healthcheck"))
    yield "a dependency on no service", svc("worker-s3", lambda s: s["depends_on"].__setitem__("zookeeper", {"condition": "service_started"}))
    yield "an option dmarcpipe lacks", svc("worker-s3", lambda s: s["command"].insert(1, "--no-such-option"))
    yield "a broker that is no service", svc("worker-maildir", lambda s: s["command"].__setitem__(
        s["command"].index("--sink") + 1, "kafka://broker:9092/dmarc.rollups"))
    yield "a bad value of an option", svc("worker-s3", lambda s: s["command"].__setitem__(slice(1, 1), ["--workers", "many"]))
    yield "a missing secret file", lambda d: d["secrets"]["aws-credentials"].__setitem__("file", "./secrets/nothing")


def main():
    dmarcpipe, compose = sys.argv[1], sys.argv[2]
    venv_bin = os.path.dirname(sys.executable)
    base_dir = os.path.dirname(os.path.abspath(compose))
    opts = run_options(dmarcpipe, ("sink", "follow"))
    config_cmd = has_config_command(dmarcpipe)
    print(f"dmarcpipe run --help lists {len(opts)} options; `dmarcpipe config`: {'yes' if config_cmd else 'not in this build'}")
    fail = 0
    errs = base_errs = all_errors(compose, base_dir, venv_bin, opts, dmarcpipe, config_cmd)
    if errs:
        fail = 1
        print(f"FAIL {compose}:\n  " + "\n  ".join(errs))
    else:
        print(f"ok: {compose}: the Compose Specification's schema and every semantic check")
    with open(compose) as f:
        doc = yaml.safe_load(f)
    with tempfile.TemporaryDirectory() as tmp:
        for what, how in mutations():
            d = copy.deepcopy(doc)
            how(d)
            path = os.path.join(tmp, "compose.yaml")
            with open(path, "w") as f:
                yaml.safe_dump(d, f, sort_keys=False)
            # reported: an error the file itself does not have
            errs = [e for e in all_errors(path, base_dir, venv_bin, opts, dmarcpipe, config_cmd)
                    if e not in base_errs]
            if errs:
                print(f"ok: broken copy reported ({what}): {errs[0][:160]}")
            else:
                fail = 1
                print(f"FAIL: broken copy passed ({what})")
    return fail


if __name__ == "__main__":
    sys.exit(main())
