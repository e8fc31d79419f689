#!/usr/bin/env bash
# Make the checkout importable as ansible_collections/warden/egress under .build/collections
# (ansible.cfg points there), next to the collections the ansible package ships.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/.build/collections/ansible_collections/warden"
ln -sfn "$top" "$top/.build/collections/ansible_collections/warden/egress"
