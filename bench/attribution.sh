#!/usr/bin/env bash
# Attribution benchmark (issue 20): flows joined with $LEASES leases/sessions.
#
#  1. join: $LEASES Kea leases (a tenth renewed, a tenth handed over), and
#     $LEASES RADIUS sessions (Start/Stop, two per address), each loaded
#     from a generated file (load time, peak RSS), then $FLOWS (address,
#     time) lookups on one core (nine in ten from a leased address), $ROUNDS
#     rounds; goal >= 5 M flows/s. Then the same RADIUS records split over
#     two client directories, the Stops in the one read first (as two
#     accounting servers behind a balancer may write them): every session's
#     records out of time order, so the loader replays them in time order.
#  2. end to end (E2E=1, needs a release build of port25): `port25 egress
#     flows --pcap` over $PCAP_FLOWS NetFlow v5 records (egress_bench_gen),
#     with and without `--attribution kea:` the $LEASES leases: medians of
#     $ROUNDS, and the ratio.
#
# Usage: bench/attribution.sh
# Env:   LEASES=1000000 FLOWS=10000000 ROUNDS=5 E2E=0 PCAP_FLOWS=2000000
#        CARGO_TARGET_DIR (default target/) KEEP=1 keeps the temp directory
#        BUILD=0 runs the binaries already in $CARGO_TARGET_DIR/release
#        (another build's, to compare) instead of building them
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LEASES=${LEASES:-1000000}
FLOWS=${FLOWS:-10000000}
ROUNDS=${ROUNDS:-5}
E2E=${E2E:-0}
PCAP_FLOWS=${PCAP_FLOWS:-2000000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
R=$TARGET/release
W=$(mktemp -d)
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"; }
trap cleanup EXIT

command -v bc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q bc >/dev/null
if [ "${BUILD:-1}" = 0 ]; then
  :
elif [ "$E2E" = 1 ]; then
  (cd "$ROOT" && cargo build --release -q -p port25 -p port25-egress --examples)
else
  (cd "$ROOT" && cargo build --release -q -p port25-egress --example attribution_bench)
fi

echo "== 1. join: $FLOWS lookups against $LEASES leases / sessions, one core"
"$R/examples/attribution_bench" kea "$LEASES" "$W/kea-leases4.csv"
"$R/examples/attribution_bench" radius "$LEASES" "$W/detail-20251124"
printf '  files: kea %s MB, radius detail %s MB\n' "$(($(stat -c %s "$W/kea-leases4.csv") / 1000000))" "$(($(stat -c %s "$W/detail-20251124") / 1000000))"
mkdir -p "$W/split/a" "$W/split/b"
awk -v a="$W/split/a/detail-20251124" -v b="$W/split/b/detail-20251124" \
  'BEGIN { RS = ""; ORS = "\n\n" } /Acct-Status-Type = Stop/ { print > a; next } { print > b }' "$W/detail-20251124"
for src in "kea:$W/kea-leases4.csv" "radius:$W/detail-20251124" "radius:$W/split"; do
  case $src in */split) echo "  radius, Stops read before Starts (two directories):" ;; *) echo "  ${src%%:*}:" ;; esac
  taskset -c 0 "$R/examples/attribution_bench" join "$src" "$FLOWS" "$ROUNDS" | sed 's/^/    /'
done

if [ "$E2E" = 1 ]; then
  median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
  echo "== 2. port25 egress flows --pcap: $PCAP_FLOWS NetFlow v5 records, with and without --attribution kea: ($LEASES leases)"
  "$R/examples/egress_bench_gen" flows "$PCAP_FLOWS" "$W/flows.pcap"
  printf '[[network]]\nname = "residential"\nclass = "residential"\nprefixes = ["10.0.0.0/16"]\n' > "$W/flows.toml"
  plain=$(for _ in $(seq "$ROUNDS"); do secs "$R/port25" egress flows -p "$W/flows.toml" --pcap "$W/flows.pcap" -f csv; done | median)
  with=$(for _ in $(seq "$ROUNDS"); do secs "$R/port25" egress flows -p "$W/flows.toml" --pcap "$W/flows.pcap" -f csv --attribution "kea:$W/kea-leases4.csv"; done | median)
  "$R/port25" egress flows -p "$W/flows.toml" --pcap "$W/flows.pcap" -f csv --attribution "kea:$W/kea-leases4.csv" 2>&1 >/dev/null | grep attribution: | head -1 | sed 's/^/  /'
  printf '  without attribution median %.3f s, with %.3f s (loading the leases included): ratio %.2fx\n' "$plain" "$with" "$(echo "$with / $plain" | bc -l)"
fi
