"""The command line of the stage scripts: every path a stage reads or writes is an argument.

dvc.yaml's `cmd` names each path, so a stage's inputs and outputs are read in one place and a
script runs as well by hand (`python pipeline/<stage>.py --help`) as under DVC. Errors and
logging: bort.errors.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict


def parser(doc: str, paths: Dict[str, str]) -> argparse.ArgumentParser:
    """A stage script's parser: the first paragraph of its docstring as description, the rest as
    epilog, and one required path option `--name` per entry of `paths` (name -> what it is)."""
    first, _, rest = doc.partition("\n\n")
    out = argparse.ArgumentParser(description=" ".join(first.split()), epilog=rest.strip() or None,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, what in paths.items():
        out.add_argument(f"--{name}", type=Path, required=True, help=what)
    return out
