"""The pack's version: one place, read by pyproject.toml (the package's version), `flapping_pack.__version__`
and the master's check of each worker's pack (pack/worker_link.py)."""

VERSION = "0.1.0"
