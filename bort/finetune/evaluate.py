"""Scoring a fine-tuned model: held-out scores, the leaderboard submission, the metrics file.

Each distinct input is predicted once: in the embedded data the held-out split *is* the labelled
test split, whose predictions also go to the submission. A task without its own training run is
scored by its parent's model (`Task.scored_by`), its predictions mapped onto its own label set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bort import metrics as M
from bort import submission
from bort.io import atomic_dir, write_json
from bort.tasks import Task, map_labels


def finish(task: Task, model, held: Sequence[dict], test: Sequence[dict], result: dict, model_dir,
           metrics_path) -> dict:
    """Score `model` (a TaskModel of `task` or of the task that scores it) on `held`, write its test
    predictions under `model_dir`/submission and `result` with the scores to `metrics_path`."""
    inputs = model.shape.inputs
    known = dict(zip([inputs(i) for i in test], model.predict(test)))
    rest = [i for i in held if inputs(i) not in known]
    known.update(zip([inputs(i) for i in rest], model.predict(rest)))
    preds = map_labels(model.task, task, [known[inputs(i)] for i in held])
    result["scores"] = M.score(task, held, preds)
    result["task_score"] = M.task_score(task, result["scores"])
    result["heldout_examples"] = len(held)
    submission.write(task, test, map_labels(model.task, task, [known[inputs(i)] for i in test]),
                     Path(model_dir) / "submission")
    write_json(metrics_path, result)
    return result


def write(task: Task, which: str, model, data, result: dict, layout, save_model: bool = True) -> dict:
    """Model `which`'s outputs for `task` in `layout` (bort.finetune.Layout): its folder --
    weights (unless it is a parent's model scoring another set) and submission -- replaced as a
    whole, and its metrics file; `data` are the task's bort.finetune.heldout splits."""
    with atomic_dir(layout.model(which, task)) as tmp:
        if save_model:
            model.save(tmp)
        return finish(task, model, data.heldout, data.test, result, tmp, layout.metrics_file(which, task))
