#!/usr/bin/env bash
# SpamPots sensor vs a public Python SMTP honeypot, side by side on the plain
# SMTP path (issue 4).
#
#   (a) port25's open-relay bait: `port25 spampot` with one `kind = "smtp"`
#       listener; 250 after DATA once the body is stored and the event fsynced.
#   (b) the SMTP honeypot of qeeqbox/honeypots (PyPI `honeypots`, pinned to
#       0.65: in 0.66, the latest, its Twisted rewrite answers every MAIL FROM
#       with 550, so it captures no message; see bench/README.md), run as its
#       own launcher runs it (`smtp_server.py --custom`) with
#       `--options capture_commands`, the option that makes it log each
#       command and each DATA block as JSON lines (to stdout, here a file).
#
# The same client (crates/spampot/examples/spampot_load.rs, mode `smtp`) is
# pointed at each: $CLIENTS connections, EHLO once, then messages of $SIZE
# bytes to $RCPTS recipients back to back on the same connection, every body
# different, for $DURATION seconds; $ROUNDS rounds, alternating which server
# goes first. PIPELINING=off (default) sends one command per reply to both,
# since the honeypot does not offer PIPELINING (port25 does): the same
# dialogue for both. PIPELINING=auto lets each use what its EHLO offers.
#
# A message counts when the client got 250 after DATA *and* the store holds
# it: port25, a `port25.spampot.message` event with all $RCPTS recipients
# (and its body file); honeypots, a JSON line whose data is the whole DATA
# block (first line `X-Seq:`, last line the generator's end marker). A run
# in which any acknowledged message is missing from the store, or any client
# failed, or a server died, fails the script (exit 1).
#
# Per run: captured messages/s (wall clock of the client), the server's CPU
# time (utime+stime from /proc/PID/stat; both servers are one process) per
# message, the client's CPU time. At the end: medians, ratio port25/honeypots.
#
# Usage: bench/spampot-vs-honeypots.sh   (creates the honeypots venv if it
#        does not exist; one that exists but does not hold that version stops it)
# Env:   ROUNDS=3 DURATION=20 WARMUP=2 (seconds of a verified, uncounted run
#        per server first; 0: none) CLIENTS=200 SIZE=2048 RCPTS=10
#        PIPELINING=off|auto|on  P25_PORT=32525 HP_PORT=32526 KEEP=1
#        HONEYPOTS_VERSION=0.65  HONEYPOTS_VENV=/var/tmp/port25-honeypots-0.65
#        PYTHON=python3.11 (the venv's interpreter: < 3.12, which removed the
#        smtpd and asyncore modules honeypots 0.65 is built on)
#        CARGO_TARGET_DIR (bench/spampot-common.sh builds and starts port25)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-200}
SIZE=${SIZE:-2048}
RCPTS=${RCPTS:-10}
PIPELINING=${PIPELINING:-off}
P25_PORT=${P25_PORT:-32525}
HP_PORT=${HP_PORT:-32526}
KEEP=${KEEP:-0}
HONEYPOTS_VERSION=${HONEYPOTS_VERSION:-0.65}
HONEYPOTS_VENV=${HONEYPOTS_VENV:-/var/tmp/port25-honeypots-$HONEYPOTS_VERSION}
PYTHON=${PYTHON:-}
BODY_END='End of bench message.'   # the generator's last body line

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
case $PIPELINING in off | auto | on) ;; *) die "PIPELINING=$PIPELINING: off, auto or on" ;; esac
[ "$RCPTS" -ge 1 ] || die "RCPTS must be at least 1"
for tool in zstd timeout; do command -v $tool >/dev/null || die "$tool is missing (apt-get install $tool)"; done

# --- peers ---------------------------------------------------------------------
. "$ROOT/bench/spampot-common.sh"
spampot_build

hp_python_ok() { "$HONEYPOTS_VENV/bin/python" - "$HONEYPOTS_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import honeypots.smtp_server  # noqa: F401  (fails without smtpd/asyncore or a dependency)
sys.exit(version("honeypots") != sys.argv[1])
PY
}
if ! hp_python_ok; then
    [ ! -e "$HONEYPOTS_VENV" ] ||
        die "$HONEYPOTS_VENV exists but holds no importable honeypots $HONEYPOTS_VERSION: remove it, or set HONEYPOTS_VENV to another directory"
    if [ -z "$PYTHON" ]; then
        for p in python3.11 python3.10 python3.9 python3; do
            if command -v $p >/dev/null && $p -c 'import sys; sys.exit(not (3, 8) <= sys.version_info < (3, 12))'; then PYTHON=$p; break; fi
        done
    fi
    [ -n "$PYTHON" ] || die "no Python from 3.8 to 3.11 for honeypots $HONEYPOTS_VERSION (it needs the smtpd and asyncore modules, removed in 3.12); set PYTHON="
    echo "installing honeypots==$HONEYPOTS_VERSION into $HONEYPOTS_VENV ($($PYTHON --version))"
    "$PYTHON" -m venv "$HONEYPOTS_VENV" || { rm -rf "$HONEYPOTS_VENV"; die "$PYTHON -m venv $HONEYPOTS_VENV failed"; }
    "$HONEYPOTS_VENV/bin/pip" install -q "honeypots==$HONEYPOTS_VERSION" ||
        { rm -rf "$HONEYPOTS_VENV"; die "pip install honeypots==$HONEYPOTS_VERSION failed"; }
    hp_python_ok || { rm -rf "$HONEYPOTS_VENV"; die "honeypots $HONEYPOTS_VERSION installed but honeypots.smtp_server does not import with $PYTHON"; }
