#!/usr/bin/env bash
# Pushes a few real profiles from the shared test data (folded stacks from
# Brendan Gregg's FlameGraph repository: Java, Node.js, Rust and a vert.x
# service) to a running kiln through the legacy /ingest API, stamped with
# the current time, so they pass the default 1 h age limit and show in
# Grafana or a query at once. Usage: tools/demo.sh [testdata-dir]; the
# server is $KILN_URL (default http://localhost:4040).
set -euo pipefail
data=${1:-$(dirname "$0")/../../shared/testdata}
url=${KILN_URL:-http://localhost:4040}
now=$(date +%s)

push() { # service file
  # name=<app>.cpu{env=demo}, percent-encoded; from/until give the time.
  curl -sS --fail-with-body -X POST --data-binary @"$data/$2" \
    "$url/ingest?name=$1.cpu%7Benv%3Ddemo%7D&format=folded&from=$((now - 10))&until=$now&sampleRate=100&spyName=perf_script"
  echo "pushed $2 as $1"
}

push java-app flamegraph/perf-java-stacks-01-collapsed-kernel.txt
push node-app flamegraph/perf-js-stacks-01-collapsed-jit.txt
push rust-app flamegraph/perf-rust-Yamakaky-dcpu-collapsed-all.txt
push vertx-app flamegraph/perf-vertx-stacks-01-collapsed-all.txt

cat <<EOT

Query them (curl -g keeps the braces; or use --data-urlencode):
  curl -g '$url/pyroscope/render?query=java-app.cpu{env="demo"}&from=now-1h&until=now&format=json'
  curl -s '$url/querier.v1.QuerierService/LabelValues' -H 'Content-Type: application/json' \\
    -d '{"name":"service_name","start":$(( (now - 3600) * 1000 )),"end":$(( (now + 60) * 1000 ))}'
EOT
