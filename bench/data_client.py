#!/usr/bin/env python3
"""SMTP sessions that stream message data and hold it (bench/data-in-flight.sh).

Each of --sessions connections (spread over --sources loopback source
addresses, 127.0.0.2 and up, so per-client caps do not apply) says EHLO,
MAIL, RCPT, DATA and then sends --mib MiB of message lines without the final
dot. Once every session has sent everything, the server's RSS (VmRSS of
--pid) is sampled for two seconds and its maximum reported with VmHWM.
With --finish each session then sends the final dot and the replies are
counted (250 stored, 452 over the server's memory budget); the peak RSS
(VmHWM) after that includes storing. Prints one JSON object.
"""

import argparse
import asyncio
import json
import time

LINE = b"x" * 76 + b"\r\n"


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise SystemExit(f"no {key} for pid {pid}: is the server running?")


async def reply(reader):
    """One reply, possibly multi-line; its code (0 on EOF)."""
    while True:
        line = await reader.readline()
        if not line:
            return 0
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


async def session(i, args, sent_all, finish, results):
    source = f"127.0.0.{2 + i % args.sources}"
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port, local_addr=(source, 0))
    try:
        if await reply(reader) != 220:
            results["no_banner"] += 1
            return
        for cmd in (b"EHLO bench.example", b"MAIL FROM:<bench@client.example>", b"RCPT TO:<postmaster@bench.example>"):
            writer.write(cmd + b"\r\n")
            code = await reply(reader)
            if code != 250:
                results["refused_" + str(code)] = results.get("refused_" + str(code), 0) + 1
                return
        writer.write(b"DATA\r\n")
        code = await reply(reader)
        if code != 354:
            results[f"data_{code}"] = results.get(f"data_{code}", 0) + 1
            return
        writer.write(b"Subject: held in flight\r\n\r\n")
        chunk = LINE * (64 * 1024 // len(LINE))
        total = args.mib * 1024 * 1024
        sent = 0
        while sent < total:
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
        results["bytes"] += sent
        results["streaming"] += 1
    finally:
        sent_all.release()
    await finish.wait()
    if args.finish:
        try:
            writer.write(b".\r\n")
            await writer.drain()
            code = await asyncio.wait_for(reply(reader), 600)
        except (ConnectionError, asyncio.TimeoutError):
            code = 0
        results[f"final_{code}"] = results.get(f"final_{code}", 0) + 1
    writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--sessions", type=int, default=400)
    p.add_argument("--mib", type=int, default=8)
    p.add_argument("--sources", type=int, default=25)
    p.add_argument("--finish", action="store_true")
    args = p.parse_args()
    results = {"bytes": 0, "streaming": 0, "no_banner": 0}
    sent_all = asyncio.Semaphore(0)
    finish = asyncio.Event()
    rss_before = status(args.pid, "VmRSS")
    started = time.monotonic()
    tasks = [asyncio.create_task(session(i, args, sent_all, finish, results)) for i in range(args.sessions)]
    for _ in range(args.sessions):
        await sent_all.acquire()
    streamed_s = time.monotonic() - started
    rss = 0
    for _ in range(20):
        rss = max(rss, status(args.pid, "VmRSS"))
        await asyncio.sleep(0.1)
    results.update(rss_idle=rss_before, rss_in_flight=rss, hwm_in_flight=status(args.pid, "VmHWM"), stream_seconds=round(streamed_s, 2))
    finish.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    results["hwm_end"] = status(args.pid, "VmHWM")
    print(json.dumps(results))


asyncio.run(main())
