#!/usr/bin/env bash
# The chart checked offline (ctest helm.chart): helm lint --strict and
# helm template for single and microservices mode on the filesystem and S3
# backends; kubeconform -strict on every rendered object against the
# Kubernetes schemas of PyPI's kubernetes-validate (made standalone by
# k8s_schemas.py); assertions on the rendered objects (assert_rendered.py),
# including the secure example (helm/kiln/examples/secure-microservices-s3.yaml:
# TLS, mutual TLS, cert-manager, auth, NATS TLS, NetworkPolicy); renderings
# broken on purpose that the assertions must reject; values that must fail:
# a mistyped key (values.schema.json), a replication factor above the
# ingester count, s3 without a bucket, a cluster without mutual TLS, ...
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
# kiln refuses a cluster plane without mutual TLS: every microservices case
# names the cluster certificate's Secret.
MS=(--set mode=microservices --set tls.cluster.secretName=kiln-cluster-tls)
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
# Server TLS from a Secret; gRPC clients must show a certificate signed by
# another Secret's CA.
TLS=(--set tls.server.enabled=true --set tls.server.secretName=kiln-server-tls
     --set tls.server.grpc.clientAuth=RequireAndVerifyClientCert
     --set tls.server.clientCASecret=kiln-client-ca)
# An external NATS with a credentials file and its own CA.
NATS_EXT=(--set nats.enabled=false --set nats.url=tls://nats.example:4222
          --set nats.auth.existingSecret=kiln-nats --set nats.auth.credsKey=kiln.creds
          --set nats.tls.enabled=true --set nats.tls.secretName=kiln-nats-ca
          --set nats.tls.clientCert=false)
SECURE=(-f "$chart/examples/secure-microservices-s3.yaml")

# name | mode | backend | "assert_rendered.py options" | helm flags
render_case() {
    local name="$1" mode="$2" backend="$3" opts="$4"
    shift 4
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
        # ServiceMonitor (Prometheus Operator) and Certificate (cert-manager)
        # are CRDs: Kubernetes' schemas have none, and theirs would have to
        # be downloaded. Skipped here by name (any other unknown kind still
        # fails); assert_rendered.py checks their fields instead.
        if ! kubeconform -strict -summary -skip ServiceMonitor,Certificate -kubernetes-version "$v" \
            -schema-location "$tools/k8s-schemas/$v/{{.ResourceKind}}{{.KindSuffix}}.json" \
            "$out" >"$work/$name.kc" 2>&1; then
            cat "$work/$name.kc"
            bad "$name: kubeconform -strict (Kubernetes $v)"
            return
        fi
    done
    echo "  $(tail -1 "$work/$name.kc")"
    # shellcheck disable=SC2086 # opts are words
    if ! "$py" "$here/assert_rendered.py" "$out" "$mode" "$backend" $opts; then
        bad "$name: assertions"
        return
    fi
    ok "$name"
}

render_case single-fs single filesystem ""
render_case single-s3 single s3 "" "${S3[@]}"
render_case single-tls single filesystem "https grpc-tls" "${TLS[@]}" "${AUTH[@]}"
render_case single-nonetpol single filesystem "nonetpol" --set networkPolicy.enabled=false
render_case micro-fs microservices filesystem "" "${MS[@]}"
render_case micro-s3 microservices s3 "hpa" "${MS[@]}" "${S3[@]}" "${EXTRAS[@]}"
render_case micro-s3-zones microservices s3 "zones=3" "${MS[@]}" "${S3[@]}" "${ZONES[@]}"
render_case micro-fs-auth microservices filesystem "" "${MS[@]}" "${AUTH[@]}"
render_case micro-s3-tls microservices s3 "https grpc-tls" "${MS[@]}" "${S3[@]}" "${TLS[@]}" \
    "${NATS_EXT[@]}" --set serviceMonitor.enabled=true
render_case micro-nonetpol microservices s3 "nonetpol grpc-tls" "${MS[@]}" "${S3[@]}" \
    --set networkPolicy.enabled=false --set tls.server.enabled=true \
    --set tls.server.secretName=kiln-server-tls --set tls.server.http.enabled=false
render_case secure-example microservices s3 "hpa https grpc-tls certmanager" "${SECURE[@]}"

