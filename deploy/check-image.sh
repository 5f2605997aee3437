#!/usr/bin/env bash
# Proves deploy/Dockerfile's runtime stage without a container engine (none
# can pull images here): builds the same root filesystem as debian:12-slim
# plus image-setup.sh (debootstrap --variant=minbase of Debian 12 from the
# mirror this machine's apt uses, then image-setup.sh run inside it, the
# very script the Dockerfile runs), puts the given kiln in it, checks that
# every library kiln links resolves inside that root, then starts kiln there
# as uid 10001 on a read-only root with only /data writable, and requires
# /ready to answer 200, a push to be stored under /data, and SIGTERM to end
# it with status 0. It does that twice: with plain flags, then with the args
# and ConfigMap files (config, runtime-config) the Helm chart renders for
# single mode, mounted read-only at /etc/kiln as the chart mounts them (kiln
# refuses unknown keys in both, so a bad rendering fails).
#
# Usage: deploy/check-image.sh <kiln binary> [cache dir]
# The root is cached in <cache dir>/image-root (default build/tools),
# rebuilt when runtime-packages.txt or image-setup.sh change. Needs root
# (debootstrap, chroot, mount namespaces): exits 77 (skipped) otherwise.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kiln="$(realpath "${1:?usage: check-image.sh <kiln binary> [cache dir]}")"
cache="${2:-$here/../build/tools}"
root="$cache/image-root"
stamp="$root/.kiln-image-stamp"

if [ "$(id -u)" -ne 0 ]; then
    echo "check-image: needs root (debootstrap, chroot, unshare); skipped"
    exit 77
fi
for tool in debootstrap unshare chroot curl; do
    command -v "$tool" >/dev/null || {
        echo "check-image: $tool not found (.ci/install-deps installs it)"
        exit 1
    }
done

# The mirror apt uses here (deb822 or one-line sources), else Debian's.
mirror() {
    local m
    m=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
        2>/dev/null | grep -v security | head -1 | awk '{print $2}')
    echo "${m:-http://deb.debian.org/debian}"
}

