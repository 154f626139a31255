"""Entry point of ``python -m refserver``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from childproc.bind_address import is_loopback_host
from childproc.parent_death import die_with_parent
from refserver.cli import configure_server_logging, parse_config
from refserver.server import run_single
from refserver.supervisor import run_workers

logger = logging.getLogger("refserver")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, then serve until SIGTERM or SIGINT; return the exit code."""
    config = parse_config(argv, os.environ)
    configure_server_logging(config.log_level)
    if config.die_with_parent:
        die_with_parent()
    if not is_loopback_host(config.host):
        logger.warning("binding to %s, which is not loopback: other machines can reach this server", config.host)
    if config.workers > 1:
        return run_workers(config)
    return run_single(config)


if __name__ == "__main__":
    sys.exit(main())
