#!/usr/bin/env bash
# The tests: unit tests of the pure core and end-to-end runs of real Locust processes
# against real servers on 127.0.0.1. Extra arguments go to pytest.
# The tests run as TEST_PARTS (3) pytest processes side by side, each a part of the suite
# (tests/support/shards.py): its end-to-end runs mostly wait on clocks, not on the CPU.
# Each line of output starts with its part ("[2/3]"); TEST_PARTS=1 runs one plain process.
source "$(dirname "$0")/scripts/venv.sh" requirements-dev.txt
PARTS="${TEST_PARTS:-3}"
if [ "$PARTS" -le 1 ]; then
  exec python -m pytest "$@"
fi
pids=()
for part in $(seq 1 "$PARTS"); do
  # pipefail: the part's status is pytest's, not sed's
  ( set -o pipefail; python -m pytest --shard "$part/$PARTS" "$@" 2>&1 | sed -u "s|^|[$part/$PARTS] |" ) &
  pids+=($!)
done
status=0
ran=0
for pid in "${pids[@]}"; do
  code=0
  wait "$pid" || code=$?
  case "$code" in
    0) ran=1 ;;
    5) ;;  # this part had no test selected
    *) status=$code ;;
  esac
done
if [ "$status" -eq 0 ] && [ "$ran" -eq 0 ]; then
  status=5  # no part ran any test: as pytest says it
fi
exit "$status"
