#!/usr/bin/env python3
"""Prints the lowest Node.js version that every package of an npm lock file accepts.

    node_engines.py LOCKFILE [NODE_VERSION]

Reads each package's `engines.node` range.  For a range of alternatives ("^14.13.1 || >=16") the
lowest version any alternative admits counts; the answer is the highest of those over all packages,
printed as "MAJOR.MINOR.PATCH PACKAGE" (the package that asks for it).  With NODE_VERSION (as
`node --version` prints it) the exit status is 3 when that version is older, else 0.
"""

import json
import re
import sys


def parse(version):
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def lowest_admitted(spec):
    """The lowest version a range admits, or None for a range this does not understand."""
    lows = []
    for alternative in spec.split("||"):
        m = re.search(r"(?:>=|\^|~|=)?\s*v?(\d+(?:\.\d+){0,2})", alternative.strip())
        if m is None:
            return None
        lows.append(parse(m.group(1)))
    return min(lows) if lows else None


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        lock = json.load(f)
    need, who = (0, 0, 0), "-"
    for name, package in lock.get("packages", {}).items():
        engines = package.get("engines")
        spec = engines.get("node") if isinstance(engines, dict) else None
        low = lowest_admitted(spec) if isinstance(spec, str) else None
        if low is not None and low > need:
            need, who = low, name.rsplit("node_modules/", 1)[-1] or lock.get("name", "(root)")
    print(".".join(map(str, need)), who)
    if len(sys.argv) > 2:
        return 3 if parse(sys.argv[2]) < need else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
