#!/usr/bin/env bash
# Install everything the lab and the tests need on a fresh Debian machine (as root).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
need_apt=()
# (shellcheck is needed so that ansible-test sanity runs its shellcheck test.)
for cmd in podman runc debootstrap nft iptables ipset unshare rsync ip shellcheck dnsmasq ping; do
  command -v "$cmd" >/dev/null || need_apt+=("$cmd")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    podman runc debootstrap nftables iptables ipset util-linux rsync iproute2 netcat-openbsd shellcheck dnsmasq-base iputils-ping >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r "$top/requirements-test.txt"
bash "$top/.ci/collection-link.sh"
# Release tools (galaxy-importer, antsibull-changelog, antsibull-docs, ansible-builder) in their
# own venv, kept outside the checkout so that every clone on this machine shares it, and made
# again only when their requirements change; .build/venv-release points to it.
venv=${WARDEN_EGRESS_VENVS:-$HOME/.cache/warden-egress}/venv-release
want=$(cat "$top/.ci/requirements-release.txt" "$top/docs/build/requirements.txt" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$top/.ci/requirements-release.txt"
  echo "$want" > "$venv/.requirements.sha256"
fi
mkdir -p "$top/.build"
rm -rf "$top/.build/venv-release"
ln -s "$venv" "$top/.build/venv-release"
bash "$top/lab/build-image.sh"
# ansible-test bootstraps pip in its venvs from a script on a host these machines cannot
# reach; put the offline stand-in where ansible-test looks for its cached copy.
pip_version=$(python3 - <<'PY'
import re, ansible_test, os
text = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
mkdir -p ~/.ansible/test/cache
cp "$top/.ci/get_pip_offline.py" ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"
