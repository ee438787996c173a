"""dmarcpipe_cli.py -- what the deploy checks ask of the program itself:
the options `dmarcpipe run` takes, whether `dmarcpipe config` is there to
load a worker's command line or config file, and an environment free of
the caller's DMARCPIPE_* variables for doing so."""
import os
import re
import subprocess


def run_options(dmarcpipe, required):
    """The long options `dmarcpipe run --help` names; each of `required`
    must be among them, or the help is not what these checks read."""
    p = subprocess.run([dmarcpipe, "run", "--help"], capture_output=True, text=True, timeout=30)
    text = p.stdout + p.stderr
    opts = set(re.findall(r"--([a-z][a-z0-9-]+)", text))
    missing = [o for o in required if o not in opts]
    if missing:
        raise SystemExit(f"FAIL: `{dmarcpipe} run --help` does not list --{', --'.join(missing)}:\n{text}")
    return opts


def has_config_command(dmarcpipe):
    p = subprocess.run([dmarcpipe, "config", "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise SystemExit(f"FAIL: `{dmarcpipe} config --help` exits {p.returncode}: no `dmarcpipe config` to check with")
    return True


def clean_env(extra):
    """This environment without its DMARCPIPE_* variables, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMARCPIPE_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env
