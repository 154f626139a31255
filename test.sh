#!/usr/bin/env bash
# The tests: unit tests of the pure core and end-to-end runs of real Locust processes
# against real servers on 127.0.0.1. Extra arguments go to pytest.
source "$(dirname "$0")/scripts/venv.sh" requirements-dev.txt
exec python -m pytest "$@"
