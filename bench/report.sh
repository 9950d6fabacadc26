#!/usr/bin/env bash
# Benchmark of `port25 report` (issue 5): Table 1 plus the top-N tables over
# a generated capture of EVENTS events, side by side with DuckDB (PyPI)
# computing the same figures from the same files; wall time and peak RSS of
# each (GNU time), and a check that both give the same numbers.
#
#   bench/report.sh                       # 10 million events, 2 threads
#   EVENTS=2000000 THREADS=2 bench/report.sh
#
# The store is written once under $WORK (default /var/tmp/port25-report-bench)
# and reused when its truth.json matches the parameters. Peak memory of
# port25 must not grow with EVENTS: run twice with different EVENTS to see.
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
SYNTH=$WORK/synth-$EVENTS
if [ ! -f "$SYNTH/truth.json" ]; then
  rm -rf "$SYNTH"
  echo "generating $MESSAGES messages from $SOURCES sources into $SYNTH ..."
  /usr/bin/time -f "generate: %e s, peak RSS %M KiB" "$BIN" report generate "$SYNTH" --days 466 --messages "$MESSAGES" \
    --sources "$SOURCES" --asns 3006 --campaigns 200 --variants 4 >/dev/null
fi
events=$(python3 -c "import json;print(json.load(open('$SYNTH/truth.json'))['events'])")
size=$(du -sh "$SYNTH/capture/events" | cut -f1)
echo "store: $events events, $size of event log"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
/usr/bin/time -f "port25: %e s, peak RSS %M KiB" "$BIN" report build --capture "$SYNTH/capture" --threads "$THREADS" \
  --enrich "$SYNTH/geoip.csv" --enrich "$SYNTH/routeviews.pfx2as" --out "$WORK/out-$EVENTS" --json > "$WORK/port25.json" 2> "$WORK/port25.err"
tail -1 "$WORK/port25.err"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
/usr/bin/time -f "duckdb: %e s, peak RSS %M KiB" python3 bench/report_duckdb.py "$SYNTH" "$THREADS" > "$WORK/duckdb.json" 2> "$WORK/duckdb.err"
tail -1 "$WORK/duckdb.err"
python3 - "$WORK" "$SYNTH" <<'PY'
import json, sys
work, synth = sys.argv[1], sys.argv[2]
d = json.load(open(f"{work}/duckdb.json"))
r = json.load(open(f"{work}/out-" + synth.rsplit("-", 1)[1] + "/report.json"))["sections"][0]
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
