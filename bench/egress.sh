#!/usr/bin/env bash
# Egress benchmarks (issue 6), each side by side with its peer:
#
#  1. compile: a policy of $PREFIXES prefixes (a national provider) to every
#     target; goal < 2 s. The nftables output is also loaded with `nft -f`
#     in a throwaway network namespace (the kernel's time, for scale).
#  2. lpm: longest-prefix classification of $ADDRS IPv4 addresses on one
#     core (egress_lpm_bench) vs pytricia over the same prefixes and
#     addresses ($PY_ADDRS of them: Python is slow); goal >= 20 M lookups/s.
#  3. flows: $FLOWS NetFlow v5 records from a pcap through
#     `port25 egress flows --pcap` vs nfdump filtering and aggregating the
#     same records (replayed into nfcapd first; the per-subscriber counts
#     must agree); goal >= 1 M records/s.
#
# Every measurement is repeated $ROUNDS times; medians and ratios are printed.
# Usage: bench/egress.sh  (as root: it installs nftables, nfdump, bc and
#        GNU time with apt-get and pytricia with pip when they are missing)
# Env:   PREFIXES=200000 ADDRS=10000000 PY_ADDRS=2000000 FLOWS=2000000 ROUNDS=5
#        CARGO_TARGET_DIR (default target/) KEEP=1 keeps the temp directory
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIXES=${PREFIXES:-200000}
ADDRS=${ADDRS:-10000000}
PY_ADDRS=${PY_ADDRS:-2000000}
FLOWS=${FLOWS:-2000000}
ROUNDS=${ROUNDS:-5}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
R=$TARGET/release
W=$(mktemp -d)
NS=p25bench$$
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  [ -n "${NFCAPD_PID:-}" ] && kill "$NFCAPD_PID" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT

# The peers and tools this script runs, installed when missing (a fresh
# machine has none of them).
need=()
for c in nft:nftables nfcapd:nfdump nfreplay:nfdump bc:bc ip:iproute2; do
  command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
done
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
python3 -c 'import pytricia' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore pytricia

(cd "$ROOT" && cargo build --release -q -p port25 -p port25-egress --examples)

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
# user + system CPU seconds: steadier than wall time on a shared machine.
cpu() { /usr/bin/time -f "%U %S" -o "$W/cpu.txt" "$@" >/dev/null 2>&1; awk '{print $1 + $2}' "$W/cpu.txt"; }

echo "== 1. compile $PREFIXES prefixes"
"$R/examples/egress_bench_gen" policy "$PREFIXES" "$W/big.toml"
for t in nftables nftables-json ipset iptables cisco juniper; do
  m=$(for _ in $(seq "$ROUNDS"); do secs "$R/port25" egress compile -p "$W/big.toml" -t "$t"; done | median)
  printf '  %-14s median %.3f s\n' "$t" "$m"
done
"$R/port25" egress compile -p "$W/big.toml" -t nftables > "$W/big.nft"
sed -n 3p "$W/big.nft"
ip netns add "$NS"
m=$(secs ip netns exec "$NS" nft -f "$W/big.nft")
printf '  nft -f (kernel load, for scale)  %.3f s\n' "$m"

echo "== 2. longest-prefix classification, one core"
"$R/examples/egress_bench_gen" addrs "$ADDRS" "$W/addrs.txt"
taskset -c 0 "$R/examples/egress_lpm_bench" "$W/big.toml" "$W/addrs.txt" > "$W/lpm-port25.txt"
taskset -c 0 python3 "$ROOT/bench/egress_lpm.py" "$W/big.toml" "$W/addrs.txt" "$PY_ADDRS" > "$W/lpm-pytricia.txt"
sed 's/^/  port25:   /' "$W/lpm-port25.txt"; sed 's/^/  pytricia: /' "$W/lpm-pytricia.txt"
ours=$(awk '/^median/ {print $2}' "$W/lpm-port25.txt")
peer=$(awk '/^median/ {print $2}' "$W/lpm-pytricia.txt")
printf '  port25 %.1f M/s, pytricia %.2f M/s: ratio %.1fx\n' "$ours" "$peer" "$(echo "$ours / $peer" | bc -l)"

