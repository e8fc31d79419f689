#!/usr/bin/env bash
# make test, in two phases, each a foreground and a background part (every stage must pass):
# 1. the unit tests, beside the pf, network and lockout scenarios (which do not read the
#    kernel log);
# 2. the linux and iptables scenarios, beside ansible-lint, ansible-test sanity, the other
#    ansible-core versions and the release checks (which use neither the lab nor the kernel
#    log). These scenarios are kept apart from the unit tests because the packets the tests'
#    namespaces deny are logged to the kernel log, which the lab's learn step reads.
# A background part's output is shown once it has finished.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
logs=.build/logs
mkdir -p "$logs"
stage() {
  local start=$SECONDS
  make "$1" || return $?
  echo "make test: $1 passed in $((SECONDS - start)) s"
}

# Run Molecule's scenarios "$1" in the background, into "$logs/molecule-$2.log" ($! is its pid).
background() {
  make molecule MOLECULE_SCENARIOS="$1" >"$logs/molecule-$2.log" 2>&1 &
}

# Wait for a background part, show its output, and say how it ended.
finish() {
  local rc
  wait "$1"
  rc=$?
  echo "===== make molecule, scenarios $2 (run in the background), its output: ====="
  cat "$logs/molecule-$3.log"
  if [ "$rc" -ne 0 ]; then
    echo "make test: molecule ($2) failed (exit $rc)"
  else
    echo "make test: molecule ($2) passed (each scenario's time is in its output above)"
  fi
  return "$rc"
}

background "pf network lockout" 1
first=$!
stage unit
unit=$?
finish "$first" "pf network lockout" 1
rc=$?
[ "$unit" -ne 0 ] && exit "$unit"
[ "$rc" -ne 0 ] && exit "$rc"

background "linux iptables" 2
second=$!
failed=""
for name in lint sanity core-matrix release-check; do
  stage "$name" || { failed="$name"; break; }
done
finish "$second" "linux iptables" 2 || exit $?
if [ -n "$failed" ]; then
  echo "make test: $failed failed"
  exit 1
fi
