#!/usr/bin/env python3
"""Alternates commands on the same nfcapd files and reports medians.

    python3 bench/nfcapd_ab.py ROUNDS POLICY FILE... -- NAME=PORT25_BIN ... [nfdump]

For each FILE, each round runs every command once, in turn (the order
rotating each round, so no command always follows the same one), and
takes its wall time and its CPU time (user + system, from the child's
rusage). Prints per command the medians of wall and CPU seconds, and the
ratio of nfdump's median wall to each port25's (above 1: port25 faster).
`nfdump` in the list runs `nfdump -r FILE -A srcip` with bench/nfcapd.sh's
filter; NAME=BIN runs `BIN egress flows -p POLICY --nfcapd FILE -f csv`.
Output of every command goes to /dev/null.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

FILTER = "proto tcp and dst port 25 and src net 10.0.0.0/16 and not src host 10.0.0.25"


def run(argv):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    args = sys.argv[1:]
    split = args.index("--")
    rounds, policy, files = int(args[0]), args[1], args[2:split]
    commands = []
    for c in args[split + 1:]:
        if c == "nfdump":
            commands.append(("nfdump", lambda f: ["nfdump", "-r", f, "-q", "-A", "srcip", "-o", "fmt:%sa %fl", FILTER]))
        else:
            name, binary = c.split("=", 1)
            commands.append((name, lambda f, b=binary: [b, "egress", "flows", "-p", policy, "--nfcapd", f, "-f", "csv"]))
    for f in files:
        walls = {n: [] for n, _ in commands}
        cpus = {n: [] for n, _ in commands}
        for r in range(rounds):
            k = r % len(commands)
            for name, argv in commands[k:] + commands[:k]:
                w, c = run(argv(f))
                walls[name].append(w)
                cpus[name].append(c)
        print(f"== {os.path.basename(f)}: {rounds} rounds, medians (wall / CPU seconds)")
        ref = statistics.median(walls["nfdump"]) if "nfdump" in walls else None
        for name, _ in commands:
            w, c = statistics.median(walls[name]), statistics.median(cpus[name])
            ratio = f"   nfdump/{name} wall {ref / w:.2f}" if ref and name != "nfdump" else ""
            print(f"  {name:<10} {w:.4f} / {c:.4f}{ratio}")


if __name__ == "__main__":
    main()
