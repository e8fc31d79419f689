#!/usr/bin/env bash
# Execution environment checks (no image is built: there is no container registry here):
# ansible-builder accepts .ci/ee/execution-environment.yml (`create`), reads the
# requirements of the collection installed from the tarball (`introspect`, as the image
# build does), and what it lists installs here: the Python packages (pip's resolver, nothing
# installed) and the Debian packages of the system list (present, or installable by apt).
# Needs .ci/package.sh to have run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.build/venv-release
out=$top/.build/ee
installed=$top/.build/package/collections/ansible_collections/warden/egress
[ -f "$installed/MANIFEST.json" ] || { echo "ee: run .ci/package.sh first (no installed tarball)" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out/collections/ansible_collections"

echo "ee: ansible-builder create"
"$venv/bin/ansible-builder" create -f "$top/.ci/ee/execution-environment.yml" -c "$out/context" >/dev/null
grep -q "warden.egress" "$out/context/_build/requirements.yml"

echo "ee: ansible-builder introspect (warden.egress from the tarball, and the collections the EE adds)"
site=$(python3 -c 'import ansible_collections.ansible.utils as m, os; print(os.path.dirname(os.path.dirname(list(m.__path__)[0])))')
for coll in ansible/utils ansible/netcommon cisco/ios arista/eos junipernetworks/junos; do
  mkdir -p "$out/collections/ansible_collections/${coll%/*}"
  ln -s "$site/$coll" "$out/collections/ansible_collections/$coll"
done
mkdir -p "$out/collections/ansible_collections/warden"
ln -s "$installed" "$out/collections/ansible_collections/warden/egress"
"$venv/bin/ansible-builder" introspect --sanitize "$out/collections" \
  --write-pip "$out/requirements.txt" --write-bindep "$out/bindep.txt" > "$out/introspect.yml"
for need in netaddr ncclient; do
  grep -q "^$need.*# from collection warden.egress" "$out/requirements.txt" || { echo "ee: $need from warden.egress missing in the introspected requirements" >&2; cat "$out/requirements.txt" >&2; exit 1; }
done
grep -q "openssh-client \[platform:dpkg\] *# from collection warden.egress" "$out/bindep.txt" || { echo "ee: warden.egress's system requirements were not read" >&2; cat "$out/bindep.txt" >&2; exit 1; }

echo "ee: the Python requirements resolve and install here (pip --dry-run, into nothing)"
"$venv/bin/pip" install -q --dry-run --ignore-installed --report "$out/pip-report.json" -r "$out/requirements.txt" 2>&1 | grep -v "is ignored" || true
python3 - "$out/pip-report.json" <<'PY'
import json, sys
names = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in json.load(open(sys.argv[1]))["install"])
assert any(n.lower().startswith("netaddr==") for n in names), names
print(f"ee: pip would install {len(names)} packages: {' '.join(names)}")
PY

echo "ee: the system requirements (Debian profile)"
missing=$("$venv/bin/bindep" -b -f "$out/bindep.txt" || true)
if [ -n "$missing" ]; then
  echo "ee: not installed here, checking apt can install them: $missing"
  read -r -d "" -a packages <<<"$missing" || true
  apt-get install -s -qq "${packages[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -s -qq "${packages[@]}" >/dev/null; }
fi
echo "ee: ok ($SECONDS s)"
