#!/usr/bin/env bash
# The chart checked offline (ctest helm.chart): helm lint --strict and
# helm template for single and microservices mode on the filesystem and S3
# backends; kubeconform -strict on every rendered object against the
# Kubernetes schemas of PyPI's kubernetes-validate (made standalone by
# k8s_schemas.py); assertions on the rendered objects (assert_rendered.py);
# values that must fail: a mistyped key (values.schema.json), a replication
# factor above the ingester count, s3 without a bucket.
#
# Usage: tests/helm/check.sh [tools dir]  (default build/tools: the venv
# .ci/install-deps makes; helm and kubeconform from $(go env GOPATH)/bin).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$here/../.."
chart="$repo/helm/kiln"
tools="${1:-$repo/build/tools}"
PATH="$PATH:$(go env GOPATH 2>/dev/null)/bin"
py="$tools/k8s-venv/bin/python"
for t in helm kubeconform; do
    command -v "$t" >/dev/null || { echo "helm check: $t not found: run .ci/install-deps"; exit 1; }
done
[ -x "$py" ] || { echo "helm check: no $tools/k8s-venv: run .ci/install-deps"; exit 1; }

# Kubernetes versions checked: the oldest the chart supports, the newest.
K8S_VERSIONS="1.27.0 1.37.0"
src=$("$py" -c 'import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))')
for v in $K8S_VERSIONS; do
    [ -d "$tools/k8s-schemas/$v" ] || "$py" "$here/k8s_schemas.py" "$src" "$v" "$tools/k8s-schemas/$v"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

S3=(--set storage.backend=s3 --set storage.s3.endpoint=s3.eu-west-1.amazonaws.com
    --set storage.s3.bucketName=kiln-blocks --set storage.s3.region=eu-west-1
    --set storage.s3.existingSecret=kiln-s3)
MS=(--set mode=microservices)
ZONES=(--set ingester.zoneAwareReplication.enabled=true
       --set 'ingester.zoneAwareReplication.zones[0].name=zone-a'
       --set 'ingester.zoneAwareReplication.zones[0].nodeSelector.topology\.kubernetes\.io/zone=eu-west-1a'
       --set 'ingester.zoneAwareReplication.zones[1].name=zone-b'
       --set 'ingester.zoneAwareReplication.zones[1].nodeSelector.topology\.kubernetes\.io/zone=eu-west-1b'
       --set 'ingester.zoneAwareReplication.zones[2].name=zone-c'
       --set 'ingester.zoneAwareReplication.zones[2].nodeSelector.topology\.kubernetes\.io/zone=eu-west-1c')
EXTRAS=(--set distributor.autoscaling.enabled=true --set querier.autoscaling.enabled=true
        --set serviceMonitor.enabled=true --set-json 'runtimeConfig={"overrides":{"team-a":{"ingestion_rate_mb":8}}}'
        --set-json 'extraEnv=[{"name":"GODEBUG","value":"x"}]' --set priorityClassName=high)

AUTH=(--set auth.enabled=true --set auth.existingSecret=kiln-tokens
      --set auth.metricsTenantLabels=false)

# name | mode | backend | zones | hpa | helm flags
render_case() {
    local name="$1" mode="$2" backend="$3" zones="$4" hpa="$5"
    shift 5
    local out="$work/$name.yaml"
    if ! helm lint --strict "$chart" "$@" >"$work/$name.lint" 2>&1; then
        cat "$work/$name.lint"
        bad "$name: helm lint --strict"
        return
    fi
    if ! helm template kiln "$chart" --namespace profiling "$@" >"$out" 2>"$work/$name.err"; then
        cat "$work/$name.err"
        bad "$name: helm template"
        return
    fi
    for v in $K8S_VERSIONS; do
        # ServiceMonitor is a CRD: no schema in Kubernetes', checked below.
        if ! kubeconform -strict -summary -skip ServiceMonitor -kubernetes-version "$v" \
            -schema-location "$tools/k8s-schemas/$v/{{.ResourceKind}}{{.KindSuffix}}.json" \
            "$out" >"$work/$name.kc" 2>&1; then
            cat "$work/$name.kc"
            bad "$name: kubeconform -strict (Kubernetes $v)"
            return
        fi
    done
    echo "  $(tail -1 "$work/$name.kc")"
    if ! "$py" "$here/assert_rendered.py" "$out" "$mode" "$backend" "$zones" "$hpa"; then
        bad "$name: assertions"
        return
    fi
    ok "$name"
}

