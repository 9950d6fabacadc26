#!/usr/bin/env python3
"""Many concurrent SMTP AUTH attempts against one server (bench/auth-flood.sh).

Opens --sessions connections to --host:--port (a submission listener with
plaintext AUTH, so the client spends no CPU on TLS), spread over loopback
source addresses 127.0.0.2, 127.0.0.3, ... (--sources), at most
--concurrency connects in flight; on each reads the 220 banner and sends
EHLO. With every session established, all of them send
AUTH PLAIN at once: session i logs in as --login with a wrong password when
i is even, as a made-up login when odd. While the replies come in, the
server's VmRSS is sampled every 10 ms from /proc/PID/status; at the end its
VmHWM (the kernel's peak RSS) is read too. Prints one JSON object: reply
codes counted, seconds until the last reply, RSS before / peak sampled /
VmHWM, the server's threads at the peak.

Standard library only (asyncio). Every step has a timeout; everything
targets the given host.
"""
import argparse
import asyncio
import base64
import json
import time


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


async def read_reply(reader, timeout):
    """Reads one (possibly multi-line) SMTP reply; returns its code."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("connection closed by server")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


async def session(i, args, connecting, connected, go, codes):
    source = f"127.0.0.{2 + i % args.sources}"
    try:
        # A bounded number of connects in flight: a thousand SYNs at once
        # overflow the listen backlog, and the flood is of AUTHs, not connects.
        async with connecting:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port, local_addr=(source, 0)), args.timeout)
            await read_reply(reader, args.timeout)
            writer.write(b"EHLO flood.example\r\n")
            await read_reply(reader, args.timeout)
    except Exception as e:  # a session that never got going is counted, not fatal
        key = f"no session ({type(e).__name__} {e})"[:80]
        codes[key] = codes.get(key, 0) + 1
        connected.release()
        return
    connected.release()
    await go.wait()
    login = args.login if i % 2 == 0 else f"nobody{i}@bench.example"
    token = base64.b64encode(b"\0" + login.encode() + b"\0" + f"wrong {i}".encode()).decode()
    try:
        writer.write(f"AUTH PLAIN {token}\r\n".encode())
        code = str(await read_reply(reader, args.timeout))
    except Exception as e:
        code = type(e).__name__
    codes[code] = codes.get(code, 0) + 1
    writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--sources", type=int, default=4)
    p.add_argument("--login", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--concurrency", type=int, default=128, help="connects in flight while the sessions are set up")
    args = p.parse_args()

    before = status(args.pid, "VmRSS")
    connected = asyncio.Semaphore(0)
    go = asyncio.Event()
    codes = {}
    connecting = asyncio.Semaphore(args.concurrency)
    tasks = [asyncio.create_task(session(i, args, connecting, connected, go, codes)) for i in range(args.sessions)]
    for _ in range(args.sessions):
        await connected.acquire()
    established = status(args.pid, "VmRSS")
    peak, peak_threads = established, status(args.pid, "Threads")
    start = time.monotonic()
    go.set()
    while not all(t.done() for t in tasks):
        rss = status(args.pid, "VmRSS")
        if rss > peak:
            peak, peak_threads = rss, status(args.pid, "Threads")
        await asyncio.sleep(0.01)
    seconds = time.monotonic() - start
    await asyncio.gather(*tasks)
    print(json.dumps({
        "sessions": args.sessions,
        "codes": codes,
        "seconds": round(seconds, 2),
        "rss_kb_before": before,
        "rss_kb_established": established,
        "rss_kb_peak_sampled": peak,
        "vmhwm_kb": status(args.pid, "VmHWM"),
        "threads_at_peak": peak_threads,
    }))


asyncio.run(main())
