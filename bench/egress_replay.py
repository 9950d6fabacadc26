#!/usr/bin/env python3
"""Sends the UDP payloads of a raw-IP pcap (as egress_bench_gen writes) to
HOST:PORT, paced so a collector on loopback loses nothing.
Usage: egress_replay.py FILE.pcap HOST PORT"""
import socket, struct, sys, time

data = open(sys.argv[1], "rb").read()
dst = (sys.argv[2], int(sys.argv[3]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
pos, n = 24, 0
while pos + 16 <= len(data):
    caplen = struct.unpack_from("<I", data, pos + 8)[0]
    frame = data[pos + 16 : pos + 16 + caplen]
    pos += 16 + caplen
    ihl = (frame[0] & 15) * 4
    s.sendto(frame[ihl + 8 :], dst)
    n += 1
    if n % 200 == 0:
        time.sleep(0.002)
print(n, "datagrams sent", file=sys.stderr)
