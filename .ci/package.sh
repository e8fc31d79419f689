#!/usr/bin/env bash
# Build the collection tarball as a release would (the changelog released at galaxy.yml's
# version, in a copy: the checkout is not touched), check what it ships, and run Galaxy's own
# import checker on it. Leaves the tarball in .build/package/ and the collection installed
# from it in .build/package/collections (the docs and EE checks use that install).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.build/venv-release
out=$top/.build/package
rm -rf "$out" && mkdir -p "$out"
version=$(python3 -c 'import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$top/galaxy.yml")

echo "package: changelog fragments and changelogs/changelog.yaml"
(cd "$top" && "$venv/bin/antsibull-changelog" lint)
(cd "$top" && "$venv/bin/antsibull-changelog" lint-changelog-yaml --no-semantic-versioning changelogs/changelog.yaml)
python3 "$top/.ci/check_release.py" versions "$top"

# The tree a release is built from: the files git knows (tracked, or new and not ignored), in
# a directory outside the checkout (antsibull-changelog copies a tree inside a git work tree
# by git's file list, where this copy is ignored).
stage_root=$(mktemp -d "${TMPDIR:-/tmp}/warden-egress-package.XXXXXX")
trap 'rm -rf "$stage_root"' EXIT
stage=$stage_root/ansible_collections/warden/egress
mkdir -p "$stage"
(cd "$top" && git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$stage/")
# CHANGELOG.rst as committed must be what antsibull-changelog generates from changelog.yaml.
(cd "$stage" && ANSIBLE_COLLECTIONS_PATH=$stage_root "$venv/bin/antsibull-changelog" generate >/dev/null)
if ! diff -u "$top/CHANGELOG.rst" "$stage/CHANGELOG.rst"; then
  echo "package: CHANGELOG.rst is not what 'antsibull-changelog generate' makes of changelogs/changelog.yaml" >&2
  exit 1
fi
# Release the pending fragments at galaxy.yml's version, as the release commit will.
(cd "$stage" && ANSIBLE_COLLECTIONS_PATH=$stage_root "$venv/bin/antsibull-changelog" release --version "$version" 2>&1 | { grep -v "release_summary" || true; })
grep -q "^v$version\$" "$stage/CHANGELOG.rst" || { echo "package: CHANGELOG.rst has no section v$version after the release step" >&2; exit 1; }
python3 "$top/.ci/check_release.py" released "$stage"
rm -f "$stage/changelogs/.plugin-cache.yaml"

echo "package: build warden-egress-$version.tar.gz"
(cd "$stage" && "$venv/bin/ansible-galaxy" collection build --force --output-path "$out" . >/dev/null)
tarball=$out/warden-egress-$version.tar.gz
python3 "$top/.ci/check_release.py" tarball "$tarball"

echo "package: install it as a user would (no dependencies fetched)"
ANSIBLE_COLLECTIONS_PATH=$out/collections "$venv/bin/ansible-galaxy" collection install --offline --no-deps -p "$out/collections" "$tarball" >/dev/null
python3 "$top/.ci/check_release.py" dependencies "$out/collections/ansible_collections/warden/egress" "$top"

# galaxy-importer's own ansible-lint run stops after 180 s and reports a timeout, which a
# loaded machine (make test runs Molecule beside this) can reach: the same command runs here
# without that limit, and the importer skips it (.ci/galaxy-importer.cfg).
echo "package: ansible-lint on the installed tarball, as galaxy-importer runs it"
lint_start=$SECONDS
installed=$out/collections/ansible_collections/warden/egress
# As the importer reads it: any line on stdout (a finding), a CRITICAL or ERROR line on stderr.
lint_rc=0
(cd "$installed" && ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-lint --profile production \
  --exclude tests/integration/ --exclude tests/unit/ --format=pep8 --nocolor \
  -x yaml,var-naming,avoid-dot-notation,import-task-no-when,single-entry-point,use-loop --offline \
  >"$out/lint.out" 2>"$out/lint.err") || lint_rc=$?
if [ -s "$out/lint.out" ] || grep -q -E "^(CRITICAL|ERROR)" "$out/lint.err"; then
  cat "$out/lint.out" "$out/lint.err" >&2
  echo "package: ansible-lint (as galaxy-importer runs it, exit $lint_rc) reported the lines above" >&2
  exit 1
fi
echo "package: ansible-lint passed ($((SECONDS - lint_start)) s)"

echo "package: galaxy-importer"
export GALAXY_IMPORTER_CONFIG=$top/.ci/galaxy-importer.cfg
(cd "$out" && "$venv/bin/python" -m galaxy_importer.main "$tarball" | tee "$out/importer.log")
if grep -E "^(WARNING|ERROR)" "$out/importer.log"; then
  echo "package: galaxy-importer reported the lines above" >&2
  exit 1
fi
echo "package: $tarball passed galaxy-importer ($SECONDS s)"
