"""Test-set predictions in the leaderboards' submission layouts, ready to zip.

GLUE: one `<Task>.tsv` per task (CoLA, SST-2, MRPC, STS-B, QQP, MNLI-m, MNLI-mm, QNLI, RTE, WNLI,
AX) with header `index<TAB>prediction` and the label as the task spells it. SuperGLUE: one
`<Task>.jsonl` per task (BoolQ, CB, COPA, MultiRC, ReCoRD, RTE, WiC, WSC, AX-b, AX-g), one
`{"idx": ..., "label": ...}` object per line. RACE has no leaderboard server: we write
`<Task>.json`, the answer letter per question id. The suite fixes the file layout; the task's
shape (bort.shapes) writes each row -- how a label is spelled, MultiRC's answers nested under
their passage and question, ReCoRD's entity text.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from bort.tasks import Task


def _glue(rows) -> str:
    return "\n".join(["index\tprediction"] + [f"{r['idx']}\t{r['label']}" for r in rows]) + "\n"


def _superglue(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _race(rows) -> str:
    return json.dumps({r["idx"]: r["label"] for r in rows}, indent=1, sort_keys=True) + "\n"


#: suite -> (file suffix, rows -> file text)
LAYOUTS = {"glue": (".tsv", _glue), "superglue": (".jsonl", _superglue), "race": (".json", _race)}


def file_name(task: Task) -> str:
    return task.label + LAYOUTS[task.suite][0]


def write(task: Task, instances: Sequence[dict], preds: Sequence, folder) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(task)
    path.write_text(LAYOUTS[task.suite][1](task.shape.submission_rows(task, instances, preds)), encoding="utf-8")
    return path
