"""The conversation file's mappings: a key the pack does not know is an error that names it.

Pure: shared by the parts of the file parsed outside `scenarios.conversation` (`feed:`, `stream:`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scenarios.conversation import ConversationError


def reject_unknown_keys(where: str, data: Mapping[Any, Any], allowed: Sequence[str]) -> None:
    """ConversationError `{where}: unknown key 'x' (allowed: ...)` for the first key of `data` not in `allowed`."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise ConversationError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
