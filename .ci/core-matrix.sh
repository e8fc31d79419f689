#!/usr/bin/env bash
# The other ansible-core versions meta/runtime.yml claims, besides the one `make unit` and
# `make sanity` run with (that of the ansible package), each in its own venv: the
# ansible-test sanity tests that depend on the core version (the documentation schema,
# imports, compile, runtime metadata; style is held by `make sanity`), and a unit subset
# that goes through ansible-core (every filter, site.yml's validation play and the action
# group run by that version's ansible-playbook).
# Usage: .ci/core-matrix.sh [VERSION[/PYTHON]...]   (default: CORE_VERSIONS or "2.17 2.18");
# SANITY_TESTS and UNIT_TESTS override the subsets.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
versions=${*:-${CORE_VERSIONS:-2.17 2.18}}
read -r -a unit_tests <<<"${UNIT_TESTS:-tests/unit/plugins/filter tests/unit/playbooks/test_site_validation.py tests/unit/playbooks/test_remove_checks.py tests/unit/meta/test_action_group.py}"
sanity_tests=()
read -r -a names <<<"${SANITY_TESTS:-action-plugin-docs ansible-doc compile import runtime-metadata validate-modules}"
for t in "${names[@]}"; do
  sanity_tests+=(--test "$t")
done
site=$(python3 -c 'import ansible_collections.ansible.utils as m, os; print(os.path.dirname(os.path.dirname(list(m.__path__)[0])))')
# The collections the tests use, from the ansible package (their requires_ansible is >=2.16).
colls=$top/.build/core-matrix/collections
rm -rf "$colls" && mkdir -p "$colls/ansible_collections"
for coll in ansible/utils ansible/netcommon cisco/ios arista/eos junipernetworks/junos containers/podman; do
  mkdir -p "$colls/ansible_collections/${coll%/*}"
  ln -s "$site/$coll" "$colls/ansible_collections/$coll"
done

for spec in $versions; do
  start=$SECONDS
  # VERSION, or VERSION/PYTHON for a core that needs a newer Python than the machine's python3
  # (2.20 and later need 3.12: pyenv's, where there is one).
  v=${spec%%/*}
  py=python3
  if [ "$spec" != "$v" ]; then
    pyv=${spec#*/}
    py=""
    mapfile -t candidates < <(find "${PYENV_ROOT:-$HOME/.pyenv}/versions" -maxdepth 3 -path "*/versions/$pyv.*/bin/python$pyv" 2>/dev/null | sort -rV
                              command -v "python$pyv" || true)
    for candidate in "${candidates[@]}"; do
      if "$candidate" -c pass 2>/dev/null; then py=$candidate; break; fi
    done
    [ -n "$py" ] || { echo "core-matrix: no Python $pyv here for ansible-core $v" >&2; exit 1; }
  fi
  pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  venv=${WARDEN_EGRESS_VENVS:-$HOME/.cache/warden-egress}/venv-core-$v   # shared by the clones on this machine
  reqs=("ansible-core==$v.*" -r "$top/.ci/requirements-core-matrix.txt")
  want=$(echo "${reqs[*]} $pyver" | cat - "$top/.ci/requirements-core-matrix.txt" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv" && "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${reqs[@]}"
    echo "$want" > "$venv/.requirements.sha256"
  fi
  core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
  # ansible-test's pip bootstrap, offline, for this version's pip (as .ci/setup.sh does for the main one).
  pip_version=$("$venv/bin/python" - <<'PY'
import re, ansible_test, os
text = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
  mkdir -p ~/.ansible/test/cache
  cp "$top/.ci/get_pip_offline.py" ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"
  echo "core-matrix: ansible-core $core on Python $pyver (venv ready in $((SECONDS - start)) s)"

  # Unit tests of the controller code.
  (cd "$top" && PATH=$venv/bin:$PATH PYTHONPATH=$colls ANSIBLE_COLLECTIONS_PATH=$top/.build/collections:$colls \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "${unit_tests[@]}")
  echo "core-matrix: ansible-core $core unit tests done ($((SECONDS - start)) s)"

  # Sanity, on a copy outside the checkout as in `make sanity`.
  root=${TMPDIR:-/tmp}/warden-egress-sanity-$v
  dir=$root/ansible_collections/warden/egress
  rm -rf "$root" && mkdir -p "$dir" "$root/ansible_collections/ansible"
  (cd "$top" && git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$dir/")
  rsync -a "$site/ansible/utils/" "$root/ansible_collections/ansible/utils/"
  (cd "$dir" && PATH=$venv/bin:$PATH "$venv/bin/ansible-test" sanity --python "$pyver" --requirements --color no "${sanity_tests[@]}")
  rm -rf "$root"
  echo "core-matrix: ansible-core $core sanity and unit tests passed in $((SECONDS - start)) s"
done