build_root() {
    local want="$1" tmp="$root.new"
    rm -rf "$tmp"
    mkdir -p "$cache"
    echo "check-image: debootstrap --variant=minbase bookworm from $(mirror)"
    debootstrap --variant=minbase bookworm "$tmp" "$(mirror)" >"$cache/debootstrap.log" 2>&1 || {
        tail -20 "$cache/debootstrap.log"
        return 1
    }
    # The same suites debian:12-slim has (updates, security).
    if [ -d /etc/apt/sources.list.d ] && ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        cp /etc/apt/sources.list.d/*.sources "$tmp/etc/apt/sources.list.d/"
        : >"$tmp/etc/apt/sources.list"
    fi
    cp /etc/resolv.conf "$tmp/etc/resolv.conf"
    mkdir -p "$tmp/tmp/image"
    cp "$here/runtime-packages.txt" "$here/image-setup.sh" "$tmp/tmp/image/"
    unshare --mount --fork sh -c "mount -t proc proc '$tmp/proc' &&
        chroot '$tmp' /tmp/image/image-setup.sh /tmp/image/runtime-packages.txt" \
        >"$cache/image-setup.log" 2>&1 || {
        tail -20 "$cache/image-setup.log"
        return 1
    }
    rm -rf "$tmp/tmp/image"
    echo "$want" >"$tmp/.kiln-image-stamp"
    rm -rf "$root"
    mv "$tmp" "$root"
}

want=$(cat "$here/runtime-packages.txt" "$here/image-setup.sh" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    build_root "$want"
else
    echo "check-image: reusing $root"
fi

# As the Dockerfile's COPY --from=build puts it.
install -m 0755 "$kiln" "$root/usr/local/bin/kiln"

echo "== libraries: every one kiln links resolves in the image root"
ldd_out=$(chroot "$root" /usr/bin/ldd /usr/local/bin/kiln)
if echo "$ldd_out" | grep -q 'not found'; then
    echo "$ldd_out" | grep 'not found'
    echo "check-image: FAIL: libraries missing from the image (add their packages to" \
        "deploy/runtime-packages.txt)"
    exit 1
fi
for lib in $(objdump -p "$kiln" | awk '/NEEDED/ {print $2}'); do
    path=$(echo "$ldd_out" | awk -v l="$lib" '$1 == l {print $3}')
    pkg=$(chroot "$root" dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1 || true)
    [ -n "$pkg" ] || pkg=$(chroot "$root" dpkg -S "$(realpath -m "/usr$path")" 2>/dev/null |
        head -1 | cut -d: -f1 || true)
    printf '  %-28s %-44s %s\n' "$lib" "$path" "${pkg:-?}"
done
echo "  image root: $(du -sh --exclude=./proc "$root" | cut -f1)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Kubernetes makes the mount points of volumes; here the root gets them.
mkdir -p "$root/etc/kiln"

free_ports() {
    python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])'
}

# run_kiln <label> <http port> <kiln args...>: kiln in the image root as uid
# 10001, root read-only, /data a fresh writable directory, /etc/kiln the
# read-only $work/etc-kiln (a ConfigMap's files); then /ready, a push read
# back, SIGTERM.
run_kiln() {
    local label="$1" http="$2"
    shift 2
    local run="$work/$label"
    mkdir -p "$run/mnt" "$run/data" "$work/etc-kiln"
    chown 10001:10001 "$run/data"
    echo "== run ($label): uid 10001, read-only root, only /data writable"
    echo "  kiln $*"
    # The mount namespace ends with the process: nothing to unmount by hand.
    unshare --mount --fork sh -c "
        set -e
        mount --make-rprivate /
        mount --bind '$root' '$run/mnt'
        mount -o remount,bind,ro '$run/mnt'
        mount --bind '$run/data' '$run/mnt/data'
        mount --bind -o ro '$work/etc-kiln' '$run/mnt/etc/kiln'
        mount -t proc proc '$run/mnt/proc'
        mount --rbind /dev '$run/mnt/dev'
        chroot --userspec=10001:10001 '$run/mnt' /usr/local/bin/kiln \"\$@\" &
        echo \$! >'$run/pid'
        wait \$!
    " kiln "$@" >"$run/kiln.log" 2>&1 &
    local unshare_pid=$!

    fail() {
        echo "check-image: FAIL ($label): $*"
        sed 's/^/  kiln: /' "$run/kiln.log" | tail -30
        [ -f "$run/pid" ] && kill -KILL "$(cat "$run/pid")" 2>/dev/null || true
        wait "$unshare_pid" 2>/dev/null || true
        exit 1
    }

    local ready="" _
    for _ in $(seq 1 100); do # at most 20 s
        if curl -fsS -o /dev/null "http://127.0.0.1:$http/ready" 2>/dev/null; then
            ready=1
            break
        fi
        kill -0 "$unshare_pid" 2>/dev/null || fail "kiln exited before /ready"
        sleep 0.2
    done
    [ -n "$ready" ] || fail "/ready did not answer 200 within 20 s"
    local pid uid
    pid=$(cat "$run/pid")
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
    echo "  /ready: 200 on port $http; pid $pid runs as uid $uid"
    [ "$uid" = 10001 ] || fail "kiln runs as uid $uid, not 10001"

    # A push, then its series read back: the write path works on /data.
    local now labels
    now=$(date +%s)
    curl -fsS -o /dev/null --data-binary $'main;work;spin 7\nmain;idle 3\n' \
        "http://127.0.0.1:$http/ingest?name=imagecheck&from=$now&until=$now&format=folded" ||
        fail "push to /ingest failed"
    labels=$(curl -fsS -H 'Content-Type: application/json' -d '{}' \
        "http://127.0.0.1:$http/querier.v1.QuerierService/LabelNames") ||
        fail "LabelNames failed"
    echo "  push stored; LabelNames: $labels"
    echo "$labels" | grep -q service_name || fail "the pushed series is not found"

    kill -TERM "$pid"
    local rc=0
    wait "$unshare_pid" || rc=$?
    [ "$rc" = 0 ] || fail "kiln exited $rc on SIGTERM"
    if grep -qi 'read-only file system' "$run/kiln.log"; then
        fail "kiln tried to write outside /data"
    fi
    local owners
    owners=$(find "$run/data" -mindepth 1 ! -uid 10001 | head -3)
    [ -z "$owners" ] || fail "files under /data not owned by 10001: $owners"
    echo "  /data after SIGTERM: $(find "$run/data" -type f | wc -l) files, all owned by 10001"
}

read -r http grpc otlp < <(free_ports)
run_kiln plain "$http" -target=all -storage.path=/data \
    -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http" \
    -server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc" \
    -server.otlp-grpc-listen-address=127.0.0.1 -server.otlp-grpc-listen-port="$otlp"

# The Helm chart's single-mode container, as the chart renders it (its args
# and its ConfigMap's config and runtime-config files), on free ports.
PATH="$PATH:$(go env GOPATH 2>/dev/null || echo /nonexistent)/bin"
if command -v helm >/dev/null; then
    read -r http grpc otlp < <(free_ports)
    helm template kiln "$here/../helm/kiln" --set http.port="$http" --set grpc.port="$grpc" \
        --set otlp.port="$otlp" \
        --set-json 'config={"validation":{"max_label_names_per_series":40},"log":{"level":"info"}}' \
        --set-json 'runtimeConfig={"overrides":{"team-a":{"ingestion_rate_mb":8}}}' \
        >"$work/chart.yaml"
    mapfile -t chart_args < <(python3 - "$work/chart.yaml" "$work/etc-kiln" <<'PY'
import os, sys, yaml
objs = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
for o in objs:
    if o["kind"] == "ConfigMap":
        for name, text in o["data"].items():
            with open(os.path.join(sys.argv[2], name), "w") as f:
                f.write(text)
sts = next(o for o in objs if o["kind"] == "StatefulSet")
for arg in sts["spec"]["template"]["spec"]["containers"][0]["args"]:
    print(arg)
PY
    )
    chmod -R a+rX "$work/etc-kiln"
    run_kiln chart "$http" "${chart_args[@]}"
else
    echo "== run (chart): helm not found (.ci/install-deps installs it); skipped"
fi
echo "check-image: ok"
