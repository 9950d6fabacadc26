#!/usr/bin/env bash
# Flow analysis memory (issue 20: "memory is bounded by the lease/session
# set, never by the number of flows"). For each mode of egress_memory_bench
# (flows generated in process, no file; start times out of order by up to
# 2 s; see the example's header) the same subscribers send a small and then
# a large number of flows and the analyzer's rows are built each time.
# Prints each run's line (rows, time, peak RSS = VmHWM) and the ratio of
# the peaks large/small: it should stay near 1, not follow the flows.
#
#   v4                    $SUBS subscribers in one IPv4 /16, port-25 flows
#                         to 100 000 MXes, one in 50 inbound on a proxy port
#   v6-rotate             $SUBS IPv6 subscribers, a /56 each, every flow from
#                         a new random address of the /56
#   v6-rotate-attributed  the same with an attribution index: one session
#                         per subscriber with its /56 as delegated prefix
#   inbound-sweep         nine flows in ten inbound on 1080/3128/8080 from
#                         4096 outside scanners to a new random address (of
#                         2001:db8::/32, or one in four of the IPv4 /16)
#
# The hostile modes keep one row or one evidence entry per flow on main
# c7a7f02 (about 2 KB a flow for the v6 ones), so they run at fewer flows
# by default (HOSTILE_SMALL, HOSTILE_LARGE), and every run is capped at
# MAX_VM_MB of address space (ulimit -v): a run that reaches it fails its
# allocation and is reported as over the cap, the script goes on.
#
# Usage: bench/egress-memory.sh
# Env:   MODES="v4 v6-rotate v6-rotate-attributed inbound-sweep"
#        SUBS=10000 SMALL=1000000 LARGE=10000000 (v4)
#        HOSTILE_SMALL=100000 HOSTILE_LARGE=1000000 (the other modes)
#        MAX_VM_MB=4096 CARGO_TARGET_DIR (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODES=${MODES:-v4 v6-rotate v6-rotate-attributed inbound-sweep}
SUBS=${SUBS:-10000}
SMALL=${SMALL:-1000000}
LARGE=${LARGE:-10000000}
HOSTILE_SMALL=${HOSTILE_SMALL:-100000}
HOSTILE_LARGE=${HOSTILE_LARGE:-1000000}
MAX_VM_MB=${MAX_VM_MB:-4096}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
R=$TARGET/release

(cd "$ROOT" && cargo build --release -q -p port25-egress --example egress_memory_bench)

# One run (FLOWS MODE): prints its line and sets $peak to its peak RSS in
# MB, or to nothing when it failed (over the address-space cap).
run() {
    local out
    peak=
    if out=$(ulimit -v $((MAX_VM_MB * 1024)) && "$R/examples/egress_memory_bench" "$1" "$SUBS" "$2" 2>&1); then
        echo "$out"
        peak=$(echo "$out" | sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p')
    else
        echo "$out" | tail -n 3
        echo "  $2 at $1 flows: failed (over MAX_VM_MB=$MAX_VM_MB?)"
    fi
}

for mode in $MODES; do
    case $mode in
        v4) small=$SMALL large=$LARGE ;;
        *) small=$HOSTILE_SMALL large=$HOSTILE_LARGE ;;
    esac
    echo "== $mode: $SUBS subscribers, $small then $large flows"
    run "$small" "$mode"
    s=$peak
    run "$large" "$mode"
    l=$peak
    if [ -n "$s" ] && [ -n "$l" ]; then
        awk -v s="$s" -v l="$l" -v sf="$small" -v lf="$large" 'BEGIN { printf "  peak RSS %d MB at %d flows, %d MB at %d flows: ratio %.2fx for %dx the flows\n", s, sf, l, lf, (s ? l / s : 0), lf / sf }'
    else
        echo "  no ratio: a run failed"
    fi
done
