"""Checkpoints that resume exactly and are never half-written or silently corrupt.

A checkpoint is a folder: the model and projection parameters, the trainer (optimizer) states,
and `state.json` with the step reached, the RNG states, the loss history, a fingerprint of the
configuration that produced it, and the SHA-256 of every other file. It is written with
`bort.io.atomic_dir` (a temporary sibling renamed into place, the previous checkpoint kept until
then), so a run killed at any instant leaves either the previous checkpoint or the new one. On
load every hash is checked: a damaged file is reported by name, never loaded. The pretrain stage
checkpoints every `checkpoint_every` steps; fine-tuning every epoch (bort.finetune.trainer) and
Agora every round (bort.agora), each clearing its folder once its model is written (`clear`).
"""
from __future__ import annotations

import ast
import hashlib
import json
import random
import shutil
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


def weights_digest(params) -> str:
    """SHA-256 of a ParameterDict's (or name -> Parameter dict's) values in name order, from the
    first context each lives on: the weights a run starts from, for a fingerprint, so a checkpoint
    made from other starting weights (another teacher, another initialisation) is not resumed."""
    weights = hashlib.sha256()
    for name, p in sorted(params.items()):
        weights.update(name.encode())
        weights.update(np.ascontiguousarray(p.data(p.list_ctx()[0]).asnumpy()).tobytes())
    return weights.hexdigest()


def digest(records) -> str:
    """SHA-256 of JSON-like data (a training set), for a fingerprint."""
    return hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"python": repr(random.getstate()),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}


def restore_rng(state: dict) -> None:
    # repr of nested tuples of ints and None: ast.literal_eval reads literals only (eval with empty
    # builtins is not safe on a checkpoint another machine wrote to a shared filesystem)
    random.setstate(ast.literal_eval(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))


def save(folder, blocks: Dict[str, object], trainer, state: dict,
         arrays: Optional[Dict[str, np.ndarray]] = None, trained_only: bool = False) -> None:
    """Write blocks' parameters, the trainer states, `arrays` (as <name>.npy) and `state`
    atomically into `folder`. `trained_only` leaves out the parameters that do not train
    (grad_req null: fine-tuning's frozen embeddings and cells, most of a small model's bytes);
    whoever restores must start from the same weights (its fingerprint says so)."""
    with atomic_dir(folder) as tmp:
        for name, block in blocks.items():
            save_block(block, tmp / f"{name}.params", trained_only)
        for name, array in (arrays or {}).items():
            np.save(tmp / f"{name}.npy", array)
        if trainer is not None:
            trainer.save_states(str(tmp / "trainer.states"))
        files = sorted(p.name for p in tmp.iterdir())
        state = dict(state, files={name: sha256(tmp / name) for name in files}, rng=rng_state())
        (tmp / "state.json").write_text(json.dumps(state, sort_keys=True))


def save_block(block, path, trained_only: bool = False) -> None:
    """`block`'s parameters in the file format of Block.save_parameters, from the first context
    that holds them: every context holds the same values, and save_parameters' average over the
    contexts can move the last bit (three copies)."""
    import mxnet as mx
    mx.nd.save(str(path), {key: p.data(p.list_ctx()[0]).copyto(mx.cpu())
                           for key, p in block._collect_params_with_prefix().items()
                           if not trained_only or p.grad_req != "null"})


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


def load_array(folder, name: str) -> np.ndarray:
    """An array `save` wrote (call after `load_state`, which checks its hash)."""
    return np.load(Path(folder) / f"{name}.npy")


def restore(folder, blocks: Dict[str, object], trainer, state: dict, ctx=None, trained_only: bool = False) -> None:
    """Load the checkpoint's parameters onto `ctx` (a context or list of them, bort.device;
    default cpu), the trainer states and the RNG states; `trained_only` as `save` wrote them."""
    import mxnet as mx
    folder = Path(folder)
    for name, block in blocks.items():
        block.load_parameters(str(folder / f"{name}.params"), ctx=ctx or mx.cpu(), allow_missing=trained_only)
    if trainer is not None and (folder / "trainer.states").exists():
        trainer.load_states(str(folder / "trainer.states"))
    restore_rng(state["rng"])


def clear(folder) -> None:
    """Remove the checkpoint in `folder` once what it was for is written, keeping the (empty)
    folder: a DVC `persist` output must exist after its stage. None: no checkpoint folder."""
    if folder is None:
        return
    folder = Path(folder)
    recover(folder)
    if folder.exists():
        for path in folder.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
