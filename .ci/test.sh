#!/usr/bin/env bash
# make test: the unit tests first, then Molecule in the background beside ansible-lint,
# ansible-test sanity, the other ansible-core versions and the release checks. Those four use
# neither the lab nor the kernel log; the unit tests are kept apart from Molecule because
# their namespaces log denied packets to the kernel log, which the lab's learn step reads.
# Molecule's output is shown once it has finished; every stage must pass.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

stage() {
  local start=$SECONDS
  make "$1" || return $?
  echo "make test: $1 passed in $((SECONDS - start)) s"
}

stage unit || exit $?

logs=.build/logs
mkdir -p "$logs"
start=$SECONDS
make molecule >"$logs/molecule.log" 2>&1 &
molecule=$!

failed=""
for name in lint sanity core-matrix release-check; do
  stage "$name" || { failed="$name"; break; }
done

wait "$molecule"
rc=$?
echo "===== make molecule (run beside the stages above), its output: ====="
cat "$logs/molecule.log"
if [ "$rc" -ne 0 ]; then
  echo "make test: molecule failed (exit $rc) after $((SECONDS - start)) s"
  exit "$rc"
fi
echo "make test: molecule passed in $((SECONDS - start)) s"
if [ -n "$failed" ]; then
  echo "make test: $failed failed"
  exit 1
fi
