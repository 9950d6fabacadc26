#!/usr/bin/env bash
# Requests per second on port25's HTTP side (docs/http.md): Thunderbird
# autoconfig, Outlook autodiscover, /metrics (with a capture-less,
# empty-queue server: the fixed cost of a scrape) and /healthz.
#
# Starts a throwaway `port25 serve` (public HTTP listener on 127.0.0.1:$PORT,
# private one on 127.0.0.1:$PRIVATE_PORT), then
# bench/http_client.py keeps $THREADS keep-alive connections busy for
# $SECONDS seconds per endpoint and prints requests/s and the median and
# 99th-percentile latency. Every answer is checked (status 200, and the
# autoconfig document names port 465), so a fast wrong answer fails.
#
# Usage: bench/http.sh
# Env:   PORT=8090 PRIVATE_PORT=8091 THREADS=4 SECONDS=3 PORT25_BIN=target/release/port25
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-8090}
PRIVATE_PORT=${PRIVATE_PORT:-$((PORT + 1))}
THREADS=${THREADS:-4}
SECONDS_EACH=${SECONDS:-3}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}
if [ ! -x "$PORT25_BIN" ]; then
    (cd "$ROOT" && cargo build --release -p port25)
fi
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
cat > "$DIR/port25.toml" <<EOF
hostname = "mx.example.net"
data_dir = "$DIR/data"
[log]
level = "warn"
[mx]
domains = ["example.net"]
[http]
address = "127.0.0.1:$PORT"
private_address = "127.0.0.1:$PRIVATE_PORT"
imaps = "imap.example.net:993"
[[listener]]
name = "mx"
address = "127.0.0.1:0"
EOF
"$PORT25_BIN" serve -c "$DIR/port25.toml" &
PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PRIVATE_PORT/readyz" >/dev/null && break
    sleep 0.1
done
python3 "$ROOT/bench/http_client.py" "127.0.0.1" "$PORT" "$PRIVATE_PORT" "$THREADS" "$SECONDS_EACH"
