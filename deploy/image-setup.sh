#!/bin/sh
# Prepares the runtime stage of deploy/Dockerfile: the packages of
# runtime-packages.txt and the user kiln runs as (uid and gid 10001), with
# /data, the one place it writes, owned by it. deploy/check-image.sh runs
# this same script in a debootstrapped Debian 12 root, so the image and
# the check cannot drift apart.
# Usage: image-setup.sh <runtime-packages.txt>
set -eu
pkgs=$(grep -v '^#' "$1" | grep -v '^[[:space:]]*$')
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs
apt-get clean
rm -rf /var/lib/apt/lists/*
getent group kiln >/dev/null || groupadd --gid 10001 kiln
getent passwd kiln >/dev/null ||
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin kiln
mkdir -p /data
chown 10001:10001 /data
chmod 0750 /data
