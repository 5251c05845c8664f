"""The three heads a shape can have, and the helpers every shape's loader uses.

Classes -- a softmax over the task's labels; Score -- one output and a squared error; Options --
one score per row and a softmax over an instance's rows. A head decides the loss, how scores
become a prediction, how a prediction is written for the leaderboard, and the TF-IDF floor's
estimator, so the floor and the fine-tuned models read a task the same way.
"""
from __future__ import annotations

from collections import Counter
from typing import List, Optional, Tuple

import numpy as np

from bort.errors import at

Row = Tuple[str, Optional[str]]
LETTERS = "ABCD"


def require(record: dict, keys, path, line) -> None:
    for key in keys:
        if key not in record:
            raise at(path, line, f"missing required field {key!r}")


def has_gold(inst: dict) -> bool:
    """Whether an instance carries its gold answer (a label, or ReCoRD's answers)."""
    return "label" in inst or "answers" in inst


def label_index(task, value, path, line) -> int:
    """The index of `value` in the task's labels (official files spell them as strings, booleans
    or ints); anything else is an error naming the file and line."""
    for i, known in enumerate(task.labels):
        if value == known or (isinstance(known, str) and str(value) == known):
            return i
    raise at(path, line, f"unknown label {value!r} in field {task.label_field!r}; "
                         f"expected one of {list(task.labels)}")


# --------------------------------------------------------------------------------------------
# heads: scores -> loss, prediction, floor
# --------------------------------------------------------------------------------------------

class Classes:
    """A softmax over the task's labels."""

    def outputs(self, task) -> int:
        return len(task.labels)

    def loss(self, scores, owner, instances):
        import mxnet as mx
        target = mx.nd.array([i["label"] for i in instances])
        return -mx.nd.pick(mx.nd.log_softmax(scores, axis=-1), target, axis=-1).mean()

    def decode(self, scores: np.ndarray, owner, instances) -> list:
        return [int(v) for v in scores.argmax(-1)]

    def certainty(self, scores: np.ndarray, owner, instances) -> List[float]:
        """How sure the scores are of their prediction, per instance: the top softmax probability
        rescaled so that chance (1 / the number of choices) is 0 and certainty is 1. Agora keeps a
        new point only when its labeler is this sure (bort.agora: a point the labeler cannot
        decide -- a question its passage cannot answer -- is not a valid instance of its task)."""
        return [_rescaled(row) for row in scores]

    def submission_value(self, task, pred):
        value = task.labels[pred]
        return str(value).lower() if isinstance(value, bool) else value

    def summary(self, task, labelled) -> dict:
        counts = Counter(i["label"] for i in labelled)
        return {"label_counts": {str(task.labels[k]): counts.get(k, 0) for k in range(len(task.labels))}}

    def floor_estimator(self, seed: int):
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(max_iter=2000, C=4.0, random_state=seed)

    def floor_targets(self, inst) -> list:
        return [inst.get("label")]

    def floor_predict(self, estimator, features, instances) -> list:
        rows = [row for inst in instances for row in self.floor_texts(inst)]
        return [int(p) for p in estimator.predict(features(rows))]


class Score(Classes):
    """One output and a squared error; the head predicts score / high, so the targets sit where a
    freshly initialised head starts."""

    def __init__(self, low: float = 0.0, high: float = 5.0):
        self.low, self.high = low, high

    def outputs(self, task) -> int:
        return 1

    def loss(self, scores, owner, instances):
        import mxnet as mx
        target = mx.nd.array([i["label"] / self.high for i in instances])
        return ((scores.reshape((-1,)) - target) ** 2).mean()

    def decode(self, scores, owner, instances) -> list:
        return [float(v) * self.high for v in scores.reshape(-1)]

    def certainty(self, scores, owner, instances) -> List[float]:
        """A regression has no probability to be sure with: every score counts as certain (our
        reading; the labeler's similarity score is taken as it is)."""
        return [1.0] * len(instances)

    def is_miss(self, inst, pred) -> bool:
        return abs(pred - inst["label"]) > 1.0

    def submission_value(self, task, pred):
        return round(min(self.high, max(self.low, float(pred))), 3)

    def summary(self, task, labelled) -> dict:
        scores = [i["label"] for i in labelled]
        return {"label_mean": round(sum(scores) / len(scores), 6), "label_min": min(scores),
                "label_max": max(scores)}

    def floor_estimator(self, seed: int):
        from sklearn.linear_model import Ridge
        return Ridge(alpha=1.0)

    def floor_predict(self, estimator, features, instances) -> list:
        rows = [row for inst in instances for row in self.floor_texts(inst)]
        return [float(p) for p in estimator.predict(features(rows))]


class Options(Classes):
    """One score per row; a softmax over an instance's rows, the loss the log of the probability
    mass on its gold rows."""

    def outputs(self, task) -> int:
        return 1

    def gold_rows(self, inst) -> List[int]:
        return [inst["label"]]

    def choose(self, inst, best: int):
        """The prediction when row `best` scores highest."""
        return best

    def loss(self, scores, owner, instances):
        import mxnet as mx
        flat = scores.reshape((-1,))
        losses = []
        start = 0
        for k, inst in enumerate(instances):
            n = int((owner == k).sum())
            group = flat[start:start + n]
            gold = self.gold_rows(inst)
            if gold:
                total = mx.nd.log(mx.nd.exp(group - group.max()).sum()) + group.max()
                picked = group.take(mx.nd.array(gold))
                gold_lse = mx.nd.log(mx.nd.exp(picked - picked.max()).sum()) + picked.max()
                losses.append(total - gold_lse)
            start += n
        return mx.nd.concat(*losses, dim=0).mean() if losses else (flat * 0).sum()

    def decode(self, scores, owner, instances) -> list:
        flat = scores.reshape(-1)
        return [self.choose(inst, int(np.argmax(flat[owner == k]))) for k, inst in enumerate(instances)]

    def certainty(self, scores, owner, instances) -> List[float]:
        """The softmax over an instance's rows (its options), rescaled as `Classes.certainty`."""
        flat = scores.reshape(-1)
        return [_rescaled(flat[owner == k]) for k in range(len(instances))]

    def summary(self, task, labelled) -> dict:
        counts = Counter(i["label"] for i in labelled)
        return {"label_counts": {str(k): counts[k] for k in sorted(counts)}}

    def floor_targets(self, inst) -> list:
        gold = set(self.gold_rows(inst)) if has_gold(inst) else set()
        return [int(k in gold) for k in range(len(self.floor_texts(inst)))]

    def floor_predict(self, estimator, features, instances) -> list:
        out = []
        for inst in instances:
            proba = estimator.predict_proba(features(self.floor_texts(inst)))
            proba = proba[:, 1] if proba.shape[1] > 1 else np.zeros(len(proba))   # one class seen
            out.append(self.choose(inst, int(np.argmax(proba))))
        return out


def _rescaled(scores) -> float:
    """The top softmax probability of `scores` mapped from [1/n, 1] to [0, 1] (n = len(scores))."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) < 2:
        return 1.0
    e = np.exp(scores - scores.max())
    top, n = float(e.max() / e.sum()), len(scores)
    return max(0.0, (top - 1.0 / n) / (1.0 - 1.0 / n))
