"""Writing outputs so that a failed or interrupted stage never leaves a half-written file.

Every stage writes into a temporary sibling and renames it into place; deterministic JSON uses
sorted keys and rounded floats so a re-run is byte-identical (`dvc metrics diff` shows only
real changes).
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

DIGITS = 6


def rounded(value, digits: int = DIGITS):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def write_text(path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path, data, digits: int = DIGITS) -> None:
    write_text(path, json.dumps(rounded(data, digits), indent=1, sort_keys=True) + "\n")


@contextmanager
def atomic_dir(path):
    """Yield a temporary folder that replaces `path` only when the block finishes without error."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
