#!/usr/bin/env python3
"""Peer for the LPM benchmark: pytricia (a Patricia trie in C) over the same
policy prefixes and addresses as egress_lpm_bench. Prints lookups/s for
five passes and the median. Usage: egress_lpm.py POLICY.toml ADDRS [LIMIT]"""
import sys, time, tomllib, statistics
import pytricia

policy = tomllib.load(open(sys.argv[1], "rb"))
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
t4 = pytricia.PyTricia(32)
for n in policy.get("network", []):
    block = n.get("block", n["class"] != "business")
    for p in n["prefixes"]:
        if ":" not in p:
            t4[p] = block
for x in policy.get("exempt", []):
    for p in x["prefixes"]:
        if ":" not in p:
            t4[p] = False
addrs = open(sys.argv[2]).read().split()[:limit]
rates = []
for _ in range(5):
    t = time.perf_counter()
    get = t4.get
    blocked = 0
    for a in addrs:
        if get(a):
            blocked += 1
    dt = time.perf_counter() - t
    rates.append(len(addrs) / dt)
    print(f"pass: {len(addrs) / dt / 1e6:.2f} M lookups/s ({blocked} blocked of {len(addrs)})")
print(f"median: {statistics.median(rates) / 1e6:.2f} M lookups/s")
