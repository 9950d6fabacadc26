#!/usr/bin/env python3
"""Load for bench/screen-vs-postscreen.sh: SMTP clients from many loopback
source addresses, some of them listed in the bench DNSBL.

Good clients (--good FIRST-LAST, last octet range of 127.0.2.x) each run a
loop: connect from the next good address, read the whole greeting, EHLO,
MAIL, RCPT, DATA (a --size byte message), QUIT. Listed clients (--listed)
connect, read the greeting and close. Runs --seconds, then prints one JSON
line: accepted (250 after DATA), good_refused, listed_refused,
listed_passed, errors, seconds.
"""

import argparse
import asyncio
import json
import time


def addresses(spec):
    first, last = (int(x) for x in spec.split("-"))
    return [f"127.0.2.{i}" for i in range(first, last + 1)]


async def read_reply(reader):
    """The code of one (possibly multi-line) reply: the last line's."""
    while True:
        line = await reader.readline()
        if not line:
            return 0
        if len(line) < 4 or line[3:4] != b"-":
            try:
                return int(line[:3])
            except ValueError:
                return 0


async def command(reader, writer, line):
    writer.write(line)
    await writer.drain()
    return await read_reply(reader)


class Counts:
    def __init__(self):
        self.accepted = self.good_refused = self.listed_refused = self.listed_passed = self.errors = 0


async def good_worker(port, sources, deadline, body, counts, offset):
    i = offset
    while time.monotonic() < deadline:
        src = sources[i % len(sources)]
        i += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
        except OSError:
            counts.errors += 1
            continue
        try:
            if await read_reply(reader) != 220:
                counts.good_refused += 1
                continue
            if await command(reader, writer, b"EHLO bench-client.example\r\n") != 250:
                counts.errors += 1
                continue
            if await command(reader, writer, b"MAIL FROM:<sender@client.example>\r\n") != 250:
                counts.errors += 1
                continue
            if await command(reader, writer, b"RCPT TO:<rcpt@bench.example>\r\n") != 250:
                counts.errors += 1
                continue
            if await command(reader, writer, b"DATA\r\n") != 354:
                counts.errors += 1
                continue
            if await command(reader, writer, body) == 250:
                counts.accepted += 1
            else:
                counts.errors += 1
            writer.write(b"QUIT\r\n")
            await writer.drain()
            await read_reply(reader)
        except (OSError, asyncio.IncompleteReadError):
            counts.errors += 1
        finally:
            writer.close()


async def listed_worker(port, sources, deadline, counts, offset):
    i = offset
    while time.monotonic() < deadline:
        src = sources[i % len(sources)]
        i += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
        except OSError:
            counts.errors += 1
            continue
        try:
            code = await read_reply(reader)
            if code == 220:
                counts.listed_passed += 1
            else:
                counts.listed_refused += 1
        except OSError:
            counts.errors += 1
        finally:
            writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--good", required=True)
    ap.add_argument("--listed", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--good-concurrency", type=int, default=20)
    ap.add_argument("--listed-concurrency", type=int, default=20)
    ap.add_argument("--size", type=int, default=2000)
    args = ap.parse_args()
    line = b"x" * 76 + b"\r\n"
    body = b"Subject: bench\r\n\r\n" + line * max(1, args.size // len(line)) + b".\r\n"
    counts = Counts()
    start = time.monotonic()
    deadline = start + args.seconds
    good, listed = addresses(args.good), addresses(args.listed)
    tasks = [good_worker(args.port, good, deadline, body, counts, k) for k in range(args.good_concurrency)]
    tasks += [listed_worker(args.port, listed, deadline, counts, k) for k in range(args.listed_concurrency)]
    await asyncio.gather(*tasks)
    print(json.dumps({
        "accepted": counts.accepted, "good_refused": counts.good_refused, "listed_refused": counts.listed_refused,
        "listed_passed": counts.listed_passed, "errors": counts.errors, "seconds": round(time.monotonic() - start, 3),
    }))


asyncio.run(main())
