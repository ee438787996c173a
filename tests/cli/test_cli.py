#!/usr/bin/env python3
"""test_cli -- the option tables: --help, the man page, the configuration
file, the DMARCPIPE_* variables and `dmarcpipe config`, from the running
program.

  * man:        the build's dmarcpipe.1 is what `dmarcpipe help --man`
                prints, groff renders it with every warning on and says
                nothing, and it has every section an operator looks for;
  * options:    every option of every command's --help is in that
                command's part of the man page, and nothing else is;
  * precedence: defaults < file < environment < flags, a repeatable
                option taking the highest layer's list whole; and a real
                batch run writes where the winning layer says;
  * errors:     an unknown key, a list for a single value, a bad value, a
                key given twice, YAML that does not parse, a bad variable:
                exit 2, one line naming the file, the line and the key (or
                the variable); a mistyped DMARCPIPE_* variable is a warning;
  * secrets:    `dmarcpipe config` shows no secret, whichever layer gave it;
  * round trip: `dmarcpipe config`'s output, read back with --config and
                nothing else, gives the same configuration.

Usage: test_cli.py DMARCPIPE BUILD_DIR SAMPLES_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DMARCPIPE_") and not k.startswith("AWS_")}
    env.update(extra)
    return env


def dp(binary, *args, env=None, cwd=None):
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env or clean_env(), cwd=cwd,
                          timeout=120)


# ---- the man page against --help --------------------------------------------

def help_options(text):
    """The options a --help lists: '-X', '--sink', ... (lines that start with two spaces and a dash)."""
    found = set()
    for line in text.splitlines():
        m = re.match(r"^  (-\w)?(?:, )?(--[\w-]+)?", line)
        if m and (m.group(1) or m.group(2)):
            found.update(g for g in m.groups() if g)
    return found


def man_sections(roff):
    """{command: set of options} from the COMMANDS section's .SS parts."""
    out = {}
    cmd = None
    lines = roff.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            cmd = None
        m = re.match(r'^\.SS "dmarcpipe (\w+)', line)
        if m:
            cmd = m.group(1)
            out[cmd] = set()
        if cmd and line == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(".B "):
            label = lines[i + 1][3:].replace("\\-", "-")
            m = re.match(r"^(-\w)?(?:, )?(--[\w-]+)?", label)
            out[cmd].update(g for g in m.groups() if g)
    return out


def test_man(binary, build):
    r = dp(binary, "help", "--man")
    check(r.returncode == 0 and r.stdout.startswith(".TH DMARCPIPE 1"), "help --man prints a page")
    page = os.path.join(build, "dmarcpipe.1")
    built = open(page).read() if os.path.exists(page) else ""
    check(built == r.stdout, "the build's dmarcpipe.1 is the program's page")
    for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "CONFIGURATION", "ENVIRONMENT", "EXIT STATUS",
                "FILES", "EXAMPLES", "SEE ALSO"):
        check(re.search(r"^\.SH \"?%s\"?$" % sec, r.stdout, re.M) is not None, "man page has " + sec)
    g = subprocess.run(["groff", "-man", "-ww", "-z"], input=r.stdout, capture_output=True, text=True)
    check(g.returncode == 0 and g.stderr == "", "groff -man -ww -z: no warnings " + g.stderr.strip()[:300])
    if shutil.which("man"):
        m = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
        check(m.returncode == 0 and m.stderr.strip() == "", "man --warnings -l: no warnings " + m.stderr.strip()[:300])
        check("--metrics-addr" in m.stdout.replace("\u2010", "-"), "the rendered page lists --metrics-addr")

    sections = man_sections(r.stdout)
    for cmd in ("run", "parse", "report", "config"):
        h = dp(binary, cmd, "--help")
        check(h.returncode == 0, f"{cmd} --help exits 0")
        opts = help_options(h.stdout)
        check(len(opts) >= 3, f"{cmd} --help lists options ({sorted(opts)})")
        man = sections.get(cmd, set())
        check(opts <= man, f"{cmd}: every --help option is in the man page (missing: {sorted(opts - man)})")
        check(man <= opts, f"{cmd}: every man page option is in --help (extra: {sorted(man - opts)})")
    for must in ("--log-level", "--log-format", "--metrics-addr", "--progress", "--config", "--sink", "-X"):
        check(must in sections.get("run", set()), f"run's table has {must}")
    for cmd in ("parse", "report"):
        check({"--log-level", "--log-format"} <= sections.get(cmd, set()), f"{cmd}'s table has the log options")


