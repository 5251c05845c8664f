"""Writing outputs so that a failed or interrupted stage never leaves a half-written file.

Every stage writes into a temporary sibling and renames it into place; a folder being replaced is
kept (as a `.old` sibling) until its successor is in, so a kill at any instant leaves the old
folder or the new one, and `recover` puts a stranded `.old` back. Deterministic JSON uses sorted
keys and rounded floats, so a re-run is byte-identical (`dvc metrics diff` shows only real changes).
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import List, Sequence

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


def to_csv(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def recover(path) -> None:
    """A run killed between the two renames of `atomic_dir` leaves PATH.old and no PATH: put the
    previous folder back; a leftover PATH.old beside a complete PATH is dropped."""
    path = Path(path)
    old = _sibling(path, ".old")
    try:
        if old.exists():
            if path.exists():
                shutil.rmtree(old)
            else:
                os.replace(old, path)
    except FileNotFoundError:
        pass                  # another process (a Horovod rank) recovered it first


@contextmanager
def atomic_dir(path):
    """Yield a temporary folder that replaces `path` only when the block finishes without error."""
    path = Path(path)
    recover(path)
    tmp = _sibling(path, ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _sibling(path, ".old")
    if path.exists():
        os.replace(path, old)              # keep the previous folder until the new one is in
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)


def read_lines(path) -> List[str]:
    """A text file's lines (the corpus: one document per line)."""
    return Path(path).read_text(encoding="utf-8").splitlines()
