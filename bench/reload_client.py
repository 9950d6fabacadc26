#!/usr/bin/env python3
"""Many SMTP sessions, each sending one message across reloads (bench/reload.sh).

Opens --sessions connections to --host:--port (spread over loopback source
addresses 127.0.0.2.. so ephemeral ports never run short), on each reads the
220 banner and sends EHLO, MAIL FROM and RCPT TO. With every session open and
in its transaction, it sends DATA and the message on all of them at once
(at most --concurrency in flight) and runs --reload-cmd twice while they
do: once when a third of the messages were answered, once at two thirds.
Prints one JSON object: sessions established, replies to the end of DATA
by code, the first few unexpected replies, the seconds each phase took and
when the reloads ran.

Standard library only (asyncio). Bounded: every step has a timeout and
everything targets the given host.
"""
import argparse
import asyncio
import collections
import json
import subprocess
import time


async def read_reply(reader, timeout):
    """One (possibly multi-line) SMTP reply: (code, last line)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("connection closed by server")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), line.decode(errors="replace").strip()


async def step(s, line, want, timeout):
    s[1].write(line)
    await s[1].drain()
    code, text = await read_reply(s[0], timeout)
    if code != want:
        raise ConnectionError(f"{line[:10]!r} answered {text}")


async def open_session(args, i, gate, failures):
    source = f"127.0.0.{2 + i % args.sources}"
    async with gate:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port, local_addr=(source, 0), limit=4096), args.timeout)
            s = (reader, writer)
            code, text = await read_reply(reader, args.timeout)
            if code != 220:
                raise ConnectionError(f"banner {text}")
            await step(s, b"EHLO reload-%d.client.example\r\n" % i, 250, args.timeout)
            await step(s, b"MAIL FROM:<sender@client.example>\r\n", 250, args.timeout)
            await step(s, b"RCPT TO:<rcpt@bench.example>\r\n", 250, args.timeout)
            return s
        except (OSError, ConnectionError, asyncio.TimeoutError, ValueError) as e:
            failures.append(f"session {i}: {type(e).__name__}: {e}")
            if writer is not None:
                writer.close()
            return None


async def send(args, i, s, gate, codes, odd):
    async with gate:
        try:
            await step(s, b"DATA\r\n", 354, args.timeout)
            body = (b"Subject: across a reload %d\r\n\r\n" % i) + b"x" * 70 + b"\r\n.\r\n"
            s[1].write(body)
            await s[1].drain()
            code, text = await read_reply(s[0], args.timeout)
        except (OSError, ConnectionError, asyncio.TimeoutError, ValueError) as e:
            code, text = 0, f"{type(e).__name__}: {e}"
        codes[code] += 1
        if code != 250 and len(odd) < 10:
            odd.append(f"session {i}: {text}")
        try:
            s[1].write(b"QUIT\r\n")
            await s[1].drain()
        except OSError:
            pass
        s[1].close()


async def main(args):
    out = {"target": f"{args.host}:{args.port}", "wanted": args.sessions}
    failures = []
    t0 = time.monotonic()
    gate = asyncio.Semaphore(args.concurrency)
    sessions = await asyncio.gather(*(open_session(args, i, gate, failures) for i in range(args.sessions)))
    out["established"] = sum(1 for s in sessions if s is not None)
    out["open_seconds"] = round(time.monotonic() - t0, 2)
    out["open_failures"] = len(failures)
    out["open_failure_examples"] = failures[:5]

    codes = collections.Counter()
    odd = []
    reloads = []
    done_marks = [args.sessions // 3, 2 * args.sessions // 3]

    async def reloader():
        for mark in done_marks:
            while sum(codes.values()) < mark:
                await asyncio.sleep(0.005)
            t = time.monotonic()
            r = await asyncio.create_subprocess_shell(args.reload_cmd)
            rc = await r.wait()
            reloads.append({"after_messages": sum(codes.values()), "rc": rc,
                            "at_seconds": round(t - t1, 3)})

    gate2 = asyncio.Semaphore(args.concurrency)
    t1 = time.monotonic()
    task = asyncio.create_task(reloader())
    await asyncio.gather(*(send(args, i, s, gate2, codes, odd) for i, s in enumerate(sessions) if s is not None))
    await asyncio.wait_for(task, args.timeout)
    out["data_seconds"] = round(time.monotonic() - t1, 2)
    out["replies"] = {str(k): v for k, v in sorted(codes.items())}
    out["unexpected_examples"] = odd
    out["reloads"] = reloads
    print(json.dumps(out))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, default=5000)
    p.add_argument("--sources", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=500, help="connects / DATA exchanges in flight at once")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--reload-cmd", required=True, help="shell command run twice while the messages are sent")
    asyncio.run(main(p.parse_args()))
