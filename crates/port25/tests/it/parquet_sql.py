"""Runs docs/report.md's Table 1 SQL over a `port25 report build --parquet`
dataset in DuckDB and in Apache Spark (local mode), and prints each
engine's row as JSON, one line per engine.

usage: parquet_sql.py DATASET_DIR SQL_FILE
"""
import json, os, sys

dataset, sql = sys.argv[1], open(sys.argv[2]).read()
cols = ["start_day", "end_day", "days", "days_with_spam", "emails", "recipients", "recipients_per_spam", "emails_per_day",
        "unique_ips", "unique_asns", "countries", "probes", "probe_recipients", "probe_sources"]

import duckdb

con = duckdb.connect()
con.execute(f"CREATE VIEW capture AS SELECT * FROM read_parquet('{dataset}/*/*/*.parquet', hive_partitioning = true)")
cur = con.execute(sql)
names = [d[0] for d in cur.description]
row = cur.fetchone()
print(json.dumps({"engine": "duckdb", **{n: (float(v) if n == "recipients_per_spam" else v) for n, v in zip(names, row)}}, default=str))
sys.stdout.flush()

from pyspark.sql import SparkSession

spark = (SparkSession.builder.master("local[2]").appName("port25-table1")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
spark.read.parquet(dataset).createOrReplaceTempView("capture")
r = spark.sql(sql).collect()[0].asDict()
print(json.dumps({"engine": "spark", **{n: (float(v) if n == "recipients_per_spam" else v) for n, v in r.items()}}, default=str))
spark.stop()
