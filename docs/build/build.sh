#!/usr/bin/env bash
# Build the docs site from the collection installed from its tarball (by .ci/package.sh):
# the plugin, module and role pages by antsibull-docs, and the collection's README, guide
# pages (docs/*.md), role READMEs and changelog as they ship. Sphinx runs with -W: a broken
# reference or link fails the build. Output: .build/docs/html.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
venv=${RELEASE_VENV:-$top/.build/venv-release}
collections=${1:-$top/.build/package/collections}
coll=$collections/ansible_collections/warden/egress
[ -f "$coll/MANIFEST.json" ] || { echo "docs: no collection installed from the tarball in $collections (run .ci/package.sh)" >&2; exit 1; }
out=$top/.build/docs
src=$out/src
rm -rf "$out" && mkdir -p "$src/collection"
chmod og-w "$src/collection"   # antsibull-docs wants its output directory writable only by itself

# The Markdown pages keep their places, so their relative links work as in the tarball.
cp "$coll/README.md" "$coll/CHANGELOG.rst" "$src/"
mkdir -p "$src/docs" && cp "$coll"/docs/*.md "$src/docs/"
for readme in "$coll"/roles/*/README.md; do
  role=$(basename "$(dirname "$readme")")
  mkdir -p "$src/roles/$role" && cp "$readme" "$src/roles/$role/"
done
# Guide pages in the order README.md lists them, then any page it does not list.
guide=$(python3 - "$coll" <<'PY'
import re, sys, pathlib
coll = pathlib.Path(sys.argv[1])
listed = re.findall(r"\]\(docs/([A-Za-z0-9_.-]+)\.md\)", (coll / "README.md").read_text())
pages = [p.stem for p in sorted((coll / "docs").glob("*.md"))]
order = [p for p in dict.fromkeys(listed) if p in pages] + [p for p in pages if p not in listed]
print("\n".join(f"   docs/{p}" for p in order))
PY
)
roles=$(cd "$src" && printf '%s\n' roles/*/README.md | sed 's/\.md$//; s/^/   /')
python3 - "$here/index.rst.in" "$src/index.rst" "$guide" "$roles" <<'PY'
import sys
text = open(sys.argv[1]).read().replace("@GUIDE@", sys.argv[3]).replace("@ROLES@", sys.argv[4])
open(sys.argv[2], "w").write(text)
PY

# The intersphinx inventory of Ansible's documentation that the pages refer to: its labels
# listed in ansible-docs-labels.txt, and the plugin pages of ansible.builtin and of the other
# collections installed beside this one (each at collections/NS/NAME/PLUGIN_TYPE.html there).
export WARDEN_DOCS_ANSIBLE_INV=$out/ansible_devel.inv
python3 - "$here/ansible-docs-labels.txt" "$WARDEN_DOCS_ANSIBLE_INV" <<'PY'
import importlib, os, pathlib, sys, zlib
import ansible.plugins
import ansible.modules
lines = []
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        label, uri, title = line.split(None, 2)
        lines.append(f"{label} std:label -1 {uri} {title.strip()}\n")
TYPES = {"modules": "module", "filter": "filter", "test": "test", "lookup": "lookup", "connection": "connection",
         "callback": "callback", "become": "become", "inventory": "inventory", "vars": "vars", "cliconf": "cliconf",
         "netconf": "netconf", "httpapi": "httpapi"}


def add(collection, name, ptype):
    ns, coll = collection.split(".")
    label = f"ansible_collections.{collection}.{name}_{ptype}"
    lines.append(f"{label} std:label -1 collections/{ns}/{coll}/{name}_{ptype}.html {collection}.{name} {ptype}\n")


builtin_dirs = {"modules": pathlib.Path(ansible.modules.__path__[0])}
builtin_dirs.update({d: pathlib.Path(ansible.plugins.__path__[0]) / d for d in TYPES if d != "modules"})
for d, path in builtin_dirs.items():
    for f in sorted(path.glob("*.py")) + sorted(path.glob("*.yml")):
        if not f.stem.startswith("_"):
            add("ansible.builtin", f.stem, TYPES[d])
for collection in ("ansible.utils", "ansible.netcommon", "cisco.ios", "arista.eos", "junipernetworks.junos", "ansible.posix"):
    try:
        mod = importlib.import_module(f"ansible_collections.{collection}")
    except ImportError:
        continue
    base = pathlib.Path(list(mod.__path__)[0]) / "plugins"
    for d, ptype in TYPES.items():
        for f in sorted((base / d).glob("*.py")) if (base / d).is_dir() else []:
            if not f.stem.startswith("_"):
                add(collection, f.stem, ptype)
header = "# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n# The remainder of this file is compressed using zlib.\n"
open(sys.argv[2], "wb").write(header.encode() + zlib.compress("".join(lines).encode()))
print(f"docs: {len(lines)} labels of Ansible's documentation in the intersphinx inventory")
PY

export ANSIBLE_COLLECTIONS_PATH=$collections
"$venv/bin/antsibull-docs" --config-file "$here/antsibull-docs.cfg" collection \
  --use-current --squash-hierarchy --fail-on-error --dest-dir "$src/collection" warden.egress
"$venv/bin/sphinx-build" -q -b html -W --keep-going -c "$here" -d "$out/doctrees" "$src" "$out/html"
echo "docs: $out/html/index.html ($SECONDS s)"