# ---- `dmarcpipe config` output -----------------------------------------------

def parse_config(text):
    """{key: (kind, values, origin)} from `dmarcpipe config`'s YAML (its own, simple shape)."""
    out = {}
    key = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        body, _, origin = line.partition("  # ")
        if line.startswith("  - "):
            out[key][1].append(unquote(body[4:]))
        elif line.startswith("  "):
            k, _, v = body.strip().partition(": ")
            out[key][1].append(unquote(k) + "=" + unquote(v))
        else:
            k, _, v = body.partition(":")
            key = k
            v = v.strip()
            out[k] = ("scalar" if v else "list", [unquote(v)] if v else [], origin.strip())
    return out


def unquote(v):
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return re.sub(r'\\(.)', r"\1", v[1:-1])
    return v


def values(text):
    return {k: v[1] for k, v in parse_config(text).items()}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_precedence(binary, d, samples):
    cfg = write(os.path.join(d, "p.yaml"),
                "workers: 3\nshards: 2\nwindow: 1h\nsink: [file:/a.ndjson, file:/b.ndjson]\n"
                "sources:\n  - /src/one\n  - /src/two\nfollow: true\npoll: 7\n")
    r = dp(binary, "config", "--config", cfg)
    c = parse_config(r.stdout)
    check(r.returncode == 0, "config --config FILE exits 0 " + r.stderr.strip())
    check(c.get("workers", (0, 0, ""))[1:] == (["3"], "file %s:1" % cfg), "a file value, named with its line")
    check(c.get("sink", (0, [], ""))[1] == ["file:/a.ndjson", "file:/b.ndjson"], "a file list")
    check(c.get("sources", (0, [], ""))[1] == ["/src/one", "/src/two"], "the SOURCEs from the file")
    check(c.get("flush-interval", (0, 0, ""))[1:] == (["60"], "default"), "a default says so")

    env = clean_env(DMARCPIPE_CONFIG=cfg, DMARCPIPE_WORKERS="5", DMARCPIPE_SINK="file:/c.ndjson\nfile:/d.ndjson",
                    DMARCPIPE_FOLLOW="false", DMARCPIPE_FLUSH_INTERVAL="9")
    r = dp(binary, "config", "--shards", "4", "--poll", "8", env=env)
    c = parse_config(r.stdout)
    check(r.returncode == 0, "DMARCPIPE_CONFIG names the file " + r.stderr.strip())
    check(c["workers"][1:] == (["5"], "env DMARCPIPE_WORKERS"), "env over file")
    check(c["flush-interval"][1:] == (["9"], "env DMARCPIPE_FLUSH_INTERVAL"), "env over default, - written _")
    check(c["shards"][1:] == (["4"], "flag --shards"), "flag over file")
    check(c["window"][1] == ["1h"], "the file still counts where nothing overrides it")
    check(c["sink"][1] == ["file:/c.ndjson", "file:/d.ndjson"], "env list replaces the file's list (newlines)")
    check(c["follow"][1] == ["false"], "a switch set false by env over true in the file")
    r = dp(binary, "config", "--sink", "file:/e.ndjson", "/src/three", env=env)
    c = parse_config(r.stdout)
    check(c["sink"][1] == ["file:/e.ndjson"], "a flag list replaces env's and the file's")
    check(c["sources"][1] == ["/src/three"], "SOURCEs on the command line replace the file's")
    env2 = dict(env, DMARCPIPE_SOURCES="/s/x /s/y", DMARCPIPE_WORKERS="6")
    r = dp(binary, "config", "--workers", "7", env=env2)
    c = parse_config(r.stdout)
    check(c["sources"][1] == ["/s/x", "/s/y"], "DMARCPIPE_SOURCES, space-separated")
    check(c["workers"][1:] == (["7"], "flag --workers"), "flag over env")

    # a real run: the file says where to write, the environment says otherwise
    src = os.path.join(d, "in")
    os.makedirs(src)
    for name in sorted(os.listdir(samples))[:4]:
        shutil.copy(os.path.join(samples, name), src)
    out = os.path.join(d, "out")
    runcfg = write(os.path.join(d, "run.yaml"),
                   f"sink: file:{out}/file.ndjson\nreports: {out}/reports.ndjson\nstate: {out}/state\n"
                   f"quarantine: {out}/q\nworkers: 2\nshards: 1\nsources: [{src}]\n")
    os.makedirs(out)
    r = dp(binary, "run", "--config", runcfg, "--log-format", "plain", cwd=d)
    check(r.returncode in (0, 1) and os.path.getsize(os.path.join(out, "file.ndjson")) > 0,
          "run --config FILE writes the file's sink " + r.stderr.strip()[-300:])
    check(re.search(r"2 workers, 1 shards", r.stderr) is not None, "run takes workers and shards from the file")
    r = dp(binary, "run", "--config", runcfg, "--state", out + "/state2", "--reports", out + "/reports2.ndjson", cwd=d,
           env=clean_env(DMARCPIPE_SINK=f"file:{out}/env.ndjson"))
    check(r.returncode in (0, 1) and os.path.exists(os.path.join(out, "env.ndjson"))
          and os.path.getsize(os.path.join(out, "env.ndjson")) > 0, "DMARCPIPE_SINK overrides the file's sink")


