//! Per-subscriber port-25 report from flow records.
