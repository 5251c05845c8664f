"""Checkpoints that resume exactly and are never half-written or silently corrupt.

A checkpoint is a folder: the model and projection parameters, the trainer (optimizer) states,
and `state.json` with the step reached, the RNG states, the loss history, a fingerprint of the
configuration that produced it, and the SHA-256 of every other file. It is written with
`bort.io.atomic_dir` (a temporary sibling renamed into place, the previous checkpoint kept until
then), so a run killed at any instant leaves either the previous checkpoint or the new one. On
load every hash is checked: a damaged file is reported by name, never loaded.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from bort.errors import at
from bort.io import atomic_dir, recover


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"python": repr(random.getstate()),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}


def restore_rng(state: dict) -> None:
    random.setstate(eval(state["python"], {"__builtins__": {}}))  # repr of tuples of ints only
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))


def save(folder, blocks: Dict[str, object], trainer, state: dict) -> None:
    """Write blocks' parameters, the trainer states and `state` atomically into `folder`."""
    with atomic_dir(folder) as tmp:
        for name, block in blocks.items():
            block.save_parameters(str(tmp / f"{name}.params"))
        if trainer is not None:
            trainer.save_states(str(tmp / "trainer.states"))
        files = sorted(p.name for p in tmp.iterdir())
        state = dict(state, files={name: sha256(tmp / name) for name in files}, rng=rng_state())
        (tmp / "state.json").write_text(json.dumps(state, sort_keys=True))


def load_state(folder) -> Optional[dict]:
    """The verified state of the checkpoint in `folder`, or None when there is none.

    A checkpoint stranded by a kill between `atomic_dir`'s renames is put back first."""
    folder = Path(folder)
    recover(folder)
    if not (folder / "state.json").exists():
        return None
    try:
        state = json.loads((folder / "state.json").read_text())
    except json.JSONDecodeError as err:
        raise at(folder / "state.json", err.lineno, "corrupted checkpoint: invalid JSON; "
                 "delete the checkpoint folder to restart from step 0") from None
    for name, digest in sorted(state.get("files", {}).items()):
        path = folder / name
        if not path.exists() or sha256(path) != digest:
            raise at(path, None, "corrupted checkpoint: SHA-256 does not match state.json; "
                     "delete the checkpoint folder to restart from step 0")
    return state


def restore(folder, blocks: Dict[str, object], trainer, state: dict) -> None:
    import mxnet as mx
    folder = Path(folder)
    for name, block in blocks.items():
        block.load_parameters(str(folder / f"{name}.params"), ctx=mx.cpu())
    if trainer is not None and (folder / "trainer.states").exists():
        trainer.load_states(str(folder / "trainer.states"))
    restore_rng(state["rng"])
