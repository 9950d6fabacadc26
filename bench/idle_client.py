#!/usr/bin/env python3
"""Hold many idle SMTP sessions open against one server (bench/idle-sessions.sh).

Opens --sessions connections to --host:--port, spreading them over several
loopback source addresses (127.0.0.2, 127.0.0.3, ...) so ephemeral ports never
run short; on each reads the 220 banner and sends EHLO, reading the whole 250
reply. Then, with every session established and idle, it reads the server's
VmRSS from /proc/PID/status, sends NOOP on a sample of sessions (all of them
with --noop-sample 0) and expects 250 on each, reads VmRSS again, sends QUIT
everywhere and prints one JSON object with the results on stdout.

Standard library only (asyncio). Bounded: at most --concurrency connects in
flight, every step has a timeout, and everything targets the given host.
"""
import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


async def read_reply(reader, timeout):
    """Reads one (possibly multi-line) SMTP reply; returns (code, lines)."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("connection closed by server")
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"reply line not ending in CRLF: {line!r}")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), lines


class Session:
    __slots__ = ("reader", "writer")

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer


async def open_session(args, i, gate, failures):
    source = f"127.0.0.{2 + i % args.sources}" if args.sources > 0 else None
    writer = None
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port,
                                        local_addr=(source, 0) if source else None,
                                        limit=4096),
                args.timeout)
            code, _ = await read_reply(reader, args.timeout)
            if code != 220:
                raise ConnectionError(f"banner {code}")
            writer.write(b"EHLO idle-%d.client.example\r\n" % i)
            await writer.drain()
            code, _ = await read_reply(reader, args.timeout)
            if code != 250:
                raise ConnectionError(f"EHLO answered {code}")
            return Session(reader, writer)
        except (OSError, ConnectionError, asyncio.TimeoutError, ValueError) as e:
            failures.append(f"{type(e).__name__}: {e}")
            if writer is not None:
                writer.close()
            return None


async def noop(args, s):
    try:
        s.writer.write(b"NOOP\r\n")
        await s.writer.drain()
        code, _ = await read_reply(s.reader, args.timeout)
        return code == 250
    except (OSError, ConnectionError, asyncio.TimeoutError, ValueError):
        return False


async def quit_session(args, s):
    try:
        s.writer.write(b"QUIT\r\n")
        await s.writer.drain()
        await read_reply(s.reader, args.timeout)
    except Exception:
        pass
    finally:
        s.writer.close()


async def main(args):
    result = {"target": f"{args.host}:{args.port}", "wanted": args.sessions}
    result["rss_kb_before"] = rss_kb(args.pid)
    gate = asyncio.Semaphore(args.concurrency)
    failures = []
    t0 = time.monotonic()
    sessions = await asyncio.gather(*(open_session(args, i, gate, failures) for i in range(args.sessions)))
    sessions = [s for s in sessions if s is not None]
    result["established"] = len(sessions)
    result["connect_seconds"] = round(time.monotonic() - t0, 2)
    result["failures"] = len(failures)
    result["failure_examples"] = sorted(set(failures))[:5]

    # All open and idle: let the server settle, then measure.
    await asyncio.sleep(args.settle)
    result["rss_kb_idle"] = rss_kb(args.pid)
    result["server_threads"] = threads(args.pid)
    result["server_fds_idle"] = len(os.listdir(f"/proc/{args.pid}/fd"))

    sample = sessions if args.noop_sample <= 0 else random.sample(sessions, min(args.noop_sample, len(sessions)))
    gate2 = asyncio.Semaphore(args.concurrency)

    async def checked(s):
        async with gate2:
            return await noop(args, s)
    oks = await asyncio.gather(*(checked(s) for s in sample))
    result["noop_checked"] = len(sample)
    result["noop_ok"] = sum(oks)
    result["rss_kb_after_noop"] = rss_kb(args.pid)
    # Everything still open after the check (a NOOP may not have closed them).
    result["open_at_end"] = sum(1 for s in sessions if not s.reader.at_eof())

    await asyncio.gather(*(quit_session(args, s) for s in sessions))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="server process whose VmRSS is read")
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--sources", type=int, default=4, help="spread over 127.0.0.2..127.0.0.(1+N); 0: let the kernel choose")
    p.add_argument("--concurrency", type=int, default=256, help="connects (and NOOPs) in flight at once")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per reply")
    p.add_argument("--settle", type=float, default=2.0, help="seconds idle before measuring RSS")
    p.add_argument("--noop-sample", type=int, default=0, help="sessions to NOOP-check (0: all)")
    args = p.parse_args()
    if not args.host.startswith("127."):
        sys.exit("idle_client.py: loopback targets only")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.sessions + 100
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, min(hard, need)), hard))
        except (ValueError, OSError):
            sys.exit(f"idle_client.py: need {need} file descriptors, limit is {soft}/{hard}; raise ulimit -n")
    asyncio.run(main(args))
