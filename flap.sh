#!/usr/bin/env bash
# The main job: the flapping test, headless, against the bundled reference server
# (or your server: ./flap.sh --host ws://127.0.0.1:8765/). Extra arguments go to locust.
# Exit code: 0 verdict passed, 3 verdict failed, 2 bad configuration.
# The same entry point as the installed `flap` command (pack/command.py), from this clone's venv.
source "$(dirname "$0")/scripts/venv.sh" requirements.txt
exec python -m pack.command --headless "$@"
