# Sourced by flap.sh and test.sh: make ./.venv (Python 3.11+) with the given requirements.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQS="$1"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "flapping-pack needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2; exit 2; }
  "$PY" -m venv "$VENV"
fi
# Reinstall only when the requirements changed since the last install.
STAMP="$VENV/.installed-$(basename "$REQS")"
if [ ! -f "$STAMP" ] || ! cmp -s <(cat "$ROOT"/requirements*.txt) "$STAMP"; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$REQS" >&2
  cat "$ROOT"/requirements*.txt > "$STAMP"
fi
# The pack's folder on the venv's path, so a locustfile anywhere can `import flapping_pack`.
PTH="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/flapping_pack.pth"
[ -f "$PTH" ] && [ "$(cat "$PTH")" = "$ROOT" ] || echo "$ROOT" > "$PTH"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
