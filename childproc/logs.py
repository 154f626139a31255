"""Logging of a child program: its ``--log-level`` option and stderr lines tagged with name and pid."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


def add_log_level_option(parser: argparse.ArgumentParser, default: str = "INFO") -> None:
    """Add ``--log-level`` to a child program's parser."""
    parser.add_argument("--log-level", default=default, choices=LOG_LEVELS, help="stderr log level")


def configure_logging(level: str, quiet_loggers: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``; the ``quiet_loggers`` log warnings and worse only."""
    logging.basicConfig(level=getattr(logging, level), format=LOG_FORMAT)
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
