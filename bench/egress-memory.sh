#!/usr/bin/env bash
# Flow analysis memory (issue 20: "memory is bounded by the lease/session
# set, never by the number of flows"). The same $SUBS subscribers send
# $SMALL and then $LARGE port-25 flows (egress_memory_bench: generated in
# process, no file, destinations from 100 000 MXes, start times out of
# order by up to 2 s, one flow in 50 inbound on a proxy port); the
# analyzer's rows are built each time. Prints each run's peak RSS (VmHWM)
# and the ratio large/small: it should stay near 1, not follow the flows.
#
# Usage: bench/egress-memory.sh
# Env:   SUBS=10000 SMALL=1000000 LARGE=10000000 CARGO_TARGET_DIR (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUBS=${SUBS:-10000}
SMALL=${SMALL:-1000000}
LARGE=${LARGE:-10000000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
R=$TARGET/release

(cd "$ROOT" && cargo build --release -q -p port25-egress --example egress_memory_bench)
rss() { "$R/examples/egress_memory_bench" "$1" "$SUBS" | tee /dev/stderr | sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p'; }
echo "== flow analysis memory: $SUBS subscribers, $SMALL then $LARGE flows"
small=$(rss "$SMALL")
large=$(rss "$LARGE")
awk -v s="$small" -v l="$large" 'BEGIN { printf "  peak RSS %d MB at %d flows, %d MB at %d flows: ratio %.2fx for %dx the flows\n", s, '"$SMALL"', l, '"$LARGE"', (s ? l / s : 0), '"$LARGE / $SMALL"' }'
