"""Scoring a fine-tuned model: held-out scores and predictions, the leaderboard submission, and
the metrics file that gathers every seed's run.

Each distinct input is predicted once: in the embedded data the held-out split *is* the labelled
test split, whose predictions also go to the submission. A task without its own training run is
scored by its parent's model (`Task.scored_by`), its predictions mapped onto its own label set.
Each run keeps its held-out predictions (`PREDICTIONS`, in held-out order): the significance stage
resamples them for confidence intervals and paired tests (bort.significance).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import List, Sequence

import numpy as np

from bort import metrics as M
from bort import submission
from bort.io import atomic_dir, write_json
from bort.tasks import Task, map_labels

PREDICTIONS = "heldout.json"        # a run's held-out predictions, in its model folder


def finish(task: Task, model, held: Sequence[dict], test: Sequence[dict], result: dict, model_dir) -> dict:
    """Score `model` (a TaskModel of `task` or of the task that scores it) on `held` (no scores when
    it is empty: an unlabelled diagnostic set); write its held-out predictions to
    `model_dir`/PREDICTIONS and its test predictions under `model_dir`/submission; returns `result`
    with the scores."""
    inputs = model.shape.inputs
    known = dict(zip([inputs(i) for i in test], model.predict(test)))
    rest = [i for i in held if inputs(i) not in known]
    known.update(zip([inputs(i) for i in rest], model.predict(rest)))
    preds = map_labels(model.task, task, [known[inputs(i)] for i in held])
    result["scores"] = M.score(task, held, preds) if held else None
    result["task_score"] = M.task_score(task, result["scores"]) if held else None
    result["heldout_examples"] = len(held)
    write_json(Path(model_dir) / PREDICTIONS, {"task": task.name, "seed": result.get("seed"), "predictions": preds})
    submission.write(task, test, map_labels(model.task, task, [known[inputs(i)] for i in test]),
                     Path(model_dir) / "submission")
    return result


def training_set(cfg, data) -> List[dict]:
    """The training instances of a run with settings `cfg`: the first `max_train` of the training
    split (0: all of it)."""
    return data.train[:cfg.max_train] if cfg.max_train else data.train


def write(task: Task, which: str, model, data, result: dict, layout, folder=None) -> dict:
    """One run's outputs (model `which` on `task`, seed `model.seed`) in `layout`
    (bort.finetune.Layout), or in `folder` (a search candidate's): its seed folder -- the trained
    weights and settings, the held-out predictions, the submission -- replaced as a whole; returns
    its record (scores on the held-out split and on Agora's dev split). `data` are the task's
    bort.finetune.heldout splits. A thresholded task (`Task.decision_threshold`) first fits its
    decision threshold on Agora's dev split (TaskModel.fit_threshold)."""
    result = dict(result, seed=model.seed, **dev_scores(task, model, data))
    with atomic_dir(folder or layout.model(which, task, model.seed)) as tmp:
        model.save(tmp)
        return finish(task, model, data.heldout, data.test, result, tmp)


def dev_scores(task: Task, model, data) -> dict:
    """The model's scores on Agora's dev split (what the settings search compares), after fitting
    a thresholded task's decision threshold there ("decision"); {} when the split is empty."""
    out = {}
    if task.decision_threshold and data.agora_dev:
        out["decision"] = model.fit_threshold(data.agora_dev)
    if data.agora_dev:
        out["agora_dev_scores"] = M.score(task, data.agora_dev, model.predict(data.agora_dev))
    return out


def summary(task: Task, which: str, cfg, data, runs: Sequence[dict], **more) -> dict:
    """The metrics record of model `which` on `task` over its runs (one per seed, in seed order):
    each run's record, and per metric and for the task score the mean, the sample standard
    deviation and the range over seeds. The intervals and significance tests over held-out
    instances are the significance stage's (bort.significance)."""
    out = {"task": task.name, "model": which, "heldout": data.note, "config": asdict(cfg),
           "heldout_examples": runs[0]["heldout_examples"], "seeds": [r["seed"] for r in runs],
           "runs": [{k: v for k, v in r.items() if k not in ("task", "model", "heldout", "heldout_examples")}
                    for r in runs], **more}
    out["heldout_split"] = data.counts()       # the held-out rules' counts (bort.finetune.heldout)
    if data.train:
        out["train_examples"] = len(training_set(cfg, data))
    if runs[0]["scores"] is None:
        return dict(out, scores=None, task_score=None)
    out["scores"] = {m: float(np.mean([r["scores"][m] for r in runs])) for m in task.metrics}
    out["task_score"] = float(np.mean([r["task_score"] for r in runs]))
    out["seed_spread"] = spread([r["task_score"] for r in runs])
    return out


def spread(values: Sequence[float]) -> dict:
    """Sample standard deviation (0 for a single run), minimum and maximum."""
    values = np.asarray(values, float)
    return {"sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max())}