def test_errors(binary, d):
    cases = [
        ("wrkers: 2\n", "wrkers", 1, "unknown key"),
        ("window: 1d\nworkers: [1, 2]\n", "workers", 2, "not a list"),
        ("workers: 0\n", "workers", 1, "--workers needs a number"),
        ("window: 2h\n", "window", 1, "--window is 1h or 1d"),
        ("follow: maybe\n", "follow", 1, "true or false"),
        ("poll: 3\npoll: 4\n", "poll", 2, "given twice"),
        ("kafka: SASL\n", "kafka", 1, "mapping"),
        ("sink: {a: b}\n", "sink", 1, "not a mapping"),
        ("help: true\n", "help", 1, "unknown key"),
        ("config: other.yaml\n", "config", 1, "unknown key"),
        ("state:\n", "state", 1, "no value"),
    ]
    for text, key, line, why in cases:
        f = write(os.path.join(d, "bad.yaml"), text)
        for cmd in ("run", "config"):
            r = dp(binary, cmd, "--config", f, "/nonexistent-source")
            lines = r.stderr.strip().splitlines()
            check(r.returncode == 2 and len(lines) == 1 and f"{f}:{line}" in r.stderr and f"'{key}'" in r.stderr
                  and why in r.stderr and r.stdout == "",
                  f"{cmd}: {text.strip()!r}: exit 2, one line naming file, line, key: {r.stderr.strip()!r}")
    f = write(os.path.join(d, "bad.yaml"), "workers: [1\n")
    r = dp(binary, "config", "--config", f)
    check(r.returncode == 2 and f in r.stderr and "not YAML" in r.stderr, "YAML that does not parse: " + r.stderr.strip())
    f = write(os.path.join(d, "bad.yaml"), "- workers\n")
    r = dp(binary, "config", "--config", f)
    check(r.returncode == 2 and "mapping" in r.stderr, "a list at the top: " + r.stderr.strip())
    r = dp(binary, "config", "--config", os.path.join(d, "absent.yaml"))
    check(r.returncode == 2 and "absent.yaml" in r.stderr, "a missing file: " + r.stderr.strip())
    r = dp(binary, "run", "x", env=clean_env(DMARCPIPE_WINDOW="2d"))
    check(r.returncode == 2 and "DMARCPIPE_WINDOW" in r.stderr and "--window" in r.stderr,
          "a bad variable names itself: " + r.stderr.strip())
    r = dp(binary, "run", "x", env=clean_env(DMARCPIPE_FOLLOW="sometimes"))
    check(r.returncode == 2 and "DMARCPIPE_FOLLOW" in r.stderr, "a switch's variable takes true/false")
    r = dp(binary, "config", env=clean_env(DMARCPIPE_WROKERS="4", DMARCPIPE_ARGS="--follow",
                                           DMARCPIPE_KAFKA_CLIENT_ID="x"))
    check(r.returncode == 0 and "DMARCPIPE_WROKERS" in r.stderr and "warning" in r.stderr,
          "a mistyped variable is a warning, not an error")
    check("DMARCPIPE_ARGS" not in r.stderr and "DMARCPIPE_KAFKA_CLIENT_ID" not in r.stderr,
          "known variables are not warned about")
    r = dp(binary, "config", env=clean_env(DMARCPIPE_KAFKA_CONFIG="/etc/x.properties"))
    check("kafka-config" not in [k for k, v in parse_config(r.stdout).items() if v[1]],
          "DMARCPIPE_KAFKA_CONFIG is a librdkafka property, not --kafka-config")
    r = dp(binary, "run", "--workers", "0", "x")
    check(r.returncode == 2 and r.stderr.strip() == "dmarcpipe run: --workers needs a number from 1 to 1024, got '0'",
          "a flag's message is as it was: " + r.stderr.strip())
    r = dp(binary, "parse", "--max-depth", "0", "x")
    check(r.returncode == 2 and "--max-depth needs a positive number" in r.stderr, "parse's limits are checked")
    r = dp(binary, "report", "--format", "pdf", "x")
    check(r.returncode == 2 and "--format is table, json or html" in r.stderr, "report's --format is checked")


