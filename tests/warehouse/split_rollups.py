#!/usr/bin/env python3
"""Split each rollup of an NDJSON file into N partial rollups with the same key.

This is what a warehouse sees when dmarcpipe flushes a key more than once
(--flush-interval, --max-keys), or when two runs cover the same window:
  * messages and records are divided between the parts, and add up to the
    original;
  * first_seen and last_seen are spread so that the min over the parts is
    the original first_seen and the max is the original last_seen;
  * the lines are then shuffled (deterministically, --seed), so the parts
    of one key are not adjacent.

Merging the output by key must give back the input exactly.  Standard
library only.

    split_rollups.py [--parts N] [--seed S] [IN|-] > OUT
"""
import argparse
import json
import random
import sys


def split(obj, parts):
    m, r = obj["messages"], obj["records"]
    fs, ls = obj["first_seen"], obj["last_seen"]
    mid = (fs + ls) // 2
    out = []
    for i in range(parts):
        p = dict(obj)
        # the remainder goes to the first part
        p["messages"] = m // parts + (m % parts if i == 0 else 0)
        p["records"] = r // parts + (r % parts if i == 0 else 0)
        p["first_seen"] = fs if i == 0 else mid
        p["last_seen"] = ls if i == parts - 1 else mid
        out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", nargs="?", default="-")
    ap.add_argument("--parts", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.parts < 1:
        ap.error("--parts must be at least 1")
    src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    lines = []
    with src:
        for line in src:
            if line.strip():
                # keep the field order of the feed (json keeps insertion order)
                lines += [json.dumps(p, separators=(",", ":"), ensure_ascii=False)
                          for p in split(json.loads(line), args.parts)]
    random.Random(args.seed).shuffle(lines)
    for line in lines:
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
