#!/usr/bin/env bash
# nfcapd files (issue 20, section 2): the same question, "port-25 flows per
# subscriber in blocked space", answered from the same nfdump 1.7 files by
# `port25 egress flows --nfcapd` and by `nfdump -r ... -A srcip`, for each
# compression nfdump writes (uncompressed, LZ4, LZO).
#
# $FLOWS NetFlow v5 records (egress_bench_gen) are replayed into nfcapd,
# which writes the uncompressed file; `nfdump -r F -y -w` and `-z -w`
# rewrite it with LZ4 and LZO. The per-subscriber counts of both tools must
# agree on every file before anything is timed. Then $ROUNDS rounds, the
# two tools alternating; medians of wall time and of CPU time (user+sys),
# records/s, ratio port25/nfdump (above 1: port25 faster), and each tool's
# peak RSS.
#
# Usage: bench/nfcapd.sh   (as root: installs nfdump, bc and GNU time with
#        apt-get when missing)
# Env:   FLOWS=2000000 ROUNDS=5 CARGO_TARGET_DIR (default target/) KEEP=1
#        DATA=DIR: the three files are written there and, on later runs
#        with the same FLOWS, read from there instead of generated again
#        PORT25=BIN: time this port25 binary (e.g. a build of an earlier
#        commit) instead of building the worktree's
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLOWS=${FLOWS:-2000000}
ROUNDS=${ROUNDS:-5}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
R=$TARGET/release
W=$(mktemp -d)
cleanup() {
  [ -n "${NFCAPD_PID:-}" ] && kill "$NFCAPD_PID" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

need=()
for c in nfcapd:nfdump bc:bc; do
  command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
done
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
if [ -z "${PORT25:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p port25 --bin port25)
  PORT25=$R/port25
fi

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# One run: "wall cpu maxrss_kb" of the command.
run() {
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$W/t.txt" "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  awk -v w="$(echo "$e - $s" | bc -l)" '{print w, $1 + $2, $3}' "$W/t.txt"
}

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
D=${DATA:-$W}
mkdir -p "$D"
PLAIN=$D/plain.nf
if [ -n "${DATA:-}" ] && [ "$(cat "$D/flows" 2>/dev/null)" = "$FLOWS" ] && [ -s "$D/lzo.nf" ]; then
  echo "== $FLOWS NetFlow v5 records, as nfcapd stored them before, from $D"
else
  echo "== $FLOWS NetFlow v5 records into nfcapd"
  rm -f "$D/flows"
  (cd "$ROOT" && cargo build --release -q -p port25-egress --example egress_bench_gen)
  "$R/examples/egress_bench_gen" flows "$FLOWS" "$W/flows.pcap"
  mkdir -p "$W/nf"
  nfcapd -p 2057 -b 127.0.0.1 -B 33554432 -w "$W/nf" -t 3600 >/dev/null 2>&1 &
  NFCAPD_PID=$!
  sleep 0.5
  python3 "$ROOT/bench/egress_replay.py" "$W/flows.pcap" 127.0.0.1 2057
  sleep 1
  kill -TERM "$NFCAPD_PID"; wait "$NFCAPD_PID" 2>/dev/null || true; NFCAPD_PID=
  rm -f "$W/flows.pcap"
  mv "$(ls "$W"/nf/nfcapd.* | head -1)" "$PLAIN"
  stored=$(nfdump -r "$PLAIN" -q -A proto -o 'fmt:%fl' | awk '{s+=$1} END {print s}')
  [ "$stored" = "$FLOWS" ] || die "nfcapd stored $stored of $FLOWS records: the replay lost datagrams"
  nfdump -r "$PLAIN" -y -w "$D/lz4.nf"
  nfdump -r "$PLAIN" -z -w "$D/lzo.nf"
  echo "$FLOWS" > "$D/flows"
fi
ls -l "$PLAIN" "$D/lz4.nf" "$D/lzo.nf" | awk '{printf "  %-60s %6.1f MB\n", $NF, $5 / 1e6}'

for f in "$PLAIN" "$D/lz4.nf" "$D/lzo.nf"; do
  name=$(basename "$f")
  "$PORT25" egress flows -p "$W/flows.toml" --nfcapd "$f" -f csv 2>/dev/null | tail -n +2 | awk -F, '{print $1, $4}' | sort > "$W/ours.txt"
  nfdump -r "$f" -q -A srcip -o 'fmt:%sa %fl' "$FILTER" | awk '{print $1, $2}' | sort > "$W/nfdump.txt"
  cmp -s "$W/ours.txt" "$W/nfdump.txt" || { diff "$W/ours.txt" "$W/nfdump.txt" | head >&2; die "$name: per-subscriber counts differ from nfdump's"; }
  echo "  $name: per-subscriber port-25 flow counts agree with nfdump ($(wc -l < "$W/ours.txt") subscribers)"
done

for f in "$PLAIN" "$D/lz4.nf" "$D/lzo.nf"; do
  case $f in *lz4.nf) kind=LZ4 ;; *lzo.nf) kind=LZO ;; *) kind=uncompressed ;; esac
  : > "$W/ours.runs"; : > "$W/peer.runs"
  for i in $(seq "$ROUNDS"); do
    if [ $((i % 2)) = 1 ]; then
      run "$PORT25" egress flows -p "$W/flows.toml" --nfcapd "$f" -f csv >> "$W/ours.runs"
      run nfdump -r "$f" -q -A srcip -o 'fmt:%sa %fl' "$FILTER" >> "$W/peer.runs"
    else
      run nfdump -r "$f" -q -A srcip -o 'fmt:%sa %fl' "$FILTER" >> "$W/peer.runs"
      run "$PORT25" egress flows -p "$W/flows.toml" --nfcapd "$f" -f csv >> "$W/ours.runs"
    fi
  done
  ow=$(awk '{print $1}' "$W/ours.runs" | median); pw=$(awk '{print $1}' "$W/peer.runs" | median)
  oc=$(awk '{print $2}' "$W/ours.runs" | median); pc=$(awk '{print $2}' "$W/peer.runs" | median)
  orss=$(awk '{print $3}' "$W/ours.runs" | sort -g | tail -1); prss=$(awk '{print $3}' "$W/peer.runs" | sort -g | tail -1)
  echo "== $kind ($ROUNDS rounds, medians)"
  printf '  port25 egress flows --nfcapd  wall %.3f s = %.2f M records/s   CPU %.3f s = %.2f M records/s   peak RSS %d MB\n' \
    "$ow" "$(echo "$FLOWS / $ow / 1000000" | bc -l)" "$oc" "$(echo "$FLOWS / $oc / 1000000" | bc -l)" $((orss / 1024))
  printf '  nfdump -r -A srcip            wall %.3f s = %.2f M records/s   CPU %.3f s = %.2f M records/s   peak RSS %d MB\n' \
    "$pw" "$(echo "$FLOWS / $pw / 1000000" | bc -l)" "$pc" "$(echo "$FLOWS / $pc / 1000000" | bc -l)" $((prss / 1024))
  printf '  ratio port25/nfdump speed: wall %.2fx, CPU %.2fx\n' "$(echo "$pw / $ow" | bc -l)" "$(echo "$pc / $oc" | bc -l)"
done
