"""Scoring a fine-tuned model: held-out scores, the leaderboard submission, the metrics file.

Each distinct input is predicted once: in the embedded data the held-out split *is* the labelled
test split, whose predictions also go to the submission. A task without its own training run is
scored by its parent's model (`Task.scored_by`), its predictions mapped onto its own label set.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import List, Sequence, Tuple

from bort import metrics as M
from bort import submission
from bort.io import atomic_dir, write_json
from bort.tasks import Task, map_labels


def finish(task: Task, model, held: Sequence[dict], test: Sequence[dict], result: dict, model_dir,
           metrics_path) -> dict:
    """Score `model` (a TaskModel of `task` or of the task that scores it) on `held` (no scores when
    it is empty: an unlabelled diagnostic set), write its test predictions under
    `model_dir`/submission and `result` with the scores to `metrics_path` (None: returned only)."""
    inputs = model.shape.inputs
    known = dict(zip([inputs(i) for i in test], model.predict(test)))
    rest = [i for i in held if inputs(i) not in known]
    known.update(zip([inputs(i) for i in rest], model.predict(rest)))
    preds = map_labels(model.task, task, [known[inputs(i)] for i in held])
    result["scores"] = M.score(task, held, preds) if held else None
    result["task_score"] = M.task_score(task, result["scores"]) if held else None
    result["heldout_examples"] = len(held)
    submission.write(task, test, map_labels(model.task, task, [known[inputs(i)] for i in test]),
                     Path(model_dir) / "submission")
    if metrics_path is not None:
        write_json(metrics_path, result)
    return result


def start(task: Task, which: str, cfg, data) -> Tuple[List[dict], dict]:
    """(the training instances, the metrics record so far) of model `which` trained on `task`
    with settings `cfg`: the first `max_train` of the training split (0: all of it)."""
    train = data.train[:cfg.max_train] if cfg.max_train else data.train
    return train, {"task": task.name, "model": which, "heldout": data.note, "config": asdict(cfg),
                   "train_examples": len(train)}


def write(task: Task, which: str, model, data, result: dict, layout, trained: bool = True) -> dict:
    """Model `which`'s outputs for `task` in `layout` (bort.finetune.Layout): its folder --
    submission, and the weights of a model `trained` on this task (not of a parent's model scoring
    another set), whose score on Agora's dev split is recorded too -- replaced as a whole, and its
    metrics file; `data` are the task's bort.finetune.heldout splits."""
    if trained and data.agora_dev:
        result["agora_dev_scores"] = M.score(task, data.agora_dev, model.predict(data.agora_dev))
    with atomic_dir(layout.model(which, task)) as tmp:
        if trained:
            model.save(tmp)
        return finish(task, model, data.heldout, data.test, result, tmp, layout.metrics_file(which, task))