echo "== 3. flow analysis from files: $FLOWS NetFlow v5 records"
"$R/examples/egress_bench_gen" flows "$FLOWS" "$W/flows.pcap"
cat > "$W/flows.toml" <<'TOML'
[[network]]
name = "residential"
class = "residential"
prefixes = ["10.0.0.0/16"]
[[exempt]]
name = "mta"
prefixes = ["10.0.0.25"]
TOML
FILTER='proto tcp and dst port 25 and src net 10.0.0.0/16 and not src host 10.0.0.25'
mkdir -p "$W/nf"
nfcapd -p 2056 -b 127.0.0.1 -B 33554432 -w "$W/nf" -t 3600 >/dev/null 2>&1 &
NFCAPD_PID=$!
sleep 0.5
python3 "$ROOT/bench/egress_replay.py" "$W/flows.pcap" 127.0.0.1 2056
sleep 1
kill -TERM "$NFCAPD_PID"; wait "$NFCAPD_PID" 2>/dev/null || true; NFCAPD_PID=
NF=$(ls "$W"/nf/nfcapd.* | head -1)
stored=$(nfdump -r "$NF" -q -A proto -o 'fmt:%fl' | awk '{s+=$1} END {print s}')
[ "$stored" = "$FLOWS" ] || { echo "nfcapd stored $stored of $FLOWS records: the replay lost datagrams" >&2; exit 1; }
"$R/port25" egress flows -p "$W/flows.toml" --pcap "$W/flows.pcap" -f csv 2>/dev/null | tail -n +2 | awk -F, '{print $1, $4}' | sort > "$W/ours.txt"
nfdump -r "$NF" -q -A srcip -o 'fmt:%sa %fl' "$FILTER" | awk '{print $1, $2}' | sort > "$W/nfdump.txt"
if ! cmp -s "$W/ours.txt" "$W/nfdump.txt"; then
  echo "per-subscriber counts differ from nfdump's:" >&2; diff "$W/ours.txt" "$W/nfdump.txt" | head >&2; exit 1
fi
echo "  per-subscriber port-25 flow counts agree with nfdump ($(wc -l < "$W/ours.txt") subscribers)"
ours=$(for _ in $(seq "$ROUNDS"); do secs "$R/port25" egress flows -p "$W/flows.toml" --pcap "$W/flows.pcap" -f csv; done | median)
peer=$(for _ in $(seq "$ROUNDS"); do secs nfdump -r "$NF" -q -A srcip -o 'fmt:%sa %fl' "$FILTER"; done | median)
printf '  port25 egress flows --pcap  median %.3f s = %.2f M records/s\n' "$ours" "$(echo "$FLOWS / $ours / 1000000" | bc -l)"
printf '  nfdump -r (nfcapd file)     median %.3f s = %.2f M records/s\n' "$peer" "$(echo "$FLOWS / $peer / 1000000" | bc -l)"
printf '  ratio port25/nfdump speed %.2fx (wall)\n' "$(echo "$peer / $ours" | bc -l)"
ours=$(for _ in $(seq "$ROUNDS"); do cpu "$R/port25" egress flows -p "$W/flows.toml" --pcap "$W/flows.pcap" -f csv; done | median)
peer=$(for _ in $(seq "$ROUNDS"); do cpu nfdump -r "$NF" -q -A srcip -o 'fmt:%sa %fl' "$FILTER"; done | median)
printf '  CPU time (user+sys) median: port25 %.2f s = %.2f M records/s, nfdump %.2f s = %.2f M records/s, ratio %.2fx\n' \
  "$ours" "$(echo "$FLOWS / $ours / 1000000" | bc -l)" "$peer" "$(echo "$FLOWS / $peer / 1000000" | bc -l)" "$(echo "$peer / $ours" | bc -l)"
