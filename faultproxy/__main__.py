"""Entry point of ``python -m faultproxy``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from childproc.logs import configure_logging
from childproc.parent_death import die_with_parent
from faultproxy.cli import parse_config
from faultproxy.proxy import run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, then proxy until SIGTERM or SIGINT; return the exit code."""
    config = parse_config(argv)
    configure_logging(config.log_level)
    if config.die_with_parent:
        die_with_parent()
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
