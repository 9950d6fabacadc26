"""Load client of bench/http.sh: THREADS keep-alive connections per
endpoint for SECONDS seconds; prints requests/s, median and p99 latency.
Autoconfig goes to the public listener (PORT), /metrics and /healthz to the
private one (PRIVATE_PORT)."""
import http.client, sys, threading, time

host, public, private, threads, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
AUTODISCOVER = (b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
                b'<Request><EMailAddress>alice@example.net</EMailAddress></Request></Autodiscover>')
ENDPOINTS = [
    (public, "GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.net", None, b"<port>465</port>"),
    (public, "POST", "/autodiscover/autodiscover.xml", AUTODISCOVER, b"<Port>465</Port>"),
    (private, "GET", "/metrics", None, b"port25_ready 1"),
    (private, "GET", "/healthz", None, b"ok"),
]

for port, method, path, body, must in ENDPOINTS:
    latencies, errors = [], []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            conn.request(method, path, body=body)
            r = conn.getresponse()
            data = r.read()
            mine.append(time.perf_counter() - t0)
            if r.status != 200 or must not in data:
                errors.append((r.status, data[:200]))
                break
        with lock:
            latencies.extend(mine)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    if errors:
        sys.exit("%s %s: wrong answer %r" % (method, path, errors[0]))
    latencies.sort()
    n = len(latencies)
    print("%-4s %-55s %7.0f req/s  median %.2f ms  p99 %.2f ms  (%d requests, %d connections)" % (
        method, path, n / seconds, latencies[n // 2] * 1000, latencies[int(n * 0.99)] * 1000, n, threads))