# Every flag any rendering passes is one kiln knows (its flag table in
# services/kiln/main.c): a misspelt flag would stop every pod at start.
if "$py" - "$repo/services/kiln/main.c" "$work"/*.yaml >"$work/flags.out" <<'PY'
import re, sys, yaml
known = set(re.findall(r'OPT\("([^"]+)"', open(sys.argv[1]).read()))
used, unknown = set(), set()
for path in sys.argv[2:]:
    for o in yaml.safe_load_all(open(path)):
        if not o or o.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        for c in o["spec"]["template"]["spec"]["containers"]:
            args = c.get("args", [])
            if not any(a.startswith("-target=") for a in args):
                continue
            for a in args:
                name = a.lstrip("-").split("=", 1)[0]
                (used if name in known else unknown).add(name)
print(f"{len(used)} distinct flags, unknown: {sorted(unknown)}")
sys.exit(1 if unknown or not used else 0)
PY
then
    ok "kiln knows every rendered flag ($(cat "$work/flags.out"))"
else
    bad "rendered flags kiln does not know: $(cat "$work/flags.out")"
fi

# The secure example, by name: IRSA (no key in any Secret), the bundled
# nats-server with TLS and the token, the public ports open to all.
sec="$work/secure-example.yaml"
if [ -f "$sec" ] && grep -q 'eks.amazonaws.com/role-arn' "$sec" && ! grep -q 'AWS_ACCESS_KEY_ID' "$sec" &&
    grep -q -- '--tlsverify' "$sec" && grep -q -- '--auth=$(KILN_NATS_TOKEN)' "$sec" &&
    [ "$(grep -c -- 'name: KILN_CLUSTER_NATS_TOKEN' "$sec")" = "$(grep -c -- '-target=' "$sec")" ] &&
    ! grep -q -- '-cluster.nats-token' "$sec"; then
    ok "secure example: IRSA, NATS TLS and token in every component"
else
    bad "secure example: IRSA, NATS TLS or token missing"
fi

# The assertions reject renderings broken on purpose (each a real mistake a
# template change could make): HTTP probes on an HTTPS port, the internal
# port open to all or to another namespace, a component without the
# cluster certificate or without its mount.
mutate() {
    local name="$1" expr="$2"
    if ! "$py" - "$sec" "$work/mutated.yaml" "$expr" <<'PY'
import sys, yaml
objs = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
exec(sys.argv[3])
yaml.safe_dump_all(objs, open(sys.argv[2], "w"))
PY
    then
        bad "$name: could not break the secure example's rendering"
        return
    fi
    if "$py" "$here/assert_rendered.py" "$work/mutated.yaml" microservices s3 hpa https grpc-tls certmanager \
        >"$work/mutated.out" 2>&1; then
        bad "assertions accepted: $name"
    else
        ok "assertions reject $name: $(grep -m1 'assert:' "$work/mutated.out" | sed 's/^ *assert: //')"
    fi
}
mutate "HTTP probes with HTTPS on" '
for o in objs:
    if o["kind"] == "Deployment":
        for c in o["spec"]["template"]["spec"]["containers"]:
            c["readinessProbe"]["httpGet"].pop("scheme")
        break'
mutate "the internal port open to all" '
for o in objs:
    if o["kind"] == "NetworkPolicy":
        for r in o["spec"]["ingress"]:
            r.pop("from", None)'
mutate "the internal port open to another namespace" '
for o in objs:
    if o["kind"] == "NetworkPolicy":
        for r in o["spec"]["ingress"]:
            for p in r.get("from", []):
                p["namespaceSelector"] = {}'
mutate "a querier without cluster TLS" '
for o in objs:
    if o["metadata"]["name"].endswith("querier") and o["kind"] == "Deployment":
        c = o["spec"]["template"]["spec"]["containers"][0]
        c["args"] = [a for a in c["args"] if not a.startswith("-cluster.tls-")]'
mutate "a certificate file outside its mount" '
for o in objs:
    if o["kind"] == "StatefulSet" and o["metadata"]["name"].endswith("ingester"):
        c = o["spec"]["template"]["spec"]["containers"][0]
        c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "tls-cluster"]'

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
must_fail "microservices without the cluster certificate" "needs the cluster certificate" \
    --set mode=microservices
must_fail "microservices with tls.cluster off" "needs tls.cluster.enabled" \
    "${MS[@]}" --set tls.cluster.enabled=false
must_fail "cert-manager without an issuer" "tls.certManager.issuerRef.name" \
    "${MS[@]}" --set tls.certManager.enabled=true
must_fail "server TLS without a Secret" "tls.server.secretName" --set tls.server.enabled=true
must_fail "HTTPS that refuses the probes" "refuse the kubelet's probes" \
    "${TLS[@]}" --set tls.server.http.clientAuth=RequireAndVerifyClientCert
must_fail "an unknown client-auth policy" "value must be one of" \
    --set tls.server.grpc.clientAuth=Required
must_fail "a mistyped TLS key (tls.server.secret)" "additional properties 'secret' not allowed" \
    --set tls.server.secret=x
must_fail "a creds file with the bundled nats-server" "operator-mode nats-server" \
    "${MS[@]}" --set nats.auth.existingSecret=n --set nats.auth.credsKey=k.creds
must_fail "bundled NATS TLS without its certificate" "nats.tls.serverSecretName" \
    "${MS[@]}" --set nats.tls.enabled=true

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
