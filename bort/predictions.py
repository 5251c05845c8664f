"""The held-out predictions file, metrics/predictions.json: written by the significance stage
(pipeline/significance.py), read by bort.compare -- why git carries it and what it holds is
bort.compare's docstring. Kept apart so the stage imports only the writer, and compare.py stays
under the project's 400-line rule."""
from __future__ import annotations

import hashlib
import json
from typing import Dict, List, Sequence

from bort import significance as S
from bort.io import rounded, write_text

PREDICTIONS_FILE = "metrics/predictions.json"
_RECORD = ("record_f1", "record_em")


def _gold_field(task) -> str:
    """Where bort.significance.Scored reads an instance's gold: ReCoRD's answers, else its label."""
    return "answers" if set(_RECORD) & set(task.metrics) else "label"


def heldout_digest(task, held: Sequence[dict]) -> str:
    """sha256 of the held-out rows: every row's inputs (task.shape.inputs) and gold, in order."""
    field = _gold_field(task)
    rows = [[list(task.shape.inputs(i)), i[field]] for i in held]
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def heldout_record(task, held: Sequence[dict], runs: Dict[str, Sequence[Sequence]], seeds: Sequence[int]) -> dict:
    """One set's entry of the predictions file: `runs` is model -> every seed's predictions (in
    the order of `seeds`) on the held-out rows `held`."""
    record = {"digest": heldout_digest(task, held), "gold": [i[_gold_field(task)] for i in held],
              "predictions": {m: {str(s): list(p) for s, p in zip(seeds, preds)} for m, preds in runs.items()}}
    units = S.unit_keys(task, held)
    if units != list(range(len(held))):
        record["units"] = units
    return record


def _dump(value, depth: int = 0) -> str:
    """JSON with sorted keys, one mapping key per line and every list on one line (compact, and
    a changed prediction list is one changed line in `git diff`)."""
    if isinstance(value, dict) and value:
        pad = " " * (depth + 1)
        items = [f"{pad}{json.dumps(str(k))}: {_dump(value[k], depth + 1)}" for k in sorted(value, key=str)]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def write_predictions(path, seeds: Sequence[int], records: Dict[str, dict]) -> None:
    """The predictions file: `records` is set name -> heldout_record; floats rounded to 6 places."""
    write_text(path, _dump(rounded({"seeds": list(seeds), "sets": records})) + "\n")


def instances(task, record: dict) -> List[dict]:
    """The held-out rows as bort.significance.Scored reads them: the gold, and the unit key."""
    field = _gold_field(task)
    units = record.get("units")
    unit_field = "group" if "em" in task.metrics else "pair_id" if "gender_parity" in task.metrics else None
    out = []
    for k, gold in enumerate(record["gold"]):
        row = {field: gold}
        if unit_field:
            row[unit_field] = units[k] if units is not None else k
        out.append(row)
    return out
