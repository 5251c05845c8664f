"""Test-set predictions in the leaderboards' submission layouts, ready to zip.

GLUE: one `<Task>.tsv` per task (CoLA, SST-2, MRPC, STS-B, QQP, MNLI-m, MNLI-mm, QNLI, RTE, WNLI,
AX) with header `index<TAB>prediction` and the label as the task spells it. SuperGLUE: one
`<Task>.jsonl` per task (BoolQ, CB, COPA, MultiRC, ReCoRD, RTE, WiC, WSC, AX-b, AX-g), one
`{"idx": ..., "label": ...}` object per line; MultiRC nests answers under their passage and
question, ReCoRD labels a query with the entity text. RACE has no leaderboard server: we write
`<Task>.json`, the answer letter per question id.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from bort.tasks import DISPLAY_NAMES, Task

GLUE_SUFFIX, SUPERGLUE_SUFFIX = ".tsv", ".jsonl"


def file_name(task: Task) -> str:
    name = DISPLAY_NAMES.get(task.name, task.name)
    return name + {"glue": GLUE_SUFFIX, "superglue": SUPERGLUE_SUFFIX, "race": ".json"}[task.suite]


def _label(task: Task, pred):
    if task.shape == "regression":
        return round(min(5.0, max(0.0, float(pred))), 3)
    if task.labels is None:                      # COPA: the choice index
        return int(pred)
    value = task.labels[pred]
    return str(value).lower() if isinstance(value, bool) else value


def write(task: Task, instances: Sequence[dict], preds: Sequence, folder) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(task)
    if task.suite == "glue":
        lines = ["index\tprediction"] + [f"{i['id']}\t{_label(task, p)}" for i, p in zip(instances, preds)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif task.suite == "race":
        path.write_text(json.dumps({i["id"]: "ABCD"[p] for i, p in zip(instances, preds)}, indent=1,
                                   sort_keys=True) + "\n", encoding="utf-8")
    elif task.shape == "multirc":
        passages = defaultdict(lambda: defaultdict(list))
        for inst, pred in zip(instances, preds):
            f = inst["fields"]
            passages[f["passage_idx"]][f["question_idx"]].append({"idx": f["answer_idx"], "label": int(pred)})
        rows = [{"idx": p, "passage": {"questions": [{"idx": q, "answers": answers}
                                                     for q, answers in sorted(questions.items())]}}
                for p, questions in sorted(passages.items())]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif task.shape == "record":
        path.write_text("".join(json.dumps({"idx": i["id"], "label": p}) + "\n" for i, p in zip(instances, preds)),
                        encoding="utf-8")
    else:
        path.write_text("".join(json.dumps({"idx": i["id"], "label": _label(task, p)}) + "\n"
                                for i, p in zip(instances, preds)), encoding="utf-8")
    return path
