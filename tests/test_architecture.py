"""The architecture as a contract: the pure core imports no I/O, and the glue has no import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The pure core: schedules, conversations, protocol framing, phases, the probe's logic,
# settings, thresholds and leak statistics. Bytes and numbers in, decisions out.
PURE_MODULES = (
    "scenarios.schedule",
    "scenarios.disconnect",
    "scenarios.conversation",
    "scenarios.tracker",
    "scenarios.continuity",
    "scenarios.stream",
    "scenarios.feed",
    "scenarios.file_keys",
    "scenarios.client_frames",
    "scenarios.upgrade",
    "scenarios.server_frames",
    "scenarios.protocols",
    "scenarios.protocols.socketio",
    "scenarios.protocols.graphql_ws",
    "scenarios.protocols.mqtt",
    "scenarios.protocols.mqtt_conversation",
    "scenarios.phase_plan",
    "scenarios.recovery",
    "scenarios.settings",
    "scenarios.failure",
    "monitors.sample",
    "monitors.timeline",
    "monitors.leak",
    "monitors.rounds",
    "monitors.cpu_budget",
    "monitors.checks",
    "monitors.verdict_report",
    "pack.settings",
    "pack.options",
)
IO_PACKAGES = ("gevent", "locust", "websocket", "psutil", "greenlet", "flask")

_IMPORT_WITHOUT_IO = """
import importlib.abc, sys
BLOCKED = {blocked!r}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("the pure core imported " + name)
        return None

sys.meta_path.insert(0, Refuse())
for module in {modules!r}:
    importlib.import_module(module)
print("ok")
"""


def test_the_pure_core_imports_without_gevent_locust_websocket_client_or_psutil() -> None:
    """Every pure module imports in a process where the I/O libraries cannot be imported."""
    code = _IMPORT_WITHOUT_IO.format(blocked=IO_PACKAGES, modules=PURE_MODULES)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1:]
    assert result.stdout.strip() == "ok"


def test_a_blocked_import_is_caught() -> None:
    """The contract can fail: a module that imports gevent is refused in that process."""
    code = _IMPORT_WITHOUT_IO.format(blocked=IO_PACKAGES, modules=("scenarios.ws_session",))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "the pure core imported" in result.stderr


def _pack_imports() -> dict[str, set[str]]:
    """Each module of pack/ and the pack/ modules it imports, type-only imports included."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "pack").glob("*.py")):
        name = f"pack.{path.stem}" if path.stem != "__init__" else "pack"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "pack":
                    found.update(f"pack.{alias.name}" for alias in node.names)
                elif node.module.startswith("pack."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("pack."))
        graph[name] = found - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph`, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_pack_has_no_import_cycle_not_even_a_type_only_one() -> None:
    """The Locust glue's modules import one another in one direction only."""
    assert _cycle(_pack_imports()) is None


def test_a_cycle_would_be_found() -> None:
    """The cycle finder finds a scripted cycle."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
