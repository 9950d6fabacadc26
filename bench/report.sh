#!/usr/bin/env bash
# Benchmark of `port25 report` (issue 5): Table 1 plus the top-N tables over
# a generated capture of EVENTS events, side by side with DuckDB (PyPI)
# computing the same figures from the same files; wall time and peak RSS of
# each (GNU time), and a check that both give the same numbers.
#
#   bench/report.sh                       # 10 million events, 2 threads
#   EVENTS=2000000 THREADS=2 bench/report.sh
#   REPEAT=10 bench/report.sh             # 100 million events in the disk space of 10 million
#
# REPEAT=N reads a capture of N times the events: the generated store's
# segments hard-linked N times under new sequence numbers (no extra disk;
# the same sources, days and bodies, every count N times), so a 100 M-event
# capture fits where 44 GB of distinct log would not. ROUNDS=R runs both
# tools R times and prints the medians and their ratio. DUCKDB=0 runs port25
# alone (DuckDB's memory grows with the events: at 100 M it would need more
# than this machine has) and skips the comparison.
#
# COMPRESS=1 keeps the generated log compressed: each segment is handed to
# zstd (-3, the CLI from the Debian package) as soon as the generator has
# moved on to the next one, so a 100 M-event capture of distinct events
# (52 GB of JSON) takes a few GB on disk, and `report build` reads the
# .jsonl.zst segments, decompressing them as it goes (the same lines, the
# same parser; the decoding is the difference, measured by running the
# same store both ways).
#
# The store is written once under $WORK (default /var/tmp/port25-report-bench)
# and reused when its truth.json matches the parameters. Peak memory of
# port25 must not grow with EVENTS: run twice with different EVENTS to see.
# CPU time (user + sys) is printed beside wall time: on a shared machine the
# wall clock measures the neighbours as much as the program.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-10000000}
THREADS=${THREADS:-2}
SOURCES=${SOURCES:-216888}
WORK=${WORK:-/var/tmp/port25-report-bench}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/port25
[ -x "$BIN" ] || cargo build --release -p port25
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore duckdb
# A session is connect + proxy.request + close around 3 messages on average,
# plus one probe per source: about 2.07 events per message.
MESSAGES=$(( EVENTS * 100 / 207 ))
COMPRESS=${COMPRESS:-0}
SYNTH=$WORK/synth-$EVENTS
[ "$COMPRESS" = 1 ] && SYNTH=$WORK/synth-$EVENTS-zst
# Compresses every closed segment (all but the newest, which the generator
# may still be writing; all of them with `all`).
compress_closed() {
  local segs
  mapfile -t segs < <(ls "$SYNTH"/capture/events/events-*.jsonl 2>/dev/null | sort)
  [ "${1:-}" = all ] || [ "${#segs[@]}" = 0 ] || segs=("${segs[@]:0:${#segs[@]}-1}")
  for f in "${segs[@]}"; do zstd -q -3 --rm "$f"; done
}
if [ ! -f "$SYNTH/truth.json" ]; then
  rm -rf "$SYNTH"
  echo "generating $MESSAGES messages from $SOURCES sources into $SYNTH ..."
  /usr/bin/time -f "generate: %e s, peak RSS %M KiB" "$BIN" report generate "$SYNTH" --days 466 --messages "$MESSAGES" \
    --sources "$SOURCES" --asns 3006 --campaigns 200 --variants 4 >/dev/null &
  gen=$!
  if [ "$COMPRESS" = 1 ]; then
    command -v zstd >/dev/null || { echo "COMPRESS=1 needs the zstd CLI (Debian package zstd)" >&2; exit 1; }
    while kill -0 "$gen" 2>/dev/null; do compress_closed; sleep 2; done
  fi
  wait "$gen"
  [ "$COMPRESS" = 1 ] && compress_closed all
fi
REPEAT=${REPEAT:-1}
ROUNDS=${ROUNDS:-1}
READ=$SYNTH
if [ "$REPEAT" -gt 1 ]; then
  READ=$WORK/repeat-$EVENTS-x$REPEAT
  rm -rf "$READ"
  mkdir -p "$READ/capture/events"
  ln -s "$SYNTH/capture/bodies" "$READ/capture/bodies"
  cp "$SYNTH/geoip.csv" "$SYNTH/routeviews.pfx2as" "$READ/"
  seq=0
  for r in $(seq 1 "$REPEAT"); do
    for f in "$SYNTH"/capture/events/events-*.jsonl*; do
      seq=$((seq + 1))
      ln "$f" "$READ/capture/events/$(basename "$f" | cut -d- -f1-2)-$(printf '%06d' "$seq").jsonl${f##*.jsonl}"
    done
  done
