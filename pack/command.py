"""The `flap` command: Locust with the pack loaded (what ./flap.sh runs, minus the venv set-up).

The pack's options are registered before Locust builds its parser, so `flap --help` lists them
beside Locust's own (`locust -f locustfile.py --help` prints its help before it imports the
locustfile). With no locustfile named (`-f`, LOCUST_LOCUSTFILE, a locust.conf) and none in the
current folder, `flap` runs the bundled one; a worker (`flap --worker`) then takes the master's
(`-f -`), so it needs nothing but the installed pack.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

BUNDLED_LOCUSTFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundled", "locustfile.py")
LOCUST_DEFAULT_LOCUSTFILE = "locustfile.py"  # what Locust looks for when none is named


def locustfile_arguments(args: Sequence[str]) -> list[str]:
    """The `-f` to add to `args`, if any: none when a locustfile is named or ./locustfile.py exists."""
    from locust.argument_parser import get_empty_argument_parser

    options, _unknown = get_empty_argument_parser(add_help=False).parse_known_args(args=list(args))
    if options.locustfile != LOCUST_DEFAULT_LOCUSTFILE or os.path.exists(LOCUST_DEFAULT_LOCUSTFILE):
        return []
    worker = "--worker" in args or os.environ.get("LOCUST_MODE_WORKER", "").lower() in ("1", "true", "yes")
    return ["-f", "-" if worker else BUNDLED_LOCUSTFILE]


def main(argv: Sequence[str] | None = None) -> None:
    """Run Locust with the pack's options and, when none is named, the bundled locustfile."""
    args = list(sys.argv[1:] if argv is None else argv)
    from locust.main import main as locust_main

    import flapping_pack  # noqa: F401  the pack's options, registered before Locust's parser is built

    sys.argv = ["flap", *locustfile_arguments(args), *args]
    locust_main()


if __name__ == "__main__":
    main()
