#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# summary.sh FILE: the table `make bench` ends with. FILE holds the
# `SUMMARY name value unit` lines the benches wrote (KILN_BENCH_SUMMARY);
# each of issue 15's figures is printed with its target and its ratio to
# the Pyroscope v1.12.0 figure in the table (where the issue gives
# a range, its low end, so the ratio is never flattering). A figure no
# bench wrote shows as "-". Prints figures only: it never fails a build.
set -eu
file=${1:?usage: summary.sh SUMMARY-FILE}
[ -f "$file" ] || : >"$file"
awk '
# name | what | target op | target value | Pyroscope (0: none)
BEGIN {
    n = 0
    spec("server_cpu_s_per_mb_connect", "server CPU-s per MB, Connect", "<=", 0.012, 0.23)
    spec("server_cpu_s_per_mb_grpc", "server CPU-s per MB, gRPC", "<=", 0.012, 0.23)
    spec("server_cpu_s_per_mb_ingest", "server CPU-s per MB, legacy /ingest", "<=", 0.012, 0.22)
    spec("server_cpu_s_per_mb_otlp", "server CPU-s per MB, OTLP gRPC", "<=", 0.012, 0)
    spec("inprocess_cpu_s_per_mb_otlp", "in process CPU-s per MB, OTLP (no network)", "", 0, 0)
    spec("pushes_per_s_c1", "pushes/s at 1 client", "", 0, 40)
    spec("pushes_per_s_c4", "pushes/s at 4 clients", "", 0, 69)
    spec("pushes_per_s_c16", "pushes/s at 16 clients", "", 0, 72)
    spec("push_p50_c1", "push p50 at 1 client (ms)", "", 0, 12.6)
    spec("inproc_push_mix", "in process MB/s per core, the mix", ">=", 200, 0)
    spec("inproc_push_slowest_file", "in process MB/s per core, slowest file", ">=", 200, 0)
    spec("inproc_push_default_pgo", "in process MB/s per core, default.pgo", ">=", 200, 0)
    spec("small_pushes_per_s_c64", "durable 1.2 KB pushes/s at 64 clients (wrk)", ">=", 15000, 0)
    spec("small_push_p99_c64", "durable 1.2 KB push p99, 64 clients (wrk, ms)", "<", 20, 0)
    spec("small_pushes_per_s_c64_connect", "the same from Go Connect clients on the machine", "", 0, 0)
    spec("small_push_p99_c64_connect", "their p99 (ms)", "", 0, 0)
    spec("flame_p50_ms", "flame graph p50 (ms)", "", 0, 57)
    spec("select_series_p50_ms", "SelectSeries p50 (ms)", "", 0, 4)
    spec("group_by_20k_ms", "SelectSeries group_by over 20k series (ms)", "<", 150, 1700)
    spec("group_by_100k_ms", "SelectSeries group_by over 100k series (ms)", "<", 1000, 0)
    spec("disk_bytes_per_sample_flush", "bytes on disk per sample, after flush", "<=", 2.1, 6.35)
    spec("disk_bytes_per_sample_compact", "bytes on disk per sample, after compaction", "<=", 2.1, 6.35)
    spec("rss_mb_1200_profiles", "RSS after 1,200 profiles (MB)", "", 0, 340)
    spec("rss_mib_per_1k_series", "RSS growth per 1k series (MiB)", "<=", 1.5, 7.15)
    spec("budget_heads_peak_per_budget", "heads peak / -ingester.max-head-bytes", "<=", 2.5, 0)
    spec("budget_rss_growth_per_budget", "RSS growth less open blocks / budget", "<=", 3, 0)
    spec("shutdown_flush_s", "flush of a large head at shutdown (s)", "<", 2.6, 0)
}
function spec(name, what, op, target, pyro) {
    n++; key[n] = name; desc[name] = what; top[name] = op; tval[name] = target; pval[name] = pyro
}
$1 == "SUMMARY" && NF >= 3 { val[$2] = $3; unit[$2] = $4 }
END {
    printf "\n== issue 15 summary (Kiln / Pyroscope v1.12.0 as measured in the issue)\n"
    printf "%-46s %12s %-10s %12s %10s %8s %4s\n", "figure", "Kiln", "unit", "target", "Pyroscope", "ratio", "met"
    for (i = 1; i <= n; i++) {
        k = key[i]
        have = (k in val)
        v = have ? val[k] + 0 : 0
        tgt = top[k] == "" ? "-" : top[k] " " tval[k]
        py = pval[k] > 0 ? sprintf("%g", pval[k]) : "-"
        ratio = have && pval[k] > 0 ? sprintf("%.2f", v / pval[k]) : "-"
        met = "-"
        if (have && top[k] == "<=") met = v <= tval[k] ? "yes" : "NO"
        if (have && top[k] == "<") met = v < tval[k] ? "yes" : "NO"
        if (have && top[k] == ">=") met = v >= tval[k] ? "yes" : "NO"
        printf "%-46s %12s %-10s %12s %10s %8s %4s\n", desc[k], have ? val[k] : "-",
            have ? unit[k] : "", tgt, py, ratio, met
    }
}' "$file"