fi
events=$(( $(python3 -c "import json;print(json.load(open('$SYNTH/truth.json'))['events'])") * REPEAT ))
size=$(du -shl "$READ/capture/events" | cut -f1)
echo "store: $events events ($REPEAT x the generated store), $size of event log"
# Both tools read a warm page cache (read once here), so neither pays the disk for the other.
cat "$READ"/capture/events/*.jsonl* > /dev/null
for round in $(seq 1 "$ROUNDS"); do
  /usr/bin/time -f "port25: %e s wall, %U s user, %S s sys, peak RSS %M KiB" "$BIN" report build --capture "$READ/capture" --threads "$THREADS" \
    --enrich "$READ/geoip.csv" --enrich "$READ/routeviews.pfx2as" --out "$WORK/out-$EVENTS" --json > "$WORK/port25.json" 2> "$WORK/port25.err"
  tail -1 "$WORK/port25.err" | tee -a "$WORK/times"
  [ "${DUCKDB:-1}" = 0 ] && continue
  /usr/bin/time -f "duckdb: %e s wall, %U s user, %S s sys, peak RSS %M KiB" python3 bench/report_duckdb.py "$READ" "$THREADS" > "$WORK/duckdb.json" 2> "$WORK/duckdb.err"
  tail -1 "$WORK/duckdb.err" | tee -a "$WORK/times"
done
if [ "${DUCKDB:-1}" = 0 ]; then
  rm -f "$WORK/times"
  python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['table1']; print(f\"Table 1: {t['emails']} emails, {t['recipients']} recipients, {t['unique_ips']} IPs, {t['unique_asns']} ASes, {t['countries']} countries\")" "$WORK/port25.json"
  exit 0
fi
python3 - "$WORK/times" "$ROUNDS" <<'PY'
import statistics, sys
lines = open(sys.argv[1]).read().splitlines()[-2 * int(sys.argv[2]):]
wall = lambda tool: [float(l.split(":")[1].split()[0]) for l in lines if l.startswith(tool + ":")]
p, d = statistics.median(wall("port25")), statistics.median(wall("duckdb"))
print(f"median wall: port25 {p:.2f} s, duckdb {d:.2f} s; ratio duckdb/port25 {d / p:.2f}")
PY
rm -f "$WORK/times"
python3 - "$WORK" "$EVENTS" <<'PY'
import json, sys
work, events = sys.argv[1], sys.argv[2]
d = json.load(open(f"{work}/duckdb.json"))
r = json.load(open(f"{work}/out-{events}/report.json"))["sections"][0]
t1 = r["summary"]["table1"]
tables = {t["id"]: t for t in r["tables"]}
def col(t, c):
    i = tables[t]["columns"].index(c)
    return [row[i] for row in tables[t]["rows"]]
checks = {
    "emails": (t1["emails"], d["emails"]), "recipients": (t1["recipients"], d["recipients"]),
    "unique_ips": (t1["unique_ips"], d["unique_ips"]), "unique_asns": (t1["unique_asns"], d["unique_asns"]),
    "countries": (t1["countries"], d["countries"]), "probes": (t1["probes"], d["probes"]),
    "start": (t1["start"], d["start"]), "end": (t1["end"], d["end"]),
    "per_day": (col("per_day", "emails"), [x[1] for x in d["per_day"]]),
    "top_ips": (col("top_ips", "ip"), [x[0] for x in d["top_ips"]]),
    "top_domains": (col("dest_domains", "domain"), [x[0] for x in d["top_domains"]]),
    "top_countries": (col("top_countries", "emails"), [x[1] for x in d["top_countries"]]),
    "top_asns": (col("top_asns", "asn"), [x[0] for x in d["top_asns"]]),
    "top_digests": (col("campaigns", "emails"), [x[1] for x in d["top_digests"]]),
}
bad = [k for k, (a, b) in checks.items() if a != b]
print("figures agree: " + ("yes" if not bad else "NO: " + ", ".join(bad)))
print(f"Table 1: {t1['emails']} emails, {t1['recipients']} recipients, {t1['unique_ips']} IPs, {t1['unique_asns']} ASes, {t1['countries']} countries")
sys.exit(1 if bad else 0)
PY
