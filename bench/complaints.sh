#!/usr/bin/env bash
# Benchmark of `port25 report build --complaints` (issue 18 section 4): an
# mbox of N abuse reports (default 500,000) read as a stream. Wall time, CPU
# and peak RSS (GNU time), medians of RUNS runs, and a check that every
# report was counted in the right category. BASELINE=path/to/port25 runs an
# older binary the same way, in alternating order, and prints the ratios.
#
#   bench/complaints.sh                                  # 500,000 reports
#   N=50000 bench/complaints.sh                          # memory must not follow N
#   BIN=target/debug/port25 BASELINE=/tmp/port25-old bench/complaints.sh
#
# The mbox is written once under $WORK (default /var/tmp/port25-complaints-bench)
# and reused; delete it after (500,000 reports are about 400 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-500000}
RUNS=${RUNS:-3}
WORK=${WORK:-/var/tmp/port25-complaints-bench}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/port25}
BASELINE=${BASELINE:-}
[ -x "$BIN" ] || cargo build --release -p port25
DATA=$WORK/n-$N
if [ ! -f "$DATA/truth.json" ]; then
  rm -rf "$DATA"
  echo "writing $N reports into $DATA/complaints.mbox ..."
  python3 bench/complaints_mbox.py "$N" "$DATA"
fi
echo "mbox: $N reports, $(du -h "$DATA/complaints.mbox" | cut -f1)"
cat "$DATA/complaints.mbox" > /dev/null  # warm page cache for every run

declare -A wall rss cpu
run() { # name binary
  local out=$WORK/out-$1.json t
  t=$( { /usr/bin/time -f "%e %M %U %S" "$2" report build --complaints "$DATA/complaints.mbox" --enrich "$DATA/geo.csv" --quiet --json > "$out"; } 2>&1 | tail -1)
  python3 - "$out" "$DATA/truth.json" <<'PY' || die "$1: counts differ from the truth"
import json, sys
got = json.load(open(sys.argv[1]))["complaints"]
truth = json.load(open(sys.argv[2]))
assert got["reports"] == truth["reports"] and got["unreadable"] == 0, got
assert got.get("per_category", truth["per_category"]) == truth["per_category"], (got, truth)
PY
  read -r w m u s <<< "$t"
  wall[$1]+="$w "; rss[$1]+="$m "; cpu[$1]+="$(echo "$u + $s" | bc) "
}
for ((i = 0; i < RUNS; i++)); do
  if [ -n "$BASELINE" ] && (( i % 2 == 0 )); then run baseline "$BASELINE"; fi
  run port25 "$BIN"
  if [ -n "$BASELINE" ] && (( i % 2 == 1 )); then run baseline "$BASELINE"; fi
done
for name in baseline port25; do
  [ -n "${wall[$name]:-}" ] || continue
  # shellcheck disable=SC2086
  echo "$name: median of $RUNS: $(median ${wall[$name]}) s wall, $(median ${cpu[$name]}) s CPU, peak RSS $(median ${rss[$name]}) KiB"
done
if [ -n "$BASELINE" ]; then
  # shellcheck disable=SC2086
  echo "ratio baseline/port25: wall $(echo "scale=2; $(median ${wall[baseline]}) / $(median ${wall[port25]})" | bc), peak RSS $(echo "scale=2; $(median ${rss[baseline]}) / $(median ${rss[port25]})" | bc)"
fi
