#!/usr/bin/env bash
# Build the lab's container images from Debian packages (no registry is reachable).
#   localhost/warden-lab-base:bookworm-r2     minbase + python3, nftables, iptables, ipset, sshd, iproute2, netcat
#   localhost/warden-lab-systemd:bookworm-r4  the base plus systemd as PID 1 and sudo (a stock server), and what
#                                             the roles would install but the lab cannot fetch (dnsmasq-base), and
#                                             python3-dnslib for the lab's DNS server (lab/files/dns_world.py)
# Each image is skipped when it already exists (the -rN tag changes whenever the package list does).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
base=localhost/warden-lab-base:bookworm-r2
sysd=localhost/warden-lab-systemd:bookworm-r4
mirror=${WARDEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! podman image exists "$base"; then
  rootfs=$(mktemp -d /var/tmp/warden-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "building $base (debootstrap, about 90 s)"
  debootstrap --variant=minbase \
    --include=python3,python3-apt,nftables,iptables,ipset,openssh-server,iproute2,netcat-openbsd \
    bookworm "$rootfs" "$mirror" >/dev/null
  tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
fi

if ! podman image exists "$sysd"; then
  echo "building $sysd"
  podman build --network host -t "$sysd" -f "$here/Containerfile.systemd" "$here" >/dev/null
fi
echo "images ready: $base $sysd"