fi
HP_SERVER=$("$HONEYPOTS_VENV/bin/python" -c 'import honeypots.smtp_server as m; print(m.__file__)' 2>/dev/null)

NEED=$((CLIENTS + 1000))
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$NEED" ] || ulimit -Hn "$NEED" 2>/dev/null ||
    die "open-file hard limit $(ulimit -Hn) is below $NEED (CLIENTS=$CLIENTS)"
ulimit -n "$NEED"

WORK=$(mktemp -d /var/tmp/port25-vs-honeypots.XXXXXX)
P25=$WORK/port25
HP=$WORK/honeypots
mkdir -p "$P25" "$HP/tmp"
P25_PID=
HP_PID=
cleanup() {
    set +e
    stop_pids "$P25_PID" "$HP_PID"
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# port25: one open-relay bait listener.
spampot_start "$P25" smtp "$P25_PORT" $((CLIENTS + 1000))
P25_PID=$SENSOR_PID
# TMPDIR: honeypots creates $TMPDIR/logs at start, even when logging to stdout.
TMPDIR=$HP/tmp "$HONEYPOTS_VENV/bin/python" "$HP_SERVER" --custom --ip 127.0.0.1 --port "$HP_PORT" --options capture_commands \
    >"$HP/log.jsonl" 2>"$HP/stderr.log" &
HP_PID=$!

wait_220() { # name port pid log
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$3" 2>/dev/null || { cat "$4" >&2; die "$1 exited before answering on 127.0.0.1:$2"; }
        if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$2; head -c3 <&3 | grep -q 220" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    cat "$4" >&2
    die "$1 not answering 220 on 127.0.0.1:$2 after 30 s"
}
wait_220 port25 "$P25_PORT" "$P25_PID" "$P25/stderr.log"
wait_220 honeypots "$HP_PORT" "$HP_PID" "$HP/stderr.log"

# --- what each store holds -------------------------------------------------------
LAST_RCPT="victim$((RCPTS - 1))@example.com"
captured() { # name -> messages held whole so far
    if [ "$1" = port25 ]; then
        cat "$P25"/data/capture/events/*.jsonl 2>/dev/null | grep '"port25.spampot.message"' | grep -c "\"$LAST_RCPT\"\]" || true
    else
        grep '"command": "X-SEQ:"' "$HP/log.jsonl" | grep -c "${BODY_END//./\\.}\"}" || true
    fi
}
# Every body was different: port25 must hold one body file per message
# event, and a sample of them must decompress to whole messages.
check_bodies() {
    local f n=0 bodies events
    bodies=$(find "$P25/data/capture/bodies" -name '*.zst' | wc -l)
    events=$(captured port25)
    [ "$bodies" = "$events" ] || die "port25 holds $bodies bodies for $events message events (every body was different)"
    for f in $(find "$P25/data/capture/bodies" -name '*.zst' | head -20); do
        zstd -dcq "$f" | tail -c 40 | grep -q "$BODY_END" || die "port25 body $f does not end with the generator's last line"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || die "port25 stored no body"
}

ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
TIMEFORMAT='%U %S'
TOTAL_P25=0
TOTAL_HP=0

run_one() { # name seconds -> RATE CPUMS; prints one line
    local name=$1 secs=$2 port pid before after t0 t1 rc=0 out msgs wall errors got
    if [ "$name" = port25 ]; then port=$P25_PORT pid=$P25_PID; else port=$HP_PORT pid=$HP_PID; fi
    before=$(captured "$name")
    t0=$(ticks "$pid")
    { time { PIPELINING=$PIPELINING UNIQUE=1 "$LOAD" smtp "127.0.0.1:$port" "$CLIENTS" "$secs" "$SIZE" "$RCPTS" \
        >"$WORK/load.out" 2>"$WORK/load.err" || rc=$?; }; } 2>"$WORK/time"
    kill -0 "$pid" 2>/dev/null || { tail -20 "$WORK/load.err" >&2; die "$name died during the run"; }
    t1=$(ticks "$pid")
    after=$(captured "$name")
    out=$(cat "$WORK/load.out")
    if [ "$rc" != 0 ] || ! grep -q ' errors=0$' <<<"$out"; then
        echo "$out" >&2
        head -5 "$WORK/load.err" >&2
        die "the load against $name failed (exit $rc)"
    fi
    msgs=$(sed -E 's/^messages=([0-9]+) .*/\1/' <<<"$out")
    wall=$(sed -E 's/.* seconds=([0-9.]+) .*/\1/' <<<"$out")
    got=$((after - before))
    [ "$msgs" -gt 0 ] || die "$name acknowledged no message"
    [ "$got" -ge "$msgs" ] || die "$name acknowledged $msgs messages but its store holds $got of them"
    if [ "$name" = port25 ]; then TOTAL_P25=$((TOTAL_P25 + msgs)); else TOTAL_HP=$((TOTAL_HP + msgs)); fi
    RATE=$(awk -v n="$msgs" -v s="$wall" 'BEGIN { printf "%.0f", n / s }')
    CPUMS=$(awk -v n="$msgs" -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN { printf "%.3f", 1000 * t / hz / n }')
    awk -v name="$name" -v n="$msgs" -v got="$got" -v s="$wall" -v rate="$RATE" -v t=$((t1 - t0)) -v hz="$HZ" -v cl="$(cat "$WORK/time")" \
        -v pl="$(sed -E 's/.*pipelined_sessions=([0-9]+).*/\1/' <<<"$out")" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
        split(cl, c, " ")
        printf "  %-9s %6d msgs in %5.2f s: %6d captured msgs/s (store holds %d) | server CPU %5.2f s, %.3f ms/msg | client CPU %5.2f s | pipelined sessions %d | load %s\n",
            name, n, s, rate, got, t / hz, 1000 * t / hz / n, c[1] + c[2], pl, load }'
}

echo "machine:   $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "port25:    $("$BIN" --version), relay bait on 127.0.0.1:$P25_PORT"
echo "honeypots: $HONEYPOTS_VERSION ($("$HONEYPOTS_VENV/bin/python" --version)), $HP_SERVER --options capture_commands on 127.0.0.1:$HP_PORT"
echo "load:      spampot_load smtp 127.0.0.1:PORT $CLIENTS $DURATION $SIZE $RCPTS   (PIPELINING=$PIPELINING, every body different, $ROUNDS rounds)"
echo "work dir:  $WORK"

if [ "$WARMUP" -gt 0 ]; then
    echo "warm-up ($WARMUP s each, verified, not counted)"
    run_one port25 "$WARMUP"
    run_one honeypots "$WARMUP"
fi
P25_RATES=()
HP_RATES=()
P25_CPU=()
HP_CPU=()
for ((r = 1; r <= ROUNDS; r++)); do
    echo "round $r/$ROUNDS"
    if ((r % 2)); then order=(port25 honeypots); else order=(honeypots port25); fi
    for name in "${order[@]}"; do
        run_one "$name" "$DURATION"
        if [ "$name" = port25 ]; then P25_RATES+=("$RATE") P25_CPU+=("$CPUMS"); else HP_RATES+=("$RATE") HP_CPU+=("$CPUMS"); fi
    done
done
check_bodies

P25_MED=$(median "${P25_RATES[@]}")
HP_MED=$(median "${HP_RATES[@]}")
echo
echo "stores: port25 $(captured port25) message events for $TOTAL_P25 acknowledged," \
    "$(find "$P25/data/capture/bodies" -name '*.zst' | wc -l) bodies;" \
    "honeypots $(captured honeypots) DATA blocks logged for $TOTAL_HP acknowledged," \
    "$(grep -c '"command": "RCPT"' "$HP/log.jsonl" || true) RCPT lines ($RCPTS per message)"
echo "port25    captured msgs/s: ${P25_RATES[*]}   median $P25_MED   server CPU/msg median $(median "${P25_CPU[@]}") ms"
echo "honeypots captured msgs/s: ${HP_RATES[*]}   median $HP_MED   server CPU/msg median $(median "${HP_CPU[@]}") ms"
echo "ratio port25/honeypots (medians): $(awk -v a="$P25_MED" -v b="$HP_MED" 'BEGIN { printf "%.2f", a / b }')" \
    "  CPU per message honeypots/port25: $(awk -v a="$(median "${HP_CPU[@]}")" -v b="$(median "${P25_CPU[@]}")" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
if [ -s "$P25/stderr.log" ]; then echo "port25 warnings:"; tail -5 "$P25/stderr.log"; fi