render_case single-fs single filesystem 0 -
render_case single-s3 single s3 0 - "${S3[@]}"
render_case micro-fs microservices filesystem 0 - "${MS[@]}"
render_case micro-s3 microservices s3 0 hpa "${MS[@]}" "${S3[@]}" "${EXTRAS[@]}"
render_case micro-s3-zones microservices s3 3 - "${MS[@]}" "${S3[@]}" "${ZONES[@]}"
render_case micro-fs-auth microservices filesystem 0 - "${MS[@]}" "${AUTH[@]}"

# Authentication: every kiln container reads the tokens file from the
# Secret's directory mount (updates propagate; a subPath would not).
n_auth=$(grep -c -- '-auth.tokens-file=/etc/kiln-auth/tokens.yaml' "$work/micro-fs-auth.yaml")
n_kiln=$(grep -c -- '-target=' "$work/micro-fs-auth.yaml")
if [ "$n_auth" = "$n_kiln" ] && grep -q 'secretName: kiln-tokens' "$work/micro-fs-auth.yaml" &&
    grep -q -- '-server.metrics-tenant-labels=false' "$work/micro-fs-auth.yaml" &&
    ! grep -q 'kiln-auth' "$work/micro-fs.yaml"; then
    ok "auth: tokens Secret mounted in all $n_kiln kiln containers"
else
    bad "auth: tokens file in $n_auth of $n_kiln containers, or on without auth.enabled"
fi

# The ServiceMonitor, by hand: monitoring.coreos.com/v1, scraping /metrics.
if grep -A30 '^kind: ServiceMonitor' "$work/micro-s3.yaml" | grep -q 'path: /metrics'; then
    ok "ServiceMonitor scrapes /metrics"
else
    bad "ServiceMonitor missing or not scraping /metrics"
fi

# The validator itself rejects what it should: an unknown field in a pod.
sed 's/^      containers:$/      containerz: []\n      containers:/' "$work/micro-fs.yaml" >"$work/broken.yaml"
if kubeconform -strict -schema-location "$tools/k8s-schemas/1.37.0/{{.ResourceKind}}{{.KindSuffix}}.json" \
    "$work/broken.yaml" >/dev/null 2>&1; then
    bad "kubeconform accepted an unknown pod field"
else
    ok "kubeconform rejects an unknown pod field"
fi

# Values that must fail, with the reason helm gives.
must_fail() {
    local name="$1" want="$2"
    shift 2
    if helm template kiln "$chart" "$@" >/dev/null 2>"$work/fail.err"; then
        bad "$name: rendered, should have failed"
    elif grep -q -- "$want" "$work/fail.err"; then
        ok "$name fails: $(grep -m1 -- "$want" "$work/fail.err" | sed 's/^ *//')"
    else
        cat "$work/fail.err"
        bad "$name: failed without \"$want\""
    fi
}
must_fail "a mistyped key (storage.backnd)" "additional properties 'backnd' not allowed" \
    --set storage.backnd=s3
must_fail "an unknown top-level key (replicas)" "additional properties 'replicas' not allowed" \
    --set replicas=3
must_fail "mode=cluster" "value must be one of" --set mode=cluster
must_fail "replicationFactor 3 over 2 ingesters" "needs at least as many ingesters" \
    "${MS[@]}" --set ingester.replicas=2
must_fail "replicationFactor 3 over 2 zones of one" "needs at least as many ingesters" \
    "${MS[@]}" --set ingester.zoneAwareReplication.enabled=true \
    --set 'ingester.zoneAwareReplication.zones[0].name=a' --set 'ingester.zoneAwareReplication.zones[1].name=b'
must_fail "auth without its Secret" "auth.existingSecret" --set auth.enabled=true
must_fail "s3 without a bucket" "storage.s3.bucketName" \
    --set storage.backend=s3 --set storage.s3.endpoint=s3.example

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
