"""One exception for every user mistake, and the CLI wrapper that turns it into one line.

Bad input (a truncated TSV, a missing field, an unknown task, a wrong-typed parameter) must end
with a single readable line that names *where* (file and line, or params key) and *what was
expected*, and a non-zero exit -- never a bare traceback. Library code raises `BortError`;
`cli_main` prints it and exits 2.
"""
from __future__ import annotations

import logging
import sys
from typing import Callable, Optional, Sequence

EXIT_USER_ERROR = 2


class BortError(Exception):
    """A user-facing error whose message already says where and what was expected."""


def at(path, line: Optional[int], message: str) -> BortError:
    """`PATH:LINE: message` (or `PATH: message` when no line applies)."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return BortError(f"{where}: {message}")


def setup_logging(level: int = logging.INFO) -> None:
    """Logs go to stderr so stdout stays parseable (`--json`)."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def cli_main(main: Callable[[Optional[Sequence[str]]], int],
             argv: Optional[Sequence[str]] = None) -> int:
    """Run `main(argv)`; a `BortError` becomes `error: <message>` on stderr and exit 2."""
    try:
        return main(argv)
    except BortError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
