"""The same figures as `port25 report build` (Table 1 without probes, per
day, per sensor, top IPs, top recipient domains, top bodies, and countries
and ASes through the generator's geoip.csv and pfx2as), computed by DuckDB
from the same capture files, for bench/report.sh. Prints the figures as
JSON so the script can check both tools agree.

usage: python3 report_duckdb.py SYNTH_DIR THREADS
"""
import json
import sys

import duckdb

synth, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads={threads}")
# An explicit schema: DuckDB's best case (no sampling to infer types).
con.execute(f"""
CREATE TEMP VIEW ev AS SELECT * FROM read_json('{synth}/capture/events/*.jsonl', format='newline_delimited',
  columns={{'event':'VARCHAR','sensor':'VARCHAR','time':'VARCHAR','src_ip':'VARCHAR','rcpt_to':'VARCHAR[]',
           'digest':'VARCHAR','probe':'BOOLEAN','proxy_type':'VARCHAR'}})
""")
con.execute("""
CREATE TEMP TABLE m AS SELECT sensor, time, src_ip, rcpt_to, digest, proxy_type FROM ev
WHERE event = 'port25.spampot.message' AND NOT coalesce(probe, false)
""")
out = {}
row = con.execute("SELECT count(*), sum(len(rcpt_to)), count(DISTINCT src_ip), min(time), max(time) FROM m").fetchone()
out["emails"], out["recipients"], out["unique_ips"], out["start"], out["end"] = row[0], int(row[1]), row[2], row[3][:10], row[4][:10]
out["probes"] = con.execute("SELECT count(*) FROM ev WHERE event = 'port25.spampot.message' AND coalesce(probe, false)").fetchone()[0]
out["per_day"] = con.execute("SELECT substr(time, 1, 10) d, count(*) FROM m GROUP BY d ORDER BY d").fetchall()
out["per_sensor"] = con.execute("SELECT sensor, count(*) FROM m GROUP BY sensor ORDER BY sensor").fetchall()
out["top_ips"] = con.execute("SELECT src_ip, count(*) c FROM m GROUP BY src_ip ORDER BY c DESC, src_ip LIMIT 20").fetchall()
out["top_domains"] = con.execute(
    "SELECT lower(split_part(r, '@', 2)) d, count(*) c FROM (SELECT unnest(rcpt_to) r FROM m) GROUP BY d ORDER BY c DESC, d LIMIT 20").fetchall()
out["top_digests"] = con.execute("SELECT digest, count(*) c FROM m GROUP BY digest ORDER BY c DESC, digest LIMIT 20").fetchall()
out["proxy_types"] = con.execute("SELECT proxy_type, count(*) FROM m GROUP BY proxy_type ORDER BY proxy_type").fetchall()
# Enrichment: per distinct address, a range join on the integer form.
con.execute(f"CREATE TEMP TABLE geo AS SELECT * FROM read_csv('{synth}/geoip.csv', comment='#', header=false, columns={{'lo':'UBIGINT','hi':'UBIGINT','cc':'VARCHAR'}})")
con.execute(f"CREATE TEMP TABLE pfx AS SELECT * FROM read_csv('{synth}/routeviews.pfx2as', delim='\t', header=false, columns={{'net':'VARCHAR','len':'INTEGER','asn':'UBIGINT'}})")
con.execute("""CREATE TEMP TABLE pfxr AS SELECT asn,
  (split_part(net,'.',1)::UBIGINT<<24 | split_part(net,'.',2)::UBIGINT<<16 | split_part(net,'.',3)::UBIGINT<<8 | split_part(net,'.',4)::UBIGINT) lo,
  len FROM pfx""")
con.execute("""CREATE TEMP TABLE ips AS SELECT src_ip, count(*) n,
  (split_part(src_ip,'.',1)::UBIGINT<<24 | split_part(src_ip,'.',2)::UBIGINT<<16 | split_part(src_ip,'.',3)::UBIGINT<<8 | split_part(src_ip,'.',4)::UBIGINT) k
  FROM m GROUP BY src_ip""")
out["top_countries"] = con.execute(
    "SELECT cc, sum(n) s FROM ips JOIN geo ON k BETWEEN lo AND hi GROUP BY cc ORDER BY s DESC, cc LIMIT 20").fetchall()
# Longest-prefix match: the most specific prefix holding each address.
out["top_asns"] = con.execute("""
SELECT asn, sum(n) s FROM (
  SELECT n, arg_max(asn, len) asn FROM ips JOIN pfxr ON k BETWEEN lo AND lo + (1::UBIGINT << (32 - len)) - 1 GROUP BY src_ip, n)
GROUP BY asn ORDER BY s DESC, asn LIMIT 20""").fetchall()
out["unique_asns"] = con.execute("""SELECT count(DISTINCT asn) FROM (
  SELECT arg_max(asn, len) asn FROM ips JOIN pfxr ON k BETWEEN lo AND lo + (1::UBIGINT << (32 - len)) - 1 GROUP BY src_ip)""").fetchone()[0]
out["countries"] = con.execute("SELECT count(DISTINCT cc) FROM ips JOIN geo ON k BETWEEN lo AND hi").fetchone()[0]
print(json.dumps(out, default=str))
