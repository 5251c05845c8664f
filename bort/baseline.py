"""The TF-IDF + logistic-regression floor: what a bag of words learns from each task.

It is the sanity floor under every table (issue 3): a task whose floor is at chance is not
learnable from words alone, one whose floor is near perfect is trivial. Each task shape is
reduced to scikit-learn's linear models the obvious way: pairs are the two TF-IDF vectors side
by side; regression (STS-B) is ridge; multiple choice (COPA, RACE) and ReCoRD score each option
(candidate filled into the query) with a binary model and take the best; MultiRC is answer-level
binary. Diagnostics are predicted by the model of the task named in `scored_by`.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge

from bort import metrics as M
from bort.tasks import Task, map_labels


def _options(task: Task, inst: dict) -> List[Tuple[str, str]]:
    """(left, right) text of every option an instance offers a scorer."""
    if task.shape == "record":
        return [(inst["text_a"], inst["query"].replace("@placeholder", c)) for c in inst["candidates"]]
    return [(f'{inst["text_a"]} {inst["question"]}', choice) for choice in inst["choices"]]


def _pairs(inst: dict) -> Tuple[str, str]:
    return inst["text_a"], inst.get("text_b", "")


class Floor:
    """One fitted TF-IDF floor model for one task (kept so diagnostics can reuse it)."""

    def __init__(self, task: Task, seed: int = 0, max_features: int = 20000):
        self.task = task
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, max_features=max_features,
                                          sublinear_tf=True)
        if task.shape == "regression":
            self.model = Ridge(alpha=1.0)
        else:
            self.model = LogisticRegression(max_iter=2000, C=4.0, random_state=seed)

    def _x(self, left: Sequence[str], right: Sequence[str]):
        return sparse.hstack([self.vectorizer.transform(left), self.vectorizer.transform(right)]).tocsr()

    def _rows(self, instances):
        if self.task.shape in ("choice", "record"):
            rows, y = [], []
            for inst in instances:
                gold = set(inst.get("answers", [])) if self.task.shape == "record" else {inst.get("label")}
                for k, pair in enumerate(_options(self.task, inst)):
                    rows.append(pair)
                    y.append(int((inst["candidates"][k] if self.task.shape == "record" else k) in gold))
            return rows, y
        return [_pairs(i) for i in instances], [i.get("label") for i in instances]

    def fit(self, instances: Sequence[dict]) -> "Floor":
        rows, y = self._rows(instances)
        self.vectorizer.fit([t for pair in rows for t in pair])
        self.model.fit(self._x([r[0] for r in rows], [r[1] for r in rows]), y)
        return self

    def predict(self, instances: Sequence[dict]) -> list:
        if self.task.shape in ("choice", "record"):
            out = []
            for inst in instances:
                pairs = _options(self.task, inst)
                proba = self.model.predict_proba(self._x([p[0] for p in pairs], [p[1] for p in pairs]))[:, 1]
                best = int(np.argmax(proba))
                out.append(inst["candidates"][best] if self.task.shape == "record" else best)
            return out
        rows, _ = self._rows(instances)
        pred = self.model.predict(self._x([r[0] for r in rows], [r[1] for r in rows]))
        return [float(p) for p in pred] if self.task.shape == "regression" else [int(p) for p in pred]


def run_floor(tasks: Dict[str, Task], load, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Fit on train, score on the labelled test split, for every task; `load(task, split)`."""
    fitted: Dict[str, Floor] = {}
    results = {}
    for name in sorted(tasks, key=lambda n: tasks[n].is_diagnostic):   # parents before diagnostics
        task = tasks[name]
        floor = fitted[task.scored_by] if task.is_diagnostic else Floor(task, seed).fit(load(task, "train"))
        fitted[name] = floor
        test = [i for i in load(task, "test") if "label" in i or "answers" in i]
        if not test:
            continue
        preds = floor.predict(test)
        if task.is_diagnostic and floor.task.labels != task.labels:
            preds = map_labels(floor.task, task, preds)
        results[name] = M.score(task, test, preds)
    return results