SECRETS = ["Hunter2FromFile", "FlagSecret77", "EnvKafkaPw31", "ImapPw9",
           "AwsSecretXyz", "AwsTokenQq", "UriPassW0rd", "FileUriPw5"]


def test_secrets(binary, d):
    cfg = write(os.path.join(d, "s.yaml"),
                "kafka:\n  sasl.username: reader\n  sasl.password: Hunter2FromFile\n"
                "sink: ['kafka://u:FileUriPw5@k1:9092/t']\n")
    env = clean_env(DMARCPIPE_KAFKA_SASL_PASSWORD="EnvKafkaPw31", DMARCPIPE_IMAP_PASSWORD="ImapPw9",
                    AWS_SECRET_ACCESS_KEY="AwsSecretXyz", AWS_SESSION_TOKEN="AwsTokenQq",
                    AWS_ACCESS_KEY_ID="AKIDEXAMPLE")
    r = dp(binary, "config", "--config", cfg, "imaps://dmarc:UriPassW0rd@imap.example.com/INBOX", env=env)
    check(r.returncode == 0, "config with secrets exits 0 " + r.stderr.strip())
    both = r.stdout + r.stderr
    for s in SECRETS[:1] + SECRETS[2:]:
        check(s not in both, f"config does not show {s}")
    check("reader" in r.stdout, "a property that is no secret is shown")
    check(both.count("********") >= 6, "secrets are masked, not dropped")
    r = dp(binary, "config", "-X", "sasl.password=FlagSecret77", "-X", "ssl.key.password=FlagSecret77",
           "--sink", "kafka://u:FlagSecret77@h:9092/t", env=env)
    check(r.returncode == 0 and "FlagSecret77" not in r.stdout + r.stderr, "secrets from flags are masked")
    r = dp(binary, "run", "--config", cfg, "--workers", "0", "x", env=env)
    check(not any(s in r.stdout + r.stderr for s in SECRETS), "no secret in run's errors")


def test_round_trip(binary, d):
    cfg = write(os.path.join(d, "r.yaml"),
                "workers: 3\nwindow: 1h\nfollow: true\nsink:\n  - file:/o/r.ndjson\n  - '-'\n"
                "kafka: {security.protocol: SASL_SSL, client.id: 'a b: c'}\nsources: [maildir:/m, 'file:/x #y']\n"
                "instance-id: w1\nmax-text: 128K\nlog-format: json\n")
    env = clean_env(DMARCPIPE_POLL="5", DMARCPIPE_DONE="/var/done")
    a = dp(binary, "config", "--config", cfg, "--shards", "2", "--metrics-addr", "127.0.0.1:9100", env=env)
    check(a.returncode == 0, "config (three layers) exits 0 " + a.stderr.strip())
    back = write(os.path.join(d, "back.yaml"), a.stdout)
    b = dp(binary, "config", "--config", back)
    check(b.returncode == 0, "config's output is a file --config takes " + b.stderr.strip())
    va, vb = values(a.stdout), values(b.stdout)
    check(va == vb and va.get("sink") == ["file:/o/r.ndjson", "-"] and va.get("poll") == ["5"]
          and va.get("kafka") == ["security.protocol=SASL_SSL", "client.id=a b: c"]
          and va.get("sources") == ["maildir:/m", "file:/x #y"],
          "read back, the same configuration " + str(sorted(k for k in set(va) | set(vb) if va.get(k) != vb.get(k))))


def main():
    binary, build, samples = (os.path.abspath(a) for a in sys.argv[1:4])
    test_man(binary, build)
    with tempfile.TemporaryDirectory(prefix="dp-cli-") as d:
        test_precedence(binary, d, samples)
        test_errors(binary, d)
        test_secrets(binary, d)
        test_round_trip(binary, d)
    print(f"{len(FAILS)} failure(s)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
